//! `dropnas report` and `dropnas genotype plot` on the report crate's fixture run folders: the
//! summary, the files written, the comparison table, and bad input as user errors (exit code 2).

mod common;

use common::{ok, run, user_error};
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../dropnas-report/tests/fixtures")).to_path_buf()
}

/// A fresh copy of fixture run folder `name` in a temporary folder.
fn copy_fixture(name: &str, tag: &str) -> PathBuf {
    let dst = std::env::temp_dir().join(format!("dropnas-cli-report-{}-{tag}", std::process::id())).join(name);
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst).unwrap();
    for e in std::fs::read_dir(fixtures().join(name)).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
    dst
}

#[test]
fn report_summarises_a_run_and_writes_its_artifacts() {
    let dir = copy_fixture("aug-c10-s1", "report");
    let out = ok(&run([Path::new("report"), &dir]));
    for want in ["aug-c10-s1 (augment run)", "best 97.51% at epoch 2, last 97.49%", "1,234,567", "report.md"] {
        assert!(out.contains(want), "output lacks {want:?}:\n{out}");
    }
    for f in ["report.md", "plots/curves.svg", "plots/curves.png", "plots/cell_normal.svg", "plots/cell_reduce.png"] {
        assert!(dir.join(f).is_file(), "{f} not written");
    }
    assert!(dir.join("tb").read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("tfevents")));
    let json: serde_json::Value =
        serde_json::from_str(&ok(&run([Path::new("report"), &dir, Path::new("--json")]))).expect("one JSON object");
    assert_eq!(json["best_test_top1"], 0.9751);
    assert_eq!(json["kind"], "augment");
}

#[test]
fn report_compare_prints_the_table() {
    let f = fixtures();
    let mut args: Vec<PathBuf> = vec!["report".into(), "--compare".into()];
    args.extend(["aug-c10-s1", "aug-c10-s2", "aug-c10-s3", "aug-darts-s1"].iter().map(|n| f.join(n)));
    assert_eq!(
        ok(&run(&args)),
        "| Run group | Runs | Avg Acc (%) | Best Acc (%) |\n|---|---|---|---|\n\
         | aug-c10 | 3 | 97.36±0.16 | 97.51 |\n| aug-darts-s1 | 1 | 97.05 | 97.05 |\n"
    );
    args.push("--json".into());
    let json: serde_json::Value = serde_json::from_str(&ok(&run(&args))).expect("JSON");
    assert_eq!(json["groups"][0]["group"], "aug-c10");
    assert_eq!(json["groups"][0]["runs"], 3);
}

#[test]
fn genotype_plot_writes_both_cells() {
    let out_dir = std::env::temp_dir().join(format!("dropnas-cli-plot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = ok(&run([
        Path::new("genotype"),
        Path::new("plot"),
        Path::new("dropnas-cifar10"),
        Path::new("--out"),
        &out_dir,
    ]));
    for f in [
        "cell_normal.svg",
        "cell_normal.png",
        "cell_normal.dot",
        "cell_reduce.svg",
        "cell_reduce.png",
        "cell_reduce.dot",
    ] {
        assert!(out_dir.join(f).is_file(), "{f} not written");
        assert!(out.contains(f), "{out}");
    }
    let svg = std::fs::read_to_string(out_dir.join("cell_reduce.svg")).unwrap();
    assert_eq!(svg.matches("class=\"node\"").count(), 7);
    assert_eq!(svg.matches("data-op=").count(), 8);
}

#[test]
fn bad_input_is_a_user_error() {
    let missing = fixtures().join("no-such-run");
    user_error(&run([Path::new("report"), &missing]), &["no-such-run", "no such folder"]);
    user_error(&run([Path::new("report"), Path::new("--compare"), &fixtures().join("search-c10")]), &["search run"]);
    let dir = copy_fixture("aug-c10-s2", "bad");
    std::fs::write(dir.join("summary.json"), "{ not json").unwrap();
    user_error(&run([Path::new("report"), &dir]), &["summary.json"]);
    let out_dir = std::env::temp_dir().join(format!("dropnas-cli-plot-bad-{}", std::process::id()));
    user_error(
        &run([
            Path::new("genotype"),
            Path::new("plot"),
            Path::new("Genotype(normal=[[('sep_conv_3x3', 9)]])"),
            Path::new("--out"),
            &out_dir,
        ]),
        &[],
    );
    user_error(&run(["genotype", "plot", "no-such-genotype", "--out", "/tmp"]), &["no-such-genotype"]);
}
