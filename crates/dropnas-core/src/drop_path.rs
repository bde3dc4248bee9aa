//! Drop path: each sample's output of an op is zeroed with probability `p` and the survivors
//! scaled by `1 / (1 - p)`. Applied after every augment-cell op except identity.
//!
//! The per-sample masks come from a [`DropPathSource`], drawn on the host from a seeded RNG,
//! so that a run is reproducible on every backend and tests can inject fixed masks.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::Rng;
use std::collections::VecDeque;

/// Supplies one mask per op application, in forward order (cell by cell, node by node, edge
/// by edge). `None` means "no drop path" for this application.
pub trait DropPathSource {
    /// A mask of `batch` values, each 0 or `1 / keep_prob`.
    fn next_mask(&mut self, batch: usize) -> Option<Vec<f32>>;
}

/// No drop path (evaluation, or probability 0).
pub struct NoDropPath;

impl DropPathSource for NoDropPath {
    fn next_mask(&mut self, _batch: usize) -> Option<Vec<f32>> {
        None
    }
}

/// Bernoulli masks from a seeded RNG.
pub struct RandomDropPath<'a, R: Rng> {
    pub prob: f64,
    pub rng: &'a mut R,
}

impl<R: Rng> DropPathSource for RandomDropPath<'_, R> {
    fn next_mask(&mut self, batch: usize) -> Option<Vec<f32>> {
        if self.prob <= 0.0 {
            return None;
        }
        let keep = 1.0 - self.prob;
        Some((0..batch).map(|_| if self.rng.random::<f64>() < keep { (1.0 / keep) as f32 } else { 0.0 }).collect())
    }
}

/// Fixed masks, consumed in order (for fidelity tests against a reference implementation).
pub struct FixedDropPath(pub VecDeque<Vec<f32>>);

impl DropPathSource for FixedDropPath {
    fn next_mask(&mut self, _batch: usize) -> Option<Vec<f32>> {
        self.0.pop_front()
    }
}

/// Applies the next mask of `source` to `x` (`[N, C, H, W]`).
pub fn drop_path<B: Backend>(x: Tensor<B, 4>, source: &mut dyn DropPathSource) -> Tensor<B, 4> {
    let n = x.dims()[0];
    match source.next_mask(n) {
        None => x,
        Some(mask) => {
            let mask = Tensor::<B, 4>::from_data(TensorData::new(mask, [n, 1, 1, 1]), &x.device());
            x * mask
        }
    }
}

/// Drop-path probability of epoch `epoch` (from 0): rising linearly from 0, as the original's
/// `drop_path_prob * epoch / epochs`.
pub fn drop_path_prob(max_prob: f64, epoch: usize, epochs: usize) -> f64 {
    if epochs == 0 { 0.0 } else { max_prob * epoch as f64 / epochs as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn masks_keep_each_sample_with_probability_one_minus_p_and_rescale() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut src = RandomDropPath { prob: 0.2, rng: &mut rng };
        let mut kept = 0usize;
        let n = 200_000;
        let mask = src.next_mask(n).unwrap();
        for &m in &mask {
            assert!(m == 0.0 || (m - 1.25).abs() < 1e-6);
            kept += usize::from(m > 0.0);
        }
        let rate = kept as f64 / n as f64;
        assert!((rate - 0.8).abs() < 0.004, "kept {rate}");
        // the mean of the mask is 1: drop path leaves the expected activation unchanged
        let mean: f64 = mask.iter().map(|&m| m as f64).sum::<f64>() / n as f64;
        assert!((mean - 1.0).abs() < 0.006, "mean {mean}");
        assert!(RandomDropPath { prob: 0.0, rng: &mut rng }.next_mask(4).is_none());
    }

    #[test]
    fn schedule_rises_linearly_from_zero() {
        let probs: Vec<f64> = (0..4).map(|e| drop_path_prob(0.2, e, 4)).collect();
        assert_eq!(probs, vec![0.0, 0.05, 0.1, 0.15000000000000002]);
        assert_eq!(drop_path_prob(0.2, 599, 600), 0.2 * 599.0 / 600.0);
    }
}
