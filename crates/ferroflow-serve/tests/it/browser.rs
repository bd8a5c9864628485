//! The page in Debian's Chromium driven by `headless_chrome` (CDP): train moons, see particles,
//! draw a target, get an lr error, open the compare view (A restarts beside B), reload it from
//! its URL.
//!
//! Needs `/usr/bin/chromium` (`.ci/run` installs it); without it the test is skipped, except
//! under CI (`CI` set), where a missing Chromium fails it.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use ferroflow_serve::{AppState, ServerConfig, router};
use headless_chrome::protocol::cdp::{Input, Page};
use headless_chrome::{Browser, LaunchOptions, Tab};

const CHROMIUM: &str = "/usr/bin/chromium";

/// The explorer on 127.0.0.1:0 on a runtime of its own; its address.
fn start_server() -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            axum::serve(listener, router(AppState::new(ServerConfig::default()))).await.unwrap();
        });
    });
    rx.recv().unwrap()
}

/// Launches Chromium with the flags, or None (skip) if it is absent outside CI.
pub fn browser() -> Option<Browser> {
    if !std::path::Path::new(CHROMIUM).exists() {
        assert!(std::env::var_os("CI").is_none(), "{CHROMIUM} is missing: apt-get install -y chromium");
        eprintln!("skipping: {CHROMIUM} is not installed");
        return None;
    }
    let flags = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let opts = LaunchOptions::default_builder()
        .path(Some(CHROMIUM.into()))
        .sandbox(false)
        .headless(true)
        .window_size(Some((1400, 900)))
        .idle_browser_timeout(Duration::from_secs(180))
        .args(flags.iter().map(OsStr::new).collect())
        .build()
        .unwrap();
    Some(Browser::new(opts).expect("Chromium starts"))
}

/// Evaluates `expr` in the page (awaiting it if it is a promise); its value as JSON.
pub fn eval(tab: &Tab, expr: &str) -> serde_json::Value {
    let r = tab.evaluate(&format!("(async () => JSON.stringify(await ({expr})))()"), true).unwrap();
    let s = r.value.and_then(|v| v.as_str().map(str::to_string)).unwrap_or_else(|| "null".into());
    serde_json::from_str(&s).unwrap()
}

/// Polls `expr` until it is JSON `true`.
pub fn wait_js(tab: &Tab, expr: &str, limit: Duration, what: &str) {
    let t0 = Instant::now();
    while eval(tab, expr) != serde_json::Value::Bool(true) {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mouse(tab: &Tab, kind: Input::DispatchMouseEventTypeOption, x: f64, y: f64) {
    tab.call_method(Input::DispatchMouseEvent {
        Type: kind,
        x,
        y,
        modifiers: None,
        timestamp: None,
        button: Some(Input::MouseButton::Left),
        // The left button is held through the drag.
        buttons: Some(1),
        click_count: Some(1),
        force: None,
        tangential_pressure: None,
        tilt_x: None,
        tilt_y: None,
        twist: None,
        delta_x: None,
        delta_y: None,
        pointer_Type: None,
    })
    .unwrap();
}

/// Sets a control's value as a user would and fires its change event.
fn set_control(tab: &Tab, id: &str, value: &str) {
    eval(
        tab,
        &format!(
            "(() => {{ const e = document.getElementById({id:?}); e.value = {value:?}; e.dispatchEvent(new Event('change')); return true; }})()"
        ),
    );
}

fn share_not_white(png_bytes: &[u8]) -> f64 {
    let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size()];
    let info = r.next_frame(&mut buf).unwrap();
    let ch = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let n = px.len() / ch;
    let not_white = px.chunks(ch).filter(|p| p[..3].iter().any(|&c| c < 235)).count();
    not_white as f64 / n as f64
}

#[test]
fn the_page_trains_moons_shows_particles_takes_a_drawing_reports_a_bad_lr_compares_and_reloads() {
    let Some(browser) = browser() else { return };
    let addr = start_server();
    let tab = browser.new_tab().unwrap();
    tab.set_default_timeout(Duration::from_secs(30));
    tab.navigate_to(&format!("http://{addr}/")).unwrap().wait_until_navigated().unwrap();
    wait_js(&tab, "window.__ff && __ff.sessions.length === 1", Duration::from_secs(20), "a session");
    set_control(&tab, "target", "moons");
    wait_js(&tab, "__ff.views[0].status.settings.target === 'moons'", Duration::from_secs(10), "moons picked");
    tab.find_element("#train").unwrap().click().unwrap();
    // The shown loss EMA 25 % below the first point's.
    wait_js(
        &tab,
        "(() => { const l = __ff.views[0].losses; const shown = Number(document.getElementById('m-a-ema').textContent); \
         return l.length > 0 && shown > 0 && shown <= 0.75 * l[0][2]; })()",
        Duration::from_secs(60),
        "the loss EMA 25 % down",
    );
    wait_js(
        &tab,
        "__ff.views[0].traj !== null && __ff.views[0].traj.step > 0",
        Duration::from_secs(20),
        "trained particles",
    );
    // The particle canvas is not blank, by getImageData and in an element screenshot.
    let share = eval(
        &tab,
        "(() => { const c = document.getElementById('canvas-a'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
         let k = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 235 || d[i+1] < 235 || d[i+2] < 235) k++; return k / (d.length / 4); })()",
    );
    assert!(share.as_f64().unwrap() > 0.01, "getImageData: {share}");
    let shot =
        tab.find_element("#canvas-a").unwrap().capture_screenshot(Page::CaptureScreenshotFormatOption::Png).unwrap();
    if let Some(p) = std::env::var_os("FERROFLOW_SCREENSHOT") {
        std::fs::write(p, &shot).unwrap();
    }
    let s = share_not_white(&shot);
    assert!(s > 0.01, "screenshot: {s}");
    // The particles themselves: the data layer off, the canvas with the particles against the
    // canvas without them.
    let toggle = |id: &str, on: bool| {
        eval(
            &tab,
            &format!(
                "(() => {{ const e = document.getElementById({id:?}); e.checked = {on}; e.dispatchEvent(new Event('change')); return true; }})()"
            ),
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let ink = "(() => { const c = document.getElementById('canvas-a'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
               let k = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 235 || d[i+1] < 235 || d[i+2] < 235) k++; return k / (d.length / 4); })()";
    toggle("show-data", false);
    let with = eval(&tab, ink).as_f64().unwrap();
    toggle("show-particles", false);
    let without = eval(&tab, ink).as_f64().unwrap();
    assert!(with - without > 0.01, "particles cover {with} − {without} of the canvas");
    toggle("show-particles", true);
    toggle("show-data", true);
    let frames = eval(&tab, "__ff.frames").as_u64().unwrap();
    assert!(frames > 10, "the page animates: {frames} frames");

    // Paused, with training paused too, the canvas is drawn no more (a still page costs the
    // browser no frames); scrubbing the slider redraws it at once, at the new t.
    eval(&tab, "fetch(`/api/sessions/${__ff.sessions[0]}/pause`, {method: 'POST'}).then(r => r.ok)");
    tab.find_element("#play").unwrap().click().unwrap();
    wait_js(
        &tab,
        "__ff.views[0].status.state === 'paused' && __ff.views[0].traj.step === __ff.views[0].status.step",
        Duration::from_secs(20),
        "paused, with the last snapshot shown",
    );
    std::thread::sleep(Duration::from_millis(300));
    let pixels = "(() => { const c = document.getElementById('canvas-a'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
                  let h = 0; for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + 7 * d[i+1] + 13 * d[i+2]) % 1000000007; return h; })()";
    let (draws0, frames0, still0) =
        (eval(&tab, "__ff.draws").as_u64().unwrap(), eval(&tab, "__ff.frames").as_u64().unwrap(), eval(&tab, pixels));
    std::thread::sleep(Duration::from_millis(400));
    let (draws1, frames1, still1) =
        (eval(&tab, "__ff.draws").as_u64().unwrap(), eval(&tab, "__ff.frames").as_u64().unwrap(), eval(&tab, pixels));
    assert!(frames1 > frames0 + 5, "the frame loop runs while paused: {frames0} → {frames1}");
    assert_eq!((draws1, &still1), (draws0, &still0), "a still page is not redrawn");
    eval(
        &tab,
        "(() => { const e = document.getElementById('time'); e.value = '0.2'; e.dispatchEvent(new Event('input')); return true; })()",
    );
    std::thread::sleep(Duration::from_millis(200));
    let (draws2, scrubbed) = (eval(&tab, "__ff.draws").as_u64().unwrap(), eval(&tab, pixels));
    assert!(draws2 > draws1, "scrubbing redraws");
    assert_ne!(scrubbed, still1, "the particles at t = 0.2 differ from those at t = 1");
    assert_eq!(eval(&tab, "document.getElementById('time-label').textContent"), serde_json::json!("t = 0.200"));
    tab.find_element("#play").unwrap().click().unwrap();
    eval(&tab, "fetch(`/api/sessions/${__ff.sessions[0]}/start`, {method: 'POST'}).then(r => r.ok)");

    // Draw a target with CDP mouse events: a stroke across the canvas.
    set_control(&tab, "target", "drawn");
    let r = eval(
        &tab,
        "(() => { const b = document.getElementById('canvas-a').getBoundingClientRect(); return [b.left, b.top, b.width]; })()",
    );
    let (left, top, w) = (r[0].as_f64().unwrap(), r[1].as_f64().unwrap(), r[2].as_f64().unwrap());
    mouse(&tab, Input::DispatchMouseEventTypeOption::MousePressed, left + 0.3 * w, top + 0.5 * w);
    for k in 1..=20 {
        let f = k as f64 / 20.0;
        mouse(
            &tab,
            Input::DispatchMouseEventTypeOption::MouseMoved,
            left + (0.3 + 0.4 * f) * w,
            top + (0.5 - 0.2 * f) * w,
        );
    }
    mouse(&tab, Input::DispatchMouseEventTypeOption::MouseReleased, left + 0.7 * w, top + 0.3 * w);
    let count = eval(&tab, "document.getElementById('draw-count').textContent");
    let n: usize = count.as_str().unwrap().split(' ').next().unwrap().parse().unwrap();
    // 6 sprayed points per pointer event: the press and 20 moves.
    assert_eq!(n, 6 * 21, "{count}");
    tab.find_element("#draw-use").unwrap().click().unwrap();
    wait_js(&tab, "__ff.views[0].status.settings.target === 'drawn'", Duration::from_secs(10), "the drawing in use");
    let pts = eval(&tab, "__ff.views[0].status.settings.points.length").as_u64().unwrap();
    assert_eq!(pts as usize, n);

    // A bad learning rate: the message beside its control; the server still answers.
    set_control(&tab, "lr", "1e9");
    wait_js(
        &tab,
        "document.querySelector('.err[data-for=\"lr\"]').textContent.startsWith('lr must be a number in (0, 1]')",
        Duration::from_secs(10),
        "the lr error",
    );
    let health = eval(&tab, "fetch('/api/health').then(r => r.json())");
    assert_eq!(health["ok"], true);

    // The compare view: a second session, a second canvas with its own particles.
    set_control(&tab, "lr", "0.001");
    wait_js(
        &tab,
        "__ff.views[0].status.state === 'running' && __ff.views[0].status.step > 0",
        Duration::from_secs(20),
        "A trains",
    );
    let generation = eval(&tab, "__ff.views[0].generation").as_u64().unwrap();
    tab.find_element("#compare").unwrap().click().unwrap();
    wait_js(
        &tab,
        "!document.getElementById('panel-b').hidden && __ff.views.length === 2 && __ff.views[1].traj !== null",
        Duration::from_secs(20),
        "the compare view",
    );
    let b = eval(&tab, "__ff.views[1].status.settings");
    let a = eval(&tab, "__ff.views[0].status.settings");
    // Default change: the coupling; everything else equal (the same seed, hence the same x0).
    assert_eq!((a["coupling"].as_str(), b["coupling"].as_str()), (Some("independent"), Some("exact_ot")));
    assert_eq!(a["seed"], b["seed"]);
    // A started afresh beside B, and both train.
    wait_js(
        &tab,
        &format!("__ff.views[0].generation > {generation} && __ff.views.every((v) => v.status.state === 'running')"),
        Duration::from_secs(20),
        "A restarted beside B",
    );
    // The picture to export holds both canvases.
    assert_eq!(eval(&tab, "__ff.exportCanvas().width"), serde_json::json!(560 + 16 + 560));

    // The view and the compare view live in the URL: a reload restores them.
    set_control(&tab, "field-mode", "stream");
    eval(
        &tab,
        "(() => { const e = document.getElementById('show-traj'); e.checked = true; e.dispatchEvent(new Event('change')); return true; })()",
    );
    let url = eval(&tab, "location.href").as_str().unwrap().to_string();
    for key in ["compare=coupling", "v.field=stream", "v.traj=true", "target=drawn", "lr=0.001"] {
        assert!(url.contains(key), "{key} not in {url}");
    }
    tab.navigate_to(&url).unwrap().wait_until_navigated().unwrap();
    wait_js(
        &tab,
        "window.__ff && __ff.views.length === 2 && !document.getElementById('panel-b').hidden && __ff.views.every((v) => v.status)",
        Duration::from_secs(20),
        "the compare view after a reload",
    );
    let restored = eval(
        &tab,
        "[document.getElementById('field-mode').value, document.getElementById('show-traj').checked, \
         __ff.views[0].status.settings.target, __ff.views[0].status.settings.points.length, __ff.views[1].status.settings.coupling]",
    );
    assert_eq!(restored, serde_json::json!(["stream", true, "drawn", n, "exact_ot"]));
    if let Some(p) = std::env::var_os("FERROFLOW_SCREENSHOT") {
        std::thread::sleep(Duration::from_secs(2));
        let page = tab.capture_screenshot(Page::CaptureScreenshotFormatOption::Png, None, None, true).unwrap();
        std::fs::write(std::path::PathBuf::from(p).with_extension("page.png"), page).unwrap();
    }
}
