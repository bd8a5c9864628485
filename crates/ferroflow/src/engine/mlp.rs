//! The MLP in one flat buffer: layout, input assembly, and the training and inference passes.
//!
//! # Layout
//! The trained parameters are one `Vec<f32>` holding the tensors of
//! [`MlpFieldConfig::tensor_specs`] in order and in PyTorch's layout: `net.{2l}.weight`
//! `[d_out, d_in]` row-major, `net.{2l}.bias` `[d_out]`, …, then `class_embedding.weight`
//! `[n_classes + 1, d_embed]`. Gradients and Adam's moments use the same layout, so a
//! checkpoint tensor is a plain slice of a buffer.
//!
//! # Training pass (`forward_backward`)
//! Once a step, Wᵀ of every layer but the output one (`transposed_weights`), so that the
//! forward products read the weights with unit stride and `gemm` packs nothing per block.
//! Then, per block of rows:
//! 1. input `[x, e(t), c]`;
//! 2. layer 0: for a narrow input (d₀ ≤ 16) a loop of d₀ axpys per row over Wᵀ, fused with
//!    bias + activation + derivative; else `gemm` + one fused pass;
//! 3. hidden layers: `gemm`, then bias + activation + derivative in one pass;
//! 4. output layer (d_out ≤ 8): per row, d_out dot products fused with the loss, dL/dv and
//!    dL/dh of the last hidden layer;
//! 5. hidden layers backward: dH = dZ·W by `gemm`, then dZ = dH ⊙ act′, dZ kept for every layer.
//!
//! Then, per block of output units of one layer, over all rows at once: dW = dZᵀ·H by one
//! `gemm` and the bias gradient as column sums; the class-embedding rows get dZ₀·W₀[:, class
//! columns] scattered by label, rows in order.

use rand::SeedableRng as _;

use super::simd::{self, Isa};
use crate::model::{Activation, ConditionConfig, HostTensor, MlpField, MlpFieldConfig, TimeEmbeddingConfig};

/// Widest first-layer input handled by plain loops rather than `gemm`.
pub(crate) const SMALL_K: usize = 16;
/// Widest output layer handled by plain loops rather than `gemm`.
pub(crate) const SMALL_N: usize = 8;

/// Where one linear layer lives in the flat buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearSlot {
    /// Input width.
    pub d_in: usize,
    /// Output width.
    pub d_out: usize,
    /// Offset of the weight `[d_out, d_in]`.
    pub w: usize,
    /// Offset of the bias `[d_out]`.
    pub b: usize,
}

/// Offsets of every trained tensor in the flat buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The linear layers, in order.
    pub layers: Vec<LinearSlot>,
    /// Offset, rows (n_classes + 1) and width of the class embedding, if any.
    pub class: Option<(usize, usize, usize)>,
    /// Total number of trained values.
    pub len: usize,
    /// Width of the points.
    pub d_x: usize,
    /// Width of the time embedding.
    pub d_t: usize,
    /// Width of the condition (class embedding or vector).
    pub d_c: usize,
}

impl Layout {
    /// The layout of a field with these settings.
    pub fn new(config: &MlpFieldConfig) -> Self {
        let mut off = 0;
        let layers = config
            .layer_sizes()
            .into_iter()
            .map(|(d_in, d_out)| {
                let s = LinearSlot { d_in, d_out, w: off, b: off + d_in * d_out };
                off += d_in * d_out + d_out;
                s
            })
            .collect();
        let (class, d_c) = match config.condition {
            ConditionConfig::Class { n_classes, d_embed } => {
                let c = (off, n_classes + 1, d_embed);
                off += (n_classes + 1) * d_embed;
                (Some(c), d_embed)
            }
            ConditionConfig::Vector { d_cond } => (None, d_cond),
            ConditionConfig::None => (None, 0),
        };
        Self { layers, class, len: off, d_x: config.d_input, d_t: config.time_embedding.d_output(), d_c }
    }

    /// Width of the network input `[x, e(t), c]`.
    pub fn d0(&self) -> usize {
        self.d_x + self.d_t + self.d_c
    }

    /// Widest layer output.
    pub(crate) fn max_width(&self) -> usize {
        self.layers.iter().map(|l| l.d_out.max(l.d_in)).max().unwrap_or(0)
    }
}

/// A condition for a block of rows, on the host.
#[derive(Debug, Clone, Copy)]
pub enum HostCondition<'a> {
    /// No condition (a class-conditional field then uses the null class).
    None,
    /// One label per row (`n_classes` is the null class).
    Class(&'a [u32]),
    /// One condition vector per row, `[rows, d_cond]` row-major.
    Vector(&'a [f32]),
}

impl<'a> HostCondition<'a> {
    /// The rows `r0..r1` of this condition (`d_c` values a row for vectors).
    pub(crate) fn rows(self, r0: usize, r1: usize, d_c: usize) -> HostCondition<'a> {
        match self {
            HostCondition::None => HostCondition::None,
            HostCondition::Class(l) => HostCondition::Class(&l[r0..r1]),
            HostCondition::Vector(c) => HostCondition::Vector(&c[r0 * d_c..r1 * d_c]),
        }
    }
}

/// An MLP velocity field held as one flat f32 buffer (see the module doc for the layout).
#[derive(Debug, Clone, PartialEq)]
pub struct FusedMlp {
    /// The settings.
    pub config: MlpFieldConfig,
    /// The offsets.
    pub layout: Layout,
    /// The trained parameters, PyTorch layout, [`MlpFieldConfig::tensor_specs`] order.
    pub params: Vec<f32>,
    /// The time embedding's angular frequencies (constants; empty for the raw embedding).
    pub freqs: Vec<f32>,
}

impl FusedMlp {
    /// Builds the field from tensors in PyTorch layout, one per
    /// [`MlpFieldConfig::tensor_specs`] entry (what [`MlpField::to_tensors`] and a checkpoint
    /// give). Callers check names and shapes first (see [`crate::checkpoint`]).
    pub fn from_tensors(config: MlpFieldConfig, tensors: &[HostTensor]) -> Self {
        let layout = Layout::new(&config);
        let specs = config.tensor_specs();
        debug_assert_eq!(specs.len(), tensors.len());
        let mut params = Vec::with_capacity(layout.len);
        let mut freqs = Vec::new();
        for (s, t) in specs.iter().zip(tensors) {
            if s.trained {
                params.extend_from_slice(&t.data);
            } else {
                freqs = t.data.clone();
            }
        }
        debug_assert_eq!(params.len(), layout.len);
        Self { config, layout, params, freqs }
    }

    /// The same weights as a burn field.
    pub fn from_field<B: burn::tensor::backend::Backend>(field: &MlpField<B>) -> Self {
        Self::from_tensors(field.config, &field.to_tensors())
    }

    /// Initialises the field exactly as [`MlpFieldConfig::init`] does from the same `rng`
    /// (the same weights bit for bit).
    pub fn init(config: MlpFieldConfig, rng: &mut crate::rng::Rng) -> Self {
        let f = config.init::<crate::backend::Cpu>(&Default::default(), rng);
        Self::from_field(&f)
    }

    /// Every tensor in PyTorch layout, in [`MlpFieldConfig::tensor_specs`] order.
    pub fn to_tensors(&self) -> Vec<HostTensor> {
        tensors_of(&self.config, &self.params, &self.freqs)
    }

    /// The same weights as a burn field on `device`.
    pub fn to_field<B: burn::tensor::backend::Backend>(&self, device: &B::Device) -> MlpField<B> {
        self.config.from_tensors::<B>(&self.to_tensors(), device)
    }

    /// A seeded field for tests and benchmarks (not PyTorch's initialisation).
    pub fn random(config: MlpFieldConfig, seed: u64) -> Self {
        let mut rng = crate::rng::Rng::seed_from_u64(seed);
        Self::init(config, &mut rng)
    }
}

/// The tensors of `params` (trained, flat) and `freqs` in spec order and PyTorch layout.
pub(crate) fn tensors_of(config: &MlpFieldConfig, params: &[f32], freqs: &[f32]) -> Vec<HostTensor> {
    let mut off = 0;
    config
        .tensor_specs()
        .into_iter()
        .map(|s| {
            let n: usize = s.shape.iter().product();
            if s.trained {
                let t = HostTensor { shape: s.shape, data: params[off..off + n].to_vec() };
                off += n;
                t
            } else {
                HostTensor { shape: s.shape, data: freqs.to_vec() }
            }
        })
        .collect()
}

/// Writes the network input `[x, e(t), c]` of `rows` rows into `out` (`[rows, d0]`).
///
/// Matches [`MlpField`]'s input in f32: raw t, or θ = t·ω then `[cos θ, sin θ]`.
pub(crate) fn build_input(net: &FusedMlp, x: &[f32], t: &[f32], cond: HostCondition<'_>, rows: usize, out: &mut [f32]) {
    let l = &net.layout;
    let d0 = l.d0();
    let half = net.freqs.len();
    for r in 0..rows {
        let o = &mut out[r * d0..(r + 1) * d0];
        o[..l.d_x].copy_from_slice(&x[r * l.d_x..(r + 1) * l.d_x]);
        let e = &mut o[l.d_x..l.d_x + l.d_t];
        match net.config.time_embedding {
            TimeEmbeddingConfig::Raw => e[0] = t[r],
            _ => {
                for (k, w) in net.freqs.iter().enumerate() {
                    let th = t[r] * w;
                    e[k] = th.cos();
                    e[half + k] = th.sin();
                }
            }
        }
        let c = &mut o[l.d_x + l.d_t..];
        match (cond, l.class) {
            (HostCondition::Class(labels), Some((off, _, de))) => {
                let k = labels[r] as usize;
                c.copy_from_slice(&net.params[off + k * de..off + (k + 1) * de]);
            }
            (_, Some((off, n1, de))) => {
                let k = n1 - 1; // the null class
                c.copy_from_slice(&net.params[off + k * de..off + (k + 1) * de]);
            }
            (HostCondition::Vector(v), None) if l.d_c > 0 => c.copy_from_slice(&v[r * l.d_c..(r + 1) * l.d_c]),
            _ => c.fill(0.0),
        }
    }
}

/// C ← A·B (or C += A·B with `accumulate`) for strided row/column layouts, on one thread.
///
/// # Shapes
/// `A: [m, k]` (strides `a_rs`, `a_cs`), `B: [k, n]`, `C: [m, n]`
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    c_rs: usize,
    c_cs: usize,
    a: &[f32],
    a_rs: usize,
    a_cs: usize,
    b: &[f32],
    b_rs: usize,
    b_cs: usize,
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(last(m, n, c_rs, c_cs) < c.len(), "matmul: C out of bounds");
    if k > 0 {
        assert!(last(m, k, a_rs, a_cs) < a.len(), "matmul: A out of bounds");
        assert!(last(k, n, b_rs, b_cs) < b.len(), "matmul: B out of bounds");
    }
    // SAFETY: every index the product touches is inside the slices (checked above), C does
    // not alias A or B (it is a distinct `&mut`), and gemm only reads A and B.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs as isize,
            c_rs as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The transpose of layer 0's weight, `[d0, d_out]`, for the narrow-input loops.
pub(crate) fn first_layer_t(net: &FusedMlp, out: &mut Vec<f32>) {
    transpose_into(net, net.layout.layers[0], out);
}

/// Wᵀ `[d_in, d_out]` of the layer in slot `s`, by 16×16 tiles.
fn transpose_into(net: &FusedMlp, s: LinearSlot, wt: &mut Vec<f32>) {
    const T: usize = 16;
    wt.resize(s.d_in * s.d_out, 0.0);
    let w = &net.params[s.w..s.w + s.d_in * s.d_out];
    for o0 in (0..s.d_out).step_by(T) {
        for i0 in (0..s.d_in).step_by(T) {
            for o in o0..(o0 + T).min(s.d_out) {
                for i in i0..(i0 + T).min(s.d_in) {
                    wt[i * s.d_out + o] = w[o * s.d_in + i];
                }
            }
        }
    }
}

/// Wᵀ `[d_in, d_out]` of every layer but the output one, for the training pass: its
/// products then read the weights with unit stride and `gemm` packs nothing per row block.
/// One layer an item on `threads`.
pub(crate) fn transposed_weights(net: &FusedMlp, threads: &super::Threads, out: &mut Vec<Vec<f32>>) {
    let layers = &net.layout.layers[..net.layout.layers.len() - 1];
    out.resize_with(layers.len(), Vec::new);
    let mut items: Vec<(LinearSlot, &mut Vec<f32>)> = layers.iter().copied().zip(out.iter_mut()).collect();
    threads.for_each_dynamic(&mut items, |_, (s, wt)| transpose_into(net, *s, wt));
}

/// Rows of one partial sum of the loss (and the unit the row blocks are made of): the loss
/// is summed in granules of this many rows, then over the granules in order, whatever the
/// blocks.
pub(crate) const LOSS_ROWS: usize = 32;
/// Output units of one layer whose weight and bias gradients one block of the second phase
/// computes, on more than one thread (one thread takes each layer whole: fewest `gemm`
/// calls, and how the units are cut changes no value).
pub(crate) const UNIT_BLOCK: usize = 64;

/// Buffers of the training pass over a whole batch, allocated once and reused every step.
#[derive(Debug, Clone, Default)]
pub(crate) struct TrainWork {
    /// Rows these buffers were sized for.
    cap: usize,
    /// Network input `[rows, d0]`.
    x: Vec<f32>,
    /// Output of each hidden layer, `[rows, width]`.
    h: Vec<Vec<f32>>,
    /// Activation derivative at each hidden layer, `[rows, width]`.
    d: Vec<Vec<f32>>,
    /// dL/dz at each hidden layer (before its activation), `[rows, width]`.
    dz: Vec<Vec<f32>>,
    /// dL/dv at the output, `[rows, d_out]`.
    dv: Vec<f32>,
    /// Σ (v − u_t)² of each [`LOSS_ROWS`] rows, in f64.
    sq_err: Vec<f64>,
    /// The gradient of the batch loss, flat layout.
    pub grad: Vec<f32>,
}

impl TrainWork {
    pub(crate) fn new(layout: &Layout) -> Self {
        Self { grad: vec![0.0; layout.len], ..Default::default() }
    }

    fn ensure(&mut self, layout: &Layout, rows: usize) {
        if rows <= self.cap && !self.h.is_empty() {
            return;
        }
        let nl = layout.layers.len();
        self.cap = rows;
        self.x = vec![0.0; rows * layout.d0()];
        let hidden = || layout.layers[..nl - 1].iter().map(|s| vec![0.0; rows * s.d_out]).collect::<Vec<_>>();
        self.h = hidden();
        self.d = hidden();
        self.dz = hidden();
        self.dv = vec![0.0; rows * layout.layers[nl - 1].d_out];
    }

    /// Σ (v − u_t)² over the batch of the last pass (granules summed in order).
    pub(crate) fn sq_err(&self) -> f64 {
        self.sq_err.iter().sum()
    }
}

/// A block of training rows: the path sample and the condition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TrainRows<'a> {
    pub xt: &'a [f32],
    pub t: &'a [f32],
    pub ut: &'a [f32],
    pub cond: HostCondition<'a>,
    pub rows: usize,
}

/// Layer 0 forward for narrow inputs, one row: h = act(b + Σᵢ xᵢ·Wᵀ[i, :]), d = act′.
#[inline]
fn narrow_first_row(
    isa: Isa,
    act: Option<Activation>,
    x: &[f32],
    w0t: &[f32],
    b: &[f32],
    h: &mut [f32],
    d: Option<&mut [f32]>,
) {
    let n = b.len();
    h.fill(0.0);
    for (i, xi) in x.iter().enumerate() {
        simd::axpy(isa, h, *xi, &w0t[i * n..(i + 1) * n]);
    }
    match (act, d) {
        (Some(a), Some(d)) => simd::bias_act_grad(isa, a, h, d, b),
        (Some(a), None) => simd::bias_act(isa, a, h, b),
        (None, _) => simd::bias_add(isa, h, b),
    }
}

/// One row block's share of [`TrainWork`]: its rows of every per-row buffer.
struct RowBlock<'a> {
    r0: usize,
    x: &'a mut [f32],
    h: Vec<&'a mut [f32]>,
    d: Vec<&'a mut [f32]>,
    dz: Vec<&'a mut [f32]>,
    dv: &'a mut [f32],
    sq_err: &'a mut [f64],
}

/// One block of the gradient: output units `o0..o0 + gb.len()` of layer `k` (their weight
/// rows and biases), or the class-embedding table.
enum ParamBlock<'a> {
    Layer { k: usize, o0: usize, gw: &'a mut [f32], gb: &'a mut [f32] },
    Class(&'a mut [f32]),
}

impl ParamBlock<'_> {
    /// Multiply-adds per batch row, to hand out the largest blocks first.
    fn cost(&self) -> usize {
        match self {
            ParamBlock::Layer { gw, .. } => gw.len(),
            ParamBlock::Class(g) => g.len(),
        }
    }
}

/// Forward and backward over a batch: fills `work.grad` with the gradient of
/// Σ_rows ‖v − u_t‖² · `scale` (scale = 1/(batch·d), the loss's mean) and the per-block
/// squared errors, on `threads`.
///
/// Two phases, each a list of blocks claimed by whichever thread is free:
/// 1. row blocks ([`row_block`] rows): input, forward, loss, and the backward of the
///    activations (dL/dz of every layer), row by row, so that how the rows are cut into
///    blocks changes no value;
/// 2. parameter blocks ([`UNIT_BLOCK`] output units of one layer, or whole layers on one
///    thread): dW = dZᵀ·H and the bias
///    sums over all rows of the batch at once, so each gradient entry is one sum in one
///    fixed order and no block writes a whole gradient of its own.
pub(crate) fn forward_backward(
    isa: Isa,
    threads: &super::Threads,
    net: &FusedMlp,
    wt: &[Vec<f32>],
    rows: TrainRows<'_>,
    scale: f32,
    work: &mut TrainWork,
) {
    let l = &net.layout;
    let n = rows.rows;
    work.ensure(l, n);
    let nl = l.layers.len();
    let d0 = l.d0();
    let wo = l.layers[nl - 1].d_out;
    let rb = row_block(n, threads.count(), threads.helper_busy());
    let nb = n.div_ceil(rb);
    work.sq_err.clear();
    work.sq_err.resize(n.div_ceil(LOSS_ROWS), 0.0);
    if n == 0 {
        work.grad.fill(0.0);
        return;
    }
    let TrainWork { x, h, d, dz, dv, sq_err, grad, .. } = work;

    // Phase 1: row blocks.
    {
        let widths: Vec<usize> = l.layers[..nl - 1].iter().map(|s| s.d_out).collect();
        let (mut hs, mut ds, mut dzs) =
            (row_chunks(h, &widths, n, rb), row_chunks(d, &widths, n, rb), row_chunks(dz, &widths, n, rb));
        let mut xs = x[..n * d0].chunks_mut(rb * d0);
        let mut dvs = dv[..n * wo].chunks_mut(rb * wo);
        let mut errs = sq_err.chunks_mut(rb / LOSS_ROWS);
        let mut blocks: Vec<RowBlock<'_>> = (0..nb)
            .map(|b| RowBlock {
                r0: b * rb,
                x: xs.next().expect("one chunk a block"),
                h: next_chunks(&mut hs),
                d: next_chunks(&mut ds),
                dz: next_chunks(&mut dzs),
                dv: dvs.next().expect("one chunk a block"),
                sq_err: errs.next().expect("one error a block"),
            })
            .collect();
        let d_x = l.d_x;
        threads.for_each_dynamic(&mut blocks, |_, blk| {
            let r0 = blk.r0;
            let r1 = (r0 + rb).min(n);
            let sub = TrainRows {
                xt: &rows.xt[r0 * d_x..r1 * d_x],
                t: &rows.t[r0..r1],
                ut: &rows.ut[r0 * d_x..r1 * d_x],
                cond: rows.cond.rows(r0, r1, l.d_c),
                rows: r1 - r0,
            };
            rows_pass(isa, net, wt, sub, scale, blk);
        });
    }

    // Phase 2: parameter blocks over all rows.
    let mut blocks: Vec<ParamBlock<'_>> = Vec::new();
    let mut rest = &mut grad[..];
    for (k, s) in l.layers.iter().enumerate() {
        let (gw, r) = rest.split_at_mut(s.d_in * s.d_out);
        let (gb, r) = r.split_at_mut(s.d_out);
        rest = r;
        let ub = if threads.count() > 1 { UNIT_BLOCK } else { s.d_out.max(1) };
        for (j, (gw, gb)) in gw.chunks_mut(ub * s.d_in).zip(gb.chunks_mut(ub)).enumerate() {
            blocks.push(ParamBlock::Layer { k, o0: j * ub, gw, gb });
        }
    }
    if l.class.is_some() {
        blocks.push(ParamBlock::Class(rest));
    }
    blocks.sort_by_key(|b| std::cmp::Reverse(b.cost()));
    let (x, h, dz, dv) = (&x[..], &h[..], &dz[..], &dv[..]);
    threads.for_each_dynamic(&mut blocks, |_, blk| match blk {
        ParamBlock::Layer { k, o0, gw, gb } => {
            let s = l.layers[*k];
            let inp: &[f32] = if *k == 0 { &x[..n * d0] } else { &h[*k - 1][..n * s.d_in] };
            let (g, width) = if *k == nl - 1 { (dv, wo) } else { (&dz[*k][..], s.d_out) };
            let m = gb.len();
            // dW[o0.., :] = dZ[:, o0..]ᵀ · H, summed over all rows by one gemm.
            matmul(m, s.d_in, n, gw, s.d_in, 1, &g[*o0..], 1, width, inp, s.d_in, 1, false);
            gb.fill(0.0);
            for r in 0..n {
                simd::axpy(isa, gb, 1.0, &g[r * width + *o0..r * width + *o0 + m]);
            }
        }
        ParamBlock::Class(g) => {
            // dE[label] += dZ₀ · W₀[:, class columns], rows in order.
            let (_, n1, de) = l.class.expect("a class block only with a class table");
            let w = l.layers[0].d_out;
            let c0 = l.d_x + l.d_t;
            g.fill(0.0);
            for r in 0..n {
                let k = match rows.cond {
                    HostCondition::Class(lab) => lab[r] as usize,
                    _ => n1 - 1,
                };
                let gr = &dz[0][r * w..(r + 1) * w];
                for c in 0..de {
                    g[k * de + c] += simd::dot(isa, gr, &wt[0][(c0 + c) * w..(c0 + c + 1) * w]);
                }
            }
        }
    });
}

/// Rows of one block of phase 1 for a batch of `n` rows on `threads` threads: the whole
/// batch on one thread (fewest `gemm` calls), else about two blocks a thread, a multiple of
/// [`LOSS_ROWS`] (so a thread that is held up leaves work for the others); four a thread
/// while a helper is `away` on a task made ahead (the next exact-OT plan), so that the
/// helper, back in the middle of the phase, finds blocks left to take instead of waiting for
/// the caller's last one: W2D's exact-OT step on two threads, 634 → 671 steps/s
/// (BENCHMARKS.md). Blocks never change a value: the loss is summed by [`LOSS_ROWS`].
pub(crate) fn row_block(n: usize, threads: usize, away: bool) -> usize {
    if threads <= 1 {
        return n.div_ceil(LOSS_ROWS).max(1) * LOSS_ROWS;
    }
    let per_thread = if away { 4 } else { 2 };
    n.div_ceil(per_thread * threads).div_ceil(LOSS_ROWS).max(1) * LOSS_ROWS
}

/// Row chunks of `rb` rows of each buffer (`widths[i]` values a row).
fn row_chunks<'a>(
    bufs: &'a mut [Vec<f32>],
    widths: &[usize],
    n: usize,
    rb: usize,
) -> Vec<std::slice::ChunksMut<'a, f32>> {
    bufs.iter_mut().zip(widths).map(|(b, &w)| b[..n * w].chunks_mut(rb * w)).collect()
}

/// The next chunk of every buffer.
fn next_chunks<'a>(it: &mut [std::slice::ChunksMut<'a, f32>]) -> Vec<&'a mut [f32]> {
    it.iter_mut().map(|c| c.next().expect("one chunk a block")).collect()
}

/// Phase 1 of [`forward_backward`] on one row block: input, forward, the loss, dL/dv and
/// dL/dz of every hidden layer.
fn rows_pass(isa: Isa, net: &FusedMlp, wt: &[Vec<f32>], rows: TrainRows<'_>, scale: f32, blk: &mut RowBlock<'_>) {
    let l = &net.layout;
    let n = rows.rows;
    let p = &net.params;
    let act = net.config.activation;
    let nl = l.layers.len();
    let d0 = l.d0();
    build_input(net, rows.xt, rows.t, rows.cond, n, blk.x);

    // Forward through the hidden layers (Wᵀ with unit stride along the output units).
    let s0 = l.layers[0];
    if d0 <= SMALL_K {
        let w = s0.d_out;
        for r in 0..n {
            narrow_first_row(
                isa,
                Some(act),
                &blk.x[r * d0..(r + 1) * d0],
                &wt[0],
                &p[s0.b..s0.b + w],
                &mut blk.h[0][r * w..(r + 1) * w],
                Some(&mut blk.d[0][r * w..(r + 1) * w]),
            );
        }
    } else {
        matmul(n, s0.d_out, d0, blk.h[0], s0.d_out, 1, blk.x, d0, 1, &wt[0], s0.d_out, 1, false);
        simd::bias_act_grad(
            isa,
            act,
            &mut blk.h[0][..n * s0.d_out],
            &mut blk.d[0][..n * s0.d_out],
            &p[s0.b..s0.b + s0.d_out],
        );
    }
    for k in 1..nl - 1 {
        let s = l.layers[k];
        let (prev, cur) = blk.h.split_at_mut(k);
        let inp = &prev[k - 1][..n * s.d_in];
        matmul(n, s.d_out, s.d_in, cur[0], s.d_out, 1, inp, s.d_in, 1, &wt[k], s.d_out, 1, false);
        simd::bias_act_grad(isa, act, &mut cur[0][..n * s.d_out], &mut blk.d[k][..n * s.d_out], &p[s.b..s.b + s.d_out]);
    }

    // Output layer, the loss, dL/dv and dL/dh of the last hidden layer.
    let so = l.layers[nl - 1];
    let (wi, wo) = (so.d_in, so.d_out);
    let hl = &blk.h[nl - 2][..n * wi];
    let g = &mut blk.dz[nl - 2][..n * wi];
    let wout = &p[so.w..so.w + wi * wo];
    let sq_err = &mut *blk.sq_err;
    sq_err.fill(0.0);
    if wo <= SMALL_N {
        for r in 0..n {
            let hr = &hl[r * wi..(r + 1) * wi];
            let gr = &mut g[r * wi..(r + 1) * wi];
            gr.fill(0.0);
            for j in 0..wo {
                let vj = p[so.b + j] + simd::dot(isa, hr, &wout[j * wi..(j + 1) * wi]);
                let e = vj - rows.ut[r * wo + j];
                sq_err[r / LOSS_ROWS] += (e as f64) * (e as f64);
                let dvj = 2.0 * e * scale;
                blk.dv[r * wo + j] = dvj;
                simd::axpy(isa, gr, dvj, &wout[j * wi..(j + 1) * wi]);
            }
        }
    } else {
        let v = &mut blk.dv[..n * wo];
        matmul(n, wo, wi, v, wo, 1, hl, wi, 1, wout, 1, wi, false);
        simd::bias_add(isa, v, &p[so.b..so.b + wo]);
        for (i, (vj, uj)) in v.iter_mut().zip(&rows.ut[..n * wo]).enumerate() {
            let e = *vj - *uj;
            sq_err[i / wo / LOSS_ROWS] += (e as f64) * (e as f64);
            *vj = 2.0 * e * scale;
        }
        // dH = dV·W
        matmul(n, wi, wo, g, wi, 1, v, wo, 1, wout, wi, 1, false);
    }
    simd::mul_in_place(isa, g, &blk.d[nl - 2][..n * wi]);

    // Hidden layers backward: dZ_{k−1} = (dZ_k · W_k) ⊙ act′.
    for k in (1..nl - 1).rev() {
        let s = l.layers[k];
        let (lo, hi) = blk.dz.split_at_mut(k);
        let below = &mut lo[k - 1][..n * s.d_in];
        matmul(n, s.d_in, s.d_out, below, s.d_in, 1, &hi[0][..n * s.d_out], s.d_out, 1, &p[s.w..], s.d_in, 1, false);
        simd::mul_in_place(isa, below, &blk.d[k - 1][..n * s.d_in]);
    }
}

/// Per-block buffers of the inference pass.
#[derive(Debug, Clone, Default)]
pub(crate) struct InferWork {
    cap: usize,
    x: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    /// A block's activations as bf16 pairs ([`super::bf16::matmul`]).
    pairs: Vec<u32>,
}

impl InferWork {
    pub(crate) fn ensure(&mut self, layout: &Layout, rows: usize) {
        if rows <= self.cap && !self.a.is_empty() {
            return;
        }
        self.cap = rows;
        self.x = vec![0.0; rows * layout.d0()];
        self.a = vec![0.0; rows * layout.max_width()];
        self.b = vec![0.0; rows * layout.max_width()];
    }

    /// The input buffer and the two ping-pong activation buffers.
    pub(crate) fn buffers(&mut self) -> (&mut Vec<f32>, &mut Vec<f32>, &mut Vec<f32>) {
        (&mut self.x, &mut self.a, &mut self.b)
    }
}

#[allow(clippy::too_many_arguments)]
/// Velocity of `rows` rows into `out` (`[rows, d_x]`) by `gemm` and fused element-wise passes;
/// with `bf16` (the packed hidden layers, [`super::bf16::pack_hidden`]) the hidden layers'
/// products in bf16 instead.
pub(crate) fn forward_rows(
    isa: Isa,
    net: &FusedMlp,
    w0t: &[f32],
    bf16: Option<&[Option<super::bf16::PackedLayer>]>,
    x: &[f32],
    t: &[f32],
    cond: HostCondition<'_>,
    rows: usize,
    work: &mut InferWork,
    out: &mut [f32],
) {
    let l = &net.layout;
    work.ensure(l, rows);
    let p = &net.params;
    let act = net.config.activation;
    let nl = l.layers.len();
    let d0 = l.d0();
    let n = rows;
    let InferWork { x: xin, a, b, pairs, .. } = work;
    build_input(net, x, t, cond, n, xin);
    let s0 = l.layers[0];
    if d0 <= SMALL_K {
        let w = s0.d_out;
        for r in 0..n {
            narrow_first_row(
                isa,
                Some(act),
                &xin[r * d0..(r + 1) * d0],
                w0t,
                &p[s0.b..s0.b + w],
                &mut a[r * w..(r + 1) * w],
                None,
            );
        }
    } else {
        matmul(n, s0.d_out, d0, a, s0.d_out, 1, xin, d0, 1, &p[s0.w..], 1, d0, false);
        simd::bias_act(isa, act, &mut a[..n * s0.d_out], &p[s0.b..s0.b + s0.d_out]);
    }
    for k in 1..nl - 1 {
        let s = l.layers[k];
        match bf16.and_then(|layers| layers[k].as_ref()) {
            Some(packed) => super::bf16::matmul(n, &a[..n * s.d_in], packed, b, pairs),
            None => matmul(n, s.d_out, s.d_in, b, s.d_out, 1, &a[..n * s.d_in], s.d_in, 1, &p[s.w..], 1, s.d_in, false),
        }
        simd::bias_act(isa, act, &mut b[..n * s.d_out], &p[s.b..s.b + s.d_out]);
        std::mem::swap(a, b);
    }
    let so = l.layers[nl - 1];
    let (wi, wo) = (so.d_in, so.d_out);
    if wo <= SMALL_N {
        let wout = &p[so.w..so.w + wi * wo];
        for r in 0..n {
            let hr = &a[r * wi..(r + 1) * wi];
            for j in 0..wo {
                out[r * wo + j] = p[so.b + j] + simd::dot(isa, hr, &wout[j * wi..(j + 1) * wi]);
            }
        }
    } else {
        matmul(n, wo, wi, out, wo, 1, &a[..n * wi], wi, 1, &p[so.w..], 1, wi, false);
        simd::bias_add(isa, &mut out[..n * wo], &p[so.b..so.b + wo]);
    }
}

/// Buffers of one thread's [`jvp_rows`]: the stacked input and two ping-pong activation
/// buffers of (1 + k)·rows rows, the activation derivatives of the primal rows.
#[derive(Debug, Default)]
pub(crate) struct JvpWork {
    x: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    d: Vec<f32>,
}

impl JvpWork {
    /// Grows the buffers to an input of `x_len` values, `m` stacked rows of at most `wmax`
    /// units and the activation derivatives of `rows` primal rows.
    fn ensure(&mut self, x_len: usize, m: usize, wmax: usize, rows: usize) {
        for (buf, len) in
            [(&mut self.x, x_len), (&mut self.a, m * wmax), (&mut self.b, m * wmax), (&mut self.d, rows * wmax)]
        {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
        }
    }
}

/// One hidden layer of the stacked rows: `out = input·Wᵀ` over all `m` rows, then the first
/// `rows` (the primal) get bias and activation, with σ′(z) kept in `d`, and every block of
/// tangent rows is multiplied by σ′(z).
#[allow(clippy::too_many_arguments)]
fn tangent_layer(
    isa: Isa,
    act: Activation,
    p: &[f32],
    s: LinearSlot,
    rows: usize,
    m: usize,
    input: &[f32],
    out: &mut [f32],
    d: &mut [f32],
) {
    matmul(m, s.d_out, s.d_in, out, s.d_out, 1, input, s.d_in, 1, &p[s.w..], 1, s.d_in, false);
    let (primal, tangents) = out[..m * s.d_out].split_at_mut(rows * s.d_out);
    let dr = &mut d[..rows * s.d_out];
    simd::bias_act_grad(isa, act, primal, dr, &p[s.b..s.b + s.d_out]);
    for tb in tangents.chunks_exact_mut(rows * s.d_out) {
        simd::mul_in_place(isa, tb, dr);
    }
}

/// The velocity of `rows` rows and its directional derivatives along `k` tangents a row, by
/// forward-mode propagation: the tangent rows ride under the primal rows through every
/// product, so each layer is one `gemm` of (1 + k)·rows rows.
///
/// # Formula
/// z = W h + b, h′ = σ(z); ż = W ḣ, ḣ′ = σ′(z) ⊙ ż. The input tangent is [ẋ, e′(t)·ṫ, 0]
/// (a condition has no tangent).
///
/// # Shapes
/// `x: [rows, d_x]`, `t: [rows]`, `dx: [k·rows, d_x]` and `dt: [k·rows]` (block p = the p-th
/// tangent of every row) → `v: [rows, d_x]`, `jv: [k·rows, d_x]`
#[allow(clippy::too_many_arguments)]
pub(crate) fn jvp_rows(
    isa: Isa,
    net: &FusedMlp,
    x: &[f32],
    t: &[f32],
    cond: HostCondition<'_>,
    dx: &[f32],
    dt: Option<&[f32]>,
    k: usize,
    work: &mut JvpWork,
    v: &mut [f32],
    jv: &mut [f32],
) {
    let l = &net.layout;
    let (rows, d0, dxw) = (t.len(), l.d0(), l.d_x);
    let m = (1 + k) * rows;
    work.ensure(m * d0, m, l.max_width().max(dxw), rows);
    let JvpWork { x: xin, a, b, d } = work;
    build_input(net, x, t, cond, rows, xin);
    let half = net.freqs.len();
    for p in 0..k {
        for (r, tr) in t.iter().enumerate() {
            let q = p * rows + r;
            let o = &mut xin[(rows + q) * d0..(rows + q + 1) * d0];
            o.fill(0.0);
            o[..dxw].copy_from_slice(&dx[q * dxw..(q + 1) * dxw]);
            let Some(dt) = dt else { continue };
            let e = &mut o[dxw..dxw + l.d_t];
            match net.config.time_embedding {
                TimeEmbeddingConfig::Raw => e[0] = dt[q],
                _ => {
                    for (j, w) in net.freqs.iter().enumerate() {
                        let (s, c) = (tr * w).sin_cos();
                        e[j] = -w * s * dt[q];
                        e[half + j] = w * c * dt[q];
                    }
                }
            }
        }
    }
    let p = &net.params;
    let act = net.config.activation;
    let nl = l.layers.len();
    let mut input: &[f32] = &xin[..m * d0];
    for s in &l.layers[..nl - 1] {
        tangent_layer(isa, act, p, *s, rows, m, input, b, d);
        std::mem::swap(a, b);
        input = &a[..m * s.d_out];
    }
    let so = l.layers[nl - 1];
    matmul(m, so.d_out, so.d_in, b, so.d_out, 1, input, so.d_in, 1, &p[so.w..], 1, so.d_in, false);
    let (primal, tangents) = b[..m * so.d_out].split_at_mut(rows * so.d_out);
    simd::bias_add(isa, primal, &p[so.b..so.b + so.d_out]);
    v[..rows * dxw].copy_from_slice(primal);
    jv[..k * rows * dxw].copy_from_slice(tangents);
}

/// The velocity of `rows` rows and its exact divergence ∇·v = Σᵢ ∂vᵢ/∂xᵢ: the d one-hot
/// tangents of [`jvp_rows`] without the two products they do not need. The first layer's
/// tangent along eᵢ is column i of W₀ (no product), and of the last layer's tangent outputs
/// only the diagonal one, row i of W_L times the tangent, is kept (a dot product instead of a
/// row of the last product). At d = 784 this leaves the hidden layers' products: a third of
/// the JVP's work.
///
/// # Formula
/// ż₀⁽ⁱ⁾ = W₀ eᵢ, ḣ⁽ⁱ⁾ = σ′(z) ⊙ ż⁽ⁱ⁾, ż⁽ⁱ⁾ = W ḣ⁽ⁱ⁾ through the hidden layers, then
/// ∇·v = Σᵢ (W_L)ᵢ · ḣ⁽ⁱ⁾.
///
/// # Shapes
/// `x: [rows, d_x]`, `t: [rows]` → `v: [rows, d_x]`, `div: [rows]`
#[allow(clippy::too_many_arguments)]
pub(crate) fn div_rows(
    isa: Isa,
    net: &FusedMlp,
    x: &[f32],
    t: &[f32],
    cond: HostCondition<'_>,
    work: &mut JvpWork,
    v: &mut [f32],
    div: &mut [f32],
) {
    let l = &net.layout;
    let (rows, d0, k) = (t.len(), l.d0(), l.d_x);
    let m = (1 + k) * rows;
    work.ensure(rows * d0, m, l.max_width().max(k), rows);
    let JvpWork { x: xin, a, b, d } = work;
    build_input(net, x, t, cond, rows, xin);
    let p = &net.params;
    let act = net.config.activation;
    let nl = l.layers.len();
    let last = l.layers[nl - 1];
    if nl == 1 {
        // Affine: v = W₀ [x, e(t), c] + b, ∇·v = Σᵢ (W₀)ᵢᵢ.
        matmul(rows, k, d0, v, k, 1, &xin[..rows * d0], d0, 1, &p[last.w..], 1, d0, false);
        simd::bias_add(isa, &mut v[..rows * k], &p[last.b..last.b + k]);
        let trace: f32 = (0..k).map(|i| p[last.w + i * d0 + i]).sum();
        div[..rows].fill(trace);
        return;
    }
    // First layer: the primal by a product, tangent i of every row = column i of W₀ ⊙ σ′(z).
    let s0 = l.layers[0];
    let w = s0.d_out;
    matmul(rows, w, d0, a, w, 1, &xin[..rows * d0], d0, 1, &p[s0.w..], 1, d0, false);
    let (primal, tangents) = a[..m * w].split_at_mut(rows * w);
    let dr = &mut d[..rows * w];
    simd::bias_act_grad(isa, act, primal, dr, &p[s0.b..s0.b + w]);
    for i in 0..k {
        for (r, o) in tangents[i * rows * w..(i + 1) * rows * w].chunks_exact_mut(w).enumerate() {
            for (j, oj) in o.iter_mut().enumerate() {
                *oj = p[s0.w + j * d0 + i];
            }
            simd::mul_in_place(isa, o, &dr[r * w..(r + 1) * w]);
        }
    }
    for s in &l.layers[1..nl - 1] {
        tangent_layer(isa, act, p, *s, rows, m, &a[..m * s.d_in], b, d);
        std::mem::swap(a, b);
    }
    let wi = last.d_in;
    matmul(rows, k, wi, v, k, 1, &a[..rows * wi], wi, 1, &p[last.w..], 1, wi, false);
    simd::bias_add(isa, &mut v[..rows * k], &p[last.b..last.b + k]);
    div[..rows].fill(0.0);
    for i in 0..k {
        let wrow = &p[last.w + i * wi..last.w + (i + 1) * wi];
        for (r, dv) in div[..rows].iter_mut().enumerate() {
            let q = rows + i * rows + r;
            *dv += simd::dot(isa, &a[q * wi..(q + 1) * wi], wrow);
        }
    }
}

/// Buffers of one thread's [`div_grad_rows`]: the stacked rows of the forward and backward
/// passes, and per hidden layer σ′(z), σ″(z) of the primal rows and the tangents ż.
#[derive(Debug, Default)]
pub(crate) struct DivGradWork {
    x: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
    d1: Vec<Vec<f32>>,
    d2: Vec<Vec<f32>>,
    zt: Vec<Vec<f32>>,
    zbar: Vec<f32>,
}

/// The velocity of `rows` rows, its exact divergence and the divergence's gradient ∇ₓ(∇·v),
/// by reverse mode through the d one-hot tangent passes of [`div_rows`].
///
/// # Formula
/// Forward: z = W h + b, h′ = σ(z); ż⁽ⁱ⁾ = W ḣ⁽ⁱ⁾ (ż₀⁽ⁱ⁾ = W₀ eᵢ), ḣ⁽ⁱ⁾ = σ′(z) ⊙ ż⁽ⁱ⁾;
/// ∇·v = Σᵢ (W_L)ᵢ · ḣ⁽ⁱ⁾. Backward, from ḡ⁽ⁱ⁾ = (W_L)ᵢ on the last tangents and h̄ = 0:
/// z̄ = h̄ ⊙ σ′(z) + Σᵢ ḡ⁽ⁱ⁾ ⊙ ż⁽ⁱ⁾ ⊙ σ″(z), the tangents' ż̄⁽ⁱ⁾ = ḡ⁽ⁱ⁾ ⊙ σ′(z), then one
/// product by W for both (h̄ = Wᵀ z̄, ḡ⁽ⁱ⁾ = Wᵀ ż̄⁽ⁱ⁾); at the first layer ∇ₓ = (W₀ᵀ z̄)ₓ (ż₀ does
/// not depend on x).
///
/// # Shapes
/// `x: [rows, d_x]`, `t: [rows]` → `v: [rows, d_x]`, `div: [rows]`, `grad: [rows, d_x]`
#[allow(clippy::too_many_arguments)]
pub(crate) fn div_grad_rows(
    isa: Isa,
    net: &FusedMlp,
    x: &[f32],
    t: &[f32],
    cond: HostCondition<'_>,
    work: &mut DivGradWork,
    v: &mut [f32],
    div: &mut [f32],
    grad: &mut [f32],
) {
    let l = &net.layout;
    let (rows, d0, k) = (t.len(), l.d0(), l.d_x);
    let m = (1 + k) * rows;
    let nl = l.layers.len();
    let hidden = nl - 1;
    let wmax = l.max_width().max(d0);
    let w = &mut *work;
    for (buf, len) in [(&mut w.x, rows * d0), (&mut w.a, m * wmax), (&mut w.b, m * wmax), (&mut w.zbar, rows * wmax)] {
        if buf.len() < len {
            buf.resize(len, 0.0);
        }
    }
    w.d1.resize_with(hidden, Vec::new);
    w.d2.resize_with(hidden, Vec::new);
    w.zt.resize_with(hidden, Vec::new);
    build_input(net, x, t, cond, rows, &mut w.x);
    let p = &net.params;
    let act = net.config.activation;
    let last = l.layers[nl - 1];
    if hidden == 0 {
        // Affine: constant divergence, zero gradient.
        matmul(rows, k, d0, v, k, 1, &w.x[..rows * d0], d0, 1, &p[last.w..], 1, d0, false);
        for r in 0..rows {
            for j in 0..k {
                v[r * k + j] += p[last.b + j];
            }
        }
        let trace: f32 = (0..k).map(|i| p[last.w + i * d0 + i]).sum();
        div[..rows].fill(trace);
        grad[..rows * k].fill(0.0);
        return;
    }
    // Forward: `a` holds the stacked rows [h; ḣ⁽⁰⁾; …; ḣ⁽ᵏ⁻¹⁾] of the current layer.
    for li in 0..hidden {
        let s = l.layers[li];
        let wd = s.d_out;
        if li == 0 {
            matmul(rows, wd, d0, &mut w.b, wd, 1, &w.x[..rows * d0], d0, 1, &p[s.w..], 1, d0, false);
            for i in 0..k {
                for r in 0..rows {
                    let o = &mut w.b[(rows + i * rows + r) * wd..(rows + i * rows + r + 1) * wd];
                    for (j, oj) in o.iter_mut().enumerate() {
                        *oj = p[s.w + j * d0 + i];
                    }
                }
            }
        } else {
            matmul(m, wd, s.d_in, &mut w.b, wd, 1, &w.a[..m * s.d_in], s.d_in, 1, &p[s.w..], 1, s.d_in, false);
        }
        let (d1, d2, zt) = (&mut w.d1[li], &mut w.d2[li], &mut w.zt[li]);
        d1.resize(rows * wd, 0.0);
        d2.resize(rows * wd, 0.0);
        zt.clear();
        zt.extend_from_slice(&w.b[rows * wd..m * wd]);
        let bias = &p[s.b..s.b + wd];
        let (primal, tangents) = w.b[..m * wd].split_at_mut(rows * wd);
        for ((zr, g1r), g2r) in primal.chunks_exact_mut(wd).zip(d1.chunks_exact_mut(wd)).zip(d2.chunks_exact_mut(wd)) {
            for (((z, g1), g2), b) in zr.iter_mut().zip(g1r.iter_mut()).zip(g2r.iter_mut()).zip(bias) {
                (*z, *g1, *g2) = simd::act_grad2(act, *z + b);
            }
        }
        for tb in tangents.chunks_exact_mut(rows * wd) {
            simd::mul_in_place(isa, tb, d1);
        }
        std::mem::swap(&mut w.a, &mut w.b);
    }
    // The last layer: v from the primal rows, ∇·v from the diagonal of the tangents.
    let wi = last.d_in;
    matmul(rows, k, wi, v, k, 1, &w.a[..rows * wi], wi, 1, &p[last.w..], 1, wi, false);
    for r in 0..rows {
        for j in 0..k {
            v[r * k + j] += p[last.b + j];
        }
        div[r] = (0..k)
            .map(|i| {
                let q = rows + i * rows + r;
                w.a[q * wi..(q + 1) * wi]
                    .iter()
                    .zip(&p[last.w + i * wi..last.w + (i + 1) * wi])
                    .map(|(a, b)| a * b)
                    .sum::<f32>()
            })
            .sum();
    }
    // Backward: `a` holds the stacked adjoints [h̄; ḡ⁽⁰⁾; …] of the current layer's outputs.
    w.a[..rows * wi].fill(0.0);
    for i in 0..k {
        for r in 0..rows {
            let q = rows + i * rows + r;
            w.a[q * wi..(q + 1) * wi].copy_from_slice(&p[last.w + i * wi..last.w + (i + 1) * wi]);
        }
    }
    for li in (0..hidden).rev() {
        let s = l.layers[li];
        let wd = s.d_out;
        let (d1, d2, zt) = (&w.d1[li], &w.d2[li], &w.zt[li]);
        let zbar = &mut w.zbar[..rows * wd];
        let (hbar, gbar) = w.a[..m * wd].split_at_mut(rows * wd);
        // Σᵢ ḡ⁽ⁱ⁾ ⊙ ż⁽ⁱ⁾, then z̄ = h̄ ⊙ σ′ + (that) ⊙ σ″.
        zbar.fill(0.0);
        for (gb, zb) in gbar.chunks_exact(rows * wd).zip(zt.chunks_exact(rows * wd)) {
            for ((o, g), z) in zbar.iter_mut().zip(gb).zip(zb) {
                *o += g * z;
            }
        }
        for (((o, h), g1), g2) in zbar.iter_mut().zip(hbar.iter()).zip(d1).zip(d2) {
            *o = h * g1 + *o * g2;
        }
        for gb in gbar.chunks_exact_mut(rows * wd) {
            simd::mul_in_place(isa, gb, d1);
        }
        hbar.copy_from_slice(zbar);
        if li == 0 {
            matmul(rows, k, wd, grad, k, 1, &w.a[..rows * wd], wd, 1, &p[s.w..], d0, 1, false);
        } else {
            matmul(m, s.d_in, wd, &mut w.b, s.d_in, 1, &w.a[..m * wd], wd, 1, &p[s.w..], s.d_in, 1, false);
            std::mem::swap(&mut w.a, &mut w.b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_layout_round_trips_the_pytorch_tensors_bit_for_bit() {
        let cfg = MlpFieldConfig {
            d_input: 3,
            d_hidden: 7,
            n_hidden: 2,
            time_embedding: TimeEmbeddingConfig::Fourier { dim: 4, std: 1.0 },
            condition: ConditionConfig::Class { n_classes: 2, d_embed: 5 },
            ..Default::default()
        };
        let net = FusedMlp::random(cfg, 3);
        assert_eq!(net.layout.len, cfg.num_params());
        assert_eq!(net.params.len(), cfg.num_params());
        let field = net.to_field::<crate::backend::Cpu>(&Default::default());
        let back = FusedMlp::from_field(&field);
        assert_eq!(back, net);
        // Offsets follow tensor_specs: net.2.weight starts after net.0.{weight,bias}.
        let d0 = 3 + 4 + 5;
        assert_eq!(net.layout.layers[1].w, d0 * 7 + 7);
        assert_eq!(net.layout.class, Some((net.layout.len - 3 * 5, 3, 5)));
    }
}
