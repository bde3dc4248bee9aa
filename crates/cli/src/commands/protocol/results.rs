//! `results.json` and `results.md` of a protocol: per genotype the mean ± std of the best test
//! top-1 over its retrainings, over all retrainings the mean ± std and the best run, the
//! parameter counts, and the search and retraining times. Only finished runs count.

use super::manifest::{Manifest, RunState};
use dropnas_data::Dataset;
use dropnas_report::report::{duration, thousands};
use dropnas_report::{MeanStd, RunData};
use dropnas_train::run::folder::write_atomic;
use dropnas_train::run::lines::RunKind;
use dropnas_train::run::name::RunName;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const RESULTS_JSON: &str = "results.json";
pub const RESULTS_MD: &str = "results.md";

/// What the accuracies are.
const METRIC: &str = "best test top-1 (%) of each retraining over its epochs (what the original reports)";

/// A retraining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retraining {
    pub name: RunName,
    pub augment_seed: u64,
    pub state: RunState,
    /// Best test top-1 over the epochs, %.
    pub best_top1: Option<f64>,
    pub best_epoch: Option<u32>,
    /// Test top-1 after the last epoch, %.
    pub final_top1: Option<f64>,
    pub time_s: Option<f64>,
}

/// A search, its genotype and its retrainings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenotypeResult {
    pub search: RunName,
    pub search_seed: u64,
    pub state: RunState,
    pub genotype: Option<String>,
    /// Trainable weights of the supernet.
    pub supernet_params: Option<u64>,
    /// Parameters of the retrained network without the auxiliary head.
    pub params_without_aux: Option<u64>,
    pub search_time_s: Option<f64>,
    pub retrainings: Vec<Retraining>,
    /// Over the finished retrainings.
    pub top1: Option<MeanStd>,
    /// Sum over the finished retrainings.
    pub retrain_time_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestRun {
    pub name: RunName,
    pub search: RunName,
    pub top1: f64,
    pub genotype: Option<String>,
}

/// `results.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub protocol: RunName,
    pub dataset: Dataset,
    pub metric: String,
    pub runs_total: usize,
    pub runs_done: usize,
    pub genotypes: Vec<GenotypeResult>,
    /// Over every finished retraining.
    pub overall: Option<MeanStd>,
    pub best: Option<BestRun>,
    /// Sums over the finished runs.
    pub search_time_s: f64,
    pub retrain_time_s: f64,
}

/// The results of the finished runs of `manifest` (states as refreshed).
pub fn collect(dir: &Path, manifest: &Manifest) -> Results {
    let load = |folder: &Path| RunData::load(&dir.join(folder)).ok();
    let mut genotypes = Vec::new();
    for s in manifest.runs.iter().filter(|e| e.run.kind == RunKind::Search) {
        let search = if s.state == RunState::Done { load(&s.run.folder) } else { None };
        let mut retrainings = Vec::new();
        let mut params_without_aux = None;
        for a in manifest.runs.iter().filter(|e| e.run.after.as_ref() == Some(&s.run.name)) {
            let data = if a.state == RunState::Done { load(&a.run.folder) } else { None };
            let best = data.as_ref().and_then(RunData::best_top1);
            params_without_aux = params_without_aux.or(data.as_ref().and_then(|d| d.params));
            retrainings.push(Retraining {
                name: a.run.name.clone(),
                augment_seed: a.run.augment_seed.unwrap_or_default(),
                state: a.state,
                best_top1: best.map(|b| 100.0 * b.0),
                best_epoch: best.and_then(|b| b.1),
                final_top1: data
                    .as_ref()
                    .and_then(|d| d.metrics.epochs.last())
                    .and_then(|e| e.val_top1)
                    .map(|v| 100.0 * v),
                time_s: data.as_ref().and_then(RunData::elapsed_s),
            });
        }
        let finished: Vec<f64> = retrainings.iter().filter_map(|r| r.best_top1).collect();
        genotypes.push(GenotypeResult {
            search: s.run.name.clone(),
            search_seed: s.run.search_seed,
            state: s.state,
            genotype: search.as_ref().and_then(|d| d.genotype.as_ref()).map(|g| g.to_string()),
            supernet_params: search.as_ref().and_then(|d| d.summary.as_ref()).and_then(|s| s.params),
            params_without_aux,
            search_time_s: search.as_ref().and_then(RunData::elapsed_s),
            top1: MeanStd::of(&finished),
            retrain_time_s: retrainings.iter().filter_map(|r| r.time_s).sum(),
            retrainings,
        });
    }
    let all: Vec<(&GenotypeResult, &Retraining, f64)> = genotypes
        .iter()
        .flat_map(|g| g.retrainings.iter().filter_map(move |r| r.best_top1.map(|v| (g, r, v))))
        .collect();
    let values: Vec<f64> = all.iter().map(|(_, _, v)| *v).collect();
    // the first of equals, in the plan's order
    let best = all.iter().fold(None::<&(&GenotypeResult, &Retraining, f64)>, |b, x| match b {
        Some(b) if b.2 >= x.2 => Some(b),
        _ => Some(x),
    });
    Results {
        protocol: manifest.name.clone(),
        dataset: manifest.dataset,
        metric: METRIC.into(),
        runs_total: manifest.runs.len(),
        runs_done: manifest.count(RunState::Done),
        overall: MeanStd::of(&values),
        best: best.map(|(g, r, v)| BestRun {
            name: r.name.clone(),
            search: g.search.clone(),
            top1: *v,
            genotype: g.genotype.clone(),
        }),
        search_time_s: genotypes.iter().filter_map(|g| g.search_time_s).sum(),
        retrain_time_s: genotypes.iter().map(|g| g.retrain_time_s).sum(),
        genotypes,
    }
}

impl Results {
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let mut json = serde_json::to_vec_pretty(self).expect("results are JSON");
        json.push(b'\n');
        write_atomic(&dir.join(RESULTS_JSON), &json).map_err(std::io::Error::other)?;
        write_atomic(&dir.join(RESULTS_MD), self.to_markdown().as_bytes()).map_err(std::io::Error::other)
    }

    pub fn to_markdown(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "–".into());
        let pct = |v: Option<f64>| opt(v.map(|v| format!("{v:.2}")));
        let time = |v: Option<f64>| opt(v.map(duration));
        let params = |v: Option<u64>| opt(v.map(thousands));
        let retrainings: usize = self.genotypes.iter().map(|g| g.retrainings.len()).sum();
        let mut md = format!(
            "# Protocol `{}`: {} searches on {}, {retrainings} retrainings\n\n{} of {} runs done. Accuracies: {}; \
             mean ± sample std (n - 1).\n\n",
            self.protocol,
            self.genotypes.len(),
            self.dataset.display_name(),
            self.runs_done,
            self.runs_total,
            self.metric
        );
        match &self.overall {
            Some(o) => {
                md.push_str(&format!(
                    "**Over all retrainings: {}** (n = {}; population std {:.2}, as the original's start.py \
                     printed it)",
                    o.short(),
                    o.n,
                    o.std_population
                ));
                if let Some(b) = &self.best {
                    md.push_str(&format!(", **best {:.2}** (`{}`)", b.top1, b.name));
                }
                md.push_str(".\n\n");
            }
            None => md.push_str("No retraining has finished yet.\n\n"),
        }
        md.push_str(&format!(
            "Time: searches {}, retrainings {} (summed over the finished runs).\n\n",
            duration(self.search_time_s),
            duration(self.retrain_time_s)
        ));
        md.push_str(
            "| genotype (search) | search seed | retrainings done | top-1 mean ± std | best | parameters \
             (no aux head) | supernet parameters | search time | retraining time |\n|---|---|---|---|---|---|---|---|---|\n",
        );
        for g in &self.genotypes {
            let done = g.retrainings.iter().filter(|r| r.state == RunState::Done).count();
            md.push_str(&format!(
                "| `{}` ({}) | {} | {done} of {} | {} | {} | {} | {} | {} | {} |\n",
                g.search,
                g.state.as_str(),
                g.search_seed,
                g.retrainings.len(),
                opt(g.top1.map(|t| t.short())),
                pct(g.top1.map(|t| t.max)),
                params(g.params_without_aux),
                params(g.supernet_params),
                time(g.search_time_s),
                time((done > 0).then_some(g.retrain_time_s)),
            ));
        }
        md.push_str("\n## Retrainings\n\n| run | augment seed | state | best top-1 | at epoch | final top-1 | time |\n|---|---|---|---|---|---|---|\n");
        for r in self.genotypes.iter().flat_map(|g| &g.retrainings) {
            md.push_str(&format!(
                "| `{}` | {} | {} | {} | {} | {} | {} |\n",
                r.name,
                r.augment_seed,
                r.state.as_str(),
                pct(r.best_top1),
                opt(r.best_epoch.map(|e| e.to_string())),
                pct(r.final_top1),
                time(r.time_s)
            ));
        }
        md.push_str("\n## Genotypes\n\n");
        for g in &self.genotypes {
            md.push_str(&format!("- `{}`: ", g.search));
            match &g.genotype {
                Some(text) => md.push_str(&format!("`{text}`\n")),
                None => md.push_str("not found yet\n"),
            }
        }
        md
    }
}
