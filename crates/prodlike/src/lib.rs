//! `prodlike`: bring the production-like stack up, down, list it and check its health (SOP 7).
//! Replaces `bootstrap_prodlike.sh`: same flags, same `prodlike_bootstrap_result.env` keys
//! (`PRODLIKE_*` and the `STEP_n_*` quartets), plus measured extras and provenance.
//!
//! Backends:
//! - `native` (default): real servers from Debian's packages as local processes in `--run-dir`
//!   (see `stack_core`), on `--listen` and ports from `--base-port`. `up` waits until every
//!   service answers its probes (Prometheus targets included) or `--wait-timeout` passes; `up`
//!   on a running stack is a no-op that says so; `down` stops what the run folder records (stale
//!   pid files of crashed services included) and checks that no process and no port is left.
//! - `compose`: `docker compose` over `--compose-file`, as the original (selected by
//!   `--backend compose`, by giving `--compose-file` or `--docker-bin`, or when called as
//!   `bootstrap_prodlike`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use compose_core::{Engine, EngineOptions, Project};
use evidence_core::cli::{EXIT_STATUS_HELP, info, stdout_write, warn};
use evidence_core::dotenv::EnvWriter;
use evidence_core::drill::{Drill, DrillArgs, DrillDefaults};
use evidence_core::duration::DurationParser;
use evidence_core::lock::LockFile;
use evidence_core::process::shell_quote;
use evidence_core::provenance::{KeyCase, Provenance};
use evidence_core::supervisor::{Stopped, is_same_process_alive};
use evidence_core::time::format_seconds;
use evidence_core::{EvidenceError, Exit, Result, signals};
use serde_json::json;
use stack_core::launch;
use stack_core::report::{self, ReportContext, default_required, native_wait};
use stack_core::stack::{NOT_PROVIDED, ServiceKind, Stack, StackConfig, extension};
use trading_calendar::guard::{GuardArgs, SessionGuard};

/// The drill defaults: evidence `prodlike_bootstrap_result.env`, lock `runtime/locks/prodlike.lock`.
pub const DEFAULTS: DrillDefaults = DrillDefaults {
    tool: "prodlike",
    id_prefix: "prodlike",
    output_name: "prodlike_bootstrap_result.env",
    lock_name: "prodlike.lock",
};

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Action {
    /// Start the stack and wait until it is healthy.
    Up,
    /// Stop the stack.
    Down,
    /// One JSON row per service on stdout.
    Ps,
    /// Check the stack's health.
    Health,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Up => "up",
            Action::Down => "down",
            Action::Ps => "ps",
            Action::Health => "health",
        }
    }
}

/// Which stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// Local processes in `--run-dir`.
    Native,
    /// docker compose.
    Compose,
}

/// Bring the prod-like stack up or down, list it, or check its health; write the evidence.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  prodlike --execute --action up        # native stack in runtime/prodlike, waits until healthy\n  prodlike --execute --action ps\n  prodlike --execute --action health\n  prodlike --execute --action down --purge\n\nWithout --execute nothing runs: each step is printed as `[dry-run] <command>` and recorded as\nsimulated_ok with PRODLIKE_DRY_RUN=1 and PRODLIKE_RESULT=dry_run.\nThe stack's password is generated into <run-dir>/secrets/password (0600); it is never printed.\n\n{EXIT_STATUS_HELP}\n  (1: the stack is not healthy; 2: a step could not run, e.g. a server did not start)"
    )
)]
pub struct Cli {
    /// up, down, ps or health.
    #[arg(long, value_enum, default_value = "up")]
    pub action: Action,
    /// Backend (default native; compose when --compose-file or --docker-bin is given or when
    /// called as bootstrap_prodlike).
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Compose file (compose backend).
    #[arg(long, value_name = "PATH")]
    pub compose_file: Option<PathBuf>,
    /// Compose project name.
    #[arg(long, default_value = "quant-hft-prodlike")]
    pub project_name: String,
    /// Compose env file (passed only when it exists; recorded anyway, as the original).
    #[arg(long, value_name = "PATH", default_value = "infra/env/prodlike.env")]
    pub env_file: PathBuf,
    /// Where the health report JSON goes (up and health); default
    /// `<results-dir>/prodlike_health_report.json`.
    #[arg(long, value_name = "PATH")]
    pub health_report: Option<PathBuf>,
    /// Docker binary (compose backend).
    #[arg(long, value_name = "PATH")]
    pub docker_bin: Option<String>,
    /// Accepted for compatibility; the health check is built in.
    #[arg(long, value_name = "PATH")]
    pub health_check_script: Option<PathBuf>,
    /// The shared drill flags: --execute, --dry-run, --operator, --drill-id, --results-dir,
    /// --output-file, --lock-file.
    #[command(flatten)]
    pub drill: DrillArgs,
    /// The session guard (applies only when --listen is not loopback).
    #[command(flatten)]
    pub guard: GuardArgs,
    /// Run folder of the native stack (pid files, logs, data, configs, password).
    #[arg(long, value_name = "DIR", default_value = "runtime/prodlike")]
    pub run_dir: PathBuf,
    /// Ports are base + offset (redis 1/2, sentinels 11-13, PostgreSQL 21/22, Prometheus 90,
    /// Alertmanager 93, exporters 100/121/187/188, webhook 500). Used when the stack is created.
    /// Default 17000.
    #[arg(long, value_name = "PORT")]
    pub base_port: Option<u16>,
    /// Listen address of every service (used when the stack is created).
    /// Default 127.0.0.1.
    #[arg(long, value_name = "IP")]
    pub listen: Option<String>,
    /// down: also remove the data, configs, logs and password.
    #[arg(long)]
    pub purge: bool,
    /// up: how long to wait for a healthy stack [default: 60s]; health: how long to keep
    /// probing [default: 0, one round]. `90`, `90s`, `2m`.
    #[arg(long, value_name = "DURATION", value_parser = DurationParser::secs())]
    pub wait_timeout: Option<Duration>,
    /// Comma-separated services the health verdict requires (default: all of the backend's).
    #[arg(long, value_name = "LIST")]
    pub required_services: Option<String>,
    /// Internal: serve the Alertmanager webhook receiver on ADDR, appending to FILE.
    #[arg(long, hide = true, num_args = 2, value_names = ["ADDR", "FILE"])]
    pub serve_webhook: Option<Vec<String>>,
}

/// The compose file used when none is given.
pub const DEFAULT_COMPOSE_FILE: &str = "infra/docker-compose.prodlike.yaml";

#[derive(Debug, Clone)]
struct Step {
    name: String,
    status: &'static str,
    duration_ms: u128,
    command: String,
    detail: String,
}

#[derive(Debug)]
struct Evidence {
    action: Action,
    backend: Backend,
    dry_run: bool,
    steps: Vec<Step>,
    failed_step: String,
    result: String,
    compose_file: String,
    extras: Vec<(String, String)>,
}

impl Evidence {
    fn success(&self) -> bool {
        self.failed_step.is_empty()
    }

    fn push(&mut self, step: Step) -> bool {
        let ok = step.status != "failed";
        if !ok && self.failed_step.is_empty() {
            self.failed_step = step.name.clone();
        }
        self.steps.push(step);
        ok
    }

    fn extra(&mut self, k: &str, v: impl ToString) {
        self.extras.push((k.to_string(), v.to_string()));
    }

    fn render(&self, cli: &Cli, health_report: &Path, drill: &Drill, prov: &Provenance) -> String {
        let mut w = EnvWriter::new();
        w.push("PRODLIKE_ACTION", self.action.as_str())
            .push("PRODLIKE_DRY_RUN", if self.dry_run { "1" } else { "0" })
            .push("PRODLIKE_SUCCESS", self.success())
            .push("PRODLIKE_TOTAL_STEPS", self.steps.len())
            .push("PRODLIKE_FAILED_STEP", &self.failed_step)
            .push("PRODLIKE_COMPOSE_FILE", &self.compose_file)
            .push("PRODLIKE_PROJECT_NAME", &cli.project_name)
            .push("PRODLIKE_ENV_FILE", cli.env_file.display())
            .push("PRODLIKE_HEALTH_REPORT", health_report.display());
        for (i, s) in self.steps.iter().enumerate() {
            let n = i + 1;
            w.push(format!("STEP_{n}_NAME"), &s.name)
                .push(format!("STEP_{n}_STATUS"), s.status)
                .push(format!("STEP_{n}_DURATION_MS"), s.duration_ms)
                .push(format!("STEP_{n}_COMMAND"), &s.command);
        }
        w.push(
            "PRODLIKE_BACKEND",
            match self.backend {
                Backend::Native => "native",
                Backend::Compose => "compose",
            },
        )
        .push("PRODLIKE_RESULT", &self.result);
        for (i, s) in self.steps.iter().enumerate() {
            w.push(format!("STEP_{}_DETAIL", i + 1), &s.detail);
        }
        w.push("PRODLIKE_DRILL_ID", drill.id.as_str());
        w.extend(self.extras.iter().cloned());
        w.extend(prov.env_pairs(KeyCase::Upper));
        w.render()
    }
}

fn backend_of(cli: &Cli) -> Backend {
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
        .is_some_and(|n| n == "bootstrap_prodlike" || n == "bootstrap_prodlike.sh");
    if called_as_original || cli.compose_file.is_some() || cli.docker_bin.is_some() {
        Backend::Compose
    } else {
        Backend::Native
    }
}

/// Run the tool.
pub fn run(cli: Cli) -> Result<Exit> {
    if let Some(v) = &cli.serve_webhook {
        let (addr, file) = (&v[0], PathBuf::from(&v[1]));
        stack_core::webhook::serve(addr, &file)?;
        return Ok(Exit::Pass);
    }
    let drill = cli.drill.resolve(&DEFAULTS)?;
    let health_report = match &cli.health_report {
        Some(p) => {
            evidence_core::drill::check_output_path("--health-report", p)?;
            p.clone()
        }
        None => drill.result_path("prodlike_health_report.json")?,
    };
    let listen = cli.listen.clone().unwrap_or_else(|| "127.0.0.1".into());
    if listen.parse::<std::net::IpAddr>().is_err() {
        return Err(EvidenceError::usage(format!(
            "--listen must be an IP address, found {listen:?}"
        )));
    }
    let backend = backend_of(&cli);
    let compose_file = cli
        .compose_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_COMPOSE_FILE));
    if backend == Backend::Compose && !compose_file.exists() {
        return Err(EvidenceError::usage(format!(
            "compose file not found: {}",
            compose_file.display()
        )));
    }
    let dry_run = drill.dry_run();
    let guard = SessionGuard::try_from(&cli.guard)?;
    let outcome = guard.check(guard.now(), &[listen.as_str()])?;
    signals::install()?;
    let mut prov = Provenance::start(
        "prodlike",
        env!("CARGO_PKG_VERSION"),
        Some(&drill.operator),
        dry_run,
    );
    if backend == Backend::Compose {
        prov = prov.with_config_file(&compose_file)?;
    }
    let mut ev = Evidence {
        action: cli.action,
        backend,
        dry_run,
        steps: Vec::new(),
        failed_step: String::new(),
        result: String::new(),
        compose_file: compose_file.display().to_string(),
        extras: vec![(
            "PRODLIKE_SESSION_GUARD".to_string(),
            outcome.status.as_str().to_string(),
        )],
    };
    let ctx = Ctx {
        cli: &cli,
        drill: &drill,
        health_report: &health_report,
    };
    let exit = match (backend, dry_run) {
        (_, true) => simulate(&ctx, backend, &compose_file, &mut ev)?,
        (Backend::Native, false) => {
            let _lock = match cli.action {
                Action::Up | Action::Down => Some(LockFile::acquire(
                    &drill.lock_file,
                    &format!("prodlike {}", cli.action.as_str()),
                )?),
                Action::Ps | Action::Health => None,
            };
            native(&ctx, &mut ev)?
        }
        (Backend::Compose, false) => compose(&ctx, &compose_file, &mut ev)?,
    };
    prov.finish();
    drill
        .output
        .write_all(ev.render(&cli, &health_report, &drill, &prov).as_bytes())?;
    match drill.output.path() {
        Some(p) if cli.action != Action::Ps => stdout_write(&format!("{}\n", p.display()))?,
        Some(p) => info(&format!("evidence: {}", p.display())),
        None => {}
    }
    Ok(exit)
}

/// What every step of a run needs.
struct Ctx<'a> {
    cli: &'a Cli,
    drill: &'a Drill,
    health_report: &'a Path,
}

fn step(name: &str, status: &'static str, t0: Instant, command: String, detail: String) -> Step {
    Step {
        name: name.to_string(),
        status,
        duration_ms: t0.elapsed().as_millis(),
        command,
        detail,
    }
}

fn compose_project(cli: &Cli, compose_file: &Path) -> Result<Project> {
    let engine = Engine::external(&EngineOptions {
        docker_bin: cli.docker_bin.as_ref().map(PathBuf::from),
        ..EngineOptions::default()
    });
    Project::new(
        &engine,
        compose_file,
        &cli.project_name,
        Some(cli.env_file.clone()),
    )
}

fn quote_argv(v: &[OsString]) -> String {
    v.iter()
        .map(|a| shell_quote(&a.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn planned(cli: &Cli, backend: Backend, compose_file: &Path) -> Result<Vec<(String, String)>> {
    Ok(match backend {
        Backend::Compose => {
            let project = compose_project(cli, compose_file)?;
            let ps = project.command_line(&["ps", "-a"]);
            match cli.action {
                Action::Up => vec![
                    ("compose_up".into(), project.command_line(&["up", "-d"])),
                    ("health_check".into(), format!("{ps}; probe every service")),
                ],
                Action::Down => vec![(
                    "compose_down".into(),
                    project.command_line(&["down", "--remove-orphans"]),
                )],
                Action::Ps => vec![("compose_ps".into(), ps)],
                Action::Health => {
                    vec![("health_check".into(), format!("{ps}; probe every service"))]
                }
            }
        }
        Backend::Native => {
            let stack = native_stack(cli).unwrap_or_else(|_| new_stack(cli));
            match cli.action {
                Action::Up => {
                    let mut v: Vec<(String, String)> = stack
                        .kinds()
                        .into_iter()
                        .map(|k| {
                            let spec = stack.spec(k, "");
                            (
                                format!("start_{}", k.name()),
                                quote_argv(&launch::argv(&spec)),
                            )
                        })
                        .collect();
                    v.push(("health_check".into(), health_text(&stack)));
                    v
                }
                Action::Down => stack
                    .kinds()
                    .into_iter()
                    .rev()
                    .map(|k| {
                        (
                            format!("stop_{}", k.name()),
                            format!("stop {} (SIGTERM, then SIGKILL)", k.name()),
                        )
                    })
                    .collect(),
                Action::Ps => vec![(
                    "native_ps".into(),
                    format!("ps of {}", stack.run_dir.display()),
                )],
                Action::Health => vec![("health_check".into(), health_text(&stack))],
            }
        }
    })
}

fn health_text(stack: &Stack) -> String {
    format!(
        "probe {} services of {} (prodlike-health --run-dir {})",
        stack.kinds().len(),
        stack.run_dir.display(),
        shell_quote(&stack.run_dir.display().to_string())
    )
}

fn simulate(
    ctx: &Ctx<'_>,
    backend: Backend,
    compose_file: &Path,
    ev: &mut Evidence,
) -> Result<Exit> {
    let cli = ctx.cli;
    let to_stdout = ctx.drill.output.path().is_some() && cli.action != Action::Ps;
    for (name, command) in planned(cli, backend, compose_file)? {
        let line = format!("[dry-run] {command}\n");
        if to_stdout {
            stdout_write(&line)?;
        } else {
            info(line.trim_end());
        }
        ev.push(Step {
            name,
            status: "simulated_ok",
            duration_ms: 0,
            command,
            detail: "dry run: not executed".into(),
        });
    }
    ev.result = "dry_run".into();
    Ok(Exit::Pass)
}

fn new_stack(cli: &Cli) -> Stack {
    let mut cfg = StackConfig {
        base_port: cli
            .base_port
            .unwrap_or(stack_core::stack::DEFAULT_BASE_PORT),
        ..StackConfig::default()
    };
    cfg.default.listen = cli.listen.clone().unwrap_or_else(|| "127.0.0.1".into());
    if let Ok(exe) = std::env::current_exe() {
        cfg.webhook_cmd = vec![exe.display().to_string(), "--serve-webhook".into()];
    }
    Stack::new(&cli.run_dir, cfg)
}

/// The stack recorded in the run folder, or a new one from the flags.
fn native_stack(cli: &Cli) -> Result<Stack> {
    match Stack::open(&cli.run_dir)? {
        Some(s) => {
            if cli.base_port.is_some_and(|b| b != s.config.base_port)
                || cli
                    .listen
                    .as_ref()
                    .is_some_and(|l| *l != s.config.default.listen)
            {
                warn(&format!(
                    "{} holds a stack on {}:{}+; --base-port/--listen apply to new stacks only",
                    cli.run_dir.display(),
                    s.config.default.listen,
                    s.config.base_port
                ));
            }
            Ok(s)
        }
        None => Ok(new_stack(cli)),
    }
}

fn required(cli: &Cli, stack: &Stack) -> Vec<String> {
    cli.required_services.as_deref().map_or_else(
        || default_required(stack),
        |s| {
            s.split(',')
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        },
    )
}

fn native(ctx: &Ctx<'_>, ev: &mut Evidence) -> Result<Exit> {
    let cli = ctx.cli;
    let stack = native_stack(cli)?;
    ev.extra("PRODLIKE_RUN_DIR", cli.run_dir.display());
    ev.extra("PRODLIKE_LISTEN", &stack.config.default.listen);
    ev.extra("PRODLIKE_BASE_PORT", stack.config.base_port);
    ev.extra("PRODLIKE_NOT_PROVIDED", NOT_PROVIDED.join(","));
    ev.extra("PRODLIKE_EXTENSION", extension());
    match cli.action {
        Action::Up => native_up(ctx, &stack, ev),
        Action::Down => native_down(ctx, &stack, ev),
        Action::Ps => native_ps(&stack, ev),
        Action::Health => {
            let wait = cli.wait_timeout.unwrap_or(Duration::ZERO);
            native_health(ctx, &stack, ev, wait, Instant::now())
        }
    }
}

fn native_up(ctx: &Ctx<'_>, stack: &Stack, ev: &mut Evidence) -> Result<Exit> {
    let cli = ctx.cli;
    let t_up = Instant::now();
    let deadline = t_up + cli.wait_timeout.unwrap_or(Duration::from_secs(60));
    let kinds = stack.kinds();
    let running: Vec<bool> = kinds
        .iter()
        .map(|k| launch::supervisor(stack, *k).running().map(|r| r.is_some()))
        .collect::<Result<_>>()?;
    let already = running.iter().all(|r| *r);
    ev.extra("PRODLIKE_ALREADY_RUNNING", already);
    if already {
        info(&format!(
            "the stack in {} is already running ({} services); nothing started",
            stack.run_dir.display(),
            kinds.len()
        ));
        let exit = native_health(
            ctx,
            stack,
            ev,
            deadline.saturating_duration_since(Instant::now()),
            t_up,
        )?;
        if ev.success() {
            ev.result = "already_running".into();
        }
        return Ok(exit);
    }
    let pw = launch::prepare(stack)?;
    for k in &kinds {
        let t0 = Instant::now();
        let spec = stack.spec(*k, &pw);
        let command = quote_argv(&launch::argv(&spec));
        match launch::start_one(stack, *k, &pw, deadline) {
            Ok(s) => {
                let detail = if s.newly_started {
                    format!(
                        "pid {} ready after {}s",
                        s.running.pid,
                        format_seconds(s.took)
                    )
                } else {
                    format!("pid {} was already running", s.running.pid)
                };
                ev.push(step(
                    &format!("start_{}", k.name()),
                    "ok",
                    t0,
                    command,
                    detail,
                ));
            }
            Err(EvidenceError::Interrupted) => {
                ev.push(step(
                    &format!("start_{}", k.name()),
                    "failed",
                    t0,
                    command,
                    "interrupted".into(),
                ));
                ev.result = "interrupted".into();
                return Err(EvidenceError::Interrupted);
            }
            Err(e) => {
                let msg = e.to_string();
                ev.push(step(
                    &format!("start_{}", k.name()),
                    "failed",
                    t0,
                    command,
                    msg.clone(),
                ));
                ev.result = "failed".into();
                ev.extra("PRODLIKE_FAILURE_REASON", &msg);
                warn(&format!(
                    "{} did not start: {msg}; what started keeps running (prodlike --execute --action down --run-dir {})",
                    k.name(),
                    stack.run_dir.display()
                ));
                return Ok(Exit::BadInput);
            }
        }
    }
    ev.extra(
        "PRODLIKE_READY_SECONDS",
        format!("{:.3}", t_up.elapsed().as_secs_f64()),
    );
    native_health(
        ctx,
        stack,
        ev,
        deadline.saturating_duration_since(Instant::now()),
        t_up,
    )
}

fn native_health(
    ctx: &Ctx<'_>,
    stack: &Stack,
    ev: &mut Evidence,
    wait: Duration,
    t_up: Instant,
) -> Result<Exit> {
    let cli = ctx.cli;
    let t0 = Instant::now();
    let req = required(cli, stack);
    let pw = stack.password().ok();
    let (states, verdict, attempts, waited, wall) =
        native_wait(stack, pw.as_deref(), &req, wait, Duration::from_millis(500));
    let rctx = ReportContext {
        backend: "native".into(),
        source: "probes".into(),
        run_dir: stack.run_dir.display().to_string(),
        attempts,
        waited_seconds: waited.as_secs_f64(),
        check_wall_ms: wall.as_secs_f64() * 1e3,
        ..ReportContext::default()
    };
    let mut rep = report::render(&states, &req, &verdict, &rctx);
    let mut prov = Provenance::start(
        "prodlike",
        env!("CARGO_PKG_VERSION"),
        Some(&ctx.drill.operator),
        false,
    );
    prov.finish();
    rep.insert(
        "provenance",
        serde_json::to_value(&prov).unwrap_or_default(),
    );
    evidence_core::io::write_atomic(ctx.health_report, rep.to_pretty().as_bytes())?;
    let mut detail = format!(
        "{} after {} round(s){}",
        verdict.classification,
        attempts,
        if verdict.healthy {
            String::new()
        } else {
            format!(": {}", describe_bad(&rep))
        }
    );
    if verdict.healthy && cli.action == Action::Up {
        let s = t_up.elapsed().as_secs_f64();
        ev.extra("PRODLIKE_HEALTHY_SECONDS", format!("{s:.3}"));
        detail.push_str(&format!("; healthy {s:.3}s after up started"));
    }
    ev.extra("PRODLIKE_HEALTH_CLASSIFICATION", &verdict.classification);
    ev.extra(
        "PRODLIKE_HEALTH_CHECK_WALL_MS",
        format!("{:.1}", wall.as_secs_f64() * 1e3),
    );
    let ok = ev.push(step(
        "health_check",
        if verdict.healthy { "ok" } else { "failed" },
        t0,
        health_text(stack),
        detail.clone(),
    ));
    if ok {
        ev.result = "success".into();
        info(&format!("healthy: {detail}"));
        Ok(Exit::Pass)
    } else {
        ev.result = "failed".into();
        ev.extra("PRODLIKE_FAILURE_REASON", &detail);
        warn(&format!("not healthy: {detail}"));
        Ok(Exit::Breach)
    }
}

fn describe_bad(rep: &report::Report) -> String {
    let mut parts = Vec::new();
    if let Some(m) = rep.get("missing_services").as_array()
        && !m.is_empty()
    {
        let names: Vec<&str> = m.iter().filter_map(|v| v.as_str()).collect();
        parts.push(format!("missing {}", names.join(",")));
    }
    for u in rep
        .get("unhealthy_services")
        .as_array()
        .into_iter()
        .flatten()
    {
        parts.push(format!(
            "{} {}: {}",
            u["service"].as_str().unwrap_or("?"),
            u["state"].as_str().unwrap_or("?"),
            u["answer"].as_str().unwrap_or("")
        ));
    }
    parts.join("; ")
}

fn native_down(ctx: &Ctx<'_>, stack: &Stack, ev: &mut Evidence) -> Result<Exit> {
    let cli = ctx.cli;
    let grace = Duration::from_secs(10);
    let mut kinds = ServiceKind::all();
    kinds.reverse();
    let mut pids = Vec::new();
    for k in kinds {
        let t0 = Instant::now();
        let sup = launch::supervisor(stack, k);
        let recorded = sup.recorded()?;
        if let Some(r) = &recorded {
            pids.push((k, r.pid, r.start_ticks));
        }
        let command = format!(
            "stop {} (SIGTERM, SIGKILL after {})",
            k.name(),
            format_seconds(grace)
        );
        match launch::stop(stack, k, grace) {
            Ok(how) => {
                let detail = match (how, &recorded) {
                    (Stopped::NotRunning, Some(r)) => {
                        format!("pid {} had already exited; stale pid file removed", r.pid)
                    }
                    (Stopped::NotRunning, None) => "not running".into(),
                    (Stopped::Terminated, Some(r)) => format!("pid {} exited after SIGTERM", r.pid),
                    (Stopped::Killed, Some(r)) => {
                        format!("pid {} killed after the grace period", r.pid)
                    }
                    (_, None) => "stopped".into(),
                };
                if recorded.is_some() {
                    ev.push(step(
                        &format!("stop_{}", k.name()),
                        "ok",
                        t0,
                        command,
                        detail,
                    ));
                }
            }
            Err(e) => {
                ev.push(step(
                    &format!("stop_{}", k.name()),
                    "failed",
                    t0,
                    command,
                    e.to_string(),
                ));
            }
        }
    }
    // Proof: no process of the stack left, no port of the stack bound.
    let t0 = Instant::now();
    let alive: Vec<String> = pids
        .iter()
        .filter(|(_, pid, ticks)| is_same_process_alive(*pid, *ticks))
        .map(|(k, pid, _)| format!("{} pid {pid}", k.name()))
        .collect();
    let bound: Vec<String> = ServiceKind::all()
        .into_iter()
        .filter(|k| {
            stack.addr(*k).parse().ok().is_some_and(|a| {
                std::net::TcpStream::connect_timeout(&a, Duration::from_millis(200)).is_ok()
            })
        })
        .map(|k| stack.addr(k))
        .collect();
    let clean = alive.is_empty() && bound.is_empty();
    ev.extra("PRODLIKE_PROCESSES_LEFT", alive.len());
    ev.extra("PRODLIKE_PORTS_STILL_BOUND", bound.join(","));
    ev.push(step(
        "verify_down",
        if clean { "ok" } else { "failed" },
        t0,
        format!(
            "check that no process and no port of the stack in {} is left",
            stack.run_dir.display()
        ),
        if clean {
            format!(
                "{} processes stopped; {} ports free",
                pids.len(),
                ServiceKind::all().len()
            )
        } else {
            format!("left: {} {}", alive.join(","), bound.join(","))
        },
    ));
    if cli.purge && clean {
        let t0 = Instant::now();
        let r = launch::purge(stack, &[]);
        ev.push(step(
            "purge",
            if r.is_ok() { "ok" } else { "failed" },
            t0,
            format!(
                "remove the data, configs, logs and password in {}",
                stack.run_dir.display()
            ),
            r.as_ref()
                .map_or_else(ToString::to_string, |()| "removed".into()),
        ));
    }
    ev.result = if ev.success() { "success" } else { "failed" }.into();
    Ok(if ev.success() {
        Exit::Pass
    } else {
        Exit::BadInput
    })
}

fn native_ps(stack: &Stack, ev: &mut Evidence) -> Result<Exit> {
    let t0 = Instant::now();
    let mut out = String::new();
    for k in stack.kinds() {
        let sup = launch::supervisor(stack, k);
        let rec = sup.recorded()?;
        let alive = sup.running()?.is_some();
        let state = match (&rec, alive) {
            (None, _) => "not_started",
            (Some(_), false) => "exited",
            (Some(_), true) => "running",
        };
        let row = json!({
            "Service": k.name(),
            "State": state,
            "Health": "",
            "Pid": rec.as_ref().map(|r| r.pid),
            "Publishers": [{"URL": stack.placement(k).listen, "PublishedPort": stack.port(k), "Protocol": "tcp"}],
            "StartedUtc": rec.as_ref().map(|r| r.started_utc.clone()),
            "Log": sup.log_file().display().to_string(),
            "Backend": "native",
        });
        out.push_str(&row.to_string());
        out.push('\n');
    }
    for n in NOT_PROVIDED {
        out.push_str(
            &json!({"Service": n, "State": "not_provided", "Health": "", "Backend": "native"})
                .to_string(),
        );
        out.push('\n');
    }
    stdout_write(&out)?;
    ev.push(step(
        "native_ps",
        "ok",
        t0,
        format!("ps of {}", stack.run_dir.display()),
        format!("{} rows", stack.kinds().len() + NOT_PROVIDED.len()),
    ));
    ev.result = "success".into();
    Ok(Exit::Pass)
}

fn compose_step(ev: &mut Evidence, st: &compose_core::Step) -> bool {
    ev.push(Step {
        name: st.name.clone(),
        status: st.status(),
        duration_ms: st.duration_ms(),
        command: st.command_line(),
        detail: if st.ok {
            st.detail.clone()
        } else {
            st.failure_message()
        },
    })
}

fn compose(ctx: &Ctx<'_>, compose_file: &Path, ev: &mut Evidence) -> Result<Exit> {
    let cli = ctx.cli;
    let t_up = Instant::now();
    let project = compose_project(cli, compose_file)?;
    let wait = cli.wait_timeout.unwrap_or(match cli.action {
        Action::Up => Duration::from_secs(300),
        _ => Duration::ZERO,
    });
    match cli.action {
        Action::Up => {
            // compose_up first (the original's first step: a broken engine fails there), then
            // the service list, then every container healthy.
            let deadline = t_up + wait;
            let up = project.start(wait)?;
            let mut steps = vec![up];
            if steps[0].ok {
                let (cfg, services) = project.services()?;
                let cfg_ok = cfg.ok;
                steps.push(cfg);
                if cfg_ok {
                    steps.push(project.wait_healthy(&services, deadline)?.0);
                }
            }
            for st in &steps {
                if !compose_step(ev, st) {
                    ev.result = "failed".into();
                    let msg = st.failure_message();
                    ev.extra("PRODLIKE_FAILURE_REASON", &msg);
                    warn(&format!("{} failed: {msg}", st.name));
                    // Containers up but not healthy in time: 1; a command that could not run: 2.
                    return Ok(if st.name == "wait_healthy" {
                        Exit::Breach
                    } else {
                        Exit::BadInput
                    });
                }
            }
            ev.extra(
                "PRODLIKE_READY_SECONDS",
                format!("{:.3}", t_up.elapsed().as_secs_f64()),
            );
            compose_health(ctx, &project, ev, wait.saturating_sub(t_up.elapsed()), t_up)
        }
        Action::Down => {
            let st = project.down(cli.purge, Duration::from_secs(300))?;
            let ok = compose_step(ev, &st);
            ev.result = if ok { "success" } else { "failed" }.into();
            Ok(if ok { Exit::Pass } else { Exit::BadInput })
        }
        Action::Ps => {
            let (st, rows) = project.ps()?;
            let ok = compose_step(ev, &st);
            let mut out = String::new();
            for r in &rows {
                let mut v = r.to_json();
                v["Backend"] = json!("compose");
                out.push_str(&v.to_string());
                out.push('\n');
            }
            stdout_write(&out)?;
            ev.result = if ok { "success" } else { "failed" }.into();
            Ok(if ok { Exit::Pass } else { Exit::BadInput })
        }
        Action::Health => compose_health(ctx, &project, ev, wait, t_up),
    }
}

fn compose_health(
    ctx: &Ctx<'_>,
    project: &Project,
    ev: &mut Evidence,
    wait: Duration,
    t_up: Instant,
) -> Result<Exit> {
    let cli = ctx.cli;
    let t0 = Instant::now();
    let creds = stack_core::compose::creds_from_env_file(Some(&cli.env_file))?;
    let required = cli.required_services.as_deref().map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect()
    });
    let h =
        stack_core::compose::health(project, required, &creds, wait, Duration::from_millis(500))?;
    let rctx = ReportContext {
        compose_file: project.file().display().to_string(),
        project_name: project.name().to_string(),
        command_error: h.command_error.clone().unwrap_or_default(),
        backend: "compose".into(),
        source: "compose_ps+probes".into(),
        attempts: h.attempts,
        waited_seconds: h.waited.as_secs_f64(),
        check_wall_ms: h.wall.as_secs_f64() * 1e3,
        ..ReportContext::default()
    };
    let mut rep = report::render(&h.states, &h.required, &h.verdict, &rctx);
    let mut prov = Provenance::start(
        "prodlike",
        env!("CARGO_PKG_VERSION"),
        Some(&ctx.drill.operator),
        false,
    );
    prov.finish();
    rep.insert(
        "provenance",
        serde_json::to_value(&prov).unwrap_or_default(),
    );
    evidence_core::io::write_atomic(ctx.health_report, rep.to_pretty().as_bytes())?;
    let mut detail = format!("{} after {} round(s)", h.verdict.classification, h.attempts);
    if !h.verdict.healthy {
        detail.push_str(&format!(": {}", describe_bad(&rep)));
    } else if cli.action == Action::Up {
        let s = t_up.elapsed().as_secs_f64();
        ev.extra("PRODLIKE_HEALTHY_SECONDS", format!("{s:.3}"));
    }
    ev.extra("PRODLIKE_HEALTH_CLASSIFICATION", &h.verdict.classification);
    let ok = ev.push(step(
        "health_check",
        if h.verdict.healthy { "ok" } else { "failed" },
        t0,
        format!(
            "{}; probe every service",
            project.command_line(&["ps", "-a"])
        ),
        detail.clone(),
    ));
    if ok {
        ev.result = "success".into();
        Ok(Exit::Pass)
    } else {
        ev.result = "failed".into();
        ev.extra("PRODLIKE_FAILURE_REASON", &detail);
        warn(&format!("not healthy: {detail}"));
        Ok(if h.command_error.is_some() {
            Exit::BadInput
        } else {
            Exit::Breach
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }
}
