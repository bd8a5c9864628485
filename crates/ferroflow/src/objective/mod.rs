//! Objectives: the conditional flow matching loss and the distributions of training times.

mod cfm;
mod time_sampler;

pub use cfm::cfm_loss;
pub use time_sampler::TimeSampler;
