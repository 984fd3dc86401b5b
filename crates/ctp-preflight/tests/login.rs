//! ctp-preflight --check-login: a login through the vendor CTP API (LocalCTP here: no network),
//! with 127.0.0.1 listeners standing in for the fronts' TCP ports. Fixtures:
//! crates/ctp-api/tests/common (SKIP when they cannot be had, FAIL under CI=true).
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

#[path = "../../ctp-api/tests/common/mod.rs"]
mod ctp_fixtures;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ctp-preflight");
const PW: &str = "preflight-login-pw-93d1";

fn config(dir: &Path, trader: u16, market: u16) -> std::path::PathBuf {
    let p = dir.join("ctp.yaml");
    std::fs::write(
        &p,
        format!(
            "ctp:\n  profile: login_test\n  environment: sim\n  is_production_mode: false\n  \
             enable_real_api: true\n  enable_terminal_auth: true\n  \
             trader_front: \"tcp://127.0.0.1:{trader}\"\n  market_front: \"tcp://127.0.0.1:{market}\"\n  \
             broker_id: \"9999\"\n  user_id: \"local-user1\"\n  password_env: CTP_SIM_PASSWORD\n  \
             app_id: simnow_client_test\n  auth_code: \"0000000000000000\"\n  flow_path: {}\n  \
             connect_timeout_ms: 10000\n",
            dir.join("flow").display()
        ),
    )
    .unwrap();
    p
}

#[test]
fn check_login_reports_authenticate_and_login_times() {
    let Some(f) = ctp_fixtures::fixtures("check_login_reports_authenticate_and_login_times") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (lt, lm) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let cfg = config(
        dir.path(),
        lt.local_addr().unwrap().port(),
        lm.local_addr().unwrap().port(),
    );
    let api_log = dir.path().join("api.log");
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("--ctp-lib-dir")
        .arg(&f.localctp)
        .arg("--runtime-dir")
        .arg(dir.path())
        .args(["--min-free-mb", "1", "--check-login", "--api-log"])
        .arg(&api_log)
        .env("CTP_SIM_PASSWORD", PW)
        .current_dir(dir.path()) // LocalCTP writes LocalCTP.db here
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout
        .lines()
        .find(|l| l.contains("ctp_login"))
        .unwrap_or_else(|| panic!("no ctp_login item: {stdout}"));
    assert!(
        line.starts_with("[PASS] ctp_login: trader 127.0.0.1:"),
        "{line}"
    );
    assert!(
        line.contains("authenticate ") && line.contains("login "),
        "{line}"
    );
    assert!(line.contains("account query"), "{line}");
    assert!(line.contains("; market 127.0.0.1:"), "{line}");
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.ends_with("overall: PASS\n"), "{stdout}");
    // LocalCTP's own stdout went to the API log, not into the report.
    assert!(
        !stdout.contains("[LocalCTP]") && !stdout.contains("OpenSqlDB"),
        "{stdout}"
    );
    assert!(std::fs::metadata(&api_log).is_ok());
    for text in [
        &*stdout,
        &*stderr,
        &std::fs::read_to_string(&api_log).unwrap_or_default(),
    ] {
        assert!(!text.contains(PW));
    }

    // A wrong library folder fails the check with the file named; --skip-network-check skips it.
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("--ctp-lib-dir")
        .arg(dir.path().join("none"))
        .arg("--runtime-dir")
        .arg(dir.path())
        .args(["--min-free-mb", "1", "--check-login"])
        .env("CTP_SIM_PASSWORD", PW)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("[FAIL] ctp_login: trader: ")
            && stdout.contains("thosttraderapi_se.so is missing"),
        "{stdout}"
    );
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("--ctp-lib-dir")
        .arg(&f.localctp)
        .arg("--runtime-dir")
        .arg(dir.path())
        .args([
            "--min-free-mb",
            "1",
            "--check-login",
            "--skip-network-check",
        ])
        .env("CTP_SIM_PASSWORD", PW)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[SKIP] ctp_login: skipped"), "{stdout}");
}
