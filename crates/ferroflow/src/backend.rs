//! Backend choice at the edges: the CPU default (`burn-flex`) and, with the `cuda` feature, CUDA.
//!
//! Library code is generic over `B: Backend`; binaries, tests and benches pick one of these.

/// The default CPU backend (burn-flex, f32).
pub type Cpu = burn::backend::Flex;
/// The default CPU backend with reverse-mode autodiff, for training.
pub type CpuAutodiff = burn::backend::Autodiff<Cpu>;
/// A CPU backend in f64 (burn-ndarray), the reference for finite-difference and convergence
/// tests (burn-flex computes in f32 only).
pub type Cpu64 = burn::backend::NdArray<f64>;

/// burn's CUDA backend (kernels compiled at run time; needs a GPU to run, not to build).
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda;
/// CUDA with autodiff, for training.
#[cfg(feature = "cuda")]
pub type CudaAutodiff = burn::backend::Autodiff<Cuda>;
