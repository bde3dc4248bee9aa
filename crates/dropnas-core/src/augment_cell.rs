//! An augment cell: the discrete cell of a genotype, with drop path on every non-identity op.

use crate::drop_path::{DropPathSource, drop_path};
use crate::genotype::Genotype;
use crate::init::ParamInit;
use crate::kernels::{DropnasBackend, dense_grad};
use crate::ops::{Op, StdConv};
use crate::search_cell::Preproc;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// One genotype edge: an op reading state `input`.
#[derive(Module, Debug)]
pub struct AugmentEdge<B: Backend> {
    pub op: Op<B>,
    pub input: usize,
}

#[derive(Module, Debug)]
pub struct AugmentCell<B: Backend> {
    pub preproc0: Preproc<B>,
    pub preproc1: StdConv<B>,
    /// `dag[i]`: the edges into node `i`.
    pub dag: Vec<Vec<AugmentEdge<B>>>,
    pub concat: Vec<usize>,
    pub reduction: bool,
}

impl<B: DropnasBackend> AugmentCell<B> {
    pub fn new(
        genotype: &Genotype,
        c_pp: usize,
        c_p: usize,
        c: usize,
        reduction_p: bool,
        reduction: bool,
        init: &mut ParamInit<B>,
    ) -> Self {
        let (nodes, concat) = genotype.cell(reduction);
        // built in PyTorch's order: the preprocessing, then the edges
        let preproc0 = Preproc::new(c_pp, c, reduction_p, true, init);
        let preproc1 = StdConv::new(c_p, c, true, init);
        let dag = nodes
            .iter()
            .map(|edges| {
                edges
                    .iter()
                    .map(|&(kind, input)| {
                        let stride = if reduction && input < 2 { 2 } else { 1 };
                        AugmentEdge { op: Op::new(kind, c, stride, true, init), input }
                    })
                    .collect()
            })
            .collect();
        Self { preproc0, preproc1, dag, concat: concat.indices(), reduction }
    }

    /// Output channels as a multiple of the cell width `c`.
    pub fn multiplier(&self) -> usize {
        self.concat.len()
    }

    pub fn forward(&self, s0: Tensor<B, 4>, s1: Tensor<B, 4>, drop: &mut dyn DropPathSource) -> Tensor<B, 4> {
        let mut states = vec![self.preproc0.forward(s0), self.preproc1.forward(s1)];
        for edges in &self.dag {
            let mut node: Option<Tensor<B, 4>> = None;
            for edge in edges {
                let mut out = edge.op.forward(states[edge.input].clone());
                if !edge.op.is_identity() {
                    out = drop_path(out, drop);
                }
                node = Some(match node {
                    Some(acc) => acc + out,
                    None => out,
                });
            }
            states.push(node.expect("genotype nodes have edges"));
        }
        Tensor::cat(self.concat.iter().map(|&i| dense_grad(states[i].clone())).collect(), 1)
    }
}
