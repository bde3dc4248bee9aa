//! Everything a run leaves that must be bit-identical between an uninterrupted run and the same
//! run interrupted and resumed: every metric and alphas line (timing fields aside), every
//! checkpoint decoded whole (its header with the RNG states and counters, and every part), and
//! the text outputs.

use super::{checkpoint_head, read_jsonl};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// The fields that measure time, not results: the only ones left out of the comparison.
pub const TIMING_FIELDS: &[&str] = &["time_s", "step_s", "elapsed_s"];

/// The header fields that name the run's folder rather than its state.
const IDENTITY_FIELDS: &[&str] = &["run_id"];

/// A checkpoint file decoded: its header, and each part decoded from MessagePack (Burn's records)
/// with Burn's random parameter ids replaced by their order of first appearance.
#[derive(Debug, PartialEq)]
pub struct DecodedCheckpoint {
    pub header: Value,
    pub parts: Vec<(String, rmpv::Value)>,
}

pub fn decode_checkpoint(path: &Path) -> DecodedCheckpoint {
    let head = checkpoint_head(path).unwrap_or_else(|| panic!("{} is not a readable checkpoint", path.display()));
    let names: Vec<String> =
        head["parts"].as_array().expect("parts").iter().map(|p| p["name"].as_str().unwrap().to_string()).collect();
    let mut parts: Vec<(String, rmpv::Value)> = names
        .iter()
        .map(|name| {
            let bytes = super::checkpoint_part(path, name);
            let mut r = bytes.as_slice();
            let v = rmpv::decode::read_value(&mut r).unwrap_or_else(|e| panic!("part {name}: not MessagePack: {e}"));
            assert!(r.is_empty(), "part {name}: {} bytes after its record", r.len());
            (name.clone(), v)
        })
        .collect();
    // Burn draws parameter ids at random per process: name them by first appearance instead
    let mut ids = HashMap::new();
    for (_, v) in &parts {
        collect_ids(v, &mut ids);
    }
    assert!(!ids.is_empty(), "{}: no parameter ids in any part", path.display());
    for (_, v) in &mut parts {
        rename(v, &ids);
    }
    let mut header = head["header"].clone();
    rename_json(&mut header, &ids);
    if let Value::Object(m) = &mut header {
        for k in TIMING_FIELDS.iter().chain(IDENTITY_FIELDS) {
            m.remove(*k);
        }
    }
    DecodedCheckpoint { header, parts }
}

fn collect_ids(v: &rmpv::Value, ids: &mut HashMap<String, String>) {
    match v {
        rmpv::Value::Map(entries) => {
            for (k, x) in entries {
                if let (Some("id"), Some(id)) = (k.as_str(), x.as_str()) {
                    let n = ids.len();
                    ids.entry(id.to_string()).or_insert_with(|| format!("param#{n}"));
                }
                collect_ids(x, ids);
            }
        }
        rmpv::Value::Array(items) => items.iter().for_each(|x| collect_ids(x, ids)),
        _ => {}
    }
}

/// Renames ids wherever they occur (values and map keys: optimizer states are maps keyed by
/// parameter id), and sorts maps by key so that a map's iteration order does not count.
fn rename(v: &mut rmpv::Value, ids: &HashMap<String, String>) {
    match v {
        rmpv::Value::String(s) => {
            if let Some(n) = s.as_str().and_then(|s| ids.get(s)) {
                *v = rmpv::Value::from(n.as_str());
            }
        }
        rmpv::Value::Map(entries) => {
            for (k, x) in entries.iter_mut() {
                rename(k, ids);
                rename(x, ids);
            }
            entries.sort_by_key(|(k, _)| format!("{k}"));
        }
        rmpv::Value::Array(items) => items.iter_mut().for_each(|x| rename(x, ids)),
        _ => {}
    }
}

/// [`rename`] for the JSON header; arrays of ids (sets of parameters) are sorted after renaming.
fn rename_json(v: &mut Value, ids: &HashMap<String, String>) {
    match v {
        Value::String(s) => {
            if let Some(n) = ids.get(s.as_str()) {
                *s = n.clone();
            }
        }
        Value::Object(m) => m.values_mut().for_each(|x| rename_json(x, ids)),
        Value::Array(items) => {
            items.iter_mut().for_each(|x| rename_json(x, ids));
            if !items.is_empty() && items.iter().all(|x| x.as_str().is_some_and(|s| s.starts_with("param#"))) {
                items.sort_by_key(|x| x.as_str().unwrap()[6..].parse::<usize>().unwrap());
            }
        }
        _ => {}
    }
}

/// A JSON line without its timing fields.
fn without_timing(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        for k in TIMING_FIELDS {
            m.remove(*k);
        }
    }
    v
}

/// What a run folder holds, for comparison with [`assert_same_run`].
#[derive(Debug)]
pub struct RunOutcome {
    pub metrics: Vec<Value>,
    pub alphas: Vec<Value>,
    pub checkpoints: Vec<(String, DecodedCheckpoint)>,
    pub texts: Vec<(String, String)>,
}

/// Reads `dir`: metrics.jsonl, alphas.jsonl (when the run writes it), the `checkpoints` decoded
/// and the `texts` as they are.
pub fn run_outcome(dir: &Path, checkpoints: &[&str], texts: &[&str]) -> RunOutcome {
    let alphas = dir.join("alphas.jsonl");
    RunOutcome {
        metrics: read_jsonl(&dir.join("metrics.jsonl")).into_iter().map(without_timing).collect(),
        alphas: if alphas.exists() { read_jsonl(&alphas) } else { Vec::new() },
        checkpoints: checkpoints.iter().map(|f| (f.to_string(), decode_checkpoint(&dir.join(f)))).collect(),
        texts: texts
            .iter()
            .map(|f| (f.to_string(), std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"))))
            .collect(),
    }
}

/// Asserts that `b` equals `a` in every line, field, checkpoint part and text, naming the first
/// difference.
#[track_caller]
pub fn assert_same_run(a: &RunOutcome, b: &RunOutcome, what: &str) {
    assert_eq!(a.metrics.len(), b.metrics.len(), "{what}: lines of metrics.jsonl");
    if let Some((i, (x, y))) = a.metrics.iter().zip(&b.metrics).enumerate().find(|(_, (x, y))| x != y) {
        panic!("{what}: metrics.jsonl line {} differs:\n  {x}\n  {y}", i + 1);
    }
    assert_eq!(a.alphas.len(), b.alphas.len(), "{what}: lines of alphas.jsonl");
    if let Some((i, _)) = a.alphas.iter().zip(&b.alphas).enumerate().find(|(_, (x, y))| x != y) {
        panic!("{what}: alphas.jsonl line {} differs", i + 1);
    }
    for ((file, x), (_, y)) in a.checkpoints.iter().zip(&b.checkpoints) {
        assert_eq!(x.header, y.header, "{what}: {file}: header (position, configuration, RNG states)");
        let names = |c: &DecodedCheckpoint| c.parts.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(x), names(y), "{what}: {file}: parts");
        for ((name, p), (_, q)) in x.parts.iter().zip(&y.parts) {
            assert!(p == q, "{what}: {file}: part {name} differs");
        }
    }
    for ((file, x), (_, y)) in a.texts.iter().zip(&b.texts) {
        assert_eq!(x, y, "{what}: {file}");
    }
}
