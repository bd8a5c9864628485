//! The run configuration of `ferroflow train`: a TOML file, then command-line overrides; the
//! resolved result is written beside the outputs as `config.toml`.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use ferroflow::data::{EmpiricalSource, GaussianSource, PointSource, Points, World};
use ferroflow::model::MlpFieldConfig;
use ferroflow::train::TrainConfig;
use serde::{Deserialize, Serialize};

/// Where points come from: a named 2D world or a data file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DataSpec {
    /// N(0, I) in the data's dimension (only as a source).
    Gaussian,
    /// A 2D world by name.
    World(String),
    /// A CSV or .npy file.
    File(PathBuf),
}

impl DataSpec {
    /// Parses a `--source`: "gaussian" (N(0, I) in the data's dimension), a world name, or
    /// else a file path.
    pub fn parse_source(s: &str) -> Self {
        if s == "gaussian" {
            return DataSpec::Gaussian;
        }
        if s.parse::<World>().is_ok() { DataSpec::World(s.to_string()) } else { DataSpec::File(PathBuf::from(s)) }
    }

    /// A short name for output folders.
    pub fn name(&self) -> String {
        match self {
            DataSpec::Gaussian => "gaussian".into(),
            DataSpec::World(w) => w.clone(),
            DataSpec::File(p) => {
                p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into())
            }
        }
    }

    /// Opens the source of points. `dim` is the dimension a Gaussian source takes.
    pub fn open(&self, dim: usize) -> Result<Box<dyn PointSource>> {
        Ok(match self {
            DataSpec::Gaussian => Box::new(GaussianSource { dim, std: 1.0 }),
            DataSpec::World(w) => Box::new(w.parse::<World>()?),
            DataSpec::File(p) => Box::new(EmpiricalSource::new(read_points(p)?)),
        })
    }

    /// The dimension of the points, reading the file if needed.
    pub fn dim(&self) -> Result<Option<usize>> {
        Ok(match self {
            DataSpec::Gaussian => None,
            DataSpec::World(_) => Some(2),
            DataSpec::File(p) => Some(read_points(p)?.dim),
        })
    }
}

/// Reads a point file with a clear error.
pub fn read_points(p: &Path) -> Result<Points> {
    Ok(ferroflow::data::io::read_points(p)?)
}

/// What `ferroflow train` runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// The data and the source.
    pub data: DataConfig,
    /// The velocity field (`d_input` is set from the data).
    pub model: MlpFieldConfig,
    /// Training.
    pub train: TrainConfig,
    /// What happens after training.
    pub output: OutputConfig,
}

/// The data and the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// The data p₁.
    pub target: DataSpec,
    /// The source p₀.
    pub source: DataSpec,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self { target: DataSpec::World("moons".into()), source: DataSpec::Gaussian }
    }
}

/// Outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Samples drawn at the end (Euler, `sample_steps` steps) for the picture and the scores.
    pub samples: usize,
    /// Euler steps of the final samples.
    pub sample_steps: usize,
    /// Score fresh samples every this many steps (0: only at the end).
    pub eval_every: u64,
}

impl Default for OutputConfig {
    fn default() -> Self {
        Self { samples: 2000, sample_steps: 100, eval_every: 0 }
    }
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            data: DataConfig::default(),
            model: MlpFieldConfig::default(),
            train: TrainConfig { checkpoint_every: 1000, ..TrainConfig::default() },
            output: OutputConfig::default(),
        }
    }
}

impl RunConfig {
    /// Reads a TOML file (unknown keys are errors).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        toml::from_str(&text).map_err(|e| {
            let msg = e.message().to_string();
            let at = e.span().map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!(" (line {line})")
            });
            anyhow::anyhow!("{}{}: {msg}", path.display(), at.unwrap_or_default())
        })
    }

    /// Writes the resolved configuration.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = toml::to_string_pretty(self).context("cannot serialise the configuration")?;
        let text = format!(
            "# ferroflow train: resolved configuration (rerun with `ferroflow train -c {}`)\n{text}",
            path.display()
        );
        ferroflow::checkpoint::write_atomic(path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    }
}
