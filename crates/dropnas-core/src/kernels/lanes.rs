//! Reductions over short rows written as several independent partial sums.
//!
//! A single running sum is a chain of dependent additions that the compiler may not reorder
//! (float addition is not associative), so it stays scalar and waits on each add's latency.
//! Splitting it into lanes lets the loop vectorise; the order of the additions changes, which
//! moves results by a rounding error, the same for every run and thread count.

const F32_LANES: usize = 8;
const F64_LANES: usize = 4;

/// `sum(a[i] * b[i])`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; F32_LANES];
    let (ca, cb) = (a.chunks_exact(F32_LANES), b.chunks_exact(F32_LANES));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..F32_LANES {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// `(sum(dy), sum(dy * (x - mean) * invstd))`, the two sums of batch norm's backward.
pub fn sum_and_centered_dot(x: &[f32], dy: &[f32], mean: f32, invstd: f32) -> (f32, f32) {
    let (mut a, mut b) = ([0.0f32; F32_LANES], [0.0f32; F32_LANES]);
    let (cx, cd) = (x.chunks_exact(F32_LANES), dy.chunks_exact(F32_LANES));
    let (mut ta, mut tb) = (0.0f32, 0.0f32);
    for (&xv, &d) in cx.remainder().iter().zip(cd.remainder()) {
        ta += d;
        tb += d * (xv - mean) * invstd;
    }
    for (xs, ds) in cx.zip(cd) {
        for i in 0..F32_LANES {
            a[i] += ds[i];
            b[i] += ds[i] * (xs[i] - mean) * invstd;
        }
    }
    (a.iter().sum::<f32>() + ta, b.iter().sum::<f32>() + tb)
}

/// `sum(x)` in `f64`.
pub fn sum_f64(x: &[f32]) -> f64 {
    let mut lanes = [0.0f64; F64_LANES];
    let c = x.chunks_exact(F64_LANES);
    let tail: f64 = c.remainder().iter().map(|&v| v as f64).sum();
    for v in c {
        for i in 0..F64_LANES {
            lanes[i] += v[i] as f64;
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// `sum((x - mean)^2)` in `f64`.
pub fn sum_sq_dev_f64(x: &[f32], mean: f64) -> f64 {
    let mut lanes = [0.0f64; F64_LANES];
    let c = x.chunks_exact(F64_LANES);
    let tail: f64 = c.remainder().iter().map(|&v| (v as f64 - mean).powi(2)).sum();
    for v in c {
        for i in 0..F64_LANES {
            let d = v[i] as f64 - mean;
            lanes[i] += d * d;
        }
    }
    lanes.iter().sum::<f64>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sums_equal_plain_sums_for_every_length() {
        for len in [0, 1, 3, 4, 7, 8, 9, 16, 31, 32, 33, 100] {
            let x: Vec<f32> = (0..len).map(|i| ((i * 37 % 11) as f32 - 5.0) * 0.25).collect();
            let y: Vec<f32> = (0..len).map(|i| ((i * 13 % 7) as f32 - 3.0) * 0.5).collect();
            // the values are multiples of 1/8 with small sums: every order of addition is exact
            let plain_dot: f32 = x.iter().zip(&y).map(|(a, b)| a * b).sum();
            assert_eq!(dot(&x, &y), plain_dot, "dot, len {len}");
            assert_eq!(sum_f64(&x), x.iter().map(|&v| v as f64).sum::<f64>(), "sum, len {len}");
            let m = 0.5;
            assert_eq!(sum_sq_dev_f64(&x, m), x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>(), "sq, len {len}");
            let (a, b) = sum_and_centered_dot(&x, &y, 0.5, 2.0);
            assert_eq!(a, y.iter().sum::<f32>(), "sum dy, len {len}");
            assert_eq!(b, x.iter().zip(&y).map(|(xv, d)| d * (xv - 0.5) * 2.0).sum::<f32>(), "dot, len {len}");
        }
    }
}
