//! What a run writes and `dropnas report` reads back, as types: the lines of `metrics.jsonl`
//! and `alphas.jsonl`, and `summary.json`. One definition each, for the writer and the reader.
//!
//! Readers are lenient where older run folders lack a field (it is `None` or NaN), strict where
//! a line could not have come from a run (a step line without `global_step`).

use crate::eval::EvalResult;
use crate::metrics::Meter;
use serde::{Deserialize, Deserializer, Serialize};

/// What kind of run a folder holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Search,
    Augment,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Search => "search",
            RunKind::Augment => "augment",
        }
    }
}

impl std::fmt::Display for RunKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of `metrics.jsonl`.
// One line at a time is written or read: the size of the epoch variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MetricLine {
    Step(StepLine),
    Epoch(EpochLine),
    /// A line of a kind this version does not know (written by a newer one): skipped.
    #[serde(other)]
    Other,
}

fn nan() -> f64 {
    f64::NAN
}

/// `null` (how JSON writes a NaN) and absent both read as NaN.
fn nan_if_null<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// One training step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepLine {
    /// 1-based.
    pub epoch: u32,
    /// 0-based within the epoch.
    pub step: u64,
    /// 0-based over the run.
    pub global_step: u64,
    /// The loss the step minimised: `loss_1 + loss_2` in a search (what the original logs),
    /// `ce + aux_weight * ce_aux` in a retraining.
    pub loss: f64,
    pub top1: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub top5: f64,
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub lr: f64,
    #[serde(flatten)]
    pub terms: LossTerms,
    /// Seconds since the start of the run.
    #[serde(default = "nan", deserialize_with = "nan_if_null")]
    pub time_s: f64,
    /// Seconds this step took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_s: Option<f64>,
}

/// The parts of a step's loss and the gradient norms, where the run has them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LossTerms {
    /// Search: cross entropy under the step's masks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_1: Option<f64>,
    /// Search: the partial weight and alpha decay term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_2: Option<f64>,
    /// Search: global gradient norms before clipping, phase 1 and phase 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm_2: Option<f64>,
    /// Retraining: cross entropy of the network's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ce: Option<f64>,
    /// Retraining: cross entropy of the auxiliary head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ce_aux: Option<f64>,
    /// Retraining: global gradient norm before clipping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norm: Option<f64>,
}

impl LossTerms {
    /// The parts of the loss in words: `ce 2.101, reg 0.244` (search: `loss_1` is the cross
    /// entropy, `loss_2` the partial decay term), `ce 1.201, aux ce 1.502` (retraining).
    pub fn labelled(&self) -> String {
        let parts = [("ce", self.loss_1.or(self.ce)), ("reg", self.loss_2), ("aux ce", self.ce_aux)];
        parts.iter().filter_map(|(name, v)| v.map(|v| format!("{name} {v:.3}"))).collect::<Vec<_>>().join(", ")
    }
}

/// Running means of the [`LossTerms`] over an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LossMeters {
    pub loss_1: Meter,
    pub loss_2: Meter,
    pub norm_1: Meter,
    pub norm_2: Meter,
    pub ce: Meter,
    pub ce_aux: Meter,
    pub norm: Meter,
}

impl LossMeters {
    fn pairs(&mut self, t: &LossTerms) -> [(&mut Meter, Option<f64>); 7] {
        [
            (&mut self.loss_1, t.loss_1),
            (&mut self.loss_2, t.loss_2),
            (&mut self.norm_1, t.norm_1),
            (&mut self.norm_2, t.norm_2),
            (&mut self.ce, t.ce),
            (&mut self.ce_aux, t.ce_aux),
            (&mut self.norm, t.norm),
        ]
    }

    pub fn update(&mut self, t: &LossTerms, n: usize) {
        for (meter, v) in self.pairs(t) {
            if let Some(v) = v {
                meter.update(v, n);
            }
        }
    }

    /// The means of the terms that were seen.
    pub fn means(&self) -> LossTerms {
        let m = |meter: Meter| (meter.count > 0.0).then(|| meter.avg());
        LossTerms {
            loss_1: m(self.loss_1),
            loss_2: m(self.loss_2),
            norm_1: m(self.norm_1),
            norm_2: m(self.norm_2),
            ce: m(self.ce),
            ce_aux: m(self.ce_aux),
            norm: m(self.norm),
        }
    }
}

/// The end of an epoch. A search fills `loss`/`top1`/`top5` and the drop fields; a retraining
/// the `train_*`, `val_*`, `drop_path_prob` and `best_top1` fields. [`EpochLine::train_loss`]
/// and friends read either.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochLine {
    pub epoch: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top5: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_top1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_top5: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_top1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_top5: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Search: r_p and r_np of this epoch (0 during warm-up), and how often an op of each group
    /// was dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_rate_param: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_rate_nonparam: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_freq_param: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_freq_nonparam: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_path_prob: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_top1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_s: Option<f64>,
    /// Search: the genotype derived after this epoch (text form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genotype: Option<String>,
    /// Search, the collapse monitor: skip-connects in the derived normal and reduction cells
    /// (derived the original's way, whatever `--max-skip-connects` says)...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_connects_normal: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_connects_reduce: Option<u32>,
    /// ... the share of their chosen ops without weights...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param_free_normal: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param_free_reduce: Option<f64>,
    /// ... and the mean entropy (nats) of their edges' softmaxed alphas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha_entropy_normal: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha_entropy_reduce: Option<f64>,
    /// Search with `--max-skip-connects`: skip-connect edges the rule replaced in `genotype`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_connects_replaced: Option<u32>,
    /// The epoch's means of the parts of the training loss.
    #[serde(flatten)]
    pub terms: LossTerms,
}

impl EpochLine {
    pub fn train_loss(&self) -> Option<f64> {
        self.train_loss.or(self.loss)
    }
    pub fn train_top1(&self) -> Option<f64> {
        self.train_top1.or(self.top1)
    }
    pub fn train_top5(&self) -> Option<f64> {
        self.train_top5.or(self.top5)
    }
}

/// One line of `alphas.jsonl`: the alphas of both cell types after an epoch. Written with the
/// model's `f32` values (`AlphaLine<f32>`), read as `f64`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlphaLine<T = f64> {
    pub epoch: u32,
    /// Op names in column order.
    pub ops: Vec<String>,
    /// One softmax row per edge (node 0's 2 edges, node 1's 3, ...).
    pub normal: Vec<Vec<T>>,
    pub reduce: Vec<Vec<T>>,
    /// The raw alphas, same layout.
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    pub normal_raw: Vec<Vec<T>>,
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    pub reduce_raw: Vec<Vec<T>>,
    /// The entropy (nats) of each edge's softmaxed alphas.
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    pub entropy_normal: Vec<f64>,
    #[serde(default = "Vec::new", skip_serializing_if = "Vec::is_empty")]
    pub entropy_reduce: Vec<f64>,
}

/// `summary.json`: how a run ended (or where it stopped), written when it stops.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<RunKind>,
    /// Whether every epoch ran (false after `--max-steps` or an interruption).
    pub finished: bool,
    pub epochs_done: usize,
    pub steps_done: usize,
    pub elapsed_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_train_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_train_top1: Option<f64>,
    /// The search's derived genotype, or the retrained one (text form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub genotype: Option<String>,
    /// Search: trainable weights of the supernet, and alphas.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpha_params: Option<u64>,
    /// Retraining: parameters without the auxiliary head (as the original reports the size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params_without_aux: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_top1: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_epoch: Option<u32>,
    /// Retraining: the test-set result after the last epoch.
    #[serde(rename = "final", skip_serializing_if = "Option::is_none")]
    pub final_eval: Option<EvalResult>,
    /// The device the run went on (the last invocation's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// `[channels, height, width]` of the network input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<[usize; 3]>,
    /// Retraining: the network of the DARTS family the genotype was built into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<dropnas_core::NetworkKind>,
    /// Retraining: what one image costs through the network and through the auxiliary head
    /// (see `dropnas_core::flops`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flops: Option<dropnas_core::flops::NetworkCost>,
    /// Search: what one image costs through the supernet with every op kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flops_per_step_all_ops: Option<dropnas_core::flops::Cost>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_old_lines_read() {
        let step = MetricLine::Step(StepLine {
            epoch: 1,
            step: 2,
            global_step: 2,
            loss: 2.5,
            top1: 0.25,
            top5: 0.75,
            lr: 0.0375,
            terms: LossTerms { loss_1: Some(2.0), loss_2: Some(0.5), ..LossTerms::default() },
            time_s: 1.5,
            step_s: Some(0.1),
        });
        let text = serde_json::to_string(&step).unwrap();
        assert!(text.starts_with("{\"kind\":\"step\"") && text.contains("\"loss_1\":2.0"), "{text}");
        assert!(!text.contains("ce_aux"), "absent terms are not written: {text}");
        assert_eq!(serde_json::from_str::<MetricLine>(&text).unwrap(), step);
        // a line of an older version without top5/lr/time_s; a NaN written as null
        let old = r#"{"kind":"step","epoch":1,"step":0,"global_step":0,"loss":2.0,"top1":0.1,"lr":null}"#;
        let MetricLine::Step(s) = serde_json::from_str::<MetricLine>(old).unwrap() else { panic!("not a step") };
        assert!(s.top5.is_nan() && s.lr.is_nan() && s.time_s.is_nan());
        // a step line without global_step could not have come from a run
        let bad = r#"{"kind":"step","epoch":1,"step":0,"loss":2.0,"top1":0.1}"#;
        assert!(serde_json::from_str::<MetricLine>(bad).unwrap_err().to_string().contains("global_step"));
        // unknown kinds are skipped, not errors
        assert_eq!(serde_json::from_str::<MetricLine>(r#"{"kind":"gpu","x":1}"#).unwrap(), MetricLine::Other);
        let epoch = MetricLine::Epoch(EpochLine { epoch: 3, val_top1: Some(0.5), ..EpochLine::default() });
        let text = serde_json::to_string(&epoch).unwrap();
        assert_eq!(text, r#"{"kind":"epoch","epoch":3,"val_top1":0.5}"#);
    }

    #[test]
    fn alpha_lines_are_written_in_f32_and_read_in_f64() {
        let line = AlphaLine::<f32> {
            epoch: 1,
            ops: vec!["none".into()],
            normal: vec![vec![0.1]],
            reduce: vec![vec![0.2]],
            normal_raw: vec![vec![-0.001]],
            reduce_raw: vec![vec![0.003]],
            entropy_normal: vec![],
            entropy_reduce: vec![],
        };
        let text = serde_json::to_string(&line).unwrap();
        assert!(text.contains("[[0.1]]"), "f32 values keep their short form: {text}");
        let back: AlphaLine = serde_json::from_str(&text).unwrap();
        assert_eq!(back.normal_raw, vec![vec![-0.001]]);
    }
}
