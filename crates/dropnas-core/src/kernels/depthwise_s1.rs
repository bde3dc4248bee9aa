//! Stride-1 depthwise loops (every depthwise convolution of a normal cell) over a zero-padded
//! copy of one plane, specialised for square 3x3 and 5x5 kernels.
//!
//! The general loops of [`super::depthwise_cpu`] walk tap by tap and read and write every
//! output row once per tap, with bounds worked out per tap. Here each block of [`L`] outputs
//! is summed over all taps in registers and stored once, and the padding makes every tap's
//! load unconditional. The taps are added in the same order, starting from zero, as in the
//! general loops (padding adds exact zeros), so the forward and the input gradient are the same
//! numbers; the weight gradient sums each plane in lanes, which moves it by a rounding error.
//!
//! Each loop is compiled twice, plainly and for AVX2 (chosen at run time): without it, x86-64
//! code is limited to 128-bit vectors. No fused multiply-add is used, so both give the same
//! results.

use super::depthwise_cpu::DwGeom;

/// Outputs summed together in registers (one AVX2 vector).
const L: usize = 8;

/// Calls `$f` compiled for AVX2 when the CPU has it, else its plain build.
macro_rules! simd {
    ($f:ident :: < $($k:literal),+ > ( $($arg:expr),* $(,)? )) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe { avx2::$f::<$($k),+>($($arg),*) }
            } else {
                $f::<$($k),+>($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $f::<$($k),+>($($arg),*)
        }
    }};
}

/// A stride-1 depthwise convolution the specialised loops handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stride1 {
    k: usize,
    dilation: usize,
    padding: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

impl Stride1 {
    /// `Some` for stride 1, a square 3x3 or 5x5 kernel, equal dilations and paddings, and a
    /// padding no larger than the kernel's span (true of every DARTS op).
    pub fn of(g: &DwGeom) -> Option<Self> {
        let square = g.kh == g.kw && g.dilation[0] == g.dilation[1] && g.padding[0] == g.padding[1];
        let span = g.dilation[0] * (g.kh.max(1) - 1);
        if g.stride != [1, 1] || !square || !(g.kh == 3 || g.kh == 5) || g.padding[0] > span {
            return None;
        }
        Some(Self {
            k: g.kh,
            dilation: g.dilation[0],
            padding: g.padding[0],
            h: g.h,
            w: g.w,
            oh: g.out_h(),
            ow: g.out_w(),
        })
    }

    fn span(&self) -> usize {
        self.dilation * (self.k - 1)
    }

    /// One output plane from one input plane `x` (`relu(x)` when `relu`).
    pub fn forward_plane(&self, x: &[f32], relu: bool, wk: &[f32], out: &mut [f32], scratch: &mut Vec<f32>) {
        let pw = pad_into(x, self.h, self.w, self.padding, relu, scratch);
        let d = self.dilation;
        match self.k {
            3 => simd!(forward_rows::<3>(scratch, pw, wk, d, self.oh, self.ow, out)),
            _ => simd!(forward_rows::<5>(scratch, pw, wk, d, self.oh, self.ow, out)),
        }
    }

    /// One input-gradient plane from one output-gradient plane, zero where `relu_of <= 0`
    /// when the convolution read `relu(x)`.
    pub fn backward_input_plane(
        &self,
        grad_out: &[f32],
        wk: &[f32],
        relu_of: Option<&[f32]>,
        dx: &mut [f32],
        scratch: &mut Vec<f32>,
    ) {
        // the output gradient padded so that input position i reads rows i .. i + span
        let gw = pad_into(grad_out, self.oh, self.ow, self.span() - self.padding, false, scratch);
        let d = self.dilation;
        match self.k {
            3 => simd!(backward_input_rows::<3>(scratch, gw, wk, d, self.h, self.w, dx)),
            _ => simd!(backward_input_rows::<5>(scratch, gw, wk, d, self.h, self.w, dx)),
        }
        if let Some(x) = relu_of {
            // ReLU's backward, PyTorch's convention: no gradient where the input is <= 0
            for (dv, &xv) in dx.iter_mut().zip(x) {
                *dv = if xv > 0.0 { *dv } else { 0.0 };
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
        let pw = pad_into(x, self.h, self.w, self.padding, relu, scratch);
        let d = self.dilation;
        match self.k {
            3 => simd!(backward_weight_rows::<3>(scratch, pw, grad_out, d, self.oh, self.ow, acc)),
            _ => simd!(backward_weight_rows::<5>(scratch, pw, grad_out, d, self.oh, self.ow, acc)),
        }
    }
}

/// `src` (`h x w`) into `buf` with `pad` zeros on every side (and a ReLU when `relu`);
/// returns the padded width.
fn pad_into(src: &[f32], h: usize, w: usize, pad: usize, relu: bool, buf: &mut Vec<f32>) -> usize {
    let pw = w + 2 * pad;
    buf.clear();
    buf.resize((h + 2 * pad) * pw, 0.0);
    for (y, row) in src.chunks_exact(w).take(h).enumerate() {
        let dst = &mut buf[(y + pad) * pw + pad..][..w];
        if relu {
            for (o, &v) in dst.iter_mut().zip(row) {
                *o = v.max(0.0);
            }
        } else {
            dst.copy_from_slice(row);
        }
    }
    pw
}

/// `out[oy][ox] = sum over (ky, kx) of w[ky][kx] * p[oy + ky*d][ox + kx*d]`, taps in order.
#[inline(always)]
fn forward_rows<const K: usize>(p: &[f32], pw: usize, wk: &[f32], d: usize, oh: usize, ow: usize, out: &mut [f32]) {
    let wk = &wk[..K * K];
    for (oy, out_row) in out.chunks_exact_mut(ow).take(oh).enumerate() {
        let rows: [&[f32]; K] = std::array::from_fn(|ky| &p[(oy + ky * d) * pw..][..pw]);
        let mut ox = 0;
        while ox + L <= ow {
            let mut acc = [0.0f32; L];
            for (ky, row) in rows.iter().enumerate() {
                for kx in 0..K {
                    let wv = wk[ky * K + kx];
                    let src = &row[ox + kx * d..][..L];
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
                for kx in 0..K {
                    acc += wk[ky * K + kx] * row[o + kx * d];
                }
            }
            *v = acc;
        }
    }
}

/// `dx[iy][ix] = sum over (ky, kx) of w[ky][kx] * g[iy + span - ky*d][ix + span - kx*d]`
/// (`g` the padded output gradient), taps in order.
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

/// `acc[ky*K + kx] += sum over (oy, ox) of g[oy][ox] * p[oy + ky*d][ox + kx*d]`: one pass
/// over the plane per kernel row (its `K` taps' sums stay in registers), products summed in
/// `L` lanes, then added in `f64`.
#[inline(always)]
fn backward_weight_rows<const K: usize>(
    p: &[f32],
    pw: usize,
    g: &[f32],
    d: usize,
    oh: usize,
    ow: usize,
    acc: &mut [f64],
) {
    for ky in 0..K {
        let mut lanes = [[0.0f32; L]; K];
        let mut tail = [0.0f32; K];
        for (oy, g_row) in g.chunks_exact(ow).take(oh).enumerate() {
            let row = &p[(oy + ky * d) * pw..][..pw];
            let mut ox = 0;
            while ox + L <= ow {
                let gv = &g_row[ox..][..L];
                for (kx, a) in lanes.iter_mut().enumerate() {
                    let src = &row[ox + kx * d..][..L];
                    for l in 0..L {
                        a[l] += gv[l] * src[l];
                    }
                }
                ox += L;
            }
            for (o, &gv) in g_row.iter().enumerate().skip(ox) {
                for (kx, t) in tail.iter_mut().enumerate() {
                    *t += gv * row[o + kx * d];
                }
            }
        }
        for (kx, (l, t)) in lanes.iter().zip(tail).enumerate() {
            acc[ky * K + kx] += (l.iter().sum::<f32>() + t) as f64;
        }
    }
}

/// The same loops compiled for AVX2.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    #[target_feature(enable = "avx2")]
    pub fn forward_rows<const K: usize>(
        p: &[f32],
        pw: usize,
        wk: &[f32],
        d: usize,
        oh: usize,
        ow: usize,
        out: &mut [f32],
    ) {
        super::forward_rows::<K>(p, pw, wk, d, oh, ow, out)
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
    pub fn backward_weight_rows<const K: usize>(
        p: &[f32],
        pw: usize,
        g: &[f32],
        d: usize,
        oh: usize,
        ow: usize,
        acc: &mut [f64],
    ) {
        super::backward_weight_rows::<K>(p, pw, g, d, oh, ow, acc)
    }
}
