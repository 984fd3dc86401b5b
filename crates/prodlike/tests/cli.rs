//! prodlike: dry runs, the compose backend's failure at compose_up, usage errors, and (root, with
//! the Debian packages) down after a crash and down --purge.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::time::Duration;

use test_support::run;

const BIN: &str = env!("CARGO_BIN_EXE_prodlike");

#[test]
fn dry_run_prints_and_records_simulated_steps() {
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    let out = tmp.path().join("r.env");
    let r = run(
        BIN,
        &[
            "--action",
            "up",
            "--run-dir",
            rd.to_str().unwrap(),
            "--output-file",
            out.to_str().unwrap(),
        ],
        None,
        None,
    );
    r.code(0)
        .stdout_has("[dry-run] /usr/bin/redis-server")
        .stdout_has(&format!("{}\n", out.display()));
    let env = std::fs::read_to_string(&out).unwrap();
    assert!(env.contains("PRODLIKE_DRY_RUN=1\n"), "{env}");
    assert!(env.contains("PRODLIKE_RESULT=dry_run\n"), "{env}");
    assert!(env.contains("STEP_1_STATUS=simulated_ok\n"), "{env}");
    assert!(env.contains("PROVENANCE_DRY_RUN=1\n"), "{env}");
    assert!(!rd.exists(), "a dry run created the run folder");
}

#[test]
fn compose_backend_fails_at_compose_up() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("compose.yaml");
    std::fs::write(&f, "services: {}\n").unwrap();
    let r = run(
        BIN,
        &[
            "--execute",
            "--docker-bin",
            "/bin/false",
            "--compose-file",
            f.to_str().unwrap(),
            "--output-file",
            "-",
        ],
        None,
        None,
    );
    r.code(2)
        .stdout_has("PRODLIKE_FAILED_STEP=compose_up\n")
        .stdout_has("PRODLIKE_SUCCESS=false\n")
        .stdout_has("PRODLIKE_BACKEND=compose\n")
        .stdout_has("STEP_1_COMMAND=/bin/false compose -f");
    // A missing compose file is refused before anything runs.
    run(
        BIN,
        &["--execute", "--compose-file", "/nonexistent.yaml"],
        None,
        None,
    )
    .code(2)
    .stderr_has("compose file not found: /nonexistent.yaml");
}

#[test]
fn usage_errors() {
    run(BIN, &["--action", "sideways"], None, None).code(2);
    run(BIN, &["--listen", "localhost"], None, None)
        .code(2)
        .stderr_has("--listen");
    // --dry-run wins over --execute (the shared drill flags).
    let tmp = tempfile::tempdir().unwrap();
    let rd = tmp.path().join("run");
    run(
        BIN,
        &[
            "--dry-run",
            "--execute",
            "--run-dir",
            rd.to_str().unwrap(),
            "--output-file",
            "-",
        ],
        None,
        None,
    )
    .code(0)
    .stdout_has("PRODLIKE_DRY_RUN=1\n");
    run(BIN, &["--wait-timeout", "soon"], None, None)
        .code(2)
        .stderr_has("--wait-timeout");
    run(BIN, &["--drill-id", "a/b"], None, None)
        .code(2)
        .stderr_has("drill id");
    run(BIN, &["--help"], None, None)
        .code(0)
        .stdout_has("EXIT STATUS");
}

#[test]
fn down_after_a_crash_and_purge() {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let missing = stack_core::stack::missing_programs();
    if !test_support::is_root() || !missing.is_empty() {
        let reason = format!("needs root and {missing:?}");
        assert!(!ci, "{reason}");
        test_support::skip("down_after_a_crash_and_purge", &reason);
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let rd = tmp.path().join("run");
    let rds = rd.to_str().unwrap();
    let lock = tmp.path().join("prodlike.lock");
    let base = stack_core::stack::free_test_base_port(std::process::id() + 7)
        .expect("a free base port")
        .to_string();
    let up = run(
        BIN,
        &[
            "--execute",
            "--run-dir",
            rds,
            "--base-port",
            &base,
            "--output-file",
            "-",
            "--health-report",
            tmp.path().join("h.json").to_str().unwrap(),
            "--wait-timeout",
            "90",
            "--lock-file",
            lock.to_str().unwrap(),
        ],
        None,
        None,
    );
    let guard = Guard(rd.clone());
    up.code(0).stdout_has("PRODLIKE_SUCCESS=true");
    // Crash the Redis primary and the PostgreSQL primary (postmaster only, as a crash would).
    for svc in ["redis-primary", "timescale-primary"] {
        let t = std::fs::read_to_string(rd.join(format!("{svc}.pid"))).unwrap();
        let pid: i32 = t
            .lines()
            .find_map(|l| l.strip_prefix("pid="))
            .unwrap()
            .parse()
            .unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
    }
    let down = run(
        BIN,
        &[
            "--execute",
            "--action",
            "down",
            "--purge",
            "--run-dir",
            rds,
            "--output-file",
            "-",
            "--lock-file",
            lock.to_str().unwrap(),
        ],
        None,
        None,
    );
    down.code(0)
        .stdout_has("stale pid file removed")
        .stdout_has("PRODLIKE_PROCESSES_LEFT=0\n")
        .stdout_has("PRODLIKE_PORTS_STILL_BOUND=\n")
        .stdout_has("_NAME=purge\n");
    let left: Vec<_> = std::fs::read_dir(&rd)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "purge left {left:?}");
    for off in [1u16, 2, 11, 21, 22, 90, 93] {
        let a = format!("127.0.0.1:{}", base.parse::<u16>().unwrap() + off);
        assert!(
            std::net::TcpStream::connect_timeout(&a.parse().unwrap(), Duration::from_millis(200))
                .is_err(),
            "{a}"
        );
    }
    drop(guard);
}

struct Guard(std::path::PathBuf);
impl Drop for Guard {
    fn drop(&mut self) {
        let _ = std::process::Command::new(BIN)
            .args([
                "--execute",
                "--action",
                "down",
                "--output-file",
                "-",
                "--run-dir",
            ])
            .arg(&self.0)
            .arg("--lock-file")
            .arg(self.0.with_file_name("prodlike.lock"))
            .output();
    }
}
