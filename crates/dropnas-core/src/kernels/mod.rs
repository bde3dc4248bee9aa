//! Operations that get a specialised kernel on some backends, as an extension of Burn's
//! `Backend` trait (Burn's documented way to add custom operations).
//!
//! Model code calls them through [`depthwise_conv2d`]; every backend implements
//! [`DropnasBackend`]: the default methods use Burn's own operations (what runs on wgpu and
//! CUDA), the CPU backend overrides them with the loops of [`depthwise_cpu`], and the autodiff
//! backend ([`autodiff`]) records one graph node whose backward calls the inner backend's
//! gradient methods.

/// Calls `$f` compiled for AVX2 when the CPU has it (the caller's `avx2::$f`, a copy of `$f`
/// with `#[target_feature(enable = "avx2")]`), else its plain build. Without it, x86-64 code is
/// limited to 128-bit vectors.
#[cfg(feature = "flex")]
macro_rules! simd {
    ($f:ident $(:: < $($k:tt),+ >)? ( $($arg:expr),* $(,)? )) => {{
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: the CPU supports AVX2 (checked just above).
                unsafe { avx2::$f $(::<$($k),+>)? ($($arg),*) }
            } else {
                $f $(::<$($k),+>)? ($($arg),*)
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            $f $(::<$($k),+>)? ($($arg),*)
        }
    }};
}

pub mod autodiff;
#[cfg(feature = "flex")]
pub mod batch_norm_cpu;
#[cfg(feature = "flex")]
pub mod depthwise_cpu;
#[cfg(feature = "flex")]
mod depthwise_padded;
#[cfg(feature = "flex")]
mod flex;
#[cfg(feature = "flex")]
mod lanes;
#[cfg(feature = "flex")]
pub mod pointwise_cpu;
#[cfg(feature = "flex")]
pub mod pool_cpu;
#[cfg(all(test, feature = "flex"))]
mod tests;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::ops::{ConvOptions, FloatTensor};
use burn::tensor::{Tensor, TensorPrimitive};

/// Planes per parallel task for planes of `plane` elements: enough work (about 16K elements)
/// per task that the thread pool's scheduling costs nothing next to it.
#[cfg(feature = "flex")]
pub(crate) fn min_planes(plane: usize) -> usize {
    (16384 / plane.max(1)).max(1)
}

/// A vector of `len` values made chunk by chunk in parallel, without zero-filling it first.
/// `fill(i, chunk, scratch)` must write every value of `chunk`, the `i`-th run of `chunk_len`
/// values (fewer for the last); `chunk` is a buffer reused from one chunk to the next, which
/// is then copied into the vector, and `scratch` a reused buffer of the caller's own.
///
/// Why: `vec![0.0; len]` writes every output value twice (the zeros, then the result); on
/// tensors larger than the cache that is a second pass over memory (6% of a search step,
/// measured). Here each chunk is computed in a buffer that stays in cache and written out once.
#[cfg(feature = "flex")]
pub(crate) fn par_fill(
    len: usize,
    chunk_len: usize,
    min_chunks: usize,
    fill: impl Fn(usize, &mut [f32], &mut Vec<f32>) + Sync,
) -> Vec<f32> {
    use rayon::prelude::*;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let chunk_len = chunk_len.max(1);
    out.spare_capacity_mut()[..len].par_chunks_mut(chunk_len).enumerate().with_min_len(min_chunks).for_each_init(
        || (vec![0.0f32; chunk_len], Vec::new()),
        |(tmp, scratch), (i, dst)| {
            let tmp = &mut tmp[..dst.len()];
            fill(i, tmp, scratch);
            for (d, &v) in dst.iter_mut().zip(tmp.iter()) {
                d.write(v);
            }
        },
    );
    // SAFETY: every one of the `len` values was written just above (each chunk in full)
    unsafe { out.set_len(len) };
    out
}

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

fn float<B: Backend, const D: usize>(t: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

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

fn weight_channels<B: Backend>(weight: &FloatTensor<B>) -> usize {
    use burn::tensor::TensorMetadata;
    weight.shape()[0]
}

/// An autodiff backend whose inner backend also has the dropnas operations: what training runs on.
pub trait DropnasAutodiffBackend: AutodiffBackend<InnerBackend: DropnasBackend> + DropnasBackend {}

impl<B> DropnasAutodiffBackend for B where B: AutodiffBackend<InnerBackend: DropnasBackend> + DropnasBackend {}

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

// The GPU backends use Burn's own convolution (the trait's default methods).
#[cfg(feature = "wgpu")]
impl DropnasBackend for burn::backend::Wgpu {}
#[cfg(feature = "cuda")]
impl DropnasBackend for burn::backend::Cuda {}
#[cfg(feature = "ndarray")]
impl DropnasBackend for burn::backend::NdArray {}

/// Runs `f` on a worker of the compute thread pool (rayon's global pool on the CPU backend).
///
/// Every CPU kernel is a short parallel burst. Called from a thread outside the pool, each burst
/// is injected into the pool and the caller sleeps until it is done: two thread wake-ups per
/// operation, thousands per training step. From inside the pool the caller does its share of
/// the work itself and the other workers steal the rest.
pub fn on_compute_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(feature = "flex")]
    {
        // the caller's work now runs on a pool thread: give those the main thread's stack size
        // (an error only means that the pool exists already)
        let _ = rayon::ThreadPoolBuilder::new().stack_size(8 << 20).build_global();
        let mut out = None;
        rayon::scope(|s| s.spawn(|_| out = Some(f())));
        out.expect("the compute pool ran the job")
    }
    #[cfg(not(feature = "flex"))]
    {
        f()
    }
}
