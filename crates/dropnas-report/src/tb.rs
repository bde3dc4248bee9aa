//! TensorBoard event files of a run folder. A run writes its own as it goes, in the run folder
//! ([`dropnas_train::run::tensorboard`], which also holds the file format); for a folder
//! without one (written by an older version), the report makes one from `metrics.jsonl` in
//! `tb/`.
//!
//! The regenerated scalars come from `metrics.jsonl` under the original's tags and steps (pt.darts'
//! `SummaryWriter` calls): `train/loss`, `train/top1`, `train/top5` at every step's global
//! step; `train/lr` at the first step of each epoch; `val/loss`, `val/top1`, `val/top5` (augment)
//! at the global step that ends the epoch. Accuracies are fractions, as in the original.

use crate::ReportError;
use crate::run::{Metrics, RunData};
pub use dropnas_train::run::tensorboard::{EVENTS_FILE, Event, decode_records, encode_file};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The scalar events of a run, from its metrics (see the module documentation). Wall times are
/// the run's start (from its log, else 0) plus each line's elapsed time, so the file is the same
/// every time it is generated from the same metrics.
pub fn events_from_metrics(m: &Metrics, start_unix_s: f64) -> Vec<Event> {
    let mut events = Vec::with_capacity(m.steps.len() + 2 * m.epochs.len());
    // First and last global step of each epoch, from the step lines.
    let mut span: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for s in &m.steps {
        let e = span.entry(s.epoch).or_insert((s.global_step, s.global_step));
        e.0 = e.0.min(s.global_step);
        e.1 = e.1.max(s.global_step);
    }
    let spe = m.steps_per_epoch().unwrap_or(1);
    let mut last_epoch = 0;
    for s in &m.steps {
        let mut scalars = Vec::with_capacity(4);
        if s.epoch != last_epoch && s.lr.is_finite() {
            scalars.push(("train/lr".to_string(), s.lr as f32));
        }
        last_epoch = s.epoch;
        scalars.push(("train/loss".to_string(), s.loss as f32));
        scalars.push(("train/top1".to_string(), s.top1 as f32));
        if s.top5.is_finite() {
            scalars.push(("train/top5".to_string(), s.top5 as f32));
        }
        let wall_time = start_unix_s + if s.time_s.is_finite() { s.time_s } else { 0.0 };
        events.push(Event { wall_time, step: s.global_step as i64, file_version: None, scalars });
    }
    for e in &m.epochs {
        let vals = [("val/loss", e.val_loss), ("val/top1", e.val_top1), ("val/top5", e.val_top5)];
        let scalars: Vec<(String, f32)> =
            vals.iter().filter_map(|(t, v)| v.map(|v| (t.to_string(), v as f32))).collect();
        if scalars.is_empty() {
            continue;
        }
        // pt.darts: validate() logs at cur_step = (epoch + 1) * len(train_loader).
        let step = span.get(&e.epoch).map(|s| s.1 + 1).unwrap_or(u64::from(e.epoch) * spe);
        let wall_time = start_unix_s + e.time_s.unwrap_or(0.0);
        events.push(Event { wall_time, step: step as i64, file_version: None, scalars });
    }
    // TensorBoard wants each tag's points in step order; keep step lines and epoch lines merged.
    events.sort_by_key(|e| e.step);
    events
}

/// The run's event file: the one the run writes as it goes, else `run_dir/tb/` made from the
/// run's metrics, whole and atomically. Returns the file, or `None` when there is nothing to
/// write yet.
pub fn write_run_events(run: &RunData) -> Result<Option<PathBuf>, ReportError> {
    let live = run.dir.join(EVENTS_FILE);
    if live.is_file() {
        return Ok(Some(live));
    }
    if run.metrics.steps.is_empty() && run.metrics.epochs.is_empty() {
        return Ok(None);
    }
    let start = run.started_unix_s.unwrap_or(0.0);
    let events = events_from_metrics(&run.metrics, start);
    let dir = run.dir.join("tb");
    std::fs::create_dir_all(&dir).map_err(|source| ReportError::Io { path: dir.clone(), source })?;
    let path = dir.join(EVENTS_FILE);
    crate::write_atomic(&path, &encode_file(start, &events))?;
    Ok(Some(path))
}

fn malformed(path: &Path, detail: String) -> ReportError {
    ReportError::Malformed { path: path.to_path_buf(), line: None, detail }
}

/// Reads an event file, checking every record's length and CRCs.
pub fn read_events(path: &Path) -> Result<Vec<Event>, ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Io { path: path.to_path_buf(), source })?;
    decode_records(&bytes).map_err(|(at, what)| malformed(path, format!("record at byte {at}: {what}")))
}

/// The scalars of events by tag: `(step, value)` in file order.
pub fn scalars_by_tag(events: &[Event]) -> BTreeMap<String, Vec<(i64, f32)>> {
    let mut out: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
    for e in events {
        for (tag, v) in &e.scalars {
            out.entry(tag.clone()).or_default().push((e.step, *v));
        }
    }
    out
}
