//! Depthwise loops over a zero-padded copy of one plane, specialised for square 3x3 and 5x5
//! kernels at stride 1 or 2 (every depthwise convolution of a DARTS cell).
//!
//! The general loops of [`super::depthwise_cpu`] walk tap by tap and read and write every
//! output row once per tap, with bounds worked out per tap. Here the forward and the stride-1
//! input gradient sum each block of [`L`] outputs over all taps in registers and store it
//! once, and the padding makes every tap's load unconditional. At stride 2 each padded row is
//! stored by column phase (even columns, then odd ones), so that the inputs a tap reads for
//! consecutive outputs are contiguous too. The taps are added in the same order, starting
//! from zero, as in the general loops (padding adds exact zeros): the forward and the input
//! gradient are the same numbers. The weight gradient sums each plane in lanes, which moves it
//! by a rounding error.
//!
//! Each loop is compiled twice, plainly and for AVX2 (chosen at run time): without it, x86-64
//! code is limited to 128-bit vectors. No fused multiply-add is used, so both give the same
//! results.

use super::depthwise_cpu::DwGeom;

/// Outputs summed together in registers (one AVX2 vector).
const L: usize = 8;

/// A depthwise convolution the specialised loops handle, and the layout of its padded planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Padded {
    k: usize,
    dilation: usize,
    padding: usize,
    stride: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    /// Width of a padded row.
    pw: usize,
    /// Where each column phase starts within a padded row (one phase at stride 1).
    phase: [usize; 2],
}

/// Where the loops read: padded row `r` starts at `r * pw`; the outputs `ox..` of a row read
/// kernel column `kx` from `cols[kx] + ox` on.
#[derive(Debug, Clone, Copy)]
struct Taps {
    pw: usize,
    stride: usize,
    dilation: usize,
    cols: [usize; 5],
}

impl Padded {
    /// `Some` for stride 1 or 2, a square 3x3 or 5x5 kernel, equal dilations, strides and
    /// paddings, and a padding no larger than the kernel's span (true of every DARTS op).
    pub fn of(g: &DwGeom) -> Option<Self> {
        let square = g.kh == g.kw
            && g.dilation[0] == g.dilation[1]
            && g.padding[0] == g.padding[1]
            && g.stride[0] == g.stride[1];
        let span = g.dilation[0] * (g.kh.max(1) - 1);
        let stride = g.stride[0];
        if !square || !(g.kh == 3 || g.kh == 5) || !(stride == 1 || stride == 2) || g.padding[0] > span {
            return None;
        }
        let pw = g.w + 2 * g.padding[0];
        Some(Self {
            k: g.kh,
            dilation: g.dilation[0],
            padding: g.padding[0],
            stride,
            h: g.h,
            w: g.w,
            oh: g.out_h(),
            ow: g.out_w(),
            pw,
            phase: [0, if stride == 2 { pw.div_ceil(2) } else { 0 }],
        })
    }

    fn span(&self) -> usize {
        self.dilation * (self.k - 1)
    }

    /// Position of padded column `c` within its row.
    fn col(&self, c: usize) -> usize {
        if self.stride == 1 { c } else { self.phase[c % 2] + c / 2 }
    }

    fn taps(&self) -> Taps {
        let cols = std::array::from_fn(|kx| if kx < self.k { self.col(kx * self.dilation) } else { 0 });
        Taps { pw: self.pw, stride: self.stride, dilation: self.dilation, cols }
    }

    /// The plane `x` (`relu(x)` when `relu`) padded into `buf`, by column phase at stride 2.
    fn pad_input(&self, x: &[f32], relu: bool, buf: &mut Vec<f32>) {
        let (p, pw) = (self.padding, self.pw);
        buf.clear();
        buf.resize((self.h + 2 * p) * pw, 0.0);
        for (y, row) in x.chunks_exact(self.w).take(self.h).enumerate() {
            let dst = &mut buf[(y + p) * pw..][..pw];
            match (self.stride, relu) {
                (1, false) => dst[p..p + self.w].copy_from_slice(row),
                (1, true) => dst[p..p + self.w].iter_mut().zip(row).for_each(|(o, &v)| *o = v.max(0.0)),
                _ => {
                    for (x, &v) in row.iter().enumerate() {
                        dst[self.col(x + p)] = if relu { v.max(0.0) } else { v };
                    }
                }
            }
        }
    }

    /// One output plane from one input plane `x` (`relu(x)` when `relu`).
    pub fn forward_plane(&self, x: &[f32], relu: bool, wk: &[f32], out: &mut [f32], scratch: &mut Vec<f32>) {
        self.pad_input(x, relu, scratch);
        let t = self.taps();
        match self.k {
            3 => simd!(forward_rows::<3>(scratch, t, wk, self.oh, self.ow, out)),
            _ => simd!(forward_rows::<5>(scratch, t, wk, self.oh, self.ow, out)),
        }
    }

    /// One input-gradient plane from one output-gradient plane (the ReLU's mask, if any, is
    /// the caller's).
    pub fn backward_input_plane(&self, grad_out: &[f32], wk: &[f32], dx: &mut [f32], scratch: &mut Vec<f32>) {
        let d = self.dilation;
        if self.stride == 1 {
            // the output gradient padded so that input position i reads rows i .. i + span
            let q = self.span() - self.padding;
            let gw = self.ow + 2 * q;
            scratch.clear();
            scratch.resize((self.oh + 2 * q) * gw, 0.0);
            for (y, row) in grad_out.chunks_exact(self.ow).take(self.oh).enumerate() {
                scratch[(y + q) * gw + q..][..self.ow].copy_from_slice(row);
            }
            match self.k {
                3 => simd!(backward_input_rows::<3>(scratch, gw, wk, d, self.h, self.w, dx)),
                _ => simd!(backward_input_rows::<5>(scratch, gw, wk, d, self.h, self.w, dx)),
            }
        } else {
            // scattered tap by tap into a padded plane whose rows are split by column phase,
            // where each tap's targets for consecutive outputs are contiguous
            let p = self.padding;
            scratch.clear();
            scratch.resize((self.h + 2 * p) * self.pw, 0.0);
            let t = self.taps();
            match self.k {
                3 => simd!(scatter_rows::<3>(scratch, t, wk, self.oh, self.ow, grad_out)),
                _ => simd!(scatter_rows::<5>(scratch, t, wk, self.oh, self.ow, grad_out)),
            }
            for (y, row) in dx.chunks_exact_mut(self.w).take(self.h).enumerate() {
                let src = &scratch[(y + p) * self.pw..][..self.pw];
                for (x, v) in row.iter_mut().enumerate() {
                    *v = src[self.col(x + p)];
                }
            }
        }
    }

    /// Adds one plane's weight gradient, per tap, to `acc` (`k * k` sums).
    pub fn backward_weight_plane(
        &self,
        x: &[f32],
        relu: bool,
        grad_out: &[f32],
        acc: &mut [f64],
        scratch: &mut Vec<f32>,
    ) {
        self.pad_input(x, relu, scratch);
        let t = self.taps();
        match self.k {
            3 => simd!(backward_weight_rows::<3>(scratch, t, grad_out, self.oh, self.ow, acc)),
            _ => simd!(backward_weight_rows::<5>(scratch, t, grad_out, self.oh, self.ow, acc)),
        }
    }
}

/// `out[oy][ox] = sum over (ky, kx) of w[ky][kx] * p[s*oy + ky*d][cols[kx] + ox]`, taps in
/// order.
#[inline(always)]
fn forward_rows<const K: usize>(p: &[f32], t: Taps, wk: &[f32], oh: usize, ow: usize, out: &mut [f32]) {
    let wk = &wk[..K * K];
    let cols = &t.cols[..K];
    for (oy, out_row) in out.chunks_exact_mut(ow).take(oh).enumerate() {
        let rows: [&[f32]; K] = std::array::from_fn(|ky| &p[(t.stride * oy + ky * t.dilation) * t.pw..][..t.pw]);
        let mut ox = 0;
        while ox + L <= ow {
            let mut acc = [0.0f32; L];
            for (ky, row) in rows.iter().enumerate() {
                for (kx, &c) in cols.iter().enumerate() {
                    let wv = wk[ky * K + kx];
                    let src = &row[c + ox..][..L];
                    for l in 0..L {
                        acc[l] += wv * src[l];
                    }
                }
            }
            out_row[ox..ox + L].copy_from_slice(&acc);
            ox += L;
        }
        for (o, v) in out_row.iter_mut().enumerate().skip(ox) {
            let mut acc = 0.0f32;
            for (ky, row) in rows.iter().enumerate() {
                for (kx, &c) in cols.iter().enumerate() {
                    acc += wk[ky * K + kx] * row[c + o];
                }
            }
            *v = acc;
        }
    }
}

/// Stride 1: `dx[iy][ix] = sum over (ky, kx) of w[ky][kx] * g[iy + span - ky*d][ix + span -
/// kx*d]` (`g` the padded output gradient), taps in order.
#[inline(always)]
fn backward_input_rows<const K: usize>(g: &[f32], gw: usize, wk: &[f32], d: usize, h: usize, w: usize, dx: &mut [f32]) {
    let wk = &wk[..K * K];
    let span = d * (K - 1);
    for (iy, dx_row) in dx.chunks_exact_mut(w).take(h).enumerate() {
        let rows: [&[f32]; K] = std::array::from_fn(|ky| &g[(iy + span - ky * d) * gw..][..gw]);
        let mut ix = 0;
        while ix + L <= w {
            let mut acc = [0.0f32; L];
            for (ky, row) in rows.iter().enumerate() {
                for kx in 0..K {
                    let wv = wk[ky * K + kx];
                    let src = &row[ix + span - kx * d..][..L];
                    for l in 0..L {
                        acc[l] += wv * src[l];
                    }
                }
            }
            dx_row[ix..ix + L].copy_from_slice(&acc);
            ix += L;
        }
        for (i, v) in dx_row.iter_mut().enumerate().skip(ix) {
            let mut acc = 0.0f32;
            for (ky, row) in rows.iter().enumerate() {
                for kx in 0..K {
                    acc += wk[ky * K + kx] * row[i + span - kx * d];
                }
            }
            *v = acc;
        }
    }
}

/// `p[s*oy + ky*d][cols[kx] + ox] += w[ky][kx] * g[oy][ox]`, tap by tap (the general loops'
/// order).
#[inline(always)]
fn scatter_rows<const K: usize>(p: &mut [f32], t: Taps, wk: &[f32], oh: usize, ow: usize, g: &[f32]) {
    let wk = &wk[..K * K];
    for ky in 0..K {
        for (kx, &c) in t.cols[..K].iter().enumerate() {
            let wv = wk[ky * K + kx];
            for (oy, g_row) in g.chunks_exact(ow).take(oh).enumerate() {
                let dst = &mut p[(t.stride * oy + ky * t.dilation) * t.pw + c..][..ow];
                for (d, &gv) in dst.iter_mut().zip(g_row) {
                    *d += wv * gv;
                }
            }
        }
    }
}

/// `acc[ky*K + kx] += sum over (oy, ox) of g[oy][ox] * p[s*oy + ky*d][cols[kx] + ox]`: one
/// pass over the plane per kernel row (its `K` taps' sums stay in registers), products summed
/// in `L` lanes, then added in `f64`.
#[inline(always)]
fn backward_weight_rows<const K: usize>(p: &[f32], t: Taps, g: &[f32], oh: usize, ow: usize, acc: &mut [f64]) {
    let cols = &t.cols[..K];
    for ky in 0..K {
        let mut lanes = [[0.0f32; L]; K];
        let mut tail = [0.0f32; K];
        for (oy, g_row) in g.chunks_exact(ow).take(oh).enumerate() {
            let row = &p[(t.stride * oy + ky * t.dilation) * t.pw..][..t.pw];
            let mut ox = 0;
            while ox + L <= ow {
                let gv = &g_row[ox..][..L];
                for (a, &c) in lanes.iter_mut().zip(cols) {
                    let src = &row[c + ox..][..L];
                    for l in 0..L {
                        a[l] += gv[l] * src[l];
                    }
                }
                ox += L;
            }
            for (o, &gv) in g_row.iter().enumerate().skip(ox) {
                for (tv, &c) in tail.iter_mut().zip(cols) {
                    *tv += gv * row[c + o];
                }
            }
        }
        for (kx, (l, tv)) in lanes.iter().zip(tail).enumerate() {
            acc[ky * K + kx] += (l.iter().sum::<f32>() + tv) as f64;
        }
    }
}

/// The same loops compiled for AVX2.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Taps;

    #[target_feature(enable = "avx2")]
    pub fn forward_rows<const K: usize>(p: &[f32], t: Taps, wk: &[f32], oh: usize, ow: usize, out: &mut [f32]) {
        super::forward_rows::<K>(p, t, wk, oh, ow, out)
    }

    #[target_feature(enable = "avx2")]
    pub fn backward_input_rows<const K: usize>(
        g: &[f32],
        gw: usize,
        wk: &[f32],
        d: usize,
        h: usize,
        w: usize,
        dx: &mut [f32],
    ) {
        super::backward_input_rows::<K>(g, gw, wk, d, h, w, dx)
    }

    #[target_feature(enable = "avx2")]
    pub fn scatter_rows<const K: usize>(p: &mut [f32], t: Taps, wk: &[f32], oh: usize, ow: usize, g: &[f32]) {
        super::scatter_rows::<K>(p, t, wk, oh, ow, g)
    }

    #[target_feature(enable = "avx2")]
    pub fn backward_weight_rows<const K: usize>(p: &[f32], t: Taps, g: &[f32], oh: usize, ow: usize, acc: &mut [f64]) {
        super::backward_weight_rows::<K>(p, t, g, oh, ow, acc)
    }
}
