//! The augment network: a genotype's cells stacked `L` deep, trained from scratch; DARTS'
//! CIFAR network or its ImageNet network ([`crate::augment_network_imagenet`]).

use crate::augment_cell::AugmentCell;
use crate::augment_network_imagenet::{IMAGENET_FINAL_POOL, ImagenetStem, NetworkKind, check_imagenet_input};
use crate::aux_head::{AuxHead, check_aux_side};
use crate::drop_path::DropPathSource;
use crate::genotype::Genotype;
use crate::kernels::DropnasBackend;
use crate::search_network::{Stem, is_reduction};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor;
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

    pub fn init<B: DropnasBackend>(&self, device: &B::Device) -> AugmentNetwork<B> {
        AugmentNetwork::new(self, device)
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
    /// The classifier's pooling: 0 for global average pooling (CIFAR), else AvgPool2d(k)
    /// (ImageNet: 7).
    pub final_pool: usize,
}

impl<B: DropnasBackend> AugmentNetwork<B> {
    pub fn new(cfg: &AugmentNetworkConfig, device: &B::Device) -> Self {
        let imagenet = cfg.network == NetworkKind::Imagenet;
        // The ImageNet stems end at C channels, and the first cell treats `stem0` as the output
        // of a reduction cell (its s0 is twice as large as its s1).
        let c_stem = if imagenet { cfg.init_channels } else { cfg.stem_multiplier * cfg.init_channels };
        let (mut c_pp, mut c_p, mut c) = (c_stem, c_stem, cfg.init_channels);
        let mut reduction_p = imagenet;
        let mut cells = Vec::with_capacity(cfg.layers);
        let mut aux_head = None;
        for i in 0..cfg.layers {
            let reduction = is_reduction(i, cfg.layers);
            if reduction {
                c *= 2;
            }
            let cell = AugmentCell::new(&cfg.genotype, c_pp, c_p, c, reduction_p, reduction, device);
            reduction_p = reduction;
            (c_pp, c_p) = (c_p, c * cell.multiplier());
            cells.push(cell);
            if Some(i) == cfg.aux_position() {
                aux_head = Some(if imagenet {
                    AuxHead::imagenet(c_p, cfg.n_classes, device)
                } else {
                    AuxHead::new(cfg.input_size / 4, c_p, cfg.n_classes, device)
                });
            }
        }
        let (stem0, stem) = if imagenet {
            (Some(ImagenetStem::new(cfg.input_channels, c_stem, device)), Stem::imagenet(c_stem, device))
        } else {
            (None, Stem::new(cfg.input_channels, c_stem, device))
        };
        Self {
            stem0,
            stem,
            cells,
            aux_head,
            linear: LinearConfig::new(c_p, cfg.n_classes).init(device),
            aux_position: cfg.aux_position().unwrap_or(usize::MAX),
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
            if i == self.aux_position && with_aux {
                aux = self.aux_head.as_ref().map(|h| h.forward(s1.clone()));
            }
        }
        let pooled = match self.final_pool {
            0 => adaptive_avg_pool2d(s1, [1, 1]),
            k => avg_pool2d(s1, [k, k], [k, k], [0, 0], true, false),
        };
        (self.linear.forward(pooled.flatten::<2>(1, 3)), aux)
    }
}
