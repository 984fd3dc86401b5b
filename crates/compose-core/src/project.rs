//! A compose project: one compose file, a project name, an optional env file, on one [`Engine`].
//!
//! The compose base command is `<compose> [--env-file E] -f F -p P`, with `--env-file` added only
//! when E exists, as the original did. Every operation returns measured [`Step`]s.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Result};

use crate::engine::{Engine, QUERY_TIMEOUT, os};
use crate::ps::{PsRow, rows_from_inspect};
use crate::step::Step;

/// Labels of each service: service → label → value.
pub type ServiceLabels = BTreeMap<String, BTreeMap<String, String>>;

/// How often [`Project::wait_healthy`] polls.
pub const POLL_EVERY: Duration = Duration::from_millis(250);

/// A compose project on an engine.
#[derive(Debug, Clone)]
pub struct Project {
    engine: Engine,
    file: PathBuf,
    name: String,
    env_file: Option<PathBuf>,
}

/// What [`Project::up`] did.
#[derive(Debug, Clone)]
pub struct UpOutcome {
    /// `compose_config` (listing the services), `compose_up`, `wait_healthy`, in order; stops at
    /// the first failed one.
    pub steps: Vec<Step>,
    /// The last rows seen.
    pub rows: Vec<PsRow>,
    /// True when every service of the file has a running, healthy container.
    pub healthy: bool,
    /// From the start of `compose_up` to the moment every service was healthy (or to the end).
    pub up_to_healthy: Duration,
}

impl UpOutcome {
    /// The first failed step, if any.
    #[must_use]
    pub fn failed_step(&self) -> Option<&Step> {
        self.steps.iter().find(|s| !s.ok)
    }
}

impl Project {
    /// A project. Errors (bad input) when the compose file does not exist
    /// (`compose file not found: F`, the original's message) or the project name is not
    /// `[a-z0-9][a-z0-9_-]*` (compose would silently rewrite it, and the containers' labels would
    /// not match). `env_file` is recorded as given and passed only when it exists.
    pub fn new(
        engine: &Engine,
        file: impl Into<PathBuf>,
        name: &str,
        env_file: Option<PathBuf>,
    ) -> Result<Project> {
        let file = file.into();
        if !file.is_file() {
            return Err(EvidenceError::usage(format!(
                "compose file not found: {}",
                file.display()
            )));
        }
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid {
            return Err(EvidenceError::usage(format!(
                "project name {name:?}: expected lower-case letters, digits, '-' and '_', \
                 starting with a letter or digit"
            )));
        }
        Ok(Project {
            engine: engine.clone(),
            file,
            name: name.to_string(),
            env_file,
        })
    }

    /// The engine.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compose file.
    #[must_use]
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The project name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The env file as given (it may not exist).
    #[must_use]
    pub fn env_file(&self) -> Option<&Path> {
        self.env_file.as_deref()
    }

    /// `[--env-file E] -f F -p P` followed by `sub`.
    #[must_use]
    pub fn compose_args(&self, sub: &[&str]) -> Vec<OsString> {
        let mut a = Vec::new();
        if let Some(e) = self.env_file.as_ref().filter(|e| e.is_file()) {
            a.push(OsString::from("--env-file"));
            a.push(e.clone().into_os_string());
        }
        a.push("-f".into());
        a.push(self.file.clone().into_os_string());
        a.push("-p".into());
        a.push(self.name.clone().into());
        a.extend(sub.iter().map(OsString::from));
        a
    }

    /// The full compose command line for `sub`, for dry-run lines and `STEP_n_COMMAND`
    /// (words shell-quoted, never executed through a shell).
    #[must_use]
    pub fn command_line(&self, sub: &[&str]) -> String {
        let (prog, mut all) = self.engine.compose_prefix();
        all.extend(self.compose_args(sub));
        std::iter::once(prog)
            .chain(all)
            .map(|a| evidence_core::process::shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The services the file defines (`compose config --services`), as step `compose_config`.
    pub fn services(&self) -> Result<(Step, Vec<String>)> {
        let s = self.engine.compose(
            "compose_config",
            &self.compose_args(&["config", "--services"]),
            QUERY_TIMEOUT,
        )?;
        let mut v: Vec<String> = s
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        v.sort();
        Ok((s, v))
    }

    /// `compose up -d` (step `compose_up`; compose itself waits for `depends_on` conditions),
    /// bounded by `timeout`.
    pub fn start(&self, timeout: Duration) -> Result<Step> {
        self.start_services(&[], false, timeout)
    }

    /// `compose up -d [--no-deps] [services...]` (step `compose_up`); no services: all of them.
    /// `no_deps` leaves the services they depend on alone (the multi-host file's second `up`,
    /// whose env file must not recreate the primary's containers).
    pub fn start_services(
        &self,
        services: &[String],
        no_deps: bool,
        timeout: Duration,
    ) -> Result<Step> {
        let mut sub: Vec<&str> = vec!["up", "-d"];
        if no_deps {
            sub.push("--no-deps");
        }
        sub.extend(services.iter().map(String::as_str));
        self.engine
            .compose("compose_up", &self.compose_args(&sub), timeout)
    }

    /// Every service of the file with its labels, variables resolved with this project's env file
    /// (`compose config`, step `compose_config`). For the multi-host file: which services run on
    /// which host (`quant_hft.host`) in which role (`quant_hft.role`).
    pub fn service_labels(&self) -> Result<(Step, ServiceLabels)> {
        let s = self.engine.compose(
            "compose_config",
            &self.compose_args(&["config"]),
            QUERY_TIMEOUT,
        )?;
        if !s.ok {
            return Ok((s, BTreeMap::new()));
        }
        let v: yaml_serde::Value = yaml_serde::from_str(&s.stdout).map_err(|e| {
            EvidenceError::parse("compose config", 0, "services", "YAML", e.to_string())
        })?;
        let mut out = BTreeMap::new();
        if let Some(m) = v.get("services").and_then(yaml_serde::Value::as_mapping) {
            for (name, svc) in m {
                let Some(name) = name.as_str() else { continue };
                let mut labels = BTreeMap::new();
                match svc.get("labels") {
                    Some(yaml_serde::Value::Mapping(l)) => {
                        for (k, v) in l {
                            if let Some(k) = k.as_str() {
                                labels.insert(k.to_string(), yaml_scalar(v));
                            }
                        }
                    }
                    Some(yaml_serde::Value::Sequence(l)) => {
                        for item in l.iter().filter_map(yaml_serde::Value::as_str) {
                            let (k, v) = item.split_once('=').unwrap_or((item, ""));
                            labels.insert(k.to_string(), v.to_string());
                        }
                    }
                    _ => {}
                }
                out.insert(name.to_string(), labels);
            }
        }
        // The resolved config holds the env file's passwords: keep no copy in the step.
        let mut s = s;
        s.stdout = String::new();
        Ok((s, out))
    }

    /// Bring the project up and wait until every service of the file has a running container
    /// whose healthcheck (if any) says `healthy`, or `deadline` passes. Steps: `compose_config`,
    /// `compose_up`, `wait_healthy`. A failed step ends it; `healthy` false then.
    pub fn up(&self, deadline: Instant) -> Result<UpOutcome> {
        self.up_services(&[], false, deadline)
    }

    /// [`Project::up`] for some services only (none: all), waiting for those to be healthy;
    /// `no_deps` as in [`Project::start_services`]. Steps: `compose_config`, `compose_up`,
    /// `wait_healthy` (rename them, e.g. `compose_up_standby`, for the original's step names).
    pub fn up_services(
        &self,
        only: &[String],
        no_deps: bool,
        deadline: Instant,
    ) -> Result<UpOutcome> {
        let mut out = UpOutcome {
            steps: Vec::new(),
            rows: Vec::new(),
            healthy: false,
            up_to_healthy: Duration::ZERO,
        };
        let (cfg, all) = self.services()?;
        let ok = cfg.ok;
        out.steps.push(cfg);
        if !ok {
            return Ok(out);
        }
        if let Some(u) = only.iter().find(|s| !all.contains(s)) {
            return Err(EvidenceError::usage(format!(
                "service {u} is not in {}",
                self.file.display()
            )));
        }
        let services = if only.is_empty() { all } else { only.to_vec() };
        let start = Instant::now();
        let up = self.start_services(only, no_deps, remaining(deadline))?;
        let ok = up.ok;
        out.steps.push(up);
        if !ok {
            out.up_to_healthy = start.elapsed();
            return Ok(out);
        }
        let (wait, rows) = self.wait_healthy(&services, deadline)?;
        out.healthy = wait.ok;
        out.up_to_healthy = start.elapsed();
        out.steps.push(wait);
        out.rows = rows;
        Ok(out)
    }

    /// Poll [`Project::ps`] every [`POLL_EVERY`] until each of `services` has a healthy row (the
    /// §1.7 rule) or `deadline` passes. Gives up early when a container has exited or died (it
    /// will not become healthy by itself). Step `wait_healthy`; its detail names what was not
    /// healthy.
    pub fn wait_healthy(
        &self,
        services: &[String],
        deadline: Instant,
    ) -> Result<(Step, Vec<PsRow>)> {
        let started_ns = now_ns();
        let start = Instant::now();
        let argv = vec![
            "wait-healthy".to_string(),
            format!("--services={}", services.join(",")),
        ];
        let mut step = Step::internal("wait_healthy", argv, start, started_ns);
        loop {
            evidence_core::signals::check()?;
            let (ps, rows) = self.ps()?;
            if !ps.ok {
                step.duration = start.elapsed();
                step.detail = ps.failure_message();
                return Ok((step, rows));
            }
            let bad = not_healthy(services, &rows);
            if bad.is_empty() {
                step.ok = true;
                step.duration = start.elapsed();
                step.detail = format!("{} services healthy", services.len());
                return Ok((step, rows));
            }
            let dead = rows
                .iter()
                .any(|r| r.state == "exited" || r.state == "dead");
            if dead || Instant::now() >= deadline {
                step.duration = start.elapsed();
                step.detail = format!(
                    "{} of {} services not healthy{}: {}",
                    bad.len(),
                    services.len(),
                    if dead { " (a container exited)" } else { "" },
                    bad.join(", ")
                );
                return Ok((step, rows));
            }
            std::thread::sleep(POLL_EVERY.min(remaining(deadline)));
        }
    }

    /// The project's containers, exited ones included: `docker ps -a` filtered on the project
    /// label, then `docker inspect` (the same for Compose v1 and v2). One step `compose_ps`.
    pub fn ps(&self) -> Result<(Step, Vec<PsRow>)> {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        let mut ps = self.engine.docker(
            "compose_ps",
            &os(&["ps", "-a", "-q", "--no-trunc", "--filter", &filter]),
            QUERY_TIMEOUT,
        )?;
        if !ps.ok {
            return Ok((ps, Vec::new()));
        }
        let ids: Vec<OsString> = ps.stdout.split_whitespace().map(OsString::from).collect();
        if ids.is_empty() {
            return Ok((ps, Vec::new()));
        }
        let mut args = vec![OsString::from("inspect")];
        args.extend(ids);
        let insp = self.engine.docker("compose_ps", &args, QUERY_TIMEOUT)?;
        ps.duration += insp.duration;
        if !insp.ok {
            // A container removed between the two calls: try once more.
            return self.ps_retry();
        }
        let rows = rows_from_inspect(&insp.stdout, "docker inspect")?;
        // `docker inspect` shows each container's environment, passwords included: the rows keep
        // what they need and the step keeps no copy.
        ps.stdout = String::new();
        Ok((ps, rows))
    }

    fn ps_retry(&self) -> Result<(Step, Vec<PsRow>)> {
        let filter = format!("label=com.docker.compose.project={}", self.name);
        let mut ps = self.engine.docker(
            "compose_ps",
            &os(&["ps", "-a", "-q", "--no-trunc", "--filter", &filter]),
            QUERY_TIMEOUT,
        )?;
        let ids: Vec<OsString> = ps.stdout.split_whitespace().map(OsString::from).collect();
        if !ps.ok || ids.is_empty() {
            return Ok((ps, Vec::new()));
        }
        let mut args = vec![OsString::from("inspect")];
        args.extend(ids);
        let insp = self.engine.docker("compose_ps", &args, QUERY_TIMEOUT)?;
        ps.duration += insp.duration;
        if !insp.ok {
            ps.ok = false;
            ps.exit_code = insp.exit_code;
            ps.detail = insp.detail.clone();
            ps.stderr = insp.stderr;
            return Ok((ps, Vec::new()));
        }
        let rows = rows_from_inspect(&insp.stdout, "docker inspect")?;
        // `docker inspect` shows each container's environment, passwords included: the rows keep
        // what they need and the step keeps no copy.
        ps.stdout = String::new();
        Ok((ps, rows))
    }

    /// The host address where `service`'s `container_port`/tcp is published (from its running
    /// container). `0.0.0.0`/`::` bindings are returned as the loopback address to connect to.
    pub fn published(&self, service: &str, container_port: u16) -> Result<SocketAddr> {
        let (ps, rows) = self.ps()?;
        if !ps.ok {
            return Err(EvidenceError::failed(ps.failure_message()));
        }
        published_in(&rows, service, container_port)
    }

    /// `compose kill <service>` (SIGKILL), step `compose_kill`.
    pub fn kill(&self, service: &str) -> Result<Step> {
        self.engine.compose(
            "compose_kill",
            &self.compose_args(&["kill", service]),
            QUERY_TIMEOUT,
        )
    }

    /// `compose down --remove-orphans --timeout 10`, plus `-v` (named volumes: the data) when
    /// `purge`; step `compose_down`, bounded by `timeout`.
    pub fn down(&self, purge: bool, timeout: Duration) -> Result<Step> {
        let mut sub = vec!["down", "--remove-orphans", "--timeout", "10"];
        if purge {
            sub.push("-v");
        }
        self.engine
            .compose("compose_down", &self.compose_args(&sub), timeout)
    }
}

/// The published address of `service`'s `container_port`/tcp among `rows` (a running row).
pub fn published_in(rows: &[PsRow], service: &str, container_port: u16) -> Result<SocketAddr> {
    let row = rows
        .iter()
        .find(|r| r.service == service && r.state == "running")
        .ok_or_else(|| {
            EvidenceError::failed(format!("service {service} has no running container"))
        })?;
    let p = row
        .publishers
        .iter()
        .find(|p| p.target_port == container_port && p.protocol == "tcp")
        .ok_or_else(|| {
            EvidenceError::failed(format!(
                "service {service} does not publish port {container_port}/tcp"
            ))
        })?;
    let ip: IpAddr = match p.url.as_str() {
        "" | "0.0.0.0" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        "::" => IpAddr::V6(Ipv6Addr::LOCALHOST),
        s => s.parse().map_err(|_| {
            EvidenceError::failed(format!("service {service}: unexpected host address {s:?}"))
        })?,
    };
    Ok(SocketAddr::new(ip, p.published_port))
}

/// `service (state/health)` for each of `services` without a healthy row.
#[must_use]
pub fn not_healthy(services: &[String], rows: &[PsRow]) -> Vec<String> {
    services
        .iter()
        .filter_map(|s| {
            let mine: Vec<&PsRow> = rows.iter().filter(|r| &r.service == s).collect();
            if mine.is_empty() {
                Some(format!("{s} (missing)"))
            } else if mine.iter().all(|r| r.healthy()) {
                None
            } else {
                let r = mine.iter().find(|r| !r.healthy()).unwrap_or(&mine[0]);
                let h = if r.health.is_empty() { "-" } else { &r.health };
                Some(format!("{s} ({}/{h})", r.state))
            }
        })
        .collect()
}

fn yaml_scalar(v: &yaml_serde::Value) -> String {
    match v {
        yaml_serde::Value::String(s) => s.clone(),
        yaml_serde::Value::Bool(b) => b.to_string(),
        yaml_serde::Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineOptions;
    use crate::ps::Publisher;

    #[test]
    fn names_and_files_are_checked() {
        let e = Engine::external(&EngineOptions {
            docker_bin: Some("/bin/false".into()),
            ..EngineOptions::default()
        });
        let err = Project::new(&e, "/nonexistent.yaml", "p", None)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "compose file not found: /nonexistent.yaml");
        let f = tempfile::NamedTempFile::new().unwrap();
        assert!(Project::new(&e, f.path(), "Bad Name", None).is_err());
        let p = Project::new(
            &e,
            f.path(),
            "quant-hft-prodlike",
            Some("/nonexistent.env".into()),
        )
        .unwrap();
        assert_eq!(
            p.command_line(&["up", "-d"]),
            format!(
                "/bin/false compose -f {} -p quant-hft-prodlike up -d",
                f.path().display()
            )
        );
        let s = p.start(Duration::from_secs(5)).unwrap();
        assert!(!s.ok);
        assert_eq!(s.name, "compose_up");
        let (ps, rows) = p.ps().unwrap();
        assert!(!ps.ok);
        assert!(rows.is_empty());
    }

    #[test]
    fn published_and_not_healthy() {
        let rows = vec![
            PsRow {
                service: "a".into(),
                state: "running".into(),
                health: "healthy".into(),
                publishers: vec![Publisher {
                    url: "127.0.0.1".into(),
                    target_port: 6379,
                    published_port: 40000,
                    protocol: "tcp".into(),
                }],
                ..PsRow::default()
            },
            PsRow {
                service: "b".into(),
                state: "exited".into(),
                health: "unhealthy".into(),
                ..PsRow::default()
            },
        ];
        assert_eq!(
            published_in(&rows, "a", 6379).unwrap(),
            "127.0.0.1:40000".parse::<SocketAddr>().unwrap()
        );
        assert!(published_in(&rows, "a", 1).is_err());
        assert!(published_in(&rows, "b", 6379).is_err());
        let svcs: Vec<String> = ["a", "b", "c"].iter().map(|s| (*s).to_string()).collect();
        assert_eq!(
            not_healthy(&svcs, &rows),
            vec![
                "b (exited/unhealthy)".to_string(),
                "c (missing)".to_string()
            ]
        );
    }
}
