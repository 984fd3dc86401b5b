//! Deploy env-config YAML (`configs/deploy/environments/*.yaml`), in the original's flat form and in
//! the richer form, which may share one file.
//!
//! Flat form (the original's keys, accepted as they are): `environment`, `deploy_target`,
//! `precheck_cmd`, `deploy_cmd`, `fault_inject_cmd`, `rollback_cmd`, `verify_cmd`; the failover keys
//! (`backup_sync_check_cmd`, `demote_primary_cmd`, `promote_standby_cmd`, `data_sync_lag_events`)
//! are tolerated and ignored here. Extra key of ours: `release_cmd`, a command that prints the
//! release currently running (used to prove that a rollback restored the previous release).
//!
//! Rich form: `defaults: {timeout_seconds}`, `steps: {<step>: {command, timeout_seconds, health,
//! health_deadline_seconds}}` for the five step names, and `health_gate: {checks, deadline_seconds,
//! interval_ms}` run after deploy. A rich step without `command` takes the flat `<step>_cmd`; giving
//! both with different text is an error. Unknown keys are errors (typos must not pass silently).

use std::path::{Path, PathBuf};
use std::time::Duration;

use evidence_core::health::Check;
use evidence_core::provenance::sha256_hex;
use evidence_core::{EvidenceError, Result};
use serde::Deserialize;

/// The step names, in the original's fixed order.
pub const STEP_NAMES: [&str; 5] = [
    "precheck",
    "deploy",
    "fault_injection",
    "rollback",
    "verify",
];

/// The name of the health-gate pseudo-step (rich form) that runs after deploy.
pub const GATE_STEP: &str = "health_gate";

/// Default step timeout when the config gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Which form the file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Only the original's flat keys.
    Flat,
    /// `steps:` and/or `health_gate:` present.
    Rich,
}

impl Form {
    /// `flat` or `rich`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Flat => "flat",
            Form::Rich => "rich",
        }
    }
}

/// One step of a rollout.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// Step name (one of [`STEP_NAMES`]).
    pub name: &'static str,
    /// The shell command, if configured.
    pub command: Option<String>,
    /// The config field the command came from (for messages).
    pub field: String,
    /// Kill the step after this long.
    pub timeout: Duration,
    /// Health checks that must pass after the command succeeded.
    pub health: Vec<Check>,
    /// Deadline for those checks.
    pub health_deadline: Duration,
}

/// The health gate after deploy.
#[derive(Debug, Clone)]
pub struct GateSpec {
    /// Checks that must all pass.
    pub checks: Vec<Check>,
    /// Deadline for each check.
    pub deadline: Duration,
    /// Pause between attempts.
    pub interval: Duration,
}

/// A parsed env-config.
#[derive(Debug, Clone)]
pub struct EnvConfig {
    /// The file.
    pub path: PathBuf,
    /// `environment` (`unknown` when absent, as in the original).
    pub environment: String,
    /// `deploy_target` (recorded in the evidence; the original never read it).
    pub deploy_target: String,
    /// `release_cmd`: prints the running release.
    pub release_cmd: Option<String>,
    /// Flat or rich.
    pub form: Form,
    /// The five steps in order (fault injection included; the caller drops it without
    /// `--inject-fault`).
    pub steps: Vec<StepSpec>,
    /// The health gate (rich form).
    pub gate: Option<GateSpec>,
    /// SHA-256 of the file.
    pub sha256: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    environment: Option<String>,
    deploy_target: Option<String>,
    precheck_cmd: Option<String>,
    deploy_cmd: Option<String>,
    fault_inject_cmd: Option<String>,
    rollback_cmd: Option<String>,
    verify_cmd: Option<String>,
    release_cmd: Option<String>,
    // Failover keys: tolerated (the failover orchestrator reads them).
    #[allow(dead_code)]
    backup_sync_check_cmd: Option<String>,
    #[allow(dead_code)]
    demote_primary_cmd: Option<String>,
    #[allow(dead_code)]
    promote_standby_cmd: Option<String>,
    #[allow(dead_code)]
    data_sync_lag_events: Option<yaml_serde::Value>,
    defaults: Option<RawDefaults>,
    steps: Option<RawSteps>,
    health_gate: Option<RawGate>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    timeout_seconds: Option<f64>,
    health_deadline_seconds: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSteps {
    precheck: Option<RawStep>,
    deploy: Option<RawStep>,
    fault_injection: Option<RawStep>,
    rollback: Option<RawStep>,
    verify: Option<RawStep>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawStep {
    command: Option<String>,
    timeout_seconds: Option<f64>,
    health: Option<Vec<Check>>,
    health_deadline_seconds: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGate {
    checks: Vec<Check>,
    deadline_seconds: Option<f64>,
    interval_ms: Option<u64>,
}

fn seconds(path: &str, field: &str, v: Option<f64>, default: Duration) -> Result<Duration> {
    match v {
        None => Ok(default),
        Some(x) if x.is_finite() && x > 0.0 && x < 1e7 => Ok(Duration::from_secs_f64(x)),
        Some(x) => Err(EvidenceError::parse(
            path,
            0,
            field,
            "a number of seconds > 0",
            x.to_string(),
        )),
    }
}

fn non_blank(s: Option<String>) -> Option<String> {
    s.filter(|c| !c.trim().is_empty())
}

/// One step: the flat key's command or the rich step's (they must agree), its timeout and
/// health checks. `defaults`: (timeout, health deadline).
fn parse_step(
    label: &str,
    name: &'static str,
    flat_key: &str,
    flat_cmd: Option<String>,
    rich: Option<RawStep>,
    defaults: (Duration, Duration),
) -> Result<StepSpec> {
    let rich = rich.unwrap_or_default();
    let flat_cmd = non_blank(flat_cmd);
    let rich_cmd = non_blank(rich.command);
    let rich_field = format!("steps.{name}.command");
    let (command, field) = match (flat_cmd, rich_cmd) {
        (Some(f), Some(r)) if f.trim() != r.trim() => {
            return Err(EvidenceError::parse(
                label,
                0,
                rich_field,
                format!("the same command as {flat_key} (or only one of them)"),
                format!("{r:?} vs {f:?}"),
            ));
        }
        (_, Some(r)) => (Some(r), rich_field),
        (Some(f), None) => (Some(f), flat_key.to_string()),
        (None, None) => (None, flat_key.to_string()),
    };
    let health = rich.health.unwrap_or_default();
    for (i, c) in health.iter().enumerate() {
        c.validate().map_err(|e| {
            EvidenceError::parse(
                label,
                0,
                format!("steps.{name}.health[{i}]"),
                "a valid check",
                e,
            )
        })?;
    }
    Ok(StepSpec {
        name,
        command,
        field,
        timeout: seconds(
            label,
            &format!("steps.{name}.timeout_seconds"),
            rich.timeout_seconds,
            defaults.0,
        )?,
        health,
        health_deadline: seconds(
            label,
            &format!("steps.{name}.health_deadline_seconds"),
            rich.health_deadline_seconds,
            defaults.1,
        )?,
    })
}

/// The health gate: at least one valid check, an interval of 1..=60000 ms.
fn parse_gate(label: &str, g: RawGate, def_health: Duration) -> Result<GateSpec> {
    if g.checks.is_empty() {
        return Err(EvidenceError::parse(
            label,
            0,
            "health_gate.checks",
            "at least one check",
            "an empty list",
        ));
    }
    for (i, c) in g.checks.iter().enumerate() {
        c.validate().map_err(|e| {
            EvidenceError::parse(
                label,
                0,
                format!("health_gate.checks[{i}]"),
                "a valid check",
                e,
            )
        })?;
    }
    let interval_ms = g.interval_ms.unwrap_or(200);
    if interval_ms == 0 || interval_ms > 60_000 {
        return Err(EvidenceError::parse(
            label,
            0,
            "health_gate.interval_ms",
            "1..=60000",
            interval_ms.to_string(),
        ));
    }
    Ok(GateSpec {
        checks: g.checks,
        deadline: seconds(
            label,
            "health_gate.deadline_seconds",
            g.deadline_seconds,
            def_health,
        )?,
        interval: Duration::from_millis(interval_ms),
    })
}

impl EnvConfig {
    /// Read and validate `path`. Every error names the file and the field (exit 2).
    pub fn load(path: &Path) -> Result<EnvConfig> {
        let bytes = std::fs::read(path)
            .map_err(|e| EvidenceError::io("cannot read env config", path, e))?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| {
            EvidenceError::parse(
                path.display().to_string(),
                0,
                "file",
                "UTF-8 text",
                "invalid UTF-8",
            )
        })?;
        let mut cfg = Self::parse(&text, &path.display().to_string())?;
        cfg.path = path.to_path_buf();
        cfg.sha256 = sha256_hex(&bytes);
        Ok(cfg)
    }

    /// Parse YAML `text`; `label` names the source in errors.
    pub fn parse(text: &str, label: &str) -> Result<EnvConfig> {
        if text.trim().is_empty()
            || text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Err(EvidenceError::parse(
                label,
                0,
                "file",
                "an env-config mapping",
                "an empty file",
            ));
        }
        let raw: Raw = yaml_serde::from_str(text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            let msg = e.to_string();
            let field = msg
                .split_once(": ")
                .map(|(f, _)| f)
                .filter(|f| !f.contains(' '))
                .unwrap_or("yaml")
                .to_string();
            EvidenceError::parse(label, line, field, "a valid env-config", msg)
        })?;
        let form = if raw.steps.is_some() || raw.health_gate.is_some() || raw.defaults.is_some() {
            Form::Rich
        } else {
            Form::Flat
        };
        let defaults = raw.defaults.unwrap_or_default();
        let def_timeout = seconds(
            label,
            "defaults.timeout_seconds",
            defaults.timeout_seconds,
            DEFAULT_TIMEOUT,
        )?;
        let def_health = seconds(
            label,
            "defaults.health_deadline_seconds",
            defaults.health_deadline_seconds,
            Duration::from_secs(30),
        )?;
        let rs = raw.steps.unwrap_or_default();
        let flat = [
            ("precheck_cmd", raw.precheck_cmd, rs.precheck),
            ("deploy_cmd", raw.deploy_cmd, rs.deploy),
            ("fault_inject_cmd", raw.fault_inject_cmd, rs.fault_injection),
            ("rollback_cmd", raw.rollback_cmd, rs.rollback),
            ("verify_cmd", raw.verify_cmd, rs.verify),
        ];
        let mut steps = Vec::new();
        for (name, (flat_key, flat_cmd, rich)) in STEP_NAMES.iter().zip(flat) {
            let d = (def_timeout, def_health);
            steps.push(parse_step(label, name, flat_key, flat_cmd, rich, d)?);
        }
        let gate = raw
            .health_gate
            .map(|g| parse_gate(label, g, def_health))
            .transpose()?;
        Ok(EnvConfig {
            path: PathBuf::from(label),
            environment: non_blank(raw.environment).unwrap_or_else(|| "unknown".to_string()),
            deploy_target: non_blank(raw.deploy_target).unwrap_or_default(),
            release_cmd: non_blank(raw.release_cmd),
            form,
            steps,
            gate,
            sha256: sha256_hex(text.as_bytes()),
        })
    }

    /// The step called `name`.
    #[must_use]
    pub fn step(&self, name: &str) -> Option<&StepSpec> {
        self.steps.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_form_as_the_original() {
        let c = EnvConfig::parse(
            "environment: sim\ndeploy_target: local-sim\nprecheck_cmd: 'true # not a comment'\ndeploy_cmd: \"svc-ctl deploy --release v2\"  # comment\nrollback_cmd: svc-ctl rollback\nverify_cmd: svc-ctl health\ndata_sync_lag_events: \"0\"\n",
            "sim.yaml",
        )
        .unwrap();
        assert_eq!(c.form, Form::Flat);
        assert_eq!(c.environment, "sim");
        assert_eq!(c.steps[0].command.as_deref(), Some("true # not a comment"));
        assert_eq!(
            c.steps[1].command.as_deref(),
            Some("svc-ctl deploy --release v2")
        );
        assert_eq!(c.steps[2].command, None);
        assert_eq!(c.steps[2].field, "fault_inject_cmd");
        assert_eq!(c.steps[3].timeout, DEFAULT_TIMEOUT);
        assert!(c.gate.is_none());
    }

    #[test]
    fn rich_form_with_gate() {
        let c = EnvConfig::parse(
            r"
environment: staging
deploy_cmd: d
defaults:
  timeout_seconds: 20
steps:
  deploy:
    timeout_seconds: 5
    health:
      - tcp: 127.0.0.1:1
  verify:
    command: v
health_gate:
  deadline_seconds: 3
  checks:
    - http: http://127.0.0.1:9/health
      body_contains: v2
    - command: svc-ctl health
",
            "s.yaml",
        )
        .unwrap();
        assert_eq!(c.form, Form::Rich);
        let d = c.step("deploy").unwrap();
        assert_eq!(d.command.as_deref(), Some("d"));
        assert_eq!(d.timeout, Duration::from_secs(5));
        assert_eq!(d.health.len(), 1);
        assert_eq!(c.step("precheck").unwrap().timeout, Duration::from_secs(20));
        assert_eq!(c.step("verify").unwrap().field, "steps.verify.command");
        let g = c.gate.unwrap();
        assert_eq!(g.checks.len(), 2);
        assert_eq!(g.deadline, Duration::from_secs(3));
    }

    #[test]
    fn bad_configs_name_the_field() {
        let cases = [
            ("", "file"),
            ("deploy_cmdd: x\n", "deploy_cmdd"),
            (
                "steps:\n  deploy:\n    timeout_seconds: -1\n",
                "steps.deploy.timeout_seconds",
            ),
            (
                "steps:\n  deploy:\n    timeout_seconds: .nan\n",
                "steps.deploy.timeout_seconds",
            ),
            (
                "deploy_cmd: a\nsteps:\n  deploy:\n    command: b\n",
                "steps.deploy.command",
            ),
            ("health_gate:\n  checks: []\n", "health_gate.checks"),
            (
                "health_gate:\n  checks:\n    - http: https://x/\n",
                "health_gate.checks[0]",
            ),
            ("steps:\n  deploi:\n    command: x\n", "deploi"),
            ("- a\n- b\n", "yaml"),
        ];
        for (text, field) in cases {
            let e = EnvConfig::parse(text, "bad.yaml").unwrap_err().to_string();
            assert!(e.starts_with("bad.yaml:"), "{e}");
            assert!(e.contains(field), "{text:?}: {e}");
        }
    }
}
