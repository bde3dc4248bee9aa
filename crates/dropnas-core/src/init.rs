//! Where a network's initial tensors come from: PyTorch's initialisation rules, drawn on the
//! host from the run's seeded generator and uploaded to the device.
//!
//! Why on the host: PyTorch users get one initial network for a seed on any device (modules
//! are built on the CPU and moved). Drawing with the backend's own generator (`B::seed`, then
//! `Tensor::random` on the device) gives every backend a different network for the same seed;
//! drawn here, a CPU run and a GPU run start from the same weights and alphas, and can be
//! checked against each other step by step.
//!
//! The rules (PyTorch's `reset_parameters`, the same in 1.0 and today, except BatchNorm):
//! - convolution and linear weights: `kaiming_uniform_(a = sqrt(5))`, i.e. U(-b, b) with
//!   `b = sqrt(3) * sqrt(2 / (1 + a^2)) / sqrt(fan_in)` = `1 / sqrt(fan_in)`;
//! - linear bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in));
//! - affine BatchNorm: weight U(0, 1) under [`TorchCompat::V1_0`], ones under `modern`; bias 0;
//!   running mean 0, running variance 1;
//! - alphas: `1e-3 * N(0, 1)` (the original's `1e-3 * torch.randn`).
//!
//! Values are drawn tensor by tensor in construction order, each in PyTorch's layout
//! (row-major `[out, in, kh, kw]`, linear `[out, in]`).

use crate::compat::TorchCompat;
use burn::module::Param;
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// The ChaCha stream of the initial draws: the run's seed, a stream no other draw uses (the
/// dropout masks and drop path use stream 0 of their own generators).
const INIT_STREAM: u64 = 0x696e_6974; // "init"

/// Draws a network's initial tensors on the host and uploads them to `device`.
pub struct ParamInit<B: Backend> {
    rng: ChaCha8Rng,
    compat: TorchCompat,
    device: B::Device,
}

impl<B: Backend> ParamInit<B> {
    /// The generator of run seed `seed`, for a network of PyTorch semantics `compat`.
    pub fn new(seed: u64, compat: TorchCompat, device: &B::Device) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(INIT_STREAM);
        Self { rng, compat, device: device.clone() }
    }

    pub fn compat(&self) -> TorchCompat {
        self.compat
    }

    pub fn device(&self) -> &B::Device {
        &self.device
    }

    fn upload<const D: usize>(&self, values: Vec<f32>, shape: [usize; D]) -> Tensor<B, D> {
        Tensor::from_data(TensorData::new(values, shape), &self.device)
    }

    fn uniform(&mut self, n: usize, low: f64, high: f64) -> Vec<f32> {
        (0..n).map(|_| (low + (high - low) * self.rng.random::<f64>()) as f32).collect()
    }

    /// A convolution weight `[out, in / groups, kh, kw]`: kaiming-uniform with `a = sqrt(5)`.
    pub fn conv_weight(&mut self, shape: [usize; 4]) -> Param<Tensor<B, 4>> {
        let fan_in = shape[1] * shape[2] * shape[3];
        let b = kaiming_uniform_bound(fan_in);
        let values = self.uniform(shape.iter().product(), -b, b);
        Param::from_tensor(self.upload(values, shape))
    }

    /// `nn.Linear(d_in, d_out)`: weight kaiming-uniform with `a = sqrt(5)` (drawn in PyTorch's
    /// `[out, in]` layout, stored in Burn's `[in, out]`), bias U(-1/sqrt(d_in), 1/sqrt(d_in)).
    pub fn linear(&mut self, d_in: usize, d_out: usize) -> Linear<B> {
        let b = kaiming_uniform_bound(d_in);
        let out_in = self.uniform(d_in * d_out, -b, b);
        let mut in_out = vec![0.0f32; d_in * d_out];
        for o in 0..d_out {
            for i in 0..d_in {
                in_out[i * d_out + o] = out_in[o * d_in + i];
            }
        }
        let bound = 1.0 / (d_in as f64).sqrt();
        let bias = self.uniform(d_out, -bound, bound);
        Linear {
            weight: Param::from_tensor(self.upload(in_out, [d_in, d_out])),
            bias: Some(Param::from_tensor(self.upload(bias, [d_out]))),
        }
    }

    /// An affine BatchNorm's weight (gamma): U(0, 1) under PyTorch 1.0, ones under `modern`.
    pub fn bn_weight(&mut self, channels: usize) -> Param<Tensor<B, 1>> {
        let values = if self.compat.bn_weight_uniform() {
            // f32 draws: uniform in [0, 1) exactly (an f64 draw rounded to f32 can reach 1.0)
            (0..channels).map(|_| self.rng.random::<f32>()).collect()
        } else {
            vec![1.0; channels]
        };
        Param::from_tensor(self.upload(values, [channels]))
    }

    /// A tensor of `value` (BatchNorm's bias and running statistics).
    pub fn constant<const D: usize>(&self, shape: [usize; D], value: f32) -> Tensor<B, D> {
        self.upload(vec![value; shape.iter().product()], shape)
    }

    /// One alpha matrix `[edges, n_ops]`: `1e-3 * N(0, 1)`.
    pub fn alpha(&mut self, edges: usize, n_ops: usize) -> Param<Tensor<B, 2>> {
        let values = (0..edges * n_ops).map(|_| (1e-3 * self.rng.sample::<f64, _>(StandardNormal)) as f32).collect();
        Param::from_tensor(self.upload(values, [edges, n_ops]))
    }
}

/// `kaiming_uniform_(a = sqrt(5))`'s bound, computed as PyTorch does (`1 / sqrt(fan_in)` up to
/// round-off).
fn kaiming_uniform_bound(fan_in: usize) -> f64 {
    let a = 5f64.sqrt();
    let gain = (2.0 / (1.0 + a * a)).sqrt();
    3f64.sqrt() * (gain / (fan_in as f64).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn values<const D: usize>(t: Tensor<Flex, D>) -> Vec<f32> {
        t.into_data().to_vec::<f32>().unwrap()
    }

    #[test]
    fn draws_follow_pytorch_rules_and_the_seed() {
        let device = Default::default();
        let mut init = ParamInit::<Flex>::new(7, TorchCompat::V1_0, &device);
        let w = values(init.conv_weight([16, 8, 3, 3]).val());
        let b = 1.0 / 72f64.sqrt();
        assert!(w.iter().all(|&v| (v as f64).abs() <= b + 1e-7));
        let max = w.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        assert!(max > 0.95 * b, "uniform over the whole range: max {max} of {b}");

        let lin = init.linear(10, 3);
        assert_eq!(lin.weight.dims(), [10, 3]);
        let lb = 1.0 / 10f64.sqrt();
        assert!(values(lin.bias.unwrap().val()).iter().all(|&v| (v as f64).abs() <= lb));

        let a = values(init.alpha(1000, 8).val());
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        let sd = (a.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / a.len() as f64).sqrt();
        assert!(mean.abs() < 5e-5 && (sd - 1e-3).abs() < 5e-5, "alphas: mean {mean}, sd {sd}");

        // the same seed gives the same draws; another seed others
        let again = values(ParamInit::<Flex>::new(7, TorchCompat::V1_0, &device).conv_weight([16, 8, 3, 3]).val());
        assert_eq!(again, w);
        let other = values(ParamInit::<Flex>::new(8, TorchCompat::V1_0, &device).conv_weight([16, 8, 3, 3]).val());
        assert_ne!(other, w);
    }

    #[test]
    fn linear_weight_is_stored_transposed() {
        let device = Default::default();
        let lin = ParamInit::<Flex>::new(1, TorchCompat::Modern, &device).linear(3, 2);
        // the same stream drawn by hand: [out, in] row-major, then the bias
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        rng.set_stream(INIT_STREAM);
        let b = kaiming_uniform_bound(3);
        let out_in: Vec<f32> = (0..6).map(|_| (-b + 2.0 * b * rng.random::<f64>()) as f32).collect();
        let w = values(lin.weight.val());
        for o in 0..2 {
            for i in 0..3 {
                assert_eq!(w[i * 2 + o], out_in[o * 3 + i]);
            }
        }
    }
}
