//! The **probe health line** of `simnow_probe` (contracts §1.5):
//! `[health] ts_ns=<int> state=healthy|unhealthy`, matched anywhere in a line (prefixes and
//! trailing text are tolerated, as the original does).
//!
//! Writers: [`HealthSample::to_line`], [`write_health_line`]. Readers: [`parse_health_line`],
//! [`HealthLogReader`]. A line with the marker but no valid sample is an error that names
//! `file:line` and the field.

use std::fmt;
use std::io::{BufRead, Write};

use evidence_core::error::{EvidenceError, Result, excerpt};

/// The probe's view of the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HealthState {
    /// `healthy`: both fronts connected and logged in.
    Healthy,
    /// `unhealthy`.
    Unhealthy,
}

impl HealthState {
    /// The wire text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
        }
    }

    /// True for `healthy`.
    #[must_use]
    pub fn is_healthy(self) -> bool {
        self == HealthState::Healthy
    }
}

impl fmt::Display for HealthState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[health] ts_ns=<int> state=healthy|unhealthy` sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSample {
    /// Wall-clock epoch ns (positive).
    pub ts_ns: i64,
    /// The state.
    pub state: HealthState,
}

impl HealthSample {
    /// A sample of `state` at the wall clock's now.
    #[must_use]
    pub fn now(state: HealthState) -> Self {
        HealthSample {
            ts_ns: evidence_core::time::now_ns(),
            state,
        }
    }

    /// The line the original probe prints (without the newline):
    /// `[health] ts_ns=1770734543207087000 state=healthy`.
    #[must_use]
    pub fn to_line(&self) -> String {
        format!("[health] ts_ns={} state={}", self.ts_ns, self.state)
    }
}

impl fmt::Display for HealthSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[health] ts_ns={} state={}", self.ts_ns, self.state)
    }
}

/// Write one health line and a newline, then flush (the original flushes every line, so a reader
/// tailing the log sees it at once).
pub fn write_health_line<W: Write>(out: &mut W, sample: &HealthSample) -> std::io::Result<()> {
    writeln!(out, "{sample}")?;
    out.flush()
}

/// What is wrong with a line that carries the `[health]` marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthLineError {
    /// `ts_ns` or `state`.
    pub field: &'static str,
    /// What was expected.
    pub expected: &'static str,
    /// What was found (an excerpt).
    pub found: String,
}

impl HealthLineError {
    /// As an [`EvidenceError`] at `source:line`.
    #[must_use]
    pub fn at(self, source: &str, line_no: usize) -> EvidenceError {
        EvidenceError::parse(source, line_no, self.field, self.expected, self.found)
    }
}

const MARKER: &[u8] = b"[health]";

/// Find the health sample in one line, as the original's report does: the marker `[health]`,
/// whitespace, `ts_ns=<digits>`, whitespace, `state=healthy|unhealthy`, **anywhere in the line**
/// (a log prefix before it and text after it are tolerated).
///
/// - `Ok(None)`: the line has no `[health]` marker (any other probe output); ignore it.
/// - `Err`: the line has the marker but no valid sample after it (bad or missing `ts_ns`, a
///   `ts_ns` of 0 or beyond i64, a state other than `healthy`/`unhealthy`, e.g. `healthyish`).
///   The original skipped such lines silently; we report them.
pub fn parse_health_line(
    line: &[u8],
) -> std::result::Result<Option<HealthSample>, HealthLineError> {
    let mut line = line;
    while let [rest @ .., b'\n' | b'\r'] = line {
        line = rest;
    }
    let Some(pos) = find(line, MARKER) else {
        return Ok(None);
    };
    let rest = &line[pos + MARKER.len()..];
    let bad = |field: &'static str, expected: &'static str, at: &[u8]| HealthLineError {
        field,
        expected,
        found: excerpt(&String::from_utf8_lossy(at)),
    };
    let after_ws = skip_ws(rest);
    if after_ws.len() == rest.len() {
        return Err(bad("ts_ns", "whitespace then ts_ns=<digits>", rest));
    }
    let Some(digits_start) = after_ws.strip_prefix(b"ts_ns=") else {
        return Err(bad("ts_ns", "ts_ns=<digits>", after_ws));
    };
    let n_digits = digits_start
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let digits = &digits_start[..n_digits];
    let ts_ns = parse_i64_digits(digits).filter(|v| *v > 0).ok_or_else(|| {
        bad(
            "ts_ns",
            "a positive integer of epoch nanoseconds",
            digits_start,
        )
    })?;
    let rest = &digits_start[n_digits..];
    let after_ws = skip_ws(rest);
    if after_ws.is_empty() {
        return Err(bad("state", "state=healthy|unhealthy", after_ws));
    }
    if after_ws.len() == rest.len() {
        return Err(bad(
            "ts_ns",
            "a positive integer then whitespace",
            digits_start,
        ));
    }
    let Some(state_start) = after_ws.strip_prefix(b"state=") else {
        return Err(bad("state", "state=healthy|unhealthy", after_ws));
    };
    let n = state_start
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'-')
        .count();
    let state = match &state_start[..n] {
        b"healthy" => HealthState::Healthy,
        b"unhealthy" => HealthState::Unhealthy,
        _ => return Err(bad("state", "healthy or unhealthy", state_start)),
    };
    Ok(Some(HealthSample { ts_ns, state }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut from = 0;
    while let Some(i) = hay[from..].iter().position(|b| *b == first) {
        let at = from + i;
        if hay[at..].starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

fn skip_ws(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| b.is_ascii_whitespace()).count();
    &s[n..]
}

fn parse_i64_digits(d: &[u8]) -> Option<i64> {
    if d.is_empty() || d.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    for b in d {
        v = v.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
    }
    Some(v)
}

/// Streams the health samples of a probe log (any other line is skipped). Reads bytes, so a log
/// with stray non-UTF-8 output still works; errors name `source:line`.
pub struct HealthLogReader<R> {
    reader: R,
    source: String,
    line_no: usize,
    buf: Vec<u8>,
}

impl<R: BufRead> HealthLogReader<R> {
    /// Read from `reader`; `source` labels errors.
    pub fn new(reader: R, source: impl Into<String>) -> Self {
        HealthLogReader {
            reader,
            source: source.into(),
            line_no: 0,
            buf: Vec::with_capacity(256),
        }
    }

    /// The number of lines read so far.
    #[must_use]
    pub fn lines_read(&self) -> usize {
        self.line_no
    }

    /// The next sample with its 1-based line number, or `None` at the end. `on_bytes` sees every
    /// raw line read (including its newline), e.g. to hash the input while streaming it.
    pub fn next_with(
        &mut self,
        mut on_bytes: impl FnMut(&[u8]),
    ) -> Option<Result<(usize, HealthSample)>> {
        loop {
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => return None,
                Ok(_) => {
                    self.line_no += 1;
                    on_bytes(&self.buf);
                    match parse_health_line(&self.buf) {
                        Ok(None) => {}
                        Ok(Some(s)) => return Some(Ok((self.line_no, s))),
                        Err(e) => return Some(Err(e.at(&self.source, self.line_no))),
                    }
                }
                Err(e) => {
                    let msg = format!("{}:{}", self.source, self.line_no + 1);
                    return Some(Err(EvidenceError::io("cannot read", msg, e)));
                }
            }
        }
    }
}

impl<R: BufRead> Iterator for HealthLogReader<R> {
    /// The 1-based line number and the sample.
    type Item = Result<(usize, HealthSample)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_with(|_| {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_a_real_time() {
        assert!(HealthSample::now(HealthState::Healthy).ts_ns > 0);
    }

    #[test]
    fn health_line_round_trip_and_tolerance() {
        let s = HealthSample {
            ts_ns: 1_770_734_543_207_087_000,
            state: HealthState::Unhealthy,
        };
        let line = s.to_line();
        assert_eq!(line, "[health] ts_ns=1770734543207087000 state=unhealthy");
        assert_eq!(parse_health_line(line.as_bytes()), Ok(Some(s)));
        let mut v = Vec::new();
        write_health_line(&mut v, &s).unwrap();
        assert_eq!(v, format!("{line}\n").into_bytes());
        // Prefixes and trailing text are tolerated, as the original does.
        let t = b"2026-02-10 14:42:23 INFO [health]\tts_ns=5  state=healthy (md ok, td ok)\r\n";
        assert_eq!(
            parse_health_line(t),
            Ok(Some(HealthSample {
                ts_ns: 5,
                state: HealthState::Healthy
            }))
        );
        assert_eq!(parse_health_line(b"[md] SHFE.ag2406 last=1"), Ok(None));
        assert_eq!(parse_health_line(b"Probe completed\n"), Ok(None));
        assert_eq!(parse_health_line(b"\xff\xfe garbage"), Ok(None));
    }

    #[test]
    fn bad_health_lines_name_the_field() {
        for (line, field) in [
            (&b"[health] ts_ns=abc state=healthy"[..], "ts_ns"),
            (b"[health] ts_ns=0 state=healthy", "ts_ns"),
            (
                b"[health] ts_ns=99999999999999999999 state=healthy",
                "ts_ns",
            ),
            (b"[health] ts_ns=12state=healthy", "ts_ns"),
            (b"[health]ts_ns=12 state=healthy", "ts_ns"),
            (b"[health] state=healthy", "ts_ns"),
            (b"[health] ts_ns=12 state=ok", "state"),
            (b"[health] ts_ns=12 state=healthyish", "state"),
            (b"[health] ts_ns=12", "state"),
        ] {
            let e = parse_health_line(line).unwrap_err();
            assert_eq!(e.field, field, "{}", String::from_utf8_lossy(line));
        }
        let mut r = HealthLogReader::new(
            &b"x\n[health] ts_ns=1 state=healthy\n[health] ts_ns=2 state=sick\n"[..],
            "probe.log",
        );
        assert_eq!(r.next().unwrap().unwrap().0, 2);
        let e = r.next().unwrap().unwrap_err().to_string();
        assert!(
            e.starts_with("probe.log:3: state: expected healthy or unhealthy"),
            "{e}"
        );
    }
}
