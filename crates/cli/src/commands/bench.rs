//! `dropnas bench`: time the training steps (median, min, max over repeated steps after
//! warm-up) and report peak memory, to compare with `tools/reference/bench_*.py`.

use crate::UserError;
use crate::device::{BackendTask, DeviceSpec, dispatch};
use anyhow::Result;
use dropnas_core::{DropnasAutodiffBackend, TorchCompat};
use dropnas_search::bench::{BenchConfig, BenchResult, bench_search, peak_rss_mib, summarize};

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// One full DropNAS search step (both phases, alpha adjustment) on random 32x32x3 input
    Search(SearchBenchArgs),
    /// One augment training step (auxiliary head, drop path 0.2) on random 32x32x3 input
    Augment(AugmentBenchArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct AugmentBenchArgs {
    /// Genotype text, @file, a search run folder or a name
    #[arg(long, default_value = "dropnas-cifar10")]
    pub genotype: String,
    /// Cells
    #[arg(long, default_value_t = 20)]
    pub layers: usize,
    /// Channels of the first cell
    #[arg(long, default_value_t = 36)]
    pub init_channels: usize,
    /// Images per step
    #[arg(long, default_value_t = 96)]
    pub batch_size: usize,
    /// Timed steps
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Untimed steps first
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// cpu, cuda[:N] or wgpu[:N] [default: BURN_DEVICE, else the best compiled in]
    #[arg(long)]
    pub device: Option<String>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
    /// PyTorch semantics: 1.0 (as the published runs) or modern
    #[arg(long, default_value_t = TorchCompat::V1_0)]
    pub torch_compat: TorchCompat,
}

struct AugmentBench(AugmentBenchArgs, dropnas_core::Genotype);

impl BackendTask for AugmentBench {
    type Output = Result<BenchResult>;

    fn run<B: DropnasAutodiffBackend>(self, device: B::Device) -> Result<BenchResult> {
        let a = self.0;
        let times = dropnas_train::augment::bench::bench_augment::<B>(
            self.1,
            a.torch_compat,
            a.layers,
            a.init_channels,
            a.batch_size,
            a.steps,
            a.warmup,
            device,
        )
        .map_err(UserError::new)?;
        let (median_s, min_s, max_s) = summarize(times);
        Ok(BenchResult { median_s, min_s, max_s, peak_rss_mib: peak_rss_mib(), steps: a.steps })
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct SearchBenchArgs {
    /// Cells of the supernet
    #[arg(long, default_value_t = 8)]
    pub layers: usize,
    /// Channels of the first cell
    #[arg(long, default_value_t = 16)]
    pub init_channels: usize,
    /// Images per step
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Timed steps
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Untimed steps first
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Side of the random square input images
    #[arg(long, default_value_t = 32)]
    pub input_size: usize,
    /// Drop rate r of both op groups
    #[arg(long, default_value_t = 3e-5)]
    pub drop_rate: f64,
    /// original, 1-skip or 3-skip
    #[arg(long, default_value_t = dropnas_core::search_space::SpaceName::Original)]
    pub search_space: dropnas_core::search_space::SpaceName,
    /// cpu, cuda[:N] or wgpu[:N] [default: BURN_DEVICE, else the best compiled in]
    #[arg(long)]
    pub device: Option<String>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
    /// PyTorch semantics: 1.0 (as the published runs) or modern
    #[arg(long, default_value_t = TorchCompat::V1_0)]
    pub torch_compat: TorchCompat,
}

struct SearchBench(SearchBenchArgs);

impl BackendTask for SearchBench {
    type Output = Result<BenchResult>;

    fn run<B: DropnasAutodiffBackend>(self, device: B::Device) -> Result<BenchResult> {
        let a = self.0;
        let cfg = BenchConfig {
            layers: a.layers,
            init_channels: a.init_channels,
            batch_size: a.batch_size,
            input_size: a.input_size,
            input_channels: 3,
            n_classes: 10,
            steps: a.steps,
            warmup: a.warmup,
            drop_rate: a.drop_rate,
            search_space: a.search_space,
            torch_compat: a.torch_compat,
        };
        bench_search::<B>(&cfg, device).map_err(|e| UserError::new(e).into())
    }
}

fn print(result: &BenchResult, json: bool, what: &str, spec: &DeviceSpec) {
    if json {
        println!("{}", serde_json::to_string(result).expect("JSON"));
    } else {
        println!(
            "{what} on {}: median {:.4} s/step (min {:.4}, max {:.4}) over {} steps, peak RSS {:.0} MiB",
            spec.describe(),
            result.median_s,
            result.min_s,
            result.max_s,
            result.steps,
            result.peak_rss_mib
        );
    }
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Search(a) => {
            let spec = DeviceSpec::resolve(a.device.as_deref())?;
            let json = a.json;
            let what =
                format!("search step (layers {}, channels {}, batch {})", a.layers, a.init_channels, a.batch_size);
            let r = dispatch(&spec, SearchBench(a))?;
            print(&r, json, &what, &spec);
        }
        BenchCommand::Augment(a) => {
            let spec = DeviceSpec::resolve(a.device.as_deref())?;
            let genotype = crate::genotype_arg::resolve_genotype(&a.genotype)?;
            let json = a.json;
            let what =
                format!("augment step (layers {}, channels {}, batch {})", a.layers, a.init_channels, a.batch_size);
            let r = dispatch(&spec, AugmentBench(a, genotype))?;
            print(&r, json, &what, &spec);
        }
    }
    Ok(())
}
