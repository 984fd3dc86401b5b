//! `ctp-preflight`: pre-deployment checks of a CTP config and its fronts (SOP 1, replaces
//! `ctp_preflight_check`).
//!
//! Keeps the original's flags, item names, text lines (`[PASS|FAIL|SKIP] name: detail`,
//! `overall: PASS|FAIL`) and JSON shape (`{ok, items[]{name, ok, skipped, detail}}`), and goes
//! beyond it the way kubeadm's preflight does: every check has a stable id and a severity
//! (error, warning, info); `--ignore-preflight-errors id,id` turns named errors into warnings
//! (`all` is refused for a production environment). Exit 0 when no error-severity check failed,
//! 1 when one did, 2 when the config cannot be read or the usage is wrong.

mod checks;
mod login;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use clap::builder::TypedValueParser as _;
use clap::{Parser, ValueEnum};
use evidence_core::cli::{self, EXIT_STATUS_HELP};
use evidence_core::duration::{DurationParser, whole_millis};
use evidence_core::provenance::Provenance;
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Exit, Result};
use serde::Serialize;

pub use checks::{CHECKS, Check};

const AFTER_HELP: &str = "EXAMPLE:\n  ctp-preflight --config configs/sim/local.yaml\n  ctp-preflight --config configs/sim/ctp_trading_hours.yaml --skip-network-check --json\n  ctp-preflight --config configs/prod/ctp.yaml --ignore-preflight-errors CtpLibFiles --format jsonl | jq .\n\nText lines are `[PASS|FAIL|WARN|SKIP] name: detail` and a last line `overall: PASS|FAIL`;\nWARN marks a failed warning-severity check or an ignored error.";

/// Pre-deployment checks of a CTP config and its fronts.
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}\n\n{EXIT_STATUS_HELP}"))]
#[allow(clippy::struct_excessive_bools)]
pub struct Cli {
    /// CTP config (YAML, keys under `ctp:`) [default: sim/ctp_trading_hours.yaml found over the
    /// config search order: $CTP_OPS_CONFIG_DIR, ./configs, PREFIX/etc/ctp-ops, /etc/ctp-ops].
    #[arg(
        long,
        hide_default_value = true,
        default_value_os_t = evidence_core::paths::config_or_checkout("sim/ctp_trading_hours.yaml")
    )]
    pub config: PathBuf,
    /// Folder with the CTP API files (ThostFtdcTraderApi.h, the two .so files, error.xml).
    #[arg(
        long,
        default_value = "ctp_api/v6.7.11_20250617_api_traderapi_se_linux64"
    )]
    pub ctp_lib_dir: PathBuf,
    /// TCP connect timeout per front, in ms (clamped to >= 100).
    #[arg(long, value_name = "DURATION", default_value = "1500", value_parser = DurationParser::millis().map(whole_millis))]
    pub connect_timeout_ms: u64,
    /// Skip the network checks (DNS, TCP connects); every other check still runs.
    #[arg(long)]
    pub skip_network_check: bool,
    /// Print JSON (the original's shape plus id, severity, duration_ms); same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output format.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Comma-separated check ids (or names) whose failure becomes a warning; `all` for every
    /// check (refused for a production environment).
    #[arg(long, value_delimiter = ',', value_name = "ID,ID")]
    pub ignore_preflight_errors: Vec<String>,
    /// Folder whose free disk is checked (the runtime folder).
    #[arg(long, default_value = "runtime")]
    pub runtime_dir: PathBuf,
    /// Minimum free disk in the runtime folder, in MiB.
    #[arg(long, default_value_t = 1024)]
    pub min_free_mb: u64,
    /// Largest clock offset accepted from chrony, in ms.
    #[arg(long, value_name = "DURATION", default_value = "100", value_parser = DurationParser::millis().map(whole_millis))]
    pub max_clock_offset_ms: u64,
    /// Trading calendar (default: calendar/cn-futures-2026.yaml over the config search order, else
    /// the built-in copy).
    #[arg(long)]
    pub calendar: Option<PathBuf>,
    /// Margin around sessions for the trading-session hint, in minutes.
    #[arg(long, default_value_t = 15)]
    pub session_margin_minutes: u32,
    /// Operator recorded in the JSON report's provenance (default: $USER).
    #[arg(long)]
    pub operator: Option<String>,
    /// Write the report to this file (atomically) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output_file: Option<PathBuf>,
    /// Also log in to both fronts through the vendor CTP API (the libraries in --ctp-lib-dir, the
    /// password from password_env) and report how long connect, authenticate and login took
    /// (check ctp_login; a network check).
    #[arg(long)]
    pub check_login: bool,
    /// --check-login: where the libraries' own stdout goes (appended, mode 0600)
    /// [default: ctp_api_stdout.log in --runtime-dir].
    #[arg(long, value_name = "FILE")]
    pub api_log: Option<PathBuf>,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `[PASS] name: detail` lines and `overall: PASS|FAIL`.
    Text,
    /// One JSON document.
    Json,
    /// One `preflight.check` record per check and a `preflight.verdict`, for pipes.
    Jsonl,
}

/// How much a failed check matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Fails the preflight (exit 1) unless ignored.
    Error,
    /// Reported, never fails the preflight.
    Warning,
    /// Informational (never fails).
    Info,
}

/// One check's outcome (the original's item plus id, severity, duration).
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// The original's item name.
    pub name: String,
    /// Passed.
    pub ok: bool,
    /// Not run (the reason is in `detail`).
    pub skipped: bool,
    /// What was found. Never a secret.
    pub detail: String,
    /// Stable id for `--ignore-preflight-errors`.
    pub id: String,
    /// Severity of a failure.
    pub severity: Severity,
    /// A failed error that `--ignore-preflight-errors` turned into a warning.
    pub ignored: bool,
    /// How long the check took, ms.
    pub duration_ms: f64,
    /// TCP connect time, ms (connect checks that connected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<f64>,
}

impl Item {
    /// `PASS`, `FAIL`, `WARN` or `SKIP`.
    #[must_use]
    pub fn tag(&self) -> &'static str {
        if self.skipped {
            "SKIP"
        } else if self.ok {
            "PASS"
        } else if self.counts_as_error() {
            "FAIL"
        } else {
            "WARN"
        }
    }

    /// A failed, non-ignored error.
    #[must_use]
    pub fn counts_as_error(&self) -> bool {
        !self.ok && !self.skipped && self.severity == Severity::Error && !self.ignored
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    ok: bool,
    items: &'a [Item],
    exit: u8,
    config: String,
    provenance: Provenance,
}

/// Run the preflight.
pub fn run(cli: Cli) -> Result<Exit> {
    let format = if cli.json {
        Format::Json
    } else {
        cli.format.unwrap_or(Format::Text)
    };
    let ignore = checks::parse_ignore(&cli.ignore_preflight_errors)?;
    let mut prov = Provenance::start(
        "ctp-preflight",
        env!("CARGO_PKG_VERSION"),
        cli.operator.as_deref(),
        false,
    );
    // --check-login: the CTP libraries print to fd 1; the report goes to the original stdout.
    let report_stdout = login::capture(&cli)?;
    let t0 = Instant::now();
    let outcome = checks::run_all(&cli, &ignore)?;
    let elapsed = t0.elapsed();
    prov.finish();
    prov.config_sha256.clone_from(&outcome.config_sha256);
    let items = &outcome.items;
    let exit = outcome.exit;
    let ok = exit == Exit::Pass;
    let config = cli.config.display().to_string();
    let out = match format {
        Format::Text => {
            let mut s = String::new();
            for it in items {
                let _ = writeln!(s, "[{}] {}: {}", it.tag(), it.name, it.detail);
            }
            let _ = writeln!(s, "overall: {}", if ok { "PASS" } else { "FAIL" });
            s
        }
        Format::Json => {
            let r = JsonReport {
                ok,
                items,
                exit: exit.code(),
                config,
                provenance: prov,
            };
            let mut s = serde_json::to_string_pretty(&r)
                .map_err(|e| EvidenceError::failed(format!("cannot encode JSON: {e}")))?;
            s.push('\n');
            s
        }
        Format::Jsonl => {
            let mut s = String::new();
            let ts = now_ns();
            for it in items {
                let mut v = serde_json::to_value(it).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    let mut rec = serde_json::Map::new();
                    rec.insert("kind".into(), "preflight.check".into());
                    rec.insert("ts_ns".into(), ts.into());
                    rec.insert("tool".into(), "ctp-preflight".into());
                    rec.insert("config".into(), config.clone().into());
                    rec.append(o);
                    v = rec.into();
                }
                let _ = writeln!(s, "{v}");
            }
            let verdict = serde_json::json!({"kind": "preflight.verdict", "ts_ns": ts, "tool": "ctp-preflight",
                "config": config, "ok": ok, "exit": exit.code(),
                "errors": items.iter().filter(|i| i.counts_as_error()).count(),
                "warnings": items.iter().filter(|i| i.tag() == "WARN").count(),
                "config_sha256": outcome.config_sha256, "duration_ms": ms(elapsed)});
            let _ = writeln!(s, "{verdict}");
            s
        }
    };
    // Defence in depth: no secret value leaves the tool, whatever a check wrote.
    let out = outcome.scrub(&out);
    match &cli.output_file {
        Some(p) => evidence_core::io::write_atomic(p, out.as_bytes())?,
        None => match report_stdout {
            Some(mut f) => std::io::Write::write_all(&mut f, out.as_bytes())
                .map_err(|e| EvidenceError::io("cannot write", "stdout", e))?,
            None => cli::stdout_write(&out)?,
        },
    }
    if let Some(msg) = &outcome.fatal {
        cli::report_error(&EvidenceError::failed(outcome.scrub(msg)));
    }
    Ok(exit)
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }
}
