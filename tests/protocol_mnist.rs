//! `dropnas protocol` through the binary, on real MNIST: a tiny protocol (2 search seeds x 2
//! augment seeds, 1 epoch each, few images) on local workers; killed in the middle and run again,
//! it finishes without redoing finished runs; a failed search does not stop the others; the
//! results equal what the runs' own metrics.jsonl say; bad protocol files are refused before
//! anything runs.

mod common;

use common::{dropnas, metrics, ok, read_json, user_error};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

/// A tiny protocol on MNIST; the retrainings are long enough (50 steps, a checkpoint every 5)
/// to be killed in their middle.
fn protocol_file(dir: &Path, mnist: &Path, name: &str) -> PathBuf {
    let data = mnist.display();
    let text = format!(
        "name = \"{name}\"\ndataset = \"mnist\"\nsearch_seeds = [0, 1]\naugment_seeds = [0, 1]\n\n\
         [search]\ndata-dir = \"{data}\"\nno-download = true\nlayers = 2\ninit-channels = 4\nbatch-size = 8\n\
         max-train-samples = 64\nepochs = 1\n\n\
         [augment]\ndata-dir = \"{data}\"\nno-download = true\nlayers = 2\ninit-channels = 4\nbatch-size = 8\n\
         max-train-samples = 400\nmax-test-samples = 100\nepochs = 1\ncheckpoint-every = 5\n"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `dropnas protocol ARGS` run in `cwd`.
fn protocol(cwd: &Path, args: &[&str]) -> Output {
    dropnas().current_dir(cwd).arg("protocol").args(args).output().expect("cannot start dropnas")
}

const RUNS: [&str; 6] = ["p-s0", "p-s0-a0", "p-s0-a1", "p-s1", "p-s1-a0", "p-s1-a1"];

fn folder(root: &Path, run: &str) -> PathBuf {
    let kind = if run.matches("-a").count() > 0 { "augments" } else { "searchs" };
    root.join(kind).join(run)
}

fn finished(dir: &Path) -> bool {
    std::fs::read(dir.join("summary.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .is_some_and(|s| s["finished"] == true)
}

/// The best test top-1 (%) of an augment run, from its own metrics.jsonl.
fn best_from_metrics(dir: &Path) -> f64 {
    let best = metrics(dir, "epoch").iter().filter_map(|e| e["val_top1"].as_f64()).fold(f64::NEG_INFINITY, f64::max);
    assert!(best.is_finite(), "{} has no tested epoch", dir.display());
    100.0 * best
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (mean, (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt())
}

#[track_caller]
fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-9, "{what}: {a} != {b}");
}

/// The results of protocol folder `root` against the runs' own metrics.
fn check_results(root: &Path, runs_done: usize, genotypes: &[(&str, &[&str])]) {
    let r = read_json(&root.join("results.json"));
    assert_eq!(r["runs_done"], runs_done, "{r:#}");
    let md = std::fs::read_to_string(root.join("results.md")).unwrap();
    let mut all = Vec::new();
    for (search, augments) in genotypes {
        let g = r["genotypes"].as_array().unwrap().iter().find(|g| g["search"] == *search).unwrap();
        let vals: Vec<f64> = augments.iter().map(|a| best_from_metrics(&folder(root, a))).collect();
        let (mean, std) = mean_std(&vals);
        close(g["top1"]["mean"].as_f64().unwrap(), mean, &format!("{search} mean"));
        close(g["top1"]["std"].as_f64().unwrap(), std, &format!("{search} std"));
        assert!(md.contains(&format!("| {mean:.2}±{std:.2} |")), "{search}: {mean:.2}±{std:.2} not in\n{md}");
        // the parameter count is the retrained network's, as its summary says
        let params = read_json(&folder(root, augments[0]).join("summary.json"))["params_without_aux"].clone();
        assert_eq!(g["params_without_aux"], params);
        assert_eq!(g["genotype"], read_json(&folder(root, search).join("summary.json"))["genotype"]);
        assert!(g["search_time_s"].as_f64().unwrap() > 0.0);
        all.extend(vals);
    }
    let (mean, std) = mean_std(&all);
    close(r["overall"]["mean"].as_f64().unwrap(), mean, "overall mean");
    close(r["overall"]["std"].as_f64().unwrap(), std, "overall std");
    let n = all.len() as f64;
    let pop = (all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    close(r["overall"]["std_population"].as_f64().unwrap(), pop, "overall population std");
    close(r["best"]["top1"].as_f64().unwrap(), all.iter().copied().fold(f64::NEG_INFINITY, f64::max), "best");
    assert!(md.contains(&format!("**Over all retrainings: {mean:.2}±{std:.2}**")), "{md}");
}

fn wait_until(secs: u64, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_alive(pid: u64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn a_protocol_killed_in_the_middle_finishes_when_run_again_without_redoing_finished_runs() {
    let _t = common::Timer::start("protocol_mnist::killed_and_run_again");
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let file = protocol_file(tmp.path(), &mnist, "p");
    let root = tmp.path().join("protocols/p");
    let a0 = folder(&root, "p-s0-a0");

    // kill -9 the protocol while the first retraining is in its middle (a checkpoint at step 5+)
    let mut child = dropnas()
        .current_dir(tmp.path())
        .args(["protocol", "run", file.to_str().unwrap(), "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(300, "a checkpoint inside p-s0-a0's epoch", || {
        common::checkpoint_head(&a0.join("checkpoint.ckpt"))
            .is_some_and(|h| h["header"]["epoch"] == 0 && h["header"]["step"].as_u64() >= Some(5))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // the run the protocol had started stops too (SIGTERM when its parent dies), checkpointed
    let attempt = read_json(&root.join("attempts/p-s0-a0.json"));
    let pid = attempt["pid"].as_u64().unwrap();
    wait_until(60, "the orphaned retraining to stop", || !pid_alive(pid));
    assert!(attempt["ended_unix_s"].is_null(), "nobody recorded its end: {attempt}");
    assert!(finished(&folder(&root, "p-s0")) && !finished(&a0), "killed after p-s0, inside p-s0-a0");
    let search_metrics = std::fs::read(folder(&root, "p-s0").join("metrics.jsonl")).unwrap();
    let run_id = |run: &str| read_json(&folder(&root, run).join("config.json"))["run_id"].clone();
    let (s0_id, a0_id) = (run_id("p-s0"), run_id("p-s0-a0"));
    let status = ok(&protocol(tmp.path(), &["status", "protocols/p"]));
    assert!(status.contains("p-s0-a0  augment  pending  interrupted; resumes from its checkpoint"), "{status}");

    // run again: it finishes
    let out = ok(&protocol(tmp.path(), &["run", file.to_str().unwrap(), "--jobs", "2"]));
    assert!(out.contains("p-s0-a0 resumed"), "{out}");
    assert!(!out.contains("p-s0 started") && !out.contains("p-s0 resumed"), "{out}");
    for run in RUNS {
        assert!(finished(&folder(&root, run)), "{run} did not finish:\n{out}");
    }
    // the finished search was not redone; the retraining was resumed, not started anew
    assert_eq!(std::fs::read(folder(&root, "p-s0").join("metrics.jsonl")).unwrap(), search_metrics);
    assert_eq!((run_id("p-s0"), run_id("p-s0-a0")), (s0_id, a0_id));
    let resumed = read_json(&root.join("attempts/p-s0-a0.json"));
    assert_eq!(resumed["command"].as_array().unwrap().last().unwrap(), "--resume");
    assert_eq!(resumed["exit_code"], 0);
    let steps: Vec<u64> = metrics(&a0, "step").iter().map(|s| s["global_step"].as_u64().unwrap()).collect();
    assert_eq!(steps, (0..50).collect::<Vec<_>>(), "each step once");

    // the manifest: every run, its command line, its state
    let m = read_json(&root.join("protocol.json"));
    let runs = m["runs"].as_array().unwrap();
    assert_eq!(runs.iter().map(|r| r["name"].as_str().unwrap()).collect::<Vec<_>>(), RUNS);
    assert!(runs.iter().all(|r| r["state"] == "done"), "{m:#}");
    let a1 = &runs[2];
    assert_eq!(a1["after"], "p-s0");
    let line = a1["command_line"].as_str().unwrap();
    assert!(
        line.starts_with("dropnas augment --name p-s0-a1 --dataset mnist --seed 1 --genotype protocols/p/searchs/p-s0"),
        "{line}"
    );
    // each retraining took its search's genotype
    assert_eq!(
        read_json(&a0.join("config.json"))["genotype"],
        read_json(&folder(&root, "p-s0").join("summary.json"))["genotype"]
    );
    check_results(&root, 6, &[("p-s0", &["p-s0-a0", "p-s0-a1"]), ("p-s1", &["p-s1-a0", "p-s1-a1"])]);

    // a third time: nothing to do
    let again = ok(&protocol(tmp.path(), &["run", file.to_str().unwrap()]));
    assert!(!again.contains("started") && !again.contains("resumed"), "{again}");
    assert!(again.contains("6 runs: 6 done"), "{again}");
}

#[test]
fn a_failed_search_skips_its_retrainings_only_and_is_retried_on_the_next_run() {
    let _t = common::Timer::start("protocol_mnist::failed_search");
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let file = protocol_file(tmp.path(), &mnist, "p");
    let root = tmp.path().join("protocols/p");
    // the search of seed 1 cannot make its run folder: a file is in the way
    std::fs::create_dir_all(root.join("searchs")).unwrap();
    std::fs::write(folder(&root, "p-s1"), "in the way").unwrap();
    let out = protocol(tmp.path(), &["run", file.to_str().unwrap(), "--jobs", "2"]);
    let (stdout, stderr) = (common::stdout(&out), common::stderr(&out));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("1 run(s) failed and 2 skipped"), "{stderr}");
    assert!(
        stdout.contains(
            "p-s1     search   failed   exit code 2: error: protocols/p/searchs/p-s1 exists and is not a folder"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("exists and is not a folder"), "{stdout}");
    assert!(stdout.contains("p-s1-a0  augment  skipped  its search p-s1 failed"), "{stdout}");
    for run in ["p-s0", "p-s0-a0", "p-s0-a1"] {
        assert!(finished(&folder(&root, run)), "{run} ran despite p-s1's failure");
    }
    assert!(!folder(&root, "p-s1-a0").exists());
    check_results(&root, 3, &[("p-s0", &["p-s0-a0", "p-s0-a1"])]);

    // the way cleared, running again does the rest only
    std::fs::remove_file(folder(&root, "p-s1")).unwrap();
    let done = std::fs::read(folder(&root, "p-s0-a1").join("metrics.jsonl")).unwrap();
    let out = ok(&protocol(tmp.path(), &["run", file.to_str().unwrap(), "--jobs", "2"]));
    assert!(out.contains("p-s1 started") && !out.contains("p-s0-a1 started"), "{out}");
    assert_eq!(std::fs::read(folder(&root, "p-s0-a1").join("metrics.jsonl")).unwrap(), done);
    check_results(&root, 6, &[("p-s0", &["p-s0-a0", "p-s0-a1"]), ("p-s1", &["p-s1-a0", "p-s1-a1"])]);
}

#[test]
fn bad_protocols_are_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |text: &str| {
        let p = tmp.path().join("bad.toml");
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let head = "name = \"b\"\ndataset = \"mnist\"\nsearch_seeds = [0]\naugment_seeds = [0]\n";
    for (extra, needles) in [
        ("[search]\nlayer = 3\n", &["`[search]` key `layer` is not a flag of `dropnas search`"][..]),
        ("[augment]\ninit_channels = 8\n", &["`[augment]` key `init_channels`", "did you mean `init-channels`?"]),
        ("[augment]\nepochs = -2\n", &["the run b-s0-a0 would fail", "--epochs", "dropnas augment --name b-s0-a0"]),
        ("[search]\nname = \"x\"\n", &["the protocol sets --name itself"]),
    ] {
        let f = write(&format!("{head}{extra}"));
        user_error(&protocol(tmp.path(), &["run", &f]), needles);
    }
    user_error(&protocol(tmp.path(), &["run", "missing.toml"]), &["cannot read the protocol file missing.toml"]);
    let f = write(head);
    user_error(&protocol(tmp.path(), &["run", &f, "--devices", "cpu", "--jobs", "2"]), &["--jobs 2 with 1 device"]);
    user_error(&protocol(tmp.path(), &["status", "nowhere"]), &["holds no protocol.json"]);
    // nothing was written
    assert!(!tmp.path().join("protocols").exists());
}
