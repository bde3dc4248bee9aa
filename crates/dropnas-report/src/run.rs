//! Reading a run folder (`searchs/NAME`, `augments/NAME`): `config.json`, `metrics.jsonl`,
//! `alphas.jsonl`, `summary.json`, `genotype.txt` and the log, as the search and augment loops
//! write them.
//!
//! A run in progress is read as it is: files that are not there yet are `None` or empty, and a
//! last line of a JSON-lines file that is cut short (a writer caught mid-line) is ignored. Any
//! other malformed line is an error that names the file and the line.

use crate::ReportError;
use dropnas_core::genotype::{Genotype, text};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub use dropnas_train::run::lines::{AlphaLine, EpochLine, MetricLine, RunKind, StepLine, Summary};

/// `metrics.jsonl`, split by kind, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metrics {
    pub steps: Vec<StepLine>,
    pub epochs: Vec<EpochLine>,
}

impl Metrics {
    /// Parses the text of a `metrics.jsonl` (`path` is for error messages).
    pub fn parse(text: &str, path: &Path) -> Result<Metrics, ReportError> {
        let mut m = Metrics::default();
        for (n, line) in json_lines(text) {
            match serde_json::from_str::<MetricLine>(line) {
                Ok(MetricLine::Step(s)) => m.steps.push(s),
                Ok(MetricLine::Epoch(e)) => m.epochs.push(e),
                // Lines of other kinds are for other readers.
                Ok(MetricLine::Other) => {}
                Err(_) if is_cut_short(text, line) => break,
                Err(e) => return Err(malformed(path, n, e.to_string())),
            }
        }
        Ok(m)
    }

    /// Steps per epoch, from the step lines (the largest step index + 1); `None` without steps.
    pub fn steps_per_epoch(&self) -> Option<u64> {
        self.steps.iter().map(|s| s.step + 1).max()
    }

    /// Whether the epoch lines are an augment run's (they have test-set accuracy).
    pub fn has_validation(&self) -> bool {
        self.epochs.iter().any(|e| e.val_top1.is_some())
    }
}

/// Parses the text of an `alphas.jsonl`.
pub fn parse_alphas(text: &str, path: &Path) -> Result<Vec<AlphaLine>, ReportError> {
    let mut out: Vec<AlphaLine> = Vec::new();
    for (n, line) in json_lines(text) {
        let a: AlphaLine = match serde_json::from_str(line) {
            Ok(a) => a,
            Err(_) if is_cut_short(text, line) => break,
            Err(e) => return Err(malformed(path, n, e.to_string())),
        };
        for (name, rows) in [("normal", &a.normal), ("reduce", &a.reduce)] {
            if let Some(r) = rows.iter().find(|r| r.len() != a.ops.len()) {
                return Err(malformed(
                    path,
                    n,
                    format!("a `{name}` row has {} values for {} ops", r.len(), a.ops.len()),
                ));
            }
        }
        if let Some(first) = out.first()
            && (first.ops != a.ops || first.normal.len() != a.normal.len() || first.reduce.len() != a.reduce.len())
        {
            return Err(malformed(path, n, "the ops or the number of edges change between lines".into()));
        }
        out.push(a);
    }
    Ok(out)
}

/// Everything of a run folder the report uses.
#[derive(Debug, Clone)]
pub struct RunData {
    pub dir: PathBuf,
    pub kind: RunKind,
    /// `config.json`, if there is one.
    pub config: Option<Value>,
    pub metrics: Metrics,
    pub alphas: Vec<AlphaLine>,
    pub summary: Option<Summary>,
    /// The current genotype: `genotype.txt`, else `summary.json`'s, else the last epoch line's,
    /// else `config.json`'s (augment).
    pub genotype: Option<Genotype>,
    /// Start of the run as UNIX seconds, from the first line of the human log.
    pub started_unix_s: Option<f64>,
    /// Parameter count without the auxiliary head (augment): `summary.json` or the log.
    pub params: Option<u64>,
}

impl RunData {
    /// Reads a run folder. Errors: the folder does not exist or holds none of the files of a
    /// run; a file is malformed.
    pub fn load(dir: &Path) -> Result<RunData, ReportError> {
        if !dir.is_dir() {
            return Err(ReportError::NotARun { path: dir.to_path_buf(), why: "no such folder".into() });
        }
        let config = read_json(&dir.join("config.json"))?;
        let summary: Option<Summary> = read_json(&dir.join("summary.json"))?
            .map(|v| {
                serde_json::from_value(v).map_err(|e| ReportError::Malformed {
                    path: dir.join("summary.json"),
                    line: None,
                    detail: e.to_string(),
                })
            })
            .transpose()?;
        let metrics_path = dir.join("metrics.jsonl");
        let metrics = match read_opt(&metrics_path)? {
            Some(t) => Metrics::parse(&t, &metrics_path)?,
            None => Metrics::default(),
        };
        let alphas_path = dir.join("alphas.jsonl");
        let alphas = match read_opt(&alphas_path)? {
            Some(t) => parse_alphas(&t, &alphas_path)?,
            None => Vec::new(),
        };
        if config.is_none() && summary.is_none() && metrics.steps.is_empty() && metrics.epochs.is_empty() {
            return Err(ReportError::NotARun {
                path: dir.to_path_buf(),
                why: "it has none of config.json, metrics.jsonl, summary.json".into(),
            });
        }
        let kind = detect_kind(config.as_ref(), &metrics, &alphas);
        let genotype = find_genotype(dir, config.as_ref(), summary.as_ref(), &metrics)?;
        let log = find_log(dir, config.as_ref());
        let log_text = log.as_ref().and_then(|p| std::fs::read_to_string(p).ok());
        let started_unix_s = log_text.as_deref().and_then(first_log_time);
        let params = summary
            .as_ref()
            .and_then(|s| s.params_without_aux)
            .or_else(|| log_text.as_deref().and_then(params_from_log));
        Ok(RunData { dir: dir.to_path_buf(), kind, config, metrics, alphas, summary, genotype, started_unix_s, params })
    }

    /// The run's name: `config.json`'s, else the folder's.
    pub fn name(&self) -> String {
        self.config
            .as_ref()
            .and_then(|c| c["name"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| self.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
    }

    /// A configuration value, if set.
    pub fn config_value(&self, key: &str) -> Option<&Value> {
        self.config.as_ref().and_then(|c| c.get(key)).filter(|v| !v.is_null())
    }

    /// Best test top-1 (fraction) of an augment run: `summary.json`, else the epoch lines.
    pub fn best_top1(&self) -> Option<(f64, Option<u32>)> {
        let from_epochs = self.metrics.epochs.iter().filter_map(|e| e.val_top1.map(|v| (v, e.epoch))).fold(
            None,
            |best: Option<(f64, u32)>, (v, e)| match best {
                Some((b, _)) if b >= v => best,
                _ => Some((v, e)),
            },
        );
        match (self.summary.as_ref().and_then(|s| s.best_top1), from_epochs) {
            (Some(s), Some((v, e))) if (s - v).abs() < 1e-12 => Some((s, Some(e))),
            (Some(s), _) => Some((s, None)),
            (None, Some((v, e))) => Some((v, Some(e))),
            (None, None) => None,
        }
    }

    /// Elapsed seconds: `summary.json`, else the last metrics line.
    pub fn elapsed_s(&self) -> Option<f64> {
        let last_epoch = self.metrics.epochs.last().and_then(|e| e.time_s);
        self.summary.as_ref().and_then(|s| s.elapsed_s).or(last_epoch)
    }
}

fn detect_kind(config: Option<&Value>, metrics: &Metrics, alphas: &[AlphaLine]) -> RunKind {
    if let Some(c) = config {
        if c.get("genotype").is_some_and(|g| !g.is_null()) {
            return RunKind::Augment;
        }
        if c.get("drop_rate_param").is_some() || c.get("search_space").is_some() {
            return RunKind::Search;
        }
    }
    if metrics.has_validation() {
        return RunKind::Augment;
    }
    if !alphas.is_empty() || metrics.epochs.iter().any(|e| e.drop_freq_param.is_some()) {
        return RunKind::Search;
    }
    RunKind::Augment
}

fn find_genotype(
    dir: &Path,
    config: Option<&Value>,
    summary: Option<&Summary>,
    metrics: &Metrics,
) -> Result<Option<Genotype>, ReportError> {
    let file = dir.join("genotype.txt");
    if let Some(t) = read_opt(&file)? {
        return text::parse(&t).map(Some).map_err(|e| ReportError::Malformed {
            path: file,
            line: None,
            detail: e.to_string(),
        });
    }
    let texts = [
        summary.and_then(|s| s.genotype.as_deref()).map(|t| (t, dir.join("summary.json"))),
        metrics.epochs.last().and_then(|e| e.genotype.as_deref()).map(|t| (t, dir.join("metrics.jsonl"))),
    ];
    if let Some((t, path)) = texts.into_iter().flatten().next() {
        return text::parse(t).map(Some).map_err(|e| ReportError::Malformed {
            path,
            line: None,
            detail: format!("genotype: {e}"),
        });
    }
    if let Some(g) = config.and_then(|c| c.get("genotype")).filter(|g| !g.is_null()) {
        // The augment loop saves the genotype as serde writes it; older hand-made configs may
        // hold the text form.
        if let Some(t) = g.as_str() {
            return text::parse(t).map(Some).map_err(|e| ReportError::Malformed {
                path: dir.join("config.json"),
                line: None,
                detail: format!("genotype: {e}"),
            });
        }
        return serde_json::from_value(g.clone()).map(Some).map_err(|e| ReportError::Malformed {
            path: dir.join("config.json"),
            line: None,
            detail: format!("genotype: {e}"),
        });
    }
    Ok(None)
}

fn find_log(dir: &Path, config: Option<&Value>) -> Option<PathBuf> {
    if let Some(name) = config.and_then(|c| c["name"].as_str()) {
        let p = dir.join(format!("{name}.log"));
        if p.is_file() {
            return Some(p);
        }
    }
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.into_iter().next()
}

/// The time stamp of the log's first line (`2026-01-02T03:04:05Z | ...`) as UNIX seconds.
fn first_log_time(log: &str) -> Option<f64> {
    let stamp = log.lines().next()?.split(" | ").next()?.trim();
    parse_rfc3339_utc(stamp)
}

/// `YYYY-MM-DDTHH:MM:SS[.frac]Z` as UNIX seconds.
pub(crate) fn parse_rfc3339_utc(s: &str) -> Option<f64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':');
    let (hh, mm): (i64, i64) = (t.next()?.parse().ok()?, t.next()?.parse().ok()?);
    let ss: f64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + hh * 3600 + mm * 60) as f64 + ss)
}

/// `... (3815482 parameters without the auxiliary head)` in an augment log.
fn params_from_log(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| {
        let head = l.split(" parameters without the auxiliary head").next().filter(|h| h.len() < l.len())?;
        head.rsplit(['(', ' ']).next()?.replace(',', "").parse().ok()
    })
}

/// Non-empty lines with their 1-based numbers.
fn json_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty())
}

/// Whether `line` is the last line of `text` and has no newline after it: a line being written.
fn is_cut_short(text: &str, line: &str) -> bool {
    !text.ends_with('\n') && text.trim_end().ends_with(line)
}

fn malformed(path: &Path, line: usize, detail: String) -> ReportError {
    ReportError::Malformed { path: path.to_path_buf(), line: Some(line), detail }
}

fn read_opt(path: &Path) -> Result<Option<String>, ReportError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
            Err(ReportError::Malformed { path: path.to_path_buf(), line: None, detail: "not UTF-8 text".into() })
        }
        Err(source) => Err(ReportError::Io { path: path.to_path_buf(), source }),
    }
}

fn read_json(path: &Path) -> Result<Option<Value>, ReportError> {
    read_opt(path)?
        .map(|t| {
            serde_json::from_str(&t).map_err(|e| ReportError::Malformed {
                path: path.to_path_buf(),
                line: Some(e.line()),
                detail: e.to_string(),
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_stamps_convert_to_unix_seconds() {
        assert_eq!(parse_rfc3339_utc("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339_utc("2000-03-01T00:00:01Z"), Some(951868801.0));
        assert_eq!(parse_rfc3339_utc("2024-02-29T12:30:00Z"), Some(1709209800.0));
        assert_eq!(parse_rfc3339_utc("2024-02-29 12:30:00"), None);
    }

    #[test]
    fn params_are_found_in_the_augment_log() {
        let log = "2026-01-01T00:00:00Z | genotype = x\n\
                   2026-01-01T00:00:00Z | Model size = 3.639 MB (3815482 parameters without the auxiliary head)\n";
        assert_eq!(params_from_log(log), Some(3815482));
        let log = "2026-01-01T00:00:00Z | Model size = 3.639 MB (3,815,482 parameters without the auxiliary head)\n";
        assert_eq!(params_from_log(log), Some(3815482));
        assert_eq!(params_from_log("nothing"), None);
    }

    #[test]
    fn a_line_cut_short_at_the_end_is_ignored_but_not_elsewhere() {
        let p = Path::new("metrics.jsonl");
        let ok =
            "{\"kind\":\"step\",\"epoch\":1,\"step\":0,\"global_step\":0,\"loss\":2.0,\"top1\":0.1}\n{\"kind\":\"st";
        assert_eq!(Metrics::parse(ok, p).unwrap().steps.len(), 1);
        let bad =
            "{\"kind\":\"st\n{\"kind\":\"step\",\"epoch\":1,\"step\":0,\"global_step\":0,\"loss\":2.0,\"top1\":0.1}\n";
        let e = Metrics::parse(bad, p).unwrap_err().to_string();
        assert!(e.contains("metrics.jsonl line 1"), "{e}");
        let missing = "{\"kind\":\"step\",\"epoch\":1,\"step\":0,\"loss\":2.0,\"top1\":0.1}\n";
        assert!(Metrics::parse(missing, p).unwrap_err().to_string().contains("global_step"));
    }
}
