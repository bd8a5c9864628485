//! The common frame of every plot: title, axes with labels, a light grid, a border, the
//! legend, and point drawing.

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::output::{Area, DrawResult};
use super::{LegendPosition, PlotOptions, Rgb, font::FAMILY, range};
use crate::data::Points;

/// A chart with f64 axes on a bitmap.
pub(crate) type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Space around the plot, in pixels.
pub(crate) const MARGIN: u32 = 14;
/// Height of the x-axis tick labels and description.
pub(crate) const X_LABEL_AREA: u32 = 54;
/// Width of the y-axis tick labels and description.
const Y_LABEL_AREA: u32 = 66;
/// Height of a title line.
pub(crate) const TITLE_HEIGHT: u32 = 38;

/// Axis and grid colours: dark grey axes, light grey grid lines.
pub(crate) const AXIS: RGBColor = RGBColor(60, 60, 60);
const GRID_BOLD: RGBColor = RGBColor(222, 222, 222);
const GRID_LIGHT: RGBColor = RGBColor(242, 242, 242);

/// Draws `title` (if any) centred at the top of `area` and returns the area below it.
pub(crate) fn titled<'b>(area: &Area<'b>, title: Option<&str>, size: u32) -> DrawResult<Area<'b>> {
    let Some(title) = title else { return Ok(area.clone()) };
    let h = TITLE_HEIGHT * size / 22;
    let (top, rest) = area.split_vertically(h);
    let (w, _) = top.dim_in_pixel();
    let style = TextStyle::from((FAMILY, size).into_font()).color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
    top.draw_text(title, &style, ((w / 2) as i32, (h / 2) as i32 + 2))?;
    Ok(rest)
}

/// The plot area (inside axes) of a chart built on an area of `dim` pixels.
pub(crate) fn plot_pixels((w, h): (u32, u32)) -> (u32, u32) {
    (w.saturating_sub(2 * MARGIN + Y_LABEL_AREA), h.saturating_sub(2 * MARGIN + X_LABEL_AREA))
}

/// Builds the chart on `area` for ranges `x`, `y` (widened to equal aspect if the options ask),
/// and draws its grid, axes and border.
pub(crate) fn build<'a, 'b>(
    area: &'a Area<'b>,
    x: (f64, f64),
    y: (f64, f64),
    opts: &PlotOptions,
) -> DrawResult<Chart<'a, 'b>> {
    let (x, y) = if opts.equal_aspect {
        let (pw, ph) = plot_pixels(area.dim_in_pixel());
        range::equal_aspect(x, y, pw, ph)
    } else {
        (x, y)
    };
    let mut chart = ChartBuilder::on(area)
        .margin(MARGIN)
        .x_label_area_size(X_LABEL_AREA)
        .y_label_area_size(Y_LABEL_AREA)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)?;
    chart
        .configure_mesh()
        .x_desc(opts.x_label.as_str())
        .y_desc(opts.y_label.as_str())
        .axis_desc_style((FAMILY, 18).into_font().color(&AXIS))
        .label_style((FAMILY, 14).into_font().color(&AXIS))
        .axis_style(AXIS)
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .max_light_lines(4)
        .x_labels(7)
        .y_labels(7)
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()?;
    Ok(chart)
}

/// Draws the border of the plot area (after the data, so points do not cover it).
pub(crate) fn border<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>) -> DrawResult {
    let area = chart.plotting_area().strip_coord_spec();
    let (w, h) = area.dim_in_pixel();
    area.draw(&Rectangle::new([(0, 0), (w as i32 - 1, h as i32 - 1)], AXIS.stroke_width(1)))?;
    Ok(())
}

/// A tick label: few digits, no trailing zeros, no "-0".
pub(crate) fn tick(v: &f64) -> String {
    let v = if v.abs() < 1e-9 { 0.0 } else { *v };
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Draws `points` inside the chart's range as filled discs of `color` with the options'
/// radius and opacity for `n_for_style` points (times `fade`), adding a legend entry `label`
/// (an opaque disc) if given.
pub(crate) fn draw_points<'a, 'b: 'a>(
    chart: &mut Chart<'a, 'b>,
    points: &Points,
    color: Rgb,
    n_for_style: usize,
    label: Option<&str>,
    fade: f64,
    opts: &PlotOptions,
) -> DrawResult {
    let r = opts.radius_for(n_for_style);
    let style = color.rgb().mix(opts.alpha_for(n_for_style) * fade).filled();
    let (x, y) = (chart.x_range(), chart.y_range());
    // plotters would pin points outside the range to the border; leave them out instead.
    let inside = move |p: &&[f32]| {
        let (px, py) = (p[0] as f64, p[1] as f64);
        x.start <= px && px <= x.end && y.start <= py && py <= y.end
    };
    let series = chart.draw_series(
        points.data.chunks_exact(2).filter(inside).map(|p| Circle::new((p[0] as f64, p[1] as f64), r, style)),
    )?;
    if let Some(label) = label {
        let c = color.rgb();
        series.label(label).legend(move |(x, y)| Circle::new((x + 8, y), 5, c.filled()));
    }
    Ok(())
}

/// Draws the legend where the options ask (`Auto`: the corner with the fewest of `sets`).
pub(crate) fn legend<'a, 'b: 'a>(chart: &mut Chart<'a, 'b>, sets: &[&Points], opts: &PlotOptions) -> DrawResult {
    let (x, y) = (chart.x_range(), chart.y_range());
    let pos = match opts.legend {
        LegendPosition::Hidden => return Ok(()),
        LegendPosition::Auto => range::emptiest_corner(sets, (x.start, x.end), (y.start, y.end)),
        p => p,
    };
    let pos = match pos {
        LegendPosition::UpperLeft => SeriesLabelPosition::UpperLeft,
        LegendPosition::LowerLeft => SeriesLabelPosition::LowerLeft,
        LegendPosition::LowerRight => SeriesLabelPosition::LowerRight,
        _ => SeriesLabelPosition::UpperRight,
    };
    chart
        .configure_series_labels()
        .position(pos)
        .margin(10)
        .legend_area_size(22)
        .background_style(WHITE.mix(0.88))
        .border_style(RGBColor(190, 190, 190))
        .label_font((FAMILY, 15).into_font().color(&BLACK))
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ticks_are_short() {
        let t = |v: f64| super::tick(&v);
        assert_eq!(t(0.0), "0");
        assert_eq!(t(-1e-12), "0");
        assert_eq!(t(2.5), "2.5");
        assert_eq!(t(-3.0), "-3");
        assert_eq!(t(0.125), "0.125");
        assert_eq!(t(10.0), "10");
    }
}
