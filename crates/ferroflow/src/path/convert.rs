//! Conversions between velocity, x₁-, ε- and score-prediction for affine Gaussian paths.
//!
//! # Derivation
//! On the path x_t = α_t x₁ + σ_t x₀ (t = 0 noise, t = 1 data; coefficients from a
//! [`PathCoefficients`]), write x̂₁ = E[x₁ | x_t = x] and ε̂ = E[x₀ | x_t = x]. Taking E[· | x_t = x]
//! of x_t and of u_t = α̇_t x₁ + σ̇_t x₀ (linearity of conditional expectation) gives
//!
//! (1) x = α x̂₁ + σ ε̂,   (2) v = α̇ x̂₁ + σ̇ ε̂,
//!
//! where v is the marginal velocity (Lipman et al. 2024, *Flow Matching Guide and Code*, §4.8,
//! "affine paths": the velocity, x₁- and x₀-predictions are linear in each other). With a
//! Gaussian source x₀ ~ N(0, I) **independent** of x₁, p_t(x | x₁) = N(α x₁, σ² I) and
//! Tweedie's formula (Efron 2011) ∇log p_t(x) = E[−(x − α x₁)/σ² | x_t = x] gives
//!
//! (3) s = −ε̂ / σ.
//!
//! Let D = α̇σ − ασ̇ (the Wronskian of the schedule; D = 1 for CondOT with σ_min = 0, π/2 for
//! cosine, α̇/σ for VP, −σ̇ for VE, n tⁿ⁻¹ for the polynomial schedule). Solving (1)–(2):
//!
//! x̂₁ = (σ v − σ̇ x)/D,   ε̂ = (α̇ x − α v)/D;
//!
//! and back: v = (σ̇ x + D x̂₁)/σ (eliminate ε̂ = (x − α x̂₁)/σ), v = (α̇ x − D ε̂)/α (eliminate
//! x̂₁ = (x − σ ε̂)/α). Each function below is one of these, composed with (3).
//!
//! # Where they are singular
//! - σ_t = 0 (t = 1 for CondOT with σ_min = 0, polynomial, VP, cosine): everything that outputs
//!   a score or takes an x₁-prediction and outputs v or ε.
//! - α_t = 0 (t = 0 for CondOT, polynomial, cosine): everything that outputs v or x₁ from ε or
//!   the score (ε carries no information about x₁ there).
//! - D = 0 (t = 0 for the polynomial schedule with n > 1): everything that takes a velocity and
//!   outputs x₁, ε or the score.
//!
//! The functions do not check: they divide, and a singular point gives ±∞ or NaN. The
//! velocity ↔ x₁ ↔ ε relations hold for any coupling; those involving the score need the
//! independent Gaussian source.
//!
//! # Shapes
//! Everywhere: `value, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`.

use burn::tensor::{Tensor, backend::Backend};

use super::affine::PathCoefficients;

/// D = α̇σ − ασ̇, `[batch, 1]`.
fn wronskian<B: Backend>(c: &PathCoefficients<B>) -> Tensor<B, 2> {
    c.d_alpha_t.clone() * c.sigma_t.clone() - c.alpha_t.clone() * c.d_sigma_t.clone()
}

/// The x₁-prediction E[x₁ | x_t] from the velocity.
///
/// # Formula
/// x̂₁ = (σ v − σ̇ x)/(α̇σ − ασ̇)  (solve (1)–(2) of the [module derivation](self)).
/// Singular where α̇σ − ασ̇ = 0.
///
/// # Shapes
/// `v, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::x1_from_velocity};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.25], &dev);
/// let v = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![2.0], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// // CondOT: x̂₁ = x + (1 − t) v = 1 + 0.75·2
/// assert_eq!(x1_from_velocity(v, x, &c).into_data().into_vec::<f64>().unwrap(), vec![2.5]);
/// ```
pub fn x1_from_velocity<B: Backend>(v: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    (v * c.sigma_t.clone() - xt * c.d_sigma_t.clone()) / wronskian(c)
}

/// The ε-prediction E[x₀ | x_t] from the velocity.
///
/// # Formula
/// ε̂ = (α̇ x − α v)/(α̇σ − ασ̇)  (solve (1)–(2) of the [module derivation](self)).
/// Singular where α̇σ − ασ̇ = 0.
///
/// # Shapes
/// `v, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::eps_from_velocity};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.25], &dev);
/// let v = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![2.0], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// // CondOT: ε̂ = x − t v = 1 − 0.25·2
/// assert_eq!(eps_from_velocity(v, x, &c).into_data().into_vec::<f64>().unwrap(), vec![0.5]);
/// ```
pub fn eps_from_velocity<B: Backend>(v: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    (xt * c.d_alpha_t.clone() - v * c.alpha_t.clone()) / wronskian(c)
}

/// The score ∇log p_t(x) from the velocity v(x, t) of an affine Gaussian path.
///
/// # Formula
/// With x = α x̂₁ + σ ε̂ and v = α̇ x̂₁ + σ̇ ε̂ (x̂₁, ε̂ the posterior means of x₁ and x₀),
/// eliminating x̂₁ gives ε̂ = (α v − α̇ x)/(α σ̇ − α̇ σ), and Tweedie's formula
/// ∇log p_t(x) = −ε̂/σ gives
///
/// score = (α v − α̇ x) / (σ (α̇ σ − α σ̇)).
///
/// Singular where σ_t = 0 (t = 1 on CondOT with σ_min = 0) or α̇σ − ασ̇ = 0. Needs x₀ ~ N(0, I)
/// independent of x₁ (see the [module derivation](self)).
///
/// # Shapes
/// `v, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::score_from_velocity};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.25], &dev);
/// let v = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![2.0], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// // CondOT: score = (t v − x)/(1 − t) = (0.5 − 1)/0.75
/// let s: Vec<f64> = score_from_velocity(v, x, &c).into_data().into_vec().unwrap();
/// assert!((s[0] + 2.0 / 3.0).abs() < 1e-15);
/// ```
pub fn score_from_velocity<B: Backend>(v: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    let num = v * c.alpha_t.clone() - xt * c.d_alpha_t.clone();
    num / (c.sigma_t.clone() * wronskian(c))
}

/// The velocity from an x₁-prediction.
///
/// # Formula
/// v = (σ̇ x + (α̇σ − ασ̇) x̂₁)/σ  (put ε̂ = (x − α x̂₁)/σ from (1) into (2)). Singular where σ_t = 0.
///
/// # Shapes
/// `x1, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::velocity_from_x1};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.25], &dev);
/// let x1 = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![2.5], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// // CondOT: v = (x̂₁ − x)/(1 − t) = 1.5/0.75
/// assert_eq!(velocity_from_x1(x1, x, &c).into_data().into_vec::<f64>().unwrap(), vec![2.0]);
/// ```
pub fn velocity_from_x1<B: Backend>(x1: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    (xt * c.d_sigma_t.clone() + x1 * wronskian(c)) / c.sigma_t.clone()
}

/// The velocity from an ε-prediction.
///
/// # Formula
/// v = (α̇ x − (α̇σ − ασ̇) ε̂)/α  (put x̂₁ = (x − σ ε̂)/α from (1) into (2)). Singular where α_t = 0.
///
/// # Shapes
/// `eps, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::velocity_from_eps};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.25], &dev);
/// let eps = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![0.5], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// // CondOT: v = (x − ε̂)/t = 0.5/0.25
/// assert_eq!(velocity_from_eps(eps, x, &c).into_data().into_vec::<f64>().unwrap(), vec![2.0]);
/// ```
pub fn velocity_from_eps<B: Backend>(eps: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    (xt * c.d_alpha_t.clone() - eps * wronskian(c)) / c.alpha_t.clone()
}

/// The velocity from the score.
///
/// # Formula
/// v = (α̇ x + (α̇σ − ασ̇) σ s)/α  ([`velocity_from_eps`] with ε̂ = −σ s from (3)).
/// Singular where α_t = 0. Needs x₀ ~ N(0, I) independent of x₁.
///
/// # Shapes
/// `score, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::velocity_from_score};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.5], &dev);
/// let s = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![-1.0], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// // CondOT: v = (x + (1 − t) s)/t = (1 − 0.5)/0.5
/// assert_eq!(velocity_from_score(s, x, &c).into_data().into_vec::<f64>().unwrap(), vec![1.0]);
/// ```
pub fn velocity_from_score<B: Backend>(score: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    (xt * c.d_alpha_t.clone() + score * (wronskian(c) * c.sigma_t.clone())) / c.alpha_t.clone()
}

/// The ε-prediction from an x₁-prediction.
///
/// # Formula
/// ε̂ = (x − α x̂₁)/σ  (from (1)). Singular where σ_t = 0.
///
/// # Shapes
/// `x1, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::eps_from_x1};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.5], &dev);
/// let x1 = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![3.0], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// // (1 − 0.5·3)/0.5
/// assert_eq!(eps_from_x1(x1, x, &c).into_data().into_vec::<f64>().unwrap(), vec![-1.0]);
/// ```
pub fn eps_from_x1<B: Backend>(x1: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    (xt - x1 * c.alpha_t.clone()) / c.sigma_t.clone()
}

/// The x₁-prediction from an ε-prediction.
///
/// # Formula
/// x̂₁ = (x − σ ε̂)/α  (from (1)). Singular where α_t = 0.
///
/// # Shapes
/// `eps, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::x1_from_eps};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.5], &dev);
/// let eps = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![-1.0], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// // (1 + 0.5)/0.5
/// assert_eq!(x1_from_eps(eps, x, &c).into_data().into_vec::<f64>().unwrap(), vec![3.0]);
/// ```
pub fn x1_from_eps<B: Backend>(eps: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    (xt - eps * c.sigma_t.clone()) / c.alpha_t.clone()
}

/// The score from an ε-prediction.
///
/// # Formula
/// s = −ε̂/σ  (Tweedie, (3)); `xt` is unused but kept for a uniform signature. Singular where
/// σ_t = 0. Needs x₀ ~ N(0, I) independent of x₁.
///
/// # Shapes
/// `eps, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::score_from_eps};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.5], &dev);
/// let eps = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![-1.0], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// assert_eq!(score_from_eps(eps, x, &c).into_data().into_vec::<f64>().unwrap(), vec![2.0]);
/// ```
pub fn score_from_eps<B: Backend>(eps: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    let _ = xt;
    -eps / c.sigma_t.clone()
}

/// The ε-prediction from the score.
///
/// # Formula
/// ε̂ = −σ s  (Tweedie, (3)); `xt` is unused but kept for a uniform signature. Never singular.
/// Needs x₀ ~ N(0, I) independent of x₁.
///
/// # Shapes
/// `score, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::eps_from_score};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.5], &dev);
/// let s = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![2.0], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// assert_eq!(eps_from_score(s, x, &c).into_data().into_vec::<f64>().unwrap(), vec![-1.0]);
/// ```
pub fn eps_from_score<B: Backend>(score: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    let _ = xt;
    -score * c.sigma_t.clone()
}

/// The score from an x₁-prediction.
///
/// # Formula
/// s = −(x − α x̂₁)/σ²  ([`eps_from_x1`] then (3)). Singular where σ_t = 0. Needs x₀ ~ N(0, I)
/// independent of x₁.
///
/// # Shapes
/// `x1, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::score_from_x1};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.5], &dev);
/// let x1 = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![3.0], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// // −(1 − 1.5)/0.25
/// assert_eq!(score_from_x1(x1, x, &c).into_data().into_vec::<f64>().unwrap(), vec![2.0]);
/// ```
pub fn score_from_x1<B: Backend>(x1: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    (x1 * c.alpha_t.clone() - xt) / c.sigma_t.clone().powi_scalar(2)
}

/// The x₁-prediction from the score (Tweedie's denoiser).
///
/// # Formula
/// x̂₁ = (x + σ² s)/α  ([`x1_from_eps`] with ε̂ = −σ s). Singular where α_t = 0. Needs
/// x₀ ~ N(0, I) independent of x₁.
///
/// # Shapes
/// `score, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::x1_from_score};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.5], &dev);
/// let s = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![2.0], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// // (1 + 0.25·2)/0.5
/// assert_eq!(x1_from_score(s, x, &c).into_data().into_vec::<f64>().unwrap(), vec![3.0]);
/// ```
pub fn x1_from_score<B: Backend>(score: Tensor<B, 2>, xt: Tensor<B, 2>, c: &PathCoefficients<B>) -> Tensor<B, 2> {
    (xt + score * c.sigma_t.clone().powi_scalar(2)) / c.alpha_t.clone()
}

/// What a network's output means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Parameterization {
    /// The marginal velocity u_t(x).
    Velocity,
    /// The x₁-prediction E[x₁ | x_t = x] (the "denoiser", data end).
    X1,
    /// The ε-prediction E[x₀ | x_t = x] (the source sample, ε = x₀).
    Eps,
    /// The score ∇ₓ log p_t(x).
    Score,
}

impl Parameterization {
    /// All four, for iterating.
    pub const ALL: [Parameterization; 4] =
        [Parameterization::Velocity, Parameterization::X1, Parameterization::Eps, Parameterization::Score];
}

/// Converts `value`, a prediction in parameterisation `from` at the points `xt`, to `to`.
///
/// # Formula
/// Dispatches to the `<to>_from_<from>` function of this module (identity when `from == to`);
/// see the [module derivation](self) for the formulas and where each is singular.
///
/// # Shapes
/// `value, xt: [batch, dim]`, coefficients `[batch, 1]` → `[batch, dim]`
///
/// ```
/// use burn::tensor::{Tensor, TensorData};
/// use ferroflow::backend::Cpu64;
/// use ferroflow::path::{PathCoefficients, SchedulerConfig, convert::{Parameterization as P, convert}};
/// let dev = Default::default();
/// let c = PathCoefficients::<Cpu64>::new(&SchedulerConfig::CondOt { sigma_min: 0.0 }, &[0.25], &dev);
/// let v = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![2.0], [1, 1]), &dev);
/// let x = Tensor::<Cpu64, 2>::from_data(TensorData::new(vec![1.0], [1, 1]), &dev);
/// let x1 = convert(P::Velocity, P::X1, v, x, &c);
/// assert_eq!(x1.into_data().into_vec::<f64>().unwrap(), vec![2.5]);
/// ```
pub fn convert<B: Backend>(
    from: Parameterization,
    to: Parameterization,
    value: Tensor<B, 2>,
    xt: Tensor<B, 2>,
    c: &PathCoefficients<B>,
) -> Tensor<B, 2> {
    use Parameterization::{Eps, Score, Velocity, X1};
    match (from, to) {
        (Velocity, Velocity) | (X1, X1) | (Eps, Eps) | (Score, Score) => value,
        (Velocity, X1) => x1_from_velocity(value, xt, c),
        (Velocity, Eps) => eps_from_velocity(value, xt, c),
        (Velocity, Score) => score_from_velocity(value, xt, c),
        (X1, Velocity) => velocity_from_x1(value, xt, c),
        (X1, Eps) => eps_from_x1(value, xt, c),
        (X1, Score) => score_from_x1(value, xt, c),
        (Eps, Velocity) => velocity_from_eps(value, xt, c),
        (Eps, X1) => x1_from_eps(value, xt, c),
        (Eps, Score) => score_from_eps(value, xt, c),
        (Score, Velocity) => velocity_from_score(value, xt, c),
        (Score, X1) => x1_from_score(value, xt, c),
        (Score, Eps) => eps_from_score(value, xt, c),
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;
    use proptest::prelude::*;

    use super::Parameterization as P;
    use super::*;
    use crate::backend::Cpu64;
    use crate::path::{Scheduler, SchedulerConfig};

    type B = Cpu64;

    fn schedulers() -> Vec<SchedulerConfig> {
        let mut v = SchedulerConfig::ALL.to_vec();
        v.extend([
            SchedulerConfig::CondOt { sigma_min: 0.05 },
            SchedulerConfig::Polynomial { n: 0.7 },
            SchedulerConfig::VpLinearBeta { beta_min: 0.5, beta_max: 5.0 },
            SchedulerConfig::Ve { sigma_min: 0.002, sigma_max: 10.0 },
        ]);
        v
    }

    fn tensor(v: &[f64], n: usize) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(v.to_vec(), [n, v.len() / n]), &Default::default())
    }

    fn host(x: Tensor<B, 2>) -> Vec<f64> {
        x.into_data().into_vec().unwrap()
    }

    /// For one conditional pair (x₀, x₁) the four parameterisations at x = α x₁ + σ x₀ are known
    /// exactly: v = α̇ x₁ + σ̇ x₀, x̂₁ = x₁, ε̂ = x₀, s = −x₀/σ (each identity (1)–(3) is linear, so
    /// it holds pointwise). Returns them in `Parameterization::ALL` order, and x.
    fn exact(s: &SchedulerConfig, t: &[f64], x0: &[f64], x1: &[f64]) -> ([Vec<f64>; 4], Vec<f64>) {
        let d = x0.len() / t.len();
        let mut out: [Vec<f64>; 4] = Default::default();
        let mut x = vec![];
        for (i, (a, b)) in x0.iter().zip(x1).enumerate() {
            let c = s.at(t[i / d]);
            x.push(c.alpha_t * b + c.sigma_t * a);
            out[0].push(c.d_alpha_t * b + c.d_sigma_t * a);
            out[1].push(*b);
            out[2].push(*a);
            out[3].push(-a / c.sigma_t);
        }
        (out, x)
    }

    fn close(got: &[f64], want: &[f64], tol: f64) -> Result<(), String> {
        for (k, (g, w)) in got.iter().zip(want).enumerate() {
            if (g - w).abs() > tol * (1.0 + w.abs()) {
                return Err(format!("entry {k}: got {g}, want {w}"));
            }
        }
        Ok(())
    }

    #[test]
    fn every_conversion_maps_exact_quadruples_onto_each_other() {
        let t = [0.01, 0.1, 0.37, 0.5, 0.8, 0.99];
        let x0: Vec<f64> = (0..12).map(|i| ((i * 7 % 11) as f64 - 5.0) / 2.3).collect();
        let x1: Vec<f64> = (0..12).map(|i| ((i * 5 % 13) as f64 - 6.0) / 1.7).collect();
        for s in schedulers() {
            let c = PathCoefficients::<B>::new(&s, &t, &Default::default());
            let (reps, x) = exact(&s, &t, &x0, &x1);
            for (i, from) in P::ALL.into_iter().enumerate() {
                for (j, to) in P::ALL.into_iter().enumerate() {
                    let got = host(convert(from, to, tensor(&reps[i], 6), tensor(&x, 6), &c));
                    // f64 with coefficients up to ~1e4 (polynomial n = 0.7 … VE's σ̇ ≈ 720) and
                    // divisions by α, σ ≥ 0.01: errors ≲ 1e-12 relative; 1e-9 catches any slip.
                    close(&got, &reps[j], 1e-9).unwrap_or_else(|e| panic!("{s:?} {from:?}→{to:?}: {e}"));
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_conversion_round_trips(
            which in 0usize..9,
            t in 0.01f64..0.99,
            vals in prop::collection::vec(-3.0f64..3.0, 8),
            xs in prop::collection::vec(-3.0f64..3.0, 8),
        ) {
            let s = schedulers()[which];
            let c = PathCoefficients::<B>::new(&s, &[t, t], &Default::default());
            for from in P::ALL {
                for to in P::ALL {
                    let there = convert(from, to, tensor(&vals, 2), tensor(&xs, 2), &c);
                    let back = host(convert(to, from, there, tensor(&xs, 2), &c));
                    // Round trips divide and multiply by α, σ, D ≥ ~1e-6 at t = 0.01 (VE's
                    // σ ≈ 80 scales both ways): f64 keeps ≲ 1e-9; 1e-5 is the contract.
                    prop_assert!(close(&back, &vals, 1e-5).is_ok(), "{:?} {:?}→{:?} at t={}: {:?}",
                        s, from, to, t, close(&back, &vals, 1e-5));
                }
            }
        }
    }
}
