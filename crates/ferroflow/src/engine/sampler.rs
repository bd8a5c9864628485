//! [`FusedField`]: the engine's inference side. It implements [`VelocityField`] (so every ODE
//! and SDE solver can use it) and [`JvpField`] (so every likelihood solve can: the tangents
//! ride as extra rows of each layer's product; the exact divergence needs only the diagonal of
//! the Jacobian, and [`FusedField::divergence_host`] computes no more), and has its own fixed-step sampler that keeps
//! each block of rows in cache through all solver steps.
//!
//! # Blocks and threads
//! The points are cut into blocks of at most [`VELOCITY_ROWS`] rows (fewer when that gives
//! every thread a block); each thread takes blocks i, i + T, … and runs *every* step of the
//! solver on a block before the next, so the block's activations (1,024 × 256 × 4 B = 1 MiB
//! per layer) stay near the core and the weights are shared read-only; `gemm` blocks each
//! product for the caches. The derivative kernels, which stack tangent rows under each point
//! and run their own elementwise passes, keep blocks of [`BLOCK_ROWS`] stacked rows.
//!
//! # Small batches
//! For blocks of ≤ 32 rows `gemm` costs more in packing the weights at every call than in the
//! product, so layers run as a register-blocked GEMV over groups of ≤ 4 rows: the weights are
//! pre-packed once into panels of 32 outputs × d_in (read contiguously), each panel's
//! 32 × rows accumulators stay in registers (AVX-512 intrinsics: 8 independent FMA chains,
//! the k loop split U ways for 1–2 rows), and bias + activation are fused into the store.
//! Batch 1 is then bound by streaming the weights from L2.

use burn::tensor::{Int, Tensor, TensorData, backend::Backend};

use super::bf16::{PackedLayer, Precision};
use super::mlp::{
    DivGradWork, FusedMlp, HostCondition, InferWork, JvpWork, SMALL_K, SMALL_N, div_grad_rows, div_rows, first_layer_t,
    forward_rows, jvp_rows,
};
use super::simd::{self, Isa, MulAdd};
use super::threads::{Threads, split};
use crate::guidance::GuidanceConfig;
use crate::likelihood::DivergenceMethod;
use crate::model::{Activation, Condition, JvpField, MlpField, VelocityField};
use crate::solver::OdeMethod;

/// Rows per cache block of the derivative kernels (JVP, divergence), tangent rows included.
pub const BLOCK_ROWS: usize = 256;
/// Rows per block of the velocity and the fixed-step sampler: `gemm` blocks for the caches
/// itself, and packs each layer's weights once per call, so larger blocks pay: 2,000 rows on
/// one thread (the explorer's snapshot) took 0.179 s per 32 evaluations in blocks of 1,024
/// against 0.198 s in blocks of 256 (BENCHMARKS.md, "Web explorer").
pub const VELOCITY_ROWS: usize = 1024;
/// The same under [`Precision::Bf16`], whose layers are packed once, when the precision is
/// set: smaller blocks keep their activations in the core's cache. `ferroflow sample -n
/// 100000 --steps 100 --precision bf16` (W2D, 2 threads) took 8.3–8.5 s in blocks of 256
/// against 10.3–10.4 s in blocks of 1,024; in f32, blocks of 256 took 16.3–18.0 s against
/// 15.7–16.7 s (BENCHMARKS.md, "bf16 hidden layers").
pub const VELOCITY_ROWS_BF16: usize = 256;
/// Rows of one register-blocked GEMV call.
pub const GEMV_ROWS: usize = 4;
/// Largest block that runs on the panel (GEMV) kernels rather than `gemm` (whose packing of
/// the weights at every call costs more than the product for few rows).
pub const PANEL_ROWS: usize = 32;
const PANEL: usize = 32;

/// An MLP field ready for fast inference on the CPU.
#[derive(Debug, Clone)]
pub struct FusedField {
    net: FusedMlp,
    w0t: Vec<f32>,
    /// Per layer: weights packed in panels of 32 outputs for the GEMV path (empty for layers
    /// handled by narrow loops).
    panels: Vec<Vec<f32>>,
    /// The hidden layers in bf16 while [`Precision::Bf16`] is set (and the CPU has it).
    bf16: Option<Vec<Option<PackedLayer>>>,
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
        Self { net, w0t, panels, bf16: None, threads: Threads::new(threads), isa: Isa::detect() }
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

    /// Sets the precision of the plain velocity ([`Self::velocity_host`], [`Self::integrate`]
    /// and [`VelocityField::velocity`]) on blocks of more than [`PANEL_ROWS`] rows:
    /// [`Precision::Bf16`] runs the hidden layers' products on bf16 operands where the CPU has
    /// AVX512-BF16 (≈ 2× faster products, velocities good to ≈ 0.5 %), and stays in f32
    /// elsewhere ([`Self::precision`] says which is in force). The derivatives (JVPs,
    /// divergences, guidance) stay in f32.
    pub fn set_precision(&mut self, precision: Precision) {
        self.bf16 = match precision {
            Precision::F32 => None,
            Precision::Bf16 => super::bf16::pack_hidden(&self.net),
        };
    }

    /// The precision in force: [`Precision::Bf16`] only where it was asked for and the CPU
    /// has it.
    pub fn precision(&self) -> Precision {
        if self.bf16.is_some() { Precision::Bf16 } else { Precision::F32 }
    }

    /// Rows per block of the velocity and the fixed-step sampler at the precision in force.
    fn block_rows(&self) -> usize {
        if self.bf16.is_some() { VELOCITY_ROWS_BF16 } else { VELOCITY_ROWS }
    }

    /// Velocity of a block of rows on this thread.
    fn block(&self, x: &[f32], t: &[f32], cond: HostCondition<'_>, rows: usize, w: &mut InferWork, out: &mut [f32]) {
        if rows <= PANEL_ROWS && rows > 0 {
            self.gemv_forward(x, t, cond, rows, w, out);
        } else {
            forward_rows(self.isa, &self.net, &self.w0t, self.bf16.as_deref(), x, t, cond, rows, w, out);
        }
    }

    fn gemv_forward(
        &self,
        x: &[f32],
        t: &[f32],
        cond: HostCondition<'_>,
        rows: usize,
        w: &mut InferWork,
        out: &mut [f32],
    ) {
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
            panel_layer(
                self.isa,
                rows,
                &xin[..rows * d0],
                &self.panels[0],
                d0,
                s0.d_out,
                &p[s0.b..s0.b + s0.d_out],
                Some(act),
                a,
            );
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
            panel_layer(
                self.isa,
                rows,
                &a[..rows * s.d_in],
                &self.panels[k],
                s.d_in,
                s.d_out,
                &p[s.b..s.b + s.d_out],
                act_k,
                dst,
            );
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
        let ranges = blocks(n, self.threads.count(), self.block_rows());
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
                self.block(
                    &x[r.start * d..r.end * d],
                    &t[r.clone()],
                    cond.rows(r.start, r.end, d_c),
                    r.len(),
                    &mut w,
                    o,
                );
            }
        });
    }

    /// v(x, t | cond) and its directional derivatives along `k = dx.len() / x.len()` tangents a
    /// point, on the host (threads over blocks of points; see [`super::mlp`]'s `jvp_rows`).
    /// Tangent block p holds the p-th tangent of every point, as in [`JvpField`].
    ///
    /// # Shapes
    /// `x: [n, d]`, `t: [n]`, `dx: [k·n, d]`, `dt: [k·n]` → `v: [n, d]`, `jv: [k·n, d]`
    #[allow(clippy::too_many_arguments)]
    pub fn jvp_host(
        &self,
        x: &[f32],
        t: &[f32],
        cond: HostCondition<'_>,
        dx: &[f32],
        dt: Option<&[f32]>,
        v: &mut [f32],
        jv: &mut [f32],
    ) {
        let d = self.net.config.d_input;
        let n = t.len();
        if n == 0 {
            return;
        }
        let k = dx.len() / (n * d);
        let d_c = self.net.layout.d_c;
        // Blocks of (1 + k)·rows ≤ BLOCK_ROWS stacked rows keep a layer's activations in L2.
        let per = n.div_ceil(self.threads.count()).clamp(1, (BLOCK_ROWS / (1 + k)).max(1));
        let ranges = split(n, n.div_ceil(per), 1);
        // Each job keeps its blocks' results; they are scattered after the join.
        type Job = Vec<(std::ops::Range<usize>, Vec<f32>, Vec<f32>)>;
        let mut jobs: Vec<Job> =
            per_thread(ranges.into_iter().map(|r| (r, Vec::new(), Vec::new())).collect(), self.threads.count());
        self.threads.for_each(&mut jobs, |_, job| {
            let mut w = JvpWork::default();
            let (mut dxb, mut dtb) = (Vec::new(), Vec::new());
            for (r, vb, jvb) in job.iter_mut() {
                let rows = r.len();
                dxb.clear();
                dtb.clear();
                for p in 0..k {
                    dxb.extend_from_slice(&dx[(p * n + r.start) * d..(p * n + r.end) * d]);
                    if let Some(dt) = dt {
                        dtb.extend_from_slice(&dt[p * n + r.start..p * n + r.end]);
                    }
                }
                vb.resize(rows * d, 0.0);
                jvb.resize(k * rows * d, 0.0);
                jvp_rows(
                    self.isa,
                    &self.net,
                    &x[r.start * d..r.end * d],
                    &t[r.clone()],
                    cond.rows(r.start, r.end, d_c),
                    &dxb,
                    dt.map(|_| &dtb[..]),
                    k,
                    &mut w,
                    vb,
                    jvb,
                );
            }
        });
        for (r, vb, jvb) in jobs.iter().flatten() {
            let rows = r.len();
            v[r.start * d..r.end * d].copy_from_slice(vb);
            for p in 0..k {
                jv[(p * n + r.start) * d..(p * n + r.end) * d].copy_from_slice(&jvb[p * rows * d..(p + 1) * rows * d]);
            }
        }
    }

    /// The velocity and its exact divergence at every point, on the host: the one-hot
    /// tangents of [`FusedField::jvp_host`] with the first layer's tangent product and the
    /// last layer's off-diagonal outputs skipped (see [`super::mlp`]'s `div_rows`).
    ///
    /// # Shapes
    /// `x: [n, d]`, `t: [n]` → `v: [n, d]`, `div: [n]`
    ///
    /// ```
    /// use ferroflow::engine::{FusedField, FusedMlp, HostCondition};
    /// use ferroflow::model::MlpFieldConfig;
    /// let cfg = MlpFieldConfig { d_input: 3, d_hidden: 16, n_hidden: 2, ..Default::default() };
    /// let f = FusedField::new(FusedMlp::random(cfg, 7), 1);
    /// let (x, t) = ([0.3f32, -0.2, 0.5], [0.4f32]);
    /// let (mut v, mut div) = ([0f32; 3], [0f32; 1]);
    /// f.divergence_host(&x, &t, HostCondition::None, &mut v, &mut div);
    /// // Σᵢ ∂vᵢ/∂xᵢ by central differences.
    /// let h = 1e-2f32;
    /// let fd: f32 = (0..3)
    ///     .map(|i| {
    ///         let (mut xp, mut xm, mut vp, mut vm) = (x, x, [0f32; 3], [0f32; 3]);
    ///         xp[i] += h;
    ///         xm[i] -= h;
    ///         f.velocity_host(&xp, &t, HostCondition::None, &mut vp);
    ///         f.velocity_host(&xm, &t, HostCondition::None, &mut vm);
    ///         (vp[i] - vm[i]) / (2.0 * h)
    ///     })
    ///     .sum();
    /// assert!((div[0] - fd).abs() < 1e-3 * fd.abs(), "{} vs {fd}", div[0]); // fd ≈ −0.0083
    /// ```
    pub fn divergence_host(&self, x: &[f32], t: &[f32], cond: HostCondition<'_>, v: &mut [f32], div: &mut [f32]) {
        let (d, d_c) = (self.net.config.d_input, self.net.layout.d_c);
        self.div_blocks(t.len(), v, div, &mut [], |w: &mut JvpWork, r, vb, db, _| {
            let c = cond.rows(r.start, r.end, d_c);
            div_rows(self.isa, &self.net, &x[r.start * d..r.end * d], &t[r], c, w, vb, db);
        });
    }

    /// The velocity, its exact divergence and the divergence's gradient ∇ₓ(∇·v) at every
    /// point, on the host, by reverse mode through the one-hot tangent passes (see
    /// [`super::mlp`]'s `div_grad_rows`): what mode-seeking guidance needs
    /// ([`FusedField::guided`]), without the autodiff backend.
    ///
    /// # Shapes
    /// `x: [n, d]`, `t: [n]` → `v: [n, d]`, `div: [n]`, `grad: [n, d]`
    #[allow(clippy::too_many_arguments)]
    pub fn divergence_gradient_host(
        &self,
        x: &[f32],
        t: &[f32],
        cond: HostCondition<'_>,
        v: &mut [f32],
        div: &mut [f32],
        grad: &mut [f32],
    ) {
        let (d, d_c) = (self.net.config.d_input, self.net.layout.d_c);
        self.div_blocks(t.len(), v, div, grad, |w: &mut DivGradWork, r, vb, db, gb| {
            let c = cond.rows(r.start, r.end, d_c);
            div_grad_rows(self.isa, &self.net, &x[r.start * d..r.end * d], &t[r], c, w, vb, db, gb);
        });
    }

    /// Runs `kernel` with a work buffer per thread on blocks of at most BLOCK_ROWS / (1 + d)
    /// points (each point's d tangent rows ride with it), each block writing its rows of `v`
    /// (`[n, d]`), `div` (`[n]`) and `grad` (`[n, d]`, or empty) in place.
    fn div_blocks<W: Default>(
        &self,
        n: usize,
        v: &mut [f32],
        div: &mut [f32],
        grad: &mut [f32],
        kernel: impl Fn(&mut W, std::ops::Range<usize>, &mut [f32], &mut [f32], &mut [f32]) + Sync,
    ) {
        if n == 0 {
            return;
        }
        let d = self.net.config.d_input;
        let gd = if grad.is_empty() { 0 } else { d };
        let per = n.div_ceil(self.threads.count()).clamp(1, (BLOCK_ROWS / (1 + d)).max(1));
        type Part<'a> = (std::ops::Range<usize>, &'a mut [f32], &'a mut [f32], &'a mut [f32]);
        let mut parts: Vec<Part<'_>> = Vec::new();
        let (mut vr, mut dr, mut gr) = (&mut v[..n * d], &mut div[..n], &mut grad[..n * gd]);
        for r in split(n, n.div_ceil(per), 1) {
            let (a, b) = std::mem::take(&mut vr).split_at_mut(r.len() * d);
            let (c, e) = std::mem::take(&mut dr).split_at_mut(r.len());
            let (f, g) = std::mem::take(&mut gr).split_at_mut(r.len() * gd);
            (vr, dr, gr) = (b, e, g);
            parts.push((r, a, c, f));
        }
        let mut jobs = per_thread(parts, self.threads.count());
        self.threads.for_each(&mut jobs, |_, job| {
            let mut w = W::default();
            for (r, vb, db, gb) in job.iter_mut() {
                kernel(&mut w, r.clone(), vb, db, gb);
            }
        });
    }

    /// This field with mode-seeking guidance, ṽ = v + λ·𝟙(t_min ≤ t ≤ t_max)·∇ₓ(−∇·v), the
    /// exact divergence's gradient by [`FusedField::divergence_gradient_host`]: the same
    /// field as [`crate::guidance::Guided`] on the burn path, without the autodiff backend.
    /// `None` for a Hutchinson divergence (that stays on [`crate::guidance::Guided`]).
    pub fn guided(&self, config: GuidanceConfig) -> Option<FusedGuided<'_>> {
        matches!(config.divergence, DivergenceMethod::Exact).then_some(FusedGuided { field: self, config })
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
        let ranges = blocks(n, self.threads.count(), self.block_rows());
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

/// Row blocks: at most `max_rows` rows, and at least one block per thread when n allows.
fn blocks(n: usize, threads: usize, max_rows: usize) -> Vec<std::ops::Range<usize>> {
    if n == 0 {
        return Vec::new();
    }
    let per = n.div_ceil(threads.max(1)).clamp(1, max_rows);
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

/// Σ_i h[r, i]·panel[i, :] for R rows by AVX-512 intrinsics: U·R·2 = 8 independent FMA
/// chains (U accumulator sets over i mod U), summed in the fixed order ((0 + 1) + (2 + 3)).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::needless_range_loop)]
fn panel_avx512<const R: usize, const U: usize>(ht: &[f32], panel: &[f32], k: usize) -> [[f32; PANEL]; R] {
    use std::arch::x86_64::*;
    assert!(ht.len() >= k * R && panel.len() >= k * PANEL && R * U <= 4);
    let mut acc = [[_mm512_setzero_ps(); 2]; 4];
    let (hp, wp) = (ht.as_ptr(), panel.as_ptr());
    let kk = k / U * U;
    let mut i = 0;
    // SAFETY (all loads below): i + u < k, so (i + u)·PANEL + 16 + 15 < k·PANEL ≤ panel.len()
    // and (i + u)·R + r < k·R ≤ ht.len() (asserted above).
    while i < kk {
        for u in 0..U {
            let (w0, w1) =
                unsafe { (_mm512_loadu_ps(wp.add((i + u) * PANEL)), _mm512_loadu_ps(wp.add((i + u) * PANEL + 16))) };
            for r in 0..R {
                let a = _mm512_set1_ps(unsafe { *hp.add((i + u) * R + r) });
                acc[u * R + r][0] = _mm512_fmadd_ps(a, w0, acc[u * R + r][0]);
                acc[u * R + r][1] = _mm512_fmadd_ps(a, w1, acc[u * R + r][1]);
            }
        }
        i += U;
    }
    while i < k {
        let (w0, w1) = unsafe { (_mm512_loadu_ps(wp.add(i * PANEL)), _mm512_loadu_ps(wp.add(i * PANEL + 16))) };
        for r in 0..R {
            let a = _mm512_set1_ps(unsafe { *hp.add(i * R + r) });
            acc[r][0] = _mm512_fmadd_ps(a, w0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(a, w1, acc[r][1]);
        }
        i += 1;
    }
    let mut out = [[0f32; PANEL]; R];
    for r in 0..R {
        let mut s = acc[r];
        if U == 2 {
            s = [_mm512_add_ps(s[0], acc[R + r][0]), _mm512_add_ps(s[1], acc[R + r][1])];
        } else if U == 4 {
            let a01 = [_mm512_add_ps(s[0], acc[1][0]), _mm512_add_ps(s[1], acc[1][1])];
            let a23 = [_mm512_add_ps(acc[2][0], acc[3][0]), _mm512_add_ps(acc[2][1], acc[3][1])];
            s = [_mm512_add_ps(a01[0], a23[0]), _mm512_add_ps(a01[1], a23[1])];
        }
        // SAFETY: out[r] holds 32 floats.
        unsafe {
            _mm512_storeu_ps(out[r].as_mut_ptr(), s[0]);
            _mm512_storeu_ps(out[r].as_mut_ptr().add(16), s[1]);
        }
    }
    out
}

/// The same sum by plain loops (vectorised by LLVM inside the AVX2 wrapper).
#[inline(always)]
fn panel_generic<M: MulAdd, const R: usize>(ht: &[f32], panel: &[f32], k: usize) -> [[f32; PANEL]; R] {
    let mut acc = [[0f32; PANEL]; R];
    for (w, hv) in panel[..k * PANEL].chunks_exact(PANEL).zip(ht[..k * R].chunks_exact(R)) {
        for r in 0..R {
            let a = hv[r];
            for c in 0..PANEL {
                acc[r][c] = M::mul_add(a, w[c], acc[r][c]);
            }
        }
    }
    acc
}

#[inline(always)]
fn apply(out: &mut [f32], z: &[f32], f: impl Fn(f32) -> f32) {
    for (o, v) in out.iter_mut().zip(z) {
        *o = f(*v);
    }
}

/// out[r, :] = act(bias + Σ_i h[r, i]·W[:, i]) for R ≤ 4 rows over panel-packed W.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemv_body<M: MulAdd, const R: usize, const U: usize, const X512: bool>(
    h: &[f32],
    panels: &[f32],
    k: usize,
    n: usize,
    bias: &[f32],
    act: Option<Activation>,
    out: &mut [f32],
) {
    // h transposed to [k, R]: the inner loop reads R consecutive values per i.
    let mut ht_buf = [0f32; 4096];
    let mut ht_vec = Vec::new();
    let ht: &mut [f32] = if R * k <= ht_buf.len() {
        &mut ht_buf[..R * k]
    } else {
        ht_vec.resize(R * k, 0.0);
        &mut ht_vec
    };
    for r in 0..R {
        for i in 0..k {
            ht[i * R + r] = h[r * k + i];
        }
    }
    let ht = &*ht;
    for p in 0..n.div_ceil(PANEL) {
        let panel = &panels[p * PANEL * k..(p + 1) * PANEL * k];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: X512 is true only inside the AVX-512 wrapper, reached after detection.
        let mut acc =
            if X512 { unsafe { panel_avx512::<R, U>(ht, panel, k) } } else { panel_generic::<M, R>(ht, panel, k) };
        #[cfg(not(target_arch = "x86_64"))]
        let mut acc = panel_generic::<M, R>(ht, panel, k);
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

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gemv_rows<M: MulAdd, const X512: bool>(
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
        1 => gemv_body::<M, 1, 4, X512>(h, panels, k, n, bias, act, out),
        2 => gemv_body::<M, 2, 2, X512>(h, panels, k, n, bias, act, out),
        3 => gemv_body::<M, 3, 1, X512>(h, panels, k, n, bias, act, out),
        _ => gemv_body::<M, 4, 1, X512>(h, panels, k, n, bias, act, out),
    }
}

/// One layer over panel-packed weights, rows in groups of [`GEMV_ROWS`].
#[allow(clippy::too_many_arguments)]
fn panel_layer(
    isa: Isa,
    rows: usize,
    h: &[f32],
    panels: &[f32],
    k: usize,
    n: usize,
    bias: &[f32],
    act: Option<Activation>,
    out: &mut [f32],
) {
    let mut r = 0;
    while r < rows {
        let g = GEMV_ROWS.min(rows - r);
        gemv(isa, g, &h[r * k..(r + g) * k], panels, k, n, bias, act, &mut out[r * n..(r + g) * n]);
        r += g;
    }
}

/// out[r, :] = act(b + W·h[r, :]) for ≤ 4 rows over panel-packed weights.
#[allow(clippy::too_many_arguments)]
fn gemv(
    isa: Isa,
    rows: usize,
    h: &[f32],
    panels: &[f32],
    k: usize,
    n: usize,
    bias: &[f32],
    act: Option<Activation>,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        fn v4(
            rows: usize,
            h: &[f32],
            panels: &[f32],
            k: usize,
            n: usize,
            bias: &[f32],
            act: Option<Activation>,
            out: &mut [f32],
        ) {
            gemv_rows::<simd::Fused, true>(rows, h, panels, k, n, bias, act, out)
        }
        #[target_feature(enable = "avx2,fma")]
        #[allow(clippy::too_many_arguments)]
        fn v3(
            rows: usize,
            h: &[f32],
            panels: &[f32],
            k: usize,
            n: usize,
            bias: &[f32],
            act: Option<Activation>,
            out: &mut [f32],
        ) {
            gemv_rows::<simd::Fused, false>(rows, h, panels, k, n, bias, act, out)
        }
        match isa {
            // SAFETY: the ISA was detected on this CPU.
            Isa::Avx512 => return unsafe { v4(rows, h, panels, k, n, bias, act, out) },
            // SAFETY: as above.
            Isa::Avx2 => return unsafe { v3(rows, h, panels, k, n, bias, act, out) },
            Isa::Portable => {}
        }
    }
    gemv_rows::<simd::Unfused, false>(rows, h, panels, k, n, bias, act, out)
}

/// A burn condition as host buffers (`labels` or `vecs` hold the values the returned
/// [`HostCondition`] borrows).
fn host_condition<'a, B: Backend>(
    cond: Option<&Condition<B>>,
    labels: &'a mut Vec<u32>,
    vecs: &'a mut Vec<f32>,
) -> HostCondition<'a> {
    match cond {
        Some(Condition::Class(l)) => {
            *labels = labels_of(l.clone());
            HostCondition::Class(labels)
        }
        Some(Condition::Vector(c)) => {
            *vecs = host_f32(c.clone());
            HostCondition::Vector(vecs)
        }
        None => HostCondition::None,
    }
}

fn host_f32<B: Backend, const D: usize>(x: Tensor<B, D>) -> Vec<f32> {
    x.into_data().convert::<f32>().into_vec::<f32>().expect("float tensor")
}

impl<B: Backend> VelocityField<B> for FusedField {
    fn dim(&self) -> usize {
        self.net.config.d_input
    }

    fn velocity(&self, x: Tensor<B, 2>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let device = x.device();
        let [n, d] = x.dims();
        let (xs, ts) = (host_f32(x), host_f32(t));
        let (mut labels, mut vecs) = (Vec::new(), Vec::new());
        let hc = host_condition(cond, &mut labels, &mut vecs);
        let mut out = vec![0f32; n * d];
        self.velocity_host(&xs, &ts, hc, &mut out);
        Tensor::from_data(TensorData::new(out, [n, d]).convert::<B::FloatElem>(), &device)
    }
}

impl<B: Backend> JvpField<B> for FusedField {
    /// By [`FusedField::jvp_host`]: the same forward-mode rules as [`MlpField`]'s JVP, fused.
    fn forward_jvp(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
        dx: Tensor<B, 2>,
        dt: Option<Tensor<B, 1>>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let device = x.device();
        let [n, d] = x.dims();
        let [kn, _] = dx.dims();
        let (xs, ts, dxs) = (host_f32(x), host_f32(t), host_f32(dx));
        let dts = dt.map(host_f32);
        let (mut labels, mut vecs) = (Vec::new(), Vec::new());
        let hc = host_condition(cond, &mut labels, &mut vecs);
        let (mut v, mut jv) = (vec![0f32; n * d], vec![0f32; kn * d]);
        self.jvp_host(&xs, &ts, hc, &dxs, dts.as_deref(), &mut v, &mut jv);
        let tensor = |data: Vec<f32>, rows| {
            Tensor::from_data(TensorData::new(data, [rows, d]).convert::<B::FloatElem>(), &device)
        };
        (tensor(v, n), tensor(jv, kn))
    }

    /// By [`FusedField::divergence_host`].
    fn velocity_and_divergence(
        &self,
        x: Tensor<B, 2>,
        t: Tensor<B, 1>,
        cond: Option<&Condition<B>>,
    ) -> (Tensor<B, 2>, Tensor<B, 1>) {
        let device = x.device();
        let [n, d] = x.dims();
        let (xs, ts) = (host_f32(x), host_f32(t));
        let (mut labels, mut vecs) = (Vec::new(), Vec::new());
        let hc = host_condition(cond, &mut labels, &mut vecs);
        let (mut v, mut div) = (vec![0f32; n * d], vec![0f32; n]);
        self.divergence_host(&xs, &ts, hc, &mut v, &mut div);
        (
            Tensor::from_data(TensorData::new(v, [n, d]).convert::<B::FloatElem>(), &device),
            Tensor::from_data(TensorData::new(div, [n]).convert::<B::FloatElem>(), &device),
        )
    }
}

/// A [`FusedField`] with mode-seeking guidance (exact divergence), from [`FusedField::guided`].
#[derive(Debug, Clone, Copy)]
pub struct FusedGuided<'a> {
    field: &'a FusedField,
    config: GuidanceConfig,
}

impl<B: Backend> VelocityField<B> for FusedGuided<'_> {
    fn dim(&self) -> usize {
        self.field.net.config.d_input
    }

    fn velocity(&self, x: Tensor<B, 2>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let c = &self.config;
        let device = x.device();
        let [n, d] = x.dims();
        let (xs, ts) = (host_f32(x), host_f32(t));
        let (mut labels, mut vecs) = (Vec::new(), Vec::new());
        let hc = host_condition(cond, &mut labels, &mut vecs);
        let mut v = vec![0f32; n * d];
        let inside = |ti: f32| c.t_min <= ti as f64 && ti as f64 <= c.t_max;
        if c.lambda == 0.0 || !ts.iter().any(|&ti| inside(ti)) {
            self.field.velocity_host(&xs, &ts, hc, &mut v);
        } else {
            let (mut div, mut grad) = (vec![0f32; n], vec![0f32; n * d]);
            self.field.divergence_gradient_host(&xs, &ts, hc, &mut v, &mut div, &mut grad);
            for (r, &ti) in ts.iter().enumerate() {
                if inside(ti) {
                    for j in 0..d {
                        v[r * d + j] -= (c.lambda * grad[r * d + j] as f64) as f32;
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(v, [n, d]).convert::<B::FloatElem>(), &device)
    }
}

/// Labels of a class condition, for callers that hold burn tensors.
pub fn labels_of<B: Backend>(labels: Tensor<B, 1, Int>) -> Vec<u32> {
    labels.into_data().convert::<i64>().into_vec::<i64>().expect("int tensor").into_iter().map(|v| v as u32).collect()
}
