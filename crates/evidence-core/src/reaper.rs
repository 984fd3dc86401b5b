//! The dead-man reaper: nothing a drill started outlives it, even when the drill is killed with
//! SIGKILL.
//!
//! [`Reaper::start`] starts a detached copy of the running program (its own process group, so a
//! terminal's Ctrl-C does not reach it) that [`crate::cli::main`] turns into the reaper loop
//! before parsing any flag (the spec travels in the environment variable [`ENV`]). The reaper:
//! - holds the drill's lock (it gets a duplicate of the lock file as its stdin), so the lock stays
//!   held until everything the drill started is gone;
//! - watches the drill's pid (and its start time, so a reused pid is not mistaken for it) and an
//!   optional expiry;
//! - when the drill dies (or the expiry passes), runs the registered clean-up commands (argv, no
//!   shell), then sends SIGTERM to every process group still registered, SIGKILL after the grace,
//!   and waits (bounded) until they are gone; then it exits, which releases the lock;
//! - on SIGTERM (the drill ended normally and stopped its children itself) it exits at once.
//!
//! While a reaper runs, every step run by [`crate::process::run_command`] registers its process
//! group for the reaper; a drill registers other groups (a service it started) with [`register`].
//! The registry is a JSON file (`{"groups":[{"pgid":N,"ticks":T,"name":"..."}]}`) written
//! atomically beside the drill's other run files.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{EvidenceError, Result};
use crate::exit::Exit;
use crate::io::write_atomic;
use crate::lock::LockFile;
use crate::process::{group_alive, pid_alive};
use crate::supervisor::{is_same_process_alive, start_ticks};
use crate::time::now_ns;
use crate::{cli, signals};

/// The environment variable that turns a tool into its own reaper (set by [`Reaper::start`]).
pub const ENV: &str = "CTP_OPS_REAPER_SPEC";

/// The environment variable every step carries while a reaper runs (`<drill pid>-<start ticks>`):
/// inherited by whatever the step starts, it lets the reaper find processes that escaped their
/// group, or that were started in the instant before their group was registered.
pub const TAG_ENV: &str = "CTP_OPS_DRILL_TAG";

/// What the reaper is told at start.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Spec {
    parent_pid: u32,
    parent_ticks: u64,
    groups_file: PathBuf,
    expires_at_ns: Option<i64>,
    grace_ms: u64,
    cleanup: Vec<Vec<String>>,
    tag: String,
}

/// One registered process group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// The process group id (the leader's pid).
    pub pgid: u32,
    /// The leader's start time in clock ticks (0 = unknown).
    pub ticks: u64,
    /// What it is, for messages.
    pub name: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Registry {
    groups: Vec<Group>,
}

static ACTIVE: Mutex<Option<(PathBuf, Registry)>> = Mutex::new(None);
static TAG: Mutex<Option<String>> = Mutex::new(None);

/// How to start a reaper.
#[derive(Debug, Clone)]
pub struct ReaperOptions {
    /// The registry file (in the drill's run folder).
    pub groups_file: PathBuf,
    /// Reap at this wall-clock instant (epoch ns) even while the drill lives.
    pub expires_at_ns: Option<i64>,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Commands (argv, no shell) to run first when the drill dies: the drill's own clean-up.
    pub cleanup: Vec<Vec<String>>,
}

impl ReaperOptions {
    /// Defaults: no expiry, 5 s grace, no clean-up commands.
    #[must_use]
    pub fn new(groups_file: impl Into<PathBuf>) -> Self {
        ReaperOptions {
            groups_file: groups_file.into(),
            expires_at_ns: None,
            grace: Duration::from_secs(5),
            cleanup: Vec::new(),
        }
    }
}

/// A running reaper; stop it with [`Reaper::stop`] once the drill stopped its children.
#[derive(Debug)]
pub struct Reaper {
    child: Child,
    groups_file: PathBuf,
}

impl Reaper {
    /// Start the reaper of this process. `lock` (when given) stays held by the reaper as long as
    /// it lives.
    ///
    /// # Errors
    /// When the registry cannot be written or the program cannot be started again.
    pub fn start(opts: &ReaperOptions, lock: Option<&LockFile>) -> Result<Reaper> {
        let me = std::process::id();
        let parent_ticks = start_ticks(me).unwrap_or(0);
        let spec = Spec {
            parent_pid: me,
            parent_ticks,
            tag: format!("{me}-{parent_ticks}"),
            groups_file: std::path::absolute(&opts.groups_file)
                .unwrap_or_else(|_| opts.groups_file.clone()),
            expires_at_ns: opts.expires_at_ns,
            grace_ms: u64::try_from(opts.grace.as_millis()).unwrap_or(u64::MAX),
            cleanup: opts.cleanup.clone(),
        };
        save(&spec.groups_file, &Registry::default())?;
        let exe = std::env::current_exe()
            .map_err(|e| EvidenceError::failed(format!("cannot find my own program: {e}")))?;
        let json = serde_json::to_string(&spec)
            .map_err(|e| EvidenceError::failed(format!("cannot encode the reaper spec: {e}")))?;
        let stdin = match lock {
            Some(l) => Stdio::from(
                l.try_clone_file()
                    .map_err(|e| EvidenceError::io("cannot share lock file", l.path(), e))?,
            ),
            None => Stdio::null(),
        };
        let child = Command::new(exe)
            .env(ENV, json)
            .stdin(stdin)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .map_err(|e| EvidenceError::failed(format!("cannot start the dead-man reaper: {e}")))?;
        let groups_file = spec.groups_file.clone();
        if let Ok(mut a) = ACTIVE.lock() {
            *a = Some((spec.groups_file, Registry::default()));
        }
        if let Ok(mut t) = TAG.lock() {
            *t = Some(spec.tag);
        }
        Ok(Reaper { child, groups_file })
    }

    /// The reaper's pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stop the reaper (SIGTERM, SIGKILL after 5 s) and stop registering groups. Dropping the
    /// reaper does the same.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Ok(mut a) = ACTIVE.lock() {
            *a = None;
        }
        if let Ok(mut t) = TAG.lock() {
            *t = None;
        }
        let _ = crate::process::stop_child(&mut self.child, Duration::from_secs(5));
        let _ = std::fs::remove_file(&self.groups_file);
    }
}

fn save(path: &Path, reg: &Registry) -> Result<()> {
    let text = serde_json::to_string(reg)
        .map_err(|e| EvidenceError::failed(format!("cannot encode the reaper registry: {e}")))?;
    write_atomic(path, text.as_bytes())
}

/// Register process group `pgid` (led by the process `pgid`) for the running reaper, if any.
pub fn register(pgid: u32, name: &str) {
    let Ok(mut a) = ACTIVE.lock() else { return };
    if let Some((file, reg)) = a.as_mut() {
        reg.groups.push(Group {
            pgid,
            ticks: start_ticks(pgid).unwrap_or(0),
            name: name.to_string(),
        });
        if let Err(e) = save(file, reg) {
            cli::warn(&format!("reaper registry: {e}"));
        }
    }
}

/// Forget process group `pgid` (it has been stopped).
pub fn unregister(pgid: u32) {
    let Ok(mut a) = ACTIVE.lock() else { return };
    if let Some((file, reg)) = a.as_mut() {
        reg.groups.retain(|g| g.pgid != pgid);
        let _ = save(file, reg);
    }
}

/// The tag children get in [`TAG_ENV`] while a reaper runs.
#[must_use]
pub fn tag() -> Option<String> {
    TAG.lock().ok().and_then(|t| t.clone())
}

/// Processes (other than this one) whose environment holds `TAG_ENV=tag`.
fn tagged(tag: &str) -> Vec<u32> {
    let want = format!("{TAG_ENV}={tag}");
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me && pid_alive(pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == want.as_bytes()))
        })
        .collect()
}

/// True while a reaper started by this process is active.
#[must_use]
pub fn active() -> bool {
    ACTIVE.lock().is_ok_and(|a| a.is_some())
}

/// When this process was started as a reaper ([`ENV`] set), run the reaper loop and return its
/// exit; else `None`. Called by [`crate::cli::main`] before parsing flags.
#[must_use]
pub fn run_if_requested() -> Option<Exit> {
    let spec = std::env::var(ENV).ok()?;
    let spec: Spec = match serde_json::from_str(&spec) {
        Ok(s) => s,
        Err(e) => {
            cli::warn(&format!("bad {ENV}: {e}"));
            return Some(Exit::BadInput);
        }
    };
    Some(reap(&spec))
}

fn reap(spec: &Spec) -> Exit {
    if signals::install().is_err() {
        return Exit::BadInput;
    }
    let why = loop {
        if signals::interrupted() {
            return Exit::Pass;
        }
        if !is_same_process_alive(spec.parent_pid, spec.parent_ticks) {
            break format!("the drill (pid {}) died", spec.parent_pid);
        }
        if spec.expires_at_ns.is_some_and(|t| now_ns() >= t) {
            break format!("the drill (pid {}) overran its expiry", spec.parent_pid);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for argv in &spec.cleanup {
        if let Some((prog, args)) = argv.split_first() {
            let opts = crate::process::RunOptions {
                timeout: Duration::from_secs(30),
                ..crate::process::RunOptions::default()
            };
            let mut c = Command::new(prog);
            c.args(args).env_remove(ENV);
            let _ = crate::process::run_command(c, &opts);
        }
    }
    let reg: Registry = std::fs::read_to_string(&spec.groups_file)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let ours: Vec<&Group> = reg.groups.iter().filter(|g| still_ours(g)).collect();
    let strays = tagged(&spec.tag);
    if ours.is_empty() && strays.is_empty() {
        return Exit::Pass;
    }
    let alive = || ours.iter().any(|g| group_alive(g.pgid)) || strays.iter().any(|&p| pid_alive(p));
    for sig in [Signal::SIGTERM, Signal::SIGKILL] {
        for g in &ours {
            send(g.pgid, sig);
        }
        for &p in &strays {
            if let Ok(p) = i32::try_from(p) {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), sig);
            }
        }
        let wait = if sig == Signal::SIGTERM {
            Duration::from_millis(spec.grace_ms)
        } else {
            Duration::from_secs(10)
        };
        let end = Instant::now() + wait;
        while alive() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let mut names: Vec<String> = ours
        .iter()
        .map(|g| format!("{} (group {})", g.name, g.pgid))
        .collect();
    names.extend(strays.iter().map(|p| format!("pid {p}")));
    cli::warn(&format!(
        "{why} without stopping what it started; stopped: {}",
        names.join(", ")
    ));
    Exit::Pass
}

/// A group is still the one registered when it exists and its leader is either gone (a pgid
/// cannot be reused while any member lives) or the same process (same start time).
fn still_ours(g: &Group) -> bool {
    group_alive(g.pgid)
        && (!pid_alive(g.pgid) || g.ticks == 0 || start_ticks(g.pgid) == Some(g.ticks))
}

fn send(pgid: u32, sig: Signal) {
    if let Ok(p) = i32::try_from(pgid)
        && p > 1
    {
        let _ = killpg(Pid::from_raw(p), sig);
    }
}
