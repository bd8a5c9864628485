//! Medians of `exact_ot::plan` on the three point families of `benches/coupling.rs`, at
//! n = 256, 512 and 1024: a quicker, steadier figure than the criterion bench for trying out
//! changes to the assignment solver (run it before and after, interleaved).
//!
//!     cargo run --release -p ferroflow --example ot_tune [plans at n = 256, default 400] [sizes, default 256,512,1024] [families, default all]
//!
//! Each size runs 400 · (256/n)² plans (at least 5) and prints the median time per plan.
use ferroflow::coupling::exact_ot;
use ferroflow::rng::seeded;
use std::time::Instant;

#[path = "../benches/common/ot_families.rs"]
mod ot_families;
use ot_families::{KINDS, family};

fn main() {
    let reps: usize = match std::env::args().nth(1).map(|s| s.parse()) {
        None => 400,
        Some(Ok(r)) => r,
        Some(Err(e)) => {
            eprintln!("error: the number of plans must be a whole number ({e})");
            std::process::exit(2);
        }
    };
    let sizes: Vec<usize> = match std::env::args().nth(2) {
        None => vec![256, 512, 1024],
        Some(s) => match s.split(',').map(str::parse).collect::<Result<Vec<usize>, _>>() {
            Ok(v) if v.iter().all(|&n| n >= 4) => v,
            _ => {
                eprintln!("error: sizes must be whole numbers of at least 4, separated by commas (got {s:?})");
                std::process::exit(2);
            }
        },
    };
    let kinds: Vec<&str> = match std::env::args().nth(3) {
        None => KINDS.to_vec(),
        Some(s) => {
            let k: Vec<&str> = KINDS.iter().copied().filter(|k| s.split(',').any(|x| x == *k)).collect();
            if k.is_empty() {
                eprintln!("error: families must be among {KINDS:?}, separated by commas (got {s:?})");
                std::process::exit(2);
            }
            k
        }
    };
    for n in sizes {
        let plans = (reps * 256 * 256 / (n * n)).max(5);
        print!("n = {n:4} ({plans} plans):");
        for &kind in &kinds {
            let mut rng = seeded(n as u64);
            let (x0, x1) = (family(kind, n, &mut rng), family(kind, n, &mut rng));
            let mut t: Vec<f64> = (0..plans)
                .map(|_| {
                    let s = Instant::now();
                    std::hint::black_box(exact_ot::plan(&x0, &x1).expect("valid input"));
                    s.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            t.sort_by(f64::total_cmp);
            print!("  {kind} {:.3} ms", t[t.len() / 2]);
        }
        println!();
    }
}
