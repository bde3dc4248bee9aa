//! The augment network: a genotype's cells stacked `L` deep, trained from scratch; DARTS'
//! CIFAR network or its ImageNet network ([`crate::augment_network_imagenet`]).

use crate::augment_cell::AugmentCell;
use crate::augment_network_imagenet::{IMAGENET_FINAL_POOL, ImagenetStem, NetworkKind, check_imagenet_input};
use crate::aux_head::{AuxHead, check_aux_side};
use crate::drop_path::DropPathSource;
use crate::genotype::Genotype;
use crate::init::ParamInit;
use crate::kernels::DropnasBackend;
use crate::search_network::{Stem, is_reduction};
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d};
use serde::{Deserialize, Serialize};

/// The shape of an augment network. Saved with every checkpoint, so that a checkpoint alone
/// rebuilds its network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentNetworkConfig {
    pub input_size: usize,
    pub input_channels: usize,
    pub init_channels: usize,
    pub n_classes: usize,
    pub layers: usize,
    pub auxiliary: bool,
    pub stem_multiplier: usize,
    #[serde(with = "crate::genotype::as_text")]
    pub genotype: Genotype,
    /// CIFAR or ImageNet network (absent in checkpoints written before the ImageNet network: CIFAR).
    #[serde(default)]
    pub network: NetworkKind,
}

impl AugmentNetworkConfig {
    pub fn new(
        input_size: usize,
        input_channels: usize,
        init_channels: usize,
        n_classes: usize,
        layers: usize,
        auxiliary: bool,
        genotype: Genotype,
    ) -> Self {
        Self {
            input_size,
            input_channels,
            init_channels,
            n_classes,
            layers,
            auxiliary,
            stem_multiplier: 3,
            genotype,
            network: NetworkKind::Cifar,
        }
    }

    /// The same shape built as `network`.
    pub fn with_network(self, network: NetworkKind) -> Self {
        Self { network, ..self }
    }

    /// Whether an auxiliary head fits this network's input size.
    pub fn aux_fits(&self) -> bool {
        match self.network {
            NetworkKind::Cifar => check_aux_side(self.input_size / 4).is_ok(),
            NetworkKind::Imagenet => check_imagenet_input(self.input_size, true).is_ok(),
        }
    }

    /// Cell index after which the auxiliary head reads, if any.
    pub fn aux_position(&self) -> Option<usize> {
        self.auxiliary.then_some(2 * self.layers / 3)
    }

    /// Checks the shape before building (the auxiliary head needs a large enough feature map;
    /// every FactorizedReduce an even side).
    pub fn validate(&self) -> Result<(), String> {
        if self.layers == 0 {
            return Err("--layers must be at least 1".into());
        }
        match self.network {
            NetworkKind::Cifar => {
                if self.input_size == 0 || !self.input_size.is_multiple_of(4) {
                    return Err(format!(
                        "the input side must be a multiple of 4 (the two reduction cells halve it, each through                          FactorizedReduce, which needs an even side), got {}",
                        self.input_size
                    ));
                }
                if self.auxiliary {
                    check_aux_side(self.input_size / 4)?;
                }
            }
            NetworkKind::Imagenet => check_imagenet_input(self.input_size, self.auxiliary)?,
        }
        Ok(())
    }

    /// The network with PyTorch's initial values drawn by `init` (the run's seeded generator:
    /// the same network for a seed on every backend), under `init`'s PyTorch semantics.
    pub fn init<B: DropnasBackend>(&self, init: &mut ParamInit<B>) -> AugmentNetwork<B> {
        AugmentNetwork::new(self, init)
    }
}

#[derive(Module, Debug)]
pub struct AugmentNetwork<B: Backend> {
    /// The ImageNet network's `stem0`, before `stem`; absent in the CIFAR network.
    pub stem0: Option<ImagenetStem<B>>,
    pub stem: Stem<B>,
    pub cells: Vec<AugmentCell<B>>,
    pub aux_head: Option<AuxHead<B>>,
    pub linear: Linear<B>,
    pub aux_position: usize,
    /// The original's auxiliary head starts with `nn.ReLU(inplace=True)`: in training, the cell
    /// output it reads is replaced by its ReLU for every later reader too (PyTorch 1.0 setting).
    /// Only the final pooling can tell (every cell starts with a ReLU of its inputs), so it
    /// changes the result only when the head reads the last cell (3 cells or fewer).
    pub aux_relu_in_place: bool,
    /// The classifier's pooling: 0 for global average pooling (CIFAR), else AvgPool2d(k)
    /// (ImageNet: 7).
    pub final_pool: usize,
}

impl<B: DropnasBackend> AugmentNetwork<B> {
    pub fn new(cfg: &AugmentNetworkConfig, init: &mut ParamInit<B>) -> Self {
        let imagenet = cfg.network == NetworkKind::Imagenet;
        // The ImageNet stems end at C channels, and the first cell treats `stem0` as the output
        // of a reduction cell (its s0 is twice as large as its s1).
        let c_stem = if imagenet { cfg.init_channels } else { cfg.stem_multiplier * cfg.init_channels };
        // The stems first: the original's construction order, which the seeded draws follow.
        let (stem0, stem) = if imagenet {
            (Some(ImagenetStem::new(cfg.input_channels, c_stem, init)), Stem::imagenet(c_stem, init))
        } else {
            (None, Stem::new(cfg.input_channels, c_stem, init))
        };
        let (mut c_pp, mut c_p, mut c) = (c_stem, c_stem, cfg.init_channels);
        let mut reduction_p = imagenet;
        let mut cells = Vec::with_capacity(cfg.layers);
        let mut aux_head = None;
        for i in 0..cfg.layers {
            let reduction = is_reduction(i, cfg.layers);
            if reduction {
                c *= 2;
            }
            let cell = AugmentCell::new(&cfg.genotype, c_pp, c_p, c, reduction_p, reduction, init);
            reduction_p = reduction;
            (c_pp, c_p) = (c_p, c * cell.multiplier());
            cells.push(cell);
            if Some(i) == cfg.aux_position() {
                aux_head = Some(if imagenet {
                    AuxHead::imagenet(c_p, cfg.n_classes, init)
                } else {
                    AuxHead::new(cfg.input_size / 4, c_p, cfg.n_classes, init)
                });
            }
        }
        Self {
            stem0,
            stem,
            cells,
            aux_head,
            linear: init.linear(c_p, cfg.n_classes),
            aux_position: cfg.aux_position().unwrap_or(usize::MAX),
            aux_relu_in_place: init.compat().aux_relu_in_place(),
            final_pool: if imagenet { IMAGENET_FINAL_POOL } else { 0 },
        }
    }

    /// Logits, and the auxiliary logits when `with_aux` (training) and the head exists.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        drop: &mut dyn DropPathSource,
        with_aux: bool,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let (mut s0, mut s1) = match &self.stem0 {
            Some(stem0) => {
                let s0 = stem0.forward(x);
                let s1 = self.stem.forward(s0.clone());
                (s0, s1)
            }
            None => {
                let s = self.stem.forward(x);
                (s.clone(), s)
            }
        };
        let mut aux = None;
        for (i, cell) in self.cells.iter().enumerate() {
            let next = cell.forward(s0, s1.clone(), drop);
            (s0, s1) = (s1, next);
            if let (true, Some(head)) = (i == self.aux_position && with_aux, &self.aux_head) {
                if self.aux_relu_in_place {
                    s1 = relu(s1);
                }
                aux = Some(head.forward(s1.clone()));
            }
        }
        let pooled = match self.final_pool {
            0 => adaptive_avg_pool2d(s1, [1, 1]),
            k => avg_pool2d(s1, [k, k], [k, k], [0, 0], true, false),
        };
        (self.linear.forward(pooled.flatten::<2>(1, 3)), aux)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::TorchCompat;
    use crate::drop_path::NoDropPath;
    use crate::genotype::named::named;
    use crate::testkit::values_by_path;
    use burn::backend::{Autodiff, Flex};
    use burn::module::AutodiffModule;
    use burn::tensor::Distribution;

    type A = Autodiff<Flex>;

    fn bn_weights(net: &AugmentNetwork<Flex>) -> Vec<f32> {
        let values = values_by_path(net);
        let mut w: Vec<f32> = values
            .iter()
            .filter(|(path, _)| path.contains("bn") && path.ends_with(".weight"))
            .flat_map(|(_, v)| v.iter().copied())
            .collect();
        w.sort_by(f32::total_cmp);
        w
    }

    #[test]
    fn batch_norm_weights_start_uniform_under_1_0_and_at_one_under_modern() {
        let device = Default::default();
        let cfg = AugmentNetworkConfig::new(32, 3, 16, 10, 8, true, named("dropnas-cifar10").unwrap());
        let w = bn_weights(&cfg.init::<Flex>(&mut ParamInit::new(4, TorchCompat::V1_0, &device)));
        assert!(w.len() > 5000, "{} BatchNorm weights", w.len());
        assert!(w[0] >= 0.0 && w[w.len() - 1] < 1.0, "range [{}, {}]", w[0], w[w.len() - 1]);
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / w.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        // spread over the whole interval: the quartiles of U(0, 1)
        let q = |p: f64| w[(p * w.len() as f64) as usize] as f64;
        assert!((q(0.25) - 0.25).abs() < 0.03 && (q(0.75) - 0.75).abs() < 0.03, "{} {}", q(0.25), q(0.75));
        let w = bn_weights(&cfg.init::<Flex>(&mut ParamInit::new(4, TorchCompat::Modern, &device)));
        assert!(!w.is_empty() && w.iter().all(|&v| v == 1.0));
    }

    /// The in-place ReLU of PyTorch 1.0's head changes a network only when the head reads the
    /// last cell; it never changes the auxiliary output or evaluation.
    #[test]
    fn the_in_place_relu_reaches_the_output_only_when_the_head_reads_the_last_cell() {
        let device = Default::default();
        let x = Tensor::<A, 4>::random([2, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        for (layers, differs) in [(3usize, true), (6, false)] {
            let cfg = AugmentNetworkConfig::new(32, 3, 4, 10, layers, true, named("dropnas-cifar10").unwrap());
            let [v1_0, modern] = TorchCompat::ALL.map(|compat| {
                // the same weights under both settings (the seed's draws do not depend on it, except
                // BatchNorm's: set those to ones)
                let net = cfg.init::<A>(&mut ParamInit::new(1, TorchCompat::Modern, &device));
                let net = AugmentNetwork { aux_relu_in_place: compat.aux_relu_in_place(), ..net };
                let (out, aux) = net.forward(x.clone(), &mut NoDropPath, true);
                let (eval, _) = net.valid().forward(x.clone().inner(), &mut NoDropPath, false);
                [out, aux.unwrap()]
                    .map(|t| t.into_data().to_vec::<f32>().unwrap())
                    .into_iter()
                    .chain([eval.into_data().to_vec::<f32>().unwrap()])
                    .collect::<Vec<_>>()
            });
            assert_eq!(v1_0[1], modern[1], "{layers} cells: the auxiliary output");
            assert_eq!(v1_0[2], modern[2], "{layers} cells: evaluation");
            assert_eq!(v1_0[0] != modern[0], differs, "{layers} cells: the output");
        }
    }
}
