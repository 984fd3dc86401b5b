//! The drill's phases: baseline in place, deploy, inject, detect, roll back, restored health,
//! release check, clean-up. Each measures into [`Measured`]; a phase that shows the drill cannot
//! pass records a [`FailReason`] (the first one wins) instead of an error.

use std::time::{Duration, Instant};

use deploy_core::svc::{RunDir, path_with_own_dir};
use evidence_core::cli::{info, stdout_write, warn};
use evidence_core::health::{Check, HealthOptions, probe_once, wait_healthy, wait_unhealthy};
use evidence_core::lock::LockFile;
use evidence_core::process::{RunOptions, StepOutcome, run_shell};
use evidence_core::provenance::Provenance;
use evidence_core::reaper::{self, Reaper, ReaperOptions};
use evidence_core::time::{Stopwatch, now_ns};
use evidence_core::{EvidenceError, Exit, Result, signals};

use crate::Failure;
use crate::config::{Config, ReleaseCheck};
use crate::evidence;

/// Why a drill that ran did not pass (`fail_reason` in the evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The rollback target was not running and healthy (and, with a release check, running)
    /// before the drill.
    BaselineNotInPlace,
    /// The deploy command failed.
    DeployFailed,
    /// `--failure kill`: the new release never passed its health check before the kill.
    NewReleaseNeverHealthy,
    /// The inject command failed.
    InjectFailed,
    /// The health check kept passing after the injection.
    FailureNotDetected,
    /// The rollback command failed.
    RollbackCmdFailed,
    /// The rollback target did not pass its health check in time.
    RestoreUnhealthy,
    /// The release check could not say which release runs after the rollback.
    ReleaseUnknown,
    /// Another release runs after the rollback.
    WrongReleaseAfter,
    /// `--stop-after`, but the service was still there afterwards.
    StopFailed,
}

impl FailReason {
    /// The evidence value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::BaselineNotInPlace => "baseline_not_in_place",
            FailReason::DeployFailed => "deploy_failed",
            FailReason::NewReleaseNeverHealthy => "new_release_never_healthy",
            FailReason::InjectFailed => "inject_failed",
            FailReason::FailureNotDetected => "failure_not_detected",
            FailReason::RollbackCmdFailed => "rollback_cmd_failed",
            FailReason::RestoreUnhealthy => "restore_unhealthy",
            FailReason::ReleaseUnknown => "release_unknown",
            FailReason::WrongReleaseAfter => "wrong_release_after",
            FailReason::StopFailed => "stop_failed",
        }
    }
}

/// Measured facts of one drill.
#[derive(Debug, Default)]
pub struct Measured {
    pub(crate) baseline_ok: Option<bool>,
    pub(crate) deploy_exit: Option<String>,
    pub(crate) new_release_was_healthy: Option<bool>,
    pub(crate) inject_exit: Option<String>,
    pub(crate) detected: bool,
    pub(crate) detect_seconds: Option<f64>,
    pub(crate) detect_attempts: u32,
    pub(crate) detect_detail: String,
    pub(crate) rollback_start_ns: i64,
    pub(crate) rollback_complete_ns: i64,
    pub(crate) rollback_from: Option<Instant>,
    pub(crate) rollback_seconds: f64,
    pub(crate) rollback_cmd_exit: Option<String>,
    pub(crate) rollback_cmd_seconds: Option<f64>,
    pub(crate) restore_attempts: u32,
    pub(crate) restore_detail: String,
    pub(crate) health_passed: bool,
    pub(crate) running_release_before: String,
    pub(crate) running_release_after: String,
    pub(crate) running_exe_release_after: String,
    pub(crate) health_check: String,
    pub(crate) health: Option<Check>,
    pub(crate) fail: Option<FailReason>,
    pub(crate) reason: String,
    pub(crate) stopped_after: bool,
    pub(crate) session_guard: String,
    pub(crate) session_guard_reason: String,
}

impl Measured {
    fn fail(&mut self, why: FailReason, text: String) {
        if self.fail.is_none() {
            warn(&text);
            self.fail = Some(why);
            self.reason = text;
        }
    }
}

/// The run's context: config, environment of the commands, the local run folder.
pub struct Ctx<'a> {
    pub(crate) cfg: &'a Config,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) rd: Option<RunDir>,
}

impl<'a> Ctx<'a> {
    fn new(cfg: &'a Config) -> Result<Ctx<'a>> {
        let plan = &cfg.plan;
        let rd = plan.run_dir.as_deref().map(RunDir::new).transpose()?;
        let mut env = vec![
            ("DRILL_ID".to_string(), cfg.drill.id.to_string()),
            ("DRILL_RELEASE_VERSION".to_string(), plan.release.clone()),
            ("DRILL_ROLLBACK_TARGET".to_string(), plan.target.clone()),
            (
                "PATH".to_string(),
                path_with_own_dir().to_string_lossy().into_owned(),
            ),
        ];
        if let Some(rd) = &rd {
            env.push(("DRILL_RUN_DIR".to_string(), rd.root().display().to_string()));
        }
        Ok(Ctx { cfg, env, rd })
    }

    fn run(&self, phase: &str, cmd: &str, timeout: Duration) -> Result<StepOutcome> {
        let mut env = self.env.clone();
        env.push(("DRILL_PHASE".into(), phase.into()));
        info(&format!("{phase}: {cmd}"));
        let o = run_shell(
            cmd,
            &RunOptions {
                timeout,
                env,
                ..RunOptions::default()
            },
        )?;
        if o.interrupted {
            return Err(EvidenceError::Interrupted);
        }
        if !o.success() {
            let tail = format!("{}{}", o.stdout_tail, o.stderr_tail);
            let lines: Vec<&str> = tail.trim().lines().collect();
            let tail = lines[lines.len().saturating_sub(5)..].join(" | ");
            warn(&format!("{phase} failed ({}): {tail}", o.describe()));
        }
        Ok(o)
    }

    fn hopts(&self, deadline: Duration) -> HealthOptions {
        HealthOptions {
            deadline,
            interval: Duration::from_millis(10),
            attempt_timeout: Duration::from_secs(2).min(deadline),
            env: self
                .env
                .iter()
                .cloned()
                .chain([(
                    "DRILL_EXPECT_VERSION".to_string(),
                    self.cfg.plan.target.clone(),
                )])
                .collect(),
        }
    }

    /// Platform local: the service the supervisor runs dies with the drill (its session is its
    /// process group).
    fn register_service(&self) {
        if let Some(st) = self.rd.as_ref().and_then(|rd| rd.status().ok())
            && let Some(r) = &st.running
        {
            reaper::register(r.pid, &format!("service {}", r.tag));
        }
    }

    /// The health check, and the stricter one the restored release must pass.
    fn checks(&self) -> Result<(Check, Check)> {
        let plan = &self.cfg.plan;
        let health = match (&plan.health, &self.rd) {
            (Some(h), _) => h.clone(),
            (None, Some(rd)) => Check::http(&rd.health_url()?),
            (None, None) => return Err(EvidenceError::usage("no health check")),
        };
        let restored = match (&plan.restored_health, &health, &plan.restored_body) {
            (Some(r), _, _) => r.clone(),
            (
                None,
                Check::Http {
                    http,
                    expect_status,
                    ..
                },
                Some(body),
            ) => Check::Http {
                http: http.clone(),
                expect_status: *expect_status,
                body_contains: Some(body.clone()),
            },
            (None, h, _) => h.clone(),
        };
        Ok((health, restored))
    }

    /// The running release by the release check; `unknown` when it cannot be told. `body_ok`:
    /// the restored check (whose body names the target) just passed.
    fn read_release(&self, body_ok: bool) -> Result<(String, String)> {
        match self.cfg.release_check {
            ReleaseCheck::Command => {
                let cmd = self.cfg.plan.release_cmd.as_deref().unwrap_or("false");
                let o = self.run("release", cmd, Duration::from_secs(30))?;
                let line = o
                    .stdout_tail
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|l| !l.is_empty());
                let rel = match line {
                    Some(l) if o.success() => l.to_string(),
                    _ => "unknown".to_string(),
                };
                Ok((rel, String::new()))
            }
            ReleaseCheck::Supervisor => match &self.rd {
                Some(rd) => {
                    let st = rd.status()?;
                    let exe = st
                        .running_exe_release
                        .clone()
                        .unwrap_or_else(|| "none".into());
                    Ok((st.running_release(), exe))
                }
                None => Ok(("unknown".to_string(), String::new())),
            },
            ReleaseCheck::HttpBody => Ok((
                if body_ok {
                    self.cfg.plan.target.clone()
                } else {
                    "unknown".to_string()
                },
                String::new(),
            )),
        }
    }
}

fn exit_text(o: &StepOutcome) -> String {
    o.exit_code.map_or_else(|| o.describe(), |c| c.to_string())
}

/// Print the commands; write the dry-run evidence.
pub fn dry_run(cfg: &Config) -> Result<Exit> {
    let plan = &cfg.plan;
    let mut lines = Vec::new();
    for c in [
        &plan.baseline_cmd,
        &Some(plan.deploy_cmd.clone()),
        &plan.inject_cmd,
        &Some(plan.rollback_cmd.clone()),
    ]
    .into_iter()
    .flatten()
    {
        lines.push(format!("[dry-run] {c}"));
    }
    if cfg.stop_after
        && let Some(c) = &plan.stop_cmd
    {
        lines.push(format!("[dry-run] {c}"));
    }
    for l in &lines {
        if cfg.drill.output.path().is_none() {
            info(l);
        } else {
            stdout_write(&format!("{l}\n"))?;
        }
    }
    let mut prov = Provenance::start(
        "rollback-drill",
        env!("CARGO_PKG_VERSION"),
        Some(&cfg.drill.operator),
        true,
    );
    prov.config_sha256 = plan.config_sha256.clone();
    prov.finish();
    evidence::write_dry_run(cfg, prov)?;
    Ok(Exit::Pass)
}

/// Run the drill for real and write its evidence.
///
/// # Errors
/// A refusal by the session guard, a held lock, a command that could not start: exit 2.
pub fn execute(cfg: &Config) -> Result<Exit> {
    let g = cfg.guard.check(cfg.guard.now(), &cfg.guard_targets())?;
    info(&g.reason);
    signals::install()?;
    let lock = LockFile::acquire(&cfg.drill.lock_file, "rollback drill")?;
    let ctx = Ctx::new(cfg)?;
    let mut ro = ReaperOptions::new(reaper_file(&cfg.drill.lock_file));
    if cfg.stop_after
        && let Some(stop) = &cfg.plan.stop_cmd
    {
        // The drill's own clean-up, should it die: the stop command with its environment.
        let mut argv = vec!["env".to_string()];
        argv.extend(ctx.env.iter().map(|(k, v)| format!("{k}={v}")));
        argv.extend(["/bin/sh".into(), "-c".into(), stop.clone()]);
        ro.cleanup.push(argv);
    }
    let reaper = Reaper::start(&ro, Some(&lock))?;
    let mut prov = Provenance::start(
        "rollback-drill",
        env!("CARGO_PKG_VERSION"),
        Some(&cfg.drill.operator),
        false,
    );
    prov.config_sha256 = cfg.plan.config_sha256.clone();
    let mut m = Measured {
        session_guard: g.status.as_str().to_string(),
        session_guard_reason: g.reason,
        ..Measured::default()
    };
    let outcome = phases(&ctx, &mut m);
    let mut interrupted = matches!(outcome, Err(EvidenceError::Interrupted));
    if let Err(e) = outcome
        && !interrupted
    {
        if cfg.stop_after {
            cleanup(&ctx, &mut m, false);
        }
        reaper.stop();
        return Err(e);
    }
    if cfg.stop_after {
        cleanup(&ctx, &mut m, interrupted);
    }
    // A signal during the clean-up is an interruption too.
    interrupted |= signals::interrupted();
    reaper.stop();
    prov.finish();
    evidence::write_executed(cfg, &mut m, interrupted, prov)
}

/// The reaper's registry beside the lock file.
fn reaper_file(lock: &std::path::Path) -> std::path::PathBuf {
    let mut name = lock.file_name().map(ToOwned::to_owned).unwrap_or_default();
    name.push(".reaper.json");
    lock.with_file_name(name)
}

/// Stop the service and see it gone. `interrupted`: commands would be stopped at once by the
/// pending signal, so the local service is stopped directly.
fn cleanup(ctx: &Ctx<'_>, m: &mut Measured, interrupted: bool) {
    if interrupted {
        if let Some(rd) = &ctx.rd {
            let _ = rd.stop(Duration::from_secs(5));
        }
    } else if let Some(c) = &ctx.cfg.plan.stop_cmd {
        let _ = ctx.run("stop", c, Duration::from_secs(30));
    }
    m.stopped_after = seen_stopped(ctx, m.health.as_ref());
    if !m.stopped_after && !interrupted {
        m.fail(
            FailReason::StopFailed,
            "--stop-after: the service was still there after the stop command".to_string(),
        );
    }
}

/// True when the service is gone: no supervised process (platform local) and the health check
/// fails (every platform), within 10 s.
fn seen_stopped(ctx: &Ctx<'_>, health: Option<&Check>) -> bool {
    let opts = ctx.hopts(Duration::from_secs(1));
    let gone = || {
        let sup_gone = ctx
            .rd
            .as_ref()
            .is_none_or(|rd| rd.status().is_ok_and(|s| s.running.is_none()));
        let probe_fails =
            health.is_none_or(|h| probe_once(h, opts.attempt_timeout, &opts.env).is_err());
        sup_gone && probe_fails && (health.is_some() || ctx.rd.is_some())
    };
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if gone() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn phases(ctx: &Ctx<'_>, m: &mut Measured) -> Result<()> {
    let plan = &ctx.cfg.plan;
    if let Some(c) = &plan.baseline_cmd {
        let o = ctx.run("baseline", c, Duration::from_secs(60))?;
        ctx.register_service();
        if !o.success() {
            m.baseline_ok = Some(false);
            m.fail(
                FailReason::BaselineNotInPlace,
                format!(
                    "the baseline ({}) could not be put in place: {}",
                    plan.target,
                    o.describe()
                ),
            );
            return Ok(());
        }
    }
    let (health, restored) = ctx.checks()?;
    m.health_check = health.describe();
    m.health = Some(health.clone());
    if !baseline_in_place(ctx, &restored, m)? {
        return Ok(());
    }
    let injected_at = deploy_and_inject(ctx, &health, m)?;
    let clock = Stopwatch::start();
    let rollback_from = detect(ctx, &health, injected_at, m)?;
    let d = rollback_from.saturating_duration_since(clock.instant());
    m.rollback_start_ns = clock.start_wall_ns() + i64::try_from(d.as_nanos()).unwrap_or(0);
    m.rollback_from = Some(rollback_from);
    roll_back(ctx, &restored, rollback_from, m)?;
    let (after, exe) = ctx.read_release(m.health_passed)?;
    m.running_release_after = after;
    m.running_exe_release_after = exe;
    if m.running_release_after == "unknown" {
        m.fail(
            FailReason::ReleaseUnknown,
            format!(
                "the release check ({}) could not tell which release runs after the rollback",
                ctx.cfg.release_check.as_str()
            ),
        );
    } else if m.running_release_after != plan.target {
        m.fail(
            FailReason::WrongReleaseAfter,
            format!(
                "{} runs after the rollback, not the rollback target {}",
                m.running_release_after, plan.target
            ),
        );
    }
    Ok(())
}

/// The rollback target must be running and healthy before anything is broken. Records
/// `baseline_ok` and `running_release_before`.
fn baseline_in_place(ctx: &Ctx<'_>, restored: &Check, m: &mut Measured) -> Result<bool> {
    let target = &ctx.cfg.plan.target;
    let base = wait_healthy(restored, &ctx.hopts(Duration::from_secs(15)))?;
    let (before, _) = ctx.read_release(base.passed)?;
    m.running_release_before = before;
    let ok = base.passed && m.running_release_before == *target;
    m.baseline_ok = Some(ok);
    if !base.passed {
        m.fail(
            FailReason::BaselineNotInPlace,
            format!(
                "the rollback target {target} is not healthy before the drill: {}",
                base.last_detail
            ),
        );
    } else if !ok {
        m.fail(
            FailReason::BaselineNotInPlace,
            format!(
                "{} runs before the drill, not the rollback target {target}",
                m.running_release_before
            ),
        );
    }
    Ok(ok)
}

/// Deploy the new release (kill mode: see it healthy), inject the failure. Returns when the
/// failure was injected.
fn deploy_and_inject(ctx: &Ctx<'_>, health: &Check, m: &mut Measured) -> Result<Instant> {
    let plan = &ctx.cfg.plan;
    let o = ctx.run("deploy", &plan.deploy_cmd, Duration::from_secs(120))?;
    ctx.register_service();
    m.deploy_exit = Some(exit_text(&o));
    if !o.success() {
        m.fail(
            FailReason::DeployFailed,
            format!("the deploy of {} failed: {}", plan.release, o.describe()),
        );
    }
    if plan.failure == Failure::Kill {
        let h = wait_healthy(health, &ctx.hopts(Duration::from_secs(15)))?;
        m.new_release_was_healthy = Some(h.passed);
        if !h.passed {
            m.fail(
                FailReason::NewReleaseNeverHealthy,
                format!(
                    "the new release {} never passed its health check before the kill: {}",
                    plan.release, h.last_detail
                ),
            );
        }
    }
    let injected_at = Instant::now();
    if let Some(c) = &plan.inject_cmd {
        let o = ctx.run("inject", c, Duration::from_secs(60))?;
        m.inject_exit = Some(exit_text(&o));
        if !o.success() {
            m.fail(
                FailReason::InjectFailed,
                format!("the inject command failed: {}", o.describe()),
            );
        }
    }
    Ok(injected_at)
}

/// Probe until the health check fails. Returns the instant the rollback clock starts.
fn detect(
    ctx: &Ctx<'_>,
    health: &Check,
    injected_at: Instant,
    m: &mut Measured,
) -> Result<Instant> {
    let plan = &ctx.cfg.plan;
    let det = wait_unhealthy(health, &ctx.hopts(plan.detect_timeout))?;
    m.detect_attempts = det.attempts;
    m.detect_detail.clone_from(&det.last_detail);
    if det.passed {
        m.detected = true;
        m.detect_seconds = Some(
            det.decided_at
                .saturating_duration_since(injected_at)
                .as_secs_f64(),
        );
        info(&format!(
            "failure detected after {} probes: {}",
            det.attempts, det.last_detail
        ));
        Ok(det.decided_at)
    } else {
        m.fail(
            FailReason::FailureNotDetected,
            format!(
                "the injected failure was not detected within {:.1}s (health kept passing)",
                plan.detect_timeout.as_secs_f64()
            ),
        );
        Ok(Instant::now())
    }
}

/// Run the rollback and wait for the restored health check; time it from `from`.
fn roll_back(ctx: &Ctx<'_>, restored: &Check, from: Instant, m: &mut Measured) -> Result<()> {
    let plan = &ctx.cfg.plan;
    let cmd_start = Instant::now();
    let o = ctx.run("rollback", &plan.rollback_cmd, plan.rollback_timeout)?;
    ctx.register_service();
    m.rollback_cmd_exit = Some(exit_text(&o));
    m.rollback_cmd_seconds = Some(cmd_start.elapsed().as_secs_f64());
    if !o.success() {
        m.fail(
            FailReason::RollbackCmdFailed,
            format!("the rollback command failed: {}", o.describe()),
        );
    }
    let left = plan
        .rollback_timeout
        .saturating_sub(from.elapsed())
        .max(Duration::from_millis(100));
    let h = wait_healthy(restored, &ctx.hopts(left))?;
    m.restore_attempts = h.attempts;
    m.restore_detail.clone_from(&h.last_detail);
    m.health_passed = h.passed;
    let done = if h.passed {
        h.decided_at
    } else {
        Instant::now()
    };
    let took = done.saturating_duration_since(from);
    m.rollback_seconds = took.as_secs_f64();
    // Keep the timestamps and the figure consistent to the nanosecond.
    m.rollback_complete_ns = m.rollback_start_ns + i64::try_from(took.as_nanos()).unwrap_or(0);
    if !h.passed {
        m.fail(
            FailReason::RestoreUnhealthy,
            format!(
                "{} did not pass its health check within {:.1}s of detection: {}",
                plan.target,
                plan.rollback_timeout.as_secs_f64(),
                h.last_detail
            ),
        );
    }
    Ok(())
}

/// Wall-clock now, for timestamps of a drill stopped before detection.
pub(crate) fn wall_now() -> i64 {
    now_ns()
}
