//! The embedded font, registered with plotters' `ab_glyph` text renderer once per process.

use std::sync::OnceLock;

use plotters::style::FontStyle;

/// DejaVu Sans (Bitstream Vera license, `assets/LICENSE-DejaVu.txt`).
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// The family name every text style in this module uses.
pub(crate) const FAMILY: &str = "sans-serif";

/// Registers the embedded font under the names plotters looks up (idempotent, thread safe).
///
/// Returns false if the font bytes do not parse (which a test rules out).
pub(crate) fn ensure_registered() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // plotters' own defaults (e.g. legend labels) ask for these families; serve them all
        // with the one embedded face so nothing depends on the system.
        ["sans-serif", "serif", "monospace"]
            .iter()
            .all(|family| plotters::style::register_font(family, FontStyle::Normal, DEJAVU_SANS).is_ok())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn embedded_font_registers() {
        assert!(super::ensure_registered());
    }
}
