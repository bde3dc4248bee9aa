//! The first steps of a tiny search on two backends from the same seed, step by step: what
//! `dropnas selftest` checks a GPU with, against the CPU.
//!
//! Both start from the same network (the initial values are drawn on the host from the seed,
//! see `dropnas_core::init`: they must be bit-identical), see the same images, labels and
//! dropout masks (drawn on the host too), and must agree on
//! - every step's losses and clipping norms, to `rtol` (relative);
//! - after the last step, every weight tensor and every edge's softmaxed alphas (the mixing
//!   weights of a step without drops) to `10 * rtol` (relative to each tensor's largest value).
//!
//! Why the second tolerance is looser: float arithmetic differs between backends (summation
//! order, fused multiply-adds), and the run amplifies it. Adam divides by `sqrt(v)`, so an alpha
//! whose gradient is near zero takes a step whose size and sign follow the gradient's float
//! noise (measured on lavapipe: one alpha of 112 moved by +2e-4 on wgpu and -3e-4 on the CPU in
//! the third step, while every loss agreed to 3e-6); the weights then follow slightly different
//! mixing weights. The raw alphas are therefore compared through their softmax, which is what the
//! network uses: a difference of 1e-3 in one alpha changes its edge's weights by about 1e-3.

use crate::step::{DropNasOptimizers, StepConfig, StepSchedule, dropnas_step};
use burn::tensor::{Int, Tensor, TensorData};
use dropnas_core::alphas::CellType;
use dropnas_core::dropout::GroupedDropout;
use dropnas_core::testkit::{assert_close, values_by_path};
use dropnas_core::{DropnasAutodiffBackend, ParamInit, SearchNetworkConfig, SearchSpace, TorchCompat};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The tiny search: 3 cells of 4 channels, batch 8 of 16x16x3 random images, 10 classes, drop
/// rate 1e-3 (each op dropped with probability 0.18, so most steps adjust alphas).
const LAYERS: usize = 3;
const CHANNELS: usize = 4;
const BATCH: usize = 8;
const SIDE: usize = 16;
const SEED: u64 = 19;

/// Runs `steps` DropNAS steps on backend `A` (device `a`) and on `B` (device `b`) and panics,
/// naming the first difference, unless they agree as the module docs say (`rtol` 0: bit for
/// bit). Returns the largest relative difference seen in the losses and norms.
pub fn first_steps_agree<A: DropnasAutodiffBackend, B: DropnasAutodiffBackend>(
    a: &A::Device,
    b: &B::Device,
    steps: usize,
    rtol: f64,
    compat: TorchCompat,
) -> f64 {
    let space = SearchSpace::named("original").expect("known space");
    let cfg = SearchNetworkConfig::new(3, CHANNELS, 10, LAYERS, space.clone());
    let mut model_a = cfg.init::<A>(&mut ParamInit::new(SEED, compat, a));
    let mut model_b = cfg.init::<B>(&mut ParamInit::new(SEED, compat, b));
    // the same seed gives the same network on both backends, to the bit
    let (va, vb) = (values_by_path(&model_a.net), values_by_path(&model_b.net));
    for (path, v) in &va {
        assert!(vb[path] == *v, "initial {path} differs between the two backends");
    }
    assert_eq!(model_a.alphas.rows(CellType::Normal), model_b.alphas.rows(CellType::Normal), "initial alphas");

    let step_cfg = StepConfig { torch_compat: compat, ..StepConfig::default() };
    let (mut opt_a, mut opt_b) = (DropNasOptimizers::<A>::new(&step_cfg), DropNasOptimizers::<B>::new(&step_cfg));
    let sched = StepSchedule { w_lr: 0.0375, alpha_lr: 3e-4, alpha_phase_1: true, record_alphas: false };
    let dropout = GroupedDropout { rates: vec![1e-3; space.groups.len()] };
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut worst = 0.0f64;
    for s in 0..steps {
        let pixels: Vec<f32> = (0..BATCH * 3 * SIDE * SIDE).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        let labels: Vec<i64> = (0..BATCH).map(|_| rng.random_range(0..10)).collect();
        let masks = dropout.sample_step(&space, 4, &mut rng);
        let shape = [BATCH, 3, SIDE, SIDE];
        let (xa, xb) = (
            Tensor::<A, 4>::from_data(TensorData::new(pixels.clone(), shape), a),
            Tensor::<B, 4>::from_data(TensorData::new(pixels, shape), b),
        );
        let (ya, yb) = (
            Tensor::<A, 1, Int>::from_data(TensorData::new(labels.clone(), [BATCH]), a),
            Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [BATCH]), b),
        );
        let (next_a, report_a) = dropnas_step(model_a, &mut opt_a, &step_cfg, sched, xa, ya, &masks, None);
        let (next_b, report_b) = dropnas_step(model_b, &mut opt_b, &step_cfg, sched, xb, yb, &masks, None);
        (model_a, model_b) = (next_a, next_b);
        let (na, nb) = (report_a.read(), report_b.read());
        for (name, x, y) in [
            ("loss_1", na.loss_1, nb.loss_1),
            ("loss_2", na.loss_2, nb.loss_2),
            ("norm_1", na.norm_1, nb.norm_1),
            ("norm_2", na.norm_2, nb.norm_2),
        ] {
            let rel = (x - y).abs() / x.abs().max(f64::MIN_POSITIVE);
            assert!(rel <= rtol, "step {s}: {name} {y} on the device vs {x} on the reference backend ({rel:.1e})");
            worst = worst.max(rel);
        }
        assert_eq!((na.top1, na.top5), (nb.top1, nb.top5), "step {s}: accuracy");
    }
    let close = |name: String, got: &[f32], want: &[f32]| {
        if rtol == 0.0 {
            assert!(got == want, "{name}: not bit-identical");
        } else {
            assert_close(&name, got, want, 10.0 * rtol, 1e-9);
        }
    };
    for cell in CellType::BOTH {
        let flat = |rows: Vec<Vec<f32>>| rows.into_iter().flatten().collect::<Vec<f32>>();
        let (sa, sb) = (flat(model_a.alphas.softmax_rows(cell)), flat(model_b.alphas.softmax_rows(cell)));
        close(format!("softmaxed alphas ({}) after {steps} steps", cell.name()), &sb, &sa);
        if rtol == 0.0 {
            assert!(model_a.alphas.rows(cell) == model_b.alphas.rows(cell), "alphas: not bit-identical");
        }
    }
    let (va, vb) = (values_by_path(&model_a.net), values_by_path(&model_b.net));
    for (path, v) in &va {
        close(format!("{path} after {steps} steps"), &vb[path], v);
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type Cpu = Autodiff<Flex>;

    /// The CPU against itself: bit for bit (a run is deterministic).
    #[test]
    fn the_cpu_agrees_with_itself_exactly() {
        for compat in TorchCompat::ALL {
            assert_eq!(first_steps_agree::<Cpu, Cpu>(&Default::default(), &Default::default(), 3, 0.0, compat), 0.0);
        }
    }
}

/// The same first steps on every GPU backend compiled in, against the CPU, to 1e-4.
#[cfg(all(test, any(feature = "wgpu", feature = "cuda")))]
mod gpu {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type Cpu = Autodiff<Flex>;

    #[cfg(feature = "wgpu")]
    #[test]
    fn wgpu_agrees_with_the_cpu() {
        type Wgpu = Autodiff<burn::backend::Wgpu>;
        for compat in TorchCompat::ALL {
            let worst = first_steps_agree::<Cpu, Wgpu>(&Default::default(), &Default::default(), 3, 1e-4, compat);
            eprintln!("wgpu vs cpu ({compat}): worst relative difference of losses and norms {worst:.2e}");
        }
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_agrees_with_the_cpu() {
        type Cuda = Autodiff<burn::backend::Cuda>;
        let device = burn::backend::cuda::CudaDevice::new(0);
        for compat in TorchCompat::ALL {
            first_steps_agree::<Cpu, Cuda>(&Default::default(), &device, 3, 1e-4, compat);
        }
    }
}
