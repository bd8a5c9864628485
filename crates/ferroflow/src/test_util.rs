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
