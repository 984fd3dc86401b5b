//! `demo-service`: the tiny HTTP service the deploy drills deploy, break and roll back on the
//! embedded default. `GET /health` answers `200 {"status":"ok","version":"<v>"}`, or `503
//! {"status":"failing",...}` when started with `--fail-health` or when its release folder holds the
//! `FAIL_HEALTH` marker (checked on every request, so a fault can be injected into a running
//! release). `GET /version` answers the version. It binds 127.0.0.1 only.
//!
//! Optionally (off by default) `/health` also checks the service's storage, as the trading
//! platform's would: `--redis-addr` (Redis `AUTH` + `PING`) and `--postgres-addr` (PostgreSQL
//! `SELECT 1` as `quant_hft`), with the password read from `--stack-password-file` (the prod-like
//! stack's 0600 file). Each flag falls back to an environment variable (`DEMO_REDIS_ADDR`,
//! `DEMO_PG_ADDR`, `DEMO_STACK_PASSWORD_FILE`), so a service started by `svc-ctl` inside a rollout
//! inherits them. A failed check makes `/health` answer 503 with the check's answer.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory as _, Parser};
use evidence_core::cli::{EXIT_STATUS_HELP, info};
use evidence_core::{EvidenceError, Exit, Result, signals};

/// Marker file name (same as deploy-core's).
const FAIL_MARKER: &str = "FAIL_HEALTH";

/// A tiny HTTP service with a health endpoint that reports its version (the deploy drills' demo).
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  demo-service --port 18080 --service-version v1 &\n  curl -s http://127.0.0.1:18080/health   # {{\"status\":\"ok\",\"version\":\"v1\"}}\n\n{EXIT_STATUS_HELP}"
    )
)]
pub struct Cli {
    /// TCP port on 127.0.0.1 (0 picks a free one; the bound address is printed on stderr).
    #[arg(long)]
    pub port: u16,
    /// Release folder: its VERSION file gives the version, its FAIL_HEALTH marker makes /health fail.
    #[arg(long, value_name = "DIR")]
    pub release_dir: Option<PathBuf>,
    /// The version to report (default: the release folder's VERSION file, else `dev`).
    #[arg(long, value_name = "V")]
    pub service_version: Option<String>,
    /// Make /health answer 503 (a bad release).
    #[arg(long)]
    pub fail_health: bool,
    /// Also check this Redis (`host:port`) on every /health [env: DEMO_REDIS_ADDR].
    #[arg(long, value_name = "HOST:PORT")]
    pub redis_addr: Option<String>,
    /// Also check this PostgreSQL (`host:port`) on every /health [env: DEMO_PG_ADDR].
    #[arg(long, value_name = "HOST:PORT")]
    pub postgres_addr: Option<String>,
    /// Password file (mode 0600) for the Redis and PostgreSQL checks
    /// [env: DEMO_STACK_PASSWORD_FILE].
    #[arg(long, value_name = "PATH")]
    pub stack_password_file: Option<PathBuf>,
}

/// The optional storage checks.
struct Deps {
    redis: Option<String>,
    postgres: Option<(String, u16)>,
    password: Option<String>,
}

fn flag_or_env(flag: Option<&String>, var: &str) -> Option<String> {
    flag.cloned()
        .or_else(|| std::env::var(var).ok())
        .filter(|s| !s.is_empty())
}

impl Deps {
    fn from_cli(cli: &Cli) -> Result<Deps> {
        let redis = flag_or_env(cli.redis_addr.as_ref(), "DEMO_REDIS_ADDR");
        let postgres = match flag_or_env(cli.postgres_addr.as_ref(), "DEMO_PG_ADDR") {
            None => None,
            Some(a) => {
                let (h, p) = a
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                    .ok_or_else(|| {
                        EvidenceError::usage(format!(
                            "--postgres-addr: expected host:port, found {a:?}"
                        ))
                    })?;
                Some((h, p))
            }
        };
        let pw_file = cli
            .stack_password_file
            .clone()
            .or_else(|| std::env::var_os("DEMO_STACK_PASSWORD_FILE").map(PathBuf::from))
            .filter(|p| !p.as_os_str().is_empty());
        let password = match pw_file {
            Some(p) => Some(stack_core::secret::read_secret(&p)?),
            None => None,
        };
        Ok(Deps {
            redis,
            postgres,
            password,
        })
    }

    /// `(all ok, JSON fields)` of the checks, e.g. `,"redis":"PONG","postgres":"ok"`.
    fn check(&self) -> (bool, String) {
        let t = Duration::from_millis(500);
        let mut ok = true;
        let mut fields = String::new();
        if let Some(a) = &self.redis {
            let r = stack_core::redis::RedisClient::connect(a, t).and_then(|mut c| {
                c.auth(self.password.as_deref())?;
                c.ping()
            });
            let answer = r.unwrap_or_else(|e| {
                ok = false;
                format!("error: {e}")
            });
            fields.push_str(&format!(",\"redis\":{}", json_str(&answer)));
        }
        if let Some((h, p)) = &self.postgres {
            let mut cfg = stack_core::pg::PgConfig::new(
                h,
                *p,
                stack_core::stack::PG_USER,
                stack_core::stack::PG_DB,
            )
            .timeout(t);
            cfg.password = self.password.clone();
            let r =
                stack_core::pg::PgClient::connect(&cfg).and_then(|mut c| c.query_value("SELECT 1"));
            let answer = match r {
                Ok(_) => "ok".to_string(),
                Err(e) => {
                    ok = false;
                    format!("error: {e}")
                }
            };
            fields.push_str(&format!(",\"postgres\":{}", json_str(&answer)));
        }
        (ok, fields)
    }
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

struct State {
    version: String,
    fail: bool,
    marker: Option<PathBuf>,
    deps: Deps,
}

impl State {
    fn failing(&self) -> bool {
        self.fail || self.marker.as_ref().is_some_and(|m| m.exists())
    }
}

/// Serve until SIGINT/SIGTERM.
pub fn run(cli: Cli) -> Result<Exit> {
    signals::install()?;
    let version = match (&cli.service_version, &cli.release_dir) {
        (Some(v), _) => v.clone(),
        (None, Some(d)) => {
            let p = d.join("VERSION");
            std::fs::read_to_string(&p)
                .map_err(|e| EvidenceError::io("cannot read", &p, e))?
                .trim()
                .to_string()
        }
        (None, None) => "dev".to_string(),
    };
    if version.is_empty()
        || !version
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
    {
        return Err(EvidenceError::usage(format!("bad version {version:?}")));
    }
    let state = State {
        version,
        fail: cli.fail_health,
        marker: cli.release_dir.as_ref().map(|d| d.join(FAIL_MARKER)),
        deps: Deps::from_cli(&cli)?,
    };
    let listener = TcpListener::bind(("127.0.0.1", cli.port))
        .map_err(|e| EvidenceError::failed(format!("cannot bind 127.0.0.1:{}: {e}", cli.port)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| EvidenceError::failed(format!("cannot read bound address: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| EvidenceError::failed(format!("cannot set non-blocking: {e}")))?;
    // svc-ctl recognises its release by this line ending in ` pid=<pid>`: keep pid last.
    info(&format!(
        "listening on {addr} version={}{}{} pid={}",
        state.version,
        state
            .deps
            .redis
            .as_ref()
            .map_or(String::new(), |a| format!(" redis={a}")),
        state
            .deps
            .postgres
            .as_ref()
            .map_or(String::new(), |(h, p)| format!(" postgres={h}:{p}")),
        std::process::id(),
    ));

    loop {
        if signals::interrupted() {
            info("stopping");
            return Ok(Exit::Pass);
        }
        match listener.accept() {
            Ok((s, _)) => {
                let _ = s.set_nonblocking(false);
                handle(s, &state);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => info(&format!("accept: {e}")),
        }
    }
}

fn handle(mut s: TcpStream, state: &State) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut parts = head.lines().next().unwrap_or_default().split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let v = &state.version;
    let (deps_ok, deps) = if method == "GET" && path == "/health" {
        state.deps.check()
    } else {
        (true, String::new())
    };
    let (code, reason, body) = match (method, path) {
        ("GET", "/health") if state.failing() || !deps_ok => (
            503,
            "Service Unavailable",
            format!("{{\"status\":\"failing\",\"version\":\"{v}\"{deps}}}"),
        ),
        ("GET", "/health") => (
            200,
            "OK",
            format!("{{\"status\":\"ok\",\"version\":\"{v}\"{deps}}}"),
        ),
        ("GET", "/version") => (200, "OK", format!("{v}\n")),
        ("GET", _) => (404, "Not Found", "not found\n".to_string()),
        _ => (405, "Method Not Allowed", "GET only\n".to_string()),
    };
    let resp = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes());
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
