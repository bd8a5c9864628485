//! The engine's threads: a private rayon pool that runs one closure per block of work.
//!
//! Two ways to hand out blocks, both with results that never depend on scheduling:
//! - [`Threads::for_each`]: as many blocks as threads, block `i` on thread `i mod n` (the
//!   samplers: long blocks of equal cost);
//! - [`Threads::for_each_dynamic`]: blocks of a fixed size whatever the thread count, each
//!   claimed by whichever thread is free (training: short steps on a machine where another
//!   process may hold a core; a preempted thread leaves its share to the others instead of
//!   holding the step up).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A fixed number of worker threads (a private rayon pool; none for one thread).
#[derive(Debug, Clone)]
pub struct Threads {
    n: usize,
    pool: Option<Arc<rayon::ThreadPool>>,
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
        let pool = (n > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .thread_name(|i| format!("ferroflow-engine-{i}"))
                    .build()
                    .ok()
                    .map(Arc::new)
            })
            .flatten();
        let n = if pool.is_some() { n } else { 1 };
        Self { n, pool }
    }

    /// Number of threads.
    pub fn count(&self) -> usize {
        self.n
    }

    /// Runs `f` on the pool (on the calling thread for one thread): the engine's phases
    /// called inside it then start without a hand-over to the pool each.
    pub(crate) fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        }
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
                let helpers = (self.n - 1).min(cells.len() - 1);
                // In rayon's scope the owner runs any helper job nobody has picked up yet
                // (which then finds no items left) instead of waiting for a busy thread.
                pool.scope(|s| {
                    for _ in 0..helpers {
                        s.spawn(|_| work());
                    }
                    work();
                });
            }
            _ => {
                for (i, it) in items.iter_mut().enumerate() {
                    f(i, it);
                }
            }
        }
    }

    /// Runs `f(i, &mut items[i])` for every item, items spread over the threads (item i on
    /// thread i mod n), and returns when all are done.
    pub(crate) fn for_each<T: Send>(&self, items: &mut [T], f: impl Fn(usize, &mut T) + Sync) {
        match &self.pool {
            Some(pool) if items.len() > 1 => {
                let cells: Vec<Mutex<&mut T>> = items.iter_mut().map(Mutex::new).collect();
                let n = self.n;
                pool.broadcast(|ctx| {
                    let mut i = ctx.index();
                    while i < cells.len() {
                        // Each cell is locked by exactly one thread, once: never contended.
                        let mut item = cells[i].lock().unwrap_or_else(|e| e.into_inner());
                        f(i, &mut item);
                        i += n;
                    }
                });
            }
            _ => {
                for (i, it) in items.iter_mut().enumerate() {
                    f(i, it);
                }
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
