//! Commands (iptables, tc) as argument vectors: never through a shell, shown shell-quoted, run
//! with a timeout in their own process group, and **not** stopped by SIGINT/SIGTERM (cleanup must
//! finish after a signal; `evidence_core::process` stops its children on a signal, which is right
//! for drill steps but wrong for the commands that remove a fault).

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use evidence_core::{EvidenceError, Result};

/// How long one iptables/tc command may take.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// One command: a program and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    /// The resolved program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

impl Cmd {
    /// A command from a program and arguments.
    pub fn new<I, S>(program: &Path, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            program: program.to_path_buf(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    /// The command as a shell would read it (arguments quoted only when needed).
    #[must_use]
    pub fn display(&self) -> String {
        let mut s = quote(&self.program.display().to_string());
        for a in &self.args {
            s.push(' ');
            s.push_str(&quote(a));
        }
        s
    }
}

pub use evidence_core::process::shell_quote as quote;

/// What a command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit code (None: killed by a signal or at the timeout).
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Outcome {
    /// True when it exited 0.
    #[must_use]
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }

    /// `exit N: <stderr>` for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        let status = self
            .code
            .map_or_else(|| "killed".to_string(), |c| format!("exit {c}"));
        let err = self.stderr.trim();
        if err.is_empty() {
            status
        } else {
            format!("{status}: {err}")
        }
    }
}

/// Run `cmd` to completion (or [`TIMEOUT`]), capturing its output. Errors only when it cannot be
/// started.
pub fn run(cmd: &Cmd) -> Result<Outcome> {
    let mut child = Command::new(&cmd.program)
        .args(&cmd.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            EvidenceError::failed(format!("cannot start {}: {e}", cmd.program.display()))
        })?;
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let end = Instant::now() + TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() >= end => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(2)),
            Err(e) => {
                return Err(EvidenceError::failed(format!(
                    "cannot wait for {}: {e}",
                    cmd.program.display()
                )));
            }
        }
    };
    Ok(Outcome {
        code: status.and_then(|s| s.code()),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

fn reader<R: Read + Send + 'static>(src: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut s) = src {
            let _ = s.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// The original's tool resolution: the first candidate found wins. A candidate with a `/` must be
/// an executable file; a bare name is looked up on `PATH`, then in the usual sbin/bin folders.
/// Unlike the original, an explicit override (`--firewall-cmd`, `--tc-cmd`) that does not exist is
/// an error instead of a silent fallback to the default tool.
///
/// # Errors
/// `none of command candidates found: a,b` (exit 2).
pub fn resolve(override_flag: (&str, &str), defaults: &[&str]) -> Result<PathBuf> {
    let (flag, given) = override_flag;
    if !given.is_empty() {
        return find(given)
            .ok_or_else(|| EvidenceError::usage(format!("{flag} {given}: no such executable")));
    }
    defaults.iter().find_map(|c| find(c)).ok_or_else(|| {
        EvidenceError::failed(format!(
            "none of command candidates found: {}",
            defaults.join(",")
        ))
    })
}

fn is_exec(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Find a program the way [`resolve`] does.
#[must_use]
pub fn find(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_exec(&p).then_some(p);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .chain(
            [
                "/usr/local/sbin",
                "/usr/local/bin",
                "/usr/sbin",
                "/usr/bin",
                "/sbin",
                "/bin",
            ]
            .iter()
            .map(PathBuf::from),
        )
        .map(|d| d.join(name))
        .find(|p| is_exec(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("-j"), "-j");
        assert_eq!(quote("ctp-ops:d1"), "ctp-ops:d1");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote(r#"{"op":"x"}"#), r#"'{"op":"x"}'"#);
    }

    #[test]
    fn resolution() {
        assert!(find("sh").is_some());
        assert!(find("/bin/sh").is_some());
        assert!(find("/nonexistent/iptables").is_none());
        assert!(resolve(("--x", "/nonexistent/x"), &["sh"]).is_err());
        let e = resolve(("--x", ""), &["no-such-tool-a", "no-such-tool-b"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "none of command candidates found: no-such-tool-a,no-such-tool-b"
        );
    }
}
