//! Scatter plots of labelled point sets (e.g. model samples over data).

use std::path::Path;

use super::output::{Area, DrawResult, require_png, with_path, write_png};
use super::validate::check_points;
use super::{PlotError, PlotErrorKind, PlotOptions, Rgb, chart, range};
use crate::data::Points;

/// One point set of a scatter plot, drawn in one colour with one legend entry.
#[derive(Debug, Clone, Copy)]
pub struct Layer<'a> {
    /// The points, 2D.
    pub points: &'a Points,
    /// Legend label.
    pub label: &'a str,
    /// Colour of the points.
    pub color: Rgb,
}

/// Writes a scatter plot of `layers` (drawn in order, later on top) to `path` (`.png`), with
/// axes, a light grid, a legend and the options' title.
///
/// The range is `opts.range` over all layers (by default robust quantiles, so a few outliers
/// do not squash the plot); point size and opacity follow each layer's size.
///
/// # Shapes
/// each `layers[i].points: [n_i, 2]`
///
/// # Errors
/// [`PlotError`] naming `path`: a layer that is not 2D, empty or non-finite, no layers, a bad
/// option or extension, or a failed write.
pub fn scatter(path: &Path, layers: &[Layer], opts: &PlotOptions) -> Result<(), PlotError> {
    with_path(path, || {
        opts.validate()?;
        require_png(path)?;
        check_layers(layers)?;
        let sets: Vec<&Points> = layers.iter().map(|l| l.points).collect();
        let (x, y) = range::axis_ranges(&sets, opts.range);
        write_png(path, (opts.width, opts.height), |root| draw(root, opts.title.as_deref(), 22, layers, x, y, opts))
    })
}

/// At least one layer, each 2D, non-empty and finite.
pub(crate) fn check_layers(layers: &[Layer]) -> Result<(), PlotErrorKind> {
    if layers.is_empty() {
        return Err(PlotErrorKind::Empty { what: "the list of layers".into() });
    }
    for l in layers {
        check_points(|| format!("layer {:?}", l.label), l.points)?;
    }
    Ok(())
}

/// Draws a scatter plot of `layers` on `area` with ranges `x`, `y`.
pub(crate) fn draw(
    area: &Area,
    title: Option<&str>,
    title_size: u32,
    layers: &[Layer],
    x: (f64, f64),
    y: (f64, f64),
    opts: &PlotOptions,
) -> DrawResult {
    let body = chart::titled(area, title, title_size)?;
    let mut c = chart::build(&body, x, y, opts)?;
    for l in layers {
        chart::draw_points(&mut c, l.points, l.color, l.points.n, Some(l.label), 1.0, opts)?;
    }
    chart::border(&mut c)?;
    let sets: Vec<&Points> = layers.iter().map(|l| l.points).collect();
    chart::legend(&mut c, &sets, opts)
}
