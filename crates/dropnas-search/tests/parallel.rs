//! Data-parallel DropNAS steps (2 peers on the CPU backend, burn-collective between threads)
//! against single-device references: the combined gradient of an uneven split, one whole step,
//! and whole runs through the run engine whose peers must stay bit-identical.

mod common;

use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Int, Tensor, TensorData};
use burn_collective::CollectiveConfig;
use dropnas_core::dropout::{CellMask, StepMasks};
use dropnas_core::testkit::values_by_path;
use dropnas_core::{ParamInit, TorchCompat};
use dropnas_core::{SearchNetworkConfig, SearchSpace, Supernet};
use dropnas_data::DatasetKind;
use dropnas_search::step::{DropNasOptimizers, StepConfig, StepSchedule, dropnas_step};
use dropnas_search::{SearchConfig, SearchSettings, SearchTask};
use dropnas_train::parallel::collective::{CollectiveLink, Place};
use dropnas_train::parallel::flat::GradPart;
use dropnas_train::parallel::peers::{Parallel, one_group};
use dropnas_train::parallel::topology::Topology;
use dropnas_train::parallel::{AllReduce, Share};
use dropnas_train::run::config::Control;
use dropnas_train::run::{RunError, RunRequest, Start, run, run_parallel};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

type B = Autodiff<Flex>;

fn tiny() -> Supernet<B> {
    let model = SearchNetworkConfig::new(1, 4, 10, 2, SearchSpace::named("original").unwrap())
        .init::<B>(&mut ParamInit::new(0, TorchCompat::default(), &Default::default()));
    // Burn initialises parameters lazily, and each clone of an uninitialised parameter draws
    // its own values: a copy with values fixed, whose clones share them
    deep_copy(&model)
}

/// Deterministic images `[n, 1, 12, 12]` and labels, sample `i` of the set.
fn batch(from: usize, n: usize) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
    let px: Vec<f32> =
        (from * 144..(from + n) * 144).map(|i| (((i * 2654435761usize) >> 11) % 1000) as f32 / 500.0 - 1.0).collect();
    let labels: Vec<i64> = (from..from + n).map(|i| (i * 7 % 10) as i64).collect();
    let d = Default::default();
    (Tensor::from_data(TensorData::new(px, [n, 1, 12, 12]), &d), Tensor::from_data(TensorData::new(labels, [n]), &d))
}

/// Some ops of every edge dropped (never all of an edge's).
fn masks() -> StepMasks {
    let cell = |shift: usize| CellMask {
        keep: (0..14).map(|e| (0..8).map(|o| !(e + o + shift).is_multiple_of(3) || o == e % 8).collect()).collect(),
    };
    StepMasks { normal: cell(0), reduce: cell(1) }
}

/// The single-device gradients of the mean cross entropy on `(x, y)`: weights, alphas.
fn grads_of(model: &Supernet<B>, x: Tensor<B, 4>, y: Tensor<B, 1, Int>) -> [HashMap<String, Vec<f32>>; 2] {
    let logits = model.forward(x, &masks());
    let loss = CrossEntropyLossConfig::new().init(&Default::default()).forward(logits, y);
    let mut g = loss.backward();
    let w = GradientsParams::from_module(&mut g, &model.net);
    let a = GradientsParams::from_module(&mut g, &model.alphas);
    [grad_values(&model.net, &w), grad_values(&model.alphas, &a)]
}

/// Gradients by parameter path (through a module copy holding the gradients as values).
fn grad_values<M: AutodiffModule<B>>(module: &M, grads: &GradientsParams) -> HashMap<String, Vec<f32>> {
    let params = values_by_path(module);
    let mut out = HashMap::new();
    let with_grads = module.valid().map(&mut GradsAsValues { grads });
    for (path, v) in values_by_path(&with_grads) {
        if params.contains_key(&path) && v.iter().any(|x| x.is_finite()) && !v.is_empty() {
            out.insert(path, v);
        }
    }
    out
}

/// A copy of `model` that shares no tensor with it (a replica, as a peer's restored one).
fn deep_copy(model: &Supernet<B>) -> Supernet<B> {
    struct Copy;
    impl burn::module::ModuleMapper<B> for Copy {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<B, D>>,
        ) -> burn::module::Param<Tensor<B, D>> {
            let (id, v) = (param.id, param.val());
            let fresh = Tensor::<B, D>::from_data(v.into_data(), &Default::default()).require_grad();
            burn::module::Param::initialized(id, fresh)
        }
    }
    let m = model.clone();
    Supernet { net: m.net.map(&mut Copy), alphas: m.alphas.map(&mut Copy) }
}

/// Replaces every parameter that has a gradient by its gradient (NaN where none).
struct GradsAsValues<'a> {
    grads: &'a GradientsParams,
}

impl burn::module::ModuleMapper<Flex> for GradsAsValues<'_> {
    fn map_float<const D: usize>(
        &mut self,
        param: burn::module::Param<Tensor<Flex, D>>,
    ) -> burn::module::Param<Tensor<Flex, D>> {
        let id = param.id;
        let v = param.val();
        let g = self.grads.get::<Flex, D>(id).unwrap_or_else(|| v.zeros_like().add_scalar(f32::NAN));
        burn::module::Param::initialized(id, g)
    }
}

fn close(what: &str, got: &HashMap<String, Vec<f32>>, want: &HashMap<String, Vec<f32>>, rtol: f32) {
    // BatchNorm running statistics live in a state that clones of a module share: not compared
    let want: HashMap<&String, &Vec<f32>> = want.iter().filter(|(k, _)| !k.contains("running_")).collect();
    assert_eq!(got.keys().filter(|k| !k.contains("running_")).count(), want.len(), "{what}: the same parameters");
    assert!(got.len() > 2, "{what}: compared {} tensors", got.len());
    for (k, w) in want {
        let g = &got[k];
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() <= rtol * b.abs().max(1e-3), "{what} {k}: {a} vs {b}");
        }
    }
}

/// Runs `f(peer)` on two threads joined by burn-collective, returns both results.
fn two_peers<R: Send>(f: impl Fn(usize, &CollectiveLink<Flex>) -> R + Sync) -> [R; 2] {
    let _one = one_group::<Flex>();
    let config = CollectiveConfig::default().with_num_devices(2);
    std::thread::scope(|s| {
        let h: Vec<_> = (0..2)
            .map(|k| {
                let (f, config) = (&f, config.clone());
                s.spawn(move || {
                    let link = CollectiveLink::<Flex>::register(
                        k,
                        format!("peer {k}"),
                        Default::default(),
                        config,
                        Place { local_peers: 2, several_nodes: false, nodes: None },
                        Duration::from_secs(120),
                    );
                    let r = f(k, &link);
                    link.finish();
                    r
                })
            })
            .collect();
        let mut it = h.into_iter().map(|h| h.join().unwrap());
        [it.next().unwrap(), it.next().unwrap()]
    })
}

#[test]
fn an_uneven_split_sums_to_the_gradient_of_the_whole_batch_mean() {
    let model = tiny();
    // batch 9 on 2 peers: 5 and 4 samples, each sub-batch with its own BatchNorm statistics
    let [ga, gb] = [grads_of(&model, batch(0, 5).0, batch(0, 5).1), grads_of(&model, batch(5, 4).0, batch(5, 4).1)];
    let want: [HashMap<String, Vec<f32>>; 2] = std::array::from_fn(|i| {
        ga[i]
            .iter()
            .map(|(k, a)| (k.clone(), a.iter().zip(&gb[i][k]).map(|(a, b)| (5.0 * a + 4.0 * b) / 9.0).collect()))
            .collect()
    });
    let got = two_peers(|k, link| {
        let (x, y) = if k == 0 { batch(0, 5) } else { batch(5, 4) };
        let logits = model.forward(x, &masks());
        let loss = CrossEntropyLossConfig::new().init(&Default::default()).forward(logits, y);
        let mut g = loss.backward();
        let mut w = GradientsParams::from_module(&mut g, &model.net);
        let mut a = GradientsParams::from_module(&mut g, &model.alphas);
        let share =
            Share { link: link as &dyn AllReduce<Flex>, weight: if k == 0 { 5.0 / 9.0 } else { 4.0 / 9.0 }, batch: 9 };
        let counts = Tensor::<Flex, 1>::from_floats([k as f32 + 1.0], &Default::default());
        let parts: &mut [&mut dyn GradPart<B>] = &mut [&mut (&model.net, &mut w), &mut (&model.alphas, &mut a)];
        let (_, counts) = share.reduce(parts, loss.inner(), counts);
        assert_eq!(counts.into_scalar(), 3.0, "counts are summed unweighted");
        [grad_values(&model.net, &w), grad_values(&model.alphas, &a)]
    });
    for (k, g) in got.iter().enumerate() {
        close(&format!("peer {k} weights"), &g[0], &want[0], 1e-5);
        close(&format!("peer {k} alphas"), &g[1], &want[1], 1e-5);
    }
}

#[test]
fn one_step_on_two_peers_equals_the_single_device_step() {
    // Both halves of the batch hold the same 4 samples: each peer's sub-batch (and its
    // BatchNorm statistics) is then the single device's batch, and the whole batch's mean
    // gradient is the single device's gradient. The reference is the single-device step.
    let model = tiny();
    let cfg = StepConfig::default();
    let sched = StepSchedule { w_lr: 0.0375, alpha_lr: 3e-4, alpha_phase_1: true, record_alphas: false };
    let (x, y) = batch(0, 4);
    let mut opt = DropNasOptimizers::<B>::new(&cfg);
    let (reference, r) = dropnas_step(model.clone(), &mut opt, &cfg, sched, x.clone(), y.clone(), &masks(), None);
    let want = (values_by_path(&reference.net), values_by_path(&reference.alphas), r.read());

    let got = two_peers(|_, link| {
        let mut opt = DropNasOptimizers::<B>::new(&cfg);
        let share = Share { link: link as &dyn AllReduce<Flex>, weight: 0.5, batch: 8 };
        let (m, r) =
            dropnas_step(deep_copy(&model), &mut opt, &cfg, sched, x.clone(), y.clone(), &masks(), Some(&share));
        (values_by_path(&m.net), values_by_path(&m.alphas), r.read())
    });
    for (k, g) in got.iter().enumerate() {
        close(&format!("peer {k} weights after the step"), &g.0, &want.0, 1e-5);
        close(&format!("peer {k} alphas after the step"), &g.1, &want.1, 1e-5);
        let (a, b) = (g.2, want.2);
        assert!((a.loss_1 - b.loss_1).abs() < 1e-5 * b.loss_1.abs(), "loss_1 {} vs {}", a.loss_1, b.loss_1);
        assert!((a.loss_2 - b.loss_2).abs() < 1e-5 * b.loss_2.abs(), "loss_2");
        assert_eq!((a.top1, a.top5, a.batch), (b.top1, b.top5, 8), "counts over the whole batch");
    }
    assert_eq!(got[0].0, got[1].0, "the peers hold bit-identical weights");
    assert_eq!(got[0].1, got[1].1, "the peers hold bit-identical alphas");
    // the step moved the alphas (the comparison is not of the initial values)
    let before = values_by_path(&model.alphas);
    assert!(before.iter().any(|(k, v)| v != &want.1[k]));
}

fn search_request(root: &Path, name: &str, batch_size: usize, samples: usize) -> RunRequest<SearchConfig> {
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    common::write_idx(&data, samples);
    let settings = SearchSettings { layers: 2, init_channels: 4, batch_size, epochs: 1, ..SearchSettings::default() };
    let control = Control { data_dir: Some(data), no_download: true, workers: 0, ..Control::default() };
    RunRequest {
        name: name.parse().unwrap(),
        out_dir: root.join("searchs"),
        start: Start::Fresh(SearchConfig::new(DatasetKind::Mnist.into(), settings)),
        control,
        device_name: "cpu".into(),
        host_memory: false,
    }
}

fn cpu_peers(n: usize) -> Parallel<burn::tensor::Device<B>> {
    Parallel { devices: vec![Default::default(); n], names: vec!["cpu".into(); n], topology: Topology::single() }
}

#[test]
fn peers_stay_bit_identical_over_an_uneven_epoch_and_a_too_small_batch_is_refused() {
    // SAFETY of the test: the variable is read by the peer group at its start
    unsafe { std::env::set_var("DROPNAS_CHECK_PEERS", "1") };
    let root = std::env::temp_dir().join(format!("dropnas-parallel-{}", std::process::id()));
    // 27 images, batch 9: three steps split 5 + 4; every step checks the peers' states
    let o = run_parallel::<B, SearchTask<B>>(search_request(&root, "two", 9, 27), cpu_peers(2), &mut |_| {})
        .expect("the 2-peer search runs");
    assert_eq!(o.summary.steps_done, 3);
    assert_eq!(o.summary.devices.as_deref(), Some(&["cpu".to_string(), "cpu".to_string()][..]));
    assert_eq!(o.summary.nodes, Some(1));
    let share = o.summary.all_reduce_share.expect("the all-reduce time is reported");
    assert!(share > 0.0 && share < 1.0, "{share}");
    let loss = o.summary.final_train_loss.unwrap();
    assert!(loss.is_finite() && loss > 0.0);
    // the same seed on one device differs (per-peer BatchNorm statistics) but stays close
    let one = run::<B, SearchTask<B>>(search_request(&root, "one", 9, 27), Default::default(), &mut |_| {}).unwrap();
    let (a, b) = (alphas_of(&o.folder), alphas_of(&one.folder));
    assert_ne!(a, b);
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 0.05));

    let err = run_parallel::<B, SearchTask<B>>(search_request(&root, "small", 1, 8), cpu_peers(2), &mut |_| {})
        .expect_err("batch 1 on 2 peers");
    let msg = err.to_string();
    assert!(matches!(err, RunError::Config(_)) && err.is_user_error(), "{msg}");
    assert!(msg.contains("--batch-size of 1") && msg.contains("2 peers"), "{msg}");
    assert!(!root.join("searchs/small").exists(), "a refused run leaves no folder");
    let _ = std::fs::remove_dir_all(&root);
}

fn alphas_of(folder: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(folder.join("alphas.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let rows = |k: &str| -> Vec<f64> {
        last[k]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
            .collect()
    };
    [rows("normal_raw"), rows("reduce_raw")].concat()
}
