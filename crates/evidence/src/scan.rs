//! Read a results folder: recognise every drill's evidence by its content (not only its name),
//! and turn each into an [`Entry`]: SOP, drill id, verdict, key figures, files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use evidence_core::dotenv::{EnvDoc, parse_bool};
use evidence_core::time::{format_utc, parse_utc};
use serde::Serialize;
use serde_json::Value;

/// The verdict of one drill's evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The drill passed.
    Pass,
    /// Written by a dry run: proves nothing.
    DryRun,
    /// The drill failed (or the thing checked is unhealthy).
    Fail,
    /// The file could not be read or parsed.
    Unreadable,
}

impl Verdict {
    /// Lower-case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::DryRun => "dry_run",
            Verdict::Fail => "fail",
            Verdict::Unreadable => "unreadable",
        }
    }
}

/// One drill's evidence.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// SOP number and name, e.g. `4 wal`.
    pub sop: String,
    /// Short SOP key for metrics labels: preflight, reconnect, wal, rollback, rollout, prodlike,
    /// multihost, failover.
    pub key: String,
    /// Drill id (from the evidence), or the file stem.
    pub drill_id: String,
    /// Verdict.
    pub verdict: Verdict,
    /// When the drill finished, epoch ns (provenance, else the evidence's own times, else mtime).
    pub finished_ts_ns: i64,
    /// The same as RFC 3339 UTC.
    pub finished_utc: String,
    /// Key figures, name → value as written in the evidence.
    pub figures: BTreeMap<String, String>,
    /// The main evidence file (relative to the results folder).
    pub evidence: String,
    /// Every file of this drill (relative), the main one first.
    pub files: Vec<String>,
    /// Why it failed, or what it is.
    pub detail: String,
}

/// Files the tools write into a results folder that are not drill evidence.
pub fn is_own_output(name: &str) -> bool {
    name.starts_with("evidence_index.")
        || name == "README.md"
        || name.starts_with('.')
        || name.ends_with(".tmp")
}

fn mtime_ns(p: &Path) -> i64 {
    std::fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_nanos()).ok())
        .unwrap_or(0)
}

struct Ctx<'a> {
    dir: &'a Path,
    name: String,
    path: PathBuf,
}

impl Ctx<'_> {
    fn entry(&self, sop: &str, key: &str) -> Entry {
        let stem = self
            .name
            .split('.')
            .next()
            .unwrap_or(&self.name)
            .to_string();
        Entry {
            sop: sop.into(),
            key: key.into(),
            drill_id: stem,
            verdict: Verdict::Fail,
            finished_ts_ns: mtime_ns(&self.path),
            finished_utc: String::new(),
            figures: BTreeMap::new(),
            evidence: self.name.clone(),
            files: vec![self.name.clone()],
            detail: String::new(),
        }
    }
    fn sibling(&self, e: &mut Entry, name: &str) {
        if self.dir.join(name).is_file() && !e.files.iter().any(|f| f == name) {
            e.files.push(name.to_string());
        }
    }
}

/// Scan `dir` (not recursive). Unrecognised files are ignored; unreadable evidence is an entry.
pub fn scan(dir: &Path, target_p99_sec: f64) -> std::io::Result<Vec<Entry>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(std::result::Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !is_own_output(n))
        .collect();
    names.sort();
    let mut out = Vec::new();
    for name in names {
        let ctx = Ctx {
            dir,
            path: dir.join(&name),
            name: name.clone(),
        };
        let entry = if name.ends_with(".env") {
            env_entry(&ctx)
        } else if name.ends_with(".json") {
            json_entry(&ctx, target_p99_sec)
        } else {
            None
        };
        if let Some(mut e) = entry {
            e.finished_utc = format_utc(e.finished_ts_ns);
            out.push(e);
        }
    }
    out.sort_by(|a, b| {
        b.finished_ts_ns
            .cmp(&a.finished_ts_ns)
            .then(a.evidence.cmp(&b.evidence))
    });
    Ok(out)
}

fn unreadable(ctx: &Ctx, sop: &str, key: &str, why: String) -> Entry {
    let mut e = ctx.entry(sop, key);
    e.verdict = Verdict::Unreadable;
    e.detail = why;
    e
}

fn env_entry(ctx: &Ctx) -> Option<Entry> {
    let text = match std::fs::read_to_string(&ctx.path) {
        Ok(t) => t,
        Err(e) => return Some(unreadable(ctx, "?", "unknown", format!("cannot read: {e}"))),
    };
    let doc = match EnvDoc::parse(&text, &ctx.name) {
        Ok(d) => d,
        Err(e) => return Some(unreadable(ctx, "?", "unknown", e.to_string())),
    };
    let get = |k: &str| doc.get(k).unwrap_or_default().to_string();
    let has = |k: &str| doc.get(k).is_some();
    let (sop, key) = if has("rto_seconds") {
        ("4 wal", "wal")
    } else if has("rollback_seconds") {
        ("5 rollback", "rollback")
    } else if has("ROLLOUT_ENV") {
        ("6 rollout", "rollout")
    } else if has("FAILOVER_ENV") {
        ("8 failover", "failover")
    } else if has("MULTI_HOST_ACTION") {
        ("8 multihost", "multihost")
    } else if has("PRODLIKE_ACTION") {
        ("7 prodlike", "prodlike")
    } else {
        return None;
    };
    let mut e = ctx.entry(sop, key);
    let dry = doc
        .get("provenance_dry_run")
        .or_else(|| doc.get("PROVENANCE_DRY_RUN"))
        .and_then(parse_bool)
        .unwrap_or(false);
    let finished = doc
        .get("provenance_finished_utc")
        .or_else(|| doc.get("PROVENANCE_FINISHED_UTC"))
        .or_else(|| doc.get("recovery_complete_utc"))
        .or_else(|| doc.get("rollback_complete_utc"))
        .and_then(parse_utc);
    if let Some(t) = finished {
        e.finished_ts_ns = t.ns;
    }
    if let Some(id) = doc.get("drill_id").or_else(|| doc.get("DRILL_ID")) {
        e.drill_id = id.to_string();
    }
    let mut fig = |name: &str, k: &str| {
        if let Some(v) = doc.get(k) {
            e.figures.insert(name.to_string(), v.to_string());
        }
    };
    let ok = match key {
        "wal" => {
            fig("rto_seconds", "rto_seconds");
            fig("rpo_events", "rpo_events");
            fig("runs_passed", "runs_passed");
            fig("repeat", "repeat");
            get("result").eq_ignore_ascii_case("pass")
        }
        "rollback" => {
            fig("rollback_seconds", "rollback_seconds");
            fig("health_check_passed", "health_check_passed");
            get("result").eq_ignore_ascii_case("pass")
                && parse_bool(&get("health_check_passed")).unwrap_or(false)
        }
        "rollout" => {
            fig("env", "ROLLOUT_ENV");
            fig("steps", "ROLLOUT_TOTAL_STEPS");
            fig("failed_step", "ROLLOUT_FAILED_STEP");
            e.drill_id = format!("rollout-{}", get("ROLLOUT_ENV"));
            parse_bool(&get("ROLLOUT_SUCCESS")).unwrap_or(false)
        }
        "failover" => {
            fig("failover_seconds", "FAILOVER_DURATION_SECONDS");
            fig("data_lag_events", "DATA_SYNC_LAG_EVENTS");
            fig("failed_step", "FAILOVER_FAILED_STEP");
            parse_bool(&get("FAILOVER_SUCCESS")).unwrap_or(false)
        }
        "multihost" => {
            fig("action", "MULTI_HOST_ACTION");
            fig("failed_step", "MULTI_HOST_FAILED_STEP");
            parse_bool(&get("MULTI_HOST_SUCCESS")).unwrap_or(false)
        }
        _ => {
            fig("action", "PRODLIKE_ACTION");
            fig("failed_step", "PRODLIKE_FAILED_STEP");
            parse_bool(&get("PRODLIKE_SUCCESS")).unwrap_or(false)
        }
    };
    let dry =
        dry || (key != "wal" && key != "rollback" && {
            let k = match key {
                "rollout" => "ROLLOUT_DRY_RUN",
                "failover" => "FAILOVER_DRY_RUN",
                "multihost" => "MULTI_HOST_DRY_RUN",
                _ => "PRODLIKE_DRY_RUN",
            };
            parse_bool(&get(k)).unwrap_or(false)
        }) || get("result").eq_ignore_ascii_case("dry_run");
    e.verdict = if !ok {
        Verdict::Fail
    } else if dry {
        Verdict::DryRun
    } else {
        Verdict::Pass
    };
    e.detail = match e.verdict {
        Verdict::Pass => "passed".into(),
        Verdict::DryRun => "dry run: proves nothing".into(),
        _ => {
            let notes = get("notes");
            if notes.is_empty() {
                "failed".into()
            } else {
                notes
            }
        }
    };
    Some(e)
}

fn provenance_time(v: &Value) -> Option<i64> {
    v.get("provenance")
        .and_then(|p| p.get("finished_utc"))
        .and_then(Value::as_str)
        .and_then(parse_utc)
        .map(|t| t.ns)
        .or_else(|| {
            v.get("generated_ts_ns")
                .and_then(Value::as_i64)
                .filter(|n| *n > 0)
        })
}

fn json_entry(ctx: &Ctx, target_p99_sec: f64) -> Option<Entry> {
    let text = match std::fs::read(&ctx.path) {
        Ok(t) => t,
        Err(e) => return Some(unreadable(ctx, "?", "unknown", format!("cannot read: {e}"))),
    };
    let v: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            return Some(unreadable(
                ctx,
                "?",
                "unknown",
                format!("{}:{}: not JSON: {e}", ctx.name, e.line()),
            ));
        }
    };
    let obj = v.as_object()?;
    let mut e = if obj.contains_key("items") && obj.contains_key("ok") {
        let mut e = ctx.entry("1 preflight", "preflight");
        let items = v["items"].as_array().map_or(&[][..], Vec::as_slice);
        // Failed checks: errors (or, in the original's format without severities, any), and
        // warnings apart: a warning does not fail the preflight.
        let failed_with = |warning: bool| -> Vec<&str> {
            items
                .iter()
                .filter(|i| i["ok"] == false && i["ignored"] != true)
                .filter(|i| (i["severity"] == "warning") == warning)
                .filter_map(|i| i["name"].as_str())
                .collect()
        };
        let failed = failed_with(false);
        let warnings = failed_with(true);
        e.figures
            .insert("checks".into(), format!("{}", items.len()));
        e.figures
            .insert("errors".into(), format!("{}", failed.len()));
        e.figures
            .insert("warnings".into(), format!("{}", warnings.len()));
        e.verdict = if v["ok"] == true {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        e.detail = if failed.is_empty() {
            "all checks passed".into()
        } else {
            format!("failed: {}", failed.join(", "))
        };
        e.drill_id = "preflight".into();
        e
    } else if obj.contains_key("slis") {
        reconnect_entry(ctx, &v, target_p99_sec)
    } else if obj.contains_key("classification") {
        let multi = obj.contains_key("service_rows");
        let mut e = if multi {
            ctx.entry("8 multihost health", "multihost")
        } else {
            ctx.entry("7 prodlike health", "prodlike")
        };
        let healthy = v["healthy"] == true;
        e.verdict = if healthy {
            Verdict::Pass
        } else {
            Verdict::Fail
        };
        let class = v["classification"].as_str().unwrap_or("unknown");
        e.figures.insert("classification".into(), class.into());
        e.detail = if healthy {
            "healthy".into()
        } else {
            format!("unhealthy: {class}")
        };
        e.drill_id = e.evidence.trim_end_matches(".json").to_string();
        e
    } else {
        return None;
    };
    if let Some(t) = provenance_time(&v) {
        e.finished_ts_ns = t;
    }
    if v.get("provenance").and_then(|p| p.get("dry_run")) == Some(&Value::Bool(true)) {
        e.verdict = e.verdict.max(Verdict::DryRun);
        if e.verdict == Verdict::DryRun {
            e.detail = "dry run: proves nothing".into();
        }
    }
    Some(e)
}

/// Reconnect (SOP 2/3): the recovery P99 is slo-report's (its latency SLI, ms); the windows come
/// from the samples CSV next to it. Pass, as slo-report judges it: at least one recovered window,
/// no window `not_recovered` or `incomplete`, P99 below the target.
fn reconnect_entry(ctx: &Ctx, v: &Value, target_p99_sec: f64) -> Entry {
    let mut e = ctx.entry("2 reconnect", "reconnect");
    let p99_ms = v["slis"].as_array().and_then(|s| {
        s.iter()
            .find(|x| x["name"] == "quant_hft_strategy_bridge_latency_p99_ms")
            .and_then(|x| x["value"].as_f64())
    });
    if let Some(ms) = p99_ms {
        e.figures
            .insert("recovery_p99_seconds".into(), format!("{:.3}", ms / 1000.0));
    }
    for f in [
        "reconnect_samples.csv",
        "reconnect_fault_result.md",
        "reconnect_timeline.svg",
        "ops_health_report.md",
        "ops_alert_report.json",
        "ops_alert_report.md",
    ] {
        ctx.sibling(&mut e, f);
    }
    let mut counted = 0;
    let mut recovered = 0;
    let mut missed = 0;
    let csv_path = ctx.dir.join("reconnect_samples.csv");
    let mut csv_error = None;
    if csv_path.is_file() {
        match csv::Reader::from_path(&csv_path) {
            Ok(mut r) => {
                let headers = r.headers().cloned().unwrap_or_default();
                let col = |n: &str| headers.iter().position(|h| h == n);
                let (c_counted, c_status, c_id) = (col("counted"), col("status"), col("drill_id"));
                for (i, rec) in r.records().enumerate() {
                    match rec {
                        Ok(rec) => {
                            let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("");
                            if get(c_counted) == "true" {
                                counted += 1;
                                match get(c_status) {
                                    "recovered" => recovered += 1,
                                    // An outage that never ended, or a fault never cleared.
                                    "not_recovered" | "incomplete" => missed += 1,
                                    // unhealthy_not_observed: the fault caused no outage; it
                                    // neither passes nor fails the SLO (as slo-report).
                                    _ => {}
                                }
                            }
                            if !get(c_id).is_empty() {
                                e.drill_id = get(c_id).to_string();
                            }
                        }
                        Err(err) => {
                            csv_error = Some(format!("reconnect_samples.csv:{}: {err}", i + 2));
                            break;
                        }
                    }
                }
            }
            Err(err) => csv_error = Some(format!("reconnect_samples.csv: {err}")),
        }
        e.figures
            .insert("windows_recovered".into(), format!("{recovered}/{counted}"));
    }
    let p99_ok = p99_ms.is_some_and(|ms| ms / 1000.0 < target_p99_sec);
    e.verdict = if let Some(err) = csv_error {
        e.detail = err;
        Verdict::Unreadable
    } else if recovered > 0 && missed == 0 && p99_ok {
        e.detail = format!("P99 < {target_p99_sec} s, every outage recovered");
        Verdict::Pass
    } else {
        e.detail = if counted == 0 {
            "no counted fault window (samples CSV missing or empty)".into()
        } else if missed > 0 {
            format!("{missed} window(s) did not recover")
        } else if recovered == 0 {
            "no outage observed: nothing was measured".into()
        } else {
            format!("recovery P99 not below {target_p99_sec} s")
        };
        Verdict::Fail
    };
    e
}
