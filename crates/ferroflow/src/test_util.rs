//! Helpers shared by the unit tests: the f64 reference backend and host ↔ tensor moves.

use burn::tensor::{Tensor, TensorData};

/// The f64 reference backend of the tests.
pub(crate) type B = crate::backend::Cpu64;

/// Its device.
pub(crate) fn dev() -> <B as burn::tensor::backend::BackendTypes>::Device {
    Default::default()
}

/// A `[n, d]` tensor from row-major values.
pub(crate) fn tensor2(v: Vec<f64>, n: usize, d: usize) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v, [n, d]), &dev())
}

/// A `[n]` tensor.
pub(crate) fn tensor1(v: Vec<f64>) -> Tensor<B, 1> {
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [n]), &dev())
}

/// A tensor's values, row-major.
pub(crate) fn host<const D: usize>(x: Tensor<B, D>) -> Vec<f64> {
    x.into_data().into_vec().unwrap()
}

/// The closed-form field the solver tests integrate: CondOT from N(0, I₂) to
/// N((1.5, −2), diag(0.3², 1.7²)).
pub(crate) fn gaussian_field() -> crate::model::GaussianToGaussian {
    crate::model::GaussianToGaussian::new(
        crate::path::SchedulerConfig::CondOt { sigma_min: 0.0 },
        vec![1.5, -2.0],
        vec![0.3, 1.7],
    )
}

/// A few starting points spread over the source N(0, I₂), row-major `[4, 2]`.
pub(crate) fn starts() -> Vec<f64> {
    vec![0.0, 0.0, 1.0, -1.0, -2.0, 0.5, 0.3, 2.2]
}

/// The linear field v(x, t) = c·x on `dim` coordinates (c = NaN: a field that returns NaN;
/// large c: a stiff one).
pub(crate) struct ScaledX {
    pub dim: usize,
    pub c: f64,
}

impl crate::model::VelocityField<B> for ScaledX {
    fn dim(&self) -> usize {
        self.dim
    }
    fn velocity(&self, x: Tensor<B, 2>, _t: Tensor<B, 1>, _c: Option<&crate::model::Condition<B>>) -> Tensor<B, 2> {
        x.mul_scalar(self.c)
    }
}
