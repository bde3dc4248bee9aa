//! `--dataset imagefolder` end to end, on a tiny folder of synthetic PNG and JPEG images written
//! by the test: search and augment learn (the loss falls), `eval` reproduces the run's accuracy,
//! the ImageNet recipe runs DARTS' mobile-setting network at 224x224, and bad folders are clear
//! errors (exit code 2) or counted skips.

mod common;

use common::{metrics, num, ok, read_json, run, user_error, write_image_folder};
use serde_json::{Value, json};
use std::path::Path;

const CLASSES: [&str; 3] = ["circle", "ring", "square"];

/// The mean of `key` over the step lines of `epoch` (from 1).
fn epoch_mean(dir: &Path, epoch: u64, key: &str) -> f64 {
    let lines: Vec<f64> = metrics(dir, "step").iter().filter(|l| l["epoch"] == epoch).map(|l| num(l, key)).collect();
    assert!(!lines.is_empty(), "no steps in epoch {epoch}");
    common::mean(lines)
}

fn args(line: &str, data: &Path, out: &Path) -> Vec<String> {
    common::cli(line, &[("--data-dir", data), ("--out-dir", out)])
}

#[test]
fn search_learns_on_an_image_folder() {
    let _t = common::Timer::start("imagefolder::search_learns_on_an_image_folder");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_image_folder(&data, &CLASSES, 16, 4);
    let line = "search --name s --dataset imagefolder --input-size 16 --layers 3 --init-channels 4 \
                --batch-size 12 --epochs 4 --w-lr 0.1 --seed 3";
    ok(&run(args(line, &data, tmp.path())));
    let dir = tmp.path().join("s");
    let cfg = read_json(&dir.join("config.json"));
    assert_eq!(cfg["image_folder"]["input_size"], 16);
    assert_eq!(metrics(&dir, "step").len(), 4 * 4, "48 images in batches of 12, 4 epochs");
    let (first, last) = (epoch_mean(&dir, 1, "loss"), epoch_mean(&dir, 4, "loss"));
    eprintln!("search on an image folder: mean loss epoch 1 {first:.3}, epoch 4 {last:.3}");
    assert!(last < first - 0.1, "the loss did not fall: {first} -> {last}");
    let log = std::fs::read_to_string(dir.join("s.log")).unwrap();
    assert!(log.contains("image folder") && log.contains("48 images in 3 classes"), "{log}");
    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["input_shape"], json!([3, 16, 16]));
    assert!(num(&summary["flops_per_step_all_ops"], "macs") > 0.0);
}

#[test]
fn augment_learns_and_eval_agrees() {
    let _t = common::Timer::start("imagefolder::augment_learns_and_eval_agrees");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_image_folder(&data, &CLASSES, 16, 6);
    let line = "augment --name a --dataset imagefolder --genotype darts-v2 --input-size 16 --layers 3 \
                --init-channels 4 --batch-size 12 --epochs 4 --aux-weight 0 --cutout-length 4 --lr 0.1 \
                --drop-path-prob 0 --seed 4";
    ok(&run(args(line, &data, tmp.path())));
    let dir = tmp.path().join("a");
    let (first, last) = (epoch_mean(&dir, 1, "loss"), epoch_mean(&dir, 3, "loss"));
    eprintln!("augment on an image folder: mean loss epoch 1 {first:.3}, epoch 3 {last:.3}");
    assert!(last < first - 0.1, "the loss did not fall: {first} -> {last}");
    let cfg = read_json(&dir.join("config.json"));
    assert_eq!((cfg["network"].as_str(), cfg["recipe"].as_str()), (Some("cifar"), Some("cifar")));
    assert_eq!(cfg["image_folder"]["val_resize"], 18, "16 * 256 / 224, rounded");

    // summary.json: the accuracy and the network's operation counts, as `info` gives them
    let summary = read_json(&dir.join("summary.json"));
    let best = num(&summary, "best_top1");
    let info = ok(&run([
        "info",
        "--genotype",
        "darts-v2",
        "--input-size",
        "16",
        "--layers",
        "3",
        "--init-channels",
        "4",
        "--classes",
        "3",
        "--json",
    ]));
    let info: Value = serde_json::from_str(info.trim()).unwrap();
    for k in ["macs", "elementwise"] {
        assert_eq!(summary["flops"]["network"][k], info[k], "{k}");
    }
    assert_eq!(summary["input_shape"], json!([3, 16, 16]));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("multiply-adds"), "report.md lacks the operation counts:\n{report}");

    // eval of the best checkpoint reproduces the best epoch's validation accuracy
    let line = "eval --dataset imagefolder --json";
    let out = ok(&run(common::cli(line, &[("--data-dir", &data), ("--checkpoint", &dir.join("best.ckpt"))])));
    let e: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(e["samples"], 18);
    assert!((num(&e, "top1") - best).abs() < 1e-9, "eval {} vs the run's best {best}", e["top1"]);
    eprintln!("augment on an image folder: best validation top-1 {best}");
}

/// `--recipe imagenet` with a few overrides: DARTS' ImageNet network at 224x224, the step
/// schedule, label smoothing, the ImageNet preprocessing; the flags given win.
#[test]
fn the_imagenet_recipe_runs_at_224() {
    let _t = common::Timer::start("imagefolder::the_imagenet_recipe_runs_at_224");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_image_folder(&data, &CLASSES, 4, 2);
    let line = "augment --name i --dataset imagefolder --recipe imagenet --genotype darts-v2 --layers 3 \
                --init-channels 8 --epochs 2 --batch-size 6";
    ok(&run(args(line, &data, tmp.path())));
    let dir = tmp.path().join("i");
    let cfg = read_json(&dir.join("config.json"));
    let expect = [
        ("recipe", json!("imagenet")),
        ("network", json!("imagenet")),
        ("layers", json!(3)),
        ("init_channels", json!(8)),
        ("epochs", json!(2)),
        ("batch_size", json!(6)),
        ("lr", json!(0.1)),
        ("weight_decay", json!(3e-5)),
        ("grad_clip", json!(5.0)),
        ("label_smoothing", json!(0.1)),
        ("drop_path_prob", json!(0.0)),
        ("cutout_length", json!(0)),
        ("lr_schedule", json!({"kind": "step", "gamma": 0.97, "step_size": 1})),
    ];
    for (k, v) in expect {
        assert_eq!(cfg[k], v, "config.json {k}");
    }
    let t = &cfg["image_folder"];
    assert_eq!((&t["input_size"], &t["val_resize"]), (&json!(224), &json!(256)));
    assert_eq!(t["color_jitter"], json!({"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.2}));
    let epochs = metrics(&dir, "epoch");
    assert_eq!(epochs.len(), 2);
    for (e, line) in epochs.iter().enumerate() {
        let lr = 0.1 * 0.97f64.powi(e as i32 + 1);
        assert!((num(line, "lr") - lr).abs() < 1e-12, "epoch {e}: lr {}", line["lr"]);
    }
    let summary = read_json(&dir.join("summary.json"));
    assert_eq!(summary["input_shape"], json!([3, 224, 224]));
    let info = ok(&run([
        "info",
        "--genotype",
        "darts-v2",
        "--network",
        "imagenet",
        "--layers",
        "3",
        "--init-channels",
        "8",
        "--classes",
        "3",
        "--json",
    ]));
    let info: Value = serde_json::from_str(info.trim()).unwrap();
    assert_eq!(summary["flops"]["network"]["macs"], info["macs"]);
    assert_eq!(summary["flops"]["aux_head"]["macs"], info["aux_macs"]);
    assert_eq!(summary["params_without_aux"], info["params_without_aux"]);
    // the label-smoothed loss at the start: about ln 3 for 3 classes, plus 0.4 of it for the head
    let first = num(&metrics(&dir, "step")[0], "loss");
    assert!((first - 1.4 * 3f64.ln()).abs() < 0.5, "first loss {first}");
}

#[test]
fn bad_image_folders_are_clear_errors() {
    let _t = common::Timer::start("imagefolder::bad_image_folders_are_clear_errors");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_image_folder(&data, &CLASSES, 4, 2);
    let augment = |name: &str, extra: &str| {
        let line = format!(
            "augment --name {name} --dataset imagefolder --genotype darts-v2 --layers 3 --init-channels 4 \
             --batch-size 6 --epochs 1 --aux-weight 0 {extra}"
        );
        run(args(&line, &data, tmp.path()))
    };
    // a class without a folder in val/
    std::fs::rename(data.join("val/ring"), data.join("val/rings")).unwrap();
    user_error(&augment("e", "--input-size 16"), &["val", "missing ring", "not in train/: rings"]);
    std::fs::rename(data.join("val/rings"), data.join("val/ring")).unwrap();
    // an empty class folder
    std::fs::create_dir_all(data.join("train/empty")).unwrap();
    std::fs::write(data.join("train/empty/readme.txt"), "no images here").unwrap();
    user_error(&augment("e", "--input-size 16"), &["train/empty", "no usable", "1 without an image extension"]);
    std::fs::remove_dir_all(data.join("train/empty")).unwrap();
    // no val/ folder
    std::fs::rename(data.join("val"), data.join("validation")).unwrap();
    user_error(&augment("e", "--input-size 16"), &["no val/ or test/ folder", "DIR/val/CLASS"]);
    std::fs::rename(data.join("validation"), data.join("val")).unwrap();
    // flags that do not fit the data set
    user_error(
        &run(["augment", "--name", "x", "--dataset", "cifar10", "--genotype", "darts-v2", "--recipe", "imagenet"]),
        &["--dataset imagefolder"],
    );
    user_error(
        &run(["search", "--name", "x", "--dataset", "mnist", "--input-size", "64"]),
        &["--input-size", "imagefolder only"],
    );
    user_error(&augment("e", "--input-size 30"), &["multiple of 4"]);
    user_error(&augment("e", "--input-size 16 --network imagenet"), &["ImageNet network", "multiple of 32"]);

    // empty and undecodable files are skipped, counted and reported; the run goes on
    std::fs::write(data.join("train/circle/zero.jpg"), b"").unwrap();
    std::fs::write(data.join("train/ring/noise.png"), [7u8; 300]).unwrap();
    let out = augment("skips", "--input-size 16");
    ok(&out);
    let log = std::fs::read_to_string(tmp.path().join("skips/skips.log")).unwrap();
    assert!(log.contains("skipped 2 file(s)") && log.contains("zero.jpg: empty file"), "{log}");
    assert!(log.contains("noise.png: not"), "{log}");

    // an image whose data breaks off after a good header stops the run, naming the file
    let victim = data.join("train/square/more/000.png");
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() / 2]).unwrap();
    user_error(&augment("broken", "--input-size 16"), &["000.png", "cannot decode", "--resume"]);
}
