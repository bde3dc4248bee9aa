//! Download on first use, like torchvision's `download=True`: fetch the official archives,
//! check their published MD5, unpack them into the data dir.
//!
//! The network part ([`download`]) is kept apart from the part that can be tested offline
//! ([`verify_and_unpack`]), which takes any local archive.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use std::time::Duration;

use md5::{Digest, Md5};

use crate::dataset::DatasetKind;
use crate::error::DataError;

/// One file published for a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteFile {
    /// Full address.
    pub url: &'static str,
    /// Name the file is saved under.
    pub file_name: &'static str,
    /// Published MD5 of the file as downloaded (hex).
    pub md5: &'static str,
}

const CIFAR10: [RemoteFile; 1] = [RemoteFile {
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    file_name: "cifar-10-binary.tar.gz",
    md5: "c32a1d4ab5d03f1284b67883e8d87530",
}];

const CIFAR100: [RemoteFile; 1] = [RemoteFile {
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    file_name: "cifar-100-binary.tar.gz",
    md5: "03b5dce01913d631647c71ecec9e9cb8",
}];

// torchvision's MNIST mirror: the original yann.lecun.com site now refuses most downloads.
const MNIST: [RemoteFile; 4] = [
    RemoteFile {
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
        file_name: "train-images-idx3-ubyte.gz",
        md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    },
    RemoteFile {
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
        file_name: "train-labels-idx1-ubyte.gz",
        md5: "d53e105ee54ea40749a09fcbcd1e9432",
    },
    RemoteFile {
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
        file_name: "t10k-images-idx3-ubyte.gz",
        md5: "9fb629c4189551a2d022fa330f9573f3",
    },
    RemoteFile {
        url: "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
        file_name: "t10k-labels-idx1-ubyte.gz",
        md5: "ec29112dd5afa0611ce80d1b7f02629c",
    },
];

// The S3 website endpoint only speaks plain HTTP; the MD5 check is what protects the data.
const FASHION_MNIST: [RemoteFile; 4] = [
    RemoteFile {
        url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-images-idx3-ubyte.gz",
        file_name: "train-images-idx3-ubyte.gz",
        md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    },
    RemoteFile {
        url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/train-labels-idx1-ubyte.gz",
        file_name: "train-labels-idx1-ubyte.gz",
        md5: "25c81989df183df01b3e8a0aad5dffbe",
    },
    RemoteFile {
        url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-images-idx3-ubyte.gz",
        file_name: "t10k-images-idx3-ubyte.gz",
        md5: "bef4ecab320f06d8554ea6380940ec79",
    },
    RemoteFile {
        url: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz",
        file_name: "t10k-labels-idx1-ubyte.gz",
        md5: "bb300cfdad3c16e7a12a480ee83cd310",
    },
];

/// The files published for a data set, with their MD5s.
pub fn remote_files(kind: DatasetKind) -> &'static [RemoteFile] {
    match kind {
        DatasetKind::Cifar10 => &CIFAR10,
        DatasetKind::Cifar100 => &CIFAR100,
        DatasetKind::Mnist => &MNIST,
        DatasetKind::FashionMnist => &FASHION_MNIST,
    }
}

/// MD5 of a file, as lowercase hex.
pub fn md5_hex(path: &Path) -> Result<String, DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(|e| DataError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Fails with [`DataError::Checksum`] unless the file's MD5 is `expected` (hex, any case).
pub fn verify_md5(path: &Path, expected: &str) -> Result<(), DataError> {
    let found = md5_hex(path)?;
    if found.eq_ignore_ascii_case(expected.trim()) {
        Ok(())
    } else {
        Err(DataError::Checksum { path: path.to_path_buf(), expected: expected.to_ascii_lowercase(), found })
    }
}

/// Checks `archive` against `expected_md5`, then puts its content into `dest`:
/// a `.tar.gz` / `.tgz` is unpacked there (its own folder, e.g. `cifar-10-batches-bin/`,
/// included); any other file (the gzipped IDX files, which the reader opens as they are) is
/// copied there under its own name. Nothing is written when the checksum is wrong.
pub fn verify_and_unpack(archive: &Path, expected_md5: &str, dest: &Path) -> Result<(), DataError> {
    verify_md5(archive, expected_md5)?;
    std::fs::create_dir_all(dest).map_err(|e| DataError::io(dest, e))?;
    let name = archive.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
        let file = File::open(archive).map_err(|e| DataError::io(archive, e))?;
        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
        // `unpack` refuses entries that would land outside `dest` (absolute paths, "..").
        tar.unpack(dest).map_err(|e| DataError::BadGzip {
            path: archive.to_path_buf(),
            reason: format!("unpacking into {} failed: {e}", dest.display()),
        })?;
    } else {
        let target = dest.join(&name);
        if target != archive {
            std::fs::copy(archive, &target).map_err(|e| DataError::io(&target, e))?;
        }
    }
    Ok(())
}

/// Downloads, checks and unpacks every file of `kind` into `dir` (created if needed), showing a
/// progress bar on a terminal. Archives are fetched into `dir/.download/` and removed once
/// unpacked; a file that fails its checksum is deleted so that the next run fetches it again.
pub fn download(kind: DatasetKind, dir: &Path) -> Result<(), DataError> {
    download_files(kind, remote_files(kind), dir)
}

/// [`download`] from an explicit list of files (tests point it at a local server).
fn download_files(kind: DatasetKind, files: &[RemoteFile], dir: &Path) -> Result<(), DataError> {
    let staging = dir.join(".download");
    std::fs::create_dir_all(&staging).map_err(|e| DataError::io(&staging, e))?;
    let agent: ureq::Agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(30)))
            // A server that never answers should fail, not hang a training job forever. The body
            // has no overall limit: a 170 MB archive on a slow link may rightly take long.
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .build(),
    );
    for file in files {
        let part = staging.join(file.file_name);
        tracing::info!(url = file.url, dest = %dir.display(), "downloading {}", kind.display_name());
        fetch(&agent, file, &part, dir, kind)?;
        let outcome = verify_and_unpack(&part, file.md5, dir);
        // The archive is useless after unpacking (or if corrupt); keeping it would double disk use.
        let _ = std::fs::remove_file(&part);
        outcome?;
    }
    let _ = std::fs::remove_dir(&staging);
    Ok(())
}

/// Streams one URL into `dest` with a progress bar.
fn fetch(agent: &ureq::Agent, file: &RemoteFile, dest: &Path, dir: &Path, kind: DatasetKind) -> Result<(), DataError> {
    let fail = |reason: String| DataError::Download {
        url: file.url.to_string(),
        reason,
        dir: dir.to_path_buf(),
        expected: expected_files(kind),
    };
    let mut response = agent.get(file.url).call().map_err(|e| fail(e.to_string()))?;
    let body = response.body_mut();
    let bar = match body.content_length() {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::no_length(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(file.file_name);
    let mut out = File::create(dest).map_err(|e| DataError::io(dest, e))?;
    let copied = io::copy(&mut bar.wrap_read(body.as_reader()), &mut out).and_then(|n| out.flush().map(|()| n));
    bar.finish_and_clear();
    match copied {
        Ok(_) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(dest);
            Err(fail(e.to_string()))
        }
    }
}

/// What a user must put into the data dir by hand, in words.
fn expected_files(kind: DatasetKind) -> String {
    match kind {
        DatasetKind::Cifar10 => "the folder cifar-10-batches-bin/ unpacked from cifar-10-binary.tar.gz".into(),
        DatasetKind::Cifar100 => "the folder cifar-100-binary/ unpacked from cifar-100-binary.tar.gz".into(),
        DatasetKind::Mnist | DatasetKind::FashionMnist => {
            remote_files(kind).iter().map(|f| f.file_name).collect::<Vec<_>>().join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    use super::*;

    /// Serves `body` once over HTTP on localhost; returns the base URL.
    fn serve_once(body: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind localhost");
        let addr = listener.local_addr().expect("local address");
        std::thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                // Skip the request up to its blank line.
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let mut stream = reader.into_inner();
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            }
        });
        format!("http://{addr}")
    }

    fn tar_gz(name: &str, content: &[u8]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, content).expect("tar entry");
        tar.into_inner().expect("tar").finish().expect("gzip")
    }

    fn md5_of(bytes: &[u8]) -> String {
        Md5::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn leak(s: String) -> &'static str {
        Box::leak(s.into_boxed_str())
    }

    #[test]
    fn downloads_checks_and_unpacks_over_http() {
        let archive = tar_gz("cifar-10-batches-bin/test_batch.bin", b"payload");
        let md5 = leak(md5_of(&archive));
        let url = leak(format!("{}/cifar-10-binary.tar.gz", serve_once(archive)));
        let tmp = tempfile::tempdir().expect("temp dir");
        let file = RemoteFile { url, file_name: "cifar-10-binary.tar.gz", md5 };
        download_files(DatasetKind::Cifar10, &[file], tmp.path()).expect("download");
        let unpacked = tmp.path().join("cifar-10-batches-bin/test_batch.bin");
        assert_eq!(std::fs::read(unpacked).expect("unpacked file"), b"payload");
        assert!(!tmp.path().join(".download").exists(), "staging folder removed");
    }

    #[test]
    fn a_corrupt_download_is_rejected_and_deleted() {
        let url = leak(format!("{}/t10k-labels-idx1-ubyte.gz", serve_once(b"truncated".to_vec())));
        let tmp = tempfile::tempdir().expect("temp dir");
        let file = RemoteFile { url, file_name: "t10k-labels-idx1-ubyte.gz", md5: MNIST[3].md5 };
        let err = download_files(DatasetKind::Mnist, &[file], tmp.path()).expect_err("bad md5");
        assert!(matches!(err, DataError::Checksum { .. }), "{err}");
        assert!(!tmp.path().join("t10k-labels-idx1-ubyte.gz").exists());
        assert!(!tmp.path().join(".download/t10k-labels-idx1-ubyte.gz").exists());
    }

    #[test]
    fn an_unreachable_server_says_where_to_put_the_files() {
        // Bind then drop a listener: its port now refuses connections.
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let url = leak(format!("http://127.0.0.1:{port}/train-images-idx3-ubyte.gz"));
        let tmp = tempfile::tempdir().expect("temp dir");
        let file = RemoteFile { url, ..MNIST[0] };
        let err = download_files(DatasetKind::Mnist, &[file], tmp.path()).expect_err("offline");
        let msg = err.to_string();
        assert!(matches!(err, DataError::Download { .. }), "{msg}");
        for needle in ["train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "datasets/README.md"] {
            assert!(msg.contains(needle), "{needle} missing from: {msg}");
        }
        assert!(msg.contains(&tmp.path().display().to_string()), "{msg}");
    }
}
