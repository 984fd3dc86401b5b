//! The real native stack, started by `prodlike`: healthy after up; a killed Redis replica, sentinel
//! and PostgreSQL standby are each named unhealthy with the probe's answer within 2 s; an alert
//! fired by Prometheus reaches the webhook receiver; down leaves no process and no port; a
//! service never started is missing. Needs root and the Debian packages (scripts/setup.sh).
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use test_support::{build_siblings, run, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_prodlike-health");

fn can_run(test: &str) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let missing = stack_core::stack::missing_programs();
    let reason = if !test_support::is_root() {
        "needs root (PostgreSQL runs as the postgres user through setpriv)".to_string()
    } else if !missing.is_empty() {
        format!("missing {missing:?} (scripts/setup.sh installs them)")
    } else {
        return true;
    };
    assert!(!ci, "{test}: {reason}");
    test_support::skip(test, &reason);
    false
}

/// A base port below the ephemeral range, different per test process.
fn base_port(salt: u32) -> String {
    stack_core::stack::free_test_base_port(std::process::id() + salt)
        .expect("a free base port")
        .to_string()
}

fn report(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn pid_of(run_dir: &Path, service: &str) -> i32 {
    let t = std::fs::read_to_string(run_dir.join(format!("{service}.pid"))).unwrap();
    t.lines()
        .find_map(|l| l.strip_prefix("pid="))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

struct Down {
    prodlike: PathBuf,
    run_dir: PathBuf,
}
impl Drop for Down {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.prodlike)
            .args([
                "--execute",
                "--action",
                "down",
                "--output-file",
                "-",
                "--run-dir",
            ])
            .arg(&self.run_dir)
            .arg("--lock-file")
            .arg(self.run_dir.with_file_name("prodlike.lock"))
            .output();
    }
}

#[test]
fn native_stack_health_kills_alert_and_down() {
    if !can_run("native_stack_health_kills_alert_and_down") {
        return;
    }
    let dir = build_siblings(BIN, &["prodlike"]);
    let prodlike = dir.join("prodlike");
    let tmp = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let run_dir = tmp.path().join("run");
    let rd = run_dir.to_str().unwrap();
    let up_env = tmp.path().join("up.env");
    let health = tmp.path().join("health.json");
    let port = base_port(0);
    let _down = Down {
        prodlike: prodlike.clone(),
        run_dir: run_dir.clone(),
    };
    let p = prodlike.to_str().unwrap();
    let lock_path = run_dir.with_file_name("prodlike.lock");
    let lock = lock_path.to_str().unwrap();
    let up = run(
        p,
        &[
            "--execute",
            "--action",
            "up",
            "--run-dir",
            rd,
            "--base-port",
            &port,
            "--output-file",
            up_env.to_str().unwrap(),
            "--health-report",
            health.to_str().unwrap(),
            "--wait-timeout",
            "90",
            "--lock-file",
            lock,
        ],
        None,
        None,
    );
    up.code(0).stdout_is(&format!("{}\n", up_env.display()));
    let env = std::fs::read_to_string(&up_env).unwrap();
    assert!(env.contains("PRODLIKE_SUCCESS=true\n"), "{env}");
    assert!(env.contains("PRODLIKE_ACTION=up\n"), "{env}");
    assert!(env.contains("PRODLIKE_FAILED_STEP=\n"), "{env}");
    assert!(env.contains("STEP_1_NAME=start_redis-primary\n"), "{env}");
    assert!(env.contains("PROVENANCE_DRY_RUN=0\n"), "{env}");
    let r = report(&health);
    assert_eq!(r["healthy"], true, "{r:#}");
    assert_eq!(r["service_states"]["prometheus"]["health"], "healthy");
    assert!(
        r["service_states"]["redis-sentinel-1"]["answer"]
            .as_str()
            .unwrap()
            .contains("CKQUORUM OK")
    );
    // The password is in the run folder (0600) and nowhere else.
    let pw = std::fs::read_to_string(run_dir.join("secrets/password")).unwrap();
    assert_eq!(pw.len(), 32);
    {
        use std::os::unix::fs::PermissionsExt;
        let m = std::fs::metadata(run_dir.join("secrets/password"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(m & 0o777, 0o600);
    }
    for text in [
        &env,
        &std::fs::read_to_string(&health).unwrap(),
        &up.stdout,
        &up.stderr,
    ] {
        assert!(!text.contains(&pw), "the password leaked");
    }
    for log in std::fs::read_dir(run_dir.join("logs")).unwrap() {
        let t = std::fs::read_to_string(log.unwrap().path()).unwrap_or_default();
        assert!(!t.contains(&pw), "the password is in a log");
    }

    // up twice: a no-op that says so.
    run(
        p,
        &[
            "--execute",
            "--action",
            "up",
            "--run-dir",
            rd,
            "--output-file",
            "-",
            "--lock-file",
            lock,
            "--health-report",
            health.to_str().unwrap(),
        ],
        None,
        None,
    )
    .code(0)
    .stdout_has("PRODLIKE_RESULT=already_running")
    .stderr_has("already running");

    // ps: one JSON row per service.
    let ps = run(
        p,
        &[
            "--execute",
            "--action",
            "ps",
            "--run-dir",
            rd,
            "--output-file",
            tmp.path().join("ps.env").to_str().unwrap(),
        ],
        None,
        None,
    );
    ps.code(0);
    let rows: Vec<Value> = ps
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        rows.iter()
            .any(|r| r["Service"] == "timescale-replica" && r["State"] == "running")
    );
    assert!(
        rows.iter()
            .any(|r| r["Service"] == "grafana" && r["State"] == "not_provided")
    );

    // An alert fired by Prometheus reaches the receiver: a textfile metric trips CtpOpsDrillAlert.
    std::fs::write(
        run_dir.join("textfile/drill.prom"),
        "ctp_ops_drill_alert{drill=\"live-test\"} 1\n",
    )
    .unwrap();
    let alerts = run_dir.join("webhook/alerts.jsonl");
    wait_until(
        Duration::from_secs(40),
        "CtpOpsDrillAlert at the webhook",
        || {
            std::fs::read_to_string(&alerts)
                .is_ok_and(|t| t.contains("CtpOpsDrillAlert") && t.contains("live-test"))
        },
    );

    // Kill -9 each member in turn: named unhealthy with the probe's answer within 2 s.
    let h2 = tmp.path().join("h2.json");
    for victim in ["redis-replica", "redis-sentinel-2", "timescale-replica"] {
        let pid = pid_of(&run_dir, victim);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let t0 = Instant::now();
        let named = loop {
            let h = run(
                BIN,
                &["--run-dir", rd, "--report-json", h2.to_str().unwrap()],
                None,
                None,
            );
            let last = format!("{}{}", h.stdout, h.stderr);
            if h.code == Some(1) {
                let r = report(&h2);
                if let Some(e) = r["unhealthy_services"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["service"] == victim)
                {
                    break e.clone();
                }
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{victim} never reported: {last}"
            );
        };
        let took = t0.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "{victim} named after {took:?}"
        );
        assert!(
            named["answer"].as_str().unwrap().contains("not running"),
            "{named}"
        );
        assert_eq!(named["state"], "exited");
        assert!(
            named["probe"].as_str().unwrap().contains("127.0.0.1"),
            "{named}"
        );
    }

    // up restarts the crashed members (stale PostgreSQL lock files of a killed postmaster included).
    let re = run(
        p,
        &[
            "--execute",
            "--action",
            "up",
            "--run-dir",
            rd,
            "--output-file",
            "-",
            "--lock-file",
            lock,
            "--health-report",
            health.to_str().unwrap(),
        ],
        None,
        None,
    );
    re.code(0)
        .stdout_has("PRODLIKE_RESULT=success\n")
        .stdout_has("_NAME=start_timescale-replica\n");

    // down: nothing left, every port free.
    let down = run(
        p,
        &[
            "--execute",
            "--action",
            "down",
            "--run-dir",
            rd,
            "--output-file",
            "-",
            "--lock-file",
            lock,
        ],
        None,
        None,
    );
    down.code(0)
        .stdout_has("PRODLIKE_SUCCESS=true")
        .stdout_has("PRODLIKE_PROCESSES_LEFT=0");
    let base: u16 = port.parse().unwrap();
    for k in stack_core::stack::ServiceKind::all() {
        let a = format!("127.0.0.1:{}", base + k.port_offset());
        assert!(
            std::net::TcpStream::connect_timeout(&a.parse().unwrap(), Duration::from_millis(200))
                .is_err(),
            "{a} still bound"
        );
    }

    // A service never started is missing (not unhealthy): start only the Redis primary.
    let stack = stack_core::stack::Stack::open(&run_dir).unwrap().unwrap();
    let pw = stack_core::launch::prepare(&stack).unwrap();
    stack_core::launch::start_one(
        &stack,
        stack_core::stack::ServiceKind::RedisPrimary,
        &pw,
        Instant::now() + Duration::from_secs(10),
    )
    .unwrap();
    let h = run(BIN, &["--run-dir", rd, "--report-json", "-"], None, None);
    h.code(1);
    let r: Value = serde_json::from_str(&h.stdout).unwrap();
    assert_eq!(r["classification"], "missing_services", "{r:#}");
    assert!(
        r["missing_services"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "timescale-replica")
    );
    assert_eq!(r["service_states"]["redis-primary"]["health"], "healthy");
    assert_eq!(r["service_states"]["redis-replica"]["state"], "not_started");
}

#[test]
fn saved_compose_ps_is_judged_as_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let ps = tmp.path().join("ps.json");
    std::fs::write(
        &ps,
        r#"[{"Service":"redis-primary","State":"running","Health":"healthy"},
            {"Service":"timescale-primary","State":"running","Health":"healthy"},
            {"Service":"prometheus","State":"running","Health":""},
            {"Service":"grafana","State":"running","Health":""},
            {"Service":"minio","State":"exited","Health":""}]"#,
    )
    .unwrap();
    let h = run(
        BIN,
        &["--ps-json-file", ps.to_str().unwrap(), "--report-json", "-"],
        None,
        None,
    );
    h.code(1);
    let r: Value = serde_json::from_str(&h.stdout).unwrap();
    assert_eq!(r["classification"], "unhealthy_services");
    assert_eq!(r["unhealthy_services"][0]["service"], "minio");
    assert_eq!(r["compose_file"], "");
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), r.as_object().unwrap().len());
    // The original's key order.
    let text = &h.stdout;
    let pos = |k: &str| text.find(&format!("\"{k}\":")).unwrap();
    assert!(pos("generated_ts_ns") < pos("healthy") && pos("healthy") < pos("severity"));
    assert!(
        pos("missing_services") < pos("unhealthy_services")
            && pos("service_states") < pos("compose_file")
    );
    // All healthy: exit 0.
    std::fs::write(
        &ps,
        r#"{"Service":"redis-primary","State":"running","Health":"healthy"}"#,
    )
    .unwrap();
    run(
        BIN,
        &[
            "--ps-json-file",
            ps.to_str().unwrap(),
            "--required-services",
            "redis-primary",
            "--report-json",
            "-",
        ],
        None,
        None,
    )
    .code(0)
    .stdout_has("\"classification\": \"healthy\"");
    // Bad JSON: exit 2, naming the file.
    std::fs::write(&ps, "{not json\n").unwrap();
    run(
        BIN,
        &["--ps-json-file", ps.to_str().unwrap(), "--report-json", "-"],
        None,
        None,
    )
    .code(2)
    .stderr_has("ps.json");
}

#[test]
fn compose_command_failure_is_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("c.yaml");
    std::fs::write(&f, "services: {}\n").unwrap();
    let h = run(
        BIN,
        &[
            "--compose-file",
            f.to_str().unwrap(),
            "--docker-bin",
            "/bin/false",
            "--report-json",
            "-",
        ],
        None,
        None,
    );
    h.code(2);
    let r: Value = serde_json::from_str(&h.stdout).unwrap();
    assert_eq!(r["classification"], "compose_command_failed");
    assert_eq!(r["severity"], "critical");
}

#[test]
fn usage_errors_are_exit_2() {
    run(BIN, &["--wait-timeout=-1s"], None, None)
        .code(2)
        .stderr_has("--wait-timeout");
    run(BIN, &["--backend", "nope"], None, None).code(2);
    run(BIN, &["--help"], None, None)
        .code(0)
        .stdout_has("EXIT STATUS");
}
