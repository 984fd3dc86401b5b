//! fault-inject: the original `ctp_fault_inject` (`plan|run|clear`, its flags, scenarios, plan
//! lines and fault-event JSONL), with two backends and cleanup that a fault never outlives:
//!
//! - [`proxy`]: faults through fault-proxy's control socket, with a dead-man TTL renewed during
//!   the hold;
//! - [`netfilter`]: iptables rules in a chain of our own, and a scoped `tc netem`, guarded by a
//!   detached reaper (`fault-inject reap`, hidden) that removes them when fault-inject dies.

pub mod cmd;
pub mod netfilter;
pub mod nft;
pub mod proxy;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use trading_calendar::guard::{GuardArgs, GuardStatus, SessionGuard};

use evidence_core::cli::{self, EXIT_STATUS_HELP};
use evidence_core::duration::{DurationParser, whole_millis, whole_secs};
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Exit, Result, signals};
use reconnect_core::control::{Client, Request};
use reconnect_core::fault_event::{self, FaultEvent, FaultParameters, Mode, Phase, Scenario};

use crate::cmd::Cmd;

/// The original's default ports (the SimNow fronts).
pub const DEFAULT_PORTS: &str = "40001,40011,30001,30011,30002,30012,30003,30013";
/// The proxy backend's dead-man TTL, renewed every [`RENEW_EVERY`] during the hold.
pub const PROXY_TTL: Duration = Duration::from_secs(3);
/// How often the hold renews the proxy faults' TTL.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// The netfilter reaper removes the fault at the latest this long after the planned hold ends.
pub const REAPER_MARGIN: Duration = Duration::from_secs(30);

const AFTER_HELP: &str = "\
MODES:
  plan   print the apply and clear commands (never acts, never logs)
  run    apply, hold --duration-sec, clear (a dry run unless --execute: prints, logs execute=false)
  clear  remove what fault-inject owns (only --drill-id's with it), say what was removed

BACKENDS:
  netfilter (default, as the original): disconnect = iptables rules in the chain
            CTPOPS-<hash of drill id> (comment ctp-ops:<drill id>) jumped to from INPUT/OUTPUT;
            latency/jitter/loss/combined = tc netem on --iface, scoped to --target-ip/--ports.
            A detached reaper removes them if fault-inject dies (even by SIGKILL).
  proxy     faults through fault-proxy (--proxy-control), tagged ctp-ops:<drill id>, with a 3 s
            dead-man TTL renewed every second while holding.
  nft       disconnect only: table inet ctpops_<hash of drill id> whose set elements carry a
            kernel timeout (2 s, never past the hold + 30 s), refreshed while holding: the fault
            ends by itself even when fault-inject is killed with SIGKILL.

Targets must be fronts of --config or named by --allow-target; anything else is refused (exit 2).
The fault is in effect when `# hold Ns` is printed (after the apply event was appended; its
effective_ts_ns is the moment the fault took effect).

EXAMPLE:
  fault-inject run --backend proxy --proxy-control runtime/fault-proxy.sock \\
      --config configs/sim/local.yaml --scenario disconnect --disconnect-mode reset \\
      --duration-sec 5 --event-log-file runtime/fault_events.jsonl --execute
  sudo fault-inject run --config configs/sim/ctp.yaml --target-ip 182.254.243.31 \\
      --ports 40001,40011 --disconnect-mode reset --duration-sec 20 --execute
";

/// The positional mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Print the commands.
    Plan,
    /// Apply, hold, clear.
    Run,
    /// Remove what we own.
    Clear,
    /// (internal) the dead-man of a netfilter run.
    #[value(hide = true)]
    Reap,
}

/// `--scenario`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ScenarioArg {
    /// Reset or drop the traffic.
    Disconnect,
    /// Fixed delay.
    Latency,
    /// Packet loss.
    Loss,
    /// Delay with jitter.
    Jitter,
    /// Delay, jitter and loss.
    Combined,
}

impl From<ScenarioArg> for Scenario {
    fn from(s: ScenarioArg) -> Scenario {
        match s {
            ScenarioArg::Disconnect => Scenario::Disconnect,
            ScenarioArg::Latency => Scenario::Latency,
            ScenarioArg::Loss => Scenario::Loss,
            ScenarioArg::Jitter => Scenario::Jitter,
            ScenarioArg::Combined => Scenario::Combined,
        }
    }
}

/// `--disconnect-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DisconnectMode {
    /// Silently drop (connections time out).
    Drop,
    /// Answer with a TCP reset.
    Reset,
}

/// `--backend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// iptables/nft and tc netem (root).
    Netfilter,
    /// fault-proxy's control socket (no root).
    Proxy,
    /// Disconnect only: an nftables table whose set elements carry a kernel timeout, refreshed
    /// while the drill lives, so the fault ends at its deadline even if every process of ours is
    /// killed (root).
    Nft,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Netfilter => "netfilter",
            Backend::Proxy => "proxy",
            Backend::Nft => "nft",
        }
    }
}

/// `--delay-ms`/`--jitter-ms`: a plain integer of ms as before (a negative one reaches the check
/// that names it), or a duration with a unit (`250ms`, `0.25s`; evidence_core::duration).
fn ms_or_duration(text: &str) -> std::result::Result<i64, String> {
    text.trim().parse::<i64>().or_else(|_| {
        DurationParser::millis()
            .check(text)
            .map(|d| i64::try_from(whole_millis(d)).unwrap_or(i64::MAX))
    })
}

/// `--duration-sec`: a plain integer of seconds as before, or a duration with a unit (`20s`,
/// `2m`; a fraction of a second is truncated).
fn secs_or_duration(text: &str) -> std::result::Result<i64, String> {
    text.trim().parse::<i64>().or_else(|_| {
        DurationParser::secs()
            .check(text)
            .map(|d| i64::try_from(whole_secs(d)).unwrap_or(i64::MAX))
    })
}

/// Inject a reconnect fault on the CTP fronts (the original ctp_fault_inject), through
/// fault-proxy or netfilter, and never leave it behind.
#[derive(Debug, Parser)]
#[command(name = "fault-inject", version, after_help = format!("{AFTER_HELP}\n{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// plan, run or clear.
    #[arg(value_enum)]
    pub mode: ModeArg,

    /// The fault.
    #[arg(long, value_enum, default_value = "disconnect")]
    pub scenario: ScenarioArg,

    /// Disconnect by dropping or by resetting.
    #[arg(long, value_enum, default_value = "drop")]
    pub disconnect_mode: DisconnectMode,

    /// Interface for netem (netfilter backend).
    #[arg(long, default_value = "eth0")]
    pub iface: String,

    /// iptables to use instead of iptables, iptables-nft (must exist).
    #[arg(long, default_value = "")]
    pub firewall_cmd: String,

    /// tc to use instead of tc (must exist).
    #[arg(long, default_value = "")]
    pub tc_cmd: String,

    /// nft to use instead of nft (nft backend; must exist).
    #[arg(long, default_value = "")]
    pub nft_cmd: String,

    /// The front's IPv4 address (netfilter backend). Default: the host of --config's fronts when
    /// both are on one IPv4 host, else the original's 182.254.243.31.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub target_ip: String,

    /// The front's ports, comma-separated (netfilter backend). Default: the ports of --config's
    /// fronts when --target-ip came from it too, else the original's
    /// 40001,40011,30001,30011,30002,30012,30003,30013.
    #[arg(long, default_value = "", hide_default_value = true)]
    pub ports: String,

    /// Delay, milliseconds (latency, jitter, combined).
    #[arg(long, value_name = "DURATION", default_value = "250", allow_negative_numbers = true, value_parser = ms_or_duration)]
    pub delay_ms: i64,

    /// Jitter, milliseconds (jitter, combined).
    #[arg(long, value_name = "DURATION", default_value = "30", allow_negative_numbers = true, value_parser = ms_or_duration)]
    pub jitter_ms: i64,

    /// Loss, percent 0..100 (loss, combined).
    #[arg(long, default_value_t = 2.5, allow_negative_numbers = true)]
    pub loss_percent: f64,

    /// How long `run` holds the fault, seconds (at least 1).
    #[arg(long, value_name = "DURATION", default_value = "20", allow_negative_numbers = true, value_parser = secs_or_duration)]
    pub duration_sec: i64,

    /// Append fault events (JSONL, the original's format plus drill_id, backend, target,
    /// effective_ts_ns) to this file; empty: no log. (`--event-log-file`, the original's name,
    /// is an alias.)
    #[arg(
        long = "event-log",
        visible_alias = "event-log-file",
        value_name = "PATH",
        default_value = ""
    )]
    pub event_log_file: String,

    /// Really apply (without it, `run` and `clear` only print and log execute=false).
    #[arg(long)]
    pub execute: bool,

    /// The session guard: `run --execute` against a non-loopback target is refused inside a
    /// trading session (or its margin), or at a time the calendar cannot judge.
    #[command(flatten)]
    pub guard: GuardArgs,

    /// How faults are injected.
    #[arg(long, value_enum, default_value = "netfilter")]
    pub backend: Backend,

    /// fault-proxy's control socket (proxy backend).
    #[arg(
        long = "control-socket",
        visible_alias = "proxy-control",
        value_name = "PATH",
        default_value = "runtime/fault-proxy.sock"
    )]
    pub proxy_control: PathBuf,

    /// A proxy pair to fault (repeatable; default: every pair of the proxy).
    #[arg(long, value_name = "NAME")]
    pub proxy_pair: Vec<String>,

    /// CTP config: its trader and market fronts are the allowed targets.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Also allow this target (repeatable): an IPv4 address (any port) or IP:PORT.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_allow)]
    pub allow_target: Vec<(IpAddr, Option<u16>)>,

    /// The drill id (tags rules, chains and proxy faults; in `clear`, only this drill's).
    /// Default for `run`: `fi-<UTC time>-<random>`.
    #[arg(long, value_name = "ID", value_parser = parse_drill_id)]
    pub drill_id: Option<String>,

    /// A SIGINT/SIGTERM during the hold ends the hold early: clear, log, exit 0 (not 130).
    #[arg(long)]
    pub hold_interruptible: bool,

    /// (reaper) the process whose death removes the fault.
    #[arg(long, hide = true)]
    pub parent_pid: Option<i32>,

    /// (reaper) remove the fault at this epoch ns at the latest.
    #[arg(long, hide = true)]
    pub expires_at_ns: Option<i64>,
}

fn parse_allow(s: &str) -> std::result::Result<(IpAddr, Option<u16>), String> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok((ip, None));
    }
    s.parse::<SocketAddr>()
        .map(|a| (a.ip(), Some(a.port())))
        .map_err(|_| format!("expected IP or IP:PORT, found {s:?}"))
}

/// One drill-id rule for every drill (evidence_core::drill::DrillId: no `.`/`..`, no `/`).
fn parse_drill_id(s: &str) -> std::result::Result<String, String> {
    evidence_core::drill::DrillId::new(s)
        .map(|d| d.as_str().to_string())
        .map_err(|e| e.to_string())
}

fn generated_drill_id() -> String {
    evidence_core::drill::DrillId::generate("fi")
        .as_str()
        .to_string()
}

/// Validated scenario values.
#[derive(Debug, Clone)]
struct Shape {
    scenario: Scenario,
    reset: bool,
    ip: Ipv4Addr,
    ports: Vec<u16>,
    delay_ms: u64,
    jitter_ms: u64,
    loss: f64,
    duration: u64,
}

impl Shape {
    fn from_cli(cli: &Cli) -> Result<Shape> {
        let mut ports = Vec::new();
        for p in cli
            .ports
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => ports.push(n),
                _ => {
                    return Err(EvidenceError::usage(format!(
                        "--ports: expected ports 1..65535 separated by commas, found {p:?}"
                    )));
                }
            }
        }
        if ports.is_empty() {
            return Err(EvidenceError::usage(
                "--ports: at least one port is required",
            ));
        }
        let non_neg = |flag: &str, v: i64| {
            u64::try_from(v)
                .map_err(|_| EvidenceError::usage(format!("{flag}: expected >= 0, found {v}")))
        };
        let delay_ms = non_neg("--delay-ms", cli.delay_ms)?;
        let jitter_ms = non_neg("--jitter-ms", cli.jitter_ms)?;
        if !cli.loss_percent.is_finite() || !(0.0..=100.0).contains(&cli.loss_percent) {
            return Err(EvidenceError::usage(format!(
                "--loss-percent: expected 0..100, found {}",
                cli.loss_percent
            )));
        }
        if cli.iface.trim().is_empty() {
            return Err(EvidenceError::usage("--iface: must not be empty"));
        }
        let ip = cli.target_ip.trim().parse::<Ipv4Addr>().map_err(|_| {
            EvidenceError::usage(format!(
                "--target-ip: expected an IPv4 address, found {:?}",
                cli.target_ip
            ))
        })?;
        let duration = u64::try_from(cli.duration_sec)
            .ok()
            .filter(|d| *d >= 1)
            .ok_or_else(|| {
                EvidenceError::usage(format!(
                    "--duration-sec: expected >= 1, found {}",
                    cli.duration_sec
                ))
            })?;
        let scenario = Scenario::from(cli.scenario);
        // The original records the CLI values but uses only the scenario's.
        let (delay_ms, jitter_ms, loss) = match scenario {
            Scenario::Disconnect => (0, 0, 0.0),
            Scenario::Latency => (delay_ms, 0, 0.0),
            Scenario::Loss => (0, 0, cli.loss_percent),
            Scenario::Jitter => (delay_ms, jitter_ms, 0.0),
            Scenario::Combined => (delay_ms, jitter_ms, cli.loss_percent),
        };
        Ok(Shape {
            scenario,
            reset: cli.disconnect_mode == DisconnectMode::Reset,
            ip,
            ports,
            delay_ms,
            jitter_ms,
            loss,
            duration,
        })
    }

    fn is_netem(&self) -> bool {
        self.scenario != Scenario::Disconnect
    }
}

/// The targets faults may hit.
#[derive(Debug, Default)]
struct Allowlist(Vec<(IpAddr, Option<u16>)>);

impl Allowlist {
    fn from_cli(cli: &Cli) -> Result<Allowlist> {
        let mut v = cli.allow_target.clone();
        if let Some(path) = &cli.config {
            let cfg = ctp_config::CtpConfig::load(path)?;
            for f in [&cfg.values.trader_front, &cfg.values.market_front]
                .into_iter()
                .flatten()
            {
                let addrs = (f.host.as_str(), f.port).to_socket_addrs().map_err(|e| {
                    EvidenceError::failed(format!(
                        "{}: front {f}: cannot resolve: {e}",
                        path.display()
                    ))
                })?;
                v.extend(addrs.map(|a| (a.ip(), Some(a.port()))));
            }
        }
        Ok(Allowlist(v))
    }

    fn allows(&self, a: SocketAddr) -> bool {
        self.0
            .iter()
            .any(|(ip, port)| *ip == a.ip() && port.is_none_or(|p| p == a.port()))
    }

    fn check(&self, targets: &[SocketAddr]) -> Result<()> {
        if self.0.is_empty() {
            return Err(EvidenceError::usage(
                "no allowed targets: pass --config <CTP config> (its fronts are allowed) or --allow-target IP[:PORT]",
            ));
        }
        for t in targets {
            if !self.allows(*t) {
                let allowed: Vec<String> = self
                    .0
                    .iter()
                    .map(|(ip, p)| {
                        p.map_or_else(|| ip.to_string(), |p| SocketAddr::new(*ip, p).to_string())
                    })
                    .collect();
                return Err(EvidenceError::usage(format!(
                    "refusing target {t}: not a front of --config nor an --allow-target (allowed: {})",
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// What a run does, per backend.
enum Prepared {
    Nft {
        nft: PathBuf,
        ip: std::net::Ipv4Addr,
        ports: Vec<u16>,
        reset: bool,
        /// The fault's deadline (set at apply): the elements never outlive it.
        deadline: Option<Instant>,
    },
    Disconnect {
        fw: PathBuf,
        apply: Vec<Cmd>,
        clear: Vec<Cmd>,
    },
    Netem {
        tc: PathBuf,
        apply: Vec<Cmd>,
        clear: Vec<Cmd>,
    },
    Proxy {
        client: Box<Client>,
        apply: Vec<Request>,
        clear: Request,
        tag: String,
    },
}

struct Ctx<'a> {
    cli: &'a Cli,
    shape: Shape,
    drill_id: String,
    target: String,
    /// target_ip and ports as recorded (the proxy's upstreams for the proxy backend).
    recorded: (String, String),
}

impl Ctx<'_> {
    fn event(&self, mode: Mode, phase: Phase, execute: bool, effective: Option<i64>) -> FaultEvent {
        let c = self.cli;
        let params = FaultParameters {
            duration_sec: c.duration_sec.to_string(),
            target_ip: self.recorded.0.clone(),
            ports: self.recorded.1.clone(),
            disconnect_mode: match c.disconnect_mode {
                DisconnectMode::Drop => "drop".into(),
                DisconnectMode::Reset => "reset".into(),
            },
            iface: c.iface.clone(),
            delay_ms: c.delay_ms.to_string(),
            jitter_ms: c.jitter_ms.to_string(),
            loss_percent: fault_event::python_float_text(c.loss_percent),
            extra: Vec::new(),
        };
        let mut ev = FaultEvent::new(now_ns(), mode, self.shape.scenario, phase, execute, params);
        ev.drill_id = Some(self.drill_id.clone());
        ev.backend = Some(c.backend.name().to_string());
        ev.target = Some(self.target.clone());
        ev.effective_ts_ns = effective;
        ev
    }

    fn log(&self, ev: &FaultEvent) -> Result<()> {
        if self.cli.event_log_file.is_empty() {
            return Ok(());
        }
        fault_event::append_fault_event(Path::new(&self.cli.event_log_file), ev)
    }
}

fn say(line: &str) -> Result<()> {
    cli::stdout_write(&format!("{line}\n"))
}

/// Run the tool.
///
/// # Errors
/// Bad flags, a refused target, a missing tool or kernel feature, a failed apply (rolled back):
/// exit 2; a signal: 130 after cleanup.
pub fn run(mut cli: Cli) -> Result<Exit> {
    default_targets(&mut cli)?;
    match cli.mode {
        ModeArg::Reap => reap(&cli),
        ModeArg::Clear => clear_mode(&cli),
        ModeArg::Plan | ModeArg::Run => plan_or_run(&cli),
    }
}

/// The original's target when neither --target-ip nor --config says otherwise.
pub const DEFAULT_TARGET_IP: &str = "182.254.243.31";

/// Fill in `--target-ip` and `--ports` when they were not given: from the fronts of `--config`
/// when both are on one IPv4 host (so `--config` alone targets exactly the allowed fronts), else
/// the original's defaults.
fn default_targets(cli: &mut Cli) -> Result<()> {
    let from_config = match (&cli.config, cli.target_ip.is_empty()) {
        (Some(path), true) if cli.mode != ModeArg::Reap => {
            let cfg = ctp_config::CtpConfig::load(path)?;
            let fronts: Vec<_> = [&cfg.values.trader_front, &cfg.values.market_front]
                .into_iter()
                .flatten()
                .collect();
            let one_host = fronts
                .first()
                .filter(|f| f.host.parse::<Ipv4Addr>().is_ok())
                .filter(|f| fronts.iter().all(|g| g.host == f.host));
            one_host.map(|f| {
                let ports: Vec<String> = fronts.iter().map(|g| g.port.to_string()).collect();
                (f.host.clone(), ports.join(","))
            })
        }
        _ => None,
    };
    match from_config {
        Some((ip, ports)) => {
            cli.target_ip = ip;
            if cli.ports.is_empty() {
                cli.ports = ports;
            }
        }
        None => {
            if cli.target_ip.is_empty() {
                cli.target_ip = DEFAULT_TARGET_IP.to_string();
            }
            if cli.ports.is_empty() {
                cli.ports = DEFAULT_PORTS.to_string();
            }
        }
    }
    Ok(())
}

fn prepare(
    cli: &Cli,
    shape: &Shape,
    drill_id: &str,
) -> Result<(Prepared, String, (String, String))> {
    let allow = Allowlist::from_cli(cli)?;
    let ports_s: Vec<String> = shape.ports.iter().map(u16::to_string).collect();
    let nf_target = || {
        shape
            .ports
            .iter()
            .map(|p| SocketAddr::new(IpAddr::V4(shape.ip), *p))
            .collect::<Vec<_>>()
    };
    let nf_recorded = (cli.target_ip.clone(), cli.ports.clone());
    let nf_target_text = ports_s
        .iter()
        .map(|p| format!("{}:{p}", shape.ip))
        .collect::<Vec<_>>()
        .join(",");
    match cli.backend {
        Backend::Nft if shape.is_netem() => Err(EvidenceError::usage(format!(
            "--backend nft injects disconnects only; use --backend netfilter or proxy for {}",
            shape.scenario
        ))),
        Backend::Nft => {
            let nft = cmd::resolve(("--nft-cmd", &cli.nft_cmd), &["nft"])?;
            allow.check(&nf_target())?;
            Ok((
                Prepared::Nft {
                    nft,
                    ip: shape.ip,
                    ports: shape.ports.clone(),
                    reset: shape.reset,
                    deadline: None,
                },
                nf_target_text,
                nf_recorded,
            ))
        }
        Backend::Netfilter if !shape.is_netem() => {
            let fw = cmd::resolve(
                ("--firewall-cmd", &cli.firewall_cmd),
                &["iptables", "iptables-nft"],
            )?;
            allow.check(&nf_target())?;
            let ip = shape.ip.to_string();
            let apply = netfilter::disconnect_apply(&fw, drill_id, &ip, &shape.ports, shape.reset);
            let clear = netfilter::disconnect_clear(&fw, drill_id);
            Ok((
                Prepared::Disconnect { fw, apply, clear },
                nf_target_text,
                nf_recorded,
            ))
        }
        Backend::Netfilter => {
            let tc = cmd::resolve(("--tc-cmd", &cli.tc_cmd), &["tc"])?;
            allow.check(&nf_target())?;
            let netem = netfilter::netem_args(shape.delay_ms, shape.jitter_ms, shape.loss);
            let apply = netfilter::netem_apply(
                &tc,
                &cli.iface,
                &shape.ip.to_string(),
                &shape.ports,
                &netem,
            );
            let clear = vec![netfilter::netem_clear(&tc, &cli.iface)];
            Ok((
                Prepared::Netem { tc, apply, clear },
                nf_target_text,
                nf_recorded,
            ))
        }
        Backend::Proxy => prepare_proxy(cli, shape, drill_id, &allow),
    }
}

/// The proxy backend's plan: the pairs the config allows, their faults under the drill's tag.
fn prepare_proxy(
    cli: &Cli,
    shape: &Shape,
    drill_id: &str,
    allow: &Allowlist,
) -> Result<(Prepared, String, (String, String))> {
    let mut client = proxy::connect(&cli.proxy_control)?;
    let pairs = proxy::select_pairs(&mut client, &cli.proxy_pair)?;
    let mut ups = Vec::new();
    if allow.0.is_empty() {
        allow.check(&[])?;
    }
    for p in &pairs {
        let up = proxy::upstream_addrs(p)?;
        // A pair is a front when the config names either side of it: the front it
        // forwards to, or the proxy's listen address standing in for that front.
        let listen_allowed = p
            .listen
            .parse::<SocketAddr>()
            .is_ok_and(|l| allow.allows(l));
        if !listen_allowed {
            allow.check(&up)?;
        }
        ups.extend(up);
    }
    let tag = proxy::tag(drill_id);
    let faults = proxy::faults(
        shape.scenario,
        shape.reset,
        shape.delay_ms,
        shape.jitter_ms,
        shape.loss,
    );
    let apply = proxy::apply_requests(&pairs, &faults, &tag, PROXY_TTL);
    let clear = proxy::clear_request(&tag);
    let target = pairs
        .iter()
        .map(|p| format!("{}={}", p.name, p.upstream))
        .collect::<Vec<_>>()
        .join(",");
    let mut ips: Vec<String> = Vec::new();
    for a in &ups {
        let s = a.ip().to_string();
        if !ips.contains(&s) {
            ips.push(s);
        }
    }
    let ports = ups
        .iter()
        .map(|a| a.port().to_string())
        .collect::<Vec<_>>()
        .join(",");
    Ok((
        Prepared::Proxy {
            client: Box::new(client),
            apply,
            clear,
            tag,
        },
        target,
        (ips.join(","), ports),
    ))
}

impl Prepared {
    fn apply_lines(&self, cli: &Cli, drill_id: &str) -> Vec<String> {
        match self {
            Prepared::Nft {
                nft,
                ip,
                ports,
                reset,
                ..
            } => vec![nft::apply(nft, drill_id, *ip, ports, *reset, nft::LEASE).display()],
            Prepared::Disconnect { apply, .. } | Prepared::Netem { apply, .. } => {
                apply.iter().map(Cmd::display).collect()
            }
            Prepared::Proxy { apply, .. } => apply
                .iter()
                .map(|r| proxy::show(&cli.proxy_control, r))
                .collect(),
        }
    }

    fn clear_lines(&self, cli: &Cli, drill_id: &str) -> Vec<String> {
        match self {
            Prepared::Nft { nft, .. } => {
                vec![nft::delete_table(nft, &nft::table(drill_id)).display()]
            }
            Prepared::Disconnect { clear, .. } | Prepared::Netem { clear, .. } => {
                clear.iter().map(Cmd::display).collect()
            }
            Prepared::Proxy { clear, .. } => vec![proxy::show(&cli.proxy_control, clear)],
        }
    }
}

fn plan_or_run(cli: &Cli) -> Result<Exit> {
    let shape = Shape::from_cli(cli)?;
    let drill_id = cli.drill_id.clone().unwrap_or_else(generated_drill_id);
    let (prepared, target, recorded) = prepare(cli, &shape, &drill_id)?;
    let ctx = Ctx {
        cli,
        shape,
        drill_id,
        target,
        recorded,
    };
    if cli.mode == ModeArg::Plan {
        say("# apply")?;
        for l in prepared.apply_lines(cli, &ctx.drill_id) {
            say(&l)?;
        }
        say("# clear")?;
        for l in prepared.clear_lines(cli, &ctx.drill_id) {
            say(&l)?;
        }
        return Ok(Exit::Pass);
    }
    if !cli.execute {
        say("# apply")?;
        for l in prepared.apply_lines(cli, &ctx.drill_id) {
            say(&l)?;
        }
        ctx.log(&ctx.event(Mode::Run, Phase::Apply, false, None))?;
        say(&format!(
            "# dry-run: would keep fault for {}s before clear",
            ctx.shape.duration
        ))?;
        say("# clear")?;
        for l in prepared.clear_lines(cli, &ctx.drill_id) {
            say(&l)?;
        }
        ctx.log(&ctx.event(Mode::Run, Phase::Clear, false, None))?;
        cli::info(&format!(
            "dry run (drill {}): nothing applied; pass --execute to inject",
            ctx.drill_id
        ));
        return Ok(Exit::Pass);
    }
    execute_run(&ctx, prepared)
}

/// Print, ignoring a closed stdout: once a fault may be in place, nothing stops the cleanup.
fn tell(line: &str) {
    let _ = say(line);
}

fn execute_run(ctx: &Ctx<'_>, mut prepared: Prepared) -> Result<Exit> {
    let cli = ctx.cli;
    // Before anything is touched: no fault on a real front inside a trading session.
    let guard = SessionGuard::try_from(&cli.guard)?;
    // Proxy targets are `pair=upstream`: the upstream is what the fault reaches.
    let targets: Vec<&str> = ctx
        .target
        .split(',')
        .map(|t| t.split_once('=').map_or(t, |(_, a)| a))
        .collect();
    let verdict = guard.check(guard.now(), &targets)?;
    if verdict.status != GuardStatus::NotApplicable {
        cli::info(&verdict.reason);
    }
    signals::install()?;
    // Preflight before anything is started: can we list (and so later remove) what we add?
    match &prepared {
        Prepared::Disconnect { fw, .. } => {
            netfilter::list_rules(fw)?;
        }
        Prepared::Netem { tc, .. } => {
            netfilter::probe_kernel(tc)?;
            if netfilter::netem_present(tc, &cli.iface)? {
                return Err(EvidenceError::failed(format!(
                    "{} already has our qdisc {} (another drill running, or a leftover: fault-inject clear --scenario {} --iface {} --execute)",
                    cli.iface,
                    netfilter::ROOT_HANDLE,
                    ctx.shape.scenario,
                    cli.iface
                )));
            }
        }
        Prepared::Nft { nft, .. } => {
            let left = nft_tables(nft, Some(&ctx.drill_id))?;
            if !left.is_empty() {
                return Err(EvidenceError::failed(format!(
                    "nftables table {} exists (a leftover of this drill id: fault-inject clear --backend nft --drill-id {} --execute)",
                    left.join(","),
                    ctx.drill_id
                )));
            }
        }
        Prepared::Proxy { .. } => {}
    }
    // The nft backend's fault expires in the kernel: no reaper needed.
    let mut reaper = match &prepared {
        Prepared::Disconnect { .. } | Prepared::Netem { .. } => Some(spawn_reaper(ctx, &prepared)?),
        Prepared::Proxy { .. } | Prepared::Nft { .. } => None,
    };
    tell("# apply");
    let applied = apply(ctx, &mut prepared);
    let effective = match applied {
        Ok(t) => t,
        Err(e) => {
            stop_reaper(reaper.as_mut());
            return Err(e);
        }
    };
    cli::info(&format!(
        "drill {}: {} fault in effect on {}",
        ctx.drill_id, ctx.shape.scenario, ctx.target
    ));
    // From here on, the fault is in place: whatever happens, clear it.
    let held = ctx
        .log(&ctx.event(Mode::Run, Phase::Apply, true, Some(effective)))
        .and_then(|()| {
            tell(&format!("# hold {}s", ctx.shape.duration));
            hold(ctx, &mut prepared)
        });
    tell("# clear");
    let cleared = clear_run(ctx, &mut prepared);
    let logged = match &cleared {
        Ok(t) => ctx.log(&ctx.event(Mode::Run, Phase::Clear, true, Some(*t))),
        Err(_) => Ok(()),
    };
    if cleared.is_ok() {
        // The reaper double-checks and exits; on a failed clear it keeps trying after we exit.
        stop_reaper(reaper.as_mut());
    }
    cleared?;
    let interrupted = held?;
    logged?;
    if interrupted && !cli.hold_interruptible {
        cli::info(&format!(
            "interrupted by {}; fault cleared",
            signals::signal_name().unwrap_or("a signal")
        ));
        return Err(EvidenceError::Interrupted);
    }
    if interrupted {
        cli::info("hold ended early by a signal (--hold-interruptible); fault cleared");
    }
    Ok(Exit::Pass)
}

/// Apply all or nothing; returns when the fault took effect.
fn apply(ctx: &Ctx<'_>, prepared: &mut Prepared) -> Result<i64> {
    match prepared {
        Prepared::Nft {
            nft,
            ip,
            ports,
            reset,
            deadline,
        } => {
            let end = Instant::now() + Duration::from_secs(ctx.shape.duration) + REAPER_MARGIN;
            *deadline = Some(end);
            let c = nft::apply(
                nft,
                &ctx.drill_id,
                *ip,
                ports,
                *reset,
                nft::lease(end - Instant::now()),
            );
            tell(&c.display());
            let o = cmd::run(&c)?;
            if !o.ok() {
                // One transaction: nothing was applied.
                return Err(EvidenceError::failed(format!(
                    "command failed ({}): {}",
                    o.describe(),
                    c.display()
                )));
            }
            Ok(now_ns())
        }
        Prepared::Disconnect { fw, apply, .. } | Prepared::Netem { tc: fw, apply, .. } => {
            let netem = ctx.shape.is_netem();
            for (i, c) in apply.iter().enumerate() {
                tell(&c.display());
                let out = cmd::run(c);
                let failure = match out {
                    Ok(o) if o.ok() => None,
                    Ok(o) => Some(if netem && o.stderr.contains("qdisc kind is unknown") {
                        let kind = if i == 0 { "prio" } else { "netem" };
                        netfilter::missing_kind(kind)
                    } else {
                        format!("command failed ({}): {}", o.describe(), c.display())
                    }),
                    Err(e) => Some(e.to_string()),
                };
                let interrupted = signals::interrupted();
                if let (0, Some(f)) = (i, &failure) {
                    // Nothing was applied: nothing to roll back.
                    return Err(EvidenceError::failed(f.clone()));
                }
                if failure.is_some() || interrupted {
                    let rolled = rollback(ctx, fw);
                    if let Some(f) = failure {
                        return Err(EvidenceError::failed(format!(
                            "{f}; partial apply rolled back{}",
                            rolled
                                .map_or_else(|e| format!(" INCOMPLETELY: {e}"), |()| String::new())
                        )));
                    }
                    cli::info("interrupted during apply; rolled back");
                    return Err(EvidenceError::Interrupted);
                }
            }
            Ok(now_ns())
        }
        Prepared::Proxy {
            client, apply, tag, ..
        } => {
            for r in apply.iter() {
                tell(&proxy::show(&ctx.cli.proxy_control, r));
            }
            proxy::apply(client, apply, tag)
        }
    }
}

fn rollback(ctx: &Ctx<'_>, tool: &Path) -> Result<()> {
    if ctx.shape.is_netem() {
        clear_netem(tool, &ctx.cli.iface, false).map(|_| ())
    } else {
        clear_chain(tool, Some(&ctx.drill_id), false).map(|_| ())
    }
}

/// Hold the fault; `Ok(true)` when a signal ended it.
fn hold(ctx: &Ctx<'_>, prepared: &mut Prepared) -> Result<bool> {
    let end = Instant::now() + Duration::from_secs(ctx.shape.duration);
    let mut next_renew = Instant::now() + RENEW_EVERY;
    let expected = match prepared {
        Prepared::Proxy { apply, .. } => apply.len(),
        _ => 0,
    };
    loop {
        if signals::interrupted() {
            return Ok(true);
        }
        let now = Instant::now();
        if now >= end {
            return Ok(false);
        }
        if let Prepared::Nft {
            nft,
            ip,
            ports,
            deadline,
            ..
        } = prepared
            && now >= next_renew
        {
            let left = deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
            let c = nft::refresh(nft, &ctx.drill_id, *ip, ports, nft::lease(left));
            let o = cmd::run(&c)?;
            if !o.ok() {
                return Err(EvidenceError::failed(format!(
                    "cannot refresh the fault's kernel timeout (it expires by itself within {} ms): {}",
                    nft::LEASE.as_millis(),
                    o.describe()
                )));
            }
            next_renew = now + nft::REFRESH_EVERY;
        }
        if let Prepared::Proxy { client, tag, .. } = prepared
            && now >= next_renew
        {
            let (_, renewed) = client.renew_tag(tag, PROXY_TTL).map_err(|e| {
                EvidenceError::failed(format!("cannot renew the proxy faults' dead-man: {e}"))
            })?;
            if renewed.len() < expected {
                cli::warn(&format!(
                    "only {} of {expected} proxy faults are still active (removed by someone else?)",
                    renewed.len()
                ));
            }
            next_renew = now + RENEW_EVERY;
        }
        std::thread::sleep(Duration::from_millis(20).min(end - now));
    }
}

/// Remove the drill's fault; returns when it stopped taking effect.
fn clear_run(ctx: &Ctx<'_>, prepared: &mut Prepared) -> Result<i64> {
    match prepared {
        Prepared::Nft { nft, .. } => {
            let (t, _) = clear_nft(nft, Some(&ctx.drill_id), true)?;
            Ok(t)
        }
        Prepared::Disconnect { fw, .. } => {
            let (t, _) = clear_chain(fw, Some(&ctx.drill_id), true)?;
            Ok(t)
        }
        Prepared::Netem { tc, .. } => {
            let (t, _) = clear_netem(tc, &ctx.cli.iface, true)?;
            Ok(t)
        }
        Prepared::Proxy {
            client, clear, tag, ..
        } => {
            tell(&proxy::show(&ctx.cli.proxy_control, clear));
            let (t, _) = client.clear_tag(tag).map_err(|e| {
                EvidenceError::failed(format!(
                    "cannot clear the proxy faults (they expire by themselves within {}s): {e}",
                    PROXY_TTL.as_secs()
                ))
            })?;
            let left = proxy::ours(client, Some(tag))?;
            if !left.is_empty() {
                return Err(EvidenceError::failed(format!(
                    "{} proxy fault(s) still active after clear",
                    left.len()
                )));
            }
            Ok(t)
        }
    }
}

/// Our nftables tables (one drill's, or all).
fn nft_tables(nft: &Path, drill_id: Option<&str>) -> Result<Vec<String>> {
    let c = nft::list_tables(nft);
    let o = cmd::run(&c)?;
    if !o.ok() {
        return Err(EvidenceError::failed(format!(
            "cannot list nftables tables ({}): {}",
            o.describe(),
            c.display()
        )));
    }
    Ok(nft::owned(&o.stdout, drill_id))
}

/// Delete our nftables tables (one drill's, or all); verify none is left. Returns when the first
/// was gone, and what was removed.
fn clear_nft(nft: &Path, drill_id: Option<&str>, print: bool) -> Result<(i64, Option<String>)> {
    let found = nft_tables(nft, drill_id)?;
    let mut stopped = now_ns();
    for (i, t) in found.iter().enumerate() {
        let c = nft::delete_table(nft, t);
        if print {
            tell(&c.display());
        }
        let o = cmd::run(&c)?;
        if !o.ok() {
            return Err(EvidenceError::failed(format!(
                "command failed ({}): {}",
                o.describe(),
                c.display()
            )));
        }
        if i == 0 {
            stopped = now_ns();
        }
    }
    let left = nft_tables(nft, drill_id)?;
    if !left.is_empty() {
        return Err(EvidenceError::failed(format!(
            "nftables table(s) {} still present after clear",
            left.join(",")
        )));
    }
    Ok((
        stopped,
        (!found.is_empty()).then(|| format!("removed nftables table(s) {}", found.join(","))),
    ))
}

/// Remove our chains (one drill's, or all) and the jumps into them; verify nothing is left.
/// Returns when the jumps were gone (the fault stopped) and a description of what was removed.
fn clear_chain(fw: &Path, drill_id: Option<&str>, print: bool) -> Result<(i64, Option<String>)> {
    let found = netfilter::owned(&netfilter::list_rules(fw)?, drill_id);
    let cmds = netfilter::clear_rules(fw, &found);
    let mut stopped = now_ns();
    let mut failures = Vec::new();
    for (i, c) in cmds.iter().enumerate() {
        if print {
            tell(&c.display());
        }
        match cmd::run(c) {
            Ok(o) if o.ok() => {}
            Ok(o) => failures.push(format!("{}: {}", c.display(), o.describe())),
            Err(e) => failures.push(e.to_string()),
        }
        if i + 1 == found.jumps.len() {
            stopped = now_ns();
        }
    }
    if found.jumps.is_empty() {
        stopped = now_ns();
    }
    let listing = netfilter::list_rules(fw)?;
    let left = netfilter::owned(&listing, drill_id);
    // Belt and braces: no line may still name the drill's chains.
    let named = drill_id.is_some_and(|d| listing.contains(&netfilter::chain_name(d)));
    if !left.jumps.is_empty() || !left.chains.is_empty() || named {
        return Err(EvidenceError::failed(format!(
            "rules of ours remain after clear ({} jump(s), chain(s) {}): {}",
            left.jumps.len(),
            left.chains.join(" "),
            failures.join("; ")
        )));
    }
    let what = (!found.chains.is_empty() || !found.jumps.is_empty()).then(|| {
        format!(
            "removed chain(s) {} and {} jump rule(s) (drill(s) {})",
            found.chains.join(" "),
            found.jumps.len(),
            found.drills.join(" ")
        )
    });
    Ok((stopped, what))
}

/// Remove our root qdisc on `iface` if present; verify it is gone.
fn clear_netem(tc: &Path, iface: &str, print: bool) -> Result<(i64, Option<String>)> {
    if !netfilter::netem_present(tc, iface)? {
        return Ok((now_ns(), None));
    }
    let c = netfilter::netem_clear(tc, iface);
    if print {
        tell(&c.display());
    }
    let out = cmd::run(&c)?;
    let t = now_ns();
    if netfilter::netem_present(tc, iface)? {
        return Err(EvidenceError::failed(format!(
            "our qdisc {} on {iface} remains after clear: {}",
            netfilter::ROOT_HANDLE,
            out.describe()
        )));
    }
    Ok((
        t,
        Some(format!(
            "removed qdisc {} (netem) from {iface}",
            netfilter::ROOT_HANDLE
        )),
    ))
}

/// `clear --backend proxy`: our tags' faults (one drill's, or all), shown or removed.
fn clear_proxy(cli: &Cli, drill: Option<&str>, removed: &mut Vec<String>) -> Result<()> {
    let mut client = proxy::connect(&cli.proxy_control)?;
    say("# clear")?;
    let tag = drill.map(proxy::tag);
    let found = proxy::ours(&mut client, tag.as_deref())?;
    let mut tags: Vec<String> = Vec::new();
    for f in &found {
        if !tags.contains(&f.tag) {
            tags.push(f.tag.clone());
        }
    }
    for t in &tags {
        say(&proxy::show(&cli.proxy_control, &proxy::clear_request(t)))?;
        if cli.execute {
            let (_, gone) = client.clear_tag(t)?;
            removed.extend(
                gone.iter()
                    .map(proxy::describe)
                    .map(|d| format!("removed {d}")),
            );
        }
    }
    if !cli.execute {
        for f in &found {
            cli::info(&format!("would remove {}", proxy::describe(f)));
        }
    }
    Ok(())
}

fn clear_mode(cli: &Cli) -> Result<Exit> {
    let scenario = Scenario::from(cli.scenario);
    let drill = cli.drill_id.as_deref();
    let mut removed: Vec<String> = Vec::new();
    match cli.backend {
        Backend::Nft => {
            let nft = cmd::resolve(("--nft-cmd", &cli.nft_cmd), &["nft"])?;
            say("# clear")?;
            if cli.execute {
                signals::install()?;
                let (_, what) = clear_nft(&nft, drill, true)?;
                removed.extend(what);
            } else {
                for t in nft_tables(&nft, drill)? {
                    say(&nft::delete_table(&nft, &t).display())?;
                }
            }
        }
        Backend::Netfilter if scenario == Scenario::Disconnect => {
            let fw = cmd::resolve(
                ("--firewall-cmd", &cli.firewall_cmd),
                &["iptables", "iptables-nft"],
            )?;
            say("# clear")?;
            if cli.execute {
                signals::install()?;
                let (_, what) = clear_chain(&fw, drill, true)?;
                removed.extend(what);
            } else {
                match netfilter::list_rules(&fw) {
                    Ok(l) => {
                        let found = netfilter::owned(&l, drill);
                        for c in netfilter::clear_rules(&fw, &found) {
                            say(&c.display())?;
                        }
                    }
                    Err(e) => {
                        cli::warn(&format!("{e}; showing the commands for a drill instead"));
                        if let Some(d) = drill {
                            for c in netfilter::disconnect_clear(&fw, d) {
                                say(&c.display())?;
                            }
                        }
                    }
                }
            }
        }
        Backend::Netfilter => {
            let tc = cmd::resolve(("--tc-cmd", &cli.tc_cmd), &["tc"])?;
            say("# clear")?;
            if cli.execute {
                signals::install()?;
                let (_, what) = clear_netem(&tc, &cli.iface, true)?;
                removed.extend(what);
            } else if netfilter::netem_present(&tc, &cli.iface).unwrap_or(true) {
                say(&netfilter::netem_clear(&tc, &cli.iface).display())?;
            }
        }
        Backend::Proxy => clear_proxy(cli, drill, &mut removed)?,
    }
    if cli.execute {
        if removed.is_empty() {
            cli::info(&match drill {
                Some(d) => format!("nothing of drill {d} to remove"),
                None => "nothing of ours to remove".to_string(),
            });
        }
        for r in &removed {
            cli::info(r);
        }
    }
    if !cli.event_log_file.is_empty() {
        let shape_params = FaultParameters {
            duration_sec: cli.duration_sec.to_string(),
            target_ip: cli.target_ip.clone(),
            ports: cli.ports.clone(),
            disconnect_mode: match cli.disconnect_mode {
                DisconnectMode::Drop => "drop".into(),
                DisconnectMode::Reset => "reset".into(),
            },
            iface: cli.iface.clone(),
            delay_ms: cli.delay_ms.to_string(),
            jitter_ms: cli.jitter_ms.to_string(),
            loss_percent: fault_event::python_float_text(cli.loss_percent),
            extra: Vec::new(),
        };
        let mut ev = FaultEvent::new(
            now_ns(),
            Mode::Clear,
            scenario,
            Phase::Clear,
            cli.execute,
            shape_params,
        );
        ev.drill_id = cli.drill_id.clone();
        ev.backend = Some(cli.backend.name().to_string());
        fault_event::append_fault_event(Path::new(&cli.event_log_file), &ev)?;
    }
    Ok(Exit::Pass)
}

// ---------------------------------------------------------------------------------------------
// The dead-man reaper (netfilter backend)
// ---------------------------------------------------------------------------------------------

fn spawn_reaper(ctx: &Ctx<'_>, prepared: &Prepared) -> Result<Child> {
    let exe = std::env::current_exe()
        .map_err(|e| EvidenceError::failed(format!("cannot find my own binary: {e}")))?;
    let expires = now_ns().saturating_add(
        i64::try_from((Duration::from_secs(ctx.shape.duration) + REAPER_MARGIN).as_nanos())
            .unwrap_or(i64::MAX),
    );
    let mut c = Command::new(exe);
    c.arg("reap")
        .args(["--drill-id", &ctx.drill_id])
        .args(["--scenario", ctx.shape.scenario.as_str()])
        .args(["--iface", &ctx.cli.iface])
        .args(["--parent-pid", &std::process::id().to_string()])
        .args(["--expires-at-ns", &expires.to_string()]);
    match prepared {
        Prepared::Disconnect { fw, .. } => {
            c.arg("--firewall-cmd").arg(fw);
        }
        Prepared::Netem { tc, .. } => {
            c.arg("--tc-cmd").arg(tc);
        }
        Prepared::Proxy { .. } | Prepared::Nft { .. } => {}
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        // Its own process group: a terminal's Ctrl-C does not reach it.
        .process_group(0)
        .spawn()
        .map_err(|e| EvidenceError::failed(format!("cannot start the dead-man reaper: {e}")))
}

fn stop_reaper(reaper: Option<&mut Child>) {
    // The reaper has its own process group: SIGTERM (it double-checks and exits), SIGKILL late.
    if let Some(child) = reaper {
        let _ = evidence_core::process::stop_child(child, Duration::from_secs(10));
    }
}

/// True while `pid` is a live (not zombie) process.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

fn reap(cli: &Cli) -> Result<Exit> {
    let (Some(drill), Some(parent), Some(expires)) =
        (cli.drill_id.as_deref(), cli.parent_pid, cli.expires_at_ns)
    else {
        return Err(EvidenceError::usage(
            "reap needs --drill-id, --parent-pid and --expires-at-ns",
        ));
    };
    signals::install()?;
    let netem = Scenario::from(cli.scenario) != Scenario::Disconnect;
    let tool = if netem {
        cmd::resolve(("--tc-cmd", &cli.tc_cmd), &["tc"])?
    } else {
        cmd::resolve(
            ("--firewall-cmd", &cli.firewall_cmd),
            &["iptables", "iptables-nft"],
        )?
    };
    let why = loop {
        if signals::interrupted() {
            break None;
        }
        if !alive(parent) {
            break Some(format!("fault-inject (pid {parent}) died"));
        }
        if now_ns() >= expires {
            break Some("the drill overran its expiry".to_string());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let pass = || {
        if netem {
            clear_netem(&tool, &cli.iface, false).map(|(_, w)| w)
        } else {
            clear_chain(&tool, Some(drill), false).map(|(_, w)| w)
        }
    };
    let first = pass();
    if why.is_some() {
        // A command the dead parent had in flight may still land: check once more.
        std::thread::sleep(Duration::from_secs(1));
    }
    let second = pass();
    let removed: Vec<String> = [&first, &second]
        .into_iter()
        .filter_map(|r| r.as_ref().ok().cloned().flatten())
        .collect();
    if let Some(w) = &why {
        cli::warn(&format!(
            "reaper of drill {drill}: {w}; {}",
            if removed.is_empty() {
                "nothing of it was left".to_string()
            } else {
                removed.join("; ")
            }
        ));
    } else if !removed.is_empty() {
        cli::warn(&format!("reaper of drill {drill}: {}", removed.join("; ")));
    }
    if let Err(e) = second {
        cli::warn(&format!("reaper of drill {drill}: {e}"));
        return Ok(Exit::BadInput);
    }
    Ok(Exit::Pass)
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
    fn allowlist() {
        let a = Allowlist(vec![
            ("127.0.0.1".parse().unwrap(), Some(41201)),
            ("10.0.0.1".parse().unwrap(), None),
        ]);
        assert!(a.allows("127.0.0.1:41201".parse().unwrap()));
        assert!(!a.allows("127.0.0.1:41202".parse().unwrap()));
        assert!(a.allows("10.0.0.1:9".parse().unwrap()));
        assert!(a.check(&["10.0.0.2:1".parse().unwrap()]).is_err());
        assert!(Allowlist::default().check(&[]).is_err());
    }

    #[test]
    fn drill_ids() {
        assert!(parse_drill_id("fi-20261127T120000Z-00ff").is_ok());
        assert!(parse_drill_id("a b").is_err());
        assert!(parse_drill_id("").is_err());
        assert!(parse_drill_id(&"x".repeat(65)).is_err());
        assert!(parse_drill_id(&generated_drill_id()).is_ok());
    }

    #[test]
    fn alive_sees_self() {
        assert!(alive(i32::try_from(std::process::id()).unwrap()));
        assert!(!alive(i32::MAX));
    }
}
