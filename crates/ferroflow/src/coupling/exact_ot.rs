//! Exact minibatch optimal transport: the linear assignment problem.
//!
//! # Formula
//! With equal sizes n and uniform weights 1/n, an optimal plan of the OT problem between the
//! empirical measures of `x0` and `x1` is a permutation (Birkhoff–von Neumann), and
//!
//! σ* = argmin_σ (1/n) Σᵢ c(i, σ(i)),  c(i, j) = ‖x0ᵢ − x1ⱼ‖²
//!
//! (Tong et al. 2023, "Improving and generalizing flow-based generative models with minibatch
//! optimal transport", §3.2, eq. 8; Pooladian et al. 2023). W₂² of the two point clouds is the
//! minimum, so [`transport_cost`] is W₂² and `metrics` takes its square root.
//!
//! # Algorithm
//! Jonker–Volgenant (LAPJV; Jonker & Volgenant 1987, "A shortest augmenting path algorithm for
//! dense and sparse linear assignment problems", Computing 38): column reduction, augmenting row
//! reduction, then Dijkstra shortest augmenting paths on reduced costs c(i, j) − vⱼ with the
//! row duals kept implicit. Exactness comes from the last two phases alone: every assigned row
//! is *tight* (its column attains minⱼ c(i, j) − vⱼ) and each augmentation is a true shortest
//! path, so at the end the duals certify optimality (LP complementary slackness).
//!
//! On geometric costs the shortest paths of plain LAPJV are long (hundreds of rows scanned per
//! augmentation at n = 1024). So the column duals are first brought close to optimal by an
//! ε-scaling auction (Bertsekas 1988, "The auction algorithm: a distributed relaxation method
//! for the assignment problem", Ann. Oper. Res. 14; Gauss–Seidel bids, two free rows at a time
//! where two are free, ε divided by 5 per phase, from 1/10 to 10⁻⁶ of the mean reduced cost), on
//! an f32 copy of the costs since only its prices are kept. The f64 LAPJV phases then start from those prices, with every row free; they,
//! not the auction, decide the result, which is therefore exact for the f64 costs whatever the
//! auction did.
//!
//! From 512 points (1024 on machines with AVX-512, whose dense scan is faster) of at most 8
//! dimensions the columns are first put in k-d tree order, so that
//! each run of 16 columns is compact, and a bid skips every block whose lower bound (the row's
//! smallest cost in the block minus the block's largest price) exceeds an upper bound on the
//! row's second-best value: the same bid as a full scan, reading 8–13 % of the row at n = 1024.
//!
//! Ties (duplicated points) are handled: the row reduction and the path search prefer a free
//! column among equally cheap ones, and the predecessor of a column is recomputed exactly from
//! the scanned rows (no predecessor array in the hot loop).
//!
//! The inner loops (the private `simd` module) run over contiguous rows with no bounds checks,
//! AVX-512 or AVX2 at run time where present, else plain loops vectorised for SSE2. In 2-D the
//! cost matrix, its f32 copy and the column reduction are one pass. Single-threaded. The cost matrix and
//! the solver's buffers live in a per-thread workspace that is reused from call to call (buffers
//! over 32 MiB are released after the call), so repeated minibatches allocate nothing.

use super::CouplingError;
use super::simd::{BLOCK, cost_prelude_2d, find_reduced, relax, top2_blocks_f32, top2_f32, top2_f32_pair, top2_f64};
use crate::data::Points;

const NONE: u32 = u32::MAX;

/// Reusable buffers of the solver: the fields of [`Solver`] and of its phases.
#[derive(Default)]
struct Bufs {
    x: Vec<u32>,
    y: Vec<u32>,
    v: Vec<f64>,
    pen: Vec<f64>,
    d: Vec<f64>,
    vmax: Vec<f64>,
    rows: Vec<(u32, f64)>,
    ready: Vec<(u32, f64, f64)>,
    c32: Vec<f32>,
    v32: Vec<f32>,
    ay: Vec<u32>,
    afree: Vec<u32>,
    stack: Vec<u32>,
    bmin: Vec<f32>,
    bvmin: Vec<f32>,
    bvmax: Vec<f32>,
}

/// A thread's workspace: the cost matrix of [`plan`] and [`transport_cost`], and the buffers.
#[derive(Default)]
struct Workspace {
    cost: Vec<f64>,
    /// The k-d order of x1's rows and x1's values in that order (see [`solve_points`]).
    order: Vec<usize>,
    ordered: Vec<f32>,
    bufs: Bufs,
}

/// Buffers larger than this (bytes) are released after a call instead of kept for the next one.
const KEEP_BYTES: usize = 1 << 25;

thread_local! {
    static WORKSPACE: std::cell::RefCell<Workspace> = std::cell::RefCell::new(Workspace::default());
}

/// Runs `f` with this thread's workspace (with a fresh one if it is already borrowed).
fn with_workspace<R>(f: impl FnOnce(&mut Workspace) -> R) -> R {
    WORKSPACE.with(|w| match w.try_borrow_mut() {
        Ok(mut ws) => {
            let r = f(&mut ws);
            if ws.cost.capacity() * size_of::<f64>() > KEEP_BYTES {
                ws.cost = Vec::new();
            }
            if ws.bufs.c32.capacity() * size_of::<f32>() > KEEP_BYTES {
                ws.bufs.c32 = Vec::new();
            }
            r
        }
        Err(_) => f(&mut Workspace::default()),
    })
}

/// The buffer `v` emptied and refilled with `n` copies of `x`, keeping its allocation.
fn refill<T: Clone>(v: &mut Vec<T>, n: usize, x: T) -> Vec<T> {
    let mut t = std::mem::take(v);
    t.clear();
    t.resize(n, x);
    t
}

/// The squared-Euclidean cost matrix between two point sets, row-major, in f64.
///
/// # Formula
/// c[i·m + j] = Σₖ (x0[i, k] − x1[j, k])², computed in f64 from the f32 inputs (so duplicated
/// points have cost exactly 0).
/// # Shapes
/// `x0: [n, dim]`, `x1: [m, dim]` → `[n, m]`
/// # Errors
/// [`CouplingError::DimMismatch`] if the dimensions differ, [`CouplingError::TooLarge`] beyond
/// [`super::MAX_PLAN_POINTS`] points a side.
///
/// ```
/// use ferroflow::{coupling::exact_ot::cost_matrix, data::Points};
/// let a = Points::new(vec![0.0, 0.0, 1.0, 0.0], 2, 2).unwrap();
/// let b = Points::new(vec![3.0, 4.0], 1, 2).unwrap();
/// assert_eq!(cost_matrix(&a, &b).unwrap(), vec![25.0, 20.0]);
/// ```
pub fn cost_matrix(x0: &Points, x1: &Points) -> Result<Vec<f64>, CouplingError> {
    let mut c = Vec::new();
    cost_matrix_into(x0, x1, &mut c)?;
    Ok(c)
}

/// [`cost_matrix`] written into `c` (resized, its allocation reused).
fn cost_matrix_into(x0: &Points, x1: &Points, c: &mut Vec<f64>) -> Result<(), CouplingError> {
    if x0.dim != x1.dim {
        return Err(CouplingError::DimMismatch { d0: x0.dim, d1: x1.dim });
    }
    let max = super::MAX_PLAN_POINTS;
    if x0.n > max || x1.n > max {
        return Err(CouplingError::TooLarge { n: x0.n, m: x1.n, max });
    }
    let (n, m, dim) = (x0.n, x1.n, x0.dim);
    c.clear();
    c.resize(n * m, 0.0);
    if dim == 2 {
        // One pass, with the operations of the general loop below ((0 + t₀²) + t₁²), so the
        // values are the same bits.
        let b: Vec<f64> = (0..2 * m).map(|k| x1.data[2 * (k % m) + k / m] as f64).collect();
        let (b0, b1) = b.split_at(m);
        for (i, crow) in c.chunks_exact_mut(m.max(1)).enumerate().take(n) {
            let (a0, a1) = (x0.data[2 * i] as f64, x0.data[2 * i + 1] as f64);
            for ((cj, &p), &q) in crow.iter_mut().zip(b0).zip(b1) {
                let (t0, t1) = (a0 - p, a1 - q);
                *cj = (0.0 + t0 * t0) + t1 * t1;
            }
        }
        return Ok(());
    }
    // x1 transposed (dimension-major) so that the inner loop runs over contiguous columns.
    let mut x1t = vec![0.0f64; m * dim];
    for j in 0..m {
        for k in 0..dim {
            x1t[k * m + j] = x1.data[j * dim + k] as f64;
        }
    }
    for (i, crow) in c.chunks_exact_mut(m.max(1)).enumerate().take(n) {
        for k in 0..dim {
            let a = x0.data[i * dim + k] as f64;
            for (cj, &b) in crow.iter_mut().zip(&x1t[k * m..(k + 1) * m]) {
                let t = a - b;
                *cj += t * t;
            }
        }
    }
    Ok(())
}

/// Checks that two point sets can be paired one to one: equal sizes, equal dimensions, finite.
pub(super) fn check_pair(x0: &Points, x1: &Points) -> Result<(), CouplingError> {
    if x0.n != x1.n {
        return Err(CouplingError::SizeMismatch { n0: x0.n, n1: x1.n });
    }
    check_finite_dims(x0, x1)
}

/// Equal dimensions, finite values, and at most [`super::MAX_PLAN_POINTS`] a side.
pub(super) fn check_finite_dims(x0: &Points, x1: &Points) -> Result<(), CouplingError> {
    if x0.dim != x1.dim {
        return Err(CouplingError::DimMismatch { d0: x0.dim, d1: x1.dim });
    }
    let max = super::MAX_PLAN_POINTS;
    if x0.n > max || x1.n > max {
        return Err(CouplingError::TooLarge { n: x0.n, m: x1.n, max });
    }
    for (set, p) in [("x0", x0), ("x1", x1)] {
        if let Some(k) = p.data.iter().position(|v| !v.is_finite()) {
            let dim = p.dim.max(1);
            return Err(CouplingError::NonFinite { set, row: k / dim, value: p.data[k] as f64 });
        }
    }
    Ok(())
}

/// An optimal assignment of an n×n cost matrix: row i → column `σ[i]`, minimising Σᵢ cost[i, σ(i)].
///
/// # Formula
/// σ = argmin over permutations of Σᵢ cost[i·n + σ(i)] (LAPJV with an auction warm start, see the
/// module docs); exact for the given f64 costs, ties broken arbitrarily.
/// # Shapes
/// `cost: [n, n]` row-major → `[n]`
/// # Panics
/// If `cost.len() != n * n` or a cost is not finite; [`try_assignment`] returns an error instead.
///
/// ```
/// use ferroflow::coupling::exact_ot::assignment;
/// // Greedy (row 0 takes its cheapest column 0) would cost 1 + 10 = 11; the optimum is 2 + 3.
/// let cost = [1.0, 2.0, 3.0, 10.0];
/// assert_eq!(assignment(&cost, 2), vec![1, 0]);
/// ```
pub fn assignment(cost: &[f64], n: usize) -> Vec<usize> {
    match try_assignment(cost, n) {
        Ok(s) => s,
        Err(e) => panic!("assignment: {e}"),
    }
}

/// [`assignment`], with errors instead of panics.
///
/// # Errors
/// [`CouplingError::CostShape`] if `cost.len() != n * n`; [`CouplingError::NonFiniteCost`] if a
/// cost is NaN or infinite.
pub fn try_assignment(cost: &[f64], n: usize) -> Result<Vec<usize>, CouplingError> {
    if cost.len() != n.saturating_mul(n) {
        return Err(CouplingError::CostShape { len: cost.len(), n });
    }
    if let Some(k) = cost.iter().position(|c| !c.is_finite()) {
        return Err(CouplingError::NonFiniteCost { row: k / n, col: k % n, value: cost[k] });
    }
    Ok(with_workspace(|ws| Solver::new(cost, n, &mut ws.bufs).solve()))
}

/// The exact OT pairing of two equal-size point sets: x0 row i is paired with x1 row `σ[i]`.
///
/// # Formula
/// σ = argmin_σ Σᵢ ‖x0ᵢ − x1_σ(i)‖² ([`assignment`] of [`cost_matrix`]).
/// # Shapes
/// `x0, x1: [n, dim]` → `[n]`
/// # Errors
/// [`CouplingError::SizeMismatch`], [`CouplingError::DimMismatch`], [`CouplingError::NonFinite`],
/// [`CouplingError::TooLarge`] (more than [`super::MAX_PLAN_POINTS`] points).
///
/// ```
/// use ferroflow::{coupling::exact_ot::plan, data::Points};
/// let x0 = Points::new(vec![0.0, 10.0], 2, 1).unwrap();
/// let x1 = Points::new(vec![11.0, 1.0], 2, 1).unwrap();
/// assert_eq!(plan(&x0, &x1).unwrap(), vec![1, 0]);
/// ```
pub fn plan(x0: &Points, x1: &Points) -> Result<Vec<usize>, CouplingError> {
    check_pair(x0, x1)?;
    with_workspace(|ws| Ok(solve_points(ws, x0, x1)?.0))
}

/// Points of at most this dimension have their columns put in [`spatial_order`] (in more
/// dimensions a block of 16 points is seldom compact enough for its bounds to skip it).
const ORDER_MAX_DIM: usize = 8;

/// From this size on the auction skips blocks of far columns. Below it a dense row scan (a
/// row of f32 costs in a few cache lines, read in order) is as fast: at n = 256 the skipping
/// scan reads 4 of 16 blocks a bid yet took 4–17 % longer; at n = 1024 it reads 8–13 % of the
/// blocks and the plan takes 16–20 % less time (BENCHMARKS.md).
const ORDER_MIN_N: usize = 32 * BLOCK;

/// [`ORDER_MIN_N`] on this machine: twice as large with AVX-512, where the dense scan that
/// takes two bids a pass is 20–40 % faster than the skipping one at n = 512 (and within a
/// few percent of it at n = 1024); with AVX2 alone the skipping scan wins from 512.
fn order_min_n() -> usize {
    if super::simd::wide_lanes() { 2 * ORDER_MIN_N } else { ORDER_MIN_N }
}

/// The exact pairing of `x0` with `x1` (indices into `x1`) and its total cost.
///
/// Where it pays, the solver sees the columns (the points of x1) in [`spatial_order`], so that
/// its auction can skip whole blocks of far columns; the pairing is mapped back to x1's rows.
fn solve_points(ws: &mut Workspace, x0: &Points, x1: &Points) -> Result<(Vec<usize>, f64), CouplingError> {
    let n = x0.n;
    let ordered = x1.dim <= ORDER_MAX_DIM && n >= order_min_n();
    if !ordered {
        let s = solve_matrix(ws, x0, x1, false)?;
        let total = total_cost(&ws.cost, n, &s);
        return Ok((s, total));
    }
    spatial_order(x1, &mut ws.order);
    let mut data = refill(&mut ws.ordered, 0, 0.0);
    for &i in &ws.order {
        data.extend_from_slice(&x1.data[i * x1.dim..(i + 1) * x1.dim]);
    }
    let x1s = Points { data, n, dim: x1.dim };
    let s = solve_matrix(ws, x0, &x1s, true);
    ws.ordered = x1s.data;
    let s = s?;
    let total = total_cost(&ws.cost, n, &s);
    Ok((s.into_iter().map(|j| ws.order[j]).collect(), total))
}

/// The cost matrix of two point sets of equal size and dimension (into `ws.cost`) and its
/// optimal assignment. In 2-D the matrix, its f32 copy and the column reduction are made in
/// one pass ([`cost_prelude_2d`]).
fn solve_matrix(ws: &mut Workspace, x0: &Points, x1: &Points, blocks: bool) -> Result<Vec<usize>, CouplingError> {
    let n = x0.n;
    if x0.dim != 2 || x1.dim != 2 {
        cost_matrix_into(x0, x1, &mut ws.cost)?;
        let mut solver = Solver::new(&ws.cost, n, &mut ws.bufs);
        solver.blocks = blocks;
        return Ok(solver.solve());
    }
    let b: Vec<f64> = (0..2 * n).map(|k| x1.data[2 * (k % n) + k / n] as f64).collect();
    let (b0, b1) = b.split_at(n);
    let bufs = &mut ws.bufs;
    // Every entry is written below: resize (and zero) only when the size changes.
    for (buf, len) in [(&mut ws.cost, n * n), (&mut bufs.v, n)] {
        if buf.len() != len {
            buf.clear();
            buf.resize(len, 0.0);
        }
    }
    if bufs.c32.len() != n * n {
        bufs.c32.clear();
        bufs.c32.resize(n * n, 0.0);
    }
    let cmax = cost_prelude_2d(&x0.data, b0, b1, &mut ws.cost, &mut bufs.c32, &mut bufs.v);
    let mut solver = Solver::new(&ws.cost, n, bufs).reduced(cmax);
    solver.blocks = blocks;
    Ok(solver.solve())
}

/// An order of the points in which each run of `BLOCK` consecutive points is compact: a k-d
/// tree whose leaves hold `BLOCK` points, each set split along its widest coordinate at a
/// multiple of `BLOCK` near its median, leaves listed left to right.
fn spatial_order(p: &Points, order: &mut Vec<usize>) {
    fn split(p: &Points, idx: &mut [usize]) {
        if idx.len() <= BLOCK {
            return;
        }
        let dim = p.dim;
        let mut widest = (0, f32::NEG_INFINITY);
        for k in 0..dim {
            let (lo, hi) = idx.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &i| {
                let x = p.data[i * dim + k];
                (lo.min(x), hi.max(x))
            });
            if hi - lo > widest.1 {
                widest = (k, hi - lo);
            }
        }
        let k = widest.0;
        let mid = (idx.len() / BLOCK / 2).max(1) * BLOCK;
        idx.select_nth_unstable_by(mid, |&a, &b| p.data[a * dim + k].total_cmp(&p.data[b * dim + k]));
        let (left, right) = idx.split_at_mut(mid);
        split(p, left);
        split(p, right);
    }
    order.clear();
    order.extend(0..p.n);
    split(p, order);
}

/// The optimal transport cost between two equal-size point clouds with uniform weights: W₂².
///
/// # Formula
/// min over permutations σ of (1/n) Σᵢ ‖aᵢ − b_σ(i)‖²  (0 for n = 0)
/// # Shapes
/// `a, b: [n, dim]` → scalar
/// # Errors
/// [`CouplingError::SizeMismatch`] if the sizes differ, [`CouplingError::DimMismatch`],
/// [`CouplingError::NonFinite`], [`CouplingError::TooLarge`] (more than
/// [`super::MAX_PLAN_POINTS`] points).
///
/// ```
/// use ferroflow::{coupling::exact_ot::transport_cost, data::Points};
/// let a = Points::new(vec![0.0, 1.0], 2, 1).unwrap();
/// let b = Points::new(vec![3.0, 1.0], 2, 1).unwrap(); // 0→1 and 1→3: (1 + 4)/2
/// assert_eq!(transport_cost(&a, &b).unwrap(), 2.5);
/// ```
pub fn transport_cost(a: &Points, b: &Points) -> Result<f64, CouplingError> {
    check_pair(a, b)?;
    if a.n == 0 {
        return Ok(0.0);
    }
    with_workspace(|ws| Ok(solve_points(ws, a, b)?.1 / a.n as f64))
}

/// Σᵢ cost[i, σ(i)].
pub(crate) fn total_cost(cost: &[f64], n: usize, sigma: &[usize]) -> f64 {
    sigma.iter().enumerate().map(|(i, &j)| cost[i * n + j]).sum()
}

/// Exact OT within each class of x1 (for class-conditional training).
///
/// x0 is unlabelled i.i.d. noise, so its rows are split, in row order, into consecutive groups
/// of the class sizes of x1 (classes in increasing label order), and each group is solved
/// exactly against that class. Returns `(i0, i1)`: x0 row `i0[k]` is paired with x1 row
/// `i1[k]`, and `labels1[i1[k]]` is the class of pair k.
///
/// # Shapes
/// `x0, x1: [n, dim]`, `labels1: [n]` → `([n], [n])`
/// # Errors
/// [`CouplingError::LabelCount`] if `labels1.len() != x1.n`, and those of [`plan`].
pub fn class_plan(x0: &Points, x1: &Points, labels1: &[u32]) -> Result<(Vec<usize>, Vec<usize>), CouplingError> {
    check_pair(x0, x1)?;
    if labels1.len() != x1.n {
        return Err(CouplingError::LabelCount { labels: labels1.len(), n: x1.n });
    }
    let mut classes: Vec<u32> = labels1.to_vec();
    classes.sort_unstable();
    classes.dedup();
    let (mut i0, mut i1) = (Vec::with_capacity(x0.n), Vec::with_capacity(x0.n));
    let mut next0 = 0;
    for &k in &classes {
        let rows1: Vec<usize> = (0..x1.n).filter(|&j| labels1[j] == k).collect();
        let rows0: Vec<usize> = (next0..next0 + rows1.len()).collect();
        next0 += rows1.len();
        let sigma = plan(&x0.select(&rows0), &x1.select(&rows1))?;
        for (a, s) in rows0.iter().zip(sigma) {
            i0.push(*a);
            i1.push(rows1[s]);
        }
    }
    Ok((i0, i1))
}

/// The auction's assignment step: row `r` takes column `j` (`y`: column → row); the row that
/// held `j`, if any, is pushed back on the free rows. (With a branch: the predictor then lets
/// the next bid start before this one's load of `y[j]` is done; a branch-free push made the
/// plan 17 % slower.)
#[inline]
fn take_column(y: &mut [u32], free: &mut Vec<u32>, r: usize, j: usize) {
    let i0 = y[j];
    y[j] = r as u32;
    if i0 != NONE {
        free.push(i0);
    }
}

/// The solver's state: row → column `x`, column → row `y`, column duals `v`, and `pen`
/// (0 on free columns, +∞ on assigned ones); plus the path search's buffers, all taken from the
/// workspace `ws` and given back at the end.
struct Solver<'a> {
    c: &'a [f64],
    n: usize,
    ws: &'a mut Bufs,
    x: Vec<u32>,
    y: Vec<u32>,
    v: Vec<f64>,
    pen: Vec<f64>,
    d: Vec<f64>,
    rows: Vec<(u32, f64)>,
    ready: Vec<(u32, f64, f64)>,
    /// Whether runs of `BLOCK` consecutive columns are close to each other (the columns come
    /// in [`spatial_order`]), so that the auction's block bounds pay.
    blocks: bool,
    /// The largest cost, when the caller has already put the column minima in `v` and the f32
    /// costs in the workspace's `c32` ([`Self::reduced`]).
    prelude: Option<f64>,
}

impl<'a> Solver<'a> {
    fn new(c: &'a [f64], n: usize, ws: &'a mut Bufs) -> Self {
        debug_assert_eq!(c.len(), n * n);
        let (x, y) = (refill(&mut ws.x, n, NONE), refill(&mut ws.y, n, NONE));
        let (v, pen, d) = (std::mem::take(&mut ws.v), refill(&mut ws.pen, n, 0.0), refill(&mut ws.d, n, 0.0));
        let (rows, ready) = (refill(&mut ws.rows, 0, (0, 0.0)), refill(&mut ws.ready, 0, (0, 0.0, 0.0)));
        Self { c, n, ws, x, y, v, pen, d, rows, ready, blocks: false, prelude: None }
    }

    /// The solver for a caller that has put the column minima of `c` in the workspace's `v`
    /// and `c` rounded to f32 in its `c32`; `cmax` is the largest cost.
    fn reduced(mut self, cmax: f64) -> Self {
        debug_assert!(self.v.len() == self.n && self.ws.c32.len() == self.n * self.n);
        self.prelude = Some(cmax);
        self
    }

    #[inline(always)]
    fn row(&self, i: usize) -> &'a [f64] {
        &self.c[i * self.n..(i + 1) * self.n]
    }

    fn solve(mut self) -> Vec<usize> {
        let n = self.n;
        if n <= 1 {
            return (0..n).collect();
        }
        // Column reduction: vⱼ = minᵢ c(i, j); also the largest cost, for the f32 range check.
        let cabs = match self.prelude {
            Some(cmax) => cmax,
            None => {
                self.v.clear();
                self.v.extend_from_slice(self.row(0));
                let mut vmax = refill(&mut self.ws.vmax, 0, 0.0);
                vmax.extend_from_slice(self.row(0));
                for i in 1..n {
                    let r = self.row(i);
                    for ((vj, mj), &cj) in self.v.iter_mut().zip(vmax.iter_mut()).zip(r) {
                        *vj = if cj < *vj { cj } else { *vj };
                        *mj = if cj > *mj { cj } else { *mj };
                    }
                }
                let cmax = vmax.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
                let cmin = self.v.iter().fold(0.0f64, |a, &b| a.max(b.abs()));
                self.ws.vmax = vmax;
                cmax.max(cmin)
            }
        };
        self.auction(cabs);
        let free = self.row_reduction();
        for (p, &yj) in self.pen.iter_mut().zip(&self.y) {
            *p = if yj == NONE { 0.0 } else { f64::INFINITY };
        }
        for f in free {
            self.augment(f as usize);
        }
        let sigma = self.x.iter().map(|&j| j as usize).collect();
        let ws = self.ws;
        (ws.x, ws.y, ws.v, ws.pen, ws.d) = (self.x, self.y, self.v, self.pen, self.d);
        (ws.rows, ws.ready) = (self.rows, self.ready);
        sigma
    }

    /// ε-scaling auction on f32 costs: only its prices `v` are kept (a warm start).
    fn auction(&mut self, cabs: f64) {
        let n = self.n;
        // Scale: the mean reduced cost c(i, j) − vⱼ over 16 sampled rows.
        let step = (n / 16).max(1);
        let (mut sum, mut cnt) = (0.0, 0usize);
        for i in (0..n).step_by(step) {
            sum += self.row(i).iter().zip(&self.v).map(|(&a, &b)| a - b).sum::<f64>();
            cnt += n;
        }
        let scale = sum / cnt as f64;
        // f32 must hold the costs (and their differences) with room to spare.
        let usable = scale > 0.0 && cabs < 1e30;
        if !usable {
            return;
        }
        // Near an f32 ulp of the costs a bid would hardly move a price.
        let eps_min = (1e-6 * scale).max(8.0 * f32::EPSILON as f64 * cabs);
        let mut eps = 0.1 * scale;
        if eps <= eps_min {
            return;
        }
        let mut c32 = std::mem::take(&mut self.ws.c32);
        if self.prelude.is_none() {
            c32.clear();
            c32.extend(self.c.iter().map(|&a| a as f32));
        }
        let mut v = refill(&mut self.ws.v32, 0, 0.0);
        v.extend(self.v.iter().map(|&a| a as f32));
        // Block bounds (see `top2_blocks_f32`): each row's smallest cost per block of columns,
        // and each block's price range, kept valid as prices fall.
        let kb = if self.blocks { n / BLOCK } else { 0 };
        let mut bmin = refill(&mut self.ws.bmin, 0, 0.0);
        if kb >= 2 {
            for row in c32.chunks_exact(n) {
                bmin.extend(
                    row[..kb * BLOCK].chunks_exact(BLOCK).map(|b| b.iter().fold(f32::INFINITY, |a, &x| a.min(x))),
                );
            }
        }
        let (mut bvmin, mut bvmax) = (refill(&mut self.ws.bvmin, kb, 0.0), refill(&mut self.ws.bvmax, kb, 0.0));
        let block_max =
            |v: &[f32], k: usize| v[k * BLOCK..(k + 1) * BLOCK].iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
        let mut y = refill(&mut self.ws.ay, n, NONE);
        let mut free = refill(&mut self.ws.afree, 0, 0);
        // A cap on the total number of bids, so that no input can make this phase slow.
        let mut budget = 64 * n;
        while eps > eps_min && budget > 0 {
            y.fill(NONE);
            free.clear();
            free.extend((0..n as u32).rev());
            for k in 0..kb {
                bvmin[k] = v[k * BLOCK..(k + 1) * BLOCK].iter().fold(f32::INFINITY, |a, &x| a.min(x));
                bvmax[k] = block_max(&v, k);
            }
            let e = eps as f32;
            while let Some(i) = free.pop() {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                let i = i as usize;
                let row = &c32[i * n..(i + 1) * n];
                if kb < 2
                    && budget > 0
                    && let Some(k) = free.pop()
                {
                    // Two bids at once, both against the current prices (one pass over the
                    // prices, and the two merges overlap): 11–27 % less time a plan. The
                    // second bid stands unless the first took its best column (then its row
                    // goes back to the free ones). If the first took its second best, its u2
                    // is now too small, which only makes its bid smaller: the bidder is still
                    // ε-happy.
                    let k = k as usize;
                    budget -= 1;
                    let (bi, bk) = top2_f32_pair(row, &c32[k * n..(k + 1) * n], &v);
                    for (r, (u1, j1, u2)) in [(i, bi), (k, bk)] {
                        if r == k && j1 == bi.1 {
                            free.push(k as u32);
                            budget += 1;
                            continue;
                        }
                        v[j1] -= (u2 - u1) + e;
                        take_column(&mut y, &mut free, r, j1);
                    }
                    continue;
                }
                let (u1, j1, u2) = if kb >= 2 {
                    top2_blocks_f32(row, &v, &bmin[i * kb..(i + 1) * kb], &bvmin, &bvmax)
                } else {
                    top2_f32(row, &v)
                };
                // Bid: column j1 becomes ε worse for i than its second best.
                let old = v[j1];
                v[j1] -= (u2 - u1) + e;
                let k = j1 / BLOCK;
                if k < kb {
                    bvmin[k] = bvmin[k].min(v[j1]);
                    if old == bvmax[k] {
                        bvmax[k] = block_max(&v, k);
                    }
                }
                take_column(&mut y, &mut free, i, j1);
            }
            eps /= 5.0;
        }
        for (a, &b) in self.v.iter_mut().zip(&v) {
            *a = b as f64;
        }
        (self.ws.c32, self.ws.v32, self.ws.ay, self.ws.afree) = (c32, v, y, free);
        (self.ws.bmin, self.ws.bvmin, self.ws.bvmax) = (bmin, bvmin, bvmax);
    }

    /// Augmenting row reduction (JV's ε = 0 auction) from all rows free, with a budget of
    /// 1.5 n bids. Every row it leaves assigned is tight. Returns the rows still free.
    fn row_reduction(&mut self) -> Vec<u32> {
        let n = self.n;
        self.x.fill(NONE);
        self.y.fill(NONE);
        let mut stack = refill(&mut self.ws.stack, 0, 0);
        stack.extend((0..n as u32).rev());
        let mut left = Vec::new();
        let mut budget = n + n / 2;
        while let Some(i) = stack.pop() {
            if budget == 0 {
                left.push(i);
                left.append(&mut stack);
                break;
            }
            budget -= 1;
            let i = i as usize;
            let r = self.row(i);
            let (u1, mut j1, u2) = top2_f64(r, &self.v);
            let mut i0 = self.y[j1];
            if u1 < u2 {
                // i takes j1 at a price that ties it with i's second best: still tight.
                self.v[j1] -= u2 - u1;
            } else if i0 != NONE {
                // A tie: take a free column among the minima, else another tied one.
                let mut alt = None;
                let mut from = 0;
                while let Some(j) = find_reduced(r, &self.v, from, u1) {
                    from = j + 1;
                    if j == j1 {
                        continue;
                    }
                    if alt.is_none() {
                        alt = Some(j);
                    }
                    if self.y[j] == NONE {
                        alt = Some(j);
                        break;
                    }
                }
                if let Some(j) = alt {
                    j1 = j;
                    i0 = self.y[j];
                }
            }
            self.x[i] = j1 as u32;
            self.y[j1] = i as u32;
            if i0 != NONE {
                self.x[i0 as usize] = NONE;
                if u1 < u2 {
                    stack.push(i0);
                } else {
                    left.push(i0);
                }
            }
        }
        self.ws.stack = stack;
        left
    }

    /// One shortest augmenting path (Dijkstra on reduced costs) from free row `f`, then the
    /// dual update and the augmentation.
    fn augment(&mut self, f: usize) {
        let n = self.n;
        let mut d = std::mem::take(&mut self.d);
        let mut rows = std::mem::take(&mut self.rows);
        let mut ready = std::mem::take(&mut self.ready);
        d.fill(f64::INFINITY);
        // Scanned rows with their offsets, and finalised columns (column, distance, saved vⱼ).
        rows.clear();
        ready.clear();
        rows.push((f as u32, 0.0));
        let (mut dmin, mut jmin, mut fmin) = relax(self.row(f), &self.v, &self.pen, &mut d, 0.0);
        let end = loop {
            if fmin <= dmin {
                // A free column is at the minimum distance: the path ends there.
                match (0..n).find(|&j| d[j] == dmin && self.y[j] == NONE) {
                    Some(j) => break j,
                    None => unreachable!("fmin is attained by a free column"),
                }
            }
            // jmin is assigned: finalise it (v = −∞ makes its reduced cost +∞ from now on).
            let j = jmin;
            let vj = self.v[j];
            ready.push((j as u32, dmin, vj));
            self.v[j] = f64::NEG_INFINITY;
            d[j] = f64::INFINITY;
            let i = self.y[j] as usize;
            let ri = self.row(i);
            // Distances through row i: dmin + (c(i, ·) − v) − (c(i, j) − vⱼ); row i is tight at j.
            let off = dmin - (ri[j] - vj);
            rows.push((i as u32, off));
            (dmin, jmin, fmin) = relax(ri, &self.v, &self.pen, &mut d, off);
        };
        // Dual update: finalised columns move by their distance below the path length.
        for &(k, dk, vk) in &ready {
            self.v[k as usize] = vk + dk - dmin;
        }
        // Augment along the path, recomputing each predecessor from the scanned rows: the first
        // row (in scan order, before the column was finalised) that attains its distance.
        self.pen[end] = f64::INFINITY;
        let (mut j, mut dj, mut vj, mut limit) = (end, dmin, self.v[end], rows.len());
        loop {
            let mut s = 0;
            let mut best = f64::INFINITY;
            for (t, &(ri, off)) in rows[..limit].iter().enumerate() {
                let h = self.c[ri as usize * n + j] - vj + off;
                if h == dj {
                    s = t;
                    break;
                }
                if h < best {
                    best = h;
                    s = t;
                }
            }
            let i = rows[s].0 as usize;
            self.y[j] = i as u32;
            let prev = self.x[i];
            self.x[i] = j as u32;
            if s == 0 {
                break;
            }
            // Row i was scanned because it held column `prev`, finalised as ready[s − 1].
            debug_assert_eq!(ready[s - 1].0, prev);
            j = prev as usize;
            dj = ready[s - 1].1;
            vj = ready[s - 1].2;
            limit = s;
        }
        self.d = d;
        self.rows = rows;
        self.ready = ready;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{normal_vec, seeded};
    use rand::Rng as _;

    /// Minimum of Σᵢ c(i, σ(i)) over all permutations (Heap's algorithm), n ≤ 8.
    fn brute_force(c: &[f64], n: usize) -> f64 {
        let mut p: Vec<usize> = (0..n).collect();
        let mut best = total_cost(c, n, &p);
        let mut ctr = vec![0usize; n];
        let mut i = 0;
        while i < n {
            if ctr[i] < i {
                if i % 2 == 0 {
                    p.swap(0, i)
                } else {
                    p.swap(ctr[i], i)
                }
                best = best.min(total_cost(c, n, &p));
                ctr[i] += 1;
                i = 0;
            } else {
                ctr[i] = 0;
                i += 1;
            }
        }
        best
    }

    fn is_permutation(s: &[usize]) -> bool {
        let mut seen = vec![false; s.len()];
        s.iter().all(|&j| j < s.len() && !std::mem::replace(&mut seen[j], true))
    }

    #[test]
    fn assignment_matches_brute_force_on_small_random_matrices() {
        let mut rng = seeded(1);
        for trial in 0..400 {
            let n = 1 + trial % 8;
            // Integer costs in 0..4 make ties frequent.
            let c: Vec<f64> = (0..n * n)
                .map(|_| if trial % 2 == 0 { rng.random_range(0..4) as f64 } else { rng.random::<f64>() })
                .collect();
            let s = assignment(&c, n);
            assert!(is_permutation(&s));
            let (got, want) = (total_cost(&c, n, &s), brute_force(&c, n));
            // Same sums of the same f64 values up to order: 1e-12 covers the rounding.
            assert!((got - want).abs() <= 1e-12 * want.abs().max(1.0), "trial {trial}: {got} vs {want}");
        }
    }

    #[test]
    fn plan_is_optimal_on_duplicated_points_and_any_dimension() {
        let mut rng = seeded(2);
        for trial in 0..300 {
            let n = 2 + trial % 7;
            let dim = [1, 2, 3][trial % 3];
            let k = 1 + trial % 3; // number of distinct points
            let base0 = normal_vec(&mut rng, k * dim);
            let base1 = normal_vec(&mut rng, k * dim);
            let pick = |b: &[f32], rng: &mut crate::rng::Rng| -> Vec<f32> {
                (0..n)
                    .flat_map(|_| {
                        let r = rng.random_range(0..k);
                        b[r * dim..(r + 1) * dim].to_vec()
                    })
                    .collect()
            };
            let x0 = Points::new(pick(&base0, &mut rng), n, dim).unwrap();
            let x1 = Points::new(pick(&base1, &mut rng), n, dim).unwrap();
            let c = cost_matrix(&x0, &x1).unwrap();
            let s = plan(&x0, &x1).unwrap();
            assert!(is_permutation(&s));
            let (got, want) = (total_cost(&c, n, &s), brute_force(&c, n));
            assert!((got - want).abs() <= 1e-12 * want.max(1.0), "trial {trial}: {got} vs {want}");
        }
    }

    /// Reference O(n³) Hungarian algorithm (shortest augmenting paths with explicit potentials).
    fn hungarian(c: &[f64], n: usize) -> f64 {
        let inf = f64::INFINITY;
        let (mut u, mut v) = (vec![0.0; n + 1], vec![0.0; n + 1]);
        let (mut p, mut way) = (vec![0usize; n + 1], vec![0usize; n + 1]);
        for i in 1..=n {
            p[0] = i;
            let mut j0 = 0;
            let (mut minv, mut used) = (vec![inf; n + 1], vec![false; n + 1]);
            loop {
                used[j0] = true;
                let (i0, mut delta, mut j1) = (p[j0], inf, 0);
                for j in 1..=n {
                    if !used[j] {
                        let cur = c[(i0 - 1) * n + j - 1] - u[i0] - v[j];
                        if cur < minv[j] {
                            minv[j] = cur;
                            way[j] = j0;
                        }
                        if minv[j] < delta {
                            delta = minv[j];
                            j1 = j;
                        }
                    }
                }
                for j in 0..=n {
                    if used[j] {
                        u[p[j]] += delta;
                        v[j] -= delta;
                    } else {
                        minv[j] -= delta;
                    }
                }
                j0 = j1;
                if p[j0] == 0 {
                    break;
                }
            }
            loop {
                let j1 = way[j0];
                p[j0] = p[j1];
                j0 = j1;
                if j0 == 0 {
                    break;
                }
            }
        }
        (1..=n).map(|j| c[(p[j] - 1) * n + j - 1]).sum()
    }

    #[test]
    fn plan_matches_the_hungarian_reference_on_clustered_and_duplicated_clouds() {
        let mut rng = seeded(3);
        for (trial, n) in [40usize, 97, 160].into_iter().enumerate() {
            // Two tight clusters of unequal sizes: mass has to cross between them.
            let cloud = |rng: &mut crate::rng::Rng| -> Vec<f32> {
                (0..n)
                    .flat_map(|_| {
                        let far = rng.random::<f64>() < 0.4;
                        let z = normal_vec(rng, 2);
                        [z[0] * 0.05 + if far { 4.0 } else { 0.0 }, z[1] * 0.05]
                    })
                    .collect()
            };
            let x0 = Points::new(cloud(&mut rng), n, 2).unwrap();
            let mut d1 = cloud(&mut rng);
            // Duplicate every other point of x1.
            for i in (1..n).step_by(2) {
                let (a, b) = (d1[2 * (i - 1)], d1[2 * (i - 1) + 1]);
                d1[2 * i] = a;
                d1[2 * i + 1] = b;
            }
            let x1 = Points::new(d1, n, 2).unwrap();
            let c = cost_matrix(&x0, &x1).unwrap();
            let s = plan(&x0, &x1).unwrap();
            assert!(is_permutation(&s));
            let (got, want) = (total_cost(&c, n, &s), hungarian(&c, n));
            // Two exact solvers: equal up to f64 rounding of sums of ~n terms.
            assert!((got - want).abs() <= 1e-10 * want, "trial {trial}: {got} vs {want}");
        }
    }

    #[test]
    fn plan_with_block_bounds_matches_the_hungarian_reference() {
        // From order_min_n() points the columns are reordered and the auction skips blocks:
        // clustered and duplicated clouds (mass crosses between clusters, ties), a size that
        // is not a multiple of the block (tail columns), and three dimensions.
        let mut rng = seeded(6);
        let min_n = order_min_n();
        for (trial, (n, dim)) in [(min_n + 88, 2usize), (min_n, 3)].into_iter().enumerate() {
            let cloud = |rng: &mut crate::rng::Rng| -> Vec<f32> {
                (0..n)
                    .flat_map(|_| {
                        let far = rng.random::<f64>() < 0.3;
                        let z = normal_vec(rng, dim);
                        z.into_iter().enumerate().map(move |(k, x)| x * 0.3 + if far && k == 0 { 3.0 } else { 0.0 })
                    })
                    .collect()
            };
            let x0 = Points::new(cloud(&mut rng), n, dim).unwrap();
            let mut d1 = cloud(&mut rng);
            for i in (2..n).step_by(3) {
                let src: Vec<f32> = d1[(i - 2) * dim..(i - 1) * dim].to_vec();
                d1[i * dim..(i + 1) * dim].copy_from_slice(&src);
            }
            let x1 = Points::new(d1, n, dim).unwrap();
            let c = cost_matrix(&x0, &x1).unwrap();
            let s = plan(&x0, &x1).unwrap();
            assert!(is_permutation(&s));
            let (got, want) = (total_cost(&c, n, &s), hungarian(&c, n));
            assert!((got - want).abs() <= 1e-10 * want, "trial {trial}: {got} vs {want}");
            let t = transport_cost(&x0, &x1).unwrap();
            assert!((t * n as f64 - want).abs() <= 1e-10 * want, "trial {trial}: {t}");
        }
    }

    #[test]
    fn spatial_order_is_a_permutation_with_compact_blocks() {
        let mut rng = seeded(7);
        let n = 1000;
        let p = Points::new((0..2 * n).map(|_| rng.random::<f32>()).collect(), n, 2).unwrap();
        let mut order = Vec::new();
        spatial_order(&p, &mut order);
        assert!(is_permutation(&order));
        // A full block of a k-d split of 1,000 uniform points spans about 1/8 × 1/8 of the
        // square (area 1/64 ≈ 16/1000); blocks of consecutive input rows span the whole square.
        let area = |rows: &[usize]| {
            let (mut lo, mut hi) = ([f32::INFINITY; 2], [f32::NEG_INFINITY; 2]);
            for &i in rows {
                for k in 0..2 {
                    lo[k] = lo[k].min(p.data[2 * i + k]);
                    hi[k] = hi[k].max(p.data[2 * i + k]);
                }
            }
            (hi[0] - lo[0]) * (hi[1] - lo[1])
        };
        let mean = |o: &[usize]| o.chunks_exact(BLOCK).map(area).sum::<f32>() / (n / BLOCK) as f32;
        let identity: Vec<usize> = (0..n).collect();
        assert!(mean(&order) < 0.05, "{}", mean(&order));
        assert!(mean(&identity) > 0.5, "{}", mean(&identity));
    }

    #[test]
    fn two_dimensional_prelude_gives_the_cost_matrix_its_f32_copy_and_column_minima() {
        let mut rng = seeded(5);
        for n in [1usize, 3, 4, 7, 16, 37] {
            let x0 = Points::new(normal_vec(&mut rng, 2 * n), n, 2).unwrap();
            let x1 = Points::new(normal_vec(&mut rng, 2 * n), n, 2).unwrap();
            let want = cost_matrix(&x0, &x1).unwrap();
            let b: Vec<f64> = (0..2 * n).map(|k| x1.data[2 * (k % n) + k / n] as f64).collect();
            let (mut c, mut c32, mut vmin) = (vec![7.0; n * n], vec![7.0f32; n * n], vec![-1.0; n]);
            let cmax = cost_prelude_2d(&x0.data, &b[..n], &b[n..], &mut c, &mut c32, &mut vmin);
            assert_eq!(
                c.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
            assert_eq!(c32, want.iter().map(|&x| x as f32).collect::<Vec<_>>());
            for j in 0..n {
                assert_eq!(vmin[j], (0..n).map(|i| want[i * n + j]).fold(f64::INFINITY, f64::min), "column {j}");
            }
            assert_eq!(cmax, want.iter().copied().fold(0.0, f64::max));
        }
    }

    #[test]
    fn two_dimensional_cost_path_gives_the_general_formula_bit_for_bit() {
        let mut rng = seeded(4);
        let (n, m) = (13, 29);
        let x0 = Points::new(normal_vec(&mut rng, 2 * n), n, 2).unwrap();
        let x1 = Points::new(normal_vec(&mut rng, 2 * m), m, 2).unwrap();
        let c = cost_matrix(&x0, &x1).unwrap();
        for i in 0..n {
            for j in 0..m {
                let mut want = 0.0f64;
                for k in 0..2 {
                    let t = x0.data[2 * i + k] as f64 - x1.data[2 * j + k] as f64;
                    want += t * t;
                }
                assert_eq!(c[i * m + j].to_bits(), want.to_bits(), "({i}, {j})");
            }
        }
    }

    #[test]
    fn repeated_calls_of_changing_sizes_stay_optimal() {
        // The workspace is reused across calls: stale buffers of another size must not leak in.
        let mut rng = seeded(5);
        for (trial, n) in [40usize, 7, 97, 1, 7, 40, 0, 64].into_iter().enumerate() {
            let dim = 1 + trial % 3;
            let x0 = Points::new(normal_vec(&mut rng, n * dim), n, dim).unwrap();
            let x1 = Points::new(normal_vec(&mut rng, n * dim), n, dim).unwrap();
            let c = cost_matrix(&x0, &x1).unwrap();
            let s = plan(&x0, &x1).unwrap();
            assert!(is_permutation(&s));
            let want = hungarian(&c, n);
            // Two exact solvers: equal up to f64 rounding of sums of ~n terms.
            assert!((total_cost(&c, n, &s) - want).abs() <= 1e-10 * want.max(1.0), "trial {trial}");
            let t = transport_cost(&x0, &x1).unwrap();
            assert!((t * n as f64 - want).abs() <= 1e-10 * want.max(1.0), "trial {trial}: {t}");
            let s2 = assignment(&c, n);
            assert!((total_cost(&c, n, &s2) - want).abs() <= 1e-10 * want.max(1.0), "trial {trial}");
        }
    }
}
