//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

/// The real data files beside the checkout (`<workspace>/../shared/data`), or
/// `$DROPNAS_SHARED_DATA`. `None` (after printing a skip notice) when absent, except on CI
/// (`CI=true`), where missing data must fail the test rather than silently pass.
pub fn shared_data(sub: &str) -> Option<PathBuf> {
    let root = std::env::var_os("DROPNAS_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data")));
    let dir = root.join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    let msg = format!(
        "shared test data not found at {} (set DROPNAS_SHARED_DATA to the folder holding mnist/, \
         cifar-10-sample/, cifar-100-sample/)",
        dir.display()
    );
    // any non-empty CI but `false`/`0` (`true`, `1`, `True`...) is CI
    if std::env::var("CI").is_ok_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "false" | "0")) {
        panic!("{msg}; CI is set, so this is an error");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// A fresh temporary folder, removed when the handle drops.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("cannot create a temporary folder")
}

/// Deterministic pseudo-random bytes (no RNG crate needed in tests).
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}
