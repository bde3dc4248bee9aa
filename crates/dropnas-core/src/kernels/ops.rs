//! The operations as model code calls them: tensors in, tensors out, through the backend's
//! [`DropnasBackend`] method.

use super::backend::{DepthwiseOptions, DropnasBackend, PoolKind};
use super::generic::{float, prim};
use burn::tensor::{Tensor, TensorPrimitive};

/// `y * w` for a one-element `w` (see [`DropnasBackend::scale`]).
pub fn scale<B: DropnasBackend>(y: Tensor<B, 4>, w: Tensor<B, 1>) -> Tensor<B, 4> {
    float(B::scale(prim(y), prim(w)))
}

/// 3x3 pooling with padding 1 (see [`DropnasBackend::pool3x3`]).
pub fn pool3x3<B: DropnasBackend>(x: Tensor<B, 4>, kind: PoolKind, stride: usize) -> Tensor<B, 4> {
    float(B::pool3x3(prim(x), kind, stride))
}

/// Training-mode batch normalisation (see [`DropnasBackend::batch_norm_train`]): output, batch
/// mean and biased batch variance.
pub fn batch_norm_train<B: DropnasBackend>(
    x: Tensor<B, 4>,
    gamma: Option<Tensor<B, 1>>,
    beta: Option<Tensor<B, 1>>,
    eps: f64,
) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>) {
    let (y, mean, var) = B::batch_norm_train(prim(x), gamma.map(prim), beta.map(prim), eps);
    (float(y), float(mean), float(var))
}

/// A 1x1 convolution (stride 1, no padding) of `x` by `weight` `[C_out, C_in, 1, 1]`: a matrix
/// product per image, through [`DropnasBackend::relu_pointwise`] without the ReLU (the CPU's
/// 1x1 kernel; the backend's matmul elsewhere).
pub fn pointwise_conv<B: DropnasBackend>(x: Tensor<B, 4>, weight: Tensor<B, 4>) -> Tensor<B, 4> {
    float(B::relu_pointwise(prim(x), prim(weight), false))
}

/// `x`, whose gradient arrives as a dense tensor: put it before a concatenation.
///
/// Why: the backward of a concatenation hands each input a strided slice of the output's
/// gradient. A cell's node feeds both the concatenation and later ops, so its two gradients
/// are added, and the CPU backend adds a strided tensor to a dense one element by element
/// through index arithmetic (4% of an augment step, measured). One copy into a dense tensor
/// first makes that addition a plain vector loop.
pub fn dense_grad<B: DropnasBackend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    float(B::dense_grad(prim(x)))
}

/// `pointwise(depthwise(relu(x)))` as one operation (see [`DropnasBackend::relu_dw_pw`]).
pub fn relu_dw_pw<B: DropnasBackend>(
    x: Tensor<B, 4>,
    dw_weight: Tensor<B, 4>,
    pw_weight: Tensor<B, 4>,
    options: DepthwiseOptions,
    relu: bool,
) -> Tensor<B, 4> {
    float(B::relu_dw_pw(prim(x), prim(dw_weight), prim(pw_weight), options, relu))
}

/// `pointwise(relu(x))` as one operation (see [`DropnasBackend::relu_pointwise`]).
pub fn relu_pointwise<B: DropnasBackend>(x: Tensor<B, 4>, pw_weight: Tensor<B, 4>) -> Tensor<B, 4> {
    float(B::relu_pointwise(prim(x), prim(pw_weight), true))
}

/// Depthwise convolution of `x` by `weight` (`[C, 1, kh, kw]`).
pub fn depthwise_conv2d<B: DropnasBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    options: DepthwiseOptions,
) -> Tensor<B, 4> {
    let out = B::depthwise_conv2d(x.into_primitive().tensor(), weight.into_primitive().tensor(), options);
    Tensor::from_primitive(TensorPrimitive::Float(out))
}
