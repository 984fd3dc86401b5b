//! failover-core: the SOP 8 domain shared by `multihost`, `failover-orchestrator` and
//! `failover-verify`.
//!
//! - [`evidence`]: `failover_result.env`, the original's keys in order plus what we measure;
#![warn(missing_docs)]

pub mod evidence;
