//! The 2D worlds. TEMP stub.
use super::{Labeled, Points};
use rand::Rng as _;

/// A named 2D distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum World {
    /// moons.
    Moons,
}
impl World {
    /// n classes.
    pub fn n_classes(&self) -> u32 {
        2
    }
    /// sample.
    pub fn sample_labeled(&self, n: usize, rng: &mut crate::rng::Rng) -> Labeled {
        let mut data = Vec::with_capacity(2 * n);
        let mut labels = Vec::with_capacity(n);
        for _ in 0..n {
            let upper = rng.random::<bool>();
            let th = rng.random::<f64>() * std::f64::consts::PI;
            let (x, y) = if upper { (th.cos(), th.sin()) } else { (1.0 - th.cos(), 0.5 - th.sin()) };
            let nz = crate::rng::normal_vec(rng, 2);
            data.push(((x + 0.1 * nz[0] as f64) * 3.0 - 1.0) as f32);
            data.push(((y + 0.1 * nz[1] as f64) * 3.0 - 1.0) as f32);
            labels.push(!upper as u32);
        }
        Labeled { points: Points { data, n, dim: 2 }, labels, n_classes: 2 }
    }
}
