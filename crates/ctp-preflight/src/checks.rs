//! The checks, in output order. Network checks (DNS, TCP connects) run in parallel threads while
//! the local checks run, so the whole preflight takes about as long as its slowest connect.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read as _;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ctp_config::{CtpConfig, Environment, Front, PasswordSource, Secret};
use evidence_core::process::{RunOptions, run_command};
use evidence_core::{EvidenceError, Exit, Result};
use trading_calendar::{Calendar, NightSelect};

use crate::{Cli, Item, Severity};

/// A check's stable identity.
#[derive(Debug, Clone, Copy)]
pub struct CheckDef {
    /// Stable id (kubeadm style), for `--ignore-preflight-errors`.
    pub id: &'static str,
    /// The original's item name (or ours for new checks).
    pub name: &'static str,
    /// Severity of a failure (some checks raise or lower it from the config; see docs).
    pub severity: Severity,
    /// Skipped by `--skip-network-check`.
    pub network: bool,
}

const fn def(id: &'static str, name: &'static str, severity: Severity, network: bool) -> CheckDef {
    CheckDef {
        id,
        name,
        severity,
        network,
    }
}

/// A check, in output order; its definition is `CHECKS[check as usize]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// `config_exists`.
    ConfigExists,
    /// `config_parse`.
    ConfigParse,
    /// `config_keys`.
    ConfigKeys,
    /// `required_fields`.
    RequiredFields,
    /// `production_mode_guard`.
    ProductionModeGuard,
    /// `config_values`.
    ConfigValues,
    /// `password_source`.
    PasswordSource,
    /// `password_plaintext`.
    PasswordPlaintext,
    /// `ctp_lib_files`.
    CtpLibFiles,
    /// `flow_path_writable`.
    FlowPathWritable,
    /// `disk_free`.
    DiskFree,
    /// `dns_resolve`.
    DnsResolve,
    /// `tcp_connect_market_front`.
    TcpConnectMarketFront,
    /// `tcp_connect_trader_front`.
    TcpConnectTraderFront,
    /// `ctp_login`.
    CtpLogin,
    /// `service_window_hint`.
    ServiceWindowHint,
    /// `clock_sync`.
    ClockSync,
    /// `trading_session`.
    TradingSession,
}

impl Check {
    /// Every check, in output order (the order of [`CHECKS`]).
    pub const ALL: [Check; 18] = [
        Check::ConfigExists,
        Check::ConfigParse,
        Check::ConfigKeys,
        Check::RequiredFields,
        Check::ProductionModeGuard,
        Check::ConfigValues,
        Check::PasswordSource,
        Check::PasswordPlaintext,
        Check::CtpLibFiles,
        Check::FlowPathWritable,
        Check::DiskFree,
        Check::DnsResolve,
        Check::TcpConnectMarketFront,
        Check::TcpConnectTraderFront,
        Check::CtpLogin,
        Check::ServiceWindowHint,
        Check::ClockSync,
        Check::TradingSession,
    ];

    /// Its id, name, severity and network flag.
    #[must_use]
    pub fn def(self) -> &'static CheckDef {
        &CHECKS[self as usize]
    }
}

/// Every check, in output order.
pub const CHECKS: &[CheckDef] = &[
    def("ConfigExists", "config_exists", Severity::Error, false),
    def("ConfigParse", "config_parse", Severity::Error, false),
    def("ConfigKeys", "config_keys", Severity::Warning, false),
    def("RequiredFields", "required_fields", Severity::Error, false),
    def(
        "ProductionModeGuard",
        "production_mode_guard",
        Severity::Error,
        false,
    ),
    def("ConfigValues", "config_values", Severity::Error, false),
    def("PasswordSource", "password_source", Severity::Error, false),
    def(
        "PasswordPlaintext",
        "password_plaintext",
        Severity::Warning,
        false,
    ),
    def("CtpLibFiles", "ctp_lib_files", Severity::Warning, false),
    def(
        "FlowPathWritable",
        "flow_path_writable",
        Severity::Error,
        false,
    ),
    def("DiskFree", "disk_free", Severity::Error, false),
    def("DnsResolve", "dns_resolve", Severity::Error, true),
    def(
        "TcpConnectMarketFront",
        "tcp_connect_market_front",
        Severity::Error,
        true,
    ),
    def(
        "TcpConnectTraderFront",
        "tcp_connect_trader_front",
        Severity::Error,
        true,
    ),
    def("CtpLogin", "ctp_login", Severity::Error, true),
    def(
        "ServiceWindowHint",
        "service_window_hint",
        Severity::Info,
        false,
    ),
    def("ClockSync", "clock_sync", Severity::Warning, false),
    def("TradingSession", "trading_session", Severity::Info, false),
];

const SIMNOW_TRADING_HOST: &str = "182.254.243.31";
const SIMNOW_GROUPS: [(u16, u16); 3] = [(30001, 30011), (30002, 30012), (30003, 30013)];
const CTP_LIB_FILES: [&str; 4] = [
    "ThostFtdcTraderApi.h",
    "thostmduserapi_se.so",
    "thosttraderapi_se.so",
    "error.xml",
];

/// The parsed `--ignore-preflight-errors`.
#[derive(Debug, Default)]
pub struct Ignore {
    all: bool,
    ids: BTreeSet<&'static str>,
}

impl Ignore {
    fn covers(&self, d: &CheckDef) -> bool {
        self.all || self.ids.contains(d.id)
    }
}

/// Parse the ignore list: ids or names, any case, or `all`. Unknown entries are a usage error.
pub fn parse_ignore(list: &[String]) -> Result<Ignore> {
    let mut ig = Ignore::default();
    for raw in list {
        let s = raw.trim();
        if s.is_empty() {
            continue;
        }
        if s.eq_ignore_ascii_case("all") {
            ig.all = true;
            continue;
        }
        let d = CHECKS
            .iter()
            .find(|d| d.id.eq_ignore_ascii_case(s) || d.name.eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                EvidenceError::usage(format!(
                    "--ignore-preflight-errors: unknown check {s:?}; known ids: {}",
                    CHECKS.iter().map(|d| d.id).collect::<Vec<_>>().join(",")
                ))
            })?;
        ig.ids.insert(d.id);
    }
    Ok(ig)
}

/// All items and the exit.
pub struct Outcome {
    /// Items in output order.
    pub items: Vec<Item>,
    /// 0, 1 or 2.
    pub exit: Exit,
    /// A message for stderr when the run could not complete (exit 2).
    pub fatal: Option<String>,
    /// SHA-256 of the config file, or `none`.
    pub config_sha256: String,
    secrets: Vec<Secret>,
}

impl Outcome {
    /// Mask every known secret value in `text`.
    #[must_use]
    pub fn scrub(&self, text: &str) -> String {
        self.secrets
            .iter()
            .fold(text.to_string(), |t, s| s.scrub(&t))
    }
}

struct Ctx<'a> {
    ignore: &'a Ignore,
    items: Vec<Item>,
}

impl Ctx<'_> {
    fn push(
        &mut self,
        check: Check,
        sev: Severity,
        ok: bool,
        skipped: bool,
        detail: String,
        t: Instant,
    ) {
        let d = check.def();
        let ok = ok || sev == Severity::Info;
        self.items.push(Item {
            name: d.name.to_string(),
            ok,
            skipped,
            detail,
            id: d.id.to_string(),
            severity: sev,
            ignored: !ok && !skipped && sev == Severity::Error && self.ignore.covers(d),
            duration_ms: crate::ms(t.elapsed()),
            connect_ms: None,
        });
    }
}

/// What the network thread found for one front.
struct NetResult {
    dns: std::result::Result<(SocketAddr, f64), String>,
    connect: Option<std::result::Result<f64, String>>,
    duration: Duration,
}

/// A network check running on its own thread, waited for with a deadline: a DNS lookup that hangs
/// (the resolver's own timeouts can run to tens of seconds) must not hang a preflight run from
/// cron. The thread is left behind when the deadline passes; the process exits soon after anyway.
struct NetHandle {
    rx: mpsc::Receiver<NetResult>,
    start: Instant,
    deadline: Instant,
}

impl NetHandle {
    fn spawn(limit: Duration, work: impl FnOnce() -> NetResult + Send + 'static) -> NetHandle {
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        thread::spawn(move || {
            let _ = tx.send(work());
        });
        NetHandle {
            rx,
            start,
            deadline: start + limit,
        }
    }

    fn wait(self) -> NetResult {
        let left = self.deadline.saturating_duration_since(Instant::now());
        self.rx.recv_timeout(left).unwrap_or_else(|_| NetResult {
            dns: Err(format!(
                "no answer within {} ms (the lookup or the connect hung)",
                self.deadline.duration_since(self.start).as_millis()
            )),
            connect: None,
            duration: self.start.elapsed(),
        })
    }
}

fn probe_front(f: &Front, timeout: Duration) -> NetResult {
    let t = Instant::now();
    let dns = (f.host.as_str(), f.port)
        .to_socket_addrs()
        .map_err(|e| e.to_string())
        .and_then(|mut it| it.next().ok_or_else(|| "no address".to_string()))
        .map(|a| (a, crate::ms(t.elapsed())));
    let connect = match &dns {
        Err(_) => None,
        Ok((addr, _)) => {
            let c = Instant::now();
            Some(match TcpStream::connect_timeout(addr, timeout) {
                Ok(_) => Ok(crate::ms(c.elapsed())),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Err("timed out".into()),
                Err(e) => Err(e.to_string()),
            })
        }
    };
    NetResult {
        dns,
        connect,
        duration: t.elapsed(),
    }
}

/// Run every check.
pub fn run_all(cli: &Cli, ignore: &Ignore) -> Result<Outcome> {
    let mut cx = Ctx {
        ignore,
        items: Vec::new(),
    };
    let (cfg, sha, t) = match load(&mut cx, &cli.config) {
        Ok(loaded) => loaded,
        Err(outcome) => return Ok(outcome),
    };
    let label = cli.config.display().to_string();
    let v = &cfg.values;
    let is_prod = v.environment == Some(Environment::Prod);
    if ignore.all && is_prod {
        return Err(EvidenceError::usage(format!(
            "--ignore-preflight-errors all is refused for a production environment ({label} has environment: prod); name the checks to ignore"
        )));
    }
    let mut secrets: Vec<Secret> = Vec::new();
    secrets.extend(v.password.clone());
    secrets.extend(v.auth_code.clone());
    let pw_source = cfg.password_source();
    if let PasswordSource::Env { value, .. } = &pw_source {
        secrets.push(value.clone());
    }
    // Start the network checks now; they run while the local checks do.
    let timeout = Duration::from_millis(cli.connect_timeout_ms.max(100));
    let net = |f: &Option<Front>| {
        if cli.skip_network_check {
            return None;
        }
        f.clone()
            // DNS gets as long as the connect, plus a second of slack for the thread itself.
            .map(|f| {
                NetHandle::spawn(timeout * 2 + Duration::from_secs(1), move || {
                    probe_front(&f, timeout)
                })
            })
    };
    let market_net = net(&v.market_front);
    let trader_net = net(&v.trader_front);
    cx.push(
        Check::ConfigParse,
        Severity::Error,
        true,
        false,
        format!("parsed YAML ({} keys)", cfg.keys().count()),
        t,
    );

    config_checks(&mut cx, &cfg);
    local_checks(&mut cx, cli, &cfg, &pw_source, is_prod);
    // network: dns_resolve, tcp_connect_*
    let t = Instant::now();
    let market = market_net.map(NetHandle::wait);
    let trader = trader_net.map(NetHandle::wait);
    dns_check(&mut cx, cli, &cfg, (&market, &trader), t);
    let (any_failed, timeouts_only) = tcp_checks(&mut cx, cli, &cfg, (&market, &trader));
    final_checks(&mut cx, cli, &cfg, any_failed && timeouts_only);

    let exit = if cx.items.iter().any(Item::counts_as_error) {
        Exit::Breach
    } else {
        Exit::Pass
    };
    Ok(Outcome {
        items: cx.items,
        exit,
        fatal: None,
        config_sha256: sha,
        secrets,
    })
}

/// `config_exists`, and `config_parse` when it fails: the parsed config, its SHA-256 and when the
/// parse began; or the outcome for a config that cannot be read or parsed (exit 2).
fn load(
    cx: &mut Ctx<'_>,
    path: &Path,
) -> std::result::Result<(CtpConfig, String, Instant), Outcome> {
    let label = path.display().to_string();
    let t = Instant::now();
    if !path.is_file() {
        cx.push(
            Check::ConfigExists,
            Severity::Error,
            false,
            false,
            format!("missing {label}"),
            t,
        );
        return Err(Outcome {
            items: std::mem::take(&mut cx.items),
            exit: Exit::BadInput,
            fatal: Some(format!("cannot read the config {label}: not found")),
            config_sha256: "none".into(),
            secrets: Vec::new(),
        });
    }
    cx.push(
        Check::ConfigExists,
        Severity::Error,
        true,
        false,
        label.clone(),
        t,
    );
    let t = Instant::now();
    let bytes = std::fs::read(path).unwrap_or_default();
    let sha = evidence_core::provenance::sha256_hex(&bytes);
    let cfg = match CtpConfig::load(path) {
        Ok(c) => c,
        Err(e) => {
            // The parser's message may quote the document: mask any inline password it holds.
            let secrets = raw_password(&bytes).into_iter().collect();
            let detail = format!("{e}");
            cx.push(
                Check::ConfigParse,
                Severity::Error,
                false,
                false,
                detail.clone(),
                t,
            );
            return Err(Outcome {
                items: std::mem::take(&mut cx.items),
                exit: Exit::BadInput,
                fatal: Some(format!("cannot parse the config: {detail}")),
                config_sha256: sha,
                secrets,
            });
        }
    };
    Ok((cfg, sha, t))
}

/// `config_keys`, `required_fields`, `production_mode_guard`, `config_values`.
fn config_checks(cx: &mut Ctx<'_>, cfg: &CtpConfig) {
    let v = &cfg.values;
    // config_keys
    let t = Instant::now();
    let detail = if cfg.warnings.is_empty() {
        "no misspelt keys".to_string()
    } else {
        cfg.warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    cx.push(
        Check::ConfigKeys,
        Severity::Warning,
        cfg.warnings.is_empty(),
        false,
        detail,
        t,
    );

    // required_fields
    let t = Instant::now();
    let mut required = vec![
        "environment",
        "is_production_mode",
        "broker_id",
        "user_id",
        "market_front",
        "trader_front",
    ];
    if v.enable_terminal_auth {
        required.extend(["auth_code", "app_id"]);
    }
    let missing: Vec<&str> = required.into_iter().filter(|k| !cfg.has(k)).collect();
    let detail = if missing.is_empty() {
        "all required fields present".to_string()
    } else {
        format!("missing: {}", missing.join(","))
    };
    cx.push(
        Check::RequiredFields,
        Severity::Error,
        missing.is_empty(),
        false,
        detail,
        t,
    );

    // production_mode_guard
    let t = Instant::now();
    let (ok, detail) = production_guard(cfg);
    cx.push(
        Check::ProductionModeGuard,
        Severity::Error,
        ok,
        false,
        detail,
        t,
    );

    // config_values
    let t = Instant::now();
    let detail = if cfg.problems.is_empty() {
        format!(
            "values valid: connect_timeout_ms={} reconnect_max_attempts={} backoff={}..{} ms query_rate_limit_qps={}",
            v.connect_timeout_ms,
            v.reconnect_max_attempts,
            v.reconnect_initial_backoff_ms,
            v.reconnect_max_backoff_ms,
            v.query_rate_limit_qps
        )
    } else {
        cfg.problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    cx.push(
        Check::ConfigValues,
        Severity::Error,
        cfg.problems.is_empty(),
        false,
        detail,
        t,
    );
}

/// `password_source`, `password_plaintext`, `ctp_lib_files`, `flow_path_writable`, `disk_free`.
fn local_checks(
    cx: &mut Ctx<'_>,
    cli: &Cli,
    cfg: &CtpConfig,
    pw_source: &PasswordSource,
    is_prod: bool,
) {
    let path = &cli.config;
    let v = &cfg.values;
    // password_source
    let t = Instant::now();
    let (ok, detail) = match pw_source {
        PasswordSource::Inline(_) => (true, "config.password".to_string()),
        PasswordSource::Env { name, .. } => (true, format!("env:{name}")),
        PasswordSource::Missing { env_name } => {
            (false, format!("missing password and env {env_name}"))
        }
    };
    cx.push(Check::PasswordSource, Severity::Error, ok, false, detail, t);

    // password_plaintext
    let t = Instant::now();
    let (sev, ok, detail) = plaintext_check(cfg, path, is_prod);
    cx.push(Check::PasswordPlaintext, sev, ok, false, detail, t);

    // ctp_lib_files
    let t = Instant::now();
    let sev = if v.enable_real_api {
        Severity::Error
    } else {
        Severity::Warning
    };
    let (ok, mut detail) = lib_files(&cli.ctp_lib_dir);
    if !ok && !v.enable_real_api {
        detail.push_str(" (enable_real_api is false: a warning)");
    }
    cx.push(Check::CtpLibFiles, sev, ok, false, detail, t);

    // flow_path_writable
    let t = Instant::now();
    let (ok, detail) = writable(&v.flow_path);
    cx.push(
        Check::FlowPathWritable,
        Severity::Error,
        ok,
        false,
        detail,
        t,
    );

    // disk_free
    let t = Instant::now();
    let (ok, detail) = disk_free(&cli.runtime_dir, cli.min_free_mb);
    cx.push(Check::DiskFree, Severity::Error, ok, false, detail, t);
}

/// The two fronts' probes: market, trader (none with --skip-network-check).
type NetPair<'a> = (&'a Option<NetResult>, &'a Option<NetResult>);

/// `dns_resolve`; `t`: when the wait for the probes began.
fn dns_check(
    cx: &mut Ctx<'_>,
    cli: &Cli,
    cfg: &CtpConfig,
    (market, trader): NetPair<'_>,
    t: Instant,
) {
    let v = &cfg.values;
    if cli.skip_network_check {
        cx.push(
            Check::DnsResolve,
            Severity::Error,
            true,
            true,
            "skipped (--skip-network-check)".into(),
            t,
        );
    } else {
        let mut parts = Vec::new();
        let mut ok = true;
        for (k, f, r) in [
            ("market", &v.market_front, &market),
            ("trader", &v.trader_front, &trader),
        ] {
            match (f, r) {
                (Some(f), Some(r)) => match &r.dns {
                    Ok((a, ms)) => parts.push(format!("{k} {} -> {} ({ms} ms)", f.host, a.ip())),
                    Err(e) => {
                        ok = false;
                        parts.push(format!("{k} {}: {e}", f.host));
                    }
                },
                _ => {
                    ok = false;
                    parts.push(format!("{k}: no valid front"));
                }
            }
        }
        cx.push(
            Check::DnsResolve,
            Severity::Error,
            ok,
            false,
            parts.join("; "),
            t,
        );
    }
}

/// `tcp_connect_market_front`, `tcp_connect_trader_front`; returns (some connect failed, every
/// failure was a timeout).
fn tcp_checks(
    cx: &mut Ctx<'_>,
    cli: &Cli,
    cfg: &CtpConfig,
    (market, trader): NetPair<'_>,
) -> (bool, bool) {
    let v = &cfg.values;
    let mut timeouts_only = true;
    let mut any_failed = false;
    for (name, key, f, r) in [
        (
            Check::TcpConnectMarketFront,
            "market_front",
            &v.market_front,
            &market,
        ),
        (
            Check::TcpConnectTraderFront,
            "trader_front",
            &v.trader_front,
            &trader,
        ),
    ] {
        let t = Instant::now();
        let raw = cfg.get_with_alias(key).unwrap_or("").trim().to_string();
        let parsed = if raw.is_empty() {
            Err(format!("{key} missing"))
        } else {
            f.clone().ok_or_else(|| {
                Front::parse(&raw)
                    .err()
                    .unwrap_or_else(|| format!("{key} invalid"))
            })
        };
        let (ok, skipped, detail, connect_ms, took) = match (&parsed, cli.skip_network_check, r) {
            (Err(e), _, _) => (false, false, e.clone(), None, None),
            (Ok(f), true, _) => (true, true, format!("skipped {f}"), None, None),
            (Ok(f), false, Some(r)) => match &r.connect {
                Some(Ok(ms)) => (
                    true,
                    false,
                    format!("connected {f} ({ms} ms)"),
                    Some(*ms),
                    Some(r.duration),
                ),
                Some(Err(e)) => (
                    false,
                    false,
                    format!("connect failed {f} ({e})"),
                    None,
                    Some(r.duration),
                ),
                None => (
                    false,
                    false,
                    format!("connect failed {f} (cannot resolve {})", f.host),
                    None,
                    Some(r.duration),
                ),
            },
            (Ok(f), false, None) => (
                false,
                false,
                format!("connect failed {f} (probe thread died)"),
                None,
                None,
            ),
        };
        if !ok {
            any_failed = true;
            if !(detail.contains("timed out") || detail.contains("timeout")) {
                timeouts_only = false;
            }
        }
        cx.push(name, Severity::Error, ok, skipped, detail, t);
        if let Some(last) = cx.items.last_mut() {
            last.connect_ms = connect_ms;
            if let Some(d) = took {
                last.duration_ms = crate::ms(d);
            }
        }
    }

    (any_failed, timeouts_only)
}

/// `ctp_login` (with --check-login), `service_window_hint` (when `timed_out`: some connect failed
/// and every failure timed out), `clock_sync`, `trading_session`.
fn final_checks(cx: &mut Ctx<'_>, cli: &Cli, cfg: &CtpConfig, timed_out: bool) {
    let v = &cfg.values;
    // ctp_login (--check-login): through the vendor API (crates/ctp-api).
    if cli.check_login {
        let t = Instant::now();
        let (ok, skipped, detail) = if cli.skip_network_check {
            (true, true, "skipped (--skip-network-check)".to_string())
        } else {
            let (ok, detail) = crate::login::check(cli, cfg);
            (ok, false, detail)
        };
        cx.push(Check::CtpLogin, Severity::Error, ok, skipped, detail, t);
    }

    // service_window_hint: the original's heuristic, only when every failed connect timed out.
    let t = Instant::now();
    let ports: Vec<u16> = [&v.market_front, &v.trader_front]
        .iter()
        .filter_map(|f| f.as_ref().map(|f| f.port))
        .collect();
    let trading_port = ports.iter().any(|p| (30001..=30013).contains(p));
    let trading_profile = v
        .profile
        .as_deref()
        .is_some_and(|p| p.to_ascii_lowercase().contains("trading"));
    if timed_out && (trading_profile || trading_port) {
        let detail = window_hint(cfg, trading_port, cli.connect_timeout_ms);
        cx.push(
            Check::ServiceWindowHint,
            Severity::Info,
            true,
            true,
            detail,
            t,
        );
    }

    // clock_sync
    let t = Instant::now();
    let (ok, skipped, detail) = clock_sync(cli.max_clock_offset_ms);
    cx.push(Check::ClockSync, Severity::Warning, ok, skipped, detail, t);

    // trading_session
    let t = Instant::now();
    let (skipped, detail) = session_state(cli, cfg);
    cx.push(
        Check::TradingSession,
        Severity::Info,
        true,
        skipped,
        detail,
        t,
    );
}

/// The inline password of a file that does not parse, found line by line, to mask it.
fn raw_password(bytes: &[u8]) -> Option<Secret> {
    let text = String::from_utf8_lossy(bytes);
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        if k.trim().trim_matches('"') != "password" {
            return None;
        }
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty()).then(|| Secret::new(v))
    })
}

fn production_guard(cfg: &CtpConfig) -> (bool, String) {
    let v = &cfg.values;
    let env_raw = cfg
        .get("environment")
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let prod_mode = v.is_production_mode.unwrap_or(false);
    let trading_pair = match (&v.trader_front, &v.market_front) {
        (Some(t), Some(m)) => {
            t.host == SIMNOW_TRADING_HOST
                && m.host == SIMNOW_TRADING_HOST
                && SIMNOW_GROUPS.contains(&(t.port, m.port))
        }
        _ => false,
    };
    match Environment::parse(&env_raw) {
        Some(Environment::Sim) if trading_pair && !prod_mode => (
            false,
            "SimNow trading-hours fronts require is_production_mode=true (CTP v6.7.11 production secret key)".into(),
        ),
        Some(Environment::Sim) if !trading_pair && prod_mode => (
            false,
            "sim environment requires is_production_mode=false unless using SimNow trading-hours fronts (30001/30011,30002/30012,30003/30013 on 182.254.243.31)".into(),
        ),
        Some(Environment::Prod) if !prod_mode => (
            false,
            "production environment requires is_production_mode=true".into(),
        ),
        Some(_) => (true, "mode/environment coherent".into()),
        None => (false, format!("unknown environment: {env_raw}")),
    }
}

fn plaintext_check(cfg: &CtpConfig, path: &Path, is_prod: bool) -> (Severity, bool, String) {
    if cfg.values.password.is_none() {
        return (
            Severity::Warning,
            true,
            format!(
                "no plaintext password in the file (password_env: {})",
                cfg.values.password_env
            ),
        );
    }
    let line = cfg
        .line_of("password")
        .map_or(String::new(), |l| format!(" line {l}"));
    let mode = std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o777);
    let others = mode & 0o044 != 0;
    let mut why = Vec::new();
    if is_prod {
        why.push("production environment".to_string());
    }
    if others {
        why.push(format!("file readable by other users (mode {mode:04o})"));
    }
    let sev = if why.is_empty() {
        Severity::Warning
    } else {
        Severity::Error
    };
    let mut detail = format!(
        "plaintext password in {}{line} (value not shown); move it to the environment variable named by password_env ({})",
        path.display(),
        cfg.values.password_env
    );
    if !why.is_empty() {
        detail.push_str(&format!("; an error: {}", why.join(", ")));
    }
    (sev, false, detail)
}

/// Expected ELF `e_machine` for this build's architecture.
fn elf_machine() -> Option<(u16, u8)> {
    // (e_machine, EI_CLASS: 1 = 32-bit, 2 = 64-bit)
    match std::env::consts::ARCH {
        "x86_64" => Some((62, 2)),
        "aarch64" => Some((183, 2)),
        "x86" => Some((3, 1)),
        "arm" => Some((40, 1)),
        "riscv64" => Some((243, 2)),
        "loongarch64" => Some((258, 2)),
        "powerpc64" => Some((21, 2)),
        "s390x" => Some((22, 2)),
        _ => None,
    }
}

fn machine_name(m: u16) -> String {
    match m {
        3 => "x86".into(),
        40 => "arm".into(),
        62 => "x86_64".into(),
        183 => "aarch64".into(),
        243 => "riscv".into(),
        258 => "loongarch".into(),
        21 => "powerpc64".into(),
        22 => "s390".into(),
        other => format!("machine {other}"),
    }
}

/// Read the ELF header of `path` and check: ELF magic, shared object (`ET_DYN` and not a
/// position-independent executable, which is `ET_DYN` too), this machine's class and
/// architecture.
pub fn check_elf(path: &Path) -> std::result::Result<(), String> {
    let mut h = [0_u8; 20];
    let mut f = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let n = f.read(&mut h).map_err(|e| format!("cannot read: {e}"))?;
    if n < 20 || h[..4] != [0x7f, b'E', b'L', b'F'] {
        return Err("not an ELF file".into());
    }
    let little = match h[5] {
        1 => true,
        2 => false,
        _ => return Err("bad ELF data encoding".into()),
    };
    let u16_at = |i: usize| {
        if little {
            u16::from_le_bytes([h[i], h[i + 1]])
        } else {
            u16::from_be_bytes([h[i], h[i + 1]])
        }
    };
    let e_type = u16_at(16);
    let machine = u16_at(18);
    if e_type != 3 {
        return Err(format!("ELF type {e_type}, not a shared object (ET_DYN)"));
    }
    if let Some((want, class)) = elf_machine() {
        if machine != want || h[4] != class {
            return Err(format!(
                "ELF{} for {}, this machine is {}",
                if h[4] == 2 { 64 } else { 32 },
                machine_name(machine),
                std::env::consts::ARCH
            ));
        }
        if little != cfg!(target_endian = "little") {
            return Err("ELF byte order differs from this machine's".into());
        }
    }
    if let Some(why) = pie_executable(&mut f, h[4] == 2, little) {
        return Err(format!(
            "a position-independent executable ({why}), not a shared library"
        ));
    }
    Ok(())
}

/// `Some(reason)` when the `ET_DYN` file behind `f` is a PIE executable: its dynamic section's
/// `DT_FLAGS_1` has `DF_1_PIE`, or it asks for a program interpreter (`PT_INTERP`), as an
/// executable does and a library does not. `None` for a library, or when the program headers
/// cannot be read (the other checks judge such a file).
fn pie_executable(f: &mut File, elf64: bool, little: bool) -> Option<&'static str> {
    const PT_DYNAMIC: u32 = 2;
    const PT_INTERP: u32 = 3;
    const DT_NULL: u64 = 0;
    const DT_FLAGS_1: u64 = 0x6fff_fffb;
    const DF_1_PIE: u64 = 0x0800_0000;
    let num = |b: &[u8]| -> u64 {
        let mut v = 0_u64;
        for (i, x) in b.iter().enumerate() {
            let shift = 8 * if little { i } else { b.len() - 1 - i };
            v |= u64::from(*x) << shift;
        }
        v
    };
    let word = if elf64 { 8 } else { 4 };
    let header = read_at(f, 0, 64)?;
    let (phoff, phentsize, phnum) = if elf64 {
        (
            num(&header[32..40]),
            num(&header[54..56]),
            num(&header[56..58]),
        )
    } else {
        (
            num(&header[28..32]),
            num(&header[42..44]),
            num(&header[44..46]),
        )
    };
    let mut interp = false;
    for i in 0..phnum.min(256) {
        let ph = read_at(f, phoff + i * phentsize, usize::try_from(phentsize).ok()?)?;
        let p_type = u32::try_from(num(&ph[0..4])).ok()?;
        interp |= p_type == PT_INTERP;
        if p_type == PT_DYNAMIC {
            let (off, size) = if elf64 {
                (num(&ph[8..16]), num(&ph[32..40]))
            } else {
                (num(&ph[4..8]), num(&ph[16..20]))
            };
            let dynamic = read_at(f, off, usize::try_from(size.min(1 << 20)).ok()?)?;
            for entry in dynamic.chunks_exact(2 * word) {
                let (tag, val) = (num(&entry[..word]), num(&entry[word..]));
                if tag == DT_NULL {
                    break;
                }
                if tag == DT_FLAGS_1 && val & DF_1_PIE != 0 {
                    return Some("DF_1_PIE");
                }
            }
        }
    }
    interp.then_some("it has a program interpreter")
}

/// `len` bytes of `f` at `offset`; `None` when the file is shorter.
fn read_at(f: &mut File, offset: u64, len: usize) -> Option<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = vec![0_u8; len];
    f.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn lib_files(dir: &Path) -> (bool, String) {
    let missing: Vec<&str> = CTP_LIB_FILES
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        return (
            false,
            format!("missing under {}: {}", dir.display(), missing.join(",")),
        );
    }
    let bad: Vec<String> = CTP_LIB_FILES
        .iter()
        .filter(|f| f.ends_with(".so"))
        .filter_map(|f| check_elf(&dir.join(f)).err().map(|e| format!("{f}: {e}")))
        .collect();
    if bad.is_empty() {
        (
            true,
            format!(
                "{} (.so files are ELF shared objects for {})",
                dir.display(),
                std::env::consts::ARCH
            ),
        )
    } else {
        (false, format!("{}: {}", dir.display(), bad.join("; ")))
    }
}

/// The nearest existing ancestor of `p` (itself when it exists).
fn existing_ancestor(p: &Path) -> PathBuf {
    let mut cur = if p.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        p.to_path_buf()
    };
    loop {
        if cur.exists() {
            return cur;
        }
        match cur.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => cur = parent.to_path_buf(),
            _ => return PathBuf::from("."),
        }
    }
}

fn writable(p: &Path) -> (bool, String) {
    let base = existing_ancestor(p);
    if !base.is_dir() {
        return (
            false,
            format!("{}: {} is not a folder", p.display(), base.display()),
        );
    }
    match nix::unistd::access(
        &base,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    ) {
        Ok(()) if base == p => (true, format!("{} writable", p.display())),
        Ok(()) => (
            true,
            format!(
                "{} missing; {} writable (the API creates it)",
                p.display(),
                base.display()
            ),
        ),
        Err(e) => (
            false,
            format!("{}: {} not writable ({e})", p.display(), base.display()),
        ),
    }
}

fn disk_free(dir: &Path, min_mb: u64) -> (bool, String) {
    let base = existing_ancestor(dir);
    match nix::sys::statvfs::statvfs(&base) {
        Ok(s) => {
            #[allow(clippy::useless_conversion)]
            let free = u64::from(s.blocks_available()) * u64::from(s.fragment_size());
            let mb = free / (1024 * 1024);
            (
                mb >= min_mb,
                format!("{}: {mb} MiB free (minimum {min_mb} MiB)", base.display()),
            )
        }
        Err(e) => (false, format!("{}: statvfs failed ({e})", base.display())),
    }
}

fn in_path(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

fn quick(cmd: &str, args: &[&str]) -> Option<(bool, String)> {
    let mut c = Command::new(cmd);
    c.args(args);
    let opts = RunOptions {
        timeout: Duration::from_secs(2),
        ..RunOptions::default()
    };
    run_command(c, &opts)
        .ok()
        .map(|o| (o.success(), format!("{}{}", o.stdout_tail, o.stderr_tail)))
}

/// Clock synchronisation from chrony, else timedatectl; skipped with the reason when neither
/// can tell. Returns (ok, skipped, detail).
fn clock_sync(max_offset_ms: u64) -> (bool, bool, String) {
    let mut reasons = Vec::new();
    if in_path("chronyc") {
        match quick("chronyc", &["-n", "tracking"]) {
            Some((true, out)) => {
                let field = |name: &str| {
                    out.lines()
                        .find(|l| l.trim_start().starts_with(name))
                        .and_then(|l| l.split_once(':'))
                        .map(|(_, v)| v.trim().to_string())
                };
                let leap = field("Leap status").unwrap_or_default();
                let offset_ms = field("System time").and_then(|s| {
                    let n: f64 = s.split_whitespace().next()?.parse().ok()?;
                    Some(n * 1000.0)
                });
                if leap.eq_ignore_ascii_case("Not synchronised") {
                    return (false, false, "chrony: not synchronised".into());
                }
                if let Some(ms) = offset_ms {
                    #[allow(clippy::cast_precision_loss)]
                    let ok = ms.abs() <= max_offset_ms as f64;
                    return (
                        ok,
                        false,
                        format!(
                            "chrony: leap status {leap}, offset {ms:.3} ms (max {max_offset_ms} ms)"
                        ),
                    );
                }
                reasons.push("chronyc: unexpected output".to_string());
            }
            Some((false, out)) => reasons.push(format!(
                "chronyc: {}",
                out.lines().next().unwrap_or("failed").trim()
            )),
            None => reasons.push("chronyc: could not run".into()),
        }
    } else {
        reasons.push("chronyc: not installed".into());
    }
    if !in_path("timedatectl") {
        reasons.push("timedatectl: not installed".into());
    } else if !Path::new("/run/systemd/system").exists() {
        reasons.push("timedatectl: systemd is not running (no /run/systemd/system)".into());
    } else {
        match quick("timedatectl", &["show", "-p", "NTPSynchronized", "--value"]) {
            Some((true, out)) => {
                let v = out.trim();
                return (
                    v == "yes",
                    false,
                    format!("timedatectl: NTPSynchronized={v}"),
                );
            }
            Some((false, out)) => reasons.push(format!(
                "timedatectl: {}",
                out.lines().next().unwrap_or("failed").trim()
            )),
            None => reasons.push("timedatectl: could not run".into()),
        }
    }
    (true, true, format!("cannot tell: {}", reasons.join("; ")))
}

fn window_hint(cfg: &CtpConfig, trading_port: bool, timeout_ms: u64) -> String {
    let default = "tcp timeout may indicate out-of-session hours; retry in trading window, switch to 7x24 profile, or use --skip-network-check for static checks".to_string();
    let v = &cfg.values;
    let (Some(t), Some(m)) = (&v.trader_front, &v.market_front) else {
        return default;
    };
    if !trading_port || t.host != m.host {
        return default;
    }
    let per = Duration::from_millis(timeout_ms.clamp(200, 600));
    let host = t.host.clone();
    let handles: Vec<_> = SIMNOW_GROUPS
        .iter()
        .enumerate()
        .map(|(i, &(tp, mp))| {
            let host = host.clone();
            thread::spawn(move || {
                let up = |port: u16| {
                    (host.as_str(), port)
                        .to_socket_addrs()
                        .ok()
                        .and_then(|mut a| a.next())
                        .is_some_and(|a| TcpStream::connect_timeout(&a, per).is_ok())
                };
                (up(tp) && up(mp)).then(|| format!("group{}({tp}/{mp})", i + 1))
            })
        })
        .collect();
    let reachable: Vec<String> = handles
        .into_iter()
        .filter_map(|h| h.join().ok().flatten())
        .collect();
    if reachable.is_empty() {
        default
    } else {
        format!(
            "configured group timed out; reachable groups: {}",
            reachable.join(", ")
        )
    }
}

/// Returns (skipped, detail).
fn session_state(cli: &Cli, cfg: &CtpConfig) -> (bool, String) {
    let cal = match Calendar::load_default(cli.calendar.as_deref()) {
        Ok(c) => c,
        Err(e) => return (true, format!("calendar unavailable: {e}")),
    };
    let sel = cal.night_select_for(&cfg.values.instruments);
    let now = evidence_core::time::now_ns();
    let margin = i64::from(cli.session_margin_minutes) * 60 * 1_000_000_000;
    let state = (|| {
        let at = cal.session_at(now, &sel)?;
        let day = cal.trading_day(now)?;
        let w = cal.next_free_window(now, margin, &sel)?;
        Ok::<_, trading_calendar::CalendarError>((at, day, w))
    })();
    match state {
        Err(e) => (true, format!("{e}")),
        Ok((at, day, w)) => {
            let now_s = cal.format_local(now);
            let open = match &at {
                Some(s) => {
                    let (d, a) = cal.local(s.start_ns);
                    let (_, b) = cal.local(s.end_ns);
                    format!(
                        "in the {} session of {d} {}-{}",
                        s.kind,
                        Calendar::hhmm(a),
                        Calendar::hhmm(b)
                    )
                }
                None => "no session open".to_string(),
            };
            let end = w
                .end_ns
                .map_or_else(|| "open-ended".to_string(), |e| cal.format_local(e));
            let group = match &sel {
                NightSelect::Latest => "latest night group".to_string(),
                NightSelect::Group(g) => format!("night group {g}"),
            };
            (
                false,
                format!(
                    "{open} at {now_s} (trading day {day}, {group}); next window without a session (margin {} min): {} .. {end}",
                    cli.session_margin_minutes,
                    cal.format_local(w.start_ns)
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_names_its_own_definition() {
        assert_eq!(Check::ALL.len(), CHECKS.len());
        for (i, c) in Check::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
            assert_eq!(format!("{c:?}"), c.def().id);
        }
    }

    #[test]
    fn a_hung_network_check_is_abandoned_at_its_deadline() {
        let h = NetHandle::spawn(Duration::from_millis(50), || {
            thread::sleep(Duration::from_secs(30));
            NetResult {
                dns: Err("answered too late".into()),
                connect: None,
                duration: Duration::ZERO,
            }
        });
        let t = Instant::now();
        let r = h.wait();
        assert!(t.elapsed() < Duration::from_secs(10));
        let e = r.dns.unwrap_err();
        assert!(e.starts_with("no answer within 50 ms"), "{e}");
        assert!(r.connect.is_none());
    }

    #[test]
    fn a_finished_network_check_is_returned() {
        let h = NetHandle::spawn(Duration::from_secs(30), || NetResult {
            dns: Err("x".into()),
            connect: None,
            duration: Duration::ZERO,
        });
        assert_eq!(h.wait().dns.unwrap_err(), "x");
    }
}
