//! `dropnas`: DropNAS architecture search, retraining and evaluation on Burn.

mod commands;
mod device;
mod folder_args;
mod genotype_arg;
mod launch;
mod quiet_panics;

use clap::{CommandFactory, FromArgMatches, Subcommand};
use std::process::ExitCode;

/// An error in what the user asked for (a bad flag value, a malformed genotype, missing data):
/// reported without a backtrace, exit code 2.
#[derive(Debug)]
pub struct UserError(String);

impl UserError {
    pub fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

/// A run that ends with a particular exit code (130 after SIGINT, 143 after SIGTERM) and a
/// message.
#[derive(Debug)]
pub struct ExitWith(u8, String);

impl ExitWith {
    pub fn new(code: u8, msg: impl Into<String>) -> Self {
        Self(code, msg.into())
    }
}

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for ExitWith {}

#[derive(clap::Parser, Debug)]
#[command(name = "dropnas", version, about = "DropNAS: grouped operation dropout for one-level DARTS, on Burn")]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Parameters and multiply-adds of an augment network (--genotype) or of the search supernet (--search)
    Info(commands::info::InfoArgs),
    /// Search a cell architecture with one-level DropNAS
    Search(Box<commands::search::SearchArgs>),
    /// Retrain a genotype from scratch ("augment") and test it after every epoch
    Augment(Box<commands::augment::AugmentArgs>),
    /// Test a network saved by `augment`
    Eval(commands::augment::EvalArgs),
    /// List, show and check genotypes
    #[command(subcommand)]
    Genotype(commands::genotype::GenotypeCommand),
    /// Time training steps and report peak memory
    #[command(subcommand)]
    Bench(commands::bench::BenchCommand),
    /// Check a device against the PyTorch reference fixtures (tools/fixtures)
    #[cfg(feature = "selftest")]
    Selftest(commands::selftest::SelftestArgs),
    /// Summarise a run folder and write its plots, TensorBoard events and report.md; or compare runs
    Report(commands::report::ReportArgs),
    /// The paper's protocol: searches x retrainings, mean ± std and best, locally or on Slurm
    #[command(subcommand)]
    Protocol(commands::protocol::ProtocolCommand),
}

/// The command line as `main` parses it (also what a protocol's runs are checked against).
pub(crate) fn cli_command() -> clap::Command {
    // `--w-grad-clip -1` reaches the flag's check, which says what is wrong with it, instead of
    // being taken for an unknown flag `-1`; a flag given twice takes its last value, as the
    // original's argparse does
    Cli::command().mut_subcommands(|c| c.args_override_self(true).mut_args(|a| a.allow_negative_numbers(true)))
}

/// Console logging through tracing (stderr, without colours when it is not a terminal or
/// `NO_COLOR` is set): `RUST_LOG` sets the verbosity (default: `info` for dropnas,
/// only warnings and errors from Burn and the GPU stacks, whose `info` lines are adapter dumps).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,burn=warn,cubecl=error,wgpu=warn,naga=warn".into());
    // no escape codes where they would end up in a file, or with NO_COLOR set
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(dropnas_train::run::progress::colour())
        .init();
}

/// A training step allocates and frees the same large tensors every time; glibc's defaults
/// hand them back to the kernel (mmap above 128 KiB, trimming) and then pay a page fault per
/// 4 KiB to get them again: 18% of a CPU search step, measured. Keep them in the heap.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}

fn main() -> ExitCode {
    quiet_panics::install();
    keep_freed_memory();
    let command = cli_command();
    let matches = command.clone().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // which flags the user typed (a resumed run compares them with its configuration)
    let given = matches
        .subcommand()
        .and_then(|(name, m)| command.find_subcommand(name).map(|c| commands::run::Given::from_matches(c, m)))
        .unwrap_or_default();
    init_logging();
    let result = dropnas_core::kernels::on_compute_threads(|| match cli.command {
        Command::Info(args) => commands::info::run(args),
        Command::Search(args) => commands::search::run_command(*args, given),
        Command::Augment(args) => commands::augment::run_command(*args, given),
        Command::Eval(args) => commands::augment::run_eval(args),
        Command::Genotype(cmd) => commands::genotype::run(cmd),
        Command::Bench(cmd) => commands::bench::run(cmd),
        #[cfg(feature = "selftest")]
        Command::Selftest(args) => commands::selftest::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Protocol(cmd) => commands::protocol::run(cmd),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(exit) = e.downcast_ref::<ExitWith>() {
                eprintln!("{exit}");
                ExitCode::from(exit.0)
            } else if e.downcast_ref::<UserError>().is_some() {
                eprintln!("error: {e}");
                ExitCode::from(2)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `dropnas <command> --help` explains every flag.
    #[test]
    fn every_flag_has_help_text() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for a in cmd.get_arguments() {
                let id = a.get_id().as_str();
                if matches!(id, "help" | "version") || a.is_hide_set() {
                    continue;
                }
                if a.get_help().is_none() && a.get_long_help().is_none() {
                    missing.push(format!("{path} --{}", a.get_long().unwrap_or(id)));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "dropnas", &mut missing);
        assert!(missing.is_empty(), "flags without help text:\n{}", missing.join("\n"));
    }
}
