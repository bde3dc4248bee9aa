//! What a run is (its task's configuration, recorded once in `config.json`) and how one
//! invocation runs it ([`Control`]: may change on `--resume`).
//!
//! `--resume` takes the configuration from the run folder. A flag given on the command line
//! that differs from it is an error listing each difference, so that nobody believes they
//! changed a resumed run's learning rate. The run-control flags of [`Control`] and the folder's
//! place (`--name`, `--out-dir`) are the exceptions: they say where and how this invocation
//! runs, not what the run is.

use crate::run::check;
use crate::run::lines::RunKind;
use crate::run::name::RunName;
use dropnas_data::{DataIdentity, Dataset, FolderTransforms};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How this invocation runs. None of it changes what the run computes.
#[derive(clap::Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Control {
    /// Folder of the data set [default: datasets/<dataset>; an image folder needs it]
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Never download a missing data set (by default it is downloaded on first use, as the original does)
    #[arg(long)]
    pub no_download: bool,
    /// Data loader threads
    #[arg(long, default_value_t = 1, value_parser = check::parse::at_least_one)]
    pub workers: usize,
    /// cpu, cuda[:N] or wgpu[:N] [default: BURN_DEVICE, else the best compiled in]
    #[arg(long)]
    pub device: Option<String>,
    /// Also checkpoint every N steps inside an epoch (0: at the end of each epoch only)
    #[arg(long, default_value_t = 0)]
    pub checkpoint_every: usize,
    /// Log a line every N steps (the original's print_freq)
    #[arg(long, default_value_t = 50, value_parser = check::parse::at_least_one)]
    pub print_freq: usize,
    /// Stop after N steps in total; a later --resume continues
    #[arg(long, value_parser = check::parse::at_least_one)]
    pub max_steps: Option<usize>,
    /// Start even when the estimated peak memory exceeds the memory available
    #[arg(long)]
    pub force: bool,
}

impl Default for Control {
    /// The flags' defaults (one definition: clap's).
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Wrap {
            #[command(flatten)]
            c: Control,
        }
        <Wrap as clap::Parser>::parse_from(["control"]).c
    }
}

impl Control {}

/// What every run's configuration has, with the same defaults.
#[derive(clap::Args, Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunBasics {
    /// Seed of the initial weights, the data order and augmentation, the dropout and drop-path masks
    #[arg(long, default_value_t = 666)]
    pub seed: u64,
    /// Use only the first N training images (image folders: N spread evenly over the sorted file list)
    #[arg(long, value_parser = check::parse::at_least_one)]
    pub max_train_samples: Option<usize>,
}

/// What the engine reads of a configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Basics {
    pub dataset: Dataset,
    /// An image folder's input size and preprocessing.
    pub folder: Option<FolderTransforms>,
    pub batch_size: usize,
    pub epochs: usize,
    pub seed: u64,
    pub max_train_samples: Option<usize>,
}

impl Basics {
    pub fn new(
        dataset: Dataset,
        folder: Option<&FolderTransforms>,
        batch_size: usize,
        epochs: usize,
        run: &RunBasics,
    ) -> Self {
        let folder = folder.cloned();
        Basics { dataset, folder, batch_size, epochs, seed: run.seed, max_train_samples: run.max_train_samples }
    }
}

/// What the run engine needs to know of a task's configuration.
pub trait TaskConfig: Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug {
    fn basics(&self) -> Basics;
    /// Test on only the first N test images (runs that test).
    fn max_test_samples(&self) -> Option<usize> {
        None
    }
    /// Checks every value (also those read back from a file or built in code) with the rules
    /// the flags are parsed with ([`check_args`]), and the rules between values.
    fn validate(&self) -> Result<(), String>;
}

/// Checks the values of `args` (a `clap::Args` struct) against the value parsers of its own
/// flags, as if they had been typed: one definition of each rule for the command line,
/// `config.json` and configurations built in code. The error names the flag.
pub fn check_args<T: clap::Args + Serialize>(args: &T) -> Result<(), String> {
    use clap::ArgAction;
    use serde_json::Value;
    let cmd =
        T::augment_args(clap::Command::new("check").no_binary_name(true)).mut_args(|a| a.allow_negative_numbers(true));
    let values = serde_json::to_value(args).map_err(|e| e.to_string())?;
    let mut argv: Vec<String> = Vec::new();
    for arg in cmd.get_arguments() {
        let (Some(long), Some(v)) = (arg.get_long(), values.get(arg.get_id().as_str())) else { continue };
        let flag = format!("--{long}");
        match (arg.get_action(), v) {
            (ArgAction::SetTrue, Value::Bool(true)) | (ArgAction::SetFalse, Value::Bool(false)) => argv.push(flag),
            (ArgAction::SetTrue | ArgAction::SetFalse, _) | (_, Value::Null) => {}
            (_, Value::String(s)) => argv.extend([flag, s.clone()]),
            (_, v) => argv.extend([flag, v.to_string()]),
        }
    }
    cmd.try_get_matches_from(argv).map(|_| ()).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        first.strip_prefix("error: ").unwrap_or(first).to_string()
    })
}

/// `config.json`: the run's configuration, its identity, its data and where it first ran. The
/// folder alone reproduces the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord<C> {
    pub kind: RunKind,
    pub name: RunName,
    /// Drawn when the run starts; its checkpoints carry it (a checkpoint copied in from another
    /// run is refused).
    pub run_id: String,
    pub dropnas_version: String,
    #[serde(flatten)]
    pub config: C,
    /// The data files the run reads (content MD5s), checked on resume.
    pub data: DataIdentity,
    /// The first invocation's run control (a resume may change it).
    pub control: Control,
    /// The first invocation's device.
    pub device: String,
}

/// A flag given on the command line, with its value as the configuration would hold it.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenFlag {
    /// The configuration key (`w_lr`).
    pub key: String,
    /// The flag as typed (`--w-lr`).
    pub flag: String,
    pub value: serde_json::Value,
}

/// Each given flag whose value differs from `saved`'s, in words. Flags that are not keys of the
/// configuration (run control, the folder's place) are not compared.
pub fn differences<C: Serialize>(given: &[GivenFlag], saved: &C) -> Vec<String> {
    let saved = serde_json::to_value(saved).expect("configurations are JSON");
    given
        .iter()
        .filter_map(|g| {
            let was = saved.get(&g.key)?;
            (*was != g.value).then(|| format!("{} {} (the run has {})", g.flag, show(&g.value), show(was)))
        })
        .collect()
}

fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "unset".into(),
        v => v.to_string(),
    }
}

/// A new run id: time and process, enough to tell two runs apart.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    format!("{:x}-{:x}-{:x}", now.as_secs(), now.subsec_nanos(), std::process::id())
}

/// Clap's defaults of a flattened `clap::Args` struct: how a configuration's `Default` is made,
/// so that each default is written once, in its `#[arg(default_value_t = ...)]`.
pub fn clap_defaults<T: clap::Args>(args: &[&str]) -> T {
    let cmd = T::augment_args(clap::Command::new("defaults").no_binary_name(true));
    let matches = cmd.get_matches_from(args);
    T::from_arg_matches(&matches).expect("the defaults parse")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_with_the_flags_own_rules() {
        let ok = RunBasics { seed: 1, max_train_samples: Some(5) };
        check_args(&ok).unwrap();
        let e = check_args(&RunBasics { max_train_samples: Some(0), ..ok }).unwrap_err();
        assert!(e.contains("--max-train-samples") && e.contains("at least 1"), "{e}");
        let d: RunBasics = clap_defaults(&[]);
        assert_eq!((d.seed, d.max_train_samples), (666, None));
    }

    #[test]
    fn only_given_flags_that_differ_are_reported() {
        #[derive(Serialize)]
        struct C {
            w_lr: f64,
            layers: usize,
            dataset: String,
        }
        let saved = C { w_lr: 0.0375, layers: 5, dataset: "fashion-mnist".into() };
        let given = vec![
            GivenFlag { key: "w_lr".into(), flag: "--w-lr".into(), value: serde_json::json!(0.0375) },
            GivenFlag { key: "layers".into(), flag: "--layers".into(), value: serde_json::json!(3) },
            GivenFlag { key: "dataset".into(), flag: "--dataset".into(), value: serde_json::json!("mnist") },
            GivenFlag { key: "workers".into(), flag: "--workers".into(), value: serde_json::json!(4) },
        ];
        let d = differences(&given, &saved);
        assert_eq!(d, ["--layers 3 (the run has 5)", "--dataset mnist (the run has fashion-mnist)"]);
        let c = Control::default();
        assert_eq!((c.workers, c.print_freq, c.checkpoint_every, c.max_steps), (1, 50, 0, None));
    }
}
