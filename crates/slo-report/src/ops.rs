//! The ops health report (five `quant_hft_*` SLIs) and the alert report, as the original's
//! `monitoring.py`, `sli_catalog.py` and `alert_policy.py` build them (contracts §2.4, §4).

use std::collections::BTreeMap;
use std::path::Path;

use evidence_core::{EvidenceError, Result};
use serde::{Deserialize, Serialize};

use crate::fmt::{g, yes_no};

/// SLI name prefix.
pub const PREFIX: &str = "quant_hft_";

/// `--strategy-bridge-chain-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChainStatus {
    /// Not known (the SLI value is null, so it is unhealthy).
    Unknown,
    /// state→intent→order chain complete.
    Complete,
    /// Chain broken.
    Incomplete,
}

/// `--strategy-bridge-chain-source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ChainSource {
    /// Given by the operator.
    Manual,
    /// Detected from Redis by the evidence runner.
    #[value(name = "auto_detected")]
    AutoDetected,
}

/// `--storage-redis-health`, `--storage-timescale-health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageHealth {
    /// Not known (null, unhealthy).
    Unknown,
    /// Healthy.
    Healthy,
    /// Unhealthy.
    Unhealthy,
}

fn value_name<T: clap::ValueEnum>(v: &T) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

/// One SLI record.
#[derive(Debug, Clone, Serialize)]
pub struct Sli {
    /// Prefixed name.
    pub name: String,
    /// Equal to the name.
    pub slo_name: String,
    /// Always `unknown`.
    pub environment: String,
    /// Always `core_engine`.
    pub service: String,
    /// The value, or null.
    pub value: Option<f64>,
    /// The target.
    pub target: f64,
    /// `bool` or `ms`.
    pub unit: String,
    /// Healthy; `null` when nothing measured it (no input was given): no alert, and the overall
    /// verdict is over the measured SLIs.
    pub healthy: Option<bool>,
    /// How the value was produced.
    pub detail: String,
}

impl Sli {
    fn new(
        base: &str,
        value: Option<f64>,
        target: f64,
        unit: &str,
        healthy: Option<bool>,
        detail: String,
    ) -> Sli {
        let name = format!("{PREFIX}{base}");
        Sli {
            slo_name: name.clone(),
            name,
            environment: "unknown".into(),
            service: "core_engine".into(),
            value,
            target,
            unit: unit.into(),
            healthy,
            detail,
        }
    }

    /// The name without the prefix.
    #[must_use]
    pub fn base(&self) -> &str {
        self.name.strip_prefix(PREFIX).unwrap_or(&self.name)
    }
}

/// The health report's metadata, in the original's key order (counts as strings).
#[derive(Debug, Clone, Serialize)]
pub struct Metadata {
    /// `--operator`.
    pub operator: String,
    /// `--host`.
    pub host: String,
    /// `--build`.
    pub build: String,
    /// `--config-profile`.
    pub config_profile: String,
    /// `--interface`.
    pub interface: String,
    /// `--strategy-bridge-chain-source`.
    pub strategy_bridge_chain_source: String,
    /// `--strategy-bridge-state-key-count`.
    pub strategy_bridge_state_key_count: String,
    /// `--strategy-bridge-intent-count`.
    pub strategy_bridge_intent_count: String,
    /// `--strategy-bridge-order-key-count`.
    pub strategy_bridge_order_key_count: String,
    /// Always `unknown`.
    pub environment: String,
    /// Always `core_engine`.
    pub service: String,
}

impl Metadata {
    fn sorted_pairs(&self) -> Vec<(&'static str, &str)> {
        let mut v = vec![
            ("build", self.build.as_str()),
            ("config_profile", &self.config_profile),
            ("environment", &self.environment),
            ("host", &self.host),
            ("interface", &self.interface),
            ("operator", &self.operator),
            ("service", &self.service),
            (
                "strategy_bridge_chain_source",
                &self.strategy_bridge_chain_source,
            ),
            (
                "strategy_bridge_intent_count",
                &self.strategy_bridge_intent_count,
            ),
            (
                "strategy_bridge_order_key_count",
                &self.strategy_bridge_order_key_count,
            ),
            (
                "strategy_bridge_state_key_count",
                &self.strategy_bridge_state_key_count,
            ),
        ];
        v.sort_by_key(|(k, _)| *k);
        v
    }
}

/// What the SLIs are computed from.
#[derive(Debug, Clone)]
pub struct SliInputs {
    /// Health lines in the probe log.
    pub health_lines: u64,
    /// The probe's last sample is at or after the last fault event (it outlived the faults).
    pub probe_outlived_faults: bool,
    /// Text for the liveness detail.
    pub liveness_detail: String,
    /// Reconnect recovery P99 in seconds.
    pub recovery_p99_s: Option<f64>,
    /// `--strategy-bridge-target-ms`.
    pub bridge_target_ms: f64,
    /// Chain status.
    pub chain: ChainStatus,
    /// Redis.
    pub redis: Measured,
    /// Timescale.
    pub timescale: Measured,
}

/// A boolean SLI's input: measured (healthy or not, with how) or not measured (why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Measured {
    /// Measured.
    Yes {
        /// Healthy.
        healthy: bool,
        /// How it was measured.
        detail: String,
    },
    /// Not measured.
    No(String),
}

impl Measured {
    /// From an operator's `--storage-*-health` (unknown: not measured).
    #[must_use]
    pub fn from_input(h: StorageHealth) -> Measured {
        match h {
            StorageHealth::Unknown => Measured::No("not measured: no input".into()),
            h => Measured::Yes {
                healthy: h == StorageHealth::Healthy,
                detail: format!("input={}", value_name(&h)),
            },
        }
    }
}

/// A prod-like health report (prodlike-health / the original's `check_prodlike_health`,
/// contracts §2.10); only what the storage SLIs need.
#[derive(Debug, Clone, Deserialize)]
pub struct ProdlikeHealth {
    /// When it was made.
    pub generated_ts_ns: i64,
    /// The stack's verdict.
    pub healthy: bool,
    /// Required services that were never started / not found.
    #[serde(default)]
    pub missing_services: Vec<String>,
    /// Services found unhealthy.
    #[serde(default)]
    pub unhealthy_services: Vec<ServiceEntry>,
    /// Every service seen: state and health.
    #[serde(default)]
    pub service_states: BTreeMap<String, ServiceState>,
}

/// An `unhealthy_services` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceEntry {
    /// Service name.
    pub service: String,
}

/// A `service_states` entry.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceState {
    /// `running`, `exited`, `not_started`, `not_provided`, ...
    #[serde(default)]
    pub state: String,
    /// `healthy`, `unhealthy` or empty.
    #[serde(default)]
    pub health: String,
}

impl ProdlikeHealth {
    /// Read `path`.
    ///
    /// # Errors
    /// `Io`, or `Parse` naming the file, line and field when it is not such a report.
    pub fn read(path: &Path) -> Result<ProdlikeHealth> {
        let text =
            std::fs::read_to_string(path).map_err(|e| EvidenceError::io("cannot read", path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            let msg = e.to_string();
            let field = msg.split('`').nth(1).unwrap_or("report").to_string();
            EvidenceError::parse(
                path.display().to_string(),
                e.line(),
                field,
                "a prod-like health report (check_prodlike_health / prodlike-health JSON)",
                msg,
            )
        })
    }

    /// The health of the services named `<prefix>*` (`redis-`, `timescale-`): healthy when
    /// every one of them is (state `running`/`up`, health empty or `healthy`, as the original
    /// judges a row), unhealthy when one is missing or unhealthy; not measured when the report
    /// has none of them.
    #[must_use]
    pub fn storage(&self, prefix: &str, label: &str) -> Measured {
        let mut verdicts: BTreeMap<&str, String> = BTreeMap::new();
        for (name, st) in &self.service_states {
            if name.starts_with(prefix) && st.state != "not_provided" {
                let ok = matches!(st.state.as_str(), "running" | "up")
                    && matches!(st.health.as_str(), "" | "healthy");
                let text = if ok {
                    "healthy".to_string()
                } else {
                    format!("unhealthy (state={}, health={})", st.state, st.health)
                };
                verdicts.insert(name, text);
            }
        }
        for e in &self.unhealthy_services {
            if e.service.starts_with(prefix) {
                verdicts
                    .entry(&e.service)
                    .and_modify(|t| {
                        if t == "healthy" {
                            *t = "unhealthy".into();
                        }
                    })
                    .or_insert_with(|| "unhealthy".into());
            }
        }
        for m in &self.missing_services {
            if m.starts_with(prefix) {
                verdicts.insert(m, "missing".into());
            }
        }
        if verdicts.is_empty() {
            return Measured::No(format!("not measured: no {prefix}* service in {label}"));
        }
        Measured::Yes {
            healthy: verdicts.values().all(|v| v == "healthy"),
            detail: format!(
                "prodlike={label}: {}",
                verdicts
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Build the five SLIs.
#[must_use]
pub fn build_slis(i: &SliInputs) -> Vec<Sli> {
    let alive = i.health_lines > 0 && i.probe_outlived_faults;
    let bool_sli = |base: &str, m: &Measured| match m {
        Measured::Yes { healthy, detail } => Sli::new(
            base,
            Some(if *healthy { 1.0 } else { 0.0 }),
            1.0,
            "bool",
            Some(*healthy),
            detail.clone(),
        ),
        Measured::No(why) => Sli::new(base, None, 1.0, "bool", None, why.clone()),
    };
    let p99_ms = i.recovery_p99_s.map(|s| s * 1000.0);
    vec![
        Sli::new(
            "core_process_alive",
            Some(if alive { 1.0 } else { 0.0 }),
            1.0,
            "bool",
            Some(alive),
            i.liveness_detail.clone(),
        ),
        Sli::new(
            "strategy_bridge_latency_p99_ms",
            p99_ms,
            i.bridge_target_ms,
            "ms",
            Some(p99_ms.is_some_and(|v| v <= i.bridge_target_ms)),
            "derived from reconnect recovery samples (the reconnect recovery P99, not a measured bridge latency)".into(),
        ),
        bool_sli(
            "strategy_bridge_chain_integrity",
            &match i.chain {
                ChainStatus::Unknown => Measured::No("not measured: no input".into()),
                c => Measured::Yes {
                    healthy: c == ChainStatus::Complete,
                    detail: format!("input={}", value_name(&c)),
                },
            },
        ),
        bool_sli("storage_redis_health", &i.redis),
        bool_sli("storage_timescale_health", &i.timescale),
    ]
}

/// Build the metadata block.
#[must_use]
pub fn metadata(cli: &crate::Cli) -> Metadata {
    Metadata {
        operator: cli.operator.clone(),
        host: cli.host.clone(),
        build: cli.build.clone(),
        config_profile: cli.config_profile.clone(),
        interface: cli.interface.clone(),
        strategy_bridge_chain_source: value_name(&cli.strategy_bridge_chain_source),
        strategy_bridge_state_key_count: cli.strategy_bridge_state_key_count.to_string(),
        strategy_bridge_intent_count: cli.strategy_bridge_intent_count.to_string(),
        strategy_bridge_order_key_count: cli.strategy_bridge_order_key_count.to_string(),
        environment: "unknown".into(),
        service: "core_engine".into(),
    }
}

/// The ops health report.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport<P: Serialize> {
    /// Wall clock when the report was made.
    pub generated_ts_ns: i64,
    /// `core_engine + strategy_bridge + storage`.
    pub scope: String,
    /// Every measured SLI healthy.
    pub overall_healthy: bool,
    /// Metadata.
    pub metadata: Metadata,
    /// The SLIs.
    pub slis: Vec<Sli>,
    /// The SLIs nothing measured (no input given): neither healthy nor alerted on.
    pub not_measured: Vec<String>,
    /// Provenance (ours).
    pub provenance: P,
}

/// One alert.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// `OPS_<BASE>_UNHEALTHY` or `OPS_ALL_HEALTHY`.
    pub code: String,
    /// `info`, `warn` or `critical`.
    pub severity: String,
    /// `<base> unhealthy: <detail>`.
    pub message: String,
    /// Prefixed SLI name.
    pub sli_name: String,
}

/// The alert report.
#[derive(Debug, Clone, Serialize)]
pub struct AlertReport<P: Serialize> {
    /// Copied from the health report.
    pub generated_ts_ns: i64,
    /// Copied from the health report.
    pub overall_healthy: bool,
    /// The alerts.
    pub alerts: Vec<Alert>,
    /// Provenance (ours).
    pub provenance: P,
}

/// The alert policy: one alert per unhealthy SLI, or `OPS_ALL_HEALTHY`.
#[must_use]
pub fn alerts(slis: &[Sli]) -> Vec<Alert> {
    let v: Vec<Alert> = slis
        .iter()
        .filter(|s| s.healthy == Some(false))
        .map(|s| {
            let base = s.base();
            let severity = if base == "strategy_bridge_latency_p99_ms" {
                "warn"
            } else {
                "critical"
            };
            Alert {
                code: format!("OPS_{}_UNHEALTHY", base.to_ascii_uppercase()),
                severity: severity.into(),
                message: format!("{base} unhealthy: {}", s.detail),
                sli_name: s.name.clone(),
            }
        })
        .collect();
    if v.is_empty() {
        let unmeasured: Vec<&str> = slis
            .iter()
            .filter(|s| s.healthy.is_none())
            .map(Sli::base)
            .collect();
        vec![Alert {
            code: "OPS_ALL_HEALTHY".into(),
            severity: "info".into(),
            message: if unmeasured.is_empty() {
                "all SLI checks are healthy".into()
            } else {
                format!(
                    "all measured SLI checks are healthy (not measured: {})",
                    unmeasured.join(", ")
                )
            },
            sli_name: format!("{PREFIX}core_process_alive"),
        }]
    } else {
        v
    }
}

/// Escape a table cell (`|` and newlines would break the row).
#[must_use]
pub fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The health Markdown (without the provenance section).
#[must_use]
pub fn health_markdown<P: Serialize>(r: &HealthReport<P>) -> String {
    let mut s = String::new();
    s.push_str("# Ops Health Report\n\n");
    s.push_str(&format!("- Scope: {}\n", r.scope));
    s.push_str(&format!("- Generated TS (ns): {}\n", r.generated_ts_ns));
    s.push_str(&format!(
        "- Overall healthy: {}\n\n",
        yes_no(r.overall_healthy)
    ));
    s.push_str("## SLI\n\n| Name | Value | Target | Healthy | Detail |\n|---|---:|---:|---|---|\n");
    for sli in &r.slis {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            sli.name,
            sli.value.map_or_else(|| "n/a".to_string(), g),
            g(sli.target),
            sli.healthy.map_or("not measured", yes_no),
            cell(&sli.detail)
        ));
    }
    s.push_str("\n## Metadata\n\n");
    for (k, v) in r.metadata.sorted_pairs() {
        s.push_str(&format!("- {k}: {v}\n"));
    }
    s
}

/// The alert Markdown (without the provenance section).
#[must_use]
pub fn alert_markdown<P: Serialize>(r: &AlertReport<P>) -> String {
    let mut s = String::new();
    s.push_str("# Ops Alert Report\n\n");
    s.push_str(&format!("- Generated TS (ns): {}\n", r.generated_ts_ns));
    s.push_str(&format!(
        "- Overall healthy: {}\n\n",
        yes_no(r.overall_healthy)
    ));
    s.push_str("| Code | Severity | SLI | Message |\n|---|---|---|---|\n");
    for a in &r.alerts {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            a.code,
            a.severity,
            a.sli_name,
            cell(&a.message)
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> SliInputs {
        SliInputs {
            health_lines: 3,
            probe_outlived_faults: true,
            liveness_detail: "x".into(),
            recovery_p99_s: Some(1.0),
            bridge_target_ms: 1500.0,
            chain: ChainStatus::Complete,
            redis: Measured::from_input(StorageHealth::Healthy),
            timescale: Measured::from_input(StorageHealth::Healthy),
        }
    }

    #[test]
    fn all_healthy_gives_info() {
        let slis = build_slis(&inputs());
        assert!(slis.iter().all(|s| s.healthy == Some(true)));
        let a = alerts(&slis);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].code.as_str(), a[0].severity.as_str()),
            ("OPS_ALL_HEALTHY", "info")
        );
    }

    #[test]
    fn severities() {
        let mut i = inputs();
        i.recovery_p99_s = Some(2.0);
        i.chain = ChainStatus::Incomplete;
        i.timescale = Measured::from_input(StorageHealth::Unhealthy);
        let slis = build_slis(&i);
        let a = alerts(&slis);
        let codes: Vec<_> = a
            .iter()
            .map(|a| (a.code.as_str(), a.severity.as_str()))
            .collect();
        assert_eq!(
            codes,
            [
                ("OPS_STRATEGY_BRIDGE_LATENCY_P99_MS_UNHEALTHY", "warn"),
                ("OPS_STRATEGY_BRIDGE_CHAIN_INTEGRITY_UNHEALTHY", "critical"),
                ("OPS_STORAGE_TIMESCALE_HEALTH_UNHEALTHY", "critical"),
            ]
        );
        assert_eq!(
            a[1].message,
            "strategy_bridge_chain_integrity unhealthy: input=incomplete"
        );
        assert_eq!(slis[2].value, Some(0.0));
        assert_eq!(slis[4].value, Some(0.0));
        // Inputs nobody gave are not measured: no alert.
        i.chain = ChainStatus::Unknown;
        i.timescale = Measured::from_input(StorageHealth::Unknown);
        i.recovery_p99_s = Some(1.0);
        let slis = build_slis(&i);
        assert_eq!(slis[2].healthy, None);
        let a = alerts(&slis);
        assert_eq!(a[0].code, "OPS_ALL_HEALTHY");
        assert_eq!(
            a[0].message,
            "all measured SLI checks are healthy (not measured: strategy_bridge_chain_integrity, storage_timescale_health)"
        );
    }
}
