//! MNIST through the public API, on the committed fixture (`tests/fixtures/mnist/`: the first
//! 600 training and 200 test digits of the real files, made by `make_fixture.py`): loading
//! both splits at both sizes, 16×16 against PyTorch's `adaptive_avg_pool2d` (goldens made by
//! `make_golden.py`), the error messages, image/label `.npy` files and the digit-grid PNG.

use std::path::{Path, PathBuf};

use ferroflow::data::idx::{read_idx_images, read_idx_labels};
use ferroflow::data::images_io::{read_images_npy, read_labels_npy, write_images_npy, write_labels_npy};
use ferroflow::data::mnist::{adaptive_avg_pool, to_u8_image};
use ferroflow::data::{DataError, IdxKind, ImageSize, Mnist, MnistSource, PointSource, Split, read_points};
use ferroflow::plot::{GRID_BACKGROUND, write_digit_grid};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mnist")
}

fn histogram(labels: &[u32]) -> [usize; 10] {
    let mut h = [0; 10];
    labels.iter().for_each(|&l| h[l as usize] += 1);
    h
}

#[test]
fn fixture_loads_both_splits_at_both_sizes_with_its_counts_labels_and_pixel_range() {
    // counts and label histograms as printed by make_golden.py (numpy.bincount of the files)
    let cases = [
        (Split::Train, 600, [58, 79, 64, 59, 59, 51, 54, 62, 49, 65], 5),
        (Split::Test, 200, [17, 28, 16, 16, 28, 20, 20, 24, 10, 21], 7),
    ];
    for (split, n, hist, first_label) in cases {
        for (size, side) in [(ImageSize::Full28, 28), (ImageSize::Down16, 16)] {
            let m = Mnist::load(&fixture_dir(), split, size).unwrap();
            let what = format!("{split} {size}");
            assert_eq!((m.n, m.height, m.width), (n, side, side), "{what}");
            assert_eq!((m.pixels.len(), m.labels.len()), (n * side * side, n), "{what}");
            assert_eq!(histogram(&m.labels), hist, "{what}");
            assert_eq!(m.labels[0], first_label, "{what}");
            let (lo, hi) = m.pixels.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            assert_eq!(lo, 0.0, "{what}: background is 0");
            if size == ImageSize::Full28 {
                assert_eq!(hi, 255.0, "{what}: full ink is 255");
                assert!(m.pixels.iter().all(|v| v.fract() == 0.0), "{what}: 28×28 pixels are the bytes");
            } else {
                // an average of 4 to 9 bytes: within [0, 255], and saturated windows exist
                assert!(hi <= 255.0 && hi > 250.0, "{what}: max {hi}");
            }
            let p = m.points();
            assert_eq!((p.n, p.dim), (n, side * side));
            assert!(p.data.iter().all(|v| (-1.0..=1.0).contains(v)), "{what}: points in [−1, 1]");
            assert_eq!(p.data.iter().copied().fold(f32::MAX, f32::min), -1.0, "{what}");
        }
    }
}

#[test]
fn fixture_digits_are_the_real_files_first_digits() {
    // pixel sums of digit 0 of the real train-images (27525, a 5) and t10k-images (18454, a 7),
    // by make_golden.py from /work/shared/data/mnist (checked against its SHA256SUMS)
    let train = Mnist::load(&fixture_dir(), Split::Train, ImageSize::Full28).unwrap();
    let test = Mnist::load(&fixture_dir(), Split::Test, ImageSize::Full28).unwrap();
    assert_eq!(train.pixels[..784].iter().sum::<f32>(), 27525.0);
    assert_eq!(test.pixels[..784].iter().sum::<f32>(), 18454.0);
    // where the real data is at hand, the whole fixture is its head
    let real =
        std::env::var_os("FERROFLOW_DATA").map(PathBuf::from).filter(|d| d.join("t10k-labels-idx1-ubyte.gz").exists());
    if let Some(dir) = real {
        let full = read_idx_images(&dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
        let want: Vec<f32> = full.pixels[..200 * 784].iter().map(|&b| f32::from(b)).collect();
        assert_eq!(test.pixels, want);
        let labels = read_idx_labels(&dir.join("t10k-labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(test.labels, labels[..200].iter().map(|&l| u32::from(l)).collect::<Vec<_>>());
    }
}

/// Max |a − b| over two equal-length slices.
fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn downsampling_matches_pytorch_adaptive_avg_pool2d() {
    // ferroflow mirrors PyTorch's f32 sum order and divisions, so the agreement is exact; 1e-5
    // (on the 0..255 scale, under one f32 ulp at 255) allows only rounding differences.
    let dir = fixture_dir();
    let golden = read_points(&dir.join("golden_train16.npy")).unwrap();
    assert_eq!((golden.n, golden.dim), (4, 256));
    let m = Mnist::load(&dir, Split::Train, ImageSize::Down16).unwrap();
    let d = max_abs_diff(&m.pixels[..4 * 256], &golden.data);
    assert!(d <= 1e-5, "digits 28→16: max |ferroflow − torch| = {d}");
    // x[k] = ((7k) mod 13)/4, as in make_golden.py
    let pattern = |h: usize, w: usize| (0..h * w).map(|k| ((7 * k) % 13) as f32 / 4.0).collect::<Vec<f32>>();
    for ((h, w), (oh, ow)) in [((7, 5), (3, 2)), ((5, 3), (7, 4))] {
        let golden = read_points(&dir.join(format!("golden_{h}x{w}_to_{oh}x{ow}.npy"))).unwrap();
        let got = adaptive_avg_pool(&pattern(h, w), h, w, oh, ow);
        let d = max_abs_diff(&got, &golden.data);
        assert!(d <= 1e-5, "{h}×{w} → {oh}×{ow}: max diff {d}, got {got:?}");
    }
    // the first value of 7×5 → 3×2 by hand: rows 0..=2, cols 0..=2 of the pattern, / 3 / 3
    let p = pattern(7, 5);
    let by_hand = [0, 1, 2, 5, 6, 7, 10, 11, 12].iter().map(|&k| p[k]).sum::<f32>() / 9.0;
    assert!((golden_first(&dir) - by_hand).abs() < 1e-6, "{by_hand}");
}

fn golden_first(dir: &Path) -> f32 {
    read_points(&dir.join("golden_7x5_to_3x2.npy")).unwrap().data[0]
}

/// Copies the fixture's `prefix` files into `dir`, decompressed (plain IDX files).
fn copy_split_plain(dir: &Path, prefix: &str) {
    for kind in ["images-idx3", "labels-idx1"] {
        let name = format!("{prefix}-{kind}-ubyte");
        let gz = std::fs::File::open(fixture_dir().join(format!("{name}.gz"))).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut raw).unwrap();
        std::fs::write(dir.join(&name), raw).unwrap();
    }
}

#[test]
fn plain_idx_files_load_like_gzipped_ones_and_a_missing_one_names_both_names() {
    let dir = tempfile::tempdir().unwrap();
    copy_split_plain(dir.path(), "t10k");
    let plain = Mnist::load(dir.path(), Split::Test, ImageSize::Down16).unwrap();
    let gz = Mnist::load(&fixture_dir(), Split::Test, ImageSize::Down16).unwrap();
    assert_eq!(plain, gz);
    let e = Mnist::load(dir.path(), Split::Train, ImageSize::Full28).unwrap_err();
    let want = dir.path().join("train-images-idx3-ubyte.gz");
    assert!(matches!(&e, DataError::MissingFile { path, also_tried } if *path == want && also_tried.len() == 1), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("train-images-idx3-ubyte.gz: no such file (nor "), "{msg}");
    assert!(msg.contains("FERROFLOW_DATA") && msg.contains("--data"), "{msg}");
}

#[test]
fn mismatched_counts_and_swapped_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 200 test images with the 600 training labels
    std::fs::copy(fixture_dir().join("t10k-images-idx3-ubyte.gz"), d.join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::copy(fixture_dir().join("train-labels-idx1-ubyte.gz"), d.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let e = Mnist::load(d, Split::Test, ImageSize::Full28).unwrap_err();
    assert!(matches!(e, DataError::CountMismatch { n_images: 200, n_labels: 600, .. }), "{e}");
    assert!(e.to_string().contains("holds 200 images but") && e.to_string().contains("holds 600 labels"), "{e}");
    // labels where the images should be
    std::fs::copy(fixture_dir().join("t10k-labels-idx1-ubyte.gz"), d.join("t10k-images-idx3-ubyte.gz")).unwrap();
    let e = Mnist::load(d, Split::Test, ImageSize::Full28).unwrap_err();
    assert!(matches!(e, DataError::IdxMagic { kind: IdxKind::Images, found: 0x801, .. }), "{e}");
    assert!(e.to_string().contains("are the file names swapped?"), "{e}");
    // a truncated gzip (cut in the middle of the deflate stream)
    let bytes = std::fs::read(fixture_dir().join("t10k-images-idx3-ubyte.gz")).unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte.gz"), &bytes[..bytes.len() / 2]).unwrap();
    let e = Mnist::load(d, Split::Test, ImageSize::Full28).unwrap_err();
    assert!(matches!(e, DataError::Gzip { .. }), "{e}");
}

#[test]
fn mnist_source_samples_fixture_digits_as_labelled_points() {
    let m = Mnist::load(&fixture_dir(), Split::Test, ImageSize::Down16).unwrap();
    let mut src = MnistSource::new(&m).unwrap();
    assert_eq!((src.dim(), src.n_classes()), (256, Some(10)));
    let (p, labels) = src.sample(64, &mut ferroflow::rng::seeded(3));
    let labels = labels.unwrap();
    let all = m.points();
    // every drawn row is one of the digits, and carries that digit's label
    for (i, &l) in labels.iter().enumerate() {
        let k = (0..m.n).find(|&k| all.row(k) == p.row(i)).expect("a drawn row is a fixture digit");
        assert_eq!(m.labels[k], l, "row {i}");
    }
}

#[test]
fn images_and_labels_npy_round_trip_and_numpy_files_read() {
    let dir = tempfile::tempdir().unwrap();
    let m = Mnist::load(&fixture_dir(), Split::Test, ImageSize::Down16).unwrap().head(5);
    let bytes = to_u8_image(&m.points().data);
    let (fi, fl) = (dir.path().join("images.npy"), dir.path().join("labels.npy"));
    write_images_npy(&fi, &bytes, 5, 16, 16).unwrap();
    write_labels_npy(&fl, &m.labels).unwrap();
    assert_eq!(read_images_npy(&fi).unwrap(), (bytes.clone(), 5, 16, 16));
    assert_eq!(read_labels_npy(&fl).unwrap(), m.labels);
    // the peer (npyz) reads what we wrote as uint8 of the right shapes
    let written = std::fs::read(&fi).unwrap();
    let f = npyz::NpyFile::new(&written[..]).unwrap();
    assert_eq!((f.shape().to_vec(), f.header().dtype().descr()), (vec![5, 16, 16], "'|u1'".to_string()));
    assert_eq!(f.into_vec::<u8>().unwrap(), bytes);
    let written = std::fs::read(&fl).unwrap();
    let f = npyz::NpyFile::new(&written[..]).unwrap();
    assert_eq!(f.into_vec::<u8>().unwrap(), vec![7, 2, 1, 0, 4]);
    // what np.save wrote (make_golden.py): the first 3 test digits, labels as int64 and uint8
    let (px, n, h, w) = read_images_npy(&fixture_dir().join("numpy_images_u1.npy")).unwrap();
    assert_eq!((n, h, w), (3, 28, 28));
    let sums: Vec<u32> = px.chunks(784).map(|d| d.iter().map(|&b| u32::from(b)).sum()).collect();
    assert_eq!(sums, vec![18454, 28850, 9871]);
    let full = Mnist::load(&fixture_dir(), Split::Test, ImageSize::Full28).unwrap();
    assert!(px.iter().zip(&full.pixels).all(|(&b, &f)| f32::from(b) == f));
    for name in ["numpy_labels_i8.npy", "numpy_labels_u1.npy"] {
        assert_eq!(read_labels_npy(&fixture_dir().join(name)).unwrap(), vec![7, 2, 1], "{name}");
    }
}

#[test]
fn digit_grid_png_has_the_tiled_size_and_pixels() {
    // three 2×3 images in 2 columns, scale 3: (2·(3+1)+1)·3 = 27 wide, (2·(2+1)+1)·3 = 21 high
    let images: Vec<u8> = (0..18).map(|k| (10 * k) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("grid.png");
    write_digit_grid(&f, &images, 3, 2, 3, 2, 3).unwrap();
    let decoder = png::Decoder::new(std::fs::File::open(&f).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (27, 21));
    assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Grayscale, png::BitDepth::Eight));
    let at = |x: usize, y: usize| buf[y * info.line_size + x];
    // image 1 (tile row 0, column 1) starts at x = (1 + 1·4)·3 = 15, y = 3; its pixel (r, c)
    // = 10·(6 + 3r + c) fills a 3×3 block
    for r in 0..2 {
        for c in 0..3 {
            for (dx, dy) in [(0, 0), (2, 2), (1, 2)] {
                assert_eq!(at(15 + 3 * c + dx, 3 + 3 * r + dy), (10 * (6 + 3 * r + c)) as u8, "image 1 ({r}, {c})");
            }
        }
    }
    // image 2 is tile row 1, column 0: y = (1 + 3)·3 = 12
    assert_eq!(at(3, 12), 120);
    // separators, borders and the empty fourth tile are grey
    for (x, y) in [(0, 0), (14, 5), (26, 20), (5, 10), (20, 14)] {
        assert_eq!(at(x, y), GRID_BACKGROUND, "({x}, {y})");
    }
    // bad arguments are errors naming the file, and nothing is written
    let g = dir.path().join("bad.png");
    let e = write_digit_grid(&g, &images[..17], 3, 2, 3, 2, 3).unwrap_err();
    assert!(e.to_string().contains("3 images of 2×3 need 18 pixels, got 17"), "{e}");
    assert!(write_digit_grid(&g, &images, 3, 2, 3, 0, 3).is_err());
    assert!(write_digit_grid(&g, &images, 3, 2, 3, 2, 100_000).is_err());
    assert!(write_digit_grid(&dir.path().join("grid.jpg"), &images, 3, 2, 3, 2, 1).is_err());
    assert!(!g.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary files are left");
}
