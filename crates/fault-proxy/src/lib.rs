//! fault-proxy: a userspace TCP fault proxy (what Toxiproxy does) for the CTP fronts. It needs no
//! root and no kernel netem.
//!
//! - [`engine::Proxy`]: the proxy engine (listeners, connections, faults);
//! - [`control`]: the JSON-lines control protocol, its [`control::Server`] and the blocking
//!   [`control::Client`] other tools use;
//! - [`spec`]: pairs and faults;
//! - [`events`]: the event log records (`proxy.ready`, `proxy.fault_applied`, ...).

pub mod control;
pub mod engine;
pub mod events;
pub use reconnect_core::spec;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use clap::builder::TypedValueParser as _;
use evidence_core::cli::{self, EXIT_STATUS_HELP};
use evidence_core::duration::{DurationParser, whole_millis};
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Exit, Result, signals};

use crate::events::{Event, EventLog};
use reconnect_core::spec::PairSpec;

const AFTER_HELP: &str = "\
FAULTS (apply them through the control socket, JSON lines; see docs/formats.md):
  reset      RST both peers of every connection, RST new ones while active
  blackhole  hold connections, forward nothing (data is delivered after the fault)
  latency    delay_ms (+/- jitter_ms) per chunk, order kept
  bandwidth  bytes_per_sec per connection and direction (token bucket)
  stall      with probability, hold a chunk (per connection or per chunk)
Each fault has a direction (upstream = client to server, downstream, both), a tag (the drill id)
and an optional ttl_ms after which the proxy removes it by itself (a dead-man; `renew` pushes it).
Ops: apply, clear (by id, tag or pair), renew, list, reset (clear all), status.

EXAMPLE:
  fault-proxy --pair trader=0,127.0.0.1:40001 --pair md=0,127.0.0.1:40011 \\
      --control runtime/fault-proxy.sock --event-log runtime/fault-proxy-events.jsonl &
  fault-proxy --control runtime/fault-proxy.sock --request \\
      '{\"op\":\"apply\",\"pair\":\"trader\",\"fault\":{\"type\":\"reset\"},\"tag\":\"drill-1\",\"ttl_ms\":30000}'
  fault-proxy --control runtime/fault-proxy.sock --request '{\"op\":\"clear\",\"tag\":\"drill-1\"}'

SIGINT or SIGTERM closes the listeners, removes every fault and exits 0.
";

/// Forward TCP listen→upstream pairs and inject faults (reset, blackhole, latency, bandwidth,
/// stall) on command from a Unix control socket. Prints one `proxy.ready` JSON line on stdout
/// when listening.
#[derive(Debug, Parser)]
#[command(name = "fault-proxy", version, after_help = format!("{AFTER_HELP}\n{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// A pair to forward: NAME=LISTEN_ADDR,UPSTREAM_ADDR (repeatable). LISTEN_ADDR is PORT (on
    /// 127.0.0.1; 0 picks a free port) or HOST:PORT; wildcard addresses are refused.
    #[arg(long = "pair", value_name = "NAME=LISTEN,UPSTREAM", value_parser = spec::parse_pair)]
    pub pairs: Vec<PairSpec>,

    /// The control socket (Unix, JSON lines). A stale socket file is replaced.
    #[arg(
        long = "control-socket",
        visible_alias = "control",
        value_name = "PATH"
    )]
    pub control: PathBuf,

    /// Append every ready/apply/clear/expiry/stop event to this JSONL file.
    #[arg(long, value_name = "FILE")]
    pub event_log: Option<PathBuf>,

    /// Also write the `proxy.ready` line to this file (atomically) once listening.
    #[arg(long, value_name = "FILE")]
    pub ready_file: Option<PathBuf>,

    /// Timeout to connect to an upstream, milliseconds.
    #[arg(long, value_name = "DURATION", default_value = "5000", value_parser = DurationParser::millis().map(whole_millis))]
    pub connect_timeout_ms: u64,

    /// Copy through a buffer instead of splice(2) on the no-fault path (for benchmarks).
    #[arg(long, hide = true)]
    pub no_splice: bool,

    /// After forwarding a chunk, keep polling the connection's sockets for this long without
    /// sleeping, so that a reply is forwarded by a thread that is still awake (lower round-trip
    /// latency; idle connections sleep). 0: no spin.
    #[arg(long, value_name = "US", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub spin_us: u64,

    /// A pump thread per direction from the start instead of one thread per connection until a
    /// fault or a stream needs them (for benchmarks).
    #[arg(long, hide = true)]
    pub two_threads: bool,

    /// Client mode: send this JSON request to the proxy at --control and print its reply line
    /// (repeatable). Exit 2 when a request is refused.
    #[arg(long, value_name = "JSON", conflicts_with_all = ["pairs", "event_log", "ready_file"])]
    pub request: Vec<String>,
}

/// Run the tool.
///
/// # Errors
/// Usage errors (no pair, duplicate names), a listen address in use, an unusable control path or
/// event log: all exit 2.
pub fn run(cli: Cli) -> Result<Exit> {
    if !cli.request.is_empty() {
        return run_client(&cli);
    }
    if cli.pairs.is_empty() {
        return Err(EvidenceError::usage(
            "at least one --pair NAME=LISTEN_ADDR,UPSTREAM_ADDR is required",
        ));
    }
    for (i, p) in cli.pairs.iter().enumerate() {
        if cli.pairs[..i].iter().any(|q| q.name == p.name) {
            return Err(EvidenceError::usage(format!(
                "--pair: the name {:?} is given twice",
                p.name
            )));
        }
    }
    if cli.connect_timeout_ms == 0 {
        return Err(EvidenceError::usage(
            "--connect-timeout-ms: expected > 0, found 0",
        ));
    }
    signals::install()?;
    let event_log = cli.event_log.as_deref().map(EventLog::open).transpose()?;
    let proxy = engine::Proxy::start(
        &cli.pairs,
        engine::Options {
            event_log,
            connect_timeout: Duration::from_millis(cli.connect_timeout_ms),
            splice: !cli.no_splice,
            spin: (!cli.two_threads).then(|| Duration::from_micros(cli.spin_us)),
        },
    )?;
    let mut server = match control::Server::start(&cli.control, Arc::clone(&proxy)) {
        Ok(s) => s,
        Err(e) => {
            proxy.shutdown("none");
            return Err(e);
        }
    };
    let ready = Event::Ready {
        ts_ns: now_ns(),
        pairs: proxy.pairs(),
        control: cli.control.display().to_string(),
        pid: std::process::id(),
    };
    let mut line = serde_json::to_string(&ready)
        .map_err(|e| EvidenceError::failed(format!("cannot encode ready line: {e}")))?;
    line.push('\n');
    proxy.log(&ready);
    let announced = cli
        .ready_file
        .as_deref()
        .map_or(Ok(()), |p| {
            evidence_core::io::write_atomic(p, line.as_bytes())
        })
        .and_then(|()| cli::stdout_write(&line));
    if let Err(e) = announced {
        server.stop();
        proxy.shutdown("none");
        return Err(e);
    }
    while !signals::interrupted() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let signal = signals::signal_name().unwrap_or("none");
    server.stop();
    proxy.shutdown(signal);
    cli::info(&format!("stopped on {signal}"));
    Ok(Exit::Pass)
}

fn run_client(cli: &Cli) -> Result<Exit> {
    let mut client = control::Client::connect(&cli.control)?;
    let mut exit = Exit::Pass;
    for req in &cli.request {
        let reply = client.request_line(req.as_bytes())?;
        let line = serde_json::to_string(&reply)
            .map_err(|e| EvidenceError::failed(format!("cannot encode reply: {e}")))?;
        cli::stdout_write(&format!("{line}\n"))?;
        if !reply.ok {
            cli::warn(&format!(
                "request refused: {}",
                reply.error.as_deref().unwrap_or("")
            ));
            exit = exit.worst(Exit::BadInput);
        }
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
