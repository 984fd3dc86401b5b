//! Health reports in, alerts out: the alert policy of the original (`alert_policy.py`, contracts
//! §4.3) for the ops health report, and the same idea for the prod-like health reports (§2.10,
//! §2.12). Inputs are read as JSON values and walked field by field, so any shape a drill writes is
//! either understood or rejected with the field at fault — never a crash.

use serde::Serialize;
use serde_json::Value;

use evidence_core::{EvidenceError, Result};

/// SLI name prefix.
pub const PREFIX: &str = "quant_hft_";

/// SLIs whose failure is `critical` (§4.3); every other unhealthy SLI is `warn`.
pub const CRITICAL_SLIS: [&str; 4] = [
    "core_process_alive",
    "strategy_bridge_chain_integrity",
    "storage_redis_health",
    "storage_timescale_health",
];

/// One alert, in the original's key order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// `OPS_<BASE>_UNHEALTHY`, `OPS_ALL_HEALTHY`, `PRODLIKE_...`.
    pub code: String,
    /// `info`, `warn` or `critical`.
    pub severity: String,
    /// Human text.
    pub message: String,
    /// The SLI (prefixed), or `prodlike:<service>` for a prod-like service.
    pub sli_name: String,
}

/// What kind of health report an input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// slo-report's ops health report (`slis`).
    OpsHealth,
    /// The prod-like single-host health report (§2.10: `service_states`).
    Prodlike,
    /// The prod-like multi-host health report (§2.12: `service_rows`).
    ProdlikeMultiHost,
}

impl Kind {
    /// The snake-case name (as in the JSON).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Kind::OpsHealth => "ops_health",
            Kind::Prodlike => "prodlike",
            Kind::ProdlikeMultiHost => "prodlike_multi_host",
        }
    }
}

/// The alerts of one input.
#[derive(Debug, Clone)]
pub struct Assessed {
    /// The input's kind.
    pub kind: Kind,
    /// `generated_ts_ns` (0 when absent, as the original).
    pub generated_ts_ns: i64,
    /// Healthy as this tool judges it (never more healthy than the report says).
    pub healthy: bool,
    /// Warn/critical alerts (empty when healthy).
    pub alerts: Vec<Alert>,
    /// The alerts that would fire for what is healthy now (posted as resolved to Alertmanager).
    pub resolved: Vec<Alert>,
    /// SLIs the input says nobody measured (`healthy: null`), by their name without the prefix.
    pub not_measured: Vec<String>,
}

fn bad(label: &str, field: &str, expected: &str, found: &Value) -> EvidenceError {
    let mut f = found.to_string();
    if f.len() > 60 {
        f.truncate(60);
        f.push('…');
    }
    EvidenceError::parse(label, 0, field, expected, f)
}

fn opt_i64(label: &str, v: &Value, key: &str) -> Result<i64> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(x) => x
            .as_i64()
            .ok_or_else(|| bad(label, key, "an integer (epoch nanoseconds)", x)),
    }
}

fn opt_bool(label: &str, v: &Value, key: &str, field: &str) -> Result<Option<bool>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_bool()
            .map(Some)
            .ok_or_else(|| bad(label, field, "true or false", x)),
    }
}

fn opt_str<'a>(label: &str, v: &'a Value, key: &str, field: &str) -> Result<Option<&'a str>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_str()
            .map(Some)
            .ok_or_else(|| bad(label, field, "a string", x)),
    }
}

fn number_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Number(n)) => n.to_string(),
        _ => "null".to_string(),
    }
}

/// Decide the kind of a parsed report.
pub fn kind_of(label: &str, v: &Value) -> Result<Kind> {
    let Some(obj) = v.as_object() else {
        return Err(bad(label, "(document)", "a JSON object", v));
    };
    if obj.contains_key("slis") {
        Ok(Kind::OpsHealth)
    } else if obj.contains_key("service_rows") || obj.contains_key("host_summary") {
        Ok(Kind::ProdlikeMultiHost)
    } else if obj.contains_key("classification") || obj.contains_key("service_states") {
        Ok(Kind::Prodlike)
    } else {
        Err(EvidenceError::parse(
            label,
            0,
            "(document)",
            "an ops health report (with \"slis\") or a prod-like health report (with \"classification\")",
            format!(
                "an object with keys {}",
                obj.keys().take(8).cloned().collect::<Vec<_>>().join(", ")
            ),
        ))
    }
}

/// Apply the policy to one report.
pub fn assess(label: &str, v: &Value) -> Result<Assessed> {
    let kind = kind_of(label, v)?;
    let generated_ts_ns = opt_i64(label, v, "generated_ts_ns")?;
    match kind {
        Kind::OpsHealth => ops(label, v, generated_ts_ns),
        Kind::Prodlike | Kind::ProdlikeMultiHost => prodlike(label, v, kind, generated_ts_ns),
    }
}

fn ops(label: &str, v: &Value, generated_ts_ns: i64) -> Result<Assessed> {
    let slis = v
        .get("slis")
        .and_then(Value::as_array)
        .ok_or_else(|| bad(label, "slis", "a list of SLI objects", &v["slis"]))?;
    let overall = opt_bool(label, v, "overall_healthy", "overall_healthy")?.unwrap_or(false);
    let mut alerts = Vec::new();
    let mut resolved = Vec::new();
    let mut not_measured = Vec::new();
    for (i, s) in slis.iter().enumerate() {
        let f = |k: &str| format!("slis[{i}].{k}");
        if !s.is_object() {
            return Err(bad(label, &format!("slis[{i}]"), "an SLI object", s));
        }
        let name = opt_str(label, s, "name", &f("name"))?
            .ok_or_else(|| bad(label, &f("name"), "the SLI name", &Value::Null))?;
        // `healthy: null` is an SLI nobody measured (slo-report lists it in `not_measured`, e.g. the
        // storage SLIs without a prod-like health report): it neither fires nor resolves an alert.
        if s.get("healthy") == Some(&Value::Null) {
            not_measured.push(name.strip_prefix(PREFIX).unwrap_or(name).to_string());
            continue;
        }
        let healthy = opt_bool(label, s, "healthy", &f("healthy"))?.ok_or_else(|| {
            bad(
                label,
                &f("healthy"),
                "true, false or null (not measured)",
                s.get("healthy").unwrap_or(&Value::Null),
            )
        })?;
        // The original raised KeyError on a missing detail; an SLI without one still alerts.
        let detail = match opt_str(label, s, "detail", &f("detail"))? {
            Some(d) => d.to_string(),
            None => format!(
                "value={} target={}",
                number_text(s.get("value")),
                number_text(s.get("target"))
            ),
        };
        let base = name.strip_prefix(PREFIX).unwrap_or(name);
        let code = format!("OPS_{}_UNHEALTHY", base.to_ascii_uppercase());
        let sli_name = format!("{PREFIX}{base}");
        let severity = if CRITICAL_SLIS.contains(&base) {
            "critical"
        } else {
            "warn"
        };
        let alert = Alert {
            code,
            severity: severity.into(),
            message: format!("{base} unhealthy: {detail}"),
            sli_name,
        };
        if healthy {
            resolved.push(alert);
        } else {
            alerts.push(alert);
        }
    }
    // The original said OPS_ALL_HEALTHY/info for a report that calls itself unhealthy with no SLI.
    if alerts.is_empty() && !overall {
        alerts.push(Alert {
            code: "OPS_OVERALL_UNHEALTHY".into(),
            severity: "critical".into(),
            message: if slis.is_empty() {
                "the health report has no SLI and says overall_healthy=false".into()
            } else {
                "the health report says overall_healthy=false although every SLI is healthy".into()
            },
            sli_name: format!("{PREFIX}core_process_alive"),
        });
    }
    Ok(Assessed {
        kind: Kind::OpsHealth,
        generated_ts_ns,
        healthy: alerts.is_empty(),
        alerts,
        resolved,
        not_measured,
    })
}

fn service_list(label: &str, v: &Value, key: &str) -> Result<Vec<String>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_str()
                    .map(ToString::to_string)
                    .ok_or_else(|| bad(label, &format!("{key}[{i}]"), "a service name", x))
            })
            .collect(),
        Some(x) => Err(bad(label, key, "a list of service names", x)),
    }
}

fn prodlike(label: &str, v: &Value, kind: Kind, generated_ts_ns: i64) -> Result<Assessed> {
    let healthy_flag = opt_bool(label, v, "healthy", "healthy")?.unwrap_or(false);
    let classification = opt_str(label, v, "classification", "classification")?
        .unwrap_or("unknown")
        .to_string();
    let severity = match opt_str(label, v, "severity", "severity")? {
        Some("info" | "warn" | "critical") | None => "critical",
        Some("warning") => "warn",
        Some(other) => {
            return Err(bad(
                label,
                "severity",
                "info, warn or critical",
                &Value::String(other.to_string()),
            ));
        }
    };
    let required = service_list(label, v, "required_services")?;
    let missing = service_list(label, v, "missing_services")?;
    let mut unhealthy: Vec<(String, String, String)> = Vec::new();
    match v.get("unhealthy_services") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for (i, u) in a.iter().enumerate() {
                let f = |k: &str| format!("unhealthy_services[{i}].{k}");
                if !u.is_object() {
                    return Err(bad(
                        label,
                        &format!("unhealthy_services[{i}]"),
                        "an object",
                        u,
                    ));
                }
                let svc = opt_str(label, u, "service", &f("service"))?
                    .ok_or_else(|| bad(label, &f("service"), "a service name", &Value::Null))?;
                let state = opt_str(label, u, "state", &f("state"))?.unwrap_or("");
                let health = opt_str(label, u, "health", &f("health"))?.unwrap_or("");
                unhealthy.push((svc.into(), state.into(), health.into()));
            }
        }
        Some(x) => return Err(bad(label, "unhealthy_services", "a list", x)),
    }
    let mut alerts = Vec::new();
    if classification == "compose_command_failed" {
        let mut err = opt_str(label, v, "command_error", "command_error")?
            .unwrap_or("")
            .replace(['\n', '\r'], " ");
        if err.chars().count() > 200 {
            err = err.chars().take(200).collect::<String>() + "…";
        }
        alerts.push(Alert {
            code: "PRODLIKE_COMPOSE_COMMAND_FAILED".into(),
            severity: "critical".into(),
            message: format!("the stack's status command failed: {err}"),
            sli_name: "prodlike".into(),
        });
    }
    for m in &missing {
        alerts.push(Alert {
            code: "PRODLIKE_SERVICE_MISSING".into(),
            severity: "critical".into(),
            message: format!("{m} missing: required but not running"),
            sli_name: format!("prodlike:{m}"),
        });
    }
    for (svc, state, health) in &unhealthy {
        alerts.push(Alert {
            code: "PRODLIKE_SERVICE_UNHEALTHY".into(),
            severity: severity.into(),
            message: format!("{svc} unhealthy: state={state} health={health}"),
            sli_name: format!("prodlike:{svc}"),
        });
    }
    if alerts.is_empty() && (!healthy_flag || classification != "healthy") {
        alerts.push(Alert {
            code: format!("PRODLIKE_{}", classification.to_ascii_uppercase()),
            severity: "critical".into(),
            message: format!(
                "the prod-like health report says healthy={healthy_flag}, classification={classification}"
            ),
            sli_name: "prodlike".into(),
        });
    }
    let bad_services: Vec<&String> = missing
        .iter()
        .chain(unhealthy.iter().map(|u| &u.0))
        .collect();
    let resolved = required
        .iter()
        .filter(|r| !bad_services.contains(r))
        .flat_map(|r| {
            [
                Alert {
                    code: "PRODLIKE_SERVICE_MISSING".into(),
                    severity: "critical".into(),
                    message: format!("{r} running"),
                    sli_name: format!("prodlike:{r}"),
                },
                Alert {
                    code: "PRODLIKE_SERVICE_UNHEALTHY".into(),
                    severity: severity.into(),
                    message: format!("{r} healthy"),
                    sli_name: format!("prodlike:{r}"),
                },
            ]
        })
        .collect();
    Ok(Assessed {
        kind,
        generated_ts_ns,
        healthy: alerts.is_empty(),
        alerts,
        resolved,
        not_measured: Vec::new(),
    })
}

/// The alerts of all inputs: every warn/critical alert, or the single `OPS_ALL_HEALTHY`.
#[must_use]
pub fn combine(assessed: &[Assessed]) -> Vec<Alert> {
    let alerts: Vec<Alert> = assessed.iter().flat_map(|a| a.alerts.clone()).collect();
    if alerts.is_empty() {
        let unmeasured: Vec<&str> = assessed
            .iter()
            .flat_map(|a| a.not_measured.iter().map(String::as_str))
            .collect();
        let sli = if assessed.iter().any(|a| a.kind == Kind::OpsHealth) {
            format!("{PREFIX}core_process_alive")
        } else {
            "prodlike".into()
        };
        vec![Alert {
            code: "OPS_ALL_HEALTHY".into(),
            severity: "info".into(),
            // The same words as slo-report's own OPS_ALL_HEALTHY.
            message: if unmeasured.is_empty() {
                "all SLI checks are healthy".into()
            } else {
                format!(
                    "all measured SLI checks are healthy (not measured: {})",
                    unmeasured.join(", ")
                )
            },
            sli_name: sli,
        }]
    } else {
        alerts
    }
}

/// Escape a Markdown table cell.
#[must_use]
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ops_policy() {
        let v = json!({"generated_ts_ns": 5, "overall_healthy": false, "slis": [
            {"name": "quant_hft_core_process_alive", "healthy": true, "detail": "ok"},
            {"name": "quant_hft_strategy_bridge_latency_p99_ms", "healthy": false, "detail": "slow"},
            {"name": "quant_hft_storage_timescale_health", "healthy": false, "value": null, "target": 1.0},
        ]});
        let a = assess("x", &v).unwrap();
        assert_eq!(a.generated_ts_ns, 5);
        assert_eq!(a.alerts.len(), 2);
        assert_eq!(
            a.alerts[0].code,
            "OPS_STRATEGY_BRIDGE_LATENCY_P99_MS_UNHEALTHY"
        );
        assert_eq!(a.alerts[0].severity, "warn");
        assert_eq!(a.alerts[1].severity, "critical");
        assert_eq!(
            a.alerts[1].message,
            "storage_timescale_health unhealthy: value=null target=1.0"
        );
    }

    #[test]
    fn empty_slis_unhealthy_is_not_all_healthy() {
        let a = assess("x", &json!({"slis": [], "overall_healthy": false})).unwrap();
        assert_eq!(a.alerts[0].code, "OPS_OVERALL_UNHEALTHY");
        let a = assess("x", &json!({"slis": [], "overall_healthy": true})).unwrap();
        assert!(a.healthy);
        assert_eq!(combine(&[a])[0].code, "OPS_ALL_HEALTHY");
    }

    #[test]
    fn bad_fields_are_named() {
        let e = assess(
            "f.json",
            &json!({"slis": [{"name": "x", "healthy": "yes"}]}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("slis[0].healthy"), "{e}");
        let e = assess("f.json", &json!([1])).unwrap_err().to_string();
        assert!(e.contains("a JSON object"), "{e}");
    }
}
