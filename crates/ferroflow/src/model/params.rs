//! Moving a module's parameters to and from the host, in the order burn visits them.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, TensorData, backend::Backend};

/// A tensor on the host: shape and row-major f32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// The shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
}

impl HostTensor {
    /// Downloads a tensor.
    pub fn from_tensor<B: Backend, const D: usize>(t: Tensor<B, D>) -> Self {
        let shape = t.dims().to_vec();
        let data = t.into_data().convert::<f32>().into_vec::<f32>().expect("float data");
        Self { shape, data }
    }

    /// Uploads as a tensor of rank `D`.
    ///
    /// # Panics
    /// If the rank is not `D` (callers check shapes first).
    pub fn to_tensor<B: Backend, const D: usize>(&self, device: &B::Device) -> Tensor<B, D> {
        assert_eq!(self.shape.len(), D, "rank");
        Tensor::from_data(TensorData::new(self.data.clone(), self.shape.clone()).convert::<B::FloatElem>(), device)
    }

    /// The transpose of a matrix (PyTorch's `[out, in]` ↔ burn's `[in, out]`).
    pub fn transposed(&self) -> Self {
        debug_assert_eq!(self.shape.len(), 2);
        let (r, c) = (self.shape[0], self.shape[1]);
        let mut data = vec![0f32; r * c];
        for i in 0..r {
            for j in 0..c {
                data[j * r + i] = self.data[i * c + j];
            }
        }
        Self { shape: vec![c, r], data }
    }
}

struct Collect(Vec<HostTensor>);

impl<B: Backend> ModuleVisitor<B> for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push(HostTensor::from_tensor(param.val()));
    }
}

/// Every float parameter of `module`, in visit order.
pub fn collect_params<B: Backend, M: Module<B>>(module: &M) -> Vec<HostTensor> {
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

struct Replace<'a> {
    values: std::slice::Iter<'a, HostTensor>,
}

impl<B: Backend> ModuleMapper<B> for Replace<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, tensor, mapper) = param.consume();
        let host = self.values.next().expect("one value per parameter");
        assert_eq!(host.shape, tensor.dims().to_vec(), "parameter shape");
        let require_grad = tensor.is_require_grad();
        let mut new = host.to_tensor::<B, D>(&tensor.device());
        if require_grad {
            new = new.require_grad();
        }
        Param::from_mapped_value(id, new, mapper)
    }
}

/// Replaces every float parameter of `module`, in visit order.
///
/// # Panics
/// If the number or shapes of `values` do not match (callers check them first).
pub fn replace_params<B: Backend, M: Module<B>>(module: M, values: &[HostTensor]) -> M {
    let mut r = Replace { values: values.iter() };
    let m = module.map(&mut r);
    assert!(r.values.next().is_none(), "more values than parameters");
    m
}
