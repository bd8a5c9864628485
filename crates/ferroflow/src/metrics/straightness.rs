use super::sq_dist;
use crate::data::Points;
use crate::error::ConfigError;

/// Checks a trajectory: ≥ 2 states, one per time, times finite and strictly increasing, every
/// state the same shape with at least one point.
fn check_trajectory(times: &[f64], states: &[Points]) -> crate::Result<()> {
    if times.len() != states.len() || times.len() < 2 {
        return Err(crate::Error::Shape {
            op: "trajectory",
            expected: "one state per time, at least 2 of them".into(),
            got: format!("{} times and {} states", times.len(), states.len()),
        });
    }
    if let Some(w) = times.windows(2).find(|w| !(w[0].is_finite() && w[1].is_finite() && w[1] > w[0])) {
        return Err(ConfigError::OutOfRange {
            name: "trajectory times",
            value: format!("{} then {}", w[0], w[1]),
            expected: "finite and strictly increasing",
        }
        .into());
    }
    let (n, dim) = (states[0].n, states[0].dim);
    if let Some(s) = states.iter().find(|s| s.n != n || s.dim != dim || s.data.len() != n * dim || n == 0) {
        return Err(crate::Error::Shape {
            op: "trajectory",
            expected: format!("every state {n}×{dim}, n ≥ 1"),
            got: format!("{}×{} ({} values)", s.n, s.dim, s.data.len()),
        });
    }
    Ok(())
}

/// The kinetic energy of sampled trajectories, by finite differences.
///
/// # Formula
/// E = (1/n) Σᵢ Σₖ ‖x_{k+1,i} − x_{k,i}‖² / Δtₖ, Δtₖ = t_{k+1} − t_k: the Riemann sum of
/// ∫ ‖ẋ‖² dt over each path, averaged over the n paths, with ẋ ≈ Δx/Δt on each step.
///
/// # Shapes
/// `times: [K + 1]`, `states: [K + 1]` of `[n, dim]`; state k holds the n paths at `times[k]`.
///
/// # Errors
/// [`crate::Error::Shape`] for fewer than 2 states, a count that differs from `times`, or
/// states of different shapes; [`ConfigError::OutOfRange`] if the times are not strictly
/// increasing.
///
/// ```
/// use ferroflow::data::Points;
/// // one path 0 → 1 → 3 at t = 0, 0.5, 1: 1/0.5 + 4/0.5 = 10
/// let s: Vec<Points> = [0.0, 1.0, 3.0].iter().map(|&x| Points::new(vec![x], 1, 1).unwrap()).collect();
/// assert_eq!(ferroflow::metrics::kinetic_energy(&[0.0, 0.5, 1.0], &s).unwrap(), 10.0);
/// ```
pub fn kinetic_energy(times: &[f64], states: &[Points]) -> crate::Result<f64> {
    check_trajectory(times, states)?;
    let n = states[0].n;
    let mut e = 0.0;
    for (w, dt) in states.windows(2).zip(times.windows(2).map(|t| t[1] - t[0])) {
        let step: f64 = (0..n).map(|i| sq_dist(w[1].row(i), w[0].row(i))).sum();
        e += step / dt;
    }
    Ok(e / n as f64)
}

/// How far sampled trajectories are from straight lines at constant speed.
///
/// # Formula
/// S = E − (1/n) Σᵢ ‖x_{K,i} − x_{0,i}‖² / (t_K − t_0), with E the [`kinetic_energy`].
/// This is the discrete form of the straightness S(Z) of Liu, Gong & Liu 2022 ("Flow Straight
/// and Fast", rectified flow), over any time span:
/// S = ∫ E‖(x_K − x_0)/(t_K − t_0) − ẋ_t‖² dt = ∫ E‖ẋ_t‖² dt − E‖x_K − x_0‖²/(t_K − t_0).
/// S ≥ 0 (Cauchy–Schwarz on each path), and S = 0 exactly when every path moves along a line
/// at constant speed (each step's displacement proportional to its Δt).
///
/// # Shapes
/// As [`kinetic_energy`].
///
/// # Errors
/// As [`kinetic_energy`].
///
/// ```
/// use ferroflow::data::Points;
/// // x(t) = t² on t = 0, ½, 1: E = (1/4)²·2 + (3/4)²·2 = 1.25, displacement² / 1 = 1
/// let s: Vec<Points> = [0.0, 0.25, 1.0].iter().map(|&x| Points::new(vec![x], 1, 1).unwrap()).collect();
/// assert_eq!(ferroflow::metrics::straightness(&[0.0, 0.5, 1.0], &s).unwrap(), 0.25);
/// ```
pub fn straightness(times: &[f64], states: &[Points]) -> crate::Result<f64> {
    let e = kinetic_energy(times, states)?;
    let (first, last) = (&states[0], &states[states.len() - 1]);
    let span = times[times.len() - 1] - times[0];
    let disp: f64 = (0..first.n).map(|i| sq_dist(last.row(i), first.row(i))).sum::<f64>() / first.n as f64;
    // exact-arithmetic S ≥ 0; rounding can give −ε for straight paths
    Ok((e - disp / span).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// States of paths x(t) for each of `starts`, at `times`.
    fn sample_paths(times: &[f64], paths: &[&dyn Fn(f64) -> [f64; 2]]) -> Vec<Points> {
        times
            .iter()
            .map(|&t| {
                let data = paths.iter().flat_map(|p| p(t).map(|v| v as f32)).collect();
                Points::new(data, paths.len(), 2).unwrap()
            })
            .collect()
    }

    #[test]
    fn straight_constant_speed_paths_have_zero_straightness_on_uneven_grids() {
        let times = [0.0, 0.1, 0.35, 0.5, 0.9, 1.0];
        let a = |t: f64| [1.0 + 2.0 * t, -1.0 + 0.5 * t];
        let b = |t: f64| [-3.0 * t, 4.0 * t];
        let states = sample_paths(&times, &[&a, &b]);
        let s = straightness(&times, &states).unwrap();
        // f32 positions with |x| ≤ 5: rounding ≈ 1e-6 per step, squared and divided by Δt ≥ 0.1
        assert!(s < 1e-5, "{s}");
        // E = mean ‖velocity‖² = (4.25 + 25) / 2
        let e = kinetic_energy(&times, &states).unwrap();
        assert!((e - 29.25 / 2.0).abs() < 1e-5, "{e}");
    }

    #[test]
    fn semicircle_has_the_analytic_discrete_straightness() {
        // x(t) = (cos πt, sin πt): chords 2 sin(π/2K) per step of 1/K, displacement (−2, 0).
        for k in [4usize, 16, 64] {
            let times: Vec<f64> = (0..=k).map(|i| i as f64 / k as f64).collect();
            let circle = |t: f64| [(PI * t).cos(), (PI * t).sin()];
            let states = sample_paths(&times, &[&circle]);
            let want = 4.0 * (k * k) as f64 * (PI / (2.0 * k as f64)).sin().powi(2) - 4.0;
            let s = straightness(&times, &states).unwrap();
            // f32 rounding of unit-circle points (6e-8) in chords of length ≥ 0.05, over ≤ 64 steps
            assert!((s - want).abs() < 1e-3 * want, "K={k}: {s} vs {want}");
        }
        // and it tends to ∫‖ẋ‖² − ‖Δx‖² = π² − 4 as K grows: error ≈ π⁴/(12K²)
        let times: Vec<f64> = (0..=64).map(|i| f64::from(i) / 64.0).collect();
        let states = sample_paths(&times, &[&|t: f64| [(PI * t).cos(), (PI * t).sin()]]);
        let s = straightness(&times, &states).unwrap();
        assert!((s - (PI * PI - 4.0)).abs() < PI.powi(4) / (12.0 * 64.0 * 64.0) * 1.1, "{s}");
    }

    #[test]
    fn bad_trajectories_are_errors() {
        let p = Points::new(vec![0.0, 0.0], 1, 2).unwrap();
        let q = Points::new(vec![0.0; 4], 2, 2).unwrap();
        assert!(kinetic_energy(&[0.0], std::slice::from_ref(&p)).is_err());
        assert!(kinetic_energy(&[0.0, 1.0], &[p.clone(), q]).is_err());
        assert!(kinetic_energy(&[1.0, 1.0], &[p.clone(), p.clone()]).is_err());
        assert!(kinetic_energy(&[0.0, f64::NAN], &[p.clone(), p.clone()]).is_err());
        assert!(kinetic_energy(&[0.0, 1.0, 2.0], &[p.clone(), p]).is_err());
    }
}
