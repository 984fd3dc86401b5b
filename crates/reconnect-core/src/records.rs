//! Reading a JSONL event log as typed records through evidence-core's JSONL reader: every bad line
//! is an error naming `file:line` (none is dropped), and a last line still being written (no
//! newline yet) is left for the next read, so a live log can be read while its writer appends.

use std::path::Path;

use evidence_core::error::{EvidenceError, Result};
use evidence_core::jsonl::JsonlReader;
use serde::de::DeserializeOwned;

/// Every complete line of the JSONL file at `path` as a `T`, with its 1-based line number. A
/// missing file is an empty log when `missing_ok`.
///
/// # Errors
/// `Io` when the file cannot be read; `Parse` (`file:line`, field) for a line that is not a `T`.
pub fn read_records<T: DeserializeOwned>(path: &Path, missing_ok: bool) -> Result<Vec<(usize, T)>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EvidenceError::io("cannot read", path, e)),
    };
    let complete = bytes
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(&bytes[..0], |n| &bytes[..=n]);
    let mut reader = JsonlReader::new(complete, path.display().to_string());
    let mut out = Vec::new();
    while let Some(r) = reader.next_record::<T>() {
        out.push(r?);
    }
    Ok(out)
}
