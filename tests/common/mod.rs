//! Helpers shared by the end-to-end tests of the `dropnas` binary.
#![allow(dead_code)]

pub mod outcome;

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

/// Whether this runs under CI: any non-empty `CI` but `false` or `0` (`true`, `1`, `True`...).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "false" | "0"))
}

/// The shared data folder `sub` (e.g. "mnist"), or `None` after a skip notice when it is
/// missing. Under CI ([`in_ci`]) a missing folder fails the test instead.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let dir = shared_data_dir().join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!("shared data {} not found (set DROPNAS_SHARED_DATA)", dir.display());
    if in_ci() {
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

/// Arguments from a command line written as one string (split at whitespace), then the
/// `(flag, path)` pairs, which may contain spaces.
pub fn cli(line: &str, paths: &[(&str, &Path)]) -> Vec<String> {
    let mut a: Vec<String> = line.split_whitespace().map(String::from).collect();
    for (flag, path) in paths {
        a.push(flag.to_string());
        a.push(path.display().to_string());
    }
    a
}

/// The JSON head of a checkpoint file (`{"format": 2, "header": ..., "parts": [{"name","len","crc32"}]}`):
/// 16 magic bytes, a little-endian u64 length, then the JSON (and its CRC32). `None` while it
/// cannot be read.
pub fn checkpoint_head(path: &Path) -> Option<Value> {
    let bytes = std::fs::read(path).ok()?;
    if !bytes.starts_with(b"DROPNAS-CKPT-v1\n") {
        return None;
    }
    let len = u64::from_le_bytes(bytes.get(16..24)?.try_into().ok()?) as usize;
    serde_json::from_slice(bytes.get(24..24 + len)?).ok()
}

/// The bytes of part `name` of a checkpoint (the parts follow the JSON head and its 4-byte CRC,
/// in index order).
pub fn checkpoint_part(path: &Path, name: &str) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let head = checkpoint_head(path).unwrap_or_else(|| panic!("{} is not a readable checkpoint", path.display()));
    let mut at = 24 + u64::from_le_bytes(bytes[16..24].try_into().unwrap()) as usize + 4;
    for p in head["parts"].as_array().expect("parts") {
        let len = p["len"].as_u64().unwrap() as usize;
        if p["name"] == name {
            return bytes[at..at + len].to_vec();
        }
        at += len;
    }
    panic!("{} has no part {name}", path.display())
}

/// A module record (Burn's named MessagePack) with every `"id": "<random ParamId>"` entry
/// removed: Burn draws parameter ids at random per process, so two runs with bit-identical
/// tensors still differ there. What remains (names, shapes, tensor bytes) must be equal.
pub fn record_without_ids(record: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(record.len());
    let mut ids = 0;
    let end = msgpack_copy(record, 0, &mut out, &mut ids);
    assert_eq!(end, record.len(), "trailing bytes after the record");
    assert!(ids > 0, "no parameter ids in the record: not a Burn module record?");
    out
}

/// Copies the MessagePack value at `at` to `out` (dropping map entries keyed "id"); returns
/// the position after it.
fn msgpack_copy(b: &[u8], at: usize, out: &mut Vec<u8>, ids: &mut usize) -> usize {
    let be = |from: usize, n: usize| b[from..from + n].iter().fold(0usize, |acc, &x| (acc << 8) | x as usize);
    let m = b[at];
    // (header length, payload length) of scalars, strings and binaries; None for containers
    let scalar = match m {
        0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => Some((1, 0)),
        0xa0..=0xbf => Some((1, (m & 0x1f) as usize)),
        0xcc | 0xd0 => Some((1, 1)),
        0xcd | 0xd1 => Some((1, 2)),
        0xca | 0xce | 0xd2 => Some((1, 4)),
        0xcb | 0xcf | 0xd3 => Some((1, 8)),
        0xc4 | 0xd9 => Some((2, be(at + 1, 1))),
        0xc5 | 0xda => Some((3, be(at + 1, 2))),
        0xc6 | 0xdb => Some((5, be(at + 1, 4))),
        0xd4 => Some((2, 1)),
        0xd5 => Some((2, 2)),
        0xd6 => Some((2, 4)),
        0xd7 => Some((2, 8)),
        0xd8 => Some((2, 16)),
        0xc7 => Some((3, be(at + 1, 1))),
        0xc8 => Some((4, be(at + 1, 2))),
        0xc9 => Some((6, be(at + 1, 4))),
        _ => None,
    };
    if let Some((h, n)) = scalar {
        out.extend_from_slice(&b[at..at + h + n]);
        return at + h + n;
    }
    let (h, n, is_map) = match m {
        0x90..=0x9f => (1, (m & 0x0f) as usize, false),
        0xdc => (3, be(at + 1, 2), false),
        0xdd => (5, be(at + 1, 4), false),
        0x80..=0x8f => (1, (m & 0x0f) as usize, true),
        0xde => (3, be(at + 1, 2), true),
        0xdf => (5, be(at + 1, 4), true),
        _ => panic!("unknown MessagePack marker {m:#x} at {at}"),
    };
    let mut pos = at + h;
    let mut body = Vec::new();
    let mut kept = 0usize;
    for _ in 0..n {
        if is_map && b[pos..].starts_with(&[0xa2, b'i', b'd']) {
            let mut skipped = Vec::new();
            pos = msgpack_copy(b, msgpack_copy(b, pos, &mut skipped, ids), &mut skipped, ids);
            *ids += 1;
            continue;
        }
        pos = msgpack_copy(b, pos, &mut body, ids);
        if is_map {
            pos = msgpack_copy(b, pos, &mut body, ids);
        }
        kept += 1;
    }
    out.push(if is_map { 0xdf } else { 0xdd });
    out.extend_from_slice(&(kept as u32).to_be_bytes());
    out.extend_from_slice(&body);
    pos
}

/// Starts `dropnas ARGS`, kills it as soon as its checkpoint's header satisfies `when`, and
/// returns that header. Panics if the run ends first or after `timeout_s`.
pub fn kill_when(args: &[String], checkpoint: &Path, timeout_s: u64, when: impl Fn(&Value) -> bool) -> Value {
    use std::process::Stdio;
    let mut child = dropnas().args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn dropnas");
    let deadline = Instant::now() + std::time::Duration::from_secs(timeout_s);
    loop {
        if let Some(head) = checkpoint_head(checkpoint).filter(|h| when(&h["header"])) {
            child.kill().expect("kill");
            child.wait().expect("wait");
            return head["header"].clone();
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("the run ended ({status}) before the awaited checkpoint was seen");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no awaited checkpoint after {timeout_s} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// A synthetic image of class `class` (0..3), `w x h`: the class's colour channel raised, stripes
/// whose slant depends on the class, and noise from `seed`. Easy to tell apart, even cropped.
pub fn class_picture(class: usize, w: u32, h: u32, seed: u64) -> image::RgbImage {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    image::RgbImage::from_fn(w, h, |px, py| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = (x % 40) as u8;
        let stripe = if ((px + py * class as u32) / 3).is_multiple_of(2) { 50 } else { 0 };
        let mut p = [n, n, n];
        p[class % 3] = p[class % 3].saturating_add(150 + stripe);
        image::Rgb(p)
    })
}

/// Writes an image folder under `root`: `train/` with `train_per_class` and `val/` with
/// `val_per_class` images of each of `classes`, alternately PNG and JPEG, of varied sizes (the
/// third class's files sit in a sub-folder).
pub fn write_image_folder(root: &Path, classes: &[&str], train_per_class: usize, val_per_class: usize) {
    for (split, n) in [("train", train_per_class), ("val", val_per_class)] {
        for (c, class) in classes.iter().enumerate() {
            let dir = root.join(split).join(class);
            let dir = if c == 2 { dir.join("more") } else { dir };
            std::fs::create_dir_all(&dir).unwrap();
            for i in 0..n {
                let (w, h) = (20 + (i as u32 * 7) % 29, 18 + (i as u32 * 11) % 31);
                let ext = if i % 2 == 0 { "png" } else { "jpg" };
                let seed = (c * 1000 + i) as u64 + if split == "val" { 500 } else { 0 };
                let path = dir.join(format!("{i:03}.{ext}"));
                class_picture(c, w, h, seed).save(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        }
    }
}
