//! 3x3 pooling with padding 1 (the DARTS pools) on contiguous NCHW `f32` buffers.
//!
//! Max pooling's backward recomputes each window's argmax from the input instead of storing
//! indices; average pooling divides by the number of in-bounds positions (padding not counted).

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

/// The in-bounds rows (or columns) of the window centred on `o * stride`.
fn window(o: usize, stride: usize, len: usize) -> std::ops::Range<usize> {
    let c = o * stride;
    c.saturating_sub(1)..(c + 2).min(len)
}

/// Index (in the plane) of the first maximum of the window at `(oy, ox)`, as PyTorch picks it.
fn argmax(plane: &[f32], g: &PoolGeom, oy: usize, ox: usize) -> usize {
    let mut best = (usize::MAX, f32::NEG_INFINITY);
    for iy in window(oy, g.stride, g.h) {
        for ix in window(ox, g.stride, g.w) {
            let v = plane[iy * g.w + ix];
            if best.0 == usize::MAX || v > best.1 || v.is_nan() {
                best = (iy * g.w + ix, v);
            }
        }
    }
    best.0
}

pub fn max_forward(x: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut out = vec![0.0f32; g.planes * oh * ow];
    out.par_chunks_mut(oh * ow).enumerate().for_each(|(p, o)| {
        let plane = &x[p * g.h * g.w..(p + 1) * g.h * g.w];
        for oy in 0..oh {
            for ox in 0..ow {
                o[oy * ow + ox] = plane[argmax(plane, g, oy, ox)];
            }
        }
    });
    out
}

pub fn max_backward(x: &[f32], grad_out: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut dx = vec![0.0f32; x.len()];
    dx.par_chunks_mut(g.h * g.w).enumerate().for_each(|(p, d)| {
        let plane = &x[p * g.h * g.w..(p + 1) * g.h * g.w];
        let go = &grad_out[p * oh * ow..(p + 1) * oh * ow];
        for oy in 0..oh {
            for ox in 0..ow {
                d[argmax(plane, g, oy, ox)] += go[oy * ow + ox];
            }
        }
    });
    dx
}

pub fn avg_forward(x: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut out = vec![0.0f32; g.planes * oh * ow];
    out.par_chunks_mut(oh * ow).enumerate().for_each(|(p, o)| {
        let plane = &x[p * g.h * g.w..(p + 1) * g.h * g.w];
        for oy in 0..oh {
            let rows = window(oy, g.stride, g.h);
            for ox in 0..ow {
                let cols = window(ox, g.stride, g.w);
                let mut s = 0.0f32;
                for iy in rows.clone() {
                    for ix in cols.clone() {
                        s += plane[iy * g.w + ix];
                    }
                }
                o[oy * ow + ox] = s / (rows.len() * cols.len()) as f32;
            }
        }
    });
    out
}

pub fn avg_backward(grad_out: &[f32], g: &PoolGeom) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut dx = vec![0.0f32; g.planes * g.h * g.w];
    dx.par_chunks_mut(g.h * g.w).enumerate().for_each(|(p, d)| {
        let go = &grad_out[p * oh * ow..(p + 1) * oh * ow];
        for oy in 0..oh {
            let rows = window(oy, g.stride, g.h);
            for ox in 0..ow {
                let cols = window(ox, g.stride, g.w);
                let v = go[oy * ow + ox] / (rows.len() * cols.len()) as f32;
                for iy in rows.clone() {
                    for ix in cols.clone() {
                        d[iy * g.w + ix] += v;
                    }
                }
            }
        }
    });
    dx
}
