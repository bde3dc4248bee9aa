//! PyTorch's `BatchNorm2d`, with or without affine parameters.
//!
//! `burn::nn::BatchNorm` always has gamma and beta and keeps a biased running variance; DARTS
//! search cells need BatchNorm without affine parameters, and evaluation must match PyTorch,
//! whose running variance is the unbiased one.
//!
//! Like Burn's, the mode follows the backend: batch statistics (and running-statistics updates)
//! on an autodiff backend, running statistics on the inner backend (`model.valid()`).

use crate::init::ParamInit;
use crate::kernels::{DropnasBackend, batch_norm_train};
use burn::module::{Module, Param, RunningState};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

pub const BN_MOMENTUM: f64 = 0.1;
pub const BN_EPS: f64 = 1e-5;

#[derive(Module, Debug)]
pub struct BatchNorm2d<B: Backend> {
    /// gamma (PyTorch's name), absent when `affine = false`.
    pub weight: Option<Param<Tensor<B, 1>>>,
    /// beta (PyTorch's name), absent when `affine = false`.
    pub bias: Option<Param<Tensor<B, 1>>>,
    pub running_mean: RunningState<Tensor<B, 1>>,
    pub running_var: RunningState<Tensor<B, 1>>,
}

impl<B: DropnasBackend> BatchNorm2d<B> {
    /// PyTorch's initial state: weight per [`ParamInit::bn_weight`] (U(0, 1) under PyTorch 1.0),
    /// bias 0, running mean 0, running variance 1.
    pub fn new(channels: usize, affine: bool, init: &mut ParamInit<B>) -> Self {
        let (weight, bias) = if affine {
            (Some(init.bn_weight(channels)), Some(Param::from_tensor(init.constant([channels], 0.0))))
        } else {
            (None, None)
        };
        Self {
            weight,
            bias,
            running_mean: RunningState::new(init.constant([channels], 0.0)),
            running_var: RunningState::new(init.constant([channels], 1.0)),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let device = x.device();
        if B::ad_enabled(&device) {
            let (y, mean, var) =
                batch_norm_train(x, self.weight.as_ref().map(|p| p.val()), self.bias.as_ref().map(|p| p.val()), BN_EPS);
            // PyTorch keeps the unbiased variance in its running estimate.
            let count = (n * h * w) as f64;
            let unbiased = var.detach() * (count / (count - 1.0).max(1.0));
            let running_mean =
                self.running_mean.value_sync().to_device(&device) * (1.0 - BN_MOMENTUM) + mean.detach() * BN_MOMENTUM;
            let running_var =
                self.running_var.value_sync().to_device(&device) * (1.0 - BN_MOMENTUM) + unbiased * BN_MOMENTUM;
            self.running_mean.update(running_mean.detach());
            self.running_var.update(running_var.detach());
            return y;
        }
        // Evaluation: the running statistics, broadcast as [N, C, 1, 1] (repeated over the
        // batch), the layout the CPU backend's vectorised broadcast handles.
        let per_sample = |t: Tensor<B, 4>| if n > 1 { t.repeat_dim(0, n) } else { t };
        let mean = self.running_mean.value().to_device(&device).reshape([1, c, 1, 1]);
        let var = self.running_var.value().to_device(&device).reshape([1, c, 1, 1]);
        let mut scale = (var + BN_EPS).sqrt().recip();
        if let Some(g) = &self.weight {
            scale = scale * g.val().reshape([1, c, 1, 1]);
        }
        let mut y = (x - per_sample(mean)) * per_sample(scale);
        if let Some(b) = &self.bias {
            y = y + per_sample(b.val().reshape([1, c, 1, 1]));
        }
        y
    }
}
