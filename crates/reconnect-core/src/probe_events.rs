//! ctp-probe's JSONL event log (`--events-file`) as typed records: one object per line with
//! `kind` and `ts_ns` (epoch ns). Fields a reader does not need are ignored; an unknown `kind` or
//! a missing field is an error naming `file:line`.

use std::path::Path;

use evidence_core::Result;
use serde::{Deserialize, Serialize};

use crate::records::read_records;

/// One record of the probe's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum ProbeEvent {
    /// `probe.start`.
    #[serde(rename = "probe.start")]
    Start {
        /// Epoch ns.
        ts_ns: i64,
    },
    /// `probe.attempt`: a connection attempt to a front.
    #[serde(rename = "probe.attempt")]
    Attempt {
        /// Epoch ns.
        ts_ns: i64,
        /// `trader` or `market`.
        front: String,
        /// Attempt number since the last loss (1-based).
        attempt: u64,
        /// The backoff waited before it (ms).
        backoff_ms: u64,
    },
    /// `probe.exhausted`: `reconnect_max_attempts` reached.
    #[serde(rename = "probe.exhausted")]
    Exhausted {
        /// Epoch ns.
        ts_ns: i64,
        /// The front.
        front: String,
    },
    /// `probe.connect`: TCP connected to a front.
    #[serde(rename = "probe.connect")]
    Connect {
        /// Epoch ns.
        ts_ns: i64,
        /// The front.
        front: String,
    },
    /// `probe.login`: logged in; `server_ts_ns` is the `ts_ns` of the front's `login_ok`.
    #[serde(rename = "probe.login")]
    Login {
        /// Epoch ns.
        ts_ns: i64,
        /// The front.
        front: String,
        /// The `ts_ns` in the front's reply.
        #[serde(default)]
        server_ts_ns: Option<i64>,
    },
    /// `probe.disconnect`: a session or an attempt ended.
    #[serde(rename = "probe.disconnect")]
    Disconnect {
        /// Epoch ns.
        ts_ns: i64,
        /// The front.
        front: String,
        /// `eof`, `connect_refused`, `heartbeat_timeout`, ...
        reason: String,
        /// `session` or `attempt`.
        during: String,
    },
    /// `probe.state`: the aggregate state changed (the same moment as the `[health]` line).
    #[serde(rename = "probe.state")]
    State {
        /// Epoch ns.
        ts_ns: i64,
        /// `healthy` or `unhealthy`.
        state: String,
    },
    /// `probe.stop`.
    #[serde(rename = "probe.stop")]
    Stop {
        /// Epoch ns.
        ts_ns: i64,
        /// `SIGTERM`, `monitor_seconds`, ...
        cause: String,
    },
}

impl ProbeEvent {
    /// The record's time (epoch ns).
    #[must_use]
    pub fn ts_ns(&self) -> i64 {
        match self {
            ProbeEvent::Start { ts_ns }
            | ProbeEvent::Attempt { ts_ns, .. }
            | ProbeEvent::Exhausted { ts_ns, .. }
            | ProbeEvent::Connect { ts_ns, .. }
            | ProbeEvent::Login { ts_ns, .. }
            | ProbeEvent::Disconnect { ts_ns, .. }
            | ProbeEvent::State { ts_ns, .. }
            | ProbeEvent::Stop { ts_ns, .. } => *ts_ns,
        }
    }
}

/// Every complete record of a probe event log (a missing file is an empty log).
///
/// # Errors
/// `Io`, or `Parse` naming `file:line` and the field of a bad record.
pub fn read_probe_events(path: &Path) -> Result<Vec<ProbeEvent>> {
    Ok(read_records(path, true)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}
