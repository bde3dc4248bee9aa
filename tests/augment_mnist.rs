//! `dropnas augment` of darts-v2 on the real MNIST: outputs, the schedule, an accuracy within
//! a few points of the PyTorch reference (tools/reference/augment_mnist.py), `dropnas eval`
//! agreeing with the run, and bit-identical resume.

mod common;

use common::outcome::RunOutcome;
use common::{kill_when, metrics, num, ok, read_json, run};
use serde_json::Value;
use std::f64::consts::PI;
use std::path::Path;
use std::sync::OnceLock;

/// Lowest acceptable best test top-1 of the main run, in [0, 1]: the PyTorch reference's mean
/// minus 2 standard deviations over 8 seeds, with these settings under `--torch-compat 1.0` (the
/// default: BatchNorm weights start U(0, 1), which slows these first epochs down; the last epoch
/// trains at lr 0). Best test top-1 per seed of `python3 tools/reference/augment_mnist.py`:
/// - `--seeds 0 1 2` (`--threads 2`): 67.2, 74.8, 72.6 (per epoch 21.2/67.1/67.2,
///   26.4/67.7/74.8, 45.6/70.7/72.6);
/// - `--seeds 3 4 5 6 7 --threads 1`: 64.9, 79.1, 76.2, 74.8, 60.0.
///
/// Mean 71.2%, sample standard deviation 6.51 points: 71.2 - 2 x 6.51 = 58.19%. Three epochs on
/// 3000 images vary this much from seed to seed (a different CPU acts as another seed); a
/// reference-like run falls under the bound about 2% of the time, an untrained network scores
/// about 10%. This binary at `--seed 0/1/2`: 70.4, 73.8, 77.6; the default seed 666 used here: 76.7.
const MIN_TOP1: f64 = 0.5819;

const EPOCHS: usize = 3;

/// An augment run of darts-v2 on MNIST with `settings` (MAIN or SMALL) and `extra` flags.
fn augment_args(mnist: &Path, out: &Path, name: &str, settings: &str, extra: &str) -> Vec<String> {
    let line = format!("augment --name {name} --dataset mnist --no-download --genotype darts-v2 {settings} {extra}");
    common::cli(&line, &[("--data-dir", mnist), ("--out-dir", out)])
}

/// The accuracy run: 47 steps per epoch.
const MAIN: &str = "--layers 6 --init-channels 8 --epochs 3 --batch-size 64 --max-train-samples 3000 \
                    --max-test-samples 1000";

fn eval_json(mnist: &Path, ckpt: &Path, test_samples: usize) -> Value {
    let line = format!("eval --dataset mnist --no-download --json --max-test-samples {test_samples}");
    let out = ok(&run(common::cli(&line, &[("--data-dir", mnist), ("--checkpoint", ckpt)])));
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("eval --json printed {out:?}: {e}"))
}

#[test]
fn darts_v2_retrains_on_mnist() {
    let _t = common::Timer::start("augment_mnist::darts_v2_retrains_on_mnist");
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    ok(&run(augment_args(&mnist, tmp.path(), "dv2", MAIN, "")));
    let dir = tmp.path().join("dv2");

    let cfg = read_json(&dir.join("config.json"));
    for (k, v) in [("layers", 6), ("init_channels", 8), ("epochs", 3), ("batch_size", 64), ("max_train_samples", 3000)]
    {
        assert_eq!(cfg[k], v, "config.json {k}: {cfg}");
    }
    assert_eq!(cfg["max_test_samples"], 1000);
    assert_eq!(cfg["cutout_length"], 16);
    assert_eq!(cfg["aux_weight"], 0.4);
    assert_eq!(cfg["lr"], 0.05);

    let steps = metrics(&dir, "step");
    assert_eq!(steps.len(), EPOCHS * 3000usize.div_ceil(64));
    let epochs = metrics(&dir, "epoch");
    assert_eq!(epochs.len(), EPOCHS);
    for (e, line) in epochs.iter().enumerate() {
        assert_eq!(line["epoch"], e + 1);
        for k in ["train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr", "drop_path_prob"] {
            assert!(line[k].is_number(), "epoch line lacks {k}: {line}");
        }
        // cosine stepped at the start of each epoch (the last epoch trains at lr 0)
        let lr = 0.05 * (1.0 + (PI * (e + 1) as f64 / EPOCHS as f64).cos()) / 2.0;
        assert!((num(line, "lr") - lr).abs() < 1e-12, "epoch {e}: lr {} vs {lr}", line["lr"]);
        let p = 0.2 * e as f64 / EPOCHS as f64;
        assert!((num(line, "drop_path_prob") - p).abs() < 1e-12, "epoch {e}: drop path {}", line["drop_path_prob"]);
    }
    let val: Vec<f64> = epochs.iter().map(|l| num(l, "val_top1")).collect();
    eprintln!("augment darts-v2 on MNIST, test top-1 per epoch: {val:?}");
    let best = val.iter().copied().fold(0.0, f64::max);
    assert!(best >= MIN_TOP1, "best test top-1 {best} < {MIN_TOP1} (per epoch: {val:?})");

    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(num(&summary, "best_top1"), best);
    assert_eq!(summary["finished"], true);
    let info = ok(&run([
        "info",
        "--genotype",
        "darts-v2",
        "--layers",
        "6",
        "--init-channels",
        "8",
        "--input-size",
        "28",
        "--input-channels",
        "1",
        "--json",
    ]));
    let info: Value = serde_json::from_str(info.trim()).unwrap();
    assert_eq!(summary["params_without_aux"], info["params_without_aux"]);
    assert!(dir.join("checkpoint.ckpt").is_file());
    assert!(std::fs::read_to_string(dir.join("dv2.log")).unwrap().contains("Valid:"));

    // `dropnas eval` of best.ckpt reproduces the best epoch's test accuracy
    let e = eval_json(&mnist, &dir.join("best.ckpt"), 1000);
    assert_eq!(e["samples"], 1000);
    assert!((num(&e, "top1") - best).abs() < 1e-9, "eval top-1 {} vs the run's best {best}", e["top1"]);
}

// ---- resume: a smaller network, 20 steps per epoch ----

const SMALL: &str = "--layers 3 --init-channels 4 --epochs 2 --batch-size 32 --max-train-samples 640 \
                     --max-test-samples 200 --seed 5";

/// What must be bit-identical between an uninterrupted and a resumed run: everything the folder
/// holds (every metrics line but its timing fields, both checkpoints decoded whole), and
/// `dropnas eval --json` of the final checkpoint.
struct Outcome {
    run: RunOutcome,
    eval: Value,
}

fn outcome(mnist: &Path, dir: &Path) -> Outcome {
    Outcome {
        run: common::outcome::run_outcome(dir, &["checkpoint.ckpt", "best.ckpt"], &[]),
        eval: eval_json(mnist, &dir.join("checkpoint.ckpt"), 200),
    }
}

fn uninterrupted(mnist: &Path) -> &'static Outcome {
    static A: OnceLock<Outcome> = OnceLock::new();
    A.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        ok(&run(augment_args(mnist, tmp.path(), "a", SMALL, "")));
        let dir = tmp.path().join("a");
        assert_eq!((metrics(&dir, "step").len(), metrics(&dir, "epoch").len()), (40, 2));
        outcome(mnist, &dir)
    })
}

#[track_caller]
fn assert_same(a: &Outcome, mnist: &Path, dir: &Path, what: &str) {
    let globals: Vec<Value> = metrics(dir, "step").iter().map(|s| s["global_step"].clone()).collect();
    assert_eq!(globals, (0..40).map(Value::from).collect::<Vec<_>>(), "{what}: step lines missing or duplicated");
    let b = outcome(mnist, dir);
    common::outcome::assert_same_run(&a.run, &b.run, what);
    assert_eq!(a.eval, b.eval, "{what}: eval of checkpoint.ckpt");
}

/// Killed just after a mid-epoch checkpoint of epoch 2, and just after the end-of-epoch-1
/// checkpoint; resumed each time.
#[test]
fn killed_then_resumed_augment_is_bit_identical() {
    let _t = common::Timer::start("augment_mnist::killed_then_resumed_augment_is_bit_identical");
    let mnist = require_data!("mnist");
    let a = uninterrupted(&mnist);
    let tmp = tempfile::tempdir().unwrap();
    for (name, step) in [("mid", 6), ("boundary", 0)] {
        let args = augment_args(&mnist, tmp.path(), name, SMALL, "--checkpoint-every 3");
        let dir = tmp.path().join(name);
        kill_when(&args, &dir.join("checkpoint.ckpt"), 300, |h| h["epoch"] == 1 && h["step"] == step);
        ok(&run(augment_args(&mnist, tmp.path(), name, SMALL, "--resume")));
        assert_same(a, &mnist, &dir, &format!("killed at epoch 2 step {step}, resumed"));
        assert_eq!(read_json(&dir.join("summary.json"))["finished"], true);
    }
}

/// `--max-steps 7`, then one `--resume` to the end.
#[test]
fn max_steps_then_resumed_augment_is_bit_identical() {
    let _t = common::Timer::start("augment_mnist::max_steps_then_resumed");
    let mnist = require_data!("mnist");
    let a = uninterrupted(&mnist);
    let tmp = tempfile::tempdir().unwrap();
    ok(&run(augment_args(&mnist, tmp.path(), "m", SMALL, "--max-steps 7")));
    assert_eq!(metrics(&tmp.path().join("m"), "step").len(), 7);
    ok(&run(augment_args(&mnist, tmp.path(), "m", SMALL, "--resume")));
    assert_eq!(read_json(&tmp.path().join("m/summary.json"))["finished"], true, "the resumed run stopped early");
    assert_same(a, &mnist, &tmp.path().join("m"), "--max-steps 7, resumed");
}
