//! The reconnect report Markdown (the original's sections and labels, then ours) and the samples CSV.

use std::collections::BTreeMap;

use evidence_core::{EvidenceError, Result};
use reconnect_core::fault_event::Scenario;

use crate::analysis::{Pairing, Stats, Status, Window, secs};
use crate::fmt::{g, iso_utc, yes_no};
use crate::ops::cell;

/// Fewer samples than this and the P99 is just the maximum.
pub const FEW_SAMPLES: usize = 100;

/// Everything computed from the inputs.
#[derive(Debug)]
pub struct Outcome {
    /// Counted windows (healthy at apply, complete).
    pub counted: usize,
    /// Recovered windows.
    pub recovered: usize,
    /// Not recovered.
    pub not_recovered: usize,
    /// Unhealthy not observed.
    pub not_observed: usize,
    /// Not healthy at apply.
    pub not_counted: usize,
    /// Applies without clear.
    pub incomplete: usize,
    /// Recovery stats overall.
    pub recovery: Option<Stats>,
    /// Detection stats overall.
    pub detection: Option<Stats>,
    /// Per scenario: (recovery, detection).
    pub per_scenario: BTreeMap<Scenario, (Option<Stats>, Option<Stats>)>,
    /// The target is met.
    pub meets_target: bool,
    /// Why not.
    pub reasons: Vec<String>,
    /// The drill's processes stayed alive from start to stop, as the caller measured it (`None`:
    /// not measured, and the report says nothing about crashes).
    pub survived: Option<bool>,
    /// The probe's recovery moments against the simulator's log, as the caller measured them.
    pub sim: Option<SimAgreement>,
}

/// The probe-vs-simulator cross-check of a local drill (reconnect_core::crosscheck).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimAgreement {
    /// Largest |probe − simulator| over the cross-checked windows (ms).
    pub max_diff_ms: f64,
    /// The bound (ms).
    pub bound_ms: f64,
}

impl SimAgreement {
    /// Within the bound.
    #[must_use]
    pub fn agrees(&self) -> bool {
        self.max_diff_ms.abs() <= self.bound_ms
    }
}

impl Outcome {
    /// Add what the caller measured; a disagreement with the simulator or a crash misses the
    /// target (the probe's figures cannot be trusted, or the drill did not survive).
    pub fn with_measured(mut self, survived: Option<bool>, sim: Option<SimAgreement>) -> Outcome {
        if let Some(a) = sim
            && !a.agrees()
        {
            self.reasons.push(format!(
                "the probe disagrees with ctp-front-sim's log by {:.3} ms (bound {} ms): its figures are not trustworthy",
                a.max_diff_ms,
                g(a.bound_ms)
            ));
        }
        if survived == Some(false) {
            self.reasons
                .push("a process of the drill died before the end".to_string());
        }
        self.meets_target = self.reasons.is_empty();
        self.survived = survived;
        self.sim = sim;
        self
    }
}

/// Compute the outcome of the measured windows against `target_s`.
#[must_use]
pub fn outcome(windows: &[Window], target_s: f64) -> Outcome {
    let count = |s: Status| windows.iter().filter(|w| w.status == s).count();
    let recovered = count(Status::Recovered);
    let not_recovered = count(Status::NotRecovered);
    let not_observed = count(Status::UnhealthyNotObserved);
    let not_counted = count(Status::NotCounted);
    let incomplete = count(Status::Incomplete);
    let rec: Vec<i64> = windows.iter().filter_map(Window::recovery_ns).collect();
    let det: Vec<i64> = windows
        .iter()
        .filter(|w| w.counted())
        .filter_map(Window::detection_ns)
        .collect();
    let mut per_scenario = BTreeMap::new();
    let mut scenarios: Vec<Scenario> = windows.iter().map(|w| w.scenario).collect();
    scenarios.sort();
    scenarios.dedup();
    for s in scenarios {
        let ws = windows.iter().filter(|w| w.scenario == s);
        let r = Stats::of(ws.clone().filter_map(Window::recovery_ns).collect());
        let d = Stats::of(
            ws.filter(|w| w.counted())
                .filter_map(Window::detection_ns)
                .collect(),
        );
        per_scenario.insert(s, (r, d));
    }
    let recovery = Stats::of(rec);
    let mut reasons = Vec::new();
    match recovery {
        None => {
            reasons.push("no recovery sample: the P99 cannot be shown to meet the target".into())
        }
        Some(st) if secs(st.p99) >= target_s => reasons.push(format!(
            "recovery P99 {:.3} s is not below the target {} s",
            secs(st.p99),
            g(target_s)
        )),
        Some(_) => {}
    }
    if not_recovered > 0 {
        reasons.push(format!("{not_recovered} window(s) did not recover"));
    }
    if incomplete > 0 {
        reasons.push(format!(
            "{incomplete} apply event(s) without a clear (no valid apply/clear window)"
        ));
    }
    Outcome {
        counted: recovered + not_recovered + not_observed,
        recovered,
        not_recovered,
        not_observed,
        not_counted,
        incomplete,
        detection: Stats::of(det),
        recovery,
        per_scenario,
        meets_target: reasons.is_empty(),
        reasons,
        survived: None,
        sim: None,
    }
}

/// Header fields of the report.
#[derive(Debug, Clone)]
pub struct Header {
    /// `--date` or the trading day.
    pub date: String,
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
    /// `--target-p99-sec`.
    pub target_s: f64,
    /// `--fault-events-file`.
    pub events_path: String,
    /// `--probe-log-file`.
    pub probe_path: String,
    /// `--samples-csv` as given.
    pub csv_path: Option<String>,
    /// `--timeline-svg` as given, and its link relative to the report.
    pub svg: Option<(String, String)>,
}

/// What was read of the probe log.
#[derive(Debug, Clone, Copy)]
pub struct ProbeFacts {
    /// Lines read.
    pub lines: usize,
    /// Health samples.
    pub samples: u64,
    /// First and last sample times.
    pub span: Option<(i64, i64)>,
    /// Last sample healthy.
    pub last_healthy: bool,
    /// The log was not in time order and was sorted in memory.
    pub sorted_in_memory: bool,
}

fn params_text(w: &Window) -> String {
    let mut pairs = w.parameters.pairs();
    pairs.sort_by_key(|(k, _)| *k);
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn s3(ns: i64) -> String {
    format!("{:.3}", secs(ns))
}

fn stats_table(title: &str, rows: &[(String, Option<Stats>)]) -> String {
    let mut s = format!(
        "### {title}\n\n| Scenario | Count | P50 (s) | P95 (s) | P99 (s) | Max (s) |\n|---|---:|---:|---:|---:|---:|\n"
    );
    for (name, st) in rows {
        match st {
            Some(st) => s.push_str(&format!(
                "| {name} | {} | {} | {} | {} | {} |\n",
                st.count,
                s3(st.p50),
                s3(st.p95),
                s3(st.p99),
                s3(st.max)
            )),
            None => s.push_str(&format!("| {name} | 0 | n/a | n/a | n/a | n/a |\n")),
        }
    }
    s.push('\n');
    s
}

/// The report Markdown, up to (not including) the provenance section.
#[must_use]
pub fn markdown(h: &Header, p: &Pairing, o: &Outcome, probe: &ProbeFacts) -> String {
    let ws = &p.windows;
    let mut s = String::with_capacity(4096 + ws.len() * 200);
    s.push_str("# Reconnect Fault Injection Result\n\n## Metadata\n\n");
    for (k, v) in [
        ("Date", &h.date),
        ("Operator", &h.operator),
        ("Host", &h.host),
        ("Build", &h.build),
        ("Config profile", &h.config_profile),
        ("Interface", &h.interface),
    ] {
        s.push_str(&format!("- {k}: {v}\n"));
    }
    summary(&mut s, h, o);
    matrix(&mut s, ws);
    acceptance(&mut s, h, o, probe);
    s.push_str("\n## Logs and Evidence\n\n");
    s.push_str(&format!("- Probe log file: {}\n", h.probe_path));
    s.push_str(&format!("- Fault events file: {}\n", h.events_path));
    if let Some(c) = &h.csv_path {
        s.push_str(&format!("- Samples CSV: {c}\n"));
    }
    if let Some((path, link)) = &h.svg {
        s.push_str(&format!("- Timeline: [{path}]({link})\n"));
    }
    statistics(&mut s, o);
    if let Some((path, link)) = &h.svg {
        s.push_str(&format!(
            "## Timeline\n\n![Reconnect timeline: {path}]({link})\n\n"
        ));
    }
    inputs(&mut s, p, probe);
    s
}

fn summary(s: &mut String, h: &Header, o: &Outcome) {
    s.push_str("\n## Summary\n\n");
    s.push_str(&format!("- Samples: {}\n", o.counted));
    s.push_str(&format!(
        "- Recovery P99 (s): {}\n",
        o.recovery
            .map_or_else(|| "n/a".to_string(), |st| s3(st.p99))
    ));
    s.push_str(&format!("- Target P99 (s): {:.3}\n", h.target_s));
    s.push_str(&format!("- Meets target: {}\n", yes_no(o.meets_target)));
    s.push_str(&format!("- Recovered: {} of {}\n", o.recovered, o.counted));
    s.push_str(&format!("- Not recovered: {}\n", o.not_recovered));
    s.push_str(&format!("- Unhealthy not observed: {}\n", o.not_observed));
    s.push_str(&format!(
        "- Not counted (probe not healthy at apply): {}\n",
        o.not_counted
    ));
    s.push_str(&format!(
        "- Incomplete (apply without clear): {}\n",
        o.incomplete
    ));
    s.push_str(&format!(
        "- Detection P99 (s): {}\n",
        o.detection
            .map_or_else(|| "n/a".to_string(), |st| s3(st.p99))
    ));
    if let Some(st) = o.recovery
        && st.count < FEW_SAMPLES
    {
        s.push_str(&format!(
            "- Note: P99 is the maximum of few samples ({} < {FEW_SAMPLES} recovered windows), not a statistical P99.\n",
            st.count
        ));
    }
    for r in &o.reasons {
        s.push_str(&format!("- Target missed: {r}\n"));
    }
}

fn matrix(s: &mut String, ws: &[Window]) {
    s.push_str(
        "\n## Scenario Matrix\n\n| Scenario | Parameters | Start Time (UTC) | End Time (UTC) | Recovered | Recovery Seconds | Notes |\n|---|---|---|---|---|---:|---|\n",
    );
    if ws.is_empty() {
        s.push_str("| n/a | n/a | n/a | n/a | no |  | no valid apply/clear window |\n");
    }
    for w in ws {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            w.scenario,
            cell(&params_text(w)),
            iso_utc(w.apply_ns),
            w.clear_ns.map_or_else(|| "n/a".to_string(), iso_utc),
            yes_no(w.status == Status::Recovered),
            w.recovery_ns().map_or_else(String::new, s3),
            cell(&w.notes().join(";"))
        ));
    }
}

fn acceptance(s: &mut String, h: &Header, o: &Outcome, probe: &ProbeFacts) {
    let box_ = |b: bool| if b { "[x]" } else { "[ ]" };
    let observed_all = o.counted > 0 && o.not_observed == 0;
    let reconnect_all = o.counted > 0 && o.recovered > 0 && o.not_recovered == 0;
    let not_stuck = reconnect_all && o.incomplete == 0 && probe.last_healthy;
    s.push_str("\n## Acceptance\n\n");
    s.push_str(&format!(
        "- {} unhealthy state observed during fault\n",
        box_(observed_all)
    ));
    s.push_str(&format!(
        "- {} auto-reconnect observed after clear\n",
        box_(reconnect_all)
    ));
    s.push_str(&format!(
        "- {} P99 recovery `< {}s`\n",
        box_(o.meets_target),
        g(h.target_s)
    ));
    if let Some(alive) = o.survived {
        s.push_str(&format!("- {} no crash\n", box_(alive)));
    }
    s.push_str(&format!(
        "- {} no stuck state after repeated runs\n",
        box_(not_stuck)
    ));
    if let Some(a) = o.sim {
        s.push_str(&format!(
            "- {} probe agrees with the simulator's log within {} ms (max |diff| {:.3} ms)\n",
            box_(a.agrees()),
            g(a.bound_ms),
            a.max_diff_ms
        ));
    }
}

fn statistics(s: &mut String, o: &Outcome) {
    s.push_str("\n## Statistics\n\nNearest-rank percentiles over the recovered windows (recovery, from the clear) and over the counted windows that went unhealthy (detection, from the apply).\n\n");
    let mut rows: Vec<(String, Option<Stats>)> = o
        .per_scenario
        .iter()
        .map(|(k, (r, _))| (k.to_string(), *r))
        .collect();
    rows.push(("all".into(), o.recovery));
    s.push_str(&stats_table("Recovery", &rows));
    let mut rows: Vec<(String, Option<Stats>)> = o
        .per_scenario
        .iter()
        .map(|(k, (_, d))| (k.to_string(), *d))
        .collect();
    rows.push(("all".into(), o.detection));
    s.push_str(&stats_table("Detection", &rows));
}

fn inputs(s: &mut String, p: &Pairing, probe: &ProbeFacts) {
    s.push_str("## Inputs\n\n");
    s.push_str(&format!(
        "- Fault events used (execute=true): {}\n- Dry-run events ignored (execute=false): {}\n",
        p.executed_events, p.dry_run_events
    ));
    if p.other_drill_events > 0 {
        s.push_str(&format!(
            "- Events of other drills ignored: {}\n",
            p.other_drill_events
        ));
    }
    s.push_str(&format!(
        "- Clears without an open apply (ignored): {}\n",
        p.unmatched_clears.len()
    ));
    s.push_str(&format!(
        "- Probe log: {} lines, {} health samples{}\n",
        probe.lines,
        probe.samples,
        probe.span.map_or_else(String::new, |(a, b)| format!(
            " from {} to {}",
            iso_utc(a),
            iso_utc(b)
        ))
    ));
    if probe.sorted_in_memory {
        s.push_str(
            "- Probe log was not in time order; it was sorted by ts_ns before the computation.\n",
        );
    }
    s.push_str(
        "- Method: a window counts when the probe was healthy at apply; detection is the first unhealthy sample after apply; recovery is measured from the clear to the first healthy moment (the clear itself, or a healthy sample after it) after which the probe stayed healthy for the settle interval or until the next apply, and only after an unhealthy state was observed (an outage just after the clear is the window's own; the search ends at the next apply). Fault times are the events' effective_ts_ns when recorded, else ts_ns.\n",
    );
}

fn opt_i64(v: Option<i64>) -> String {
    v.map_or_else(String::new, |x| x.to_string())
}

fn opt_s9(v: Option<i64>) -> String {
    v.map_or_else(String::new, |x| format!("{:.9}", secs(x)))
}

/// The samples CSV: one row per window.
pub fn samples_csv(windows: &[Window]) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let io = |e: csv::Error| EvidenceError::failed(format!("cannot write CSV: {e}"));
    let mut header = vec![
        "window",
        "scenario",
        "status",
        "counted",
        "apply_ts_ns",
        "clear_ts_ns",
        "apply_utc",
        "clear_utc",
        "state_at_apply",
        "first_unhealthy_ts_ns",
        "detection_seconds",
        "unhealthy_after_clear",
        "recovered_ts_ns",
        "recovery_seconds",
        "recovered_before_clear",
        "apply_line",
        "clear_line",
        "drill_id",
    ];
    header.extend(reconnect_core::fault_event::PARAMETER_KEYS);
    w.write_record(&header).map_err(io)?;
    for (i, win) in windows.iter().enumerate() {
        let mut row: Vec<String> = vec![
            (i + 1).to_string(),
            win.scenario.to_string(),
            win.status.as_str().to_string(),
            win.counted().to_string(),
            win.apply_ns.to_string(),
            opt_i64(win.clear_ns),
            iso_utc(win.apply_ns),
            win.clear_ns.map_or_else(String::new, iso_utc),
            win.state_at_apply
                .map_or_else(String::new, |s| s.as_str().to_string()),
            opt_i64(win.first_unhealthy_ns),
            opt_s9(win.detection_ns()),
            win.unhealthy_after_clear.to_string(),
            opt_i64(win.recovered_ns.filter(|_| win.status == Status::Recovered)),
            opt_s9(win.recovery_ns()),
            win.recovered_before_clear.to_string(),
            win.apply_line.to_string(),
            win.clear_line.map_or_else(String::new, |l| l.to_string()),
            win.drill_id.clone().unwrap_or_default(),
        ];
        row.extend(
            win.parameters
                .pairs()
                .into_iter()
                .take(8)
                .map(|(_, v)| v.to_string()),
        );
        w.write_record(&row).map_err(io)?;
    }
    w.into_inner()
        .map_err(|e| EvidenceError::failed(format!("cannot write CSV: {e}")))
}
