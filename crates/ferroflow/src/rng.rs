//! Seeded random numbers. ferroflow never uses a global RNG: every random draw comes from an
//! explicit [`Rng`] so that the same seed gives the same numbers, bit for bit, on every run.

use rand::SeedableRng;

/// The random number generator used everywhere (ChaCha8: portable and reproducible).
pub type Rng = rand_chacha::ChaCha8Rng;

/// A generator seeded from `seed`.
pub fn seeded(seed: u64) -> Rng {
    Rng::seed_from_u64(seed)
}

/// Fills a vector with `n` independent standard normal draws (f32).
pub fn normal_vec(rng: &mut Rng, n: usize) -> Vec<f32> {
    use rand_distr::{Distribution, StandardNormal};
    (0..n).map(|_| StandardNormal.sample(rng)).collect()
}
