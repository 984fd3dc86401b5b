//! The verifiers' common shape: a list of named checks, each pass, breach or malformed; printed as
//! the original's `verification passed: <path>` line or as JSONL, one verdict per check.

use serde::Serialize;

use crate::cli::{stdout_write, tool_name};
use crate::dotenv::{EnvDoc, parse_non_negative_f64, parse_u64};
use crate::error::Result;
use crate::exit::Exit;
use crate::io::Input;
use crate::provenance::{KeyCase, PROVENANCE_KEYS};
use crate::time::{UtcTime, decimal_resolution_ns, format_utc, now_ns, parse_utc};

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
    /// Accept evidence from a dry run (rejected by default: it proves nothing). Default on under the
    /// original's command name; each acceptance is a warning on stderr.
    #[arg(long)]
    pub allow_dry_run: bool,
    /// Accept the original's hand-typed shape (no provenance block); the verdict line then says that
    /// nothing proves the drill was executed. Default on under the original's command name.
    #[arg(long)]
    pub allow_legacy: bool,
    /// Set when the tool runs under the original's command name (`make install-compat`).
    #[arg(skip)]
    pub compat_name: Option<String>,
}

impl VerifyArgs {
    /// When the process was started under `original` (the file name of `argv[0]`, e.g.
    /// `verify_wal_recovery_evidence`), turn on `--allow-legacy` and `--allow-dry-run` by default,
    /// as the seed manual's steps (hand-filled templates, dry runs) expect.
    pub fn apply_original_name(&mut self, original: &str) {
        let argv0 = std::env::args_os().next().unwrap_or_default();
        let name = std::path::Path::new(&argv0)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name == original {
            self.compat_name = Some(original.to_string());
        }
    }

    /// Dry-run evidence is accepted (flag, or the original's command name).
    #[must_use]
    pub fn dry_run_allowed(&self) -> bool {
        self.allow_dry_run || self.compat_name.is_some()
    }

    /// The original's hand-typed shape is accepted (flag, or the original's command name).
    #[must_use]
    pub fn legacy_allowed(&self) -> bool {
        self.allow_legacy || self.compat_name.is_some()
    }

    fn why(&self, flag: &str, explicit: bool) -> String {
        match (&self.compat_name, explicit) {
            (_, true) | (None, _) => flag.to_string(),
            (Some(n), false) => format!("the default under the original's command name {n}"),
        }
    }
}

/// Clock skew tolerated between a drill's timestamps, its provenance window and this host's clock.
pub const CLOCK_SKEW_NS: i64 = 2_000_000_000;

/// One kind of evidence: which drill writes it, which verifier checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    /// Short name, e.g. `WAL recovery`.
    pub what: &'static str,
    /// The tool that writes it (its `provenance_tool`).
    pub drill: &'static str,
    /// Our verifier.
    pub verifier: &'static str,
    /// The original's verifier command.
    pub original: &'static str,
    /// The case of its keys.
    pub case: KeyCase,
    /// Keys only this kind has; one of them marks a file as this kind.
    pub markers: &'static [&'static str],
}

/// `wal_recovery_result.env`.
pub const WAL: Kind = Kind {
    what: "WAL recovery",
    drill: "wal-drill",
    verifier: "wal-verify",
    original: "verify_wal_recovery_evidence",
    case: KeyCase::Lower,
    markers: &["rto_seconds", "rpo_events", "wal_path", "failure_start_utc"],
};

/// `deploy_rollback_result.env`.
pub const ROLLBACK: Kind = Kind {
    what: "deploy rollback",
    drill: "rollback-drill",
    verifier: "rollback-verify",
    original: "verify_deploy_rollback_evidence",
    case: KeyCase::Lower,
    markers: &[
        "rollback_target",
        "rollback_seconds",
        "rollback_start_utc",
        "failure_injected",
    ],
};

/// `rollout_result.env`.
pub const ROLLOUT: Kind = Kind {
    what: "rollout",
    drill: "rollout-orchestrator",
    verifier: "rollout-verify",
    original: "verify_rollout_evidence",
    case: KeyCase::Upper,
    markers: &["ROLLOUT_ENV", "ROLLOUT_TOTAL_STEPS", "ROLLOUT_SUCCESS"],
};

/// `failover_result.env` (the original's failover orchestrator).
pub const FAILOVER: Kind = Kind {
    what: "failover",
    drill: "failover-orchestrator",
    verifier: "failover-verify",
    original: "verify_failover_evidence",
    case: KeyCase::Upper,
    markers: &["FAILOVER_ENV", "FAILOVER_SUCCESS", "FAILOVER_TOTAL_STEPS"],
};

const KINDS: [Kind; 4] = [WAL, ROLLBACK, ROLLOUT, FAILOVER];

/// What the provenance block says, as far as it could be read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Prov {
    /// No provenance block at all: the original's hand-typed shape (accepted only when allowed).
    pub legacy: bool,
    /// `started`, `finished` (epoch ns) when both parsed and ordered.
    pub window: Option<(i64, i64)>,
    /// `provenance_dry_run`, when it parsed.
    pub dry_run: Option<bool>,
}

impl Prov {
    /// True when the file is a drill's (it has a provenance block): every key the drill writes
    /// is then required.
    #[must_use]
    pub fn strict(&self) -> bool {
        !self.legacy
    }
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
    note: Option<String>,
    now_ns: i64,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
}

impl Verdict {
    /// A verdict about `source` (path or `-`).
    #[must_use]
    pub fn new(source: impl Into<String>) -> Self {
        Verdict {
            source: source.into(),
            checks: Vec::new(),
            note: None,
            now_ns: now_ns(),
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
    ///
    /// The verdict is [`crate::cli::decide`]d before anything is written, so a closed stdout
    /// (`| head -0`) cannot turn a 1 or 2 into 0.
    pub fn emit(&self, format: Format) -> Result<Exit> {
        let exit = self.exit();
        crate::cli::decide(exit);
        match format {
            Format::Text => {
                if exit == Exit::Pass {
                    let note = self
                        .note
                        .as_ref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default();
                    stdout_write(&format!("verification passed: {}{note}\n", self.source))?;
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
                    note: self.note.as_deref(),
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

    /// Check `start <= end` and that `seconds_key` agrees with `end - start` within the coarser
    /// resolution of the three values (not the sum: `0.018` against whole seconds may differ by up
    /// to 1 s; `0.018388` against microsecond timestamps by 1 µs). Either failure means the
    /// evidence contradicts itself: malformed (exit 2). Returns the stated seconds and the span of
    /// the timestamps, each when valid.
    pub fn duration_agrees(
        &mut self,
        doc: &EnvDoc,
        start_key: &str,
        end_key: &str,
        seconds_key: &str,
    ) -> Durations {
        let start = self.utc(doc, start_key);
        let end = self.utc(doc, end_key);
        let secs = self.non_negative(doc, seconds_key);
        let mut d = Durations {
            stated: secs,
            span: None,
            start_ns: start.map(|t| t.ns),
            end_ns: end.map(|t| t.ns),
        };
        let (Some(start), Some(end)) = (start, end) else {
            return d;
        };
        if end.ns < start.ns {
            self.malformed(
                "timestamps_ordered",
                format!("{end_key} must be >= {start_key}"),
            );
            return d;
        }
        self.pass("timestamps_ordered", format!("{start_key} <= {end_key}"));
        #[expect(clippy::cast_precision_loss, reason = "spans far below 2^52 ns")]
        let span_ns = (end.ns - start.ns) as f64;
        d.span = Some(span_ns / 1e9);
        let (Some(text), Some(value)) = (doc.get(seconds_key), secs) else {
            return d;
        };
        #[expect(clippy::cast_precision_loss, reason = "resolutions are small")]
        let tolerance = start
            .resolution_ns
            .max(end.resolution_ns)
            .max(decimal_resolution_ns(text)) as f64;
        let detail = format!(
            "{seconds_key}={text} vs {end_key}-{start_key}={:.6}s (tolerance {:.6}s, the coarser resolution)",
            span_ns / 1e9,
            tolerance / 1e9
        );
        if (value * 1e9 - span_ns).abs() <= tolerance {
            self.pass("duration_matches_timestamps", detail);
        } else {
            self.malformed("duration_matches_timestamps", detail);
        }
        d
    }

    /// A duration threshold that cannot be talked down: breached when either the stated seconds or
    /// the timestamps' difference exceeds `max`. Keeps the original's message for the stated value.
    pub fn duration_threshold(
        &mut self,
        check: &str,
        seconds_key: &str,
        span_label: &str,
        d: &Durations,
        max: f64,
    ) {
        match (d.stated, d.span) {
            (Some(s), _) if s > max => self.breach(
                check,
                format!("{seconds_key} threshold exceeded: actual={s} max={max}"),
            ),
            (_, Some(span)) if span > max => self.breach(
                check,
                format!(
                    "{seconds_key} threshold exceeded by the timestamps: {span_label}={span:.6}s max={max} ({seconds_key}={})",
                    d.stated.map_or_else(|| "?".to_string(), |s| s.to_string())
                ),
            ),
            (Some(s), _) => self.pass(check, format!("{seconds_key}={s} <= {max}")),
            _ => {}
        }
    }

    /// Which kind of evidence `doc` is. When it is another kind's (its marker keys, or its
    /// provenance names another drill), record a malformed `evidence_kind` naming the verifier it
    /// belongs to and return false; the caller should stop there.
    pub fn kind(&mut self, doc: &EnvDoc, ours: &Kind) -> bool {
        let tool = doc
            .get("provenance_tool")
            .or_else(|| doc.get("PROVENANCE_TOOL"));
        let by_tool = tool.and_then(|t| KINDS.iter().find(|k| k.drill == t));
        let by_keys = || {
            KINDS
                .iter()
                .filter(|k| k.markers.iter().any(|m| doc.get(m).is_some()))
                .find(|k| *k != ours && !ours.markers.iter().any(|m| doc.get(m).is_some()))
        };
        let other = match by_tool {
            Some(k) if k == ours => None,
            Some(k) => Some((k, format!("provenance names {}", k.drill))),
            None => by_keys().map(|k| {
                let m = k
                    .markers
                    .iter()
                    .find(|m| doc.get(m).is_some())
                    .copied()
                    .unwrap_or_default();
                (k, format!("it has {m}"))
            }),
        };
        match other {
            Some((k, why)) => {
                self.malformed(
                    "evidence_kind",
                    format!(
                        "this is {} evidence ({why}), not {} evidence: check it with {} ({})",
                        k.what, ours.what, k.verifier, k.original
                    ),
                );
                false
            }
            None => {
                self.pass("evidence_kind", format!("{} evidence", ours.what));
                true
            }
        }
    }

    /// The provenance block: required and complete, naming `kind.drill`, its times UTC, ordered and
    /// not in the future, `dry_run` 0 or 1, the config digest 64 hex digits or `none`. Without any
    /// provenance key the file is the original's hand-typed shape: accepted only when
    /// `args.legacy_allowed()`, with a warning and a note on the verdict line.
    pub fn provenance(&mut self, doc: &EnvDoc, kind: &Kind, args: &VerifyArgs) -> Prov {
        let key = |k: &str| match kind.case {
            KeyCase::Lower => k.to_string(),
            KeyCase::Upper => k.to_ascii_uppercase(),
        };
        let keys: Vec<String> = PROVENANCE_KEYS.iter().map(|k| key(k)).collect();
        let mut prov = Prov::default();
        let present: Vec<&String> = keys.iter().filter(|k| doc.get(k).is_some()).collect();
        if present.is_empty() {
            prov.legacy = true;
            if args.legacy_allowed() {
                let why = args.why("--allow-legacy", args.allow_legacy);
                self.pass(
                    "provenance",
                    format!(
                        "no provenance block: the original's hand-typed shape, accepted ({why})"
                    ),
                );
                self.note = Some(
                    "legacy evidence without provenance: nothing proves the drill was executed"
                        .to_string(),
                );
                crate::cli::warn(&format!(
                    "{}: accepted the original's hand-typed shape without provenance ({why}): nothing proves the drill was executed",
                    self.source
                ));
            } else {
                self.malformed(
                    "provenance",
                    format!(
                        "no provenance block ({}...): nothing shows that {} wrote this file; the original's hand-typed shape is accepted only with --allow-legacy",
                        keys[0], kind.drill
                    ),
                );
            }
            return prov;
        }
        let missing: Vec<&str> = keys
            .iter()
            .filter(|k| doc.get(k).is_none_or(str::is_empty))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            self.malformed(
                "provenance",
                format!(
                    "incomplete provenance block: missing or empty {}",
                    missing.join(", ")
                ),
            );
            return prov;
        }
        let get = |k: &str| doc.get(&key(k)).unwrap_or_default();
        let mut ok = true;
        let tool = get("provenance_tool");
        if tool != kind.drill {
            ok = false;
            self.malformed(
                "provenance",
                format!(
                    "line {}: {}={tool:?}: {} evidence is written by {}",
                    doc.line_of(&key("provenance_tool")),
                    key("provenance_tool"),
                    kind.what,
                    kind.drill
                ),
            );
        }
        match get("provenance_dry_run") {
            "0" => prov.dry_run = Some(false),
            "1" => prov.dry_run = Some(true),
            v => {
                ok = false;
                self.malformed(
                    "provenance",
                    format!("{} must be 0 or 1, found {v:?}", key("provenance_dry_run")),
                );
            }
        }
        let sha = get("provenance_config_sha256");
        if sha != "none"
            && !(sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        {
            ok = false;
            self.malformed(
                "provenance",
                format!(
                    "{} must be 64 lower-case hex digits or none, found {sha:?}",
                    key("provenance_config_sha256")
                ),
            );
        }
        let (sk, fk) = (
            key("provenance_started_utc"),
            key("provenance_finished_utc"),
        );
        match (self.utc(doc, &sk), self.utc(doc, &fk)) {
            (Some(a), Some(b)) if a.ns > b.ns => {
                ok = false;
                self.malformed("provenance", format!("{fk} is before {sk}"));
            }
            (Some(a), Some(b)) if b.ns > self.now_ns + CLOCK_SKEW_NS => {
                ok = false;
                self.malformed(
                    "provenance",
                    format!(
                        "{fk}={} lies in the future (more than 2 s ahead of this host's clock)",
                        get("provenance_finished_utc")
                    ),
                );
                let _ = a;
            }
            (Some(a), Some(b)) => prov.window = Some((a.ns, b.ns)),
            _ => ok = false,
        }
        if ok {
            self.pass(
                "provenance",
                format!(
                    "written by {tool} {} on {} for {}",
                    get("provenance_version"),
                    get("provenance_host"),
                    get("provenance_operator")
                ),
            );
        }
        prov
    }

    /// Every drill timestamp lies inside the provenance window (with [`CLOCK_SKEW_NS`]) and none
    /// in the future beyond it. `times` are (key, epoch ns). Legacy files are held to "not in the
    /// future" only.
    pub fn times_within(&mut self, prov: &Prov, times: &[(String, i64)]) {
        let mut bad = false;
        for (k, t) in times {
            if *t > self.now_ns + CLOCK_SKEW_NS {
                bad = true;
                self.malformed(
                    "times_within_run",
                    format!(
                        "{k}={} lies in the future (more than 2 s ahead of this host's clock)",
                        format_utc(*t)
                    ),
                );
            } else if let Some((a, b)) = prov.window
                && (*t < a - CLOCK_SKEW_NS || *t > b + CLOCK_SKEW_NS)
            {
                bad = true;
                self.malformed(
                    "times_within_run",
                    format!(
                        "{k}={} lies outside the drill's run {} .. {} (provenance)",
                        format_utc(*t),
                        format_utc(a),
                        format_utc(b)
                    ),
                );
            }
        }
        if !bad && !times.is_empty() {
            self.pass(
                "times_within_run",
                format!("{} timestamps inside the run", times.len()),
            );
        }
    }

    /// Reject a dry run unless allowed; an accepted one is a warning. `what` says how the file
    /// shows it (`provenance_dry_run=1`, `result=dry_run`).
    pub fn dry_run_gate(&mut self, dry: bool, what: &str, args: &VerifyArgs) {
        if !dry {
            self.pass("dry_run", "executed (not a dry run)");
        } else if args.dry_run_allowed() {
            let why = args.why("--allow-dry-run", args.allow_dry_run);
            self.pass("dry_run", format!("{what}: dry run accepted ({why})"));
            crate::cli::warn(&format!(
                "{}: accepted evidence of a dry run ({what}; {why}): nothing was executed",
                self.source
            ));
        } else {
            self.breach(
                "dry_run",
                format!("{what}: evidence from a dry run proves nothing (use --allow-dry-run to accept it)"),
            );
        }
    }

    /// The keys a drill always writes (values may be empty): malformed when any is absent.
    pub fn require_present(&mut self, doc: &EnvDoc, check: &str, keys: &[&str]) -> bool {
        let missing: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| doc.get(k).is_none())
            .collect();
        if missing.is_empty() {
            self.pass(check, format!("{} keys present", keys.len()));
            true
        } else {
            self.malformed(
                check,
                format!("missing key(s) the drill writes: {}", missing.join(", ")),
            );
            false
        }
    }

    /// A non-negative integer key (malformed when not; `None` without a record when absent or empty).
    pub fn uint(&mut self, doc: &EnvDoc, key: &str) -> Option<u64> {
        let v = doc.get(key).filter(|v| !v.is_empty())?;
        let n = parse_u64(v);
        if n.is_none() {
            self.malformed(
                key,
                format!(
                    "line {}: {key} must be an integer >= 0, found {v:?}",
                    doc.line_of(key)
                ),
            );
        }
        n
    }

    /// A `true`/`false` key as the drills write it (malformed otherwise; `None` when absent or empty).
    pub fn boolean(&mut self, doc: &EnvDoc, key: &str) -> Option<bool> {
        let v = doc.get(key).filter(|v| !v.is_empty())?;
        match v {
            "true" => Some(true),
            "false" => Some(false),
            _ => {
                self.malformed(
                    key,
                    format!(
                        "line {}: {key} must be true or false, found {v:?}",
                        doc.line_of(key)
                    ),
                );
                None
            }
        }
    }

    /// A key whose value must be one of `allowed` (malformed otherwise; `None` when absent).
    pub fn one_of<'d>(&mut self, doc: &'d EnvDoc, key: &str, allowed: &[&str]) -> Option<&'d str> {
        let v = doc.get(key)?;
        if allowed.contains(&v) {
            Some(v)
        } else {
            self.malformed(
                key,
                format!(
                    "line {}: {key} must be one of: {}, found {v:?}",
                    doc.line_of(key),
                    allowed
                        .iter()
                        .map(|a| if a.is_empty() { "(empty)" } else { a })
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            None
        }
    }

    /// Record a malformed `check` when `contradiction` holds (the evidence contradicts itself).
    pub fn consistent(&mut self, check: &str, contradiction: bool, detail: impl Into<String>) {
        if contradiction {
            self.malformed(check, detail);
        }
    }

    /// Record a pass for `check` unless it already failed.
    pub fn pass_unless_failed(&mut self, check: &str, detail: impl Into<String>) {
        if !self.failed(check) {
            self.pass(check, detail);
        }
    }
}

/// A duration stated in seconds and the span of its two timestamps.
#[derive(Debug, Clone, Copy, Default)]
pub struct Durations {
    /// The stated seconds, when valid.
    pub stated: Option<f64>,
    /// end − start in seconds, when both parse and are ordered.
    pub span: Option<f64>,
    /// The start, epoch ns, when it parses.
    pub start_ns: Option<i64>,
    /// The end, epoch ns, when it parses.
    pub end_ns: Option<i64>,
}

/// Read and parse a `.env` evidence input. Parse errors (duplicate keys, non key=value lines) are
/// returned as errors (exit 2).
pub fn read_env(input: &Input) -> Result<EnvDoc> {
    let text = input.read_to_string()?;
    EnvDoc::parse(&text, &input.label())
}
