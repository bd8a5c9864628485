//! The engine's threads: the calling thread and `n − 1` helpers that spin between jobs.
//!
//! A job is a list of blocks, each claimed by whichever thread is free (an atomic counter):
//! [`Threads::for_each_dynamic`] (training: short steps on a machine where another process
//! may hold a core; a preempted thread leaves its share to the others instead of holding the
//! step up) and [`Threads::for_each`] (the samplers' long blocks of equal cost). Results never
//! depend on which thread ran a block.
//!
//! The caller takes part in every job, and a helper that has finished one spins (for
//! [`SPIN`]) waiting for the next before it parks. A training step is a few phases of a
//! fraction of a millisecond; a thread that sleeps between them must be woken, and on a core
//! that runs anything else (a browser, another job) Linux's EEVDF scheduler lets the woken
//! thread wait for the running one's slice: with two nice-19 busy loops beside it, W2D
//! training on rayon's pool (whose idle workers yield, then sleep) fell from 680 to 436
//! steps/s (BENCHMARKS.md). A helper that joins late is not waited for: the caller closes the
//! job once its blocks are all claimed, and waits only for the helpers running one.
//!
//! A helper that waits for a job first runs a background task if one is queued
//! ([`Threads::ahead`]: the trainer's next exact-OT plan); the jobs started meanwhile go to
//! the other threads, with finer blocks while it is away ([`Threads::helper_busy`]).
//!
//! A thread that has waited [`GAP_AFTER`] (a helper for the next job, the caller for a block
//! still held by a helper) is in a gap the OS made: the thread it waits for lost its core
//! (to a browser drawing frames, say). It then runs short pieces of [`GapWork`] if some is
//! set ([`Threads::set_gap_work`]), until the job comes or the pieces run out.

use std::any::Any;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

/// How long a helper spins for the next job before it parks. Longer than the gaps inside a
/// training step and between steps (batch sampling), short enough that an idle engine costs
/// nothing measurable.
pub const SPIN: Duration = Duration::from_micros(500);

/// How long a thread waits (a helper for the next job, the caller for a helper's block)
/// before it takes pieces of [`GapWork`]. Longer than the gaps a step makes itself (the
/// caller's batch between steps, the last block of a phase: well under 100 µs for W2D at
/// batch 256); a thread that lost its core to another process is away for milliseconds.
pub const GAP_AFTER: Duration = Duration::from_micros(200);

/// Work in short pieces for the gaps of the engine's jobs ([`Threads::set_gap_work`]).
pub trait GapWork: Send + Sync {
    /// Claims one piece (a fraction of a millisecond: a thread in a piece is late for the
    /// job it waited for by up to its length) and runs it; false when no piece is left to
    /// claim. Called from several threads at once; a panic is the work's own to catch (one
    /// that escapes drops the work).
    fn run_piece(&self) -> bool;
}

/// The job word: epoch (high 32 bits), closed flag (bit 31), active helpers (low 31 bits).
const CLOSED: u64 = 1 << 31;
const ACTIVE: u64 = CLOSED - 1;

/// What the caller and the helpers share.
struct Shared {
    state: AtomicU64,
    /// The current job, valid from the epoch's start until the job is closed and no helper
    /// is active; written only by the caller while no helper can read it.
    job: UnsafeCell<Option<&'static (dyn Fn() + Sync)>>,
    /// The thread waiting for the job's helpers.
    caller: Mutex<Option<Thread>>,
    stop: AtomicBool,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    /// Tasks for the first helper that is idle between jobs ([`Threads::ahead`]), oldest
    /// first, and whether one is waiting (read in the helpers' spin loop without the lock).
    task: Mutex<std::collections::VecDeque<Task>>,
    has_task: AtomicBool,
    /// Tasks queued and not yet finished or dropped: while one is, a helper may be away from
    /// the jobs ([`Threads::helper_busy`]).
    tasks: AtomicUsize,
    /// The gap work ([`Threads::set_gap_work`]), and whether some is set (read in the wait
    /// loops without the lock).
    gap: Mutex<Option<Arc<dyn GapWork>>>,
    has_gap: AtomicBool,
}

impl Shared {
    /// Runs a piece of the gap work if some is set; whether one ran. Work with no piece left
    /// (or whose piece panicked) is unset.
    fn gap_piece(&self) -> bool {
        if !self.has_gap.load(Ordering::Acquire) {
            return false;
        }
        let Some(work) = self.gap.lock().unwrap_or_else(|e| e.into_inner()).clone() else { return false };
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work.run_piece())).unwrap_or(false);
        if !ran {
            let mut slot = self.gap.lock().unwrap_or_else(|e| e.into_inner());
            if slot.as_ref().is_some_and(|w| Arc::ptr_eq(w, &work)) {
                *slot = None;
                self.has_gap.store(false, Ordering::Release);
            }
        }
        ran
    }
}

/// A background task: it runs at most once, on a helper or on the thread that waits for it.
type Task = Box<dyn FnOnce() + Send>;

// SAFETY: `job` is written by the caller only while no helper is active and the job word is
// closed (or before its epoch is published), and read by a helper only between joining an
// open job (a CAS on `state` with Acquire) and leaving it (Release); see `Pool::run`.
unsafe impl Sync for Shared {}

/// The helpers; dropped with the last clone of its [`Threads`].
struct Pool {
    shared: Arc<Shared>,
    helpers: Vec<JoinHandle<()>>,
    /// Held by the caller during a job: a second caller (a clone used from another thread,
    /// or a job started from inside a job) runs its blocks alone instead.
    busy: Mutex<()>,
    epoch: AtomicU64,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").field("helpers", &self.helpers.len()).finish()
    }
}

impl Pool {
    fn new(helpers: usize) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            state: AtomicU64::new(CLOSED),
            job: UnsafeCell::new(None),
            caller: Mutex::new(None),
            stop: AtomicBool::new(false),
            panic: Mutex::new(None),
            task: Mutex::new(Default::default()),
            has_task: AtomicBool::new(false),
            tasks: AtomicUsize::new(0),
            gap: Mutex::new(None),
            has_gap: AtomicBool::new(false),
        });
        let mut pool = Pool { shared, helpers: Vec::new(), busy: Mutex::new(()), epoch: AtomicU64::new(0) };
        for i in 0..helpers {
            let sh = pool.shared.clone();
            let h =
                std::thread::Builder::new().name(format!("ferroflow-engine-{}", i + 1)).spawn(move || helper(&sh))?;
            pool.helpers.push(h);
        }
        Ok(pool)
    }

    /// Runs `work` on the calling thread and on every helper that joins in time; returns
    /// when all that joined are done. `work` claims blocks until none are left.
    fn run(&self, work: &(dyn Fn() + Sync)) {
        let _busy = match self.busy.try_lock() {
            Ok(g) => g,
            // A job whose work panicked left the lock poisoned; the pool is still sound.
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => {
                work();
                return;
            }
        };
        let sh = &*self.shared;
        // A helper's panic left over from a job whose caller panicked too is not this job's.
        drop(sh.panic.lock().unwrap_or_else(|e| e.into_inner()).take());
        *sh.caller.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current());
        // SAFETY: the previous job is closed with no active helper (its `run` waited for
        // that), so no helper reads `job` now; the lifetime is extended only until this call
        // has closed the job and seen no active helper, below (also when `work` panics).
        unsafe {
            *sh.job.get() = Some(std::mem::transmute::<&(dyn Fn() + Sync), &'static (dyn Fn() + Sync)>(work));
        }
        let epoch = (self.epoch.fetch_add(1, Ordering::Relaxed) + 1) & 0xffff_ffff;
        sh.state.store(epoch << 32, Ordering::Release);
        for h in &self.helpers {
            h.thread().unpark();
        }
        /// Closes the job and waits for its active helpers, however `work` ends.
        struct Close<'a>(&'a Shared);
        impl Drop for Close<'_> {
            fn drop(&mut self) {
                let sh = self.0;
                sh.state.fetch_or(CLOSED, Ordering::AcqRel);
                let started = Instant::now();
                while sh.state.load(Ordering::Acquire) & ACTIVE != 0 {
                    let waited = started.elapsed();
                    if waited >= GAP_AFTER && sh.gap_piece() {
                        continue;
                    }
                    if waited < SPIN {
                        std::hint::spin_loop();
                    } else {
                        std::thread::park_timeout(Duration::from_micros(200));
                    }
                }
                // SAFETY: closed and no helper active: nobody reads `job` until the next run.
                unsafe { *sh.job.get() = None };
            }
        }
        let close = Close(sh);
        work();
        drop(close);
        if let Some(p) = sh.panic.lock().unwrap_or_else(|e| e.into_inner()).take() {
            std::panic::resume_unwind(p);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for h in self.helpers.drain(..) {
            h.thread().unpark();
            let _ = h.join();
        }
        // Tasks no helper started are dropped unrun here (each holds an `Arc` of `shared`,
        // which would otherwise keep itself alive).
        let queued = std::mem::take(&mut *self.shared.task.lock().unwrap_or_else(|e| e.into_inner()));
        drop(queued);
    }
}

/// A helper's loop: wait (spin, then park) for a new epoch, join the job if it is still
/// open, run it, leave. While it waits it runs a background task if one is queued: before
/// a job, so that the task starts at the helper's first idle moment, while the caller (and
/// any other helper) takes the job's blocks.
fn helper(sh: &Shared) {
    let mut seen = sh.state.load(Ordering::Acquire) >> 32;
    loop {
        let mut started = Instant::now();
        let mut spins = 0u32;
        let s = loop {
            if sh.stop.load(Ordering::Acquire) {
                return;
            }
            if sh.has_task.load(Ordering::Acquire) {
                let task = {
                    let mut queue = sh.task.lock().unwrap_or_else(|e| e.into_inner());
                    let task = queue.pop_front();
                    sh.has_task.store(!queue.is_empty(), Ordering::Release);
                    task
                };
                if let Some(task) = task {
                    // The task catches its own panics (see `Ahead`).
                    task();
                    started = Instant::now();
                }
                continue;
            }
            let s = sh.state.load(Ordering::Acquire);
            if s >> 32 != seen {
                break s;
            }
            if started.elapsed() >= GAP_AFTER && sh.gap_piece() {
                // Still in the gap: the next piece at once, and a whole spin after the last
                // one before parking.
                started = Instant::now().checked_sub(GAP_AFTER).unwrap_or_else(Instant::now);
                continue;
            }
            spins = spins.wrapping_add(1);
            if !spins.is_multiple_of(64) || started.elapsed() < SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::park_timeout(Duration::from_millis(50));
            }
        };
        seen = s >> 32;
        let mut s = s;
        let joined = loop {
            if s >> 32 != seen || s & CLOSED != 0 {
                break false;
            }
            match sh.state.compare_exchange_weak(s, s + 1, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break true,
                Err(now) => s = now,
            }
        };
        if !joined {
            continue;
        }
        // SAFETY: joined an open job: the caller keeps `job` valid until this helper leaves.
        let job = unsafe { *sh.job.get() };
        if let Some(job) = job
            && let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
        {
            let mut slot = sh.panic.lock().unwrap_or_else(|e| e.into_inner());
            slot.get_or_insert(p);
        }
        let left = sh.state.fetch_sub(1, Ordering::AcqRel) - 1;
        if left & ACTIVE == 0
            && left & CLOSED != 0
            && let Some(t) = sh.caller.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        {
            t.unpark();
        }
    }
}

/// A fixed number of threads: the caller and `n − 1` helpers (none for one thread).
#[derive(Debug, Clone)]
pub struct Threads {
    n: usize,
    pool: Option<Arc<Pool>>,
}

impl Threads {
    /// `n` threads; 0 means one per available core.
    ///
    /// ```
    /// let t = ferroflow::engine::Threads::new(2);
    /// assert_eq!(t.count(), 2);
    /// ```
    pub fn new(n: usize) -> Self {
        let n = if n == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { n };
        let pool = (n > 1).then(|| Pool::new(n - 1).ok().map(Arc::new)).flatten();
        let n = if pool.is_some() { n } else { 1 };
        Self { n, pool }
    }

    /// Number of threads.
    pub fn count(&self) -> usize {
        self.n
    }

    /// Whether a task of [`Self::ahead`] is queued or running: a helper may be away from the
    /// jobs, so a job's blocks should be small enough for the others to share its part.
    pub(crate) fn helper_busy(&self) -> bool {
        self.pool.as_ref().is_some_and(|p| p.shared.tasks.load(Ordering::Acquire) > 0)
    }

    /// Runs `f` on the calling thread, which takes part in every job started inside it.
    pub(crate) fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        f()
    }

    /// Runs `f(i, &mut items[i])` for every item, each item claimed by whichever thread is
    /// free (the caller's thread takes part), and returns when all are done. A thread that
    /// has not started by the time the items run out is not waited for.
    pub(crate) fn for_each_dynamic<T: Send>(&self, items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
        match &self.pool {
            Some(pool) if items.len() > 1 => {
                let cells: Vec<Mutex<&mut T>> = items.iter_mut().map(Mutex::new).collect();
                let next = AtomicUsize::new(0);
                let work = || {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(cell) = cells.get(i) else { break };
                        // Each index is claimed once: the lock is never contended.
                        let mut item = cell.lock().unwrap_or_else(|e| e.into_inner());
                        f(i, &mut item);
                    }
                };
                pool.run(&work);
            }
            _ => {
                for (i, it) in items.iter_mut().enumerate() {
                    f(i, it);
                }
            }
        }
    }

    /// Runs `f(i, &mut items[i])` for every item on the threads and returns when all are
    /// done (items claimed as in [`Self::for_each_dynamic`]; each item's result is the same
    /// on whichever thread it runs).
    pub(crate) fn for_each<T: Send>(&self, items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
        self.for_each_dynamic(items, f)
    }
}

/// The state of an [`Ahead`] task.
enum AheadState<T> {
    Queued(Box<dyn FnOnce() -> T + Send>),
    Running,
    Done(std::thread::Result<T>),
    Taken,
}

/// What an [`Ahead`] shares with the helper that may run it.
struct AheadCell<T> {
    state: Mutex<AheadState<T>>,
    done: std::sync::Condvar,
}

impl<T> AheadCell<T> {
    /// Runs the task here if nobody has started it; returns whether it did.
    fn run_if_queued(&self) -> bool {
        let f = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match std::mem::replace(&mut *st, AheadState::Running) {
                AheadState::Queued(f) => f,
                other => {
                    *st = other;
                    return false;
                }
            }
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = AheadState::Done(r);
        self.done.notify_all();
        true
    }
}

/// A task made ahead by [`Threads::ahead`]: [`Ahead::wait`] returns its result. Dropped
/// unwaited, the task still runs on a helper and its result is dropped; with no helper (one
/// thread), or if the threads are dropped before a helper starts it, it never runs.
pub struct Ahead<T> {
    cell: Arc<AheadCell<T>>,
}

impl<T> Ahead<T> {
    /// Whether the task has run (its result or its panic is ready for [`Self::wait`]).
    pub fn is_finished(&self) -> bool {
        matches!(*self.cell.state.lock().unwrap_or_else(|e| e.into_inner()), AheadState::Done(_))
    }

    /// The task's result: run here if no helper has started it yet, else waited for. A
    /// panic of the task is resumed here.
    pub fn wait(self) -> T {
        self.cell.run_if_queued();
        let mut st = self.cell.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            match std::mem::replace(&mut *st, AheadState::Taken) {
                AheadState::Done(Ok(t)) => return t,
                AheadState::Done(Err(p)) => {
                    drop(st);
                    std::panic::resume_unwind(p)
                }
                other => {
                    *st = other;
                    st = self.cell.done.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
}

impl Threads {
    /// Queues `f` for the first helper that is idle between two jobs (the jobs started
    /// meanwhile are run by the others, the caller included: their blocks are claimed
    /// dynamically) and returns its handle. With no helper, `f` runs when it is waited for.
    ///
    /// This is how the trainer makes the next step's exact-OT plan while a step runs, on the
    /// engine's own threads instead of a thread of its own: an extra thread that the OS puts
    /// on a core preempts an engine thread in the middle of its block, and the step waits for
    /// that block; a helper that takes the task between jobs holds no block. The explorer
    /// draws its snapshots this way on its trainer's threads.
    ///
    /// Tasks queued before this one's start first. A task runs once: on a helper, or on the
    /// thread that waits for it if no helper has started it.
    ///
    /// ```
    /// let threads = ferroflow::engine::Threads::new(2);
    /// let task = threads.ahead(|| (1..=10u64).sum::<u64>());
    /// assert_eq!(task.wait(), 55);
    /// ```
    pub fn ahead<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Ahead<T> {
        let cell = Arc::new(AheadCell { state: Mutex::new(AheadState::Queued(Box::new(f))), done: Default::default() });
        if let Some(pool) = &self.pool {
            /// Counts the task in `Shared::tasks` from its queueing until it has run or is
            /// dropped unrun (the waiter ran it, or the pool stopped first).
            struct Counted(Arc<Shared>);
            impl Drop for Counted {
                fn drop(&mut self) {
                    self.0.tasks.fetch_sub(1, Ordering::AcqRel);
                }
            }
            let sh = &*pool.shared;
            sh.tasks.fetch_add(1, Ordering::AcqRel);
            let (c, counted) = (cell.clone(), Counted(pool.shared.clone()));
            sh.task.lock().unwrap_or_else(|e| e.into_inner()).push_back(Box::new(move || {
                c.run_if_queued();
                drop(counted);
            }));
            sh.has_task.store(true, Ordering::Release);
            for h in &pool.helpers {
                h.thread().unpark();
            }
        }
        Ahead { cell }
    }
}

impl Threads {
    /// Sets the work whose pieces the threads run in the gaps of their jobs (see the module
    /// doc), replacing any; `None` unsets it. Work with no piece left is unset by itself.
    /// Nothing guarantees it progress: a quiet machine makes no gaps, and one thread has no
    /// gap at all. Its owner finishes the rest (on a helper with [`Self::ahead`], say) when it
    /// must be done.
    ///
    /// This is how the explorer draws its snapshots in the time its browser takes a training
    /// thread's core away: the other thread would otherwise wait for it, idle.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use ferroflow::engine::{GapWork, Threads};
    ///
    /// struct Count(AtomicUsize);
    /// impl GapWork for Count {
    ///     fn run_piece(&self) -> bool {
    ///         self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |k| (k < 10).then_some(k + 1)).is_ok()
    ///     }
    /// }
    /// let threads = Threads::new(2);
    /// let work = Arc::new(Count(AtomicUsize::new(0)));
    /// threads.set_gap_work(Some(work.clone()));
    /// // No job: the helper waits for one, and takes the pieces.
    /// let t0 = std::time::Instant::now();
    /// while work.0.load(Ordering::Acquire) < 10 && t0.elapsed().as_secs() < 10 {
    ///     std::thread::sleep(std::time::Duration::from_millis(1));
    /// }
    /// assert_eq!(work.0.load(Ordering::Acquire), 10);
    /// ```
    pub fn set_gap_work(&self, work: Option<Arc<dyn GapWork>>) {
        if let Some(pool) = &self.pool {
            let sh = &*pool.shared;
            let mut slot = sh.gap.lock().unwrap_or_else(|e| e.into_inner());
            sh.has_gap.store(work.is_some(), Ordering::Release);
            *slot = work;
            drop(slot);
            for h in &pool.helpers {
                h.thread().unpark();
            }
        }
    }
}

/// Splits `0..len` into `parts` contiguous ranges of near-equal size (multiples of `align`
/// except the last).
pub(crate) fn split(len: usize, parts: usize, align: usize) -> Vec<std::ops::Range<usize>> {
    let parts = parts.max(1);
    let per = len.div_ceil(parts).div_ceil(align) * align;
    (0..parts).map(|i| (i * per).min(len)..((i + 1) * per).min(len)).filter(|r| !r.is_empty() || len == 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_covers_the_range_once_in_order() {
        for (len, parts, align) in [(256, 2, 1), (257, 2, 16), (3, 4, 1), (133_122, 2, 64), (1, 3, 8)] {
            let r = split(len, parts, align);
            assert_eq!(r.first().unwrap().start, 0);
            assert_eq!(r.last().unwrap().end, len);
            assert!(r.windows(2).all(|w| w[0].end == w[1].start));
            assert!(r.len() <= parts);
        }
    }

    #[test]
    fn for_each_visits_every_item_once() {
        let t = Threads::new(2);
        let mut v = vec![0u32; 7];
        t.for_each(&mut v, |i, x| *x += i as u32 + 1);
        assert_eq!(v, vec![1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn many_short_jobs_each_visit_every_item_once() {
        // Back-to-back jobs exercise the hand-shake: helpers that join late, skip a closed
        // job, or are still spinning on the last one when the next starts.
        let t = Threads::new(3);
        for round in 0..20_000u32 {
            let len = 1 + (round % 7) as usize;
            let mut v = vec![0u32; len];
            t.for_each_dynamic(&mut v, |i, x| *x += i as u32 + round);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32 + round), "round {round}: {v:?}");
        }
    }

    #[test]
    fn a_panicking_block_reaches_the_caller_and_the_pool_keeps_working() {
        let t = Threads::new(2);
        for _ in 0..20 {
            let mut v = vec![0u32; 64];
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                t.for_each_dynamic(&mut v, |i, x| {
                    if i == 40 {
                        panic!("block 40");
                    }
                    *x = 1;
                })
            }));
            assert!(r.is_err(), "the panic of block 40 must reach the caller");
            let mut w = vec![0u32; 64];
            t.for_each_dynamic(&mut w, |_, x| *x = 7);
            assert!(w.iter().all(|&x| x == 7));
        }
    }

    #[test]
    fn a_job_started_inside_a_job_runs_on_the_calling_thread() {
        let t = Threads::new(2);
        let mut outer = vec![0u32; 8];
        t.for_each_dynamic(&mut outer, |i, x| {
            let mut inner = vec![0u32; 5];
            t.for_each_dynamic(&mut inner, |j, y| *y = j as u32);
            *x = i as u32 + inner.iter().sum::<u32>();
        });
        assert_eq!(outer, (10..18).collect::<Vec<_>>());
    }

    #[test]
    fn a_task_made_ahead_runs_once_on_a_helper_while_jobs_go_on() {
        let t = Threads::new(2);
        let caller = std::thread::current().id();
        for round in 0..200u64 {
            let a = t.ahead(move || (std::thread::current().id(), round * round));
            // Jobs started meanwhile still visit every item once.
            let mut v = vec![0u64; 9];
            t.for_each_dynamic(&mut v, |i, x| *x = i as u64 + round);
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 + round));
            let (_, r) = a.wait();
            assert_eq!(r, round * round);
        }
        // A helper that waits for jobs takes the task: it does not run on the caller.
        let a = t.ahead(|| std::thread::current().id());
        std::thread::sleep(Duration::from_millis(20));
        assert_ne!(a.wait(), caller);
    }

    #[test]
    fn a_task_made_ahead_without_helpers_runs_when_waited_for_and_its_panic_reaches_the_waiter() {
        let t = Threads::new(1);
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        let a = t.ahead(move || r.store(true, Ordering::SeqCst));
        assert!(!ran.load(Ordering::SeqCst), "no helper: nothing runs before the wait");
        a.wait();
        assert!(ran.load(Ordering::SeqCst));
        for n in [1, 2] {
            let t = Threads::new(n);
            let a = t.ahead(|| -> u32 { panic!("task") });
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a.wait()));
            assert!(r.is_err(), "{n} threads: the task's panic must reach the waiter");
            assert_eq!(t.ahead(|| 5).wait(), 5, "{n} threads: the pool still works");
        }
    }

    #[test]
    fn tasks_queue_in_order_run_unwaited_and_are_dropped_unrun_with_their_pool() {
        let t = Threads::new(2);
        // The helper takes the first task and holds it until told to go on.
        let (started_tx, started) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let first = t.ahead(move || {
            started_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            1
        });
        started.recv().unwrap();
        // Queued behind it, in order; none of them is waited for, and none replaces another.
        let order = Arc::new(Mutex::new(Vec::new()));
        for k in 0..3 {
            let o = order.clone();
            drop(t.ahead(move || o.lock().unwrap().push(k)));
        }
        let last = t.ahead(|| 7);
        assert!(!first.is_finished() && !last.is_finished());
        go.send(()).unwrap();
        assert_eq!(first.wait(), 1);
        let started = Instant::now();
        while !last.is_finished() {
            assert!(started.elapsed() < Duration::from_secs(10), "the queued tasks never ran");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2], "queued tasks run once each, oldest first");
        assert_eq!(last.wait(), 7);

        // Tasks still queued when the pool is dropped are dropped unrun, with what they hold.
        let t = Threads::new(2);
        let (started_tx, started) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        drop(t.ahead(move || {
            started_tx.send(()).unwrap();
            go_rx.recv().unwrap();
        }));
        started.recv().unwrap();
        let held = Arc::new(());
        let h = held.clone();
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        drop(t.ahead(move || {
            let _h = h;
            r.store(true, Ordering::SeqCst);
        }));
        // Let the helper finish its task while the pool is being dropped: it stops then.
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            go.send(()).unwrap();
        });
        drop(t);
        release.join().unwrap();
        assert!(!ran.load(Ordering::SeqCst), "a task queued behind a stopping pool must not run");
        assert_eq!(Arc::strong_count(&held), 1, "the unrun task and what it holds are dropped");
    }

    /// Counts its pieces (up to `limit`) and the threads that ran them.
    struct Pieces {
        done: AtomicUsize,
        limit: usize,
        on: Mutex<Vec<std::thread::ThreadId>>,
    }

    impl GapWork for Pieces {
        fn run_piece(&self) -> bool {
            if self.done.fetch_add(1, Ordering::AcqRel) >= self.limit {
                return false;
            }
            self.on.lock().unwrap().push(std::thread::current().id());
            std::thread::sleep(Duration::from_micros(50));
            true
        }
    }

    #[test]
    fn a_caller_waiting_for_a_held_block_runs_gap_work_and_the_job_stays_whole() {
        let t = Threads::new(2);
        let work = Arc::new(Pieces { done: AtomicUsize::new(0), limit: usize::MAX, on: Mutex::new(Vec::new()) });
        t.set_gap_work(Some(work.clone()));
        let caller = std::thread::current().id();
        for round in 0..20u32 {
            // A block on the helper takes 20 ms, as if its core had been taken away; the
            // caller's take 1 ms, so the helper joins and holds one.
            let mut v = vec![0u32; 8];
            t.for_each_dynamic(&mut v, |i, x| {
                let on_helper = std::thread::current().name() == Some("ferroflow-engine-1");
                std::thread::sleep(Duration::from_millis(if on_helper { 20 } else { 1 }));
                *x = i as u32 + round;
            });
            assert!(v.iter().enumerate().all(|(i, &x)| x == i as u32 + round), "{v:?}");
            if work.on.lock().unwrap().contains(&caller) {
                t.set_gap_work(None);
                // (A piece claimed just before may still start.)
                std::thread::sleep(Duration::from_millis(5));
                let before = work.done.load(Ordering::Acquire);
                std::thread::sleep(Duration::from_millis(50));
                assert_eq!(work.done.load(Ordering::Acquire), before, "unset work runs no more pieces");
                return;
            }
        }
        panic!("in 20 jobs whose helper held a block for 20 ms, the caller never ran a piece");
    }

    #[test]
    fn gap_work_with_no_piece_left_is_unset_and_a_single_thread_runs_none() {
        let t = Threads::new(2);
        let work = Arc::new(Pieces { done: AtomicUsize::new(0), limit: 5, on: Mutex::new(Vec::new()) });
        t.set_gap_work(Some(work.clone()));
        let started = Instant::now();
        while t.pool.as_ref().unwrap().shared.has_gap.load(Ordering::Acquire) {
            assert!(started.elapsed() < Duration::from_secs(10), "the idle helper never took the pieces");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(work.on.lock().unwrap().len(), 5);
        assert_eq!(Arc::strong_count(&work), 1, "the pool let go of the finished work");

        let one = Threads::new(1);
        let work = Arc::new(Pieces { done: AtomicUsize::new(0), limit: 5, on: Mutex::new(Vec::new()) });
        one.set_gap_work(Some(work.clone()));
        let mut v = vec![0u32; 4];
        one.for_each_dynamic(&mut v, |i, x| *x = i as u32);
        assert_eq!(work.done.load(Ordering::Acquire), 0);
        assert_eq!(Arc::strong_count(&work), 1, "one thread keeps no gap work");
    }

    #[test]
    fn pools_are_joined_when_dropped() {
        // Each drop stops and joins its helper (a leak or a hang would show here).
        for _ in 0..50 {
            let t = Threads::new(2);
            let mut v = vec![1u32; 4];
            t.for_each(&mut v, |_, x| *x *= 3);
            assert_eq!(v, vec![3; 4]);
        }
    }

    #[test]
    fn for_each_dynamic_visits_every_item_once_on_any_thread_count() {
        for n in [1, 2, 3] {
            let t = Threads::new(n);
            let mut v = vec![0u32; 37];
            t.for_each_dynamic(&mut v, |i, x| *x += i as u32 + 1);
            assert_eq!(v, (1..=37).collect::<Vec<_>>(), "{n} threads");
            // Nested inside `install` (the trainer's use) it runs the same items.
            let mut w = vec![0u32; 5];
            t.install(|| t.for_each_dynamic(&mut w, |i, x| *x = 10 * i as u32));
            assert_eq!(w, vec![0, 10, 20, 30, 40]);
        }
    }
}
