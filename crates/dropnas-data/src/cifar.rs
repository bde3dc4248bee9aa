//! Readers for the "binary version" files of CIFAR-10 and CIFAR-100.
//!
//! Each record is the label byte(s) followed by 3072 pixel bytes: the 1024 red, then green, then
//! blue bytes of a 32x32 image, row-major. That is already the CHW-planar order [`ImageSet`]
//! keeps, so records are copied without reordering.
//!
//! [`ImageSet`]: crate::ImageSet

use std::path::{Path, PathBuf};

use crate::error::DataError;

/// Pixel bytes per CIFAR image: 3 planes of 32x32.
pub const PIXELS: usize = 3 * 32 * 32;

/// Pixels and labels read from one or more files.
#[derive(Debug, Default)]
pub struct Records {
    /// CHW-planar pixels, image after image.
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
}

/// Appends the records of one file. `label_bytes` lead each record; `n_classes[k]` bounds label
/// byte k, and label byte `keep` is the one returned.
fn read_into(
    path: &Path,
    label_bytes: usize,
    n_classes: &[usize],
    keep: usize,
    out: &mut Records,
) -> Result<(), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let record = label_bytes + PIXELS;
    if bytes.is_empty() || bytes.len() % record != 0 {
        return Err(DataError::BadSize {
            path: path.to_path_buf(),
            expected: format!(
                "a non-zero multiple of {record} (records of {label_bytes} label byte(s) + {PIXELS} pixel bytes)"
            ),
            found: bytes.len() as u64,
        });
    }
    let n = bytes.len() / record;
    out.pixels.reserve(n * PIXELS);
    out.labels.reserve(n);
    for (index, rec) in bytes.chunks_exact(record).enumerate() {
        for (k, &classes) in n_classes.iter().enumerate() {
            if usize::from(rec[k]) >= classes {
                return Err(DataError::LabelOutOfRange {
                    path: path.to_path_buf(),
                    index,
                    label: rec[k],
                    n_classes: classes,
                });
            }
        }
        out.labels.push(rec[keep]);
        out.pixels.extend_from_slice(&rec[label_bytes..]);
    }
    Ok(())
}

/// Reads CIFAR-10 batch files (`data_batch_1.bin`.. or `test_batch.bin`), concatenated in the
/// order given.
pub fn read_cifar10(paths: &[PathBuf]) -> Result<Records, DataError> {
    let mut out = Records::default();
    for path in paths {
        read_into(path, 1, &[10], 0, &mut out)?;
    }
    Ok(out)
}

/// Reads a CIFAR-100 file (`train.bin` or `test.bin`); each record starts with the coarse label
/// (20 classes) then the fine label (100 classes). Both are range-checked, `coarse` picks which
/// one is returned.
pub fn read_cifar100(path: &Path, coarse: bool) -> Result<Records, DataError> {
    let mut out = Records::default();
    read_into(path, 2, &[20, 100], if coarse { 0 } else { 1 }, &mut out)?;
    Ok(out)
}
