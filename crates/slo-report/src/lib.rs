//! `slo-report`: the reconnect SLO report (replaces the original's `reconnect_slo_report`).
//!
//! Reads the fault-event JSONL (small: read whole, sorted) and streams the probe log once, merging
//! its `[health]` samples over the fault windows in one linear pass. Writes the original's
//! Markdown report, ops health JSON/Markdown and alert JSON/Markdown, plus a samples CSV and an
//! SVG timeline, every file atomically and with provenance.

pub mod analysis;
pub mod fmt;
pub mod ops;
pub mod report;
pub mod svg;

use std::path::{Component, Path, PathBuf};

use clap::Parser;
use clap::builder::TypedValueParser as _;
use evidence_core::cli::{EXIT_STATUS_HELP, info, stdout_write, warn};
use evidence_core::duration::{DurationParser, whole_millis};
use evidence_core::io::{Input, write_atomic};
use evidence_core::provenance::Provenance;
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Exit, Result};
use reconnect_core::fault_event::{FaultEventReader, ensure_ascii};
use reconnect_core::probe_log::{HealthLogReader, HealthSample, HealthState};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::Duration;

use analysis::{Merge, MergeSummary, Pairing, Window, pair_windows, secs};
use ops::{ChainSource, ChainStatus, StorageHealth};

const AFTER_HELP: &str = "EXAMPLE:
  slo-report --fault-events-file runtime/fault_events.jsonl \\
    --probe-log-file runtime/reconnect_probe.log \\
    --output-file docs/results/reconnect_fault_result.md \\
    --health-json-file docs/results/ops_health_report.json \\
    --samples-csv docs/results/reconnect_samples.csv \\
    --timeline-svg docs/results/reconnect_timeline.svg --operator ops

The probe log must be in time order (it is, when one probe appends to it); a log that is not is
sorted in memory, with a warning.";

/// Reconnect SLO report: per fault window, whether the probe went unhealthy (detection) and how long
/// after the clear it was healthy again (recovery); P50/P95/P99/max per scenario; exit 1 when the
/// recovery P99 misses the target or a window did not recover.
#[derive(Debug, Clone, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}\n\n{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// Fault-event JSONL written by fault-inject / ctp_fault_inject (`-` for stdin).
    #[arg(long, value_name = "PATH")]
    pub fault_events_file: Input,
    /// Probe log with `[health] ts_ns=<ns> state=healthy|unhealthy` lines (`-` for stdin).
    #[arg(long, value_name = "PATH")]
    pub probe_log_file: Input,
    /// Markdown report file; empty or `-` prints the report on stdout.
    #[arg(long, value_name = "PATH", default_value = "")]
    pub output_file: String,
    /// Recovery P99 target in seconds (the P99 must be strictly below it).
    #[arg(long, value_name = "SEC", default_value_t = 10.0)]
    pub target_p99_sec: f64,
    /// Report date (YYYY-MM-DD); default: the China trading day of the first fault window, from
    /// the trading calendar (configs/calendar/; outside its years, weekends only).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub date: Option<String>,
    /// Operator shown in the report (provenance also records `$USER` when empty).
    #[arg(long, default_value = "")]
    pub operator: String,
    /// Host shown in the report metadata.
    #[arg(long, default_value = "")]
    pub host: String,
    /// Build shown in the report metadata.
    #[arg(long, default_value = "")]
    pub build: String,
    /// Config profile shown in the report metadata.
    #[arg(long, default_value = "")]
    pub config_profile: String,
    /// Network interface shown in the report metadata.
    #[arg(long, default_value = "")]
    pub interface: String,
    /// Ops health report JSON (written only when set).
    #[arg(long, value_name = "PATH", default_value = "")]
    pub health_json_file: String,
    /// Ops health report Markdown (written only when set).
    #[arg(long, value_name = "PATH", default_value = "")]
    pub health_markdown_file: String,
    /// Alert report JSON (written only when set).
    #[arg(long, value_name = "PATH", default_value = "")]
    pub alert_json_file: String,
    /// Alert report Markdown (written only when set).
    #[arg(long, value_name = "PATH", default_value = "")]
    pub alert_markdown_file: String,
    /// Target of the `strategy_bridge_latency_p99_ms` SLI (the recovery P99 in ms; healthy when ≤).
    #[arg(long, value_name = "MS", default_value_t = 1500.0)]
    pub strategy_bridge_target_ms: f64,
    /// Strategy bridge chain status (an input, not measured here).
    #[arg(long, value_enum, default_value = "unknown")]
    pub strategy_bridge_chain_status: ChainStatus,
    /// Where the chain status came from.
    #[arg(long, value_enum, default_value = "manual")]
    pub strategy_bridge_chain_source: ChainSource,
    /// Strategy bridge state key count (metadata).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub strategy_bridge_state_key_count: i64,
    /// Strategy bridge intent count (metadata).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub strategy_bridge_intent_count: i64,
    /// Strategy bridge order key count (metadata).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub strategy_bridge_order_key_count: i64,
    /// Redis health (an operator input; `unknown`: not measured, no alert). Use
    /// --prodlike-health-file for a measured one.
    #[arg(long, value_enum, default_value = "unknown")]
    pub storage_redis_health: StorageHealth,
    /// Timescale health (an operator input; `unknown`: not measured, no alert).
    #[arg(long, value_enum, default_value = "unknown")]
    pub storage_timescale_health: StorageHealth,
    /// A prod-like health report (prodlike-health --report-json, or the original's
    /// check_prodlike_health JSON): the storage SLIs are measured from its redis-* and
    /// timescale-* services.
    #[arg(long, value_name = "PATH")]
    pub prodlike_health_file: Option<PathBuf>,
    /// Also write one CSV row per fault window.
    #[arg(long, value_name = "PATH")]
    pub samples_csv: Option<PathBuf>,
    /// Also write an SVG timeline of health against the fault windows (linked from the report).
    #[arg(long, value_name = "PATH")]
    pub timeline_svg: Option<PathBuf>,
    /// Recovery rule: a window recovers at the first healthy moment after which the probe stays
    /// healthy this long (or until the next apply). reconnect-evidence passes its own.
    #[arg(long, value_name = "DURATION", default_value = "1000", value_parser = DurationParser::millis().max(Duration::from_secs(3600)).map(whole_millis))]
    pub settle_ms: u64,
    /// The drill's processes (probe, simulator, proxy) stayed alive from start to stop, as the
    /// caller measured it. Without it the report's acceptance list has no crash line (nothing
    /// measured it); `no` misses the target.
    #[arg(long, value_enum, value_name = "yes|no")]
    pub processes_survived: Option<YesNo>,
    /// Largest |probe − simulator| of the recovery moments the caller cross-checked against
    /// ctp-front-sim's log (ms). Beyond --sim-bound-ms the target is missed: the probe's figures
    /// are not trustworthy.
    #[arg(long, value_name = "MS", value_parser = finite_ms)]
    pub sim_max_diff_ms: Option<f64>,
    /// Bound of the simulator cross-check (ms).
    #[arg(long, value_name = "MS", default_value_t = 100.0, value_parser = finite_ms)]
    pub sim_bound_ms: f64,
    /// Only use fault events with this `drill_id`.
    #[arg(long, value_name = "ID")]
    pub drill_id: Option<String>,
    /// Exit 0 even when the target is missed (the original's behaviour); bad input still exits 2.
    #[arg(long)]
    pub no_fail: bool,
}

/// `yes` or `no`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum YesNo {
    /// Yes.
    Yes,
    /// No.
    No,
}

fn finite_ms(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "expected a number of milliseconds >= 0, found {s:?}"
        )),
    }
}

/// The storage SLIs' inputs: from the prod-like health report when given (an operator's
/// explicit value for the same SLI is then a usage error, checked in `validate`), else the
/// operator's input, `unknown` meaning not measured.
fn storage_inputs(
    cli: &Cli,
    stack: Option<&ops::ProdlikeHealth>,
) -> (ops::Measured, ops::Measured) {
    match (stack, &cli.prodlike_health_file) {
        (Some(h), Some(p)) => {
            let label = p.display().to_string();
            (h.storage("redis-", &label), h.storage("timescale-", &label))
        }
        _ => (
            ops::Measured::from_input(cli.storage_redis_health),
            ops::Measured::from_input(cli.storage_timescale_health),
        ),
    }
}

fn opt_path(s: &str) -> Option<PathBuf> {
    (!s.is_empty()).then(|| PathBuf::from(s))
}

fn validate(cli: &Cli) -> Result<()> {
    if !(cli.target_p99_sec.is_finite() && cli.target_p99_sec > 0.0) {
        return Err(EvidenceError::usage(format!(
            "--target-p99-sec must be a positive number of seconds, found {}",
            cli.target_p99_sec
        )));
    }
    if !(cli.strategy_bridge_target_ms.is_finite() && cli.strategy_bridge_target_ms > 0.0) {
        return Err(EvidenceError::usage(format!(
            "--strategy-bridge-target-ms must be a positive number, found {}",
            cli.strategy_bridge_target_ms
        )));
    }
    if cli.prodlike_health_file.is_some()
        && (cli.storage_redis_health != StorageHealth::Unknown
            || cli.storage_timescale_health != StorageHealth::Unknown)
    {
        return Err(EvidenceError::usage(
            "--prodlike-health-file measures the storage SLIs: drop --storage-redis-health / --storage-timescale-health",
        ));
    }
    if cli.fault_events_file.is_stdin() && cli.probe_log_file.is_stdin() {
        return Err(EvidenceError::usage(
            "--fault-events-file and --probe-log-file cannot both be stdin (-)",
        ));
    }
    if let Some(d) = &cli.date {
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        if time::Date::parse(d, &fmt).is_err() {
            return Err(EvidenceError::usage(format!(
                "--date must be YYYY-MM-DD, found {d:?}"
            )));
        }
    }
    Ok(())
}

fn hex(d: &[u8]) -> String {
    d.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The result of streaming the probe log over the windows.
struct ProbeRead {
    summary: MergeSummary,
    lines: usize,
    sha256: String,
    sorted_in_memory: bool,
}

fn merge_samples(
    windows: &mut [Window],
    samples: impl Iterator<Item = (usize, HealthSample)>,
    settle_ns: i64,
    keep_changes: bool,
) -> std::result::Result<MergeSummary, analysis::OutOfOrder> {
    let mut m = Merge::new(windows, settle_ns, keep_changes);
    for (line, s) in samples {
        m.feed(s, line)?;
    }
    Ok(m.finish())
}

/// Stream the probe log once over `windows`. When a sample is older than the one before it, read
/// the whole log again into memory, sort it (stable) by `ts_ns`, and merge again.
fn read_probe(
    input: &Input,
    windows: &mut Vec<Window>,
    settle_ns: i64,
    keep_changes: bool,
) -> Result<ProbeRead> {
    let pristine = windows.clone();
    let label = input.label();
    let mut hasher = Sha256::new();
    let mut all: Option<Vec<(usize, HealthSample)>> = input.is_stdin().then(Vec::new);
    let mut reader = HealthLogReader::new(input.open()?, label.clone());
    let disorder = {
        let mut m = Merge::new(windows, settle_ns, keep_changes);
        let mut disorder = None;
        while let Some(r) = reader.next_with(|b| hasher.update(b)) {
            let (line, s) = r?;
            if let Some(v) = &mut all {
                v.push((line, s));
            }
            if disorder.is_none()
                && let Err(e) = m.feed(s, line)
            {
                disorder = Some(e.line);
                if all.is_none() {
                    break;
                }
            }
        }
        if disorder.is_none() {
            let summary = m.finish();
            return Ok(ProbeRead {
                summary,
                lines: reader.lines_read(),
                sha256: hex(&hasher.finalize()),
                sorted_in_memory: false,
            });
        }
        disorder.unwrap_or(0)
    };
    warn(&format!(
        "{label}:{disorder}: health samples are not in ts_ns order; sorting the probe log in memory"
    ));
    let (mut samples, lines, sha) = match all {
        Some(v) => (v, reader.lines_read(), hex(&hasher.finalize())),
        None => {
            let mut hasher = Sha256::new();
            let mut r = HealthLogReader::new(input.open()?, label.clone());
            let mut v = Vec::new();
            while let Some(x) = r.next_with(|b| hasher.update(b)) {
                v.push(x?);
            }
            (v, r.lines_read(), hex(&hasher.finalize()))
        }
    };
    samples.sort_by_key(|(_, s)| s.ts_ns);
    *windows = pristine;
    let summary = merge_samples(windows, samples.into_iter(), settle_ns, keep_changes)
        .map_err(|_| EvidenceError::failed("internal error: sorted samples out of order"))?;
    Ok(ProbeRead {
        summary,
        lines,
        sha256: sha,
        sorted_in_memory: true,
    })
}

/// Provenance of every file this tool writes: the shared block plus the inputs' SHA-256.
#[derive(Debug, Clone, Serialize)]
struct ProvenanceBlock {
    #[serde(flatten)]
    base: Provenance,
    fault_events_file: String,
    fault_events_sha256: String,
    probe_log_file: String,
    probe_log_sha256: String,
    probe_log_lines: usize,
    health_samples: u64,
}

impl ProvenanceBlock {
    fn markdown(&self, outputs: &[(String, String)]) -> String {
        let b = &self.base;
        let mut s = String::from("\n## Provenance\n\n");
        s.push_str(&format!("- Tool: {} {}\n", b.tool, b.version));
        s.push_str(&format!("- Host: {}\n", b.host));
        s.push_str(&format!("- Operator: {}\n", b.operator));
        s.push_str(&format!("- Started (UTC): {}\n", b.started_utc));
        s.push_str(&format!("- Finished (UTC): {}\n", b.finished_utc));
        s.push_str(&format!(
            "- Dry run: {}\n",
            if b.dry_run {
                "yes (no fault event with execute=true)"
            } else {
                "no"
            }
        ));
        s.push_str(&format!("- Config SHA-256: {}\n", b.config_sha256));
        s.push_str(&format!(
            "- Fault events file: {} (SHA-256 {})\n",
            self.fault_events_file, self.fault_events_sha256
        ));
        s.push_str(&format!(
            "- Probe log file: {} (SHA-256 {}, {} lines, {} health samples)\n",
            self.probe_log_file, self.probe_log_sha256, self.probe_log_lines, self.health_samples
        ));
        for (name, sha) in outputs {
            s.push_str(&format!("- Output {name} (SHA-256 {sha})\n"));
        }
        s
    }
}

/// A relative link from the folder of `from` to `to` (both as given, relative to the current
/// folder), for the report's Markdown link to the timeline.
fn relative_link(from: &Path, to: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    let norm = |p: &Path| -> Vec<String> {
        let abs = if p.is_absolute() {
            p.to_path_buf()
        } else {
            cwd.join(p)
        };
        let mut v: Vec<String> = Vec::new();
        for c in abs.components() {
            match c {
                Component::Normal(x) => v.push(x.to_string_lossy().into_owned()),
                Component::ParentDir => {
                    v.pop();
                }
                _ => {}
            }
        }
        v
    };
    let from_dir = {
        let mut v = norm(from);
        v.pop();
        v
    };
    let to = norm(to);
    let common = from_dir.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); from_dir.len() - common];
    parts.extend(to[common..].iter().cloned());
    parts.join("/")
}

fn json_pretty<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let s = serde_json::to_string_pretty(v)
        .map_err(|e| EvidenceError::failed(format!("cannot serialize JSON: {e}")))?;
    let mut s = ensure_ascii(&s);
    s.push('\n');
    Ok(s.into_bytes())
}

/// Run the tool.
#[expect(
    clippy::too_many_lines,
    reason = "one linear flow: read, merge, render, write"
)]
pub fn run(cli: Cli) -> Result<Exit> {
    validate(&cli)?;
    let operator = (!cli.operator.is_empty()).then_some(cli.operator.as_str());
    let mut prov = Provenance::start("slo-report", env!("CARGO_PKG_VERSION"), operator, false);

    // A prod-like health report, read before anything is written.
    let stack = match &cli.prodlike_health_file {
        Some(p) => Some(ops::ProdlikeHealth::read(p)?),
        None => None,
    };

    // Fault events: small, read whole.
    let events_bytes = cli.fault_events_file.read_bytes()?;
    let events_sha = evidence_core::provenance::sha256_hex(&events_bytes);
    let events_label = cli.fault_events_file.label();
    let events: Vec<_> =
        FaultEventReader::new(&events_bytes[..], events_label.clone()).collect::<Result<_>>()?;
    let last_event_ns = events
        .iter()
        .filter(|(_, e)| e.execute)
        .map(|(_, e)| e.effective_ns().max(e.ts_ns))
        .max();
    let first_event_ns = events.iter().map(|(_, e)| e.ts_ns).min();
    let mut pairing: Pairing = pair_windows(events, &events_label, cli.drill_id.as_deref())?;
    for (line, sc) in &pairing.unmatched_clears {
        warn(&format!(
            "{events_label}:{line}: clear of {sc} without an open apply; ignored"
        ));
    }
    for w in &pairing.windows {
        if w.clear_ns.is_none() {
            warn(&format!(
                "{events_label}:{}: apply of {} without its clear ({})",
                w.apply_line,
                w.scenario,
                w.incomplete_reason.unwrap_or("apply_without_clear")
            ));
        }
    }

    // Probe log: streamed once.
    let probe = read_probe(
        &cli.probe_log_file,
        &mut pairing.windows,
        i64::try_from(cli.settle_ms)
            .unwrap_or(i64::MAX)
            .saturating_mul(1_000_000),
        cli.timeline_svg.is_some(),
    )?;
    let summary = &probe.summary;
    let sim = cli.sim_max_diff_ms.map(|d| report::SimAgreement {
        max_diff_ms: d,
        bound_ms: cli.sim_bound_ms,
    });
    let outcome = report::outcome(&pairing.windows, cli.target_p99_sec)
        .with_measured(cli.processes_survived.map(|y| y == YesNo::Yes), sim);
    prov.dry_run = pairing.executed_events == 0;
    prov.finish();

    let block = ProvenanceBlock {
        base: prov.clone(),
        fault_events_file: events_label.clone(),
        fault_events_sha256: events_sha,
        probe_log_file: cli.probe_log_file.label(),
        probe_log_sha256: probe.sha256.clone(),
        probe_log_lines: probe.lines,
        health_samples: summary.samples,
    };
    let mut printed: Vec<String> = Vec::new();
    let mut produced: Vec<(String, String)> = Vec::new();
    let mut write =
        |path: &Path, bytes: &[u8], produced: &mut Vec<(String, String)>| -> Result<()> {
            write_atomic(path, bytes)?;
            produced.push((
                path.display().to_string(),
                evidence_core::provenance::sha256_hex(bytes),
            ));
            printed.push(path.display().to_string());
            Ok(())
        };

    // Samples CSV and timeline first, so the report can record their SHA-256.
    if let Some(p) = &cli.samples_csv {
        write(p, &report::samples_csv(&pairing.windows)?, &mut produced)?;
    }
    let date = cli.date.clone().unwrap_or_else(|| {
        let base = pairing
            .windows
            .first()
            .map(|w| w.apply_ns)
            .or(first_event_ns)
            .unwrap_or_else(now_ns);
        fmt::iso_date(fmt::trading_day(base))
    });
    if let Some(p) = &cli.timeline_svg {
        let title = format!("Reconnect drill timeline, {date}");
        let meta = serde_json::to_string(&block).unwrap_or_default();
        let svg = svg::render(&pairing.windows, summary, &title, &meta);
        write(p, svg.as_bytes(), &mut produced)?;
    }

    let out_path = match cli.output_file.as_str() {
        "" | "-" => None,
        p => Some(PathBuf::from(p)),
    };
    let header = report::Header {
        date,
        operator: cli.operator.clone(),
        host: cli.host.clone(),
        build: cli.build.clone(),
        config_profile: cli.config_profile.clone(),
        interface: cli.interface.clone(),
        target_s: cli.target_p99_sec,
        events_path: events_label.clone(),
        probe_path: cli.probe_log_file.label(),
        csv_path: cli.samples_csv.as_ref().map(|p| p.display().to_string()),
        svg: cli.timeline_svg.as_ref().map(|p| {
            let link = out_path
                .as_deref()
                .map_or_else(|| p.display().to_string(), |o| relative_link(o, p));
            (p.display().to_string(), link)
        }),
    };
    let facts = report::ProbeFacts {
        lines: probe.lines,
        samples: summary.samples,
        span: summary
            .first
            .zip(summary.last)
            .map(|(a, b)| (a.ts_ns, b.ts_ns)),
        last_healthy: summary
            .last
            .is_some_and(|l| l.state == HealthState::Healthy),
        sorted_in_memory: probe.sorted_in_memory,
    };
    let mut md = report::markdown(&header, &pairing, &outcome, &facts);
    md.push_str(&block.markdown(&produced));
    md.push('\n');

    // Ops health and alerts.
    let (redis, timescale) = storage_inputs(&cli, stack.as_ref());
    let generated_ts_ns = now_ns();
    let last_ts = summary.last.map(|l| l.ts_ns);
    let outlived = match (last_ts, last_event_ns) {
        (Some(l), Some(e)) => l >= e,
        (Some(_), None) => true,
        (None, _) => false,
    };
    let liveness_detail = format!(
        "probe log has {} health lines{}; last fault event {}",
        summary.samples,
        last_ts.map_or_else(String::new, |l| format!(
            ", the last at {}",
            fmt::iso_utc(l)
        )),
        last_event_ns.map_or_else(|| "none".to_string(), fmt::iso_utc)
    );
    let slis = ops::build_slis(&ops::SliInputs {
        health_lines: summary.samples,
        probe_outlived_faults: outlived,
        liveness_detail,
        recovery_p99_s: outcome.recovery.map(|s| secs(s.p99)),
        bridge_target_ms: cli.strategy_bridge_target_ms,
        chain: cli.strategy_bridge_chain_status,
        redis,
        timescale,
    });
    let overall_healthy = slis.iter().all(|s| s.healthy != Some(false));
    let not_measured: Vec<String> = slis
        .iter()
        .filter(|s| s.healthy.is_none())
        .map(|s| s.name.clone())
        .collect();
    let health = ops::HealthReport {
        generated_ts_ns,
        scope: "core_engine + strategy_bridge + storage".into(),
        overall_healthy,
        metadata: ops::metadata(&cli),
        slis: slis.clone(),
        not_measured,
        provenance: block.clone(),
    };
    let prov_md = block.markdown(&[]);
    if let Some(p) = opt_path(&cli.health_json_file) {
        write(&p, &json_pretty(&health)?, &mut produced)?;
    }
    if let Some(p) = opt_path(&cli.health_markdown_file) {
        let text = format!("{}{prov_md}", ops::health_markdown(&health));
        write(&p, text.as_bytes(), &mut produced)?;
    }
    let alert_json = opt_path(&cli.alert_json_file);
    let alert_md = opt_path(&cli.alert_markdown_file);
    if alert_json.is_some() || alert_md.is_some() {
        let alerts = ops::AlertReport {
            generated_ts_ns,
            overall_healthy,
            alerts: ops::alerts(&slis),
            provenance: block.clone(),
        };
        if let Some(p) = alert_json {
            write(&p, &json_pretty(&alerts)?, &mut produced)?;
        }
        if let Some(p) = alert_md {
            let text = format!("{}{prov_md}", ops::alert_markdown(&alerts));
            write(&p, text.as_bytes(), &mut produced)?;
        }
    }

    // The report itself, then stdout: the report path (or the report) and every file written.
    let mut out = String::new();
    match &out_path {
        Some(p) => {
            write_atomic(p, md.as_bytes())?;
            out.push_str(&format!("{}\n", p.display()));
            info(&format!("report generated: {}", p.display()));
        }
        None => out.push_str(&md),
    }
    for p in &printed {
        out.push_str(p);
        out.push('\n');
    }
    stdout_write(&out)?;

    let verdict = match outcome.recovery {
        Some(st) => format!(
            "recovery P99 {:.3} s over {} recovered of {} counted windows (target < {} s)",
            secs(st.p99),
            st.count,
            outcome.counted,
            fmt::g(cli.target_p99_sec)
        ),
        None => format!(
            "no recovery sample over {} counted windows (target < {} s)",
            outcome.counted,
            fmt::g(cli.target_p99_sec)
        ),
    };
    if outcome.meets_target {
        info(&format!("SLO met: {verdict}"));
        return Ok(Exit::Pass);
    }
    let why = outcome.reasons.join("; ");
    if cli.no_fail {
        warn(&format!(
            "SLO not met: {verdict}: {why} (--no-fail: exit 0)"
        ));
        Ok(Exit::Pass)
    } else {
        info(&format!("SLO not met: {verdict}: {why}"));
        Ok(Exit::Breach)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn links_are_relative_to_the_report() {
        assert_eq!(
            relative_link(
                Path::new("docs/results/r.md"),
                Path::new("docs/results/t.svg")
            ),
            "t.svg"
        );
        assert_eq!(
            relative_link(Path::new("docs/results/r.md"), Path::new("runtime/t.svg")),
            "../../runtime/t.svg"
        );
        assert_eq!(
            relative_link(Path::new("/a/b/r.md"), Path::new("/a/c/t.svg")),
            "../c/t.svg"
        );
    }
}
