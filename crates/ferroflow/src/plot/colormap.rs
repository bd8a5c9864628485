//! The viridis colour map (perceptually uniform, readable in greyscale and by colour-blind
//! readers), for heat maps.

use super::Rgb;

/// matplotlib's viridis sampled at t = 0, 0.1, …, 1 (van der Walt & Smith 2015).
const VIRIDIS: [(u8, u8, u8); 11] = [
    (68, 1, 84),
    (72, 36, 117),
    (65, 68, 135),
    (53, 95, 141),
    (42, 120, 142),
    (33, 145, 140),
    (34, 168, 132),
    (68, 191, 112),
    (122, 209, 81),
    (189, 223, 38),
    (253, 231, 37),
];

/// The viridis colour at `t ∈ [0, 1]` (clamped; NaN maps to 0): linear interpolation between
/// 11 samples of matplotlib's table, within 3/255 of it per channel.
///
/// ```
/// use ferroflow::plot::{Rgb, viridis};
/// assert_eq!(viridis(0.0), Rgb(68, 1, 84));
/// assert_eq!(viridis(1.0), Rgb(253, 231, 37));
/// assert_eq!(viridis(0.05), Rgb(70, 19, 101)); // halfway between the first two samples
/// ```
pub fn viridis(t: f64) -> Rgb {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let h = t * (VIRIDIS.len() - 1) as f64;
    let i = (h.floor() as usize).min(VIRIDIS.len() - 2);
    let f = h - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let lerp = |a: u8, b: u8| (a as f64 + f * (b as f64 - a as f64)).round() as u8;
    Rgb(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_matches_matplotlib_between_samples() {
        // matplotlib: viridis(0.25) = (59, 82, 139), viridis(0.75) = (94, 201, 98) (×255, rounded).
        for (t, want) in [(0.25, (59, 82, 139)), (0.75, (94, 201, 98))] {
            let Rgb(r, g, b) = viridis(t);
            for (got, want) in [(r, want.0), (g, want.1), (b, want.2)] {
                // Linear interpolation of a smooth map: within 3/255 per channel.
                assert!((got as i32 - want).abs() <= 3, "t = {t}: {:?} vs {want:?}", (r, g, b));
            }
        }
    }

    #[test]
    fn viridis_lightness_increases() {
        // Perceived lightness (Rec. 709 luma) rises monotonically along viridis.
        let luma = |Rgb(r, g, b): Rgb| 0.2126 * r as f64 + 0.7152 * g as f64 + 0.0722 * b as f64;
        let l: Vec<f64> = (0..=100).map(|i| luma(viridis(i as f64 / 100.0))).collect();
        assert!(l.windows(2).all(|w| w[1] >= w[0]), "{l:?}");
    }
}
