//! The protocol file (TOML): a name, a data set, the seeds, and the flags of `dropnas search`
//! and `dropnas augment` under their own names. Every key is checked against the real flags
//! of those commands, and every run's command line is parsed and validated as the command
//! itself would, before anything runs.
//!
//! ```toml
//! name = "c10"
//! dataset = "cifar10"
//! search_seeds = [0, 1, 2]
//! augment_seeds = [0, 1]          # or "search": each genotype retrained once, with its search's seed
//! [search]
//! epochs = 50
//! init-channels = 16
//! [augment]
//! data-dir = "data/cifar10"
//! ```

use super::plan::Plan;
use crate::UserError;
use clap::ArgAction;
use dropnas_core::genotype::named;
use dropnas_data::Dataset;
use dropnas_search::SearchConfig;
use dropnas_train::run::config::TaskConfig;
use dropnas_train::run::name::RunName;
use serde::Deserialize;
use std::path::Path;

/// The file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtocolFile {
    /// The protocol's name: its folder, and the start of every run's name.
    pub name: RunName,
    pub dataset: Dataset,
    pub search_seeds: Vec<u64>,
    /// A list of seeds, or `"search"`.
    pub augment_seeds: toml::Value,
    /// Flags of `dropnas search` (`epochs = 50`, `init-channels = 16`).
    #[serde(default)]
    pub search: toml::Table,
    /// Flags of `dropnas augment`.
    #[serde(default)]
    pub augment: toml::Table,
}

/// Flags the protocol sets itself, and why.
const SET_BY_PROTOCOL: [(&str, &str); 8] = [
    ("name", "each run's name derives from the protocol's `name` and its seeds"),
    ("dataset", "the protocol's top-level `dataset` applies to every run"),
    ("seed", "the seeds are the protocol's `search_seeds` and `augment_seeds`"),
    ("out-dir", "the runs go in the protocol's folder (`dropnas protocol run --out-dir`)"),
    ("resume", "the protocol resumes interrupted runs by itself"),
    ("device", "give the devices to `dropnas protocol run --devices`"),
    ("genotype", "each retraining takes the genotype its search found"),
    ("max-steps", "a protocol runs every run to its end; make runs shorter with `epochs` or `max-train-samples`"),
];

/// Reads and checks a protocol file; `out_dir` is where the protocol's folder goes.
pub fn load(path: &Path, out_dir: &Path) -> Result<(Plan, String), UserError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UserError::new(format!("cannot read the protocol file {}: {e}", path.display())))?;
    let plan = parse(&text, out_dir).map_err(|e| UserError::new(format!("{}: {e}", path.display())))?;
    Ok((plan, text))
}

/// The plan of the protocol file `text`.
pub fn parse(text: &str, out_dir: &Path) -> Result<Plan, String> {
    let file: ProtocolFile = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
    let search_seeds = seeds("search_seeds", &file.search_seeds)?;
    let augment_seeds: Vec<Vec<u64>> = match &file.augment_seeds {
        toml::Value::String(s) if s == "search" => search_seeds.iter().map(|&s| vec![s]).collect(),
        toml::Value::Array(a) => {
            let list = a
                .iter()
                .map(|v| v.as_integer().and_then(|i| u64::try_from(i).ok()))
                .collect::<Option<Vec<u64>>>()
                .ok_or("`augment_seeds` must be a list of seeds (integers from 0), or \"search\"")?;
            let list = seeds("augment_seeds", &list)?;
            vec![list; search_seeds.len()]
        }
        _ => {
            return Err("`augment_seeds` must be a list of seeds (`[0, 1]`), or \"search\" (each genotype \
                        retrained once, with the seed of its search, as the original's start.py did)"
                .into());
        }
    };
    let command = crate::cli_command();
    let search_args = flags(&command, "search", &file.search)?;
    let augment_args = flags(&command, "augment", &file.augment)?;
    let plan = Plan::new(file.name, file.dataset, &search_seeds, &augment_seeds, out_dir, &search_args, &augment_args)?;
    for run in &plan.runs {
        check_command(&command, &run.command)
            .map_err(|e| format!("the run {} would fail: {e}\n  its command: {}", run.name, run.command_line()))?;
    }
    Ok(plan)
}

fn seeds(key: &str, list: &[u64]) -> Result<Vec<u64>, String> {
    if list.is_empty() {
        return Err(format!("`{key}` is empty: give at least one seed"));
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(d) = list.iter().find(|s| !seen.insert(**s)) {
        return Err(format!("`{key}` lists seed {d} twice: each seed names one run"));
    }
    Ok(list.to_vec())
}

/// The flags of table `[cmd]`, checked against `dropnas CMD`'s own flags.
fn flags(cli: &clap::Command, cmd: &str, table: &toml::Table) -> Result<Vec<String>, String> {
    let sub = cli.find_subcommand(cmd).expect("search and augment are subcommands");
    let mut args = Vec::new();
    for (key, value) in table {
        let Some(arg) = sub.get_arguments().find(|a| a.get_long() == Some(key.as_str())) else {
            let hint = sub
                .get_arguments()
                .filter_map(|a| a.get_long())
                .find(|l| *l == key.replace('_', "-"))
                .map(|l| format!(" (did you mean `{l}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "`[{cmd}]` key `{key}` is not a flag of `dropnas {cmd}`{hint}; the keys are the flags' names \
                 without `--` (see `dropnas {cmd} --help`)"
            ));
        };
        if let Some((_, why)) = SET_BY_PROTOCOL.iter().find(|(k, _)| k == key) {
            return Err(format!("`[{cmd}]` key `{key}`: the protocol sets --{key} itself: {why}"));
        }
        let flag = format!("--{key}");
        let switch = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        match value {
            toml::Value::Boolean(on) if switch => {
                if *on {
                    args.push(flag);
                }
            }
            _ if switch => {
                return Err(format!("`[{cmd}]` key `{key}` is a switch: write `{key} = true` or leave it out"));
            }
            toml::Value::String(s) => args.extend([flag, s.clone()]),
            toml::Value::Integer(i) => args.extend([flag, i.to_string()]),
            toml::Value::Float(f) => args.extend([flag, f.to_string()]),
            other => {
                return Err(format!(
                    "`[{cmd}]` key `{key}` has a {} value; --{key} takes one value (a string or a number)",
                    other.type_str()
                ));
            }
        }
    }
    Ok(args)
}

/// Parses `dropnas ARGS` as the binary would, and validates the configuration it describes.
fn check_command(cli: &clap::Command, args: &[String]) -> Result<(), String> {
    use clap::FromArgMatches;
    let first_line = |e: clap::Error| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        first.strip_prefix("error: ").unwrap_or(first).to_string()
    };
    let matches = cli.clone().try_get_matches_from(std::iter::once("dropnas").chain(args.iter().map(String::as_str)));
    let matches = matches.map_err(first_line)?;
    let parsed = crate::Cli::from_arg_matches(&matches).map_err(first_line)?;
    // the flags given, as the binary sees them (a recipe's values sit under them)
    let given = matches
        .subcommand()
        .and_then(|(name, m)| cli.find_subcommand(name).map(|c| crate::commands::run::Given::from_matches(c, m)))
        .unwrap_or_default();
    match parsed.command {
        crate::Command::Search(a) => {
            let dataset = a.dataset.ok_or("no --dataset")?;
            let folder = a.folder.resolve(dataset, None).map_err(|e| format!("{e:#}"))?;
            SearchConfig::new(dataset, a.settings).with_image_folder(folder).validate()
        }
        crate::Command::Augment(a) => {
            let dataset = a.dataset.ok_or("no --dataset")?;
            // the genotype exists once the search has run; the settings are checked with a
            // published one of the same search space
            let genotype = named::named("dropnas-cifar10").expect("a published genotype");
            a.config(dataset, genotype, &given).map_err(|e| format!("{e:#}"))?.validate()
        }
        _ => unreachable!("protocol runs are searches and retrainings"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> Result<Plan, String> {
        parse(text, Path::new("protocols"))
    }

    const HEAD: &str = "name = \"p\"\ndataset = \"mnist\"\nsearch_seeds = [0, 1]\naugment_seeds = [5]\n";

    #[test]
    fn table_keys_are_the_commands_flags() {
        let p = plan(&format!(
            "{HEAD}[search]\nepochs = 3\ninit-channels = 8\ndrop-rate = 3e-5\nno-legacy-momentum = true\n\
             no-download = false\ndata-dir = \"/d m\"\n[augment]\nlr = 0.025\ncutout-length = 0\n"
        ))
        .unwrap();
        let s = &plan_runs(&p)[0];
        assert!(
            s.ends_with("--data-dir '/d m' --drop-rate 0.00003 --epochs 3 --init-channels 8 --no-legacy-momentum"),
            "{s}"
        );
        assert!(plan_runs(&p)[1].ends_with("--cutout-length 0 --lr 0.025"), "{}", plan_runs(&p)[1]);
        assert_eq!(p.runs.len(), 4);
        // "search": each genotype once, with its search's seed
        let same = plan(&HEAD.replace("[5]", "\"search\"")).unwrap();
        let names: Vec<&str> = same.runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["p-s0", "p-s0-a0", "p-s1", "p-s1-a1"]);
    }

    fn plan_runs(p: &Plan) -> Vec<String> {
        p.runs.iter().map(|r| r.command_line()).collect()
    }

    #[test]
    fn what_is_not_a_flag_or_not_valid_is_refused_before_anything_runs() {
        let cases = [
            ("[search]\nepoch = 3\n", "`[search]` key `epoch` is not a flag of `dropnas search`"),
            ("[search]\ninit_channels = 8\n", "did you mean `init-channels`?"),
            ("[augment]\nw-lr = 0.1\n", "`[augment]` key `w-lr` is not a flag of `dropnas augment`"),
            ("[augment]\ngenotype = \"darts-v2\"\n", "each retraining takes the genotype its search found"),
            ("[search]\nseed = 1\n", "the seeds are the protocol's"),
            ("[search]\ndevice = \"cpu\"\n", "--devices"),
            ("[search]\nmax-steps = 3\n", "runs every run to its end"),
            ("[search]\nno-download = 1\n", "is a switch"),
            ("[search]\nepochs = [1, 2]\n", "has a array value"),
            ("[search]\nepochs = 0\n", "the run p-s0 would fail: invalid value '0' for '--epochs"),
            ("[search]\ninit-channels = 7\n", "--init-channels"),
            ("[search]\nwarmup-epochs = 9\nepochs = 3\n", "--warmup-epochs 9 exceeds --epochs 3"),
            ("[augment]\nlr = 2.0\n", "--lr must be at most 1"),
            ("colour = 1\n", "unknown field `colour`"),
        ];
        for (extra, needle) in cases {
            let e = plan(&format!("{HEAD}{extra}")).unwrap_err();
            assert!(e.contains(needle), "{extra:?}: {e}");
        }
        for (text, needle) in [
            (HEAD.replace("[0, 1]", "[]"), "`search_seeds` is empty"),
            (HEAD.replace("[0, 1]", "[1, 1]"), "lists seed 1 twice"),
            (HEAD.replace("[5]", "\"same\""), "or \"search\""),
            (HEAD.replace("[5]", "[-1]"), "integers from 0"),
            (HEAD.replace("\"p\"", "\"a/b\""), "path separator"),
            (HEAD.replace("\"mnist\"", "\"imagenet\""), "imagenet"),
            (HEAD.replace("augment_seeds = [5]\n", ""), "missing field `augment_seeds`"),
        ] {
            let e = plan(&text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_papers_cifar10_protocol_in_the_repository_parses() {
        let text = include_str!("../../../../../examples/dropnas-cifar10.toml");
        let p = plan(text).unwrap();
        assert_eq!(p.search_seeds.len(), 8);
        assert_eq!(p.runs.len(), 16);
        assert!(p.runs[0].command_line().contains("--epochs 76"), "{}", p.runs[0].command_line());
    }
}
