//! Accuracy and running means, as the original's `accuracy()` and `AverageMeter`.

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor};
use serde::{Deserialize, Serialize};

/// Numbers of samples whose label is among the top-1 and the top-5 logits, as a `[2]` tensor
/// (kept on the device, read together with the loss in one transfer).
///
/// A label is in the top `k` when fewer than `k` logits are strictly larger than its own.
pub fn topk_correct<B: Backend>(logits: Tensor<B, 2>, labels: Tensor<B, 1, Int>) -> Tensor<B, 1> {
    let [n, _] = logits.dims();
    let own = logits.clone().gather(1, labels.reshape([n, 1]));
    let above = logits.greater(own).int().sum_dim(1).reshape([n]);
    let top1 = above.clone().lower_elem(1).int().sum().float();
    let top5 = above.lower_elem(5).int().sum().float();
    Tensor::cat(vec![top1, top5], 0)
}

/// A running mean weighted by batch size.
///
/// Checkpoints hold meters in their JSON header, and JSON has no infinity or NaN (serde_json
/// writes them as `null`, which no longer reads as a number): a run whose gradient norm overflowed
/// would leave a checkpoint that cannot be read. Non-finite values are therefore written as the
/// strings `"inf"`, `"-inf"` and `"NaN"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Meter {
    #[serde(with = "any_f64")]
    pub sum: f64,
    #[serde(with = "any_f64")]
    pub count: f64,
}

/// An `f64` in JSON, non-finite values included (see [`Meter`]).
pub mod any_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *v {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
            // what earlier versions wrote for a non-finite value
            Null(()),
        }
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Null(()) => Ok(f64::NAN),
            Repr::Text(t) => match t.as_str() {
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                "NaN" => Ok(f64::NAN),
                _ => Err(serde::de::Error::custom(format!("`{t}` is not a number"))),
            },
        }
    }
}

impl Meter {
    pub fn update(&mut self, value: f64, n: usize) {
        self.sum += value * n as f64;
        self.count += n as f64;
    }

    pub fn avg(&self) -> f64 {
        if self.count == 0.0 { 0.0 } else { self.sum / self.count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    #[test]
    fn topk_counts_labels_among_the_largest_logits() {
        let device = Default::default();
        let logits = Tensor::<Flex, 2>::from_data(
            TensorData::new(
                vec![
                    0.9f32, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0, // label 0: top-1
                    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, // label 2: rank 4 (top-5, not top-1)
                    0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, // label 0: rank 6 (neither)
                ],
                [3, 7],
            ),
            &device,
        );
        let labels = Tensor::<Flex, 1, Int>::from_data(TensorData::new(vec![0i64, 2, 0], [3]), &device);
        let c = topk_correct(logits, labels).into_data().convert::<f32>().into_vec::<f32>().unwrap();
        assert_eq!(c, vec![1.0, 2.0]);
        let mut m = Meter::default();
        m.update(1.0, 2);
        m.update(4.0, 1);
        assert_eq!(m.avg(), 2.0);
    }
}

#[cfg(test)]
mod meter_tests {
    use super::Meter;

    #[test]
    fn meters_with_non_finite_sums_survive_json() {
        for sum in [1.5, f64::INFINITY, f64::NEG_INFINITY] {
            let m = Meter { sum, count: 3.0 };
            let text = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<Meter>(&text).unwrap(), m, "{text}");
        }
        let nan: Meter =
            serde_json::from_str(&serde_json::to_string(&Meter { sum: f64::NAN, count: 1.0 }).unwrap()).unwrap();
        assert!(nan.sum.is_nan());
        // written by earlier versions
        assert!(serde_json::from_str::<Meter>(r#"{"sum":null,"count":2.0}"#).unwrap().sum.is_nan());
    }
}
