//! wal-verify: the counterpart of the original's `verify_wal_recovery_evidence`. Same flags and
//! success line; it also rejects what the original wrongly passed (result=fail, NaN, negative
//! values, recovery before failure, an rto_seconds the timestamps contradict, duplicate keys, lines
//! that are not key=value, dry-run evidence).

use clap::{CommandFactory as _, Parser};
use evidence_core::cli::EXIT_STATUS_HELP;
use evidence_core::dotenv::{EnvDoc, parse_u64};
use evidence_core::provenance::KeyCase;
use evidence_core::verify::{Verdict, VerifyArgs, read_env};
use evidence_core::{EvidenceError, Exit, Result};

const AFTER_HELP: &str = "\
CHECKS: the ten keys drill_id, release_version, wal_path, failure_start_utc, recovery_complete_utc,
rto_seconds, rpo_events, operator, result, notes are present and non-empty; the two timestamps are
UTC (YYYY-MM-DDTHH:MM:SS[.fraction]Z) and ordered; rto_seconds is a finite number >= 0 that agrees
with the timestamps within their resolution; rpo_events is an integer >= 0; result is pass or fail
(fail is a breach); rto_seconds <= --max-rto-seconds and rpo_events <= --max-rpo-events; evidence of
a dry run (provenance_dry_run=1) is rejected unless --allow-dry-run. Duplicate keys and lines that
are not key=value are errors (file:line). Extra keys and # comments are fine.

EXIT STATUS here: 0 verified; 1 a threshold is breached, result=fail or dry-run evidence; 2 malformed
evidence, unreadable file or bad usage.

EXAMPLE:
  wal-verify --evidence-file docs/results/wal_recovery_result.env --max-rto-seconds 10 --max-rpo-events 0
  wal-drill --execute --output-file - | wal-verify --evidence-file - --format json

";

/// Verify WAL recovery evidence (`wal_recovery_result.env`).
#[derive(Debug, Parser)]
#[command(name = "wal-verify", version, after_help = format!("{AFTER_HELP}{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// Evidence file, format and dry-run acceptance.
    #[command(flatten)]
    pub args: VerifyArgs,
    /// RTO target, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub max_rto_seconds: f64,
    /// RPO target, acknowledged events lost.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_rpo_events: u64,
}

fn non_empty<'a>(doc: &'a EnvDoc, key: &str) -> Option<&'a str> {
    doc.get(key).filter(|v| !v.is_empty())
}

/// Check `doc` against the thresholds and return the verdict.
#[must_use]
pub fn check(doc: &EnvDoc, max_rto: f64, max_rpo: u64, allow_dry_run: bool) -> Verdict {
    let mut v = Verdict::new(doc.source());
    v.require_keys(doc, &wal_core::EVIDENCE_KEYS);

    let rto = v.duration_agrees(
        doc,
        "failure_start_utc",
        "recovery_complete_utc",
        "rto_seconds",
    );
    v.provenance_times(doc, KeyCase::Lower);
    let rpo = non_empty(doc, "rpo_events").and_then(|text| {
        let n = parse_u64(text);
        if n.is_none() {
            v.malformed(
                "rpo_events",
                format!(
                    "line {}: rpo_events must be an integer >= 0, found {text:?}",
                    doc.line_of("rpo_events")
                ),
            );
        }
        n
    });

    if let Some(result) = non_empty(doc, "result") {
        match result.to_ascii_lowercase().as_str() {
            "pass" => v.pass("result", "result=pass"),
            "fail" => v.breach("result", "result=fail: the drill failed"),
            _ => v.malformed(
                "result",
                format!(
                    "line {}: result must be pass or fail, found {result:?}",
                    doc.line_of("result")
                ),
            ),
        }
    }

    if let Some(rto) = rto {
        if rto <= max_rto {
            v.pass("rto_threshold", format!("rto_seconds={rto} <= {max_rto}"));
        } else {
            v.breach(
                "rto_threshold",
                format!("rto_seconds threshold exceeded: actual={rto} max={max_rto}"),
            );
        }
    }
    if let Some(rpo) = rpo {
        if rpo <= max_rpo {
            v.pass("rpo_threshold", format!("rpo_events={rpo} <= {max_rpo}"));
        } else {
            v.breach(
                "rpo_threshold",
                format!("rpo_events threshold exceeded: actual={rpo} max={max_rpo}"),
            );
        }
    }
    v.dry_run(doc, "provenance_dry_run", allow_dry_run);
    v
}

/// Run the tool.
pub fn run(cli: Cli) -> Result<Exit> {
    if !cli.max_rto_seconds.is_finite() || cli.max_rto_seconds < 0.0 {
        return Err(EvidenceError::usage(format!(
            "--max-rto-seconds must be a finite number >= 0, found {}",
            cli.max_rto_seconds
        )));
    }
    let doc = read_env(&cli.args.evidence_file)?;
    let verdict = check(
        &doc,
        cli.max_rto_seconds,
        cli.max_rpo_events,
        cli.args.allow_dry_run,
    );
    verdict.emit(cli.args.format)
}

/// clap's command, for docs and the CLI check.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
