//! Heat maps of a scalar on a regular 2D grid (e.g. a log density), with a colour bar.

use std::path::Path;

use plotters::prelude::*;

use super::chart::{self, Chart};
use super::output::{Area, DrawResult, require_png, with_path, write_png};
use super::validate::check_points;
use super::{PlotError, PlotErrorKind, PlotOptions, font::FAMILY, range, viridis};
use crate::data::Points;

/// Values on a regular grid of `nx × ny` cells covering `x_range × y_range`.
///
/// Cell `(i, j)` spans x ∈ [x₀ + i·Δx, x₀ + (i+1)·Δx], y ∈ [y₀ + j·Δy, y₀ + (j+1)·Δy] with
/// Δx = (x₁ − x₀)/nx, Δy = (y₁ − y₀)/ny, and holds `values[j * nx + i]` (rows run along x,
/// bottom row first). Values are finite or −∞ (a zero density, drawn in the lowest colour).
///
/// # Shapes
/// `values: [ny, nx]`, row-major
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// `nx * ny` values, `values[j * nx + i]` for cell column i, row j.
    pub values: Vec<f64>,
    /// Cells along x.
    pub nx: usize,
    /// Cells along y.
    pub ny: usize,
    /// `(x₀, x₁)`, `x₀ < x₁`.
    pub x_range: (f64, f64),
    /// `(y₀, y₁)`, `y₀ < y₁`.
    pub y_range: (f64, f64),
}

impl Grid {
    /// The centre of cell `(i, j)`.
    ///
    /// ```
    /// use ferroflow::plot::Grid;
    /// let g = Grid { values: vec![0.0; 8], nx: 4, ny: 2, x_range: (0.0, 4.0), y_range: (-1.0, 1.0) };
    /// assert_eq!(g.cell_centre(0, 0), (0.5, -0.5));
    /// assert_eq!(g.cell_centre(3, 1), (3.5, 0.5));
    /// ```
    pub fn cell_centre(&self, i: usize, j: usize) -> (f64, f64) {
        let dx = (self.x_range.1 - self.x_range.0) / self.nx as f64;
        let dy = (self.y_range.1 - self.y_range.0) / self.ny as f64;
        (self.x_range.0 + (i as f64 + 0.5) * dx, self.y_range.0 + (j as f64 + 0.5) * dy)
    }

    /// Checks the shape, the ranges and the values.
    ///
    /// # Errors
    /// [`PlotErrorKind::GridShape`], [`PlotErrorKind::Option`] for a bad range,
    /// [`PlotErrorKind::GridValue`] for NaN or +∞.
    pub fn validate(&self) -> Result<(), PlotErrorKind> {
        if self.nx == 0 || self.ny == 0 || self.values.len() != self.nx * self.ny {
            return Err(PlotErrorKind::GridShape { nx: self.nx, ny: self.ny, len: self.values.len() });
        }
        for (name, (lo, hi)) in [("grid.x_range", self.x_range), ("grid.y_range", self.y_range)] {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(PlotErrorKind::Option {
                    name,
                    value: format!("({lo}, {hi})"),
                    expected: "finite (lo, hi) with lo < hi",
                });
            }
        }
        if let Some(index) = self.values.iter().position(|v| v.is_nan() || *v == f64::INFINITY) {
            return Err(PlotErrorKind::GridValue { index, value: self.values[index] });
        }
        Ok(())
    }

    /// The colour range: from the 2 % quantile to the maximum of the finite values (a log
    /// density's long low tail would otherwise leave one colour for everything of interest).
    fn auto_value_range(&self) -> (f64, f64) {
        let finite: Vec<f64> = self.values.iter().copied().filter(|v| v.is_finite()).collect();
        if finite.is_empty() {
            return (-1.0, 0.0);
        }
        let (lo, _) = range::robust_range(&finite, 0.02, 0.0);
        let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if hi > lo { (lo, hi) } else { (hi - 1.0, hi + 1.0) }
    }
}

/// Width of the colour bar with its labels, in pixels.
pub(crate) const COLOUR_BAR: u32 = 96;

/// Writes a heat map of `grid` to `path` (`.png`) in the viridis colour map with a colour bar
/// labelled `opts.value_label`, optionally with `overlay` points (white discs) on top.
///
/// The axes span the grid (`opts.range` is not used); the colours span `opts.value_range` or,
/// by default, the 2 % quantile to the maximum of the values (lower values take the lowest
/// colour).
///
/// # Shapes
/// `grid.values: [ny, nx]`; `overlay: [n, 2]`
///
/// # Errors
/// [`PlotError`] naming `path`: a bad grid (see [`Grid::validate`]), an overlay that is not
/// 2D, empty or non-finite, a bad option or extension, or a failed write.
pub fn heatmap(path: &Path, grid: &Grid, overlay: Option<&Points>, opts: &PlotOptions) -> Result<(), PlotError> {
    with_path(path, || {
        opts.validate()?;
        require_png(path)?;
        check(grid, overlay)?;
        write_png(path, (opts.width + COLOUR_BAR, opts.height), |root| {
            draw(root, opts.title.as_deref(), 22, grid, overlay, opts)
        })
    })
}

/// A valid grid and overlay.
pub(crate) fn check(grid: &Grid, overlay: Option<&Points>) -> Result<(), PlotErrorKind> {
    grid.validate()?;
    if let Some(o) = overlay {
        check_points(|| "the overlay".into(), o)?;
    }
    Ok(())
}

/// Draws the heat map and its colour bar on `area`.
pub(crate) fn draw(
    area: &Area,
    title: Option<&str>,
    title_size: u32,
    grid: &Grid,
    overlay: Option<&Points>,
    opts: &PlotOptions,
) -> DrawResult {
    let body = chart::titled(area, title, title_size)?;
    // With equal aspect, shrink the plot (not widen the range) so the grid fills it: pad the
    // picture left/right or top/bottom, keeping the colour bar beside the plot.
    let (w, h) = body.dim_in_pixel();
    let body = if opts.equal_aspect {
        let (pw, ph) = chart::plot_pixels((w.saturating_sub(COLOUR_BAR), h));
        let aspect = (grid.x_range.1 - grid.x_range.0) / (grid.y_range.1 - grid.y_range.0);
        let (pw, ph) = (pw.max(1) as f64, ph.max(1) as f64);
        let (ex, ey) = if pw / ph > aspect {
            (((pw - ph * aspect) / 2.0) as u32, 0)
        } else {
            (0, ((ph - pw / aspect) / 2.0) as u32)
        };
        body.margin(ey, ey, ex, ex)
    } else {
        body
    };
    let (w, _) = body.dim_in_pixel();
    let (main, bar) = body.split_horizontally(w.saturating_sub(COLOUR_BAR));
    let (lo, hi) = opts.value_range.unwrap_or_else(|| grid.auto_value_range());
    let colour = |v: f64| viridis(if v == f64::NEG_INFINITY { 0.0 } else { (v - lo) / (hi - lo) }).rgb();

    let mut c = chart::build(&main, grid.x_range, grid.y_range, opts)?;
    let dx = (grid.x_range.1 - grid.x_range.0) / grid.nx as f64;
    let dy = (grid.y_range.1 - grid.y_range.0) / grid.ny as f64;
    let (x0, y0) = (grid.x_range.0, grid.y_range.0);
    c.draw_series((0..grid.ny).flat_map(|j| {
        (0..grid.nx).map(move |i| {
            let v = grid.values[j * grid.nx + i];
            let (xa, ya) = (x0 + i as f64 * dx, y0 + j as f64 * dy);
            Rectangle::new([(xa, ya), (xa + dx, ya + dy)], colour(v).filled())
        })
    }))?;
    if let Some(o) = overlay {
        draw_overlay(&mut c, o, opts)?;
    }
    chart::border(&mut c)?;
    if overlay.is_some() {
        chart::legend(&mut c, &[], opts)?;
    }
    colour_bar(&bar, (lo, hi), opts)
}

/// White discs with a dark legend outline.
fn draw_overlay<'a, 'b: 'a>(c: &mut Chart<'a, 'b>, o: &Points, opts: &PlotOptions) -> DrawResult {
    let r = opts.radius_for(o.n);
    let style = WHITE.mix(opts.alpha_for(o.n).max(0.5)).filled();
    c.draw_series(o.data.chunks_exact(2).map(|p| Circle::new((p[0] as f64, p[1] as f64), r, style)))?
        .label("samples")
        .legend(|(x, y)| {
            EmptyElement::at((x + 8, y))
                + Circle::new((0, 0), 5, WHITE.filled())
                + Circle::new((0, 0), 5, BLACK.stroke_width(1))
        });
    Ok(())
}

/// A vertical colour bar for values `lo..hi`, aligned with the plot area beside it.
fn colour_bar(area: &Area, (lo, hi): (f64, f64), opts: &PlotOptions) -> DrawResult {
    let mut c = ChartBuilder::on(area)
        .margin_top(chart::MARGIN)
        .margin_bottom(chart::MARGIN + chart::X_LABEL_AREA)
        .margin_left(8)
        .margin_right(4)
        .right_y_label_area_size(COLOUR_BAR - 8 - 4 - 22)
        .build_cartesian_2d(0.0..1.0, lo..hi)?;
    const STEPS: usize = 256;
    let dv = (hi - lo) / STEPS as f64;
    c.draw_series((0..STEPS).map(|k| {
        let v = lo + k as f64 * dv;
        Rectangle::new([(0.0, v), (1.0, v + dv)], viridis((k as f64 + 0.5) / STEPS as f64).rgb().filled())
    }))?;
    c.configure_mesh()
        .disable_mesh()
        .disable_x_axis()
        .y_labels(6)
        .y_label_formatter(&chart::tick)
        .label_style((FAMILY, 14).into_font().color(&chart::AXIS))
        .axis_style(chart::AXIS)
        .y_desc(opts.value_label.as_str())
        .axis_desc_style((FAMILY, 16).into_font().color(&chart::AXIS))
        .draw()?;
    c.plotting_area().draw(&Rectangle::new([(0.0, lo), (1.0, hi)], chart::AXIS.stroke_width(1)))?;
    Ok(())
}
