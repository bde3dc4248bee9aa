//! `dropnas genotype plot G --out DIR`: the cell diagrams of a genotype, drawn by dropnas itself
//! (SVG and PNG), plus Graphviz DOT text for those who want `dot`.

use crate::UserError;
use crate::genotype_arg::resolve_genotype;
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct PlotArgs {
    /// The genotype: Genotype(...) text, @file, a search run folder, or a published name
    pub genotype: String,
    /// Folder for cell_normal.{svg,png,dot} and cell_reduce.{svg,png,dot} (created if missing)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn run(args: PlotArgs) -> Result<()> {
    let genotype = resolve_genotype(&args.genotype)?;
    let files = dropnas_report::write_cell_diagrams(&genotype, &args.out).map_err(report_error)?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}

/// Bad input (a missing folder, a malformed file, an impossible genotype) is the user's error
/// (exit code 2); anything else (a full disk, a bug) is ours.
pub fn report_error(e: dropnas_report::ReportError) -> anyhow::Error {
    if e.is_bad_input() { UserError::new(e.to_string()).into() } else { anyhow::Error::new(e) }
}
