//! Velocity fields: the [`VelocityField`] trait and the MLP field.

mod embed;
mod field;
pub mod mlp;

pub use embed::{TimeEmbedding, TimeEmbeddingConfig};
pub use field::{Condition, VelocityField};
pub use mlp::{Activation, MlpField, MlpFieldConfig};
