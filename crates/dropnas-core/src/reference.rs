//! Agreement with the independent PyTorch reference (`tools/reference`, fixtures in
//! `tools/fixtures`): every op forward and backward, a whole search network forward and
//! backward under dropout masks, a whole augment network (train with drop path and auxiliary
//! head, and eval), DARTS' ImageNet network (train and eval at 224x224), and parameter and
//! operation counts.
//!
//! The checks are generic over the backend: the tests run them on the CPU, on the GPU backends
//! compiled in, and `dropnas selftest` runs them on any device. They panic on a mismatch.
//! Where the PyTorch version matters (the augment network's in-place ReLU), they take the
//! setting and compare with that setting's fixture.

use crate::alphas::CellType;
use crate::augment_network::AugmentNetworkConfig;
use crate::compat::TorchCompat;
use crate::drop_path::{FixedDropPath, NoDropPath};
use crate::dropout::{CellMask, StepMasks};
use crate::genotype::named::named;
use crate::init::ParamInit;
use crate::kernels::DropnasAutodiffBackend;
use crate::ops::{FactorizedReduce, Op, StdConv};
#[cfg(test)]
use crate::params::count_params;
use crate::search_network::SearchNetworkConfig;
use crate::search_space::{OpKind, SearchSpace};
use crate::testkit::{Fixture, assert_close, for_compat, grads_by_path, values_by_path};
#[cfg(test)]
use burn::backend::{Autodiff, Flex};
use burn::module::{AutodiffModule, Module};
use burn::tensor::{Tensor, TensorData};

/// The CPU backend: agreement to 1e-5 relative. GPU backends are held to 1e-4 (see the bottom).
#[cfg(test)]
type Cpu = Autodiff<Flex>;
#[cfg(test)]
const CPU_RTOL: f64 = 1e-5;

fn vec_of<const D: usize>(t: Tensor<impl burn::tensor::backend::Backend, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

/// Runs one op case of ops.safetensors: forward, backward of sum(out * gout), running stats.
fn check_op_case<B: DropnasAutodiffBackend, M: Module<B>>(
    fx: &Fixture,
    case: &str,
    module: M,
    forward: impl Fn(&M, Tensor<B, 4>) -> Tensor<B, 4>,
    device: &B::Device,
    rtol: f64,
) {
    let (device, rtol, atol) = (device.clone(), rtol, rtol / 10.0);
    let (module, missing) = fx.load_into(module, &format!("{case}.param."));
    assert!(missing.is_empty(), "{case}: parameters missing from the fixture: {missing:?}");
    let x: Tensor<B, 4> = fx.tensor::<B, 4>(&format!("{case}.input"), &device).require_grad();
    let out = forward(&module, x.clone());
    assert_close(&format!("{case}.output"), &vec_of(out.clone()), fx.data(&format!("{case}.output")), rtol, atol);
    let gout: Tensor<B, 4> = fx.tensor(&format!("{case}.gout"), &device);
    let grads = (out * gout).sum().backward();
    if fx.has(&format!("{case}.grad_input")) {
        // `none` does not depend on its input: no gradient at all, which is a zero gradient
        let gx = x.grad(&grads).map(vec_of).unwrap_or_else(|| vec![0.0; x.shape().num_elements()]);
        assert_close(&format!("{case}.grad_input"), &gx, fx.data(&format!("{case}.grad_input")), rtol, atol);
    }
    let by_path = grads_by_path(&module, &grads);
    let prefix = format!("{case}.grad.");
    let mut checked = 0;
    for key in fx.keys_with(&prefix) {
        let key = &key;
        let path = &key[prefix.len()..];
        let g = by_path.get(path).unwrap_or_else(|| panic!("{case}: no gradient for {path}"));
        assert_close(key, g, fx.data(key), rtol, atol);
        checked += 1;
    }
    assert_eq!(checked, by_path.len(), "{case}: gradient count");
    let values = values_by_path(&module);
    let prefix = format!("{case}.after.");
    for key in fx.keys_with(&prefix) {
        assert_close(&key, &values[&key[prefix.len()..]], fx.data(&key), rtol, atol);
    }
}

#[test]
fn every_op_matches_pytorch_forward_and_backward() {
    every_op::<Cpu>(&Default::default(), CPU_RTOL);
}

pub fn every_op<B: DropnasAutodiffBackend>(device: &B::Device, rtol: f64) {
    let fx = Fixture::load("ops");
    // every parameter and buffer comes from the fixture: the initial draws do not matter
    let mut init = ParamInit::<B>::new(0, TorchCompat::default(), device);
    let mut cases = 0;
    for (kind, name, _) in OpKind::ALL {
        for stride in [1, 2] {
            let case = format!("{name}.s{stride}");
            assert!(fx.has(&format!("{case}.output")), "fixture lacks {case}");
            let op = Op::<B>::new(kind, 4, stride, true, &mut init);
            check_op_case(&fx, &case, op, |m, x| m.forward(x), device, rtol);
            cases += 1;
        }
    }
    let std_conv = StdConv::<B>::new(4, 6, true, &mut init);
    check_op_case(&fx, "std_conv_4_6.s1", std_conv, |m, x| m.forward(x), device, rtol);
    let reduce = FactorizedReduce::<B>::new(4, 6, true, &mut init);
    check_op_case(&fx, "factorized_reduce_4_6.s2", reduce, |m, x| m.forward(x), device, rtol);
    assert_eq!(cases, 20);
    fx.assert_every_key_used();
}

fn masks_of(fx: &Fixture, prefix: &str) -> StepMasks {
    let cell = |t: &str| CellMask {
        keep: (0..4)
            .flat_map(|i| {
                let d = fx.data(&format!("{prefix}mask.{t}.{i}"));
                d.chunks(8).map(|r| r.iter().map(|&v| v > 0.5).collect::<Vec<bool>>()).collect::<Vec<_>>()
            })
            .collect(),
    };
    StepMasks { normal: cell("normal"), reduce: cell("reduce") }
}

#[test]
fn search_network_matches_pytorch_under_masks() {
    search_network::<Cpu>(&Default::default(), CPU_RTOL);
}

pub fn search_network<B: DropnasAutodiffBackend>(device: &B::Device, rtol: f64) {
    let (device, atol) = (device.clone(), rtol / 10.0);
    let mut fx = Fixture::load("search_network");
    fx.add_file("search_network.grad.safetensors");
    let cfg = SearchNetworkConfig::new(3, 2, 10, 3, SearchSpace::named("original").unwrap());
    let model = cfg.init::<B>(&mut ParamInit::new(0, TorchCompat::default(), &device));
    let (net, missing) = fx.load_into(model.net, "param.");
    // search-cell BN running stats are not stored (PyTorch's defaults, as ours)
    assert!(missing.iter().all(|m| m.contains("running_")), "missing: {missing:?}");
    let (alphas, missing) = fx.load_into(model.alphas, "alpha.");
    assert!(missing.is_empty());
    let model = crate::search_network::Supernet { net, alphas };
    let masks = masks_of(&fx, "");
    assert!(masks.normal.keep.iter().chain(&masks.reduce.keep).any(|r| r.contains(&false)), "fixture drops ops");

    for (cell, mask) in [(CellType::Normal, &masks.normal), (CellType::Reduce, &masks.reduce)] {
        for (i, w) in model.mixing_weights(cell, mask).into_iter().enumerate() {
            let key = format!("weights.{}.{i}", cell.name());
            assert_close(&key, &vec_of(w), fx.data(&key), rtol, atol / 10.0);
        }
    }
    let x: Tensor<B, 4> = fx.tensor("input", &device);
    let logits = model.forward(x, &masks);
    assert_close("output", &vec_of(logits.clone()), fx.data("output"), rtol, atol);
    let labels: Vec<i64> = fx.data("labels").iter().map(|&v| v as i64).collect();
    let y = Tensor::<B, 1, burn::tensor::Int>::from_data(TensorData::new(labels, [2]), &device);
    let loss = burn::nn::loss::CrossEntropyLossConfig::new().init(&device).forward(logits, y);
    assert_close("loss", &vec_of(loss.clone()), fx.data("loss"), rtol, atol);
    let grads = loss.backward();
    let by_path = grads_by_path(&model.net, &grads);
    let mut checked = 0;
    for key in fx.keys_with("grad.").iter().filter(|k| !k.starts_with("grad.alpha.")) {
        let g = by_path.get(&key[5..]).unwrap_or_else(|| panic!("no gradient for {key}"));
        assert_close(key, g, fx.data(key), rtol, atol);
        checked += 1;
    }
    // dropped ops were not evaluated: exactly the reference's parameters without a gradient
    let without: Vec<String> =
        fx.config["params_without_grad"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    for p in &without {
        assert!(!by_path.contains_key(p), "{p} got a gradient but its op was dropped");
    }
    assert_eq!(checked, by_path.len());
    let alpha_grads = grads_by_path(&model.alphas, &grads);
    for t in ["normal", "reduce"] {
        for i in 0..4 {
            let key = format!("grad.alpha.{t}.{i}");
            assert_close(&key, &alpha_grads[&format!("{t}.{i}")], fx.data(&key), rtol, atol / 10.0);
        }
    }
    fx.assert_every_key_used();
}

#[test]
fn augment_network_matches_pytorch_train_and_eval() {
    let fx = Fixture::load("augment_network");
    for compat in TorchCompat::ALL {
        augment_network_with::<Cpu>(&fx, &Default::default(), CPU_RTOL, compat);
    }
    fx.assert_every_key_used();
}

/// The 3-cell augment network, whose auxiliary head reads the last cell: under PyTorch 1.0 the
/// head's in-place ReLU reaches the final pooling (`output`), under `modern` not
/// (`output.modern`).
pub fn augment_network<B: DropnasAutodiffBackend>(device: &B::Device, rtol: f64, compat: TorchCompat) {
    augment_network_with::<B>(&Fixture::load("augment_network"), device, rtol, compat);
}

/// [`augment_network`] on a loaded fixture (its gradients, stored for PyTorch 1.0: under 1.0).
pub fn augment_network_with<B: DropnasAutodiffBackend>(
    fx: &Fixture,
    device: &B::Device,
    rtol: f64,
    compat: TorchCompat,
) {
    let (device, atol) = (device.clone(), rtol / 10.0);
    let cfg = AugmentNetworkConfig::new(32, 3, 4, 10, 3, true, named("dropnas-cifar10").unwrap());
    let net = cfg.init::<B>(&mut ParamInit::new(0, compat, &device));
    let (net, missing) = fx.load_into(net, "param.");
    assert_eq!(missing, vec!["param.aux_head.conv2.weight".to_string()]);
    let net = with_generated_aux_weight(net);
    let x: Tensor<B, 4> = fx.tensor("input", &device);

    // eval first (running statistics, no drop path, no auxiliary output), from the same state
    let (eval, aux) = net.valid().forward(x.clone().inner(), &mut NoDropPath, false);
    assert!(aux.is_none());
    assert_close("eval_output", &vec_of(eval), fx.data("eval_output"), rtol, atol);

    let n_masks = fx.config["n_droppath_masks"].as_u64().unwrap() as usize;
    let masks = (0..n_masks).map(|k| fx.data(&format!("droppath.{k}")).to_vec()).collect();
    let mut drop = FixedDropPath(masks);
    let (out, aux) = net.forward(x, &mut drop, true);
    assert!(drop.0.is_empty(), "every drop-path mask was used, in order");
    let key = for_compat("output", compat);
    assert_close(&format!("{compat}: {key}"), &vec_of(out.clone()), fx.data(&key), rtol, atol);
    let aux = aux.expect("aux logits");
    assert_close("aux_output", &vec_of(aux.clone()), fx.data("aux_output"), rtol, atol);
    let values = values_by_path(&net);
    let after = fx.keys_with("after.");
    for key in &after {
        assert_close(key, &values[&key[6..]], fx.data(key), rtol, atol);
    }
    assert_eq!(after.len(), AUGMENT_BN_BUFFERS, "running statistics stored");
    if compat == TorchCompat::V1_0 {
        augment_network_gradients(fx, &net, rtol);
    }
}

/// The fixture's 3-cell augment network: its BatchNorm layers' running means and variances.
const AUGMENT_BN_BUFFERS: usize = 82;

/// The gradients of `CE + 0.4 CE_aux` for every parameter of the augment network, the auxiliary
/// head's 128->768 convolution whole (rebuilt from the reference's two factors).
fn augment_network_gradients<B: DropnasAutodiffBackend>(fx: &Fixture, net: &crate::AugmentNetwork<B>, rtol: f64) {
    let x: Tensor<B, 4> = fx.tensor("grad_input", &net.linear.weight.device());
    let device = x.device();
    let n_masks = fx.config["n_droppath_masks"].as_u64().unwrap() as usize;
    let masks = (0..n_masks).map(|k| fx.data(&format!("grad_droppath.{k}")).to_vec()).collect();
    let mut drop = FixedDropPath(masks);
    // running statistics do not enter a train-mode forward: the network after the first one will do
    let (out, aux) = net.forward(x, &mut drop, true);
    assert!(drop.0.is_empty(), "every drop-path mask was used");
    let aux = aux.expect("aux logits");
    let labels: Vec<i64> = fx.data("labels").iter().map(|&v| v as i64).collect();
    let y = Tensor::<B, 1, burn::tensor::Int>::from_data(TensorData::new(labels.clone(), [labels.len()]), &device);
    let ce = burn::nn::loss::CrossEntropyLossConfig::new().init(&device);
    let loss = ce.forward(out, y.clone()) + ce.forward(aux, y).mul_scalar(0.4);
    assert_close("loss", &vec_of(loss.clone()), fx.data("loss"), rtol, rtol / 10.0);
    let by_path = grads_by_path(net, &loss.backward());
    let keys = fx.keys_with("grad.");
    for key in &keys {
        let g = by_path.get(&key[5..]).unwrap_or_else(|| panic!("no gradient for {key}"));
        assert_close(key, g, fx.data(key), rtol, rtol / 10.0);
    }
    // every parameter has a gradient: the stored ones and the generated weight
    assert_eq!(keys.len() + 1, by_path.len(), "gradients compared");
    let path = "aux_head.conv2.weight";
    let input = fx.data(&format!("grad_factor.input.{path}"));
    let gout = fx.data(&format!("grad_factor.gout.{path}"));
    let (n, outs) = (labels.len(), gout.len() / labels.len());
    let per_out = input.len() / n;
    let want: Vec<f32> = (0..outs * per_out)
        .map(|j| {
            let (o, i) = (j / per_out, j % per_out);
            (0..n).map(|b| gout[b * outs + o] as f64 * input[b * per_out + i] as f64).sum::<f64>() as f32
        })
        .collect();
    let got = by_path.get(path).expect("a gradient for the generated weight");
    assert_eq!(got.len(), 768 * 128 * 4, "{path}: the whole tensor");
    assert_close(&format!("grad.{path}"), got, &want, rtol, rtol / 10.0);
}

/// The forward half of the ImageNet fixture (its owner, with the loss and the gradients, is
/// `dropnas_train::reference::imagenet_loss_and_gradients_match_pytorch`).
#[test]
fn imagenet_network_matches_pytorch_train_and_eval() {
    let fx = Fixture::load("augment_network_imagenet");
    for compat in TorchCompat::ALL {
        augment_network_imagenet_with::<Cpu>(&fx, &Default::default(), CPU_RTOL, compat);
    }
}

/// The generated tensors of the ImageNet fixture: `f32((f64((i*7919 + 13) % 2003) - 1001) / 1001 *
/// scale)` over the flat index (`tools/reference/make_fixtures.py`).
pub fn generated_pattern(n: usize, scale: f64) -> Vec<f32> {
    (0..n).map(|i| ((((i * 7919 + 13) % 2003) as f64 - 1001.0) / 1001.0 * scale) as f32).collect()
}

/// The ImageNet fixture's network (C = 4, 3 cells, auxiliary head, DARTS V2) with its initial
/// state, and its generated 224x224 input; its forward follows PyTorch `compat`.
pub fn imagenet_fixture_network<B: DropnasAutodiffBackend>(
    fx: &Fixture,
    device: &B::Device,
    compat: TorchCompat,
) -> (crate::AugmentNetwork<B>, Tensor<B, 4>) {
    let cfg = AugmentNetworkConfig::new(224, 3, 4, 10, 3, true, named("darts-v2").unwrap())
        .with_network(crate::NetworkKind::Imagenet);
    cfg.validate().expect("the fixture's shape is valid");
    let (net, missing) = fx.load_into(cfg.init::<B>(&mut ParamInit::new(0, compat, device)), "param.");
    assert_eq!(missing, vec!["param.aux_head.conv2.weight".to_string()]);
    let shape = [2, 3, 224, 224];
    let x = Tensor::from_data(TensorData::new(generated_pattern(shape.iter().product(), 1.0), shape), device);
    (with_generated_aux_weight(net), x)
}

pub fn augment_network_imagenet<B: DropnasAutodiffBackend>(device: &B::Device, rtol: f64, compat: TorchCompat) {
    augment_network_imagenet_with::<B>(&Fixture::load("augment_network_imagenet"), device, rtol, compat);
}

/// [`augment_network_imagenet`] on a loaded fixture.
pub fn augment_network_imagenet_with<B: DropnasAutodiffBackend>(
    fx: &Fixture,
    device: &B::Device,
    rtol: f64,
    compat: TorchCompat,
) {
    let atol = rtol / 10.0;
    let (net, x) = imagenet_fixture_network::<B>(fx, device, compat);
    let (eval, aux) = net.valid().forward(x.clone().inner(), &mut NoDropPath, false);
    assert!(aux.is_none());
    assert_close("eval_output", &vec_of(eval), fx.data("eval_output"), rtol, atol);
    let (out, aux) = net.forward(x, &mut NoDropPath, true);
    // the head reads the last of the 3 cells: PyTorch 1.0's in-place ReLU reaches the output
    let key = for_compat("output", compat);
    assert_close(&format!("{compat}: {key}"), &vec_of(out), fx.data(&key), rtol, atol);
    assert_close("aux_output", &vec_of(aux.expect("aux logits")), fx.data("aux_output"), rtol, atol);
    let values = values_by_path(&net);
    let after = fx.keys_with("after.");
    for key in &after {
        assert_close(key, &values[&key[6..]], fx.data(key), rtol, atol);
    }
    assert_eq!(after.len(), IMAGENET_BN_BUFFERS, "running statistics stored");
}

/// The ImageNet fixture network's BatchNorm running means and variances.
const IMAGENET_BN_BUFFERS: usize = 62;

/// `aux_head.conv2.weight` is too large for a fixture; the reference generates it.
pub fn with_generated_aux_weight<Bk: burn::tensor::backend::Backend>(
    mut net: crate::AugmentNetwork<Bk>,
) -> crate::AugmentNetwork<Bk> {
    let head = net.aux_head.as_mut().expect("aux head");
    let shape = head.conv2.weight.dims();
    let n: usize = shape.iter().product();
    let data = generated_pattern(n, 0.04);
    let device = head.conv2.weight.device();
    head.conv2.weight = head.conv2.weight.clone().map(|t| {
        let v = Tensor::from_data(TensorData::new(data, shape), &device);
        if t.is_require_grad() { v.require_grad() } else { v }
    });
    net
}

#[cfg(test)]
#[test]
fn parameter_counts_equal_pytorch() {
    let text = std::fs::read_to_string(crate::testkit::fixtures_dir().join("param_counts.json")).unwrap();
    let counts: serde_json::Value = serde_json::from_str(&text).unwrap();
    let device = Default::default();
    let num = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}")) as usize;
    let search = counts["search"].as_array().unwrap();
    for e in search {
        let space = SearchSpace::named(e["space"].as_str().unwrap()).unwrap();
        let cfg = SearchNetworkConfig::new(
            num(e, "input_channels"),
            num(e, "init_channels"),
            num(e, "n_classes"),
            num(e, "layers"),
            space,
        );
        let model = cfg.init::<Flex>(&mut ParamInit::new(0, TorchCompat::default(), &device));
        assert_eq!(count_params(&model.net), num(e, "weights"), "{e}");
        assert_eq!(count_params(&model.alphas), num(e, "alphas"), "{e}");
        let side = num(e, "input_size");
        let cost = crate::flops::search_network_cost(&model.net, [num(e, "input_channels"), side, side]).unwrap();
        assert_eq!(cost.macs, num(e, "macs") as u64, "{e}");
        assert_eq!(cost.elementwise, num(e, "elementwise") as u64, "{e}");
    }
    let augment = counts["augment"].as_array().unwrap();
    let imagenet = counts["imagenet"].as_array().unwrap();
    for (e, network) in augment
        .iter()
        .map(|e| (e, crate::NetworkKind::Cifar))
        .chain(imagenet.iter().map(|e| (e, crate::NetworkKind::Imagenet)))
    {
        let genotype = named(e["genotype"].as_str().unwrap()).unwrap();
        let cfg = AugmentNetworkConfig::new(
            num(e, "input_size"),
            num(e, "input_channels"),
            num(e, "init_channels"),
            num(e, "n_classes"),
            num(e, "layers"),
            true,
            genotype,
        )
        .with_network(network);
        cfg.validate().unwrap();
        let net = cfg.init::<Flex>(&mut ParamInit::new(0, TorchCompat::default(), &device));
        let infos = crate::params::param_infos::<Flex, _>(&net);
        let with: usize = infos.iter().filter(|p| !p.is_running_stat).map(|p| p.numel()).sum();
        let without: usize =
            infos.iter().filter(|p| !p.is_running_stat && !p.path.starts_with("aux_head")).map(|p| p.numel()).sum();
        assert_eq!(with, num(e, "with_aux"), "{e}");
        assert_eq!(without, num(e, "without_aux"), "{e}");
        let side = num(e, "input_size");
        let cost = crate::flops::augment_network_cost(&net, [num(e, "input_channels"), side, side]).unwrap();
        assert_eq!(cost.network.macs, num(e, "macs") as u64, "{e}");
        assert_eq!(cost.network.elementwise, num(e, "elementwise") as u64, "{e}");
        assert_eq!(cost.aux_head.macs, num(e, "aux_macs") as u64, "{e}");
        assert_eq!(cost.aux_head.elementwise, num(e, "aux_elementwise") as u64, "{e}");
    }
    // (L=8, 14) x 10 classes for the supernet; darts-v2 and dropnas-cifar10 x (10, 100) classes;
    // DARTS V2, DropNAS, PC-DARTS and P-DARTS cells in the ImageNet network
    assert!(search.len() >= 2 && augment.len() >= 4 && imagenet.len() >= 4);
    // DARTS V2 in the mobile setting: the DARTS paper's 4.7M parameters.
    let darts = &imagenet[0];
    assert_eq!((darts["genotype"].as_str(), num(darts, "n_classes")), (Some("darts-v2"), 1000));
    assert_eq!((num(darts, "without_aux") as f64 / 1e5).round(), 47.0);
}

/// The same comparisons on every GPU backend compiled in, held to 1e-4 relative: the CPU and the
/// GPU then agree with the reference, and so with each other.
#[cfg(all(test, any(feature = "wgpu", feature = "cuda")))]
mod gpu {
    use super::*;

    const GPU_RTOL: f64 = 1e-4;

    #[cfg(feature = "wgpu")]
    type Wgpu = Autodiff<burn::backend::Wgpu>;

    #[cfg(feature = "wgpu")]
    #[test]
    fn wgpu_matches_pytorch() {
        let device = burn::backend::wgpu::WgpuDevice::default();
        every_op::<Wgpu>(&device, GPU_RTOL);
        search_network::<Wgpu>(&device, GPU_RTOL);
        for compat in TorchCompat::ALL {
            augment_network::<Wgpu>(&device, GPU_RTOL, compat);
            augment_network_imagenet::<Wgpu>(&device, GPU_RTOL, compat);
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_matches_pytorch() {
        type Cuda = Autodiff<burn::backend::Cuda>;
        let device = burn::backend::cuda::CudaDevice::new(0);
        every_op::<Cuda>(&device, GPU_RTOL);
        search_network::<Cuda>(&device, GPU_RTOL);
        for compat in TorchCompat::ALL {
            augment_network::<Cuda>(&device, GPU_RTOL, compat);
            augment_network_imagenet::<Cuda>(&device, GPU_RTOL, compat);
        }
    }
}
