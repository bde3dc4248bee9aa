//! Per-op timings of the CPU kernels against Burn's generic path, forward + backward, at the
//! shapes of a DARTS search cell (N=32, C=16, 32x32). `cargo bench -p dropnas-core --bench kernels`;
//! `python3 tools/reference/bench_ops.py` times the same ops in PyTorch.

use burn::backend::{Autodiff, Flex};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, Tensor};
use dropnas_core::kernels::{DepthwiseOptions, PoolKind, batch_norm_train, depthwise_conv2d, pointwise_conv, pool3x3};
use std::time::Instant;

type B = Autodiff<Flex>;

fn time(name: &str, reps: usize, mut f: impl FnMut()) {
    f();
    let mut v: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("{name:<44} {:>8.3} ms (median of {reps})", v[reps / 2]);
}

fn main() {
    let device = Default::default();
    let (n, c, s) = (32, 16, 32);
    let x0 = Tensor::<Flex, 4>::random([n, c, s, s], Distribution::Normal(0.0, 1.0), &device);
    let x = || Tensor::<B, 4>::from_inner(x0.clone()).require_grad();
    for (k, stride, pad, dil, label) in [
        (3, 1, 1, 1, "3x3"),
        (5, 1, 2, 1, "5x5"),
        (3, 1, 2, 2, "3x3 dil 2"),
        (5, 1, 4, 2, "5x5 dil 2"),
        (3, 2, 1, 1, "3x3 stride 2"),
    ] {
        let w = Tensor::<B, 4>::random([c, 1, k, k], Distribution::Normal(0.0, 0.1), &device).require_grad();
        let opts = DepthwiseOptions { stride: [stride, stride], padding: [pad, pad], dilation: [dil, dil] };
        time(&format!("depthwise {label} fwd+bwd (dropnas kernel)"), 15, || {
            let y = depthwise_conv2d(x(), w.clone(), opts);
            let _ = y.sum().backward();
        });
        time(&format!("depthwise {label} fwd+bwd (burn conv2d)"), 5, || {
            let y = conv2d(x(), w.clone(), None, ConvOptions::new([stride, stride], [pad, pad], [dil, dil], c));
            let _ = y.sum().backward();
        });
    }
    let g = Tensor::<B, 1>::ones([c], &device).require_grad();
    let b = Tensor::<B, 1>::zeros([c], &device).require_grad();
    time("(baseline: sum + backward alone)", 15, || {
        let _ = x().sum().backward();
    });
    time("batch norm affine fwd+bwd (dropnas kernel)", 15, || {
        let (y, _, _) = batch_norm_train(x(), Some(g.clone()), Some(b.clone()), 1e-5);
        let _ = y.sum().backward();
    });
    time("batch norm affine fwd+bwd (tensor ops)", 15, || {
        let xx = x();
        let mean = xx.clone().mean_dim(3).mean_dim(2).mean_dim(0);
        let cen = xx - mean;
        let var = cen.clone().square().mean_dim(3).mean_dim(2).mean_dim(0);
        let y = cen * (var + 1e-5).sqrt().recip() * g.clone().reshape([1, c, 1, 1]) + b.clone().reshape([1, c, 1, 1]);
        let _ = y.sum().backward();
    });
    for (kind, stride) in [(PoolKind::Max, 1), (PoolKind::Avg, 1), (PoolKind::Max, 2)] {
        time(&format!("{kind:?} pool 3x3 stride {stride} fwd+bwd (dropnas kernel)"), 15, || {
            let _ = pool3x3(x(), kind, stride).sum().backward();
        });
    }
    let wp = Tensor::<B, 4>::random([c, c, 1, 1], Distribution::Normal(0.0, 0.1), &device).require_grad();
    time("pointwise 1x1 fwd+bwd (dropnas kernel)", 15, || {
        let _ = pointwise_conv(x(), wp.clone()).sum().backward();
    });
    time("pointwise 1x1 fwd+bwd (matmul)", 15, || {
        let y = wp.clone().reshape([1, c, c]).matmul(x().reshape([n, c, s * s]));
        let _ = y.sum().backward();
    });
    time("pointwise 1x1 fwd+bwd (burn conv2d)", 5, || {
        let y = conv2d(x(), wp.clone(), None, ConvOptions::new([1, 1], [0, 0], [1, 1], 1));
        let _ = y.sum().backward();
    });
}
