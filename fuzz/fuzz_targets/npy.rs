//! `parse_npy` on arbitrary bytes: never panics, never allocates beyond the input's size;
//! whatever it accepts is finite and survives a write → read round trip bit for bit.
#![no_main]

use std::path::Path;

use ferroflow::data::io::{format_npy, parse_npy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.npy");
    if let Ok(p) = parse_npy(data, path) {
        assert!(p.n >= 1 && p.dim >= 1 && p.data.len() == p.n * p.dim);
        // at least 4 bytes per value were in the input
        assert!(4 * p.data.len() <= data.len());
        assert!(p.all_finite());
        let back = parse_npy(&format_npy(&p), path).expect("written npy reads back");
        assert_eq!((back.n, back.dim), (p.n, p.dim));
        assert!(back.data.iter().zip(&p.data).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
});
