//! The 2D worlds: small named distributions on ℝ² with exact, i.i.d. samplers.
//!
//! Each world has a fixed default parametrisation ([`World`], a plain name) and a parametrised
//! form ([`WorldConfig`], the same worlds with their numbers as fields). Every draw is i.i.d.
//! (no evenly spaced angles as in scikit-learn's `make_moons`): reference draws for the W2 floor
//! must be independent, see `shared/MEASURING.md` § Quality.
//!
//! | name | formula (defaults) | classes |
//! |---|---|---|
//! | `gaussian` | N(0, I₂) | 1 |
//! | `ring` | r = 4 + 0.1·ζ, θ ~ U[0, 2π): r(cos θ, sin θ) | 1 |
//! | `moons` | scikit-learn moons, i.i.d., noise 0.1, then ×3 − 1 | 2 (upper 0, lower 1) |
//! | `8gaussians` | N(5(cos kπ/4, sin kπ/4), 0.5²·I₂), k ~ U{0..7} | 8 (k) |
//! | `checkerboard` | uniform on the 8 black squares of side 2 of [−4, 4]² | 8 (square) |
//! | `spirals` | two interleaved spirals, 1.5 turns each, noise 0.1 | 2 (arm) |
//! | `swiss_roll` | scikit-learn's swiss roll (x, z)/5, noise 0.2 | 1 |

use std::f64::consts::PI;
use std::str::FromStr;

use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};

use super::{Labeled, Points};
use crate::error::ConfigError;
use crate::rng::Rng;

/// A named 2D distribution with its default parameters (see [`WorldConfig`] for the formulas).
///
/// ```
/// use ferroflow::data::World;
/// let w: World = "8gaussians".parse().unwrap();
/// assert_eq!(w, World::EightGaussians);
/// assert_eq!(w.name(), "8gaussians");
/// assert_eq!(w.n_classes(), 8);
/// assert!("moon".parse::<World>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum World {
    /// N(0, I₂).
    Gaussian,
    /// A thin ring: radius 4, radial std 0.1.
    Ring,
    /// Two interleaving half circles (scikit-learn's moons, i.i.d.), noise 0.1, scaled ×3 − 1.
    Moons,
    /// Eight Gaussians, std 0.5, at radius 5 in the eight compass directions.
    #[serde(rename = "8gaussians")]
    EightGaussians,
    /// Uniform on the 8 black squares (side 2) of a checkerboard on [−4, 4]².
    Checkerboard,
    /// Two interleaved spirals, noise 0.1.
    Spirals,
    /// A 2D swiss roll (scikit-learn's x and z coordinates, divided by 5), noise 0.2.
    SwissRoll,
}

impl World {
    /// Every world, in the order of the table in the module docs.
    pub const ALL: [World; 7] = [
        World::Gaussian,
        World::Ring,
        World::Moons,
        World::EightGaussians,
        World::Checkerboard,
        World::Spirals,
        World::SwissRoll,
    ];

    /// The world's name, as [`FromStr`] reads it.
    pub fn name(&self) -> &'static str {
        match self {
            World::Gaussian => "gaussian",
            World::Ring => "ring",
            World::Moons => "moons",
            World::EightGaussians => "8gaussians",
            World::Checkerboard => "checkerboard",
            World::Spirals => "spirals",
            World::SwissRoll => "swiss_roll",
        }
    }

    /// The world with its default parameters spelt out.
    pub fn config(&self) -> WorldConfig {
        match self {
            World::Gaussian => WorldConfig::Gaussian,
            World::Ring => WorldConfig::Ring { radius: 4.0, std: 0.1 },
            World::Moons => WorldConfig::Moons { noise: 0.1 },
            World::EightGaussians => WorldConfig::EightGaussians { radius: 5.0, std: 0.5 },
            World::Checkerboard => WorldConfig::Checkerboard { side: 2.0 },
            World::Spirals => WorldConfig::Spirals { noise: 0.1 },
            World::SwissRoll => WorldConfig::SwissRoll { noise: 0.2 },
        }
    }

    /// The number of classes its labels take (1 for unlabelled worlds).
    pub fn n_classes(&self) -> u32 {
        self.config().n_classes()
    }

    /// Draws `n` i.i.d. points with their labels (see [`WorldConfig::sample_labeled`]).
    pub fn sample_labeled(&self, n: usize, rng: &mut Rng) -> Labeled {
        self.config().sample_labeled(n, rng)
    }

    /// Draws `n` i.i.d. points, `[n, 2]`.
    pub fn sample_points(&self, n: usize, rng: &mut Rng) -> Points {
        self.sample_labeled(n, rng).points
    }
}

impl std::fmt::Display for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for World {
    type Err = ConfigError;

    /// Reads a name of [`World::ALL`] (`"gaussian"`, `"ring"`, `"moons"`, `"8gaussians"`,
    /// `"checkerboard"`, `"spirals"`, `"swiss_roll"`).
    ///
    /// # Errors
    /// [`ConfigError::Unknown`] listing the valid names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        World::ALL.into_iter().find(|w| w.name() == s).ok_or_else(|| ConfigError::Unknown {
            kind: "world",
            name: s.to_string(),
            valid: World::ALL.map(|w| w.name()).join(", "),
        })
    }
}

/// A 2D world with its parameters. All draws are i.i.d.; ζ, ζ₁, ζ₂ are independent N(0, 1),
/// u ~ U[0, 1), and a "fair coin" is a Bernoulli(½) draw.
///
/// ```
/// use ferroflow::data::{World, WorldConfig};
/// let ring = WorldConfig::Ring { radius: 4.0, std: 0.0 };
/// let p = ring.sample_labeled(3, &mut ferroflow::rng::seeded(0)).points;
/// let r = (p.row(1)[0].powi(2) + p.row(1)[1].powi(2)).sqrt();
/// assert!((r - 4.0).abs() < 1e-5);
/// assert_eq!(World::Ring.config(), WorldConfig::Ring { radius: 4.0, std: 0.1 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum WorldConfig {
    /// # Formula
    /// x = (ζ₁, ζ₂) ~ N(0, I₂). One class.
    Gaussian,
    /// # Formula
    /// θ ~ U[0, 2π), r = radius + std·ζ, x = r(cos θ, sin θ). One class.
    /// (The Gaussian → ring example; defaults radius 4, std 0.1.)
    Ring {
        /// Mean radius.
        radius: f64,
        /// Standard deviation of the radius.
        std: f64,
    },
    /// # Formula
    /// A fair coin c picks the moon, θ ~ U[0, π]:
    /// upper (c = 0): m = (cos θ, sin θ); lower (c = 1): m = (1 − cos θ, ½ − sin θ)
    /// (scikit-learn's `make_moons`, but i.i.d. rather than evenly spaced angles);
    /// x = 3(m + noise·(ζ₁, ζ₂)) − 1, the scaling of torchcfm's moons. Label c.
    Moons {
        /// Standard deviation of the per-coordinate Gaussian noise, before the ×3 (default 0.1).
        noise: f64,
    },
    /// # Formula
    /// k ~ U{0, …, 7}, x = radius·(cos kπ/4, sin kπ/4) + std·(ζ₁, ζ₂): eight Gaussians at the
    /// compass directions (k = 0 east, counter-clockwise). Label k. Defaults radius 5, std 0.5.
    #[serde(rename = "8gaussians")]
    EightGaussians {
        /// Distance of each centre from the origin.
        radius: f64,
        /// Standard deviation of each Gaussian.
        std: f64,
    },
    /// # Formula
    /// The 4 × 4 grid of squares of side `side` covering [−2·side, 2·side]²; square (i, j),
    /// i, j ∈ {0, 1, 2, 3}, spans x ∈ [−2s + is, −2s + (i+1)s), y likewise with j. The 8
    /// squares with i + j even (the lower-left one among them, as FFJORD's checkerboard) are
    /// black; k ~ U{0..7} picks one and x is uniform in it. Label k (black squares numbered
    /// row by row from the bottom: k = 2j + ⌊i/2⌋). Default side 2: [−4, 4]².
    Checkerboard {
        /// Side of each square.
        side: f64,
    },
    /// # Formula
    /// A fair coin c picks the arm, φ = 3π√u, p = (−φ cos φ, φ sin φ)/3;
    /// x = (1 − 2c)·p + noise·(ζ₁, ζ₂). Each arm turns 1.5 times and reaches radius π; √u
    /// makes the density per unit length roughly even. FFJORD's `2spirals` without its
    /// uniform jitter. Label c.
    Spirals {
        /// Standard deviation of the per-coordinate Gaussian noise (default 0.1).
        noise: f64,
    },
    /// # Formula
    /// τ = 1.5π(1 + 2u), x = (τ cos τ, τ sin τ)/5 + noise·(ζ₁, ζ₂): the x and z coordinates of
    /// scikit-learn's `make_swiss_roll`, divided by 5 (as FFJORD; its noise 1.0 is 0.2 here).
    /// One class.
    SwissRoll {
        /// Standard deviation of the per-coordinate Gaussian noise, after the /5 (default 0.2).
        noise: f64,
    },
}

impl WorldConfig {
    /// Which named world this is.
    pub fn world(&self) -> World {
        match self {
            WorldConfig::Gaussian => World::Gaussian,
            WorldConfig::Ring { .. } => World::Ring,
            WorldConfig::Moons { .. } => World::Moons,
            WorldConfig::EightGaussians { .. } => World::EightGaussians,
            WorldConfig::Checkerboard { .. } => World::Checkerboard,
            WorldConfig::Spirals { .. } => World::Spirals,
            WorldConfig::SwissRoll { .. } => World::SwissRoll,
        }
    }

    /// The number of classes its labels take (1 for unlabelled worlds).
    pub fn n_classes(&self) -> u32 {
        match self {
            WorldConfig::Gaussian | WorldConfig::Ring { .. } | WorldConfig::SwissRoll { .. } => 1,
            WorldConfig::Moons { .. } | WorldConfig::Spirals { .. } => 2,
            WorldConfig::EightGaussians { .. } | WorldConfig::Checkerboard { .. } => 8,
        }
    }

    /// Checks the parameters: every one finite, scales and noises ≥ 0, sides > 0.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the parameter.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let nonneg = |name: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(ConfigError::OutOfRange { name, value: v.to_string(), expected: "finite and ≥ 0" })
            }
        };
        match *self {
            WorldConfig::Gaussian => Ok(()),
            WorldConfig::Ring { radius, std } => nonneg("ring.radius", radius).and(nonneg("ring.std", std)),
            WorldConfig::Moons { noise } => nonneg("moons.noise", noise),
            WorldConfig::EightGaussians { radius, std } => {
                nonneg("8gaussians.radius", radius).and(nonneg("8gaussians.std", std))
            }
            WorldConfig::Checkerboard { side } if side.is_finite() && side > 0.0 => Ok(()),
            WorldConfig::Checkerboard { side } => Err(ConfigError::OutOfRange {
                name: "checkerboard.side",
                value: side.to_string(),
                expected: "finite and > 0",
            }),
            WorldConfig::Spirals { noise } => nonneg("spirals.noise", noise),
            WorldConfig::SwissRoll { noise } => nonneg("swiss_roll.noise", noise),
        }
    }

    /// Draws `n` i.i.d. points `[n, 2]` with their labels in `0..n_classes()`.
    ///
    /// The arithmetic is in f64; points are rounded to f32 at the end. The same `rng` state
    /// gives the same points, bit for bit.
    pub fn sample_labeled(&self, n: usize, rng: &mut Rng) -> Labeled {
        let mut data = Vec::with_capacity(2 * n);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let (x, y, label) = self.draw(rng);
            data.push(x as f32);
            data.push(y as f32);
            labels.push(label);
        }
        Labeled { points: Points { data, n, dim: 2 }, labels, n_classes: self.n_classes() }
    }

    /// Draws `n` i.i.d. points, `[n, 2]`.
    pub fn sample_points(&self, n: usize, rng: &mut Rng) -> Points {
        self.sample_labeled(n, rng).points
    }

    /// One draw (x, y, label).
    fn draw(&self, rng: &mut Rng) -> (f64, f64, u32) {
        match *self {
            WorldConfig::Gaussian => (StandardNormal.sample(rng), StandardNormal.sample(rng), 0),
            WorldConfig::Ring { radius, std } => {
                let theta = rng.random::<f64>() * 2.0 * PI;
                let z: f64 = StandardNormal.sample(rng);
                let r = radius + std * z;
                (r * theta.cos(), r * theta.sin(), 0)
            }
            WorldConfig::Moons { noise } => {
                let lower = rng.random::<bool>();
                let theta = rng.random::<f64>() * PI;
                let (mx, my) = if lower { (1.0 - theta.cos(), 0.5 - theta.sin()) } else { (theta.cos(), theta.sin()) };
                let (zx, zy): (f64, f64) = (StandardNormal.sample(rng), StandardNormal.sample(rng));
                (3.0 * (mx + noise * zx) - 1.0, 3.0 * (my + noise * zy) - 1.0, lower as u32)
            }
            WorldConfig::EightGaussians { radius, std } => {
                let k = rng.random_range(0..8u32);
                let a = f64::from(k) * PI / 4.0;
                let (zx, zy): (f64, f64) = (StandardNormal.sample(rng), StandardNormal.sample(rng));
                (radius * a.cos() + std * zx, radius * a.sin() + std * zy, k)
            }
            WorldConfig::Checkerboard { side } => {
                let k = rng.random_range(0..8u32);
                let j = k / 2;
                let i = 2 * (k % 2) + (j % 2);
                let (u, v) = (rng.random::<f64>(), rng.random::<f64>());
                let x = side * (f64::from(i) + u - 2.0);
                let y = side * (f64::from(j) + v - 2.0);
                (x, y, k)
            }
            WorldConfig::Spirals { noise } => {
                let arm = rng.random::<bool>();
                let phi = 3.0 * PI * rng.random::<f64>().sqrt();
                let sign = if arm { -1.0 } else { 1.0 };
                let (px, py) = (-phi * phi.cos() / 3.0, phi * phi.sin() / 3.0);
                let (zx, zy): (f64, f64) = (StandardNormal.sample(rng), StandardNormal.sample(rng));
                (sign * px + noise * zx, sign * py + noise * zy, arm as u32)
            }
            WorldConfig::SwissRoll { noise } => {
                let tau = 1.5 * PI * (1.0 + 2.0 * rng.random::<f64>());
                let (zx, zy): (f64, f64) = (StandardNormal.sample(rng), StandardNormal.sample(rng));
                (tau * tau.cos() / 5.0 + noise * zx, tau * tau.sin() / 5.0 + noise * zy, 0)
            }
        }
    }
}

impl FromStr for WorldConfig {
    type Err = ConfigError;

    /// A world name (as [`World`]'s) with its default parameters.
    ///
    /// # Errors
    /// [`ConfigError::Unknown`] listing the valid names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse::<World>().map(|w| w.config())
    }
}

impl From<World> for WorldConfig {
    fn from(w: World) -> Self {
        w.config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::seeded;

    /// Mean and (population) standard deviation.
    fn mean_std(v: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
        let n = v.clone().count() as f64;
        let m = v.clone().sum::<f64>() / n;
        let var = v.map(|x| (x - m).powi(2)).sum::<f64>() / n;
        (m, var.sqrt())
    }

    #[test]
    fn names_round_trip_and_unknown_lists_valid_names() {
        for w in World::ALL {
            assert_eq!(w.name().parse::<World>().unwrap(), w);
            assert_eq!(w.config().world(), w);
            let json = serde_json::to_string(&w).unwrap();
            assert_eq!(json, format!("\"{}\"", w.name()), "serde name agrees with name()");
        }
        let e = "swissroll".parse::<World>().unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ConfigError::Unknown { kind: "world", .. }));
        for w in World::ALL {
            assert!(msg.contains(w.name()), "{msg}");
        }
    }

    #[test]
    fn labels_are_in_range_and_points_finite_for_every_world() {
        for w in World::ALL {
            let l = w.sample_labeled(500, &mut seeded(3));
            assert_eq!(l.points.n, 500);
            assert!(l.points.all_finite());
            assert!(l.labels.iter().all(|&c| c < w.n_classes()), "{w}");
            // every class appears (500 draws, ≤ 8 equally likely classes: P(miss) < 8·(7/8)^500)
            for c in 0..w.n_classes() {
                assert!(l.labels.contains(&c), "{w}: class {c} never drawn");
            }
        }
    }

    #[test]
    fn same_seed_gives_the_same_points_bit_for_bit() {
        for w in World::ALL {
            let a = w.sample_labeled(64, &mut seeded(11));
            let b = w.sample_labeled(64, &mut seeded(11));
            let c = w.sample_labeled(64, &mut seeded(12));
            assert_eq!(a, b, "{w}");
            assert_ne!(a.points, c.points, "{w}");
        }
    }

    #[test]
    fn gaussian_has_zero_mean_and_unit_covariance() {
        let n = 20_000;
        let p = World::Gaussian.sample_points(n, &mut seeded(1));
        let (mx, sx) = mean_std((0..n).map(|i| f64::from(p.row(i)[0])));
        let (my, sy) = mean_std((0..n).map(|i| f64::from(p.row(i)[1])));
        let cov = (0..n).map(|i| f64::from(p.row(i)[0]) * f64::from(p.row(i)[1])).sum::<f64>() / n as f64;
        let se = 1.0 / (n as f64).sqrt(); // standard error of a mean or a covariance of N(0, 1)
        for m in [mx, my, cov] {
            assert!(m.abs() < 4.0 * se, "{m}");
        }
        // the sample std of N(0,1) has standard error 1/√(2n)
        for s in [sx, sy] {
            assert!((s - 1.0).abs() < 4.0 * se / 2f64.sqrt(), "{s}");
        }
    }

    #[test]
    fn ring_radius_has_mean_4_and_std_0_1_and_the_angle_is_uniform() {
        let n = 10_000;
        let p = World::Ring.sample_points(n, &mut seeded(2));
        let r = (0..n).map(|i| f64::from(p.row(i)[0]).hypot(f64::from(p.row(i)[1])));
        let (mr, sr) = mean_std(r);
        // mean within 3σ/√n of 4, σ = 0.1
        assert!((mr - 4.0).abs() < 3.0 * 0.1 / (n as f64).sqrt(), "mean radius {mr}");
        // sample std within 4 standard errors (σ/√(2n)) of 0.1
        assert!((sr - 0.1).abs() < 4.0 * 0.1 / (2.0 * n as f64).sqrt(), "radius std {sr}");
        // uniform angle: E cos θ = E sin θ = E cos 2θ = 0; each has std 1/√2 per draw
        let xy = |i: usize| (f64::from(p.row(i)[0]), f64::from(p.row(i)[1]));
        let moments = [
            (0..n).map(|i| xy(i).0 / xy(i).0.hypot(xy(i).1)).sum::<f64>(),
            (0..n).map(|i| xy(i).1 / xy(i).0.hypot(xy(i).1)).sum::<f64>(),
            (0..n).map(|i| (xy(i).0.powi(2) - xy(i).1.powi(2)) / xy(i).0.hypot(xy(i).1).powi(2)).sum::<f64>(),
        ];
        for m in moments.map(|s| s / n as f64) {
            assert!(m.abs() < 4.0 * 0.71 / (n as f64).sqrt(), "{m}");
        }
    }

    #[test]
    fn moons_have_the_analytic_mean_per_label_and_fair_labels() {
        let n = 20_000;
        let l = World::Moons.sample_labeled(n, &mut seeded(4));
        // E cos θ = 0, E sin θ = 2/π, Var cos θ = 1/2, Var sin θ = 1/2 − 4/π² for θ ~ U[0, π].
        let two_pi = 2.0 / PI;
        let var_noise: f64 = 0.01;
        let expect = [
            // (mean x, mean y, std x, std y) per label after ×3 − 1
            (
                -1.0,
                3.0 * two_pi - 1.0,
                3.0 * (0.5 + var_noise).sqrt(),
                3.0 * (0.5 - two_pi * two_pi + var_noise).sqrt(),
            ),
            (
                2.0,
                3.0 * (0.5 - two_pi) - 1.0,
                3.0 * (0.5 + var_noise).sqrt(),
                3.0 * (0.5 - two_pi * two_pi + var_noise).sqrt(),
            ),
        ];
        let n1 = l.labels.iter().filter(|&&c| c == 1).count();
        // fair coin: count within 4 standard deviations √n/2
        assert!((n1 as f64 - n as f64 / 2.0).abs() < 4.0 * (n as f64).sqrt() / 2.0, "{n1}");
        for (c, (ex, ey, sx, sy)) in expect.into_iter().enumerate() {
            let idx: Vec<usize> = (0..n).filter(|&i| l.labels[i] == c as u32).collect();
            let k = idx.len() as f64;
            let (mx, _) = mean_std(idx.iter().map(|&i| f64::from(l.points.row(i)[0])));
            let (my, _) = mean_std(idx.iter().map(|&i| f64::from(l.points.row(i)[1])));
            // each mean within 4 standard errors
            assert!((mx - ex).abs() < 4.0 * sx / k.sqrt(), "label {c}: mean x {mx}, expected {ex}");
            assert!((my - ey).abs() < 4.0 * sy / k.sqrt(), "label {c}: mean y {my}, expected {ey}");
        }
        // noise-free moons lie exactly on the unit half circles (before scaling)
        let clean = WorldConfig::Moons { noise: 0.0 }.sample_labeled(200, &mut seeded(5));
        for i in 0..200 {
            let (x, y) =
                ((f64::from(clean.points.row(i)[0]) + 1.0) / 3.0, (f64::from(clean.points.row(i)[1]) + 1.0) / 3.0);
            let (cx, cy, upper) = if clean.labels[i] == 0 { (0.0, 0.0, true) } else { (1.0, 0.5, false) };
            assert!(((x - cx).hypot(y - cy) - 1.0).abs() < 1e-6, "point {i} off its circle");
            assert!(if upper { y >= -1e-6 } else { y <= 0.5 + 1e-6 }, "point {i} on the wrong half");
        }
    }

    #[test]
    fn eight_gaussians_sit_at_radius_5_in_the_compass_directions_with_std_half() {
        let n = 16_000;
        let l = World::EightGaussians.sample_labeled(n, &mut seeded(6));
        for k in 0..8u32 {
            let idx: Vec<usize> = (0..n).filter(|&i| l.labels[i] == k).collect();
            let m = idx.len() as f64;
            // each centre drawn with probability 1/8: count within 4 binomial std
            assert!((m - n as f64 / 8.0).abs() < 4.0 * (n as f64 * 7.0 / 64.0).sqrt(), "class {k}: {m}");
            let a = f64::from(k) * PI / 4.0;
            let (mx, sx) = mean_std(idx.iter().map(|&i| f64::from(l.points.row(i)[0])));
            let (my, sy) = mean_std(idx.iter().map(|&i| f64::from(l.points.row(i)[1])));
            let se = 0.5 / m.sqrt();
            assert!((mx - 5.0 * a.cos()).abs() < 4.0 * se && (my - 5.0 * a.sin()).abs() < 4.0 * se, "centre {k}");
            for s in [sx, sy] {
                assert!((s - 0.5).abs() < 4.0 * 0.5 / (2.0 * m).sqrt(), "class {k}: std {s}");
            }
        }
    }

    #[test]
    fn checkerboard_points_are_in_black_squares_and_uniform_over_them() {
        let n = 16_000;
        let l = World::Checkerboard.sample_labeled(n, &mut seeded(7));
        let mut counts = [0usize; 16];
        for i in 0..n {
            let (x, y) = (f64::from(l.points.row(i)[0]), f64::from(l.points.row(i)[1]));
            assert!((-4.0..4.0).contains(&x) && (-4.0..4.0).contains(&y), "({x}, {y}) outside [−4, 4]²");
            let (ci, cj) = (((x + 4.0) / 2.0).floor() as usize, ((y + 4.0) / 2.0).floor() as usize);
            assert_eq!((ci + cj) % 2, 0, "({x}, {y}) in a white square");
            // the label names the square: k = 2j + ⌊i/2⌋
            assert_eq!(l.labels[i] as usize, 2 * cj + ci / 2);
            counts[4 * cj + ci] += 1;
        }
        let black: Vec<usize> = (0..16).filter(|s| (s % 4 + s / 4) % 2 == 0).map(|s| counts[s]).collect();
        assert_eq!(black.len(), 8);
        // chi-square against the uniform over 8 squares, 7 dof: the 99.9% quantile is 24.3
        let e = n as f64 / 8.0;
        let chi2: f64 = black.iter().map(|&c| (c as f64 - e).powi(2) / e).sum();
        assert!(chi2 < 24.3, "chi2 = {chi2}, counts {black:?}");
        // uniform within a square: the mean offset inside its square is side/2 = 1 on each axis
        let off = (0..n).map(|i| (f64::from(l.points.row(i)[0]) + 4.0).rem_euclid(2.0));
        let (m, s) = mean_std(off);
        assert!((m - 1.0).abs() < 4.0 * (1.0 / 3f64).sqrt() / (n as f64).sqrt(), "{m}");
        assert!((s - (1.0 / 3f64).sqrt()).abs() < 0.02, "std of U[0,2] is 1/√3, got {s}");
    }

    #[test]
    fn spirals_follow_their_arms_with_phi_squared_uniform() {
        let n = 4_000;
        let l = WorldConfig::Spirals { noise: 0.0 }.sample_labeled(n, &mut seeded(8));
        let mut s = 0.0;
        for i in 0..n {
            let sign = if l.labels[i] == 0 { 1.0 } else { -1.0 };
            let (x, y) = (sign * f64::from(l.points.row(i)[0]), sign * f64::from(l.points.row(i)[1]));
            // |p| = φ/3 recovers φ; the point must then be (−φ cos φ, φ sin φ)/3
            let phi = 3.0 * x.hypot(y);
            assert!((x + phi * phi.cos() / 3.0).abs() < 1e-5 && (y - phi * phi.sin() / 3.0).abs() < 1e-5, "point {i}");
            s += (phi / (3.0 * PI)).powi(2);
        }
        // (φ/3π)² = u ~ U[0,1]: mean 1/2, std 1/√12
        let m = s / n as f64;
        assert!((m - 0.5).abs() < 4.0 / (12.0 * n as f64).sqrt(), "{m}");
        let noisy = World::Spirals.sample_labeled(n, &mut seeded(9));
        let n1 = noisy.labels.iter().filter(|&&c| c == 1).count() as f64;
        assert!((n1 - n as f64 / 2.0).abs() < 4.0 * (n as f64).sqrt() / 2.0);
    }

    #[test]
    fn swiss_roll_parameter_is_uniform_on_its_interval_and_points_on_the_curve() {
        let n = 4_000;
        let p = WorldConfig::SwissRoll { noise: 0.0 }.sample_points(n, &mut seeded(10));
        let mut taus = Vec::with_capacity(n);
        for i in 0..n {
            let (x, y) = (5.0 * f64::from(p.row(i)[0]), 5.0 * f64::from(p.row(i)[1]));
            let tau = x.hypot(y);
            assert!((1.5 * PI - 1e-4..=4.5 * PI + 1e-4).contains(&tau), "τ = {tau}");
            assert!((x - tau * tau.cos()).abs() < 1e-4 && (y - tau * tau.sin()).abs() < 1e-4, "point {i}");
            taus.push(tau);
        }
        // τ ~ U[1.5π, 4.5π]: mean 3π, std 3π/√12
        let (m, s) = mean_std(taus.into_iter());
        let sd = 3.0 * PI / 12f64.sqrt();
        assert!((m - 3.0 * PI).abs() < 4.0 * sd / (n as f64).sqrt(), "{m}");
        assert!((s - sd).abs() < 0.05 * sd, "{s}");
    }

    #[test]
    fn invalid_parameters_are_rejected() {
        assert!(WorldConfig::Ring { radius: 4.0, std: -0.1 }.validate().is_err());
        assert!(WorldConfig::Checkerboard { side: 0.0 }.validate().is_err());
        assert!(WorldConfig::Moons { noise: f64::NAN }.validate().is_err());
        for w in World::ALL {
            assert!(w.config().validate().is_ok(), "{w}");
        }
    }
}
