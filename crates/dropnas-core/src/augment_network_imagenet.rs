//! What DARTS' ImageNet network (`NetworkImageNet` of DARTS' `cnn/model.py`, the mobile
//! setting of the DARTS family) adds to the CIFAR network: the network variant, its first stem
//! and the input sizes it accepts.
//!
//! At 224x224 input: `stem0` (3x3 conv 3 -> C/2 stride 2, BN, ReLU, 3x3 conv C/2 -> C stride 2,
//! BN) gives 56x56, `stem1` ([`crate::search_network::Stem::imagenet`]: ReLU, 3x3 conv C -> C
//! stride 2, BN) 28x28; the first cell reads `stem0` as its `s0` through a FactorizedReduce
//! (as if the cell before it had been a reduction) and `stem1` as its `s1`, both with C
//! channels (no stem multiplier). Reduction cells at L/3 and 2L/3 give 14x14 and 7x7; the
//! auxiliary head reads the 7x7 map after cell 2L/3 (AvgPool 5 stride 2, no second BN:
//! [`crate::aux_head::AuxHead::imagenet`]); the classifier reads AvgPool2d(7).

use crate::batch_norm::BatchNorm2d;
use crate::conv::{Conv2d, ConvSpec};
use crate::init::ParamInit;
use crate::kernels::DropnasBackend;
use burn::module::Module;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which network of the DARTS family a genotype is built into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkKind {
    /// `NetworkCIFAR`: one stride-1 3x3 stem convolution (3C channels), global average pooling;
    /// for small images (CIFAR's 32x32, MNIST's 28x28, or an image folder at e.g. 64x64).
    #[default]
    Cifar,
    /// `NetworkImageNet`: three stride-2 stem convolutions, AvgPool2d(7); for 224x224 input.
    Imagenet,
}

impl NetworkKind {
    /// The CLI name: "cifar" or "imagenet".
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::Cifar => "cifar",
            NetworkKind::Imagenet => "imagenet",
        }
    }

    /// The network DARTS uses at `input_size`: the ImageNet one at 224, else the CIFAR one.
    pub fn for_input_size(input_size: usize) -> Self {
        if input_size == IMAGENET_INPUT_SIZE { NetworkKind::Imagenet } else { NetworkKind::Cifar }
    }
}

impl fmt::Display for NetworkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NetworkKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cifar" => Ok(NetworkKind::Cifar),
            "imagenet" => Ok(NetworkKind::Imagenet),
            _ => Err(format!("unknown network `{s}`: expected cifar or imagenet")),
        }
    }
}

/// The input side of the ImageNet mobile setting.
pub const IMAGENET_INPUT_SIZE: usize = 224;

/// Kernel (and stride) of the ImageNet network's final average pooling, `nn.AvgPool2d(7)`.
pub const IMAGENET_FINAL_POOL: usize = 7;

/// DARTS' ImageNet `stem0`: 3x3 conv `in -> C/2` stride 2, BN, ReLU, 3x3 conv `C/2 -> C`
/// stride 2, BN.
#[derive(Module, Debug)]
pub struct ImagenetStem<B: Backend> {
    pub conv1: Conv2d<B>,
    pub bn1: BatchNorm2d<B>,
    pub conv2: Conv2d<B>,
    pub bn2: BatchNorm2d<B>,
}

impl<B: DropnasBackend> ImagenetStem<B> {
    pub fn new(c_in: usize, c: usize, init: &mut ParamInit<B>) -> Self {
        Self {
            conv1: ConvSpec::square(c_in, c / 2, 3, 2, 1).init(init),
            bn1: BatchNorm2d::new(c / 2, true, init),
            conv2: ConvSpec::square(c / 2, c, 3, 2, 1).init(init),
            bn2: BatchNorm2d::new(c, true, init),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = relu(self.bn1.forward(self.conv1.forward(x)));
        self.bn2.forward(self.conv2.forward(x))
    }
}

/// Why the ImageNet network cannot take `input_size`, if it cannot.
///
/// The stems and the two reduction cells halve the side five times, and every FactorizedReduce
/// on the way needs an even side: the side must be a multiple of 32. The classifier reads
/// AvgPool2d(7) of the last map, which must therefore be 7x7 to 13x13 (DARTS: 7x7 at 224); the
/// auxiliary head (AvgPool 5 stride 2, then a 2x2 conv into a 768-wide linear layer) needs it
/// 7x7 or 8x8.
pub fn check_imagenet_input(input_size: usize, auxiliary: bool) -> Result<(), String> {
    let last = input_size / 32;
    let hint = "use --input-size 224 (DARTS' ImageNet setting), or --network cifar for small images";
    if input_size == 0 || !input_size.is_multiple_of(32) {
        return Err(format!(
            "the ImageNet network needs an input side that is a multiple of 32 (its stems and reductions halve it \
             five times), got {input_size}; {hint}"
        ));
    }
    if !(IMAGENET_FINAL_POOL..2 * IMAGENET_FINAL_POOL).contains(&last) {
        return Err(format!(
            "the ImageNet network pools its last feature map with AvgPool2d(7), which needs that map to be 7x7 to \
             13x13 (input side 224 to 416), but input side {input_size} gives {last}x{last}; {hint}"
        ));
    }
    if auxiliary && last > 8 {
        return Err(format!(
            "the ImageNet auxiliary head needs a 7x7 or 8x8 map after cell 2L/3 (input side 224 or 256), but input \
             side {input_size} gives {last}x{last}; {hint}, or --aux-weight 0 to train without the head"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imagenet_input_sizes() {
        assert!(check_imagenet_input(224, true).is_ok());
        assert!(check_imagenet_input(256, true).is_ok());
        assert!(check_imagenet_input(288, true).unwrap_err().contains("auxiliary"));
        assert!(check_imagenet_input(288, false).is_ok());
        assert!(check_imagenet_input(416, false).is_ok());
        assert!(check_imagenet_input(448, false).unwrap_err().contains("AvgPool2d(7)"));
        assert!(check_imagenet_input(192, false).unwrap_err().contains("AvgPool2d(7)"));
        assert!(check_imagenet_input(230, false).unwrap_err().contains("multiple of 32"));
        assert_eq!(NetworkKind::for_input_size(224), NetworkKind::Imagenet);
        assert_eq!(NetworkKind::for_input_size(64), NetworkKind::Cifar);
        assert_eq!("ImageNet".parse::<NetworkKind>(), Ok(NetworkKind::Imagenet));
        assert!("resnet".parse::<NetworkKind>().is_err());
    }
}
