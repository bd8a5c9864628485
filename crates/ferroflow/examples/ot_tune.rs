//! Medians of `exact_ot::plan` on the three point families of `benches/coupling.rs`, at
//! n = 256, 512 and 1024: a quicker, steadier figure than the criterion bench for trying out
//! changes to the assignment solver (run it before and after, interleaved).
//!
//!     cargo run --release -p ferroflow --example ot_tune [plans at n = 256, default 400] [sizes, default 256,512,1024] [families, default all] [instances, default 1]
//!
//! Each size runs 400 · (256/n)² plans (at least 5) and prints the median time per plan. By
//! default they all solve one instance of each family (the criterion bench's, seed n); with
//! `instances` > 1 the plans are spread over that many draws (seeds n, n + 1, …), so that a
//! setting is not tuned to one draw.
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
    let instances: usize = match std::env::args().nth(4).map(|s| s.parse()) {
        None => 1,
        Some(Ok(k)) if k >= 1 => k,
        _ => {
            eprintln!("error: the number of instances must be a whole number of at least 1");
            std::process::exit(2);
        }
    };
    for n in sizes {
        let plans = (reps * 256 * 256 / (n * n)).max(5).max(instances);
        print!("n = {n:4} ({plans} plans):");
        for &kind in &kinds {
            let draws: Vec<_> = (0..instances)
                .map(|k| {
                    let mut rng = seeded((n + k) as u64);
                    (family(kind, n, &mut rng), family(kind, n, &mut rng))
                })
                .collect();
            let mut t: Vec<f64> = (0..plans)
                .map(|p| {
                    let (x0, x1) = &draws[p % instances];
                    let s = Instant::now();
                    std::hint::black_box(exact_ot::plan(x0, x1).expect("valid input"));
                    s.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            t.sort_by(f64::total_cmp);
            print!("  {kind} {:.3} ms", t[t.len() / 2]);
        }
        println!();
    }
}
