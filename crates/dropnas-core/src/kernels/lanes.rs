//! Reductions over short rows written as several independent partial sums.
//!
//! A single running sum is a chain of dependent additions that the compiler may not reorder
//! (float addition is not associative), so it stays scalar and waits on each add's latency.
//! Splitting it into lanes lets the loop vectorise (explicitly, on AVX2); the order of the
//! additions changes, which moves results by a rounding error, the same for every run, thread
//! count and CPU.

// Two AVX2 vectors of sums each: one vector's adds would wait on each other's latency.
const F32_LANES: usize = 16;
const F64_LANES: usize = 8;

/// The plain loop of [`dot`].
#[inline(always)]
fn dot_body(a: &[f32], b: &[f32]) -> f32 {
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

/// The plain loop of [`sum_and_centered_dot`].
#[inline(always)]
fn sum_and_centered_dot_body(x: &[f32], dy: &[f32], mean: f32, invstd: f32) -> (f32, f32) {
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

/// The plain loop of [`sum_f64`].
#[inline(always)]
fn sum_f64_body(x: &[f32]) -> f64 {
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

/// The plain loop of [`sum_sq_dev_f64`].
#[inline(always)]
fn sum_sq_dev_f64_body(x: &[f32], mean: f64) -> f64 {
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

/// `sum(a[i] * b[i])`.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    simd!(dot_body(a, b))
}

/// `(sum(dy), sum(dy * (x - mean) * invstd))`, the two sums of batch norm's backward.
pub fn sum_and_centered_dot(x: &[f32], dy: &[f32], mean: f32, invstd: f32) -> (f32, f32) {
    simd!(sum_and_centered_dot_body(x, dy, mean, invstd))
}

/// `sum(x)` in `f64`.
pub fn sum_f64(x: &[f32]) -> f64 {
    simd!(sum_f64_body(x))
}

/// `sum((x - mean)^2)` in `f64`.
pub fn sum_sq_dev_f64(x: &[f32], mean: f64) -> f64 {
    simd!(sum_sq_dev_f64_body(x, mean))
}

/// The same loops with AVX2 intrinsics: lane `j` of the sums is lane `j % 8` of vector
/// `j / 8`, each updated with the same operations as above (no FMA), so the same numbers. The
/// compiler does not vectorise the plain loops by itself (measured: scalar code).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::needless_range_loop)] // `h` picks both the sum vector and the input offset
mod avx2 {
    use super::{F32_LANES, F64_LANES};
    use std::arch::x86_64::*;

    #[inline(always)]
    fn f32_lanes(v: [__m256; 2]) -> [f32; F32_LANES] {
        // SAFETY: two vectors of 8 floats are 16 floats
        unsafe { std::mem::transmute::<[__m256; 2], [f32; F32_LANES]>(v) }
    }

    #[inline(always)]
    fn f64_lanes(v: [__m256d; 2]) -> [f64; F64_LANES] {
        // SAFETY: two vectors of 4 doubles are 8 doubles
        unsafe { std::mem::transmute::<[__m256d; 2], [f64; F64_LANES]>(v) }
    }

    #[target_feature(enable = "avx2")]
    pub fn dot_body(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len()) / F32_LANES * F32_LANES;
        let tail: f32 = a[n..].iter().zip(&b[n..]).map(|(x, y)| x * y).sum();
        let mut acc = [_mm256_setzero_ps(); 2];
        for i in (0..n).step_by(F32_LANES) {
            for h in 0..2 {
                // SAFETY: i + 16 <= n <= both lengths
                let (x, y) =
                    unsafe { (_mm256_loadu_ps(a.as_ptr().add(i + 8 * h)), _mm256_loadu_ps(b.as_ptr().add(i + 8 * h))) };
                acc[h] = _mm256_add_ps(acc[h], _mm256_mul_ps(x, y));
            }
        }
        f32_lanes(acc).iter().sum::<f32>() + tail
    }

    #[target_feature(enable = "avx2")]
    pub fn sum_and_centered_dot_body(x: &[f32], dy: &[f32], mean: f32, invstd: f32) -> (f32, f32) {
        let n = x.len().min(dy.len()) / F32_LANES * F32_LANES;
        let (mut ta, mut tb) = (0.0f32, 0.0f32);
        for (&xv, &d) in x[n..].iter().zip(&dy[n..]) {
            ta += d;
            tb += d * (xv - mean) * invstd;
        }
        let (m, s) = (_mm256_set1_ps(mean), _mm256_set1_ps(invstd));
        let (mut a, mut b) = ([_mm256_setzero_ps(); 2], [_mm256_setzero_ps(); 2]);
        for i in (0..n).step_by(F32_LANES) {
            for h in 0..2 {
                // SAFETY: i + 16 <= n <= both lengths
                let (xv, d) = unsafe {
                    (_mm256_loadu_ps(x.as_ptr().add(i + 8 * h)), _mm256_loadu_ps(dy.as_ptr().add(i + 8 * h)))
                };
                a[h] = _mm256_add_ps(a[h], d);
                b[h] = _mm256_add_ps(b[h], _mm256_mul_ps(_mm256_mul_ps(d, _mm256_sub_ps(xv, m)), s));
            }
        }
        (f32_lanes(a).iter().sum::<f32>() + ta, f32_lanes(b).iter().sum::<f32>() + tb)
    }

    #[target_feature(enable = "avx2")]
    pub fn sum_f64_body(x: &[f32]) -> f64 {
        let n = x.len() / F64_LANES * F64_LANES;
        let tail: f64 = x[n..].iter().map(|&v| v as f64).sum();
        let mut acc = [_mm256_setzero_pd(); 2];
        for i in (0..n).step_by(F64_LANES) {
            for h in 0..2 {
                // SAFETY: i + 8 <= n <= x.len()
                let v = unsafe { _mm256_cvtps_pd(_mm_loadu_ps(x.as_ptr().add(i + 4 * h))) };
                acc[h] = _mm256_add_pd(acc[h], v);
            }
        }
        f64_lanes(acc).iter().sum::<f64>() + tail
    }

    #[target_feature(enable = "avx2")]
    pub fn sum_sq_dev_f64_body(x: &[f32], mean: f64) -> f64 {
        let n = x.len() / F64_LANES * F64_LANES;
        let tail: f64 = x[n..].iter().map(|&v| (v as f64 - mean).powi(2)).sum();
        let m = _mm256_set1_pd(mean);
        let mut acc = [_mm256_setzero_pd(); 2];
        for i in (0..n).step_by(F64_LANES) {
            for h in 0..2 {
                // SAFETY: i + 8 <= n <= x.len()
                let d = unsafe { _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x.as_ptr().add(i + 4 * h))), m) };
                acc[h] = _mm256_add_pd(acc[h], _mm256_mul_pd(d, d));
            }
        }
        f64_lanes(acc).iter().sum::<f64>() + tail
    }
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

    /// The AVX2 loops give the plain loops' numbers, bit for bit, on values whose sums round.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_sums_equal_the_plain_ones() {
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        if !crate::testkit::cpu_feature_or_skip("avx2_sums_equal_the_plain_ones", "AVX2", avx2) {
            return;
        }
        for len in [0, 5, 16, 37, 100, 1024] {
            let x: Vec<f32> = (0..len).map(|i| ((i * 37 % 101) as f32 - 50.3) * 0.0137).collect();
            let y: Vec<f32> = (0..len).map(|i| ((i * 53 % 97) as f32 - 48.1) * 0.021).collect();
            unsafe {
                assert_eq!(dot_body(&x, &y), avx2::dot_body(&x, &y), "dot {len}");
                assert_eq!(
                    sum_and_centered_dot_body(&x, &y, 0.1, 1.7),
                    avx2::sum_and_centered_dot_body(&x, &y, 0.1, 1.7),
                    "bn {len}"
                );
                assert_eq!(sum_f64_body(&x), avx2::sum_f64_body(&x), "sum {len}");
                assert_eq!(sum_sq_dev_f64_body(&x, 0.3), avx2::sum_sq_dev_f64_body(&x, 0.3), "sq {len}");
            }
        }
    }
}
