//! Writing pictures: the format from the extension, rendering into a temporary file beside
//! the destination, then an atomic rename.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::{BitMapBackend, DrawingArea, IntoDrawingArea, WHITE};

use super::{PlotError, PlotErrorKind, font};

/// A drawing area on an in-memory RGB bitmap.
pub(crate) type Area<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// A plotters error, boxed (plotters' error types are generic over the backend).
pub(crate) struct DrawErr(Box<dyn std::error::Error + Send + Sync>);

impl<E: std::error::Error + Send + Sync + 'static> From<E> for DrawErr {
    fn from(e: E) -> Self {
        DrawErr(Box::new(e))
    }
}

impl From<DrawErr> for PlotErrorKind {
    fn from(e: DrawErr) -> Self {
        PlotErrorKind::Draw { source: e.0 }
    }
}

/// Result of a drawing step.
pub(crate) type DrawResult<T = ()> = Result<T, DrawErr>;

/// Runs `f`, attaching `path` to its error, after making sure the embedded font is loaded.
pub(crate) fn with_path(path: &Path, f: impl FnOnce() -> Result<(), PlotErrorKind>) -> Result<(), PlotError> {
    let kind = if font::ensure_registered() { f() } else { Err(PlotErrorKind::Font) };
    kind.map_err(|kind| PlotError { path: path.to_path_buf(), kind })
}

/// What a destination path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// `*.png`.
    Png,
    /// `*.gif`.
    Gif,
    /// No extension, or an existing directory: a folder of `frame_NNNN.png`.
    Folder,
}

/// The format of `path`, by its extension (case-insensitive).
pub(crate) fn format_of(path: &Path) -> Format {
    if path.is_dir() {
        return Format::Folder;
    }
    match path.extension().map(|e| e.to_string_lossy().to_ascii_lowercase()) {
        None => Format::Folder,
        Some(e) if e == "png" => Format::Png,
        Some(e) if e == "gif" => Format::Gif,
        Some(_) => Format::Folder, // reported by the callers, which know what they accept
    }
}

/// `Ok` if `path` ends in `.png`.
pub(crate) fn require_png(path: &Path) -> Result<(), PlotErrorKind> {
    if format_of(path) == Format::Png {
        return Ok(());
    }
    Err(PlotErrorKind::Extension { got: extension(path), expected: "a .png file" })
}

/// The extension of `path`, or "" if none.
pub(crate) fn extension(path: &Path) -> String {
    path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default()
}

/// A temporary file beside `path`, with the same suffix (plotters picks the encoder by it).
fn temp_beside(path: &Path, suffix: &str) -> Result<tempfile::NamedTempFile, PlotErrorKind> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".ferroflow-plot-").suffix(suffix);
    // A picture is for sharing: rw-r--r-- (less the umask), not tempfile's private 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    builder.tempfile_in(dir).map_err(|source| PlotErrorKind::Io { op: "create a temporary file beside it", source })
}

/// Flushes `tmp` to disk and renames it to `path`.
fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> Result<(), PlotErrorKind> {
    tmp.as_file().sync_all().map_err(|source| PlotErrorKind::Io { op: "flush the picture", source })?;
    tmp.persist(path).map_err(|e| PlotErrorKind::Io { op: "rename the picture into place", source: e.error })?;
    Ok(())
}

/// Writes already-encoded picture bytes to `path`, through a temporary file beside it.
pub(crate) fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), PlotErrorKind> {
    use std::io::Write as _;
    let suffix = format!(".{}", extension(path));
    let mut tmp = temp_beside(path, &suffix)?;
    tmp.write_all(bytes).map_err(|source| PlotErrorKind::Io { op: "write the picture", source })?;
    persist(tmp, path)
}

/// Renders one `w × h` picture on white with `draw` and writes it to `path` as PNG.
pub(crate) fn write_png(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&Area) -> DrawResult,
) -> Result<(), PlotErrorKind> {
    let tmp = temp_beside(path, ".png")?;
    {
        let root = BitMapBackend::new(tmp.path(), (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(DrawErr::from)?;
        draw(&root)?;
        root.present().map_err(DrawErr::from)?;
    }
    persist(tmp, path)
}

/// Renders `frames` pictures of `w × h` with `draw(area, k)` into an animated GIF at `path`
/// (looping forever, `delay_ms` per frame).
pub(crate) fn write_gif(
    path: &Path,
    (w, h): (u32, u32),
    delay_ms: u32,
    frames: usize,
    mut draw: impl FnMut(&Area, usize) -> DrawResult,
) -> Result<(), PlotErrorKind> {
    if w > u16::MAX as u32 || h > u16::MAX as u32 {
        return Err(PlotErrorKind::Option { name: "width", value: w.to_string(), expected: "at most 65535 for GIF" });
    }
    let tmp = temp_beside(path, ".gif")?;
    {
        let root = BitMapBackend::gif(tmp.path(), (w, h), delay_ms).map_err(DrawErr::from)?.into_drawing_area();
        for k in 0..frames {
            root.fill(&WHITE).map_err(DrawErr::from)?;
            draw(&root, k)?;
            root.present().map_err(DrawErr::from)?;
        }
    }
    persist(tmp, path)
}

/// The file of frame `k` in a frame folder.
pub(crate) fn frame_path(dir: &Path, k: usize) -> PathBuf {
    dir.join(format!("frame_{k:04}.png"))
}

/// Writes `frames` PNGs `frame_0000.png`, … into the folder `dir` (created if missing), and
/// removes stale `frame_NNNN.png` files numbered `frames` or more from an earlier, longer run.
pub(crate) fn write_frames(
    dir: &Path,
    size: (u32, u32),
    frames: usize,
    mut draw: impl FnMut(&Area, usize) -> DrawResult,
) -> Result<(), PlotErrorKind> {
    std::fs::create_dir_all(dir).map_err(|source| PlotErrorKind::Io { op: "create the frame folder", source })?;
    for k in 0..frames {
        write_png(&frame_path(dir, k), size, |area| draw(area, k))?;
    }
    let entries = std::fs::read_dir(dir).map_err(|source| PlotErrorKind::Io { op: "list the frame folder", source })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let index =
            name.strip_prefix("frame_").and_then(|s| s.strip_suffix(".png")).and_then(|s| s.parse::<usize>().ok());
        if index.is_some_and(|k| k >= frames) {
            std::fs::remove_file(entry.path())
                .map_err(|source| PlotErrorKind::Io { op: "remove a stale frame", source })?;
        }
    }
    Ok(())
}
