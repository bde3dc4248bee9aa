//! `dropnas`: DropNAS architecture search, retraining and evaluation on Burn.

mod commands;
mod device;
mod folder_args;
mod genotype_arg;

use clap::{Parser, Subcommand};
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

#[derive(Parser, Debug)]
#[command(name = "dropnas", version, about = "DropNAS: grouped operation dropout for one-level DARTS, on Burn")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
    Selftest(commands::selftest::SelftestArgs),
    /// Summarise a run folder and write its plots, TensorBoard events and report.md; or compare runs
    Report(commands::report::ReportArgs),
}

/// Console logging through tracing: `RUST_LOG` sets the verbosity (default: `info` for dropnas,
/// only warnings and errors from Burn and the GPU stacks, whose `info` lines are adapter dumps).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,burn=warn,cubecl=error,wgpu=warn,naga=warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false).init();
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
    keep_freed_memory();
    let cli = Cli::parse();
    init_logging();
    let result = dropnas_core::kernels::on_compute_threads(|| match cli.command {
        Command::Info(args) => commands::info::run(args),
        Command::Search(args) => commands::search::run(*args),
        Command::Augment(args) => commands::augment::run(*args),
        Command::Eval(args) => commands::augment::run_eval(args),
        Command::Genotype(cmd) => commands::genotype::run(cmd),
        Command::Bench(cmd) => commands::bench::run(cmd),
        Command::Selftest(args) => commands::selftest::run(args),
        Command::Report(args) => commands::report::run(args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if e.downcast_ref::<UserError>().is_some() {
                eprintln!("error: {e}");
                ExitCode::from(2)
            } else {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}
