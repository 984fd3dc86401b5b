//! `failover-orchestrator`: fails a Redis (Sentinel) and PostgreSQL primary over to its standby on
//! another host while clients write, and writes `failover_result.env` with what it measured.
//!
//! Steps, in the original's fixed order:
//! - `precheck`: the roles as the servers say them (the sentinels agree on the Redis primary, the
//!   replica's link is up, the PostgreSQL standby streams), fencing and ack mode configured, the
//!   writers acknowledged;
//! - `backup_sync_check`: the standby's lag, counted by sequence numbers, under `--max-lag-events`;
//! - `demote_primary`: the fault (planned: none; unplanned: SIGKILL of every process on the
//!   primary's host; partition: DROP rules inside its namespace) and fencing, checked: Redis
//!   `CLIENT PAUSE WRITE` (planned) or `min-replicas-to-write` (the old primary refuses writes);
//!   PostgreSQL stopped (fast shutdown when planned, immediate once it is declared down);
//! - `promote_standby`: Sentinel-coordinated (`SENTINEL FAILOVER` after fencing when planned, the
//!   sentinels' own failover otherwise) and `pg_promote()`; a failed promotion after the demotion is
//!   compensated (the old primary is unfenced and must serve writes again);
//! - `verify`: writes land on the new primaries, the old ones refuse them, the sentinels agree, and
//!   no acknowledged write is missing (split-brain writes counted on their own).
//!
//! `FAILOVER_DURATION_SECONDS` is the client-visible write outage; `DATA_SYNC_LAG_EVENTS` the
//! acknowledged sequence numbers missing afterwards. With `*_cmd` keys in the env-config the steps
//! run those commands instead (timed; the duration is then the steps' sum and the lag unmeasured).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{CommandFactory as _, Parser, ValueEnum};
use evidence_core::cli::{EXIT_STATUS_HELP, info, stdout_write, warn};
use evidence_core::drill::{Drill as DrillRun, DrillArgs, DrillDefaults};
use evidence_core::lock::LockFile;
use evidence_core::process::{RunOptions, run_shell, signal_group};
use evidence_core::provenance::Provenance;
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Exit, Result, signals};
use failover_core::envconfig::FailoverConfig;
use failover_core::evidence::{
    DURATION_MEASURED, FailoverEvidence, LAG_MEASURED, STEP_NAMES, StepRecord, StepStatus,
    StoreFigures,
};
use failover_core::inventory::{Backend, Inventory};
use failover_core::load::{self, AckMode, Store, Target, Writer, WriterSpec, lock};
use failover_core::netns;
use failover_core::topology::{Topology, redis_at};
use nix::sys::signal::Signal;
use stack_core::launch;
use stack_core::pg::PgClient;
use stack_core::redis::info_get;
use stack_core::stack::{MASTER_NAME, ServiceKind};
use trading_calendar::guard::{GuardArgs, SessionGuard};

/// Fail a primary over to its standby while clients write; measure the outage and the loss.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  multihost --action up --execute\n  failover-orchestrator --env-config configs/deploy/environments/prodlike_multi_host.yaml --mode partition --execute\n  failover-verify --evidence-file docs/results/failover_result.env --max-failover-seconds 300 --max-data-lag-events 0\n\nWithout --execute nothing runs: the steps are recorded as simulated_ok (FAILOVER_DRY_RUN=1), which\nfailover-verify rejects. The netns backend needs root.\n\n{EXIT_STATUS_HELP}\n  (1: a step failed, the promotion was compensated, or acknowledged writes were lost; evidence is written)"
    )
)]
pub struct Cli {
    /// Failover env-config YAML (the original's keys; `inventory:`; `*_cmd` keys run your own steps).
    #[arg(long, value_name = "PATH")]
    pub env_config: PathBuf,
    /// The shared drill flags: --execute/--dry-run, --operator, --drill-id, --results-dir,
    /// --output-file (default docs/results/failover_result.env), --lock-file (default
    /// runtime/locks/multihost.lock, shared with multihost: one run at a time).
    #[command(flatten)]
    pub drill: DrillArgs,
    /// planned (switchover), unplanned (SIGKILL of every process on the primary's host), partition
    /// (the primary's host cut off by firewall rules inside its namespace, healed afterwards).
    #[arg(long, value_enum, default_value_t = Mode::Planned)]
    pub mode: Mode,
    /// What counts as acknowledged: local (the primary said OK) or replicated (Redis WAIT 1,
    /// PostgreSQL synchronous standby).
    #[arg(long, value_enum, default_value_t = AckMode::Replicated)]
    pub ack_mode: AckMode,
    /// Run without fencing (to show what fencing prevents).
    #[arg(long)]
    pub no_fencing: bool,
    /// Drill the compensation path: stop the standby's services after the demotion, so the
    /// promotion fails and the old primary must be restored.
    #[arg(long)]
    pub inject_promote_failure: bool,
    /// Inventory (default: the env-config's `inventory`, else configs/multihost/inventory.yaml).
    #[arg(long, value_name = "PATH")]
    pub inventory: Option<PathBuf>,
    /// Backend (default: the inventory's).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// backup_sync_check refuses to go on when the standby lags by more events than this.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_lag_events: usize,
    /// Writers run this long before the fault.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    pub warmup_seconds: f64,
    /// PostgreSQL primary declared down after failing this long (unplanned, partition).
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub pg_down_after_ms: u64,
    /// Deadline of each step, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub step_timeout: u64,
    /// The session guard (applies when a host is not on this machine: the ssh backend).
    #[command(flatten)]
    pub guard: GuardArgs,
}

/// The failover scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// A switchover: fence, catch up, promote.
    Planned,
    /// The primary's host crashes (SIGKILL of every process on it).
    Unplanned,
    /// The primary's host is cut off the network.
    Partition,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Planned => "planned",
            Mode::Unplanned => "unplanned",
            Mode::Partition => "partition",
        }
    }
}

const DEFAULTS: DrillDefaults = DrillDefaults {
    tool: "failover-orchestrator",
    id_prefix: "failover",
    output_name: "failover_result.env",
    lock_name: "multihost.lock",
};

const CLIENT_TIMEOUT: Duration = Duration::from_millis(200);
/// Control-plane calls (not the measured clients): generous, a loaded host answers late.
const CTL_TIMEOUT: Duration = Duration::from_secs(2);

/// Run the failover.
pub fn run(cli: Cli) -> Result<Exit> {
    if !(cli.warmup_seconds.is_finite() && (0.0..=600.0).contains(&cli.warmup_seconds)) {
        return Err(EvidenceError::usage(
            "--warmup-seconds must be within 0..=600",
        ));
    }
    let cfg = FailoverConfig::load(&cli.env_config)?;
    if let Some(l) = &cfg.declared_lag {
        warn(&format!(
            "{}: data_sync_lag_events: {l} is ignored; the lag is measured",
            cfg.path.display()
        ));
    }
    let run = cli.drill.resolve(&DEFAULTS)?;
    let dry = run.dry_run();
    let mut prov = Provenance::start(
        "failover-orchestrator",
        env!("CARGO_PKG_VERSION"),
        Some(run.operator.as_str()),
        dry,
    );
    prov.config_sha256 = cfg.sha256.clone();
    let mut ev = FailoverEvidence {
        env: cfg.environment.clone(),
        dry_run: dry,
        success: false,
        failed_step: String::new(),
        duration_seconds: None,
        duration_source: "dry_run".into(),
        lag_events: None,
        lag_source: "dry_run".into(),
        steps: Vec::new(),
        mode: if cfg.has_commands() {
            "commands"
        } else {
            cli.mode.as_str()
        }
        .into(),
        fencing: !cli.no_fencing,
        ack_mode: cli.ack_mode.as_str().into(),
        compensated: false,
        result: String::new(),
        failure_reason: String::new(),
        redis: None,
        pg: None,
        pg_promotion_seconds: None,
        session_guard: String::new(),
        provenance: prov,
    };
    let exit = if dry {
        for (i, name) in STEP_NAMES.iter().enumerate() {
            let command = cfg.commands[i]
                .clone()
                .unwrap_or_else(|| format!("builtin:{name} ({} mode)", cli.mode.as_str()));
            info(&format!("[dry-run] {command}"));
            ev.steps.push(StepRecord {
                name: (*name).into(),
                status: StepStatus::SimulatedOk,
                duration_ms: 0,
                command,
                started_ns: now_ns(),
                detail: "dry run: not executed".into(),
            });
        }
        ev.success = true;
        ev.result = "dry_run".into();
        Exit::Pass
    } else if cfg.has_commands() {
        signals::install()?;
        let _lock = LockFile::acquire(&run.lock_file, "a multihost or failover run")?;
        run_commands(&cfg, &cli, &mut ev)?
    } else {
        signals::install()?;
        let inv_path = cli
            .inventory
            .clone()
            .or_else(|| cfg.inventory.clone())
            .unwrap_or_else(|| PathBuf::from("configs/multihost/inventory.yaml"));
        let inv = Inventory::load(&inv_path)?;
        let backend = cli.backend.unwrap_or(inv.backend);
        if backend == Backend::Compose {
            return Err(EvidenceError::usage(
                "failover-orchestrator drives netns or ssh hosts; the compose backend is not built yet",
            ));
        }
        if backend == Backend::Netns {
            netns::require_root("failover-orchestrator on the netns backend")?;
        }
        // Namespaces made by this tool on this machine are local; real hosts are not.
        let targets: Vec<String> = if backend == Backend::Netns {
            Vec::new()
        } else {
            inv.hosts.iter().map(|h| h.address.to_string()).collect()
        };
        let guard = SessionGuard::try_from(&cli.guard).map_err(EvidenceError::from)?;
        let outcome = guard
            .check(guard.now(), &targets)
            .map_err(EvidenceError::from)?;
        info(&outcome.reason);
        ev.session_guard = outcome.status.as_str().into();
        let _lock = LockFile::acquire(&run.lock_file, "a multihost or failover run")?;
        let topo = Topology::new(inv, backend);
        let mut d = Drill::new(&cli, topo, &run)?;
        d.run(&mut ev)?
    };
    ev.provenance.finish();
    run.output.write_all(ev.render().as_bytes())?;
    if let Some(p) = run.output.path() {
        stdout_write(&format!("{}\n", p.display()))?;
    }
    info(&format!(
        "{} {}: {} (outage {} s, lost {}, split-brain {}{})",
        ev.env,
        ev.mode,
        ev.result,
        ev.duration_seconds
            .map_or_else(|| "unmeasured".into(), |d| format!("{d:.3}")),
        ev.lag_events
            .map_or_else(|| "unmeasured".into(), |n| n.to_string()),
        ev.split_brain(),
        if ev.failed_step.is_empty() {
            String::new()
        } else {
            format!(", failed step {}", ev.failed_step)
        }
    ));
    Ok(exit)
}

fn run_commands(cfg: &FailoverConfig, cli: &Cli, ev: &mut FailoverEvidence) -> Result<Exit> {
    for (i, c) in cfg.commands.iter().enumerate() {
        if c.is_none() {
            return Err(EvidenceError::parse(
                cfg.path.display().to_string(),
                0,
                FailoverConfig::field(i),
                "a command for every step once any *_cmd key is set (--execute refuses to record a step that runs nothing)",
                "no command",
            ));
        }
    }
    // The user's commands reach hosts this tool does not know: the guard applies.
    let target = if cfg.deploy_target.is_empty() {
        "unknown"
    } else {
        cfg.deploy_target.as_str()
    };
    let guard = SessionGuard::try_from(&cli.guard).map_err(EvidenceError::from)?;
    let outcome = guard
        .check(guard.now(), &[target])
        .map_err(EvidenceError::from)?;
    info(&outcome.reason);
    ev.session_guard = outcome.status.as_str().into();
    let mut total = Duration::ZERO;
    for (i, name) in STEP_NAMES.iter().enumerate() {
        let command = cfg.commands[i].clone().unwrap_or_default();
        let opts = RunOptions {
            timeout: Duration::from_secs(cli.step_timeout.max(1) * 10),
            env: vec![
                ("FAILOVER_ENV".into(), cfg.environment.clone()),
                ("FAILOVER_STEP".into(), (*name).into()),
                ("FAILOVER_MODE".into(), cli.mode.as_str().into()),
            ],
            ..RunOptions::default()
        };
        let t = Instant::now();
        let o = run_shell(&command, &opts)?;
        let d = t.elapsed();
        total += d;
        let ok = o.success();
        ev.steps.push(StepRecord {
            name: (*name).into(),
            status: if ok {
                StepStatus::Ok
            } else {
                StepStatus::Failed
            },
            duration_ms: d.as_millis(),
            command,
            started_ns: o.started_ns,
            detail: o.describe(),
        });
        info(&format!("step {name}: {}", o.describe()));
        if o.interrupted {
            ev.failed_step = (*name).into();
            ev.result = "interrupted".into();
            ev.failure_reason = "interrupted".into();
            return Ok(Exit::Interrupted);
        }
        if !ok {
            ev.failed_step = (*name).into();
            ev.failure_reason = format!("step {name} failed: {}", o.describe());
            break;
        }
    }
    ev.duration_seconds = Some((total.as_secs_f64() * 1000.0).round() / 1000.0);
    ev.duration_source = "step_sum".into();
    ev.lag_source = "unmeasured".into();
    ev.success = ev.failed_step.is_empty();
    ev.result = if ev.success { "success" } else { "failed" }.into();
    if ev.success {
        warn(
            "the *_cmd steps ran, but without the built-in drill nothing measured the client-visible outage or the lost writes; failover-verify will say so",
        );
    }
    Ok(Exit::pass_if(ev.success))
}

/// Which side of each store is which, as the servers said at the start.
#[derive(Debug, Clone, Copy)]
struct Sides {
    redis_old: ServiceKind,
    redis_new: ServiceKind,
    pg_old: ServiceKind,
    pg_new: ServiceKind,
}

/// A built-in step: its detail, or why it failed.
type StepFn<'a> = fn(&mut Drill<'a>) -> std::result::Result<String, String>;

struct Drill<'a> {
    cli: &'a Cli,
    topo: Topology,
    pw: String,
    sides: Option<Sides>,
    drill_id: String,
    old_host: String,
    writers: Vec<Writer>,
    t0: Option<Instant>,
    partitioned: bool,
    pg_decision: Option<Instant>,
    redis_promoted: bool,
    pg_promoted: bool,
    lag_before: Option<(u64, u64)>,
    compensation: Vec<String>,
    pg_promotion_seconds: Option<f64>,
    /// A connection to the PostgreSQL standby opened before the fault (authentication is not
    /// part of the promotion time).
    pg_ctl: std::sync::Mutex<Option<PgClient>>,
    /// The partition's Redis fence check (ms after the cut until the old primary refused).
    redis_fence:
        std::sync::Mutex<Option<std::thread::JoinHandle<std::result::Result<u128, String>>>>,
}

impl<'a> Drill<'a> {
    fn new(cli: &'a Cli, topo: Topology, run: &DrillRun) -> Result<Self> {
        let pw = topo.password()?;
        Ok(Drill {
            cli,
            topo,
            pw,
            sides: None,
            drill_id: run.id.as_str().to_string(),
            old_host: String::new(),
            writers: Vec::new(),
            t0: None,
            partitioned: false,
            pg_decision: None,
            redis_promoted: false,
            pg_promoted: false,
            lag_before: None,
            compensation: Vec::new(),
            pg_promotion_seconds: None,
            pg_ctl: std::sync::Mutex::new(None),
            redis_fence: std::sync::Mutex::new(None),
        })
    }

    fn sides(&self) -> Sides {
        self.sides.unwrap_or(Sides {
            redis_old: ServiceKind::RedisPrimary,
            redis_new: ServiceKind::RedisReplica,
            pg_old: ServiceKind::TimescalePrimary,
            pg_new: ServiceKind::TimescaleReplica,
        })
    }

    fn addr(&self, k: ServiceKind) -> String {
        self.topo.stack.addr(k)
    }

    fn sentinels(&self) -> Vec<String> {
        (1..=3)
            .rev()
            .map(|n| self.addr(ServiceKind::Sentinel(n)))
            .collect()
    }

    fn deadline(&self) -> Instant {
        Instant::now() + Duration::from_secs(self.cli.step_timeout)
    }

    fn run(&mut self, ev: &mut FailoverEvidence) -> Result<Exit> {
        self.topo.enter_client()?;
        let steps: [StepFn<'a>; 5] = [
            Self::precheck,
            Self::backup_sync_check,
            Self::demote,
            Self::promote,
            Self::verify_live,
        ];
        let mut exit = Exit::Pass;
        for (i, f) in steps.iter().enumerate() {
            let name = STEP_NAMES[i];
            if signals::interrupted() {
                ev.failed_step = name.into();
                ev.result = "interrupted".into();
                exit = Exit::Interrupted;
                break;
            }
            info(&format!("step {name}: running"));
            let started_ns = now_ns();
            let t = Instant::now();
            let r = f(self);
            let (status, detail) = match r {
                Ok(d) => (StepStatus::Ok, d),
                Err(e) => (StepStatus::Failed, e),
            };
            info(&format!(
                "step {name}: {} ({} ms): {detail}",
                status.as_str(),
                t.elapsed().as_millis()
            ));
            ev.steps.push(StepRecord {
                name: name.into(),
                status,
                duration_ms: t.elapsed().as_millis(),
                command: format!(
                    "builtin:{name} ({} mode{})",
                    self.cli.mode.as_str(),
                    if self.cli.no_fencing {
                        ", no fencing"
                    } else {
                        ""
                    }
                ),
                started_ns,
                detail: detail.clone(),
            });
            if status == StepStatus::Failed {
                ev.failed_step = name.into();
                ev.failure_reason = format!("step {name} failed: {detail}");
                // After the fault or a fence, the old primaries must serve again: a failed
                // promotion, or a demotion that stopped half way (paused, stopped, cut off).
                // (Planned only: after a crash or a cut, Sentinel acts by itself and a restarted old
                // primary would be a second master.)
                if name == "promote_standby"
                    || (name == "demote_primary"
                        && self.t0.is_some()
                        && self.cli.mode == Mode::Planned)
                {
                    match self.compensate() {
                        Ok(d) => {
                            ev.compensated = true;
                            ev.failure_reason.push_str(&format!("; compensated: {d}"));
                        }
                        Err(e) => ev
                            .failure_reason
                            .push_str(&format!("; compensation FAILED: {e}")),
                    }
                }
                exit = Exit::Breach;
                break;
            }
        }
        // Always: heal a partition, stop the writers, count.
        if self.partitioned {
            let host = self.old_host.clone();
            let _ = netns::heal(&host, &self.drill_id);
        }
        self.finish(ev);
        if exit == Exit::Pass {
            // The loss check belongs to verify.
            let lost = ev.lag_events.unwrap_or(0);
            let split = ev.split_brain();
            if lost > 0 || split > 0 || ev.duration_seconds.is_none() {
                let why = format!(
                    "{lost} acknowledged ({}) writes missing on the new primaries, {split} split-brain writes{}",
                    self.cli.ack_mode.as_str(),
                    if ev.duration_seconds.is_none() {
                        ", outage not measured"
                    } else {
                        ""
                    }
                );
                if let Some(v) = ev.steps.last_mut() {
                    v.status = StepStatus::Failed;
                    v.detail = format!("{}; but {why}", v.detail);
                }
                ev.failed_step = "verify".into();
                ev.failure_reason = format!("step verify failed: {why}");
                exit = Exit::Breach;
            }
        }
        ev.success = exit == Exit::Pass;
        ev.result = match exit {
            Exit::Pass => "success",
            Exit::Interrupted => "interrupted",
            _ if ev.compensated => "compensated",
            _ => "failed",
        }
        .into();
        Ok(exit)
    }

    // ---- precheck -------------------------------------------------------------------------

    fn precheck(&mut self) -> std::result::Result<String, String> {
        // Redis: the sentinels agree, the named server says master, the other is a replica with
        // its link up.
        let mut named = Vec::new();
        for s in self.sentinels() {
            let mut c = redis_at(&s, &self.pw, CTL_TIMEOUT)?;
            let m = c
                .sentinel_master_addr(MASTER_NAME)
                .map_err(|e| format!("{s}: {e}"))?
                .map(|(h, p)| format!("{h}:{p}"))
                .ok_or_else(|| format!("sentinel {s} names no master"))?;
            named.push(m);
        }
        named.dedup();
        if named.len() != 1 {
            return Err(format!(
                "the sentinels disagree on the Redis primary: {named:?}"
            ));
        }
        let master = named.remove(0);
        let (r_old, r_new) = if master == self.addr(ServiceKind::RedisPrimary) {
            (ServiceKind::RedisPrimary, ServiceKind::RedisReplica)
        } else if master == self.addr(ServiceKind::RedisReplica) {
            (ServiceKind::RedisReplica, ServiceKind::RedisPrimary)
        } else {
            return Err(format!(
                "the sentinels name {master}, which is neither data node"
            ));
        };
        let mut c = redis_at(&self.addr(r_old), &self.pw, CTL_TIMEOUT)?;
        let (role, _) = c.role().map_err(|e| e.to_string())?;
        if role != "master" {
            return Err(format!("{} says {role}, not master", self.addr(r_old)));
        }
        let pinfo = c.info("replication").map_err(|e| e.to_string())?;
        let mut rc = redis_at(&self.addr(r_new), &self.pw, CTL_TIMEOUT)?;
        let (rrole, _) = rc.role().map_err(|e| e.to_string())?;
        let rinfo = rc.info("replication").map_err(|e| e.to_string())?;
        let link = info_get(&rinfo, "master_link_status")
            .unwrap_or("?")
            .to_string();
        if rrole != "slave" || link != "up" {
            return Err(format!(
                "{} says {rrole} with master_link_status {link}",
                self.addr(r_new)
            ));
        }
        let off = |i: &[(String, String)], k: &str| {
            info_get(i, k)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        let redis_lag_b =
            (off(&pinfo, "master_repl_offset") - off(&rinfo, "slave_repl_offset")).max(0);
        // Fencing and ack mode on the Redis primary: min-replicas-to-write fences an isolated
        // primary; the replica (the next primary) must not have it (one replica only).
        let minrep = if self.cli.no_fencing { "0" } else { "1" };
        c.config_set("min-replicas-to-write", minrep)
            .map_err(|e| e.to_string())?;
        c.config_set("min-replicas-max-lag", "1")
            .map_err(|e| e.to_string())?;
        rc.config_set("min-replicas-to-write", "0")
            .map_err(|e| e.to_string())?;
        // PostgreSQL: one primary, one streaming standby.
        let mut pg_old = None;
        for k in [ServiceKind::TimescalePrimary, ServiceKind::TimescaleReplica] {
            let mut pc = PgClient::connect(&self.topo.pg_config(k, &self.pw, CTL_TIMEOUT))
                .map_err(|e| format!("{}: {e}", self.addr(k)))?;
            let r = pc
                .query_value("SELECT pg_is_in_recovery()")
                .map_err(|e| e.to_string())?;
            if r.as_deref() == Some("f") {
                if pg_old.is_some() {
                    return Err("both PostgreSQL servers say primary".into());
                }
                pg_old = Some(k);
            }
        }
        let p_old = pg_old.ok_or("no PostgreSQL server says primary")?;
        let p_new = if p_old == ServiceKind::TimescalePrimary {
            ServiceKind::TimescaleReplica
        } else {
            ServiceKind::TimescalePrimary
        };
        let mut pc = PgClient::connect(&self.topo.pg_config(p_old, &self.pw, CTL_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let sync = if self.cli.ack_mode == AckMode::Replicated {
            "*"
        } else {
            ""
        };
        pc.simple_query(&format!(
            "ALTER SYSTEM SET synchronous_standby_names = '{sync}'"
        ))
        .and_then(|_| pc.simple_query("SELECT pg_reload_conf()"))
        .map_err(|e| e.to_string())?;
        let rows = pc
            .simple_query("SELECT state, sync_state, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint FROM pg_stat_replication")
            .map_err(|e| e.to_string())?;
        let Some(row) = rows.first() else {
            return Err(format!(
                "{}: no standby in pg_stat_replication",
                self.addr(p_old)
            ));
        };
        let cell = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
        if cell(0) != "streaming" {
            return Err(format!(
                "the PostgreSQL standby is {}, not streaming",
                cell(0)
            ));
        }
        let old_r_host = self.topo.host_of(r_old);
        let old_p_host = self.topo.host_of(p_old);
        if self.cli.mode != Mode::Planned && old_r_host != old_p_host {
            return Err(format!(
                "the Redis primary is on {old_r_host} but the PostgreSQL primary on {old_p_host}: a host fault needs both on one host"
            ));
        }
        self.old_host = old_r_host.clone();
        self.sides = Some(Sides {
            redis_old: r_old,
            redis_new: r_new,
            pg_old: p_old,
            pg_new: p_new,
        });
        // Writers: W1 follows the primary like a client would; in a partition, W2 is an
        // application on the old primary's side, pinned to it.
        let base = WriterSpec {
            name: "w1".into(),
            drill: self.drill_id.clone(),
            store: Store::Redis,
            target: Target::Sentinels(self.sentinels()),
            password: self.pw.clone(),
            ack_mode: self.cli.ack_mode,
            timeout: CLIENT_TIMEOUT,
            pace: Duration::ZERO,
            netns: None,
        };
        self.writers.push(Writer::start(base.clone()));
        self.writers.push(Writer::start(WriterSpec {
            store: Store::Pg,
            target: Target::PgCandidates(
                [p_old, p_new]
                    .iter()
                    .map(|k| {
                        (
                            self.topo.stack.placement(*k).listen,
                            self.topo.stack.port(*k),
                        )
                    })
                    .collect(),
            ),
            ..base.clone()
        }));
        if self.cli.mode == Mode::Partition && self.topo.backend == Backend::Netns {
            self.writers.push(Writer::start(WriterSpec {
                name: "w2".into(),
                target: Target::Pinned(self.addr(r_old)),
                pace: Duration::from_millis(1),
                netns: Some(old_r_host.clone()),
                ..base.clone()
            }));
            self.writers.push(Writer::start(WriterSpec {
                name: "w2".into(),
                store: Store::Pg,
                target: Target::Pinned(self.addr(p_old)),
                pace: Duration::from_millis(1),
                netns: Some(old_r_host.clone()),
                ..base
            }));
        }
        let warm = Instant::now() + Duration::from_secs_f64(self.cli.warmup_seconds);
        let end = self.deadline();
        loop {
            let ready = self.writers.iter().all(|w| w.acked() > 0);
            if ready && Instant::now() >= warm {
                break;
            }
            if Instant::now() >= end {
                let why: Vec<String> = self
                    .writers
                    .iter()
                    .map(|w| {
                        format!(
                            "{}/{:?}: {} acked, last error {:?}",
                            w.spec.name,
                            w.spec.store,
                            w.acked(),
                            lock(&w.log).last_error
                        )
                    })
                    .collect();
                return Err(format!(
                    "the writers did not get acknowledgements: {}",
                    why.join("; ")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let acked: Vec<String> = self
            .writers
            .iter()
            .map(|w| format!("{}/{:?} {}", w.spec.name, w.spec.store, w.acked()))
            .collect();
        Ok(format!(
            "Redis primary {} (sentinels agree), replica {} link up, offset lag {redis_lag_b} B; PostgreSQL primary {}, standby {} {} ({} B behind); fencing {}; ack mode {}; writers acked {}",
            self.addr(r_old),
            self.addr(r_new),
            self.addr(p_old),
            self.addr(p_new),
            cell(0),
            cell(2),
            if self.cli.no_fencing {
                "off"
            } else {
                "min-replicas-to-write 1"
            },
            self.cli.ack_mode.as_str(),
            acked.join(", ")
        ))
    }

    // ---- backup_sync_check ----------------------------------------------------------------

    fn backup_sync_check(&mut self) -> std::result::Result<String, String> {
        let s = self.sides();
        let n = 2000;
        let (mut rl, mut pl) = ((0, 0), (0, 0));
        for w in self.writers.iter().filter(|w| w.spec.name == "w1") {
            match w.spec.store {
                Store::Redis => {
                    rl = load::redis_lag(
                        &w.log,
                        self.cli.ack_mode,
                        &w.spec.tag(),
                        &self.addr(s.redis_new),
                        &self.pw,
                        n,
                    )?;
                }
                Store::Pg => {
                    pl = load::pg_lag(
                        &w.log,
                        self.cli.ack_mode,
                        &w.spec.tag(),
                        &self.topo.pg_config(s.pg_new, &self.pw, CTL_TIMEOUT),
                        n,
                    )?;
                }
            }
        }
        self.lag_before = Some((rl.1 as u64, pl.1 as u64));
        let ctl = PgClient::connect(&self.topo.pg_config(s.pg_new, &self.pw, CTL_TIMEOUT))
            .map_err(|e| format!("{}: {e}", self.addr(s.pg_new)))?;
        *self
            .pg_ctl
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(ctl);
        let detail = format!(
            "standby lag by sequence: Redis {} of the last {} acknowledged events missing on {}, PostgreSQL {} of {} missing on {} (bound {})",
            rl.1,
            rl.0,
            self.addr(s.redis_new),
            pl.1,
            pl.0,
            self.addr(s.pg_new),
            self.cli.max_lag_events
        );
        if rl.1.max(pl.1) > self.cli.max_lag_events {
            return Err(detail);
        }
        Ok(detail)
    }

    // ---- demote_primary: the fault, and fencing (checked) ---------------------------------

    fn demote(&mut self) -> std::result::Result<String, String> {
        let s = self.sides();
        let fencing = !self.cli.no_fencing;
        let mut out = Vec::new();
        match self.cli.mode {
            Mode::Planned => {
                self.t0 = Some(Instant::now());
                if fencing {
                    // Redis fence and PostgreSQL fast shutdown at the same time: neither store's
                    // outage waits for the other's fence.
                    let this: &Self = self;
                    let (r, p) = std::thread::scope(|sc| {
                        let pg = sc.spawn(|| {
                            let t = Instant::now();
                            this.pg_stop(s.pg_old, Signal::SIGINT).map(|()| t.elapsed())
                        });
                        let r = this.fence_redis_planned(s);
                        (r, pg.join().unwrap_or_else(|_| Err("panicked".into())))
                    });
                    out.push(r?);
                    out.push(format!(
                        "PostgreSQL {} stopped (fast shutdown) in {} ms; it refuses connections",
                        self.addr(s.pg_old),
                        p?.as_millis()
                    ));
                } else {
                    out.push("no fencing: the old primaries keep accepting writes".into());
                }
            }
            Mode::Unplanned => {
                let host = self.old_host.clone();
                self.t0 = Some(Instant::now());
                let killed = match self.topo.backend {
                    Backend::Netns => netns::kill_all(&host).map_err(|e| e.to_string())?,
                    _ => {
                        let mut v = Vec::new();
                        for k in [s.redis_old, s.pg_old, sentinel_on(&self.topo, &host)] {
                            if let Ok(Some(p)) = launch::supervisor(&self.topo.stack, k).kill() {
                                v.push(p.cast_signed());
                            }
                        }
                        v
                    }
                };
                let left = if self.topo.backend == Backend::Netns {
                    netns::wait_empty(&host, Duration::from_secs(15)).map_err(|e| e.to_string())?
                } else {
                    Vec::new()
                };
                if !left.is_empty() {
                    return Err(format!("processes {left:?} survived SIGKILL on {host}"));
                }
                out.push(format!(
                    "host {host} crashed: SIGKILL to {} processes, none left (the old primaries cannot accept writes)",
                    killed.len()
                ));
                self.wait_pg_down(s.pg_old)?;
                out.push(format!(
                    "PostgreSQL {} declared down after {} ms of failures",
                    self.addr(s.pg_old),
                    self.cli.pg_down_after_ms
                ));
            }
            Mode::Partition => {
                if self.topo.backend != Backend::Netns {
                    return Err("the partition mode needs the netns backend".into());
                }
                let host = self.old_host.clone();
                self.t0 = Some(Instant::now());
                netns::partition(&host, &self.drill_id).map_err(|e| e.to_string())?;
                self.partitioned = true;
                out.push(format!(
                    "host {host} cut off (DROP in and out of eth0 inside its namespace)"
                ));
                let mut fence_probe = None;
                if fencing {
                    // Checked from the old primary's side: it refuses writes (NOREPLICAS).
                    let addr = self.addr(s.redis_old);
                    let pw = self.pw.clone();
                    let host2 = host.clone();
                    let end = self.deadline();
                    let t0 = self.t0.unwrap_or_else(Instant::now);
                    fence_probe = Some(std::thread::spawn(
                        move || -> std::result::Result<u128, String> {
                            netns::enter(&host2).map_err(|e| e.to_string())?;
                            loop {
                                if let Ok(mut c) = redis_at(&addr, &pw, CTL_TIMEOUT) {
                                    match c.set(b"fo:fence-probe", b"1") {
                                        Err(e) if e.to_string().contains("NOREPLICAS") => {
                                            return Ok(t0.elapsed().as_millis());
                                        }
                                        _ => {}
                                    }
                                }
                                if Instant::now() >= end {
                                    return Err(format!(
                                        "{addr} still accepts writes: min-replicas-to-write did not fence it"
                                    ));
                                }
                                std::thread::sleep(Duration::from_millis(10));
                            }
                        },
                    ));
                }
                self.wait_pg_down(s.pg_old)?;
                out.push(format!(
                    "PostgreSQL {} declared down after {} ms of failures",
                    self.addr(s.pg_old),
                    self.cli.pg_down_after_ms
                ));
                if fencing {
                    let t = Instant::now();
                    self.pg_stop(s.pg_old, Signal::SIGQUIT)?;
                    out.push(format!(
                        "PostgreSQL {} fenced out of band (immediate shutdown) in {} ms",
                        self.addr(s.pg_old),
                        t.elapsed().as_millis()
                    ));
                }
                if let Some(h) = fence_probe {
                    // Checked before the Redis promotion is accepted (promote_standby), so the
                    // PostgreSQL promotion does not wait for it.
                    out.push(format!(
                        "Redis {} fence (min-replicas-to-write) being checked from its own side",
                        self.addr(s.redis_old)
                    ));
                    *self
                        .redis_fence
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(h);
                }
            }
        }
        if self.cli.inject_promote_failure {
            for k in [s.redis_new, s.pg_new] {
                launch::supervisor(&self.topo.stack, k)
                    .stop(Duration::from_secs(5))
                    .map_err(|e| e.to_string())?;
            }
            out.push(format!(
                "--inject-promote-failure: standby services {} and {} stopped",
                s.redis_new.name(),
                s.pg_new.name()
            ));
        }
        Ok(out.join("; "))
    }

    /// Planned fence of the Redis primary: `CLIENT PAUSE WRITE`, wait until the replica has every
    /// byte, check that a write blocks.
    fn fence_redis_planned(&self, s: Sides) -> std::result::Result<String, String> {
        // Redis: pause writes, wait until the replica has every byte.
        let mut c = redis_at(&self.addr(s.redis_old), &self.pw, CTL_TIMEOUT)?;
        c.client_pause_write(15_000)
            .map_err(|e| format!("CLIENT PAUSE: {e}"))?;
        let want = c
            .info("replication")
            .ok()
            .and_then(|i| info_get(&i, "master_repl_offset").and_then(|v| v.parse::<i64>().ok()))
            .unwrap_or(0);
        let end = self.deadline();
        let t = Instant::now();
        loop {
            let have = redis_at(&self.addr(s.redis_new), &self.pw, CTL_TIMEOUT)
                .ok()
                .and_then(|mut r| r.info("replication").ok())
                .and_then(|i| info_get(&i, "slave_repl_offset").and_then(|v| v.parse::<i64>().ok()))
                .unwrap_or(-1);
            if have >= want {
                break;
            }
            if Instant::now() >= end {
                return Err(format!(
                    "the replica did not catch up: offset {have} < {want}"
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // Checked: a write on the old primary blocks (paused).
        let mut probe = redis_at(&self.addr(s.redis_old), &self.pw, CTL_TIMEOUT)?;
        probe
            .set_timeout(Duration::from_millis(30))
            .map_err(|e| e.to_string())?;
        let blocked = probe.set(b"fo:fence-probe", b"1").is_err();
        if !blocked {
            return Err("CLIENT PAUSE WRITE did not stop writes on the old Redis primary".into());
        }
        Ok(format!(
            "Redis {} paused for writes (a probe write blocked), replica caught up to offset {want} in {} ms",
            self.addr(s.redis_old),
            t.elapsed().as_millis()
        ))
    }

    /// Signal the PostgreSQL postmaster of `kind` (SIGINT: fast, SIGQUIT: immediate, to its whole
    /// group) and wait until it is gone and its port refuses.
    fn pg_stop(&self, kind: ServiceKind, sig: Signal) -> std::result::Result<(), String> {
        let sup = launch::supervisor(&self.topo.stack, kind);
        let Some(r) = sup.running().map_err(|e| e.to_string())? else {
            return Ok(());
        };
        if sig == Signal::SIGQUIT {
            signal_group(r.pid, sig);
        } else {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(r.pid.cast_signed()), sig);
        }
        let end = self.deadline();
        while sup.running().map_err(|e| e.to_string())?.is_some() {
            if Instant::now() >= end {
                return Err(format!("{} did not stop", kind.name()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Probe the PostgreSQL primary until it has failed for `--pg-down-after-ms`; that moment is
    /// the promotion decision.
    fn wait_pg_down(&mut self, kind: ServiceKind) -> std::result::Result<(), String> {
        let cfg = self.topo.pg_config(kind, &self.pw, CLIENT_TIMEOUT);
        let need = Duration::from_millis(self.cli.pg_down_after_ms);
        let end = self.deadline();
        let mut failing_since: Option<Instant> = None;
        loop {
            let ok = PgClient::connect(&cfg)
                .and_then(|mut c| c.query_value("SELECT 1"))
                .is_ok();
            if ok {
                failing_since = None;
            } else {
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= need {
                    self.pg_decision = Some(Instant::now());
                    return Ok(());
                }
            }
            if Instant::now() >= end {
                return Err(format!(
                    "{} still answers: not declared down",
                    self.addr(kind)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    // ---- promote_standby ------------------------------------------------------------------

    fn promote(&mut self) -> std::result::Result<String, String> {
        let s = self.sides();
        let end = self.deadline();
        let planned = self.cli.mode == Mode::Planned;
        let this: &Self = self;
        // PostgreSQL and Redis in parallel: neither store waits for the other.
        let (pg, redis) = std::thread::scope(|sc| {
            let pg = sc.spawn(|| this.promote_pg(s, end));
            let redis = sc.spawn(|| this.promote_redis(s, end, planned));
            (
                pg.join().unwrap_or_else(|_| Err("panicked".into())),
                redis.join().unwrap_or_else(|_| Err("panicked".into())),
            )
        });
        self.pg_promoted = pg.is_ok();
        self.redis_promoted = redis.is_ok();
        if let Ok((_, secs)) = &pg {
            self.pg_promotion_seconds = Some(*secs);
        }
        let text = |r: &std::result::Result<(String, f64), String>| match r {
            Ok((d, _)) => d.clone(),
            Err(e) => format!("FAILED: {e}"),
        };
        let detail = format!("PostgreSQL: {}; Redis: {}", text(&pg), text(&redis));
        if pg.is_ok() && redis.is_ok() {
            Ok(detail)
        } else {
            Err(detail)
        }
    }

    fn promote_pg(&self, s: Sides, end: Instant) -> std::result::Result<(String, f64), String> {
        // The decision: when the primary was declared down (unplanned, partition), else now.
        let decision = self.pg_decision.unwrap_or_else(Instant::now);
        let held = self
            .pg_ctl
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let mut c = match held {
            Some(c) => c,
            None => PgClient::connect(&self.topo.pg_config(s.pg_new, &self.pw, CTL_TIMEOUT))
                .map_err(|e| format!("{}: {e}", self.addr(s.pg_new)))?,
        };
        c.simple_query("SELECT pg_promote(false)")
            .map_err(|e| format!("{}: {e}", self.addr(s.pg_new)))?;
        loop {
            let r = c
                .query_value("SELECT pg_is_in_recovery()")
                .map_err(|e| e.to_string())?;
            if r.as_deref() == Some("f") {
                break;
            }
            if Instant::now() >= end {
                return Err(format!("{} still in recovery", self.addr(s.pg_new)));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let secs = decision.elapsed().as_secs_f64();
        // The promoted server must not wait for a synchronous standby it does not have.
        c.simple_query("ALTER SYSTEM SET synchronous_standby_names = ''")
            .and_then(|_| c.simple_query("SELECT pg_reload_conf()"))
            .map_err(|e| e.to_string())?;
        Ok((
            format!(
                "pg_promote() on {}: out of recovery {:.1} ms after the decision; synchronous_standby_names reset",
                self.addr(s.pg_new),
                secs * 1000.0
            ),
            secs,
        ))
    }

    fn promote_redis(
        &self,
        s: Sides,
        end: Instant,
        planned: bool,
    ) -> std::result::Result<(String, f64), String> {
        let new = self.addr(s.redis_new);
        let t = Instant::now();
        let fence = self
            .redis_fence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let fenced = match fence {
            Some(h) => {
                let ms = h.join().map_err(|_| "fence probe panicked".to_string())??;
                format!(
                    "old primary {} refused writes (NOREPLICAS) {ms} ms after the cut; ",
                    self.addr(s.redis_old)
                )
            }
            None => String::new(),
        };
        if planned {
            // SENTINEL FAILOVER after fencing: ask a sentinel that is not on the old host.
            let mut last = String::new();
            let mut asked = false;
            for sa in self.sentinels() {
                match redis_at(&sa, &self.pw, CTL_TIMEOUT)
                    .and_then(|mut c| c.sentinel_failover(MASTER_NAME).map_err(|e| e.to_string()))
                {
                    Ok(_) => {
                        asked = true;
                        break;
                    }
                    Err(e) => last = format!("{sa}: {e}"),
                }
            }
            if !asked {
                return Err(format!("SENTINEL FAILOVER refused: {last}"));
            }
        }
        // The new primary says master.
        loop {
            let role = redis_at(&new, &self.pw, CTL_TIMEOUT)
                .and_then(|mut c| c.role().map(|(r, _)| r).map_err(|e| e.to_string()));
            if role.as_deref() == Ok("master") {
                break;
            }
            if Instant::now() >= end {
                return Err(format!("{new} never said master ({role:?})"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let promoted_ms = t.elapsed().as_millis();
        self.wait_sentinels_name(&new, end)?;
        Ok((
            format!(
                "{fenced}{new} says master after {promoted_ms} ms; the reachable sentinels name it after {} ms",
                t.elapsed().as_millis()
            ),
            t.elapsed().as_secs_f64(),
        ))
    }

    /// Wait until every sentinel outside the old host (all of them, when planned) names `new`.
    fn wait_sentinels_name(&self, new: &str, end: Instant) -> std::result::Result<(), String> {
        let skip = if self.cli.mode == Mode::Planned {
            None
        } else {
            Some(self.old_host.clone())
        };
        let sentinels: Vec<String> = (1..=3)
            .map(ServiceKind::Sentinel)
            .filter(|k| skip.as_deref() != Some(self.topo.host_of(*k).as_str()))
            .map(|k| self.addr(k))
            .collect();
        loop {
            let named: Vec<Option<String>> = sentinels
                .iter()
                .map(|s| {
                    redis_at(s, &self.pw, CTL_TIMEOUT)
                        .ok()
                        .and_then(|mut c| c.sentinel_master_addr(MASTER_NAME).ok().flatten())
                        .map(|(h, p)| format!("{h}:{p}"))
                })
                .collect();
            if named.iter().all(|n| n.as_deref() == Some(new)) {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(format!("the sentinels name {named:?}, not {new}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    // ---- compensation ---------------------------------------------------------------------

    fn compensate(&mut self) -> std::result::Result<String, String> {
        let s = self.sides();
        let mut out = Vec::new();
        if self.partitioned {
            netns::heal(&self.old_host, &self.drill_id).map_err(|e| e.to_string())?;
            self.partitioned = false;
            out.push(format!("{} healed", self.old_host));
        }
        let deadline = self.deadline();
        for (promoted, old) in [
            (self.redis_promoted, s.redis_old),
            (self.pg_promoted, s.pg_old),
        ] {
            if promoted {
                continue;
            }
            let sup = launch::supervisor(&self.topo.stack, old);
            if sup.running().map_err(|e| e.to_string())?.is_none() {
                launch::start(&self.topo.stack, old, &self.pw).map_err(|e| e.to_string())?;
                launch::wait_ready(&self.topo.stack, old, &self.pw, deadline)
                    .map_err(|e| e.to_string())?;
                out.push(format!("{} restarted", old.name()));
            }
        }
        if !self.redis_promoted {
            let mut c = redis_at(&self.addr(s.redis_old), &self.pw, CTL_TIMEOUT)?;
            c.cmd_str(&["CLIENT", "UNPAUSE"])
                .map_err(|e| e.to_string())?;
            c.config_set("min-replicas-to-write", "0")
                .map_err(|e| e.to_string())?;
            c.set(b"fo:compensation-probe", b"1")
                .map_err(|e| format!("the old Redis primary still refuses writes: {e}"))?;
            out.push(format!(
                "Redis {} unfenced and accepts writes",
                self.addr(s.redis_old)
            ));
        }
        if !self.pg_promoted {
            let mut c = PgClient::connect(&self.topo.pg_config(s.pg_old, &self.pw, CTL_TIMEOUT))
                .map_err(|e| e.to_string())?;
            c.simple_query("ALTER SYSTEM SET synchronous_standby_names = ''")
                .and_then(|_| c.simple_query("SELECT pg_reload_conf()"))
                .map_err(|e| e.to_string())?;
            c.simple_query(&format!(
                "INSERT INTO {} (writer, seq) VALUES ('fo:{}:compensation', 1)",
                failover_core::topology::EVENTS_TABLE,
                self.drill_id
            ))
            .map_err(|e| format!("the old PostgreSQL primary still refuses writes: {e}"))?;
            out.push(format!(
                "PostgreSQL {} serves and accepts writes",
                self.addr(s.pg_old)
            ));
        }
        // The writers must get through to the old primaries again.
        let since = Instant::now();
        let end = self.deadline();
        loop {
            let through = self
                .writers
                .iter()
                .filter(|w| w.spec.name == "w1")
                .all(|w| lock(&w.log).acks.last().is_some_and(|a| a.at > since));
            if through {
                out.push("the writers' acknowledgements resumed on the old primaries".into());
                break;
            }
            if Instant::now() >= end {
                return Err(format!(
                    "{}; but the writers did not get through",
                    out.join("; ")
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let d = out.join("; ");
        self.compensation.push(d.clone());
        Ok(d)
    }

    // ---- verify ---------------------------------------------------------------------------

    fn verify_live(&mut self) -> std::result::Result<String, String> {
        let s = self.sides();
        let mut out = Vec::new();
        let new_r = self.addr(s.redis_new);
        let new_p = self.addr(s.pg_new);
        let old_r = self.addr(s.redis_old);
        // Heal, then demote the old Redis primary now (Sentinel would take ~10 s).
        if self.partitioned {
            netns::heal(&self.old_host, &self.drill_id).map_err(|e| e.to_string())?;
            self.partitioned = false;
            out.push(format!("{} healed", self.old_host));
        }
        if self.cli.mode != Mode::Unplanned {
            let (h, p) = new_r.rsplit_once(':').unwrap_or((&new_r, "0"));
            let port: u16 = p.parse().unwrap_or(0);
            if let Ok(mut c) = redis_at(&old_r, &self.pw, CTL_TIMEOUT) {
                c.replicaof(Some((h, port)))
                    .map_err(|e| format!("REPLICAOF on {old_r}: {e}"))?;
                let _ = c.cmd_str(&["CLIENT", "UNPAUSE"]);
            }
        }
        // Writes land on the new primaries.
        let t0 = self.t0.unwrap_or_else(Instant::now);
        let end = self.deadline();
        loop {
            let landed = self
                .writers
                .iter()
                .filter(|w| w.spec.name == "w1")
                .all(|w| {
                    let want = if w.spec.store == Store::Redis {
                        &new_r
                    } else {
                        &new_p
                    };
                    lock(&w.log)
                        .acks
                        .iter()
                        .rev()
                        .any(|a| a.at > t0 && &a.server == want)
                });
            if landed {
                break;
            }
            if Instant::now() >= end {
                return Err(format!(
                    "the writers' acknowledgements did not come from {new_r} and {new_p}"
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        out.push(format!("writes land on {new_r} and {new_p}"));
        // The old ones refuse.
        let old_redis = match redis_at(&old_r, &self.pw, CTL_TIMEOUT) {
            Err(e) => format!("unreachable ({e})"),
            Ok(mut c) => match c.set(b"fo:old-probe", b"1") {
                Ok(()) => {
                    return Err(format!(
                        "the old Redis primary {old_r} still accepts writes"
                    ));
                }
                Err(e) => format!("refuses: {e}"),
            },
        };
        out.push(format!("old Redis primary {old_r} {old_redis}"));
        let old_p = self.addr(s.pg_old);
        let old_pg = match PgClient::connect(&self.topo.pg_config(s.pg_old, &self.pw, CTL_TIMEOUT))
        {
            Err(e) => format!("refuses connections ({e})"),
            Ok(mut c) => match c.simple_query(&format!(
                "INSERT INTO {} (writer, seq) VALUES ('fo:{}:old-probe', 1)",
                failover_core::topology::EVENTS_TABLE,
                self.drill_id
            )) {
                Ok(_) => {
                    return Err(format!(
                        "the old PostgreSQL primary {old_p} still accepts writes"
                    ));
                }
                Err(e) => format!("refuses: {e}"),
            },
        };
        out.push(format!("old PostgreSQL primary {old_p} {old_pg}"));
        self.wait_sentinels_name(&new_r, end)?;
        out.push("the sentinels agree".into());
        Ok(out.join("; "))
    }

    // ---- accounting -----------------------------------------------------------------------

    fn finish(&mut self, ev: &mut FailoverEvidence) {
        // Let the writers land a few more writes on the new primaries, then stop them.
        std::thread::sleep(Duration::from_millis(200));
        for w in &mut self.writers {
            w.stop();
        }
        let Some(t0) = self.t0 else {
            ev.duration_source = "not_reached".into();
            ev.lag_source = "not_reached".into();
            return;
        };
        let s = self.sides();
        // Where the data is now: the promoted side, or the old one after a compensation.
        let r_final = if self.redis_promoted {
            s.redis_new
        } else {
            s.redis_old
        };
        let p_final = if self.pg_promoted { s.pg_new } else { s.pg_old };
        let mut redis = StoreFigures {
            old_primary: self.addr(s.redis_old),
            new_primary: self.addr(r_final),
            lag_before_events: self.lag_before.map(|l| l.0),
            ..StoreFigures::default()
        };
        let mut pg = StoreFigures {
            old_primary: self.addr(s.pg_old),
            new_primary: self.addr(p_final),
            lag_before_events: self.lag_before.map(|l| l.1),
            ..StoreFigures::default()
        };
        redis.new_primary_role = redis_at(&redis.new_primary, &self.pw, CTL_TIMEOUT)
            .and_then(|mut c| c.role().map(|(r, _)| r).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| format!("unreachable: {e}"));
        pg.new_primary_role =
            PgClient::connect(&self.topo.pg_config(p_final, &self.pw, CTL_TIMEOUT))
                .and_then(|mut c| c.query_value("SELECT pg_is_in_recovery()"))
                .map(|v| {
                    if v.as_deref() == Some("f") {
                        "primary".to_string()
                    } else {
                        "standby".to_string()
                    }
                })
                .unwrap_or_else(|e| format!("unreachable: {e}"));
        let mut ok = true;
        for w in &self.writers {
            let log = lock(&w.log);
            let (fig, present) = match w.spec.store {
                Store::Redis => (
                    &mut redis,
                    load::redis_present(&self.addr(r_final), &self.pw, &w.spec.tag()),
                ),
                Store::Pg => (
                    &mut pg,
                    load::pg_present(
                        &self
                            .topo
                            .pg_config(p_final, &self.pw, Duration::from_secs(10)),
                        &w.spec.tag(),
                    ),
                ),
            };
            match present {
                Ok(p) => load::account(
                    fig,
                    &log,
                    &p,
                    self.cli.ack_mode,
                    &fig.new_primary.clone(),
                    t0,
                ),
                Err(e) => {
                    warn(&format!(
                        "cannot count {} {:?}: {e}",
                        w.spec.name, w.spec.store
                    ));
                    ok = false;
                }
            }
            if w.spec.name == "w1"
                && let Some((secs, before, after)) =
                    load::outage(&log, t0, &fig.new_primary.clone())
            {
                fig.outage_seconds = Some((secs * 1000.0).round() / 1000.0);
                fig.last_ack_before_ns = Some(before);
                fig.first_ack_after_ns = Some(after);
            }
        }
        if ok {
            ev.lag_events = Some(redis.lost_acked + pg.lost_acked);
            ev.lag_source = LAG_MEASURED.into();
        } else {
            ev.lag_source = "unmeasured".into();
        }
        ev.duration_seconds = match (redis.outage_seconds, pg.outage_seconds) {
            (Some(a), Some(b)) => Some(a.max(b)),
            _ => None,
        };
        ev.duration_source = if ev.duration_seconds.is_some() {
            DURATION_MEASURED
        } else {
            "unmeasured"
        }
        .into();
        ev.pg_promotion_seconds = self.pg_promotion_seconds;
        ev.redis = Some(redis);
        ev.pg = Some(pg);
    }
}

/// The sentinel running on `host`.
fn sentinel_on(topo: &Topology, host: &str) -> ServiceKind {
    (1..=3)
        .map(ServiceKind::Sentinel)
        .find(|k| topo.host_of(*k) == host)
        .unwrap_or(ServiceKind::Sentinel(1))
}

/// The clap command (for docs and tests).
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
