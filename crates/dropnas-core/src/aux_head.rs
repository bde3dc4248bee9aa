//! The auxiliary classifier after cell `2L/3` (input side = image side / 4).

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
/// ReLU, linear 768->classes.
#[derive(Module, Debug)]
pub struct AuxHead<B: Backend> {
    pub conv1: Conv2d<B>,
    pub bn1: BatchNorm2d<B>,
    pub conv2: Conv2d<B>,
    pub bn2: BatchNorm2d<B>,
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
        Self {
            conv1: ConvSpec::square(c, 128, 1, 1, 0).init(init),
            bn1: BatchNorm2d::new(128, true, init),
            conv2: ConvSpec::square(128, 768, 2, 1, 0).init(init),
            bn2: BatchNorm2d::new(768, true, init),
            linear: init.linear(768, n_classes),
            pool_stride: side - 5,
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let s = self.pool_stride;
        let x = avg_pool2d(relu(x), [5, 5], [s, s], [0, 0], false, false);
        let x = relu(self.bn1.forward(self.conv1.forward(x)));
        let x = relu(self.bn2.forward(self.conv2.forward(x)));
        self.linear.forward(x.flatten::<2>(1, 3))
    }
}
