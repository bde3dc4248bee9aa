//! Readers against the real files in `../shared/data` (see its README.md for the known facts).

mod common;

use std::io::Read;

use dropnas_data::{DatasetKind, ImageSet, LoadOptions, Split, load};

fn offline() -> LoadOptions {
    LoadOptions { download: false, ..LoadOptions::default() }
}

#[test]
fn mnist_label_counts_per_class() {
    let Some(dir) = common::shared_data("mnist") else {
        return;
    };
    let train = load(DatasetKind::Mnist, &dir, Split::Train, &offline()).unwrap();
    let test = load(DatasetKind::Mnist, &dir, Split::Test, &offline()).unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!((train.channels(), train.height(), train.width()), (1, 28, 28));
    assert_eq!(train.class_counts(), [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]);
    assert_eq!(test.class_counts(), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]);
}

#[test]
fn mnist_gzipped_and_plain_read_the_same() {
    let Some(dir) = common::shared_data("mnist") else {
        return;
    };
    let tmp = common::temp_dir();
    for name in ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
        let gz = std::fs::read(dir.join(format!("{name}.gz"))).unwrap();
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(gz.as_slice()).read_to_end(&mut plain).unwrap();
        std::fs::write(tmp.path().join(name), plain).unwrap();
    }
    let from_gz = load(DatasetKind::Mnist, &dir, Split::Test, &offline()).unwrap();
    let from_plain = load(DatasetKind::Mnist, tmp.path(), Split::Test, &offline()).unwrap();
    assert_eq!(from_gz, from_plain);
}

#[test]
fn max_samples_keeps_the_first_images() {
    let Some(dir) = common::shared_data("mnist") else {
        return;
    };
    let opts = LoadOptions { max_test_samples: Some(100), max_train_samples: Some(5), ..offline() };
    let full = load(DatasetKind::Mnist, &dir, Split::Test, &offline()).unwrap();
    let some = load(DatasetKind::Mnist, &dir, Split::Test, &opts).unwrap();
    assert_eq!(some.len(), 100);
    assert_eq!(some.labels(), &full.labels()[..100]);
    assert_eq!(some.pixels(), &full.pixels()[..100 * 784]);
    // Fashion-MNIST shares the reader; the same files stand in for it here.
    let fashion = load(DatasetKind::FashionMnist, &dir, Split::Train, &opts).unwrap();
    assert_eq!(fashion.len(), 5);
}

fn check_cifar10(set: &ImageSet) {
    assert_eq!(set.len(), 20);
    assert_eq!((set.channels(), set.height(), set.width()), (3, 32, 32));
    assert_eq!(&set.labels()[..10], &[3, 8, 8, 0, 6, 6, 1, 6, 3, 1]);
    assert_eq!(&set.image(0)[..6], &[158, 159, 165, 166, 160, 156]);
}

#[test]
fn cifar10_labels_and_red_plane() {
    let Some(dir) = common::shared_data("cifar-10-sample") else {
        return;
    };
    let test = load(DatasetKind::Cifar10, &dir, Split::Test, &offline()).unwrap();
    check_cifar10(&test);
    // The sample's data_batch_1..5 hold the same 20 images, 4 per file, in order.
    let train = load(DatasetKind::Cifar10, &dir, Split::Train, &offline()).unwrap();
    assert_eq!(train, test);
    // Files directly in the data dir work as well as under cifar-10-batches-bin/.
    let direct = dir.join("cifar-10-batches-bin");
    check_cifar10(&load(DatasetKind::Cifar10, &direct, Split::Test, &offline()).unwrap());
}

#[test]
fn cifar100_fine_and_coarse_labels() {
    let Some(dir) = common::shared_data("cifar-100-sample") else {
        return;
    };
    // Expected values read independently from the file with:
    // python3 -c "d=open('cifar-100-binary/test.bin','rb').read(); n=len(d)//3074; \
    //   print([d[i*3074] for i in range(n)], [d[i*3074+1] for i in range(n)], list(d[2:8]))"
    let coarse = [10, 10, 0, 4, 10, 2, 11, 7, 10, 4, 10, 12, 19, 19, 5, 8, 2, 8, 2, 4];
    let fine = [49, 33, 72, 51, 71, 92, 15, 14, 23, 0, 71, 75, 81, 69, 40, 43, 92, 97, 70, 53];
    let red = [199, 196, 195, 195, 196, 197];

    let test = load(DatasetKind::Cifar100, &dir, Split::Test, &offline()).unwrap();
    assert_eq!(test.labels(), &fine);
    assert_eq!(test.n_classes(), 100);
    assert_eq!(&test.image(0)[..6], &red);

    let opts = LoadOptions { coarse_labels: true, ..offline() };
    let direct = dir.join("cifar-100-binary");
    let coarse_set = load(DatasetKind::Cifar100, &direct, Split::Train, &opts).unwrap();
    assert_eq!(coarse_set.labels(), &coarse);
    assert_eq!(coarse_set.n_classes(), 20);
    assert_eq!(coarse_set.pixels(), test.pixels());
}
