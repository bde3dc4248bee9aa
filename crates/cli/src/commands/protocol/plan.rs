//! The runs of a protocol: one search per search seed, one retraining per (search, augment
//! seed), each a `dropnas search|augment` command line with exact flags. The same command runs
//! on a local device and in a Slurm array task.

use dropnas_data::Dataset;
use dropnas_train::run::lines::RunKind;
use dropnas_train::run::name::RunName;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The protocol folder's sub-folders for the run folders (the runs' `--out-dir`).
pub const SEARCHS: &str = "searchs";
pub const AUGMENTS: &str = "augments";

/// One run of a protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// `NAME-s0` (search), `NAME-s0-a1` (retraining of search seed 0 with augment seed 1).
    pub name: RunName,
    pub kind: RunKind,
    pub search_seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment_seed: Option<u64>,
    /// The run folder, relative to the protocol folder (`searchs/NAME-s0`).
    pub folder: PathBuf,
    /// The search whose genotype a retraining takes (it starts when that search is done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<RunName>,
    /// The arguments after `dropnas`. Running it adds only `--device` (local devices) and
    /// `--resume` (when the run folder holds a checkpoint).
    pub command: Vec<String>,
}

impl PlannedRun {
    /// `dropnas search --name ...`, quoted for a shell.
    pub fn command_line(&self) -> String {
        command_line(&self.command)
    }
}

/// Every run of a protocol, searches before the retrainings of their genotype.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub name: RunName,
    pub dataset: Dataset,
    pub search_seeds: Vec<u64>,
    /// One list of retraining seeds per search seed (the same list for each, or each search's
    /// own seed with `augment_seeds = "search"`).
    pub augment_seeds: Vec<Vec<u64>>,
    /// The protocol folder as the commands name it (`protocols/NAME`).
    pub dir: PathBuf,
    pub runs: Vec<PlannedRun>,
}

impl Plan {
    /// The plan of a protocol. `search_args` and `augment_args` are the flags of the file's
    /// `[search]` and `[augment]` tables, checked already.
    pub fn new(
        name: RunName,
        dataset: Dataset,
        search_seeds: &[u64],
        augment_seeds: &[Vec<u64>],
        out_dir: &Path,
        search_args: &[String],
        augment_args: &[String],
    ) -> Result<Plan, String> {
        let dir = out_dir.join(name.as_str());
        let path = |p: PathBuf| p.display().to_string();
        let mut runs = Vec::new();
        for (&s, a_seeds) in search_seeds.iter().zip(augment_seeds) {
            let search = run_name(&format!("{name}-s{s}"))?;
            let mut command: Vec<String> = vec!["search".into(), "--name".into(), search.to_string()];
            command.extend(["--dataset".into(), dataset.to_string(), "--seed".into(), s.to_string()]);
            command.extend(["--out-dir".into(), path(dir.join(SEARCHS))]);
            command.extend(search_args.iter().cloned());
            runs.push(PlannedRun {
                name: search.clone(),
                kind: RunKind::Search,
                search_seed: s,
                augment_seed: None,
                folder: Path::new(SEARCHS).join(search.as_str()),
                after: None,
                command,
            });
            for &a in a_seeds {
                let aug = run_name(&format!("{name}-s{s}-a{a}"))?;
                let mut command: Vec<String> = vec!["augment".into(), "--name".into(), aug.to_string()];
                command.extend(["--dataset".into(), dataset.to_string(), "--seed".into(), a.to_string()]);
                command.extend(["--genotype".into(), path(dir.join(SEARCHS).join(search.as_str()))]);
                command.extend(["--out-dir".into(), path(dir.join(AUGMENTS))]);
                command.extend(augment_args.iter().cloned());
                runs.push(PlannedRun {
                    name: aug.clone(),
                    kind: RunKind::Augment,
                    search_seed: s,
                    augment_seed: Some(a),
                    folder: Path::new(AUGMENTS).join(aug.as_str()),
                    after: Some(search.clone()),
                    command,
                });
            }
        }
        Ok(Plan {
            name,
            dataset,
            search_seeds: search_seeds.to_vec(),
            augment_seeds: augment_seeds.to_vec(),
            dir,
            runs,
        })
    }
}

fn run_name(s: &str) -> Result<RunName, String> {
    s.parse().map_err(|e: String| format!("the protocol's run name {s:?} is not a valid run name: {e}"))
}

/// Quotes `arg` for a POSIX shell where it needs it (`'a b'`, `'it'\''s'`).
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.chars().all(|c| c.is_ascii_alphanumeric() || "_-+=./:,@%^".contains(c));
    if plain { arg.to_string() } else { format!("'{}'", arg.replace('\'', r"'\''")) }
}

/// `dropnas ARGS`, quoted for a shell.
pub fn command_line(args: &[String]) -> String {
    std::iter::once("dropnas".to_string()).chain(args.iter().map(|a| shell_quote(a))).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dropnas_data::DatasetKind;

    #[test]
    fn each_search_is_followed_by_the_retrainings_of_its_genotype() {
        let name: RunName = "p".parse().unwrap();
        let plan = Plan::new(
            name,
            DatasetKind::Mnist.into(),
            &[3, 5],
            &[vec![0, 1], vec![0, 1]],
            Path::new("protocols"),
            &["--epochs".into(), "2".into()],
            &["--layers".into(), "3".into()],
        )
        .unwrap();
        let names: Vec<&str> = plan.runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["p-s3", "p-s3-a0", "p-s3-a1", "p-s5", "p-s5-a0", "p-s5-a1"]);
        assert_eq!(
            plan.runs[0].command_line(),
            "dropnas search --name p-s3 --dataset mnist --seed 3 --out-dir protocols/p/searchs --epochs 2"
        );
        assert_eq!(
            plan.runs[5].command_line(),
            "dropnas augment --name p-s5-a1 --dataset mnist --seed 1 --genotype protocols/p/searchs/p-s5 \
             --out-dir protocols/p/augments --layers 3"
        );
        assert_eq!(plan.runs[5].after.as_ref().map(RunName::as_str), Some("p-s5"));
        assert_eq!(plan.runs[5].folder, Path::new("augments/p-s5-a1"));
        assert_eq!(plan.dir, Path::new("protocols/p"));
    }

    #[test]
    fn arguments_are_quoted_for_the_shell_where_needed() {
        assert_eq!(shell_quote("--data-dir"), "--data-dir");
        assert_eq!(shell_quote("/data/cifar 10"), "'/data/cifar 10'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
    }
}
