//! `ctp-probe`: watches the CTP trader and market fronts and writes the original probe's
//! `[health] ts_ns=<ns> state=healthy|unhealthy` lines, at once on every state change and every
//! `--health-interval-ms`, plus JSONL events that carry the reason of every disconnect and every
//! reconnect attempt.
//!
//! One thread per front connects, logs in (the `sim` mode speaks ctp-front-sim's protocol; the
//! `tcp` mode only holds a TCP connection open), then blocks reading that connection: an EOF or a
//! reset is noticed the moment the kernel reports it, and a silent connection by heartbeat timeout.
//! After a loss it reconnects at once, then with the config's backoff (initial, doubling, capped at
//! max). The health state is shared under one mutex: the thread that changes it takes `ts_ns` and
//! writes and flushes the line while holding the lock, so lines are in `ts_ns` order and each line's
//! time is the moment the change was seen (right after `login_ok` arrived, right after the EOF).
//!
//! Formats: docs/formats.md (`## ctp-probe`).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use clap::builder::TypedValueParser as _;
use clap::{Parser, ValueEnum};
use ctp_config::{CtpConfig, PasswordSource};
use evidence_core::cli::{self, EXIT_STATUS_HELP};
use evidence_core::duration::{DurationParser, whole_millis};
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Exit, Result, signals};
use reconnect_core::probe_log::{HealthSample, HealthState, write_health_line};
use reconnect_core::sim_proto::{self as proto, Client, Credentials, Message};
use serde_json::{Value, json};

mod ctp_api_mode;

const AFTER_HELP: &str = "\
EXAMPLE:
  export CTP_SIM_PASSWORD=...            # the config's password_env; never on the command line
  ctp-probe configs/sim/local.yaml --monitor-seconds -1 --health-interval-ms 1000 \\
      --log-file runtime/reconnect_probe.log --events-file runtime/probe_events.jsonl &
  until grep -q 'state=healthy' runtime/reconnect_probe.log; do sleep 0.05; done
  ...                                    # inject faults
  kill -TERM %1; wait %1                 # final [health] line, clean logout, exit 0

HEALTH: healthy = both fronts connected (and, in sim mode, logged in). A line is written at once
on every state change, with ts_ns taken when the change was seen, and every --health-interval-ms.
A loss is seen at once on EOF or RST, and after --heartbeat-timeout-ms without any message from
the front (sim mode) or when a fresh connect every --tcp-check-interval-ms fails (tcp mode: a
firewall fault does not touch an idle connection). Reconnect: attempt 1 at once, then
reconnect_initial_backoff_ms doubling to reconnect_max_backoff_ms; it never gives up while
monitoring (after reconnect_max_attempts, where the C++ gateway gives up for good, it logs
probe.exhausted and keeps trying at the max backoff). No market data is subscribed
(CTP_SIM_INSTRUMENT is ignored).

CTP-API MODE (--mode ctp-api, or auto with enable_real_api: true and both libraries in
--ctp-lib-dir): the vendor thosttraderapi_se.so / thostmduserapi_se.so, loaded at run time;
healthy = OnRspUserLogin on both fronts (trader: ReqAuthenticate first when the config has
app_id/auth_code). Each OnFrontDisconnected is a probe.disconnect with its code named
(net_read_failed 0x1001, net_write_failed 0x1002, heartbeat_timeout 0x2001, ...); no
OnFrontConnected within connect_timeout_ms is connect_timeout. The probe releases the API object
on every loss and re-creates it with the backoff above (the library alone reconnects hundreds of
times a second). The libraries' stdout goes to --api-log, never into the [health] stream.
  ctp-probe configs/sim/ctp.yaml --mode ctp-api \\
      --ctp-lib-dir ctp_api/v6.7.11_20250617_api_traderapi_se_linux64

EXIT STATUS of the probe: 0 the monitor period ended (or SIGTERM, the normal way for a drill
orchestrator to stop it) and the fronts were healthy at least once; 1 they never were (connect
refused, auth failed, login refused...: see the events); 2 bad config or usage, or the log could
not be written; 130 SIGINT. --monitor-seconds 0 is a one-shot check: exit 0 as soon as both
fronts are healthy, 1 if not within connect_timeout_ms. The original simnow_probe's codes map as:
2 (unknown option) -> 2; 3 (config load failed) -> 2; 4 (connect failed) -> the probe keeps
retrying, exit 1 if never healthy; 5 (subscribe failed) -> not applicable (no subscription).";

/// How to talk to the fronts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// `sim` when both fronts are loopback addresses (ctp-front-sim, or fault-proxy in front of
    /// it), `tcp` otherwise.
    Auto,
    /// ctp-front-sim's newline-JSON protocol: hello, auth, login; heartbeats watched.
    Sim,
    /// Plain TCP connect-check (real CTP fronts): healthy = both connections established and open.
    Tcp,
    /// The vendor CTP API (thosttraderapi_se.so, thostmduserapi_se.so from --ctp-lib-dir):
    /// authenticate and log in on both fronts; `auto` picks it when the config has
    /// `enable_real_api: true` and both libraries are there.
    CtpApi,
}

impl Cli {
    /// The config: `--config`, the positional one, else `sim/ctp.yaml` over the config search
    /// order of `evidence_core::paths` (`configs/sim/ctp.yaml` in a checkout).
    #[must_use]
    pub fn config(&self) -> PathBuf {
        self.config_flag
            .clone()
            .or_else(|| self.config_positional.clone())
            .unwrap_or_else(|| evidence_core::paths::config_or_checkout("sim/ctp.yaml"))
    }
}

/// Watch the CTP trader and market fronts: `[health]` lines on every state change and every
/// interval, JSONL events with the reason of each disconnect and reconnect attempt.
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}\n\n{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// CTP config (trader_front, market_front, credentials, connect and reconnect knobs); the
    /// original's positional form (`ctp-probe configs/sim/ctp.yaml`).
    #[arg(value_name = "CONFIG", conflicts_with = "config_flag")]
    pub config_positional: Option<PathBuf>,
    /// CTP config, as the other tools take it [default: configs/sim/ctp.yaml].
    #[arg(long = "config", value_name = "PATH")]
    pub config_flag: Option<PathBuf>,
    /// How long to monitor, in seconds; negative = until SIGTERM/SIGINT; 0 = one-shot check.
    #[arg(long, default_value_t = 300, allow_negative_numbers = true)]
    pub monitor_seconds: i64,
    /// Interval of the periodic `[health]` lines, in ms (floored at 100, as the original). State
    /// changes are written at once whatever the interval.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    pub health_interval_ms: i64,
    /// Protocol: auto (ctp-api when the config has enable_real_api: true and the libraries are in
    /// --ctp-lib-dir, else sim on loopback fronts, tcp otherwise), sim, tcp, ctp-api.
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    pub mode: Mode,
    /// ctp-api mode: folder with thosttraderapi_se.so and thostmduserapi_se.so (as ctp-preflight).
    #[arg(long, default_value = ctp_api::DEFAULT_LIB_DIR)]
    pub ctp_lib_dir: PathBuf,
    /// ctp-api mode: where the libraries' own stdout goes (appended, mode 0600)
    /// [default: api_stdout.log in the config's flow_path].
    #[arg(long, value_name = "FILE")]
    pub api_log: Option<PathBuf>,
    /// Write the `[health]` lines to this file (truncated at start) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Write JSONL events (probe.start, probe.attempt, probe.login, probe.connect,
    /// probe.disconnect, probe.state, probe.exhausted, probe.stop) to this file (truncated).
    #[arg(long = "event-log", visible_alias = "events-file", value_name = "FILE")]
    pub events_file: Option<PathBuf>,
    /// Declare a logged-in sim-mode front lost after this long without any message from it
    /// [default: 3 x the front's heartbeat_ms; 3000 when it sends none, with a ping every third].
    #[arg(long, value_name = "DURATION", value_parser = DurationParser::millis().map(whole_millis))]
    pub heartbeat_timeout_ms: Option<u64>,
    /// tcp mode: every this many ms, also open (and at once close) a fresh connection to each
    /// front, so that a firewall fault on an idle connection is seen (refused, or no answer within
    /// the heartbeat timeout, 3000 ms by default); 0 = only watch the held connections.
    #[arg(long, value_name = "DURATION", default_value = "1000", value_parser = DurationParser::millis().map(whole_millis))]
    pub tcp_check_interval_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn backoff_doubles_to_the_cap() {
        let k = Knobs {
            connect_timeout: Duration::from_secs(1),
            initial_backoff_ms: 50,
            max_backoff_ms: 1000,
            max_attempts: 8,
            heartbeat_timeout_ms: None,
            tcp_check: None,
        };
        let b: Vec<u64> = (1..=8).map(|n| k.backoff_ms(n)).collect();
        assert_eq!(b, [0, 50, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(k.backoff_ms(200), 1000);
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.3.0.9"));
        assert!(is_loopback("::1"));
        assert!(is_loopback("localhost"));
        assert!(!is_loopback("182.254.243.31"));
        assert!(!is_loopback("front.example.com"));
    }

    #[test]
    fn io_errors_are_classified() {
        let k = |kind| classify_read_error(&io::Error::new(kind, "x")).0;
        assert_eq!(k(io::ErrorKind::UnexpectedEof), "eof");
        assert_eq!(k(io::ErrorKind::ConnectionReset), "reset");
        assert_eq!(k(io::ErrorKind::ConnectionAborted), "reset");
        assert_eq!(k(io::ErrorKind::InvalidData), "protocol_error");
        assert_eq!(k(io::ErrorKind::PermissionDenied), "io_error");
    }
}

/// The two fronts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Front {
    Trader = 0,
    Market = 1,
}

impl Front {
    const BOTH: [Front; 2] = [Front::Trader, Front::Market];

    fn name(self) -> &'static str {
        match self {
            Front::Trader => "trader",
            Front::Market => "market",
        }
    }

    fn idx(self) -> usize {
        self as usize
    }
}

/// Connect and reconnect knobs from the config.
#[derive(Debug, Clone)]
struct Knobs {
    connect_timeout: Duration,
    initial_backoff_ms: u64,
    max_backoff_ms: u64,
    max_attempts: u64,
    heartbeat_timeout_ms: Option<u64>,
    tcp_check: Option<Duration>,
}

impl Knobs {
    /// The wait before attempt `n` (1-based) of one outage: 0, then initial, doubling, capped.
    fn backoff_ms(&self, n: u64) -> u64 {
        if n <= 1 {
            return 0;
        }
        let shift = u32::try_from((n - 2).min(40)).unwrap_or(40);
        self.initial_backoff_ms
            .saturating_mul(1_u64 << shift)
            .min(self.max_backoff_ms)
    }
}

/// Why an attempt failed or a session ended: a stable reason and a human detail.
#[derive(Debug, Clone)]
struct Loss {
    reason: &'static str,
    detail: String,
}

impl Loss {
    fn new(reason: &'static str, detail: impl Into<String>) -> Self {
        Loss {
            reason,
            detail: detail.into(),
        }
    }
}

fn classify_read_error(e: &io::Error) -> (&'static str, String) {
    let reason = match e.kind() {
        io::ErrorKind::UnexpectedEof => "eof",
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => "reset",
        io::ErrorKind::InvalidData => "protocol_error",
        _ => "io_error",
    };
    (reason, e.to_string())
}

fn classify_connect_error(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connect_refused",
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "connect_timeout",
        _ => "connect_error",
    }
}

fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the health log and event log see; guarded by one mutex so that lines are ordered.
struct State {
    up: [bool; 2],
    healthy: bool,
    ever_healthy: bool,
    last_ts: i64,
    health: Box<dyn Write + Send>,
    events: Option<(File, PathBuf)>,
    write_error: Option<EvidenceError>,
    last_failure: [Option<String>; 2],
    stopped: bool,
}

impl State {
    /// Wall-clock now, never before the last line written (a clock step back would otherwise
    /// reorder the log).
    fn ts(&mut self) -> i64 {
        let t = now_ns().max(self.last_ts);
        self.last_ts = t;
        t
    }

    fn health_line(&mut self, ts_ns: i64) {
        let state = if self.healthy {
            HealthState::Healthy
        } else {
            HealthState::Unhealthy
        };
        if self.write_error.is_some() {
            return;
        }
        // Format first, then one write: a reader tailing the log never sees half a line.
        let mut line = Vec::with_capacity(64);
        let written = write_health_line(&mut line, &HealthSample { ts_ns, state })
            .and_then(|()| self.health.write_all(&line))
            .and_then(|()| self.health.flush());
        if let Err(e) = written {
            self.write_error = Some(EvidenceError::io("cannot write", "the health log", e));
        }
    }

    fn event(&mut self, kind: &str, ts_ns: i64, fields: Value) {
        let mut rec = json!({"kind": kind, "ts_ns": ts_ns});
        if let (Some(r), Value::Object(mut f)) = (rec.as_object_mut(), fields) {
            r.append(&mut f);
        }
        if let Some((f, path)) = self.events.as_mut() {
            let mut line = rec.to_string();
            line.push('\n');
            if let Err(e) = f.write_all(line.as_bytes())
                && self.write_error.is_none()
            {
                self.write_error = Some(EvidenceError::io("cannot write", path.as_path(), e));
            }
        }
    }

    /// Recompute the aggregate state; on a change, write the line and the event at `ts`.
    fn update(&mut self, ts: i64, cause: &Value) -> Option<bool> {
        let healthy = self.up[0] && self.up[1];
        if healthy == self.healthy {
            return None;
        }
        self.healthy = healthy;
        self.health_line(ts);
        if healthy {
            self.ever_healthy = true;
        }
        let state = if healthy { "healthy" } else { "unhealthy" };
        self.event(
            "probe.state",
            ts,
            json!({"state": state, "trader": self.up[0], "market": self.up[1], "cause": cause}),
        );
        Some(healthy)
    }
}

/// What the front threads and the main thread share.
struct Shared {
    sim: bool,
    api: Option<Arc<ctp_api_mode::ApiMode>>,
    creds: Option<Credentials>,
    addrs: [String; 2],
    knobs: Knobs,
    stop: AtomicBool,
    wake: (Mutex<()>, Condvar),
    streams: Mutex<[Option<TcpStream>; 2]>,
    state: Mutex<State>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Wait `d` unless the probe stops first (returns true then).
    fn wait(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        let mut g = lock(&self.wake.0);
        loop {
            if self.stopping() {
                return true;
            }
            let now = Instant::now();
            if now >= end {
                return false;
            }
            g = self
                .wake
                .1
                .wait_timeout(g, end - now)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
    }

    fn set_stream(&self, f: Front, s: Option<TcpStream>) {
        lock(&self.streams)[f.idx()] = s;
    }

    fn attempt(&self, f: Front, n: u64, backoff_ms: u64) {
        let mut st = lock(&self.state);
        if st.stopped {
            return;
        }
        let ts = st.ts();
        st.event(
            "probe.attempt",
            ts,
            json!({"front": f.name(), "attempt": n, "backoff_ms": backoff_ms, "addr": self.addrs[f.idx()]}),
        );
        if n == self.knobs.max_attempts + 1 {
            st.event(
                "probe.exhausted",
                ts,
                json!({"front": f.name(), "attempts": self.knobs.max_attempts,
                       "note": "reconnect_max_attempts reached: the C++ gateway gives up here; the probe keeps trying at the max backoff"}),
            );
            drop(st);
            cli::warn(&format!(
                "{} front: {} reconnect attempts failed (reconnect_max_attempts); still trying every {} ms",
                f.name(),
                self.knobs.max_attempts,
                self.knobs.max_backoff_ms
            ));
        }
    }

    /// A front is connected (and logged in): `kind` is `probe.login` or `probe.connect`.
    fn front_up(&self, f: Front, kind: &str, fields: Value) {
        let mut st = lock(&self.state);
        if st.stopped {
            return;
        }
        let ts = st.ts();
        st.up[f.idx()] = true;
        st.last_failure[f.idx()] = None;
        // The health line first: it is the measurement.
        let changed = st.update(ts, &json!({"front": f.name(), "event": kind}));
        let mut ev = json!({"front": f.name()});
        if let (Some(e), Value::Object(mut x)) = (ev.as_object_mut(), fields) {
            e.append(&mut x);
        }
        st.event(kind, ts, ev);
        drop(st);
        if changed == Some(true) {
            cli::info("healthy: both fronts connected and logged in");
        }
    }

    /// A session ended (`attempt` None) or an attempt failed.
    fn front_down(&self, f: Front, loss: &Loss, attempt: Option<u64>) {
        let mut st = lock(&self.state);
        if st.stopped {
            return;
        }
        let ts = st.ts();
        let was_up = st.up[f.idx()];
        st.up[f.idx()] = false;
        st.last_failure[f.idx()] = Some(format!("{}: {}", loss.reason, loss.detail));
        let changed = st.update(
            ts,
            &json!({"front": f.name(), "event": "probe.disconnect", "reason": loss.reason}),
        );
        st.event(
            "probe.disconnect",
            ts,
            json!({"front": f.name(), "reason": loss.reason, "detail": loss.detail,
                   "during": if attempt.is_some() { "attempt" } else { "session" },
                   "attempt": attempt, "was_up": was_up}),
        );
        drop(st);
        if changed == Some(false) {
            cli::info(&format!(
                "unhealthy: {} front {} ({})",
                f.name(),
                loss.reason,
                loss.detail
            ));
        } else if attempt.is_none() {
            cli::info(&format!(
                "{} front lost: {} ({})",
                f.name(),
                loss.reason,
                loss.detail
            ));
        }
    }
}

/// Connect to `addr` within `timeout`.
fn connect(addr: &str, timeout: Duration) -> std::result::Result<TcpStream, Loss> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| Loss::new("connect_error", format!("cannot resolve {addr}: {e}")))?
        .collect();
    let mut last = Loss::new("connect_error", format!("no address for {addr}"));
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Loss::new(classify_connect_error(&e), format!("{a}: {e}")),
        }
    }
    Err(last)
}

/// The next message that is not a heartbeat or tick, before `deadline`.
fn expect(
    client: &mut Client,
    deadline: Instant,
    step: &str,
) -> std::result::Result<Message, Loss> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Loss::new(
                "login_timeout",
                format!("no {step} reply within connect_timeout_ms"),
            ));
        }
        match client.recv(left) {
            Ok(Some(Message::Heartbeat { .. } | Message::Tick { .. })) => {}
            Ok(Some(Message::Closing { reason })) => {
                return Err(Loss::new(
                    "eof",
                    format!("front closing during {step}: {reason}"),
                ));
            }
            Ok(Some(m)) => return Ok(m),
            Ok(None) => {}
            Err(e) => {
                let (r, d) = classify_read_error(&e);
                return Err(Loss::new(r, format!("during {step}: {d}")));
            }
        }
    }
}

fn unexpected(step: &str, m: &Message) -> Loss {
    let t = serde_json::to_value(m)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    Loss::new("protocol_error", format!("expected {step}, got {t}"))
}

/// Hello, optional auth, login. Returns the front's heartbeat interval and the login reply.
fn sim_login(
    client: &mut Client,
    c: &Credentials,
    deadline: Instant,
) -> std::result::Result<(u64, proto::LoginOk), Loss> {
    let io = |e: io::Error| {
        let (r, d) = classify_read_error(&e);
        Loss::new(r, d)
    };
    client
        .send(&Message::Hello {
            broker_id: c.broker_id.clone(),
            user_id: c.user_id.clone(),
            client: Some("ctp-probe".into()),
        })
        .map_err(io)?;
    let hb = match expect(client, deadline, "hello_ack")? {
        Message::HelloAck { heartbeat_ms, .. } => heartbeat_ms,
        m => return Err(unexpected("hello_ack", &m)),
    };
    if let (Some(app_id), Some(auth_code)) = (&c.app_id, &c.auth_code) {
        client
            .send(&Message::Auth {
                app_id: app_id.clone(),
                auth_code: auth_code.clone(),
            })
            .map_err(io)?;
        match expect(client, deadline, "auth_ok")? {
            Message::AuthOk => {}
            Message::AuthFailed { reason } => return Err(Loss::new("auth_failed", reason)),
            m => return Err(unexpected("auth_ok", &m)),
        }
    }
    client
        .send(&Message::Login {
            user_id: c.user_id.clone(),
            password: c.password.clone(),
        })
        .map_err(io)?;
    match expect(client, deadline, "login_ok")? {
        Message::LoginOk {
            front,
            trading_day,
            session_id,
            ts_ns,
        } => Ok((
            hb,
            proto::LoginOk {
                front,
                trading_day,
                session_id,
                server_ts_ns: ts_ns,
            },
        )),
        Message::LoginRefused { reason } => Err(Loss::new("login_refused", reason)),
        m => Err(unexpected("login_ok", &m)),
    }
}

/// Read a logged-in sim session until it is lost (or the probe stops).
fn sim_session(sh: &Shared, client: &mut Client, front_hb_ms: u64) -> Loss {
    let (timeout, ping_every) = match (sh.knobs.heartbeat_timeout_ms, front_hb_ms) {
        (Some(t), 0) => (t, Some((t / 3).max(1))),
        (Some(t), _) => (t, None),
        (None, 0) => (3000, Some(1000)),
        (None, hb) => (hb.saturating_mul(3), None),
    };
    let timeout = Duration::from_millis(timeout.max(1));
    let ping_every = ping_every.map(Duration::from_millis);
    let mut last_msg = Instant::now();
    let mut next_ping = ping_every.map(|p| Instant::now() + p);
    let mut seq = 0_u64;
    loop {
        let now = Instant::now();
        if let Some(t) = next_ping
            && now >= t
        {
            seq += 1;
            if let Err(e) = client.send(&Message::Ping { seq }) {
                let (r, d) = classify_read_error(&e);
                return Loss::new(r, format!("ping: {d}"));
            }
            next_ping = ping_every.map(|p| t + p);
        }
        let deadline = last_msg + timeout;
        if now >= deadline {
            return Loss::new(
                "heartbeat_timeout",
                format!("no message from the front for {} ms", timeout.as_millis()),
            );
        }
        let mut wait = deadline - now;
        if let Some(t) = next_ping {
            wait = wait.min(
                t.saturating_duration_since(now)
                    .max(Duration::from_millis(1)),
            );
        }
        match client.recv(wait) {
            Ok(Some(Message::Closing { reason })) => {
                return Loss::new("eof", format!("front sent closing ({reason})"));
            }
            Ok(Some(_)) => last_msg = Instant::now(),
            Ok(None) => {}
            Err(e) => {
                let (r, d) = classify_read_error(&e);
                return Loss::new(r, d);
            }
        }
        if sh.stopping() {
            return Loss::new("stopped", "probe stopping");
        }
    }
}

/// Read a plain TCP connection until it is closed or reset. An idle connection sees nothing of a
/// firewall fault (a REJECT or DROP rule only hits new packets), so every `tcp_check` a fresh
/// connection is opened and closed at once: refused or timed out (after the heartbeat timeout)
/// means the front is lost.
fn tcp_session(sh: &Shared, mut s: TcpStream, addr: &str) -> Loss {
    let check = sh.knobs.tcp_check;
    let check_timeout = Duration::from_millis(sh.knobs.heartbeat_timeout_ms.unwrap_or(3000));
    let _ = s.set_read_timeout(check);
    let mut next_check = check.map(|c| Instant::now() + c);
    let mut buf = [0_u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Loss::new("eof", "connection closed by the front"),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                let (r, d) = classify_read_error(&e);
                return Loss::new(r, d);
            }
        }
        if sh.stopping() {
            return Loss::new("stopped", "probe stopping");
        }
        if let (Some(t), Some(c)) = (next_check, check)
            && Instant::now() >= t
        {
            match connect(addr, check_timeout) {
                Ok(probe) => {
                    let _ = probe.shutdown(Shutdown::Both);
                }
                Err(loss) => {
                    if sh.stopping() {
                        return Loss::new("stopped", "probe stopping");
                    }
                    return Loss::new(loss.reason, format!("liveness connect: {}", loss.detail));
                }
            }
            next_check = Some(Instant::now() + c);
        }
    }
}

/// One front's thread: connect, log in, watch, reconnect; until the probe stops.
fn front_loop(sh: &Shared, f: Front) {
    if let Some(m) = &sh.api {
        return ctp_api_mode::front_loop(sh, f, m);
    }
    let addr = sh.addrs[f.idx()].clone();
    let mut n = 0_u64;
    loop {
        if sh.stopping() {
            return;
        }
        n += 1;
        let backoff = sh.knobs.backoff_ms(n);
        if backoff > 0 && sh.wait(Duration::from_millis(backoff)) {
            return;
        }
        sh.attempt(f, n, backoff);
        let started = Instant::now();
        let deadline = started + sh.knobs.connect_timeout;
        let stream = match connect(&addr, sh.knobs.connect_timeout) {
            Ok(s) => s,
            Err(loss) => {
                sh.front_down(f, &loss, Some(n));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        sh.set_stream(f, stream.try_clone().ok());
        if sh.stopping() {
            let _ = stream.shutdown(Shutdown::Both);
            return;
        }
        let connect_ms = started.elapsed().as_secs_f64() * 1e3;
        let loss = if sh.sim {
            let mut client = match Client::from_stream(stream) {
                Ok(c) => c,
                Err(e) => {
                    sh.set_stream(f, None);
                    sh.front_down(f, &Loss::new("io_error", e.to_string()), Some(n));
                    continue;
                }
            };
            let Some(creds) = sh.creds.as_ref() else {
                return;
            };
            match sim_login(&mut client, creds, deadline) {
                Err(loss) => {
                    let _ = client.stream().shutdown(Shutdown::Both);
                    sh.set_stream(f, None);
                    if sh.stopping() {
                        return;
                    }
                    sh.front_down(f, &loss, Some(n));
                    continue;
                }
                Ok((hb, ok)) => {
                    sh.front_up(
                        f,
                        "probe.login",
                        json!({"attempt": n, "server_ts_ns": ok.server_ts_ns, "session_id": ok.session_id,
                               "trading_day": ok.trading_day, "heartbeat_ms": hb,
                               "connect_ms": round3(connect_ms),
                               "login_ms": round3(started.elapsed().as_secs_f64() * 1e3)}),
                    );
                    n = 0;
                    let loss = sim_session(sh, &mut client, hb);
                    let _ = client.stream().shutdown(Shutdown::Both);
                    loss
                }
            }
        } else {
            sh.front_up(
                f,
                "probe.connect",
                json!({"attempt": n, "connect_ms": round3(connect_ms), "addr": addr}),
            );
            n = 0;
            tcp_session(sh, stream, &addr)
        };
        sh.set_stream(f, None);
        if sh.stopping() {
            return;
        }
        sh.front_down(f, &loss, None);
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Everything the run needs, checked before any connection is made.
struct Settings {
    sim: bool,
    api: Option<Arc<ctp_api_mode::ApiMode>>,
    creds: Option<Credentials>,
    addrs: [String; 2],
    knobs: Knobs,
    monitor: Option<Duration>,
    one_shot: bool,
    interval: Duration,
    config: PathBuf,
}

fn settings(cli: &Cli) -> Result<Settings> {
    if cli.heartbeat_timeout_ms == Some(0) {
        return Err(EvidenceError::usage(
            "--heartbeat-timeout-ms must be > 0".to_string(),
        ));
    }
    if cli.health_interval_ms < 100 {
        cli::warn(&format!(
            "--health-interval-ms {} floored at 100 (state changes are written at once anyway)",
            cli.health_interval_ms
        ));
    }
    if cli.health_interval_ms > 86_400_000 {
        return Err(EvidenceError::usage(format!(
            "--health-interval-ms must be at most 86400000 (a day), found {}",
            cli.health_interval_ms
        )));
    }
    let cfg = CtpConfig::load(&cli.config())?;
    for w in &cfg.warnings {
        cli::warn(&format!("{}: {w}", cli.config().display()));
    }
    cfg.validate()?;
    let label = cli.config().display().to_string();
    let v = &cfg.values;
    let front = |f: &Option<ctp_config::Front>, key: &str| {
        f.clone()
            .ok_or_else(|| EvidenceError::parse(&label, 0, key, "tcp://host:port", "missing"))
    };
    let trader = front(&v.trader_front, "trader_front")?;
    let market = front(&v.market_front, "market_front")?;
    let api_mode = match cli.mode {
        Mode::CtpApi => true,
        Mode::Auto => ctp_api_mode::auto_selects(&cfg, &cli.ctp_lib_dir),
        Mode::Sim | Mode::Tcp => false,
    };
    let sim = match cli.mode {
        Mode::Sim => true,
        Mode::Tcp | Mode::CtpApi => false,
        Mode::Auto => !api_mode && is_loopback(&trader.host) && is_loopback(&market.host),
    };
    let api = if api_mode {
        Some(Arc::new(ctp_api_mode::settings(
            &cfg,
            &label,
            &cli.ctp_lib_dir,
            cli.api_log.as_deref(),
            &[trader.to_string(), market.to_string()],
        )?))
    } else {
        None
    };
    let creds = if sim {
        let pw = match cfg.password_source() {
            PasswordSource::Inline(p) => {
                cli::warn(&format!(
                    "{label}: the config holds a plaintext password; prefer password_env"
                ));
                p
            }
            PasswordSource::Env { value, .. } => value,
            PasswordSource::Missing { env_name } => {
                return Err(EvidenceError::usage(format!(
                    "{label}: no password: the config has no `password` and ${env_name} (password_env) is unset or empty"
                )));
            }
        };
        Some(Credentials::from_config(&cfg, &pw))
    } else {
        None
    };
    let ms = |x: i64| u64::try_from(x.max(1)).unwrap_or(1);
    let knobs = Knobs {
        connect_timeout: Duration::from_millis(ms(v.connect_timeout_ms)),
        initial_backoff_ms: ms(v.reconnect_initial_backoff_ms),
        max_backoff_ms: ms(v.reconnect_max_backoff_ms),
        max_attempts: ms(v.reconnect_max_attempts),
        heartbeat_timeout_ms: cli.heartbeat_timeout_ms,
        tcp_check: (cli.tcp_check_interval_ms > 0)
            .then(|| Duration::from_millis(cli.tcp_check_interval_ms)),
    };
    let interval = Duration::from_millis(ms(cli.health_interval_ms.max(100)));
    let monitor = u64::try_from(cli.monitor_seconds)
        .ok()
        .map(Duration::from_secs);
    Ok(Settings {
        sim,
        api,
        creds,
        addrs: [trader.to_string(), market.to_string()],
        knobs,
        monitor,
        one_shot: cli.monitor_seconds == 0,
        interval,
        config: cli.config(),
    })
}

fn create(path: &Path) -> Result<File> {
    if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(|e| EvidenceError::io("cannot create", d, e))?;
    }
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| EvidenceError::io("cannot open", path, e))
}

/// The `probe.start` event, the first health line and the message saying what is watched.
fn announce(sh: &Shared, s: &Settings, monitor_seconds: i64) {
    let mode = match (&s.api, s.sim) {
        (Some(_), _) => "ctp-api",
        (None, true) => "sim",
        (None, false) => "tcp",
    };
    let api_versions = s.api.as_deref().map(ctp_api_mode::versions);
    {
        let mut st = lock(&sh.state);
        let ts = st.ts();
        st.event(
            "probe.start",
            ts,
            json!({"config": s.config.display().to_string(), "mode": mode,
                   "trader": s.addrs[0], "market": s.addrs[1], "pid": std::process::id(),
                   "monitor_seconds": monitor_seconds, "health_interval_ms": s.interval.as_millis(),
                   "connect_timeout_ms": s.knobs.connect_timeout.as_millis(),
                   "reconnect_initial_backoff_ms": s.knobs.initial_backoff_ms,
                   "reconnect_max_backoff_ms": s.knobs.max_backoff_ms,
                   "reconnect_max_attempts": s.knobs.max_attempts,
                   "heartbeat_timeout_ms": s.knobs.heartbeat_timeout_ms,
                   "api_version": api_versions,
                   "version": env!("CARGO_PKG_VERSION")}),
        );
        st.health_line(ts);
    }
    cli::info(&format!(
        "watching trader {} and market {} (mode {mode}, {}, health line every {} ms)",
        s.addrs[0],
        s.addrs[1],
        match s.monitor {
            None => "until SIGTERM/SIGINT".to_string(),
            Some(_) if s.one_shot => "one-shot check".to_string(),
            Some(d) => format!("for {} s", d.as_secs()),
        },
        s.interval.as_millis()
    ));
}

/// The periodic health lines until a signal, the end of the monitor period, a write error or
/// (one-shot) the first healthy state; returns why it stopped.
fn watch(sh: &Shared, s: &Settings) -> &'static str {
    let start = Instant::now();
    let end = if s.one_shot {
        Some(start + s.knobs.connect_timeout)
    } else {
        // A monitor period too long to represent is forever.
        s.monitor.and_then(|d| start.checked_add(d))
    };
    let mut next_tick = start + s.interval;
    loop {
        if signals::interrupted() {
            break signals::signal_name().unwrap_or("signal");
        }
        let now = Instant::now();
        if end.is_some_and(|e| now >= e) {
            break if s.one_shot {
                "one_shot_timeout"
            } else {
                "monitor_end"
            };
        }
        {
            let st = lock(&sh.state);
            if st.write_error.is_some() {
                break "write_error";
            }
            if s.one_shot && st.healthy {
                break "one_shot_healthy";
            }
        }
        if now >= next_tick {
            let mut st = lock(&sh.state);
            let ts = st.ts();
            st.health_line(ts);
            drop(st);
            next_tick += s.interval;
            if next_tick <= now {
                next_tick = now + s.interval;
            }
        }
        let mut nap = next_tick.saturating_duration_since(Instant::now());
        if let Some(e) = end {
            nap = nap.min(e.saturating_duration_since(Instant::now()));
        }
        // Signals and the one-shot condition are polled at this granularity; state changes are
        // written by the front threads themselves, at once.
        thread::sleep(nap.min(Duration::from_millis(10)));
    }
}

/// The final line and `probe.stop`, then every session closed (a logout in sim mode) and the
/// front threads joined (bounded); returns (ever healthy, a write error, the last failures).
fn stop(
    sh: &Shared,
    workers: Vec<thread::JoinHandle<()>>,
    cause: &str,
) -> (bool, Option<EvidenceError>, [Option<String>; 2]) {
    // Final line (the state seen at the stop), then close everything without reporting the
    // closes we cause ourselves as losses.
    let out = {
        let mut st = lock(&sh.state);
        let ts = st.ts();
        st.health_line(ts);
        let state = if st.healthy { "healthy" } else { "unhealthy" };
        let ever = st.ever_healthy;
        st.event(
            "probe.stop",
            ts,
            json!({"cause": cause, "state": state, "ever_healthy": ever}),
        );
        st.stopped = true;
        sh.stop.store(true, Ordering::SeqCst);
        let _ = st.health.flush();
        (
            st.ever_healthy,
            st.write_error.take(),
            st.last_failure.clone(),
        )
    };
    {
        let _g = lock(&sh.wake.0);
        sh.wake.1.notify_all();
    }
    for s in lock(&sh.streams).iter().flatten() {
        if sh.sim {
            let _ = s.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = (&*s).write_all(proto::encode(&Message::Logout).as_bytes());
        }
        let _ = s.shutdown(Shutdown::Both);
    }
    let join_deadline = Instant::now() + Duration::from_secs(2);
    while workers.iter().any(|w| !w.is_finished()) && Instant::now() < join_deadline {
        thread::sleep(Duration::from_millis(5));
    }
    for w in workers {
        if w.is_finished() {
            let _ = w.join();
        }
    }
    out
}

/// Run the probe until the monitor period ends, SIGTERM or SIGINT.
pub fn run(cli: Cli) -> Result<Exit> {
    let s = settings(&cli)?;
    // ctp-api mode: the libraries print to fd 1; move it to the API log first, and write the
    // health lines to the original stdout.
    let api_stdout = s.api.as_deref().map(ctp_api_mode::capture).transpose()?;
    let health: Box<dyn Write + Send> = match (&cli.log_file, api_stdout) {
        (Some(p), _) => Box::new(create(p)?),
        (None, Some(f)) => Box::new(f),
        (None, None) => Box::new(io::stdout()),
    };
    let events = match &cli.events_file {
        Some(p) => Some((create(p)?, p.clone())),
        None => None,
    };
    signals::install()?;
    let sh = Arc::new(Shared {
        sim: s.sim,
        api: s.api.clone(),
        creds: s.creds.clone(),
        addrs: s.addrs.clone(),
        knobs: s.knobs.clone(),
        stop: AtomicBool::new(false),
        wake: (Mutex::new(()), Condvar::new()),
        streams: Mutex::new([None, None]),
        state: Mutex::new(State {
            up: [false, false],
            healthy: false,
            ever_healthy: false,
            last_ts: 0,
            health,
            events,
            write_error: None,
            last_failure: [None, None],
            stopped: false,
        }),
    });
    announce(&sh, &s, cli.monitor_seconds);
    let workers: Vec<_> = Front::BOTH
        .iter()
        .map(|&f| {
            let sh = Arc::clone(&sh);
            thread::Builder::new()
                .name(format!("front-{}", f.name()))
                .spawn(move || front_loop(&sh, f))
                .map_err(|e| EvidenceError::failed(format!("cannot start a thread: {e}")))
        })
        .collect::<Result<_>>()?;

    let cause = watch(&sh, &s);

    let (ever_healthy, write_error, last_failure) = stop(&sh, workers, cause);
    if let Some(e) = write_error {
        return Err(e);
    }
    if cause == "SIGINT" {
        cli::info("interrupted (SIGINT)");
        return Ok(Exit::Interrupted);
    }
    if ever_healthy {
        cli::info(&format!("stopped ({cause}); the fronts were healthy"));
        Ok(Exit::Pass)
    } else {
        let why: Vec<String> = Front::BOTH
            .iter()
            .filter_map(|f| {
                last_failure[f.idx()]
                    .as_ref()
                    .map(|r| format!("{}: {r}", f.name()))
            })
            .collect();
        cli::info(&format!(
            "stopped ({cause}); never healthy{}",
            if why.is_empty() {
                String::new()
            } else {
                format!(" (last failure {})", why.join("; "))
            }
        ));
        Ok(Exit::Breach)
    }
}
