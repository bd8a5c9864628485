//! Schedulers: α_t, σ_t and their time derivatives, for the affine path x_t = α_t x₁ + σ_t x₀.
//!
//! **Convention: t = 0 is the source (noise), t = 1 is the data.** Every schedule here has
//! α₁ = 1; α₀ is exactly 0 for [`SchedulerConfig::CondOt`], [`SchedulerConfig::Polynomial`] and
//! [`SchedulerConfig::Cosine`], but **not** for [`SchedulerConfig::VpLinearBeta`] (α₀ ≈ 0.0066
//! with the default β's) nor for [`SchedulerConfig::Ve`] (α_t = 1 for all t). A sampler must
//! therefore start from N(0, σ₀² I) with σ₀ = [`SchedulerConfig::source_std`], which is ≈ 1 for
//! all but VE (σ₀ = σ_max), and accept that the small α₀ x₁ term is neglected.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// α_t, σ_t and their derivatives at one time t.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SchedulerOutput {
    /// α_t, the weight of the data sample x₁.
    pub alpha_t: f64,
    /// σ_t, the weight of the source sample x₀.
    pub sigma_t: f64,
    /// dα_t/dt.
    pub d_alpha_t: f64,
    /// dσ_t/dt.
    pub d_sigma_t: f64,
}

/// A scheduler gives (α_t, σ_t) and their derivatives for t ∈ [0, 1].
pub trait Scheduler: std::fmt::Debug + Send + Sync {
    /// The coefficients at time `t` (t = 0 source, t = 1 data).
    fn at(&self, t: f64) -> SchedulerOutput;
}

/// Default β_min of [`SchedulerConfig::VpLinearBeta`] (Song et al. 2021, §3.4 / App. C).
pub const VP_BETA_MIN: f64 = 0.1;
/// Default β_max of [`SchedulerConfig::VpLinearBeta`] (Song et al. 2021, §3.4 / App. C).
pub const VP_BETA_MAX: f64 = 20.0;
/// Default σ_min of [`SchedulerConfig::Ve`] (Song et al. 2021, App. C: σ_min = 0.01).
pub const VE_SIGMA_MIN: f64 = 0.01;
/// Default σ_max of [`SchedulerConfig::Ve`]: 80, as in Karras et al. 2022 (EDM, Table 1).
///
/// Song & Ermon 2020 (*Improved Techniques for Training Score-Based Generative Models*,
/// Technique 1) ask σ_max to be at least the largest distance between two training points, so
/// that p₀ covers the data. ferroflow's 2D worlds have a diameter ≈ 10–12 and 28×28 images in
/// [−1, 1] at most 56, so 80 covers both. For 2D data alone a σ_max ≈ 12 wastes less of the time
/// axis (the log-σ schedule spends ln(80/12)/ln(80/0.01) ≈ 21 % of t above σ = 12).
pub const VE_SIGMA_MAX: f64 = 80.0;
/// Default exponent of [`SchedulerConfig::Polynomial`] (the simplest non-linear choice).
pub const POLYNOMIAL_N: f64 = 2.0;

fn default_beta_min() -> f64 {
    VP_BETA_MIN
}
fn default_beta_max() -> f64 {
    VP_BETA_MAX
}
fn default_ve_sigma_min() -> f64 {
    VE_SIGMA_MIN
}
fn default_ve_sigma_max() -> f64 {
    VE_SIGMA_MAX
}
fn default_n() -> f64 {
    POLYNOMIAL_N
}

/// The schedulers ferroflow ships, as a serialisable choice (TOML: `kind = "cond_ot"`, …;
/// omitted parameters take their defaults).
///
/// All are written for **t = 0 noise, t = 1 data**; each variant's doc gives its formula.
/// Check a config read from a user with [`SchedulerConfig::validate`] before use: [`Scheduler::at`]
/// does not check.
///
/// ```
/// use ferroflow::path::{Scheduler, SchedulerConfig};
/// let s: SchedulerConfig = toml::from_str("kind = \"ve\"\nsigma_max = 50.0").unwrap();
/// assert_eq!(s, SchedulerConfig::Ve { sigma_min: 0.01, sigma_max: 50.0 });
/// assert!((s.at(0.0).sigma_t - 50.0).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SchedulerConfig {
    /// Conditional optimal transport (the straight-line path).
    ///
    /// # Formula
    /// α_t = t, σ_t = 1 − (1 − σ_min) t, α̇_t = 1, σ̇_t = −(1 − σ_min)
    /// (Lipman et al. 2023, eq. 22, with t reversed to t = 0 noise).
    ///
    /// ```
    /// use ferroflow::path::{Scheduler, SchedulerConfig};
    /// let s = SchedulerConfig::CondOt { sigma_min: 0.1 }.at(0.5);
    /// assert_eq!((s.alpha_t, s.sigma_t, s.d_alpha_t, s.d_sigma_t), (0.5, 0.55, 1.0, -0.9));
    /// ```
    CondOt {
        /// σ at t = 1, in [0, 1).
        #[serde(default)]
        sigma_min: f64,
    },
    /// The polynomial convex schedule (flow_matching's `PolynomialConvexScheduler`).
    ///
    /// # Formula
    /// α_t = tⁿ, σ_t = 1 − tⁿ, α̇_t = n tⁿ⁻¹, σ̇_t = −n tⁿ⁻¹.
    /// For n < 1 the derivatives are infinite at t = 0.
    ///
    /// ```
    /// use ferroflow::path::{Scheduler, SchedulerConfig};
    /// let s = SchedulerConfig::Polynomial { n: 2.0 }.at(0.5);
    /// assert_eq!((s.alpha_t, s.sigma_t, s.d_alpha_t, s.d_sigma_t), (0.25, 0.75, 1.0, -1.0));
    /// ```
    Polynomial {
        /// The exponent n > 0 (n = 1 is CondOT with σ_min = 0).
        #[serde(default = "default_n")]
        n: f64,
    },
    /// The variance-preserving SDE's linear β schedule (Song et al. 2021, eq. 11 and 33;
    /// flow_matching's `VPScheduler`), written for t = 0 noise. The TOML kind is
    /// `vp_linear_beta` (or `vp`).
    ///
    /// # Formula
    /// With s = 1 − t and T(s) = ∫₀ˢ β(r) dr = ½ s² (β_max − β_min) + s β_min,
    ///
    /// α_t = exp(−½ T(s)),  σ_t = √(1 − α_t²),
    /// α̇_t = ½ α_t T′(s),  σ̇_t = −α_t α̇_t / σ_t,  T′(s) = s (β_max − β_min) + β_min.
    ///
    /// α₀ = exp(−¼(β_max + β_min)) is small but not 0; σ̇ is infinite at t = 1 (σ₁ = 0).
    ///
    /// ```
    /// use ferroflow::path::{Scheduler, SchedulerConfig};
    /// let s = SchedulerConfig::VpLinearBeta { beta_min: 0.1, beta_max: 20.0 }.at(0.0);
    /// // T(1) = ½·19.9 + 0.1 = 10.05, α₀ = e^(−5.025)
    /// assert!((s.alpha_t - 0.006_571_586_5).abs() < 1e-10);
    /// assert!((s.alpha_t.powi(2) + s.sigma_t.powi(2) - 1.0).abs() < 1e-15);
    /// ```
    #[serde(alias = "vp")]
    VpLinearBeta {
        /// β at t = 1 (data end), > 0.
        #[serde(default = "default_beta_min")]
        beta_min: f64,
        /// β at t = 0 (noise end), > β_min.
        #[serde(default = "default_beta_max")]
        beta_max: f64,
    },
    /// The variance-exploding schedule (Song et al. 2021, eq. 9 and 31; NCSN's geometric σ's).
    ///
    /// # Formula
    /// α_t = 1, σ_t = σ_min (σ_max/σ_min)^(1−t), α̇_t = 0, σ̇_t = −ln(σ_max/σ_min) σ_t.
    ///
    /// σ₀ = σ_max is large: samplers start from N(0, σ_max² I) (see
    /// [`SchedulerConfig::source_std`]). Defaults: [`VE_SIGMA_MIN`], [`VE_SIGMA_MAX`].
    ///
    /// ```
    /// use ferroflow::path::{Scheduler, SchedulerConfig};
    /// let s = SchedulerConfig::Ve { sigma_min: 0.01, sigma_max: 100.0 }.at(0.5);
    /// assert_eq!(s.alpha_t, 1.0);
    /// assert!((s.sigma_t - 1.0).abs() < 1e-12); // √(0.01·100)
    /// assert!((s.d_sigma_t + 10_000f64.ln()).abs() < 1e-12);
    /// ```
    Ve {
        /// σ at t = 1, > 0.
        #[serde(default = "default_ve_sigma_min")]
        sigma_min: f64,
        /// σ at t = 0, > σ_min.
        #[serde(default = "default_ve_sigma_max")]
        sigma_max: f64,
    },
    /// The cosine (trigonometric) schedule, α_t² + σ_t² = 1 (Nichol & Dhariwal 2021's shape;
    /// torchcfm's "VariancePreserving" path).
    ///
    /// # Formula
    /// α_t = sin(πt/2), σ_t = cos(πt/2), α̇_t = (π/2) cos(πt/2), σ̇_t = −(π/2) sin(πt/2)
    ///
    /// ```
    /// use ferroflow::path::{Scheduler, SchedulerConfig};
    /// let s = SchedulerConfig::Cosine.at(1.0 / 3.0);
    /// assert!((s.alpha_t - 0.5).abs() < 1e-15); // sin(π/6)
    /// assert!((s.d_sigma_t + std::f64::consts::PI / 4.0).abs() < 1e-15);
    /// ```
    Cosine,
}

impl Scheduler for SchedulerConfig {
    fn at(&self, t: f64) -> SchedulerOutput {
        match *self {
            SchedulerConfig::CondOt { sigma_min } => SchedulerOutput {
                alpha_t: t,
                sigma_t: 1.0 - (1.0 - sigma_min) * t,
                d_alpha_t: 1.0,
                d_sigma_t: -(1.0 - sigma_min),
            },
            SchedulerConfig::Polynomial { n } => {
                let tn = t.powf(n);
                let d = n * t.powf(n - 1.0);
                SchedulerOutput { alpha_t: tn, sigma_t: 1.0 - tn, d_alpha_t: d, d_sigma_t: -d }
            }
            SchedulerConfig::VpLinearBeta { beta_min, beta_max } => {
                let s = 1.0 - t;
                let big_t = 0.5 * s * s * (beta_max - beta_min) + s * beta_min;
                let d_big_t = s * (beta_max - beta_min) + beta_min;
                let alpha_t = (-0.5 * big_t).exp();
                // 1 − α² = 1 − e^(−T) = −expm1(−T): accurate near t = 1 where T → 0.
                let sigma_t = (-(-big_t).exp_m1()).sqrt();
                let d_alpha_t = 0.5 * alpha_t * d_big_t;
                SchedulerOutput { alpha_t, sigma_t, d_alpha_t, d_sigma_t: -alpha_t * d_alpha_t / sigma_t }
            }
            SchedulerConfig::Ve { sigma_min, sigma_max } => {
                let log_ratio = (sigma_max / sigma_min).ln();
                let sigma_t = sigma_min * ((1.0 - t) * log_ratio).exp();
                SchedulerOutput { alpha_t: 1.0, sigma_t, d_alpha_t: 0.0, d_sigma_t: -log_ratio * sigma_t }
            }
            SchedulerConfig::Cosine => {
                let h = std::f64::consts::FRAC_PI_2;
                let (sin, cos) = (h * t).sin_cos();
                SchedulerOutput { alpha_t: sin, sigma_t: cos, d_alpha_t: h * cos, d_sigma_t: -h * sin }
            }
        }
    }
}

impl Default for SchedulerConfig {
    /// CondOT with σ_min = 0.
    fn default() -> Self {
        SchedulerConfig::CondOt { sigma_min: 0.0 }
    }
}

fn range(name: &'static str, v: f64, ok: bool, expected: &'static str) -> Result<(), ConfigError> {
    if ok { Ok(()) } else { Err(ConfigError::OutOfRange { name, value: v.to_string(), expected }) }
}

impl SchedulerConfig {
    /// Every scheduler with its default parameters, in the order of [`SchedulerConfig::name`]'s
    /// list.
    pub const ALL: [SchedulerConfig; 5] = [
        SchedulerConfig::CondOt { sigma_min: 0.0 },
        SchedulerConfig::Polynomial { n: POLYNOMIAL_N },
        SchedulerConfig::VpLinearBeta { beta_min: VP_BETA_MIN, beta_max: VP_BETA_MAX },
        SchedulerConfig::Ve { sigma_min: VE_SIGMA_MIN, sigma_max: VE_SIGMA_MAX },
        SchedulerConfig::Cosine,
    ];

    /// The short name used on the command line (`--scheduler`): `cond_ot`, `polynomial`, `vp`,
    /// `ve` or `cosine`. [`FromStr`] maps it back (with default parameters).
    pub fn name(&self) -> &'static str {
        match self {
            SchedulerConfig::CondOt { .. } => "cond_ot",
            SchedulerConfig::Polynomial { .. } => "polynomial",
            SchedulerConfig::VpLinearBeta { .. } => "vp",
            SchedulerConfig::Ve { .. } => "ve",
            SchedulerConfig::Cosine => "cosine",
        }
    }

    /// σ₀, the standard deviation of the source N(0, σ₀² I) a sampler must start from.
    ///
    /// 1 for CondOT, polynomial and cosine; √(1 − e^(−T(1))) ≈ 1 for VP; σ_max for VE. For VP
    /// and VE α₀ ≠ 0, so x_0 = α₀ x₁ + σ₀ x₀ is only approximately N(0, σ₀² I): the α₀ x₁ term
    /// (≈ 0.0066 x₁ for VP's defaults, x₁ itself for VE, negligible against σ_max) is dropped.
    ///
    /// ```
    /// use ferroflow::path::SchedulerConfig;
    /// assert_eq!(SchedulerConfig::Ve { sigma_min: 0.01, sigma_max: 80.0 }.source_std(), 80.0);
    /// assert_eq!(SchedulerConfig::Cosine.source_std(), 1.0);
    /// ```
    pub fn source_std(&self) -> f64 {
        match *self {
            // Exact rather than through exp(ln(σ_max/σ_min))·σ_min, which rounds.
            SchedulerConfig::Ve { sigma_max, .. } => sigma_max,
            _ => self.at(0.0).sigma_t,
        }
    }

    /// Checks the parameters.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the bad setting: CondOT needs σ_min ∈ [0, 1);
    /// polynomial a finite n > 0; VP finite 0 < β_min < β_max; VE finite 0 < σ_min < σ_max.
    ///
    /// ```
    /// use ferroflow::path::SchedulerConfig;
    /// assert!(SchedulerConfig::CondOt { sigma_min: 0.01 }.validate().is_ok());
    /// let e = SchedulerConfig::Polynomial { n: -1.0 }.validate().unwrap_err();
    /// assert_eq!(e.to_string(), "scheduler.n = -1 is out of range: a finite number > 0");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        match *self {
            SchedulerConfig::CondOt { sigma_min } => {
                range("scheduler.sigma_min", sigma_min, (0.0..1.0).contains(&sigma_min), "0 <= sigma_min < 1")
            }
            SchedulerConfig::Polynomial { n } => {
                range("scheduler.n", n, n > 0.0 && n.is_finite(), "a finite number > 0")
            }
            SchedulerConfig::VpLinearBeta { beta_min, beta_max } => {
                range("scheduler.beta_min", beta_min, beta_min > 0.0 && beta_min.is_finite(), "a finite number > 0")?;
                range(
                    "scheduler.beta_max",
                    beta_max,
                    beta_max > beta_min && beta_max.is_finite(),
                    "a finite number > beta_min",
                )
            }
            SchedulerConfig::Ve { sigma_min, sigma_max } => {
                range(
                    "scheduler.sigma_min",
                    sigma_min,
                    sigma_min > 0.0 && sigma_min.is_finite(),
                    "a finite number > 0",
                )?;
                range(
                    "scheduler.sigma_max",
                    sigma_max,
                    sigma_max > sigma_min && sigma_max.is_finite(),
                    "a finite number > sigma_min",
                )
            }
            SchedulerConfig::Cosine => Ok(()),
        }
    }
}

impl FromStr for SchedulerConfig {
    type Err = ConfigError;

    /// Parses a [`SchedulerConfig::name`] into that scheduler with default parameters.
    ///
    /// # Errors
    /// [`ConfigError::Unknown`] listing the valid names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SchedulerConfig::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| ConfigError::Unknown {
            kind: "scheduler",
            name: s.to_string(),
            valid: SchedulerConfig::ALL.map(|c| c.name()).join(", "),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each scheduler with non-default parameters as well, so a formula that only holds for
    /// the defaults (e.g. a dropped σ_min) is caught.
    fn schedulers() -> Vec<SchedulerConfig> {
        let mut v = SchedulerConfig::ALL.to_vec();
        v.extend([
            SchedulerConfig::CondOt { sigma_min: 0.05 },
            SchedulerConfig::Polynomial { n: 0.7 },
            SchedulerConfig::Polynomial { n: 3.0 },
            SchedulerConfig::VpLinearBeta { beta_min: 0.5, beta_max: 5.0 },
            SchedulerConfig::Ve { sigma_min: 0.002, sigma_max: 10.0 },
        ]);
        v
    }

    #[test]
    fn derivatives_match_central_differences() {
        let h = 1e-6;
        for s in schedulers() {
            for i in 0..=98 {
                let t = 0.01 + 0.01 * i as f64;
                let (p, m, c) = (s.at(t + h), s.at(t - h), s.at(t));
                let fd_a = (p.alpha_t - m.alpha_t) / (2.0 * h);
                let fd_s = (p.sigma_t - m.sigma_t) / (2.0 * h);
                // Truncation h²|f‴|/6 ≲ 1e-12·|f‴| and rounding ~1e-16·|f|/h ~ 1e-10·|f|; VE's σ
                // reaches 80 (f‴ ~ 80·9³), VP's σ near t = 0.99 has |σ‴| ~ 1e3: 1e-6 relative
                // to (1 + |f'|) leaves room for both and still catches any wrong factor.
                let tol = |d: f64| 1e-6 * (1.0 + d.abs());
                assert!((fd_a - c.d_alpha_t).abs() < tol(c.d_alpha_t), "{s:?} t={t}: dα {fd_a} vs {}", c.d_alpha_t);
                assert!((fd_s - c.d_sigma_t).abs() < tol(c.d_sigma_t), "{s:?} t={t}: dσ {fd_s} vs {}", c.d_sigma_t);
            }
        }
    }

    #[test]
    fn endpoints_are_noise_at_zero_and_data_at_one() {
        for s in schedulers() {
            let (a, b) = (s.at(0.0), s.at(1.0));
            assert!((b.alpha_t - 1.0).abs() < 1e-15, "{s:?}: α₁ = {}", b.alpha_t);
            let sigma_1 = match s {
                SchedulerConfig::CondOt { sigma_min } | SchedulerConfig::Ve { sigma_min, .. } => sigma_min,
                _ => 0.0,
            };
            // Cosine's cos(π/2) = 6e-17 in floating point.
            assert!((b.sigma_t - sigma_1).abs() < 1e-15, "{s:?}: σ₁ = {}", b.sigma_t);
            match s {
                SchedulerConfig::VpLinearBeta { beta_min, beta_max } => {
                    assert!((a.alpha_t - (-0.25 * (beta_max + beta_min)).exp()).abs() < 1e-15);
                }
                SchedulerConfig::Ve { sigma_max, .. } => {
                    assert_eq!(a.alpha_t, 1.0);
                    assert!((a.sigma_t - sigma_max).abs() < 1e-12 * sigma_max);
                }
                _ => assert_eq!((a.alpha_t, a.sigma_t), (0.0, 1.0), "{s:?}"),
            }
            assert!((s.source_std() - a.sigma_t).abs() < 1e-12 * a.sigma_t, "{s:?}");
        }
    }

    #[test]
    fn vp_and_cosine_preserve_variance() {
        for s in [
            SchedulerConfig::ALL[2],
            SchedulerConfig::VpLinearBeta { beta_min: 0.5, beta_max: 5.0 },
            SchedulerConfig::Cosine,
        ] {
            for i in 0..=100 {
                let c = s.at(i as f64 / 100.0);
                // α² + σ² = 1 holds to rounding (expm1 keeps σ accurate near t = 1).
                assert!((c.alpha_t.powi(2) + c.sigma_t.powi(2) - 1.0).abs() < 1e-15, "{s:?}");
            }
        }
    }

    #[test]
    fn names_round_trip_and_unknown_lists_the_valid_ones() {
        for s in SchedulerConfig::ALL {
            assert_eq!(s.name().parse::<SchedulerConfig>().unwrap(), s);
            s.validate().unwrap();
        }
        match "vpsde".parse::<SchedulerConfig>() {
            Err(ConfigError::Unknown { kind, name, valid }) => {
                assert_eq!((kind, name.as_str()), ("scheduler", "vpsde"));
                assert_eq!(valid, "cond_ot, polynomial, vp, ve, cosine");
            }
            other => panic!("expected Unknown, got {other:?}"),
        }
    }

    #[test]
    fn validate_rejects_each_bad_setting_by_name() {
        let bad = [
            (SchedulerConfig::CondOt { sigma_min: 1.0 }, "scheduler.sigma_min"),
            (SchedulerConfig::CondOt { sigma_min: -0.1 }, "scheduler.sigma_min"),
            (SchedulerConfig::CondOt { sigma_min: f64::NAN }, "scheduler.sigma_min"),
            (SchedulerConfig::Polynomial { n: 0.0 }, "scheduler.n"),
            (SchedulerConfig::Polynomial { n: f64::INFINITY }, "scheduler.n"),
            (SchedulerConfig::VpLinearBeta { beta_min: 0.0, beta_max: 20.0 }, "scheduler.beta_min"),
            (SchedulerConfig::VpLinearBeta { beta_min: 1.0, beta_max: 1.0 }, "scheduler.beta_max"),
            (SchedulerConfig::VpLinearBeta { beta_min: 0.1, beta_max: f64::INFINITY }, "scheduler.beta_max"),
            (SchedulerConfig::Ve { sigma_min: 0.0, sigma_max: 80.0 }, "scheduler.sigma_min"),
            (SchedulerConfig::Ve { sigma_min: 1.0, sigma_max: 0.5 }, "scheduler.sigma_max"),
            (SchedulerConfig::Ve { sigma_min: 0.01, sigma_max: f64::NAN }, "scheduler.sigma_max"),
        ];
        for (s, want) in bad {
            match s.validate() {
                Err(ConfigError::OutOfRange { name, .. }) => assert_eq!(name, want, "{s:?}"),
                other => panic!("{s:?}: expected OutOfRange({want}), got {other:?}"),
            }
        }
        for s in schedulers() {
            assert!(s.validate().is_ok(), "{s:?}");
        }
    }

    #[test]
    fn toml_round_trips_fills_defaults_and_rejects_unknown_fields() {
        for s in schedulers() {
            let text = toml::to_string(&s).unwrap();
            assert_eq!(toml::from_str::<SchedulerConfig>(&text).unwrap(), s, "{text}");
        }
        let vp: SchedulerConfig = toml::from_str("kind = \"vp\"").unwrap();
        assert_eq!(vp, SchedulerConfig::VpLinearBeta { beta_min: 0.1, beta_max: 20.0 });
        let ot: SchedulerConfig = toml::from_str("kind = \"cond_ot\"").unwrap();
        assert_eq!(ot, SchedulerConfig::CondOt { sigma_min: 0.0 });
        assert!(toml::from_str::<SchedulerConfig>("kind = \"cond_ot\"\nsigma = 0.1").is_err());
        assert!(toml::from_str::<SchedulerConfig>("kind = \"linear\"").is_err());
    }
}
