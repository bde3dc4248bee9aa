//! A search cell: two preprocessed inputs, `n_nodes` intermediate nodes, every edge a mixed op.

use crate::dropout::CellMask;
use crate::init::ParamInit;
use crate::kernels::{DropnasBackend, dense_grad};
use crate::mixed_op::MixedOp;
use crate::ops::{FactorizedReduce, StdConv};
use crate::search_space::SearchSpace;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// Preprocessing of the cell's first input: a FactorizedReduce after a reduction cell (the
/// input two cells back is then twice as large), else a 1x1 StdConv.
#[derive(Module, Debug)]
pub enum Preproc<B: Backend> {
    Std(StdConv<B>),
    Reduce(FactorizedReduce<B>),
}

impl<B: DropnasBackend> Preproc<B> {
    pub fn new(c_in: usize, c_out: usize, reduction_p: bool, affine: bool, init: &mut ParamInit<B>) -> Self {
        if reduction_p {
            Preproc::Reduce(FactorizedReduce::new(c_in, c_out, affine, init))
        } else {
            Preproc::Std(StdConv::new(c_in, c_out, affine, init))
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

impl<B: DropnasBackend> SearchCell<B> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        space: &SearchSpace,
        n_nodes: usize,
        c_pp: usize,
        c_p: usize,
        c: usize,
        reduction_p: bool,
        reduction: bool,
        init: &mut ParamInit<B>,
    ) -> Self {
        // built in PyTorch's order: the preprocessing, then the edges
        let preproc0 = Preproc::new(c_pp, c, reduction_p, false, init);
        let preproc1 = StdConv::new(c_p, c, false, init);
        let dag = (0..n_nodes)
            .map(|i| {
                (0..i + 2)
                    .map(|j| {
                        // only the edges leaving the two cell inputs stride in a reduction cell
                        let stride = if reduction && j < 2 { 2 } else { 1 };
                        MixedOp::new(space, c, stride, init)
                    })
                    .collect()
            })
            .collect();
        Self { preproc0, preproc1, dag, reduction }
    }

    /// `weights[i]`: node `i`'s mixing weights `[i + 2, n_ops]`.
    pub fn forward(
        &self,
        s0: Tensor<B, 4>,
        s1: Tensor<B, 4>,
        weights: &[Tensor<B, 2>],
        mask: &CellMask,
    ) -> Tensor<B, 4> {
        let mut states = vec![self.preproc0.forward(s0), self.preproc1.forward(s1)];
        for (i, edges) in self.dag.iter().enumerate() {
            let keep = mask.node(i);
            let mut node: Option<Tensor<B, 4>> = None;
            for (j, edge) in edges.iter().enumerate() {
                let w = weights[i].clone().narrow(0, j, 1).reshape([-1]);
                let out = edge.forward(states[j].clone(), w, &keep[j]);
                node = Some(match node {
                    Some(acc) => acc + out,
                    None => out,
                });
            }
            states.push(node.expect("a node has at least two edges"));
        }
        Tensor::cat(states.split_off(2).into_iter().map(dense_grad).collect(), 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alphas::{Alphas, masked_softmax};
    use burn::backend::Flex;
    use burn::tensor::Distribution;

    fn weights(alphas: &Alphas<Flex>) -> Vec<Tensor<Flex, 2>> {
        alphas.normal.iter().map(|a| masked_softmax(a.val(), a.val().ones_like())).collect()
    }

    #[test]
    fn every_cell_type_has_the_right_output_shape() {
        let device = Default::default();
        let mut init = ParamInit::<Flex>::new(0, Default::default(), &device);
        let space = SearchSpace::named("original").unwrap();
        let alphas = Alphas::new(4, 8, &mut init);
        let w = weights(&alphas);
        let mask = CellMask::keep_all(4, 8);
        let s = |c, side| Tensor::<Flex, 4>::random([2, c, side, side], Distribution::Default, &device);
        // normal after normal: inputs C_pp = 12, C_p = 16 at 8x8; output 4 * C
        let cell = SearchCell::new(&space, 4, 12, 16, 4, false, false, &mut init);
        assert_eq!(cell.forward(s(12, 8), s(16, 8), &w, &mask).dims(), [2, 16, 8, 8]);
        // reduction: halves the size, doubled width C = 8
        let cell = SearchCell::new(&space, 4, 16, 16, 8, false, true, &mut init);
        assert_eq!(cell.forward(s(16, 8), s(16, 8), &w, &mask).dims(), [2, 32, 4, 4]);
        // normal after reduction: s0 is twice as large and gets a FactorizedReduce
        let cell = SearchCell::new(&space, 4, 16, 32, 8, true, false, &mut init);
        assert_eq!(cell.forward(s(16, 8), s(32, 4), &w, &mask).dims(), [2, 32, 4, 4]);
    }
}
