//! Timing of the full DropNAS step on random data: what `dropnas bench search` reports.

use crate::step::{DropNasOptimizers, StepConfig, StepSchedule, dropnas_step};
use burn::module::Module;
use burn::tensor::{Distribution, Int, Tensor, TensorData};
use burn_collective::CollectiveConfig;
use dropnas_core::DropnasAutodiffBackend;
use dropnas_core::SearchNetworkConfig;
use dropnas_core::dropout::GroupedDropout;
use dropnas_core::{ParamInit, TorchCompat};
use dropnas_train::parallel::Share;
use dropnas_train::parallel::collective::{CollectiveLink, Place};
use dropnas_train::parallel::fingerprint::add_trained;
use dropnas_train::parallel::liveness::peer_timeout;
use dropnas_train::parallel::peers::one_group;
use dropnas_train::parallel::split::chunk_sizes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub layers: usize,
    pub init_channels: usize,
    pub batch_size: usize,
    pub input_size: usize,
    pub input_channels: usize,
    pub n_classes: usize,
    pub steps: usize,
    pub warmup: usize,
    pub drop_rate: f64,
    pub search_space: dropnas_core::search_space::SpaceName,
    pub torch_compat: TorchCompat,
}

/// Seconds per step and peak memory.
#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub median_s: f64,
    pub min_s: f64,
    pub max_s: f64,
    pub peak_rss_mib: f64,
    pub steps: usize,
    /// Data-parallel peers (`--devices`): how many, and the share of the step time spent in
    /// the all-reduce (waiting for the slower peer included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all_reduce_share: Option<f64>,
}

/// Peak resident memory of this process (Linux `VmHWM`), in MiB.
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).map(str::to_string))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|k| k.parse::<f64>().ok()))
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Summary statistics of step times.
pub fn summarize(mut times: Vec<f64>) -> (f64, f64, f64) {
    times.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = times.len();
    let median = if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2.0
    };
    (median, times.first().copied().unwrap_or(f64::NAN), times.last().copied().unwrap_or(f64::NAN))
}

/// Times `steps` full DropNAS steps (after `warmup` untimed ones) on random input.
pub fn bench_search<B: DropnasAutodiffBackend>(cfg: &BenchConfig, device: B::Device) -> Result<BenchResult, String> {
    let space = cfg.search_space.space();
    B::seed(&device, 0);
    let net = SearchNetworkConfig::new(cfg.input_channels, cfg.init_channels, cfg.n_classes, cfg.layers, space.clone());
    let mut model = net.init::<B>(&mut ParamInit::new(0, cfg.torch_compat, &device));
    let step_cfg = StepConfig { torch_compat: cfg.torch_compat, ..StepConfig::default() };
    let mut opt = DropNasOptimizers::<B>::new(&step_cfg);
    let dropout = GroupedDropout { rates: vec![cfg.drop_rate; space.groups.len()] };
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let sched = StepSchedule { w_lr: 0.0375, alpha_lr: 3e-4, alpha_phase_1: true, record_alphas: false };
    let shape = [cfg.batch_size, cfg.input_channels, cfg.input_size, cfg.input_size];
    let mut times = Vec::new();
    for i in 0..cfg.warmup + cfg.steps {
        let x = Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let labels: Vec<i64> = (0..cfg.batch_size).map(|_| rng.random_range(0..cfg.n_classes as i64)).collect();
        let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [cfg.batch_size]), &device);
        let masks = dropout.sample_step(&space, net.n_nodes, &mut rng);
        let t0 = Instant::now();
        let (next, report) = dropnas_step(model, &mut opt, &step_cfg, sched, x, y, &masks, None);
        model = next;
        // reading the loss waits for the device: the step is really done
        let n = report.read();
        if !n.loss_1.is_finite() {
            return Err(format!("loss became {} at step {i}", n.loss_1));
        }
        if i >= cfg.warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let (median_s, min_s, max_s) = summarize(times);
    Ok(BenchResult {
        median_s,
        min_s,
        max_s,
        peak_rss_mib: peak_rss_mib(),
        steps: cfg.steps,
        peers: None,
        all_reduce_share: None,
    })
}

/// The same steps data-parallel over `devices` (one peer per device, each on its own thread
/// with a replica, the batch split as DataParallel does, burn-collective's all-reduce): the
/// step time of peer 0 and the all-reduce's share of it.
pub fn bench_search_peers<B: DropnasAutodiffBackend>(
    cfg: &BenchConfig,
    devices: Vec<B::Device>,
) -> Result<BenchResult, String> {
    let space = cfg.search_space.space();
    let peers = devices.len();
    let sizes = chunk_sizes(cfg.batch_size, peers);
    if sizes.len() != peers {
        return Err(format!("--batch-size {} cannot be split over {peers} peers ({sizes:?})", cfg.batch_size));
    }
    B::seed(&devices[0], 0);
    let net = SearchNetworkConfig::new(cfg.input_channels, cfg.init_channels, cfg.n_classes, cfg.layers, space.clone());
    let model = net.init::<B>(&mut ParamInit::new(0, cfg.torch_compat, &devices[0]));
    // Burn initialises parameters lazily, per copy: fix the values before the replicas copy them
    add_trained(&model.net, &mut crc32fast::Hasher::new());
    add_trained(&model.alphas, &mut crc32fast::Hasher::new());
    let _one = one_group::<B::InnerBackend>();
    let config = CollectiveConfig::default().with_num_devices(peers);
    let results: Vec<Result<(Vec<f64>, f64), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .into_iter()
            .enumerate()
            .map(|(k, device)| {
                let (model, config, space, sizes) =
                    (model.clone().fork(&device), config.clone(), space.clone(), &sizes);
                s.spawn(move || {
                    let place = Place { local_peers: peers, several_nodes: false, nodes: None };
                    let link = CollectiveLink::<B::InnerBackend>::register(
                        k,
                        format!("peer {k}"),
                        device.clone(),
                        config,
                        place,
                        peer_timeout(),
                    );
                    let share =
                        Share { link: &link, weight: sizes[k] as f64 / cfg.batch_size as f64, batch: cfg.batch_size };
                    let (mut model, step_cfg) = (model, StepConfig::default());
                    let mut opt = DropNasOptimizers::<B>::new(&step_cfg);
                    let dropout = GroupedDropout { rates: vec![cfg.drop_rate; space.groups.len()] };
                    let mut rng = ChaCha8Rng::seed_from_u64(0);
                    let sched =
                        StepSchedule { w_lr: 0.0375, alpha_lr: 3e-4, alpha_phase_1: true, record_alphas: false };
                    let shape = [sizes[k], cfg.input_channels, cfg.input_size, cfg.input_size];
                    let (mut times, mut in_reduce) = (Vec::new(), 0.0);
                    for i in 0..cfg.warmup + cfg.steps {
                        let x = Tensor::<B, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                        let labels: Vec<i64> =
                            (0..sizes[k]).map(|_| rng.random_range(0..cfg.n_classes as i64)).collect();
                        let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [sizes[k]]), &device);
                        let masks = dropout.sample_step(&space, net.n_nodes, &mut rng);
                        let (before, t0) = (link.spent().0, Instant::now());
                        let (next, report) =
                            dropnas_step(model, &mut opt, &step_cfg, sched, x, y, &masks, Some(&share));
                        model = next;
                        let n = report.read();
                        if !n.loss_1.is_finite() {
                            return Err(format!("loss became {} at step {i}", n.loss_1));
                        }
                        if i >= cfg.warmup {
                            times.push(t0.elapsed().as_secs_f64());
                            in_reduce += (link.spent().0 - before).as_secs_f64();
                        }
                    }
                    link.finish();
                    Ok((times, in_reduce))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a peer failed".into()))).collect()
    });
    let (times, share) = dropnas_train::parallel::bench::peer_times(results)?;
    let (median_s, min_s, max_s) = summarize(times);
    Ok(BenchResult {
        median_s,
        min_s,
        max_s,
        peak_rss_mib: peak_rss_mib(),
        steps: cfg.steps,
        peers: Some(peers),
        all_reduce_share: Some(share),
    })
}
