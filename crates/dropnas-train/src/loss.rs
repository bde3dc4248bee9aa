//! The retraining loss: cross entropy, with label smoothing for the ImageNet recipe.
//!
//! DARTS' ImageNet script trains (main and auxiliary logits alike) on
//! `CrossEntropyLabelSmooth`: cross entropy against `(1 - eps) * one_hot + eps / classes`,
//! averaged over the batch; it evaluates on the plain cross entropy. Burn's
//! `CrossEntropyLoss` with `smoothing` is that formula; with `eps = 0` the loss is the plain
//! cross entropy, computed as before (bit for bit).

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};

/// Mean over the batch of the cross entropy of `logits` against the labels smoothed by `eps`.
pub fn smoothed_cross_entropy<B: Backend>(logits: Tensor<B, 2>, targets: Tensor<B, 1, Int>, eps: f64) -> Tensor<B, 1> {
    let config = CrossEntropyLossConfig::new();
    let config = if eps > 0.0 { config.with_smoothing(Some(eps as f32)) } else { config };
    config.init(&logits.device()).forward(logits, targets)
}

/// Why `eps` cannot be a label-smoothing value, if it cannot.
pub fn check_label_smoothing(eps: f64) -> Result<(), String> {
    if (0.0..1.0).contains(&eps) { Ok(()) } else { Err(format!("--label-smoothing must be in [0, 1), got {eps}")) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    /// By hand: one sample, logits (0, ln 3): p = (1/4, 3/4); label 1, eps 0.2, 2 classes:
    /// q = (0.1, 0.9); loss = -(0.1 ln 1/4 + 0.9 ln 3/4).
    #[test]
    fn the_formula() {
        let device = Default::default();
        let logits = Tensor::<Flex, 2>::from_data(TensorData::new(vec![0.0f32, 3f32.ln()], [1, 2]), &device);
        let y = Tensor::<Flex, 1, Int>::from_data(TensorData::new(vec![1i64], [1]), &device);
        let loss: f32 = smoothed_cross_entropy(logits.clone(), y.clone(), 0.2).into_scalar();
        let expected = -(0.1 * 0.25f64.ln() + 0.9 * 0.75f64.ln());
        assert!((f64::from(loss) - expected).abs() < 1e-6, "{loss} vs {expected}");
        let plain: f32 = smoothed_cross_entropy(logits, y, 0.0).into_scalar();
        assert!((f64::from(plain) + 0.75f64.ln()).abs() < 1e-6);
        assert!(check_label_smoothing(1.0).is_err() && check_label_smoothing(0.1).is_ok());
    }
}
