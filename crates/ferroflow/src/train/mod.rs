//! The trainer: conditional flow matching with any path, coupling and time sampler; Adam or
//! AdamW with warm-up and cosine decay, gradient clipping, EMA of the weights, periodic
//! checkpoints, exact resume, and a stop on a non-finite loss.
//!
//! # Reproducibility
//! Every random draw of step k (source and data samples, the coupling, times, label dropout)
//! comes from a ChaCha8 stream keyed by (seed, k), and the weights are initialised from
//! (seed, stream 0). So the same seed gives the same weights bit for bit on the CPU, and a run
//! resumed from a checkpoint at step k continues exactly as the uninterrupted run would.

mod config;
mod ema;
mod optim;
mod run;

pub use config::{LrSchedule, OptimizerConfig, TrainConfig};
pub use ema::Ema;
pub use optim::Adam;
pub use run::{
    Control, OnEvent, TrainEvent, Trainer, configs_from, field_configs_from, field_kind, load_sampling_field,
    load_sampling_model, step_rng,
};
