//! Grids of small grey images (generated digits) as one PNG.

use std::path::Path;

use super::output::{require_png, write_bytes};
use super::{PlotError, PlotErrorKind};

/// The grey between the tiles (and in empty tiles) of [`write_digit_grid`].
pub const GRID_BACKGROUND: u8 = 128;

/// Largest side of a grid picture, in pixels (a bigger one is surely a mistaken `scale`).
const MAX_SIDE: u64 = 16_384;

/// Writes `n` grey `h × w` images as a grid PNG: tiles row-major (image k in tile row
/// k / cols, column k % cols), each pixel a `scale × scale` block, 1·scale pixels of
/// [`GRID_BACKGROUND`] grey between the tiles and around them. Pixel values are drawn as they
/// are (0 black, 255 white: MNIST's white ink on black). 8-bit greyscale, written atomically.
///
/// # Formula
/// width = (cols·(w + 1) + 1)·scale, height = (rows·(h + 1) + 1)·scale with rows = ⌈n/cols⌉;
/// image k's pixel (r, c) covers x ∈ [(1 + (k mod cols)(w + 1) + c)·scale, … + scale),
/// y ∈ [(1 + ⌊k/cols⌋(h + 1) + r)·scale, … + scale).
///
/// # Shapes
/// `images: [n, h, w]` row-major.
///
/// # Errors
/// [`PlotErrorKind::Extension`] unless `path` ends in `.png`; [`PlotErrorKind::Empty`] for
/// n = 0; [`PlotErrorKind::ImageShape`] if `images.len() != n·h·w`; [`PlotErrorKind::Option`]
/// for `h`, `w`, `cols` or `scale` of 0, or a picture wider or taller than 16,384 pixels;
/// [`PlotErrorKind::Io`] if the file cannot be written.
///
/// ```no_run
/// // ten 16×16 digits in one row, each pixel 4×4: a 684×72 picture
/// let images = vec![0u8; 10 * 16 * 16];
/// ferroflow::plot::write_digit_grid("digits.png".as_ref(), &images, 10, 16, 16, 10, 4)?;
/// # Ok::<(), ferroflow::plot::PlotError>(())
/// ```
pub fn write_digit_grid(
    path: &Path,
    images: &[u8],
    n: usize,
    h: usize,
    w: usize,
    cols: usize,
    scale: usize,
) -> Result<(), PlotError> {
    let kind = (|| {
        require_png(path)?;
        let (width, height) = grid_size(images.len(), n, h, w, cols, scale)?;
        let canvas = render(images, n, h, w, cols, scale, width, height);
        let png = encode(&canvas, width as u32, height as u32)?;
        write_bytes(path, &png)
    })();
    kind.map_err(|kind| PlotError { path: path.to_path_buf(), kind })
}

/// The picture's size, after checking every argument.
fn grid_size(
    len: usize,
    n: usize,
    h: usize,
    w: usize,
    cols: usize,
    scale: usize,
) -> Result<(usize, usize), PlotErrorKind> {
    for (name, value) in [("image height", h), ("image width", w), ("cols", cols), ("scale", scale)] {
        if value == 0 {
            return Err(PlotErrorKind::Option { name, value: "0".into(), expected: "at least 1" });
        }
    }
    if n == 0 {
        return Err(PlotErrorKind::Empty { what: "the image stack".into() });
    }
    if n.checked_mul(h).and_then(|nh| nh.checked_mul(w)) != Some(len) {
        return Err(PlotErrorKind::ImageShape { n, h, w, len });
    }
    let rows = n.div_ceil(cols) as u64;
    let side = |tiles: u64, px: usize| (tiles * (px as u64 + 1) + 1).saturating_mul(scale as u64);
    let (width, height) = (side(cols as u64, w), side(rows, h));
    if width > MAX_SIDE || height > MAX_SIDE {
        return Err(PlotErrorKind::Option {
            name: "scale",
            value: format!("{scale} (a {width}×{height} picture)"),
            expected: "a picture of at most 16384 pixels a side",
        });
    }
    Ok((width as usize, height as usize))
}

/// The greyscale canvas, row-major.
#[allow(clippy::too_many_arguments)]
fn render(images: &[u8], n: usize, h: usize, w: usize, cols: usize, s: usize, width: usize, height: usize) -> Vec<u8> {
    let mut canvas = vec![GRID_BACKGROUND; width * height];
    for (k, img) in images.chunks_exact(h * w).take(n).enumerate() {
        let (x0, y0) = ((1 + (k % cols) * (w + 1)) * s, (1 + (k / cols) * (h + 1)) * s);
        for (r, row) in img.chunks_exact(w).enumerate() {
            for dy in 0..s {
                let line = &mut canvas[(y0 + r * s + dy) * width + x0..][..w * s];
                for (c, &v) in row.iter().enumerate() {
                    line[c * s..(c + 1) * s].fill(v);
                }
            }
        }
    }
    canvas
}

fn encode(canvas: &[u8], width: u32, height: u32) -> Result<Vec<u8>, PlotErrorKind> {
    let draw = |e: png::EncodingError| PlotErrorKind::Draw { source: Box::new(e) };
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(draw)?;
    writer.write_image_data(canvas).map_err(draw)?;
    writer.finish().map_err(draw)?;
    Ok(out)
}
