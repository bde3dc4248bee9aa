//! The augment step against the independent PyTorch reference: two SGD steps with the auxiliary
//! head and fixed drop-path masks, compared on losses, clipping norm, every parameter and every
//! BatchNorm buffer; under both PyTorch settings (the 3-cell network's auxiliary head reads the
//! last cell, so the original's in-place ReLU changes the result: `augment_step.*` for 1.0,
//! `augment_step.modern.*`); and the ImageNet network's label-smoothed loss and its gradients
//! (PyTorch 1.0).

use crate::augment::{AugmentSettings, augment_step, sgd};
#[cfg(test)]
use burn::backend::{Autodiff, Flex};
use burn::module::Module;
use burn::tensor::{ElementConversion, Int, Tensor, TensorData};
use dropnas_core::drop_path::FixedDropPath;
use dropnas_core::genotype::named::named;
use dropnas_core::testkit::{Fixture, assert_close, for_compat, values_by_path};
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
    let initial_aux = values_by_path(&net)["aux_head.conv2.weight"].clone();
    let settings = AugmentSettings::default();
    let mut optim = sgd::<B>(&settings);
    let x: Tensor<B, 4> = fx.tensor("input", &device);
    let labels: Vec<i64> = fx.data("labels").iter().map(|&v| v as i64).collect();
    let n = labels.len();
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n]), &device);
    for s in 0..2 {
        let masks =
            (0..).map_while(|k| fx.tensors.get(&format!("step.{s}.droppath.{k}")).map(|t| t.1.clone())).collect();
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
        let mut checked = 0;
        for key in fx.tensors.keys().filter(|k| k.starts_with(&prefix)) {
            assert_close(key, &values[&key[prefix.len()..]], fx.data(key), rtol, 1e-7);
            checked += 1;
        }
        assert!(checked > 50, "compared {checked}");
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
    }
    let _ = net.num_params();
}

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
    let mut checked = 0;
    for key in fx.tensors.keys().filter(|k| k.starts_with("grad.")) {
        let got = by_path.get(&key[5..]).unwrap_or_else(|| panic!("{key}: no gradient"));
        assert_close(key, got, fx.data(key), rtol, 1e-7);
        checked += 1;
    }
    assert!(checked >= 20, "gradients compared: {checked}");
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
