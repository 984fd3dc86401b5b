//! One measured step: what ran, how it ended, how long it took. Every engine, image and project
//! operation returns one or more [`Step`]s, ready to be written as a `STEP_n_*` quartet
//! (`STEP_n_NAME`, `STEP_n_STATUS`, `STEP_n_DURATION_MS`, `STEP_n_COMMAND`) by the tool that owns
//! the evidence file.

use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

use evidence_core::Result;
use evidence_core::process::{RunOptions, StepOutcome, run_command, shell_quote};
use evidence_core::time::now_ns;

/// A measured step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Step name (`compose_up`, `wait_healthy`, `compose_down`, `image_build_redis`, ...).
    pub name: String,
    /// The command as argv, for display only (never run through a shell). Secrets are never in
    /// argv: they travel in the env file or the environment.
    pub argv: Vec<String>,
    /// Exit code of the command (`None` when it was killed by a signal or timed out, and for
    /// steps that run no command, such as `wait_healthy`, whose result is in `ok`).
    pub exit_code: Option<i32>,
    /// True when the step did what it should (exit 0 in time; for waits, the condition met).
    pub ok: bool,
    /// Wall-clock epoch ns at the start.
    pub started_ns: i64,
    /// Monotonic duration.
    pub duration: Duration,
    /// A one-line description of how it ended (`exit 0`, `exit 1`, `timed out after 5.000s`,
    /// `2 of 7 services not healthy: ...`).
    pub detail: String,
    /// The end of the command's stdout (bounded). Emptied by the steps whose output holds
    /// secrets (`compose_ps`'s `docker inspect`, `service_labels`' `compose config`); never write
    /// it into evidence unfiltered.
    pub stdout: String,
    /// The end of the command's stderr (bounded).
    pub stderr: String,
}

impl Step {
    /// `ok` or `failed`: the original's `STEP_n_STATUS` values for an executed step.
    #[must_use]
    pub fn status(&self) -> &'static str {
        if self.ok { "ok" } else { "failed" }
    }

    /// The command as one display line, each word shell-quoted (for `STEP_n_COMMAND`).
    #[must_use]
    pub fn command_line(&self) -> String {
        self.argv
            .iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Duration in whole milliseconds (for `STEP_n_DURATION_MS`).
    #[must_use]
    pub fn duration_ms(&self) -> u128 {
        self.duration.as_millis()
    }

    /// A step that ran no command (a wait, a probe): `argv` describes it.
    #[must_use]
    pub fn internal(name: &str, argv: Vec<String>, start: Instant, started_ns: i64) -> Step {
        Step {
            name: name.to_string(),
            argv,
            exit_code: None,
            ok: false,
            started_ns,
            duration: start.elapsed(),
            detail: String::new(),
            stdout: String::new(),
            stderr: String::new(),
        }
    }

    /// An error message naming the step, its command, how it ended and the end of its stderr.
    #[must_use]
    pub fn failure_message(&self) -> String {
        let err = self.stderr.trim();
        let err = if err.is_empty() {
            self.stdout.trim()
        } else {
            err
        };
        let tail: String = {
            let lines: Vec<&str> = err.lines().collect();
            let from = lines.len().saturating_sub(8);
            lines[from..].join("\n")
        };
        if tail.is_empty() {
            format!(
                "{} failed ({}): {}",
                self.name,
                self.detail,
                self.command_line()
            )
        } else {
            format!(
                "{} failed ({}): {}\n{tail}",
                self.name,
                self.detail,
                self.command_line()
            )
        }
    }
}

/// Run `program args...` (no shell) with `env` added, under `timeout`, and measure it as step
/// `name`. Errors only when the program cannot be started at all is reported as a failed step too
/// (exit code `None`, detail `cannot start ...`), so a missing `docker` is a failed step, not a
/// crash.
pub(crate) fn run_step(
    name: &str,
    program: &OsString,
    args: &[OsString],
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Step> {
    let mut argv = vec![program.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|a| a.to_string_lossy().into_owned()));
    let mut cmd = Command::new(program);
    cmd.args(args);
    let opts = RunOptions {
        timeout,
        kill_grace: Duration::from_secs(5),
        capture_limit: 256 * 1024,
        env: env.to_vec(),
        cwd: None,
    };
    let started_ns = now_ns();
    let start = Instant::now();
    match run_command(cmd, &opts) {
        Ok(o) => Ok(from_outcome(name, argv, &o)),
        Err(evidence_core::EvidenceError::Interrupted) => {
            Err(evidence_core::EvidenceError::Interrupted)
        }
        Err(e) => Ok(Step {
            name: name.to_string(),
            argv,
            exit_code: None,
            ok: false,
            started_ns,
            duration: start.elapsed(),
            detail: e.to_string(),
            stdout: String::new(),
            stderr: String::new(),
        }),
    }
}

fn from_outcome(name: &str, argv: Vec<String>, o: &StepOutcome) -> Step {
    Step {
        name: name.to_string(),
        argv,
        exit_code: if o.timed_out || o.interrupted {
            None
        } else {
            o.exit_code
        },
        ok: o.success(),
        started_ns: o.started_ns,
        duration: o.duration,
        detail: o.describe(),
        stdout: o.stdout_tail.clone(),
        stderr: o.stderr_tail.clone(),
    }
}
