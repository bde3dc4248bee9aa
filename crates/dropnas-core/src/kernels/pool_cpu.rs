//! 3x3 pooling with padding 1 (the DARTS pools) on contiguous NCHW `f32` buffers.
//!
//! Max pooling's backward recomputes each window's argmax from the input instead of storing
//! indices; average pooling divides by the number of in-bounds positions (padding not counted).
//!
//! At stride 1 (every pool of a normal cell) the loops read a padded copy of the plane (-inf
//! around it for max, 0 for average, neither of which changes a window's result) and keep a
//! block of [`L`] outputs in registers across the nine taps; stride 2 walks tap by tap.

use super::min_planes;
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolGeom {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub stride: usize,
}

impl PoolGeom {
    pub fn out_h(&self) -> usize {
        (self.h - 1) / self.stride + 1
    }

    pub fn out_w(&self) -> usize {
        (self.w - 1) / self.stride + 1
    }
}

/// The in-bounds rows (or columns) of the window centred on `o * stride`, for every output `o`.
fn windows(out: usize, stride: usize, len: usize) -> Vec<(usize, usize)> {
    (0..out)
        .map(|o| {
            let c = o * stride;
            (c.saturating_sub(1), (c + 2).min(len))
        })
        .collect()
}

/// The maximum of every 3x3 window of one plane and which of the window's nine taps holds it
/// (`3 * dy + dx`), as PyTorch picks it: windows are scanned row by row, a larger value or a NaN
/// takes over, so the first maximum wins ties. Written tap by tap over whole output rows (not
/// window by window) so that the compare and select vectorise; `best` and `tap` hold one entry
/// per output position.
fn plane_max(plane: &[f32], g: &PoolGeom, best: &mut [f32], tap: &mut [u32]) {
    let (oh, ow, s) = (g.out_h(), g.out_w(), g.stride);
    // PyTorch's start: value -inf at the window's first in-bounds position
    best.fill(f32::NEG_INFINITY);
    for oy in 0..oh {
        let dy0 = if oy == 0 { 1 } else { 0 };
        for ox in 0..ow {
            tap[oy * ow + ox] = 3 * dy0 + if ox == 0 { 1 } else { 0 };
        }
    }
    for dy in 0..3 {
        for dx in 0..3 {
            let t = (3 * dy + dx) as u32;
            // output rows/columns whose window holds this tap inside the image
            let (y0, y1) = valid(oh, dy, s, g.h);
            let (x0, x1) = valid(ow, dx, s, g.w);
            for oy in y0..y1 {
                let iy = oy * s + dy - 1;
                let row = &plane[iy * g.w..(iy + 1) * g.w];
                let b = &mut best[oy * ow + x0..oy * ow + x1];
                let k = &mut tap[oy * ow + x0..oy * ow + x1];
                let first = x0 * s + dx - 1;
                // as bit masks: with `if`s the compiler keeps branches and scalar code
                let select = |b: &mut f32, k: &mut u32, v: f32| {
                    let take = (((v > *b) as u32) | (v.is_nan() as u32)).wrapping_neg();
                    *b = f32::from_bits((v.to_bits() & take) | (b.to_bits() & !take));
                    *k = (t & take) | (*k & !take);
                };
                if s == 1 {
                    for ((b, k), &v) in b.iter_mut().zip(k.iter_mut()).zip(&row[first..first + (x1 - x0)]) {
                        select(b, k, v);
                    }
                } else {
                    for ((b, k), &v) in b.iter_mut().zip(k.iter_mut()).zip(row[first..].iter().step_by(s)) {
                        select(b, k, v);
                    }
                }
            }
        }
    }
}

/// Outputs `o` in `0..count` for which `o * stride + tap - 1` lies in `0..len` (`tap` in 0..3).
fn valid(count: usize, tap: usize, stride: usize, len: usize) -> (usize, usize) {
    let lo = if tap == 0 { 1 } else { 0 };
    // o * stride + tap - 1 <= len - 1, i.e. o * stride <= len - tap
    if len < tap {
        return (0, 0);
    }
    let hi = ((len - tap) / stride + 1).min(count);
    (lo.min(hi), hi)
}

/// Outputs kept together in registers (one AVX2 vector).
const L: usize = 8;

/// `src` (`h x w`) into `buf` with one `fill` on every side; returns the padded width.
fn pad1(src: &[f32], h: usize, w: usize, fill: f32, buf: &mut Vec<f32>) -> usize {
    let pw = w + 2;
    buf.clear();
    buf.resize((h + 2) * pw, fill);
    for (y, row) in src.chunks_exact(w).take(h).enumerate() {
        buf[(y + 1) * pw + 1..][..w].copy_from_slice(row);
    }
    pw
}

/// PyTorch's running maximum: a larger value or a NaN takes over (as bit masks: with `if`s
/// the compiler keeps branches and scalar code).
#[inline(always)]
fn take_max(b: &mut f32, k: &mut u32, v: f32, t: u32) {
    let take = (((v > *b) as u32) | (v.is_nan() as u32)).wrapping_neg();
    *b = f32::from_bits((v.to_bits() & take) | (b.to_bits() & !take));
    *k = (t & take) | (*k & !take);
}

/// [`plane_max`] at stride 1 over the plane padded with -inf (`p`, width `pw`): a padded tap
/// never takes over, so every window scans its nine taps; a window whose in-bounds values are
/// all -inf keeps its first in-bounds tap, as in PyTorch.
#[inline(always)]
fn plane_max_s1(p: &[f32], pw: usize, h: usize, w: usize, best: &mut [f32], tap: &mut [u32]) {
    for oy in 0..h {
        let rows: [&[f32]; 3] = std::array::from_fn(|dy| &p[(oy + dy) * pw..][..pw]);
        let first_row = if oy == 0 { 3 } else { 0 };
        let (b_row, k_row) = (&mut best[oy * w..][..w], &mut tap[oy * w..][..w]);
        let mut ox = 0;
        while ox + L <= w {
            let mut b = [f32::NEG_INFINITY; L];
            let mut k: [u32; L] = std::array::from_fn(|l| first_row + (ox + l == 0) as u32);
            for (dy, row) in rows.iter().enumerate() {
                for dx in 0..3 {
                    let src = &row[ox + dx..][..L];
                    for l in 0..L {
                        take_max(&mut b[l], &mut k[l], src[l], (3 * dy + dx) as u32);
                    }
                }
            }
            b_row[ox..ox + L].copy_from_slice(&b);
            k_row[ox..ox + L].copy_from_slice(&k);
            ox += L;
        }
        for o in ox..w {
            let (mut b, mut k) = (f32::NEG_INFINITY, first_row + (o == 0) as u32);
            for (dy, row) in rows.iter().enumerate() {
                for dx in 0..3 {
                    take_max(&mut b, &mut k, row[o + dx], (3 * dy + dx) as u32);
                }
            }
            b_row[o] = b;
            k_row[o] = k;
        }
    }
}

/// In-bounds positions of the window centred on `i` along a side of `len`.
fn in_bounds(i: usize, len: usize) -> f32 {
    (3 - (i == 0) as usize - (i + 1 == len) as usize).max(1) as f32
}

/// `out[y][x] = sum of p[y..y + 3][x..x + 3]`, added row by row (PyTorch's order).
///
/// With `p` the plane padded with zeros this is the average pool's window sum; with `p` the
/// padded `grad_out / count`, it is the average pool's input gradient, summed in the order
/// PyTorch's scatter adds it (outputs row by row).
#[inline(always)]
fn box3(p: &[f32], pw: usize, h: usize, w: usize, out: &mut [f32]) {
    for (y, o_row) in out.chunks_exact_mut(w).take(h).enumerate() {
        let rows: [&[f32]; 3] = std::array::from_fn(|dy| &p[(y + dy) * pw..][..pw]);
        let mut x = 0;
        while x + L <= w {
            let mut acc = [0.0f32; L];
            for row in &rows {
                for dx in 0..3 {
                    let src = &row[x + dx..][..L];
                    for l in 0..L {
                        acc[l] += src[l];
                    }
                }
            }
            o_row[x..x + L].copy_from_slice(&acc);
            x += L;
        }
        for (o, v) in o_row.iter_mut().enumerate().skip(x) {
            let mut acc = 0.0f32;
            for row in &rows {
                for dx in 0..3 {
                    acc += row[o + dx];
                }
            }
            *v = acc;
        }
    }
}

pub fn max_forward(x: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut out = vec![0.0f32; g.planes * oh * ow];
    out.par_chunks_mut(oh * ow).enumerate().with_min_len(min_planes(g.h * g.w)).for_each_init(
        || (vec![0u32; oh * ow], Vec::new()),
        |(tap, buf), (p, o)| {
            let plane = &x[p * g.h * g.w..(p + 1) * g.h * g.w];
            if g.stride == 1 {
                let pw = pad1(plane, g.h, g.w, f32::NEG_INFINITY, buf);
                simd_max(buf, pw, g.h, g.w, o, tap);
            } else {
                plane_max(plane, g, o, tap);
            }
        },
    );
    out
}

/// [`plane_max_s1`] compiled for AVX2 when the CPU has it.
fn simd_max(p: &[f32], pw: usize, h: usize, w: usize, best: &mut [f32], tap: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(p: &[f32], pw: usize, h: usize, w: usize, best: &mut [f32], tap: &mut [u32]) {
            plane_max_s1(p, pw, h, w, best, tap)
        }
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { avx2(p, pw, h, w, best, tap) };
    }
    plane_max_s1(p, pw, h, w, best, tap)
}

/// [`box3`] compiled for AVX2 when the CPU has it.
fn simd_box3(p: &[f32], pw: usize, h: usize, w: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn avx2(p: &[f32], pw: usize, h: usize, w: usize, out: &mut [f32]) {
            box3(p, pw, h, w, out)
        }
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { avx2(p, pw, h, w, out) };
    }
    box3(p, pw, h, w, out)
}

pub fn max_backward(x: &[f32], grad_out: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(g.h * g.w).enumerate().with_min_len(min_planes(g.h * g.w)).for_each_init(
        || (vec![0.0f32; oh * ow], vec![0u32; oh * ow], Vec::new()),
        |(best, tap, buf), (p, d)| {
            let plane = &x[p * g.h * g.w..(p + 1) * g.h * g.w];
            if g.stride == 1 {
                let pw = pad1(plane, g.h, g.w, f32::NEG_INFINITY, buf);
                simd_max(buf, pw, g.h, g.w, best, tap);
            } else {
                plane_max(plane, g, best, tap);
            }
            let go = &grad_out[p * oh * ow..(p + 1) * oh * ow];
            for oy in 0..oh {
                for ox in 0..ow {
                    let j = oy * ow + ox;
                    let t = tap[j] as usize;
                    d[(oy * g.stride + t / 3 - 1) * g.w + ox * g.stride + t % 3 - 1] += go[j];
                }
            }
        },
    );
    dx
}

pub fn avg_forward(x: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (rows, cols) = (windows(oh, g.stride, g.h), windows(ow, g.stride, g.w));
    let mut out = vec![0.0f32; g.planes * oh * ow];
    let chunks = out.par_chunks_mut(oh * ow).enumerate().with_min_len(min_planes(g.h * g.w));
    chunks.for_each_init(Vec::new, |buf, (p, o)| {
        let plane = &x[p * g.h * g.w..(p + 1) * g.h * g.w];
        if g.stride == 1 {
            let pw = pad1(plane, g.h, g.w, 0.0, buf);
            simd_box3(buf, pw, g.h, g.w, o);
            for (y, o_row) in o.chunks_exact_mut(g.w).enumerate() {
                let ch = in_bounds(y, g.h);
                for (x, v) in o_row.iter_mut().enumerate() {
                    *v /= ch * in_bounds(x, g.w);
                }
            }
            return;
        }
        for (oy, &(r0, r1)) in rows.iter().enumerate() {
            for (ox, &(c0, c1)) in cols.iter().enumerate() {
                let mut s = 0.0f32;
                for iy in r0..r1 {
                    s += plane[iy * g.w + c0..iy * g.w + c1].iter().sum::<f32>();
                }
                o[oy * ow + ox] = s / ((r1 - r0) * (c1 - c0)) as f32;
            }
        }
    });
    out
}

pub fn avg_backward(grad_out: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (rows, cols) = (windows(oh, g.stride, g.h), windows(ow, g.stride, g.w));
    let mut dx = vec![0.0f32; g.planes * g.h * g.w];
    let chunks = dx.par_chunks_mut(g.h * g.w).enumerate().with_min_len(min_planes(g.h * g.w));
    chunks.for_each_init(Vec::new, |buf, (p, d)| {
        let go = &grad_out[p * oh * ow..(p + 1) * oh * ow];
        if g.stride == 1 {
            // each output's share, padded with zeros, then every input sums its nine
            let pw = g.w + 2;
            buf.clear();
            buf.resize((g.h + 2) * pw, 0.0);
            for (y, g_row) in go.chunks_exact(g.w).enumerate() {
                let ch = in_bounds(y, g.h);
                for (x, &v) in g_row.iter().enumerate() {
                    buf[(y + 1) * pw + x + 1] = v / (ch * in_bounds(x, g.w));
                }
            }
            return simd_box3(buf, pw, g.h, g.w, d);
        }
        for (oy, &(r0, r1)) in rows.iter().enumerate() {
            for (ox, &(c0, c1)) in cols.iter().enumerate() {
                let v = go[oy * ow + ox] / ((r1 - r0) * (c1 - c0)) as f32;
                for iy in r0..r1 {
                    d[iy * g.w + c0..iy * g.w + c1].iter_mut().for_each(|x| *x += v);
                }
            }
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PyTorch's CPU max-pool loop, window by window: index of the first in-bounds position,
    /// value -inf, then every position in row-major order takes over if larger or NaN.
    fn naive_argmax(plane: &[f32], g: &PoolGeom, oy: usize, ox: usize) -> usize {
        let (cy, cx) = (oy * g.stride, ox * g.stride);
        let (r0, r1, c0, c1) = (cy.saturating_sub(1), (cy + 2).min(g.h), cx.saturating_sub(1), (cx + 2).min(g.w));
        let (mut best, mut best_v) = (r0 * g.w + c0, f32::NEG_INFINITY);
        for iy in r0..r1 {
            for ix in c0..c1 {
                let v = plane[iy * g.w + ix];
                if v > best_v || v.is_nan() {
                    best_v = v;
                    best = iy * g.w + ix;
                }
            }
        }
        best
    }

    #[test]
    fn max_pool_picks_the_first_maximum_of_each_window_as_pytorch_does() {
        // (the widths of 8 and more run the stride-1 loops' blocks of 8, and their tails)
        for (h, w, stride) in [
            (1, 1, 1),
            (1, 2, 1),
            (2, 2, 2),
            (3, 1, 2),
            (6, 7, 1),
            (7, 6, 2),
            (8, 8, 2),
            (1, 9, 1),
            (5, 19, 1),
            (9, 16, 1),
        ] {
            let g = PoolGeom { planes: 3, h, w, stride };
            // few distinct values: most windows hold ties; a NaN and -infs in the last plane
            let mut x: Vec<f32> = (0..3 * h * w).map(|i| ((i * 7 + i / 5) % 3) as f32).collect();
            let last = 2 * h * w;
            x[last] = f32::NEG_INFINITY;
            x[last + h * w / 2] = f32::NAN;
            let (oh, ow) = (g.out_h(), g.out_w());
            let go: Vec<f32> = (0..3 * oh * ow).map(|i| 1.0 + i as f32).collect();
            let (out, dx) = (max_forward(&x, &g), max_backward(&x, &go, &g));
            let mut want_dx = vec![0.0f32; x.len()];
            for p in 0..3 {
                let plane = &x[p * h * w..(p + 1) * h * w];
                for oy in 0..oh {
                    for ox in 0..ow {
                        let i = naive_argmax(plane, &g, oy, ox);
                        let (got, want) = (out[(p * oh + oy) * ow + ox], plane[i]);
                        assert!(got == want || (got.is_nan() && want.is_nan()), "{h}x{w} s{stride}: {got} vs {want}");
                        want_dx[p * h * w + i] += go[(p * oh + oy) * ow + ox];
                    }
                }
            }
            assert_eq!(dx, want_dx, "{h}x{w} s{stride}: gradient routed to another position");
        }
    }
}
