//! The log-density of a 2D flow on a regular grid, for heat maps (`ferroflow plot --kind
//! density`) and for checking that the density integrates to one.

use burn::tensor::backend::Backend;

use super::loglik::{LikelihoodConfig, log_likelihood};
use crate::data::Points;
use crate::error::{ConfigError, Error};
use crate::model::JvpField;
use crate::plot::Grid;

/// log p₁ of a 2D flow at the centres of an `nx × ny` grid over `x_range × y_range`.
///
/// # Formula
/// values[j·nx + i] = log p₁(c_ij), c_ij the centre of cell (i, j) ([`Grid::cell_centre`]),
/// by [`log_likelihood`] (t = 1 data back to t = 0 noise), `batch` points a solve. Nats.
///
/// # Shapes
/// the field's dimension must be 2; the result holds `nx · ny` values.
///
/// # Errors
/// [`Error::Shape`] if the field is not 2D; [`Error::Config`] for an empty grid, a zero batch
/// or a range that is not finite with lo < hi; the errors of [`log_likelihood`].
///
/// ```
/// use ferroflow::backend::Cpu64;
/// use ferroflow::likelihood::{LikelihoodConfig, density::{grid_mass, log_density_grid}};
/// use ferroflow::model::GaussianToGaussian;
/// use ferroflow::path::SchedulerConfig;
/// let g = GaussianToGaussian::new(SchedulerConfig::CondOt { sigma_min: 0.0 }, vec![0.5, 0.0], vec![0.5, 1.0]);
/// let grid = log_density_grid::<Cpu64, _>(&g, (-3.0, 4.0), (-6.0, 6.0), 28, 48, &LikelihoodConfig::default(), 512, &Default::default()).unwrap();
/// // N((0.5, 0), diag(0.5², 1)) has all but 1e-8 of its mass in this box (≥ 6σ per side), and
/// // the midpoint rule on a Gaussian converges faster than any power of h; what is left is
/// // Dopri5's 1e-5 tolerance and f32 centres.
/// assert!((grid_mass(&grid) - 1.0).abs() < 1e-3, "{}", grid_mass(&grid));
/// ```
#[allow(clippy::too_many_arguments)]
pub fn log_density_grid<B: Backend, F: JvpField<B> + ?Sized>(
    field: &F,
    x_range: (f64, f64),
    y_range: (f64, f64),
    nx: usize,
    ny: usize,
    config: &LikelihoodConfig,
    batch: usize,
    device: &B::Device,
) -> Result<Grid, Error> {
    if field.dim() != 2 {
        return Err(Error::Shape {
            op: "log_density_grid",
            expected: "a 2D field".into(),
            got: format!("dimension {}", field.dim()),
        });
    }
    for (name, n) in [("density.nx", nx), ("density.ny", ny), ("density.batch", batch)] {
        if n == 0 {
            return Err(ConfigError::OutOfRange { name, value: "0".into(), expected: ">= 1" }.into());
        }
    }
    for (name, (lo, hi)) in [("density.x_range", x_range), ("density.y_range", y_range)] {
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(ConfigError::OutOfRange {
                name,
                value: format!("({lo}, {hi})"),
                expected: "finite (lo, hi) with lo < hi",
            }
            .into());
        }
    }
    let mut grid = Grid { values: Vec::with_capacity(nx * ny), nx, ny, x_range, y_range };
    let centres: Vec<f32> = (0..nx * ny)
        .flat_map(|k| {
            let (x, y) = grid.cell_centre(k % nx, k / nx);
            [x as f32, y as f32]
        })
        .collect();
    for chunk in centres.chunks(2 * batch) {
        let pts = Points { data: chunk.to_vec(), n: chunk.len() / 2, dim: 2 };
        let ll = log_likelihood(field, pts.to_tensor::<B>(device), None, config)?;
        grid.values.extend(ll.log_p);
    }
    Ok(grid)
}

/// The mass Σ exp(v)·Δx·Δy of a log-density grid (the midpoint rule for ∫ p over its box).
///
/// ```
/// use ferroflow::likelihood::density::grid_mass;
/// use ferroflow::plot::Grid;
/// // Uniform density 1/4 on [0, 2]²: mass 1.
/// let g = Grid { values: vec![(0.25f64).ln(); 4], nx: 2, ny: 2, x_range: (0.0, 2.0), y_range: (0.0, 2.0) };
/// assert!((grid_mass(&g) - 1.0).abs() < 1e-12);
/// ```
pub fn grid_mass(grid: &Grid) -> f64 {
    let dx = (grid.x_range.1 - grid.x_range.0) / grid.nx as f64;
    let dy = (grid.y_range.1 - grid.y_range.0) / grid.ny as f64;
    grid.values.iter().map(|v| v.exp()).sum::<f64>() * dx * dy
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu64;
    use crate::model::GaussianToGaussian;
    use crate::path::SchedulerConfig;
    use crate::solver::SolverConfig;

    #[test]
    fn density_grid_equals_the_analytic_gaussian_cell_by_cell_and_in_order() {
        // A non-isotropic, off-centre Gaussian: swapping i and j or the cell order would move
        // the maximum away from the mean and break the per-cell comparison.
        let g = GaussianToGaussian::new(SchedulerConfig::CondOt { sigma_min: 0.0 }, vec![1.0, -0.5], vec![0.4, 1.2]);
        let cfg = LikelihoodConfig {
            solver: SolverConfig::Dopri5 { atol: 1e-9, rtol: 1e-9, max_steps: 10_000 },
            ..Default::default()
        };
        // batch 7 does not divide 6·5 = 30: the last solve holds 2 points.
        let grid =
            log_density_grid::<Cpu64, _>(&g, (-1.0, 3.0), (-3.0, 2.0), 6, 5, &cfg, 7, &Default::default()).unwrap();
        assert_eq!(grid.values.len(), 30);
        for j in 0..5 {
            for i in 0..6 {
                let (x, y) = grid.cell_centre(i, j);
                // The centres are rounded to f32 before scoring.
                let exact = g.log_density(&[x as f32 as f64, y as f32 as f64], 1.0);
                let got = grid.values[j * 6 + i];
                // Dopri5 at 1e-9 on a linear ODE: ≪ 1e-4 (as the log-likelihood test).
                assert!((got - exact).abs() < 1e-4, "cell ({i}, {j}): {got} vs {exact}");
            }
        }
    }

    #[test]
    fn density_grid_rejects_a_field_that_is_not_2d_and_an_empty_grid() {
        let g3 = GaussianToGaussian::new(SchedulerConfig::Cosine, vec![0.0; 3], vec![1.0; 3]);
        let cfg = LikelihoodConfig::default();
        let dev = Default::default();
        let e = log_density_grid::<Cpu64, _>(&g3, (0.0, 1.0), (0.0, 1.0), 2, 2, &cfg, 8, &dev).unwrap_err();
        assert_eq!(e.to_string(), "log_density_grid: expected a 2D field, got dimension 3");
        let g2 = GaussianToGaussian::new(SchedulerConfig::Cosine, vec![0.0; 2], vec![1.0; 2]);
        let e = log_density_grid::<Cpu64, _>(&g2, (0.0, 1.0), (0.0, 1.0), 0, 2, &cfg, 8, &dev).unwrap_err();
        assert!(e.to_string().contains("density.nx = 0"), "{e}");
        let e = log_density_grid::<Cpu64, _>(&g2, (1.0, 1.0), (0.0, 1.0), 2, 2, &cfg, 8, &dev).unwrap_err();
        assert!(e.to_string().contains("density.x_range"), "{e}");
    }
}
