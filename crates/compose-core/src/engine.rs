//! The container engine: the user's own (`--docker-bin`, `DOCKER_HOST`) or a private `dockerd`
//! started for a test or a drill, and the compose command that drives it.
//!
//! **Which compose.** [`ComposeCli::Plugin`] is `docker compose` (v2); [`ComposeCli::Standalone`]
//! is `docker-compose` (v1; Debian 12 ships only this one). With an explicit `--docker-bin` the
//! plugin form is used as given (so `--docker-bin /bin/false` fails at `compose_up`, as the
//! original did), unless the binary is itself named `docker-compose`. Otherwise it is detected:
//! `docker compose version` first, then `docker-compose` on `PATH`.
//!
//! **Which docker.** Debian's `/usr/bin/docker` may be shadowed by another CLI in
//! `/usr/local/bin` (seen here: a 28.2 CLI without the compose plugin). The user's engine uses the
//! `docker` on `PATH` (or `--docker-bin`); a private engine prefers `/usr/bin/docker`, the CLI of
//! the same package as `dockerd`.
//!
//! **The private engine** ([`PrivateEngine`]) runs `dockerd` with `--iptables=false
//! --ip-forward=false --ip-masq=false --bridge=none`, its own `--data-root` (where images stay
//! cached between runs), `--exec-root`, unix socket, pid file, log and an empty `--config-file`, so
//! it neither touches the host firewall, `net.ipv4.ip_forward`, `/var/lib/docker` nor a host
//! `daemon.json`. Containers reach each other on the project's bridge network and the host reaches
//! them through `docker-proxy` on 127.0.0.1; they have no route to the internet (no NAT), which is
//! why images are built with `--network host`. Stopping sends SIGTERM and waits, kills leftovers of
//! this engine only (processes whose command line names its containerd folder), unmounts the
//! `nsfs` mounts it leaves (`exec/netns/default`), and removes the socket and exec root, and the
//! trust key and plugin folder `dockerd` creates outside its roots when they were not there
//! before; the data root stays.

use std::ffi::OsString;
use std::fs;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use evidence_core::supervisor::{pid_alive, start_ticks};
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Result};

use crate::step::{Step, run_step};

/// How compose is invoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComposeCli {
    /// `<docker> compose ...` (Compose v2 plugin).
    Plugin,
    /// `<path> ...`: the standalone `docker-compose` (v1, or v2's standalone binary).
    Standalone(PathBuf),
}

/// Options for the user's engine.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// The docker CLI (`--docker-bin`); `None`: `docker` on `PATH`, with compose detected.
    pub docker_bin: Option<PathBuf>,
    /// A standalone compose binary to use instead of detection (`docker-compose`).
    pub compose_bin: Option<PathBuf>,
    /// `DOCKER_HOST` for every command (`unix:///path/docker.sock`, `ssh://ops@host`); `None`
    /// keeps the caller's environment.
    pub docker_host: Option<String>,
}

/// A handle on an engine: which CLI, which compose, which daemon. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: PathBuf,
    compose: ComposeCli,
    docker_host: Option<String>,
}

/// Default timeout of short engine queries (`inspect`, `ps`, `version`).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);

impl Engine {
    /// The user's engine. Runs at most two short `version` commands to detect compose when
    /// neither `docker_bin` nor `compose_bin` is given; never fails (a missing binary shows up as
    /// a failed step later, where the original failed).
    #[must_use]
    pub fn external(opts: &EngineOptions) -> Engine {
        let docker = opts
            .docker_bin
            .clone()
            .unwrap_or_else(|| PathBuf::from("docker"));
        let compose = if let Some(c) = &opts.compose_bin {
            ComposeCli::Standalone(c.clone())
        } else if let Some(d) = &opts.docker_bin {
            if d.file_name().is_some_and(|n| n == "docker-compose") {
                ComposeCli::Standalone(d.clone())
            } else {
                ComposeCli::Plugin
            }
        } else {
            detect_compose(&docker, opts.docker_host.as_deref())
        };
        // `--docker-bin docker-compose`: plain docker commands still need a docker CLI.
        let docker = if matches!(&compose, ComposeCli::Standalone(p) if *p == docker) {
            PathBuf::from("docker")
        } else {
            docker
        };
        Engine {
            docker,
            compose,
            docker_host: opts.docker_host.clone(),
        }
    }

    /// An engine handle from explicit parts (no detection).
    #[must_use]
    pub fn from_parts(docker: PathBuf, compose: ComposeCli, docker_host: Option<String>) -> Engine {
        Engine {
            docker,
            compose,
            docker_host,
        }
    }

    /// The docker CLI used.
    #[must_use]
    pub fn docker_bin(&self) -> &Path {
        &self.docker
    }

    /// The compose command used.
    #[must_use]
    pub fn compose_cli(&self) -> &ComposeCli {
        &self.compose
    }

    /// The `DOCKER_HOST` given to every command, if any.
    #[must_use]
    pub fn docker_host(&self) -> Option<&str> {
        self.docker_host.as_deref()
    }

    /// Environment added to every command (`DOCKER_HOST` when set).
    #[must_use]
    pub fn env(&self) -> Vec<(String, String)> {
        self.docker_host
            .iter()
            .map(|h| ("DOCKER_HOST".to_string(), h.clone()))
            .collect()
    }

    /// Program and leading arguments of the compose command: `docker` with `compose` first, or
    /// `docker-compose` with nothing.
    #[must_use]
    pub fn compose_prefix(&self) -> (OsString, Vec<OsString>) {
        match &self.compose {
            ComposeCli::Plugin => (
                self.docker.clone().into_os_string(),
                vec![OsString::from("compose")],
            ),
            ComposeCli::Standalone(p) => (p.clone().into_os_string(), Vec::new()),
        }
    }

    /// Run `docker <args>` as step `name`.
    pub fn docker(&self, name: &str, args: &[OsString], timeout: Duration) -> Result<Step> {
        run_step(
            name,
            &self.docker.clone().into_os_string(),
            args,
            &self.env(),
            timeout,
        )
    }

    /// Run `<compose> <args>` as step `name`.
    pub fn compose(&self, name: &str, args: &[OsString], timeout: Duration) -> Result<Step> {
        let (prog, mut all) = self.compose_prefix();
        all.extend(args.iter().cloned());
        run_step(name, &prog, &all, &self.env(), timeout)
    }

    /// The server version (`docker version --format {{.Server.Version}}`), or the failed step.
    pub fn server_version(&self) -> Result<std::result::Result<String, Step>> {
        let s = self.docker(
            "engine_version",
            &os(&["version", "--format", "{{.Server.Version}}"]),
            QUERY_TIMEOUT,
        )?;
        if s.ok {
            Ok(Ok(s.stdout.trim().to_string()))
        } else {
            Ok(Err(s))
        }
    }

    /// The compose version line (`docker compose version` / `docker-compose version --short`).
    pub fn compose_version(&self) -> Result<std::result::Result<String, Step>> {
        let s = self.compose(
            "compose_version",
            &os(&["version", "--short"]),
            QUERY_TIMEOUT,
        )?;
        if s.ok {
            Ok(Ok(s.stdout.trim().to_string()))
        } else {
            Ok(Err(s))
        }
    }

    /// True when the image `reference` exists in the engine.
    pub fn image_exists(&self, reference: &str) -> Result<bool> {
        let s = self.docker(
            "image_inspect",
            &os(&["image", "inspect", "--format", "{{.Id}}", reference]),
            QUERY_TIMEOUT,
        )?;
        Ok(s.ok)
    }
}

/// `&[&str]` → `Vec<OsString>`.
pub(crate) fn os(args: &[&str]) -> Vec<OsString> {
    args.iter().map(OsString::from).collect()
}

fn detect_compose(docker: &Path, host: Option<&str>) -> ComposeCli {
    let env: Vec<(String, String)> = host
        .iter()
        .map(|h| ("DOCKER_HOST".to_string(), (*h).to_string()))
        .collect();
    let probe = run_step(
        "compose_detect",
        &docker.as_os_str().to_os_string(),
        &os(&["compose", "version"]),
        &env,
        Duration::from_secs(10),
    );
    if probe.is_ok_and(|s| s.ok) {
        return ComposeCli::Plugin;
    }
    match find_on_path("docker-compose") {
        Some(p) => ComposeCli::Standalone(p),
        None => ComposeCli::Plugin,
    }
}

/// The first `name` on `PATH`.
#[must_use]
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    })
}

/// Options for a private `dockerd`.
#[derive(Debug, Clone)]
pub struct PrivateEngineOptions {
    /// Run folder: `docker.sock`, `exec/` (exec root), `dockerd.pid`, `dockerd.log`,
    /// `daemon.json`. Keep its path short: the socket path must fit in 107 bytes.
    pub run_dir: PathBuf,
    /// Data root (images, volumes); reused between runs as the image cache.
    pub data_root: PathBuf,
    /// The daemon binary (`dockerd` on `PATH` by default).
    pub dockerd: PathBuf,
    /// The docker CLI (default `/usr/bin/docker` when present, else `docker` on `PATH`).
    pub docker_bin: Option<PathBuf>,
    /// A standalone compose binary (default: detected against the new daemon).
    pub compose_bin: Option<PathBuf>,
    /// How long to wait for the API to answer.
    pub ready_timeout: Duration,
    /// How long to wait for `dockerd` to exit after SIGTERM before SIGKILL.
    pub stop_timeout: Duration,
}

impl PrivateEngineOptions {
    /// Defaults for `run_dir` and `data_root`: `dockerd` on `PATH`, 30 s to get ready, 30 s to
    /// stop.
    #[must_use]
    pub fn new(run_dir: impl Into<PathBuf>, data_root: impl Into<PathBuf>) -> Self {
        PrivateEngineOptions {
            run_dir: run_dir.into(),
            data_root: data_root.into(),
            dockerd: PathBuf::from("dockerd"),
            docker_bin: None,
            compose_bin: None,
            ready_timeout: Duration::from_secs(30),
            stop_timeout: Duration::from_secs(30),
        }
    }

    fn socket(&self) -> PathBuf {
        self.run_dir.join("docker.sock")
    }
    fn pid_file(&self) -> PathBuf {
        self.run_dir.join("dockerd.pid")
    }
    fn exec_root(&self) -> PathBuf {
        self.run_dir.join("exec")
    }
    /// `<run_dir>/dockerd.log`.
    #[must_use]
    pub fn log_file(&self) -> PathBuf {
        self.run_dir.join("dockerd.log")
    }
}

/// A `dockerd` this process started (or attached to from its pid file). Stopped by
/// [`PrivateEngine::stop`]; dropping it without stopping stops it too (best effort), unless
/// [`PrivateEngine::detach`]ed.
#[derive(Debug)]
pub struct PrivateEngine {
    opts: PrivateEngineOptions,
    engine: Engine,
    pid: u32,
    ticks: u64,
    child: Option<Child>,
    stopped: bool,
    /// The `engine_start` step (for an attached engine: a zero-length step saying so).
    pub start_step: Step,
}

impl PrivateEngine {
    /// Start `dockerd` and wait until its API answers. If the run folder's pid file names a live
    /// `dockerd`, attach to it instead (`start_step.detail` says `already running`).
    pub fn start(opts: PrivateEngineOptions) -> Result<PrivateEngine> {
        if let Some(e) = Self::attach(opts.clone())? {
            return Ok(e);
        }
        let sock = opts.socket();
        if sock.as_os_str().len() > 100 {
            return Err(EvidenceError::usage(format!(
                "run folder {} is too long for a unix socket path; use a shorter one",
                opts.run_dir.display()
            )));
        }
        for d in [&opts.run_dir, &opts.data_root, &opts.exec_root()] {
            fs::create_dir_all(d).map_err(|e| EvidenceError::io("cannot create folder", d, e))?;
        }
        let _ = fs::remove_file(&sock);
        let _ = fs::remove_file(opts.pid_file());
        record_host_paths();
        let config = opts.run_dir.join("daemon.json");
        fs::write(&config, "{}\n").map_err(|e| EvidenceError::io("cannot write", &config, e))?;
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(opts.log_file())
            .map_err(|e| EvidenceError::io("cannot open", opts.log_file(), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| EvidenceError::io("cannot open", opts.log_file(), e))?;
        let args: Vec<OsString> = vec![
            "--iptables=false".into(),
            "--ip-forward=false".into(),
            "--ip-masq=false".into(),
            "--bridge=none".into(),
            "--config-file".into(),
            config.into_os_string(),
            "--data-root".into(),
            opts.data_root.clone().into_os_string(),
            "--exec-root".into(),
            opts.exec_root().into_os_string(),
            "-H".into(),
            format!("unix://{}", sock.display()).into(),
            "--pidfile".into(),
            opts.pid_file().into_os_string(),
        ];
        let mut argv = vec![opts.dockerd.display().to_string()];
        argv.extend(args.iter().map(|a| a.to_string_lossy().into_owned()));
        let started_ns = now_ns();
        let start = Instant::now();
        let mut child = Command::new(&opts.dockerd)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                EvidenceError::failed(format!("cannot start {}: {e}", opts.dockerd.display()))
            })?;
        let pid = child.id();
        let docker_host = format!("unix://{}", sock.display());
        let deadline = start + opts.ready_timeout;
        let mut step = Step::internal("engine_start", argv, start, started_ns);
        loop {
            if let Ok(Some(st)) = child.try_wait() {
                step.duration = start.elapsed();
                step.exit_code = st.code();
                step.detail = format!("dockerd exited at start ({st})");
                step.stderr = log_tail(&opts.log_file());
                return Err(EvidenceError::failed(step.failure_message()));
            }
            if UnixStream::connect(&sock).is_ok() {
                break;
            }
            if Instant::now() >= deadline || evidence_core::signals::interrupted() {
                let _ = kill(Pid::from_raw(pid_i32(pid)), Signal::SIGKILL);
                let _ = child.wait();
                step.duration = start.elapsed();
                step.detail = format!(
                    "the API did not answer within {:.1}s",
                    opts.ready_timeout.as_secs_f64()
                );
                step.stderr = log_tail(&opts.log_file());
                return Err(EvidenceError::failed(step.failure_message()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let docker = opts.docker_bin.clone().unwrap_or_else(default_docker_cli);
        let compose = match &opts.compose_bin {
            Some(c) => ComposeCli::Standalone(c.clone()),
            None => detect_compose(&docker, Some(&docker_host)),
        };
        let engine = Engine::from_parts(docker, compose, Some(docker_host));
        let mut me = PrivateEngine {
            opts,
            engine,
            pid,
            ticks: start_ticks(pid).unwrap_or(0),
            child: Some(child),
            stopped: false,
            start_step: step,
        };
        // The socket accepts before every subsystem is up: one real API call makes it ready.
        let v = loop {
            match me.engine.server_version()? {
                Ok(v) => break v,
                Err(s) if Instant::now() >= deadline => {
                    let msg = s.failure_message();
                    let _ = me.stop_inner();
                    return Err(EvidenceError::failed(msg));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        me.start_step.duration = start.elapsed();
        me.start_step.ok = true;
        me.start_step.exit_code = None;
        me.start_step.detail = format!("dockerd {v} ready (pid {pid})");
        Ok(me)
    }

    /// Attach to a live `dockerd` recorded in `opts.run_dir`'s pid file (started by an earlier
    /// process), or `None` when none is running there.
    pub fn attach(opts: PrivateEngineOptions) -> Result<Option<PrivateEngine>> {
        let Some(pid) = read_pid(&opts.pid_file()) else {
            return Ok(None);
        };
        if !pid_alive(pid) || !is_dockerd(pid) {
            return Ok(None);
        }
        let docker_host = format!("unix://{}", opts.socket().display());
        let docker = opts.docker_bin.clone().unwrap_or_else(default_docker_cli);
        let compose = match &opts.compose_bin {
            Some(c) => ComposeCli::Standalone(c.clone()),
            None => detect_compose(&docker, Some(&docker_host)),
        };
        let mut step = Step::internal("engine_start", Vec::new(), Instant::now(), now_ns());
        step.ok = true;
        step.detail = format!("already running (pid {pid})");
        Ok(Some(PrivateEngine {
            engine: Engine::from_parts(docker, compose, Some(docker_host)),
            ticks: start_ticks(pid).unwrap_or(0),
            pid,
            child: None,
            stopped: false,
            start_step: step,
            opts,
        }))
    }

    /// The handle to pass to [`crate::Project`] and [`crate::ImageCache`].
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The daemon's pid.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The options it was started with.
    #[must_use]
    pub fn options(&self) -> &PrivateEngineOptions {
        &self.opts
    }

    /// Leave the daemon running after this handle is gone (a drill's `up` in one process, its
    /// `down` in another): a later [`PrivateEngine::attach`] or [`PrivateEngine::start`] on the
    /// same run folder finds it by its pid file. Without this, dropping the handle stops it.
    pub fn detach(mut self) {
        self.stopped = true;
        // The child handle is dropped without waiting: dockerd runs on, reparented when this
        // process exits.
        self.child = None;
    }

    /// Stop the daemon: SIGTERM, wait up to `stop_timeout`, then SIGKILL its process group; kill
    /// any process left whose command line names its containerd folder (containerd, shims); unmount
    /// every mount under the run folder and the data root; remove the socket, pid file and exec
    /// root, and the [`DOCKERD_HOST_PATHS`] private engines created (once no `dockerd` runs).
    /// Returns the `engine_stop` step (`ok` false when SIGKILL was needed).
    pub fn stop(mut self) -> Result<Step> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<Step> {
        self.stopped = true;
        let started_ns = now_ns();
        let start = Instant::now();
        let argv = vec![
            "kill".to_string(),
            "-TERM".to_string(),
            self.pid.to_string(),
        ];
        let mut step = Step::internal("engine_stop", argv, start, started_ns);
        let ours = || {
            self.child.is_some()
                || (pid_alive(self.pid)
                    && (self.ticks == 0 || start_ticks(self.pid) == Some(self.ticks)))
        };
        let mut killed = false;
        if ours() {
            let _ = kill(Pid::from_raw(pid_i32(self.pid)), Signal::SIGTERM);
            let deadline = start + self.opts.stop_timeout;
            loop {
                let gone = match &mut self.child {
                    Some(c) => c.try_wait().ok().flatten().is_some(),
                    None => !pid_alive(self.pid),
                };
                if gone {
                    break;
                }
                if Instant::now() >= deadline {
                    killed = true;
                    let _ =
                        nix::sys::signal::killpg(Pid::from_raw(pid_i32(self.pid)), Signal::SIGKILL);
                    if let Some(c) = &mut self.child {
                        let _ = c.wait();
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // containerd exits with dockerd; shims may linger a moment. Anything still naming our
        // containerd folder (`<exec root>/containerd`: containerd's config, the shims' address) is
        // ours: wait briefly, then kill it. Not the whole run folder: a user's shell or tool may
        // have it in its arguments.
        let marker = self
            .opts
            .exec_root()
            .join("containerd")
            .display()
            .to_string();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let left = processes_mentioning(&marker);
            if left.is_empty() {
                break;
            }
            if Instant::now() >= end {
                for p in left {
                    let _ = kill(Pid::from_raw(pid_i32(p)), Signal::SIGKILL);
                }
                killed = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut errors = Vec::new();
        for root in [&self.opts.run_dir, &self.opts.data_root] {
            for m in mounts_under(root) {
                let s = run_step(
                    "umount",
                    &OsString::from("umount"),
                    &[m.clone().into_os_string()],
                    &[],
                    Duration::from_secs(10),
                )?;
                if !s.ok {
                    // A busy mount: detach it lazily rather than leave it.
                    let l = run_step(
                        "umount",
                        &OsString::from("umount"),
                        &["-l".into(), m.clone().into_os_string()],
                        &[],
                        Duration::from_secs(10),
                    )?;
                    if !l.ok {
                        errors.push(format!("cannot unmount {}", m.display()));
                    }
                }
            }
        }
        let _ = fs::remove_file(self.opts.socket());
        let _ = fs::remove_file(self.opts.pid_file());
        remove_created_host_paths();
        if mounts_under(&self.opts.exec_root()).is_empty() {
            let _ = fs::remove_dir_all(self.opts.exec_root());
        }
        step.duration = start.elapsed();
        step.ok = !killed && errors.is_empty();
        step.detail = if killed {
            "dockerd did not exit after SIGTERM: killed".to_string()
        } else if errors.is_empty() {
            "dockerd exited".to_string()
        } else {
            errors.join("; ")
        };
        Ok(step)
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.stop_inner();
        }
    }
}

/// Paths outside its roots that `dockerd` creates whatever its flags: its trust key (20.10) and
/// the plugin discovery folder.
pub const DOCKERD_HOST_PATHS: &[&str] = &[
    "/etc/docker/key.json",
    "/etc/docker",
    "/run/docker/plugins",
    "/run/docker",
];

/// Where private engines note the [`DOCKERD_HOST_PATHS`] they created (under `/run`, so a reboot
/// forgets it). Shared by every private engine on the host: the last one to stop removes them,
/// whichever engine created them.
const CREATED_FILE: &str = "/run/ctp-ops-dockerd-created";

/// Before a start: add to [`CREATED_FILE`] which of [`DOCKERD_HOST_PATHS`] do not exist yet.
fn record_host_paths() {
    let absent: String = DOCKERD_HOST_PATHS
        .iter()
        .filter(|p| fs::symlink_metadata(p).is_err())
        .map(|p| format!("{p}\n"))
        .collect();
    if absent.is_empty() {
        return;
    }
    if let Ok(mut f) = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(CREATED_FILE)
    {
        let _ = std::io::Write::write_all(&mut f, absent.as_bytes());
    }
}

/// After a stop: when no `dockerd` runs any more, remove what private engines created (files;
/// folders only when empty) and forget the list.
fn remove_created_host_paths() {
    let Ok(list) = fs::read_to_string(CREATED_FILE) else {
        return;
    };
    let others = fs::read_dir("/proc").is_ok_and(|rd| {
        rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .any(|p| pid_alive(p) && is_dockerd(p))
    });
    if others {
        return;
    }
    // In DOCKERD_HOST_PATHS order: the key before its folder, the plugin folder before /run/docker.
    for p in DOCKERD_HOST_PATHS {
        if !list.lines().any(|l| l == *p) {
            continue;
        }
        let path = Path::new(p);
        if path.is_dir() {
            let _ = fs::remove_dir(path);
        } else {
            let _ = fs::remove_file(path);
        }
    }
    let _ = fs::remove_file(CREATED_FILE);
}

fn pid_i32(pid: u32) -> i32 {
    i32::try_from(pid).unwrap_or(i32::MAX)
}

fn default_docker_cli() -> PathBuf {
    let debian = PathBuf::from("/usr/bin/docker");
    if debian.is_file() {
        debian
    } else {
        PathBuf::from("docker")
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn is_dockerd(pid: u32) -> bool {
    fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .and_then(|c| c.split(|b| *b == 0).next().map(|a| a.ends_with(b"dockerd")))
        .unwrap_or(false)
}

fn log_tail(path: &Path) -> String {
    let s = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

/// Pids of live processes (not this one) whose command line contains `marker`.
#[must_use]
pub fn processes_mentioning(marker: &str) -> Vec<u32> {
    let me = std::process::id();
    let Ok(rd) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let needle = marker.as_bytes();
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| *p != me && pid_alive(*p))
        .filter(|p| {
            fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// Mount points at or under `root` (from `/proc/self/mountinfo`), deepest first.
#[must_use]
pub fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    let root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut v: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mount(m)))
        .filter(|m| m.starts_with(&root))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v.dedup();
    v
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_docker_bin_uses_the_plugin_form() {
        let e = Engine::external(&EngineOptions {
            docker_bin: Some(PathBuf::from("/bin/false")),
            ..EngineOptions::default()
        });
        assert_eq!(e.compose_cli(), &ComposeCli::Plugin);
        let s = e
            .compose("compose_up", &os(&["up", "-d"]), Duration::from_secs(10))
            .unwrap();
        assert!(!s.ok);
        assert_eq!(s.exit_code, Some(1));
        assert_eq!(s.command_line(), "/bin/false compose up -d");
    }

    #[test]
    fn docker_compose_as_docker_bin_is_standalone() {
        let e = Engine::external(&EngineOptions {
            docker_bin: Some(PathBuf::from("/opt/x/docker-compose")),
            ..EngineOptions::default()
        });
        assert_eq!(
            e.compose_cli(),
            &ComposeCli::Standalone(PathBuf::from("/opt/x/docker-compose"))
        );
        assert_eq!(e.docker_bin(), Path::new("docker"));
    }

    #[test]
    fn a_missing_binary_is_a_failed_step() {
        let e = Engine::external(&EngineOptions {
            docker_bin: Some(PathBuf::from("/nonexistent/docker")),
            ..EngineOptions::default()
        });
        let s = e
            .compose("compose_up", &os(&["up"]), Duration::from_secs(5))
            .unwrap();
        assert!(!s.ok);
        assert_eq!(s.exit_code, None);
        assert!(s.detail.contains("cannot start"), "{}", s.detail);
    }

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mount(r"/a\040b"), "/a b");
        assert_eq!(unescape_mount("/plain"), "/plain");
    }
}
