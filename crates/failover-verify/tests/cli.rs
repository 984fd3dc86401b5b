//! failover-verify: one fixture per rejection, the original's committed dry-run evidence, pass,
//! stdin, JSON, usage.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use test_support::{fixture, run};

const BIN: &str = env!("CARGO_BIN_EXE_failover-verify");

fn fx(name: &str) -> String {
    fixture(env!("CARGO_MANIFEST_DIR"), name)
}

fn verify(name: &str, extra: &[&str]) -> test_support::Run {
    let f = fx(name);
    let mut args = vec!["--evidence-file", f.as_str()];
    if !extra.contains(&"--max-failover-seconds") {
        args.extend(["--max-failover-seconds", "300"]);
    }
    args.extend_from_slice(extra);
    run(BIN, &args, None, None)
}

#[test]
fn executed_failover_passes_with_the_originals_success_line() {
    let f = fx("pass.env");
    verify("pass.env", &["--max-data-lag-events", "0"])
        .code(0)
        .stdout_is(&format!("verification passed: {f}\n"))
        .stderr_is("");
}

#[test]
fn original_dry_run_evidence_rejected_by_default_accepted_when_allowed() {
    // No provenance block (malformed unless --allow-legacy) and a dry run (a breach).
    verify("original_dry_run.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_has("FAILOVER_DRY_RUN=1: evidence from a dry run proves nothing")
        .stderr_has("no provenance block (PROVENANCE_TOOL...)")
        .stderr_has("step 4 (promote_standby) is simulated_ok");
    verify("original_dry_run.env", &["--allow-legacy"])
        .code(1)
        .stderr_has("evidence from a dry run proves nothing");
    let f = fx("original_dry_run.env");
    verify("original_dry_run.env", &["--allow-dry-run", "--allow-legacy"])
        .code(0)
        .stdout_is(&format!(
            "verification passed: {f} (legacy evidence without provenance: nothing proves the drill was executed)\n"
        ))
        .stderr_has("accepted evidence of a dry run");
    // Under the original's command name both are the default, as its users' steps expect.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("verify_failover_evidence");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    run(
        link.to_str().unwrap(),
        &["--evidence-file", &f, "--max-failover-seconds", "300"],
        None,
        None,
    )
    .code(0)
    .stdout_has("verification passed: ");
}

#[test]
fn breaches_exit_1() {
    for (name, extra, msg) in [
        (
            "success_false.env",
            &[][..],
            "FAILOVER_SUCCESS must be true (FAILOVER_SUCCESS=false, failed step: \"promote_standby\")",
        ),
        ("success_false.env", &[], "FAILOVER_COMPENSATED=true"),
        (
            "simulated_in_executed.env",
            &[],
            "step 3 (demote_primary) is simulated_ok in an executed failover",
        ),
        (
            "duration_breach.env",
            &[],
            "failover_duration_seconds threshold exceeded: actual=400.5 max=300",
        ),
        (
            "pass.env",
            &["--max-failover-seconds", "1"],
            "failover_duration_seconds threshold exceeded: actual=1.184 max=1",
        ),
        (
            "duration_step_sum.env",
            &[],
            "FAILOVER_DURATION_SOURCE=step_sum: the duration is not a measured",
        ),
        (
            "lag_breach.env",
            &[],
            "data_sync_lag_events threshold exceeded: actual=3 max=0",
        ),
        ("lag_declared.env", &[], "no DATA_SYNC_LAG_SOURCE"),
        ("split_brain.env", &[], "SPLIT_BRAIN_WRITES=1412"),
        (
            "not_promoted.env",
            &[],
            "REDIS_NEW_PRIMARY_ROLE=\"slave\" (the server must say master)",
        ),
    ] {
        verify(name, extra).code(1).stdout_is("").stderr_has(msg);
    }
    // A lag within a raised bound passes.
    verify("lag_breach.env", &["--max-data-lag-events", "3"]).code(0);
}

#[test]
fn malformed_exit_2() {
    for (name, msg) in [
        (
            "missing_key.env",
            "missing required key: DATA_SYNC_LAG_EVENTS",
        ),
        ("total_zero.env", "FAILOVER_TOTAL_STEPS must be > 0"),
        (
            "count_mismatch.env",
            "FAILOVER_TOTAL_STEPS=4 but step 5 is listed",
        ),
        ("invalid_status.env", "STEP_2_STATUS has invalid value: OK"),
        (
            "bad_duration_ms.env",
            "STEP_2_DURATION_MS must be an integer >= 0, found \"1.5\"",
        ),
        (
            "duration_nan.env",
            "FAILOVER_DURATION_SECONDS must be a finite number >= 0, found \"nan\"",
        ),
        (
            "out_of_order.env",
            "found precheck, backup_sync_check, promote_standby, demote_primary, verify",
        ),
        (
            "success_with_failed_step.env",
            "FAILOVER_SUCCESS=true but FAILOVER_FAILED_STEP=verify",
        ),
        (
            "failed_without_step.env",
            "FAILOVER_SUCCESS=false but FAILOVER_FAILED_STEP is empty",
        ),
        (
            "success_but_step_failed.env",
            "FAILOVER_SUCCESS=true but step verify failed",
        ),
        (
            "lag_inconsistent.env",
            "DATA_SYNC_LAG_EVENTS=0 but the stores' *_LOST_ACKED sum to 2",
        ),
        (
            "duration_inconsistent.env",
            "FAILOVER_DURATION_SECONDS=0.5 but the largest store outage is 1.184",
        ),
        (
            "provenance_reversed.env",
            "PROVENANCE_FINISHED_UTC is before PROVENANCE_STARTED_UTC",
        ),
        (
            "outage_talked_down.env",
            "REDIS_OUTAGE_SECONDS=1.184 but its acknowledgements are 8.184 s apart",
        ),
        (
            "dry_run_not_bool.env",
            "FAILOVER_DRY_RUN must be a boolean, found \"maybe\"",
        ),
    ] {
        verify(name, &[]).code(2).stdout_is("").stderr_has(msg);
    }
}

#[test]
fn stdin_and_json() {
    let text = std::fs::read_to_string(fx("pass.env")).unwrap();
    let r = run(
        BIN,
        &["--evidence-file", "-", "--format", "json"],
        Some(&text),
        None,
    );
    r.code(0).stderr_is("");
    let recs: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = recs.last().unwrap();
    assert_eq!(last["kind"], "verify.verdict");
    assert_eq!(last["passed"], true);
    assert!(recs.iter().any(|v| v["check"] == "split_brain"));
    assert!(recs.iter().any(|v| v["check"] == "redis_promoted"));
}

#[test]
fn usage_errors() {
    run(BIN, &[], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--evidence-file <PATH>");
    run(BIN, &["--evidence-file", "/nonexistent/f.env"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("cannot read /nonexistent/f.env");
    run(
        BIN,
        &["--evidence-file", "x", "--max-failover-seconds", "nan"],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("--max-failover-seconds must be a finite number");
    run(
        BIN,
        &["--evidence-file", "x", "--max-data-lag-events", "-1"],
        None,
        None,
    )
    .code(2)
    .stderr_has("unexpected argument '-1'");
}
