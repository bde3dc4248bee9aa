//! Seeded, ordered, prefetching batch loader.
//!
//! An epoch's sample order is a permutation drawn from (seed, epoch); each sample's
//! augmentation from (seed, epoch, sample index). Batches are therefore a pure function of
//! (seed, epoch, batch index), which is what lets N worker threads build them in any order while
//! the consumer still receives exactly the same batches, in order, as with one thread, and lets a
//! resumed run start an epoch at any batch. (Burn's multi-threaded DataLoader hands batches out in
//! arrival order, which breaks that, hence this small prefetcher.)
//!
//! The samples come from an in-memory [`ImageSet`] or from an [`ImageFolder`], whose images are
//! decoded and transformed on the worker threads (an image that does not decode makes its batch
//! an error naming the file).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use burn::tensor::backend::Backend;
use burn::tensor::{Int, Tensor, TensorData};
use rand::Rng;

use crate::error::DataError;
use crate::folder_transform::FolderAugment;
use crate::image_folder::ImageFolder;
use crate::image_set::ImageSet;
use crate::seed;
use crate::transform::Augment;

/// One batch of preprocessed samples, on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Normalised pixels, `[batch, channels, height, width]` row-major.
    pub images: Vec<f32>,
    /// Class of each sample.
    pub labels: Vec<i64>,
    /// Index of each sample in its [`ImageSet`] or [`ImageFolder`].
    pub indices: Vec<usize>,
    /// `[batch, channels, height, width]`.
    pub shape: [usize; 4],
}

impl Batch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Copies the batch to `device`: images `[B, C, H, W]` (float) and labels `[B]` (int).
    pub fn to_tensors<B: Backend>(&self, device: &B::Device) -> (Tensor<B, 4>, Tensor<B, 1, Int>) {
        let images = Tensor::<B, 4>::from_data(TensorData::new(self.images.clone(), self.shape), device);
        let labels = Tensor::<B, 1, Int>::from_data(TensorData::new(self.labels.clone(), [self.labels.len()]), device);
        (images, labels)
    }
}

/// How a [`Loader`] cuts and orders an image set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderConfig {
    /// Samples per batch; the last batch of an epoch may be smaller (it is kept).
    pub batch_size: usize,
    /// Draw a new sample order every epoch (training); otherwise file order (evaluation).
    pub shuffle: bool,
    /// Seed of all orders and augmentations.
    pub seed: u64,
    /// Background threads preparing batches; 0 prepares them on the consumer's thread.
    pub workers: usize,
    /// Batches prepared ahead of the consumer at most; 0 picks `2 * workers`.
    pub prefetch: usize,
}

impl LoaderConfig {
    /// Shuffled, seeded batches (training).
    pub fn train(batch_size: usize, seed: u64, workers: usize) -> Self {
        LoaderConfig { batch_size, shuffle: true, seed, workers, prefetch: 0 }
    }

    /// Batches in file order (evaluation); `seed` still drives any random augmentation.
    pub fn eval(batch_size: usize, workers: usize) -> Self {
        LoaderConfig { batch_size, shuffle: false, seed: 0, workers, prefetch: 0 }
    }
}

/// Hands out the batches of an [`ImageSet`] or an [`ImageFolder`] epoch by epoch (see the
/// module docs).
#[derive(Debug, Clone)]
pub struct Loader {
    job: Arc<Job>,
    config: LoaderConfig,
}

/// Where the samples come from, with their preprocessing.
#[derive(Debug)]
enum Samples {
    Memory { set: Arc<ImageSet>, augment: Augment },
    Folder { folder: Arc<ImageFolder>, augment: FolderAugment },
}

impl Samples {
    fn len(&self) -> usize {
        match self {
            Samples::Memory { set, .. } => set.len(),
            Samples::Folder { folder, .. } => folder.len(),
        }
    }

    fn shape(&self) -> [usize; 3] {
        match self {
            Samples::Memory { augment, .. } => augment.shape(),
            Samples::Folder { augment, .. } => augment.shape(),
        }
    }

    fn label(&self, i: usize) -> usize {
        match self {
            Samples::Memory { set, .. } => set.label(i),
            Samples::Folder { folder, .. } => folder.label(i),
        }
    }

    /// Preprocesses sample `i` into `out`.
    fn fill(&self, i: usize, rng: &mut rand_chacha::ChaCha8Rng, out: &mut [f32]) -> Result<(), DataError> {
        match self {
            Samples::Memory { set, augment } => augment.apply(set.image(i), rng, out),
            Samples::Folder { folder, augment } => augment.apply(&folder.decode(i)?, rng, out),
        }
        Ok(())
    }
}

/// What every worker needs, shared read-only.
#[derive(Debug)]
struct Job {
    samples: Samples,
    n_classes: usize,
    batch_size: usize,
    seed: u64,
}

fn check_batch_size(config: &LoaderConfig) -> Result<(), DataError> {
    if config.batch_size == 0 {
        return Err(DataError::InvalidOption("batch size must be at least 1".into()));
    }
    Ok(())
}

impl Loader {
    /// Checks that `augment` fits the images and that the batch size is not 0.
    pub fn new(set: Arc<ImageSet>, augment: Augment, config: LoaderConfig) -> Result<Self, DataError> {
        check_batch_size(&config)?;
        let set_shape = [set.channels(), set.height(), set.width()];
        if augment.shape() != set_shape {
            return Err(DataError::InvalidOption(format!(
                "the preprocessing expects images of shape {:?} but the data set has {set_shape:?}",
                augment.shape()
            )));
        }
        let n_classes = set.n_classes();
        let job = Job {
            samples: Samples::Memory { set, augment },
            n_classes,
            batch_size: config.batch_size,
            seed: config.seed,
        };
        Ok(Loader { job: Arc::new(job), config })
    }

    /// Batches of an image folder, decoded and preprocessed by `augment` on the worker threads.
    pub fn image_folder(
        folder: Arc<ImageFolder>,
        augment: FolderAugment,
        config: LoaderConfig,
    ) -> Result<Self, DataError> {
        check_batch_size(&config)?;
        let n_classes = folder.n_classes();
        let job = Job {
            samples: Samples::Folder { folder, augment },
            n_classes,
            batch_size: config.batch_size,
            seed: config.seed,
        };
        Ok(Loader { job: Arc::new(job), config })
    }

    /// The configuration.
    pub fn config(&self) -> &LoaderConfig {
        &self.config
    }

    /// The in-memory images read, if the samples are in memory.
    pub fn image_set(&self) -> Option<&Arc<ImageSet>> {
        match &self.job.samples {
            Samples::Memory { set, .. } => Some(set),
            Samples::Folder { .. } => None,
        }
    }

    /// The image folder read, if the samples come from one.
    pub fn image_folder_source(&self) -> Option<&Arc<ImageFolder>> {
        match &self.job.samples {
            Samples::Folder { folder, .. } => Some(folder),
            Samples::Memory { .. } => None,
        }
    }

    /// Shape of one preprocessed sample: [channels, height, width].
    pub fn shape(&self) -> [usize; 3] {
        self.job.samples.shape()
    }

    /// Number of classes the labels range over.
    pub fn n_classes(&self) -> usize {
        self.job.n_classes
    }

    /// Number of samples per epoch.
    pub fn len(&self) -> usize {
        self.job.samples.len()
    }

    /// Whether an epoch has no sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batches per epoch, the last partial batch included.
    pub fn batches_per_epoch(&self) -> usize {
        self.len().div_ceil(self.config.batch_size)
    }

    /// The sample order of `epoch`: a seeded permutation when shuffling, else `0..len`.
    pub fn order(&self, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.len()).collect();
        if self.config.shuffle {
            // Fisher-Yates written out, so the order depends on rand's integer sampling only.
            let mut rng = seed::order_rng(self.config.seed, epoch as u64);
            for i in (1..order.len()).rev() {
                let j = rng.random_range(0..=i);
                order.swap(i, j);
            }
        }
        order
    }

    /// Batch `index` of `epoch`, built on the calling thread (`None` past the end).
    pub fn batch(&self, epoch: usize, index: usize) -> Option<Result<Batch, DataError>> {
        let order = self.order(epoch);
        (index < self.batches_per_epoch()).then(|| self.job.build(&order, epoch as u64, index))
    }

    /// The batches of `epoch` from batch `start_batch` on, prepared by the configured worker
    /// threads and delivered in order. Dropping the iterator early stops the workers. A batch
    /// is an error when one of its images does not decode (image folders only).
    pub fn epoch(&self, epoch: usize, start_batch: usize) -> EpochIter {
        let total = self.batches_per_epoch();
        let start = start_batch.min(total);
        let shared = Arc::new(Shared {
            job: Arc::clone(&self.job),
            order: self.order(epoch),
            epoch: epoch as u64,
            end: total,
            capacity: match self.config.prefetch {
                0 => (2 * self.config.workers).max(1),
                n => n,
            },
            state: Mutex::new(State {
                next_claim: start,
                next_deliver: start,
                ready: BTreeMap::new(),
                stop: false,
                worker_panicked: false,
            }),
            changed: Condvar::new(),
        });
        let workers = (0..self.config.workers.min(total - start))
            .map(|i| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new().name(format!("dropnas-data-{i}")).spawn(move || worker(&shared))
            })
            // Failing to spawn leaves fewer workers; with none, batches are built inline.
            .filter_map(Result::ok)
            .collect();
        EpochIter { shared, workers }
    }
}

impl Job {
    /// Batch `index` of an epoch with sample order `order`.
    fn build(&self, order: &[usize], epoch: u64, index: usize) -> Result<Batch, DataError> {
        let [c, h, w] = self.samples.shape();
        let lo = index * self.batch_size;
        let hi = (lo + self.batch_size).min(order.len());
        let indices = order[lo..hi].to_vec();
        let per_image = c * h * w;
        let mut images = vec![0f32; indices.len() * per_image];
        let mut labels = Vec::with_capacity(indices.len());
        for (out, &i) in images.chunks_exact_mut(per_image).zip(&indices) {
            let mut rng = seed::sample_rng(self.seed, epoch, i as u64);
            self.samples.fill(i, &mut rng, out)?;
            labels.push(self.samples.label(i) as i64);
        }
        Ok(Batch { images, labels, shape: [indices.len(), c, h, w], indices })
    }
}

/// State shared by an epoch's consumer and workers.
struct Shared {
    job: Arc<Job>,
    order: Vec<usize>,
    epoch: u64,
    /// One past the last batch index.
    end: usize,
    /// Batches that may be claimed ahead of the next one to deliver.
    capacity: usize,
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    /// Next batch index a worker will build.
    next_claim: usize,
    /// Next batch index the consumer will receive.
    next_deliver: usize,
    /// Built batches not yet delivered.
    ready: BTreeMap<usize, Result<Batch, DataError>>,
    stop: bool,
    worker_panicked: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a worker panicked; the state itself stays consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(PoisonError::into_inner)
    }
}

/// Flags a panicking worker so that the consumer fails instead of waiting forever.
struct PanicFlag<'a>(&'a Shared);

impl Drop for PanicFlag<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.lock().worker_panicked = true;
            self.0.changed.notify_all();
        }
    }
}

fn worker(shared: &Shared) {
    let _flag = PanicFlag(shared);
    loop {
        let index = {
            let mut st = shared.lock();
            loop {
                if st.stop || st.next_claim >= shared.end {
                    return;
                }
                if st.next_claim < st.next_deliver + shared.capacity {
                    break;
                }
                st = shared.wait(st);
            }
            st.next_claim += 1;
            st.next_claim - 1
        };
        let batch = shared.job.build(&shared.order, shared.epoch, index);
        shared.lock().ready.insert(index, batch);
        shared.changed.notify_all();
    }
}

/// The batches of one epoch, in order (see [`Loader::epoch`]).
pub struct EpochIter {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Iterator for EpochIter {
    type Item = Result<Batch, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        let shared = &self.shared;
        let mut st = shared.lock();
        let index = st.next_deliver;
        if index >= shared.end {
            return None;
        }
        if self.workers.is_empty() {
            st.next_deliver += 1;
            drop(st);
            return Some(shared.job.build(&shared.order, shared.epoch, index));
        }
        loop {
            if let Some(batch) = st.ready.remove(&index) {
                st.next_deliver += 1;
                drop(st);
                // A slot in the prefetch window opened.
                shared.changed.notify_all();
                return Some(batch);
            }
            assert!(!st.worker_panicked, "a dropnas-data loader thread panicked while building batch {index}");
            st = shared.wait(st);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.shared.end - self.shared.lock().next_deliver.min(self.shared.end);
        (left, Some(left))
    }
}

impl ExactSizeIterator for EpochIter {}

impl Drop for EpochIter {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        for handle in self.workers.drain(..) {
            // A worker's panic was already reported through `next`; nothing more to do here.
            let _ = handle.join();
        }
    }
}
