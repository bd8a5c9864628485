//! `ferroflow nll`: the negative log-likelihood of data points under a trained flow.

use anyhow::Result;
use burn::tensor::backend::Backend;
use ferroflow::checkpoint::Checkpoint;
use ferroflow::data::Points;
use ferroflow::likelihood::loglik::{Dequantization, LikelihoodConfig, LogLikelihood, PixelRange, log_likelihood};
use ferroflow::likelihood::{DivergenceMethod, Hutchinson, ProbeKind};
use ferroflow::model::{ClassifierFree, JvpField, MlpFieldConfig, UNetConfig};
use ferroflow::solver::{OdeMethod, SolverConfig};
use ferroflow::train::load_sampling_field;

use super::common;
use crate::args::{NllArgs, PixelRangeArg};
use crate::with_backend;

pub fn run(a: NllArgs) -> Result<()> {
    a.device.check()?;
    let ck = Checkpoint::read(&a.ckpt)?;
    let digits = super::digits::DigitRun::of(&ck)?;
    let (mut points, dim, source_std, dequantize, what) = match (&digits, &a.data) {
        (Some(run), None) => {
            let dir = ferroflow::data::mnist::data_dir(a.mnist.clone().flatten().as_deref().or(run.data.as_deref()))?;
            let test = ferroflow::data::mnist::Mnist::load(&dir, ferroflow::data::mnist::Split::Test, run.size)?;
            if a.n == 0 || a.n > test.n {
                anyhow::bail!("-n {}: expected 1..={} test digits", a.n, test.n);
            }
            let s = run.size.side();
            let what = format!("{} MNIST test digits {s}×{s}", a.n);
            (test.head(a.n).points(), s * s, run.train.scheduler.source_std(), Some(PixelRangeArg::MinusOneOne), what)
        }
        (None, Some(p)) => {
            let cfg = common::run_config_of(&ck)?;
            (
                crate::config::read_points(p)?,
                cfg.model.d_input,
                cfg.train.scheduler.source_std(),
                a.dequantize,
                p.display().to_string(),
            )
        }
        (None, None) => anyhow::bail!("--mnist is for digit models: give the points with --data FILE"),
        (Some(_), Some(_)) => {
            anyhow::bail!("a digits model scores MNIST test digits: use --mnist [DIR] instead of --data")
        }
    };
    if points.dim != dim {
        anyhow::bail!("{what}: the points have dimension {} but the model takes {dim}", points.dim);
    }
    if points.n == 0 {
        anyhow::bail!("{what}: no points");
    }
    if a.batch == 0 {
        anyhow::bail!("--batch must be at least 1");
    }
    let solver = if a.solver == "dopri5" {
        SolverConfig::Dopri5 { atol: a.atol, rtol: a.rtol, max_steps: 100_000 }
    } else {
        let method = a.solver.parse::<OdeMethod>().map_err(|e| anyhow::anyhow!("--solver: {e}; or dopri5"))?;
        SolverConfig::Fixed { method, steps: a.steps }
    };
    let dequantization = dequantize.map(|r| Dequantization {
        levels: 256,
        range: match r {
            PixelRangeArg::ZeroOne => PixelRange::ZeroOne,
            PixelRangeArg::MinusOneOne => PixelRange::MinusOneOne,
        },
    });
    if let Some(q) = &dequantization {
        points = q.dequantize(&points, &mut ferroflow::rng::seeded(a.seed ^ 0xde9));
    }
    let base = LikelihoodConfig { solver, divergence: DivergenceMethod::Exact, source_std };
    // Each batch draws its own probes (seed + batch index), fixed along its trajectories.
    let config_for = |batch: usize| LikelihoodConfig {
        divergence: match a.hutchinson {
            Some(k) => DivergenceMethod::Hutchinson(Hutchinson {
                probes: k,
                kind: ProbeKind::Rademacher,
                seed: a.seed.wrapping_add(batch as u64),
            }),
            None => DivergenceMethod::Exact,
        },
        ..base
    };
    config_for(0).validate()?;
    // A class-conditional digits model is scored as the unconditional model (the null class).
    let null = super::digits::CLASSES;
    let on_cpu = a.device == crate::device::Device::Cpu;
    let ll = with_backend!(a.device, |B, _AB, device| {
        match (ferroflow::train::field_kind(&ck), digits.is_some()) {
            ("unet", _) => {
                let m = load_sampling_field::<B, UNetConfig>(&ck, &device)?;
                score::<B, _>(&ClassifierFree::new(&m, 0.0, None, null)?, &points, a.batch, &config_for, &device)?
            }
            (_, true) => {
                let m = load_sampling_field::<B, MlpFieldConfig>(&ck, &device)?;
                let f = common::jvp_field(&m, on_cpu);
                score::<B, _>(&ClassifierFree::new(&*f, 0.0, None, null)?, &points, a.batch, &config_for, &device)?
            }
            (_, false) => {
                let m = load_sampling_field::<B, MlpFieldConfig>(&ck, &device)?;
                score::<B, _>(&*common::jvp_field(&m, on_cpu), &points, a.batch, &config_for, &device)?
            }
        }
    });
    let (nll, nll_se) = ll.mean_nll();
    let (bpd, bpd_se) = ll.bits_per_dim(dequantization.as_ref());
    let divergence = match a.hutchinson {
        Some(k) => format!("hutchinson ({k} Rademacher probe{})", if k == 1 { "" } else { "s" }),
        None => "exact".to_string(),
    };
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "n": points.n,
                "dim": dim,
                "nll": nll,
                "nll_se": nll_se,
                "bits_per_dim": bpd,
                "bits_per_dim_se": bpd_se,
                "nfe": ll.nfe,
                "solver": a.solver,
                "divergence": divergence,
                "dequantized": dequantization.is_some(),
            })
        );
    } else {
        println!(
            "NLL {nll:.4} ± {nll_se:.4} nats, {bpd:.4} ± {bpd_se:.4} bits/dim{}; n = {}, NFE = {} ({}, {divergence} divergence)",
            if dequantization.is_some() { " (dequantised 8-bit)" } else { "" },
            points.n,
            ll.nfe,
            a.solver,
        );
    }
    Ok(())
}

/// Log-likelihoods of every point, `batch` points a solve; NFE is summed over the solves.
fn score<B: Backend, F: JvpField<B> + ?Sized>(
    model: &F,
    points: &Points,
    batch: usize,
    config_for: &dyn Fn(usize) -> LikelihoodConfig,
    device: &B::Device,
) -> Result<LogLikelihood> {
    let mut all = LogLikelihood { log_p: vec![], log_p0: vec![], delta: vec![], dim: points.dim, nfe: 0 };
    let idx: Vec<usize> = (0..points.n).collect();
    for (b, rows) in idx.chunks(batch).enumerate() {
        let x = points.select(rows).to_tensor::<B>(device);
        let ll = log_likelihood(model, x, None, &config_for(b))?;
        all.log_p.extend(ll.log_p);
        all.log_p0.extend(ll.log_p0);
        all.delta.extend(ll.delta);
        all.nfe += ll.nfe;
    }
    Ok(all)
}
