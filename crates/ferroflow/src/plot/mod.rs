//! Pictures of 2D flows: scatter plots, trajectories, side-by-side panels, animations and
//! log-density heat maps; and grids of generated digits.
//!
//! Every function validates its input first (2D, non-empty, finite points; consistent
//! trajectories; sane options), renders with [`plotters`] into a temporary file beside the
//! destination and renames it into place, so a reader never sees a half-written picture.
//! The format follows the extension: `.png` for still pictures; `.gif` or a folder (no
//! extension) for [`flow_gif`].
//!
//! Text uses the DejaVu Sans font embedded in the library (`assets/DejaVuSans.ttf`, see
//! `assets/LICENSE-DejaVu.txt`), so pictures render identically on machines without
//! system fonts or fontconfig.
//!
//! Conventions: points are rows of a 2D [`Points`](crate::data::Points) set; a trajectory
//! is one `Points` per recorded time, all with the same `n`, from t = 0 (source, noise) to
//! t = 1 (data).
//!
//! ```no_run
//! use ferroflow::data::Points;
//! use ferroflow::plot::{self, Layer, PlotOptions, Rgb};
//! # fn main() -> ferroflow::Result<()> {
//! let data = Points::new(vec![0.0, 0.0, 1.0, 1.0], 2, 2)?;
//! let samples = Points::new(vec![0.1, 0.0, 0.9, 1.1], 2, 2)?;
//! let layers = [
//!     Layer { points: &data, label: "data", color: Rgb::GREY },
//!     Layer { points: &samples, label: "samples", color: Rgb::BLUE },
//! ];
//! plot::scatter("samples.png".as_ref(), &layers, &PlotOptions::titled("moons"))?;
//! # Ok(())
//! # }
//! ```

mod animation;
mod chart;
mod colormap;
mod error;
mod font;
mod grid;
mod heatmap;
mod output;
mod panels;
mod range;
mod scatter;
mod style;
mod trajectories;
mod validate;

pub use animation::flow_gif;
pub use colormap::viridis;
pub use error::{PlotError, PlotErrorKind};
pub use grid::{GRID_BACKGROUND, write_digit_grid};
pub use heatmap::{Grid, heatmap};
pub use panels::{Panel, PanelContent, panels};
pub use range::{quantile, robust_range};
pub use scatter::{Layer, scatter};
pub use style::{AxisRange, LegendPosition, PlotOptions, Rgb};
pub use trajectories::trajectories;
