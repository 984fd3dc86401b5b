//! Probes: ask each service what its clients would ask, and record the question and the answer.
//!
//! [`ready`] is the quick start-up check [`crate::launch::up`] waits on; [`health`] is the full
//! check `prodlike-health` reports (replication links, offsets and lag, sentinel agreement and
//! quorum, Prometheus targets).

use std::time::{Duration, Instant};

use evidence_core::health::http_get;
use serde::Serialize;
use serde_json::{Map, Value as Json, json};

use crate::pg::{PgClient, PgConfig};
use crate::redis::{RedisClient, RedisError, info_get};
use crate::stack::{MASTER_NAME, PG_DB, PG_USER, ServiceKind, Stack};

/// One probe of one service.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Service name.
    pub service: String,
    /// True when every check of the service passed.
    pub ok: bool,
    /// What was asked, e.g. `redis PING, ROLE, INFO replication at 127.0.0.1:17002`.
    pub probe: String,
    /// What it answered (the first failure, or a summary of the good answers).
    pub answer: String,
    /// Measured details (role, offsets, lag, targets ...).
    pub details: Map<String, Json>,
    /// How long the probe took, in milliseconds.
    pub probe_ms: f64,
}

impl Probe {
    fn new(kind: ServiceKind, probe: String) -> Self {
        Probe {
            service: kind.name(),
            ok: false,
            probe,
            answer: String::new(),
            details: Map::new(),
            probe_ms: 0.0,
        }
    }

    fn fail(mut self, answer: impl Into<String>) -> Self {
        self.ok = false;
        self.answer = answer.into();
        self
    }

    fn pass(mut self, answer: impl Into<String>) -> Self {
        self.ok = true;
        self.answer = answer.into();
        self
    }

    fn set(&mut self, k: &str, v: impl Into<Json>) {
        self.details.insert(k.to_string(), v.into());
    }
}

/// The passwords the probes use: one per stack natively, Redis and PostgreSQL apart with compose.
#[derive(Clone)]
pub struct Creds {
    /// Redis and Sentinel `AUTH` password.
    pub redis: String,
    /// PostgreSQL password of `quant_hft`.
    pub pg: String,
}

impl std::fmt::Debug for Creds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Creds(<hidden>)")
    }
}

impl Creds {
    /// The same password for both (the native stack).
    #[must_use]
    pub fn same(pw: &str) -> Self {
        Creds {
            redis: pw.to_string(),
            pg: pw.to_string(),
        }
    }
}

/// A PostgreSQL config for `kind` of `stack` as `quant_hft` on database `db`.
#[must_use]
pub fn pg_config(
    stack: &Stack,
    kind: ServiceKind,
    password: &str,
    timeout: Duration,
    db: &str,
) -> PgConfig {
    PgConfig::new(&stack.placement(kind).listen, stack.port(kind), PG_USER, db)
        .password(password)
        .timeout(timeout)
}

fn redis(stack: &Stack, kind: ServiceKind, pw: &Creds, t: Duration) -> Result<RedisClient, String> {
    let mut c = RedisClient::connect(&stack.addr(kind), t).map_err(|e| e.to_string())?;
    match c.auth(Some(&pw.redis)) {
        Ok(()) => {}
        // A server without a password (e.g. sentinels in a compose file) refuses AUTH: go on
        // unauthenticated, as a client would.
        Err(RedisError::Server(e)) if e.contains("without any password configured") => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(c)
}

fn timed(f: impl FnOnce() -> Probe) -> Probe {
    let t = Instant::now();
    let mut p = f();
    p.probe_ms = (t.elapsed().as_secs_f64() * 1e6).round() / 1e3;
    p
}

/// The quick readiness probe used while starting: Redis `PING` (replica: link up), sentinel
/// `PING`, PostgreSQL `SELECT 1`, HTTP `/-/ready` or `/metrics` answering 200.
#[must_use]
pub fn ready(stack: &Stack, kind: ServiceKind, pw: &str, t: Duration) -> Probe {
    ready_with(stack, kind, &Creds::same(pw), t)
}

/// [`ready`] with separate passwords.
#[must_use]
pub fn ready_with(stack: &Stack, kind: ServiceKind, pw: &Creds, t: Duration) -> Probe {
    use ServiceKind::*;
    match kind {
        RedisReplica | TimescaleReplica => health_one_with(stack, kind, pw, t, None),
        RedisPrimary | Sentinel(_) => timed(|| {
            let p = Probe::new(kind, format!("redis PING at {}", stack.addr(kind)));
            match redis(stack, kind, pw, t).and_then(|mut c| c.ping().map_err(|e| e.to_string())) {
                Ok(a) => p.pass(a),
                Err(e) => p.fail(e),
            }
        }),
        TimescalePrimary => timed(|| {
            let p = Probe::new(kind, format!("postgres SELECT 1 at {}", stack.addr(kind)));
            match PgClient::connect(&pg_config(stack, kind, &pw.pg, t, "postgres"))
                .and_then(|mut c| c.query_value("SELECT 1"))
            {
                Ok(v) => p.pass(format!("SELECT 1 -> {}", v.unwrap_or_default())),
                Err(e) => p.fail(e.to_string()),
            }
        }),
        Prometheus | Alertmanager => http_probe(stack, kind, "/-/ready", t),
        NodeExporter | RedisExporter | PgExporterPrimary | PgExporterReplica => {
            http_probe(stack, kind, "/metrics", t)
        }
        AlertWebhook => http_probe(stack, kind, "/", t),
    }
}

fn http_probe(stack: &Stack, kind: ServiceKind, path: &str, t: Duration) -> Probe {
    timed(|| {
        let url = format!("http://{}{path}", stack.addr(kind));
        let p = Probe::new(kind, format!("HTTP GET {url}"));
        match http_get(&url, t) {
            Ok(r) if r.status == 200 => p.pass(format!("HTTP {}", r.status)),
            Ok(r) => p.fail(format!("HTTP {}: {}", r.status, r.body.trim())),
            Err(e) => p.fail(e),
        }
    })
}

/// What the Redis data nodes say about who is primary: `listen:port` of the one whose `ROLE` is
/// `master` (the primary's address when neither answers).
#[must_use]
pub fn redis_actual_primary(stack: &Stack, pw: &str, t: Duration) -> Option<String> {
    redis_actual_primary_with(stack, &Creds::same(pw), t)
}

/// [`redis_actual_primary`] with separate passwords.
#[must_use]
pub fn redis_actual_primary_with(stack: &Stack, pw: &Creds, t: Duration) -> Option<String> {
    for k in [ServiceKind::RedisPrimary, ServiceKind::RedisReplica] {
        if let Ok(mut c) = redis(stack, k, pw, t)
            && let Ok((role, _)) = c.role()
            && role == "master"
        {
            return Some(stack.addr(k));
        }
    }
    None
}

/// The full health probe of one service. `primary` is `listen:port` of the real Redis primary
/// (see [`redis_actual_primary`]), which each sentinel must name.
#[must_use]
pub fn health_one(
    stack: &Stack,
    kind: ServiceKind,
    pw: &str,
    t: Duration,
    primary: Option<&str>,
) -> Probe {
    health_one_with(stack, kind, &Creds::same(pw), t, primary)
}

/// [`health_one`] with separate passwords.
#[must_use]
pub fn health_one_with(
    stack: &Stack,
    kind: ServiceKind,
    pw: &Creds,
    t: Duration,
    primary: Option<&str>,
) -> Probe {
    use ServiceKind::*;
    timed(|| match kind {
        RedisPrimary | RedisReplica => redis_data(stack, kind, pw, t),
        Sentinel(_) => sentinel(stack, kind, pw, t, primary),
        TimescalePrimary | TimescaleReplica => postgres(stack, kind, pw, t),
        Prometheus => prometheus(stack, t),
        _ => ready_with(stack, kind, pw, t),
    })
}

fn redis_data(stack: &Stack, kind: ServiceKind, pw: &Creds, t: Duration) -> Probe {
    let want = if kind == ServiceKind::RedisPrimary {
        "master"
    } else {
        "slave"
    };
    let mut p = Probe::new(
        kind,
        format!("redis PING, ROLE, INFO replication at {}", stack.addr(kind)),
    );
    let mut c = match redis(stack, kind, pw, t) {
        Ok(c) => c,
        Err(e) => return p.fail(e),
    };
    let pong = match c.ping() {
        Ok(a) => a,
        Err(e) => return p.fail(format!("PING: {e}")),
    };
    let role = match c.role() {
        Ok((r, _)) => r,
        Err(e) => return p.fail(format!("ROLE: {e}")),
    };
    let info = match c.info("replication") {
        Ok(i) => i,
        Err(e) => return p.fail(format!("INFO replication: {e}")),
    };
    p.set("ping", pong.clone());
    p.set("role", role.clone());
    if role != want {
        return p.fail(format!("{pong}; ROLE {role} (expected {want})"));
    }
    if kind == ServiceKind::RedisPrimary {
        let n = info_get(&info, "connected_slaves")
            .unwrap_or("0")
            .to_string();
        p.set("connected_replicas", n.parse::<u64>().unwrap_or(0));
        p.set(
            "master_repl_offset",
            info_get(&info, "master_repl_offset")
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0),
        );
        return p.pass(format!("{pong}; ROLE master; connected_slaves:{n}"));
    }
    let link = info_get(&info, "master_link_status")
        .unwrap_or("unknown")
        .to_string();
    p.set("master_link_status", link.clone());
    let mine = info_get(&info, "slave_repl_offset").and_then(|v| v.parse::<i64>().ok());
    let theirs = redis(stack, ServiceKind::RedisPrimary, pw, t)
        .ok()
        .and_then(|mut c| c.info("replication").ok())
        .and_then(|i| info_get(&i, "master_repl_offset").and_then(|v| v.parse::<i64>().ok()));
    let lag = match (mine, theirs) {
        (Some(a), Some(b)) => Some((b - a).max(0)),
        _ => None,
    };
    p.set("offset_lag_bytes", lag.map_or(Json::Null, Json::from));
    let lag_txt = lag.map_or("unknown".to_string(), |l| l.to_string());
    if link != "up" {
        return p.fail(format!("{pong}; ROLE slave; master_link_status:{link}"));
    }
    p.pass(format!(
        "{pong}; ROLE slave; master_link_status:up; offset lag {lag_txt} B"
    ))
}

fn sentinel(
    stack: &Stack,
    kind: ServiceKind,
    pw: &Creds,
    t: Duration,
    primary: Option<&str>,
) -> Probe {
    let mut p = Probe::new(
        kind,
        format!(
            "sentinel PING, get-master-addr-by-name {MASTER_NAME}, CKQUORUM at {}",
            stack.addr(kind)
        ),
    );
    let mut c = match redis(stack, kind, pw, t) {
        Ok(c) => c,
        Err(e) => return p.fail(e),
    };
    if let Err(e) = c.ping() {
        return p.fail(format!("PING: {e}"));
    }
    let named = match c.sentinel_master_addr(MASTER_NAME) {
        Ok(Some((h, port))) => format!("{h}:{port}"),
        Ok(None) => return p.fail(format!("get-master-addr-by-name {MASTER_NAME}: (nil)")),
        Err(e) => return p.fail(format!("get-master-addr-by-name: {e}")),
    };
    p.set("master_addr", named.clone());
    if let Some(real) = primary {
        p.set("actual_primary", real.to_string());
        if named != real {
            return p.fail(format!("names {named} but the primary is {real}"));
        }
    }
    match c.sentinel_ckquorum(MASTER_NAME) {
        Ok(a) => {
            p.set("ckquorum", a.clone());
            p.pass(format!("master {named}; CKQUORUM {a}"))
        }
        Err(e) => p.fail(format!("master {named}; CKQUORUM {e}")),
    }
}

fn postgres(stack: &Stack, kind: ServiceKind, pw: &Creds, t: Duration) -> Probe {
    let standby = kind == ServiceKind::TimescaleReplica;
    let mut p = Probe::new(
        kind,
        format!(
            "postgres SELECT 1, pg_is_in_recovery(){} at {}",
            if standby {
                ", primary's pg_stat_replication"
            } else {
                ", pg_stat_replication"
            },
            stack.addr(kind)
        ),
    );
    let mut c = match PgClient::connect(&pg_config(stack, kind, &pw.pg, t, PG_DB)) {
        Ok(c) => c,
        Err(e) => return p.fail(e.to_string()),
    };
    let rec = match c
        .query_value("SELECT 1")
        .and_then(|_| c.query_value("SELECT pg_is_in_recovery()"))
    {
        Ok(v) => v.unwrap_or_default(),
        Err(e) => return p.fail(e.to_string()),
    };
    c.close();
    let in_recovery = rec == "t";
    p.set("in_recovery", in_recovery);
    if in_recovery != standby {
        return p.fail(format!(
            "SELECT 1 ok; pg_is_in_recovery() = {rec} (expected {})",
            if standby { "t" } else { "f" }
        ));
    }
    // Replication as the primary sees it: one snapshot of both LSNs.
    let rows = PgClient::connect(&pg_config(
        stack,
        ServiceKind::TimescalePrimary,
        &pw.pg,
        t,
        PG_DB,
    ))
    .and_then(|mut c| {
        c.simple_query(
            "SELECT application_name, state, \
             pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint, \
             COALESCE(EXTRACT(EPOCH FROM replay_lag) * 1000, 0)::float8 \
             FROM pg_stat_replication",
        )
    });
    match rows {
        Ok(rows) if standby => {
            // Ours sets application_name=timescale-replica; another setup's standby (compose)
            // may not: then the only standby the primary streams to is this one.
            let me = rows
                .iter()
                .find(|r| r.first().cloned().flatten().as_deref() == Some("timescale-replica"))
                .or_else(|| (rows.len() == 1).then(|| &rows[0]));
            match me {
                Some(r) => {
                    let state = r.get(1).cloned().flatten().unwrap_or_default();
                    let lag: i64 = r
                        .get(2)
                        .cloned()
                        .flatten()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(-1);
                    let lag_ms: f64 = r
                        .get(3)
                        .cloned()
                        .flatten()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0.0);
                    p.set("replication_state", state.clone());
                    p.set("replay_lag_bytes", lag);
                    p.set("replay_lag_ms", lag_ms);
                    if state == "streaming" {
                        p.pass(format!(
                            "SELECT 1 ok; pg_is_in_recovery() = t; streaming, replay lag {lag} B"
                        ))
                    } else {
                        p.fail(format!(
                            "pg_is_in_recovery() = t; replication state {state}"
                        ))
                    }
                }
                None => p.fail("pg_is_in_recovery() = t; not in the primary's pg_stat_replication"),
            }
        }
        Ok(rows) => {
            p.set("streaming_standbys", rows.len() as u64);
            p.pass(format!(
                "SELECT 1 ok; pg_is_in_recovery() = f; {} standby(s) streaming",
                rows.len()
            ))
        }
        Err(e) if standby => p.fail(format!("pg_is_in_recovery() = t; primary unreachable: {e}")),
        Err(e) => p.fail(e.to_string()),
    }
}

fn prometheus(stack: &Stack, t: Duration) -> Probe {
    let kind = ServiceKind::Prometheus;
    let base = format!("http://{}", stack.addr(kind));
    let mut p = Probe::new(
        kind,
        format!("HTTP GET {base}/-/ready and {base}/api/v1/targets"),
    );
    match http_get(&format!("{base}/-/ready"), t) {
        Ok(r) if r.status == 200 => {}
        Ok(r) => return p.fail(format!("/-/ready HTTP {}", r.status)),
        Err(e) => return p.fail(e),
    }
    let r = match http_get(&format!("{base}/api/v1/targets?state=active"), t) {
        Ok(r) if r.status == 200 => r,
        Ok(r) => return p.fail(format!("targets HTTP {}", r.status)),
        Err(e) => return p.fail(e),
    };
    let v: Json =
        match serde_json::from_str(&r.body).or_else(|_| serde_json::from_str(&dechunk(&r.body))) {
            Ok(v) => v,
            Err(e) => return p.fail(format!("targets: not JSON: {e}")),
        };
    let targets = v["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let down: Vec<String> = targets
        .iter()
        .filter(|t| t["health"] != "up")
        .map(|t| {
            format!(
                "{}/{}={}",
                t["labels"]["job"].as_str().unwrap_or("?"),
                t["labels"]["instance"].as_str().unwrap_or("?"),
                t["health"].as_str().unwrap_or("?")
            )
        })
        .collect();
    p.set("targets", targets.len() as u64);
    p.set("targets_down", json!(down));
    if targets.is_empty() {
        return p.fail("ready; no active targets yet");
    }
    if down.is_empty() {
        p.pass(format!("ready; {} targets up", targets.len()))
    } else {
        p.fail(format!("ready; targets not up: {}", down.join(", ")))
    }
}

/// Probe every service of `stack` at once (one thread each); results in the stack's order.
#[must_use]
pub fn health(stack: &Stack, pw: &str, t: Duration) -> Vec<Probe> {
    let primary =
        redis_actual_primary(stack, pw, t).unwrap_or_else(|| stack.addr(ServiceKind::RedisPrimary));
    health_with(stack, &stack.kinds(), &Creds::same(pw), t, Some(&primary))
}

/// Probe `kinds` of `stack` at once (one thread each), in that order. `primary`: the address every
/// sentinel must name (`None`: not compared, e.g. sentinels that see container addresses).
#[must_use]
pub fn health_with(
    stack: &Stack,
    kinds: &[ServiceKind],
    pw: &Creds,
    t: Duration,
    primary: Option<&str>,
) -> Vec<Probe> {
    std::thread::scope(|s| {
        let hs: Vec<_> = kinds
            .iter()
            .map(|k| s.spawn(move || health_one_with(stack, *k, pw, t, primary)))
            .collect();
        hs.into_iter()
            .zip(kinds.iter())
            .map(|(h, k)| {
                h.join()
                    .unwrap_or_else(|_| Probe::new(*k, "probe".into()).fail("probe panicked"))
            })
            .collect()
    })
}

/// Undo HTTP/1.1 chunked transfer encoding (evidence-core's `http_get` returns the raw body).
#[must_use]
pub fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size_line, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        let (Some(chunk), Some(next)) = (after.get(..size), after.get(size..)) else {
            break;
        };
        if size == 0 {
            break;
        }
        out.push_str(chunk);
        rest = next.trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dechunks() {
        assert_eq!(
            super::dechunk("4\r\n{\"a\"\r\n2\r\n:1\r\n1\r\n}\r\n0\r\n\r\n"),
            "{\"a\":1}"
        );
    }
}
