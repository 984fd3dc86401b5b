//! Errors that say where: which file, which line, which field, what was expected and what was found.

use std::path::PathBuf;

use crate::exit::Exit;

/// Every error a tool reports. Almost all are `BadInput` (exit 2); `Interrupted` is 130.
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    /// A file or stream could not be opened, read or written.
    #[error("{action} {path}")]
    Io {
        /// What was being done ("cannot read", "cannot write", ...).
        action: &'static str,
        /// The path or `-`.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record or line of an input is malformed.
    #[error("{source_label}{}: {field}: expected {expected}, found {found}", line_suffix(*line))]
    Parse {
        /// File path or `-`.
        source_label: String,
        /// 1-based line number (0 when the error is not tied to a line).
        line: usize,
        /// The key or field at fault (or `line` for a whole line).
        field: String,
        /// What the tool expected.
        expected: String,
        /// What it found (never a secret).
        found: String,
    },
    /// A bad combination of flags or a bad config value found before any I/O.
    #[error("{0}")]
    Usage(String),
    /// The tool could not do its job (a child could not start, a lock is held, ...).
    #[error("{0}")]
    Failed(String),
    /// Interrupted by SIGINT or SIGTERM; cleanup has run.
    #[error("interrupted")]
    Interrupted,
}

/// `:<line>`, or nothing for line 0 (an error not tied to a line: `file: field: ...`).
fn line_suffix(line: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}")
    }
}

impl EvidenceError {
    /// The exit class of this error.
    #[must_use]
    pub fn exit(&self) -> Exit {
        match self {
            EvidenceError::Interrupted => Exit::Interrupted,
            _ => Exit::BadInput,
        }
    }

    /// An I/O error on a path.
    pub fn io(action: &'static str, path: impl Into<PathLabel>, source: std::io::Error) -> Self {
        EvidenceError::Io {
            action,
            path: path.into().0,
            source,
        }
    }

    /// A parse error at `source:line` on `field`.
    pub fn parse(
        source_label: impl Into<String>,
        line: usize,
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> Self {
        EvidenceError::Parse {
            source_label: source_label.into(),
            line,
            field: field.into(),
            expected: expected.into(),
            found: found.into(),
        }
    }

    /// A usage error.
    pub fn usage(msg: impl Into<String>) -> Self {
        EvidenceError::Usage(msg.into())
    }

    /// A could-not-run error.
    pub fn failed(msg: impl Into<String>) -> Self {
        EvidenceError::Failed(msg.into())
    }
}

/// A display label for a path (`-` for stdio).
#[derive(Debug, Clone)]
pub struct PathLabel(pub String);

impl From<&std::path::Path> for PathLabel {
    fn from(p: &std::path::Path) -> Self {
        PathLabel(p.display().to_string())
    }
}
impl From<&PathBuf> for PathLabel {
    fn from(p: &PathBuf) -> Self {
        PathLabel(p.display().to_string())
    }
}
impl From<PathBuf> for PathLabel {
    fn from(p: PathBuf) -> Self {
        PathLabel(p.display().to_string())
    }
}
impl From<&str> for PathLabel {
    fn from(p: &str) -> Self {
        PathLabel(p.to_string())
    }
}
impl From<String> for PathLabel {
    fn from(p: String) -> Self {
        PathLabel(p)
    }
}
impl From<&String> for PathLabel {
    fn from(p: &String) -> Self {
        PathLabel(p.clone())
    }
}

/// Shorthand result type.
pub type Result<T, E = EvidenceError> = std::result::Result<T, E>;

/// Shorten a found value for an error message (at most 60 characters, control characters escaped).
#[must_use]
pub fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(60).flat_map(char::escape_default).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_names_place() {
        let e = EvidenceError::parse("a.env", 3, "rto_seconds", "a number", excerpt("nan"));
        assert_eq!(
            e.to_string(),
            "a.env:3: rto_seconds: expected a number, found \"nan\""
        );
        assert_eq!(e.exit(), Exit::BadInput);
        assert_eq!(EvidenceError::Interrupted.exit(), Exit::Interrupted);
        // Not tied to a line: no `:0`.
        let e = EvidenceError::parse("x.yaml", 0, "rollback_cmd", "a command", "no command");
        assert_eq!(
            e.to_string(),
            "x.yaml: rollback_cmd: expected a command, found no command"
        );
    }

    #[test]
    fn excerpt_is_bounded() {
        let long = "x".repeat(100);
        assert!(excerpt(&long).chars().count() < 70);
        assert_eq!(excerpt("a\nb"), "\"a\\nb\"");
    }
}
