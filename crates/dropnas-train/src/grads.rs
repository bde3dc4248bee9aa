//! Gradient utilities over a module's parameters: PyTorch's global-norm clipping, the
//! zero gradients that PyTorch 1.0 kept, and the per-tensor "did it get a gradient" test.
//!
//! Each walks the module with a visitor, because the gradient container is keyed by parameter
//! id and typed by rank, which only the visitor knows.

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use std::collections::HashSet;

/// `torch.nn.utils.clip_grad_norm_`: scales every gradient of `module` by
/// `max_norm / (norm + 1e-6)` when that is below 1, where `norm` is the L2 norm of all of them
/// together, and returns that norm. (Burn's own `GradientClipping::Norm` clips each tensor
/// separately.) Everything stays on the device: multiplying by a factor clamped to 1 is the
/// same as not multiplying, so no branch on the host is needed.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> Option<Tensor<B::InnerBackend, 1>> {
    struct SumSq<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        acc: Option<Tensor<B::InnerBackend, 1>>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for SumSq<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let s = sum_by_dims(g.square());
                self.acc = Some(match self.acc.take() {
                    Some(a) => a + s,
                    None => s,
                });
            }
        }
    }
    let mut v = SumSq::<B> { grads, acc: None };
    module.visit(&mut v);
    let norm = v.acc?.sqrt();
    let coef = (norm.clone().add_scalar(1e-6).recip() * max_norm).clamp_max(1.0);
    scale_grads(module, grads, &coef);
    Some(norm)
}

/// Sum of every element, one dimension at a time from the last: many short sums instead of one
/// long one, which keeps float32 round-off at PyTorch's level (a plain `sum()` of a 400k-element
/// gradient drifted by 5e-5 relative on the CPU backend).
pub fn sum_by_dims<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, 1> {
    let mut t = t;
    for d in (1..D).rev() {
        t = t.sum_dim(d);
    }
    t.sum()
}

/// Multiplies every gradient of `module` in `grads` by the one-element tensor `factor`.
pub fn scale_grads<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &mut GradientsParams,
    factor: &Tensor<B::InnerBackend, 1>,
) {
    struct Scale<'a, B: AutodiffBackend> {
        grads: &'a mut GradientsParams,
        factor: &'a Tensor<B::InnerBackend, 1>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for Scale<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
                let f = self.factor.clone().reshape([1; D]);
                self.grads.register::<B::InnerBackend, D>(param.id, g * f);
            }
        }
    }
    module.visit(&mut Scale::<B> { grads, factor });
}

/// PyTorch 1.0's `zero_grad()` filled gradients with zeros instead of removing them, so every
/// parameter that ever had a gradient keeps getting an optimizer step (SGD momentum keeps
/// moving it). This records which parameters have had a gradient and gives the missing ones a
/// zero gradient.
#[derive(Debug, Default, Clone)]
pub struct LegacyZeroGrad {
    seen: HashSet<ParamId>,
}

impl LegacyZeroGrad {
    pub fn seen(&self) -> &HashSet<ParamId> {
        &self.seen
    }

    /// Restores the set after a resume (the ids persist in checkpoints).
    pub fn from_seen(seen: HashSet<ParamId>) -> Self {
        Self { seen }
    }

    /// Records the parameters present in `grads`, then adds zeros for the missing ones seen before.
    pub fn fill<B: AutodiffBackend, M: AutodiffModule<B>>(&mut self, module: &M, grads: &mut GradientsParams) {
        struct Fill<'a> {
            seen: &'a mut HashSet<ParamId>,
            grads: &'a mut GradientsParams,
        }
        impl<B: AutodiffBackend> ModuleVisitor<B> for Fill<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
                if self.grads.get::<B::InnerBackend, D>(param.id).is_some() {
                    self.seen.insert(param.id);
                } else if self.seen.contains(&param.id) {
                    let zeros = param.val().inner().zeros_like();
                    self.grads.register::<B::InnerBackend, D>(param.id, zeros);
                }
            }
        }
        module.visit(&mut Fill { seen: &mut self.seen, grads });
    }
}

/// For every parameter of `module` with a gradient in `grads`: 1 if the gradient's first
/// element is non-zero, else 0, as a `[1]` tensor on the device. The original's test for "this
/// weight took part in the step" (`w.grad.view(-1)[0] != 0`), without a host read.
pub fn first_grad_nonzero<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> Vec<(ParamId, Tensor<B::InnerBackend, 1>)> {
    struct First<'a, B: AutodiffBackend> {
        grads: &'a GradientsParams,
        out: Vec<(ParamId, Tensor<B::InnerBackend, 1>)>,
    }
    impl<B: AutodiffBackend> ModuleVisitor<B> for First<'_, B> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            if let Some(g) = self.grads.get::<B::InnerBackend, D>(param.id) {
                let first = g.flatten::<1>(0, D - 1).narrow(0, 0, 1);
                self.out.push((param.id, first.not_equal_elem(0.0).float()));
            }
        }
    }
    let mut v = First::<B> { grads, out: Vec::new() };
    module.visit(&mut v);
    v.out
}

/// The ids whose flag (from [`first_grad_nonzero`]) is 1: one host read for all of them.
pub fn flagged_ids<B: burn::tensor::backend::Backend>(flags: &[(ParamId, Tensor<B, 1>)]) -> Vec<ParamId> {
    if flags.is_empty() {
        return Vec::new();
    }
    let all = Tensor::cat(flags.iter().map(|(_, f)| f.clone()).collect(), 0);
    let values = all.into_data().convert::<f32>().into_vec::<f32>().unwrap_or_default();
    flags.iter().zip(values).filter(|(_, v)| *v != 0.0).map(|((id, _), _)| *id).collect()
}

/// Ids of the parameters of `module` whose gradient's first element is non-zero (one host read).
pub fn ids_with_nonzero_first_grad<B: AutodiffBackend, M: AutodiffModule<B>>(
    module: &M,
    grads: &GradientsParams,
) -> Vec<ParamId> {
    flagged_ids(&first_grad_nonzero(module, grads))
}
