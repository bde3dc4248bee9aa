//! Finding a data set's files under a data dir (downloading them when allowed) and reading one
//! split into an [`ImageSet`].

use std::path::{Path, PathBuf};

use crate::cifar;
use crate::dataset::{DatasetKind, Split};
use crate::download;
use crate::error::DataError;
use crate::idx;
use crate::image_set::ImageSet;

/// How to load a split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// CIFAR-100 only: use the 20 coarse labels instead of the 100 fine ones.
    pub coarse_labels: bool,
    /// Keep only the first N training images (quick runs, tests).
    pub max_train_samples: Option<usize>,
    /// Keep only the first N test images.
    pub max_test_samples: Option<usize>,
    /// Download missing files from the official source (torchvision's `download=True`).
    pub download: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { coarse_labels: false, max_train_samples: None, max_test_samples: None, download: true }
    }
}

/// The files one split is made of, by name.
fn split_files(kind: DatasetKind, split: Split) -> Vec<&'static str> {
    match (kind, split) {
        (DatasetKind::Cifar10, Split::Train) => {
            vec!["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"]
        }
        (DatasetKind::Cifar10, Split::Test) => vec!["test_batch.bin"],
        (DatasetKind::Cifar100, Split::Train) => vec!["train.bin"],
        (DatasetKind::Cifar100, Split::Test) => vec!["test.bin"],
        (DatasetKind::Mnist | DatasetKind::FashionMnist, Split::Train) => {
            vec!["train-images-idx3-ubyte", "train-labels-idx1-ubyte"]
        }
        (DatasetKind::Mnist | DatasetKind::FashionMnist, Split::Test) => {
            vec!["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
        }
    }
}

/// Folders searched, in order: the archive's own folder under `dir` first (what unpacking the
/// official archive gives), then `dir` itself (files copied there directly); for MNIST also the
/// `raw/` folder torchvision downloads to, so an existing torchvision copy can be pointed at.
fn candidate_dirs(kind: DatasetKind, dir: &Path) -> Vec<PathBuf> {
    match kind {
        DatasetKind::Cifar10 => vec![dir.join("cifar-10-batches-bin"), dir.to_path_buf()],
        DatasetKind::Cifar100 => vec![dir.join("cifar-100-binary"), dir.to_path_buf()],
        DatasetKind::Mnist => vec![dir.to_path_buf(), dir.join("MNIST").join("raw")],
        DatasetKind::FashionMnist => vec![dir.to_path_buf(), dir.join("FashionMNIST").join("raw")],
    }
}

fn is_idx(kind: DatasetKind) -> bool {
    matches!(kind, DatasetKind::Mnist | DatasetKind::FashionMnist)
}

/// The path of one file in `folder`; IDX files may be plain or `.gz` (plain preferred: faster).
fn find_file(kind: DatasetKind, folder: &Path, name: &str) -> Option<PathBuf> {
    let plain = folder.join(name);
    if plain.is_file() {
        return Some(plain);
    }
    if is_idx(kind) {
        let gz = folder.join(format!("{name}.gz"));
        if gz.is_file() {
            return Some(gz);
        }
    }
    None
}

/// The paths of the files one split of `kind` is read from under `dir`, when they are all there.
pub fn split_paths(kind: DatasetKind, dir: &Path, split: Split) -> Option<Vec<PathBuf>> {
    locate(kind, dir, split)
}

/// A folder on the way to the files that this process may not read: reported as such, not as
/// "not found".
fn unreadable(kind: DatasetKind, dir: &Path) -> Option<DataError> {
    let mut folders = vec![dir.to_path_buf()];
    folders.extend(candidate_dirs(kind, dir));
    folders.into_iter().filter(|d| d.exists()).find_map(|d| match std::fs::read_dir(&d) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Some(DataError::Permission { path: d }),
        _ => None,
    })
}

/// The paths of all files of a split, from the first folder that has all of them.
fn locate(kind: DatasetKind, dir: &Path, split: Split) -> Option<Vec<PathBuf>> {
    let names = split_files(kind, split);
    candidate_dirs(kind, dir)
        .into_iter()
        .find_map(|folder| names.iter().map(|name| find_file(kind, &folder, name)).collect::<Option<Vec<_>>>())
}

fn not_found(kind: DatasetKind, dir: &Path, split: Split, reason: &str) -> DataError {
    let mut names: Vec<String> = split_files(kind, split).into_iter().map(String::from).collect();
    if is_idx(kind) {
        names = names.into_iter().map(|n| format!("{n}[.gz]")).collect();
    }
    let searched: Vec<String> = candidate_dirs(kind, dir).iter().map(|d| d.display().to_string()).collect();
    DataError::NotFound {
        kind,
        split,
        dir: dir.to_path_buf(),
        searched: searched.join(" or "),
        expected: names.join(", "),
        reason: reason.to_string(),
    }
}

/// Reads one split of a data set from `dir` (see [`DatasetKind::default_dir`]).
///
/// Files are looked for in `dir/cifar-10-batches-bin/` or `dir/` (CIFAR-10),
/// `dir/cifar-100-binary/` or `dir/` (CIFAR-100), `dir/` or `dir/MNIST/raw/`
/// (MNIST; `FashionMNIST/raw/` for Fashion-MNIST). When they are missing and
/// `opts.download` is set, the official archives are downloaded and checked first.
/// Every file is validated (size, magic numbers, counts, label range, image dimensions).
pub fn load(kind: DatasetKind, dir: &Path, split: Split, opts: &LoadOptions) -> Result<ImageSet, DataError> {
    let paths = match locate(kind, dir, split) {
        Some(paths) => paths,
        None if unreadable(kind, dir).is_some() => return Err(unreadable(kind, dir).expect("just checked")),
        None if opts.download => {
            download::download(kind, dir)?;
            locate(kind, dir, split)
                .ok_or_else(|| not_found(kind, dir, split, "The download finished but did not produce these files."))?
        }
        None => {
            return Err(not_found(kind, dir, split, "Downloading is turned off (--no-download)."));
        }
    };
    let n_classes = kind.n_classes(opts.coarse_labels);
    let (c, s) = (kind.input_channels(), kind.input_size());
    let mut set = match kind {
        DatasetKind::Cifar10 => {
            let r = cifar::read_cifar10(&paths)?;
            ImageSet::new(c, s, s, n_classes, r.pixels, r.labels)?
        }
        DatasetKind::Cifar100 => {
            let r = cifar::read_cifar100(&paths[0], opts.coarse_labels)?;
            ImageSet::new(c, s, s, n_classes, r.pixels, r.labels)?
        }
        DatasetKind::Mnist | DatasetKind::FashionMnist => {
            let (images_path, labels_path) = (&paths[0], &paths[1]);
            let images = idx::read_images(images_path)?;
            if (images.rows, images.cols) != (s, s) {
                return Err(DataError::BadDimensions {
                    path: images_path.clone(),
                    expected: format!("{s}x{s} images ({})", kind.display_name()),
                    found: format!("{}x{}", images.rows, images.cols),
                });
            }
            let labels = idx::read_labels(labels_path, n_classes)?;
            if labels.len() != images.count {
                return Err(DataError::CountMismatch {
                    images_path: images_path.clone(),
                    images: images.count,
                    labels_path: labels_path.clone(),
                    labels: labels.len(),
                });
            }
            ImageSet::new(c, s, s, n_classes, images.pixels, labels)?
        }
    };
    let max = match split {
        Split::Train => opts.max_train_samples,
        Split::Test => opts.max_test_samples,
    };
    if let Some(max) = max {
        set.truncate(max);
    }
    tracing::debug!(dataset = kind.name(), split = split.name(), images = set.len(), "loaded");
    Ok(set)
}
