//! rollout-verify: one fixture per rejection, the original's dry-run shape, pass, stdin, JSON, usage.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use test_support::{fixture, run};

const BIN: &str = env!("CARGO_BIN_EXE_rollout-verify");

fn fx(name: &str) -> String {
    fixture(env!("CARGO_MANIFEST_DIR"), name)
}

fn verify(name: &str, extra: &[&str]) -> test_support::Run {
    let f = fx(name);
    let mut args = vec!["--evidence-file", f.as_str()];
    args.extend_from_slice(extra);
    run(BIN, &args, None, None)
}

#[test]
fn executed_rollouts_pass() {
    for name in ["pass.env", "pass_rich.env"] {
        let f = fx(name);
        verify(name, &["--require-fault-step"])
            .code(0)
            .stdout_is(&format!("verification passed: {f}\n"))
            .stderr_is("");
    }
    let f = fx("no_fault_step.env");
    verify("no_fault_step.env", &[])
        .code(0)
        .stdout_is(&format!("verification passed: {f}\n"))
        .stderr_is("");
}

#[test]
fn original_dry_run_shape_rejected_by_default_accepted_when_allowed() {
    let r = verify("original_dry_run.env", &["--require-fault-step"]);
    r.code(1)
        .stdout_is("")
        .stderr_has("ROLLOUT_DRY_RUN=1: evidence from a dry run proves nothing")
        .stderr_has("step 1 (precheck) is simulated_ok");
    verify(
        "original_dry_run.env",
        &["--require-fault-step", "--allow-dry-run"],
    )
    .code(0)
    .stdout_has("verification passed: ")
    .stderr_is("");
}

#[test]
fn breaches_exit_1() {
    for (name, extra, msg) in [
        (
            "success_false.env",
            &[][..],
            "ROLLOUT_SUCCESS=false (failed step: \"verify\")",
        ),
        ("failed_step.env", &[], "step 3 (fault_injection) failed"),
        (
            "simulated_in_executed.env",
            &[],
            "step 4 (rollback) is simulated_ok in an executed rollout",
        ),
        (
            "release_not_restored.env",
            &[],
            "release before v1, after the rollback v2",
        ),
        ("interrupted.env", &[], "ROLLOUT_INTERRUPTED=true"),
        (
            "no_fault_step.env",
            &["--require-fault-step"],
            "fault_injection step is required but not found",
        ),
    ] {
        verify(name, extra).code(1).stdout_is("").stderr_has(msg);
    }
}

#[test]
fn malformed_exit_2() {
    for (name, msg) in [
        (
            "count_mismatch.env",
            "ROLLOUT_TOTAL_STEPS=4 but step 5 is listed",
        ),
        ("count_missing_steps.env", "step 6 lacks STEP_6_NAME"),
        ("bad_duration.env", "step 2 has invalid duration: -20"),
        ("bad_duration_text.env", "step 2 has invalid duration: 1.5"),
        (
            "nan_rollback_seconds.env",
            "ROLLOUT_ROLLBACK_SECONDS must be a finite number",
        ),
        ("invalid_status.env", "step 2 has invalid status: OK"),
        ("total_zero.env", "ROLLOUT_TOTAL_STEPS must be > 0"),
        ("total_not_int.env", "ROLLOUT_TOTAL_STEPS must be integer"),
        ("missing_key.env", "missing key: ROLLOUT_FAILED_STEP"),
        (
            "success_with_failed_step.env",
            "ROLLOUT_SUCCESS=true but ROLLOUT_FAILED_STEP=deploy",
        ),
        // Evidence contradicting itself is malformed, not a breach.
        ("step_times_reversed.env", "step 4 starts before step 3"),
        (
            "provenance_reversed.env",
            "provenance_times_ordered: PROVENANCE_FINISHED_UTC is before PROVENANCE_STARTED_UTC",
        ),
    ] {
        verify(name, &[]).code(2).stdout_is("").stderr_has(msg);
    }
    // A bad ROLLOUT_DRY_RUN is reported once.
    let f = fx("dry_run_not_bool.env");
    verify("dry_run_not_bool.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_is(&format!(
            "rollout-verify: error: verification failed: {f}: dry_run: line 2: ROLLOUT_DRY_RUN must be a boolean, found \"maybe\"\n"
        ));
    let f = fx("duplicate_key.env");
    verify("duplicate_key.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_has(&format!("rollout-verify: error: {f}:"))
        .stderr_has("ROLLOUT_SUCCESS: expected each key once");
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
    assert!(
        recs.iter()
            .any(|v| v["check"] == "previous_release_restored")
    );
}

#[test]
fn usage_errors() {
    run(BIN, &[], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--evidence-file <PATH>");
    run(BIN, &["--evidence-file", "/nonexistent/r.env"], None, None)
        .code(2)
        .stderr_has("cannot read /nonexistent/r.env");
    run(
        BIN,
        &["--evidence-file", "x", "--format", "yaml"],
        None,
        None,
    )
    .code(2)
    .stderr_has("invalid value 'yaml'");
}
