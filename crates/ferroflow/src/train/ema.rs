//! Exponential moving average of the weights.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Tensor, backend::Backend};

/// An exponential moving average of a module's parameters.
///
/// # Formula
/// θ̄ ← d·θ̄ + (1 − d)·θ after every optimizer step, computed as θ̄ + (1 − d)·(θ − θ̄) (PyTorch's
/// `lerp_`), so that a constant θ is a fixed point in f32 too: with d and 1 − d rounded to f32
/// separately, d·θ̄ + (1 − d)·θ would settle at (1 + 1.3·10⁻⁵)·θ for d = 0.999 (θ̄ starts at the initial θ; the trainer
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
        let new = avg.clone() + (cur.reshape(dims) - avg).mul_scalar(1.0 - self.decay);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use burn::nn::{Linear, LinearConfig};

    #[test]
    fn average_of_constant_weights_stays_exactly_them_and_moves_by_one_minus_d() {
        let device = Default::default();
        let a: Linear<Cpu> = LinearConfig::new(3, 4).init(&device);
        let b: Linear<Cpu> = LinearConfig::new(3, 4).init(&device);
        // burn initialises parameters lazily: read them once so that the clone shares them.
        let _ = (a.weight.val(), b.weight.val());
        let mut ema = Ema::new(a.clone(), 0.999);
        // θ̄ = θ is a fixed point, bit for bit, however many steps (d·θ + (1 − d)·θ in f32 drifts
        // to (1 + 1.3e-5)·θ).
        for _ in 0..20_000 {
            ema.update(&a);
        }
        let (w0, w1) = (a.weight.val().into_data(), ema.module.weight.val().into_data());
        assert_eq!(w0.as_slice::<f32>().unwrap(), w1.as_slice::<f32>().unwrap());
        // One step towards b moves by (1 − d)(b − a).
        ema.update(&b);
        let (wa, wb) = (a.weight.val().into_data(), b.weight.val().into_data());
        let we = ema.module.weight.val().into_data();
        for ((&x, &y), &e) in
            wa.as_slice::<f32>().unwrap().iter().zip(wb.as_slice::<f32>().unwrap()).zip(we.as_slice::<f32>().unwrap())
        {
            let want = x as f64 + 0.001 * (y as f64 - x as f64);
            assert!((e as f64 - want).abs() < 1e-7, "{e} vs {want}");
        }
    }
}
