//! `dropnas search`: the one-level DropNAS search.

use super::run::{Given, parallel, request_on, resume_start, run_error, say_finished};
use crate::folder_args::ImageFolderArgs;
use crate::launch::{Launch, PeersTask, dispatch_peers};
use anyhow::Result;
use dropnas_core::{DropnasAutodiffBackend, TorchCompat};
use dropnas_data::Dataset;
use dropnas_search::{SearchConfig, SearchSettings, SearchTask};
use dropnas_train::run::config::Control;
use dropnas_train::run::name::RunName;
use dropnas_train::run::{RunRequest, Start, run_parallel};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct SearchArgs {
    /// Run name: outputs go to OUT_DIR/NAME (one folder name, no path separators)
    #[arg(long)]
    pub name: RunName,
    /// cifar10, cifar100, mnist, fashion-mnist (any case), or imagefolder (--data-dir DIR with
    /// DIR/train/CLASS/*.jpg) [with --resume: the run's]
    #[arg(long, required_unless_present = "resume")]
    pub dataset: Option<Dataset>,
    /// Folder the run folder goes in
    #[arg(long, default_value = "searchs")]
    pub out_dir: PathBuf,
    /// Continue OUT_DIR/NAME from its last checkpoint, with the configuration it started with
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub settings: SearchSettings,
    /// The old name of --torch-compat modern
    #[arg(long, conflicts_with = "torch_compat")]
    pub no_legacy_momentum: bool,
    #[command(flatten)]
    pub folder: ImageFolderArgs,
    #[command(flatten)]
    pub control: Control,
}

impl SearchArgs {
    /// The settings with `--no-legacy-momentum` read as `--torch-compat modern`.
    fn settings(&self) -> SearchSettings {
        let mut s = self.settings.clone();
        if self.no_legacy_momentum {
            s.torch_compat = TorchCompat::Modern;
        }
        s
    }
}

struct Search(RunRequest<SearchConfig>, Launch);

impl PeersTask for Search {
    type Output = Result<()>;

    fn run<B: DropnasAutodiffBackend>(self, devices: Vec<B::Device>) -> Result<()> {
        let par = parallel(&self.1, devices);
        let o =
            run_parallel::<B, SearchTask<B>>(self.0, par, &mut crate::commands::report::draw_run).map_err(run_error)?;
        if o.already_finished {
            say_finished(&o);
            return Ok(());
        }
        if let Some(g) = &o.summary.genotype {
            println!("genotype = {g}");
        }
        println!("outputs in {}", o.folder.display());
        Ok(())
    }
}

pub fn run_command(args: SearchArgs, given: Given) -> Result<()> {
    let launch = Launch::resolve(&args.control)?;
    tracing::info!("device: {}", launch.describe());
    let settings = args.settings();
    // the old flag is compared on --resume as the setting it stands for
    let given = given.aliased("no_legacy_momentum", "torch_compat");
    let start = match args.dataset {
        Some(dataset) if !args.resume => {
            let folder = args.folder.resolve(dataset, None)?;
            Start::Fresh(SearchConfig::new(dataset, settings).with_image_folder(folder))
        }
        _ => resume_start(&given, &settings, &[("dataset", serde_json::to_value(args.dataset)?)]),
    };
    let req = request_on(args.name, args.out_dir, start, args.control, &launch);
    dispatch_peers(&launch, Search(req, launch.clone()))
}
