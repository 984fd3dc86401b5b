//! `rollback-verify`: checks `deploy_rollback_result.env` (SOP 5). The original's checks (the twelve
//! keys, platform, strict UTC timestamps in order, `rollback_seconds` within the maximum,
//! `health_check_passed=true`, `result=pass`) plus what the original let through: dry-run evidence
//! (unless `--allow-dry-run`), NaN and other non-finite numbers, a `rollback_seconds` that disagrees
//! with its timestamps beyond their resolution, a rollback target equal to the release, duplicate
//! keys and unparsable lines.

use clap::{CommandFactory as _, Parser};
use deploy_core::rollback::{KEYS, PLATFORMS};
use evidence_core::cli::EXIT_STATUS_HELP;
use evidence_core::dotenv::parse_bool;
use evidence_core::provenance::KeyCase;
use evidence_core::verify::{Verdict, VerifyArgs, read_env};
use evidence_core::{EvidenceError, Exit, Result};

/// Verify deploy/rollback drill evidence (deploy_rollback_result.env).
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  rollback-drill --execute --stop-after && \\\n    rollback-verify --evidence-file docs/results/deploy_rollback_result.env --max-rollback-seconds 180\n\n{EXIT_STATUS_HELP}"
    )
)]
pub struct Cli {
    /// Common verifier flags.
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Largest acceptable rollback_seconds.
    #[arg(long, value_name = "SECS", default_value_t = 180.0)]
    pub max_rollback_seconds: f64,
}

/// Verify.
pub fn run(cli: Cli) -> Result<Exit> {
    let max = cli.max_rollback_seconds;
    if !max.is_finite() || max < 0.0 {
        return Err(EvidenceError::usage(format!(
            "--max-rollback-seconds must be a finite number >= 0, found {max}"
        )));
    }
    let doc = read_env(&cli.verify.evidence_file)?;
    let mut v = Verdict::new(cli.verify.evidence_file.label());
    let complete = v.require_keys(&doc, &KEYS);
    if !complete {
        return v.emit(cli.verify.format);
    }
    let get = |k: &str| doc.get(k).unwrap_or_default();
    let line = |k: &str| doc.line_of(k);

    // Dry run: the provenance flag (checked when present) or result=dry_run.
    let result = get("result").to_ascii_lowercase();
    let prov_dry = doc.get("provenance_dry_run");
    if prov_dry.is_some() {
        v.dry_run(&doc, "provenance_dry_run", cli.verify.allow_dry_run);
    } else if result == "dry_run" {
        if cli.verify.allow_dry_run {
            v.pass("dry_run", "result=dry_run (allowed)");
        } else {
            v.breach("dry_run", "result=dry_run: evidence from a dry run proves nothing (use --allow-dry-run to accept it)");
        }
    }
    let dry = prov_dry.and_then(parse_bool).unwrap_or(false) || result == "dry_run";

    let platform = get("platform");
    if PLATFORMS.iter().any(|p| p.eq_ignore_ascii_case(platform)) {
        v.pass("platform", format!("platform={platform}"));
    } else {
        v.malformed(
            "platform",
            format!(
                "line {}: platform must be one of: {}, found {platform:?}",
                line("platform"),
                PLATFORMS.join(", ")
            ),
        );
    }

    let release = get("release_version");
    let target = get("rollback_target");
    if release == target {
        v.breach(
            "rollback_target_differs",
            format!("rollback_target={target} equals release_version: nothing was rolled back"),
        );
    } else {
        v.pass("rollback_target_differs", format!("{release} -> {target}"));
    }

    // Timestamps strict and ordered; rollback_seconds finite, >= 0, consistent with them.
    if let Some(secs) = v.duration_agrees(
        &doc,
        "rollback_start_utc",
        "rollback_complete_utc",
        "rollback_seconds",
    ) {
        if dry && cli.verify.allow_dry_run {
            v.pass(
                "rollback_threshold",
                "dry run: rollback_seconds not measured",
            );
        } else {
            v.expect(
                "rollback_threshold",
                secs <= max,
                if secs <= max {
                    format!("rollback_seconds={secs} <= {max}")
                } else {
                    format!("rollback_seconds threshold exceeded: actual={secs} max={max}")
                },
            );
        }
    }

    match parse_bool(get("health_check_passed")) {
        None => v.malformed(
            "health_check_passed",
            format!(
                "line {}: health_check_passed must be true/false, found {:?}",
                line("health_check_passed"),
                get("health_check_passed")
            ),
        ),
        Some(true) => v.pass("health_check_passed", "health_check_passed=true"),
        Some(false) if dry && cli.verify.allow_dry_run => {
            v.pass("health_check_passed", "dry run: no health check was run");
        }
        Some(false) => v.breach("health_check_passed", "health_check_passed must be true"),
    }

    if result == "pass" {
        v.pass("result", "result=pass");
    } else if dry && cli.verify.allow_dry_run {
        v.pass(
            "result",
            format!("result={} (dry run allowed)", get("result")),
        );
    } else {
        v.breach(
            "result",
            format!("result must be pass, found {:?}", get("result")),
        );
    }

    v.provenance_times(&doc, KeyCase::Lower);
    v.emit(cli.verify.format)
}

/// The clap command (for docs and tests).
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
