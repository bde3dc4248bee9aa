//! The mixed op of a search-cell edge: a weighted sum of the kept candidate ops.

use crate::init::ParamInit;
use crate::kernels::{DropnasBackend, scale};
use crate::ops::Op;
use crate::search_space::SearchSpace;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;

#[derive(Module, Debug)]
pub struct MixedOp<B: Backend> {
    /// One op per column of the search space, in column order.
    pub ops: Vec<Op<B>>,
}

impl<B: DropnasBackend> MixedOp<B> {
    pub fn new(space: &SearchSpace, c: usize, stride: usize, init: &mut ParamInit<B>) -> Self {
        Self { ops: space.ops.iter().map(|&k| Op::new(k, c, stride, false, init)).collect() }
    }

    /// `sum over kept k of weights[k] * op_k(x)`; `weights` is this edge's row `[n_ops]`.
    ///
    /// Dropped ops are not evaluated at all (that is where DropNAS saves its time), and neither
    /// is `none`: its term is exactly zero in value and in gradient.
    pub fn forward(&self, x: Tensor<B, 4>, weights: Tensor<B, 1>, keep: &[bool]) -> Tensor<B, 4> {
        // The convolutions (and FactorizedReduce) all start with a ReLU of the same input:
        // compute it once per edge. Same values, same gradients; a quarter of the work.
        let kept = || self.ops.iter().enumerate().filter(|(k, op)| keep[*k] && !op.is_zero());
        let x_relu = kept().any(|(_, op)| op.starts_with_relu()).then(|| relu(x.clone()));
        let mut out: Option<Tensor<B, 4>> = None;
        for (k, op) in kept() {
            let w = weights.clone().narrow(0, k, 1);
            let y = match &x_relu {
                Some(xr) if op.starts_with_relu() => op.forward_from_relu(xr.clone()),
                _ => op.forward(x.clone()),
            };
            let term = scale(y, w);
            out = Some(match out {
                Some(acc) => acc + term,
                None => term,
            });
        }
        // Only `none` kept: the edge contributes a zero of the output shape.
        match out {
            Some(out) => out,
            None => {
                let zero = self.ops.iter().find(|op| op.is_zero());
                zero.expect("an edge keeps at least one op").forward(x)
            }
        }
    }
}
