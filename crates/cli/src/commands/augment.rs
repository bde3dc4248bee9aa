//! `dropnas augment`: retrain a genotype from scratch; `dropnas eval`: test a saved network.

use super::run::{Given, request, resume_start, run_error, say_finished};
use crate::UserError;
use crate::device::{BackendTask, DeviceSpec, dispatch};
use crate::genotype_arg::resolve_genotype;
use anyhow::Result;
use dropnas_core::DropnasAutodiffBackend;
use dropnas_data::{Augment, DatasetKind, LoadOptions, Loader, LoaderConfig, Split, load};
use dropnas_train::augment::{AugmentConfig, AugmentSettings, AugmentTask, load_network};
use dropnas_train::eval::evaluate;
use dropnas_train::run::config::Control;
use dropnas_train::run::name::RunName;
use dropnas_train::run::{RunRequest, Start, run};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(clap::Args, Debug, Clone)]
pub struct AugmentArgs {
    /// Run name: outputs go to OUT_DIR/NAME (one folder name, no path separators)
    #[arg(long)]
    pub name: RunName,
    /// cifar10, cifar100, mnist or fashion-mnist (any case) [with --resume: the run's]
    #[arg(long, required_unless_present = "resume")]
    pub dataset: Option<DatasetKind>,
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
    #[command(flatten)]
    pub settings: AugmentSettings,
    #[command(flatten)]
    pub control: Control,
}

struct AugmentRun(RunRequest<AugmentConfig>);

impl BackendTask for AugmentRun {
    type Output = Result<()>;

    fn run<B: DropnasAutodiffBackend>(self, device: B::Device) -> Result<()> {
        let o = run::<B, AugmentTask<B>>(self.0, device, &mut crate::commands::report::draw_run).map_err(run_error)?;
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
    let spec = DeviceSpec::resolve(args.control.device.as_deref())?;
    let genotype = args.genotype.as_deref().map(resolve_genotype).transpose()?;
    tracing::info!("device: {}", spec.describe());
    let start = match (args.dataset, genotype) {
        (Some(dataset), Some(genotype)) if !args.resume => {
            Start::Fresh(AugmentConfig { dataset, genotype, settings: args.settings })
        }
        (dataset, genotype) => {
            let extra = [
                ("dataset", serde_json::to_value(dataset)?),
                ("genotype", serde_json::to_value(genotype.map(|g| g.to_string()))?),
            ];
            resume_start(&given, &args.settings, &extra)
        }
    };
    dispatch(&spec, AugmentRun(request(args.name, args.out_dir, start, args.control, &spec)))
}

#[derive(clap::Args, Debug, Clone)]
pub struct EvalArgs {
    /// A checkpoint written by `dropnas augment` (best.ckpt or checkpoint.ckpt)
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The data set to test on [default: the one the network was trained on]
    #[arg(long)]
    pub dataset: Option<DatasetKind>,
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
        let kind = a.dataset.unwrap_or(header.config.dataset);
        let opts =
            LoadOptions { max_test_samples: a.max_test_samples, download: !a.no_download, ..LoadOptions::default() };
        let dir = a.data_dir.clone().unwrap_or_else(|| kind.default_dir());
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
            println!("{}", serde_json::to_string(&r)?);
        } else {
            println!("checkpoint: {} (after epoch {})", a.checkpoint.display(), header.position.epoch);
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
