//! A protocol as Slurm jobs: one batch script holding every run's exact command, submitted as
//! one job array per stage. Task i of every array is search seed i's: the `search` array runs
//! the searches; each `augment-K` array runs the retrainings with the K-th augment seed, task i
//! after search task i succeeded (`--dependency=aftercorr`; the tasks of a failed search are
//! cancelled, `--kill-on-invalid-dep=yes`); a last job runs `dropnas protocol status`, which
//! writes the results, when all others have ended. Every task goes through `dropnas protocol
//! exec`, which skips a finished run and resumes an interrupted one, so submitting again
//! continues the protocol.

use super::plan::{Plan, shell_quote};
use crate::UserError;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const SCRIPT: &str = "slurm/protocol.sbatch";
pub const SUBMIT: &str = "slurm/submit.sh";

/// One `sbatch` call.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The script's first argument, and the job's name after `dropnas-NAME-`.
    pub stage: String,
    /// The shell variable that holds its job id in `submit.sh`.
    pub var: String,
    /// `0-N` for an array.
    pub array: Option<String>,
    /// `(aftercorr|afterany, earlier submissions' vars)`.
    pub after: Option<(&'static str, Vec<String>)>,
}

/// The submissions of `plan`, in order.
pub fn submissions(plan: &Plan) -> Vec<Submission> {
    let n = plan.search_seeds.len();
    let m = plan.augment_seeds.iter().map(Vec::len).max().unwrap_or(0);
    let array = Some(format!("0-{}", n - 1));
    let mut out = vec![Submission { stage: "search".into(), var: "search".into(), array: array.clone(), after: None }];
    for k in 0..m {
        out.push(Submission {
            stage: format!("augment-{k}"),
            var: format!("augment_{k}"),
            array: array.clone(),
            after: Some(("aftercorr", vec!["search".into()])),
        });
    }
    let all = out.iter().map(|s| s.var.clone()).collect();
    out.push(Submission {
        stage: "results".into(),
        var: "results".into(),
        array: None,
        after: Some(("afterany", all)),
    });
    out
}

impl Submission {
    /// The `sbatch` arguments, with `job(var)` giving the job id (or `$var`) of an earlier one.
    fn args(&self, plan: &Plan, abs_dir: &Path, job: impl Fn(&str) -> String) -> Vec<String> {
        let mut a = vec!["--parsable".to_string(), format!("--job-name=dropnas-{}-{}", plan.name, self.stage)];
        let pattern = if self.array.is_some() { "%x_%A_%a.out" } else { "%x_%j.out" };
        a.push(format!("--output={}", abs_dir.join("slurm").join(pattern).display()));
        if let Some(r) = &self.array {
            a.push(format!("--array={r}"));
        }
        if let Some((kind, vars)) = &self.after {
            let ids: Vec<String> = vars.iter().map(|v| job(v)).collect();
            a.push(format!("--dependency={kind}:{}", ids.join(":")));
            if *kind == "aftercorr" {
                a.push("--kill-on-invalid-dep=yes".into());
            }
        }
        a.push(plan.dir.join(SCRIPT).display().to_string());
        a.push(self.stage.clone());
        a
    }
}

/// The batch script: the runs' commands by stage and array task.
pub fn script(plan: &Plan, workdir: &Path, exe: &Path, sbatch: &[String]) -> String {
    let dir = shell_quote(&plan.dir.display().to_string());
    let mut s = format!(
        "#!/bin/bash\n\
         # The DropNAS protocol `{name}` as Slurm jobs, written by `dropnas protocol run FILE --slurm`\n\
         # and submitted by {submit} (the calls dropnas makes): one job array per stage, task i of\n\
         # each being search seed i's. `augment-K` runs the retrainings with the K-th augment seed,\n\
         # task i once search task i has succeeded; `results` writes results.md when all have ended.\n\
         # Each task runs one run's exact command through `dropnas protocol exec`, which skips a\n\
         # finished run and resumes an interrupted one from its checkpoint.\n",
        name = plan.name,
        submit = plan.dir.join(SUBMIT).display(),
    );
    s.push_str(&format!("#SBATCH --chdir={}\n#SBATCH --ntasks=1\n", workdir.display()));
    for o in sbatch {
        s.push_str(&format!("#SBATCH {o}\n"));
    }
    s.push_str(&format!(
        "set -u\nDROPNAS=\"${{DROPNAS:-{}}}\"\ncase \"${{1:-}}/${{SLURM_ARRAY_TASK_ID:-}}\" in\n",
        exe.display()
    ));
    let searches: Vec<_> = plan.runs.iter().filter(|r| r.after.is_none()).collect();
    for (i, search) in searches.iter().enumerate() {
        let line = |stage: &str, args: &[String]| {
            let cmd: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
            format!("  {stage}/{i}) exec \"$DROPNAS\" protocol exec {dir} -- {} ;;\n", cmd.join(" "))
        };
        s.push_str(&line("search", &search.command));
        let retrainings = plan.runs.iter().filter(|r| r.after.as_ref() == Some(&search.name));
        for (k, r) in retrainings.enumerate() {
            s.push_str(&line(&format!("augment-{k}"), &r.command));
        }
    }
    s.push_str(&format!("  results/) exec \"$DROPNAS\" protocol status {dir} ;;\n"));
    s.push_str(
        "  *) echo \"protocol.sbatch: no run for stage '${1:-}', array task '${SLURM_ARRAY_TASK_ID:-}'\" >&2; exit 2 ;;\nesac\n",
    );
    s
}

/// `submit.sh`: the `sbatch` calls, chained through their job ids.
pub fn submit_script(plan: &Plan, workdir: &Path, abs_dir: &Path) -> String {
    let mut s = format!(
        "#!/bin/bash\n# Submits the protocol `{}` to Slurm (what `dropnas protocol run FILE --slurm` does).\n\
         set -euo pipefail\ncd {}\n",
        plan.name,
        shell_quote(&workdir.display().to_string())
    );
    for sub in submissions(plan) {
        let args: Vec<String> =
            sub.args(plan, abs_dir, |v| format!("${v}")).iter().map(|a| quote_keep_vars(a)).collect();
        s.push_str(&format!(
            "{v}=$(sbatch {})\n{v}=${{{v}%%;*}}\necho \"{} job ${v}\"\n",
            args.join(" "),
            sub.stage,
            v = sub.var
        ));
    }
    s
}

/// Quotes an argument but keeps `$var` references expandable.
fn quote_keep_vars(a: &str) -> String {
    if a.contains('$') && a.chars().all(|c| c.is_ascii_alphanumeric() || "_-=:$,".contains(c)) {
        a.to_string()
    } else {
        shell_quote(a)
    }
}

/// Writes the batch script and `submit.sh`; returns their paths.
pub fn write(plan: &Plan, workdir: &Path, sbatch: &[String]) -> anyhow::Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::env::current_exe()?;
    let abs_dir = workdir.join(&plan.dir);
    std::fs::create_dir_all(abs_dir.join("slurm"))?;
    let files = [(SCRIPT, script(plan, workdir, &exe, sbatch)), (SUBMIT, submit_script(plan, workdir, &abs_dir))];
    for (name, text) in &files {
        let path = plan.dir.join(name);
        dropnas_train::run::folder::write_atomic(&path, text.as_bytes())?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok((plan.dir.join(SCRIPT), plan.dir.join(SUBMIT)))
}

/// Submits the jobs with `sbatch`; returns `(stage, job id)` of each.
pub fn submit(plan: &Plan, workdir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let abs_dir = workdir.join(&plan.dir);
    let mut jobs: Vec<(String, String, String)> = Vec::new();
    for sub in submissions(plan) {
        let args = sub.args(plan, &abs_dir, |v| {
            jobs.iter().find(|(_, var, _)| var == v).map(|(_, _, id)| id.clone()).expect("submitted before")
        });
        let out = Command::new("sbatch").args(&args).output().map_err(|e| {
            UserError::new(format!(
                "cannot run sbatch ({e}): Slurm is not installed here. `--dry-run` writes the batch script \
                 and submit.sh without submitting"
            ))
        })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let done: Vec<String> = jobs.iter().map(|(s, _, id)| format!("{s} {id}")).collect();
            return Err(UserError::new(format!(
                "sbatch refused the {} jobs: {}{}",
                sub.stage,
                err.trim(),
                if done.is_empty() { String::new() } else { format!(" (submitted already: {})", done.join(", ")) }
            ))
            .into());
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let id = text.trim().split(';').next().unwrap_or_default().to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            anyhow::bail!("sbatch printed no job id for {}: {text:?}", sub.stage);
        }
        jobs.push((sub.stage.clone(), sub.var.clone(), id));
    }
    Ok(jobs.into_iter().map(|(stage, _, id)| (stage, id)).collect())
}

/// The job ids among `jobs` that Slurm still has queued or running (none when `squeue` is
/// not there).
pub fn alive(jobs: &[(String, String)]) -> Vec<String> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let ids: Vec<&str> = jobs.iter().map(|(_, id)| id.as_str()).collect();
    let Ok(out) = Command::new("squeue").args(["-h", "-o", "%F", "-j", &ids.join(",")]).output() else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut alive: Vec<String> = text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    alive.sort();
    alive.dedup();
    alive
}

#[cfg(test)]
mod tests {
    use super::*;
    use dropnas_data::DatasetKind;

    fn plan() -> Plan {
        Plan::new(
            "p".parse().unwrap(),
            DatasetKind::Mnist.into(),
            &[3, 5],
            &[vec![0, 1], vec![0, 1]],
            Path::new("protocols"),
            &["--data-dir".into(), "/d m".into()],
            &[],
        )
        .unwrap()
    }

    #[test]
    fn retraining_arrays_follow_their_searches_task_by_task() {
        let subs = submissions(&plan());
        let stages: Vec<&str> = subs.iter().map(|s| s.stage.as_str()).collect();
        assert_eq!(stages, ["search", "augment-0", "augment-1", "results"]);
        assert_eq!(subs[1].after, Some(("aftercorr", vec!["search".to_string()])));
        let all = vec!["search".to_string(), "augment_0".into(), "augment_1".into()];
        assert_eq!(subs[3].after, Some(("afterany", all)));
        let args = subs[2].args(&plan(), Path::new("/w/protocols/p"), |v| format!("<{v}>"));
        assert_eq!(
            args,
            [
                "--parsable",
                "--job-name=dropnas-p-augment-1",
                "--output=/w/protocols/p/slurm/%x_%A_%a.out",
                "--array=0-1",
                "--dependency=aftercorr:<search>",
                "--kill-on-invalid-dep=yes",
                "protocols/p/slurm/protocol.sbatch",
                "augment-1"
            ]
        );
    }

    #[test]
    fn the_script_holds_each_runs_exact_command_by_stage_and_task() {
        let p = plan();
        let s = script(&p, Path::new("/w"), Path::new("/bin/dropnas"), &["--gres=gpu:1".into()]);
        assert!(s.contains("#SBATCH --chdir=/w\n#SBATCH --ntasks=1\n#SBATCH --gres=gpu:1\n"), "{s}");
        assert!(s.contains("DROPNAS=\"${DROPNAS:-/bin/dropnas}\""), "{s}");
        // task 1 of augment-0 is search seed 5's retraining with augment seed 0
        let line = s.lines().find(|l| l.trim_start().starts_with("augment-0/1)")).unwrap();
        assert!(line.contains("protocol exec protocols/p -- augment --name p-s5-a0"), "{line}");
        assert!(line.contains("--data-dir '/d m'") || !line.contains("/d m"), "{line}");
        assert!(s.contains("  results/) exec \"$DROPNAS\" protocol status protocols/p ;;"), "{s}");
        // every run appears once, with its exact command
        for r in &p.runs {
            let quoted: Vec<String> = r.command.iter().map(|a| shell_quote(a)).collect();
            assert_eq!(s.matches(&format!("-- {} ;;", quoted.join(" "))).count(), 1, "{}", r.name);
        }
        let sub = submit_script(&p, Path::new("/w"), Path::new("/w/protocols/p"));
        assert!(sub.contains("augment_1=$(sbatch --parsable --job-name=dropnas-p-augment-1"), "{sub}");
        assert!(sub.contains("--dependency=aftercorr:$search --kill-on-invalid-dep=yes"), "{sub}");
        assert!(sub.contains("--dependency=afterany:$search:$augment_0:$augment_1"), "{sub}");
    }
}
