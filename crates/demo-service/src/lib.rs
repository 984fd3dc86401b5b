//! `demo-service`: the tiny HTTP service the deploy drills deploy, break and roll back on the
//! embedded default. `GET /health` answers `200 {"status":"ok","version":"<v>"}`, or `503
//! {"status":"failing",...}` when started with `--fail-health` or when its release folder holds the
//! `FAIL_HEALTH` marker (checked on every request, so a fault can be injected into a running
//! release). `GET /version` answers the version. It binds 127.0.0.1 only.

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
}

struct State {
    version: String,
    fail: bool,
    marker: Option<PathBuf>,
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
    };
    let listener = TcpListener::bind(("127.0.0.1", cli.port))
        .map_err(|e| EvidenceError::failed(format!("cannot bind 127.0.0.1:{}: {e}", cli.port)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| EvidenceError::failed(format!("cannot read bound address: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| EvidenceError::failed(format!("cannot set non-blocking: {e}")))?;
    info(&format!(
        "listening on {addr} version={} pid={}",
        state.version,
        std::process::id()
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
    let (code, reason, body) = match (method, path) {
        ("GET", "/health") if state.failing() => (
            503,
            "Service Unavailable",
            format!("{{\"status\":\"failing\",\"version\":\"{v}\"}}"),
        ),
        ("GET", "/health") => (
            200,
            "OK",
            format!("{{\"status\":\"ok\",\"version\":\"{v}\"}}"),
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
