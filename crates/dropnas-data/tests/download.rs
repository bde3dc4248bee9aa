//! The offline half of downloading: checksum verification and unpacking of local archives.

mod common;

use std::path::Path;

use dropnas_data::download::{md5_hex, remote_files, verify_and_unpack};
use dropnas_data::{DataError, DatasetKind, LoadOptions, Split, load};

/// Writes `archive.tar.gz` holding `cifar-10-batches-bin/test_batch.bin` (two records).
fn tiny_cifar_archive(dir: &Path) -> std::path::PathBuf {
    let mut records = Vec::new();
    for label in [4u8, 7] {
        records.push(label);
        records.extend(common::bytes(3072, u64::from(label)));
    }
    let path = dir.join("cifar-10-binary.tar.gz");
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut header = tar::Header::new_gnu();
    header.set_size(records.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, "cifar-10-batches-bin/test_batch.bin", records.as_slice()).unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    path
}

#[test]
fn md5_of_known_content() {
    let tmp = common::temp_dir();
    let p = tmp.path().join("abc");
    std::fs::write(&p, b"abc").unwrap();
    assert_eq!(md5_hex(&p).unwrap(), "900150983cd24fb0d6963f7d28e17f72");
}

#[test]
fn good_checksum_unpacks_into_a_readable_data_dir() {
    let tmp = common::temp_dir();
    let archive = tiny_cifar_archive(tmp.path());
    let md5 = md5_hex(&archive).unwrap();
    let data_dir = tmp.path().join("datasets").join("cifar10");
    verify_and_unpack(&archive, &md5.to_uppercase(), &data_dir).unwrap();
    let set =
        load(DatasetKind::Cifar10, &data_dir, Split::Test, &LoadOptions { download: false, ..LoadOptions::default() })
            .unwrap();
    assert_eq!(set.labels(), &[4, 7]);
}

#[test]
fn bad_checksum_is_an_error_and_writes_nothing() {
    let tmp = common::temp_dir();
    let archive = tiny_cifar_archive(tmp.path());
    let dest = tmp.path().join("dest");
    let err = verify_and_unpack(&archive, remote_files(DatasetKind::Cifar10)[0].md5, &dest).unwrap_err();
    let DataError::Checksum { expected, found, .. } = &err else { panic!("{err}") };
    assert_eq!(expected, "c32a1d4ab5d03f1284b67883e8d87530");
    assert_eq!(found, &md5_hex(&archive).unwrap());
    let msg = err.to_string();
    assert!(msg.contains("cifar-10-binary.tar.gz") && msg.contains("datasets/README.md"), "{msg}");
    assert!(!dest.exists());
}

#[test]
fn gzipped_idx_files_are_kept_as_they_are() {
    let tmp = common::temp_dir();
    let src = tmp.path().join("t10k-labels-idx1-ubyte.gz");
    std::fs::write(&src, b"any bytes").unwrap();
    let dest = tmp.path().join("mnist");
    verify_and_unpack(&src, &md5_hex(&src).unwrap(), &dest).unwrap();
    assert_eq!(std::fs::read(dest.join("t10k-labels-idx1-ubyte.gz")).unwrap(), b"any bytes");
}

#[test]
fn every_kind_has_official_sources_with_md5s() {
    for kind in DatasetKind::ALL {
        let files = remote_files(kind);
        assert!(!files.is_empty());
        for f in files {
            assert!(f.url.ends_with(f.file_name), "{f:?}");
            assert!(f.md5.len() == 32 && f.md5.chars().all(|c| c.is_ascii_hexdigit()), "{f:?}");
        }
    }
}
