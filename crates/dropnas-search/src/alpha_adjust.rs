//! The alpha adjustment ("alpha-adjust" in the paper).
//!
//! Dropped ops get no gradient, yet Adam and the softmax move them passively: the kept ops'
//! update shifts probability mass onto or off the dropped ones. After each step, DropNAS adds
//! one constant `k` to every kept alpha of an edge so that the kept group holds exactly the
//! probability mass it held before the step, leaving dropped alphas untouched.
//!
//! Computed with tensor operations on the device, one cell type at a time (its edges stacked
//! into one `[edges, n_ops]` matrix): no host read inside the step. With `U`, `R` the sums of
//! `exp(alpha)` over the kept and the dropped ops, `ratio / (1 - ratio)` is `U0 / R0` before
//! the step, so `k = ln(U0 / R0 * R / U)`.

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use dropnas_core::alphas::{Alphas, CellType};
use dropnas_core::dropout::CellMask;

/// One cell type's kept probability mass before the step, on the device.
pub struct KeptMass<B: Backend> {
    cell: CellType,
    /// 1 for kept ops, 0 for dropped ones, `[edges, n_ops]`.
    keep: Tensor<B, 2>,
    /// 1 for dropped ops, `[edges, n_ops]`.
    dropped: Tensor<B, 2>,
    /// 1 for edges with a dropped op, `[edges, 1]`: the only edges adjusted.
    has_drop: Tensor<B, 2>,
    /// 1 for edges without a dropped op, `[edges, 1]`.
    no_drop: Tensor<B, 2>,
    /// `U0 / R0` per edge, `[edges, 1]`.
    kept_over_dropped: Tensor<B, 2>,
}

impl<B: Backend> KeptMass<B> {
    /// The kept mass of `cell`'s edges under `mask`, from the alphas before the step; `None`
    /// when no edge of the cell type drops an op (nothing to adjust).
    pub fn before(alphas: &Alphas<B>, cell: CellType, mask: &CellMask) -> Option<Self> {
        let edges = mask.keep.len();
        let has_drop: Vec<f32> = (0..edges).map(|e| if mask.edge_has_drop(e) { 1.0 } else { 0.0 }).collect();
        if has_drop.iter().all(|&d| d == 0.0) {
            return None;
        }
        let device = alphas.of(cell)[0].device();
        let n_ops = mask.keep[0].len();
        let keep: Vec<f32> = mask.keep.iter().flatten().map(|&k| if k { 1.0 } else { 0.0 }).collect();
        let dropped: Vec<f32> = keep.iter().map(|k| 1.0 - k).collect();
        let keep = Tensor::from_data(TensorData::new(keep, [edges, n_ops]), &device);
        let dropped = Tensor::from_data(TensorData::new(dropped, [edges, n_ops]), &device);
        // R gets 1 added on edges without a drop (R = 0 there): those are not adjusted, and
        // the divisions stay finite
        let no_drop: Vec<f32> = has_drop.iter().map(|d| 1.0 - d).collect();
        let no_drop = Tensor::from_data(TensorData::new(no_drop, [edges, 1]), &device);
        let has_drop = Tensor::from_data(TensorData::new(has_drop, [edges, 1]), &device);
        let placeholder = Tensor::zeros([edges, 1], &device);
        let mut mass = Self { cell, keep, dropped, has_drop, no_drop, kept_over_dropped: placeholder };
        let (u0, r0) = mass.sums(alphas);
        mass.kept_over_dropped = u0 / r0;
        Some(mass)
    }

    /// `(U, R)` per edge for the current alphas (`R` is 1 on edges without a dropped op).
    fn sums(&self, alphas: &Alphas<B>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let e = alphas.cell_matrix(self.cell).detach().exp();
        let kept = (e.clone() * self.keep.clone()).sum_dim(1);
        let dropped = (e * self.dropped.clone()).sum_dim(1) + self.no_drop.clone();
        (kept, dropped)
    }

    /// Adds `k` to the kept alphas of every edge with a dropped op, so that their share of the
    /// probability mass is again what it was [`before`](Self::before) the step.
    pub fn restore(&self, alphas: Alphas<B>) -> Alphas<B> {
        self.restore_with_shift(alphas).0
    }

    /// [`restore`](Self::restore), and the shift `k` it added per edge (`[edges, 1]`, 0 on edges
    /// without a dropped op).
    pub fn restore_with_shift(&self, alphas: Alphas<B>) -> (Alphas<B>, Tensor<B, 2>) {
        let (u, r) = self.sums(&alphas);
        let k = (self.kept_over_dropped.clone() * r / u).log() * self.has_drop.clone();
        let adjusted = alphas.cell_matrix(self.cell).detach() + k.clone() * self.keep.clone();
        (alphas.set_cell_matrix(self.cell, adjusted), k)
    }

    /// The kept share of each edge's probability mass before the step, `ratio_e = U0 / (U0 + R0)`
    /// (`[edges, 1]`; 1 on edges without a dropped op).
    pub fn ratio(&self) -> Tensor<B, 2> {
        let q = self.kept_over_dropped.clone();
        q.clone() / (q + 1.0) * self.has_drop.clone() + self.no_drop.clone()
    }

    pub fn cell(&self) -> CellType {
        self.cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use dropnas_core::ParamInit;

    type A = Autodiff<Flex>;

    /// The kept share of each edge, in double precision on the host.
    fn ratios(rows: &[Vec<f32>], mask: &CellMask) -> Vec<f64> {
        rows.iter()
            .zip(&mask.keep)
            .map(|(row, keep)| {
                let e: Vec<f64> = row.iter().map(|&a| (a as f64).exp()).collect();
                e.iter().zip(keep).filter(|(_, k)| **k).map(|(v, _)| v).sum::<f64>() / e.iter().sum::<f64>()
            })
            .collect()
    }

    #[test]
    fn kept_mass_is_restored_and_dropped_alphas_untouched() {
        let device = Default::default();
        let alphas = Alphas::<A>::new(2, 8, &mut ParamInit::new(3, Default::default(), &device));
        // node 0 (edges 0, 1) and node 1 (edges 2..5): drops on edges 0, 2 and 4 only
        let mut mask = CellMask { keep: vec![vec![true; 8]; 5] };
        mask.keep[0][1] = false;
        mask.keep[0][4] = false;
        mask.keep[2][7] = false;
        mask.keep[4] = vec![false, true, true, true, true, true, true, false];
        let rows = |a: &Alphas<A>| a.rows(CellType::Normal);
        let start: Vec<Vec<f32>> = rows(&alphas).iter().map(|r| r.iter().map(|v| v * 500.0).collect()).collect();
        let alphas = alphas.set_rows(CellType::Normal, &start);
        let mass = KeptMass::before(&alphas, CellType::Normal, &mask).expect("drops");
        // a step that moves every alpha, the dropped ones too (Adam's momentum does)
        let moved: Vec<Vec<f32>> = start
            .iter()
            .enumerate()
            .map(|(e, r)| r.iter().enumerate().map(|(c, a)| a + 0.01 * (e + c) as f32 - 0.05).collect())
            .collect();
        let alphas = alphas.set_rows(CellType::Normal, &moved);
        let ids: Vec<_> = alphas.normal.iter().map(|p| p.id).collect();
        let adjusted = mass.restore(alphas);
        assert_eq!(adjusted.normal.iter().map(|p| p.id).collect::<Vec<_>>(), ids, "parameter ids kept");
        assert!(adjusted.normal[0].val().is_require_grad());
        let after = rows(&adjusted);
        let (r0, r1) = (ratios(&start, &mask), ratios(&after, &mask));
        for e in 0..5 {
            if mask.edge_has_drop(e) {
                assert!((r1[e] - r0[e]).abs() < 1e-6, "edge {e}: kept share {} vs {}", r1[e], r0[e]);
                // the shift is uniform over the kept alphas, the dropped ones keep their value
                let shifts: Vec<f32> = (0..8).map(|c| after[e][c] - moved[e][c]).collect();
                for c in 0..8 {
                    if mask.keep[e][c] {
                        assert!((shifts[c] - shifts[mask.keep[e].iter().position(|&k| k).unwrap()]).abs() < 1e-6);
                    } else {
                        assert_eq!(after[e][c], moved[e][c], "edge {e}: dropped alpha {c} moved");
                    }
                }
                // and equals ln(ratio / (1 - ratio) * R / U) computed in double precision
                let (mut u, mut r) = (0.0f64, 0.0f64);
                for (&a, &kept) in moved[e].iter().zip(&mask.keep[e]) {
                    let x = (a as f64).exp();
                    if kept { u += x } else { r += x }
                }
                let k = (r0[e] / (1.0 - r0[e]) * r / u).ln();
                let c = mask.keep[e].iter().position(|&k| k).unwrap();
                assert!((shifts[c] as f64 - k).abs() < 1e-6, "edge {e}: shift {} vs {k}", shifts[c]);
            } else {
                assert_eq!(after[e], moved[e], "edge {e} without drops is left alone");
            }
        }
    }

    #[test]
    fn a_cell_type_without_drops_needs_nothing() {
        let device = Default::default();
        let alphas = Alphas::<A>::new(4, 8, &mut ParamInit::new(0, Default::default(), &device));
        assert!(KeptMass::before(&alphas, CellType::Reduce, &CellMask::keep_all(4, 8)).is_none());
    }
}
