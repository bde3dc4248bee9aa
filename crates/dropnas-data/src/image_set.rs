//! An in-memory set of labelled images.
//!
//! Pixels stay u8 (CIFAR-10 train is 150 MB as u8, 600 MB as f32) and are converted to f32 only
//! when a batch is built. Each image is stored channel-planar (CHW), the order of the CIFAR files
//! and of the tensors the network takes, so that a batch is built by plain per-plane copies.

use burn::data::dataset::Dataset;

use crate::error::DataError;

/// Labelled u8 images of one shape, CHW-planar, back to back.
#[derive(Clone, PartialEq, Eq)]
pub struct ImageSet {
    channels: usize,
    height: usize,
    width: usize,
    n_classes: usize,
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

/// One sample as Burn's [`Dataset`] trait hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageItem {
    /// CHW-planar pixels.
    pub image: Vec<u8>,
    /// Class index.
    pub label: usize,
}

impl ImageSet {
    /// Builds a set from raw parts, e.g. synthetic data for benchmarks and tests.
    ///
    /// `pixels` holds `labels.len()` images of `channels * height * width` bytes, each CHW-planar;
    /// every label must be below `n_classes`.
    pub fn new(
        channels: usize,
        height: usize,
        width: usize,
        n_classes: usize,
        pixels: Vec<u8>,
        labels: Vec<u8>,
    ) -> Result<Self, DataError> {
        let image_len = channels * height * width;
        if image_len == 0 {
            return Err(DataError::InvalidOption(format!("image shape {channels}x{height}x{width} has no pixels")));
        }
        if pixels.len() != image_len * labels.len() {
            return Err(DataError::InvalidOption(format!(
                "{} pixel bytes do not make {} images of {channels}x{height}x{width}",
                pixels.len(),
                labels.len()
            )));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|&(_, &l)| usize::from(l) >= n_classes) {
            return Err(DataError::InvalidOption(format!(
                "label {l} of image {i} is not below the class count {n_classes}"
            )));
        }
        Ok(ImageSet { channels, height, width, n_classes, pixels, labels })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Colour channels per image.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Image height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Image width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Bytes per image: channels x height x width.
    pub fn image_len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Number of classes the labels range over.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// The CHW-planar pixels of image `index`. Panics if `index >= len()` (a caller bug).
    pub fn image(&self, index: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[index * n..(index + 1) * n]
    }

    /// The class of image `index`. Panics if `index >= len()` (a caller bug).
    pub fn label(&self, index: usize) -> usize {
        usize::from(self.labels[index])
    }

    /// All labels, in image order.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// All pixels, image after image.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Number of images of each class (index = class).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.n_classes];
        for &l in &self.labels {
            counts[usize::from(l)] += 1;
        }
        counts
    }

    /// Keeps only the first `n` images (no-op when `n >= len()`).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.pixels.truncate(n * self.image_len());
            self.labels.shrink_to_fit();
            self.pixels.shrink_to_fit();
        }
    }
}

// Written out: the derived Debug would print every pixel (150 MB for CIFAR-10).
impl std::fmt::Debug for ImageSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageSet")
            .field("len", &self.len())
            .field("shape", &[self.channels, self.height, self.width])
            .field("n_classes", &self.n_classes)
            .finish_non_exhaustive()
    }
}

/// Lets Burn's data tooling read the set; the training loops use [`crate::Loader`] instead,
/// whose batches do not depend on the number of threads.
impl Dataset<ImageItem> for ImageSet {
    fn get(&self, index: usize) -> Option<ImageItem> {
        (index < self.len()).then(|| ImageItem { image: self.image(index).to_vec(), label: self.label(index) })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}
