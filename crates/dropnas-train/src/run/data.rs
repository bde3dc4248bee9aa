//! A run's data: the training set (and the test set for retraining) read once, with the
//! identity of its files checked against the known official files and, on resume, against
//! what the run started with.

use crate::run::config::Control;
use dropnas_data::identity::check_files;
use dropnas_data::{DataError, DataIdentity, DatasetKind, ImageSet, LoadOptions, Split, load, split_paths};
use std::path::Path;
use std::sync::Arc;

/// The splits a run reads.
pub struct RunData {
    pub kind: DatasetKind,
    pub train: Arc<ImageSet>,
    /// For runs that test after every epoch.
    pub test: Option<Arc<ImageSet>>,
    pub identity: DataIdentity,
    /// Files that are not the official ones (for the log).
    pub warnings: Vec<String>,
}

/// Reads the splits (downloading them first when allowed) and digests their files.
pub fn load_run_data(
    kind: DatasetKind,
    control: &Control,
    max_train: Option<usize>,
    max_test: Option<usize>,
    with_test: bool,
) -> Result<RunData, DataError> {
    let dir = control.data_dir(kind);
    let opts = LoadOptions {
        max_train_samples: max_train,
        max_test_samples: max_test,
        download: !control.no_download,
        ..LoadOptions::default()
    };
    let train = Arc::new(load(kind, &dir, Split::Train, &opts)?);
    let test = if with_test { Some(Arc::new(load(kind, &dir, Split::Test, &opts)?)) } else { None };
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    let splits: &[Split] = if with_test { &[Split::Train, Split::Test] } else { &[Split::Train] };
    for &split in splits {
        let (digests, w) = check_files(kind, split, &paths(kind, &dir, split))?;
        files.extend(digests);
        warnings.extend(w);
    }
    Ok(RunData { kind, train, test, identity: DataIdentity { dataset: kind.name().into(), files }, warnings })
}

fn paths(kind: DatasetKind, dir: &Path, split: Split) -> Vec<std::path::PathBuf> {
    // `load` succeeded, so the files are there
    split_paths(kind, dir, split).unwrap_or_default()
}
