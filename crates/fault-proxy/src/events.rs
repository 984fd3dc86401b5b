//! The event log: one JSON line per ready/apply/clear/expiry/stop, with `ts_ns`, appended and
//! flushed as it happens. It is the ground truth of when a fault really took effect.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use evidence_core::{EvidenceError, Result};
use reconnect_core::spec::Fault;

/// A listen → upstream pair as announced in `proxy.ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairAddr {
    /// Pair name.
    pub name: String,
    /// The address really bound (the port 0 resolved).
    pub listen: String,
    /// The upstream as given.
    pub upstream: String,
}

/// Why a fault went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClearReason {
    /// A `clear` request.
    Clear,
    /// A `reset` request (clear everything).
    Reset,
    /// Its `ttl_ms` ran out (the dead-man).
    Expired,
    /// The proxy stopped.
    Shutdown,
}

/// Every record of the event log (and the `proxy.ready` line on stdout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Event {
    /// The listeners and the control socket are up.
    #[serde(rename = "proxy.ready")]
    Ready {
        /// When.
        ts_ns: i64,
        /// The pairs, with the real listen addresses.
        pairs: Vec<PairAddr>,
        /// The control socket path.
        control: String,
        /// The proxy's process id.
        pid: u32,
    },
    /// A fault took effect at `ts_ns`.
    #[serde(rename = "proxy.fault_applied")]
    Applied {
        /// When it took effect (after the resets of a `reset` fault were sent).
        ts_ns: i64,
        /// Fault id.
        id: u64,
        /// Pair name.
        pair: String,
        /// The drill id it belongs to.
        tag: String,
        /// The fault.
        fault: Fault,
        /// Dead-man time to live, if any.
        ttl_ms: Option<u64>,
        /// When the dead-man removes it, if any.
        expires_ts_ns: Option<i64>,
        /// Connections aborted with RST by a `reset` fault (0 for the others).
        reset_connections: u64,
    },
    /// A fault's dead-man expiry was pushed to `expires_ts_ns` by a `renew`.
    #[serde(rename = "proxy.fault_renewed")]
    Renewed {
        /// When.
        ts_ns: i64,
        /// Fault id.
        id: u64,
        /// Pair name.
        pair: String,
        /// The drill id.
        tag: String,
        /// The new time to live, from `ts_ns`.
        ttl_ms: u64,
        /// When the dead-man now removes it.
        expires_ts_ns: i64,
    },
    /// A fault stopped acting at `ts_ns`.
    #[serde(rename = "proxy.fault_cleared")]
    Cleared {
        /// When it was removed.
        ts_ns: i64,
        /// Fault id.
        id: u64,
        /// Pair name.
        pair: String,
        /// The drill id it belonged to.
        tag: String,
        /// The fault.
        fault: Fault,
        /// `clear`, `reset`, `expired` or `shutdown`.
        reason: ClearReason,
        /// When it had taken effect.
        applied_ts_ns: i64,
    },
    /// The proxy stopped (listeners closed) at `ts_ns`.
    #[serde(rename = "proxy.stopped")]
    Stopped {
        /// When.
        ts_ns: i64,
        /// `SIGINT`, `SIGTERM`, or `none` when stopped by its owner.
        signal: String,
    },
}

/// An append-only JSONL file; each record is written with one `write` and flushed.
#[derive(Debug)]
pub struct EventLog {
    file: Mutex<File>,
    path: PathBuf,
}

impl EventLog {
    /// Open `path` for appending, creating it and its folder.
    ///
    /// # Errors
    /// `Io` naming the path.
    pub fn open(path: &Path) -> Result<EventLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| EvidenceError::io("cannot create folder for", path, e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| EvidenceError::io("cannot open event log", path, e))?;
        Ok(EventLog {
            file: Mutex::new(file),
            path: path.to_path_buf(),
        })
    }

    /// Append one record. A write failure is reported on stderr, not fatal: the proxy keeps
    /// forwarding.
    pub fn write(&self, ev: &Event) {
        let mut line = match serde_json::to_vec(ev) {
            Ok(v) => v,
            Err(e) => {
                evidence_core::cli::warn(&format!("cannot encode event: {e}"));
                return;
            }
        };
        line.push(b'\n');
        let mut f = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(e) = f.write_all(&line).and_then(|()| f.flush()) {
            evidence_core::cli::warn(&format!(
                "cannot append to event log {}: {e}",
                self.path.display()
            ));
        }
    }
}
