//! Colours and options shared by every picture.

use plotters::style::RGBColor;

use super::PlotErrorKind;

/// An opaque sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// Blue `#1f77b4` (matplotlib's first colour): model samples.
    pub const BLUE: Rgb = Rgb(0x1f, 0x77, 0xb4);
    /// Orange `#ff7f0e`: source points (t = 0).
    pub const ORANGE: Rgb = Rgb(0xff, 0x7f, 0x0e);
    /// Green `#2ca02c`.
    pub const GREEN: Rgb = Rgb(0x2c, 0xa0, 0x2c);
    /// Red `#d62728`.
    pub const RED: Rgb = Rgb(0xd6, 0x27, 0x28);
    /// Purple `#9467bd`.
    pub const PURPLE: Rgb = Rgb(0x94, 0x67, 0xbd);
    /// Mid grey `#7f7f7f`: data behind samples.
    pub const GREY: Rgb = Rgb(0x7f, 0x7f, 0x7f);
    /// Black.
    pub const BLACK: Rgb = Rgb(0, 0, 0);

    /// The `i`-th colour of a ten-colour categorical palette (matplotlib's `tab10`), cycling.
    ///
    /// ```
    /// use ferroflow::plot::Rgb;
    /// assert_eq!(Rgb::palette(0), Rgb::BLUE);
    /// assert_eq!(Rgb::palette(11), Rgb::ORANGE);
    /// ```
    pub fn palette(i: usize) -> Rgb {
        const TAB10: [Rgb; 10] = [
            Rgb::BLUE,
            Rgb::ORANGE,
            Rgb::GREEN,
            Rgb::RED,
            Rgb::PURPLE,
            Rgb(0x8c, 0x56, 0x4b),
            Rgb(0xe3, 0x77, 0xc2),
            Rgb::GREY,
            Rgb(0xbc, 0xbd, 0x22),
            Rgb(0x17, 0xbe, 0xcf),
        ];
        TAB10[i % TAB10.len()]
    }

    pub(crate) fn rgb(self) -> RGBColor {
        RGBColor(self.0, self.1, self.2)
    }
}

/// How the axis ranges of a plot are chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AxisRange {
    /// From the data, robust to outliers: per axis, the `quantile` and `1 − quantile`
    /// quantiles of every plotted coordinate, widened by `margin` × their span on each side.
    /// Points outside the range are clipped.
    Auto {
        /// Lower quantile in `[0, 0.5)`; 0 takes the min and max.
        quantile: f64,
        /// Padding on each side, as a fraction of the span, `≥ 0`.
        margin: f64,
    },
    /// Fixed ranges `(lo, hi)`, `lo < hi`.
    Fixed {
        /// x range.
        x: (f64, f64),
        /// y range.
        y: (f64, f64),
    },
}

impl Default for AxisRange {
    /// `Auto { quantile: 0.002, margin: 0.06 }`: up to 0.2 % of the points per side may fall
    /// outside the range (a few outliers among thousands of samples).
    fn default() -> Self {
        AxisRange::Auto { quantile: 0.002, margin: 0.06 }
    }
}

/// Where the legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LegendPosition {
    /// The corner of the plot holding the fewest points.
    #[default]
    Auto,
    /// Upper left corner.
    UpperLeft,
    /// Upper right corner.
    UpperRight,
    /// Lower left corner.
    LowerLeft,
    /// Lower right corner.
    LowerRight,
    /// No legend.
    Hidden,
}

/// Options shared by every picture. Start from [`PlotOptions::default`] (or
/// [`PlotOptions::titled`]) and change fields.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotOptions {
    /// Width of one plot in pixels (a [`super::panels`] picture is `columns ×` wider).
    pub width: u32,
    /// Height of one plot in pixels.
    pub height: u32,
    /// Title above the picture.
    pub title: Option<String>,
    /// Label of the horizontal axis.
    pub x_label: String,
    /// Label of the vertical axis.
    pub y_label: String,
    /// How the axis ranges are chosen.
    pub range: AxisRange,
    /// One unit on x is as long as one unit on y (the range is widened to make it so).
    pub equal_aspect: bool,
    /// Where the legend goes.
    pub legend: LegendPosition,
    /// Point radius in pixels; `None` picks 3 below 1 000 points, else 2.
    pub point_radius: Option<u32>,
    /// Point opacity in `(0, 1]`; `None` picks `√(500 / n)` clamped to `[0.15, 0.8]`, so
    /// dense regions of 2k–10k points darken instead of saturating.
    pub point_alpha: Option<f64>,
    /// At most this many paths are drawn by [`super::trajectories`] (evenly spaced indices).
    pub max_paths: usize,
    /// Delay between animation frames in milliseconds (GIF stores hundredths of a second).
    pub frame_delay_ms: u32,
    /// The time of each recorded frame, for animation captions; `None` assumes evenly spaced
    /// times from 0 to 1.
    pub frame_times: Option<Vec<f64>>,
    /// Heat-map colour range `(lo, hi)`; `None` spans the 2 % quantile to the maximum of the
    /// finite values (log densities have a long low tail).
    pub value_range: Option<(f64, f64)>,
    /// Label of the heat map's colour bar.
    pub value_label: String,
    /// Plots per row in a [`super::panels`] picture; `None` puts all in one row.
    pub columns: Option<usize>,
}

impl Default for PlotOptions {
    fn default() -> Self {
        Self {
            width: 640,
            height: 600,
            title: None,
            x_label: "x₁".into(),
            y_label: "x₂".into(),
            range: AxisRange::default(),
            equal_aspect: true,
            legend: LegendPosition::default(),
            point_radius: None,
            point_alpha: None,
            max_paths: 256,
            frame_delay_ms: 80,
            frame_times: None,
            value_range: None,
            value_label: "log p(x)".into(),
            columns: None,
        }
    }
}

impl PlotOptions {
    /// Default options with a title.
    pub fn titled(title: impl Into<String>) -> Self {
        Self { title: Some(title.into()), ..Self::default() }
    }

    /// Checks every option; called by each plotting function before it draws.
    ///
    /// # Errors
    /// [`PlotErrorKind::Option`] naming the first bad option.
    pub fn validate(&self) -> Result<(), PlotErrorKind> {
        let bad = |name, value: String, expected| Err(PlotErrorKind::Option { name, value, expected });
        for (name, v) in [("width", self.width), ("height", self.height)] {
            if !(120..=8192).contains(&v) {
                return bad(name, v.to_string(), "120 ..= 8192 pixels");
            }
        }
        match self.range {
            AxisRange::Auto { quantile, margin } => {
                if !(0.0..0.5).contains(&quantile) {
                    return bad("range.quantile", quantile.to_string(), "0 <= quantile < 0.5");
                }
                if !(margin.is_finite() && margin >= 0.0) {
                    return bad("range.margin", margin.to_string(), "a finite margin >= 0");
                }
            }
            AxisRange::Fixed { x, y } => {
                for (name, (lo, hi)) in [("range.x", x), ("range.y", y)] {
                    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                        return bad(name, format!("({lo}, {hi})"), "finite (lo, hi) with lo < hi");
                    }
                }
            }
        }
        if let Some(r) = self.point_radius
            && !(1..=50).contains(&r)
        {
            return bad("point_radius", r.to_string(), "1 ..= 50 pixels");
        }
        if let Some(a) = self.point_alpha
            && !(a > 0.0 && a <= 1.0)
        {
            return bad("point_alpha", a.to_string(), "0 < alpha <= 1");
        }
        if let Some((lo, hi)) = self.value_range
            && !(lo.is_finite() && hi.is_finite() && lo < hi)
        {
            return bad("value_range", format!("({lo}, {hi})"), "finite (lo, hi) with lo < hi");
        }
        if self.columns == Some(0) {
            return bad("columns", "0".into(), "at least 1");
        }
        if let Some(ts) = &self.frame_times
            && let Some(t) = ts.iter().find(|t| !t.is_finite())
        {
            return bad("frame_times", t.to_string(), "finite times");
        }
        Ok(())
    }

    /// The point radius for `n` points.
    pub(crate) fn radius_for(&self, n: usize) -> u32 {
        self.point_radius.unwrap_or(if n < 1000 { 3 } else { 2 })
    }

    /// The point opacity for `n` points.
    pub(crate) fn alpha_for(&self, n: usize) -> f64 {
        self.point_alpha.unwrap_or_else(|| (500.0 / n.max(1) as f64).sqrt().clamp(0.15, 0.8))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_are_valid() {
        assert!(PlotOptions::default().validate().is_ok());
    }

    #[test]
    fn bad_options_name_the_field() {
        let cases: [(PlotOptions, &str); 6] = [
            (PlotOptions { width: 10, ..Default::default() }, "width"),
            (
                PlotOptions { range: AxisRange::Auto { quantile: 0.5, margin: 0.0 }, ..Default::default() },
                "range.quantile",
            ),
            (PlotOptions { range: AxisRange::Fixed { x: (0.0, 1.0), y: (1.0, 1.0) }, ..Default::default() }, "range.y"),
            (PlotOptions { point_alpha: Some(0.0), ..Default::default() }, "point_alpha"),
            (PlotOptions { value_range: Some((f64::NAN, 1.0)), ..Default::default() }, "value_range"),
            (PlotOptions { columns: Some(0), ..Default::default() }, "columns"),
        ];
        for (opts, field) in cases {
            match opts.validate() {
                Err(PlotErrorKind::Option { name, .. }) => assert_eq!(name, field),
                other => panic!("{field}: expected an option error, got {other:?}"),
            }
        }
    }

    #[test]
    fn auto_alpha_falls_with_point_count() {
        let o = PlotOptions::default();
        // √(500/n): 500 → 1 clamped to 0.8; 2000 → 0.5; 10 000 → 0.2236; 10⁶ → 0.0224 clamped.
        assert_eq!(o.alpha_for(500), 0.8);
        assert!((o.alpha_for(2000) - 0.5).abs() < 1e-12);
        assert!((o.alpha_for(10_000) - 0.223_606_797_749_979).abs() < 1e-12);
        assert_eq!(o.alpha_for(1_000_000), 0.15);
    }
}
