//! `parse_csv` on arbitrary bytes: never panics; whatever it accepts is finite, rectangular and
//! survives a write → read round trip bit for bit.
#![no_main]

use std::path::Path;

use ferroflow::data::io::{format_csv, parse_csv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.csv");
    if let Ok(p) = parse_csv(data, path) {
        assert!(p.n >= 1 && p.dim >= 1 && p.data.len() == p.n * p.dim);
        assert!(p.all_finite());
        let back = parse_csv(&format_csv(&p), path).expect("written CSV reads back");
        assert_eq!((back.n, back.dim), (p.n, p.dim));
        assert!(back.data.iter().zip(&p.data).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
});
