//! The DropNAS step against the independent PyTorch reference (`tools/reference`): two
//! consecutive steps with different dropout masks on a tiny supernet, compared after every
//! phase: both losses, both clipping norms, the alphas after phase 2, phase 4 and the
//! adjustment, the partial-decay selection, and every weight and BatchNorm buffer; under both
//! PyTorch settings (`search_step.*` for 1.0, `search_step.modern.*`).

use crate::step::{DropNasOptimizers, StepConfig, StepSchedule, dropnas_step};
#[cfg(test)]
use burn::backend::{Autodiff, Flex};
use burn::tensor::{Int, Tensor, TensorData};
use dropnas_core::alphas::CellType;
use dropnas_core::dropout::{CellMask, StepMasks};
use dropnas_core::params::param_infos;
use dropnas_core::testkit::{Fixture, assert_close, assert_step_state, for_compat, values_by_path};
use dropnas_core::{ParamInit, SearchNetworkConfig, SearchSpace, Supernet, TorchCompat};
use std::collections::BTreeSet;

/// The CPU backend: agreement to 1e-5 relative; GPU backends to 1e-4 (see the bottom).
#[cfg(test)]
type Cpu = Autodiff<Flex>;

fn masks(fx: &Fixture, s: usize, n_ops: usize) -> StepMasks {
    let cell = |t: &str| CellMask {
        keep: (0..4)
            .flat_map(|i| {
                let d = fx.data(&format!("step.{s}.mask.{t}.{i}"));
                d.chunks(n_ops).map(|r| r.iter().map(|&v| v > 0.5).collect::<Vec<bool>>()).collect::<Vec<_>>()
            })
            .collect(),
    };
    StepMasks { normal: cell("normal"), reduce: cell("reduce") }
}

fn check_alphas(fx: &Fixture, key: &str, rows: &[Vec<Vec<f32>>; 2], rtol: f64) {
    check_alphas_of(fx, "", key, rows, rtol);
}

/// [`check_alphas`], naming what is compared (`whose`) in a failure.
fn check_alphas_of(fx: &Fixture, whose: &str, key: &str, rows: &[Vec<Vec<f32>>; 2], rtol: f64) {
    for (c, t) in ["normal", "reduce"].iter().enumerate() {
        let mut offset = 0;
        for i in 0..4 {
            let k = format!("{key}.{t}.{i}");
            let flat: Vec<f32> = rows[c][offset..offset + i + 2].iter().flatten().copied().collect();
            offset += i + 2;
            assert_close(&format!("{whose}{k}"), &flat, fx.data(&k), rtol, 1e-7);
        }
    }
}

/// Per node `i`, the `i + 2` edge values of `per_edge` (a cell type's edges in order).
fn by_node(per_edge: &[f32]) -> Vec<&[f32]> {
    let mut offset = 0;
    (0..4)
        .map(|i| {
            let node = &per_edge[offset..offset + i + 2];
            offset += i + 2;
            node
        })
        .collect()
}

#[test]
fn two_dropnas_steps_match_pytorch_phase_by_phase() {
    for compat in TorchCompat::ALL {
        two_steps::<Cpu>(&Default::default(), 1e-5, compat);
    }
}

/// The weight tensors of the 3-cell, C = 2 supernet of the original space, and the tensors
/// (weights and every BatchNorm buffer) the fixture stores after the last step.
const ORIGINAL_WEIGHTS: usize = 548;
const ORIGINAL_STATE: usize = 1266;

pub fn two_steps<B: dropnas_core::DropnasAutodiffBackend>(device: &B::Device, rtol: f64, compat: TorchCompat) {
    let fx = Fixture::load(&for_compat("search_step", compat));
    let init = Fixture::load("search_network");
    steps_in_space::<B>(&fx, &init, device, rtol, compat, [ORIGINAL_WEIGHTS, ORIGINAL_STATE]);
    fx.assert_every_key_used();
}

#[test]
fn steps_in_the_skip_spaces_match_pytorch() {
    skip_spaces::<Cpu>(&Default::default(), 1e-5);
}

/// Two steps in each of the 1-skip and 3-skip spaces (PyTorch 1.0; the initial state in the same
/// fixture, the weights stored after the last step only).
pub fn skip_spaces<B: dropnas_core::DropnasAutodiffBackend>(device: &B::Device, rtol: f64) {
    // 3-skip's two extra skip connections are factorized reductions, with weights, in reduce cells
    for (space, weights) in [("1-skip", ORIGINAL_WEIGHTS), ("3-skip", 612)] {
        let fx = Fixture::load(&format!("search_step_{space}"));
        assert_eq!(fx.config["space"], space);
        steps_in_space::<B>(&fx, &fx, device, rtol, TorchCompat::V1_0, [0, weights]);
        fx.assert_every_key_used();
    }
}

/// Steps of the fixture `fx` from the initial state of the fixture `init`, in the fixture's
/// search space, compared phase by phase; `counts`: the weight tensors stored after each step
/// but the last, and the tensors stored after the last.
pub fn steps_in_space<B: dropnas_core::DropnasAutodiffBackend>(
    fx: &Fixture,
    init: &Fixture,
    device: &B::Device,
    rtol: f64,
    compat: TorchCompat,
    counts: [usize; 2],
) {
    let device = device.clone();
    assert_eq!(fx.config["torch_compat"], compat.to_string(), "fixture of the setting");
    let space_name = fx.config["space"].as_str().expect("config: space");
    let space = SearchSpace::named(space_name).expect("a known space");
    let n_ops = space.n_ops();
    let cfg = SearchNetworkConfig::new(3, 2, 10, 3, space);
    let model = cfg.init::<B>(&mut ParamInit::new(0, compat, &device));
    let (net, _) = init.load_into(model.net, "param.");
    let (alphas, missing) = init.load_into(model.alphas, "alpha.");
    assert!(missing.is_empty());
    let mut model = Supernet { net, alphas };
    let paths: std::collections::HashMap<_, _> =
        param_infos::<B, _>(&model.net).into_iter().map(|p| (p.id, p.path)).collect();

    let x: Tensor<B, 4> = fx.tensor("input", &device);
    let labels: Vec<i64> = fx.data("labels").iter().map(|&v| v as i64).collect();
    let n = labels.len();
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [n]), &device);
    let step_cfg = StepConfig { torch_compat: compat, ..StepConfig::default() };
    let mut opt = DropNasOptimizers::<B>::new(&step_cfg);
    let w_lr = fx.config["w_optimizer"]["lr"].as_f64().expect("config: w_optimizer.lr");
    let alpha_lr = fx.config["a_optimizer"]["lr"].as_f64().expect("config: a_optimizer.lr");
    let sched = StepSchedule { w_lr, alpha_lr, alpha_phase_1: true, record_alphas: true };

    // the state before each step, ours and the reference's (the reference stores the weights
    // after step 0, not the BatchNorm buffers: for those its "before" is ours)
    let mut before = values_by_path(&model.net);
    let mut ref_before: std::collections::HashMap<String, Vec<f32>> = before
        .keys()
        .map(|path| {
            let key = format!("param.{path}");
            (path.clone(), init.get(&key).map(<[f32]>::to_vec).unwrap_or_else(|| before[path].clone()))
        })
        .collect();
    let steps = fx.config["steps"].as_array().expect("config: steps").len();
    assert_eq!(steps, 2, "the fixture's steps");
    for s in 0..steps {
        let m = masks(fx, s, n_ops);
        let (next, report) = dropnas_step(model, &mut opt, &step_cfg, sched, x.clone(), y.clone(), &m, None);
        model = next;
        let numbers = report.read();
        let s_name = format!("{compat} {space_name} step {s}");
        let expect = &fx.config["steps"][s];
        for (name, got) in [
            ("loss_1", numbers.loss_1),
            ("loss_2", numbers.loss_2),
            ("norm_1", numbers.norm_1),
            ("norm_2", numbers.norm_2),
        ] {
            let want = expect[name].as_f64().unwrap_or_else(|| panic!("config: steps[{s}].{name}"));
            let stored = fx.data(&format!("step.{s}.{name}"))[0] as f64;
            assert!((stored - want).abs() <= 1e-7 * want.abs(), "{s_name} {name}: stored {stored} vs {want}");
            assert!((got - want).abs() <= rtol * want.abs(), "{s_name} {name}: {got} vs {want}");
        }
        check_alphas(fx, &format!("step.{s}.alpha_p2"), report.alphas_after_phase_1.as_ref().unwrap(), rtol);
        check_alphas(fx, &format!("step.{s}.alpha_p4"), report.alphas_after_phase_2.as_ref().unwrap(), rtol);
        check_alphas(fx, &format!("step.{s}.alpha_p5"), report.alphas_after_adjust.as_ref().unwrap(), rtol);
        // the model's own alphas after the step, not the report's copy
        let model_rows = [model.alphas.rows(CellType::Normal), model.alphas.rows(CellType::Reduce)];
        check_alphas_of(fx, "the model's alphas: ", &format!("step.{s}.alpha_p5"), &model_rows, rtol);

        // the alpha adjustment: each edge's kept share before the step and the shift k
        let adjustments = report.adjustments.as_ref().expect("recorded");
        for cell in CellType::BOTH {
            let t = cell.name();
            let adj = adjustments.iter().find(|a| a.cell == cell);
            let edges: usize = (0..4).map(|i| i + 2).sum();
            let (ratio, k) = match adj {
                Some(a) => (a.ratio.clone(), a.k.clone()),
                None => (vec![1.0; edges], vec![0.0; edges]),
            };
            for (i, (r, kk)) in by_node(&ratio).into_iter().zip(by_node(&k)).enumerate() {
                assert_close(
                    &format!("{s_name} ratio.{t}.{i}"),
                    r,
                    fx.data(&format!("step.{s}.ratio.{t}.{i}")),
                    rtol,
                    0.0,
                );
                // k = ln(U0 / R0 * R / U) is computed in float32 from sums of exp(alpha) of order 1
                // (the reference in float64): its rounding is a few 1e-8 absolute, against shifts
                // of 1e-5..1e-4 here; the alphas it is added to are checked to 1e-5 above
                assert_close(&format!("{s_name} k.{t}.{i}"), kk, fx.data(&format!("step.{s}.k.{t}.{i}")), 1e-3, K_ATOL);
            }
        }
        // the alphas' partial-decay masks, entry by entry
        for cell in CellType::BOTH {
            for (i, p) in model.alphas.of(cell).iter().enumerate() {
                let key = format!("step.{s}.alpha_decay_mask.{}.{i}", cell.name());
                let (_, mask) = report.alpha_decay_masks.iter().find(|(id, _)| *id == p.id).expect("a mask per alpha");
                let mask = mask.clone().into_data().convert::<f32>().into_vec::<f32>().unwrap();
                assert_eq!(mask, fx.data(&key), "{s_name} {key}");
            }
        }

        let ours: BTreeSet<String> = report.decayed().iter().map(|id| paths[id].clone()).collect();
        let theirs: BTreeSet<String> =
            expect["decay_selected"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        assert_eq!(ours, theirs, "{s_name}: partial-decay selection");

        let values = values_by_path(&model.net);
        let prefix = format!("step.{s}.param.");
        let (keys, worst_move) = assert_step_state(fx, &prefix, &values, &before, &mut ref_before, rtol);
        eprintln!("{s_name}: worst change error {worst_move:.3} of the tolerance");
        let expected = if s + 1 == steps { counts[1] } else { counts[0] };
        assert_eq!(keys.len(), expected, "{s_name}: tensors stored");
        for (path, v) in &values {
            if !keys.iter().any(|k| &k[prefix.len()..] == path) {
                ref_before.insert(path.clone(), v.clone());
            }
        }
        before = values;
        // the PyTorch-1.0 momentum of dropped ops is exercised by this fixture: under 1.0 weights
        // of ops dropped in step 1 move, under modern they do not
        if s == 1 && space_name == "original" {
            let unmoved = expect["unmoved"].as_array().unwrap();
            assert!(!expect["moved_without_gradient"].as_array().unwrap().is_empty());
            assert_eq!(unmoved.is_empty(), compat == TorchCompat::V1_0, "{s_name}: unmoved {unmoved:?}");
        }
    }
}

/// The absolute rounding allowed on the alpha adjustment's shift `k` (see its comparison).
const K_ATOL: f64 = 3e-7;

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
