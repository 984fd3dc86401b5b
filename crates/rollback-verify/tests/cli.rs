//! rollback-verify: one fixture per rejection, plus pass, dry-run, stdin, JSON and usage cases.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use test_support::{fixture, run};

const BIN: &str = env!("CARGO_BIN_EXE_rollback-verify");

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
fn measured_evidence_passes() {
    let f = fx("pass.env");
    verify("pass.env", &[])
        .code(0)
        .stdout_is(&format!("verification passed: {f}\n"))
        .stderr_is("");
}

#[test]
fn original_hand_written_shape_passes() {
    // Whole-second timestamps (resolution 1 s) agree with 0.110 s; no provenance block.
    let f = fx("original_shape.env");
    verify("original_shape.env", &["--max-rollback-seconds", "180"])
        .code(0)
        .stdout_is(&format!("verification passed: {f}\n"))
        .stderr_is("");
}

#[test]
fn threshold_breach() {
    verify("pass.env", &["--max-rollback-seconds", "0.000001"])
        .code(1)
        .stdout_is("")
        .stderr_has("rollback_seconds threshold exceeded: actual=");
}

#[test]
fn breaches_exit_1() {
    for (name, msg) in [
        ("health_false.env", "health_check_passed must be true"),
        ("result_fail.env", "result must be pass, found \"fail\""),
        (
            "target_equals_release.env",
            "rollback_target=v2 equals release_version",
        ),
        ("dry_run.env", "evidence from a dry run proves nothing"),
    ] {
        let r = verify(name, &[]);
        r.code(1).stdout_is("").stderr_has(msg);
        assert!(
            r.stderr
                .starts_with("rollback-verify: error: verification failed: "),
            "{name}: {}",
            r.stderr
        );
    }
}

#[test]
fn result_dry_run_without_provenance_is_a_dry_run() {
    let text: String = std::fs::read_to_string(fx("dry_run.env"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("provenance_"))
        .map(|l| format!("{l}\n"))
        .collect();
    run(BIN, &["--evidence-file", "-"], Some(&text), None)
        .code(1)
        .stdout_is("")
        .stderr_has("rollback-verify: error: verification failed: -: dry_run: result=dry_run: evidence from a dry run proves nothing");
    run(
        BIN,
        &["--evidence-file", "-", "--allow-dry-run"],
        Some(&text),
        None,
    )
    .code(0)
    .stdout_is("verification passed: -\n")
    .stderr_is("");
}

#[test]
fn dry_run_accepted_when_allowed() {
    verify("dry_run.env", &["--allow-dry-run"])
        .code(0)
        .stdout_has("verification passed: ")
        .stderr_is("");
}

#[test]
fn malformed_exit_2() {
    for (name, msg) in [
        (
            "nan.env",
            "rollback_seconds must be a finite number >= 0, found \"nan\"",
        ),
        (
            "bad_platform.env",
            "platform must be one of: systemd, k8s, local",
        ),
        ("bad_timestamp.env", "rollback_start_utc must be UTC"),
        (
            "health_not_bool.env",
            "health_check_passed must be true/false",
        ),
        ("missing_key.env", "missing required key: notes"),
        // Evidence that contradicts itself is malformed, not a breach.
        (
            "timestamps_reversed.env",
            "rollback_complete_utc must be >= rollback_start_utc",
        ),
        (
            "seconds_disagree.env",
            "duration_matches_timestamps: rollback_seconds=5.000000",
        ),
        ("empty_key.env", "required key operator is empty"),
        (
            "provenance_reversed.env",
            "provenance_times_ordered: provenance_finished_utc is before provenance_started_utc",
        ),
    ] {
        verify(name, &[]).code(2).stdout_is("").stderr_has(msg);
    }
    for (name, msg) in [
        (
            "duplicate_key.env",
            "result: expected each key once, found a duplicate of line",
        ),
        ("not_key_value.env", "line: expected KEY=value"),
    ] {
        let f = fx(name);
        verify(name, &[])
            .code(2)
            .stdout_is("")
            .stderr_has(&format!("rollback-verify: error: {f}:"))
            .stderr_has(msg);
    }
}

#[test]
fn stdin_and_json() {
    let text = std::fs::read_to_string(fx("health_false.env")).unwrap();
    let r = run(
        BIN,
        &["--evidence-file", "-", "--format", "json"],
        Some(&text),
        None,
    );
    r.code(1).stderr_is("");
    let last: serde_json::Value = serde_json::from_str(r.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(last["kind"], "verify.verdict");
    assert_eq!(last["evidence"], "-");
    assert_eq!(last["passed"], false);
    assert_eq!(last["exit"], 1);
    assert!(r.stdout.lines().any(|l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["check"] == "health_check_passed" && v["outcome"] == "breach"
    }));
}

#[test]
fn usage_errors() {
    run(BIN, &[], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--evidence-file <PATH>");
    let f = fx("pass.env");
    run(
        BIN,
        &["--evidence-file", &f, "--max-rollback-seconds=-1"],
        None,
        None,
    )
    .code(2)
    .stderr_has("--max-rollback-seconds must be a finite number >= 0");
    run(BIN, &["--evidence-file", "/nonexistent/x.env"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("cannot read /nonexistent/x.env");
}
