//! Running one run of a protocol, the same way on a local device and in a Slurm array task:
//! a finished run is skipped, a run whose folder holds a checkpoint is resumed (`--resume`),
//! anything else starts anew; the attempt is recorded in `attempts/RUN.json` and the run's
//! output goes to `logs/RUN.out`.

use super::manifest::{Attempt, LOGS, Observed, hostname, now};
use super::plan::PlannedRun;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

/// What to do with a run now.
pub enum Launch {
    AlreadyDone,
    /// These arguments after `dropnas`; `resumed`: from the folder's checkpoint.
    Run {
        args: Vec<String>,
        resumed: bool,
    },
}

/// The arguments that run `run` now (on `device`, if given).
pub fn launch(dir: &Path, run: &PlannedRun, device: Option<&str>) -> Launch {
    let seen = Observed::read(dir, run);
    if seen.finished() {
        return Launch::AlreadyDone;
    }
    let mut args = run.command.clone();
    if let Some(d) = device {
        args.extend(["--device".into(), d.to_string()]);
    }
    if seen.has_checkpoint {
        args.push("--resume".into());
    }
    Launch::Run { args, resumed: seen.has_checkpoint }
}

/// Starts `dropnas ARGS` in the folder the protocol's commands run in, its output appended to
/// `logs/RUN.out`. The child gets SIGTERM when this process dies (so a killed protocol leaves
/// no run behind: each one checkpoints and stops); `own_group` puts it in its own process
/// group, so that a Ctrl-C at the terminal reaches the protocol only, which passes it on once.
pub fn spawn(dir: &Path, run: &PlannedRun, args: &[String], own_group: bool) -> std::io::Result<Child> {
    let exe = std::env::current_exe()?;
    std::fs::create_dir_all(dir.join(LOGS))?;
    let log_path = dir.join(LOGS).join(format!("{}.out", run.name));
    let mut log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
    writeln!(
        log,
        "\n== {} on {}: {}",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        hostname(),
        super::plan::command_line(args)
    )?;
    let parent = std::process::id();
    let mut cmd = Command::new(exe);
    cmd.args(args).stdin(Stdio::null()).stdout(log.try_clone()?).stderr(log).env("NO_COLOR", "1");
    // SAFETY: only async-signal-safe calls between fork and exec
    unsafe {
        cmd.pre_exec(move || {
            if own_group {
                libc::setpgid(0, 0);
            }
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            // the parent died before the line above: nobody will wait for this run
            if libc::getppid() as u32 != parent {
                libc::_exit(143);
            }
            Ok(())
        });
    }
    cmd.spawn()
}

/// Records the start of an attempt.
pub fn record_start(dir: &Path, run: &PlannedRun, args: &[String], pid: u32) -> Attempt {
    let slurm_job = match (std::env::var("SLURM_ARRAY_JOB_ID"), std::env::var("SLURM_ARRAY_TASK_ID")) {
        (Ok(j), Ok(t)) => Some(format!("{j}_{t}")),
        _ => std::env::var("SLURM_JOB_ID").ok(),
    };
    let a = Attempt {
        command: args.to_vec(),
        host: hostname(),
        pid,
        started_unix_s: now(),
        ended_unix_s: None,
        exit_code: None,
        signal: None,
        slurm_job,
    };
    if let Err(e) = a.write(dir, &run.name) {
        tracing::warn!("cannot record the start of {}: {e}", run.name);
    }
    a
}

/// Records how an attempt ended.
pub fn record_end(dir: &Path, run: &PlannedRun, mut a: Attempt, status: ExitStatus) {
    a.ended_unix_s = Some(now());
    a.exit_code = status.code();
    a.signal = status.signal();
    if let Err(e) = a.write(dir, &run.name) {
        tracing::warn!("cannot record the end of {}: {e}", run.name);
    }
}

/// `dropnas protocol exec DIR -- ARGS`: what each Slurm array task runs. `ARGS` must be one of
/// the protocol's commands (the batch script holds them verbatim); the run is skipped when
/// done and resumed when its folder holds a checkpoint. Exits with the run's exit code.
pub fn exec(dir: &Path, args: &[String]) -> anyhow::Result<()> {
    use crate::{ExitWith, UserError};
    let manifest = super::manifest::Manifest::read(dir)
        .map_err(UserError::new)?
        .ok_or_else(|| UserError::new(format!("{} holds no protocol.json", dir.display())))?;
    let run = manifest.runs.iter().map(|e| &e.run).find(|r| r.command == args).ok_or_else(|| {
        UserError::new(format!(
            "`{}` is not a run of the protocol in {}; the batch script and the manifest disagree: \
             write the script again with `dropnas protocol run FILE --slurm`",
            super::plan::command_line(args),
            dir.display()
        ))
    })?;
    // the commands' relative paths start in the protocol's working folder
    let Launch::Run { args, resumed } = launch(dir, run, None) else {
        println!("{} is done already", run.name);
        return Ok(());
    };
    println!("{} {}: {}", if resumed { "resuming" } else { "starting" }, run.name, super::plan::command_line(&args));
    dropnas_train::run::signals::install();
    let mut child = spawn(dir, run, &args, false)?;
    let attempt = record_start(dir, run, &args, child.id());
    // a stop signal reaches the run too (same process group, or Slurm's signal to the whole
    // job): this process only waits for it to checkpoint and exit
    let status = child.wait()?;
    record_end(dir, run, attempt, status);
    let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
    if code == 0 {
        println!("{} finished", run.name);
        return Ok(());
    }
    let log = dir.join(LOGS).join(format!("{}.out", run.name));
    Err(ExitWith::new(
        code.clamp(1, 255) as u8,
        format!("{} ended with exit code {code}; its output is in {}", run.name, log.display()),
    )
    .into())
}
