//! `dropnas bench`: time the training steps (median, min, max over repeated steps after
//! warm-up) and report peak memory, to compare with `tools/reference/bench_*.py`.

use crate::UserError;
use crate::device::DeviceSpec;
use crate::launch::{Launch, PeersTask, dispatch_peers};
use anyhow::Result;
use dropnas_core::{DropnasAutodiffBackend, TorchCompat};
use dropnas_search::bench::{BenchConfig, BenchResult, bench_search, bench_search_peers, peak_rss_mib, summarize};
use dropnas_train::run::config::Control;

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
    /// Data-parallel peers, one per device (e.g. cpu,cpu): also reports the all-reduce's share
    #[arg(long, conflicts_with = "device")]
    pub devices: Option<String>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
    /// PyTorch semantics: 1.0 (as the published runs) or modern
    #[arg(long, default_value_t = TorchCompat::V1_0)]
    pub torch_compat: TorchCompat,
}

struct AugmentBench(AugmentBenchArgs, dropnas_core::Genotype);

impl PeersTask for AugmentBench {
    type Output = Result<BenchResult>;

    fn run<B: DropnasAutodiffBackend>(self, devices: Vec<B::Device>) -> Result<BenchResult> {
        let a = self.0;
        let (times, share) = if devices.len() > 1 {
            let (peers, (t, s)) = (
                devices.len(),
                dropnas_train::parallel::bench::bench_augment_peers::<B>(
                    self.1,
                    a.torch_compat,
                    a.layers,
                    a.init_channels,
                    a.batch_size,
                    a.steps,
                    a.warmup,
                    devices,
                )
                .map_err(UserError::new)?,
            );
            (t, Some((peers, s)))
        } else {
            let device = devices.into_iter().next().expect("one device");
            let t = dropnas_train::augment::bench::bench_augment::<B>(
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
            (t, None)
        };
        let (median_s, min_s, max_s) = summarize(times);
        Ok(BenchResult {
            median_s,
            min_s,
            max_s,
            peak_rss_mib: peak_rss_mib(),
            steps: a.steps,
            peers: share.map(|s| s.0),
            all_reduce_share: share.map(|s| s.1),
        })
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
    /// Data-parallel peers, one per device (e.g. cpu,cpu): also reports the all-reduce's share
    #[arg(long, conflicts_with = "device")]
    pub devices: Option<String>,
    /// Print one JSON object
    #[arg(long)]
    pub json: bool,
    /// PyTorch semantics: 1.0 (as the published runs) or modern
    #[arg(long, default_value_t = TorchCompat::V1_0)]
    pub torch_compat: TorchCompat,
}

struct SearchBench(SearchBenchArgs);

impl PeersTask for SearchBench {
    type Output = Result<BenchResult>;

    fn run<B: DropnasAutodiffBackend>(self, devices: Vec<B::Device>) -> Result<BenchResult> {
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
        let r = if devices.len() > 1 {
            bench_search_peers::<B>(&cfg, devices)
        } else {
            bench_search::<B>(&cfg, devices.into_iter().next().expect("one device"))
        };
        r.map_err(|e| UserError::new(e).into())
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
        if let (Some(peers), Some(share)) = (result.peers, result.all_reduce_share) {
            println!("  {peers} data-parallel peers: all-reduce {:.1}% of the step time", 100.0 * share);
        }
    }
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Search(a) => {
            let launch = Launch::resolve(&Control {
                device: a.device.clone(),
                devices: a.devices.clone(),
                ..Control::default()
            })?;
            let json = a.json;
            let what =
                format!("search step (layers {}, channels {}, batch {})", a.layers, a.init_channels, a.batch_size);
            let spec = launch.devices[0].clone();
            let r = dispatch_peers(&launch, SearchBench(a))?;
            print(&r, json, &what, &spec);
        }
        BenchCommand::Augment(a) => {
            let control = Control { device: a.device.clone(), devices: a.devices.clone(), ..Control::default() };
            let launch = Launch::resolve(&control)?;
            let genotype = crate::genotype_arg::resolve_genotype(&a.genotype)?;
            let json = a.json;
            let what =
                format!("augment step (layers {}, channels {}, batch {})", a.layers, a.init_channels, a.batch_size);
            let spec = launch.devices[0].clone();
            let r = dispatch_peers(&launch, AugmentBench(a, genotype))?;
            print(&r, json, &what, &spec);
        }
    }
    Ok(())
}
