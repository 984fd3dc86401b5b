//! rollback-drill: real drills of the demo service (health failure and kill), a command-driven
//! service, an undetected failure, dry run, usage and bad config.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use deploy_core::rollback::KEYS;
use evidence_core::dotenv::EnvDoc;
use test_support::{fixture, run};

const BIN: &str = env!("CARGO_BIN_EXE_rollback-drill");

/// A Saturday: no trading session, so drills against non-loopback targets may run.
const SATURDAY: &str = "2026-03-14T10:00:00+08:00";

/// demo-service, svc-ctl, rollback-verify live next to this binary; build them once if needed.
fn bin_dir() -> PathBuf {
    test_support::build_siblings(BIN, &["demo-service", "svc-ctl", "rollback-verify"])
}

fn sibling(name: &str) -> String {
    bin_dir().join(name).display().to_string()
}

struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        bin_dir();
        Site {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn drill(&self, extra: &[&str]) -> test_support::Run {
        let mut a = vec!["--output-file", "out.env", "--run-dir", "rd"];
        a.extend_from_slice(extra);
        run(BIN, &a, None, Some(self.path()))
    }
    fn evidence(&self) -> EnvDoc {
        let text = std::fs::read_to_string(self.path().join("out.env")).unwrap();
        EnvDoc::parse(&text, "out.env").unwrap()
    }
    fn status(&self, field: &str) -> String {
        let r = run(
            &sibling("svc-ctl"),
            &["--run-dir", "rd", "status", "--field", field],
            None,
            Some(self.path()),
        );
        r.code(0);
        r.stdout.trim().to_string()
    }
    fn verify(&self) -> test_support::Run {
        let out = self.path().join("out.env").display().to_string();
        run(
            &sibling("rollback-verify"),
            &["--evidence-file", &out],
            None,
            None,
        )
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if self.path().join("rd").exists() {
            let _ = run(
                &sibling("svc-ctl"),
                &["--run-dir", "rd", "stop", "--grace", "2"],
                None,
                Some(self.path()),
            );
        }
    }
}

fn assert_contract_order(ev: &EnvDoc) {
    let keys: Vec<_> = ev
        .entries()
        .iter()
        .take(12)
        .map(|e| e.key.as_str())
        .collect();
    assert_eq!(keys, KEYS);
    assert_eq!(ev.entries().last().unwrap().key, "provenance_config_sha256");
}

#[test]
fn health_failure_is_detected_and_rolled_back_for_real() {
    let site = Site::new();
    let r = site.drill(&["--execute", "--failure", "health", "--operator", "tester"]);
    r.code(0)
        .stdout_is("")
        .stderr_has("failure detected after 1 probes: expected status 200, got status 503")
        .stderr_has("result pass: rollback_seconds=");
    let ev = site.evidence();
    assert_contract_order(&ev);
    assert_eq!(ev.get("platform"), Some("local"));
    assert_eq!(ev.get("release_version"), Some("v2"));
    assert_eq!(ev.get("rollback_target"), Some("v1"));
    assert_eq!(
        ev.get("failure_injected"),
        Some("new_release_fails_health_check")
    );
    assert_eq!(ev.get("health_check_passed"), Some("true"));
    assert_eq!(ev.get("result"), Some("pass"));
    assert_eq!(ev.get("operator"), Some("tester"));
    assert_eq!(ev.get("running_release_after"), Some("v1"));
    assert_eq!(ev.get("running_exe_release_after"), Some("v1"));
    let secs: f64 = ev.get("rollback_seconds").unwrap().parse().unwrap();
    assert!(secs > 0.0 && secs < 20.0, "{secs}");
    // The process answering /health now is the old release.
    let port = std::fs::read_to_string(site.path().join("rd/port")).unwrap();
    let resp = evidence_core::health::http_get(
        &format!("http://127.0.0.1:{}/health", port.trim()),
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, "{\"status\":\"ok\",\"version\":\"v1\"}");
    assert_eq!(site.status("running_release"), "v1");
    assert_eq!(site.status("current"), "v1");
    assert_eq!(site.status("previous"), "v2");
    let out = site.path().join("out.env").display().to_string();
    site.verify()
        .code(0)
        .stdout_is(&format!("verification passed: {out}\n"))
        .stderr_is("");
}

#[test]
fn killed_process_is_detected_rolled_back_and_stopped_after() {
    let site = Site::new();
    let r = site.drill(&["--execute", "--failure", "kill", "--stop-after"]);
    r.code(0).stdout_is("").stderr_has("inject: svc-ctl");
    let ev = site.evidence();
    assert_contract_order(&ev);
    assert_eq!(
        ev.get("failure_injected"),
        Some("new_release_process_killed")
    );
    assert_eq!(ev.get("new_release_was_healthy"), Some("true"));
    assert!(
        ev.get("detect_detail")
            .unwrap()
            .contains("Connection refused")
    );
    assert_eq!(ev.get("result"), Some("pass"));
    assert_eq!(ev.get("stopped_after"), Some("true"));
    assert_eq!(site.status("running"), "false");
    site.verify().code(0);
}

#[test]
fn command_driven_service_from_config() {
    let site = Site::new();
    let cfg = fixture(env!("CARGO_MANIFEST_DIR"), "systemd_like.yaml");
    let r = run(
        BIN,
        &[
            "--execute",
            "--config",
            &cfg,
            "--output-file",
            "out.env",
            "--session-at",
            SATURDAY,
        ],
        None,
        Some(site.path()),
    );
    r.code(0).stdout_is("");
    let ev = site.evidence();
    assert_contract_order(&ev);
    assert_eq!(ev.get("platform"), Some("systemd"));
    assert_eq!(ev.get("release_version"), Some("r2"));
    assert_eq!(ev.get("rollback_target"), Some("r1"));
    assert_eq!(ev.get("notes"), Some("state-file service"));
    assert_eq!(ev.get("result"), Some("pass"));
    assert_eq!(
        std::fs::read_to_string(site.path().join("state")).unwrap(),
        "r1"
    );
    assert_eq!(
        ev.get("provenance_config_sha256").unwrap(),
        evidence_core::provenance::sha256_hex(&std::fs::read(&cfg).unwrap())
    );
    site.verify().code(0);
}

#[test]
fn undetected_failure_fails_the_drill() {
    let site = Site::new();
    let cfg = fixture(env!("CARGO_MANIFEST_DIR"), "never_fails.yaml");
    let r = run(
        BIN,
        &[
            "--execute",
            "--config",
            &cfg,
            "--output-file",
            "out.env",
            "--session-at",
            SATURDAY,
        ],
        None,
        Some(site.path()),
    );
    r.code(1)
        .stdout_is("")
        .stderr_has("result fail")
        .stderr_has("fail_reason=failure_not_detected");
    let ev = site.evidence();
    assert_eq!(ev.get("result"), Some("fail"));
    assert_eq!(ev.get("failure_detected"), Some("false"));
    assert!(
        ev.get("notes")
            .unwrap()
            .contains("was not detected within 0.3s")
    );
    site.verify()
        .code(1)
        .stderr_has("result must be pass, found \"fail\"");
}

#[test]
fn dry_run_prints_and_runs_nothing() {
    let site = Site::new();
    let r = site.drill(&[]);
    r.code(0)
        .stdout_is(
            "[dry-run] svc-ctl --run-dir \"$DRILL_RUN_DIR\" deploy --release \"$DRILL_ROLLBACK_TARGET\" --wait-healthy 10\n\
             [dry-run] svc-ctl --run-dir \"$DRILL_RUN_DIR\" deploy --release \"$DRILL_RELEASE_VERSION\" --fail-health\n\
             [dry-run] svc-ctl --run-dir \"$DRILL_RUN_DIR\" rollback\n",
        )
        .stderr_is("rollback-drill: evidence written: out.env\n");
    let ev = site.evidence();
    assert_contract_order(&ev);
    assert_eq!(ev.get("result"), Some("dry_run"));
    assert_eq!(ev.get("provenance_dry_run"), Some("1"));
    assert!(!site.path().join("rd").exists());
    site.verify().code(1).stderr_has("dry run proves nothing");
}

#[test]
fn usage_and_bad_input() {
    let site = Site::new();
    site.drill(&["--release-version", "v1"])
        .code(2)
        .stdout_is("")
        .stderr_is("rollback-drill: error: --release-version and --rollback-target are both \"v1\": a rollback needs two releases\n");
    site.drill(&[
        "--platform",
        "systemd",
        "--rollback-cmd",
        "true",
        "--health-cmd",
        "true",
    ])
    .code(2)
    .stderr_is(
        "rollback-drill: error: platform systemd needs --deploy-cmd (or its key in --config)\n",
    );
    site.drill(&["--detect-timeout", "0"])
        .code(2)
        .stderr_has("expected a duration from 1ms");
    site.drill(&["--failure", "explode"])
        .code(2)
        .stderr_has("invalid value 'explode'");
    let cfg = fixture(env!("CARGO_MANIFEST_DIR"), "bad_key.yaml");
    site.drill(&["--config", &cfg])
        .code(2)
        .stderr_has(&format!("rollback-drill: error: {cfg}:3: yaml:"))
        .stderr_has("unknown field `rollback_command`");
    site.drill(&["--detect-timeout", "18446744073709551615"])
        .code(2)
        .stdout_is("")
        .stderr_has("expected a duration from 1ms to 1440m");
    assert!(!site.path().join("out.env").exists());
    // Both spellings of a duration (dry runs).
    for t in ["2m", "120", "1500ms", "1.5"] {
        site.drill(&["--detect-timeout", t, "--rollback-timeout", t])
            .code(0);
    }
}

#[test]
fn sigint_during_rollback_writes_interrupted_evidence_and_kills_the_step() {
    let site = Site::new();
    let cfg = fixture(env!("CARGO_MANIFEST_DIR"), "hanging_rollback.yaml");
    let child = Command::new(BIN)
        .args([
            "--execute",
            "--config",
            &cfg,
            "--output-file",
            "out.env",
            "--session-at",
            SATURDAY,
        ])
        .current_dir(site.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pidfile = site.path().join("grandchild.pid");
    test_support::wait_until(
        Duration::from_secs(30),
        "the rollback step to start",
        || std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n')),
    );
    let gc: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(out.stdout.is_empty());
    let ev = site.evidence();
    assert_contract_order(&ev);
    assert_eq!(ev.get("result"), Some("interrupted"));
    assert_eq!(ev.get("health_check_passed"), Some("false"));
    assert!(ev.get("notes").unwrap().contains("interrupted"));
    let gone = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    };
    test_support::wait_until(Duration::from_secs(10), "the grandchild to die", || {
        gone(gc)
    });
    let r = site.verify();
    r.code(1)
        .stderr_has("result must be pass, found \"interrupted\"");
    assert!(!r.stderr.contains("timestamps_ordered"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("duration_matches_timestamps"),
        "{}",
        r.stderr
    );
}
