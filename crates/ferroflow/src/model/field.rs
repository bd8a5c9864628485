use burn::tensor::{Int, Tensor, backend::Backend};

/// A condition passed to a conditional field.
#[derive(Debug, Clone)]
pub enum Condition<B: Backend> {
    /// One class label per row, `[batch]`. A field with a null class (for classifier-free
    /// guidance) reserves the label `n_classes` for "no class".
    Class(Tensor<B, 1, Int>),
    /// One condition vector per row, `[batch, d_cond]`.
    Vector(Tensor<B, 2>),
}

/// A time-dependent vector field v(x, t | c) on `[batch, dim]` points.
///
/// This is the seam every solver, the trainer and the likelihood code use: anything that
/// implements it (a burn module, a closed-form field in a test, a fused CPU engine) can be
/// sampled from.
///
/// # Shapes
/// `x: [batch, dim]`, `t: [batch]` → `[batch, dim]`.
pub trait VelocityField<B: Backend> {
    /// The dimension of the points.
    fn dim(&self) -> usize;

    /// The velocity at each row of `x` at its own time `t` (t = 0 source, t = 1 data).
    fn velocity(&self, x: Tensor<B, 2>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2>;

    /// The velocity with one time `t` for every row (what ODE solvers call).
    fn velocity_at(&self, x: Tensor<B, 2>, t: f64, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let [n, _] = x.dims();
        let tt = Tensor::<B, 1>::full([n], t, &x.device());
        self.velocity(x, tt, cond)
    }
}

impl<B: Backend, F: VelocityField<B> + ?Sized> VelocityField<B> for &F {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn velocity(&self, x: Tensor<B, 2>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        (**self).velocity(x, t, cond)
    }
}
