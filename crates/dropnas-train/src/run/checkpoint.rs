//! Checkpoint files: a typed, versioned header and named binary parts (Burn records of the
//! network, alphas and optimizers), every byte of both under a CRC32, written atomically (a
//! temporary file in the same folder, flushed to disk, then renamed over the old one). A killed
//! run therefore leaves the previous checkpoint or the new one, never half of one, and any
//! damage, to the header as much as to the tensors, is detected on load.
//!
//! Layout: `DROPNAS-CKPT-v1\n` (the container), the head's length (u64, little-endian), the
//! head (JSON: `{"format", "header", "parts": [{"name", "len", "crc32"}]}`), the head's CRC32
//! (u32, little-endian), then the parts in index order. `format` is [`FORMAT`]; files of another
//! format are refused with a message that says which is which.

use crate::metrics::Meter;
use crate::run::folder::{create_exclusive, open_nofollow};
use crate::run::lines::{LossMeters, RunKind};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The checkpoint format this version writes and reads.
pub const FORMAT: u32 = 2;
const MAGIC: &[u8; 16] = b"DROPNAS-CKPT-v1\n";
/// Larger heads are not ours (a header is a few KiB; this keeps a damaged length from
/// allocating gigabytes).
const MAX_HEAD: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot write checkpoint {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read checkpoint {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a dropnas checkpoint or is damaged: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error(
        "{path} was written by an older dropnas (checkpoint format {found}; this version reads format {FORMAT}): \
         continue that run with the dropnas version that started it, or start it again"
    )]
    OlderFormat { path: PathBuf, found: u64 },
    #[error(
        "{path} was written by a newer dropnas (checkpoint format {found}; this version reads format {FORMAT}): \
         update dropnas to continue it"
    )]
    NewerFormat { path: PathBuf, found: u64 },
    #[error("checkpoint {path} lacks part `{part}`; it was written by another kind of run")]
    MissingPart { path: PathBuf, part: String },
    #[error("{path} {detail}")]
    WrongKind { path: PathBuf, detail: String },
    #[error("cannot restore {what} from {path}: {detail}")]
    Restore { path: PathBuf, what: String, detail: String },
}

/// Where a run is: what the next step is, and the running means of the epoch so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// The epoch to run next (from 0), and the step within it to run next.
    pub epoch: usize,
    pub step: usize,
    /// Steps run in total.
    pub global_step: usize,
    /// Training time so far, in seconds (time between invocations is not counted).
    pub elapsed_s: f64,
    /// Running means of the current epoch: loss, top-1, top-5.
    pub meters: [Meter; 3],
    /// Running means of the current epoch's loss terms.
    #[serde(default)]
    pub terms: LossMeters,
    /// Bytes of the TensorBoard event file that belong to the steps before this position.
    #[serde(default)]
    pub events_len: u64,
}

/// The header of a run's checkpoint: what the run is, where it is, and the task's own state
/// (`S`: RNG states, counters) beside the tensors in the parts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointHeader<C, S> {
    pub kind: RunKind,
    /// Identifies the run folder's run: a checkpoint copied in from another run is refused.
    pub run_id: String,
    pub dropnas_version: String,
    #[serde(flatten)]
    pub position: Position,
    pub config: C,
    pub state: S,
}

/// A checkpoint in memory: the header (JSON) and named byte parts.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    pub header: Value,
    pub parts: Vec<(String, Vec<u8>)>,
}

#[derive(Serialize, Deserialize)]
struct PartIndex {
    name: String,
    len: u64,
    crc32: u32,
}

#[derive(Serialize, Deserialize)]
struct Head {
    format: Option<u64>,
    header: Value,
    parts: Vec<PartIndex>,
}

impl Checkpoint {
    pub fn new<H: Serialize>(header: &H) -> Self {
        Self { header: serde_json::to_value(header).expect("checkpoint headers are JSON"), parts: Vec::new() }
    }

    pub fn with_part(mut self, name: &str, bytes: Vec<u8>) -> Self {
        self.parts.push((name.to_string(), bytes));
        self
    }

    pub fn part(&self, name: &str, path: &Path) -> Result<&[u8], CheckpointError> {
        self.parts
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| CheckpointError::MissingPart { path: path.to_path_buf(), part: name.into() })
    }

    /// The run kind the header names.
    pub fn kind(&self) -> Option<RunKind> {
        serde_json::from_value(self.header["kind"].clone()).ok()
    }

    /// Refuses a checkpoint written by another kind of run.
    pub fn expect_kind(&self, kind: RunKind, path: &Path) -> Result<(), CheckpointError> {
        let found = self.kind();
        if found == Some(kind) {
            return Ok(());
        }
        let article = if kind.as_str().starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        let by = found.map_or_else(|| "an unknown kind of".to_string(), |k| format!("a {k}"));
        Err(CheckpointError::WrongKind {
            path: path.to_path_buf(),
            detail: format!("is not {article} {kind} checkpoint (it was written by {by} run)"),
        })
    }

    /// The header as the type `H` (all of it, or the part a reader needs).
    pub fn header<H: DeserializeOwned>(&self, path: &Path) -> Result<H, CheckpointError> {
        serde_json::from_value(self.header.clone()).map_err(|e| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            what: format!("its header does not describe this kind of run: {e}"),
        })
    }

    /// Writes atomically to `path` (never through a symbolic link).
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let index: Vec<PartIndex> = self
            .parts
            .iter()
            .map(|(n, b)| PartIndex { name: n.clone(), len: b.len() as u64, crc32: crc32fast::hash(b) })
            .collect();
        let head = Head { format: Some(FORMAT.into()), header: self.header.clone(), parts: index };
        let head = serde_json::to_vec(&head).expect("JSON of JSON values");
        let tmp = crate::run::folder::temp_path(path);
        let write = || -> std::io::Result<()> {
            let mut f = std::io::BufWriter::new(create_exclusive(&tmp)?);
            f.write_all(MAGIC)?;
            f.write_all(&(head.len() as u64).to_le_bytes())?;
            f.write_all(&head)?;
            f.write_all(&crc32fast::hash(&head).to_le_bytes())?;
            for (_, bytes) in &self.parts {
                f.write_all(bytes)?;
            }
            let f = f.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, path)?;
            // make the rename itself durable
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|source| {
            let _ = fs::remove_file(&tmp);
            CheckpointError::Write { path: path.to_path_buf(), source }
        })
    }

    /// Reads a checkpoint the user points at (links followed).
    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let read = |source| CheckpointError::Read { path: path.to_path_buf(), source };
        let mut data = Vec::new();
        File::open(path).and_then(|mut f| f.read_to_end(&mut data)).map_err(read)?;
        Self::parse(&data, path)
    }

    /// Reads a run folder's checkpoint (never through a symbolic link).
    pub fn load_nofollow(path: &Path) -> Result<Self, CheckpointError> {
        let read = |source| CheckpointError::Read { path: path.to_path_buf(), source };
        let mut data = Vec::new();
        open_nofollow(path).and_then(|mut f| f.read_to_end(&mut data)).map_err(read)?;
        Self::parse(&data, path)
    }

    /// Parses and checks the bytes of a checkpoint file (`path` is for messages).
    pub fn parse(data: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let corrupt = |what: String| CheckpointError::Corrupt { path: path.to_path_buf(), what };
        if data.len() < 24 || &data[..16] != MAGIC {
            return Err(corrupt("wrong magic bytes".into()));
        }
        let head_len = u64::from_le_bytes(data[16..24].try_into().expect("8 bytes"));
        let head_end = (head_len <= MAX_HEAD)
            .then(|| 24 + head_len as usize)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| corrupt("truncated header".into()))?;
        let head_bytes = &data[24..head_end];
        // The format first, so that a file of another version gets a message about versions.
        let format = serde_json::from_slice::<Value>(head_bytes).ok().map(|h| h["format"].as_u64().unwrap_or(1));
        match format {
            Some(f) if f < FORMAT as u64 => return Err(CheckpointError::OlderFormat { path: path.into(), found: f }),
            Some(f) if f > FORMAT as u64 => return Err(CheckpointError::NewerFormat { path: path.into(), found: f }),
            _ => {}
        }
        let crc_end = head_end + 4;
        if crc_end > data.len() {
            return Err(corrupt("truncated header".into()));
        }
        let crc = u32::from_le_bytes(data[head_end..crc_end].try_into().expect("4 bytes"));
        if crc != crc32fast::hash(head_bytes) {
            return Err(corrupt("its header fails its checksum".into()));
        }
        let head: Head = serde_json::from_slice(head_bytes).map_err(|e| corrupt(format!("bad header: {e}")))?;
        let mut offset = crc_end;
        let mut parts = Vec::with_capacity(head.parts.len());
        for p in head.parts {
            let end = usize::try_from(p.len)
                .ok()
                .and_then(|len| offset.checked_add(len))
                .filter(|&e| e <= data.len())
                .ok_or_else(|| corrupt(format!("part `{}` is truncated", p.name)))?;
            let bytes = data[offset..end].to_vec();
            if p.crc32 != crc32fast::hash(&bytes) {
                return Err(corrupt(format!("part `{}` fails its checksum", p.name)));
            }
            parts.push((p.name, bytes));
            offset = end;
        }
        if offset != data.len() {
            return Err(corrupt(format!("{} trailing bytes", data.len() - offset)));
        }
        Ok(Self { header: head.header, parts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint::new(&serde_json::json!({"kind": "search", "epoch": 3, "step": 5}))
            .with_part("model", vec![1, 2, 3])
            .with_part("optim", vec![9; 100])
    }

    #[test]
    fn round_trips_and_detects_damage_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ckpt");
        sample().save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back.header["epoch"], 3);
        assert_eq!(back.kind(), Some(RunKind::Search));
        assert_eq!(back.part("optim", &path).unwrap(), &[9u8; 100][..]);
        assert!(matches!(back.part("alphas", &path), Err(CheckpointError::MissingPart { .. })));
        assert!(back.expect_kind(RunKind::Augment, &path).unwrap_err().to_string().contains("not an augment"));
        // no temporary file is left behind
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        // one byte of a part
        let mut b = bytes.clone();
        b[n - 1] ^= 0xff;
        assert!(Checkpoint::parse(&b, &path).unwrap_err().to_string().contains("fails its checksum"));
        // one digit of the header's step: the header is under the CRC too
        let at = bytes.windows(8).position(|w| w == b"\"step\":5").unwrap() + 7;
        let mut b = bytes.clone();
        b[at] = b'6';
        let e = Checkpoint::parse(&b, &path).unwrap_err().to_string();
        assert!(e.contains("header fails its checksum"), "{e}");
        // truncated; not a checkpoint
        assert!(Checkpoint::parse(&bytes[..n - 10], &path).unwrap_err().to_string().contains("truncated"));
        assert!(Checkpoint::parse(b"hello", &path).unwrap_err().to_string().contains("not a dropnas checkpoint"));
    }

    #[test]
    fn other_formats_are_named() {
        let path = Path::new("old.ckpt");
        // a format-1 file: no format at the head's top level, no header CRC
        let head = br#"{"header":{"kind":"search","format":1},"parts":[]}"#;
        let mut old = MAGIC.to_vec();
        old.extend_from_slice(&(head.len() as u64).to_le_bytes());
        old.extend_from_slice(head);
        let e = Checkpoint::parse(&old, path).unwrap_err().to_string();
        assert!(e.contains("older dropnas") && e.contains("format 1"), "{e}");
        let head = br#"{"format":3,"header":{},"parts":[]}"#;
        let mut new = MAGIC.to_vec();
        new.extend_from_slice(&(head.len() as u64).to_le_bytes());
        new.extend_from_slice(head);
        new.extend_from_slice(&crc32fast::hash(head).to_le_bytes());
        let e = Checkpoint::parse(&new, path).unwrap_err().to_string();
        assert!(e.contains("newer dropnas") && e.contains("format 3"), "{e}");
    }
}
