//! svc-ctl: deploy, atomic switch, rollback, kill, fail-health, status, health, stop, usage.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::path::Path;
use std::time::Duration;

use test_support::run;

const BIN: &str = env!("CARGO_BIN_EXE_svc-ctl");

struct Site(tempfile::TempDir);

impl Site {
    fn new() -> Site {
        test_support::build_siblings(BIN, &["demo-service"]);
        Site(tempfile::tempdir().unwrap())
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn svc(&self, args: &[&str]) -> test_support::Run {
        let mut a = vec!["--run-dir", "rd"];
        a.extend_from_slice(args);
        run(BIN, &a, None, Some(self.path()))
    }
    fn field(&self, f: &str) -> String {
        let r = self.svc(&["status", "--field", f]);
        r.code(0).stderr_is("");
        r.stdout.trim().to_string()
    }
    fn get_health(&self) -> (u16, String) {
        let port = self.field("port");
        let r = evidence_core::health::http_get(
            &format!("http://127.0.0.1:{port}/health"),
            Duration::from_secs(5),
        )
        .unwrap();
        (r.status, r.body)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = self.svc(&["stop", "--grace", "2"]);
    }
}

#[test]
fn deploy_break_roll_back_stop() {
    let s = Site::new();
    s.svc(&["deploy", "--release", "v1", "--wait-healthy", "20"])
        .code(0)
        .stdout_has("health ok http://127.0.0.1:")
        .stderr_has("svc-ctl: deployed v1 (previous: none), listening on port ");
    assert_eq!(
        s.get_health(),
        (200, "{\"status\":\"ok\",\"version\":\"v1\"}".into())
    );
    let pid_v1 = s.field("pid");

    s.svc(&["deploy", "--release", "v2", "--fail-health"])
        .code(0)
        .stdout_is("")
        .stderr_has("deployed v2 (marked to fail health) (previous: v1)");
    assert_eq!(s.get_health().0, 503);
    assert_ne!(s.field("pid"), pid_v1);
    assert_eq!(s.field("current"), "v2");
    assert_eq!(s.field("previous"), "v1");
    assert_eq!(s.field("running_release"), "v2");
    assert_eq!(s.field("running_exe_release"), "v2");
    assert_eq!(
        std::fs::read_link(s.path().join("rd/current")).unwrap(),
        Path::new("releases/v2")
    );
    s.svc(&["health", "--expect-version", "v2"])
        .code(1)
        .stdout_has("health FAILED")
        .stdout_has("expected status 200, got status 503");

    s.svc(&["rollback", "--wait-healthy", "20"])
        .code(0)
        .stderr_has("rolled back from v2 to v1");
    assert_eq!(
        s.get_health(),
        (200, "{\"status\":\"ok\",\"version\":\"v1\"}".into())
    );
    assert_eq!(s.field("current"), "v1");
    assert_eq!(s.field("previous"), "v2");
    s.svc(&["health", "--expect-version", "v2"])
        .code(1)
        .stdout_has("body lacks");

    s.svc(&["fail-health"])
        .code(0)
        .stderr_has("release v1 now fails its health check");
    assert_eq!(s.get_health().0, 503);
    s.svc(&["deploy", "--release", "v1"]).code(0);
    assert_eq!(s.get_health().0, 200, "redeploy clears the marker");
    assert_eq!(
        s.field("previous"),
        "v2",
        "redeploying current keeps previous"
    );

    s.svc(&["kill"]).code(0).stderr_has("killed pid");
    assert_eq!(s.field("running"), "false");
    s.svc(&["start"]).code(0).stderr_has("started v1");
    s.svc(&["start"]).code(0).stderr_has("already running: v1");
    let pid: i32 = s.field("pid").parse().unwrap();
    s.svc(&["stop"])
        .code(0)
        .stdout_is("")
        .stderr_is("svc-ctl: stopped (SIGTERM)\n");
    assert_eq!(s.field("running"), "false");
    assert!(
        !Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap()
                .contains(") Z ")
    );
    s.svc(&["stop"]).code(0).stderr_is("svc-ctl: not running\n");
    let log = std::fs::read_to_string(s.path().join("rd/logs/service.log")).unwrap();
    assert!(log.contains("version=v2"), "{log}");
}

#[test]
fn status_of_an_empty_folder_and_errors() {
    let s = Site::new();
    let r = s.svc(&["status"]);
    r.code(0).stderr_is("");
    assert!(r.stdout.contains("current=none\n"), "{}", r.stdout);
    assert!(r.stdout.contains("running=false\n"));
    s.svc(&["rollback"])
        .code(2)
        .stderr_has("no previous release to roll back to");
    s.svc(&["health"])
        .code(2)
        .stderr_has("no port yet (deploy a release first)");
    s.svc(&["deploy", "--release", "../x"])
        .code(2)
        .stderr_has("release name must be 1-64 of [A-Za-z0-9._-]");
    s.svc(&["deploy", "--release", "v1", "--binary", "/nonexistent/demo"])
        .code(2)
        .stderr_has("service binary /nonexistent/demo not found");
    s.svc(&["status", "--field", "colour"])
        .code(2)
        .stderr_has("unknown field \"colour\"");
    s.svc(&["frobnicate"]).code(2).stdout_is("");
}

#[test]
fn a_port_taken_by_another_process_is_not_mistaken_for_the_release() {
    let s = Site::new();
    // Something else listens on the port: it accepts connections, but it is not our release.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port().to_string();
    let r = s.svc(&["deploy", "--release", "v1", "--port", &port]);
    r.code(2)
        .stdout_is("")
        .stderr_has("svc-ctl: error: release v1 exited right after start (see ");
    s.svc(&["status", "--field", "running"])
        .code(0)
        .stdout_is("false\n");
}

#[test]
fn durations_take_both_spellings_and_are_range_checked() {
    let s = Site::new();
    s.svc(&["deploy", "--release", "v1", "--wait-healthy", "20s"])
        .code(0);
    // The wrong version: health fails (exit 1) after its timeout, in either spelling.
    for t in ["200ms", "0.2"] {
        s.svc(&["health", "--expect-version", "v9", "--timeout", t])
            .code(1)
            .stdout_has("health FAILED");
    }
    for bad in ["1e400", "-1", "NaN", "18446744073709551615"] {
        s.svc(&["stop", &format!("--grace={bad}")])
            .code(2)
            .stdout_is("")
            .stderr_has("invalid value");
    }
}
