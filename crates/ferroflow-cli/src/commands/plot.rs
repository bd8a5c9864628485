//! `ferroflow plot`.

use std::path::Path;

use anyhow::Result;
use ferroflow::checkpoint::Checkpoint;
use ferroflow::data::Points;
use ferroflow::train::load_sampling_model;

use super::common::{self, Reference};
use crate::args::{PlotArgs, PlotKind};
use crate::with_backend;

/// Samples (and the data behind them) as a scatter plot.
pub fn scatter(path: &Path, samples: &Points, data: Option<&Points>, title: &str) -> Result<()> {
    use ferroflow::plot::{Layer, PlotOptions, Rgb};
    let mut layers = Vec::new();
    if let Some(d) = data {
        layers.push(Layer { points: d, label: "data", color: Rgb::GREY });
    }
    layers.push(Layer { points: samples, label: "samples", color: Rgb::BLUE });
    ferroflow::plot::scatter(path, &layers, &PlotOptions::titled(title))?;
    Ok(())
}

/// Points of the density grid scored per likelihood solve.
const DENSITY_BATCH: usize = 4096;

/// Heat maps of each checkpoint's log-density on one grid covering the samples (and overlay).
fn density(a: &PlotArgs, runs: &[(String, Points, Option<common::Recorded>)], overlay: Option<&Points>) -> Result<()> {
    use ferroflow::likelihood::{DivergenceMethod, LikelihoodConfig, density};
    use ferroflow::plot::{Panel, PanelContent, PlotOptions, robust_range};
    if !(2..=1024).contains(&a.grid) {
        anyhow::bail!("--grid {} is out of range: 2..=1024 cells per axis", a.grid);
    }
    if overlay.is_some_and(|o| o.dim != 2) {
        anyhow::bail!("the points drawn over the density must be 2D");
    }
    // The axis ranges of the samples' scatter plots, with a wider margin for the tails.
    let coords = |k: usize| -> Vec<f64> {
        runs.iter()
            .map(|r| &r.1)
            .chain(overlay)
            .flat_map(|p| p.data.iter().skip(k).step_by(2))
            .map(|&v| v as f64)
            .collect()
    };
    let (x_range, y_range) = (robust_range(&coords(0), 0.002, 0.15), robust_range(&coords(1), 0.002, 0.15));
    let mut grids = Vec::new();
    for (path, (name, _, _)) in a.ckpt.iter().zip(runs) {
        let ck = Checkpoint::read(path)?;
        let cfg = common::run_config_of(&ck)?;
        // The likelihood ODE is an ODE whatever --sde-g says.
        let common::Sampler::Ode(solver) =
            common::sampler(&crate::args::SolverArgs { sde_g: None, ..a.solver.clone() }, &cfg, 0)?
        else {
            unreachable!("no --sde-g, so an ODE sampler")
        };
        let config = LikelihoodConfig {
            solver,
            divergence: DivergenceMethod::Exact,
            source_std: cfg.train.scheduler.source_std(),
        };
        let grid = with_backend!(a.device, |B, AB, device| {
            let model = load_sampling_model::<B>(&ck, &device)?;
            let field = common::jvp_field(&model, a.device == crate::device::Device::Cpu);
            density::log_density_grid(&*field, x_range, y_range, a.grid, a.grid, &config, DENSITY_BATCH, &device)?
        });
        eprintln!("{name}: ∫p over the grid = {:.4}", density::grid_mass(&grid));
        grids.push(grid);
    }
    if let [grid] = &grids[..] {
        ferroflow::plot::heatmap(&a.out, grid, overlay, &PlotOptions::titled(format!("{} log-density", runs[0].0)))?;
    } else {
        let panels: Vec<Panel> = runs
            .iter()
            .zip(&grids)
            .map(|((name, _, _), grid)| Panel { title: name, content: PanelContent::Heatmap { grid, overlay } })
            .collect();
        ferroflow::plot::panels(&a.out, &panels, &Default::default())?;
    }
    Ok(())
}

pub fn run(a: PlotArgs) -> Result<()> {
    a.device.check()?;
    let max = super::sample::MAX_SAMPLE_POINTS;
    if a.n == 0 || a.n > max {
        anyhow::bail!("-n {}: expected 1..={max} points", a.n);
    }
    let reference = match (&a.reference.world, &a.reference.data) {
        (Some(w), None) => Some(Reference::World(w.parse()?)),
        (None, Some(p)) => Some(Reference::Data(crate::config::read_points(p)?)),
        _ => None,
    };
    if a.kind == PlotKind::Scatter && a.ckpt.is_empty() {
        let Some(s) = &a.samples else { anyhow::bail!("give the samples to plot (a CSV/.npy file) or --ckpt") };
        let samples = crate::config::read_points(s)?;
        let data = reference.as_ref().map(|r| r.draw(samples.n, 1));
        scatter(&a.out, &samples, data.as_ref(), &s.display().to_string())?;
        eprintln!("wrote {}", a.out.display());
        return Ok(());
    }
    if a.ckpt.is_empty() {
        anyhow::bail!("--kind {:?} needs --ckpt (one or more checkpoints)", a.kind);
    }
    if a.kind == PlotKind::Gif && a.ckpt.len() > 1 {
        anyhow::bail!("--kind gif takes one --ckpt");
    }
    let mut runs = Vec::new();
    for path in &a.ckpt {
        let ck = Checkpoint::read(path)?;
        let cfg = common::run_config_of(&ck)?;
        if cfg.model.d_input != 2 {
            anyhow::bail!("{}: pictures need a 2D model, this one has dimension {}", path.display(), cfg.model.d_input);
        }
        let x0 = common::source_points(&cfg, a.n, a.seed)?;
        let solver = common::sampler(&a.solver, &cfg, a.seed ^ 0x5de)?;
        let (x1, traj) = with_backend!(a.device, |B, AB, device| {
            let model = load_sampling_model::<B>(&ck, &device)?;
            let record = matches!(a.kind, PlotKind::Trajectories | PlotKind::Gif);
            let (x1, traj, _) =
                common::integrate(&model, &x0, &solver, record, &device, a.device == crate::device::Device::Cpu)?;
            (x1, traj)
        });
        let name = format!("{} ({})", cfg.data.target.name(), cfg.train.coupling.name());
        runs.push((name, x1, traj));
    }
    let data = reference.as_ref().map(|r| r.draw(a.n, 1));
    match a.kind {
        PlotKind::Scatter => {
            let (name, x1, _) = &runs[0];
            scatter(&a.out, x1, data.as_ref(), name)?;
        }
        PlotKind::Trajectories => {
            use ferroflow::plot::{Panel, PanelContent};
            let panels: Vec<Panel> = runs
                .iter()
                .map(|(name, _, traj)| Panel {
                    title: name,
                    content: PanelContent::Trajectories {
                        traj: traj.as_ref().map_or(&[][..], |r| &r.states),
                        background: data.as_ref(),
                    },
                })
                .collect();
            ferroflow::plot::panels(&a.out, &panels, &Default::default())?;
            for (name, _, traj) in &runs {
                if let Some(r) = traj {
                    let e = ferroflow::metrics::kinetic_energy(&r.times, &r.states)?;
                    let s = ferroflow::metrics::straightness(&r.times, &r.states)?;
                    eprintln!(
                        "{name}: kinetic energy {e:.4}, straightness {s:.4} (0 for straight constant-speed paths)"
                    );
                }
            }
        }
        PlotKind::Gif => {
            let (_, _, traj) = &runs[0];
            ferroflow::plot::flow_gif(&a.out, traj.as_ref().map_or(&[][..], |r| &r.states), &Default::default())?;
        }
        PlotKind::Density => {
            let overlay = match &a.samples {
                Some(s) => Some(crate::config::read_points(s)?),
                None => data,
            };
            density(&a, &runs, overlay.as_ref())?;
        }
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
