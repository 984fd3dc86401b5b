//! rollback-verify acceptance tests. One fixture case per check in tests/cases/ (each derived from a real
//! rollback-drill run in tests/fixtures/real/, asserting status, stdout and stderr; see
//! test_support::cases), plus JSON output, a closed stdout and usage errors.
#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use serde_json::Value;
use test_support::cases::{run_cases, run_with_closed_stdout};
use test_support::run;

const BIN: &str = env!("CARGO_BIN_EXE_rollback-verify");

fn real(name: &str) -> String {
    format!("{}/tests/fixtures/real/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn every_fixture_case() {
    let n = run_cases(BIN, env!("CARGO_MANIFEST_DIR"));
    assert!(n >= 50, "only {n} cases");
}

#[test]
fn json_format_names_each_check() {
    let f = real("rb_health.env");
    let r = run(
        BIN,
        &[
            "--evidence-file",
            &f,
            "--format",
            "json",
            "--max-rollback-seconds",
            "0.001",
        ],
        None,
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
    assert!(
        records[..records.len() - 1]
            .iter()
            .all(|r| r["kind"] == "verify.check" && r["tool"] == "rollback-verify")
    );
    let c = records
        .iter()
        .find(|r| r["check"] == "rollback_threshold")
        .unwrap();
    assert_eq!(c["outcome"], "breach");
    // Every check of a passing real run is a pass.
    let f = real("rb_kill.env");
    let r = run(
        BIN,
        &["--evidence-file", &f, "--format", "json"],
        None,
        None,
    );
    r.code(0).stderr_is("");
    assert!(r.stdout.lines().count() > 10, "{}", r.stdout);
    assert!(
        !r.stdout.contains("\"outcome\":\"breach\"")
            && !r.stdout.contains("\"outcome\":\"malformed\"")
    );
}

/// `rollback-verify ... | head -0`: the verdict survives a closed stdout (item 4).
#[test]
fn verdict_survives_a_closed_stdout() {
    let pass = real("rb_kill.env");
    let breach = real("rb_health.env");
    let legacy = real("legacy.env");
    for (args, code) in [
        (vec!["--evidence-file", pass.as_str()], 0),
        (
            vec!["--evidence-file", pass.as_str(), "--format", "json"],
            0,
        ),
        (
            vec![
                "--evidence-file",
                breach.as_str(),
                "--format",
                "json",
                "--max-rollback-seconds",
                "0.001",
            ],
            1,
        ),
        (
            vec!["--evidence-file", legacy.as_str(), "--format", "json"],
            2,
        ),
    ] {
        let (status, stderr) = run_with_closed_stdout(BIN, &args);
        assert_eq!(status, Some(code), "{args:?}: {stderr}");
    }
}

#[test]
fn usage_and_unreadable_file_exit_2() {
    run(BIN, &[], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--evidence-file <PATH>");
    run(BIN, &["--evidence-file", "/nonexistent/x.env"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("rollback-verify: error: cannot read /nonexistent/x.env");
    let f = real("rb_health.env");
    run(
        BIN,
        &["--evidence-file", &f, "--max-rollback-seconds=-1"],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("--max-rollback-seconds must be a finite number >= 0");
}

#[test]
fn help_lists_checks_and_exit_codes() {
    run(BIN, &["--help"], None, None)
        .code(0)
        .stdout_has("CHECKS")
        .stdout_has("--allow-legacy")
        .stdout_has("verify_deploy_rollback_evidence")
        .stdout_has("EXIT STATUS");
}
