//! # dropnas-data
//!
//! The data pipeline shared by DropNAS search and retraining:
//!
//! - readers for CIFAR-10/100 (binary version) and (Fashion-)MNIST (IDX, plain or gzipped)
//!   into an in-memory u8 [`ImageSet`] ([`load()`], [`cifar`], [`idx`]), with download on first
//!   use and MD5 checks ([`download`]);
//! - image folders (torchvision's `ImageFolder` layout, [`ImageFolder`]), decoded lazily on the
//!   loader's threads and preprocessed with torchvision's PIL semantics ([`FolderAugment`]:
//!   random-resized crop, flip, colour jitter; resize and centre crop; Pillow's resampling and
//!   colour arithmetic byte for byte: [`resize`], [`color_jitter`]);
//! - [`DataSource`], the one way the loops open a data set of either kind;
//! - the original's preprocessing with torchvision's exact semantics ([`Augment`]: padded
//!   random crop + horizontal flip, or random affine (+ vertical flip), then normalisation and
//!   cutout; [`affine`] reproduces Pillow's resampling byte for byte);
//! - a seeded [`Loader`] whose batches depend only on (seed, epoch, batch index), prepared on
//!   background threads and delivered in order, resumable at any batch.
//!
//! ```no_run
//! use std::sync::Arc;
//! use dropnas_data::{load, Augment, DatasetKind, Loader, LoaderConfig, LoadOptions, Split};
//!
//! # fn main() -> Result<(), dropnas_data::DataError> {
//! let kind: DatasetKind = "cifar10".parse()?;
//! let train = Arc::new(load(kind, &kind.default_dir(), Split::Train, &LoadOptions::default())?);
//! let loader = Loader::new(train, Augment::train(kind, 0), LoaderConfig::train(64, 2, 2))?;
//! for batch in loader.epoch(0, 0) {
//!     assert_eq!(batch?.shape[1..], [3, 32, 32]);
//! }
//! # Ok(())
//! # }
//! ```

pub mod affine;
pub mod cifar;
pub mod color_jitter;
pub mod dataset;
pub mod download;
pub mod error;
pub mod folder_transform;
pub mod identity;
pub mod idx;
pub mod image_folder;
pub mod image_set;
pub mod load;
pub mod loader;
pub mod resize;
pub mod seed;
pub mod source;
pub mod transform;

pub use affine::{AffineParams, RandomAffine};
pub use color_jitter::ColorJitter;
pub use dataset::{Dataset, DatasetKind, Split};
pub use error::DataError;
pub use folder_transform::{FolderAugment, FolderTransforms};
pub use identity::{DataIdentity, FileDigest};
pub use image_folder::ImageFolder;
pub use image_set::{ImageItem, ImageSet};
pub use load::{LoadOptions, load, split_paths};
pub use loader::{Batch, EpochIter, Loader, LoaderConfig};
pub use source::{DataSource, OpenedSplit, is_image_folder};
pub use transform::{Augment, CropParams, Geometry};
