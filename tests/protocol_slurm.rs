//! `dropnas protocol run --slurm` against a real Slurm: the one-node cluster on localhost that
//! `tools/slurm-local.sh` starts (`.ci/run` does). The protocol goes in as job arrays, the
//! retrainings after their searches, and the last job writes the results. Without a cluster
//! the test is skipped with a notice, except under CI, where it fails.

mod common;

use common::{dropnas, ok, read_json};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Whether a Slurm controller answers and a node can take jobs; under CI a missing cluster fails.
fn slurm_up() -> bool {
    let up = Command::new("scontrol")
        .arg("ping")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("is UP"))
        && Command::new("sinfo").args(["-h", "-o", "%T"]).output().is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).lines().any(|l| ["idle", "mixed", "allocated"].contains(&l.trim()))
        });
    if up {
        return true;
    }
    let msg = "no Slurm cluster answers (start one with `tools/slurm-local.sh`)";
    if common::in_ci() {
        panic!("{msg}: .ci/run starts it before the tests");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// Cancels the jobs when the test ends (a failed test leaves nothing in the queue).
struct CancelOnDrop(Vec<String>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("scancel").args(&self.0).output();
    }
}

fn protocol(cwd: &Path, args: &[&str]) -> Output {
    dropnas().current_dir(cwd).arg("protocol").args(args).output().expect("cannot start dropnas")
}

fn protocol_file(dir: &Path, mnist: &Path) -> String {
    let data = mnist.display();
    let tiny = format!(
        "data-dir = \"{data}\"\nno-download = true\nlayers = 2\ninit-channels = 4\nbatch-size = 8\n\
         max-train-samples = 64\nepochs = 1\n"
    );
    let text = format!(
        "name = \"sl\"\ndataset = \"mnist\"\nsearch_seeds = [0, 1]\naugment_seeds = [0, 1]\n\
         [search]\n{tiny}[augment]\n{tiny}max-test-samples = 64\n"
    );
    let path = dir.join("sl.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_protocol_runs_as_slurm_job_arrays_and_its_last_job_writes_the_results() {
    let _t = common::Timer::start("protocol_slurm::job_arrays");
    let mnist = require_data!("mnist");
    if !slurm_up() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = protocol_file(tmp.path(), &mnist);
    let root = tmp.path().join("protocols/sl");

    // --dry-run writes the script and submit.sh only
    let out = ok(&protocol(tmp.path(), &["run", &file, "--slurm", "--dry-run", "--sbatch=--time=10"]));
    assert!(out.contains("nothing submitted"), "{out}");
    let script = std::fs::read_to_string(root.join("slurm/protocol.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --time=10\n"), "{script}");
    assert_eq!(read_json(&root.join("protocol.json"))["slurm"]["jobs"], Value::Array(vec![]));
    assert!(!root.join("searchs").exists());

    // submitted held, to look at the dependencies before anything runs
    let out = ok(&protocol(tmp.path(), &["run", &file, "--slurm", "--sbatch=--time=10", "--sbatch=--hold"]));
    let m = read_json(&root.join("protocol.json"));
    let jobs: Vec<(String, String)> = m["slurm"]["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| (j[0].as_str().unwrap().to_string(), j[1].as_str().unwrap().to_string()))
        .collect();
    let stages: Vec<&str> = jobs.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(stages, ["search", "augment-0", "augment-1", "results"], "{out}");
    // submitting again while the jobs are queued is refused
    common::user_error(&protocol(tmp.path(), &["run", &file, "--slurm"]), &["still queued or running", "scancel"]);

    let ids: Vec<&str> = jobs.iter().map(|(_, id)| id.as_str()).collect();
    let _cancel = CancelOnDrop(ids.iter().map(|s| s.to_string()).collect());
    let dependency = |id: &str| {
        let q = Command::new("squeue").args(["-h", "-r", "-o", "%E", "-j", id]).output().unwrap();
        String::from_utf8_lossy(&q.stdout).lines().map(|l| l.trim().to_string()).collect::<Vec<_>>()
    };
    // each retraining task waits for its own search task; the results job for all
    for augment in &ids[1..3] {
        let deps = dependency(augment);
        assert_eq!(deps.len(), 2, "{deps:?}");
        assert!(deps.iter().all(|d| d.starts_with(&format!("aftercorr:{}_", ids[0]))), "{deps:?}");
    }
    let deps = dependency(ids[3]);
    assert!(deps[0].starts_with(&format!("afterany:{}_*", ids[0])) && deps[0].contains(ids[2]), "{deps:?}");
    let release = Command::new("scontrol").args(["release", &ids.join(",")]).output().unwrap();
    assert!(release.status.success(), "{}", String::from_utf8_lossy(&release.stderr));
    let deadline = Instant::now() + Duration::from_secs(170);
    loop {
        let q = Command::new("squeue").args(["-h", "-o", "%i %T %r", "-j", &ids.join(",")]).output().unwrap();
        let text = String::from_utf8_lossy(&q.stdout).to_string();
        if text.trim().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the jobs did not end in time:\n{text}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // the results job wrote results.md from the shared run folders
    let r = read_json(&root.join("results.json"));
    assert_eq!(r["runs_done"], 6, "{r:#}");
    let mut all = Vec::new();
    for g in r["genotypes"].as_array().unwrap() {
        for t in g["retrainings"].as_array().unwrap() {
            let dir = root.join("augments").join(t["name"].as_str().unwrap());
            let best = common::metrics(&dir, "epoch").iter().filter_map(|e| e["val_top1"].as_f64()).fold(0.0, f64::max);
            assert!((t["best_top1"].as_f64().unwrap() - 100.0 * best).abs() < 1e-9, "{t}");
            // each ran in an array task of the protocol's jobs
            let attempt = read_json(&root.join(format!("attempts/{}.json", t["name"].as_str().unwrap())));
            let job = attempt["slurm_job"].as_str().unwrap();
            assert!(ids.iter().any(|id| job.starts_with(&format!("{id}_"))), "{attempt}");
            all.push(100.0 * best);
        }
    }
    let mean = all.iter().sum::<f64>() / 4.0;
    assert!((r["overall"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
    let md = std::fs::read_to_string(root.join("results.md")).unwrap();
    assert!(md.contains("6 of 6 runs done"), "{md}");
    let status = ok(&protocol(tmp.path(), &["status", "protocols/sl"]));
    assert!(status.contains("6 runs: 6 done"), "{status}");
}
