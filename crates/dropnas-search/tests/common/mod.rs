//! Helpers shared by the integration tests of this crate.

use std::path::Path;

/// A small MNIST-shaped training set in IDX format (what `dropnas-data` reads).
pub fn write_idx(dir: &Path, n: usize) {
    let mut images = Vec::new();
    images.extend(2051u32.to_be_bytes());
    images.extend((n as u32).to_be_bytes());
    images.extend(28u32.to_be_bytes());
    images.extend(28u32.to_be_bytes());
    images.extend((0..n * 784).map(|i| ((i * 2654435761usize) >> 13) as u8));
    let mut labels = Vec::new();
    labels.extend(2049u32.to_be_bytes());
    labels.extend((n as u32).to_be_bytes());
    labels.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join("train-images-idx3-ubyte"), images).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels).unwrap();
}
