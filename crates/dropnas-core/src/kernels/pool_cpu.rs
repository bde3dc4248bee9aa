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

/// Index (in the plane) of the first maximum of a window, as PyTorch picks it (a NaN wins).
#[inline]
fn argmax(plane: &[f32], w: usize, rows: (usize, usize), cols: (usize, usize)) -> usize {
    let mut best = rows.0 * w + cols.0;
    let mut best_v = plane[best];
    for iy in rows.0..rows.1 {
        for ix in cols.0..cols.1 {
            let i = iy * w + ix;
            let v = plane[i];
            // branch-free select: data-dependent branches mispredict on every other window
            let take = (v > best_v) | v.is_nan();
            best = if take { i } else { best };
            best_v = if take { v } else { best_v };
        }
    }
    best
}

pub fn max_forward(x: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (rows, cols) = (windows(oh, g.stride, g.h), windows(ow, g.stride, g.w));
    let mut out = vec![0.0f32; g.planes * oh * ow];
    out.par_chunks_mut(oh * ow).enumerate().with_min_len(min_planes(g.h * g.w)).for_each(|(p, o)| {
        let plane = &x[p * g.h * g.w..(p + 1) * g.h * g.w];
        for (oy, &r) in rows.iter().enumerate() {
            for (ox, &c) in cols.iter().enumerate() {
                o[oy * ow + ox] = plane[argmax(plane, g.w, r, c)];
            }
        }
    });
    out
}

pub fn max_backward(x: &[f32], grad_out: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let (rows, cols) = (windows(oh, g.stride, g.h), windows(ow, g.stride, g.w));
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(g.h * g.w).enumerate().with_min_len(min_planes(g.h * g.w)).for_each(|(p, d)| {
        let plane = &x[p * g.h * g.w..(p + 1) * g.h * g.w];
        let go = &grad_out[p * oh * ow..(p + 1) * oh * ow];
        for (oy, &r) in rows.iter().enumerate() {
            for (ox, &c) in cols.iter().enumerate() {
                d[argmax(plane, g.w, r, c)] += go[oy * ow + ox];
            }
        }
    });
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
