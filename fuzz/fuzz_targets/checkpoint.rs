//! `Checkpoint::parse` on arbitrary bytes: never panics; what it accepts is f32 and finite.
#![no_main]

use std::path::Path;

use ferroflow::checkpoint::Checkpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Checkpoint::parse(data, Path::new("fuzz.safetensors")) {
        for t in c.tensors.values() {
            assert!(t.data.iter().all(|v| v.is_finite()));
            assert_eq!(t.data.len(), t.shape.iter().product::<usize>());
        }
    }
});
