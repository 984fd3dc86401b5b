//! `svc-ctl`: the local process supervisor's command line. It deploys releases of the demo service
//! into a run folder (`releases/<v>/`, an atomically switched `current` link, `previous`
//! remembered), starts and stops the service as a detached process with a pid file and a log, rolls
//! back, injects failures, and checks health. The committed env-configs call it, so their steps are
//! real commands. Layout: docs/formats.md, "svc-ctl run folder".

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory as _, Parser, Subcommand};
use deploy_core::svc::{self, RunDir};
use evidence_core::cli::{EXIT_STATUS_HELP, info, stdout_write};
use evidence_core::duration::DurationParser;
use evidence_core::health::{Check, HealthOptions, wait_healthy};
use evidence_core::lock::LockFile;
use evidence_core::supervisor::Stopped;
use evidence_core::{EvidenceError, Exit, Result, signals};

/// Local process supervisor for the deploy drills: deploy, roll back, stop, check the demo service.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = format!(
        "EXAMPLE:\n  svc-ctl --run-dir runtime/deploy/sim deploy --release v1 --wait-healthy 10\n  svc-ctl --run-dir runtime/deploy/sim deploy --release v2 --fail-health\n  svc-ctl --run-dir runtime/deploy/sim rollback\n  svc-ctl --run-dir runtime/deploy/sim health --expect-version v1 --timeout 10\n  svc-ctl --run-dir runtime/deploy/sim stop\n\n{EXIT_STATUS_HELP}\n  (health: 1 means unhealthy or the wrong version)"
    )
)]
pub struct Cli {
    /// The run folder (releases, current/previous links, pid file, logs).
    #[arg(long, value_name = "DIR", default_value = "runtime/deploy")]
    pub run_dir: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub action: Action,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Install a release, switch `current` to it atomically, restart the service.
    Deploy {
        /// Release name, e.g. v2.
        #[arg(long)]
        release: String,
        /// Install it as a bad release whose /health answers 503.
        #[arg(long)]
        fail_health: bool,
        /// Service binary to install (default: demo-service next to svc-ctl).
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
        /// TCP port (default: the recorded one, else a free one).
        #[arg(long)]
        port: Option<u16>,
        /// After starting, wait up to this many seconds for /health to pass with this release's
        /// version (exit 1 if it does not). Without it, deploy only waits for the port to open.
        #[arg(long, value_name = "SECS", value_parser = DurationParser::secs())]
        wait_healthy: Option<Duration>,
    },
    /// Switch `current` back to `previous` and restart.
    Rollback {
        /// Wait up to this many seconds for /health to pass with the restored version.
        #[arg(long, value_name = "SECS", value_parser = DurationParser::secs())]
        wait_healthy: Option<Duration>,
    },
    /// Start the current release (no-op when it already runs).
    Start,
    /// Stop the service: SIGTERM, SIGKILL after --grace.
    Stop {
        /// Seconds between SIGTERM and SIGKILL.
        #[arg(long, value_name = "SECS", default_value = "5", value_parser = DurationParser::secs())]
        grace: Duration,
    },
    /// Kill the service with SIGKILL, as a crash would (fault injection).
    Kill,
    /// Make the running release's /health fail (creates its FAIL_HEALTH marker).
    FailHealth {
        /// Release to mark (default: the running one, else current).
        #[arg(long)]
        release: Option<String>,
    },
    /// Print the state as key=value lines (or one field's value).
    Status {
        /// Print only this field (run_dir, port, current, previous, running, pid, running_release,
        /// running_exe_release).
        #[arg(long)]
        field: Option<String>,
    },
    /// GET /health; exit 0 when it answers 200 (with the expected version), else 1.
    Health {
        /// The version /health must report.
        #[arg(long, value_name = "V")]
        expect_version: Option<String>,
        /// Retry until this many seconds have passed (0: one attempt).
        #[arg(long, value_name = "SECS", default_value = "0", value_parser = DurationParser::secs())]
        timeout: Duration,
    },
}

const START_WAIT: Duration = Duration::from_secs(10);

/// Run one action.
pub fn run(cli: Cli) -> Result<Exit> {
    signals::install()?;
    let rd = RunDir::new(&cli.run_dir)?;
    match cli.action {
        Action::Status { field } => status(&rd, field.as_deref()),
        Action::Health {
            expect_version,
            timeout,
        } => health(&rd, expect_version.as_deref(), timeout),
        action => {
            std::fs::create_dir_all(rd.root())
                .map_err(|e| EvidenceError::io("cannot create folder", rd.root(), e))?;
            let _lock = LockFile::acquire(&rd.lock_path(), "svc-ctl command on this run folder")?;
            mutate(&rd, action)
        }
    }
}

fn mutate(rd: &RunDir, action: Action) -> Result<Exit> {
    match action {
        Action::Deploy {
            release,
            fail_health,
            binary,
            port,
            wait_healthy,
        } => {
            svc::check_version(&release)?;
            let wait = wait_healthy;
            let bin = binary.unwrap_or_else(|| svc::sibling_binary(svc::BINARY));
            let prev = rd.deploy(&release, &bin, fail_health, port, START_WAIT)?;
            info(&format!(
                "deployed {release}{} (previous: {}), listening on port {}",
                if fail_health {
                    " (marked to fail health)"
                } else {
                    ""
                },
                prev.as_deref().unwrap_or("none"),
                rd.port()?.unwrap_or(0)
            ));
            match wait {
                Some(w) => health(rd, Some(&release), w),
                None => Ok(Exit::Pass),
            }
        }
        Action::Rollback { wait_healthy } => {
            let wait = wait_healthy;
            let (from, to) = rd.rollback(START_WAIT)?;
            info(&format!(
                "rolled back from {} to {to}",
                from.as_deref().unwrap_or("none")
            ));
            match wait {
                Some(w) => health(rd, Some(&to), w),
                None => Ok(Exit::Pass),
            }
        }
        Action::Start => {
            if let Some(r) = rd.supervisor().running()? {
                info(&format!("already running: {} (pid {})", r.tag, r.pid));
            } else {
                let r = rd.start_current(START_WAIT)?;
                info(&format!("started {} (pid {})", r.tag, r.pid));
            }
            Ok(Exit::Pass)
        }
        Action::Stop { grace } => {
            let how = rd.stop(grace)?;
            info(match how {
                Stopped::NotRunning => "not running",
                Stopped::Terminated => "stopped (SIGTERM)",
                Stopped::Killed => "stopped (SIGKILL after the grace period)",
            });
            Ok(Exit::Pass)
        }
        Action::Kill => {
            match rd.supervisor().kill()? {
                Some(pid) => info(&format!("killed pid {pid} with SIGKILL")),
                None => info("not running"),
            }
            Ok(Exit::Pass)
        }
        Action::FailHealth { release } => {
            let v = match release {
                Some(v) => v,
                None => rd
                    .supervisor()
                    .running()?
                    .map(|r| r.tag)
                    .or_else(|| rd.current())
                    .ok_or_else(|| EvidenceError::failed("no release is running or current"))?,
            };
            svc::check_version(&v)?;
            if !rd.release_dir(&v).is_dir() {
                return Err(EvidenceError::failed(format!(
                    "release {v} is not installed"
                )));
            }
            rd.set_fail_marker(&v, true)?;
            info(&format!("release {v} now fails its health check"));
            Ok(Exit::Pass)
        }
        Action::Status { .. } | Action::Health { .. } => Ok(Exit::Pass),
    }
}

fn status(rd: &RunDir, field: Option<&str>) -> Result<Exit> {
    let st = rd.status()?;
    let fields = st.fields();
    match field {
        Some(f) => {
            let v = fields
                .iter()
                .find(|(k, _)| *k == f)
                .ok_or_else(|| EvidenceError::usage(format!("unknown field {f:?}")))?;
            stdout_write(&format!("{}\n", v.1))?;
        }
        None => {
            let text: String = fields.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            stdout_write(&text)?;
        }
    }
    Ok(Exit::Pass)
}

fn health(rd: &RunDir, expect: Option<&str>, timeout: Duration) -> Result<Exit> {
    let url = rd.health_url()?;
    let check = Check::Http {
        http: url.clone(),
        expect_status: 200,
        body_contains: expect.map(|v| format!("\"version\":\"{v}\"")),
    };
    let opts = HealthOptions {
        deadline: timeout,
        interval: Duration::from_millis(50),
        attempt_timeout: Duration::from_secs(2),
        env: Vec::new(),
    };
    let o = wait_healthy(&check, &opts)?;
    let line = format!(
        "health {} {url} attempts={} duration={:.3}s: {}\n",
        if o.passed { "ok" } else { "FAILED" },
        o.attempts,
        o.duration.as_secs_f64(),
        o.last_detail
    );
    stdout_write(&line)?;
    Ok(Exit::pass_if(o.passed))
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
