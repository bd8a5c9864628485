//! Probability paths: schedulers, the affine Gaussian path, and conversions between
//! parameterisations.
//!
//! An affine Gaussian path joins a source sample x₀ ~ N(0, I) to a data sample x₁:
//! x_t = α_t x₁ + σ_t x₀, with α₀ ≈ 0 (noise at t = 0) and α₁ = 1, σ₁ ≈ 0 (data at t = 1).
//! σ₀ = [`SchedulerConfig::source_std`] is ≈ 1 except for the variance-exploding schedule (σ₀ =
//! σ_max), and α₀ is exactly 0 except for VP (≈ 0.0066) and VE (1).
//!
//! - [`scheduler`]: α_t, σ_t and their derivatives (CondOT, polynomial, VP, VE, cosine);
//! - [`affine`]: the path x_t and its conditional velocity u_t;
//! - [`convert`]: velocity ↔ x₁ ↔ ε ↔ score, for any affine Gaussian path.

pub mod affine;
pub mod convert;
pub mod scheduler;

pub use affine::{AffinePath, PathCoefficients, PathSample};
pub use convert::Parameterization;
pub use scheduler::{Scheduler, SchedulerConfig, SchedulerOutput};
