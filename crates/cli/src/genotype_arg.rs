//! The `--genotype` argument: Genotype text, `@path/to/file`, a published name, or a search
//! run folder (its `genotype.txt`).

use crate::UserError;
use anyhow::Result;
use dropnas_core::genotype::{Genotype, named, text};
use std::path::Path;

pub fn resolve_genotype(arg: &str) -> Result<Genotype> {
    let arg = arg.trim();
    if let Some(path) = arg.strip_prefix('@') {
        return from_file(Path::new(path));
    }
    if let Some(g) = named::named(arg) {
        return Ok(g);
    }
    if arg.starts_with("Genotype") {
        return text::parse(arg).map_err(|e| UserError::new(e.to_string()).into());
    }
    let dir = Path::new(arg);
    if dir.is_dir() {
        let file = dir.join("genotype.txt");
        if !file.is_file() {
            return Err(UserError::new(format!(
                "`{arg}` is a folder without genotype.txt; point --genotype at a search run folder \
                 (searchs/NAME), a genotype file (@file), a name or the Genotype(...) text"
            ))
            .into());
        }
        return from_file(&file);
    }
    if Path::new(arg).is_file() {
        return from_file(Path::new(arg));
    }
    Err(UserError::new(format!(
        "`{arg}` is neither Genotype(...) text, @file, a search run folder, nor a known name \
         (known names: {})",
        named::names().join(", ")
    ))
    .into())
}

fn from_file(path: &Path) -> Result<Genotype> {
    let content = std::fs::read_to_string(path)
        .map_err(|e| UserError::new(format!("cannot read genotype file {}: {e}", path.display())))?;
    text::parse(&content).map_err(|e| UserError::new(format!("{}: {e}", path.display())).into())
}
