//! `rollout_result.env`: the original's keys in order, then our measured extras, then provenance
//! (upper case). See docs/formats.md.

use evidence_core::dotenv::EnvWriter;
use evidence_core::provenance::{KeyCase, Provenance};
use evidence_core::time::format_utc;

/// Status of a step, as the original spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepStatus {
    /// Ran and succeeded.
    Ok,
    /// Not run (dry run).
    SimulatedOk,
    /// Ran and failed (non-zero exit, timeout, failed health check, interrupted).
    Failed,
}

impl StepStatus {
    /// `ok`, `simulated_ok`, `failed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Ok => "ok",
            StepStatus::SimulatedOk => "simulated_ok",
            StepStatus::Failed => "failed",
        }
    }
}

/// One step as recorded.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Step name.
    pub name: String,
    /// Status.
    pub status: StepStatus,
    /// Monotonic duration in ms (truncated, as the original).
    pub duration_ms: u128,
    /// The command (or the gate's checks).
    pub command: String,
    /// Wall-clock start, epoch ns.
    pub started_ns: i64,
    /// Exit code of the command, when it exited.
    pub exit_code: Option<i32>,
    /// `exit 0`, `timed out after 1.0s`, `health: ...`.
    pub detail: String,
    /// The step's timeout in seconds.
    pub timeout_seconds: f64,
    /// Health-check attempts made after the command (0 when none).
    pub health_attempts: u32,
    /// The end of the output (kept for failed steps).
    pub output_tail: String,
}

/// Everything `rollout_result.env` holds.
#[derive(Debug, Clone)]
pub struct RolloutEvidence {
    /// `ROLLOUT_ENV`.
    pub env: String,
    /// `ROLLOUT_DRY_RUN`.
    pub dry_run: bool,
    /// `ROLLOUT_SUCCESS`.
    pub success: bool,
    /// `ROLLOUT_FAILED_STEP` (empty when none).
    pub failed_step: String,
    /// The steps that ran, in order.
    pub steps: Vec<StepRecord>,
    /// `success`, `failed`, `interrupted`, `dry_run`.
    pub result: String,
    /// Stopped by SIGINT/SIGTERM.
    pub interrupted: bool,
    /// `flat` or `rich`.
    pub config_form: String,
    /// `deploy_target` of the config.
    pub deploy_target: String,
    /// `--inject-fault` given.
    pub inject_fault: bool,
    /// Release running before (from `release_cmd`; `unknown` without it).
    pub release_before: String,
    /// Release running after.
    pub release_after: String,
    /// Whether the rollback step ran.
    pub rollback_ran: bool,
    /// From the start of rollback until verify passed (monotonic), when both happened.
    pub rollback_seconds: Option<f64>,
    /// Failure reason (empty on success).
    pub failure_reason: String,
    /// The drill id.
    pub drill_id: String,
    /// `command` or `none` (`--no-release-check`).
    pub release_check: String,
    /// `not_applicable`, `outside_session`, `forced`, `not_checked`.
    pub session_guard: String,
    /// The guard's one-line reason.
    pub session_guard_reason: String,
    /// Provenance.
    pub provenance: Provenance,
}

/// The five original head keys.
pub const HEAD_KEYS: [&str; 5] = [
    "ROLLOUT_ENV",
    "ROLLOUT_DRY_RUN",
    "ROLLOUT_SUCCESS",
    "ROLLOUT_TOTAL_STEPS",
    "ROLLOUT_FAILED_STEP",
];

impl RolloutEvidence {
    /// Render in contract order.
    #[must_use]
    pub fn render(&self) -> String {
        let mut w = EnvWriter::new();
        w.push("ROLLOUT_ENV", &self.env)
            .push("ROLLOUT_DRY_RUN", if self.dry_run { "1" } else { "0" })
            .push("ROLLOUT_SUCCESS", self.success)
            .push("ROLLOUT_TOTAL_STEPS", self.steps.len())
            .push("ROLLOUT_FAILED_STEP", &self.failed_step);
        for (i, s) in self.steps.iter().enumerate() {
            let n = i + 1;
            w.push(format!("STEP_{n}_NAME"), &s.name)
                .push(format!("STEP_{n}_STATUS"), s.status.as_str())
                .push(format!("STEP_{n}_DURATION_MS"), s.duration_ms)
                .push(format!("STEP_{n}_COMMAND"), &s.command);
        }
        let failed_tail = self
            .steps
            .iter()
            .find(|s| s.status == StepStatus::Failed)
            .map(|s| s.output_tail.clone())
            .unwrap_or_default();
        w.push("ROLLOUT_RESULT", &self.result)
            .push("ROLLOUT_INTERRUPTED", self.interrupted)
            .push("ROLLOUT_CONFIG_FORM", &self.config_form)
            .push("ROLLOUT_DEPLOY_TARGET", &self.deploy_target)
            .push("ROLLOUT_INJECT_FAULT", self.inject_fault)
            .push("ROLLOUT_RELEASE_BEFORE", &self.release_before)
            .push("ROLLOUT_RELEASE_AFTER", &self.release_after)
            .push("ROLLOUT_ROLLBACK_RAN", self.rollback_ran)
            .push(
                "ROLLOUT_ROLLBACK_SECONDS",
                self.rollback_seconds
                    .map(|s| format!("{s:.6}"))
                    .unwrap_or_default(),
            )
            .push("ROLLOUT_FAILURE_REASON", &self.failure_reason)
            .push("ROLLOUT_FAILED_OUTPUT_TAIL", failed_tail)
            .push("ROLLOUT_DRILL_ID", &self.drill_id)
            .push("ROLLOUT_RELEASE_CHECK", &self.release_check)
            .push("ROLLOUT_SESSION_GUARD", &self.session_guard)
            .push("ROLLOUT_SESSION_GUARD_REASON", &self.session_guard_reason);
        for (i, s) in self.steps.iter().enumerate() {
            let n = i + 1;
            w.push(format!("STEP_{n}_STARTED_UTC"), format_utc(s.started_ns))
                .push(
                    format!("STEP_{n}_EXIT_CODE"),
                    s.exit_code.map(|c| c.to_string()).unwrap_or_default(),
                )
                .push(format!("STEP_{n}_DETAIL"), &s.detail)
                .push(
                    format!("STEP_{n}_TIMEOUT_SECONDS"),
                    format!("{:.3}", s.timeout_seconds),
                )
                .push(format!("STEP_{n}_HEALTH_ATTEMPTS"), s.health_attempts);
        }
        w.extend(self.provenance.env_pairs(KeyCase::Upper));
        w.render()
    }
}
