//! The validated configuration of one drill: [`Config::try_from`] a [`Cli`] (and its `--config`
//! file), once, before anything runs.

use std::path::PathBuf;
use std::time::Duration;

use evidence_core::drill::{Drill, DrillDefaults};
use evidence_core::health::Check;
use evidence_core::provenance::sha256_hex;
use evidence_core::{EvidenceError, Result};
use serde::Deserialize;
use trading_calendar::guard::SessionGuard;

use crate::{Cli, Failure, Platform};

/// The drill's defaults for the shared drill flags.
pub const DEFAULTS: DrillDefaults = DrillDefaults {
    tool: "rollback-drill",
    id_prefix: "rollback",
    output_name: "deploy_rollback_result.env",
    lock_name: "rollback-drill.lock",
};

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
    release_cmd: Option<String>,
    health: Option<Check>,
    restored_health: Option<Check>,
    detect_timeout_seconds: Option<f64>,
    rollback_timeout_seconds: Option<f64>,
    notes: Option<String>,
}

/// How the drill knows which release runs (`release_check` in the evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseCheck {
    /// Platform local: the supervisor's pid file and `/proc/<pid>/exe`, plus the body match.
    Supervisor,
    /// `--release-cmd`: its last non-empty stdout line.
    Command,
    /// The restored HTTP check's `body_contains` names the target release.
    HttpBody,
}

impl ReleaseCheck {
    /// The evidence value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseCheck::Supervisor => "supervisor",
            ReleaseCheck::Command => "command",
            ReleaseCheck::HttpBody => "http_body",
        }
    }
}

/// The resolved plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub(crate) platform: Platform,
    pub(crate) release: String,
    pub(crate) target: String,
    pub(crate) failure: Failure,
    pub(crate) run_dir: Option<PathBuf>,
    pub(crate) baseline_cmd: Option<String>,
    pub(crate) deploy_cmd: String,
    pub(crate) inject_cmd: Option<String>,
    pub(crate) rollback_cmd: String,
    pub(crate) stop_cmd: Option<String>,
    pub(crate) release_cmd: Option<String>,
    /// None for local: built from the run folder's port after the baseline.
    pub(crate) health: Option<Check>,
    pub(crate) restored_health: Option<Check>,
    pub(crate) restored_body: Option<String>,
    pub(crate) detect_timeout: Duration,
    pub(crate) rollback_timeout: Duration,
    pub(crate) notes: String,
    pub(crate) config_sha256: String,
}

/// Everything a run needs, validated.
#[derive(Debug)]
pub struct Config {
    /// The shared drill arguments, resolved.
    pub drill: Drill,
    /// The session guard.
    pub guard: SessionGuard,
    /// The plan.
    pub plan: Plan,
    /// `--stop-after`.
    pub stop_after: bool,
    /// How the release is checked.
    pub release_check: ReleaseCheck,
}

impl TryFrom<&Cli> for Config {
    type Error = EvidenceError;
    fn try_from(cli: &Cli) -> Result<Config> {
        let drill = cli.drill.resolve(&DEFAULTS)?;
        let plan = resolve(cli)?;
        if cli.stop_after && plan.stop_cmd.is_none() {
            return Err(EvidenceError::usage(format!(
                "--stop-after on platform {} needs --stop-cmd (or stop_cmd in --config)",
                plan.platform.as_str()
            )));
        }
        let release_check = release_check(&plan, drill.execute)?;
        let guard = SessionGuard::try_from(&cli.guard)?;
        Ok(Config {
            drill,
            guard,
            plan,
            stop_after: cli.stop_after,
            release_check,
        })
    }
}

impl Config {
    /// The targets the session guard judges: the platform (systemd, k8s: the host's real
    /// service) and the health checks' addresses.
    #[must_use]
    pub fn guard_targets(&self) -> Vec<String> {
        let mut t = Vec::new();
        if self.plan.platform != Platform::Local {
            t.push(format!("platform:{}", self.plan.platform.as_str()));
        }
        for c in [&self.plan.health, &self.plan.restored_health]
            .into_iter()
            .flatten()
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

/// The release check of the plan. With `--execute`, systemd and k8s need a command or an HTTP
/// body match naming the target: the check that detects the failure cannot prove the rollback.
fn release_check(plan: &Plan, execute: bool) -> Result<ReleaseCheck> {
    if plan.release_cmd.is_some() {
        return Ok(ReleaseCheck::Command);
    }
    if plan.platform == Platform::Local {
        return Ok(ReleaseCheck::Supervisor);
    }
    let body_names_target = |c: &Option<Check>| matches!(c, Some(Check::Http { body_contains: Some(b), .. }) if b.contains(&plan.target));
    let restored_body = plan
        .restored_body
        .as_ref()
        .is_some_and(|b| b.contains(&plan.target))
        && matches!(plan.health, Some(Check::Http { .. }));
    if body_names_target(&plan.restored_health) || restored_body {
        return Ok(ReleaseCheck::HttpBody);
    }
    if execute {
        return Err(EvidenceError::usage(format!(
            "platform {} needs a release check with --execute: --release-cmd CMD (prints the running release) or an HTTP restored check whose body names the rollback target {:?} (--restored-body-contains or restored_health.body_contains); the health check alone cannot tell the old release from a restarted new one",
            plan.platform.as_str(),
            plan.target
        )));
    }
    Ok(ReleaseCheck::Command)
}

fn load_file(path: &PathBuf) -> Result<(FileConfig, String)> {
    let bytes =
        std::fs::read(path).map_err(|e| EvidenceError::io("cannot read config", path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let label = path.display().to_string();
    let fc: FileConfig = yaml_serde::from_str(&text).map_err(|e| {
        let line = e.location().map_or(0, |l| l.line());
        EvidenceError::parse(
            &label,
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
            c.validate()
                .map_err(|e| EvidenceError::parse(&label, 0, field, "a valid check", e))?;
        }
    }
    for (field, v) in [
        ("detect_timeout_seconds", fc.detect_timeout_seconds),
        ("rollback_timeout_seconds", fc.rollback_timeout_seconds),
    ] {
        if let Some(v) = v
            && !(v.is_finite() && (0.001..=86_400.0).contains(&v))
        {
            return Err(EvidenceError::parse(
                &label,
                0,
                field,
                "seconds from 0.001 to 86400",
                v.to_string(),
            ));
        }
    }
    Ok((fc, sha256_hex(&bytes)))
}

const SVC: &str = "svc-ctl --run-dir \"$DRILL_RUN_DIR\"";

/// The commands of the local platform (svc-ctl), where none were given.
fn local_defaults(c: &mut Commands, failure: Failure) {
    c.baseline.get_or_insert_with(|| {
        format!("{SVC} deploy --release \"$DRILL_ROLLBACK_TARGET\" --wait-healthy 10")
    });
    c.deploy.get_or_insert_with(|| match failure {
        Failure::Health => {
            format!("{SVC} deploy --release \"$DRILL_RELEASE_VERSION\" --fail-health")
        }
        Failure::Kill => format!("{SVC} deploy --release \"$DRILL_RELEASE_VERSION\""),
    });
    if failure == Failure::Kill {
        c.inject.get_or_insert_with(|| format!("{SVC} kill"));
    }
    c.rollback.get_or_insert_with(|| format!("{SVC} rollback"));
    c.stop.get_or_insert_with(|| format!("{SVC} stop"));
}

#[derive(Debug, Default)]
struct Commands {
    baseline: Option<String>,
    deploy: Option<String>,
    inject: Option<String>,
    rollback: Option<String>,
    stop: Option<String>,
    release: Option<String>,
}

fn commands(cli: &Cli, fc: &mut FileConfig) -> Commands {
    let pick = |flag: &Option<String>, file: Option<String>| {
        flag.clone().or(file).filter(|c| !c.trim().is_empty())
    };
    Commands {
        baseline: pick(&cli.baseline_cmd, fc.baseline_cmd.take()),
        deploy: pick(&cli.deploy_cmd, fc.deploy_cmd.take()),
        inject: pick(&cli.inject_cmd, fc.inject_cmd.take()),
        rollback: pick(&cli.rollback_cmd, fc.rollback_cmd.take()),
        stop: pick(&cli.stop_cmd, fc.stop_cmd.take()),
        release: pick(&cli.release_cmd, fc.release_cmd.take()),
    }
}

fn releases(cli: &Cli, fc: &mut FileConfig) -> Result<(String, String)> {
    let release = cli
        .release_version
        .clone()
        .or(fc.release_version.take())
        .unwrap_or_else(|| "v2".into());
    let target = cli
        .rollback_target
        .clone()
        .or(fc.rollback_target.take())
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
        if v.is_empty() || v.chars().any(char::is_control) {
            return Err(EvidenceError::usage(format!(
                "{flag} must be a non-empty name, found {v:?}"
            )));
        }
    }
    Ok((release, target))
}

fn resolve(cli: &Cli) -> Result<Plan> {
    let (mut fc, sha) = match &cli.config {
        None => (FileConfig::default(), "none".to_string()),
        Some(p) => load_file(p)?,
    };
    let platform = cli.platform.or(fc.platform).unwrap_or(Platform::Local);
    let (release, target) = releases(cli, &mut fc)?;
    let failure = cli.failure.or(fc.failure).unwrap_or(Failure::Health);
    let health = match (&cli.health_url, &cli.health_cmd) {
        (Some(u), _) => Some(Check::http(u)),
        (None, Some(c)) => Some(Check::Command { command: c.clone() }),
        (None, None) => fc.health.take(),
    };
    if let Some(c) = &health {
        c.validate()
            .map_err(|e| EvidenceError::usage(format!("health check: {e}")))?;
    }
    let local = platform == Platform::Local;
    let mut cmds = commands(cli, &mut fc);
    let run_dir = cli.run_dir.clone().or(fc.run_dir.take());
    let run_dir = if local {
        local_defaults(&mut cmds, failure);
        Some(run_dir.unwrap_or_else(|| PathBuf::from("runtime/deploy/drill")))
    } else {
        run_dir
    };
    let need = |v: Option<String>, flag: &str| {
        v.ok_or_else(|| {
            EvidenceError::usage(format!(
                "platform {} needs {flag} (or its key in --config)",
                platform.as_str()
            ))
        })
    };
    let deploy_cmd = need(cmds.deploy, "--deploy-cmd")?;
    let rollback_cmd = need(cmds.rollback, "--rollback-cmd")?;
    if !local && health.is_none() {
        return Err(EvidenceError::usage(format!(
            "platform {} needs a health check: --health-url, --health-cmd or `health:` in --config",
            platform.as_str()
        )));
    }
    if !local && failure == Failure::Kill && cmds.inject.is_none() {
        return Err(EvidenceError::usage(
            "--failure kill needs --inject-cmd on this platform (e.g. systemctl kill -s KILL <unit>)",
        ));
    }
    let secs = |flag: Option<Duration>, file: Option<f64>, default: u64| {
        flag.or_else(|| file.map(Duration::from_secs_f64))
            .unwrap_or(Duration::from_secs(default))
    };
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
        baseline_cmd: cmds.baseline,
        deploy_cmd,
        inject_cmd: cmds.inject,
        rollback_cmd,
        stop_cmd: cmds.stop,
        release_cmd: cmds.release,
        health,
        restored_health: fc.restored_health,
        restored_body,
        detect_timeout: secs(cli.detect_timeout, fc.detect_timeout_seconds, 30),
        rollback_timeout: secs(cli.rollback_timeout, fc.rollback_timeout_seconds, 60),
        notes: cli.notes.clone().or(fc.notes).unwrap_or_default(),
        config_sha256: sha,
    })
}
