//! Reader for the IDX files of MNIST and Fashion-MNIST, plain or gzipped.
//!
//! Format (big-endian): u32 magic (2051 for images, 2049 for labels), u32 count, then for
//! images u32 rows and u32 columns, then the bytes (one per label, rows x columns per image,
//! row-major, which for one channel is already CHW).

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::error::DataError;

/// Magic number of an IDX file of u8 images (3 dimensions).
pub const IMAGES_MAGIC: u32 = 2051;
/// Magic number of an IDX file of u8 labels (1 dimension).
pub const LABELS_MAGIC: u32 = 2049;

/// The images of one IDX file.
#[derive(Debug)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count * rows * cols` bytes.
    pub pixels: Vec<u8>,
}

/// Reads a whole file, decompressing it when it is gzip (recognised by its magic bytes, so that
/// a `.gz` name on a plain file, or the reverse, still works).
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::with_capacity(raw.len() * 4);
    GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| DataError::BadGzip { path: path.to_path_buf(), reason: e.to_string() })?;
    Ok(out)
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Checks the magic number and header length shared by both kinds of file; returns the header
/// words after the magic.
fn header(path: &Path, bytes: &[u8], magic: u32, what: &'static str, dims: usize) -> Result<Vec<usize>, DataError> {
    let header_len = 4 + 4 * dims;
    if bytes.len() < 4 {
        return Err(DataError::BadSize {
            path: path.to_path_buf(),
            expected: format!("at least {header_len} bytes (the IDX {what} header)"),
            found: bytes.len() as u64,
        });
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::BadMagic { path: path.to_path_buf(), what, expected: magic, found });
    }
    if bytes.len() < header_len {
        return Err(DataError::BadSize {
            path: path.to_path_buf(),
            expected: format!("at least {header_len} bytes (the IDX {what} header)"),
            found: bytes.len() as u64,
        });
    }
    Ok((0..dims).map(|d| be_u32(bytes, 4 + 4 * d) as usize).collect())
}

/// Reads an IDX image file (magic 2051).
pub fn read_images(path: &Path) -> Result<IdxImages, DataError> {
    let bytes = read_maybe_gz(path)?;
    let dims = header(path, &bytes, IMAGES_MAGIC, "images", 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    let body = count.checked_mul(rows).and_then(|v| v.checked_mul(cols)).unwrap_or(usize::MAX);
    let expected = body.saturating_add(16);
    if bytes.len() != expected {
        return Err(DataError::BadSize {
            path: path.to_path_buf(),
            expected: format!(
                "{expected} (16 header bytes + {count} images of {rows}x{cols} bytes, as the header says)"
            ),
            found: bytes.len() as u64,
        });
    }
    let mut pixels = bytes;
    pixels.drain(..16);
    Ok(IdxImages { count, rows, cols, pixels })
}

/// Reads an IDX label file (magic 2049) and checks every label is below `n_classes`.
pub fn read_labels(path: &Path, n_classes: usize) -> Result<Vec<u8>, DataError> {
    let bytes = read_maybe_gz(path)?;
    let count = header(path, &bytes, LABELS_MAGIC, "labels", 1)?[0];
    let expected = count.saturating_add(8);
    if bytes.len() != expected {
        return Err(DataError::BadSize {
            path: path.to_path_buf(),
            expected: format!("{expected} (8 header bytes + {count} labels, as the header says)"),
            found: bytes.len() as u64,
        });
    }
    let mut labels = bytes;
    labels.drain(..8);
    if let Some((index, &label)) = labels.iter().enumerate().find(|&(_, &l)| usize::from(l) >= n_classes) {
        return Err(DataError::LabelOutOfRange { path: path.to_path_buf(), index, label, n_classes });
    }
    Ok(labels)
}
