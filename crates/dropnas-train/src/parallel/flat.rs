//! A step's gradients as one flat vector and back: one all-reduce per step instead of one per
//! parameter tensor (Burn's `GradientsParams::all_reduce` does one per tensor, hundreds for a
//! supernet, each a round trip).
//!
//! The order is the module's visiting order, the same on every peer (the replicas are built by
//! the same code), and only the gradients present are taken: all peers run the same ops under
//! the step's shared dropout masks, so the same gradients are present on every peer.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};

/// The gradients of one module in their container: what a step hands to the all-reduce.
pub trait GradPart<B: AutodiffBackend> {
    /// Appends this part's gradients, flattened, in the module's order.
    fn take(&self, out: &mut Vec<Tensor<B::InnerBackend, 1>>);
    /// Replaces this part's gradients by the next pieces of `reduced` (in [`Self::take`]'s order).
    fn put(&mut self, reduced: &mut std::vec::IntoIter<Tensor<B::InnerBackend, 1>>);
}

impl<B: AutodiffBackend, M: AutodiffModule<B>> GradPart<B> for (&M, &mut GradientsParams) {
    fn take(&self, out: &mut Vec<Tensor<B::InnerBackend, 1>>) {
        struct Take<'a, B: AutodiffBackend> {
            grads: &'a GradientsParams,
            out: &'a mut Vec<Tensor<B::InnerBackend, 1>>,
        }
        impl<B: AutodiffBackend> ModuleVisitor<B> for Take<'_, B> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                    self.out.push(g.flatten::<1>(0, D - 1));
                }
            }
        }
        self.0.visit(&mut Take::<B> { grads: self.1, out });
    }

    fn put(&mut self, reduced: &mut std::vec::IntoIter<Tensor<B::InnerBackend, 1>>) {
        struct Put<'a, B: AutodiffBackend> {
            grads: &'a mut GradientsParams,
            reduced: &'a mut std::vec::IntoIter<Tensor<B::InnerBackend, 1>>,
        }
        impl<B: AutodiffBackend> ModuleVisitor<B> for Put<'_, B> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                    let shape = g.shape();
                    let r = self.reduced.next().expect("one reduced piece per gradient taken");
                    self.grads.register::<B::InnerBackend, D>(param.id, r.reshape(shape));
                }
            }
        }
        let (module, grads) = (self.0, &mut *self.1);
        module.visit(&mut Put::<B> { grads, reduced });
    }
}

/// The pieces joined into one vector, and their lengths (to cut the reduced vector again).
pub fn join<B: Backend>(pieces: Vec<Tensor<B, 1>>) -> (Tensor<B, 1>, Vec<usize>) {
    let lens = pieces.iter().map(|p| p.dims()[0]).collect();
    (Tensor::cat(pieces, 0), lens)
}

/// Cuts `flat` into pieces of `lens` (what [`join`] joined), and what follows them.
pub fn cut<B: Backend>(flat: Tensor<B, 1>, lens: &[usize]) -> (Vec<Tensor<B, 1>>, Tensor<B, 1>) {
    let mut at = 0;
    let mut pieces = Vec::with_capacity(lens.len());
    for &n in lens {
        pieces.push(flat.clone().narrow(0, at, n));
        at += n;
    }
    let total = flat.dims()[0];
    (pieces, flat.narrow(0, at, total - at))
}
