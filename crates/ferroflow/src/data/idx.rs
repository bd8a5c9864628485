//! LeCun's IDX files (the format MNIST ships in), plain or gzipped.
//!
//! # Format
//! A big-endian header — the magic number (two zero bytes, the element type `0x08` = unsigned
//! byte, the rank) and one `u32` per dimension — then the elements, row-major:
//! - images (`idx3-ubyte`, magic `0x00000803`): dims `n, rows, cols`, then `n·rows·cols` bytes;
//! - labels (`idx1-ubyte`, magic `0x00000801`): dim `n`, then `n` bytes (here: digits 0–9).
//!
//! A file starting with the gzip magic `1f 8b` is decompressed first (all gzip members, as
//! `gunzip` does). Source: <http://yann.lecun.com/exdb/mnist/> ("FILE FORMATS FOR THE MNIST
//! DATABASE").
//!
//! The byte-level parsers [`parse_idx_images`] and [`parse_idx_labels`] never panic, and never
//! allocate on a header's word: at most `expected + 1` decompressed bytes are kept, in a buffer
//! that grows only as bytes arrive (the rest of a longer stream is decoded and counted, not
//! kept), and the size is checked against the header before any pixel array is built (they
//! are fuzzed: see `fuzz/README.md`).

use std::io::Read as _;
use std::path::Path;

use super::DataError;
use super::error::IdxKind;

/// The images of an IDX `idx3-ubyte` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub n: usize,
    /// Rows of each image (its height).
    pub rows: usize,
    /// Columns of each image (its width).
    pub cols: usize,
    /// `n·rows·cols` pixels, image by image, each row-major; 0 is background, 255 ink.
    pub pixels: Vec<u8>,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Reads an IDX images file (`*-images-idx3-ubyte`, gzipped or not).
///
/// # Shapes
/// returns `pixels: [n, rows, cols]`, row-major.
///
/// # Errors
/// [`DataError::MissingFile`] if the file does not exist, [`DataError::Io`] if it cannot be
/// read, and as [`parse_idx_images`].
pub fn read_idx_images(path: &Path) -> Result<IdxImages, DataError> {
    parse_idx_images(&read_file(path)?, path)
}

/// Reads an IDX labels file (`*-labels-idx1-ubyte`, gzipped or not) of digits 0–9.
///
/// # Errors
/// [`DataError::MissingFile`] if the file does not exist, [`DataError::Io`] if it cannot be
/// read, and as [`parse_idx_labels`].
pub fn read_idx_labels(path: &Path) -> Result<Vec<u8>, DataError> {
    parse_idx_labels(&read_file(path)?, path)
}

fn read_file(path: &Path) -> Result<Vec<u8>, DataError> {
    std::fs::read(path).map_err(|source| match source.kind() {
        std::io::ErrorKind::NotFound => DataError::MissingFile { path: path.to_path_buf(), also_tried: vec![] },
        _ => DataError::Io { path: path.to_path_buf(), source },
    })
}

/// Parses the bytes of an IDX images file (gzipped or not); `path` is only used in messages.
///
/// # Errors
/// [`DataError::Gzip`] for a corrupt gzip stream; [`DataError::IdxMagic`] if the magic number
/// is not `0x00000803` (naming what it is instead: a labels file, another rank or type);
/// [`DataError::IdxLength`] if the data is shorter (truncated) or longer than `n·rows·cols`.
///
/// ```
/// use ferroflow::data::idx::parse_idx_images;
/// let mut b = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3];
/// b.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
/// let im = parse_idx_images(&b, "x".as_ref()).unwrap();
/// assert_eq!((im.n, im.rows, im.cols, im.pixels[5]), (2, 1, 3, 6));
/// let e = parse_idx_images(&b[..20], "x".as_ref()).unwrap_err();
/// assert_eq!(e.to_string(), "x: the IDX header ([2, 1, 3]) needs 22 bytes, the file has 20 (truncated?)");
/// ```
pub fn parse_idx_images(bytes: &[u8], path: &Path) -> Result<IdxImages, DataError> {
    let ([n, rows, cols], body) = parse_idx::<3>(bytes, path, IdxKind::Images)?;
    // `body.len() == n·rows·cols` was checked, so these fit in usize.
    Ok(IdxImages { n: n as usize, rows: rows as usize, cols: cols as usize, pixels: body })
}

/// Parses the bytes of an IDX labels file (gzipped or not) of digits; `path` is only used in
/// messages.
///
/// # Errors
/// As [`parse_idx_images`] (with the labels' magic `0x00000801`), and
/// [`DataError::LabelRange`] for the first label that is not a digit 0–9.
///
/// ```
/// use ferroflow::data::idx::parse_idx_labels;
/// let b = [0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9];
/// assert_eq!(parse_idx_labels(&b, "y".as_ref()).unwrap(), vec![7, 0, 9]);
/// let e = parse_idx_labels(&[0, 0, 8, 1, 0, 0, 0, 1, 10], "y".as_ref()).unwrap_err();
/// assert_eq!(e.to_string(), "y: label 10 at index 0 is not a digit 0-9");
/// ```
pub fn parse_idx_labels(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    let (_, labels) = parse_idx::<1>(bytes, path, IdxKind::Labels)?;
    if let Some(index) = labels.iter().position(|&l| l > 9) {
        return Err(DataError::LabelRange { path: path.to_path_buf(), index, label: u64::from(labels[index]) });
    }
    Ok(labels)
}

/// The `R` dims and the elements of an IDX file of `kind` (of rank `R`), checked against each other.
fn parse_idx<const R: usize>(bytes: &[u8], path: &Path, kind: IdxKind) -> Result<([u32; R], Vec<u8>), DataError> {
    let gzipped = bytes.starts_with(&GZIP_MAGIC);
    let header_len = 4 + 4 * R;
    if gzipped {
        let mut decoder = flate2::read::MultiGzDecoder::new(bytes);
        let mut header = Vec::with_capacity(header_len);
        read_at_most(&mut decoder, header_len as u64, &mut header, path)?;
        let dims = parse_header::<R>(&header, path, kind, true)?;
        let expected = expected_len(&dims, header_len);
        // Read one byte past what the header claims, to see trailing data; the buffer grows
        // only with the bytes that really arrive.
        let mut body = Vec::new();
        let limit = u64::try_from(expected - header_len as u128).unwrap_or(u64::MAX).saturating_add(1);
        read_at_most(&mut decoder, limit, &mut body, path)?;
        let mut found = (header_len + body.len()) as u128;
        if found > expected {
            // Trailing data: decode the rest without keeping it, so that a corrupt stream is
            // reported as such (its CRC is checked at its end) and the count is the true one.
            let rest = std::io::copy(&mut decoder, &mut std::io::sink())
                .map_err(|source| DataError::Gzip { path: path.to_path_buf(), source })?;
            found += u128::from(rest);
        }
        check_len(path, &dims, expected, found, true)?;
        Ok((dims, body))
    } else {
        let dims = parse_header::<R>(bytes, path, kind, false)?;
        let expected = expected_len(&dims, header_len);
        check_len(path, &dims, expected, bytes.len() as u128, false)?;
        Ok((dims, bytes[header_len..].to_vec()))
    }
}

/// Appends at most `limit` bytes of `r` to `out`.
fn read_at_most(r: &mut impl std::io::Read, limit: u64, out: &mut Vec<u8>, path: &Path) -> Result<(), DataError> {
    r.take(limit).read_to_end(out).map(|_| ()).map_err(|source| DataError::Gzip { path: path.to_path_buf(), source })
}

/// The dims of a header, after checking the magic number; a short header is an [`DataError::IdxLength`].
fn parse_header<const R: usize>(b: &[u8], path: &Path, kind: IdxKind, gzipped: bool) -> Result<[u32; R], DataError> {
    let word = |i: usize| b.get(4 * i..4 * i + 4).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
    let magic = match word(0) {
        Some(m) => m,
        None => {
            let found = b.len() as u128;
            return Err(DataError::IdxLength { path: path.to_path_buf(), dims: vec![], expected: 4, found, gzipped });
        }
    };
    if magic != kind.magic() {
        return Err(DataError::IdxMagic { path: path.to_path_buf(), kind, found: magic, expected: kind.magic() });
    }
    let dims: Vec<u32> = (1..=R).map_while(word).collect();
    <[u32; R]>::try_from(dims).map_err(|dims| DataError::IdxLength {
        path: path.to_path_buf(),
        dims,
        expected: 4 + 4 * R as u128,
        found: b.len() as u128,
        gzipped,
    })
}

/// Header plus elements, in bytes (u128: the product of three u32 cannot overflow it).
fn expected_len(dims: &[u32], header_len: usize) -> u128 {
    header_len as u128 + dims.iter().map(|&d| u128::from(d)).product::<u128>()
}

fn check_len(path: &Path, dims: &[u32], expected: u128, found: u128, gzipped: bool) -> Result<(), DataError> {
    if expected == found {
        return Ok(());
    }
    Err(DataError::IdxLength { path: path.to_path_buf(), dims: dims.to_vec(), expected, found, gzipped })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    fn p() -> &'static Path {
        Path::new("f")
    }

    fn images(n: u32, rows: u32, cols: u32, body: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, 3];
        for d in [n, rows, cols] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend_from_slice(body);
        b
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzipped_and_plain_files_parse_to_the_same_images() {
        let body: Vec<u8> = (0..24).map(|i| (i * 11) as u8).collect();
        let plain = images(2, 3, 4, &body);
        let want = IdxImages { n: 2, rows: 3, cols: 4, pixels: body };
        assert_eq!(parse_idx_images(&plain, p()).unwrap(), want);
        assert_eq!(parse_idx_images(&gzip(&plain), p()).unwrap(), want);
        // two gzip members, as `cat a.gz b.gz` makes: read as one stream, as gunzip does
        let mut two = gzip(&plain[..10]);
        two.extend_from_slice(&gzip(&plain[10..]));
        assert_eq!(parse_idx_images(&two, p()).unwrap(), want);
        // zero images is a valid file
        assert_eq!(parse_idx_images(&images(0, 28, 28, &[]), p()).unwrap().n, 0);
    }

    #[test]
    fn wrong_magic_names_both_numbers_and_what_the_file_is() {
        let labels = [0, 0, 8, 1, 0, 0, 0, 1, 3];
        let e = parse_idx_images(&labels, p()).unwrap_err();
        assert!(matches!(e, DataError::IdxMagic { kind: IdxKind::Images, found: 0x801, expected: 0x803, .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "f: magic number 0x00000801 is not that of an IDX images (idx3-ubyte) file (expected 0x00000803); \
             this is a labels file: are the file names swapped?"
        );
        let e = parse_idx_labels(&images(1, 1, 1, &[0]), p()).unwrap_err();
        assert!(e.to_string().contains("this is an images file"), "{e}");
        let e = parse_idx_labels(&[0, 0, 0x0d, 1, 0, 0, 0, 0], p()).unwrap_err();
        assert!(e.to_string().contains("another element type"), "{e}");
        let e = parse_idx_labels(b"P5\n28 28\n255\n", p()).unwrap_err();
        assert!(matches!(e, DataError::IdxMagic { found: 0x5035_0a32, .. }), "{e}");
        assert!(e.to_string().ends_with("; not an IDX file"), "{e}");
    }

    #[test]
    fn truncated_trailing_and_lying_headers_are_length_errors() {
        let e = parse_idx_images(&images(2, 2, 2, &[1; 7]), p()).unwrap_err();
        assert!(matches!(e, DataError::IdxLength { expected: 24, found: 23, gzipped: false, .. }), "{e}");
        let e = parse_idx_images(&images(1, 2, 2, &[1; 5]), p()).unwrap_err();
        assert!(e.to_string().ends_with("needs 20 bytes, the file has 21 (trailing bytes)"), "{e}");
        // a header claiming 2^96 bytes, plain and gzipped: no allocation, an exact count
        let huge = images(u32::MAX, u32::MAX, u32::MAX, &[9; 3]);
        let want = 16 + u128::from(u32::MAX).pow(3);
        let e = parse_idx_images(&huge, p()).unwrap_err();
        assert!(matches!(e, DataError::IdxLength { expected, found: 19, .. } if expected == want), "{e}");
        let e = parse_idx_images(&gzip(&huge), p()).unwrap_err();
        assert!(matches!(e, DataError::IdxLength { expected, found: 19, gzipped: true, .. } if expected == want));
        assert!(e.to_string().contains("the decompressed file has 19 (truncated?)"), "{e}");
        // cut inside the magic number and inside the dims
        for cut in [0, 3, 4, 9, 15] {
            let e = parse_idx_images(&images(1, 1, 1, &[0])[..cut], p()).unwrap_err();
            assert!(matches!(e, DataError::IdxLength { found, .. } if found == cut as u128), "cut {cut}: {e}");
        }
    }

    #[test]
    fn corrupt_gzip_and_out_of_range_labels_are_reported() {
        let mut g = gzip(&images(1, 2, 2, &[1, 2, 3, 4]));
        let k = g.len() - 10;
        g[k] ^= 0xff; // inside the deflate stream or its CRC
        let e = parse_idx_images(&g, p()).unwrap_err();
        assert!(matches!(e, DataError::Gzip { .. }), "{e}");
        assert!(matches!(parse_idx_images(&[0x1f, 0x8b], p()), Err(DataError::Gzip { .. })));
        let e = parse_idx_labels(&gzip(&[0, 0, 8, 1, 0, 0, 0, 4, 1, 9, 200, 11]), p()).unwrap_err();
        assert!(matches!(e, DataError::LabelRange { index: 2, label: 200, .. }), "{e}");
    }

    #[test]
    fn a_missing_file_names_the_path_and_the_remedy() {
        let e = read_idx_labels(Path::new("/nonexistent/t10k-labels-idx1-ubyte")).unwrap_err();
        assert!(matches!(e, DataError::MissingFile { .. }), "{e}");
        assert_eq!(
            e.to_string(),
            "/nonexistent/t10k-labels-idx1-ubyte: no such file; point --data or FERROFLOW_DATA at the folder \
             holding the MNIST IDX files"
        );
    }
}
