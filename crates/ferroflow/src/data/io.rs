//! Reading and writing point sets: CSV (one point a row) and NumPy `.npy` (2-D, f32 or f64).
//!
//! # Formats
//! - **CSV**: UTF-8 text, one point per line, values separated by commas (spaces around them
//!   are ignored), any number of columns, the same on every line. Blank lines are skipped. The
//!   first non-blank line is a header (and skipped) if any of its fields is not a number; it
//!   then fixes the number of columns. Values are read as f32 (Rust's `f32::from_str`: `1`,
//!   `-2.5e-3`, `.5`); NaN and ±∞ are rejected, and so are values beyond f32's range.
//!   Written without a header, each value in the shortest form that reads back bit-exact.
//! - **`.npy`** (NumPy format versions 1–3): a 2-D `[n, dim]` array, or 1-D `[n]` read as
//!   `[n, 1]`; dtype float32 or float64, little or big endian, C or Fortran order. float64 is
//!   rounded to f32. Written as version 1.0, `'<f4'`, C order.
//!
//! The byte-level parsers [`parse_csv`] and [`parse_npy`] never panic and never allocate more
//! than a small multiple of the input's size, whatever the bytes (they are fuzzed: see
//! `fuzz/README.md`). A header's claimed shape is checked against the file's size before
//! anything is allocated.

use std::fmt::Write as _;
use std::path::Path;

use super::{DataError, Points};

/// A data file format, chosen by the file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values (`.csv`).
    Csv,
    /// NumPy array file (`.npy`).
    Npy,
}

impl Format {
    /// The format a file's extension names (case-insensitive `.csv` or `.npy`).
    ///
    /// # Errors
    /// [`DataError::UnknownFormat`] for any other extension, or none.
    ///
    /// ```
    /// use ferroflow::data::io::Format;
    /// use std::path::Path;
    /// assert_eq!(Format::from_path(Path::new("a/b.NPY")).unwrap(), Format::Npy);
    /// assert!(Format::from_path(Path::new("b.txt")).is_err());
    /// ```
    pub fn from_path(path: &Path) -> Result<Format, DataError> {
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("csv") => Ok(Format::Csv),
            Some("npy") => Ok(Format::Npy),
            _ => Err(DataError::UnknownFormat {
                path: path.to_path_buf(),
                extension: path.extension().map(|e| e.to_string_lossy().into_owned()),
            }),
        }
    }
}

/// Reads a point set from a `.csv` or `.npy` file (see the module docs for both formats).
///
/// # Shapes
/// returns `[n, dim]` with n ≥ 1, dim ≥ 1.
///
/// # Errors
/// [`DataError`] naming the file and what is wrong: an unknown extension, an unreadable file,
/// an empty file, a ragged row (line, expected and actual columns), a field that is not a
/// number (line, column, the text), a NaN or infinite value, an unsupported `.npy` dtype or
/// rank, or a `.npy` shape that does not match the file's size.
pub fn read_points(path: &Path) -> Result<Points, DataError> {
    let format = Format::from_path(path)?;
    let bytes = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    match format {
        Format::Csv => parse_csv(&bytes, path),
        Format::Npy => parse_npy(&bytes, path),
    }
}

/// Writes a point set to a `.csv` or `.npy` file, atomically (a temporary file in the same
/// folder, synced and renamed over `path`, by [`crate::checkpoint::write_atomic`]). Reading it
/// back with [`read_points`] gives the same f32 values, bit for bit.
///
/// # Errors
/// [`DataError::UnknownFormat`] for an extension other than `.csv`/`.npy`;
/// [`DataError::NonFinite`] if a value is NaN or infinite (it could not be read back);
/// [`DataError::Malformed`] if `points` has no rows or columns, or `data.len() != n·dim`;
/// [`DataError::Io`] if the file cannot be written.
pub fn write_points(path: &Path, points: &Points) -> Result<(), DataError> {
    let format = Format::from_path(path)?;
    check_writable(points, path)?;
    let bytes = match format {
        Format::Csv => format_csv(points),
        Format::Npy => format_npy(points),
    };
    crate::checkpoint::write_atomic(path, &bytes).map_err(|source| DataError::Io { path: path.to_path_buf(), source })
}

fn check_writable(points: &Points, path: &Path) -> Result<(), DataError> {
    let malformed = |reason: String| DataError::Malformed { path: path.to_path_buf(), line: None, reason };
    if points.n == 0 || points.dim == 0 {
        return Err(malformed(format!(
            "refusing to write {}×{} points: a file without values cannot be read back",
            points.n, points.dim
        )));
    }
    if Some(points.data.len()) != points.n.checked_mul(points.dim) {
        return Err(malformed(format!(
            "points claim {}×{} values but hold {}",
            points.n,
            points.dim,
            points.data.len()
        )));
    }
    if let Some(k) = points.data.iter().position(|v| !v.is_finite()) {
        return Err(DataError::NonFinite {
            path: path.to_path_buf(),
            at: format!("row {}, column {}", k / points.dim + 1, k % points.dim + 1),
            value: f64::from(points.data[k]),
        });
    }
    Ok(())
}

/// The CSV text of `points`: no header, one row per point, values in Rust's shortest
/// round-trip form (`{}` of f32), `\n` line ends.
///
/// ```
/// use ferroflow::data::{Points, io::format_csv};
/// let p = Points::new(vec![1.0, -0.5, 3e-8, 2.0], 2, 2).unwrap();
/// assert_eq!(format_csv(&p), b"1,-0.5\n0.00000003,2\n");
/// ```
pub fn format_csv(points: &Points) -> Vec<u8> {
    let mut s = String::with_capacity(points.data.len() * 12);
    if points.dim > 0 {
        for row in points.data.chunks_exact(points.dim) {
            for (j, v) in row.iter().enumerate() {
                if j > 0 {
                    s.push(',');
                }
                let _ = write!(s, "{v}");
            }
            s.push('\n');
        }
    }
    s.into_bytes()
}

/// The `.npy` bytes of `points`: format version 1.0, dtype `'<f4'`, C order, shape `(n, dim)`,
/// the header padded with spaces to a multiple of 64 bytes as NumPy writes it.
///
/// ```
/// use ferroflow::data::{Points, io::{format_npy, parse_npy}};
/// let p = Points::new(vec![1.0, 2.0, 3.0], 3, 1).unwrap();
/// let b = format_npy(&p);
/// assert_eq!(b.len(), 128 + 3 * 4); // a 71-byte preamble + header, padded to 128
/// assert_eq!(parse_npy(&b, "x.npy".as_ref()).unwrap(), p);
/// ```
pub fn format_npy(points: &Points) -> Vec<u8> {
    let dict = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", points.n, points.dim);
    // magic (6) + version (2) + header length (2) + dict + padding + '\n' ≡ 0 (mod 64)
    let unpadded = 10 + dict.len() + 1;
    let header_len = dict.len() + 1 + (64 - unpadded % 64) % 64;
    let mut out = Vec::with_capacity(10 + header_len + points.data.len() * 4);
    out.extend_from_slice(NPY_MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(10 + header_len - 1, b' ');
    out.push(b'\n');
    for v in &points.data {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Parses CSV bytes (see the module docs); `path` is only used in messages.
///
/// # Errors
/// As [`read_points`], for CSV.
///
/// ```
/// use ferroflow::data::io::parse_csv;
/// let p = parse_csv(b"x,y\n1, 2\n3,4.5\n", "a.csv".as_ref()).unwrap();
/// assert_eq!((p.n, p.dim, p.data[3]), (2, 2, 4.5));
/// let e = parse_csv(b"1,2\n3\n", "a.csv".as_ref()).unwrap_err();
/// assert_eq!(e.to_string(), "a.csv:2: expected 2 columns (as the first row), got 1");
/// ```
pub fn parse_csv(bytes: &[u8], path: &Path) -> Result<Points, DataError> {
    let p = || path.to_path_buf();
    if bytes.is_empty() {
        return Err(DataError::Empty { path: p(), detail: "" });
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        DataError::Malformed {
            path: p(),
            line: Some(bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1),
            reason: format!("byte {at} is not UTF-8 text; is this a CSV file?"),
        }
    })?;
    let mut data = Vec::new();
    let mut dim: Option<usize> = None;
    let mut saw_header = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let row = raw.strip_suffix('\r').unwrap_or(raw);
        if row.trim().is_empty() {
            continue;
        }
        let fields = row.split(',').map(str::trim);
        let got = fields.clone().count();
        match dim {
            None => {
                dim = Some(got);
                if fields.clone().any(|f| f.parse::<f32>().is_err()) {
                    saw_header = true;
                    continue;
                }
            }
            Some(expected) if expected != got => {
                return Err(DataError::Ragged { path: p(), line, expected, got });
            }
            Some(_) => {}
        }
        for (j, f) in fields.enumerate() {
            let v = f.parse::<f32>().map_err(|_| DataError::NotANumber {
                path: p(),
                line,
                column: j + 1,
                text: f.chars().take(40).collect(),
            })?;
            if !v.is_finite() {
                return Err(DataError::NonFinite {
                    path: p(),
                    at: format!("line {line}, column {}", j + 1),
                    value: f.parse::<f64>().unwrap_or(f64::from(v)),
                });
            }
            data.push(v);
        }
    }
    match dim {
        Some(dim) if !data.is_empty() => Ok(Points { n: data.len() / dim, data, dim }),
        _ => Err(DataError::Empty {
            path: p(),
            detail: if saw_header { "a header but no rows" } else { "only blank lines" },
        }),
    }
}

const NPY_MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Deepest nesting of brackets accepted in a `.npy` header (real headers nest two deep).
const MAX_DEPTH: usize = 4;

/// Parses `.npy` bytes (see the module docs); `path` is only used in messages.
///
/// # Errors
/// As [`read_points`], for `.npy`.
///
/// ```
/// use ferroflow::data::io::parse_npy;
/// let mut b = b"\x93NUMPY\x01\x00\x46\x00{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }".to_vec();
/// b.resize(80, b' ');
/// b.extend_from_slice(&7i64.to_le_bytes());
/// let e = parse_npy(&b, "a.npy".as_ref()).unwrap_err();
/// assert!(e.to_string().starts_with("a.npy: dtype \"<i8\" (signed integer) is not supported"));
/// ```
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<Points, DataError> {
    let p = || path.to_path_buf();
    let (h, body) = split_npy(bytes, path)?;
    let dtype =
        parse_descr(&h.descr).map_err(|meaning| DataError::Dtype { path: p(), descr: h.descr.clone(), meaning })?;
    let (n, dim) = match h.shape[..] {
        [n] => (n, 1),
        [n, d] => (n, d),
        _ => return Err(DataError::Rank { path: p(), shape: h.shape }),
    };
    let itemsize = dtype.itemsize();
    let expected = u128::from(n).checked_mul(u128::from(dim)).and_then(|c| c.checked_mul(itemsize as u128));
    let got = body.len();
    if expected != Some(got as u128) {
        return Err(DataError::SizeMismatch {
            path: p(),
            shape: h.shape,
            itemsize,
            expected: expected.unwrap_or(u128::MAX),
            got: got as u128,
        });
    }
    // The sizes now agree with the bytes present, so these fit in usize and bound the allocation.
    let (n, dim) = (n as usize, dim as usize);
    if n == 0 || dim == 0 {
        return Err(DataError::Empty { path: p(), detail: "a zero-size array" });
    }
    let mut data = vec![0f32; n * dim];
    for (k, chunk) in body.chunks_exact(itemsize).enumerate() {
        let value = dtype.read(chunk);
        let (i, j) = if h.fortran_order { (k % n, k / n) } else { (k / dim, k % dim) };
        let v = value as f32;
        if !v.is_finite() {
            return Err(DataError::NonFinite { path: p(), at: format!("row {}, column {}", i + 1, j + 1), value });
        }
        data[i * dim + j] = v;
    }
    Ok(Points { data, n, dim })
}

/// The parsed header of a `.npy` file and the bytes after it (not yet checked against the
/// header's shape); shared with the image and label readers of `images_io`.
///
/// # Errors
/// [`DataError::Empty`] for no bytes; [`DataError::Malformed`] for a missing magic string, an
/// unknown version, a truncated preamble or header, or a header that is not the dict NumPy
/// writes.
pub(super) fn split_npy<'a>(bytes: &'a [u8], path: &Path) -> Result<(NpyHeader, &'a [u8]), DataError> {
    let p = || path.to_path_buf();
    let malformed = |reason: String| DataError::Malformed { path: p(), line: None, reason };
    if bytes.is_empty() {
        return Err(DataError::Empty { path: p(), detail: "" });
    }
    if !bytes.starts_with(NPY_MAGIC) {
        return Err(malformed("not a .npy file (it does not start with \\x93NUMPY)".into()));
    }
    let (header_start, header_len) = match bytes.get(6..8) {
        Some([1, _]) => (10, bytes.get(8..10).map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))),
        Some([2 | 3, _]) => (12, bytes.get(8..12).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)),
        Some([major, minor]) => return Err(malformed(format!("unsupported .npy format version {major}.{minor}"))),
        _ => (0, None),
    };
    let header_len = header_len.ok_or_else(|| malformed("truncated: the file ends inside the .npy preamble".into()))?;
    let header_end = header_start + header_len;
    let Some(header) = bytes.get(header_start..header_end) else {
        return Err(malformed(format!(
            "truncated: the header claims {header_len} bytes but the file has {} after the preamble",
            bytes.len() - header_start.min(bytes.len())
        )));
    };
    let header = std::str::from_utf8(header).map_err(|_| malformed("the .npy header is not text".into()))?;
    let h = parse_header(header).map_err(|reason| malformed(format!("bad .npy header: {reason}")))?;
    Ok((h, &bytes[header_end..]))
}

/// The element types read from `.npy`.
#[derive(Debug, Clone, Copy)]
enum NpyFloat {
    F32 { big_endian: bool },
    F64 { big_endian: bool },
}

impl NpyFloat {
    fn itemsize(self) -> usize {
        match self {
            NpyFloat::F32 { .. } => 4,
            NpyFloat::F64 { .. } => 8,
        }
    }

    /// One value from exactly `itemsize()` bytes.
    fn read(self, b: &[u8]) -> f64 {
        match self {
            NpyFloat::F32 { big_endian } => {
                let a = [b[0], b[1], b[2], b[3]];
                f64::from(if big_endian { f32::from_be_bytes(a) } else { f32::from_le_bytes(a) })
            }
            NpyFloat::F64 { big_endian } => {
                let a = [b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]];
                if big_endian { f64::from_be_bytes(a) } else { f64::from_le_bytes(a) }
            }
        }
    }
}

/// A NumPy `descr` string → the float type, or what the dtype is in words.
fn parse_descr(descr: &str) -> Result<NpyFloat, &'static str> {
    let mut chars = descr.chars();
    let (order, rest) = match chars.next() {
        Some(c @ ('<' | '>' | '=' | '|')) => (c, chars.as_str()),
        _ => ('=', descr),
    };
    let big_endian = match order {
        '>' => true,
        '<' => false,
        _ => cfg!(target_endian = "big"),
    };
    let kind = rest.chars().next();
    let size = rest.get(1..).unwrap_or("");
    match (kind, size) {
        (Some('f'), "4") => Ok(NpyFloat::F32 { big_endian }),
        (Some('f'), "8") => Ok(NpyFloat::F64 { big_endian }),
        (Some('f'), "2") => Err("float16"),
        (Some('f'), _) => Err("extended-precision float"),
        (Some('i'), _) => Err("signed integer"),
        (Some('u'), _) => Err("unsigned integer"),
        (Some('b' | '?'), _) => Err("boolean"),
        (Some('c'), _) => Err("complex"),
        (Some('U' | 'S' | 'a'), _) => Err("string"),
        (Some('O'), _) => Err("Python object"),
        (Some('M' | 'm'), _) => Err("datetime"),
        (Some('V'), _) => Err("raw bytes"),
        _ => Err("unknown dtype"),
    }
}

/// The three entries of a `.npy` header.
#[derive(Debug)]
pub(super) struct NpyHeader {
    /// The dtype, e.g. `'<f4'`, `'|u1'`.
    pub(super) descr: String,
    /// Whether the data is column-major.
    pub(super) fortran_order: bool,
    /// The shape.
    pub(super) shape: Vec<u64>,
}

/// A Python literal, as far as `.npy` headers use them.
#[derive(Debug)]
enum Lit {
    Str(String),
    Bool(bool),
    Int(u64),
    Seq(Vec<Lit>),
    Dict(Vec<(Lit, Lit)>),
}

/// Parses the header dict `{'descr': …, 'fortran_order': …, 'shape': (…), }`.
fn parse_header(text: &str) -> Result<NpyHeader, String> {
    let mut c = Cursor { s: text.as_bytes(), i: 0 };
    let lit = c.literal(0)?;
    c.skip_ws();
    if c.i != c.s.len() {
        return Err(format!("unexpected {:?} after the dict", c.rest_preview()));
    }
    let Lit::Dict(entries) = lit else { return Err("the header is not a dict".into()) };
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    for (k, v) in entries {
        match (k, v) {
            (Lit::Str(k), Lit::Str(v)) if k == "descr" => descr = Some(v),
            (Lit::Str(k), Lit::Seq(_) | Lit::Dict(_)) if k == "descr" => descr = Some("V (structured)".into()),
            (Lit::Str(k), Lit::Bool(b)) if k == "fortran_order" => fortran_order = Some(b),
            (Lit::Str(k), Lit::Seq(items)) if k == "shape" => {
                let dims = items
                    .into_iter()
                    .map(|d| match d {
                        Lit::Int(d) => Ok(d),
                        other => Err(format!("shape entry {other:?} is not a non-negative integer")),
                    })
                    .collect::<Result<Vec<u64>, String>>()?;
                shape = Some(dims);
            }
            (Lit::Str(k), v) if ["descr", "fortran_order", "shape"].contains(&k.as_str()) => {
                return Err(format!("{k:?} has the wrong type: {v:?}"));
            }
            _ => {}
        }
    }
    Ok(NpyHeader {
        descr: descr.ok_or("no 'descr' entry")?,
        fortran_order: fortran_order.ok_or("no 'fortran_order' entry")?,
        shape: shape.ok_or("no 'shape' entry")?,
    })
}

/// A byte cursor over header text.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn rest_preview(&self) -> String {
        String::from_utf8_lossy(&self.s[self.i.min(self.s.len())..]).chars().take(20).collect()
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {:?}", b as char, self.rest_preview()))
        }
    }

    /// A literal; `depth` counts the enclosing brackets.
    fn literal(&mut self, depth: usize) -> Result<Lit, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        match self.peek() {
            Some(q @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.s.get(self.i).is_some_and(|&b| b != q) {
                    self.i += 1;
                }
                if self.i >= self.s.len() {
                    return Err("unterminated string".into());
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(Lit::Str(text))
            }
            Some(open @ (b'(' | b'[' | b'{')) => {
                self.i += 1;
                let close = match open {
                    b'(' => b')',
                    b'[' => b']',
                    _ => b'}',
                };
                let (mut items, mut pairs) = (Vec::new(), Vec::new());
                loop {
                    if self.peek() == Some(close) {
                        self.i += 1;
                        break;
                    }
                    let item = self.literal(depth + 1)?;
                    if open == b'{' {
                        self.expect(b':')?;
                        pairs.push((item, self.literal(depth + 1)?));
                    } else {
                        items.push(item);
                    }
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b) if b == close => {}
                        _ => return Err(format!("expected ',' or {:?} at {:?}", close as char, self.rest_preview())),
                    }
                }
                Ok(if open == b'{' { Lit::Dict(pairs) } else { Lit::Seq(items) })
            }
            Some(b'0'..=b'9') => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
                let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                let v = digits.parse::<u64>().map_err(|_| format!("integer {digits:?} is too large"))?;
                if self.s.get(self.i) == Some(&b'L') {
                    self.i += 1; // Python 2's long suffix, as old NumPy wrote shapes
                }
                Ok(Lit::Int(v))
            }
            Some(_) if self.s[self.i..].starts_with(b"True") => {
                self.i += 4;
                Ok(Lit::Bool(true))
            }
            Some(_) if self.s[self.i..].starts_with(b"False") => {
                self.i += 5;
                Ok(Lit::Bool(false))
            }
            Some(_) => Err(format!("unexpected {:?}", self.rest_preview())),
            None => Err("unexpected end of the header".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("t.csv")
    }

    #[test]
    fn csv_header_blank_lines_crlf_and_spaces_are_accepted() {
        let pts = parse_csv(b"\xEF\xBB\xBFa, b ,c\r\n\r\n1,2,3\r\n 4 , 5e-1,-6\r\n\n", p()).unwrap();
        assert_eq!(pts, Points { data: vec![1.0, 2.0, 3.0, 4.0, 0.5, -6.0], n: 2, dim: 3 });
        let one = parse_csv(b"7", p()).unwrap();
        assert_eq!((one.n, one.dim, one.data[0]), (1, 1, 7.0));
    }

    #[test]
    fn csv_errors_name_the_line_column_and_text() {
        let e = parse_csv(b"x,y\n1,2\n3,4,5\n", p()).unwrap_err();
        assert!(matches!(e, DataError::Ragged { line: 3, expected: 2, got: 3, .. }), "{e}");
        let e = parse_csv(b"1,2\n\n3,abc\n", p()).unwrap_err();
        assert!(matches!(&e, DataError::NotANumber { line: 3, column: 2, text, .. } if text == "abc"), "{e}");
        assert_eq!(e.to_string(), "t.csv:3: column 2: \"abc\" is not a number");
        let e = parse_csv(b"1,2\n3,\n", p()).unwrap_err();
        assert!(matches!(&e, DataError::NotANumber { line: 2, column: 2, text, .. } if text.is_empty()), "{e}");
        for (bad, col) in [(&b"1,NaN\n"[..], 2), (b"inf,1\n", 1), (b"1,-infinity\n", 2), (b"1e39,0\n", 1)] {
            let e = parse_csv(bad, p()).unwrap_err();
            let want = format!("line 1, column {col}");
            assert!(matches!(&e, DataError::NonFinite { at, .. } if *at == want), "{e}");
        }
        assert!(
            parse_csv(b"1e39,0\n", p()).unwrap_err().to_string().contains("1000000000000000000000000000000000000000")
        );
        assert!(matches!(parse_csv(b"", p()), Err(DataError::Empty { detail: "", .. })));
        assert!(matches!(parse_csv(b"\n \n\r\n", p()), Err(DataError::Empty { detail: "only blank lines", .. })));
        assert!(matches!(parse_csv(b"x,y\n", p()), Err(DataError::Empty { detail: "a header but no rows", .. })));
        let e = parse_csv(b"1,2\n\xff\xfe\n", p()).unwrap_err();
        assert!(matches!(e, DataError::Malformed { line: Some(2), .. }), "{e}");
        // every message is one line
        assert!(!e.to_string().contains('\n'));
    }

    fn npy(descr: &str, fortran: bool, shape: &str, body: &[u8]) -> Vec<u8> {
        let dict = format!(
            "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
            if fortran { "True" } else { "False" }
        );
        let mut h = dict.into_bytes();
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
    fn npy_reads_f64_big_endian_fortran_and_1d() {
        let q = Path::new("t.npy");
        // [[1, 2, 3], [4, 5, 6]] stored column by column, big-endian f64
        let body: Vec<u8> = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0].iter().flat_map(|v| v.to_be_bytes()).collect();
        let pts = parse_npy(&npy(">f8", true, "(2, 3)", &body), q).unwrap();
        assert_eq!(pts, Points { data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], n: 2, dim: 3 });
        let body: Vec<u8> = [0.5f32, -1.5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let pts = parse_npy(&npy("<f4", false, "(2,)", &body), q).unwrap();
        assert_eq!(pts, Points { data: vec![0.5, -1.5], n: 2, dim: 1 });
    }

    #[test]
    fn npy_errors_for_dtype_rank_size_nonfinite_and_truncation() {
        let q = Path::new("t.npy");
        let f4 = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        for (descr, meaning) in [("<i4", "signed integer"), ("|b1", "boolean"), ("<c8", "complex"), ("<f2", "float16")]
        {
            let e = parse_npy(&npy(descr, false, "(1, 1)", &[0; 8]), q).unwrap_err();
            assert!(matches!(&e, DataError::Dtype { meaning: m, .. } if *m == meaning), "{e}");
        }
        for shape in ["()", "(1, 1, 1)"] {
            let e = parse_npy(&npy("<f4", false, shape, &f4(&[1.0])), q).unwrap_err();
            assert!(matches!(e, DataError::Rank { .. }), "{e}");
        }
        // truncated body, trailing bytes and a shape far larger than the file: no allocation
        let e = parse_npy(&npy("<f4", false, "(2, 2)", &f4(&[1.0, 2.0, 3.0])), q).unwrap_err();
        assert!(matches!(e, DataError::SizeMismatch { expected: 16, got: 12, .. }), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = parse_npy(&npy("<f4", false, "(1, 1)", &f4(&[1.0, 2.0])), q).unwrap_err();
        assert!(matches!(e, DataError::SizeMismatch { expected: 4, got: 8, .. }), "{e}");
        let e = parse_npy(&npy("<f8", false, "(18446744073709551615, 18446744073709551615)", &[]), q).unwrap_err();
        assert!(matches!(e, DataError::SizeMismatch { expected: u128::MAX, got: 0, .. }), "{e}");
        let e = parse_npy(&npy("<f4", false, "(0, 3)", &[]), q).unwrap_err();
        assert!(matches!(e, DataError::Empty { .. }), "{e}");
        let e = parse_npy(&npy("<f4", false, "(1, 2)", &f4(&[1.0, f32::NAN])), q).unwrap_err();
        assert!(matches!(&e, DataError::NonFinite { at, .. } if at == "row 1, column 2"), "{e}");
        let big: Vec<u8> = 1e300f64.to_le_bytes().to_vec();
        let e = parse_npy(&npy("<f8", false, "(1,)", &big), q).unwrap_err();
        assert!(matches!(e, DataError::NonFinite { value: 1e300, .. }), "{e}");
        // truncation inside the preamble and inside the header
        let good = npy("<f4", false, "(1, 1)", &f4(&[1.0]));
        for cut in [1, 6, 9, 40] {
            let e = parse_npy(&good[..cut], q).unwrap_err();
            assert!(matches!(e, DataError::Malformed { .. }), "cut {cut}: {e}");
        }
        assert!(matches!(parse_npy(b"", q), Err(DataError::Empty { .. })));
        assert!(matches!(parse_npy(b"PK\x03\x04", q), Err(DataError::Malformed { .. })));
        let deep =
            format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {}1{}, }}", "(".repeat(50), ")".repeat(50));
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend_from_slice(&(deep.len() as u16).to_le_bytes());
        b.extend_from_slice(deep.as_bytes());
        assert!(matches!(parse_npy(&b, q), Err(DataError::Malformed { .. })));
    }

    #[test]
    fn writing_rejects_what_could_not_be_read_back() {
        let q = Path::new("never-written.csv");
        let nan = Points { data: vec![1.0, f32::NAN], n: 1, dim: 2 };
        assert!(matches!(write_points(q, &nan), Err(DataError::NonFinite { .. })));
        let empty = Points { data: vec![], n: 0, dim: 2 };
        assert!(matches!(write_points(q, &empty), Err(DataError::Malformed { .. })));
        let bad = Points { data: vec![1.0], n: 1, dim: 2 };
        assert!(matches!(write_points(q, &bad), Err(DataError::Malformed { .. })));
        assert!(matches!(write_points(Path::new("x.txt"), &nan), Err(DataError::UnknownFormat { .. })));
        assert!(!q.exists());
    }
}
