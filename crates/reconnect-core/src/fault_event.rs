//! The original toolkit's **fault-event JSONL** record of `ctp_fault_inject` (contracts §1.4), read
//! and written exactly as the original does, one per line:
//! `{"ts_ns": 1770734543207087000, "mode": "run", "scenario": "disconnect", "phase": "apply",
//! "execute": true, "parameters": {"duration_sec": "20", ...}}` with Python's `, ` and `: `
//! separators and ASCII escaping, the eight string parameters always present, and our optional
//! extra fields after them (`drill_id`, `backend`, `target`, `effective_ts_ns`).
//!
//! Writers: [`FaultEvent::to_line`], [`append_fault_event`]. Readers: [`FaultEvent::parse_line`],
//! [`FaultEventReader`], [`read_fault_events`].
//!
//! The reader is stricter than the original's (which accepted the string `"false"` as a true
//! `execute`, dropped records silently and crashed on bad JSON): every bad record is an error that
//! names `file:line` and the field.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{BufRead, Write};
use std::path::Path;
use std::str::FromStr;

use serde_json::{Map, Value};

use evidence_core::error::{EvidenceError, Result, excerpt};
use evidence_core::io::Input;
use evidence_core::jsonl::JsonlReader;

/// `mode` of a fault event: the `ctp_fault_inject` subcommand that wrote it (`plan` never writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// `run`: apply, hold, clear.
    Run,
    /// `clear`: a manual clear.
    Clear,
}

/// `scenario` of a fault event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// `disconnect`: reset or drop the front's traffic.
    Disconnect,
    /// `latency`: fixed delay.
    Latency,
    /// `loss`: packet loss.
    Loss,
    /// `jitter`: delay with jitter.
    Jitter,
    /// `combined`: delay, jitter and loss.
    Combined,
}

/// `phase` of a fault event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// `apply`: the fault took effect.
    Apply,
    /// `clear`: the fault was removed.
    Clear,
}

macro_rules! str_enum {
    ($t:ty, $what:literal, [$(($v:ident, $s:literal)),+ $(,)?]) => {
        impl $t {
            /// Every value, in the documented order.
            pub const ALL: &'static [$t] = &[$(<$t>::$v),+];
            /// The wire text.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),+ }
            }
            /// The accepted values, for error messages.
            pub const EXPECTED: &'static str = $what;
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> std::result::Result<Self, String> {
                match s {
                    $($s => Ok(<$t>::$v),)+
                    _ => Err(format!("expected {}, found {}", $what, excerpt(s))),
                }
            }
        }
    };
}

str_enum!(Mode, "run or clear", [(Run, "run"), (Clear, "clear")]);
str_enum!(
    Scenario,
    "disconnect, latency, loss, jitter or combined",
    [
        (Disconnect, "disconnect"),
        (Latency, "latency"),
        (Loss, "loss"),
        (Jitter, "jitter"),
        (Combined, "combined"),
    ]
);
str_enum!(
    Phase,
    "apply or clear",
    [(Apply, "apply"), (Clear, "clear")]
);

/// The eight parameter keys, in the order the original writes them.
pub const PARAMETER_KEYS: [&str; 8] = [
    "duration_sec",
    "target_ip",
    "ports",
    "disconnect_mode",
    "iface",
    "delay_ms",
    "jitter_ms",
    "loss_percent",
];

/// `parameters`: the original always records all eight, as **strings**, whatever the scenario.
///
/// `loss_percent` is Python float text (`2.5`, `5.0`); `ports` is the raw comma string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultParameters {
    /// `duration_sec`, e.g. `20`.
    pub duration_sec: String,
    /// `target_ip`, e.g. `182.254.243.31`.
    pub target_ip: String,
    /// `ports`, the raw comma string, e.g. `40001,40011`.
    pub ports: String,
    /// `disconnect_mode`: `reset` or `drop`.
    pub disconnect_mode: String,
    /// `iface`, e.g. `eth0`.
    pub iface: String,
    /// `delay_ms`, e.g. `250`.
    pub delay_ms: String,
    /// `jitter_ms`, e.g. `30`.
    pub jitter_ms: String,
    /// `loss_percent`, Python float text, e.g. `2.5`.
    pub loss_percent: String,
    /// Further string parameters of a newer producer, written after the eight (read back sorted by
    /// key).
    pub extra: Vec<(String, String)>,
}

impl FaultParameters {
    /// The eight parameters then the extras, as `(key, value)` in wire order.
    #[must_use]
    pub fn pairs(&self) -> Vec<(&str, &str)> {
        let mut v: Vec<(&str, &str)> = PARAMETER_KEYS
            .iter()
            .copied()
            .zip([
                self.duration_sec.as_str(),
                &self.target_ip,
                &self.ports,
                &self.disconnect_mode,
                &self.iface,
                &self.delay_ms,
                &self.jitter_ms,
                &self.loss_percent,
            ])
            .collect();
        v.extend(self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        v
    }

    fn slot(&mut self, key: &str) -> Option<&mut String> {
        Some(match key {
            "duration_sec" => &mut self.duration_sec,
            "target_ip" => &mut self.target_ip,
            "ports" => &mut self.ports,
            "disconnect_mode" => &mut self.disconnect_mode,
            "iface" => &mut self.iface,
            "delay_ms" => &mut self.delay_ms,
            "jitter_ms" => &mut self.jitter_ms,
            "loss_percent" => &mut self.loss_percent,
            _ => return None,
        })
    }
}

/// Format a loss percentage as Python's `str(float)` does for the values operators use
/// (`2.5` → `2.5`, `5` → `5.0`).
#[must_use]
pub fn python_float_text(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e16 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}

/// One fault event, as `ctp_fault_inject` (original or ours) appends it to the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultEvent {
    /// Wall-clock epoch ns, taken after the apply or clear commands finished (positive).
    pub ts_ns: i64,
    /// `run` or `clear`.
    pub mode: Mode,
    /// The scenario.
    pub scenario: Scenario,
    /// `apply` or `clear`.
    pub phase: Phase,
    /// True only when the commands were really executed (a dry run writes `false`).
    pub execute: bool,
    /// The eight string parameters (plus extras).
    pub parameters: FaultParameters,
    /// Extra (ours): the drill this event belongs to.
    pub drill_id: Option<String>,
    /// Extra (ours): the backend that applied the fault (`proxy`, `netfilter`).
    pub backend: Option<String>,
    /// Extra (ours): what was targeted, e.g. `127.0.0.1:40001`.
    pub target: Option<String>,
    /// Extra (ours): epoch ns at which the fault really took (or stopped taking) effect; readers
    /// that measure windows prefer it to `ts_ns`.
    pub effective_ts_ns: Option<i64>,
}

impl FaultEvent {
    /// An event without the optional extras (set them on the returned value as needed).
    #[must_use]
    pub fn new(
        ts_ns: i64,
        mode: Mode,
        scenario: Scenario,
        phase: Phase,
        execute: bool,
        parameters: FaultParameters,
    ) -> Self {
        FaultEvent {
            ts_ns,
            mode,
            scenario,
            phase,
            execute,
            parameters,
            drill_id: None,
            backend: None,
            target: None,
            effective_ts_ns: None,
        }
    }

    /// The moment the fault took or stopped taking effect: `effective_ts_ns` when recorded,
    /// otherwise `ts_ns`.
    #[must_use]
    pub fn effective_ns(&self) -> i64 {
        self.effective_ts_ns.unwrap_or(self.ts_ns)
    }

    /// The JSONL line (without the newline), byte for byte as the original's
    /// `json.dumps(record)` writes it, then the extra fields that are set.
    #[must_use]
    pub fn to_line(&self) -> String {
        let mut s = String::with_capacity(320);
        s.push_str("{\"ts_ns\": ");
        s.push_str(&self.ts_ns.to_string());
        s.push_str(", \"mode\": ");
        push_py_json_str(&mut s, self.mode.as_str());
        s.push_str(", \"scenario\": ");
        push_py_json_str(&mut s, self.scenario.as_str());
        s.push_str(", \"phase\": ");
        push_py_json_str(&mut s, self.phase.as_str());
        s.push_str(", \"execute\": ");
        s.push_str(if self.execute { "true" } else { "false" });
        s.push_str(", \"parameters\": {");
        for (i, (k, v)) in self.parameters.pairs().into_iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            push_py_json_str(&mut s, k);
            s.push_str(": ");
            push_py_json_str(&mut s, v);
        }
        s.push('}');
        for (k, v) in [
            ("drill_id", &self.drill_id),
            ("backend", &self.backend),
            ("target", &self.target),
        ] {
            if let Some(v) = v {
                s.push_str(", ");
                push_py_json_str(&mut s, k);
                s.push_str(": ");
                push_py_json_str(&mut s, v);
            }
        }
        if let Some(e) = self.effective_ts_ns {
            s.push_str(", \"effective_ts_ns\": ");
            s.push_str(&e.to_string());
        }
        s.push('}');
        s
    }

    /// Parse one line strictly. `source` and `line_no` label errors (`file:line: field: ...`).
    ///
    /// Rules: a JSON object; `ts_ns` a positive integer; `mode`, `scenario`, `phase` from the known
    /// sets (exact, non-empty); `execute` a real JSON bool (the string `"false"` is an error, where
    /// the original took it as true); `parameters` an object whose eight keys are present and every
    /// value a string; the extras, when present, typed (`effective_ts_ns` a positive integer, the
    /// others strings). Unknown top-level fields are accepted and not kept.
    pub fn parse_line(line: &str, source: &str, line_no: usize) -> Result<FaultEvent> {
        let err = |field: &str, expected: &str, found: String| {
            EvidenceError::parse(source, line_no, field, expected, found)
        };
        let value: Value = serde_json::from_str(line).map_err(|e| {
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
            err(
                "line",
                "a JSON object",
                format!("{msg} in {}", excerpt(line)),
            )
        })?;
        let Value::Object(obj) = value else {
            return Err(err("line", "a JSON object", excerpt(line)));
        };
        let ts_ns = positive_int(&obj, "ts_ns")
            .map_err(|found| err("ts_ns", "a positive integer", found))?
            .ok_or_else(|| err("ts_ns", "a positive integer", "nothing".into()))?;
        let mode =
            known::<Mode>(&obj, "mode", Mode::EXPECTED).map_err(|(e, f)| err("mode", e, f))?;
        let scenario = known::<Scenario>(&obj, "scenario", Scenario::EXPECTED)
            .map_err(|(e, f)| err("scenario", e, f))?;
        let phase =
            known::<Phase>(&obj, "phase", Phase::EXPECTED).map_err(|(e, f)| err("phase", e, f))?;
        let execute = match obj.get("execute") {
            Some(Value::Bool(b)) => *b,
            other => {
                return Err(err(
                    "execute",
                    "a JSON bool (true or false)",
                    describe(other),
                ));
            }
        };
        let parameters = match obj.get("parameters") {
            Some(Value::Object(p)) => {
                let mut params = FaultParameters::default();
                let mut seen = [false; 8];
                for (k, v) in p {
                    let Value::String(v) = v else {
                        return Err(err(
                            &format!("parameters.{k}"),
                            "a string",
                            describe(Some(v)),
                        ));
                    };
                    if let Some(i) = PARAMETER_KEYS.iter().position(|x| x == k) {
                        seen[i] = true;
                    }
                    match params.slot(k) {
                        Some(slot) => slot.clone_from(v),
                        None => params.extra.push((k.clone(), v.clone())),
                    }
                }
                if let Some(i) = seen.iter().position(|s| !s) {
                    return Err(err(
                        &format!("parameters.{}", PARAMETER_KEYS[i]),
                        "a string (all eight parameters are always recorded)",
                        "nothing".into(),
                    ));
                }
                params
            }
            other => return Err(err("parameters", "an object of strings", describe(other))),
        };
        let opt_str = |key: &str| -> Result<Option<String>> {
            match obj.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                other => Err(err(key, "a string", describe(other))),
            }
        };
        let drill_id = opt_str("drill_id")?;
        let backend = opt_str("backend")?;
        let target = opt_str("target")?;
        let effective_ts_ns = positive_int(&obj, "effective_ts_ns")
            .map_err(|found| err("effective_ts_ns", "a positive integer", found))?;
        Ok(FaultEvent {
            ts_ns,
            mode,
            scenario,
            phase,
            execute,
            parameters,
            drill_id,
            backend,
            target,
            effective_ts_ns,
        })
    }
}

fn describe(v: Option<&Value>) -> String {
    match v {
        None => "nothing".to_string(),
        Some(v) => excerpt(&v.to_string()),
    }
}

/// `Ok(None)` when absent; `Err(found)` when present but not a positive integer.
fn positive_int(obj: &Map<String, Value>, key: &str) -> std::result::Result<Option<i64>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) if v > 0 => Ok(Some(v)),
            _ => Err(excerpt(&n.to_string())),
        },
        other => Err(describe(other)),
    }
}

fn known<T: FromStr>(
    obj: &Map<String, Value>,
    key: &str,
    expected: &'static str,
) -> std::result::Result<T, (&'static str, String)> {
    match obj.get(key) {
        Some(Value::String(s)) => s.parse::<T>().map_err(|_| (expected, excerpt(s))),
        other => Err((expected, describe(other))),
    }
}

/// Append `s` as a JSON string the way Python's `json.dumps` (`ensure_ascii=True`) does: `\"`,
/// `\\`, `\b \f \n \r \t`, other control characters and everything outside printable ASCII as
/// lower-case `\uXXXX` (UTF-16 surrogate pairs above U+FFFF).
pub fn push_py_json_str(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Escape every non-ASCII character of already-serialized JSON text as `\uXXXX` (Python's
/// `ensure_ascii`). Valid because non-ASCII characters can only occur inside JSON strings.
#[must_use]
pub fn ensure_ascii(json: &str) -> String {
    use std::fmt::Write as _;
    if json.is_ascii() {
        return json.to_string();
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    out
}

/// Streams fault events from a JSONL source, skipping blank lines; errors name `source:line`.
/// The line handling is [`JsonlReader`]'s; only the strict per-line parser is this module's.
pub struct FaultEventReader<R> {
    lines: JsonlReader<R>,
    source: String,
}

impl<R: BufRead> FaultEventReader<R> {
    /// Read from `reader`; `source` labels errors (path or `-`).
    pub fn new(reader: R, source: impl Into<String>) -> Self {
        let source = source.into();
        FaultEventReader {
            lines: JsonlReader::new(reader, source.clone()),
            source,
        }
    }
}

impl<R: BufRead> Iterator for FaultEventReader<R> {
    /// The 1-based line number and the event.
    type Item = Result<(usize, FaultEvent)>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.lines.next_line()? {
            Ok((n, line)) => FaultEvent::parse_line(line, &self.source, n).map(|e| (n, e)),
            Err(e) => Err(e),
        })
    }
}

/// Read every fault event of `input` (with its line number), in file order.
pub fn read_fault_events(input: &Input) -> Result<Vec<(usize, FaultEvent)>> {
    FaultEventReader::new(input.open()?, input.label()).collect()
}

/// Append one event line to the event log at `path` (created with its folders if missing), as one
/// `write` on an `O_APPEND` descriptor, then fsync: concurrent appenders never interleave within a
/// line, and the event survives a crash right after.
pub fn append_fault_event(path: &Path, event: &FaultEvent) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| EvidenceError::io("cannot create folder", dir, e))?;
    }
    let mut line = event.to_line();
    line.push('\n');
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| EvidenceError::io("cannot open", path, e))?;
    f.write_all(line.as_bytes())
        .and_then(|()| f.sync_data())
        .map_err(|e| EvidenceError::io("cannot append to", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"ts_ns": 1770734543207087000, "mode": "run", "scenario": "disconnect", "phase": "apply", "execute": true, "parameters": {"duration_sec": "20", "target_ip": "182.254.243.31", "ports": "40001,40011", "disconnect_mode": "reset", "iface": "eth0", "delay_ms": "250", "jitter_ms": "30", "loss_percent": "2.5"}}"#;

    #[test]
    fn example_round_trips_byte_for_byte() {
        let ev = FaultEvent::parse_line(EXAMPLE, "f", 1).unwrap();
        assert_eq!(ev.ts_ns, 1_770_734_543_207_087_000);
        assert_eq!(ev.scenario, Scenario::Disconnect);
        assert_eq!(ev.phase, Phase::Apply);
        assert!(ev.execute);
        assert_eq!(ev.parameters.ports, "40001,40011");
        assert_eq!(ev.parameters.loss_percent, "2.5");
        assert_eq!(ev.to_line(), EXAMPLE);
    }

    #[test]
    fn extras_round_trip_after_the_original_fields() {
        let mut ev = FaultEvent::parse_line(EXAMPLE, "f", 1).unwrap();
        let built = FaultEvent::new(
            1_770_734_543_207_087_000,
            Mode::Run,
            Scenario::Disconnect,
            Phase::Apply,
            true,
            FaultParameters {
                duration_sec: "20".into(),
                target_ip: "182.254.243.31".into(),
                ports: "40001,40011".into(),
                disconnect_mode: "reset".into(),
                iface: "eth0".into(),
                delay_ms: "250".into(),
                jitter_ms: "30".into(),
                loss_percent: python_float_text(2.5),
                extra: Vec::new(),
            },
        );
        assert_eq!(built, ev);
        assert_eq!(built.to_line(), EXAMPLE);
        ev.drill_id = Some("drill-1".into());
        ev.backend = Some("proxy".into());
        ev.target = Some("127.0.0.1:40001".into());
        ev.effective_ts_ns = Some(1_770_734_543_207_000_000);
        ev.parameters
            .extra
            .push(("z_note".into(), "é \"q\"\n".into()));
        let line = ev.to_line();
        assert!(line.starts_with(&EXAMPLE[..EXAMPLE.len() - 2]), "{line}");
        assert!(line.ends_with(r#", "z_note": "\u00e9 \"q\"\n"}, "drill_id": "drill-1", "backend": "proxy", "target": "127.0.0.1:40001", "effective_ts_ns": 1770734543207000000}"#), "{line}");
        assert!(line.is_ascii());
        let back = FaultEvent::parse_line(&line, "f", 1).unwrap();
        assert_eq!(back, ev);
        assert_eq!(back.effective_ns(), 1_770_734_543_207_000_000);
        // serde_json agrees it is valid JSON.
        let _: Value = serde_json::from_str(&line).unwrap();
    }

    #[test]
    fn python_escapes() {
        let mut s = String::new();
        push_py_json_str(&mut s, "a\u{1}\u{7f}\u{1F600}\t\\");
        assert_eq!(s, r#""a\u0001\u007f\ud83d\ude00\t\\""#);
        assert_eq!(ensure_ascii("{\"a\": \"é\"}"), "{\"a\": \"\\u00e9\"}");
        assert_eq!(python_float_text(5.0), "5.0");
        assert_eq!(python_float_text(2.5), "2.5");
    }

    fn err_of(line: &str) -> String {
        FaultEvent::parse_line(line, "ev.jsonl", 7)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn strict_reader_names_line_and_field() {
        let e = err_of(&EXAMPLE.replace("\"execute\": true", "\"execute\": \"false\""));
        assert!(
            e.starts_with("ev.jsonl:7: execute: expected a JSON bool"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace("1770734543207087000", "0"));
        assert!(
            e.starts_with("ev.jsonl:7: ts_ns: expected a positive integer"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace("1770734543207087000", "\"1770734543207087000\""));
        assert!(e.starts_with("ev.jsonl:7: ts_ns:"), "{e}");
        let e = err_of(&EXAMPLE.replace("1770734543207087000", "1.5"));
        assert!(e.starts_with("ev.jsonl:7: ts_ns:"), "{e}");
        let e = err_of(&EXAMPLE.replace("\"disconnect\", \"phase\"", "\"\", \"phase\""));
        assert!(
            e.starts_with("ev.jsonl:7: scenario: expected disconnect,"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace("\"apply\"", "\"start\""));
        assert!(
            e.starts_with("ev.jsonl:7: phase: expected apply or clear"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace("\"run\"", "\"plan\""));
        assert!(e.starts_with("ev.jsonl:7: mode:"), "{e}");
        let e = err_of(&EXAMPLE.replace("\"20\"", "20"));
        assert!(
            e.starts_with("ev.jsonl:7: parameters.duration_sec: expected a string"),
            "{e}"
        );
        let e = err_of(&EXAMPLE.replace("\"iface\": \"eth0\", ", ""));
        assert!(e.starts_with("ev.jsonl:7: parameters.iface:"), "{e}");
        let e = err_of(&EXAMPLE.replace("}}", "}, \"effective_ts_ns\": -3}"));
        assert!(e.starts_with("ev.jsonl:7: effective_ts_ns:"), "{e}");
        let e = err_of("{\"ts_ns\": 1,");
        assert!(
            e.starts_with("ev.jsonl:7: line: expected a JSON object"),
            "{e}"
        );
        let e = err_of("[1]");
        assert!(e.starts_with("ev.jsonl:7: line:"), "{e}");
    }

    #[test]
    fn reader_streams_and_skips_blank_lines() {
        let text = format!(
            "{EXAMPLE}\n\n{}\nnot json\n",
            EXAMPLE.replace("apply", "clear")
        );
        let mut r = FaultEventReader::new(text.as_bytes(), "ev");
        assert_eq!(r.next().unwrap().unwrap().0, 1);
        let (n, ev) = r.next().unwrap().unwrap();
        assert_eq!((n, ev.phase), (3, Phase::Clear));
        let e = r.next().unwrap().unwrap_err().to_string();
        assert!(e.starts_with("ev:4: line:"), "{e}");
    }

    #[test]
    fn append_writes_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("runtime/fault_events.jsonl");
        let ev = FaultEvent::parse_line(EXAMPLE, "f", 1).unwrap();
        append_fault_event(&p, &ev).unwrap();
        append_fault_event(&p, &ev).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            format!("{EXAMPLE}\n{EXAMPLE}\n")
        );
        let evs = read_fault_events(&Input::Path(p)).unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[1].0, 2);
    }

    #[test]
    fn enums_parse_and_print() {
        for s in Scenario::ALL {
            assert_eq!(s.as_str().parse::<Scenario>().unwrap(), *s);
        }
        assert!("Disconnect".parse::<Scenario>().is_err());
        assert_eq!(Mode::Clear.to_string(), "clear");
        assert_eq!(Phase::ALL.len(), 2);
    }
}
