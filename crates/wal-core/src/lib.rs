//! wal-core: the platform's WAL line format, the recovery rules and the replay summary, shared by
//! `wal-writer`, `wal-replay` and `wal-drill`.
//!
//! - [`mod@line`]: the WAL line (read borrowed, written in the engine's key order) and the `wal.ack`
//!   record;
//! - [`replay`]: the streaming replayer (recovery state machine, seq checks, positions) and its
//!   summary.
#![warn(missing_docs)]

pub mod line;
pub mod replay;

pub use line::{Ack, RawEvent, Status, WalLine};
pub use replay::{ReplayOptions, ReplaySummary, Replayer, scan_lines};

/// When `wal-writer` counts an event as durable (its `--durability`, passed on by `wal-drill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// fdatasync after every event.
    Fsync,
    /// fdatasync every `--batch-events` events or `--batch-ms` ms.
    Batch,
    /// A user-space buffer written when full, never synced.
    None,
}

impl Durability {
    /// The flag value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Durability::Fsync => "fsync",
            Durability::Batch => "batch",
            Durability::None => "none",
        }
    }
}

/// The keys of `wal_recovery_result.env` that the original contract requires, in its order (the
/// order wal-drill writes them and wal-verify checks them).
pub const EVIDENCE_KEYS: [&str; 10] = [
    "drill_id",
    "release_version",
    "wal_path",
    "failure_start_utc",
    "recovery_complete_utc",
    "rto_seconds",
    "rpo_events",
    "operator",
    "result",
    "notes",
];
