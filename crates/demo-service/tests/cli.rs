//! demo-service: /health with its version, --fail-health, the release folder's marker, usage.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use evidence_core::health::http_get;
use test_support::{run, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_demo-service");

struct Svc(Child, u16);

impl Svc {
    /// Start it on `--port 0` (the kernel picks a free port; no pick-then-bind race with other
    /// tests) and learn the port from its `listening on 127.0.0.1:<port>` line on stderr.
    fn start(args: &[&str]) -> Svc {
        let mut a = vec!["--port", "0"];
        a.extend_from_slice(args);
        let mut child = Command::new(BIN)
            .args(&a)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining stderr so the service never blocks on a full pipe.
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("demo-service printed nothing within 20 s");
        let port: u16 = first
            .strip_prefix("demo-service: listening on 127.0.0.1:")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first stderr line: {first:?}"));
        let s = Svc(child, port);
        let url = format!("http://127.0.0.1:{port}/health");
        wait_until(Duration::from_secs(20), "demo-service to answer", || {
            http_get(&url, Duration::from_secs(1)).is_ok()
        });
        s
    }
    fn get(&self, path: &str) -> (u16, String) {
        let r = http_get(
            &format!("http://127.0.0.1:{}{path}", self.1),
            Duration::from_secs(5),
        )
        .unwrap();
        (r.status, r.body)
    }
}

impl Drop for Svc {
    fn drop(&mut self) {
        let _ = evidence_core::process::stop_child(&mut self.0, Duration::from_secs(2));
    }
}

#[test]
fn health_reports_version() {
    let s = Svc::start(&["--service-version", "v7"]);
    assert_eq!(
        s.get("/health"),
        (200, "{\"status\":\"ok\",\"version\":\"v7\"}".into())
    );
    assert_eq!(s.get("/version"), (200, "v7\n".into()));
    assert_eq!(s.get("/nope").0, 404);
}

#[test]
fn fail_health_flag_and_marker() {
    let s = Svc::start(&["--service-version", "bad", "--fail-health"]);
    assert_eq!(
        s.get("/health"),
        (503, "{\"status\":\"failing\",\"version\":\"bad\"}".into())
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("VERSION"), "v3\n").unwrap();
    let d = dir.path().display().to_string();
    let s = Svc::start(&["--release-dir", &d]);
    assert_eq!(s.get("/health").0, 200);
    assert!(s.get("/health").1.contains("\"version\":\"v3\""));
    std::fs::write(dir.path().join("FAIL_HEALTH"), "x").unwrap();
    assert_eq!(s.get("/health").0, 503);
    std::fs::remove_file(dir.path().join("FAIL_HEALTH")).unwrap();
    assert_eq!(s.get("/health").0, 200);
}

#[test]
fn sigterm_stops_it_cleanly() {
    let mut s = Svc::start(&[]);
    let st = evidence_core::process::stop_child(&mut s.0, Duration::from_secs(10)).unwrap();
    assert_eq!(st.code(), Some(0));
}

#[test]
fn usage_and_bad_input() {
    run(BIN, &[], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--port <PORT>");
    run(
        BIN,
        &["--port", "0", "--release-dir", "/nonexistent/rel"],
        None,
        None,
    )
    .code(2)
    .stderr_has("cannot read /nonexistent/rel/VERSION");
    run(
        BIN,
        &["--port", "0", "--service-version", "a\"b"],
        None,
        None,
    )
    .code(2)
    .stderr_is("demo-service: error: bad version \"a\\\"b\"\n");
}

/// With `--redis-addr`/`--postgres-addr`, /health checks the storage with the stack's password and
/// fails (503, with the check's answer) when it is down. Needs redis-server (scripts/setup.sh).
#[test]
fn health_checks_redis_and_postgres_when_asked() {
    if !std::path::Path::new("/usr/bin/redis-server").exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "redis-server is missing (scripts/setup.sh installs it)"
        );
        test_support::skip(
            "health_checks_redis_and_postgres_when_asked",
            "no redis-server",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pwf = dir.path().join("password");
    stack_core::secret::write_secret(&pwf, "s3cret-pw").unwrap();
    // A real Redis with that password, on a port the kernel picks (learned from a bound socket).
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut redis = Command::new("/usr/bin/redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--requirepass",
            "s3cret-pw",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    wait_until(Duration::from_secs(10), "redis to listen", || {
        std::net::TcpStream::connect(&addr).is_ok()
    });
    let pw = pwf.display().to_string();
    let s = Svc::start(&[
        "--service-version",
        "v1",
        "--redis-addr",
        &addr,
        "--stack-password-file",
        &pw,
    ]);
    assert_eq!(
        s.get("/health"),
        (
            200,
            "{\"status\":\"ok\",\"version\":\"v1\",\"redis\":\"PONG\"}".into()
        )
    );
    let _ = evidence_core::process::stop_child(&mut redis, Duration::from_secs(5));
    let (code, body) = s.get("/health");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("\"version\":\"v1\",\"redis\":\"error: connect"),
        "{body}"
    );
    assert!(!body.contains("s3cret"), "{body}");
    // PostgreSQL nobody listens on: 503 with the connect error.
    let s = Svc::start(&[
        "--postgres-addr",
        "127.0.0.1:1",
        "--stack-password-file",
        &pw,
    ]);
    let (code, body) = s.get("/health");
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("\"postgres\":\"error: connect 127.0.0.1:1"),
        "{body}"
    );
    // A password file others can read is refused.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pwf, std::fs::Permissions::from_mode(0o644)).unwrap();
    run(
        BIN,
        &[
            "--port",
            "0",
            "--redis-addr",
            &addr,
            "--stack-password-file",
            &pw,
        ],
        None,
        None,
    )
    .code(2)
    .stderr_has("must not be readable by group or others");
}
