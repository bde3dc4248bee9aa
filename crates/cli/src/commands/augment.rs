//! `dropnas augment`: retrain a genotype from scratch; `dropnas eval`: test a saved network.

use super::run::{Given, parallel, request_on, resume_start, run_error, say_finished};
use crate::UserError;
use crate::device::{BackendTask, DeviceSpec, dispatch};
use crate::folder_args::ImageFolderArgs;
use crate::genotype_arg::resolve_genotype;
use crate::launch::{Launch, PeersTask, dispatch_peers};
use anyhow::Result;
use dropnas_core::DropnasAutodiffBackend;
use dropnas_core::NetworkKind;
use dropnas_core::genotype::Genotype;
use dropnas_data::{DataSource, Dataset, FolderTransforms, LoadOptions, LoaderConfig};
use dropnas_train::augment::{AugmentConfig, AugmentSettings, AugmentTask, load_network};
use dropnas_train::eval::evaluate;
use dropnas_train::recipe::Recipe;
use dropnas_train::run::config::Control;
use dropnas_train::run::name::RunName;
use dropnas_train::run::{RunRequest, Start, run_parallel};
use dropnas_train::schedule::LrSchedule;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct AugmentArgs {
    /// Run name: outputs go to OUT_DIR/NAME (one folder name, no path separators)
    #[arg(long)]
    pub name: RunName,
    /// cifar10, cifar100, mnist, fashion-mnist (any case), or imagefolder (--data-dir DIR with
    /// DIR/train/CLASS/*.jpg and DIR/val/CLASS/*.jpg) [with --resume: the run's]
    #[arg(long, required_unless_present = "resume")]
    pub dataset: Option<Dataset>,
    /// Genotype text, @file, a search run folder (searchs/NAME) or a name (dropnas-cifar10, darts-v2, ...)
    /// [with --resume: the run's]
    #[arg(long, required_unless_present = "resume")]
    pub genotype: Option<String>,
    /// Folder the run folder goes in
    #[arg(long, default_value = "augments")]
    pub out_dir: PathBuf,
    /// Continue OUT_DIR/NAME from its last checkpoint, with the configuration it started with
    #[arg(long)]
    pub resume: bool,
    /// Defaults of the hyper-parameters: cifar (DropNAS' CIFAR retraining) or imagenet (DARTS' mobile
    /// setting; needs --dataset imagefolder); a flag given overrides its recipe value [default: cifar]
    #[arg(long)]
    pub recipe: Option<Recipe>,
    /// cifar, or imagenet (three stride-2 stem convolutions, for 224x224 input) [default: imagenet at
    /// --input-size 224 or with --recipe imagenet, else cifar]
    #[arg(long)]
    pub network: Option<NetworkKind>,
    /// cosine (to 0, the original's) or step (x --lr-gamma every --lr-step epochs) [default: cosine;
    /// imagenet recipe: step]
    #[arg(long)]
    pub lr_schedule: Option<LrScheduleKind>,
    /// Step schedule: factor per decay [default: 0.97]
    #[arg(long)]
    pub lr_gamma: Option<f64>,
    /// Step schedule: epochs between decays [default: 1]
    #[arg(long)]
    pub lr_step: Option<usize>,
    #[command(flatten)]
    pub settings: AugmentSettings,
    #[command(flatten)]
    pub folder: ImageFolderArgs,
    #[command(flatten)]
    pub control: Control,
}

/// `--lr-schedule`.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrScheduleKind {
    Cosine,
    Step,
}

impl AugmentArgs {
    /// A new run's configuration: the recipe's values, then every flag given (`given`) on top.
    pub(crate) fn config(&self, dataset: Dataset, genotype: Genotype, given: &Given) -> Result<AugmentConfig> {
        let recipe = self.recipe.unwrap_or_default();
        if recipe == Recipe::Imagenet && dataset != Dataset::ImageFolder {
            return Err(UserError::new(format!(
                "--recipe imagenet trains on 224x224 crops of an image folder: use --dataset imagefolder --data-dir DIR \
                 (not {dataset})"
            ))
            .into());
        }
        let mut c = AugmentConfig::defaults(dataset, genotype);
        recipe.apply(&mut c);
        // the flags given win over the recipe: merged by key, as the configuration holds them
        let mut merged = serde_json::to_value(&c.settings)?;
        let typed = serde_json::to_value(&self.settings)?;
        for (key, _) in &given.0 {
            if let Some(v) = typed.get(key) {
                merged[key.as_str()] = v.clone();
            }
        }
        c.settings = serde_json::from_value(merged)?;
        // `--network imagenet` alone means its input size, 224
        let base = match (c.image_folder.take(), self.network) {
            (None, Some(NetworkKind::Imagenet)) if dataset == Dataset::ImageFolder => {
                Some(FolderTransforms::for_input_size(dropnas_core::augment_network_imagenet::IMAGENET_INPUT_SIZE))
            }
            (base, _) => base,
        };
        c.image_folder = self.folder.resolve(dataset, base)?;
        if let Some(t) = &c.image_folder {
            c.network = NetworkKind::for_input_size(t.input_size);
        }
        if let Some(n) = self.network {
            c.network = n;
        }
        c.lr_schedule = self.schedule(c.lr_schedule)?;
        Ok(c)
    }

    /// `--lr-schedule`, `--lr-gamma` and `--lr-step` on top of the recipe's schedule.
    fn schedule(&self, recipe: LrSchedule) -> Result<LrSchedule, UserError> {
        let (gamma0, step0) = match (recipe, LrSchedule::DARTS_IMAGENET) {
            (LrSchedule::Step { gamma, step_size }, _) | (_, LrSchedule::Step { gamma, step_size }) => {
                (gamma, step_size)
            }
            _ => unreachable!("DARTS' ImageNet schedule is a step decay"),
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

struct AugmentRun(RunRequest<AugmentConfig>, Launch);

impl PeersTask for AugmentRun {
    type Output = Result<()>;

    fn run<B: DropnasAutodiffBackend>(self, devices: Vec<B::Device>) -> Result<()> {
        let par = parallel(&self.1, devices);
        let o = run_parallel::<B, AugmentTask<B>>(self.0, par, &mut crate::commands::report::draw_run)
            .map_err(run_error)?;
        if o.already_finished {
            say_finished(&o);
            return Ok(());
        }
        if let Some(best) = o.summary.best_top1 {
            println!("best test top-1 {:.2}%", 100.0 * best);
        }
        if let Some(f) = o.summary.final_eval {
            println!("final test top-1 {:.2}%, top-5 {:.2}%, loss {:.4}", 100.0 * f.top1, 100.0 * f.top5, f.loss);
        }
        println!("outputs in {}", o.folder.display());
        Ok(())
    }
}

pub fn run_command(args: AugmentArgs, given: Given) -> Result<()> {
    let launch = Launch::resolve(&args.control)?;
    let genotype = args.genotype.as_deref().map(resolve_genotype).transpose()?;
    tracing::info!("device: {}", launch.describe());
    let start = match (args.dataset, genotype) {
        (Some(dataset), Some(genotype)) if !args.resume => Start::Fresh(args.config(dataset, genotype, &given)?),
        (dataset, genotype) => {
            let extra = [
                ("dataset", serde_json::to_value(dataset)?),
                ("genotype", serde_json::to_value(genotype.map(|g| g.to_string()))?),
                ("recipe", serde_json::to_value(args.recipe)?),
                ("network", serde_json::to_value(args.network)?),
            ];
            resume_start(&given, &args.settings, &extra)
        }
    };
    let req = request_on(args.name, args.out_dir, start, args.control, &launch);
    dispatch_peers(&launch, AugmentRun(req, launch.clone()))
}

#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// A checkpoint written by `dropnas augment` (best.ckpt or checkpoint.ckpt)
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The data set to test on: cifar10, ..., or imagefolder (reads DIR/val, else DIR/test)
    /// [default: the one the network was trained on]
    #[arg(long)]
    pub dataset: Option<Dataset>,
    /// Image folders: evaluation resizes the shorter side to N, then takes the centre square
    /// [default: the checkpoint's run's]
    #[arg(long, value_name = "N")]
    pub val_resize: Option<usize>,
    /// Folder of the data set [default: datasets/<dataset>]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Never download a missing data set
    #[arg(long)]
    pub no_download: bool,
    /// Images per batch
    #[arg(long, default_value_t = 256, value_parser = dropnas_train::run::check::parse::at_least_one)]
    pub batch_size: usize,
    /// Test on only the first N test images
    #[arg(long, value_parser = dropnas_train::run::check::parse::at_least_one)]
    pub max_test_samples: Option<usize>,
    /// Data loader threads
    #[arg(long, default_value_t = 1, value_parser = dropnas_train::run::check::parse::at_least_one)]
    pub workers: usize,
    /// cpu, cuda[:N] or wgpu[:N] [default: BURN_DEVICE, else the best compiled in]
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
        let (net, header) = load_network::<B::InnerBackend>(&a.checkpoint, &device).map_err(run_error)?;
        let net_cfg = &header.state.network;
        let dataset = a.dataset.unwrap_or(header.config.dataset);
        let user = |e: dropnas_data::DataError| UserError::new(e.to_string());
        // an image folder is preprocessed as the run that trained the network did
        let folder = if dataset == Dataset::ImageFolder {
            let mut t = header
                .config
                .image_folder
                .clone()
                .unwrap_or_else(|| FolderTransforms::for_input_size(net_cfg.input_size));
            if let Some(r) = a.val_resize {
                t.val_resize = r;
            }
            Some(t)
        } else if a.val_resize.is_some() {
            return Err(UserError::new("--val-resize applies to --dataset imagefolder only").into());
        } else {
            None
        };
        let source = DataSource::new(dataset, folder.as_ref()).map_err(user)?;
        let opts =
            LoadOptions { max_test_samples: a.max_test_samples, download: !a.no_download, ..LoadOptions::default() };
        let dir = match (a.data_dir.clone(), dataset) {
            (Some(d), _) => d,
            (None, Dataset::ImageFolder) => {
                return Err(UserError::new("--dataset imagefolder needs --data-dir DIR").into());
            }
            (None, d) => d.default_dir(),
        };
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
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!("checkpoint: {} (after epoch {})", a.checkpoint.display(), header.position.epoch);
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
    use clap::{CommandFactory, FromArgMatches, Parser};

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: AugmentArgs,
    }

    fn config(line: &str) -> Result<AugmentConfig> {
        let argv = format!("x --name n --genotype darts-v2 {line}");
        let cmd = Cli::command();
        let m = cmd.clone().try_get_matches_from(argv.split_whitespace())?;
        let a = Cli::from_arg_matches(&m)?.args;
        let genotype = resolve_genotype(a.genotype.as_deref().unwrap())?;
        a.config(a.dataset.unwrap(), genotype, &Given::from_matches(&cmd, &m))
    }

    #[test]
    fn recipes_then_flags() {
        let c = config("--dataset imagefolder --recipe imagenet --lr 0.5 --layers 8 --lr-gamma 0.9").unwrap();
        let s = &c.settings;
        assert_eq!((s.lr, s.layers, s.init_channels, s.epochs), (0.5, 8, 48, 250));
        assert_eq!(c.lr_schedule, LrSchedule::Step { gamma: 0.9, step_size: 1 });
        assert_eq!(c.network, NetworkKind::Imagenet);
        let c = config("--dataset imagefolder --recipe imagenet --lr-schedule cosine --color-jitter none").unwrap();
        assert_eq!((c.lr_schedule, c.image_folder.unwrap().color_jitter), (LrSchedule::default(), None));
        // a flag given with the recipe's own default value still wins over the recipe
        let c = config("--dataset imagefolder --recipe imagenet --epochs 600").unwrap();
        assert_eq!(c.settings.epochs, 600);
        // the CIFAR defaults, a step schedule on request
        let c = config("--dataset cifar10 --lr-schedule step --lr-step 30").unwrap();
        assert_eq!((c.settings.lr, c.settings.layers, c.settings.label_smoothing), (0.05, 20, 0.0));
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
