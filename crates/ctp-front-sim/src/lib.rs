//! `ctp-front-sim`: a local CTP front simulator, the embedded default target of the CTP drills.
//!
//! It listens on a trader and a market port, speaks the newline-JSON framing of [`proto`] (our
//! own, documented in docs/formats.md; not CTP's protocol), and can be told to go down and come
//! back, refuse logins for a while, fail authentication, or close connections outside a session
//! window, through a Unix control socket (JSON lines) or signals (SIGUSR1 down, SIGUSR2 up). Every
//! accept, auth, login, close and state change is logged with `ts_ns` as JSONL (`--event-log`):
//! the ground truth drill measurements are checked against. Threads, no async runtime.

pub use reconnect_core::sim_proto as proto;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use clap::builder::TypedValueParser as _;
use ctp_config::CtpConfig;
use evidence_core::cli::{self, EXIT_STATUS_HELP};
use evidence_core::duration::{DurationParser, whole_millis};
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Exit, Result};
use serde_json::{Value, json};

use crate::proto::Message;

const AFTER_HELP: &str = "EXAMPLE:\n  ctp-front-sim --config configs/sim/local.yaml --control-socket runtime/sim.sock \\\n      --event-log runtime/sim_events.jsonl &\n  echo '{\"cmd\":\"down\",\"front\":\"trader\"}' | socat - UNIX-CONNECT:runtime/sim.sock\n  kill -USR2 %1   # both fronts up again\n\nPrints one line {\"kind\":\"sim.ready\",...,\"trader_port\":N,\"market_port\":N} on stdout when\nlistening, runs until SIGTERM/SIGINT or the `stop` command, then exits 0.";

/// A local CTP front simulator (trader + market ports; newline-JSON framing, not CTP's protocol).
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}\n\n{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// CTP config whose trader_front/market_front ports to listen on (host comes from --host).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Trader port (0 picks a free port; overrides --config).
    #[arg(long)]
    pub trader_port: Option<u16>,
    /// Market port (0 picks a free port; overrides --config).
    #[arg(long)]
    pub market_port: Option<u16>,
    /// Unix control socket (JSON-line commands: down, up, refuse_logins, auth_fail,
    /// login_latency, session_window, status, stop).
    #[arg(long)]
    pub control_socket: Option<PathBuf>,
    /// Append every accept/auth/login/close/state event as JSONL to this file.
    #[arg(long)]
    pub event_log: Option<PathBuf>,
    /// Also write the sim.ready line (with the chosen ports) to this file, atomically.
    #[arg(long)]
    pub ports_file: Option<PathBuf>,
    /// Delay before answering a login, in ms.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = DurationParser::millis().map(whole_millis))]
    pub login_latency_ms: u64,
    /// Heartbeat interval, in ms (0 = no heartbeats).
    #[arg(long, value_name = "DURATION", default_value = "1000", value_parser = DurationParser::millis().map(whole_millis))]
    pub heartbeat_ms: u64,
    /// Market-data tick interval on the market front after login, in ms (0 = no ticks).
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = DurationParser::millis().map(whole_millis))]
    pub tick_interval_ms: u64,
    /// Instruments ticked when the client does not subscribe.
    #[arg(long, value_delimiter = ',', default_value = "SHFE.ag2406")]
    pub instruments: Vec<String>,
    /// Fail every authentication (auth_failed), until told otherwise.
    #[arg(long)]
    pub auth_fail: bool,
    /// Only accept logins, and keep sessions, between HH:MM-HH:MM (+08:00; may wrap midnight).
    #[arg(long, value_name = "HH:MM-HH:MM")]
    pub session_window: Option<String>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }

    #[test]
    fn windows_and_minutes() {
        assert_eq!(super::parse_window("21:00-02:30"), Some((1260, 150)));
        assert_eq!(super::parse_window("25:00-02:30"), None);
        // 2026-03-13T13:00:00Z is 21:00 at +08:00.
        assert_eq!(super::local_minute(1_773_406_800 * 1_000_000_000), 21 * 60);
        assert_eq!(super::local_date(1_773_406_800 * 1_000_000_000), "20260313");
    }
}

/// Which front.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrontKind {
    /// The trader front.
    Trader,
    /// The market-data front.
    Market,
}

impl FrontKind {
    /// `trader` or `market`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FrontKind::Trader => "trader",
            FrontKind::Market => "market",
        }
    }
}

/// The JSONL event log (appended, one write per line).
struct EventLog {
    file: Mutex<Option<File>>,
}

impl EventLog {
    fn log(&self, kind: &str, mut fields: Value) {
        self.log_at(kind, now_ns(), &mut fields);
    }

    fn log_at(&self, kind: &str, ts_ns: i64, fields: &mut Value) {
        let mut rec = json!({"kind": kind, "ts_ns": ts_ns});
        if let (Some(r), Some(f)) = (rec.as_object_mut(), fields.as_object_mut()) {
            r.append(f);
        }
        let mut g = lock(&self.file);
        if let Some(f) = g.as_mut() {
            let mut line = rec.to_string();
            line.push('\n');
            if let Err(e) = f.write_all(line.as_bytes()) {
                cli::warn(&format!("cannot write the event log: {e}"));
            }
        }
    }
}

struct Front {
    kind: FrontKind,
    port: Mutex<u16>,
    /// Desired state.
    up: Mutex<bool>,
    /// Actual state: a listener is bound.
    listening: Mutex<bool>,
    cv: Condvar,
}

struct Conn {
    front: FrontKind,
    stream: TcpStream,
    logged_in: bool,
}

struct Shared {
    host: String,
    login_latency_ms: AtomicU64,
    heartbeat_ms: u64,
    tick_interval_ms: u64,
    instruments: Vec<String>,
    auth_fail: AtomicBool,
    refuse_until: Mutex<Option<Instant>>,
    window: Mutex<Option<(u32, u32)>>,
    fronts: [Front; 2],
    conns: Mutex<HashMap<u64, Conn>>,
    next_id: AtomicU64,
    log: EventLog,
    stopping: AtomicBool,
    stop_tx: Mutex<Option<mpsc::Sender<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn front(&self, k: FrontKind) -> &Front {
        match k {
            FrontKind::Trader => &self.fronts[0],
            FrontKind::Market => &self.fronts[1],
        }
    }

    /// Remove a connection from the registry; whoever removes it logs its close.
    fn close_conn(&self, id: u64, reason: &str, notify: bool) {
        let conn = lock(&self.conns).remove(&id);
        if let Some(c) = conn {
            if notify {
                let mut s = &c.stream;
                let _ = s.write_all(
                    proto::encode(&Message::Closing {
                        reason: reason.to_string(),
                    })
                    .as_bytes(),
                );
            }
            let _ = c.stream.shutdown(Shutdown::Both);
            self.log.log(
                "sim.close",
                json!({"front": c.front.name(), "conn_id": id, "reason": reason, "logged_in": c.logged_in}),
            );
        }
    }

    fn close_front_conns(&self, k: FrontKind, reason: &str) {
        let ids: Vec<u64> = lock(&self.conns)
            .iter()
            .filter(|(_, c)| c.front == k)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.close_conn(id, reason, true);
        }
    }

    fn wake_addr(&self, port: u16) -> String {
        let host = match self.host.as_str() {
            "0.0.0.0" => "127.0.0.1",
            "::" | "[::]" => "::1",
            h => h,
        };
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    }

    /// Take a front down: stop listening (connects are then refused), close its connections.
    /// Returns once the listener is closed.
    fn set_down(&self, k: FrontKind, cause: &str) {
        let f = self.front(k);
        {
            let mut up = lock(&f.up);
            if !*up {
                return;
            }
            *up = false;
        }
        let port = *lock(&f.port);
        // Wake the blocked accept() so that its thread drops the listener.
        let _ = TcpStream::connect_timeout(
            &self
                .wake_addr(port)
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], port))),
            Duration::from_millis(500),
        );
        let mut listening = lock(&f.listening);
        let deadline = Instant::now() + Duration::from_secs(5);
        while *listening && Instant::now() < deadline {
            listening =
                f.cv.wait_timeout(listening, Duration::from_millis(50))
                    .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        drop(listening);
        self.log.log(
            "sim.state",
            json!({"front": k.name(), "state": "down", "cause": cause, "port": port}),
        );
        self.close_front_conns(k, "front_down");
    }

    /// Bring a front back up on the same port; returns once it listens (or after 5 s).
    fn set_up(&self, k: FrontKind, cause: &str) {
        let f = self.front(k);
        {
            let mut up = lock(&f.up);
            if *up {
                return;
            }
            *up = true;
        }
        f.cv.notify_all();
        let mut listening = lock(&f.listening);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !*listening && Instant::now() < deadline {
            listening =
                f.cv.wait_timeout(listening, Duration::from_millis(50))
                    .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        let ok = *listening;
        drop(listening);
        self.log.log(
            "sim.state",
            json!({"front": k.name(), "state": if ok { "up" } else { "bind_failed" }, "cause": cause, "port": *lock(&f.port)}),
        );
    }

    fn stop(&self, why: &str) {
        if let Some(tx) = lock(&self.stop_tx).as_ref() {
            let _ = tx.send(why.to_string());
        }
    }

    fn login_refusal(&self) -> Option<String> {
        if let Some(until) = *lock(&self.refuse_until)
            && Instant::now() < until
        {
            return Some("logins refused by the operator (refuse_logins)".into());
        }
        if !self.in_window() {
            return Some("outside the session window".into());
        }
        None
    }

    fn in_window(&self) -> bool {
        match *lock(&self.window) {
            None => true,
            Some((a, b)) => {
                let m = local_minute(now_ns());
                if a <= b {
                    a <= m && m < b
                } else {
                    m >= a || m < b
                }
            }
        }
    }
}

/// Minute of day at +08:00.
fn local_minute(ns: i64) -> u32 {
    let secs = ns.div_euclid(1_000_000_000) + 8 * 3600;
    u32::try_from(secs.rem_euclid(86_400) / 60).unwrap_or(0)
}

/// `YYYYMMDD` at +08:00.
fn local_date(ns: i64) -> String {
    let s = evidence_core::time::format_utc(ns + 8 * 3600 * 1_000_000_000);
    s[..10].replace('-', "")
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

fn parse_window(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once('-')?;
    Some((parse_hhmm(a)?, parse_hhmm(b)?))
}

fn bind(host: &str, port: u16) -> std::io::Result<TcpListener> {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    TcpListener::bind(addr)
}

fn accept_loop(sh: &Arc<Shared>, k: FrontKind, mut listener: Option<TcpListener>) {
    let f = sh.front(k);
    loop {
        if sh.stopping.load(Ordering::SeqCst) {
            return;
        }
        let l = if let Some(l) = listener.take() {
            l
        } else {
            // Wait to be told up, then rebind the same port.
            let mut up = lock(&f.up);
            while !*up && !sh.stopping.load(Ordering::SeqCst) {
                up =
                    f.cv.wait_timeout(up, Duration::from_millis(100))
                        .map_or_else(|e| e.into_inner().0, |(g, _)| g);
            }
            drop(up);
            if sh.stopping.load(Ordering::SeqCst) {
                return;
            }
            let port = *lock(&f.port);
            let mut bound = None;
            for _ in 0..100 {
                match bind(&sh.host, port) {
                    Ok(l) => {
                        bound = Some(l);
                        break;
                    }
                    Err(_) => thread::sleep(Duration::from_millis(20)),
                }
            }
            let Some(l) = bound else {
                cli::warn(&format!(
                    "cannot bind the {} front on port {port}",
                    k.name()
                ));
                *lock(&f.up) = false;
                f.cv.notify_all();
                continue;
            };
            *lock(&f.listening) = true;
            f.cv.notify_all();
            l
        };
        for s in l.incoming() {
            if sh.stopping.load(Ordering::SeqCst) || !*lock(&f.up) {
                break;
            }
            match s {
                Ok(stream) => {
                    let sh2 = Arc::clone(sh);
                    thread::spawn(move || serve(&sh2, k, stream));
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    cli::warn(&format!("{} accept failed: {e}", k.name()));
                    thread::sleep(Duration::from_millis(10));
                }
            }
        }
        drop(l);
        *lock(&f.listening) = false;
        f.cv.notify_all();
    }
}

/// One client session's state.
struct Session {
    id: u64,
    k: FrontKind,
    hello: bool,
    authed: Option<bool>,
    logged_in: bool,
    user: String,
    broker: String,
    instruments: Vec<String>,
    next_hb: Option<Instant>,
    next_tick: Option<Instant>,
    price: f64,
    volume: u64,
}

fn send(out: &mut TcpStream, m: &Message) -> std::io::Result<()> {
    out.write_all(proto::encode(m).as_bytes())
}

impl Session {
    fn new(id: u64, k: FrontKind, instruments: Vec<String>) -> Session {
        Session {
            id,
            k,
            hello: false,
            authed: None,
            logged_in: false,
            user: String::new(),
            broker: String::new(),
            instruments,
            next_hb: None,
            next_tick: None,
            price: 5600.0,
            volume: 0,
        }
    }

    /// Heartbeats and (market front) ticks that are due. Fails when the heartbeat cannot be sent.
    fn timers(&mut self, sh: &Shared, out: &mut TcpStream) -> std::io::Result<()> {
        let now = Instant::now();
        if let Some(t) = self.next_hb
            && now >= t
        {
            send(out, &Message::Heartbeat { ts_ns: now_ns() })?;
            self.next_hb = Some(t + Duration::from_millis(sh.heartbeat_ms));
        }
        if let Some(t) = self.next_tick
            && now >= t
        {
            for ins in &self.instruments {
                self.volume += 1;
                self.price += if self.volume.is_multiple_of(3) {
                    -1.0
                } else {
                    1.0
                };
                let m = Message::Tick {
                    instrument: ins.clone(),
                    last_price: self.price,
                    volume: self.volume,
                    ts_ns: now_ns(),
                };
                if send(out, &m).is_err() {
                    break;
                }
            }
            self.next_tick = Some(t + Duration::from_millis(sh.tick_interval_ms));
        }
        Ok(())
    }

    /// `hello`: remember who, start heartbeats; `hello_ack`.
    fn hello(&mut self, sh: &Shared, broker_id: String, user_id: String) -> Message {
        self.hello = true;
        self.broker = broker_id;
        self.user = user_id;
        if sh.heartbeat_ms > 0 {
            self.next_hb = Some(Instant::now() + Duration::from_millis(sh.heartbeat_ms));
        }
        Message::HelloAck {
            front: self.k.name().into(),
            conn_id: self.id,
            heartbeat_ms: sh.heartbeat_ms,
        }
    }

    /// `auth`: accepted unless the simulator is told to fail it (logged).
    fn auth(&mut self, sh: &Shared, app_id: &str) -> Message {
        let fail = sh.auth_fail.load(Ordering::SeqCst);
        self.authed = Some(!fail);
        sh.log.log(
            "sim.auth",
            json!({"front": self.k.name(), "conn_id": self.id, "app_id": app_id, "accepted": !fail}),
        );
        if fail {
            Message::AuthFailed {
                reason: "authentication failed (simulator told to fail auth)".into(),
            }
        } else {
            Message::AuthOk
        }
    }

    /// A login: refused (logged, answered) or accepted (`login_ok`, then logged at the moment the
    /// reply left). Fails when the reply cannot be sent.
    fn login(
        &mut self,
        sh: &Shared,
        out: &mut TcpStream,
        user_id: &str,
        password: &str,
    ) -> std::io::Result<()> {
        let latency = sh.login_latency_ms.load(Ordering::SeqCst);
        if latency > 0 {
            thread::sleep(Duration::from_millis(latency));
        }
        let refusal = if self.authed == Some(false) {
            Some("not authenticated (auth failed)".to_string())
        } else if user_id != self.user {
            Some(format!(
                "user_id {user_id:?} differs from hello's {:?}",
                self.user
            ))
        } else if password.is_empty() {
            Some("empty password".to_string())
        } else {
            sh.login_refusal()
        };
        if let Some(reason) = refusal {
            sh.log.log(
                "sim.login",
                json!({"front": self.k.name(), "conn_id": self.id, "broker_id": self.broker, "user_id": self.user, "accepted": false, "reason": reason}),
            );
            let _ = send(out, &Message::LoginRefused { reason });
            return Ok(());
        }
        let ts = now_ns();
        let ok = Message::LoginOk {
            front: self.k.name().into(),
            trading_day: local_date(ts),
            session_id: self.id,
            ts_ns: ts,
        };
        send(out, &ok)?;
        // The moment the reply left: the ground truth for recovery measurements.
        let sent = now_ns();
        self.logged_in = true;
        if let Some(c) = lock(&sh.conns).get_mut(&self.id) {
            c.logged_in = true;
        }
        sh.log.log_at(
            "sim.login",
            sent,
            &mut json!({"front": self.k.name(), "conn_id": self.id, "broker_id": self.broker, "user_id": self.user, "accepted": true, "reply_ts_ns": ts}),
        );
        if self.k == FrontKind::Market && sh.tick_interval_ms > 0 {
            self.next_tick = Some(Instant::now() + Duration::from_millis(sh.tick_interval_ms));
        }
        Ok(())
    }
}

/// The answer to a message the session's state does not allow.
fn unexpected(m: &Message) -> Message {
    Message::Error {
        reason: format!(
            "unexpected message {} in this state",
            serde_json::to_value(m)
                .ok()
                .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default()
        ),
    }
}

/// One client connection.
fn serve(sh: &Arc<Shared>, k: FrontKind, stream: TcpStream) {
    let id = sh.next_id.fetch_add(1, Ordering::SeqCst);
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let Ok(clone) = stream.try_clone() else {
        return;
    };
    let _ = stream.set_nodelay(true);
    lock(&sh.conns).insert(
        id,
        Conn {
            front: k,
            stream: clone,
            logged_in: false,
        },
    );
    sh.log.log(
        "sim.accept",
        json!({"front": k.name(), "conn_id": id, "peer": peer}),
    );
    let poll = Duration::from_millis(20);
    let Ok(read_half) = stream.try_clone() else {
        sh.close_conn(id, "internal_error", false);
        return;
    };
    let _ = read_half.set_read_timeout(Some(poll));
    let mut reader = BufReader::new(read_half);
    let mut out = stream;
    let mut buf = Vec::new();
    let mut ss = Session::new(id, k, sh.instruments.clone());
    loop {
        if !lock(&sh.conns).contains_key(&id) {
            return; // closed by the server (front down, stop): already logged.
        }
        if ss.logged_in && !sh.in_window() {
            sh.close_conn(id, "outside_session_window", true);
            return;
        }
        if ss.timers(sh, &mut out).is_err() {
            break;
        }
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) if buf.ends_with(b"\n") => {}
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        let line = String::from_utf8_lossy(&buf).into_owned();
        buf.clear();
        if line.trim().is_empty() {
            continue;
        }
        let msg = match proto::decode(&line) {
            Ok(m) => m,
            Err(e) => {
                let _ = send(&mut out, &Message::Error { reason: e });
                continue;
            }
        };
        let reply = match msg {
            Message::Hello {
                broker_id, user_id, ..
            } => ss.hello(sh, broker_id, user_id),
            Message::Auth { app_id, .. } if ss.hello => ss.auth(sh, &app_id),
            Message::Login { user_id, password } if ss.hello => {
                if ss.login(sh, &mut out, &user_id, &password).is_err() {
                    break;
                }
                continue;
            }
            Message::Subscribe { instruments: list } if ss.logged_in => {
                ss.instruments = list;
                continue;
            }
            Message::Ping { seq } => Message::Pong { seq },
            Message::Logout => {
                sh.close_conn(id, "logout", false);
                return;
            }
            other => unexpected(&other),
        };
        if send(&mut out, &reply).is_err() {
            break;
        }
    }
    sh.close_conn(id, "peer_closed", false);
}

fn fronts_of(v: &Value) -> std::result::Result<Vec<FrontKind>, String> {
    match v.get("front").and_then(Value::as_str) {
        None | Some("both" | "all") => Ok(vec![FrontKind::Trader, FrontKind::Market]),
        Some("trader") => Ok(vec![FrontKind::Trader]),
        Some("market") => Ok(vec![FrontKind::Market]),
        Some(other) => Err(format!("unknown front {other:?} (trader, market, both)")),
    }
}

fn status(sh: &Shared) -> Value {
    let conns = lock(&sh.conns);
    let front = |k: FrontKind| {
        let f = sh.front(k);
        json!({"up": *lock(&f.up), "listening": *lock(&f.listening), "port": *lock(&f.port),
               "connections": conns.values().filter(|c| c.front == k).count(),
               "logged_in": conns.values().filter(|c| c.front == k && c.logged_in).count()})
    };
    let refusing_ms = lock(&sh.refuse_until).map_or(0, |u| {
        u.saturating_duration_since(Instant::now()).as_millis()
    });
    json!({"ok": true, "trader": front(FrontKind::Trader), "market": front(FrontKind::Market),
           "auth_fail": sh.auth_fail.load(Ordering::SeqCst),
           "login_latency_ms": sh.login_latency_ms.load(Ordering::SeqCst),
           "refusing_logins_ms": refusing_ms,
           "session_window": lock(&sh.window).map(|(a, b)| format!("{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60)),
           "in_session_window": sh.in_window()})
}

/// Execute one control command; returns the reply object.
fn control(sh: &Shared, line: &str) -> Value {
    let v: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return json!({"ok": false, "error": format!("not JSON: {e}")}),
    };
    let cmd = v.get("cmd").and_then(Value::as_str).unwrap_or("");
    if cmd != "status" {
        sh.log.log("sim.control", json!({"cmd": cmd, "args": v}));
    }
    match cmd {
        "down" | "up" => match fronts_of(&v) {
            Ok(fs) => {
                for k in fs {
                    if cmd == "down" {
                        sh.set_down(k, "control");
                    } else {
                        sh.set_up(k, "control");
                    }
                }
                status(sh)
            }
            Err(e) => json!({"ok": false, "error": e}),
        },
        "refuse_logins" => {
            let Some(secs) = v
                .get("seconds")
                .and_then(Value::as_f64)
                .filter(|s| *s >= 0.0)
            else {
                return json!({"ok": false, "error": "refuse_logins needs seconds >= 0"});
            };
            *lock(&sh.refuse_until) = Some(Instant::now() + Duration::from_secs_f64(secs));
            sh.log.log(
                "sim.state",
                json!({"front": "both", "state": "refusing_logins", "cause": "control", "seconds": secs}),
            );
            status(sh)
        }
        "auth_fail" => {
            let on = v.get("enabled").and_then(Value::as_bool).unwrap_or(true);
            sh.auth_fail.store(on, Ordering::SeqCst);
            sh.log.log(
                "sim.state",
                json!({"front": "both", "state": if on { "auth_failing" } else { "auth_ok" }, "cause": "control"}),
            );
            status(sh)
        }
        "login_latency" => {
            let Some(ms) = v.get("ms").and_then(Value::as_u64) else {
                return json!({"ok": false, "error": "login_latency needs ms"});
            };
            sh.login_latency_ms.store(ms, Ordering::SeqCst);
            status(sh)
        }
        "session_window" => {
            if v.get("clear").and_then(Value::as_bool) == Some(true) {
                *lock(&sh.window) = None;
            } else {
                let w = v
                    .get("start")
                    .and_then(Value::as_str)
                    .and_then(parse_hhmm)
                    .zip(v.get("end").and_then(Value::as_str).and_then(parse_hhmm));
                let Some(w) = w else {
                    return json!({"ok": false, "error": "session_window needs start and end HH:MM (+08:00), or clear: true"});
                };
                *lock(&sh.window) = Some(w);
            }
            sh.log.log(
                "sim.state",
                json!({"front": "both", "state": "session_window", "cause": "control",
                       "window": lock(&sh.window).map(|(a, b)| format!("{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60))}),
            );
            status(sh)
        }
        "status" => status(sh),
        // The caller requests the stop after the reply is written (see `is_stop`).
        "stop" => json!({"ok": true, "stopping": true}),
        other => {
            json!({"ok": false, "error": format!("unknown cmd {other:?} (down, up, refuse_logins, auth_fail, login_latency, session_window, status, stop)")})
        }
    }
}

fn is_stop(line: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .ok()
        .is_some_and(|v| v.get("cmd").and_then(Value::as_str) == Some("stop"))
}

fn control_loop(sh: &Arc<Shared>, l: &UnixListener) {
    for s in l.incoming() {
        if sh.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(s) = s else { continue };
        let sh2 = Arc::clone(sh);
        thread::spawn(move || control_conn(&sh2, s));
    }
}

fn control_conn(sh: &Shared, s: UnixStream) {
    let Ok(mut w) = s.try_clone() else { return };
    for line in BufReader::new(s).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        let mut reply = control(sh, &line).to_string();
        reply.push('\n');
        let written = w.write_all(reply.as_bytes()).and_then(|()| w.flush());
        if is_stop(&line) {
            sh.stop("control");
        }
        if written.is_err() {
            return;
        }
    }
}

/// Send one command to a running simulator's control socket and return its reply.
pub fn send_control(socket: &Path, command: &Value, timeout: Duration) -> std::io::Result<Value> {
    let mut s = UnixStream::connect(socket)?;
    s.set_read_timeout(Some(timeout))?;
    let mut line = command.to_string();
    line.push('\n');
    s.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(s).read_line(&mut reply)?;
    serde_json::from_str(&reply).map_err(|e| std::io::Error::new(ErrorKind::InvalidData, e))
}

fn ports_from_config(path: &Path) -> Result<(u16, u16)> {
    let c = CtpConfig::load(path)?;
    c.validate()?;
    let t = c.values.trader_front.as_ref().ok_or_else(|| {
        EvidenceError::parse(
            path.display().to_string(),
            0,
            "trader_front",
            "tcp://host:port",
            "missing",
        )
    })?;
    let m = c.values.market_front.as_ref().ok_or_else(|| {
        EvidenceError::parse(
            path.display().to_string(),
            0,
            "market_front",
            "tcp://host:port",
            "missing",
        )
    })?;
    Ok((t.port, m.port))
}

/// Options of an in-process simulator ([`start`]); the CLI maps onto it.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Listen address.
    pub host: String,
    /// Trader port (0 = pick).
    pub trader_port: u16,
    /// Market port (0 = pick).
    pub market_port: u16,
    /// Unix control socket, if any.
    pub control_socket: Option<PathBuf>,
    /// JSONL event log, if any (appended).
    pub event_log: Option<PathBuf>,
    /// Login latency, ms.
    pub login_latency_ms: u64,
    /// Heartbeat interval, ms (0 = none).
    pub heartbeat_ms: u64,
    /// Tick interval on the market front, ms (0 = none).
    pub tick_interval_ms: u64,
    /// Default instruments ticked.
    pub instruments: Vec<String>,
    /// Fail authentication.
    pub auth_fail: bool,
    /// Session window, minutes after midnight at +08:00 (start, end; may wrap).
    pub session_window: Option<(u32, u32)>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            host: "127.0.0.1".into(),
            trader_port: 0,
            market_port: 0,
            control_socket: None,
            event_log: None,
            login_latency_ms: 0,
            heartbeat_ms: 1000,
            tick_interval_ms: 0,
            instruments: vec!["SHFE.ag2406".into()],
            auth_fail: false,
            session_window: None,
        }
    }
}

/// A running simulator (threads in this process). Dropping it does not stop it; call
/// [`SimHandle::stop`].
pub struct SimHandle {
    sh: Arc<Shared>,
    stop_rx: mpsc::Receiver<String>,
    /// The bound trader port.
    pub trader_port: u16,
    /// The bound market port.
    pub market_port: u16,
    control_socket: Option<PathBuf>,
}

impl SimHandle {
    /// Execute a control command (the control socket's JSON, e.g. `{"cmd":"down","front":"trader"}`)
    /// and return the reply.
    #[must_use]
    pub fn control(&self, cmd: &Value) -> Value {
        let line = cmd.to_string();
        let reply = control(&self.sh, &line);
        if is_stop(&line) {
            self.sh.stop("control");
        }
        reply
    }

    /// Take fronts down (`None` = both), as SIGUSR1 does.
    pub fn down(&self, front: Option<FrontKind>, cause: &str) {
        for k in front.map_or(vec![FrontKind::Trader, FrontKind::Market], |k| vec![k]) {
            self.sh.set_down(k, cause);
        }
    }

    /// Bring fronts up (`None` = both), as SIGUSR2 does.
    pub fn up(&self, front: Option<FrontKind>, cause: &str) {
        for k in front.map_or(vec![FrontKind::Trader, FrontKind::Market], |k| vec![k]) {
            self.sh.set_up(k, cause);
        }
    }

    /// Ask the simulator to stop (from another thread, a signal handler...).
    pub fn request_stop(&self, why: &str) {
        self.sh.stop(why);
    }

    /// Block until a stop is requested (the `stop` command or [`SimHandle::request_stop`]), then
    /// close every connection, log `sim.stop` and remove the control socket.
    pub fn wait(self) {
        let why = self
            .stop_rx
            .recv()
            .unwrap_or_else(|_| "channel closed".into());
        self.shutdown(&why);
    }

    /// Stop now.
    pub fn stop(self) {
        self.shutdown("stop");
    }

    fn shutdown(self, why: &str) {
        let sh = &self.sh;
        sh.stopping.store(true, Ordering::SeqCst);
        for k in [FrontKind::Trader, FrontKind::Market] {
            sh.close_front_conns(k, "sim_stop");
            let port = *lock(&sh.front(k).port);
            let _ = TcpStream::connect_timeout(
                &sh.wake_addr(port)
                    .parse()
                    .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], port))),
                Duration::from_millis(200),
            );
        }
        sh.log.log("sim.stop", json!({"cause": why}));
        if let Some(p) = &self.control_socket {
            // Wake the control thread's accept() so that it sees `stopping` and ends.
            let _ = UnixStream::connect(p);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Open the event log for appending (its folder created).
fn open_event_log(p: &Path) -> Result<File> {
    if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(|e| EvidenceError::io("cannot create", d, e))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map_err(|e| EvidenceError::io("cannot open", p, e))
}

/// Start a simulator in this process (listener, accept and control threads); no signal handling.
pub fn start(o: &SimOptions) -> Result<SimHandle> {
    let log_file = match &o.event_log {
        None => None,
        Some(p) => Some(open_event_log(p)?),
    };
    let tl = bind(&o.host, o.trader_port).map_err(|e| {
        EvidenceError::failed(format!(
            "cannot listen on {}:{} (trader): {e}",
            o.host, o.trader_port
        ))
    })?;
    let ml = bind(&o.host, o.market_port).map_err(|e| {
        EvidenceError::failed(format!(
            "cannot listen on {}:{} (market): {e}",
            o.host, o.market_port
        ))
    })?;
    let tport = tl
        .local_addr()
        .map_err(|e| EvidenceError::failed(e.to_string()))?
        .port();
    let mport = ml
        .local_addr()
        .map_err(|e| EvidenceError::failed(e.to_string()))?
        .port();
    let mk_front = |kind, port| Front {
        kind,
        port: Mutex::new(port),
        up: Mutex::new(true),
        listening: Mutex::new(true),
        cv: Condvar::new(),
    };
    let (stop_tx, stop_rx) = mpsc::channel::<String>();
    let sh = Arc::new(Shared {
        host: o.host.clone(),
        login_latency_ms: AtomicU64::new(o.login_latency_ms),
        heartbeat_ms: o.heartbeat_ms,
        tick_interval_ms: o.tick_interval_ms,
        instruments: o.instruments.clone(),
        auth_fail: AtomicBool::new(o.auth_fail),
        refuse_until: Mutex::new(None),
        window: Mutex::new(o.session_window),
        fronts: [
            mk_front(FrontKind::Trader, tport),
            mk_front(FrontKind::Market, mport),
        ],
        conns: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(1),
        log: EventLog {
            file: Mutex::new(log_file),
        },
        stopping: AtomicBool::new(false),
        stop_tx: Mutex::new(Some(stop_tx)),
    });
    debug_assert_eq!(sh.fronts[0].kind, FrontKind::Trader);
    let control_listener = match &o.control_socket {
        None => None,
        Some(p) => {
            if p.exists() {
                std::fs::remove_file(p)
                    .map_err(|e| EvidenceError::io("cannot remove stale", p, e))?;
            }
            if let Some(d) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(d).map_err(|e| EvidenceError::io("cannot create", d, e))?;
            }
            Some(UnixListener::bind(p).map_err(|e| EvidenceError::io("cannot listen on", p, e))?)
        }
    };
    for (k, l) in [(FrontKind::Trader, tl), (FrontKind::Market, ml)] {
        let sh = Arc::clone(&sh);
        thread::spawn(move || accept_loop(&sh, k, Some(l)));
    }
    if let Some(l) = control_listener {
        let sh = Arc::clone(&sh);
        thread::spawn(move || control_loop(&sh, &l));
    }
    sh.log.log(
        "sim.state",
        json!({"front": "trader", "state": "up", "cause": "start", "port": tport}),
    );
    sh.log.log(
        "sim.state",
        json!({"front": "market", "state": "up", "cause": "start", "port": mport}),
    );
    Ok(SimHandle {
        sh,
        stop_rx,
        trader_port: tport,
        market_port: mport,
        control_socket: o.control_socket.clone(),
    })
}

/// Run the simulator until SIGTERM/SIGINT or the `stop` command.
pub fn run(cli: Cli) -> Result<Exit> {
    let (mut tp, mut mp) = (0, 0);
    if let Some(c) = &cli.config {
        (tp, mp) = ports_from_config(c)?;
    }
    let session_window = match &cli.session_window {
        None => None,
        Some(s) => Some(parse_window(s).ok_or_else(|| {
            EvidenceError::usage(format!(
                "--session-window: expected HH:MM-HH:MM, found {s:?}"
            ))
        })?),
    };
    let o = SimOptions {
        host: cli.host.clone(),
        trader_port: cli.trader_port.unwrap_or(tp),
        market_port: cli.market_port.unwrap_or(mp),
        control_socket: cli.control_socket.clone(),
        event_log: cli.event_log.clone(),
        login_latency_ms: cli.login_latency_ms,
        heartbeat_ms: cli.heartbeat_ms,
        tick_interval_ms: cli.tick_interval_ms,
        instruments: cli.instruments.clone(),
        auth_fail: cli.auth_fail,
        session_window,
    };
    // Signals: USR1 down, USR2 up, TERM/INT stop.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGUSR1,
        signal_hook::consts::SIGUSR2,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
    ])
    .map_err(|e| EvidenceError::failed(format!("cannot install signal handlers: {e}")))?;
    let sim = start(&o)?;
    let handle = signals.handle();
    {
        let sh = Arc::clone(&sim.sh);
        thread::spawn(move || {
            for sig in signals.forever() {
                match sig {
                    signal_hook::consts::SIGUSR1 => {
                        sh.set_down(FrontKind::Trader, "SIGUSR1");
                        sh.set_down(FrontKind::Market, "SIGUSR1");
                    }
                    signal_hook::consts::SIGUSR2 => {
                        sh.set_up(FrontKind::Trader, "SIGUSR2");
                        sh.set_up(FrontKind::Market, "SIGUSR2");
                    }
                    signal_hook::consts::SIGINT => sh.stop("SIGINT"),
                    _ => sh.stop("SIGTERM"),
                }
            }
        });
    }
    let ready = json!({"kind": "sim.ready", "ts_ns": now_ns(), "host": o.host, "trader_port": sim.trader_port,
        "market_port": sim.market_port, "pid": std::process::id(),
        "control_socket": o.control_socket.as_ref().map(|p| p.display().to_string())});
    let line = format!("{ready}\n");
    if let Some(p) = &cli.ports_file
        && let Err(e) = evidence_core::io::write_atomic(p, line.as_bytes())
    {
        sim.stop();
        return Err(e);
    }
    if let Err(e) = cli::stdout_write(&line) {
        sim.stop();
        return Err(e);
    }
    sim.wait();
    handle.close();
    Ok(Exit::Pass)
}
