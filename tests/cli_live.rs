//! What a researcher sees while a run goes, through the binary: the TensorBoard event file
//! growing from the first step (append-only), plain lines with rates and ETAs when the output
//! is not a terminal and no escape codes, named loss terms, warnings that save a wasted run,
//! and the messages and defaults around a run.

mod common;

use common::{cli, metrics, num, ok, read_json, run, user_error};
use dropnas_train::run::tensorboard::{EVENTS_FILE, decode_records};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn search(data: &Path, out: &Path, name: &str, extra: &str) -> Vec<String> {
    let line = format!(
        "search --name {name} --dataset mnist --no-download --layers 2 --init-channels 4 --batch-size 8 \
         --max-train-samples 64 --epochs 2 --seed 7 {extra}"
    );
    cli(&line, &[("--data-dir", data), ("--out-dir", out)])
}

fn augment(data: &Path, out: &Path, name: &str, extra: &str) -> Vec<String> {
    let line = format!(
        "augment --name {name} --dataset mnist --no-download --genotype darts-v2 --layers 3 --init-channels 4 \
         --batch-size 16 --max-train-samples 64 --max-test-samples 32 --epochs 3 --seed 7 {extra}"
    );
    cli(&line, &[("--data-dir", data), ("--out-dir", out)])
}

#[test]
fn the_event_file_grows_by_appending_from_the_first_step() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tb");
    let args = search(&mnist, tmp.path(), "tb", "--max-train-samples 400 --print-freq 5");
    let mut child = common::dropnas().args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // one events file per run, in the run folder itself: TensorBoard names the run after it
    let file = dir.join(EVENTS_FILE);
    let mut snapshots: Vec<Vec<u8>> = Vec::new();
    let mut before_first_epoch = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the run did not finish");
        if let Ok(bytes) = std::fs::read(&file)
            && snapshots.last().is_none_or(|last| bytes.len() > last.len())
        {
            if !dir.join("metrics.jsonl").is_file() || metrics(&dir, "epoch").is_empty() {
                before_first_epoch += 1;
            }
            snapshots.push(bytes);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(child.wait().unwrap().success());
    let end = std::fs::read(&file).unwrap();
    // it grew while the run went, earlier bytes never changed, and whole records were flushed
    assert!(snapshots.len() >= 4, "only {} sizes seen", snapshots.len());
    assert!(before_first_epoch >= 2, "points appeared before the first epoch ended ({before_first_epoch})");
    for s in &snapshots {
        assert!(end.starts_with(s), "bytes written earlier changed");
        decode_records(s).expect("every flushed state of the file is whole records");
    }
    // every step's loss, at its global step
    let events = decode_records(&end).unwrap();
    let losses: Vec<(i64, f32)> = events
        .iter()
        .flat_map(|e| e.scalars.iter().filter(|(t, _)| t == "train/loss").map(move |(_, v)| (e.step, *v)))
        .collect();
    let steps = metrics(&dir, "step");
    assert_eq!(losses.len(), steps.len());
    for (s, (g, v)) in steps.iter().zip(&losses) {
        assert_eq!(*g as f64, num(s, "global_step"));
        // (serde_json's float parsing may be one ulp off the written value)
        let want = num(s, "loss") as f32;
        assert!((v - want).abs() <= f32::EPSILON * want.abs(), "{v} vs {want}");
    }
    let tags: std::collections::BTreeSet<&str> =
        events.iter().flat_map(|e| e.scalars.iter().map(|(t, _)| t.as_str())).collect();
    for t in ["train/ce", "train/reg", "train/lr", "train/top1"] {
        assert!(tags.contains(t), "no {t} in {tags:?}");
    }
}

#[test]
fn piped_output_is_plain_lines_with_rates_and_both_etas() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    let out =
        common::dropnas().args(search(&mnist, tmp.path(), "p", "--print-freq 3")).env("RUST_LOG", "info").output();
    let out = out.unwrap();
    ok(&out);
    let err = common::stderr(&out);
    assert!(!err.contains('\u{1b}'), "escape codes in piped output:\n{err}");
    // 8 steps per epoch, a line at steps 0, 3, 6 and the last: 4 per epoch
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("Train: [") && l.contains(" Step ")).collect();
    assert_eq!(lines.len(), 8, "{err}");
    for l in &lines {
        for want in ["Loss", "ce ", "reg ", "img/s", "ETA epoch", ", run "] {
            assert!(l.contains(want), "{want:?} missing from {l:?}");
        }
    }
    // the log file keeps the original's line, without the extras
    let log = std::fs::read_to_string(tmp.path().join("p/p.log")).unwrap();
    let logged: Vec<&str> = log.lines().filter(|l| l.contains(" Step ")).collect();
    assert_eq!(logged.len(), 8);
    assert!(logged.iter().all(|l| !l.contains("img/s") && l.contains("Loss")), "{log}");
}

#[test]
fn colours_only_on_a_terminal_and_never_with_no_color() {
    let mnist = require_data!("mnist");
    if std::process::Command::new("script").arg("--version").output().is_err() {
        assert!(!common::in_ci(), "`script` (util-linux) is needed to give the run a terminal");
        eprintln!("SKIPPED: no `script` to run under a terminal");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let with_tty = |name: &str, no_color: bool| -> String {
        let args = search(&mnist, tmp.path(), name, "--max-steps 2");
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        let line = format!("{} {}", env!("CARGO_BIN_EXE_dropnas"), quoted.join(" "));
        let mut c = std::process::Command::new("script");
        c.args(["-qec", &line, "/dev/null"]).env("RUST_LOG", "info");
        if no_color {
            c.env("NO_COLOR", "1");
        } else {
            c.env_remove("NO_COLOR");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    // SGR colour codes: `ESC [ ... m`
    let coloured = |s: &str| s.contains("\u{1b}[2m") || s.contains("\u{1b}[32m");
    assert!(coloured(&with_tty("c", false)), "a terminal gets colours");
    assert!(!coloured(&with_tty("n", true)), "NO_COLOR is honoured");
}

#[test]
fn loss_terms_are_named_in_lines_plots_and_report() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    ok(&run(search(&mnist, tmp.path(), "s", "")));
    let dir = tmp.path().join("s");
    for e in metrics(&dir, "epoch") {
        let steps: Vec<_> = metrics(&dir, "step").into_iter().filter(|s| s["epoch"] == e["epoch"]).collect();
        let mean = common::mean(steps.iter().map(|s| num(s, "loss_1")));
        assert!((num(&e, "loss_1") - mean).abs() < 1e-9, "the epoch's loss_1 is the mean of its steps'");
        assert!(e["loss_2"].is_number());
    }
    let curves = std::fs::read_to_string(dir.join("plots/curves.svg")).unwrap();
    assert!(curves.contains("train ce") && curves.contains("regularisation (loss_2)"), "curves labels");
    assert!(curves.contains("cross entropy"));
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("| train loss terms | ce ") && report.contains(", reg "), "{report}");

    ok(&run(augment(&mnist, tmp.path(), "a", "")));
    let dir = tmp.path().join("a");
    let e = &metrics(&dir, "epoch")[0];
    assert!(e["ce"].is_number() && e["ce_aux"].is_number(), "{e}");
    let curves = std::fs::read_to_string(dir.join("plots/curves.svg")).unwrap();
    for want in ["train ce", "auxiliary head ce", "test ce"] {
        assert!(curves.contains(want), "curves lack {want:?}");
    }
    // the genotype as text, in config.json and report.md; the model size labelled in the log
    let cfg = read_json(&dir.join("config.json"));
    assert!(cfg["genotype"].as_str().is_some_and(|g| g.starts_with("Genotype(")), "{}", cfg["genotype"]);
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("\"genotype\": \"Genotype(") && !report.contains("SepConv3x3"), "{report}");
    let log = std::fs::read_to_string(dir.join("a.log")).unwrap();
    assert!(log.contains("parameters without the auxiliary head; MB = parameters / 2^20"), "{log}");
}

#[test]
fn settings_that_silently_waste_a_run_are_warned_about_at_the_start() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    for (epochs, says) in [(1, "nothing is learned"), (2, "only one epoch trains")] {
        let name = format!("e{epochs}");
        let o = run(augment(&mnist, tmp.path(), &name, &format!("--epochs {epochs} --max-steps 1")));
        let err = common::stderr(&ok_out(o));
        assert!(err.contains("WARN") && err.contains(says), "--epochs {epochs}:\n{err}");
        let log = std::fs::read_to_string(tmp.path().join(&name).join(format!("{name}.log"))).unwrap();
        assert!(log.contains("WARNING: --epochs"), "{log}");
    }
    let o = run(augment(&mnist, tmp.path(), "e3", "--max-steps 1"));
    assert!(!common::stderr(&ok_out(o)).contains("WARN"));
    let o = run(search(&mnist, tmp.path(), "w", "--warmup-epochs 2 --max-steps 1"));
    assert!(common::stderr(&ok_out(o)).contains("every epoch is a warm-up epoch"));
    let o = run(search(&mnist, tmp.path(), "b", "--batch-size 100 --max-steps 1"));
    assert!(common::stderr(&ok_out(o)).contains("larger than the training set (64 images)"));
}

fn ok_out(o: std::process::Output) -> std::process::Output {
    ok(&o);
    o
}

#[test]
fn missing_data_says_where_to_get_it_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    // `--dataset CIFAR10` (the original's spelling) is CIFAR-10, in datasets/cifar10
    let mut c = common::dropnas();
    c.current_dir(tmp.path()).args(["search", "--name", "q", "--dataset", "CIFAR10", "--no-download"]);
    let err = user_error(&c.output().unwrap(), &["data_batch_1.bin", "--data-dir", "--no-download"]);
    assert!(err.contains("datasets/cifar10") && !err.contains("datasets/CIFAR10"), "{err}");
    assert!(err.contains("https://github.com/dropnas/dropnas/blob/main/datasets/README.md"), "{err}");
    assert!(err.contains("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"), "{err}");
    assert!(!tmp.path().join("searchs/q").exists(), "a run that never started left its folder");
}

#[test]
fn eval_and_info_take_their_defaults_from_what_they_describe() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    ok(&run(augment(&mnist, tmp.path(), "a", "--epochs 1")));
    // eval knows the data set from the checkpoint
    let out = ok(&run(cli(
        "eval --no-download --max-test-samples 16 --json",
        &[("--checkpoint", &tmp.path().join("a/best.ckpt")), ("--data-dir", &mnist)],
    )));
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["samples"], 16);
    // info --search describes the search's default supernet (14 cells, 16 channels)
    let text = ok(&run(["info", "--search"]));
    assert!(text.contains("14 cells, 16 initial channels") && text.contains("3,239,674 parameters"), "{text}");
    assert!(text.contains("MB in the original's unit"), "{text}");
}

#[test]
fn every_search_reports_its_collapse_figures() {
    let mnist = require_data!("mnist");
    let tmp = tempfile::tempdir().unwrap();
    ok(&run(search(&mnist, tmp.path(), "c", "")));
    let dir = tmp.path().join("c");
    for e in metrics(&dir, "epoch") {
        for k in ["skip_connects_normal", "skip_connects_reduce", "param_free_normal", "alpha_entropy_normal"] {
            assert!(e[k].is_number(), "epoch line lacks {k}: {e}");
        }
        // near uniform after a few steps: the mean entropy is close to ln(8)
        let h = num(&e, "alpha_entropy_normal");
        assert!(h <= 8f64.ln() + 1e-9 && h > 0.9 * 8f64.ln(), "entropy {h}");
        // the skip count is the genotype's (derived the original's way)
        let g = e["genotype"].as_str().unwrap();
        let normal = &g[..g.find("normal_concat").unwrap()];
        assert_eq!(num(&e, "skip_connects_normal") as usize, normal.matches("skip_connect").count());
    }
    let alphas = common::read_jsonl(&dir.join("alphas.jsonl"));
    assert_eq!(alphas[0]["entropy_normal"].as_array().unwrap().len(), 14);
    let events = decode_records(&std::fs::read(dir.join(EVENTS_FILE)).unwrap()).unwrap();
    let tags: std::collections::BTreeSet<&str> =
        events.iter().flat_map(|e| e.scalars.iter().map(|(t, _)| t.as_str())).collect();
    assert!(tags.contains("search/skip_count") && tags.contains("search/alpha_entropy"), "{tags:?}");
    assert!(dir.join("plots/collapse.svg").is_file() && dir.join("plots/collapse.png").is_file());
    let report = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(report.contains("![collapse monitor](plots/collapse.svg)"));

    // --max-skip-connects 0: no skip-connect in the normal cell of the genotype
    ok(&run(search(&mnist, tmp.path(), "k", "--max-skip-connects 0")));
    let g = std::fs::read_to_string(tmp.path().join("k/genotype.txt")).unwrap();
    let normal = &g[..g.find("normal_concat").unwrap()];
    assert!(!normal.contains("skip_connect"), "{g}");
    assert!(metrics(&tmp.path().join("k"), "epoch")[0]["skip_connects_replaced"].is_number());
}
