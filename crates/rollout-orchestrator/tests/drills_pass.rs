//! rollout-orchestrator passes only what it observed (issue 8 items 8, 9, 10, 12): each case fails
//! on the code before the drills pass.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use evidence_core::dotenv::EnvDoc;
use test_support::{fixture, run, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_rollout-orchestrator");

fn fx(name: &str) -> String {
    fixture(env!("CARGO_MANIFEST_DIR"), name)
}

fn orchestrate(dir: &Path, config: &str, extra: &[&str]) -> test_support::Run {
    let cfg = fx(config);
    let mut a = vec!["--env-config", cfg.as_str(), "--output-file", "out.env"];
    a.extend_from_slice(extra);
    run(BIN, &a, None, Some(dir))
}

fn evidence(dir: &Path) -> EnvDoc {
    let text = std::fs::read_to_string(dir.join("out.env")).unwrap();
    EnvDoc::parse(&text, "out.env").unwrap()
}

#[test]
fn execute_without_release_cmd_is_refused_unless_recorded_as_none() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = fx("no_release_cmd.yaml");
    orchestrate(dir.path(), "no_release_cmd.yaml", &["--execute"])
        .code(2)
        .stdout_is("")
        .stderr_has(&format!("rollout-orchestrator: error: {cfg}: release_cmd: expected a command that prints the running release"))
        .stderr_has("--no-release-check");
    assert!(!dir.path().join("precheck-ran").exists());
    assert!(!dir.path().join("out.env").exists());
    orchestrate(
        dir.path(),
        "no_release_cmd.yaml",
        &["--execute", "--no-release-check"],
    )
    .code(0)
    .stdout_is("out.env\n")
    .stderr_has("ROLLOUT_RELEASE_CHECK=none");
    let ev = evidence(dir.path());
    assert_eq!(ev.get("ROLLOUT_RELEASE_CHECK"), Some("none"));
    assert_eq!(ev.get("ROLLOUT_RESULT"), Some("success"));
    assert!(ev.get("ROLLOUT_DRILL_ID").unwrap().starts_with("rollout-"));
}

#[test]
fn a_failing_release_cmd_is_refused_before_the_first_step() {
    let dir = tempfile::tempdir().unwrap();
    orchestrate(dir.path(), "failing_release_cmd.yaml", &["--execute"])
        .code(2)
        .stdout_is("")
        .stderr_has("did not print the running release before the first step");
    assert!(!dir.path().join("precheck-ran").exists());
    assert!(!dir.path().join("out.env").exists());
}

#[test]
fn sigkill_of_the_orchestrator_kills_the_running_step() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = fx("hang_for_kill.yaml");
    let mut child = Command::new(BIN)
        .args([
            "--env-config",
            &cfg,
            "--output-file",
            "out.env",
            "--execute",
            "--lock-file",
            "r.lock",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    wait_until(Duration::from_secs(30), "the deploy step to start", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
    });
    let gc: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    wait_until(
        Duration::from_secs(30),
        "the step's grandchild to die",
        || !evidence_core::process::pid_alive(gc),
    );
    wait_until(Duration::from_secs(30), "the lock to be free", || {
        evidence_core::lock::LockFile::acquire(&dir.path().join("r.lock"), "x").is_ok()
    });
}

#[test]
fn the_lock_stays_held_until_the_steps_of_a_killed_orchestrator_are_gone() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = fx("hang_ignoring_term.yaml");
    let mut child = Command::new(BIN)
        .args([
            "--env-config",
            &cfg,
            "--output-file",
            "out.env",
            "--execute",
            "--lock-file",
            "r.lock",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    wait_until(Duration::from_secs(30), "the deploy step to start", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
    });
    let step: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    // The step ignores SIGTERM: the reaper waits its grace before SIGKILL, holding the lock.
    if evidence_core::process::pid_alive(step) {
        assert!(
            evidence_core::lock::LockFile::acquire(&dir.path().join("r.lock"), "x").is_err(),
            "the lock was free while a step of the killed orchestrator still ran"
        );
    }
    wait_until(Duration::from_secs(60), "the step to die", || {
        !evidence_core::process::pid_alive(step)
    });
    wait_until(Duration::from_secs(30), "the lock to be free", || {
        evidence_core::lock::LockFile::acquire(&dir.path().join("r.lock"), "x").is_ok()
    });
}

#[test]
fn unwritable_output_is_refused_before_the_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = fx("remote_target.yaml");
    run(
        BIN,
        &[
            "--env-config",
            &cfg,
            "--execute",
            "--output-file",
            "/nonexistent-ctp-ops-test/out.env",
        ],
        None,
        Some(dir.path()),
    )
    .code(2)
    .stdout_is("")
    .stderr_has("the top-level folder /nonexistent-ctp-ops-test does not exist");
    assert!(!dir.path().join("precheck-ran").exists());
    // --results-dir moves the evidence.
    run(
        BIN,
        &["--env-config", &cfg, "--results-dir", "res"],
        None,
        Some(dir.path()),
    )
    .code(0)
    .stdout_has("[dry-run] touch precheck-ran\n")
    .stdout_has("res/rollout_result.env\n");
    assert!(dir.path().join("res/rollout_result.env").is_file());
}

#[test]
fn session_guard_refuses_a_remote_target_inside_a_session() {
    let dir = tempfile::tempdir().unwrap();
    orchestrate(
        dir.path(),
        "remote_target.yaml",
        &["--execute", "--session-at", "2026-03-10T13:10:00+08:00"],
    )
    .code(2)
    .stdout_is("")
    .stderr_has("refusing to drill against deploy_target:k8s-prod-cluster inside a trading session")
    .stderr_has("13:00-15:15");
    assert!(!dir.path().join("precheck-ran").exists());
    orchestrate(
        dir.path(),
        "remote_target.yaml",
        &["--execute", "--session-at", "2026-03-14T13:10:00+08:00"],
    )
    .code(0);
    assert_eq!(
        evidence(dir.path()).get("ROLLOUT_SESSION_GUARD"),
        Some("outside_session")
    );
}
