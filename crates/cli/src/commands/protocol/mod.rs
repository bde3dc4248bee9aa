//! `dropnas protocol`: the paper's protocol in one command. Several searches (search seeds),
//! each genotype found retrained from scratch several times (augment seeds), then the mean ±
//! std and the best of the test accuracy, on local devices or as Slurm job arrays; resumable.
//!
//! Everything lands in `protocols/NAME/`: `protocol.json` (the manifest: every run, its
//! command line, its state), the run folders (`searchs/`, `augments/`), each run's output
//! (`logs/`), its attempts (`attempts/`), `results.md` and `results.json`, and with `--slurm`
//! the batch script and its submission (`slurm/`).

pub mod exec;
pub mod file;
pub mod local;
pub mod manifest;
pub mod plan;
pub mod results;
pub mod slurm;

use crate::device::DeviceSpec;
use crate::{ExitWith, UserError};
use anyhow::Result;
use manifest::{Manifest, RunState};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand, Debug)]
pub enum ProtocolCommand {
    /// Run a protocol file: every search, each genotype's retrainings, then results.md (resumable)
    Run(RunArgs),
    /// Where a protocol stands, from its run folders; writes protocol.json, results.md and results.json
    Status(StatusArgs),
    /// Run one run of a protocol (what each Slurm array task calls): skipped when done, resumed from its checkpoint
    Exec(ExecArgs),
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The protocol file (TOML): name, dataset, search_seeds, augment_seeds, [search] and [augment] flags
    pub file: PathBuf,
    /// Folder the protocol's folder goes in
    #[arg(long, default_value = "protocols")]
    pub out_dir: PathBuf,
    /// Devices for the runs, comma-separated (cpu, cuda:0, wgpu:1; one may be listed twice): one running run per device
    #[arg(long, value_delimiter = ',', conflicts_with = "slurm")]
    pub devices: Vec<String>,
    /// Runs at once, at most one per device of --devices [default: the number of --devices, else 1]
    #[arg(long, value_parser = dropnas_train::run::check::parse::at_least_one, conflicts_with = "slurm")]
    pub jobs: Option<usize>,
    /// Write a Slurm batch script (one array task per run, retrainings after their search) and submit it with sbatch
    #[arg(long)]
    pub slurm: bool,
    /// With --slurm: write the batch script and slurm/submit.sh, submit nothing
    #[arg(long, requires = "slurm")]
    pub dry_run: bool,
    /// With --slurm: an sbatch option for every job, repeatable (--sbatch=--gres=gpu:1 --sbatch=--time=2-00:00:00)
    #[arg(long = "sbatch", value_name = "OPTION", requires = "slurm", allow_hyphen_values = true)]
    pub sbatch: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The protocol's folder (protocols/NAME)
    pub dir: PathBuf,
    /// Print results.json instead of the table
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// The protocol's folder (protocols/NAME)
    pub dir: PathBuf,
    /// The run's command after `dropnas`, exactly as protocol.json has it
    #[arg(last = true, required = true, num_args = 1.., allow_hyphen_values = true)]
    pub command: Vec<String>,
}

pub fn run(cmd: ProtocolCommand) -> Result<()> {
    match cmd {
        ProtocolCommand::Run(a) => run_protocol(a),
        ProtocolCommand::Status(a) => status(a),
        ProtocolCommand::Exec(a) => exec::exec(&a.dir, &a.command),
    }
}

/// One slot per run that may run at once, with its device.
fn slots(devices: &[String], jobs: Option<usize>) -> Result<Vec<Option<String>>> {
    if devices.is_empty() {
        return Ok(vec![None; jobs.unwrap_or(1)]);
    }
    for d in devices {
        // refused before anything runs: a device that is not compiled in or cannot start
        DeviceSpec::resolve(Some(d))?;
    }
    let jobs = jobs.unwrap_or(devices.len());
    if jobs > devices.len() {
        return Err(UserError::new(format!(
            "--jobs {jobs} with {} device(s): each running run takes one device of --devices; list {jobs} \
             (a device may be listed twice: --devices cpu,cpu)",
            devices.len()
        ))
        .into());
    }
    Ok(devices[..jobs].iter().cloned().map(Some).collect())
}

/// Holds `dir/.lock` while this process runs or submits the protocol.
fn lock(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(".lock");
    let mut f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut who = String::new();
            let _ = f.read_to_string(&mut who);
            return Err(UserError::new(format!(
                "the protocol in {} is being run by another dropnas process (PID {}); wait for it or stop it",
                dir.display(),
                who.trim()
            ))
            .into());
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
    }
    f.set_len(0)?;
    write!(f, "{}", std::process::id())?;
    Ok(f)
}

fn run_protocol(args: RunArgs) -> Result<()> {
    let (plan, text) = file::load(&args.file, &args.out_dir)?;
    let slots = if args.slurm { Vec::new() } else { slots(&args.devices, args.jobs)? };
    let dir = plan.dir.clone();
    std::fs::create_dir_all(&dir).map_err(|e| UserError::new(format!("cannot create {}: {e}", dir.display())))?;
    let _lock = lock(&dir)?;
    let workdir = std::env::current_dir()?;
    let mut manifest = Manifest::new(&plan, text, workdir.clone());
    if let Some(old) = Manifest::read(&dir).map_err(UserError::new)? {
        old.check_same_protocol(&plan).map_err(UserError::new)?;
        let queued = old.slurm.as_ref().map(|s| slurm::alive(&s.jobs)).unwrap_or_default();
        if !queued.is_empty() {
            return Err(UserError::new(format!(
                "the protocol's Slurm jobs {} are still queued or running; wait for them, or `scancel` them \
                 before running the protocol again",
                queued.join(", ")
            ))
            .into());
        }
        manifest.slurm = old.slurm;
    }
    manifest.refresh(&dir);
    // the runs of a protocol killed a moment ago checkpoint and stop (SIGTERM when their parent
    // died): give them the time to
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while manifest.runs.iter().any(|e| e.state == RunState::Running) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        manifest.refresh(&dir);
    }
    if let Some(e) = manifest.runs.iter().find(|e| e.state == RunState::Running) {
        return Err(UserError::new(format!(
            "{} is running ({}); wait for it to end before running the protocol again",
            e.run.name,
            e.detail.as_deref().unwrap_or("elsewhere")
        ))
        .into());
    }
    manifest.write(&dir)?;
    let done = manifest.count(RunState::Done);
    if args.slurm {
        return submit_slurm(&dir, &plan, &mut manifest, &workdir, &args);
    }
    let on = match &slots[..] {
        [None] => String::new(),
        s if s[0].is_none() => format!(", {} at once", s.len()),
        s => format!(", {} at once on {}", s.len(), s.iter().flatten().cloned().collect::<Vec<_>>().join(",")),
    };
    println!(
        "protocol {}: {} runs ({done} done){on}; each run's output in {}",
        plan.name,
        plan.runs.len(),
        dir.join(manifest::LOGS).display()
    );
    let ended = local::run(&dir, &mut manifest, &slots)?;
    let results = results::collect(&dir, &manifest);
    results.write(&dir)?;
    print_status(&dir, &manifest, &results);
    let file = args.file.display();
    if let local::Ended::Stopped(sig) = ended {
        return Err(ExitWith::new(
            dropnas_train::run::signals::exit_code(sig),
            format!("stopped; `dropnas protocol run {file}` resumes the protocol"),
        )
        .into());
    }
    let (failed, skipped) = (manifest.count(RunState::Failed), manifest.count(RunState::Skipped));
    if failed + skipped > 0 {
        return Err(ExitWith::new(
            1,
            format!(
                "{failed} run(s) failed and {skipped} skipped (their output is in {}); `dropnas protocol run {file}` \
                 tries them again",
                dir.join(manifest::LOGS).display()
            ),
        )
        .into());
    }
    let left = manifest.runs.len() - manifest.count(RunState::Done);
    if left > 0 {
        println!(
            "{left} run(s) could not start here (running elsewhere?); `dropnas protocol status {}` follows them",
            dir.display()
        );
    }
    Ok(())
}

fn submit_slurm(dir: &Path, plan: &plan::Plan, manifest: &mut Manifest, workdir: &Path, args: &RunArgs) -> Result<()> {
    let (script, submit) = slurm::write(plan, workdir, &args.sbatch)?;
    let rel = |p: &Path| p.strip_prefix(dir).unwrap_or(p).to_path_buf();
    let mut record =
        manifest::SlurmRecord { script: rel(&script), submit: rel(&submit), jobs: Vec::new(), submitted_unix_s: None };
    println!("wrote {} and {}", script.display(), submit.display());
    if args.dry_run {
        println!("--dry-run: nothing submitted; `bash {}` submits the jobs", submit.display());
        manifest.slurm = Some(record);
        manifest.write(dir)?;
        return Ok(());
    }
    let jobs = slurm::submit(plan, workdir)?;
    for (stage, id) in &jobs {
        println!("submitted {stage}: job {id}");
    }
    record.jobs = jobs;
    record.submitted_unix_s = Some(manifest::now());
    manifest.slurm = Some(record);
    manifest.write(dir)?;
    println!("`dropnas protocol status {}` shows where it stands; the last job writes results.md", dir.display());
    Ok(())
}

fn status(args: StatusArgs) -> Result<()> {
    let dir = &args.dir;
    let mut manifest = Manifest::read(dir).map_err(UserError::new)?.ok_or_else(|| {
        UserError::new(format!(
            "{} holds no protocol.json: give the folder of a protocol (protocols/NAME)",
            dir.display()
        ))
    })?;
    manifest.refresh(dir);
    manifest.write(dir)?;
    let results = results::collect(dir, &manifest);
    results.write(dir)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        print_status(dir, &manifest, &results);
    }
    Ok(())
}

fn print_status(dir: &Path, m: &Manifest, r: &results::Results) {
    let counts: Vec<String> =
        [RunState::Done, RunState::Running, RunState::Pending, RunState::Failed, RunState::Skipped]
            .iter()
            .filter_map(|&s| {
                let n = m.count(s);
                (n > 0).then(|| format!("{n} {}", s.as_str()))
            })
            .collect();
    println!("\nprotocol {} ({}): {} runs: {}", m.name, m.dataset, m.runs.len(), counts.join(", "));
    let w = m.runs.iter().map(|e| e.run.name.as_str().len()).max().unwrap_or(0);
    for e in &m.runs {
        let retrained = r.genotypes.iter().flat_map(|g| &g.retrainings).find(|x| x.name == e.run.name);
        let searched = r.genotypes.iter().find(|g| g.search == e.run.name);
        let result = match (retrained, searched) {
            (Some(x), _) => x.best_top1.map(|b| format!("best top-1 {b:.2}%")),
            (_, Some(g)) => g.search_time_s.map(|t| format!("searched in {}", dropnas_report::report::duration(t))),
            _ => None,
        };
        let detail = result.or(e.detail.clone()).unwrap_or_default();
        println!("  {:w$}  {:7}  {:7}  {detail}", e.run.name.as_str(), e.run.kind.as_str(), e.state.as_str());
    }
    if let Some(o) = &r.overall {
        let best = r.best.as_ref().map(|b| format!(", best {:.2} ({})", b.top1, b.name)).unwrap_or_default();
        println!("test top-1 over {} retraining(s): {}%{best}", o.n, o.short());
    }
    println!("results in {}", dir.join(results::RESULTS_MD).display());
}
