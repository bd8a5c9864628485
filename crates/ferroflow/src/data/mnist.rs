//! MNIST digits: loading the IDX files, downsampling to 16×16 as PyTorch does, the [−1, 1]
//! point view for training and its inverse for generated images.
//!
//! # Conventions
//! - [`Mnist::pixels`] stay on the 0..255 scale (floats: a downsampled pixel is an average);
//! - a digit as a point is its image flattened row-major and scaled by x/127.5 − 1 into [−1, 1]
//!   ([`Mnist::points`]); [`to_u8_image`] maps a generated point back to bytes;
//! - 16×16 is `adaptive_avg_pool2d(x, 16)` of the float 0..255 28×28 image, then the scaling
//!   (seed UNET_SPEC "Recipe": "x/127.5 − 1 on the uint8, after downsampling the float
//!   \[0,255\] image").
//!
//! ```no_run
//! use ferroflow::data::mnist::{data_dir, ImageSize, Mnist, MnistSource, Split};
//! # fn main() -> ferroflow::Result<()> {
//! let dir = data_dir(None)?; // $FERROFLOW_DATA
//! let train = Mnist::load(&dir, Split::Train, ImageSize::Down16)?;
//! assert_eq!((train.n, train.height, train.width), (60_000, 16, 16));
//! let source = MnistSource::new(&train)?; // a PointSource of 256-vectors in [−1, 1], labelled
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};

use rand::Rng as _;
use serde::{Deserialize, Serialize};

use super::idx::{parse_idx_images, parse_idx_labels};
use super::{DataError, PointSource, Points};
use crate::error::ConfigError;
use crate::rng::Rng;

/// The environment variable naming the folder with the MNIST IDX files.
pub const DATA_ENV: &str = "FERROFLOW_DATA";

/// MNIST's side: its images are 28×28.
pub const MNIST_SIDE: usize = 28;

/// Which MNIST split: 60,000 training or 10,000 test digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// `train-*-ubyte`: 60,000 digits.
    Train,
    /// `t10k-*-ubyte`: 10,000 digits.
    Test,
}

impl Split {
    /// The file-name prefix: `train` or `t10k`.
    pub fn file_prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }

    /// The name used in configs and on the command line: `train` or `test`.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Split {
    type Err = ConfigError;
    /// `train` or `test`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "train" => Ok(Split::Train),
            "test" => Ok(Split::Test),
            _ => Err(ConfigError::Unknown { kind: "MNIST split", name: s.into(), valid: "train, test".into() }),
        }
    }
}

/// The size the digits are used at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSize {
    /// MNIST's own 28×28.
    Full28,
    /// 16×16 by [`adaptive_avg_pool`] of the 28×28 image (the seeds' 256-vectors).
    Down16,
}

impl ImageSize {
    /// The side in pixels: 28 or 16.
    pub fn side(self) -> usize {
        match self {
            ImageSize::Full28 => MNIST_SIDE,
            ImageSize::Down16 => 16,
        }
    }
}

impl std::fmt::Display for ImageSize {
    /// `28` or `16`, as [`FromStr`](std::str::FromStr) reads it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.side())
    }
}

impl std::str::FromStr for ImageSize {
    type Err = ConfigError;
    /// `28` or `16` (or the serde names `full28`, `down16`).
    ///
    /// ```
    /// use ferroflow::data::mnist::ImageSize;
    /// assert_eq!("16".parse::<ImageSize>().unwrap(), ImageSize::Down16);
    /// assert_eq!("28".parse::<ImageSize>().unwrap().side(), 28);
    /// assert!("32".parse::<ImageSize>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "28" | "full28" => Ok(ImageSize::Full28),
            "16" | "down16" => Ok(ImageSize::Down16),
            _ => Err(ConfigError::Unknown { kind: "image size", name: s.into(), valid: "28, 16".into() }),
        }
    }
}

/// MNIST digits with their labels, on the host.
///
/// # Shapes
/// `pixels: [n, height, width]` row-major, on the 0..255 scale; `labels: [n]` in 0..=9.
#[derive(Debug, Clone, PartialEq)]
pub struct Mnist {
    /// Number of digits.
    pub n: usize,
    /// Image height (28 or 16).
    pub height: usize,
    /// Image width (28 or 16).
    pub width: usize,
    /// `n·height·width` pixels on the 0..255 scale, image by image, row-major.
    pub pixels: Vec<f32>,
    /// The digit each image shows, 0–9.
    pub labels: Vec<u32>,
}

impl Mnist {
    /// Loads a split from the folder `dir` holding the IDX files under their standard names
    /// (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-…`), each tried as `.gz`
    /// first and then plain; `size` downsamples with [`adaptive_avg_pool`].
    ///
    /// # Errors
    /// [`DataError::MissingFile`] naming the file (both names tried) and how to point ferroflow
    /// at the data; any error of [`parse_idx_images`] and [`parse_idx_labels`] (wrong magic,
    /// truncated data, a bad gzip stream, labels above 9); [`DataError::CountMismatch`] if
    /// the two files hold different counts; [`DataError::ImageShape`] for images that are not
    /// 28×28; [`DataError::Empty`] for a file of zero images.
    pub fn load(dir: &Path, split: Split, size: ImageSize) -> Result<Mnist, DataError> {
        let prefix = split.file_prefix();
        let (images_path, images_bytes) = read_either(dir, &format!("{prefix}-images-idx3-ubyte"))?;
        let (labels_path, labels_bytes) = read_either(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
        let images = parse_idx_images(&images_bytes, &images_path)?;
        drop(images_bytes);
        let labels = parse_idx_labels(&labels_bytes, &labels_path)?;
        if images.n != labels.len() {
            return Err(DataError::CountMismatch {
                images: images_path,
                labels: labels_path,
                n_images: images.n,
                n_labels: labels.len(),
            });
        }
        if (images.rows, images.cols) != (MNIST_SIDE, MNIST_SIDE) {
            return Err(DataError::ImageShape {
                path: images_path,
                shape: vec![images.n as u64, images.rows as u64, images.cols as u64],
                expected: "[n, 28, 28] (MNIST's size)",
            });
        }
        if images.n == 0 {
            return Err(DataError::Empty { path: images_path, detail: "zero images" });
        }
        let full: Vec<f32> = images.pixels.iter().map(|&p| f32::from(p)).collect();
        let side = size.side();
        let pixels =
            if side == MNIST_SIDE { full } else { adaptive_avg_pool(&full, MNIST_SIDE, MNIST_SIDE, side, side) };
        let labels = labels.into_iter().map(u32::from).collect();
        Ok(Mnist { n: images.n, height: side, width: side, pixels, labels })
    }

    /// The digits as points in [−1, 1]: each image flattened row-major, scaled by x/127.5 − 1.
    ///
    /// # Formula
    /// pᵢ = xᵢ/127.5 − 1 (0 ↦ −1, 255 ↦ 1)
    ///
    /// # Shapes
    /// `[n, height·width]`
    ///
    /// ```
    /// use ferroflow::data::mnist::Mnist;
    /// let m = Mnist { n: 1, height: 1, width: 3, pixels: vec![0.0, 127.5, 255.0], labels: vec![4] };
    /// assert_eq!(m.points().data, vec![-1.0, 0.0, 1.0]);
    /// ```
    pub fn points(&self) -> Points {
        let data = self.pixels.iter().map(|&x| x / 127.5 - 1.0).collect();
        Points { data, n: self.n, dim: self.height * self.width }
    }

    /// The first `k` digits (all of them if `k >= n`).
    pub fn head(&self, k: usize) -> Mnist {
        let k = k.min(self.n);
        let size = self.height * self.width;
        Mnist {
            n: k,
            height: self.height,
            width: self.width,
            pixels: self.pixels[..k * size].to_vec(),
            labels: self.labels[..k].to_vec(),
        }
    }
}

/// Reads `dir/name.gz`, or else `dir/name`; [`DataError::MissingFile`] names both.
fn read_either(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>), DataError> {
    let gz = dir.join(format!("{name}.gz"));
    let plain = dir.join(name);
    for path in [&gz, &plain] {
        match std::fs::read(path) {
            Ok(bytes) => return Ok((path.clone(), bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(DataError::Io { path: path.clone(), source }),
        }
    }
    Err(DataError::MissingFile { path: gz, also_tried: vec![plain] })
}

/// The data folder: the command-line value if given, else `$FERROFLOW_DATA` (if set and not
/// empty).
///
/// # Errors
/// [`DataError::NoDataDir`] if neither is given.
pub fn data_dir(cli: Option<&Path>) -> Result<PathBuf, DataError> {
    data_dir_from(cli, std::env::var_os(DATA_ENV))
}

/// [`data_dir`] with the environment's value passed in (testable without touching the
/// process environment).
fn data_dir_from(cli: Option<&Path>, env: Option<std::ffi::OsString>) -> Result<PathBuf, DataError> {
    match (cli, env) {
        (Some(dir), _) => Ok(dir.to_path_buf()),
        (None, Some(env)) if !env.is_empty() => Ok(PathBuf::from(env)),
        _ => Err(DataError::NoDataDir),
    }
}

/// Adaptive average pooling of images `h × w` → `oh × ow`, exactly as PyTorch's
/// `torch.nn.functional.adaptive_avg_pool2d` computes it on the CPU (same windows, same f32
/// sum order and divisions, so the results agree bit for bit).
///
/// # Formula
/// out[i, j] = (Σ_{a ∈ R_i} Σ_{b ∈ C_j} x[a, b]) / |R_i| / |C_j|, with the row window
/// R_i = ⌊i·h/oh⌋ … ⌈(i+1)·h/oh⌉ − 1 and C_j likewise over w, ow. Windows overlap where h/oh
/// is not an integer (28 → 16: windows of 2 and 3 rows); oh > h upsamples.
///
/// # Shapes
/// `src: [n, h, w]` row-major, `n = src.len() / (h·w)` → `[n, oh, ow]`.
///
/// # Panics
/// If `h` or `w` is 0 while `oh·ow > 0`, or `src.len()` is not a multiple of `h·w`.
///
/// ```
/// use ferroflow::data::mnist::adaptive_avg_pool;
/// // 3 → 2 columns: windows {0, 1} and {1, 2} (they overlap in column 1)
/// assert_eq!(adaptive_avg_pool(&[1.0, 2.0, 6.0], 1, 3, 1, 2), vec![1.5, 4.0]);
/// // 2×2 → 1×1 is the mean; two images at once
/// assert_eq!(adaptive_avg_pool(&[1.0, 2.0, 3.0, 6.0, 0.0, 0.0, 0.0, 8.0], 2, 2, 1, 1), vec![3.0, 2.0]);
/// ```
pub fn adaptive_avg_pool(src: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    if oh == 0 || ow == 0 {
        return Vec::new();
    }
    assert!(h > 0 && w > 0, "adaptive_avg_pool: empty {h}×{w} input");
    assert!(src.len().is_multiple_of(h * w), "adaptive_avg_pool: {} values are not whole {h}×{w} images", src.len());
    let window = |i: usize, len: usize, out: usize| (i * len / out, ((i + 1) * len).div_ceil(out));
    let rows: Vec<(usize, usize)> = (0..oh).map(|i| window(i, h, oh)).collect();
    let cols: Vec<(usize, usize)> = (0..ow).map(|j| window(j, w, ow)).collect();
    let mut out = Vec::with_capacity(src.len() / (h * w) * oh * ow);
    for img in src.chunks_exact(h * w) {
        for &(r0, r1) in &rows {
            for &(c0, c1) in &cols {
                let mut sum = 0f32;
                for a in r0..r1 {
                    for &x in &img[a * w + c0..a * w + c1] {
                        sum += x;
                    }
                }
                // PyTorch divides by the window's height, then by its width (not by the product).
                out.push(sum / (r1 - r0) as f32 / (c1 - c0) as f32);
            }
        }
    }
    out
}

/// A generated point in [−1, 1] back to bytes: the inverse of [`Mnist::points`]' scaling.
///
/// # Formula
/// b = round(clamp((x + 1)·127.5, 0, 255)), rounding half to even as `torch.round` does
/// (NaN ↦ 0). The f32 arithmetic is PyTorch's `((x + 1) * 127.5).clamp(0, 255).round()`.
///
/// ```
/// use ferroflow::data::mnist::to_u8_image;
/// assert_eq!(to_u8_image(&[-1.0, 0.0, 1.0, -3.0, 7.0, f32::NAN]), vec![0, 128, 255, 0, 255, 0]);
/// // −0.5 ↦ 63.75 ↦ 64; 0.999 ↦ 254.87 ↦ 255
/// assert_eq!(to_u8_image(&[-0.5, 0.999]), vec![64, 255]);
/// ```
pub fn to_u8_image(x: &[f32]) -> Vec<u8> {
    x.iter().map(|&v| ((v + 1.0) * 127.5).clamp(0.0, 255.0).round_ties_even() as u8).collect()
}

/// MNIST as a [`PointSource`]: points in [−1, 1] (see [`Mnist::points`]) with their digits,
/// drawn uniformly with replacement.
///
/// # Shapes
/// `sample(n)` → points `[n, height·width]`, labels `[n]` in 0..=9.
#[derive(Debug, Clone, PartialEq)]
pub struct MnistSource {
    points: Points,
    labels: Vec<u32>,
}

impl MnistSource {
    /// The source over `mnist`'s digits (scaled once, here).
    ///
    /// # Errors
    /// [`crate::Error::Shape`] if `mnist` has no digits, or its pixels or labels do not number
    /// `n·height·width` and `n`; [`crate::Error::Data`] ([`DataError::LabelRange`]) for a
    /// label above 9.
    pub fn new(mnist: &Mnist) -> crate::Result<Self> {
        let size = mnist.height * mnist.width;
        if mnist.n == 0 || size == 0 || mnist.pixels.len() != mnist.n * size || mnist.labels.len() != mnist.n {
            return Err(crate::Error::Shape {
                op: "MnistSource::new",
                expected: "n ≥ 1 digits of height·width ≥ 1 pixels and n labels".into(),
                got: format!(
                    "n = {}, {}×{}, {} pixels, {} labels",
                    mnist.n,
                    mnist.height,
                    mnist.width,
                    mnist.pixels.len(),
                    mnist.labels.len()
                ),
            });
        }
        if let Some(index) = mnist.labels.iter().position(|&l| l > 9) {
            let label = u64::from(mnist.labels[index]);
            return Err(DataError::LabelRange { path: PathBuf::from("<MNIST labels>"), index, label }.into());
        }
        Ok(Self { points: mnist.points(), labels: mnist.labels.clone() })
    }

    /// All the digits, as points.
    pub fn points(&self) -> &Points {
        &self.points
    }

    /// All the labels.
    pub fn labels(&self) -> &[u32] {
        &self.labels
    }
}

impl PointSource for MnistSource {
    fn dim(&self) -> usize {
        self.points.dim
    }
    fn n_classes(&self) -> Option<u32> {
        Some(10)
    }
    fn sample(&mut self, n: usize, rng: &mut Rng) -> (Points, Option<Vec<u32>>) {
        let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..self.points.n)).collect();
        let labels = idx.iter().map(|&i| self.labels[i]).collect();
        (self.points.select(&idx), Some(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_dir_prefers_the_command_line_then_the_environment() {
        let cli = Path::new("/cli");
        assert_eq!(data_dir_from(Some(cli), Some("/env".into())).unwrap(), PathBuf::from("/cli"));
        assert_eq!(data_dir_from(None, Some("/env".into())).unwrap(), PathBuf::from("/env"));
        for env in [None, Some("".into())] {
            let e = data_dir_from(None, env).unwrap_err();
            assert!(matches!(e, DataError::NoDataDir), "{e}");
            assert!(e.to_string().contains("--data") && e.to_string().contains("FERROFLOW_DATA"), "{e}");
        }
    }

    #[test]
    fn pooling_28_to_16_uses_overlapping_windows_of_two_and_three() {
        // PyTorch's windows for 28 → 16: start ⌊28i/16⌋, end ⌈28(i+1)/16⌉
        let ones_at = |r: usize, c: usize| {
            let mut x = vec![0f32; 28 * 28];
            x[r * 28 + c] = 1.0;
            adaptive_avg_pool(&x, 28, 28, 16, 16)
        };
        // pixel (0, 0) lies in row and column window 0 = {0, 1} (size 2) only
        let y = ones_at(0, 0);
        assert_eq!(y[0], 0.25);
        assert_eq!(y.iter().filter(|&&v| v != 0.0).count(), 1);
        // pixel (1, 1) lies in windows 0 = {0, 1} and 1 = {1, 2, 3} along both axes
        let y = ones_at(1, 1);
        assert_eq!((y[0], y[1], y[16], y[17]), (0.25, 1.0 / 2.0 / 3.0, 1.0 / 3.0 / 2.0, 1.0 / 3.0 / 3.0));
        assert_eq!(y.iter().filter(|&&v| v != 0.0).count(), 4);
        // pixel (5, 0) lies in row windows 2 = {3, 4, 5} and 3 = {5, 6} (overlap), col window 0 = {0, 1}
        let y = ones_at(5, 0);
        assert_eq!((y[2 * 16], y[3 * 16]), (1.0 / 3.0 / 2.0, 1.0 / 2.0 / 2.0));
        assert_eq!(y.iter().filter(|&&v| v != 0.0).count(), 2);
        // a constant image stays constant (every window averages the same value)
        let y = adaptive_avg_pool(&[200.0; 28 * 28], 28, 28, 16, 16);
        assert!(y.iter().all(|&v| v == 200.0));
        // the identity size copies
        let x: Vec<f32> = (0..12).map(|k| k as f32).collect();
        assert_eq!(adaptive_avg_pool(&x, 3, 4, 3, 4), x);
    }

    #[test]
    fn to_u8_image_inverts_the_point_scaling_on_every_byte() {
        let bytes: Vec<f32> = (0..=255).map(|b| b as f32).collect();
        let m = Mnist { n: 1, height: 16, width: 16, pixels: bytes, labels: vec![0] };
        let back = to_u8_image(&m.points().data);
        assert_eq!(back, (0..=255).collect::<Vec<u8>>());
    }

    #[test]
    fn mnist_source_draws_uniformly_with_replacement_and_keeps_labels() {
        // three 1×2 "digits", image k has both pixels 100·k, label k + 4
        let m = Mnist {
            n: 3,
            height: 1,
            width: 2,
            pixels: vec![0.0, 0.0, 100.0, 100.0, 200.0, 200.0],
            labels: vec![4, 5, 6],
        };
        let mut src = MnistSource::new(&m).unwrap();
        assert_eq!((src.dim(), src.n_classes()), (2, Some(10)));
        let mut rng = crate::rng::seeded(7);
        let (p, l) = src.sample(3000, &mut rng);
        let l = l.unwrap();
        let mut counts = [0usize; 3];
        for (i, &label) in l.iter().enumerate() {
            let k = (label - 4) as usize;
            counts[k] += 1;
            let want = (100 * k) as f32 / 127.5 - 1.0;
            assert_eq!(p.row(i), &[want, want], "row {i} does not carry its label's image");
        }
        // each index has probability 1/3: 1000 ± 3σ (σ = √(3000·1/3·2/3) ≈ 25.8)
        assert!(counts.iter().all(|&c| c.abs_diff(1000) < 78), "{counts:?}");
        // the same seed draws the same batch
        let (p2, _) = src.sample(3000, &mut crate::rng::seeded(7));
        assert_eq!(p2, p);
        let bad = Mnist { labels: vec![4, 5, 10], ..m.clone() };
        assert!(MnistSource::new(&bad).is_err());
        assert!(MnistSource::new(&m.head(0)).is_err());
    }
}
