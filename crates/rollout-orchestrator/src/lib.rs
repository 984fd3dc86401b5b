//! `rollout-orchestrator`: runs a rollout drill from a deploy env-config and writes
//! `rollout_result.env`.
//!
//! Steps, in the original's fixed order: `precheck`, `deploy`, (rich form: `health_gate`),
//! (`--inject-fault`: `fault_injection`), `rollback`, `verify`. Unlike the original:
//! - a failure of deploy, the gate or fault injection skips to the rollback, which always runs once
//!   something was deployed (a failed precheck stops before anything changes);
//! - each step has a timeout and runs in its own process group, killed whole on timeout or SIGINT;
//! - with `--execute`, a step without a command is refused before anything runs (exit 2);
//! - `ROLLOUT_SUCCESS=true` only when every step ran and succeeded, verify passed, and (when the
//!   config has `release_cmd`) the release running afterwards is the one running before;
//! - evidence values are never put into commands: steps get `ROLLOUT_ENV`, `ROLLOUT_STEP`,
//!   `ROLLOUT_STEP_INDEX`, `ROLLOUT_RELEASE_BEFORE` in their environment, and `PATH` starts with the
//!   folder of this binary so configs can call `svc-ctl` by name.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{CommandFactory as _, Parser};
use deploy_core::envconfig::{EnvConfig, GATE_STEP, StepSpec};
use deploy_core::rollout::{RolloutEvidence, StepRecord, StepStatus};
use deploy_core::svc::path_with_own_dir;
use evidence_core::cli::{info, stdout_write, warn};
use evidence_core::drill::{Drill, DrillArgs, DrillDefaults, check_output_path};
use evidence_core::health::{Check, HealthOptions, wait_healthy};
use evidence_core::lock::LockFile;
use evidence_core::process::{RunOptions, StepOutcome, run_shell};
use evidence_core::provenance::Provenance;
use evidence_core::reaper::{Reaper, ReaperOptions};
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Exit, Result, signals};
use trading_calendar::guard::{GuardArgs, SessionGuard};

const EXIT_HELP: &str = "EXIT STATUS:
  0    success: every step ran and passed, verify passed, the release before is the release after
       (dry run: the plan was printed and simulated)
  1    a step failed, verify did not prove the previous release is back, or a release stayed
       unknown; evidence is written
  2    bad flags or env-config, a refusal (trading session, no release_cmd, a failing release_cmd,
       an output that cannot be written), a held lock; no evidence
  130  interrupted by SIGINT/SIGTERM; the running step's group was killed; evidence is written";

/// Run a rollout drill (precheck, deploy, fault injection, rollback, verify) from an env-config.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  rollout-orchestrator --env-config configs/deploy/environments/sim.yaml --inject-fault --execute\n  rollout-verify --evidence-file docs/results/rollout_result.env --require-fault-step\n\nWithout --execute (or with --dry-run) nothing runs: each command is printed as\n`[dry-run] <command>` and recorded as simulated_ok (ROLLOUT_DRY_RUN=1), which the verifier rejects.\nWith --execute the env-config needs `release_cmd` (the release running before and after is\nrecorded) unless --no-release-check, and a drill against non-loopback targets is refused inside a\ntrading session unless --allow-in-session.\n\n{EXIT_HELP}"
    )
)]
pub struct Cli {
    /// Deploy env-config YAML (flat keys `*_cmd`, and/or the rich `steps:` form).
    #[arg(long, value_name = "PATH")]
    pub env_config: PathBuf,
    /// What every drill takes (--execute, --dry-run, --operator, --drill-id, --results-dir,
    /// --output-file, --lock-file).
    #[command(flatten)]
    pub drill: DrillArgs,
    /// The session guard.
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Run the fault_injection step (fault_inject_cmd) after deploy.
    #[arg(long)]
    pub inject_fault: bool,
    /// With --execute, run without `release_cmd`: recorded as ROLLOUT_RELEASE_CHECK=none, which
    /// rollout-verify rejects unless told to accept it.
    #[arg(long)]
    pub no_release_check: bool,
    /// Folder of the per-environment lock file (`rollout-<environment>.lock`), unless --lock-file.
    #[arg(long, value_name = "DIR", default_value = "runtime/locks")]
    pub lock_dir: PathBuf,
}

const DEFAULTS: DrillDefaults = DrillDefaults {
    tool: "rollout-orchestrator",
    id_prefix: "rollout",
    output_name: "rollout_result.env",
    lock_name: "rollout-orchestrator.lock",
};

/// The validated configuration of one run (from [`Cli`], once).
#[derive(Debug)]
pub struct Config {
    cfg: EnvConfig,
    drill: Drill,
    guard: SessionGuard,
    inject_fault: bool,
    release_check: bool,
}

impl TryFrom<&Cli> for Config {
    type Error = EvidenceError;
    fn try_from(cli: &Cli) -> Result<Config> {
        let cfg = EnvConfig::load(&cli.env_config)?;
        let mut drill = cli.drill.resolve(&DEFAULTS)?;
        if cli.drill.lock_file.is_none() {
            drill.lock_file = cli
                .lock_dir
                .join(format!("rollout-{}.lock", sanitize(&cfg.environment)));
            check_output_path("--lock-dir", &drill.lock_file)?;
        }
        let guard = SessionGuard::try_from(&cli.guard)?;
        let c = Config {
            cfg,
            drill,
            guard,
            inject_fault: cli.inject_fault,
            release_check: !cli.no_release_check,
        };
        if c.drill.execute {
            c.refuse_unrunnable()?;
        }
        Ok(c)
    }
}

impl Config {
    /// With --execute: every planned step needs a command, and a release check is required.
    fn refuse_unrunnable(&self) -> Result<()> {
        for s in plan(&self.cfg, self.inject_fault) {
            if let PlanStep::Cmd(spec) = s
                && spec.command.is_none()
            {
                return Err(EvidenceError::parse(
                    self.cfg.path.display().to_string(),
                    0,
                    &spec.field,
                    format!(
                        "a command for step {} (--execute refuses to record a step that runs nothing)",
                        spec.name
                    ),
                    "no command",
                ));
            }
        }
        if self.release_check && self.cfg.release_cmd.is_none() {
            return Err(EvidenceError::parse(
                self.cfg.path.display().to_string(),
                0,
                "release_cmd",
                "a command that prints the running release (--execute needs it to prove which release runs; pass --no-release-check to run without, recorded as ROLLOUT_RELEASE_CHECK=none)",
                "no command",
            ));
        }
        Ok(())
    }

    /// The session guard's targets: the hosts of HTTP/TCP checks, and `deploy_target` unless it
    /// is `local` or `local-*`.
    fn guard_targets(&self) -> Vec<String> {
        let mut t = Vec::new();
        let dt = self.cfg.deploy_target.as_str();
        if !(dt.is_empty() || dt == "local" || dt.starts_with("local-")) {
            t.push(format!("deploy_target:{dt}"));
        }
        let gate = self.cfg.gate.iter().flat_map(|g| g.checks.iter());
        for c in self
            .cfg
            .steps
            .iter()
            .flat_map(|s| s.health.iter())
            .chain(gate)
        {
            match c {
                Check::Http { http, .. } => t.push(http.clone()),
                Check::Tcp { tcp } => t.push(tcp.clone()),
                Check::Command { .. } => {}
            }
        }
        t
    }
}

/// What the plan holds: the steps to run, in order.
fn plan<'a>(cfg: &'a EnvConfig, inject_fault: bool) -> Vec<PlanStep<'a>> {
    let mut out = Vec::new();
    for s in &cfg.steps {
        match s.name {
            "fault_injection" if !inject_fault => {}
            "deploy" => {
                out.push(PlanStep::Cmd(s));
                if cfg.gate.is_some() {
                    out.push(PlanStep::Gate);
                }
            }
            _ => out.push(PlanStep::Cmd(s)),
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum PlanStep<'a> {
    Cmd(&'a StepSpec),
    Gate,
}

impl PlanStep<'_> {
    fn name(&self) -> &'static str {
        match self {
            PlanStep::Cmd(s) => s.name,
            PlanStep::Gate => GATE_STEP,
        }
    }
}

fn gate_text(checks: &[Check]) -> String {
    checks
        .iter()
        .map(Check::describe)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Run the rollout.
///
/// # Errors
/// Bad flags or config, a refusal (session guard, release check), a lock held, a step that could
/// not start: exit 2 before any step runs.
pub fn run(cli: Cli) -> Result<Exit> {
    let c = Config::try_from(&cli)?;
    let steps = plan(&c.cfg, c.inject_fault);
    let mut ev = new_evidence(&c);
    let exit = if c.drill.execute {
        let g = c.guard.check(c.guard.now(), &c.guard_targets())?;
        info(&g.reason);
        ev.session_guard = g.status.as_str().to_string();
        ev.session_guard_reason = g.reason;
        signals::install()?;
        let lock = LockFile::acquire(
            &c.drill.lock_file,
            &format!("rollout of environment {}", c.cfg.environment),
        )?;
        let reaper = Reaper::start(
            &ReaperOptions::new(reaper_file(&c.drill.lock_file)),
            Some(&lock),
        )?;
        let exit = execute(&c, &steps, &mut ev);
        reaper.stop();
        exit?
    } else {
        simulate(&c, &steps, &mut ev)?
    };
    ev.provenance.finish();
    c.drill.output.write_all(ev.render().as_bytes())?;
    if let Some(p) = c.drill.output.path() {
        stdout_write(&format!("{}\n", p.display()))?;
    }
    info(&format!(
        "environment {}: result {} (success={}, {} steps{})",
        ev.env,
        ev.result,
        ev.success,
        ev.steps.len(),
        if ev.failed_step.is_empty() {
            String::new()
        } else {
            format!(", failed step {}", ev.failed_step)
        }
    ));
    Ok(exit)
}

/// The reaper's registry beside the lock file.
fn reaper_file(lock: &std::path::Path) -> PathBuf {
    let mut name = lock.file_name().map(ToOwned::to_owned).unwrap_or_default();
    name.push(".reaper.json");
    lock.with_file_name(name)
}

fn new_evidence(c: &Config) -> RolloutEvidence {
    let mut prov = Provenance::start(
        "rollout-orchestrator",
        env!("CARGO_PKG_VERSION"),
        Some(&c.drill.operator),
        !c.drill.execute,
    );
    prov.config_sha256 = c.cfg.sha256.clone();
    RolloutEvidence {
        env: c.cfg.environment.clone(),
        dry_run: !c.drill.execute,
        success: false,
        failed_step: String::new(),
        steps: Vec::new(),
        result: String::new(),
        interrupted: false,
        config_form: c.cfg.form.as_str().to_string(),
        deploy_target: c.cfg.deploy_target.clone(),
        inject_fault: c.inject_fault,
        release_before: "unknown".to_string(),
        release_after: "unknown".to_string(),
        rollback_ran: false,
        rollback_seconds: None,
        failure_reason: String::new(),
        drill_id: c.drill.id.to_string(),
        release_check: if c.release_check && c.drill.execute {
            "command"
        } else {
            "none"
        }
        .to_string(),
        session_guard: "not_checked".to_string(),
        session_guard_reason: "dry run: nothing touched".to_string(),
        provenance: prov,
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn simulate(c: &Config, steps: &[PlanStep<'_>], ev: &mut RolloutEvidence) -> Result<Exit> {
    let cfg = &c.cfg;
    let to_stdout = c.drill.output.path().is_some();
    for s in steps {
        let command = match s {
            PlanStep::Cmd(spec) => spec.command.clone().unwrap_or_default(),
            PlanStep::Gate => gate_text(cfg.gate.as_ref().map_or(&[][..], |g| &g.checks)),
        };
        if let PlanStep::Cmd(spec) = s
            && spec.command.is_none()
        {
            warn(&format!(
                "step {}: no command ({}); --execute would refuse this config",
                spec.name, spec.field
            ));
        }
        let line = format!("[dry-run] {command}\n");
        if to_stdout {
            stdout_write(&line)?;
        } else {
            info(line.trim_end());
        }
        ev.steps.push(StepRecord {
            name: s.name().to_string(),
            status: StepStatus::SimulatedOk,
            duration_ms: 0,
            command,
            started_ns: now_ns(),
            exit_code: None,
            detail: "dry run: not executed".to_string(),
            timeout_seconds: match s {
                PlanStep::Cmd(spec) => spec.timeout.as_secs_f64(),
                PlanStep::Gate => cfg.gate.as_ref().map_or(0.0, |g| g.deadline.as_secs_f64()),
            },
            health_attempts: 0,
            output_tail: String::new(),
        });
    }
    ev.success = true;
    ev.result = "dry_run".to_string();
    ev.release_before = "unknown".to_string();
    ev.release_after = "unknown".to_string();
    Ok(Exit::Pass)
}

fn base_env(cfg: &EnvConfig, release_before: &str) -> Vec<(String, String)> {
    vec![
        ("ROLLOUT_ENV".to_string(), cfg.environment.clone()),
        ("ROLLOUT_DRY_RUN".to_string(), "0".to_string()),
        (
            "ROLLOUT_RELEASE_BEFORE".to_string(),
            release_before.to_string(),
        ),
        (
            "PATH".to_string(),
            path_with_own_dir().to_string_lossy().into_owned(),
        ),
    ]
}

/// Run `release_cmd` and return the last non-empty line of its stdout.
fn read_release(cfg: &EnvConfig, env: &[(String, String)]) -> Result<String> {
    let Some(cmd) = &cfg.release_cmd else {
        return Ok("unknown".to_string());
    };
    let opts = RunOptions {
        timeout: Duration::from_secs(30),
        env: env.to_vec(),
        ..RunOptions::default()
    };
    let o = run_shell(cmd, &opts)?;
    if o.interrupted {
        return Err(EvidenceError::Interrupted);
    }
    if !o.success() {
        warn(&format!(
            "release_cmd failed ({}): {}",
            o.describe(),
            tail(&o, 300)
        ));
        return Ok("unknown".to_string());
    }
    Ok(o.stdout_tail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map_or_else(|| "unknown".to_string(), |l| l.trim().to_string()))
}

fn tail(o: &StepOutcome, max: usize) -> String {
    let mut s = String::new();
    if !o.stdout_tail.trim().is_empty() {
        s.push_str(o.stdout_tail.trim_end());
    }
    if !o.stderr_tail.trim().is_empty() {
        if !s.is_empty() {
            s.push('\n');
        }
        s.push_str(o.stderr_tail.trim_end());
    }
    let n = s.chars().count();
    if n > max {
        s.chars().skip(n - max).collect()
    } else {
        s
    }
}

enum StepEnd {
    Ok,
    Failed,
    Interrupted,
}

fn run_cmd_step(
    spec: &StepSpec,
    index: usize,
    env: &[(String, String)],
) -> Result<(StepRecord, StepEnd)> {
    let command = spec.command.clone().unwrap_or_default();
    let mut env = env.to_vec();
    env.push(("ROLLOUT_STEP".to_string(), spec.name.to_string()));
    env.push(("ROLLOUT_STEP_INDEX".to_string(), index.to_string()));
    let opts = RunOptions {
        timeout: spec.timeout,
        env: env.clone(),
        ..RunOptions::default()
    };
    let start = Instant::now();
    let o = run_shell(&command, &opts)?;
    let mut rec = StepRecord {
        name: spec.name.to_string(),
        status: StepStatus::Ok,
        duration_ms: 0,
        command,
        started_ns: o.started_ns,
        exit_code: o.exit_code,
        detail: o.describe(),
        timeout_seconds: spec.timeout.as_secs_f64(),
        health_attempts: 0,
        output_tail: String::new(),
    };
    let mut end = StepEnd::Ok;
    if o.interrupted {
        end = StepEnd::Interrupted;
    } else if !o.success() {
        end = StepEnd::Failed;
    } else {
        for c in &spec.health {
            let hopts = HealthOptions {
                deadline: spec.health_deadline,
                interval: Duration::from_millis(200),
                attempt_timeout: Duration::from_secs(5).min(spec.health_deadline),
                env: env.clone(),
            };
            match wait_healthy(c, &hopts) {
                Ok(h) => {
                    rec.health_attempts += h.attempts;
                    if !h.passed {
                        rec.detail = format!(
                            "exit 0; health {} failed after {} attempts: {}",
                            c.describe(),
                            h.attempts,
                            h.last_detail
                        );
                        end = StepEnd::Failed;
                        break;
                    }
                }
                Err(EvidenceError::Interrupted) => {
                    rec.detail = "interrupted during health checks".to_string();
                    end = StepEnd::Interrupted;
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    rec.duration_ms = start.elapsed().as_millis();
    if !matches!(end, StepEnd::Ok) {
        rec.status = StepStatus::Failed;
        rec.output_tail = tail(&o, 2000);
    }
    Ok((rec, end))
}

fn run_gate(cfg: &EnvConfig, env: &[(String, String)]) -> Result<(StepRecord, StepEnd)> {
    let gate = cfg
        .gate
        .as_ref()
        .ok_or_else(|| EvidenceError::failed("no health gate"))?;
    let started_ns = now_ns();
    let start = Instant::now();
    let mut env = env.to_vec();
    env.push(("ROLLOUT_STEP".to_string(), GATE_STEP.to_string()));
    let mut rec = StepRecord {
        name: GATE_STEP.to_string(),
        status: StepStatus::Ok,
        duration_ms: 0,
        command: gate_text(&gate.checks),
        started_ns,
        exit_code: None,
        detail: String::new(),
        timeout_seconds: gate.deadline.as_secs_f64(),
        health_attempts: 0,
        output_tail: String::new(),
    };
    let mut end = StepEnd::Ok;
    let mut details = Vec::new();
    for c in &gate.checks {
        let hopts = HealthOptions {
            deadline: gate.deadline,
            interval: gate.interval,
            attempt_timeout: Duration::from_secs(5).min(gate.deadline),
            env: env.clone(),
        };
        match wait_healthy(c, &hopts) {
            Ok(h) => {
                rec.health_attempts += h.attempts;
                details.push(format!(
                    "{}: {} after {} attempts ({})",
                    c.describe(),
                    if h.passed { "passed" } else { "FAILED" },
                    h.attempts,
                    h.last_detail
                ));
                if !h.passed {
                    end = StepEnd::Failed;
                    rec.output_tail = h.last_detail;
                    break;
                }
            }
            Err(EvidenceError::Interrupted) => {
                details.push("interrupted".to_string());
                end = StepEnd::Interrupted;
                break;
            }
            Err(e) => return Err(e),
        }
    }
    rec.detail = details.join("; ");
    rec.duration_ms = start.elapsed().as_millis();
    if !matches!(end, StepEnd::Ok) {
        rec.status = StepStatus::Failed;
    }
    Ok((rec, end))
}

/// Where a run stands between steps.
#[derive(Debug, Default)]
struct Progress {
    failed: bool,
    deployed: bool,
    interrupted: bool,
    rollback_start: Option<Instant>,
    verify_ok_at: Option<Instant>,
}

impl Progress {
    /// After a failure only the rollback (once something was deployed) and verify run; verify
    /// is skipped after a failed rollback.
    fn skip(&self, name: &str, ev: &RolloutEvidence) -> bool {
        (self.failed && name != "rollback" && name != "verify")
            || ((name == "rollback" || name == "verify") && !self.deployed)
            || (name == "verify"
                && ev
                    .steps
                    .iter()
                    .any(|r| r.name == "rollback" && r.status == StepStatus::Failed))
    }
}

/// The release before the first step. A missing or failing release check is a refusal (exit 2)
/// unless `--no-release-check`.
fn release_before(c: &Config, ev: &mut RolloutEvidence) -> Result<()> {
    let env0 = base_env(&c.cfg, "unknown");
    ev.release_before = read_release(&c.cfg, &env0)?;
    if c.release_check && ev.release_before == "unknown" {
        return Err(EvidenceError::failed(format!(
            "release_cmd of {} did not print the running release before the first step; refusing to run a rollout whose releases cannot be known (pass --no-release-check to run anyway, recorded as ROLLOUT_RELEASE_CHECK=none)",
            c.cfg.path.display()
        )));
    }
    Ok(())
}

fn execute(c: &Config, steps: &[PlanStep<'_>], ev: &mut RolloutEvidence) -> Result<Exit> {
    let cfg = &c.cfg;
    match release_before(c, ev) {
        Err(EvidenceError::Interrupted) => {
            ev.interrupted = true;
            ev.result = "interrupted".to_string();
            ev.failure_reason = "interrupted before the first step".to_string();
            return Ok(Exit::Interrupted);
        }
        r => r?,
    }
    let env = base_env(cfg, &ev.release_before);
    let mut p = Progress::default();
    for (i, s) in steps.iter().enumerate() {
        let name = s.name();
        if signals::interrupted() {
            p.interrupted = true;
            if ev.failed_step.is_empty() {
                ev.failed_step = name.to_string();
            }
            break;
        }
        if p.skip(name, ev) {
            continue;
        }
        if name == "rollback" {
            p.rollback_start = Some(Instant::now());
            ev.rollback_ran = true;
        }
        p.deployed |= name == "deploy";
        info(&format!("step {name}: running"));
        let (rec, end) = match s {
            PlanStep::Cmd(spec) => run_cmd_step(spec, i + 1, &env)?,
            PlanStep::Gate => run_gate(cfg, &env)?,
        };
        let (rec, end) = check_verify(c, ev, &env, &mut p, rec, end)?;
        record_step(ev, &mut p, rec, &end);
        if matches!(end, StepEnd::Interrupted) {
            break;
        }
    }
    if p.interrupted {
        ev.interrupted = true;
        ev.success = false;
        ev.result = "interrupted".to_string();
        ev.failure_reason = format!(
            "interrupted by {} during step {}; its process group was killed; no rollback was attempted",
            signals::signal_name().unwrap_or("a signal"),
            ev.failed_step
        );
        return Ok(Exit::Interrupted);
    }
    finish(c, steps, ev, &env, &p)
}

/// After a passing verify: with a release check, the release running after the rollback must be
/// the one running before.
fn check_verify(
    c: &Config,
    ev: &RolloutEvidence,
    env: &[(String, String)],
    p: &mut Progress,
    mut rec: StepRecord,
    end: StepEnd,
) -> Result<(StepRecord, StepEnd)> {
    if rec.name != "verify" || !matches!(end, StepEnd::Ok) {
        return Ok((rec, end));
    }
    p.verify_ok_at = Some(Instant::now());
    if c.cfg.release_cmd.is_some() && ev.rollback_ran {
        let after = read_release(&c.cfg, env)?;
        if after != ev.release_before || after == "unknown" {
            rec.status = StepStatus::Failed;
            rec.detail = format!(
                "{}; but the release running after the rollback is {after}, not the previous release {}",
                rec.detail, ev.release_before
            );
            p.verify_ok_at = None;
            return Ok((rec, StepEnd::Failed));
        }
    }
    Ok((rec, end))
}

fn record_step(ev: &mut RolloutEvidence, p: &mut Progress, rec: StepRecord, end: &StepEnd) {
    let name = rec.name.clone();
    info(&format!(
        "step {name}: {} ({} ms): {}",
        rec.status.as_str(),
        rec.duration_ms,
        rec.detail
    ));
    if rec.status == StepStatus::Failed && !rec.output_tail.is_empty() {
        info(&format!("step {name} output (tail):\n{}", rec.output_tail));
    }
    ev.steps.push(rec);
    match end {
        StepEnd::Ok => {}
        StepEnd::Failed => {
            if ev.failed_step.is_empty() {
                ev.failed_step.clone_from(&name);
                ev.failure_reason = format!(
                    "step {name} failed: {}",
                    ev.steps.last().map_or("", |r| r.detail.as_str())
                );
            }
            p.failed = true;
        }
        StepEnd::Interrupted => {
            p.interrupted = true;
            if ev.failed_step.is_empty() {
                ev.failed_step = name;
            }
        }
    }
}

/// The verdict: every planned step ran and passed, verify passed, and the releases are known.
fn finish(
    c: &Config,
    steps: &[PlanStep<'_>],
    ev: &mut RolloutEvidence,
    env: &[(String, String)],
    p: &Progress,
) -> Result<Exit> {
    ev.release_after = match read_release(&c.cfg, env) {
        Ok(r) => r,
        Err(EvidenceError::Interrupted) => "unknown".to_string(),
        Err(e) => return Err(e),
    };
    if let (Some(a), Some(b)) = (p.rollback_start, p.verify_ok_at) {
        ev.rollback_seconds = Some(b.saturating_duration_since(a).as_secs_f64());
    }
    let verify_ok = ev
        .steps
        .iter()
        .any(|r| r.name == "verify" && r.status == StepStatus::Ok);
    let all_ran = ev.steps.len() == steps.len();
    let all_ok = ev.steps.iter().all(|r| r.status == StepStatus::Ok);
    let releases_known =
        !c.release_check || (ev.release_before != "unknown" && ev.release_after != "unknown");
    ev.success = all_ran && all_ok && verify_ok && releases_known;
    if !ev.success && ev.failure_reason.is_empty() {
        ev.failure_reason = if releases_known {
            "not every step ran".to_string()
        } else {
            format!(
                "the release stayed unknown (before {}, after {}): release_cmd did not print it",
                ev.release_before, ev.release_after
            )
        };
    }
    ev.result = if ev.success { "success" } else { "failed" }.to_string();
    if !c.release_check {
        warn(
            "--no-release-check: the evidence cannot show which release runs before and after (ROLLOUT_RELEASE_CHECK=none)",
        );
    }
    Ok(Exit::pass_if(ev.success))
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

    #[test]
    fn plan_orders_steps() {
        let cfg = EnvConfig::parse(
            "precheck_cmd: a\ndeploy_cmd: b\nfault_inject_cmd: c\nrollback_cmd: d\nverify_cmd: e\n",
            "x.yaml",
        )
        .unwrap();
        let names: Vec<_> = plan(&cfg, false).iter().map(PlanStep::name).collect();
        assert_eq!(names, ["precheck", "deploy", "rollback", "verify"]);
        let names: Vec<_> = plan(&cfg, true).iter().map(PlanStep::name).collect();
        assert_eq!(
            names,
            [
                "precheck",
                "deploy",
                "fault_injection",
                "rollback",
                "verify"
            ]
        );
        let cfg = EnvConfig::parse(
            "deploy_cmd: b\nhealth_gate:\n  checks:\n    - command: 'true'\n",
            "x.yaml",
        )
        .unwrap();
        let names: Vec<_> = plan(&cfg, true).iter().map(PlanStep::name).collect();
        assert_eq!(
            names,
            [
                "precheck",
                "deploy",
                "health_gate",
                "fault_injection",
                "rollback",
                "verify"
            ]
        );
    }
}
