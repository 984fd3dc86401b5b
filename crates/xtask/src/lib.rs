//! `xtask`: man pages and shell completions generated from every tool's clap definition, and a
//! check that the committed man pages (`docs/man/*.1`) are current.
//!
//! ```text
//! xtask man --out-dir docs/man            # regenerate the man pages (make man)
//! xtask check-man --dir docs/man          # exit 1 when one is stale, missing or extra (CI)
//! xtask completions --out-dir DIR         # DIR/bash/<tool>, DIR/zsh/_<tool>, DIR/fish/<tool>.fish
//! ```

use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};
use evidence_core::cli::EXIT_STATUS_HELP;
use evidence_core::{EvidenceError, Exit, Result};

/// A tool: its binary name and its clap command.
pub type Tool = (&'static str, fn() -> clap::Command);

/// Every tool. Add a tool here when it is added to the workspace (a test checks).
pub const TOOLS: &[Tool] = &[
    ("alert-report", alert_report::Cli::command),
    ("ctp-front-sim", ctp_front_sim::Cli::command),
    ("ctp-preflight", ctp_preflight::Cli::command),
    ("ctp-probe", ctp_probe::Cli::command),
    ("demo-service", demo_service::Cli::command),
    ("evidence", evidence::Cli::command),
    ("failover-orchestrator", failover_orchestrator::Cli::command),
    ("failover-verify", failover_verify::Cli::command),
    ("fault-inject", fault_inject::Cli::command),
    ("fault-proxy", fault_proxy::Cli::command),
    ("multihost", multihost::Cli::command),
    ("prodlike", prodlike::Cli::command),
    ("prodlike-health", prodlike_health::Cli::command),
    ("reconnect-evidence", reconnect_evidence::Cli::command),
    ("render-k8s", render_k8s::Cli::command),
    ("render-prom-rules", render_prom_rules::Cli::command),
    ("render-systemd", render_systemd::Cli::command),
    ("rollback-drill", rollback_drill::Cli::command),
    ("rollback-verify", rollback_verify::Cli::command),
    ("rollout-orchestrator", rollout_orchestrator::Cli::command),
    ("rollout-verify", rollout_verify::Cli::command),
    ("session-guard", session_guard::Cli::command),
    ("slo-report", slo_report::Cli::command),
    ("svc-ctl", svc_ctl::Cli::command),
    ("wal-drill", wal_drill::Cli::command),
    ("wal-replay", wal_replay::Cli::command),
    ("wal-verify", wal_verify::Cli::command),
    ("wal-writer", wal_writer::Cli::command),
];

/// Generate man pages and completions from the tools' clap definitions.
#[derive(Debug, Parser)]
#[command(version, after_help = format!("EXAMPLE:\n  cargo run -p xtask -- man --out-dir docs/man\n\n{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// What to generate.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Write one man page per tool (TOOL.1).
    Man {
        /// Output folder.
        #[arg(long, default_value = "docs/man")]
        out_dir: PathBuf,
    },
    /// Compare the man pages in a folder with freshly generated ones (exit 1 when stale).
    CheckMan {
        /// Folder of the committed man pages.
        #[arg(long, default_value = "docs/man")]
        dir: PathBuf,
    },
    /// Write bash, zsh and fish completions for every tool.
    Completions {
        /// Output folder (bash/, zsh/, fish/ inside).
        #[arg(long)]
        out_dir: PathBuf,
    },
}

fn command_of(name: &'static str, make: fn() -> clap::Command) -> clap::Command {
    make().name(name).bin_name(name)
}

/// The man page of one tool, roff text.
pub fn man_page(name: &'static str, make: fn() -> clap::Command) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(command_of(name, make))
        .render(&mut buf)
        .map_err(|e| EvidenceError::failed(format!("cannot render the man page of {name}: {e}")))?;
    Ok(buf)
}

/// Every man page: (file name, bytes): `<tool>.1`, and `<tool>-<subcommand>.1` for each
/// subcommand (the tool's page refers to those).
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for (n, m) in TOOLS {
        out.push((format!("{n}.1"), man_page(n, *m)?));
        let mut cmd = command_of(n, *m);
        cmd.build();
        for sub in cmd.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            // clap names are &'static str (without clap's "string" feature); this short-lived
            // generator leaks the few subcommand names rather than enabling it workspace-wide.
            let full: &'static str = Box::leak(format!("{n}-{}", sub.get_name()).into_boxed_str());
            let bin: &'static str = Box::leak(format!("{n} {}", sub.get_name()).into_boxed_str());
            let mut buf = Vec::new();
            clap_mangen::Man::new(sub.clone().name(full).bin_name(bin))
                .render(&mut buf)
                .map_err(|e| {
                    EvidenceError::failed(format!("cannot render the man page of {full}: {e}"))
                })?;
            out.push((format!("{full}.1"), buf));
        }
    }
    Ok(out)
}

/// Stale, missing or extra man pages in `dir` (empty when current).
pub fn stale_man_pages(dir: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let pages = man_pages()?;
    for (f, bytes) in &pages {
        match std::fs::read(dir.join(f)) {
            Ok(b) if &b == bytes => {}
            Ok(_) => problems.push(format!("{f}: stale")),
            Err(_) => problems.push(format!("{f}: missing")),
        }
    }
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.filter_map(std::result::Result::ok) {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.ends_with(".1") && !pages.iter().any(|(f, _)| *f == n) {
                problems.push(format!("{n}: no such tool"));
            }
        }
    }
    problems.sort();
    Ok(problems)
}

fn write(p: &Path, bytes: &[u8]) -> Result<()> {
    evidence_core::io::write_atomic(p, bytes)
}

/// Write the completions of every tool under `out`.
pub fn completions(out: &Path) -> Result<()> {
    use clap_complete::Shell;
    for (name, make) in TOOLS {
        for (shell, file) in [
            (Shell::Bash, format!("bash/{name}")),
            (Shell::Zsh, format!("zsh/_{name}")),
            (Shell::Fish, format!("fish/{name}.fish")),
        ] {
            let mut cmd = command_of(name, *make);
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut cmd, *name, &mut buf);
            write(&out.join(file), &buf)?;
        }
    }
    Ok(())
}

/// Run.
pub fn run(cli: Cli) -> Result<Exit> {
    match cli.command {
        Cmd::Man { out_dir } => {
            for (f, bytes) in man_pages()? {
                write(&out_dir.join(f), &bytes)?;
            }
            Ok(Exit::Pass)
        }
        Cmd::CheckMan { dir } => {
            let problems = stale_man_pages(&dir)?;
            let mut text = String::new();
            for p in &problems {
                text.push_str(&format!("{}/{p}\n", dir.display()));
            }
            if !problems.is_empty() {
                text.push_str("run `make man` and commit docs/man\n");
            }
            evidence_core::cli::stdout_write(&text)?;
            Ok(Exit::pass_if(problems.is_empty()))
        }
        Cmd::Completions { out_dir } => {
            completions(&out_dir)?;
            Ok(Exit::Pass)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
        for (n, m) in TOOLS {
            command_of(n, *m).debug_assert();
        }
    }
}
