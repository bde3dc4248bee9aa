//! `dropnas bench augment --devices LIST`: the augment step of `augment::bench` on data-parallel
//! peers (one thread per device, the batch split as DataParallel does, burn-collective's
//! all-reduce), timed on peer 0 with the all-reduce's share of the step.

use super::Share;
use super::collective::{CollectiveLink, Place};
use super::fingerprint::add_trained;
use super::liveness::peer_timeout;
use super::peers::one_group;
use super::split::chunk_sizes;
use crate::augment::{AugmentSettings, augment_step, sgd};
use burn::module::Module;
use burn::tensor::{Distribution, ElementConversion, Int, Tensor, TensorData};
use burn_collective::CollectiveConfig;
use dropnas_core::drop_path::RandomDropPath;
use dropnas_core::genotype::Genotype;
use dropnas_core::{AugmentNetworkConfig, DropnasAutodiffBackend};
use dropnas_core::{ParamInit, TorchCompat};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::time::Instant;

/// Seconds per step of peer 0 (after `warmup` untimed steps) and the all-reduce's share.
#[allow(clippy::too_many_arguments)]
pub fn bench_augment_peers<B: DropnasAutodiffBackend>(
    genotype: Genotype,
    compat: TorchCompat,
    layers: usize,
    channels: usize,
    batch: usize,
    steps: usize,
    warmup: usize,
    devices: Vec<B::Device>,
) -> Result<(Vec<f64>, f64), String> {
    let peers = devices.len();
    let sizes = chunk_sizes(batch, peers);
    if sizes.len() != peers {
        return Err(format!("--batch-size {batch} cannot be split over {peers} peers ({sizes:?})"));
    }
    let net_cfg = AugmentNetworkConfig::new(32, 3, channels, 10, layers, true, genotype);
    net_cfg.validate()?;
    B::seed(&devices[0], 0);
    let net = net_cfg.init::<B>(&mut ParamInit::new(0, compat, &devices[0]));
    // Burn initialises parameters lazily, per copy: fix the values before the replicas copy them
    add_trained(&net, &mut crc32fast::Hasher::new());
    let _one = one_group::<B::InnerBackend>();
    let config = CollectiveConfig::default().with_num_devices(peers);
    let results: Vec<Result<(Vec<f64>, f64), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .into_iter()
            .enumerate()
            .map(|(k, device)| {
                let (mut net, config, n) = (net.clone().fork(&device), config.clone(), sizes[k]);
                s.spawn(move || {
                    let place = Place { local_peers: peers, several_nodes: false, nodes: None };
                    let name = format!("peer {k}");
                    let link = CollectiveLink::<B::InnerBackend>::register(
                        k,
                        name,
                        device.clone(),
                        config,
                        place,
                        peer_timeout(),
                    );
                    let share = Share { link: &link, weight: n as f64 / batch as f64, batch };
                    let st = AugmentSettings::default();
                    let mut optim = sgd::<B>(&st);
                    let mut rng = ChaCha8Rng::seed_from_u64(k as u64);
                    let (mut times, mut in_reduce) = (Vec::new(), 0.0);
                    for i in 0..warmup + steps {
                        let x = Tensor::<B, 4>::random([n, 3, 32, 32], Distribution::Normal(0.0, 1.0), &device);
                        let labels: Vec<i64> = (0..n).map(|_| rng.random_range(0..10)).collect();
                        let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n]), &device);
                        let (before, t0) = (link.spent().0, Instant::now());
                        let mut drop = RandomDropPath { prob: 0.2, rng: &mut rng };
                        let (next, report) = augment_step(
                            net,
                            &mut optim,
                            x,
                            y,
                            &mut drop,
                            st.aux_weight,
                            st.grad_clip,
                            st.lr,
                            0.0,
                            Some(&share),
                        );
                        net = next;
                        let loss: f64 = report.loss.into_scalar().elem();
                        if !loss.is_finite() {
                            return Err(format!("loss became {loss} at step {i}"));
                        }
                        if i >= warmup {
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
    peer_times(results)
}

/// Peer 0's step times and the all-reduce's share of them, from every peer's (times, seconds in
/// all-reduces); the first peer error, if any.
pub fn peer_times(results: Vec<Result<(Vec<f64>, f64), String>>) -> Result<(Vec<f64>, f64), String> {
    let mut results = results.into_iter();
    let (times, in_reduce) = results.next().expect("one peer at least")?;
    for r in results {
        r?;
    }
    let total: f64 = times.iter().sum();
    Ok((times, in_reduce / total.max(1e-12)))
}
