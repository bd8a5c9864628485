//! Trajectories of a flow: paths from t = 0 to t = 1, with start and end points.

use std::path::Path;

use plotters::prelude::*;

use super::output::{Area, DrawResult, require_png, with_path, write_png};
use super::validate::{check_points, check_trajectory};
use super::{PlotError, PlotErrorKind, PlotOptions, Rgb, chart, range};
use crate::data::Points;

/// Colour of the faint paths.
const PATH: RGBColor = RGBColor(40, 40, 40);
/// Colour of background points (e.g. the data).
pub(crate) const BACKGROUND: Rgb = Rgb(185, 185, 185);
/// Colour of the start points (t = 0, source).
pub(crate) const START: Rgb = Rgb::ORANGE;
/// Colour of the end points (t = 1, samples).
pub(crate) const END: Rgb = Rgb::BLUE;

/// Writes a picture of the trajectories `traj` to `path` (`.png`): at most `opts.max_paths`
/// paths (evenly spaced indices) as faint polylines through every recorded time, over all
/// start points (t = 0) in orange and under all end points (last frame, t = 1) in blue, over
/// optional `background` points (e.g. the data) in light grey. Straight, non-crossing paths (an OT
/// coupling) and curved, crossing ones (independent coupling) are told apart at a glance.
///
/// # Shapes
/// `traj: [times]` of `[n, 2]`, the same `n` in every frame; `background: [m, 2]`
///
/// # Errors
/// [`PlotError`] naming `path`: no frames, frames of different sizes, points that are not
/// 2D, empty or non-finite, a bad option or extension, or a failed write.
pub fn trajectories(
    path: &Path,
    traj: &[Points],
    background: Option<&Points>,
    opts: &PlotOptions,
) -> Result<(), PlotError> {
    with_path(path, || {
        opts.validate()?;
        require_png(path)?;
        check(traj, background)?;
        let (x, y) = range::axis_ranges(&sets(traj, background), opts.range);
        write_png(path, (opts.width, opts.height), |root| {
            draw(root, opts.title.as_deref(), 22, traj, background, x, y, opts)
        })
    })
}

/// A valid trajectory and background.
pub(crate) fn check(traj: &[Points], background: Option<&Points>) -> Result<(), PlotErrorKind> {
    check_trajectory(traj)?;
    if let Some(b) = background {
        check_points(|| "the background".into(), b)?;
    }
    Ok(())
}

/// Every point set shown (for ranges).
pub(crate) fn sets<'a>(traj: &'a [Points], background: Option<&'a Points>) -> Vec<&'a Points> {
    traj.iter().chain(background).collect()
}

/// `k` indices evenly spaced over `0..n` (all of them if `k >= n`).
pub(crate) fn spread(n: usize, k: usize) -> Vec<usize> {
    if k >= n {
        return (0..n).collect();
    }
    (0..k).map(|j| j * n / k).collect()
}

/// Draws the trajectories on `area` with ranges `x`, `y`.
#[allow(clippy::too_many_arguments)] // internal: the panel and the single picture share it
pub(crate) fn draw(
    area: &Area,
    title: Option<&str>,
    title_size: u32,
    traj: &[Points],
    background: Option<&Points>,
    x: (f64, f64),
    y: (f64, f64),
    opts: &PlotOptions,
) -> DrawResult {
    let body = chart::titled(area, title, title_size)?;
    let mut c = chart::build(&body, x, y, opts)?;
    let (start, end) = (&traj[0], &traj[traj.len() - 1]);
    if let Some(b) = background {
        chart::draw_points(&mut c, b, BACKGROUND, b.n, Some("data"), 0.6, opts)?;
    }
    let n = start.n;
    chart::draw_points(&mut c, start, START, n, Some("t = 0 (source)"), 1.0, opts)?;
    let idx = spread(n, opts.max_paths);
    if traj.len() > 1 && !idx.is_empty() {
        // Fewer paths may be darker; hundreds must stay faint to remain legible.
        let style = PATH.mix((40.0 / idx.len() as f64).sqrt().clamp(0.3, 0.8)).stroke_width(1);
        let series = c.draw_series(idx.iter().map(|&i| {
            PathElement::new(
                traj.iter().map(|f| (f.data[2 * i] as f64, f.data[2 * i + 1] as f64)).collect::<Vec<_>>(),
                style,
            )
        }))?;
        series.label("paths").legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], PATH.stroke_width(2)));
    }
    chart::draw_points(&mut c, end, END, n, Some("t = 1 (samples)"), 1.0, opts)?;
    chart::border(&mut c)?;
    chart::legend(&mut c, &[start, end], opts)
}

#[cfg(test)]
mod tests {
    #[test]
    fn spread_is_even_and_distinct() {
        assert_eq!(super::spread(10, 4), vec![0, 2, 5, 7]);
        assert_eq!(super::spread(3, 8), vec![0, 1, 2]);
    }
}
