//! Checkpoints: one safetensors file holding the model's tensors (PyTorch names and layout), the
//! optimizer state, the EMA weights and the run's configuration.
//!
//! # File layout
//! - model tensors under their own names (`net.0.weight` `[d_out, d_in]`, …; see
//!   [`crate::model::mlp`]), so `safetensors.torch.load_file` + a prefix filter loads them into
//!   an equivalent `nn.Sequential`;
//! - `ema.<name>`: exponential moving average of each trained tensor (if EMA is on);
//! - `optim.exp_avg.<name>`, `optim.exp_avg_sq.<name>`: Adam's first and second moments, in
//!   the same layout as the tensor (PyTorch's `exp_avg`/`exp_avg_sq`);
//! - metadata (string → string): `ferroflow.format` = `"1"`; for a training run
//!   `ferroflow.field` (the field kind), `ferroflow.model` (its settings as JSON),
//!   `ferroflow.train` (the training settings), `ferroflow.run` (data and source, or the digits
//!   run), `ferroflow.step` and `ferroflow.optim_t` (optimizer steps taken); the digit
//!   classifier stores `ferroflow.kind`, `ferroflow.config` and `ferroflow.image_size` instead.
//!
//! Files are written to a temporary file in the same folder, flushed to disk and renamed over
//! the target, so a process killed mid-write leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use crate::model::{HostTensor, TensorSpec};

/// The format version written in `ferroflow.format`.
pub const FORMAT_VERSION: &str = "1";

/// Why a checkpoint could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid safetensors file.
    #[error("{}: not a valid safetensors checkpoint: {reason}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        reason: String,
    },
    /// A tensor the model needs is absent.
    #[error("{}: tensor {name:?} is missing", path.display())]
    Missing {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
    },
    /// A tensor has the wrong shape for the configuration in the file.
    #[error("{}: tensor {name:?} has shape {got:?}, the configuration needs {expected:?}", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape in the file.
        got: Vec<usize>,
    },
    /// A tensor has a dtype other than f32.
    #[error("{}: tensor {name:?} has dtype {dtype}, expected F32", path.display())]
    Dtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its dtype.
        dtype: String,
    },
    /// A tensor holds NaN or infinite values.
    #[error("{}: tensor {name:?} holds a non-finite value at index {index}", path.display())]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The first bad index.
        index: usize,
    },
    /// A metadata entry is absent or invalid.
    #[error("{}: metadata {key:?}: {reason}", path.display())]
    Metadata {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// The contents of a checkpoint file.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    /// Named tensors.
    pub tensors: HashMap<String, HostTensor>,
    /// String metadata.
    pub metadata: HashMap<String, String>,
    /// Where it was read from (for error messages).
    pub path: PathBuf,
}

impl Checkpoint {
    /// Writes the checkpoint to `path` atomically (temporary file + rename).
    ///
    /// # Errors
    /// [`CheckpointError::Io`] if the folder is not writable or the disk is full.
    pub fn write(&self, path: &Path) -> Result<(), CheckpointError> {
        let io = |source| CheckpointError::Io { path: path.to_path_buf(), source };
        let bytes_of = |t: &HostTensor| -> Vec<u8> { t.data.iter().flat_map(|v| v.to_le_bytes()).collect() };
        let mut names: Vec<&String> = self.tensors.keys().collect();
        names.sort();
        let raw: Vec<(String, Vec<usize>, Vec<u8>)> = names
            .iter()
            .map(|n| {
                let t = &self.tensors[*n];
                ((*n).clone(), t.shape.clone(), bytes_of(t))
            })
            .collect();
        let views = raw
            .iter()
            .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CheckpointError::Format { path: path.to_path_buf(), reason: e.to_string() })?;
        let mut meta = self.metadata.clone();
        meta.insert("ferroflow.format".into(), FORMAT_VERSION.into());
        let buf = safetensors::serialize(views, Some(meta))
            .map_err(|e| CheckpointError::Format { path: path.to_path_buf(), reason: e.to_string() })?;
        write_atomic(path, &buf).map_err(io)
    }

    /// Reads and validates a checkpoint file (dtype f32, every value finite).
    ///
    /// # Errors
    /// [`CheckpointError`] naming the file and what is wrong with it.
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io { path: path.to_path_buf(), source })?;
        Self::parse(&bytes, path)
    }

    /// Parses checkpoint bytes; `path` is only used in messages.
    ///
    /// # Errors
    /// As [`Checkpoint::read`].
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let format = |reason: String| CheckpointError::Format { path: path.to_path_buf(), reason };
        if bytes.is_empty() {
            return Err(format("the file is empty".into()));
        }
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(|e| format(e.to_string()))?;
        let st = SafeTensors::deserialize(bytes).map_err(|e| format(e.to_string()))?;
        let metadata = meta.metadata().clone().unwrap_or_default();
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(CheckpointError::Dtype {
                    path: path.to_path_buf(),
                    name,
                    dtype: format!("{:?}", view.dtype()),
                });
            }
            let data: Vec<f32> =
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            if let Some(index) = data.iter().position(|v| !v.is_finite()) {
                return Err(CheckpointError::NonFinite { path: path.to_path_buf(), name, index });
            }
            tensors.insert(name, HostTensor { shape: view.shape().to_vec(), data });
        }
        Ok(Self { tensors, metadata, path: path.to_path_buf() })
    }

    /// The tensors named by `specs` (with `prefix` before each name), checked against the
    /// specs' shapes, in order.
    ///
    /// # Errors
    /// [`CheckpointError::Missing`] or [`CheckpointError::Shape`].
    pub fn tensors_for(&self, specs: &[TensorSpec], prefix: &str) -> Result<Vec<HostTensor>, CheckpointError> {
        specs
            .iter()
            .map(|s| {
                let name = format!("{prefix}{}", s.name);
                let t = self
                    .tensors
                    .get(&name)
                    .ok_or_else(|| CheckpointError::Missing { path: self.path.clone(), name: name.clone() })?;
                if t.shape != s.shape {
                    return Err(CheckpointError::Shape {
                        path: self.path.clone(),
                        name,
                        expected: s.shape.clone(),
                        got: t.shape.clone(),
                    });
                }
                Ok(t.clone())
            })
            .collect()
    }

    /// A metadata value that is a count (a step number).
    ///
    /// # Errors
    /// [`CheckpointError::Metadata`] if the key is absent or not an unsigned integer.
    pub fn meta_u64(&self, key: &str) -> Result<u64, CheckpointError> {
        let s = self.meta(key)?;
        s.parse().map_err(|_| CheckpointError::Metadata {
            path: self.path.clone(),
            key: key.into(),
            reason: format!("{s:?} is not a step count"),
        })
    }

    /// A metadata value.
    ///
    /// # Errors
    /// [`CheckpointError::Metadata`] if the key is absent.
    pub fn meta(&self, key: &str) -> Result<&str, CheckpointError> {
        self.metadata.get(key).map(String::as_str).ok_or_else(|| CheckpointError::Metadata {
            path: self.path.clone(),
            key: key.into(),
            reason: "absent (not a ferroflow checkpoint?)".into(),
        })
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder, synced, then renamed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".ferroflow-").suffix(".tmp").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let mut c = Checkpoint::default();
        c.tensors.insert("a".into(), HostTensor { shape: vec![2, 3], data: vec![1.0, -2.5, 3.0, 0.0, 1e-30, 7.0] });
        c.tensors.insert("b".into(), HostTensor { shape: vec![1], data: vec![f32::MAX] });
        c.metadata.insert("ferroflow.step".into(), "12".into());
        c
    }

    #[test]
    fn write_then_read_is_bit_exact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.safetensors");
        let c = sample();
        c.write(&p).unwrap();
        let r = Checkpoint::read(&p).unwrap();
        assert_eq!(r.tensors, c.tensors);
        assert_eq!(r.meta("ferroflow.step").unwrap(), "12");
        assert_eq!(r.meta("ferroflow.format").unwrap(), FORMAT_VERSION);
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        let p = Path::new("x.safetensors");
        let mut good = Vec::new();
        {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("c.safetensors");
            sample().write(&f).unwrap();
            good = std::fs::read(f).unwrap_or(good);
        }
        assert!(matches!(Checkpoint::parse(&[], p), Err(CheckpointError::Format { .. })));
        for cut in [1, 7, 8, 20, good.len() - 1] {
            assert!(Checkpoint::parse(&good[..cut], p).is_err(), "truncated at {cut}");
        }
        let mut nan = sample();
        nan.tensors.get_mut("a").unwrap().data[4] = f32::NAN;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("n.safetensors");
        nan.write(&f).unwrap();
        let e = Checkpoint::read(&f).unwrap_err();
        assert!(matches!(e, CheckpointError::NonFinite { index: 4, .. }), "{e}");
    }

    #[test]
    fn shapes_are_checked_against_specs() {
        let c = sample();
        let spec =
            |name: &str, shape: Vec<usize>| TensorSpec { name: name.into(), shape, transposed: false, trained: true };
        assert!(c.tensors_for(&[spec("a", vec![2, 3])], "").is_ok());
        assert!(matches!(c.tensors_for(&[spec("a", vec![3, 2])], ""), Err(CheckpointError::Shape { .. })));
        assert!(matches!(c.tensors_for(&[spec("z", vec![1])], ""), Err(CheckpointError::Missing { .. })));
    }
}
