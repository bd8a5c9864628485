//! A fused CPU engine for MLP velocity fields: training and sampling without burn's tensor
//! machinery, several times faster than the burn path on the CPU (see BENCHMARKS.md).
//!
//! # Why a native engine behind the seams (and not burn custom ops)
//! The speed of a small MLP on the CPU comes from *not* materialising tensors: one pass does
//! bias + activation + derivative, the output layer's backward is fused with the loss, Adam
//! and the EMA are one pass over one flat buffer, and threads split the batch with one join
//! for forward + backward and one for the update. burn's backend-extension mechanism could
//! fuse single ops, but every op would still allocate, zero and track its output, and the
//! optimizer would still walk tensors one by one. So the engine is a plain-Rust
//! implementation behind the two seams the rest of ferroflow already uses:
//! - training: [`crate::train::Trainer`] hands every step to a [`FusedTrainer`] when
//!   [`EngineChoice`] (`TrainConfig::engine`) says so — by default (`auto`) whenever the
//!   backend is the CPU default [`crate::backend::CpuAutodiff`]. Same random draws, same
//!   options, same checkpoint files (either path resumes from the other's).
//! - sampling: [`FusedField`] implements [`crate::model::VelocityField`], so every ODE and SDE
//!   solver runs on it, and has its own blocked fixed-step sampler
//!   ([`FusedField::integrate`]).
//!
//! The burn path stays the reference: the tests check the engine against it.
//!
//! # Buffers
//! Parameters, gradients, Adam's m and v and the EMA are flat `Vec<f32>` in PyTorch layout
//! ([`mlp::Layout`]); each thread owns a [`mlp`] work area (activations, derivatives,
//! gradient) sized on first use and reused every step.
//!
//! # Threads and determinism
//! The calling thread and `threads − 1` helpers ([`Threads`]) that spin between jobs instead
//! of sleeping, so that no phase waits for a thread to be woken (module `threads`). A training
//! step is three phases of blocks, each block claimed by whichever thread is free (a thread
//! that loses its core to another process leaves its blocks to the others): row
//! blocks (forward, loss, the activations' backward), parameter blocks (dW = dZᵀ·H over all
//! rows of the batch, a few output units a block) and slices of Adam. No block writes a
//! gradient of its own to be summed later: every gradient entry is one sum over the rows in
//! one order, and the loss is summed in fixed granules of rows. So a run gives the same bits on
//! 1, 2 or 16 threads, for a given instruction set (tested on 1, 2 and 3).
//!
//! # SIMD
//! Matrix products go to the `gemm` crate with its `x86-v4` feature (AVX-512 micro-kernels,
//! picked at run time; AVX2 + FMA otherwise), one thread each, transposes as strides, Wᵀ·x
//! never copied. For blocks of ≤ 32 rows the sampler uses its own panel GEMV
//! ([`sampler`]). Element-wise kernels
//! ([`simd`]) are compiled for AVX-512, AVX2 + FMA and a portable fallback and picked at run
//! time ([`Isa::detect`]); the exponential is a vectorisable polynomial.
//!
//! # Speed (W2D; `cargo bench -p ferroflow --bench engine -- 5 --threads 1`)
//! One run on a 2-core AMD EPYC (Zen 5, AVX-512) shared with other jobs (load ≈ 4), PyTorch
//! 2.15 on one thread (`OMP_NUM_THREADS=1`, `../shared/bench`) right after: training 1010
//! steps/s (PyTorch 383, burn 374), exact OT 694 (torchcfm 136); Euler-10 at batch 1 26 µs
//! (PyTorch 488, burn 116), batch 32 585 µs (PyTorch 1328, burn 1329); 10k points 0.72 M
//! point·NFE/s (PyTorch 0.32 M, burn 0.14 M); control field 302 µs (PyTorch 646, burn 440).
//! With 2 threads on that loaded machine the process got ≈ 1 CPU, so 2-thread figures need a
//! quiet machine.
//!
//! # What it does not cover
//! Only [`crate::model::MlpField`] (no U-Net), CPU only; f32, except that the plain velocity
//! can run its hidden layers' products on bf16 operands where the CPU has AVX512-BF16
//! ([`Precision::Bf16`], module [`bf16`]: ≈ 1.8× faster sampling, for pictures). Forward-mode JVPs are fused
//! ([`FusedField`] implements [`crate::model::JvpField`], so exact and Hutchinson divergences
//! and likelihoods run on it, the exact divergence by a route of its own that skips the first
//! and last layers' tangent products). Mode-seeking guidance with the exact divergence has
//! its own reverse pass through the tangents ([`FusedField::guided`]); with Hutchinson probes
//! or classifier-free guidance on top, and a JVP inside a training graph (MeanFlow's target),
//! it stays on burn.

pub mod bench;
pub mod bf16;
pub mod mlp;
mod optim;
pub mod sampler;
pub mod simd;
mod threads;
mod trainer;

use serde::{Deserialize, Serialize};

pub use bf16::Precision;
pub use mlp::{FusedMlp, HostCondition, Layout};
pub use sampler::{FusedField, FusedGuided};
pub use simd::Isa;
pub use threads::{Ahead, GAP_AFTER, GapWork, Threads};
pub use trainer::{FusedTrainer, loss_and_grad};

/// Which implementation trains an MLP field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineChoice {
    /// The fused engine when the backend is the CPU default ([`crate::backend::CpuAutodiff`]),
    /// burn otherwise.
    #[default]
    Auto,
    /// Always burn's autodiff (the reference).
    Burn,
    /// Always the fused CPU engine (whatever the backend; results come back to it).
    Fused,
}

impl EngineChoice {
    /// Every choice, in a fixed order.
    pub const ALL: [EngineChoice; 3] = [EngineChoice::Auto, EngineChoice::Burn, EngineChoice::Fused];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EngineChoice::Auto => "auto",
            EngineChoice::Burn => "burn",
            EngineChoice::Fused => "fused",
        }
    }

    /// Whether the fused engine trains on backend `B`.
    ///
    /// ```
    /// use ferroflow::backend::{CpuAutodiff, Cpu64};
    /// use ferroflow::engine::EngineChoice;
    /// assert!(EngineChoice::Auto.uses_engine::<CpuAutodiff>());
    /// assert!(!EngineChoice::Auto.uses_engine::<burn::backend::Autodiff<Cpu64>>());
    /// assert!(!EngineChoice::Burn.uses_engine::<CpuAutodiff>());
    /// ```
    pub fn uses_engine<B: 'static>(self) -> bool {
        match self {
            EngineChoice::Auto => {
                available() && std::any::TypeId::of::<B>() == std::any::TypeId::of::<crate::backend::CpuAutodiff>()
            }
            EngineChoice::Burn => false,
            EngineChoice::Fused => true,
        }
    }
}

impl std::str::FromStr for EngineChoice {
    type Err = crate::error::ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EngineChoice::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| crate::error::ConfigError::Unknown {
            kind: "engine",
            name: s.to_string(),
            valid: EngineChoice::ALL.map(|a| a.name()).join(", "),
        })
    }
}

/// Whether the engine runs on this machine (always: it has a portable fallback). The
/// instruction set it uses is [`Isa::detect`].
pub fn available() -> bool {
    true
}

/// The number of threads `threads = 0` means: one per available core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
