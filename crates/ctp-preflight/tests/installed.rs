//! ctp-preflight installed outside a checkout (`<prefix>/bin`, `<prefix>/etc/ctp-ops`): its
//! default --config is the installed `sim/ctp_trading_hours.yaml`.
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_ctp-preflight");

#[test]
fn installed_binary_uses_the_installed_config() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("opt");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(BIN, root.join("bin/ctp-preflight")).unwrap();
    let sim = root.join("etc/ctp-ops/sim");
    std::fs::create_dir_all(&sim).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../configs/sim/ctp_trading_hours.yaml"
        ),
        sim.join("ctp_trading_hours.yaml"),
    )
    .unwrap();
    let cwd = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&cwd).unwrap();
    let out = Command::new(root.join("bin/ctp-preflight"))
        .arg("--skip-network-check")
        .current_dir(&cwd)
        .env_remove("CTP_OPS_CONFIG_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "[PASS] config_exists: {}\n",
            sim.join("ctp_trading_hours.yaml").display()
        )),
        "{stdout}"
    );
    // Without it (and not from a checkout, and none in /etc/ctp-ops) the config is missing: exit 2.
    if std::path::Path::new("/etc/ctp-ops/sim/ctp_trading_hours.yaml").exists() {
        return;
    }
    std::fs::remove_file(sim.join("ctp_trading_hours.yaml")).unwrap();
    let out = Command::new(root.join("bin/ctp-preflight"))
        .arg("--skip-network-check")
        .current_dir(&cwd)
        .env_remove("CTP_OPS_CONFIG_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
