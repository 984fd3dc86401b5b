//! `failover_result.env`: the original's keys in its order (`FAILOVER_ENV` .. `DATA_SYNC_LAG_EVENTS`,
//! then the `STEP_n_NAME/STATUS/DURATION_MS/COMMAND` quartets), then what the drill measured, then
//! provenance (upper case). See docs/formats.md.
//!
//! Unlike the original, `FAILOVER_DURATION_SECONDS` is the client-visible write outage (the larger
//! of the two stores', from the last acknowledged write before the fault to the first acknowledged
//! write on the new primary, in seconds with millisecond precision), and `DATA_SYNC_LAG_EVENTS` is
//! the number of acknowledged sequence numbers missing on the new primaries, counted by the drill.

use evidence_core::dotenv::EnvWriter;
use evidence_core::provenance::{KeyCase, Provenance};
use evidence_core::time::format_utc;

/// The steps, in the original's fixed order.
pub const STEP_NAMES: [&str; 5] = [
    "precheck",
    "backup_sync_check",
    "demote_primary",
    "promote_standby",
    "verify",
];

/// The original's head keys (all required; only `FAILOVER_FAILED_STEP` may be empty).
pub const HEAD_KEYS: [&str; 7] = [
    "FAILOVER_ENV",
    "FAILOVER_DRY_RUN",
    "FAILOVER_SUCCESS",
    "FAILOVER_TOTAL_STEPS",
    "FAILOVER_FAILED_STEP",
    "FAILOVER_DURATION_SECONDS",
    "DATA_SYNC_LAG_EVENTS",
];

/// `FAILOVER_DURATION_SOURCE` of a measured client-visible outage.
pub const DURATION_MEASURED: &str = "client_outage";
/// `DATA_SYNC_LAG_SOURCE` of a lag counted by sequence numbers.
pub const LAG_MEASURED: &str = "sequence";

/// Status of a step, as the original spells it (`ok`, `simulated_ok`, `failed`): the rollout's.
pub use deploy_core::rollout::StepStatus;

/// One step as recorded.
#[derive(Debug, Clone)]
pub struct StepRecord {
    /// Step name (one of [`STEP_NAMES`]).
    pub name: String,
    /// Status.
    pub status: StepStatus,
    /// Monotonic duration in ms.
    pub duration_ms: u128,
    /// The command run, or a description of the built-in action.
    pub command: String,
    /// Wall-clock start, epoch ns.
    pub started_ns: i64,
    /// What was found (roles, offsets, errors).
    pub detail: String,
}

/// What the drill measured for one store (Redis or PostgreSQL).
#[derive(Debug, Clone, Default)]
pub struct StoreFigures {
    /// `host:port` of the primary before.
    pub old_primary: String,
    /// `host:port` of the primary after (as the servers/sentinels say).
    pub new_primary: String,
    /// The new primary's role, read from the server (`master` for Redis, `primary` for PostgreSQL).
    pub new_primary_role: String,
    /// Client-visible write outage, seconds (last ack before the fault to first ack after).
    pub outage_seconds: Option<f64>,
    /// Acknowledged writes during the drill.
    pub acked: u64,
    /// Acknowledged writes that also met the replicated condition.
    pub acked_replicated: u64,
    /// Acknowledged sequence numbers missing on the new primary.
    pub lost_acked: u64,
    /// Of those, ones acknowledged as replicated.
    pub lost_replicated: u64,
    /// Writes acknowledged by the old primary after fencing began and missing afterwards.
    pub split_brain: u64,
    /// Writes that failed or timed out for the client but are present afterwards.
    pub in_doubt: u64,
    /// Lag before the fault (sequence numbers acknowledged on the primary but not yet on the standby).
    pub lag_before_events: Option<u64>,
    /// Last acknowledged write before the fault, epoch ns.
    pub last_ack_before_ns: Option<i64>,
    /// First acknowledged write on the new primary, epoch ns.
    pub first_ack_after_ns: Option<i64>,
}

/// Everything `failover_result.env` holds.
#[derive(Debug, Clone)]
pub struct FailoverEvidence {
    /// `FAILOVER_ENV`.
    pub env: String,
    /// `FAILOVER_DRY_RUN`.
    pub dry_run: bool,
    /// `FAILOVER_SUCCESS`.
    pub success: bool,
    /// `FAILOVER_FAILED_STEP`.
    pub failed_step: String,
    /// `FAILOVER_DURATION_SECONDS` (None: not measured, written as `unmeasured`).
    pub duration_seconds: Option<f64>,
    /// `FAILOVER_DURATION_SOURCE`: `client_outage`, `step_sum`, `dry_run`.
    pub duration_source: String,
    /// `DATA_SYNC_LAG_EVENTS` (None: not measured, written as `unmeasured`).
    pub lag_events: Option<u64>,
    /// `DATA_SYNC_LAG_SOURCE`: `sequence`, `unmeasured`, `dry_run`.
    pub lag_source: String,
    /// Steps in order.
    pub steps: Vec<StepRecord>,
    /// `planned`, `unplanned`, `partition`, `commands`.
    pub mode: String,
    /// Fencing on.
    pub fencing: bool,
    /// `local` or `replicated`.
    pub ack_mode: String,
    /// The old primary was unfenced and serves again after a failed promotion.
    pub compensated: bool,
    /// `success`, `failed`, `compensated`, `interrupted`, `dry_run`.
    pub result: String,
    /// Why it failed (empty on success).
    pub failure_reason: String,
    /// Redis figures.
    pub redis: Option<StoreFigures>,
    /// PostgreSQL figures.
    pub pg: Option<StoreFigures>,
    /// PostgreSQL: seconds from the promote decision to the standby leaving recovery.
    pub pg_promotion_seconds: Option<f64>,
    /// The session guard's verdict (`not_applicable`, `outside_session`, `forced`; empty: dry run).
    pub session_guard: String,
    /// Provenance.
    pub provenance: Provenance,
}

fn opt_f(v: Option<f64>) -> String {
    v.map_or_else(|| "unmeasured".to_string(), |s| format!("{s:.3}"))
}

impl FailoverEvidence {
    /// Total split-brain writes over both stores.
    #[must_use]
    pub fn split_brain(&self) -> u64 {
        self.redis.as_ref().map_or(0, |s| s.split_brain)
            + self.pg.as_ref().map_or(0, |s| s.split_brain)
    }

    /// Render in contract order.
    #[must_use]
    pub fn render(&self) -> String {
        let mut w = EnvWriter::new();
        w.push("FAILOVER_ENV", &self.env)
            .push("FAILOVER_DRY_RUN", if self.dry_run { "1" } else { "0" })
            .push("FAILOVER_SUCCESS", self.success)
            .push("FAILOVER_TOTAL_STEPS", self.steps.len())
            .push("FAILOVER_FAILED_STEP", &self.failed_step)
            .push("FAILOVER_DURATION_SECONDS", opt_f(self.duration_seconds))
            .push(
                "DATA_SYNC_LAG_EVENTS",
                self.lag_events
                    .map_or_else(|| "unmeasured".to_string(), |n| n.to_string()),
            );
        for (i, s) in self.steps.iter().enumerate() {
            let n = i + 1;
            w.push(format!("STEP_{n}_NAME"), &s.name)
                .push(format!("STEP_{n}_STATUS"), s.status.as_str())
                .push(format!("STEP_{n}_DURATION_MS"), s.duration_ms)
                .push(format!("STEP_{n}_COMMAND"), &s.command);
        }
        w.push("FAILOVER_RESULT", &self.result)
            .push("FAILOVER_MODE", &self.mode)
            .push("FAILOVER_FENCING", self.fencing)
            .push("FAILOVER_ACK_MODE", &self.ack_mode)
            .push("FAILOVER_COMPENSATED", self.compensated)
            .push("FAILOVER_FAILURE_REASON", &self.failure_reason)
            .push("FAILOVER_SESSION_GUARD", &self.session_guard)
            .push("FAILOVER_DURATION_SOURCE", &self.duration_source)
            .push("DATA_SYNC_LAG_SOURCE", &self.lag_source)
            .push(
                "SPLIT_BRAIN_WRITES",
                if self.lag_source == LAG_MEASURED {
                    self.split_brain().to_string()
                } else {
                    "unmeasured".to_string()
                },
            )
            .push(
                "IN_DOUBT_WRITES",
                if self.lag_source == LAG_MEASURED {
                    (self.redis.as_ref().map_or(0, |s| s.in_doubt)
                        + self.pg.as_ref().map_or(0, |s| s.in_doubt))
                    .to_string()
                } else {
                    "unmeasured".to_string()
                },
            )
            .push(
                "PG_PROMOTION_SECONDS",
                self.pg_promotion_seconds
                    .map(|s| format!("{s:.3}"))
                    .unwrap_or_default(),
            );
        for (prefix, fig) in [("REDIS", &self.redis), ("PG", &self.pg)] {
            let Some(f) = fig else { continue };
            w.push(format!("{prefix}_OLD_PRIMARY"), &f.old_primary)
                .push(format!("{prefix}_NEW_PRIMARY"), &f.new_primary)
                .push(format!("{prefix}_NEW_PRIMARY_ROLE"), &f.new_primary_role)
                .push(format!("{prefix}_OUTAGE_SECONDS"), opt_f(f.outage_seconds))
                .push(format!("{prefix}_ACKED"), f.acked)
                .push(format!("{prefix}_ACKED_REPLICATED"), f.acked_replicated)
                .push(format!("{prefix}_LOST_ACKED"), f.lost_acked)
                .push(format!("{prefix}_LOST_REPLICATED"), f.lost_replicated)
                .push(format!("{prefix}_SPLIT_BRAIN"), f.split_brain)
                .push(format!("{prefix}_IN_DOUBT"), f.in_doubt)
                .push(
                    format!("{prefix}_LAG_BEFORE_EVENTS"),
                    f.lag_before_events
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                )
                .push(
                    format!("{prefix}_LAST_ACK_BEFORE_UTC"),
                    f.last_ack_before_ns.map(format_utc).unwrap_or_default(),
                )
                .push(
                    format!("{prefix}_FIRST_ACK_AFTER_UTC"),
                    f.first_ack_after_ns.map(format_utc).unwrap_or_default(),
                );
        }
        for (i, s) in self.steps.iter().enumerate() {
            let n = i + 1;
            w.push(format!("STEP_{n}_STARTED_UTC"), format_utc(s.started_ns))
                .push(format!("STEP_{n}_DETAIL"), &s.detail);
        }
        w.extend(self.provenance.env_pairs(KeyCase::Upper));
        w.render()
    }
}
