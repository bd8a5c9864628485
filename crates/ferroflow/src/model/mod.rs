//! Velocity fields: the [`VelocityField`] trait and the MLP field.

pub mod analytic;
mod embed;
mod field;
pub mod jvp;
pub mod mlp;
pub mod params;
mod spec;

pub use analytic::GaussianToGaussian;
pub use embed::{TimeEmbedding, TimeEmbeddingConfig};
pub use field::{Condition, VelocityField};
pub use jvp::JvpField;
pub use mlp::{Activation, ConditionConfig, MlpField, MlpFieldConfig, TensorSpec};
pub use params::HostTensor;
pub use spec::FieldConfig;
