//! `dropnas search`: the one-level DropNAS search.

use crate::UserError;
use crate::device::{BackendTask, DeviceSpec, dispatch};
use anyhow::Result;
use dropnas_core::genotype::derive::Ranking;
use dropnas_core::{DropnasAutodiffBackend, TorchCompat};
use dropnas_search::{SearchConfig, run_search};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct SearchArgs {
    /// Run name: outputs go to OUT_DIR/NAME
    #[arg(long)]
    pub name: String,
    /// cifar10, cifar100, mnist or fashion-mnist
    #[arg(long)]
    pub dataset: String,
    /// Folder of the data set [default: datasets/<dataset>]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Never download a missing data set
    #[arg(long)]
    pub no_download: bool,
    #[arg(long, default_value_t = 96)]
    pub batch_size: usize,
    /// Epochs, warm-up epochs included
    #[arg(long, default_value_t = 76)]
    pub epochs: usize,
    /// Epochs without dropout and without the phase-1 alpha step
    #[arg(long, default_value_t = 0)]
    pub warmup_epochs: usize,
    #[arg(long, default_value_t = 14)]
    pub layers: usize,
    #[arg(long, default_value_t = 16)]
    pub init_channels: usize,
    #[arg(long, default_value_t = 0.0375)]
    pub w_lr: f64,
    #[arg(long, default_value_t = 0.0015)]
    pub w_lr_min: f64,
    #[arg(long, default_value_t = 0.9)]
    pub w_momentum: f64,
    #[arg(long, default_value_t = 3e-4)]
    pub w_weight_decay: f64,
    /// Global L2 norm the weight gradients are clipped to
    #[arg(long, default_value_t = 3.0)]
    pub w_grad_clip: f64,
    #[arg(long, default_value_t = 3e-4)]
    pub alpha_lr: f64,
    #[arg(long, default_value_t = 1e-3)]
    pub alpha_weight_decay: f64,
    /// Drop rate r of both op groups (each op dropped with probability r^(1/4)); 0 gives one-level DARTS
    #[arg(long, default_value_t = 3e-5)]
    pub drop_rate: f64,
    /// Drop rate r_p of the parameterised group [default: --drop-rate]
    #[arg(long)]
    pub drop_rate_param: Option<f64>,
    /// Drop rate r_np of the non-parameterised group [default: --drop-rate]
    #[arg(long)]
    pub drop_rate_nonparam: Option<f64>,
    /// original, 1-skip or 3-skip
    #[arg(long, default_value = "original")]
    pub search_space: String,
    #[arg(long, default_value_t = 666)]
    pub seed: u64,
    /// Data loader threads
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Use only the first N training images
    #[arg(long)]
    pub max_train_samples: Option<usize>,
    #[arg(long, default_value = "searchs")]
    pub out_dir: PathBuf,
    /// Continue OUT_DIR/NAME from its last checkpoint
    #[arg(long)]
    pub resume: bool,
    /// cpu, cuda[:N] or wgpu[:N] [default: BURN_DEVICE, else the best compiled in]
    #[arg(long)]
    pub device: Option<String>,
    /// PyTorch semantics: 1.0 (what the published runs used: BatchNorm weights U(0, 1),
    /// PyTorch 1.0's Adam epsilon, zero-filled gradients that keep momentum moving the weights of
    /// dropped ops) or modern (PyTorch >= 2.0)
    #[arg(long, default_value_t = TorchCompat::V1_0)]
    pub torch_compat: TorchCompat,
    /// The old name of --torch-compat modern
    #[arg(long, conflicts_with = "torch_compat")]
    pub no_legacy_momentum: bool,
    /// Rank genotype ops and edges by raw alpha (the original) or by softmax
    #[arg(long, value_enum, default_value_t = RankingArg::Raw)]
    pub ranking: RankingArg,
    /// Also checkpoint every N steps inside an epoch (0: at the end of each epoch only)
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: usize,
    /// Log a line every N steps
    #[arg(long, default_value_t = 50)]
    pub print_freq: usize,
    /// Stop after N steps in total (a later --resume continues)
    #[arg(long)]
    pub max_steps: Option<usize>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy)]
pub enum RankingArg {
    Raw,
    Softmax,
}

impl SearchArgs {
    pub fn to_config(&self) -> SearchConfig {
        let mut c = SearchConfig::new(&self.name, &self.dataset);
        c.data_dir = self.data_dir.clone().unwrap_or_else(|| PathBuf::from("datasets").join(&self.dataset));
        c.download = !self.no_download;
        c.batch_size = self.batch_size;
        c.epochs = self.epochs;
        c.warmup_epochs = self.warmup_epochs;
        c.layers = self.layers;
        c.init_channels = self.init_channels;
        c.w_lr = self.w_lr;
        c.w_lr_min = self.w_lr_min;
        c.w_momentum = self.w_momentum;
        c.w_weight_decay = self.w_weight_decay;
        c.w_grad_clip = self.w_grad_clip;
        c.alpha_lr = self.alpha_lr;
        c.alpha_weight_decay = self.alpha_weight_decay;
        c.drop_rate_param = self.drop_rate_param.unwrap_or(self.drop_rate);
        c.drop_rate_nonparam = self.drop_rate_nonparam.unwrap_or(self.drop_rate);
        c.search_space = self.search_space.clone();
        c.seed = self.seed;
        c.workers = self.workers;
        c.max_train_samples = self.max_train_samples;
        c.out_dir = self.out_dir.clone();
        c.torch_compat = if self.no_legacy_momentum { TorchCompat::Modern } else { self.torch_compat };
        c.ranking = match self.ranking {
            RankingArg::Raw => Ranking::RawAlpha,
            RankingArg::Softmax => Ranking::Softmax,
        };
        c.checkpoint_every = self.checkpoint_every;
        c.print_freq = self.print_freq;
        c.max_steps = self.max_steps;
        c
    }
}

struct Search(SearchConfig, bool);

impl BackendTask for Search {
    type Output = Result<()>;

    fn run<B: DropnasAutodiffBackend>(self, device: B::Device) -> Result<()> {
        let out = self.0.out_dir.join(&self.0.name);
        match run_search::<B>(self.0, device, self.1, &mut crate::commands::report::draw_run) {
            Ok(o) => {
                println!("genotype = {}", o.genotype);
                println!("outputs in {}", out.display());
                Ok(())
            }
            Err(e) if e.is_user_error() => Err(UserError::new(e.to_string()).into()),
            Err(e) => Err(e.into()),
        }
    }
}

pub fn run(args: SearchArgs) -> Result<()> {
    let spec = DeviceSpec::resolve(args.device.as_deref())?;
    tracing::info!("device: {}", spec.describe());
    dispatch(&spec, Search(args.to_config(), args.resume))
}
