//! The loader: reproducible whatever the thread count, resumable, complete, in order.

mod common;

use std::sync::Arc;

use burn::backend::Flex;
use burn::data::dataset::Dataset;
use dropnas_data::{Augment, Batch, DatasetKind, ImageSet, Loader, LoaderConfig};

/// 103 CIFAR-shaped random images: batches of 10 leave a partial batch of 3.
fn synthetic(n: usize) -> Arc<ImageSet> {
    let labels = common::bytes(n, 5).into_iter().map(|b| b % 10).collect();
    Arc::new(ImageSet::new(3, 32, 32, 10, common::bytes(n * 3072, 11), labels).unwrap())
}

fn loader(set: &Arc<ImageSet>, augment: Augment, config: LoaderConfig) -> Loader {
    Loader::new(Arc::clone(set), augment, config).unwrap()
}

fn train_config(workers: usize) -> LoaderConfig {
    LoaderConfig::train(10, 42, workers)
}

fn collect(l: &Loader, epoch: usize, start: usize) -> Vec<Batch> {
    l.epoch(epoch, start).collect::<Result<_, _>>().unwrap()
}

#[test]
fn same_seed_same_batches_on_any_number_of_threads() {
    let set = synthetic(103);
    let reference = collect(&loader(&set, Augment::train(DatasetKind::Cifar10, 16), train_config(0)), 3, 0);
    assert_eq!(reference.len(), 11);
    for workers in [1, 2, 4] {
        let l = loader(&set, Augment::train(DatasetKind::Cifar10, 16), train_config(workers));
        assert_eq!(collect(&l, 3, 0), reference, "{workers} workers");
        // A tight prefetch window must not change anything either.
        let tight = LoaderConfig { prefetch: 1, ..train_config(workers) };
        let l = loader(&set, Augment::train(DatasetKind::Cifar10, 16), tight);
        assert_eq!(collect(&l, 3, 0), reference, "{workers} workers, prefetch 1");
    }
}

#[test]
fn an_epoch_covers_every_sample_once_and_keeps_the_partial_batch() {
    let set = synthetic(103);
    let l = loader(&set, Augment::train(DatasetKind::Cifar10, 0), train_config(2));
    assert_eq!(l.batches_per_epoch(), 11);
    let batches = collect(&l, 0, 0);
    let sizes: Vec<usize> = batches.iter().map(Batch::len).collect();
    assert_eq!(sizes, [10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 3]);
    let mut seen: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(seen, l.order(0));
    seen.sort_unstable();
    assert_eq!(seen, (0..103).collect::<Vec<_>>());
    for b in &batches {
        assert_eq!(b.shape, [b.len(), 3, 32, 32]);
        assert_eq!(b.images.len(), b.len() * 3072);
        for (&i, &label) in b.indices.iter().zip(&b.labels) {
            assert_eq!(label, set.label(i) as i64);
        }
    }
}

#[test]
fn different_epochs_differ() {
    let set = synthetic(103);
    let l = loader(&set, Augment::train(DatasetKind::Cifar10, 0), train_config(2));
    assert_ne!(l.order(0), l.order(1));
    let (e0, e1) = (collect(&l, 0, 0), collect(&l, 1, 0));
    assert_ne!(e0[0].indices, e1[0].indices);
    // The same sample is augmented differently in another epoch.
    let pick = |batches: &[Batch], i: usize| -> Vec<f32> {
        let b = batches.iter().find(|b| b.indices.contains(&i)).unwrap();
        let k = b.indices.iter().position(|&j| j == i).unwrap();
        b.images[k * 3072..(k + 1) * 3072].to_vec()
    };
    assert!((0..10).any(|i| pick(&e0, i) != pick(&e1, i)));
    // Another seed gives another order.
    let other = loader(&set, Augment::train(DatasetKind::Cifar10, 0), LoaderConfig::train(10, 43, 2));
    assert_ne!(other.order(0), l.order(0));
}

#[test]
fn starting_at_batch_k_resumes_the_epoch() {
    let set = synthetic(103);
    for workers in [0, 1, 3] {
        let l = loader(&set, Augment::train(DatasetKind::Cifar10, 16), train_config(workers));
        let full = collect(&l, 5, 0);
        for k in [0, 1, 4, 10, 11, 20] {
            let resumed = l.epoch(5, k);
            assert_eq!(resumed.len(), 11usize.saturating_sub(k));
            assert_eq!(
                resumed.collect::<Result<Vec<_>, _>>().unwrap(),
                full[k.min(11)..],
                "k = {k}, {workers} workers"
            );
        }
        assert_eq!(l.batch(5, 7).unwrap().unwrap(), full[7]);
        assert!(l.batch(5, 11).is_none());
    }
}

#[test]
fn eval_iterates_in_file_order_without_randomness() {
    let set = synthetic(25);
    let a = loader(&set, Augment::eval(DatasetKind::Cifar10), LoaderConfig::eval(8, 2));
    let batches = collect(&a, 0, 0);
    let indices: Vec<usize> = batches.iter().flat_map(|b| b.indices.clone()).collect();
    assert_eq!(indices, (0..25).collect::<Vec<_>>());
    assert_eq!(batches.last().map(Batch::len), Some(1));
    assert_eq!(collect(&a, 7, 0), batches, "evaluation does not depend on the epoch");
}

#[test]
fn dropping_an_epoch_early_stops_its_workers() {
    let set = synthetic(103);
    let l = loader(&set, Augment::train(DatasetKind::Cifar10, 0), LoaderConfig { prefetch: 2, ..train_config(4) });
    let mut it = l.epoch(0, 0);
    assert!(it.next().is_some());
    drop(it); // must return (joins the workers) rather than hang
}

#[test]
fn invalid_configurations_are_errors() {
    let set = synthetic(4);
    assert!(Loader::new(Arc::clone(&set), Augment::eval(DatasetKind::Cifar10), LoaderConfig::eval(0, 1)).is_err());
    assert!(Loader::new(set, Augment::eval(DatasetKind::Mnist), LoaderConfig::eval(2, 1)).is_err());
}

#[test]
fn batches_become_burn_tensors() {
    let set = synthetic(7);
    let l = loader(&set, Augment::eval(DatasetKind::Cifar10), LoaderConfig::eval(4, 0));
    let batch = l.batch(0, 1).unwrap().unwrap();
    let device = Default::default();
    let (images, labels) = batch.to_tensors::<Flex>(&device);
    assert_eq!(images.dims(), [3, 3, 32, 32]);
    assert_eq!(labels.dims(), [3]);
    let back: Vec<f32> = images.into_data().to_vec().unwrap();
    assert_eq!(back, batch.images);
    let back: Vec<i64> = labels.into_data().convert::<i64>().to_vec().unwrap();
    assert_eq!(back, batch.labels);
}

#[test]
fn image_set_is_a_burn_dataset() {
    let set = synthetic(3);
    let d: &dyn Dataset<dropnas_data::ImageItem> = set.as_ref();
    assert_eq!(d.len(), 3);
    let item = d.get(2).unwrap();
    assert_eq!(item.image, set.image(2));
    assert_eq!(item.label, set.label(2));
    assert!(d.get(3).is_none());
}
