//! `ferroflow bench`.

use anyhow::Result;

use crate::args::{BenchArgs, BenchWorkload};

pub fn run(a: BenchArgs) -> Result<()> {
    if a.rounds == 0 || a.rounds > 1000 {
        anyhow::bail!("--rounds must be in 1..=1000, got {}", a.rounds);
    }
    let threads = if a.threads == 0 { ferroflow::engine::default_threads() } else { a.threads };
    let out = match a.workload {
        BenchWorkload::W2d => ferroflow::engine::bench::w2d(a.rounds, threads),
    };
    if a.json {
        println!("{out}");
        return Ok(());
    }
    let get = |k: &str| out.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
    println!("W2D on {} ({} threads, {}; load {})", out["cpu"], threads, out["isa"], out["load_avg_start"]);
    println!("{:<40} {:>12} {:>12}", "", "engine", "burn");
    for (label, key, unit) in [
        ("train steps/s, independent", "train_steps_per_s_independent", ""),
        ("train steps/s, exact OT", "train_steps_per_s_exact_ot", ""),
        ("Euler-10 latency, batch 1 (µs)", "euler10_latency_us_batch1", ""),
        ("Euler-10 latency, batch 32 (µs)", "euler10_latency_us_batch32", ""),
        ("Euler-100, 10k points (point·NFE/s)", "euler100_points_nfe_per_s", ""),
    ] {
        let (e, b) = (get(&format!("engine_{key}")), get(&format!("burn_{key}")));
        println!("{label:<40} {e:>12.1} {b:>12.1}{unit}");
    }
    println!("share of the FMA peak while training: {:.0} %", 100.0 * get("engine_share_of_peak"));
    Ok(())
}
