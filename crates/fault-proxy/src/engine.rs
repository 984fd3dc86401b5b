//! The proxy engine: listeners, connections, and the faults acting on them.
//!
//! Threads, blocking I/O: one accept thread per pair, one thread per connection while no fault
//! covers its pair and its traffic is small messages (the one-thread phase, `one_thread`), two
//! pump threads per connection (one per direction) from the first fault, stream chunk or blocked
//! write on, a reaper thread for TTL expiry, and a delivery thread per connection direction only
//! while a latency fault has chunks in flight.
//!
//! One-thread phase: the connection's thread waits in poll(2) on both sockets, forwards what is
//! readable, and for `spin` (default 100 µs, `--spin-us`) after each forwarded chunk keeps
//! polling both sockets without sleeping (yielding the CPU between polls), so the reply to a
//! request it just forwarded is forwarded by a thread that is still awake: a pump per direction
//! costs two cross-CPU thread wake-ups per round trip, tens of microseconds each on a VM whose
//! idle vCPUs halt. An idle connection sleeps in poll(2) and costs no CPU.
//!
//! Pumps, hot path (no fault on the pair and direction): `read` up to 64 KiB into the pump's
//! buffer, one atomic load of the pair's fault mask, `write` the bytes, one relaxed counter add:
//! no allocation and no lock per chunk. While reads fill the whole buffer (a bulk stream) the pump
//! switches to `splice` socket → pipe → socket (no copy to user space) and back to copying when a
//! chunk is small again (copying has the lower latency for small messages). Only when the mask
//! says a fault covers the direction does the pump take the fault table's lock (the slow path).
//!
//! Aborting a connection (reset faults, an RST from either peer, a write error) sets SO_LINGER 0 on
//! both sockets and shuts their read side down: that wakes the pumps blocked in `read` without
//! sending anything; the last one to leave closes the sockets, and the kernel sends an RST to both
//! peers. Sockets carry a 250 ms send timeout so a pump blocked writing to a full peer also notices.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{SpliceFFlags, splice};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::os::fd::AsFd;

use crate::events::{ClearReason, Event, EventLog, PairAddr};
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Result};
use reconnect_core::control::{FaultInfo, PairStatus, Request, Response};
use reconnect_core::spec::{Fault, MAX_MS, PairSpec, StallPer, Way};

/// Size of each pump's buffer.
pub const BUF_SIZE: usize = 64 * 1024;

const UP: u8 = 1;
const DOWN: u8 = 2;
const REFUSE: u8 = 4;
const HOLD_NEW: u8 = 8;
/// A spliced chunk smaller than this ends bulk mode (back to copying, for latency).
const BULK_MIN: usize = BUF_SIZE / 4;
/// How often a held pump re-checks its connection even without a fault change.
const HOLD_TICK: Duration = Duration::from_millis(100);
const SEND_TIMEOUT: Duration = Duration::from_millis(250);
const NAP: Duration = Duration::from_millis(50);
/// Most bytes a latency fault holds in flight per connection direction before the reader waits.
const MAX_IN_FLIGHT: usize = 8 << 20;
/// Default spin of the one-thread phase after each forwarded chunk (chosen by measurement).
pub const DEFAULT_SPIN: Duration = Duration::from_micros(100);

fn way_bit(way: Way) -> u8 {
    match way {
        Way::Upstream => UP,
        Way::Downstream => DOWN,
    }
}

/// Engine options.
#[derive(Debug)]
pub struct Options {
    /// Where apply/clear/expiry events go.
    pub event_log: Option<EventLog>,
    /// Upstream connect timeout.
    pub connect_timeout: Duration,
    /// Forward with splice(2) (zero copy) when no fault is active; `false` copies through a
    /// buffer (for comparisons).
    pub splice: bool,
    /// One-thread phase: how long the connection's thread keeps polling both sockets without
    /// sleeping after it forwarded a chunk (`None`: no one-thread phase, a pump per direction
    /// from the start).
    pub spin: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            event_log: None,
            connect_timeout: Duration::from_secs(5),
            splice: true,
            spin: Some(DEFAULT_SPIN),
        }
    }
}

/// A running proxy. Share it with `Arc`; stop it with [`Proxy::shutdown`].
#[derive(Debug)]
pub struct Proxy {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Debug)]
struct Inner {
    pairs: Vec<Arc<PairState>>,
    table: Mutex<Table>,
    changed: Condvar,
    stopping: AtomicBool,
    events: Option<EventLog>,
    connect_timeout: Duration,
    splice: bool,
    spin: Option<Duration>,
    next_conn: AtomicU64,
}

#[derive(Debug, Default)]
struct Table {
    next_id: u64,
    faults: Vec<Active>,
}

#[derive(Debug)]
struct Active {
    info: FaultInfo,
    pair: usize,
    expires_at: Option<Instant>,
}

#[derive(Debug)]
struct PairState {
    idx: usize,
    /// A handle on the listener, to wake the accept thread at shutdown.
    waker: Option<TcpListener>,
    name: String,
    listen: SocketAddr,
    upstream: SocketAddr,
    upstream_text: String,
    mask: AtomicU8,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    active: AtomicU64,
    total: AtomicU64,
    refused: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

impl PairState {
    fn bytes(&self, way: Way) -> &AtomicU64 {
        match way {
            Way::Upstream => &self.bytes_up,
            Way::Downstream => &self.bytes_down,
        }
    }
}

#[derive(Debug)]
struct Conn {
    id: u64,
    client: TcpStream,
    server: TcpStream,
    aborted: AtomicBool,
    parts: AtomicUsize,
}

impl Conn {
    /// RST both peers: linger 0, then wake the pumps (shutdown of the read side sends nothing).
    fn abort(&self) {
        self.aborted.store(true, Ordering::SeqCst);
        for s in [&self.client, &self.server] {
            let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
            let _ = s.shutdown(Shutdown::Read);
        }
    }

    fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn rst(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

impl Proxy {
    /// Bind every pair's listener and start forwarding.
    ///
    /// # Errors
    /// `Failed` when a listen address cannot be bound (in use, not local, ...).
    pub fn start(pairs: &[PairSpec], opts: Options) -> Result<Arc<Proxy>> {
        let mut listeners = Vec::new();
        let mut states = Vec::new();
        for (idx, p) in pairs.iter().enumerate() {
            let l = TcpListener::bind(p.listen).map_err(|e| {
                EvidenceError::failed(format!(
                    "pair {}: cannot listen on {}: {e}",
                    p.name, p.listen
                ))
            })?;
            let listen = l
                .local_addr()
                .map_err(|e| EvidenceError::failed(format!("pair {}: {e}", p.name)))?;
            states.push(Arc::new(PairState {
                idx,
                waker: l.try_clone().ok(),
                name: p.name.clone(),
                listen,
                upstream: p.upstream,
                upstream_text: p.upstream_text.clone(),
                mask: AtomicU8::new(0),
                conns: Mutex::new(HashMap::new()),
                active: AtomicU64::new(0),
                total: AtomicU64::new(0),
                refused: AtomicU64::new(0),
                bytes_up: AtomicU64::new(0),
                bytes_down: AtomicU64::new(0),
            }));
            listeners.push(l);
        }
        let inner = Arc::new(Inner {
            pairs: states,
            table: Mutex::new(Table {
                next_id: 1,
                faults: Vec::new(),
            }),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            events: opts.event_log,
            connect_timeout: opts.connect_timeout,
            splice: opts.splice,
            spin: opts.spin,
            next_conn: AtomicU64::new(1),
        });
        let mut threads = Vec::new();
        for (l, pair) in listeners.into_iter().zip(inner.pairs.iter()) {
            let inner2 = Arc::clone(&inner);
            let pair = Arc::clone(pair);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("accept-{}", pair.name))
                    .spawn(move || accept_loop(&inner2, &pair, &l))
                    .map_err(|e| EvidenceError::failed(format!("cannot start thread: {e}")))?,
            );
        }
        let inner2 = Arc::clone(&inner);
        threads.push(
            std::thread::Builder::new()
                .name("reaper".into())
                .spawn(move || reaper(&inner2))
                .map_err(|e| EvidenceError::failed(format!("cannot start thread: {e}")))?,
        );
        Ok(Arc::new(Proxy {
            inner,
            threads: Mutex::new(threads),
        }))
    }

    /// The pairs with their real listen addresses.
    #[must_use]
    pub fn pairs(&self) -> Vec<PairAddr> {
        self.inner
            .pairs
            .iter()
            .map(|p| PairAddr {
                name: p.name.clone(),
                listen: p.listen.to_string(),
                upstream: p.upstream_text.clone(),
            })
            .collect()
    }

    /// Write an event to the event log, if there is one.
    pub fn log(&self, ev: &Event) {
        if let Some(l) = &self.inner.events {
            l.write(ev);
        }
    }

    /// Carry out one control request.
    #[must_use]
    pub fn handle(&self, req: &Request) -> Response {
        match req {
            Request::Apply {
                pair,
                fault,
                tag,
                ttl_ms,
            } => self.apply(pair, fault, tag, *ttl_ms),
            Request::Clear { id, tag, pair } => {
                if let Some(e) = self.selector_problem("clear", *id, tag.as_ref(), pair.as_ref()) {
                    return Response::error("clear", e);
                }
                self.clear(
                    |a| selected(a, *id, tag.as_ref(), pair.as_ref()),
                    ClearReason::Clear,
                    "clear",
                )
            }
            Request::Renew {
                id,
                tag,
                pair,
                ttl_ms,
            } => {
                if let Some(e) = self.selector_problem("renew", *id, tag.as_ref(), pair.as_ref()) {
                    return Response::error("renew", e);
                }
                if *ttl_ms == 0 || *ttl_ms > MAX_MS {
                    return Response::error(
                        "renew",
                        format!("renew: ttl_ms: expected 1..={MAX_MS}, found {ttl_ms}"),
                    );
                }
                self.renew(|a| selected(a, *id, tag.as_ref(), pair.as_ref()), *ttl_ms)
            }
            Request::Reset => self.clear(|_| true, ClearReason::Reset, "reset"),
            Request::List => {
                let t = lock(&self.inner.table);
                Response {
                    ok: true,
                    op: "list".into(),
                    ts_ns: now_ns(),
                    faults: Some(t.faults.iter().map(|a| a.info.clone()).collect()),
                    ..Response::default()
                }
            }
            Request::Status => self.status(),
        }
    }

    /// What is wrong with a clear/renew selector, if anything.
    fn selector_problem(
        &self,
        op: &str,
        id: Option<u64>,
        tag: Option<&String>,
        pair: Option<&String>,
    ) -> Option<String> {
        if id.is_none() && tag.is_none() && pair.is_none() {
            return Some(format!("{op}: expected id, tag or pair"));
        }
        pair.filter(|p| self.pair_index(p).is_none())
            .map(|p| self.unknown_pair(p))
    }

    /// Push the expiry of the selected faults to now + `ttl_ms` (a lease the injector renews while
    /// it lives).
    fn renew(&self, select: impl Fn(&Active) -> bool, ttl_ms: u64) -> Response {
        let mut t = lock(&self.inner.table);
        let ts = now_ns();
        let ttl = Duration::from_millis(ttl_ms);
        let expires_ts_ns = ts.saturating_add(i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX));
        let at = Instant::now() + ttl;
        let mut renewed = Vec::new();
        for a in t.faults.iter_mut().filter(|a| select(a)) {
            a.expires_at = Some(at);
            a.info.ttl_ms = Some(ttl_ms);
            a.info.expires_ts_ns = Some(expires_ts_ns);
            renewed.push(a.info.clone());
        }
        if let Some(l) = &self.inner.events {
            for f in &renewed {
                l.write(&Event::Renewed {
                    ts_ns: ts,
                    id: f.id,
                    pair: f.pair.clone(),
                    tag: f.tag.clone(),
                    ttl_ms,
                    expires_ts_ns,
                });
            }
        }
        drop(t);
        self.inner.changed.notify_all();
        Response {
            ok: true,
            op: "renew".into(),
            ts_ns: ts,
            renewed: Some(renewed),
            ..Response::default()
        }
    }

    fn pair_index(&self, name: &str) -> Option<usize> {
        self.inner.pairs.iter().position(|p| p.name == name)
    }

    fn unknown_pair(&self, name: &str) -> String {
        let names: Vec<&str> = self.inner.pairs.iter().map(|p| p.name.as_str()).collect();
        format!(
            "unknown pair {name:?} (this proxy has: {})",
            names.join(", ")
        )
    }

    fn apply(&self, pair: &str, fault: &Fault, tag: &str, ttl_ms: Option<u64>) -> Response {
        if let Err(e) = fault.validate() {
            return Response::error("apply", e.to_string());
        }
        if tag.trim().is_empty() {
            return Response::error("apply", "apply: tag: expected the drill id, found \"\"");
        }
        if let Some(t) = ttl_ms
            && (t == 0 || t > MAX_MS)
        {
            return Response::error(
                "apply",
                format!("apply: ttl_ms: expected 1..={MAX_MS}, found {t}"),
            );
        }
        let Some(idx) = self.pair_index(pair) else {
            return Response::error("apply", self.unknown_pair(pair));
        };
        let inner = &self.inner;
        let p = &inner.pairs[idx];
        let mut t = lock(&inner.table);
        let id = t.next_id;
        t.next_id += 1;
        t.faults.push(Active {
            info: FaultInfo {
                id,
                pair: pair.to_string(),
                tag: tag.to_string(),
                fault: fault.clone(),
                applied_ts_ns: 0,
                ttl_ms,
                expires_ts_ns: None,
            },
            pair: idx,
            expires_at: None,
        });
        inner.recompute_masks(&t);
        // The fault acts from here on (new connections are refused; then the open ones are
        // reset): take the time before the RSTs, so that a client that sees its RST at once
        // never logs the loss before the moment the fault is recorded as taking effect.
        let ts = now_ns();
        let mut reset_n = 0;
        if matches!(fault, Fault::Reset { .. }) {
            let conns: Vec<Arc<Conn>> = lock(&p.conns).values().cloned().collect();
            for c in conns {
                if !c.is_aborted() {
                    c.abort();
                    reset_n += 1;
                }
            }
        }
        let ttl = ttl_ms.map(Duration::from_millis);
        let expires_ts_ns =
            ttl.map(|d| ts.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)));
        if let Some(a) = t.faults.last_mut() {
            a.info.applied_ts_ns = ts;
            a.info.expires_ts_ns = expires_ts_ns;
            a.expires_at = ttl.map(|d| Instant::now() + d);
        }
        if let Some(l) = &inner.events {
            l.write(&Event::Applied {
                ts_ns: ts,
                id,
                pair: pair.to_string(),
                tag: tag.to_string(),
                fault: fault.clone(),
                ttl_ms,
                expires_ts_ns,
                reset_connections: reset_n,
            });
        }
        drop(t);
        inner.changed.notify_all();
        Response {
            ok: true,
            op: "apply".into(),
            ts_ns: ts,
            id: Some(id),
            expires_ts_ns,
            reset_connections: matches!(fault, Fault::Reset { .. }).then_some(reset_n),
            ..Response::default()
        }
    }

    fn clear(&self, select: impl Fn(&Active) -> bool, reason: ClearReason, op: &str) -> Response {
        let (ts, cleared) = self.inner.remove_faults(select, reason);
        Response {
            ok: true,
            op: op.into(),
            ts_ns: ts,
            cleared: Some(cleared),
            ..Response::default()
        }
    }

    fn status(&self) -> Response {
        let t = lock(&self.inner.table);
        let pairs = self
            .inner
            .pairs
            .iter()
            .map(|p| PairStatus {
                name: p.name.clone(),
                listen: p.listen.to_string(),
                upstream: p.upstream_text.clone(),
                connections_active: p.active.load(Ordering::Relaxed),
                connections_total: p.total.load(Ordering::Relaxed),
                connections_refused: p.refused.load(Ordering::Relaxed),
                bytes_upstream: p.bytes_up.load(Ordering::Relaxed),
                bytes_downstream: p.bytes_down.load(Ordering::Relaxed),
                faults: t.faults.iter().filter(|a| a.pair == p.idx).count() as u64,
            })
            .collect();
        Response {
            ok: true,
            op: "status".into(),
            ts_ns: now_ns(),
            pairs: Some(pairs),
            ..Response::default()
        }
    }

    /// Stop: close the listeners, remove every fault (logged with reason `shutdown`), close the
    /// connections, and log `proxy.stopped` with `signal`.
    pub fn shutdown(&self, signal: &str) {
        let inner = &self.inner;
        if inner.stopping.swap(true, Ordering::SeqCst) {
            return;
        }
        inner.changed.notify_all();
        for p in &inner.pairs {
            // Wake the blocked accept (shutdown of a listening socket makes accept fail on
            // Linux; a connection as a fallback); it sees `stopping` and drops the listener.
            match &p.waker {
                Some(l) => {
                    let _ = socket2::SockRef::from(l).shutdown(Shutdown::Read);
                }
                None => {
                    let _ = TcpStream::connect_timeout(&p.listen, Duration::from_secs(1));
                }
            }
        }
        let threads: Vec<JoinHandle<()>> = lock(&self.threads).drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
        inner.remove_faults(|_| true, ClearReason::Shutdown);
        for p in &inner.pairs {
            for c in lock(&p.conns).values() {
                let _ = c.client.shutdown(Shutdown::Both);
                let _ = c.server.shutdown(Shutdown::Both);
            }
        }
        inner.changed.notify_all();
        self.log(&Event::Stopped {
            ts_ns: now_ns(),
            signal: signal.to_string(),
        });
    }
}

impl Inner {
    fn recompute_masks(&self, t: &Table) {
        for p in &self.pairs {
            let mut m = 0;
            for a in t.faults.iter().filter(|a| a.pair == p.idx) {
                let d = a.info.fault.direction();
                for w in Way::ALL {
                    if d.covers(w) {
                        m |= way_bit(w);
                    }
                }
                match a.info.fault {
                    Fault::Reset { .. } => m |= REFUSE,
                    Fault::Blackhole { .. } => m |= HOLD_NEW,
                    _ => {}
                }
            }
            p.mask.store(m, Ordering::SeqCst);
        }
    }

    fn remove_faults(
        &self,
        select: impl Fn(&Active) -> bool,
        reason: ClearReason,
    ) -> (i64, Vec<FaultInfo>) {
        let mut t = lock(&self.table);
        let (gone, kept): (Vec<Active>, Vec<Active>) = t.faults.drain(..).partition(select);
        t.faults = kept;
        self.recompute_masks(&t);
        let ts = now_ns();
        let cleared: Vec<FaultInfo> = gone.into_iter().map(|a| a.info).collect();
        if let Some(l) = &self.events {
            for f in &cleared {
                l.write(&Event::Cleared {
                    ts_ns: ts,
                    id: f.id,
                    pair: f.pair.clone(),
                    tag: f.tag.clone(),
                    fault: f.fault.clone(),
                    reason,
                    applied_ts_ns: f.applied_ts_ns,
                });
            }
        }
        drop(t);
        self.changed.notify_all();
        (ts, cleared)
    }

    /// Wait on the fault table for up to `d` (woken by any change).
    fn wait_change<'a>(&self, t: MutexGuard<'a, Table>, d: Duration) -> MutexGuard<'a, Table> {
        self.changed
            .wait_timeout(t, d)
            .unwrap_or_else(PoisonError::into_inner)
            .0
    }
}

fn selected(a: &Active, id: Option<u64>, tag: Option<&String>, pair: Option<&String>) -> bool {
    id.is_none_or(|i| a.info.id == i)
        && tag.is_none_or(|t| &a.info.tag == t)
        && pair.is_none_or(|p| &a.info.pair == p)
}

fn reaper(inner: &Inner) {
    let mut t = lock(&inner.table);
    loop {
        if inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        let now = Instant::now();
        if t.faults
            .iter()
            .any(|a| a.expires_at.is_some_and(|e| e <= now))
        {
            drop(t);
            inner.remove_faults(
                |a| a.expires_at.is_some_and(|e| e <= now),
                ClearReason::Expired,
            );
            t = lock(&inner.table);
            continue;
        }
        let next = t.faults.iter().filter_map(|a| a.expires_at).min();
        let wait = next.map_or(Duration::from_secs(1), |n| n.saturating_duration_since(now));
        t = inner.wait_change(t, wait.min(Duration::from_secs(1)));
    }
}

fn accept_loop(inner: &Arc<Inner>, pair: &Arc<PairState>, listener: &TcpListener) {
    for s in listener.incoming() {
        if inner.stopping.load(Ordering::SeqCst) {
            return;
        }
        let s = match s {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                if e.kind() != ErrorKind::Interrupted {
                    std::thread::sleep(Duration::from_millis(50));
                }
                continue;
            }
        };
        if pair.mask.load(Ordering::SeqCst) & REFUSE != 0 {
            rst(&s);
            pair.refused.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let inner2 = Arc::clone(inner);
        let pair2 = Arc::clone(pair);
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{}", pair.name))
            .spawn(move || handle_conn(&inner2, &pair2, s));
        if let Err(e) = spawned {
            evidence_core::cli::warn(&format!("pair {}: cannot start thread: {e}", pair.name));
        }
    }
}

fn handle_conn(inner: &Arc<Inner>, pair: &Arc<PairState>, client: TcpStream) {
    // A blackhole holds new connections unconnected until it is gone (as a dropped SYN would).
    if pair.mask.load(Ordering::SeqCst) & HOLD_NEW != 0 {
        let mut t = lock(&inner.table);
        while pair.mask.load(Ordering::SeqCst) & HOLD_NEW != 0 {
            if inner.stopping.load(Ordering::SeqCst) {
                return;
            }
            t = inner.wait_change(t, HOLD_TICK);
        }
    }
    if pair.mask.load(Ordering::SeqCst) & REFUSE != 0 {
        rst(&client);
        pair.refused.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let server = match TcpStream::connect_timeout(&pair.upstream, inner.connect_timeout) {
        Ok(s) => s,
        Err(e) => {
            evidence_core::cli::warn(&format!(
                "pair {}: cannot connect to upstream {}: {e}; resetting the client",
                pair.name, pair.upstream_text
            ));
            rst(&client);
            return;
        }
    };
    let setup = || -> io::Result<[TcpStream; 4]> {
        for s in [&client, &server] {
            s.set_nodelay(true)?;
            s.set_write_timeout(Some(SEND_TIMEOUT))?;
        }
        Ok([
            client.try_clone()?,
            server.try_clone()?,
            client.try_clone()?,
            server.try_clone()?,
        ])
    };
    let Ok([c_read, s_write, c_keep, s_keep]) = setup() else {
        rst(&client);
        rst(&server);
        return;
    };
    let conn = Arc::new(Conn {
        id: inner.next_conn.fetch_add(1, Ordering::Relaxed),
        client: c_keep,
        server: s_keep,
        aborted: AtomicBool::new(false),
        parts: AtomicUsize::new(2),
    });
    lock(&pair.conns).insert(conn.id, Arc::clone(&conn));
    pair.total.fetch_add(1, Ordering::Relaxed);
    pair.active.fetch_add(1, Ordering::Relaxed);
    // A reset applied between the check above and the registration must still reach us.
    if pair.mask.load(Ordering::SeqCst) & REFUSE != 0 || inner.stopping.load(Ordering::SeqCst) {
        conn.abort();
    }
    let handoff = match inner.spin {
        Some(spin) => one_thread(pair, &conn, &client, &server, spin),
        None => Handoff::Split(Way::Upstream, Vec::new()),
    };
    // Back to blocking sockets (with their send timeout) for the pumps.
    for s in [&client, &server] {
        if s.set_nonblocking(false).is_err() {
            conn.abort();
        }
    }
    let (keep, first) = match handoff {
        Handoff::Abort => {
            conn.abort();
            part_done(pair, &conn);
            part_done(pair, &conn);
            return;
        }
        Handoff::Eof(way) => {
            // That direction is done (its FIN passed on); this thread pumps the other one.
            part_done(pair, &conn);
            let p = Pump::new(Arc::clone(inner), Arc::clone(pair), conn, way.other());
            match way {
                Way::Upstream => p.run(server, client, None),
                Way::Downstream => p.run(c_read, s_write, None),
            }
            return;
        }
        Handoff::Split(way, first) => (way, first),
    };
    let first = (!first.is_empty()).then_some(first);
    // (source, destination) of each direction: upstream client → server, downstream back.
    let (mine, theirs) = match keep {
        Way::Upstream => ((c_read, s_write), (server, client)),
        Way::Downstream => ((server, client), (c_read, s_write)),
    };
    let other = keep.other();
    let (inner2, pair2, conn2) = (Arc::clone(inner), Arc::clone(pair), Arc::clone(&conn));
    let spawned = std::thread::Builder::new()
        .name(format!("{}-{}", other.short(), pair.name))
        .spawn(move || {
            Pump::new(inner2, pair2, conn2, other).run(theirs.0, theirs.1, None);
        });
    if spawned.is_err() {
        conn.abort();
        part_done(pair, &conn);
    }
    Pump::new(Arc::clone(inner), Arc::clone(pair), conn, keep).run(mine.0, mine.1, first);
}

/// How the one-thread phase of a connection ended.
enum Handoff {
    /// Abort the connection (RST both peers).
    Abort,
    /// The source of this direction ended; its FIN was passed on.
    Eof(Way),
    /// Go on with a pump per direction; this thread keeps this direction and hands this chunk
    /// (possibly empty) to its pump first.
    Split(Way, Vec<u8>),
}

/// The one-thread phase of a connection: while no fault covers the pair and the traffic is small
/// messages, this one thread forwards both directions (non-blocking sockets, poll(2)), and after
/// each forwarded chunk keeps polling both sockets without sleeping for `spin`, so that a reply
/// is picked up by a thread that is still awake (a request/reply round trip through a pump per
/// direction pays two thread wake-ups, tens of microseconds each on a VM). An idle connection
/// sleeps in poll(2). It hands over to a pump per direction (the full fault logic, splice for
/// streams) when a fault covers the pair, a read fills the buffer (a stream), or a write would
/// block (a peer not reading must not hold up the other direction).
fn one_thread(
    pair: &PairState,
    conn: &Conn,
    client: &TcpStream,
    server: &TcpStream,
    spin: Duration,
) -> Handoff {
    if client.set_nonblocking(true).is_err() || server.set_nonblocking(true).is_err() {
        return Handoff::Split(Way::Upstream, Vec::new());
    }
    let mut buf = vec![0u8; BUF_SIZE].into_boxed_slice();
    let mut last: Option<Instant> = None;
    loop {
        if conn.is_aborted() {
            return Handoff::Abort;
        }
        if pair.mask.load(Ordering::Acquire) & (UP | DOWN) != 0 {
            return Handoff::Split(Way::Upstream, Vec::new());
        }
        let ready = match wait_readable(client, server, last.map(|t| (t, spin))) {
            Ok(r) => r,
            Err(Errno::EINTR) => continue,
            Err(_) => return Handoff::Abort,
        };
        for (way, is_ready) in [Way::Upstream, Way::Downstream].into_iter().zip(ready) {
            if !is_ready {
                continue;
            }
            let (mut src, mut dst) = match way {
                Way::Upstream => (client, server),
                Way::Downstream => (server, client),
            };
            let n = match src.read(&mut buf) {
                Ok(0) => {
                    if conn.is_aborted() {
                        return Handoff::Abort;
                    }
                    let _ = dst.shutdown(Shutdown::Write);
                    return Handoff::Eof(way);
                }
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    continue;
                }
                Err(_) => return Handoff::Abort,
            };
            // A fault applied meanwhile acts on this chunk (as in the pumps); a full buffer is a
            // stream: the pumps splice it.
            if n == BUF_SIZE || pair.mask.load(Ordering::Acquire) & way_bit(way) != 0 {
                return Handoff::Split(way, buf[..n].to_vec());
            }
            let mut sent = 0;
            while sent < n {
                match dst.write(&buf[sent..n]) {
                    Ok(0) => return Handoff::Abort,
                    Ok(m) => sent += m,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => return Handoff::Abort,
                }
            }
            pair.bytes(way).fetch_add(sent as u64, Ordering::Relaxed);
            if sent < n {
                return Handoff::Split(way, buf[sent..n].to_vec());
            }
            last = Some(Instant::now());
        }
    }
}

/// Which of (client, server) are readable (or at EOF/error): first polling without sleeping
/// until `spin.0 + spin.1`, then sleeping in poll(2).
fn wait_readable(
    client: &TcpStream,
    server: &TcpStream,
    spin: Option<(Instant, Duration)>,
) -> std::result::Result<[bool; 2], Errno> {
    let ev = PollFlags::POLLIN;
    let mut fds = [
        PollFd::new(client.as_fd(), ev),
        PollFd::new(server.as_fd(), ev),
    ];
    let mut got = 0;
    if let Some((since, spin)) = spin {
        while since.elapsed() < spin {
            got = poll(&mut fds, PollTimeout::ZERO)?;
            if got > 0 {
                break;
            }
            std::thread::yield_now();
        }
    }
    if got == 0 {
        poll(&mut fds, PollTimeout::NONE)?;
    }
    Ok(fds.map(|f| f.revents().is_some_and(|r| !r.is_empty())))
}

/// One part (pump or delivery thread) of a connection is done; the last one unregisters it, which
/// closes the sockets.
fn part_done(pair: &PairState, conn: &Conn) {
    if conn.parts.fetch_sub(1, Ordering::AcqRel) == 1 {
        lock(&pair.conns).remove(&conn.id);
        pair.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Write all of `data`, retrying on the send timeout unless the connection was aborted.
fn write_full(dst: &mut TcpStream, mut data: &[u8], conn: &Conn) -> io::Result<()> {
    while !data.is_empty() {
        match dst.write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                if conn.is_aborted() {
                    return Err(ErrorKind::ConnectionAborted.into());
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Move exactly `len` bytes from the pipe to `dst`, retrying on the send timeout unless the
/// connection was aborted.
fn splice_out(pr: &io::PipeReader, dst: &TcpStream, mut len: usize, conn: &Conn) -> io::Result<()> {
    while len > 0 {
        match splice(pr, None, dst, None, len, SpliceFFlags::SPLICE_F_MOVE) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(m) => len -= m,
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) => {
                if conn.is_aborted() {
                    return Err(ErrorKind::ConnectionAborted.into());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Sleep until `until`, in short naps, failing when the connection is aborted.
fn nap_until(until: Instant, conn: &Conn) -> io::Result<()> {
    loop {
        if conn.is_aborted() {
            return Err(ErrorKind::ConnectionAborted.into());
        }
        let now = Instant::now();
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until - now).min(NAP));
    }
}

enum Item {
    Data(Instant, Vec<u8>),
    Eof,
}

struct DelayLine {
    tx: mpsc::Sender<Item>,
    /// Bytes queued and not yet written.
    pending: Arc<AtomicUsize>,
    last_at: Instant,
}

#[derive(Debug)]
struct Bucket {
    rate: u64,
    tokens: f64,
    cap: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Bucket {
        #[expect(clippy::cast_precision_loss, reason = "rates far below 2^52")]
        let cap = (rate as f64 / 20.0).max(1.0);
        Bucket {
            rate,
            tokens: cap,
            cap,
            last: Instant::now(),
        }
    }

    /// Take up to `want` bytes' worth of tokens (at most one burst), waiting for them; returns how
    /// many bytes may go now.
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "byte counts and rates far below 2^52"
    )]
    fn take(&mut self, want: usize, conn: &Conn) -> io::Result<usize> {
        let n = want.min(self.cap as usize).max(1);
        let rate = self.rate as f64;
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(self.cap);
        self.last = now;
        let need = n as f64 - self.tokens;
        if need > 0.0 {
            nap_until(now + Duration::from_secs_f64(need / rate), conn)?;
            let now2 = Instant::now();
            self.tokens += now2.duration_since(self.last).as_secs_f64() * rate;
            self.last = now2;
        }
        self.tokens -= n as f64;
        Ok(n)
    }
}

/// What the slow path decided for the next slice of a chunk.
struct Go {
    delay: Option<Duration>,
    rate: Option<u64>,
}

/// One direction of one connection.
struct Pump {
    inner: Arc<Inner>,
    pair: Arc<PairState>,
    conn: Arc<Conn>,
    way: Way,
    delay: Option<DelayLine>,
    bucket: Option<Bucket>,
    stall_rolled: Vec<u64>,
}

impl Pump {
    fn new(inner: Arc<Inner>, pair: Arc<PairState>, conn: Arc<Conn>, way: Way) -> Pump {
        Pump {
            inner,
            pair,
            conn,
            way,
            delay: None,
            bucket: None,
            stall_rolled: Vec::new(),
        }
    }

    /// Pump until EOF or an abort; `first` is a chunk already read from `src`, forwarded first.
    fn run(mut self, mut src: TcpStream, mut dst: TcpStream, mut first: Option<Vec<u8>>) {
        let mut buf = vec![0u8; BUF_SIZE].into_boxed_slice();
        // Bulk path: socket → pipe → socket with splice(2), the pipe made on first need; the bytes
        // are only copied into `buf` when a fault needs to see them.
        let mut pipe: Option<(io::PipeReader, io::PipeWriter)> = None;
        let mut can_splice = self.inner.splice;
        let bit = way_bit(self.way);
        // Bulk mode: splice while the reads fill the buffer (streams); small messages are copied,
        // which has the lower latency.
        let mut bulk = false;
        let eof = loop {
            let spliced = bulk && pipe.is_some() && first.is_none();
            let n = if let Some(f) = first.take() {
                buf[..f.len()].copy_from_slice(&f);
                f.len()
            } else if let (true, Some((_, pw))) = (spliced, &pipe) {
                match splice(&src, None, pw, None, BUF_SIZE, SpliceFFlags::SPLICE_F_MOVE) {
                    Ok(0) => break !self.conn.is_aborted(),
                    Ok(n) => n,
                    Err(Errno::EINTR) => continue,
                    Err(Errno::EINVAL | Errno::ENOSYS) => {
                        // No splice for this socket: copy instead (nothing was consumed).
                        pipe = None;
                        can_splice = false;
                        continue;
                    }
                    Err(_) => break false,
                }
            } else {
                match src.read(&mut buf) {
                    Ok(0) => break !self.conn.is_aborted(),
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break false,
                }
            };
            bulk = if spliced {
                n >= BULK_MIN
            } else {
                n == BUF_SIZE
            };
            if bulk && can_splice && pipe.is_none() {
                pipe = io::pipe().ok();
                can_splice = pipe.is_some();
            }
            // Hot path: no fault on this direction and nothing queued behind a latency fault.
            let hot = self.pair.mask.load(Ordering::Acquire) & bit == 0
                && self
                    .delay
                    .as_ref()
                    .is_none_or(|d| d.pending.load(Ordering::Acquire) == 0);
            if let (true, Some((pr, _))) = (spliced, &mut pipe) {
                if hot {
                    if splice_out(pr, &dst, n, &self.conn).is_err() {
                        break false;
                    }
                    self.pair
                        .bytes(self.way)
                        .fetch_add(n as u64, Ordering::Relaxed);
                    continue;
                }
                if pr.read_exact(&mut buf[..n]).is_err() {
                    break false;
                }
            } else if hot {
                if write_full(&mut dst, &buf[..n], &self.conn).is_err() {
                    break false;
                }
                self.pair
                    .bytes(self.way)
                    .fetch_add(n as u64, Ordering::Relaxed);
                continue;
            }
            if self.forward_slow(&buf[..n], &mut dst).is_err() {
                break false;
            }
        };
        if eof {
            // Half-close: pass the FIN on (after the queued chunks, if any).
            match self.delay.take() {
                Some(d) => {
                    let _ = d.tx.send(Item::Eof);
                }
                None => {
                    let _ = dst.shutdown(Shutdown::Write);
                }
            }
        } else {
            // An RST from a peer, a write error, or an abort: RST both peers.
            self.conn.abort();
        }
        drop(self.delay.take());
        part_done(&self.pair, &self.conn);
    }

    fn forward_slow(&mut self, chunk: &[u8], dst: &mut TcpStream) -> io::Result<()> {
        let mut stall = self.roll_stall();
        let mut rest = chunk;
        while !rest.is_empty() {
            let go = self.decide(&mut stall)?;
            let take = match go.rate {
                Some(r) => {
                    if self.bucket.as_ref().is_none_or(|b| b.rate != r) {
                        self.bucket = Some(Bucket::new(r));
                    }
                    match self.bucket.as_mut() {
                        Some(b) => b.take(rest.len(), &self.conn)?,
                        None => rest.len(),
                    }
                }
                None => rest.len(),
            };
            self.deliver(&rest[..take], go.delay, dst)?;
            rest = &rest[take..];
        }
        Ok(())
    }

    /// Roll the dice of the stall faults for this chunk: `Some((fault id, end))` when it stalls.
    fn roll_stall(&mut self) -> Option<(u64, Option<Instant>)> {
        let t = lock(&self.inner.table);
        for a in t.faults.iter().filter(|a| a.pair == self.pair.idx) {
            if let Fault::Stall {
                direction,
                probability,
                per,
                duration_ms,
            } = a.info.fault
            {
                if !direction.covers(self.way) {
                    continue;
                }
                if per == StallPer::Connection {
                    if self.stall_rolled.contains(&a.info.id) {
                        continue;
                    }
                    self.stall_rolled.push(a.info.id);
                }
                if fastrand::f64() < probability {
                    let end = duration_ms.map(|d| Instant::now() + Duration::from_millis(d));
                    return Some((a.info.id, end));
                }
            }
        }
        None
    }

    /// Wait while a blackhole or this chunk's stall holds the direction; then say how to send.
    fn decide(&self, stall: &mut Option<(u64, Option<Instant>)>) -> io::Result<Go> {
        let inner = &self.inner;
        let mut t = lock(&inner.table);
        loop {
            if self.conn.is_aborted() {
                return Err(ErrorKind::ConnectionAborted.into());
            }
            let now = Instant::now();
            let mine = || {
                t.faults.iter().filter(|a| {
                    a.pair == self.pair.idx && a.info.fault.direction().covers(self.way)
                })
            };
            let mut hold: Option<Option<Instant>> = None;
            if mine().any(|a| matches!(a.info.fault, Fault::Blackhole { .. })) {
                hold = Some(None);
            } else if let Some((id, end)) = *stall {
                if end.is_none_or(|e| now < e) && t.faults.iter().any(|a| a.info.id == id) {
                    hold = Some(end);
                } else {
                    *stall = None;
                }
            }
            if let Some(end) = hold {
                let wait = end.map_or(HOLD_TICK, |e| {
                    e.saturating_duration_since(now).min(HOLD_TICK)
                });
                t = inner.wait_change(t, wait);
                continue;
            }
            let mut delay_us: u64 = 0;
            let mut any_latency = false;
            let mut rate: Option<u64> = None;
            for a in mine() {
                match a.info.fault {
                    Fault::Latency {
                        delay_ms,
                        jitter_ms,
                        ..
                    } => {
                        any_latency = true;
                        let base = i64::try_from(delay_ms * 1000).unwrap_or(i64::MAX);
                        let j = i64::try_from(jitter_ms * 1000).unwrap_or(0);
                        let d = if j > 0 {
                            base + fastrand::i64(-j..=j)
                        } else {
                            base
                        };
                        delay_us += u64::try_from(d).unwrap_or(0);
                    }
                    Fault::Bandwidth { bytes_per_sec, .. } => {
                        rate = Some(rate.map_or(bytes_per_sec, |r| r.min(bytes_per_sec)));
                    }
                    _ => {}
                }
            }
            return Ok(Go {
                delay: any_latency.then(|| Duration::from_micros(delay_us)),
                rate,
            });
        }
    }

    /// Send now, or queue behind a delay (keeping the order of everything already queued).
    fn deliver(
        &mut self,
        data: &[u8],
        delay: Option<Duration>,
        dst: &mut TcpStream,
    ) -> io::Result<()> {
        let queued = self
            .delay
            .as_ref()
            .is_some_and(|d| d.pending.load(Ordering::Acquire) > 0);
        if delay.is_none() && !queued {
            write_full(dst, data, &self.conn)?;
            self.pair
                .bytes(self.way)
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            return Ok(());
        }
        if self.delay.is_none() {
            self.delay = Some(self.spawn_delay_line(dst)?);
        }
        let Some(line) = self.delay.as_mut() else {
            return Err(ErrorKind::Other.into());
        };
        // Backpressure: at most MAX_IN_FLIGHT bytes wait in the delay line (like a TCP window).
        while line.pending.load(Ordering::Acquire) >= MAX_IN_FLIGHT {
            if self.conn.is_aborted() {
                return Err(ErrorKind::ConnectionAborted.into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let at = (Instant::now() + delay.unwrap_or(Duration::ZERO)).max(line.last_at);
        line.last_at = at;
        line.pending.fetch_add(data.len(), Ordering::AcqRel);
        line.tx
            .send(Item::Data(at, data.to_vec()))
            .map_err(|_| io::Error::from(ErrorKind::ConnectionAborted))
    }

    fn spawn_delay_line(&self, dst: &TcpStream) -> io::Result<DelayLine> {
        let mut dst = dst.try_clone()?;
        let (tx, rx) = mpsc::channel::<Item>();
        let pending = Arc::new(AtomicUsize::new(0));
        let (inner, pair, conn, way) = (
            Arc::clone(&self.inner),
            Arc::clone(&self.pair),
            Arc::clone(&self.conn),
            self.way,
        );
        let pending2 = Arc::clone(&pending);
        conn.parts.fetch_add(1, Ordering::AcqRel);
        let spawned = std::thread::Builder::new()
            .name(format!("delay-{}", pair.name))
            .spawn(move || {
                let ok = delay_loop(&inner, &pair, &conn, way, &rx, &pending2, &mut dst);
                if !ok {
                    conn.abort();
                }
                part_done(&pair, &conn);
            });
        if let Err(e) = spawned {
            self.conn.parts.fetch_sub(1, Ordering::AcqRel);
            return Err(e);
        }
        Ok(DelayLine {
            tx,
            pending,
            last_at: Instant::now(),
        })
    }
}

/// The delivery thread of a latency fault: sends each chunk at its time, in order. Returns false
/// when the connection must be aborted.
fn delay_loop(
    inner: &Inner,
    pair: &PairState,
    conn: &Conn,
    way: Way,
    rx: &mpsc::Receiver<Item>,
    pending: &AtomicUsize,
    dst: &mut TcpStream,
) -> bool {
    for item in rx {
        match item {
            Item::Data(at, data) => {
                if nap_until(at, conn).is_err() {
                    return false;
                }
                // Chunks already in flight are held by a blackhole applied meanwhile, too.
                {
                    let mut t = lock(&inner.table);
                    while t.faults.iter().any(|a| {
                        a.pair == pair.idx
                            && matches!(a.info.fault, Fault::Blackhole { direction } if direction.covers(way))
                    }) {
                        if conn.is_aborted() {
                            return false;
                        }
                        t = inner.wait_change(t, HOLD_TICK);
                    }
                }
                if write_full(dst, &data, conn).is_err() {
                    return false;
                }
                pair.bytes(way)
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                pending.fetch_sub(data.len(), Ordering::AcqRel);
            }
            Item::Eof => {
                let _ = dst.shutdown(Shutdown::Write);
                return true;
            }
        }
    }
    // The reader left without EOF (aborted): nothing more to do.
    !conn.is_aborted()
}
