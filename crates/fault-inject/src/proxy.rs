//! The proxy backend: faults applied through fault-proxy's control socket, tagged
//! `ctp-ops:<drill id>`, with a short dead-man TTL that the hold renews every second, so that a
//! killed fault-inject leaves nothing behind after at most the TTL.
//!
//! Scenario → faults (on every selected pair):
//! - disconnect reset → `reset`; disconnect drop → `blackhole` (both directions);
//! - latency → `latency{delay_ms, jitter 0}`, jitter → `latency{delay_ms, jitter_ms}`;
//! - loss → `stall{probability: loss/100, per: chunk, duration_ms: 200}`: a userspace proxy cannot
//!   drop a TCP segment (the kernel would retransmit it anyway), so a lost packet is approximated
//!   by what the application sees, a chunk delayed by one minimum Linux retransmission timeout
//!   (200 ms); the probability is per chunk (one read), not per packet;
//! - combined → the latency and the stall above, same tag.
//!
//! Latency, jitter and loss act on the upstream direction (client → front), as the original's
//! netem acted on the host's egress: the round trip grows by the delay once.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

use reconnect_core::control::{Client, FaultInfo, PairStatus, Request};
use reconnect_core::spec::{Direction, Fault, StallPer};

use evidence_core::{EvidenceError, Result};

use crate::cmd::quote;

/// The stall a lost packet becomes (the minimum Linux RTO).
pub const LOSS_STALL_MS: u64 = 200;

/// The faults of a scenario.
#[must_use]
pub fn faults(
    scenario: reconnect_core::fault_event::Scenario,
    reset: bool,
    delay_ms: u64,
    jitter_ms: u64,
    loss_percent: f64,
) -> Vec<Fault> {
    use reconnect_core::fault_event::Scenario as S;
    let latency = |jitter_ms| Fault::Latency {
        direction: Direction::Upstream,
        delay_ms,
        jitter_ms,
    };
    let stall = Fault::Stall {
        direction: Direction::Upstream,
        probability: loss_percent / 100.0,
        per: StallPer::Chunk,
        duration_ms: Some(LOSS_STALL_MS),
    };
    match scenario {
        S::Disconnect if reset => vec![Fault::Reset {
            direction: Direction::Both,
        }],
        S::Disconnect => vec![Fault::Blackhole {
            direction: Direction::Both,
        }],
        S::Latency => vec![latency(0)],
        S::Jitter => vec![latency(jitter_ms)],
        S::Loss => vec![stall],
        S::Combined => vec![latency(jitter_ms), stall],
    }
}

/// The proxy tag of a drill.
#[must_use]
pub fn tag(drill_id: &str) -> String {
    format!("{}{drill_id}", crate::netfilter::COMMENT_PREFIX)
}

/// A control request shown as the equivalent `fault-proxy --request` command line.
#[must_use]
pub fn show(control: &Path, req: &Request) -> String {
    let json = serde_json::to_string(req).unwrap_or_default();
    format!(
        "fault-proxy --control {} --request {}",
        quote(&control.display().to_string()),
        quote(&json)
    )
}

/// Connect to the proxy.
///
/// # Errors
/// When the socket cannot be reached (exit 2).
pub fn connect(control: &Path) -> Result<Client> {
    Client::connect(control).map_err(|e| {
        EvidenceError::failed(format!(
            "{e} (is fault-proxy running with --control {}?)",
            control.display()
        ))
    })
}

/// The pairs to act on: `wanted` (all must exist), or every pair of the proxy.
///
/// # Errors
/// An unknown pair name, or a proxy without pairs.
pub fn select_pairs(client: &mut Client, wanted: &[String]) -> Result<Vec<PairStatus>> {
    let all = client.status()?;
    if wanted.is_empty() {
        if all.is_empty() {
            return Err(EvidenceError::failed("fault-proxy has no pairs"));
        }
        return Ok(all);
    }
    wanted
        .iter()
        .map(|w| {
            all.iter().find(|p| &p.name == w).cloned().ok_or_else(|| {
                let names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
                EvidenceError::usage(format!(
                    "--proxy-pair {w}: no such pair (the proxy has: {})",
                    names.join(", ")
                ))
            })
        })
        .collect()
}

/// A pair's upstream as socket addresses.
///
/// # Errors
/// When it does not resolve.
pub fn upstream_addrs(p: &PairStatus) -> Result<Vec<SocketAddr>> {
    p.upstream
        .to_socket_addrs()
        .map(Iterator::collect)
        .map_err(|e| {
            EvidenceError::failed(format!("pair {}: upstream {}: {e}", p.name, p.upstream))
        })
}

/// The apply requests, one per pair and fault.
#[must_use]
pub fn apply_requests(
    pairs: &[PairStatus],
    faults: &[Fault],
    tag: &str,
    ttl: Duration,
) -> Vec<Request> {
    let mut v = Vec::new();
    for p in pairs {
        for f in faults {
            v.push(Request::Apply {
                pair: p.name.clone(),
                fault: f.clone(),
                tag: tag.to_string(),
                ttl_ms: Some(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
            });
        }
    }
    v
}

/// The clear request of a tag.
#[must_use]
pub fn clear_request(tag: &str) -> Request {
    Request::Clear {
        id: None,
        tag: Some(tag.to_string()),
        pair: None,
    }
}

/// Send the apply requests, all or nothing: on a refusal, what was applied is cleared. Returns the
/// moment the FIRST fault took effect (the proxy's own timestamp): from then on a client may already
/// see the fault (a reset on one pair is visible before the next pair is faulted), so that is when
/// the fault window opens. A clear, by contrast, is complete when the last fault is gone.
///
/// # Errors
/// A refusal or a broken socket (after the rollback).
pub fn apply(client: &mut Client, reqs: &[Request], tag: &str) -> Result<i64> {
    let mut effective: Option<i64> = None;
    for r in reqs {
        let out = client.request(r);
        match out {
            Ok(resp) if resp.ok => {
                effective = Some(effective.map_or(resp.ts_ns, |e| e.min(resp.ts_ns)));
            }
            other => {
                let msg = match other {
                    Ok(resp) => resp.error.unwrap_or_default(),
                    Err(e) => e.to_string(),
                };
                let _ = client.clear_tag(tag);
                return Err(EvidenceError::failed(format!(
                    "fault-proxy refused the fault (rolled back): {msg}"
                )));
            }
        }
    }
    Ok(effective.unwrap_or(0))
}

/// Our faults now active (tag `ctp-ops:*`, or exactly `tag`).
///
/// # Errors
/// A broken socket.
pub fn ours(client: &mut Client, tag: Option<&str>) -> Result<Vec<FaultInfo>> {
    Ok(client
        .list()?
        .into_iter()
        .filter(|f| match tag {
            Some(t) => f.tag == t,
            None => f.tag.starts_with(crate::netfilter::COMMENT_PREFIX),
        })
        .collect())
}

/// One line describing a fault, for messages.
#[must_use]
pub fn describe(f: &FaultInfo) -> String {
    format!(
        "fault {} on pair {} ({}, tag {})",
        f.id,
        f.pair,
        f.fault.type_name(),
        f.tag
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconnect_core::fault_event::Scenario;

    #[test]
    fn mapping() {
        assert_eq!(
            faults(Scenario::Disconnect, true, 250, 30, 2.5),
            vec![Fault::Reset {
                direction: Direction::Both
            }]
        );
        assert_eq!(
            faults(Scenario::Disconnect, false, 250, 30, 2.5)[0].type_name(),
            "blackhole"
        );
        assert_eq!(
            faults(Scenario::Latency, false, 250, 30, 2.5),
            vec![Fault::Latency {
                direction: Direction::Upstream,
                delay_ms: 250,
                jitter_ms: 0
            }]
        );
        let c = faults(Scenario::Combined, false, 200, 40, 3.0);
        assert_eq!(c.len(), 2);
        assert!(
            matches!(c[1], Fault::Stall { probability, .. } if (probability - 0.03).abs() < 1e-12)
        );
    }

    #[test]
    fn shown_as_a_command() {
        let r = clear_request("ctp-ops:d1");
        assert_eq!(
            show(Path::new("/run/p.sock"), &r),
            r#"fault-proxy --control /run/p.sock --request '{"op":"clear","tag":"ctp-ops:d1"}'"#
        );
    }
}
