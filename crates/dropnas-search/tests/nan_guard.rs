//! A loss that becomes NaN stops the search with a clear error and leaves the last good
//! checkpoint on disk, readable and untouched.

mod common;

use burn::backend::{Autodiff, Flex};
use dropnas_data::DatasetKind;
use dropnas_search::{SearchConfig, SearchSettings, SearchTask};
use dropnas_train::run::checkpoint::Checkpoint;
use dropnas_train::run::config::Control;
use dropnas_train::run::{RunError, RunRequest, Start, run};
use std::path::Path;

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint() {
    let root = std::env::temp_dir().join(format!("dropnas-nan-{}", std::process::id()));
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    common::write_idx(&data, 64);
    let settings = SearchSettings {
        layers: 1,
        init_channels: 2,
        batch_size: 8,
        epochs: 3,
        // no clipping, the largest learning rate and a large decay: each decay step multiplies
        // the weights by about -150, and the decay term overflows within the first epochs
        w_lr: 1.0,
        w_grad_clip: 1e30,
        w_weight_decay: 100.0,
        ..SearchSettings::default()
    };
    let control =
        Control { data_dir: Some(data), no_download: true, workers: 0, checkpoint_every: 1, ..Control::default() };
    let req = RunRequest {
        name: "nan".parse().unwrap(),
        out_dir: root.join("searchs"),
        start: Start::Fresh(SearchConfig::new(DatasetKind::Mnist.into(), settings)),
        control,
        device_name: "cpu".into(),
        host_memory: false,
    };
    let err =
        run::<Autodiff<Flex>, SearchTask<_>>(req, Default::default(), &mut |_| {}).expect_err("the loss must blow up");
    let RunError::NonFinite { value, epoch, step, checkpoint, .. } = &err else { panic!("unexpected error: {err}") };
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
