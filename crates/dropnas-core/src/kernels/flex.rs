//! The CPU backend's kernels: depthwise ([`super::depthwise_cpu`]) and 1x1
//! ([`super::pointwise_cpu`]) convolutions, pools, batch norm, the mixing-weight scale.

use super::depthwise_cpu::{DwGeom, backward_input, backward_weight, forward};
use super::lanes::dot;
use super::pointwise_cpu::{self, PwGeom};
use super::pool_cpu::{self, PoolGeom};
use super::{DepthwiseOptions, DropnasBackend, PoolKind};
use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use rayon::prelude::*;

/// Elements per parallel chunk of the elementwise kernels.
const CHUNK: usize = 1 << 14;

fn f32_data(t: &FlexTensor) -> (FlexTensor, Vec<usize>) {
    let t = t.to_contiguous();
    let shape = t.layout().shape().to_vec();
    (t, shape)
}

fn geom(x: &[usize], w: &[usize], o: &DepthwiseOptions) -> DwGeom {
    DwGeom {
        n: x[0],
        c: x[1],
        h: x[2],
        w: x[3],
        kh: w[2],
        kw: w[3],
        stride: o.stride,
        padding: o.padding,
        dilation: o.dilation,
    }
}

fn tensor(v: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

impl DropnasBackend for Flex {
    fn depthwise_conv2d(x: FlexTensor, weight: FlexTensor, options: DepthwiseOptions) -> FlexTensor {
        let (x, xs) = f32_data(&x);
        let (w, ws) = f32_data(&weight);
        let g = geom(&xs, &ws, &options);
        let (Some(xv), Some(wv)) = (x.as_slice::<f32>(), w.as_slice::<f32>()) else {
            // not f32: Burn's generic convolution
            let conv = options.conv_options(ws[0]);
            return <Flex as burn::tensor::ops::ModuleOps<Flex>>::conv2d(x, w, None, conv);
        };
        tensor(forward(xv, wv, &g, false), [g.n, g.c, g.out_h(), g.out_w()])
    }

    fn relu_dw_pw(x: FlexTensor, dw: FlexTensor, pw: FlexTensor, options: DepthwiseOptions, relu: bool) -> FlexTensor {
        let (x, xs) = f32_data(&x);
        let (w, ws) = f32_data(&dw);
        let g = geom(&xs, &ws, &options);
        let (Some(xv), Some(wv)) = (x.as_slice::<f32>(), w.as_slice::<f32>()) else {
            return super::generic_relu_dw_pw::<Flex>(x, w, pw, options, relu);
        };
        // the ReLU is applied plane by plane as the loops read the input: no ReLU tensor
        let d = tensor(forward(xv, wv, &g, relu), [g.n, g.c, g.out_h(), g.out_w()]);
        Self::relu_pointwise(d, pw, false)
    }

    fn relu_dw_pw_backward(
        x: FlexTensor,
        dw: FlexTensor,
        pw: FlexTensor,
        grad_out: FlexTensor,
        options: DepthwiseOptions,
        relu: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (x, xs) = f32_data(&x);
        let (w, ws) = f32_data(&dw);
        let g = geom(&xs, &ws, &options);
        let (Some(xv), Some(wv)) = (x.as_slice::<f32>(), w.as_slice::<f32>()) else {
            return super::generic_relu_dw_pw_backward::<Flex>(x, w, pw, grad_out, options, relu);
        };
        let d = tensor(forward(xv, wv, &g, relu), [g.n, g.c, g.out_h(), g.out_w()]);
        let (d_d, d_pw) = Self::relu_pointwise_backward(d, pw.clone(), grad_out.clone(), false);
        let (d_d, _) = f32_data(&d_d);
        let Some(gv) = d_d.as_slice::<f32>() else {
            return super::generic_relu_dw_pw_backward::<Flex>(x, w, pw, grad_out, options, relu);
        };
        let dx = tensor(backward_input(gv, wv, &g, relu.then_some(xv)), [g.n, g.c, g.h, g.w]);
        let d_dw = tensor(backward_weight(xv, gv, &g, relu), [g.c, 1, g.kh, g.kw]);
        (dx, d_dw, d_pw)
    }

    fn relu_pointwise(x: FlexTensor, pw: FlexTensor, relu: bool) -> FlexTensor {
        let (x, xs) = f32_data(&x);
        let (w, ws) = f32_data(&pw);
        let g = PwGeom { n: xs[0], ci: xs[1], co: ws[0], hw: xs[2] * xs[3] };
        let (Some(xv), Some(wv)) = (x.as_slice::<f32>(), w.as_slice::<f32>()) else {
            return super::generic_relu_pointwise::<Flex>(x, w, relu);
        };
        tensor(pointwise_cpu::forward(xv, wv, &g, relu), [g.n, g.co, xs[2], xs[3]])
    }

    fn relu_pointwise_backward(
        x: FlexTensor,
        pw: FlexTensor,
        grad_out: FlexTensor,
        relu: bool,
    ) -> (FlexTensor, FlexTensor) {
        let (x, xs) = f32_data(&x);
        let (w, ws) = f32_data(&pw);
        let (go, _) = f32_data(&grad_out);
        let g = PwGeom { n: xs[0], ci: xs[1], co: ws[0], hw: xs[2] * xs[3] };
        let (Some(xv), Some(wv), Some(gv)) = (x.as_slice::<f32>(), w.as_slice::<f32>(), go.as_slice::<f32>()) else {
            return super::generic_relu_pointwise_backward::<Flex>(x, w, go, relu);
        };
        let dx = pointwise_cpu::backward_input(gv, wv, &g, relu.then_some(xv));
        let dw = pointwise_cpu::backward_weight(xv, gv, &g, relu);
        (tensor(dx, [xs[0], xs[1], xs[2], xs[3]]), tensor(dw, [ws[0], ws[1], 1, 1]))
    }

    fn depthwise_conv2d_backward(
        x: FlexTensor,
        weight: FlexTensor,
        grad_out: FlexTensor,
        options: DepthwiseOptions,
    ) -> (FlexTensor, FlexTensor) {
        let (x, xs) = f32_data(&x);
        let (w, ws) = f32_data(&weight);
        let (go, _) = f32_data(&grad_out);
        let g = geom(&xs, &ws, &options);
        match (x.as_slice::<f32>(), w.as_slice::<f32>(), go.as_slice::<f32>()) {
            (Some(xv), Some(wv), Some(gv)) => {
                let dx = tensor(backward_input(gv, wv, &g, None), [g.n, g.c, g.h, g.w]);
                let dw = tensor(backward_weight(xv, gv, &g, false), [g.c, 1, g.kh, g.kw]);
                (dx, dw)
            }
            _ => {
                let conv = options.conv_options(ws[0]);
                type M = Flex;
                let dx = <M as burn::tensor::ops::ModuleOps<M>>::conv2d_x_backward(
                    x.clone(),
                    w.clone(),
                    go.clone(),
                    conv.clone(),
                );
                let dw = <M as burn::tensor::ops::ModuleOps<M>>::conv2d_weight_backward(x, w, go, conv);
                (dx, dw)
            }
        }
    }

    fn contiguous(x: FlexTensor) -> FlexTensor {
        x.to_contiguous()
    }

    fn scale(y: FlexTensor, w: FlexTensor) -> FlexTensor {
        let (y, w) = (y.to_contiguous(), w.to_contiguous());
        let shape = y.layout().shape().to_vec();
        match (y.as_slice::<f32>(), w.as_slice::<f32>()) {
            (Some(ys), Some(&[wv])) => {
                let mut out = vec![0.0f32; ys.len()];
                out.par_chunks_mut(CHUNK).zip(ys.par_chunks(CHUNK)).for_each(|(o, y)| {
                    o.iter_mut().zip(y).for_each(|(o, &y)| *o = y * wv);
                });
                tensor(out, [shape[0], shape[1], shape[2], shape[3]])
            }
            _ => super::generic_scale::<Flex>(y, w),
        }
    }

    fn scale_backward(y: FlexTensor, w: FlexTensor, grad_out: FlexTensor) -> (FlexTensor, FlexTensor) {
        let (y, w, go) = (y.to_contiguous(), w.to_contiguous(), grad_out.to_contiguous());
        let shape = y.layout().shape().to_vec();
        match (y.as_slice::<f32>(), w.as_slice::<f32>(), go.as_slice::<f32>()) {
            (Some(ys), Some(&[wv]), Some(gs)) => {
                let mut dy = vec![0.0f32; ys.len()];
                // dy = dout * w, and the chunks' partial dot products of dout and y, added in
                // chunk order in f64 (the same sum for any thread count)
                let partial: Vec<f64> = dy
                    .par_chunks_mut(CHUNK)
                    .zip(ys.par_chunks(CHUNK).zip(gs.par_chunks(CHUNK)))
                    .map(|(d, (y, g))| {
                        for (d, &g) in d.iter_mut().zip(g) {
                            *d = g * wv;
                        }
                        dot(g, y) as f64
                    })
                    .collect();
                let dw: f64 = partial.iter().sum();
                (
                    tensor(dy, [shape[0], shape[1], shape[2], shape[3]]),
                    FlexTensor::from_data(TensorData::new(vec![dw as f32], [1])),
                )
            }
            _ => super::generic_scale_backward::<Flex>(y, w, go),
        }
    }

    fn pool3x3(x: FlexTensor, kind: PoolKind, stride: usize) -> FlexTensor {
        let x = x.to_contiguous();
        let shape = x.layout().shape().to_vec();
        let g = PoolGeom { planes: shape[0] * shape[1], h: shape[2], w: shape[3], stride };
        let Some(xs) = x.as_slice::<f32>() else {
            return super::generic_pool3x3::<Flex>(x, kind, stride);
        };
        let out = match kind {
            PoolKind::Max => pool_cpu::max_forward(xs, &g),
            PoolKind::Avg => pool_cpu::avg_forward(xs, &g),
        };
        tensor(out, [shape[0], shape[1], g.out_h(), g.out_w()])
    }

    fn pool3x3_backward(x: FlexTensor, grad_out: FlexTensor, kind: PoolKind, stride: usize) -> FlexTensor {
        let (x, go) = (x.to_contiguous(), grad_out.to_contiguous());
        let shape = x.layout().shape().to_vec();
        let g = PoolGeom { planes: shape[0] * shape[1], h: shape[2], w: shape[3], stride };
        let (Some(xs), Some(gs)) = (x.as_slice::<f32>(), go.as_slice::<f32>()) else {
            return super::generic_pool3x3_backward::<Flex>(x, go, kind, stride);
        };
        let dx = match kind {
            PoolKind::Max => pool_cpu::max_backward(xs, gs, &g),
            PoolKind::Avg => pool_cpu::avg_backward(gs, &g),
        };
        tensor(dx, [shape[0], shape[1], shape[2], shape[3]])
    }

    fn batch_norm_train(
        x: FlexTensor,
        gamma: Option<FlexTensor>,
        beta: Option<FlexTensor>,
        eps: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        match batch_norm::train(&x, gamma.as_ref(), beta.as_ref(), eps) {
            Some(out) => out,
            None => super::generic_batch_norm_train::<Flex>(x, gamma, beta, eps),
        }
    }

    fn batch_norm_train_backward(
        x: FlexTensor,
        gamma: Option<FlexTensor>,
        mean: FlexTensor,
        var: FlexTensor,
        grad_out: FlexTensor,
        eps: f64,
    ) -> (FlexTensor, Option<FlexTensor>, Option<FlexTensor>) {
        match batch_norm::train_backward(&x, gamma.as_ref(), Some(&mean), &var, &grad_out, eps) {
            Some(out) => out,
            None => super::generic_batch_norm_train_backward::<Flex>(x, gamma, mean, var, grad_out, eps),
        }
    }

    fn batch_norm_normalized_backward(xhat: FlexTensor, var: FlexTensor, grad_out: FlexTensor, eps: f64) -> FlexTensor {
        match batch_norm::train_backward(&xhat, None, None, &var, &grad_out, eps) {
            Some((dx, _, _)) => dx,
            None => super::generic_batch_norm_normalized_backward::<Flex>(xhat, var, grad_out, eps),
        }
    }
}

mod batch_norm {
    use super::super::batch_norm_cpu::{BnGeom, backward, forward};
    use burn::backend::flex::FlexTensor;
    use burn::tensor::TensorData;

    pub fn contiguous(t: &FlexTensor) -> FlexTensor {
        t.to_contiguous()
    }

    pub fn geom(shape: &[usize]) -> BnGeom {
        BnGeom { n: shape[0], c: shape[1], hw: shape[2] * shape[3] }
    }

    pub fn train(
        x: &FlexTensor,
        gamma: Option<&FlexTensor>,
        beta: Option<&FlexTensor>,
        eps: f64,
    ) -> Option<(FlexTensor, FlexTensor, FlexTensor)> {
        let shape = x.layout().shape().to_vec();
        let g = geom(&shape);
        let x = contiguous(x);
        let gamma = gamma.map(contiguous);
        let beta = beta.map(contiguous);
        let xs = x.as_slice::<f32>()?;
        let gs = match &gamma {
            Some(t) => Some(t.as_slice::<f32>()?),
            None => None,
        };
        let bs = match &beta {
            Some(t) => Some(t.as_slice::<f32>()?),
            None => None,
        };
        let (y, mean, var) = forward(xs, gs, bs, &g, eps);
        Some((
            FlexTensor::from_data(TensorData::new(y, shape)),
            FlexTensor::from_data(TensorData::new(mean, [g.c])),
            FlexTensor::from_data(TensorData::new(var, [g.c])),
        ))
    }

    #[allow(clippy::type_complexity)]
    pub fn train_backward(
        x: &FlexTensor,
        gamma: Option<&FlexTensor>,
        mean: Option<&FlexTensor>,
        var: &FlexTensor,
        grad_out: &FlexTensor,
        eps: f64,
    ) -> Option<(FlexTensor, Option<FlexTensor>, Option<FlexTensor>)> {
        let shape = x.layout().shape().to_vec();
        let g = geom(&shape);
        let (x, var, go) = (contiguous(x), contiguous(var), contiguous(grad_out));
        let mean = mean.map(contiguous);
        let ms = match &mean {
            Some(t) => Some(t.as_slice::<f32>()?),
            None => None,
        };
        let gamma = gamma.map(contiguous);
        let gs = match &gamma {
            Some(t) => Some(t.as_slice::<f32>()?),
            None => None,
        };
        let (dx, dgamma, dbeta) =
            backward(x.as_slice::<f32>()?, gs, ms, var.as_slice::<f32>()?, go.as_slice::<f32>()?, &g, eps);
        let affine = gamma.is_some();
        Some((
            FlexTensor::from_data(TensorData::new(dx, shape)),
            affine.then(|| FlexTensor::from_data(TensorData::new(dgamma, [g.c]))),
            affine.then(|| FlexTensor::from_data(TensorData::new(dbeta, [g.c]))),
        ))
    }
}
