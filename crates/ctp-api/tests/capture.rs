//! The vendor library's stdout chatter goes to the log, not to the health stream. The test runs
//! itself again as a child (fd 1 is process-wide), whose stdout the parent checks.

mod common;

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use ctp_api::{ApiDir, Event, Session, Side, capture_stdout};

const CHILD_ENV: &str = "CTP_API_CAPTURE_CHILD";

/// In the child: capture, run the real library against a listener that closes at once (it
/// prints `OnSessionDisconnected` to stdout on each disconnect), write a health line.
fn child(log: &str, vendor: &str) {
    use std::io::Write;
    let mut health = capture_stdout(std::path::Path::new(log)).expect("capture");
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            drop(s);
        }
    });
    let flow = tempfile::tempdir().expect("tempdir");
    let t = ApiDir::new(vendor).target(
        Side::Trader,
        &format!("tcp://127.0.0.1:{port}"),
        flow.path(),
        false,
    );
    let s = Session::start(&t).expect("session");
    let end = Instant::now() + Duration::from_secs(20);
    while Instant::now() < end {
        if let Ok(ev) = s.events().recv_timeout(Duration::from_millis(100))
            && matches!(ev.event, Event::Disconnected { .. })
        {
            break;
        }
    }
    drop(s);
    writeln!(health, "[health] ts_ns=1 state=unhealthy").expect("health");
    // exit() flushes the C library's stdout buffer into the log.
    std::process::exit(0);
}

#[test]
fn vendor_stdout_goes_to_the_log_not_the_health_stream() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        let (log, vendor) = spec.split_once('\n').expect("spec");
        child(log, vendor);
        return;
    }
    let Some(f) = common::fixtures("vendor_stdout_goes_to_the_log_not_the_health_stream") else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("logs/ctp-api.log");
    let out = Command::new(std::env::current_exe().expect("exe"))
        .args([
            "vendor_stdout_goes_to_the_log_not_the_health_stream",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            CHILD_ENV,
            format!("{}\n{}", log.display(), f.vendor.display()),
        )
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child: {out:?}");
    assert!(
        stdout.contains("[health] ts_ns=1 state=unhealthy"),
        "{stdout}"
    );
    assert!(!stdout.contains("OnSessionDisconnected"), "{stdout}");
    let logged = std::fs::read_to_string(&log).expect("log");
    assert!(logged.contains("OnSessionDisconnected"), "{logged}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}
