//! The HTTP API (see the crate's README for every route). Every error is a JSON object
//! `{"error": message}` (with `"field"` for a bad setting): malformed bodies and queries are
//! parsed here, not by axum's extractors, whose rejections are plain text.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ferroflow::checkpoint::Checkpoint;
use ferroflow::engine::Precision;
use serde_json::{Value, json};

use crate::session::{Cmd, RunState, Session, lock};
use crate::settings::{FieldError, Settings};

/// An error reply: a status and `{"error": …}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The message.
    pub message: String,
    /// The setting at fault, if any.
    pub field: Option<String>,
}

impl ApiError {
    /// An error without a field.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, message: message.into(), field: None }
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self { status: StatusCode::UNPROCESSABLE_ENTITY, message: e.message, field: Some(e.field) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self.field {
            Some(f) => json!({ "error": self.message, "field": f }),
            None => json!({ "error": self.message }),
        };
        (self.status, axum::Json(body)).into_response()
    }
}

/// A JSON body parsed by serde_json, an empty body read as `null`; any failure is a JSON 400.
#[derive(Debug)]
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(e.status(), format!("cannot read the body: {}", e.body_text())))?;
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Ok(JsonBody(Value::Null));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("the body is not valid JSON: {e}")))
    }
}

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Most live sessions (then 429).
    pub max_sessions: usize,
    /// A session without a client for this long is dropped.
    pub ttl: Duration,
    /// A model made by `ferroflow train` that new sessions may open (`?ckpt=1`).
    pub ckpt: Option<Arc<Checkpoint>>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { max_sessions: 4, ttl: Duration::from_secs(600), ckpt: None }
    }
}

/// The server's state: the live sessions.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: ServerConfig,
    sessions: std::sync::Mutex<HashMap<String, Arc<Session>>>,
    counter: AtomicU64,
}

impl AppState {
    /// A server without sessions.
    pub fn new(config: ServerConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                sessions: std::sync::Mutex::new(HashMap::new()),
                counter: AtomicU64::new(0),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The session `id`, marked as seen.
    ///
    /// # Errors
    /// 404 if there is none.
    pub fn session(&self, id: &str) -> Result<Arc<Session>, ApiError> {
        let s = lock(&self.inner.sessions).get(id).cloned();
        let s = s.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("no session \"{id}\" (it may have expired)"))
        })?;
        s.touch();
        Ok(s)
    }

    /// Number of live sessions.
    pub fn live(&self) -> usize {
        lock(&self.inner.sessions).len()
    }

    /// Drops the sessions without a client for the configured time; returns how many.
    pub fn expire(&self) -> usize {
        let ttl = self.inner.config.ttl;
        let mut m = lock(&self.inner.sessions);
        let before = m.len();
        m.retain(|_, s| s.alive(ttl));
        before - m.len()
    }

    /// Makes a trainer thread panic (for tests of the panic handling).
    #[doc(hidden)]
    pub fn inject_panic(&self, id: &str) -> bool {
        self.session(id).map(|s| s.send(Cmd::Panic)).unwrap_or(false)
    }

    fn create(&self, settings: Settings, resume: Option<Checkpoint>) -> Result<Arc<Session>, ApiError> {
        let mut m = lock(&self.inner.sessions);
        let max = self.inner.config.max_sessions;
        if m.len() >= max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("at most {max} sessions at once: close a tab (or wait 10 min for an idle one to expire)"),
            ));
        }
        let k = self.inner.counter.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64);
        let id = format!("{:012x}", mix(k ^ nanos.unwrap_or(0)) & 0xffff_ffff_ffff);
        let s = Session::spawn(id.clone(), settings, resume)
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e))?;
        m.insert(id, s.clone());
        Ok(s)
    }

    fn remove(&self, id: &str) -> bool {
        lock(&self.inner.sessions).remove(id).is_some()
    }
}

/// SplitMix64's finaliser (ids that do not look sequential).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Largest request body read (then a JSON 413).
pub const BODY_LIMIT: usize = 16 << 20;

/// The explorer's routes over `state`.
pub fn router(state: AppState) -> Router {
    let s = "/api/sessions/{id}";
    Router::new()
        .route("/", get(crate::assets::index))
        .route("/app.js", get(crate::assets::app_js))
        .route("/style.css", get(crate::assets::style_css))
        .route("/api/health", get(health))
        .route("/api/options", get(options))
        .route("/api/sessions", post(create_session))
        .route(s, axum::routing::delete(delete_session))
        .route(&format!("{s}/close"), post(delete_session))
        .route(&format!("{s}/status"), get(status))
        .route(&format!("{s}/settings"), post(set_settings))
        .route(&format!("{s}/start"), post(start))
        .route(&format!("{s}/pause"), post(pause))
        .route(&format!("{s}/step"), post(step))
        .route(&format!("{s}/stop"), post(stop))
        .route(&format!("{s}/samples.csv"), get(samples_csv))
        .route(&format!("{s}/checkpoint"), get(checkpoint))
        .route(&format!("{s}/density"), get(density))
        .route(&format!("{s}/field"), get(field))
        .route(&format!("{s}/trajectory"), post(trajectory))
        .route(&format!("{s}/ws"), get(crate::ws::upgrade))
        // A drawn or uploaded target of MAX_POINTS points in full f32 precision is ≈ 4 MB of
        // JSON: above axum's 2 MB default, so the count check could never speak.
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed here")
        })
        .layer(axum::middleware::map_response(json_errors))
        .with_state(state)
}

/// Any error reply that is not JSON yet (axum's own rejections, e.g. a path segment that is
/// not valid UTF-8) becomes `{"error": text}` with the same status.
async fn json_errors(res: Response) -> Response {
    let status = res.status();
    let is_json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let bytes = axum::body::to_bytes(res.into_body(), 64 * 1024).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { text };
    ApiError::new(status, message).into_response()
}

async fn health(State(app): State<AppState>) -> Response {
    axum::Json(json!({
        "ok": true,
        "sessions": app.live(),
        "max_sessions": app.config().max_sessions,
        "ckpt": app.config().ckpt.as_ref().map(|c| c.path.display().to_string()),
    }))
    .into_response()
}

async fn options() -> Response {
    use ferroflow::data::World;
    axum::Json(json!({
        "worlds": World::ALL.map(|w| w.name()),
        "labelled": World::ALL.iter().filter(|w| w.n_classes() > 1).map(|w| w.name()).collect::<Vec<_>>(),
        "schedulers": ["cond_ot", "polynomial", "vp", "ve", "cosine"],
        "couplings": ["independent", "exact_ot", "sinkhorn"],
        "activations": ferroflow::model::Activation::ALL.map(|a| a.name()),
        "samplers": ["euler", "midpoint", "heun", "rk4", "dopri5", "sde"],
        "defaults": Settings::default().to_json(),
        "meanflow": "needs MeanFlow (not yet in ferroflow)",
    }))
    .into_response()
}

fn query(raw: &Option<String>) -> HashMap<String, String> {
    raw.as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn query_number(q: &HashMap<String, String>, key: &str, default: f64, lo: f64, hi: f64) -> Result<f64, ApiError> {
    let Some(s) = q.get(key) else { return Ok(default) };
    match s.parse::<f64>() {
        Ok(v) if v >= lo && v <= hi => Ok(v),
        _ => Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("{key} must be a number in [{lo}, {hi}] (got \"{s}\")"),
            field: Some(key.to_string()),
        }),
    }
}

/// Settings derived from a checkpoint made by `ferroflow train` (its world, network and
/// training settings; a data file's points are read if the file is still there).
fn settings_of_checkpoint(ck: &Checkpoint) -> Result<Settings, ApiError> {
    let bad = |e: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("the checkpoint: {e}"));
    let (m, t) = ferroflow::train::configs_from(ck).map_err(|e| bad(e.to_string()))?;
    if m.d_input != 2 {
        return Err(bad(format!("the explorer shows 2D models; this one has dimension {}", m.d_input)));
    }
    let run: Value = ck.metadata.get("ferroflow.run").and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
    let mut o = serde_json::Map::new();
    match &run["data"]["target"] {
        Value::Object(x) if x.contains_key("world") => {
            o.insert("target".into(), x["world"].clone());
        }
        Value::Object(x) if x.contains_key("file") => {
            let p = std::path::PathBuf::from(x["file"].as_str().unwrap_or(""));
            if let Ok(pts) = ferroflow::data::read_points(&p) {
                o.insert("target".into(), "drawn".into());
                o.insert("points".into(), pts.data.chunks(2).map(|c| json!([c[0], c[1]])).collect());
            }
        }
        _ => {}
    }
    if let Value::Object(x) = &run["data"]["source"]
        && let Some(w) = x.get("world")
    {
        o.insert("source".into(), w.clone());
    }
    o.insert("width".into(), m.d_hidden.into());
    o.insert("depth".into(), m.n_hidden.into());
    o.insert("activation".into(), m.activation.name().into());
    o.insert("lr".into(), t.lr.into());
    o.insert("batch".into(), t.batch_size.into());
    o.insert("steps".into(), t.steps.into());
    o.insert("seed".into(), (t.seed & 0xffff_ffff).into());
    let mut s = Settings::from_json(&Value::Object(o))?;
    // Path and coupling as trained (the page shows the nearest names).
    s.scheduler = match t.scheduler {
        ferroflow::path::SchedulerConfig::CondOt { sigma_min } => {
            s.sigma_min = sigma_min;
            crate::settings::SchedulerKind::CondOt
        }
        ferroflow::path::SchedulerConfig::Polynomial { n } => {
            s.poly_n = n;
            crate::settings::SchedulerKind::Polynomial
        }
        ferroflow::path::SchedulerConfig::VpLinearBeta { .. } => crate::settings::SchedulerKind::Vp,
        ferroflow::path::SchedulerConfig::Ve { .. } => crate::settings::SchedulerKind::Ve,
        ferroflow::path::SchedulerConfig::Cosine => crate::settings::SchedulerKind::Cosine,
    };
    s.coupling = match t.coupling {
        ferroflow::coupling::CouplingConfig::Independent => crate::settings::CouplingKind::Independent,
        // The page has no per-class variant; the 2-D worlds' classes are its only use here.
        ferroflow::coupling::CouplingConfig::ExactOt | ferroflow::coupling::CouplingConfig::ClassExactOt => {
            crate::settings::CouplingKind::ExactOt
        }
        ferroflow::coupling::CouplingConfig::Sinkhorn { epsilon, .. } => {
            s.epsilon = epsilon;
            crate::settings::CouplingKind::Sinkhorn
        }
    };
    Ok(s)
}

async fn create_session(
    State(app): State<AppState>,
    RawQuery(q): RawQuery,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let from_ckpt = query(&q).get("ckpt").is_some_and(|v| v == "1");
    let (settings, resume) = if from_ckpt {
        let ck =
            app.config().ckpt.clone().ok_or_else(|| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "the server was started without --ckpt")
            })?;
        (settings_of_checkpoint(&ck)?, Some((*ck).clone()))
    } else {
        (Settings::from_json(&body)?, None)
    };
    let s = app.create(settings, resume)?;
    let st = status_json(&s);
    Ok((StatusCode::CREATED, axum::Json(json!({ "id": s.id, "status": st }))).into_response())
}

async fn delete_session(State(app): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    if app.remove(&id) {
        Ok(axum::Json(json!({ "ok": true })).into_response())
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, format!("no session \"{id}\" (it may have expired)")))
    }
}

/// The status object (also sent over the WebSocket as `{"type": "status", …}`).
pub fn status_json(s: &Session) -> Value {
    let sh = lock(&s.shared);
    let snap = sh.snapshot.as_ref();
    let last = sh.losses.last();
    // Shares of the session's compute, in thread-seconds (see `session`'s module doc).
    let total = sh.train_thread_secs + sh.vis_secs;
    json!({
        "id": s.id,
        "state": sh.state,
        "error": sh.error,
        "step": sh.step,
        "steps": sh.settings.steps,
        "loss": last.map(|p| p[1]),
        "loss_ema": last.map(|p| p[2]),
        "loss_start": sh.loss_start,
        "steps_per_s": sh.steps_per_s,
        "w2": snap.and_then(|s| s.w2),
        "path_length": snap.map(|s| s.path_length),
        "nfe": snap.map(|s| s.traj.nfe),
        "snapshot_step": snap.map(|s| s.step),
        "snapshot_secs": snap.map(|s| s.secs),
        "snapshots": sh.snapshots,
        "vis_share": if total > 0.0 { sh.vis_secs / total } else { 0.0 },
        "vis_secs": sh.vis_secs,
        "request_vis_secs": sh.request_vis_secs,
        "train_secs": sh.train_secs,
        "train_thread_secs": sh.train_thread_secs,
        "generation": sh.generation,
        "view": sh.view,
        "settings": sh.settings.to_json(),
    })
}

async fn status(State(app): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let s = app.session(&id)?;
    Ok(axum::Json(status_json(&s)).into_response())
}

async fn set_settings(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let s = app.session(&id)?;
    let new = Settings::from_json(&body)?;
    let restart = {
        let sh = lock(&s.shared);
        sh.state == RunState::Error || !new.same_model(&sh.settings)
    };
    command(&s, Cmd::Settings(Box::new(new)))?;
    Ok(axum::Json(json!({ "ok": true, "restarted": restart })).into_response())
}

fn command(s: &Session, cmd: Cmd) -> Result<(), ApiError> {
    if s.send(cmd) {
        Ok(())
    } else {
        let e = lock(&s.shared).error.clone().unwrap_or_else(|| "the trainer has stopped".into());
        Err(ApiError::new(StatusCode::CONFLICT, e))
    }
}

async fn simple(app: AppState, id: String, cmd: Cmd) -> Result<Response, ApiError> {
    let s = app.session(&id)?;
    command(&s, cmd)?;
    Ok(axum::Json(json!({ "ok": true })).into_response())
}

async fn start(State(app): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let s = app.session(&id)?;
    if lock(&s.shared).state == RunState::Error {
        let e = lock(&s.shared).error.clone().unwrap_or_default();
        return Err(ApiError::new(StatusCode::CONFLICT, format!("{e} (change a setting to train afresh)")));
    }
    simple(app, id, Cmd::Start).await
}

async fn pause(State(app): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    simple(app, id, Cmd::Pause).await
}

async fn stop(State(app): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    simple(app, id, Cmd::Stop).await
}

async fn step(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let n = match body.get("n") {
        None => 1,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=100_000).contains(&n) => n,
            _ => {
                return Err(ApiError {
                    status: StatusCode::UNPROCESSABLE_ENTITY,
                    message: format!("n must be a whole number in 1..=100000 (got {v})"),
                    field: Some("n".into()),
                });
            }
        },
    };
    simple(app, id, Cmd::Step(n)).await
}

async fn samples_csv(
    State(app): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let s = app.session(&id)?;
    let q = query(&q);
    let t = query_number(&q, "t", 1.0, 0.0, 1.0)?;
    let (snap, net, x0, settings) = {
        let sh = lock(&s.shared);
        if t == 0.0 {
            (None, None, sh.x0.clone(), sh.settings.clone())
        } else {
            let snap = sh.snapshot.clone().ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "no samples yet"))?;
            if t != 1.0 {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "t must be 0 (the source x0) or 1 (the samples)",
                ));
            }
            (Some(snap), sh.net.clone(), sh.x0.clone(), sh.settings.clone())
        }
    };
    let pts = match (snap, net) {
        (None, _) => (*x0).clone(),
        // The page's particles in bf16: the export recomputes them in f32 from the same
        // model, x0 and sampler (what `ferroflow sample --ckpt` gives).
        (Some(snap), Some(net)) if snap.traj.precision != Precision::F32 => {
            let labels = crate::session::particle_labels(&settings, x0.n);
            picture(&s, move || {
                crate::sampling::sample(
                    &net,
                    &x0,
                    labels.as_deref(),
                    &snap.live,
                    settings.scheduler_config(),
                    settings.seed,
                    Precision::F32,
                )
            })
            .await?
            .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("sampler: {e}")))?
            .end()
        }
        (Some(snap), _) => snap.traj.end(),
    };
    let csv = ferroflow::data::io::format_csv(&pts);
    Ok((
        [(header::CONTENT_TYPE, "text/csv"), (header::CONTENT_DISPOSITION, "attachment; filename=\"samples.csv\"")],
        csv,
    )
        .into_response())
}

async fn checkpoint(State(app): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let s = app.session(&id)?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    command(&s, Cmd::Checkpoint(tx))?;
    let bytes = rx
        .await
        .map_err(|_| ApiError::new(StatusCode::CONFLICT, "the trainer has stopped"))?
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"model.safetensors\""),
        ],
        bytes,
    )
        .into_response())
}

fn latest_net(s: &Session) -> Result<(Arc<ferroflow::engine::FusedMlp>, u64, [f64; 4], Settings), ApiError> {
    let sh = lock(&s.shared);
    let net = sh.net.clone().ok_or_else(|| ApiError::new(StatusCode::CONFLICT, "no model yet"))?;
    let step = sh.snapshot.as_ref().map_or(0, |s| s.step);
    Ok((net, step, sh.view, sh.settings.clone()))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("the computation failed: {e}")))
}

/// [`blocking`] for a picture the page asked for: its time counts in the session's
/// visualisation share (and the snapshots make room for it).
async fn picture<T: Send + 'static>(s: &Session, f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    let started = std::time::Instant::now();
    let out = blocking(f).await;
    let secs = started.elapsed().as_secs_f64();
    let mut sh = lock(&s.shared);
    sh.vis_secs += secs;
    sh.request_vis_secs += secs;
    out
}

async fn density(
    State(app): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let s = app.session(&id)?;
    let q = query(&q);
    let t = query_number(&q, "t", 1.0, 0.0, 1.0)?;
    let res = query_number(&q, "res", 64.0, 2.0, 128.0)?.round() as usize;
    let (net, step, view, settings) = latest_net(&s)?;
    if settings.source != ferroflow::data::World::Gaussian {
        // The likelihood adds log p₀(x₀), and only the Gaussian source has a density here.
        return Err(ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!(
                "the heat map needs the gaussian source (log p₀ of a {} source is not known)",
                settings.source.name()
            ),
            field: Some("source".into()),
        });
    }
    let key = (step, (t * 1000.0).round() as u32, res);
    let cached = lock(&s.shared).density_cache.iter().find(|(k, _)| *k == key).map(|(_, g)| g.clone());
    let started = std::time::Instant::now();
    let grid = match cached {
        Some(g) => g,
        None => {
            let sched = settings.scheduler_config();
            let g = picture(&s, move || crate::sampling::density_grid(&net, t, res, view, sched))
                .await?
                .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("density: {e}")))?;
            let g = Arc::new(g);
            let mut sh = lock(&s.shared);
            if sh.density_cache.len() > 16 {
                sh.density_cache.remove(0);
            }
            sh.density_cache.push((key, g.clone()));
            g
        }
    };
    let values: Vec<Value> = grid.values.iter().map(|v| if v.is_finite() { json!(v) } else { Value::Null }).collect();
    Ok(axum::Json(json!({
        "t": t, "res": res, "step": step, "view": view, "values": values,
        "ms": started.elapsed().as_secs_f64() * 1e3,
    }))
    .into_response())
}

async fn field(
    State(app): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let s = app.session(&id)?;
    let q = query(&q);
    let t = query_number(&q, "t", 0.0, 0.0, 1.0)?;
    let res = query_number(&q, "res", 24.0, 2.0, 128.0)?.round() as usize;
    let (net, step, view, _) = latest_net(&s)?;
    let v = picture(&s, move || crate::sampling::velocity_grid(&net, t, res, view)).await?;
    Ok(axum::Json(json!({ "t": t, "res": res, "step": step, "view": view, "uv": v })).into_response())
}

async fn trajectory(
    State(app): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let s = app.session(&id)?;
    let coord = |k: &str| -> Result<f32, ApiError> {
        body.get(k).and_then(Value::as_f64).filter(|v| v.is_finite() && v.abs() < 1e6).map(|v| v as f32).ok_or_else(
            || ApiError {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                message: format!("{k} must be a finite number"),
                field: Some(k.into()),
            },
        )
    };
    let (x, y) = (coord("x")?, coord("y")?);
    let (net, step, _, settings) = latest_net(&s)?;
    let labels = settings.n_classes().map(|_| vec![0u32]);
    let tr = picture(&s, move || {
        let x0 = ferroflow::data::Points { data: vec![x, y], n: 1, dim: 2 };
        crate::sampling::sample(
            &net,
            &x0,
            labels.as_deref(),
            &settings.live,
            settings.scheduler_config(),
            settings.seed,
            Precision::F32,
        )
    })
    .await?
    .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, format!("sampler: {e}")))?;
    Ok(axum::Json(json!({ "step": step, "times": tr.times, "points": tr.states, "nfe": tr.nfe })).into_response())
}
