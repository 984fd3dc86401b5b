//! The compose backend's health: `compose ps` rows (compose-core) judged as the original did, and
//! every running service of the stack probed on its published port with the same probes as the
//! native stack. Sentinels there name the primary by its container address, so their master is
//! recorded, not compared.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use compose_core::{Project, PsRow, published_in};
use evidence_core::dotenv::EnvDoc;
use evidence_core::{EvidenceError, Result};

use crate::probe::{self, Creds};
use crate::report::{ServiceState, Verdict, judge_with};
use crate::stack::{NOT_PROVIDED, ServiceKind, Stack, StackConfig};

/// The container port each service of the corrected compose file listens on.
#[must_use]
pub fn container_port(kind: ServiceKind) -> Option<u16> {
    use ServiceKind::*;
    Some(match kind {
        RedisPrimary | RedisReplica => 6379,
        Sentinel(_) => 26379,
        TimescalePrimary | TimescaleReplica => 5432,
        Prometheus => 9090,
        Alertmanager => 9093,
        RedisExporter => 9121,
        PgExporterPrimary | PgExporterReplica => 9187,
        NodeExporter | AlertWebhook => return None,
    })
}

/// The passwords from the compose env file (`REDIS_PASSWORD`, `TIMESCALE_PASSWORD`); empty when
/// the file or a key is absent (the probes then fail with the server's answer).
pub fn creds_from_env_file(path: Option<&Path>) -> Result<Creds> {
    let Some(p) = path.filter(|p| p.exists()) else {
        return Ok(Creds::same(""));
    };
    let text = std::fs::read_to_string(p).map_err(|e| EvidenceError::io("cannot read", p, e))?;
    let doc = EnvDoc::parse(&text, &p.display().to_string())?;
    Ok(Creds {
        redis: doc.get("REDIS_PASSWORD").unwrap_or_default().to_string(),
        pg: doc
            .get("TIMESCALE_PASSWORD")
            .unwrap_or_default()
            .to_string(),
    })
}

/// Judge `rows` and probe the running services of the stack on their published ports.
#[must_use]
pub fn states(rows: &[PsRow], creds: &Creds, timeout: Duration) -> Vec<ServiceState> {
    let mut ports = BTreeMap::new();
    let mut kinds = Vec::new();
    for k in ServiceKind::all() {
        let Some(cp) = container_port(k) else {
            continue;
        };
        if let Ok(addr) = published_in(rows, &k.name(), cp)
            && rows
                .iter()
                .any(|r| r.service == k.name() && r.state == "running")
        {
            ports.insert(k.name(), addr.port());
            kinds.push(k);
        }
    }
    let stack = Stack::new(
        "/nonexistent-compose-stack",
        StackConfig {
            ports,
            ..StackConfig::default()
        },
    );
    let probes = probe::health_with(&stack, &kinds, creds, timeout, None);
    rows.iter()
        .map(|r| {
            let p = kinds
                .iter()
                .position(|k| k.name() == r.service)
                .and_then(|i| probes.get(i).cloned());
            let healthy = r.healthy() && p.as_ref().is_none_or(|p| p.ok);
            ServiceState {
                service: r.service.clone(),
                state: r.state.clone(),
                health: if healthy {
                    "healthy".into()
                } else if r.health.is_empty() || r.healthy() {
                    "unhealthy".into()
                } else {
                    r.health.clone()
                },
                probe: p,
                pid: None,
            }
        })
        .collect()
}

/// Rows judged without probes (a saved `compose ps` file): the original's rule per row.
#[must_use]
pub fn states_from_rows(rows: &[PsRow]) -> Vec<ServiceState> {
    let mut out: Vec<ServiceState> = Vec::new();
    for r in rows {
        let s = ServiceState {
            service: r.service.clone(),
            state: r.state.clone(),
            health: if r.healthy() {
                "healthy".into()
            } else if r.health.is_empty() {
                "unhealthy".into()
            } else {
                r.health.clone()
            },
            probe: None,
            pid: None,
        };
        // Rows with the same service overwrite one another, as in the original.
        if let Some(slot) = out.iter_mut().find(|x| x.service == s.service) {
            *slot = s;
        } else {
            out.push(s);
        }
    }
    out
}

/// The outcome of [`health`].
#[derive(Debug, Clone)]
pub struct ComposeHealth {
    /// Every container's state, probed where possible.
    pub states: Vec<ServiceState>,
    /// The verdict.
    pub verdict: Verdict,
    /// The required list used.
    pub required: Vec<String>,
    /// Probe rounds.
    pub attempts: u32,
    /// Time spent.
    pub waited: Duration,
    /// Wall time of the last round.
    pub wall: Duration,
    /// The failed compose command's output, when one failed.
    pub command_error: Option<String>,
}

/// Probe a live compose project until healthy or `wait` passes (at least one round). `required`:
/// `None` means every service of the compose file. Grafana/Loki/Tempo/MinIO required but not in
/// the file are `not_provided`.
pub fn health(
    project: &Project,
    required: Option<Vec<String>>,
    creds: &Creds,
    wait: Duration,
    probe_timeout: Duration,
) -> Result<ComposeHealth> {
    let t0 = std::time::Instant::now();
    let (svc_step, services) = project.services()?;
    if !svc_step.ok {
        return Ok(failed(svc_step, required.unwrap_or_default(), t0));
    }
    let required = required.unwrap_or_else(|| services.clone());
    let not_provided: Vec<String> = NOT_PROVIDED
        .iter()
        .map(|s| (*s).to_string())
        .filter(|s| !services.contains(s))
        .collect();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let r0 = std::time::Instant::now();
        let (step, rows) = project.ps()?;
        if !step.ok {
            return Ok(failed(step, required, t0));
        }
        let states = states(&rows, creds, probe_timeout);
        let wall = r0.elapsed();
        let verdict = judge_with(&states, &required, &not_provided, false);
        if verdict.healthy || t0.elapsed() >= wait || evidence_core::signals::interrupted() {
            return Ok(ComposeHealth {
                states,
                verdict,
                required,
                attempts,
                waited: t0.elapsed(),
                wall,
                command_error: None,
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn failed(
    step: compose_core::Step,
    required: Vec<String>,
    t0: std::time::Instant,
) -> ComposeHealth {
    let verdict = judge_with(&[], &[], &[], true);
    ComposeHealth {
        states: Vec::new(),
        verdict,
        required,
        attempts: 1,
        waited: t0.elapsed(),
        wall: step.duration,
        command_error: Some(format!("{}{}", step.stdout, step.stderr).trim().to_string())
            .filter(|s| !s.is_empty())
            .or(Some(step.detail.clone())),
    }
}
