//! `dropnas report RUN_DIR`: summarise a run folder and (re)write its plots, TensorBoard event file
//! and `report.md`; `dropnas report --compare DIR...`: the mean ± std table of the best test
//! top-1 over groups of augment runs.

use super::plot::report_error;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Run folders (searchs/NAME, augments/NAME); with --compare also folders of run folders
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Print the table of best test top-1, mean ± sample std over the runs of each group (runs
    /// whose configurations differ only in name and seed form a group); writes nothing
    #[arg(long)]
    pub compare: bool,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: ReportArgs) -> Result<()> {
    if args.compare {
        let table = dropnas_report::compare(&args.dirs).map_err(report_error)?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&table.to_json())?);
        } else {
            print!("{}", table.to_markdown());
        }
        return Ok(());
    }
    let mut all = Vec::new();
    for (i, dir) in args.dirs.iter().enumerate() {
        let a = dropnas_report::write_run_artifacts(dir).map_err(report_error)?;
        if args.json {
            all.push(a.summary.to_json());
            continue;
        }
        if i > 0 {
            println!();
        }
        print!("{}", a.summary.to_text());
        println!("report     {}", a.report.display());
        println!("plots      {}", a.plots_dir.display());
        if let Some(tb) = &a.events {
            println!("tensorboard --logdir {}", tb.parent().unwrap_or(dir).display());
        }
    }
    if args.json {
        let v = if all.len() == 1 { all.remove(0) } else { serde_json::Value::Array(all) };
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(())
}

/// The loops' end-of-epoch hook: redraw the run's plots, cell diagrams, TensorBoard events and
/// report. A failure here is logged and never stops training.
pub fn draw_run(dir: &std::path::Path) {
    let t = std::time::Instant::now();
    match dropnas_report::write_run_artifacts(dir) {
        Ok(_) => tracing::debug!("plots of {} redrawn in {:.2} s", dir.display(), t.elapsed().as_secs_f64()),
        Err(e) => tracing::warn!("could not draw the plots of {}: {e}", dir.display()),
    }
}
