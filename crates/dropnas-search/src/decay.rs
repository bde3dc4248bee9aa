//! Partial decay ("partial-decay" in the paper): weight decay only on what took part in the
//! step. `loss_2 = w_decay * sum ||W||^2` over the weight tensors whose gradient's first
//! element was non-zero in phase 1, `+ alpha_decay * sum alpha^2` over the alpha entries whose
//! phase-1 gradient exceeded 1e-7 in magnitude. Its gradient is `2 * rate * theta` on exactly
//! those parameters; we compute it directly, which saves a second backward pass.

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use dropnas_train::grads::sum_by_dims;
use std::collections::HashSet;

/// `|grad| > 1e-7`: the alpha entries that took part in the step.
pub const ALPHA_GRAD_THRESHOLD: f64 = 1e-7;

/// The decay term of a module: its value (a `[1]` tensor) and its gradient.
pub struct Decay<B: AutodiffBackend> {
    pub loss: Option<Tensor<B::InnerBackend, 1>>,
    pub grads: GradientsParams,
}

impl<B: AutodiffBackend> Decay<B> {
    fn add(&mut self, term: Tensor<B::InnerBackend, 1>) {
        self.loss = Some(match self.loss.take() {
            Some(l) => l + term,
            None => term,
        });
    }
}

/// `rate * sum ||W||^2` over the tensors in `selected`, and its gradient `2 * rate * W`.
pub fn weight_decay<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    selected: &HashSet<ParamId>,
    rate: f64,
) -> Decay<B> {
    struct V<'a, B: AutodiffBackend> {
        selected: &'a HashSet<ParamId>,
        rate: f64,
        out: Decay<B>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for V<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if !self.selected.contains(&param.id) {
                return;
            }
            let w = param.val().inner();
            self.out.add(sum_by_dims(w.clone().square()).mul_scalar(self.rate));
            self.out.grads.register::<B::InnerBackend, D>(param.id, w.mul_scalar(2.0 * self.rate));
        }
    }
    let mut v = V { selected, rate, out: Decay { loss: None, grads: GradientsParams::new() } };
    module.visit(&mut v);
    v.out
}

/// The entries of every alpha tensor whose phase-1 gradient exceeded the threshold, as 0/1
/// masks keyed by parameter id (computed before the phase-1 step consumes the gradients).
pub fn alpha_decay_masks<B: AutodiffBackend, M: AutodiffModule<B>>(
    alphas: &M,
    grads: &GradientsParams,
) -> Vec<(ParamId, Tensor<B::InnerBackend, 2>)> {
    struct V<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        out: Vec<(ParamId, Tensor<B::InnerBackend, 2>)>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for V<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let mask = g.abs().greater_elem(ALPHA_GRAD_THRESHOLD).float();
                let [rows, cols] = [param.shape()[0], param.shape().num_elements() / param.shape()[0]];
                self.out.push((param.id, mask.reshape([rows, cols])));
            }
        }
    }
    let mut v = V::<B> { grads, out: Vec::new() };
    alphas.visit(&mut v);
    v.out
}

/// `rate * sum (alpha * mask)^2` and its gradient `2 * rate * alpha * mask`.
pub fn alpha_decay<B: AutodiffBackend, M: AutodiffModule<B>>(
    alphas: &M,
    masks: &[(ParamId, Tensor<B::InnerBackend, 2>)],
    rate: f64,
) -> Decay<B> {
    struct V<'a, B: AutodiffBackend> {
        masks: &'a [(ParamId, Tensor<B::InnerBackend, 2>)],
        rate: f64,
        out: Decay<B>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for V<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            let Some((_, mask)) = self.masks.iter().find(|(id, _)| *id == param.id) else {
                return;
            };
            let a = param.val().inner();
            let mask = mask.clone().reshape(a.shape());
            let masked = a * mask;
            self.out.add(sum_by_dims(masked.clone().square()).mul_scalar(self.rate));
            self.out.grads.register::<B::InnerBackend, D>(param.id, masked.mul_scalar(2.0 * self.rate));
        }
    }
    let mut v = V { masks, rate, out: Decay { loss: None, grads: GradientsParams::new() } };
    alphas.visit(&mut v);
    v.out
}
