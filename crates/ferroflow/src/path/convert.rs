//! Conversions between velocity, x₁-, ε- and score-prediction for affine Gaussian paths.
