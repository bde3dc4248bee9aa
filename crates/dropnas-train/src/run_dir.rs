//! A run folder (`searchs/NAME`, `augments/NAME`): the resolved configuration, a human log,
//! `metrics.jsonl`, and the checkpoint. Everything in it is a file a person can open.

use serde_json::Value;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("run folder {0} already holds a run (checkpoint.ckpt); continue it with --resume, or pick another --name")]
    Exists(PathBuf),
    #[error("--resume: no checkpoint in {0}; start the run without --resume")]
    NothingToResume(PathBuf),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |source| RunDirError::Io { path: path.to_path_buf(), source }
}

pub struct RunDir {
    pub root: PathBuf,
    pub name: String,
    log: Mutex<File>,
    metrics: Mutex<File>,
}

pub const CHECKPOINT: &str = "checkpoint.ckpt";

impl RunDir {
    /// Opens `out_dir/name`. A new run refuses a folder that already holds a checkpoint; a
    /// resumed run requires one.
    pub fn open(out_dir: &Path, name: &str, resume: bool) -> Result<Self, RunDirError> {
        let root = out_dir.join(name);
        let has_ckpt = root.join(CHECKPOINT).is_file();
        if resume && !has_ckpt {
            return Err(RunDirError::NothingToResume(root));
        }
        if !resume && has_ckpt {
            return Err(RunDirError::Exists(root));
        }
        fs::create_dir_all(&root).map_err(io(&root))?;
        let log_path = root.join(format!("{name}.log"));
        let log = OpenOptions::new().create(true).append(true).open(&log_path).map_err(io(&log_path))?;
        let m_path = root.join("metrics.jsonl");
        if !resume {
            File::create(&m_path).map_err(io(&m_path))?;
        }
        let metrics = OpenOptions::new().create(true).append(true).open(&m_path).map_err(io(&m_path))?;
        Ok(Self { root, name: name.to_string(), log: Mutex::new(log), metrics: Mutex::new(metrics) })
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.root.join(file)
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.path(CHECKPOINT)
    }

    /// Appends a timestamped line to the human log (the console gets it through tracing).
    pub fn log(&self, line: &str) {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        if let Ok(mut f) = self.log.lock() {
            let _ = writeln!(f, "{stamp} | {line}");
        }
    }

    /// Appends one JSON object to `metrics.jsonl`.
    pub fn metric(&self, value: &Value) -> Result<(), RunDirError> {
        let path = self.path("metrics.jsonl");
        let mut f = self.metrics.lock().expect("metrics lock");
        writeln!(f, "{value}").map_err(io(&path))?;
        f.flush().map_err(io(&path))
    }

    /// On resume: drops the metric lines written after the checkpoint (they will be written
    /// again), keeping those for which `keep` is true.
    pub fn truncate_metrics(&self, keep: impl Fn(&Value) -> bool) -> Result<(), RunDirError> {
        let path = self.path("metrics.jsonl");
        let file = File::open(&path).map_err(io(&path))?;
        let kept: Vec<String> = BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter(|l| serde_json::from_str::<Value>(l).map(|v| keep(&v)).unwrap_or(false))
            .collect();
        let mut text = kept.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        write_atomic(&path, text.as_bytes())?;
        let mut f = self.metrics.lock().expect("metrics lock");
        *f = OpenOptions::new().append(true).open(&path).map_err(io(&path))?;
        Ok(())
    }

    /// Writes a whole file atomically.
    pub fn write(&self, file: &str, bytes: &[u8]) -> Result<(), RunDirError> {
        write_atomic(&self.path(file), bytes)
    }

    pub fn write_json(&self, file: &str, value: &Value) -> Result<(), RunDirError> {
        let text = serde_json::to_string_pretty(value).expect("JSON of a JSON value") + "\n";
        self.write(file, text.as_bytes())
    }
}

/// Writes a temporary file beside `path`, then renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunDirError> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(path)(e)
    })
}

impl RunDir {
    /// A line for both the console (through tracing, above any progress bar) and the log file.
    pub fn say(&self, bar: &indicatif::ProgressBar, msg: &str) {
        bar.suspend(|| tracing::info!("{msg}"));
        self.log(msg);
    }

    /// On resume: keeps the step lines before global step `next_global_step` and the epoch lines
    /// before epoch `next_epoch` (1-based epochs in the file, so `epoch < next_epoch + 1`).
    pub fn truncate_metrics_at(&self, next_epoch: usize, next_global_step: usize) -> Result<(), RunDirError> {
        self.truncate_metrics(|v| match v["kind"].as_str() {
            Some("step") => v["global_step"].as_u64().is_some_and(|s| (s as usize) < next_global_step),
            Some("epoch") => v["epoch"].as_u64().is_some_and(|e| (e as usize) <= next_epoch),
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resume_keeps_exactly_the_metrics_before_the_checkpoint() {
        let out = std::env::temp_dir().join(format!("dropnas-rundir-{}", std::process::id()));
        let run = RunDir::open(&out, "r", false).unwrap();
        // epoch 1: global steps 0..3, then its epoch line; epoch 2: steps 3, 4 (after the checkpoint)
        for g in 0..3 {
            run.metric(&json!({"kind": "step", "epoch": 1, "global_step": g})).unwrap();
        }
        run.metric(&json!({"kind": "epoch", "epoch": 1})).unwrap();
        for g in 3..5 {
            run.metric(&json!({"kind": "step", "epoch": 2, "global_step": g})).unwrap();
        }
        // a checkpoint at the end of epoch 1 (next epoch index 1, next global step 3)
        run.truncate_metrics_at(1, 3).unwrap();
        run.metric(&json!({"kind": "step", "epoch": 2, "global_step": 3})).unwrap();
        let text = std::fs::read_to_string(run.path("metrics.jsonl")).unwrap();
        let kinds: Vec<(String, u64)> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| {
                (
                    v["kind"].as_str().unwrap().to_string(),
                    v["global_step"].as_u64().unwrap_or(100 + v["epoch"].as_u64().unwrap()),
                )
            })
            .collect();
        let want: Vec<(String, u64)> = [("step", 0), ("step", 1), ("step", 2), ("epoch", 101), ("step", 3)]
            .iter()
            .map(|(k, g)| (k.to_string(), *g))
            .collect();
        assert_eq!(kinds, want);
        // a second run into the same folder is refused; resuming without a checkpoint too
        std::fs::write(run.checkpoint_path(), b"x").unwrap();
        assert!(matches!(RunDir::open(&out, "r", false), Err(RunDirError::Exists(_))));
        assert!(matches!(RunDir::open(&out, "s", true), Err(RunDirError::NothingToResume(_))));
        std::fs::remove_dir_all(&out).unwrap();
    }
}
