//! wal-drill installed outside a checkout (`<prefix>/bin/wal-drill`): its dry run names
//! `/var/lib/ctp-ops/results` as the results folder; `$CTP_OPS_RESULTS_DIR` overrides it; from a
//! checkout (a cwd with `docs/results/`) it stays `docs/results`.
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_wal-drill");

fn dry_run(bin: &Path, cwd: &Path, results_env: Option<&Path>) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(bin);
    cmd.current_dir(cwd).env_remove("CTP_OPS_RESULTS_DIR");
    if let Some(d) = results_env {
        cmd.env("CTP_OPS_RESULTS_DIR", d);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn installed_dry_run_uses_the_installed_results_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("usr/local/bin/wal-drill");
    std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
    std::fs::copy(BIN, &bin).unwrap();
    let cwd = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&cwd).unwrap();

    let (code, out, err) = dry_run(&bin, &cwd, None);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("would write /var/lib/ctp-ops/results/wal_recovery_result.env"),
        "{err}"
    );

    let custom = tmp.path().join("results");
    let (code, _, err) = dry_run(&bin, &cwd, Some(&custom));
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "would write {}/wal_recovery_result.env",
            custom.display()
        )),
        "{err}"
    );

    // Run from a checkout-like folder, the installed binary keeps docs/results.
    std::fs::create_dir_all(cwd.join("docs/results")).unwrap();
    let (code, _, err) = dry_run(&bin, &cwd, None);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains("would write docs/results/wal_recovery_result.env"),
        "{err}"
    );
}
