//! [`FieldConfig`]: what the trainer, checkpoints and the CLI need of a network's settings.

use burn::module::Module;
use burn::tensor::backend::Backend;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{ConditionConfig, HostTensor, MlpField, MlpFieldConfig, TensorSpec, VelocityField};
use crate::error::ConfigError;

/// The settings of a velocity-field network that [`crate::train::Trainer`] can build, train
/// and checkpoint (burn's `Config → init(&device) → Module` pattern, plus the named tensors
/// of a checkpoint).
///
/// Implemented by [`MlpFieldConfig`] and by the U-Net's settings; a new architecture needs
/// nothing else to get the trainer, EMA, checkpoints and resume.
pub trait FieldConfig:
    Clone + std::fmt::Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The network these settings build, on backend `B`.
    type Field<B: Backend>: Module<B> + VelocityField<B>;

    /// The name stored in checkpoints (metadata `ferroflow.field`), e.g. `"mlp"`.
    const KIND: &'static str;

    /// Checks every setting.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad setting.
    fn validate(&self) -> Result<(), ConfigError>;

    /// The dimension of the (flattened) points.
    fn dim(&self) -> usize;

    /// The number of classes of a class-conditional field (label `n` is the null class).
    fn n_classes(&self) -> Option<usize>;

    /// Whether the field takes a condition vector (trained through
    /// [`crate::train::Trainer::train_step`] only).
    fn takes_vector_condition(&self) -> bool {
        false
    }

    /// A freshly initialised network, every draw from `rng`.
    fn init<B: Backend>(&self, device: &B::Device, rng: &mut crate::rng::Rng) -> Self::Field<B>;

    /// The tensors of a checkpoint: names, PyTorch-layout shapes, trained parameters first in
    /// burn's visit order, then the constants.
    fn tensor_specs(&self) -> Vec<TensorSpec>;

    /// The network from tensors in [`Self::tensor_specs`] order (shapes already checked).
    fn build_from_tensors<B: Backend>(&self, tensors: &[HostTensor], device: &B::Device) -> Self::Field<B>;

    /// Every tensor of `field` in [`Self::tensor_specs`] order.
    fn tensors_of<B: Backend>(field: &Self::Field<B>) -> Vec<HostTensor>;

    /// The MLP settings, when this is an MLP (then the fused CPU engine can train it).
    fn as_mlp(&self) -> Option<MlpFieldConfig> {
        None
    }
}

impl FieldConfig for MlpFieldConfig {
    type Field<B: Backend> = MlpField<B>;
    const KIND: &'static str = "mlp";

    fn validate(&self) -> Result<(), ConfigError> {
        MlpFieldConfig::validate(self)
    }
    fn dim(&self) -> usize {
        self.d_input
    }
    fn n_classes(&self) -> Option<usize> {
        match self.condition {
            ConditionConfig::Class { n_classes, .. } => Some(n_classes),
            _ => None,
        }
    }
    fn takes_vector_condition(&self) -> bool {
        matches!(self.condition, ConditionConfig::Vector { .. })
    }
    fn init<B: Backend>(&self, device: &B::Device, rng: &mut crate::rng::Rng) -> MlpField<B> {
        MlpFieldConfig::init(self, device, rng)
    }
    fn tensor_specs(&self) -> Vec<TensorSpec> {
        MlpFieldConfig::tensor_specs(self)
    }
    fn build_from_tensors<B: Backend>(&self, tensors: &[HostTensor], device: &B::Device) -> MlpField<B> {
        MlpFieldConfig::from_tensors(self, tensors, device)
    }
    fn tensors_of<B: Backend>(field: &MlpField<B>) -> Vec<HostTensor> {
        field.to_tensors()
    }
    fn as_mlp(&self) -> Option<MlpFieldConfig> {
        Some(*self)
    }
}

impl FieldConfig for super::UNetConfig {
    type Field<B: Backend> = super::UNet<B>;
    const KIND: &'static str = "unet";

    fn validate(&self) -> Result<(), ConfigError> {
        super::UNetConfig::validate(self)
    }
    fn dim(&self) -> usize {
        super::UNetConfig::dim(self)
    }
    fn n_classes(&self) -> Option<usize> {
        self.n_classes
    }
    fn init<B: Backend>(&self, device: &B::Device, rng: &mut crate::rng::Rng) -> super::UNet<B> {
        super::UNetConfig::init(self, device, rng)
    }
    fn tensor_specs(&self) -> Vec<TensorSpec> {
        super::UNetConfig::tensor_specs(self)
    }
    fn build_from_tensors<B: Backend>(&self, tensors: &[HostTensor], device: &B::Device) -> super::UNet<B> {
        super::UNetConfig::from_tensors(self, tensors, device)
    }
    fn tensors_of<B: Backend>(field: &super::UNet<B>) -> Vec<HostTensor> {
        field.to_tensors()
    }
}
