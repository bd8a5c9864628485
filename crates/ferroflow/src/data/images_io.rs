//! Images and labels as NumPy `.npy` files, for scripts: what `ferroflow sample` writes and
//! what a PyTorch script's `np.save` gives back.
//!
//! # Formats
//! - **images**: uint8 `[n, h, w]` (`'|u1'`), C order, as `np.save(f, x.astype(np.uint8))`
//!   writes it; read back in C or Fortran order.
//! - **labels**: written as uint8 `[n]` (`'|u1'`: digits and the null class fit, and the file
//!   is 8× smaller than int64); read from any integer dtype NumPy writes (`u1`…`u8`,
//!   `i1`…`i8`, either byte order), so `np.save(f, torch_labels.numpy())` (int64) reads too.
//!
//! The parsers never panic and check the header's shape against the bytes present before
//! allocating anything (the `.npy` header is read by the same code as [`super::io::parse_npy`]).

use std::path::Path;

use npyz::WriterBuilder as _;

use super::DataError;
use super::io::split_npy;

/// Writes `n` images of `h × w` bytes as a uint8 `[n, h, w]` `.npy` file, atomically (see
/// [`crate::checkpoint::write_atomic`]).
///
/// # Shapes
/// `images: [n, h, w]` row-major.
///
/// # Errors
/// [`DataError::Malformed`] if `images.len() != n·h·w`; [`DataError::Io`] if the file cannot be
/// written.
///
/// ```
/// use ferroflow::data::images_io::{read_images_npy, write_images_npy};
/// let dir = tempfile::tempdir().unwrap();
/// let f = dir.path().join("x.npy");
/// write_images_npy(&f, &[0, 1, 2, 3, 4, 255], 2, 1, 3).unwrap();
/// assert_eq!(read_images_npy(&f).unwrap(), (vec![0, 1, 2, 3, 4, 255], 2, 1, 3));
/// ```
pub fn write_images_npy(path: &Path, images: &[u8], n: usize, h: usize, w: usize) -> Result<(), DataError> {
    let want = n.checked_mul(h).and_then(|nh| nh.checked_mul(w));
    if want != Some(images.len()) {
        return Err(DataError::Malformed {
            path: path.to_path_buf(),
            line: None,
            reason: format!("{n}×{h}×{w} images need {n}·{h}·{w} bytes, got {}", images.len()),
        });
    }
    write_u8_npy(path, images, &[n as u64, h as u64, w as u64])
}

/// Writes labels as a uint8 `[n]` `.npy` file, atomically.
///
/// # Errors
/// [`DataError::Malformed`] for a label above 255 (it would not fit uint8); [`DataError::Io`]
/// if the file cannot be written.
pub fn write_labels_npy(path: &Path, labels: &[u32]) -> Result<(), DataError> {
    let bytes = labels
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            u8::try_from(l).map_err(|_| DataError::Malformed {
                path: path.to_path_buf(),
                line: None,
                reason: format!("label {l} at index {i} does not fit the uint8 labels file"),
            })
        })
        .collect::<Result<Vec<u8>, DataError>>()?;
    write_u8_npy(path, &bytes, &[labels.len() as u64])
}

fn write_u8_npy(path: &Path, values: &[u8], shape: &[u64]) -> Result<(), DataError> {
    let io = |source| DataError::Io { path: path.to_path_buf(), source };
    let mut buf = Vec::with_capacity(128 + values.len());
    let mut w = npyz::WriteOptions::<u8>::new().default_dtype().shape(shape).writer(&mut buf).begin_nd().map_err(io)?;
    w.extend(values.iter().copied()).map_err(io)?;
    w.finish().map_err(io)?;
    crate::checkpoint::write_atomic(path, &buf).map_err(io)
}

/// Reads a uint8 `[n, h, w]` `.npy` file of images.
///
/// # Shapes
/// returns `(pixels: [n, h, w] row-major, n, h, w)`.
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read, and as [`parse_images_npy`].
pub fn read_images_npy(path: &Path) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    parse_images_npy(&read(path)?, path)
}

/// Reads a 1-D `.npy` file of integer labels.
///
/// # Errors
/// [`DataError::Io`] if the file cannot be read, and as [`parse_labels_npy`].
pub fn read_labels_npy(path: &Path) -> Result<Vec<u32>, DataError> {
    parse_labels_npy(&read(path)?, path)
}

fn read(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })
}

/// Parses `.npy` bytes of uint8 images `[n, h, w]` (C or Fortran order); `path` is only used
/// in messages.
///
/// # Errors
/// [`DataError::Empty`]/[`DataError::Malformed`] for bytes that are not a `.npy` file;
/// [`DataError::Dtype`] for any dtype but uint8; [`DataError::ImageShape`] for a rank other
/// than 3; [`DataError::SizeMismatch`] if the data is not `n·h·w` bytes.
pub fn parse_images_npy(bytes: &[u8], path: &Path) -> Result<(Vec<u8>, usize, usize, usize), DataError> {
    let (h, body) = split_npy(bytes, path)?;
    let int = parse_int_descr(&h.descr).map_err(|meaning| dtype_error(path, &h.descr, meaning))?;
    if int.size != 1 || int.signed {
        let meaning = if int.signed { "signed integer" } else { "wider unsigned integer" };
        return Err(dtype_error(path, &h.descr, meaning));
    }
    let [n, rows, cols] = h.shape[..] else {
        return Err(DataError::ImageShape {
            path: path.to_path_buf(),
            shape: h.shape,
            expected: "a 3-D uint8 [n, h, w] array",
        });
    };
    check_size(path, &h.shape, 1, body.len())?;
    // The sizes agree with the bytes present, so they fit in usize.
    let (n, rows, cols) = (n as usize, rows as usize, cols as usize);
    let pixels = if h.fortran_order && body.len() > 1 {
        // element (i, r, c) lies at i + n·(r + rows·c)
        let mut out = vec![0u8; body.len()];
        for (k, &v) in body.iter().enumerate() {
            let (i, r, c) = (k % n, k / n % rows, k / n / rows);
            out[(i * rows + r) * cols + c] = v;
        }
        out
    } else {
        body.to_vec()
    };
    Ok((pixels, n, rows, cols))
}

/// Parses `.npy` bytes of 1-D integer labels (any integer dtype; see the module docs); `path`
/// is only used in messages.
///
/// # Errors
/// [`DataError::Empty`]/[`DataError::Malformed`] for bytes that are not a `.npy` file;
/// [`DataError::Dtype`] for a non-integer dtype; [`DataError::Rank`] for a rank other than 1;
/// [`DataError::SizeMismatch`] if the data is not `n` values; [`DataError::Malformed`] for a
/// negative label or one above `u32::MAX`.
///
/// ```
/// use ferroflow::data::images_io::parse_labels_npy;
/// let mut b = b"\x93NUMPY\x01\x00\x76\x00{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }".to_vec();
/// b.resize(128 - 1, b' ');
/// b.push(b'\n');
/// b.extend_from_slice(&7i64.to_le_bytes());
/// b.extend_from_slice(&3i64.to_le_bytes());
/// assert_eq!(parse_labels_npy(&b, "l.npy".as_ref()).unwrap(), vec![7, 3]);
/// ```
pub fn parse_labels_npy(bytes: &[u8], path: &Path) -> Result<Vec<u32>, DataError> {
    let (h, body) = split_npy(bytes, path)?;
    let int = parse_int_descr(&h.descr).map_err(|meaning| dtype_error(path, &h.descr, meaning))?;
    if h.shape.len() != 1 {
        return Err(DataError::Rank { path: path.to_path_buf(), shape: h.shape });
    }
    check_size(path, &h.shape, int.size, body.len())?;
    body.chunks_exact(int.size)
        .enumerate()
        .map(|(i, chunk)| {
            let v = int.read(chunk);
            u32::try_from(v).map_err(|_| DataError::Malformed {
                path: path.to_path_buf(),
                line: None,
                reason: format!("label {v} at index {i} is not a class index (0 ≤ label ≤ {})", u32::MAX),
            })
        })
        .collect()
}

fn dtype_error(path: &Path, descr: &str, meaning: &'static str) -> DataError {
    DataError::Dtype { path: path.to_path_buf(), descr: descr.to_string(), meaning }
}

/// [`DataError::SizeMismatch`] unless `∏ shape · itemsize == got` (computed without overflow).
fn check_size(path: &Path, shape: &[u64], itemsize: usize, got: usize) -> Result<(), DataError> {
    let expected =
        shape.iter().try_fold(itemsize as u128, |acc, &d| acc.checked_mul(u128::from(d))).unwrap_or(u128::MAX);
    if expected == got as u128 {
        return Ok(());
    }
    Err(DataError::SizeMismatch {
        path: path.to_path_buf(),
        shape: shape.to_vec(),
        itemsize,
        expected,
        got: got as u128,
    })
}

/// An integer `.npy` dtype.
#[derive(Debug, Clone, Copy)]
struct NpyInt {
    size: usize,
    signed: bool,
    big_endian: bool,
}

impl NpyInt {
    /// One value from exactly `size` bytes, widened to i128.
    fn read(self, b: &[u8]) -> i128 {
        let mut a = [0u8; 8];
        if self.big_endian {
            a[8 - self.size..].copy_from_slice(b);
            a.reverse();
        } else {
            a[..self.size].copy_from_slice(b);
        }
        let unsigned = u64::from_le_bytes(a);
        if self.signed {
            // sign-extend from `size` bytes
            let shift = 64 - 8 * self.size as u32;
            i128::from(((unsigned << shift) as i64) >> shift)
        } else {
            i128::from(unsigned)
        }
    }
}

/// A NumPy `descr` of an integer type, or what the dtype is in words.
fn parse_int_descr(descr: &str) -> Result<NpyInt, &'static str> {
    let (order, rest) = match descr.as_bytes().first() {
        Some(b'<' | b'>' | b'=' | b'|') => (descr.as_bytes()[0], &descr[1..]),
        _ => (b'=', descr),
    };
    let big_endian = match order {
        b'>' => true,
        b'<' => false,
        _ => cfg!(target_endian = "big"),
    };
    let size = match rest.get(1..) {
        Some("1") => 1,
        Some("2") => 2,
        Some("4") => 4,
        Some("8") => 8,
        _ => 0,
    };
    match rest.as_bytes().first() {
        Some(b'u') if size > 0 => Ok(NpyInt { size, signed: false, big_endian }),
        Some(b'i') if size > 0 => Ok(NpyInt { size, signed: true, big_endian }),
        Some(b'u' | b'i') => Err("integer of an unsupported size"),
        Some(b'f') => Err("floating point"),
        Some(b'b' | b'?') => Err("boolean"),
        Some(b'c') => Err("complex"),
        Some(b'U' | b'S' | b'a') => Err("string"),
        Some(b'O') => Err("Python object"),
        Some(b'M' | b'm') => Err("datetime"),
        Some(b'V') => Err("raw bytes"),
        _ => Err("unknown dtype"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file as NumPy writes it (version 1.0, header padded to 64 bytes).
    fn npy(descr: &str, fortran: bool, shape: &str, body: &[u8]) -> Vec<u8> {
        let f = if fortran { "True" } else { "False" };
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': {f}, 'shape': {shape}, }}").into_bytes();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(b' ');
        }
        h.push(b'\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn labels_of_every_integer_dtype_and_byte_order_read_the_same() {
        let q = Path::new("l.npy");
        let want = vec![0u32, 9, 10, 255];
        for (descr, size) in
            [("|u1", 1), ("|i1", 1), ("<i2", 2), (">u2", 2), ("<i4", 4), (">i4", 4), ("<i8", 8), (">u8", 8)]
        {
            let body: Vec<u8> = want
                .iter()
                .flat_map(|&v| {
                    let le = u64::from(v).to_le_bytes();
                    let mut b = le[..size].to_vec();
                    if descr.starts_with('>') {
                        b.reverse();
                    }
                    b
                })
                .collect();
            // i1 cannot hold 255: it reads as −1, which is rejected
            let got = parse_labels_npy(&npy(descr, false, "(4,)", &body), q);
            if descr == "|i1" {
                let e = got.unwrap_err();
                assert!(e.to_string().contains("label -1 at index 3"), "{e}");
            } else {
                assert_eq!(got.unwrap(), want, "{descr}");
            }
        }
        let e = parse_labels_npy(&npy("<i8", false, "(1,)", &(-5i64).to_le_bytes()), q).unwrap_err();
        assert!(matches!(e, DataError::Malformed { .. }) && e.to_string().contains("label -5 at index 0"), "{e}");
        let e = parse_labels_npy(&npy("<f4", false, "(1,)", &[0; 4]), q).unwrap_err();
        assert!(matches!(e, DataError::Dtype { meaning: "floating point", .. }), "{e}");
        let e = parse_labels_npy(&npy("<i8", false, "(1, 1)", &[0; 8]), q).unwrap_err();
        assert!(matches!(e, DataError::Rank { .. }), "{e}");
        let e = parse_labels_npy(&npy("<i8", false, "(2,)", &[0; 12]), q).unwrap_err();
        assert!(matches!(e, DataError::SizeMismatch { expected: 16, got: 12, .. }), "{e}");
    }

    #[test]
    fn images_in_fortran_order_are_transposed_to_row_major() {
        // x[i, r, c] = 100·i + 10·r + c for shape (2, 2, 3), stored column-major (i fastest)
        let (n, rows, cols) = (2, 2, 3);
        let mut body = vec![0u8; n * rows * cols];
        for i in 0..n {
            for r in 0..rows {
                for c in 0..cols {
                    body[i + n * (r + rows * c)] = (100 * i + 10 * r + c) as u8;
                }
            }
        }
        let (px, ..) = parse_images_npy(&npy("|u1", true, "(2, 2, 3)", &body), Path::new("x.npy")).unwrap();
        assert_eq!(px, vec![0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112]);
    }

    #[test]
    fn image_files_of_another_dtype_rank_or_size_are_rejected() {
        let q = Path::new("x.npy");
        let e = parse_images_npy(&npy("<i8", false, "(1, 1, 1)", &[0; 8]), q).unwrap_err();
        assert!(matches!(e, DataError::Dtype { meaning: "signed integer", .. }), "{e}");
        let e = parse_images_npy(&npy("<u2", false, "(1, 1, 1)", &[0; 2]), q).unwrap_err();
        assert!(matches!(e, DataError::Dtype { meaning: "wider unsigned integer", .. }), "{e}");
        let e = parse_images_npy(&npy("<f4", false, "(1, 1, 1)", &[0; 4]), q).unwrap_err();
        assert!(matches!(e, DataError::Dtype { meaning: "floating point", .. }), "{e}");
        let e = parse_images_npy(&npy("|u1", false, "(2, 256)", &[0; 512]), q).unwrap_err();
        assert!(matches!(e, DataError::ImageShape { .. }), "{e}");
        let huge = "(18446744073709551615, 18446744073709551615, 2)";
        let e = parse_images_npy(&npy("|u1", false, huge, &[0; 3]), q).unwrap_err();
        assert!(matches!(e, DataError::SizeMismatch { expected: u128::MAX, got: 3, .. }), "{e}");
        let e = write_images_npy(Path::new("never-written.npy"), &[0; 5], 1, 2, 3).unwrap_err();
        assert!(matches!(e, DataError::Malformed { .. }), "{e}");
        let e = write_labels_npy(Path::new("never-written.npy"), &[3, 256]).unwrap_err();
        assert!(e.to_string().contains("label 256 at index 1"), "{e}");
        assert!(!Path::new("never-written.npy").exists());
    }
}
