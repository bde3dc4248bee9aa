//! `dropnas genotype`: list, show and check genotypes.

use crate::genotype_arg::resolve_genotype;
use anyhow::Result;
use dropnas_core::genotype::named::NAMED;

#[derive(clap::Subcommand, Debug)]
pub enum GenotypeCommand {
    /// List the published genotypes known by name
    List,
    /// Print a genotype (text, @file, run folder or name) in the canonical Python text form
    Show {
        /// Genotype text, @file, a search run folder or a name
        genotype: String,
    },
    /// Draw the normal and reduction cells of a genotype (SVG, PNG, Graphviz DOT) into --out DIR
    Plot(super::plot::PlotArgs),
}

pub fn run(cmd: GenotypeCommand) -> Result<()> {
    match cmd {
        GenotypeCommand::List => {
            for (name, source, _) in NAMED {
                println!("{name:18} {source}");
            }
        }
        GenotypeCommand::Show { genotype } => println!("{}", resolve_genotype(&genotype)?),
        GenotypeCommand::Plot(args) => super::plot::run(args)?,
    }
    Ok(())
}
