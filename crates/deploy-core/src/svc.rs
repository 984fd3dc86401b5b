//! The local service run folder that `svc-ctl` manages (the embedded default of the deploy drills):
//!
//! ```text
//! <run-dir>/
//!   port                     the service's TCP port on 127.0.0.1 (chosen once)
//!   releases/<version>/      demo-service (hard link or copy), VERSION, FAIL_HEALTH (marker, optional)
//!   current -> releases/<v>  switched atomically (a temporary link renamed over it)
//!   previous -> releases/<v> the release current pointed to before the last switch
//!   service.pid              pid, start ticks, release (see evidence_core::supervisor)
//!   logs/service.log         the service's stdout and stderr
//!   svc-ctl.lock             one svc-ctl command at a time
//! ```

use std::ffi::OsString;
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use evidence_core::supervisor::{Running, Stopped, Supervisor, exe_of};
use evidence_core::{EvidenceError, Result, signals};

/// What can go wrong with a run folder and its service (typed where it happens; a could-not-run
/// error, exit 2, once it reaches a tool).
#[derive(Debug, thiserror::Error)]
pub enum SvcError {
    /// No free local port could be picked.
    #[error("cannot pick a free port on 127.0.0.1")]
    NoFreePort(#[source] std::io::Error),
    /// The folder has no port yet.
    #[error("{0}: no port yet (deploy a release first)")]
    NoPort(PathBuf),
    /// The folder has no `current` release.
    #[error("{0}: no current release")]
    NoCurrent(PathBuf),
    /// The folder has no `previous` release.
    #[error("{0}: no previous release to roll back to")]
    NoPrevious(PathBuf),
    /// The previous release's files are gone.
    #[error("previous release {0} is not installed")]
    NotInstalled(String),
    /// The service binary to install is missing.
    #[error("service binary {0} not found (build it with `cargo build --bins`, or pass --binary)")]
    NoBinary(PathBuf),
    /// The started release died at once.
    #[error("release {release} exited right after start (see {log})")]
    ExitedAtStart {
        /// The release.
        release: String,
        /// Its log file.
        log: String,
    },
    /// The started release never listened.
    #[error("release {release} does not accept connections on 127.0.0.1:{port} after {secs:.1}s")]
    NotListening {
        /// The release.
        release: String,
        /// Its port.
        port: u16,
        /// How long it was given.
        secs: f64,
    },
}

impl From<SvcError> for EvidenceError {
    fn from(e: SvcError) -> EvidenceError {
        let mut msg = e.to_string();
        if let Some(src) = std::error::Error::source(&e) {
            msg.push_str(&format!(": {src}"));
        }
        EvidenceError::failed(msg)
    }
}

/// File name of the service binary inside a release.
pub const BINARY: &str = "demo-service";
/// Marker file that makes a release's `/health` answer 503.
pub const FAIL_MARKER: &str = "FAIL_HEALTH";

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    root: PathBuf,
}

/// What `status` reports.
#[derive(Debug, Clone)]
pub struct Status {
    /// The run folder.
    pub run_dir: PathBuf,
    /// The port, if chosen.
    pub port: Option<u16>,
    /// Release `current` points to.
    pub current: Option<String>,
    /// Release `previous` points to.
    pub previous: Option<String>,
    /// The running process, if alive.
    pub running: Option<Running>,
    /// The release the running process's executable belongs to (from `/proc/<pid>/exe`).
    pub running_exe_release: Option<String>,
}

impl Status {
    /// The release that is running (`none` when nothing runs).
    #[must_use]
    pub fn running_release(&self) -> String {
        self.running
            .as_ref()
            .map_or_else(|| "none".to_string(), |r| r.tag.clone())
    }

    /// `key=value` lines.
    #[must_use]
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".to_string());
        vec![
            ("run_dir", self.run_dir.display().to_string()),
            (
                "port",
                self.port
                    .map_or_else(|| "none".to_string(), |p| p.to_string()),
            ),
            ("current", opt(&self.current)),
            ("previous", opt(&self.previous)),
            ("running", self.running.is_some().to_string()),
            (
                "pid",
                self.running
                    .as_ref()
                    .map_or_else(|| "none".to_string(), |r| r.pid.to_string()),
            ),
            ("running_release", self.running_release()),
            ("running_exe_release", opt(&self.running_exe_release)),
        ]
    }
}

/// Check a release name: `[A-Za-z0-9._-]+`, not `.` or `..`.
pub fn check_version(v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v != "."
        && v != ".."
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(EvidenceError::usage(format!(
            "release name must be 1-64 of [A-Za-z0-9._-], found {v:?}"
        )))
    }
}

/// Pick a free port on 127.0.0.1 (bind port 0 and release it).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(SvcError::NoFreePort)?;
    Ok(l.local_addr()
        .map(|a| a.port())
        .map_err(SvcError::NoFreePort)?)
}

impl RunDir {
    /// The run folder at `root` (made absolute against the current directory; not created yet).
    pub fn new(root: &Path) -> Result<RunDir> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir()
                .map_err(|e| EvidenceError::io("cannot read current folder", ".", e))?
                .join(root)
        };
        Ok(RunDir { root })
    }

    /// The folder.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<run-dir>/releases/<v>`.
    #[must_use]
    pub fn release_dir(&self, v: &str) -> PathBuf {
        self.root.join("releases").join(v)
    }

    /// The supervisor of the service.
    #[must_use]
    pub fn supervisor(&self) -> Supervisor {
        Supervisor::new(&self.root, "service")
    }

    /// `<run-dir>/svc-ctl.lock`.
    #[must_use]
    pub fn lock_path(&self) -> PathBuf {
        self.root.join("svc-ctl.lock")
    }

    fn link_target(&self, name: &str) -> Option<String> {
        let t = fs::read_link(self.root.join(name)).ok()?;
        t.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    /// Release `current` points to.
    #[must_use]
    pub fn current(&self) -> Option<String> {
        self.link_target("current")
    }

    /// Release `previous` points to.
    #[must_use]
    pub fn previous(&self) -> Option<String> {
        self.link_target("previous")
    }

    /// Point `name` (`current` or `previous`) at release `v` atomically: a temporary symlink renamed
    /// over the old one.
    pub fn set_link(&self, name: &str, v: &str) -> Result<()> {
        let tmp = self
            .root
            .join(format!(".{name}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(Path::new("releases").join(v), &tmp)
            .map_err(|e| EvidenceError::io("cannot create link", &tmp, e))?;
        let dst = self.root.join(name);
        fs::rename(&tmp, &dst).map_err(|e| EvidenceError::io("cannot switch link", &dst, e))?;
        if let Ok(d) = fs::File::open(&self.root) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The service port, if chosen.
    pub fn port(&self) -> Result<Option<u16>> {
        let p = self.root.join("port");
        match fs::read_to_string(&p) {
            Ok(t) => t
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|&n| n > 0)
                .map(Some)
                .ok_or_else(|| {
                    EvidenceError::parse(
                        p.display().to_string(),
                        1,
                        "port",
                        "a port 1-65535",
                        t.trim().to_string(),
                    )
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EvidenceError::io("cannot read", &p, e)),
        }
    }

    /// The port: `explicit` (recorded), else the recorded one, else a free one (recorded).
    pub fn ensure_port(&self, explicit: Option<u16>) -> Result<u16> {
        let port = match (explicit, self.port()?) {
            (Some(p), _) | (None, Some(p)) => p,
            (None, None) => free_port()?,
        };
        if self.port()? != Some(port) {
            evidence_core::io::write_atomic(
                &self.root.join("port"),
                format!("{port}\n").as_bytes(),
            )?;
        }
        Ok(port)
    }

    /// `http://127.0.0.1:<port>/health`, once a port is chosen.
    pub fn health_url(&self) -> Result<String> {
        let port = self
            .port()?
            .ok_or_else(|| SvcError::NoPort(self.root.clone()))?;
        Ok(format!("http://127.0.0.1:{port}/health"))
    }

    /// Install release `v` from `binary`: hard link (or copy) the binary, write `VERSION`, set or
    /// clear the failure marker. Re-installing replaces the files atomically.
    pub fn install(&self, v: &str, binary: &Path, fail_health: bool) -> Result<PathBuf> {
        check_version(v)?;
        if !binary.is_file() {
            return Err(SvcError::NoBinary(binary.to_path_buf()).into());
        }
        let dir = self.release_dir(v);
        fs::create_dir_all(&dir).map_err(|e| EvidenceError::io("cannot create folder", &dir, e))?;
        let dst = dir.join(BINARY);
        let tmp = dir.join(format!(".{BINARY}.{}.tmp", std::process::id()));
        let _ = fs::remove_file(&tmp);
        if fs::hard_link(binary, &tmp).is_err() {
            fs::copy(binary, &tmp)
                .map_err(|e| EvidenceError::io("cannot copy service binary to", &tmp, e))?;
        }
        fs::rename(&tmp, &dst).map_err(|e| EvidenceError::io("cannot install", &dst, e))?;
        evidence_core::io::write_atomic(&dir.join("VERSION"), format!("{v}\n").as_bytes())?;
        self.set_fail_marker(v, fail_health)?;
        Ok(dir)
    }

    /// Create or remove the failure marker of release `v`.
    pub fn set_fail_marker(&self, v: &str, on: bool) -> Result<()> {
        let m = self.release_dir(v).join(FAIL_MARKER);
        if on {
            evidence_core::io::write_atomic(&m, b"health checks of this release fail\n")
        } else {
            match fs::remove_file(&m) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(EvidenceError::io("cannot remove", &m, e)),
            }
        }
    }

    /// Start the release `current` points to (resolved now: the process is pinned to that
    /// release) and wait until it accepts TCP connections or `wait` passes.
    pub fn start_current(&self, wait: Duration) -> Result<Running> {
        let v = self
            .current()
            .ok_or_else(|| SvcError::NoCurrent(self.root.clone()))?;
        let port = self.ensure_port(None)?;
        let dir = self.release_dir(&v);
        let bin = dir.join(BINARY);
        let args: Vec<OsString> = vec![
            "--port".into(),
            port.to_string().into(),
            "--release-dir".into(),
            dir.clone().into_os_string(),
        ];
        let sup = self.supervisor();
        let r = sup.start(&bin, &args, &[], &v)?;
        // Ready when the port accepts connections AND our process says it listens there: another
        // process on the port (the recorded port was free when chosen, not reserved) must not
        // pass for the release we started.
        let ours = format!("listening on 127.0.0.1:{port} ");
        let pid = format!(" pid={}", r.pid);
        let end = Instant::now() + wait;
        loop {
            if TcpStream::connect_timeout(
                &([127, 0, 0, 1], port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
                && fs::read_to_string(sup.log_file()).is_ok_and(|log| {
                    log.lines()
                        .any(|l| l.contains(&ours) && l.trim_end().ends_with(&pid))
                })
            {
                return Ok(r);
            }
            if sup.running()?.is_none() {
                return Err(SvcError::ExitedAtStart {
                    release: v,
                    log: sup.log_file().display().to_string(),
                }
                .into());
            }
            if Instant::now() >= end {
                return Err(SvcError::NotListening {
                    release: v,
                    port,
                    secs: wait.as_secs_f64(),
                }
                .into());
            }
            signals::sleep(Duration::from_millis(5))?;
        }
    }

    /// Stop the service (SIGTERM, SIGKILL after `grace`).
    pub fn stop(&self, grace: Duration) -> Result<Stopped> {
        self.supervisor().stop(grace)
    }

    /// Stop whatever runs and start `current` again.
    pub fn restart(&self, grace: Duration, wait: Duration) -> Result<Running> {
        self.stop(grace)?;
        self.start_current(wait)
    }

    /// Deploy release `v`: (re)install it, remember the old `current` as `previous` (unless it is
    /// `v` itself), switch `current`, restart. Returns the previous release.
    pub fn deploy(
        &self,
        v: &str,
        binary: &Path,
        fail_health: bool,
        port: Option<u16>,
        wait: Duration,
    ) -> Result<Option<String>> {
        fs::create_dir_all(&self.root)
            .map_err(|e| EvidenceError::io("cannot create folder", &self.root, e))?;
        self.ensure_port(port)?;
        self.install(v, binary, fail_health)?;
        let old = self.current();
        if let Some(o) = old.as_deref().filter(|o| *o != v) {
            self.set_link("previous", o)?;
        }
        self.set_link("current", v)?;
        self.restart(Duration::from_secs(5), wait)?;
        Ok(old.filter(|o| o != v))
    }

    /// Roll back: switch `current` to `previous` (and `previous` to the failed release), restart.
    /// Returns (from, to).
    pub fn rollback(&self, wait: Duration) -> Result<(Option<String>, String)> {
        let prev = self
            .previous()
            .ok_or_else(|| SvcError::NoPrevious(self.root.clone()))?;
        if !self.release_dir(&prev).join(BINARY).is_file() {
            return Err(SvcError::NotInstalled(prev).into());
        }
        let cur = self.current();
        self.set_link("current", &prev)?;
        if let Some(c) = cur.as_deref().filter(|c| *c != prev) {
            self.set_link("previous", c)?;
        }
        self.restart(Duration::from_secs(5), wait)?;
        Ok((cur, prev))
    }

    /// The state of the folder and the process.
    pub fn status(&self) -> Result<Status> {
        let running = self.supervisor().running()?;
        let running_exe_release = running.as_ref().and_then(|r| {
            let exe = exe_of(r.pid)?;
            let rel = exe.parent()?;
            (rel.parent()? == self.root.join("releases"))
                .then(|| rel.file_name().map(|n| n.to_string_lossy().into_owned()))?
        });
        Ok(Status {
            run_dir: self.root.clone(),
            port: self.port()?,
            current: self.current(),
            previous: self.previous(),
            running,
            running_exe_release,
        })
    }
}

/// The binary next to the running executable called `name` (how the tools find `svc-ctl` and
/// `demo-service` in `target/debug` or an install folder): the one lookup in evidence-core.
pub use evidence_core::process::sibling_binary;

/// `PATH` with the folder of the running executable first, so that commands in configs can call
/// `svc-ctl` and friends by name.
#[must_use]
pub fn path_with_own_dir() -> OsString {
    let own = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = own.into_iter().collect();
    dirs.extend(std::env::split_paths(&rest));
    std::env::join_paths(dirs).unwrap_or(rest)
}
