//! Which backend runs the command (`--device cpu|cuda`).

use clap::ValueEnum;

/// The device a command runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Device {
    /// The CPU (burn-flex).
    #[default]
    Cpu,
    /// An NVIDIA GPU through burn's CUDA backend (build with `--features cuda`).
    Cuda,
}

impl Device {
    /// Fails with a clear message if this build cannot use the device.
    pub fn check(self) -> anyhow::Result<()> {
        match self {
            Device::Cpu => Ok(()),
            Device::Cuda if cfg!(feature = "cuda") => Ok(()),
            Device::Cuda => anyhow::bail!("this ferroflow was built without CUDA: rebuild with `--features cuda`"),
        }
    }
}

/// Runs `$body` with `$B` bound to the inference backend and `$AB` to the autodiff backend of
/// `$device`, and `$dev` to its device value.
#[macro_export]
macro_rules! with_backend {
    ($device:expr, |$B:ident, $AB:ident, $dev:ident| $body:expr) => {{
        match $device {
            $crate::device::Device::Cpu => {
                type $B = ferroflow::backend::Cpu;
                #[allow(dead_code)]
                type $AB = ferroflow::backend::CpuAutodiff;
                let $dev = Default::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::device::Device::Cuda => {
                type $B = ferroflow::backend::Cuda;
                #[allow(dead_code)]
                type $AB = ferroflow::backend::CudaAutodiff;
                let $dev = Default::default();
                $body
            }
            #[cfg(not(feature = "cuda"))]
            $crate::device::Device::Cuda => unreachable!("checked by Device::check"),
        }
    }};
}
