//! Run summaries (`report.md`, the `dropnas report` text) and the mean ± std table over
//! several augment runs.

use crate::ReportError;
use crate::run::{RunData, RunKind};
use crate::stats::MeanStd;
use dropnas_core::genotype::Genotype;
use dropnas_core::params::model_size;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// What `report` says about a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    pub dir: PathBuf,
    pub name: String,
    pub kind: RunKind,
    pub dataset: Option<String>,
    pub layers: Option<u64>,
    pub init_channels: Option<u64>,
    /// Search runs.
    pub search_space: Option<String>,
    /// `(r_p, r_np)`, search runs.
    pub drop_rates: Option<(f64, f64)>,
    pub epochs_done: u32,
    pub epochs_total: Option<u64>,
    /// `summary.json` says the run went through all its epochs.
    pub finished: bool,
    /// Last epoch's mean training top-1 (fraction).
    pub last_train_top1: Option<f64>,
    /// Last epoch's means of the named loss terms (`ce 1.902, reg 0.403`).
    pub last_train_terms: Option<String>,
    /// Last epoch's test top-1 (fraction), augment runs.
    pub last_test_top1: Option<f64>,
    /// Best test top-1 (fraction) and its epoch, augment runs.
    pub best_test_top1: Option<(f64, Option<u32>)>,
    /// Without the auxiliary head, augment runs.
    pub params: Option<u64>,
    /// Operations of one image through the network without the auxiliary head, augment runs
    /// (`summary.json`'s `flops`, see `dropnas_core::flops`): multiply-adds of convolutions and
    /// linear layers, and the per-element operations ptflops adds.
    pub flops: Option<dropnas_core::flops::Cost>,
    /// `[channels, height, width]` of the network input, when `summary.json` says.
    pub input_shape: Option<Vec<u64>>,
    pub elapsed_s: Option<f64>,
    pub genotype: Option<Genotype>,
}

/// Summarises a loaded run.
pub fn summarize(run: &RunData) -> RunSummary {
    let cfg_u = |k: &str| run.config_value(k).and_then(Value::as_u64);
    let cfg_f = |k: &str| run.config_value(k).and_then(Value::as_f64);
    let last = run.metrics.epochs.last();
    let summary_epochs = run.summary.as_ref().map(|s| s.epochs_done as u32);
    RunSummary {
        dir: run.dir.clone(),
        name: run.name(),
        kind: run.kind,
        dataset: run.config_value("dataset").and_then(Value::as_str).map(str::to_string),
        layers: cfg_u("layers"),
        init_channels: cfg_u("init_channels"),
        search_space: run.config_value("search_space").and_then(Value::as_str).map(str::to_string),
        drop_rates: match (cfg_f("drop_rate_param"), cfg_f("drop_rate_nonparam")) {
            (Some(p), Some(np)) => Some((p, np)),
            _ => None,
        },
        epochs_done: last.map(|e| e.epoch).into_iter().chain(summary_epochs).max().unwrap_or(0),
        epochs_total: cfg_u("epochs"),
        finished: run.summary.as_ref().is_some_and(|s| s.finished),
        last_train_top1: last.and_then(|e| e.train_top1()),
        last_train_terms: last.map(|e| e.terms.labelled()).filter(|t| !t.is_empty()),
        last_test_top1: last.and_then(|e| e.val_top1),
        best_test_top1: run.best_top1(),
        params: run.params,
        flops: run.summary.as_ref().and_then(|s| s.flops.map(|f| f.network)),
        input_shape: run.summary.as_ref().and_then(|s| s.input_shape.map(|a| a.iter().map(|&x| x as u64).collect())),
        elapsed_s: run.elapsed_s(),
        genotype: run.genotype.clone(),
    }
}

/// `1h 02m 03s`, `4m 05s`, `6.2s`.
pub fn duration(s: f64) -> String {
    if !s.is_finite() || s < 0.0 {
        return "?".into();
    }
    if s < 60.0 {
        return format!("{s:.1}s");
    }
    let t = s.round() as u64;
    let (h, m, sec) = (t / 3600, t / 60 % 60, t % 60);
    if h > 0 { format!("{h}h {m:02}m {sec:02}s") } else { format!("{m}m {sec:02}s") }
}

pub use dropnas_core::params::thousands;

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

impl RunSummary {
    /// `(field, value)` rows, shared by the text and the Markdown forms.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = vec![("run", format!("{} ({} run)", self.name, self.kind.as_str()))];
        rows.push(("folder", self.dir.display().to_string()));
        if let Some(d) = &self.dataset {
            rows.push(("dataset", d.clone()));
        }
        if let (Some(l), Some(c)) = (self.layers, self.init_channels) {
            rows.push(("network", format!("{l} cells x {c} initial channels")));
        }
        if let Some(s) = &self.search_space {
            rows.push(("search space", s.clone()));
        }
        if let Some((p, np)) = self.drop_rates {
            rows.push(("drop rates", format!("r_p {p:e}, r_np {np:e} (ops dropped with p = r^(1/4))")));
        }
        let state = if self.finished {
            "finished"
        } else if self.epochs_total.is_some_and(|t| u64::from(self.epochs_done) >= t) {
            "all epochs done"
        } else {
            "not finished"
        };
        let epochs = match self.epochs_total {
            Some(t) => format!("{} of {t} ({state})", self.epochs_done),
            None => format!("{} ({state})", self.epochs_done),
        };
        rows.push(("epochs", epochs));
        if let Some(t) = &self.last_train_terms {
            rows.push(("train loss terms", format!("{t} (last epoch)")));
        }
        if let Some(v) = self.last_train_top1 {
            rows.push(("train top-1", format!("{} (last epoch)", pct(v))));
        }
        if let Some((best, epoch)) = self.best_test_top1 {
            let at = epoch.map(|e| format!(" at epoch {e}")).unwrap_or_default();
            let last = self.last_test_top1.map(|v| format!(", last {}", pct(v))).unwrap_or_default();
            rows.push(("test top-1", format!("best {}{at}{last}", pct(best))));
        }
        if let Some(p) = self.params {
            rows.push(("model size", format!("{} without the auxiliary head", model_size(p as usize))));
        }
        if let Some(c) = self.flops {
            let per = match self.input_shape.as_deref() {
                Some([ch, h, w]) => format!(" per {ch}x{h}x{w} image"),
                _ => " per image".into(),
            };
            rows.push((
                "multiply-adds",
                format!(
                    "{}{per}, convolutions and linear layers ({} with BN, ReLU and pooling, as ptflops counts)",
                    dropnas_core::flops::human(c.macs),
                    dropnas_core::flops::human(c.ptflops())
                ),
            ));
        }
        if let Some(t) = self.elapsed_s {
            rows.push(("time", duration(t)));
        }
        if let Some(g) = &self.genotype {
            rows.push(("genotype", g.to_string()));
        }
        rows
    }

    /// The summary as JSON (accuracies as fractions, like the run's files).
    pub fn to_json(&self) -> Value {
        json!({
            "dir": self.dir.display().to_string(),
            "name": self.name,
            "kind": self.kind.as_str(),
            "dataset": self.dataset,
            "layers": self.layers,
            "init_channels": self.init_channels,
            "search_space": self.search_space,
            "drop_rate_param": self.drop_rates.map(|r| r.0),
            "drop_rate_nonparam": self.drop_rates.map(|r| r.1),
            "epochs_done": self.epochs_done,
            "epochs": self.epochs_total,
            "finished": self.finished,
            "last_train_top1": self.last_train_top1,
            "last_test_top1": self.last_test_top1,
            "best_test_top1": self.best_test_top1.map(|b| b.0),
            "best_epoch": self.best_test_top1.and_then(|b| b.1),
            "params_without_aux": self.params,
            "macs": self.flops.map(|c| c.macs),
            "elementwise": self.flops.map(|c| c.elementwise),
            "input_shape": self.input_shape,
            "elapsed_s": self.elapsed_s,
            "genotype": self.genotype.as_ref().map(|g| g.to_string()),
        })
    }

    /// Aligned `field  value` lines for the terminal.
    pub fn to_text(&self) -> String {
        let rows = self.rows();
        let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        rows.iter().map(|(k, v)| format!("{k:w$}  {v}\n")).collect()
    }
}

/// Which plots exist, to embed in `report.md` (paths relative to the run folder).
#[derive(Debug, Clone, Default)]
pub struct Embeds {
    pub cells: bool,
    pub curves: bool,
    pub alphas: bool,
    pub drop_freq: bool,
    pub collapse: bool,
    pub events: bool,
}

/// The text of `report.md`: the summary table, the genotype and its cells, the plots (SVG,
/// relative paths) and the configuration.
pub fn markdown(run: &RunData, s: &RunSummary, embeds: &Embeds) -> String {
    let mut md = format!("# `{}`: {} run\n\n", s.name, s.kind.as_str());
    md.push_str("| | |\n|---|---|\n");
    for (k, v) in s.rows() {
        if k == "genotype" || k == "run" {
            continue;
        }
        md.push_str(&format!("| {k} | {} |\n", v.replace('|', "\\|")));
    }
    if let Some(g) = &s.genotype {
        md.push_str("\n## Genotype\n\n```text\n");
        md.push_str(&g.to_string());
        md.push_str("\n```\n");
        if embeds.cells {
            md.push_str("\n![normal cell](plots/cell_normal.svg)\n\n![reduction cell](plots/cell_reduce.svg)\n");
            md.push_str(
                "\nGraphviz sources: [normal](plots/cell_normal.dot), [reduction](plots/cell_reduce.dot) \
                 (`dot -Tpng plots/cell_normal.dot -o normal.png`).\n",
            );
        }
    }
    if embeds.curves {
        md.push_str("\n## Training curves\n\n![training curves](plots/curves.svg)\n");
    }
    if embeds.alphas {
        md.push_str(
            "\n## Alphas\n\nSoftmax of each edge's alphas after every epoch, one panel per edge (row: the node, \
             column: the state it reads).\n\n![alphas](plots/alphas.svg)\n",
        );
    }
    if embeds.drop_freq {
        md.push_str(
            "\n## Operation dropout\n\nShare of the ops of each group dropped per epoch, against the expected \
             r^(1/4).\n\n![drop frequency](plots/drop_freq.svg)\n",
        );
    }
    if embeds.collapse {
        md.push_str(
            "\n## Collapse monitor\n\nSkip-connects and parameter-free ops in the cells derived after every epoch, \
             and how far the alphas are from uniform (a normal cell with 3 or more skip-connects, or more than half of \
             its ops parameter-free, is the known failure of one-level search: the log warns, and \
             `--max-skip-connects 2` derives with P-DARTS' rule).\n\n![collapse monitor](plots/collapse.svg)\n",
        );
    }
    if embeds.events {
        let live = run.dir.join(crate::tb::EVENTS_FILE).is_file();
        let parent = run.dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        md.push_str(&if live {
            format!(
                "\n## TensorBoard\n\n`tensorboard --logdir {}` shows this run as `{}` (its event file is in the run \
                 folder, written as the run goes).\n",
                parent.display(),
                s.name
            )
        } else {
            format!("\n## TensorBoard\n\n`tensorboard --logdir {}` (the scalars are in `tb/`).\n", run.dir.display())
        });
    }
    if let Some(c) = &run.config {
        md.push_str("\n## Configuration\n\n```json\n");
        md.push_str(&serde_json::to_string_pretty(c).unwrap_or_default());
        md.push_str("\n```\n");
    }
    md
}

/// One group of runs in a comparison (accuracies in %).
#[derive(Debug, Clone, PartialEq)]
pub struct CompareGroup {
    pub group: String,
    /// `(run folder, run name, best test top-1 %)`.
    pub runs: Vec<(PathBuf, String, f64)>,
    pub mean: f64,
    /// Sample standard deviation (n - 1); `None` for a single run.
    pub std: Option<f64>,
    pub best: f64,
}

/// The mean ± std table over groups of augment runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareTable {
    pub groups: Vec<CompareGroup>,
}

impl CompareTable {
    /// A Markdown table in the DropNAS README's format (`97.42±0.14`).
    pub fn to_markdown(&self) -> String {
        let mut s = String::from("| Run group | Runs | Avg Acc (%) | Best Acc (%) |\n|---|---|---|---|\n");
        for g in &self.groups {
            let avg = MeanStd::short_of(g.mean, g.std);
            s.push_str(&format!("| {} | {} | {avg} | {:.2} |\n", g.group, g.runs.len(), g.best));
        }
        s
    }

    pub fn to_json(&self) -> Value {
        json!({
            "groups": self.groups.iter().map(|g| json!({
                "group": g.group,
                "runs": g.runs.len(),
                "mean_top1": g.mean,
                "std_top1": g.std,
                "best_top1": g.best,
                "members": g.runs.iter().map(|(d, n, v)| json!({"dir": d.display().to_string(), "name": n, "best_top1": v})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>()
        })
    }
}

/// Whether a folder looks like a run folder.
fn is_run_dir(dir: &Path) -> bool {
    ["config.json", "metrics.jsonl", "summary.json"].iter().any(|f| dir.join(f).is_file())
}

/// Configuration keys that do not change what a run measures: runs that differ only in these are
/// repeats of one experiment.
const NOT_THE_EXPERIMENT: [&str; 10] = [
    "name",
    "seed",
    "out_dir",
    "data_dir",
    "workers",
    "download",
    "print_freq",
    "checkpoint_every",
    "max_steps",
    "resume",
];

/// Canonical JSON text (keys sorted) of `v`.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> =
                keys.iter().map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[k.as_str()]))).collect();
            format!("{{{}}}", items.join(","))
        }
        Value::Array(a) => format!("[{}]", a.iter().map(canonical).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

fn experiment_key(run: &RunData) -> String {
    match &run.config {
        Some(Value::Object(m)) => {
            let mut m = m.clone();
            for k in NOT_THE_EXPERIMENT {
                m.remove(k);
            }
            canonical(&Value::Object(m))
        }
        _ => format!("dir:{}", run.dir.display()),
    }
}

/// The name of a group of runs: the common start of their names, cut at a separator (`c10-s1`,
/// `c10-s2` -> `c10`).
pub fn group_name(names: &[String]) -> String {
    let Some(first) = names.first() else { return String::new() };
    if names.len() == 1 {
        return first.clone();
    }
    let mut len = first.len();
    for n in &names[1..] {
        len = len.min(first.bytes().zip(n.bytes()).take_while(|(a, b)| a == b).count());
    }
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    let prefix = &first[..len];
    let is_sep = |c: char| "-_. ".contains(c);
    // Cut back to a separator if the common start ends inside a word that goes on in some name.
    let mid_word = names.iter().any(|n| n[len..].chars().next().is_some_and(|c| !is_sep(c)))
        && prefix.chars().last().is_some_and(|c| !is_sep(c));
    let cut = if mid_word { prefix.rfind(is_sep).map(|i| &prefix[..i]).unwrap_or(prefix) } else { prefix };
    let cut = cut.trim_end_matches(is_sep);
    if cut.is_empty() { names.join(", ") } else { cut.to_string() }
}

/// Builds the table over `dirs`: each is an augment run folder, or a folder of run folders (its
/// augment runs are taken, other folders skipped). Runs whose configurations differ only in the
/// name, the seed and such (see [`NOT_THE_EXPERIMENT`]) form one group; groups keep the order in
/// which they first appear.
pub fn compare(dirs: &[PathBuf]) -> Result<CompareTable, ReportError> {
    let mut runs: Vec<(RunData, f64)> = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(ReportError::NotARun { path: dir.clone(), why: "no such folder".into() });
        }
        if is_run_dir(dir) {
            let run = RunData::load(dir)?;
            let best = augment_best(&run).map_err(|why| ReportError::WrongRun { path: dir.clone(), why })?;
            runs.push((run, best));
            continue;
        }
        let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| ReportError::Io { path: dir.clone(), source })?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir() && is_run_dir(p))
            .collect();
        subs.sort();
        let before = runs.len();
        for sub in subs {
            let run = RunData::load(&sub)?;
            if let Ok(best) = augment_best(&run) {
                runs.push((run, best));
            }
        }
        if runs.len() == before {
            return Err(ReportError::WrongRun {
                path: dir.clone(),
                why: "neither an augment run folder nor a folder of augment runs with a tested epoch".into(),
            });
        }
    }
    let mut groups: Vec<(String, Vec<(RunData, f64)>)> = Vec::new();
    for (run, best) in runs {
        let key = experiment_key(&run);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, g)) => g.push((run, best)),
            None => groups.push((key, vec![(run, best)])),
        }
    }
    let groups = groups
        .into_iter()
        .map(|(_, members)| {
            let names: Vec<String> = members.iter().map(|(r, _)| r.name()).collect();
            let vals: Vec<f64> = members.iter().map(|(_, b)| 100.0 * b).collect();
            // a group has at least one run
            let stats = MeanStd::of(&vals).expect("a group has runs");
            CompareGroup {
                group: group_name(&names),
                runs: members.iter().map(|(r, b)| (r.dir.clone(), r.name(), 100.0 * b)).collect(),
                mean: stats.mean,
                std: stats.std,
                best: stats.max,
            }
        })
        .collect();
    Ok(CompareTable { groups })
}

fn augment_best(run: &RunData) -> Result<f64, String> {
    if run.kind != RunKind::Augment {
        return Err("a search run; --compare takes augment runs (they have a test accuracy)".into());
    }
    run.best_top1().map(|(b, _)| b).ok_or_else(|| "an augment run with no tested epoch yet".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_cut_at_separators() {
        let g = |v: &[&str]| group_name(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(g(&["c10-s1", "c10-s2"]), "c10");
        assert_eq!(g(&["dropnas_seed1", "dropnas_seed22"]), "dropnas");
        assert_eq!(g(&["c10"]), "c10");
        assert_eq!(g(&["run1", "run2"]), "run");
        assert_eq!(g(&["a", "b"]), "a, b");
        assert_eq!(g(&["x-1", "x-2", "x"]), "x");
    }

    #[test]
    fn durations_and_counts_read_well() {
        assert_eq!(duration(6.24), "6.2s");
        assert_eq!(duration(245.0), "4m 05s");
        assert_eq!(duration(3723.0), "1h 02m 03s");
        assert_eq!(thousands(3815482), "3,815,482");
        assert_eq!(thousands(999), "999");
    }
}
