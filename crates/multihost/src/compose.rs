//! The compose backend: the original's multi-host compose file on a Docker engine (compose-core),
//! brought up in the original's two steps (the primary side with the primary env file, then the
//! standby and witness side with the standby env file and `--no-deps`). Rows carry the
//! `quant_hft.host`/`quant_hft.role` labels of the corrected file; roles are read from the servers
//! on their published ports (stack-core's probes), so `host_summary` follows the live roles.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use compose_core::{Engine, EngineOptions, Project};
use evidence_core::io::write_atomic;
use evidence_core::{EvidenceError, Result};
use failover_core::topology::{ReportContext, ServiceState, build_report};
use serde_json::Value as Json;
use stack_core::compose::creds_from_env_file;
use stack_core::report::Report;

use crate::{Action, Cli, Step};

/// The original's default compose file and env files.
pub const DEFAULT_FILE: &str = "infra/docker-compose.prodlike.multi-host.yaml";
/// See [`DEFAULT_FILE`].
pub const DEFAULT_PRIMARY_ENV: &str = "infra/env/prodlike-primary.env";
/// See [`DEFAULT_FILE`].
pub const DEFAULT_STANDBY_ENV: &str = "infra/env/prodlike-standby.env";

fn step(s: &compose_core::Step, name: String) -> Step {
    Step {
        name,
        status: if s.ok { "ok" } else { "failed" },
        duration_ms: s.duration.as_millis(),
        command: s.command_line(),
        detail: if s.ok {
            "ok".to_string()
        } else {
            s.failure_message()
        },
        started_ns: s.started_ns,
    }
}

/// The files of the compose backend, checked to exist (the original's errors, exit 2).
pub fn files(cli: &Cli) -> Result<(PathBuf, PathBuf, PathBuf)> {
    let file = cli
        .compose_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FILE));
    if !file.exists() {
        return Err(EvidenceError::usage(format!(
            "compose file not found: {}",
            file.display()
        )));
    }
    let p = cli
        .primary_env_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PRIMARY_ENV));
    let s = cli
        .standby_env_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STANDBY_ENV));
    for (what, f) in [("primary", &p), ("standby", &s)] {
        if !f.exists() {
            return Err(EvidenceError::usage(format!(
                "{what} env file not found: {}",
                f.display()
            )));
        }
    }
    Ok((file, p, s))
}

/// Run `cli.action` on the compose backend.
pub fn execute(
    cli: &Cli,
    steps: &mut Vec<Step>,
    healthy: &mut Option<bool>,
    status_json: &mut Option<String>,
) -> Result<()> {
    let (file, penv, senv) = files(cli)?;
    let engine = Engine::external(&EngineOptions {
        docker_bin: cli.docker_bin.clone(),
        compose_bin: None,
        docker_host: None,
    });
    let primary = Project::new(&engine, &file, &cli.project_name, Some(penv.clone()))?;
    let standby = Project::new(&engine, &file, &cli.project_name, Some(senv))?;
    match cli.action {
        Action::Up => {
            let (cfg, labels) = primary.service_labels()?;
            let ok = cfg.ok;
            steps.push(step(&cfg, "compose_config".into()));
            if !ok {
                return Ok(());
            }
            let side = |roles: &[&str]| -> Vec<String> {
                labels
                    .iter()
                    .filter(|(_, l)| {
                        l.get("quant_hft.role")
                            .is_some_and(|r| roles.contains(&r.as_str()))
                    })
                    .map(|(s, _)| s.clone())
                    .collect()
            };
            let deadline = Instant::now() + Duration::from_secs(cli.timeout);
            for (project, services, no_deps, suffix) in [
                (&primary, side(&["primary"]), false, "primary"),
                (&standby, side(&["standby", "witness"]), true, "standby"),
            ] {
                if services.is_empty() {
                    return Err(EvidenceError::failed(format!(
                        "{}: no service labelled quant_hft.role={suffix}",
                        file.display()
                    )));
                }
                let up = project.up_services(&services, no_deps, deadline)?;
                for s in up.steps.iter().filter(|s| s.name != "compose_config") {
                    let name = match s.name.as_str() {
                        "compose_up" => format!("compose_up_{suffix}"),
                        other => format!("{other}_{suffix}"),
                    };
                    steps.push(step(s, name));
                }
                if up.failed_step().is_some() || !up.healthy {
                    return Ok(());
                }
            }
            health(cli, &primary, &file, &penv, steps, healthy, None)?;
        }
        Action::Down => {
            let s = primary.down(false, Duration::from_secs(120))?;
            steps.push(step(&s, "compose_down".into()));
        }
        Action::Status => {
            health(
                cli,
                &primary,
                &file,
                &penv,
                steps,
                healthy,
                Some(status_json),
            )?;
            *healthy = None;
        }
        Action::Health => health(cli, &primary, &file, &penv, steps, healthy, None)?,
    }
    Ok(())
}

fn health(
    cli: &Cli,
    project: &Project,
    file: &Path,
    env: &Path,
    steps: &mut Vec<Step>,
    healthy: &mut Option<bool>,
    status_json: Option<&mut Option<String>>,
) -> Result<()> {
    let t = Instant::now();
    let started_ns = evidence_core::time::now_ns();
    let (ps, rows) = project.ps()?;
    if !ps.ok {
        steps.push(step(&ps, "compose_status".into()));
        *healthy = Some(false);
        return Ok(());
    }
    let creds = creds_from_env_file(Some(env))?;
    let probed = stack_core::compose::states(&rows, &creds, Duration::from_secs(2));
    let mut states = Vec::new();
    let mut hosts: Vec<(String, String)> = Vec::new();
    for r in &rows {
        let host = r.label("quant_hft.host").unwrap_or("").to_string();
        if !host.is_empty() && !hosts.iter().any(|(h, _)| *h == host) {
            hosts.push((host.clone(), String::new()));
        }
        let p = probed.iter().find(|s| s.service == r.service);
        let details = p.and_then(|s| s.probe.as_ref()).map(|p| &p.details);
        let live = details.and_then(|d| {
            if let Some(Json::String(role)) = d.get("role") {
                Some(role.clone())
            } else if let Some(Json::Bool(rec)) = d.get("in_recovery") {
                Some(if *rec { "standby" } else { "primary" }.to_string())
            } else if d.get("master_addr").is_some() {
                Some("sentinel".to_string())
            } else {
                None
            }
        });
        states.push(ServiceState {
            service: r.service.clone(),
            host,
            addr: r
                .publishers
                .iter()
                .find(|p| p.published_port > 0)
                .map(|p| format!("{}:{}", p.url, p.published_port))
                .unwrap_or_default(),
            state: r.state.clone(),
            health: p.map_or_else(|| "unhealthy".to_string(), |s| s.health.clone()),
            role: live.unwrap_or_else(|| "unreachable".to_string()),
            detail: p
                .and_then(|s| s.probe.as_ref())
                .map(|p| p.answer.clone())
                .unwrap_or_default(),
            names_master: None,
        });
    }
    let fname = file.display().to_string();
    let (h, report): (bool, Report) = build_report(
        &hosts,
        &states,
        &ReportContext {
            project: &cli.project_name,
            compose_file: &fname,
            backend: "compose",
            inventory: "",
            compare_sentinels: false,
        },
    );
    let detail = format!(
        "{}; {} containers",
        report.get("classification").as_str().unwrap_or("?"),
        rows.len()
    );
    if let Some(out) = status_json {
        *out = Some(report.to_pretty().trim_end().to_string());
        steps.push(Step {
            name: "compose_status".into(),
            status: "ok",
            duration_ms: t.elapsed().as_millis(),
            command: ps.command_line(),
            detail,
            started_ns,
        });
    } else {
        write_atomic(&cli.health_report, report.to_pretty().as_bytes())?;
        *healthy = Some(h);
        steps.push(Step {
            name: "health_check".into(),
            status: if h { "ok" } else { "failed" },
            duration_ms: t.elapsed().as_millis(),
            command: format!(
                "{} + probes -> {}",
                ps.command_line(),
                cli.health_report.display()
            ),
            detail,
            started_ns,
        });
    }
    Ok(())
}
