//! Glue shared by the commands: loading a run's settings from a checkpoint, drawing source
//! points, sampling, scoring and the outputs written at the end of training.

use std::path::Path;

use anyhow::{Context as _, Result};
use burn::tensor::backend::Backend;
use ferroflow::checkpoint::Checkpoint;
use ferroflow::data::{PointSource as _, Points, World};
use ferroflow::engine::Precision;
use ferroflow::metrics::EvalReport;
use ferroflow::model::{JvpField, MlpField};
use ferroflow::solver::{Diffusion, OdeMethod, SdeConfig, SolverConfig};

use crate::args::SolverArgs;
use crate::config::{DataSpec, RunConfig};

/// The run configuration stored in a checkpoint by `ferroflow train`.
pub fn run_config_of(ck: &Checkpoint) -> Result<RunConfig> {
    let (model, train) = ferroflow::train::configs_from(ck)?;
    let mut cfg: RunConfig = match ck.metadata.get("ferroflow.run") {
        Some(s) => serde_json::from_str(s)
            .with_context(|| format!("{}: metadata \"ferroflow.run\" is not a ferroflow run", ck.path.display()))?,
        None => RunConfig::default(),
    };
    cfg.model = model;
    cfg.train = train;
    Ok(cfg)
}

/// What samples are compared with.
pub enum Reference {
    /// Fresh draws from a world.
    World(World),
    /// A fixed data set.
    Data(Points),
}

impl Reference {
    /// The reference of a data spec (none for the Gaussian source).
    pub fn from_spec(spec: &DataSpec) -> Result<Option<Self>> {
        Ok(match spec {
            DataSpec::Gaussian => None,
            DataSpec::World(w) => Some(Reference::World(w.parse()?)),
            DataSpec::File(p) => Some(Reference::Data(crate::config::read_points(p)?)),
        })
    }

    /// `n` points of the reference to draw behind samples.
    pub fn draw(&self, n: usize, seed: u64) -> Points {
        match self {
            Reference::World(w) => w.sample_points(n, &mut ferroflow::rng::seeded(seed)),
            Reference::Data(p) => p.head(n),
        }
    }

    /// Scores `samples` against this reference over `seeds` fresh reference draws.
    pub fn evaluate(&self, samples: &Points, seeds: usize, mmd: bool) -> Result<EvalReport> {
        use ferroflow::metrics::{EvalConfig, Reference as R, evaluate};
        let r = match self {
            Reference::World(w) => R::World(w.config()),
            Reference::Data(p) => R::Data(p),
        };
        Ok(evaluate(samples, &r, &EvalConfig { seeds, mmd, ..EvalConfig::default() })?)
    }
}

/// One line for a report.
pub fn describe(r: &EvalReport) -> String {
    let mut s = format!("W2 {:.4}", r.w2);
    if let (Some(f), Some(q)) = (r.floor, r.ratio) {
        s.push_str(&format!(" (floor {f:.4}, ratio {q:.3})"));
    }
    if let Some(m) = r.mmd {
        s.push_str(&format!(", MMD {m:.2e}"));
    }
    s.push_str(&format!(", n = {}", r.n));
    s
}

/// How samples are drawn: an ODE solver, or the SDE with its own noise.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sampler {
    /// dx/dt = v(x, t).
    Ode(SolverConfig),
    /// Euler–Maruyama on dX = [v + g²/2·score] dt + g dW, noise from `seed`.
    Sde {
        /// The SDE.
        sde: SdeConfig,
        /// Seed of the Brownian increments.
        seed: u64,
    },
}

/// The sampler the flags ask for; the SDE needs the run's scheduler (velocity → score).
pub fn sampler(a: &SolverArgs, cfg: &RunConfig, seed: u64) -> Result<Sampler> {
    if let Some(g) = a.sde_g {
        let sde = SdeConfig { scheduler: cfg.train.scheduler, diffusion: Diffusion::Constant { g }, steps: a.steps };
        sde.validate()?;
        return Ok(Sampler::Sde { sde, seed });
    }
    let ode = if a.solver == "dopri5" {
        SolverConfig::Dopri5 { atol: a.atol, rtol: a.rtol, max_steps: 100_000 }
    } else {
        let method = a.solver.parse::<OdeMethod>().map_err(|e| anyhow::anyhow!("--solver: {e}; or dopri5"))?;
        SolverConfig::Fixed { method, steps: a.steps }
    };
    ode.validate()?;
    Ok(Sampler::Ode(ode))
}

/// `n` source points for the run `cfg` (N(0, σ₀² I) for a Gaussian source, where σ₀ is the
/// scheduler's σ at t = 0), drawn from `seed`.
pub fn source_points(cfg: &RunConfig, n: usize, seed: u64) -> Result<Points> {
    let dim = cfg.model.d_input;
    let mut rng = ferroflow::rng::seeded(seed);
    Ok(match &cfg.data.source {
        DataSpec::Gaussian => {
            let mut p =
                ferroflow::data::GaussianSource { dim, std: cfg.train.scheduler.source_std() }.sample(n, &mut rng).0;
            p.dim = dim;
            p
        }
        other => other.open(dim)?.sample(n, &mut rng).0,
    })
}

/// States recorded along a solve: `states[i]` at `times[i]`.
pub struct Recorded {
    /// The times, t = 0 first.
    pub times: Vec<f64>,
    /// The states.
    pub states: Vec<Points>,
}

/// Integrates `x0` from t = 0 to t = 1 through `model`; returns the end points, the
/// trajectory if `record`, and the number of velocity evaluations.
pub fn integrate<B: Backend>(
    model: &MlpField<B>,
    x0: &Points,
    sampler: &Sampler,
    record: bool,
    device: &B::Device,
    on_cpu: bool,
) -> Result<(Points, Option<Recorded>, usize)> {
    integrate_in(model, x0, sampler, record, device, on_cpu, Precision::F32).map(|(x, rec, nfe, _)| (x, rec, nfe))
}

/// As [`integrate`], with the fused engine's products in `precision` (on the CPU); also
/// returns the precision in force (bf16 only where the CPU has it).
pub fn integrate_in<B: Backend>(
    model: &MlpField<B>,
    x0: &Points,
    sampler: &Sampler,
    record: bool,
    device: &B::Device,
    on_cpu: bool,
    precision: Precision,
) -> Result<(Points, Option<Recorded>, usize, Precision)> {
    if x0.dim != model.config.d_input {
        anyhow::bail!("the source points have dimension {} but the model takes {}", x0.dim, model.config.d_input);
    }
    let x = x0.to_tensor::<B>(device);
    // On the CPU the fused engine evaluates the MLP (it equals the burn forward to 1e-5);
    // elsewhere burn does.
    let fused = (on_cpu && ferroflow::engine::available()).then(|| {
        let mut f = ferroflow::engine::FusedField::from_field(model, 0);
        f.set_precision(precision);
        f
    });
    let in_force = fused.as_ref().map_or(Precision::F32, |f| f.precision());
    let field: &dyn ferroflow::model::VelocityField<B> = match &fused {
        Some(f) => f,
        None => model,
    };
    let sol = match sampler {
        Sampler::Ode(s) => s.solve(field, x, None, 0.0, 1.0, record)?,
        Sampler::Sde { sde, seed } => {
            sde.sample_recorded(field, x, None, &mut ferroflow::rng::seeded(*seed), record)?
        }
    };
    let recorded = sol.trajectory.map(|states| Recorded { times: sol.times, states });
    Ok((Points::from_tensor(sol.x), recorded, sol.nfe, in_force))
}

/// The field a likelihood solve differentiates: on the CPU the fused engine's (its JVP equals
/// burn's tangent propagation to 1e-5 and runs ≈ 6× faster, BENCHMARKS.md), elsewhere burn's.
pub fn jvp_field<'a, B: Backend>(model: &'a MlpField<B>, on_cpu: bool) -> Box<dyn JvpField<B> + 'a> {
    if on_cpu && ferroflow::engine::available() {
        Box::new(ferroflow::engine::FusedField::from_field(model, 0))
    } else {
        Box::new(model)
    }
}

/// Draws the run's `output.samples` samples (Euler, `output.sample_steps` steps) and scores
/// them against the reference (3 reference draws, no MMD: this runs during training).
pub fn score_model<B: Backend>(
    model: &MlpField<B>,
    cfg: &RunConfig,
    reference: &Option<Reference>,
    device: &B::Device,
    on_cpu: bool,
) -> Result<Option<EvalReport>> {
    let Some(r) = reference else { return Ok(None) };
    let x0 = source_points(cfg, cfg.output.samples, cfg.train.seed)?;
    let solver = Sampler::Ode(SolverConfig::Fixed { method: OdeMethod::Euler, steps: cfg.output.sample_steps });
    let (x1, _, _) = integrate(model, &x0, &solver, false, device, on_cpu)?;
    Ok(Some(r.evaluate(&x1, 3, false)?))
}

/// After training: samples (CSV), a picture (2D), and scores (JSON) in `out`.
pub fn final_outputs<B: Backend>(
    model: &MlpField<B>,
    cfg: &RunConfig,
    reference: &Option<Reference>,
    out: &Path,
    device: &B::Device,
    on_cpu: bool,
) -> Result<()> {
    let n = cfg.output.samples;
    let x0 = source_points(cfg, n, cfg.train.seed ^ 0x5eed)?;
    let solver = Sampler::Ode(SolverConfig::Fixed { method: OdeMethod::Euler, steps: cfg.output.sample_steps });
    let (x1, _, _) = integrate(model, &x0, &solver, false, device, on_cpu)?;
    let samples_path = out.join("samples.csv");
    ferroflow::data::io::write_points(&samples_path, &x1)?;
    let mut wrote = vec![samples_path.display().to_string()];
    if x1.dim == 2 {
        let pic = out.join("samples.png");
        let data = reference.as_ref().map(|r| r.draw(n, cfg.train.seed ^ 0xda7a));
        crate::commands::plot::scatter(
            &pic,
            &x1,
            data.as_ref(),
            &format!("{} — {} steps", cfg.data.target.name(), cfg.train.steps),
        )?;
        wrote.push(pic.display().to_string());
    }
    if let Some(r) = reference {
        let report = r.evaluate(&x1, 5, true)?;
        let json = out.join("eval.json");
        ferroflow::checkpoint::write_atomic(&json, serde_json::to_string_pretty(&report)?.as_bytes())
            .with_context(|| format!("cannot write {}", json.display()))?;
        eprintln!("{n} Euler-{} samples: {}", cfg.output.sample_steps, describe(&report));
        wrote.push(json.display().to_string());
    }
    eprintln!("wrote {}", wrote.join(", "));
    Ok(())
}
