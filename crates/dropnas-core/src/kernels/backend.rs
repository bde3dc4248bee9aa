//! The backend extension: [`DropnasBackend`] (Burn's `Backend` with the operations dropnas
//! specialises, each defaulting to Burn's own operations in [`super::generic`]) and its options.

use super::generic::*;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::{ConvOptions, FloatTensor};

/// Stride, padding and dilation of a depthwise convolution (groups = channels).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DepthwiseOptions {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl DepthwiseOptions {
    pub fn conv_options(&self, channels: usize) -> ConvOptions<2> {
        ConvOptions::new(self.stride, self.padding, self.dilation, channels)
    }
}

/// Which 3x3 pooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

/// Burn's `Backend` with the operations dropnas specialises.
pub trait DropnasBackend: Backend {
    /// Depthwise convolution: `x` `[N, C, H, W]`, `weight` `[C, 1, kh, kw]`, no bias.
    fn depthwise_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        options: DepthwiseOptions,
    ) -> FloatTensor<Self> {
        let channels = weight_channels::<Self>(&weight);
        Self::conv2d(x, weight, None, options.conv_options(channels))
    }

    /// Gradients of [`Self::depthwise_conv2d`] with respect to the input and the weight.
    fn depthwise_conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        options: DepthwiseOptions,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let conv = options.conv_options(weight_channels::<Self>(&weight));
        let dx = Self::conv2d_x_backward(x.clone(), weight.clone(), grad_out.clone(), conv.clone());
        let dw = Self::conv2d_weight_backward(x, weight, grad_out, conv);
        (dx, dw)
    }

    /// `pointwise(depthwise(relu(x)))` (the ReLU only when `relu`): the unit DilConv and SepConv
    /// are made of, as one operation. `pw_weight` is `[C_out, C_in, 1, 1]`.
    ///
    /// Why one operation: its backward needs only `x`. On an autodiff backend the unit keeps `x`
    /// (which the graph holds anyway) and recomputes the ReLU and the depthwise output in the
    /// backward pass, instead of keeping both for every op of every edge until then. Same
    /// values, same gradients; about half of a search step's saved activations.
    fn relu_dw_pw(
        x: FloatTensor<Self>,
        dw_weight: FloatTensor<Self>,
        pw_weight: FloatTensor<Self>,
        options: DepthwiseOptions,
        relu: bool,
    ) -> FloatTensor<Self> {
        generic_relu_dw_pw::<Self>(x, dw_weight, pw_weight, options, relu)
    }

    /// Gradients of [`Self::relu_dw_pw`] with respect to `x`, `dw_weight` and `pw_weight`.
    #[allow(clippy::type_complexity)]
    fn relu_dw_pw_backward(
        x: FloatTensor<Self>,
        dw_weight: FloatTensor<Self>,
        pw_weight: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        options: DepthwiseOptions,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        generic_relu_dw_pw_backward::<Self>(x, dw_weight, pw_weight, grad_out, options, relu)
    }

    /// `pointwise(relu(x))` (the ReLU only when `relu`): a cell's input preprocessing (ReLU,
    /// 1x1 convolution) as one operation that keeps only `x` for the backward pass, for the same
    /// reason as [`Self::relu_dw_pw`]. A cell's output feeds the preprocessing of the next two
    /// cells; both then keep that one tensor instead of a ReLU of it each. Without the ReLU it
    /// is every other 1x1 convolution (FactorizedReduce, the auxiliary head).
    fn relu_pointwise(x: FloatTensor<Self>, pw_weight: FloatTensor<Self>, relu: bool) -> FloatTensor<Self> {
        generic_relu_pointwise::<Self>(x, pw_weight, relu)
    }

    /// Gradients of [`Self::relu_pointwise`] with respect to `x` and `pw_weight`.
    fn relu_pointwise_backward(
        x: FloatTensor<Self>,
        pw_weight: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        relu: bool,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        generic_relu_pointwise_backward::<Self>(x, pw_weight, grad_out, relu)
    }

    /// `x` as it is; on an autodiff backend, its gradient is made dense (see [`dense_grad`]).
    fn dense_grad(x: FloatTensor<Self>) -> FloatTensor<Self> {
        x
    }

    /// The values of `x` in a dense row-major layout: a copy if `x` is a strided view (the CPU
    /// backend), `x` itself elsewhere.
    fn contiguous(x: FloatTensor<Self>) -> FloatTensor<Self> {
        x
    }

    /// `y * w` for a one-element `w`: an op's output scaled by its mixing weight.
    fn scale(y: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        generic_scale::<Self>(y, w)
    }

    /// Gradients of [`Self::scale`]: `(dout * w, sum(dout * y))`.
    fn scale_backward(
        y: FloatTensor<Self>,
        w: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        generic_scale_backward::<Self>(y, w, grad_out)
    }

    /// 3x3 pooling with padding 1 and stride `stride`: max, or average without counting the
    /// padding.
    fn pool3x3(x: FloatTensor<Self>, kind: PoolKind, stride: usize) -> FloatTensor<Self> {
        generic_pool3x3::<Self>(x, kind, stride)
    }

    /// Gradient of [`Self::pool3x3`] with respect to its input.
    fn pool3x3_backward(
        x: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        kind: PoolKind,
        stride: usize,
    ) -> FloatTensor<Self> {
        generic_pool3x3_backward::<Self>(x, grad_out, kind, stride)
    }

    /// Training-mode batch normalisation over `(N, H, W)` of `x` `[N, C, H, W]`: returns the
    /// output, the batch mean and the biased batch variance (`[C]` each). `gamma`/`beta` are
    /// absent for BatchNorm without affine parameters.
    fn batch_norm_train(
        x: FloatTensor<Self>,
        gamma: Option<FloatTensor<Self>>,
        beta: Option<FloatTensor<Self>>,
        eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        generic_batch_norm_train::<Self>(x, gamma, beta, eps)
    }

    /// Input gradient of the non-affine [`Self::batch_norm_train`] from its output, which is the
    /// normalised input `xhat` itself.
    ///
    /// Why: the op after a search cell's BatchNorm (the mixing-weight scale, or the next ReLU
    /// unit) keeps that output anyway; keeping it for the BatchNorm too, instead of the input,
    /// frees the input as soon as the forward has used it.
    fn batch_norm_normalized_backward(
        xhat: FloatTensor<Self>,
        var: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        eps: f64,
    ) -> FloatTensor<Self> {
        generic_batch_norm_normalized_backward::<Self>(xhat, var, grad_out, eps)
    }

    /// Gradients of [`Self::batch_norm_train`]: `(dx, dgamma, dbeta)`, the last two when affine.
    #[allow(clippy::type_complexity)]
    fn batch_norm_train_backward(
        x: FloatTensor<Self>,
        gamma: Option<FloatTensor<Self>>,
        mean: FloatTensor<Self>,
        var: FloatTensor<Self>,
        grad_out: FloatTensor<Self>,
        eps: f64,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>, Option<FloatTensor<Self>>) {
        generic_batch_norm_train_backward::<Self>(x, gamma, mean, var, grad_out, eps)
    }
}

fn weight_channels<B: Backend>(weight: &FloatTensor<B>) -> usize {
    use burn::tensor::TensorMetadata;
    weight.shape()[0]
}

/// An autodiff backend whose inner backend also has the dropnas operations: what training runs on.
pub trait DropnasAutodiffBackend: AutodiffBackend<InnerBackend: DropnasBackend> + DropnasBackend {}

impl<B> DropnasAutodiffBackend for B where B: AutodiffBackend<InnerBackend: DropnasBackend> + DropnasBackend {}
