//! Velocity fields: the [`VelocityField`] trait, the MLP and U-Net fields, and classifier-free
//! guidance.

pub mod analytic;
pub mod cfg;
mod clip;
mod embed;
mod field;
pub mod jvp;
pub mod jvp_conv;
pub mod mlp;
pub mod params;
mod spec;
pub mod unet;

pub use analytic::GaussianToGaussian;
pub use cfg::ClassifierFree;
pub use clip::ClipX1;
pub use embed::{TimeEmbedding, TimeEmbeddingConfig};
pub use field::{Condition, VelocityField};
pub use jvp::JvpField;
pub use mlp::{Activation, ConditionConfig, MlpField, MlpFieldConfig, TensorSpec};
pub use params::HostTensor;
pub use spec::FieldConfig;
pub use unet::{UNet, UNetConfig};
