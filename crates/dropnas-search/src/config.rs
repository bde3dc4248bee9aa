//! The search configuration: the original's flags and defaults, saved as `config.json` in the
//! run folder so that the folder alone reproduces the run.

use dropnas_core::TorchCompat;
use dropnas_core::genotype::derive::Ranking;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    pub name: String,
    /// cifar10, cifar100, mnist or fashion-mnist
    pub dataset: String,
    pub data_dir: PathBuf,
    pub download: bool,
    pub batch_size: usize,
    /// Epochs including warm-up epochs.
    pub epochs: usize,
    /// Epochs without dropout and without the phase-1 alpha step.
    pub warmup_epochs: usize,
    pub layers: usize,
    pub init_channels: usize,
    pub w_lr: f64,
    pub w_lr_min: f64,
    pub w_momentum: f64,
    pub w_weight_decay: f64,
    pub w_grad_clip: f64,
    pub alpha_lr: f64,
    pub alpha_weight_decay: f64,
    /// r_p: drop rate of the parameterised group (an op is dropped with probability r^(1/4)).
    pub drop_rate_param: f64,
    /// r_np: drop rate of the non-parameterised group.
    pub drop_rate_nonparam: f64,
    pub search_space: String,
    pub seed: u64,
    pub workers: usize,
    pub max_train_samples: Option<usize>,
    pub out_dir: PathBuf,
    /// The PyTorch whose semantics the run reproduces (`--torch-compat`): 1.0, as the
    /// published runs, or modern.
    #[serde(default)]
    pub torch_compat: TorchCompat,
    /// How the genotype ranks ops and edges.
    pub ranking: Ranking,
    /// Also checkpoint every N steps within an epoch (0: only at the end of each epoch).
    pub checkpoint_every: usize,
    /// Log a line every N steps.
    pub print_freq: usize,
    /// Stop after this many steps in total (benchmarks, tests); `None` runs every epoch.
    pub max_steps: Option<usize>,
}

impl SearchConfig {
    /// The original's defaults for `dataset`.
    pub fn new(name: &str, dataset: &str) -> Self {
        Self {
            name: name.into(),
            dataset: dataset.into(),
            data_dir: PathBuf::from("datasets").join(dataset),
            download: true,
            batch_size: 96,
            epochs: 76,
            warmup_epochs: 0,
            layers: 14,
            init_channels: 16,
            w_lr: 0.0375,
            w_lr_min: 0.0015,
            w_momentum: 0.9,
            w_weight_decay: 3e-4,
            w_grad_clip: 3.0,
            alpha_lr: 3e-4,
            alpha_weight_decay: 1e-3,
            drop_rate_param: 3e-5,
            drop_rate_nonparam: 3e-5,
            search_space: "original".into(),
            seed: 666,
            workers: 2,
            max_train_samples: None,
            out_dir: PathBuf::from("searchs"),
            torch_compat: TorchCompat::default(),
            ranking: Ranking::RawAlpha,
            checkpoint_every: 0,
            print_freq: 50,
            max_steps: None,
        }
    }

    /// Checks values that would otherwise fail deep inside the run.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("--batch-size", self.batch_size),
            ("--epochs", self.epochs),
            ("--layers", self.layers),
            ("--init-channels", self.init_channels),
        ];
        for (flag, v) in positive {
            if v == 0 {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        if self.warmup_epochs > self.epochs {
            return Err(format!("--warmup-epochs {} exceeds --epochs {}", self.warmup_epochs, self.epochs));
        }
        for (flag, r) in
            [("--drop-rate-param", self.drop_rate_param), ("--drop-rate-nonparam", self.drop_rate_nonparam)]
        {
            if !(0.0..1.0).contains(&r) {
                return Err(format!("{flag} must be in [0, 1), got {r}"));
            }
        }
        if !(self.w_lr > 0.0 && self.w_lr <= 1.0) || self.w_lr_min < 0.0 || self.w_lr_min > self.w_lr {
            return Err(format!("need 0 < --w-lr-min <= --w-lr <= 1, got {} and {}", self.w_lr_min, self.w_lr));
        }
        if !self.init_channels.is_multiple_of(2) {
            return Err("--init-channels must be even (FactorizedReduce splits channels in two)".into());
        }
        Ok(())
    }
}
