//! The U-Net field: shapes and zero output at init, the spec's parameter count and names,
//! checkpoint round trip, class conditioning, config checks, and a short training run.

use burn::module::{AutodiffModule, Module};
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use ferroflow::backend::{Cpu, Cpu64, CpuAutodiff};
use ferroflow::model::{Condition, HostTensor, UNetConfig, VelocityField};
use ferroflow::objective::cfm_loss;
use ferroflow::rng;
use ferroflow::train::{Adam, OptimizerConfig};

fn labels<B: burn::tensor::backend::Backend>(l: &[i64], d: &B::Device) -> Condition<B> {
    Condition::Class(Tensor::<B, 1, Int>::from_data(TensorData::new(l.to_vec(), [l.len()]), d))
}

/// Every tensor of `ts` moved by N(0, scale²) noise.
fn perturbed(ts: Vec<HostTensor>, seed: u64, scale: f32) -> Vec<HostTensor> {
    let mut r = rng::seeded(seed);
    ts.into_iter()
        .map(|mut t| {
            let e = rng::normal_vec(&mut r, t.data.len());
            t.data.iter_mut().zip(e).for_each(|(v, e)| *v += scale * e);
            t
        })
        .collect()
}

fn tiny() -> UNetConfig {
    UNetConfig {
        channels: 1,
        height: 8,
        width: 8,
        base_channels: 8,
        channel_mult: vec![1, 2],
        res_blocks: 1,
        groups: 4,
        n_classes: Some(10),
        attention: true,
    }
}

#[test]
fn default_unets_give_zero_velocity_of_the_image_shape_at_init() {
    let d = Default::default();
    for size in [16, 28] {
        let cfg = UNetConfig { height: size, width: size, ..Default::default() };
        cfg.validate().unwrap();
        let m = cfg.init::<Cpu>(&d, &mut rng::seeded(0));
        let dim = size * size;
        assert_eq!(m.dim(), dim);
        let x =
            Tensor::<Cpu, 2>::from_data(TensorData::new(rng::normal_vec(&mut rng::seeded(1), 2 * dim), [2, dim]), &d);
        let v = m.velocity(x, Tensor::from_floats([0.2, 0.9], &d), Some(&labels(&[3, 10], &d)));
        assert_eq!(v.dims(), [2, dim]);
        // out_conv's weight and bias are zero at init, so v = 0 exactly.
        assert!(v.into_data().into_vec::<f32>().unwrap().iter().all(|&a| a == 0.0));
    }
}

#[test]
fn default_config_has_the_hand_counted_parameters() {
    // ch = 32, 4ch = 128, C = 1, 11 class rows. ResBlock(i → o) =
    //   norm1 2i + conv1 (9io + o) + emb_proj (128o + o) + norm2 2o + conv2 (9o² + o) [+ skip io + o]:
    //   R(32→32) = 22,752   R(32→64) = 65,984   R(64→64) = 82,368   R(128→64) = 127,616
    //   R(96→64) = 107,072  R(96→32) = 44,416   R(64→32) = 34,112
    // time_mlp 32·128+128 + 128·128+128 = 20,736; class_embed 11·128 = 1,408; conv_in 9·32+32 = 320
    // down: R(32→32) + ds32 (9·32²+32 = 9,248) + R(32→64) + ds64 (9·64²+64 = 36,928) + R(64→64) = 217,280
    // mid: 2·R(64→64) + attn (norm 128 + qkv 64·192+192 + proj 64·64+64 = 16,768) = 181,504
    // up.2: 2·R(128→64) + us64 = 292,160; up.1: R(128→64) + R(96→64) + us64 = 271,616;
    // up.0: R(96→32) + R(64→32) = 78,528; out_norm 64 + out_conv 9·32+1 = 353
    // total 20,736 + 1,408 + 320 + 217,280 + 181,504 + 292,160 + 271,616 + 78,528 + 353 = 1,063,905
    let cfg = UNetConfig::default();
    assert_eq!(cfg.num_params(), 1_063_905);
    // The specs describe the module burn builds, tensor by tensor, in visit order.
    let m = cfg.init::<Cpu>(&Default::default(), &mut rng::seeded(0));
    let ts = m.to_tensors();
    let specs = cfg.tensor_specs();
    assert_eq!(ts.len(), specs.len());
    for (t, s) in ts.iter().zip(&specs) {
        assert_eq!(t.shape, s.shape, "{}", s.name);
    }
    assert_eq!(m.num_params(), 1_063_905);
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    let pos = |n: &str| names.iter().position(|&m| m == n).unwrap_or_else(|| panic!("{n} missing"));
    // The spec's names, in its order.
    let order = [
        "time_mlp.0.weight",
        "time_mlp.2.bias",
        "class_embed.weight",
        "conv_in.weight",
        "down.0.res.0.norm1.weight",
        "down.0.res.0.emb_proj.weight",
        "down.0.downsample.weight",
        "down.1.res.0.skip.weight",
        "mid.res1.conv2.bias",
        "mid.attn.norm.weight",
        "mid.attn.qkv.weight",
        "mid.attn.proj.bias",
        "mid.res2.norm1.weight",
        "up.0.res.1.conv1.weight",
        "up.1.upsample.weight",
        "up.2.res.1.skip.bias",
        "up.2.upsample.bias",
        "out_norm.weight",
        "out_conv.bias",
    ];
    for w in order.windows(2) {
        assert!(pos(w[0]) < pos(w[1]), "{} before {}", w[0], w[1]);
    }
    assert!(!names.contains(&"down.2.downsample.weight") && !names.contains(&"up.0.upsample.weight"));
    assert_eq!(specs[pos("up.1.res.1.conv1.weight")].shape, vec![64, 96, 3, 3]); // cat(64, 32) → 64
    assert!(specs[pos("time_mlp.0.weight")].transposed && !specs[pos("conv_in.weight")].transposed);
}

#[test]
fn checkpoint_round_trip_gives_the_same_velocities() {
    let d = Default::default();
    let cfg = tiny();
    let m = cfg.init::<Cpu>(&d, &mut rng::seeded(4));
    let ts = perturbed(m.to_tensors(), 5, 0.1);
    let a = cfg.from_tensors::<Cpu>(&ts, &d);
    assert_eq!(a.to_tensors(), ts);
    let b = cfg.from_tensors::<Cpu>(&a.to_tensors(), &d);
    let x = Tensor::<Cpu, 2>::from_data(TensorData::new(rng::normal_vec(&mut rng::seeded(6), 3 * 64), [3, 64]), &d);
    let t = Tensor::<Cpu, 1>::from_floats([0.1, 0.5, 0.95], &d);
    let c = labels(&[1, 7, 10], &d);
    let va = a.velocity(x.clone(), t.clone(), Some(&c)).into_data().into_vec::<f32>().unwrap();
    let vb = b.velocity(x, t, Some(&c)).into_data().into_vec::<f32>().unwrap();
    assert_eq!(va, vb);
    assert!(va.iter().any(|v| v.abs() > 1e-3));
}

#[test]
fn class_embedding_changes_the_output_and_no_label_is_the_null_class() {
    let d = Default::default();
    let cfg = tiny();
    let m0 = cfg.init::<Cpu64>(&d, &mut rng::seeded(7));
    let m = cfg.from_tensors::<Cpu64>(&perturbed(m0.to_tensors(), 8, 0.1), &d);
    let x = Tensor::<Cpu64, 2>::from_data(
        TensorData::new(rng::normal_vec(&mut rng::seeded(9), 2 * 64), [2, 64]).convert::<f64>(),
        &d,
    );
    let t = Tensor::<Cpu64, 1>::from_floats([0.5, 0.5], &d);
    let v = |c: Option<&Condition<Cpu64>>| m.velocity(x.clone(), t.clone(), c).into_data().into_vec::<f64>().unwrap();
    let (v0, v1, vnull, vnone) =
        (v(Some(&labels(&[0, 0], &d))), v(Some(&labels(&[1, 1], &d))), v(Some(&labels(&[10, 10], &d))), v(None));
    assert_eq!(vnull, vnone);
    let diff = v0.iter().zip(&v1).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
    assert!(diff > 1e-3, "class 0 and 1 give the same velocity (max diff {diff:e})");
}

#[test]
fn config_errors_name_the_bad_setting() {
    let msg = |c: UNetConfig| c.validate().unwrap_err().to_string();
    assert!(msg(UNetConfig { groups: 5, ..Default::default() }).contains("model.groups = 5 must divide"));
    assert!(msg(UNetConfig { width: 30, ..Default::default() }).contains("divisible by 4"));
    assert!(msg(UNetConfig { base_channels: 33, ..Default::default() }).contains("model.base_channels = 33"));
    assert!(msg(UNetConfig { channel_mult: vec![], ..Default::default() }).contains("levels"));
    assert!(msg(UNetConfig { n_classes: Some(0), ..Default::default() }).contains("model.n_classes = 0"));
    // 28×28 with 3 levels: 28 → 14 → 7 is fine; with 4 levels it is not.
    assert!(UNetConfig { height: 28, width: 28, ..Default::default() }.validate().is_ok());
    assert!(
        msg(UNetConfig { height: 28, width: 28, channel_mult: vec![1, 2, 2, 2], ..Default::default() })
            .contains("divisible by 8")
    );
    // TOML: defaults for what is absent, unknown keys rejected.
    let c: UNetConfig = toml::from_str("base_channels = 16\nchannel_mult = [1, 2]").unwrap();
    assert_eq!((c.base_channels, c.channel_mult.len(), c.groups), (16, 2, 8));
    assert!(toml::from_str::<UNetConfig>("base_chanels = 16").is_err());
}

#[test]
fn tiny_unet_lowers_the_cfm_loss_in_30_adam_steps() {
    let d = Default::default();
    let cfg = tiny();
    let mut model = cfg.init::<CpuAutodiff>(&d, &mut rng::seeded(10));
    let n = 8;
    let mut r = rng::seeded(11);
    // x1: a bright square on a dark background, x0 ~ N(0, I), fixed t: one fixed batch.
    let x1: Vec<f32> = (0..n * 64)
        .map(|i| if (2..6).contains(&(i % 64 / 8)) && (2..6).contains(&(i % 8)) { 1.0 } else { -1.0 })
        .collect();
    let x0 = rng::normal_vec(&mut r, n * 64);
    let t: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
    let xt: Vec<f32> = (0..n * 64).map(|i| (1.0 - t[i / 64]) * x0[i] + t[i / 64] * x1[i]).collect();
    let ut: Vec<f32> = (0..n * 64).map(|i| x1[i] - x0[i]).collect();
    let xt = Tensor::<CpuAutodiff, 2>::from_data(TensorData::new(xt, [n, 64]), &d);
    let ut = Tensor::<CpuAutodiff, 2>::from_data(TensorData::new(ut, [n, 64]), &d);
    let t = Tensor::<CpuAutodiff, 1>::from_data(TensorData::new(t, [n]), &d);
    let c = labels::<CpuAutodiff>(&[0, 1, 2, 3, 4, 5, 6, 10], &d);
    let mut optim = Adam::new(OptimizerConfig::default());
    let mut losses = Vec::new();
    for _ in 0..30 {
        let loss = cfm_loss(model.velocity(xt.clone(), t.clone(), Some(&c)), ut.clone());
        losses.push(loss.clone().into_scalar());
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(model, &mut grads, 3e-3, 1.0);
    }
    // At init v = 0, so the loss is mean (x1 − x0)² ≈ 2; fitting one fixed batch must take
    // a large part of it away in 30 steps.
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(last < 0.6 * first, "loss {first} → {last}: {losses:?}");
    // The trained weights left the zero init of out_conv.
    let ts = model.valid().to_tensors();
    assert!(ts.last().unwrap().data.iter().any(|&b| b != 0.0));
}

/// The same U-Net in both frameworks: a small U-Net with every parameter random, built by the
/// PyTorch twin and saved under torch's state-dict names, loads into ferroflow and gives torch's
/// velocities (float64 on both sides) for four labels and the null class at t from 0 to 1.
/// Golden file made by `benches/peers/unet_golden.py` (torch 2.x).
#[test]
fn torch_unet_weights_give_torch_velocities() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/unet_torch_golden.safetensors");
    let ck = ferroflow::checkpoint::Checkpoint::read(&path).unwrap();
    let cfg: UNetConfig = serde_json::from_str(ck.meta("ferroflow.model").unwrap()).unwrap();
    assert_eq!(cfg, tiny());
    let tensors = ck.tensors_for(&cfg.tensor_specs(), "").unwrap();
    let d = Default::default();
    let m = cfg.from_tensors::<Cpu64>(&tensors, &d);
    let g = |name: &str| ck.tensors[name].clone();
    let (x, t, y, v, v_lo) = (g("golden.x"), g("golden.t"), g("golden.labels"), g("golden.v"), g("golden.v_lo"));
    let (b, dim) = (x.shape[0], x.shape[1]);
    let to64 = |h: &HostTensor| h.data.iter().map(|&a| a as f64).collect::<Vec<f64>>();
    let xs = Tensor::<Cpu64, 2>::from_data(TensorData::new(to64(&x), [b, dim]), &d);
    let ts = Tensor::<Cpu64, 1>::from_data(TensorData::new(to64(&t), [b]), &d);
    let ls: Vec<i64> = y.data.iter().map(|&l| l as i64).collect();
    assert_eq!(ls, [0, 3, 9, 10, 7]);
    let ours = m.velocity(xs, ts, Some(&labels(&ls, &d))).into_data().into_vec::<f64>().unwrap();
    let want: Vec<f64> = v.data.iter().zip(&v_lo.data).map(|(&h, &l)| h as f64 + l as f64).collect();
    let scale = want.iter().fold(0f64, |a, &w| a.max(w.abs()));
    assert!(scale > 0.5, "the golden velocities are not trivial: max |v| = {scale}");
    let err = ours.iter().zip(&want).fold(0f64, |a, (o, w)| a.max((o - w).abs()));
    assert!(err < 1e-9 * scale, "max |v_ours − v_torch| = {err:e} (max |v| = {scale})");
}
