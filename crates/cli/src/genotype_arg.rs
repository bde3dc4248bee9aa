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

/// Genotype files are a few hundred bytes; reading stops well before something that is not one
/// (`@/dev/zero`) can fill the memory.
const MAX_GENOTYPE_FILE: u64 = 1 << 20;

fn from_file(path: &Path) -> Result<Genotype> {
    use std::io::Read;
    let cannot = |e: std::io::Error| UserError::new(format!("cannot read genotype file {}: {e}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path).and_then(|f| f.take(MAX_GENOTYPE_FILE + 1).read_to_end(&mut bytes)).map_err(cannot)?;
    if bytes.len() as u64 > MAX_GENOTYPE_FILE {
        return Err(UserError::new(format!(
            "{} is larger than {} KiB: not a genotype file (a genotype is a line of Genotype(...) text)",
            path.display(),
            MAX_GENOTYPE_FILE >> 10
        ))
        .into());
    }
    let content = String::from_utf8(bytes)
        .map_err(|_| UserError::new(format!("{} is not UTF-8 text: not a genotype file", path.display())))?;
    text::parse(&content).map_err(|e| UserError::new(format!("{}: {e}", path.display())).into())
}
