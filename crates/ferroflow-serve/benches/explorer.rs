//! The explorer's performance figures (issue 7, "Performance"): one session training moons
//! with the core MLP (3→256→256→256→2 SiLU, batch 256) watched by headless Chromium.
//!
//! Run: `cargo bench -p ferroflow-serve --bench explorer` (needs /usr/bin/chromium). Prints
//! one JSON object:
//! - `baseline_steps_per_s`: the same training through `Trainer::run` without visualisation
//!   (what `ferroflow train` runs), the mean of 8 s before the session and 8 s after it (the
//!   browser closed), so that a host whose speed drifts does not tilt the ratio; both are in
//!   `baseline_before_after`;
//! - `session_steps_per_s`, `ratio`: the session's rate while the page watches, and its ratio
//!   to that mean; `ratio_undisturbed`: to the larger of the two baselines (on a host whose
//!   second core fades now and then, the one it did not disturb: the stricter reading);
//! - `fps`: frames per second of the page's animation (2,000 particles) while training,
//!   counted by its requestAnimationFrame loop over the window;
//! - `snapshots_per_s` (2,000 × 32 Euler steps each, plus W2); `vis_share`: the pictures'
//!   share of the session's thread-seconds (the budget's measure; see `session`), and
//!   `vis_per_train_wall_s`: picture seconds per second of training;
//! - `first_loss_ms`, `first_particles_ms`: click on Train → first loss point / first trained
//!   particles, measured in the page with `performance.now()`;
//! - `heat_ms`: the heat map coarse to fine (16², 32², 64²), cumulative, from the click.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use ferroflow::backend::CpuAutodiff;
use ferroflow::data::{GaussianSource, World};
use ferroflow::model::MlpFieldConfig;
use ferroflow::train::{Control, TrainConfig, Trainer};
use ferroflow_serve::{AppState, ServerConfig, router};
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{Value, json};

const WINDOW_S: f64 = 15.0;

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

fn baseline_steps_per_s(seconds: f64) -> f64 {
    let device = Default::default();
    let config = TrainConfig { steps: 1_000_000, ..TrainConfig::default() };
    let mut t = Trainer::<CpuAutodiff>::new(MlpFieldConfig::default(), config, &device).unwrap();
    let mut source = GaussianSource { dim: 2, std: 1.0 };
    let mut target = World::Moons;
    let t0 = Instant::now();
    t.run(&mut source, &mut target, None, 0, &mut |_| {
        if t0.elapsed().as_secs_f64() < seconds { Control::Continue } else { Control::Stop }
    })
    .unwrap();
    t.step() as f64 / t0.elapsed().as_secs_f64()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let baseline = baseline_steps_per_s(8.0);
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
    tab.find_element("#train").unwrap().click().unwrap();
    wait_js(&tab, "__ff.firstParticles !== null", Duration::from_secs(30));
    let first = eval(&tab, "[__ff.firstLoss, __ff.firstParticles]");
    std::thread::sleep(Duration::from_secs(2));
    let s0 = eval(&tab, "[performance.now(), __ff.frames, __ff.views[0].status]");
    std::thread::sleep(Duration::from_secs_f64(WINDOW_S));
    let s1 = eval(&tab, "[performance.now(), __ff.frames, __ff.views[0].status]");
    let dt = (s1[0].as_f64().unwrap() - s0[0].as_f64().unwrap()) / 1e3;
    let fps = (s1[1].as_f64().unwrap() - s0[1].as_f64().unwrap()) / dt;
    let (st0, st1) = (&s0[2], &s1[2]);
    let steps = st1["step"].as_f64().unwrap() - st0["step"].as_f64().unwrap();
    let snaps = st1["snapshots"].as_f64().unwrap() - st0["snapshots"].as_f64().unwrap();
    let session_rate = steps / dt;
    // The heat map of the paused model, coarse to fine.
    eval(&tab, "fetch(`/api/sessions/${__ff.sessions[0]}/pause`, {method: 'POST'}).then(r => r.ok)");
    std::thread::sleep(Duration::from_millis(500));
    tab.find_element("#heat").unwrap().click().unwrap();
    wait_js(&tab, "__ff.heat[64] !== undefined", Duration::from_secs(60));
    let heat = eval(&tab, "__ff.heat");
    drop(tab);
    drop(browser);
    let baseline_after = baseline_steps_per_s(8.0);
    let baseline_before = baseline;
    let baseline = 0.5 * (baseline_before + baseline_after);
    let dv = st1["vis_secs"].as_f64().unwrap() - st0["vis_secs"].as_f64().unwrap();
    let dtr = st1["train_secs"].as_f64().unwrap() - st0["train_secs"].as_f64().unwrap();
    let dtt = st1["train_thread_secs"].as_f64().unwrap() - st0["train_thread_secs"].as_f64().unwrap();
    let vis_share = dv / (dv + dtt);
    let out = json!({
        "baseline_steps_per_s": baseline,
        "baseline_before_after": [baseline_before, baseline_after],
        "session_steps_per_s": session_rate,
        "ratio": session_rate / baseline,
        "ratio_undisturbed": session_rate / baseline_before.max(baseline_after),
        "fps": fps,
        "snapshots_per_s": snaps / dt,
        "snapshot_secs": st1["snapshot_secs"],
        "vis_share": vis_share,
        "vis_per_train_wall_s": dv / dtr,
        "first_loss_ms": first[0],
        "first_particles_ms": first[1],
        "heat_ms": heat,
        "window_s": dt,
        "load_avg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    });
    println!("{}", serde_json::to_string_pretty(&out).unwrap());
}
