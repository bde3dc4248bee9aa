//! `dropnas augment`: retrain a genotype from scratch; `dropnas eval`: test a saved network.

use crate::UserError;
use crate::device::{BackendTask, DeviceSpec, dispatch};
use crate::folder_args::ImageFolderArgs;
use crate::genotype_arg::resolve_genotype;
use anyhow::Result;
use dropnas_core::{DropnasAutodiffBackend, NetworkKind};
use dropnas_data::{DataSource, FolderTransforms, LoadOptions, LoaderConfig, is_image_folder};
use dropnas_train::augment::{AugmentConfig, TrainError, load_network, run_augment};
use dropnas_train::eval::evaluate;
use dropnas_train::recipe::Recipe;
use dropnas_train::schedule::LrSchedule;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct AugmentArgs {
    /// Run name: outputs go to OUT_DIR/NAME
    #[arg(long)]
    pub name: String,
    /// cifar10, cifar100, mnist, fashion-mnist, or imagefolder (DIR/train/CLASS/*.jpg, DIR/val/CLASS/*.jpg)
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
    /// Defaults of the flags below: cifar (DropNAS' CIFAR retraining) or imagenet (DARTS' mobile
    /// setting: needs --dataset imagefolder) [default: cifar]
    #[arg(long)]
    pub recipe: Option<Recipe>,
    /// cifar or imagenet (three stride-2 stem convolutions, for 224x224 input: image folders then
    /// default to --input-size 224) [default: imagenet at --input-size 224 or with --recipe imagenet, else cifar]
    #[arg(long)]
    pub network: Option<NetworkKind>,
    #[command(flatten)]
    pub folder: ImageFolderArgs,
    /// [default: 192; imagenet recipe: 128]
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Initial learning rate [default: 0.05; imagenet recipe: 0.1]
    #[arg(long)]
    pub lr: Option<f64>,
    /// cosine (to 0) or step (x gamma every --lr-step epochs) [default: cosine; imagenet recipe: step]
    #[arg(long)]
    pub lr_schedule: Option<LrScheduleKind>,
    /// Step schedule: factor per decay [default: 0.97]
    #[arg(long)]
    pub lr_gamma: Option<f64>,
    /// Step schedule: epochs between decays [default: 1]
    #[arg(long)]
    pub lr_step: Option<usize>,
    /// [default: 0.9]
    #[arg(long)]
    pub momentum: Option<f64>,
    /// [default: 3e-4; imagenet recipe: 3e-5]
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Global L2 norm the gradients are clipped to [default: 3; imagenet recipe: 5]
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// [default: 600; imagenet recipe: 250]
    #[arg(long)]
    pub epochs: Option<usize>,
    /// [default: 36; imagenet recipe: 48]
    #[arg(long)]
    pub init_channels: Option<usize>,
    /// [default: 20; imagenet recipe: 14]
    #[arg(long)]
    pub layers: Option<usize>,
    /// Weight of the auxiliary head's loss (0: no auxiliary head) [default: 0.4]
    #[arg(long)]
    pub aux_weight: Option<f64>,
    /// Side of the cutout square (0: no cutout) [default: 16; imagenet recipe: 0]
    #[arg(long)]
    pub cutout_length: Option<usize>,
    /// Final drop-path probability (rises linearly from 0 over the epochs) [default: 0.2; imagenet recipe: 0]
    #[arg(long)]
    pub drop_path_prob: Option<f64>,
    /// Label smoothing of the training loss (main and auxiliary) [default: 0; imagenet recipe: 0.1]
    #[arg(long)]
    pub label_smoothing: Option<f64>,
    #[arg(long, default_value_t = 666)]
    pub seed: u64,
    /// Data loader threads
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Use N training images (image folders: N spread evenly over the sorted file list)
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
}

/// `--lr-schedule`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrScheduleKind {
    Cosine,
    Step,
}

impl AugmentArgs {
    pub fn to_config(&self) -> Result<AugmentConfig> {
        let genotype = resolve_genotype(&self.genotype)?;
        let mut c = AugmentConfig::new(&self.name, &self.dataset, genotype);
        c.data_dir = self.data_dir.clone().unwrap_or_else(|| PathBuf::from("datasets").join(&self.dataset));
        c.download = !self.no_download;
        // The recipe first, then every flag given on top of it.
        let recipe = self.recipe.unwrap_or_default();
        if recipe == Recipe::Imagenet && !is_image_folder(&self.dataset) {
            return Err(UserError::new(format!(
                "--recipe imagenet trains on 224x224 crops of an image folder: use --dataset imagefolder --data-dir DIR \
                 (not {})",
                self.dataset
            ))
            .into());
        }
        recipe.apply(&mut c);
        // `--network imagenet` alone means its input size, 224.
        let base = match (c.image_folder.take(), self.network) {
            (None, Some(NetworkKind::Imagenet)) if is_image_folder(&self.dataset) => {
                Some(FolderTransforms::for_input_size(dropnas_core::augment_network_imagenet::IMAGENET_INPUT_SIZE))
            }
            (base, _) => base,
        };
        c.image_folder = self.folder.resolve(&self.dataset, base)?;
        if let Some(t) = &c.image_folder {
            c.network = NetworkKind::for_input_size(t.input_size);
        }
        if let Some(n) = self.network {
            c.network = n;
        }
        let set = |flag: Option<usize>, field: &mut usize| flag.into_iter().for_each(|v| *field = v);
        set(self.batch_size, &mut c.batch_size);
        set(self.epochs, &mut c.epochs);
        set(self.init_channels, &mut c.init_channels);
        set(self.layers, &mut c.layers);
        set(self.cutout_length, &mut c.cutout_length);
        let set = |flag: Option<f64>, field: &mut f64| flag.into_iter().for_each(|v| *field = v);
        set(self.lr, &mut c.lr);
        set(self.momentum, &mut c.momentum);
        set(self.weight_decay, &mut c.weight_decay);
        set(self.grad_clip, &mut c.grad_clip);
        set(self.aux_weight, &mut c.aux_weight);
        set(self.drop_path_prob, &mut c.drop_path_prob);
        set(self.label_smoothing, &mut c.label_smoothing);
        c.lr_schedule = self.schedule(c.lr_schedule)?;
        c.seed = self.seed;
        c.workers = self.workers;
        c.max_train_samples = self.max_train_samples;
        c.max_test_samples = self.max_test_samples;
        c.out_dir = self.out_dir.clone();
        c.checkpoint_every = self.checkpoint_every;
        c.print_freq = self.print_freq;
        c.max_steps = self.max_steps;
        Ok(c)
    }

    /// `--lr-schedule`, `--lr-gamma` and `--lr-step` on top of the recipe's schedule.
    fn schedule(&self, recipe: LrSchedule) -> Result<LrSchedule, UserError> {
        let (gamma0, step0) = match recipe {
            LrSchedule::Step { gamma, step_size } => (gamma, step_size),
            LrSchedule::Cosine { .. } => match LrSchedule::DARTS_IMAGENET {
                LrSchedule::Step { gamma, step_size } => (gamma, step_size),
                LrSchedule::Cosine { .. } => unreachable!("DARTS' ImageNet schedule is a step decay"),
            },
        };
        let step = match (self.lr_schedule, recipe) {
            (Some(LrScheduleKind::Cosine), _) | (None, LrSchedule::Cosine { .. }) => false,
            (Some(LrScheduleKind::Step), _) | (None, LrSchedule::Step { .. }) => true,
        };
        if !step {
            if self.lr_gamma.is_some() || self.lr_step.is_some() {
                return Err(UserError::new("--lr-gamma and --lr-step apply to --lr-schedule step"));
            }
            return Ok(match recipe {
                LrSchedule::Cosine { .. } => recipe,
                LrSchedule::Step { .. } => LrSchedule::default(),
            });
        }
        let s = LrSchedule::Step { gamma: self.lr_gamma.unwrap_or(gamma0), step_size: self.lr_step.unwrap_or(step0) };
        s.validate().map_err(UserError::new)?;
        Ok(s)
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
    /// cifar10, cifar100, mnist, fashion-mnist, or imagefolder (reads DIR/val, else DIR/test)
    #[arg(long)]
    pub dataset: String,
    /// Image folders: evaluation resizes the shorter side to N, then takes the centre square
    /// [default: the checkpoint's run's]
    #[arg(long, value_name = "N")]
    pub val_resize: Option<usize>,
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
        let user = |e: dropnas_data::DataError| UserError::new(e.to_string());
        // An image folder is preprocessed as the run that trained the network did.
        let folder = if is_image_folder(&a.dataset) {
            let saved: Option<FolderTransforms> =
                serde_json::from_value(ckpt.header["config"]["image_folder"].clone()).ok().flatten();
            let mut t = saved.unwrap_or_else(|| FolderTransforms::for_input_size(net_cfg.input_size));
            if let Some(r) = a.val_resize {
                t.val_resize = r;
            }
            Some(t)
        } else if a.val_resize.is_some() {
            return Err(UserError::new("--val-resize applies to --dataset imagefolder only").into());
        } else {
            None
        };
        let source = DataSource::new(&a.dataset, folder.as_ref()).map_err(user)?;
        let opts =
            LoadOptions { max_test_samples: a.max_test_samples, download: !a.no_download, ..LoadOptions::default() };
        let dir = a.data_dir.clone().unwrap_or_else(|| PathBuf::from("datasets").join(&a.dataset));
        let test = source.test(&dir, &opts, LoaderConfig::eval(a.batch_size, a.workers), None).map_err(user)?;
        let loader = test.loader;
        let [channels, size, _] = loader.shape();
        if loader.n_classes() != net_cfg.n_classes || channels != net_cfg.input_channels || size != net_cfg.input_size {
            return Err(UserError::new(format!(
                "{} was trained for {} classes on {}x{}x{} images, but {} gives {} classes and {channels}x{size}x{size} \
                 images",
                a.checkpoint.display(),
                net_cfg.n_classes,
                net_cfg.input_channels,
                net_cfg.input_size,
                net_cfg.input_size,
                source.display_name(),
                loader.n_classes(),
            ))
            .into());
        }
        if !a.json {
            for note in &test.notes {
                tracing::info!("{note}");
            }
        }
        let r = evaluate::<B::InnerBackend>(&net, &loader, &device).map_err(user)?;
        if a.json {
            println!("{}", serde_json::json!({ "loss": r.loss, "top1": r.top1, "top5": r.top5, "samples": r.samples }));
        } else {
            println!("checkpoint: {} (epoch {})", a.checkpoint.display(), ckpt.header["state"]["epoch"]);
            println!("genotype: {}", net_cfg.genotype);
            println!(
                "test on {} {} images: loss {:.4}, top-1 {:.2}%, top-5 {:.2}%",
                r.samples,
                source.display_name(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: AugmentArgs,
    }

    fn config(line: &str) -> Result<AugmentConfig> {
        let argv = format!("x --name n --genotype darts-v2 {line}");
        Cli::try_parse_from(argv.split_whitespace()).map_err(anyhow::Error::from)?.args.to_config()
    }

    #[test]
    fn recipes_then_flags() {
        let c = config("--dataset imagefolder --recipe imagenet --lr 0.5 --layers 8 --lr-gamma 0.9").unwrap();
        assert_eq!((c.lr, c.layers, c.init_channels, c.epochs), (0.5, 8, 48, 250));
        assert_eq!(c.lr_schedule, LrSchedule::Step { gamma: 0.9, step_size: 1 });
        assert_eq!(c.network, NetworkKind::Imagenet);
        let c = config("--dataset imagefolder --recipe imagenet --lr-schedule cosine --color-jitter none").unwrap();
        assert_eq!((c.lr_schedule, c.image_folder.unwrap().color_jitter), (LrSchedule::default(), None));
        // the CIFAR defaults, a step schedule on request
        let c = config("--dataset cifar10 --lr-schedule step --lr-step 30").unwrap();
        assert_eq!((c.lr, c.layers, c.label_smoothing), (0.05, 20, 0.0));
        assert_eq!(c.lr_schedule, LrSchedule::Step { gamma: 0.97, step_size: 30 });
        assert!(config("--dataset cifar10 --lr-gamma 0.5").unwrap_err().to_string().contains("--lr-schedule step"));
        // the network follows the input size, or asks for it
        let c = config("--dataset imagefolder --input-size 224").unwrap();
        assert_eq!((c.network, c.image_folder.unwrap().color_jitter), (NetworkKind::Imagenet, None));
        let c = config("--dataset imagefolder --network imagenet").unwrap();
        assert_eq!(c.image_folder.unwrap().input_size, 224);
        let c = config("--dataset imagefolder --input-size 64").unwrap();
        assert_eq!((c.network, c.image_folder.unwrap().val_resize), (NetworkKind::Cifar, 73));
        assert!(config("--dataset mnist --recipe imagenet").unwrap_err().to_string().contains("imagefolder"));
    }
}
