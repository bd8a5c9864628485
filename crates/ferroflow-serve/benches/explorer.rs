//! The explorer's performance figures (issue 7, "Performance"): one session training moons
//! with the core MLP (3→256→256→256→2 SiLU, batch 256) watched by headless Chromium.
//!
//! Run: `cargo bench -p ferroflow-serve --bench explorer` (needs /usr/bin/chromium). Prints
//! one JSON object:
//! - `ratio`: the session's training rate while the page watches, over the same training
//!   through `Trainer::run` alone (what `ferroflow train` runs), measured in interleaved
//!   slices: a slice of the baseline (the session paused and its page hidden, its window
//!   minimised: no frames drawn, both idle), then a slice of the session (the page shown,
//!   training resumed), and so on: [`ROUNDS`] session slices between [`ROUNDS`] + 1
//!   baseline slices, so that both see the same mix of the host's moods. This host's speed flips between two levels from one
//!   3-second slice to the next (neighbouring baseline slices of 370 and 650 steps/s are
//!   common), so the ratio is that of the mean rates: all the session's steps over its
//!   slices' time, over the same for the baseline, whose first and last slices count half
//!   (each borders one session slice). `ratio_rounds`: each session slice over the mean of
//!   the two baseline slices beside it, and `ratio_rounds_median` their median;
//!   `ratio_steady`: the median over the rounds whose two baseline slices are within 10 % of
//!   each other (the host kept one speed around them; null if none did);
//!   `baseline_slices`, `session_slices`: every slice's steps/s; `slices_fps` and
//!   `slices_snapshots_per_s`: the page's frames and the snapshots over the session slices
//!   (the full load: the window's figures below);
//! - `baseline_steps_per_s`, `session_steps_per_s`: the mean rates;
//! - over one window of [`WINDOW_S`] of uninterrupted training while the page watches:
//!   - `fps`: frames per second of the page's animation (2,000 particles), counted by its
//!     requestAnimationFrame loop;
//!   - `snapshots_per_s` (2,000 × 32 Euler steps each, plus W2); `vis_share`: the pictures'
//!     share of the session's thread-seconds (the budget's measure; see `session`), and
//!     `vis_per_train_wall_s`: picture seconds per second of training;
//!   - `browser_cores`: CPU time of all Chromium processes per second (from /proc), and
//!     `browser_cores_hidden` in the baseline slices;
//! - `first_loss_ms`, `first_particles_ms`: click on Train → first loss point / first trained
//!   particles, measured in the page with `performance.now()`;
//! - `heat_ms`: the heat map coarse to fine (16², 32², 64²), cumulative, from the click.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use ferroflow::backend::CpuAutodiff;
use ferroflow::data::{GaussianSource, World};
use ferroflow::model::MlpFieldConfig;
use ferroflow::train::{Control, TrainConfig, Trainer};
use ferroflow_serve::{AppState, ServerConfig, router};
use headless_chrome::types::Bounds;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{Value, json};

/// The uninterrupted window for the page's figures, seconds.
const WINDOW_S: f64 = 15.0;
/// Session slices in the ratio's interleaving.
const ROUNDS: usize = 8;
/// One slice, seconds, after a settling time (`SETTLE_S`) that is not counted.
const SLICE_S: f64 = 3.0;
const SETTLE_S: f64 = 1.0;

fn eval(tab: &Tab, expr: &str) -> Value {
    let r = tab.evaluate(&format!("(async () => JSON.stringify(await ({expr})))()"), true).unwrap();
    serde_json::from_str(r.value.as_ref().and_then(Value::as_str).unwrap_or("null")).unwrap()
}

fn wait_js(tab: &Tab, expr: &str, limit: Duration) {
    let t0 = Instant::now();
    while eval(tab, expr) != Value::Bool(true) {
        assert!(t0.elapsed() < limit, "{expr}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 request to the server, the reply's body (the page may be hidden).
fn http(addr: &str, method: &str, path: &str) -> String {
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(c, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    c.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{method} {path}: {reply}");
    reply.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// The session's step and snapshot count, read from the server at this instant.
fn session_counts(addr: &str, id: &str) -> [f64; 2] {
    let body = http(addr, "GET", &format!("/api/sessions/{id}/status"));
    let v: Value = serde_json::from_str(&body).unwrap();
    [v["step"].as_f64().unwrap(), v["snapshots"].as_f64().unwrap()]
}

/// CPU seconds used so far by every Chromium process (all threads, from /proc).
fn browser_cpu_secs() -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name();
        let pid = pid.to_string_lossy();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else { continue };
        if comm.trim() != "chromium" {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split_whitespace().collect();
        total += (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / tick;
    }
    total
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { 0.5 * (v[n / 2 - 1] + v[n / 2]) }
}

/// `ferroflow train`'s loop on moons, run in slices.
struct Baseline {
    trainer: Trainer<CpuAutodiff, MlpFieldConfig>,
    source: GaussianSource,
    target: World,
}

impl Baseline {
    fn new() -> Self {
        let device = Default::default();
        let config = TrainConfig { steps: 1_000_000, ..TrainConfig::default() };
        let trainer = Trainer::new(MlpFieldConfig::default(), config, &device).unwrap();
        Baseline { trainer, source: GaussianSource { dim: 2, std: 1.0 }, target: World::Moons }
    }

    /// Trains for `seconds`; steps per second.
    fn slice(&mut self, seconds: f64) -> f64 {
        let (s0, t0) = (self.trainer.step(), Instant::now());
        self.trainer
            .run(&mut self.source, &mut self.target, None, 0, &mut |_| {
                if t0.elapsed().as_secs_f64() < seconds { Control::Continue } else { Control::Stop }
            })
            .unwrap();
        (self.trainer.step() - s0) as f64 / t0.elapsed().as_secs_f64()
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut baseline = Baseline::new();
    baseline.slice(2.0); // warm-up
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            axum::serve(listener, router(AppState::new(ServerConfig::default()))).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    let flags = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let browser = Browser::new(
        LaunchOptions::default_builder()
            .path(Some("/usr/bin/chromium".into()))
            .sandbox(false)
            .window_size(Some((1400, 900)))
            .idle_browser_timeout(Duration::from_secs(300))
            .args(flags.iter().map(OsStr::new).collect())
            .build()
            .unwrap(),
    )
    .expect("Chromium at /usr/bin/chromium");
    let tab = browser.new_tab().unwrap();
    tab.navigate_to(&format!("http://{addr}/?target=moons&steps=1000000")).unwrap().wait_until_navigated().unwrap();
    wait_js(&tab, "window.__ff && __ff.sessions.length === 1 && __ff.views[0].traj !== null", Duration::from_secs(30));
    let id = eval(&tab, "__ff.sessions[0]").as_str().unwrap().to_string();
    tab.find_element("#train").unwrap().click().unwrap();
    wait_js(&tab, "__ff.firstParticles !== null", Duration::from_secs(30));
    let first = eval(&tab, "[__ff.firstLoss, __ff.firstParticles]");
    std::thread::sleep(Duration::from_secs(2));

    // The page's figures over one uninterrupted window.
    let s0 = eval(&tab, "[performance.now(), __ff.frames, __ff.views[0].status]");
    let b0 = browser_cpu_secs();
    std::thread::sleep(Duration::from_secs_f64(WINDOW_S));
    let b1 = browser_cpu_secs();
    let s1 = eval(&tab, "[performance.now(), __ff.frames, __ff.views[0].status]");
    let dt = (s1[0].as_f64().unwrap() - s0[0].as_f64().unwrap()) / 1e3;
    let fps = (s1[1].as_f64().unwrap() - s0[1].as_f64().unwrap()) / dt;
    let (st0, st1) = (&s0[2], &s1[2]);
    let snaps = st1["snapshots"].as_f64().unwrap() - st0["snapshots"].as_f64().unwrap();
    let window_rate = (st1["step"].as_f64().unwrap() - st0["step"].as_f64().unwrap()) / dt;
    let dv = st1["vis_secs"].as_f64().unwrap() - st0["vis_secs"].as_f64().unwrap();
    let dtr = st1["train_secs"].as_f64().unwrap() - st0["train_secs"].as_f64().unwrap();
    let dtt = st1["train_thread_secs"].as_f64().unwrap() - st0["train_thread_secs"].as_f64().unwrap();

    // The ratio, in interleaved slices.
    let shown = |yes: bool| {
        let b = if yes {
            Bounds::Normal { left: None, top: None, width: Some(1400.0), height: Some(900.0) }
        } else {
            Bounds::Minimized
        };
        tab.set_bounds(b).unwrap();
    };
    let (mut base, mut sess, mut hidden_cpu, mut hidden_s) = (Vec::new(), Vec::new(), 0.0, 0.0);
    let (mut slice_snaps, mut slice_frames, mut slice_s) = (0.0, 0.0, 0.0);
    for round in 0..=ROUNDS {
        http(&addr, "POST", &format!("/api/sessions/{id}/pause"));
        shown(false);
        std::thread::sleep(Duration::from_secs_f64(SETTLE_S));
        let (c0, t0) = (browser_cpu_secs(), Instant::now());
        base.push(baseline.slice(SLICE_S));
        hidden_cpu += browser_cpu_secs() - c0;
        hidden_s += t0.elapsed().as_secs_f64();
        shown(true);
        if round == ROUNDS {
            break;
        }
        http(&addr, "POST", &format!("/api/sessions/{id}/start"));
        std::thread::sleep(Duration::from_secs_f64(SETTLE_S));
        let (k0, f0, t0) = (session_counts(&addr, &id), eval(&tab, "__ff.frames"), Instant::now());
        std::thread::sleep(Duration::from_secs_f64(SLICE_S));
        let (k1, f1, dt) = (session_counts(&addr, &id), eval(&tab, "__ff.frames"), t0.elapsed().as_secs_f64());
        sess.push((k1[0] - k0[0]) / dt);
        slice_snaps += k1[1] - k0[1];
        slice_frames += f1.as_f64().unwrap() - f0.as_f64().unwrap();
        slice_s += dt;
    }
    let rounds: Vec<f64> = (0..ROUNDS).map(|i| sess[i] / (0.5 * (base[i] + base[i + 1]))).collect();
    let steady: Vec<f64> = (0..ROUNDS)
        .filter(|&i| (base[i] - base[i + 1]).abs() < 0.1 * base[i].max(base[i + 1]))
        .map(|i| rounds[i])
        .collect();
    let sess_mean = sess.iter().sum::<f64>() / ROUNDS as f64;
    let base_mean = (base[1..ROUNDS].iter().sum::<f64>() + 0.5 * (base[0] + base[ROUNDS])) / ROUNDS as f64;

    // The heat map of the paused model, coarse to fine.
    std::thread::sleep(Duration::from_millis(500));
    tab.find_element("#heat").unwrap().click().unwrap();
    wait_js(&tab, "__ff.heat[64] !== undefined", Duration::from_secs(60));
    let heat = eval(&tab, "__ff.heat");
    drop(tab);
    drop(browser);
    let r2 = |v: &[f64]| v.iter().map(|x| (x * 1000.0).round() / 1000.0).collect::<Vec<_>>();
    let r0 = |v: &[f64]| v.iter().map(|x| x.round()).collect::<Vec<_>>();
    let out = json!({
        "ratio": sess_mean / base_mean,
        "ratio_rounds_median": median(&rounds),
        "ratio_steady": if steady.is_empty() { Value::Null } else { json!(median(&steady)) },
        "ratio_rounds": r2(&rounds),
        "baseline_steps_per_s": base_mean,
        "session_steps_per_s": sess_mean,
        "baseline_slices": r0(&base),
        "session_slices": r0(&sess),
        "slices_fps": slice_frames / slice_s,
        "slices_snapshots_per_s": slice_snaps / slice_s,
        "window_steps_per_s": window_rate,
        "fps": fps,
        "snapshots_per_s": snaps / dt,
        "snapshot_secs": st1["snapshot_secs"],
        "vis_share": dv / (dv + dtt),
        "vis_per_train_wall_s": dv / dtr,
        "browser_cores": (b1 - b0) / dt,
        "browser_cores_hidden": hidden_cpu / hidden_s,
        "first_loss_ms": first[0],
        "first_particles_ms": first[1],
        "heat_ms": heat,
        "window_s": dt,
        "load_avg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
