//! The candidate operations of DARTS/DropNAS, built from [`OpKind`] (the op table).
//!
//! Field names follow PyTorch naming so that a state dict maps onto these modules path by path.

use crate::batch_norm::BatchNorm2d;
use crate::conv::{Conv2d, ConvSpec};
use crate::init::ParamInit;
use crate::kernels::{DepthwiseOptions, DropnasBackend, PoolKind, pool3x3, relu_dw_pw, relu_pointwise};
use crate::search_space::OpKind;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;

/// ReLU - 1x1 conv - BN: the cell input preprocessing.
#[derive(Module, Debug)]
pub struct StdConv<B: Backend> {
    pub conv: Conv2d<B>,
    pub bn: BatchNorm2d<B>,
}

impl<B: DropnasBackend> StdConv<B> {
    pub fn new(c_in: usize, c_out: usize, affine: bool, init: &mut ParamInit<B>) -> Self {
        Self { conv: ConvSpec::square(c_in, c_out, 1, 1, 0).init(init), bn: BatchNorm2d::new(c_out, affine, init) }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn.forward(relu_pointwise(x, self.conv.weight.val()))
    }
}

/// Halves the spatial size with two offset 1x1 stride-2 convolutions, concatenated.
#[derive(Module, Debug)]
pub struct FactorizedReduce<B: Backend> {
    pub conv1: Conv2d<B>,
    pub conv2: Conv2d<B>,
    pub bn: BatchNorm2d<B>,
}

impl<B: DropnasBackend> FactorizedReduce<B> {
    pub fn new(c_in: usize, c_out: usize, affine: bool, init: &mut ParamInit<B>) -> Self {
        Self {
            conv1: ConvSpec::square(c_in, c_out / 2, 1, 2, 0).init(init),
            conv2: ConvSpec::square(c_in, c_out / 2, 1, 2, 0).init(init),
            bn: BatchNorm2d::new(c_out, affine, init),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_from_relu(relu(x))
    }

    /// The forward of an input that already went through the op's leading ReLU.
    pub fn forward_from_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let shifted = x.clone().slice([0..n, 0..c, 1..h, 1..w]);
        let out = Tensor::cat(vec![self.conv1.forward(x), self.conv2.forward(shifted)], 1);
        self.bn.forward(out)
    }
}

/// ReLU - depthwise (possibly dilated) conv - pointwise conv - BN.
#[derive(Module, Debug)]
pub struct DilConv<B: Backend> {
    pub depthwise: Conv2d<B>,
    pub pointwise: Conv2d<B>,
    pub bn: BatchNorm2d<B>,
}

impl<B: DropnasBackend> DilConv<B> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        dilation: usize,
        affine: bool,
        init: &mut ParamInit<B>,
    ) -> Self {
        Self {
            depthwise: ConvSpec::depthwise(c_in, kernel, stride, padding, dilation).init(init),
            pointwise: ConvSpec::square(c_in, c_out, 1, 1, 0).init(init),
            bn: BatchNorm2d::new(c_out, affine, init),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn.forward(self.unit(x, true))
    }

    /// The forward of an input that already went through the op's leading ReLU.
    pub fn forward_from_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn.forward(self.unit(x, false))
    }

    /// ReLU (when `relu`), depthwise and pointwise convolutions as one operation, which keeps
    /// only its input for the backward pass (see [`crate::kernels::DropnasBackend::relu_dw_pw`]).
    fn unit(&self, x: Tensor<B, 4>, relu: bool) -> Tensor<B, 4> {
        let dw = &self.depthwise;
        let options = DepthwiseOptions { stride: dw.stride, padding: dw.padding, dilation: dw.dilation };
        relu_dw_pw(x, dw.weight.val(), self.pointwise.weight.val(), options, relu)
    }
}

/// Two [`DilConv`]s with dilation 1; only the first one strides.
#[derive(Module, Debug)]
pub struct SepConv<B: Backend> {
    pub first: DilConv<B>,
    pub second: DilConv<B>,
}

impl<B: DropnasBackend> SepConv<B> {
    pub fn new(c: usize, kernel: usize, stride: usize, affine: bool, init: &mut ParamInit<B>) -> Self {
        let padding = kernel / 2;
        Self {
            first: DilConv::new(c, c, kernel, stride, padding, 1, affine, init),
            second: DilConv::new(c, c, kernel, 1, padding, 1, affine, init),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.second.forward(self.first.forward(x))
    }

    /// The forward of an input that already went through the op's leading ReLU.
    pub fn forward_from_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.second.forward(self.first.forward_from_relu(x))
    }
}

/// ReLU - 1x7 conv - 7x1 conv - BN, as in DARTS (the stride is split over the two convs).
///
/// pt.darts' `FacConv` pads both dimensions of both convolutions and so changes the feature
/// size; no DropNAS search space contains this op, and we keep DARTS's shape-preserving form.
#[derive(Module, Debug)]
pub struct FacConv<B: Backend> {
    pub conv_1x7: Conv2d<B>,
    pub conv_7x1: Conv2d<B>,
    pub bn: BatchNorm2d<B>,
}

impl<B: DropnasBackend> FacConv<B> {
    pub fn new(c: usize, stride: usize, affine: bool, init: &mut ParamInit<B>) -> Self {
        let conv_1x7 =
            ConvSpec { kernel: [1, 7], stride: [1, stride], padding: [0, 3], ..ConvSpec::square(c, c, 1, 1, 0) };
        let conv_7x1 =
            ConvSpec { kernel: [7, 1], stride: [stride, 1], padding: [3, 0], ..ConvSpec::square(c, c, 1, 1, 0) };
        Self { conv_1x7: conv_1x7.init(init), conv_7x1: conv_7x1.init(init), bn: BatchNorm2d::new(c, affine, init) }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_from_relu(relu(x))
    }

    /// The forward of an input that already went through the op's leading ReLU.
    pub fn forward_from_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn.forward(self.conv_7x1.forward(self.conv_1x7.forward(x)))
    }
}

/// 3x3 pooling (stride s, padding 1) then BN. Average pooling does not count the padding.
#[derive(Module, Debug)]
pub struct PoolBn<B: Backend> {
    pub bn: BatchNorm2d<B>,
    pub stride: usize,
}

impl<B: DropnasBackend> PoolBn<B> {
    pub fn new(c: usize, stride: usize, affine: bool, init: &mut ParamInit<B>) -> Self {
        Self { bn: BatchNorm2d::new(c, affine, init), stride }
    }

    pub fn forward_avg(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn.forward(pool3x3(x, PoolKind::Avg, self.stride))
    }

    pub fn forward_max(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn.forward(pool3x3(x, PoolKind::Max, self.stride))
    }
}

/// The `none` op: a zero of the (strided) output shape.
#[derive(Module, Debug, Clone)]
pub struct Zero {
    pub stride: usize,
}

/// One candidate operation. `skip_connect` is an [`Op::Identity`] at stride 1 and a
/// [`Op::FactorizedReduce`] at stride 2.
// Variants hold modules of different sizes; an edge holds few ops, so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Op<B: Backend> {
    Zero(Zero),
    AvgPool(PoolBn<B>),
    MaxPool(PoolBn<B>),
    Identity(Zero),
    FactorizedReduce(FactorizedReduce<B>),
    SepConv(SepConv<B>),
    DilConv(DilConv<B>),
    FacConv(FacConv<B>),
}

impl<B: DropnasBackend> Op<B> {
    /// Builds `kind` on `c` channels. `affine` is false in search cells, true in augment cells.
    pub fn new(kind: OpKind, c: usize, stride: usize, affine: bool, init: &mut ParamInit<B>) -> Self {
        match kind {
            OpKind::None => Op::Zero(Zero { stride }),
            OpKind::AvgPool3x3 => Op::AvgPool(PoolBn::new(c, stride, affine, init)),
            OpKind::MaxPool3x3 => Op::MaxPool(PoolBn::new(c, stride, affine, init)),
            OpKind::SkipConnect if stride == 1 => Op::Identity(Zero { stride: 1 }),
            OpKind::SkipConnect => Op::FactorizedReduce(FactorizedReduce::new(c, c, affine, init)),
            OpKind::SepConv3x3 => Op::SepConv(SepConv::new(c, 3, stride, affine, init)),
            OpKind::SepConv5x5 => Op::SepConv(SepConv::new(c, 5, stride, affine, init)),
            OpKind::SepConv7x7 => Op::SepConv(SepConv::new(c, 7, stride, affine, init)),
            OpKind::DilConv3x3 => Op::DilConv(DilConv::new(c, c, 3, stride, 2, 2, affine, init)),
            OpKind::DilConv5x5 => Op::DilConv(DilConv::new(c, c, 5, stride, 4, 2, affine, init)),
            OpKind::Conv7x1_1x7 => Op::FacConv(FacConv::new(c, stride, affine, init)),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            Op::Zero(z) => {
                let [n, c, h, w] = x.dims();
                let s = z.stride;
                Tensor::zeros([n, c, h.div_ceil(s), w.div_ceil(s)], &x.device())
            }
            Op::AvgPool(p) => p.forward_avg(x),
            Op::MaxPool(p) => p.forward_max(x),
            Op::Identity(_) => x,
            Op::FactorizedReduce(f) => f.forward(x),
            Op::SepConv(s) => s.forward(x),
            Op::DilConv(d) => d.forward(x),
            Op::FacConv(f) => f.forward(x),
        }
    }

    /// Whether the op starts with a ReLU of its input (then [`Self::forward_from_relu`] applies).
    pub fn starts_with_relu(&self) -> bool {
        matches!(self, Op::FactorizedReduce(_) | Op::SepConv(_) | Op::DilConv(_) | Op::FacConv(_))
    }

    /// The forward of `relu(x)` for an op that [starts with a ReLU](Self::starts_with_relu):
    /// the ops of a mixed-op edge share one ReLU of their common input.
    pub fn forward_from_relu(&self, x_relu: Tensor<B, 4>) -> Tensor<B, 4> {
        match self {
            Op::FactorizedReduce(f) => f.forward_from_relu(x_relu),
            Op::SepConv(s) => s.forward_from_relu(x_relu),
            Op::DilConv(d) => d.forward_from_relu(x_relu),
            Op::FacConv(f) => f.forward_from_relu(x_relu),
            _ => panic!("forward_from_relu on an op without a leading ReLU"),
        }
    }

    pub fn is_identity(&self) -> bool {
        matches!(self, Op::Identity(_))
    }

    pub fn is_zero(&self) -> bool {
        matches!(self, Op::Zero(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search_space::OpKind;
    use burn::backend::Flex;
    use burn::tensor::Distribution;

    #[test]
    fn every_op_keeps_shape_at_stride_1_and_halves_it_at_stride_2() {
        let device = Default::default();
        let mut init = ParamInit::<Flex>::new(0, Default::default(), &device);
        for (kind, name, _) in OpKind::ALL {
            for (stride, side) in [(1usize, 8usize), (2, 8), (2, 7)] {
                let op = Op::new(kind, 6, stride, false, &mut init);
                let x = Tensor::<Flex, 4>::random([2, 6, side, side], Distribution::Default, &device);
                let out = side.div_ceil(stride);
                // FactorizedReduce (skip_connect at stride 2) needs an even side, as in DARTS.
                if kind == OpKind::SkipConnect && stride == 2 && side % 2 == 1 {
                    continue;
                }
                assert_eq!(op.forward(x).dims(), [2, 6, out, out], "{name} stride {stride} side {side}");
            }
        }
    }

    #[test]
    fn preprocessing_ops_map_channels() {
        let device = Default::default();
        let mut init = ParamInit::<Flex>::new(0, Default::default(), &device);
        let x = Tensor::<Flex, 4>::random([2, 5, 8, 8], Distribution::Default, &device);
        assert_eq!(StdConv::new(5, 7, false, &mut init).forward(x.clone()).dims(), [2, 7, 8, 8]);
        assert_eq!(FactorizedReduce::new(5, 6, true, &mut init).forward(x).dims(), [2, 6, 4, 4]);
    }
}
