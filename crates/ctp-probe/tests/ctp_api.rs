//! ctp-probe --mode ctp-api: the vendor CTP API (real v6.7.7 library from rtpx) against local
//! listeners, and LocalCTP for the login. Fixtures: crates/ctp-api/tests/common (built on first
//! use, cached under target/tmp; SKIP when they cannot be had, FAIL under CI=true).
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

#[path = "../../ctp-api/tests/common/mod.rs"]
mod ctp_fixtures;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use test_support::wait_until;

const BIN: &str = env!("CARGO_BIN_EXE_ctp-probe");
const PW_ENV: &str = "CTP_PROBE_API_TEST_PASSWORD";
const PW: &str = "api-secret-pw-51c9";

fn write_config(dir: &Path, trader: &str, market: &str, backoff: (u64, u64)) -> PathBuf {
    let p = dir.join("ctp.yaml");
    std::fs::write(
        &p,
        format!(
            "ctp:\n  profile: probe_api_test\n  environment: sim\n  is_production_mode: false\n  \
             enable_real_api: true\n  enable_terminal_auth: true\n  \
             trader_front: \"{trader}\"\n  market_front: \"{market}\"\n  broker_id: \"9999\"\n  \
             user_id: \"local-user1\"\n  password_env: {PW_ENV}\n  app_id: simnow_client_test\n  \
             auth_code: \"0000000000000000\"\n  flow_path: {}\n  connect_timeout_ms: 10000\n  \
             reconnect_max_attempts: 8\n  reconnect_initial_backoff_ms: {}\n  \
             reconnect_max_backoff_ms: {}\n",
            dir.join("flow").display(),
            backoff.0,
            backoff.1
        ),
    )
    .unwrap();
    p
}

fn jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn read(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned()
}

#[test]
fn ctp_api_mode_logs_in_through_localctp_and_keeps_the_password_secret() {
    let Some(f) = ctp_fixtures::fixtures(
        "ctp_api_mode_logs_in_through_localctp_and_keeps_the_password_secret",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "tcp://127.0.0.1:1",
        "tcp://127.0.0.1:2",
        (200, 800),
    );
    let (log, events, api_log) = (
        dir.path().join("probe.log"),
        dir.path().join("events.jsonl"),
        dir.path().join("api.log"),
    );
    // --mode auto: enable_real_api and both libraries present pick ctp-api.
    let child = Command::new(BIN)
        .arg(&cfg)
        .args([
            "--monitor-seconds",
            "-1",
            "--health-interval-ms",
            "200",
            "--ctp-lib-dir",
        ])
        .arg(&f.localctp)
        .arg("--log-file")
        .arg(&log)
        .arg("--events-file")
        .arg(&events)
        .arg("--api-log")
        .arg(&api_log)
        .env(PW_ENV, PW)
        .current_dir(dir.path()) // LocalCTP writes LocalCTP.db to the current folder
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(60), "healthy", || {
        read(&log).contains("state=healthy")
    });
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(PW),
        "the password is not in argv"
    );
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("mode ctp-api"), "{stderr}");
    assert!(stderr.contains("healthy: both fronts"), "{stderr}");
    let ev = jsonl(&events);
    assert_eq!(ev[0]["kind"], "probe.start");
    assert_eq!(ev[0]["mode"], "ctp-api");
    let logins: Vec<&Value> = ev.iter().filter(|e| e["kind"] == "probe.login").collect();
    assert_eq!(logins.len(), 2, "{ev:?}");
    let trader = logins.iter().find(|e| e["front"] == "trader").unwrap();
    assert!(trader["auth_ms"].is_number(), "authenticated: {trader}");
    assert!(trader["login_ms"].is_number());
    assert_eq!(trader["trading_day"].as_str().unwrap().len(), 8);
    let market = logins.iter().find(|e| e["front"] == "market").unwrap();
    assert!(market["auth_ms"].is_null(), "{market}");
    assert!(
        ev.iter()
            .any(|e| e["kind"] == "probe.state" && e["state"] == "healthy")
    );
    // The password appears nowhere the probe writes.
    for (what, text) in [
        ("stdout", stdout),
        ("stderr", stderr),
        ("health log", read(&log)),
        ("events", read(&events)),
        ("api log", read(&api_log)),
    ] {
        assert!(!text.contains(PW), "the password is in the {what}");
    }
    for e in std::fs::read_dir(dir.path().join("flow/trader")).unwrap() {
        let p = e.unwrap().path();
        assert!(!read(&p).contains(PW), "the password is in {}", p.display());
    }
}

/// A 127.0.0.1 listener that closes every connection at once and counts them.
fn closing_listener() -> (String, Arc<AtomicUsize>, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    l.set_nonblocking(true).unwrap();
    let n = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (n2, s2) = (Arc::clone(&n), Arc::clone(&stop));
    thread::spawn(move || {
        while !s2.load(Ordering::SeqCst) {
            match l.accept() {
                Ok((s, _)) => {
                    n2.fetch_add(1, Ordering::SeqCst);
                    drop(s);
                }
                Err(_) => thread::sleep(Duration::from_millis(2)),
            }
        }
    });
    (format!("tcp://127.0.0.1:{port}"), n, stop)
}

#[test]
fn ctp_api_mode_backs_off_against_fronts_that_close_every_connection() {
    let Some(f) =
        ctp_fixtures::fixtures("ctp_api_mode_backs_off_against_fronts_that_close_every_connection")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (trader, nt, st) = closing_listener();
    let (market, nm, sm) = closing_listener();
    let cfg = write_config(dir.path(), &trader, &market, (200, 800));
    let events = dir.path().join("events.jsonl");
    let api_log = dir.path().join("api.log");
    let t0 = Instant::now();
    // Health lines on stdout: the library's chatter must not be among them.
    let out = Command::new(BIN)
        .arg(&cfg)
        .args([
            "--mode",
            "ctp-api",
            "--monitor-seconds",
            "5",
            "--ctp-lib-dir",
        ])
        .arg(&f.vendor)
        .arg("--events-file")
        .arg(&events)
        .arg("--api-log")
        .arg(&api_log)
        .env(PW_ENV, PW)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let ran = t0.elapsed();
    st.store(true, Ordering::SeqCst);
    sm.store(true, Ordering::SeqCst);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "never healthy: {stderr}");
    assert!(!stdout.is_empty());
    for l in stdout.lines() {
        assert!(l.starts_with("[health] ts_ns="), "stdout line {l:?}");
        assert!(l.ends_with("state=unhealthy"), "{l}");
    }
    assert!(read(&api_log).contains("OnSessionDisconnected"));
    let ev = jsonl(&events);
    let attempts = ev.iter().filter(|e| e["kind"] == "probe.attempt").count();
    let downs: Vec<&Value> = ev
        .iter()
        .filter(|e| e["kind"] == "probe.disconnect")
        .collect();
    assert!(downs.len() >= 4, "{ev:?}");
    for d in &downs {
        assert_eq!(d["reason"], "net_read_failed", "{d}");
        assert!(d["detail"].as_str().unwrap().contains("0x1001"), "{d}");
    }
    // Backoff 0, 200, 400, 800, 800 ... ms on each front: at most ~10 attempts each in 5 s; the
    // library alone makes hundreds of connections a second against such a front.
    assert!(attempts <= 2 * 11, "{attempts} attempts");
    let conns = nt.load(Ordering::SeqCst) + nm.load(Ordering::SeqCst);
    let per_s = conns as f64 / ran.as_secs_f64();
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!(
            "measured: {conns} connections, {attempts} attempts, {} disconnects in {:.1} s\n",
            downs.len(),
            ran.as_secs_f64()
        )
        .as_bytes(),
    );
    assert!(
        conns <= attempts * 20 + 20,
        "{conns} connections for {attempts} attempts"
    );
    assert!(per_s < 100.0, "{per_s:.1} connections/s");
    assert!(!read(&events).contains(PW) && !stderr.contains(PW));
}

#[test]
fn ctp_api_mode_without_the_libraries_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "tcp://127.0.0.1:1",
        "tcp://127.0.0.1:2",
        (200, 800),
    );
    let out = Command::new(BIN)
        .arg(&cfg)
        .args([
            "--mode",
            "ctp-api",
            "--monitor-seconds",
            "0",
            "--ctp-lib-dir",
        ])
        .arg(dir.path().join("no-such-api"))
        .env(PW_ENV, PW)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("thosttraderapi_se.so is missing"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    // And no password: the same usage error, naming the variable.
    let out = Command::new(BIN)
        .arg(&cfg)
        .args(["--mode", "ctp-api", "--monitor-seconds", "0"])
        .env_remove(PW_ENV)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(PW_ENV), "{stderr}");
}
