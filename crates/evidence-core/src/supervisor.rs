//! A small local process supervisor: start a detached process with a pid file and a log file in a
//! run folder, tell whether it is alive and what it runs, stop it (SIGTERM to its process group,
//! then SIGKILL after a grace period).
//!
//! **Detaching.** The process is started in its own process group (`process_group(0)`, no `unsafe`
//! and no external `setsid`), with stdin from `/dev/null` and stdout/stderr appended to the log file.
//! That is enough to outlive the step that started it: [`crate::process::run_shell`] kills the
//! step's process group when its shell exits, and a terminal's Ctrl-C goes to the foreground group
//! only. It stays in the caller's session; it holds no terminal, so a hangup of that terminal does
//! not reach it. Not a new session: use `setsid(1)` in the command if a service needs one.
//!
//! **Identity.** The pid file records the pid and the process's start time in clock ticks
//! (`/proc/<pid>/stat` field 22), so a recycled pid is never mistaken for the service. A zombie
//! counts as dead.

use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::dotenv::{EnvDoc, EnvWriter, parse_u64};
use crate::error::{EvidenceError, Result};
use crate::io::write_atomic;
use crate::process::signal_group;
use crate::time::{format_utc, now_ns};

/// A supervised process named `name` whose state lives in `dir`.
#[derive(Debug, Clone)]
pub struct Supervisor {
    dir: PathBuf,
    name: String,
}

/// What the pid file says about a running process (checked against `/proc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// Process id (also its process-group id).
    pub pid: u32,
    /// Start time in clock ticks since boot, from `/proc/<pid>/stat`.
    pub start_ticks: u64,
    /// Free-form tag given at start (the release it runs).
    pub tag: String,
    /// The program started.
    pub program: String,
    /// When it was started (RFC 3339 UTC).
    pub started_utc: String,
}

/// How a stop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Nothing was running.
    NotRunning,
    /// It exited after SIGTERM.
    Terminated,
    /// It had to be killed with SIGKILL after the grace period.
    Killed,
}

impl Supervisor {
    /// A supervisor for `name` with its pid file in `dir` and its log in `dir/logs/`.
    #[must_use]
    pub fn new(dir: impl Into<PathBuf>, name: &str) -> Self {
        Supervisor {
            dir: dir.into(),
            name: name.to_string(),
        }
    }

    /// `<dir>/<name>.pid`.
    #[must_use]
    pub fn pid_file(&self) -> PathBuf {
        self.dir.join(format!("{}.pid", self.name))
    }

    /// `<dir>/logs/<name>.log` (appended to by every start).
    #[must_use]
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("logs").join(format!("{}.log", self.name))
    }

    /// Start `program args...` detached (see the module docs), unless it is already running.
    /// `tag` is recorded in the pid file (e.g. the release). Returns what was started.
    pub fn start(
        &self,
        program: &Path,
        args: &[OsString],
        env: &[(String, String)],
        tag: &str,
    ) -> Result<Running> {
        if let Some(r) = self.running()? {
            return Err(EvidenceError::failed(format!(
                "{} is already running (pid {}, {})",
                self.name, r.pid, r.tag
            )));
        }
        let log = self.log_file();
        if let Some(d) = log.parent() {
            fs::create_dir_all(d).map_err(|e| EvidenceError::io("cannot create folder", d, e))?;
        }
        let open_log = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(|e| EvidenceError::io("cannot open log", &log, e))
        };
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(open_log()?)
            .stderr(open_log()?)
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let started_ns = now_ns();
        let mut child = cmd.spawn().map_err(|e| {
            EvidenceError::failed(format!("cannot start {}: {e}", program.display()))
        })?;
        let pid = child.id();
        // Reap it if it dies while we are still around; otherwise init inherits it.
        std::thread::spawn(move || {
            let _ = child.wait();
        });
        let start_ticks = start_ticks(pid).unwrap_or(0);
        let running = Running {
            pid,
            start_ticks,
            tag: tag.to_string(),
            program: program.display().to_string(),
            started_utc: format_utc(started_ns),
        };
        let mut w = EnvWriter::new();
        w.comment(&format!(
            "pid file of {} (written by the ctp-ops supervisor)",
            self.name
        ))
        .push("pid", pid)
        .push("start_ticks", start_ticks)
        .push("tag", tag)
        .push("program", &running.program)
        .push("started_utc", &running.started_utc);
        write_atomic(&self.pid_file(), w.render().as_bytes())?;
        Ok(running)
    }

    /// The recorded process, if its pid file exists and that very process is alive.
    pub fn running(&self) -> Result<Option<Running>> {
        let Some(r) = self.recorded()? else {
            return Ok(None);
        };
        Ok(is_same_process_alive(r.pid, r.start_ticks).then_some(r))
    }

    /// What the pid file records, alive or not.
    pub fn recorded(&self) -> Result<Option<Running>> {
        let path = self.pid_file();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EvidenceError::io("cannot read", &path, e)),
        };
        let label = path.display().to_string();
        let doc = EnvDoc::parse(&text, &label)?;
        let num = |k: &str| -> Result<u64> {
            parse_u64(doc.require(k)?).ok_or_else(|| doc.field_error(k, "a non-negative integer"))
        };
        let pid = u32::try_from(num("pid")?).map_err(|_| doc.field_error("pid", "a pid"))?;
        Ok(Some(Running {
            pid,
            start_ticks: num("start_ticks")?,
            tag: doc.get("tag").unwrap_or_default().to_string(),
            program: doc.get("program").unwrap_or_default().to_string(),
            started_utc: doc.get("started_utc").unwrap_or_default().to_string(),
        }))
    }

    /// Stop the running process: SIGTERM to its group, SIGKILL after `grace`, wait until gone.
    /// Removes the pid file.
    pub fn stop(&self, grace: Duration) -> Result<Stopped> {
        let Some(r) = self.running()? else {
            let _ = fs::remove_file(self.pid_file());
            return Ok(Stopped::NotRunning);
        };
        signal_group(r.pid, Signal::SIGTERM);
        let end = Instant::now() + grace;
        let mut how = Stopped::Terminated;
        while is_same_process_alive(r.pid, r.start_ticks) {
            if Instant::now() >= end {
                signal_group(r.pid, Signal::SIGKILL);
                how = Stopped::Killed;
                let hard_end = Instant::now() + Duration::from_secs(10);
                while is_same_process_alive(r.pid, r.start_ticks) {
                    if Instant::now() >= hard_end {
                        return Err(EvidenceError::failed(format!(
                            "{} (pid {}) survived SIGKILL",
                            self.name, r.pid
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // Anything it left in its group goes too.
        signal_group(r.pid, Signal::SIGKILL);
        let _ = fs::remove_file(self.pid_file());
        Ok(how)
    }

    /// Kill the running process at once with SIGKILL (its group too), as a crash would; keeps the
    /// pid file so that status reports it dead. Returns the pid killed.
    pub fn kill(&self) -> Result<Option<u32>> {
        let Some(r) = self.running()? else {
            return Ok(None);
        };
        signal_group(r.pid, Signal::SIGKILL);
        let end = Instant::now() + Duration::from_secs(10);
        while is_same_process_alive(r.pid, r.start_ticks) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(Some(r.pid))
    }
}

/// Fields of `/proc/<pid>/stat` after the command name: index 0 is the state (field 3).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

pub use crate::process::pid_alive;

/// The start time of `pid` in clock ticks since boot (`/proc/<pid>/stat` field 22).
#[must_use]
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// True when `pid` is alive and started at `ticks` (0 = unknown, not compared).
#[must_use]
pub fn is_same_process_alive(pid: u32, ticks: u64) -> bool {
    pid_alive(pid) && (ticks == 0 || start_ticks(pid) == Some(ticks))
}

/// The executable `pid` runs (`/proc/<pid>/exe`), when readable.
#[must_use]
pub fn exe_of(pid: u32) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/exe")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_status_stop_and_kill() {
        let dir = tempfile::tempdir().unwrap();
        let sup = Supervisor::new(dir.path(), "sleeper");
        assert_eq!(sup.running().unwrap(), None);
        assert_eq!(
            sup.stop(Duration::from_millis(100)).unwrap(),
            Stopped::NotRunning
        );
        let args = vec![
            OsString::from("-c"),
            OsString::from("echo started; exec sleep 30"),
        ];
        let r = sup.start(Path::new("/bin/sh"), &args, &[], "v1").unwrap();
        assert!(pid_alive(r.pid));
        assert_eq!(sup.running().unwrap().unwrap().tag, "v1");
        assert!(sup.start(Path::new("/bin/sh"), &args, &[], "v1").is_err());
        assert_eq!(
            sup.stop(Duration::from_secs(5)).unwrap(),
            Stopped::Terminated
        );
        assert!(!pid_alive(r.pid));
        assert_eq!(sup.running().unwrap(), None);
        let log = fs::read_to_string(sup.log_file()).unwrap();
        assert!(log.contains("started"), "{log}");

        // A process that ignores SIGTERM is killed after the grace period.
        let args = vec![
            OsString::from("-c"),
            OsString::from("trap '' TERM; while :; do sleep 0.05; done"),
        ];
        let r = sup.start(Path::new("/bin/sh"), &args, &[], "v2").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            sup.stop(Duration::from_millis(300)).unwrap(),
            Stopped::Killed
        );
        assert!(!pid_alive(r.pid));

        let args = vec![OsString::from("-c"), OsString::from("exec sleep 30")];
        let r = sup.start(Path::new("/bin/sh"), &args, &[], "v3").unwrap();
        assert_eq!(sup.kill().unwrap(), Some(r.pid));
        assert!(!pid_alive(r.pid));
        assert_eq!(sup.recorded().unwrap().unwrap().pid, r.pid);
        assert_eq!(sup.running().unwrap(), None);
    }
}
