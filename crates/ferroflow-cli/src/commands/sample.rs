//! `ferroflow sample`.

use anyhow::{Context as _, Result};
use ferroflow::checkpoint::Checkpoint;
use ferroflow::engine::Precision;
use ferroflow::train::load_sampling_model;

use super::common;
use crate::args::{PrecisionArg, SampleArgs};
use crate::with_backend;

/// Most points one `ferroflow sample` or `ferroflow plot` draws (a few copies of 80 MB each
/// in the solver at this size).
pub const MAX_SAMPLE_POINTS: usize = 10_000_000;

pub fn run(a: SampleArgs) -> Result<()> {
    a.device.check()?;
    let ck = Checkpoint::read(&a.ckpt)?;
    let bf16 = a.precision == PrecisionArg::Bf16;
    if let Some(run) = super::digits::DigitRun::of(&ck)? {
        if bf16 {
            anyhow::bail!("--precision bf16 applies to point models (2D worlds)");
        }
        return super::digits::sample(&a, &ck, &run);
    }
    if bf16 && a.device != crate::device::Device::Cpu {
        anyhow::bail!("--precision bf16 applies to the CPU engine (--device cpu)");
    }
    if a.class.is_some() || a.uncond || a.guidance != 0.0 || a.clip_x1 {
        anyhow::bail!("--class, --uncond, --cfg and --clip-x1 apply to digit models");
    }
    let n = a.n.unwrap_or(2000);
    if n == 0 || n > MAX_SAMPLE_POINTS {
        anyhow::bail!("-n {n}: expected 1..={MAX_SAMPLE_POINTS} points");
    }
    let cfg = common::run_config_of(&ck)?;
    let solver = common::sampler(&a.solver, &cfg, a.seed ^ 0x5de)?;
    if bf16 && matches!(solver, common::Sampler::Ode(ferroflow::solver::SolverConfig::Dopri5 { .. })) {
        anyhow::bail!(
            "--precision bf16 is for fixed-step and SDE samplers: its ≈ 10⁻³ rounding would drive dopri5's error control"
        );
    }
    let x0 = match &a.x0 {
        Some(p) => crate::config::read_points(p)?,
        None => common::source_points(&cfg, n, a.seed)?,
    };
    let (x1, nfe, precision) = with_backend!(a.device, |B, AB, device| {
        let model = load_sampling_model::<B>(&ck, &device)?;
        let on_cpu = a.device == crate::device::Device::Cpu;
        let (x1, _, nfe, precision) =
            common::integrate_in(&model, &x0, &solver, false, &device, on_cpu, a.precision.into())?;
        (x1, nfe, precision)
    });
    if !x1.all_finite() {
        anyhow::bail!(
            "the samples hold NaN or infinite values: try a smaller step size or a tolerance-controlled solver (--solver dopri5)"
        );
    }
    ferroflow::data::io::write_points(&a.out, &x1)?;
    #[derive(serde::Serialize)]
    struct Settings<'a> {
        ckpt: String,
        n: usize,
        seed: u64,
        x0: Option<String>,
        nfe: usize,
        /// The precision in force (bf16 only where it was asked for and the CPU has it).
        precision: &'static str,
        sampler: &'a common::Sampler,
    }
    let settings = Settings {
        ckpt: a.ckpt.display().to_string(),
        n: x1.n,
        seed: a.seed,
        x0: a.x0.as_ref().map(|p| p.display().to_string()),
        nfe,
        precision: match precision {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        },
        sampler: &solver,
    };
    let path = a.out.with_extension("toml");
    let text = format!("# ferroflow sample: resolved settings\n{}", toml::to_string_pretty(&settings)?);
    ferroflow::checkpoint::write_atomic(&path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    if bf16 && precision == Precision::F32 {
        eprintln!("note: this CPU has no AVX512-BF16; sampled in f32");
    }
    eprintln!("wrote {} points ({nfe} velocity evaluations) to {}", x1.n, a.out.display());
    Ok(())
}
