//! The MLP velocity field.
//!
//! # Layout (PyTorch compatible)
//! The network is `nn.Sequential(Linear, act, Linear, act, …, Linear)` applied to the
//! concatenation `[x, e(t), c]` of the point, the time embedding and the condition (a class
//! embedding or a condition vector). Checkpoints store its tensors under PyTorch's names and
//! layout: `net.{2i}.weight` `[d_out, d_in]` and `net.{2i}.bias` `[d_out]` for the i-th linear
//! layer, `time_embedding.freqs` `[1, dim/2]` for sinusoidal or Fourier embeddings, and
//! `class_embedding.weight` `[n_classes + 1, d]` (the last row is the null class).

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData, activation, backend::Backend};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::embed::{TimeEmbedding, TimeEmbeddingConfig};
use super::field::{Condition, VelocityField};
use crate::error::ConfigError;

/// The activation between linear layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// x·sigmoid(x) (PyTorch `nn.SiLU`).
    #[default]
    Silu,
    /// max(0, x).
    Relu,
    /// tanh(x).
    Tanh,
    /// x·Φ(x), exact (PyTorch `nn.GELU()`).
    Gelu,
}

impl Activation {
    /// Every activation, in a fixed order.
    pub const ALL: [Activation; 4] = [Activation::Silu, Activation::Relu, Activation::Tanh, Activation::Gelu];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Silu => "silu",
            Activation::Relu => "relu",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
        }
    }

    /// Applies the activation.
    pub fn apply<B: Backend, const D: usize>(self, x: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            // burn's default `sigmoid` rounds through f32 whatever the dtype, which would
            // cap f64 finite-difference and convergence tests at f32 accuracy: spell SiLU out
            // in f64 (x / (1 + e^{−x})), keep burn's op (fewer autodiff nodes) for f32.
            Activation::Silu if x.dtype() == burn::tensor::DType::F64 => x.clone() / (x.neg().exp().add_scalar(1.0)),
            Activation::Silu => activation::silu(x),
            Activation::Relu => activation::relu(x),
            Activation::Tanh => activation::tanh(x),
            Activation::Gelu => activation::gelu(x),
        }
    }
}

impl std::str::FromStr for Activation {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Activation::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| ConfigError::Unknown {
            kind: "activation",
            name: s.to_string(),
            valid: Activation::ALL.map(|a| a.name()).join(", "),
        })
    }
}

/// The condition an MLP field takes, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ConditionConfig {
    /// Unconditional.
    #[default]
    None,
    /// A class label in `0..n_classes`, embedded in `d_embed` learned features; label
    /// `n_classes` is the null class (for classifier-free guidance).
    Class {
        /// Number of classes (without the null class).
        n_classes: usize,
        /// Size of the class embedding.
        d_embed: usize,
    },
    /// A condition vector of `d_cond` values, concatenated as it is.
    Vector {
        /// Its size.
        d_cond: usize,
    },
}

impl ConditionConfig {
    /// Number of features the condition adds to the network input.
    pub(super) fn d_output(&self) -> usize {
        match *self {
            ConditionConfig::None => 0,
            ConditionConfig::Class { d_embed, .. } => d_embed,
            ConditionConfig::Vector { d_cond } => d_cond,
        }
    }
}

/// Settings of an [`MlpField`]. The W2D workload is `d_input = 2, d_hidden = 256,
/// n_hidden = 3, activation = silu`, raw time: 3→256→256→256→2, 133,122 parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlpFieldConfig {
    /// Dimension of the points.
    pub d_input: usize,
    /// Width of each hidden layer.
    pub d_hidden: usize,
    /// Number of hidden layers (linear layers = n_hidden + 1).
    pub n_hidden: usize,
    /// Activation after every hidden linear layer.
    pub activation: Activation,
    /// How t enters.
    pub time_embedding: TimeEmbeddingConfig,
    /// The condition, if any.
    pub condition: ConditionConfig,
}

impl Default for MlpFieldConfig {
    fn default() -> Self {
        Self {
            d_input: 2,
            d_hidden: 256,
            n_hidden: 3,
            activation: Activation::Silu,
            time_embedding: TimeEmbeddingConfig::Raw,
            condition: ConditionConfig::None,
        }
    }
}

/// Most parameters an MLP field may have: 2²⁸, 1 GiB of f32 weights (and ≈ 5 GiB to train,
/// with the gradient, Adam's moments and the EMA).
pub const MAX_PARAMS: usize = 1 << 28;

impl MlpFieldConfig {
    /// Checks the sizes, each and the parameter count ([`MAX_PARAMS`]).
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the bad setting.
    ///
    /// ```
    /// use ferroflow::model::MlpFieldConfig;
    /// // 8,192 wide: four hidden layers hold 3 · 8192² + … ≈ 201 M parameters, five ≈ 268.6 M.
    /// let wide = |n_hidden| MlpFieldConfig { d_hidden: 8192, n_hidden, ..MlpFieldConfig::default() };
    /// assert!(wide(4).validate().is_ok());
    /// let e = wide(5).validate().unwrap_err().to_string();
    /// assert!(e.starts_with("model (parameters) = 268"), "{e}");
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad =
            |name, value: usize, expected| Err(ConfigError::OutOfRange { name, value: value.to_string(), expected });
        if self.d_input == 0 || self.d_input > 1 << 20 {
            return bad("model.d_input", self.d_input, "1..=1048576");
        }
        if self.d_hidden == 0 || self.d_hidden > 65_536 {
            return bad("model.d_hidden", self.d_hidden, "1..=65536");
        }
        if self.n_hidden == 0 || self.n_hidden > 64 {
            return bad("model.n_hidden", self.n_hidden, "1..=64");
        }
        match self.condition {
            ConditionConfig::Class { n_classes, d_embed } => {
                if n_classes == 0 || n_classes > 1 << 20 {
                    return bad("model.condition.n_classes", n_classes, "1..=1048576");
                }
                if d_embed == 0 || d_embed > 65_536 {
                    return bad("model.condition.d_embed", d_embed, "1..=65536");
                }
            }
            ConditionConfig::Vector { d_cond } if d_cond == 0 || d_cond > 1 << 20 => {
                return bad("model.condition.d_cond", d_cond, "1..=1048576");
            }
            _ => {}
        }
        self.time_embedding.validate()?;
        // Each size may be in range and the whole still too large to allocate (65,536 wide
        // and 64 deep is 275 G parameters): a clear error instead of an out-of-memory abort.
        let params = self.num_params();
        if params > MAX_PARAMS {
            return bad("model (parameters)", params, "at most 268435456 (1 GiB of f32 weights)");
        }
        Ok(())
    }

    /// Sizes of the linear layers, `[(d_in, d_out); n_hidden + 1]`.
    pub fn layer_sizes(&self) -> Vec<(usize, usize)> {
        let d0 = self.d_input + self.time_embedding.d_output() + self.condition.d_output();
        let mut sizes = vec![(d0, self.d_hidden)];
        for _ in 1..self.n_hidden {
            sizes.push((self.d_hidden, self.d_hidden));
        }
        sizes.push((self.d_hidden, self.d_input));
        sizes
    }

    /// Number of trained parameters.
    ///
    /// ```
    /// use ferroflow::model::MlpFieldConfig;
    /// assert_eq!(MlpFieldConfig::default().num_params(), 133_122); // W2D
    /// ```
    pub fn num_params(&self) -> usize {
        let linear: usize = self.layer_sizes().iter().map(|(i, o)| i * o + o).sum();
        let class = match self.condition {
            ConditionConfig::Class { n_classes, d_embed } => (n_classes + 1) * d_embed,
            _ => 0,
        };
        linear + class
    }

    /// Builds the field with PyTorch's default initialisation, drawn from `rng`:
    /// every weight and bias of a linear layer ~ U(−1/√d_in, 1/√d_in); class embeddings ~ N(0, 1).
    pub fn init<B: Backend>(&self, device: &B::Device, rng: &mut crate::rng::Rng) -> MlpField<B> {
        let layers = self
            .layer_sizes()
            .into_iter()
            .map(|(d_in, d_out)| {
                let k = 1.0 / (d_in as f32).sqrt();
                let mut uniform = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-k..k)).collect() };
                let w = uniform(d_in * d_out);
                let b = uniform(d_out);
                // Drawn in PyTorch's [d_out, d_in] order, stored transposed as burn's [d_in, d_out].
                let w = Tensor::<B, 2>::from_data(TensorData::new(w, [d_out, d_in]), device).transpose();
                Linear {
                    weight: Param::from_tensor(w),
                    bias: Some(Param::from_tensor(Tensor::from_data(TensorData::new(b, [d_out]), device))),
                }
            })
            .collect();
        let class_embedding = match self.condition {
            ConditionConfig::Class { n_classes, d_embed } => {
                let w = crate::rng::normal_vec(rng, (n_classes + 1) * d_embed);
                Some(Param::from_tensor(Tensor::from_data(TensorData::new(w, [n_classes + 1, d_embed]), device)))
            }
            _ => None,
        };
        let time_embedding = self.time_embedding.init(device, rng);
        MlpField { layers, class_embedding, time_embedding, activation: self.activation, config: *self }
    }
}

/// An MLP velocity field v(x, t | c) = MLP([x, e(t), c]).
///
/// # Shapes
/// `x: [batch, d_input]`, `t: [batch]` → `[batch, d_input]`
#[derive(Module, Debug)]
pub struct MlpField<B: Backend> {
    /// The linear layers, in order.
    pub layers: Vec<Linear<B>>,
    /// Class embedding `[n_classes + 1, d_embed]`, if class-conditional.
    pub class_embedding: Option<Param<Tensor<B, 2>>>,
    /// The time embedding (constants only).
    pub time_embedding: TimeEmbedding<B>,
    /// The activation.
    #[module(skip)]
    pub activation: Activation,
    /// The settings it was built from.
    #[module(skip)]
    pub config: MlpFieldConfig,
}

impl<B: Backend> MlpField<B> {
    /// The network input `[x, e(t), c]`.
    pub(super) fn input(&self, x: Tensor<B, 2>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let mut parts = vec![x, self.time_embedding.forward(t)];
        match (cond, &self.class_embedding, self.config.condition) {
            (Some(Condition::Class(labels)), Some(table), _) => {
                parts.push(table.val().select(0, labels.clone()));
            }
            (None, Some(table), ConditionConfig::Class { n_classes, .. }) => {
                // No label given: the null class.
                let [n, _] = parts[0].dims();
                let row = table.val().narrow(0, n_classes, 1);
                parts.push(row.repeat_dim(0, n));
            }
            (Some(Condition::Vector(c)), None, ConditionConfig::Vector { .. }) => parts.push(c.clone()),
            _ => {}
        }
        if parts.len() == 1 { parts.pop().unwrap() } else { Tensor::cat(parts, 1) }
    }
}

impl<B: Backend> VelocityField<B> for MlpField<B> {
    fn dim(&self) -> usize {
        self.config.d_input
    }

    fn velocity(&self, x: Tensor<B, 2>, t: Tensor<B, 1>, cond: Option<&Condition<B>>) -> Tensor<B, 2> {
        let mut h = self.input(x, t, cond);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = self.activation.apply(h);
            }
        }
        h
    }
}

/// A tensor a model stores in a checkpoint: its PyTorch-style name, its shape in PyTorch's
/// layout, and whether burn stores it transposed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// The name, e.g. `net.0.weight`.
    pub name: String,
    /// The shape in PyTorch's layout, e.g. `[d_out, d_in]`.
    pub shape: Vec<usize>,
    /// Whether burn's layout is the transpose (linear weights: burn `[d_in, d_out]`).
    pub transposed: bool,
    /// Whether it is trained (a parameter) or a constant.
    pub trained: bool,
}

impl MlpFieldConfig {
    /// The tensors of this field in a checkpoint: the trained parameters first, in the order
    /// burn visits them, then the constants.
    pub fn tensor_specs(&self) -> Vec<TensorSpec> {
        let mut specs = Vec::new();
        for (i, (d_in, d_out)) in self.layer_sizes().into_iter().enumerate() {
            specs.push(TensorSpec {
                name: format!("net.{}.weight", 2 * i),
                shape: vec![d_out, d_in],
                transposed: true,
                trained: true,
            });
            specs.push(TensorSpec {
                name: format!("net.{}.bias", 2 * i),
                shape: vec![d_out],
                transposed: false,
                trained: true,
            });
        }
        if let ConditionConfig::Class { n_classes, d_embed } = self.condition {
            specs.push(TensorSpec {
                name: "class_embedding.weight".into(),
                shape: vec![n_classes + 1, d_embed],
                transposed: false,
                trained: true,
            });
        }
        match self.time_embedding {
            TimeEmbeddingConfig::Raw => {}
            TimeEmbeddingConfig::Sinusoidal { dim, .. } | TimeEmbeddingConfig::Fourier { dim, .. } => {
                specs.push(TensorSpec {
                    name: "time_embedding.freqs".into(),
                    shape: vec![1, dim / 2],
                    transposed: false,
                    trained: false,
                });
            }
        }
        specs
    }

    /// Builds the field from tensors in PyTorch layout, one per [`Self::tensor_specs`] entry,
    /// in that order. Callers check names and shapes first (see [`crate::checkpoint`]).
    pub fn from_tensors<B: Backend>(&self, tensors: &[super::HostTensor], device: &B::Device) -> MlpField<B> {
        let specs = self.tensor_specs();
        debug_assert_eq!(specs.len(), tensors.len());
        let burn_layout = |i: usize| {
            if specs[i].transposed { tensors[i].transposed() } else { tensors[i].clone() }
        };
        let n_linear = self.n_hidden + 1;
        let layers = (0..n_linear)
            .map(|l| Linear {
                weight: Param::from_tensor(burn_layout(2 * l).to_tensor::<B, 2>(device)),
                bias: Some(Param::from_tensor(burn_layout(2 * l + 1).to_tensor::<B, 1>(device))),
            })
            .collect();
        let mut k = 2 * n_linear;
        let class_embedding = match self.condition {
            ConditionConfig::Class { .. } => {
                k += 1;
                Some(Param::from_tensor(burn_layout(k - 1).to_tensor::<B, 2>(device)))
            }
            _ => None,
        };
        let freqs = (k < specs.len()).then(|| burn_layout(k).to_tensor::<B, 2>(device));
        MlpField {
            layers,
            class_embedding,
            time_embedding: TimeEmbedding { freqs },
            activation: self.activation,
            config: *self,
        }
    }
}

impl<B: Backend> MlpField<B> {
    /// Every tensor in PyTorch layout, in [`MlpFieldConfig::tensor_specs`] order.
    pub fn to_tensors(&self) -> Vec<super::HostTensor> {
        let specs = self.config.tensor_specs();
        let mut out: Vec<super::HostTensor> = super::params::collect_params(self);
        if let Some(f) = &self.time_embedding.freqs {
            out.push(super::HostTensor::from_tensor(f.clone()));
        }
        out.into_iter().zip(&specs).map(|(t, s)| if s.transposed { t.transposed() } else { t }).collect()
    }
}
