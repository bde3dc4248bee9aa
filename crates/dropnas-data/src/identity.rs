//! What a data set's files are: their MD5 (of the content, decompressed for `.gz` files),
//! computed on first use and cached, compared with the official files' where they are known.
//!
//! Why: the readers check formats, not identities. MNIST files given as Fashion-MNIST (the same
//! format) were trained on without a word; a run resumed with another `--data-dir` went on with
//! other data. Every run records its files' digests ([`DataIdentity`]) and a resume checks them.
//!
//! Known: the MNIST files (the published `.gz` MD5s and the MD5s of their content) and the
//! Fashion-MNIST `.gz` files (published MD5s). CIFAR's binary files have no published
//! per-file checksums (only the archive's, checked at download), so they are recorded but not
//! identified; a CIFAR-100 file given as CIFAR-10 fails the format check anyway.

use crate::dataset::{DatasetKind, Split};
use crate::error::DataError;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// One file of a data set as a run saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// The file name (without its folder: the data may move).
    pub file: String,
    /// MD5 of the content (of the decompressed content for a `.gz` file), hex.
    pub md5: String,
}

/// The files a run reads, recorded in its `config.json` and checked on resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataIdentity {
    pub dataset: String,
    pub files: Vec<FileDigest>,
}

impl DataIdentity {
    /// What differs from `saved`, in words (empty when the data is the same).
    pub fn differences(&self, saved: &DataIdentity) -> Vec<String> {
        let mut out = Vec::new();
        if self.dataset != saved.dataset {
            out.push(format!("data set {} instead of {}", self.dataset, saved.dataset));
        }
        let base = |f: &str| f.trim_end_matches(".gz").to_string();
        let now: BTreeMap<String, &str> = self.files.iter().map(|f| (base(&f.file), f.md5.as_str())).collect();
        for f in &saved.files {
            match now.get(&base(&f.file)) {
                Some(md5) if *md5 == f.md5 => {}
                Some(md5) => out.push(format!("{}: content MD5 {md5}, the run started with {}", f.file, f.md5)),
                None => out.push(format!("{}: not among the files found now", f.file)),
            }
        }
        out
    }
}

/// A file whose identity is known.
struct Known {
    kind: DatasetKind,
    /// The file's name without `.gz`.
    file: &'static str,
    /// MD5 of the published `.gz` file.
    gz_md5: &'static str,
    /// MD5 of its content, where known.
    content_md5: Option<&'static str>,
}

const KNOWN: [Known; 8] = [
    Known {
        kind: DatasetKind::Mnist,
        file: "train-images-idx3-ubyte",
        gz_md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        content_md5: Some("6bbc9ace898e44ae57da46a324031adb"),
    },
    Known {
        kind: DatasetKind::Mnist,
        file: "train-labels-idx1-ubyte",
        gz_md5: "d53e105ee54ea40749a09fcbcd1e9432",
        content_md5: Some("a25bea736e30d166cdddb491f175f624"),
    },
    Known {
        kind: DatasetKind::Mnist,
        file: "t10k-images-idx3-ubyte",
        gz_md5: "9fb629c4189551a2d022fa330f9573f3",
        content_md5: Some("2646ac647ad5339dbf082846283269ea"),
    },
    Known {
        kind: DatasetKind::Mnist,
        file: "t10k-labels-idx1-ubyte",
        gz_md5: "ec29112dd5afa0611ce80d1b7f02629c",
        content_md5: Some("27ae3e4e09519cfbb04c329615203637"),
    },
    Known {
        kind: DatasetKind::FashionMnist,
        file: "train-images-idx3-ubyte",
        gz_md5: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        content_md5: None,
    },
    Known {
        kind: DatasetKind::FashionMnist,
        file: "train-labels-idx1-ubyte",
        gz_md5: "25c81989df183df01b3e8a0aad5dffbe",
        content_md5: None,
    },
    Known {
        kind: DatasetKind::FashionMnist,
        file: "t10k-images-idx3-ubyte",
        gz_md5: "bef4ecab320f06d8554ea6380940ec79",
        content_md5: None,
    },
    Known {
        kind: DatasetKind::FashionMnist,
        file: "t10k-labels-idx1-ubyte",
        gz_md5: "bb300cfdad3c16e7a12a480ee83cd310",
        content_md5: None,
    },
];

/// MD5s of one file: of the bytes on disk, and of the content (the same unless gzipped).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Md5s {
    file: String,
    content: String,
}

fn hex(h: Md5) -> String {
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hash: Md5,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn compute(path: &Path) -> Result<Md5s, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut raw = Hashing { inner: std::io::BufReader::with_capacity(1 << 20, file), hash: Md5::new() };
    let mut content = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    let gz = path.extension().is_some_and(|e| e == "gz");
    {
        let mut reader: Box<dyn Read + '_> =
            if gz { Box::new(flate2::read::GzDecoder::new(&mut raw)) } else { Box::new(&mut raw) };
        loop {
            let n = reader.read(&mut buf).map_err(|e| match e.kind() {
                std::io::ErrorKind::PermissionDenied => DataError::Permission { path: path.to_path_buf() },
                _ if gz => DataError::BadGzip { path: path.to_path_buf(), reason: e.to_string() },
                _ => DataError::io(path, e),
            })?;
            if n == 0 {
                break;
            }
            content.update(&buf[..n]);
        }
    }
    // what the decompressor did not need still belongs to the file
    std::io::copy(&mut raw, &mut std::io::sink()).map_err(|e| DataError::io(path, e))?;
    Ok(Md5s { file: hex(raw.hash), content: hex(content) })
}

/// Where digests are cached: `$XDG_CACHE_HOME/dropnas/checksums.json` (else under `~/.cache`),
/// keyed by absolute path, size and modification time. `DROPNAS_CACHE_DIR` overrides the folder.
fn cache_path() -> Option<PathBuf> {
    let dir = std::env::var_os("DROPNAS_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("dropnas")))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("dropnas")))?;
    Some(dir.join("checksums.json"))
}

fn cache_key(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    let abs = std::fs::canonicalize(path).ok()?;
    Some(format!("{}|{}|{mtime}", abs.display(), meta.len()))
}

/// The MD5s of `path`, from the cache when the file has not changed.
fn md5s(path: &Path, cache: Option<&Path>) -> Result<Md5s, DataError> {
    let key = cache_key(path);
    let mut map: BTreeMap<String, Md5s> = cache
        .as_ref()
        .and_then(|c| std::fs::read(c).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some(hit) = key.as_ref().and_then(|k| map.get(k)) {
        return Ok(hit.clone());
    }
    let sums = compute(path)?;
    if let (Some(cache), Some(key)) = (cache, key) {
        // best effort: a read-only home only costs the recomputation next time
        map.insert(key, sums.clone());
        if let Some(dir) = cache.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = cache.with_extension(format!("tmp-{}", std::process::id()));
        if std::fs::write(&tmp, serde_json::to_vec(&map).unwrap_or_default()).is_ok() {
            let _ = std::fs::rename(&tmp, cache);
        }
    }
    Ok(sums)
}

fn base_name(path: &Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    name.trim_end_matches(".gz").to_string()
}

/// Digests the files of one split of `kind` and checks each against the known files: a known
/// file of another data set or split is an error; a file that differs from the known official
/// one gives a warning (returned, for the run's log); unknown files are only recorded.
pub fn check_files(
    kind: DatasetKind,
    split: Split,
    paths: &[PathBuf],
) -> Result<(Vec<FileDigest>, Vec<String>), DataError> {
    check_files_cached(kind, split, paths, cache_path().as_deref())
}

fn check_files_cached(
    kind: DatasetKind,
    split: Split,
    paths: &[PathBuf],
    cache: Option<&Path>,
) -> Result<(Vec<FileDigest>, Vec<String>), DataError> {
    let mut digests = Vec::new();
    let mut warnings = Vec::new();
    for path in paths {
        let sums = md5s(path, cache)?;
        let want = base_name(path);
        let found = KNOWN.iter().find(|k| k.gz_md5 == sums.file || k.content_md5 == Some(sums.content.as_str()));
        match found {
            Some(k) if k.kind == kind && k.file == want => {}
            Some(k) => {
                return Err(DataError::WrongData {
                    path: path.clone(),
                    found: format!("{}'s {} (content MD5 {})", k.kind.display_name(), k.file, sums.content),
                    expected: format!("{}'s {want} ({} split)", kind.display_name(), split.name()),
                    dataset: kind.display_name().to_string(),
                });
            }
            None => {
                if let Some(k) = KNOWN.iter().find(|k| k.kind == kind && k.file == want) {
                    warnings.push(format!(
                        "{} is not the official {} {want} (MD5 {}, content MD5 {}; the official .gz has MD5 {}); \
                         using it as it is",
                        path.display(),
                        kind.display_name(),
                        sums.file,
                        sums.content,
                        k.gz_md5
                    ));
                }
            }
        }
        let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        digests.push(FileDigest { file, md5: sums.content });
    }
    Ok((digests, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn content_md5_sees_through_gzip_and_differences_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache/checksums.json");
        let check = |paths: &[PathBuf]| check_files_cached(DatasetKind::Mnist, Split::Train, paths, Some(&cache));
        let plain = dir.path().join("a-idx1-ubyte");
        let packed = dir.path().join("b-idx1-ubyte.gz");
        std::fs::write(&plain, b"hello").unwrap();
        std::fs::write(&packed, gz(b"hello")).unwrap();
        let (a, warnings) = check(&[plain.clone(), packed]).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(a[0].md5, "5d41402abc4b2a76b9719d911017c592");
        assert_eq!(a[0].md5, a[1].md5);
        // cached: a second look gives the same without reading (the cache file exists)
        assert!(cache.is_file());
        assert_eq!(check(&[plain]).unwrap().0[0], a[0]);
        let id = |md5: &str| DataIdentity {
            dataset: "mnist".into(),
            files: vec![FileDigest { file: "a-idx1-ubyte".into(), md5: md5.into() }],
        };
        assert!(id("x").differences(&id("x")).is_empty());
        let d = id("y").differences(&id("x"));
        assert!(d[0].contains("a-idx1-ubyte") && d[0].contains("y") && d[0].contains("started with x"), "{d:?}");
    }
}
