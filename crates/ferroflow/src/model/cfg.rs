//! Classifier-free guidance (Ho & Salimans 2022): a class-conditional field trained with label
//! dropout to a null class, combined at sampling time as an extrapolation from the unconditional
//! velocity towards the conditional one.

use burn::tensor::{Int, Tensor, backend::Backend};

use super::field::{Condition, VelocityField};
use super::jvp::JvpField;
use crate::error::ConfigError;

/// A class-conditional field with classifier-free guidance of strength w.
///
/// # Formula
/// ṽ(x, t | c) = (1 + w)·v(x, t | c) − w·v(x, t | ∅)  (Ho & Salimans 2022, eq. 6, written for
/// velocities; w = 0 is the conditional field, w > 0 sharpens towards class c)
///
/// # Labels
/// The class of each row comes from the `cond` passed to [`VelocityField::velocity`] when it is
/// a [`Condition::Class`], otherwise from [`Self::class`]; with neither, the field is sampled
/// unconditionally (every row gets the null class, and w has no effect). The wrapped field must
/// treat the label `null` as "no class" (ferroflow's class-conditional fields reserve
/// `n_classes` for it).
///
/// # Cost
/// With w ≠ 0 one forward pass of 2·batch rows (the conditional and null rows stacked); with
/// w = 0 or no labels, one forward pass of batch rows.
///
/// # Shapes
/// `x: [batch, dim]`, `t: [batch]`, labels `[batch]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Int, Tensor};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::model::{ClassifierFree, Condition, ConditionConfig, MlpFieldConfig, VelocityField};
/// let d = Default::default();
/// let cfg = MlpFieldConfig { condition: ConditionConfig::Class { n_classes: 3, d_embed: 4 }, ..Default::default() };
/// let field = cfg.init::<Cpu64>(&d, &mut ferroflow::rng::seeded(0));
/// let x = Tensor::<Cpu64, 2>::from_floats([[0.5, -1.0], [2.0, 0.0]], &d);
/// // w = 1: ṽ = 2·v(x | c) − v(x | ∅), from one batched pass of 4 rows.
/// let guided = ClassifierFree::new(&field, 1.0, Some(vec![1, 2]), 3).unwrap();
/// let v: Vec<f64> = guided.velocity_at(x.clone(), 0.5, None).into_data().into_vec().unwrap();
/// let class = |l: [i64; 2]| Condition::Class(Tensor::<Cpu64, 1, Int>::from_ints(l, &d));
/// let vc: Vec<f64> = field.velocity_at(x.clone(), 0.5, Some(&class([1, 2]))).into_data().into_vec().unwrap();
/// let vu: Vec<f64> = field.velocity_at(x, 0.5, Some(&class([3, 3]))).into_data().into_vec().unwrap();
/// for i in 0..4 {
///     assert!((v[i] - (2.0 * vc[i] - vu[i])).abs() < 1e-12);
/// }
/// ```
#[derive(Debug, Clone)]
pub struct ClassifierFree<F> {
    /// The class-conditional field.
    pub field: F,
    /// The guidance strength w (0: conditional sampling).
    pub w: f64,
    /// The class of each row when the caller passes no condition; `None`: unconditional.
    pub class: Option<Vec<u32>>,
    /// The null class label (`n_classes` of the field).
    pub null: u32,
}

impl<F> ClassifierFree<F> {
    /// Wraps `field`.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] if `w` is not finite, or a label is not below `null`.
    pub fn new(field: F, w: f64, class: Option<Vec<u32>>, null: u32) -> Result<Self, ConfigError> {
        if !w.is_finite() {
            return Err(ConfigError::OutOfRange {
                name: "guidance w",
                value: w.to_string(),
                expected: "a finite number",
            });
        }
        if let Some(&c) = class.iter().flatten().find(|&&c| c >= null) {
            return Err(ConfigError::OutOfRange {
                name: "class label",
                value: c.to_string(),
                expected: "below the null class n_classes",
            });
        }
        Ok(Self { field, w, class, null })
    }

    /// The labels of the batch: from `cond`, else [`Self::class`].
    ///
    /// # Panics
    /// If [`Self::class`] is used and its length is not the batch size.
    fn labels<B: Backend>(
        &self,
        n: usize,
        cond: Option<&Condition<B>>,
        device: &B::Device,
    ) -> Option<Tensor<B, 1, Int>> {
        match cond {
            Some(Condition::Class(l)) => Some(l.clone()),
            _ => self.class.as_ref().map(|c| {
                assert_eq!(c.len(), n, "ClassifierFree: {} labels for a batch of {n}", c.len());
                super::unet::labels_tensor(c, device)
            }),
        }
    }

    fn null_labels<B: Backend>(&self, n: usize, device: &B::Device) -> Tensor<B, 1, Int> {
        Tensor::<B, 1, Int>::full([n], self.null as i64, device)
    }
}

/// (1 + w)·a − w·b.
fn combine<B: Backend>(w: f64, a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    a.mul_scalar(1.0 + w) - b.mul_scalar(w)
}

impl<B: Backend, F: VelocityField<B>> VelocityField<B> for ClassifierFree<F> {
    fn dim(&self) -> usize {
        self.field.dim()
    }

    fn velocity(&self, x: Tensor<B, 2>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let [n, _] = x.dims();
        let dev = x.device();
        let Some(labels) = self.labels(n, cond, &dev) else {
            return self.field.velocity(x, t, Some(&Condition::Class(self.null_labels(n, &dev))));
        };
        if self.w == 0.0 {
            return self.field.velocity(x, t, Some(&Condition::Class(labels)));
        }
        let both = Condition::Class(Tensor::cat(vec![labels, self.null_labels(n, &dev)], 0));
        let v =
            self.field.velocity(Tensor::cat(vec![x.clone(), x], 0), Tensor::cat(vec![t.clone(), t], 0), Some(&both));
        combine(self.w, v.clone().narrow(0, 0, n), v.narrow(0, n, n))
    }
}

impl<B: Backend, F: JvpField<B>> JvpField<B> for ClassifierFree<F> {
    /// The guided field is linear in the two velocities, so its JVP is the same combination of
    /// the two JVPs: ṽ̇ = (1 + w)·v̇(·|c) − w·v̇(·|∅).
    fn forward_jvp(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
        dx: Tensor<B, 2>,
        dt: Option<Tensor<B, 1>>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let [n, d] = x.dims();
        let [kn, _] = dx.dims();
        let k = kn / n;
        let dev = x.device();
        let Some(labels) = self.labels(n, cond, &dev) else {
            return self.field.forward_jvp(x, t, Some(&Condition::Class(self.null_labels(n, &dev))), dx, dt);
        };
        if self.w == 0.0 {
            return self.field.forward_jvp(x, t, Some(&Condition::Class(labels)), dx, dt);
        }
        let both = Condition::Class(Tensor::cat(vec![labels, self.null_labels(n, &dev)], 0));
        // Each tangent block p of n rows becomes a block of 2n rows: [ẋ_p; ẋ_p].
        let dx2 = dx.reshape([k, n, d]).repeat_dim(1, 2).reshape([2 * kn, d]);
        let dt2 = dt.map(|dt| dt.reshape([k, n]).repeat_dim(1, 2).reshape([2 * kn]));
        let (v, dv) = self.field.forward_jvp(
            Tensor::cat(vec![x.clone(), x], 0),
            Tensor::cat(vec![t.clone(), t], 0),
            Some(&both),
            dx2,
            dt2,
        );
        let dv = dv.reshape([k, 2 * n, d]);
        let dv_c = dv.clone().narrow(1, 0, n).reshape([kn, d]);
        let dv_u = dv.narrow(1, n, n).reshape([kn, d]);
        (combine(self.w, v.clone().narrow(0, 0, n), v.narrow(0, n, n)), combine(self.w, dv_c, dv_u))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ConditionConfig, MlpFieldConfig, UNetConfig};
    use crate::test_util::{B, dev, host, tensor1, tensor2};

    fn normal(rng: &mut crate::rng::Rng, n: usize) -> Vec<f64> {
        crate::rng::normal_vec(rng, n).into_iter().map(f64::from).collect()
    }

    fn mlp() -> crate::model::MlpField<B> {
        let cfg = MlpFieldConfig {
            d_input: 3,
            d_hidden: 16,
            n_hidden: 2,
            condition: ConditionConfig::Class { n_classes: 4, d_embed: 5 },
            ..Default::default()
        };
        cfg.init::<B>(&dev(), &mut crate::rng::seeded(7))
    }

    fn class(l: &[u32]) -> Condition<B> {
        Condition::Class(super::super::unet::labels_tensor(l, &dev()))
    }

    #[test]
    fn zero_guidance_is_the_conditional_field_exactly() {
        let f = mlp();
        let x = tensor2(normal(&mut crate::rng::seeded(1), 9), 3, 3);
        let t = tensor1(vec![0.1, 0.5, 0.9]);
        let labels = [0, 3, 2];
        let g = ClassifierFree::new(&f, 0.0, Some(labels.to_vec()), 4).unwrap();
        let want = host(f.velocity(x.clone(), t.clone(), Some(&class(&labels))));
        assert_eq!(host(g.velocity(x.clone(), t.clone(), None)), want);
        // Labels passed as the condition take precedence over the stored ones.
        let g2 = ClassifierFree::new(&f, 0.0, Some(vec![1, 1, 1]), 4).unwrap();
        assert_eq!(host(g2.velocity(x, t, Some(&class(&labels)))), want);
    }

    #[test]
    fn unit_guidance_is_twice_conditional_minus_unconditional() {
        let f = mlp();
        let x = tensor2(normal(&mut crate::rng::seeded(2), 9), 3, 3);
        let t = tensor1(vec![0.2, 0.4, 0.7]);
        let labels = [1, 0, 3];
        let vc = host(f.velocity(x.clone(), t.clone(), Some(&class(&labels))));
        let vu = host(f.velocity(x.clone(), t.clone(), Some(&class(&[4, 4, 4]))));
        let g = ClassifierFree::new(&f, 1.0, Some(labels.to_vec()), 4).unwrap();
        let v = host(g.velocity(x, t, None));
        for i in 0..9 {
            // One batched pass of 6 rows vs two passes of 3: equal up to f64 rounding.
            assert!((v[i] - (2.0 * vc[i] - vu[i])).abs() < 1e-12, "{i}: {} vs {}", v[i], 2.0 * vc[i] - vu[i]);
        }
    }

    #[test]
    fn no_labels_sample_the_null_class_whatever_w() {
        let f = mlp();
        let x = tensor2(normal(&mut crate::rng::seeded(3), 6), 2, 3);
        let t = tensor1(vec![0.3, 0.6]);
        let vu = host(f.velocity(x.clone(), t.clone(), None));
        let g = ClassifierFree::new(&f, 2.5, None, 4).unwrap();
        assert_eq!(host(g.velocity(x, t, None)), vu);
    }

    #[test]
    fn guided_jvp_is_the_guided_combination_of_jvps_for_mlp_and_unet() {
        let unet_cfg = UNetConfig {
            height: 4,
            width: 4,
            base_channels: 4,
            channel_mult: vec![1, 2],
            groups: 2,
            n_classes: Some(3),
            ..Default::default()
        };
        // Perturb the U-Net's zero out_conv so that its JVP is not trivially 0.
        let unet = unet_cfg.init::<B>(&dev(), &mut crate::rng::seeded(4));
        let mut ts = unet.to_tensors();
        let mut rng = crate::rng::seeded(5);
        let n_t = ts.len();
        for t in &mut ts[n_t - 2..] {
            t.data = crate::rng::normal_vec(&mut rng, t.data.len()).iter().map(|v| 0.1 * v).collect();
        }
        let unet = unet_cfg.from_tensors::<B>(&ts, &dev());
        check_jvp(&mlp(), 3, 4);
        check_jvp(&unet, 16, 3);
    }

    fn check_jvp<F: JvpField<B>>(f: &F, d: usize, null: u32) {
        let mut rng = crate::rng::seeded(6);
        let n = 2;
        let x = tensor2(normal(&mut rng, n * d), n, d);
        let t = tensor1(vec![0.25, 0.75]);
        let dx = tensor2(normal(&mut rng, 2 * n * d), 2 * n, d); // two tangent blocks
        let dt = tensor1(normal(&mut rng, 2 * n));
        let labels = [0, 2];
        let w = 1.5;
        let g = ClassifierFree::new(f, w, Some(labels.to_vec()), null).unwrap();
        let (v, dv) = g.forward_jvp(x.clone(), t.clone(), None, dx.clone(), Some(dt.clone()));
        let (vc, dvc) = f.forward_jvp(x.clone(), t.clone(), Some(&class(&labels)), dx.clone(), Some(dt.clone()));
        let (vu, dvu) = f.forward_jvp(x, t, Some(&class(&[null, null])), dx, Some(dt));
        let want =
            |a: Vec<f64>, b: Vec<f64>| -> Vec<f64> { a.iter().zip(&b).map(|(a, b)| (1.0 + w) * a - w * b).collect() };
        for (got, want) in [(host(v), want(host(vc), host(vu))), (host(dv), want(host(dvc), host(dvu)))] {
            for (a, b) in got.iter().zip(&want) {
                // Same maths in a batch of 2n rows: equal up to f64 rounding.
                assert!((a - b).abs() < 1e-11 * (1.0 + b.abs()), "{a} vs {b}");
            }
        }
    }
}
