//! The default of every [`DropnasBackend`] operation, composed of Burn's tensor operations:
//! what the GPU backends run, and the reference the CPU kernels are tested against.

use super::backend::{DepthwiseOptions, DropnasBackend, PoolKind};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

/// The 1x1 convolution of `d` `[N, C_in, H, W]` by `pw` `[C_out, C_in, 1, 1]`, as a matrix
/// product per image.
pub(crate) fn pointwise<B: Backend>(d: FloatTensor<B>, pw: FloatTensor<B>) -> FloatTensor<B> {
    let (d, pw) = (float::<B, 4>(d), float::<B, 4>(pw));
    let ([n, c_in, h, w], [c_out, ..]) = (d.dims(), pw.dims());
    prim(pw.reshape([1, c_out, c_in]).matmul(d.reshape([n, c_in, h * w])).reshape([n, c_out, h, w]))
}

/// [`DropnasBackend::relu_pointwise`] composed of the backend's operations: the default.
pub fn generic_relu_pointwise<B: Backend>(x: FloatTensor<B>, pw: FloatTensor<B>, relu: bool) -> FloatTensor<B> {
    let r = if relu { B::relu(x) } else { x };
    pointwise::<B>(r, pw)
}

/// [`DropnasBackend::relu_pointwise_backward`] composed of the backend's operations: the
/// default.
pub fn generic_relu_pointwise_backward<B: Backend>(
    x: FloatTensor<B>,
    pw: FloatTensor<B>,
    grad_out: FloatTensor<B>,
    relu: bool,
) -> (FloatTensor<B>, FloatTensor<B>) {
    if !relu {
        return pointwise_backward::<B>(x, pw, grad_out);
    }
    let r = B::relu(x);
    let (d_r, d_pw) = pointwise_backward::<B>(r.clone(), pw, grad_out);
    (B::relu_backward(r, d_r), d_pw)
}

/// [`DropnasBackend::relu_dw_pw`] composed of the backend's operations: the default.
pub fn generic_relu_dw_pw<B: DropnasBackend>(
    x: FloatTensor<B>,
    dw_weight: FloatTensor<B>,
    pw_weight: FloatTensor<B>,
    options: DepthwiseOptions,
    relu: bool,
) -> FloatTensor<B> {
    let r = if relu { B::relu(x) } else { x };
    pointwise::<B>(B::depthwise_conv2d(r, dw_weight, options), pw_weight)
}

/// [`DropnasBackend::relu_dw_pw_backward`]: recomputes the ReLU and the depthwise output, then
/// runs the three backward passes in turn.
#[allow(clippy::type_complexity)]
pub fn generic_relu_dw_pw_backward<B: DropnasBackend>(
    x: FloatTensor<B>,
    dw_weight: FloatTensor<B>,
    pw_weight: FloatTensor<B>,
    grad_out: FloatTensor<B>,
    options: DepthwiseOptions,
    relu: bool,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let r = if relu { B::relu(x) } else { x };
    let d = B::depthwise_conv2d(r.clone(), dw_weight.clone(), options);
    let (d_d, d_pw) = pointwise_backward::<B>(d, pw_weight, grad_out);
    let (d_r, d_dw) = B::depthwise_conv2d_backward(r.clone(), dw_weight, d_d, options);
    let d_x = if relu { B::relu_backward(r, d_r) } else { d_r };
    (d_x, d_dw, d_pw)
}

/// Gradients of [`pointwise`] with respect to `d` and `pw`.
pub(crate) fn pointwise_backward<B: Backend>(
    d: FloatTensor<B>,
    pw: FloatTensor<B>,
    grad_out: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let (d, pw, g) = (float::<B, 4>(d), float::<B, 4>(pw), float::<B, 4>(grad_out));
    let ([n, c_in, h, w], [_, c_out, ..]) = (d.dims(), g.dims());
    let g = g.reshape([n, c_out, h * w]);
    let d_pw = g.clone().matmul(d.reshape([n, c_in, h * w]).swap_dims(1, 2)).sum_dim(0).reshape([c_out, c_in, 1, 1]);
    let d_d = pw.reshape([1, c_out, c_in]).swap_dims(1, 2).matmul(g).reshape([n, c_in, h, w]);
    (prim(d_d), prim(d_pw))
}

/// [`DropnasBackend::batch_norm_normalized_backward`] composed of Burn's tensor operations.
pub fn generic_batch_norm_normalized_backward<B: Backend>(
    xhat: FloatTensor<B>,
    var: FloatTensor<B>,
    grad_out: FloatTensor<B>,
    eps: f64,
) -> FloatTensor<B> {
    let (xhat, dy) = (float::<B, 4>(xhat), float::<B, 4>(grad_out));
    let [_, c, _, _] = xhat.dims();
    let invstd = (float::<B, 1>(var).reshape([1, c, 1, 1]) + eps).sqrt().recip();
    let mean_dy = dy.clone().mean_dim(3).mean_dim(2).mean_dim(0);
    let mean_dy_xhat = (dy.clone() * xhat.clone()).mean_dim(3).mean_dim(2).mean_dim(0);
    prim(invstd * (dy - mean_dy - xhat * mean_dy_xhat))
}

/// [`DropnasBackend::scale`] with Burn's broadcasting product: the default.
pub fn generic_scale<B: Backend>(y: FloatTensor<B>, w: FloatTensor<B>) -> FloatTensor<B> {
    prim(float::<B, 4>(y) * float::<B, 1>(w).reshape([1, 1, 1, 1]))
}

/// [`DropnasBackend::scale_backward`] with Burn's operations: the default.
pub fn generic_scale_backward<B: Backend>(
    y: FloatTensor<B>,
    w: FloatTensor<B>,
    grad_out: FloatTensor<B>,
) -> (FloatTensor<B>, FloatTensor<B>) {
    let (y, dout) = (float::<B, 4>(y), float::<B, 4>(grad_out));
    let dy = dout.clone() * float::<B, 1>(w).reshape([1, 1, 1, 1]);
    let dw = (dout * y).sum_dim(3).sum_dim(2).sum_dim(1).sum();
    (prim(dy), prim(dw))
}

/// [`DropnasBackend::pool3x3`] with Burn's pooling: the default.
pub fn generic_pool3x3<B: Backend>(x: FloatTensor<B>, kind: PoolKind, stride: usize) -> FloatTensor<B> {
    match kind {
        PoolKind::Max => B::max_pool2d(x, [3, 3], [stride, stride], [1, 1], [1, 1], false),
        PoolKind::Avg => B::avg_pool2d(x, [3, 3], [stride, stride], [1, 1], false, false),
    }
}

/// [`DropnasBackend::pool3x3_backward`] with Burn's pooling gradients: the default.
pub fn generic_pool3x3_backward<B: Backend>(
    x: FloatTensor<B>,
    grad_out: FloatTensor<B>,
    kind: PoolKind,
    stride: usize,
) -> FloatTensor<B> {
    let s = [stride, stride];
    match kind {
        PoolKind::Max => {
            let idx = B::max_pool2d_with_indices(x.clone(), [3, 3], s, [1, 1], [1, 1], false).indices;
            B::max_pool2d_with_indices_backward(x, [3, 3], s, [1, 1], [1, 1], false, grad_out, idx).x_grad
        }
        PoolKind::Avg => B::avg_pool2d_backward(x, grad_out, [3, 3], s, [1, 1], false, false),
    }
}

/// [`DropnasBackend::batch_norm_train`] composed of Burn's tensor operations: the default
/// (what runs on the GPU backends).
pub fn generic_batch_norm_train<B: Backend>(
    x: FloatTensor<B>,
    gamma: Option<FloatTensor<B>>,
    beta: Option<FloatTensor<B>>,
    eps: f64,
) -> (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) {
    let x = float::<B, 4>(x);
    let [_, c, _, _] = x.dims();
    let mean = x.clone().mean_dim(3).mean_dim(2).mean_dim(0);
    let centered = x - mean.clone();
    let var = centered.clone().square().mean_dim(3).mean_dim(2).mean_dim(0);
    let mut scale = (var.clone() + eps).sqrt().recip();
    if let Some(g) = gamma {
        scale = scale * float::<B, 1>(g).reshape([1, c, 1, 1]);
    }
    let mut y = centered * scale;
    if let Some(b) = beta {
        y = y + float::<B, 1>(b).reshape([1, c, 1, 1]);
    }
    (prim(y), prim(mean.reshape([c])), prim(var.reshape([c])))
}

/// [`DropnasBackend::batch_norm_train_backward`] composed of Burn's tensor operations.
#[allow(clippy::type_complexity)]
pub fn generic_batch_norm_train_backward<B: Backend>(
    x: FloatTensor<B>,
    gamma: Option<FloatTensor<B>>,
    mean: FloatTensor<B>,
    var: FloatTensor<B>,
    grad_out: FloatTensor<B>,
    eps: f64,
) -> (FloatTensor<B>, Option<FloatTensor<B>>, Option<FloatTensor<B>>) {
    let x = float::<B, 4>(x);
    let dy = float::<B, 4>(grad_out);
    let [_, c, _, _] = x.dims();
    let affine = gamma.is_some();
    let mean = float::<B, 1>(mean).reshape([1, c, 1, 1]);
    let invstd = (float::<B, 1>(var).reshape([1, c, 1, 1]) + eps).sqrt().recip();
    let xhat = (x - mean) * invstd.clone();
    let mean_dy = dy.clone().mean_dim(3).mean_dim(2).mean_dim(0);
    let mean_dy_xhat = (dy.clone() * xhat.clone()).mean_dim(3).mean_dim(2).mean_dim(0);
    let k = match gamma.clone() {
        Some(g) => invstd * float::<B, 1>(g).reshape([1, c, 1, 1]),
        None => invstd,
    };
    let dx = k * (dy.clone() - mean_dy.clone() - xhat.clone() * mean_dy_xhat.clone());
    let [n, _, h, w] = dy.dims();
    let count = (n * h * w) as f64;
    let dgamma = affine.then(|| prim((mean_dy_xhat * count).reshape([c])));
    let dbeta = affine.then(|| prim((mean_dy * count).reshape([c])));
    (prim(dx), dgamma, dbeta)
}

pub(crate) fn float<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

pub(crate) fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}
