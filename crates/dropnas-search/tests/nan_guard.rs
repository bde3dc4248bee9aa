//! A loss that becomes NaN stops the search with a clear error and leaves the last good
//! checkpoint on disk, readable and untouched.

use burn::backend::{Autodiff, Flex};
use dropnas_search::{SearchConfig, SearchError, run_search};
use dropnas_train::checkpoint::Checkpoint;
use std::path::Path;

/// A small MNIST-shaped training set in IDX format (what `dropnas-data` reads).
fn write_idx(dir: &Path, n: usize) {
    let mut images = Vec::new();
    images.extend(2051u32.to_be_bytes());
    images.extend((n as u32).to_be_bytes());
    images.extend(28u32.to_be_bytes());
    images.extend(28u32.to_be_bytes());
    images.extend((0..n * 784).map(|i| ((i * 2654435761usize) >> 13) as u8));
    let mut labels = Vec::new();
    labels.extend(2049u32.to_be_bytes());
    labels.extend((n as u32).to_be_bytes());
    labels.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join("train-images-idx3-ubyte"), images).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels).unwrap();
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let root = std::env::temp_dir().join(format!("dropnas-nan-{}", std::process::id()));
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    write_idx(&data, 64);
    let mut cfg = SearchConfig::new("nan", "mnist");
    cfg.data_dir = data;
    cfg.download = false;
    cfg.out_dir = root.join("searchs");
    cfg.layers = 1;
    cfg.init_channels = 2;
    cfg.batch_size = 8;
    cfg.epochs = 3;
    cfg.workers = 0;
    cfg.checkpoint_every = 1;
    // a momentum this large makes the weights, then the loss, blow up within a few steps
    cfg.w_momentum = 1e30;
    let err =
        run_search::<Autodiff<Flex>>(cfg, Default::default(), false, &mut |_| {}).expect_err("the loss must blow up");
    let SearchError::NonFinite { value, epoch, step, checkpoint } = &err else { panic!("unexpected error: {err}") };
    assert!(!value.is_finite());
    let msg = err.to_string();
    assert!(msg.contains("last good checkpoint") && msg.contains(checkpoint.as_str()), "{msg}");
    // the checkpoint on disk is the one written after the previous step, intact
    let ckpt = Checkpoint::load(Path::new(checkpoint)).expect("readable checkpoint");
    let global = ckpt.header["global_step"].as_u64().unwrap() as usize;
    assert!(global >= 1, "at least one good step was checkpointed");
    assert_eq!(ckpt.header["epoch"].as_u64().unwrap() as usize + 1, *epoch, "checkpoint of the failing epoch");
    assert_eq!(ckpt.header["step"].as_u64().unwrap() as usize, *step, "the step before the failure");
    std::fs::remove_dir_all(&root).unwrap();
}
