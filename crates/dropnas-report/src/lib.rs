//! # dropnas-report
//!
//! See what a search does, with nothing to install: cell diagrams of a genotype laid out and
//! drawn here (SVG, PNG, and Graphviz DOT for those who want it), plots of a run (training curves,
//! the alphas of every edge, the drop frequency of each op group; SVG and PNG, text in an embedded
//! font), TensorBoard event files written without TensorFlow, `report.md` for a run folder, and the
//! mean ± std table over several augment runs.
//!
//! [`write_run_artifacts`] regenerates all of it from the files of a run folder; the training
//! loops call it at the end of every epoch.

pub mod cell;
pub mod plots;
pub mod report;
pub mod run;
pub mod stats;
pub mod tb;

pub use cell::CellDiagram;
pub use report::{CompareTable, RunSummary, compare};
pub use run::{RunData, RunKind};
pub use stats::MeanStd;

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The folder does not exist or holds no run.
    #[error("{path} is not a run folder: {why}")]
    NotARun { path: PathBuf, why: String },
    /// A run folder that can't be used for what was asked (a search run given to `compare`).
    #[error("{}: {why}", path.display())]
    WrongRun { path: PathBuf, why: String },
    /// A file of the run folder can't be understood.
    #[error("{}{}: {detail}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Malformed { path: PathBuf, line: Option<usize>, detail: String },
    /// A genotype that no cell can be built from.
    #[error("invalid genotype: {0}")]
    InvalidGenotype(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// Drawing failed (a bug, not bad input).
    #[error("drawing a plot: {0}")]
    Plot(String),
}

impl ReportError {
    /// Whether the error is about the input (a missing folder, a malformed file, a bad genotype)
    /// rather than this crate or the machine.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            ReportError::NotARun { .. }
                | ReportError::WrongRun { .. }
                | ReportError::Malformed { .. }
                | ReportError::InvalidGenotype(_)
        )
    }
}

/// What [`write_run_artifacts`] wrote.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub kind: RunKind,
    /// `run_dir/plots`.
    pub plots_dir: PathBuf,
    /// Every file written, `report.md` and the event file included.
    pub files: Vec<PathBuf>,
    /// `run_dir/report.md`.
    pub report: PathBuf,
    /// `run_dir/tb/events.out.tfevents.*`, when there were metrics to write.
    pub events: Option<PathBuf>,
    /// The run's summary, as `report.md` shows it.
    pub summary: RunSummary,
}

/// The file names of the cell diagrams (`.svg`, `.png`, `.dot`) in `plots/` and in the folder
/// `dropnas genotype plot` writes to.
pub const CELL_STEMS: [(bool, &str); 2] = [(false, "cell_normal"), (true, "cell_reduce")];

/// Writes the diagrams of both cells of `genotype` into `dir` (`cell_normal.svg`, `.png`, `.dot`,
/// and the same for `cell_reduce`).
pub fn write_cell_diagrams(
    genotype: &dropnas_core::genotype::Genotype,
    dir: &Path,
) -> Result<Vec<PathBuf>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { path: dir.to_path_buf(), source })?;
    // Lay out both first so a bad genotype writes nothing.
    let diagrams: Vec<(CellDiagram, &str)> = CELL_STEMS
        .iter()
        .map(|&(reduction, stem)| cell::layout_genotype(genotype, reduction).map(|d| (d, stem)))
        .collect::<Result<_, _>>()?;
    let mut files = Vec::new();
    for (d, stem) in &diagrams {
        files.extend(cell::write_cell_files(d, dir, stem)?);
    }
    Ok(files)
}

/// (Re)generates everything that applies to the run folder `run_dir` (search or augment) from its
/// files: in `run_dir/plots/` the cell diagrams of the current genotype, the training curves, the
/// alphas of every edge and the drop frequencies (search runs); `run_dir/tb/` the TensorBoard
/// event file; and `run_dir/report.md`. Every file is replaced atomically. Cheap enough for the
/// end of every epoch (about 0.1-0.3 s for a whole 76-epoch search, measured in the tests).
pub fn write_run_artifacts(run_dir: &Path) -> Result<Artifacts, ReportError> {
    let run = RunData::load(run_dir)?;
    let plots_dir = run_dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|source| ReportError::Io { path: plots_dir.clone(), source })?;
    let name = run.name();
    let dataset = run.config_value("dataset").and_then(|v| v.as_str()).map(|d| format!(" on {d}")).unwrap_or_default();
    let what = format!("{} ({}{dataset})", name, run.kind.as_str());

    let diagrams: Vec<(CellDiagram, &str)> = match &run.genotype {
        Some(g) => CELL_STEMS
            .iter()
            .map(|&(reduction, stem)| cell::layout_genotype(g, reduction).map(|d| (d, stem)))
            .collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let curves = plots::curves_figure(&format!("{what}: training"), run.kind, &run.metrics);
    let alphas = plots::alpha_figure(
        &format!("{what}: softmax(alpha) of every edge over the epochs"),
        &run.alphas,
        run.genotype.as_ref(),
    );
    let drop_freq = match run.kind {
        RunKind::Search => plots::drop_freq_figure(&format!("{what}: operation dropout per group"), &run.metrics),
        RunKind::Augment => None,
    };
    let n_ops = run.alphas.first().map_or(8, |a| a.ops.len());
    let collapse = match run.kind {
        RunKind::Search => plots::collapse_figure(&format!("{what}: collapse monitor"), &run.metrics, n_ops),
        RunKind::Augment => None,
    };

    // The figures are independent: draw them on two threads.
    let (mut files, events) = std::thread::scope(|s| -> Result<_, ReportError> {
        let side = s.spawn(|| -> Result<Vec<PathBuf>, ReportError> {
            let mut files = Vec::new();
            if let Some(fig) = &alphas {
                files.extend(plots::write_alpha_figure(fig, &plots_dir, "alphas")?);
            }
            for (d, stem) in &diagrams {
                files.extend(cell::write_cell_files(d, &plots_dir, stem)?);
            }
            Ok(files)
        });
        let mut files = Vec::new();
        if let Some(fig) = &curves {
            files.extend(plots::write_panel_figure(fig, &plots_dir, "curves")?);
        }
        if let Some(fig) = &drop_freq {
            files.extend(plots::write_panel_figure(fig, &plots_dir, "drop_freq")?);
        }
        if let Some(fig) = &collapse {
            files.extend(plots::write_panel_figure(fig, &plots_dir, "collapse")?);
        }
        let events = tb::write_run_events(&run)?;
        files.extend(side.join().map_err(|_| ReportError::Plot("a drawing thread panicked".into()))??);
        Ok((files, events))
    })?;

    let summary = report::summarize(&run);
    let embeds = report::Embeds {
        cells: !diagrams.is_empty(),
        curves: curves.is_some(),
        alphas: alphas.is_some(),
        drop_freq: drop_freq.is_some(),
        collapse: collapse.is_some(),
        events: events.is_some(),
    };
    let report = run_dir.join("report.md");
    write_atomic(&report, report::markdown(&run, &summary, &embeds).as_bytes())?;
    files.push(report.clone());
    files.extend(events.clone());
    Ok(Artifacts { kind: run.kind, plots_dir, files, report, events, summary })
}

/// Summarises the run folder `run_dir`: writes `run_dir/report.md` with everything it embeds
/// (that is, all [`write_run_artifacts`] writes) and returns the summary it shows.
pub fn report(run_dir: &Path) -> Result<RunSummary, ReportError> {
    write_run_artifacts(run_dir).map(|a| a.summary)
}

/// Writes a temporary file beside `path`, then renames it over `path`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let tmp = path.with_extension(format!(
        "{}.tmp-{}",
        path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ReportError::Io { path: path.to_path_buf(), source }
    })
}

/// XML escaping for text and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}
