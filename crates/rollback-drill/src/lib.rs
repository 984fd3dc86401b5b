//! `rollback-drill`: SOP 5 for real. Establish the rollback target (baseline), deploy a new
//! release, inject a failure (the new release fails its health check, or its process is killed),
//! detect it with a health probe, roll back, wait until the old release passes its health check,
//! check which release runs, and write `deploy_rollback_result.env`: the original's twelve keys in
//! order, then measured extras, then provenance.
//!
//! `rollback_seconds` is measured with a monotonic clock from the detection of the failure (the
//! first failed probe) until the old release passes its health check; the two UTC timestamps are
//! derived from the same clock, so they agree with it.
//!
//! Defaults drill the demo service through `svc-ctl` (`--platform local`). For a user's service,
//! give its commands and health check with flags or `--config` (`systemctl` or `kubectl` commands,
//! `--platform systemd|k8s`); with `--execute` those platforms need a release check
//! (`--release-cmd`, or an HTTP restored check whose body names the target release). Commands get
//! context in environment variables (`DRILL_ID`, `DRILL_RUN_DIR`, `DRILL_RELEASE_VERSION`,
//! `DRILL_ROLLBACK_TARGET`, `DRILL_PHASE`, `DRILL_EXPECT_VERSION`), never interpolated into the
//! command text.
//!
//! Modules: [`config`] turns the [`Cli`] into a validated [`config::Config`] once; `drill` runs
//! the phases and measures; `evidence` renders the file.

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory as _, Parser, ValueEnum};
use evidence_core::drill::DrillArgs;
use evidence_core::duration::DurationParser;
use evidence_core::{Exit, Result};
use serde::Deserialize;
use trading_calendar::guard::GuardArgs;

pub mod config;
mod drill;
mod evidence;

const EXIT_HELP: &str = "EXIT STATUS:
  0    pass: the failure was detected, the rollback target passed its health check in time and the
       release check saw it running (dry run: the plan was printed)
  1    the drill ran and failed: set-up (baseline, deploy, new release never healthy), detection,
       rollback, restored health, release after, or --stop-after; evidence has fail_reason
  2    bad flags or config, a refusal (trading session, no release check on systemd/k8s, an output
       that cannot be written), a held lock, a command that could not start; no evidence
  130  interrupted by SIGINT/SIGTERM, also during the clean-up; evidence says result=interrupted";

/// Deploy a new release, inject a failure, detect it, roll back, measure rollback_seconds.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  rollback-drill --execute --failure health --stop-after\n  rollback-verify --evidence-file docs/results/deploy_rollback_result.env --max-rollback-seconds 180\n\n  # a systemd service on a real host (outside trading sessions):\n  rollback-drill --execute --platform systemd --config drill.yaml --release-cmd 'cat /srv/app/RELEASE'\n\nWithout --execute (or with --dry-run) nothing runs: the commands are printed as\n`[dry-run] <command>` and the evidence says result=dry_run (rejected by rollback-verify unless\n--allow-dry-run).\n\n{EXIT_HELP}"
    )
)]
pub struct Cli {
    /// What every drill takes (--execute, --dry-run, --operator, --drill-id, --results-dir,
    /// --output-file, --lock-file).
    #[command(flatten)]
    pub drill: DrillArgs,
    /// The session guard (platform systemd/k8s, or a non-loopback health check).
    #[command(flatten)]
    pub guard: GuardArgs,
    /// YAML with the drill's settings (keys as the long flags, with `_`; `health` and
    /// `restored_health` as checks: {http: URL, expect_status, body_contains} | {tcp: ADDR} |
    /// {command: CMD}). Flags override it.
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Platform recorded in the evidence: `local` (svc-ctl, the default), `systemd`, `k8s`.
    #[arg(long, value_enum)]
    pub platform: Option<Platform>,
    /// The new release to deploy (and see fail).
    #[arg(long, value_name = "V")]
    pub release_version: Option<String>,
    /// The release to roll back to.
    #[arg(long, value_name = "V")]
    pub rollback_target: Option<String>,
    /// The failure to inject: `health` (the new release fails its health check) or `kill` (its
    /// process is killed with SIGKILL).
    #[arg(long, value_enum)]
    pub failure: Option<Failure>,
    /// Run folder of the local service (platform local).
    #[arg(long, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
    /// Command that puts the rollback target in place and running before the drill.
    #[arg(long, value_name = "CMD")]
    pub baseline_cmd: Option<String>,
    /// Command that deploys the new release.
    #[arg(long, value_name = "CMD")]
    pub deploy_cmd: Option<String>,
    /// Command that injects the failure after deploy.
    #[arg(long, value_name = "CMD")]
    pub inject_cmd: Option<String>,
    /// Command that rolls back to the rollback target.
    #[arg(long, value_name = "CMD")]
    pub rollback_cmd: Option<String>,
    /// Command that stops the service (with --stop-after).
    #[arg(long, value_name = "CMD")]
    pub stop_cmd: Option<String>,
    /// Release check: a command whose last non-empty stdout line is the running release (run
    /// before the deploy and after the rollback). Required with --execute on systemd/k8s unless
    /// the restored HTTP check's body names the target release.
    #[arg(long, value_name = "CMD")]
    pub release_cmd: Option<String>,
    /// Health check: HTTP GET this URL, expecting 200.
    #[arg(long, value_name = "URL", conflicts_with = "health_cmd")]
    pub health_url: Option<String>,
    /// Health check: this command must exit 0.
    #[arg(long, value_name = "CMD")]
    pub health_cmd: Option<String>,
    /// After the rollback, the health body must also contain this text (HTTP checks).
    #[arg(long, value_name = "TEXT")]
    pub restored_body_contains: Option<String>,
    /// Time to wait for the failure to be detected: `30s`, `500ms`, `2m`, or seconds [default:
    /// 30].
    #[arg(long, value_name = "SECS", value_parser = positive_secs())]
    pub detect_timeout: Option<Duration>,
    /// Time from detection for the rollback to pass its health check (`60s`, `2m`, or seconds)
    /// [default: 60].
    #[arg(long, value_name = "SECS", value_parser = positive_secs())]
    pub rollback_timeout: Option<Duration>,
    /// Stop the service at the end (leave nothing running); `stopped_after` records whether it
    /// was seen gone.
    #[arg(long)]
    pub stop_after: bool,
    /// Notes to record.
    #[arg(long)]
    pub notes: Option<String>,
}

fn positive_secs() -> DurationParser {
    DurationParser::secs()
        .min(Duration::from_millis(1))
        .max(Duration::from_secs(86_400))
}

/// Where the service runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// The local process supervisor (svc-ctl).
    Local,
    /// systemd units (commands from the config or flags).
    Systemd,
    /// Kubernetes (commands from the config or flags).
    K8s,
}

impl Platform {
    fn as_str(self) -> &'static str {
        match self {
            Platform::Local => "local",
            Platform::Systemd => "systemd",
            Platform::K8s => "k8s",
        }
    }
}

/// Which failure to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Failure {
    /// The new release fails its health check.
    Health,
    /// The new release's process is killed.
    Kill,
}

impl Failure {
    fn evidence(self) -> &'static str {
        match self {
            Failure::Health => "new_release_fails_health_check",
            Failure::Kill => "new_release_process_killed",
        }
    }
}

/// Run the drill.
///
/// # Errors
/// Bad flags or config, a refusal (session guard, missing release check), a held lock: exit 2
/// before anything runs.
pub fn run(cli: Cli) -> Result<Exit> {
    let cfg = config::Config::try_from(&cli)?;
    if cfg.drill.execute {
        drill::execute(&cfg)
    } else {
        drill::dry_run(&cfg)
    }
}

/// The clap command (for docs and tests).
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
