//! `evidence`: one tool over a results folder.
//!
//! - `index`: every drill's evidence → one Markdown page and one JSON file, newest first (SOP,
//!   drill id, verdict, key figures, links); the Markdown table goes to stdout too.
//! - `prom`: node_exporter textfile metrics per SOP (last run, last success, result, figures).
//! - `junit`: JUnit XML of the verifiers' verdicts (their `--format json` records).
//! - `seal` / `check-seal`: a SHA-256 manifest over the folder's files, chained to the previous
//!   seal, so any changed, removed or added byte is detected.

pub mod junit;
pub mod prom;
pub mod scan;
pub mod seal;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use evidence_core::cli::{self, EXIT_STATUS_HELP};
use evidence_core::io::{Input, Output};
use evidence_core::provenance::Provenance;
use evidence_core::{EvidenceError, Exit, Result};
use serde::Serialize;

use crate::scan::{Entry, Verdict};

const AFTER_HELP: &str = "EXAMPLES:\n  evidence index                                  # docs/results → evidence_index.md/.json, table on stdout\n  evidence prom --output-file /var/lib/prometheus/node-exporter/ctp_ops.prom\n  wal-verify --format json --evidence-file docs/results/wal_recovery_result.env | evidence junit - > junit.xml\n  evidence seal --drill-id wal-20260314T020000Z-1234 && evidence check-seal\n\nindex: exit 1 when a drill failed or is a dry run, 2 when evidence is unreadable.\ncheck-seal: exit 1 when a byte changed, a file was removed or added, or the chain is broken.";

/// One view of every drill: index, metrics, JUnit, tamper-evident seals.
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}\n\n{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Index every drill's evidence (Markdown + JSON, newest first); the table goes to stdout.
    Index(IndexArgs),
    /// node_exporter textfile metrics per SOP.
    Prom(PromArgs),
    /// JUnit XML of verifier verdicts (JSONL from `<verifier> --format json`).
    Junit(JunitArgs),
    /// Seal the results folder: SHA-256 of every file, chained to the previous seal.
    Seal(SealArgs),
    /// Check the seal chain and that the folder is exactly what the latest seal lists.
    CheckSeal(CheckSealArgs),
}

/// The results folder.
#[derive(Debug, clap::Args)]
pub struct DirArgs {
    /// Results folder (default: $CTP_OPS_RESULTS_DIR; docs/results in a checkout;
    /// /var/lib/ctp-ops/results when installed).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
}

impl DirArgs {
    fn dir(&self) -> Result<PathBuf> {
        let d = self
            .results_dir
            .clone()
            .unwrap_or_else(evidence_core::paths::default_results_dir);
        if !d.is_dir() {
            return Err(EvidenceError::failed(format!(
                "results folder not found: {}",
                d.display()
            )));
        }
        Ok(d)
    }
}

/// `index` flags.
#[derive(Debug, clap::Args)]
pub struct IndexArgs {
    /// Results folder.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Markdown page (default RESULTS_DIR/evidence_index.md).
    #[arg(long)]
    pub output_markdown: Option<PathBuf>,
    /// JSON file (default RESULTS_DIR/evidence_index.json).
    #[arg(long)]
    pub output_json: Option<PathBuf>,
    /// Reconnect: the recovery P99 must be below this (seconds).
    #[arg(long, default_value_t = 10.0)]
    pub target_p99_sec: f64,
}

/// `prom` flags.
#[derive(Debug, clap::Args)]
pub struct PromArgs {
    /// Results folder.
    #[command(flatten)]
    pub dir: DirArgs,
    /// Metrics file (`-` for stdout); write it into node_exporter's --collector.textfile.directory.
    #[arg(long, default_value = "-")]
    pub output_file: Output,
    /// Where the last success time of each drill is kept between runs (default
    /// RESULTS_DIR/.evidence-prom-state.json).
    #[arg(long)]
    pub state_file: Option<PathBuf>,
    /// Reconnect: the recovery P99 must be below this (seconds).
    #[arg(long, default_value_t = 10.0)]
    pub target_p99_sec: f64,
}

/// `junit` flags.
#[derive(Debug, clap::Args)]
pub struct JunitArgs {
    /// Verifier JSONL files (`-` for stdin).
    #[arg(required = true)]
    pub inputs: Vec<Input>,
    /// JUnit XML output (`-` for stdout).
    #[arg(long, default_value = "-")]
    pub output_file: Output,
}

/// `seal` flags.
#[derive(Debug, clap::Args)]
pub struct SealArgs {
    /// Results folder.
    #[command(flatten)]
    pub dir: DirArgs,
    /// The drill this seal closes (recorded in the seal).
    #[arg(long)]
    pub drill_id: Option<String>,
    /// Who sealed it.
    #[arg(long)]
    pub operator: Option<String>,
}

/// `check-seal` flags.
#[derive(Debug, clap::Args)]
pub struct CheckSealArgs {
    /// Results folder.
    #[command(flatten)]
    pub dir: DirArgs,
}

/// Run a subcommand.
pub fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Command::Index(a) => index(&a),
        Command::Prom(a) => prom::run(&a),
        Command::Junit(a) => junit::run(&a),
        Command::Seal(a) => seal::seal(&a),
        Command::CheckSeal(a) => seal::check(&a),
    }
}

/// The index JSON.
#[derive(Debug, Serialize)]
struct IndexFile<'a> {
    kind: &'static str,
    results_dir: String,
    entries: &'a [Entry],
    provenance: Provenance,
}

fn check_target(t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(EvidenceError::usage(format!(
            "--target-p99-sec must be a finite number > 0, found {t}"
        )))
    }
}

/// Exit status of a set of entries: 2 unreadable, 1 failed or dry run, else 0.
#[must_use]
pub fn exit_of(entries: &[Entry]) -> Exit {
    entries.iter().fold(Exit::Pass, |acc, e| {
        acc.worst(match e.verdict {
            Verdict::Pass => Exit::Pass,
            Verdict::DryRun | Verdict::Fail => Exit::Breach,
            Verdict::Unreadable => Exit::BadInput,
        })
    })
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn link(f: &str) -> String {
    // Markdown link with the file name as text; spaces and parentheses escaped in the target.
    let target = f
        .replace(' ', "%20")
        .replace('(', "%28")
        .replace(')', "%29");
    format!("[{}]({target})", cell(f))
}

/// The Markdown table (what `make drill` prints at its end).
#[must_use]
pub fn table(entries: &[Entry]) -> String {
    let mut s = String::from(
        "| Finished (UTC) | SOP | Drill | Verdict | Key figures | Evidence |\n|---|---|---|---|---|---|\n",
    );
    for e in entries {
        let figs = e
            .figures
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let verdict = match e.verdict {
            Verdict::Pass => "PASS".to_string(),
            Verdict::DryRun => "DRY-RUN".to_string(),
            Verdict::Fail => format!("FAIL: {}", e.detail),
            Verdict::Unreadable => format!("UNREADABLE: {}", e.detail),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            e.finished_utc,
            cell(&e.sop),
            cell(&e.drill_id),
            cell(&verdict),
            cell(&figs),
            e.files
                .iter()
                .map(|f| link(f))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    s
}

fn index(a: &IndexArgs) -> Result<Exit> {
    check_target(a.target_p99_sec)?;
    let dir = a.dir.dir()?;
    let mut prov = Provenance::start("evidence", env!("CARGO_PKG_VERSION"), None, false);
    let entries = scan::scan(&dir, a.target_p99_sec)
        .map_err(|e| EvidenceError::io("cannot read", dir.as_path(), e))?;
    prov.finish();
    let md_path = a
        .output_markdown
        .clone()
        .unwrap_or_else(|| dir.join("evidence_index.md"));
    let json_path = a
        .output_json
        .clone()
        .unwrap_or_else(|| dir.join("evidence_index.json"));
    let t = table(&entries);
    let exit = exit_of(&entries);
    let md = format!(
        "# ctp-ops evidence index\n\n- Results folder: {}\n- Generated: {} by evidence {} on {}\n- Drills: {} ({} passed)\n\n{t}",
        dir.display(),
        prov.finished_utc,
        prov.version,
        prov.host,
        entries.len(),
        entries
            .iter()
            .filter(|e| e.verdict == Verdict::Pass)
            .count()
    );
    let file = IndexFile {
        kind: "evidence.index",
        results_dir: dir.display().to_string(),
        entries: &entries,
        provenance: prov,
    };
    let mut json = serde_json::to_string_pretty(&file)
        .map_err(|e| EvidenceError::failed(format!("cannot serialise the index: {e}")))?;
    json.push('\n');
    evidence_core::io::write_atomic(&md_path, md.as_bytes())?;
    evidence_core::io::write_atomic(&json_path, json.as_bytes())?;
    cli::stdout_write(&t)?;
    if entries.is_empty() {
        cli::warn(&format!("no drill evidence in {}", dir.display()));
    }
    Ok(exit)
}

/// A path relative to `dir` for display.
pub(crate) fn rel(dir: &Path, p: &Path) -> String {
    p.strip_prefix(dir).unwrap_or(p).display().to_string()
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
