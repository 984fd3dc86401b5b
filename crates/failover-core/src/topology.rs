//! The multi-host topology: the prod-like stack's Redis, Sentinel and PostgreSQL services (from
//! stack-core) placed on the inventory's hosts, each started through its host's command prefix
//! (`ip netns exec h1`, `ssh ops@host`) and listening on its host's address. One code path for
//! the netns and ssh backends: only the prefixes differ, and the netns backend creates the hosts.
//!
//! Roles are always read from the servers (`ROLE`, `pg_is_in_recovery()`, the sentinels'
//! `get-master-addr-by-name`), never taken from the labels: after a failover the service called
//! `redis-replica` is the primary.

use std::time::{Duration, Instant};

use evidence_core::{EvidenceError, Result};
use serde_json::{Map, Value as Json, json};
use stack_core::launch;
use stack_core::pg::{PgClient, PgConfig};
use stack_core::redis::RedisClient;
use stack_core::report::Report;
use stack_core::stack::{MASTER_NAME, PG_DB, PG_USER, Placement, ServiceKind, Stack, StackConfig};

use crate::inventory::{Backend, Inventory};
use crate::netns;

/// The services of a multi-host topology, in start order.
pub const KINDS: [ServiceKind; 7] = [
    ServiceKind::RedisPrimary,
    ServiceKind::RedisReplica,
    ServiceKind::TimescalePrimary,
    ServiceKind::TimescaleReplica,
    ServiceKind::Sentinel(1),
    ServiceKind::Sentinel(2),
    ServiceKind::Sentinel(3),
];

/// The table the drill's writers insert into.
pub const EVENTS_TABLE: &str = "fo_events";

/// Sentinel `down-after-milliseconds` for drills (stack-core's default is 2000 ms; the failover
/// goals assume 1000 ms, set at run time with `SENTINEL SET`).
pub const DOWN_AFTER_MS: u64 = 1000;
/// Sentinel `failover-timeout` for drills.
pub const FAILOVER_TIMEOUT_MS: u64 = 3000;

/// The hosts and services of one drill.
#[derive(Debug, Clone)]
pub struct Topology {
    /// The inventory.
    pub inv: Inventory,
    /// How the hosts are reached.
    pub backend: Backend,
    /// The services (stack-core), placed on the hosts.
    pub stack: Stack,
}

/// A service's live state.
#[derive(Debug, Clone)]
pub struct ServiceState {
    /// Service name (stack-core's).
    pub service: String,
    /// Host name.
    pub host: String,
    /// `listen:port`.
    pub addr: String,
    /// `running` (its process is alive), `exited` (pid file, no process), `missing` (never started).
    pub state: String,
    /// `healthy` when it answered, else `unhealthy`.
    pub health: String,
    /// What the server says it is: `master`/`slave` (Redis), `primary`/`standby` (PostgreSQL),
    /// `sentinel` (with the master it names), or `unreachable`.
    pub role: String,
    /// The answer (or the error).
    pub detail: String,
    /// Sentinels: the master they name (`host:port`).
    pub names_master: Option<String>,
}

impl Topology {
    /// Place the services of `inv` on its hosts.
    #[must_use]
    pub fn new(inv: Inventory, backend: Backend) -> Topology {
        let mut cfg = StackConfig {
            base_port: inv.base_port,
            ..StackConfig::default()
        };
        for h in &inv.hosts {
            for r in &h.roles {
                cfg.placements.insert(
                    r.clone(),
                    Placement {
                        listen: h.address.to_string(),
                        prefix: h.prefix.clone(),
                    },
                );
            }
        }
        // Servers change directory (PostgreSQL into its data folder): every path must be absolute.
        let run_dir = if inv.run_dir.is_absolute() {
            inv.run_dir.clone()
        } else {
            std::env::current_dir()
                .map(|d| d.join(&inv.run_dir))
                .unwrap_or_else(|_| inv.run_dir.clone())
        };
        let stack = Stack::new(run_dir, cfg);
        Topology {
            inv,
            backend,
            stack,
        }
    }

    /// The host name of `kind`.
    #[must_use]
    pub fn host_of(&self, kind: ServiceKind) -> String {
        self.inv
            .host_of(&kind.name())
            .map_or_else(|| "?".to_string(), |h| h.name.clone())
    }

    /// The host whose address is `addr` (`ip:port` or `ip`).
    #[must_use]
    pub fn host_at(&self, addr: &str) -> Option<String> {
        let ip = addr.rsplit_once(':').map_or(addr, |(a, _)| a);
        self.inv.host_by_address(ip).map(|h| h.name.clone())
    }

    /// Move the calling thread (and the threads it starts later) to where clients run: the
    /// inventory's `client_host` namespace, when it has one.
    pub fn enter_client(&self) -> Result<()> {
        match &self.inv.client_host {
            Some(c) => netns::enter(c),
            None => Ok(()),
        }
    }

    /// The stack's password.
    pub fn password(&self) -> Result<String> {
        self.stack.password()
    }

    /// A Redis connection to `kind`, authenticated.
    pub fn redis(
        &self,
        kind: ServiceKind,
        pw: &str,
        t: Duration,
    ) -> std::result::Result<RedisClient, String> {
        redis_at(&self.stack.addr(kind), pw, t)
    }

    /// A PostgreSQL config for `kind` (database `quant_hft`).
    #[must_use]
    pub fn pg_config(&self, kind: ServiceKind, pw: &str, t: Duration) -> PgConfig {
        PgConfig::new(
            &self.stack.placement(kind).listen,
            self.stack.port(kind),
            PG_USER,
            PG_DB,
        )
        .password(pw)
        .timeout(t)
    }

    /// Create the hosts (netns) and start every service, each waited for until ready; then set the
    /// sentinels' drill timings and wait until each sees the other two and the replica. Call from
    /// the client's namespace ([`Topology::enter_client`]) after the hosts exist.
    pub fn start_services(
        &self,
        deadline: Duration,
        mut on_step: impl FnMut(&str, Duration, &str),
    ) -> Result<()> {
        let end = Instant::now() + deadline;
        let pw = launch::prepare(&self.stack)?;
        for kind in KINDS {
            evidence_core::signals::check()?;
            let t = Instant::now();
            match kind {
                ServiceKind::TimescalePrimary => {
                    launch::init_pg_primary(&self.stack, &pw)?;
                }
                ServiceKind::TimescaleReplica => {
                    launch::init_pg_standby(&self.stack, &pw)?;
                }
                _ => {}
            }
            let r = launch::start(&self.stack, kind, &pw)?;
            launch::wait_ready(&self.stack, kind, &pw, end)?;
            if kind == ServiceKind::TimescalePrimary {
                launch::ensure_pg_db(&self.stack, &pw, Duration::from_secs(2))?;
                let mut c =
                    PgClient::connect(&self.pg_config(kind, &pw, Duration::from_secs(2)))
                        .map_err(|e| EvidenceError::failed(format!("timescale-primary: {e}")))?;
                c.simple_query(&format!(
                    "CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (writer text NOT NULL, seq bigint NOT NULL, \
                     at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (writer, seq))"
                ))
                .map_err(|e| EvidenceError::failed(format!("timescale-primary: {e}")))?;
                c.close();
            }
            on_step(
                &format!("start_{}", kind.name()),
                t.elapsed(),
                &format!(
                    "pid {} on {} at {}",
                    r.pid,
                    self.host_of(kind),
                    self.stack.addr(kind)
                ),
            );
        }
        let t = Instant::now();
        for n in 1..=3 {
            let mut c = self
                .redis(ServiceKind::Sentinel(n), &pw, Duration::from_secs(1))
                .map_err(EvidenceError::failed)?;
            for (k, v) in [
                ("down-after-milliseconds", DOWN_AFTER_MS),
                ("failover-timeout", FAILOVER_TIMEOUT_MS),
            ] {
                c.cmd_str(&["SENTINEL", "SET", MASTER_NAME, k, &v.to_string()])
                    .map_err(|e| {
                        EvidenceError::failed(format!("redis-sentinel-{n}: SENTINEL SET {k}: {e}"))
                    })?;
            }
        }
        self.wait_sentinels_settled(end)?;
        on_step(
            "sentinels_agree",
            t.elapsed(),
            "every sentinel sees 2 other sentinels and 1 replica",
        );
        Ok(())
    }

    /// Wait until every sentinel sees two other sentinels and one replica.
    pub fn wait_sentinels_settled(&self, end: Instant) -> Result<()> {
        let pw = self.password()?;
        loop {
            let mut all = true;
            let mut last = String::new();
            for n in 1..=3 {
                let m = self
                    .redis(ServiceKind::Sentinel(n), &pw, Duration::from_secs(2))
                    .and_then(|mut c| {
                        c.cmd_str(&["SENTINEL", "MASTER", MASTER_NAME])
                            .map_err(|e| e.to_string())
                    })
                    .map(|v| pairs(&v));
                match m {
                    Ok(p) => {
                        let others = get(&p, "num-other-sentinels");
                        let slaves = get(&p, "num-slaves");
                        if others != "2" || slaves != "1" {
                            all = false;
                            last = format!(
                                "redis-sentinel-{n}: num-other-sentinels={others} num-slaves={slaves}"
                            );
                        }
                    }
                    Err(e) => {
                        all = false;
                        last = format!("redis-sentinel-{n}: {e}");
                    }
                }
            }
            if all {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(EvidenceError::failed(format!(
                    "sentinels did not settle before the deadline: {last}"
                )));
            }
            evidence_core::signals::sleep(Duration::from_millis(50))?;
        }
    }

    /// Stop every service (SIGTERM, SIGKILL after `grace`) and, with the netns backend, delete the
    /// hosts; then remove the run folder's data so the next `up` starts fresh.
    pub fn down(&self, grace: Duration) -> Result<()> {
        let _ = launch::down(&self.stack, grace)?;
        if self.backend == Backend::Netns {
            netns::down(&self.inv)?;
        }
        launch::purge(&self.stack, &[])
    }

    /// The live state of every service (one thread each).
    pub fn states(&self, t: Duration) -> Vec<ServiceState> {
        let pw = self.password().unwrap_or_default();
        std::thread::scope(|s| {
            let hs: Vec<_> = KINDS
                .iter()
                .map(|k| {
                    let pw = pw.as_str();
                    s.spawn(move || self.state_of(*k, pw, t))
                })
                .collect();
            hs.into_iter().filter_map(|h| h.join().ok()).collect()
        })
    }

    fn state_of(&self, kind: ServiceKind, pw: &str, t: Duration) -> ServiceState {
        let sup = launch::supervisor(&self.stack, kind);
        let state = match (sup.running(), sup.recorded()) {
            (Ok(Some(_)), _) => "running",
            (_, Ok(Some(_))) => "exited",
            _ if self.backend == Backend::Ssh => "unknown",
            _ => "missing",
        };
        let addr = self.stack.addr(kind);
        let mut st = ServiceState {
            service: kind.name(),
            host: self.host_of(kind),
            addr: addr.clone(),
            state: state.to_string(),
            health: "unhealthy".to_string(),
            role: "unreachable".to_string(),
            detail: String::new(),
            names_master: None,
        };
        let r = match kind {
            ServiceKind::Sentinel(_) => self.redis(kind, pw, t).and_then(|mut c| {
                c.sentinel_master_addr(MASTER_NAME)
                    .map_err(|e| e.to_string())
                    .map(|a| {
                        let m = a.map(|(h, p)| format!("{h}:{p}"));
                        st.names_master.clone_from(&m);
                        (
                            "sentinel".to_string(),
                            format!("names master {}", m.unwrap_or_else(|| "(nil)".into())),
                        )
                    })
            }),
            ServiceKind::RedisPrimary | ServiceKind::RedisReplica => {
                self.redis(kind, pw, t).and_then(|mut c| {
                    c.role()
                        .map(|(r, _)| (r.clone(), format!("ROLE {r}")))
                        .map_err(|e| e.to_string())
                })
            }
            _ => PgClient::connect(&self.pg_config(kind, pw, t))
                .and_then(|mut c| c.query_value("SELECT pg_is_in_recovery()"))
                .map(|v| {
                    let r = if v.as_deref() == Some("f") {
                        "primary"
                    } else {
                        "standby"
                    };
                    (
                        r.to_string(),
                        format!("pg_is_in_recovery() = {}", v.unwrap_or_default()),
                    )
                })
                .map_err(|e| e.to_string()),
        };
        match r {
            Ok((role, detail)) => {
                st.health = "healthy".to_string();
                st.role = role;
                st.detail = detail;
            }
            Err(e) => st.detail = e,
        }
        st
    }

    /// The health report in the original's shape (§2.12) plus live roles: `host_summary` names, for
    /// each host, what its servers say they are now.
    #[must_use]
    pub fn report(
        &self,
        states: &[ServiceState],
        project: &str,
        compose_file: &str,
    ) -> (bool, Report) {
        let hosts: Vec<(String, String)> = self
            .inv
            .hosts
            .iter()
            .map(|h| (h.name.clone(), h.address.to_string()))
            .collect();
        build_report(
            &hosts,
            states,
            &ReportContext {
                project,
                compose_file,
                backend: self.backend.as_str(),
                inventory: &self.inv.path.display().to_string(),
                compare_sentinels: true,
            },
        )
    }
}

/// What [`build_report`] records besides the states.
#[derive(Debug, Clone, Copy)]
pub struct ReportContext<'a> {
    /// The project name (the original's key).
    pub project: &'a str,
    /// The compose file (the original's key; empty for netns/ssh).
    pub compose_file: &'a str,
    /// `netns`, `ssh`, `compose`.
    pub backend: &'a str,
    /// The inventory file (empty for compose).
    pub inventory: &'a str,
    /// Check that each sentinel names the server that says master (compose sentinels name it by
    /// its container address: recorded, not compared).
    pub compare_sentinels: bool,
}

/// The health report in the original's shape (§2.12) from live states: `hosts` are (name,
/// address) pairs; `host_summary` names, for each host, what its servers say they are now.
#[must_use]
pub fn build_report(
    hosts_list: &[(String, String)],
    states: &[ServiceState],
    ctx: &ReportContext<'_>,
) -> (bool, Report) {
    let required: Vec<String> = KINDS.iter().map(|k| k.name()).collect();
    let missing: Vec<String> = states
        .iter()
        .filter(|s| s.state == "missing")
        .map(|s| s.service.clone())
        .collect();
    let unhealthy: Vec<&ServiceState> = states
        .iter()
        .filter(|s| s.state != "missing" && s.health != "healthy")
        .collect();
    // Sentinels must agree with the Redis server that says master.
    let masters: Vec<&ServiceState> = states.iter().filter(|s| s.role == "master").collect();
    let pg_primaries = states.iter().filter(|s| s.role == "primary").count();
    let mut problems = Vec::new();
    if masters.len() != 1 {
        problems.push(format!("{} Redis servers say master", masters.len()));
    }
    if pg_primaries != 1 {
        problems.push(format!("{pg_primaries} PostgreSQL servers say primary"));
    }
    if let Some(m) = masters.first().filter(|_| ctx.compare_sentinels) {
        for s in states.iter().filter(|s| s.role == "sentinel") {
            if s.names_master.as_deref() != Some(m.addr.as_str()) {
                problems.push(format!(
                    "{} names {} but {} says master",
                    s.service,
                    s.names_master.clone().unwrap_or_else(|| "(nil)".into()),
                    m.addr
                ));
            }
        }
    }
    let healthy = missing.is_empty() && unhealthy.is_empty() && problems.is_empty();
    let classification = match (
        missing.is_empty(),
        unhealthy.is_empty(),
        problems.is_empty(),
    ) {
        (true, true, true) => "healthy",
        (false, false, _) => "missing_and_unhealthy",
        (false, true, _) => "missing_services",
        (true, false, _) => "unhealthy_services",
        (true, true, false) => "roles_inconsistent",
    };
    let row = |s: &ServiceState| {
        json!({"service": s.service, "state": s.state, "health": s.health, "host": s.host,
               "role": s.role, "address": s.addr, "detail": s.detail})
    };
    let mut hosts = Map::new();
    for (hname, haddr) in hosts_list {
        let mine: Vec<&ServiceState> = states.iter().filter(|s| &s.host == hname).collect();
        let role = if mine
            .iter()
            .any(|s| s.role == "master" || s.role == "primary")
        {
            "primary"
        } else if mine
            .iter()
            .any(|s| s.role == "slave" || s.role == "standby")
        {
            "standby"
        } else if mine.iter().any(|s| s.role == "sentinel") {
            "witness"
        } else {
            "down"
        };
        let status = if mine.iter().all(|s| s.health == "healthy") {
            "healthy"
        } else {
            "degraded"
        };
        let services: Map<String, Json> = mine
            .iter()
            .map(|s| (s.service.clone(), Json::from(s.role.clone())))
            .collect();
        hosts.insert(
            hname.clone(),
            json!({"role": role, "status": status, "address": haddr, "services": services}),
        );
    }
    // The original's keys in its order (stack-core's ordered map), then ours.
    let mut report = Report::default();
    report.insert("generated_ts_ns", json!(evidence_core::time::now_ns()));
    report.insert("healthy", json!(healthy));
    report.insert("classification", json!(classification));
    report.insert("required_services", json!(required));
    report.insert("missing_services", json!(missing));
    report.insert(
        "unhealthy_services",
        Json::Array(unhealthy.iter().map(|s| row(s)).collect()),
    );
    report.insert(
        "service_rows",
        Json::Array(states.iter().map(row).collect()),
    );
    report.insert("host_summary", Json::Object(hosts));
    report.insert("compose_file", json!(ctx.compose_file));
    report.insert("project_name", json!(ctx.project));
    report.insert("command_error", json!(problems.join("; ")));
    report.insert("backend", json!(ctx.backend));
    report.insert("inventory", json!(ctx.inventory));
    (healthy, report)
}

/// An authenticated Redis connection to `addr`.
pub fn redis_at(addr: &str, pw: &str, t: Duration) -> std::result::Result<RedisClient, String> {
    let mut c = RedisClient::connect(addr, t).map_err(|e| format!("{addr}: {e}"))?;
    c.auth(Some(pw)).map_err(|e| format!("{addr}: {e}"))?;
    Ok(c)
}

/// A flat RESP array of alternating names and values as pairs.
#[must_use]
pub fn pairs(v: &stack_core::redis::Value) -> Vec<(String, String)> {
    v.items()
        .chunks(2)
        .filter_map(|c| Some((c.first()?.as_text()?, c.get(1)?.as_text()?)))
        .collect()
}

/// The value of `key` in `pairs` (empty when absent).
#[must_use]
pub fn get<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}
