//! Data: the 2D worlds, point sets on the host, CSV and `.npy` files, MNIST digits (IDX files)
//! and image/label `.npy` files.
//!
//! [`Points`] is the host-side point set every module exchanges: `n` rows of `dim` f32 values,
//! row-major. It converts to and from burn tensors of shape `[n, dim]`.

use burn::tensor::{Tensor, TensorData, backend::Backend};

mod error;
pub mod idx;
pub mod images_io;
pub mod io;
pub mod mnist;
pub mod source;
pub mod worlds;

pub use error::{DataError, IdxKind};
pub use io::{read_points, write_points};
pub use mnist::{ImageSize, Mnist, MnistSource, Split};
pub use source::{EmpiricalSource, GaussianSource, PointSource};
pub use worlds::{World, WorldConfig};

/// A set of `n` points in `dim` dimensions, row-major, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Points {
    /// Row-major values, `n * dim` of them.
    pub data: Vec<f32>,
    /// Number of points (rows).
    pub n: usize,
    /// Dimension (columns).
    pub dim: usize,
}

impl Points {
    /// Points from row-major values.
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if `data.len() != n * dim`.
    pub fn new(data: Vec<f32>, n: usize, dim: usize) -> crate::Result<Self> {
        if data.len() != n * dim {
            return Err(crate::Error::Shape {
                op: "Points::new",
                expected: format!("{n}×{dim} = {} values", n * dim),
                got: format!("{} values", data.len()),
            });
        }
        Ok(Self { data, n, dim })
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows at `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Self {
        let mut data = Vec::with_capacity(idx.len() * self.dim);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Self { data, n: idx.len(), dim: self.dim }
    }

    /// The first `k` rows (all of them if `k >= n`).
    pub fn head(&self, k: usize) -> Self {
        let k = k.min(self.n);
        Self { data: self.data[..k * self.dim].to_vec(), n: k, dim: self.dim }
    }

    /// Upload as a tensor of shape `[n, dim]`.
    pub fn to_tensor<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        Tensor::from_data(TensorData::new(self.data.clone(), [self.n, self.dim]), device)
    }

    /// Download a `[n, dim]` tensor.
    pub fn from_tensor<B: Backend>(x: Tensor<B, 2>) -> Self {
        let [n, dim] = x.dims();
        let data = x.into_data().convert::<f32>().into_vec::<f32>().expect("a float tensor converts to f32");
        Self { data, n, dim }
    }

    /// Whether every value is finite.
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}

/// Points with one class label per row (for labelled worlds and conditional training).
#[derive(Debug, Clone, PartialEq)]
pub struct Labeled {
    /// The points.
    pub points: Points,
    /// One label per point, in `0..n_classes`.
    pub labels: Vec<u32>,
    /// Number of classes.
    pub n_classes: u32,
}
