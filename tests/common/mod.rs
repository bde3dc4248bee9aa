//! Helpers shared by the end-to-end tests of the `dropnas` binary.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

/// `<workspace root>/../shared/data`, or `$DROPNAS_SHARED_DATA`.
pub fn shared_data_dir() -> PathBuf {
    match std::env::var_os("DROPNAS_SHARED_DATA") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")),
    }
}

/// The shared data folder `sub` (e.g. "mnist"), or `None` after a skip notice when it is
/// missing. Under `CI=true` a missing folder fails the test instead.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let dir = shared_data_dir().join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!("shared data {} not found (set DROPNAS_SHARED_DATA)", dir.display());
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// Returns from the test (after a skip notice) when the shared data folder is missing.
#[macro_export]
macro_rules! require_data {
    ($sub:expr) => {
        match common::shared_data($sub) {
            Some(dir) => dir,
            None => return,
        }
    };
}

/// The `dropnas` binary built for this test run.
pub fn dropnas() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dropnas"));
    c.env("RUST_LOG", "warn").env_remove("BURN_DEVICE");
    c
}

/// Runs `dropnas ARGS` to completion.
pub fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    dropnas().args(args).output().expect("cannot start dropnas")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts success and returns stdout.
#[track_caller]
pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "dropnas failed ({:?}):\nstdout: {}\nstderr: {}", o.status, stdout(o), stderr(o));
    stdout(o)
}

/// Asserts a user error: exit code 2, no panic, and every `needle` in stderr (case-insensitive).
/// Returns stderr.
#[track_caller]
pub fn user_error(o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "expected exit code 2\nstdout: {}\nstderr: {err}", stdout(o));
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "a panic:\n{err}");
    assert!(err.contains("error: "), "no error line:\n{err}");
    let lower = err.to_lowercase();
    for n in needles {
        assert!(lower.contains(&n.to_lowercase()), "stderr lacks {n:?}:\n{err}");
    }
    err
}

/// One JSON value per non-empty line.
pub fn read_jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: bad JSON line {l:?}: {e}", path.display())))
        .collect()
}

pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The lines of `metrics.jsonl` of kind `kind` ("step" or "epoch").
pub fn metrics(run_dir: &Path, kind: &str) -> Vec<Value> {
    read_jsonl(&run_dir.join("metrics.jsonl")).into_iter().filter(|v| v["kind"] == kind).collect()
}

/// `v[key]` as f64, with a message naming the key when it is missing.
#[track_caller]
pub fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("missing number `{key}` in {v}"))
}

pub fn mean(xs: impl IntoIterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.into_iter().collect();
    v.iter().sum::<f64>() / v.len() as f64
}

/// Prints the wall time of a test when dropped (visible with `--nocapture`).
pub struct Timer(&'static str, Instant);

impl Timer {
    pub fn start(name: &'static str) -> Self {
        Timer(name, Instant::now())
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        eprintln!("[time] {}: {:.1} s", self.0, self.1.elapsed().as_secs_f64());
    }
}

/// Strings of `args` as owned `String`s (lets tests append to a base command line).
pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}
