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

/// Outputs kept together in registers (one AVX2 vector).
const L: usize = 8;

/// Where a padded plane's taps lie: padded row `r` starts at `r * pw`, and the windows of the
/// outputs `ox..` of a row read tap column `dx` from `col[dx] + ox` on.
#[derive(Debug, Clone, Copy)]
struct Padded {
    pw: usize,
    stride: usize,
    col: [usize; 3],
}

/// `src` (`h x w`) with one `fill` on every side into `buf`. At stride `s > 1` every padded
/// row is stored by column phase (the columns `c` with `c % s == 0`, then `1`, ...): a tap's
/// columns for consecutive outputs become contiguous.
///
/// Only the interior is written when `buf` already holds this layout (same length, `fill` in
/// its first cell, which is always border): the previous plane of the same kernel call.
fn pad1(src: &[f32], h: usize, w: usize, fill: f32, stride: usize, buf: &mut Vec<f32>) -> Padded {
    let pw = w + 2;
    let len = (h + 2) * pw;
    if buf.len() != len || buf[0].to_bits() != fill.to_bits() {
        buf.clear();
        buf.resize(len, fill);
    }
    // where each phase starts within a row (stride 1 or 2)
    assert!(stride == 1 || stride == 2, "3x3 pools have stride 1 or 2");
    let start = [0, pw.div_ceil(2)];
    for (y, row) in src.chunks_exact(w).take(h).enumerate() {
        let dst = &mut buf[(y + 1) * pw..][..pw];
        if stride == 1 {
            dst[1..=w].copy_from_slice(row);
        } else {
            // padded column c = x + 1: odd x to the even phase, even x to the odd phase
            let (even, odd) = dst.split_at_mut(start[1]);
            for (o, &v) in even[1..].iter_mut().zip(row.iter().skip(1).step_by(2)) {
                *o = v;
            }
            for (o, &v) in odd.iter_mut().zip(row.iter().step_by(2)) {
                *o = v;
            }
        }
    }
    Padded { pw, stride, col: std::array::from_fn(|dx| if stride == 1 { dx } else { start[dx % 2] + dx / 2 }) }
}

/// PyTorch's running maximum: a larger value or a NaN takes over (as bit masks: with `if`s
/// the compiler keeps branches and scalar code).
#[inline(always)]
fn take_max(b: &mut f32, k: &mut u32, v: f32, t: u32) {
    let take = (((v > *b) as u32) | (v.is_nan() as u32)).wrapping_neg();
    *b = f32::from_bits((v.to_bits() & take) | (b.to_bits() & !take));
    *k = (t & take) | (*k & !take);
}

/// [`plane_max`] over the plane padded with -inf (see [`pad1`]): a padded tap never takes
/// over, so every window scans its nine taps; a window whose in-bounds values are all -inf
/// keeps its first in-bounds tap, as in PyTorch. Blocks of [`L`] outputs stay in registers.
#[inline(always)]
fn plane_max_blocked(p: &[f32], lay: Padded, oh: usize, ow: usize, best: &mut [f32], tap: &mut [u32]) {
    let Padded { pw, stride, col } = lay;
    for oy in 0..oh {
        let rows: [&[f32]; 3] = std::array::from_fn(|dy| &p[(stride * oy + dy) * pw..][..pw]);
        let first_row = if oy == 0 { 3 } else { 0 };
        let (b_row, k_row) = (&mut best[oy * ow..][..ow], &mut tap[oy * ow..][..ow]);
        let mut ox = 0;
        while ox + L <= ow {
            let mut b = [f32::NEG_INFINITY; L];
            let mut k: [u32; L] = std::array::from_fn(|l| first_row + (ox + l == 0) as u32);
            for (dy, row) in rows.iter().enumerate() {
                for (dx, &c) in col.iter().enumerate() {
                    let src = &row[c + ox..][..L];
                    for l in 0..L {
                        take_max(&mut b[l], &mut k[l], src[l], (3 * dy + dx) as u32);
                    }
                }
            }
            b_row[ox..ox + L].copy_from_slice(&b);
            k_row[ox..ox + L].copy_from_slice(&k);
            ox += L;
        }
        for o in ox..ow {
            let (mut b, mut k) = (f32::NEG_INFINITY, first_row + (o == 0) as u32);
            for (dy, row) in rows.iter().enumerate() {
                for (dx, &c) in col.iter().enumerate() {
                    take_max(&mut b, &mut k, row[c + o], (3 * dy + dx) as u32);
                }
            }
            b_row[o] = b;
            k_row[o] = k;
        }
    }
}

/// In-bounds positions of the window centred on `c` along a side of `len`.
fn in_bounds(c: usize, len: usize) -> f32 {
    ((c + 2).min(len) - c.saturating_sub(1)) as f32
}

/// `out[y][x] = sum of the 3x3 window of output (y, x)` in the padded plane (see [`pad1`]),
/// added row by row (PyTorch's order).
///
/// With the plane padded with zeros this is the average pool's window sum; at stride 1 with
/// the padded `grad_out / count`, it is the average pool's input gradient, summed in the order
/// PyTorch's scatter adds it (outputs row by row).
#[inline(always)]
fn box3(p: &[f32], lay: Padded, oh: usize, ow: usize, out: &mut [f32]) {
    let Padded { pw, stride, col } = lay;
    for (y, o_row) in out.chunks_exact_mut(ow).take(oh).enumerate() {
        let rows: [&[f32]; 3] = std::array::from_fn(|dy| &p[(stride * y + dy) * pw..][..pw]);
        let mut x = 0;
        while x + L <= ow {
            let mut acc = [0.0f32; L];
            for row in &rows {
                for &c in &col {
                    let src = &row[c + x..][..L];
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
                for &c in &col {
                    acc += row[c + o];
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
            let lay = pad1(&x[p * g.h * g.w..(p + 1) * g.h * g.w], g.h, g.w, f32::NEG_INFINITY, g.stride, buf);
            simd!(plane_max_blocked(buf, lay, oh, ow, o, tap));
        },
    );
    out
}

pub fn max_backward(x: &[f32], grad_out: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(g.h * g.w).enumerate().with_min_len(min_planes(g.h * g.w)).for_each_init(
        || (vec![0.0f32; oh * ow], vec![0u32; oh * ow], Vec::new()),
        |(best, tap, buf), (p, d)| {
            let lay = pad1(&x[p * g.h * g.w..(p + 1) * g.h * g.w], g.h, g.w, f32::NEG_INFINITY, g.stride, buf);
            simd!(plane_max_blocked(buf, lay, oh, ow, best, tap));
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
    let mut out = vec![0.0f32; g.planes * oh * ow];
    let chunks = out.par_chunks_mut(oh * ow).enumerate().with_min_len(min_planes(g.h * g.w));
    chunks.for_each_init(Vec::new, |buf, (p, o)| {
        let lay = pad1(&x[p * g.h * g.w..(p + 1) * g.h * g.w], g.h, g.w, 0.0, g.stride, buf);
        simd!(box3(buf, lay, oh, ow, o));
        for (y, o_row) in o.chunks_exact_mut(ow).enumerate() {
            let ch = in_bounds(y * g.stride, g.h);
            for (x, v) in o_row.iter_mut().enumerate() {
                *v /= ch * in_bounds(x * g.stride, g.w);
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
            let lay = pad1(go, g.h, g.w, 0.0, 1, buf);
            for (y, row) in buf.chunks_exact_mut(lay.pw).skip(1).take(g.h).enumerate() {
                let ch = in_bounds(y, g.h);
                for (x, v) in row[1..=g.w].iter_mut().enumerate() {
                    *v /= ch * in_bounds(x, g.w);
                }
            }
            return simd!(box3(buf, lay, g.h, g.w, d));
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

/// The same loops compiled for AVX2.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Padded;

    #[target_feature(enable = "avx2")]
    pub fn plane_max_blocked(p: &[f32], lay: Padded, oh: usize, ow: usize, best: &mut [f32], tap: &mut [u32]) {
        super::plane_max_blocked(p, lay, oh, ow, best, tap)
    }

    #[target_feature(enable = "avx2")]
    pub fn box3(p: &[f32], lay: Padded, oh: usize, ow: usize, out: &mut [f32]) {
        super::box3(p, lay, oh, ow, out)
    }
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
        // (8 outputs a row and more run the blocks of 8, and their tails)
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
            (5, 19, 2),
            (4, 32, 2),
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
