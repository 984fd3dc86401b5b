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
