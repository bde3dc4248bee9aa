//! Resume equivalence of `dropnas search`: a run interrupted (killed after a mid-epoch
//! checkpoint, or stopped with `--max-steps`) and continued with `--resume` ends bit-identical
//! to the uninterrupted run, and its metrics.jsonl has every line exactly once.

mod common;

use common::{checkpoint_part, kill_when, metrics, ok, read_json, read_jsonl, record_without_ids, run};
use serde_json::Value;
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

/// What must be bit-identical between two runs. serde_json writes the shortest text that
/// round-trips each f64, so equal JSON values mean bit-equal numbers.
struct Outcome {
    /// (global_step, [loss, loss_1, loss_2, top1]) per step line, in file order.
    steps: Vec<(u64, [Value; 4])>,
    /// (epoch, loss, top1, drop_freq_param) per epoch line, in file order.
    epochs: Vec<[Value; 4]>,
    /// The last line of alphas.jsonl: raw alphas of both cell types.
    alphas: [Value; 2],
    alpha_lines: usize,
    genotype: String,
    /// The network's weights and BN statistics in the final checkpoint (its record without ids).
    net: Vec<u8>,
}

fn outcome(dir: &Path) -> Outcome {
    let steps = metrics(dir, "step")
        .into_iter()
        .map(|s| {
            let v = |k: &str| s[k].clone();
            (s["global_step"].as_u64().unwrap(), [v("loss"), v("loss_1"), v("loss_2"), v("top1")])
        })
        .collect();
    let epochs = metrics(dir, "epoch")
        .into_iter()
        .map(|e| [e["epoch"].clone(), e["loss"].clone(), e["top1"].clone(), e["drop_freq_param"].clone()])
        .collect();
    let alphas = read_jsonl(&dir.join("alphas.jsonl"));
    let last = alphas.last().expect("alphas.jsonl is empty");
    let net = record_without_ids(&checkpoint_part(&dir.join("checkpoint.ckpt"), "net"));
    Outcome {
        steps,
        epochs,
        alphas: [last["normal_raw"].clone(), last["reduce_raw"].clone()],
        alpha_lines: alphas.len(),
        genotype: std::fs::read_to_string(dir.join("genotype.txt")).unwrap(),
        net,
    }
}

/// The uninterrupted run, made once for all tests of this file.
fn uninterrupted(mnist: &Path) -> &'static Outcome {
    static A: OnceLock<Outcome> = OnceLock::new();
    A.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        ok(&run(search_args(mnist, tmp.path(), "a", "")));
        let a = outcome(&tmp.path().join("a"));
        assert_eq!(a.steps.len() as u64, EPOCHS * STEPS_PER_EPOCH);
        assert_eq!(a.epochs.len() as u64, EPOCHS);
        a
    })
}

/// Asserts that the resumed run `b` equals the uninterrupted `a`, naming the first difference.
#[track_caller]
fn assert_same(a: &Outcome, b: &Outcome, what: &str) {
    let globals: Vec<u64> = b.steps.iter().map(|s| s.0).collect();
    assert_eq!(globals, (0..EPOCHS * STEPS_PER_EPOCH).collect::<Vec<_>>(), "{what}: step lines missing or duplicated");
    if let Some((x, y)) = a.steps.iter().zip(&b.steps).find(|(x, y)| x != y) {
        panic!("{what}: first difference at global step {}: {:?} vs {:?}", x.0, x.1, y.1);
    }
    assert_eq!(a.epochs, b.epochs, "{what}: epoch lines of metrics.jsonl");
    assert_eq!(a.alpha_lines, b.alpha_lines, "{what}: lines of alphas.jsonl");
    assert_eq!(a.alphas, b.alphas, "{what}: final raw alphas");
    assert_eq!(a.genotype, b.genotype, "{what}: genotype.txt");
    assert!(a.net == b.net, "{what}: the final network weights differ");
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
    assert_same(a, &outcome(&dir), "killed in epoch 1 and resumed");
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
        assert_same(a, &outcome(&dir), &format!("killed at epoch 2 step {step} and resumed"));
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
        assert_same(a, &outcome(&dir), &format!("stopped after {k} steps and resumed"));
    }
}
