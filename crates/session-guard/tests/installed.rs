//! session-guard installed outside a checkout (`<prefix>/bin`, `<prefix>/etc/ctp-ops`): it reads
//! the installed calendar, and `$CTP_OPS_CONFIG_DIR` overrides the search.
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_session-guard");
const CAL: &str = include_str!("../../../configs/calendar/cn-futures-2026.yaml");

/// `<tmp>/bin/session-guard` and `<tmp>/etc/ctp-ops/calendar/cn-futures-2026.yaml`, the
/// calendar with one more holiday named `holiday`, on 2026-03-10 (a trading day in the shipped one).
fn install(root: &Path, holiday: &str) {
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(BIN, root.join("bin/session-guard")).unwrap();
    let cal = CAL.replacen(
        "holidays:\n",
        &format!(
            "holidays:\n  - {{ from: \"2026-03-10\", to: \"2026-03-10\", name: \"{holiday}\" }}\n"
        ),
        1,
    );
    assert_ne!(cal, CAL, "the calendar has a holidays: list");
    let dir = root.join("etc/ctp-ops/calendar");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cn-futures-2026.yaml"), cal).unwrap();
}

fn guard(bin: &Path, cwd: &Path, config_dir: Option<&Path>) -> (Option<i32>, String, String) {
    let mut cmd = Command::new(bin);
    cmd.args(["--at", "2026-03-10T10:00:00+08:00"])
        .current_dir(cwd)
        .env_remove("CTP_OPS_CONFIG_DIR");
    if let Some(d) = config_dir {
        cmd.env("CTP_OPS_CONFIG_DIR", d);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn installed_binary_reads_the_installed_calendar() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("opt");
    install(&root, "Installed Test Day");
    let cwd = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&cwd).unwrap();
    let (code, out, err) = guard(&root.join("bin/session-guard"), &cwd, None);
    assert_eq!(code, Some(0), "stdout {out}\nstderr {err}");
    assert_eq!(err, "");
    assert!(
        out.contains("(2026-03-10: holiday: Installed Test Day;"),
        "not the installed calendar: {out}"
    );
    // The same binary from the build folder (not installed) uses the built-in calendar.
    let (code, out, _) = guard(Path::new(BIN), &cwd, None);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("inside the day session 2026-03-10"), "{out}");
}

#[test]
fn config_dir_env_overrides_the_search() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("opt");
    install(&root, "Installed Test Day");
    let other = tmp.path().join("other");
    install(&other, "Override Day");
    let (code, out, err) = guard(
        &root.join("bin/session-guard"),
        tmp.path(),
        Some(&other.join("etc/ctp-ops")),
    );
    assert_eq!(code, Some(0), "stdout {out}\nstderr {err}");
    assert!(out.contains("holiday: Override Day;"), "{out}");
    // A broken calendar there is reported with its installed path.
    std::fs::write(
        other.join("etc/ctp-ops/calendar/cn-futures-2026.yaml"),
        "x: 1\n",
    )
    .unwrap();
    let (code, _, err) = guard(
        &root.join("bin/session-guard"),
        tmp.path(),
        Some(&other.join("etc/ctp-ops")),
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains(&format!(
            "{}:1:",
            other
                .join("etc/ctp-ops/calendar/cn-futures-2026.yaml")
                .display()
        )),
        "{err}"
    );
}
