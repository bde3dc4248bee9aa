//! The CPU kernels against Burn's generic operations (the path GPUs take), forward and
//! backward, on odd shapes the fixtures do not cover.

use super::*;
use burn::backend::{Autodiff, Flex};
use burn::tensor::Tensor;

type A = Autodiff<Flex>;

fn close(name: &str, a: Tensor<Flex, 4>, b: Tensor<Flex, 4>) {
    let (a, b) = (a.into_data().to_vec::<f32>().unwrap(), b.into_data().to_vec::<f32>().unwrap());
    assert_eq!(a.len(), b.len(), "{name}");
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() <= 1e-5 * scale + 1e-5 * y.abs(), "{name}[{i}]: {x} vs {y}");
    }
}

/// Deterministic pseudo-random values (tests run in parallel and share the backend's RNG).
fn det<const D: usize>(shape: [usize; D], seed: u32) -> Tensor<Flex, D> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed.wrapping_mul(40503)) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    Tensor::from_data(burn::tensor::TensorData::new(v, shape), &Default::default())
}

fn input(shape: [usize; 4]) -> Tensor<Flex, 4> {
    det(shape, 1)
}

#[test]
fn pools_match_burn_on_odd_sizes() {
    for (side, stride, kind) in [
        (7, 1, PoolKind::Max),
        (7, 2, PoolKind::Max),
        (7, 1, PoolKind::Avg),
        (7, 2, PoolKind::Avg),
        (5, 2, PoolKind::Avg),
        (1, 1, PoolKind::Max),
        // blocks of 8 and a tail
        (19, 1, PoolKind::Max),
        (19, 1, PoolKind::Avg),
        (16, 1, PoolKind::Avg),
        (9, 2, PoolKind::Avg),
        (19, 2, PoolKind::Max),
        (19, 2, PoolKind::Avg),
    ] {
        let x = input([2, 3, side, side]);
        let ours = float::<Flex, 4>(Flex::pool3x3(prim(x.clone()), kind, stride));
        let burn = float::<Flex, 4>(generic_pool3x3::<Flex>(prim(x.clone()), kind, stride));
        close(&format!("{kind:?} {side} s{stride} forward"), ours.clone(), burn);
        let g = det(ours.dims(), 9);
        let ours = float::<Flex, 4>(Flex::pool3x3_backward(prim(x.clone()), prim(g.clone()), kind, stride));
        let burn = float::<Flex, 4>(generic_pool3x3_backward::<Flex>(prim(x), prim(g), kind, stride));
        close(&format!("{kind:?} {side} s{stride} backward"), ours, burn);
    }
}

#[test]
fn depthwise_and_batch_norm_match_burn_through_autodiff() {
    for (k, s, p, d, side) in [(3, 1, 1, 1, 7), (5, 2, 2, 1, 7), (5, 1, 4, 2, 3), (3, 2, 2, 2, 6)] {
        let x0 = input([3, 4, side, side]);
        let w0 = det([4, 1, k, k], 2);
        let opts = DepthwiseOptions { stride: [s, s], padding: [p, p], dilation: [d, d] };
        let run = |custom: bool| {
            let x = Tensor::<A, 4>::from_inner(x0.clone()).require_grad();
            let w = Tensor::<A, 4>::from_inner(w0.clone()).require_grad();
            let y = if custom {
                depthwise_conv2d(x.clone(), w.clone(), opts)
            } else {
                burn::tensor::module::conv2d(x.clone(), w.clone(), None, opts.conv_options(4))
            };
            let gy = Tensor::<A, 4>::from_inner(det(y.dims(), 3));
            let grads = (y.clone() * gy).sum().backward();
            (y.inner(), x.grad(&grads).unwrap(), w.grad(&grads).unwrap())
        };
        let (a, b) = (run(true), run(false));
        close("depthwise out", a.0, b.0);
        close("depthwise dx", a.1, b.1);
        close("depthwise dw", a.2, b.2);
    }
    let x0 = input([3, 5, 7, 7]);
    let run = |custom: bool| {
        let x = Tensor::<A, 4>::from_inner(x0.clone()).require_grad();
        let g = Tensor::<A, 1>::from_inner(det([5], 4).add_scalar(1.0)).require_grad();
        let b = Tensor::<A, 1>::from_inner(det([5], 5)).require_grad();
        let (y, mean, var) = if custom {
            batch_norm_train(x.clone(), Some(g.clone()), Some(b.clone()), 1e-5)
        } else {
            let (y, m, v) =
                generic_batch_norm_train::<A>(prim(x.clone()), Some(prim(g.clone())), Some(prim(b.clone())), 1e-5);
            (float(y), float(m), float(v))
        };
        let gy = Tensor::<A, 4>::from_inner(det(y.dims(), 6));
        let grads = (y.clone() * gy).sum().backward();
        let dg = g.grad(&grads).unwrap().reshape([1, 5, 1, 1]);
        let db = b.grad(&grads).unwrap().reshape([1, 5, 1, 1]);
        let stats = Tensor::cat(vec![mean.inner(), var.inner()], 0).reshape([1, 10, 1, 1]);
        (y.inner(), x.grad(&grads).unwrap(), dg, db, stats)
    };
    let (a, b) = (run(true), run(false));
    close("bn out", a.0, b.0);
    close("bn dx", a.1, b.1);
    close("bn dgamma", a.2, b.2);
    close("bn dbeta", a.3, b.3);
    close("bn stats", a.4, b.4);
}

#[test]
fn scale_matches_burn_through_autodiff() {
    let y0 = det([3, 4, 5, 5], 11);
    let w0 = det([1], 12).add_scalar(0.3);
    let run = |custom: bool| {
        let y = Tensor::<A, 4>::from_inner(y0.clone()).require_grad();
        let w = Tensor::<A, 1>::from_inner(w0.clone()).require_grad();
        let out = if custom { scale(y.clone(), w.clone()) } else { y.clone() * w.clone().reshape([1, 1, 1, 1]) };
        let grads = (out.clone() * Tensor::<A, 4>::from_inner(det([3, 4, 5, 5], 13))).sum().backward();
        (out.inner(), y.grad(&grads).unwrap(), w.grad(&grads).unwrap().reshape([1, 1, 1, 1]))
    };
    let (a, b) = (run(true), run(false));
    close("scale out", a.0, b.0);
    close("scale dy", a.1, b.1);
    close("scale dw", a.2, b.2);
}

#[test]
fn non_affine_batch_norm_backward_from_its_output_matches_burn() {
    let x0 = input([3, 5, 6, 6]);
    let run = |custom: bool| {
        let x = Tensor::<A, 4>::from_inner(x0.clone()).require_grad();
        let y = if custom {
            batch_norm_train(x.clone(), None, None, 1e-5).0
        } else {
            float(generic_batch_norm_train::<A>(prim(x.clone()), None, None, 1e-5).0)
        };
        // a ReLU after the BatchNorm, as in a separable convolution: the output is also kept
        // by the next op
        let y = burn::tensor::activation::relu(y);
        let grads = (y.clone() * Tensor::<A, 4>::from_inner(det(y.dims(), 7))).sum().backward();
        (y.inner(), x.grad(&grads).unwrap())
    };
    let (a, b) = (run(true), run(false));
    close("bn (no affine) out", a.0, b.0);
    close("bn (no affine) dx", a.1, b.1);
    // the generic formula of the trait's default method too
    let xhat = float::<Flex, 4>(generic_batch_norm_train::<Flex>(prim(x0.clone()), None, None, 1e-5).0);
    let var = float::<Flex, 1>(generic_batch_norm_train::<Flex>(prim(x0.clone()), None, None, 1e-5).2);
    let dy = det([3, 5, 6, 6], 8);
    let ours = Flex::batch_norm_normalized_backward(prim(xhat.clone()), prim(var.clone()), prim(dy.clone()), 1e-5);
    let generic = generic_batch_norm_normalized_backward::<Flex>(prim(xhat), prim(var), prim(dy), 1e-5);
    close("bn (no affine) kernel vs generic", float(ours), float(generic));
}

#[test]
fn relu_dw_pw_unit_matches_its_three_ops_through_autodiff() {
    // stride 2 and dilation 2 as in reduction cells' SepConv and DilConv; 4 -> 6 channels
    for (k, s, p, d, relu) in [(3, 1, 1, 1, true), (5, 2, 2, 1, true), (3, 1, 2, 2, false), (5, 2, 4, 2, true)] {
        let x0 = input([2, 4, 7, 7]);
        let (dw0, pw0) = (det([4, 1, k, k], 21), det([6, 4, 1, 1], 22));
        let opts = DepthwiseOptions { stride: [s, s], padding: [p, p], dilation: [d, d] };
        let run = |fused: bool| {
            let x = Tensor::<A, 4>::from_inner(x0.clone()).require_grad();
            let dw = Tensor::<A, 4>::from_inner(dw0.clone()).require_grad();
            let pw = Tensor::<A, 4>::from_inner(pw0.clone()).require_grad();
            let y = if fused {
                relu_dw_pw(x.clone(), dw.clone(), pw.clone(), opts, relu)
            } else {
                let r = if relu { burn::tensor::activation::relu(x.clone()) } else { x.clone() };
                let c = burn::tensor::module::conv2d(r, dw.clone(), None, opts.conv_options(4));
                burn::tensor::module::conv2d(
                    c,
                    pw.clone(),
                    None,
                    burn::tensor::ops::ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
                )
            };
            let grads = (y.clone() * Tensor::<A, 4>::from_inner(det(y.dims(), 23))).sum().backward();
            (y.inner(), x.grad(&grads).unwrap(), dw.grad(&grads).unwrap(), pw.grad(&grads).unwrap())
        };
        let (a, b) = (run(true), run(false));
        let name = format!("unit k{k} s{s} d{d} relu {relu}");
        close(&format!("{name} out"), a.0, b.0);
        close(&format!("{name} dx"), a.1, b.1);
        close(&format!("{name} d depthwise"), a.2, b.2);
        close(&format!("{name} d pointwise"), a.3, b.3);
    }
}

#[test]
fn relu_pointwise_matches_relu_then_conv_through_autodiff() {
    let (x0, pw0) = (input([2, 8, 5, 5]), det([3, 8, 1, 1], 31));
    let run = |fused: bool| {
        let x = Tensor::<A, 4>::from_inner(x0.clone()).require_grad();
        let pw = Tensor::<A, 4>::from_inner(pw0.clone()).require_grad();
        let y = if fused {
            relu_pointwise(x.clone(), pw.clone())
        } else {
            let opts = burn::tensor::ops::ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
            burn::tensor::module::conv2d(burn::tensor::activation::relu(x.clone()), pw.clone(), None, opts)
        };
        let grads = (y.clone() * Tensor::<A, 4>::from_inner(det(y.dims(), 32))).sum().backward();
        (y.inner(), x.grad(&grads).unwrap(), pw.grad(&grads).unwrap())
    };
    let (a, b) = (run(true), run(false));
    close("relu-pointwise out", a.0, b.0);
    close("relu-pointwise dx", a.1, b.1);
    close("relu-pointwise d pointwise", a.2, b.2);
}

/// A node that feeds both a concatenation and another op (a cell's pattern): the same
/// gradient with and without `dense_grad` (up to the order in which the autodiff adds the
/// node's three gradients), and the CPU's `contiguous` copies a strided view exactly.
#[test]
fn dense_grad_changes_no_gradient() {
    let x0 = det([2, 3, 4, 4], 21);
    let upstream = det([2, 6, 4, 4], 22);
    let run = |dense: bool| {
        let x = Tensor::<A, 4>::from_inner(x0.clone()).require_grad();
        let y = x.clone().mul_scalar(2.0);
        let cat_in = if dense { vec![dense_grad(x.clone()), y.clone()] } else { vec![x.clone(), y] };
        let out = Tensor::cat(cat_in, 1) * Tensor::<A, 4>::from_inner(upstream.clone());
        let grads = (out.sum() + x.clone().powf_scalar(2.0).sum()).backward();
        x.grad(&grads).unwrap()
    };
    let (with, without) = (run(true), run(false));
    close("dense_grad", with, without);
    let slice_grad = Flex::contiguous(prim(upstream.clone().slice([0..2, 0..3, 0..4, 0..4])));
    assert_eq!(
        float::<Flex, 4>(slice_grad).into_data().to_vec::<f32>().unwrap(),
        upstream.slice([0..2, 0..3, 0..4, 0..4]).into_data().to_vec::<f32>().unwrap()
    );
}
