//! The augment step against the independent PyTorch reference: two SGD steps with the auxiliary
//! head and fixed drop-path masks, compared on losses, clipping norm, every parameter and every
//! BatchNorm buffer; under both PyTorch settings (the 3-cell network's auxiliary head reads the
//! last cell, so the original's in-place ReLU changes the result: `augment_step.*` for 1.0,
//! `augment_step.modern.*`).

use crate::augment::{AugmentConfig, augment_step, sgd};
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
    let cfg = AugmentConfig::new("t", "cifar10", genotype);
    let mut optim = sgd::<B>(&cfg);
    let x: Tensor<B, 4> = fx.tensor("input", &device);
    let labels: Vec<i64> = fx.data("labels").iter().map(|&v| v as i64).collect();
    let n = labels.len();
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n]), &device);
    for s in 0..2 {
        let masks =
            (0..).map_while(|k| fx.tensors.get(&format!("step.{s}.droppath.{k}")).map(|t| t.1.clone())).collect();
        let mut drop = FixedDropPath(masks);
        let (next, report) = augment_step(net, &mut optim, x.clone(), y.clone(), &mut drop, 0.4, 3.0, cfg.lr);
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
