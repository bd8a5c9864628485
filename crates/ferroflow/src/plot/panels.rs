//! Several plots side by side in one picture (e.g. independent vs OT coupling).

use std::path::Path;

use super::output::{require_png, with_path, write_png};
use super::{Grid, Layer, PlotError, PlotErrorKind, PlotOptions, chart, heatmap, range, scatter, trajectories};
use crate::data::Points;

/// One plot of a [`panels`] picture.
#[derive(Debug, Clone)]
pub struct Panel<'a> {
    /// Title above this plot.
    pub title: &'a str,
    /// What it shows.
    pub content: PanelContent<'a>,
}

/// What a [`Panel`] shows: the content of one of the single-plot functions.
#[derive(Debug, Clone)]
pub enum PanelContent<'a> {
    /// As [`super::scatter`].
    Scatter(Vec<Layer<'a>>),
    /// As [`super::trajectories`].
    Trajectories {
        /// One point set per recorded time, t = 0 first.
        traj: &'a [Points],
        /// Optional background points (e.g. the data).
        background: Option<&'a Points>,
    },
    /// As [`super::heatmap`].
    Heatmap {
        /// The values.
        grid: &'a Grid,
        /// Optional points drawn on top.
        overlay: Option<&'a Points>,
    },
}

impl PanelContent<'_> {
    /// The point sets that set the shared axis range (none for a heat map, which spans its grid).
    fn range_sets(&self) -> Vec<&Points> {
        match self {
            PanelContent::Scatter(layers) => layers.iter().map(|l| l.points).collect(),
            PanelContent::Trajectories { traj, background } => trajectories::sets(traj, *background),
            PanelContent::Heatmap { .. } => Vec::new(),
        }
    }
}

/// Writes `panels` side by side to `path` (`.png`): `opts.columns` per row (default all in one
/// row), each `opts.width × opts.height` (plus a colour bar's width when any panel is a heat
/// map), under `opts.title`.
///
/// Scatter and trajectory panels share one axis range (`opts.range` over all their points),
/// so positions compare across panels.
///
/// # Errors
/// [`PlotError`] naming `path`: no panels, or any panel's input error (as the single-plot
/// functions), a bad option or extension, or a failed write.
pub fn panels(path: &Path, panels: &[Panel], opts: &PlotOptions) -> Result<(), PlotError> {
    with_path(path, || {
        opts.validate()?;
        require_png(path)?;
        if panels.is_empty() {
            return Err(PlotErrorKind::Empty { what: "the list of panels".into() });
        }
        for p in panels {
            match &p.content {
                PanelContent::Scatter(layers) => scatter::check_layers(layers)?,
                PanelContent::Trajectories { traj, background } => trajectories::check(traj, *background)?,
                PanelContent::Heatmap { grid, overlay } => heatmap::check(grid, *overlay)?,
            }
        }
        let sets: Vec<&Points> = panels.iter().flat_map(|p| p.content.range_sets()).collect();
        let (x, y) = range::axis_ranges(&sets, opts.range);

        let cols = opts.columns.unwrap_or(panels.len()).min(panels.len());
        let rows = panels.len().div_ceil(cols);
        let any_heatmap = panels.iter().any(|p| matches!(p.content, PanelContent::Heatmap { .. }));
        let cell_w = opts.width + if any_heatmap { heatmap::COLOUR_BAR } else { 0 };
        let title_h = if opts.title.is_some() { chart::TITLE_HEIGHT * 24 / 22 } else { 0 };
        let size = (cell_w * cols as u32, title_h + opts.height * rows as u32);

        write_png(path, size, |root| {
            let body = chart::titled(root, opts.title.as_deref(), 24)?;
            for (p, cell) in panels.iter().zip(body.split_evenly((rows, cols))) {
                let title = Some(p.title).filter(|t| !t.is_empty());
                match &p.content {
                    PanelContent::Scatter(layers) => scatter::draw(&cell, title, 20, layers, x, y, opts)?,
                    PanelContent::Trajectories { traj, background } => {
                        trajectories::draw(&cell, title, 20, traj, *background, x, y, opts)?
                    }
                    PanelContent::Heatmap { grid, overlay } => heatmap::draw(&cell, title, 20, grid, *overlay, opts)?,
                }
            }
            Ok(())
        })
    })
}
