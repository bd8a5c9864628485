//! The fused CPU engine against the burn path on W2D, as one JSON object: a thin wrapper over
//! [`ferroflow::engine::bench::w2d`] (also `ferroflow bench w2d`).
//!
//! Run: `cargo bench -p ferroflow --bench engine -- [rounds] [--threads N]` (default 7 rounds,
//! one thread per core).

fn main() {
    let mut threads = ferroflow::engine::default_threads();
    let mut rounds = 7usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--threads" {
            threads = args.next().and_then(|s| s.parse().ok()).unwrap_or(threads);
        } else if let Ok(r) = a.parse() {
            rounds = r;
        }
    }
    let out = ferroflow::engine::bench::w2d(rounds, threads);
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}
