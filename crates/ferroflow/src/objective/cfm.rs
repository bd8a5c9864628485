use burn::tensor::{Tensor, backend::Backend};

/// The conditional flow matching loss: the mean squared error between the model's velocity and
/// the conditional target, averaged over the batch and the dimensions (torchcfm's convention).
///
/// # Formula
/// L(θ) = E_{t, (x₀, x₁) ~ π} ‖v_θ(x_t, t) − u_t(x_t | x₀, x₁)‖² / d
/// (Lipman et al. 2023, eq. 9; Tong et al. 2024, eq. 14), with π the coupling.
///
/// # Shapes
/// `v, ut: [batch, dim]` → `[1]`
///
/// ```
/// use burn::tensor::Tensor;
/// use ferroflow::{backend::Cpu, objective::cfm_loss};
/// let d = Default::default();
/// let v = Tensor::<Cpu, 2>::from_floats([[1.0, 2.0], [0.0, 0.0]], &d);
/// let u = Tensor::<Cpu, 2>::from_floats([[0.0, 0.0], [0.0, 2.0]], &d);
/// // (1 + 4 + 0 + 4) / 4
/// assert_eq!(cfm_loss(v, u).into_scalar(), 2.25);
/// ```
pub fn cfm_loss<B: Backend>(v: Tensor<B, 2>, ut: Tensor<B, 2>) -> Tensor<B, 1> {
    let diff = v - ut;
    (diff.clone() * diff).mean()
}
