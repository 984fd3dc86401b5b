//! The processes a drill starts: each in its own process group (a terminal's Ctrl-C reaches only
//! the drill, which then stops them in order), recorded with its pid in the run folder's
//! `pids.json` the moment it starts, and stopped in reverse start order (SIGTERM to its group,
//! SIGKILL after its grace) when the drill ends, fails or is interrupted.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use evidence_core::io::write_atomic;
use evidence_core::process::stop_child;
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Result};
use serde_json::{Value, json};

struct Running {
    name: String,
    child: Child,
    grace: Duration,
    record: usize,
}

/// The children of one drill.
pub struct Children {
    running: Vec<Running>,
    records: Vec<Value>,
    pids_file: Option<PathBuf>,
    reaper: Option<u32>,
}

/// How a child ended, for messages: `exit 0`, `signal 9`.
#[must_use]
pub fn describe(st: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => "unknown status".to_string(),
    }
}

impl Children {
    /// No children yet; their pids go to `pids_file` (rewritten atomically at every change).
    #[must_use]
    pub fn new(pids_file: Option<PathBuf>) -> Self {
        Children {
            running: Vec::new(),
            records: Vec::new(),
            pids_file,
            reaper: None,
        }
    }

    /// Start `cmd` in its own process group under `name`; returns its pid.
    pub fn spawn(&mut self, name: &str, mut cmd: Command, grace: Duration) -> Result<u32> {
        cmd.process_group(0);
        let argv: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let child = cmd.spawn().map_err(|e| {
            EvidenceError::failed(format!("cannot start {name} ({}): {e}", argv[0]))
        })?;
        let pid = child.id();
        self.records.push(json!({
            "name": name, "pid": pid, "argv": argv, "started_ts_ns": now_ns(),
            "stopped_ts_ns": null, "status": null,
        }));
        self.running.push(Running {
            name: name.to_string(),
            child,
            grace,
            record: self.records.len() - 1,
        });
        self.save();
        Ok(pid)
    }

    fn save(&self) {
        if let Some(p) = &self.pids_file {
            let doc = json!({
                "kind": "reconnect.pids", "ts_ns": now_ns(), "reaper_pid": self.reaper,
                "children": self.records,
            });
            let mut text = doc.to_string();
            text.push('\n');
            // Best effort: the pids are a convenience for operators and tests.
            let _ = write_atomic(p, text.as_bytes());
        }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.running.iter().rposition(|r| r.name == name)
    }

    /// Record the pid of the children's reaper (see [`crate::reaper`]).
    pub fn set_reaper(&mut self, pid: u32) {
        self.reaper = Some(pid);
        self.save();
    }

    /// The pid of the running child `name`.
    #[must_use]
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.index(name).map(|i| self.running[i].child.id())
    }

    /// Take the piped stdout of the running child `name`.
    pub fn take_stdout(&mut self, name: &str) -> Option<std::process::ChildStdout> {
        let i = self.index(name)?;
        self.running[i].child.stdout.take()
    }

    /// `Some(status)` when the child `name` has exited (it is then forgotten).
    pub fn exited(&mut self, name: &str) -> Option<ExitStatus> {
        let i = self.index(name)?;
        match self.running[i].child.try_wait() {
            Ok(Some(st)) => {
                let r = self.running.remove(i);
                self.finish(r.record, &st);
                Some(st)
            }
            _ => None,
        }
    }

    /// The long-running children (all but `except`) that have exited by now, by name: a
    /// child that died during the drill. Those found are forgotten, as with [`Self::exited`].
    pub fn died(&mut self, except: &[&str]) -> Vec<String> {
        let names: Vec<String> = self
            .running
            .iter()
            .map(|r| r.name.clone())
            .filter(|n| !except.contains(&n.as_str()))
            .collect();
        names
            .into_iter()
            .filter(|n| self.exited(n).is_some())
            .collect()
    }

    fn finish(&mut self, record: usize, st: &ExitStatus) {
        if let Some(rec) = self.records.get_mut(record) {
            rec["stopped_ts_ns"] = json!(now_ns());
            rec["status"] = json!(describe(st));
        }
        self.save();
    }

    /// Stop the child `name` (SIGTERM to its group, SIGKILL after its grace) and reap it.
    pub fn stop(&mut self, name: &str) -> Option<ExitStatus> {
        let i = self.index(name)?;
        let mut r = self.running.remove(i);
        let st = stop_child(&mut r.child, r.grace).ok();
        if let Some(s) = &st {
            self.finish(r.record, s);
        }
        st
    }

    /// Stop every child still running, last started first.
    pub fn stop_all(&mut self) -> Vec<(String, Option<ExitStatus>)> {
        let mut out = Vec::new();
        while let Some(r) = self.running.last() {
            let name = r.name.clone();
            let st = self.stop(&name);
            out.push((name, st));
        }
        out
    }

    /// The records (name, pid, argv, start, stop, status) of every child started.
    #[must_use]
    pub fn records(&self) -> &[Value] {
        &self.records
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all();
    }
}
