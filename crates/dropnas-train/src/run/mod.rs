//! The run engine under `search` and `augment`: one loop, written once, around a task's step.
//!
//! [`run`] owns the run folder and its lock, the configuration and its check on resume, typed
//! and versioned checkpoints, the data, progress and meters, the metric lines, `--max-steps`,
//! checkpoints at epoch ends and every N steps, the NaN guard, SIGINT/SIGTERM and
//! `summary.json`. A [`RunTask`] brings its model, its step and what it does at the end of an
//! epoch (the search: genotype and alphas; the retraining: the test set and the best network).

pub mod check;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod folder;
pub mod lines;
pub mod memory;
pub mod name;
pub mod progress;
pub mod signals;
pub mod tensorboard;

use crate::metrics::Meter;
use crate::parallel::Share;
use crate::parallel::peers::{Parallel, PeerGroup};
use crate::pending::PendingScalars;
use checkpoint::{Checkpoint, CheckpointError, CheckpointHeader, Position};
use config::{Control, GivenFlag, RunRecord, TaskConfig, differences, new_run_id};
use data::{DataRequest, RunData, load_run_data};
use dropnas_core::DropnasAutodiffBackend;
use dropnas_data::{Batch, DataError};
use folder::{BEST, CONFIG, FolderError, OpenMode, RunFolder};
use lines::{EpochLine, LossMeters, LossTerms, MetricLine, RunKind, StepLine, Summary};
use memory::MemoryEstimate;
use name::RunName;
use progress::Progress;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::cell::Cell;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tensorboard::EventWriter;

use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;

/// A step whose numbers are still on the device: what its metric line needs besides them.
struct QueuedStep {
    step: usize,
    global_step: usize,
    batch: usize,
    time_s: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error(
        "--resume continues {folder} with the configuration it started with, but the command line says otherwise:\n  {}\n\
         Drop these flags to resume, or start a new run under another --name. \
         (Run control may change on resume: --data-dir, --no-download, --workers, --device, --checkpoint-every, \
         --print-freq, --max-steps, --force.)",
        differences.join("\n  "),
        folder = folder.display()
    )]
    ResumeMismatch { folder: PathBuf, differences: Vec<String> },
    #[error(
        "the data differs from what the run in {folder} started with:\n  {}\n\
         Point --data-dir at the data the run started with.",
        differences.join("\n  "),
        folder = folder.display()
    )]
    DataChanged { folder: PathBuf, differences: Vec<String> },
    #[error("{0}")]
    Memory(String),
    #[error(
        "the loss became {value} at epoch {epoch}, step {step}; the run stopped and its last good checkpoint \
         ({checkpoint}) is kept. {hint}, or --resume to retry from the checkpoint"
    )]
    NonFinite { value: f64, epoch: usize, step: usize, checkpoint: String, hint: &'static str },
    #[error("stopped by {}: {kept}", signals::name(*signal))]
    Interrupted { signal: i32, kept: String },
}

impl RunError {
    /// Whether the error is the user's to fix (bad flags, data, files): exit code 2.
    pub fn is_user_error(&self) -> bool {
        !matches!(self, RunError::NonFinite { .. } | RunError::Interrupted { .. })
    }

    /// The exit code of a run stopped by a signal (130, 143).
    pub fn signal_exit_code(&self) -> Option<u8> {
        match self {
            RunError::Interrupted { signal, .. } => Some(signals::exit_code(*signal)),
            _ => None,
        }
    }
}

/// The numbers of one step, read from the device (see [`RunTask::step_result`]).
#[derive(Debug, Clone, Copy)]
pub struct StepResult {
    /// What the step minimised (see [`StepLine::loss`]).
    pub loss: f64,
    pub top1: f64,
    pub top5: f64,
    pub terms: LossTerms,
}

/// What a task says at the start of an epoch.
pub struct EpochStart {
    pub lr: f64,
    /// The log line (the original's wording).
    pub message: String,
}

/// What a task made of an epoch.
pub struct EpochEnd {
    /// The epoch's line of `metrics.jsonl`; the engine fills `epoch`, `lr` and `time_s`.
    pub line: EpochLine,
    /// Log lines.
    pub messages: Vec<String>,
    /// Whether the model is the best so far (tasks that keep `best.ckpt`).
    pub is_best: bool,
    /// Warnings for the log (what the task noticed that deserves attention).
    pub warnings: Vec<String>,
    /// TensorBoard scalars of the epoch beyond the engine's (tag, value).
    pub scalars: Vec<(&'static str, f64)>,
}

/// One kind of run: its model, its step, its end of epoch.
pub trait RunTask<B: DropnasAutodiffBackend>: Sized {
    const KIND: RunKind;
    /// Checkpoint parts that hold the trained model: what `best.ckpt` keeps. Empty: no `best.ckpt`.
    const MODEL_PARTS: &'static [&'static str];
    /// Width of the epoch number in the original's log lines.
    const EPOCH_WIDTH: usize;
    /// What to suggest when the loss becomes NaN.
    const NAN_HINT: &'static str;
    type Config: TaskConfig;
    /// The task's host-side state in the checkpoint header (RNG states, counters).
    type State: Serialize + DeserializeOwned;

    /// Cutout of the training augmentation (0: none).
    fn cutout(cfg: &Self::Config) -> usize;
    /// Whether the run tests after every epoch.
    fn needs_test_set() -> bool;
    /// Settings that are valid but would silently waste the run, in words (warned at the start).
    fn warnings(_cfg: &Self::Config) -> Vec<String> {
        Vec::new()
    }
    /// Peak memory of the run, before anything is allocated.
    fn estimate_memory(cfg: &Self::Config, data: &RunData) -> MemoryEstimate;
    /// A new run's model and optimizers.
    fn new(cfg: &Self::Config, data: &RunData, device: &B::Device) -> Result<Self, RunError>;
    /// Log lines that describe the run at its start.
    fn describe(&self) -> Vec<String>;
    /// Restores what [`Self::save`] wrote.
    fn restore(&mut self, state: Self::State, ckpt: &Checkpoint, path: &Path) -> Result<(), CheckpointError>;
    /// The host state and the parts of a checkpoint.
    #[allow(clippy::type_complexity)]
    fn save(&self) -> Result<(Self::State, Vec<(String, Vec<u8>)>), String>;
    /// On resume: drops what the task's own files hold beyond `next_epoch` (from 0).
    fn trim_files(&self, _folder: &RunFolder, _next_epoch: usize) -> Result<(), FolderError> {
        Ok(())
    }
    /// Called before the first step of `epoch` (`fresh`: not resumed in its middle).
    fn start_epoch(&mut self, epoch: usize, fresh: bool) -> Result<EpochStart, RunError>;
    /// One training step on `batch`. Its numbers stay on the device: the engine queues them and
    /// reads the queued steps in one transfer at log points (`--print-freq`, the epoch's end),
    /// before a checkpoint and where the run stops, so that the host never waits for the device
    /// inside an epoch (see [`PendingScalars`]). With `share`, `batch` is this peer's sub-batch of
    /// a data-parallel step: the step hands its gradients to [`Share::reduce`] after backward.
    fn step(&mut self, batch: &Batch, share: Option<&Share<'_, B::InnerBackend>>) -> Tensor<B::InnerBackend, 1>;
    /// A step's numbers from the values of its [`Self::step`] tensor and its batch size.
    fn step_result(values: &[f64], batch: usize) -> StepResult;
    /// A CRC of the trained values (see [`crate::parallel::fingerprint`]): the debug check of a
    /// data-parallel run asserts that every peer has the leader's after every step.
    fn fingerprint(&self) -> Option<u32> {
        None
    }
    /// After the last step of `epoch`, with the epoch's mean loss, top-1 and top-5.
    fn end_epoch(&mut self, epoch: usize, train: [f64; 3], folder: &RunFolder) -> Result<EpochEnd, RunError>;
    /// When the run stops (finished or not): the task's files and summary fields.
    fn finish(&self, folder: &RunFolder, finished: bool, summary: &mut Summary) -> Result<(), RunError>;
}

/// How a run is started.
pub enum Start<C> {
    /// A new run with this configuration.
    Fresh(C),
    /// Continue the run in the folder; these flags were given on the command line.
    Resume(Vec<GivenFlag>),
}

/// Everything the engine needs besides the task.
pub struct RunRequest<C> {
    pub name: RunName,
    pub out_dir: PathBuf,
    pub start: Start<C>,
    pub control: Control,
    /// The device, in words (for the log and `config.json`).
    pub device_name: String,
    /// Whether the model lives in host memory (the CPU backend): only then is the memory
    /// estimate compared with the memory available.
    pub host_memory: bool,
}

/// How a run ended.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub folder: PathBuf,
    pub summary: Summary,
    /// `--resume` of a run that had finished already: nothing ran.
    pub already_finished: bool,
}

/// Runs (or continues) a run of task `T` on `device`. `on_epoch` is called with the run folder
/// after every epoch's files are written (the CLI draws the plots there).
pub fn run<B: DropnasAutodiffBackend, T: RunTask<B> + 'static>(
    req: RunRequest<T::Config>,
    device: B::Device,
    on_epoch: &mut dyn FnMut(&Path),
) -> Result<RunOutcome, RunError>
where
    T::Config: Send + 'static,
{
    let name = req.device_name.clone();
    run_parallel::<B, T>(req, Parallel::single(device, name), on_epoch)
}

/// [`run`] data-parallel over the devices of `par` and, with several nodes, over processes:
/// node 0 writes the run folder; every other node runs in a scratch copy of it (read from the
/// run folder on `--resume`) that it deletes at the end.
pub fn run_parallel<B: DropnasAutodiffBackend, T: RunTask<B> + 'static>(
    req: RunRequest<T::Config>,
    par: Parallel<B::Device>,
    on_epoch: &mut dyn FnMut(&Path),
) -> Result<RunOutcome, RunError>
where
    T::Config: Send + 'static,
{
    if par.topology.rank == 0 {
        return run_here::<B, T>(req, par, on_epoch);
    }
    let real = req.out_dir.join(req.name.as_str());
    let scratch = std::env::temp_dir().join(format!("dropnas-node{}-{}", par.topology.rank, std::process::id()));
    let copy = || -> std::io::Result<()> {
        std::fs::create_dir_all(scratch.join(req.name.as_str()))?;
        if matches!(req.start, Start::Resume(_)) {
            for entry in std::fs::read_dir(&real)? {
                let entry = entry?;
                if entry.file_type()?.is_file() && entry.file_name() != folder::LOCK {
                    std::fs::copy(entry.path(), scratch.join(req.name.as_str()).join(entry.file_name()))?;
                }
            }
        }
        Ok(())
    };
    copy().map_err(|e| {
        RunError::Config(format!("node {}: reading the run folder {}: {e}", par.topology.rank, real.display()))
    })?;
    let req = RunRequest { out_dir: scratch.clone(), ..req };
    let outcome = run_here::<B, T>(req, par, &mut |_| {});
    let _ = std::fs::remove_dir_all(&scratch);
    outcome.map(|o| RunOutcome { folder: real, ..o })
}

fn run_here<B: DropnasAutodiffBackend, T: RunTask<B> + 'static>(
    req: RunRequest<T::Config>,
    par: Parallel<B::Device>,
    on_epoch: &mut dyn FnMut(&Path),
) -> Result<RunOutcome, RunError>
where
    T::Config: Send + 'static,
{
    let device = par.devices[0].clone();
    signals::install();
    signals::clear();
    let mode = match req.start {
        Start::Fresh(_) => OpenMode::Fresh,
        Start::Resume(_) => OpenMode::Resume,
    };
    let folder = RunFolder::open(&req.out_dir, &req.name, mode)?;
    let runner = Runner::<B, T> { folder, req, device, par, first_step_done: Cell::new(false), task: PhantomData };
    match runner.go(on_epoch) {
        Ok(outcome) => Ok(outcome),
        Err(e) => {
            // a run that failed before its first step leaves no folder behind
            if !runner.first_step_done.get() && mode == OpenMode::Fresh {
                runner.folder.discard_if_new();
            }
            Err(e)
        }
    }
}

/// Writes a checkpoint of the task at a position to a path (only the named parts, if given).
type SaveFn<'a, T> = dyn Fn(&T, &Position, &Path, Option<&[&str]>) -> Result<(), RunError> + 'a;

struct Runner<B: DropnasAutodiffBackend, T: RunTask<B>> {
    folder: RunFolder,
    req: RunRequest<T::Config>,
    device: B::Device,
    par: Parallel<B::Device>,
    first_step_done: Cell<bool>,
    task: PhantomData<T>,
}

impl<B: DropnasAutodiffBackend, T: RunTask<B> + 'static> Runner<B, T>
where
    T::Config: Send + 'static,
{
    /// The run's record and, on resume, its checkpoint, checked against each other and against
    /// the command line.
    #[allow(clippy::type_complexity)]
    fn resolve(&self) -> Result<(T::Config, Option<RunRecord<T::Config>>, Option<Checkpoint>), RunError> {
        let given = match &self.req.start {
            Start::Fresh(cfg) => return Ok((cfg.clone(), None, None)),
            Start::Resume(given) => given,
        };
        let path = self.folder.path(CONFIG);
        let bytes = self.folder.read(CONFIG)?.ok_or_else(|| {
            RunError::Config(format!(
                "{} is missing: the run folder is incomplete and cannot be resumed",
                path.display()
            ))
        })?;
        let record: RunRecord<T::Config> = serde_json::from_slice(&bytes).map_err(|e| {
            RunError::Config(format!(
                "{} is not a {} run's configuration of this dropnas version: {e}",
                path.display(),
                T::KIND
            ))
        })?;
        let ckpt_path = self.folder.checkpoint_path();
        let ckpt = Checkpoint::load_nofollow(&ckpt_path)?;
        ckpt.expect_kind(T::KIND, &ckpt_path)?;
        let header: CheckpointHeader<T::Config, serde_json::Value> = ckpt.header(&ckpt_path)?;
        if header.run_id != record.run_id || header.config != record.config {
            return Err(RunError::Config(format!(
                "{} does not belong to the run in {} (its configuration or run id differs from config.json): \
                 it was copied in from another run. Put that run's own checkpoint back, or start a new run",
                ckpt_path.display(),
                self.folder.root.display()
            )));
        }
        let diffs = differences(given, &record.config);
        if !diffs.is_empty() {
            return Err(RunError::ResumeMismatch { folder: self.folder.root.clone(), differences: diffs });
        }
        Ok((record.config.clone(), Some(record), Some(ckpt)))
    }

    fn go(&self, on_epoch: &mut dyn FnMut(&Path)) -> Result<RunOutcome, RunError> {
        let (cfg, record, ckpt) = self.resolve()?;
        cfg.validate().map_err(RunError::Config)?;
        let ckpt_path = self.folder.checkpoint_path();
        let header: Option<CheckpointHeader<T::Config, T::State>> =
            ckpt.as_ref().map(|c| c.header(&ckpt_path)).transpose()?;
        let basics = cfg.basics();
        if let Some(h) = &header
            && h.position.epoch >= basics.epochs
        {
            let summary: Summary =
                self.folder.read("summary.json")?.and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
            return Ok(RunOutcome { folder: self.folder.root.clone(), summary, already_finished: true });
        }

        let request = DataRequest {
            basics: &basics,
            max_test_samples: cfg.max_test_samples(),
            cutout: T::cutout(&cfg),
            with_test: T::needs_test_set(),
        };
        let data = Arc::new(load_run_data(&request, &self.req.control)?);
        if let Some(r) = &record {
            let diffs = data.identity.differences(&r.data);
            if !diffs.is_empty() {
                return Err(RunError::DataChanged { folder: self.folder.root.clone(), differences: diffs });
            }
        }
        if self.req.host_memory {
            memory::check(&T::estimate_memory(&cfg, &data), memory::available_bytes(), self.req.control.force)
                .map_err(RunError::Memory)?;
        }
        let control = &self.req.control;
        let loader = &data.train.loader;
        let steps_per_epoch = loader.batches_per_epoch();

        let mut task = T::new(&cfg, &data, &self.device)?;
        let mut pos = Position::default();
        let run_id = match (&record, header) {
            (Some(r), Some(h)) => {
                task.restore(h.state, ckpt.as_ref().expect("read with the header"), &ckpt_path)?;
                pos = h.position;
                let (e, g) = (pos.epoch, pos.global_step);
                self.folder.truncate_metrics(|l| match l {
                    MetricLine::Step(s) => (s.global_step as usize) < g,
                    MetricLine::Epoch(line) => (line.epoch as usize) <= e,
                    MetricLine::Other => true,
                })?;
                task.trim_files(&self.folder, e)?;
                r.run_id.clone()
            }
            _ => {
                let record = RunRecord {
                    kind: T::KIND,
                    name: self.req.name.clone(),
                    run_id: new_run_id(),
                    dropnas_version: env!("CARGO_PKG_VERSION").into(),
                    config: cfg.clone(),
                    data: data.identity.clone(),
                    control: control.clone(),
                    device: self.req.device_name.clone(),
                };
                self.folder.write_json(CONFIG, &record)?;
                record.run_id
            }
        };

        let mut group = if self.par.is_parallel() {
            Some(PeerGroup::<B>::start::<T>(&self.par, &cfg, &data, &task)?)
        } else {
            None
        };

        let hidden = indicatif::ProgressBar::hidden();
        let folder = &self.folder;
        let resuming = record.is_some();
        folder.say(
            &hidden,
            &format!(
                "{} {} `{}` on {} ({}): {} training images{}, {steps_per_epoch} steps per epoch",
                if resuming { "resuming" } else { "starting" },
                T::KIND,
                self.req.name,
                data.dataset.display_name(),
                self.req.device_name,
                loader.len(),
                data.test.as_ref().map(|t| format!(" / {} test images", t.loader.len())).unwrap_or_default(),
            ),
        );
        for note in &data.notes {
            folder.say(&hidden, note);
        }
        if self.par.is_parallel() {
            let t = &self.par.topology;
            folder.say(
                &hidden,
                &format!(
                    "data parallel: {} peers ({} on each of {} node{}: {}), node {} of {} ({}); batch {} split as DataParallel does",
                    self.par.total_peers(),
                    self.par.devices.len(),
                    t.nodes,
                    if t.nodes == 1 { "" } else { "s" },
                    self.par.names.join(", "),
                    t.rank,
                    t.nodes,
                    t.source,
                    basics.batch_size,
                ),
            );
        }
        let mut warnings = data.warnings.clone();
        if basics.batch_size > loader.len() {
            warnings.push(format!(
                "--batch-size {} is larger than the training set ({} images): every epoch is one step of {} images",
                basics.batch_size,
                loader.len(),
                loader.len()
            ));
        }
        warnings.extend(T::warnings(&cfg));
        for w in &warnings {
            folder.warn(&hidden, w);
        }
        for line in task.describe() {
            folder.say(&hidden, &line);
        }
        if resuming {
            folder.say(
                &hidden,
                &format!("continuing at epoch {}, step {} (global step {})", pos.epoch + 1, pos.step, pos.global_step),
            );
        }

        let started = Instant::now() - Duration::from_secs_f64(pos.elapsed_s);
        let mut live = Live {
            folder,
            events: EventWriter::open(&folder.root, resuming.then_some(pos.events_len), unix_now())?,
            progress: Progress::new(steps_per_epoch, basics.epochs, pos.global_step),
            epochs: basics.epochs,
            steps_per_epoch,
            width: T::EPOCH_WIDTH,
            print_freq: control.print_freq,
            wall_zero: unix_now() - pos.elapsed_s,
        };
        let save = |task: &T, pos: &Position, path: &Path, parts: Option<&[&str]>| -> Result<(), RunError> {
            let (state, all) = task.save().map_err(|e| RunError::Config(format!("saving a checkpoint: {e}")))?;
            let header = CheckpointHeader {
                kind: T::KIND,
                run_id: run_id.clone(),
                dropnas_version: env!("CARGO_PKG_VERSION").into(),
                position: *pos,
                config: cfg.clone(),
                state,
            };
            let mut ckpt = Checkpoint::new(&header);
            for (name, bytes) in all {
                if parts.is_none_or(|p| p.contains(&name.as_str())) {
                    ckpt = ckpt.with_part(&name, bytes);
                }
            }
            ckpt.save(path)?;
            Ok(())
        };

        let mut stopped = false;
        // this invocation's time in steps (for the all-reduce's share)
        let mut step_time = Duration::ZERO;
        let mut asked_stop: Option<i32> = None;
        for epoch in pos.epoch..basics.epochs {
            let first = if epoch == pos.epoch { pos.step } else { 0 };
            if first == 0 {
                pos.meters = [Meter::default(); 3];
                pos.terms = LossMeters::default();
            }
            let start = task.start_epoch(epoch, first == 0)?;
            if let Some(g) = &group {
                g.start_epoch(epoch, first == 0);
            }
            live.progress.start_epoch(epoch, basics.epochs, first);
            folder.say(&live.progress.bar, &start.message);
            // the steps' numbers wait on the device until a log point (see `RunTask::step`)
            let mut pending = PendingScalars::default();
            let mut since = Instant::now();
            for (step, batch) in (first..).zip(loader.epoch(epoch, first)) {
                let batch = batch?;
                if let Some(signal) = signals::stop_requested() {
                    match &group {
                        // several nodes: the stop travels with the next all-reduce, so that
                        // every node stops after the same step
                        Some(g) if self.par.topology.nodes > 1 => {
                            g.ask_stop();
                            asked_stop = Some(signal);
                        }
                        _ => {
                            let at = Drain { epoch, lr: start.lr, ckpt_path: &ckpt_path };
                            drain::<B, T>(&mut pending, &mut since, &mut pos, &mut live, &at)?;
                            live.progress.finish();
                            pos.events_len = live.flush()?;
                            return Err(self.interrupted(signal, &task, &pos, &save));
                        }
                    }
                }
                let t0 = Instant::now();
                let scalars = match &group {
                    Some(g) => g.step(&mut task, &batch),
                    None => task.step(&batch, None),
                };
                step_time += t0.elapsed();
                self.first_step_done.set(true);
                pos.global_step += 1;
                pos.epoch = epoch;
                pos.step = step + 1;
                pos.elapsed_s = started.elapsed().as_secs_f64();
                let queued =
                    QueuedStep { step, global_step: pos.global_step - 1, batch: batch.len(), time_s: pos.elapsed_s };
                pending.push(queued, scalars);
                if group.as_ref().is_some_and(|g| g.stop_seen()) {
                    let at = Drain { epoch, lr: start.lr, ckpt_path: &ckpt_path };
                    drain::<B, T>(&mut pending, &mut since, &mut pos, &mut live, &at)?;
                    live.progress.finish();
                    pos.events_len = live.flush()?;
                    let signal = asked_stop.unwrap_or(libc::SIGTERM);
                    let e = self.interrupted(signal, &task, &pos, &save);
                    if let Some(g) = group.take() {
                        g.finish();
                    }
                    return Err(e);
                }
                let out_of_steps = control.max_steps.is_some_and(|m| pos.global_step >= m);
                let every = control.checkpoint_every;
                let mid_epoch = every > 0 && pos.step.is_multiple_of(every) && pos.step < steps_per_epoch;
                let log_point = step % control.print_freq.max(1) == 0 || step + 1 == steps_per_epoch;
                if log_point || mid_epoch || out_of_steps {
                    let at = Drain { epoch, lr: start.lr, ckpt_path: &ckpt_path };
                    drain::<B, T>(&mut pending, &mut since, &mut pos, &mut live, &at)?;
                }
                if mid_epoch || out_of_steps {
                    pos.events_len = live.flush()?;
                    save(&task, &pos, &ckpt_path, None)?;
                }
                if out_of_steps {
                    stopped = true;
                    break;
                }
            }
            // the epoch's last step is a log point: this reads something only if the data ended early
            let at = Drain { epoch, lr: start.lr, ckpt_path: &ckpt_path };
            drain::<B, T>(&mut pending, &mut since, &mut pos, &mut live, &at)?;
            live.progress.finish();
            if stopped {
                let msg =
                    format!("stopped after {} steps (--max-steps); --resume continues from here", pos.global_step);
                folder.say(&live.progress.bar, &msg);
                break;
            }
            if let Some(signal) = signals::stop_requested() {
                pos.events_len = live.flush()?;
                return Err(self.interrupted(signal, &task, &pos, &save));
            }

            let means = [pos.meters[0].avg(), pos.meters[1].avg(), pos.meters[2].avg()];
            let mut end = task.end_epoch(epoch, means, folder)?;
            end.line.epoch = epoch as u32 + 1;
            end.line.lr = Some(start.lr);
            end.line.time_s = Some(started.elapsed().as_secs_f64());
            end.line.terms = pos.terms.means();
            live.end_epoch(&end, pos.global_step, means[1], started.elapsed().as_secs_f64())?;
            pos.epoch = epoch + 1;
            pos.step = 0;
            pos.elapsed_s = started.elapsed().as_secs_f64();
            pos.events_len = live.flush()?;
            save(&task, &pos, &ckpt_path, None)?;
            // best.ckpt exists from the first epoch on, even while the accuracy stays at 0
            if !T::MODEL_PARTS.is_empty() && (end.is_best || !folder.has(BEST)) {
                save(&task, &pos, &folder.path(BEST), Some(T::MODEL_PARTS))?;
            }
            on_epoch(&folder.root);
        }
        live.flush()?;

        let mut summary = Summary {
            kind: Some(T::KIND),
            finished: !stopped,
            epochs_done: pos.epoch,
            steps_done: pos.global_step,
            elapsed_s: Some(started.elapsed().as_secs_f64()),
            final_train_loss: Some(pos.meters[0].avg()),
            final_train_top1: Some(pos.meters[1].avg()),
            device: Some(self.req.device_name.clone()),
            ..Summary::default()
        };
        if let Some(g) = group.take() {
            let (spent, calls) = g.all_reduce_time();
            g.finish();
            summary.devices = Some(self.par.names.clone());
            summary.nodes = Some(self.par.topology.nodes);
            if calls > 0 {
                summary.all_reduce_s_per_step = Some(spent.as_secs_f64() / calls as f64);
                summary.all_reduce_share = Some(spent.as_secs_f64() / step_time.as_secs_f64().max(1e-9));
                folder.say(
                    &hidden,
                    &format!(
                        "all-reduce: {:.1} ms per step, {:.1}% of the step time ({} peers on {} node{})",
                        1e3 * spent.as_secs_f64() / calls as f64,
                        100.0 * spent.as_secs_f64() / step_time.as_secs_f64().max(1e-9),
                        self.par.total_peers(),
                        self.par.topology.nodes,
                        if self.par.topology.nodes == 1 { "" } else { "s" },
                    ),
                );
            }
        }
        task.finish(folder, !stopped, &mut summary)?;
        folder.write_json("summary.json", &summary)?;
        on_epoch(&folder.root);
        Ok(RunOutcome { folder: folder.root.clone(), summary, already_finished: false })
    }

    /// A signal asked the run to stop: a checkpoint of where it is, and how to go on.
    fn interrupted(&self, signal: i32, task: &T, pos: &Position, save: &SaveFn<'_, T>) -> RunError {
        let hidden = indicatif::ProgressBar::hidden();
        let kept = if pos.global_step == 0 && !self.folder.has(folder::CHECKPOINT) {
            "no step had run; nothing was kept".to_string()
        } else {
            match save(task, pos, &self.folder.checkpoint_path(), None) {
                Ok(()) => format!(
                    "checkpoint written at epoch {}, step {} (global step {}) in {}; continue with \
                     `dropnas {} --name {} --out-dir {} --resume`",
                    pos.epoch + 1,
                    pos.step,
                    pos.global_step,
                    self.folder.root.display(),
                    T::KIND,
                    self.req.name,
                    self.req.out_dir.display()
                ),
                Err(e) => format!("writing the checkpoint failed ({e}); the last one on disk is kept"),
            }
        };
        self.folder.say(&hidden, &format!("stopped by {}: {kept}", signals::name(signal)));
        RunError::Interrupted { signal, kept }
    }
}

/// Where queued steps are read: the epoch, its learning rate, the checkpoint a NaN leaves.
struct Drain<'a> {
    epoch: usize,
    lr: f64,
    ckpt_path: &'a Path,
}

/// Reads the queued steps (one transfer), stops at a NaN loss (nothing after the last
/// checkpoint is saved: every checkpoint is preceded by a read), and records each step: meters,
/// metric line, TensorBoard, console. `since`: when the previous read was; the time since is
/// shared out over the steps read (the host does not wait for the device in between).
fn drain<B: DropnasAutodiffBackend, T: RunTask<B>>(
    pending: &mut PendingScalars<<B as AutodiffBackend>::InnerBackend, QueuedStep>,
    since: &mut Instant,
    pos: &mut Position,
    live: &mut Live<'_>,
    at: &Drain<'_>,
) -> Result<(), RunError> {
    let queued = pending.read();
    let step_s = since.elapsed().as_secs_f64() / queued.len().max(1) as f64;
    *since = Instant::now();
    for (q, values) in queued {
        let r = T::step_result(&values, q.batch);
        if !r.loss.is_finite() {
            live.progress.finish();
            return Err(RunError::NonFinite {
                value: r.loss,
                epoch: at.epoch + 1,
                step: q.step,
                checkpoint: at.ckpt_path.display().to_string(),
                hint: T::NAN_HINT,
            });
        }
        pos.meters[0].update(r.loss, q.batch);
        pos.meters[1].update(r.top1, q.batch);
        pos.meters[2].update(r.top5, q.batch);
        pos.terms.update(&r.terms, q.batch);
        let line = StepLine {
            epoch: at.epoch as u32 + 1,
            step: q.step as u64,
            global_step: q.global_step as u64,
            loss: r.loss,
            top1: r.top1,
            top5: r.top5,
            lr: at.lr,
            terms: r.terms,
            time_s: q.time_s,
            step_s: Some(step_s),
        };
        live.step(&line, pos, q.batch)?;
    }
    Ok(())
}

/// Seconds since the UNIX epoch (TensorBoard's wall time).
fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// What a running run shows and records besides the task's own files: metric lines, the
/// TensorBoard event file, the console and the human log.
struct Live<'a> {
    folder: &'a RunFolder,
    events: EventWriter,
    progress: Progress,
    epochs: usize,
    steps_per_epoch: usize,
    width: usize,
    print_freq: usize,
    /// UNIX time the run's clock started (the run's `time_s` is counted from here).
    wall_zero: f64,
}

impl Live<'_> {
    fn step(&mut self, line: &StepLine, pos: &Position, batch: usize) -> Result<(), RunError> {
        self.folder.metric(&MetricLine::Step(line.clone()))?;
        let (epoch, step) = (line.epoch as usize - 1, line.step as usize);
        let t = line.terms;
        let mut scalars = vec![("train/loss", line.loss), ("train/top1", line.top1), ("train/top5", line.top5)];
        scalars.extend(
            [("train/ce", t.loss_1.or(t.ce)), ("train/reg", t.loss_2), ("train/ce_aux", t.ce_aux)]
                .into_iter()
                .filter_map(|(tag, v)| v.map(|v| (tag, v))),
        );
        if step == 0 {
            scalars.push(("train/lr", line.lr));
        }
        self.events.scalars(line.global_step, self.wall_zero + line.time_s, &scalars);

        let rate = line.step_s.filter(|&s| s > 0.0).map_or(0.0, |s| batch as f64 / s);
        let eta = |d: Option<Duration>| d.map_or_else(|| "?".into(), progress::clock);
        let run_eta = eta(self.progress.run_eta(pos.global_step));
        let means = pos.terms.means().labelled();
        self.progress.bar.set_position(step as u64 + 1);
        self.progress.bar.set_message(format!(
            "{means} top1 {:.1}% {rate:.0} img/s, run ETA {run_eta}",
            100.0 * pos.meters[1].avg()
        ));
        if step % self.print_freq == 0 || step + 1 == self.steps_per_epoch {
            // the original's line (its "Loss" is what the step minimised: loss_1 + loss_2 in a search)
            let original = format!(
                "Train: [{:w$}/{}] Step {step:03}/{:03} Loss {:.3} Prec@(1,5) ({:.1}%, {:.1}%)",
                epoch + 1,
                self.epochs,
                self.steps_per_epoch - 1,
                pos.meters[0].avg(),
                100.0 * pos.meters[1].avg(),
                100.0 * pos.meters[2].avg(),
                w = self.width,
            );
            if self.progress.terminal {
                self.folder.say(&self.progress.bar, &original);
            } else {
                // piped: no bar, so the rates and ETAs go on the line
                self.folder.log(&original);
                let epoch_eta = eta(self.progress.epoch_eta(step));
                tracing::info!("{original} | {means} | {rate:.0} img/s | ETA epoch {epoch_eta}, run {run_eta}");
            }
            self.flush()?;
        }
        Ok(())
    }

    fn end_epoch(&mut self, end: &EpochEnd, global_step: usize, top1: f64, time_s: f64) -> Result<(), RunError> {
        let (epoch, bar) = (end.line.epoch, &self.progress.bar);
        let w = self.width;
        self.folder.say(bar, &format!("Train: [{epoch:w$}/{}] Final Prec@1 {:.4}%", self.epochs, 100.0 * top1));
        for m in &end.messages {
            self.folder.say(bar, m);
        }
        for w in &end.warnings {
            self.folder.warn(bar, w);
        }
        self.folder.metric(&MetricLine::Epoch(end.line.clone()))?;
        let l = &end.line;
        let val = [("val/loss", l.val_loss), ("val/top1", l.val_top1), ("val/top5", l.val_top5)];
        let mut scalars: Vec<(&str, f64)> = val.into_iter().filter_map(|(t, v)| v.map(|v| (t, v))).collect();
        scalars.extend(end.scalars.iter().copied());
        if !scalars.is_empty() {
            self.events.scalars(global_step as u64, self.wall_zero + time_s, &scalars);
        }
        Ok(())
    }

    /// Writes the buffered TensorBoard points; returns the event file's length.
    fn flush(&mut self) -> Result<u64, RunError> {
        self.events.flush()?;
        Ok(self.events.len())
    }
}
