//! Where training samples come from: the source p₀ and the data p₁ are both [`PointSource`]s.

use rand::Rng as _;

use super::{Labeled, Points, World, WorldConfig};
use crate::rng::Rng;

/// Something that draws batches of points (and, for labelled data, their classes).
pub trait PointSource: Send {
    /// The dimension of the points.
    fn dim(&self) -> usize;
    /// The number of classes, for labelled data.
    fn n_classes(&self) -> Option<u32> {
        None
    }
    /// Draws `n` points (with labels if the source has classes).
    fn sample(&mut self, n: usize, rng: &mut Rng) -> (Points, Option<Vec<u32>>);
}

/// N(0, std²·I) in `dim` dimensions: the usual source.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianSource {
    /// Dimension.
    pub dim: usize,
    /// Standard deviation of each coordinate.
    pub std: f64,
}

impl PointSource for GaussianSource {
    fn dim(&self) -> usize {
        self.dim
    }
    fn sample(&mut self, n: usize, rng: &mut Rng) -> (Points, Option<Vec<u32>>) {
        let mut data = crate::rng::normal_vec(rng, n * self.dim);
        if self.std != 1.0 {
            let s = self.std as f32;
            data.iter_mut().for_each(|v| *v *= s);
        }
        (Points { data, n, dim: self.dim }, None)
    }
}

impl PointSource for World {
    fn dim(&self) -> usize {
        2
    }
    fn n_classes(&self) -> Option<u32> {
        Some(World::n_classes(self))
    }
    fn sample(&mut self, n: usize, rng: &mut Rng) -> (Points, Option<Vec<u32>>) {
        let l = self.sample_labeled(n, rng);
        (l.points, Some(l.labels))
    }
}

impl PointSource for WorldConfig {
    fn dim(&self) -> usize {
        2
    }
    fn n_classes(&self) -> Option<u32> {
        Some(WorldConfig::n_classes(self))
    }
    fn sample(&mut self, n: usize, rng: &mut Rng) -> (Points, Option<Vec<u32>>) {
        let l = self.sample_labeled(n, rng);
        (l.points, Some(l.labels))
    }
}

/// A finite data set, drawn from uniformly with replacement (e.g. a CSV or `.npy` file).
#[derive(Debug, Clone, PartialEq)]
pub struct EmpiricalSource {
    /// The points.
    pub points: Points,
    /// Their labels, if any, with the number of classes.
    pub labels: Option<(Vec<u32>, u32)>,
}

impl EmpiricalSource {
    /// A source over `points` without labels.
    pub fn new(points: Points) -> Self {
        Self { points, labels: None }
    }
}

impl From<Labeled> for EmpiricalSource {
    fn from(l: Labeled) -> Self {
        Self { points: l.points, labels: Some((l.labels, l.n_classes)) }
    }
}

impl PointSource for EmpiricalSource {
    fn dim(&self) -> usize {
        self.points.dim
    }
    fn n_classes(&self) -> Option<u32> {
        self.labels.as_ref().map(|l| l.1)
    }
    fn sample(&mut self, n: usize, rng: &mut Rng) -> (Points, Option<Vec<u32>>) {
        let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..self.points.n)).collect();
        let labels = self.labels.as_ref().map(|(l, _)| idx.iter().map(|&i| l[i]).collect());
        (self.points.select(&idx), labels)
    }
}
