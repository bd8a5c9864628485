//! The U-Net's forward-mode derivative: the layer rules of [`crate::model::jvp_conv`] and
//! [`crate::model::jvp`] chained through the network.

use burn::nn::Linear;
use burn::tensor::{Tensor, backend::Backend};

use super::UNet;
use crate::model::field::Condition;
use crate::model::jvp::JvpField;
use crate::model::jvp_conv::{activation_jvp4, conv2d_jvp, group_norm_jvp, upsample_nearest2};
use crate::model::mlp::Activation;

/// A linear layer on a primal and an optional tangent (`None`: zero).
fn linear_opt<B: Backend>(
    l: &Linear<B>,
    x: Tensor<B, 2>,
    dx: Option<Tensor<B, 2>>,
) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    (l.forward(x), dx.map(|d| d.matmul(l.weight.val())))
}

/// SiLU on a primal and an optional tangent (`None`: zero).
fn silu_opt<B: Backend>(x: Tensor<B, 2>, dx: Option<Tensor<B, 2>>) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    match dx {
        Some(d) => {
            let (a, da) = Activation::Silu.jvp(x, d);
            (a, Some(da))
        }
        None => (Activation::Silu.apply(x), None),
    }
}

impl<B: Backend> UNet<B> {
    /// SiLU(emb) and its tangent along ṫ (`None` when ṫ = 0; class labels carry no tangent).
    fn embedding_jvp(
        &self,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
        dt: Option<Tensor<B, 1>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let [n] = t.dims();
        let (e, de) = match dt {
            Some(dt) => {
                let (e, de) = self.time_embedding.forward_jvp(t, dt);
                (e, Some(de))
            }
            None => (self.time_embedding.forward(t), None),
        };
        let (a, da) = linear_opt(&self.time_mlp_0, e, de);
        let (a, da) = silu_opt(a, da);
        let (mut emb, demb) = linear_opt(&self.time_mlp_2, a, da);
        if let Some(c) = self.class_rows(n, cond) {
            emb = emb + c;
        }
        silu_opt(emb, demb)
    }
}

impl<B: Backend> JvpField<B> for UNet<B> {
    /// The JVP by tangent propagation through every layer: convolutions (linear), GroupNorm,
    /// SiLU, attention, concatenations and upsampling ([`crate::model::jvp_conv`]), and the
    /// time embedding MLP. Costs about (1 + k) forward passes for k tangent blocks.
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
        let c = &self.config;
        let (ch, hh, ww) = (c.channels, c.height, c.width);
        let (semb, dsemb) = self.embedding_jvp(t, cond, dt);
        let (mut h, mut dh) = conv2d_jvp(&self.conv_in, x.reshape([n, ch, hh, ww]), dx.reshape([kn, ch, hh, ww]));
        let mut hs = vec![(h.clone(), dh.clone())];
        for level in &self.down {
            for block in &level.res {
                (h, dh) = block.forward_jvp(h, dh, semb.clone(), dsemb.clone());
                hs.push((h.clone(), dh.clone()));
            }
            if let Some(ds) = &level.downsample {
                (h, dh) = conv2d_jvp(ds, h, dh);
                hs.push((h.clone(), dh.clone()));
            }
        }
        (h, dh) = self.mid.res1.forward_jvp(h, dh, semb.clone(), dsemb.clone());
        if let Some(attn) = &self.mid.attn {
            (h, dh) = attn.forward_jvp(h, dh);
        }
        (h, dh) = self.mid.res2.forward_jvp(h, dh, semb.clone(), dsemb.clone());
        for level in self.up.iter().rev() {
            for block in &level.res {
                let (s, ds) = hs.pop().expect("one skip per up block");
                let (hc, dhc) = (Tensor::cat(vec![h, s], 1), Tensor::cat(vec![dh, ds], 1));
                (h, dh) = block.forward_jvp(hc, dhc, semb.clone(), dsemb.clone());
            }
            if let Some(us) = &level.upsample {
                (h, dh) = conv2d_jvp(us, upsample_nearest2(h), upsample_nearest2(dh));
            }
        }
        let (a, da) = group_norm_jvp(&self.out_norm, h, dh);
        let (a, da) = activation_jvp4(Activation::Silu, a, da);
        let (v, dv) = conv2d_jvp(&self.out_conv, a, da);
        (v.reshape([n, d]), dv.reshape([kn, d]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{UNetConfig, VelocityField};
    use crate::test_util::{B, dev, host, tensor1, tensor2};

    fn normal(rng: &mut crate::rng::Rng, n: usize) -> Vec<f64> {
        crate::rng::normal_vec(rng, n).into_iter().map(f64::from).collect()
    }

    /// Max |a − b| / (1 + |b|).
    fn rel_err(a: &[f64], b: &[f64]) -> f64 {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs() / (1.0 + y.abs())).fold(0.0, f64::max)
    }

    /// A tiny U-Net with every parameter moved off its init (out_conv is 0 at init, GroupNorm
    /// is 1/0), so that every layer's rule matters in the JVP.
    fn tiny(cfg: &UNetConfig, seed: u64) -> UNet<B> {
        let m = cfg.init::<B>(&dev(), &mut crate::rng::seeded(seed));
        let mut rng = crate::rng::seeded(seed + 1);
        let ts: Vec<_> = m
            .to_tensors()
            .into_iter()
            .zip(cfg.tensor_specs())
            .map(|(mut t, s)| {
                let noise = crate::rng::normal_vec(&mut rng, t.data.len());
                let scale = if s.name.starts_with("out_conv") { 0.3 } else { 0.1 };
                t.data.iter_mut().zip(noise).for_each(|(v, e)| *v += scale * e);
                t
            })
            .collect();
        cfg.from_tensors::<B>(&ts, &dev())
    }

    fn tiny_config() -> UNetConfig {
        UNetConfig {
            channels: 2,
            height: 4,
            width: 4,
            base_channels: 4,
            channel_mult: vec![1, 2],
            res_blocks: 1,
            groups: 2,
            n_classes: Some(3),
            attention: true,
        }
    }

    #[test]
    fn unet_jvp_matches_central_differences_in_x_and_in_t() {
        let cfg = tiny_config();
        let m = tiny(&cfg, 1);
        let (n, d) = (2, cfg.dim());
        let mut rng = crate::rng::seeded(2);
        let x = normal(&mut rng, n * d);
        let dx = normal(&mut rng, 2 * n * d); // two tangent blocks
        let t = vec![0.3, 0.8];
        let dt = vec![1.0, -0.5, 0.7, 2.0];
        let cond = Condition::Class(super::super::labels_tensor::<B>(&[2, 3], &dev()));
        let v_plain = host(m.velocity(tensor2(x.clone(), n, d), tensor1(t.clone()), Some(&cond)));
        // x only.
        let (v, dv) = m.forward_jvp(
            tensor2(x.clone(), n, d),
            tensor1(t.clone()),
            Some(&cond),
            tensor2(dx.clone(), 2 * n, d),
            None,
        );
        assert!(rel_err(&host(v), &v_plain) < 1e-13, "v differs from velocity()");
        let dv = host(dv);
        let h = 1e-5;
        for p in 0..2 {
            let u = &dx[p * n * d..(p + 1) * n * d];
            let at = |s: f64| {
                let xs = x.iter().zip(u).map(|(a, b)| a + s * b).collect();
                host(m.velocity(tensor2(xs, n, d), tensor1(t.clone()), Some(&cond)))
            };
            let fd: Vec<f64> = at(h).iter().zip(at(-h)).map(|(a, b)| (a - b) / (2.0 * h)).collect();
            // f64 central differences, h = 1e-5: truncation h²f'''/6 ≈ 1e-10 for O(10) third
            // derivatives of a net of O(1) weights, rounding ε/h ≈ 1e-11.
            let err = rel_err(&dv[p * n * d..(p + 1) * n * d], &fd);
            assert!(err < 1e-7, "x tangent block {p}: {err:e}");
        }
        // t only (ẋ = 0): the embedding's phases are 1000·t·f_k, so f''' ~ 1e9 in t; a step of
        // 1e-7 keeps the truncation ≈ h²·1e9/6 ≈ 2e-6 of a derivative of order 1e2–1e3, and the
        // rounding ε·|v|/h ≈ 1e-9.
        let zeros = vec![0.0; 2 * n * d];
        let (_, dv) = m.forward_jvp(
            tensor2(x.clone(), n, d),
            tensor1(t.clone()),
            Some(&cond),
            tensor2(zeros, 2 * n, d),
            Some(tensor1(dt.clone())),
        );
        let dv = host(dv);
        let h = 1e-7;
        for p in 0..2 {
            let u = &dt[p * n..(p + 1) * n];
            let at = |s: f64| {
                let ts = t.iter().zip(u).map(|(a, b)| a + s * b).collect();
                host(m.velocity(tensor2(x.clone(), n, d), tensor1(ts), Some(&cond)))
            };
            let fd: Vec<f64> = at(h).iter().zip(at(-h)).map(|(a, b)| (a - b) / (2.0 * h)).collect();
            let scale = fd.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(scale > 1e-2, "∂v/∂t is not exercised: {scale}");
            let err = dv[p * n * d..(p + 1) * n * d].iter().zip(&fd).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
            assert!(err < 1e-6 * scale, "t tangent block {p}: {err:e} of {scale:e}");
        }
    }

    #[test]
    fn unet_exact_divergence_equals_the_fd_jacobian_trace() {
        let cfg = UNetConfig { channels: 1, n_classes: None, ..tiny_config() };
        let m = tiny(&cfg, 3);
        let (n, d) = (2, cfg.dim());
        let x = normal(&mut crate::rng::seeded(4), n * d);
        let t = vec![0.4, 0.6];
        let (_, div) = crate::likelihood::exact_divergence(&m, tensor2(x.clone(), n, d), tensor1(t.clone()), None);
        let div = host(div);
        let h = 1e-5;
        for i in 0..n {
            let mut trace = 0.0;
            for j in 0..d {
                let at = |s: f64| {
                    let mut xs = x.clone();
                    xs[i * d + j] += s;
                    host(m.velocity(tensor2(xs, n, d), tensor1(t.clone()), None))[i * d + j]
                };
                trace += (at(h) - at(-h)) / (2.0 * h);
            }
            // 16 FD terms each within ≈ 1e-10 (see above).
            assert!((div[i] - trace).abs() < 1e-7 * (1.0 + trace.abs()), "row {i}: {} vs {trace}", div[i]);
            assert!(trace.abs() > 1e-3, "the trace must be non-trivial: {trace}");
        }
    }
}
