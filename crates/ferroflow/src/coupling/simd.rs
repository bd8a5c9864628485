//! The inner loops of the assignment solver ([`super::exact_ot`]), with run-time dispatch.
//!
//! Each kernel has a portable version (plain loops over contiguous rows, which the compiler
//! vectorises for the baseline SSE2) and, on x86-64, an AVX2 version chosen at run time with
//! `is_x86_feature_detected!` (the crate is not built with `-C target-cpu`); the auction's
//! dense f32 top-2, its hottest loop, also has an AVX-512F version. All versions
//! return bit-identical results: they perform the same IEEE operations (`a − b + c`, `min`,
//! comparisons) on the same values, only several at a time, so the solver's exactness does not
//! depend on the machine. (The f32 top-2 kernels of the auction compare the reduced costs,
//! which are never negative, by their bit patterns as integers: the same order, the same
//! results; see [`top2_f32`].)
//!
//! `min` follows x86's `minpd`: `min(a, b) = if a < b { a } else { b }`.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[inline(always)]
fn min64(a: f64, b: f64) -> f64 {
    if a < b { a } else { b }
}

/// Whether the CPU has `$feature` (always false off x86-64).
macro_rules! detected {
    ($feature:tt) => {{
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!($feature)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }};
}

#[inline(always)]
fn have_avx2() -> bool {
    detected!("avx2")
}

#[inline(always)]
fn have_avx512() -> bool {
    detected!("avx512f")
}

/// Whether the f32 top-2 kernels run on 32 lanes (AVX-512F).
pub(super) fn wide_lanes() -> bool {
    have_avx512()
}

/// Dijkstra relaxation of one row: `d[j] ← min(row[j] − v[j] + off, d[j])` for all `j`.
///
/// Returns `(dmin, jmin, fmin)`: the minimum of the updated `d`, an index attaining it, and the
/// minimum of `d[j] + pen[j]` (with `pen[j] = 0` on free columns and `+∞` on assigned ones: the
/// nearest free column). Columns that must not be relaxed carry `v[j] = −∞` and `d[j] = +∞`
/// (then `row[j] − v[j]` is `+∞` and `d[j]` stays `+∞`), so the loop needs no mask and no branch.
///
/// The index is chosen as the AVX2 version does (8 lanes, `j mod 8`, merged in lane order), so
/// both versions pick the same column on ties.
pub(super) fn relax(row: &[f64], v: &[f64], pen: &[f64], d: &mut [f64], off: f64) -> (f64, usize, f64) {
    #[cfg(target_arch = "x86_64")]
    if have_avx2() {
        // SAFETY: AVX2 is present (checked just above).
        return unsafe { relax_avx2(row, v, pen, d, off) };
    }
    relax_portable(row, v, pen, d, off)
}

/// Merges per-lane minima and their indices, in lane order, then relaxes the tail.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn relax_finish(
    m: [f64; 8],
    mi: [usize; 8],
    fm: [f64; 8],
    row: &[f64],
    v: &[f64],
    pen: &[f64],
    d: &mut [f64],
    off: f64,
    body: usize,
) -> (f64, usize, f64) {
    let (mut dmin, mut jmin, mut fmin) = (f64::INFINITY, 0usize, f64::INFINITY);
    for k in 0..8 {
        if m[k] < dmin {
            dmin = m[k];
            jmin = mi[k];
        }
        fmin = min64(fm[k], fmin);
    }
    for j in body..row.len() {
        let x = min64(row[j] - v[j] + off, d[j]);
        d[j] = x;
        if x < dmin {
            dmin = x;
            jmin = j;
        }
        fmin = min64(x + pen[j], fmin);
    }
    (dmin, jmin, fmin)
}

fn relax_portable(row: &[f64], v: &[f64], pen: &[f64], d: &mut [f64], off: f64) -> (f64, usize, f64) {
    let n = row.len();
    let (v, pen, d) = (&v[..n], &pen[..n], &mut d[..n]);
    let (mut m, mut mi, mut fm) = ([f64::INFINITY; 8], [0usize; 8], [f64::INFINITY; 8]);
    let body = n - n % 8;
    for j in (0..body).step_by(8) {
        for k in 0..8 {
            let x = min64(row[j + k] - v[j + k] + off, d[j + k]);
            d[j + k] = x;
            if x < m[k] {
                m[k] = x;
                mi[k] = j + k;
            }
            fm[k] = min64(x + pen[j + k], fm[k]);
        }
    }
    relax_finish(m, mi, fm, row, v, pen, d, off, body)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn relax_avx2(row: &[f64], v: &[f64], pen: &[f64], d: &mut [f64], off: f64) -> (f64, usize, f64) {
    let n = row.len();
    let (v, pen, d) = (&v[..n], &pen[..n], &mut d[..n]);
    let body = n - n % 8;
    let (r, vp, pp, dp) = (row.as_ptr(), v.as_ptr(), pen.as_ptr(), d.as_mut_ptr());
    let o = _mm256_set1_pd(off);
    let inf = _mm256_set1_pd(f64::INFINITY);
    let (mut m0, mut m1, mut f0, mut f1) = (inf, inf, inf, inf);
    let (mut i0, mut i1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    let mut ja = _mm256_set_pd(3.0, 2.0, 1.0, 0.0);
    let mut jb = _mm256_set_pd(7.0, 6.0, 5.0, 4.0);
    let step = _mm256_set1_pd(8.0);
    let mut j = 0;
    // SAFETY: every access is at an index < body <= n, and all four slices have length >= n.
    unsafe {
        while j < body {
            let h0 = _mm256_add_pd(_mm256_sub_pd(_mm256_loadu_pd(r.add(j)), _mm256_loadu_pd(vp.add(j))), o);
            let h1 = _mm256_add_pd(_mm256_sub_pd(_mm256_loadu_pd(r.add(j + 4)), _mm256_loadu_pd(vp.add(j + 4))), o);
            let d0 = _mm256_min_pd(h0, _mm256_loadu_pd(dp.add(j)));
            let d1 = _mm256_min_pd(h1, _mm256_loadu_pd(dp.add(j + 4)));
            _mm256_storeu_pd(dp.add(j), d0);
            _mm256_storeu_pd(dp.add(j + 4), d1);
            let l0 = _mm256_cmp_pd(d0, m0, _CMP_LT_OQ);
            let l1 = _mm256_cmp_pd(d1, m1, _CMP_LT_OQ);
            m0 = _mm256_min_pd(d0, m0);
            m1 = _mm256_min_pd(d1, m1);
            i0 = _mm256_blendv_pd(i0, ja, l0);
            i1 = _mm256_blendv_pd(i1, jb, l1);
            f0 = _mm256_min_pd(_mm256_add_pd(d0, _mm256_loadu_pd(pp.add(j))), f0);
            f1 = _mm256_min_pd(_mm256_add_pd(d1, _mm256_loadu_pd(pp.add(j + 4))), f1);
            ja = _mm256_add_pd(ja, step);
            jb = _mm256_add_pd(jb, step);
            j += 8;
        }
    }
    let (mut m, mut mi, mut fm) = ([0.0f64; 8], [0.0f64; 8], [0.0f64; 8]);
    // SAFETY: each array holds 8 f64.
    unsafe {
        _mm256_storeu_pd(m.as_mut_ptr(), m0);
        _mm256_storeu_pd(m.as_mut_ptr().add(4), m1);
        _mm256_storeu_pd(mi.as_mut_ptr(), i0);
        _mm256_storeu_pd(mi.as_mut_ptr().add(4), i1);
        _mm256_storeu_pd(fm.as_mut_ptr(), f0);
        _mm256_storeu_pd(fm.as_mut_ptr().add(4), f1);
    }
    relax_finish(m, mi.map(|x| x as usize), fm, row, v, pen, d, off, body)
}

/// The solver's prelude on 2-D points, in one pass over the matrix: row i of the cost matrix
/// `c[i·m + j] = (0 + (a[2i] − b0[j])²) + (a[2i+1] − b1[j])²` in f64 (the operations, hence the
/// bits, of `exact_ot::cost_matrix`), its f32 rounding `c32`, and the column minima `vmin[j] =
/// minᵢ c[i·m + j]`. Returns the largest cost. `a` holds n points (x, y), `b0`/`b1` the m
/// columns' coordinates; `c` and `c32` have n·m entries, `vmin` m.
pub(super) fn cost_prelude_2d(
    a: &[f32],
    b0: &[f64],
    b1: &[f64],
    c: &mut [f64],
    c32: &mut [f32],
    vmin: &mut [f64],
) -> f64 {
    let m = b0.len();
    assert!(b1.len() == m && vmin.len() == m && c.len() == a.len() / 2 * m && c32.len() == c.len());
    #[cfg(target_arch = "x86_64")]
    if have_avx2() {
        // SAFETY: AVX2 is present; the lengths are checked above.
        return unsafe { cost_prelude_2d_avx2(a, b0, b1, c, c32, vmin) };
    }
    cost_prelude_2d_portable(a, b0, b1, c, c32, vmin)
}

fn cost_prelude_2d_portable(
    a: &[f32],
    b0: &[f64],
    b1: &[f64],
    c: &mut [f64],
    c32: &mut [f32],
    vmin: &mut [f64],
) -> f64 {
    let m = b0.len();
    vmin.fill(f64::INFINITY);
    let mut cmax = 0.0f64;
    for ((p, crow), c32row) in a.chunks_exact(2).zip(c.chunks_exact_mut(m.max(1))).zip(c32.chunks_exact_mut(m.max(1))) {
        let (a0, a1) = (p[0] as f64, p[1] as f64);
        for j in 0..m {
            let (t0, t1) = (a0 - b0[j], a1 - b1[j]);
            let x = (0.0 + t0 * t0) + t1 * t1;
            crow[j] = x;
            c32row[j] = x as f32;
            vmin[j] = min64(x, vmin[j]);
            cmax = if x > cmax { x } else { cmax };
        }
    }
    cmax
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn cost_prelude_2d_avx2(a: &[f32], b0: &[f64], b1: &[f64], c: &mut [f64], c32: &mut [f32], vmin: &mut [f64]) -> f64 {
    let m = b0.len();
    let body = m - m % 4;
    vmin.fill(f64::INFINITY);
    let mut mx = _mm256_setzero_pd();
    let mut cmax = 0.0f64;
    let (p0, p1, vp) = (b0.as_ptr(), b1.as_ptr(), vmin.as_mut_ptr());
    for (i, p) in a.chunks_exact(2).enumerate() {
        let (a0, a1) = (p[0] as f64, p[1] as f64);
        let (s0, s1) = (_mm256_set1_pd(a0), _mm256_set1_pd(a1));
        let (cp, qp) = (c[i * m..].as_mut_ptr(), c32[i * m..].as_mut_ptr());
        let mut j = 0;
        // SAFETY: j + 4 <= body <= m; row i of c and c32 has m entries from i·m on.
        unsafe {
            while j < body {
                let t0 = _mm256_sub_pd(s0, _mm256_loadu_pd(p0.add(j)));
                let t1 = _mm256_sub_pd(s1, _mm256_loadu_pd(p1.add(j)));
                // t0·t0 ≥ +0, so 0 + t0·t0 is t0·t0 bit for bit.
                let x = _mm256_add_pd(_mm256_mul_pd(t0, t0), _mm256_mul_pd(t1, t1));
                _mm256_storeu_pd(cp.add(j), x);
                _mm_storeu_ps(qp.add(j), _mm256_cvtpd_ps(x));
                _mm256_storeu_pd(vp.add(j), _mm256_min_pd(x, _mm256_loadu_pd(vp.add(j))));
                mx = _mm256_max_pd(x, mx);
                j += 4;
            }
        }
        for j in body..m {
            let (t0, t1) = (a0 - b0[j], a1 - b1[j]);
            let x = (0.0 + t0 * t0) + t1 * t1;
            c[i * m + j] = x;
            c32[i * m + j] = x as f32;
            vmin[j] = min64(x, vmin[j]);
            cmax = if x > cmax { x } else { cmax };
        }
    }
    let mut lanes = [0.0f64; 4];
    // SAFETY: `lanes` holds 4 f64.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), mx) };
    lanes.iter().fold(cmax, |a, &b| if b > a { b } else { a })
}

/// The first index `j >= from` with `row[j] − v[j] == target`, if any.
pub(super) fn find_reduced(row: &[f64], v: &[f64], from: usize, target: f64) -> Option<usize> {
    let n = row.len();
    let v = &v[..n];
    #[cfg(target_arch = "x86_64")]
    if have_avx2() {
        // SAFETY: AVX2 is present.
        return unsafe { find_reduced_avx2(row, v, from, target) };
    }
    (from..n).find(|&j| row[j] - v[j] == target)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn find_reduced_avx2(row: &[f64], v: &[f64], from: usize, target: f64) -> Option<usize> {
    let n = row.len();
    let (r, vp) = (row.as_ptr(), v.as_ptr());
    let t = _mm256_set1_pd(target);
    let mut j = from;
    while j + 4 <= n {
        // SAFETY: j + 4 <= n = row.len() = v.len().
        let bits = unsafe {
            let h = _mm256_sub_pd(_mm256_loadu_pd(r.add(j)), _mm256_loadu_pd(vp.add(j)));
            _mm256_movemask_pd(_mm256_cmp_pd(h, t, _CMP_EQ_OQ))
        };
        if bits != 0 {
            return Some(j + bits.trailing_zeros() as usize);
        }
        j += 4;
    }
    (j..n).find(|&k| row[k] - v[k] == target)
}

/// The two smallest values of `row[j] − v[j]` and an index of the smallest: `(u1, j1, u2)`,
/// `u1 <= u2` (`u2 = u1` on a tie; `u2 = +∞` if `row` has one entry).
pub(super) fn top2_f64(row: &[f64], v: &[f64]) -> (f64, usize, f64) {
    #[cfg(target_arch = "x86_64")]
    if have_avx512() {
        // SAFETY: AVX-512F is present.
        return unsafe { top2_f64_avx512(row, v) };
    }
    #[cfg(target_arch = "x86_64")]
    if have_avx2() {
        // SAFETY: AVX2 is present.
        return unsafe { top2_f64_avx2(row, v) };
    }
    top2_lanes::<f64, 8>(row, &v[..row.len()], f64::INFINITY)
}

/// Portable top-2 with the lane structure of the AVX2 versions (lane = j mod L). Either way
/// the index is the first column attaining the minimum, as a plain scan finds it.
#[inline(always)]
fn top2_lanes<T: Copy + PartialOrd + std::ops::Sub<Output = T>, const L: usize>(
    row: &[T],
    v: &[T],
    inf: T,
) -> (T, usize, T) {
    let n = row.len();
    let body = n - n % L;
    let (mut m1, mut m2, mut idx) = ([inf; L], [inf; L], [0u64; L]);
    for j in (0..body).step_by(L) {
        for k in 0..L {
            let h = row[j + k] - v[j + k];
            // second = min(max(h, first), second), as maxpd/minpd compute it.
            let mx = if h > m1[k] { h } else { m1[k] };
            m2[k] = if mx < m2[k] { mx } else { m2[k] };
            if h < m1[k] {
                m1[k] = h;
                idx[k] = (j + k) as u64;
            }
        }
    }
    let acc = merge_lanes(&m1, &idx, &m2, inf);
    top2_tail(row, v, body, acc)
}

/// Scalar top-2 over `row[from..]`, continuing from `acc`.
#[inline(always)]
fn top2_tail<T: Copy + PartialOrd + std::ops::Sub<Output = T>>(
    row: &[T],
    v: &[T],
    from: usize,
    acc: (T, usize, T),
) -> (T, usize, T) {
    let (mut u1, mut j1, mut u2) = acc;
    for j in from..row.len() {
        let h = row[j] - v[j];
        if h < u1 {
            u2 = u1;
            u1 = h;
            j1 = j;
        } else if h < u2 {
            u2 = h;
        }
    }
    (u1, j1, u2)
}

/// Merges per-lane (smallest, its index, second smallest) into one top-2, without branches on
/// the values: u1 = min of the lane minima, j1 = the smallest index among the lanes attaining it
/// (each lane holds the first index attaining its minimum, so j1 is the first column attaining
/// u1, whatever the lane structure), u2 = min(all lane second minima, the lane minima other
/// than the chosen lane).
#[inline(always)]
fn merge_lanes<T: Copy + PartialOrd, I: Copy + Into<u64>>(m1: &[T], idx: &[I], m2: &[T], inf: T) -> (T, usize, T) {
    let sel = |a: T, b: T| if b < a { b } else { a };
    let u1 = m1.iter().fold(inf, |a, &b| sel(a, b));
    let mut lane = 0;
    let mut best = u64::MAX;
    for (k, (&x, &i)) in m1.iter().zip(idx).enumerate() {
        if x == u1 && i.into() < best {
            best = i.into();
            lane = k;
        }
    }
    let mut u2 = m2.iter().fold(inf, |a, &b| sel(a, b));
    for (k, &x) in m1.iter().enumerate() {
        u2 = sel(u2, if k == lane { inf } else { x });
    }
    (u1, idx[lane].into() as usize, u2)
}

/// [`merge_lanes`] in registers for two 8-lane f32 accumulators (values as the bit patterns of
/// non-negative floats, [`Lanes16`]), as two independent reductions, as in [`Lanes32::merge`]:
/// (u1, j1) the smallest 64-bit key (value bits above, index below; positive, so AVX2's
/// signed 64-bit compare orders them), u2 from a tree of (minimum, second minimum) pairs.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn merge_lanes_f32_avx2(a: (__m256i, __m256i, __m256i), b: (__m256i, __m256i, __m256i)) -> (f32, usize, f32) {
    let ((a0, ai, a2), (b0, bi, b2)) = (a, b);
    let min64 = |x: __m256i, y: __m256i| _mm256_blendv_epi8(x, y, _mm256_cmpgt_epi64(x, y));
    let k = min64(
        min64(_mm256_unpacklo_epi32(ai, a0), _mm256_unpackhi_epi32(ai, a0)),
        min64(_mm256_unpacklo_epi32(bi, b0), _mm256_unpackhi_epi32(bi, b0)),
    );
    let k = min64(k, _mm256_permute2x128_si256::<1>(k, k));
    let k = min64(k, _mm256_shuffle_epi32::<0b01_00_11_10>(k));
    let key = _mm_cvtsi128_si64(_mm256_castsi256_si128(k)) as u64;
    let mut x1 = _mm256_min_epi32(a0, b0);
    let mut x2 = _mm256_min_epi32(_mm256_max_epi32(a0, b0), _mm256_min_epi32(a2, b2));
    macro_rules! level {
        ($shuffle:expr) => {{
            let (y1, y2) = ($shuffle(x1), $shuffle(x2));
            x2 = _mm256_min_epi32(_mm256_max_epi32(x1, y1), _mm256_min_epi32(x2, y2));
            x1 = _mm256_min_epi32(x1, y1);
        }};
    }
    level!(|x| _mm256_permute2x128_si256::<1>(x, x));
    level!(|x| _mm256_shuffle_epi32::<0b01_00_11_10>(x));
    level!(|x| _mm256_shuffle_epi32::<0b10_11_00_01>(x));
    let _ = x1;
    let u2 = _mm256_cvtsi256_si32(x2) as u32;
    (f32::from_bits((key >> 32) as u32), (key & 0xffff_ffff) as usize, f32::from_bits(u2))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn top2_f64_avx2(row: &[f64], v: &[f64]) -> (f64, usize, f64) {
    let n = row.len();
    let v = &v[..n];
    let body = n - n % 8;
    let (r, vp) = (row.as_ptr(), v.as_ptr());
    let inf = _mm256_set1_pd(f64::INFINITY);
    let (mut a1, mut a2, mut b1, mut b2) = (inf, inf, inf, inf);
    let (mut ai, mut bi) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    // Lane indices as f64 (exact below 2^53).
    let mut ja = _mm256_set_pd(3.0, 2.0, 1.0, 0.0);
    let mut jb = _mm256_set_pd(7.0, 6.0, 5.0, 4.0);
    let step = _mm256_set1_pd(8.0);
    let mut j = 0;
    while j < body {
        // SAFETY: j + 8 <= body <= n.
        let (ha, hb) = unsafe {
            (
                _mm256_sub_pd(_mm256_loadu_pd(r.add(j)), _mm256_loadu_pd(vp.add(j))),
                _mm256_sub_pd(_mm256_loadu_pd(r.add(j + 4)), _mm256_loadu_pd(vp.add(j + 4))),
            )
        };
        let la = _mm256_cmp_pd(ha, a1, _CMP_LT_OQ);
        let lb = _mm256_cmp_pd(hb, b1, _CMP_LT_OQ);
        // second = min(max(h, first), second); first = h < first ? h : first
        a2 = _mm256_min_pd(_mm256_max_pd(ha, a1), a2);
        b2 = _mm256_min_pd(_mm256_max_pd(hb, b1), b2);
        // minpd(h, first) = h < first ? h : first, a shorter step on the loop-carried chain.
        a1 = _mm256_min_pd(ha, a1);
        b1 = _mm256_min_pd(hb, b1);
        ai = _mm256_blendv_pd(ai, ja, la);
        bi = _mm256_blendv_pd(bi, jb, lb);
        ja = _mm256_add_pd(ja, step);
        jb = _mm256_add_pd(jb, step);
        j += 8;
    }
    let (mut m1, mut m2, mut ii) = ([0.0f64; 8], [0.0f64; 8], [0.0f64; 8]);
    // SAFETY: each array holds 8 f64.
    unsafe {
        _mm256_storeu_pd(m1.as_mut_ptr(), a1);
        _mm256_storeu_pd(m1.as_mut_ptr().add(4), b1);
        _mm256_storeu_pd(m2.as_mut_ptr(), a2);
        _mm256_storeu_pd(m2.as_mut_ptr().add(4), b2);
        _mm256_storeu_pd(ii.as_mut_ptr(), ai);
        _mm256_storeu_pd(ii.as_mut_ptr().add(4), bi);
    }
    let mut idx = [0u64; 8];
    for k in 0..8 {
        idx[k] = ii[k] as u64;
    }
    let acc = merge_lanes(&m1, &idx, &m2, f64::INFINITY);
    top2_tail(row, v, body, acc)
}

/// [`top2_f64`] with AVX-512F: 16 lanes in two registers (lane k holds the columns ≡ k mod
/// 16), merged by reductions as in [`top2_f32_avx512`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn top2_f64_avx512(row: &[f64], v: &[f64]) -> (f64, usize, f64) {
    let n = row.len();
    let v = &v[..n];
    let body = n - n % 16;
    if body == 0 {
        return top2_tail(row, v, 0, (f64::INFINITY, 0, f64::INFINITY));
    }
    let inf = _mm512_set1_pd(f64::INFINITY);
    let (mut a0, mut a2, mut b0, mut b2) = (inf, inf, inf, inf);
    let (mut ai, mut bi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
    let mut ja = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    let mut jb = _mm512_add_epi64(ja, _mm512_set1_epi64(8));
    let step = _mm512_set1_epi64(16);
    let (r, vp) = (row.as_ptr(), v.as_ptr());
    let mut j = 0;
    while j < body {
        // SAFETY: j + 16 <= body <= n = row.len() = v.len().
        let (ha, hb) = unsafe {
            (
                _mm512_sub_pd(_mm512_loadu_pd(r.add(j)), _mm512_loadu_pd(vp.add(j))),
                _mm512_sub_pd(_mm512_loadu_pd(r.add(j + 8)), _mm512_loadu_pd(vp.add(j + 8))),
            )
        };
        let (la, lb) = (_mm512_cmp_pd_mask::<_CMP_LT_OQ>(ha, a0), _mm512_cmp_pd_mask::<_CMP_LT_OQ>(hb, b0));
        a2 = _mm512_min_pd(_mm512_max_pd(ha, a0), a2);
        b2 = _mm512_min_pd(_mm512_max_pd(hb, b0), b2);
        a0 = _mm512_min_pd(ha, a0);
        b0 = _mm512_min_pd(hb, b0);
        ai = _mm512_mask_blend_epi64(la, ai, ja);
        bi = _mm512_mask_blend_epi64(lb, bi, jb);
        ja = _mm512_add_epi64(ja, step);
        jb = _mm512_add_epi64(jb, step);
        j += 16;
    }
    let u1 = _mm512_reduce_min_pd(_mm512_min_pd(a0, b0));
    let u = _mm512_set1_pd(u1);
    let (ea, eb) = (_mm512_cmp_pd_mask::<_CMP_EQ_OQ>(a0, u), _mm512_cmp_pd_mask::<_CMP_EQ_OQ>(b0, u));
    let big = _mm512_set1_epi64(-1);
    let j1 = _mm512_reduce_min_epu64(_mm512_min_epu64(
        _mm512_mask_blend_epi64(ea, big, ai),
        _mm512_mask_blend_epi64(eb, big, bi),
    ));
    // u2 as in top2_f32_avx512.
    let r = _mm512_reduce_min_pd(_mm512_min_pd(_mm512_mask_blend_pd(ea, a0, a2), _mm512_mask_blend_pd(eb, b0, b2)));
    let e = ea as u32 | (eb as u32) << 8;
    let u2 = if e & e.wrapping_sub(1) != 0 { u1 } else { r };
    top2_tail(row, v, body, (u1, j1 as usize, u2))
}

/// [`top2_f64`] on f32 values (the approximate auction phases), for values `row[j] − v[j]`
/// that are never negative: the auction's reduced costs, since its prices start at the
/// column minima and only fall. The AVX-512 and AVX2 kernels order the values by their bit
/// patterns ([`Lanes32`], [`Lanes16`]), which for a negative value is not the float order; the
/// portable one takes any values.
pub(super) fn top2_f32(row: &[f32], v: &[f32]) -> (f32, usize, f32) {
    #[cfg(target_arch = "x86_64")]
    if have_avx512() {
        // SAFETY: AVX-512F is present.
        return unsafe { top2_f32_avx512(row, v) };
    }
    #[cfg(target_arch = "x86_64")]
    if have_avx2() {
        // SAFETY: AVX2 is present.
        return unsafe { top2_f32_avx2(row, v) };
    }
    top2_lanes::<f32, 16>(row, &v[..row.len()], f32::INFINITY)
}

/// Lane-wise top-2 of f32 columns in two 8-lane halves (lane k holds the columns ≡ k mod 16):
/// (minimum, the first index attaining it, second minimum) per lane.
///
/// The values are compared as integers, as in [`Lanes32`] (signed ones here, which AVX2 has and
/// which order non-negative floats' bit patterns alike).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Lanes16 {
    a: (__m256i, __m256i, __m256i),
    b: (__m256i, __m256i, __m256i),
}

#[cfg(target_arch = "x86_64")]
impl Lanes16 {
    #[target_feature(enable = "avx2")]
    fn new() -> Self {
        let inf = _mm256_set1_epi32(f32::INFINITY.to_bits() as i32);
        let z = _mm256_setzero_si256();
        Self { a: (inf, z, inf), b: (inf, z, inf) }
    }

    /// The lane indices of columns j..j + 16: (j..j + 8, j + 8..j + 16).
    #[target_feature(enable = "avx2")]
    #[inline]
    fn indices(j: usize) -> (__m256i, __m256i) {
        let base = _mm256_set1_epi32(j as i32);
        (
            _mm256_add_epi32(base, _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0)),
            _mm256_add_epi32(base, _mm256_set_epi32(15, 14, 13, 12, 11, 10, 9, 8)),
        )
    }

    /// Takes in the values `r[j..j + 16] − vp[j..j + 16]`, whose indices are `(ja, jb)`
    /// ([`Self::indices`]`(j)`); they must follow every column taken in so far (so that each
    /// lane keeps the first index attaining its minimum).
    ///
    /// # Safety
    /// `r` and `vp` must be valid for reads of `j + 16` values.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn take16(&mut self, r: *const f32, vp: *const f32, j: usize, (ja, jb): (__m256i, __m256i)) {
        // SAFETY: the caller guarantees j + 16 readable values behind both pointers.
        let (ha, hb) = unsafe {
            (
                _mm256_sub_ps(_mm256_loadu_ps(r.add(j)), _mm256_loadu_ps(vp.add(j))),
                _mm256_sub_ps(_mm256_loadu_ps(r.add(j + 8)), _mm256_loadu_ps(vp.add(j + 8))),
            )
        };
        self.take_values((ha, hb), (ja, jb));
    }

    /// [`Self::take16`] of values already computed: `(ha, hb)` = `r[j..j + 16] − vp[j..j + 16]`.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn take_values(&mut self, (ha, hb): (__m256, __m256), (ja, jb): (__m256i, __m256i)) {
        let (ha, hb) = (_mm256_castps_si256(ha), _mm256_castps_si256(hb));
        for (acc, h, jj) in [(&mut self.a, ha, ja), (&mut self.b, hb, jb)] {
            // second = min(max(h, first), second); first = min(h, first), the index where h is
            // strictly smaller (so each lane keeps the first index attaining its minimum).
            let lt = _mm256_cmpgt_epi32(acc.0, h);
            acc.2 = _mm256_min_epi32(_mm256_max_epi32(h, acc.0), acc.2);
            acc.0 = _mm256_min_epi32(h, acc.0);
            acc.1 = _mm256_blendv_epi8(acc.1, jj, lt);
        }
    }

    /// The top-2 over all lanes (see [`merge_lanes`]).
    #[target_feature(enable = "avx2")]
    fn merge(self) -> (f32, usize, f32) {
        merge_lanes_f32_avx2(self.a, self.b)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn top2_f32_avx2(row: &[f32], v: &[f32]) -> (f32, usize, f32) {
    let n = row.len();
    let v = &v[..n];
    let body = n - n % 16;
    let mut acc = Lanes16::new();
    let (mut ja, mut jb) = Lanes16::indices(0);
    let step = _mm256_set1_epi32(16);
    for j in (0..body).step_by(16) {
        // SAFETY: j + 16 <= body <= n = row.len() = v.len().
        unsafe { acc.take16(row.as_ptr(), v.as_ptr(), j, (ja, jb)) };
        (ja, jb) = (_mm256_add_epi32(ja, step), _mm256_add_epi32(jb, step));
    }
    top2_tail(row, v, body, acc.merge())
}

/// Lane-wise top-2 of f32 columns in two 16-lane registers (lane k holds the columns ≡ k mod
/// 32): (minimum, the first index attaining it, second minimum) per lane.
///
/// The values are compared as integers: their bit patterns, which order non-negative floats as
/// the floats themselves (+0 lowest, +∞ highest). Integer minima and compares have more of the
/// vector pipes than float ones on the cores measured, and the merge can then carry each value
/// with its index in one 64-bit key. The auction's reduced costs are never negative (see
/// [`top2_f32`]).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Lanes32 {
    a: (__m512i, __m512i, __m512i),
    b: (__m512i, __m512i, __m512i),
}

#[cfg(target_arch = "x86_64")]
impl Lanes32 {
    #[target_feature(enable = "avx512f")]
    fn new() -> Self {
        let inf = _mm512_set1_epi32(f32::INFINITY.to_bits() as i32);
        let z = _mm512_setzero_si512();
        Self { a: (inf, z, inf), b: (inf, z, inf) }
    }

    /// Takes in the values `(ha, hb)` (≥ +0) of the columns `(ja, jb)` (32 consecutive columns
    /// after every column taken in so far).
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn take(&mut self, (ha, hb): (__m512, __m512), (ja, jb): (__m512i, __m512i)) {
        let (ha, hb) = (_mm512_castps_si512(ha), _mm512_castps_si512(hb));
        for (acc, h, jj) in [(&mut self.a, ha, ja), (&mut self.b, hb, jb)] {
            let lt = _mm512_cmplt_epu32_mask(h, acc.0);
            acc.2 = _mm512_min_epu32(_mm512_max_epu32(h, acc.0), acc.2);
            acc.0 = _mm512_min_epu32(h, acc.0);
            acc.1 = _mm512_mask_blend_epi32(lt, acc.1, jj);
        }
    }

    /// The top-2 over all lanes ([`merge_lanes`]), as two independent reductions so that their
    /// latencies overlap: (u1, j1) is the smallest 64-bit key (value bits above, index below),
    /// so the smallest index among the lanes attaining u1; u2 comes from a tree that merges the
    /// lanes' (minimum, second minimum) pairs, (x1, x2) and (y1, y2) into (min(x1, y1),
    /// min(max(x1, y1), min(x2, y2))), the two smallest of the four.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn merge(self) -> (f32, usize, f32) {
        let ((a0, ai, a2), (b0, bi, b2)) = (self.a, self.b);
        let keys = _mm512_min_epu64(
            _mm512_min_epu64(_mm512_unpacklo_epi32(ai, a0), _mm512_unpackhi_epi32(ai, a0)),
            _mm512_min_epu64(_mm512_unpacklo_epi32(bi, b0), _mm512_unpackhi_epi32(bi, b0)),
        );
        let key = _mm512_reduce_min_epu64(keys);
        let mut x1 = _mm512_min_epu32(a0, b0);
        let mut x2 = _mm512_min_epu32(_mm512_max_epu32(a0, b0), _mm512_min_epu32(a2, b2));
        macro_rules! level {
            ($shuffle:expr) => {{
                let (y1, y2) = ($shuffle(x1), $shuffle(x2));
                x2 = _mm512_min_epu32(_mm512_max_epu32(x1, y1), _mm512_min_epu32(x2, y2));
                x1 = _mm512_min_epu32(x1, y1);
            }};
        }
        level!(|x| _mm512_shuffle_i32x4::<0b01_00_11_10>(x, x));
        level!(|x| _mm512_shuffle_i32x4::<0b10_11_00_01>(x, x));
        level!(|x| _mm512_shuffle_epi32::<0b01_00_11_10>(x));
        level!(|x| _mm512_shuffle_epi32::<0b10_11_00_01>(x));
        let _ = x1;
        let u2 = _mm_cvtsi128_si32(_mm512_castsi512_si128(x2)) as u32;
        (f32::from_bits((key >> 32) as u32), (key & 0xffff_ffff) as usize, f32::from_bits(u2))
    }
}

/// [`top2_f32`] with AVX-512F ([`Lanes32`]).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn top2_f32_avx512(row: &[f32], v: &[f32]) -> (f32, usize, f32) {
    let n = row.len();
    let v = &v[..n];
    let body = n - n % 32;
    if body == 0 {
        return top2_tail(row, v, 0, (f32::INFINITY, 0, f32::INFINITY));
    }
    let mut acc = Lanes32::new();
    let mut ja = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    let mut jb = _mm512_add_epi32(ja, _mm512_set1_epi32(16));
    let step = _mm512_set1_epi32(32);
    let (r, vp) = (row.as_ptr(), v.as_ptr());
    let mut j = 0;
    while j < body {
        // SAFETY: j + 32 <= body <= n = row.len() = v.len().
        let h = unsafe {
            (
                _mm512_sub_ps(_mm512_loadu_ps(r.add(j)), _mm512_loadu_ps(vp.add(j))),
                _mm512_sub_ps(_mm512_loadu_ps(r.add(j + 16)), _mm512_loadu_ps(vp.add(j + 16))),
            )
        };
        acc.take(h, (ja, jb));
        ja = _mm512_add_epi32(ja, step);
        jb = _mm512_add_epi32(jb, step);
        j += 32;
    }
    top2_tail(row, v, body, acc.merge())
}

/// [`top2_f32`] of two rows against the same `v` in one pass: `(top2_f32(r1, v), top2_f32(r2,
/// v))`, bit for bit (values never negative, as there). Two bids at once share the loads of `v`, and the two merges, each a chain
/// of dependent reductions, overlap.
pub(super) fn top2_f32_pair(r1: &[f32], r2: &[f32], v: &[f32]) -> ((f32, usize, f32), (f32, usize, f32)) {
    assert_eq!(r1.len(), r2.len());
    #[cfg(target_arch = "x86_64")]
    if have_avx512() {
        // SAFETY: AVX-512F is present.
        return unsafe { top2_f32_pair_avx512(r1, r2, v) };
    }
    #[cfg(target_arch = "x86_64")]
    if have_avx2() {
        // SAFETY: AVX2 is present.
        return unsafe { top2_f32_pair_avx2(r1, r2, v) };
    }
    (top2_f32(r1, v), top2_f32(r2, v))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn top2_f32_pair_avx2(r1: &[f32], r2: &[f32], v: &[f32]) -> ((f32, usize, f32), (f32, usize, f32)) {
    let n = r1.len();
    let (r2, v) = (&r2[..n], &v[..n]);
    let body = n - n % 16;
    let (mut acc1, mut acc2) = (Lanes16::new(), Lanes16::new());
    let (mut ja, mut jb) = Lanes16::indices(0);
    let step = _mm256_set1_epi32(16);
    let (p1, p2, vp) = (r1.as_ptr(), r2.as_ptr(), v.as_ptr());
    for j in (0..body).step_by(16) {
        // SAFETY: j + 16 <= body <= n = r1.len() = r2.len() = v.len().
        let (h1, h2) = unsafe {
            let (va, vb) = (_mm256_loadu_ps(vp.add(j)), _mm256_loadu_ps(vp.add(j + 8)));
            (
                (_mm256_sub_ps(_mm256_loadu_ps(p1.add(j)), va), _mm256_sub_ps(_mm256_loadu_ps(p1.add(j + 8)), vb)),
                (_mm256_sub_ps(_mm256_loadu_ps(p2.add(j)), va), _mm256_sub_ps(_mm256_loadu_ps(p2.add(j + 8)), vb)),
            )
        };
        acc1.take_values(h1, (ja, jb));
        acc2.take_values(h2, (ja, jb));
        (ja, jb) = (_mm256_add_epi32(ja, step), _mm256_add_epi32(jb, step));
    }
    let (m1, m2) = (acc1.merge(), acc2.merge());
    (top2_tail(r1, v, body, m1), top2_tail(r2, v, body, m2))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn top2_f32_pair_avx512(r1: &[f32], r2: &[f32], v: &[f32]) -> ((f32, usize, f32), (f32, usize, f32)) {
    let n = r1.len();
    let (r2, v) = (&r2[..n], &v[..n]);
    let body = n - n % 32;
    if body == 0 {
        return (top2_f32(r1, v), top2_f32(r2, v));
    }
    let (mut acc1, mut acc2) = (Lanes32::new(), Lanes32::new());
    let mut ja = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    let mut jb = _mm512_add_epi32(ja, _mm512_set1_epi32(16));
    let step = _mm512_set1_epi32(32);
    let (p1, p2, vp) = (r1.as_ptr(), r2.as_ptr(), v.as_ptr());
    let mut j = 0;
    while j < body {
        // SAFETY: j + 32 <= body <= n = r1.len() = r2.len() = v.len().
        let (h1, h2) = unsafe {
            let (va, vb) = (_mm512_loadu_ps(vp.add(j)), _mm512_loadu_ps(vp.add(j + 16)));
            (
                (_mm512_sub_ps(_mm512_loadu_ps(p1.add(j)), va), _mm512_sub_ps(_mm512_loadu_ps(p1.add(j + 16)), vb)),
                (_mm512_sub_ps(_mm512_loadu_ps(p2.add(j)), va), _mm512_sub_ps(_mm512_loadu_ps(p2.add(j + 16)), vb)),
            )
        };
        acc1.take(h1, (ja, jb));
        acc2.take(h2, (ja, jb));
        ja = _mm512_add_epi32(ja, step);
        jb = _mm512_add_epi32(jb, step);
        j += 32;
    }
    let (m1, m2) = (acc1.merge(), acc2.merge());
    (top2_tail(r1, v, body, m1), top2_tail(r2, v, body, m2))
}

/// Columns per block of [`top2_blocks_f32`].
pub(super) const BLOCK: usize = 16;

/// [`top2_f32`] that skips whole blocks of [`BLOCK`] columns which cannot hold either of the
/// two smallest values, with the same result bit for bit.
///
/// Block k covers columns `BLOCK·k .. BLOCK·(k + 1)`; the columns after the last full block
/// are always scanned. `bmin[k]` is the smallest `row[j]` of block k, and `vmin[k]`, `vmax[k]`
/// bound its `v[j]` from below and above. Then every value of block k lies in
/// `[bmin[k] − vmax[k], …]` and its smallest value is at most `bmin[k] − vmin[k]` (the column
/// attaining `bmin[k]`), in f32 too since rounding is monotone. So the second smallest value
/// of the row is at most T, the second smallest upper bound over the blocks, and a block whose
/// lower bound exceeds T holds neither of the two smallest values nor a column attaining the
/// smallest: skipping it changes nothing. The scanned blocks keep the lane structure of
/// [`top2_f32`] and are visited in column order, so the index is the first column attaining
/// the minimum, as there.
pub(super) fn top2_blocks_f32(row: &[f32], v: &[f32], bmin: &[f32], vmin: &[f32], vmax: &[f32]) -> (f32, usize, f32) {
    let kb = row.len() / BLOCK;
    assert!(bmin.len() >= kb && vmin.len() >= kb && vmax.len() >= kb && v.len() >= row.len());
    #[cfg(target_arch = "x86_64")]
    if have_avx2() && kb >= 2 {
        // SAFETY: AVX2 is present; the slices are at least as long as the kernel reads.
        return unsafe { top2_blocks_f32_avx2(row, v, bmin, vmin, vmax) };
    }
    top2_f32(row, v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn top2_blocks_f32_avx2(row: &[f32], v: &[f32], bmin: &[f32], vmin: &[f32], vmax: &[f32]) -> (f32, usize, f32) {
    let n = row.len();
    let kb = n / BLOCK;
    let kv = kb - kb % 8;
    let inf = _mm256_set1_ps(f32::INFINITY);
    // T: the second smallest of bmin − vmin, lane-wise top-2 then a tree over the lanes.
    let (mut t1, mut t2) = (inf, inf);
    let mut k = 0;
    while k < kv {
        // SAFETY: k + 8 <= kv <= kb <= the lengths of bmin and vmin.
        let ub = unsafe { _mm256_sub_ps(_mm256_loadu_ps(bmin.as_ptr().add(k)), _mm256_loadu_ps(vmin.as_ptr().add(k))) };
        t2 = _mm256_min_ps(_mm256_max_ps(ub, t1), t2);
        t1 = _mm256_min_ps(ub, t1);
        k += 8;
    }
    let step = |a1: __m256, a2: __m256, b1: __m256, b2: __m256| {
        (_mm256_min_ps(a1, b1), _mm256_min_ps(_mm256_max_ps(a1, b1), _mm256_min_ps(a2, b2)))
    };
    let (x1, x2) = step(t1, t2, _mm256_permute2f128_ps::<1>(t1, t1), _mm256_permute2f128_ps::<1>(t2, t2));
    let (x1, x2) = step(x1, x2, _mm256_shuffle_ps::<0b01_00_11_10>(x1, x1), _mm256_shuffle_ps::<0b01_00_11_10>(x2, x2));
    let (x1, x2) = step(x1, x2, _mm256_shuffle_ps::<0b10_11_00_01>(x1, x1), _mm256_shuffle_ps::<0b10_11_00_01>(x2, x2));
    let (mut s1, mut s2) = (_mm256_cvtss_f32(x1), _mm256_cvtss_f32(x2));
    for k in kv..kb {
        let ub = bmin[k] - vmin[k];
        let mx = if ub > s1 { ub } else { s1 };
        s2 = if mx < s2 { mx } else { s2 };
        s1 = if ub < s1 { ub } else { s1 };
    }
    let t = _mm256_set1_ps(s2);
    // The blocks whose lower bound bmin − vmax is at most T, in column order.
    let mut acc = Lanes16::new();
    let mut k = 0;
    while k < kv {
        // SAFETY: k + 8 <= kv <= the lengths of bmin and vmax.
        let lb = unsafe { _mm256_sub_ps(_mm256_loadu_ps(bmin.as_ptr().add(k)), _mm256_loadu_ps(vmax.as_ptr().add(k))) };
        let mut bits = _mm256_movemask_ps(_mm256_cmp_ps(lb, t, _CMP_LE_OQ)) as u32;
        while bits != 0 {
            let b = k + bits.trailing_zeros() as usize;
            // SAFETY: b < kb, so b·16 + 16 <= kb·16 <= n = row.len() <= v.len().
            unsafe { acc.take16(row.as_ptr(), v.as_ptr(), b * BLOCK, Lanes16::indices(b * BLOCK)) };
            bits &= bits - 1;
        }
        k += 8;
    }
    for k in kv..kb {
        if bmin[k] - vmax[k] <= s2 {
            // SAFETY: as above.
            unsafe { acc.take16(row.as_ptr(), v.as_ptr(), k * BLOCK, Lanes16::indices(k * BLOCK)) };
        }
    }
    let acc = acc.merge();
    top2_tail(row, v, kb * BLOCK, acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> (Vec<f64>, Vec<f64>) {
        let mut s = seed | 1;
        let mut r = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            // Few distinct values, so that ties occur.
            (s % 17) as f64 * 0.25
        };
        ((0..n).map(|_| r()).collect(), (0..n).map(|_| r() - 1.0).collect())
    }

    #[test]
    fn dispatched_kernels_equal_portable_ones_bit_for_bit() {
        for n in [1usize, 3, 8, 13, 16, 64, 101, 256, 300] {
            let (row, v) = data(n, n as u64);
            let pen: Vec<f64> = (0..n).map(|j| if j % 3 == 0 { 0.0 } else { f64::INFINITY }).collect();
            let mut d1 = vec![f64::INFINITY; n];
            d1[0] = -3.0;
            let mut d2 = d1.clone();
            let a = relax(&row, &v, &pen, &mut d1, 0.5);
            let b = relax_portable(&row, &v, &pen, &mut d2, 0.5);
            assert_eq!((a.0.to_bits(), a.1, a.2.to_bits()), (b.0.to_bits(), b.1, b.2.to_bits()));
            assert_eq!(d1, d2);
            assert_eq!(d1[a.1], a.0, "jmin attains dmin");
            assert_eq!(a.0, d1.iter().copied().fold(f64::INFINITY, f64::min));
            let fmin = (0..n).step_by(3).map(|j| d1[j]).fold(f64::INFINITY, f64::min);
            assert_eq!(a.2, fmin);
            let t = top2_f64(&row, &v);
            let s = top2_tail(&row, &v, 0, (f64::INFINITY, 0, f64::INFINITY));
            assert_eq!(t, s, "the first column attaining the minimum, as a plain scan finds it");
            assert_eq!(t, top2_lanes::<f64, 8>(&row, &v, f64::INFINITY), "same index as the portable version");
            assert_eq!(row[t.1] - v[t.1], t.0, "j1 attains u1");
            // The f32 kernels take values ≥ 0 (v ≤ 3 ≤ row + 3).
            let (r32, v32): (Vec<f32>, Vec<f32>) =
                (row.iter().map(|&x| x as f32).collect(), v.iter().map(|&x| x as f32 - 3.0).collect());
            let t = top2_f32(&r32, &v32);
            let s = top2_tail(&r32, &v32, 0, (f32::INFINITY, 0, f32::INFINITY));
            assert_eq!(t, s);
            assert_eq!(t, top2_lanes::<f32, 16>(&r32, &v32, f32::INFINITY));
            assert_eq!(r32[t.1] - v32[t.1], t.0);
            // The block-bounded scan, with exact and with loose (stale) price bounds.
            let kb = n / BLOCK;
            let bmin: Vec<f32> =
                (0..kb).map(|k| r32[k * BLOCK..(k + 1) * BLOCK].iter().fold(f32::INFINITY, |a, &x| a.min(x))).collect();
            for slack in [0.0f32, 0.5, 3.0] {
                let vmin: Vec<f32> = (0..kb)
                    .map(|k| v32[k * BLOCK..(k + 1) * BLOCK].iter().fold(f32::INFINITY, |a, &x| a.min(x)))
                    .collect();
                let vmax: Vec<f32> = (0..kb)
                    .map(|k| v32[k * BLOCK..(k + 1) * BLOCK].iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x)) + slack)
                    .collect();
                let b = top2_blocks_f32(&r32, &v32, &bmin, &vmin, &vmax);
                assert_eq!(
                    (b.0.to_bits(), b.1, b.2.to_bits()),
                    (t.0.to_bits(), t.1, t.2.to_bits()),
                    "n {n}, slack {slack}"
                );
            }
            for from in [0, 1, n / 2] {
                let want = (from..n).find(|&j| row[j] - v[j] == 0.75);
                assert_eq!(find_reduced(&row, &v, from, 0.75), want);
            }
        }
    }

    #[test]
    fn dispatched_prelude_equals_the_portable_one_bit_for_bit() {
        for n in [1usize, 3, 4, 9, 33] {
            let (p, q) = data(2 * n, n as u64 + 11);
            let a: Vec<f32> = p.iter().map(|&x| x as f32 - 1.3).collect();
            let (b0, b1) = (&q[..n], &p[n..]);
            type Prelude = fn(&[f32], &[f64], &[f64], &mut [f64], &mut [f32], &mut [f64]) -> f64;
            let run = |f: Prelude| {
                let (mut c, mut c32, mut vmin) = (vec![0.0; n * n], vec![0.0f32; n * n], vec![0.0; n]);
                let m = f(&a, b0, b1, &mut c, &mut c32, &mut vmin);
                (c.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), c32, vmin, m)
            };
            assert_eq!(run(cost_prelude_2d), run(cost_prelude_2d_portable), "n {n}");
        }
    }

    /// Every f32 and f64 top-2 kernel this machine can run (AVX-512, AVX2, portable), on rows with
    /// many ties (a handful of distinct values, so the minimum sits in several lanes, or in
    /// one), gives the plain scan's (u1, first j1, u2) bit for bit.
    #[test]
    fn every_top2_kernel_equals_the_plain_scan_on_tied_rows() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        type Top2 = fn(&[f32], &[f32]) -> (f32, usize, f32);
        let mut kernels: Vec<(&str, Top2)> = vec![("portable", |r, v| top2_lanes::<f32, 16>(r, v, f32::INFINITY))];
        #[cfg(target_arch = "x86_64")]
        {
            if have_avx2() {
                // SAFETY: AVX2 is present.
                kernels.push(("avx2", |r, v| unsafe { top2_f32_avx2(r, v) }));
            }
            if have_avx512() {
                // SAFETY: AVX-512F is present.
                kernels.push(("avx512", |r, v| unsafe { top2_f32_avx512(r, v) }));
            }
        }
        type Top2f64 = fn(&[f64], &[f64]) -> (f64, usize, f64);
        let mut kernels64: Vec<(&str, Top2f64)> = vec![("portable", |r, v| top2_lanes::<f64, 8>(r, v, f64::INFINITY))];
        #[cfg(target_arch = "x86_64")]
        {
            if have_avx2() {
                // SAFETY: AVX2 is present.
                kernels64.push(("avx2", |r, v| unsafe { top2_f64_avx2(r, v) }));
            }
            if have_avx512() {
                // SAFETY: AVX-512F is present.
                kernels64.push(("avx512", |r, v| unsafe { top2_f64_avx512(r, v) }));
            }
        }
        for n in [1usize, 2, 16, 31, 32, 33, 64, 100, 256, 257] {
            for distinct in [1u64, 2, 3, 50] {
                for rep in 0..20 {
                    let row: Vec<f32> = (0..n).map(|_| (next() % distinct) as f32 * 0.25).collect();
                    // Prices ≤ 0, so that every value is ≥ 0 as the f32 kernels require.
                    let v: Vec<f32> = (0..n).map(|_| if rep % 2 == 0 { 0.0 } else { -((next() % 3) as f32) }).collect();
                    let want = top2_tail(&row, &v, 0, (f32::INFINITY, 0, f32::INFINITY));
                    for (name, k) in &kernels {
                        let got = k(&row, &v);
                        assert_eq!(
                            (got.0.to_bits(), got.1, got.2.to_bits()),
                            (want.0.to_bits(), want.1, want.2.to_bits()),
                            "{name}, n {n}, {distinct} distinct values"
                        );
                    }
                    let other: Vec<f32> = row.iter().rev().map(|&x| x + 0.25 * (next() % 2) as f32).collect();
                    let want2 = top2_tail(&other, &v, 0, (f32::INFINITY, 0, f32::INFINITY));
                    let bits = |t: (f32, usize, f32)| (t.0.to_bits(), t.1, t.2.to_bits());
                    let got = top2_f32_pair(&row, &other, &v);
                    assert_eq!((bits(got.0), bits(got.1)), (bits(want), bits(want2)), "pair, n {n}");
                    #[cfg(target_arch = "x86_64")]
                    if have_avx2() {
                        // SAFETY: AVX2 is present.
                        let got = unsafe { top2_f32_pair_avx2(&row, &other, &v) };
                        assert_eq!((bits(got.0), bits(got.1)), (bits(want), bits(want2)), "avx2 pair, n {n}");
                    }
                    let (r64, v64): (Vec<f64>, Vec<f64>) =
                        (row.iter().map(|&x| x as f64).collect(), v.iter().map(|&x| x as f64).collect());
                    let want = top2_tail(&r64, &v64, 0, (f64::INFINITY, 0, f64::INFINITY));
                    for (name, k) in &kernels64 {
                        let got = k(&r64, &v64);
                        assert_eq!(
                            (got.0.to_bits(), got.1, got.2.to_bits()),
                            (want.0.to_bits(), want.1, want.2.to_bits()),
                            "f64 {name}, n {n}, {distinct} distinct values"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn block_bounded_top2_skips_far_blocks_and_finds_the_same_top2() {
        // Rows whose blocks sit at different heights, so that most blocks are skipped, with
        // ties inside blocks and between them (few distinct values), the minimum in any block.
        for seed in 0..400u64 {
            let n = [32usize, 48, 131, 256, 1024][seed as usize % 5];
            let (noise, v) = data(n, seed + 7);
            let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let offsets: Vec<f64> = (0..n / BLOCK + 1)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    [0.0, 0.0, 2.0, 8.0, 20.0][(s % 5) as usize]
                })
                .collect();
            let r32: Vec<f32> = (0..n).map(|j| (noise[j] + offsets[j / BLOCK]) as f32).collect();
            let v32: Vec<f32> = v.iter().map(|&x| (0.1 * x - 0.3) as f32).collect();
            let kb = n / BLOCK;
            let bmin: Vec<f32> =
                (0..kb).map(|k| r32[k * BLOCK..(k + 1) * BLOCK].iter().fold(f32::INFINITY, |a, &x| a.min(x))).collect();
            let vmin: Vec<f32> =
                (0..kb).map(|k| v32[k * BLOCK..(k + 1) * BLOCK].iter().fold(f32::INFINITY, |a, &x| a.min(x))).collect();
            let vmax: Vec<f32> = (0..kb)
                .map(|k| v32[k * BLOCK..(k + 1) * BLOCK].iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x)))
                .collect();
            let want = top2_tail(&r32, &v32, 0, (f32::INFINITY, 0, f32::INFINITY));
            let got = top2_blocks_f32(&r32, &v32, &bmin, &vmin, &vmax);
            assert_eq!(
                (got.0.to_bits(), got.1, got.2.to_bits()),
                (want.0.to_bits(), want.1, want.2.to_bits()),
                "seed {seed}, n {n}"
            );
        }
    }
}
