//! TensorBoard's event file, written by the run as it goes: append-only, flushed at every log
//! point from the first step, so that a TensorBoard started before the run (which tails files
//! by offset) sees every point as it comes. One file per run, in the run folder itself, so that
//! `tensorboard --logdir searchs` lists the runs by name.
//!
//! An event file is a sequence of TFRecords: `u64` little-endian data length, masked CRC32C of
//! those 8 bytes, the data, masked CRC32C of the data. Each record's data is a serialized
//! `tensorflow.Event` message: `wall_time` (double, field 1), `step` (int64, field 2),
//! `file_version` (string, field 3; the first record holds `brain.Event:2`) and `summary`
//! (field 5), a `Summary` whose repeated `value` (field 1) holds `tag` (string, field 1) and
//! `simple_value` (float, field 2). Only these fields are written; the reader skips any other.
//! No TensorFlow and no protobuf code generation are needed.

use crate::run::folder::{FolderError, io_error};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The event file's name; TensorBoard reads every file whose name contains `tfevents`.
pub const EVENTS_FILE: &str = "events.out.tfevents.0000000000.dropnas";

/// One event: a time, a step, and either the file version or scalar values.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub wall_time: f64,
    pub step: i64,
    pub file_version: Option<String>,
    /// `(tag, simple_value)` pairs of the event's summary.
    pub scalars: Vec<(String, f32)>,
}

/// CRC-32C (Castagnoli), as TFRecord uses.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0x82F6_3B78 } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    !data.iter().fold(!0u32, |crc, &b| TABLE[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8))
}

/// The masked CRC of TFRecord: `((crc >> 15) | (crc << 17)) + 0xa282ead8`.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_varint(out, u64::from(field << 3 | 2));
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The serialized `Event` message.
pub fn encode_event(e: &Event) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + e.scalars.len() * 24);
    out.push(1 << 3 | 1);
    out.extend_from_slice(&e.wall_time.to_le_bytes());
    out.push(2 << 3);
    put_varint(&mut out, e.step as u64);
    if let Some(v) = &e.file_version {
        put_bytes(&mut out, 3, v.as_bytes());
    }
    if !e.scalars.is_empty() {
        let mut summary = Vec::new();
        let mut value = Vec::new();
        for (tag, v) in &e.scalars {
            value.clear();
            put_bytes(&mut value, 1, tag.as_bytes());
            value.push(2 << 3 | 5);
            value.extend_from_slice(&v.to_le_bytes());
            put_bytes(&mut summary, 1, &value);
        }
        put_bytes(&mut out, 5, &summary);
    }
    out
}

/// Appends one TFRecord holding `data`.
pub fn put_record(out: &mut Vec<u8>, data: &[u8]) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
}

/// The bytes of an event file holding `events` after the file-version record.
pub fn encode_file(first_wall_time: f64, events: &[Event]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + events.len() * 64);
    let version =
        Event { wall_time: first_wall_time, step: 0, file_version: Some("brain.Event:2".into()), scalars: vec![] };
    put_record(&mut out, &encode_event(&version));
    for e in events {
        put_record(&mut out, &encode_event(e));
    }
    out
}

/// Decodes the records of an event file's bytes, checking every record's length and CRCs;
/// `Err((byte offset, what))` at the first bad record.
pub fn decode_records(bytes: &[u8]) -> Result<Vec<Event>, (usize, String)> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let at = pos;
        let head = bytes.get(pos..pos + 12).ok_or((at, "record cut short".to_string()))?;
        let len_bytes = &head[..8];
        if u32::from_le_bytes(head[8..12].try_into().expect("4 bytes")) != masked_crc32c(len_bytes) {
            return Err((at, "bad length CRC".into()));
        }
        let len = usize::try_from(u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")))
            .map_err(|_| (at, "length too large".to_string()))?;
        let end = pos.checked_add(12 + len + 4).filter(|&e| e <= bytes.len()).ok_or((at, "record cut short".into()))?;
        let data = &bytes[pos + 12..pos + 12 + len];
        if u32::from_le_bytes(bytes[end - 4..end].try_into().expect("4 bytes")) != masked_crc32c(data) {
            return Err((at, "bad data CRC".into()));
        }
        out.push(decode_event(data).ok_or((at, "not an Event".to_string()))?);
        pos = end;
    }
    Ok(out)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    /// Next field: (number, wire type, payload for length-delimited / fixed, varint value).
    fn field(&mut self) -> Option<(u64, u8, &'a [u8], u64)> {
        let key = self.varint()?;
        let (num, wire) = (key >> 3, (key & 7) as u8);
        match wire {
            0 => Some((num, wire, &[], self.varint()?)),
            1 => Some((num, wire, self.take(8)?, 0)),
            2 => {
                let n = usize::try_from(self.varint()?).ok()?;
                Some((num, wire, self.take(n)?, 0))
            }
            5 => Some((num, wire, self.take(4)?, 0)),
            _ => None,
        }
    }
    fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }
}

/// Decodes one serialized `Event`.
pub fn decode_event(data: &[u8]) -> Option<Event> {
    let mut e = Event { wall_time: 0.0, step: 0, file_version: None, scalars: vec![] };
    let mut c = Cursor { buf: data, pos: 0 };
    while !c.done() {
        let (num, wire, bytes, int) = c.field()?;
        match (num, wire) {
            (1, 1) => e.wall_time = f64::from_le_bytes(bytes.try_into().ok()?),
            (2, 0) => e.step = int as i64,
            (3, 2) => e.file_version = Some(String::from_utf8(bytes.to_vec()).ok()?),
            (5, 2) => {
                let mut s = Cursor { buf: bytes, pos: 0 };
                while !s.done() {
                    let (num, wire, value, _) = s.field()?;
                    if (num, wire) != (1, 2) {
                        continue;
                    }
                    let (mut tag, mut v) = (None, None);
                    let mut f = Cursor { buf: value, pos: 0 };
                    while !f.done() {
                        match f.field()? {
                            (1, 2, b, _) => tag = Some(String::from_utf8(b.to_vec()).ok()?),
                            (2, 5, b, _) => v = Some(f32::from_le_bytes(b.try_into().ok()?)),
                            _ => {}
                        }
                    }
                    if let (Some(t), Some(v)) = (tag, v) {
                        e.scalars.push((t, v));
                    }
                }
            }
            _ => {}
        }
    }
    Some(e)
}

/// The run's event file, open for appending. Points are buffered and written at [`Self::flush`]
/// (the engine flushes at every log point and before every checkpoint).
pub struct EventWriter {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
    /// Bytes in the file (flushed).
    len: u64,
}

impl EventWriter {
    /// Opens the event file of the run folder `dir`: a new run starts it with the file-version
    /// record; a resumed run cuts it back to `resume_len` bytes (what its checkpoint had seen), so
    /// that the points after the checkpoint, which the run computes again, are not there twice.
    pub fn open(dir: &Path, resume_len: Option<u64>, wall_time: f64) -> Result<Self, FolderError> {
        let path = dir.join(EVENTS_FILE);
        let io = |e| io_error(&path, e);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io)?;
        let on_disk = file.metadata().map_err(io)?.len();
        let mut w = Self { path, file, pending: Vec::new(), len: 0 };
        match resume_len {
            Some(len) if len > 0 && len <= on_disk => {
                w.file.set_len(len).map_err(|e| io_error(&w.path, e))?;
                w.len = len;
            }
            _ => {
                w.file.set_len(0).map_err(|e| io_error(&w.path, e))?;
                let version = Event { wall_time, step: 0, file_version: Some("brain.Event:2".into()), scalars: vec![] };
                put_record(&mut w.pending, &encode_event(&version));
                w.flush()?;
            }
        }
        Ok(w)
    }

    /// Adds one event of scalars at `step`.
    pub fn scalars(&mut self, step: u64, wall_time: f64, scalars: &[(&str, f64)]) {
        let scalars = scalars.iter().filter(|(_, v)| v.is_finite()).map(|(t, v)| (t.to_string(), *v as f32)).collect();
        put_record(
            &mut self.pending,
            &encode_event(&Event { wall_time, step: step as i64, file_version: None, scalars }),
        );
    }

    /// Appends what is buffered and hands it to the system.
    pub fn flush(&mut self) -> Result<(), FolderError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.pending).and_then(|()| self.file.flush()).map_err(|e| io_error(&self.path, e))?;
        self.len += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Bytes in the file after the last flush.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_the_standard_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn the_file_grows_by_appending_and_a_resume_cuts_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::open(dir.path(), None, 1.0).unwrap();
        let first = std::fs::read(w.path()).unwrap();
        w.scalars(0, 2.0, &[("train/loss", 2.25), ("train/top5", f64::NAN)]);
        assert_eq!(std::fs::read(w.path()).unwrap(), first, "nothing written before the flush");
        w.flush().unwrap();
        let at_checkpoint = w.len();
        w.scalars(1, 3.0, &[("train/loss", 2.0)]);
        w.flush().unwrap();
        let bytes = std::fs::read(w.path()).unwrap();
        assert!(bytes.starts_with(&first) && bytes.len() as u64 == w.len());
        let events = decode_records(&bytes).unwrap();
        assert_eq!(events[0].file_version.as_deref(), Some("brain.Event:2"));
        assert_eq!(events[1].scalars, vec![("train/loss".to_string(), 2.25)], "NaN is left out");
        assert_eq!((events[2].step, events[2].wall_time), (1, 3.0));
        drop(w);
        let w = EventWriter::open(dir.path(), Some(at_checkpoint), 9.0).unwrap();
        assert_eq!(std::fs::read(w.path()).unwrap(), bytes[..at_checkpoint as usize]);
        let mut b = bytes.clone();
        let n = b.len();
        b[n - 6] ^= 1;
        assert_eq!(decode_records(&b).unwrap_err().1, "bad data CRC");
    }
}
