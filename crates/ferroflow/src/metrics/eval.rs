use serde::{Deserialize, Serialize};

use super::{median_bandwidths, mmd, w2};
use crate::data::{DataError, Points, WorldConfig};
use crate::error::ConfigError;
use crate::rng::seeded;

/// What samples are compared with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reference<'a> {
    /// A 2D world: every seed draws fresh i.i.d. reference points.
    World(WorldConfig),
    /// A fixed data set (e.g. a held-out test file).
    Data(&'a Points),
}

impl From<crate::data::World> for Reference<'_> {
    fn from(w: crate::data::World) -> Self {
        Reference::World(w.config())
    }
}

/// Settings of [`evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Number of reference draws K averaged over (≥ 1).
    pub seeds: usize,
    /// Seed of the first reference draw; draw k uses `seed + k`.
    pub seed: u64,
    /// Whether to compute MMD (O(n²) kernel sums: about a second at n = 2,000 per seed).
    pub mmd: bool,
}

impl Default for EvalConfig {
    /// K = 5 seeds from seed 0, with MMD (the protocol of `shared/MEASURING.md` § Quality).
    fn default() -> Self {
        Self { seeds: 5, seed: 0, mmd: true }
    }
}

/// How close samples are to a reference: what `ferroflow eval` prints, as JSON with keys
/// `n, w2, floor, ratio, mmd` (`null` where not computed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Number of samples (and of reference points in each comparison).
    pub n: usize,
    /// Mean over seeds of W2(samples, reference draw of n points).
    pub w2: f64,
    /// Mean over seeds of W2 between two independent reference draws of n points: what a perfect
    /// sampler would score. `None` when the reference is a data set too small for two disjoint
    /// draws.
    pub floor: Option<f64>,
    /// `w2 / floor`: ≈ 1 for a perfect sampler, ≫ 1 for a poor one.
    pub ratio: Option<f64>,
    /// Mean over seeds of MMD²ᵤ(samples, reference draw) ([`mmd`], bandwidths
    /// [`median_bandwidths`] of the first reference draw); `None` if not asked for or n < 2.
    pub mmd: Option<f64>,
}

/// Compares samples with a reference: W2 next to its two-sample floor, and MMD.
///
/// # Formula
/// With reference draws r_k, r′_k (k = 1..K, each of n points, independent):
/// w2 = (1/K) Σₖ W2(samples, r_k), floor = (1/K) Σₖ W2(r_k, r′_k), ratio = w2 / floor,
/// mmd = (1/K) Σₖ MMD²ᵤ(samples, r_k). W2 at small n is biased upwards even for a perfect
/// sampler; the floor measures that bias at the same n, so the ratio is comparable across sizes.
///
/// - [`Reference::World`]: r_k, r′_k are fresh i.i.d. draws (seed `cfg.seed + k`).
/// - [`Reference::Data`] with exactly n points: W2 and MMD between the two sets as given (no
///   subsampling); floor and ratio are `None`.
/// - [`Reference::Data`] with m > n points: r_k is a subset of n rows drawn without
///   replacement; if m ≥ 2n, r′_k is a disjoint subset and gives the floor, else floor and
///   ratio are `None`.
///
/// # Shapes
/// `samples: [n, dim]`, n ≥ 1; a world needs dim = 2, a data set the same dim.
///
/// # Errors
/// [`ConfigError`] if `cfg.seeds` is 0, the world's parameters are invalid, or a data set has
/// fewer points than the samples; [`crate::Error::Shape`] if the dimensions differ or there are
/// no samples; [`DataError::NonFinite`] if a sample is NaN or infinite.
pub fn evaluate(samples: &Points, reference: &Reference<'_>, cfg: &EvalConfig) -> crate::Result<EvalReport> {
    if cfg.seeds == 0 {
        return Err(ConfigError::OutOfRange { name: "seeds", value: "0".into(), expected: "≥ 1" }.into());
    }
    let (n, dim) = (samples.n, samples.dim);
    let ref_dim = match reference {
        Reference::World(_) => 2,
        Reference::Data(d) => d.dim,
    };
    if n == 0 || dim != ref_dim || samples.data.len() != n * dim {
        return Err(crate::Error::Shape {
            op: "evaluate",
            expected: format!("n ≥ 1 samples of dimension {ref_dim} (the reference's)"),
            got: format!("{n}×{dim}"),
        });
    }
    if let Some(k) = samples.data.iter().position(|v| !v.is_finite()) {
        return Err(DataError::NonFinite {
            path: "<samples>".into(),
            at: format!("row {}, column {}", k / dim + 1, k % dim + 1),
            value: f64::from(samples.data[k]),
        }
        .into());
    }
    let with_mmd = cfg.mmd && n >= 2;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let report = |w2s: &[f64], floors: Option<Vec<f64>>, mmds: &[f64]| {
        let w2 = mean(w2s);
        let floor = floors.map(|f| mean(&f));
        EvalReport {
            n,
            w2,
            floor,
            ratio: floor.filter(|f| *f > 0.0).map(|f| w2 / f),
            mmd: with_mmd.then(|| mean(mmds)),
        }
    };
    match *reference {
        Reference::World(world) => {
            world.validate()?;
            let (mut w2s, mut floors, mut mmds, mut bw) = (vec![], vec![], vec![], None);
            for k in 0..cfg.seeds {
                let mut rng = seeded(cfg.seed.wrapping_add(k as u64));
                let r = world.sample_points(n, &mut rng);
                let r2 = world.sample_points(n, &mut rng);
                w2s.push(w2(samples, &r)?);
                floors.push(w2(&r, &r2)?);
                if with_mmd {
                    let bw = bw.get_or_insert_with(|| median_bandwidths(&r));
                    mmds.push(mmd(samples, &r, bw)?);
                }
            }
            Ok(report(&w2s, Some(floors), &mmds))
        }
        Reference::Data(data) if data.n == n => {
            let m = if with_mmd { vec![mmd(samples, data, &median_bandwidths(data))?] } else { vec![] };
            Ok(report(&[w2(samples, data)?], None, &m))
        }
        Reference::Data(data) if data.n > n => {
            let two = data.n >= 2 * n;
            let (mut w2s, mut floors, mut mmds, mut bw) = (vec![], vec![], vec![], None);
            for k in 0..cfg.seeds {
                let mut rng = seeded(cfg.seed.wrapping_add(k as u64));
                let idx = rand::seq::index::sample(&mut rng, data.n, if two { 2 * n } else { n }).into_vec();
                let r = data.select(&idx[..n]);
                w2s.push(w2(samples, &r)?);
                if two {
                    floors.push(w2(&r, &data.select(&idx[n..]))?);
                }
                if with_mmd {
                    let bw = bw.get_or_insert_with(|| median_bandwidths(&r));
                    mmds.push(mmd(samples, &r, bw)?);
                }
            }
            Ok(report(&w2s, two.then_some(floors), &mmds))
        }
        Reference::Data(data) => Err(ConfigError::Inconsistent(format!(
            "the reference data set has {} points, fewer than the {n} samples; evaluate at most {} samples",
            data.n, data.n
        ))
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::World;

    #[test]
    fn exact_size_data_set_gives_the_plain_w2_and_no_floor() {
        let a = Points::new(vec![0.0, 1.0], 2, 1).unwrap();
        let b = Points::new(vec![3.0, 1.0], 2, 1).unwrap();
        let r = evaluate(&a, &Reference::Data(&b), &EvalConfig::default()).unwrap();
        assert!((r.w2 - 2.5f64.sqrt()).abs() < 1e-12);
        assert_eq!((r.floor, r.ratio), (None, None));
        let json = serde_json::to_string(&r).unwrap();
        assert!(
            json.starts_with("{\"n\":2,\"w2\":") && json.contains("\"floor\":null,\"ratio\":null,\"mmd\":"),
            "{json}"
        );
    }

    #[test]
    fn evaluate_rejects_bad_inputs() {
        let s = World::Moons.sample_points(10, &mut seeded(0));
        let small = s.head(5);
        let cfg = EvalConfig::default();
        assert!(matches!(evaluate(&s, &Reference::Data(&small), &cfg), Err(crate::Error::Config(_))));
        assert!(evaluate(&s, &World::Moons.into(), &EvalConfig { seeds: 0, ..cfg }).is_err());
        let three_d = Points::new(vec![0.0; 6], 2, 3).unwrap();
        assert!(matches!(evaluate(&three_d, &World::Moons.into(), &cfg), Err(crate::Error::Shape { .. })));
        let mut nan = s.clone();
        nan.data[3] = f32::NAN;
        assert!(matches!(evaluate(&nan, &World::Moons.into(), &cfg), Err(crate::Error::Data(_))));
    }

    #[test]
    fn a_data_set_smaller_than_twice_the_samples_gives_no_floor() {
        let data = World::Gaussian.sample_points(30, &mut seeded(1));
        let s = World::Gaussian.sample_points(20, &mut seeded(2));
        let cfg = EvalConfig { seeds: 2, seed: 0, mmd: false };
        let r = evaluate(&s, &Reference::Data(&data), &cfg).unwrap();
        assert_eq!((r.floor, r.ratio, r.mmd), (None, None, None));
        let big = World::Gaussian.sample_points(40, &mut seeded(1));
        let r = evaluate(&s, &Reference::Data(&big), &cfg).unwrap();
        assert!(r.floor.is_some() && r.ratio.is_some());
    }
}
