//! Adam and AdamW on burn tensors, with state kept per parameter in visit order.
//!
//! Written here rather than taken from `burn-optim` so that its state is plain tensors that
//! go into safetensors checkpoints under PyTorch's names (exact resume), and so that one update
//! is a handful of fused-friendly ops per tensor (the study in MEASURING.md measured
//! burn-optim's Adam at ~13 allocating ops per parameter tensor).

use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{Tensor, backend::AutodiffBackend, backend::Backend};

use super::config::OptimizerConfig;

/// Adam / AdamW state: step count and the two moments of every trained tensor, flattened,
/// in the order burn visits the parameters.
#[derive(Debug, Clone)]
pub struct Adam<B: Backend> {
    /// The hyper-parameters.
    pub config: OptimizerConfig,
    /// Steps taken.
    pub t: u64,
    /// (m, v) per parameter, flattened; `None` before the first step.
    pub moments: Vec<Option<(Tensor<B, 1>, Tensor<B, 1>)>>,
}

impl<B: Backend> Adam<B> {
    /// Fresh state.
    pub fn new(config: OptimizerConfig) -> Self {
        Self { config, t: 0, moments: Vec::new() }
    }

    /// One update of every parameter of `module` from `grads`, at learning rate `lr`, after
    /// scaling the gradients by `grad_scale` (gradient clipping).
    pub fn step<AB, M>(&mut self, module: M, grads: &mut GradientsParams, lr: f64, grad_scale: f64) -> M
    where
        AB: AutodiffBackend<InnerBackend = B>,
        M: AutodiffModule<AB>,
    {
        self.t += 1;
        let (beta1, beta2, eps, wd) = match self.config {
            OptimizerConfig::Adam { beta1, beta2, eps } => (beta1, beta2, eps, 0.0),
            OptimizerConfig::AdamW { beta1, beta2, eps, weight_decay } => (beta1, beta2, eps, weight_decay),
        };
        let mut mapper = AdamMapper::<AB> {
            grads,
            moments: &mut self.moments,
            index: 0,
            lr,
            beta1,
            beta2,
            eps,
            wd,
            bias1: 1.0 - beta1.powi(self.t as i32),
            bias2: 1.0 - beta2.powi(self.t as i32),
            grad_scale,
        };
        module.map(&mut mapper)
    }
}

/// Adam's (m, v) per parameter tensor, flattened.
type Moments<B> = Vec<Option<(Tensor<B, 1>, Tensor<B, 1>)>>;

struct AdamMapper<'a, AB: AutodiffBackend> {
    grads: &'a mut GradientsParams,
    moments: &'a mut Moments<AB::InnerBackend>,
    index: usize,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    wd: f64,
    bias1: f64,
    bias2: f64,
    grad_scale: f64,
}

impl<AB: AutodiffBackend> ModuleMapper<AB> for AdamMapper<'_, AB> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<AB, D>>) -> Param<Tensor<AB, D>> {
        let k = self.index;
        self.index += 1;
        if self.moments.len() <= k {
            self.moments.resize(k + 1, None);
        }
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<AB::InnerBackend, D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let dims = tensor.dims();
        let n: usize = dims.iter().product();
        let mut g = grad.reshape([n]);
        if self.grad_scale != 1.0 {
            g = g.mul_scalar(self.grad_scale);
        }
        let (m, v) = match self.moments[k].take() {
            Some((m, v)) => (
                m.mul_scalar(self.beta1) + g.clone().mul_scalar(1.0 - self.beta1),
                v.mul_scalar(self.beta2) + g.clone().mul(g).mul_scalar(1.0 - self.beta2),
            ),
            None => (g.clone().mul_scalar(1.0 - self.beta1), g.clone().mul(g).mul_scalar(1.0 - self.beta2)),
        };
        // p ← p − lr·(m/b1) / (√(v/b2) + ε)
        let denom = v.clone().div_scalar(self.bias2).sqrt().add_scalar(self.eps);
        let update = m.clone().div(denom).mul_scalar(self.lr / self.bias1);
        let mut p = tensor.inner().reshape([n]);
        if self.wd != 0.0 {
            p = p.mul_scalar(1.0 - self.lr * self.wd);
        }
        let p = (p - update).reshape(dims);
        self.moments[k] = Some((m, v));
        Param::from_mapped_value(id, Tensor::from_inner(p).require_grad(), mapper)
    }
}

struct SquaredNorm<'a, AB: AutodiffBackend> {
    grads: &'a GradientsParams,
    parts: Vec<Tensor<AB::InnerBackend, 1>>,
}

impl<AB: AutodiffBackend> ModuleVisitor<AB> for SquaredNorm<'_, AB> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AB, D>>) {
        if let Some(g) = self.grads.get::<AB::InnerBackend, D>(param.id) {
            let n: usize = g.dims().iter().product();
            let g = g.reshape([n]);
            self.parts.push(g.clone().mul(g).sum());
        }
    }
}

/// The global L2 norm of all gradients of `module`.
pub fn grad_norm<AB: AutodiffBackend, M: AutodiffModule<AB>>(module: &M, grads: &GradientsParams) -> f64 {
    let mut v = SquaredNorm::<AB> { grads, parts: Vec::new() };
    module.visit(&mut v);
    if v.parts.is_empty() {
        return 0.0;
    }
    let total: f64 = Tensor::cat(v.parts, 0).into_data().convert::<f64>().into_vec::<f64>().expect("f64").iter().sum();
    total.sqrt()
}
