//! multihost: dry run, bad input, usage, the refusal without root, and (as root, as in CI) the
//! netns hosts up with live roles in status/health, the ssh backend through `ip netns exec`
//! prefixes, and `down` leaving no namespace, process or firewall rule.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use test_support::{run, skip};

const BIN: &str = env!("CARGO_BIN_EXE_multihost");

fn inventory(dir: &Path, tag: &str, third: u8, base_port: u16, backend: &str) -> PathBuf {
    let p = std::process::id() % 10000;
    let names: Vec<String> = (1..=3).map(|i| format!("m{p}{tag}{i}")).collect();
    let text = format!(
        "backend: {backend}\nswitch: m{p}{tag}s\nbase_port: {base_port}\nclient_host: {n3}\nrun_dir: {run}\nhosts:\n  - {{name: {n1}, address: 198.19.{third}.1, roles: [redis-primary, redis-sentinel-1, timescale-primary], prefix: [ip, netns, exec, {n1}]}}\n  - {{name: {n2}, address: 198.19.{third}.2, roles: [redis-replica, redis-sentinel-2, timescale-replica], prefix: [ip, netns, exec, {n2}]}}\n  - {{name: {n3}, address: 198.19.{third}.3, roles: [redis-sentinel-3], prefix: [ip, netns, exec, {n3}]}}\n",
        n1 = names[0],
        n2 = names[1],
        n3 = names[2],
        run = dir.join("run").display(),
    );
    let mut perm = std::fs::metadata(dir).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o711);
    std::fs::set_permissions(dir, perm).unwrap();
    let path = dir.join(format!("inventory-{backend}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn mh(dir: &Path, inv: &Path, args: &[&str]) -> test_support::Run {
    let out = dir.join("result.env");
    let report = dir.join("health.json");
    let locks = dir.join("locks");
    let mut a = vec![
        "--inventory",
        inv.to_str().unwrap(),
        "--output-file",
        out.to_str().unwrap(),
        "--health-report",
        report.to_str().unwrap(),
        "--lock-dir",
        locks.to_str().unwrap(),
    ];
    a.extend_from_slice(args);
    run(BIN, &a, None, None)
}

fn root_or_skip(test: &str) -> bool {
    if test_support::is_root() {
        return true;
    }
    assert!(std::env::var("CI").is_err(), "{test}: CI runs as root");
    skip(test, "needs root for network namespaces");
    false
}

fn nothing_left(dir: &Path, inv: &Path) {
    let text = std::fs::read_to_string(inv).unwrap();
    let list = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    let list = String::from_utf8_lossy(&list.stdout).to_string();
    for l in text.lines().filter_map(|l| l.split("name: ").nth(1)) {
        let n = l.split(',').next().unwrap();
        assert!(!list.contains(n), "namespace {n} left: {list}");
    }
    // No server of this run folder is alive.
    let ps = std::process::Command::new("ps")
        .args(["-eo", "args"])
        .output()
        .unwrap();
    let ps = String::from_utf8_lossy(&ps.stdout).to_string();
    assert!(
        !ps.contains(&dir.display().to_string()),
        "a process of {} is left:\n{ps}",
        dir.display()
    );
}

#[test]
fn dry_run_prints_steps_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), "d", 240, 21000, "netns");
    let r = mh(dir.path(), &inv, &["--action", "up"]);
    r.code(0)
        .stdout_is(&format!("{}\n", dir.path().join("result.env").display()))
        .stderr_has("multihost: [dry-run] hosts_up")
        .stderr_has("[dry-run] start_timescale-replica");
    let ev = std::fs::read_to_string(dir.path().join("result.env")).unwrap();
    assert!(ev.contains("MULTI_HOST_DRY_RUN=1\n"), "{ev}");
    assert!(ev.contains("STEP_1_STATUS=simulated_ok\n"), "{ev}");
    assert!(ev.contains("PROVENANCE_TOOL=multihost\n"), "{ev}");
}

#[test]
fn bad_input_and_usage() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "hosts:\n  - {name: h1, address: 192.0.2.5, roles: [redis-primary]}\n",
    )
    .unwrap();
    mh(dir.path(), &bad, &["--action", "up"])
        .code(2)
        .stdout_is("")
        .stderr_has("192.0.2.0/24");
    let inv = inventory(dir.path(), "u", 241, 21100, "netns");
    mh(dir.path(), &inv, &["--action", "sideways"])
        .code(2)
        .stderr_has("invalid value 'sideways'");
    mh(
        dir.path(),
        &inv,
        &["--action", "up", "--primary-env-file", "/nonexistent/p.env"],
    )
    .code(2)
    .stderr_has("primary env file not found: /nonexistent/p.env");
    mh(
        dir.path(),
        &inv,
        &[
            "--action",
            "up",
            "--compose-file",
            "/nonexistent/x.yaml",
            "--execute",
        ],
    )
    .code(2)
    .stderr_has("compose file not found: /nonexistent/x.yaml");
    // The original's defaults of the env files must exist for the compose backend.
    let cf = dir.path().join("c.yaml");
    std::fs::write(&cf, "services: {}\n").unwrap();
    mh(
        dir.path(),
        &inv,
        &["--action", "up", "--compose-file", cf.to_str().unwrap()],
    )
    .code(2)
    .stderr_has("primary env file not found: infra/env/prodlike-primary.env");
}

#[test]
fn refuses_without_root_naming_what_is_needed() {
    if !test_support::is_root() || !test_support::have_command("setpriv") {
        skip(
            "refuses_without_root_naming_what_is_needed",
            "needs root to drop to nobody",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), "n", 242, 21200, "netns");
    let mut perm = std::fs::metadata(dir.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o777);
    std::fs::set_permissions(dir.path(), perm).unwrap();
    let r = run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "--inventory",
            inv.to_str().unwrap(),
            "--action",
            "up",
            "--execute",
        ],
        None,
        Some(dir.path()),
    );
    r.code(2)
        .stdout_is("")
        .stderr_has("needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN");
}

#[test]
fn netns_up_status_health_down() {
    if !root_or_skip("netns_up_status_health_down") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let inv = inventory(dir.path(), "a", 243, 21300, "netns");
    let r = mh(dir.path(), &inv, &["--action", "up", "--execute"]);
    let guard = Down(dir.path().to_path_buf(), inv.clone());
    r.code(0).stderr_has("multihost: up (netns): success");
    let ev = std::fs::read_to_string(dir.path().join("result.env")).unwrap();
    assert!(ev.contains("MULTI_HOST_SUCCESS=true\n"), "{ev}");
    assert!(ev.contains("STEP_1_NAME=hosts_up\n"), "{ev}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("health.json")).unwrap())
            .unwrap();
    assert_eq!(report["healthy"], true, "{report}");
    let p = std::process::id() % 10000;
    assert_eq!(
        report["host_summary"][format!("m{p}a1")]["role"],
        "primary",
        "{report}"
    );
    assert_eq!(
        report["host_summary"][format!("m{p}a2")]["role"],
        "standby",
        "{report}"
    );
    assert_eq!(
        report["host_summary"][format!("m{p}a3")]["role"],
        "witness",
        "{report}"
    );
    // status: the live roles on stdout.
    let r = mh(dir.path(), &inv, &["--action", "status", "--execute"]);
    r.code(0);
    let st: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let rows = st["service_rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["service"] == "redis-replica" && r["role"] == "slave"),
        "{st}"
    );
    assert!(
        rows.iter()
            .any(|r| r["service"] == "timescale-primary" && r["role"] == "primary"),
        "{st}"
    );
    // health after the Redis replica dies: unhealthy, exit 1.
    let pid: u32 = std::fs::read_to_string(dir.path().join("run/redis-replica.pid"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(pid > 0);
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
    test_support::wait_until(Duration::from_secs(5), "replica gone", || {
        !Path::new(&format!("/proc/{pid}/exe")).exists()
    });
    let r = mh(dir.path(), &inv, &["--action", "health", "--execute"]);
    r.code(1).stderr_has("failed at health_check");
    drop(guard);
    nothing_left(dir.path(), &inv);
}

#[test]
fn ssh_backend_uses_the_same_path_with_host_prefixes() {
    if !root_or_skip("ssh_backend_uses_the_same_path_with_host_prefixes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // The hosts exist (made here as namespaces); the ssh backend only reaches them by prefix.
    let netns_inv = inventory(dir.path(), "s", 244, 21400, "netns");
    let inv = failover_core::inventory::Inventory::load(&netns_inv).unwrap();
    failover_core::netns::up(&inv).unwrap();
    let ssh_inv = inventory(dir.path(), "s", 244, 21400, "ssh");
    let r = mh(dir.path(), &ssh_inv, &["--action", "up", "--execute"]);
    let ok = r.code == Some(0);
    let ev = std::fs::read_to_string(dir.path().join("result.env")).unwrap_or_default();
    let down = mh(dir.path(), &ssh_inv, &["--action", "down", "--execute"]);
    failover_core::netns::down(&inv).unwrap();
    assert!(ok, "{}\n{ev}", r.stderr);
    assert!(ev.contains("MULTI_HOST_BACKEND=ssh\n"), "{ev}");
    assert!(
        !ev.contains("hosts_up"),
        "the ssh backend must not create hosts: {ev}"
    );
    down.code(0);
    nothing_left(dir.path(), &netns_inv);
}

struct Down(PathBuf, PathBuf);

impl Drop for Down {
    fn drop(&mut self) {
        let _ = mh(&self.0, &self.1, &["--action", "down", "--execute"]);
    }
}

#[test]
fn called_by_the_originals_name_takes_the_compose_flow() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("bootstrap_prodlike_multi_host");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // From the repository: the original's default compose file exists, its env files must too.
    run(
        link.to_str().unwrap(),
        &["--action", "up"],
        None,
        Some(&root),
    )
    .code(2)
    .stdout_is("")
    .stderr_has("primary env file not found: infra/env/prodlike-primary.env");
}
