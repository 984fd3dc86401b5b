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
use deploy_core::envconfig::{EnvConfig, Form, GATE_STEP, StepSpec};
use deploy_core::rollout::{RolloutEvidence, StepRecord, StepStatus};
use deploy_core::svc::path_with_own_dir;
use evidence_core::cli::{EXIT_STATUS_HELP, info, stdout_write, warn};
use evidence_core::health::{Check, HealthOptions, wait_healthy};
use evidence_core::io::Output;
use evidence_core::lock::LockFile;
use evidence_core::process::{RunOptions, StepOutcome, run_shell};
use evidence_core::provenance::Provenance;
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Exit, Result, signals};

/// Run a rollout drill (precheck, deploy, fault injection, rollback, verify) from an env-config.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  rollout-orchestrator --env-config configs/deploy/environments/sim.yaml --inject-fault --execute\n  rollout-verify --evidence-file docs/results/rollout_result.env --require-fault-step\n\nWithout --execute nothing runs: each command is printed as `[dry-run] <command>` and recorded as\nsimulated_ok (ROLLOUT_DRY_RUN=1), which the verifier rejects.\n\n{EXIT_STATUS_HELP}\n  (1: a step failed or verify did not prove the previous release is back; evidence is written)"
    )
)]
pub struct Cli {
    /// Deploy env-config YAML (flat keys `*_cmd`, and/or the rich `steps:` form).
    #[arg(long, value_name = "PATH")]
    pub env_config: PathBuf,
    /// Where to write the evidence (`-` for stdout).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "docs/results/rollout_result.env"
    )]
    pub output_file: Output,
    /// Run the fault_injection step (fault_inject_cmd) after deploy.
    #[arg(long)]
    pub inject_fault: bool,
    /// Run the commands for real (default: dry run).
    #[arg(long)]
    pub execute: bool,
    /// Operator recorded in the provenance (default: $USER).
    #[arg(long)]
    pub operator: Option<String>,
    /// Folder of the per-environment lock file (`rollout-<environment>.lock`).
    #[arg(long, value_name = "DIR", default_value = "runtime/locks")]
    pub lock_dir: PathBuf,
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
pub fn run(cli: Cli) -> Result<Exit> {
    let cfg = EnvConfig::load(&cli.env_config)?;
    let steps = plan(&cfg, cli.inject_fault);
    let dry_run = !cli.execute;
    if cli.execute {
        for s in &steps {
            if let PlanStep::Cmd(spec) = s
                && spec.command.is_none()
            {
                return Err(EvidenceError::parse(
                    cfg.path.display().to_string(),
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
    }
    signals::install()?;
    let mut prov = Provenance::start(
        "rollout-orchestrator",
        env!("CARGO_PKG_VERSION"),
        cli.operator.as_deref(),
        dry_run,
    );
    prov.config_sha256 = cfg.sha256.clone();
    let mut ev = RolloutEvidence {
        env: cfg.environment.clone(),
        dry_run,
        success: false,
        failed_step: String::new(),
        steps: Vec::new(),
        result: String::new(),
        interrupted: false,
        config_form: cfg.form.as_str().to_string(),
        deploy_target: cfg.deploy_target.clone(),
        inject_fault: cli.inject_fault,
        release_before: "unknown".to_string(),
        release_after: "unknown".to_string(),
        rollback_ran: false,
        rollback_seconds: None,
        failure_reason: String::new(),
        provenance: prov,
    };
    let exit = if dry_run {
        simulate(&cli, &cfg, &steps, &mut ev)?
    } else {
        let lock_path = cli
            .lock_dir
            .join(format!("rollout-{}.lock", sanitize(&cfg.environment)));
        let _lock = LockFile::acquire(
            &lock_path,
            &format!("rollout of environment {}", cfg.environment),
        )?;
        execute(&cfg, &steps, &mut ev)?
    };
    ev.provenance.finish();
    cli.output_file.write_all(ev.render().as_bytes())?;
    if let Some(p) = cli.output_file.path() {
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

fn simulate(
    cli: &Cli,
    cfg: &EnvConfig,
    steps: &[PlanStep<'_>],
    ev: &mut RolloutEvidence,
) -> Result<Exit> {
    let to_stdout = cli.output_file.path().is_some();
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

fn execute(cfg: &EnvConfig, steps: &[PlanStep<'_>], ev: &mut RolloutEvidence) -> Result<Exit> {
    let env0 = base_env(cfg, "unknown");
    ev.release_before = match read_release(cfg, &env0) {
        Ok(r) => r,
        Err(EvidenceError::Interrupted) => {
            ev.interrupted = true;
            ev.result = "interrupted".to_string();
            ev.failure_reason = "interrupted before the first step".to_string();
            return Ok(Exit::Interrupted);
        }
        Err(e) => return Err(e),
    };
    let env = base_env(cfg, &ev.release_before);
    let mut failed = false;
    let mut deployed = false;
    let mut rollback_start: Option<Instant> = None;
    let mut verify_ok_at: Option<Instant> = None;
    let mut interrupted = false;
    for (i, s) in steps.iter().enumerate() {
        let name = s.name();
        if signals::interrupted() {
            interrupted = true;
            if ev.failed_step.is_empty() {
                ev.failed_step = name.to_string();
            }
            break;
        }
        // After a failure: only the rollback (if something was deployed) and verify.
        if failed && name != "rollback" && name != "verify" {
            continue;
        }
        if (name == "rollback" || name == "verify") && !deployed {
            continue;
        }
        if name == "verify"
            && ev
                .steps
                .iter()
                .any(|r| r.name == "rollback" && r.status == StepStatus::Failed)
        {
            continue;
        }
        if name == "rollback" {
            rollback_start = Some(Instant::now());
            ev.rollback_ran = true;
        }
        if name == "deploy" {
            deployed = true;
        }
        info(&format!("step {name}: running"));
        let (mut rec, end) = match s {
            PlanStep::Cmd(spec) => run_cmd_step(spec, i + 1, &env)?,
            PlanStep::Gate => run_gate(cfg, &env)?,
        };
        let mut end = end;
        if name == "verify" && matches!(end, StepEnd::Ok) {
            verify_ok_at = Some(Instant::now());
            if cfg.release_cmd.is_some() && ev.rollback_ran {
                let after = read_release(cfg, &env)?;
                if after != ev.release_before {
                    rec.status = StepStatus::Failed;
                    rec.detail = format!(
                        "{}; but release running after the rollback is {after}, not the previous release {}",
                        rec.detail, ev.release_before
                    );
                    end = StepEnd::Failed;
                    verify_ok_at = None;
                }
            }
        }
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
                    ev.failed_step = name.to_string();
                    ev.failure_reason = format!(
                        "step {name} failed: {}",
                        ev.steps.last().map_or("", |r| r.detail.as_str())
                    );
                }
                failed = true;
            }
            StepEnd::Interrupted => {
                interrupted = true;
                if ev.failed_step.is_empty() {
                    ev.failed_step = name.to_string();
                }
                break;
            }
        }
    }
    if interrupted {
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
    ev.release_after = match read_release(cfg, &env) {
        Ok(r) => r,
        Err(EvidenceError::Interrupted) => "unknown".to_string(),
        Err(e) => return Err(e),
    };
    if let (Some(a), Some(b)) = (rollback_start, verify_ok_at) {
        ev.rollback_seconds = Some(b.saturating_duration_since(a).as_secs_f64());
    }
    let verify_ok = ev
        .steps
        .iter()
        .any(|r| r.name == "verify" && r.status == StepStatus::Ok);
    let all_ran = ev.steps.len() == steps.len();
    let all_ok = ev.steps.iter().all(|r| r.status == StepStatus::Ok);
    ev.success = all_ran && all_ok && verify_ok;
    if !ev.success && ev.failure_reason.is_empty() {
        ev.failure_reason = "not every step ran".to_string();
    }
    ev.result = if ev.success { "success" } else { "failed" }.to_string();
    if cfg.form == Form::Flat && cfg.release_cmd.is_none() {
        warn(
            "no release_cmd in the env-config: the evidence cannot show which release runs before and after",
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
