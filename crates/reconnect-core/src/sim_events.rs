//! ctp-front-sim's JSONL event log as typed records: one object per line with `kind` and `ts_ns`
//! (epoch ns), written by the simulator and read by the cross-check, the tests and the benches.
//! Fields a reader does not need are ignored; an unknown `kind` or a missing field is an error.

use std::path::Path;

use evidence_core::Result;
use serde::{Deserialize, Serialize};

use crate::records::read_records;

/// One record of the simulator's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum SimEvent {
    /// `sim.ready`: listening (also the line printed on stdout).
    #[serde(rename = "sim.ready")]
    Ready {
        /// Epoch ns.
        ts_ns: i64,
        /// Trader front port.
        trader_port: u16,
        /// Market front port.
        market_port: u16,
    },
    /// `sim.state`: a front (or `both`) changed state (`up`, `down`, `bind_failed`, ...).
    #[serde(rename = "sim.state")]
    State {
        /// Epoch ns.
        ts_ns: i64,
        /// `trader`, `market` or `both`.
        front: String,
        /// The new state.
        state: String,
        /// What caused it (`start`, `control`, a signal, ...).
        cause: String,
    },
    /// `sim.accept`: a connection accepted.
    #[serde(rename = "sim.accept")]
    Accept {
        /// Epoch ns.
        ts_ns: i64,
        /// The front.
        front: String,
        /// Connection id.
        conn_id: u64,
    },
    /// `sim.auth`: an authentication answered.
    #[serde(rename = "sim.auth")]
    Auth {
        /// Epoch ns.
        ts_ns: i64,
        /// The front.
        front: String,
        /// Connection id.
        conn_id: u64,
        /// Accepted or not.
        accepted: bool,
    },
    /// `sim.login`: a login answered. `ts_ns` of an accepted login is when its `login_ok` was
    /// sent; `reply_ts_ns` is the `ts_ns` inside that reply (what the probe logs as
    /// `server_ts_ns`).
    #[serde(rename = "sim.login")]
    Login {
        /// Epoch ns.
        ts_ns: i64,
        /// The front.
        front: String,
        /// Connection id.
        conn_id: u64,
        /// Accepted or refused.
        accepted: bool,
        /// Why it was refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The `ts_ns` in the `login_ok` reply.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_ts_ns: Option<i64>,
    },
    /// `sim.close`: the simulator closed a connection.
    #[serde(rename = "sim.close")]
    Close {
        /// Epoch ns.
        ts_ns: i64,
        /// The front.
        front: String,
        /// Connection id.
        conn_id: u64,
        /// `front_down`, `logout`, `eof`, ...
        reason: String,
        /// The session had logged in.
        logged_in: bool,
    },
    /// `sim.control`: a control command received.
    #[serde(rename = "sim.control")]
    Control {
        /// Epoch ns.
        ts_ns: i64,
        /// The command.
        cmd: serde_json::Value,
    },
    /// `sim.stop`: the simulator stops.
    #[serde(rename = "sim.stop")]
    Stop {
        /// Epoch ns.
        ts_ns: i64,
        /// Why.
        cause: String,
    },
}

impl SimEvent {
    /// The record's time (epoch ns).
    #[must_use]
    pub fn ts_ns(&self) -> i64 {
        match self {
            SimEvent::Ready { ts_ns, .. }
            | SimEvent::State { ts_ns, .. }
            | SimEvent::Accept { ts_ns, .. }
            | SimEvent::Auth { ts_ns, .. }
            | SimEvent::Login { ts_ns, .. }
            | SimEvent::Close { ts_ns, .. }
            | SimEvent::Control { ts_ns, .. }
            | SimEvent::Stop { ts_ns, .. } => *ts_ns,
        }
    }
}

/// Every complete record of a simulator event log (a missing file is an empty log).
///
/// # Errors
/// `Io`, or `Parse` naming `file:line` and the field of a bad record.
pub fn read_sim_events(path: &Path) -> Result<Vec<SimEvent>> {
    Ok(read_records(path, true)?
        .into_iter()
        .map(|(_, e)| e)
        .collect())
}
