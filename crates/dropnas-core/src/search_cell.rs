//! A search cell: two preprocessed inputs, `n_nodes` intermediate nodes, every edge a mixed op.

use crate::dropout::CellMask;
use crate::mixed_op::MixedOp;
use crate::ops::{FactorizedReduce, StdConv};
use crate::search_space::SearchSpace;
use burn::module::Module;
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

/// Preprocessing of the cell's first input: a FactorizedReduce after a reduction cell (the
/// input two cells back is then twice as large), else a 1x1 StdConv.
#[derive(Module, Debug)]
pub enum Preproc<B: Backend> {
    Std(StdConv<B>),
    Reduce(FactorizedReduce<B>),
}

impl<B: Backend> Preproc<B> {
    pub fn new(c_in: usize, c_out: usize, reduction_p: bool, affine: bool, device: &B::Device) -> Self {
        if reduction_p {
            Preproc::Reduce(FactorizedReduce::new(c_in, c_out, affine, device))
        } else {
            Preproc::Std(StdConv::new(c_in, c_out, affine, device))
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            Preproc::Std(m) => m.forward(x),
            Preproc::Reduce(m) => m.forward(x),
        }
    }
}

#[derive(Module, Debug)]
pub struct SearchCell<B: Backend> {
    pub preproc0: Preproc<B>,
    pub preproc1: StdConv<B>,
    /// `dag[i][j]`: the edge from state `j` into node `i` (states 0, 1 are the cell inputs).
    pub dag: Vec<Vec<MixedOp<B>>>,
    pub reduction: bool,
}

impl<B: Backend> SearchCell<B> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        space: &SearchSpace,
        n_nodes: usize,
        c_pp: usize,
        c_p: usize,
        c: usize,
        reduction_p: bool,
        reduction: bool,
        device: &B::Device,
    ) -> Self {
        let dag = (0..n_nodes)
            .map(|i| {
                (0..i + 2)
                    .map(|j| {
                        // only the edges leaving the two cell inputs stride in a reduction cell
                        let stride = if reduction && j < 2 { 2 } else { 1 };
                        MixedOp::new(space, c, stride, device)
                    })
                    .collect()
            })
            .collect();
        Self {
            preproc0: Preproc::new(c_pp, c, reduction_p, false, device),
            preproc1: StdConv::new(c_p, c, false, device),
            dag,
            reduction,
        }
    }

    /// `weights[i]`: node `i`'s mixing weights `[i + 2, n_ops]`.
    pub fn forward(&self, s0: Tensor<B, 4>, s1: Tensor<B, 4>, weights: &[Tensor<B, 2>], mask: &CellMask) -> Tensor<B, 4> {
        let mut states = vec![self.preproc0.forward(s0), self.preproc1.forward(s1)];
        for (i, edges) in self.dag.iter().enumerate() {
            let keep = mask.node(i);
            let mut node: Option<Tensor<B, 4>> = None;
            for (j, edge) in edges.iter().enumerate() {
                let w = weights[i].clone().slice([j..j + 1]).reshape([-1]);
                let out = edge.forward(states[j].clone(), w, &keep[j]);
                node = Some(match node {
                    Some(acc) => acc + out,
                    None => out,
                });
            }
            states.push(node.expect("a node has at least two edges"));
        }
        Tensor::cat(states.split_off(2), 1)
    }
}
