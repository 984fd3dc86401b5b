//! `deploy_rollback_result.env`: the original's twelve keys in order, then measured extras, then
//! provenance (lower case). See docs/formats.md.

use evidence_core::dotenv::EnvWriter;
use evidence_core::provenance::{KeyCase, Provenance};

/// The original's twelve keys, in order.
pub const KEYS: [&str; 12] = [
    "drill_id",
    "platform",
    "release_version",
    "rollback_target",
    "failure_injected",
    "rollback_start_utc",
    "rollback_complete_utc",
    "rollback_seconds",
    "health_check_passed",
    "result",
    "operator",
    "notes",
];

/// Accepted `platform` values: the original's two and `local` (our process supervisor).
pub const PLATFORMS: [&str; 3] = ["systemd", "k8s", "local"];

/// A rollback drill's evidence.
#[derive(Debug, Clone)]
pub struct RollbackEvidence {
    /// The twelve keys' values, in [`KEYS`] order.
    pub head: [String; 12],
    /// Extras in order.
    pub extras: Vec<(String, String)>,
    /// Provenance.
    pub provenance: Provenance,
}

impl RollbackEvidence {
    /// Render: the twelve keys, the extras, provenance.
    #[must_use]
    pub fn render(&self) -> String {
        let mut w = EnvWriter::new();
        w.comment("deploy rollback drill evidence (rollback-drill); contract: docs/templates/DEPLOY_ROLLBACK_RESULT.md");
        for (k, v) in KEYS.iter().zip(&self.head) {
            w.push(*k, v);
        }
        w.extend(self.extras.iter().cloned());
        w.extend(self.provenance.env_pairs(KeyCase::Lower));
        w.render()
    }
}
