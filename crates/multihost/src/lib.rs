//! `multihost`: brings the multi-host prod-like topology up and down and reports its health, with
//! the original `bootstrap_prodlike_multi_host.sh` flags and evidence keys.
//!
//! Hosts come from an inventory (`--inventory`): with `--backend netns` (the embedded default,
//! root) they are network namespaces this tool creates on a bridge; with `--backend ssh` they exist
//! and are reached through each host's command prefix; the same code starts the services either
//! way. `h1` runs the Redis primary, a sentinel and the PostgreSQL primary; `h2` the replica, a
//! sentinel and the standby; `h3` the third sentinel. `status`/`health` write the original's JSON
//! report with `host_summary` built from the roles the servers report now.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{CommandFactory as _, Parser, ValueEnum};
use evidence_core::cli::{EXIT_STATUS_HELP, info, stdout_write};
use evidence_core::dotenv::EnvWriter;
use evidence_core::io::{Output, write_atomic};
use evidence_core::lock::LockFile;
use evidence_core::provenance::{KeyCase, Provenance};
use evidence_core::time::{format_utc, now_ns};
use evidence_core::{EvidenceError, Exit, Result};
use failover_core::inventory::{Backend, Inventory};
use failover_core::netns;
use failover_core::topology::{KINDS, Topology};

mod compose;

/// Bring the multi-host topology up or down, or report its status and health.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  multihost --action up --execute          # h1/h2/h3 namespaces, Redis + Sentinel + PostgreSQL\n  multihost --action health --execute      # live roles in docs/results/prodlike_multi_host_health_report.json\n  multihost --action down --execute        # no namespace, process or rule left\n\nWithout --execute nothing runs: each step is printed as `[dry-run] <step>` and recorded as simulated_ok.\nThe netns backend needs root.\n\n{EXIT_STATUS_HELP}\n  (1: a step failed, or health found a service down or roles inconsistent)"
    )
)]
pub struct Cli {
    /// up, down, status or health.
    #[arg(long, value_enum, default_value_t = Action::Up)]
    pub action: Action,
    /// How the hosts are reached (default: the inventory's; compose when --compose-file or
    /// --docker-bin is given).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Inventory: hosts, addresses, roles, command prefixes.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "configs/multihost/inventory.yaml"
    )]
    pub inventory: PathBuf,
    /// The original's multi-host compose file (compose backend).
    #[arg(long, value_name = "PATH")]
    pub compose_file: Option<PathBuf>,
    /// Project name (recorded; compose backend).
    #[arg(long, default_value = "quant-hft-prodlike-multi-host")]
    pub project_name: String,
    /// The original's primary env file (compose backend; must exist when given).
    #[arg(long, value_name = "PATH")]
    pub primary_env_file: Option<PathBuf>,
    /// The original's standby env file (compose backend; must exist when given).
    #[arg(long, value_name = "PATH")]
    pub standby_env_file: Option<PathBuf>,
    /// Evidence file (`-` for stdout).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "docs/results/prodlike_multi_host_bootstrap_result.env"
    )]
    pub output_file: Output,
    /// Health report JSON.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "docs/results/prodlike_multi_host_health_report.json"
    )]
    pub health_report: PathBuf,
    /// Docker binary (compose backend).
    #[arg(long, value_name = "PATH")]
    pub docker_bin: Option<PathBuf>,
    /// Accepted for compatibility; the health check is built in.
    #[arg(long, value_name = "PATH", hide = true)]
    pub health_check_script: Option<PathBuf>,
    /// Print the steps without running them (the default).
    #[arg(long, conflicts_with = "execute")]
    pub dry_run: bool,
    /// Run the steps for real.
    #[arg(long)]
    pub execute: bool,
    /// Deadline for `up`, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 90)]
    pub timeout: u64,
    /// Operator recorded in the provenance (default: $USER).
    #[arg(long)]
    pub operator: Option<String>,
    /// Folder of the lock file (one multihost/failover run at a time).
    #[arg(long, value_name = "DIR", default_value = "runtime/locks")]
    pub lock_dir: PathBuf,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Action {
    /// Create the hosts and start the services.
    Up,
    /// Stop the services and delete the hosts.
    Down,
    /// Print the live service rows and roles (JSON) on stdout.
    Status,
    /// Probe every service; write the health report.
    Health,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Down => "down",
            Action::Status => "status",
            Action::Health => "health",
        }
    }
}

struct Step {
    name: String,
    status: &'static str,
    duration_ms: u128,
    command: String,
    detail: String,
    started_ns: i64,
}

/// Run.
pub fn run(cli: Cli) -> Result<Exit> {
    for (flag, p) in [
        ("primary env file", &cli.primary_env_file),
        ("standby env file", &cli.standby_env_file),
    ] {
        if let Some(p) = p
            && !p.exists()
        {
            return Err(EvidenceError::usage(format!(
                "{flag} not found: {}",
                p.display()
            )));
        }
    }
    let inv = Inventory::load(&cli.inventory)?;
    // Called by the original's name (`make install-compat`): the original's compose flow.
    let called_as_original = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(std::ffi::OsStr::to_os_string))
        .is_some_and(|n| {
            n == "bootstrap_prodlike_multi_host" || n == "bootstrap_prodlike_multi_host.sh"
        });
    let backend = cli.backend.unwrap_or(
        if called_as_original || cli.compose_file.is_some() || cli.docker_bin.is_some() {
            Backend::Compose
        } else {
            inv.backend
        },
    );
    if backend == Backend::Compose {
        compose::files(&cli)?;
    }
    let dry = !cli.execute;
    let mut prov = Provenance::start(
        "multihost",
        env!("CARGO_PKG_VERSION"),
        cli.operator.as_deref(),
        dry,
    );
    prov.config_sha256 = inv.sha256.clone();
    let topo = Topology::new(inv, backend);
    let mut steps = Vec::new();
    let mut healthy = None;
    let mut status_json = None;
    if dry {
        for name in plan(cli.action, backend) {
            let line = format!("[dry-run] {name}");
            info(&line);
            steps.push(Step {
                name: name.clone(),
                status: "simulated_ok",
                duration_ms: 0,
                command: name,
                detail: "dry run: not executed".into(),
                started_ns: now_ns(),
            });
        }
    } else {
        if backend == Backend::Netns {
            netns::require_root("multihost --backend netns")?;
        }
        let _lock = LockFile::acquire(
            &cli.lock_dir.join("multihost.lock"),
            "a multihost or failover run",
        )?;
        let r = if backend == Backend::Compose {
            compose::execute(&cli, &mut steps, &mut healthy, &mut status_json)
        } else {
            execute(&cli, &topo, &mut steps, &mut healthy, &mut status_json)
        };
        if let Err(e) = r {
            let now = now_ns();
            steps.push(Step {
                name: format!("{}_failed", cli.action.as_str()),
                status: "failed",
                duration_ms: 0,
                command: cli.action.as_str().into(),
                detail: e.to_string(),
                started_ns: now,
            });
            evidence_core::cli::warn(&e.to_string());
        }
    }
    prov.finish();
    let failed = steps
        .iter()
        .find(|s| s.status == "failed")
        .map(|s| s.name.clone());
    let success = failed.is_none() && healthy != Some(false);
    let mut w = EnvWriter::new();
    w.push("MULTI_HOST_ACTION", cli.action.as_str())
        .push("MULTI_HOST_DRY_RUN", if dry { "1" } else { "0" })
        .push("MULTI_HOST_SUCCESS", success)
        .push("MULTI_HOST_TOTAL_STEPS", steps.len())
        .push("MULTI_HOST_FAILED_STEP", failed.clone().unwrap_or_default())
        .push(
            "MULTI_HOST_COMPOSE_FILE",
            cli.compose_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        )
        .push("MULTI_HOST_PROJECT_NAME", &cli.project_name)
        .push(
            "MULTI_HOST_PRIMARY_ENV_FILE",
            cli.primary_env_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        )
        .push(
            "MULTI_HOST_STANDBY_ENV_FILE",
            cli.standby_env_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        )
        .push("MULTI_HOST_HEALTH_REPORT", cli.health_report.display());
    for (i, s) in steps.iter().enumerate() {
        let n = i + 1;
        w.push(format!("STEP_{n}_NAME"), &s.name)
            .push(format!("STEP_{n}_STATUS"), s.status)
            .push(format!("STEP_{n}_DURATION_MS"), s.duration_ms)
            .push(format!("STEP_{n}_COMMAND"), &s.command);
    }
    w.push("MULTI_HOST_BACKEND", backend.as_str())
        .push("MULTI_HOST_INVENTORY", cli.inventory.display())
        .push(
            "MULTI_HOST_HEALTHY",
            healthy.map(|h| h.to_string()).unwrap_or_default(),
        );
    for (i, s) in steps.iter().enumerate() {
        let n = i + 1;
        w.push(format!("STEP_{n}_STARTED_UTC"), format_utc(s.started_ns))
            .push(format!("STEP_{n}_DETAIL"), &s.detail);
    }
    w.extend(prov.env_pairs(KeyCase::Upper));
    cli.output_file.write_all(w.render().as_bytes())?;
    if let Some(j) = status_json {
        stdout_write(&format!("{j}\n"))?;
    } else if let Some(p) = cli.output_file.path() {
        stdout_write(&format!("{}\n", p.display()))?;
    }
    info(&format!(
        "{} ({}): {}",
        cli.action.as_str(),
        backend.as_str(),
        if dry {
            "dry run".to_string()
        } else if success {
            "success".to_string()
        } else {
            format!("failed at {}", failed.unwrap_or_else(|| "health".into()))
        }
    ));
    Ok(Exit::pass_if(success))
}

fn plan(action: Action, backend: Backend) -> Vec<String> {
    let mut v = Vec::new();
    if backend == Backend::Compose {
        let names: &[&str] = match action {
            Action::Up => &[
                "compose_config",
                "compose_up_primary",
                "wait_healthy_primary",
                "compose_up_standby",
                "wait_healthy_standby",
                "health_check",
            ],
            Action::Down => &["compose_down"],
            Action::Status => &["compose_status"],
            Action::Health => &["health_check"],
        };
        return names.iter().map(|n| (*n).to_string()).collect();
    }
    match action {
        Action::Up => {
            if backend == Backend::Netns {
                v.push("hosts_up".to_string());
            }
            v.extend(KINDS.iter().map(|k| format!("start_{}", k.name())));
            v.push("sentinels_agree".into());
            v.push("health_check".into());
        }
        Action::Down => v.push("services_down".into()),
        Action::Status => v.push("status".into()),
        Action::Health => v.push("health_check".into()),
    }
    v
}

fn execute(
    cli: &Cli,
    topo: &Topology,
    steps: &mut Vec<Step>,
    healthy: &mut Option<bool>,
    status_json: &mut Option<String>,
) -> Result<()> {
    let t = Instant::now();
    let started = now_ns();
    match cli.action {
        Action::Up => {
            if topo.backend == Backend::Netns {
                netns::up(&topo.inv)?;
                steps.push(Step {
                    name: "hosts_up".into(),
                    status: "ok",
                    duration_ms: t.elapsed().as_millis(),
                    command: format!(
                        "ip netns add {} + bridge in {}",
                        topo.inv
                            .hosts
                            .iter()
                            .map(|h| h.name.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                        topo.inv.switch
                    ),
                    detail: topo
                        .inv
                        .hosts
                        .iter()
                        .map(|h| format!("{}={}", h.name, h.address))
                        .collect::<Vec<_>>()
                        .join(" "),
                    started_ns: started,
                });
            }
            topo.enter_client()?;
            topo.start_services(Duration::from_secs(cli.timeout), |name, d, detail| {
                info(&format!("{name}: ok ({} ms): {detail}", d.as_millis()));
                steps.push(Step {
                    name: name.to_string(),
                    status: "ok",
                    duration_ms: d.as_millis(),
                    command: name.to_string(),
                    detail: detail.to_string(),
                    started_ns: now_ns() - i64::try_from(d.as_nanos()).unwrap_or(0),
                });
            })?;
            health_step(cli, topo, steps, healthy)?;
        }
        Action::Down => {
            if topo.backend == Backend::Ssh {
                topo.enter_client()?;
            }
            topo.down(Duration::from_secs(5))?;
            steps.push(Step {
                name: "services_down".into(),
                status: "ok",
                duration_ms: t.elapsed().as_millis(),
                command: "stop every service; delete the hosts (netns)".into(),
                detail: "stopped".into(),
                started_ns: started,
            });
        }
        Action::Status | Action::Health => {
            if topo.backend == Backend::Netns {
                let absent: Vec<&str> = topo
                    .inv
                    .hosts
                    .iter()
                    .map(|h| h.name.as_str())
                    .filter(|n| !netns::exists(n))
                    .collect();
                if !absent.is_empty() {
                    return Err(EvidenceError::failed(format!(
                        "hosts {} do not exist: run multihost --action up --execute first",
                        absent.join(", ")
                    )));
                }
            }
            topo.enter_client()?;
            if cli.action == Action::Status {
                let states = topo.states(Duration::from_secs(2));
                let (h, report) = topo.report(&states, &cli.project_name, &compose_label(cli));
                *status_json = Some(report.to_pretty().trim_end().to_string());
                steps.push(Step {
                    name: "status".into(),
                    status: "ok",
                    duration_ms: t.elapsed().as_millis(),
                    command:
                        "ROLE / pg_is_in_recovery() / get-master-addr-by-name on every service"
                            .into(),
                    detail: format!("healthy={h}"),
                    started_ns: started,
                });
            } else {
                health_step(cli, topo, steps, healthy)?;
            }
        }
    }
    Ok(())
}

fn compose_label(cli: &Cli) -> String {
    cli.compose_file
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

fn health_step(
    cli: &Cli,
    topo: &Topology,
    steps: &mut Vec<Step>,
    healthy: &mut Option<bool>,
) -> Result<()> {
    let t = Instant::now();
    let started = now_ns();
    let states = topo.states(Duration::from_secs(2));
    let (h, report) = topo.report(&states, &cli.project_name, &compose_label(cli));
    let text = report.to_pretty();
    write_atomic(&cli.health_report, text.as_bytes())?;
    *healthy = Some(h);
    let summary = report
        .get("host_summary")
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v["role"].as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    steps.push(Step {
        name: "health_check".into(),
        status: if h { "ok" } else { "failed" },
        duration_ms: t.elapsed().as_millis(),
        command: format!("built-in health check -> {}", cli.health_report.display()),
        detail: format!(
            "{}; hosts {summary}{}",
            report.get("classification").as_str().unwrap_or("?"),
            report
                .get("command_error")
                .as_str()
                .filter(|s| !s.is_empty())
                .map(|s| format!("; {s}"))
                .unwrap_or_default()
        ),
        started_ns: started,
    });
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
