//! `evidence prom`: node_exporter textfile metrics (Prometheus text exposition format 0.0.4) per
//! drill evidence, labelled `sop` (preflight, reconnect, wal, rollback, rollout, prodlike,
//! multihost, failover) and `evidence` (the file). The last success time survives failed runs
//! through a small state file. The metric names are the ones render-prom-rules alerts on.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use evidence_core::{EvidenceError, Exit, Result};

use crate::PromArgs;
use crate::scan::{Entry, Verdict};

/// (metric, help, figure key, SOP key) of the per-SOP figures.
const FIGURES: &[(&str, &str, &str, &str)] = &[
    (
        "ctp_ops_wal_rto_seconds",
        "WAL crash recovery: worst recovery time of the drill, seconds.",
        "rto_seconds",
        "wal",
    ),
    (
        "ctp_ops_wal_rpo_events",
        "WAL crash recovery: acknowledged events lost, worst run.",
        "rpo_events",
        "wal",
    ),
    (
        "ctp_ops_rollback_seconds",
        "Deploy rollback: failure detected to previous release healthy, seconds.",
        "rollback_seconds",
        "rollback",
    ),
    (
        "ctp_ops_reconnect_recovery_p99_seconds",
        "Reconnect drill: P99 of fault clear to healthy again, seconds.",
        "recovery_p99_seconds",
        "reconnect",
    ),
    (
        "ctp_ops_failover_outage_seconds",
        "Failover drill: outage, seconds.",
        "failover_seconds",
        "failover",
    ),
    (
        "ctp_ops_failover_data_lag_events",
        "Failover drill: standby data lag at promotion, events.",
        "data_lag_events",
        "failover",
    ),
];

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels(e: &Entry) -> String {
    format!(
        "{{sop=\"{}\",evidence=\"{}\"}}",
        escape_label(&e.key),
        escape_label(&e.evidence)
    )
}

#[allow(clippy::cast_precision_loss)]
fn secs(ns: i64) -> String {
    format!("{:.3}", ns as f64 / 1e9)
}

/// The exposition text.
#[must_use]
pub fn render(entries: &[Entry], last_success: &BTreeMap<String, i64>) -> String {
    let mut s = String::new();
    let mut family = |name: &str, help: &str, rows: Vec<(String, String)>| {
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} gauge");
        for (l, v) in rows {
            let _ = writeln!(s, "{name}{l} {v}");
        }
    };
    family(
        "ctp_ops_drill_last_run_timestamp_seconds",
        "When the drill of this evidence finished, Unix seconds.",
        entries
            .iter()
            .map(|e| (labels(e), secs(e.finished_ts_ns)))
            .collect(),
    );
    family(
        "ctp_ops_drill_last_success_timestamp_seconds",
        "When a drill of this evidence last passed, Unix seconds.",
        entries
            .iter()
            .filter_map(|e| last_success.get(&e.evidence).map(|t| (labels(e), secs(*t))))
            .collect(),
    );
    family(
        "ctp_ops_drill_result",
        "1 when the latest drill passed, 0 when it failed, was a dry run or is unreadable.",
        entries
            .iter()
            .map(|e| {
                (
                    labels(e),
                    if e.verdict == Verdict::Pass { "1" } else { "0" }.to_string(),
                )
            })
            .collect(),
    );
    family(
        "ctp_ops_drill_dry_run",
        "1 when the latest evidence was written by a dry run.",
        entries
            .iter()
            .map(|e| {
                (
                    labels(e),
                    if e.verdict == Verdict::DryRun {
                        "1"
                    } else {
                        "0"
                    }
                    .to_string(),
                )
            })
            .collect(),
    );
    for (name, help, fig, key) in FIGURES {
        family(
            name,
            help,
            entries
                .iter()
                .filter(|e| e.key == *key)
                .filter_map(|e| {
                    let v = e.figures.get(*fig)?;
                    let x: f64 = v.parse().ok().filter(|x: &f64| x.is_finite())?;
                    Some((labels(e), format!("{x}")))
                })
                .collect(),
        );
    }
    s
}

pub(crate) fn run(a: &PromArgs) -> Result<Exit> {
    crate::check_target(a.target_p99_sec)?;
    let dir = a.dir.dir()?;
    let entries = crate::scan::scan(&dir, a.target_p99_sec)
        .map_err(|e| EvidenceError::io("cannot read", dir.as_path(), e))?;
    let state_path = a
        .state_file
        .clone()
        .unwrap_or_else(|| dir.join(".evidence-prom-state.json"));
    let mut state: BTreeMap<String, i64> = match std::fs::read(&state_path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            EvidenceError::parse(
                state_path.display().to_string(),
                e.line(),
                "(json)",
                "a map of evidence file to last success (epoch ns)",
                e.to_string(),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(EvidenceError::io("cannot read", state_path.as_path(), e)),
    };
    for e in &entries {
        if e.verdict == Verdict::Pass {
            let t = state.entry(e.evidence.clone()).or_insert(0);
            *t = (*t).max(e.finished_ts_ns);
        }
    }
    let text = render(&entries, &state);
    let mut json = serde_json::to_string_pretty(&state)
        .map_err(|e| EvidenceError::failed(format!("cannot serialise the state: {e}")))?;
    json.push('\n');
    evidence_core::io::write_atomic(&state_path, json.as_bytes())?;
    a.output_file.write_all(text.as_bytes())?;
    // The metrics carry the verdicts; writing them is the job, so a failed drill is still exit 0.
    Ok(Exit::Pass)
}
