//! The failover env-config (`configs/deploy/environments/prodlike_multi_host.yaml`): the original's
//! flat keys (`environment`, `deploy_target`, the five `*_cmd` keys, `data_sync_lag_events`) plus
//! `inventory` (ours). When any `*_cmd` key is set, the orchestrator runs the user's commands as the
//! steps; without them it runs its built-in steps against the inventory's hosts.
//! `data_sync_lag_events` is read and ignored: the lag is measured, never declared.

use std::path::{Path, PathBuf};

use evidence_core::provenance::sha256_hex;
use evidence_core::{EvidenceError, Result};
use serde::Deserialize;

use crate::evidence::STEP_NAMES;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    environment: Option<String>,
    deploy_target: Option<String>,
    inventory: Option<PathBuf>,
    precheck_cmd: Option<String>,
    backup_sync_check_cmd: Option<String>,
    demote_primary_cmd: Option<String>,
    promote_standby_cmd: Option<String>,
    verify_cmd: Option<String>,
    data_sync_lag_events: Option<yaml_serde::Value>,
    // The rollout keys of a shared file are tolerated.
    #[serde(default, rename = "deploy_cmd")]
    _deploy_cmd: Option<String>,
    #[serde(default, rename = "fault_inject_cmd")]
    _fault_inject_cmd: Option<String>,
    #[serde(default, rename = "rollback_cmd")]
    _rollback_cmd: Option<String>,
    #[serde(default, rename = "release_cmd")]
    _release_cmd: Option<String>,
}

/// A parsed failover env-config.
#[derive(Debug, Clone)]
pub struct FailoverConfig {
    /// The file.
    pub path: PathBuf,
    /// `environment` (`unknown` when absent).
    pub environment: String,
    /// `deploy_target`.
    pub deploy_target: String,
    /// `inventory` (ours).
    pub inventory: Option<PathBuf>,
    /// The five step commands in [`STEP_NAMES`] order.
    pub commands: [Option<String>; 5],
    /// The declared lag of the original, if present (ignored).
    pub declared_lag: Option<String>,
    /// SHA-256 of the file.
    pub sha256: String,
}

impl FailoverConfig {
    /// Read `path` (errors name the file and field; exit 2).
    pub fn load(path: &Path) -> Result<FailoverConfig> {
        let bytes = std::fs::read(path)
            .map_err(|e| EvidenceError::io("env config not found or unreadable", path, e))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            EvidenceError::parse(
                path.display().to_string(),
                0,
                "file",
                "UTF-8",
                "invalid UTF-8",
            )
        })?;
        let label = path.display().to_string();
        let raw: Raw = yaml_serde::from_str(&text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            EvidenceError::parse(
                &label,
                line,
                "env-config",
                "the failover env-config keys",
                e.to_string(),
            )
        })?;
        let nb = |s: Option<String>| s.filter(|c| !c.trim().is_empty());
        Ok(FailoverConfig {
            path: path.to_path_buf(),
            environment: raw.environment.unwrap_or_else(|| "unknown".into()),
            deploy_target: raw.deploy_target.unwrap_or_default(),
            inventory: raw.inventory,
            commands: [
                nb(raw.precheck_cmd),
                nb(raw.backup_sync_check_cmd),
                nb(raw.demote_primary_cmd),
                nb(raw.promote_standby_cmd),
                nb(raw.verify_cmd),
            ],
            declared_lag: raw.data_sync_lag_events.map(|v| match v {
                yaml_serde::Value::String(s) => s,
                other => yaml_serde::to_string(&other)
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            }),
            sha256: sha256_hex(text.as_bytes()),
        })
    }

    /// True when the config drives its own stack through `*_cmd` keys.
    #[must_use]
    pub fn has_commands(&self) -> bool {
        self.commands.iter().any(Option::is_some)
    }

    /// The `*_cmd` field name of step `i`.
    #[must_use]
    pub fn field(i: usize) -> String {
        format!("{}_cmd", STEP_NAMES[i])
    }
}
