//! The one error type of the crate.
//!
//! Every message names the file or folder at fault and says what to do about it, because the
//! CLI prints it as is (exit code 2) to someone who may not know the file formats.

use std::path::PathBuf;

use crate::dataset::{DatasetKind, Split};

/// Where to send users for sources, layouts and checksums: an address, which works from any
/// folder (a path relative to a checkout does not).
pub const README_HINT: &str = "see https://github.com/dropnas/dropnas/blob/main/datasets/README.md";

/// Everything that can go wrong while finding, downloading, checking or reading a data set.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The files of a data set are not where they should be and were not downloaded.
    #[error(
        "{} {split} data not found: expected {expected} in {searched}. {reason} \
         Download {} into {} by hand (the tools check their MD5 on first use), or point --data-dir \
         at a folder that holds the files ({README_HINT} for every data set's files and checksums)",
        kind.display_name(),
        crate::download::remote_files(*kind).iter().map(|f| f.url).collect::<Vec<_>>().join(", "),
        dir.display()
    )]
    NotFound {
        /// The data set.
        kind: DatasetKind,
        /// The split that was asked for.
        split: Split,
        /// The data dir that was given.
        dir: PathBuf,
        /// The folders that were searched, in words.
        searched: String,
        /// The file names that were expected.
        expected: String,
        /// Why nothing was downloaded (download disabled, or what failed).
        reason: String,
    },

    /// A download did not complete (no network, HTTP error, disk full...).
    #[error(
        "downloading {url} failed: {reason}. Without internet access, put {expected} into {dir} \
         by hand, or point --data-dir at a folder that holds them ({README_HINT})"
    )]
    Download {
        /// The address that was requested.
        url: String,
        /// What went wrong.
        reason: String,
        /// The folder the files should go to.
        dir: PathBuf,
        /// The files that are expected there.
        expected: String,
    },

    /// A downloaded or supplied archive does not have the published MD5 checksum.
    #[error(
        "{}: MD5 checksum mismatch: expected {expected}, found {found}; the file is corrupt or \
         incomplete: delete it and download it again ({README_HINT})",
        path.display()
    )]
    Checksum {
        /// The file that was checked.
        path: PathBuf,
        /// The published MD5 (hex).
        expected: String,
        /// The MD5 of the file on disk (hex).
        found: String,
    },

    /// A file whose size cannot be right for its format (truncated or not what it claims to be).
    #[error(
        "{}: wrong file size: expected {expected}, found {found} bytes; the file is truncated or \
         corrupt: replace it ({README_HINT})",
        path.display()
    )]
    BadSize {
        /// The file at fault.
        path: PathBuf,
        /// What the size should be, in words.
        expected: String,
        /// The actual size in bytes (decompressed for .gz files).
        found: u64,
    },

    /// A .gz file that does not decompress (truncated download, not gzip at all...).
    #[error(
        "{}: cannot decompress: {reason}; expected a complete gzip file: the file is truncated or \
         corrupt: replace it ({README_HINT})",
        path.display()
    )]
    BadGzip {
        /// The file at fault.
        path: PathBuf,
        /// What the decompressor reported.
        reason: String,
    },

    /// An IDX file starts with the wrong magic number (not an IDX file, or images and labels swapped).
    #[error(
        "{}: wrong IDX magic number: expected {expected} ({what}), found {found}; the file is not \
         an IDX {what} file or is corrupt ({README_HINT})",
        path.display()
    )]
    BadMagic {
        /// The file at fault.
        path: PathBuf,
        /// "images" or "labels".
        what: &'static str,
        /// 2051 for images, 2049 for labels.
        expected: u32,
        /// The big-endian u32 found at the start of the file.
        found: u32,
    },

    /// An image file and its label file disagree on the number of samples.
    #[error(
        "{} holds {images} images but {} holds {labels} labels; the two files must come from the \
         same split of the same data set ({README_HINT})",
        images_path.display(),
        labels_path.display()
    )]
    CountMismatch {
        /// The image file.
        images_path: PathBuf,
        /// Number of images it holds.
        images: usize,
        /// The label file.
        labels_path: PathBuf,
        /// Number of labels it holds.
        labels: usize,
    },

    /// A label byte outside the class range of the data set.
    #[error(
        "{}: label {label} of sample {index} is out of range: expected 0..{n_classes}; the file is \
         corrupt or belongs to another data set ({README_HINT})",
        path.display()
    )]
    LabelOutOfRange {
        /// The file at fault.
        path: PathBuf,
        /// Index of the sample within that file.
        index: usize,
        /// The label found.
        label: u8,
        /// The number of classes (labels must be below it).
        n_classes: usize,
    },

    /// Images of an unexpected size (e.g. an IDX file of 32x32 images given as MNIST).
    #[error(
        "{}: wrong image dimensions: expected {expected}, found {found} ({README_HINT})",
        path.display()
    )]
    BadDimensions {
        /// The file at fault.
        path: PathBuf,
        /// The dimensions the data set has.
        expected: String,
        /// The dimensions in the file.
        found: String,
    },

    /// An I/O error other than "not found" while reading or writing a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A file or folder this process may not read.
    #[error("permission denied: cannot read {}; fix its permissions (e.g. `chmod -R u+rX`) or point --data-dir elsewhere", path.display())]
    Permission {
        /// The file or folder.
        path: PathBuf,
    },

    /// A file that is a known file of another data set (or another split).
    #[error(
        "{} is {found}, not {expected}: point --data-dir at the {dataset} files ({README_HINT})",
        path.display()
    )]
    WrongData {
        /// The file at fault.
        path: PathBuf,
        /// What the file is, e.g. "MNIST's train-images-idx3-ubyte (MD5 of its content 6bbc...)".
        found: String,
        /// What was expected there.
        expected: String,
        /// The data set that was asked for.
        dataset: String,
    },

    /// A name that is not one of the data sets.
    #[error("unknown data set {0:?}: expected one of cifar10, cifar100, mnist, fashion-mnist, imagefolder")]
    UnknownDataset(String),

    /// An image folder without the expected layout (no `train/` or `val/`, no class folders).
    #[error(
        "{}: {problem}. An image-folder data set holds DIR/train/CLASS/*.jpg (or .jpeg, .png; sub-folders \
         allowed) and DIR/val/CLASS/... with the same class folders (README: \"Your own images\")",
        dir.display()
    )]
    FolderLayout {
        /// The data dir that was given.
        dir: PathBuf,
        /// What is wrong, in words.
        problem: String,
    },

    /// A class folder without one usable image.
    #[error(
        "{}: this class folder holds no usable .jpg/.jpeg/.png image ({skipped} skipped as unreadable, {ignored} \
         without an image extension); add images or remove the folder (every class needs images in train/ and val/)",
        folder.display()
    )]
    EmptyClass {
        /// The class folder.
        folder: PathBuf,
        /// Image files in it that cannot be read.
        skipped: usize,
        /// Other files in it.
        ignored: usize,
    },

    /// The evaluation folder's classes are not the training folder's.
    #[error(
        "{}: its class folders must be those of train/ (labels are positions in the sorted class list): {}{}",
        dir.display(),
        if missing.is_empty() { String::new() } else { format!("missing {}", missing.join(", ")) },
        if extra.is_empty() {
            String::new()
        } else {
            format!("{}not in train/: {}", if missing.is_empty() { "" } else { "; " }, extra.join(", "))
        }
    )]
    ClassMismatch {
        /// The evaluation folder.
        dir: PathBuf,
        /// Training classes without a folder here.
        missing: Vec<String>,
        /// Folders here that are not training classes.
        extra: Vec<String>,
    },

    /// An image whose header read when its folder was opened but whose data does not decode.
    #[error(
        "{}: cannot decode this image: {reason}. Replace the file with a good copy (or delete it and restart the run: \
         the file list, and so the sample order, changes) and --resume",
        path.display()
    )]
    Decode {
        /// The image file.
        path: PathBuf,
        /// What the decoder reported.
        reason: String,
    },

    /// An option that cannot work (batch size 0, an image set of the wrong shape...).
    #[error("invalid data option: {0}")]
    InvalidOption(String),
}

impl DataError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            return DataError::Permission { path };
        }
        DataError::Io { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_permission_error_says_so() {
        let e = DataError::io("/data/mnist", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        let msg = e.to_string();
        assert!(msg.contains("permission denied") && msg.contains("/data/mnist") && msg.contains("chmod"), "{msg}");
        let e = DataError::io("/data/mnist", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(!e.to_string().contains("permission"));
    }
}
