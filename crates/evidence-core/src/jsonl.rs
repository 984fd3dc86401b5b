//! JSONL: one compact JSON object per line. Readers stream line by line and report `file:line`.

use std::io::{BufRead, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{EvidenceError, Result, excerpt};

/// Streams typed records from a JSONL source, skipping blank lines.
pub struct JsonlReader<R> {
    reader: R,
    source: String,
    line_no: usize,
    buf: String,
}

impl<R: BufRead> JsonlReader<R> {
    /// Read from `reader`; `source` labels errors (path or `-`).
    pub fn new(reader: R, source: impl Into<String>) -> Self {
        JsonlReader {
            reader,
            source: source.into(),
            line_no: 0,
            buf: String::new(),
        }
    }

    /// The next non-blank raw line with its 1-based number, or `None` at the end.
    pub fn next_line(&mut self) -> Option<Result<(usize, &str)>> {
        loop {
            self.buf.clear();
            self.line_no += 1;
            match self.reader.read_line(&mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {
                    if self.buf.trim().is_empty() {
                        continue;
                    }
                    let line = self.buf.trim_end_matches(['\n', '\r']);
                    return Some(Ok((self.line_no, line)));
                }
                Err(e) => {
                    return Some(Err(EvidenceError::io(
                        "cannot read",
                        self.source.clone(),
                        e,
                    )));
                }
            }
        }
    }

    /// The next record, parsed as `T`.
    pub fn next_record<T: DeserializeOwned>(&mut self) -> Option<Result<(usize, T)>> {
        let source = self.source.clone();
        let (n, line) = match self.next_line()? {
            Ok(x) => x,
            Err(e) => return Some(Err(e)),
        };
        Some(parse_line(line, &source, n).map(|v| (n, v)))
    }

    /// The label of the source.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }
}

/// Parse one JSONL line as `T`, with a `source:line` error naming the field serde complained about.
pub fn parse_line<T: DeserializeOwned>(line: &str, source: &str, line_no: usize) -> Result<T> {
    serde_json::from_str(line).map_err(|e| {
        let msg = e.to_string();
        let field = msg
            .split('`')
            .nth(1)
            .filter(|_| msg.contains("field"))
            .unwrap_or("record")
            .to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        EvidenceError::parse(
            source,
            line_no,
            field,
            "a valid record",
            format!("{msg} in {}", excerpt(line)),
        )
    })
}

/// Write `record` as one compact JSON line.
pub fn write_record<W: Write, T: Serialize>(out: &mut W, record: &T) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Rec {
        kind: String,
        ts_ns: i64,
    }

    #[test]
    fn reads_and_reports_lines() {
        let text = "{\"kind\":\"a\",\"ts_ns\":1}\n\n{\"kind\":\"b\"}\n";
        let mut r = JsonlReader::new(text.as_bytes(), "f.jsonl");
        let (n, rec): (usize, Rec) = r.next_record().unwrap().unwrap();
        assert_eq!((n, rec.kind.as_str()), (1, "a"));
        let e = r.next_record::<Rec>().unwrap().unwrap_err();
        assert!(
            e.to_string()
                .starts_with("f.jsonl:3: ts_ns: expected a valid record"),
            "{e}"
        );
        assert!(r.next_record::<Rec>().is_none());
    }

    #[test]
    fn writes_compact_lines() {
        let mut v = Vec::new();
        write_record(
            &mut v,
            &Rec {
                kind: "x".into(),
                ts_ns: 5,
            },
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "{\"kind\":\"x\",\"ts_ns\":5}\n"
        );
    }
}
