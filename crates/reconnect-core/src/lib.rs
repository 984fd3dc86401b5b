//! reconnect-core: what the reconnect tools (SOP 2/3) share.
//!
//! - [`fault_event`]: the original's fault-event JSONL (contracts §1.4), read and written exactly;
//! - [`probe_log`]: the original's `[health]` probe line (§1.5);
//! - [`spec`] and [`control`]: fault-proxy's fault specs and control protocol (types and client),
//!   so that fault-inject talks to the proxy without depending on it;
//! - [`sim_proto`] and [`sim_events`]: ctp-front-sim's wire protocol and event log;
//! - [`probe_events`]: ctp-probe's event log;
//! - [`records`]: those event logs read as typed records (errors with `file:line`);
//! - [`crosscheck`]: the probe's figures against the simulator's log;
//! - [`recovery`]: the one recovery rule of slo-report and reconnect-evidence.
#![warn(missing_docs)]

pub mod control;
pub mod crosscheck;
pub mod fault_event;
pub mod probe_events;
pub mod probe_log;
pub mod records;
pub mod recovery;
pub mod sim_events;
pub mod sim_proto;
pub mod spec;
