//! Every kind of bad input gives its own error, naming the file, what was expected and what
//! was found, and never panics.

mod common;

use std::io::Write;
use std::path::Path;

use dropnas_data::{DataError, DatasetKind, LoadOptions, Split, load};

fn offline() -> LoadOptions {
    LoadOptions { download: false, ..LoadOptions::default() }
}

fn idx_images(count: u32, rows: u32, cols: u32, body: usize) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [2051u32, count, rows, cols] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    v.extend(common::bytes(body, 1));
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [2049u32, labels.len() as u32] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    v.extend_from_slice(labels);
    v
}

/// Writes a test split of MNIST (plain files) into `dir`.
fn write_mnist(dir: &Path, images: &[u8], labels: &[u8]) {
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), images).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels).unwrap();
}

fn mnist_test(dir: &Path) -> DataError {
    load(DatasetKind::Mnist, dir, Split::Test, &offline()).unwrap_err()
}

fn cifar10_records(labels: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for &l in labels {
        v.push(l);
        v.extend(common::bytes(3072, u64::from(l)));
    }
    v
}

#[test]
fn missing_folder_names_the_files_and_the_readme() {
    let tmp = common::temp_dir();
    let dir = tmp.path().join("nothing-here");
    for kind in DatasetKind::ALL {
        let err = load(kind, &dir, Split::Train, &offline()).unwrap_err();
        assert!(matches!(err, DataError::NotFound { .. }), "{err}");
        let msg = err.to_string();
        assert!(msg.contains("datasets/README.md"), "{msg}");
        assert!(msg.contains(&dir.display().to_string()), "{msg}");
        // the flag as it is typed, and where the files come from (not a path relative to a checkout)
        assert!(msg.contains("--no-download") && msg.contains("--data-dir"), "{msg}");
        let url = dropnas_data::download::remote_files(kind)[0].url;
        assert!(msg.contains(url), "{msg}");
        let expected_file = match kind {
            DatasetKind::Cifar10 => "data_batch_5.bin",
            DatasetKind::Cifar100 => "train.bin",
            _ => "train-images-idx3-ubyte",
        };
        assert!(msg.contains(expected_file), "{msg}");
    }
    // A partial set of files is still "not found", naming all of them.
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("data_batch_1.bin"), cifar10_records(&[1])).unwrap();
    let err = load(DatasetKind::Cifar10, &dir, Split::Train, &offline()).unwrap_err();
    assert!(err.to_string().contains("data_batch_2.bin"), "{err}");
}

#[test]
fn cifar_size_not_a_multiple_of_the_record() {
    let tmp = common::temp_dir();
    let mut bytes = cifar10_records(&[1, 2]);
    bytes.truncate(3073 * 2 - 100);
    std::fs::write(tmp.path().join("test_batch.bin"), &bytes).unwrap();
    let err = load(DatasetKind::Cifar10, tmp.path(), Split::Test, &offline()).unwrap_err();
    let DataError::BadSize { path, found, expected } = &err else { panic!("{err}") };
    assert!(path.ends_with("test_batch.bin"));
    assert_eq!(*found, 3073 * 2 - 100);
    assert!(expected.contains("3073"), "{err}");
    assert!(err.to_string().contains("test_batch.bin"));

    std::fs::write(tmp.path().join("test_batch.bin"), b"").unwrap();
    let err = load(DatasetKind::Cifar10, tmp.path(), Split::Test, &offline()).unwrap_err();
    assert!(matches!(err, DataError::BadSize { found: 0, .. }), "{err}");

    // CIFAR-100 records are one byte longer: a CIFAR-10 file is rejected.
    std::fs::write(tmp.path().join("test.bin"), cifar10_records(&[1, 2, 3])).unwrap();
    let err = load(DatasetKind::Cifar100, tmp.path(), Split::Test, &offline()).unwrap_err();
    assert!(matches!(err, DataError::BadSize { .. }), "{err}");
    assert!(err.to_string().contains("3074"), "{err}");
}

#[test]
fn cifar_label_out_of_range() {
    let tmp = common::temp_dir();
    std::fs::write(tmp.path().join("test_batch.bin"), cifar10_records(&[1, 10])).unwrap();
    let err = load(DatasetKind::Cifar10, tmp.path(), Split::Test, &offline()).unwrap_err();
    assert!(matches!(err, DataError::LabelOutOfRange { index: 1, label: 10, n_classes: 10, .. }), "{err}");
    assert!(err.to_string().contains("test_batch.bin"));

    // CIFAR-100: coarse byte first (< 20), fine byte second (< 100); both are checked.
    for (coarse, fine, bad, n) in [(20u8, 5u8, 20u8, 20usize), (3, 100, 100, 100)] {
        let mut rec = vec![coarse, fine];
        rec.extend(common::bytes(3072, 2));
        std::fs::write(tmp.path().join("test.bin"), &rec).unwrap();
        let err = load(DatasetKind::Cifar100, tmp.path(), Split::Test, &offline()).unwrap_err();
        assert!(
            matches!(err, DataError::LabelOutOfRange { label, n_classes, .. } if label == bad && n_classes == n),
            "{err}"
        );
    }
}

#[test]
fn idx_wrong_magic_number() {
    let tmp = common::temp_dir();
    // Image and label files swapped.
    write_mnist(tmp.path(), &idx_labels(&[1, 2]), &idx_images(2, 28, 28, 2 * 784));
    let err = mnist_test(tmp.path());
    assert!(matches!(err, DataError::BadMagic { expected: 2051, found: 2049, .. }), "{err}");
    assert!(err.to_string().contains("t10k-images-idx3-ubyte"), "{err}");
    // Not IDX at all (e.g. an HTML error page saved as the file).
    write_mnist(tmp.path(), b"<html>nope</html>", &idx_labels(&[1]));
    assert!(matches!(mnist_test(tmp.path()), DataError::BadMagic { .. }));
    // Shorter than the magic number itself.
    write_mnist(tmp.path(), b"\x00\x00", &idx_labels(&[1]));
    assert!(matches!(mnist_test(tmp.path()), DataError::BadSize { found: 2, .. }));
}

#[test]
fn idx_truncated_body() {
    let tmp = common::temp_dir();
    write_mnist(tmp.path(), &idx_images(3, 28, 28, 2 * 784), &idx_labels(&[1, 2, 3]));
    let err = mnist_test(tmp.path());
    assert!(matches!(err, DataError::BadSize { found, .. } if found == 16 + 2 * 784), "{err}");
    assert!(err.to_string().contains(&(16 + 3 * 784).to_string()), "{err}");

    write_mnist(tmp.path(), &idx_images(2, 28, 28, 2 * 784), &idx_labels(&[1, 2])[..9]);
    assert!(matches!(mnist_test(tmp.path()), DataError::BadSize { found: 9, .. }));
}

#[test]
fn idx_count_mismatch() {
    let tmp = common::temp_dir();
    write_mnist(tmp.path(), &idx_images(2, 28, 28, 2 * 784), &idx_labels(&[1, 2, 3]));
    let err = mnist_test(tmp.path());
    assert!(matches!(err, DataError::CountMismatch { images: 2, labels: 3, .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("t10k-images") && msg.contains("t10k-labels"), "{msg}");
}

#[test]
fn idx_label_out_of_range() {
    let tmp = common::temp_dir();
    write_mnist(tmp.path(), &idx_images(2, 28, 28, 2 * 784), &idx_labels(&[9, 10]));
    let err = mnist_test(tmp.path());
    assert!(matches!(err, DataError::LabelOutOfRange { index: 1, label: 10, .. }), "{err}");
    assert!(err.to_string().contains("t10k-labels-idx1-ubyte"), "{err}");
}

#[test]
fn idx_wrong_image_dimensions() {
    let tmp = common::temp_dir();
    write_mnist(tmp.path(), &idx_images(2, 32, 32, 2 * 1024), &idx_labels(&[1, 2]));
    let err = mnist_test(tmp.path());
    let DataError::BadDimensions { expected, found, .. } = &err else { panic!("{err}") };
    assert_eq!(found, "32x32");
    assert!(expected.contains("28x28"), "{err}");
}

#[test]
fn idx_corrupt_gzip() {
    let tmp = common::temp_dir();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&idx_images(2, 28, 28, 2 * 784)).unwrap();
    let gz = enc.finish().unwrap();
    std::fs::write(tmp.path().join("t10k-images-idx3-ubyte.gz"), &gz[..gz.len() / 2]).unwrap();
    std::fs::write(tmp.path().join("t10k-labels-idx1-ubyte"), idx_labels(&[1, 2])).unwrap();
    let err = mnist_test(tmp.path());
    assert!(matches!(err, DataError::BadGzip { .. }), "{err}");
    assert!(err.to_string().contains("t10k-images-idx3-ubyte.gz"), "{err}");
    // The complete gzip file is read.
    std::fs::write(tmp.path().join("t10k-images-idx3-ubyte.gz"), &gz).unwrap();
    assert_eq!(load(DatasetKind::Mnist, tmp.path(), Split::Test, &offline()).unwrap().len(), 2);
}

#[test]
fn unknown_dataset_name() {
    let err = "imagenet".parse::<DatasetKind>().unwrap_err();
    assert!(matches!(err, DataError::UnknownDataset(_)));
    assert!(err.to_string().contains("fashion-mnist"));
    for kind in DatasetKind::ALL {
        assert_eq!(kind.name().parse::<DatasetKind>().unwrap(), kind);
    }
    assert_eq!("CIFAR-10".parse::<DatasetKind>().unwrap(), DatasetKind::Cifar10);
}
