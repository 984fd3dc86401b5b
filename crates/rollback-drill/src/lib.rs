//! `rollback-drill`: SOP 5 for real. Establish the rollback target (baseline), deploy a new
//! release, inject a failure (the new release fails its health check, or its process is killed),
//! detect it with a health probe, roll back, wait until the old release passes its health check,
//! and write `deploy_rollback_result.env`: the original's twelve keys in order, then measured
//! extras, then provenance.
//!
//! `rollback_seconds` is measured with a monotonic clock from the detection of the failure (the
//! first failed probe) until the old release passes its health check; the two UTC timestamps are
//! derived from the same clock, so they agree with it.
//!
//! Defaults drill the demo service through `svc-ctl` (`--platform local`). For a user's service,
//! give its commands and health check with flags or `--config` (`systemctl` or `kubectl` commands,
//! `--platform systemd|k8s`). Commands get context in environment variables (`DRILL_ID`,
//! `DRILL_RUN_DIR`, `DRILL_RELEASE_VERSION`, `DRILL_ROLLBACK_TARGET`, `DRILL_PHASE`,
//! `DRILL_EXPECT_VERSION`), never interpolated into the command text.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{CommandFactory as _, Parser, ValueEnum};
use deploy_core::rollback::RollbackEvidence;
use deploy_core::svc::{RunDir, path_with_own_dir};
use evidence_core::cli::{EXIT_STATUS_HELP, info, stdout_write, warn};
use evidence_core::health::{Check, HealthOptions, wait_healthy, wait_unhealthy};
use evidence_core::io::Output;
use evidence_core::lock::LockFile;
use evidence_core::process::{RunOptions, StepOutcome, run_shell};
use evidence_core::provenance::{Provenance, sha256_hex};
use evidence_core::time::{Stopwatch, format_seconds, format_utc, now_ns};
use evidence_core::{EvidenceError, Exit, Result, signals};
use serde::Deserialize;

/// Deploy a new release, inject a failure, detect it, roll back, measure rollback_seconds.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  rollback-drill --execute --failure health --stop-after\n  rollback-verify --evidence-file docs/results/deploy_rollback_result.env --max-rollback-seconds 180\n\n  # a systemd service on a real host:\n  rollback-drill --execute --platform systemd --config drill.yaml\n\nWithout --execute nothing runs: the commands are printed as `[dry-run] <command>` and the evidence\nsays result=dry_run (rejected by rollback-verify unless --allow-dry-run).\n\n{EXIT_STATUS_HELP}\n  (1: the failure was not detected, the rollback failed, or the old release did not pass its health\n   check in time; evidence is written)"
    )
)]
pub struct Cli {
    /// Run the drill for real (default: dry run).
    #[arg(long)]
    pub execute: bool,
    /// Where to write the evidence (`-` for stdout).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "docs/results/deploy_rollback_result.env"
    )]
    pub output_file: Output,
    /// YAML with the drill's settings (keys as the long flags, with `_`; `health` and
    /// `restored_health` as checks: {http: URL, expect_status, body_contains} | {tcp: ADDR} |
    /// {command: CMD}). Flags override it.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Platform recorded in the evidence: `local` (svc-ctl, the default), `systemd`, `k8s`.
    #[arg(long, value_enum)]
    pub platform: Option<Platform>,
    /// The new release to deploy (and see fail).
    #[arg(long, value_name = "V")]
    pub release_version: Option<String>,
    /// The release to roll back to.
    #[arg(long, value_name = "V")]
    pub rollback_target: Option<String>,
    /// The failure to inject: `health` (the new release fails its health check) or `kill` (its
    /// process is killed with SIGKILL).
    #[arg(long, value_enum)]
    pub failure: Option<Failure>,
    /// Run folder of the local service (platform local).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Command that puts the rollback target in place and running before the drill.
    #[arg(long, value_name = "CMD")]
    pub baseline_cmd: Option<String>,
    /// Command that deploys the new release.
    #[arg(long, value_name = "CMD")]
    pub deploy_cmd: Option<String>,
    /// Command that injects the failure after deploy.
    #[arg(long, value_name = "CMD")]
    pub inject_cmd: Option<String>,
    /// Command that rolls back to the rollback target.
    #[arg(long, value_name = "CMD")]
    pub rollback_cmd: Option<String>,
    /// Command that stops the service (with --stop-after).
    #[arg(long, value_name = "CMD")]
    pub stop_cmd: Option<String>,
    /// Health check: HTTP GET this URL, expecting 200.
    #[arg(long, value_name = "URL", conflicts_with = "health_cmd")]
    pub health_url: Option<String>,
    /// Health check: this command must exit 0.
    #[arg(long, value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// After the rollback, the health body must also contain this text (HTTP checks).
    #[arg(long, value_name = "TEXT")]
    pub restored_body_contains: Option<String>,
    /// Seconds to wait for the failure to be detected.
    #[arg(long, value_name = "SECS")]
    pub detect_timeout: Option<f64>,
    /// Seconds from detection for the rollback to pass its health check.
    #[arg(long, value_name = "SECS")]
    pub rollback_timeout: Option<f64>,
    /// Stop the service at the end (leave nothing running).
    #[arg(long)]
    pub stop_after: bool,
    /// Drill id (default: `rollback-<UTC time>-<pid>`).
    #[arg(long)]
    pub drill_id: Option<String>,
    /// Operator (default: $USER).
    #[arg(long)]
    pub operator: Option<String>,
    /// Notes to record.
    #[arg(long)]
    pub notes: Option<String>,
    /// Lock file: one rollback drill at a time.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "runtime/locks/rollback-drill.lock"
    )]
    pub lock_file: PathBuf,
}

/// Where the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// The local process supervisor (svc-ctl).
    Local,
    /// systemd units (commands from the config or flags).
    Systemd,
    /// Kubernetes (commands from the config or flags).
    K8s,
}

impl Platform {
    fn as_str(self) -> &'static str {
        match self {
            Platform::Local => "local",
            Platform::Systemd => "systemd",
            Platform::K8s => "k8s",
        }
    }
}

/// Which failure to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Failure {
    /// The new release fails its health check.
    Health,
    /// The new release's process is killed.
    Kill,
}

impl Failure {
    fn evidence(self) -> &'static str {
        match self {
            Failure::Health => "new_release_fails_health_check",
            Failure::Kill => "new_release_process_killed",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    platform: Option<Platform>,
    release_version: Option<String>,
    rollback_target: Option<String>,
    failure: Option<Failure>,
    run_dir: Option<PathBuf>,
    baseline_cmd: Option<String>,
    deploy_cmd: Option<String>,
    inject_cmd: Option<String>,
    rollback_cmd: Option<String>,
    stop_cmd: Option<String>,
    health: Option<Check>,
    restored_health: Option<Check>,
    detect_timeout_seconds: Option<f64>,
    rollback_timeout_seconds: Option<f64>,
    notes: Option<String>,
}

/// The resolved plan.
#[derive(Debug, Clone)]
struct Plan {
    platform: Platform,
    release: String,
    target: String,
    failure: Failure,
    run_dir: Option<PathBuf>,
    baseline_cmd: Option<String>,
    deploy_cmd: String,
    inject_cmd: Option<String>,
    rollback_cmd: String,
    stop_cmd: Option<String>,
    /// None for local: built from the run folder's port after the baseline.
    health: Option<Check>,
    restored_health: Option<Check>,
    restored_body: Option<String>,
    detect_timeout: Duration,
    rollback_timeout: Duration,
    notes: String,
    config_sha256: String,
}

fn secs(v: f64, what: &str) -> Result<Duration> {
    if v.is_finite() && v > 0.0 && v < 1e6 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(EvidenceError::usage(format!(
            "{what} must be a number of seconds > 0, found {v}"
        )))
    }
}

const SVC: &str = "svc-ctl --run-dir \"$DRILL_RUN_DIR\"";

fn resolve(cli: &Cli) -> Result<Plan> {
    let (fc, sha) = match &cli.config {
        None => (FileConfig::default(), "none".to_string()),
        Some(p) => {
            let bytes =
                std::fs::read(p).map_err(|e| EvidenceError::io("cannot read config", p, e))?;
            let text = String::from_utf8_lossy(&bytes);
            let fc: FileConfig = yaml_serde::from_str(&text).map_err(|e| {
                let line = e.location().map_or(0, |l| l.line());
                EvidenceError::parse(
                    p.display().to_string(),
                    line,
                    "yaml",
                    "a rollback-drill config",
                    e.to_string(),
                )
            })?;
            for (field, c) in [
                ("health", &fc.health),
                ("restored_health", &fc.restored_health),
            ] {
                if let Some(c) = c {
                    c.validate().map_err(|e| {
                        EvidenceError::parse(p.display().to_string(), 0, field, "a valid check", e)
                    })?;
                }
            }
            (fc, sha256_hex(&bytes))
        }
    };
    let platform = cli.platform.or(fc.platform).unwrap_or(Platform::Local);
    let release = cli
        .release_version
        .clone()
        .or(fc.release_version)
        .unwrap_or_else(|| "v2".into());
    let target = cli
        .rollback_target
        .clone()
        .or(fc.rollback_target)
        .unwrap_or_else(|| "v1".into());
    if release == target {
        return Err(EvidenceError::usage(format!(
            "--release-version and --rollback-target are both {release:?}: a rollback needs two releases"
        )));
    }
    for (flag, v) in [
        ("--release-version", &release),
        ("--rollback-target", &target),
    ] {
        if v.is_empty() || v.chars().any(|c| c.is_control()) {
            return Err(EvidenceError::usage(format!(
                "{flag} must be a non-empty name, found {v:?}"
            )));
        }
    }
    let failure = cli.failure.or(fc.failure).unwrap_or(Failure::Health);
    let health = match (&cli.health_url, &cli.health_cmd) {
        (Some(u), _) => Some(Check::http(u)),
        (None, Some(c)) => Some(Check::Command { command: c.clone() }),
        (None, None) => fc.health,
    };
    if let Some(c) = &health {
        c.validate()
            .map_err(|e| EvidenceError::usage(format!("health check: {e}")))?;
    }
    let local = platform == Platform::Local;
    let pick = |flag: &Option<String>, file: Option<String>| {
        flag.clone().or(file).filter(|c| !c.trim().is_empty())
    };
    let mut baseline_cmd = pick(&cli.baseline_cmd, fc.baseline_cmd);
    let mut deploy_cmd = pick(&cli.deploy_cmd, fc.deploy_cmd);
    let mut inject_cmd = pick(&cli.inject_cmd, fc.inject_cmd);
    let mut rollback_cmd = pick(&cli.rollback_cmd, fc.rollback_cmd);
    let mut stop_cmd = pick(&cli.stop_cmd, fc.stop_cmd);
    let run_dir = cli.run_dir.clone().or(fc.run_dir);
    let run_dir = if local {
        Some(run_dir.unwrap_or_else(|| PathBuf::from("runtime/deploy/drill")))
    } else {
        run_dir
    };
    if local {
        baseline_cmd.get_or_insert_with(|| {
            format!("{SVC} deploy --release \"$DRILL_ROLLBACK_TARGET\" --wait-healthy 10")
        });
        deploy_cmd.get_or_insert_with(|| match failure {
            Failure::Health => {
                format!("{SVC} deploy --release \"$DRILL_RELEASE_VERSION\" --fail-health")
            }
            Failure::Kill => format!("{SVC} deploy --release \"$DRILL_RELEASE_VERSION\""),
        });
        if failure == Failure::Kill {
            inject_cmd.get_or_insert_with(|| format!("{SVC} kill"));
        }
        rollback_cmd.get_or_insert_with(|| format!("{SVC} rollback"));
        stop_cmd.get_or_insert_with(|| format!("{SVC} stop"));
    }
    let need = |v: Option<String>, flag: &str| {
        v.ok_or_else(|| {
            EvidenceError::usage(format!(
                "platform {} needs {flag} (or its key in --config)",
                platform.as_str()
            ))
        })
    };
    let deploy_cmd = need(deploy_cmd, "--deploy-cmd")?;
    let rollback_cmd = need(rollback_cmd, "--rollback-cmd")?;
    if !local && health.is_none() {
        return Err(EvidenceError::usage(format!(
            "platform {} needs a health check: --health-url, --health-cmd or `health:` in --config",
            platform.as_str()
        )));
    }
    if !local && failure == Failure::Kill && inject_cmd.is_none() {
        return Err(EvidenceError::usage(
            "--failure kill needs --inject-cmd on this platform (e.g. systemctl kill -s KILL <unit>)",
        ));
    }
    let detect_timeout = secs(
        cli.detect_timeout
            .or(fc.detect_timeout_seconds)
            .unwrap_or(30.0),
        "--detect-timeout",
    )?;
    let rollback_timeout = secs(
        cli.rollback_timeout
            .or(fc.rollback_timeout_seconds)
            .unwrap_or(60.0),
        "--rollback-timeout",
    )?;
    let restored_body = cli
        .restored_body_contains
        .clone()
        .or_else(|| local.then(|| format!("\"version\":\"{target}\"")));
    Ok(Plan {
        platform,
        release,
        target,
        failure,
        run_dir,
        baseline_cmd,
        deploy_cmd,
        inject_cmd,
        rollback_cmd,
        stop_cmd,
        health,
        restored_health: fc.restored_health,
        restored_body,
        detect_timeout,
        rollback_timeout,
        notes: cli.notes.clone().or(fc.notes).unwrap_or_default(),
        config_sha256: sha,
    })
}

struct Ctx {
    env: Vec<(String, String)>,
}

impl Ctx {
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
            let tail: String = tail
                .trim()
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join(" | ");
            warn(&format!("{phase} failed ({}): {tail}", o.describe()));
        }
        Ok(o)
    }
}

/// Measured facts of one drill.
#[derive(Debug, Default)]
struct Measured {
    baseline_ok: Option<bool>,
    deploy_exit: Option<String>,
    new_release_was_healthy: Option<bool>,
    inject_exit: Option<String>,
    detected: bool,
    detect_seconds: Option<f64>,
    detect_attempts: u32,
    detect_detail: String,
    rollback_start_ns: i64,
    rollback_complete_ns: i64,
    rollback_from: Option<Instant>,
    rollback_seconds: f64,
    rollback_cmd_exit: Option<String>,
    rollback_cmd_seconds: Option<f64>,
    restore_attempts: u32,
    restore_detail: String,
    health_passed: bool,
    running_release_after: String,
    running_exe_release_after: String,
    health_check: String,
    reason: String,
}

/// Run the drill.
pub fn run(cli: Cli) -> Result<Exit> {
    let plan = resolve(&cli)?;
    let dry_run = !cli.execute;
    let mut prov = Provenance::start(
        "rollback-drill",
        env!("CARGO_PKG_VERSION"),
        cli.operator.as_deref(),
        dry_run,
    );
    prov.config_sha256 = plan.config_sha256.clone();
    let started = now_ns();
    let drill_id = cli.drill_id.clone().unwrap_or_else(|| {
        let t = format_utc(started);
        format!(
            "rollback-{}{}{}-{}",
            &t[..10].replace('-', ""),
            "T",
            &t[11..19].replace(':', ""),
            std::process::id()
        )
    });
    let run_dir_abs = match &plan.run_dir {
        Some(d) => Some(RunDir::new(d)?),
        None => None,
    };
    let mut env = vec![
        ("DRILL_ID".to_string(), drill_id.clone()),
        ("DRILL_RELEASE_VERSION".to_string(), plan.release.clone()),
        ("DRILL_ROLLBACK_TARGET".to_string(), plan.target.clone()),
        (
            "PATH".to_string(),
            path_with_own_dir().to_string_lossy().into_owned(),
        ),
    ];
    if let Some(rd) = &run_dir_abs {
        env.push(("DRILL_RUN_DIR".to_string(), rd.root().display().to_string()));
    }
    let ctx = Ctx { env };
    let operator = prov.operator.clone();
    let mut extras: Vec<(String, String)> = vec![
        (
            "failure_mode".into(),
            format!("{:?}", plan.failure).to_lowercase(),
        ),
        (
            "run_dir".into(),
            plan.run_dir
                .as_ref()
                .map_or_else(String::new, |d| d.display().to_string()),
        ),
    ];
    let (head, exit) = if dry_run {
        let out_to_stdout = cli.output_file.path().is_none();
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
        if cli.stop_after
            && let Some(c) = &plan.stop_cmd
        {
            lines.push(format!("[dry-run] {c}"));
        }
        for l in &lines {
            if out_to_stdout {
                info(l);
            } else {
                stdout_write(&format!("{l}\n"))?;
            }
        }
        let now = format_utc(now_ns());
        let notes = join_notes(
            &plan.notes,
            "dry run: nothing was executed, nothing was measured",
        );
        (
            [
                drill_id,
                plan.platform.as_str().to_string(),
                plan.release.clone(),
                plan.target.clone(),
                plan.failure.evidence().to_string(),
                now.clone(),
                now,
                "0.000000".to_string(),
                "false".to_string(),
                "dry_run".to_string(),
                operator,
                notes,
            ],
            Exit::Pass,
        )
    } else {
        signals::install()?;
        let _lock = LockFile::acquire(&cli.lock_file, "rollback drill")?;
        let mut m = Measured::default();
        let outcome = drill(&plan, &ctx, run_dir_abs.as_ref(), &mut m);
        let interrupted = matches!(outcome, Err(EvidenceError::Interrupted));
        if let Err(e) = &outcome
            && !interrupted
        {
            // Could not do the job (e.g. the baseline could not be established).
            if cli.stop_after {
                cleanup(&plan, &ctx, run_dir_abs.as_ref(), false);
            }
            return Err(EvidenceError::failed(e.to_string()));
        }
        if cli.stop_after {
            cleanup(&plan, &ctx, run_dir_abs.as_ref(), interrupted);
        }
        let result = if interrupted {
            "interrupted"
        } else if m.detected && m.health_passed && m.reason.is_empty() {
            "pass"
        } else {
            "fail"
        };
        if m.rollback_start_ns == 0 {
            // Stopped before any detection: nothing to time.
            m.rollback_start_ns = now_ns();
            m.rollback_complete_ns = m.rollback_start_ns;
        } else if m.rollback_complete_ns == 0 {
            // Interrupted during the rollback: time it up to the interruption.
            let d = m.rollback_from.map_or(Duration::ZERO, |t| t.elapsed());
            m.rollback_seconds = d.as_secs_f64();
            m.rollback_complete_ns = m.rollback_start_ns + i64::try_from(d.as_nanos()).unwrap_or(0);
        }
        let mut notes = plan.notes.clone();
        if interrupted {
            notes = join_notes(&notes, "interrupted by a signal before the drill completed");
        }
        if !m.reason.is_empty() {
            notes = join_notes(&notes, &m.reason);
        }
        if notes.is_empty() {
            notes = format!(
                "{} rolled back to {} after {}",
                plan.release,
                plan.target,
                plan.failure.evidence()
            );
        }
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        let f6 = |o: Option<f64>| o.map(|x| format!("{x:.6}")).unwrap_or_default();
        extras.extend([
            (
                "baseline_ok".into(),
                m.baseline_ok.map(|b| b.to_string()).unwrap_or_default(),
            ),
            ("deploy_exit".into(), opt(&m.deploy_exit)),
            (
                "new_release_was_healthy".into(),
                m.new_release_was_healthy
                    .map(|b| b.to_string())
                    .unwrap_or_default(),
            ),
            ("inject_exit".into(), opt(&m.inject_exit)),
            ("health_check".into(), m.health_check.clone()),
            ("failure_detected".into(), m.detected.to_string()),
            ("detect_seconds".into(), f6(m.detect_seconds)),
            ("detect_attempts".into(), m.detect_attempts.to_string()),
            ("detect_detail".into(), m.detect_detail.clone()),
            ("rollback_cmd_exit".into(), opt(&m.rollback_cmd_exit)),
            ("rollback_cmd_seconds".into(), f6(m.rollback_cmd_seconds)),
            (
                "restore_health_attempts".into(),
                m.restore_attempts.to_string(),
            ),
            ("restore_health_detail".into(), m.restore_detail.clone()),
            (
                "running_release_after".into(),
                m.running_release_after.clone(),
            ),
            (
                "running_exe_release_after".into(),
                m.running_exe_release_after.clone(),
            ),
            ("stopped_after".into(), cli.stop_after.to_string()),
        ]);
        info(&format!(
            "result {result}: rollback_seconds={:.6} health_check_passed={}",
            m.rollback_seconds, m.health_passed
        ));
        (
            [
                drill_id,
                plan.platform.as_str().to_string(),
                plan.release.clone(),
                plan.target.clone(),
                plan.failure.evidence().to_string(),
                format_utc(m.rollback_start_ns),
                format_utc(m.rollback_complete_ns),
                format_seconds(Duration::from_secs_f64(m.rollback_seconds)),
                m.health_passed.to_string(),
                result.to_string(),
                operator,
                notes,
            ],
            if interrupted {
                Exit::Interrupted
            } else {
                Exit::pass_if(result == "pass")
            },
        )
    };
    prov.finish();
    let ev = RollbackEvidence {
        head,
        extras,
        provenance: prov,
    };
    cli.output_file.write_all(ev.render().as_bytes())?;
    if let Some(p) = cli.output_file.path() {
        info(&format!("evidence written: {}", p.display()));
    }
    Ok(exit)
}

fn join_notes(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}; {b}")
    }
}

fn exit_text(o: &StepOutcome) -> String {
    o.exit_code.map_or_else(|| o.describe(), |c| c.to_string())
}

fn cleanup(plan: &Plan, ctx: &Ctx, rd: Option<&RunDir>, interrupted: bool) {
    if interrupted {
        // Commands would be stopped at once by the pending signal: stop the local service directly.
        if let Some(rd) = rd {
            let _ = rd.stop(Duration::from_secs(5));
        }
        return;
    }
    if let Some(c) = &plan.stop_cmd {
        let _ = ctx.run("stop", c, Duration::from_secs(30));
    }
}

fn drill(plan: &Plan, ctx: &Ctx, rd: Option<&RunDir>, m: &mut Measured) -> Result<()> {
    let clock = Stopwatch::start();
    let wall = |t: Instant| -> i64 {
        let d = t.saturating_duration_since(clock.instant());
        clock.start_wall_ns() + i64::try_from(d.as_nanos()).unwrap_or(0)
    };
    if let Some(c) = &plan.baseline_cmd {
        let o = ctx.run("baseline", c, Duration::from_secs(60))?;
        m.baseline_ok = Some(o.success());
        if !o.success() {
            return Err(EvidenceError::failed(format!(
                "the baseline ({}) could not be put in place: {}",
                plan.target,
                o.describe()
            )));
        }
    }
    // The health check, and the stricter one the restored release must pass.
    let health = match (&plan.health, rd) {
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
    m.health_check = health.describe();
    let hopts = |deadline: Duration| HealthOptions {
        deadline,
        interval: Duration::from_millis(10),
        attempt_timeout: Duration::from_secs(2).min(deadline),
        env: ctx
            .env
            .iter()
            .cloned()
            .chain([("DRILL_EXPECT_VERSION".to_string(), plan.target.clone())])
            .collect(),
    };
    // The rollback target must be healthy before we break anything.
    let base = wait_healthy(&restored, &hopts(Duration::from_secs(15)))?;
    if !base.passed {
        return Err(EvidenceError::failed(format!(
            "the rollback target {} is not healthy before the drill: {}",
            plan.target, base.last_detail
        )));
    }
    let o = ctx.run("deploy", &plan.deploy_cmd, Duration::from_secs(120))?;
    m.deploy_exit = Some(exit_text(&o));
    if plan.failure == Failure::Kill {
        let h = wait_healthy(&health, &hopts(Duration::from_secs(15)))?;
        m.new_release_was_healthy = Some(h.passed);
    }
    let injected_at = Instant::now();
    if let Some(c) = &plan.inject_cmd {
        let o = ctx.run("inject", c, Duration::from_secs(60))?;
        m.inject_exit = Some(exit_text(&o));
    }
    // Detect: probe until the health check fails.
    let det = wait_unhealthy(&health, &hopts(plan.detect_timeout))?;
    m.detect_attempts = det.attempts;
    m.detect_detail = det.last_detail.clone();
    let rollback_from = if det.passed {
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
        det.decided_at
    } else {
        m.reason = format!(
            "the injected failure was not detected within {:.1}s (health kept passing)",
            plan.detect_timeout.as_secs_f64()
        );
        Instant::now()
    };
    m.rollback_start_ns = wall(rollback_from);
    m.rollback_from = Some(rollback_from);
    let cmd_start = Instant::now();
    let o = ctx.run("rollback", &plan.rollback_cmd, plan.rollback_timeout)?;
    m.rollback_cmd_exit = Some(exit_text(&o));
    m.rollback_cmd_seconds = Some(cmd_start.elapsed().as_secs_f64());
    if !o.success() && m.reason.is_empty() {
        m.reason = format!("the rollback command failed: {}", o.describe());
    }
    let left = plan
        .rollback_timeout
        .saturating_sub(rollback_from.elapsed())
        .max(Duration::from_millis(100));
    let h = wait_healthy(&restored, &hopts(left))?;
    m.restore_attempts = h.attempts;
    m.restore_detail = h.last_detail.clone();
    m.health_passed = h.passed;
    let done = if h.passed {
        h.decided_at
    } else {
        Instant::now()
    };
    m.rollback_seconds = done.saturating_duration_since(rollback_from).as_secs_f64();
    // Keep the timestamps and the figure consistent to the nanosecond.
    m.rollback_complete_ns = m.rollback_start_ns
        + i64::try_from(done.saturating_duration_since(rollback_from).as_nanos()).unwrap_or(0);
    if !h.passed && m.reason.is_empty() {
        m.reason = format!(
            "{} did not pass its health check within {:.1}s of detection: {}",
            plan.target,
            plan.rollback_timeout.as_secs_f64(),
            h.last_detail
        );
    }
    if let Some(rd) = rd {
        let st = rd.status()?;
        m.running_release_after = st.running_release();
        m.running_exe_release_after = st
            .running_exe_release
            .clone()
            .unwrap_or_else(|| "none".into());
        if m.health_passed && m.running_release_after != plan.target && m.reason.is_empty() {
            m.reason = format!(
                "the supervisor runs {}, not the rollback target {}",
                m.running_release_after, plan.target
            );
        }
    }
    Ok(())
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
