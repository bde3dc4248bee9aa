//! Depthwise 2-D convolution on contiguous NCHW `f32` buffers: forward and both gradients.
//!
//! Depthwise convolutions (groups = channels) are most of a DARTS cell's arithmetic and the
//! CPU backend's generic convolution backward is slow on them (a transposed convolution and a
//! weight-gradient convolution through copies). These loops walk one `(n, c)` plane at a time,
//! tap by tap, so that the innermost loop is a contiguous axpy the compiler vectorises.
//!
//! Square 3x3 and 5x5 kernels at stride 1 or 2 (every DARTS op) take the faster loops of
//! [`super::depthwise_padded`] instead; these general loops serve the other shapes (7x7, odd
//! paddings).

use super::depthwise_padded::Padded;
use super::lanes::dot;
use super::{min_planes, par_fill};
use rayon::prelude::*;

/// Shape and hyper-parameters of one depthwise convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DwGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl DwGeom {
    pub fn out_h(&self) -> usize {
        (self.h + 2 * self.padding[0] - self.dilation[0] * (self.kh - 1) - 1) / self.stride[0] + 1
    }

    pub fn out_w(&self) -> usize {
        (self.w + 2 * self.padding[1] - self.dilation[1] * (self.kw - 1) - 1) / self.stride[1] + 1
    }
}

/// Output positions `o` in `0..count` whose input `o * s + off` lies in `0..len`.
fn valid_range(count: usize, off: isize, s: usize, len: usize) -> (usize, usize) {
    let s = s as isize;
    let lo = if off >= 0 { 0 } else { ((-off) + s - 1) / s };
    let last = len as isize - 1 - off;
    let hi = if last < 0 { 0 } else { (last / s + 1).min(count as isize) };
    if lo >= hi { (0, 0) } else { (lo as usize, hi as usize) }
}

/// For every tap `(ky, kx)` of the kernel: the input offsets and the valid output ranges.
struct Tap {
    index: usize,
    y_off: isize,
    x_off: isize,
    oy: (usize, usize),
    ox: (usize, usize),
}

fn taps(g: &DwGeom) -> Vec<Tap> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let mut v = Vec::with_capacity(g.kh * g.kw);
    for ky in 0..g.kh {
        let y_off = (ky * g.dilation[0]) as isize - g.padding[0] as isize;
        let oy = valid_range(oh, y_off, g.stride[0], g.h);
        for kx in 0..g.kw {
            let x_off = (kx * g.dilation[1]) as isize - g.padding[1] as isize;
            let ox = valid_range(ow, x_off, g.stride[1], g.w);
            // a tap that only ever sees padding contributes nothing
            if oy.0 < oy.1 && ox.0 < ox.1 {
                v.push(Tap { index: ky * g.kw + kx, y_off, x_off, oy, ox });
            }
        }
    }
    v
}

/// `relu(x)` of one input plane into `buf` (which stays in cache), or the plane itself.
fn input_plane<'a>(x: &'a [f32], plane: usize, g: &DwGeom, relu: bool, buf: &'a mut Vec<f32>) -> &'a [f32] {
    let xin = &x[plane * g.h * g.w..(plane + 1) * g.h * g.w];
    if !relu {
        return xin;
    }
    buf.clear();
    buf.extend(xin.iter().map(|&v| v.max(0.0)));
    buf
}

/// `out[n, c] = sum over taps of w[c, tap] * shifted x[n, c]`, of `relu(x)` when `relu`.
pub fn forward(x: &[f32], weight: &[f32], g: &DwGeom, relu: bool) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let taps = taps(g);
    let [sy, sx] = g.stride;
    let fast = Padded::of(g);
    par_fill(g.n * g.c * oh * ow, oh * ow, min_planes(g.h * g.w), |plane, o, buf| {
        let ch = plane % g.c;
        let wk = &weight[ch * g.kh * g.kw..(ch + 1) * g.kh * g.kw];
        if let Some(pd) = &fast {
            return pd.forward_plane(&x[plane * g.h * g.w..(plane + 1) * g.h * g.w], relu, wk, o, buf);
        }
        // the general loops add tap by tap
        o.fill(0.0);
        let xin = input_plane(x, plane, g, relu, buf);
        for t in &taps {
            let wv = wk[t.index];
            for oy in t.oy.0..t.oy.1 {
                let iy = (oy * sy) as isize + t.y_off;
                let row_in = &xin[iy as usize * g.w..(iy as usize + 1) * g.w];
                let row_out = &mut o[oy * ow..(oy + 1) * ow];
                if sx == 1 {
                    let start = (t.ox.0 as isize + t.x_off) as usize;
                    let len = t.ox.1 - t.ox.0;
                    for (out, &inp) in row_out[t.ox.0..t.ox.1].iter_mut().zip(&row_in[start..start + len]) {
                        *out += wv * inp;
                    }
                } else {
                    for ox in t.ox.0..t.ox.1 {
                        row_out[ox] += wv * row_in[((ox * sx) as isize + t.x_off) as usize];
                    }
                }
            }
        }
    })
}

/// Gradient with respect to the input: every output gradient scattered back through its taps.
/// With `relu_of = Some(x)` the convolution's input was `relu(x)`, and the gradient is that of
/// `x` (zero where `x <= 0`).
pub fn backward_input(grad_out: &[f32], weight: &[f32], g: &DwGeom, relu_of: Option<&[f32]>) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let taps = taps(g);
    let [sy, sx] = g.stride;
    let fast = Padded::of(g);
    par_fill(g.n * g.c * g.h * g.w, g.h * g.w, min_planes(g.h * g.w), |plane, d, buf| {
        let ch = plane % g.c;
        let go = &grad_out[plane * oh * ow..(plane + 1) * oh * ow];
        let wk = &weight[ch * g.kh * g.kw..(ch + 1) * g.kh * g.kw];
        match &fast {
            Some(pd) => pd.backward_input_plane(go, wk, d, buf),
            None => {
                // the general loops scatter tap by tap
                d.fill(0.0);
                for t in &taps {
                    let wv = wk[t.index];
                    for oy in t.oy.0..t.oy.1 {
                        let iy = ((oy * sy) as isize + t.y_off) as usize;
                        let row_go = &go[oy * ow..(oy + 1) * ow];
                        let row_d = &mut d[iy * g.w..(iy + 1) * g.w];
                        if sx == 1 {
                            let start = (t.ox.0 as isize + t.x_off) as usize;
                            let len = t.ox.1 - t.ox.0;
                            for (dv, &gv) in row_d[start..start + len].iter_mut().zip(&row_go[t.ox.0..t.ox.1]) {
                                *dv += wv * gv;
                            }
                        } else {
                            for ox in t.ox.0..t.ox.1 {
                                row_d[((ox * sx) as isize + t.x_off) as usize] += wv * row_go[ox];
                            }
                        }
                    }
                }
            }
        }
        if let Some(x) = relu_of {
            // ReLU's backward, PyTorch's convention: no gradient where the input is <= 0
            for (dv, &xv) in d.iter_mut().zip(&x[plane * g.h * g.w..(plane + 1) * g.h * g.w]) {
                *dv = if xv > 0.0 { *dv } else { 0.0 };
            }
        }
    })
}

/// Gradient with respect to the weight: per channel and tap, the correlation of the output
/// gradient with the shifted input (`relu(x)` when `relu`), summed over the batch (rows summed
/// in `f32`, then in `f64`).
pub fn backward_weight(x: &[f32], grad_out: &[f32], g: &DwGeom, relu: bool) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let taps = taps(g);
    let [sy, sx] = g.stride;
    let mut dw = vec![0.0f32; g.c * g.kh * g.kw];
    let fast = Padded::of(g);
    let chunks = dw.par_chunks_mut(g.kh * g.kw).enumerate().with_min_len(min_planes(g.n * g.h * g.w));
    chunks.for_each_init(Vec::new, |buf, (ch, dk)| {
        let mut acc = vec![0.0f64; g.kh * g.kw];
        for n in 0..g.n {
            let plane = n * g.c + ch;
            let go = &grad_out[plane * oh * ow..(plane + 1) * oh * ow];
            if let Some(pd) = &fast {
                pd.backward_weight_plane(&x[plane * g.h * g.w..(plane + 1) * g.h * g.w], relu, go, &mut acc, buf);
                continue;
            }
            let xin = input_plane(x, plane, g, relu, buf);
            for t in &taps {
                let mut sum = 0.0f64;
                for oy in t.oy.0..t.oy.1 {
                    let iy = ((oy * sy) as isize + t.y_off) as usize;
                    let row_in = &xin[iy * g.w..(iy + 1) * g.w];
                    let row_go = &go[oy * ow..(oy + 1) * ow];
                    let mut row = 0.0f32;
                    if sx == 1 {
                        let start = (t.ox.0 as isize + t.x_off) as usize;
                        let len = t.ox.1 - t.ox.0;
                        row = dot(&row_go[t.ox.0..t.ox.1], &row_in[start..start + len]);
                    } else {
                        for ox in t.ox.0..t.ox.1 {
                            row += row_go[ox] * row_in[((ox * sx) as isize + t.x_off) as usize];
                        }
                    }
                    sum += row as f64;
                }
                acc[t.index] += sum;
            }
        }
        for (d, a) in dk.iter_mut().zip(acc) {
            *d = a as f32;
        }
    });
    dw
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct definition of the depthwise convolution, for checking the fast loops.
    fn naive(x: &[f32], w: &[f32], g: &DwGeom) -> Vec<f32> {
        let (oh, ow) = (g.out_h(), g.out_w());
        let mut out = vec![0.0f32; g.n * g.c * oh * ow];
        for n in 0..g.n {
            for c in 0..g.c {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let mut s = 0.0;
                        for ky in 0..g.kh {
                            for kx in 0..g.kw {
                                let iy = (oy * g.stride[0] + ky * g.dilation[0]) as isize - g.padding[0] as isize;
                                let ix = (ox * g.stride[1] + kx * g.dilation[1]) as isize - g.padding[1] as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                    s += w[(c * g.kh + ky) * g.kw + kx]
                                        * x[((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize];
                                }
                            }
                        }
                        out[((n * g.c + c) * oh + oy) * ow + ox] = s;
                    }
                }
            }
        }
        out
    }

    /// The input gradient by its definition, scattered tap by tap (the general loops' order).
    fn naive_input_grad(go: &[f32], w: &[f32], g: &DwGeom) -> Vec<f32> {
        let (oh, ow) = (g.out_h(), g.out_w());
        let mut dx = vec![0.0f32; g.n * g.c * g.h * g.w];
        for n in 0..g.n {
            for c in 0..g.c {
                for ky in 0..g.kh {
                    for kx in 0..g.kw {
                        for oy in 0..oh {
                            for ox in 0..ow {
                                let iy = (oy * g.stride[0] + ky * g.dilation[0]) as isize - g.padding[0] as isize;
                                let ix = (ox * g.stride[1] + kx * g.dilation[1]) as isize - g.padding[1] as isize;
                                if iy >= 0 && ix >= 0 && (iy as usize) < g.h && (ix as usize) < g.w {
                                    dx[((n * g.c + c) * g.h + iy as usize) * g.w + ix as usize] +=
                                        w[(c * g.kh + ky) * g.kw + kx] * go[((n * g.c + c) * oh + oy) * ow + ox];
                                }
                            }
                        }
                    }
                }
            }
        }
        dx
    }

    fn pseudo(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn loops_match_the_definition_and_its_adjoints() {
        for (k, s, p, d, side) in [
            (3, 1, 1, 1, 8),
            (3, 2, 1, 1, 8),
            (5, 1, 2, 1, 7),
            (5, 2, 2, 1, 8),
            (3, 1, 2, 2, 8),
            (5, 2, 4, 2, 8),
            (5, 1, 4, 2, 4),
            (3, 2, 2, 2, 5),
            (5, 1, 4, 2, 2),
            (5, 2, 4, 2, 2),
            (3, 1, 2, 2, 1),
            // stride 1 over two blocks of 8 outputs and a tail
            (3, 1, 1, 1, 19),
            (5, 1, 4, 2, 19),
            (5, 1, 2, 1, 16),
            // stride 2 likewise (column phases of even and odd widths)
            (3, 2, 1, 1, 19),
            (5, 2, 2, 1, 33),
            (5, 2, 4, 2, 20),
            (3, 2, 2, 2, 17),
            // the general loops: a 7x7 kernel, a padding wider than the kernel
            (7, 1, 3, 1, 9),
            (7, 2, 3, 1, 9),
            (3, 1, 3, 1, 6),
        ] {
            let g = DwGeom {
                n: 2,
                c: 3,
                h: side,
                w: side,
                kh: k,
                kw: k,
                stride: [s, s],
                padding: [p, p],
                dilation: [d, d],
            };
            let x = pseudo(g.n * g.c * g.h * g.w, 1);
            let w = pseudo(g.c * k * k, 2);
            let out = forward(&x, &w, &g, false);
            let want = naive(&x, &w, &g);
            // the loops (general or over a padded plane) add the taps in the definition's order
            assert_eq!(out, want, "forward k{k} s{s} p{p} d{d} side {side}");
            // <grad_out, conv(x, w)> = <backward_input(grad_out), x> = <backward_weight(x, grad_out), w>
            let go = pseudo(out.len(), 3);
            let lhs: f64 = go.iter().zip(&out).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
            let dx = backward_input(&go, &w, &g, None);
            assert_eq!(dx, naive_input_grad(&go, &w, &g), "input gradient k{k} s{s} p{p} d{d} side {side}");
            let dw = backward_weight(&x, &go, &g, false);
            let via_x: f64 = dx.iter().zip(&x).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
            let via_w: f64 = dw.iter().zip(&w).map(|(a, b)| (*a as f64) * (*b as f64)).sum();
            assert!((lhs - via_x).abs() < 1e-3, "input adjoint k{k} s{s}: {lhs} vs {via_x}");
            assert!((lhs - via_w).abs() < 1e-3, "weight adjoint k{k} s{s}: {lhs} vs {via_w}");

            // relu fused on read: exactly the loops run on relu(x), and the input gradient masked
            let rx: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
            assert_eq!(forward(&x, &w, &g, true), forward(&rx, &w, &g, false), "relu forward k{k} s{s}");
            assert_eq!(backward_weight(&x, &go, &g, true), backward_weight(&rx, &go, &g, false), "relu dw k{k} s{s}");
            let masked: Vec<f32> = dx.iter().zip(&x).map(|(&d, &v)| if v > 0.0 { d } else { 0.0 }).collect();
            assert_eq!(backward_input(&go, &w, &g, Some(&x)), masked, "relu dx k{k} s{s}");
        }
    }
}
