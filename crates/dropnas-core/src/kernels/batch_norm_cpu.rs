//! Training-mode batch normalisation on contiguous NCHW `f32` buffers, forward and backward.
//!
//! As a composition of tensor ops, one BatchNorm costs about a dozen graph nodes and as many
//! passes over its input; DARTS search cells hold hundreds of them. Here the forward is two
//! passes (statistics, then normalisation) and the backward two more, with channel statistics
//! accumulated in `f64`.

use super::lanes::{sum_and_centered_dot, sum_f64, sum_sq_dev_f64};
use super::{min_planes, par_fill};
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BnGeom {
    pub n: usize,
    pub c: usize,
    /// Height times width.
    pub hw: usize,
}

/// The `n` planes of channel `ch`.
fn planes<'a>(x: &'a [f32], g: &'a BnGeom, ch: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
    (0..g.n).map(move |n| &x[(n * g.c + ch) * g.hw..(n * g.c + ch + 1) * g.hw])
}

/// Per-channel mean and biased variance (two passes, `f64` sums).
pub fn stats(x: &[f32], g: &BnGeom) -> (Vec<f32>, Vec<f32>) {
    let count = (g.n * g.hw) as f64;
    let per_channel: Vec<(f32, f32)> = (0..g.c)
        .into_par_iter()
        .with_min_len(min_planes(g.n * g.hw))
        .map(|ch| {
            let sum: f64 = planes(x, g, ch).map(sum_f64).sum();
            let mean = sum / count;
            let sq: f64 = planes(x, g, ch).map(|p| sum_sq_dev_f64(p, mean)).sum();
            (mean as f32, (sq / count) as f32)
        })
        .collect();
    per_channel.into_iter().unzip()
}

/// `y = (x - mean) * invstd * gamma + beta`; returns `(y, mean, var)`.
pub fn forward(
    x: &[f32],
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    g: &BnGeom,
    eps: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (mean, var) = stats(x, g);
    let (scale, shift): (Vec<f32>, Vec<f32>) = (0..g.c)
        .map(|ch| {
            let invstd = (1.0 / (var[ch] as f64 + eps).sqrt()) as f32;
            let s = invstd * gamma.map_or(1.0, |gm| gm[ch]);
            (s, beta.map_or(0.0, |b| b[ch]) - mean[ch] * s)
        })
        .unzip();
    let y = par_fill(x.len(), g.hw, min_planes(g.hw), |plane, out, _| {
        let ch = plane % g.c;
        let (s, t) = (scale[ch], shift[ch]);
        for (o, &v) in out.iter_mut().zip(&x[plane * g.hw..(plane + 1) * g.hw]) {
            *o = v * s + t;
        }
    });
    (y, mean, var)
}

/// Gradients of [`forward`]: `(dx, dgamma, dbeta)` (the last two per channel).
///
/// `mean` absent: `x` is already the normalised input `xhat` (the output of a BatchNorm
/// without affine parameters), used as it is.
pub fn backward(
    x: &[f32],
    gamma: Option<&[f32]>,
    mean: Option<&[f32]>,
    var: &[f32],
    grad_out: &[f32],
    g: &BnGeom,
    eps: f64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let count = (g.n * g.hw) as f64;
    let invstd: Vec<f64> = var.iter().map(|&v| 1.0 / (v as f64 + eps).sqrt()).collect();
    // per channel: sum(dy) and sum(dy * xhat)
    let sums: Vec<(f64, f64)> = (0..g.c)
        .into_par_iter()
        .with_min_len(min_planes(g.n * g.hw))
        .map(|ch| {
            let (m, is) = xhat_of(mean, &invstd, ch);
            let mut s_dy = 0.0f64;
            let mut s_dy_xhat = 0.0f64;
            for n in 0..g.n {
                let off = (n * g.c + ch) * g.hw;
                let (xs, dys) = (&x[off..off + g.hw], &grad_out[off..off + g.hw]);
                let (a, b) = sum_and_centered_dot(xs, dys, m, is);
                s_dy += a as f64;
                s_dy_xhat += b as f64;
            }
            (s_dy, s_dy_xhat)
        })
        .collect();
    let dx = par_fill(x.len(), g.hw, min_planes(g.hw), |plane, d, _| {
        let ch = plane % g.c;
        let gm = gamma.map_or(1.0, |gm| gm[ch] as f64);
        let k = (gm * invstd[ch]) as f32;
        let mean_dy = (sums[ch].0 / count) as f32;
        let mean_dy_xhat = (sums[ch].1 / count) as f32;
        let (m, isf) = xhat_of(mean, &invstd, ch);
        let off = plane * g.hw;
        for ((dv, &xv), &dy) in d.iter_mut().zip(&x[off..off + g.hw]).zip(&grad_out[off..off + g.hw]) {
            let xhat = (xv - m) * isf;
            *dv = k * (dy - mean_dy - xhat * mean_dy_xhat);
        }
    });
    let dgamma = sums.iter().map(|s| s.1 as f32).collect();
    let dbeta = sums.iter().map(|s| s.0 as f32).collect();
    (dx, dgamma, dbeta)
}

/// The `(m, s)` of channel `ch` for which `xhat = (x - m) * s`.
fn xhat_of(mean: Option<&[f32]>, invstd: &[f64], ch: usize) -> (f32, f32) {
    match mean {
        Some(mean) => (mean[ch], invstd[ch] as f32),
        None => (0.0, 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backward_matches_finite_differences() {
        let g = BnGeom { n: 3, c: 2, hw: 5 };
        let x: Vec<f32> = (0..30).map(|i| ((i * 37 % 11) as f32 - 5.0) / 3.0).collect();
        let gamma = [1.3f32, 0.7];
        let beta = [0.1f32, -0.2];
        let dy: Vec<f32> = (0..30).map(|i| ((i * 13 % 7) as f32 - 3.0) / 4.0).collect();
        let loss = |x: &[f32], gm: &[f32]| -> f64 {
            let (y, _, _) = forward(x, Some(gm), Some(&beta), &g, 1e-5);
            y.iter().zip(&dy).map(|(a, b)| (*a as f64) * (*b as f64)).sum()
        };
        let (_, mean, var) = forward(&x, Some(&gamma), Some(&beta), &g, 1e-5);
        let (dx, dgamma, dbeta) = backward(&x, Some(&gamma), Some(&mean), &var, &dy, &g, 1e-5);
        let h = 1e-2f32;
        for i in [0usize, 7, 19, 29] {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += h;
            xm[i] -= h;
            let fd = (loss(&xp, &gamma) - loss(&xm, &gamma)) / (2.0 * h as f64);
            assert!((fd - dx[i] as f64).abs() < 2e-3, "dx[{i}]: {fd} vs {}", dx[i]);
        }
        for ch in 0..2 {
            let (mut gp, mut gm) = (gamma, gamma);
            gp[ch] += h;
            gm[ch] -= h;
            let fd = (loss(&x, &gp) - loss(&x, &gm)) / (2.0 * h as f64);
            assert!((fd - dgamma[ch] as f64).abs() < 2e-3, "dgamma[{ch}]");
            let s: f64 =
                (0..3).map(|n| dy[(n * 2 + ch) * 5..(n * 2 + ch + 1) * 5].iter().map(|&v| v as f64).sum::<f64>()).sum();
            assert!((s - dbeta[ch] as f64).abs() < 1e-5);
        }
    }
}
