//! Cross-tool pipelines, as an ops engineer runs them from a shell or cron: a drill writes its
//! evidence to stdout (`--output-file -`) and the verifier reads it from stdin
//! (`--evidence-file -`). Each test asserts both exit codes, the verifier's stdout and stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The folder of the workspace's binaries (`target/debug`), with the tools built.
fn bins(packages: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/debug/deps/pipeline-<hash> -> target/debug
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target folder")
        .to_path_buf();
    test_support::build_siblings(&dir.join("pipeline").display().to_string(), packages)
}

struct Piped {
    first: Option<i32>,
    second: Option<i32>,
    stdout: String,
    stderr_first: String,
    stderr_second: String,
}

/// Run `a | b` from `cwd` (a temp dir: no default path lands in the source tree) and collect both
/// statuses.
fn pipe(cwd: &Path, a: &mut Command, b: &mut Command) -> Piped {
    let mut first = a
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the first command");
    let second = b
        .current_dir(cwd)
        .stdin(first.stdout.take().expect("piped stdout"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the second command");
    let out2 = second
        .wait_with_output()
        .expect("wait for the second command");
    let out1 = first
        .wait_with_output()
        .expect("wait for the first command");
    Piped {
        first: out1.status.code(),
        second: out2.status.code(),
        stdout: String::from_utf8_lossy(&out2.stdout).into_owned(),
        stderr_first: String::from_utf8_lossy(&out1.stderr).into_owned(),
        stderr_second: String::from_utf8_lossy(&out2.stderr).into_owned(),
    }
}

#[test]
fn wal_drill_piped_into_wal_verify_passes() {
    let bin = bins(&["wal-drill", "wal-writer", "wal-replay", "wal-verify"]);
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("runtime_events.wal");
    let p = pipe(
        dir.path(),
        Command::new(bin.join("wal-drill")).args([
            "--execute",
            "--wal-path",
            wal.to_str().unwrap(),
            "--output-file",
            "-",
            "--durability",
            "fsync",
            "--kill-after-ms",
            "150",
            "--operator",
            "pipeline-test",
        ]),
        Command::new(bin.join("wal-verify")).args(["--evidence-file", "-"]),
    );
    assert_eq!(p.first, Some(0), "wal-drill: {}", p.stderr_first);
    assert_eq!(p.second, Some(0), "wal-verify: {}", p.stderr_second);
    assert_eq!(p.stdout, "verification passed: -\n");
    assert_eq!(p.stderr_second, "");
    assert!(
        p.stderr_first.contains("lost 0 acked"),
        "{}",
        p.stderr_first
    );
}

#[test]
fn wal_drill_dry_run_evidence_is_never_piped_as_a_pass() {
    // A dry run writes no evidence: the verifier gets nothing and says so (exit 2).
    let bin = bins(&["wal-drill", "wal-verify"]);
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("w.wal");
    let p = pipe(
        dir.path(),
        Command::new(bin.join("wal-drill")).args([
            "--wal-path",
            wal.to_str().unwrap(),
            "--output-file",
            "-",
        ]),
        Command::new(bin.join("wal-verify")).args(["--evidence-file", "-"]),
    );
    assert_eq!(p.first, Some(0), "wal-drill: {}", p.stderr_first);
    assert!(p.stderr_first.contains("dry run"), "{}", p.stderr_first);
    assert_eq!(p.second, Some(2), "wal-verify: {}", p.stderr_second);
    assert_eq!(p.stdout, "");
    assert!(
        p.stderr_second.contains("missing required key: drill_id"),
        "{}",
        p.stderr_second
    );
    assert!(!wal.exists(), "a dry run must not create the WAL");
}

#[test]
fn rollback_drill_piped_into_rollback_verify_passes() {
    let bin = bins(&[
        "rollback-drill",
        "rollback-verify",
        "svc-ctl",
        "demo-service",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("deploy");
    let lock = dir.path().join("rollback-drill.lock");
    let p = pipe(
        dir.path(),
        Command::new(bin.join("rollback-drill")).args([
            "--execute",
            "--run-dir",
            run_dir.to_str().unwrap(),
            "--output-file",
            "-",
            "--stop-after",
            "--lock-file",
            lock.to_str().unwrap(),
            "--operator",
            "pipeline-test",
        ]),
        Command::new(bin.join("rollback-verify")).args([
            "--evidence-file",
            "-",
            "--max-rollback-seconds",
            "30",
        ]),
    );
    assert_eq!(p.first, Some(0), "rollback-drill: {}", p.stderr_first);
    assert_eq!(p.second, Some(0), "rollback-verify: {}", p.stderr_second);
    assert_eq!(p.stdout, "verification passed: -\n");
    assert_eq!(p.stderr_second, "");
}

/// Issue 8 item 5: a health command that prints ANSI colour ends up in the evidence
/// (`restore_health_detail`), quoted with `\u{1b}` escapes, and the verifier reads it back.
#[test]
fn health_command_printing_colour_gives_readable_evidence() {
    let bin = bins(&[
        "rollback-drill",
        "rollback-verify",
        "svc-ctl",
        "demo-service",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("deploy");
    let rd = run_dir.to_str().unwrap();
    let lock = dir.path().join("rollback-drill.lock");
    let health = format!(
        "svc-ctl --run-dir {rd} health --timeout 1 && printf '\\033[32mhealthy\\033[0m\\n'"
    );
    let p = pipe(
        dir.path(),
        Command::new(bin.join("rollback-drill")).args([
            "--execute",
            "--run-dir",
            rd,
            "--health-cmd",
            &health,
            "--output-file",
            "-",
            "--stop-after",
            "--lock-file",
            lock.to_str().unwrap(),
            "--operator",
            "pipeline-test",
        ]),
        Command::new(bin.join("rollback-verify")).args([
            "--evidence-file",
            "-",
            "--format",
            "json",
        ]),
    );
    assert_eq!(p.first, Some(0), "rollback-drill: {}", p.stderr_first);
    assert_eq!(
        p.second,
        Some(0),
        "rollback-verify: {}{}",
        p.stdout,
        p.stderr_second
    );
    assert!(p.stdout.contains("\"passed\":true"), "{}", p.stdout);
    assert_eq!(p.stderr_second, "");
}

/// Issue 8 item 4: evidence written to a closed stdout was not delivered: exit 2 with a message,
/// never a quiet 0.
#[test]
fn drill_evidence_to_a_closed_stdout_is_an_error() {
    let bin = bins(&["wal-drill", "wal-writer", "wal-replay"]);
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("w.wal");
    let (code, stderr) = test_support::cases::run_with_closed_stdout(
        bin.join("wal-drill").to_str().unwrap(),
        &[
            "--execute",
            "--wal-path",
            wal.to_str().unwrap(),
            "--output-file",
            "-",
            "--kill-after-ms",
            "150",
        ],
    );
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("wal-drill: error: stdout was closed before the evidence was written"),
        "{stderr}"
    );
}
