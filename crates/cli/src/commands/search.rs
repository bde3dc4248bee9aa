//! `dropnas search`: the one-level DropNAS search.

use super::run::{Given, request, resume_start, run_error, say_finished};
use crate::device::{BackendTask, DeviceSpec, dispatch};
use crate::folder_args::ImageFolderArgs;
use anyhow::Result;
use dropnas_core::DropnasAutodiffBackend;
use dropnas_data::Dataset;
use dropnas_search::{SearchConfig, SearchSettings, SearchTask};
use dropnas_train::run::config::Control;
use dropnas_train::run::name::RunName;
use dropnas_train::run::{RunRequest, Start, run};
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
    #[command(flatten)]
    pub folder: ImageFolderArgs,
    #[command(flatten)]
    pub control: Control,
}

struct Search(RunRequest<SearchConfig>);

impl BackendTask for Search {
    type Output = Result<()>;

    fn run<B: DropnasAutodiffBackend>(self, device: B::Device) -> Result<()> {
        let o = run::<B, SearchTask<B>>(self.0, device, &mut crate::commands::report::draw_run).map_err(run_error)?;
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
    let spec = DeviceSpec::resolve(args.control.device.as_deref())?;
    tracing::info!("device: {}", spec.describe());
    let start = match args.dataset {
        Some(dataset) if !args.resume => {
            let folder = args.folder.resolve(dataset, None)?;
            Start::Fresh(SearchConfig::new(dataset, args.settings).with_image_folder(folder))
        }
        _ => resume_start(&given, &args.settings, &[("dataset", serde_json::to_value(args.dataset)?)]),
    };
    dispatch(&spec, Search(request(args.name, args.out_dir, start, args.control, &spec)))
}
