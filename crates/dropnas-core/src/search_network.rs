//! The search network (supernet): stem, `L` search cells with reductions at `L/3` and `2L/3`,
//! global pooling and a linear classifier; plus [`Supernet`], the network with its alphas.

use crate::alphas::{Alphas, CellType, masked_softmax};
use crate::batch_norm::BatchNorm2d;
use crate::conv::{Conv2d, ConvSpec};
use crate::dropout::{CellMask, StepMasks};
use crate::init::ParamInit;
use crate::kernels::DropnasBackend;
use crate::search_cell::SearchCell;
use crate::search_space::SearchSpace;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::module::adaptive_avg_pool2d;
use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

/// 3x3 conv (in -> 3C) then affine BN; shared by the search and augment networks. In DARTS'
/// ImageNet network it is `stem1`: ReLU, 3x3 conv with stride 2, affine BN.
#[derive(Module, Debug)]
pub struct Stem<B: Backend> {
    pub conv: Conv2d<B>,
    pub bn: BatchNorm2d<B>,
    /// A ReLU before the convolution (the ImageNet `stem1` only; it follows `stem0`'s BN).
    pub relu: bool,
}

impl<B: DropnasBackend> Stem<B> {
    pub fn new(c_in: usize, c_out: usize, init: &mut ParamInit<B>) -> Self {
        Self {
            conv: ConvSpec::square(c_in, c_out, 3, 1, 1).init(init),
            bn: BatchNorm2d::new(c_out, true, init),
            relu: false,
        }
    }

    /// DARTS' ImageNet `stem1`: ReLU, 3x3 conv `c -> c` with stride 2, BN.
    pub fn imagenet(c: usize, init: &mut ParamInit<B>) -> Self {
        Self { conv: ConvSpec::square(c, c, 3, 2, 1).init(init), bn: BatchNorm2d::new(c, true, init), relu: true }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = if self.relu { burn::tensor::activation::relu(x) } else { x };
        self.bn.forward(self.conv.forward(x))
    }
}

/// Whether cell `i` of `layers` is a reduction cell (channels double, size halves).
pub fn is_reduction(i: usize, layers: usize) -> bool {
    i == layers / 3 || i == 2 * layers / 3
}

/// The cells of a network of `layers` cells on `side`x`side` input whose first cell has
/// `init_channels` channels: `(reduction, channels, output side)` of each, as both networks
/// lay them out (for estimates of their size before they are built).
pub fn cell_plan(layers: usize, init_channels: usize, side: usize) -> Vec<(bool, usize, usize)> {
    let (mut c, mut s) = (init_channels, side);
    (0..layers)
        .map(|i| {
            let reduction = is_reduction(i, layers);
            if reduction {
                c *= 2;
                s = s.div_ceil(2);
            }
            (reduction, c, s)
        })
        .collect()
}

/// The shape of a search network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchNetworkConfig {
    pub input_channels: usize,
    pub init_channels: usize,
    pub n_classes: usize,
    pub layers: usize,
    pub n_nodes: usize,
    pub stem_multiplier: usize,
    pub space: SearchSpace,
}

impl SearchNetworkConfig {
    pub fn new(
        input_channels: usize,
        init_channels: usize,
        n_classes: usize,
        layers: usize,
        space: SearchSpace,
    ) -> Self {
        Self { input_channels, init_channels, n_classes, layers, n_nodes: 4, stem_multiplier: 3, space }
    }

    /// The network and its alphas, with PyTorch's initial values drawn by `init` (the run's
    /// seeded generator: the same network for a seed on every backend).
    pub fn init<B: DropnasBackend>(&self, init: &mut ParamInit<B>) -> Supernet<B> {
        let net = SearchNetwork::new(self, init);
        Supernet { net, alphas: Alphas::new(self.n_nodes, self.space.n_ops(), init) }
    }
}

#[derive(Module, Debug)]
pub struct SearchNetwork<B: Backend> {
    pub stem: Stem<B>,
    pub cells: Vec<SearchCell<B>>,
    pub linear: Linear<B>,
}

impl<B: DropnasBackend> SearchNetwork<B> {
    pub fn new(cfg: &SearchNetworkConfig, init: &mut ParamInit<B>) -> Self {
        let c_stem = cfg.stem_multiplier * cfg.init_channels;
        let stem = Stem::new(cfg.input_channels, c_stem, init);
        let (mut c_pp, mut c_p, mut c) = (c_stem, c_stem, cfg.init_channels);
        let mut reduction_p = false;
        let mut cells = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let reduction = is_reduction(i, cfg.layers);
            if reduction {
                c *= 2;
            }
            cells.push(SearchCell::new(&cfg.space, cfg.n_nodes, c_pp, c_p, c, reduction_p, reduction, init));
            reduction_p = reduction;
            (c_pp, c_p) = (c_p, c * cfg.n_nodes);
        }
        Self { stem, cells, linear: init.linear(c_p, cfg.n_classes) }
    }

    /// `weights_*[i]`: node `i`'s mixing weights for the normal and the reduction cells.
    pub fn forward(
        &self,
        x: Tensor<B, 4>,
        weights_normal: &[Tensor<B, 2>],
        weights_reduce: &[Tensor<B, 2>],
        masks: &StepMasks,
    ) -> Tensor<B, 2> {
        let s = self.stem.forward(x);
        let (mut s0, mut s1) = (s.clone(), s);
        for cell in &self.cells {
            let (weights, mask) =
                if cell.reduction { (weights_reduce, &masks.reduce) } else { (weights_normal, &masks.normal) };
            let next = cell.forward(s0, s1.clone(), weights, mask);
            (s0, s1) = (s1, next);
        }
        let pooled = adaptive_avg_pool2d(s1, [1, 1]).flatten::<2>(1, 3);
        self.linear.forward(pooled)
    }
}

/// The search network and its architecture parameters.
#[derive(Module, Debug)]
pub struct Supernet<B: Backend> {
    pub net: SearchNetwork<B>,
    pub alphas: Alphas<B>,
}

impl<B: DropnasBackend> Supernet<B> {
    /// Mixing weights of every node of one cell type under a mask: softmax over kept ops.
    pub fn mixing_weights(&self, cell: CellType, mask: &CellMask) -> Vec<Tensor<B, 2>> {
        self.alphas
            .of(cell)
            .iter()
            .enumerate()
            .map(|(i, alpha)| {
                let rows = mask.node(i);
                let [e, n] = alpha.dims();
                let flat: Vec<f32> = rows.iter().flatten().map(|&k| if k { 1.0 } else { 0.0 }).collect();
                let keep = Tensor::from_data(TensorData::new(flat, [e, n]), &alpha.device());
                masked_softmax(alpha.val(), keep)
            })
            .collect()
    }

    /// Logits of a batch under this step's masks.
    pub fn forward(&self, x: Tensor<B, 4>, masks: &StepMasks) -> Tensor<B, 2> {
        let wn = self.mixing_weights(CellType::Normal, &masks.normal);
        let wr = self.mixing_weights(CellType::Reduce, &masks.reduce);
        self.net.forward(x, &wn, &wr, masks)
    }
}
