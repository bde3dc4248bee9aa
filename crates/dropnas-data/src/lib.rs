//! # dropnas-data
//!
//! The data pipeline shared by DropNAS search and retraining:
//!
//! - readers for CIFAR-10/100 (binary version) and (Fashion-)MNIST (IDX, plain or gzipped)
//!   into an in-memory u8 [`ImageSet`] ([`load()`], [`cifar`], [`idx`]), with download on first
//!   use and MD5 checks ([`download`]);
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
//!     assert_eq!(batch.shape[1..], [3, 32, 32]);
//! }
//! # Ok(())
//! # }
//! ```

pub mod affine;
pub mod cifar;
pub mod dataset;
pub mod download;
pub mod error;
pub mod identity;
pub mod idx;
pub mod image_set;
pub mod load;
pub mod loader;
pub mod seed;
pub mod transform;

pub use affine::{AffineParams, RandomAffine};
pub use dataset::{DatasetKind, Split};
pub use error::DataError;
pub use identity::{DataIdentity, FileDigest};
pub use image_set::{ImageItem, ImageSet};
pub use load::{LoadOptions, load, split_paths};
pub use loader::{Batch, EpochIter, Loader, LoaderConfig};
pub use transform::{Augment, CropParams, Geometry};
