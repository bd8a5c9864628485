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

pub fn run(a: PlotArgs) -> Result<()> {
    a.device.check()?;
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
            let (x1, traj, _) = common::integrate(&model, &x0, &solver, a.kind != PlotKind::Scatter, &device)?;
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
                        traj: traj.as_deref().unwrap_or(&[]),
                        background: data.as_ref(),
                    },
                })
                .collect();
            ferroflow::plot::panels(&a.out, &panels, &Default::default())?;
        }
        PlotKind::Gif => {
            let (_, _, traj) = &runs[0];
            ferroflow::plot::flow_gif(&a.out, traj.as_deref().unwrap_or(&[]), &Default::default())?;
        }
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
