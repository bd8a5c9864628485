//! Axis ranges: robust quantile ranges, equal aspect, and the emptiest corner for a legend.

use crate::data::Points;

use super::{AxisRange, LegendPosition};

/// The `q`-quantile of sorted values, interpolating linearly between order statistics.
///
/// # Formula
/// h = (n − 1)·q, Q(q) = x₍⌊h⌋₎ + (h − ⌊h⌋)·(x₍⌊h⌋+1₎ − x₍⌊h⌋₎) (Hyndman & Fan 1996, type 7, as
/// numpy's default).
///
/// `sorted` must be sorted ascending and non-empty; `q ∈ [0, 1]`.
///
/// ```
/// use ferroflow::plot::quantile;
/// assert_eq!(quantile(&[0.0, 1.0, 2.0, 10.0], 0.5), 1.5);
/// assert_eq!(quantile(&[0.0, 1.0, 2.0, 10.0], 1.0), 10.0);
/// ```
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    debug_assert!(!sorted.is_empty() && (0.0..=1.0).contains(&q));
    let h = (sorted.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// A range `(lo, hi)` holding all but the `q` tails of `values`, padded by `margin` × span per
/// side.
///
/// # Formula
/// lo = Q(q) − m·(Q(1−q) − Q(q)), hi = Q(1−q) + m·(Q(1−q) − Q(q)), with Q the type-7
/// [`quantile`]. A zero span (all values equal) becomes centre ± 1; no values give (−1, 1).
/// Non-finite values are ignored.
///
/// ```
/// use ferroflow::plot::robust_range;
/// // 99 values in [0, 1] and one outlier at 1000: the 2 % quantiles ignore it.
/// let mut v: Vec<f64> = (0..99).map(|i| i as f64 / 98.0).collect();
/// v.push(1000.0);
/// let (lo, hi) = robust_range(&v, 0.02, 0.0);
/// assert!(lo.abs() < 0.03 && (hi - 1.0).abs() < 0.03, "{lo} {hi}");
/// assert_eq!(robust_range(&v, 0.0, 0.0), (0.0, 1000.0));
/// ```
pub fn robust_range(values: &[f64], q: f64, margin: f64) -> (f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (-1.0, 1.0);
    }
    v.sort_by(f64::total_cmp);
    let (lo, hi) = (quantile(&v, q), quantile(&v, 1.0 - q));
    let span = hi - lo;
    if span <= 0.0 {
        return (lo - 1.0, hi + 1.0);
    }
    (lo - margin * span, hi + margin * span)
}

/// At most this many coordinates per axis feed the quantiles (an even stride over the rest):
/// a 1e-5 relative error in a plot range is invisible, and sorting stays fast.
const MAX_RANGE_SAMPLES: usize = 200_000;

/// The x and y coordinates of every point of `sets`, subsampled to [`MAX_RANGE_SAMPLES`].
fn coordinates(sets: &[&Points]) -> (Vec<f64>, Vec<f64>) {
    let total: usize = sets.iter().map(|p| p.n).sum();
    let stride = total.div_ceil(MAX_RANGE_SAMPLES).max(1);
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut k = 0usize;
    for p in sets {
        for i in 0..p.n {
            if k.is_multiple_of(stride) {
                xs.push(p.data[2 * i] as f64);
                ys.push(p.data[2 * i + 1] as f64);
            }
            k += 1;
        }
    }
    (xs, ys)
}

/// The x and y ranges `range` asks for, over the 2D point sets `sets`.
pub(crate) fn axis_ranges(sets: &[&Points], range: AxisRange) -> ((f64, f64), (f64, f64)) {
    match range {
        AxisRange::Fixed { x, y } => (x, y),
        AxisRange::Auto { quantile, margin } => {
            let (xs, ys) = coordinates(sets);
            (robust_range(&xs, quantile, margin), robust_range(&ys, quantile, margin))
        }
    }
}

/// Widens the shorter of two ranges (about its centre) so that one unit is as many pixels on x
/// as on y, for a plot area of `px_w × px_h` pixels.
pub(crate) fn equal_aspect(x: (f64, f64), y: (f64, f64), px_w: u32, px_h: u32) -> ((f64, f64), (f64, f64)) {
    let (w, h) = (px_w.max(1) as f64, px_h.max(1) as f64);
    let per_px = ((x.1 - x.0) / w).max((y.1 - y.0) / h);
    let widen = |(lo, hi): (f64, f64), px: f64| {
        let (c, half) = (0.5 * (lo + hi), 0.5 * per_px * px);
        (c - half, c + half)
    };
    (widen(x, w), widen(y, h))
}

/// The corner of the plot whose box (40 % of the width × 30 % of the height) holds the
/// fewest points of `sets`; ties go to upper right, upper left, lower right, lower left.
pub(crate) fn emptiest_corner(sets: &[&Points], x: (f64, f64), y: (f64, f64)) -> LegendPosition {
    let (bx, by) = (0.4 * (x.1 - x.0), 0.3 * (y.1 - y.0));
    let corners = [
        (LegendPosition::UpperRight, (x.1 - bx, x.1), (y.1 - by, y.1)),
        (LegendPosition::UpperLeft, (x.0, x.0 + bx), (y.1 - by, y.1)),
        (LegendPosition::LowerRight, (x.1 - bx, x.1), (y.0, y.0 + by)),
        (LegendPosition::LowerLeft, (x.0, x.0 + bx), (y.0, y.0 + by)),
    ];
    let count = |(xr, yr): ((f64, f64), (f64, f64))| {
        sets.iter()
            .flat_map(|p| p.data.chunks_exact(2))
            .filter(|r| {
                let (px, py) = (r[0] as f64, r[1] as f64);
                xr.0 <= px && px <= xr.1 && yr.0 <= py && py <= yr.1
            })
            .count()
    };
    let mut best = (LegendPosition::UpperRight, usize::MAX);
    for (pos, xr, yr) in corners {
        let c = count((xr, yr));
        if c < best.1 {
            best = (pos, c);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_matches_numpy_linear() {
        // numpy.quantile([3, 1, 4, 1, 5, 9, 2, 6], [0.1, 0.25, 0.9]) = [1.0, 1.75, 6.9]
        let mut v = vec![3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        v.sort_by(f64::total_cmp);
        for (q, want) in [(0.1, 1.0), (0.25, 1.75), (0.9, 6.9)] {
            // 1e-12: a few roundings of numbers below 10.
            assert!((quantile(&v, q) - want).abs() < 1e-12, "q = {q}");
        }
    }

    #[test]
    fn robust_range_ignores_a_few_outliers_and_pads() {
        // 1000 values evenly in [0, 1], plus 2 outliers at ±1e6 (0.2 % of the set).
        let mut v: Vec<f64> = (0..1000).map(|i| i as f64 / 999.0).collect();
        v.extend([1e6, -1e6]);
        let (lo, hi) = robust_range(&v, 0.005, 0.1);
        // The 0.5 % quantiles of the bulk are ≈ 0.003 and 0.997; padding 10 % of ≈ 0.994.
        assert!((lo - (-0.096)).abs() < 0.01 && (hi - 1.096).abs() < 0.01, "({lo}, {hi})");
    }

    #[test]
    fn robust_range_of_a_constant_is_centre_plus_minus_one() {
        assert_eq!(robust_range(&[2.0; 5], 0.01, 0.1), (1.0, 3.0));
        assert_eq!(robust_range(&[], 0.01, 0.1), (-1.0, 1.0));
    }

    #[test]
    fn equal_aspect_widens_the_shorter_axis() {
        // x spans 4 over 400 px (0.01/px), y spans 1 over 200 px (0.005/px) → y widens to 2.
        let (x, y) = equal_aspect((0.0, 4.0), (0.0, 1.0), 400, 200);
        assert_eq!(x, (0.0, 4.0));
        assert_eq!(y, (-0.5, 1.5));
    }

    #[test]
    fn legend_goes_to_the_emptiest_corner() {
        // Points fill all but the lower-left corner of [0, 1]².
        let mut data = Vec::new();
        for i in 0..10 {
            for j in 0..10 {
                let (x, y) = (i as f32 / 9.0, j as f32 / 9.0);
                if !(x < 0.5 && y < 0.5) {
                    data.extend([x, y]);
                }
            }
        }
        let p = Points::new(data.clone(), data.len() / 2, 2).unwrap();
        assert_eq!(emptiest_corner(&[&p], (0.0, 1.0), (0.0, 1.0)), LegendPosition::LowerLeft);
    }
}
