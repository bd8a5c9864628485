//! The inner loops of the assignment solver ([`super::exact_ot`]), with run-time dispatch.
//!
//! Each kernel has a portable version (plain loops over contiguous rows, which the compiler
//! vectorises for the baseline SSE2) and, on x86-64, an AVX2 version chosen at run time with
//! `is_x86_feature_detected!` (the crate is not built with `-C target-cpu`). Both versions
//! return bit-identical results: they perform the same IEEE operations (`a − b + c`, `min`,
//! comparisons) on the same values, only several at a time, so the solver's exactness does not
//! depend on the machine.
//!
//! `min` follows x86's `minpd`: `min(a, b) = if a < b { a } else { b }`.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

#[inline(always)]
fn min64(a: f64, b: f64) -> f64 {
    if a < b { a } else { b }
}

#[inline(always)]
fn have_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Dijkstra relaxation of one row: `d[j] ← min(row[j] − v[j] + off, d[j])` for all `j`;
/// returns `min_j d[j]` after the update.
///
/// Columns that must not be relaxed carry `v[j] = −∞` and `d[j] = +∞` (then `row[j] − v[j]` is
/// `+∞` and `d[j]` stays `+∞`), so the loop needs no mask and no branch.
pub(super) fn relax(row: &[f64], v: &[f64], d: &mut [f64], off: f64) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if have_avx2() {
        // SAFETY: AVX2 is present (checked just above).
        return unsafe { relax_avx2(row, v, d, off) };
    }
    relax_portable(row, v, d, off)
}

fn relax_portable(row: &[f64], v: &[f64], d: &mut [f64], off: f64) -> f64 {
    let n = row.len();
    let (v, d) = (&v[..n], &mut d[..n]);
    let mut m = [f64::INFINITY; 4];
    let body = n - n % 4;
    for ((rc, vc), dc) in row[..body].chunks_exact(4).zip(v[..body].chunks_exact(4)).zip(d[..body].chunks_exact_mut(4)) {
        for k in 0..4 {
            let x = min64(rc[k] - vc[k] + off, dc[k]);
            dc[k] = x;
            m[k] = min64(x, m[k]);
        }
    }
    let mut best = min64(min64(m[0], m[1]), min64(m[2], m[3]));
    for j in body..n {
        let x = min64(row[j] - v[j] + off, d[j]);
        d[j] = x;
        best = min64(x, best);
    }
    best
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn relax_avx2(row: &[f64], v: &[f64], d: &mut [f64], off: f64) -> f64 {
    let n = row.len();
    let (v, d) = (&v[..n], &mut d[..n]);
    let body = n - n % 8;
    let (r, vp, dp) = (row.as_ptr(), v.as_ptr(), d.as_mut_ptr());
    let o = _mm256_set1_pd(off);
    let mut m0 = _mm256_set1_pd(f64::INFINITY);
    let mut m1 = m0;
    let mut j = 0;
    // SAFETY: every access is at an index < body <= n, and all three slices have length n.
    unsafe {
        while j < body {
            let h0 = _mm256_add_pd(_mm256_sub_pd(_mm256_loadu_pd(r.add(j)), _mm256_loadu_pd(vp.add(j))), o);
            let h1 = _mm256_add_pd(_mm256_sub_pd(_mm256_loadu_pd(r.add(j + 4)), _mm256_loadu_pd(vp.add(j + 4))), o);
            let d0 = _mm256_min_pd(h0, _mm256_loadu_pd(dp.add(j)));
            let d1 = _mm256_min_pd(h1, _mm256_loadu_pd(dp.add(j + 4)));
            _mm256_storeu_pd(dp.add(j), d0);
            _mm256_storeu_pd(dp.add(j + 4), d1);
            m0 = _mm256_min_pd(d0, m0);
            m1 = _mm256_min_pd(d1, m1);
            j += 8;
        }
    }
    let mut a = [0.0f64; 4];
    // SAFETY: `a` holds 4 f64.
    unsafe { _mm256_storeu_pd(a.as_mut_ptr(), _mm256_min_pd(m0, m1)) };
    let mut best = min64(min64(a[0], a[1]), min64(a[2], a[3]));
    for j in body..n {
        let x = min64(row[j] - v[j] + off, d[j]);
        d[j] = x;
        best = min64(x, best);
    }
    best
}

/// The first index `j >= from` with `d[j] == m`, if any.
pub(super) fn find(d: &[f64], from: usize, m: f64) -> Option<usize> {
    let d = &d[from.min(d.len())..];
    #[cfg(target_arch = "x86_64")]
    if have_avx2() {
        // SAFETY: AVX2 is present.
        return unsafe { find_avx2(d, m) }.map(|j| j + from);
    }
    d.iter().position(|&x| x == m).map(|j| j + from)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn find_avx2(d: &[f64], m: f64) -> Option<usize> {
    let n = d.len();
    let p = d.as_ptr();
    let mm = _mm256_set1_pd(m);
    let mut j = 0;
    while j + 8 <= n {
        // SAFETY: j + 8 <= n.
        let bits = unsafe {
            let a = _mm256_cmp_pd(_mm256_loadu_pd(p.add(j)), mm, _CMP_EQ_OQ);
            let b = _mm256_cmp_pd(_mm256_loadu_pd(p.add(j + 4)), mm, _CMP_EQ_OQ);
            _mm256_movemask_pd(a) | (_mm256_movemask_pd(b) << 4)
        };
        if bits != 0 {
            return Some(j + bits.trailing_zeros() as usize);
        }
        j += 8;
    }
    d[j..].iter().position(|&x| x == m).map(|k| j + k)
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
    if have_avx2() {
        // SAFETY: AVX2 is present.
        return unsafe { top2_f64_avx2(row, v) };
    }
    top2_tail(row, &v[..row.len()], 0, (f64::INFINITY, 0, f64::INFINITY))
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

/// Merges per-lane (smallest, its index, second smallest) into one top-2.
#[inline(always)]
fn merge_lanes<T: Copy + PartialOrd>(m1: &[T], idx: &[usize], m2: &[T], inf: T) -> (T, usize, T) {
    let (mut u1, mut j1, mut u2) = (inf, 0usize, inf);
    for k in 0..m1.len() {
        if m2[k] < u2 {
            u2 = m2[k];
        }
        let h = m1[k];
        if h < u1 {
            if u1 < u2 {
                u2 = u1;
            }
            u1 = h;
            j1 = idx[k];
        } else if h < u2 {
            u2 = h;
        }
    }
    (u1, j1, u2)
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
        a1 = _mm256_blendv_pd(a1, ha, la);
        b1 = _mm256_blendv_pd(b1, hb, lb);
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
    let idx = ii.map(|x| x as usize);
    let acc = merge_lanes(&m1, &idx, &m2, f64::INFINITY);
    top2_tail(row, v, body, acc)
}

/// [`top2_f64`] on f32 values (the approximate auction phases).
pub(super) fn top2_f32(row: &[f32], v: &[f32]) -> (f32, usize, f32) {
    #[cfg(target_arch = "x86_64")]
    if have_avx2() {
        // SAFETY: AVX2 is present.
        return unsafe { top2_f32_avx2(row, v) };
    }
    top2_tail(row, &v[..row.len()], 0, (f32::INFINITY, 0, f32::INFINITY))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn top2_f32_avx2(row: &[f32], v: &[f32]) -> (f32, usize, f32) {
    let n = row.len();
    let v = &v[..n];
    let body = n - n % 16;
    let (r, vp) = (row.as_ptr(), v.as_ptr());
    let inf = _mm256_set1_ps(f32::INFINITY);
    let (mut a1, mut a2, mut b1, mut b2) = (inf, inf, inf, inf);
    let (mut ai, mut bi) = (_mm256_setzero_si256(), _mm256_setzero_si256());
    let mut ja = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
    let mut jb = _mm256_set_epi32(15, 14, 13, 12, 11, 10, 9, 8);
    let step = _mm256_set1_epi32(16);
    let mut j = 0;
    while j < body {
        // SAFETY: j + 16 <= body <= n.
        let (ha, hb) = unsafe {
            (
                _mm256_sub_ps(_mm256_loadu_ps(r.add(j)), _mm256_loadu_ps(vp.add(j))),
                _mm256_sub_ps(_mm256_loadu_ps(r.add(j + 8)), _mm256_loadu_ps(vp.add(j + 8))),
            )
        };
        let la = _mm256_cmp_ps(ha, a1, _CMP_LT_OQ);
        let lb = _mm256_cmp_ps(hb, b1, _CMP_LT_OQ);
        a2 = _mm256_min_ps(_mm256_max_ps(ha, a1), a2);
        b2 = _mm256_min_ps(_mm256_max_ps(hb, b1), b2);
        a1 = _mm256_blendv_ps(a1, ha, la);
        b1 = _mm256_blendv_ps(b1, hb, lb);
        ai = _mm256_blendv_epi8(ai, ja, _mm256_castps_si256(la));
        bi = _mm256_blendv_epi8(bi, jb, _mm256_castps_si256(lb));
        ja = _mm256_add_epi32(ja, step);
        jb = _mm256_add_epi32(jb, step);
        j += 16;
    }
    let (mut m1, mut m2, mut ii) = ([0.0f32; 16], [0.0f32; 16], [0i32; 16]);
    // SAFETY: each array holds 16 four-byte values.
    unsafe {
        _mm256_storeu_ps(m1.as_mut_ptr(), a1);
        _mm256_storeu_ps(m1.as_mut_ptr().add(8), b1);
        _mm256_storeu_ps(m2.as_mut_ptr(), a2);
        _mm256_storeu_ps(m2.as_mut_ptr().add(8), b2);
        _mm256_storeu_si256(ii.as_mut_ptr().cast(), ai);
        _mm256_storeu_si256(ii.as_mut_ptr().add(8).cast(), bi);
    }
    let idx = ii.map(|x| x as usize);
    let acc = merge_lanes(&m1, &idx, &m2, f32::INFINITY);
    top2_tail(row, v, body, acc)
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
        for n in [1usize, 3, 8, 13, 64, 101] {
            let (row, v) = data(n, n as u64);
            let mut d1 = vec![f64::INFINITY; n];
            let mut d2 = d1.clone();
            d1[0] = -3.0;
            d2[0] = -3.0;
            let a = relax(&row, &v, &mut d1, 0.5);
            let b = relax_portable(&row, &v, &mut d2, 0.5);
            assert_eq!(a.to_bits(), b.to_bits());
            assert_eq!(d1, d2);
            let t = top2_f64(&row, &v);
            let s = top2_tail(&row, &v, 0, (f64::INFINITY, 0, f64::INFINITY));
            assert_eq!((t.0, t.2), (s.0, s.2));
            assert_eq!(row[t.1] - v[t.1], t.0, "j1 attains u1");
            let (r32, v32): (Vec<f32>, Vec<f32>) = (row.iter().map(|&x| x as f32).collect(), v.iter().map(|&x| x as f32).collect());
            let t = top2_f32(&r32, &v32);
            let s = top2_tail(&r32, &v32, 0, (f32::INFINITY, 0, f32::INFINITY));
            assert_eq!((t.0, t.2), (s.0, s.2));
            assert_eq!(r32[t.1] - v32[t.1], t.0);
            let m = d1[n / 2];
            assert_eq!(find(&d1, 0, m), d1.iter().position(|&x| x == m));
            for from in [0, 1, n / 2] {
                let want = (from..n).find(|&j| row[j] - v[j] == 0.75);
                assert_eq!(find_reduced(&row, &v, from, 0.75), want);
            }
        }
    }
}
