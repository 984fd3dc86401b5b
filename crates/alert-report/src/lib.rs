//! `alert-report`: health reports in, alert report out — the original `render_alert_report`
//! (which crashed on every real health JSON). Reads slo-report's ops health JSON (five
//! `quant_hft_*` SLIs) and the prod-like health reports (single-host and multi-host), applies the
//! alert policy of contracts §4.3, writes the alert JSON and Markdown, and with
//! `--alertmanager-url` posts the alerts to Alertmanager (API v2): firing ones for what is
//! unhealthy, resolved ones (`endsAt` now) for what is healthy.

pub mod alertmanager;
pub mod policy;

use std::path::PathBuf;

use clap::Parser;
use evidence_core::cli::{self, EXIT_STATUS_HELP};
use evidence_core::io::Input;
use evidence_core::provenance::{Provenance, sha256_hex};
use evidence_core::{EvidenceError, Exit, Result};
use serde::Serialize;

use crate::policy::{Alert, Assessed, Kind, cell};

const AFTER_HELP: &str = "EXAMPLE:\n  slo-report ... --health-json-file docs/results/ops_health_report.json\n  alert-report --health-json-file docs/results/ops_health_report.json \\\n      --health-json-file docs/results/prodlike_health_report.json \\\n      --alertmanager-url http://127.0.0.1:9093\n\nPolicy: one alert per unhealthy SLI, OPS_<SLI>_UNHEALTHY, critical for core_process_alive,\nstrategy_bridge_chain_integrity and the two storage SLIs, warn otherwise; one alert per missing\nor unhealthy prod-like service; OPS_ALL_HEALTHY/info when nothing is unhealthy. Exit 1 when any\nalert is warn or critical.";

/// Turn health reports into the ops alert report (JSON and Markdown), optionally posted to Alertmanager.
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}\n\n{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// Health JSON: slo-report's ops health report or a prod-like health report (`-` for stdin;
    /// repeat to combine several).
    #[arg(long, required = true)]
    pub health_json_file: Vec<Input>,
    /// Alert JSON output.
    #[arg(long, default_value = "docs/results/ops_alert_report.json")]
    pub output_json_file: PathBuf,
    /// Alert Markdown output.
    #[arg(long, default_value = "docs/results/ops_alert_report.md")]
    pub output_markdown_file: PathBuf,
    /// Alertmanager base URL (http://host:port); the alerts are posted to /api/v2/alerts.
    #[arg(long)]
    pub alertmanager_url: Option<String>,
    /// Timeout of the Alertmanager request, milliseconds.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub alertmanager_timeout_ms: u64,
    /// `environment` label of the posted alerts.
    #[arg(long, default_value = "unknown")]
    pub environment: String,
    /// Who ran it (provenance).
    #[arg(long)]
    pub operator: Option<String>,
}

/// One input in the provenance.
#[derive(Debug, Serialize)]
struct InputInfo {
    file: String,
    sha256: String,
    kind: Kind,
    generated_ts_ns: i64,
    healthy: bool,
}

#[derive(Debug, Serialize)]
struct ProvenanceOut {
    #[serde(flatten)]
    base: Provenance,
    inputs: Vec<InputInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alertmanager: Option<alertmanager::Posted>,
}

/// The alert JSON: the original's keys, then provenance.
#[derive(Debug, Serialize)]
struct AlertReport {
    generated_ts_ns: i64,
    overall_healthy: bool,
    alerts: Vec<Alert>,
    provenance: ProvenanceOut,
}

fn markdown(r: &AlertReport) -> String {
    let mut s = String::new();
    s.push_str("# Ops Alert Report\n\n");
    s.push_str(&format!("- Generated TS (ns): {}\n", r.generated_ts_ns));
    s.push_str(&format!(
        "- Overall healthy: {}\n\n",
        if r.overall_healthy { "yes" } else { "no" }
    ));
    s.push_str("| Code | Severity | SLI | Message |\n|---|---|---|---|\n");
    for a in &r.alerts {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            cell(&a.code),
            cell(&a.severity),
            cell(&a.sli_name),
            cell(&a.message)
        ));
    }
    s.push_str("\n## Provenance\n\n");
    let p = &r.provenance;
    s.push_str(&format!(
        "- Tool: {} {}\n- Host: {}\n- Operator: {}\n- Started: {}\n- Finished: {}\n",
        p.base.tool,
        p.base.version,
        p.base.host,
        p.base.operator,
        p.base.started_utc,
        p.base.finished_utc
    ));
    for i in &p.inputs {
        s.push_str(&format!(
            "- Input: {} ({}, sha256 {})\n",
            cell(&i.file),
            i.kind.name(),
            i.sha256
        ));
    }
    if let Some(am) = &p.alertmanager {
        s.push_str(&format!(
            "- Alertmanager: {} firing, {} resolved, posted to {} (HTTP {})\n",
            am.firing, am.resolved, am.url, am.status
        ));
    }
    s
}

/// Read, assess, write, post.
pub fn run(cli: Cli) -> Result<Exit> {
    if cli.health_json_file.iter().filter(|i| i.is_stdin()).count() > 1 {
        return Err(EvidenceError::usage(
            "--health-json-file: stdin (-) can be given once",
        ));
    }
    if let Some(url) = &cli.alertmanager_url {
        evidence_core::health::parse_url(url)
            .map_err(|e| EvidenceError::usage(format!("--alertmanager-url: {e}")))?;
    }
    let mut prov = Provenance::start(
        "alert-report",
        env!("CARGO_PKG_VERSION"),
        cli.operator.as_deref(),
        false,
    );
    let mut assessed: Vec<Assessed> = Vec::new();
    let mut inputs = Vec::new();
    for input in &cli.health_json_file {
        let label = input.label();
        let bytes = input.read_bytes().map_err(|e| match e {
            EvidenceError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                EvidenceError::failed(format!("health json not found: {label}"))
            }
            other => other,
        })?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            EvidenceError::parse(
                &label,
                e.line(),
                "(json)",
                "a JSON health report",
                e.to_string(),
            )
        })?;
        let a = policy::assess(&label, &v)?;
        inputs.push(InputInfo {
            file: label,
            sha256: sha256_hex(&bytes),
            kind: a.kind,
            generated_ts_ns: a.generated_ts_ns,
            healthy: a.healthy,
        });
        assessed.push(a);
    }
    // The provenance's config hash covers the inputs' hashes, in order.
    let joined: String = inputs.iter().map(|i| format!("{}\n", i.sha256)).collect();
    prov = prov.with_config_bytes(joined.as_bytes());
    let alerts = policy::combine(&assessed);
    let overall_healthy = assessed.iter().all(|a| a.healthy);
    let generated_ts_ns = assessed
        .iter()
        .map(|a| a.generated_ts_ns)
        .max()
        .unwrap_or(0);

    let posted = match &cli.alertmanager_url {
        None => None,
        Some(url) => Some(alertmanager::post(
            url,
            &assessed,
            &cli.environment,
            generated_ts_ns,
            std::time::Duration::from_millis(cli.alertmanager_timeout_ms),
        )?),
    };
    prov.finish();
    let report = AlertReport {
        generated_ts_ns,
        overall_healthy,
        alerts,
        provenance: ProvenanceOut {
            base: prov,
            inputs,
            alertmanager: posted,
        },
    };
    let mut json = serde_json::to_string_pretty(&report)
        .map_err(|e| EvidenceError::failed(format!("cannot serialise the alert report: {e}")))?;
    json.push('\n');
    evidence_core::io::write_atomic(&cli.output_json_file, json.as_bytes())?;
    evidence_core::io::write_atomic(&cli.output_markdown_file, markdown(&report).as_bytes())?;
    cli::stdout_write(&format!(
        "{}\n{}\n",
        cli.output_json_file.display(),
        cli.output_markdown_file.display()
    ))?;
    Ok(Exit::pass_if(report.overall_healthy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
