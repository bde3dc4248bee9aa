//! The auxiliary classifier after cell `2L/3` (CIFAR network: input side = image side / 4;
//! ImageNet network: 7x7 at 224).

use crate::batch_norm::BatchNorm2d;
use crate::conv::{Conv2d, ConvSpec};
use crate::kernels::DropnasBackend;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
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
    pub fn new(side: usize, c: usize, n_classes: usize, device: &B::Device) -> Self {
        Self {
            conv1: ConvSpec::square(c, 128, 1, 1, 0).init(device),
            bn1: BatchNorm2d::new(128, true, device),
            conv2: ConvSpec::square(128, 768, 2, 1, 0).init(device),
            bn2: Some(BatchNorm2d::new(768, true, device)),
            linear: LinearConfig::new(768, n_classes).init(device),
            pool_stride: side - 5,
        }
    }

    /// DARTS' `AuxiliaryHeadImageNet` on a 7x7 (or 8x8) map: AvgPool(5, stride 2), no second BN.
    pub fn imagenet(c: usize, n_classes: usize, device: &B::Device) -> Self {
        Self { bn2: None, pool_stride: 2, ..Self::new(7, c, n_classes, device) }
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
