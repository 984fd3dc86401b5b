//! deploy-core: the deploy/rollback domain shared by `svc-ctl`, `rollback-drill`,
//! `rollout-orchestrator` and the verifiers.
//!
//! - [`envconfig`]: the deploy env-config YAML, flat (the original's keys) and rich forms;
//! - [`svc`]: the local service run folder (releases, atomic `current` link, the supervised process);
//! - [`rollout`]: `rollout_result.env` records;
//! - [`rollback`]: `deploy_rollback_result.env` records.
#![warn(missing_docs)]

pub mod envconfig;
pub mod rollback;
pub mod rollout;
pub mod svc;
