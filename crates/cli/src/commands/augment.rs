//! `dropnas augment`: retrain a genotype from scratch; `dropnas eval`: test a saved network.

use crate::UserError;
use crate::device::{BackendTask, DeviceSpec, dispatch};
use crate::genotype_arg::resolve_genotype;
use anyhow::Result;
use dropnas_core::{DropnasAutodiffBackend, TorchCompat};
use dropnas_data::{Augment, DatasetKind, LoadOptions, Loader, LoaderConfig, Split, load};
use dropnas_train::augment::{AugmentConfig, TrainError, load_network, run_augment};
use dropnas_train::eval::evaluate;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug, Clone)]
pub struct AugmentArgs {
    /// Run name: outputs go to OUT_DIR/NAME
    #[arg(long)]
    pub name: String,
    /// cifar10, cifar100, mnist or fashion-mnist
    #[arg(long)]
    pub dataset: String,
    /// Genotype text, @file, a search run folder (searchs/NAME) or a name (dropnas-cifar10, darts-v2, ...)
    #[arg(long)]
    pub genotype: String,
    /// Folder of the data set [default: datasets/<dataset>]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Never download a missing data set
    #[arg(long)]
    pub no_download: bool,
    #[arg(long, default_value_t = 192)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    #[arg(long, default_value_t = 3e-4)]
    pub weight_decay: f64,
    /// Global L2 norm the gradients are clipped to
    #[arg(long, default_value_t = 3.0)]
    pub grad_clip: f64,
    #[arg(long, default_value_t = 600)]
    pub epochs: usize,
    #[arg(long, default_value_t = 36)]
    pub init_channels: usize,
    #[arg(long, default_value_t = 20)]
    pub layers: usize,
    /// Weight of the auxiliary head's loss (0: no auxiliary head)
    #[arg(long, default_value_t = 0.4)]
    pub aux_weight: f64,
    /// Side of the cutout square (0: no cutout)
    #[arg(long, default_value_t = 16)]
    pub cutout_length: usize,
    /// Final drop-path probability (rises linearly from 0 over the epochs)
    #[arg(long, default_value_t = 0.2)]
    pub drop_path_prob: f64,
    #[arg(long, default_value_t = 666)]
    pub seed: u64,
    /// Data loader threads
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    #[arg(long)]
    pub max_train_samples: Option<usize>,
    #[arg(long)]
    pub max_test_samples: Option<usize>,
    #[arg(long, default_value = "augments")]
    pub out_dir: PathBuf,
    /// Continue OUT_DIR/NAME from its last checkpoint
    #[arg(long)]
    pub resume: bool,
    /// cpu, cuda[:N] or wgpu[:N] [default: BURN_DEVICE, else the best compiled in]
    #[arg(long)]
    pub device: Option<String>,
    /// Also checkpoint every N steps inside an epoch (0: at the end of each epoch only)
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: usize,
    /// Log a line every N steps
    #[arg(long, default_value_t = 50)]
    pub print_freq: usize,
    /// Stop after N steps in total (a later --resume continues)
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// PyTorch semantics: 1.0 (what the published runs used: BatchNorm weights U(0, 1), the
    /// auxiliary head's in-place ReLU) or modern (PyTorch >= 2.0)
    #[arg(long, default_value_t = TorchCompat::V1_0)]
    pub torch_compat: TorchCompat,
}

impl AugmentArgs {
    pub fn to_config(&self) -> Result<AugmentConfig> {
        let genotype = resolve_genotype(&self.genotype)?;
        let mut c = AugmentConfig::new(&self.name, &self.dataset, genotype);
        c.data_dir = self.data_dir.clone().unwrap_or_else(|| PathBuf::from("datasets").join(&self.dataset));
        c.download = !self.no_download;
        c.batch_size = self.batch_size;
        c.lr = self.lr;
        c.momentum = self.momentum;
        c.weight_decay = self.weight_decay;
        c.grad_clip = self.grad_clip;
        c.epochs = self.epochs;
        c.init_channels = self.init_channels;
        c.layers = self.layers;
        c.aux_weight = self.aux_weight;
        c.cutout_length = self.cutout_length;
        c.drop_path_prob = self.drop_path_prob;
        c.seed = self.seed;
        c.workers = self.workers;
        c.max_train_samples = self.max_train_samples;
        c.max_test_samples = self.max_test_samples;
        c.out_dir = self.out_dir.clone();
        c.checkpoint_every = self.checkpoint_every;
        c.print_freq = self.print_freq;
        c.max_steps = self.max_steps;
        c.torch_compat = self.torch_compat;
        Ok(c)
    }
}

fn user_or_internal(e: TrainError) -> anyhow::Error {
    if e.is_user_error() { UserError::new(e.to_string()).into() } else { e.into() }
}

struct AugmentTask(AugmentConfig, bool);

impl BackendTask for AugmentTask {
    type Output = Result<()>;

    fn run<B: DropnasAutodiffBackend>(self, device: B::Device) -> Result<()> {
        let out = self.0.out_dir.join(&self.0.name);
        let o = run_augment::<B>(self.0, device, self.1, &mut crate::commands::report::draw_run)
            .map_err(user_or_internal)?;
        println!("best test top-1 {:.2}%", 100.0 * o.best_top1);
        if let Some(f) = o.final_eval {
            println!("final test top-1 {:.2}%, top-5 {:.2}%, loss {:.4}", 100.0 * f.top1, 100.0 * f.top5, f.loss);
        }
        println!("outputs in {}", out.display());
        Ok(())
    }
}

pub fn run(args: AugmentArgs) -> Result<()> {
    let spec = DeviceSpec::resolve(args.device.as_deref())?;
    let cfg = args.to_config()?;
    tracing::info!("device: {}", spec.describe());
    dispatch(&spec, AugmentTask(cfg, args.resume))
}

#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// A checkpoint written by `dropnas augment` (best.ckpt or checkpoint.ckpt)
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// cifar10, cifar100, mnist or fashion-mnist
    #[arg(long)]
    pub dataset: String,
    /// Folder of the data set [default: datasets/<dataset>]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long)]
    pub no_download: bool,
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    #[arg(long)]
    pub max_test_samples: Option<usize>,
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    #[arg(long)]
    pub device: Option<String>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
}

struct EvalTask(EvalArgs);

impl BackendTask for EvalTask {
    type Output = Result<()>;

    fn run<B: DropnasAutodiffBackend>(self, device: B::Device) -> Result<()> {
        let a = self.0;
        let (net, net_cfg, ckpt) = load_network::<B::InnerBackend>(&a.checkpoint, &device).map_err(user_or_internal)?;
        let kind: DatasetKind =
            a.dataset.parse().map_err(|e: dropnas_data::DataError| UserError::new(e.to_string()))?;
        let opts =
            LoadOptions { max_test_samples: a.max_test_samples, download: !a.no_download, ..LoadOptions::default() };
        let dir = a.data_dir.clone().unwrap_or_else(|| PathBuf::from("datasets").join(&a.dataset));
        let test = Arc::new(load(kind, &dir, Split::Test, &opts).map_err(|e| UserError::new(e.to_string()))?);
        if test.n_classes() != net_cfg.n_classes || kind.input_channels() != net_cfg.input_channels {
            return Err(UserError::new(format!(
                "{} was trained for {} classes on {}-channel images, but {} has {} classes and {}-channel images",
                a.checkpoint.display(),
                net_cfg.n_classes,
                net_cfg.input_channels,
                kind.display_name(),
                test.n_classes(),
                kind.input_channels()
            ))
            .into());
        }
        let loader = Loader::new(test, Augment::eval(kind), LoaderConfig::eval(a.batch_size, a.workers))
            .map_err(|e| UserError::new(e.to_string()))?;
        let r = evaluate::<B::InnerBackend>(&net, &loader, &device);
        if a.json {
            println!("{}", serde_json::json!({ "loss": r.loss, "top1": r.top1, "top5": r.top5, "samples": r.samples }));
        } else {
            println!("checkpoint: {} (epoch {})", a.checkpoint.display(), ckpt.header["state"]["epoch"]);
            println!("genotype: {}", net_cfg.genotype);
            println!(
                "test on {} {} images: loss {:.4}, top-1 {:.2}%, top-5 {:.2}%",
                r.samples,
                kind.display_name(),
                r.loss,
                100.0 * r.top1,
                100.0 * r.top5
            );
        }
        Ok(())
    }
}

pub fn run_eval(args: EvalArgs) -> Result<()> {
    let spec = DeviceSpec::resolve(args.device.as_deref())?;
    dispatch(&spec, EvalTask(args))
}
