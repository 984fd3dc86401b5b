//! The dead-man of a drill's children: a detached copy of this program (hidden `--reap-parent`)
//! that watches the drill's pid and, should the drill die without stopping its children (SIGKILL,
//! a crash), stops every child still listed as running in the run folder's `pids.json`, last
//! started first (fault-inject first: it clears its fault on SIGTERM). A pid is only signalled
//! while its command line still starts with the recorded program, so a reused pid is left alone.
//! On a normal end the drill stops the reaper with SIGTERM.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use evidence_core::cli;
use evidence_core::{EvidenceError, Exit, Result, signals};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::Value;

/// True while `pid` is a live (not zombie) process.
#[must_use]
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X")
    })
}

fn runs(pid: i32, program: &str) -> bool {
    alive(pid)
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
            c.split(|b| *b == 0)
                .next()
                .is_some_and(|a0| a0 == program.as_bytes())
        })
}

/// Start the reaper of the drill whose children are listed in `pids_file`.
///
/// # Errors
/// When this program cannot be started again.
pub fn spawn(pids_file: &Path) -> Result<Child> {
    let exe = std::env::current_exe()
        .map_err(|e| EvidenceError::failed(format!("cannot find my own program: {e}")))?;
    let mut c = Command::new(exe);
    c.arg("--reap-parent")
        .arg(std::process::id().to_string())
        .arg("--reap-pids")
        .arg(pids_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        // Its own process group: a terminal's Ctrl-C does not reach it.
        .process_group(0);
    c.spawn()
        .map_err(|e| EvidenceError::failed(format!("cannot start the children's reaper: {e}")))
}

/// Stop the reaper (the drill stopped its children itself): SIGTERM to its process group, SIGKILL
/// after 5 s.
pub fn stop(mut child: Child) {
    let _ = evidence_core::process::stop_child(&mut child, Duration::from_secs(5));
}

/// The reaper's loop: wait for the parent's death (or SIGTERM), then stop what it left.
///
/// # Errors
/// When the signal handlers cannot be installed.
pub fn run(parent: i32, pids_file: &Path) -> Result<Exit> {
    signals::install()?;
    loop {
        if signals::interrupted() {
            return Ok(Exit::Pass);
        }
        if !alive(parent) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let doc: Value = std::fs::read_to_string(pids_file)
        .ok()
        .and_then(|t| serde_json::from_str(t.trim()).ok())
        .unwrap_or(Value::Null);
    let Some(children) = doc["children"].as_array() else {
        return Ok(Exit::Pass);
    };
    let mut stopped = Vec::new();
    for k in children.iter().rev().filter(|k| k["status"].is_null()) {
        let (Some(pid), Some(program)) = (
            k["pid"].as_i64().and_then(|p| i32::try_from(p).ok()),
            k["argv"][0].as_str(),
        ) else {
            continue;
        };
        if !runs(pid, program) {
            continue;
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
        let end = Instant::now() + Duration::from_secs(15);
        while runs(pid, program) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
        if runs(pid, program) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        stopped.push(format!("{} (pid {pid})", k["name"].as_str().unwrap_or("?")));
    }
    if !stopped.is_empty() {
        cli::warn(&format!(
            "the drill (pid {parent}) died without stopping its children; stopped: {}",
            stopped.join(", ")
        ));
    }
    Ok(Exit::Pass)
}
