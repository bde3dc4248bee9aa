//! A tiny DropNAS search on the real MNIST (300 steps): the loss falls, every output exists and is
//! well-formed, and the learning rate follows the original's per-epoch cosine schedule.

mod common;

use common::{mean, metrics, num, ok, read_json, read_jsonl, run};
use serde_json::Value;
use std::f64::consts::PI;

const EPOCHS: usize = 2;
const SAMPLES: usize = 2400;
const BATCH: usize = 16;

#[test]
fn tiny_search_learns_and_writes_every_output() {
    let _t = common::Timer::start("search_mnist::tiny_search_learns_and_writes_every_output");
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let line = "search --name tiny --dataset mnist --no-download --layers 3 --init-channels 4 --batch-size 16 \
                --max-train-samples 2400 --epochs 2 --seed 3 --print-freq 25";
    let a = common::cli(line, &[("--data-dir", &mnist), ("--out-dir", tmp.path())]);
    let stdout = ok(&run(&a));
    let dir = tmp.path().join("tiny");

    // config.json: the resolved values passed
    let cfg = read_json(&dir.join("config.json"));
    for (k, v) in [("layers", 3), ("init_channels", 4), ("batch_size", 16), ("max_train_samples", 2400), ("epochs", 2)]
    {
        assert_eq!(cfg[k], v, "config.json {k}: {cfg}");
    }
    assert_eq!(cfg["seed"], 3);
    assert_eq!(cfg["dataset"], "mnist");
    assert_eq!(cfg["name"], "tiny");
    assert_eq!(cfg["search_space"], "original");
    assert_eq!(cfg["w_lr"], 0.0375);
    assert_eq!(cfg["w_lr_min"], 0.0015);
    assert_eq!(cfg["drop_rate_param"], 3e-5);
    assert_eq!(cfg["drop_rate_nonparam"], 3e-5);

    // metrics.jsonl: one step line per step, in order, with every field
    let steps = metrics(&dir, "step");
    let per_epoch = SAMPLES.div_ceil(BATCH);
    assert_eq!(steps.len(), EPOCHS * per_epoch);
    for (g, s) in steps.iter().enumerate() {
        for k in ["epoch", "step", "global_step", "loss", "loss_1", "loss_2", "top1", "top5", "lr", "time_s"] {
            assert!(s[k].is_number(), "step line lacks {k}: {s}");
        }
        assert_eq!(s["global_step"], g);
        assert_eq!(s["epoch"], g / per_epoch + 1);
        assert_eq!(s["step"], g % per_epoch);
        assert!((num(s, "loss") - num(s, "loss_1") - num(s, "loss_2")).abs() < 1e-9, "loss = loss_1 + loss_2: {s}");
        assert!((0.0..=1.0).contains(&num(s, "top1")) && num(s, "top1") <= num(s, "top5"), "{s}");
    }
    // the loss falls clearly (measured: the last 20 steps average 0.38 of the first 20 here,
    // 2.63 -> 1.00; with 1280 images, 0.56)
    let loss = |s: &[Value]| mean(s.iter().map(|v| num(v, "loss")));
    let (first, last) = (loss(&steps[..20]), loss(&steps[steps.len() - 20..]));
    eprintln!("search loss: first 20 steps {first:.4}, last 20 steps {last:.4}");
    assert!(last <= 0.8 * first, "the loss did not fall: first 20 steps {first}, last 20 {last}");

    let epochs = metrics(&dir, "epoch");
    assert_eq!(epochs.len(), EPOCHS);
    for (e, line) in epochs.iter().enumerate() {
        assert_eq!(line["epoch"], e + 1);
        for k in
            ["loss", "top1", "top5", "drop_rate_param", "drop_rate_nonparam", "drop_freq_param", "drop_freq_nonparam"]
        {
            assert!(line[k].is_number(), "epoch line lacks {k}: {line}");
        }
        // the original's schedule, stepped at the start of each epoch
        let expected = 0.0015 + (0.0375 - 0.0015) * (1.0 + (PI * (e + 1) as f64 / EPOCHS as f64).cos()) / 2.0;
        assert!((num(line, "lr") - expected).abs() < 1e-12, "epoch {e}: lr {} vs {expected}", line["lr"]);
        let of_epoch: Vec<&Value> = steps.iter().filter(|s| s["epoch"] == e + 1).collect();
        assert!(of_epoch.iter().all(|s| s["lr"] == line["lr"]), "step lr differs from the epoch's");
        let avg = mean(of_epoch.iter().map(|s| num(s, "loss")));
        assert!(
            (avg - num(line, "loss")).abs() < 1e-9,
            "epoch loss {} is not the mean of its steps {avg}",
            line["loss"]
        );
        // each op is dropped with probability p = r^(1/4) = 0.074 at r = 3e-5, a group of four
        // redrawn when all four drop: E = (p - p^4) / (1 - p^4); per epoch and group 150 steps x
        // 2 cell types x 14 edges x 4 ops are drawn, so 5 binomial standard deviations are 0.010
        // (a rate off by 3x moves p by 0.023)
        let p = 3e-5f64.powf(0.25);
        let expected = (p - p.powi(4)) / (1.0 - p.powi(4));
        let draws = (per_epoch * 2 * 14 * 4) as f64;
        let tolerance = 5.0 * (expected * (1.0 - expected) / draws).sqrt();
        for k in ["drop_freq_param", "drop_freq_nonparam"] {
            assert!((num(line, k) - expected).abs() < tolerance, "{k} {} far from {expected} (±{tolerance})", line[k]);
        }
    }

    // alphas.jsonl: one line per epoch, 14 rows (edges) per cell type, softmax rows sum to 1
    let alphas = read_jsonl(&dir.join("alphas.jsonl"));
    assert_eq!(alphas.len(), EPOCHS);
    for (e, line) in alphas.iter().enumerate() {
        assert_eq!(line["epoch"], e + 1);
        let n_ops = line["ops"].as_array().unwrap().len();
        assert_eq!(n_ops, 8);
        for cell in ["normal", "reduce", "normal_raw", "reduce_raw"] {
            let rows = line[cell].as_array().unwrap_or_else(|| panic!("no {cell}: {line}"));
            assert_eq!(rows.len(), 14, "{cell}");
            for row in rows {
                let row: Vec<f64> = row.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
                assert_eq!(row.len(), n_ops);
                if !cell.ends_with("_raw") {
                    let sum: f64 = row.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-5 && row.iter().all(|&p| p > 0.0), "{cell} row {row:?}");
                }
            }
        }
    }
    // the alphas moved (3 layers: cell 0 is a normal cell, cells 1 and 2 reduction cells)
    for cell in ["normal_raw", "reduce_raw"] {
        assert_ne!(alphas[1][cell], alphas[0][cell], "{cell} did not move in epoch 2");
    }

    // genotype.txt: valid, canonical, the last epoch's
    let genotype = std::fs::read_to_string(dir.join("genotype.txt")).unwrap();
    let shown = ok(&run(["genotype", "show", &format!("@{}", dir.join("genotype.txt").display())]));
    assert_eq!(shown.trim_end(), genotype.trim_end());
    assert_eq!(epochs[1]["genotype"].as_str().unwrap(), genotype.trim_end());
    assert!(stdout.contains(genotype.trim_end()), "stdout: {stdout}");

    // checkpoint, summary, human log
    let ckpt = std::fs::read(dir.join("checkpoint.ckpt")).unwrap();
    assert!(ckpt.starts_with(b"DROPNAS-CKPT-v1\n"));
    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["finished"], true);
    assert_eq!(summary["epochs_done"], EPOCHS);
    assert_eq!(summary["steps_done"], EPOCHS * per_epoch);
    assert_eq!(summary["genotype"].as_str().unwrap(), genotype.trim_end());
    let log = std::fs::read_to_string(dir.join("tiny.log")).unwrap();
    assert!(log.contains("genotype = ") && log.contains("Step"), "log:\n{log}");
    assert!(log.lines().count() >= 2 * EPOCHS);
}
