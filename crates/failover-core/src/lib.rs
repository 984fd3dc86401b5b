//! failover-core: the SOP 8 domain shared by `multihost`, `failover-orchestrator` and
//! `failover-verify`.
//!
//! - [`envconfig`]: the failover env-config (the original's keys, `inventory`);
//! - [`evidence`]: `failover_result.env`, the original's keys in order plus what we measure;
//! - [`inventory`]: the hosts, their addresses, roles and command prefixes;
//! - [`load`]: writers of sequenced events, and the accounting of lost, split-brain and in-doubt writes;
//! - [`netns`]: hosts as network namespaces on a bridge, partitions inside them, host crashes;
//! - [`topology`]: stack-core's Redis, Sentinel and PostgreSQL services placed on the hosts, live roles.
#![warn(missing_docs)]

pub mod envconfig;
pub mod evidence;
pub mod inventory;
pub mod load;
pub mod netns;
pub mod topology;
