//! Couplings: how source and data samples are paired in a minibatch.
//!
//! A coupling draws pairs (x₀, x₁) whose marginals are the source and the data; conditional
//! flow matching then regresses on the path between the two points of each pair
//! (Tong et al. 2023, "Improving and generalizing flow-based generative models with minibatch
//! optimal transport", §3.2–3.3; Pooladian et al. 2023, "Multisample flow matching").
//! - [`CouplingConfig::Independent`]: q(x₀, x₁) = p₀(x₀) p₁(x₁) (the batches are independent
//!   draws, so the identity pairing is already a draw from the product).
//! - [`CouplingConfig::ExactOt`]: the minibatch OT permutation for ‖x₀ − x₁‖² ([`exact_ot`]).
//! - [`CouplingConfig::Sinkhorn`]: pairs drawn from the entropic OT plan ([`sinkhorn`]).
//! - [`CouplingConfig::ClassExactOt`]: exact OT within each class of x₁ (conditional training).
//!
//! All of them return a [`Pairing`] of row indices; the trainer uses `x0.select(&i0)`,
//! `x1.select(&i1)` and labels indexed by `i1`.

use std::str::FromStr;

use crate::data::Points;
use crate::error::ConfigError;
use crate::rng::Rng;

pub mod exact_ot;
pub mod independent;
mod simd;
pub mod sinkhorn;

/// Most points a side that a plan between two point sets takes (exact OT, Sinkhorn, and so W2):
/// the plans hold a dense n × m cost matrix, in f64 with an f32 copy for exact OT (12 bytes an
/// entry: 4.8 GB at 20,000 a side).
pub const MAX_PLAN_POINTS: usize = 20_000;

/// Why a coupling could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CouplingError {
    /// More points than [`MAX_PLAN_POINTS`] a side.
    #[error(
        "{n} and {m} points need a dense {n}×{m} cost matrix ({:.0} GB): at most {max} points a side; subsample them",
        (*n as f64) * (*m as f64) * 12e-9
    )]
    TooLarge {
        /// Points of x0.
        n: usize,
        /// Points of x1.
        m: usize,
        /// [`MAX_PLAN_POINTS`].
        max: usize,
    },
    /// A one-to-one coupling needs as many source as data points.
    #[error("x0 has {n0} points and x1 has {n1}: this coupling pairs them one to one and needs equal sizes")]
    SizeMismatch {
        /// Number of source points.
        n0: usize,
        /// Number of data points.
        n1: usize,
    },
    /// The two point sets live in different dimensions.
    #[error("x0 has dimension {d0} and x1 has dimension {d1}")]
    DimMismatch {
        /// Dimension of x0.
        d0: usize,
        /// Dimension of x1.
        d1: usize,
    },
    /// A coordinate is NaN or infinite.
    #[error("{set} row {row} holds the non-finite value {value}")]
    NonFinite {
        /// Which set ("x0" or "x1").
        set: &'static str,
        /// The row.
        row: usize,
        /// The value.
        value: f64,
    },
    /// A cost matrix does not have n × n entries.
    #[error("a {n}×{n} cost matrix needs {} entries, got {len}", n * n)]
    CostShape {
        /// Entries given.
        len: usize,
        /// The matrix side.
        n: usize,
    },
    /// A cost is NaN or infinite.
    #[error("cost[{row}, {col}] = {value} is not finite")]
    NonFiniteCost {
        /// Row of the cost.
        row: usize,
        /// Column of the cost.
        col: usize,
        /// The value.
        value: f64,
    },
    /// Sinkhorn's regularisation must be a finite number > 0.
    #[error("sinkhorn epsilon = {value}: expected a finite number > 0 (relative to the mean cost)")]
    InvalidEpsilon {
        /// The value given.
        value: f64,
    },
    /// A label-aware coupling was given unlabelled data.
    #[error("the class_exact_ot coupling needs class labels for x1 (use labelled data or another coupling)")]
    MissingLabels,
    /// There is not one label per data point.
    #[error("{labels} labels for {n} data points")]
    LabelCount {
        /// Labels given.
        labels: usize,
        /// Data points.
        n: usize,
    },
}

/// How x₀ and x₁ are paired in each minibatch (TOML: `coupling = { kind = "exact_ot" }`).
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CouplingConfig {
    /// Independent coupling: the identity pairing of two independent batches.
    #[default]
    Independent,
    /// Exact minibatch OT for the squared Euclidean cost (a permutation; [`exact_ot::plan`]).
    ExactOt,
    /// Entropic OT (log-domain Sinkhorn); pairs are drawn from the plan ([`sinkhorn::pairing`]).
    Sinkhorn {
        /// Entropic regularisation **relative to the mean cost**: ε_abs = epsilon · mean ‖x0ᵢ − x1ⱼ‖²
        /// (so it does not depend on the data's scale). → 0: exact OT; → ∞: independent.
        #[serde(default = "default_epsilon")]
        epsilon: f64,
        /// Iteration cap (one iteration updates both potentials).
        #[serde(default = "default_max_iters")]
        max_iters: usize,
        /// Stop when the row marginals' L1 error Σᵢ |Σⱼ Pᵢⱼ − 1/n| is below this.
        #[serde(default = "default_tol")]
        tol: f64,
    },
    /// Exact OT within each class of x₁ ([`exact_ot::class_plan`]); needs labelled data.
    ClassExactOt,
}

fn default_epsilon() -> f64 {
    0.05
}
fn default_max_iters() -> usize {
    1000
}
fn default_tol() -> f64 {
    1e-6
}

/// The pairs of one minibatch, as row indices: x0 row `i0[k]` goes with x1 row `i1[k]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pairing {
    /// Source rows.
    pub i0: Vec<usize>,
    /// Data rows.
    pub i1: Vec<usize>,
}

impl Pairing {
    /// The identity pairing of n rows.
    pub fn identity(n: usize) -> Self {
        Self { i0: (0..n).collect(), i1: (0..n).collect() }
    }
}

const NAMES: &str = "independent, exact_ot, sinkhorn, class_exact_ot";

impl CouplingConfig {
    /// The Sinkhorn coupling with its default settings (ε = 0.05 of the mean cost, 1000
    /// iterations, tolerance 10⁻⁶).
    pub fn sinkhorn_default() -> Self {
        CouplingConfig::Sinkhorn { epsilon: default_epsilon(), max_iters: default_max_iters(), tol: default_tol() }
    }

    /// The name used in configs and on the command line.
    ///
    /// ```
    /// use ferroflow::coupling::CouplingConfig;
    /// let c: CouplingConfig = "sinkhorn".parse().unwrap();
    /// assert_eq!(c.name(), "sinkhorn");
    /// assert_eq!(c, CouplingConfig::Sinkhorn { epsilon: 0.05, max_iters: 1000, tol: 1e-6 });
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            CouplingConfig::Independent => "independent",
            CouplingConfig::ExactOt => "exact_ot",
            CouplingConfig::Sinkhorn { .. } => "sinkhorn",
            CouplingConfig::ClassExactOt => "class_exact_ot",
        }
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] for a Sinkhorn `epsilon` not in (0, 10⁴], `max_iters` not in
    /// 1..=10⁸, or `tol` not a finite number > 0.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let CouplingConfig::Sinkhorn { epsilon, max_iters, tol } = *self {
            if !(epsilon > 0.0 && epsilon <= 1e4) {
                return Err(ConfigError::OutOfRange {
                    name: "coupling.epsilon",
                    value: epsilon.to_string(),
                    expected: "0 < epsilon <= 1e4 (relative to the mean cost)",
                });
            }
            if !(1..=100_000_000).contains(&max_iters) {
                return Err(ConfigError::OutOfRange {
                    name: "coupling.max_iters",
                    value: max_iters.to_string(),
                    expected: "1..=1e8",
                });
            }
            if !(tol > 0.0 && tol.is_finite()) {
                return Err(ConfigError::OutOfRange {
                    name: "coupling.tol",
                    value: tol.to_string(),
                    expected: "a finite number > 0",
                });
            }
        }
        Ok(())
    }

    /// Pairs a source batch with a data batch.
    ///
    /// # Shapes
    /// `x0: [n0, dim]`, `x1: [n1, dim]`, `labels1: [n1]` → `i0, i1: [n1]`
    /// # Errors
    /// [`CouplingError::SizeMismatch`] if `n0 != n1` (all couplings but Sinkhorn, which pairs each
    /// x1 row with a drawn x0 row), [`CouplingError::DimMismatch`], [`CouplingError::NonFinite`]
    /// and [`CouplingError::TooLarge`] (OT couplings), [`CouplingError::MissingLabels`] / [`CouplingError::LabelCount`]
    /// (class coupling).
    ///
    /// ```
    /// use ferroflow::{coupling::CouplingConfig, data::Points, rng::seeded};
    /// let x0 = Points::new(vec![0.0, 10.0, 20.0], 3, 1).unwrap();
    /// let x1 = Points::new(vec![21.0, 1.0, 9.0], 3, 1).unwrap();
    /// let p = CouplingConfig::ExactOt.pair(&x0, &x1, None, &mut seeded(0)).unwrap();
    /// assert_eq!(p.i1, vec![1, 2, 0]);
    /// ```
    pub fn pair(
        &self,
        x0: &Points,
        x1: &Points,
        labels1: Option<&[u32]>,
        rng: &mut Rng,
    ) -> Result<Pairing, CouplingError> {
        match *self {
            CouplingConfig::Independent => independent::pairing(x0, x1),
            CouplingConfig::ExactOt => {
                let sigma = exact_ot::plan(x0, x1)?;
                Ok(Pairing { i0: (0..x0.n).collect(), i1: sigma })
            }
            CouplingConfig::Sinkhorn { epsilon, max_iters, tol } => {
                sinkhorn::pairing(x0, x1, epsilon, max_iters, tol, rng)
            }
            CouplingConfig::ClassExactOt => {
                let labels = labels1.ok_or(CouplingError::MissingLabels)?;
                let (i0, i1) = exact_ot::class_plan(x0, x1, labels)?;
                Ok(Pairing { i0, i1 })
            }
        }
    }
}

impl FromStr for CouplingConfig {
    type Err = ConfigError;

    /// Parses a coupling name (`independent`, `exact_ot`, `sinkhorn`, `class_exact_ot`); Sinkhorn
    /// gets its default settings.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "independent" => Ok(CouplingConfig::Independent),
            "exact_ot" => Ok(CouplingConfig::ExactOt),
            "sinkhorn" => Ok(CouplingConfig::sinkhorn_default()),
            "class_exact_ot" => Ok(CouplingConfig::ClassExactOt),
            _ => Err(ConfigError::Unknown { kind: "coupling", name: s.to_string(), valid: NAMES.to_string() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_from_str() {
        for name in NAMES.split(", ") {
            let c: CouplingConfig = name.parse().unwrap();
            assert_eq!(c.name(), name);
            c.validate().unwrap();
        }
        let e = "greedy".parse::<CouplingConfig>().unwrap_err();
        assert!(e.to_string().contains("greedy") && e.to_string().contains("exact_ot"), "{e}");
    }

    #[test]
    fn toml_fills_sinkhorn_defaults_and_rejects_unknown_fields() {
        #[derive(serde::Deserialize)]
        struct W {
            coupling: CouplingConfig,
        }
        let w: W = toml::from_str("coupling = { kind = \"sinkhorn\", epsilon = 0.2 }").unwrap();
        assert_eq!(w.coupling, CouplingConfig::Sinkhorn { epsilon: 0.2, max_iters: 1000, tol: 1e-6 });
        let w: W = toml::from_str("coupling = { kind = \"class_exact_ot\" }").unwrap();
        assert_eq!(w.coupling, CouplingConfig::ClassExactOt);
        assert!(toml::from_str::<W>("coupling = { kind = \"sinkhorn\", epsilon = 0.2, eps = 1 }").is_err());
        // (serde cannot reject extra keys on the unit variants of an internally tagged enum.)
    }

    #[test]
    fn validate_rejects_out_of_range_sinkhorn_settings() {
        let ok = CouplingConfig::sinkhorn_default();
        ok.validate().unwrap();
        for bad in [
            CouplingConfig::Sinkhorn { epsilon: 0.0, max_iters: 10, tol: 1e-6 },
            CouplingConfig::Sinkhorn { epsilon: f64::NAN, max_iters: 10, tol: 1e-6 },
            CouplingConfig::Sinkhorn { epsilon: 0.1, max_iters: 0, tol: 1e-6 },
            CouplingConfig::Sinkhorn { epsilon: 0.1, max_iters: 10, tol: -1.0 },
        ] {
            assert!(matches!(bad.validate(), Err(ConfigError::OutOfRange { .. })), "{bad:?}");
        }
    }
}
