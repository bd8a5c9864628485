//! # ferroflow — flow matching in Rust
//!
//! A velocity field v_θ(x, t) is trained so that the ODE dx/dt = v_θ(x, t) carries a source
//! distribution p₀ (usually N(0, I)) to the data distribution p₁.
//!
//! ## Conventions (everywhere in this crate)
//! - **Time: t = 0 is the source (noise), t = 1 is the data.** MeanFlow's paper uses the
//!   opposite convention (t = 1 noise); ferroflow converts at its boundary, never inside.
//! - `x0` is a source sample, `x1` a data sample, `xt` a point on the path at time t,
//!   `ut` the conditional regression target, `v` a model output.
//! - Shapes: points are rows, `x: [batch, dim]`; times are `t: [batch]`.
//! - Log-likelihoods are in nats unless a name says bits per dimension.
//!
//! ## Modules (one mathematical concept each)
//! - [`path`]: schedulers (α_t, σ_t), the affine Gaussian path and conversions between
//!   velocity, x₁-, ε- and score-prediction.
//! - [`coupling`]: how x₀ and x₁ are paired in a minibatch (independent, exact OT, Sinkhorn).
//! - [`objective`]: the conditional flow matching loss and time samplers.
//! - [`model`]: the [`model::VelocityField`] trait, the MLP and U-Net fields, classifier-free guidance,
//!   and [`model::FieldConfig`] (what the trainer needs of a network).
//! - [`likelihood`]: divergence (exact and Hutchinson) and log-likelihoods.
//! - [`guidance`]: mode-seeking guidance along ∇ₓ(−∇·v).
//! - [`solver`]: fixed-step and adaptive ODE solvers, the SDE sampler.
//! - [`data`]: 2D worlds, MNIST (IDX files, 28×28 or 16×16), CSV and `.npy` readers and writers.
//! - [`metrics`]: exact W2, MMD, straightness of trajectories; a digit classifier and the
//!   Fréchet distance in its features.
//! - [`engine`]: the fused CPU engine for MLP fields (training and sampling).
//! - [`train`]: the trainer (optimizer, schedules, EMA, checkpoints).
//! - [`checkpoint`]: safetensors checkpoints with PyTorch-compatible names.
//! - [`plot`]: pictures of samples, trajectories and flows.
#![warn(missing_docs)]

pub mod backend;
pub mod checkpoint;
pub mod coupling;
pub mod data;
pub mod engine;
pub mod error;
pub mod guidance;
pub mod likelihood;
pub mod metrics;
pub mod model;
pub mod objective;
pub mod path;
pub mod plot;
pub mod rng;
pub mod solver;
pub mod train;

#[cfg(test)]
mod test_util;

pub use error::{Error, Result};

/// The README's Rust examples, compiled as doctests so they cannot drift from the code.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
