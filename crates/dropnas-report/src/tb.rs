//! TensorBoard event files, written and read without TensorFlow or protobuf code generation.
//!
//! An event file is a sequence of TFRecords: `u64` little-endian data length, masked CRC32C of
//! those 8 bytes, the data, masked CRC32C of the data. Each record's data is a serialized
//! `tensorflow.Event` message: `wall_time` (double, field 1), `step` (int64, field 2),
//! `file_version` (string, field 3; the first record holds `brain.Event:2`) and `summary`
//! (field 5), a `Summary` whose repeated `value` (field 1) holds `tag` (string, field 1) and
//! `simple_value` (float, field 2). Only these fields are written; the reader skips any other.
//!
//! The scalars come from `metrics.jsonl` under the original's tags and steps (pt.darts'
//! `SummaryWriter` calls): `train/loss`, `train/top1`, `train/top5` at every step's global
//! step; `train/lr` at the first step of each epoch; `val/loss`, `val/top1`, `val/top5` (augment)
//! at the global step that ends the epoch. Accuracies are fractions, as in the original.

use crate::ReportError;
use crate::run::{Metrics, RunData};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The name of the one event file of a run folder (under `tb/`). Fixed, so that regenerating it
/// replaces it; TensorBoard reads every file whose name contains `tfevents`.
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

/// The scalar events of a run, from its metrics (see the module documentation). Wall times are
/// the run's start (from its log, else 0) plus each line's elapsed time, so the file is the same
/// every time it is generated from the same metrics.
pub fn events_from_metrics(m: &Metrics, start_unix_s: f64) -> Vec<Event> {
    let mut events = Vec::with_capacity(m.steps.len() + 2 * m.epochs.len());
    // First and last global step of each epoch, from the step lines.
    let mut span: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for s in &m.steps {
        let e = span.entry(s.epoch).or_insert((s.global_step, s.global_step));
        e.0 = e.0.min(s.global_step);
        e.1 = e.1.max(s.global_step);
    }
    let spe = m.steps_per_epoch().unwrap_or(1);
    let mut last_epoch = 0;
    for s in &m.steps {
        let mut scalars = Vec::with_capacity(4);
        if s.epoch != last_epoch && s.lr.is_finite() {
            scalars.push(("train/lr".to_string(), s.lr as f32));
        }
        last_epoch = s.epoch;
        scalars.push(("train/loss".to_string(), s.loss as f32));
        scalars.push(("train/top1".to_string(), s.top1 as f32));
        if s.top5.is_finite() {
            scalars.push(("train/top5".to_string(), s.top5 as f32));
        }
        let wall_time = start_unix_s + if s.time_s.is_finite() { s.time_s } else { 0.0 };
        events.push(Event { wall_time, step: s.global_step as i64, file_version: None, scalars });
    }
    for e in &m.epochs {
        let vals = [("val/loss", e.val_loss), ("val/top1", e.val_top1), ("val/top5", e.val_top5)];
        let scalars: Vec<(String, f32)> =
            vals.iter().filter_map(|(t, v)| v.map(|v| (t.to_string(), v as f32))).collect();
        if scalars.is_empty() {
            continue;
        }
        // pt.darts: validate() logs at cur_step = (epoch + 1) * len(train_loader).
        let step = span.get(&e.epoch).map(|s| s.1 + 1).unwrap_or(u64::from(e.epoch) * spe);
        let wall_time = start_unix_s + e.time_s.unwrap_or(0.0);
        events.push(Event { wall_time, step: step as i64, file_version: None, scalars });
    }
    // TensorBoard wants each tag's points in step order; keep step lines and epoch lines merged.
    events.sort_by_key(|e| e.step);
    events
}

/// Writes `run_dir/tb/events.out.tfevents.*` from the run's metrics, whole and atomically.
/// Returns the file, or `None` when there is nothing to write yet.
pub fn write_run_events(run: &RunData) -> Result<Option<PathBuf>, ReportError> {
    if run.metrics.steps.is_empty() && run.metrics.epochs.is_empty() {
        return Ok(None);
    }
    let start = run.started_unix_s.unwrap_or(0.0);
    let events = events_from_metrics(&run.metrics, start);
    let dir = run.dir.join("tb");
    std::fs::create_dir_all(&dir).map_err(|source| ReportError::Io { path: dir.clone(), source })?;
    let path = dir.join(EVENTS_FILE);
    crate::write_atomic(&path, &encode_file(start, &events))?;
    Ok(Some(path))
}

fn malformed(path: &Path, detail: String) -> ReportError {
    ReportError::Malformed { path: path.to_path_buf(), line: None, detail }
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

/// Reads an event file, checking every record's length and CRCs.
pub fn read_events(path: &Path) -> Result<Vec<Event>, ReportError> {
    let bytes = std::fs::read(path).map_err(|source| ReportError::Io { path: path.to_path_buf(), source })?;
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let at = pos;
        let head = bytes.get(pos..pos + 12).ok_or_else(|| malformed(path, format!("record at byte {at} cut short")))?;
        let len_bytes = &head[..8];
        if u32::from_le_bytes(head[8..12].try_into().expect("4 bytes")) != masked_crc32c(len_bytes) {
            return Err(malformed(path, format!("record at byte {at}: bad length CRC")));
        }
        let len = usize::try_from(u64::from_le_bytes(len_bytes.try_into().expect("8 bytes")))
            .map_err(|_| malformed(path, format!("record at byte {at}: length too large")))?;
        let end = pos.checked_add(12 + len + 4).filter(|&e| e <= bytes.len());
        let end = end.ok_or_else(|| malformed(path, format!("record at byte {at} cut short")))?;
        let data = &bytes[pos + 12..pos + 12 + len];
        if u32::from_le_bytes(bytes[end - 4..end].try_into().expect("4 bytes")) != masked_crc32c(data) {
            return Err(malformed(path, format!("record at byte {at}: bad data CRC")));
        }
        out.push(decode_event(data).ok_or_else(|| malformed(path, format!("record at byte {at}: not an Event")))?);
        pos = end;
    }
    Ok(out)
}

/// The scalars of events by tag: `(step, value)` in file order.
pub fn scalars_by_tag(events: &[Event]) -> BTreeMap<String, Vec<(i64, f32)>> {
    let mut out: BTreeMap<String, Vec<(i64, f32)>> = BTreeMap::new();
    for e in events {
        for (tag, v) in &e.scalars {
            out.entry(tag.clone()).or_default().push((e.step, *v));
        }
    }
    out
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
    fn events_round_trip_through_records() {
        let events = vec![
            Event { wall_time: 1.5, step: 300, file_version: None, scalars: vec![("train/loss".into(), 2.25)] },
            Event {
                wall_time: 2.0,
                step: 1 << 40,
                file_version: None,
                scalars: vec![("val/top1".into(), 0.5), ("val/top5".into(), 0.875)],
            },
        ];
        let dir = std::env::temp_dir().join(format!("dropnas-report-tb-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(EVENTS_FILE);
        std::fs::write(&path, encode_file(1.0, &events)).unwrap();
        let back = read_events(&path).unwrap();
        assert_eq!(back[0].file_version.as_deref(), Some("brain.Event:2"));
        assert_eq!(&back[1..], &events[..]);
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 6] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(read_events(&path).unwrap_err().to_string().contains("bad data CRC"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
