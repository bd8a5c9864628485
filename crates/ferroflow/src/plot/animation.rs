//! Animations of a flow: the points moving from t = 0 to t = 1.

use std::path::Path;

use super::output::{Format, extension, format_of, with_path, write_frames, write_gif};
use super::validate::check_trajectory;
use super::{LegendPosition, PlotError, PlotErrorKind, PlotOptions, chart, range, trajectories};
use crate::data::Points;

/// Writes an animation of `traj`, one frame per recorded time, captioned with its time t: an
/// animated GIF (looping, `opts.frame_delay_ms` per frame) if `path` ends in `.gif`, or a
/// folder of `frame_0000.png`, `frame_0001.png`, … if `path` has no extension or is a folder
/// (created if missing; stale higher-numbered frames from an earlier run are removed).
///
/// Every frame has the same axes (`opts.range` over all frames). Frame times come from
/// `opts.frame_times`, or are taken as evenly spaced from 0 to 1.
///
/// # Shapes
/// `traj: [times]` of `[n, 2]`, the same `n` in every frame
///
/// # Errors
/// [`PlotError`] naming `path`: no frames, frames of different sizes, points that are not
/// 2D, empty or non-finite, `frame_times` of the wrong length, a bad option or extension,
/// or a failed write.
pub fn flow_gif(path: &Path, traj: &[Points], opts: &PlotOptions) -> Result<(), PlotError> {
    with_path(path, || {
        opts.validate()?;
        check_trajectory(traj)?;
        let times = frame_times(traj.len(), opts)?;
        let format = format_of(path);
        if format == Format::Png || (format == Format::Folder && path.extension().is_some() && !path.is_dir()) {
            return Err(PlotErrorKind::Extension { got: extension(path), expected: "a .gif file or a folder" });
        }
        let sets: Vec<&Points> = traj.iter().collect();
        let (x, y) = range::axis_ranges(&sets, opts.range);
        let frame_opts = PlotOptions { legend: LegendPosition::Hidden, ..opts.clone() };
        let draw = |area: &super::output::Area, k: usize| {
            let caption = match &opts.title {
                Some(t) => format!("{t}   t = {:.2}", times[k]),
                None => format!("t = {:.2}", times[k]),
            };
            let body = chart::titled(area, Some(&caption), 22)?;
            let mut c = chart::build(&body, x, y, &frame_opts)?;
            chart::draw_points(&mut c, &traj[k], trajectories::END, traj[k].n, None, 1.0, &frame_opts)?;
            chart::border(&mut c)
        };
        let size = (opts.width, opts.height);
        if format == Format::Gif {
            write_gif(path, size, opts.frame_delay_ms, traj.len(), draw)
        } else {
            write_frames(path, size, traj.len(), draw)
        }
    })
}

/// The time of each of `count` frames: `opts.frame_times`, or k/(count − 1).
fn frame_times(count: usize, opts: &PlotOptions) -> Result<Vec<f64>, PlotErrorKind> {
    match &opts.frame_times {
        Some(ts) if ts.len() != count => Err(PlotErrorKind::Option {
            name: "frame_times",
            value: format!("{} times", ts.len()),
            expected: "one time per frame",
        }),
        Some(ts) => Ok(ts.clone()),
        None if count == 1 => Ok(vec![1.0]),
        None => Ok((0..count).map(|k| k as f64 / (count - 1) as f64).collect()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_frame_times_are_even_from_zero_to_one() {
        let t = super::frame_times(5, &Default::default()).unwrap();
        assert_eq!(t, vec![0.0, 0.25, 0.5, 0.75, 1.0]);
    }
}
