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
//! results. The loops keep several blocks in flight (independent sums), since one block at a
//! time waits on the latency of each add. The weight gradient's AVX2 loop is written with
//! intrinsics: the compiler spilled its sums to the stack (4x slower); a test checks it
//! against the plain loop bit for bit.

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
    ///
    /// Only the interior is written: a buffer that already has this layout's length (the
    /// previous plane of the same kernel call) keeps its zero border.
    fn pad_input(&self, x: &[f32], relu: bool, buf: &mut Vec<f32>) {
        let (p, pw) = (self.padding, self.pw);
        let len = (self.h + 2 * p) * pw;
        if buf.len() != len {
            buf.clear();
            buf.resize(len, 0.0);
        }
        for (y, row) in x.chunks_exact(self.w).take(self.h).enumerate() {
            let dst = &mut buf[(y + p) * pw..][..pw];
            if self.stride == 1 {
                if relu {
                    dst[p..p + self.w].iter_mut().zip(row).for_each(|(o, &v)| *o = v.max(0.0));
                } else {
                    dst[p..p + self.w].copy_from_slice(row);
                }
            } else {
                // padded column c = x + p goes to phase c % 2, position c / 2: the even x to
                // phase p % 2 from p / 2 on, the odd x to the other phase from (p + 1) / 2 on
                let (even, odd) = dst.split_at_mut(self.phase[1]);
                let (e_dst, o_dst) = if p % 2 == 0 { (even, odd) } else { (odd, even) };
                let (e_dst, o_dst) = (&mut e_dst[p / 2..], &mut o_dst[p.div_ceil(2)..]);
                if relu {
                    simd!(deinterleave::<true>(row, e_dst, o_dst));
                } else {
                    simd!(deinterleave::<false>(row, e_dst, o_dst));
                }
            }
        }
    }

    /// One output plane from one input plane `x` (`relu(x)` when `relu`).
    pub fn forward_plane(&self, x: &[f32], relu: bool, wk: &[f32], out: &mut [f32], scratch: &mut Vec<f32>) {
        self.pad_input(x, relu, scratch);
        let t = self.taps();
        match self.k {
            3 => forward_rows::<3>(scratch, t, wk, self.oh, self.ow, out),
            _ => forward_rows::<5>(scratch, t, wk, self.oh, self.ow, out),
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
            // the border stays zero between planes of one call (only the interior is written)
            if scratch.len() != (self.oh + 2 * q) * gw {
                scratch.clear();
                scratch.resize((self.oh + 2 * q) * gw, 0.0);
            }
            for (y, row) in grad_out.chunks_exact(self.ow).take(self.oh).enumerate() {
                scratch[(y + q) * gw + q..][..self.ow].copy_from_slice(row);
            }
            match self.k {
                3 => backward_input_rows::<3>(scratch, gw, wk, d, self.h, self.w, dx),
                _ => backward_input_rows::<5>(scratch, gw, wk, d, self.h, self.w, dx),
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

/// `even[j] = r(src[2j])`, `odd[j] = r(src[2j + 1])` (`r` the ReLU when `RELU`, as the vector
/// instruction computes it: NaN and -0 give +0).
#[inline(always)]
fn deinterleave<const RELU: bool>(src: &[f32], even: &mut [f32], odd: &mut [f32]) {
    for (o, &v) in even.iter_mut().zip(src.iter().step_by(2)) {
        *o = relu_as_max::<RELU>(v);
    }
    for (o, &v) in odd.iter_mut().zip(src.iter().skip(1).step_by(2)) {
        *o = relu_as_max::<RELU>(v);
    }
}

/// `max(v, 0)` as `maxps` computes it (`v` unless `v > 0` fails: NaN and -0 give +0).
#[inline(always)]
fn relu_as_max<const RELU: bool>(v: f32) -> f32 {
    if RELU && v.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) { 0.0 } else { v }
}

/// `out[oy][ox] = sum over (ky, kx) of w[ky][kx] * p[s*oy + ky*d][cols[kx] + ox]`, taps in
/// order.
#[inline(always)]
fn forward_rows<const K: usize>(p: &[f32], t: Taps, wk: &[f32], oh: usize, ow: usize, out: &mut [f32]) {
    let mut off = [0usize; 25];
    for ky in 0..K {
        for kx in 0..K {
            off[ky * K + kx] = ky * t.dilation * t.pw + t.cols[kx];
        }
    }
    simd!(correlate::<K>(p, t.stride * t.pw, &off, wk, oh, ow, out));
}

/// Stride 1: `dx[iy][ix] = sum over (ky, kx) of w[ky][kx] * g[iy + span - ky*d][ix + span -
/// kx*d]` (`g` the padded output gradient), taps in order.
#[inline(always)]
fn backward_input_rows<const K: usize>(g: &[f32], gw: usize, wk: &[f32], d: usize, h: usize, w: usize, dx: &mut [f32]) {
    let span = d * (K - 1);
    let mut off = [0usize; 25];
    for ky in 0..K {
        for kx in 0..K {
            off[ky * K + kx] = (span - ky * d) * gw + span - kx * d;
        }
    }
    simd!(correlate::<K>(g, gw, &off, wk, h, w, dx));
}

/// Blocks of output a loop keeps in flight: independent sums, so that the adds of one block
/// do not wait for those of the previous one (a single block is bound by the add latency).
const BLOCKS: usize = 4;

/// `out[r][x] = sum over taps i in order of wk[i] * src[r * row_step + x + off[i]]`, from
/// zero, for `rows` rows of `width` outputs. Whole blocks of [`L`] outputs are taken
/// [`BLOCKS`] at a time across rows; each output's sum is the same sequence of operations
/// whatever the blocking.
#[inline(always)]
fn correlate<const K: usize>(
    src: &[f32],
    row_step: usize,
    off: &[usize; 25],
    wk: &[f32],
    rows: usize,
    width: usize,
    out: &mut [f32],
) {
    let (wk, off) = (&wk[..K * K], &off[..K * K]);
    if rows == 0 || width == 0 {
        return;
    }
    // every read below is at most this far into `src`, so the unchecked loads are in bounds
    let last = (rows - 1) * row_step + width + off.iter().max().copied().unwrap_or(0);
    assert!(last <= src.len() && rows * width <= out.len(), "correlate: buffers too short");
    let per_row = width / L;
    let blocks = rows * per_row;
    let at = |b: usize| (b / per_row, (b % per_row) * L);
    let mut b = 0;
    while b + BLOCKS <= blocks {
        let pos: [(usize, usize); BLOCKS] = std::array::from_fn(|i| at(b + i));
        let mut acc = [[0.0f32; L]; BLOCKS];
        for (&wv, &o) in wk.iter().zip(off) {
            for (a, &(r, x)) in acc.iter_mut().zip(&pos) {
                // SAFETY: r * row_step + x + L <= (rows - 1) * row_step + width, and o <= max(off)
                let s = unsafe { &*(src.as_ptr().add(r * row_step + x + o) as *const [f32; L]) };
                for l in 0..L {
                    a[l] += wv * s[l];
                }
            }
        }
        for (a, &(r, x)) in acc.iter().zip(&pos) {
            out[r * width + x..][..L].copy_from_slice(a);
        }
        b += BLOCKS;
    }
    for b in b..blocks {
        let (r, x) = at(b);
        let mut acc = [0.0f32; L];
        for (&wv, &o) in wk.iter().zip(off) {
            let s = &src[r * row_step + x + o..][..L];
            for l in 0..L {
                acc[l] += wv * s[l];
            }
        }
        out[r * width + x..][..L].copy_from_slice(&acc);
    }
    for r in 0..rows {
        for x in per_row * L..width {
            let mut acc = 0.0f32;
            for (&wv, &o) in wk.iter().zip(off) {
                acc += wv * src[r * row_step + x + o];
            }
            out[r * width + x] = acc;
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
/// in `L` lanes, two blocks at a time into two sets of sums (so that consecutive adds to a sum
/// do not wait for each other), then added in `f64`.
///
/// No closures here: a closure is compiled without the caller's `target_feature`.
#[inline(always)]
fn backward_weight_rows<const K: usize>(p: &[f32], t: Taps, g: &[f32], oh: usize, ow: usize, acc: &mut [f64]) {
    let cols = &t.cols[..K];
    let per_row = ow / L;
    if oh == 0 || ow == 0 {
        return;
    }
    let row_step = t.stride * t.pw;
    // the furthest read below, so that the unchecked loads are in bounds
    let last = (oh - 1) * row_step + (K - 1) * t.dilation * t.pw + cols.iter().max().copied().unwrap_or(0) + ow;
    assert!(last <= p.len() && oh * ow <= g.len(), "backward_weight_rows: buffers too short");
    for ky in 0..K {
        let base = ky * t.dilation * t.pw;
        let mut lanes = [[[0.0f32; L]; K]; 2];
        let mut tail = [0.0f32; K];
        for oy in 0..oh {
            let g_row = &g[oy * ow..][..ow];
            let p_row = oy * row_step + base;
            let mut ox = 0;
            while ox + 2 * L <= ow {
                // SAFETY: p_row + c + ox + 2L <= last (checked above)
                unsafe {
                    weight_block::<K>(p, p_row + ox, cols, &g_row[ox..][..L], &mut lanes[0]);
                    weight_block::<K>(p, p_row + ox + L, cols, &g_row[ox + L..][..L], &mut lanes[1]);
                }
                ox += 2 * L;
            }
            if ox + L <= ow {
                // SAFETY: as above
                unsafe { weight_block::<K>(p, p_row + ox, cols, &g_row[ox..][..L], &mut lanes[0]) };
                ox += L;
            }
            for (o, &gv) in g_row.iter().enumerate().skip(ox).take(ow - per_row * L) {
                for (tv, &c) in tail.iter_mut().zip(cols) {
                    *tv += gv * p[p_row + c + o];
                }
            }
        }
        for kx in 0..K {
            let l: f32 = (0..L).map(|l| lanes[0][kx][l] + lanes[1][kx][l]).sum();
            acc[ky * K + kx] += (l + tail[kx]) as f64;
        }
    }
}

/// `sums[kx][l] += g[l] * p[at + cols[kx] + l]`.
///
/// # Safety
/// `at + max(cols) + L <= p.len()`.
#[inline(always)]
unsafe fn weight_block<const K: usize>(p: &[f32], at: usize, cols: &[usize], g: &[f32], sums: &mut [[f32; L]; K]) {
    let g: &[f32; L] = g.try_into().expect("one block of the output gradient");
    for (a, &c) in sums.iter_mut().zip(cols) {
        // SAFETY: the caller's bound
        let src = unsafe { &*(p.as_ptr().add(at + c) as *const [f32; L]) };
        for l in 0..L {
            a[l] += g[l] * src[l];
        }
    }
}

/// The same loops compiled for AVX2.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Taps;

    #[target_feature(enable = "avx2")]
    pub fn correlate<const K: usize>(
        src: &[f32],
        row_step: usize,
        off: &[usize; 25],
        wk: &[f32],
        rows: usize,
        width: usize,
        out: &mut [f32],
    ) {
        super::correlate::<K>(src, row_step, off, wk, rows, width, out)
    }

    /// [`super::deinterleave`] with AVX2 shuffles, 8 pairs at a time.
    #[target_feature(enable = "avx2")]
    pub fn deinterleave<const RELU: bool>(src: &[f32], even: &mut [f32], odd: &mut [f32]) {
        use std::arch::x86_64::*;
        let pairs = (src.len() / 2).min(even.len()).min(odd.len());
        let blocks = pairs / 8;
        let zero = _mm256_setzero_ps();
        for b in 0..blocks {
            // SAFETY: 16 * b + 16 <= 2 * pairs <= src.len(), 8 * b + 8 <= pairs <= both outputs
            unsafe {
                let lo = _mm256_loadu_ps(src.as_ptr().add(16 * b));
                let hi = _mm256_loadu_ps(src.as_ptr().add(16 * b + 8));
                // per 128-bit half [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6]; then 64-bit pieces 0 2 1 3
                let e = _mm256_shuffle_ps::<0b10_00_10_00>(lo, hi);
                let o = _mm256_shuffle_ps::<0b11_01_11_01>(lo, hi);
                let mut e = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(e)));
                let mut o = _mm256_castpd_ps(_mm256_permute4x64_pd::<0b11_01_10_00>(_mm256_castps_pd(o)));
                if RELU {
                    e = _mm256_max_ps(e, zero);
                    o = _mm256_max_ps(o, zero);
                }
                _mm256_storeu_ps(even.as_mut_ptr().add(8 * b), e);
                _mm256_storeu_ps(odd.as_mut_ptr().add(8 * b), o);
            }
        }
        super::deinterleave::<RELU>(&src[16 * blocks..], &mut even[8 * blocks..], &mut odd[8 * blocks..]);
    }

    #[target_feature(enable = "avx2")]
    pub fn scatter_rows<const K: usize>(p: &mut [f32], t: Taps, wk: &[f32], oh: usize, ow: usize, g: &[f32]) {
        super::scatter_rows::<K>(p, t, wk, oh, ow, g)
    }

    /// [`super::backward_weight_rows`] written with AVX2 intrinsics: the compiler does not keep
    /// its `K x 2` lane sums in vector registers by itself. Same operations in the same order,
    /// so the same numbers.
    #[target_feature(enable = "avx2")]
    pub fn backward_weight_rows<const K: usize>(p: &[f32], t: Taps, g: &[f32], oh: usize, ow: usize, acc: &mut [f64]) {
        use super::L;
        use std::arch::x86_64::*;
        let cols = &t.cols[..K];
        let per_row = ow / L;
        if oh == 0 || ow == 0 {
            return;
        }
        let row_step = t.stride * t.pw;
        let last = (oh - 1) * row_step + (K - 1) * t.dilation * t.pw + cols.iter().max().copied().unwrap_or(0) + ow;
        assert!(last <= p.len() && oh * ow <= g.len(), "backward_weight_rows: buffers too short");
        for ky in 0..K {
            let base = ky * t.dilation * t.pw;
            let mut s0 = [_mm256_setzero_ps(); K];
            let mut s1 = [_mm256_setzero_ps(); K];
            let mut tail = [0.0f32; K];
            for oy in 0..oh {
                let g_row = &g[oy * ow..][..ow];
                let p_row = oy * row_step + base;
                let mut ox = 0;
                // SAFETY (all loads): p_row + c + ox + L <= last <= p.len(), ox + L <= ow
                while ox + 2 * L <= ow {
                    unsafe {
                        let g0 = _mm256_loadu_ps(g_row.as_ptr().add(ox));
                        let g1 = _mm256_loadu_ps(g_row.as_ptr().add(ox + L));
                        for kx in 0..K {
                            let src = p.as_ptr().add(p_row + cols[kx] + ox);
                            s0[kx] = _mm256_add_ps(s0[kx], _mm256_mul_ps(g0, _mm256_loadu_ps(src)));
                            s1[kx] = _mm256_add_ps(s1[kx], _mm256_mul_ps(g1, _mm256_loadu_ps(src.add(L))));
                        }
                    }
                    ox += 2 * L;
                }
                if ox + L <= ow {
                    unsafe {
                        let g0 = _mm256_loadu_ps(g_row.as_ptr().add(ox));
                        for kx in 0..K {
                            let src = p.as_ptr().add(p_row + cols[kx] + ox);
                            s0[kx] = _mm256_add_ps(s0[kx], _mm256_mul_ps(g0, _mm256_loadu_ps(src)));
                        }
                    }
                    ox += L;
                }
                for (o, &gv) in g_row.iter().enumerate().skip(ox).take(ow - per_row * L) {
                    for (tv, &c) in tail.iter_mut().zip(cols) {
                        *tv += gv * p[p_row + c + o];
                    }
                }
            }
            for kx in 0..K {
                let (mut l0, mut l1) = ([0.0f32; L], [0.0f32; L]);
                // SAFETY: both arrays hold L = 8 floats
                unsafe {
                    _mm256_storeu_ps(l0.as_mut_ptr(), s0[kx]);
                    _mm256_storeu_ps(l1.as_mut_ptr(), s1[kx]);
                }
                let l: f32 = (0..L).map(|l| l0[l] + l1[l]).sum();
                acc[ky * K + kx] += (l + tail[kx]) as f64;
            }
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The AVX2 de-interleave (stride-2 padding) against the plain one, odd lengths included.
    #[test]
    fn avx2_deinterleave_equals_the_plain_one() {
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        if !crate::testkit::cpu_feature_or_skip("avx2_deinterleave_equals_the_plain_one", "AVX2", avx2) {
            return;
        }
        for len in [0usize, 1, 2, 15, 16, 17, 32, 33, 50] {
            let src: Vec<f32> = (0..len).map(|i| if i % 5 == 3 { -0.0 } else { (i as f32 - 9.5) * 0.3 }).collect();
            let (ne, no) = (len.div_ceil(2), len / 2);
            let (mut e1, mut o1, mut e2, mut o2) = (vec![9.0; ne], vec![9.0; no], vec![9.0; ne], vec![9.0; no]);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            for relu in [true, false] {
                if relu {
                    deinterleave::<true>(&src, &mut e1, &mut o1);
                    unsafe { avx2::deinterleave::<true>(&src, &mut e2, &mut o2) };
                } else {
                    deinterleave::<false>(&src, &mut e1, &mut o1);
                    unsafe { avx2::deinterleave::<false>(&src, &mut e2, &mut o2) };
                }
                assert_eq!((bits(&e1), bits(&o1)), (bits(&e2), bits(&o2)), "relu {relu}, len {len}");
            }
            let want: Vec<f32> = src.iter().step_by(2).copied().collect();
            assert_eq!(bits(&e1), bits(&want), "even, len {len}");
        }
    }

    /// The AVX2 loops (the weight gradient's is hand-written) give the plain loops' numbers.
    #[test]
    fn avx2_loops_equal_the_plain_ones() {
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        if !crate::testkit::cpu_feature_or_skip("avx2_loops_equal_the_plain_ones", "AVX2", avx2) {
            return;
        }
        for (k, s, p, d, hw) in
            [(3, 1, 1, 1, 32), (5, 1, 2, 1, 19), (3, 1, 2, 2, 8), (5, 1, 4, 2, 13), (3, 2, 1, 1, 17), (5, 2, 2, 1, 16)]
        {
            let g =
                DwGeom { n: 1, c: 1, h: hw, w: hw, kh: k, kw: k, stride: [s, s], padding: [p, p], dilation: [d, d] };
            let pd = Padded::of(&g).expect("a padded geometry");
            let x: Vec<f32> = (0..hw * hw).map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013).collect();
            let go: Vec<f32> = (0..g.out_h() * g.out_w()).map(|i| ((i * 53 % 97) as f32 - 48.0) * 0.021).collect();
            let mut buf = Vec::new();
            pd.pad_input(&x, true, &mut buf);
            let t = pd.taps();
            let (mut plain, mut simd) = (vec![0.0f64; k * k], vec![0.0f64; k * k]);
            let (mut out_plain, mut out_simd) = (vec![0.0f32; go.len()], vec![0.0f32; go.len()]);
            if k == 3 {
                backward_weight_rows::<3>(&buf, t, &go, pd.oh, pd.ow, &mut plain);
                unsafe { avx2::backward_weight_rows::<3>(&buf, t, &go, pd.oh, pd.ow, &mut simd) };
                forward_rows::<3>(&buf, t, &x[..k * k], pd.oh, pd.ow, &mut out_simd);
            } else {
                backward_weight_rows::<5>(&buf, t, &go, pd.oh, pd.ow, &mut plain);
                unsafe { avx2::backward_weight_rows::<5>(&buf, t, &go, pd.oh, pd.ow, &mut simd) };
                forward_rows::<5>(&buf, t, &x[..k * k], pd.oh, pd.ow, &mut out_simd);
            }
            assert_eq!(plain, simd, "weight gradient, k{k} s{s} d{d} {hw}x{hw}");
            // the forward through the plain `correlate` (no dispatch) against the dispatched one
            let mut off = [0usize; 25];
            for ky in 0..k {
                for kx in 0..k {
                    off[ky * k + kx] = ky * t.dilation * t.pw + t.cols[kx];
                }
            }
            if k == 3 {
                correlate::<3>(&buf, t.stride * t.pw, &off, &x[..k * k], pd.oh, pd.ow, &mut out_plain);
            } else {
                correlate::<5>(&buf, t.stride * t.pw, &off, &x[..k * k], pd.oh, pd.ow, &mut out_plain);
            }
            assert_eq!(out_plain, out_simd, "forward, k{k} s{s} d{d} {hw}x{hw}");
        }
    }
}
