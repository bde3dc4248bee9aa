//! The augment network: a genotype's cells stacked `L` deep, trained from scratch.

use crate::augment_cell::AugmentCell;
use crate::aux_head::{AuxHead, check_aux_side};
use crate::drop_path::DropPathSource;
use crate::genotype::Genotype;
use crate::kernels::DropnasBackend;
use crate::search_network::{Stem, is_reduction};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use burn::tensor::module::adaptive_avg_pool2d;
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
        Self { input_size, input_channels, init_channels, n_classes, layers, auxiliary, stem_multiplier: 3, genotype }
    }

    /// Cell index after which the auxiliary head reads, if any.
    pub fn aux_position(&self) -> Option<usize> {
        self.auxiliary.then_some(2 * self.layers / 3)
    }

    /// Checks the shape before building (the auxiliary head needs a large enough feature map).
    pub fn validate(&self) -> Result<(), String> {
        if self.layers == 0 {
            return Err("--layers must be at least 1".into());
        }
        if self.auxiliary {
            check_aux_side(self.input_size / 4)?;
        }
        Ok(())
    }

    pub fn init<B: DropnasBackend>(&self, device: &B::Device) -> AugmentNetwork<B> {
        AugmentNetwork::new(self, device)
    }
}

#[derive(Module, Debug)]
pub struct AugmentNetwork<B: Backend> {
    pub stem: Stem<B>,
    pub cells: Vec<AugmentCell<B>>,
    pub aux_head: Option<AuxHead<B>>,
    pub linear: Linear<B>,
    pub aux_position: usize,
}

impl<B: DropnasBackend> AugmentNetwork<B> {
    pub fn new(cfg: &AugmentNetworkConfig, device: &B::Device) -> Self {
        let c_stem = cfg.stem_multiplier * cfg.init_channels;
        let (mut c_pp, mut c_p, mut c) = (c_stem, c_stem, cfg.init_channels);
        let mut reduction_p = false;
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
                aux_head = Some(AuxHead::new(cfg.input_size / 4, c_p, cfg.n_classes, device));
            }
        }
        Self {
            stem: Stem::new(cfg.input_channels, c_stem, device),
            cells,
            aux_head,
            linear: LinearConfig::new(c_p, cfg.n_classes).init(device),
            aux_position: cfg.aux_position().unwrap_or(usize::MAX),
        }
    }

    /// Logits, and the auxiliary logits when `with_aux` (training) and the head exists.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        drop: &mut dyn DropPathSource,
        with_aux: bool,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let s = self.stem.forward(x);
        let (mut s0, mut s1) = (s.clone(), s);
        let mut aux = None;
        for (i, cell) in self.cells.iter().enumerate() {
            let next = cell.forward(s0, s1.clone(), drop);
            (s0, s1) = (s1, next);
            if i == self.aux_position && with_aux {
                aux = self.aux_head.as_ref().map(|h| h.forward(s1.clone()));
            }
        }
        let pooled = adaptive_avg_pool2d(s1, [1, 1]).flatten::<2>(1, 3);
        (self.linear.forward(pooled), aux)
    }
}
