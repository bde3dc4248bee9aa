//! The architecture parameters: one alpha matrix per node, for normal and for reduction cells.
//!
//! They live in their own module so that they are optimised apart from the network weights
//! (Adam on alphas, SGD on weights) from a single backward pass.

use crate::init::ParamInit;
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// Node `i` of a cell has `i + 2` incoming edges; each edge has one alpha per op.
#[derive(Module, Debug)]
pub struct Alphas<B: Backend> {
    /// `normal[i]`: `[i + 2, n_ops]`.
    pub normal: Vec<Param<Tensor<B, 2>>>,
    /// `reduce[i]`: `[i + 2, n_ops]`.
    pub reduce: Vec<Param<Tensor<B, 2>>>,
}

/// Which of the two alpha sets (and of the two cell types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellType {
    Normal,
    Reduce,
}

impl CellType {
    pub const BOTH: [CellType; 2] = [CellType::Normal, CellType::Reduce];

    pub fn name(self) -> &'static str {
        match self {
            CellType::Normal => "normal",
            CellType::Reduce => "reduce",
        }
    }
}

/// Number of edges in a cell of `n_nodes` intermediate nodes (14 for 4 nodes).
pub fn n_edges(n_nodes: usize) -> usize {
    (0..n_nodes).map(|i| i + 2).sum()
}

impl<B: Backend> Alphas<B> {
    /// `1e-3 * N(0, 1)`, as the original (normal cells' matrices first).
    pub fn new(n_nodes: usize, n_ops: usize, init: &mut ParamInit<B>) -> Self {
        let normal = (0..n_nodes).map(|i| init.alpha(i + 2, n_ops)).collect();
        let reduce = (0..n_nodes).map(|i| init.alpha(i + 2, n_ops)).collect();
        Self { normal, reduce }
    }

    pub fn n_nodes(&self) -> usize {
        self.normal.len()
    }

    pub fn n_ops(&self) -> usize {
        self.normal[0].dims()[1]
    }

    pub fn of(&self, cell: CellType) -> &[Param<Tensor<B, 2>>] {
        match cell {
            CellType::Normal => &self.normal,
            CellType::Reduce => &self.reduce,
        }
    }

    /// The alphas of one cell type as host rows, one per edge (node 0's edges first).
    pub fn rows(&self, cell: CellType) -> Vec<Vec<f32>> {
        let mut rows = Vec::new();
        for p in self.of(cell) {
            let [e, n] = p.dims();
            let v = p.val().into_data().convert::<f32>().into_vec::<f32>().expect("alpha data");
            rows.extend((0..e).map(|i| v[i * n..(i + 1) * n].to_vec()));
        }
        rows
    }

    /// Replaces the values of one cell type's alphas by host rows (as from [`Self::rows`]),
    /// keeping each parameter's id so that the optimizer state stays attached.
    pub fn set_rows(self, cell: CellType, rows: &[Vec<f32>]) -> Self {
        let mut offset = 0;
        let replace = |params: Vec<Param<Tensor<B, 2>>>, offset: &mut usize| {
            params
                .into_iter()
                .map(|p| {
                    let [e, n] = p.dims();
                    let flat: Vec<f32> = rows[*offset..*offset + e].iter().flatten().copied().collect();
                    *offset += e;
                    let device = p.device();
                    p.map(move |t| {
                        let requires_grad = t.is_require_grad();
                        let fresh = Tensor::from_data(TensorData::new(flat, [e, n]), &device);
                        if requires_grad { fresh.require_grad() } else { fresh }
                    })
                })
                .collect()
        };
        match cell {
            CellType::Normal => Self { normal: replace(self.normal, &mut offset), reduce: self.reduce },
            CellType::Reduce => Self { reduce: replace(self.reduce, &mut offset), normal: self.normal },
        }
    }

    /// One cell type's alphas as one `[edges, n_ops]` matrix (node 0's edges first), on the
    /// device: what the step's alpha adjustment works on.
    pub fn cell_matrix(&self, cell: CellType) -> Tensor<B, 2> {
        Tensor::cat(self.of(cell).iter().map(|p| p.val()).collect(), 0)
    }

    /// Replaces the values of one cell type's alphas by a `[edges, n_ops]` matrix (as from
    /// [`Self::cell_matrix`]), on the device, keeping each parameter's id (the optimizer state
    /// stays attached) and its `require_grad`.
    pub fn set_cell_matrix(self, cell: CellType, matrix: Tensor<B, 2>) -> Self {
        let mut offset = 0;
        let mut replace = |params: Vec<Param<Tensor<B, 2>>>| -> Vec<Param<Tensor<B, 2>>> {
            params
                .into_iter()
                .map(|p| {
                    let rows = p.dims()[0];
                    let part = matrix.clone().narrow(0, offset, rows).detach();
                    offset += rows;
                    p.map(move |t| if t.is_require_grad() { part.require_grad() } else { part })
                })
                .collect()
        };
        match cell {
            CellType::Normal => Self { normal: replace(self.normal), reduce: self.reduce },
            CellType::Reduce => Self { reduce: replace(self.reduce), normal: self.normal },
        }
    }

    /// Softmax of every edge over all its ops, per cell type: what the alpha plots show.
    pub fn softmax_rows(&self, cell: CellType) -> Vec<Vec<f32>> {
        self.rows(cell)
            .into_iter()
            .map(|row| {
                let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f64> = row.iter().map(|&a| ((a - m) as f64).exp()).collect();
                let s: f64 = e.iter().sum();
                e.iter().map(|v| (v / s) as f32).collect()
            })
            .collect()
    }
}

/// Mixing weights of one node: softmax over the kept ops of each edge only (dropped ops get
/// weight 0 and no gradient). `keep` has one 0/1 row per edge.
pub fn masked_softmax<B: Backend>(alpha: Tensor<B, 2>, keep: Tensor<B, 2>) -> Tensor<B, 2> {
    // Shifting by the row max changes nothing mathematically and keeps exp() finite.
    let shift = alpha.clone().detach().max_dim(1);
    let e = (alpha - shift).exp() * keep;
    e.clone() / e.sum_dim(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type A = Autodiff<Flex>;

    #[test]
    fn masked_softmax_normalises_over_kept_ops_only_and_gives_dropped_ops_no_gradient() {
        let device = Default::default();
        let alpha = Tensor::<A, 2>::from_data(
            TensorData::new(vec![0.5f32, -1.0, 2.0, 0.1, 0.3, 0.3, 0.3, 0.3], [2, 4]),
            &device,
        )
        .require_grad();
        let keep = Tensor::<A, 2>::from_data(
            TensorData::new(vec![1.0f32, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0], [2, 4]),
            &device,
        );
        let w = masked_softmax(alpha.clone(), keep);
        let v = w.clone().into_data().to_vec::<f32>().unwrap();
        // row 0: exp over {0.5, 2.0, 0.1}; the dropped op has weight 0
        let z: f64 = [0.5f64, 2.0, 0.1].iter().map(|a| a.exp()).sum();
        for (got, want) in v[..4].iter().zip([0.5f64.exp() / z, 0.0, 2.0f64.exp() / z, 0.1f64.exp() / z]) {
            assert!((*got as f64 - want).abs() < 1e-6, "{got} vs {want}");
        }
        // row 1: a single kept op gets all the mass
        assert_eq!(&v[4..], &[0.0, 1.0, 0.0, 0.0]);
        // a loss on the weights reaches only the kept alphas
        let coef = Tensor::<A, 2>::from_data(
            TensorData::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0], [2, 4]),
            &device,
        );
        let grads = (w * coef).sum().backward();
        let g = alpha.grad(&grads).unwrap().into_data().to_vec::<f32>().unwrap();
        assert_eq!(g[1], 0.0, "dropped op of row 0");
        assert!(g[0] != 0.0 && g[2] != 0.0 && g[3] != 0.0);
        // row 1 has one kept op: its weight is constantly 1, so no alpha of the row moves
        assert!(g[4..].iter().all(|&x| x == 0.0), "{g:?}");
    }

    #[test]
    fn rows_round_trip_and_set_rows_keeps_parameter_ids() {
        let device = Default::default();
        let alphas = Alphas::<A>::new(4, 8, &mut ParamInit::new(0, Default::default(), &device));
        let ids: Vec<_> = alphas.normal.iter().map(|p| p.id).collect();
        let mut rows = alphas.rows(CellType::Normal);
        assert_eq!(rows.len(), 14);
        rows[3][5] = 0.25;
        let alphas = alphas.set_rows(CellType::Normal, &rows);
        assert_eq!(alphas.rows(CellType::Normal), rows);
        assert_eq!(alphas.normal.iter().map(|p| p.id).collect::<Vec<_>>(), ids);
        assert!(alphas.normal[0].val().is_require_grad());
    }
}
