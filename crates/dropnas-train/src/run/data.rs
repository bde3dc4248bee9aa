//! A run's data: the training split (and the test split for runs that test), opened into
//! loaders, with the identity of its files checked against the known official files and, on
//! resume, against what the run started with.

use crate::run::config::{Basics, Control};
use dropnas_data::identity::check_files;
use dropnas_data::{
    DataError, DataIdentity, DataSource, Dataset, LoadOptions, LoaderConfig, OpenedSplit, Split, split_paths,
};

/// The splits a run reads.
pub struct RunData {
    pub dataset: Dataset,
    /// Where the images come from (a built-in data set, or an image folder with its preprocessing).
    pub source: DataSource,
    /// The training split, batched with the run's batch size, seed and `--workers`.
    pub train: OpenedSplit,
    /// For runs that test after every epoch.
    pub test: Option<OpenedSplit>,
    pub identity: DataIdentity,
    /// Files that are not the official ones, images skipped (for the log).
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

impl RunData {
    /// `[channels, height, width]` of the network input.
    pub fn input_shape(&self) -> [usize; 3] {
        let size = self.source.input_size();
        [self.source.input_channels(), size, size]
    }

    /// Bytes the data sets hold in memory (the built-in ones are read whole; an image folder's
    /// images are decoded as the batches are made).
    pub fn resident_bytes(&self) -> u64 {
        let held = |s: &OpenedSplit| s.loader.image_set().map_or(0, |set| set.pixels().len() as u64);
        held(&self.train) + self.test.as_ref().map_or(0, held)
    }
}

/// What the run asks of its data.
pub struct DataRequest<'a> {
    pub basics: &'a Basics,
    pub max_test_samples: Option<usize>,
    /// Cutout of the training augmentation (0: none).
    pub cutout: usize,
    pub with_test: bool,
}

/// Opens the splits (downloading a built-in data set first when allowed) and identifies them.
pub fn load_run_data(req: &DataRequest<'_>, control: &Control) -> Result<RunData, DataError> {
    let b = req.basics;
    let dir = match (control.data_dir.clone(), b.dataset) {
        (Some(dir), _) => dir,
        (None, Dataset::ImageFolder) => {
            return Err(DataError::InvalidOption(
                "--dataset imagefolder needs --data-dir DIR, the folder that holds train/CLASS/*.jpg and val/CLASS/*.jpg"
                    .into(),
            ));
        }
        (None, dataset) => dataset.default_dir(),
    };
    let source = DataSource::new(b.dataset, b.folder.as_ref())?;
    let opts = LoadOptions {
        max_train_samples: b.max_train_samples,
        max_test_samples: req.max_test_samples,
        download: !control.no_download,
        ..LoadOptions::default()
    };
    let train = source.train(&dir, &opts, req.cutout, LoaderConfig::train(b.batch_size, b.seed, control.workers))?;
    let test = if req.with_test {
        let config = LoaderConfig::eval(b.batch_size, control.workers);
        Some(source.test(&dir, &opts, config, train.classes.as_deref())?)
    } else {
        None
    };
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    match b.dataset {
        Dataset::Builtin(kind) => {
            let splits: &[Split] = if req.with_test { &[Split::Train, Split::Test] } else { &[Split::Train] };
            for &split in splits {
                // `source` opened them, so the files are there
                let paths = split_paths(kind, &dir, split).unwrap_or_default();
                let (digests, w) = check_files(kind, split, &paths)?;
                files.extend(digests);
                warnings.extend(w);
            }
        }
        Dataset::ImageFolder => {
            files.extend(train.listing.clone());
            files.extend(test.as_ref().and_then(|t| t.listing.clone()));
        }
    }
    let notes = train.notes.iter().chain(test.iter().flat_map(|t| &t.notes)).cloned().collect();
    let identity = DataIdentity { dataset: b.dataset.name().into(), files };
    Ok(RunData { dataset: b.dataset, source, train, test, identity, notes, warnings })
}
