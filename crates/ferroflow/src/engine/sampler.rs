//! [`FusedField`]: the engine's inference side. It implements [`VelocityField`] (so every ODE
//! and SDE solver can use it) and has its own fixed-step sampler that keeps each block of rows
//! in cache through all solver steps.
//!
//! # Blocks and threads
//! The points are cut into blocks of at most 256 rows (fewer when that gives every thread a
//! block); each thread takes blocks i, i + T, … and runs *every* step of the solver on a block
//! before the next, so the block's activations (256 × 256 × 4 B = 256 KiB per layer) stay in
//! L2 and the weights are shared read-only.
//!
//! # Small batches
//! For ≤ 4 rows `gemm` is slow to start (packing, dispatch), so hidden layers run as a
//! register-blocked GEMV: the weights are pre-packed into panels of 32 outputs × d_in (read
//! once, contiguously, per layer) and each panel's 32 × rows accumulators stay in registers,
//! fused with bias and activation. Batch 1 is then bound by streaming the weights from L2.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use super::mlp::{FusedMlp, HostCondition, InferWork, SMALL_K, SMALL_N, first_layer_t, forward_rows};
use super::simd::{self, Isa, MulAdd, kernel};
use super::threads::{Threads, split};
use crate::model::{Activation, Condition, MlpField, VelocityField};
use crate::solver::OdeMethod;

/// Rows per cache block.
pub const BLOCK_ROWS: usize = 256;
/// Largest batch that uses the GEMV path.
pub const GEMV_ROWS: usize = 4;
const PANEL: usize = 32;

/// An MLP field ready for fast inference on the CPU.
#[derive(Debug, Clone)]
pub struct FusedField {
    net: FusedMlp,
    w0t: Vec<f32>,
    /// Per layer: weights packed in panels of 32 outputs for the GEMV path (empty for layers
    /// handled by narrow loops).
    panels: Vec<Vec<f32>>,
    threads: Threads,
    isa: Isa,
}

impl FusedField {
    /// Prepares `net` for inference on `threads` threads (0: one per core).
    pub fn new(net: FusedMlp, threads: usize) -> Self {
        let mut w0t = Vec::new();
        first_layer_t(&net, &mut w0t);
        let nl = net.layout.layers.len();
        let panels = net
            .layout
            .layers
            .iter()
            .enumerate()
            .map(|(k, s)| {
                if (k == 0 && s.d_in <= SMALL_K) || (k == nl - 1 && s.d_out <= SMALL_N) {
                    return Vec::new();
                }
                let np = s.d_out.div_ceil(PANEL);
                let mut p = vec![0f32; np * PANEL * s.d_in];
                let w = &net.params[s.w..s.w + s.d_in * s.d_out];
                for o in 0..s.d_out {
                    let (pi, c) = (o / PANEL, o % PANEL);
                    for i in 0..s.d_in {
                        p[pi * PANEL * s.d_in + i * PANEL + c] = w[o * s.d_in + i];
                    }
                }
                p
            })
            .collect();
        Self { net, w0t, panels, threads: Threads::new(threads), isa: Isa::detect() }
    }

    /// The same weights as a burn field, prepared for inference.
    pub fn from_field<B: Backend>(field: &MlpField<B>, threads: usize) -> Self {
        Self::new(FusedMlp::from_field(field), threads)
    }

    /// The weights.
    pub fn net(&self) -> &FusedMlp {
        &self.net
    }

    /// Number of threads.
    pub fn threads(&self) -> usize {
        self.threads.count()
    }

    /// Runs on another instruction set (tests compare them).
    pub fn set_isa(&mut self, isa: Isa) {
        self.isa = isa;
    }

    /// Velocity of a block of rows on this thread.
    fn block(&self, x: &[f32], t: &[f32], cond: HostCondition<'_>, rows: usize, w: &mut InferWork, out: &mut [f32]) {
        if rows <= GEMV_ROWS && rows > 0 {
            self.gemv_forward(x, t, cond, rows, w, out);
        } else {
            forward_rows(self.isa, &self.net, &self.w0t, x, t, cond, rows, w, out);
        }
    }

    fn gemv_forward(&self, x: &[f32], t: &[f32], cond: HostCondition<'_>, rows: usize, w: &mut InferWork, out: &mut [f32]) {
        let net = &self.net;
        let l = &net.layout;
        w.ensure(l, rows);
        let (xin, a, b) = w.buffers();
        super::mlp::build_input(net, x, t, cond, rows, xin);
        let p = &net.params;
        let act = net.config.activation;
        let nl = l.layers.len();
        let d0 = l.d0();
        let s0 = l.layers[0];
        if self.panels[0].is_empty() {
            let n = s0.d_out;
            for r in 0..rows {
                let h = &mut a[r * n..(r + 1) * n];
                h.fill(0.0);
                for i in 0..d0 {
                    simd::axpy(self.isa, h, xin[r * d0 + i], &self.w0t[i * n..(i + 1) * n]);
                }
                simd::bias_act(self.isa, act, h, &p[s0.b..s0.b + n]);
            }
        } else {
            gemv(self.isa, rows, &xin[..rows * d0], &self.panels[0], d0, s0.d_out, &p[s0.b..s0.b + s0.d_out], Some(act), a);
        }
        for k in 1..nl {
            let s = l.layers[k];
            let last = k == nl - 1;
            if last && self.panels[k].is_empty() {
                let wo = &p[s.w..s.w + s.d_in * s.d_out];
                for r in 0..rows {
                    let hr = &a[r * s.d_in..(r + 1) * s.d_in];
                    for j in 0..s.d_out {
                        out[r * s.d_out + j] = p[s.b + j] + simd::dot(self.isa, hr, &wo[j * s.d_in..(j + 1) * s.d_in]);
                    }
                }
                return;
            }
            let dst: &mut [f32] = if last { &mut *out } else { &mut b[..] };
            let act_k = (!last).then_some(act);
            gemv(self.isa, rows, &a[..rows * s.d_in], &self.panels[k], s.d_in, s.d_out, &p[s.b..s.b + s.d_out], act_k, dst);
            if last {
                return;
            }
            std::mem::swap(a, b);
        }
    }

    /// v(x, t | cond) for every row, on the host (threads over blocks of rows).
    ///
    /// # Shapes
    /// `x: [n, d]`, `t: [n]` → `out: [n, d]`
    pub fn velocity_host(&self, x: &[f32], t: &[f32], cond: HostCondition<'_>, out: &mut [f32]) {
        let d = self.net.config.d_input;
        let n = t.len();
        let d_c = self.net.layout.d_c;
        let ranges = blocks(n, self.threads.count());
        let mut outs: Vec<(std::ops::Range<usize>, &mut [f32])> = Vec::new();
        let mut rest = &mut out[..n * d];
        for r in &ranges {
            let (a, b) = rest.split_at_mut(r.len() * d);
            outs.push((r.clone(), a));
            rest = b;
        }
        let mut jobs = per_thread(outs, self.threads.count());
        self.threads.for_each(&mut jobs, |_, job| {
            let mut w = InferWork::default();
            for (r, o) in job.iter_mut() {
                self.block(&x[r.start * d..r.end * d], &t[r.clone()], cond.rows(r.start, r.end, d_c), r.len(), &mut w, o);
            }
        });
    }

    /// Integrates dx/dt = v(x, t | cond) in place over the time grid `times` with a
    /// fixed-step method, block by block (see the module doc). Agrees with
    /// [`crate::solver::ode::integrate`] on the same field to f32 rounding: the same stage
    /// formulas in the same order.
    ///
    /// # Shapes
    /// `x: [n, d]` row-major, updated in place.
    pub fn integrate(&self, method: OdeMethod, x: &mut [f32], cond: HostCondition<'_>, times: &[f64]) {
        let d = self.net.config.d_input;
        let n = x.len() / d;
        let d_c = self.net.layout.d_c;
        let ranges = blocks(n, self.threads.count());
        let mut xs: Vec<(std::ops::Range<usize>, &mut [f32])> = Vec::new();
        let mut rest = &mut x[..n * d];
        for r in &ranges {
            let (a, b) = rest.split_at_mut(r.len() * d);
            xs.push((r.clone(), a));
            rest = b;
        }
        let mut jobs = per_thread(xs, self.threads.count());
        self.threads.for_each(&mut jobs, |_, job| {
            let mut w = InferWork::default();
            let mut st = Stages::default();
            for (r, xb) in job.iter_mut() {
                let c = cond.rows(r.start, r.end, d_c);
                for win in times.windows(2) {
                    self.rk_step(method, xb, c, win[0], win[1] - win[0], r.len(), &mut w, &mut st);
                }
            }
        });
    }

    /// One step of `method` on a block, with the same formulas as [`OdeMethod::step`] in f32.
    #[allow(clippy::too_many_arguments)]
    fn rk_step(
        &self,
        method: OdeMethod,
        x: &mut [f32],
        cond: HostCondition<'_>,
        t: f64,
        h: f64,
        rows: usize,
        w: &mut InferWork,
        st: &mut Stages,
    ) {
        let len = x.len();
        for b in [&mut st.k1, &mut st.k2, &mut st.k3, &mut st.k4, &mut st.y] {
            b.resize(len, 0.0);
        }
        st.t.resize(rows, 0.0);
        let Stages { k1, k2, k3, k4, y, t: tt } = st;
        let mut eval = |xi: &[f32], ti: f64, out: &mut [f32], tt: &mut Vec<f32>| {
            tt.fill(ti as f32);
            self.block(xi, tt, cond, rows, w, out);
        };
        let hf = h as f32;
        let h2 = (h / 2.0) as f32;
        match method {
            OdeMethod::Euler => {
                eval(x, t, k1, tt);
                for (xv, k) in x.iter_mut().zip(k1.iter()) {
                    *xv += *k * hf;
                }
            }
            OdeMethod::Midpoint => {
                eval(x, t, k1, tt);
                for ((yv, xv), k) in y.iter_mut().zip(x.iter()).zip(k1.iter()) {
                    *yv = *xv + *k * h2;
                }
                eval(y, t + h / 2.0, k2, tt);
                for (xv, k) in x.iter_mut().zip(k2.iter()) {
                    *xv += *k * hf;
                }
            }
            OdeMethod::Heun => {
                eval(x, t, k1, tt);
                for ((yv, xv), k) in y.iter_mut().zip(x.iter()).zip(k1.iter()) {
                    *yv = *xv + *k * hf;
                }
                eval(y, t + h, k2, tt);
                for ((xv, a), b) in x.iter_mut().zip(k1.iter()).zip(k2.iter()) {
                    *xv += (*a + *b) * h2;
                }
            }
            OdeMethod::Rk4 => {
                let h6 = (h / 6.0) as f32;
                eval(x, t, k1, tt);
                for ((yv, xv), k) in y.iter_mut().zip(x.iter()).zip(k1.iter()) {
                    *yv = *xv + *k * h2;
                }
                eval(y, t + h / 2.0, k2, tt);
                for ((yv, xv), k) in y.iter_mut().zip(x.iter()).zip(k2.iter()) {
                    *yv = *xv + *k * h2;
                }
                eval(y, t + h / 2.0, k3, tt);
                for ((yv, xv), k) in y.iter_mut().zip(x.iter()).zip(k3.iter()) {
                    *yv = *xv + *k * hf;
                }
                eval(y, t + h, k4, tt);
                for i in 0..len {
                    x[i] += (k1[i] + (k2[i] + k3[i]) * 2.0 + k4[i]) * h6;
                }
            }
        }
    }
}

#[derive(Default)]
struct Stages {
    k1: Vec<f32>,
    k2: Vec<f32>,
    k3: Vec<f32>,
    k4: Vec<f32>,
    y: Vec<f32>,
    t: Vec<f32>,
}

/// Row blocks: at most [`BLOCK_ROWS`] rows, and at least one block per thread when n allows.
fn blocks(n: usize, threads: usize) -> Vec<std::ops::Range<usize>> {
    if n == 0 {
        return Vec::new();
    }
    let per = n.div_ceil(threads.max(1)).clamp(1, BLOCK_ROWS);
    split(n, n.div_ceil(per), 1)
}

/// Deals items round-robin to `threads` lists (item i to list i mod threads).
fn per_thread<T>(items: Vec<T>, threads: usize) -> Vec<Vec<T>> {
    let k = threads.max(1).min(items.len().max(1));
    let mut out: Vec<Vec<T>> = (0..k).map(|_| Vec::new()).collect();
    for (i, it) in items.into_iter().enumerate() {
        out[i % k].push(it);
    }
    out
}

#[inline(always)]
fn apply(out: &mut [f32], z: &[f32], f: impl Fn(f32) -> f32) {
    for (o, v) in out.iter_mut().zip(z) {
        *o = f(*v);
    }
}

#[inline(always)]
fn gemv_body<M: MulAdd, const R: usize>(
    h: &[f32],
    panels: &[f32],
    k: usize,
    n: usize,
    bias: &[f32],
    act: Option<Activation>,
    out: &mut [f32],
) {
    for p in 0..n.div_ceil(PANEL) {
        let mut acc = [[0f32; PANEL]; R];
        let panel = &panels[p * PANEL * k..(p + 1) * PANEL * k];
        for i in 0..k {
            let w: &[f32; PANEL] = panel[i * PANEL..(i + 1) * PANEL].try_into().expect("panel row");
            for r in 0..R {
                let a = h[r * k + i];
                for c in 0..PANEL {
                    acc[r][c] = M::mul_add(a, w[c], acc[r][c]);
                }
            }
        }
        let o0 = p * PANEL;
        let valid = PANEL.min(n - o0);
        for (r, accr) in acc.iter_mut().enumerate() {
            for c in 0..valid {
                accr[c] += bias[o0 + c];
            }
            let o = &mut out[r * n + o0..r * n + o0 + valid];
            match act {
                Some(Activation::Silu) => apply(o, accr, |z| simd::act_only::<M>(Activation::Silu, z)),
                Some(Activation::Relu) => apply(o, accr, |z| simd::act_only::<M>(Activation::Relu, z)),
                Some(Activation::Tanh) => apply(o, accr, |z| simd::act_only::<M>(Activation::Tanh, z)),
                Some(Activation::Gelu) => apply(o, accr, |z| simd::act_only::<M>(Activation::Gelu, z)),
                None => o.copy_from_slice(&accr[..valid]),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn gemv_rows<M: MulAdd>(
    rows: usize,
    h: &[f32],
    panels: &[f32],
    k: usize,
    n: usize,
    bias: &[f32],
    act: Option<Activation>,
    out: &mut [f32],
) {
    match rows {
        1 => gemv_body::<M, 1>(h, panels, k, n, bias, act, out),
        2 => gemv_body::<M, 2>(h, panels, k, n, bias, act, out),
        3 => gemv_body::<M, 3>(h, panels, k, n, bias, act, out),
        _ => gemv_body::<M, 4>(h, panels, k, n, bias, act, out),
    }
}

kernel! {
    /// out[r, :] = act(b + W·h[r, :]) for ≤ 4 rows over panel-packed weights.
    fn gemv(rows: usize, h: &[f32], panels: &[f32], k: usize, n: usize, bias: &[f32], act: Option<Activation>, out: &mut [f32]) => gemv_rows
}

impl<B: Backend> VelocityField<B> for FusedField {
    fn dim(&self) -> usize {
        self.net.config.d_input
    }

    fn velocity(&self, x: Tensor<B, 2>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let device = x.device();
        let [n, d] = x.dims();
        let xs = x.into_data().convert::<f32>().into_vec::<f32>().expect("float tensor");
        let ts = t.into_data().convert::<f32>().into_vec::<f32>().expect("float tensor");
        let labels: Vec<u32>;
        let vecs: Vec<f32>;
        let hc = match cond {
            Some(Condition::Class(l)) => {
                labels = l.clone().into_data().convert::<i64>().into_vec::<i64>().expect("int tensor").into_iter().map(|v| v as u32).collect();
                HostCondition::Class(&labels)
            }
            Some(Condition::Vector(c)) => {
                vecs = c.clone().into_data().convert::<f32>().into_vec::<f32>().expect("float tensor");
                HostCondition::Vector(&vecs)
            }
            None => HostCondition::None,
        };
        let mut out = vec![0f32; n * d];
        self.velocity_host(&xs, &ts, hc, &mut out);
        Tensor::from_data(TensorData::new(out, [n, d]).convert::<B::FloatElem>(), &device)
    }
}

/// Labels of a class condition, for callers that hold burn tensors.
pub fn labels_of<B: Backend>(labels: Tensor<B, 1, Int>) -> Vec<u32> {
    labels.into_data().convert::<i64>().into_vec::<i64>().expect("int tensor").into_iter().map(|v| v as u32).collect()
}
