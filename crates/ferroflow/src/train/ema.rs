//! Exponential moving average of the weights.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, backend::Backend};

/// An exponential moving average of a module's parameters.
///
/// # Formula
/// θ̄ ← d·θ̄ + (1 − d)·θ after every optimizer step (θ̄ starts at the initial θ; the trainer
/// ramps d up over the first steps, see [`crate::train::TrainConfig::ema_decay_at`]).
#[derive(Debug, Clone)]
pub struct Ema<M> {
    /// The averaged module.
    pub module: M,
    /// d.
    pub decay: f64,
}

struct Flatten<B: Backend>(Vec<Tensor<B, 1>>);

impl<B: Backend> ModuleVisitor<B> for Flatten<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let t = param.val();
        let n: usize = t.dims().iter().product();
        self.0.push(t.reshape([n]));
    }
}

struct Blend<B: Backend> {
    current: std::vec::IntoIter<Tensor<B, 1>>,
    decay: f64,
}

impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, avg, mapper) = param.consume();
        let cur = self.current.next().expect("same module structure");
        let dims = avg.dims();
        let new = avg.mul_scalar(self.decay) + cur.reshape(dims).mul_scalar(1.0 - self.decay);
        Param::from_mapped_value(id, new, mapper)
    }
}

impl<M> Ema<M> {
    /// Starts the average at `module`.
    pub fn new(module: M, decay: f64) -> Self {
        Self { module, decay }
    }

    /// Moves the average towards `current` (same structure as the averaged module).
    pub fn update<B: Backend>(&mut self, current: &M)
    where
        M: Module<B>,
    {
        let mut f = Flatten::<B>(Vec::new());
        current.visit(&mut f);
        let module = self.module.clone();
        self.module = module.map(&mut Blend { current: f.0.into_iter(), decay: self.decay });
    }
}
