//! Adam / AdamW, gradient clipping and the weight EMA over flat buffers, in one pass.
//!
//! The parameters are cut into fixed slices of [`SLICE`] values, each claimed by whichever
//! engine thread is free. For every block of 256 values a slice scales the gradient (when
//! clipping), then updates m, v, θ and the EMA in place. With gradient clipping a first pass
//! computes the global norm: one f64 sum a slice, the slices then summed in order, so the
//! result never depends on the thread count.
//!
//! # Formula (PyTorch's Adam, as [`crate::train::Adam`])
//! g ← s·g (s = min(1, c/‖g‖) when clipping at c); m ← β₁m + (1 − β₁)g; v ← β₂v + (1 − β₂)g²;
//! θ ← θ(1 − lr·λ) (AdamW only); θ ← θ − (lr/(1 − β₁ᵗ))·m / (√(v/(1 − β₂ᵗ)) + ε);
//! then θ̄ ← d·θ̄ + (1 − d)·θ. Every scalar is rounded to f32 as burn's `mul_scalar` does.

use super::simd::{Isa, MulAdd, kernel};
use super::threads::Threads;
use crate::train::OptimizerConfig;

/// Adam's scalars for one step, in f32.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamStep {
    b1: f32,
    one_m_b1: f32,
    b2: f32,
    one_m_b2: f32,
    bias2: f32,
    eps: f32,
    step_size: f32,
    decay: Option<f32>,
    grad_scale: Option<f32>,
    /// 1 − d of the weight average, applied as e += (1 − d)·(p − e) (PyTorch's `lerp_`).
    ema: Option<f32>,
}

impl AdamStep {
    /// The scalars of step `t` (1-based) at learning rate `lr`.
    pub(crate) fn new(config: OptimizerConfig, t: u64, lr: f64, grad_scale: f64, ema_decay: Option<f64>) -> Self {
        let (beta1, beta2, eps, wd) = match config {
            OptimizerConfig::Adam { beta1, beta2, eps } => (beta1, beta2, eps, 0.0),
            OptimizerConfig::AdamW { beta1, beta2, eps, weight_decay } => (beta1, beta2, eps, weight_decay),
        };
        let bias1 = 1.0 - beta1.powi(t as i32);
        let bias2 = 1.0 - beta2.powi(t as i32);
        Self {
            b1: beta1 as f32,
            one_m_b1: (1.0 - beta1) as f32,
            b2: beta2 as f32,
            one_m_b2: (1.0 - beta2) as f32,
            bias2: bias2 as f32,
            eps: eps as f32,
            step_size: (lr / bias1) as f32,
            decay: (wd != 0.0).then_some((1.0 - lr * wd) as f32),
            grad_scale: (grad_scale != 1.0).then_some(grad_scale as f32),
            ema: ema_decay.map(|d| (1.0 - d) as f32),
        }
    }
}

const BLOCK: usize = 256;
/// Values in one slice of the update (a multiple of [`BLOCK`]).
const SLICE: usize = 64 * BLOCK;

#[inline(always)]
fn sumsq_body<M: MulAdd>(grad: &[f32], start: usize, len: usize) -> f64 {
    let mut total = 0f64;
    let mut i = 0;
    while i < len {
        let b = BLOCK.min(len - i);
        let t = &grad[start + i..start + i + b];
        let mut lanes = [0f32; 16];
        let (c, r) = t.split_at(b / 16 * 16);
        for ch in c.chunks_exact(16) {
            for k in 0..16 {
                lanes[k] = M::mul_add(ch[k], ch[k], lanes[k]);
            }
        }
        let mut s: f64 = r.iter().map(|v| (*v as f64) * (*v as f64)).sum();
        for l in lanes {
            s += l as f64;
        }
        total += s;
        i += b;
    }
    total
}

#[inline(always)]
fn adam_body<M: MulAdd>(
    grad: &[f32],
    start: usize,
    p: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    ema: &mut [f32],
    s: AdamStep,
) {
    let mut tmp = [0f32; BLOCK];
    let mut i = 0;
    let len = p.len();
    while i < len {
        let b = BLOCK.min(len - i);
        let g = &mut tmp[..b];
        g.copy_from_slice(&grad[start + i..start + i + b]);
        if let Some(c) = s.grad_scale {
            g.iter_mut().for_each(|x| *x *= c);
        }
        let (pb, mb, vb) = (&mut p[i..i + b], &mut m[i..i + b], &mut v[i..i + b]);
        for k in 0..b {
            let gk = g[k];
            let mk = mb[k] * s.b1 + gk * s.one_m_b1;
            let vk = vb[k] * s.b2 + gk * gk * s.one_m_b2;
            mb[k] = mk;
            vb[k] = vk;
            let denom = (vk / s.bias2).sqrt() + s.eps;
            let update = mk / denom * s.step_size;
            let mut pk = pb[k];
            if let Some(d) = s.decay {
                pk *= d;
            }
            pb[k] = pk - update;
        }
        if let Some(one_m_d) = s.ema
            && !ema.is_empty()
        {
            for (e, pk) in ema[i..i + b].iter_mut().zip(pb.iter()) {
                *e += (*pk - *e) * one_m_d;
            }
        }
        i += b;
    }
}

kernel! {
    fn sumsq(grad: &[f32], start: usize, len: usize) -> f64 => sumsq_body
}
kernel! {
    fn adam(grad: &[f32], start: usize, p: &mut [f32], m: &mut [f32], v: &mut [f32], ema: &mut [f32], s: AdamStep) => adam_body
}

/// `0..len` in slices of [`SLICE`] values.
fn slices(len: usize) -> Vec<std::ops::Range<usize>> {
    (0..len.div_ceil(SLICE)).map(|i| i * SLICE..((i + 1) * SLICE).min(len)).collect()
}

/// The global L2 norm of `grad`, summed per slice then in slice order.
pub(crate) fn grad_norm(isa: Isa, threads: &Threads, grad: &[f32]) -> f64 {
    let len = grad.len();
    let mut jobs: Vec<(std::ops::Range<usize>, f64)> = slices(len).into_iter().map(|r| (r, 0.0)).collect();
    threads.for_each_dynamic(&mut jobs, |_, (r, out)| *out = sumsq(isa, grad, r.start, r.len()));
    jobs.iter().map(|j| j.1).sum::<f64>().sqrt()
}

/// One Adam step over every parameter, threads over fixed slices.
#[allow(clippy::too_many_arguments)]
pub(crate) fn adam_update(
    isa: Isa,
    threads: &Threads,
    grad: &[f32],
    params: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    ema: Option<&mut [f32]>,
    step: AdamStep,
) {
    let len = params.len();
    let ranges = slices(len);
    let mut empty: [f32; 0] = [];
    let mut ema = ema;
    let mut jobs = Vec::with_capacity(ranges.len());
    let (mut p, mut mm, mut vv) = (params, m, v);
    let mut e: &mut [f32] = match ema.take() {
        Some(e) => e,
        None => &mut empty,
    };
    let has_ema = !e.is_empty();
    for r in &ranges {
        let n = r.len();
        let (p0, p1) = p.split_at_mut(n);
        let (m0, m1) = mm.split_at_mut(n);
        let (v0, v1) = vv.split_at_mut(n);
        let (e0, e1) = if has_ema { e.split_at_mut(n) } else { (&mut [][..], &mut [][..]) };
        jobs.push((r.start, p0, m0, v0, e0));
        p = p1;
        mm = m1;
        vv = v1;
        e = e1;
    }
    threads.for_each_dynamic(&mut jobs, |_, (start, p, m, v, e)| adam(isa, grad, *start, p, m, v, e, step));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_average_of_unchanged_weights_stays_exactly_them() {
        // Zero gradients leave Adam's weights where they are; the average must then stay on them
        // bit for bit (d·e + (1 − d)·p with d, 1 − d rounded to f32 drifts to (1 + 1.3e-5)·p).
        let n = 1000;
        let p0: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let (mut p, mut m, mut v, mut e) = (p0.clone(), vec![0.0; n], vec![0.0; n], p0.clone());
        let g = vec![0.0f32; n];
        let threads = Threads::new(2);
        for t in 1..=3000 {
            let step = AdamStep::new(OptimizerConfig::default(), t, 1e-3, 1.0, Some(0.999));
            adam_update(Isa::detect(), &threads, &g, &mut p, &mut m, &mut v, Some(&mut e), step);
        }
        assert_eq!(p, p0);
        assert_eq!(e, p0);
        // One step with weights moved by δ moves the average by (1 − d)·δ.
        let moved: Vec<f32> = p0.iter().map(|x| x + 1.0).collect();
        let mut q = moved.clone();
        let step = AdamStep::new(OptimizerConfig::default(), 3001, 1e-3, 1.0, Some(0.999));
        adam_update(Isa::detect(), &threads, &g, &mut q, &mut m, &mut v, Some(&mut e), step);
        for (&ek, &x) in e.iter().zip(&p0) {
            assert!((ek as f64 - (x as f64 + 1e-3)).abs() < 1e-6, "{ek} vs {}", x as f64 + 1e-3);
        }
    }
}
