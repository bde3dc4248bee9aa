//! The DropNAS step against the independent PyTorch reference (`tools/reference`): two
//! consecutive steps with different dropout masks on a tiny supernet, compared after every
//! phase: both losses, both clipping norms, the alphas after phase 2, phase 4 and the
//! adjustment, the partial-decay selection, and every weight and BatchNorm buffer; under both
//! PyTorch settings (`search_step.*` for 1.0, `search_step.modern.*`).

use crate::step::{DropNasOptimizers, StepConfig, StepSchedule, dropnas_step};
#[cfg(test)]
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Int, Tensor, TensorData};
use dropnas_core::dropout::{CellMask, StepMasks};
use dropnas_core::params::param_infos;
use dropnas_core::testkit::{Fixture, assert_close, for_compat, values_by_path};
use dropnas_core::{ParamInit, SearchNetworkConfig, SearchSpace, Supernet, TorchCompat};
use std::collections::BTreeSet;

/// The CPU backend: agreement to 1e-5 relative; GPU backends to 1e-4 (see the bottom).
#[cfg(test)]
type Cpu = Autodiff<Flex>;

fn masks(fx: &Fixture, s: usize) -> StepMasks {
    let cell = |t: &str| CellMask {
        keep: (0..4)
            .flat_map(|i| {
                let d = fx.data(&format!("step.{s}.mask.{t}.{i}"));
                d.chunks(8).map(|r| r.iter().map(|&v| v > 0.5).collect::<Vec<bool>>()).collect::<Vec<_>>()
            })
            .collect(),
    };
    StepMasks { normal: cell("normal"), reduce: cell("reduce") }
}

fn check_alphas(fx: &Fixture, key: &str, rows: &[Vec<Vec<f32>>; 2], rtol: f64) {
    for (c, t) in ["normal", "reduce"].iter().enumerate() {
        let mut offset = 0;
        for i in 0..4 {
            let k = format!("{key}.{t}.{i}");
            let flat: Vec<f32> = rows[c][offset..offset + i + 2].iter().flatten().copied().collect();
            offset += i + 2;
            assert_close(&k, &flat, fx.data(&k), rtol, 1e-7);
        }
    }
}

#[test]
fn two_dropnas_steps_match_pytorch_phase_by_phase() {
    for compat in TorchCompat::ALL {
        two_steps::<Cpu>(&Default::default(), 1e-5, compat);
    }
}

pub fn two_steps<B: dropnas_core::DropnasAutodiffBackend>(device: &B::Device, rtol: f64, compat: TorchCompat) {
    let device = device.clone();
    let init = Fixture::load("search_network");
    let fx = Fixture::load(&for_compat("search_step", compat));
    assert_eq!(fx.config["torch_compat"], compat.to_string(), "fixture of the setting");
    let cfg = SearchNetworkConfig::new(3, 2, 10, 3, SearchSpace::named("original").unwrap());
    let model = cfg.init::<B>(&mut ParamInit::new(0, compat, &device));
    let (net, _) = init.load_into(model.net, "param.");
    let (alphas, missing) = init.load_into(model.alphas, "alpha.");
    assert!(missing.is_empty());
    let mut model = Supernet { net, alphas };
    let paths: std::collections::HashMap<_, _> =
        param_infos::<B, _>(&model.net).into_iter().map(|p| (p.id, p.path)).collect();

    let x: Tensor<B, 4> = init_or::<B>(&fx, "input", &device);
    let labels: Vec<i64> = fx.data("labels").iter().map(|&v| v as i64).collect();
    let n = labels.len();
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n]), &device);
    let step_cfg = StepConfig { torch_compat: compat, ..StepConfig::default() };
    let mut opt = DropNasOptimizers::<B>::new(&step_cfg);
    let lr = fx.config["w_optimizer"]["lr"].as_f64().unwrap_or(0.0375);
    let sched = StepSchedule { w_lr: lr, alpha_lr: 3e-4, alpha_phase_1: true, record_alphas: true };

    for s in 0..2 {
        let m = masks(&fx, s);
        let (next, report) = dropnas_step(model, &mut opt, &step_cfg, sched, x.clone(), y.clone(), &m, None);
        model = next;
        let numbers = report.read();
        let s_name = format!("{compat} step {s}");
        let expect = &fx.config["steps"][s];
        for (name, got) in [
            ("loss_1", numbers.loss_1),
            ("loss_2", numbers.loss_2),
            ("norm_1", numbers.norm_1),
            ("norm_2", numbers.norm_2),
        ] {
            let want = expect[name].as_f64().unwrap_or_else(|| fx.data(&format!("step.{s}.{name}"))[0] as f64);
            assert!((got - want).abs() <= rtol * want.abs(), "{s_name} {name}: {got} vs {want}");
        }
        check_alphas(&fx, &format!("step.{s}.alpha_p2"), report.alphas_after_phase_1.as_ref().unwrap(), rtol);
        check_alphas(&fx, &format!("step.{s}.alpha_p4"), report.alphas_after_phase_2.as_ref().unwrap(), rtol);
        check_alphas(&fx, &format!("step.{s}.alpha_p5"), report.alphas_after_adjust.as_ref().unwrap(), rtol);

        let ours: BTreeSet<String> = report.decayed().iter().map(|id| paths[id].clone()).collect();
        let theirs: BTreeSet<String> =
            expect["decay_selected"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(ours, theirs, "{s_name}: partial-decay selection");

        let values = values_by_path(&model.net);
        let prefix = format!("step.{s}.param.");
        let mut checked = 0;
        for key in fx.tensors.keys().filter(|k| k.starts_with(&prefix)) {
            let path = &key[prefix.len()..];
            assert_close(key, &values[path], fx.data(key), rtol, 1e-7);
            checked += 1;
        }
        assert!(checked > 100, "{s_name}: compared {checked} tensors");
        // the PyTorch-1.0 momentum of dropped ops is exercised by this fixture: under 1.0 weights
        // of ops dropped in step 1 move, under modern they do not
        let unmoved = expect["unmoved"].as_array().unwrap();
        if s == 1 {
            assert!(!expect["moved_without_gradient"].as_array().unwrap().is_empty());
            assert_eq!(unmoved.is_empty(), compat == TorchCompat::V1_0, "{s_name}: unmoved {unmoved:?}");
        }
    }
}

fn init_or<B: burn::tensor::backend::Backend>(fx: &Fixture, key: &str, device: &B::Device) -> Tensor<B, 4> {
    fx.tensor(key, device)
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
