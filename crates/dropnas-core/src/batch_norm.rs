//! PyTorch's `BatchNorm2d`, with or without affine parameters.
//!
//! `burn::nn::BatchNorm` always has gamma and beta and keeps a biased running variance; DARTS
//! search cells need BatchNorm without affine parameters, and evaluation must match PyTorch,
//! whose running variance is the unbiased one.
//!
//! Like Burn's, the mode follows the backend: batch statistics (and running-statistics updates)
//! on an autodiff backend, running statistics on the inner backend (`model.valid()`).

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

impl<B: Backend> BatchNorm2d<B> {
    pub fn new(channels: usize, affine: bool, device: &B::Device) -> Self {
        let (weight, bias) = if affine {
            (
                Some(Param::from_tensor(Tensor::ones([channels], device))),
                Some(Param::from_tensor(Tensor::zeros([channels], device))),
            )
        } else {
            (None, None)
        };
        Self {
            weight,
            bias,
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let device = x.device();
        let (mean, var) = if B::ad_enabled(&device) {
            let count = (n * h * w) as f64;
            let mean = x.clone().mean_dim(3).mean_dim(2).mean_dim(0);
            let var = (x.clone() - mean.clone())
                .square()
                .mean_dim(3)
                .mean_dim(2)
                .mean_dim(0);
            // PyTorch keeps the unbiased variance in its running estimate.
            let unbiased = var.clone().detach().reshape([c]) * (count / (count - 1.0).max(1.0));
            let running_mean = self.running_mean.value_sync().to_device(&device)
                * (1.0 - BN_MOMENTUM)
                + mean.clone().detach().reshape([c]) * BN_MOMENTUM;
            let running_var = self.running_var.value_sync().to_device(&device)
                * (1.0 - BN_MOMENTUM)
                + unbiased * BN_MOMENTUM;
            self.running_mean.update(running_mean.detach());
            self.running_var.update(running_var.detach());
            (mean, var)
        } else {
            (
                self.running_mean
                    .value()
                    .to_device(&device)
                    .reshape([1, c, 1, 1]),
                self.running_var
                    .value()
                    .to_device(&device)
                    .reshape([1, c, 1, 1]),
            )
        };
        let x = (x - mean) / (var + BN_EPS).sqrt();
        match (&self.weight, &self.bias) {
            (Some(g), Some(b)) => x * g.val().reshape([1, c, 1, 1]) + b.val().reshape([1, c, 1, 1]),
            _ => x,
        }
    }
}
