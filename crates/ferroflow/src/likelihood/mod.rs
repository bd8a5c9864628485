//! Likelihoods of a flow: the divergence of the velocity field ([`divergence`]) and the
//! log-likelihood of data points by the instantaneous change of variables ([`loglik`]), and the
//! log-density of a 2D flow on a grid ([`density`]).
//!
//! # Conventions
//! t = 0 is the source (noise), t = 1 the data; log-likelihoods are in nats unless a name says
//! bits per dimension.

pub mod density;
pub mod divergence;
pub mod loglik;

pub use divergence::{DivergenceMethod, Hutchinson, ProbeKind, exact_divergence, hutchinson_divergence};
pub use loglik::{Dequantization, LikelihoodConfig, LogLikelihood, PixelRange, log_likelihood};
