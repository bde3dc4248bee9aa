//! A data set of image files in class folders, torchvision's `ImageFolder` layout:
//! `DIR/train/CLASS/**/*.jpg` and `DIR/val/CLASS/**/*.jpg` (`DIR/test` when there is no
//! `DIR/val`). Classes are the sub-folders of `DIR/train`, sorted by name (label = position);
//! files are listed as `ImageFolder` lists them (folders walked recursively, following links,
//! sorted by folder then by name) and keep that order.
//!
//! Only the file list lives in memory: each image is decoded when a batch needs it, on the
//! loader's worker threads, with the `image` crate (JPEG by zune-jpeg, PNG by png), and
//! converted to RGB as torchvision's loader does (`convert("RGB")`: grey replicated, alpha
//! dropped).
//!
//! Bad input: a missing `train` or `val` folder, a class folder without a usable image, or class
//! folders of `train` and `val` that differ are errors naming the folders. Files are checked
//! when the folder is opened by reading their headers (on several threads): empty files and files
//! whose header is not a readable JPEG or PNG are skipped, counted and listed in
//! [`ImageFolder::notes`] (torchvision would fail at that sample, hours into a run); files
//! without a .jpg/.jpeg/.png extension are ignored and counted. An image whose header reads but
//! whose data does not decode is an error when a batch needs it, naming the file.

use std::path::{Path, PathBuf};

use crate::dataset::Split;
use crate::error::DataError;
use crate::resize::Rgb8;

/// File extensions read as images (compared without case: ImageNet's files are `.JPEG`).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// How deep links and sub-folders are followed inside a class folder (guards against loops).
const MAX_DEPTH: usize = 32;

/// A file left out when the folder was opened, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// The file list of one split of an image folder.
#[derive(Debug, Clone)]
pub struct ImageFolder {
    dir: PathBuf,
    classes: Vec<String>,
    files: Vec<PathBuf>,
    labels: Vec<u32>,
    skipped: Vec<Skipped>,
    ignored: Vec<PathBuf>,
    /// Files dropped by [`Self::subsample`].
    unused: usize,
}

/// The folder of `split` under `dir`: `train`, or `val` (else `test`).
pub fn split_dir(dir: &Path, split: Split) -> Result<PathBuf, DataError> {
    let names: &[&str] = match split {
        Split::Train => &["train"],
        Split::Test => &["val", "test"],
    };
    names.iter().map(|n| dir.join(n)).find(|p| p.is_dir()).ok_or_else(|| DataError::FolderLayout {
        dir: dir.to_path_buf(),
        problem: format!("no {} folder", names.iter().map(|n| format!("{n}/")).collect::<Vec<_>>().join(" or ")),
    })
}

/// The class names of `dir` (its sub-folders, sorted), without reading them.
pub fn class_names(dir: &Path) -> Result<Vec<String>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))?;
    let mut classes = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        // `is_dir` follows links, as torchvision's `entry.is_dir()` does.
        if entry.path().is_dir() {
            classes.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    classes.sort();
    Ok(classes)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Every file under `folder`, in `ImageFolder`'s order: `sorted(os.walk(folder))`, each
/// folder's files sorted.
fn walk(folder: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut groups: Vec<(PathBuf, Vec<PathBuf>)> = Vec::new();
    let mut pending = vec![(folder.to_path_buf(), 0usize)];
    while let Some((dir, depth)) = pending.pop() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| DataError::io(&dir, e))? {
            let path = entry.map_err(|e| DataError::io(&dir, e))?.path();
            if path.is_dir() {
                if depth < MAX_DEPTH {
                    pending.push((path, depth + 1));
                }
            } else {
                files.push(path);
            }
        }
        files.sort();
        groups.push((dir, files));
    }
    // Python compares the folder paths as strings.
    groups.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    Ok(groups.into_iter().flat_map(|(_, f)| f).collect())
}

/// Why `path` cannot be used, if it cannot: empty, or a header that does not read.
fn check_header(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Err(e) => return Some(format!("cannot read it: {e}")),
        Ok(m) if m.len() == 0 => return Some("empty file".into()),
        Ok(_) => {}
    }
    let reader = match image::ImageReader::open(path).and_then(|r| r.with_guessed_format()) {
        Ok(r) => r,
        Err(e) => return Some(format!("cannot read it: {e}")),
    };
    if reader.format().is_none() {
        return Some("not a JPEG or PNG image (unrecognised content)".into());
    }
    match reader.into_dimensions() {
        Ok((w, h)) if w == 0 || h == 0 => Some(format!("the image is {w}x{h}")),
        Ok(_) => None,
        Err(e) => Some(format!("not a readable image: {e}")),
    }
}

/// `check_header` of every path, on up to `threads` threads; results in input order.
fn check_headers(paths: &[PathBuf], threads: usize) -> Vec<Option<String>> {
    let threads = threads.clamp(1, paths.len().max(1));
    let chunk = paths.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = paths
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(|p| check_header(p)).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect()
    })
}

impl ImageFolder {
    /// Lists and checks `split` of the image folder `dir` (see the module docs). For the
    /// evaluation split, `expected_classes` are the training classes, which the folder must
    /// have exactly. `threads` read the file headers.
    pub fn open(
        dir: &Path,
        split: Split,
        expected_classes: Option<&[String]>,
        threads: usize,
    ) -> Result<Self, DataError> {
        let root = split_dir(dir, split)?;
        let classes = class_names(&root)?;
        if classes.is_empty() {
            return Err(DataError::FolderLayout {
                dir: dir.to_path_buf(),
                problem: format!("{} has no class folders", root.display()),
            });
        }
        if let Some(expected) = expected_classes
            && expected != classes.as_slice()
        {
            let missing: Vec<String> = expected.iter().filter(|c| !classes.contains(c)).cloned().collect();
            let extra: Vec<String> = classes.iter().filter(|c| !expected.contains(c)).cloned().collect();
            return Err(DataError::ClassMismatch { dir: root, missing, extra });
        }
        let mut candidates: Vec<(PathBuf, u32)> = Vec::new();
        let mut ignored = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            for path in walk(&root.join(class))? {
                if has_image_extension(&path) {
                    candidates.push((path, label as u32));
                } else {
                    ignored.push(path);
                }
            }
        }
        let paths: Vec<PathBuf> = candidates.iter().map(|(p, _)| p.clone()).collect();
        let verdicts = check_headers(&paths, threads);
        let (mut files, mut labels, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
        let mut per_class = vec![0usize; classes.len()];
        for ((path, label), verdict) in candidates.into_iter().zip(verdicts) {
            match verdict {
                Some(reason) => skipped.push(Skipped { path, reason }),
                None => {
                    per_class[label as usize] += 1;
                    files.push(path);
                    labels.push(label);
                }
            }
        }
        if let Some(c) = per_class.iter().position(|&n| n == 0) {
            let folder = root.join(&classes[c]);
            let skipped_here = skipped.iter().filter(|s| s.path.starts_with(&folder)).count();
            let ignored_here = ignored.iter().filter(|p| p.starts_with(&folder)).count();
            return Err(DataError::EmptyClass { folder, skipped: skipped_here, ignored: ignored_here });
        }
        tracing::debug!(dir = %root.display(), images = files.len(), skipped = skipped.len(), "image folder");
        Ok(ImageFolder { dir: root, classes, files, labels, skipped, ignored, unused: 0 })
    }

    /// Keeps `n` images spread evenly over the sorted file list (`--max-train-samples`,
    /// `--max-test-samples`: the first `n` would hold the first classes only).
    pub fn subsample(&mut self, n: usize) {
        let len = self.files.len();
        if n >= len {
            return;
        }
        let keep: Vec<usize> = (0..n).map(|i| i * len / n).collect();
        self.files = keep.iter().map(|&i| self.files[i].clone()).collect();
        self.labels = keep.iter().map(|&i| self.labels[i]).collect();
        self.unused += len - n;
    }

    /// What identifies the split's images without reading them all: an MD5 over every file's
    /// path (relative to the split's folder) and size, in order. A resumed run compares it with
    /// the one it started with.
    pub fn listing_digest(&self) -> crate::identity::FileDigest {
        use md5::{Digest, Md5};
        let mut h = Md5::new();
        for (path, label) in self.files.iter().zip(&self.labels) {
            let rel = path.strip_prefix(&self.dir).unwrap_or(path);
            let size = std::fs::metadata(path).map_or(0, |m| m.len());
            h.update(format!("{}\t{label}\t{size}\n", rel.display()).as_bytes());
        }
        let md5 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        let split = self.dir.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        crate::identity::FileDigest { file: format!("{split}/ ({} images, listing)", self.files.len()), md5 }
    }

    /// The split's folder (`DIR/train`, `DIR/val`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The class names, sorted; label `i` is `classes()[i]`.
    pub fn classes(&self) -> &[String] {
        &self.classes
    }

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }

    /// The class of image `index`.
    pub fn label(&self, index: usize) -> usize {
        self.labels[index] as usize
    }

    /// The file of image `index`.
    pub fn path(&self, index: usize) -> &Path {
        &self.files[index]
    }

    /// Files left out because they cannot be images.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// Files without an image extension.
    pub fn ignored(&self) -> &[PathBuf] {
        &self.ignored
    }

    /// Decodes image `index` to RGB.
    pub fn decode(&self, index: usize) -> Result<Rgb8, DataError> {
        decode_rgb(&self.files[index])
    }

    /// What a run should report about this folder: images and classes, and every skip and
    /// ignored file, counted (the first few named).
    pub fn notes(&self) -> Vec<String> {
        let mut notes = vec![format!(
            "{}: {} images in {} classes{}",
            self.dir.display(),
            self.files.len(),
            self.classes.len(),
            if self.unused > 0 { format!(" (a subset: {} more not used)", self.unused) } else { String::new() }
        )];
        const SHOWN: usize = 5;
        if !self.skipped.is_empty() {
            notes.push(format!(
                "{}: skipped {} file(s) that cannot be images (they are not used; fix or delete them to silence this):",
                self.dir.display(),
                self.skipped.len()
            ));
            for s in self.skipped.iter().take(SHOWN) {
                notes.push(format!("  {}: {}", s.path.display(), s.reason));
            }
            if self.skipped.len() > SHOWN {
                notes.push(format!("  ... and {} more", self.skipped.len() - SHOWN));
            }
        }
        if !self.ignored.is_empty() {
            let examples: Vec<String> = self.ignored.iter().take(SHOWN).map(|p| p.display().to_string()).collect();
            notes.push(format!(
                "{}: ignored {} file(s) without a .jpg/.jpeg/.png extension, e.g. {}",
                self.dir.display(),
                self.ignored.len(),
                examples.join(", ")
            ));
        }
        notes
    }
}

/// Decodes an image file to 8-bit RGB, as torchvision's `pil_loader` (`convert("RGB")`).
pub fn decode_rgb(path: &Path) -> Result<Rgb8, DataError> {
    let fail = |reason: String| DataError::Decode { path: path.to_path_buf(), reason };
    let image = image::ImageReader::open(path)
        .map_err(|e| fail(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?
        .decode()
        .map_err(|e| fail(e.to_string()))?
        .into_rgb8();
    let (width, height) = (image.width() as usize, image.height() as usize);
    Ok(Rgb8 { width, height, data: image.into_raw() })
}
