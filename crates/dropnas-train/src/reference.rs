//! The augment step against the independent PyTorch reference: two SGD steps with the auxiliary
//! head and fixed drop-path masks, compared on losses, clipping norm, every parameter and every
//! BatchNorm buffer; under both PyTorch settings (the 3-cell network's auxiliary head reads the
//! last cell, so the original's in-place ReLU changes the result: `augment_step.*` for 1.0,
//! `augment_step.modern.*`); and the ImageNet network's label-smoothed loss and its gradients
//! (PyTorch 1.0).

use crate::augment::{AugmentSettings, augment_step, sgd};
#[cfg(test)]
use burn::backend::{Autodiff, Flex};
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use dropnas_core::drop_path::FixedDropPath;
use dropnas_core::genotype::named::named;
use dropnas_core::testkit::{Fixture, assert_close, assert_step_state, for_compat, values_by_path};
use dropnas_core::{AugmentNetworkConfig, ParamInit, TorchCompat};

/// The CPU backend: agreement to 1e-5 relative; GPU backends to 1e-4 (see the bottom).
#[cfg(test)]
type Cpu = Autodiff<Flex>;

#[test]
fn two_augment_steps_match_pytorch() {
    for compat in TorchCompat::ALL {
        two_steps::<Cpu>(&Default::default(), 1e-5, compat);
    }
}

pub fn two_steps<B: dropnas_core::DropnasAutodiffBackend>(device: &B::Device, rtol: f64, compat: TorchCompat) {
    let device = device.clone();
    let init = Fixture::load("augment_network");
    let fx = Fixture::load(&for_compat("augment_step", compat));
    assert_eq!(fx.config["torch_compat"], compat.to_string(), "fixture of the setting");
    let genotype = named("dropnas-cifar10").unwrap();
    let net_cfg = AugmentNetworkConfig::new(32, 3, 4, 10, 3, true, genotype.clone());
    let net = net_cfg.init::<B>(&mut ParamInit::new(0, compat, &device));
    let (net, missing) = init.load_into(net, "param.");
    assert_eq!(missing, vec!["param.aux_head.conv2.weight".to_string()]);
    let mut net = dropnas_core::reference::with_generated_aux_weight(net);
    let n_params = fx.config["n_params"].as_u64().expect("config: n_params") as usize;
    // trainable parameters (Burn's num_params counts the BatchNorm running statistics too)
    let infos = dropnas_core::params::param_infos::<B, _>(&net);
    let trainable: usize = infos.iter().filter(|p| !p.is_running_stat).map(|p| p.numel()).sum();
    assert_eq!(trainable, n_params, "the fixture network's parameter count");
    assert_eq!(infos.iter().filter(|p| !p.is_running_stat).count(), AUGMENT_PARAMS, "parameter tensors");
    assert_eq!(infos.len(), AUGMENT_STATE, "parameter and buffer tensors");
    let initial_aux = values_by_path(&net)["aux_head.conv2.weight"].clone();
    let settings = AugmentSettings::default();
    let optimizer = &fx.config["optimizer"];
    for (name, ours) in [("lr", settings.lr), ("momentum", settings.momentum), ("weight_decay", settings.weight_decay)]
    {
        let want = optimizer[name].as_f64().unwrap_or_else(|| panic!("config: optimizer.{name}"));
        assert_eq!(ours, want, "the fixture's optimizer {name}");
    }
    let mut optim = sgd::<B>(&settings);
    let x: Tensor<B, 4> = fx.tensor("input", &device);
    let labels: Vec<i64> = fx.data("labels").iter().map(|&v| v as i64).collect();
    let n = labels.len();
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n]), &device);
    // the state before each step, ours and the reference's (the reference stores the parameters
    // after step 0, not the BatchNorm buffers: for those its "before" is ours)
    let mut before = values_by_path(&net);
    let mut ref_before: std::collections::HashMap<String, Vec<f32>> = before
        .keys()
        .map(|path| {
            let key = format!("param.{path}");
            (path.clone(), init.get(&key).map(<[f32]>::to_vec).unwrap_or_else(|| before[path].clone()))
        })
        .collect();
    let n_masks = fx.config["n_droppath_masks"].as_u64().expect("config: n_droppath_masks") as usize;
    for s in 0..2 {
        let masks = (0..n_masks).map(|k| fx.data(&format!("step.{s}.droppath.{k}")).to_vec()).collect();
        assert!(!fx.has(&format!("step.{s}.droppath.{n_masks}")), "step {s}: more masks than n_droppath_masks");
        let mut drop = FixedDropPath(masks);
        let (next, report) =
            augment_step(net, &mut optim, x.clone(), y.clone(), &mut drop, 0.4, 3.0, settings.lr, 0.0, None);
        net = next;
        assert!(drop.0.is_empty(), "step {s}: every drop-path mask used");
        let scalar = |t: Tensor<B::InnerBackend, 1>| t.into_scalar().elem::<f64>();
        for (name, got) in [
            ("loss", scalar(report.loss)),
            ("ce", scalar(report.ce)),
            ("ce_aux", scalar(report.ce_aux.unwrap())),
            ("norm", scalar(report.norm)),
        ] {
            let want = fx.data(&format!("step.{s}.{name}"))[0] as f64;
            assert!((got - want).abs() <= rtol * want.abs(), "{compat} step {s} {name}: {got} vs {want}");
        }
        let values = values_by_path(&net);
        let prefix = format!("step.{s}.param.");
        let (keys, worst_move) = assert_step_state(&fx, &prefix, &values, &before, &mut ref_before, rtol);
        eprintln!("{compat} augment step {s}: worst change error {worst_move:.3} of the tolerance");
        // every parameter after step 0; parameters and BatchNorm buffers after step 1 (the
        // generated auxiliary weight apart, checked below)
        assert_eq!(keys.len(), if s == 0 { AUGMENT_PARAMS - 1 } else { AUGMENT_STATE - 1 }, "step {s}: tensors stored");
        for (path, v) in &values {
            if !keys.iter().any(|k| &k[prefix.len()..] == path) {
                ref_before.insert(path.clone(), v.clone());
            }
        }
        // the generated weight: its first 16 output channels, and per-channel sums of the change
        let w = &values["aux_head.conv2.weight"];
        let per_out = w.len() / 768;
        assert_close(
            &format!("step.{s}.slice16"),
            &w[..16 * per_out],
            fx.data(&format!("step.{s}.slice16.aux_head.conv2.weight")),
            rtol,
            1e-7,
        );
        let delta: Vec<f32> = (0..768)
            .map(|o| {
                (0..per_out).map(|i| w[o * per_out + i] as f64 - initial_aux[o * per_out + i] as f64).sum::<f64>()
                    as f32
            })
            .collect();
        assert_close(
            &format!("step.{s}.delta_rowsum"),
            &delta,
            fx.data(&format!("step.{s}.delta_rowsum.aux_head.conv2.weight")),
            1e-4,
            1e-7,
        );
        before = values;
    }
    fx.assert_every_key_used();
}

/// The 3-cell augment network's parameter tensors, and its tensors with the BatchNorm buffers.
const AUGMENT_PARAMS: usize = 156;
const AUGMENT_STATE: usize = 238;

#[test]
fn imagenet_loss_and_gradients_match_pytorch() {
    imagenet_loss_and_gradients::<Cpu>(&Default::default(), 1e-5);
}

/// The ImageNet fixture's network trained on DARTS' ImageNet loss: label smoothing 0.1 on the
/// main and auxiliary logits, `loss = ls + 0.4 ls_aux`; the losses and the gradients of the
/// parts the ImageNet network adds (stems, first preprocessing, auxiliary head, classifier).
pub fn imagenet_loss_and_gradients<B: dropnas_core::DropnasAutodiffBackend>(device: &B::Device, rtol: f64) {
    use crate::loss::smoothed_cross_entropy;
    use dropnas_core::drop_path::NoDropPath;
    let fx = Fixture::load("augment_network_imagenet");
    // the forward half (both settings), then the loss and the gradients
    for compat in TorchCompat::ALL {
        dropnas_core::reference::augment_network_imagenet_with::<B>(&fx, device, rtol, compat);
    }
    let (net, x) = dropnas_core::reference::imagenet_fixture_network::<B>(&fx, device, TorchCompat::V1_0);
    let labels: Vec<i64> = fx.data("labels").iter().map(|&v| v as i64).collect();
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [2]), device);
    let eps = fx.config["label_smoothing"].as_f64().unwrap();
    let (logits, aux) = net.forward(x, &mut NoDropPath, true);
    let ls = smoothed_cross_entropy(logits.clone(), y.clone(), eps);
    let ls_aux = smoothed_cross_entropy(aux.expect("aux logits"), y.clone(), eps);
    let loss = ls.clone() + ls_aux.clone().mul_scalar(0.4);
    let ce = smoothed_cross_entropy(logits, y, 0.0);
    let scalar = |t: Tensor<B, 1>| t.into_scalar().elem::<f64>();
    let grads = loss.backward();
    for (name, got) in [("ls", scalar(ls)), ("ls_aux", scalar(ls_aux)), ("loss", scalar(loss)), ("ce", scalar(ce))] {
        let want = fx.data(name)[0] as f64;
        assert!((got - want).abs() <= rtol * want.abs(), "{name}: {got} vs {want}");
    }
    let by_path = dropnas_core::testkit::grads_by_path(&net, &grads);
    let keys = fx.keys_with("grad.");
    for key in &keys {
        let got = by_path.get(&key[5..]).unwrap_or_else(|| panic!("{key}: no gradient"));
        assert_close(key, got, fx.data(key), rtol, 1e-7);
    }
    // the parameters under the stored prefixes (stems, first preprocessing, auxiliary head but its
    // generated weight, classifier)
    let prefixes = ["stem0.", "stem.", "cells.0.preproc0.", "aux_head.", "linear."];
    let expected = by_path.keys().filter(|p| prefixes.iter().any(|x| p.starts_with(x))).count() - 1;
    assert_eq!(keys.len(), expected, "gradients compared");
    fx.assert_every_key_used();
}

/// DARTS V2 in the full mobile setting (14 cells x 48 channels, 1000 classes, the auxiliary
/// head) trains one step at 224x224 on a batch of 2, with DARTS' ImageNet loss.
#[test]
fn darts_v2_imagenet_trains_one_step_at_224() {
    use dropnas_core::NetworkKind;
    use dropnas_core::drop_path::NoDropPath;
    let device = Default::default();
    let genotype = named("darts-v2").unwrap();
    let net_cfg =
        AugmentNetworkConfig::new(224, 3, 48, 1000, 14, true, genotype.clone()).with_network(NetworkKind::Imagenet);
    net_cfg.validate().unwrap();
    let net = net_cfg.init::<Cpu>(&mut ParamInit::new(0, TorchCompat::V1_0, &device));
    assert_eq!((crate::augment::params_without_aux(&net) as f64 / 1e5).round(), 47.0, "DARTS' 4.7M");
    let mut cfg = crate::augment::AugmentConfig::defaults(dropnas_data::Dataset::ImageFolder, genotype);
    crate::recipe::Recipe::Imagenet.apply(&mut cfg);
    let cfg = cfg.settings;
    let mut optim = sgd::<Cpu>(&cfg);
    let x = Tensor::<Cpu, 4>::random([2, 3, 224, 224], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let y = Tensor::<Cpu, 1, Int>::from_data(TensorData::new(vec![3i64, 999], [2]), &device);
    let before = net.stem0.as_ref().unwrap().conv1.weight.val().into_data();
    let (net, report) = augment_step(
        net,
        &mut optim,
        x,
        y,
        &mut NoDropPath,
        cfg.aux_weight,
        cfg.grad_clip,
        cfg.lr,
        cfg.label_smoothing,
        None,
    );
    let loss = report.loss.into_scalar().elem::<f64>();
    let norm = report.norm.into_scalar().elem::<f64>();
    // 1000 classes at initialisation: the loss is near ln(1000) * 1.4 (main + 0.4 aux).
    assert!(loss.is_finite() && (loss - 1.4 * 1000f64.ln()).abs() < 2.0, "loss {loss}");
    assert!(norm.is_finite() && norm > 0.0, "gradient norm {norm}");
    let after = net.stem0.as_ref().unwrap().conv1.weight.val().into_data();
    assert_ne!(before, after, "the first stem convolution was trained");
}

/// The same two steps on every GPU backend compiled in, held to 1e-4 relative.
#[cfg(all(test, any(feature = "wgpu", feature = "cuda")))]
mod gpu {
    #[cfg(feature = "wgpu")]
    #[test]
    fn wgpu_steps_match_pytorch() {
        for compat in dropnas_core::TorchCompat::ALL {
            super::two_steps::<burn::backend::Autodiff<burn::backend::Wgpu>>(&Default::default(), 1e-4, compat);
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_steps_match_pytorch() {
        for compat in dropnas_core::TorchCompat::ALL {
            super::two_steps::<burn::backend::Autodiff<burn::backend::Cuda>>(
                &burn::backend::cuda::CudaDevice::new(0),
                1e-4,
                compat,
            );
        }
    }
}
