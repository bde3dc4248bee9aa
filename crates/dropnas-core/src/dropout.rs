//! Grouped operation dropout: the masks of one DropNAS training step.
//!
//! Each op of a group is dropped independently with probability `p = r^(1/4)`; a group whose
//! ops are all dropped is drawn again until one survives, so no edge ever loses a whole group.
//! One mask set is drawn per step for all normal cells and one for all reduction cells.

use crate::alphas::n_edges;
use crate::search_space::SearchSpace;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The exponent of the original: `p = r^(1/4)` for every group, whatever its size.
pub const DROP_EXPONENT: f64 = 0.25;

/// Which ops each edge keeps: `keep[edge][column]`, edges of node 0 first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CellMask {
    pub keep: Vec<Vec<bool>>,
}

impl CellMask {
    /// Every op kept (drop rate 0: plain one-level DARTS).
    pub fn keep_all(n_nodes: usize, n_ops: usize) -> Self {
        Self { keep: vec![vec![true; n_ops]; n_edges(n_nodes)] }
    }

    /// The rows of node `i` (its `i + 2` edges).
    pub fn node(&self, i: usize) -> &[Vec<bool>] {
        let start = n_edges(i);
        &self.keep[start..start + i + 2]
    }

    /// Whether any op of the edge is dropped (only those edges get the alpha adjustment).
    pub fn edge_has_drop(&self, edge: usize) -> bool {
        self.keep[edge].iter().any(|k| !k)
    }
}

/// The masks of one step: one for normal cells, one for reduction cells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMasks {
    pub normal: CellMask,
    pub reduce: CellMask,
}

impl StepMasks {
    pub fn keep_all(n_nodes: usize, n_ops: usize) -> Self {
        Self { normal: CellMask::keep_all(n_nodes, n_ops), reduce: CellMask::keep_all(n_nodes, n_ops) }
    }
}

/// Drop rates per group of a search space (`r_p`, `r_np` for the two DropNAS groups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupedDropout {
    /// One rate per group of the search space, in group order.
    pub rates: Vec<f64>,
}

impl GroupedDropout {
    /// Per-op drop probability of a group with rate `r`.
    pub fn drop_prob(rate: f64) -> f64 {
        if rate <= 0.0 { 0.0 } else { rate.powf(DROP_EXPONENT) }
    }

    /// Draws one cell's mask. Draw order is the original's: node by node, edge by edge, group by
    /// group, each op with one uniform draw, kept iff `u > p`.
    pub fn sample_cell<R: Rng + ?Sized>(&self, space: &SearchSpace, n_nodes: usize, rng: &mut R) -> CellMask {
        assert_eq!(self.rates.len(), space.groups.len(), "one drop rate per op group");
        let mut keep = Vec::with_capacity(n_edges(n_nodes));
        for _ in 0..n_edges(n_nodes) {
            let mut row = vec![true; space.n_ops()];
            for (group, &rate) in space.groups.iter().zip(&self.rates) {
                let p = Self::drop_prob(rate);
                if p <= 0.0 {
                    continue;
                }
                loop {
                    let draws: Vec<bool> = group.columns.iter().map(|_| rng.random::<f64>() > p).collect();
                    if draws.iter().any(|&k| k) {
                        for (&col, k) in group.columns.iter().zip(draws) {
                            row[col] = k;
                        }
                        break;
                    }
                }
            }
            keep.push(row);
        }
        CellMask { keep }
    }

    /// The masks of one training step: normal cells first, then reduction cells.
    pub fn sample_step<R: Rng + ?Sized>(&self, space: &SearchSpace, n_nodes: usize, rng: &mut R) -> StepMasks {
        let normal = self.sample_cell(space, n_nodes, rng);
        let reduce = self.sample_cell(space, n_nodes, rng);
        StepMasks { normal, reduce }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn drop_frequency_matches_the_fourth_root_of_the_rate() {
        let space = SearchSpace::named("original").unwrap();
        // A large rate gives a measurable per-op probability: 0.1^(1/4) = 0.5623.
        let dropout = GroupedDropout { rates: vec![0.1, 0.1] };
        let p = GroupedDropout::drop_prob(0.1);
        assert!((p - 0.562_341_325).abs() < 1e-8);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (mut dropped, mut total) = (0usize, 0usize);
        for _ in 0..4000 {
            let m = dropout.sample_cell(&space, 4, &mut rng);
            for row in &m.keep {
                for g in &space.groups {
                    let kept = g.columns.iter().filter(|&&c| row[c]).count();
                    assert!(kept >= 1, "a group was dropped entirely");
                    dropped += g.columns.len() - kept;
                    total += g.columns.len();
                }
            }
        }
        // Resampling an all-dropped group conditions on "at least one kept":
        // E[dropped fraction] = (p - p^4) / (1 - p^4) for groups of four.
        let expected = (p - p.powi(4)) / (1.0 - p.powi(4));
        let freq = dropped as f64 / total as f64;
        assert!((freq - expected).abs() < 0.005, "freq {freq} expected {expected}");
    }

    #[test]
    fn default_rate_drops_rarely_but_per_the_formula() {
        let space = SearchSpace::named("original").unwrap();
        let dropout = GroupedDropout { rates: vec![3e-5, 3e-5] };
        let p = GroupedDropout::drop_prob(3e-5);
        assert!((p - 3e-5f64.powf(0.25)).abs() < 1e-15);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (mut dropped, mut total) = (0usize, 0usize);
        for _ in 0..3000 {
            let m = dropout.sample_step(&space, 4, &mut rng);
            for row in m.normal.keep.iter().chain(&m.reduce.keep) {
                dropped += row.iter().filter(|k| !**k).count();
                total += row.len();
            }
        }
        let freq = dropped as f64 / total as f64;
        assert!((freq - p).abs() < 0.004, "freq {freq} p {p}");
    }

    #[test]
    fn zero_rate_keeps_everything_and_draws_nothing() {
        let space = SearchSpace::named("3-skip").unwrap();
        let dropout = GroupedDropout { rates: vec![0.0, 0.0] };
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let before = rng.clone();
        let m = dropout.sample_step(&space, 4, &mut rng);
        assert_eq!(m, StepMasks::keep_all(4, 8));
        assert_eq!(rng, before);
    }

    #[test]
    fn separate_group_rates_apply_to_their_group() {
        let space = SearchSpace::named("original").unwrap();
        let dropout = GroupedDropout { rates: vec![0.0, 0.5] };
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (mut nonparam_drops, mut nonparam_total) = (0usize, 0usize);
        for _ in 0..400 {
            let m = dropout.sample_cell(&space, 4, &mut rng);
            for row in &m.keep {
                assert!(row[0..4].iter().all(|&k| k), "parameterised ops must all be kept");
                nonparam_drops += row[4..8].iter().filter(|k| !**k).count();
                nonparam_total += 4;
            }
        }
        // the parameter-free group drops at its own rate, 0.5^(1/4) per op, conditioned on one kept
        let p = GroupedDropout::drop_prob(0.5);
        let expected = (p - p.powi(4)) / (1.0 - p.powi(4));
        let freq = nonparam_drops as f64 / nonparam_total as f64;
        assert!((freq - expected).abs() < 0.015, "freq {freq} expected {expected}");
    }
}
