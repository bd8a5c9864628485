//! The MLP velocity field.
/// Placeholder.
pub struct MlpField;
/// Placeholder.
pub struct MlpFieldConfig;
/// Placeholder.
pub enum Activation {}
