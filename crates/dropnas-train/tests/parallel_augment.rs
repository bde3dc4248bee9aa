//! The augment step on two data-parallel peers (CPU backend, burn-collective between threads)
//! against the single-device step: both halves of the batch hold the same samples, so each
//! peer's sub-batch (and its BatchNorm statistics) is the single device's batch and the whole
//! batch's mean gradient is the single device's gradient.

use burn::backend::{Autodiff, Flex};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use burn_collective::CollectiveConfig;
use dropnas_core::drop_path::NoDropPath;
use dropnas_core::genotype::named::named;
use dropnas_core::testkit::{Fixture, values_by_path};
use dropnas_core::{AugmentNetworkConfig, ParamInit, TorchCompat};
use dropnas_train::augment::{AugmentSettings, augment_step, sgd};
use dropnas_train::parallel::collective::{CollectiveLink, Place};
use dropnas_train::parallel::peers::one_group;
use dropnas_train::parallel::{AllReduce, Share};
use std::collections::HashMap;
use std::time::Duration;

type B = Autodiff<Flex>;

/// A peer's parameters by path, and its loss, ce, ce_aux, norm and top-1 count.
type PeerResult = (HashMap<String, Vec<f32>>, [f64; 5]);

#[test]
fn one_augment_step_on_two_peers_equals_the_single_device_step() {
    let device = Default::default();
    let init = Fixture::load("augment_network");
    let fx = Fixture::load("augment_step");
    let net_cfg = AugmentNetworkConfig::new(32, 3, 4, 10, 3, true, named("dropnas-cifar10").unwrap());
    let (net, _) = init.load_into(net_cfg.init::<B>(&mut ParamInit::new(0, TorchCompat::default(), &device)), "param.");
    let net = dropnas_core::reference::with_generated_aux_weight(net);
    let settings = AugmentSettings::default();
    let x: Tensor<B, 4> = fx.tensor("input", &device);
    let labels: Vec<i64> = fx.data("labels").iter().map(|&v| v as i64).collect();
    let n = labels.len();
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n]), &device);
    let step = |share: Option<&Share<'_, Flex>>| {
        let mut optim = sgd::<B>(&settings);
        let (net, r) =
            augment_step(net.clone(), &mut optim, x.clone(), y.clone(), &mut NoDropPath, 0.4, 3.0, 0.05, 0.0, share);
        let scalar = |t: Tensor<Flex, 1>| t.into_scalar().elem::<f64>();
        let top1 = scalar(r.correct.narrow(0, 0, 1));
        let numbers = [scalar(r.loss), scalar(r.ce), scalar(r.ce_aux.unwrap()), scalar(r.norm), top1];
        (values_by_path(&net), numbers)
    };
    let (want, want_numbers) = step(None);

    let _one = one_group::<Flex>();
    let config = CollectiveConfig::default().with_num_devices(2);
    let got: Vec<PeerResult> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|k| {
                let (config, step) = (config.clone(), &step);
                s.spawn(move || {
                    let place = Place { local_peers: 2, several_nodes: false, nodes: None };
                    let timeout = Duration::from_secs(120);
                    let link = CollectiveLink::<Flex>::register(
                        k,
                        format!("peer {k}"),
                        Default::default(),
                        config,
                        place,
                        timeout,
                    );
                    let r = step(Some(&Share { link: &link as &dyn AllReduce<Flex>, weight: 0.5, batch: 2 * n }));
                    link.finish();
                    r
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let trained = |v: &HashMap<String, Vec<f32>>| -> Vec<(String, Vec<f32>)> {
        let mut t: Vec<_> =
            v.iter().filter(|(k, _)| !k.contains("running_")).map(|(k, v)| (k.clone(), v.clone())).collect();
        t.sort_by(|a, b| a.0.cmp(&b.0));
        t
    };
    let want_t = trained(&want);
    assert!(want_t.len() > 20);
    for (k, (values, numbers)) in got.iter().enumerate() {
        for ((name, g), (_, w)) in trained(values).iter().zip(&want_t) {
            for (a, b) in g.iter().zip(w) {
                assert!((a - b).abs() <= 1e-5 * b.abs().max(1e-3), "peer {k} {name}: {a} vs {b}");
            }
        }
        for (i, what) in ["loss", "ce", "ce_aux", "norm"].iter().enumerate() {
            let (a, b) = (numbers[i], want_numbers[i]);
            assert!((a - b).abs() <= 1e-5 * b.abs(), "peer {k} {what}: {a} vs {b}");
        }
        assert_eq!(numbers[4], 2.0 * want_numbers[4], "peer {k}: top-1 count of the whole batch");
    }
    assert_eq!(trained(&got[0].0), trained(&got[1].0), "the peers hold bit-identical weights");
    // the step moved the weights
    let before = values_by_path(&net);
    assert!(want_t.iter().any(|(k, v)| &before[k] != v));
}
