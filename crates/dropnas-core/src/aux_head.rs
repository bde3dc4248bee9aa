//! The auxiliary classifier after cell `2L/3` (CIFAR network: input side = image side / 4;
//! ImageNet network: 7x7 at 224).

use crate::batch_norm::BatchNorm2d;
use crate::conv::{Conv2d, ConvSpec};
use crate::init::ParamInit;
use crate::kernels::DropnasBackend;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::module::avg_pool2d;

/// ReLU, AvgPool(5, stride side-5) to 2x2, 1x1 conv C->128, BN, ReLU, 2x2 conv 128->768, BN,
/// ReLU, linear 768->classes. DARTS' ImageNet head pools with stride 2 and has no second BN
/// (`AuxiliaryHeadImageNet`: it was left out of the runs behind the paper's numbers).
#[derive(Module, Debug)]
pub struct AuxHead<B: Backend> {
    pub conv1: Conv2d<B>,
    pub bn1: BatchNorm2d<B>,
    pub conv2: Conv2d<B>,
    pub bn2: Option<BatchNorm2d<B>>,
    pub linear: Linear<B>,
    pub pool_stride: usize,
}

/// Why an auxiliary head cannot be built.
pub fn check_aux_side(side: usize) -> Result<(), String> {
    if side < 6 {
        Err(format!(
            "the auxiliary head needs a feature map of at least 6x6 after cell 2L/3, but this input gives {side}x{side} \
             (image side / 4); use --aux-weight 0 to train without it"
        ))
    } else {
        Ok(())
    }
}

impl<B: DropnasBackend> AuxHead<B> {
    /// `side`: the feature-map side at the head (8 for CIFAR, 7 for MNIST); at least 6.
    pub fn new(side: usize, c: usize, n_classes: usize, init: &mut ParamInit<B>) -> Self {
        Self::build(c, n_classes, side - 5, true, init)
    }

    /// DARTS' `AuxiliaryHeadImageNet` on a 7x7 (or 8x8) map: AvgPool(5, stride 2), no second BN.
    pub fn imagenet(c: usize, n_classes: usize, init: &mut ParamInit<B>) -> Self {
        Self::build(c, n_classes, 2, false, init)
    }

    /// The modules in the original's construction order, so that the seeded draws match it
    /// (the ImageNet head builds no second BN, and so draws none of its U(0, 1) weights).
    fn build(c: usize, n_classes: usize, pool_stride: usize, with_bn2: bool, init: &mut ParamInit<B>) -> Self {
        let conv1 = ConvSpec::square(c, 128, 1, 1, 0).init(init);
        let bn1 = BatchNorm2d::new(128, true, init);
        let conv2 = ConvSpec::square(128, 768, 2, 1, 0).init(init);
        let bn2 = with_bn2.then(|| BatchNorm2d::new(768, true, init));
        let linear = init.linear(768, n_classes);
        Self { conv1, bn1, conv2, bn2, linear, pool_stride }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let s = self.pool_stride;
        let x = avg_pool2d(relu(x), [5, 5], [s, s], [0, 0], false, false);
        let x = relu(self.bn1.forward(self.conv1.forward(x)));
        let x = self.conv2.forward(x);
        let x = relu(match &self.bn2 {
            Some(bn) => bn.forward(x),
            None => x,
        });
        self.linear.forward(x.flatten::<2>(1, 3))
    }
}
