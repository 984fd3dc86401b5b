//! stack-core: the production-like stack (SOP 7) as local processes, and the pieces the
//! multi-host drills (SOP 8) reuse to run the same services in network namespaces or on hosts.
//!
//! - [`redis`]: a synchronous RESP2 client with timeouts (`cmd`, PING, ROLE, INFO, SENTINEL ...);
//! - [`pg`]: a synchronous PostgreSQL client (SCRAM-SHA-256, simple queries) with timeouts;
//! - [`secret`]: the stack's generated password in a 0600 file;
//! - [`stack`]: services, ports, placements (listen address + command prefix), config rendering;
//! - [`compose`]: the compose backend's health (compose-core rows + the same probes on published ports);
//! - [`launch`]: prepare the run folder, initdb/basebackup, start/stop services with pid and log
//!   files (evidence-core's supervisor), `up`/`down`/`purge`;
//! - [`probe`]: readiness and health probes that record what was asked and what was answered;
//! - [`report`]: the health report JSON (the original shape) from probes or compose ps rows;
//! - [`webhook`]: the local Alertmanager webhook receiver (appends each notification as JSONL).
#![warn(missing_docs)]

pub mod compose;
pub mod launch;
pub mod pg;
pub mod probe;
pub mod redis;
pub mod report;
pub mod secret;
pub mod stack;
pub mod webhook;
