//! The load generator: writers that send sequenced events to Redis and PostgreSQL throughout a
//! drill, through the endpoints clients would use, and the accounting of what was lost.
//!
//! - A Redis writer finds the primary by asking the sentinels (`get-master-addr-by-name`) and asks
//!   again only after an error; `SET fo:<drill>:<writer>:<seq> <seq>`, then with the `replicated`
//!   ack mode `WAIT 1 100`. A PostgreSQL writer connects to the first server that is not in
//!   recovery and runs `INSERT INTO fo_events (writer, seq)`; its acknowledgement counts as
//!   replicated when the server has a synchronous standby configured.
//! - A pinned writer writes to one fixed server (an application on the old primary's side of a
//!   partition), which is how split-brain writes are seen.
//! - Every sequence number is used once: an error moves on to the next number (the failed one is
//!   "in doubt" if it shows up afterwards). Client timeouts are explicit (a partition is a hang).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use stack_core::pg::{PgClient, PgConfig};
use stack_core::redis::RedisClient;
use stack_core::stack::MASTER_NAME;

use crate::evidence::StoreFigures;
use crate::topology::{EVENTS_TABLE, redis_at};

/// What counts as acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// The primary said OK.
    Local,
    /// Redis `WAIT 1` confirmed a replica has it; PostgreSQL committed with a synchronous standby.
    Replicated,
}

impl AckMode {
    /// `local` or `replicated`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Local => "local",
            AckMode::Replicated => "replicated",
        }
    }
}

/// One acknowledged write.
#[derive(Debug, Clone)]
pub struct Ack {
    /// Sequence number.
    pub seq: u64,
    /// When the server's OK arrived (before any `WAIT`).
    pub at: Instant,
    /// Wall clock of `at`, epoch ns.
    pub wall_ns: i64,
    /// The server that acknowledged (`ip:port`).
    pub server: String,
    /// Replicated as well.
    pub replicated: bool,
}

/// What one writer did.
#[derive(Debug, Default)]
pub struct WriterLog {
    /// Acknowledged writes in order.
    pub acks: Vec<Ack>,
    /// Sequence numbers that failed or timed out.
    pub failed: Vec<u64>,
    /// The last error seen.
    pub last_error: String,
    /// Errors seen.
    pub errors: u64,
}

/// Which store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// Redis.
    Redis,
    /// PostgreSQL.
    Pg,
}

/// How a writer finds its server.
#[derive(Debug, Clone)]
pub enum Target {
    /// Redis through the sentinels (their addresses).
    Sentinels(Vec<String>),
    /// PostgreSQL: the first of these servers that is not in recovery.
    PgCandidates(Vec<(String, u16)>),
    /// One fixed server (`ip:port`).
    Pinned(String),
}

/// A writer's settings.
#[derive(Debug, Clone)]
pub struct WriterSpec {
    /// `w1`, `w2`.
    pub name: String,
    /// The drill id (keys and rows carry it).
    pub drill: String,
    /// Which store.
    pub store: Store,
    /// Where to write.
    pub target: Target,
    /// The password.
    pub password: String,
    /// Ack mode.
    pub ack_mode: AckMode,
    /// Socket timeout of every call.
    pub timeout: Duration,
    /// Pause between writes (0: as fast as the server answers).
    pub pace: Duration,
    /// The namespace to enter first (a pinned writer on the old primary's host).
    pub netns: Option<String>,
}

impl WriterSpec {
    /// The Redis key prefix / PostgreSQL writer column of this writer.
    #[must_use]
    pub fn tag(&self) -> String {
        format!("fo:{}:{}", self.drill, self.name)
    }
}

/// A running writer.
pub struct Writer {
    /// Its settings.
    pub spec: WriterSpec,
    /// Its log (shared with the thread).
    pub log: Arc<Mutex<WriterLog>>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Start writing in a thread.
    #[must_use]
    pub fn start(spec: WriterSpec) -> Writer {
        let log = Arc::new(Mutex::new(WriterLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s, sp) = (log.clone(), stop.clone(), spec.clone());
        let handle = std::thread::spawn(move || {
            if let Some(ns) = &sp.netns
                && let Err(e) = crate::netns::enter(ns)
            {
                lock(&l).last_error = e.to_string();
                return;
            }
            match sp.store {
                Store::Redis => redis_loop(&sp, &l, &s),
                Store::Pg => pg_loop(&sp, &l, &s),
            }
        });
        Writer {
            spec,
            log,
            stop,
            handle: Some(handle),
        }
    }

    /// Acknowledged writes so far (per `ack_mode`).
    #[must_use]
    pub fn acked(&self) -> usize {
        let mode = self.spec.ack_mode;
        lock(&self.log)
            .acks
            .iter()
            .filter(|a| mode == AckMode::Local || a.replicated)
            .count()
    }

    /// Stop and wait for the thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Lock a log (a panicked writer leaves its log readable).
pub fn lock(l: &Mutex<WriterLog>) -> std::sync::MutexGuard<'_, WriterLog> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ns() -> i64 {
    evidence_core::time::now_ns()
}

/// Ask the sentinels, in order, for the primary's `ip:port`.
#[must_use]
pub fn ask_sentinels(sentinels: &[String], pw: &str, t: Duration) -> Option<String> {
    for s in sentinels {
        if let Ok(mut c) = redis_at(s, pw, t)
            && let Ok(Some((h, p))) = c.sentinel_master_addr(MASTER_NAME)
        {
            return Some(format!("{h}:{p}"));
        }
    }
    None
}

fn redis_loop(sp: &WriterSpec, log: &Mutex<WriterLog>, stop: &AtomicBool) {
    let mut conn: Option<(RedisClient, String)> = None;
    let mut seq = 0u64;
    let tag = sp.tag();
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            let addr = match &sp.target {
                Target::Pinned(a) => Some(a.clone()),
                Target::Sentinels(s) => ask_sentinels(s, &sp.password, sp.timeout),
                Target::PgCandidates(_) => None,
            };
            conn = addr.and_then(|a| {
                redis_at(&a, &sp.password, sp.timeout)
                    .map_err(|e| note(log, &e))
                    .ok()
                    .map(|c| (c, a))
            });
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        }
        let Some((c, addr)) = conn.as_mut() else {
            continue;
        };
        let server = addr.clone();
        seq += 1;
        let key = format!("{tag}:{seq}");
        let r = c.set(key.as_bytes(), seq.to_string().as_bytes());
        let at = Instant::now();
        let wall_ns = now_ns();
        match r {
            Ok(()) => {
                let mut replicated = false;
                if sp.ack_mode == AckMode::Replicated {
                    match c.wait(1, 100) {
                        Ok(n) => replicated = n >= 1,
                        Err(e) => {
                            note(log, &e.to_string());
                            conn = None;
                        }
                    }
                }
                lock(log).acks.push(Ack {
                    seq,
                    at,
                    wall_ns,
                    server,
                    replicated,
                });
            }
            Err(e) => {
                let mut l = lock(log);
                l.failed.push(seq);
                l.errors += 1;
                l.last_error = e.to_string();
                drop(l);
                conn = None;
            }
        }
        if !sp.pace.is_zero() {
            std::thread::sleep(sp.pace);
        }
    }
}

fn note(log: &Mutex<WriterLog>, e: &str) {
    let mut l = lock(log);
    l.errors += 1;
    l.last_error = e.to_string();
}

fn pg_connect(sp: &WriterSpec, host: &str, port: u16) -> Result<(PgClient, bool), String> {
    let cfg = PgConfig::new(
        host,
        port,
        stack_core::stack::PG_USER,
        stack_core::stack::PG_DB,
    )
    .password(&sp.password)
    .timeout(sp.timeout);
    let mut c = PgClient::connect(&cfg).map_err(|e| format!("{host}:{port}: {e}"))?;
    let rec = c
        .query_value("SELECT pg_is_in_recovery()::text || ',' || current_setting('synchronous_standby_names')")
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .unwrap_or_default();
    let (r, names) = rec.split_once(',').unwrap_or((rec.as_str(), ""));
    if r != "false" {
        return Err(format!("{host}:{port}: in recovery"));
    }
    Ok((c, !names.trim().is_empty()))
}

fn pg_loop(sp: &WriterSpec, log: &Mutex<WriterLog>, stop: &AtomicBool) {
    let mut conn: Option<(PgClient, String, bool)> = None;
    let mut seq = 0u64;
    let tag = sp.tag();
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            let cands: Vec<(String, u16)> = match &sp.target {
                Target::PgCandidates(c) => c.clone(),
                Target::Pinned(a) => a
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
                    .into_iter()
                    .collect(),
                Target::Sentinels(_) => Vec::new(),
            };
            for (h, p) in cands {
                match pg_connect(sp, &h, p) {
                    Ok((c, sync)) => {
                        conn = Some((c, format!("{h}:{p}"), sync));
                        break;
                    }
                    Err(e) => note(log, &e),
                }
            }
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        }
        let Some((c, addr, sync)) = conn.as_mut() else {
            continue;
        };
        seq += 1;
        let r = c.simple_query(&format!(
            "INSERT INTO {EVENTS_TABLE} (writer, seq) VALUES ('{tag}', {seq})"
        ));
        let at = Instant::now();
        let wall_ns = now_ns();
        match r {
            Ok(_) => {
                let ack = Ack {
                    seq,
                    at,
                    wall_ns,
                    server: addr.clone(),
                    replicated: sp.ack_mode == AckMode::Replicated && *sync,
                };
                lock(log).acks.push(ack);
            }
            Err(e) => {
                let mut l = lock(log);
                l.failed.push(seq);
                l.errors += 1;
                l.last_error = e.to_string();
                drop(l);
                conn = None;
            }
        }
        if !sp.pace.is_zero() {
            std::thread::sleep(sp.pace);
        }
    }
}

/// The sequence numbers of `writer_tag` present on a Redis server.
pub fn redis_present(addr: &str, pw: &str, tag: &str) -> Result<HashSet<u64>, String> {
    let mut c = redis_at(addr, pw, Duration::from_secs(10))?;
    let v = c
        .cmd_str(&["KEYS", &format!("{tag}:*")])
        .map_err(|e| format!("{addr}: KEYS: {e}"))?;
    Ok(v.items()
        .iter()
        .filter_map(|k| k.as_text()?.rsplit_once(':')?.1.parse().ok())
        .collect())
}

/// The sequence numbers of `writer_tag` present on a PostgreSQL server.
pub fn pg_present(cfg: &PgConfig, tag: &str) -> Result<HashSet<u64>, String> {
    let mut c = PgClient::connect(cfg).map_err(|e| e.to_string())?;
    let rows = c
        .simple_query(&format!(
            "SELECT seq FROM {EVENTS_TABLE} WHERE writer = '{tag}'"
        ))
        .map_err(|e| e.to_string())?;
    Ok(rows
        .iter()
        .filter_map(|r| r.first()?.as_deref()?.parse().ok())
        .collect())
}

/// How many of the last `n` sequence numbers acknowledged (per `mode`) by `log` are missing on a
/// Redis server (`EXISTS` with every key at once). Returns (checked, missing).
pub fn redis_lag(
    log: &Mutex<WriterLog>,
    mode: AckMode,
    tag: &str,
    addr: &str,
    pw: &str,
    n: usize,
) -> Result<(usize, usize), String> {
    let seqs = last_acked(log, mode, n);
    if seqs.is_empty() {
        return Ok((0, 0));
    }
    let mut c = redis_at(addr, pw, Duration::from_secs(2))?;
    let keys: Vec<String> = seqs.iter().map(|s| format!("{tag}:{s}")).collect();
    let mut args: Vec<&[u8]> = vec![b"EXISTS"];
    args.extend(keys.iter().map(|k| k.as_bytes()));
    let v = c
        .cmd_ok(&args)
        .map_err(|e| format!("{addr}: EXISTS: {e}"))?;
    let present = v
        .as_text()
        .and_then(|t| t.parse::<usize>().ok())
        .ok_or_else(|| format!("{addr}: EXISTS answered {}", v.describe()))?;
    Ok((seqs.len(), seqs.len().saturating_sub(present)))
}

/// As [`redis_lag`] for PostgreSQL (one `count(*)` over the range on the standby).
pub fn pg_lag(
    log: &Mutex<WriterLog>,
    mode: AckMode,
    tag: &str,
    cfg: &PgConfig,
    n: usize,
) -> Result<(usize, usize), String> {
    let seqs = last_acked(log, mode, n);
    let (Some(lo), Some(hi)) = (seqs.iter().min(), seqs.iter().max()) else {
        return Ok((0, 0));
    };
    let mut c = PgClient::connect(cfg).map_err(|e| e.to_string())?;
    let rows = c
        .simple_query(&format!(
            "SELECT seq FROM {EVENTS_TABLE} WHERE writer = '{tag}' AND seq BETWEEN {lo} AND {hi}"
        ))
        .map_err(|e| e.to_string())?;
    let present: HashSet<u64> = rows
        .iter()
        .filter_map(|r| r.first()?.as_deref()?.parse().ok())
        .collect();
    Ok((
        seqs.len(),
        seqs.iter().filter(|s| !present.contains(s)).count(),
    ))
}

fn last_acked(log: &Mutex<WriterLog>, mode: AckMode, n: usize) -> Vec<u64> {
    let l = lock(log);
    l.acks
        .iter()
        .rev()
        .filter(|a| mode == AckMode::Local || a.replicated)
        .take(n)
        .map(|a| a.seq)
        .collect()
}

/// Count one writer's outcome against the sequence numbers present on the final primary.
///
/// - `lost_acked`: acknowledged (per `mode`) and missing, except split-brain ones;
/// - `split_brain`: acknowledged (per `mode`) by a server other than `final_primary` at or after
///   `fence_at` (when fencing began or the fault hit) and missing;
/// - `lost_replicated`: acknowledged as replicated and missing;
/// - `in_doubt`: failed for the client but present.
pub fn account(
    fig: &mut StoreFigures,
    log: &WriterLog,
    present: &HashSet<u64>,
    mode: AckMode,
    final_primary: &str,
    fence_at: Instant,
) {
    for a in &log.acks {
        let counts = mode == AckMode::Local || a.replicated;
        if counts {
            fig.acked += 1;
        }
        if a.replicated {
            fig.acked_replicated += 1;
        }
        if present.contains(&a.seq) {
            continue;
        }
        if a.replicated {
            fig.lost_replicated += 1;
        }
        if !counts {
            continue;
        }
        if a.server != final_primary && a.at >= fence_at {
            fig.split_brain += 1;
        } else {
            fig.lost_acked += 1;
        }
    }
    fig.in_doubt += log.failed.iter().filter(|s| present.contains(s)).count() as u64;
}

/// The client-visible write outage of a writer that follows the primary: from its last
/// acknowledged write (the server's OK) before `t0` to its first on `new_primary` after `t0`.
/// Returns (seconds, last-before wall ns, first-after wall ns).
#[must_use]
pub fn outage(log: &WriterLog, t0: Instant, new_primary: &str) -> Option<(f64, i64, i64)> {
    let before = log.acks.iter().rev().find(|a| a.at <= t0)?;
    let after = log
        .acks
        .iter()
        .find(|a| a.at > t0 && a.server == new_primary)?;
    Some((
        after.at.duration_since(before.at).as_secs_f64(),
        before.wall_ns,
        after.wall_ns,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(seq: u64, at: Instant, server: &str, replicated: bool) -> Ack {
        Ack {
            seq,
            at,
            wall_ns: 0,
            server: server.into(),
            replicated,
        }
    }

    #[test]
    fn accounting_buckets() {
        let t = Instant::now();
        let later = t + Duration::from_millis(10);
        let log = WriterLog {
            acks: vec![
                ack(1, t, "old", true),
                ack(2, t, "old", false),
                ack(3, later, "old", false),
                ack(5, later, "new", false),
            ],
            failed: vec![4, 6],
            ..WriterLog::default()
        };
        let present: HashSet<u64> = [1, 4, 5].into_iter().collect();
        let mut f = StoreFigures::default();
        account(&mut f, &log, &present, AckMode::Local, "new", later);
        assert_eq!(
            (f.acked, f.lost_acked, f.split_brain, f.in_doubt),
            (4, 1, 1, 1)
        );
        let mut f = StoreFigures::default();
        account(&mut f, &log, &present, AckMode::Replicated, "new", later);
        assert_eq!(
            (f.acked, f.lost_acked, f.split_brain, f.lost_replicated),
            (1, 0, 0, 0)
        );
        let (o, _, _) = outage(&log, t + Duration::from_millis(1), "new").unwrap();
        assert!((o - 0.010).abs() < 1e-6);
    }
}
