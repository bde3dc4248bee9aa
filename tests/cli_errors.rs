//! Bad inputs are user errors: exit code 2, a message that says what is wrong and what to do,
//! never a panic.

mod common;

use common::{cli, ok, run, user_error};
use std::path::{Path, PathBuf};

/// A tiny search (a few steps of a 2-cell supernet) on MNIST in `data`, writing `out/name`.
fn tiny_search(data: &Path, out: &Path, name: &str, extra: &str) -> Vec<String> {
    let line = format!(
        "search --name {name} --dataset mnist --no-download --layers 2 --init-channels 4 --batch-size 8 \
         --max-train-samples 32 --epochs 1 {extra}"
    );
    cli(&line, &[("--data-dir", data), ("--out-dir", out)])
}

/// A tiny augment run on MNIST in `data`, writing `out/name`.
fn tiny_augment(data: &Path, out: &Path, name: &str) -> Vec<String> {
    let line = format!(
        "augment --name {name} --dataset mnist --no-download --genotype darts-v2 --layers 3 --init-channels 4 \
         --epochs 1 --batch-size 16 --max-train-samples 32 --max-test-samples 16"
    );
    cli(&line, &[("--data-dir", data), ("--out-dir", out)])
}

fn eval(ckpt: &Path, dataset: &str, data: &Path) -> std::process::Output {
    let line = format!("eval --dataset {dataset} --no-download --max-test-samples 64");
    run(cli(&line, &[("--checkpoint", ckpt), ("--data-dir", data)]))
}

#[test]
fn missing_data_folder_names_the_files_and_the_readme() {
    let _t = common::Timer::start("cli_errors::missing_data_folder");
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-data");
    let expected = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "datasets/README.md", "no-such-data"];
    let err = user_error(&run(tiny_search(&missing, tmp.path(), "s", "")), &expected);
    assert!(err.to_lowercase().contains("not found"), "{err}");
    // the same for augment, on CIFAR-10
    let line = "augment --name a --dataset cifar10 --genotype darts-v2 --no-download";
    let err =
        user_error(&run(cli(line, &[("--data-dir", &missing), ("--out-dir", tmp.path())])), &["data_batch_1.bin"]);
    assert!(err.contains("datasets/README.md"), "{err}");
}

#[test]
fn unknown_dataset_name() {
    let _t = common::Timer::start("cli_errors::unknown_dataset_name");
    let tmp = tempfile::tempdir().unwrap();
    let a: Vec<String> =
        tiny_search(tmp.path(), tmp.path(), "s", "").into_iter().map(|s| s.replace("mnist", "imagenet")).collect();
    user_error(&run(&a), &["imagenet", "cifar10", "cifar100", "mnist", "fashion-mnist"]);
}

#[test]
fn truncated_mnist_file() {
    let _t = common::Timer::start("cli_errors::truncated_mnist_file");
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    for f in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    {
        std::fs::copy(mnist.join(format!("{f}.gz")), data.join(format!("{f}.gz"))).unwrap();
    }
    // a gzip file cut in half
    let images = data.join("train-images-idx3-ubyte.gz");
    let len = std::fs::metadata(&images).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&images).unwrap().set_len(len / 2).unwrap();
    let err = user_error(&run(tiny_search(&data, tmp.path(), "s", "")), &["train-images-idx3-ubyte.gz"]);
    let lower = err.to_lowercase();
    assert!(lower.contains("truncated") || lower.contains("corrupt"), "{err}");

    // an uncompressed label file that announces 10000 labels but holds 3 (read by augment's test split)
    std::fs::copy(mnist.join("train-images-idx3-ubyte.gz"), &images).unwrap();
    std::fs::remove_file(data.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    std::fs::write(data.join("t10k-labels-idx1-ubyte"), [0u8, 0, 8, 1, 0, 0, 39, 16, 7, 2, 1]).unwrap();
    user_error(&run(tiny_augment(&data, tmp.path(), "a")), &["t10k-labels-idx1-ubyte"]);
}

#[test]
fn resume_and_rerun_are_checked_against_the_checkpoint() {
    let _t = common::Timer::start("cli_errors::resume_and_rerun");
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    // --resume without a checkpoint
    let err = user_error(&run(tiny_search(&mnist, tmp.path(), "fresh", "--resume")), &["--resume", "no checkpoint"]);
    assert!(err.contains("fresh"), "{err}");
    // a run that leaves a checkpoint, then a second run into the same folder without --resume
    ok(&run(tiny_search(&mnist, tmp.path(), "s", "--max-steps 1")));
    assert!(tmp.path().join("s/checkpoint.ckpt").is_file());
    user_error(&run(tiny_search(&mnist, tmp.path(), "s", "")), &["already holds a run", "--resume"]);
    // the refused run left the first run's files alone
    assert_eq!(common::metrics(&tmp.path().join("s"), "step").len(), 1);
    // the same for augment
    ok(&run(tiny_augment(&mnist, tmp.path(), "a")));
    user_error(&run(tiny_augment(&mnist, tmp.path(), "a")), &["already holds a run"]);
}

#[test]
fn eval_rejects_what_is_not_a_matching_augment_checkpoint() {
    let _t = common::Timer::start("cli_errors::eval_rejects_what_is_not_a_matching_augment_checkpoint");
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    // not a checkpoint at all; a missing file
    let junk = tmp.path().join("junk.ckpt");
    std::fs::write(&junk, b"hello, this is not a checkpoint").unwrap();
    user_error(&eval(&junk, "mnist", &mnist), &["junk.ckpt", "not a dropnas checkpoint"]);
    user_error(&eval(&tmp.path().join("nope.ckpt"), "mnist", &mnist), &["nope.ckpt"]);
    // a search checkpoint
    ok(&run(tiny_search(&mnist, tmp.path(), "s", "--max-steps 1")));
    user_error(&eval(&tmp.path().join("s/checkpoint.ckpt"), "mnist", &mnist), &["not an augment checkpoint", "search"]);
    // an augment checkpoint with one flipped byte in its data: the CRC catches it
    ok(&run(tiny_augment(&mnist, tmp.path(), "a")));
    let last: PathBuf = tmp.path().join("a/checkpoint.ckpt"); // best.ckpt needs an epoch above 0%
    let mut bytes = std::fs::read(&last).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    let damaged = tmp.path().join("damaged.ckpt");
    std::fs::write(&damaged, &bytes).unwrap();
    user_error(&eval(&damaged, "mnist", &mnist), &["damaged.ckpt"]);
    // a network trained on MNIST (10 classes, 1 channel) tested on CIFAR-100
    let cifar100 = require_data!("cifar-100-sample");
    user_error(&eval(&last, "cifar100", &cifar100), &["10 classes", "100 classes", "checkpoint.ckpt"]);
    // ... and on its own data set it works
    ok(&eval(&last, "mnist", &mnist));
}

#[test]
fn unknown_device() {
    let _t = common::Timer::start("cli_errors::unknown_device");
    let tmp = tempfile::tempdir().unwrap();
    let err = user_error(&run(tiny_search(tmp.path(), tmp.path(), "s", "--device tpu")), &["tpu", "cpu", "cuda"]);
    assert!(err.contains("compiled in"), "{err}");
    user_error(&run(["bench", "search", "--device", "tpu"]), &["unknown device"]);
    user_error(&run(tiny_search(tmp.path(), tmp.path(), "s", "--device cuda:x")), &["device index"]);
}
