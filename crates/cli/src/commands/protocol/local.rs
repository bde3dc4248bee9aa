//! Runs a protocol on this machine: a queue of at most K runs at once, each on one device of
//! `--devices` (`--device` passed to it), a retraining as soon as its search is done; runs
//! start one after the other, each once the one before has its data. A failed
//! run does not stop the others (the retrainings of a failed search are skipped). SIGINT or
//! SIGTERM is passed on once to every running run, which checkpoints and stops; the protocol
//! then exits with 130 or 143, and running it again resumes them.

use super::exec::{Launch, launch, record_end, record_start, spawn};
use super::manifest::{Attempt, Manifest, RunState};
use dropnas_train::run::folder::CONFIG;
use dropnas_train::run::signals;
use std::collections::HashSet;
use std::path::Path;
use std::process::Child;
use std::time::Duration;

struct Running {
    run: usize,
    slot: usize,
    child: Child,
    attempt: Attempt,
}

/// How a local pass ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Nothing more can start (every run is done, failed, skipped, or running elsewhere).
    Settled,
    /// A signal stopped it.
    Stopped(i32),
}

/// Runs what is not done of `manifest`'s runs; `slots` holds one device (or none: the run's
/// default) per run that may run at once. Rewrites `protocol.json` at every change.
pub fn run(dir: &Path, manifest: &mut Manifest, slots: &[Option<String>]) -> anyhow::Result<Ended> {
    signals::install();
    signals::clear();
    let mut running: Vec<Running> = Vec::new();
    let mut attempted: HashSet<usize> = HashSet::new();
    let mut waiting_said: HashSet<usize> = HashSet::new();
    let mut stopping: Option<i32> = None;
    let mut changed = true;
    loop {
        let mut i = 0;
        while i < running.len() {
            if let Some(status) = running[i].child.try_wait()? {
                let r = running.swap_remove(i);
                let run = &manifest.runs[r.run].run;
                record_end(dir, run, r.attempt, status);
                changed = true;
            } else {
                i += 1;
            }
        }
        if changed {
            let before: Vec<RunState> = manifest.runs.iter().map(|e| e.state).collect();
            manifest.refresh(dir);
            for (e, was) in manifest.runs.iter().zip(before) {
                if e.state != was && matches!(e.state, RunState::Done | RunState::Failed | RunState::Skipped) {
                    let detail = e.detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default();
                    say(&format!("{} {}{detail}", e.run.name, e.state.as_str()));
                }
            }
            manifest.write(dir)?;
            changed = false;
        }
        if stopping.is_none()
            && let Some(sig) = signals::stop_requested()
        {
            stopping = Some(sig);
            for r in &running {
                // SAFETY: signals the run's own process group (it leads it)
                unsafe { libc::kill(-(r.child.id() as i32), sig) };
            }
            say(&format!(
                "{}: {} running run(s) checkpoint and stop; run the protocol again to resume",
                signals::name(sig),
                running.len()
            ));
        }
        let mut startable = false;
        // one run at a time reads its data for the first time (it writes config.json once the
        // data is there): a missing data set is downloaded once, not by K runs into one folder
        let warming = running.iter().any(|r| !dir.join(&manifest.runs[r.run].run.folder).join(CONFIG).is_file());
        if stopping.is_none() && !warming {
            for idx in 0..manifest.runs.len() {
                let Some(slot) = (0..slots.len()).find(|s| running.iter().all(|r| r.slot != *s)) else { break };
                let e = &manifest.runs[idx];
                if attempted.contains(&idx) || !matches!(e.state, RunState::Pending | RunState::Failed) {
                    continue;
                }
                let search_done = e
                    .run
                    .after
                    .as_ref()
                    .is_none_or(|s| manifest.runs.iter().any(|o| o.run.name == *s && o.state == RunState::Done));
                if !search_done {
                    continue;
                }
                startable = true;
                // a run of a killed protocol may still be writing its last checkpoint
                if folder_busy(&dir.join(&e.run.folder)) {
                    if waiting_said.insert(idx) {
                        say(&format!("{}: waiting for the process that holds its folder", e.run.name));
                    }
                    continue;
                }
                attempted.insert(idx);
                let run = e.run.clone();
                let device = slots[slot].as_deref();
                let Launch::Run { args, resumed } = launch(dir, &run, device) else {
                    changed = true;
                    continue;
                };
                let child = match spawn(dir, &run, &args, true) {
                    Ok(c) => c,
                    Err(err) => return Err(anyhow::anyhow!("cannot start {}: {err}", run.name)),
                };
                let attempt = record_start(dir, &run, &args, child.id());
                let on = device.map(|d| format!(" on {d}")).unwrap_or_default();
                let how = if resumed { "resumed" } else { "started" };
                say(&format!("{} {how}{on} (PID {})", run.name, child.id()));
                running.push(Running { run: idx, slot, child, attempt });
                changed = true;
                if !dir.join(&run.folder).join(CONFIG).is_file() {
                    break;
                }
            }
        }
        if running.is_empty() && !changed && (stopping.is_some() || !startable) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    manifest.refresh(dir);
    manifest.write(dir)?;
    Ok(match stopping {
        Some(sig) => Ended::Stopped(sig),
        None => Ended::Settled,
    })
}

/// Whether another process holds the run folder's lock.
fn folder_busy(folder: &Path) -> bool {
    let Ok(f) = std::fs::File::open(folder.join(".lock")) else { return false };
    // a shared lock for an instant: only the run's exclusive lock makes this fail
    matches!(f.try_lock_shared(), Err(std::fs::TryLockError::WouldBlock))
}

fn say(msg: &str) {
    let t = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    println!("[{}] {msg}", t.get(11..19).unwrap_or(&t));
}
