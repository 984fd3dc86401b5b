//! The compose backend for real: a private `dockerd` (compose-core) with the stack's local images,
//! `prodlike --backend compose --execute --action up` over the corrected compose file, then
//! `prodlike-health` probing every service on its published port (the same probes as the native
//! stack), `ps` rows, a killed replica named unhealthy, and `down --purge`.
//!
//! Needs root, dockerd, a compose CLI and debootstrap (scripts/setup.sh installs them). Images are
//! cached in `runtime/compose-cache` (or `$CTP_OPS_COMPOSE_CACHE`), shared with compose-core's test.
//! Skips with a printed reason where no engine can be started, except with `CI=true`.
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use compose_core::{ImageCache, PrivateEngine, PrivateEngineOptions, STACK_IMAGES};
use serde_json::Value;
use test_support::build_siblings;

const BIN: &str = env!("CARGO_BIN_EXE_prodlike-health");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn missing() -> Option<String> {
    if !test_support::is_root() {
        return Some("needs root to start dockerd".into());
    }
    for c in ["dockerd", "docker", "debootstrap"] {
        if !test_support::have_command(c) {
            return Some(format!("{c} not found (scripts/setup.sh installs it)"));
        }
    }
    if !test_support::have_command("docker-compose")
        && !Command::new("docker")
            .args(["compose", "version"])
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return Some("neither docker-compose nor the compose plugin found".into());
    }
    None
}

/// Runs a tool with `DOCKER_HOST` pointing at the private engine.
fn tool(bin: &Path, host: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(bin)
        .args(args)
        .env("DOCKER_HOST", host)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compose_backend_up_health_down() {
    if let Some(reason) = missing() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "compose_backend_up_health_down: {reason} (CI=true: this test must run)"
        );
        test_support::skip("compose_backend_up_health_down", &reason);
        return;
    }
    let prodlike = build_siblings(BIN, &["prodlike"]).join("prodlike");
    let root = workspace();
    let cache = compose_core::images::default_cache_dir(&root);
    // One engine per data root at a time (compose-core's tests take the same lock).
    let lock = compose_core::images::CacheLock::acquire(&cache).unwrap();
    let run = tempfile::Builder::new()
        .prefix("ctpd")
        .tempdir_in("/tmp")
        .unwrap();
    let mut opts = PrivateEngineOptions::new(run.path(), compose_core::images::data_root(&cache));
    opts.ready_timeout = Duration::from_secs(60);
    let daemon = PrivateEngine::start(opts).expect("private dockerd");
    let host = daemon.engine().docker_host().unwrap().to_string();
    let images =
        ImageCache::new(&cache, root.join("infra/docker")).ensure(daemon.engine(), STACK_IMAGES);
    let tmp = tempfile::tempdir().unwrap();
    let env_file = tmp.path().join("stack.env");
    let pw = stack_core::secret::generate_password();
    let pw2 = stack_core::secret::generate_password();
    // Host ports picked by the kernel (bound then released): the private engine's own allocator
    // does not know about other engines on the machine and can hand out a port one of them holds.
    let mut env_text = format!("REDIS_PASSWORD={pw}\nTIMESCALE_PASSWORD={pw2}\n");
    let listeners: Vec<std::net::TcpListener> = (0..13)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    for (var, l) in [
        "REDIS_PRIMARY_PORT",
        "REDIS_REPLICA_PORT",
        "REDIS_SENTINEL_1_PORT",
        "REDIS_SENTINEL_2_PORT",
        "REDIS_SENTINEL_3_PORT",
        "TIMESCALE_PRIMARY_PORT",
        "TIMESCALE_REPLICA_PORT",
        "REDIS_EXPORTER_PORT",
        "POSTGRES_EXPORTER_PRIMARY_PORT",
        "POSTGRES_EXPORTER_REPLICA_PORT",
        "PROMETHEUS_PORT",
        "ALERTMANAGER_PORT",
        "ALERT_RECEIVER_PORT",
    ]
    .iter()
    .zip(&listeners)
    {
        env_text.push_str(&format!("{var}={}\n", l.local_addr().unwrap().port()));
    }
    drop(listeners);
    stack_core::secret::write_secret(&env_file, &env_text).unwrap();
    let compose_file = root.join("infra/docker-compose.prodlike.yaml");
    let (cf, ef) = (compose_file.to_str().unwrap(), env_file.to_str().unwrap());
    let project = format!("ctp-pl-{}", std::process::id());
    let lockf = tmp.path().join("l.lock");
    let common = [
        "--backend",
        "compose",
        "--compose-file",
        cf,
        "--env-file",
        ef,
        "--project-name",
        &project,
    ];
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        images.as_ref().expect("images");
        let hr = tmp.path().join("h.json");
        let mut up_args = vec![
            "--execute",
            "--action",
            "up",
            "--output-file",
            "-",
            "--lock-file",
            lockf.to_str().unwrap(),
            "--health-report",
            hr.to_str().unwrap(),
            "--wait-timeout",
            "300",
        ];
        up_args.extend(common);
        let (code, out, err) = tool(&prodlike, &host, &up_args);
        assert_eq!(code, Some(0), "{out}\n{err}");
        assert!(out.contains("STEP_1_NAME=compose_up\n"), "{out}");
        assert!(out.contains("PRODLIKE_BACKEND=compose\n"), "{out}");
        assert!(!out.contains(&pw) && !err.contains(&pw), "password leaked");
        // The same probes as the native stack, on the published ports.
        let mut h_args = vec!["--report-json", "-", "--wait-timeout", "30s"];
        h_args.extend(
            common
                .iter()
                .filter(|a| **a != "--backend" && **a != "compose"),
        );
        let (code, out, err) = tool(Path::new(BIN), &host, &h_args);
        assert_eq!(code, Some(0), "{out}\n{err}");
        let r: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(r["classification"], "healthy", "{r:#}");
        let replica = &r["service_states"]["redis-replica"];
        assert!(
            replica["answer"]
                .as_str()
                .unwrap()
                .contains("master_link_status:up"),
            "{replica}"
        );
        let standby = &r["service_states"]["timescale-replica"];
        assert!(
            standby["answer"]
                .as_str()
                .unwrap()
                .contains("pg_is_in_recovery() = t"),
            "{standby}"
        );
        assert!(
            r["service_states"]["redis-sentinel-2"]["answer"]
                .as_str()
                .unwrap()
                .contains("CKQUORUM OK")
        );
        // Prometheus, where the compose file has it: every target up.
        if let Some(a) = r["service_states"]["prometheus"]["answer"].as_str() {
            assert!(a.contains("targets up"), "{a}");
        }
        // ps rows.
        let ps_env = tmp.path().join("ps.env");
        let mut ps_args = vec![
            "--execute",
            "--action",
            "ps",
            "--output-file",
            ps_env.to_str().unwrap(),
        ];
        ps_args.extend(common);
        let (code, out, err) = tool(&prodlike, &host, &ps_args);
        assert_eq!(code, Some(0), "{err}");
        assert!(
            out.lines()
                .any(|l| l.contains("\"Service\":\"redis-primary\"")
                    && l.contains("\"State\":\"running\"")),
            "{out}"
        );
        // A killed replica is unhealthy, with the probe's answer.
        let st = Command::new("docker")
            .env("DOCKER_HOST", &host)
            .args(["kill", &format!("{project}_redis-replica_1")])
            .output()
            .unwrap();
        if !st.status.success() {
            let st2 = Command::new("docker")
                .env("DOCKER_HOST", &host)
                .args(["kill", &format!("{project}-redis-replica-1")])
                .output()
                .unwrap();
            assert!(
                st2.status.success(),
                "{}",
                String::from_utf8_lossy(&st2.stderr)
            );
        }
        let (code, out, _) = tool(
            Path::new(BIN),
            &host,
            &h_args
                .iter()
                .map(|s| if *s == "30s" { "0" } else { s })
                .collect::<Vec<_>>(),
        );
        assert_eq!(code, Some(1), "{out}");
        let r: Value = serde_json::from_str(&out).unwrap();
        assert!(
            r["unhealthy_services"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["service"] == "redis-replica"),
            "{r:#}"
        );
    }));
    let mut down_args = vec![
        "--execute",
        "--action",
        "down",
        "--purge",
        "--output-file",
        "-",
        "--lock-file",
        lockf.to_str().unwrap(),
    ];
    down_args.extend(common);
    let (code, out, err) = tool(&prodlike, &host, &down_args);
    let stop = daemon.stop();
    drop(lock);
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("_NAME=compose_down\n"), "{out}");
    assert!(stop.unwrap().ok);
}
