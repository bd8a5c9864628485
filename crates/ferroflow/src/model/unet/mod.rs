//! The U-Net velocity field for images (DDPM, Ho et al. 2020, App. B; guided-diffusion,
//! Dhariwal & Nichol 2021), as written in ferroflow's U-Net spec so that a PyTorch twin built
//! from the same spec gives the same velocities from the same weights.
//!
//! # Architecture
//! - time: e = [cos(1000t·f), sin(1000t·f)], f_k = exp(−ln(10000)·k/(ch/2)) (guided-diffusion's
//!   `timestep_embedding`, cos first; t = 0 noise, t = 1 data); `time_mlp.0` Linear(ch → 4ch),
//!   SiLU, `time_mlp.2` Linear(4ch → 4ch) → emb;
//! - class: emb += `class_embed`(label), the label `n_classes` being the null class (used when
//!   no label is given; classifier-free guidance, Ho & Salimans 2022);
//! - `conv_in` 3×3 (C → ch); down levels i = 0…L−1 of `res_blocks` [`ResBlock`]s to ch·mult\[i\]
//!   and a stride-2 `downsample` conv (not at the last level), each output kept as a skip;
//!   `mid` = ResBlock, [`AttnBlock`] (if `attention`), ResBlock; up levels i = L−1…0 of
//!   `res_blocks + 1` ResBlocks on [h, skip] concatenated along channels, then nearest ×2 and an
//!   `upsample` 3×3 conv (not at level 0); `out_norm` GroupNorm, SiLU, `out_conv` 3×3 (ch → C).
//!
//! # Checkpoint names
//! The PyTorch `state_dict` names of the spec: `time_mlp.{0,2}.{weight,bias}`,
//! `class_embed.weight`, `conv_in.*`, `down.{i}.res.{j}.{norm1,conv1,emb_proj,norm2,conv2,skip}.*`,
//! `down.{i}.downsample.*`, `mid.{res1,attn,res2}.*` (`attn.{norm,qkv,proj}`),
//! `up.{i}.res.{j}.*`, `up.{i}.upsample.*`, `out_norm.*`, `out_conv.*`
//! (see [`UNetConfig::tensor_specs`]). `up.{i}` is indexed by level, although the levels run
//! from L−1 down to 0.

mod blocks;
mod jvp;

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{Embedding, GroupNorm, Linear};
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use serde::{Deserialize, Serialize};

pub use blocks::{AttnBlock, DownLevel, MidBlock, ResBlock, UpLevel};

use super::embed::{TimeEmbedding, TimeEmbeddingConfig};
use super::field::{Condition, VelocityField};
use super::jvp_conv::{group_norm, upsample_nearest2};
use super::mlp::{Activation, TensorSpec};
use super::params::{HostTensor, collect_params, replace_params};
use crate::error::ConfigError;

/// Settings of a [`UNet`]. The defaults are the spec's 16×16 MNIST model
/// (1,063,905 parameters, see [`UNetConfig::num_params`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UNetConfig {
    /// Image channels C.
    pub channels: usize,
    /// Image height H.
    pub height: usize,
    /// Image width W.
    pub width: usize,
    /// Base channel count ch (features of the first level; the embedding has 4·ch).
    pub base_channels: usize,
    /// Channel multiplier of each level (levels L = its length): level i has ch·mult\[i\] channels.
    pub channel_mult: Vec<usize>,
    /// Residual blocks per down level (the up levels have one more).
    pub res_blocks: usize,
    /// GroupNorm groups; must divide every channel count.
    pub groups: usize,
    /// Number of classes for a class-conditional field (the label `n_classes` is the null
    /// class); `None`: unconditional.
    pub n_classes: Option<usize>,
    /// Self-attention in the middle block.
    pub attention: bool,
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self {
            channels: 1,
            height: 16,
            width: 16,
            base_channels: 32,
            channel_mult: vec![1, 2, 2],
            res_blocks: 1,
            groups: 8,
            n_classes: Some(10),
            attention: true,
        }
    }
}

/// Largest number of spatial positions attention may see (its score matrix is N² per image).
const MAX_ATTENTION_POSITIONS: usize = 4096;

/// The channel plan: `[c_in, c_out]` of every residual block and the channels of every
/// resampling conv, per level.
struct Plan {
    down: Vec<(Vec<[usize; 2]>, Option<usize>)>,
    mid: usize,
    /// Indexed by level (run from L−1 down to 0).
    up: Vec<(Vec<[usize; 2]>, Option<usize>)>,
}

impl UNetConfig {
    /// The number of levels L.
    pub fn levels(&self) -> usize {
        self.channel_mult.len()
    }

    /// The dimension of the flattened images, C·H·W.
    pub fn dim(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Size of the time (and class) embedding, 4·ch.
    pub fn d_emb(&self) -> usize {
        4 * self.base_channels
    }

    /// Checks the sizes and their consistency.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for a size out of its range; [`ConfigError::Inconsistent`]
    /// when `groups` does not divide a channel count, when H or W is not divisible by
    /// 2^(L−1), or when attention would see too many positions.
    ///
    /// ```
    /// use ferroflow::model::UNetConfig;
    /// assert!(UNetConfig::default().validate().is_ok());
    /// let bad = UNetConfig { height: 18, ..Default::default() };
    /// assert!(bad.validate().unwrap_err().to_string().contains("divisible by 4"));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |name, value: String, expected| Err(ConfigError::OutOfRange { name, value, expected });
        let sizes: [(&'static str, usize, usize, usize, &'static str); 7] = [
            ("model.channels", self.channels, 1, 64, "1..=64"),
            ("model.height", self.height, 1, 1024, "1..=1024"),
            ("model.width", self.width, 1, 1024, "1..=1024"),
            ("model.base_channels", self.base_channels, 2, 4096, "an even number in 2..=4096"),
            ("model.res_blocks", self.res_blocks, 0, 16, "0..=16"),
            ("model.groups", self.groups, 1, 1024, "1..=1024"),
            ("model.channel_mult (levels)", self.levels(), 1, 8, "1..=8 levels"),
        ];
        for (name, v, lo, hi, expected) in sizes {
            if v < lo || v > hi {
                return bad(name, v.to_string(), expected);
            }
        }
        if self.base_channels % 2 == 1 {
            return bad("model.base_channels", self.base_channels.to_string(), "an even number in 2..=4096");
        }
        if let Some(&m) = self.channel_mult.iter().find(|&&m| m == 0 || m > 64) {
            return bad("model.channel_mult", format!("{:?} (entry {m})", self.channel_mult), "entries in 1..=64");
        }
        if let Some(n) = self.n_classes
            && (n == 0 || n > 1 << 20)
        {
            return bad("model.n_classes", n.to_string(), "1..=1048576 (or absent for an unconditional field)");
        }
        let chans = std::iter::once(self.base_channels).chain(self.channel_mult.iter().map(|m| m * self.base_channels));
        for c in chans {
            if !c.is_multiple_of(self.groups) {
                return Err(ConfigError::Inconsistent(format!(
                    "model.groups = {} must divide every channel count, but not {c} (base_channels {} × channel_mult {:?})",
                    self.groups, self.base_channels, self.channel_mult
                )));
            }
        }
        let f = 1usize << (self.levels() - 1);
        if !self.height.is_multiple_of(f) || !self.width.is_multiple_of(f) {
            return Err(ConfigError::Inconsistent(format!(
                "image {}×{} must have height and width divisible by {f} = 2^(levels − 1) for {} levels",
                self.height,
                self.width,
                self.levels()
            )));
        }
        let positions = (self.height / f) * (self.width / f);
        if self.attention && positions > MAX_ATTENTION_POSITIONS {
            return Err(ConfigError::Inconsistent(format!(
                "attention at the lowest resolution {}×{} would see {positions} positions (at most {MAX_ATTENTION_POSITIONS}): add a level or turn attention off",
                self.height / f,
                self.width / f
            )));
        }
        Ok(())
    }

    fn plan(&self) -> Plan {
        let ch = self.base_channels;
        let levels = self.levels();
        let mut c = ch;
        let mut hs = vec![ch];
        let mut down = Vec::new();
        for (i, m) in self.channel_mult.iter().enumerate() {
            let c_out = ch * m;
            let mut res = Vec::new();
            for _ in 0..self.res_blocks {
                res.push([c, c_out]);
                c = c_out;
                hs.push(c);
            }
            let ds = (i + 1 < levels).then_some(c);
            if ds.is_some() {
                hs.push(c);
            }
            down.push((res, ds));
        }
        let mid = c;
        let mut up = Vec::new();
        for i in (0..levels).rev() {
            let c_out = ch * self.channel_mult[i];
            let mut res = Vec::new();
            for _ in 0..self.res_blocks + 1 {
                let skip = hs.pop().expect("one skip per up block");
                res.push([c + skip, c_out]);
                c = c_out;
            }
            up.push((res, (i > 0).then_some(c)));
        }
        up.reverse();
        debug_assert!(hs.is_empty());
        Plan { down, mid, up }
    }

    fn time_embedding(&self) -> TimeEmbeddingConfig {
        TimeEmbeddingConfig::Sinusoidal { dim: self.base_channels, max_period: 10_000.0, scale: 1000.0 }
    }

    /// Builds the U-Net with the spec's initialisation drawn from `rng` (in visit order, weight
    /// before bias): every Conv2d and Linear weight and bias ~ U(−1/√fan_in, 1/√fan_in)
    /// (PyTorch's default), `class_embed` ~ N(0, 1), GroupNorm weight 1 and bias 0, and
    /// `out_conv` weight and bias 0, so that v = 0 at init.
    ///
    /// # Panics
    /// If the config is invalid (call [`Self::validate`] first).
    pub fn init<B: Backend>(&self, device: &B::Device, rng: &mut crate::rng::Rng) -> UNet<B> {
        let (ch, d_emb, g) = (self.base_channels, self.d_emb(), self.groups);
        let plan = self.plan();
        let time_mlp_0 = blocks::linear(device, rng, ch, d_emb);
        let time_mlp_2 = blocks::linear(device, rng, d_emb, d_emb);
        let class_embed = self.n_classes.map(|n| {
            let w = crate::rng::normal_vec(rng, (n + 1) * d_emb);
            Embedding { weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [n + 1, d_emb]), device)) }
        });
        let conv_in = blocks::conv(device, rng, [self.channels, ch], 3, 1, false);
        let res = |rng: &mut crate::rng::Rng, io: [usize; 2]| ResBlock::init(device, rng, io, d_emb, g);
        let down = plan
            .down
            .iter()
            .map(|(blocks, ds)| DownLevel {
                res: blocks.iter().map(|&io| res(rng, io)).collect(),
                downsample: ds.map(|c| blocks::conv(device, rng, [c, c], 3, 2, false)),
            })
            .collect();
        let c = plan.mid;
        let mid = MidBlock {
            res1: res(rng, [c, c]),
            attn: self.attention.then(|| AttnBlock::init(device, rng, c, g)),
            res2: res(rng, [c, c]),
        };
        let up = plan
            .up
            .iter()
            .map(|(blocks, us)| UpLevel {
                res: blocks.iter().map(|&io| res(rng, io)).collect(),
                upsample: us.map(|c| blocks::conv(device, rng, [c, c], 3, 1, false)),
            })
            .collect();
        UNet {
            time_mlp_0,
            time_mlp_2,
            class_embed,
            conv_in,
            down,
            mid,
            up,
            out_norm: blocks::group_norm_init(device, g, ch),
            out_conv: blocks::conv(device, rng, [ch, self.channels], 3, 1, true),
            time_embedding: self.time_embedding().init(device, rng),
            config: self.clone(),
        }
    }

    /// The tensors of this field in a checkpoint, with the spec's PyTorch `state_dict` names,
    /// in the order burn visits them (all trained; the time embedding's frequencies are
    /// recomputed from the config, not stored).
    ///
    /// ```
    /// use ferroflow::model::UNetConfig;
    /// let specs = UNetConfig::default().tensor_specs();
    /// assert_eq!(specs[0].name, "time_mlp.0.weight");
    /// assert_eq!(specs[0].shape, vec![128, 32]); // PyTorch's [out, in]
    /// assert_eq!(specs.last().unwrap().name, "out_conv.bias");
    /// ```
    pub fn tensor_specs(&self) -> Vec<TensorSpec> {
        let mut s = Vec::new();
        let mut push = |name: String, shape: Vec<usize>, transposed: bool| {
            s.push(TensorSpec { name, shape, transposed, trained: true })
        };
        let (ch, d_emb) = (self.base_channels, self.d_emb());
        let linear = |push: &mut dyn FnMut(String, Vec<usize>, bool), p: &str, i: usize, o: usize| {
            push(format!("{p}.weight"), vec![o, i], true);
            push(format!("{p}.bias"), vec![o], false);
        };
        let conv = |push: &mut dyn FnMut(String, Vec<usize>, bool), p: &str, i: usize, o: usize, k: usize| {
            push(format!("{p}.weight"), vec![o, i, k, k], false);
            push(format!("{p}.bias"), vec![o], false);
        };
        let norm = |push: &mut dyn FnMut(String, Vec<usize>, bool), p: &str, c: usize| {
            push(format!("{p}.weight"), vec![c], false);
            push(format!("{p}.bias"), vec![c], false);
        };
        let res = |push: &mut dyn FnMut(String, Vec<usize>, bool), p: &str, [i, o]: [usize; 2]| {
            norm(push, &format!("{p}.norm1"), i);
            conv(push, &format!("{p}.conv1"), i, o, 3);
            linear(push, &format!("{p}.emb_proj"), d_emb, o);
            norm(push, &format!("{p}.norm2"), o);
            conv(push, &format!("{p}.conv2"), o, o, 3);
            if i != o {
                conv(push, &format!("{p}.skip"), i, o, 1);
            }
        };
        let plan = self.plan();
        linear(&mut push, "time_mlp.0", ch, d_emb);
        linear(&mut push, "time_mlp.2", d_emb, d_emb);
        if let Some(n) = self.n_classes {
            push("class_embed.weight".into(), vec![n + 1, d_emb], false);
        }
        conv(&mut push, "conv_in", self.channels, ch, 3);
        for (i, (blocks, ds)) in plan.down.iter().enumerate() {
            for (j, &io) in blocks.iter().enumerate() {
                res(&mut push, &format!("down.{i}.res.{j}"), io);
            }
            if let Some(c) = ds {
                conv(&mut push, &format!("down.{i}.downsample"), *c, *c, 3);
            }
        }
        let c = plan.mid;
        res(&mut push, "mid.res1", [c, c]);
        if self.attention {
            norm(&mut push, "mid.attn.norm", c);
            conv(&mut push, "mid.attn.qkv", c, 3 * c, 1);
            conv(&mut push, "mid.attn.proj", c, c, 1);
        }
        res(&mut push, "mid.res2", [c, c]);
        for (i, (blocks, us)) in plan.up.iter().enumerate() {
            for (j, &io) in blocks.iter().enumerate() {
                res(&mut push, &format!("up.{i}.res.{j}"), io);
            }
            if let Some(c) = us {
                conv(&mut push, &format!("up.{i}.upsample"), *c, *c, 3);
            }
        }
        norm(&mut push, "out_norm", ch);
        conv(&mut push, "out_conv", ch, self.channels, 3);
        s
    }

    /// Number of trained parameters (the sum of [`Self::tensor_specs`] sizes).
    ///
    /// ```
    /// use ferroflow::model::UNetConfig;
    /// assert_eq!(UNetConfig::default().num_params(), 1_063_905);
    /// ```
    pub fn num_params(&self) -> usize {
        self.tensor_specs().iter().map(|s| s.shape.iter().product::<usize>()).sum()
    }

    /// Builds the field from tensors in PyTorch layout, one per [`Self::tensor_specs`] entry,
    /// in that order. Callers check names and shapes first (see [`crate::checkpoint`]).
    ///
    /// # Panics
    /// If the number or shapes of `tensors` do not match the specs.
    pub fn from_tensors<B: Backend>(&self, tensors: &[HostTensor], device: &B::Device) -> UNet<B> {
        let specs = self.tensor_specs();
        assert_eq!(specs.len(), tensors.len(), "one tensor per spec");
        let burn_layout: Vec<HostTensor> =
            specs.iter().zip(tensors).map(|(s, t)| if s.transposed { t.transposed() } else { t.clone() }).collect();
        // The structure (and the constant time frequencies) from a throw-away init, then every
        // parameter replaced in visit order.
        replace_params(self.init(device, &mut crate::rng::seeded(0)), &burn_layout)
    }
}

/// The U-Net velocity field v(x, t | c) on flattened images.
///
/// # Shapes
/// `x: [batch, C·H·W]` (row-major C, H, W), `t: [batch]`, optional class labels `[batch]`
/// (the label `n_classes` = null class; no label = null class) → `[batch, C·H·W]`
#[derive(Module, Debug)]
pub struct UNet<B: Backend> {
    /// `time_mlp.0`: Linear(ch → 4ch).
    pub time_mlp_0: Linear<B>,
    /// `time_mlp.2`: Linear(4ch → 4ch).
    pub time_mlp_2: Linear<B>,
    /// `class_embed`: Embedding(n_classes + 1, 4ch), if class-conditional.
    pub class_embed: Option<Embedding<B>>,
    /// `conv_in`: 3×3, C → ch.
    pub conv_in: Conv2d<B>,
    /// `down.{i}`, i = 0…L−1.
    pub down: Vec<DownLevel<B>>,
    /// `mid`.
    pub mid: MidBlock<B>,
    /// `up.{i}`, indexed by level i = 0…L−1 (run from L−1 to 0).
    pub up: Vec<UpLevel<B>>,
    /// `out_norm`: GroupNorm(groups, ch).
    pub out_norm: GroupNorm<B>,
    /// `out_conv`: 3×3, ch → C (zero at init).
    pub out_conv: Conv2d<B>,
    /// The sinusoidal time features (constants).
    pub time_embedding: TimeEmbedding<B>,
    /// The settings it was built from.
    #[module(skip)]
    pub config: UNetConfig,
}

impl<B: Backend> UNet<B> {
    /// The class label of every row, if the field is class-conditional: the given labels, or
    /// the null class when none are given.
    fn class_rows(&self, n: usize, cond: Option<&Condition<B>>) -> Option<Tensor<B, 2>> {
        let table = self.class_embed.as_ref()?.weight.val();
        Some(match cond {
            Some(Condition::Class(labels)) => table.select(0, labels.clone()),
            _ => {
                let null = self.config.n_classes.expect("class_embed implies n_classes");
                table.narrow(0, null, 1).repeat_dim(0, n)
            }
        })
    }

    /// SiLU(emb): the embedding every residual block projects.
    ///
    /// # Shapes
    /// `t: [batch]` → `[batch, 4ch]`
    fn embedding(&self, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let [n] = t.dims();
        let e = self.time_embedding.forward(t);
        let mut emb = self.time_mlp_2.forward(Activation::Silu.apply(self.time_mlp_0.forward(e)));
        if let Some(c) = self.class_rows(n, cond) {
            emb = emb + c;
        }
        Activation::Silu.apply(emb)
    }

    /// The forward pass on images.
    ///
    /// # Shapes
    /// `x: [batch, C, H, W]`, `t: [batch]` → `[batch, C, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 4> {
        let semb = self.embedding(t, cond);
        let mut h = self.conv_in.forward(x);
        let mut hs = vec![h.clone()];
        for level in &self.down {
            for block in &level.res {
                h = block.forward(h, semb.clone());
                hs.push(h.clone());
            }
            if let Some(ds) = &level.downsample {
                h = ds.forward(h);
                hs.push(h.clone());
            }
        }
        h = self.mid.res1.forward(h, semb.clone());
        if let Some(attn) = &self.mid.attn {
            h = attn.forward(h);
        }
        h = self.mid.res2.forward(h, semb.clone());
        for level in self.up.iter().rev() {
            for block in &level.res {
                let skip = hs.pop().expect("one skip per up block");
                h = block.forward(Tensor::cat(vec![h, skip], 1), semb.clone());
            }
            if let Some(us) = &level.upsample {
                h = us.forward(upsample_nearest2(h));
            }
        }
        self.out_conv.forward(Activation::Silu.apply(group_norm(&self.out_norm, h)))
    }

    /// Every tensor in PyTorch layout, in [`UNetConfig::tensor_specs`] order.
    pub fn to_tensors(&self) -> Vec<HostTensor> {
        let specs = self.config.tensor_specs();
        let out = collect_params(self);
        debug_assert_eq!(out.len(), specs.len());
        out.into_iter().zip(&specs).map(|(t, s)| if s.transposed { t.transposed() } else { t }).collect()
    }
}

impl<B: Backend> VelocityField<B> for UNet<B> {
    fn dim(&self) -> usize {
        self.config.dim()
    }

    fn velocity(&self, x: Tensor<B, 2>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let [n, d] = x.dims();
        let c = &self.config;
        self.forward(x.reshape([n, c.channels, c.height, c.width]), t, cond).reshape([n, d])
    }
}

/// Class labels as a tensor, for [`Condition::Class`].
pub(crate) fn labels_tensor<B: Backend>(labels: &[u32], device: &B::Device) -> Tensor<B, 1, Int> {
    let l: Vec<i64> = labels.iter().map(|&c| c as i64).collect();
    Tensor::from_data(TensorData::new(l, [labels.len()]), device)
}
