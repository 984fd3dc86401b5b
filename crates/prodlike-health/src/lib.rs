//! `prodlike-health`: is the prod-like stack healthy? Replaces `check_prodlike_health` (same flags,
//! same JSON keys plus extras), but asks every service what its clients would ask (Redis `PING`,
//! `ROLE`, link status and offset lag; each sentinel's master and `CKQUORUM`; PostgreSQL
//! `SELECT 1`, `pg_is_in_recovery()` and replay lag; Prometheus readiness and every target;
//! Alertmanager readiness), retrying until `--wait-timeout`.
//!
//! Backends: `native` (the stack `prodlike` started in `--run-dir`) or `compose` (rows of
//! `docker compose ps -a --format json`, or a saved `--ps-json-file`, judged as the original did).
//! A crashed process is unhealthy; a service never started is missing.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use compose_core::{Engine, EngineOptions, Project};
use evidence_core::cli::{EXIT_STATUS_HELP, info, stdout_write};
use evidence_core::duration::DurationParser;
use evidence_core::io::Output;
use evidence_core::provenance::Provenance;
use evidence_core::{EvidenceError, Exit, Result, signals};
use serde_json::Value as Json;
use stack_core::report::{
    ORIGINAL_REQUIRED, Report, ReportContext, default_required, judge, native_wait, render,
};
use stack_core::stack::{Stack, StackConfig};

/// Which stack to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Local processes started by `prodlike` in `--run-dir`.
    Native,
    /// A docker compose project (or a saved `--ps-json-file`).
    Compose,
}

/// Check the prod-like stack with real probes and write the health report JSON.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  prodlike-health --run-dir runtime/prodlike --wait-timeout 10\n  prodlike-health --ps-json-file saved_ps.json --report-json -\n\nThe report path is printed on stdout (or the report itself with --report-json -).\n\n{EXIT_STATUS_HELP}\n  (1: a required service is missing or unhealthy; 2: the check itself could not run,\n   e.g. the compose command failed)"
    )
)]
pub struct Cli {
    /// Judge this saved `docker compose ps --format json` output instead of a live stack.
    #[arg(long, value_name = "PATH", default_value = "")]
    pub ps_json_file: String,
    /// Compose file (compose backend; giving it selects that backend).
    #[arg(long, value_name = "PATH")]
    pub compose_file: Option<PathBuf>,
    /// Compose project name.
    #[arg(long, default_value = "quant-hft-prodlike")]
    pub project_name: String,
    /// Compose env file: passed to compose when it exists; its REDIS_PASSWORD and
    /// TIMESCALE_PASSWORD are what the probes authenticate with.
    #[arg(long, value_name = "PATH", default_value = "infra/env/prodlike.env")]
    pub env_file: PathBuf,
    /// Docker binary (compose backend; giving it selects that backend).
    #[arg(long, value_name = "PATH")]
    pub docker_bin: Option<String>,
    /// Where to write the report (`-` for stdout).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "docs/results/prodlike_health_report.json"
    )]
    pub report_json: Output,
    /// Comma-separated services that must be healthy (`redis-sentinel` = its three members).
    /// Default: every service of the native stack; the original's list for compose.
    #[arg(long, value_name = "LIST")]
    pub required_services: Option<String>,
    /// Backend (default: native, or compose when --compose-file, --docker-bin or --ps-json-file
    /// is given or when called as check_prodlike_health).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Run folder of the native stack.
    #[arg(long, value_name = "DIR", default_value = "runtime/prodlike")]
    pub run_dir: PathBuf,
    /// Keep probing until healthy or this long has passed (0: one round). `10`, `10s`, `500ms`.
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = DurationParser::secs())]
    pub wait_timeout: Duration,
    /// Timeout of each connect/read of a probe. `500`, `500ms`, `1s`.
    #[arg(long, value_name = "DURATION", default_value = "500", value_parser = DurationParser::millis().min(Duration::from_millis(1)))]
    pub probe_timeout_ms: Duration,
    /// Operator recorded in the provenance (default: $USER).
    #[arg(long)]
    pub operator: Option<String>,
}

/// The compose file used when none is given.
pub const DEFAULT_COMPOSE_FILE: &str = "infra/docker-compose.prodlike.yaml";

/// Which backend the flags select.
#[must_use]
pub fn backend_of(cli: &Cli) -> Backend {
    if let Some(b) = cli.backend {
        return b;
    }
    let called_as_original = std::env::args_os()
        .next()
        .and_then(|a| {
            PathBuf::from(a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .is_some_and(|n| n == "check_prodlike_health");
    if called_as_original
        || cli.compose_file.is_some()
        || cli.docker_bin.is_some()
        || !cli.ps_json_file.is_empty()
    {
        Backend::Compose
    } else {
        Backend::Native
    }
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(String::from)
        .collect()
}

/// Run the check.
pub fn run(cli: Cli) -> Result<Exit> {
    signals::install()?;
    let mut prov = Provenance::start(
        "prodlike-health",
        env!("CARGO_PKG_VERSION"),
        cli.operator.as_deref(),
        false,
    );
    let backend = backend_of(&cli);
    let probe_timeout = cli.probe_timeout_ms;
    let (report, verdict_ok, could_not_check) = match backend {
        Backend::Native => native(&cli, probe_timeout)?,
        Backend::Compose => compose(&cli)?,
    };
    prov.finish();
    let mut report = report;
    report.insert(
        "provenance",
        serde_json::to_value(&prov).unwrap_or(Json::Null),
    );
    cli.report_json.write_all(report.to_pretty().as_bytes())?;
    if let Some(p) = cli.report_json.path() {
        stdout_write(&format!("{}\n", p.display()))?;
    }
    info(&format!(
        "{}: {}{}",
        report.get("classification").as_str().unwrap_or("?"),
        if verdict_ok { "healthy" } else { "not healthy" },
        summary(&report)
    ));
    signals::check()?;
    Ok(if could_not_check {
        Exit::BadInput
    } else if verdict_ok {
        Exit::Pass
    } else {
        Exit::Breach
    })
}

fn summary(report: &Report) -> String {
    let mut parts = Vec::new();
    if let Some(m) = report.get("missing_services").as_array()
        && !m.is_empty()
    {
        parts.push(format!(
            "missing {}",
            m.iter()
                .filter_map(Json::as_str)
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
    if let Some(u) = report.get("unhealthy_services").as_array() {
        for e in u {
            parts.push(format!(
                "{} {}: {}",
                e["service"].as_str().unwrap_or("?"),
                e["state"].as_str().unwrap_or("?"),
                e["answer"].as_str().unwrap_or("")
            ));
        }
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join("; "))
    }
}

fn native(cli: &Cli, probe_timeout: Duration) -> Result<(Report, bool, bool)> {
    let stack = Stack::open(&cli.run_dir)?
        .unwrap_or_else(|| Stack::new(&cli.run_dir, StackConfig::default()));
    let required = cli
        .required_services
        .as_deref()
        .map_or_else(|| default_required(&stack), split_list);
    // No password file: nothing was ever started here; every service is missing.
    let password = stack.password().ok();
    let (states, verdict, attempts, waited, wall) = native_wait(
        &stack,
        password.as_deref(),
        &required,
        cli.wait_timeout,
        probe_timeout,
    );
    let ctx = ReportContext {
        backend: "native".into(),
        source: "probes".into(),
        run_dir: cli.run_dir.display().to_string(),
        attempts,
        waited_seconds: waited.as_secs_f64(),
        check_wall_ms: wall.as_secs_f64() * 1e3,
        ..ReportContext::default()
    };
    Ok((
        render(&states, &required, &verdict, &ctx),
        verdict.healthy,
        false,
    ))
}

fn compose(cli: &Cli) -> Result<(Report, bool, bool)> {
    let listed = cli.required_services.as_deref().map(split_list);
    let compose_file = cli
        .compose_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_COMPOSE_FILE));
    let mut ctx = ReportContext {
        backend: "compose".into(),
        attempts: 1,
        ..ReportContext::default()
    };
    if !cli.ps_json_file.is_empty() {
        // Judged as the original did; compose_file/project_name are left empty (the original
        // recorded them here too, which misleads).
        ctx.source = "ps_json_file".into();
        let p = PathBuf::from(&cli.ps_json_file);
        let t = std::fs::read_to_string(&p).map_err(|e| EvidenceError::io("cannot read", &p, e))?;
        let t0 = std::time::Instant::now();
        let rows = compose_core::parse_ps_json(&t, &cli.ps_json_file)?;
        let states = stack_core::compose::states_from_rows(&rows);
        ctx.check_wall_ms = t0.elapsed().as_secs_f64() * 1e3;
        let required = listed.unwrap_or_else(|| split_list(ORIGINAL_REQUIRED));
        let v = judge(&states, &required, false, false);
        return Ok((render(&states, &required, &v, &ctx), v.healthy, false));
    }
    ctx.compose_file = compose_file.display().to_string();
    ctx.project_name = cli.project_name.clone();
    ctx.source = "compose_ps+probes".into();
    let engine = Engine::external(&EngineOptions {
        docker_bin: cli.docker_bin.as_ref().map(PathBuf::from),
        ..EngineOptions::default()
    });
    let project = Project::new(
        &engine,
        &compose_file,
        &cli.project_name,
        Some(cli.env_file.clone()),
    )?;
    let creds = stack_core::compose::creds_from_env_file(Some(&cli.env_file))?;
    let h = stack_core::compose::health(
        &project,
        listed,
        &creds,
        cli.wait_timeout,
        cli.probe_timeout_ms,
    )?;
    ctx.attempts = h.attempts;
    ctx.waited_seconds = h.waited.as_secs_f64();
    ctx.check_wall_ms = h.wall.as_secs_f64() * 1e3;
    let failed = h.command_error.is_some();
    ctx.command_error = h.command_error.unwrap_or_default();
    let report = render(&h.states, &h.required, &h.verdict, &ctx);
    Ok((report, h.verdict.healthy, failed))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }
}
