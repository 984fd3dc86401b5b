//! Start and stop the stack's services as processes under the run folder, through each service's
//! command prefix, with pid and log files from [`evidence_core::supervisor`].
//!
//! ```no_run
//! use std::time::Duration;
//! use stack_core::stack::{Stack, StackConfig};
//! use stack_core::launch;
//! let stack = Stack::new("/var/tmp/prodlike", StackConfig::default());
//! let started = launch::up(&stack, Duration::from_secs(30))?;   // prepare + start + wait ready
//! launch::down(&stack, Duration::from_secs(5))?;                 // stop all, stale pids too
//! # Ok::<(), evidence_core::EvidenceError>(())
//! ```

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use evidence_core::process::{RunOptions, run_command};
use evidence_core::supervisor::{Running, Stopped, Supervisor};
use evidence_core::{EvidenceError, Result};

use crate::probe::{self, Probe};
use crate::secret;
use crate::stack::{
    PG_BIN, PG_DB, PG_USER, ServiceKind, ServiceSpec, Stack, chmod, render_alertmanager_yml,
    render_pg_hba, render_prometheus_yml, render_redis_conf, render_rules_yml,
    render_sentinel_conf,
};

/// The supervisor of `kind` in `stack` (pid file `<run>/<name>.pid`, log `<run>/logs/<name>.log`).
#[must_use]
pub fn supervisor(stack: &Stack, kind: ServiceKind) -> Supervisor {
    Supervisor::new(&stack.run_dir, &kind.name())
}

/// The full argv of `spec`: prefix, user switch (`setpriv`, which execs), program, arguments.
#[must_use]
pub fn argv(spec: &ServiceSpec) -> Vec<OsString> {
    let mut v: Vec<OsString> = spec.placement.prefix.iter().map(OsString::from).collect();
    if let Some(u) = &spec.run_as {
        v.extend(
            [
                "setpriv",
                &format!("--reuid={u}"),
                &format!("--regid={u}"),
                "--init-groups",
                "--",
            ]
            .map(OsString::from),
        );
    }
    v.push(spec.program.clone().into());
    v.extend(spec.args.iter().cloned());
    v
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    if let Some(d) = path.parent() {
        mkdir(d)?;
    }
    fs::write(path, text).map_err(|e| EvidenceError::io("cannot write", path, e))?;
    chmod(path, mode)
}

fn mkdir(d: &Path) -> Result<()> {
    fs::create_dir_all(d).map_err(|e| EvidenceError::io("cannot create folder", d, e))
}

fn chown_postgres(path: &Path) -> Result<()> {
    let u = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .ok_or_else(|| EvidenceError::failed("no `postgres` user: install postgresql-15"))?;
    nix::unistd::chown(path, Some(u.uid), Some(u.gid))
        .map_err(|e| EvidenceError::failed(format!("cannot chown {}: {e}", path.display())))
}

/// Every folder above `dir` must let others traverse it (the `postgres` user must reach its data).
fn check_traversable(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let abs = fs::canonicalize(dir).map_err(|e| EvidenceError::io("cannot resolve", dir, e))?;
    for a in abs.ancestors().skip(1) {
        let m = fs::metadata(a).map_err(|e| EvidenceError::io("cannot stat", a, e))?;
        if m.permissions().mode() & 0o001 == 0 {
            return Err(EvidenceError::failed(format!(
                "{} (mode {:o}) does not let the postgres user through to the run folder; \
                 chmod o+x it or choose another --run-dir",
                a.display(),
                m.permissions().mode() & 0o777
            )));
        }
    }
    Ok(())
}

/// Create the run folder, the password (once per stack) and every config file; save
/// `stack.json`. Data folders that exist are kept (a restart keeps its data). Idempotent.
pub fn prepare(stack: &Stack) -> Result<String> {
    use ServiceKind::*;
    let run = &stack.run_dir;
    let missing = crate::stack::missing_programs();
    if !missing.is_empty() {
        return Err(EvidenceError::failed(format!(
            "not installed: {} (scripts/setup.sh installs them)",
            missing.join(", ")
        )));
    }
    mkdir(run)?;
    chmod(run, 0o711)?;
    mkdir(&run.join("logs"))?;
    let pwf = stack.password_file();
    if !pwf.exists() {
        secret::write_secret(&pwf, &secret::generate_password())?;
    }
    chmod(&run.join("secrets"), 0o700)?;
    let pw = stack.password()?;
    stack.save()?;
    for k in stack.kinds() {
        match k {
            RedisPrimary | RedisReplica => {
                mkdir(&stack.dir(k).join("data"))?;
                write_file(
                    &stack.dir(k).join("redis.conf"),
                    &render_redis_conf(stack, k, &pw),
                    0o600,
                )?;
            }
            Sentinel(n) => {
                // A fresh copy at every start: Sentinel rewrites it (myid, peers, epochs).
                write_file(
                    &stack.dir(k).join("sentinel.conf"),
                    &render_sentinel_conf(stack, n, &pw),
                    0o600,
                )?;
            }
            Prometheus => {
                mkdir(&stack.dir(k).join("data"))?;
                write_file(
                    &stack.dir(k).join("prometheus.yml"),
                    &render_prometheus_yml(stack),
                    0o644,
                )?;
                write_file(&stack.dir(k).join("rules.yml"), &render_rules_yml(), 0o644)?;
            }
            Alertmanager => {
                mkdir(&stack.dir(k).join("data"))?;
                write_file(
                    &stack.dir(k).join("alertmanager.yml"),
                    &render_alertmanager_yml(stack),
                    0o644,
                )?;
            }
            NodeExporter => mkdir(&stack.textfile_dir())?,
            AlertWebhook => mkdir(stack.webhook_file().parent().unwrap_or(run))?,
            TimescalePrimary | TimescaleReplica | RedisExporter | PgExporterPrimary
            | PgExporterReplica => {}
        }
    }
    let pg = stack.pg_base();
    mkdir(&pg)?;
    chmod(&pg, 0o711)?;
    check_traversable(&pg)?;
    let sock = stack.pg_socket_dir();
    mkdir(&sock)?;
    chown_postgres(&sock)?;
    chmod(&sock, 0o700)?;
    Ok(pw)
}

/// Run a one-shot command for `kind` (through its prefix, as `postgres`), with a timeout.
fn run_pg_tool(
    stack: &Stack,
    kind: ServiceKind,
    program: &str,
    args: &[OsString],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<()> {
    let spec = ServiceSpec {
        kind,
        name: kind.name(),
        placement: stack.placement(kind),
        port: stack.port(kind),
        program: Path::new(PG_BIN).join(program),
        args: args.to_vec(),
        env: Vec::new(),
        run_as: Some("postgres".into()),
    };
    let v = argv(&spec);
    let mut cmd = Command::new(&v[0]);
    cmd.args(&v[1..]);
    let opts = RunOptions {
        timeout,
        env: env.to_vec(),
        ..RunOptions::default()
    };
    let out = run_command(cmd, &opts)?;
    if out.success() {
        Ok(())
    } else {
        Err(EvidenceError::failed(format!(
            "{program} for {} failed ({}): {}",
            kind.name(),
            out.describe(),
            out.stderr_tail.trim()
        )))
    }
}

/// `initdb` the primary's data folder unless it exists (SCRAM, role `quant_hft`, our `pg_hba`).
pub fn init_pg_primary(stack: &Stack, password: &str) -> Result<bool> {
    let kind = ServiceKind::TimescalePrimary;
    let dir = stack.dir(kind);
    if dir.join("PG_VERSION").exists() {
        write_hba(stack, kind)?;
        return Ok(false);
    }
    mkdir(&dir)?;
    chown_postgres(&dir)?;
    chmod(&dir, 0o700)?;
    // initdb reads the password from a file the postgres user can read; removed right after.
    let pwfile = stack.pg_base().join(".initdb-pw");
    write_file(&pwfile, password, 0o600)?;
    chown_postgres(&pwfile)?;
    let args: Vec<OsString> = [
        "-D".into(),
        dir.clone().into_os_string(),
        "-U".into(),
        PG_USER.into(),
        "--auth=scram-sha-256".into(),
        OsString::from(format!("--pwfile={}", pwfile.display())),
        "--no-sync".into(),
        "-E".into(),
        "UTF8".into(),
        "--locale=C".into(),
    ]
    .to_vec();
    let r = run_pg_tool(stack, kind, "initdb", &args, &[], Duration::from_secs(60));
    let _ = fs::remove_file(&pwfile);
    r?;
    write_hba(stack, kind)?;
    Ok(true)
}

fn write_hba(stack: &Stack, kind: ServiceKind) -> Result<()> {
    let p = stack.dir(kind).join("pg_hba.conf");
    write_file(&p, &render_pg_hba(), 0o600)?;
    chown_postgres(&p)
}

/// `pg_basebackup -R -X stream -c fast` the standby from the running primary unless its data
/// folder exists, then create the database `quant_hft` is already there (initdb made the role;
/// the database is created on the primary by [`ensure_pg_db`]).
pub fn init_pg_standby(stack: &Stack, password: &str) -> Result<bool> {
    let kind = ServiceKind::TimescaleReplica;
    let dir = stack.dir(kind);
    if dir.join("PG_VERSION").exists() {
        write_hba(stack, kind)?;
        return Ok(false);
    }
    let _ = fs::remove_dir_all(&dir);
    mkdir(&dir)?;
    chown_postgres(&dir)?;
    chmod(&dir, 0o700)?;
    let primary = ServiceKind::TimescalePrimary;
    let conninfo = format!(
        "host={} port={} user={PG_USER} dbname=replication application_name=timescale-replica",
        stack.placement(primary).listen,
        stack.port(primary)
    );
    let args: Vec<OsString> = vec![
        "-D".into(),
        dir.clone().into_os_string(),
        "-d".into(),
        conninfo.into(),
        "-R".into(),
        "-X".into(),
        "stream".into(),
        "-c".into(),
        "fast".into(),
        "--no-sync".into(),
    ];
    let env = [("PGPASSWORD".to_string(), password.to_string())];
    run_pg_tool(
        stack,
        kind,
        "pg_basebackup",
        &args,
        &env,
        Duration::from_secs(120),
    )?;
    write_hba(stack, kind)?;
    Ok(true)
}

/// Create the `quant_hft` database on the primary if it does not exist.
pub fn ensure_pg_db(stack: &Stack, password: &str, timeout: Duration) -> Result<()> {
    let cfg = probe::pg_config(
        stack,
        ServiceKind::TimescalePrimary,
        password,
        timeout,
        "postgres",
    );
    let mut c = crate::pg::PgClient::connect(&cfg)
        .map_err(|e| EvidenceError::failed(format!("timescale-primary: {e}")))?;
    let exists = c
        .query_value(&format!(
            "SELECT 1 FROM pg_database WHERE datname = '{PG_DB}'"
        ))
        .map_err(|e| EvidenceError::failed(format!("timescale-primary: {e}")))?;
    if exists.is_none() {
        c.simple_query(&format!("CREATE DATABASE {PG_DB}"))
            .map_err(|e| EvidenceError::failed(format!("timescale-primary: {e}")))?;
    }
    if crate::stack::timescaledb_available() {
        let cfg = probe::pg_config(
            stack,
            ServiceKind::TimescalePrimary,
            password,
            timeout,
            PG_DB,
        );
        if let Ok(mut c) = crate::pg::PgClient::connect(&cfg) {
            let _ = c.simple_query("CREATE EXTENSION IF NOT EXISTS timescaledb");
        }
    }
    c.close();
    Ok(())
}

/// After a crash, `postmaster.pid` still names the dead postmaster. PostgreSQL refuses to start
/// while that pid answers `kill(pid, 0)`, which a zombie (not yet reaped by PID 1) does, and
/// while its children (each in its own session, so not in our process group) still hold the
/// shared memory; they exit on their own within ~20 ms of the postmaster's death. Wait up to 5 s
/// for the recorded pid to be gone or a zombie, and for no process to run in the data folder,
/// then remove the file. A live postmaster is left alone (the start then fails with its message).
fn clear_stale_postmaster_pid(data: &Path) -> Result<()> {
    use evidence_core::supervisor::pid_alive;
    let f = data.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&f) else {
        return Ok(());
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok())
    else {
        return Ok(());
    };
    let end = Instant::now() + Duration::from_secs(5);
    let in_data = || {
        fs::read_dir("/proc")
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|p| {
                        pid_alive(p)
                            && fs::read_link(format!("/proc/{p}/cwd")).is_ok_and(|c| c == data)
                    })
            })
    };
    while pid_alive(pid) || in_data() {
        if Instant::now() >= end {
            return Ok(());
        }
        evidence_core::signals::sleep(Duration::from_millis(10))?;
    }
    let _ = fs::remove_file(&f);
    Ok(())
}

/// The socket's `.lock` file names the postmaster too; a dead one's socket and lock are removed.
fn clear_stale_socket_lock(sock: &Path) -> Result<()> {
    let lock = sock.with_file_name(format!(
        "{}.lock",
        sock.file_name().unwrap_or_default().to_string_lossy()
    ));
    let Ok(text) = fs::read_to_string(&lock) else {
        return Ok(());
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok())
    else {
        return Ok(());
    };
    if !evidence_core::supervisor::pid_alive(pid) {
        let _ = fs::remove_file(&lock);
        let _ = fs::remove_file(sock);
    }
    Ok(())
}

/// Start one service (unless it is already running); returns what runs.
pub fn start(stack: &Stack, kind: ServiceKind, password: &str) -> Result<Running> {
    let sup = supervisor(stack, kind);
    if let Some(r) = sup.running()? {
        return Ok(r);
    }
    let spec = stack.spec(kind, password);
    let addr = stack.addr(kind);
    if let Ok(sa) = addr.parse::<std::net::SocketAddr>()
        && std::net::TcpStream::connect_timeout(&sa, Duration::from_millis(200)).is_ok()
    {
        return Err(EvidenceError::failed(format!(
            "{}: port {addr} is already in use by a process this stack did not start; \
             choose another --base-port",
            kind.name()
        )));
    }
    if kind.is_postgres() {
        clear_stale_postmaster_pid(&stack.dir(kind))?;
        let sock = stack
            .pg_socket_dir()
            .join(format!(".s.PGSQL.{}", stack.port(kind)));
        clear_stale_socket_lock(&sock)?;
    }
    let v = argv(&spec);
    let tag = format!("{}:{}", spec.placement.listen, spec.port);
    sup.start(Path::new(&v[0]), &v[1..], &spec.env, &tag)
}

/// Wait until `kind` answers its readiness probe ([`probe::ready`]) or `deadline` passes.
pub fn wait_ready(
    stack: &Stack,
    kind: ServiceKind,
    password: &str,
    deadline: Instant,
) -> Result<Probe> {
    loop {
        let p = probe::ready(stack, kind, password, Duration::from_millis(500));
        if p.ok {
            return Ok(p);
        }
        let sup = supervisor(stack, kind);
        if sup.running()?.is_none() {
            return Err(EvidenceError::failed(format!(
                "{} exited during start ({}); see {}: {}",
                kind.name(),
                p.answer,
                sup.log_file().display(),
                log_tail(&sup.log_file(), 3)
            )));
        }
        if Instant::now() >= deadline {
            return Err(EvidenceError::failed(format!(
                "{} not ready before the deadline: {} answered {}",
                kind.name(),
                p.probe,
                p.answer
            )));
        }
        evidence_core::signals::sleep(Duration::from_millis(10))?;
    }
}

/// The last `n` lines of a log file, joined with ` | ` (for error messages).
#[must_use]
pub fn log_tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// What [`start_one`] did for one service.
#[derive(Debug, Clone)]
pub struct Started {
    /// The service.
    pub kind: ServiceKind,
    /// Its process.
    pub running: Running,
    /// False when it was already running.
    pub newly_started: bool,
    /// From the call until it answered its readiness probe.
    pub took: Duration,
}

/// Bring one service up: initialise PostgreSQL data first when needed (initdb on the primary;
/// pg_basebackup from the running primary for the standby), start it unless it runs, wait for
/// its readiness probe until `deadline`, and create the database on a fresh primary.
pub fn start_one(
    stack: &Stack,
    kind: ServiceKind,
    password: &str,
    deadline: Instant,
) -> Result<Started> {
    let t0 = Instant::now();
    match kind {
        ServiceKind::TimescalePrimary => {
            init_pg_primary(stack, password)?;
        }
        ServiceKind::TimescaleReplica => {
            init_pg_standby(stack, password)?;
        }
        _ => {}
    }
    let was = supervisor(stack, kind).running()?.is_some();
    let running = start(stack, kind, password)?;
    wait_ready(stack, kind, password, deadline)?;
    if kind == ServiceKind::TimescalePrimary {
        ensure_pg_db(stack, password, Duration::from_secs(2))?;
    }
    Ok(Started {
        kind,
        running,
        newly_started: !was,
        took: t0.elapsed(),
    })
}

/// Prepare, then [`start_one`] every service in order. Services already running are left as
/// they are. Stops at the first failure (what started keeps running: call [`down`]).
pub fn up(stack: &Stack, deadline: Duration) -> Result<Vec<Started>> {
    let end = Instant::now() + deadline;
    let pw = prepare(stack)?;
    let mut out = Vec::new();
    for kind in stack.kinds() {
        evidence_core::signals::check()?;
        out.push(start_one(stack, kind, &pw, end)?);
    }
    Ok(out)
}

/// How one service was stopped by [`down`].
#[derive(Debug, Clone)]
pub struct StoppedService {
    /// The service.
    pub kind: ServiceKind,
    /// How.
    pub how: Stopped,
}

/// Stop one service: PostgreSQL first gets SIGINT (fast shutdown: it disconnects clients, where
/// SIGTERM's smart shutdown would wait for them); then SIGTERM to the process group, SIGKILL
/// after `grace` (evidence-core's supervisor). A crashed service's pid file is removed.
pub fn stop(stack: &Stack, kind: ServiceKind, grace: Duration) -> Result<Stopped> {
    let sup = supervisor(stack, kind);
    if kind.is_postgres()
        && let Some(r) = sup.running()?
        && let Ok(pid) = i32::try_from(r.pid)
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGINT,
        );
    }
    sup.stop(grace)
}

/// Stop every service in reverse order (SIGTERM, SIGKILL after `grace`); pid files of crashed
/// services are removed. Returns what was stopped.
pub fn down(stack: &Stack, grace: Duration) -> Result<Vec<StoppedService>> {
    let mut out = Vec::new();
    let mut kinds = ServiceKind::all();
    kinds.reverse();
    for kind in kinds {
        let how = stop(stack, kind, grace)?;
        out.push(StoppedService { kind, how });
    }
    Ok(out)
}

/// Remove the run folder's data (after [`down`]): everything but the folder itself and the
/// files named in `keep` (e.g. a lock file held by the caller).
pub fn purge(stack: &Stack, keep: &[&str]) -> Result<()> {
    let run = &stack.run_dir;
    let Ok(rd) = fs::read_dir(run) else {
        return Ok(());
    };
    for e in rd.flatten() {
        if keep.iter().any(|k| e.file_name() == *k) {
            continue;
        }
        let p: PathBuf = e.path();
        let r = if p.is_dir() {
            fs::remove_dir_all(&p)
        } else {
            fs::remove_file(&p)
        };
        r.map_err(|err| EvidenceError::io("cannot remove", &p, err))?;
    }
    if let Some(pg) = &stack.config.pg_root
        && pg.exists()
    {
        fs::remove_dir_all(pg).map_err(|e| EvidenceError::io("cannot remove", pg, e))?;
    }
    Ok(())
}
