//! The U-Net's building blocks: the residual block with a time/class embedding, the attention
//! block, and the levels of the down and up paths; each with its forward pass and its JVP.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{GroupNorm, GroupNormConfig, Linear, PaddingConfig2d};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rand::Rng as _;

use crate::model::jvp_conv::{activation_jvp4, attention, attention_jvp, conv2d_jvp, group_norm, group_norm_jvp};
use crate::model::mlp::Activation;

/// GroupNorm's ε (PyTorch's default).
pub(super) const GN_EPS: f64 = 1e-5;

/// `n` draws of U(−k, k), k = 1/√fan_in (PyTorch's default for Linear and Conv2d).
fn uniform(rng: &mut crate::rng::Rng, n: usize, fan_in: usize) -> Vec<f32> {
    let k = 1.0 / (fan_in as f32).sqrt();
    (0..n).map(|_| rng.random_range(-k..k)).collect()
}

/// A square convolution `c_in → c_out`, kernel `k`, padding `k / 2`, with PyTorch's default
/// initialisation drawn from `rng` (weight then bias) or zeros.
pub(super) fn conv<B: Backend>(
    device: &B::Device,
    rng: &mut crate::rng::Rng,
    [c_in, c_out]: [usize; 2],
    k: usize,
    stride: usize,
    zero: bool,
) -> Conv2d<B> {
    let fan_in = c_in * k * k;
    let (w, b) = if zero {
        (vec![0.0; c_out * fan_in], vec![0.0; c_out])
    } else {
        let w = uniform(rng, c_out * fan_in, fan_in);
        (w, uniform(rng, c_out, fan_in))
    };
    let p = k / 2;
    Conv2d {
        weight: Param::from_tensor(Tensor::from_data(TensorData::new(w, [c_out, c_in, k, k]), device)),
        bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(b, [c_out]), device))),
        stride: [stride, stride],
        kernel_size: [k, k],
        dilation: [1, 1],
        groups: 1,
        padding: PaddingConfig2d::Explicit(p, p, p, p),
    }
}

/// A linear layer `d_in → d_out` with PyTorch's default initialisation, drawn in PyTorch's
/// `[d_out, d_in]` order and stored as burn's `[d_in, d_out]`.
pub(super) fn linear<B: Backend>(
    device: &B::Device,
    rng: &mut crate::rng::Rng,
    d_in: usize,
    d_out: usize,
) -> Linear<B> {
    let w = uniform(rng, d_in * d_out, d_in);
    let b = uniform(rng, d_out, d_in);
    let w = Tensor::<B, 2>::from_data(TensorData::new(w, [d_out, d_in]), device).transpose();
    Linear {
        weight: Param::from_tensor(w),
        bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(b, [d_out]), device))),
    }
}

/// GroupNorm with weight 1, bias 0.
pub(super) fn group_norm_init<B: Backend>(device: &B::Device, groups: usize, c: usize) -> GroupNorm<B> {
    GroupNormConfig::new(groups, c).with_epsilon(GN_EPS).init(device)
}

/// SiLU.
fn silu<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    Activation::Silu.apply(x)
}

/// A residual block with a time/class embedding (DDPM, Ho et al. 2020, App. B; guided-diffusion,
/// Dhariwal & Nichol 2021), `c_in → c_out`.
///
/// # Formula
/// h = conv1(SiLU(norm1(x))) + emb_proj(SiLU(emb)) (broadcast over h, w);
/// out = skip(x) + conv2(SiLU(norm2(h))), skip a 1×1 conv if c_in ≠ c_out, else the identity
///
/// # Shapes
/// `x: [batch, c_in, h, w]`, `SiLU(emb): [batch, 4·ch]` → `[batch, c_out, h, w]`
#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    /// `norm1`: GroupNorm(groups, c_in).
    pub norm1: GroupNorm<B>,
    /// `conv1`: 3×3, c_in → c_out.
    pub conv1: Conv2d<B>,
    /// `emb_proj`: Linear(4·ch → c_out).
    pub emb_proj: Linear<B>,
    /// `norm2`: GroupNorm(groups, c_out).
    pub norm2: GroupNorm<B>,
    /// `conv2`: 3×3, c_out → c_out.
    pub conv2: Conv2d<B>,
    /// `skip`: 1×1, c_in → c_out, when c_in ≠ c_out.
    pub skip: Option<Conv2d<B>>,
}

impl<B: Backend> ResBlock<B> {
    /// A block `c_in → c_out` with embedding size `d_emb`, drawn from `rng` in visit order.
    pub(super) fn init(
        device: &B::Device,
        rng: &mut crate::rng::Rng,
        [c_in, c_out]: [usize; 2],
        d_emb: usize,
        groups: usize,
    ) -> Self {
        Self {
            norm1: group_norm_init(device, groups, c_in),
            conv1: conv(device, rng, [c_in, c_out], 3, 1, false),
            emb_proj: linear(device, rng, d_emb, c_out),
            norm2: group_norm_init(device, groups, c_out),
            conv2: conv(device, rng, [c_out, c_out], 3, 1, false),
            skip: (c_in != c_out).then(|| conv(device, rng, [c_in, c_out], 1, 1, false)),
        }
    }

    /// The forward pass; `semb` is SiLU(emb).
    ///
    /// # Shapes
    /// `x: [batch, c_in, h, w]`, `semb: [batch, d_emb]` → `[batch, c_out, h, w]`
    pub fn forward(&self, x: Tensor<B, 4>, semb: Tensor<B, 2>) -> Tensor<B, 4> {
        let h = self.conv1.forward(silu(group_norm(&self.norm1, x.clone())));
        let [n, c, _, _] = h.dims();
        let h = h + self.emb_proj.forward(semb).reshape([n, c, 1, 1]);
        let h = self.conv2.forward(silu(group_norm(&self.norm2, h)));
        match &self.skip {
            Some(s) => s.forward(x) + h,
            None => x + h,
        }
    }

    /// The forward pass and its JVP; `dsemb` is the tangent of SiLU(emb) (`None`: zero).
    ///
    /// # Shapes
    /// `x: [batch, c_in, h, w]`, `dx: [k·batch, c_in, h, w]`, `semb: [batch, d_emb]`,
    /// `dsemb: [k·batch, d_emb]` → `[batch, c_out, h, w]`, `[k·batch, c_out, h, w]`
    pub fn forward_jvp(
        &self,
        x: Tensor<B, 4>,
        dx: Tensor<B, 4>,
        semb: Tensor<B, 2>,
        dsemb: Option<Tensor<B, 2>>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (a, da) = group_norm_jvp(&self.norm1, x.clone(), dx.clone());
        let (a, da) = activation_jvp4(Activation::Silu, a, da);
        let (h, mut dh) = conv2d_jvp(&self.conv1, a, da);
        let [n, c, _, _] = h.dims();
        let [kn, _, _, _] = dh.dims();
        let h = h + self.emb_proj.forward(semb).reshape([n, c, 1, 1]);
        if let Some(ds) = dsemb {
            dh = dh + ds.matmul(self.emb_proj.weight.val()).reshape([kn, c, 1, 1]);
        }
        let (a, da) = group_norm_jvp(&self.norm2, h, dh);
        let (a, da) = activation_jvp4(Activation::Silu, a, da);
        let (h, dh) = conv2d_jvp(&self.conv2, a, da);
        match &self.skip {
            Some(s) => {
                let (sx, dsx) = conv2d_jvp(s, x, dx);
                (sx + h, dsx + dh)
            }
            None => (x + h, dx + dh),
        }
    }
}

/// A self-attention block over the spatial positions (guided-diffusion's `AttentionBlock`
/// with one head; Dhariwal & Nichol 2021).
///
/// # Formula
/// [q; k; v] = qkv(norm(x)) split along channels, each `[batch, c, N]` (N = h·w);
/// A = softmax over keys of qᵀk/√c, out = x + proj(v·Aᵀ)
///
/// # Shapes
/// `x: [batch, c, h, w]` → `[batch, c, h, w]`
#[derive(Module, Debug)]
pub struct AttnBlock<B: Backend> {
    /// `norm`: GroupNorm(groups, c).
    pub norm: GroupNorm<B>,
    /// `qkv`: 1×1, c → 3c (q, k, v in that order).
    pub qkv: Conv2d<B>,
    /// `proj`: 1×1, c → c.
    pub proj: Conv2d<B>,
}

impl<B: Backend> AttnBlock<B> {
    pub(super) fn init(device: &B::Device, rng: &mut crate::rng::Rng, c: usize, groups: usize) -> Self {
        Self {
            norm: group_norm_init(device, groups, c),
            qkv: conv(device, rng, [c, 3 * c], 1, 1, false),
            proj: conv(device, rng, [c, c], 1, 1, false),
        }
    }

    /// The forward pass.
    ///
    /// # Shapes
    /// `x: [batch, c, h, w]` → `[batch, c, h, w]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let qkv = self.qkv.forward(group_norm(&self.norm, x.clone())).reshape([n, 3 * c, h * w]);
        let (q, k, v) = (qkv.clone().narrow(1, 0, c), qkv.clone().narrow(1, c, c), qkv.narrow(1, 2 * c, c));
        x + self.proj.forward(attention(q, k, v).reshape([n, c, h, w]))
    }

    /// The forward pass and its JVP.
    ///
    /// # Shapes
    /// `x: [batch, c, h, w]`, `dx: [k·batch, c, h, w]` → `[batch, c, h, w]`, `[k·batch, c, h, w]`
    pub fn forward_jvp(&self, x: Tensor<B, 4>, dx: Tensor<B, 4>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let [n, c, h, w] = x.dims();
        let [kn, _, _, _] = dx.dims();
        let (a, da) = group_norm_jvp(&self.norm, x.clone(), dx.clone());
        let (qkv, dqkv) = conv2d_jvp(&self.qkv, a, da);
        let qkv = qkv.reshape([n, 3 * c, h * w]);
        let dqkv = dqkv.reshape([kn, 3 * c, h * w]);
        let split = |t: Tensor<B, 3>| (t.clone().narrow(1, 0, c), t.clone().narrow(1, c, c), t.narrow(1, 2 * c, c));
        let (o, d_o) = attention_jvp(split(qkv), split(dqkv));
        let (p, dp) = conv2d_jvp(&self.proj, o.reshape([n, c, h, w]), d_o.reshape([kn, c, h, w]));
        (x + p, dx + dp)
    }
}

/// One level of the down path: `res_blocks` residual blocks, then (except at the lowest
/// level) a stride-2 3×3 convolution.
#[derive(Module, Debug)]
pub struct DownLevel<B: Backend> {
    /// `down.{i}.res.{j}`.
    pub res: Vec<ResBlock<B>>,
    /// `down.{i}.downsample`: 3×3, stride 2, c → c.
    pub downsample: Option<Conv2d<B>>,
}

/// The middle of the U-Net at the lowest resolution.
#[derive(Module, Debug)]
pub struct MidBlock<B: Backend> {
    /// `mid.res1`.
    pub res1: ResBlock<B>,
    /// `mid.attn`, if attention is on.
    pub attn: Option<AttnBlock<B>>,
    /// `mid.res2`.
    pub res2: ResBlock<B>,
}

/// One level of the up path: `res_blocks + 1` residual blocks, each on the concatenation of
/// the running features and a skip from the down path, then (except at level 0) nearest ×2
/// upsampling followed by a 3×3 convolution.
#[derive(Module, Debug)]
pub struct UpLevel<B: Backend> {
    /// `up.{i}.res.{j}`.
    pub res: Vec<ResBlock<B>>,
    /// `up.{i}.upsample`: the 3×3 convolution after the nearest ×2 upsampling, c → c.
    pub upsample: Option<Conv2d<B>>,
}
