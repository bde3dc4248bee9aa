//! 3x3 pooling with padding 1 (the DARTS pools) on contiguous NCHW `f32` buffers.
//!
//! Max pooling's backward recomputes each window's argmax from the input instead of storing
//! indices; average pooling divides by the number of in-bounds positions (padding not counted).

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

pub fn max_forward(x: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut out = vec![0.0f32; g.planes * oh * ow];
    out.par_chunks_mut(oh * ow).enumerate().with_min_len(min_planes(g.h * g.w)).for_each_init(
        || vec![0u32; oh * ow],
        |tap, (p, o)| plane_max(&x[p * g.h * g.w..(p + 1) * g.h * g.w], g, o, tap),
    );
    out
}

pub fn max_backward(x: &[f32], grad_out: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(g.h * g.w).enumerate().with_min_len(min_planes(g.h * g.w)).for_each_init(
        || (vec![0.0f32; oh * ow], vec![0u32; oh * ow]),
        |(best, tap), (p, d)| {
            plane_max(&x[p * g.h * g.w..(p + 1) * g.h * g.w], g, best, tap);
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
    out.par_chunks_mut(oh * ow).enumerate().with_min_len(min_planes(g.h * g.w)).for_each(|(p, o)| {
        let plane = &x[p * g.h * g.w..(p + 1) * g.h * g.w];
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
    dx.par_chunks_mut(g.h * g.w).enumerate().with_min_len(min_planes(g.h * g.w)).for_each(|(p, d)| {
        let go = &grad_out[p * oh * ow..(p + 1) * oh * ow];
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
        for (h, w, stride) in [(1, 1, 1), (1, 2, 1), (2, 2, 2), (3, 1, 2), (6, 7, 1), (7, 6, 2), (8, 8, 2)] {
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
