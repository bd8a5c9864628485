//! What the page draws from a model: particle trajectories under the chosen sampler, the
//! velocity field on a grid, and the exact log-density on a grid. Every function here is
//! blocking (it runs on a session's trainer thread or on tokio's blocking pool).

use burn::tensor::{Int, Tensor, TensorData};
use ferroflow::backend::{Cpu, CpuAutodiff};
use ferroflow::data::Points;
use ferroflow::engine::{FusedField, FusedMlp, HostCondition, Precision};
use ferroflow::guidance::{GuidanceConfig, Guided};
use ferroflow::likelihood::{DivergenceMethod, LikelihoodConfig, density::log_density_grid};
use ferroflow::model::{ClassifierFree, Condition, JvpField, VelocityField};
use ferroflow::path::SchedulerConfig;
use ferroflow::plot::Grid;
use ferroflow::solver::{Diffusion, OdeMethod, SdeConfig, SolverConfig};

use crate::settings::{LiveSettings, SamplerKind};

/// Points recorded along a solve from t = 0 to t = 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// The times, 0 first and 1 last.
    pub times: Vec<f32>,
    /// `times.len()` states of `n` 2D points, state-major: `states[(k·n + i)·2 + c]`.
    pub states: Vec<f32>,
    /// Points per state.
    pub n: usize,
    /// Velocity evaluations spent (per point).
    pub nfe: usize,
    /// The precision of the velocities ([`FusedField::precision`]).
    pub precision: Precision,
}

impl Trajectory {
    /// The last state (t = 1).
    pub fn end(&self) -> Points {
        let k = self.times.len() - 1;
        Points { data: self.states[k * self.n * 2..].to_vec(), n: self.n, dim: 2 }
    }

    /// The mean length of the particles' polylines Σₖ ‖x_{k+1} − x_k‖.
    pub fn mean_path_length(&self) -> f64 {
        let (n, k) = (self.n, self.times.len());
        let mut total = 0.0;
        for s in 1..k {
            for i in 0..n {
                let a = &self.states[((s - 1) * n + i) * 2..][..2];
                let b = &self.states[(s * n + i) * 2..][..2];
                total += (((b[0] - a[0]) as f64).powi(2) + ((b[1] - a[1]) as f64).powi(2)).sqrt();
            }
        }
        total / n.max(1) as f64
    }
}

/// Why sampling failed.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// A solver error (Dopri5 budget, SDE singular score).
    #[error(transparent)]
    Solver(#[from] ferroflow::solver::SolverError),
    /// A library error.
    #[error(transparent)]
    Lib(#[from] ferroflow::Error),
    /// A guidance setting.
    #[error(transparent)]
    Config(#[from] ferroflow::error::ConfigError),
}

/// Steps of a fixed-step method for a budget of `nfe` evaluations (at least 1).
///
/// ```
/// use ferroflow::solver::OdeMethod;
/// assert_eq!(ferroflow_serve::sampling::steps_for(OdeMethod::Rk4, 32), 8);
/// assert_eq!(ferroflow_serve::sampling::steps_for(OdeMethod::Rk4, 2), 1);
/// ```
pub fn steps_for(method: OdeMethod, nfe: usize) -> usize {
    (nfe / method.evals_per_step()).max(1)
}

/// A host-side velocity: the plain field, or classifier-free guidance
/// ṽ = (1 + w)·v(x, t | c) − w·v(x, t | ∅) (Ho & Salimans 2022, eq. 6, on velocities; w = 0 is
/// the conditional field, as in `ferroflow sample --cfg w` and [`ClassifierFree`]).
struct HostVelocity<'a> {
    field: &'a FusedField,
    labels: Option<&'a [u32]>,
    cfg_w: f64,
}

impl HostVelocity<'_> {
    fn eval(&self, x: &[f32], t: f32, out: &mut [f32], tmp: &mut Vec<f32>) {
        let n = x.len() / 2;
        let tt = vec![t; n];
        match self.labels {
            None => self.field.velocity_host(x, &tt, HostCondition::None, out),
            Some(l) if self.cfg_w == 0.0 => self.field.velocity_host(x, &tt, HostCondition::Class(l), out),
            Some(l) => {
                tmp.resize(x.len(), 0.0);
                self.field.velocity_host(x, &tt, HostCondition::None, tmp);
                self.field.velocity_host(x, &tt, HostCondition::Class(l), out);
                let w = self.cfg_w as f32;
                for (o, u) in out.iter_mut().zip(tmp.iter()) {
                    *o += w * (*o - *u);
                }
            }
        }
    }
}

/// One fixed step on the host, with the stage formulas of
/// [`ferroflow::solver::OdeMethod::step`] in the same order (so the result equals the library
/// solver on the same field to f32 rounding).
fn host_step(method: OdeMethod, v: &HostVelocity<'_>, x: &mut [f32], t: f64, h: f64, tmp: &mut Vec<f32>) {
    let n = x.len();
    let mut k1 = vec![0f32; n];
    let axpy = |x: &[f32], k: &[f32], a: f64| -> Vec<f32> { x.iter().zip(k).map(|(x, k)| x + k * a as f32).collect() };
    v.eval(x, t as f32, &mut k1, tmp);
    match method {
        OdeMethod::Euler => {
            for (x, k) in x.iter_mut().zip(&k1) {
                *x += k * h as f32;
            }
        }
        OdeMethod::Midpoint => {
            let mut k2 = vec![0f32; n];
            v.eval(&axpy(x, &k1, h / 2.0), (t + h / 2.0) as f32, &mut k2, tmp);
            for (x, k) in x.iter_mut().zip(&k2) {
                *x += k * h as f32;
            }
        }
        OdeMethod::Heun => {
            let mut k2 = vec![0f32; n];
            v.eval(&axpy(x, &k1, h), (t + h) as f32, &mut k2, tmp);
            for ((x, a), b) in x.iter_mut().zip(&k1).zip(&k2) {
                *x += (a + b) * (h / 2.0) as f32;
            }
        }
        OdeMethod::Rk4 => {
            let (mut k2, mut k3, mut k4) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
            v.eval(&axpy(x, &k1, h / 2.0), (t + h / 2.0) as f32, &mut k2, tmp);
            v.eval(&axpy(x, &k2, h / 2.0), (t + h / 2.0) as f32, &mut k3, tmp);
            v.eval(&axpy(x, &k3, h), (t + h) as f32, &mut k4, tmp);
            for i in 0..n {
                x[i] += (k1[i] + (k2[i] + k3[i]) * 2.0 + k4[i]) * (h / 6.0) as f32;
            }
        }
    }
}

/// Particles per lane of a [`SteppedSample`]: a piece (one lane, one solver step) of the
/// explorer's snapshot (W2D network, Euler, bf16) takes ≈ 0.2 ms, short enough that a thread
/// in one is hardly late for the training job it waited for. More than 32 rows, so the bf16
/// products apply (smaller blocks take the f32 GEMV path).
pub const LANE_ROWS: usize = 128;

/// The host's fixed-step path in pieces: the particles cut into lanes of [`LANE_ROWS`], each
/// carried one solver step at a time by whichever thread claims it, in any order (a particle's
/// path depends on nothing else). The explorer draws its snapshots this way in the gaps of
/// training ([`ferroflow::engine::GapWork`]); [`sample`] runs the same pieces in a row.
pub struct SteppedSample {
    field: FusedField,
    labels: Option<Vec<u32>>,
    cfg_w: f64,
    method: OdeMethod,
    steps: usize,
    n: usize,
    lanes: Vec<std::sync::Mutex<Lane>>,
    /// Pieces done (all: `lanes × steps`).
    pieces: std::sync::atomic::AtomicUsize,
    /// Where the next claim starts looking (spreads the threads over the lanes).
    next: std::sync::atomic::AtomicUsize,
}

/// One lane of a [`SteppedSample`]: its rows' state and the states recorded so far.
struct Lane {
    r0: usize,
    x: Vec<f32>,
    /// Steps taken.
    k: usize,
    /// The states from x₀ on, step-major (`k + 1` of them).
    states: Vec<f32>,
    tmp: Vec<f32>,
}

impl SteppedSample {
    /// The pieces of [`sample`]'s host path, or `None` where that path does not apply
    /// (Dopri5, the SDE, divergence guidance: they run whole through the library's solvers).
    pub fn new(
        net: &FusedMlp,
        x0: &Points,
        labels: Option<&[u32]>,
        live: &LiveSettings,
        precision: Precision,
    ) -> Option<Self> {
        let SamplerKind::Fixed(method) = live.sampler else { return None };
        if live.guidance != 0.0 {
            return None;
        }
        let mut field = FusedField::new(net.clone(), 1);
        field.set_precision(precision);
        let steps = steps_for(method, live.nfe);
        let lanes = (0..x0.n.div_ceil(LANE_ROWS))
            .map(|b| {
                let (r0, r1) = (b * LANE_ROWS, ((b + 1) * LANE_ROWS).min(x0.n));
                let x = x0.data[r0 * 2..r1 * 2].to_vec();
                let mut states = Vec::with_capacity((steps + 1) * x.len());
                states.extend_from_slice(&x);
                std::sync::Mutex::new(Lane { r0, x, k: 0, states, tmp: Vec::new() })
            })
            .collect();
        Some(SteppedSample {
            field,
            labels: labels.map(<[u32]>::to_vec),
            cfg_w: live.cfg_w,
            method,
            steps,
            n: x0.n,
            lanes,
            pieces: Default::default(),
            next: Default::default(),
        })
    }

    /// Carries one lane that no other thread holds one step further; false when every lane
    /// is finished or held.
    pub fn run_piece(&self) -> bool {
        use std::sync::atomic::Ordering;
        let m = self.lanes.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for j in 0..m {
            let mut lane = match self.lanes[(start + j) % m].try_lock() {
                Ok(lane) => lane,
                Err(std::sync::TryLockError::WouldBlock) => continue,
                // A piece panicked in this lane: its step is taken again (and panics again
                // where the panic is the model's, for `finish`'s caller to report).
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            };
            if lane.k == self.steps {
                continue;
            }
            let Lane { r0, x, k, states, tmp } = &mut *lane;
            let rows = x.len() / 2;
            let v = HostVelocity {
                field: &self.field,
                labels: self.labels.as_deref().map(|l| &l[*r0..*r0 + rows]),
                cfg_w: self.cfg_w,
            };
            let (a, b) = (*k as f64 / self.steps as f64, (*k + 1) as f64 / self.steps as f64);
            host_step(self.method, &v, x, a, b - a, tmp);
            states.extend_from_slice(x);
            *k += 1;
            self.pieces.fetch_add(1, Ordering::AcqRel);
            return true;
        }
        false
    }

    /// Whether every lane has reached t = 1.
    pub fn is_done(&self) -> bool {
        self.pieces.load(std::sync::atomic::Ordering::Acquire) == self.lanes.len() * self.steps
    }

    /// The share of the pieces done, 0 to 1.
    pub fn progress(&self) -> f64 {
        let done = self.pieces.load(std::sync::atomic::Ordering::Acquire);
        done as f64 / (self.lanes.len() * self.steps).max(1) as f64
    }

    /// Runs the pieces left on this thread, waits for those other threads hold, and returns
    /// the trajectory.
    pub fn finish(&self) -> Trajectory {
        while !self.is_done() {
            if !self.run_piece() {
                std::thread::yield_now();
            }
        }
        let n = self.n;
        let mut states = vec![0f32; (self.steps + 1) * n * 2];
        let times = (0..=self.steps).map(|k| (k as f64 / self.steps as f64) as f32).collect();
        for lane in &self.lanes {
            let lane = lane.lock().unwrap_or_else(|e| e.into_inner());
            let w = lane.x.len();
            for (k, state) in lane.states.chunks_exact(w).enumerate() {
                let dst = (k * n + lane.r0) * 2;
                states[dst..dst + w].copy_from_slice(state);
            }
        }
        let evals = if self.labels.is_some() && self.cfg_w != 0.0 { 2 } else { 1 };
        Trajectory {
            times,
            states,
            n,
            nfe: self.steps * self.method.evals_per_step() * evals,
            precision: self.field.precision(),
        }
    }
}

fn class_tensor(labels: &[u32]) -> Tensor<Cpu, 1, Int> {
    let l: Vec<i64> = labels.iter().map(|&c| c as i64).collect();
    Tensor::from_data(TensorData::new(l, [labels.len()]), &Default::default())
}

fn collect(times: Vec<f64>, states: Vec<Points>, n: usize, nfe: usize, precision: Precision) -> Trajectory {
    let times = times.iter().map(|&t| t as f32).collect();
    let states = states.into_iter().flat_map(|p| p.data).collect();
    Trajectory { times, states, n, nfe, precision }
}

/// Carries `x0` from t = 0 to t = 1 through the model `net`, recording every solver step.
///
/// Fixed-step methods without divergence guidance run on the host (the fused engine's
/// `velocity_host`, CFG combined per stage); Dopri5, the SDE and guidance λ ≠ 0 run through
/// the library's solvers, guidance on the fused field's exact ∇ₓ(∇·v)
/// ([`FusedField::guided`]), or with CFG as well on the autodiff backend.
/// `labels` (one per point) select the classes of a conditional model. `precision` is the
/// velocity's on the host's fixed-step path ([`FusedField::set_precision`]): the page's
/// particles take [`Precision::Bf16`] (≈ 1.8× faster where the CPU has it, good to a fraction
/// of a pixel), exports [`Precision::F32`]. Dopri5 (whose step control would chase bf16's
/// rounding), the SDE and guidance always run in f32.
///
/// # Errors
/// [`SampleError`] from the library's solvers.
pub fn sample(
    net: &FusedMlp,
    x0: &Points,
    labels: Option<&[u32]>,
    live: &LiveSettings,
    scheduler: SchedulerConfig,
    seed: u64,
    precision: Precision,
) -> Result<Trajectory, SampleError> {
    if let Some(stepped) = SteppedSample::new(net, x0, labels, live, precision) {
        return Ok(stepped.finish());
    }
    let field = FusedField::new(net.clone(), 1);
    let n = x0.n;
    let device = Default::default();
    let x = x0.to_tensor::<Cpu>(&device);
    let cond = labels.map(|l| Condition::Class(class_tensor(l)));
    let solve = |f: &dyn VelocityField<Cpu>| -> Result<Trajectory, SampleError> {
        let sol =
            match live.sampler {
                SamplerKind::Fixed(method) => SolverConfig::Fixed { method, steps: steps_for(method, live.nfe) }
                    .solve(f, x, cond.as_ref(), 0.0, 1.0, true)?,
                SamplerKind::Dopri5 => SolverConfig::Dopri5 { atol: 1e-4, rtol: 1e-4, max_steps: 1000 }.solve(
                    f,
                    x,
                    cond.as_ref(),
                    0.0,
                    1.0,
                    true,
                )?,
                SamplerKind::Sde => {
                    // The score is singular where σ_t = 0 (t = 1 for CondOT): no noise on the last 2 %.
                    let sde = SdeConfig {
                        scheduler,
                        diffusion: Diffusion::ConstantUntil { g: live.sde_g, t_max: 0.98 },
                        steps: live.nfe,
                    };
                    sde.sample_recorded(f, x, cond.as_ref(), &mut ferroflow::rng::seeded(seed), true)?
                }
            };
        Ok(collect(sol.times, sol.trajectory.unwrap_or_default(), n, sol.nfe, Precision::F32))
    };
    // Classifier-free guidance for every sampler: the labels come with `cond`.
    let null = match net.config.condition {
        ferroflow::model::ConditionConfig::Class { n_classes, .. } if labels.is_some() && live.cfg_w != 0.0 => {
            Some(n_classes as u32)
        }
        _ => None,
    };
    let guidance =
        GuidanceConfig { lambda: live.guidance, divergence: DivergenceMethod::Exact, ..GuidanceConfig::default() };
    match (live.guidance == 0.0, null) {
        (true, None) => solve(&field),
        (true, Some(null)) => solve(&ClassifierFree::new(&field, live.cfg_w, None, null)?),
        // The fused engine's exact ∇ₓ(∇·v) (the same field as `Guided`, without autodiff).
        (false, None) => {
            guidance.validate()?;
            match field.guided(guidance) {
                Some(g) => solve(&g),
                None => solve(&Guided::<CpuAutodiff, _>::new(net.to_field::<CpuAutodiff>(&device), guidance)?),
            }
        }
        (false, Some(null)) => {
            let cfg = ClassifierFree::new(net.to_field::<CpuAutodiff>(&device), live.cfg_w, None, null)?;
            solve(&Guided::<CpuAutodiff, _>::new(cfg, guidance)?)
        }
    }
}

/// The view box (x₀, x₁, y₀, y₁): a square around the points with a 10 % margin.
pub fn view_box(sets: &[&Points]) -> [f64; 4] {
    let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
    for p in sets {
        for r in p.data.chunks(2) {
            for c in 0..2 {
                let v = r[c] as f64;
                if v.is_finite() {
                    lo[c] = lo[c].min(v);
                    hi[c] = hi[c].max(v);
                }
            }
        }
    }
    if !(lo[0] < hi[0] && lo[1] < hi[1]) {
        return [-4.0, 4.0, -4.0, 4.0];
    }
    let half = 0.55 * (hi[0] - lo[0]).max(hi[1] - lo[1]);
    let (cx, cy) = ((lo[0] + hi[0]) / 2.0, (lo[1] + hi[1]) / 2.0);
    [cx - half, cx + half, cy - half, cy + half]
}

/// The velocity v(x, t) at the centres of a `res × res` grid over `view`, row-major
/// (`out[(j·res + i)·2 + c]`, j along y); the unconditional field for a conditional model.
pub fn velocity_grid(net: &FusedMlp, t: f64, res: usize, view: [f64; 4]) -> Vec<f32> {
    let field = FusedField::new(net.clone(), 1);
    let grid = Grid { values: Vec::new(), nx: res, ny: res, x_range: (view[0], view[1]), y_range: (view[2], view[3]) };
    let x: Vec<f32> = (0..res * res)
        .flat_map(|k| {
            let (x, y) = grid.cell_centre(k % res, k / res);
            [x as f32, y as f32]
        })
        .collect();
    let mut out = vec![0f32; x.len()];
    field.velocity_host(&x, &vec![t as f32; res * res], HostCondition::None, &mut out);
    out
}

/// A field seen on the rescaled clock s ∈ [0, 1] ↦ s·t: v′(x, s) = t·v(x, s·t). Its flow
/// from s = 0 to 1 is the flow of v from 0 to t, so its p₁ is the model's p_t.
struct TimeScaled<'a, F> {
    field: &'a F,
    t: f64,
}

impl<F: VelocityField<Cpu>> VelocityField<Cpu> for TimeScaled<'_, F> {
    fn dim(&self) -> usize {
        self.field.dim()
    }
    fn velocity(&self, x: Tensor<Cpu, 2>, s: Tensor<Cpu, 1>, cond: Option<&Condition<Cpu>>) -> Tensor<Cpu, 2> {
        self.field.velocity(x, s.mul_scalar(self.t), cond).mul_scalar(self.t)
    }
}

impl<F: JvpField<Cpu>> JvpField<Cpu> for TimeScaled<'_, F> {
    fn forward_jvp(
        &self,
        x: Tensor<Cpu, 2>,
        s: Tensor<Cpu, 1>,
        cond: Option<&Condition<Cpu>>,
        dx: Tensor<Cpu, 2>,
        ds: Option<Tensor<Cpu, 1>>,
    ) -> (Tensor<Cpu, 2>, Tensor<Cpu, 2>) {
        let (v, jv) = self.field.forward_jvp(x, s.mul_scalar(self.t), cond, dx, ds.map(|d| d.mul_scalar(self.t)));
        (v.mul_scalar(self.t), jv.mul_scalar(self.t))
    }
    /// ∇ₓ·v′(x, s) = t·(∇·v)(x, s·t), on the inner field's own route.
    fn velocity_and_divergence(
        &self,
        x: Tensor<Cpu, 2>,
        s: Tensor<Cpu, 1>,
        cond: Option<&Condition<Cpu>>,
    ) -> (Tensor<Cpu, 2>, Tensor<Cpu, 1>) {
        let (v, div) = self.field.velocity_and_divergence(x, s.mul_scalar(self.t), cond);
        (v.mul_scalar(self.t), div.mul_scalar(self.t))
    }
}

/// Steps of the RK4 likelihood solve behind the heat map (4 evaluations each, every one with
/// the exact divergence: 2 tangent passes in 2D).
pub const DENSITY_RK4_STEPS: usize = 4;

/// log p_t of the model at the centres of a `res × res` grid over `view` (nats;
/// `values[j·res + i]`, j along y), by the instantaneous change of variables with the exact
/// divergence (Chen et al. 2018, Thm. 1) integrated back from t to 0 with RK4.
///
/// # Errors
/// [`SampleError`] from the likelihood solve.
pub fn density_grid(
    net: &FusedMlp,
    t: f64,
    res: usize,
    view: [f64; 4],
    scheduler: SchedulerConfig,
) -> Result<Grid, SampleError> {
    let device = Default::default();
    // The engine's fused JVP: ≈ 6× the burn path's tangent propagation (BENCHMARKS.md).
    let model = FusedField::new(net.clone(), 1);
    let config = LikelihoodConfig {
        solver: SolverConfig::Fixed { method: OdeMethod::Rk4, steps: DENSITY_RK4_STEPS },
        divergence: DivergenceMethod::Exact,
        source_std: scheduler.source_std(),
    };
    let (xr, yr) = ((view[0], view[1]), (view[2], view[3]));
    let t = t.clamp(1e-3, 1.0);
    let grid = if t >= 1.0 {
        log_density_grid::<Cpu, _>(&model, xr, yr, res, res, &config, 4096, &device)?
    } else {
        log_density_grid::<Cpu, _>(&TimeScaled { field: &model, t }, xr, yr, res, res, &config, 4096, &device)?
    };
    Ok(grid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Settings;

    #[test]
    fn host_sampler_equals_the_library_solver_for_every_fixed_method() {
        let net = FusedMlp::random(ferroflow::model::MlpFieldConfig { d_hidden: 32, ..Default::default() }, 3);
        let x0 = Points { data: (0..40).map(|i| (i as f32 * 0.37).sin() * 2.0).collect(), n: 20, dim: 2 };
        let field = FusedField::new(net.clone(), 1);
        for method in OdeMethod::ALL {
            let live = LiveSettings { sampler: SamplerKind::Fixed(method), nfe: 16, ..Settings::default().live };
            let tr = sample(&net, &x0, None, &live, SchedulerConfig::Cosine, 0, Precision::F32).unwrap();
            let sol = SolverConfig::Fixed { method, steps: steps_for(method, 16) }
                .solve::<Cpu, _>(&field, x0.to_tensor(&Default::default()), None, 0.0, 1.0, false)
                .unwrap();
            let want = Points::from_tensor(sol.x);
            assert_eq!(tr.times.len(), steps_for(method, 16) + 1);
            assert_eq!(tr.nfe, 16);
            for (a, b) in tr.end().data.iter().zip(&want.data) {
                // Same stage formulas in the same order; only the f32 rounding of the
                // scalar products h·k may differ.
                assert!((a - b).abs() < 1e-5, "{method}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn pieces_on_several_threads_in_any_order_give_the_sequential_trajectory_bit_for_bit() {
        use ferroflow::model::{ConditionConfig, MlpFieldConfig};
        let config = MlpFieldConfig {
            d_hidden: 48,
            condition: ConditionConfig::Class { n_classes: 3, d_embed: 4 },
            ..Default::default()
        };
        let net = FusedMlp::random(config, 5);
        // 300 points: two full lanes and a short one.
        let n = 2 * LANE_ROWS + 44;
        let x0 = Points { data: (0..2 * n).map(|i| (i as f32 * 0.71).sin() * 2.0).collect(), n, dim: 2 };
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 3).collect();
        for method in OdeMethod::ALL {
            let live =
                LiveSettings { sampler: SamplerKind::Fixed(method), nfe: 8, cfg_w: 1.5, ..Settings::default().live };
            let want = sample(&net, &x0, Some(&labels), &live, SchedulerConfig::Cosine, 0, Precision::F32).unwrap();
            let stepped = SteppedSample::new(&net, &x0, Some(&labels), &live, Precision::F32).unwrap();
            assert_eq!(stepped.progress(), 0.0);
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| while stepped.run_piece() {});
                }
            });
            assert!(stepped.is_done() && stepped.progress() == 1.0);
            assert!(!stepped.run_piece(), "no piece is left");
            let got = stepped.finish();
            assert_eq!(got, want, "{method}");
            assert_eq!(&got.states[..2 * n], &x0.data[..], "the first state is x₀");
            assert_eq!(got.nfe, 8 * 2, "{method}: CFG evaluates twice");
        }
        // Dopri5, the SDE and guidance are not cut into pieces.
        for live in [
            LiveSettings { sampler: SamplerKind::Dopri5, ..Settings::default().live },
            LiveSettings { sampler: SamplerKind::Sde, ..Settings::default().live },
            LiveSettings { guidance: 1.0, ..Settings::default().live },
        ] {
            assert!(SteppedSample::new(&net, &x0, None, &live, Precision::F32).is_none());
        }
    }

    #[test]
    fn bf16_particles_stay_close_to_f32_and_only_the_fixed_step_path_takes_them() {
        let net = FusedMlp::random(ferroflow::model::MlpFieldConfig { d_hidden: 64, ..Default::default() }, 9);
        let x0 = Points { data: (0..600).map(|i| (i as f32 * 0.53).sin() * 2.5).collect(), n: 300, dim: 2 };
        let live = LiveSettings { sampler: SamplerKind::Fixed(OdeMethod::Euler), nfe: 32, ..Settings::default().live };
        let run = |live: &LiveSettings, p| sample(&net, &x0, None, live, SchedulerConfig::Cosine, 0, p).unwrap();
        let (a, b) = (run(&live, Precision::F32), run(&live, Precision::Bf16));
        assert_eq!(a.precision, Precision::F32);
        let have = ferroflow::engine::bf16::supported();
        assert_eq!(b.precision, if have { Precision::Bf16 } else { Precision::F32 });
        let scale = a.end().data.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = a.end().data.iter().zip(&b.end().data).fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        // A pixel of the page's canvas is ≈ 1/75 of a unit; bf16 moves the particles by far less.
        assert!(worst <= 1e-2 * scale, "bf16 moved a particle by {worst} (scale {scale})");
        assert_eq!(worst == 0.0, !have, "bf16 products were {}used", if have { "not " } else { "" });
        // Dopri5 steers its steps by error estimates: always f32.
        let live = LiveSettings { sampler: SamplerKind::Dopri5, ..live };
        assert_eq!(run(&live, Precision::Bf16).precision, Precision::F32);
    }

    #[test]
    fn cfg_w_is_the_librarys_classifier_free_guidance_on_every_sampler() {
        use ferroflow::model::{ConditionConfig, MlpFieldConfig};
        let cfg = MlpFieldConfig {
            d_hidden: 32,
            condition: ConditionConfig::Class { n_classes: 2, d_embed: 4 },
            ..Default::default()
        };
        let net = FusedMlp::random(cfg, 5);
        let x0 = Points { data: (0..40).map(|i| (i as f32 * 0.61).cos() * 1.5).collect(), n: 20, dim: 2 };
        let labels: Vec<u32> = (0..20).map(|i| i % 2).collect();
        let field = FusedField::new(net.clone(), 1);
        let dev = Default::default();
        let cond = Condition::Class(Tensor::<Cpu, 1, Int>::from_data(
            TensorData::new(labels.iter().map(|&l| i64::from(l)).collect::<Vec<_>>(), [20]),
            &dev,
        ));
        let w = 2.0;
        let guided = ClassifierFree::new(&field, w, None, 2).unwrap();
        for (sampler, solver) in [
            (SamplerKind::Fixed(OdeMethod::Midpoint), SolverConfig::Fixed { method: OdeMethod::Midpoint, steps: 8 }),
            (SamplerKind::Dopri5, SolverConfig::Dopri5 { atol: 1e-4, rtol: 1e-4, max_steps: 1000 }),
        ] {
            let live = LiveSettings { sampler, nfe: 16, cfg_w: w, ..Settings::default().live };
            let tr = sample(&net, &x0, Some(&labels), &live, SchedulerConfig::Cosine, 0, Precision::F32).unwrap();
            let want = solver.solve::<Cpu, _>(&guided, x0.to_tensor(&dev), Some(&cond), 0.0, 1.0, false).unwrap();
            let want = Points::from_tensor(want.x);
            let plain = sample(
                &net,
                &x0,
                Some(&labels),
                &LiveSettings { cfg_w: 0.0, ..live },
                SchedulerConfig::Cosine,
                0,
                Precision::F32,
            )
            .unwrap();
            let mut moved = 0f32;
            for ((a, b), c) in tr.end().data.iter().zip(&want.data).zip(&plain.end().data) {
                assert!((a - b).abs() < 1e-4, "{sampler:?}: {a} vs {b}");
                moved = moved.max((a - c).abs());
            }
            // w = 2 changes the endpoints (the test would pass vacuously if w were ignored).
            assert!(moved > 1e-3, "{sampler:?}: CFG moved nothing ({moved})");
        }
    }

    #[test]
    fn time_scaled_density_at_t_half_matches_a_halfway_flow_of_gaussians() {
        // Untrained nets have no closed form; the check is that p_t integrates to ≈ 1 over a
        // wide box at t = 0.5 and t = 1 (a wrong time scale breaks the Jacobian term).
        let net =
            FusedMlp::random(ferroflow::model::MlpFieldConfig { d_hidden: 16, n_hidden: 1, ..Default::default() }, 1);
        for t in [0.5, 1.0] {
            let g =
                density_grid(&net, t, 40, [-7.0, 7.0, -7.0, 7.0], SchedulerConfig::CondOt { sigma_min: 0.0 }).unwrap();
            let mass = ferroflow::likelihood::density::grid_mass(&g);
            // A random small net moves mass by O(1): the box (±7σ) keeps all but ~1e-6; RK4
            // with 4 steps on a smooth field and the 0.35-wide midpoint cells cost ≲ 2 %.
            assert!((mass - 1.0).abs() < 0.03, "t = {t}: mass {mass}");
        }
    }
}
