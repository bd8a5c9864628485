//! Conversions between velocity, x₁-, ε- and score-prediction for affine Gaussian paths.

use burn::tensor::{Tensor, backend::Backend};

use super::affine::PathCoefficients;

/// The score ∇log p_t(x) from the velocity v(x, t) of an affine Gaussian path.
///
/// # Formula
/// With x = α x̂₁ + σ ε̂ and v = α̇ x̂₁ + σ̇ ε̂ (x̂₁, ε̂ the posterior means of x₁ and x₀),
/// eliminating x̂₁ gives ε̂ = (α v − α̇ x)/(α σ̇ − α̇ σ), and Tweedie's formula
/// ∇log p_t(x) = −ε̂/σ gives
///
/// score = (α v − α̇ x) / (σ (α̇ σ − α σ̇)).
///
/// Singular where σ_t = 0 (t = 1 on CondOT with σ_min = 0).
///
/// # Shapes
/// `v, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
pub fn score_from_velocity<B: Backend>(v: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    let num = v * c.alpha_t.clone() - xt * c.d_alpha_t.clone();
    let den = c.sigma_t.clone() * (c.d_alpha_t.clone() * c.sigma_t.clone() - c.alpha_t.clone() * c.d_sigma_t.clone());
    num / den
}
