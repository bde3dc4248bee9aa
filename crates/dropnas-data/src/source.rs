//! What a run reads, opened into loaders: one of the built-in data sets, or an image folder.
//! The one entry point of the training loops and of `eval`, so that they do not depend on
//! where the images come from.

use std::path::Path;
use std::sync::Arc;

use crate::dataset::{Dataset, DatasetKind, Split};
use crate::error::DataError;
use crate::folder_transform::{FolderAugment, FolderTransforms};
use crate::identity::FileDigest;
use crate::image_folder::{ImageFolder, class_names, split_dir};
use crate::load::{LoadOptions, load};
use crate::loader::{Loader, LoaderConfig};
use crate::transform::Augment;

/// The `--dataset` name of an image folder.
pub const IMAGE_FOLDER: &str = "imagefolder";

/// Whether `dataset` names an image folder ("imagefolder", "image-folder", "ImageFolder").
pub fn is_image_folder(dataset: &str) -> bool {
    dataset.chars().filter(|c| !matches!(c, '-' | '_')).collect::<String>().eq_ignore_ascii_case(IMAGE_FOLDER)
}

/// Where a run's images come from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// CIFAR-10/100 or (Fashion-)MNIST.
    Builtin(DatasetKind),
    /// `DIR/train/CLASS/...`, `DIR/val/CLASS/...`, preprocessed as described.
    ImageFolder(FolderTransforms),
}

/// One split, opened.
#[derive(Debug, Clone)]
pub struct OpenedSplit {
    pub loader: Loader,
    /// An image folder's class names (label = position); `None` for the built-in data sets.
    pub classes: Option<Vec<String>>,
    /// What the run should log about the data (image counts, skipped and ignored files).
    pub notes: Vec<String>,
    /// An image folder's identity: a digest of its file list (paths and sizes); `None` for the
    /// built-in data sets, whose files are identified by their content (`identity`).
    pub listing: Option<FileDigest>,
}

fn header_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(16)
}

impl DataSource {
    /// A built-in data set, or an image folder with its `folder` transforms (`--input-size` and
    /// the rest).
    pub fn new(dataset: Dataset, folder: Option<&FolderTransforms>) -> Result<Self, DataError> {
        if let Dataset::Builtin(kind) = dataset {
            return Ok(DataSource::Builtin(kind));
        }
        let t = folder.ok_or_else(|| {
            DataError::InvalidOption("--dataset imagefolder needs its preprocessing (--input-size, ...)".into())
        })?;
        t.validate()?;
        Ok(DataSource::ImageFolder(t.clone()))
    }

    /// For messages: "CIFAR-10", "image folder".
    pub fn display_name(&self) -> &'static str {
        match self {
            DataSource::Builtin(kind) => kind.display_name(),
            DataSource::ImageFolder(_) => "image folder",
        }
    }

    /// Channels of the network input: 3 for an image folder (every image is made RGB).
    pub fn input_channels(&self) -> usize {
        match self {
            DataSource::Builtin(kind) => kind.input_channels(),
            DataSource::ImageFolder(_) => 3,
        }
    }

    /// Side of the square network input.
    pub fn input_size(&self) -> usize {
        match self {
            DataSource::Builtin(kind) => kind.input_size(),
            DataSource::ImageFolder(t) => t.input_size,
        }
    }

    /// The training split with its training augmentation (`Cutout(cutout)` when `cutout > 0`).
    pub fn train(
        &self,
        dir: &Path,
        opts: &LoadOptions,
        cutout: usize,
        config: LoaderConfig,
    ) -> Result<OpenedSplit, DataError> {
        match self {
            DataSource::Builtin(kind) => {
                let set = Arc::new(load(*kind, dir, Split::Train, opts)?);
                let notes = vec![format!("{} training images", set.len())];
                Ok(OpenedSplit {
                    loader: Loader::new(set, Augment::train(*kind, cutout), config)?,
                    classes: None,
                    notes,
                    listing: None,
                })
            }
            DataSource::ImageFolder(t) => {
                let mut folder = ImageFolder::open(dir, Split::Train, None, header_threads())?;
                if let Some(n) = opts.max_train_samples {
                    folder.subsample(n);
                }
                let (classes, notes, listing) = (folder.classes().to_vec(), folder.notes(), folder.listing_digest());
                let loader = Loader::image_folder(Arc::new(folder), FolderAugment::train(t, cutout), config)?;
                Ok(OpenedSplit { loader, classes: Some(classes), notes, listing: Some(listing) })
            }
        }
    }

    /// The evaluation split (`val/`, else `test/`, of an image folder) with the evaluation
    /// preprocessing. An image folder's classes must be `train_classes`; when they are not
    /// given, those of `DIR/train` are used if it exists.
    pub fn test(
        &self,
        dir: &Path,
        opts: &LoadOptions,
        config: LoaderConfig,
        train_classes: Option<&[String]>,
    ) -> Result<OpenedSplit, DataError> {
        match self {
            DataSource::Builtin(kind) => {
                let set = Arc::new(load(*kind, dir, Split::Test, opts)?);
                let notes = vec![format!("{} test images", set.len())];
                let loader = Loader::new(set, Augment::eval(*kind), config)?;
                Ok(OpenedSplit { loader, classes: None, notes, listing: None })
            }
            DataSource::ImageFolder(t) => {
                let listed = match train_classes {
                    Some(c) => Some(c.to_vec()),
                    None => split_dir(dir, Split::Train).ok().map(|d| class_names(&d)).transpose()?,
                };
                let mut folder = ImageFolder::open(dir, Split::Test, listed.as_deref(), header_threads())?;
                if let Some(n) = opts.max_test_samples {
                    folder.subsample(n);
                }
                let mut notes = folder.notes();
                if listed.is_none() {
                    notes.push(format!(
                        "{}: no train/ folder to check the class names against; labels follow the sorted class \
                         folders of {}",
                        dir.display(),
                        folder.dir().display()
                    ));
                }
                let (classes, listing) = (folder.classes().to_vec(), folder.listing_digest());
                let loader = Loader::image_folder(Arc::new(folder), FolderAugment::eval(t), config)?;
                Ok(OpenedSplit { loader, classes: Some(classes), notes, listing: Some(listing) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_image_folder("imagefolder") && is_image_folder("Image-Folder") && !is_image_folder("cifar10"));
        let t = FolderTransforms::for_input_size(32);
        let ds = |s: &str| s.parse::<Dataset>();
        assert_eq!(DataSource::new(ds("cifar10").unwrap(), None).unwrap(), DataSource::Builtin(DatasetKind::Cifar10));
        assert_eq!(DataSource::new(ds("imagefolder").unwrap(), Some(&t)).unwrap().input_size(), 32);
        assert!(DataSource::new(Dataset::ImageFolder, None).unwrap_err().to_string().contains("--input-size"));
        assert!(ds("imagenet").unwrap_err().to_string().contains("imagefolder"));
        assert_eq!(ds("Image-Folder").unwrap(), Dataset::ImageFolder);
        assert_eq!(serde_json::to_string(&ds("CIFAR10").unwrap()).unwrap(), "\"cifar10\"");
    }
}
