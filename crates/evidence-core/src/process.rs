//! Running commands for drills and orchestrators: `sh -c` with a timeout, in its own process group
//! that is killed whole on timeout or interrupt, with bounded captured output, exit status and a
//! monotonic duration. Evidence values are never interpolated into the shell string: pass them as
//! environment variables instead.
//!
//! When a step's shell exits, whatever it left running in its process group is killed too, so a
//! step never leaves orphans. A daemon a step starts must start its own session (as the process
//! supervisor does) to outlive the step.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::error::{EvidenceError, Result};
use crate::signals;
use crate::time::now_ns;

/// How to run one shell step.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Kill the step (its whole process group) after this long.
    pub timeout: Duration,
    /// Between SIGTERM and SIGKILL when stopping a step.
    pub kill_grace: Duration,
    /// Keep at most this many bytes of the end of stdout and of stderr.
    pub capture_limit: usize,
    /// Extra environment variables for the child.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: Option<PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            timeout: Duration::from_secs(60),
            kill_grace: Duration::from_secs(2),
            capture_limit: 16 * 1024,
            env: Vec::new(),
            cwd: None,
        }
    }
}

/// What happened to one step.
#[derive(Debug, Clone)]
pub struct StepOutcome {
    /// Exit code, when the shell exited normally.
    pub exit_code: Option<i32>,
    /// Signal number, when the shell was killed by a signal.
    pub signal: Option<i32>,
    /// True when the step was killed at its timeout.
    pub timed_out: bool,
    /// True when the step was stopped because SIGINT/SIGTERM reached this tool.
    pub interrupted: bool,
    /// Wall-clock epoch ns when the step started.
    pub started_ns: i64,
    /// Monotonic duration from spawn to exit.
    pub duration: Duration,
    /// The end of the step's stdout (lossy UTF-8).
    pub stdout_tail: String,
    /// The end of the step's stderr (lossy UTF-8).
    pub stderr_tail: String,
}

impl StepOutcome {
    /// True when the shell exited 0 in time.
    #[must_use]
    pub fn success(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out && !self.interrupted
    }

    /// A short description: `exit 0`, `exit 3`, `killed by signal 9`, `timed out after 5s`.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.interrupted {
            "interrupted".to_string()
        } else if self.timed_out {
            format!("timed out after {:.3}s", self.duration.as_secs_f64())
        } else if let Some(c) = self.exit_code {
            format!("exit {c}")
        } else if let Some(s) = self.signal {
            format!("killed by signal {s}")
        } else {
            "unknown status".to_string()
        }
    }
}

/// Run `command` with `sh -c` under `opts`. Errors only when the shell cannot be started; a failing,
/// hanging or interrupted command is an `Ok` outcome that says so.
pub fn run_shell(command: &str, opts: &RunOptions) -> Result<StepOutcome> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(command);
    run_command(cmd, opts)
}

/// Run a prepared `Command` (program and arguments already set) under `opts`, with the same
/// process-group, timeout and capture rules as [`run_shell`].
pub fn run_command(mut cmd: Command, opts: &RunOptions) -> Result<StepOutcome> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in &opts.env {
        cmd.env(k, v);
    }
    if let Some(tag) = crate::reaper::tag() {
        cmd.env(crate::reaper::TAG_ENV, tag);
    }
    if let Some(d) = &opts.cwd {
        cmd.current_dir(d);
    }
    let started_ns = now_ns();
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| EvidenceError::failed(format!("cannot start {:?}: {e}", cmd.get_program())))?;
    let pgid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    let name = cmd.get_program().to_string_lossy().into_owned();
    crate::reaper::register(child.id(), &name);
    let out = capture(child.stdout.take(), opts.capture_limit);
    let err = capture(child.stderr.take(), opts.capture_limit);

    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let status = child.wait();
        let _ = tx.send((status, Instant::now()));
    });

    let deadline = start + opts.timeout;
    let mut timed_out = false;
    let mut interrupted = false;
    let mut stop_sent: Option<Instant> = None;
    let (status, ended) = loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(v) => break v,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(EvidenceError::failed("lost track of a child process"));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let now = Instant::now();
        if stop_sent.is_none() {
            if signals::interrupted() {
                interrupted = true;
            } else if now >= deadline {
                timed_out = true;
            }
            if interrupted || timed_out {
                let _ = killpg(pgid, Signal::SIGTERM);
                stop_sent = Some(now);
            }
        } else if stop_sent.is_some_and(|t| now >= t + opts.kill_grace) {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    };
    // Whatever the step left in its group goes too: no orphans.
    let _ = killpg(pgid, Signal::SIGKILL);
    crate::reaper::unregister(u32::try_from(pgid.as_raw()).unwrap_or(0));
    let _ = waiter.join();
    let status =
        status.map_err(|e| EvidenceError::failed(format!("cannot wait for child: {e}")))?;
    let duration = ended.saturating_duration_since(start);
    let stdout_tail = out.finish(Duration::from_millis(500));
    let stderr_tail = err.finish(Duration::from_millis(500));
    Ok(StepOutcome {
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        interrupted,
        started_ns,
        duration,
        stdout_tail,
        stderr_tail,
    })
}

struct Capture {
    buf: Arc<Mutex<Vec<u8>>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl Capture {
    fn finish(self, wait: Duration) -> String {
        if let Some(h) = self.handle {
            let end = Instant::now() + wait;
            while !h.is_finished() && Instant::now() < end {
                thread::sleep(Duration::from_millis(2));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
        let buf = self.buf.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&buf).into_owned()
    }
}

fn capture<R: Read + Send + 'static>(src: Option<R>, limit: usize) -> Capture {
    let buf = Arc::new(Mutex::new(Vec::new()));
    let Some(mut src) = src else {
        return Capture { buf, handle: None };
    };
    let b = Arc::clone(&buf);
    let handle = thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        loop {
            match src.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Ok(mut v) = b.lock() {
                        v.extend_from_slice(&chunk[..n]);
                        if v.len() > limit {
                            let cut = v.len() - limit;
                            v.drain(..cut);
                        }
                    }
                }
            }
        }
    });
    Capture {
        buf,
        handle: Some(handle),
    }
}

/// Quote `s` for display as one POSIX shell word: unchanged when it holds only characters that
/// need no quoting (and for a lone `!`, iptables' negation), else in single quotes. For the
/// `$ <command>` and `[dry-run]` echo lines only: commands are never run through such a string.
#[must_use]
pub fn shell_quote(s: &str) -> String {
    let safe = s == "!"
        || !s.is_empty()
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '-' | '_' | '.' | '/' | ':' | '%' | '=' | ',' | '+' | '@')
            });
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// True while `pid` is a live process (not a zombie). The one pid check of the tools.
#[must_use]
pub fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X")
    })
}

/// True while any process of the process group `pgid` exists (zombies included).
#[must_use]
pub fn group_alive(pgid: u32) -> bool {
    i32::try_from(pgid).is_ok_and(|p| p > 0 && killpg(Pid::from_raw(p), None).is_ok())
}

/// The program `name` shipped beside the running executable: `<own folder>/name` when it exists;
/// `<own folder>/../name` when the running executable is a test binary in `target/<profile>/deps`;
/// otherwise the bare `name`, found through `PATH` when run. The one sibling lookup of the tools.
#[must_use]
pub fn sibling_binary(name: &str) -> PathBuf {
    let own = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(std::path::Path::to_path_buf));
    if let Some(dir) = own {
        let here = dir.join(name);
        if here.is_file() {
            return here;
        }
        if dir.file_name().is_some_and(|n| n == "deps")
            && let Some(up) = dir.parent().map(|d| d.join(name))
            && up.is_file()
        {
            return up;
        }
    }
    PathBuf::from(name)
}

/// Send `sig` to the process group `pgid` (errors ignored: the group may be gone).
pub fn signal_group(pgid: u32, sig: Signal) {
    if let Ok(p) = i32::try_from(pgid) {
        let _ = killpg(Pid::from_raw(p), sig);
    }
}

/// Stop a child started in its own process group: SIGTERM to the group, then SIGKILL after `grace`;
/// reaps it. Returns how it ended.
pub fn stop_child(child: &mut Child, grace: Duration) -> std::io::Result<std::process::ExitStatus> {
    if let Some(st) = child.try_wait()? {
        signal_group(child.id(), Signal::SIGKILL);
        return Ok(st);
    }
    signal_group(child.id(), Signal::SIGTERM);
    let end = Instant::now() + grace;
    while Instant::now() < end {
        if let Some(st) = child.try_wait()? {
            signal_group(child.id(), Signal::SIGKILL);
            return Ok(st);
        }
        thread::sleep(Duration::from_millis(5));
    }
    signal_group(child.id(), Signal::SIGKILL);
    child.wait()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_status_and_output() {
        let o = run_shell("echo out; echo err >&2; exit 3", &RunOptions::default()).unwrap();
        assert_eq!(o.exit_code, Some(3));
        assert_eq!(o.stdout_tail, "out\n");
        assert_eq!(o.stderr_tail, "err\n");
        assert!(!o.success());
        assert_eq!(o.describe(), "exit 3");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("gc.pid");
        let cmd = format!(
            "sh -c 'echo $$ > {}; exec sleep 30' & wait",
            pidfile.display()
        );
        // The timeout leaves the two shells time to start (and write the pid file) even on a
        // loaded machine.
        let opts = RunOptions {
            timeout: Duration::from_secs(2),
            kill_grace: Duration::from_millis(200),
            ..RunOptions::default()
        };
        let o = run_shell(&cmd, &opts).unwrap();
        assert!(o.timed_out, "{o:?}");
        assert!(o.duration < Duration::from_secs(20), "{o:?}");
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild dies (gone, or a zombie waiting for init). The signal is sent before
        // run_shell returns, but on a loaded machine the process may take a moment to exit: wait
        // for it with a deadline instead of checking once.
        let alive = || {
            std::path::Path::new(&format!("/proc/{pid}")).exists()
                && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z ")
        };
        let end = Instant::now() + Duration::from_secs(10);
        while alive() && Instant::now() < end {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(), "grandchild {pid} survived");
    }

    #[test]
    fn shell_quote_only_when_needed() {
        assert_eq!(shell_quote("-j"), "-j");
        assert_eq!(shell_quote("!"), "!");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn output_is_bounded() {
        let opts = RunOptions {
            capture_limit: 10,
            ..RunOptions::default()
        };
        let o = run_shell("printf '%s' 0123456789abcdef", &opts).unwrap();
        assert_eq!(o.stdout_tail, "6789abcdef");
    }
}
