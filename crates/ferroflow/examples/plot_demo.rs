//! Writes every kind of ferroflow picture from synthetic data into a folder (default
//! `/tmp/plot-demo`): samples over data, independent vs (2-opt approximate) OT straight-line
//! trajectories side by side, a flow GIF and frame folder, and a log-density heat map.
//!
//! Run: `cargo run --release -p ferroflow --example plot_demo -- /tmp/plot-demo`

use std::path::PathBuf;

use ferroflow::data::{Points, World};
use ferroflow::plot::{self, Grid, Layer, Panel, PanelContent, PlotOptions, Rgb};
use ferroflow::rng::{normal_vec, seeded};

/// Straight-line interpolation frames x_t = (1 − t)·x0 + t·x1 at `steps + 1` evenly spaced t.
fn straight(x0: &Points, x1: &Points, steps: usize) -> Vec<Points> {
    (0..=steps)
        .map(|k| {
            let t = k as f32 / steps as f32;
            let data = x0.data.iter().zip(&x1.data).map(|(a, b)| (1.0 - t) * a + t * b).collect();
            Points { data, n: x0.n, dim: 2 }
        })
        .collect()
}

/// Pairs x0 with a permutation of x1 that no swap of two partners improves (squared cost):
/// a cheap stand-in for exact OT, enough to show non-crossing paths.
fn two_opt(x0: &Points, x1: &Points) -> Points {
    let n = x0.n;
    let mut perm: Vec<usize> = (0..n).collect();
    let c = |i: usize, j: usize| {
        let (a, b) = (x0.row(i), x1.row(j));
        (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
    };
    for _ in 0..50 {
        let mut improved = false;
        for i in 0..n {
            for j in i + 1..n {
                if c(i, perm[j]) + c(j, perm[i]) < c(i, perm[i]) + c(j, perm[j]) - 1e-9 {
                    perm.swap(i, j);
                    improved = true;
                }
            }
        }
        if !improved {
            break;
        }
    }
    x1.select(&perm)
}

fn main() -> ferroflow::Result<()> {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "/tmp/plot-demo".into()));
    std::fs::create_dir_all(&dir).map_err(|e| ferroflow::Error::io(&dir, e))?;
    let mut rng = seeded(7);

    // Samples vs data, 4000 points each; the "samples" are the data plus noise and 20 outliers.
    let data = World::Moons.sample_labeled(4000, &mut rng).points;
    let mut samples = data.clone();
    let noise = normal_vec(&mut rng, samples.data.len());
    for (v, z) in samples.data.iter_mut().zip(noise) {
        *v += 0.15 * z;
    }
    for v in samples.data.iter_mut().take(40) {
        *v *= 30.0;
    }
    let layers = [
        Layer { points: &data, label: "data", color: Rgb::GREY },
        Layer { points: &samples, label: "samples", color: Rgb::BLUE },
    ];
    plot::scatter(&dir.join("scatter.png"), &layers, &PlotOptions::titled("moons: samples vs data (4000 each)"))?;

    // Independent vs OT coupling, 1000 pairs, 11 recorded times.
    let n = 1000;
    let x0 = Points::new(normal_vec(&mut rng, 2 * n), n, 2)?;
    let x1 = World::Moons.sample_labeled(n, &mut rng).points;
    let indep = straight(&x0, &x1, 10);
    let ot = straight(&x0, &two_opt(&x0, &x1), 10);
    let opts = PlotOptions { max_paths: 200, ..PlotOptions::titled("straight paths x_t = (1 − t) x₀ + t x₁") };
    plot::trajectories(&dir.join("trajectories.png"), &ot, Some(&x1), &opts)?;
    let panels = [
        Panel { title: "independent coupling", content: PanelContent::Trajectories { traj: &indep, background: None } },
        Panel { title: "OT coupling (2-opt)", content: PanelContent::Trajectories { traj: &ot, background: None } },
    ];
    plot::panels(
        &dir.join("panels.png"),
        &panels,
        &PlotOptions { max_paths: 200, ..PlotOptions::titled("N(0, I) → moons") },
    )?;

    // Animation.
    let gif_opts = PlotOptions { width: 480, height: 450, frame_delay_ms: 120, ..PlotOptions::titled("OT flow") };
    plot::flow_gif(&dir.join("flow.gif"), &ot, &gif_opts)?;
    plot::flow_gif(&dir.join("frames"), &ot, &gif_opts)?;

    // Log density of a mixture of 8 Gaussians on a circle (σ = 0.3), with samples on top.
    let (nx, ny) = (160, 160);
    let centres: Vec<(f64, f64)> =
        (0..8).map(|k| k as f64 * std::f64::consts::TAU / 8.0).map(|a| (2.5 * a.cos(), 2.5 * a.sin())).collect();
    let s2 = 0.3f64 * 0.3;
    let log_p = |x: f64, y: f64| {
        let p: f64 = centres.iter().map(|(cx, cy)| (-((x - cx).powi(2) + (y - cy).powi(2)) / (2.0 * s2)).exp()).sum();
        (p / (8.0 * std::f64::consts::TAU * s2)).ln()
    };
    let mut grid = Grid { values: vec![0.0; nx * ny], nx, ny, x_range: (-4.0, 4.0), y_range: (-4.0, 4.0) };
    for j in 0..ny {
        for i in 0..nx {
            let (x, y) = grid.cell_centre(i, j);
            grid.values[j * nx + i] = log_p(x, y);
        }
    }
    let m = 400;
    let z = normal_vec(&mut rng, 2 * m);
    let mix: Vec<f32> = (0..m)
        .flat_map(|i| {
            let (cx, cy) = centres[i % 8];
            [(cx + 0.3 * z[2 * i] as f64) as f32, (cy + 0.3 * z[2 * i + 1] as f64) as f32]
        })
        .collect();
    let mix = Points::new(mix, m, 2)?;
    let hopts = PlotOptions {
        value_range: Some((-12.0, 0.0)),
        ..PlotOptions::titled("8 Gaussians: log density and 400 samples")
    };
    plot::heatmap(&dir.join("heatmap.png"), &grid, Some(&mix), &hopts)?;
    println!("wrote pictures to {}", dir.display());
    Ok(())
}
