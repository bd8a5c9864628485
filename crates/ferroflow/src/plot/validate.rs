//! Input checks, run once before anything is drawn.

use crate::data::Points;

use super::PlotErrorKind;

/// `points` is 2D, non-empty and finite; `what` names it in the error.
pub(crate) fn check_points(what: impl Fn() -> String, points: &Points) -> Result<(), PlotErrorKind> {
    if points.dim != 2 {
        return Err(PlotErrorKind::NotTwoD { what: what(), dim: points.dim });
    }
    if points.n == 0 {
        return Err(PlotErrorKind::Empty { what: what() });
    }
    debug_assert_eq!(points.data.len(), points.n * 2, "Points invariant: n × dim values");
    if let Some(i) = points.data.iter().position(|v| !v.is_finite()) {
        return Err(PlotErrorKind::NonFinite { what: what(), row: i / 2, value: points.data[i] });
    }
    Ok(())
}

/// Every frame of `traj` passes [`check_points`] and has frame 0's number of points.
pub(crate) fn check_trajectory(traj: &[Points]) -> Result<(), PlotErrorKind> {
    let first = traj.first().ok_or_else(|| PlotErrorKind::Empty { what: "the trajectory".into() })?;
    for (k, frame) in traj.iter().enumerate() {
        check_points(|| format!("trajectory frame {k}"), frame)?;
        if frame.n != first.n {
            return Err(PlotErrorKind::FrameSize { frame: k, expected: first.n, got: frame.n });
        }
    }
    Ok(())
}
