//! Checkpoint files: one file holding a JSON header and named binary parts (Burn records of the
//! network, alphas and optimizers), each with a CRC32, written atomically: a temporary file in
//! the same folder, flushed to disk, then renamed over the old one. A killed run therefore
//! leaves either the previous checkpoint or the new one, never half of one; a corrupt file is
//! detected on load.

use serde_json::Value;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 16] = b"DROPNAS-CKPT-v1\n";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot write checkpoint {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot read checkpoint {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a dropnas checkpoint or is damaged: {what}")]
    Corrupt { path: PathBuf, what: String },
    #[error("checkpoint {path} lacks part `{part}`; it was written by another kind of run")]
    MissingPart { path: PathBuf, part: String },
    #[error("{path} {detail}")]
    WrongKind { path: PathBuf, detail: String },
    #[error("cannot restore {what} from {path}: {detail}")]
    Restore { path: PathBuf, what: String, detail: String },
}

/// A checkpoint in memory: a JSON header (run state, configuration) and named byte parts.
#[derive(Debug, Clone, Default)]
pub struct Checkpoint {
    pub header: Value,
    pub parts: Vec<(String, Vec<u8>)>,
}

impl Checkpoint {
    pub fn new(header: Value) -> Self {
        Self { header, parts: Vec::new() }
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

    /// Refuses a checkpoint written by another kind of run ("search", "augment").
    pub fn expect_kind(&self, kind: &str, path: &Path) -> Result<(), CheckpointError> {
        let found = self.header["kind"].as_str().unwrap_or("unknown");
        if found == kind {
            return Ok(());
        }
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        Err(CheckpointError::WrongKind {
            path: path.to_path_buf(),
            detail: format!("is not {article} {kind} checkpoint (it was written by a {found} run)"),
        })
    }

    /// The configuration a run of `kind` ("search", "augment") saved in this checkpoint: a resumed
    /// run continues with it, not with the flags it is resumed with.
    pub fn run_config<C: serde::de::DeserializeOwned>(&self, kind: &str, path: &Path) -> Result<C, CheckpointError> {
        self.expect_kind(kind, path)?;
        serde_json::from_value(self.header["config"].clone()).map_err(|e| CheckpointError::Corrupt {
            path: path.to_path_buf(),
            what: format!("its configuration is unreadable: {e}"),
        })
    }

    /// Writes atomically to `path`.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let err = |source| CheckpointError::Write { path: path.to_path_buf(), source };
        let index: Vec<Value> = self
            .parts
            .iter()
            .map(|(n, b)| serde_json::json!({ "name": n, "len": b.len(), "crc32": crc32fast::hash(b) }))
            .collect();
        let head = serde_json::to_vec(&serde_json::json!({ "header": self.header, "parts": index }))
            .expect("JSON of JSON values");
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(MAGIC)?;
            f.write_all(&(head.len() as u64).to_le_bytes())?;
            f.write_all(&head)?;
            for (_, bytes) in &self.parts {
                f.write_all(bytes)?;
            }
            f.sync_all()?;
            drop(f);
            fs::rename(&tmp, path)?;
            // make the rename itself durable
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            err(e)
        })
    }

    pub fn load(path: &Path) -> Result<Self, CheckpointError> {
        let mut data = Vec::new();
        File::open(path)
            .and_then(|mut f| f.read_to_end(&mut data))
            .map_err(|source| CheckpointError::Read { path: path.to_path_buf(), source })?;
        let corrupt = |what: String| CheckpointError::Corrupt { path: path.to_path_buf(), what };
        if data.len() < 24 || &data[..16] != MAGIC {
            return Err(corrupt("wrong magic bytes".into()));
        }
        let head_len = u64::from_le_bytes(data[16..24].try_into().expect("8 bytes")) as usize;
        let head_end = 24usize
            .checked_add(head_len)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| corrupt("truncated header".into()))?;
        let head: Value =
            serde_json::from_slice(&data[24..head_end]).map_err(|e| corrupt(format!("bad header: {e}")))?;
        let mut offset = head_end;
        let mut parts = Vec::new();
        for p in head["parts"].as_array().ok_or_else(|| corrupt("no part index".into()))? {
            let name = p["name"].as_str().unwrap_or_default().to_string();
            let len = p["len"].as_u64().unwrap_or(u64::MAX) as usize;
            let end = offset
                .checked_add(len)
                .filter(|&e| e <= data.len())
                .ok_or_else(|| corrupt(format!("part `{name}` is truncated")))?;
            let bytes = data[offset..end].to_vec();
            if p["crc32"].as_u64() != Some(crc32fast::hash(&bytes) as u64) {
                return Err(corrupt(format!("part `{name}` fails its checksum")));
            }
            parts.push((name, bytes));
            offset = end;
        }
        if offset != data.len() {
            return Err(corrupt(format!("{} trailing bytes", data.len() - offset)));
        }
        Ok(Self { header: head["header"].clone(), parts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_damage() {
        let dir = std::env::temp_dir().join(format!("dropnas-ckpt-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.ckpt");
        let c = Checkpoint::new(serde_json::json!({"epoch": 3}))
            .with_part("model", vec![1, 2, 3])
            .with_part("optim", vec![9; 100]);
        c.save(&path).unwrap();
        let back = Checkpoint::load(&path).unwrap();
        assert_eq!(back.header["epoch"], 3);
        assert_eq!(back.part("optim", &path).unwrap(), &[9u8; 100][..]);
        assert!(matches!(back.part("alphas", &path), Err(CheckpointError::MissingPart { .. })));
        // no temporary file is left behind
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        // flip one byte of a part: the checksum catches it
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let e = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(e.contains("fails its checksum"), "{e}");
        // truncate it
        fs::write(&path, &bytes[..n - 10]).unwrap();
        assert!(Checkpoint::load(&path).unwrap_err().to_string().contains("truncated"));
        fs::write(&path, b"hello").unwrap();
        assert!(Checkpoint::load(&path).unwrap_err().to_string().contains("not a dropnas checkpoint"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
