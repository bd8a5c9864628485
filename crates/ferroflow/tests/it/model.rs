//! The MLP field: PyTorch layout, forward pass, gradients against finite differences.

use burn::tensor::{Int, Tensor, TensorData};
use ferroflow::backend::{Cpu, Cpu64};
use ferroflow::model::{Activation, Condition, ConditionConfig, MlpFieldConfig, TimeEmbeddingConfig, VelocityField};
use ferroflow::rng;

fn act(a: Activation, x: f64) -> f64 {
    match a {
        Activation::Silu => x / (1.0 + (-x).exp()),
        Activation::Relu => x.max(0.0),
        Activation::Tanh => x.tanh(),
        Activation::Gelu => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
    }
}

fn erf(x: f64) -> f64 {
    // Abramowitz–Stegun 7.1.26 is too coarse; integrate instead (Simpson, 2000 panels).
    let n = 2000;
    let h = x / n as f64;
    let f = |s: f64| (-s * s).exp();
    let mut s = f(0.0) + f(x);
    for i in 1..n {
        s += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
}

/// The forward pass written out on the host from the PyTorch-layout tensors: checks the
/// layout (`net.{2i}.weight` is `[d_out, d_in]`), the input order `[x, e(t), c]` and the embedding.
#[allow(clippy::needless_range_loop)] // index loops mirror the formula
fn host_forward(
    cfg: &MlpFieldConfig,
    tensors: &[ferroflow::model::HostTensor],
    x: &[f64],
    t: f64,
    class: Option<usize>,
) -> Vec<f64> {
    let specs = cfg.tensor_specs();
    let get = |name: &str| &tensors[specs.iter().position(|s| s.name == name).unwrap()];
    let mut h: Vec<f64> = x.to_vec();
    match cfg.time_embedding {
        TimeEmbeddingConfig::Raw => h.push(t),
        _ => {
            let w = get("time_embedding.freqs");
            let th: Vec<f64> = w.data.iter().map(|&f| f as f64 * t).collect();
            h.extend(th.iter().map(|a| a.cos()));
            h.extend(th.iter().map(|a| a.sin()));
        }
    }
    if let (ConditionConfig::Class { d_embed, .. }, Some(c)) = (cfg.condition, class) {
        let e = get("class_embedding.weight");
        h.extend(e.data[c * d_embed..(c + 1) * d_embed].iter().map(|&v| v as f64));
    }
    let n_lin = cfg.n_hidden + 1;
    for l in 0..n_lin {
        let w = get(&format!("net.{}.weight", 2 * l));
        let b = get(&format!("net.{}.bias", 2 * l));
        let (d_out, d_in) = (w.shape[0], w.shape[1]);
        assert_eq!(d_in, h.len());
        let mut o = vec![0.0; d_out];
        for i in 0..d_out {
            let mut s = b.data[i] as f64;
            for j in 0..d_in {
                s += w.data[i * d_in + j] as f64 * h[j];
            }
            o[i] = if l + 1 < n_lin { act(cfg.activation, s) } else { s };
        }
        h = o;
    }
    h
}

#[test]
fn mlp_forward_equals_the_pytorch_layout_written_out() {
    let d = Default::default();
    for (activation, te, cond) in [
        (Activation::Silu, TimeEmbeddingConfig::Raw, ConditionConfig::None),
        (
            Activation::Gelu,
            TimeEmbeddingConfig::Sinusoidal { dim: 8, max_period: 100.0, scale: 10.0 },
            ConditionConfig::None,
        ),
        (
            Activation::Tanh,
            TimeEmbeddingConfig::Fourier { dim: 6, std: 2.0 },
            ConditionConfig::Class { n_classes: 3, d_embed: 4 },
        ),
        (Activation::Relu, TimeEmbeddingConfig::Raw, ConditionConfig::Class { n_classes: 2, d_embed: 3 }),
    ] {
        let cfg =
            MlpFieldConfig { d_input: 3, d_hidden: 16, n_hidden: 2, activation, time_embedding: te, condition: cond };
        let model = cfg.init::<Cpu>(&d, &mut rng::seeded(5));
        let tensors = model.to_tensors();
        let xs = [[0.3, -1.2, 2.0], [-0.7, 0.1, 0.5]];
        let ts = [0.25, 0.9];
        let x = Tensor::<Cpu, 2>::from_floats([[0.3, -1.2, 2.0], [-0.7, 0.1, 0.5]], &d);
        let t = Tensor::<Cpu, 1>::from_floats(ts, &d);
        let labels = [1usize, 0];
        let c = match cond {
            ConditionConfig::Class { .. } => Some(Condition::Class(Tensor::<Cpu, 1, Int>::from_data(
                TensorData::new(labels.iter().map(|&l| l as i64).collect::<Vec<_>>(), [2]),
                &d,
            ))),
            _ => None,
        };
        let v = model.velocity(x, t, c.as_ref()).into_data().into_vec::<f32>().unwrap();
        for r in 0..2 {
            let want = host_forward(&cfg, &tensors, &xs[r], ts[r], c.as_ref().map(|_| labels[r]));
            for k in 0..3 {
                let got = v[r * 3 + k] as f64;
                // f32 accumulation over ≤ 16 terms of size ~1: 1e-5 absolute is generous
                assert!((got - want[k]).abs() < 1e-5, "{activation:?} row {r} coord {k}: {got} vs {want:?}");
            }
        }
    }
}

#[test]
fn w2d_mlp_has_pytorch_default_init_bounds() {
    let cfg = MlpFieldConfig::default();
    assert_eq!(cfg.num_params(), 133_122);
    let model = cfg.init::<Cpu>(&Default::default(), &mut rng::seeded(0));
    let t = model.to_tensors();
    // net.2.weight: U(−1/16, 1/16) → max |w| just below 1/16, variance 1/(3·256)
    let w = &t[2];
    assert_eq!(w.shape, vec![256, 256]);
    let max = w.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    assert!(max < 1.0 / 16.0 && max > 0.99 / 16.0, "{max}");
    let var = w.data.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / w.data.len() as f64;
    assert!((var - 1.0 / 768.0).abs() < 0.02 / 768.0 * 10.0, "{var}");
}

#[test]
fn null_class_is_the_last_embedding_row() {
    let d = Default::default();
    let cfg = MlpFieldConfig {
        d_input: 2,
        d_hidden: 8,
        n_hidden: 1,
        condition: ConditionConfig::Class { n_classes: 4, d_embed: 3 },
        ..Default::default()
    };
    let m = cfg.init::<Cpu64>(&d, &mut rng::seeded(3));
    let x = Tensor::<Cpu64, 2>::from_floats([[0.5, -0.5]], &d);
    let t = Tensor::<Cpu64, 1>::from_floats([0.4], &d);
    let null = Condition::Class(Tensor::<Cpu64, 1, Int>::from_data(TensorData::new(vec![4i64], [1]), &d));
    let a = m.velocity(x.clone(), t.clone(), Some(&null)).into_data().into_vec::<f64>().unwrap();
    let b = m.velocity(x.clone(), t.clone(), None).into_data().into_vec::<f64>().unwrap();
    let c0 = Condition::Class(Tensor::<Cpu64, 1, Int>::from_data(TensorData::new(vec![0i64], [1]), &d));
    let c = m.velocity(x, t, Some(&c0)).into_data().into_vec::<f64>().unwrap();
    assert_eq!(a, b);
    assert!((a[0] - c[0]).abs() > 1e-6);
}
