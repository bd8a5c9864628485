//! `parse_idx_images` and `parse_idx_labels` on arbitrary bytes (plain, and gzipped when the
//! input starts with 1f 8b): never panic, never allocate on a header's word; what they accept
//! holds exactly the elements the header claims, and labels are digits.
#![no_main]

use std::path::Path;

use ferroflow::data::idx::{parse_idx_images, parse_idx_labels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz-idx");
    let gzipped = data.starts_with(&[0x1f, 0x8b]);
    if let Ok(im) = parse_idx_images(data, path) {
        assert_eq!(Some(im.pixels.len()), im.n.checked_mul(im.rows).and_then(|v| v.checked_mul(im.cols)));
        if !gzipped {
            assert_eq!(data.len(), 16 + im.pixels.len());
        }
    }
    if let Ok(labels) = parse_idx_labels(data, path) {
        assert!(labels.iter().all(|&l| l <= 9));
        if !gzipped {
            assert_eq!(data.len(), 8 + labels.len());
        }
    }
});
