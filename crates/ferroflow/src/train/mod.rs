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

/// Classifier-free guidance's label dropout: each label is replaced by the null class
/// `n_classes` with probability `p`, one uniform draw from `rng` per label in order (none
/// when p = 0), so the burn trainer and the fused engine draw the same.
///
/// ```
/// let mut rng = ferroflow::rng::seeded(0);
/// let labels = vec![3u32; 10_000];
/// let dropped = ferroflow::train::drop_labels(&labels, 0.1, 10, &mut rng);
/// let nulls = dropped.iter().filter(|&&c| c == 10).count();
/// // Binomial(10 000, 0.1): mean 1 000, sd 30.
/// assert!((880..=1120).contains(&nulls), "{nulls}");
/// assert!(dropped.iter().all(|&c| c == 3 || c == 10));
/// ```
pub fn drop_labels(labels: &[u32], p: f64, n_classes: usize, rng: &mut crate::rng::Rng) -> Vec<u32> {
    let mut out = Vec::with_capacity(labels.len());
    drop_labels_into(labels, p, n_classes, rng, &mut out);
    out
}

/// [`drop_labels`] into a reused buffer (cleared first), for the engine's training step.
pub(crate) fn drop_labels_into(
    labels: &[u32],
    p: f64,
    n_classes: usize,
    rng: &mut crate::rng::Rng,
    out: &mut Vec<u32>,
) {
    use rand::Rng as _;
    out.clear();
    out.extend(labels.iter().map(|&c| if p > 0.0 && rng.random::<f64>() < p { n_classes as u32 } else { c }));
}
