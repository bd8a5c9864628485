//! Solvers against the closed-form Gaussian → Gaussian field: moments, round trips, SDE
//! marginals, and the entry point's configuration and errors.

use burn::tensor::{Tensor, TensorData};
use ferroflow::backend::Cpu64;
use ferroflow::model::GaussianToGaussian;
use ferroflow::path::{Scheduler, SchedulerConfig};
use ferroflow::rng;
use ferroflow::solver::{Diffusion, OdeMethod, SdeConfig, SolverConfig, SolverError};

const S: SchedulerConfig = SchedulerConfig::CondOt { sigma_min: 0.0 };

/// Data N((1.5, −2), diag(0.3², 1.7²)): one narrow and one wide coordinate.
fn field() -> GaussianToGaussian {
    GaussianToGaussian::new(S, vec![1.5, -2.0], vec![0.3, 1.7])
}

fn source(n: usize, seed: u64) -> Tensor<Cpu64, 2> {
    Tensor::from_data(TensorData::new(rng::normal_vec(&mut rng::seeded(seed), n * 2), [n, 2]), &Default::default())
}

fn host(x: Tensor<Cpu64, 2>) -> Vec<f64> {
    x.into_data().into_vec().unwrap()
}

/// Sample means, variances (unbiased) and the covariance of 2D points: [m₀, m₁, v₀, v₁, c].
fn moments(x: &[f64]) -> [f64; 5] {
    let n = (x.len() / 2) as f64;
    let m0 = x.iter().step_by(2).sum::<f64>() / n;
    let m1 = x.iter().skip(1).step_by(2).sum::<f64>() / n;
    let (mut v0, mut v1, mut c) = (0.0, 0.0, 0.0);
    for p in x.chunks(2) {
        v0 += (p[0] - m0).powi(2);
        v1 += (p[1] - m1).powi(2);
        c += (p[0] - m0) * (p[1] - m1);
    }
    [m0, m1, v0 / (n - 1.0), v1 / (n - 1.0), c / (n - 1.0)]
}

/// Monte Carlo standard errors of [`moments`] for n Gaussian samples with variances v:
/// sd(mean) = √(v/n), sd(variance) = v·√(2/(n−1)), sd(covariance) = √(v₀v₁/n).
fn standard_errors(v: [f64; 2], n: usize) -> [f64; 5] {
    let n = n as f64;
    [
        (v[0] / n).sqrt(),
        (v[1] / n).sqrt(),
        v[0] * (2.0 / (n - 1.0)).sqrt(),
        v[1] * (2.0 / (n - 1.0)).sqrt(),
        (v[0] * v[1] / n).sqrt(),
    ]
}

/// Asserts |got − want| ≤ 4.5·sd + bias, entry by entry. 4.5 standard errors: with fixed seeds
/// the test is deterministic, and a 4.5σ excursion has probability ≈ 7e-6 per entry.
fn assert_moments(what: &str, got: [f64; 5], want: [f64; 5], sd: [f64; 5], bias: [f64; 5]) {
    let names = ["mean₀", "mean₁", "var₀", "var₁", "cov"];
    for k in 0..5 {
        let tol = 4.5 * sd[k] + bias[k];
        assert!(
            (got[k] - want[k]).abs() <= tol,
            "{what}: {} = {} vs {} (tolerance {tol:e})",
            names[k],
            got[k],
            want[k]
        );
    }
}

/// The fixed-step budgets used below, and Dopri5 at 1e-5.
fn configs() -> Vec<SolverConfig> {
    vec![
        SolverConfig::Fixed { method: OdeMethod::Euler, steps: 400 },
        SolverConfig::Fixed { method: OdeMethod::Midpoint, steps: 20 },
        SolverConfig::Fixed { method: OdeMethod::Heun, steps: 20 },
        SolverConfig::Fixed { method: OdeMethod::Rk4, steps: 10 },
        SolverConfig::Dopri5 { atol: 1e-5, rtol: 1e-5, max_steps: 1000 },
    ]
}

#[test]
fn every_solver_carries_the_source_to_the_data_mean_and_covariance() {
    // 20 000 source points pushed 0 → 1 must have the data's moments (μ, diag(s²), no
    // correlation) to Monte Carlo accuracy. The discretisation biases of these budgets,
    // measured against the exact flow of the same points, are at most 0.7 standard errors
    // (Euler, var₁: −0.02 against sd 0.029), so no bias allowance is added; a first-order
    // mistake in any higher-order method (e.g. wrong RK4 weights) moves var₁ by ≳ 0.1 = 3.5 sd.
    let g = field();
    let n = 20_000;
    let want = [1.5, -2.0, 0.09, 2.89, 0.0];
    let sd = standard_errors([0.09, 2.89], n);
    for cfg in configs() {
        let sol = cfg.solve(&g, source(n, 1), None, 0.0, 1.0, false).unwrap();
        assert_moments(&format!("{cfg:?}"), moments(&host(sol.x)), want, sd, [0.0; 5]);
    }
}

#[test]
fn integrating_forwards_then_backwards_returns_to_the_start() {
    // 0 → 1 → 0 must come back to x₀ to the method's accuracy; the backward leg alone must
    // also match the exact inverse flow. Bounds: 2–3× the larger of the measured round-trip and
    // backward errors of each budget on these 64 points (Euler/400 2.0e-2, midpoint/20 3.3e-4,
    // Heun/20 8.2e-3, RK4/10 4.3e-5, Dopri5 at 1e-5 1.3e-4), so a wrong sign of h on the way
    // back (an O(1) error) or a lost order fails.
    let g = field();
    let x0 = host(source(64, 7));
    let tensor =
        |v: &[f64]| Tensor::<Cpu64, 2>::from_data(TensorData::new(v.to_vec(), [v.len() / 2, 2]), &Default::default());
    let max_err = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
    for (cfg, bound) in configs().into_iter().zip([5e-2, 1e-3, 2e-2, 1e-4, 4e-4]) {
        let fwd = cfg.solve(&g, tensor(&x0), None, 0.0, 1.0, false).unwrap();
        let x1 = host(fwd.x.clone());
        let back = cfg.solve(&g, fwd.x, None, 1.0, 0.0, false).unwrap();
        let round_trip = max_err(&host(back.x), &x0);
        assert!(round_trip < bound, "{cfg:?}: round trip error {round_trip}");
        let exact_back = g.flow(&x1, 1.0, 0.0);
        let back_only = cfg.solve(&g, tensor(&x1), None, 1.0, 0.0, false).unwrap();
        let e = max_err(&host(back_only.x), &exact_back);
        assert!(e < bound, "{cfg:?}: backward error {e}");
    }
}

/// The exact moments of the Euler–Maruyama recursion for this field (per coordinate, the
/// scheme is linear): M ← M + h[α̇μ + (γ − g²/2v)(M − m)], V ← (1 + h(γ − g²/2v))²V + g²h, with
/// γ = (αα̇s² + σσ̇)/v the field's gain. Returns (mean, variance) per coordinate at every grid
/// time: the discretisation bias of the sampler, free of Monte Carlo noise.
fn em_moments(g: &GaussianToGaussian, diffusion: &Diffusion, steps: usize) -> Vec<[f64; 4]> {
    let h = 1.0 / steps as f64;
    let (mut mean, mut var) = ([0.0; 2], [1.0; 2]);
    let mut out = vec![[mean[0], mean[1], var[0], var[1]]];
    for i in 0..steps {
        let t = i as f64 * h;
        let c = S.at(t);
        let gt = diffusion.at(t, &S);
        for k in 0..2 {
            let (mu, s2) = (g.mean[k], g.std[k] * g.std[k]);
            let v = c.alpha_t * c.alpha_t * s2 + c.sigma_t * c.sigma_t;
            let gain = (c.alpha_t * c.d_alpha_t * s2 + c.sigma_t * c.d_sigma_t) / v;
            let slope = gain - gt * gt / (2.0 * v);
            mean[k] += h * (c.d_alpha_t * mu + slope * (mean[k] - c.alpha_t * mu));
            var[k] = (1.0 + h * slope).powi(2) * var[k] + gt * gt * h;
        }
        out.push([mean[0], mean[1], var[0], var[1]]);
    }
    out
}

/// Runs the SDE on 20 000 paths and checks the moments at t = 0.25, 0.5, 0.75, 1.
fn check_sde_marginals(diffusion: Diffusion) {
    let g = field();
    let (n, steps) = (20_000, 200);
    let sde = SdeConfig { scheduler: S, diffusion, steps };
    let sol = sde.sample_recorded(&g, source(n, 11), None, &mut rng::seeded(12), true).unwrap();
    let traj = sol.trajectory.unwrap();
    let em = em_moments(&g, &diffusion, steps);
    for i in [50, 100, 150, 200] {
        let t = sol.times[i];
        let (m, v) = (g.mean_at(t), g.variance_at(t));
        let want = [m[0], m[1], v[0], v[1], 0.0];
        let x: Vec<f64> = traj[i].data.iter().map(|&a| a as f64).collect();
        // Tolerance: Monte Carlo error plus the scheme's own O(h) bias, computed exactly (at
        // h = 1/200 it is ≈ 0 on the means and ≤ 1.3 standard errors on the variances).
        let e = em[i];
        let bias = [(e[0] - m[0]).abs(), (e[1] - m[1]).abs(), (e[2] - v[0]).abs(), (e[3] - v[1]).abs(), 0.0];
        assert_moments(&format!("{diffusion:?} at t = {t}"), moments(&x), want, standard_errors([v[0], v[1]], n), bias);
    }
}

#[test]
fn the_sde_with_constant_noise_keeps_the_path_marginals() {
    // g = 1 is as large as the velocity here. Measured at t = 0.25 (var₀ = 0.568, tolerance
    // 0.027): without the (g²/2)·score correction var₀ comes out 0.76, with half of it 0.66,
    // with twice 0.43, so any of those mistakes fails.
    check_sde_marginals(Diffusion::Constant { g: 1.0 });
}

#[test]
fn the_sde_with_sigma_scaled_noise_keeps_the_path_marginals() {
    check_sde_marginals(Diffusion::SigmaScaled { scale: 1.5 });
}

#[test]
fn the_sde_without_noise_is_the_euler_ode_exactly() {
    let g = field();
    let sde = SdeConfig { scheduler: S, diffusion: Diffusion::Constant { g: 0.0 }, steps: 50 };
    let a = sde.sample(&g, source(256, 3), None, &mut rng::seeded(1)).unwrap();
    let b = SolverConfig::Fixed { method: OdeMethod::Euler, steps: 50 }
        .solve(&g, source(256, 3), None, 0.0, 1.0, false)
        .unwrap();
    assert_eq!(a.x.into_data(), b.x.into_data());
}

#[test]
fn solver_configs_read_from_toml_and_bad_ones_fail_with_their_values() {
    let c: SolverConfig = toml::from_str("kind = 'dopri5'\natol = 1e-6\nrtol = 1e-4\nmax_steps = 500").unwrap();
    assert_eq!(c, SolverConfig::Dopri5 { atol: 1e-6, rtol: 1e-4, max_steps: 500 });
    assert!(toml::from_str::<SolverConfig>("kind = 'fixed'\nmethod = 'rk4'\nsteps = 8\nfoo = 1").is_err());
    let e = toml::from_str::<SolverConfig>("kind = 'fixed'\nmethod = 'rk45'\nsteps = 8").unwrap_err().to_string();
    assert!(e.contains("rk45"), "{e}");
    let sde: SdeConfig = toml::from_str(
        "steps = 100\n[scheduler]\nkind = 'cond_ot'\nsigma_min = 0.0\n[diffusion]\nkind = 'sigma_scaled'\nscale = 0.5",
    )
    .unwrap();
    assert_eq!(sde.diffusion, Diffusion::SigmaScaled { scale: 0.5 });

    let g = field();
    let bad = [
        (SolverConfig::Fixed { method: OdeMethod::Euler, steps: 0 }, "steps = 0"),
        (SolverConfig::Dopri5 { atol: 0.0, rtol: 1e-5, max_steps: 10 }, "atol = 0"),
        (SolverConfig::Dopri5 { atol: 1e-5, rtol: -1e-3, max_steps: 10 }, "rtol = -0.001"),
    ];
    for (cfg, msg) in bad {
        assert!(cfg.validate().is_err());
        let e = cfg.solve(&g, source(4, 0), None, 0.0, 1.0, false).unwrap_err();
        assert!(matches!(e, SolverError::Config(_)), "{e}");
        let e = ferroflow::Error::from(e).to_string();
        assert!(e.contains(msg), "{e}");
    }
    let e = SolverConfig::default().solve(&g, source(4, 0), None, 0.5, 0.5, false).unwrap_err();
    assert!(e.to_string().contains("t0 = 0.5, t1 = 0.5"), "{e}");
}

#[test]
fn points_of_the_wrong_dimension_are_refused() {
    let g = field();
    let x = Tensor::<Cpu64, 2>::zeros([3, 5], &Default::default());
    let e = SolverConfig::default().solve(&g, x.clone(), None, 0.0, 1.0, false).unwrap_err();
    assert!(matches!(e, SolverError::Dim { expected: 2, got: 5 }), "{e}");
    let sde = SdeConfig { scheduler: S, diffusion: Diffusion::Constant { g: 1.0 }, steps: 5 };
    assert!(matches!(sde.sample(&g, x, None, &mut rng::seeded(0)), Err(SolverError::Dim { .. })));
}

#[test]
fn dopri5_stops_with_an_error_when_it_runs_out_of_steps() {
    let g = field();
    let cfg = SolverConfig::Dopri5 { atol: 1e-12, rtol: 1e-12, max_steps: 5 };
    let e = cfg.solve(&g, source(16, 0), None, 1.0, 0.0, false).unwrap_err();
    assert!(matches!(e, SolverError::MaxSteps { max_steps: 5, t1: 0.0, .. }), "{e}");
    assert!(ferroflow::Error::from(e).to_string().contains("raise max_steps"));
}
