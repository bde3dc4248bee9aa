//! What `search` and `augment` share on the command line: the flags given explicitly (compared
//! with the run's configuration on `--resume`), and the run engine's errors as exit codes.

use crate::device::DeviceSpec;
use crate::launch::Launch;
use crate::{ExitWith, UserError};
use clap::parser::ValueSource;
use dropnas_train::parallel::peers::Parallel;
use dropnas_train::run::config::{Control, GivenFlag};
use dropnas_train::run::name::RunName;
use dropnas_train::run::{RunError, RunOutcome, RunRequest, Start};
use serde::Serialize;
use std::path::PathBuf;

/// The arguments of a subcommand given on the command line (not defaulted): `(id, --long)`.
#[derive(Debug, Clone, Default)]
pub struct Given(pub Vec<(String, String)>);

impl Given {
    pub fn from_matches(cmd: &clap::Command, m: &clap::ArgMatches) -> Self {
        let flags = cmd
            .get_arguments()
            .filter(|a| m.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine))
            .map(|a| {
                let long = a.get_long().map_or_else(|| a.get_id().to_string(), |l| format!("--{l}"));
                (a.get_id().to_string(), long)
            })
            .collect();
        Given(flags)
    }

    /// `from` (an old flag's id) read as `to` (the setting it stands for), so that a resume
    /// compares the setting; the flag's text stays the one the user typed.
    pub fn aliased(mut self, from: &str, to: &str) -> Self {
        for (key, _) in &mut self.0 {
            if key == from {
                *key = to.into();
            }
        }
        self
    }

    /// The given flags with their values as `config` (the configuration the command line
    /// describes, as JSON) holds them.
    pub fn with_values(&self, config: &serde_json::Value) -> Vec<GivenFlag> {
        self.0
            .iter()
            .filter_map(|(key, flag)| {
                let value = config.get(key)?.clone();
                Some(GivenFlag { key: key.clone(), flag: flag.clone(), value })
            })
            .collect()
    }
}

/// A resume: the given flags with the values the command line gives them (`settings`, and the
/// `extra` keys such as the data set), to be compared with the run's configuration.
pub fn resume_start<C>(given: &Given, settings: &impl Serialize, extra: &[(&str, serde_json::Value)]) -> Start<C> {
    let mut cli = serde_json::to_value(settings).expect("settings are JSON");
    for (key, value) in extra {
        cli[*key] = value.clone();
    }
    Start::Resume(given.with_values(&cli))
}

/// The engine's request for a run on `spec`.
pub fn request<C>(
    name: RunName,
    out_dir: PathBuf,
    start: Start<C>,
    control: Control,
    spec: &DeviceSpec,
) -> RunRequest<C> {
    RunRequest { name, out_dir, start, control, device_name: spec.describe(), host_memory: *spec == DeviceSpec::Cpu }
}

/// The engine's request for a run on `launch`'s devices.
pub fn request_on<C>(
    name: RunName,
    out_dir: PathBuf,
    start: Start<C>,
    control: Control,
    launch: &Launch,
) -> RunRequest<C> {
    let mut req = request(name, out_dir, start, control, &launch.devices[0]);
    req.device_name = launch.describe();
    req
}

/// The devices of `launch` with their names and this process's node.
pub fn parallel<D>(launch: &Launch, devices: Vec<D>) -> Parallel<D> {
    Parallel {
        devices,
        names: launch.devices.iter().map(DeviceSpec::describe).collect(),
        topology: launch.topology.clone(),
    }
}

/// The run engine's error as the CLI reports it: the user's to fix (exit 2), a stop by a
/// signal (130, 143), or an internal error (1).
pub fn run_error(e: RunError) -> anyhow::Error {
    if let Some(code) = e.signal_exit_code() {
        return ExitWith::new(code, e.to_string()).into();
    }
    if e.is_user_error() { UserError::new(e.to_string()).into() } else { e.into() }
}

/// What a resume of a finished run says.
pub fn say_finished(o: &RunOutcome) {
    println!(
        "{} has finished already ({} epochs, {} steps): nothing to resume; its results are in that folder",
        o.folder.display(),
        o.summary.epochs_done,
        o.summary.steps_done
    );
}
