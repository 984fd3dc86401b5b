//! `render-prom-rules`: Prometheus alerting rules for the drills' metrics — the node_exporter
//! textfile metrics `evidence prom` writes (docs/formats.md, "evidence prom") — so a failed, stale
//! or out-of-target drill pages someone instead of sitting in a results folder. The thresholds are
//! the verifiers' (contracts §4.4) and can be changed by flag. Serialised with serde (yaml_serde).

use clap::Parser;
use evidence_core::cli::{self, EXIT_STATUS_HELP};
use evidence_core::io::Output;
use evidence_core::{EvidenceError, Exit, Result};
use serde::Serialize;

const AFTER_HELP: &str = "EXAMPLE:\n  render-prom-rules --output-file /etc/prometheus/rules/ctp-ops.yml\n  promtool check rules /etc/prometheus/rules/ctp-ops.yml\n\nThe metrics come from `evidence prom` (node_exporter textfile collector).";

/// Write Prometheus alerting rules for the ctp-ops drill metrics.
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}\n\n{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// Rules file (`-` for stdout).
    #[arg(long, default_value = "deploy/prometheus/ctp-ops-rules.yml")]
    pub output_file: Output,
    /// Rule group name.
    #[arg(long, default_value = "ctp-ops-drills")]
    pub group: String,
    /// A drill without a success for this many days is stale (the timers run weekly).
    #[arg(long, default_value_t = 8.0)]
    pub max_age_days: f64,
    /// WAL recovery: largest RTO, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub max_rto_seconds: f64,
    /// WAL recovery: largest RPO, events.
    #[arg(long, default_value_t = 0.0)]
    pub max_rpo_events: f64,
    /// Rollback: largest duration, seconds.
    #[arg(long, default_value_t = 180.0)]
    pub max_rollback_seconds: f64,
    /// Reconnect: recovery P99 must stay below this, seconds.
    #[arg(long, default_value_t = 10.0)]
    pub target_p99_sec: f64,
    /// Failover: largest outage, seconds (the runbooks' 300).
    #[arg(long, default_value_t = 300.0)]
    pub max_failover_seconds: f64,
    /// Failover: largest data lag, events.
    #[arg(long, default_value_t = 0.0)]
    pub max_data_lag_events: f64,
}

/// A rules file.
#[derive(Debug, Serialize)]
pub struct RulesFile {
    /// Rule groups.
    pub groups: Vec<Group>,
}

/// A rule group.
#[derive(Debug, Serialize)]
pub struct Group {
    /// Name.
    pub name: String,
    /// Rules.
    pub rules: Vec<Rule>,
}

/// One alerting rule.
#[derive(Debug, Serialize)]
pub struct Rule {
    /// Alert name.
    pub alert: String,
    /// PromQL expression.
    pub expr: String,
    /// Pending duration.
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    /// Labels (severity, source).
    pub labels: std::collections::BTreeMap<String, String>,
    /// Annotations (summary, description).
    pub annotations: std::collections::BTreeMap<String, String>,
}

fn rule(alert: &str, expr: String, severity: &str, summary: &str, description: &str) -> Rule {
    let mut labels = std::collections::BTreeMap::new();
    labels.insert("severity".into(), severity.into());
    labels.insert("source".into(), "ctp-ops".into());
    let mut annotations = std::collections::BTreeMap::new();
    annotations.insert("summary".into(), summary.into());
    annotations.insert("description".into(), description.into());
    Rule {
        alert: alert.into(),
        expr,
        for_: None,
        labels,
        annotations,
    }
}

fn num(flag: &str, v: f64) -> Result<String> {
    if v.is_finite() && v >= 0.0 {
        Ok(format!("{v}"))
    } else {
        Err(EvidenceError::usage(format!(
            "{flag} must be a finite number >= 0, found {v}"
        )))
    }
}

/// Build the rules.
pub fn rules(cli: &Cli) -> Result<RulesFile> {
    if cli.group.trim().is_empty() {
        return Err(EvidenceError::usage("--group must not be empty"));
    }
    let age = num("--max-age-days", cli.max_age_days)?;
    let rto = num("--max-rto-seconds", cli.max_rto_seconds)?;
    let rpo = num("--max-rpo-events", cli.max_rpo_events)?;
    let rb = num("--max-rollback-seconds", cli.max_rollback_seconds)?;
    let p99 = num("--target-p99-sec", cli.target_p99_sec)?;
    let fo = num("--max-failover-seconds", cli.max_failover_seconds)?;
    let lag = num("--max-data-lag-events", cli.max_data_lag_events)?;
    let r = vec![
        rule(
            "CtpOpsDrillFailed",
            "ctp_ops_drill_result == 0".into(),
            "critical",
            "ctp-ops {{ $labels.sop }} drill failed",
            "The latest {{ $labels.sop }} drill on {{ $labels.instance }} failed or its evidence did not verify. See the results folder (evidence index).",
        ),
        rule(
            "CtpOpsDrillDryRunOnly",
            "ctp_ops_drill_dry_run == 1".into(),
            "warn",
            "ctp-ops {{ $labels.sop }} evidence is from a dry run",
            "The latest {{ $labels.sop }} evidence on {{ $labels.instance }} was written by a dry run: it proves nothing.",
        ),
        rule(
            "CtpOpsDrillStale",
            format!("time() - ctp_ops_drill_last_success_timestamp_seconds > {age} * 86400"),
            "warn",
            "ctp-ops {{ $labels.sop }} drill has not passed recently",
            &format!(
                "No passing {{{{ $labels.sop }}}} drill on {{{{ $labels.instance }}}} for more than {age} days."
            ),
        ),
        Rule {
            for_: Some("1h".into()),
            ..rule(
                "CtpOpsDrillMetricsMissing",
                "absent(ctp_ops_drill_last_run_timestamp_seconds)".into(),
                "warn",
                "no ctp-ops drill metrics",
                "node_exporter exports no ctp_ops_* metrics: `evidence prom` does not run, or its textfile folder is not the collector's.",
            )
        },
        rule(
            "CtpOpsWalRtoHigh",
            format!("ctp_ops_wal_rto_seconds > {rto}"),
            "critical",
            "WAL recovery RTO above target",
            &format!("WAL recovery took {{{{ $value }}}} s (target {rto} s)."),
        ),
        rule(
            "CtpOpsWalRpoHigh",
            format!("ctp_ops_wal_rpo_events > {rpo}"),
            "critical",
            "WAL recovery lost events",
            &format!("WAL recovery lost {{{{ $value }}}} acknowledged events (target {rpo})."),
        ),
        rule(
            "CtpOpsRollbackSlow",
            format!("ctp_ops_rollback_seconds > {rb}"),
            "critical",
            "deploy rollback above target",
            &format!("Rollback took {{{{ $value }}}} s (target {rb} s)."),
        ),
        rule(
            "CtpOpsReconnectP99High",
            format!("ctp_ops_reconnect_recovery_p99_seconds >= {p99}"),
            "warn",
            "reconnect recovery P99 at or above target",
            &format!("Reconnect recovery P99 {{{{ $value }}}} s (target < {p99} s)."),
        ),
        rule(
            "CtpOpsFailoverSlow",
            format!("ctp_ops_failover_outage_seconds > {fo}"),
            "critical",
            "failover outage above target",
            &format!("Failover outage {{{{ $value }}}} s (target {fo} s)."),
        ),
        rule(
            "CtpOpsFailoverDataLag",
            format!("ctp_ops_failover_data_lag_events > {lag}"),
            "critical",
            "failover lost data",
            &format!("Standby lagged {{{{ $value }}}} events at failover (target {lag})."),
        ),
    ];
    Ok(RulesFile {
        groups: vec![Group {
            name: cli.group.clone(),
            rules: r,
        }],
    })
}

/// Render and write.
pub fn run(cli: Cli) -> Result<Exit> {
    let file = rules(&cli)?;
    let text = yaml_serde::to_string(&file)
        .map_err(|e| EvidenceError::failed(format!("cannot serialise the rules: {e}")))?;
    let text = format!(
        "# Prometheus alerting rules for the ctp-ops drills; rendered by render-prom-rules {}.\n# Metrics: `evidence prom` (node_exporter textfile collector).\n{text}",
        env!("CARGO_PKG_VERSION")
    );
    cli.output_file.write_all(text.as_bytes())?;
    if let Some(p) = cli.output_file.path() {
        cli::stdout_write(&format!("{}\n", p.display()))?;
    }
    Ok(Exit::Pass)
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
