//! The alphas' optimizer: `torch.optim.Adam` as the PyTorch of the run computed it.
//!
//! PyTorch 1.0.0 (`torch/optim/adam.py` at tag v1.0.0, what the original ran) adds epsilon to
//! `sqrt(v)` *before* the bias correction and folds both corrections into the step size:
//!
//! ```text
//! step_size = lr * sqrt(1 - beta2^t) / (1 - beta1^t)        (in double precision)
//! p -= step_size * m / (sqrt(v) + eps)
//! ```
//!
//! PyTorch >= 1.6 (and Burn's `Adam`) divide by `sqrt(v) / sqrt(1 - beta2^t) + eps`. In the
//! first steps, where `sqrt(1 - beta2^t)` is small, PyTorch 1.0's epsilon is in effect 30 times
//! larger, which damps the update of alphas whose gradients are tiny.
//!
//! Its state is Burn's [`AdamState`], so that the optimizer record (checkpoints) has Burn's
//! Adam's shape and `OptimizerAdaptor` drives it like any Burn optimizer.

use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate, SimpleOptimizer};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use dropnas_core::TorchCompat;

/// Adam without weight decay (the search's alpha decay is its own loss term), of PyTorch
/// `compat`'s formula.
#[derive(Debug, Clone, Copy)]
pub struct AlphaAdam {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    pub compat: TorchCompat,
}

impl<B: Backend> SimpleOptimizer<B> for AlphaAdam {
    type State<const D: usize> = AdamState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let (b1, b2) = (self.beta_1, self.beta_2);
        // m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g g  (from zeros at step 1)
        let m_term = grad.clone().mul_scalar(1.0 - b1);
        let v_term = grad.clone().mul_scalar(1.0 - b2).mul(grad);
        let momentum = match state {
            None => AdaptiveMomentumState::new(1, m_term, v_term),
            Some(AdamState { momentum: s }) => AdaptiveMomentumState::new(
                s.time + 1,
                s.moment_1.mul_scalar(b1).add(m_term),
                s.moment_2.mul_scalar(b2).add(v_term),
            ),
        };
        let t = momentum.time as i32;
        let (bias_correction1, bias_correction2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        let m = momentum.moment_1.clone();
        let v_sqrt = momentum.moment_2.clone().sqrt();
        let tensor = if self.compat.adam_eps_before_bias_correction() {
            let step_size = lr * bias_correction2.sqrt() / bias_correction1;
            tensor + m.mul_scalar(-step_size).div(v_sqrt.add_scalar(self.epsilon))
        } else {
            let step_size = lr / bias_correction1;
            tensor + m.mul_scalar(-step_size).div(v_sqrt.div_scalar(bias_correction2.sqrt()).add_scalar(self.epsilon))
        };
        (tensor, Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        state.momentum = state.momentum.to_device(device);
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::module::{Module, Param};
    use burn::optim::adaptor::OptimizerAdaptor;
    use burn::optim::{GradientsParams, Optimizer};
    use burn::tensor::TensorData;
    use dropnas_core::testkit::{Fixture, assert_close};
    use dropnas_train::records::{optim_from_bytes, optim_to_bytes};

    type A = Autodiff<Flex>;

    #[derive(Module, Debug)]
    struct One<B: Backend> {
        p: Param<Tensor<B, 2>>,
    }

    fn adam(compat: TorchCompat) -> AlphaAdam {
        AlphaAdam { beta_1: 0.5, beta_2: 0.999, epsilon: 1e-8, compat }
    }

    fn module(values: &[f32], shape: [usize; 2]) -> One<A> {
        let t = Tensor::<A, 2>::from_data(TensorData::new(values.to_vec(), shape), &Default::default());
        One { p: Param::from_tensor(t.require_grad()) }
    }

    fn grads(m: &One<A>, g: &[f32], shape: [usize; 2]) -> GradientsParams {
        let mut grads = GradientsParams::new();
        grads.register::<Flex, 2>(m.p.id, Tensor::from_data(TensorData::new(g.to_vec(), shape), &Default::default()));
        grads
    }

    fn values(m: &One<A>) -> Vec<f32> {
        m.p.val().into_data().to_vec::<f32>().unwrap()
    }

    #[test]
    fn pytorch_1_0_update_by_hand() {
        // PyTorch 1.0's torch/optim/adam.py, step by step in double precision
        let p0 = [0.1f32, -0.2, 0.0, 1.0];
        let gs = [[0.3f32, -1e-4, 2.0, 0.0], [-0.1, 2e-4, 1.0, 0.0], [0.05, 0.0, -3.0, 1e-6]];
        let mut m = module(&p0, [1, 4]);
        let mut optim: OptimizerAdaptor<AlphaAdam, One<A>, A> = adam(TorchCompat::V1_0).into();
        let (mut want, mut m1, mut v1) = (p0.map(f64::from), [0.0f64; 4], [0.0f64; 4]);
        for (t, g) in gs.iter().enumerate() {
            let gr = grads(&m, g, [1, 4]);
            m = optim.step(3e-4, m, gr);
            let t = t as i32 + 1;
            let step_size = 3e-4 * (1.0 - 0.999f64.powi(t)).sqrt() / (1.0 - 0.5f64.powi(t));
            for i in 0..4 {
                let gi = g[i] as f64;
                m1[i] = 0.5 * m1[i] + 0.5 * gi;
                v1[i] = 0.999 * v1[i] + 0.001 * gi * gi;
                want[i] -= step_size * m1[i] / (v1[i].sqrt() + 1e-8);
            }
            for (got, want) in values(&m).iter().zip(want) {
                assert!((*got as f64 - want).abs() <= 1e-7 * want.abs().max(1.0), "step {t}: {got} vs {want}");
            }
        }
        // the first step (lr 1) on a gradient g = 1e-9, where the placements differ most:
        // PyTorch 1.0 moves by sqrt(1 - beta2) g / (sqrt(1 - beta2) g + eps) (almost nothing),
        // PyTorch >= 1.6 by g / (g + eps) = 1/11
        let (g, c) = (1e-9f64, 0.001f64.sqrt());
        for (compat, want) in [(TorchCompat::V1_0, c * g / (c * g + 1e-8)), (TorchCompat::Modern, g / (g + 1e-8))] {
            let m = module(&[0.0], [1, 1]);
            let gr = grads(&m, &[g as f32], [1, 1]);
            let mut optim: OptimizerAdaptor<AlphaAdam, One<A>, A> = adam(compat).into();
            let moved = -values(&optim.step(1.0, m, gr))[0] as f64;
            assert!((moved - want).abs() <= 1e-5 * want, "{compat}: moved {moved}, want {want}");
        }
    }

    /// Six steps of `tools/fixtures/adam.safetensors` (gradients from 1e-1 down to 1e-10), both
    /// settings, against the PyTorch reference's AdamPt10 and torch.optim.Adam.
    #[test]
    fn both_settings_match_the_reference() {
        let fx = Fixture::load("adam");
        let steps = fx.config["steps"].as_u64().unwrap() as usize;
        let (shape, _) = fx.tensors["param"].clone();
        let p0 = fx.data("param").to_vec();
        let shape = [shape[0], shape[1]];
        for compat in TorchCompat::ALL {
            let mut m = module(&p0, shape);
            let mut optim: OptimizerAdaptor<AlphaAdam, One<A>, A> = adam(compat).into();
            for s in 0..steps {
                let g = grads(&m, fx.data(&format!("grad.{s}")), shape);
                m = optim.step(3e-4, m, g);
                let key = if compat == TorchCompat::V1_0 { format!("after.{s}") } else { format!("after.modern.{s}") };
                assert_close(&format!("{compat} {key}"), &values(&m), fx.data(&key), 1e-5, 0.0);
            }
        }
        // the fixture tells the two apart: PyTorch 1.0's result is not today's
        let (a, b) = (fx.data("after.5"), fx.data("after.modern.5"));
        assert!(a.iter().zip(b).any(|(x, y)| (x - y).abs() > 1e-4 * 1e-3));
        fx.assert_every_key_used();
    }

    #[test]
    fn state_round_trips_through_a_record_and_resumes_bit_for_bit() {
        let shape = [2, 3];
        let p0 = [0.01f32, -0.02, 0.0, 0.03, 0.001, -0.005];
        let g = |k: f32| [0.1 * k, -1e-6, 2e-3, 0.0, 5e-9 * k, -0.3];
        let mut m = module(&p0, shape);
        let mut optim: OptimizerAdaptor<AlphaAdam, One<A>, A> = adam(TorchCompat::V1_0).into();
        for k in 0..2 {
            let gr = grads(&m, &g(k as f32 + 1.0), shape);
            m = optim.step(3e-4, m, gr);
        }
        let bytes = optim_to_bytes::<A, One<A>, _>(&optim).unwrap();
        let fresh: OptimizerAdaptor<AlphaAdam, One<A>, A> = adam(TorchCompat::V1_0).into();
        let mut restored = optim_from_bytes::<A, One<A>, _>(fresh, &bytes, &Default::default()).unwrap();
        let m2 = m.clone();
        let a = optim.step(3e-4, m, grads(&m2, &g(3.0), shape));
        let b = restored.step(3e-4, m2.clone(), grads(&m2, &g(3.0), shape));
        assert_eq!(values(&a), values(&b));
    }
}
