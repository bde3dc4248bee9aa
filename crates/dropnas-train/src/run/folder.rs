//! A run folder (`searchs/NAME`, `augments/NAME`): held by one process at a time, written only
//! through files it owns (never through a symbolic link), every whole file replaced atomically.
//! Everything in it is a file a person can open.

use crate::run::lines::MetricLine;
use crate::run::name::RunName;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub const CHECKPOINT: &str = "checkpoint.ckpt";
pub const BEST: &str = "best.ckpt";
pub const CONFIG: &str = "config.json";
pub const METRICS: &str = "metrics.jsonl";
const LOCK: &str = ".lock";
/// What a temporary file's name contains (`checkpoint.ckpt.tmp-1234`).
const TMP_MARK: &str = ".tmp-";

#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error("run folder {0} already holds a run (checkpoint.ckpt); continue it with --resume, or pick another --name")]
    Exists(PathBuf),
    #[error("--resume: no checkpoint in {0}; start the run without --resume")]
    NothingToResume(PathBuf),
    #[error(
        "run folder {path} is in use by another dropnas process{}; wait for it to finish (or stop it), \
         or pick another --name",
        pid.map(|p| format!(" (PID {p})")).unwrap_or_default()
    )]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("{0} is a symbolic link; a run folder and the files in it must be real: remove the link")]
    Symlink(PathBuf),
    #[error("{0} exists and is not a folder; pick another --name or --out-dir")]
    NotAFolder(PathBuf),
    #[error("permission denied: {path} ({source}); fix its permissions or use another --out-dir")]
    Permission { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> FolderError {
    match source.kind() {
        std::io::ErrorKind::PermissionDenied => FolderError::Permission { path: path.to_path_buf(), source },
        // O_NOFOLLOW on a link
        _ if source.raw_os_error() == Some(libc::ELOOP) => FolderError::Symlink(path.to_path_buf()),
        _ => FolderError::Io { path: path.to_path_buf(), source },
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FolderError + '_ {
    move |source| io_error(path, source)
}

/// Opens `path` for reading, refusing a symbolic link.
pub fn open_nofollow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Creates `path`, which must not exist yet (so no planted file or link is written through).
pub fn create_exclusive(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().write(true).create_new(true).custom_flags(libc::O_NOFOLLOW).open(path)
}

fn append_nofollow(path: &Path, truncate: bool) -> std::io::Result<File> {
    let f = OpenOptions::new().create(true).append(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
    if truncate {
        f.set_len(0)?;
    }
    Ok(f)
}

/// The temporary file beside `path` that an atomic write goes through.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!("{name}{TMP_MARK}{}", std::process::id()))
}

/// Writes `bytes` to a new temporary file beside `path`, flushes it, then renames it over
/// `path` (a link at `path` is replaced, not followed).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), FolderError> {
    let tmp = temp_path(path);
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut f = create_exclusive(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io_error(path, e)
    })
}

/// Whether a folder holds a new run or continues the one in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    Fresh,
    Resume,
}

/// An open run folder: the lock is held until it is dropped (or the process dies: the kernel
/// releases it, so a killed run never blocks the next one).
pub struct RunFolder {
    pub root: PathBuf,
    pub name: RunName,
    /// Whether this invocation made the folder (it is removed again if the run fails before
    /// its first step).
    created: bool,
    _lock: File,
    log: Mutex<File>,
    metrics: Mutex<File>,
}

impl RunFolder {
    /// Opens `out_dir/name` and takes its lock. A new run refuses a folder that already holds a
    /// checkpoint; a resumed run requires one. Temporary files left by killed writes are removed.
    pub fn open(out_dir: &Path, name: &RunName, mode: OpenMode) -> Result<Self, FolderError> {
        let root = out_dir.join(name.as_str());
        let created = match fs::symlink_metadata(&root) {
            Ok(m) if m.file_type().is_symlink() => return Err(FolderError::Symlink(root)),
            Ok(m) if !m.is_dir() => return Err(FolderError::NotAFolder(root)),
            Ok(_) => false,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if mode == OpenMode::Resume {
                    return Err(FolderError::NothingToResume(root));
                }
                fs::create_dir_all(out_dir).map_err(io(out_dir))?;
                fs::create_dir(&root).map_err(io(&root))?;
                true
            }
            Err(e) => return Err(io_error(&root, e)),
        };
        let lock = match Self::lock(&root) {
            Ok(lock) => lock,
            Err(e) => {
                if created {
                    let _ = fs::remove_dir_all(&root);
                }
                return Err(e);
            }
        };
        let ckpt = root.join(CHECKPOINT);
        let has_ckpt = match fs::symlink_metadata(&ckpt) {
            Ok(m) if m.file_type().is_symlink() => return Err(FolderError::Symlink(ckpt)),
            Ok(_) => true,
            Err(_) => false,
        };
        match mode {
            OpenMode::Resume if !has_ckpt => return Err(FolderError::NothingToResume(root)),
            OpenMode::Fresh if has_ckpt => return Err(FolderError::Exists(root)),
            _ => {}
        }
        remove_stale_temporaries(&root);
        let log_path = root.join(format!("{name}.log"));
        let log = append_nofollow(&log_path, false).map_err(io(&log_path))?;
        let m_path = root.join(METRICS);
        let metrics = append_nofollow(&m_path, mode == OpenMode::Fresh).map_err(io(&m_path))?;
        Ok(Self { root, name: name.clone(), created, _lock: lock, log: Mutex::new(log), metrics: Mutex::new(metrics) })
    }

    /// Takes the folder's lock, or names the process that holds it.
    fn lock(root: &Path) -> Result<File, FolderError> {
        let path = root.join(LOCK);
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io(&path))?;
        match f.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = f.read_to_string(&mut text);
                let pid = text.split_whitespace().next().and_then(|p| p.parse().ok());
                return Err(FolderError::Locked { path: root.to_path_buf(), pid });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&path, e)),
        }
        // who holds it, for the message a second process prints
        f.set_len(0).map_err(io(&path))?;
        writeln!(f, "{} (dropnas {})", std::process::id(), env!("CARGO_PKG_VERSION")).map_err(io(&path))?;
        Ok(f)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.root.join(file)
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.path(CHECKPOINT)
    }

    pub fn has(&self, file: &str) -> bool {
        fs::symlink_metadata(self.path(file)).is_ok_and(|m| m.is_file())
    }

    /// Appends a timestamped line to the human log (the console gets it through tracing).
    pub fn log(&self, line: &str) {
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        if let Ok(mut f) = self.log.lock() {
            let _ = writeln!(f, "{stamp} | {line}");
        }
    }

    /// A line for both the console (through tracing, above any progress bar) and the log file.
    pub fn say(&self, bar: &indicatif::ProgressBar, msg: &str) {
        bar.suspend(|| tracing::info!("{msg}"));
        self.log(msg);
    }

    /// The same for a warning.
    pub fn warn(&self, bar: &indicatif::ProgressBar, msg: &str) {
        bar.suspend(|| tracing::warn!("{msg}"));
        self.log(&format!("WARNING: {msg}"));
    }

    /// Appends one line to `metrics.jsonl`.
    pub fn metric(&self, line: &MetricLine) -> Result<(), FolderError> {
        let path = self.path(METRICS);
        let text = serde_json::to_string(line).expect("metric lines are JSON");
        let mut f = self.metrics.lock().expect("metrics lock");
        writeln!(f, "{text}").map_err(io(&path))?;
        f.flush().map_err(io(&path))
    }

    /// The lines of `metrics.jsonl` (a last line cut short by a kill is dropped).
    pub fn metric_lines(&self) -> Result<Vec<MetricLine>, FolderError> {
        let path = self.path(METRICS);
        let file = open_nofollow(&path).map_err(io(&path))?;
        Ok(BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<MetricLine>(&l).ok())
            .collect())
    }

    /// On resume: keeps the lines for which `keep` is true (those written before the
    /// checkpoint); the others will be written again.
    pub fn truncate_metrics(&self, keep: impl Fn(&MetricLine) -> bool) -> Result<(), FolderError> {
        let path = self.path(METRICS);
        let mut text = String::new();
        for line in self.metric_lines()?.iter().filter(|l| keep(l)) {
            text.push_str(&serde_json::to_string(line).expect("metric lines are JSON"));
            text.push('\n');
        }
        write_atomic(&path, text.as_bytes())?;
        let mut f = self.metrics.lock().expect("metrics lock");
        *f = append_nofollow(&path, false).map_err(io(&path))?;
        Ok(())
    }

    /// Reads a whole file of the folder (never through a link), `None` if absent.
    pub fn read(&self, file: &str) -> Result<Option<Vec<u8>>, FolderError> {
        let path = self.path(file);
        match open_nofollow(&path) {
            Ok(mut f) => {
                let mut v = Vec::new();
                f.read_to_end(&mut v).map_err(io(&path))?;
                Ok(Some(v))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// Writes a whole file atomically.
    pub fn write(&self, file: &str, bytes: &[u8]) -> Result<(), FolderError> {
        write_atomic(&self.path(file), bytes)
    }

    pub fn write_json<T: serde::Serialize>(&self, file: &str, value: &T) -> Result<(), FolderError> {
        let text = serde_json::to_string_pretty(value).expect("JSON of a serde type") + "\n";
        self.write(file, text.as_bytes())
    }

    /// Appends one line to a JSON-lines file of the folder, rewriting it atomically.
    pub fn append_line<T: serde::Serialize>(&self, file: &str, value: &T) -> Result<(), FolderError> {
        let mut text = self.read(file)?.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
        text.push_str(&serde_json::to_string(value).expect("JSON of a serde type"));
        text.push('\n');
        self.write(file, text.as_bytes())
    }

    /// Keeps the lines of a JSON-lines file for which `keep` is true.
    pub fn retain_lines(&self, file: &str, keep: impl Fn(&serde_json::Value) -> bool) -> Result<(), FolderError> {
        let Some(bytes) = self.read(file)? else { return Ok(()) };
        let text = String::from_utf8_lossy(&bytes);
        let kept: String = text
            .lines()
            .filter(|l| serde_json::from_str(l).is_ok_and(|v| keep(&v)))
            .map(|l| format!("{l}\n"))
            .collect();
        self.write(file, kept.as_bytes())
    }

    /// A run that failed before its first step leaves nothing behind: the folder goes if this
    /// invocation made it.
    pub fn discard_if_new(self) {
        if self.created {
            let root = self.root.clone();
            drop(self);
            let _ = fs::remove_dir_all(root);
        }
    }
}

/// Removes the temporary files of writes that a kill interrupted, in the folder and its
/// `plots/` and `tb/` (called with the lock held: no live writer owns them).
fn remove_stale_temporaries(root: &Path) {
    for dir in [root.to_path_buf(), root.join("plots"), root.join("tb")] {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let is_file = e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink());
            if is_file && name.contains(TMP_MARK) {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::lines::{EpochLine, LossTerms, StepLine};

    fn step(epoch: u32, g: u64) -> MetricLine {
        MetricLine::Step(StepLine {
            epoch,
            step: g,
            global_step: g,
            loss: 1.0,
            top1: 0.5,
            top5: 1.0,
            lr: 0.1,
            terms: LossTerms::default(),
            time_s: 0.0,
            step_s: None,
        })
    }

    #[test]
    fn a_folder_is_held_by_one_process_and_refuses_links() {
        let out = tempfile::tempdir().unwrap();
        let name: RunName = "r".parse().unwrap();
        let run = RunFolder::open(out.path(), &name, OpenMode::Fresh).unwrap();
        // a second open while the first holds the lock names this process
        let e = RunFolder::open(out.path(), &name, OpenMode::Fresh).err().unwrap();
        assert!(matches!(e, FolderError::Locked { pid: Some(p), .. } if p == std::process::id()), "{e}");
        run.metric(&step(1, 0)).unwrap();
        std::fs::write(run.checkpoint_path(), b"x").unwrap();
        drop(run);
        // released on drop: a fresh run now sees the checkpoint, a resume opens
        assert!(matches!(RunFolder::open(out.path(), &name, OpenMode::Fresh), Err(FolderError::Exists(_))));
        let run = RunFolder::open(out.path(), &name, OpenMode::Resume).unwrap();
        // a link planted in the folder is never written through
        let victim = out.path().join("victim.txt");
        std::fs::write(&victim, b"keep me").unwrap();
        std::os::unix::fs::symlink(&victim, run.path("genotype.txt")).unwrap();
        run.write("genotype.txt", b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        std::os::unix::fs::symlink(&victim, run.path("alphas.jsonl")).unwrap();
        assert!(matches!(run.read("alphas.jsonl"), Err(FolderError::Symlink(_))));
        drop(run);
        // a run folder that is itself a link is refused
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), out.path().join("l")).unwrap();
        let e = RunFolder::open(out.path(), &"l".parse().unwrap(), OpenMode::Fresh).err().unwrap();
        assert!(matches!(e, FolderError::Symlink(_)), "{e}");
        // resuming what does not exist creates nothing
        assert!(matches!(
            RunFolder::open(out.path(), &"none".parse().unwrap(), OpenMode::Resume),
            Err(FolderError::NothingToResume(_))
        ));
        assert!(!out.path().join("none").exists());
    }

    #[test]
    fn stale_temporaries_go_and_metrics_truncate_to_the_checkpoint() {
        let out = tempfile::tempdir().unwrap();
        let name: RunName = "r".parse().unwrap();
        let run = RunFolder::open(out.path(), &name, OpenMode::Fresh).unwrap();
        for g in 0..3 {
            run.metric(&step(1, g)).unwrap();
        }
        run.metric(&MetricLine::Epoch(EpochLine { epoch: 1, ..EpochLine::default() })).unwrap();
        run.metric(&step(2, 3)).unwrap();
        std::fs::write(run.checkpoint_path(), b"x").unwrap();
        std::fs::write(run.path("checkpoint.ckpt.tmp-99999"), vec![0u8; 1000]).unwrap();
        std::fs::create_dir_all(run.path("plots")).unwrap();
        std::fs::write(run.path("plots/curves.svg.tmp-99999"), b"half").unwrap();
        drop(run);
        let run = RunFolder::open(out.path(), &name, OpenMode::Resume).unwrap();
        assert!(!run.path("checkpoint.ckpt.tmp-99999").exists() && !run.path("plots/curves.svg.tmp-99999").exists());
        run.truncate_metrics(|l| match l {
            MetricLine::Step(s) => s.global_step < 3,
            MetricLine::Epoch(e) => e.epoch <= 1,
            MetricLine::Other => false,
        })
        .unwrap();
        run.metric(&step(2, 3)).unwrap();
        let kinds: Vec<String> = run
            .metric_lines()
            .unwrap()
            .iter()
            .map(|l| match l {
                MetricLine::Step(s) => format!("s{}", s.global_step),
                MetricLine::Epoch(e) => format!("e{}", e.epoch),
                MetricLine::Other => "?".into(),
            })
            .collect();
        assert_eq!(kinds, ["s0", "s1", "s2", "e1", "s3"]);
    }
}
