//! Probability paths: schedulers, the affine Gaussian path, and conversions between
//! parameterisations.
//!
//! An affine Gaussian path joins a source sample x₀ ~ N(0, I) to a data sample x₁:
//! x_t = α_t x₁ + σ_t x₀, with α₀ ≈ 0, σ₀ ≈ 1 (noise at t = 0) and α₁ = 1, σ₁ ≈ 0 (data at t = 1).

pub mod affine;
pub mod convert;
pub mod scheduler;

pub use affine::{AffinePath, PathCoefficients, PathSample};
pub use scheduler::{Scheduler, SchedulerConfig, SchedulerOutput};
