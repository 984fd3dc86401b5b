//! The corrected prod-like compose file, for real: a private `dockerd`, local images (cached
//! between runs in `runtime/compose-cache`, or `$CTP_OPS_COMPOSE_CACHE`), `up` until every service
//! is healthy, probes through the published ports with `redis-cli` and `psql`, a killed replica
//! seen unhealthy, `down --purge`, the engine stopped, and nothing left: no container, process,
//! mount, listener, firewall rule or sysctl change.
//!
//! Needs root, `dockerd`, a compose CLI, `debootstrap`, `redis-cli`, `psql` (scripts/setup.sh
//! installs them). Skips with a printed reason where they are missing, except with `CI=true`,
//! where it fails.
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use compose_core::engine::{mounts_under, processes_mentioning};
use compose_core::{
    CacheLock, ComposeCli, Engine, ImageCache, PrivateEngine, PrivateEngineOptions, Project,
    STACK_IMAGES,
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "compose-stack: {msg}");
}

/// What the test needs that is missing, if anything.
fn missing() -> Option<String> {
    if !test_support::is_root() {
        return Some("needs root to start dockerd".to_string());
    }
    for c in [
        "dockerd",
        "debootstrap",
        "redis-cli",
        "psql",
        "iptables-save",
    ] {
        if !test_support::have_command(c) {
            return Some(format!("{c} not found (scripts/setup.sh installs it)"));
        }
    }
    if !test_support::have_command("docker") {
        return Some("docker CLI not found (scripts/setup.sh installs docker.io)".to_string());
    }
    if !test_support::have_command("docker-compose")
        && !Command::new("docker")
            .args(["compose", "version"])
            .output()
            .is_ok_and(|o| o.status.success())
    {
        return Some("neither docker-compose nor the compose plugin found".to_string());
    }
    None
}

/// Skip (printed) or, under CI, fail.
fn require(name: &str) -> bool {
    match missing() {
        None => true,
        Some(reason) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{name}: {reason} (CI=true: this test must run)"
            );
            test_support::skip(name, &reason);
            false
        }
    }
}

/// The host state the engine must leave as found: firewall rules (counters masked: bridged
/// traffic counts on FORWARD's policy), `ip_forward` and `docker0`. Private engines of other
/// checkouts may run meanwhile: the project's own bridge and `dockerd`'s files are checked apart.
fn host_state() -> String {
    let mut s = String::new();
    for (prog, args) in [
        ("iptables-save", &[][..]),
        ("ip6tables-save", &[][..]),
        ("nft", &["list", "ruleset"][..]),
    ] {
        if !test_support::have_command(prog) {
            continue;
        }
        let out = Command::new(prog).args(args).output().expect("run");
        s.push_str(&format!("== {prog}\n"));
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if line.starts_with('#') {
                continue;
            }
            s.push_str(&mask_counters(line));
            s.push('\n');
        }
    }
    for f in [
        "/proc/sys/net/ipv4/ip_forward",
        "/proc/sys/net/ipv6/conf/all/forwarding",
    ] {
        s.push_str(&format!(
            "{f} {}",
            fs::read_to_string(f).unwrap_or_default()
        ));
    }
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip");
    for l in String::from_utf8_lossy(&links.stdout).lines() {
        // Only docker0 (never made with --bridge=none): other engines and drills on this
        // machine add their own bridges and veths; the project's bridge is checked by name.
        if let Some(name) = l.split(':').nth(1).map(str::trim)
            && name.starts_with("docker")
        {
            s.push_str(&format!("link {name}\n"));
        }
    }
    s
}

fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn mask_counters(line: &str) -> String {
    // iptables-save: ":FORWARD ACCEPT [12:3456]"; nft: "counter packets 12 bytes 3456".
    let mut out = Vec::new();
    let mut words = line.split(' ').peekable();
    while let Some(w) = words.next() {
        if w.starts_with('[') && w.ends_with(']') && w.contains(':') {
            out.push("[n:n]".to_string());
        } else if w == "packets" || w == "bytes" {
            out.push(w.to_string());
            if words.next().is_some() {
                out.push("n".to_string());
            }
        } else {
            out.push(w.to_string());
        }
    }
    out.join(" ")
}

fn redis_cli(addr: SocketAddr, password: Option<&str>, args: &[&str]) -> String {
    let mut c = Command::new("redis-cli");
    c.args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(args)
        .env_remove("REDISCLI_AUTH");
    if let Some(p) = password {
        c.env("REDISCLI_AUTH", p);
    }
    let out = c.output().expect("redis-cli");
    String::from_utf8_lossy(&out.stdout).replace('\r', "")
}

fn psql(addr: SocketAddr, password: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-h",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-U",
            "quant_hft",
            "-d",
            "quant_hft",
            "-tAc",
            sql,
        ])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("psql");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `GET path` on `addr`: the body (de-chunked), or empty on any failure.
fn http(addr: SocketAddr, path: &str) -> String {
    evidence_core::health::http_get(&format!("http://{addr}{path}"), Duration::from_secs(3))
        .map(|r| dechunk(&r.body))
        .unwrap_or_default()
}

/// `evidence_core::health::http_get` returns a chunked body as it came (Prometheus' API answers
/// chunked): strip the framing when the body starts with a chunk-size line.
fn dechunk(body: &str) -> String {
    let looks_chunked = body
        .split_once("\r\n")
        .is_some_and(|(h, _)| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()));
    if !looks_chunked {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].strip_prefix("\r\n").unwrap_or(&tail[n..]);
    }
    out
}

/// (targets up, all targets) from Prometheus' `/api/v1/targets`.
fn targets_up(prom: SocketAddr) -> Option<(usize, usize)> {
    let v: serde_json::Value = serde_json::from_str(&http(prom, "/api/v1/targets")).ok()?;
    let active = v.pointer("/data/activeTargets")?.as_array()?;
    let up = active
        .iter()
        .filter(|t| t.get("health").and_then(serde_json::Value::as_str) == Some("up"))
        .count();
    Some((up, active.len()))
}

/// True when a notification in `received` (the receiver's JSON lines) carries a firing
/// `RedisDown` for the replica that started at or after `after_ns`.
fn fired_after(received: &str, after_ns: i64) -> bool {
    received
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .flat_map(|n| n["alerts"].as_array().cloned().unwrap_or_default())
        .any(|a| {
            a["status"] == "firing"
                && a["labels"]["alertname"] == "RedisDown"
                && a["labels"]["instance"] == "redis://redis-replica:6379"
                && a["startsAt"]
                    .as_str()
                    .and_then(evidence_core::time::parse_utc)
                    .is_some_and(|t| t.ns + t.resolution_ns > after_ns)
        })
}

fn secret() -> String {
    (0..24)
        .map(|_| fastrand::alphanumeric())
        .collect::<String>()
}

/// Tears down whatever the test brought up, also when an assertion fails.
struct Cleanup {
    project: Option<Project>,
    daemon: Option<PrivateEngine>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.project.take() {
            let _ = p.down(true, Duration::from_secs(120));
        }
        if let Some(d) = self.daemon.take() {
            let _ = d.stop();
        }
    }
}

/// A private engine on the cached data root, with the stack's images, and the host state
/// recorded before it started.
/// Fields drop in order: the stack and engine first, then the run folder, then the lock.
struct Env {
    cleanup: Cleanup,
    run: tempfile::TempDir,
    data_root: PathBuf,
    before: String,
    /// `dockerd`'s own files outside its roots that did not exist before it started.
    absent: Vec<&'static str>,
    /// The projects' bridge links (`br-<network id>`).
    bridges: Vec<String>,
    _lock: CacheLock,
}

impl Env {
    fn start() -> Env {
        let root = workspace();
        let cache = compose_core::default_cache_dir(&root);
        // One engine per data root at a time (another test on this checkout waits here).
        let lock = CacheLock::acquire(&cache).unwrap();
        let data_root = compose_core::data_root(&cache);
        let run = tempfile::Builder::new()
            .prefix("ctpd")
            .tempdir_in("/tmp")
            .unwrap();
        let before = host_state();
        let absent = compose_core::engine::DOCKERD_HOST_PATHS
            .iter()
            .copied()
            .filter(|p| !Path::new(p).exists())
            .collect();
        let mut opts = PrivateEngineOptions::new(run.path(), &data_root);
        opts.ready_timeout = Duration::from_secs(60);
        let daemon = PrivateEngine::start(opts).expect("private dockerd");
        note(&format!(
            "engine ready in {:.2}s ({}); compose: {:?}",
            daemon.start_step.duration.as_secs_f64(),
            daemon.start_step.detail,
            daemon.engine().compose_cli()
        ));
        if let ComposeCli::Standalone(p) = daemon.engine().compose_cli() {
            assert!(p.ends_with("docker-compose"), "{p:?}");
        }
        let env = Env {
            _lock: lock,
            run,
            data_root,
            before,
            absent,
            bridges: Vec::new(),
            cleanup: Cleanup {
                project: None,
                daemon: Some(daemon),
            },
        };
        let images = ImageCache::new(&cache, root.join("infra/docker"))
            .ensure(&env.engine(), STACK_IMAGES)
            .expect("images");
        note(&format!(
            "images {} in {:.1}s: {}",
            if images.warm { "warm" } else { "cold" },
            images.duration.as_secs_f64(),
            images
                .steps
                .iter()
                .map(|s| format!("{} {:.1}s", s.name, s.duration.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        env
    }

    /// Remember `project`'s bridge links, to check they are gone at the end.
    fn note_bridges(&mut self, project: &Project) {
        let filter = format!("label=com.docker.compose.project={}", project.name());
        let s = self
            .engine()
            .docker(
                "networks",
                &[
                    "network".into(),
                    "ls".into(),
                    "-q".into(),
                    "--no-trunc".into(),
                    "--filter".into(),
                    filter.into(),
                ],
                Duration::from_secs(30),
            )
            .unwrap();
        assert!(s.ok, "{}", s.failure_message());
        for id in s.stdout.split_whitespace() {
            let link = format!("br-{}", &id[..12]);
            assert!(link_exists(&link), "no link {link} for network {id}");
            self.bridges.push(link);
        }
        assert!(!self.bridges.is_empty());
    }

    fn engine(&self) -> Engine {
        self.cleanup.daemon.as_ref().unwrap().engine().clone()
    }

    /// Stop the engine and check nothing is left: no process, mount, listener on `ports`,
    /// firewall, sysctl, link or file change.
    fn finish(&mut self, ports: &[SocketAddr]) -> compose_core::Step {
        let stop = self.cleanup.daemon.take().unwrap().stop().unwrap();
        assert!(stop.ok, "{}", stop.detail);
        let marker = self.run.path().display().to_string();
        assert!(
            processes_mentioning(&marker).is_empty(),
            "processes left: {:?}",
            processes_mentioning(&marker)
        );
        assert!(
            mounts_under(self.run.path()).is_empty(),
            "{:?}",
            mounts_under(self.run.path())
        );
        assert!(
            mounts_under(&self.data_root).is_empty(),
            "{:?}",
            mounts_under(&self.data_root)
        );
        for p in ports {
            assert!(
                TcpStream::connect_timeout(p, Duration::from_secs(2)).is_err(),
                "{p} still listening"
            );
        }
        assert_eq!(
            self.before,
            host_state(),
            "the host firewall, sysctls or docker0 changed"
        );
        for b in &self.bridges {
            assert!(!link_exists(b), "bridge {b} left behind");
        }
        let other_dockerd = Command::new("pgrep")
            .args(["-x", "dockerd"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !other_dockerd {
            for p in &self.absent {
                assert!(!Path::new(p).exists(), "{p} left behind");
            }
        }
        stop
    }
}

#[test]
fn prodlike_compose_stack_runs_for_real_and_leaves_nothing() {
    let name = "prodlike_compose_stack_runs_for_real_and_leaves_nothing";
    if !require(name) {
        return;
    }
    let mut env = Env::start();
    let engine = env.engine();
    let root = workspace();
    let t0 = Instant::now();

    let redis_pw = secret();
    let pg_pw = secret();
    let env_file = env.run.path().join("stack.env");
    fs::write(
        &env_file,
        format!("REDIS_PASSWORD={redis_pw}\nTIMESCALE_PASSWORD={pg_pw}\n"),
    )
    .unwrap();
    let project = Project::new(
        &engine,
        root.join("infra/docker-compose.prodlike.yaml"),
        "ctp-compose-test",
        Some(env_file),
    )
    .unwrap();
    env.cleanup.project = Some(project.clone());

    let up = project
        .up(Instant::now() + Duration::from_secs(300))
        .unwrap();
    assert!(
        up.healthy,
        "not healthy: {}",
        up.failed_step()
            .map(compose_core::Step::failure_message)
            .unwrap_or_default()
    );
    assert_eq!(
        up.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["compose_config", "compose_up", "wait_healthy"]
    );
    let (ps, _) = project.ps().unwrap();
    for s in up.steps.iter().chain([&ps]) {
        for secret in [&redis_pw, &pg_pw] {
            assert!(
                !s.command_line().contains(secret.as_str()),
                "secret in argv"
            );
            assert!(
                !s.stdout.contains(secret.as_str()),
                "secret in {}'s output",
                s.name
            );
            assert!(
                !s.stderr.contains(secret.as_str()),
                "secret in {}'s output",
                s.name
            );
        }
    }
    note(&format!(
        "up to healthy in {:.2}s (compose up {:.2}s)",
        up.up_to_healthy.as_secs_f64(),
        up.steps[1].duration.as_secs_f64()
    ));
    env.note_bridges(&project);
    let services: Vec<&str> = up.rows.iter().map(|r| r.service.as_str()).collect();
    assert_eq!(
        services,
        [
            "alert-webhook",
            "alertmanager",
            "postgres-exporter-primary",
            "postgres-exporter-replica",
            "prometheus",
            "redis-exporter",
            "redis-primary",
            "redis-replica",
            "redis-sentinel-1",
            "redis-sentinel-2",
            "redis-sentinel-3",
            "timescale-primary",
            "timescale-replica"
        ]
    );
    assert!(
        up.rows.iter().all(|r| r.health == "healthy"),
        "{:?}",
        up.rows
    );
    for r in &up.rows {
        assert!(
            r.publishers.iter().all(|p| p.url == "127.0.0.1"),
            "{} publishes beyond loopback: {:?}",
            r.service,
            r.publishers
        );
    }

    // Probes through the published ports, as a client on the host sees the stack.
    let primary = project.published("redis-primary", 6379).unwrap();
    let replica = project.published("redis-replica", 6379).unwrap();
    assert_eq!(
        redis_cli(primary, Some(&redis_pw), &["PING"]).trim(),
        "PONG"
    );
    assert!(
        redis_cli(primary, None, &["PING"]).contains("NOAUTH"),
        "the primary answers without a password"
    );
    assert!(redis_cli(primary, Some(&redis_pw), &["ROLE"]).starts_with("master\n"));
    assert!(redis_cli(replica, Some(&redis_pw), &["ROLE"]).starts_with("slave\n"));
    assert!(
        redis_cli(replica, Some(&redis_pw), &["INFO", "replication"])
            .contains("master_link_status:up")
    );
    assert_eq!(
        redis_cli(primary, Some(&redis_pw), &["SET", "compose-test", "v1"]).trim(),
        "OK"
    );
    test_support::wait_until(Duration::from_secs(10), "the write on the replica", || {
        redis_cli(replica, Some(&redis_pw), &["GET", "compose-test"]).trim() == "v1"
    });
    for i in 1..=3 {
        let s = project
            .published(&format!("redis-sentinel-{i}"), 26379)
            .unwrap();
        assert_eq!(
            redis_cli(
                s,
                None,
                &["SENTINEL", "get-master-addr-by-name", "mymaster"]
            ),
            "redis-primary\n6379\n",
            "sentinel {i}"
        );
        assert!(
            redis_cli(s, None, &["SENTINEL", "ckquorum", "mymaster"]).starts_with("OK"),
            "sentinel {i} quorum"
        );
    }
    let pg = project.published("timescale-primary", 5432).unwrap();
    let standby = project.published("timescale-replica", 5432).unwrap();
    assert_eq!(psql(pg, &pg_pw, "select 1"), "1");
    assert_eq!(psql(pg, &pg_pw, "select pg_is_in_recovery()"), "f");
    assert_eq!(psql(standby, &pg_pw, "select pg_is_in_recovery()"), "t");
    assert_eq!(
        psql(
            pg,
            &pg_pw,
            "select count(*) from pg_stat_replication where state = 'streaming'"
        ),
        "1"
    );
    assert_eq!(
        psql(pg, "wrong", "select 1"),
        "",
        "a wrong password is refused"
    );
    psql(
        pg,
        &pg_pw,
        "create table t (v int); insert into t values (42)",
    );
    test_support::wait_until(Duration::from_secs(10), "the row on the standby", || {
        psql(standby, &pg_pw, "select v from t") == "42"
    });

    // Prometheus scrapes every target (the exporters see the real servers).
    let prom = project.published("prometheus", 9090).unwrap();
    let receiver = project.published("alert-webhook", 9095).unwrap();
    let t = Instant::now();
    // Generous: on a loaded 2-core box the first scrapes can take tens of seconds.
    let mut last = None;
    let ok = evidence_core::signals::wait_until(
        Instant::now() + Duration::from_secs(180),
        Duration::from_millis(250),
        || {
            last = targets_up(prom);
            last.filter(|(up, all)| *all == 7 && up == all)
        },
    )
    .unwrap();
    assert!(
        ok.is_some(),
        "Prometheus targets (up, all) = {last:?} after 180 s: {}",
        http(prom, "/api/v1/targets")
    );
    note(&format!(
        "all Prometheus targets up {:.2}s after the stack was healthy",
        t.elapsed().as_secs_f64()
    ));
    assert!(
        http(prom, "/api/v1/query?query=redis_up")
            .contains(r#""instance":"redis://redis-replica:6379""#)
    );

    // No RedisDown pending from the start-up (a scrape before the replica answered), so the
    // notification looked for below is the kill's.
    test_support::wait_until(
        Duration::from_secs(120),
        "no RedisDown alert active",
        || {
            http(
                prom,
                "/api/v1/query?query=ALERTS%7Balertname%3D%22RedisDown%22%7D",
            )
            .contains(r#""result":[]"#)
        },
    );

    // The replica killed: its row says so, and a wait for health gives up at once.
    let killed_ns = evidence_core::time::now_ns();
    let killed_at = Instant::now();
    let kill = project.kill("redis-replica").unwrap();
    assert!(kill.ok, "{}", kill.failure_message());
    let (_, rows) = project.ps().unwrap();
    let r = rows.iter().find(|r| r.service == "redis-replica").unwrap();
    assert_eq!(r.state, "exited", "{r:?}");
    assert!(!r.healthy());
    assert!(project.published("redis-replica", 6379).is_err());
    // Its docker-proxy goes a moment after the container.
    test_support::wait_until(Duration::from_secs(20), "the replica's port closed", || {
        TcpStream::connect_timeout(&replica, Duration::from_secs(2)).is_err()
    });
    // The alert for it goes Prometheus → Alertmanager → the recording receiver: a firing
    // RedisDown for the replica that became active after the kill.
    test_support::wait_until(
        Duration::from_secs(120),
        "RedisDown at the receiver",
        || fired_after(&http(receiver, "/alerts"), killed_ns),
    );
    note(&format!(
        "RedisDown for the killed replica at the receiver {:.2}s after the kill",
        killed_at.elapsed().as_secs_f64()
    ));
    let all: Vec<String> = rows.iter().map(|r| r.service.clone()).collect();
    let (wait, _) = project
        .wait_healthy(&all, Instant::now() + Duration::from_secs(30))
        .unwrap();
    assert!(!wait.ok);
    assert!(
        wait.detail.contains("redis-replica (exited/"),
        "{}",
        wait.detail
    );

    // Down with purge, engine stopped: nothing left.
    let ports: Vec<SocketAddr> = [primary, pg, standby, prom, receiver].into();
    let down = project.down(true, Duration::from_secs(120)).unwrap();
    assert!(down.ok, "{}", down.failure_message());
    env.cleanup.project = None;
    let (ps, rows) = project.ps().unwrap();
    assert!(ps.ok && rows.is_empty(), "{rows:?}");
    let vols = engine
        .docker(
            "volumes",
            &[
                "volume".into(),
                "ls".into(),
                "-q".into(),
                "--filter".into(),
                "label=com.docker.compose.project=ctp-compose-test".into(),
            ],
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(vols.ok && vols.stdout.trim().is_empty(), "{}", vols.stdout);
    let stop = env.finish(&ports);
    note(&format!(
        "down {:.2}s, engine stop {:.2}s, whole test {:.1}s",
        down.duration.as_secs_f64(),
        stop.duration.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    ));
}

/// The corrected multi-host file on one engine, as the original's two steps ran it: the primary
/// side with the primary env file, then the standby and witness side with the standby env file
/// (`--no-deps`, so the primary's containers are left as they are). Rows carry the host and role
/// labels; the standby side really replicates from the primary side.
#[test]
fn multi_host_compose_file_runs_in_two_steps_with_placement_labels() {
    let name = "multi_host_compose_file_runs_in_two_steps_with_placement_labels";
    if !require(name) {
        return;
    }
    let mut env = Env::start();
    let engine = env.engine();
    let file = workspace().join("infra/docker-compose.prodlike.multi-host.yaml");
    let redis_pw = secret();
    let pg_pw = secret();
    let mut projects = Vec::new();
    for role in ["primary", "standby"] {
        let f = env.run.path().join(format!("prodlike-{role}.env"));
        fs::write(
            &f,
            format!("ROLE={role}\nREDIS_PASSWORD={redis_pw}\nTIMESCALE_PASSWORD={pg_pw}\n"),
        )
        .unwrap();
        projects.push(Project::new(&engine, &file, "ctp-multi-host-test", Some(f)).unwrap());
    }
    let (primary, standby) = (&projects[0], &projects[1]);
    env.cleanup.project = Some(primary.clone());

    let (cfg, labels) = primary.service_labels().unwrap();
    assert!(cfg.ok, "{}", cfg.failure_message());
    assert!(
        !cfg.stdout.contains(&redis_pw),
        "the resolved config kept in the step"
    );
    let side = |roles: &[&str]| -> Vec<String> {
        labels
            .iter()
            .filter(|(_, l)| {
                l.get("quant_hft.role")
                    .is_some_and(|r| roles.contains(&r.as_str()))
            })
            .map(|(s, _)| s.clone())
            .collect()
    };
    let primary_side = side(&["primary"]);
    let standby_side = side(&["standby", "witness"]);
    assert_eq!(
        primary_side,
        ["redis-primary", "redis-sentinel-1", "timescale-primary"]
    );
    assert_eq!(
        standby_side,
        [
            "redis-replica",
            "redis-sentinel-2",
            "redis-sentinel-3",
            "timescale-replica"
        ]
    );

    let deadline = Instant::now() + Duration::from_secs(300);
    let up1 = primary.up_services(&primary_side, false, deadline).unwrap();
    assert!(
        up1.healthy,
        "{:?}",
        up1.failed_step().map(compose_core::Step::failure_message)
    );
    let id_before = up1
        .rows
        .iter()
        .find(|r| r.service == "redis-primary")
        .unwrap()
        .id
        .clone();
    let up2 = standby.up_services(&standby_side, true, deadline).unwrap();
    assert!(
        up2.healthy,
        "{:?}",
        up2.failed_step().map(compose_core::Step::failure_message)
    );
    assert!(
        up2.steps[1]
            .command_line()
            .contains(" up -d --no-deps redis-replica ")
    );
    note(&format!(
        "multi-host: primary side healthy in {:.2}s, standby side in {:.2}s",
        up1.up_to_healthy.as_secs_f64(),
        up2.up_to_healthy.as_secs_f64()
    ));

    env.note_bridges(primary);
    let (_, rows) = primary.ps().unwrap();
    assert_eq!(rows.len(), 7);
    assert!(rows.iter().all(compose_core::PsRow::healthy), "{rows:?}");
    let row = |s: &str| rows.iter().find(|r| r.service == s).unwrap();
    assert_eq!(
        row("redis-primary").id,
        id_before,
        "the second up recreated the primary"
    );
    assert_eq!(
        row("redis-primary").label("quant_hft.host"),
        Some("primary-host")
    );
    assert_eq!(
        row("timescale-replica").label("quant_hft.host"),
        Some("standby-host")
    );
    assert_eq!(
        row("timescale-replica").label("quant_hft.role"),
        Some("standby")
    );
    assert_eq!(
        row("redis-sentinel-3").label("quant_hft.role"),
        Some("witness")
    );
    // A saved `compose ps` of these rows reads back with its labels (the health checker's input).
    let saved: String = rows.iter().map(|r| format!("{}\n", r.to_json())).collect();
    let back = compose_core::parse_ps_json(&saved, "saved").unwrap();
    assert_eq!(back, rows);

    let replica = primary.published("redis-replica", 6379).unwrap();
    assert!(redis_cli(replica, Some(&redis_pw), &["ROLE"]).starts_with("slave\n"));
    let standby_pg = primary.published("timescale-replica", 5432).unwrap();
    assert_eq!(psql(standby_pg, &pg_pw, "select pg_is_in_recovery()"), "t");
    let s3 = primary.published("redis-sentinel-3", 26379).unwrap();
    // A sentinel started in the second step learns its peers over the hello channel (2 s, and up to
    // 10 s on a loaded machine): wait for the quorum with a deadline, not once.
    test_support::wait_until(Duration::from_secs(30), "sentinel 3's quorum", || {
        redis_cli(s3, None, &["SENTINEL", "ckquorum", "mymaster"]).starts_with("OK")
    });

    // A detached engine keeps running (a drill's `up` and `down` are separate processes) and is
    // found again from its run folder.
    let daemon = env.cleanup.daemon.take().unwrap();
    let opts = daemon.options().clone();
    let pid = daemon.pid();
    daemon.detach();
    let again = PrivateEngine::attach(opts)
        .unwrap()
        .expect("the engine still runs");
    assert_eq!(again.pid(), pid);
    assert!(again.start_step.detail.contains("already running"));
    env.cleanup.daemon = Some(again);
    let (_, rows) = primary.ps().unwrap();
    assert_eq!(rows.len(), 7);

    let down = primary.down(true, Duration::from_secs(120)).unwrap();
    assert!(down.ok, "{}", down.failure_message());
    env.cleanup.project = None;
    env.finish(&[replica, standby_pg, s3]);
}
