//! Resume equivalence of `dropnas search`: a run interrupted (killed after a mid-epoch
//! checkpoint, or stopped with `--max-steps`) and continued with `--resume` ends bit-identical
//! to the uninterrupted run, and its metrics.jsonl has every line exactly once.

mod common;

use common::outcome::RunOutcome;
use common::{kill_when, metrics, ok, read_json, run};
use std::path::Path;
use std::sync::OnceLock;

const STEPS_PER_EPOCH: u64 = 20; // 320 samples / batch 16
const EPOCHS: u64 = 2;

/// The run of every test here: 2 epochs of 20 steps of a 2-cell supernet; `extra` flags added.
fn search_args(mnist: &Path, out: &Path, name: &str, extra: &str) -> Vec<String> {
    let line = format!(
        "search --name {name} --dataset mnist --no-download --layers 2 --init-channels 4 --batch-size 16 \
         --max-train-samples 320 --epochs 2 --seed 11 {extra}"
    );
    common::cli(&line, &[("--data-dir", mnist), ("--out-dir", out)])
}

/// What must be bit-identical between two runs: every metrics and alphas line (timing fields
/// aside), the final checkpoint decoded whole, the genotype.
fn outcome(dir: &Path) -> RunOutcome {
    common::outcome::run_outcome(dir, &["checkpoint.ckpt"], &["genotype.txt"])
}

/// The uninterrupted run, made once for all tests of this file.
fn uninterrupted(mnist: &Path) -> &'static RunOutcome {
    static A: OnceLock<RunOutcome> = OnceLock::new();
    A.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        ok(&run(search_args(mnist, tmp.path(), "a", "")));
        let dir = tmp.path().join("a");
        assert_eq!(metrics(&dir, "step").len() as u64, EPOCHS * STEPS_PER_EPOCH);
        assert_eq!(metrics(&dir, "epoch").len() as u64, EPOCHS);
        outcome(&dir)
    })
}

/// Asserts that the resumed run in `dir` equals the uninterrupted `a`, naming the first difference.
#[track_caller]
fn assert_same(a: &RunOutcome, dir: &Path, what: &str) {
    let globals: Vec<u64> = metrics(dir, "step").iter().map(|s| s["global_step"].as_u64().unwrap()).collect();
    assert_eq!(globals, (0..EPOCHS * STEPS_PER_EPOCH).collect::<Vec<_>>(), "{what}: step lines missing or duplicated");
    common::outcome::assert_same_run(a, &outcome(dir), what);
}

/// Killed inside the first epoch just after a `--checkpoint-every 3` checkpoint; the step lines
/// written after that checkpoint are dropped on resume and written again.
#[test]
fn killed_in_first_epoch_then_resumed_is_bit_identical() {
    let _t = common::Timer::start("search_resume::killed_in_first_epoch");
    let mnist = require_data!("mnist");
    let a = uninterrupted(&mnist);
    let tmp = tempfile::tempdir().unwrap();
    let args = search_args(&mnist, tmp.path(), "k", "--checkpoint-every 3");
    let dir = tmp.path().join("k");
    let at = kill_when(&args, &dir.join("checkpoint.ckpt"), 300, |h| h["epoch"] == 0 && h["step"].as_u64() >= Some(6));
    eprintln!("killed with the checkpoint at epoch {} step {}", at["epoch"], at["step"]);
    ok(&run(search_args(&mnist, tmp.path(), "k", "--resume")));
    assert_same(a, &dir, "killed in epoch 1 and resumed");
    assert_eq!(read_json(&dir.join("summary.json"))["finished"], true);
}

/// Killed after the end-of-epoch-1 checkpoint, and inside epoch 2.
#[test]
fn killed_in_second_epoch_then_resumed_is_bit_identical() {
    let _t = common::Timer::start("search_resume::killed_in_second_epoch");
    let mnist = require_data!("mnist");
    let a = uninterrupted(&mnist);
    let tmp = tempfile::tempdir().unwrap();
    for (name, step) in [("boundary", 0), ("mid", 3)] {
        let args = search_args(&mnist, tmp.path(), name, "--checkpoint-every 3");
        let dir = tmp.path().join(name);
        kill_when(&args, &dir.join("checkpoint.ckpt"), 300, |h| h["epoch"] == 1 && h["step"] == step);
        ok(&run(search_args(&mnist, tmp.path(), name, "--resume")));
        assert_same(a, &dir, &format!("killed at epoch 2 step {step} and resumed"));
    }
}

/// `--max-steps K` (inside the first epoch; at the end of the first epoch), then one `--resume`
/// to the end.
#[test]
fn max_steps_then_resume_is_bit_identical() {
    let _t = common::Timer::start("search_resume::max_steps_then_resume");
    let mnist = require_data!("mnist");
    let a = uninterrupted(&mnist);
    let tmp = tempfile::tempdir().unwrap();
    for k in [7, STEPS_PER_EPOCH] {
        let name = format!("k{k}");
        let k = k.to_string();
        ok(&run(search_args(&mnist, tmp.path(), &name, &format!("--max-steps {k}"))));
        let dir = tmp.path().join(&name);
        assert_eq!(metrics(&dir, "step").len().to_string(), k, "--max-steps {k}: steps run");
        assert_eq!(read_json(&dir.join("summary.json"))["finished"], false);
        ok(&run(search_args(&mnist, tmp.path(), &name, "--resume")));
        assert_eq!(read_json(&dir.join("summary.json"))["finished"], true, "--max-steps {k}, then --resume");
        assert_same(a, &dir, &format!("stopped after {k} steps and resumed"));
    }
}

/// Killed twice (mid-epoch 1, then mid-epoch 2 of the resumed run) and resumed each time: state
/// restored by the first resume must survive into the second checkpoint.
#[test]
fn a_resumed_run_killed_again_then_resumed_is_bit_identical() {
    let _t = common::Timer::start("search_resume::killed_twice");
    let mnist = require_data!("mnist");
    let a = uninterrupted(&mnist);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("twice");
    let first = search_args(&mnist, tmp.path(), "twice", "--checkpoint-every 4");
    kill_when(&first, &dir.join("checkpoint.ckpt"), 300, |h| h["epoch"] == 0 && h["step"].as_u64() >= Some(8));
    let again = search_args(&mnist, tmp.path(), "twice", "--resume --checkpoint-every 4");
    kill_when(&again, &dir.join("checkpoint.ckpt"), 300, |h| h["epoch"] == 1 && h["step"].as_u64() >= Some(4));
    ok(&run(search_args(&mnist, tmp.path(), "twice", "--resume")));
    assert_same(a, &dir, "killed, resumed, killed again and resumed");
}
