//! A session: one trainer on its own OS thread, and the state the async side reads.
//!
//! The thread owns the [`Trainer`] and takes [`Cmd`]s from a channel. Between chunks of
//! about 10 ms of training it publishes the losses and, when the visualisation budget allows,
//! a snapshot (particles along the learned ODE, W2 to fresh data) into [`Shared`] behind a
//! mutex, then bumps a `watch` counter that wakes the WebSocket tasks. Nothing here runs on
//! the async runtime.
//!
//! Snapshots are drawn from a copy of the sampling weights on the trainer's own engine
//! threads, so that no third thread preempts an engine thread mid-block:
//! - first in the gaps of training ([`ferroflow::engine::Threads::set_gap_work`]): where the
//!   browser takes one engine thread's core, the other would wait for it, idle, and draws
//!   pieces of the snapshot instead (a lane of [`sampling::LANE_ROWS`] particles, one solver
//!   step; [`SteppedSample`]);
//! - then by a task queued for the first helper that is idle between two jobs
//!   ([`ferroflow::engine::Threads::ahead`]), which draws the pieces left and the W2 while the
//!   step's blocks go to the other threads. It is queued when the pieces are done, when
//!   training pauses, or in time for the snapshot to be shown before the next may start
//!   ([`MAX_SNAPSHOT_RATE`]); the first after a start (and any sampler the pieces do not
//!   cover: Dopri5, the SDE, guidance) goes to it at once.
//!
//! A snapshot from before a restart is dropped.
//!
//! # Visualisation budget
//! Compute is counted in thread-seconds: the trainer's threads hold `n` of them a second, less
//! the seconds they spend drawing (pieces in the gaps included). A snapshot that took v
//! thread-seconds, followed by page requests (vector fields, heat maps, launched paths) that
//! took r seconds, is followed by the next only once the training since it began has taken 3(v + r) thread-seconds, so
//! pictures take at most a quarter of the session's compute; the rate adapts to the model's
//! size, the sampler's NFE and what the page asks for. While training, snapshots also come at
//! most [`MAX_SNAPSHOT_RATE`] times a second: where they are cheap, the rest of the quarter
//! goes to training. The first snapshot after a start, and the one after a pause, are taken
//! at once.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ferroflow::backend::CpuAutodiff;
use ferroflow::checkpoint::Checkpoint;
use ferroflow::data::{EmpiricalSource, GaussianSource, PointSource, Points, World};
use ferroflow::engine::{FusedMlp, GapWork};
use ferroflow::plot::Grid;
use ferroflow::train::{Trainer, step_rng};
use serde::Serialize;

use crate::sampling::{self, SteppedSample, Trajectory};
use crate::settings::{Settings, Target};

/// Particles drawn from the fixed x₀.
pub const PARTICLES: usize = 2000;
/// Points of the data layer.
pub const DATA_POINTS: usize = 2000;
/// Points per side of the W2 estimate (exact OT between model samples and fresh data).
pub const W2_POINTS: usize = 500;
/// Loss points kept per session (older ones are thinned to every other).
pub const MAX_LOSS_POINTS: usize = 20_000;
/// Smoothing of the loss EMA shown on the page: ema ← ema + (loss − ema)·this.
pub const LOSS_EMA_RATE: f64 = 0.02;
/// Training time per chunk between looks at the command channel.
const CHUNK: Duration = Duration::from_millis(10);
/// A snapshot may cost at most this share of the session's compute (see the module doc).
pub const VIS_SHARE: f64 = 0.25;
/// Snapshots a second at most while training. The page needs ≥ 2 to follow the model; where
/// they are cheap (bf16 products) the quarter of the compute would buy ≈ 3, and the share
/// they leave trains ≈ 8 % more steps a second instead (BENCHMARKS.md, "Web explorer").
pub const MAX_SNAPSHOT_RATE: f64 = 2.4;
/// Engine threads of a session's trainer. Two: the engine's blocks go to whichever thread is
/// free, so the second one trains in whatever time its snapshots, the server and the browser
/// leave on the other core (BENCHMARKS.md, "Web explorer").
pub const TRAINER_THREADS: usize = 2;

/// Locks a mutex, taking the data of a poisoned one (a panicking trainer thread must not take
/// the server down with it).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a trainer thread is told.
#[derive(Debug)]
pub enum Cmd {
    /// Train (or resume).
    Start,
    /// Pause.
    Pause,
    /// While paused: this many more steps.
    Step(u64),
    /// Stop training for good (the model stays; start trains afresh).
    Stop,
    /// New settings: live ones apply at once, model ones restart training.
    Settings(Box<Settings>),
    /// The checkpoint's bytes (safetensors), or why not.
    Checkpoint(tokio::sync::oneshot::Sender<Result<Vec<u8>, String>>),
    /// Panic (tests of the panic handling).
    Panic,
    /// End the thread.
    Quit,
}

/// Where a session's training is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Not started.
    Idle,
    /// Training.
    Running,
    /// Paused.
    Paused,
    /// All steps done.
    Done,
    /// Stopped by the user.
    Stopped,
    /// Diverged or crashed: see `error`.
    Error,
}

/// One picture of the model: the particles' trajectories and its scores.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Steps done when it was taken.
    pub step: u64,
    /// The particles from x₀ (t = 0) to t = 1.
    pub traj: Trajectory,
    /// W2 between [`W2_POINTS`] end points and as many fresh data points.
    pub w2: Option<f64>,
    /// Mean path length of the particles.
    pub path_length: f64,
    /// Seconds it took.
    pub secs: f64,
    /// The sampler settings it was drawn with.
    pub live: crate::settings::LiveSettings,
}

/// What the async side reads.
#[derive(Debug)]
pub struct Shared {
    /// The settings in force.
    pub settings: Settings,
    /// The run's state.
    pub state: RunState,
    /// The error shown on the page.
    pub error: Option<String>,
    /// Steps done.
    pub step: u64,
    /// (step, loss, loss EMA), thinned past [`MAX_LOSS_POINTS`].
    pub losses: Vec<[f64; 3]>,
    /// The EMA's first value (the first loss).
    pub loss_start: Option<f64>,
    /// Steps per second over the last chunks.
    pub steps_per_s: f64,
    /// The latest snapshot.
    pub snapshot: Option<Arc<Snapshot>>,
    /// The data layer.
    pub data: Arc<Points>,
    /// The particles' fixed x₀.
    pub x0: Arc<Points>,
    /// Their classes (conditional models).
    pub labels: Option<Arc<Vec<u32>>>,
    /// The view box (x₀, x₁, y₀, y₁).
    pub view: [f64; 4],
    /// The latest sampling weights (the snapshot's) for fields, densities and launched paths.
    pub net: Option<Arc<FusedMlp>>,
    /// Seconds spent training since the (re)start.
    pub train_secs: f64,
    /// Thread-seconds of training since the (re)start: the trainer's threads times the
    /// seconds trained, less the thread-seconds they spent drawing snapshots.
    pub train_thread_secs: f64,
    /// Seconds spent on pictures since the (re)start: snapshots and the page's requests.
    pub vis_secs: f64,
    /// The requests' part of `vis_secs` (vector fields, heat maps, launched paths), which the
    /// snapshots make room for.
    pub request_vis_secs: f64,
    /// Snapshots taken since the (re)start.
    pub snapshots: u64,
    /// Bumped on every restart (model settings changed): the page clears its loss curve.
    pub generation: u64,
    /// Density grids by (step, t in thousandths, res).
    pub density_cache: Vec<((u64, u32, usize), Arc<Grid>)>,
}

/// A live session.
#[derive(Debug)]
pub struct Session {
    /// Its id.
    pub id: String,
    tx: Mutex<Sender<Cmd>>,
    /// The state.
    pub shared: Arc<Mutex<Shared>>,
    /// Bumped whenever `shared` changes.
    pub changed: Arc<tokio::sync::watch::Sender<u64>>,
    /// Open WebSocket connections.
    pub clients: AtomicUsize,
    /// Last request or WebSocket message.
    pub last_seen: Mutex<Instant>,
}

impl Session {
    /// Starts the trainer thread of a new session (an optional checkpoint to resume).
    ///
    /// # Errors
    /// The trainer's configuration error, as text.
    pub fn spawn(id: String, settings: Settings, resume: Option<Checkpoint>) -> Result<Arc<Session>, String> {
        let worker = Worker::new(settings.clone(), resume.as_ref())?;
        let shared = Arc::new(Mutex::new(Shared {
            settings: settings.clone(),
            state: RunState::Idle,
            error: None,
            step: worker.trainer.step(),
            losses: Vec::new(),
            loss_start: None,
            steps_per_s: 0.0,
            snapshot: None,
            data: worker.data.clone(),
            x0: worker.x0.clone(),
            labels: worker.labels.clone(),
            view: sampling::view_box(&[&worker.data, &worker.x0]),
            net: None,
            train_secs: 0.0,
            train_thread_secs: 0.0,
            vis_secs: 0.0,
            request_vis_secs: 0.0,
            snapshots: 0,
            generation: 0,
            density_cache: Vec::new(),
        }));
        let (tx, rx) = std::sync::mpsc::channel();
        let (changed, _) = tokio::sync::watch::channel(0u64);
        let changed = Arc::new(changed);
        let session = Arc::new(Session {
            id: id.clone(),
            tx: Mutex::new(tx),
            shared: shared.clone(),
            changed: changed.clone(),
            clients: AtomicUsize::new(0),
            last_seen: Mutex::new(Instant::now()),
        });
        std::thread::Builder::new()
            .name(format!("ferroflow-session-{id}"))
            .spawn(move || {
                let mut worker = Some(worker);
                while let Some(mut w) = worker.take() {
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| w.run(&rx, &shared, &changed)));
                    let Err(payload) = result else { break }; // Quit, or the session was dropped
                    let msg = payload
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| payload.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown cause".into());
                    let mut s = lock(&shared);
                    s.state = RunState::Error;
                    s.error = Some(format!("the trainer crashed ({msg}); change a setting to start afresh"));
                    drop(s);
                    changed.send_modify(|v| *v += 1);
                    worker = Worker::after_crash(&rx, &shared, &changed);
                }
            })
            .map_err(|e| format!("cannot start a trainer thread: {e}"))?;
        Ok(session)
    }

    /// Sends a command; false if the thread is gone.
    pub fn send(&self, cmd: Cmd) -> bool {
        lock(&self.tx).send(cmd).is_ok()
    }

    /// Marks the session as seen now.
    pub fn touch(&self) {
        *lock(&self.last_seen) = Instant::now();
    }

    /// Whether a client is connected or was seen within `ttl`.
    pub fn alive(&self, ttl: Duration) -> bool {
        self.clients.load(Ordering::SeqCst) > 0 || lock(&self.last_seen).elapsed() < ttl
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = lock(&self.tx).send(Cmd::Quit);
    }
}

/// The trainer thread's own state.
struct Worker {
    settings: Settings,
    trainer: Trainer<CpuAutodiff>,
    source: Box<dyn PointSource>,
    target: Box<dyn PointSource>,
    data: Arc<Points>,
    x0: Arc<Points>,
    labels: Option<Arc<Vec<u32>>>,
    running: bool,
    manual_steps: u64,
    ema: Option<f64>,
    /// Thread-seconds of training since the last snapshot began (see the module doc).
    since_snap: f64,
    /// Draws the snapshots: a task at a time for the trainer's engine threads.
    painter: Arc<Painter>,
    /// Threads for the snapshots when the trainer has no engine helper to lend (one engine
    /// thread, or the burn path): a pool of two, whose helper draws them.
    own_pool: Option<ferroflow::engine::Threads>,
    /// `Shared::request_vis_secs` when the last snapshot was launched.
    requests_at_snap: f64,
    /// The model changed since the last snapshot (or the live settings did).
    dirty: bool,
    /// The next snapshot is the first after a start: take it at once.
    eager: bool,
    rate: (Instant, u64),
    /// When the last snapshot was launched ([`MAX_SNAPSHOT_RATE`]).
    snap_launched: Instant,
    /// The snapshot being drawn in the gaps of training, if any.
    in_flight: Option<InFlight>,
}

fn open_source(world: World, settings: &Settings) -> Box<dyn PointSource> {
    match world {
        World::Gaussian => Box::new(GaussianSource { dim: 2, std: settings.scheduler_config().source_std() }),
        w => Box::new(w),
    }
}

/// The JSON `ferroflow sample` reads from a checkpoint's "ferroflow.run" (its RunConfig): the
/// source decides what x₀ it draws.
fn run_info(settings: &Settings) -> serde_json::Value {
    let source = match settings.source {
        World::Gaussian => serde_json::json!("gaussian"),
        w => serde_json::json!({ "world": w.name() }),
    };
    let target = match &settings.target {
        Target::World(w) => serde_json::json!({ "world": w.name() }),
        Target::Drawn(_) => serde_json::json!({ "file": "drawn.csv" }),
    };
    serde_json::json!({ "data": { "target": target, "source": source } })
}

/// What a snapshot task draws: a copy of the sampling weights and the particles' x₀.
struct SnapJob {
    generation: u64,
    step: u64,
    net: FusedMlp,
    x0: Arc<Points>,
    labels: Option<Arc<Vec<u32>>>,
    live: crate::settings::LiveSettings,
    scheduler: ferroflow::path::SchedulerConfig,
    seed: u64,
    /// Fresh data for W2 (drawn by the trainer thread, which owns the target).
    fresh: Points,
}

/// The snapshots' state, read by the trainer thread.
#[derive(Default)]
struct Painter {
    /// A snapshot is queued or being drawn.
    busy: std::sync::atomic::AtomicBool,
    /// Thread-seconds the last snapshot took (f64 bits).
    last: std::sync::atomic::AtomicU64,
    /// Thread-nanoseconds spent drawing since the worker began, counted as they are spent
    /// (a snapshot drawn in pieces is partly drawn during a training chunk).
    spent: AtomicU64,
}

/// A snapshot drawn in pieces in the gaps of training ([`SteppedSample`] as the trainer's
/// [`GapWork`]) and finished by a task on a helper.
struct Drawing {
    job: SnapJob,
    stepped: SteppedSample,
    painter: Arc<Painter>,
    /// [`Painter::spent`] at its launch: the snapshot's thread-seconds are the difference at
    /// its end.
    spent0: u64,
}

impl GapWork for Drawing {
    fn run_piece(&self) -> bool {
        let t0 = Instant::now();
        let ran = self.stepped.run_piece();
        if ran {
            self.painter.spent.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        ran
    }
}

/// A [`Drawing`] under way.
struct InFlight {
    drawing: Arc<Drawing>,
    launched: Instant,
    /// Wanted at once (the first after a start or a change of the live settings): finished
    /// by a helper without waiting for gaps.
    urgent: bool,
    /// The task that finishes it is queued.
    finishing: bool,
}

/// Clears [`Painter::busy`] when a snapshot task ends, or is dropped unrun because its
/// threads stopped first (a restart).
struct Painting(Arc<Painter>);

impl Drop for Painting {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

impl Painter {
    fn last_secs(&self) -> f64 {
        f64::from_bits(self.last.load(Ordering::Acquire))
    }

    /// Draws `job` whole and publishes it in `shared` (a task on a helper thread).
    fn paint(&self, job: SnapJob, shared: &Mutex<Shared>) {
        let generation = job.generation;
        self.publish(generation, shared, || {
            let (secs, result) = Self::draw(job);
            self.spent.fetch_add((secs * 1e9) as u64, Ordering::Relaxed);
            (secs, result)
        });
    }

    /// Finishes a drawing begun in the gaps of training (the pieces left, then W2) and
    /// publishes it (a task on a helper thread).
    fn finish(&self, d: &Drawing, shared: &Mutex<Shared>) {
        self.publish(d.job.generation, shared, || {
            let t0 = Instant::now();
            let (mut snap, net) = score(&d.job, d.stepped.finish());
            self.spent.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            snap.secs = self.spent.load(Ordering::Relaxed).saturating_sub(d.spent0) as f64 * 1e-9;
            (snap.secs, Ok((snap, net)))
        });
    }

    /// Runs `draw` and publishes what it drew (or why it failed) in `shared`.
    fn publish(
        &self,
        generation: u64,
        shared: &Mutex<Shared>,
        draw: impl FnOnce() -> (f64, Result<(Snapshot, FusedMlp), sampling::SampleError>),
    ) {
        let result = std::panic::catch_unwind(AssertUnwindSafe(draw));
        let mut s = lock(shared);
        let current = s.generation == generation;
        if let Ok((secs, _)) = &result {
            self.last.store(secs.to_bits(), Ordering::Release);
            if current {
                s.vis_secs += secs;
            }
        }
        match result {
            // Drawn from the model before a restart: not shown, not counted.
            Ok(_) if !current => {}
            Ok((_, Ok((snap, net)))) => {
                s.snapshots += 1;
                s.snapshot = Some(Arc::new(snap));
                s.net = Some(Arc::new(net));
                s.density_cache.clear();
                if s.error.as_deref().is_some_and(|e| e.starts_with("sampler:")) {
                    s.error = None;
                }
            }
            Ok((_, Err(e))) => s.error = Some(format!("sampler: {e}")),
            Err(_) => s.error = Some("sampler: the snapshot crashed".into()),
        }
    }

    /// Particles along the learned ODE and W2 to fresh data; the seconds it took.
    fn draw(job: SnapJob) -> (f64, Result<(Snapshot, FusedMlp), sampling::SampleError>) {
        let started = Instant::now();
        let result = sampling::sample(
            &job.net,
            &job.x0,
            job.labels.as_deref().map(|v| &v[..]),
            &job.live,
            job.scheduler,
            job.seed,
            // The particles only need to look right: bf16 products where the CPU has them
            // (one snapshot ≈ 1.8× faster); samples.csv recomputes them in f32.
            ferroflow::engine::Precision::Bf16,
        )
        .map(|traj| score(&job, traj));
        let secs = started.elapsed().as_secs_f64();
        (
            secs,
            result.map(|(mut snap, net)| {
                snap.secs = secs;
                (snap, net)
            }),
        )
    }
}

/// The snapshot of `traj`: its W2 to the job's fresh data and its path length (`secs` left
/// for the caller), with the weights it was drawn from.
fn score(job: &SnapJob, traj: Trajectory) -> (Snapshot, FusedMlp) {
    let end = traj.end();
    let w2 = if end.all_finite() { ferroflow::metrics::w2(&end.head(W2_POINTS), &job.fresh).ok() } else { None };
    let path_length = traj.mean_path_length();
    (Snapshot { step: job.step, traj, w2, path_length, secs: 0.0, live: job.live }, job.net.clone())
}

/// The classes of the particles of a labelled world (point i in class i mod k).
pub(crate) fn particle_labels(settings: &Settings, n: usize) -> Option<Vec<u32>> {
    settings.n_classes().map(|k| (0..n as u32).map(|i| i % k).collect())
}

impl Worker {
    fn new(settings: Settings, resume: Option<&Checkpoint>) -> Result<Self, String> {
        let device = Default::default();
        let mut trainer = match resume {
            Some(ck) => Trainer::<CpuAutodiff>::resume(ck, &device).map_err(|e| e.to_string())?,
            None => Trainer::<CpuAutodiff>::new(settings.model_config(), settings.train_config(), &device)
                .map_err(|e| e.to_string())?,
        };
        trainer.run_info = run_info(&settings);
        trainer.set_threads(TRAINER_THREADS);
        let source = open_source(settings.source, &settings);
        let mut target: Box<dyn PointSource> = match &settings.target {
            Target::World(w) => Box::new(*w),
            Target::Drawn(p) => Box::new(EmpiricalSource::new(p.clone())),
        };
        let data = match &settings.target {
            Target::Drawn(p) if p.n <= 5000 => p.clone(),
            _ => target.sample(DATA_POINTS, &mut ferroflow::rng::seeded(settings.seed ^ 0xda7a)).0,
        };
        let mut src = open_source(settings.source, &settings);
        let x0 = src.sample(PARTICLES, &mut ferroflow::rng::seeded(settings.seed ^ 0x5eed)).0;
        let labels = particle_labels(&settings, PARTICLES).map(Arc::new);
        Ok(Worker {
            settings,
            trainer,
            source,
            target,
            data: Arc::new(data),
            x0: Arc::new(x0),
            labels,
            running: false,
            manual_steps: 0,
            ema: None,
            since_snap: 0.0,
            painter: Arc::default(),
            own_pool: None,
            requests_at_snap: 0.0,
            dirty: true,
            eager: true,
            rate: (Instant::now(), 0),
            snap_launched: Instant::now(),
            in_flight: None,
        })
    }

    /// After a panic: waits for new settings and builds a fresh trainer from them (the crashed
    /// one's state is not trusted); other commands are answered or ignored. None on Quit.
    fn after_crash(
        rx: &Receiver<Cmd>,
        shared: &Mutex<Shared>,
        changed: &tokio::sync::watch::Sender<u64>,
    ) -> Option<Self> {
        while let Ok(cmd) = rx.recv() {
            match cmd {
                Cmd::Quit => return None,
                Cmd::Settings(new) => match Worker::new((*new).clone(), None) {
                    Ok(w) => {
                        w.publish(shared, *new);
                        changed.send_modify(|v| *v += 1);
                        return Some(w);
                    }
                    Err(e) => {
                        lock(shared).error = Some(e);
                        changed.send_modify(|v| *v += 1);
                    }
                },
                Cmd::Checkpoint(reply) => {
                    let _ = reply.send(Err("the trainer crashed; change a setting to start afresh".into()));
                }
                _ => {}
            }
        }
        None
    }

    /// Shows a fresh trainer (no step yet) in `shared`.
    fn publish(&self, shared: &Mutex<Shared>, settings: Settings) {
        let mut s = lock(shared);
        s.settings = settings;
        s.state = RunState::Idle;
        s.error = None;
        s.step = 0;
        s.losses.clear();
        s.loss_start = None;
        s.steps_per_s = 0.0;
        s.data = self.data.clone();
        s.x0 = self.x0.clone();
        s.labels = self.labels.clone();
        s.view = sampling::view_box(&[&self.data, &self.x0]);
        s.train_secs = 0.0;
        s.train_thread_secs = 0.0;
        s.vis_secs = 0.0;
        s.request_vis_secs = 0.0;
        s.snapshots = 0;
        s.generation += 1;
    }

    fn run(&mut self, rx: &Receiver<Cmd>, shared: &Arc<Mutex<Shared>>, changed: &Arc<tokio::sync::watch::Sender<u64>>) {
        let bump = || changed.send_modify(|v| *v += 1);
        loop {
            self.tend_drawing(shared, changed);
            let painting = self.painter.busy.load(Ordering::Acquire);
            let busy = self.running || self.manual_steps > 0 || (self.dirty && !painting);
            let cmd = if busy {
                rx.try_recv().ok()
            } else if self.dirty {
                // A snapshot is due but the last one is still being drawn.
                match rx.recv_timeout(Duration::from_millis(2)) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            } else {
                match rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(c) => Some(c),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            };
            if let Some(cmd) = cmd {
                match cmd {
                    Cmd::Quit => return,
                    Cmd::Panic => panic!("panic requested by a test"),
                    Cmd::Start => {
                        let mut s = lock(shared);
                        if matches!(s.state, RunState::Done | RunState::Stopped) {
                            drop(s);
                            self.restart(shared, None);
                            s = lock(shared);
                        }
                        if s.state != RunState::Error {
                            self.running = true;
                            self.eager = true;
                            self.rate = (Instant::now(), self.trainer.step());
                            s.state = RunState::Running;
                        }
                    }
                    Cmd::Pause => {
                        self.running = false;
                        let mut s = lock(shared);
                        if s.state == RunState::Running {
                            s.state = RunState::Paused;
                        }
                    }
                    Cmd::Step(n) => {
                        let mut s = lock(shared);
                        if matches!(s.state, RunState::Idle | RunState::Paused | RunState::Running) {
                            self.running = false;
                            self.manual_steps += n;
                            s.state = RunState::Paused;
                        }
                    }
                    Cmd::Stop => {
                        self.running = false;
                        self.manual_steps = 0;
                        let mut s = lock(shared);
                        if s.state != RunState::Error {
                            s.state = RunState::Stopped;
                        }
                    }
                    Cmd::Settings(new) => {
                        if new.same_model(&self.settings) {
                            self.settings.live = new.live;
                            lock(shared).settings = (*new).clone();
                            self.dirty = true;
                            self.eager = true;
                        } else {
                            let was_running = self.running;
                            self.restart(shared, Some(*new));
                            if was_running {
                                self.running = true;
                                lock(shared).state = RunState::Running;
                            }
                        }
                    }
                    Cmd::Checkpoint(reply) => {
                        let _ = reply.send(self.checkpoint_bytes());
                    }
                }
                bump();
                continue;
            }
            if self.running || self.manual_steps > 0 {
                self.train_chunk(shared);
                bump();
            }
            let idle = !(self.running || self.manual_steps > 0);
            if self.dirty
                && !self.painter.busy.load(Ordering::Acquire)
                && (idle || self.eager || self.within_budget(shared))
            {
                self.launch_snapshot(shared, changed);
            }
        }
    }

    /// Whether the training since the last snapshot began leaves room for the next one: the
    /// pictures since then (that snapshot and the page's requests) stay within [`VIS_SHARE`]
    /// of the thread-seconds (see the module doc).
    fn within_budget(&self, shared: &Mutex<Shared>) -> bool {
        if self.snap_launched.elapsed().as_secs_f64() < 1.0 / MAX_SNAPSHOT_RATE {
            return false;
        }
        let vis = self.painter.last_secs() + (lock(shared).request_vis_secs - self.requests_at_snap).max(0.0);
        self.since_snap >= vis * (1.0 - VIS_SHARE) / VIS_SHARE
    }

    /// The trainer's engine threads (1 on the burn path).
    fn trainer_threads(&self) -> usize {
        self.trainer.engine_threads().map_or(1, |t| t.count())
    }

    /// Looks after the snapshot being drawn in the gaps of training: queues the task that
    /// finishes it once its pieces are done, when training pauses (no more gaps), or at its
    /// deadline (so that the next one can start on time: gaps come only where something else
    /// takes a core); forgets it once published.
    fn tend_drawing(&mut self, shared: &Arc<Mutex<Shared>>, changed: &Arc<tokio::sync::watch::Sender<u64>>) {
        let Some(f) = &mut self.in_flight else { return };
        let Some(threads) = self.trainer.engine_threads() else { return };
        if f.finishing {
            if !self.painter.busy.load(Ordering::Acquire) {
                threads.set_gap_work(None);
                self.in_flight = None;
            }
            return;
        }
        let training = self.running || self.manual_steps > 0;
        // The helper must draw what is left before the next may start, 1 / MAX_SNAPSHOT_RATE
        // after this one: the pieces left at the last snapshot's pace, with a margin for a
        // busy core and the W2 at the end.
        let left = (1.0 - f.drawing.stepped.progress()) * self.painter.last_secs();
        let due = f.launched.elapsed().as_secs_f64() + 1.5 * left + 0.015 >= 1.0 / MAX_SNAPSHOT_RATE;
        if f.urgent || f.drawing.stepped.is_done() || !training || due {
            f.finishing = true;
            let (d, shared, changed) = (f.drawing.clone(), shared.clone(), changed.clone());
            let painting = Painting(self.painter.clone());
            drop(threads.ahead(move || {
                painting.0.finish(&d, &shared);
                drop(painting);
                changed.send_modify(|v| *v += 1);
            }));
        }
    }

    /// Rebuilds the trainer (new settings, or the same from scratch).
    fn restart(&mut self, shared: &Mutex<Shared>, settings: Option<Settings>) {
        let settings = settings.unwrap_or_else(|| self.settings.clone());
        match Worker::new(settings.clone(), None) {
            Ok(w) => {
                *self = w;
                self.publish(shared, settings);
            }
            Err(e) => {
                let mut s = lock(shared);
                s.state = RunState::Error;
                s.error = Some(e);
            }
        }
    }

    fn train_chunk(&mut self, shared: &Mutex<Shared>) {
        let started = Instant::now();
        let spent0 = self.painter.spent.load(Ordering::Relaxed);
        let mut points = Vec::new();
        let mut failure = None;
        let total = self.trainer.config().steps;
        while started.elapsed() < CHUNK && self.trainer.step() < total && (self.running || self.manual_steps > 0) {
            let step = self.trainer.step();
            let mut rng = step_rng(self.settings.seed, step);
            let b = self.settings.batch;
            let (x0, _) = self.source.sample(b, &mut rng);
            let (x1, labels) = self.target.sample(b, &mut rng);
            let labels = if self.settings.conditional { labels } else { None };
            let pairing = match self.trainer.config().coupling.pair(&x0, &x1, labels.as_deref(), &mut rng) {
                Ok(p) => p,
                Err(e) => {
                    failure = Some(format!("coupling failed at step {}: {e}", step + 1));
                    break;
                }
            };
            let x0 = x0.select(&pairing.i0);
            let x1 = x1.select(&pairing.i1);
            let labels = labels.map(|l| pairing.i1.iter().map(|&i| l[i]).collect::<Vec<_>>());
            match self.trainer.train_step(&x0, &x1, labels.as_deref(), &mut rng) {
                Ok(loss) => {
                    let ema = match self.ema {
                        None => loss,
                        Some(e) => e + (loss - e) * LOSS_EMA_RATE,
                    };
                    self.ema = Some(ema);
                    points.push([self.trainer.step() as f64, loss, ema]);
                    self.manual_steps = self.manual_steps.saturating_sub(1);
                }
                Err(ferroflow::Error::NonFinite { step, .. }) => {
                    failure = Some(format!("diverged at step {step}, lower the learning rate"));
                    break;
                }
                Err(e) => {
                    failure = Some(e.to_string());
                    break;
                }
            }
        }
        let secs = started.elapsed().as_secs_f64();
        // Thread-seconds: the trainer's threads' less what they spent drawing meanwhile (a
        // helper's whole snapshot, or pieces in the gaps). The own pool's snapshots are drawn
        // beside a trainer of one thread, not on it.
        let n = self.trainer_threads();
        let drawn =
            if n > 1 { self.painter.spent.load(Ordering::Relaxed).saturating_sub(spent0) as f64 * 1e-9 } else { 0.0 };
        let thread_secs = (secs * n as f64 - drawn).max(0.0);
        self.since_snap += thread_secs;
        if !points.is_empty() {
            self.dirty = true;
        }
        let mut s = lock(shared);
        s.train_secs += secs;
        s.train_thread_secs += thread_secs;
        s.step = self.trainer.step();
        if s.loss_start.is_none() {
            s.loss_start = points.first().map(|p| p[2]);
        }
        s.losses.extend(points);
        if s.losses.len() > MAX_LOSS_POINTS {
            let kept: Vec<_> = s.losses.iter().step_by(2).copied().collect();
            s.losses = kept;
        }
        let (t0, k0) = self.rate;
        let dt = t0.elapsed().as_secs_f64();
        if dt > 0.5 {
            s.steps_per_s = (self.trainer.step() - k0) as f64 / dt;
            self.rate = (Instant::now(), self.trainer.step());
        } else if s.steps_per_s == 0.0 && dt > 0.0 {
            s.steps_per_s = (self.trainer.step() - k0) as f64 / dt;
        }
        if let Some(f) = failure {
            self.running = false;
            self.manual_steps = 0;
            s.state = RunState::Error;
            s.error = Some(f);
            // The failed step applied no update: the trainer holds the last good model, and
            // the next snapshot (if any is due) shows it.
            self.dirty = true;
        } else if self.trainer.step() >= total {
            self.running = false;
            self.manual_steps = 0;
            s.state = RunState::Done;
        } else if !self.running && self.manual_steps == 0 && s.state == RunState::Running {
            s.state = RunState::Paused;
        }
    }

    /// Queues a snapshot: a copy of the sampling weights and what is needed to draw them,
    /// for the first idle helper of the trainer's engine threads (or of the session's own
    /// pool when the trainer has no helper).
    fn launch_snapshot(&mut self, shared: &Arc<Mutex<Shared>>, changed: &Arc<tokio::sync::watch::Sender<u64>>) {
        let urgent = self.eager;
        self.dirty = false;
        self.eager = false;
        self.since_snap = 0.0;
        self.requests_at_snap = lock(shared).request_vis_secs;
        let step = self.trainer.step();
        let job = SnapJob {
            generation: lock(shared).generation,
            step,
            net: FusedMlp::from_field(&self.trainer.sampling_model()),
            x0: self.x0.clone(),
            labels: self.labels.clone(),
            live: self.settings.live,
            scheduler: self.settings.scheduler_config(),
            seed: self.settings.seed,
            fresh: self.target.sample(W2_POINTS, &mut ferroflow::rng::seeded(step ^ 0x3e2)).0,
        };
        self.painter.busy.store(true, Ordering::Release);
        self.snap_launched = Instant::now();
        // On the trainer's threads, the host's fixed-step path is drawn in pieces in the gaps
        // of training ([`Self::tend_drawing`] finishes it).
        if let Some(threads) = self.trainer.engine_threads().filter(|t| t.count() > 1)
            && let Some(stepped) = SteppedSample::new(
                &job.net,
                &job.x0,
                job.labels.as_deref().map(|v| &v[..]),
                &job.live,
                ferroflow::engine::Precision::Bf16,
            )
        {
            let drawing = Arc::new(Drawing {
                job,
                stepped,
                painter: self.painter.clone(),
                spent0: self.painter.spent.load(Ordering::Relaxed),
            });
            threads.set_gap_work(Some(drawing.clone()));
            self.in_flight = Some(InFlight { drawing, launched: Instant::now(), urgent, finishing: false });
            self.tend_drawing(shared, changed);
            return;
        }
        let threads = match self.trainer.engine_threads().filter(|t| t.count() > 1) {
            Some(t) => t,
            None => self.own_pool.get_or_insert_with(|| ferroflow::engine::Threads::new(2)),
        };
        let painting = Painting(self.painter.clone());
        let (shared, changed) = (shared.clone(), changed.clone());
        // Not waited for: the task publishes its snapshot itself.
        drop(threads.ahead(move || {
            painting.0.paint(job, &shared);
            drop(painting);
            changed.send_modify(|v| *v += 1);
        }));
    }

    fn checkpoint_bytes(&self) -> Result<Vec<u8>, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary folder: {e}"))?;
        let path = dir.path().join("model.safetensors");
        self.trainer.save(&path).map_err(|e| e.to_string())?;
        std::fs::read(&path).map_err(|e| format!("cannot read the checkpoint back: {e}"))
    }
}
