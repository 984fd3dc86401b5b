//! rollback-drill passes only what it observed (issue 8 items 6, 7, 9, 10, 12): each case fails on
//! the code before the drills pass.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use evidence_core::dotenv::EnvDoc;
use test_support::{fixture, run, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_rollback-drill");
const SATURDAY: &str = "2026-03-14T10:00:00+08:00";
const TUESDAY_10AM: &str = "2026-03-10T10:00:00+08:00";

fn bin_dir() -> PathBuf {
    test_support::build_siblings(BIN, &["demo-service", "svc-ctl", "rollback-verify"])
}

fn fx(name: &str) -> String {
    fixture(env!("CARGO_MANIFEST_DIR"), name)
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
    /// An executed drill of a config fixture on a Saturday.
    fn drill_cfg(&self, cfg: &str, extra: &[&str]) -> test_support::Run {
        let cfg = fx(cfg);
        let mut a = vec![
            "--execute",
            "--config",
            cfg.as_str(),
            "--output-file",
            "out.env",
            "--session-at",
            SATURDAY,
        ];
        a.extend_from_slice(extra);
        run(BIN, &a, None, Some(self.path()))
    }
    fn local(&self, extra: &[&str]) -> test_support::Run {
        let mut a = vec!["--execute", "--output-file", "out.env", "--run-dir", "rd"];
        a.extend_from_slice(extra);
        run(BIN, &a, None, Some(self.path()))
    }
    fn evidence(&self) -> EnvDoc {
        let text = std::fs::read_to_string(self.path().join("out.env")).unwrap();
        EnvDoc::parse(&text, "out.env").unwrap()
    }
    fn svc(&self, args: &[&str]) -> test_support::Run {
        let mut a = vec!["--run-dir", "rd"];
        a.extend_from_slice(args);
        run(
            &bin_dir().join("svc-ctl").display().to_string(),
            &a,
            None,
            Some(self.path()),
        )
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if self.path().join("rd").exists() {
            let _ = self.svc(&["stop", "--grace", "2"]);
        }
    }
}

fn alive(pid: i32) -> bool {
    evidence_core::process::pid_alive(u32::try_from(pid).unwrap())
}

#[test]
fn systemd_without_release_check_is_refused_before_anything_runs() {
    let site = Site::new();
    site.drill_cfg("no_release_check.yaml", &[])
        .code(2)
        .stdout_is("")
        .stderr_has("rollback-drill: error: platform systemd needs a release check with --execute")
        .stderr_has("--release-cmd");
    assert!(!site.path().join("baseline-ran").exists());
    assert!(!site.path().join("out.env").exists());
}

#[test]
fn a_restarted_new_release_is_not_a_rollback() {
    let site = Site::new();
    site.drill_cfg("restarted_new_release.yaml", &[])
        .code(1)
        .stdout_is("")
        .stderr_has("r2 runs after the rollback, not the rollback target r1")
        .stderr_has("fail_reason=wrong_release_after");
    let ev = site.evidence();
    assert_eq!(ev.get("result"), Some("fail"));
    assert_eq!(ev.get("health_check_passed"), Some("true"));
    assert_eq!(ev.get("release_check"), Some("command"));
    assert_eq!(ev.get("running_release_before"), Some("r1"));
    assert_eq!(ev.get("running_release_after"), Some("r2"));
    assert_eq!(ev.get("fail_reason"), Some("wrong_release_after"));
}

#[test]
fn a_failed_deploy_is_not_a_pass() {
    let site = Site::new();
    site.drill_cfg("failed_deploy.yaml", &[])
        .code(1)
        .stdout_is("")
        .stderr_has("the deploy of r2 failed: exit 3");
    let ev = site.evidence();
    assert_eq!(ev.get("result"), Some("fail"));
    assert_eq!(ev.get("deploy_exit"), Some("3"));
    assert_eq!(ev.get("fail_reason"), Some("deploy_failed"));
    // The rollback still ran and restored r1.
    assert_eq!(ev.get("running_release_after"), Some("r1"));
}

#[test]
fn a_baseline_not_in_place_is_a_fail_with_evidence() {
    let site = Site::new();
    site.local(&["--baseline-cmd", "exit 7"])
        .code(1)
        .stdout_is("")
        .stderr_has("the baseline (v1) could not be put in place: exit 7");
    let ev = site.evidence();
    assert_eq!(ev.get("result"), Some("fail"));
    assert_eq!(ev.get("baseline_ok"), Some("false"));
    assert_eq!(ev.get("fail_reason"), Some("baseline_not_in_place"));
    assert_eq!(ev.get("deploy_exit"), Some(""));
    // Healthy, but another release than the target runs before the drill.
    let site = Site::new();
    site.drill_cfg("failed_deploy.yaml", &["--release-cmd", "echo r0"])
        .code(1)
        .stderr_has("r0 runs before the drill, not the rollback target r1");
    let ev = site.evidence();
    assert_eq!(ev.get("fail_reason"), Some("baseline_not_in_place"));
    assert_eq!(ev.get("running_release_before"), Some("r0"));
}

#[test]
fn kill_mode_needs_the_new_release_healthy_first() {
    let site = Site::new();
    site.local(&[
        "--failure",
        "kill",
        "--deploy-cmd",
        "svc-ctl --run-dir \"$DRILL_RUN_DIR\" deploy --release \"$DRILL_RELEASE_VERSION\" --fail-health",
        "--stop-after",
    ])
    .code(1)
    .stdout_is("")
    .stderr_has("fail_reason=new_release_never_healthy");
    let ev = site.evidence();
    assert_eq!(ev.get("new_release_was_healthy"), Some("false"));
    assert_eq!(ev.get("fail_reason"), Some("new_release_never_healthy"));
    assert_eq!(ev.get("result"), Some("fail"));
    assert_eq!(ev.get("stopped_after"), Some("true"));
}

#[test]
fn stopped_after_is_measured() {
    let site = Site::new();
    site.drill_cfg("stop_does_nothing.yaml", &["--stop-after"])
        .code(1)
        .stdout_is("")
        .stderr_has("fail_reason=stop_failed");
    let ev = site.evidence();
    assert_eq!(ev.get("stop_requested"), Some("true"));
    assert_eq!(ev.get("stopped_after"), Some("false"));
    assert_eq!(ev.get("fail_reason"), Some("stop_failed"));
}

#[test]
fn a_signal_during_cleanup_is_an_interruption() {
    let site = Site::new();
    let cfg = fx("hanging_stop.yaml");
    let child = Command::new(BIN)
        .args([
            "--execute",
            "--config",
            &cfg,
            "--output-file",
            "out.env",
            "--session-at",
            SATURDAY,
            "--stop-after",
        ])
        .current_dir(site.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "the stop command to start", || {
        site.path().join("stopping").exists()
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(out.stdout.is_empty());
    let ev = site.evidence();
    assert_eq!(ev.get("result"), Some("interrupted"));
    assert_eq!(ev.get("fail_reason"), Some(""));
}

#[test]
fn sigkill_of_the_drill_kills_its_steps_and_its_service_and_frees_the_lock_after() {
    let site = Site::new();
    let child = Command::new(BIN)
        .args([
            "--execute",
            "--output-file",
            "out.env",
            "--run-dir",
            "rd",
            "--lock-file",
            "drill.lock",
            "--rollback-cmd",
            "sh -c 'echo $$ > grandchild.pid; exec sleep 300' & wait",
            "--rollback-timeout",
            "5m",
        ])
        .current_dir(site.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pidfile = site.path().join("grandchild.pid");
    wait_until(
        Duration::from_secs(60),
        "the rollback step to start",
        || std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n')),
    );
    let gc: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // The rollback hangs: the new release (v2, failing health) still runs.
    let svc: i32 = site
        .svc(&["status", "--field", "pid"])
        .stdout
        .trim()
        .parse()
        .unwrap();
    let mut child = child;
    child.kill().unwrap(); // SIGKILL: no clean-up of its own
    child.wait().unwrap();
    wait_until(
        Duration::from_secs(30),
        "the step's grandchild to die",
        || !alive(gc),
    );
    wait_until(Duration::from_secs(30), "the service to die", || {
        !alive(svc)
    });
    wait_until(Duration::from_secs(30), "the lock to be free", || {
        evidence_core::lock::LockFile::acquire(&site.path().join("drill.lock"), "x").is_ok()
    });
    site.svc(&["status", "--field", "running"])
        .code(0)
        .stdout_is("false\n");
}

#[test]
fn unwritable_outputs_are_refused_before_anything_runs() {
    let site = Site::new();
    let drill = |out: &str| {
        run(
            BIN,
            &[
                "--execute",
                "--run-dir",
                "rd",
                "--output-file",
                out,
                "--baseline-cmd",
                "touch baseline-ran",
            ],
            None,
            Some(site.path()),
        )
    };
    drill("/nonexistent-ctp-ops-test/out.env")
        .code(2)
        .stdout_is("")
        .stderr_has("the top-level folder /nonexistent-ctp-ops-test does not exist");
    assert!(!Path::new("/nonexistent-ctp-ops-test").exists());
    std::fs::create_dir(site.path().join("adir")).unwrap();
    drill("adir")
        .code(2)
        .stdout_is("")
        .stderr_has("--output-file adir: is a folder");
    assert!(!site.path().join("baseline-ran").exists());
    assert!(!site.path().join("rd").exists());
    // --results-dir moves the evidence.
    run(
        BIN,
        &["--results-dir", "res", "--run-dir", "rd"],
        None,
        Some(site.path()),
    )
    .code(0);
    assert!(site.path().join("res/deploy_rollback_result.env").is_file());
    site.local(&["--drill-id", ".."])
        .code(2)
        .stderr_has("expected a drill id");
}

#[test]
fn session_guard_refuses_systemd_inside_a_session() {
    let site = Site::new();
    let cfg = fx("failed_deploy.yaml");
    let base = [
        "--execute",
        "--config",
        cfg.as_str(),
        "--output-file",
        "out.env",
        "--session-at",
        TUESDAY_10AM,
    ];
    run(BIN, &base, None, Some(site.path()))
        .code(2)
        .stdout_is("")
        .stderr_has("refusing to drill against platform:systemd inside a trading session")
        .stderr_has("next allowed window from");
    assert!(!site.path().join("state").exists());
    let mut forced = base.to_vec();
    forced.push("--allow-in-session");
    run(BIN, &forced, None, Some(site.path())).code(1);
    let ev = site.evidence();
    assert_eq!(ev.get("session_guard"), Some("forced"));
    // Loopback only (the local demo service): the guard does not apply.
    let site = Site::new();
    site.local(&["--session-at", TUESDAY_10AM, "--stop-after"])
        .code(0);
    assert_eq!(site.evidence().get("session_guard"), Some("not_applicable"));
}
