//! A bias-free 2-D convolution: every convolution of the DARTS family has no bias.
//!
//! Kept as our own module (instead of `burn::nn::conv::Conv2d`) so that the weight layout and
//! initialisation are PyTorch's by construction and the forward is one call we can specialise.

use crate::init::ParamInit;
use crate::kernels::{DepthwiseOptions, DropnasBackend, depthwise_conv2d, pointwise_conv};
use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, s};

#[derive(Module, Debug)]
pub struct Conv2d<B: Backend> {
    /// `[out, in / groups, kh, kw]`, as PyTorch.
    pub weight: Param<Tensor<B, 4>>,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

/// Shape and hyper-parameters of a [`Conv2d`].
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec {
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl ConvSpec {
    /// A square `k x k` convolution with the given stride and padding.
    pub fn square(c_in: usize, c_out: usize, k: usize, stride: usize, padding: usize) -> Self {
        Self {
            c_in,
            c_out,
            kernel: [k, k],
            stride: [stride, stride],
            padding: [padding, padding],
            dilation: [1, 1],
            groups: 1,
        }
    }

    /// A depthwise `k x k` convolution (one filter per channel).
    pub fn depthwise(c: usize, k: usize, stride: usize, padding: usize, dilation: usize) -> Self {
        Self { dilation: [dilation, dilation], groups: c, ..Self::square(c, c, k, stride, padding) }
    }

    /// The convolution with PyTorch's initial weight, drawn by `init`.
    pub fn init<B: Backend>(self, init: &mut ParamInit<B>) -> Conv2d<B> {
        let weight = init.conv_weight([self.c_out, self.c_in / self.groups, self.kernel[0], self.kernel[1]]);
        Conv2d { weight, stride: self.stride, padding: self.padding, dilation: self.dilation, groups: self.groups }
    }
}

impl<B: DropnasBackend> Conv2d<B> {
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [c_out, c_in_g, kh, kw] = self.weight.dims();
        if [kh, kw] == [1, 1] && self.padding == [0, 0] && self.groups == 1 {
            // A pointwise convolution is a matrix product per image; as one its forward and both
            // backward passes run on the CPU's 1x1 kernel (a matmul on the GPUs) instead of the
            // backend's generic convolution.
            // A stride just picks every s-th pixel first (FactorizedReduce's convolutions).
            let [sh, sw] = self.stride;
            let x = if [sh, sw] == [1, 1] { x } else { x.slice(s![.., .., ..;sh as isize, ..;sw as isize]) };
            return pointwise_conv(x, self.weight.val());
        }
        if self.groups == c_out && c_in_g == 1 && x.dims()[1] == c_out {
            let options = DepthwiseOptions { stride: self.stride, padding: self.padding, dilation: self.dilation };
            return depthwise_conv2d(x, self.weight.val(), options);
        }
        conv2d(x, self.weight.val(), None, ConvOptions::new(self.stride, self.padding, self.dilation, self.groups))
    }
}
