//! `failover-verify`: checks `failover_result.env`. The original's checks (the seven head keys,
//! `FAILOVER_SUCCESS=true`, `FAILOVER_TOTAL_STEPS` > 0, each step's name, status and duration, the
//! duration and lag thresholds) plus what the original let through:
//! - dry-run evidence and `simulated_ok` steps (rejected unless `--allow-dry-run`; a simulated step in
//!   an executed drill is always rejected);
//! - no provenance block (who ran it, where, when);
//! - steps out of the fixed order (`precheck`, `backup_sync_check`, `demote_primary`,
//!   `promote_standby`, `verify`), repeated, missing from a successful drill, or a step count that
//!   disagrees with the steps listed;
//! - success that contradicts the failed step (or a failed step that is not the first failed one);
//! - a duration that is not a measured client-visible outage, or NaN/inf/negative; a lag that was not
//!   counted by sequence numbers; per-store figures that disagree with the totals;
//! - split-brain writes above zero; a compensated (rolled-back) failover; a new primary whose role,
//!   read from the server, is not primary.

use std::collections::BTreeSet;

use clap::{CommandFactory as _, Parser};
use evidence_core::cli::EXIT_STATUS_HELP;
use evidence_core::dotenv::{EnvDoc, parse_bool, parse_non_negative_f64, parse_u64};
use evidence_core::time::parse_utc;
use evidence_core::verify::{FAILOVER, Verdict, VerifyArgs, read_env};
use evidence_core::{EvidenceError, Exit, Result};
use failover_core::evidence::{DURATION_MEASURED, HEAD_KEYS, LAG_MEASURED, STEP_NAMES};

/// Verify failover evidence (failover_result.env).
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  failover-orchestrator --env-config configs/deploy/environments/prodlike_multi_host.yaml --mode planned --execute && \\\n    failover-verify --evidence-file docs/results/failover_result.env --max-failover-seconds 300 --max-data-lag-events 0\n\n{EXIT_STATUS_HELP}"
    )
)]
pub struct Cli {
    /// Common verifier flags.
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Largest acceptable client-visible write outage, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 180.0)]
    pub max_failover_seconds: f64,
    /// Largest acceptable number of acknowledged events missing after the failover.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_data_lag_events: u64,
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

fn u64_key(v: &mut Verdict, doc: &EnvDoc, key: &str) -> Option<u64> {
    let raw = doc.get(key).filter(|s| !s.is_empty())?;
    let n = parse_u64(raw);
    if n.is_none() {
        v.malformed(
            key,
            format!(
                "line {}: {key} must be an integer >= 0, found {raw:?}",
                doc.line_of(key)
            ),
        );
    }
    n
}

/// Verify.
pub fn run(cli: Cli) -> Result<Exit> {
    if !cli.max_failover_seconds.is_finite() || cli.max_failover_seconds < 0.0 {
        return Err(EvidenceError::usage(format!(
            "--max-failover-seconds must be a finite number >= 0, found {}",
            cli.max_failover_seconds
        )));
    }
    let mut cli = cli;
    cli.verify.apply_original_name(FAILOVER.original);
    let doc = read_env(&cli.verify.evidence_file)?;
    let allow = cli.verify.dry_run_allowed();
    let mut v = Verdict::new(cli.verify.evidence_file.label());
    if !v.kind(&doc, &FAILOVER) {
        return v.emit(cli.verify.format);
    }

    // 1. The original's required keys (FAILOVER_FAILED_STEP may be empty).
    let mut missing = false;
    for k in HEAD_KEYS {
        match doc.entry(k) {
            None => {
                v.malformed("required_keys", format!("missing required key: {k}"));
                missing = true;
            }
            Some(e) if e.value.is_empty() && k != "FAILOVER_FAILED_STEP" => {
                v.malformed(
                    "required_keys",
                    format!("line {}: required key {k} is empty", e.line),
                );
                missing = true;
            }
            Some(_) => {}
        }
    }
    if missing {
        return v.emit(cli.verify.format);
    }
    v.pass("required_keys", "the seven FAILOVER_ head keys are present");

    // 2. Dry run and provenance (evidence-core's shared checks).
    let dry = match doc.get("FAILOVER_DRY_RUN").and_then(parse_bool) {
        Some(d) => d,
        None => {
            v.malformed(
                "dry_run",
                format!(
                    "line {}: FAILOVER_DRY_RUN must be a boolean, found {:?}",
                    doc.line_of("FAILOVER_DRY_RUN"),
                    doc.get("FAILOVER_DRY_RUN").unwrap_or_default()
                ),
            );
            false
        }
    };
    v.dry_run_gate(dry, "FAILOVER_DRY_RUN=1", &cli.verify);
    let prov = v.provenance(&doc, &FAILOVER, &cli.verify);
    if let Some(p) = prov.dry_run
        && p != dry
    {
        v.malformed(
            "dry_run_consistent",
            format!(
                "PROVENANCE_DRY_RUN={} disagrees with FAILOVER_DRY_RUN",
                u8::from(p)
            ),
        );
    }
    // Every timestamp of the drill lies inside its provenance window.
    let times: Vec<(String, i64)> = doc
        .entries()
        .iter()
        .filter(|e| {
            (e.key.starts_with("STEP_") && e.key.ends_with("_STARTED_UTC"))
                || e.key.ends_with("_ACK_BEFORE_UTC")
                || e.key.ends_with("_ACK_AFTER_UTC")
        })
        .filter_map(|e| parse_utc(&e.value).map(|t| (e.key.clone(), t.ns)))
        .collect();
    v.times_within(&prov, &times);

    // 3. Success and the failed step.
    let success = bool_key(&mut v, &doc, "FAILOVER_SUCCESS");
    let failed_step = doc.get("FAILOVER_FAILED_STEP").unwrap_or_default();
    match success {
        Some(true) => v.pass("success", "FAILOVER_SUCCESS=true"),
        Some(false) => v.breach(
            "success",
            format!(
                "FAILOVER_SUCCESS must be true (FAILOVER_SUCCESS=false, failed step: {failed_step:?})"
            ),
        ),
        None => {}
    }
    if success == Some(true) && !failed_step.is_empty() {
        v.malformed(
            "failed_step",
            format!("FAILOVER_SUCCESS=true but FAILOVER_FAILED_STEP={failed_step}"),
        );
    }
    if success == Some(false) && failed_step.is_empty() {
        v.malformed(
            "failed_step",
            "FAILOVER_SUCCESS=false but FAILOVER_FAILED_STEP is empty: which step failed?",
        );
    }
    if bool_key(&mut v, &doc, "FAILOVER_COMPENSATED") == Some(true) {
        v.breach(
            "compensated",
            "FAILOVER_COMPENSATED=true: the promotion failed and the old primary was restored",
        );
    }

    // 4. Steps.
    let total_raw = doc.get("FAILOVER_TOTAL_STEPS").unwrap_or_default();
    let total = match parse_u64(total_raw) {
        Some(n) if n > 0 => n,
        Some(_) => {
            v.malformed("total_steps", "FAILOVER_TOTAL_STEPS must be > 0");
            return v.emit(cli.verify.format);
        }
        None => {
            v.malformed(
                "total_steps",
                format!("FAILOVER_TOTAL_STEPS must be an integer, found {total_raw:?}"),
            );
            return v.emit(cli.verify.format);
        }
    };
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
            format!("FAILOVER_TOTAL_STEPS={total} but step {extra} is listed"),
        );
    }
    let mut names: Vec<String> = Vec::new();
    let mut first_failed: Option<String> = None;
    for i in 1..=total {
        let (kn, ks, kd) = (
            format!("STEP_{i}_NAME"),
            format!("STEP_{i}_STATUS"),
            format!("STEP_{i}_DURATION_MS"),
        );
        let name = doc.get(&kn).unwrap_or_default();
        let status = doc.get(&ks).unwrap_or_default();
        if name.is_empty() || status.is_empty() {
            v.malformed("steps", format!("step {i} lacks {kn} or {ks}"));
            continue;
        }
        names.push(name.to_string());
        if !STATUSES.contains(&status) {
            v.malformed(
                "steps",
                format!("STEP_{i}_STATUS has invalid value: {status}"),
            );
        } else if status == "failed" {
            first_failed.get_or_insert_with(|| name.to_string());
            v.breach(
                "steps",
                format!(
                    "step {i} ({name}) failed{}",
                    doc.get(&format!("STEP_{i}_DETAIL"))
                        .filter(|d| !d.is_empty())
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            );
        } else if status == "simulated_ok" && !dry {
            v.breach(
                "steps",
                format!("step {i} ({name}) is simulated_ok in an executed failover (FAILOVER_DRY_RUN=0): nothing ran"),
            );
        } else if status == "simulated_ok" && !allow {
            v.breach(
                "steps",
                format!("step {i} ({name}) is simulated_ok: a simulated step proves nothing (use --allow-dry-run)"),
            );
        }
        match doc.get(&kd) {
            Some(d) if parse_u64(d).is_some() => {}
            Some(d) => v.malformed(
                "steps",
                format!("{kd} must be an integer >= 0, found {d:?}"),
            ),
            None => v.malformed("steps", format!("{kd} must be an integer (missing)")),
        }
    }
    if !v.failed("steps") {
        v.pass("steps", format!("steps: {}", names.join(", ")));
    }
    // The fixed order: the steps listed are the original's five, in order, each once; a drill that
    // stopped early lists a prefix ending in its failed step.
    let prefix_ok =
        names.len() <= STEP_NAMES.len() && names.iter().zip(STEP_NAMES).all(|(a, b)| a == b);
    if prefix_ok {
        v.pass("step_order", "steps in the fixed order");
    } else {
        v.malformed(
            "step_order",
            format!(
                "steps must be {} in this order (a failed drill may stop early), found {}",
                STEP_NAMES.join(", "),
                names.join(", ")
            ),
        );
    }
    if success == Some(true) && prefix_ok && names.len() < STEP_NAMES.len() {
        v.malformed(
            "step_order",
            format!(
                "FAILOVER_SUCCESS=true but only {} of the 5 steps ran ({} missing)",
                names.len(),
                STEP_NAMES[names.len()..].join(", ")
            ),
        );
    }
    if success == Some(true) && first_failed.is_some() {
        v.malformed(
            "failed_step",
            format!(
                "FAILOVER_SUCCESS=true but step {} failed",
                first_failed.as_deref().unwrap_or_default()
            ),
        );
    }
    if !failed_step.is_empty() && first_failed.as_deref() != Some(failed_step) {
        let found = first_failed.map_or_else(|| "none".to_string(), |s| s.clone());
        v.malformed(
            "failed_step",
            format!(
                "FAILOVER_FAILED_STEP={failed_step} but the first failed step listed is {found}"
            ),
        );
    }

    // 5. Duration: a finite number, measured, within the bound.
    let dur_raw = doc.get("FAILOVER_DURATION_SECONDS").unwrap_or_default();
    let measured = !dry;
    let duration = parse_non_negative_f64(dur_raw);
    match doc.get("FAILOVER_DURATION_SOURCE") {
        Some(DURATION_MEASURED) => v.pass(
            "duration_measured",
            "FAILOVER_DURATION_SECONDS is the measured client-visible outage",
        ),
        _ if !measured => {}
        Some(other) => v.breach(
            "duration_measured",
            format!("FAILOVER_DURATION_SOURCE={other}: the duration is not a measured client-visible write outage"),
        ),
        None => v.breach(
            "duration_measured",
            "no FAILOVER_DURATION_SOURCE: the duration is not shown to be a measured client-visible write outage",
        ),
    }
    match duration {
        None if dur_raw == "unmeasured" => {}
        None => v.malformed(
            "failover_duration_seconds",
            format!("FAILOVER_DURATION_SECONDS must be a finite number >= 0, found {dur_raw:?}"),
        ),
        Some(d) if d > cli.max_failover_seconds => v.breach(
            "failover_duration_seconds",
            format!(
                "failover_duration_seconds threshold exceeded: actual={dur_raw} max={}",
                cli.max_failover_seconds
            ),
        ),
        Some(_) => v.pass(
            "failover_duration_seconds",
            format!("{dur_raw} s <= {}", cli.max_failover_seconds),
        ),
    }

    // 6. Lag: an integer, counted by sequence, within the bound.
    let lag_raw = doc.get("DATA_SYNC_LAG_EVENTS").unwrap_or_default();
    match doc.get("DATA_SYNC_LAG_SOURCE") {
        Some(LAG_MEASURED) => v.pass(
            "lag_measured",
            "DATA_SYNC_LAG_EVENTS counted by sequence numbers",
        ),
        _ if !measured => {}
        Some(other) => v.breach(
            "lag_measured",
            format!("DATA_SYNC_LAG_SOURCE={other}: the lag was not counted"),
        ),
        None => v.breach(
            "lag_measured",
            "no DATA_SYNC_LAG_SOURCE: the lag may be copied from a config (the original's), not measured",
        ),
    }
    let lag = parse_u64(lag_raw);
    match lag {
        None if lag_raw == "unmeasured" => {}
        None => v.malformed(
            "data_sync_lag_events",
            format!("DATA_SYNC_LAG_EVENTS must be an integer >= 0, found {lag_raw:?}"),
        ),
        Some(n) if n > cli.max_data_lag_events => v.breach(
            "data_sync_lag_events",
            format!(
                "data_sync_lag_events threshold exceeded: actual={n} max={}",
                cli.max_data_lag_events
            ),
        ),
        Some(n) => v.pass(
            "data_sync_lag_events",
            format!("{n} <= {}", cli.max_data_lag_events),
        ),
    }

    // 7. Split brain, per-store figures, the new primary's role.
    match doc.get("SPLIT_BRAIN_WRITES") {
        Some("unmeasured") | None if measured && doc.get("DATA_SYNC_LAG_SOURCE") == Some(LAG_MEASURED) => {
            v.malformed("split_brain", "SPLIT_BRAIN_WRITES missing from measured evidence");
        }
        Some("unmeasured") | None => {}
        Some(_) => match u64_key(&mut v, &doc, "SPLIT_BRAIN_WRITES") {
            Some(0) => v.pass("split_brain", "SPLIT_BRAIN_WRITES=0"),
            Some(n) => v.breach(
                "split_brain",
                format!("SPLIT_BRAIN_WRITES={n}: writes acknowledged by the old primary after fencing began were lost"),
            ),
            None => {}
        },
    }
    let mut lost_sum = 0;
    let mut split_sum = 0;
    let mut outage_max: Option<f64> = None;
    let mut stores = 0;
    for store in ["REDIS", "PG"] {
        if doc.get(&format!("{store}_LOST_ACKED")).is_none() {
            continue;
        }
        stores += 1;
        lost_sum += u64_key(&mut v, &doc, &format!("{store}_LOST_ACKED")).unwrap_or(0);
        split_sum += u64_key(&mut v, &doc, &format!("{store}_SPLIT_BRAIN")).unwrap_or(0);
        if let Some(o) = v.non_negative(&doc, &format!("{store}_OUTAGE_SECONDS")) {
            outage_max = Some(outage_max.map_or(o, |m: f64| m.max(o)));
            outage_agrees_with_acks(&mut v, &doc, store, o);
        }
        if success == Some(true) && !dry {
            let role = doc
                .get(&format!("{store}_NEW_PRIMARY_ROLE"))
                .unwrap_or_default();
            let want = if store == "REDIS" {
                "master"
            } else {
                "primary"
            };
            v.expect(
                &format!("{}_promoted", store.to_ascii_lowercase()),
                role == want,
                format!("{store}_NEW_PRIMARY_ROLE={role:?} (the server must say {want})"),
            );
            let old = doc.get(&format!("{store}_OLD_PRIMARY")).unwrap_or_default();
            let new = doc.get(&format!("{store}_NEW_PRIMARY")).unwrap_or_default();
            v.expect(
                &format!("{}_primary_moved", store.to_ascii_lowercase()),
                !new.is_empty() && old != new,
                format!("{store} primary before {old:?}, after {new:?}"),
            );
        }
    }
    if stores > 0 {
        if let Some(n) = lag
            && n != lost_sum
        {
            v.malformed(
                "lag_consistent",
                format!("DATA_SYNC_LAG_EVENTS={n} but the stores' *_LOST_ACKED sum to {lost_sum}"),
            );
        }
        if let Some(n) = doc.get("SPLIT_BRAIN_WRITES").and_then(parse_u64)
            && n != split_sum
        {
            v.malformed(
                "split_brain_consistent",
                format!("SPLIT_BRAIN_WRITES={n} but the stores' *_SPLIT_BRAIN sum to {split_sum}"),
            );
        }
        if let (Some(d), Some(m)) = (duration, outage_max)
            && (d - m).abs() > 0.0015
        {
            v.malformed(
                "duration_consistent",
                format!(
                    "FAILOVER_DURATION_SECONDS={dur_raw} but the largest store outage is {m:.3}"
                ),
            );
        }
    }
    v.emit(cli.verify.format)
}

/// The clap command (for docs and tests).
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

/// A store's stated outage must be the time between its two acknowledgements the drill recorded
/// (`*_LAST_ACK_BEFORE_UTC`, `*_FIRST_ACK_AFTER_UTC`), within their millisecond resolution: a
/// stated figure cannot talk the measured outage down.
fn outage_agrees_with_acks(v: &mut Verdict, doc: &EnvDoc, store: &str, outage: f64) {
    let at = |k: &str| {
        doc.get(&format!("{store}_{k}"))
            .and_then(evidence_core::time::parse_utc)
    };
    if let (Some(t0), Some(t1)) = (at("LAST_ACK_BEFORE_UTC"), at("FIRST_ACK_AFTER_UTC")) {
        #[allow(clippy::cast_precision_loss)] // nanosecond spans of seconds: exact enough
        let span = (t1.ns - t0.ns) as f64 / 1e9;
        let tolerance = t0.resolution_ns.max(t1.resolution_ns) as f64 / 1e9;
        if (span - outage).abs() > tolerance.max(0.0015) {
            v.malformed(
                &format!("{}_outage_consistent", store.to_ascii_lowercase()),
                format!(
                    "{store}_OUTAGE_SECONDS={outage} but its acknowledgements are {span:.3} s apart"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
