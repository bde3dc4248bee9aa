//! `protocols/NAME/protocol.json`: every run of the protocol, its command line and its state.
//!
//! The states are derived from what is on disk, so that any process (the local queue, a Slurm
//! task, `protocol status` on a login node) sees the same thing: a run folder whose
//! `summary.json` says finished is done; the run's last attempt (`attempts/RUN.json`, written
//! by whoever started it) says whether it is running, failed, or was stopped; a retraining
//! whose search failed is skipped. The manifest is rewritten atomically whenever that changes.

use super::plan::{Plan, PlannedRun};
use dropnas_data::Dataset;
use dropnas_train::run::folder::{CHECKPOINT, write_atomic};
use dropnas_train::run::lines::Summary;
use dropnas_train::run::name::RunName;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "protocol.json";
/// The manifest's format; a manifest of another format is refused with this number.
pub const FORMAT: u32 = 1;
const ATTEMPTS: &str = "attempts";
/// Each run's output (stdout and stderr of every attempt), `logs/RUN.out`.
pub const LOGS: &str = "logs";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Not started, or stopped and to be resumed from its checkpoint.
    Pending,
    Running,
    Done,
    /// Its last attempt failed (rerunning the protocol tries it again).
    Failed,
    /// A retraining whose search failed.
    Skipped,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Pending => "pending",
            RunState::Running => "running",
            RunState::Done => "done",
            RunState::Failed => "failed",
            RunState::Skipped => "skipped",
        }
    }
}

/// One start of a run: who ran what, and how it ended. `attempts/RUN.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// The exact arguments after `dropnas` (the plan's, plus `--device` and `--resume`).
    pub command: Vec<String>,
    pub host: String,
    /// The run's process.
    pub pid: u32,
    pub started_unix_s: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_unix_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The signal that killed the process, where one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// `JOBID_TASK` of the Slurm array task that ran it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<String>,
}

impl Attempt {
    pub fn path(dir: &Path, run: &RunName) -> PathBuf {
        dir.join(ATTEMPTS).join(format!("{run}.json"))
    }

    pub fn read(dir: &Path, run: &RunName) -> Option<Attempt> {
        let bytes = std::fs::read(Self::path(dir, run)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn write(&self, dir: &Path, run: &RunName) -> std::io::Result<()> {
        let path = Self::path(dir, run);
        std::fs::create_dir_all(dir.join(ATTEMPTS))?;
        let bytes = serde_json::to_vec_pretty(self).expect("attempts are JSON");
        write_atomic(&path, &bytes).map_err(std::io::Error::other)
    }

    /// Whether the attempt's process may still run: not ended, and (on this host) alive.
    fn may_run(&self) -> bool {
        self.ended_unix_s.is_none() && (self.host != hostname() || pid_alive(self.pid))
    }
}

/// What a run folder and the run's last attempt say.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub summary: Option<Summary>,
    pub has_checkpoint: bool,
    pub attempt: Option<Attempt>,
    /// The last line of the run's output (`logs/RUN.out`), for a failure's message.
    pub last_output: Option<String>,
}

impl Observed {
    pub fn read(dir: &Path, run: &PlannedRun) -> Observed {
        let folder = dir.join(&run.folder);
        let summary = std::fs::read(folder.join("summary.json")).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let last_output = std::fs::read_to_string(dir.join(LOGS).join(format!("{}.out", run.name)))
            .ok()
            .and_then(|t| t.lines().rev().find(|l| !l.trim().is_empty()).map(|l| l.trim().to_string()));
        Observed {
            summary,
            has_checkpoint: folder.join(CHECKPOINT).is_file(),
            attempt: Attempt::read(dir, &run.name),
            last_output,
        }
    }

    pub fn finished(&self) -> bool {
        self.summary.as_ref().is_some_and(|s| s.finished)
    }

    /// The run's state and a few words on it; `search` is the state of the search a retraining
    /// depends on.
    pub fn state(&self, search: Option<(&RunName, RunState)>) -> (RunState, Option<String>) {
        if self.finished() {
            return (RunState::Done, None);
        }
        let resumes = || {
            let epochs = self.summary.as_ref().map_or(0, |s| s.epochs_done);
            if self.has_checkpoint {
                format!("resumes from its checkpoint ({epochs} epochs done)")
            } else {
                "starts anew (no checkpoint yet)".to_string()
            }
        };
        if let Some(a) = &self.attempt {
            if a.may_run() {
                let on = a.slurm_job.as_ref().map(|j| format!(", Slurm job {j}")).unwrap_or_default();
                return (RunState::Running, Some(format!("on {} (PID {}{on})", a.host, a.pid)));
            }
            match (a.ended_unix_s, a.exit_code, a.signal) {
                // the process that ran it went away without a word (its protocol was killed)
                (None, _, _) => return (RunState::Pending, Some(format!("interrupted; {}", resumes()))),
                (_, Some(130 | 143), _) => {
                    let by = if a.exit_code == Some(130) { "SIGINT" } else { "SIGTERM" };
                    return (RunState::Pending, Some(format!("stopped by {by}; {}", resumes())));
                }
                (_, Some(0), _) => return (RunState::Failed, Some("ended without finishing its epochs".into())),
                (_, Some(code), _) => {
                    let said = self.last_output.as_ref().map(|l| format!(": {l}")).unwrap_or_default();
                    return (RunState::Failed, Some(format!("exit code {code}{said}")));
                }
                (_, None, Some(sig)) => return (RunState::Failed, Some(format!("killed by signal {sig}"))),
                (_, None, None) => return (RunState::Failed, Some("ended in an unknown way".into())),
            }
        }
        if let Some((search, s)) = search
            && matches!(s, RunState::Failed | RunState::Skipped)
        {
            return (RunState::Skipped, Some(format!("its search {search} failed")));
        }
        if self.has_checkpoint {
            return (RunState::Pending, Some(resumes()));
        }
        (RunState::Pending, None)
    }
}

/// A run as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    #[serde(flatten)]
    pub run: PlannedRun,
    /// The command as typed in a shell.
    pub command_line: String,
    pub state: RunState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt: Option<Attempt>,
}

/// Where a protocol went on Slurm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlurmRecord {
    /// The batch script and the submission commands, relative to the protocol folder.
    pub script: PathBuf,
    pub submit: PathBuf,
    /// `(stage, job id)` of each submitted job, empty after `--dry-run`.
    pub jobs: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submitted_unix_s: Option<f64>,
}

/// `protocol.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub name: RunName,
    pub dataset: Dataset,
    pub dropnas_version: String,
    /// The protocol file as given: the folder alone tells what the protocol is.
    pub file: String,
    /// The folder the commands run in (their relative paths start there).
    pub workdir: PathBuf,
    /// The protocol folder as the commands name it (`protocols/NAME`).
    pub dir: PathBuf,
    pub search_seeds: Vec<u64>,
    pub augment_seeds: Vec<Vec<u64>>,
    pub runs: Vec<RunEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmRecord>,
    pub updated_unix_s: f64,
}

impl Manifest {
    pub fn new(plan: &Plan, file: String, workdir: PathBuf) -> Manifest {
        let runs = plan
            .runs
            .iter()
            .map(|r| RunEntry {
                run: r.clone(),
                command_line: r.command_line(),
                state: RunState::Pending,
                detail: None,
                last_attempt: None,
            })
            .collect();
        Manifest {
            format: FORMAT,
            name: plan.name.clone(),
            dataset: plan.dataset,
            dropnas_version: env!("CARGO_PKG_VERSION").to_string(),
            file,
            workdir,
            dir: plan.dir.clone(),
            search_seeds: plan.search_seeds.clone(),
            augment_seeds: plan.augment_seeds.clone(),
            runs,
            slurm: None,
            updated_unix_s: now(),
        }
    }

    /// Reads `dir/protocol.json`; `Ok(None)` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Manifest>, String> {
        let path = dir.join(MANIFEST);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head = serde_json::from_slice(&bytes)
            .map_err(|e| format!("{} is not a protocol manifest: {e}", path.display()))?;
        if head.format != FORMAT {
            return Err(format!(
                "{} has manifest format {}; this dropnas reads format {FORMAT}",
                path.display(),
                head.format
            ));
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("{} is malformed: {e}", path.display()))
    }

    pub fn write(&mut self, dir: &Path) -> std::io::Result<()> {
        self.updated_unix_s = now();
        let mut bytes = serde_json::to_vec_pretty(self).expect("the manifest is JSON");
        bytes.push(b'\n');
        write_atomic(&dir.join(MANIFEST), &bytes).map_err(std::io::Error::other)
    }

    /// Re-derives every run's state from the folders under `dir` (searches first: their
    /// retrainings depend on them).
    pub fn refresh(&mut self, dir: &Path) {
        let mut states: Vec<(RunName, RunState)> = Vec::new();
        for e in &mut self.runs {
            let seen = Observed::read(dir, &e.run);
            let search = e.run.after.as_ref().and_then(|s| states.iter().find(|(n, _)| n == s)).map(|(n, s)| (n, *s));
            let (state, detail) = seen.state(search);
            states.push((e.run.name.clone(), state));
            e.state = state;
            e.detail = detail;
            e.last_attempt = seen.attempt;
        }
    }

    pub fn count(&self, state: RunState) -> usize {
        self.runs.iter().filter(|e| e.state == state).count()
    }

    /// Checks that a plan read anew from the protocol file is this manifest's (runs may be
    /// added, by new seeds; a run whose command changed would mix two protocols in one folder).
    pub fn check_same_protocol(&self, plan: &Plan) -> Result<(), String> {
        let changed: Vec<String> = plan
            .runs
            .iter()
            .filter_map(|r| {
                let old = self.runs.iter().find(|e| e.run.name == r.name)?;
                (old.run.command != r.command)
                    .then(|| format!("{}: was `{}`, now `{}`", r.name, old.command_line, r.command_line()))
            })
            .collect();
        if changed.is_empty() {
            return Ok(());
        }
        Err(format!(
            "the protocol {} exists with other settings:\n  {}\nGive the protocol another `name` (or remove its folder) \
             to run it with the new settings; adding seeds is fine",
            self.name,
            changed.join("\n  ")
        ))
    }
}

pub fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// This machine's host name.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok { String::from_utf8_lossy(&buf[..end]).into_owned() } else { "localhost".into() }
}

/// Whether a process `pid` runs on this host (a zombie, dead but not yet reaped by whoever
/// adopted it, does not).
pub fn pid_alive(pid: u32) -> bool {
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `PID (COMM) STATE ...`; COMM may hold spaces and parentheses
        let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
        return !matches!(state, Some('Z' | 'X'));
    }
    let Ok(pid) = i32::try_from(pid) else { return false };
    // SAFETY: signal 0 only checks that the process exists
    unsafe { libc::kill(pid, 0) == 0 || *libc::__errno_location() == libc::EPERM }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(ended: bool, exit_code: Option<i32>, signal: Option<i32>) -> Attempt {
        Attempt {
            command: vec![],
            host: hostname(),
            pid: std::process::id(),
            started_unix_s: 1.0,
            ended_unix_s: ended.then_some(2.0),
            exit_code,
            signal,
            slurm_job: None,
        }
    }

    #[test]
    fn states_follow_the_folder_and_the_last_attempt() {
        let search: RunName = "p-s0".parse().unwrap();
        let done = Observed { summary: Some(Summary { finished: true, ..Summary::default() }), ..Observed::default() };
        assert_eq!(done.state(None).0, RunState::Done);
        // finished wins over an attempt record that was never closed
        let done_open = Observed { attempt: Some(attempt(false, None, None)), ..done.clone() };
        assert_eq!(done_open.state(None).0, RunState::Done);
        assert_eq!(Observed::default().state(None), (RunState::Pending, None));
        // this process is alive: running
        let running = Observed { attempt: Some(attempt(false, None, None)), ..Observed::default() };
        assert_eq!(running.state(None).0, RunState::Running);
        // an attempt whose process is gone, with a checkpoint: resumed
        let mut gone = attempt(false, None, None);
        gone.pid = u32::MAX - 1;
        let interrupted = Observed { attempt: Some(gone), has_checkpoint: true, ..Observed::default() };
        let (s, d) = interrupted.state(None);
        assert_eq!(s, RunState::Pending);
        assert!(d.unwrap().contains("interrupted; resumes from its checkpoint"));
        let stopped = Observed { attempt: Some(attempt(true, Some(143), None)), ..Observed::default() };
        assert_eq!(
            stopped.state(None),
            (RunState::Pending, Some("stopped by SIGTERM; starts anew (no checkpoint yet)".into()))
        );
        let failed = Observed {
            attempt: Some(attempt(true, Some(2), None)),
            last_output: Some("error: data set not found".into()),
            ..Observed::default()
        };
        assert_eq!(failed.state(None), (RunState::Failed, Some("exit code 2: error: data set not found".into())));
        let killed = Observed { attempt: Some(attempt(true, None, Some(9))), ..Observed::default() };
        assert_eq!(killed.state(None), (RunState::Failed, Some("killed by signal 9".into())));
        // a retraining waits for its search, and is skipped when the search failed
        assert_eq!(Observed::default().state(Some((&search, RunState::Running))).0, RunState::Pending);
        let (s, d) = Observed::default().state(Some((&search, RunState::Failed)));
        assert_eq!((s, d.as_deref()), (RunState::Skipped, Some("its search p-s0 failed")));
        // its own failure is reported as such
        assert_eq!(failed.state(Some((&search, RunState::Failed))).0, RunState::Failed);
    }
}
