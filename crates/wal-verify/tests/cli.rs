//! wal-verify acceptance tests: one fixture per rejection (exit status, stdout and stderr), stdin,
//! the threshold flags, JSON output, a real drill's evidence, usage errors.
#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use serde_json::Value;
use test_support::{Run, fixture, run};

const BIN: &str = env!("CARGO_BIN_EXE_wal-verify");

fn fx(name: &str) -> String {
    fixture(env!("CARGO_MANIFEST_DIR"), name)
}

fn verify(name: &str, extra: &[&str]) -> Run {
    let path = fx(name);
    let mut args = vec!["--evidence-file", path.as_str()];
    args.extend_from_slice(extra);
    run(BIN, &args, None, None)
}

/// The one stderr line of a failed check.
fn failed(name: &str, check: &str, detail: &str) -> String {
    format!(
        "wal-verify: error: verification failed: {}: {check}: {detail}\n",
        fx(name)
    )
}

#[test]
fn real_drill_evidence_passes() {
    verify("pass.env", &[])
        .code(0)
        .stderr_is("")
        .stdout_is(&format!("verification passed: {}\n", fx("pass.env")));
}

#[test]
fn original_whole_second_form_passes() {
    verify("original_form.env", &[])
        .code(0)
        .stderr_is("")
        .stdout_is(&format!(
            "verification passed: {}\n",
            fx("original_form.env")
        ));
}

#[test]
fn result_fail_is_a_breach() {
    verify("result_fail.env", &[])
        .code(1)
        .stdout_is("")
        .stderr_is(&failed(
            "result_fail.env",
            "result",
            "result=fail: the drill failed",
        ));
}

#[test]
fn result_other_than_pass_or_fail_is_malformed() {
    verify("result_other.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_is(&failed(
            "result_other.env",
            "result",
            "line 10: result must be pass or fail, found \"passed\"",
        ));
}

#[test]
fn nan_inf_and_negative_numbers_are_malformed() {
    for (name, key, line, found) in [
        ("rto_nan.env", "rto_seconds", 7, "nan"),
        ("rto_inf.env", "rto_seconds", 7, "inf"),
        ("rto_negative.env", "rto_seconds", 7, "-0.5"),
    ] {
        verify(name, &[]).code(2).stdout_is("").stderr_is(&failed(
            name,
            key,
            &format!("line {line}: {key} must be a finite number >= 0, found \"{found}\""),
        ));
    }
    verify("rpo_negative.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_is(&failed(
            "rpo_negative.env",
            "rpo_events",
            "line 8: rpo_events must be an integer >= 0, found \"-1\"",
        ));
}

#[test]
fn recovery_before_failure_is_malformed() {
    verify("recovery_before_failure.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_is(&failed(
            "recovery_before_failure.env",
            "timestamps_ordered",
            "recovery_complete_utc must be >= failure_start_utc",
        ));
}

#[test]
fn provenance_finished_before_started_is_malformed() {
    verify("provenance_reversed.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_is(&failed(
            "provenance_reversed.env",
            "provenance_times_ordered",
            "provenance_finished_utc is before provenance_started_utc",
        ));
}

#[test]
fn rto_contradicting_the_timestamps_is_malformed() {
    verify("rto_disagrees.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_is(&failed(
            "rto_disagrees.env",
            "duration_matches_timestamps",
            "rto_seconds=0.5 vs recovery_complete_utc-failure_start_utc=0.016918s (tolerance 0.100001s)",
        ));
}

#[test]
fn duplicate_key_and_non_key_value_lines_name_file_and_line() {
    verify("duplicate_key.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_is(&format!(
            "wal-verify: error: {}:5: wal_path: expected each key once, found a duplicate of line 4\n",
            fx("duplicate_key.env")
        ));
    verify("not_key_value.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_is(&format!(
            "wal-verify: error: {}:10: line: expected KEY=value, found \"this line has no equals sign\"\n",
            fx("not_key_value.env")
        ));
}

#[test]
fn missing_or_empty_required_key_is_malformed() {
    verify("missing_key.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_is(&failed(
            "missing_key.env",
            "required_keys",
            "missing required key: notes",
        ));
    verify("empty_key.env", &[])
        .code(2)
        .stdout_is("")
        .stderr_is(&failed(
            "empty_key.env",
            "required_keys",
            "line 9: required key operator is empty",
        ));
}

#[test]
fn dry_run_evidence_is_rejected_unless_allowed() {
    verify("dry_run.env", &[])
        .code(1)
        .stdout_is("")
        .stderr_is(&failed(
            "dry_run.env",
            "dry_run",
            "provenance_dry_run=1: evidence from a dry run proves nothing (use --allow-dry-run to accept it)",
        ));
    verify("dry_run.env", &["--allow-dry-run"])
        .code(0)
        .stderr_is("")
        .stdout_is(&format!("verification passed: {}\n", fx("dry_run.env")));
}

#[test]
fn threshold_flags() {
    verify("pass.env", &["--max-rto-seconds", "0.001"])
        .code(1)
        .stdout_is("")
        .stderr_is(&failed(
            "pass.env",
            "rto_threshold",
            "rto_seconds threshold exceeded: actual=0.016917 max=0.001",
        ));
    verify("rpo_three.env", &[])
        .code(1)
        .stdout_is("")
        .stderr_is(&failed(
            "rpo_three.env",
            "rpo_threshold",
            "rpo_events threshold exceeded: actual=3 max=0",
        ));
    verify("rpo_three.env", &["--max-rpo-events", "3"])
        .code(0)
        .stderr_is("")
        .stdout_is(&format!("verification passed: {}\n", fx("rpo_three.env")));
    // A bad record outranks a breach.
    verify("rto_nan.env", &["--max-rpo-events", "0"]).code(2);
}

#[test]
fn stdin_and_json_format() {
    let text = std::fs::read_to_string(fx("pass.env")).unwrap();
    run(BIN, &["--evidence-file", "-"], Some(&text), None)
        .code(0)
        .stderr_is("")
        .stdout_is("verification passed: -\n");
    let r = run(
        BIN,
        &["--evidence-file", "-", "--format", "json"],
        Some(&text.replace("result=pass", "result=fail")),
        None,
    );
    r.code(1).stderr_is("");
    let records: Vec<Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = records.last().unwrap();
    assert_eq!(last["kind"], "verify.verdict");
    assert_eq!(last["passed"], false);
    assert_eq!(last["exit"], 1);
    assert_eq!(last["failed"], 1);
    assert_eq!(last["evidence"], "-");
    let result = records.iter().find(|r| r["check"] == "result").unwrap();
    assert_eq!(result["outcome"], "breach");
    assert!(
        records[..records.len() - 1]
            .iter()
            .all(|r| r["kind"] == "verify.check" && r["tool"] == "wal-verify")
    );
}

#[test]
fn unreadable_file_and_usage_errors_exit_2() {
    run(BIN, &["--evidence-file", "/nonexistent/w.env"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("wal-verify: error: cannot read /nonexistent/w.env: ");
    run(BIN, &[], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--evidence-file <PATH>");
    verify("pass.env", &["--max-rto-seconds", "nan"])
        .code(2)
        .stdout_is("")
        .stderr_is(
            "wal-verify: error: --max-rto-seconds must be a finite number >= 0, found NaN\n",
        );
    verify("pass.env", &["--max-rpo-events", "-1"])
        .code(2)
        .stdout_is("")
        .stderr_has("unexpected argument '-1'");
}
