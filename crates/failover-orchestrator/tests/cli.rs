//! failover-orchestrator: every mode on netns hosts (as root, as in CI) with failover-verify passing
//! the evidence; a partition without fencing losing writes and failing; a failed promotion
//! compensated; the dry run, the `*_cmd` form, bad input and usage.
#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use test_support::{build_siblings, fixture, run, skip};

const BIN: &str = env!("CARGO_BIN_EXE_failover-orchestrator");

fn fx(name: &str) -> String {
    fixture(env!("CARGO_MANIFEST_DIR"), name)
}

fn env_of(path: &Path) -> HashMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Three namespace hosts with the stack up; `down` when dropped.
struct Hosts {
    dir: tempfile::TempDir,
    inv: PathBuf,
    env_config: PathBuf,
    bin_dir: PathBuf,
}

impl Hosts {
    fn up(tag: &str, third: u8, base_port: u16) -> Hosts {
        let bin_dir = build_siblings(BIN, &["multihost", "failover-verify"]);
        let dir = tempfile::tempdir().unwrap();
        let mut perm = std::fs::metadata(dir.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o711);
        std::fs::set_permissions(dir.path(), perm).unwrap();
        let p = std::process::id() % 10000;
        let n: Vec<String> = (1..=3).map(|i| format!("o{p}{tag}{i}")).collect();
        let inv = dir.path().join("inventory.yaml");
        std::fs::write(
            &inv,
            format!(
                "switch: o{p}{tag}s\nbase_port: {base_port}\nclient_host: {n3}\nrun_dir: {run}\nhosts:\n  - {{name: {n1}, address: 198.19.{third}.1, roles: [redis-primary, redis-sentinel-1, timescale-primary]}}\n  - {{name: {n2}, address: 198.19.{third}.2, roles: [redis-replica, redis-sentinel-2, timescale-replica]}}\n  - {{name: {n3}, address: 198.19.{third}.3, roles: [redis-sentinel-3]}}\n",
                n1 = n[0],
                n2 = n[1],
                n3 = n[2],
                run = dir.path().join("run").display()
            ),
        )
        .unwrap();
        let env_config = dir.path().join("env.yaml");
        std::fs::write(
            &env_config,
            format!("environment: test-{tag}\ninventory: {}\n", inv.display()),
        )
        .unwrap();
        let h = Hosts {
            dir,
            inv,
            env_config,
            bin_dir,
        };
        let r = h.multihost(&["--action", "up", "--execute"]);
        assert_eq!(r.code, Some(0), "multihost up failed:\n{}", r.stderr);
        h
    }

    fn multihost(&self, args: &[&str]) -> test_support::Run {
        let out = self.dir.path().join("mh.env");
        let rep = self.dir.path().join("mh.json");
        let locks = self.dir.path().join("locks");
        let mut a = vec![
            "--inventory",
            self.inv.to_str().unwrap(),
            "--output-file",
            out.to_str().unwrap(),
            "--health-report",
            rep.to_str().unwrap(),
            "--lock-dir",
            locks.to_str().unwrap(),
        ];
        a.extend_from_slice(args);
        run(
            self.bin_dir.join("multihost").to_str().unwrap(),
            &a,
            None,
            None,
        )
    }

    fn evidence(&self) -> PathBuf {
        self.dir.path().join("failover_result.env")
    }

    fn drill(&self, args: &[&str]) -> test_support::Run {
        let out = self.evidence();
        let locks = self.dir.path().join("locks/multihost.lock");
        let mut a = vec![
            "--env-config",
            self.env_config.to_str().unwrap(),
            "--output-file",
            out.to_str().unwrap(),
            "--lock-file",
            locks.to_str().unwrap(),
            "--execute",
        ];
        a.extend_from_slice(args);
        run(BIN, &a, None, None)
    }

    fn verify(&self) -> test_support::Run {
        let out = self.evidence();
        run(
            self.bin_dir.join("failover-verify").to_str().unwrap(),
            &[
                "--evidence-file",
                out.to_str().unwrap(),
                "--max-failover-seconds",
                "300",
                "--max-data-lag-events",
                "0",
            ],
            None,
            None,
        )
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        let r = self.multihost(&["--action", "down", "--execute"]);
        assert!(
            r.code == Some(0) || std::thread::panicking(),
            "down failed: {}",
            r.stderr
        );
    }
}

fn root_or_skip(test: &str) -> bool {
    if test_support::is_root() {
        return true;
    }
    assert!(std::env::var("CI").is_err(), "{test}: CI runs as root");
    skip(test, "needs root for network namespaces");
    false
}

fn assert_real_failover(h: &Hosts, mode: &str) {
    let e = env_of(&h.evidence());
    assert_eq!(e["FAILOVER_SUCCESS"], "true", "{e:?}");
    assert_eq!(e["FAILOVER_MODE"], mode);
    assert_eq!(e["FAILOVER_DRY_RUN"], "0");
    // A real promotion: the new primaries' roles as the servers say them.
    assert_eq!(e["REDIS_NEW_PRIMARY_ROLE"], "master", "{e:?}");
    assert_eq!(e["PG_NEW_PRIMARY_ROLE"], "primary", "{e:?}");
    assert_ne!(e["REDIS_NEW_PRIMARY"], e["REDIS_OLD_PRIMARY"]);
    // Lag counted by sequence; the outage measured.
    assert_eq!(e["DATA_SYNC_LAG_SOURCE"], "sequence");
    assert_eq!(e["DATA_SYNC_LAG_EVENTS"], "0", "{e:?}");
    assert_eq!(e["SPLIT_BRAIN_WRITES"], "0", "{e:?}");
    assert_eq!(e["REDIS_LOST_REPLICATED"], "0");
    assert_eq!(e["PG_LOST_REPLICATED"], "0");
    assert!(e["REDIS_ACKED"].parse::<u64>().unwrap() > 0);
    assert_eq!(e["FAILOVER_DURATION_SOURCE"], "client_outage");
    let d: f64 = e["FAILOVER_DURATION_SECONDS"].parse().unwrap();
    assert!(d > 0.0 && d < 60.0, "{d}");
    h.verify()
        .code(0)
        .stdout_has("verification passed: ")
        .stderr_is("");
}

#[test]
fn planned_switchover_on_netns_hosts() {
    if !root_or_skip("planned_switchover_on_netns_hosts") {
        return;
    }
    let h = Hosts::up("p", 230, 22000);
    let r = h.drill(&["--mode", "planned"]);
    r.code(0)
        .stdout_is(&format!("{}\n", h.evidence().display()))
        .stderr_has("planned: success");
    assert_real_failover(&h, "planned");
    // host_summary follows the live roles: h2 is the primary now.
    let st = h.multihost(&["--action", "status", "--execute"]);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    let p = std::process::id() % 10000;
    assert_eq!(
        v["host_summary"][format!("o{p}p2")]["role"],
        "primary",
        "{v}"
    );
}

#[test]
fn unplanned_host_crash_on_netns_hosts() {
    if !root_or_skip("unplanned_host_crash_on_netns_hosts") {
        return;
    }
    let h = Hosts::up("u", 231, 22100);
    let r = h.drill(&["--mode", "unplanned"]);
    r.code(0)
        .stderr_has("unplanned: success")
        .stderr_has("crashed: SIGKILL");
    assert_real_failover(&h, "unplanned");
}

#[test]
fn partition_with_fencing_loses_nothing() {
    if !root_or_skip("partition_with_fencing_loses_nothing") {
        return;
    }
    let h = Hosts::up("t", 232, 22200);
    let r = h.drill(&["--mode", "partition"]);
    r.code(0)
        .stderr_has("partition: success")
        .stderr_has("refused writes (NOREPLICAS)");
    assert_real_failover(&h, "partition");
    let e = env_of(&h.evidence());
    assert_eq!(e["FAILOVER_ACK_MODE"], "replicated");
    assert_eq!(e["FAILOVER_FENCING"], "true");
}

#[test]
fn partition_without_fencing_reports_its_loss_and_fails() {
    if !root_or_skip("partition_without_fencing_reports_its_loss_and_fails") {
        return;
    }
    let h = Hosts::up("f", 233, 22300);
    let r = h.drill(&["--mode", "partition", "--no-fencing", "--ack-mode", "local"]);
    // The isolated old primaries kept accepting writes: verify fails, and the loss is counted.
    r.code(1).stderr_has("still accepts writes");
    let e = env_of(&h.evidence());
    assert_eq!(e["FAILOVER_SUCCESS"], "false");
    assert_eq!(e["FAILOVER_FAILED_STEP"], "verify");
    assert_eq!(e["FAILOVER_FENCING"], "false");
    let split: u64 = e["SPLIT_BRAIN_WRITES"].parse().unwrap();
    assert!(split > 0, "{e:?}");
    h.verify().code(1).stderr_has("SPLIT_BRAIN_WRITES=");
}

#[test]
fn failed_promotion_is_compensated() {
    if !root_or_skip("failed_promotion_is_compensated") {
        return;
    }
    let h = Hosts::up("c", 234, 22400);
    let r = h.drill(&[
        "--mode",
        "planned",
        "--inject-promote-failure",
        "--step-timeout",
        "8",
    ]);
    r.code(1).stderr_has("compensated");
    let e = env_of(&h.evidence());
    assert_eq!(e["FAILOVER_SUCCESS"], "false");
    assert_eq!(e["FAILOVER_COMPENSATED"], "true", "{e:?}");
    assert_eq!(e["FAILOVER_FAILED_STEP"], "promote_standby");
    assert_eq!(e["FAILOVER_RESULT"], "compensated");
    assert!(
        e["FAILOVER_FAILURE_REASON"].contains("accepts writes"),
        "{e:?}"
    );
    // The old primaries serve again, as the servers say.
    let st = h.multihost(&["--action", "status", "--execute"]);
    let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
    let rows = v["service_rows"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["service"] == "redis-primary" && r["role"] == "master"),
        "{v}"
    );
    assert!(
        rows.iter()
            .any(|r| r["service"] == "timescale-primary" && r["role"] == "primary"),
        "{v}"
    );
    h.verify().code(1).stderr_has("FAILOVER_COMPENSATED=true");
}

#[test]
fn dry_run_records_simulated_steps_that_verify_rejects() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.env");
    let cfg = fx("commands.yaml");
    let r = run(
        BIN,
        &["--env-config", &cfg, "--output-file", out.to_str().unwrap()],
        None,
        None,
    );
    r.code(0)
        .stdout_is(&format!("{}\n", out.display()))
        .stderr_has("[dry-run] true")
        .stderr_has("data_sync_lag_events: 0 is ignored");
    let e = env_of(&out);
    assert_eq!(e["FAILOVER_DRY_RUN"], "1");
    assert_eq!(e["STEP_5_STATUS"], "simulated_ok");
    assert_eq!(e["FAILOVER_DURATION_SECONDS"], "unmeasured");
}

#[test]
fn command_steps_run_and_are_timed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.env");
    let locks = dir.path().join("locks/multihost.lock");
    let base = [
        "--output-file",
        out.to_str().unwrap(),
        "--lock-file",
        locks.to_str().unwrap(),
        "--execute",
        "--session-at",
        "2026-03-14T12:00:00+08:00",
    ];
    let cfg = fx("commands.yaml");
    let mut a = vec!["--env-config", cfg.as_str()];
    a.extend_from_slice(&base);
    run(BIN, &a, None, None)
        .code(0)
        .stderr_has("nothing measured the client-visible outage");
    let e = env_of(&out);
    assert_eq!(e["FAILOVER_SUCCESS"], "true");
    assert_eq!(e["FAILOVER_MODE"], "commands");
    assert_eq!(e["FAILOVER_DURATION_SOURCE"], "step_sum");
    assert_eq!(e["DATA_SYNC_LAG_EVENTS"], "unmeasured");
    assert_eq!(e["STEP_4_STATUS"], "ok");
    let cfg = fx("commands_failing.yaml");
    let mut a = vec!["--env-config", cfg.as_str()];
    a.extend_from_slice(&base);
    run(BIN, &a, None, None)
        .code(1)
        .stderr_has("step promote_standby: exit 3");
    let e = env_of(&out);
    assert_eq!(e["FAILOVER_FAILED_STEP"], "promote_standby");
    assert_eq!(e["FAILOVER_TOTAL_STEPS"], "4");
    assert_eq!(e["FAILOVER_SESSION_GUARD"], "outside_session");
    // Inside a trading session the user's commands (hosts this tool cannot see) are refused.
    let cfg = fx("commands.yaml");
    run(
        BIN,
        &[
            "--env-config",
            &cfg,
            "--output-file",
            out.to_str().unwrap(),
            "--lock-file",
            locks.to_str().unwrap(),
            "--execute",
            "--session-at",
            "2026-03-13T10:00:00+08:00",
        ],
        None,
        None,
    )
    .code(2)
    .stderr_has("inside a trading session");
}

#[test]
fn bad_input_and_usage() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f.env");
    let locks = dir.path().join("locks/multihost.lock");
    let base = [
        "--output-file",
        out.to_str().unwrap(),
        "--lock-file",
        locks.to_str().unwrap(),
        "--execute",
    ];
    let cfg = fx("commands_partial.yaml");
    let mut a = vec!["--env-config", cfg.as_str()];
    a.extend_from_slice(&base);
    run(BIN, &a, None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("backup_sync_check_cmd");
    let cfg = fx("unknown_key.yaml");
    run(BIN, &["--env-config", &cfg], None, None)
        .code(2)
        .stderr_has("promote_standby_command");
    run(BIN, &["--env-config", "/nonexistent/e.yaml"], None, None)
        .code(2)
        .stderr_has("/nonexistent/e.yaml");
    run(BIN, &[], None, None)
        .code(2)
        .stderr_has("--env-config <PATH>");
    run(
        BIN,
        &["--env-config", "x", "--mode", "sideways"],
        None,
        None,
    )
    .code(2)
    .stderr_has("invalid value 'sideways'");
}
