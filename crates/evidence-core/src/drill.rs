//! What every drill takes, in one place: the drill id, and the flags `--execute` (with the
//! original's `--dry-run`), `--operator`, `--drill-id`, `--results-dir`, `--output-file`,
//! `--lock-file`, flattened into each drill's `Cli` with `#[command(flatten)]`.
//!
//! ```ignore
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     drill: DrillArgs,
//!     // the drill's own flags
//! }
//! const DEFAULTS: DrillDefaults = DrillDefaults {
//!     tool: "rollback-drill",
//!     id_prefix: "rollback",
//!     output_name: "deploy_rollback_result.env",
//!     lock_name: "rollback-drill.lock",
//! };
//! let drill = cli.drill.resolve(&DEFAULTS)?;   // validated, outputs checked writable
//! ```
//!
//! Resolution rules (documented in docs/formats.md, "Drill arguments"):
//! - the drill runs for real only with `--execute` and without `--dry-run`;
//! - `--results-dir` (default `docs/results`) holds every output the drill writes; `--output-file`
//!   overrides the evidence file alone (`-` for stdout);
//! - `--lock-file` defaults to `runtime/locks/<lock_name>`;
//! - `--drill-id` is validated by [`DrillId`]; without it one is generated,
//!   `<prefix>-<YYYYMMDDTHHMMSSZ>-<pid>`;
//! - every output path is checked before the drill does anything ([`check_output_path`]): a path
//!   that is a folder, a folder that cannot be created or written, or a missing top-level folder
//!   (`/nonexistent/x`: most likely a typo) is a usage error, exit 2.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use clap::Args;

use crate::error::{EvidenceError, Result};
use crate::io::Output;
use crate::provenance::default_operator;
use crate::time::{format_utc, now_ns};

/// Longest drill id accepted.
pub const DRILL_ID_MAX: usize = 64;

/// A drill id: 1 to 64 characters of `A-Z a-z 0-9 - _ . :`, not `.` or `..`. Safe as a file or
/// folder name, a firewall comment, a process tag and an `.env` value without quoting.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DrillId(String);

/// Why a drill id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a drill id of 1-64 characters of A-Z a-z 0-9 - _ . : (not `.` or `..`), found {0:?}"
)]
pub struct BadDrillId(pub String);

impl DrillId {
    /// Validate `s`.
    ///
    /// # Errors
    /// Empty, `.`, `..`, longer than 64, or any character outside `A-Z a-z 0-9 - _ . :` (so no
    /// `/`, space or control character).
    pub fn new(s: &str) -> std::result::Result<DrillId, BadDrillId> {
        let ok = !s.is_empty()
            && s.len() <= DRILL_ID_MAX
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if ok {
            Ok(DrillId(s.to_string()))
        } else {
            Err(BadDrillId(s.to_string()))
        }
    }

    /// A new id `<prefix>-<YYYYMMDDTHHMMSSZ>-<pid>` (the one format every drill generates).
    /// `prefix` is cut to what keeps the id valid.
    #[must_use]
    pub fn generate(prefix: &str) -> DrillId {
        let t = format_utc(now_ns());
        let compact: String = t
            .get(..19)
            .unwrap_or(&t)
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        let prefix: String = prefix
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
            .take(32)
            .collect();
        let prefix = if prefix.is_empty() {
            "drill".to_string()
        } else {
            prefix
        };
        DrillId(format!("{prefix}-{compact}Z-{}", std::process::id()))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DrillId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for DrillId {
    type Err = BadDrillId;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        DrillId::new(s)
    }
}

impl AsRef<str> for DrillId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The flags every drill takes. Flatten it into the drill's `Cli`; resolve it with
/// [`DrillArgs::resolve`].
#[derive(Debug, Clone, Default, Args)]
pub struct DrillArgs {
    /// Run the drill for real (default: a dry run that prints what it would do).
    #[arg(long)]
    pub execute: bool,
    /// Dry run (the default; wins over --execute).
    #[arg(long)]
    pub dry_run: bool,
    /// Who runs the drill, recorded in the evidence (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// Drill id: 1-64 of A-Z a-z 0-9 - _ . : (default: `<drill>-<UTC time>-<pid>`).
    #[arg(long, value_name = "ID")]
    pub drill_id: Option<DrillId>,
    /// Folder for every output of the drill [default: $CTP_OPS_RESULTS_DIR, else docs/results in
    /// a checkout, else /var/lib/ctp-ops/results for an installed binary].
    #[arg(long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    /// Evidence file (`-` for stdout), replaced atomically [default: the drill's file name in
    /// --results-dir].
    #[arg(long, value_name = "PATH")]
    pub output_file: Option<Output>,
    /// Lock file: one drill of a kind at a time (default: `runtime/locks/<drill>.lock`).
    #[arg(long, value_name = "PATH")]
    pub lock_file: Option<PathBuf>,
}

/// A drill's defaults for [`DrillArgs::resolve`].
#[derive(Debug, Clone, Copy)]
pub struct DrillDefaults {
    /// The tool's name (`rollback-drill`), for messages.
    pub tool: &'static str,
    /// Prefix of generated ids (`rollback`).
    pub id_prefix: &'static str,
    /// Evidence file name inside the results folder (`deploy_rollback_result.env`).
    pub output_name: &'static str,
    /// Lock file name inside `runtime/locks/` (`rollback-drill.lock`).
    pub lock_name: &'static str,
}

/// Results folder in a checkout (relative to the working directory); the default comes from
/// [`crate::paths::default_results_dir`] (`/var/lib/ctp-ops/results` when installed).
pub const DEFAULT_RESULTS_DIR: &str = "docs/results";
/// Default folder of lock files (relative to the working directory).
pub const DEFAULT_LOCK_DIR: &str = "runtime/locks";

/// The resolved, validated drill arguments.
#[derive(Debug, Clone)]
pub struct Drill {
    /// True when the drill runs for real.
    pub execute: bool,
    /// The operator (flag, else `$USER`, else `unknown`).
    pub operator: String,
    /// The drill id (given or generated).
    pub id: DrillId,
    /// Folder of every output.
    pub results_dir: PathBuf,
    /// The evidence file.
    pub output: Output,
    /// The lock file.
    pub lock_file: PathBuf,
}

impl DrillArgs {
    /// Resolve defaults, validate, and check that the evidence file can be written (see
    /// [`check_output_path`]). Nothing is created.
    ///
    /// # Errors
    /// A usage error (exit 2) naming the flag.
    pub fn resolve(&self, d: &DrillDefaults) -> Result<Drill> {
        let results_dir = self
            .results_dir
            .clone()
            .unwrap_or_else(crate::paths::default_results_dir);
        if results_dir.as_os_str().is_empty() {
            return Err(EvidenceError::usage("--results-dir must not be empty"));
        }
        if results_dir.exists() && !results_dir.is_dir() {
            return Err(EvidenceError::usage(format!(
                "--results-dir {} is not a folder",
                results_dir.display()
            )));
        }
        let output = self
            .output_file
            .clone()
            .unwrap_or_else(|| Output::Path(results_dir.join(d.output_name)));
        if let Output::Path(p) = &output {
            check_output_path("--output-file", p)?;
        }
        let lock_file = self
            .lock_file
            .clone()
            .unwrap_or_else(|| Path::new(DEFAULT_LOCK_DIR).join(d.lock_name));
        check_output_path("--lock-file", &lock_file)?;
        if output.path() == Some(lock_file.as_path()) {
            return Err(EvidenceError::usage(
                "--output-file and --lock-file must be different files",
            ));
        }
        if let Some(op) = &self.operator
            && (op.trim().is_empty() || op.chars().any(char::is_control))
        {
            return Err(EvidenceError::usage(format!(
                "--operator: expected a name without control characters, found {op:?}"
            )));
        }
        Ok(Drill {
            execute: self.execute && !self.dry_run,
            operator: default_operator(self.operator.as_deref()),
            id: self
                .drill_id
                .clone()
                .unwrap_or_else(|| DrillId::generate(d.id_prefix)),
            results_dir,
            output,
            lock_file,
        })
    }
}

impl Drill {
    /// `name` inside the results folder, for a drill's other outputs (checked like the evidence
    /// file).
    ///
    /// # Errors
    /// See [`check_output_path`].
    pub fn result_path(&self, name: &str) -> Result<PathBuf> {
        let p = self.results_dir.join(name);
        check_output_path("--results-dir", &p)?;
        Ok(p)
    }

    /// True for a dry run.
    #[must_use]
    pub fn dry_run(&self) -> bool {
        !self.execute
    }
}

/// Check, without creating anything, that a file can be written at `path` (given by `flag`):
/// - `path` is not a folder and has a file name;
/// - its nearest existing ancestor is a folder this process may write into;
/// - when folders are missing, the first missing one is not a top-level folder (`/nonexistent`):
///   such a path is most likely a mistake, and the drill does not create it.
///
/// # Errors
/// A usage error (exit 2) naming the flag and the path.
pub fn check_output_path(flag: &str, path: &Path) -> Result<()> {
    let bad = |why: String| EvidenceError::usage(format!("{flag} {}: {why}", path.display()));
    if path.as_os_str().is_empty() {
        return Err(EvidenceError::usage(format!("{flag} must not be empty")));
    }
    if path.is_dir() {
        return Err(bad("is a folder, expected a file path".to_string()));
    }
    if path.file_name().is_none() || path.ends_with("..") {
        return Err(bad("expected a file path".to_string()));
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut existing = parent.as_path();
    let mut first_missing: Option<&Path> = None;
    while !existing.exists() {
        first_missing = Some(existing);
        match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => existing = p,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return Err(bad(format!("{} is not a folder", existing.display())));
    }
    if let Some(m) = first_missing
        && m.is_absolute()
        && m.components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .count()
            == 1
    {
        return Err(bad(format!(
            "the top-level folder {} does not exist; refusing to create it (a typo?). Create it first if it is meant",
            m.display()
        )));
    }
    if nix::unistd::access(
        existing,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .is_err()
    {
        return Err(bad(format!(
            "cannot write into {} (permission denied or read-only)",
            existing.display()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "wal-20260101T000000Z-1", "x.y:z_1", &"a".repeat(64)] {
            assert!(DrillId::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "/",
            "a b",
            "a\nb",
            "a\u{1b}[31m",
            "ü",
            &"a".repeat(65),
        ] {
            assert!(DrillId::new(bad).is_err(), "{bad:?}");
        }
        let g = DrillId::generate("rollback");
        assert!(DrillId::new(g.as_str()).is_ok(), "{g}");
        assert!(g.as_str().starts_with("rollback-"), "{g}");
        assert!(DrillId::new(DrillId::generate("a/b c").as_str()).is_ok());
    }

    const D: DrillDefaults = DrillDefaults {
        tool: "x-drill",
        id_prefix: "x",
        output_name: "x_result.env",
        lock_name: "x-drill.lock",
    };

    #[test]
    fn defaults_and_results_dir() {
        let a = DrillArgs::default().resolve(&D).unwrap();
        assert!(!a.execute);
        assert_eq!(
            a.output,
            Output::Path(PathBuf::from("docs/results/x_result.env"))
        );
        assert_eq!(a.lock_file, PathBuf::from("runtime/locks/x-drill.lock"));
        let dir = tempfile::tempdir().unwrap();
        let a = DrillArgs {
            execute: true,
            results_dir: Some(dir.path().join("r")),
            ..DrillArgs::default()
        }
        .resolve(&D)
        .unwrap();
        assert!(a.execute);
        assert_eq!(a.output, Output::Path(dir.path().join("r/x_result.env")));
        let a = DrillArgs {
            execute: true,
            dry_run: true,
            ..DrillArgs::default()
        }
        .resolve(&D)
        .unwrap();
        assert!(!a.execute, "--dry-run wins");
    }

    #[test]
    fn outputs_checked() {
        let dir = tempfile::tempdir().unwrap();
        let e = check_output_path("--output-file", dir.path()).unwrap_err();
        assert!(e.to_string().contains("is a folder"), "{e}");
        let e = check_output_path("--output-file", Path::new("/nonexistent-ctp-ops/x.env"))
            .unwrap_err();
        assert!(e.to_string().contains("top-level folder"), "{e}");
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let e = check_output_path("--output-file", &file.join("x.env")).unwrap_err();
        assert!(e.to_string().contains("is not a folder"), "{e}");
        check_output_path("--output-file", &dir.path().join("a/b/c.env")).unwrap();
        check_output_path("--output-file", Path::new("rel/x.env")).unwrap();
        assert!(!dir.path().join("a").exists(), "nothing is created");
    }
}
