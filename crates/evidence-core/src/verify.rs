//! The verifiers' common shape: a list of named checks, each pass, breach or malformed; printed as
//! the original's `verification passed: <path>` line or as JSONL, one verdict per check.

use serde::Serialize;

use crate::cli::{stdout_write, tool_name};
use crate::dotenv::{EnvDoc, parse_bool, parse_non_negative_f64};
use crate::error::Result;
use crate::exit::Exit;
use crate::io::Input;
use crate::provenance::KeyCase;
use crate::time::{UtcTime, decimal_resolution_ns, now_ns, parse_utc};

/// Flags every verifier shares.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Evidence file to check (`-` for stdin).
    #[arg(long, value_name = "PATH")]
    pub evidence_file: Input,
    /// Output: `text` prints the original's `verification passed: <path>`; `json` prints one JSONL
    /// record per check and a final verdict record.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Accept evidence from a dry run (rejected by default: it proves nothing).
    #[arg(long)]
    pub allow_dry_run: bool,
}

/// Output format of a verifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human text.
    Text,
    /// JSONL.
    Json,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The check holds.
    Pass,
    /// The evidence is well-formed but shows a failed drill or a missed threshold (exit 1).
    Breach,
    /// The evidence is malformed (exit 2).
    Malformed,
}

/// One check's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Stable check name.
    pub check: String,
    /// Its outcome.
    pub outcome: Outcome,
    /// What was found.
    pub detail: String,
}

/// All checks of one evidence file.
#[derive(Debug, Clone)]
pub struct Verdict {
    source: String,
    checks: Vec<CheckResult>,
}

#[derive(Serialize)]
struct CheckRecord<'a> {
    kind: &'static str,
    ts_ns: i64,
    tool: &'a str,
    evidence: &'a str,
    #[serde(flatten)]
    check: &'a CheckResult,
}

#[derive(Serialize)]
struct VerdictRecord<'a> {
    kind: &'static str,
    ts_ns: i64,
    tool: &'a str,
    evidence: &'a str,
    passed: bool,
    exit: u8,
    checks: usize,
    failed: usize,
}

impl Verdict {
    /// A verdict about `source` (path or `-`).
    #[must_use]
    pub fn new(source: impl Into<String>) -> Self {
        Verdict {
            source: source.into(),
            checks: Vec::new(),
        }
    }

    fn add(&mut self, check: &str, outcome: Outcome, detail: impl Into<String>) {
        self.checks.push(CheckResult {
            check: check.to_string(),
            outcome,
            detail: detail.into(),
        });
    }

    /// Record a passing check.
    pub fn pass(&mut self, check: &str, detail: impl Into<String>) {
        self.add(check, Outcome::Pass, detail);
    }

    /// Record a breach (exit 1).
    pub fn breach(&mut self, check: &str, detail: impl Into<String>) {
        self.add(check, Outcome::Breach, detail);
    }

    /// Record malformed evidence (exit 2).
    pub fn malformed(&mut self, check: &str, detail: impl Into<String>) {
        self.add(check, Outcome::Malformed, detail);
    }

    /// Pass when `ok`, else breach.
    pub fn expect(&mut self, check: &str, ok: bool, detail: impl Into<String>) {
        let o = if ok { Outcome::Pass } else { Outcome::Breach };
        self.add(check, o, detail);
    }

    /// The checks so far.
    #[must_use]
    pub fn checks(&self) -> &[CheckResult] {
        &self.checks
    }

    /// True when a check with this name failed (breach or malformed).
    #[must_use]
    pub fn failed(&self, check: &str) -> bool {
        self.checks
            .iter()
            .any(|c| c.check == check && c.outcome != Outcome::Pass)
    }

    /// The exit code: 2 if any check is malformed, else 1 if any breached, else 0.
    #[must_use]
    pub fn exit(&self) -> Exit {
        self.checks.iter().fold(Exit::Pass, |acc, c| {
            acc.worst(match c.outcome {
                Outcome::Pass => Exit::Pass,
                Outcome::Breach => Exit::Breach,
                Outcome::Malformed => Exit::BadInput,
            })
        })
    }

    /// Print the verdict in `format` and return the exit code. Text: `verification passed: <path>`
    /// on stdout, or one `<tool>: error: verification failed: ...` line per failed check on stderr.
    pub fn emit(&self, format: Format) -> Result<Exit> {
        let exit = self.exit();
        match format {
            Format::Text => {
                if exit == Exit::Pass {
                    stdout_write(&format!("verification passed: {}\n", self.source))?;
                } else {
                    for c in self.checks.iter().filter(|c| c.outcome != Outcome::Pass) {
                        crate::cli::info(&format!(
                            "error: verification failed: {}: {}: {}",
                            self.source, c.check, c.detail
                        ));
                    }
                }
            }
            Format::Json => {
                let mut out = Vec::new();
                let ts = now_ns();
                for c in &self.checks {
                    let rec = CheckRecord {
                        kind: "verify.check",
                        ts_ns: ts,
                        tool: tool_name(),
                        evidence: &self.source,
                        check: c,
                    };
                    let _ = crate::jsonl::write_record(&mut out, &rec);
                }
                let rec = VerdictRecord {
                    kind: "verify.verdict",
                    ts_ns: ts,
                    tool: tool_name(),
                    evidence: &self.source,
                    passed: exit == Exit::Pass,
                    exit: exit.code(),
                    checks: self.checks.len(),
                    failed: self
                        .checks
                        .iter()
                        .filter(|c| c.outcome != Outcome::Pass)
                        .count(),
                };
                let _ = crate::jsonl::write_record(&mut out, &rec);
                stdout_write(&String::from_utf8_lossy(&out))?;
            }
        }
        Ok(exit)
    }

    /// Check that every key is present and non-empty (malformed otherwise). Returns true when all are.
    pub fn require_keys(&mut self, doc: &EnvDoc, keys: &[&str]) -> bool {
        let mut all = true;
        for k in keys {
            match doc.entry(k) {
                None => {
                    all = false;
                    self.malformed("required_keys", format!("missing required key: {k}"));
                }
                Some(e) if e.value.is_empty() => {
                    all = false;
                    self.malformed(
                        "required_keys",
                        format!("line {}: required key {k} is empty", e.line),
                    );
                }
                Some(_) => {}
            }
        }
        if all {
            self.pass(
                "required_keys",
                format!("{} required keys present", keys.len()),
            );
        }
        all
    }

    /// Parse an RFC 3339 UTC timestamp key (malformed when bad; `None` without a record when the
    /// key is absent or empty, which [`Verdict::require_keys`] reports).
    pub fn utc(&mut self, doc: &EnvDoc, key: &str) -> Option<UtcTime> {
        let v = doc.get(key).filter(|v| !v.is_empty())?;
        let t = parse_utc(v);
        if t.is_none() {
            self.malformed(
                key,
                format!(
                    "line {}: {key} must be UTC like 2026-02-11T12:00:00Z (fractions allowed), found {v:?}",
                    doc.line_of(key)
                ),
            );
        }
        t
    }

    /// Parse a finite, non-negative number key (malformed when bad; NaN, inf, negatives rejected;
    /// `None` without a record when the key is absent or empty).
    pub fn non_negative(&mut self, doc: &EnvDoc, key: &str) -> Option<f64> {
        let v = doc.get(key).filter(|v| !v.is_empty())?;
        let x = parse_non_negative_f64(v);
        if x.is_none() {
            self.malformed(
                key,
                format!(
                    "line {}: {key} must be a finite number >= 0, found {v:?}",
                    doc.line_of(key)
                ),
            );
        }
        x
    }

    /// Check `start <= end` and that `seconds_key` agrees with `end - start` within the resolution
    /// of the three values. Either failure means the evidence contradicts itself: malformed (exit 2),
    /// not a breach. Also reports bad timestamps and a bad number. Returns the seconds when valid.
    pub fn duration_agrees(
        &mut self,
        doc: &EnvDoc,
        start_key: &str,
        end_key: &str,
        seconds_key: &str,
    ) -> Option<f64> {
        let start = self.utc(doc, start_key);
        let end = self.utc(doc, end_key);
        let secs = self.non_negative(doc, seconds_key);
        let (Some(start), Some(end)) = (start, end) else {
            return secs;
        };
        if end.ns < start.ns {
            self.malformed(
                "timestamps_ordered",
                format!("{end_key} must be >= {start_key}"),
            );
            return secs;
        }
        self.pass("timestamps_ordered", format!("{start_key} <= {end_key}"));
        let (Some(text), Some(value)) = (doc.get(seconds_key), secs) else {
            return secs;
        };
        #[expect(clippy::cast_precision_loss, reason = "spans far below 2^52 ns")]
        let span_ns = (end.ns - start.ns) as f64;
        #[expect(clippy::cast_precision_loss, reason = "resolutions are small")]
        let tolerance =
            (start.resolution_ns.max(end.resolution_ns) + decimal_resolution_ns(text)) as f64;
        let detail = format!(
            "{seconds_key}={text} vs {end_key}-{start_key}={:.6}s (tolerance {:.6}s)",
            span_ns / 1e9,
            tolerance / 1e9
        );
        if (value * 1e9 - span_ns).abs() <= tolerance {
            self.pass("duration_matches_timestamps", detail);
        } else {
            self.malformed("duration_matches_timestamps", detail);
        }
        secs
    }

    /// When the provenance block is present, check its times: both UTC, started <= finished.
    /// Times that contradict each other make the evidence malformed (exit 2). Evidence without a
    /// provenance block (the original's) is not judged here.
    pub fn provenance_times(&mut self, doc: &EnvDoc, case: KeyCase) {
        let key = |k: &str| match case {
            KeyCase::Lower => k.to_string(),
            KeyCase::Upper => k.to_ascii_uppercase(),
        };
        let (started, finished) = (
            key("provenance_started_utc"),
            key("provenance_finished_utc"),
        );
        if doc.get(&started).is_none() || doc.get(&finished).is_none() {
            return;
        }
        match (self.utc(doc, &started), self.utc(doc, &finished)) {
            (Some(a), Some(b)) if a.ns <= b.ns => {
                self.pass(
                    "provenance_times_ordered",
                    format!("{started} <= {finished}"),
                );
            }
            (Some(_), Some(_)) => self.malformed(
                "provenance_times_ordered",
                format!("{finished} is before {started}"),
            ),
            _ => {}
        }
    }

    /// Reject dry-run evidence unless allowed: reads `dry_run_key` (e.g. `provenance_dry_run` or
    /// `ROLLOUT_DRY_RUN`) when present.
    pub fn dry_run(&mut self, doc: &EnvDoc, dry_run_key: &str, allow: bool) {
        let Some(v) = doc.get(dry_run_key) else {
            return;
        };
        match parse_bool(v) {
            None => self.malformed(
                "dry_run",
                format!("line {}: {dry_run_key} must be a boolean, found {v:?}", doc.line_of(dry_run_key)),
            ),
            Some(true) if !allow => self.breach(
                "dry_run",
                format!("{dry_run_key}={v}: evidence from a dry run proves nothing (use --allow-dry-run to accept it)"),
            ),
            Some(d) => self.pass("dry_run", format!("{dry_run_key}={v}{}", if d { " (allowed)" } else { "" })),
        }
    }
}

/// Read and parse a `.env` evidence input. Parse errors (duplicate keys, non key=value lines) are
/// returned as errors (exit 2).
pub fn read_env(input: &Input) -> Result<EnvDoc> {
    let text = input.read_to_string()?;
    EnvDoc::parse(&text, &input.label())
}
