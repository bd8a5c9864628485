//! The path module against closed forms: Gaussian→Gaussian marginals (velocity, score and
//! posterior means known exactly) and the affine path's samples.

use burn::tensor::{Tensor, TensorData};
use ferroflow::backend::Cpu64;
use ferroflow::model::{GaussianToGaussian, VelocityField};
use ferroflow::path::convert::{
    eps_from_velocity, score_from_velocity, velocity_from_score, x1_from_score, x1_from_velocity,
};
use ferroflow::path::{AffinePath, PathCoefficients, Scheduler, SchedulerConfig};
use rand::Rng as _;

type B = Cpu64;

/// Every scheduler, with defaults and with other parameters.
fn schedulers() -> Vec<SchedulerConfig> {
    let mut v = SchedulerConfig::ALL.to_vec();
    v.extend([
        SchedulerConfig::CondOt { sigma_min: 0.05 },
        SchedulerConfig::Polynomial { n: 3.0 },
        SchedulerConfig::VpLinearBeta { beta_min: 0.5, beta_max: 5.0 },
        SchedulerConfig::Ve { sigma_min: 0.002, sigma_max: 10.0 },
    ]);
    v
}

fn tensor2(v: Vec<f64>, n: usize, d: usize) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v, [n, d]), &Default::default())
}

fn host<const D: usize>(x: Tensor<B, D>) -> Vec<f64> {
    x.into_data().into_vec().unwrap()
}

fn uniform(rng: &mut ferroflow::rng::Rng, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n).map(|_| lo + (hi - lo) * rng.random::<f64>()).collect()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol * (1.0 + w.abs()), "{what}: entry {k}: got {g}, want {w}");
    }
}

const TIMES: [f64; 6] = [0.02, 0.2, 0.4, 0.6, 0.8, 0.98];
const MEAN: [f64; 2] = [1.5, -2.0];
const STD: [f64; 2] = [0.3, 1.7];

/// Points spread around the marginal p_t at each row's time (one row per entry of `TIMES`).
fn gaussian_case(s: SchedulerConfig, seed: u64) -> (GaussianToGaussian, Tensor<B, 2>, Tensor<B, 1>, Vec<f64>) {
    let g = GaussianToGaussian::new(s, MEAN.to_vec(), STD.to_vec());
    let mut rng = ferroflow::rng::seeded(seed);
    let mut x = vec![];
    for &t in &TIMES {
        let (m, v) = (g.mean_at(t), g.variance_at(t));
        for k in 0..2 {
            x.push(m[k] + v[k].sqrt() * (2.0 * rng.random::<f64>() - 1.0) * 2.0);
        }
    }
    let tt = Tensor::<B, 1>::from_data(TensorData::new(TIMES.to_vec(), [TIMES.len()]), &Default::default());
    (g, tensor2(x.clone(), TIMES.len(), 2), tt, x)
}

#[test]
fn score_from_velocity_of_the_gaussian_marginal_is_its_score() {
    for s in schedulers() {
        let (g, x, t, _) = gaussian_case(s, 1);
        let c = PathCoefficients::<B>::new(&s, &TIMES, &Default::default());
        let v = VelocityField::<B>::velocity(&g, x.clone(), t.clone(), None);
        let got = host(score_from_velocity(v, x.clone(), &c));
        let want = host(g.score(x, t));
        // f64; the largest amplification is 1/(σ·D) at t = 0.98 (VP: σ ≈ 0.06, D ≈ 0.9) and
        // the cancellation α v − α̇ x with |x| ≲ 80 (VE): ≲ 1e-12 relative. 1e-9 catches any slip.
        assert_close(&got, &want, 1e-9, &format!("{s:?}"));
    }
}

#[test]
fn velocity_from_score_of_the_gaussian_marginal_is_its_velocity() {
    for s in schedulers() {
        let (g, x, t, _) = gaussian_case(s, 2);
        let c = PathCoefficients::<B>::new(&s, &TIMES, &Default::default());
        let score = g.score(x.clone(), t.clone());
        let got = host(velocity_from_score(score, x.clone(), &c));
        let want = host(VelocityField::<B>::velocity(&g, x, t, None));
        // Divides by α ≥ 0.02³ = 8e-6 (polynomial n = 3 at t = 0.02) after a cancellation of
        // terms of size ~|x|: ≲ 1e-10 relative in f64; 1e-8 keeps margin and catches any slip.
        assert_close(&got, &want, 1e-8, &format!("{s:?}"));
    }
}

/// E[x₁ | x_t = x] and E[x₀ | x_t = x] in closed form, per coordinate.
///
/// (x₁, x_t) is jointly Gaussian with Cov(x₁, x_t) = α s², Var(x_t) = v_t = α² s² + σ², so
/// E[x₁ | x] = μ + (α s²/v_t)(x − α μ); likewise Cov(x₀, x_t) = σ gives E[x₀ | x] = (σ/v_t)(x − α μ).
fn posterior_means(s: SchedulerConfig, x: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut x1, mut x0) = (vec![], vec![]);
    for (i, xi) in x.iter().enumerate() {
        let (t, k) = (TIMES[i / 2], i % 2);
        let c = s.at(t);
        let s2 = STD[k] * STD[k];
        let v = c.alpha_t * c.alpha_t * s2 + c.sigma_t * c.sigma_t;
        let r = xi - c.alpha_t * MEAN[k];
        x1.push(MEAN[k] + c.alpha_t * s2 / v * r);
        x0.push(c.sigma_t / v * r);
    }
    (x1, x0)
}

#[test]
fn x1_and_eps_from_velocity_are_the_gaussian_posterior_means() {
    for s in schedulers() {
        let (g, x, t, xh) = gaussian_case(s, 3);
        let c = PathCoefficients::<B>::new(&s, &TIMES, &Default::default());
        let v = VelocityField::<B>::velocity(&g, x.clone(), t.clone(), None);
        let (want_x1, want_x0) = posterior_means(s, &xh);
        // Divides by D = α̇σ − ασ̇ ≥ 3·0.02² = 1.2e-3 (polynomial n = 3 at t = 0.02): ≲ 1e-11.
        assert_close(&host(x1_from_velocity(v.clone(), x.clone(), &c)), &want_x1, 1e-9, &format!("x1 {s:?}"));
        assert_close(&host(eps_from_velocity(v, x.clone(), &c)), &want_x0, 1e-9, &format!("eps {s:?}"));
        // Tweedie's denoiser from the analytic score gives the same posterior mean.
        let score = g.score(x.clone(), t);
        assert_close(&host(x1_from_score(score, x, &c)), &want_x1, 1e-8, &format!("x1 from score {s:?}"));
    }
}

#[test]
fn affine_sample_matches_its_formula_in_full_f64_precision() {
    let (n, d) = (50, 3);
    let mut rng = ferroflow::rng::seeded(4);
    for s in schedulers() {
        let x0 = uniform(&mut rng, n * d, -3.0, 3.0);
        let x1 = uniform(&mut rng, n * d, -3.0, 3.0);
        let t = uniform(&mut rng, n, 0.0, 1.0);
        let p = AffinePath::new(s).sample(tensor2(x0.clone(), n, d), tensor2(x1.clone(), n, d), &t);
        let (mut xt, mut ut) = (vec![], vec![]);
        for i in 0..n * d {
            let c = s.at(t[i / d]);
            xt.push(c.alpha_t * x1[i] + c.sigma_t * x0[i]);
            ut.push(c.d_alpha_t * x1[i] + c.d_sigma_t * x0[i]);
        }
        // One multiply-add in f64: ≤ 1 ulp·|terms|. A detour through f32 coefficients would
        // give ~1e-7 and fail.
        assert_close(&host(p.xt), &xt, 1e-14, &format!("xt {s:?}"));
        // VP's σ̇ is infinite at t = 1; uniform t never hits it exactly.
        assert_close(&host(p.ut), &ut, 1e-14, &format!("ut {s:?}"));
        assert_eq!(host(p.t), t, "t must come back unrounded");
    }
}

#[test]
fn cond_ot_target_is_the_straight_line_displacement() {
    let (n, d) = (40, 2);
    let mut rng = ferroflow::rng::seeded(5);
    let x0 = uniform(&mut rng, n * d, -3.0, 3.0);
    let x1 = uniform(&mut rng, n * d, -3.0, 3.0);
    let t = uniform(&mut rng, n, 0.0, 1.0);
    for sigma_min in [0.0, 0.1] {
        let p = AffinePath::new(SchedulerConfig::CondOt { sigma_min }).sample(
            tensor2(x0.clone(), n, d),
            tensor2(x1.clone(), n, d),
            &t,
        );
        // u_t = x₁ − (1 − σ_min) x₀, independent of t; exact up to one rounding.
        let want: Vec<f64> = x0.iter().zip(&x1).map(|(a, b)| b - (1.0 - sigma_min) * a).collect();
        assert_close(&host(p.ut), &want, 1e-15, &format!("sigma_min = {sigma_min}"));
    }
}

#[test]
fn affine_target_is_the_time_derivative_of_the_sample() {
    let (n, d) = (TIMES.len(), 2);
    let mut rng = ferroflow::rng::seeded(6);
    let x0 = uniform(&mut rng, n * d, -3.0, 3.0);
    let x1 = uniform(&mut rng, n * d, -3.0, 3.0);
    let h = 1e-6;
    for s in schedulers() {
        let path = AffinePath::new(s);
        let at = |dt: f64| {
            let t: Vec<f64> = TIMES.iter().map(|t| t + dt).collect();
            path.sample(tensor2(x0.clone(), n, d), tensor2(x1.clone(), n, d), &t)
        };
        let (p, m) = (host(at(h).xt), host(at(-h).xt));
        let fd: Vec<f64> = p.iter().zip(&m).map(|(a, b)| (a - b) / (2.0 * h)).collect();
        // Central differences, h = 1e-6: truncation h²|x‴|/6 ≲ 1e-8 (VE's σ‴ ≈ 9³·80·|x₀|),
        // rounding ~1e-16·|x_t|/h ≲ 1e-8; 1e-6 relative still catches a wrong factor.
        assert_close(&fd, &host(at(0.0).ut), 1e-6, &format!("{s:?}"));
    }
}
