//! `reconnect-evidence`: the one-shot reconnect drill (replaces the original's
//! `run_reconnect_evidence`).
//!
//! Preflight, refusals (trading session, production), then: on a local config (loopback fronts)
//! it starts ctp-front-sim and fault-proxy in front of it and gives the probe a derived config
//! pointing at the proxy; on a real config it uses the real fronts and fault-inject's netfilter
//! backend. It starts the probe, waits until healthy, and per scenario runs fault-inject (apply,
//! hold, clear) and waits until the probe is healthy again (and stays so for the settle time) or
//! the recovery deadline passes. Then it stops everything it started and runs slo-report, whose
//! exit status is the drill's verdict. Every run has a fresh folder (`<runtime>/reconnect/<id>/`).

pub mod children;
pub mod health;
pub mod reaper;
pub mod scenario;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::builder::TypedValueParser as _;
use clap::{Parser, ValueEnum};
use ctp_config::{CtpConfig, Environment, Front, PasswordSource};
use evidence_core::cli::{self, EXIT_STATUS_HELP};
use evidence_core::duration::{DurationParser, whole_millis, whole_secs};
use evidence_core::io::write_atomic;
use evidence_core::lock::LockFile;
use evidence_core::process::{RunOptions, run_command};
use evidence_core::provenance::Provenance;
use evidence_core::time::{format_utc, now_ns};
use evidence_core::{EvidenceError, Exit, Result, signals};
use reconnect_core::crosscheck;
use reconnect_core::fault_event::{FaultEventReader, Phase, Scenario};
use reconnect_core::probe_events::read_probe_events;
use reconnect_core::recovery::{NotRecovered, Outcome, RecoverySearch};
use reconnect_core::sim_events::read_sim_events;
use serde_json::{Value, json};
use trading_calendar::guard::{GuardArgs, SessionGuard};

use crate::children::{Children, describe};
use crate::health::{HealthTail, Settled};
use crate::scenario::{Overrides, Step, fmt_g};

const AFTER_HELP: &str = "\
EXAMPLE (the embedded default: a local simulator behind fault-proxy, all five scenarios):
  reconnect-evidence --config configs/sim/local.yaml --execute-faults \\
      --scenarios disconnect,latency,jitter,loss,combined --hold-ms 1500 --delay-ms 1000 \\
      --heartbeat-timeout-ms 300 --health-interval-ms 100
  reconnect-evidence --config configs/sim/ctp.yaml      # a real config: prints the plan only

LOCAL vs REAL: a config whose fronts are all loopback addresses is the local one: the drill starts
ctp-front-sim (on the config's ports, or free ones with --local-ports free) and fault-proxy in
front of it, writes a derived config pointing at the proxy (run folder), and injects through the
proxy (no root). Any other config is real: the probe watches the real fronts and faults go through
fault-inject's netfilter backend (root, or --use-sudo), targeting the config's fronts.

SAFETY: without --execute-faults (or with --dry-run) nothing is started and nothing is injected:
the commands are printed. A real config is refused inside a trading session (calendar, margin
--session-margin-minutes) unless --allow-in-session, a production config (environment prod) always
unless --allow-production. One drill at a time (lock in <runtime-dir>/reconnect/).

TIMING: after each clear the drill waits until the probe is healthy again and stays healthy for
--settle-ms, or until --recovery-timeout-sec; the report is generated only after the last of
these waits. A missed recovery skips the remaining scenarios. The verdict is slo-report's.";

/// `--disconnect-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DisconnectMode {
    /// Drop silently (fault-proxy: blackhole).
    Drop,
    /// Answer with a TCP reset.
    Reset,
}

impl DisconnectMode {
    fn as_str(self) -> &'static str {
        match self {
            DisconnectMode::Drop => "drop",
            DisconnectMode::Reset => "reset",
        }
    }
}

/// `--strategy-bridge-chain-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChainStatus {
    /// Not known.
    Unknown,
    /// Complete.
    Complete,
    /// Incomplete.
    Incomplete,
    /// The original's Redis detection (not supported: refused).
    Auto,
}

/// `--storage-redis-health`, `--storage-timescale-health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StorageHealth {
    /// Not known.
    Unknown,
    /// Healthy.
    Healthy,
    /// Unhealthy.
    Unhealthy,
}

/// `--local-ports`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LocalPorts {
    /// The simulator listens on the config's front ports.
    Config,
    /// The simulator listens on free ports (parallel runs, tests).
    Free,
}

fn value_name<T: ValueEnum>(v: T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// `--fallback-configs` default: the two group configs over the config search order.
fn default_fallback_configs() -> String {
    [
        "sim/ctp_trading_hours_group2.yaml",
        "sim/ctp_trading_hours_group3.yaml",
    ]
    .iter()
    .map(|r| {
        evidence_core::paths::config_or_checkout(r)
            .display()
            .to_string()
    })
    .collect::<Vec<_>>()
    .join(",")
}

/// The one-shot reconnect drill: probe, faults per scenario with a recovery wait after each
/// clear, then the SLO report (whose exit status is the verdict).
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}\n\n{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// CTP config [default: sim/ctp.yaml found over the config search order: $CTP_OPS_CONFIG_DIR,
    /// ./configs, PREFIX/etc/ctp-ops, /etc/ctp-ops].
    #[arg(
        long,
        hide_default_value = true,
        default_value_os_t = evidence_core::paths::config_or_checkout("sim/ctp.yaml")
    )]
    pub config: PathBuf,
    /// CTP API folder: for the preflight, ctp-probe's ctp-api mode, and LD_LIBRARY_PATH of a
    /// --probe-bin.
    #[arg(
        long,
        default_value = "ctp_api/v6.7.11_20250617_api_traderapi_se_linux64"
    )]
    pub ctp_lib_dir: PathBuf,
    /// Operator [default: $USER].
    #[arg(long)]
    pub operator: Option<String>,
    /// Do not run ctp-preflight.
    #[arg(long)]
    pub skip_preflight: bool,
    /// Real config: configs to try when the preflight fails and names reachable groups
    /// [default: sim/ctp_trading_hours_group2.yaml,sim/ctp_trading_hours_group3.yaml found over
    /// the config search order].
    #[arg(long, hide_default_value = true, default_value_t = default_fallback_configs())]
    pub fallback_configs: String,
    /// Try --fallback-configs when the preflight fails (default).
    #[arg(long, overrides_with = "no_auto_fallback_trading_groups")]
    pub auto_fallback_trading_groups: bool,
    /// Do not try --fallback-configs.
    #[arg(long)]
    pub no_auto_fallback_trading_groups: bool,
    /// Local: where the simulator listens.
    #[arg(long, value_enum, default_value = "config")]
    pub local_ports: LocalPorts,
    /// Runtime folder: the run folder is `<runtime-dir>/reconnect/<drill id>/`.
    #[arg(long, default_value = "runtime")]
    pub runtime_dir: PathBuf,
    /// Drill id (tags the faults; names the run folder); default `rc-<UTC time>-<random>`.
    #[arg(long, value_name = "ID", value_parser = parse_drill_id)]
    pub drill_id: Option<String>,
    /// (internal) run as the children's reaper of the drill with this pid.
    #[arg(long, hide = true, requires = "reap_pids")]
    pub reap_parent: Option<i32>,
    /// (internal) the reaper's pids file.
    #[arg(long, hide = true)]
    pub reap_pids: Option<PathBuf>,
    /// Where the drill writes (copies of its run-folder files and the report files).
    #[command(flatten)]
    pub outputs: Outputs,
    /// The programs the drill runs (default: ours, next to this program).
    #[command(flatten)]
    pub tools: ToolArgs,
    /// What is passed to slo-report.
    #[command(flatten)]
    pub report: ReportArgs,
    /// Dry run, refusals and the session guard.
    #[command(flatten)]
    pub safety: Safety,
    /// The faults: scenarios, their parameters and targets.
    #[command(flatten)]
    pub plan: Plan,
    /// Probe, preflight and recovery timing.
    #[command(flatten)]
    pub timing: Timing,
}

/// Where the drill writes (copies of its run-folder files and the report files).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Outputs")]
pub struct Outputs {
    /// Copy of the drill's probe log, replaced at the end of every drill (the run folder keeps the
    /// original).
    #[arg(long, default_value = "runtime/reconnect_probe.log")]
    pub probe_log: PathBuf,
    /// Copy of the drill's fault-event JSONL, replaced (never appended) at the end of every drill.
    #[arg(long, default_value = "runtime/fault_events.jsonl")]
    pub event_log: PathBuf,
    /// Reconnect report (Markdown).
    #[arg(long, default_value = "docs/results/reconnect_fault_result.md")]
    pub report_file: PathBuf,
    /// Ops health JSON.
    #[arg(long, default_value = "docs/results/ops_health_report.json")]
    pub health_json_file: PathBuf,
    /// Ops health Markdown.
    #[arg(long, default_value = "docs/results/ops_health_report.md")]
    pub health_markdown_file: PathBuf,
    /// Alert JSON.
    #[arg(long, default_value = "docs/results/ops_alert_report.json")]
    pub alert_json_file: PathBuf,
    /// Alert Markdown.
    #[arg(long, default_value = "docs/results/ops_alert_report.md")]
    pub alert_markdown_file: PathBuf,
    /// One CSV row per fault window.
    #[arg(long, default_value = "docs/results/reconnect_samples.csv")]
    pub samples_csv: PathBuf,
    /// SVG timeline of health against the fault windows.
    #[arg(long, default_value = "docs/results/reconnect_timeline.svg")]
    pub timeline_svg: PathBuf,
}

/// The programs the drill runs (default: ours, next to this program).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Tools")]
pub struct ToolArgs {
    /// The platform's own probe, run as `<probe> <config> --monitor-seconds N
    /// --health-interval-ms M`; its stdout is the probe log, its stderr goes to probe.err in the
    /// run folder [default: ctp-probe next to this program, which also writes JSONL events].
    #[arg(long, value_name = "PATH")]
    pub probe_bin: Option<PathBuf>,
    /// The fault injector [default: fault-inject next to this program].
    #[arg(long, value_name = "PATH")]
    pub fault_script: Option<PathBuf>,
    /// The report tool [default: slo-report next to this program].
    #[arg(long, value_name = "PATH")]
    pub report_script: Option<PathBuf>,
    /// The preflight tool [default: ctp-preflight next to this program].
    #[arg(long, value_name = "PATH")]
    pub preflight_bin: Option<PathBuf>,
    /// The local front simulator [default: ctp-front-sim next to this program].
    #[arg(long, value_name = "PATH")]
    pub sim_bin: Option<PathBuf>,
    /// The fault proxy [default: fault-proxy next to this program].
    #[arg(long, value_name = "PATH")]
    pub proxy_bin: Option<PathBuf>,
}

/// What is passed to slo-report.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Report")]
pub struct ReportArgs {
    /// Recovery P99 target, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub target_p99_sec: f64,
    /// Passed to slo-report.
    #[arg(long, default_value_t = 1500.0)]
    pub strategy_bridge_target_ms: f64,
    /// Passed to slo-report (`auto`, the original's Redis detection, is refused).
    #[arg(long, value_enum, default_value = "unknown")]
    pub strategy_bridge_chain_status: ChainStatus,
    /// Passed to slo-report.
    #[arg(long, value_enum, default_value = "unknown")]
    pub storage_redis_health: StorageHealth,
    /// Passed to slo-report.
    #[arg(long, value_enum, default_value = "unknown")]
    pub storage_timescale_health: StorageHealth,
    /// Passed to slo-report: a prod-like health report the storage SLIs are measured from
    /// (without it, and without the two flags above, they are not measured).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["storage_redis_health", "storage_timescale_health"])]
    pub prodlike_health_file: Option<PathBuf>,
    /// Host shown in the report [default: this host's name].
    #[arg(long, default_value = "")]
    pub host: String,
    /// Build shown in the report.
    #[arg(long, default_value = "")]
    pub build: String,
    /// Config profile shown in the report [default: the config path used].
    #[arg(long, default_value = "")]
    pub config_profile: String,
    /// slo-report --no-fail: exit 0 even when the SLO is missed.
    #[arg(long)]
    pub no_fail: bool,
}

/// Dry run, refusals and the session guard.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Safety")]
pub struct Safety {
    /// Run the drill for real (without it, the plan is printed and nothing runs).
    #[arg(long)]
    pub execute_faults: bool,
    /// Real config: run fault-inject with `sudo -n`.
    #[arg(long)]
    pub use_sudo: bool,
    /// Print the plan only, even with --execute-faults.
    #[arg(long)]
    pub dry_run: bool,
    /// Real config: run even inside a trading session (or its margin).
    #[arg(long)]
    pub allow_in_session: bool,
    /// Run against a production config (environment prod).
    #[arg(long)]
    pub allow_production: bool,
    /// Trading calendar [default: configs/calendar/cn-futures-2026.yaml, else the built-in copy].
    #[arg(long, value_name = "FILE")]
    pub calendar: Option<PathBuf>,
    /// Minutes around a session during which a real drill is refused.
    #[arg(long, default_value_t = 15)]
    pub session_margin_minutes: u32,
    /// Judge the trading session at this RFC 3339 instant instead of now (for checks and tests).
    #[arg(long, hide = true)]
    pub at: Option<String>,
}

/// The faults: scenarios, their parameters and targets.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Plan")]
pub struct Plan {
    /// Scenarios, comma-separated, in order (duplicates repeat): disconnect, latency, jitter,
    /// loss, combined.
    #[arg(long, default_value = "disconnect,jitter,loss,combined")]
    pub scenarios: String,
    /// Hold of every scenario, ms [default: the original's table, 20 s disconnect, 30 s others].
    /// A hold that is not whole seconds runs fault-inject with --hold-interruptible and ends it
    /// by SIGTERM after the hold.
    #[arg(long, value_name = "DURATION", value_parser = DurationParser::millis().map(whole_millis))]
    pub hold_ms: Option<u64>,
    /// Delay of latency, jitter and combined, ms [default: 250, 250, 200].
    #[arg(long, value_name = "DURATION", value_parser = DurationParser::millis().map(whole_millis))]
    pub delay_ms: Option<u64>,
    /// Jitter of jitter and combined, ms [default: 30, 40].
    #[arg(long, value_name = "DURATION", value_parser = DurationParser::millis().map(whole_millis))]
    pub jitter_ms: Option<u64>,
    /// Loss of loss and combined, percent [default: 5, 3].
    #[arg(long, value_name = "PERCENT")]
    pub loss_percent: Option<f64>,
    /// Disconnect by reset or by drop.
    #[arg(long, value_enum, default_value = "reset")]
    pub disconnect_mode: DisconnectMode,
    /// Fault target IPv4 (real config) [default: the host of the config's fronts].
    #[arg(long)]
    pub target_ip: Option<String>,
    /// Fault target ports, comma-separated (real config) [default: the config's front ports].
    #[arg(long)]
    pub ports: Option<String>,
    /// Interface for netem (real config).
    #[arg(long, default_value = "eth0")]
    pub iface: String,
}

/// Probe, preflight and recovery timing.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Timing")]
pub struct Timing {
    /// Passed to the probe [default: long enough for the whole plan; the drill stops the probe
    /// itself].
    #[arg(long, allow_negative_numbers = true)]
    pub monitor_seconds: Option<i64>,
    /// Passed to the probe: interval of its periodic [health] lines (state changes are written at
    /// once by ctp-probe).
    #[arg(long, value_name = "DURATION", default_value = "1000", value_parser = DurationParser::millis().map(whole_millis))]
    pub health_interval_ms: u64,
    /// Deadline for the probe's first healthy state (the original slept this long instead).
    #[arg(long, value_name = "DURATION", default_value = "30", value_parser = DurationParser::secs().map(whole_secs))]
    pub warmup_seconds: u64,
    /// After each clear, wait at most this long for the probe to be healthy again.
    #[arg(long, value_name = "DURATION", default_value = "60", value_parser = DurationParser::secs().map(whole_secs))]
    pub recovery_timeout_sec: u64,
    /// The probe must stay healthy this long before the next fault (and before the first); the
    /// recovery rule's settle interval (passed to slo-report).
    #[arg(long, value_name = "DURATION", default_value = "1000", value_parser = DurationParser::millis().max(Duration::from_secs(3600)).map(whole_millis))]
    pub settle_ms: u64,
    /// ctp-probe's --heartbeat-timeout-ms (not passed to a --probe-bin).
    #[arg(long, value_name = "DURATION", value_parser = DurationParser::millis().map(whole_millis))]
    pub heartbeat_timeout_ms: Option<u64>,
    /// Local: the simulator's heartbeat interval, ms; 0 (default) = none, so the probe pings and
    /// its liveness depends on its own requests crossing the fault, as a CTP client's heartbeat.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = DurationParser::millis().map(whole_millis))]
    pub sim_heartbeat_ms: u64,
    /// Local drills with ctp-probe: a recovery moment that differs from ctp-front-sim's own log
    /// by more than this fails the drill (the probe's figures are not trustworthy).
    #[arg(long, value_name = "DURATION", default_value = "100", value_parser = DurationParser::millis().min(Duration::from_millis(1)).max(Duration::from_secs(60)).map(whole_millis))]
    pub sim_agreement_bound_ms: u64,
    /// Preflight connect timeout, ms (at least 100).
    #[arg(long, value_name = "DURATION", default_value = "1200", value_parser = DurationParser::millis().map(whole_millis))]
    pub preflight_timeout_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a/b-c_d.e:f=g,h@1+2%"), "a/b-c_d.e:f=g,h@1+2%");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("{\"op\":1}"), "'{\"op\":1}'");
    }

    #[test]
    fn derived_config_rewrites_only_the_fronts() {
        let text = "# c\nctp:\n  trader_front: \"tcp://127.0.0.1:1\"\n  md_front: tcp://127.0.0.1:2 # x\n  user_id: u\n";
        let out = derive_config_text(text, "127.0.0.1:10", "127.0.0.1:20", "from c");
        assert!(
            out.contains("  trader_front: \"tcp://127.0.0.1:10\"\n"),
            "{out}"
        );
        assert!(
            out.contains("  md_front: \"tcp://127.0.0.1:20\"\n"),
            "{out}"
        );
        assert!(out.contains("  user_id: u\n"));
        assert!(out.starts_with("# from c\n"));
    }

    #[test]
    fn loopback() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("::1"));
        assert!(!is_loopback("182.254.243.31"));
    }
}

/// One drill-id rule for every drill (evidence_core::drill::DrillId: no `.`/`..`, no `/`).
fn parse_drill_id(s: &str) -> std::result::Result<String, String> {
    evidence_core::drill::DrillId::new(s)
        .map(|d| d.as_str().to_string())
        .map_err(|e| e.to_string())
}

pub use evidence_core::process::shell_quote as quote;

fn echo(argv: &[String]) {
    let line: Vec<String> = argv.iter().map(|a| quote(a)).collect();
    // Best effort: a closed stdout must not stop a drill that has faults in place.
    let _ = cli::stdout_write(&format!("$ {}\n", line.join(" ")));
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .join(name)
}

fn command(argv: &[String]) -> Command {
    let mut c = Command::new(&argv[0]);
    c.args(&argv[1..]);
    c
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Replace the values of the front keys (and their aliases) in the config text, keeping every
/// other line as it is.
fn derive_config_text(text: &str, trader: &str, market: &str, header: &str) -> String {
    let mut out = String::new();
    for h in header.lines() {
        out.push_str(&format!("# {h}\n"));
    }
    for line in text.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let key = trimmed.split(':').next().unwrap_or("").trim();
        let addr = match key {
            "trader_front" | "td_front" => Some(trader),
            "market_front" | "md_front" => Some(market),
            _ => None,
        };
        match addr {
            Some(a) if trimmed.contains(':') => {
                out.push_str(&format!("{indent}{key}: \"tcp://{a}\"\n"));
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

/// What was decided about the config before anything runs.
struct Assessed {
    path: PathBuf,
    cfg: CtpConfig,
    trader: Front,
    market: Front,
    local: bool,
    guard: String,
}

fn assess(cli: &Cli, path: &Path) -> Result<Assessed> {
    if !path.is_file() {
        return Err(EvidenceError::failed(format!(
            "config file not found: {}",
            path.display()
        )));
    }
    let cfg = CtpConfig::load(path)?;
    if cfg.values.environment == Some(Environment::Prod) {
        if cli.safety.allow_production {
            cli::warn(&format!(
                "{}: a production config (environment prod); running because of --allow-production",
                path.display()
            ));
        } else {
            return Err(EvidenceError::failed(format!(
                "refusing to drill against a production config: {} has environment prod (pass --allow-production to force)",
                path.display()
            )));
        }
    }
    let front = |key: &str, v: &Option<Front>| {
        v.clone().ok_or_else(|| {
            EvidenceError::failed(format!(
                "{}: {key}: expected tcp://host:port, found {}",
                path.display(),
                cfg.get_with_alias(key).unwrap_or("nothing")
            ))
        })
    };
    let trader = front("trader_front", &cfg.values.trader_front)?;
    let market = front("market_front", &cfg.values.market_front)?;
    let local = is_loopback(&trader.host) && is_loopback(&market.host);
    let guard = if local {
        "session guard: not applicable (local simulator)".to_string()
    } else {
        session_guard(cli, &[trader.to_string(), market.to_string()])?
    };
    Ok(Assessed {
        path: path.to_path_buf(),
        cfg,
        trader,
        market,
        local,
        guard,
    })
}

/// The one session guard (trading_calendar::guard) on the drill's fronts, with this tool's
/// flags (`--at` is the guard's `--session-at`).
fn session_guard(cli: &Cli, fronts: &[String]) -> Result<String> {
    let guard = SessionGuard::try_from(&GuardArgs {
        allow_in_session: cli.safety.allow_in_session,
        calendar: cli.safety.calendar.clone(),
        session_margin_minutes: cli.safety.session_margin_minutes,
        session_at: cli.safety.at.clone(),
    })?;
    Ok(guard.check(guard.now(), fronts)?.reason)
}

/// Every path and binary of the drill.
struct Tools {
    probe: PathBuf,
    ours: bool,
    fault: PathBuf,
    report: PathBuf,
    preflight: PathBuf,
    sim: PathBuf,
    proxy: PathBuf,
}

fn tools(cli: &Cli) -> Result<Tools> {
    let t = Tools {
        probe: cli
            .tools
            .probe_bin
            .clone()
            .unwrap_or_else(|| sibling("ctp-probe")),
        ours: cli.tools.probe_bin.is_none(),
        fault: cli
            .tools
            .fault_script
            .clone()
            .unwrap_or_else(|| sibling("fault-inject")),
        report: cli
            .tools
            .report_script
            .clone()
            .unwrap_or_else(|| sibling("slo-report")),
        preflight: cli
            .tools
            .preflight_bin
            .clone()
            .unwrap_or_else(|| sibling("ctp-preflight")),
        sim: cli
            .tools
            .sim_bin
            .clone()
            .unwrap_or_else(|| sibling("ctp-front-sim")),
        proxy: cli
            .tools
            .proxy_bin
            .clone()
            .unwrap_or_else(|| sibling("fault-proxy")),
    };
    for (what, p) in [
        ("probe binary", &t.probe),
        ("fault script", &t.fault),
        ("report script", &t.report),
    ] {
        if !p.is_file() {
            return Err(EvidenceError::failed(format!(
                "{what} not found: {}",
                p.display()
            )));
        }
    }
    Ok(t)
}

/// The drill's settings after validation.
struct Drill<'a> {
    cli: &'a Cli,
    a: Assessed,
    tools: Tools,
    steps: Vec<Step>,
    drill_id: String,
    run_dir: PathBuf,
    target_ip: String,
    ports: String,
    password_env: Option<(String, String)>,
}

impl Drill<'_> {
    fn p(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    fn probe_config(&self) -> PathBuf {
        if self.a.local {
            self.p("probe-config.yaml")
        } else {
            self.a.path.clone()
        }
    }

    fn monitor_seconds(&self) -> i64 {
        if let Some(m) = self.cli.timing.monitor_seconds {
            return m;
        }
        let per_step: u64 = self
            .steps
            .iter()
            .map(|s| {
                s.duration_sec()
                    + 60
                    + self.cli.timing.recovery_timeout_sec
                    + self.cli.timing.settle_ms.div_ceil(1000)
            })
            .sum();
        i64::try_from(self.cli.timing.warmup_seconds + per_step + 120).unwrap_or(i64::MAX)
    }

    fn sim_argv(&self, trader_port: u16, market_port: u16) -> Vec<String> {
        vec![
            s(&self.tools.sim),
            "--host".into(),
            self.target_ip.clone(),
            "--trader-port".into(),
            trader_port.to_string(),
            "--market-port".into(),
            market_port.to_string(),
            "--heartbeat-ms".into(),
            self.cli.timing.sim_heartbeat_ms.to_string(),
            "--event-log".into(),
            s(&self.p("sim_events.jsonl")),
            "--ports-file".into(),
            s(&self.p("sim.ready.json")),
        ]
    }

    fn proxy_argv(&self, trader_up: &str, market_up: &str) -> Vec<String> {
        vec![
            s(&self.tools.proxy),
            "--pair".into(),
            format!("trader=0,{trader_up}"),
            "--pair".into(),
            format!("market=0,{market_up}"),
            "--control".into(),
            s(&self.p("fault-proxy.sock")),
            "--event-log".into(),
            s(&self.p("proxy_events.jsonl")),
            "--ready-file".into(),
            s(&self.p("proxy.ready.json")),
        ]
    }

    fn preflight_argv(&self, config: &Path) -> Vec<String> {
        vec![
            s(&self.tools.preflight),
            "--config".into(),
            s(config),
            "--ctp-lib-dir".into(),
            s(&self.cli.ctp_lib_dir),
            "--connect-timeout-ms".into(),
            self.cli.timing.preflight_timeout_ms.max(100).to_string(),
            "--runtime-dir".into(),
            s(&self.run_dir),
        ]
    }

    fn probe_argv(&self) -> Vec<String> {
        let mut v = vec![
            s(&self.tools.probe),
            s(&self.probe_config()),
            "--monitor-seconds".into(),
            self.monitor_seconds().to_string(),
            "--health-interval-ms".into(),
            self.cli.timing.health_interval_ms.to_string(),
        ];
        if self.tools.ours {
            v.extend([
                "--log-file".into(),
                s(&self.p("probe.log")),
                "--events-file".into(),
                s(&self.p("probe_events.jsonl")),
                // The same API folder as the preflight: ctp-probe's ctp-api mode loads from it.
                "--ctp-lib-dir".into(),
                s(&self.cli.ctp_lib_dir),
            ]);
            if let Some(h) = self.cli.timing.heartbeat_timeout_ms {
                v.extend(["--heartbeat-timeout-ms".into(), h.to_string()]);
            }
        }
        v
    }

    fn fault_argv(&self, step: &Step, sim_ports: Option<(String, String)>) -> Vec<String> {
        let mut v = Vec::new();
        if self.cli.safety.use_sudo && !self.a.local {
            v.extend(["sudo".to_string(), "-n".to_string()]);
        }
        v.extend([
            s(&self.tools.fault),
            "run".into(),
            "--scenario".into(),
            step.scenario.as_str().into(),
            "--duration-sec".into(),
            step.duration_sec().to_string(),
            "--event-log-file".into(),
            s(&self.p("fault_events.jsonl")),
            "--target-ip".into(),
            self.target_ip.clone(),
            "--ports".into(),
            self.ports.clone(),
        ]);
        if step.scenario == Scenario::Disconnect {
            v.extend([
                "--disconnect-mode".into(),
                self.cli.plan.disconnect_mode.as_str().into(),
            ]);
        } else {
            v.extend([
                "--iface".into(),
                self.cli.plan.iface.clone(),
                "--delay-ms".into(),
                step.delay_ms.to_string(),
                "--jitter-ms".into(),
                step.jitter_ms.to_string(),
                "--loss-percent".into(),
                fmt_g(step.loss_percent),
            ]);
        }
        v.extend(["--config".into(), s(&self.a.path)]);
        if self.a.local {
            v.extend([
                "--backend".into(),
                "proxy".into(),
                "--proxy-control".into(),
                s(&self.p("fault-proxy.sock")),
            ]);
            if let Some((t, m)) = sim_ports {
                for p in [t, m] {
                    v.extend(["--allow-target".into(), format!("{}:{p}", self.target_ip)]);
                }
            }
        } else {
            v.extend(["--backend".into(), "netfilter".into()]);
        }
        v.extend(["--drill-id".into(), self.drill_id.clone()]);
        if !self.a.local {
            // fault-inject applies the same session guard itself: the same verdict.
            v.extend([
                "--session-margin-minutes".into(),
                self.cli.safety.session_margin_minutes.to_string(),
            ]);
            if let Some(c) = &self.cli.safety.calendar {
                v.extend(["--calendar".into(), c.display().to_string()]);
            }
            if let Some(t) = &self.cli.safety.at {
                v.extend(["--session-at".into(), t.clone()]);
            }
            if self.cli.safety.allow_in_session {
                v.push("--allow-in-session".into());
            }
        }
        if step.sub_second() {
            v.push("--hold-interruptible".into());
        }
        // As the original: `--execute` follows --execute-faults (a --dry-run shows it too).
        if self.cli.safety.execute_faults {
            v.push("--execute".into());
        }
        v
    }

    /// slo-report's command line; `measured` adds what the drill itself measured.
    fn report_argv(&self, measured: &[String]) -> Vec<String> {
        let c = self.cli;
        let chain = match c.report.strategy_bridge_chain_status {
            ChainStatus::Unknown | ChainStatus::Auto => "unknown",
            ChainStatus::Complete => "complete",
            ChainStatus::Incomplete => "incomplete",
        };
        let profile = if c.report.config_profile.is_empty() {
            s(&self.a.path)
        } else {
            c.report.config_profile.clone()
        };
        let host = if c.report.host.is_empty() {
            evidence_core::provenance::hostname()
        } else {
            c.report.host.clone()
        };
        let interface = if self.a.local {
            "fault-proxy".to_string()
        } else {
            c.plan.iface.clone()
        };
        vec![
            s(&self.tools.report),
            "--fault-events-file".into(),
            s(&self.p("fault_events.jsonl")),
            "--probe-log-file".into(),
            s(&self.p("probe.log")),
            "--output-file".into(),
            s(&c.outputs.report_file),
            "--health-json-file".into(),
            s(&c.outputs.health_json_file),
            "--health-markdown-file".into(),
            s(&c.outputs.health_markdown_file),
            "--alert-json-file".into(),
            s(&c.outputs.alert_json_file),
            "--alert-markdown-file".into(),
            s(&c.outputs.alert_markdown_file),
            "--target-p99-sec".into(),
            fmt_g(c.report.target_p99_sec),
            "--strategy-bridge-target-ms".into(),
            fmt_g(c.report.strategy_bridge_target_ms),
            "--strategy-bridge-chain-status".into(),
            chain.into(),
            "--strategy-bridge-chain-source".into(),
            "manual".into(),
            "--strategy-bridge-state-key-count".into(),
            "0".into(),
            "--strategy-bridge-intent-count".into(),
            "0".into(),
            "--strategy-bridge-order-key-count".into(),
            "0".into(),
            "--storage-redis-health".into(),
            value_name(c.report.storage_redis_health),
            "--storage-timescale-health".into(),
            value_name(c.report.storage_timescale_health),
        ]
        .into_iter()
        .chain(
            c.report
                .prodlike_health_file
                .iter()
                .flat_map(|p| ["--prodlike-health-file".to_string(), s(p)]),
        )
        .chain([
            "--operator".into(),
            evidence_core::provenance::default_operator(c.operator.as_deref()),
            "--host".into(),
            host,
            "--build".into(),
            c.report.build.clone(),
            "--config-profile".into(),
            profile,
            "--interface".into(),
            interface,
            "--samples-csv".into(),
            s(&c.outputs.samples_csv),
            "--timeline-svg".into(),
            s(&c.outputs.timeline_svg),
            "--drill-id".into(),
            self.drill_id.clone(),
            "--settle-ms".into(),
            c.timing.settle_ms.to_string(),
        ])
        .chain(measured.iter().cloned())
        .chain(c.report.no_fail.then(|| "--no-fail".to_string()))
        .collect()
    }
}

/// The usage checks of the flags (before any file is read); the scenario overrides.
fn validate(cli: &Cli) -> Result<Overrides> {
    let overrides = Overrides {
        hold_ms: cli.plan.hold_ms,
        delay_ms: cli.plan.delay_ms,
        jitter_ms: cli.plan.jitter_ms,
        loss_percent: cli.plan.loss_percent,
    };
    if cli.plan.hold_ms == Some(0) {
        return Err(EvidenceError::usage("--hold-ms: expected > 0, found 0"));
    }
    if let Some(l) = cli.plan.loss_percent
        && (!l.is_finite() || !(0.0..=100.0).contains(&l))
    {
        return Err(EvidenceError::usage(format!(
            "--loss-percent: expected 0..100, found {l}"
        )));
    }
    if !(cli.report.target_p99_sec.is_finite() && cli.report.target_p99_sec > 0.0) {
        return Err(EvidenceError::usage(format!(
            "--target-p99-sec: expected > 0, found {}",
            cli.report.target_p99_sec
        )));
    }
    if cli.report.strategy_bridge_chain_status == ChainStatus::Auto {
        return Err(EvidenceError::usage(
            "--strategy-bridge-chain-status auto: the Redis chain detection is not part of ctp-ops; pass complete, incomplete or unknown",
        ));
    }
    Ok(overrides)
}

/// The fault targets: the fronts (the simulator's address when local), or --target-ip/--ports.
fn fault_targets(cli: &Cli, a: &Assessed) -> Result<(String, String)> {
    Ok(if a.local {
        // The simulator listens on the trader front's loopback address (IPv4; else 127.0.0.1).
        let ip = a
            .trader
            .host
            .parse::<std::net::Ipv4Addr>()
            .map_or_else(|_| "127.0.0.1".to_string(), |ip| ip.to_string());
        (ip, String::new())
    } else {
        let ip = cli
            .plan
            .target_ip
            .clone()
            .unwrap_or_else(|| a.trader.host.clone());
        if cli.plan.target_ip.is_none() && a.market.host != a.trader.host {
            return Err(EvidenceError::usage(format!(
                "the fronts are on different hosts ({} and {}): pass --target-ip and --ports",
                a.trader.host, a.market.host
            )));
        }
        let ports = cli
            .plan
            .ports
            .clone()
            .unwrap_or_else(|| format!("{},{}", a.trader.port, a.market.port));
        (ip, ports)
    })
}

/// Run the drill.
///
/// # Errors
/// Bad flags or config, a refusal, a failed preflight, a child that could not run or died: exit
/// 2; SIGINT/SIGTERM: 130 after everything started was stopped.
pub fn run(cli: Cli) -> Result<Exit> {
    if let (Some(parent), Some(pids)) = (cli.reap_parent, &cli.reap_pids) {
        return reaper::run(parent, pids);
    }
    let overrides = validate(&cli)?;
    let steps = scenario::parse_list(&cli.plan.scenarios, &overrides)?;
    // Refusals first: a production config or a trading session stops the drill before anything.
    let a = assess(&cli, &cli.config)?;
    let tools = tools(&cli)?;
    let execute = cli.safety.execute_faults && !cli.safety.dry_run;
    let drill_id = cli.drill_id.clone().unwrap_or_else(|| {
        evidence_core::drill::DrillId::generate("rc")
            .as_str()
            .to_string()
    });
    let run_dir = cli.runtime_dir.join("reconnect").join(&drill_id);

    let (target_ip, ports) = fault_targets(&cli, &a)?;

    // The password: from the config's source; a local simulator accepts any, so one is made up.
    let password_env = match a.cfg.password_source() {
        PasswordSource::Inline(_) | PasswordSource::Env { .. } => None,
        PasswordSource::Missing { env_name } if a.local => {
            Some((env_name, format!("local-sim-{:016x}", fastrand::u64(..))))
        }
        PasswordSource::Missing { env_name } => {
            if execute {
                return Err(EvidenceError::failed(format!(
                    "{env_name} is required when execute-faults is enabled (the config's password_env)"
                )));
            }
            None
        }
    };

    let d = Drill {
        cli: &cli,
        a,
        tools,
        steps,
        drill_id,
        run_dir,
        target_ip,
        ports,
        password_env,
    };
    cli::info(&d.a.guard);
    if !execute {
        return dry_run(&d);
    }
    if d.a.local {
        for (what, p) in [
            ("simulator binary", &d.tools.sim),
            ("fault-proxy binary", &d.tools.proxy),
        ] {
            if !p.is_file() {
                return Err(EvidenceError::failed(format!(
                    "{what} not found: {}",
                    p.display()
                )));
            }
        }
    }
    if !cli.skip_preflight && !d.tools.preflight.is_file() {
        return Err(EvidenceError::failed(format!(
            "preflight binary not found: {}",
            d.tools.preflight.display()
        )));
    }
    signals::install()?;
    execute_drill(d)
}

fn dry_run(d: &Drill<'_>) -> Result<Exit> {
    let c = d.cli;
    cli::info(&format!(
        "plan of drill {} ({} config {}; run folder {})",
        d.drill_id,
        if d.a.local { "local" } else { "real" },
        d.a.path.display(),
        d.run_dir.display()
    ));
    for st in &d.steps {
        cli::info(&format!("  {}", st.describe()));
    }
    let (tp, mp) = match c.local_ports {
        LocalPorts::Config => (d.a.trader.port.to_string(), d.a.market.port.to_string()),
        LocalPorts::Free => (
            "<sim trader port>".to_string(),
            "<sim market port>".to_string(),
        ),
    };
    if d.a.local {
        let (t, m) = match c.local_ports {
            LocalPorts::Config => (d.a.trader.port, d.a.market.port),
            LocalPorts::Free => (0, 0),
        };
        echo(&d.sim_argv(t, m));
        echo(&d.proxy_argv(
            &format!("{}:{tp}", d.target_ip),
            &format!("{}:{mp}", d.target_ip),
        ));
    }
    if !c.skip_preflight {
        echo(&d.preflight_argv(&d.probe_config()));
    }
    echo(&d.probe_argv());
    let sim_ports =
        (d.a.local && c.local_ports == LocalPorts::Free).then(|| (tp.clone(), mp.clone()));
    for st in &d.steps {
        let mut dd = d.fault_argv(st, sim_ports.clone());
        if d.a.local
            && let Some(i) = dd.iter().position(|a| a == "--ports")
        {
            dd[i + 1] = format!("{tp},{mp}");
        }
        echo(&dd);
    }
    echo(&d.report_argv(&[]));
    cli::info(&format!(
        "dry run: nothing started, nothing injected, no file written{}",
        if c.safety.execute_faults {
            " (--dry-run)"
        } else {
            "; pass --execute-faults to run the drill"
        }
    ));
    Ok(Exit::Pass)
}

/// What happened to one scenario.
#[derive(Debug, Clone)]
struct StepResult {
    step: Step,
    argv: Vec<String>,
    status: String,
    apply_ts_ns: Option<i64>,
    clear_ts_ns: Option<i64>,
    healthy_again_ts_ns: Option<i64>,
    sim_login_ts_ns: Option<i64>,
    unhealthy_seen: bool,
    recovered_before_clear: bool,
    settled: bool,
    waited_ms: u64,
}

impl StepResult {
    fn to_json(&self) -> Value {
        json!({
            "scenario": self.step.scenario.as_str(),
            "hold_ms": self.step.hold_ms,
            "delay_ms": self.step.delay_ms,
            "jitter_ms": self.step.jitter_ms,
            "loss_percent": self.step.loss_percent,
            "argv": self.argv,
            "fault_inject": self.status,
            "apply_effective_ts_ns": self.apply_ts_ns,
            "clear_effective_ts_ns": self.clear_ts_ns,
            "unhealthy_seen": self.unhealthy_seen,
            "healthy_again_ts_ns": self.healthy_again_ts_ns,
            "recovered_before_clear": self.recovered_before_clear,
            "sim_login_ts_ns": self.sim_login_ts_ns,
            "sim_agreement_ms": self.healthy_again_ts_ns.zip(self.sim_login_ts_ns)
                .map(|(h, s)| (h - s) as f64 / 1e6),
            "settled": self.settled,
            "recovery_wait_ms": self.waited_ms,
        })
    }
}

/// The mutable state of a running drill.
struct Running<'a> {
    d: Drill<'a>,
    kids: Children,
    tail: HealthTail,
    results: Vec<StepResult>,
    notes: Vec<String>,
    sim_ports: Option<(u16, u16)>,
    proxy_ports: Option<(String, String)>,
    preflight: Option<String>,
    probe_status: Option<String>,
}

fn execute_drill(d: Drill<'_>) -> Result<Exit> {
    let lock_path = d
        .cli
        .runtime_dir
        .join("reconnect")
        .join("reconnect-evidence.lock");
    let _lock = LockFile::acquire(&lock_path, "reconnect drill")?;
    if d.run_dir.exists() {
        return Err(EvidenceError::failed(format!(
            "run folder {} exists: every drill needs a fresh one (another --drill-id)",
            d.run_dir.display()
        )));
    }
    std::fs::create_dir_all(&d.run_dir)
        .map_err(|e| EvidenceError::io("cannot create folder", &d.run_dir, e))?;
    let sock = d.p("fault-proxy.sock");
    if d.a.local && sock.as_os_str().len() > 100 {
        return Err(EvidenceError::usage(format!(
            "the control socket path {} is too long for a Unix socket: use a shorter --runtime-dir",
            sock.display()
        )));
    }
    let mut prov = Provenance::start(
        "reconnect-evidence",
        env!("CARGO_PKG_VERSION"),
        d.cli.operator.as_deref(),
        false,
    )
    .with_config_file(&d.a.path)?;
    cli::info(&format!(
        "drill {}: run folder {}",
        d.drill_id,
        d.run_dir.display()
    ));
    let pids = d.p("pids.json");
    // Should this process die without stopping its children (SIGKILL), the reaper does.
    let reaper = reaper::spawn(&pids)?;
    let tail = HealthTail::new(d.p("probe.log"));
    let mut r = Running {
        d,
        kids: Children::new(Some(pids)),
        tail,
        results: Vec::new(),
        notes: Vec::new(),
        sim_ports: None,
        proxy_ports: None,
        preflight: None,
        probe_status: None,
    };
    r.kids.set_reaper(reaper.id());
    let outcome = drive(&mut r);
    // Every long-running child still alive at the end (a dead probe already failed the drive).
    let died = r.kids.died(&["fault-inject"]);
    for name in &died {
        cli::warn(&format!("{name} died during the drill"));
    }
    // A fault still in place goes first (fault-inject clears it on SIGTERM), then the probe (its
    // final line), then the proxy and the simulator.
    r.kids.stop("fault-inject");
    if let Some(st) = r.kids.stop("probe") {
        r.probe_status = Some(describe(&st));
    }
    r.kids.stop_all();
    reaper::stop(reaper);
    prov.finish();
    let result = match &outcome {
        Ok(()) => "completed",
        Err(EvidenceError::Interrupted) => "interrupted",
        Err(_) => "failed",
    };
    if outcome.is_ok() {
        return report(&r, &prov, result, died.is_empty());
    }
    write_record(&r, &prov, result, None);
    match outcome {
        Err(EvidenceError::Interrupted) => Err(interrupted()),
        Err(e) => Err(e),
        Ok(()) => Ok(Exit::Pass),
    }
}

/// The drill completed: run slo-report (its exit is the verdict) with what the drill measured,
/// and write the drill's record.
fn report(r: &Running<'_>, prov: &Provenance, result: &str, survived: bool) -> Result<Exit> {
    copy_compat(r)?;
    let argv = r.d.report_argv(&measured(r, survived));
    echo(&argv);
    let opts = RunOptions {
        timeout: Duration::from_secs(600),
        capture_limit: 1 << 20,
        ..RunOptions::default()
    };
    let o = run_command(command(&argv), &opts)?;
    let _ = cli::stdout_write(&o.stdout_tail);
    eprint_raw(&o.stderr_tail);
    let report_exit = o.exit_code;
    if o.interrupted {
        write_record(r, prov, "interrupted", report_exit);
        return Err(interrupted());
    }
    write_record(r, prov, result, report_exit);
    match o.exit_code {
        Some(0) | Some(1) => {
            cli::stdout_write(&format!(
                "report generated: {}\n",
                r.d.cli.outputs.report_file.display()
            ))?;
            cli::info(&format!(
                "evidence: {} (run folder {})",
                r.d.p("drill.json").display(),
                r.d.run_dir.display()
            ));
            Ok(if o.exit_code == Some(0) {
                Exit::Pass
            } else {
                Exit::Breach
            })
        }
        _ => Err(EvidenceError::failed(format!(
            "command failed ({}): {}",
            o.describe(),
            argv.join(" ")
        ))),
    }
}

fn interrupted() -> EvidenceError {
    cli::info(&format!(
        "interrupted by user ({}); everything started was stopped",
        signals::signal_name().unwrap_or("signal")
    ));
    EvidenceError::Interrupted
}

fn eprint_raw(text: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn copy_compat(r: &Running<'_>) -> Result<()> {
    for (from, to) in [
        (r.d.p("fault_events.jsonl"), &r.d.cli.outputs.event_log),
        (r.d.p("probe.log"), &r.d.cli.outputs.probe_log),
    ] {
        let bytes = std::fs::read(&from).unwrap_or_default();
        write_atomic(to, &bytes)?;
    }
    Ok(())
}

fn write_record(r: &Running<'_>, prov: &Provenance, result: &str, report_exit: Option<i32>) {
    let d = &r.d;
    let doc = json!({
        "kind": "reconnect.drill",
        "ts_ns": now_ns(),
        "drill_id": d.drill_id,
        "result": result,
        "config": s(&d.a.path),
        "local": d.a.local,
        "backend": if d.a.local { "proxy" } else { "netfilter" },
        "session_guard": d.a.guard,
        "preflight": r.preflight,
        "probe_config": s(&d.probe_config()),
        "probe": if d.tools.ours { "ctp-probe" } else { "platform" },
        "probe_status": r.probe_status,
        "sim_ports": r.sim_ports.map(|(t, m)| json!({"trader": t, "market": m})),
        "proxy_listen": r.proxy_ports.as_ref().map(|(t, m)| json!({"trader": t, "market": m})),
        "scenarios": r.results.iter().map(StepResult::to_json).collect::<Vec<_>>(),
        "notes": r.notes,
        "children": r.kids.records(),
        "report_exit": report_exit,
        "report_file": s(&d.cli.outputs.report_file),
        "provenance": prov,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    if let Err(e) = write_atomic(&d.p("drill.json"), text.as_bytes()) {
        cli::warn(&format!("cannot write the drill record: {e}"));
    }
}

fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// Wait for a child's ready file; fail when the child exits first or the deadline passes.
fn wait_ready(r: &mut Running<'_>, name: &str, file: &Path, secs: u64) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let got = signals::wait_until(deadline, Duration::from_millis(10), || {
        read_json(file)
            .map(Ok)
            .or_else(|| r.kids.exited(name).map(|st| Err(describe(&st))))
    })?;
    match got {
        Some(Ok(v)) => Ok(v),
        Some(Err(st)) => Err(EvidenceError::failed(format!(
            "{name} exited early ({st}); see {}",
            r.d.p(&format!("{name}.err")).display()
        ))),
        None => Err(EvidenceError::failed(format!(
            "{name} not ready within {secs} s; see {}",
            r.d.p(&format!("{name}.err")).display()
        ))),
    }
}

fn log_file(r: &Running<'_>, name: &str) -> Result<File> {
    let p = r.d.p(name);
    File::create(&p).map_err(|e| EvidenceError::io("cannot create", &p, e))
}

fn start_local(r: &mut Running<'_>) -> Result<()> {
    let (t, m) = match r.d.cli.local_ports {
        LocalPorts::Config => (r.d.a.trader.port, r.d.a.market.port),
        LocalPorts::Free => (0, 0),
    };
    let argv = r.d.sim_argv(t, m);
    echo(&argv);
    let mut c = command(&argv);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(r, "sim.err")?);
    r.kids.spawn("sim", c, Duration::from_secs(5))?;
    let ready = wait_ready(r, "sim", &r.d.p("sim.ready.json"), 15)?;
    let port = |k: &str| {
        ready[k]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| EvidenceError::failed(format!("sim.ready.json: no {k}")))
    };
    let (tp, mp) = (port("trader_port")?, port("market_port")?);
    r.sim_ports = Some((tp, mp));
    let host = r.d.target_ip.clone();
    let argv =
        r.d.proxy_argv(&format!("{host}:{tp}"), &format!("{host}:{mp}"));
    echo(&argv);
    let mut c = command(&argv);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file(r, "proxy.err")?);
    r.kids.spawn("proxy", c, Duration::from_secs(5))?;
    let ready = wait_ready(r, "proxy", &r.d.p("proxy.ready.json"), 15)?;
    let listen = |name: &str| {
        ready["pairs"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == name))
            .and_then(|p| p["listen"].as_str())
            .map(str::to_string)
            .ok_or_else(|| EvidenceError::failed(format!("proxy.ready.json: no pair {name}")))
    };
    let (tl, ml) = (listen("trader")?, listen("market")?);
    let text = std::fs::read_to_string(&r.d.a.path)
        .map_err(|e| EvidenceError::io("cannot read", &r.d.a.path, e))?;
    let header = format!(
        "Derived by reconnect-evidence (drill {}) from {} (sha256 {}):\nthe fronts point at fault-proxy, which forwards to ctp-front-sim on {host}:{tp} (trader)\nand {host}:{mp} (market). Every other line is the original's.",
        r.d.drill_id,
        r.d.a.path.display(),
        evidence_core::provenance::sha256_hex(text.as_bytes()),
    );
    let derived = derive_config_text(&text, &tl, &ml, &header);
    let dp = r.d.probe_config();
    write_atomic(&dp, derived.as_bytes())?;
    let check = CtpConfig::load(&dp)?;
    let got = (
        check.values.trader_front.as_ref().map(ToString::to_string),
        check.values.market_front.as_ref().map(ToString::to_string),
    );
    if got != (Some(tl.clone()), Some(ml.clone())) {
        return Err(EvidenceError::failed(format!(
            "the derived config {} does not point at the proxy ({tl}, {ml}): found {got:?}",
            dp.display()
        )));
    }
    r.proxy_ports = Some((tl, ml));
    Ok(())
}

fn child_env(r: &Running<'_>, c: &mut Command) {
    if let Some((k, v)) = &r.d.password_env {
        c.env(k, v);
    }
}

fn preflight(r: &mut Running<'_>) -> Result<()> {
    let config = r.d.probe_config();
    let ok = run_preflight(r, &config)?;
    if ok {
        return Ok(());
    }
    let c = r.d.cli;
    let hint = r
        .preflight
        .as_deref()
        .unwrap_or("")
        .contains("reachable groups:");
    if !r.d.a.local && hint && !c.no_auto_fallback_trading_groups {
        let mut seen: Vec<PathBuf> = Vec::new();
        for f in c
            .fallback_configs
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            let p = PathBuf::from(f);
            if p == r.d.a.path || seen.contains(&p) {
                continue;
            }
            seen.push(p.clone());
            if !p.is_file() {
                eprint_raw(&format!(
                    "[SKIP] fallback_config: missing {}\n",
                    p.display()
                ));
                continue;
            }
            let a = assess(c, &p)?;
            if run_preflight(r, &p)? {
                cli::info(&format!(
                    "preflight fallback selected config: {}",
                    p.display()
                ));
                cli::info(&format!("using fallback config for run: {}", p.display()));
                r.notes.push(format!("preflight fallback: {}", p.display()));
                if c.plan.target_ip.is_none() {
                    r.d.target_ip = a.trader.host.clone();
                }
                if c.plan.ports.is_none() {
                    r.d.ports = format!("{},{}", a.trader.port, a.market.port);
                }
                r.d.a = a;
                return Ok(());
            }
        }
    }
    cli::info("error: preflight failed, stop evidence run");
    let out = r.preflight.clone().unwrap_or_default();
    for l in out
        .lines()
        .filter(|l| l.starts_with("[FAIL]") || l.starts_with("overall"))
    {
        eprint_raw(&format!("{l}\n"));
    }
    Err(EvidenceError::failed(format!(
        "preflight failed; see {}",
        r.d.p("preflight.txt").display()
    )))
}

fn run_preflight(r: &mut Running<'_>, config: &Path) -> Result<bool> {
    let argv = r.d.preflight_argv(config);
    echo(&argv);
    let mut opts = RunOptions {
        timeout: Duration::from_secs(120),
        capture_limit: 1 << 20,
        ..RunOptions::default()
    };
    if let Some((k, v)) = &r.d.password_env {
        opts.env.push((k.clone(), v.clone()));
    }
    let o = run_command(command(&argv), &opts)?;
    if o.interrupted {
        return Err(EvidenceError::Interrupted);
    }
    let text = format!("{}{}", o.stdout_tail, o.stderr_tail);
    write_atomic(&r.d.p("preflight.txt"), text.as_bytes())?;
    r.preflight = Some(o.stdout_tail.clone());
    match o.exit_code {
        Some(0) => {
            cli::info(&format!("preflight passed ({})", config.display()));
            Ok(true)
        }
        Some(1) => Ok(false),
        _ => Err(EvidenceError::failed(format!(
            "command failed ({}): {}; see {}",
            o.describe(),
            argv.join(" "),
            r.d.p("preflight.txt").display()
        ))),
    }
}

fn start_probe(r: &mut Running<'_>) -> Result<()> {
    let argv = r.d.probe_argv();
    echo(&argv);
    let mut c = command(&argv);
    c.stdin(Stdio::null());
    child_env(r, &mut c);
    if r.d.tools.ours {
        c.stdout(log_file(r, "probe.out")?)
            .stderr(log_file(r, "probe.err")?);
    } else {
        // Its [health] lines (stdout) are the probe log; its messages (stderr) go to probe.err:
        // the original merged both, but a message that mentions "[health]" would then be read
        // as a malformed health line.
        c.stdout(log_file(r, "probe.log")?)
            .stderr(log_file(r, "probe.err")?);
        let lib = s(&r.d.cli.ctp_lib_dir);
        let ld = match std::env::var("LD_LIBRARY_PATH") {
            Ok(old) if !old.is_empty() => format!("{lib}:{old}"),
            _ => lib,
        };
        c.env("LD_LIBRARY_PATH", ld);
    }
    r.kids.spawn("probe", c, Duration::from_secs(5))?;
    Ok(())
}

fn probe_died(r: &mut Running<'_>) -> Option<EvidenceError> {
    r.kids.exited("probe").map(|st| {
        r.probe_status = Some(describe(&st));
        let log = if r.d.tools.ours {
            "probe.err"
        } else {
            "probe.log"
        };
        EvidenceError::failed(format!(
            "probe exited early ({}); see {}",
            describe(&st),
            r.d.p(log).display()
        ))
    })
}

/// Wait for the window's recovery by reconnect-core's one rule (the rule slo-report applies to the
/// same log): from the clear, until the probe has been healthy for the settle time, or
/// `deadline`. Also says whether the probe went unhealthy after the clear before that.
fn wait_recovery(r: &mut Running<'_>, clear_ns: i64, deadline: Instant) -> Result<(Outcome, bool)> {
    /// A line the probe wrote just now may not have been read yet: judge the settle interval
    /// only up to this long ago.
    const READ_MARGIN_NS: i64 = 20_000_000;
    let settle_ns = i64::try_from(r.d.cli.timing.settle_ms).unwrap_or(i64::MAX / 2) * 1_000_000;
    r.tail.poll()?;
    let mut search = RecoverySearch::new(clear_ns, r.tail.state_at(clear_ns), settle_ns, None);
    let mut fed = 0;
    loop {
        signals::check()?;
        r.tail.poll()?;
        if let Some(e) = probe_died(r) {
            return Err(e);
        }
        let samples = r.tail.samples();
        for s in &samples[fed.min(samples.len())..] {
            search.feed(*s);
        }
        fed = samples.len();
        if let Some(o) = search.advance_to(now_ns() - READ_MARGIN_NS) {
            return Ok((o, search.first_unhealthy_ns().is_some()));
        }
        if Instant::now() >= deadline {
            let after = search.first_unhealthy_ns().is_some();
            return Ok((search.give_up(), after));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Wait until the probe is healthy at or after `after_ns` and has stayed healthy for the settle
/// time, or until `deadline`.
fn wait_settled(r: &mut Running<'_>, after_ns: i64, deadline: Instant) -> Result<Settled> {
    let settle_ns = i64::try_from(r.d.cli.timing.settle_ms).unwrap_or(i64::MAX / 2) * 1_000_000;
    loop {
        signals::check()?;
        r.tail.poll()?;
        if let Some(e) = probe_died(r) {
            return Err(e);
        }
        let since = r.tail.healthy_since(after_ns);
        if let Some(h) = since
            && now_ns() - h >= settle_ns
        {
            return Ok(Settled::Yes(h));
        }
        if Instant::now() >= deadline {
            return Ok(since.map_or(Settled::No, Settled::Unsettled));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn drive(r: &mut Running<'_>) -> Result<()> {
    if r.d.a.local {
        start_local(r)?;
    }
    if !r.d.cli.skip_preflight {
        preflight(r)?;
    } else {
        cli::info("preflight skipped (--skip-preflight)");
    }
    signals::check()?;
    start_probe(r)?;
    let deadline = Instant::now() + Duration::from_secs(r.d.cli.timing.warmup_seconds);
    match wait_settled(r, 0, deadline)? {
        Settled::Yes(ts) => cli::info(&format!(
            "probe healthy since {} (settled {} ms)",
            format_utc(ts),
            r.d.cli.timing.settle_ms
        )),
        other => {
            return Err(EvidenceError::failed(format!(
                "the probe was not {} within --warmup-seconds {}; see {}",
                if other == Settled::No {
                    "healthy"
                } else {
                    "steadily healthy"
                },
                r.d.cli.timing.warmup_seconds,
                r.d.p(if r.d.tools.ours {
                    "probe_events.jsonl"
                } else {
                    "probe.log"
                })
                .display()
            )));
        }
    }
    let steps = r.d.steps.clone();
    let total = steps.len();
    for (i, step) in steps.iter().enumerate() {
        signals::check()?;
        cli::info(&format!("scenario {}/{total}: {}", i + 1, step.describe()));
        let res = run_step(r, step)?;
        let settled = res.settled;
        let recovered = res.healthy_again_ts_ns.is_some();
        r.results.push(res);
        if !recovered {
            let left: Vec<&str> = steps[i + 1..].iter().map(|s| s.scenario.as_str()).collect();
            let note = format!(
                "{}: the probe was not healthy again within --recovery-timeout-sec {}{}",
                step.scenario,
                r.d.cli.timing.recovery_timeout_sec,
                if left.is_empty() {
                    String::new()
                } else {
                    format!("; skipped: {}", left.join(","))
                }
            );
            cli::warn(&note);
            r.notes.push(note);
            break;
        }
        if !settled {
            let note = format!(
                "{}: healthy again but not for --settle-ms {} before the deadline",
                step.scenario, r.d.cli.timing.settle_ms
            );
            cli::warn(&note);
            r.notes.push(note);
        }
    }
    Ok(())
}

/// Forward the child `name`'s stdout to ours line by line; the lines also come out of the
/// returned channel (to watch for `# hold`).
fn forward_stdout(r: &mut Running<'_>, name: &str) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel::<String>();
    if let Some(out) = r.kids.take_stdout(name) {
        std::thread::spawn(move || {
            for line in BufReader::new(out)
                .lines()
                .map_while(std::result::Result::ok)
            {
                let _ = cli::stdout_write(&format!("{line}\n"));
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

fn run_step(r: &mut Running<'_>, step: &Step) -> Result<StepResult> {
    let sim_ports = r
        .sim_ports
        .filter(|_| r.d.cli.local_ports == LocalPorts::Free)
        .map(|(t, m)| (t.to_string(), m.to_string()));
    if r.d.a.local
        && let Some((t, m)) = r.sim_ports
    {
        r.d.ports = format!("{t},{m}");
    }
    let argv = r.d.fault_argv(step, sim_ports);
    let events_path = r.d.p("fault_events.jsonl");
    let before = count_lines(&events_path);
    echo(&argv);
    let mut c = command(&argv);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    // Started through Children, so that an interrupt stops it first (it then clears its fault).
    r.kids.spawn("fault-inject", c, Duration::from_secs(15))?;
    let rx = forward_stdout(r, "fault-inject");
    let start = Instant::now();
    let hold = Duration::from_millis(step.hold_ms);
    let mut holding_since: Option<Instant> = None;
    let mut signalled = false;
    let status = loop {
        if signals::interrupted() {
            return Err(EvidenceError::Interrupted);
        }
        if let Some(e) = probe_died(r) {
            return Err(e);
        }
        while let Ok(line) = rx.try_recv() {
            if line.starts_with("# hold") && holding_since.is_none() {
                holding_since = Some(Instant::now());
            }
        }
        if let Some(st) = r.kids.exited("fault-inject") {
            break st;
        }
        if step.sub_second() && !signalled && holding_since.is_some_and(|t| t.elapsed() >= hold) {
            if let Some(p) = r
                .kids
                .pid("fault-inject")
                .and_then(|p| i32::try_from(p).ok())
            {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
            signalled = true;
        }
        let limit = Duration::from_secs(step.duration_sec() + 60);
        if start.elapsed() > limit {
            r.kids.stop("fault-inject");
            return Err(EvidenceError::failed(format!(
                "fault-inject did not finish within {} s: {}",
                limit.as_secs(),
                argv.join(" ")
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.code() == Some(130) {
        cli::info("aborted by user (SIGINT)");
        return Err(EvidenceError::Interrupted);
    }
    if !status.success() {
        return Err(EvidenceError::failed(format!(
            "command failed ({}): {}",
            describe(&status),
            argv.join(" ")
        )));
    }
    // The window as fault-inject recorded it.
    let (apply, clear) = new_window(&events_path, before, step.scenario, &r.d.drill_id)?;
    let m = measure_recovery(r, step, apply, clear)?;
    Ok(StepResult {
        step: step.clone(),
        argv,
        status: describe(&status),
        apply_ts_ns: apply,
        clear_ts_ns: clear,
        healthy_again_ts_ns: m.healthy_again,
        sim_login_ts_ns: m.sim_login,
        unhealthy_seen: m.unhealthy_seen,
        recovered_before_clear: m.before_clear,
        settled: m.settled,
        waited_ms: m.waited_ms,
    })
}

/// What the drill measured of one window's recovery.
struct Recovery {
    healthy_again: Option<i64>,
    sim_login: Option<i64>,
    unhealthy_seen: bool,
    before_clear: bool,
    settled: bool,
    waited_ms: u64,
}

/// After fault-inject's clear: wait for the recovery by the one rule, cross-check it against the
/// simulator's log (local drills with ctp-probe) and say what happened.
fn measure_recovery(
    r: &mut Running<'_>,
    step: &Step,
    apply: Option<i64>,
    clear: Option<i64>,
) -> Result<Recovery> {
    let clear_ts = clear.unwrap_or_else(now_ns);
    let wait_start = Instant::now();
    let deadline = wait_start + Duration::from_secs(r.d.cli.timing.recovery_timeout_sec);
    let (outcome, unhealthy_after_clear) = wait_recovery(r, clear_ts, deadline)?;
    let waited_ms = u64::try_from(wait_start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (healthy_again, ok) = match outcome {
        Outcome::Recovered { at_ns } => (Some(at_ns), true),
        Outcome::NotRecovered(NotRecovered::Unsettled { healthy_since_ns }) => {
            (Some(healthy_since_ns), false)
        }
        Outcome::NotRecovered(_) => (None, false),
    };
    let dipped = apply.is_some_and(|a| r.tail.unhealthy_between(a, clear_ts));
    // Healthy again during the hold and stayed so: the recovery is at the clear (the rule's
    // first candidate), as slo-report counts it.
    let before_clear = dipped && healthy_again == Some(clear_ts);
    let unhealthy_seen = dipped || unhealthy_after_clear;
    // Local drill with ctp-probe: the recovery moment against the simulator's login log.
    let sim_login = match healthy_again
        .filter(|t| r.d.a.local && r.d.tools.ours && unhealthy_seen && *t > clear_ts && ok)
    {
        Some(t) => crosscheck::sim_login_moment(
            &read_probe_events(&r.d.p("probe_events.jsonl"))?,
            &read_sim_events(&r.d.p("sim_events.jsonl"))?,
            t,
        ),
        None => None,
    };
    match healthy_again {
        Some(_) if before_clear => cli::info(&format!(
            "{}: cleared; probe went unhealthy and was healthy again before the clear (recovery counted at the clear)",
            step.scenario
        )),
        Some(t) => cli::info(&format!(
            "{}: cleared; probe {} and healthy again {:.3} s after the clear{}",
            step.scenario,
            if unhealthy_seen {
                "went unhealthy"
            } else {
                "never went unhealthy"
            },
            (t - clear_ts) as f64 / 1e9,
            sim_login.map_or_else(String::new, |s| format!(
                " (healthy line minus the simulator's login_ok: {:+.3} ms)",
                (t - s) as f64 / 1e6
            ))
        )),
        None => cli::info(&format!(
            "{}: cleared; probe not healthy again within {} s",
            step.scenario, r.d.cli.timing.recovery_timeout_sec
        )),
    }
    Ok(Recovery {
        healthy_again,
        sim_login,
        unhealthy_seen,
        before_clear,
        settled: ok,
        waited_ms,
    })
}

/// What the drill measured for slo-report's acceptance list and verdict: whether its processes
/// survived, and (local drills with ctp-probe) the largest difference between the probe's
/// recovery moments and ctp-front-sim's log, with the bound.
fn measured(r: &Running<'_>, survived: bool) -> Vec<String> {
    let mut v = vec![
        "--processes-survived".to_string(),
        if survived { "yes" } else { "no" }.to_string(),
    ];
    let diffs: Vec<i64> = r
        .results
        .iter()
        .filter_map(|x| x.healthy_again_ts_ns.zip(x.sim_login_ts_ns))
        .map(|(h, s)| (h - s).abs())
        .collect();
    if let Some(max) = diffs.iter().max() {
        v.extend([
            "--sim-max-diff-ms".to_string(),
            format!("{:.3}", *max as f64 / 1e6),
            "--sim-bound-ms".to_string(),
            r.d.cli.timing.sim_agreement_bound_ms.to_string(),
        ]);
    }
    v
}

fn count_lines(p: &Path) -> usize {
    std::fs::read(p)
        .map(|b| b.iter().filter(|c| **c == b'\n').count())
        .unwrap_or(0)
}

/// The apply and clear (effective) times fault-inject appended for this step.
fn new_window(
    path: &Path,
    skip_lines: usize,
    scenario: Scenario,
    drill: &str,
) -> Result<(Option<i64>, Option<i64>)> {
    let f = File::open(path).map_err(|e| EvidenceError::io("cannot read", path, e))?;
    let mut apply = None;
    let mut clear = None;
    for ev in FaultEventReader::new(BufReader::new(f), s(path)) {
        let (line, ev) = ev?;
        if line <= skip_lines || ev.scenario != scenario || !ev.execute {
            continue;
        }
        if ev.drill_id.as_deref().is_some_and(|d| d != drill) {
            continue;
        }
        match ev.phase {
            Phase::Apply => apply = Some(ev.effective_ns()),
            Phase::Clear => clear = Some(ev.effective_ns()),
        }
    }
    if apply.is_none() || clear.is_none() {
        return Err(EvidenceError::failed(format!(
            "{}: fault-inject exited 0 but did not log both the apply and the clear of {scenario}",
            path.display()
        )));
    }
    Ok((apply, clear))
}
