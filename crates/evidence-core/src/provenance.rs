//! Provenance: who ran what, where, when, in which mode, on which config. Goes into every evidence
//! file a tool writes.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{EvidenceError, Result};
use crate::time::{format_utc, now_ns};

/// The provenance block of one evidence file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Tool name, e.g. `wal-drill`.
    pub tool: String,
    /// Tool version (the crate version).
    pub version: String,
    /// Host name of the machine that ran the tool.
    pub host: String,
    /// Who ran it (`--operator`, else `$USER`, else `unknown`).
    pub operator: String,
    /// RFC 3339 UTC start time.
    pub started_utc: String,
    /// RFC 3339 UTC end time.
    pub finished_utc: String,
    /// True when nothing was executed for real.
    pub dry_run: bool,
    /// SHA-256 (hex) of the input config, or `none`.
    pub config_sha256: String,
}

/// Which case the `.env` contract uses for its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCase {
    /// `provenance_tool=...` (the WAL and rollback contracts are lower case).
    Lower,
    /// `PROVENANCE_TOOL=...` (rollout, failover, bootstrap contracts are upper case).
    Upper,
}

/// The provenance keys, in the order written (lower-case form).
pub const PROVENANCE_KEYS: [&str; 8] = [
    "provenance_tool",
    "provenance_version",
    "provenance_host",
    "provenance_operator",
    "provenance_started_utc",
    "provenance_finished_utc",
    "provenance_dry_run",
    "provenance_config_sha256",
];

impl Provenance {
    /// Start a provenance block now. `finished_utc` is set by [`Provenance::finish`].
    #[must_use]
    pub fn start(tool: &str, version: &str, operator: Option<&str>, dry_run: bool) -> Self {
        let now = format_utc(now_ns());
        Provenance {
            tool: tool.to_string(),
            version: version.to_string(),
            host: hostname(),
            operator: default_operator(operator),
            started_utc: now.clone(),
            finished_utc: now,
            dry_run,
            config_sha256: "none".to_string(),
        }
    }

    /// Record the SHA-256 of the config at `path`.
    pub fn with_config_file(mut self, path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| EvidenceError::io("cannot read", path, e))?;
        self.config_sha256 = sha256_hex(&bytes);
        Ok(self)
    }

    /// Record the SHA-256 of config bytes already read.
    #[must_use]
    pub fn with_config_bytes(mut self, bytes: &[u8]) -> Self {
        self.config_sha256 = sha256_hex(bytes);
        self
    }

    /// Set the finish time to now.
    pub fn finish(&mut self) {
        self.finished_utc = format_utc(now_ns());
    }

    /// The `.env` pairs, in the documented order and case.
    #[must_use]
    pub fn env_pairs(&self, case: KeyCase) -> Vec<(String, String)> {
        let values = [
            self.tool.clone(),
            self.version.clone(),
            self.host.clone(),
            self.operator.clone(),
            self.started_utc.clone(),
            self.finished_utc.clone(),
            if self.dry_run { "1" } else { "0" }.to_string(),
            self.config_sha256.clone(),
        ];
        PROVENANCE_KEYS
            .iter()
            .zip(values)
            .map(|(k, v)| {
                let k = match case {
                    KeyCase::Lower => (*k).to_string(),
                    KeyCase::Upper => k.to_ascii_uppercase(),
                };
                (k, v)
            })
            .collect()
    }
}

/// SHA-256 of `bytes` as lower-case hex.
#[must_use]
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// This machine's host name (`unknown` if it cannot be read).
#[must_use]
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

/// `--operator` if given, else `$USER`/`$LOGNAME`, else `unknown`.
#[must_use]
pub fn default_operator(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_string)
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha_and_pairs() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let p = Provenance::start("t", "0.1.0", Some("ops"), true).with_config_bytes(b"abc");
        let pairs = p.env_pairs(KeyCase::Upper);
        assert_eq!(pairs[0], ("PROVENANCE_TOOL".into(), "t".into()));
        assert_eq!(pairs[3], ("PROVENANCE_OPERATOR".into(), "ops".into()));
        assert_eq!(pairs[6], ("PROVENANCE_DRY_RUN".into(), "1".into()));
        assert_eq!(pairs.len(), 8);
    }
}
