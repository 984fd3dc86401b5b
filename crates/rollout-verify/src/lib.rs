//! `rollout-verify`: checks `rollout_result.env`. The original's checks (the five head keys,
//! `ROLLOUT_TOTAL_STEPS` an integer > 0, each step's name, status and duration, `--require-fault-step`)
//! plus what the original let through: dry-run evidence and `simulated_ok` steps (unless
//! `--allow-dry-run`), `ROLLOUT_SUCCESS=false`, any failed step, a simulated step in an executed
//! rollout, a step count that disagrees with the steps listed, a negative or non-integer duration, a
//! failed step named while success is claimed, step start times out of order, a rollback that did not
//! restore the release running before, a non-finite rollback figure, duplicate keys.

use std::collections::BTreeSet;

use clap::{CommandFactory as _, Parser};
use deploy_core::rollout::HEAD_KEYS;
use evidence_core::cli::EXIT_STATUS_HELP;
use evidence_core::dotenv::{EnvDoc, parse_bool, parse_non_negative_f64, parse_u64};
use evidence_core::provenance::KeyCase;
use evidence_core::time::parse_utc;
use evidence_core::verify::{Verdict, VerifyArgs, read_env};
use evidence_core::{Exit, Result};

/// Verify rollout evidence (rollout_result.env).
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  rollout-orchestrator --env-config configs/deploy/environments/sim.yaml --inject-fault --execute && \\\n    rollout-verify --evidence-file docs/results/rollout_result.env --require-fault-step\n\n{EXIT_STATUS_HELP}"
    )
)]
pub struct Cli {
    /// Common verifier flags.
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Require a step named fault_injection.
    #[arg(long)]
    pub require_fault_step: bool,
}

const STATUSES: [&str; 3] = ["ok", "simulated_ok", "failed"];

fn bool_key(v: &mut Verdict, doc: &EnvDoc, key: &str) -> Option<bool> {
    let raw = doc.get(key)?;
    let b = parse_bool(raw);
    if b.is_none() {
        v.malformed(
            key,
            format!(
                "line {}: {key} must be a boolean, found {raw:?}",
                doc.line_of(key)
            ),
        );
    }
    b
}

/// Verify.
pub fn run(cli: Cli) -> Result<Exit> {
    let doc = read_env(&cli.verify.evidence_file)?;
    let allow = cli.verify.allow_dry_run;
    let mut v = Verdict::new(cli.verify.evidence_file.label());
    let mut missing = false;
    for k in HEAD_KEYS {
        if doc.get(k).is_none() {
            v.malformed("required_keys", format!("missing key: {k}"));
            missing = true;
        }
    }
    if missing {
        return v.emit(cli.verify.format);
    }
    v.pass("required_keys", "the five ROLLOUT_ head keys are present");

    // One check reports a ROLLOUT_DRY_RUN that is not a boolean (and rejects a dry run).
    v.dry_run(&doc, "ROLLOUT_DRY_RUN", allow);
    let dry = doc
        .get("ROLLOUT_DRY_RUN")
        .and_then(parse_bool)
        .unwrap_or(false);
    if let Some(p) = doc.get("PROVENANCE_DRY_RUN")
        && parse_bool(p) != Some(dry)
    {
        v.malformed(
            "dry_run_consistent",
            format!("PROVENANCE_DRY_RUN={p} disagrees with ROLLOUT_DRY_RUN"),
        );
    }

    let success = bool_key(&mut v, &doc, "ROLLOUT_SUCCESS");
    match success {
        Some(true) => v.pass("success", "ROLLOUT_SUCCESS=true"),
        Some(false) => v.breach(
            "success",
            format!(
                "ROLLOUT_SUCCESS=false (failed step: {:?})",
                doc.get("ROLLOUT_FAILED_STEP").unwrap_or_default()
            ),
        ),
        None => {}
    }
    let failed_step = doc.get("ROLLOUT_FAILED_STEP").unwrap_or_default();
    if success == Some(true) && !failed_step.is_empty() {
        v.malformed(
            "failed_step",
            format!("ROLLOUT_SUCCESS=true but ROLLOUT_FAILED_STEP={failed_step}"),
        );
    }
    if let Some(i) = doc.get("ROLLOUT_INTERRUPTED").and_then(parse_bool)
        && i
    {
        v.breach(
            "interrupted",
            "ROLLOUT_INTERRUPTED=true: the rollout was interrupted",
        );
    }

    let total_raw = doc.get("ROLLOUT_TOTAL_STEPS").unwrap_or_default();
    let total = match parse_u64(total_raw) {
        Some(n) if n > 0 => n,
        Some(_) => {
            v.malformed("total_steps", "ROLLOUT_TOTAL_STEPS must be > 0");
            return v.emit(cli.verify.format);
        }
        None => {
            v.malformed(
                "total_steps",
                format!("ROLLOUT_TOTAL_STEPS must be integer, found {total_raw:?}"),
            );
            return v.emit(cli.verify.format);
        }
    };
    // Steps listed beyond the count, or numbered steps missing.
    let listed: BTreeSet<u64> = doc
        .entries()
        .iter()
        .filter_map(|e| {
            let rest = e.key.strip_prefix("STEP_")?;
            let (n, _) = rest.split_once('_')?;
            parse_u64(n)
        })
        .collect();
    if let Some(extra) = listed.iter().find(|&&n| n == 0 || n > total) {
        v.malformed(
            "step_count",
            format!("ROLLOUT_TOTAL_STEPS={total} but step {extra} is listed"),
        );
    } else {
        v.pass("step_count", format!("{total} steps listed"));
    }

    let mut names = Vec::new();
    let mut last_start: Option<(u64, i64)> = None;
    for i in 1..=total {
        let (kn, ks, kd) = (
            format!("STEP_{i}_NAME"),
            format!("STEP_{i}_STATUS"),
            format!("STEP_{i}_DURATION_MS"),
        );
        let (Some(name), Some(status), Some(dur)) = (doc.get(&kn), doc.get(&ks), doc.get(&kd))
        else {
            v.malformed("steps", format!("step {i} lacks {kn}, {ks} or {kd}"));
            continue;
        };
        names.push(name.to_string());
        if !STATUSES.contains(&status) {
            v.malformed("steps", format!("step {i} has invalid status: {status}"));
        } else if status == "failed" {
            v.breach(
                "steps",
                format!(
                    "step {i} ({name}) failed{}",
                    doc.get(&format!("STEP_{i}_DETAIL"))
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            );
        } else if status == "simulated_ok" && !dry {
            v.breach("steps", format!("step {i} ({name}) is simulated_ok in an executed rollout (ROLLOUT_DRY_RUN=0): nothing ran"));
        } else if status == "simulated_ok" && !allow {
            v.breach("steps", format!("step {i} ({name}) is simulated_ok: a simulated step proves nothing (use --allow-dry-run)"));
        }
        if parse_u64(dur).is_none() {
            v.malformed("steps", format!("step {i} has invalid duration: {dur}"));
        }
        if let Some(t) = doc.get(&format!("STEP_{i}_STARTED_UTC")) {
            match parse_utc(t) {
                None => v.malformed(
                    "steps",
                    format!("step {i} has a bad STEP_{i}_STARTED_UTC: {t:?}"),
                ),
                Some(u) => {
                    // Steps run one after another: a step that starts before the one before
                    // it is evidence contradicting itself (malformed), not a failed rollout.
                    if let Some((p, prev)) = last_start
                        && u.ns < prev
                    {
                        v.malformed(
                            "step_times_ordered",
                            format!("step {i} starts before step {p}"),
                        );
                    }
                    last_start = Some((i, u.ns));
                }
            }
        }
    }
    if !v.failed("steps") {
        v.pass("steps", format!("steps: {}", names.join(", ")));
    }
    if names.iter().collect::<BTreeSet<_>>().len() != names.len() {
        v.malformed(
            "step_names",
            format!("a step name repeats: {}", names.join(", ")),
        );
    }
    if cli.require_fault_step {
        v.expect(
            "fault_step",
            names.iter().any(|n| n == "fault_injection"),
            if names.iter().any(|n| n == "fault_injection") {
                "fault_injection step present"
            } else {
                "fault_injection step is required but not found"
            },
        );
    }

    // Our extras, when present: the rollback must have restored the release running before.
    if let Some(secs) = doc
        .get("ROLLOUT_ROLLBACK_SECONDS")
        .filter(|s| !s.is_empty())
        && parse_non_negative_f64(secs).is_none()
    {
        v.malformed(
            "rollback_seconds",
            format!("ROLLOUT_ROLLBACK_SECONDS must be a finite number >= 0, found {secs:?}"),
        );
    }
    let rolled_back = names.iter().any(|n| n == "rollback");
    if let (Some(before), Some(after)) = (
        doc.get("ROLLOUT_RELEASE_BEFORE"),
        doc.get("ROLLOUT_RELEASE_AFTER"),
    ) && rolled_back
        && !dry
        && before != "unknown"
    {
        v.expect(
            "previous_release_restored",
            before == after,
            format!("release before {before}, after the rollback {after}"),
        );
    }
    v.provenance_times(&doc, KeyCase::Upper);
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
