//! The run engine through the binary: a run folder held by one process, names that stay inside
//! --out-dir, a resume that takes the configuration from the folder and checks the data and the
//! checkpoint, SIGINT/SIGTERM, and the settings refused before anything runs.

mod common;

use common::{cli, dropnas, ok, read_json, run, user_error};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A tiny search on MNIST (2 cells, 4 channels), writing `out/name`.
fn search(data: &Path, out: &Path, name: &str, extra: &str) -> Vec<String> {
    let line = format!(
        "search --name {name} --dataset mnist --no-download --layers 2 --init-channels 4 --batch-size 8 \
         --max-train-samples 64 --epochs 2 --seed 7 {extra}"
    );
    cli(&line, &[("--data-dir", data), ("--out-dir", out)])
}

/// `dropnas ARGS` in the background.
fn spawn(args: &[String]) -> Child {
    dropnas().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn dropnas")
}

/// Waits until `cond` holds (panics after `secs`).
fn wait_until(secs: u64, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn step_lines(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("metrics.jsonl")).map(|t| t.matches("\"kind\":\"step\"").count()).unwrap_or(0)
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a child we own
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn a_run_folder_is_held_by_one_process_at_a_time() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let mut first = spawn(&search(&mnist, tmp.path(), "s", "--max-train-samples 4000 --epochs 1"));
    wait_until(120, "the first step", || step_lines(&dir) > 0);
    // a second run, or a resume, of the same folder: refused, naming the holder
    let err = user_error(&run(search(&mnist, tmp.path(), "s", "")), &["in use by another dropnas process"]);
    assert!(err.contains(&format!("PID {}", first.id())), "{err}");
    user_error(&run(search(&mnist, tmp.path(), "s", "--resume")), &["in use"]);
    // a lock left by a killed process does not block (it had no checkpoint: a new run starts)
    first.kill().unwrap();
    first.wait().unwrap();
    ok(&run(search(&mnist, tmp.path(), "s", "")));
}

#[test]
fn run_names_are_one_folder_inside_out_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    for name in ["..", ".", "../x", "a/b", "/abs"] {
        let mut a = search(tmp.path(), &out, "placeholder", "");
        a[2] = name.to_string();
        user_error(&run(&a), &["invalid run name", "--out-dir"]);
    }
    let mut a = search(tmp.path(), &out, "placeholder", "");
    a[2] = String::new();
    user_error(&run(&a), &["empty"]);
    // nothing was written anywhere
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn resume_takes_the_configuration_from_the_folder_and_refuses_what_differs() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    ok(&run(search(&mnist, tmp.path(), "r", "--max-steps 3")));
    // flags that change the run are refused, each named with both values
    let mut a = search(&mnist, tmp.path(), "r", "--resume --w-lr 0.1");
    let at = a.iter().position(|x| x == "--layers").unwrap();
    a[at + 1] = "3".into();
    let err = user_error(&run(&a), &["--layers 3 (the run has 2)", "--w-lr 0.1 (the run has 0.0375)"]);
    assert!(err.contains("--data-dir"), "names what may change: {err}");
    let fashion: Vec<String> =
        search(&mnist, tmp.path(), "r", "--resume").into_iter().map(|x| x.replace("mnist", "fashion-mnist")).collect();
    user_error(&run(&fashion), &["--dataset fashion-mnist (the run has mnist)"]);
    assert_eq!(step_lines(&dir), 3, "refused resumes wrote nothing");
    // run control may change; without --dataset and the other flags, the folder's are used
    let name = dir.file_name().unwrap().to_str().unwrap();
    let mut a = cli(&format!("search --name {name} --resume --workers 2 --print-freq 1 --max-steps 5"), &[]);
    a.extend(["--data-dir".into(), mnist.display().to_string(), "--out-dir".into(), tmp.path().display().to_string()]);
    ok(&run(&a));
    assert_eq!(step_lines(&dir), 5);
    assert_eq!(read_json(&dir.join("config.json"))["layers"], 2);

    // other data under the same names: refused, naming the file
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    for f in ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(mnist.join(f), other.join(f)).unwrap();
    }
    // the same labels, one changed
    let labels = std::fs::read(mnist.join("train-labels-idx1-ubyte.gz")).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&labels[..]), &mut raw).unwrap();
    raw[8] = (raw[8] + 1) % 10;
    std::fs::write(other.join("train-labels-idx1-ubyte"), raw).unwrap();
    let mut a = cli(&format!("search --name {name} --resume"), &[("--data-dir", &other), ("--out-dir", tmp.path())]);
    a.push("--no-download".into());
    user_error(&run(&a), &["data differs", "train-labels-idx1-ubyte", "--data-dir"]);
}

#[test]
fn a_checkpoint_must_belong_to_its_folder_and_be_whole() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    ok(&run(search(&mnist, tmp.path(), "a", "--max-steps 2")));
    ok(&run(search(&mnist, tmp.path(), "b", "--max-steps 2")));
    let (a, b) = (tmp.path().join("a/checkpoint.ckpt"), tmp.path().join("b/checkpoint.ckpt"));
    let own = std::fs::read(&a).unwrap();
    // b's checkpoint (same configuration, another run) dropped into a's folder
    std::fs::copy(&b, &a).unwrap();
    user_error(&run(search(&mnist, tmp.path(), "a", "--resume")), &["does not belong to the run"]);
    // one digit of the header's step edited: the header is under the CRC
    let at = own.windows(8).position(|w| w == b"\"step\":2").expect("step in the header") + 7;
    let mut edited = own.clone();
    edited[at] = b'3';
    std::fs::write(&a, &edited).unwrap();
    user_error(&run(search(&mnist, tmp.path(), "a", "--resume")), &["header fails its checksum"]);
    std::fs::write(&a, &own).unwrap();
    ok(&run(search(&mnist, tmp.path(), "a", "--resume --max-steps 3")));
}

#[test]
fn sigint_and_sigterm_stop_after_the_step_with_a_checkpoint() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    for (name, sig, code) in [("int", libc::SIGINT, 130), ("term", libc::SIGTERM, 143)] {
        let dir = tmp.path().join(name);
        // one long epoch: without the signal handling nothing would be kept (--print-freq 1: the
        // steps' lines are written at log points, here every step)
        let child = spawn(&search(&mnist, tmp.path(), name, "--max-train-samples 4000 --epochs 1 --print-freq 1"));
        wait_until(120, "two steps", || step_lines(&dir) >= 2);
        signal(&child, sig);
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{name}: {err}");
        assert!(err.contains("checkpoint written") && err.contains("--resume"), "{name}: {err}");
        let head = common::checkpoint_head(&dir.join("checkpoint.ckpt")).expect("a checkpoint");
        let done = head["header"]["global_step"].as_u64().unwrap() as usize;
        assert_eq!(done, step_lines(&dir), "{name}: the checkpoint holds every step written");
        assert!(done >= 2);
    }
    // a second signal exits at once, without waiting for the step (the last checkpoint stays)
    // (steps of about half a second; two signals sent at once would merge into one)
    let dir = tmp.path().join("twice");
    let slow = "--max-train-samples 4000 --epochs 1 --layers 5 --init-channels 16 --batch-size 64 --print-freq 1";
    let child = spawn(&search(&mnist, tmp.path(), "twice", slow));
    wait_until(120, "a step", || step_lines(&dir) >= 1);
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(50));
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(!err.contains("checkpoint written"), "the second signal did not wait: {err}");
    // the interrupted run continues from there to the end
    let a = search(&mnist, tmp.path(), "int", "--max-train-samples 4000 --epochs 1 --resume --max-steps 12");
    ok(&run(&a));
    assert_eq!(step_lines(&tmp.path().join("int")), 12);
}

#[test]
fn settings_that_would_waste_a_run_are_refused_before_it_starts() {
    let tmp = tempfile::tempdir().unwrap();
    for (flag, value, says) in [
        ("--w-grad-clip", "-1", "above 0"),
        ("--w-grad-clip", "0", "above 0"),
        ("--w-lr", "nan", "finite"),
        ("--w-momentum", "1.5", "[0, 1)"),
        ("--w-weight-decay", "inf", "finite"),
        ("--max-train-samples", "0", "at least 1"),
        ("--init-channels", "3", "even"),
        ("--drop-rate", "1", "[0, 1)"),
    ] {
        let a = search(tmp.path(), tmp.path(), "s", &format!("{flag} {value}"));
        user_error(&run(&a), &[flag, says]);
    }
    for (flag, value, says) in [
        ("--grad-clip", "-1", "above 0"),
        ("--aux-weight", "nan", "finite"),
        ("--momentum", "inf", "[0, 1)"),
        ("--max-test-samples", "0", "at least 1"),
    ] {
        let a = cli(
            &format!("augment --name a --dataset mnist --genotype darts-v2 {flag} {value}"),
            &[("--data-dir", tmp.path()), ("--out-dir", tmp.path())],
        );
        user_error(&run(&a), &[flag, says]);
    }
    // text inputs are size-limited
    let t = Instant::now();
    let a = cli("augment --name a --dataset mnist --genotype @/dev/zero", &[("--out-dir", tmp.path())]);
    user_error(&run(&a), &["/dev/zero", "not a genotype file"]);
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0, "nothing was written");
}

#[test]
fn a_run_that_cannot_fit_in_memory_is_refused_before_it_allocates() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let err = user_error(&run(search(&mnist, tmp.path(), "big", "--init-channels 100000")), &["MiB", "--force"]);
    assert!(err.contains("--init-channels"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(60), "refused at once");
    assert!(!tmp.path().join("big").exists(), "no folder is left behind by a run that never started");
}

#[test]
fn mnist_files_are_not_taken_for_fashion_mnist() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let a: Vec<String> = search(&mnist, tmp.path(), "f", "")
        .into_iter()
        .map(|x| if x == "mnist" { "fashion-mnist".into() } else { x })
        .collect();
    user_error(&run(&a), &["is MNIST's train-images-idx3-ubyte", "not Fashion-MNIST's", "--data-dir"]);
}

#[test]
fn best_ckpt_exists_after_the_first_epoch_and_a_finished_run_says_so() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let a = cli(
        "augment --name a --dataset mnist --no-download --genotype darts-v2 --layers 3 --init-channels 4 \
         --epochs 1 --batch-size 8 --max-train-samples 8 --max-test-samples 1 --seed 1",
        &[("--data-dir", &mnist), ("--out-dir", tmp.path())],
    );
    ok(&run(&a));
    let dir = tmp.path().join("a");
    let epoch = &common::metrics(&dir, "epoch")[0];
    // at this seed the one test image is misclassified: the case where best.ckpt used to be missing
    assert_eq!(epoch["val_top1"], 0.0);
    let best = dir.join("best.ckpt");
    assert!(best.is_file(), "best.ckpt after the first epoch (top-1 {})", epoch["val_top1"]);
    let line = "eval --no-download --max-test-samples 1 --json";
    ok(&run(cli(line, &[("--checkpoint", &best), ("--data-dir", &mnist)])));
    let mut again = a.clone();
    again.push("--resume".into());
    let out = ok(&run(&again));
    assert!(out.contains("finished already"), "{out}");
}

/// Retraining whose loss blows up (a huge learning rate, no effective clipping) stops with a
/// non-zero exit naming the step and the last good checkpoint, which stays loadable: `eval`
/// reads it.
#[test]
fn an_augment_loss_that_becomes_nan_stops_the_run_and_keeps_the_last_checkpoint() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let line = "augment --name nan --dataset mnist --no-download --genotype darts-v2 --layers 3 --init-channels 4 \
                --batch-size 16 --max-train-samples 320 --max-test-samples 32 --epochs 4 --seed 2 --lr 1 \
                --grad-clip 1e30 --weight-decay 100 --checkpoint-every 1";
    let out = run(cli(line, &[("--data-dir", &mnist), ("--out-dir", tmp.path())]));
    let err = common::stderr(&out);
    assert_eq!(out.status.code(), Some(1), "a blown-up loss is a failed run, not a user error:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    for needle in ["the loss became", "last good checkpoint", "Try a lower --lr", "--resume"] {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
    let dir = tmp.path().join("nan");
    let head = common::checkpoint_head(&dir.join("checkpoint.ckpt")).expect("the last good checkpoint is readable");
    let failed_at = common::metrics(&dir, "step").len();
    assert_eq!(head["header"]["global_step"].as_u64(), Some(failed_at as u64), "checkpointed after the last good step");
    let line = "eval --dataset mnist --no-download --json --max-test-samples 16";
    ok(&run(cli(line, &[("--data-dir", &mnist), ("--checkpoint", &dir.join("checkpoint.ckpt"))])));
}

/// `--warmup-epochs 1`: the first epoch drops no op (the logged rates and frequencies are 0), the
/// second drops at the configured rate, and the log says which epoch warms up.
#[test]
fn warm_up_epochs_drop_nothing_then_drop_at_the_rate() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    ok(&run(search(&mnist, tmp.path(), "w", "--warmup-epochs 1 --drop-rate 0.01")));
    let dir = tmp.path().join("w");
    let epochs = common::metrics(&dir, "epoch");
    assert_eq!(epochs.len(), 2);
    for k in ["drop_rate_param", "drop_rate_nonparam", "drop_freq_param", "drop_freq_nonparam"] {
        assert_eq!(epochs[0][k], 0.0, "warm-up epoch: {k} = {}", epochs[0][k]);
    }
    // 0.01^(1/4) = 0.32 per op: 8 steps x 2 cell types x 14 edges x 4 ops drawn per group
    for k in ["drop_freq_param", "drop_freq_nonparam"] {
        let f = common::num(&epochs[1], k);
        assert!((0.2..0.4).contains(&f), "epoch 2: {k} = {f}");
    }
    let log = std::fs::read_to_string(dir.join("w.log")).unwrap();
    assert!(log.contains("warm-up"), "the log names the warm-up epoch:\n{log}");
}
