//! Evaluation of an augment network on a data set: loss, top-1 and top-5 over every sample,
//! on the inner (non-autodiff) backend so that no graph is built.

use crate::metrics::{Meter, topk_correct};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Tensor;
use dropnas_core::AugmentNetwork;
use dropnas_core::drop_path::NoDropPath;
use dropnas_data::{DataError, Loader};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Infinite or NaN when the network diverged (written as text: see `metrics::Meter`).
    #[serde(with = "crate::metrics::any_f64")]
    pub loss: f64,
    pub top1: f64,
    pub top5: f64,
    #[serde(default)]
    pub samples: usize,
}

/// Runs `net` (already on an inner backend: `model.valid()`) over every batch of `loader`
/// (an error if an image of an image folder does not decode).
pub fn evaluate<B: dropnas_core::DropnasBackend>(
    net: &AugmentNetwork<B>,
    loader: &Loader,
    device: &B::Device,
) -> Result<EvalResult, DataError> {
    let ce = CrossEntropyLossConfig::new().init(device);
    let (mut loss, mut top1, mut top5) = (Meter::default(), Meter::default(), Meter::default());
    for batch in loader.epoch(0, 0) {
        let batch = batch?;
        let n = batch.len();
        let (x, y) = batch.to_tensors::<B>(device);
        let (logits, _) = net.forward(x, &mut NoDropPath, false);
        let l = ce.forward(logits.clone(), y.clone()).reshape([1]);
        let c = topk_correct(logits, y);
        let v: Vec<f64> = Tensor::cat(vec![l, c], 0).into_data().convert::<f64>().into_vec::<f64>().unwrap_or_default();
        loss.update(v[0], n);
        top1.update(v[1] / n as f64, n);
        top5.update(v[2] / n as f64, n);
    }
    Ok(EvalResult { loss: loss.avg(), top1: top1.avg(), top5: top5.avg(), samples: loss.count as usize })
}
