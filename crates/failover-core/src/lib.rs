//! failover-core: the SOP 8 domain shared by `multihost`, `failover-orchestrator` and
//! `failover-verify`.
//!
//! - [`evidence`]: `failover_result.env`, the original's keys in order plus what we measure;
//! - [`inventory`]: the hosts, their addresses, roles and command prefixes;
//! - [`netns`]: hosts as network namespaces on a bridge, partitions inside them, host crashes.
#![warn(missing_docs)]

pub mod evidence;
pub mod inventory;
pub mod netns;
