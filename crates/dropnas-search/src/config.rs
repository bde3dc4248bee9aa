//! The search's configuration: the original's flags and their defaults, each written once (in
//! its `#[arg]`), parsed by the CLI as they are and saved in `config.json`, so that the run
//! folder alone reproduces the run.

use dropnas_core::genotype::derive::Ranking;
use dropnas_core::search_space::{GroupKind, SpaceName};
use dropnas_core::{SearchSpace, TorchCompat};
use dropnas_data::{Dataset, FolderTransforms};
use dropnas_train::run::check::parse;
use dropnas_train::run::config::{Basics, RunBasics, TaskConfig, check_args, clap_defaults};
use serde::{Deserialize, Serialize};

/// The search's hyper-parameters (everything but the data set).
#[derive(clap::Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    /// Images per step
    #[arg(long, default_value_t = 96, value_parser = parse::at_least_one)]
    pub batch_size: usize,
    /// Epochs, warm-up epochs included
    #[arg(long, default_value_t = 76, value_parser = parse::at_least_one)]
    pub epochs: usize,
    #[command(flatten)]
    #[serde(flatten)]
    pub run: RunBasics,
    /// Epochs without dropout and without the phase-1 alpha step
    #[arg(long, default_value_t = 0)]
    pub warmup_epochs: usize,
    /// Cells of the supernet (reduction cells at 1/3 and 2/3)
    #[arg(long, default_value_t = 14, value_parser = parse::at_least_one)]
    pub layers: usize,
    /// Channels of the first cell (doubled at each reduction cell)
    #[arg(long, default_value_t = 16, value_parser = parse::even_positive)]
    pub init_channels: usize,
    /// Learning rate of the weights (cosine-annealed per epoch down to --w-lr-min)
    #[arg(long, default_value_t = 0.0375, value_parser = parse::positive)]
    pub w_lr: f64,
    /// Learning rate of the weights at the end of the cosine schedule
    #[arg(long, default_value_t = 0.0015, value_parser = parse::non_negative)]
    pub w_lr_min: f64,
    /// SGD momentum of the weights
    #[arg(long, default_value_t = 0.9, value_parser = parse::unit_interval)]
    pub w_momentum: f64,
    /// Partial weight decay (on the weights that took part in the step)
    #[arg(long, default_value_t = 3e-4, value_parser = parse::non_negative)]
    pub w_weight_decay: f64,
    /// Global L2 norm the weight gradients are clipped to
    #[arg(long, default_value_t = 3.0, value_parser = parse::positive)]
    pub w_grad_clip: f64,
    /// Adam learning rate of the alphas
    #[arg(long, default_value_t = 3e-4, value_parser = parse::positive)]
    pub alpha_lr: f64,
    /// Partial alpha decay (on the alpha entries whose gradient exceeded 1e-7)
    #[arg(long, default_value_t = 1e-3, value_parser = parse::non_negative)]
    pub alpha_weight_decay: f64,
    /// Drop rate r of both op groups (each op dropped with probability r^(1/4)); 0 gives one-level DARTS
    #[arg(long, default_value_t = 3e-5, value_parser = parse::unit_interval)]
    pub drop_rate: f64,
    /// Drop rate r_p of the parameterised group [default: --drop-rate]
    #[arg(long, value_parser = parse::unit_interval)]
    pub drop_rate_param: Option<f64>,
    /// Drop rate r_np of the non-parameterised group [default: --drop-rate]
    #[arg(long, value_parser = parse::unit_interval)]
    pub drop_rate_nonparam: Option<f64>,
    /// original, 1-skip or 3-skip
    #[arg(long, default_value_t = SpaceName::Original)]
    pub search_space: SpaceName,
    /// PyTorch semantics: 1.0 (what the published runs used: BatchNorm weights U(0, 1), PyTorch
    /// 1.0's Adam epsilon, zero-filled gradients that keep momentum moving the weights of dropped
    /// ops) or modern (PyTorch >= 2.0)
    #[arg(long, default_value_t = TorchCompat::default())]
    #[serde(default, alias = "legacy_zero_grad", deserialize_with = "TorchCompat::deserialize_or_legacy_flag")]
    pub torch_compat: TorchCompat,
    /// Rank genotype ops and edges by raw alpha (the original) or by softmax
    #[arg(long, default_value_t = Ranking::RawAlpha)]
    pub ranking: Ranking,
    /// Derive the genotype with at most K skip-connects in the normal cell (P-DARTS' rule: the
    /// weakest skip-connect edges take their best parameterised op) [default: no limit, the original's]
    #[arg(long, value_name = "K")]
    pub max_skip_connects: Option<usize>,
}

impl Default for SearchSettings {
    fn default() -> Self {
        clap_defaults(&[])
    }
}

/// A search: the data set and the hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    pub dataset: Dataset,
    #[serde(flatten)]
    pub settings: SearchSettings,
    /// `--dataset imagefolder`: input size and preprocessing (the training part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_folder: Option<FolderTransforms>,
}

impl SearchConfig {
    /// A search of `dataset` with `settings`; the group drop rates not given take `--drop-rate`.
    pub fn new(dataset: Dataset, mut settings: SearchSettings) -> Self {
        settings.drop_rate_param.get_or_insert(settings.drop_rate);
        settings.drop_rate_nonparam.get_or_insert(settings.drop_rate);
        Self { dataset, settings, image_folder: None }
    }

    /// The original's defaults for `dataset`.
    pub fn defaults(dataset: Dataset) -> Self {
        Self::new(dataset, SearchSettings::default())
    }

    /// The same search on an image folder preprocessed by `folder`.
    pub fn with_image_folder(mut self, folder: Option<FolderTransforms>) -> Self {
        self.image_folder = folder;
        self
    }

    pub fn space(&self) -> SearchSpace {
        self.settings.search_space.space()
    }

    /// The drop rate of a group kind: r_p or r_np.
    pub fn drop_rate(&self, kind: GroupKind) -> f64 {
        let s = &self.settings;
        match kind {
            GroupKind::Param => s.drop_rate_param,
            GroupKind::NonParam => s.drop_rate_nonparam,
        }
        .unwrap_or(s.drop_rate)
    }

    /// One rate per group of the search space, in group order (0 during warm-up).
    pub fn group_rates(&self, warmup: bool) -> Vec<f64> {
        self.space().groups.iter().map(|g| if warmup { 0.0 } else { self.drop_rate(g.kind) }).collect()
    }
}

impl TaskConfig for SearchConfig {
    fn basics(&self) -> Basics {
        let s = &self.settings;
        Basics::new(self.dataset, self.image_folder.as_ref(), s.batch_size, s.epochs, &s.run)
    }

    fn validate(&self) -> Result<(), String> {
        let s = &self.settings;
        check_args(s)?;
        if s.warmup_epochs > s.epochs {
            return Err(format!("--warmup-epochs {} exceeds --epochs {}", s.warmup_epochs, s.epochs));
        }
        if s.w_lr > 1.0 || s.w_lr_min > s.w_lr {
            return Err(format!("need --w-lr-min <= --w-lr <= 1, got {} and {}", s.w_lr_min, s.w_lr));
        }
        match (self.dataset, &self.image_folder) {
            (Dataset::ImageFolder, None) => Err("--dataset imagefolder needs its preprocessing (--input-size)".into()),
            (_, Some(t)) if !t.input_size.is_multiple_of(4) => Err(format!(
                "--input-size must be a multiple of 4 (the two reduction cells halve it, each through \
                 FactorizedReduce, which needs an even side), got {}",
                t.input_size
            )),
            (_, Some(t)) => t.validate().map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_originals() {
        let c = SearchConfig::defaults(Dataset::Builtin(dropnas_data::DatasetKind::Cifar10));
        let s = &c.settings;
        assert_eq!((s.batch_size, s.epochs, s.layers, s.init_channels, s.run.seed), (96, 76, 14, 16, 666));
        assert_eq!(
            (s.w_lr, s.w_lr_min, s.w_momentum, s.w_weight_decay, s.w_grad_clip),
            (0.0375, 0.0015, 0.9, 3e-4, 3.0)
        );
        assert_eq!((s.alpha_lr, s.alpha_weight_decay, s.drop_rate), (3e-4, 1e-3, 3e-5));
        assert_eq!((s.drop_rate_param, s.drop_rate_nonparam), (Some(3e-5), Some(3e-5)));
        assert!(
            s.torch_compat == TorchCompat::V1_0
                && s.ranking == Ranking::RawAlpha
                && s.search_space == SpaceName::Original
        );
        assert_eq!(c.group_rates(false), [3e-5, 3e-5]);
        assert_eq!(c.group_rates(true), [0.0, 0.0]);
        c.validate().unwrap();
        let mut bad = c.clone();
        bad.settings.w_grad_clip = -1.0;
        assert!(bad.validate().unwrap_err().contains("--w-grad-clip"));
        let mut bad = c.clone();
        bad.settings.warmup_epochs = 100;
        assert!(bad.validate().unwrap_err().contains("--warmup-epochs"));
    }
}
