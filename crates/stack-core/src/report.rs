//! The health report (`prodlike_health_report.json`): the original `check_prodlike_health` JSON
//! shape (§2.10 of the reference) built from real probes, or from saved `docker compose ps` rows
//! judged as the original did (§1.7), plus extra fields.
//!
//! Original keys, in order: `generated_ts_ns`, `healthy`, `severity`, `classification`,
//! `required_services`, `missing_services`, `unhealthy_services` (`[{service, state, health}]`),
//! `service_states` (`{service: {state, health}}`), `compose_file`, `project_name`,
//! `command_error`. Extra: each entry's `probe`, `answer`, `details`, `probe_ms`, `pid`; and
//! `backend`, `source`, `run_dir`, `not_provided_services`, `extension`, `attempts`,
//! `waited_seconds`, `check_wall_ms`.

use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json, json};

use crate::launch::supervisor;
use crate::probe::{self, Probe};
use crate::stack::{NOT_PROVIDED, ServiceKind, Stack, expand_names};

/// The native backend's default required set: every service of the stack.
#[must_use]
pub fn default_required(stack: &Stack) -> Vec<String> {
    stack.kinds().into_iter().map(ServiceKind::name).collect()
}

/// The original's default `--required-services`.
pub const ORIGINAL_REQUIRED: &str = "redis-primary,timescale-primary,prometheus,grafana,minio";

/// One service's verdict.
#[derive(Debug, Clone)]
pub struct ServiceState {
    /// Name.
    pub service: String,
    /// `running`, `exited` (crashed), `not_started`, `not_provided` (native) or compose's state.
    pub state: String,
    /// `healthy`, `unhealthy`, or compose's health (may be empty).
    pub health: String,
    /// The probe (None for compose rows judged without probes).
    pub probe: Option<Probe>,
    /// The pid recorded for it.
    pub pid: Option<u32>,
}

impl ServiceState {
    fn is_healthy(&self) -> bool {
        self.health == "healthy"
    }

    fn json(&self) -> Json {
        let mut m = Map::new();
        m.insert("state".into(), json!(self.state));
        m.insert("health".into(), json!(self.health));
        if let Some(p) = &self.probe {
            m.insert("probe".into(), json!(p.probe));
            m.insert("answer".into(), json!(p.answer));
            m.insert("details".into(), Json::Object(p.details.clone()));
            m.insert("probe_ms".into(), json!(p.probe_ms));
        }
        if let Some(pid) = self.pid {
            m.insert("pid".into(), json!(pid));
        }
        Json::Object(m)
    }
}

/// Probe every service of a native stack once and say what state each is in.
#[must_use]
pub fn native_states(
    stack: &Stack,
    password: Option<&str>,
    timeout: Duration,
) -> Vec<ServiceState> {
    let probes = password.map(|pw| probe::health(stack, pw, timeout));
    stack
        .kinds()
        .into_iter()
        .enumerate()
        .map(|(i, kind)| {
            let sup = supervisor(stack, kind);
            let recorded = sup.recorded().ok().flatten();
            let alive = sup.running().ok().flatten().is_some();
            let mut probe = probes.as_ref().and_then(|p| p.get(i).cloned());
            let (state, healthy) = match (&recorded, alive) {
                (None, _) => ("not_started", false),
                (Some(_), false) => ("exited", false),
                (Some(_), true) => ("running", probe.as_ref().is_some_and(|p| p.ok)),
            };
            if let (Some(r), false, Some(p)) = (&recorded, alive, probe.as_mut()) {
                p.ok = false;
                p.answer = format!("process {} is not running; {}", r.pid, p.answer);
            }
            ServiceState {
                service: kind.name(),
                state: state.to_string(),
                health: if healthy { "healthy" } else { "unhealthy" }.to_string(),
                probe,
                pid: recorded.map(|r| r.pid),
            }
        })
        .collect()
}

/// The verdict over `states` for `required` (names; `redis-sentinel` = its three members).
#[derive(Debug, Clone)]
pub struct Verdict {
    /// All good.
    pub healthy: bool,
    /// Required services that were never started (or absent from the rows).
    pub missing: Vec<String>,
    /// Required services present but not healthy.
    pub unhealthy: Vec<String>,
    /// Required services the backend cannot provide (Grafana, Loki, Tempo, MinIO natively).
    pub not_provided: Vec<String>,
    /// `healthy`, `compose_command_failed`, `missing_and_unhealthy`, `missing_services`,
    /// `unhealthy_services`.
    pub classification: String,
}

/// Judge `states` against `required`. `native` marks the Grafana/Loki/Tempo/MinIO names as not
/// provided instead of missing. `command_failed` is the compose command's failure.
#[must_use]
pub fn judge(
    states: &[ServiceState],
    required: &[String],
    native: bool,
    command_failed: bool,
) -> Verdict {
    let np: Vec<String> = if native {
        NOT_PROVIDED.iter().map(|s| (*s).to_string()).collect()
    } else {
        Vec::new()
    };
    judge_with(states, required, &np, command_failed)
}

/// [`judge`] with an explicit list of required names the backend cannot provide.
#[must_use]
pub fn judge_with(
    states: &[ServiceState],
    required: &[String],
    not_provided_names: &[String],
    command_failed: bool,
) -> Verdict {
    let mut missing = Vec::new();
    let mut unhealthy = Vec::new();
    let mut not_provided = Vec::new();
    for r in expand_names(required) {
        if not_provided_names.contains(&r) {
            not_provided.push(r);
            continue;
        }
        match states.iter().find(|s| s.service == r) {
            None => missing.push(r),
            Some(s) if s.state == "not_started" => missing.push(r),
            Some(s) if !s.is_healthy() => unhealthy.push(r),
            Some(_) => {}
        }
    }
    let classification = if command_failed {
        "compose_command_failed"
    } else {
        match (missing.is_empty(), unhealthy.is_empty()) {
            (true, true) => "healthy",
            (false, false) => "missing_and_unhealthy",
            (false, true) => "missing_services",
            (true, false) => "unhealthy_services",
        }
    };
    Verdict {
        healthy: classification == "healthy",
        missing,
        unhealthy,
        not_provided,
        classification: classification.to_string(),
    }
}

/// Where the report's facts came from and the extra fields to record.
#[derive(Debug, Clone, Default)]
pub struct ReportContext {
    /// `compose_file` (empty in native mode and for a `--ps-json-file`).
    pub compose_file: String,
    /// `project_name` (empty where it does not apply).
    pub project_name: String,
    /// The failed compose command's output.
    pub command_error: String,
    /// `native` or `compose`.
    pub backend: String,
    /// `probes`, `ps_json_file`, `compose_ps+probes`.
    pub source: String,
    /// The native run folder.
    pub run_dir: String,
    /// Probe rounds made.
    pub attempts: u32,
    /// Seconds spent waiting for health.
    pub waited_seconds: f64,
    /// Wall time of the last probe round (ms).
    pub check_wall_ms: f64,
}

/// A JSON object that keeps its keys in insertion order when serialized (the original's key
/// order; serde_json's own map sorts its keys).
#[derive(Debug, Clone, Default)]
pub struct Report(pub Vec<(String, Json)>);

impl Report {
    /// Insert or replace `key`.
    pub fn insert(&mut self, key: impl Into<String>, value: Json) {
        let key = key.into();
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.0.push((key, value));
        }
    }

    /// The value of `key` (`Json::Null` when absent).
    #[must_use]
    pub fn get(&self, key: &str) -> &Json {
        static NULL: Json = Json::Null;
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or(&NULL, |(_, v)| v)
    }

    /// Pretty JSON text (indent 2, as the original), newline-terminated.
    #[must_use]
    pub fn to_pretty(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }
}

impl serde::Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = ser.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// Render the report JSON (original key order, then extras).
#[must_use]
pub fn render(
    states: &[ServiceState],
    required: &[String],
    v: &Verdict,
    ctx: &ReportContext,
) -> Report {
    let mut m = Report::default();
    m.insert("generated_ts_ns", json!(evidence_core::time::now_ns()));
    m.insert("healthy", json!(v.healthy));
    m.insert(
        "severity",
        json!(if v.healthy { "info" } else { "critical" }),
    );
    m.insert("classification", json!(v.classification));
    m.insert("required_services", json!(expand_names(required)));
    m.insert("missing_services", json!(v.missing));
    let unhealthy: Vec<Json> = v
        .unhealthy
        .iter()
        .filter_map(|n| states.iter().find(|s| &s.service == n))
        .map(|s| {
            let mut e = Map::new();
            e.insert("service".into(), json!(s.service));
            e.insert("state".into(), json!(s.state));
            e.insert("health".into(), json!(s.health));
            if let Some(p) = &s.probe {
                e.insert("probe".into(), json!(p.probe));
                e.insert("answer".into(), json!(p.answer));
            }
            Json::Object(e)
        })
        .collect();
    m.insert("unhealthy_services", Json::Array(unhealthy));
    let mut ss = Map::new();
    for s in states {
        ss.insert(s.service.clone(), s.json());
    }
    m.insert("service_states", Json::Object(ss));
    m.insert("compose_file", json!(ctx.compose_file));
    m.insert("project_name", json!(ctx.project_name));
    m.insert("command_error", json!(ctx.command_error));
    m.insert("backend", json!(ctx.backend));
    m.insert("source", json!(ctx.source));
    m.insert("run_dir", json!(ctx.run_dir));
    m.insert("not_provided_services", json!(v.not_provided));
    m.insert("extension", json!(crate::stack::extension()));
    m.insert("attempts", json!(ctx.attempts));
    m.insert(
        "waited_seconds",
        json!((ctx.waited_seconds * 1000.0).round() / 1000.0),
    );
    m.insert(
        "check_wall_ms",
        json!((ctx.check_wall_ms * 1000.0).round() / 1000.0),
    );
    m
}

/// Probe a native stack until the verdict is healthy or `wait` has passed (at least one round).
/// Returns states, verdict, rounds made, the wait, and the last round's wall time.
#[must_use]
pub fn native_wait(
    stack: &Stack,
    password: Option<&str>,
    required: &[String],
    wait: Duration,
    timeout: Duration,
) -> (Vec<ServiceState>, Verdict, u32, Duration, Duration) {
    let t0 = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let r0 = Instant::now();
        let states = native_states(stack, password, timeout);
        let wall = r0.elapsed();
        let v = judge(&states, required, true, false);
        if v.healthy || t0.elapsed() >= wait || evidence_core::signals::interrupted() {
            return (states, v, attempts, t0.elapsed(), wall);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_rows_as_the_original() {
        let rows = compose_core::parse_ps_json(
            r#"[{"Service":"redis-primary","State":"running","Health":"healthy"},
                {"Service":"prometheus","State":"running","Health":""},
                {"Service":"timescale-primary","State":"running","Health":"starting"},
                {"Name":"c1","Status":"Up 2 minutes"}, 3]"#,
            "t",
        )
        .unwrap();
        let rows = crate::compose::states_from_rows(&rows);
        assert_eq!(rows.len(), 4);
        let req: Vec<String> = ORIGINAL_REQUIRED.split(',').map(String::from).collect();
        let v = judge(&rows, &req, false, false);
        assert_eq!(v.missing, ["grafana", "minio"]);
        assert_eq!(v.unhealthy, ["timescale-primary"]);
        assert_eq!(v.classification, "missing_and_unhealthy");
        // Natively, grafana and minio are not provided rather than missing.
        let v = judge(&rows, &req, true, false);
        assert_eq!(v.not_provided, ["grafana", "minio"]);
        assert!(v.missing.is_empty());
    }
}
