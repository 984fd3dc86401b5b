//! `render-systemd`: writes the systemd units of the platform (core engine, data pipeline) with the
//! original `render_systemd_units` flags, file names and stdout JSON, and one `.service` + `.timer`
//! pair per drill (wal, rollback, reconnect, preflight, failover) that runs the installed drill
//! behind `session-guard` and writes to the installed results folder.
//!
//! Fixed against the original: a non-root `User=` by default (`root` needs `--allow-root`),
//! `StartLimitIntervalSec`/`StartLimitBurst`, every path quoted and `%`/`$` escaped,
//! `EnvironmentFile=` under /etc, `ProtectHome=tmpfs` plus `BindPaths=` when the working directory
//! lives under /home or /root (plain `ProtectHome=true` would lock the service out of it), and
//! `After=`/`Wants=` on the local Redis and PostgreSQL units when those stores are local. The example
//! env files carry no credentials and do not default storage to in-memory.

use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use evidence_core::cli::{self, EXIT_STATUS_HELP};
use evidence_core::{EvidenceError, Exit, Result};

const AFTER_HELP: &str = "EXAMPLE:\n  render-systemd --repo-root /opt/quant-hft --service-user quant --output-dir deploy/systemd\n  sudo cp deploy/systemd/*.service deploy/systemd/*.timer /etc/systemd/system/\n  sudo systemctl daemon-reload && sudo systemctl enable --now ctp-ops-wal-drill.timer\n\nStdout is {\"output_dir\": ..., \"files\": [...]} (the original's shape). Check the units with\n`systemd-analyze verify <files>`.";

/// Render systemd units: the core engine and data pipeline services, and a service + timer per drill.
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}\n\n{EXIT_STATUS_HELP}"))]
#[allow(clippy::struct_excessive_bools)]
pub struct Cli {
    /// Repository (platform) root; every relative path below is resolved against it.
    #[arg(long, default_value = ".")]
    pub repo_root: PathBuf,
    /// Where to write the files (relative to the repo root).
    #[arg(long, default_value = "deploy/systemd")]
    pub output_dir: PathBuf,
    /// Build folder holding core_engine.
    #[arg(long, default_value = "build")]
    pub build_dir: PathBuf,
    /// Python interpreter of the data pipeline.
    #[arg(long, default_value = ".venv/bin/python")]
    pub python_bin: PathBuf,
    /// CTP config passed to core_engine.
    #[arg(long, default_value = "configs/sim/ctp.yaml")]
    pub core_config: PathBuf,
    /// Data pipeline: analytics database.
    #[arg(long, default_value = "runtime/analytics.duckdb")]
    pub analytics_db: PathBuf,
    /// Data pipeline: export folder.
    #[arg(long, default_value = "runtime/exports")]
    pub export_dir: PathBuf,
    /// Data pipeline: local archive folder.
    #[arg(long, default_value = "runtime/archive")]
    pub archive_local_dir: PathBuf,
    /// Data pipeline: archive endpoint (host:port).
    #[arg(long, default_value = "localhost:9000")]
    pub archive_endpoint: String,
    /// Data pipeline: archive bucket.
    #[arg(long, default_value = "quant-archive")]
    pub archive_bucket: String,
    /// Data pipeline: archive key prefix.
    #[arg(long, default_value = "etl")]
    pub archive_prefix: String,
    /// Data pipeline: seconds between iterations (at least 1).
    #[arg(long, default_value_t = 60.0)]
    pub interval_seconds: f64,
    /// User the services run as (default ctp-ops; root needs --allow-root).
    #[arg(long)]
    pub service_user: Option<String>,
    /// Group the services run as (default: the user's primary group).
    #[arg(long)]
    pub service_group: Option<String>,
    /// Accept `--service-user root`.
    #[arg(long)]
    pub allow_root: bool,
    /// Folder of the EnvironmentFile= files (secrets, mode 0600).
    #[arg(long, default_value = "/etc/ctp-ops")]
    pub env_dir: PathBuf,
    /// Redis host of the platform; a loopback host adds After=/Wants= on --redis-unit ("none": no Redis).
    #[arg(long, default_value = "127.0.0.1")]
    pub redis_host: String,
    /// Local Redis unit.
    #[arg(long, default_value = "redis-server.service")]
    pub redis_unit: String,
    /// PostgreSQL/Timescale host; a loopback host adds After=/Wants= on --postgres-unit ("none": none).
    #[arg(long, default_value = "127.0.0.1")]
    pub postgres_host: String,
    /// Local PostgreSQL unit.
    #[arg(long, default_value = "postgresql.service")]
    pub postgres_unit: String,
    /// Installation prefix of ctp-ops (binaries in PREFIX/bin, configs in PREFIX/etc/ctp-ops).
    #[arg(long, default_value = "/usr/local")]
    pub prefix: PathBuf,
    /// Folder of the installed ctp-ops binaries (default PREFIX/bin).
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Folder of the installed ctp-ops configs and calendar (default PREFIX/etc/ctp-ops).
    #[arg(long)]
    pub config_dir: Option<PathBuf>,
    /// State folder of the drills (run folders, locks); systemd creates /var/lib/ctp-ops itself.
    #[arg(long, default_value = "/var/lib/ctp-ops")]
    pub state_dir: PathBuf,
    /// Where the drills write their evidence (default STATE_DIR/results).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Drills to render a .service + .timer for (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "wal,rollback,reconnect,preflight,failover"
    )]
    pub drills: Vec<Drill>,
    /// Render no drill units.
    #[arg(long)]
    pub no_drills: bool,
    /// Timer schedule of one drill, DRILL=ONCALENDAR (repeatable), e.g. wal='Sun *-*-* 09:00:00 Asia/Shanghai'.
    #[arg(long, value_name = "DRILL=SPEC")]
    pub schedule: Vec<String>,
    /// Minutes around a trading session during which session-guard refuses the drills.
    #[arg(long, default_value_t = 15)]
    pub session_margin_minutes: u32,
}

/// A drill with a service + timer pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Drill {
    /// SOP 4: WAL crash recovery (wal-drill, wal-verify).
    Wal,
    /// SOP 5: deploy/rollback (rollback-drill, rollback-verify).
    Rollback,
    /// SOP 2/3: reconnect under faults (reconnect-evidence).
    Reconnect,
    /// SOP 1: preflight (ctp-preflight).
    Preflight,
    /// SOP 8: primary/standby failover (failover-orchestrator, failover-verify).
    Failover,
}

impl Drill {
    /// Name used in unit names (`ctp-ops-<name>-drill`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Drill::Wal => "wal",
            Drill::Rollback => "rollback",
            Drill::Reconnect => "reconnect",
            Drill::Preflight => "preflight",
            Drill::Failover => "failover",
        }
    }

    /// Default timer schedule (+08:00): outside every session; preflight before the day session.
    #[must_use]
    pub fn default_schedule(self) -> &'static str {
        match self {
            Drill::Preflight => "Mon..Fri *-*-* 08:30:00 Asia/Shanghai",
            Drill::Reconnect => "Sat *-*-* 10:00:00 Asia/Shanghai",
            Drill::Wal => "Sat *-*-* 10:30:00 Asia/Shanghai",
            Drill::Rollback => "Sat *-*-* 11:00:00 Asia/Shanghai",
            Drill::Failover => "Sat *-*-* 11:30:00 Asia/Shanghai",
        }
    }

    /// The installed binaries this drill's service runs (besides session-guard).
    #[must_use]
    pub fn binaries(self) -> &'static [&'static str] {
        match self {
            Drill::Wal => &["wal-drill", "wal-verify"],
            Drill::Rollback => &["rollback-drill", "rollback-verify"],
            Drill::Reconnect => &["reconnect-evidence"],
            Drill::Preflight => &["ctp-preflight"],
            Drill::Failover => &["failover-orchestrator", "failover-verify"],
        }
    }

    /// SOP description for `Description=`.
    fn description(self) -> &'static str {
        match self {
            Drill::Wal => "ctp-ops SOP 4 WAL crash-recovery drill",
            Drill::Rollback => "ctp-ops SOP 5 deploy/rollback drill",
            Drill::Reconnect => "ctp-ops SOP 2 reconnect fault-injection drill",
            Drill::Preflight => "ctp-ops SOP 1 CTP preflight",
            Drill::Failover => "ctp-ops SOP 8 primary/standby failover drill",
        }
    }
}

/// The stdout JSON (the original's shape).
#[derive(Debug, serde::Serialize)]
struct Summary {
    output_dir: String,
    files: Vec<String>,
}

/// A unit file: sections of ordered `key=value` lines.
#[derive(Debug, Default)]
struct UnitFile {
    text: String,
}

impl UnitFile {
    fn header(comment: &str) -> Self {
        let mut u = UnitFile::default();
        for line in comment.lines() {
            u.text.push_str("# ");
            u.text.push_str(line);
            u.text.push('\n');
        }
        u
    }
    fn section(&mut self, name: &str) -> &mut Self {
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(&format!("[{name}]\n"));
        self
    }
    fn set(&mut self, key: &str, value: impl AsRef<str>) -> &mut Self {
        self.text.push_str(key);
        self.text.push('=');
        self.text.push_str(value.as_ref());
        self.text.push('\n');
        self
    }
}

/// One word of a command line (`ExecStart=` and friends): double-quoted, with `\` and `"` escaped
/// for systemd's unquoting, `%` doubled (specifiers) and `$` doubled (variable expansion).
#[must_use]
pub fn quote_word(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '%' => out.push_str("%%"),
            '$' => out.push_str("$$"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A single-path setting (`WorkingDirectory=`, `EnvironmentFile=`): no unquoting there, only
/// specifier expansion, so `%` is doubled.
#[must_use]
pub fn path_value(p: &Path) -> String {
    p.display().to_string().replace('%', "%%")
}

fn command(words: &[String]) -> String {
    words
        .iter()
        .map(|w| quote_word(w))
        .collect::<Vec<_>>()
        .join(" ")
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// True for paths that `ProtectHome=true` hides: /home, /root, /run/user.
#[must_use]
pub fn under_home(p: &Path) -> bool {
    ["/home", "/root", "/run/user"]
        .iter()
        .any(|h| p.starts_with(h))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
}

/// Validated settings.
#[derive(Debug)]
struct Config {
    repo: PathBuf,
    out: PathBuf,
    build: PathBuf,
    python: PathBuf,
    core_config: PathBuf,
    analytics_db: PathBuf,
    export_dir: PathBuf,
    archive_local_dir: PathBuf,
    interval: f64,
    user: String,
    group: Option<String>,
    env_dir: PathBuf,
    deps: Vec<String>,
    bin_dir: PathBuf,
    config_dir: PathBuf,
    state_dir: PathBuf,
    results_dir: PathBuf,
    drills: Vec<(Drill, String)>,
    margin: u32,
}

fn check_path(flag: &str, p: &Path) -> Result<()> {
    let text = p.to_str().ok_or_else(|| {
        EvidenceError::usage(format!("{flag}: path is not UTF-8: {}", p.display()))
    })?;
    if text.chars().any(char::is_control) {
        return Err(EvidenceError::usage(format!(
            "{flag}: path contains a control character: {text:?}"
        )));
    }
    Ok(())
}

fn check_name(flag: &str, v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'));
    if ok {
        Ok(())
    } else {
        Err(EvidenceError::usage(format!(
            "{flag}: expected a name of letters, digits, '-', '_', '.', '@', ':', found {v:?}"
        )))
    }
}

fn absolute(flag: &str, p: &Path) -> Result<PathBuf> {
    check_path(flag, p)?;
    if !p.is_absolute() {
        return Err(EvidenceError::usage(format!(
            "{flag}: expected an absolute path, found {}",
            p.display()
        )));
    }
    Ok(p.to_path_buf())
}

impl Config {
    fn from_cli(cli: &Cli) -> Result<Config> {
        check_path("--repo-root", &cli.repo_root)?;
        let repo = std::path::absolute(&cli.repo_root)
            .map_err(|e| EvidenceError::io("cannot resolve", cli.repo_root.as_path(), e))?;
        let repo = repo.canonicalize().unwrap_or(repo);
        let under = |flag: &str, p: &Path| -> Result<PathBuf> {
            check_path(flag, p)?;
            Ok(if p.is_absolute() {
                p.to_path_buf()
            } else {
                repo.join(p)
            })
        };
        if !cli.interval_seconds.is_finite() {
            return Err(EvidenceError::usage(format!(
                "--interval-seconds must be a finite number, found {}",
                cli.interval_seconds
            )));
        }
        let user = cli
            .service_user
            .clone()
            .unwrap_or_else(|| "ctp-ops".to_string());
        check_name("--service-user", &user)?;
        if (user == "root" || user == "0") && !cli.allow_root {
            return Err(EvidenceError::usage(
                "--service-user root: the services would run as root; pick a service account, or pass --allow-root",
            ));
        }
        if user == "nobody" || cli.service_group.as_deref() == Some("nogroup") {
            return Err(EvidenceError::usage(
                "--service-user nobody / --service-group nogroup: systemd refuses to treat them as safe (files owned by nobody are shared with every sandboxed service); create a service account",
            ));
        }
        if let Some(g) = &cli.service_group {
            check_name("--service-group", g)?;
        }
        let mut deps = Vec::new();
        for (flag, host, unit) in [
            ("--redis-unit", &cli.redis_host, &cli.redis_unit),
            ("--postgres-unit", &cli.postgres_host, &cli.postgres_unit),
        ] {
            if is_loopback(host) {
                check_name(flag, unit)?;
                deps.push(unit.clone());
            }
        }
        let bin_dir = absolute(
            "--bin-dir",
            &cli.bin_dir
                .clone()
                .unwrap_or_else(|| cli.prefix.join("bin")),
        )?;
        let config_dir = absolute(
            "--config-dir",
            &cli.config_dir
                .clone()
                .unwrap_or_else(|| cli.prefix.join("etc/ctp-ops")),
        )?;
        let state_dir = absolute("--state-dir", &cli.state_dir)?;
        let results_dir = absolute(
            "--results-dir",
            &cli.results_dir
                .clone()
                .unwrap_or_else(|| state_dir.join("results")),
        )?;
        let mut drills: Vec<(Drill, String)> = Vec::new();
        if !cli.no_drills {
            for d in &cli.drills {
                if !drills.iter().any(|(x, _)| x == d) {
                    drills.push((*d, d.default_schedule().to_string()));
                }
            }
        }
        for sch in &cli.schedule {
            let (name, spec) = sch.split_once('=').ok_or_else(|| {
                EvidenceError::usage(format!(
                    "--schedule: expected DRILL=ONCALENDAR, found {sch:?}"
                ))
            })?;
            let d = Drill::from_str(name, true).map_err(|_| {
                EvidenceError::usage(format!(
                    "--schedule: unknown drill {name:?} (wal, rollback, reconnect, preflight, failover)"
                ))
            })?;
            if spec.trim().is_empty() || spec.chars().any(char::is_control) {
                return Err(EvidenceError::usage(format!(
                    "--schedule {name}: expected an OnCalendar= expression, found {spec:?}"
                )));
            }
            match drills.iter_mut().find(|(x, _)| *x == d) {
                Some(slot) => slot.1 = spec.trim().to_string(),
                None => {
                    return Err(EvidenceError::usage(format!(
                        "--schedule {name}: that drill is not rendered (see --drills)"
                    )));
                }
            }
        }
        Ok(Config {
            out: under("--output-dir", &cli.output_dir)?,
            build: under("--build-dir", &cli.build_dir)?,
            python: under("--python-bin", &cli.python_bin)?,
            core_config: under("--core-config", &cli.core_config)?,
            analytics_db: under("--analytics-db", &cli.analytics_db)?,
            export_dir: under("--export-dir", &cli.export_dir)?,
            archive_local_dir: under("--archive-local-dir", &cli.archive_local_dir)?,
            interval: cli.interval_seconds.max(1.0),
            user,
            group: cli.service_group.clone(),
            env_dir: absolute("--env-dir", &cli.env_dir)?,
            deps,
            bin_dir,
            config_dir,
            state_dir,
            results_dir,
            drills,
            margin: cli.session_margin_minutes,
            repo,
        })
    }

    /// `ProtectHome=` and the `BindPaths=` that keep the listed paths reachable.
    fn protect_home(&self, unit: &mut UnitFile, paths: &[&Path]) {
        let mut binds: Vec<PathBuf> = Vec::new();
        for p in paths.iter().filter(|p| under_home(p)) {
            let dir = if p.starts_with(&self.repo) {
                self.repo.clone()
            } else {
                p.parent()
                    .map_or_else(|| p.to_path_buf(), Path::to_path_buf)
            };
            if !binds.iter().any(|b| dir.starts_with(b)) {
                binds.push(dir);
            }
        }
        if binds.is_empty() {
            unit.set("ProtectHome", "true");
        } else {
            // ProtectHome=true would make these folders unreachable (the original's services could
            // not even chdir). tmpfs hides every other home folder; BindPaths= brings these back.
            unit.set("ProtectHome", "tmpfs");
            let words: Vec<String> = binds.iter().map(|b| s(b)).collect();
            unit.set("BindPaths", command(&words));
        }
    }

    fn user_lines(&self, unit: &mut UnitFile) {
        unit.set("User", &self.user);
        if let Some(g) = &self.group {
            unit.set("Group", g);
        }
    }

    fn service(
        &self,
        description: &str,
        env_file: &str,
        exec: &[String],
        restart_sec: u32,
    ) -> String {
        let mut u = UnitFile::header(&format!(
            "Rendered by render-systemd {}. Install under /etc/systemd/system.",
            env!("CARGO_PKG_VERSION")
        ));
        let mut after = vec!["network-online.target".to_string()];
        after.extend(self.deps.iter().cloned());
        u.section("Unit")
            .set("Description", description)
            .set("After", after.join(" "))
            .set("Wants", after.join(" "))
            .set("StartLimitIntervalSec", "300")
            .set("StartLimitBurst", "5");
        u.section("Service").set("Type", "simple");
        self.user_lines(&mut u);
        u.set("WorkingDirectory", path_value(&self.repo))
            .set(
                "EnvironmentFile",
                format!("-{}", path_value(&self.env_dir.join(env_file))),
            )
            .set("ExecStart", command(exec))
            .set("Restart", "always")
            .set("RestartSec", restart_sec.to_string())
            .set("LimitNOFILE", "65535")
            .set("NoNewPrivileges", "true")
            .set("ProtectSystem", "full");
        let exe = exec.first().map(PathBuf::from).unwrap_or_default();
        self.protect_home(
            &mut u,
            &[
                &self.repo,
                &exe,
                &self.core_config,
                &self.analytics_db,
                &self.export_dir,
                &self.archive_local_dir,
            ],
        );
        u.set("PrivateTmp", "true");
        u.section("Install").set("WantedBy", "multi-user.target");
        u.text
    }

    fn calendar(&self) -> PathBuf {
        self.config_dir.join("calendar/cn-futures-2026.yaml")
    }

    fn bin(&self, name: &str) -> String {
        s(&self.bin_dir.join(name))
    }

    /// The commands of one drill, run one after the other (`Type=oneshot`).
    fn drill_commands(&self, d: Drill) -> Vec<Vec<String>> {
        let r = |f: &str| s(&self.results_dir.join(f));
        let st = |f: &str| s(&self.state_dir.join(f));
        let c = |f: &str| s(&self.config_dir.join(f));
        let v = |x: &[&str]| x.iter().map(ToString::to_string).collect::<Vec<String>>();
        match d {
            Drill::Wal => vec![
                [
                    vec![self.bin("wal-drill")],
                    v(&["--execute", "--wal-path"]),
                    vec![st("runtime/wal/runtime_events.wal")],
                    v(&["--output-file"]),
                    vec![r("wal_recovery_result.env")],
                ]
                .concat(),
                [
                    vec![self.bin("wal-verify"), "--evidence-file".into()],
                    vec![r("wal_recovery_result.env")],
                    v(&["--max-rto-seconds", "10", "--max-rpo-events", "0"]),
                ]
                .concat(),
            ],
            Drill::Rollback => vec![
                [
                    vec![self.bin("rollback-drill")],
                    v(&[
                        "--execute",
                        "--failure",
                        "health",
                        "--stop-after",
                        "--run-dir",
                    ]),
                    vec![st("runtime/deploy/drill"), "--lock-file".into()],
                    vec![
                        st("runtime/locks/rollback-drill.lock"),
                        "--output-file".into(),
                    ],
                    vec![r("deploy_rollback_result.env")],
                ]
                .concat(),
                [
                    vec![self.bin("rollback-verify"), "--evidence-file".into()],
                    vec![r("deploy_rollback_result.env")],
                    v(&["--max-rollback-seconds", "180"]),
                ]
                .concat(),
            ],
            Drill::Reconnect => vec![
                [
                    vec![self.bin("reconnect-evidence"), "--config".into()],
                    vec![c("sim/local.yaml")],
                    v(&["--execute-faults", "--local-ports", "free", "--calendar"]),
                    vec![s(&self.calendar()), "--runtime-dir".into(), st("runtime")],
                    vec!["--probe-log".into(), st("runtime/reconnect_probe.log")],
                    vec!["--event-log".into(), st("runtime/fault_events.jsonl")],
                    vec!["--report-file".into(), r("reconnect_fault_result.md")],
                    vec!["--health-json-file".into(), r("ops_health_report.json")],
                    vec!["--health-markdown-file".into(), r("ops_health_report.md")],
                    vec!["--alert-json-file".into(), r("ops_alert_report.json")],
                    vec!["--alert-markdown-file".into(), r("ops_alert_report.md")],
                    vec!["--samples-csv".into(), r("reconnect_samples.csv")],
                    vec!["--timeline-svg".into(), r("reconnect_timeline.svg")],
                ]
                .concat(),
            ],
            Drill::Preflight => vec![
                [
                    vec![self.bin("ctp-preflight"), "--config".into()],
                    vec![c("sim/ctp.yaml"), "--calendar".into(), s(&self.calendar())],
                    vec!["--runtime-dir".into(), st("runtime"), "--json".into()],
                    vec!["--output-file".into(), r("preflight_result.json")],
                ]
                .concat(),
            ],
            Drill::Failover => vec![
                [
                    vec![self.bin("failover-orchestrator"), "--env-config".into()],
                    vec![c("deploy/environments/prodlike_multi_host.yaml")],
                    vec!["--execute".into(), "--output-file".into()],
                    vec![r("failover_result.env")],
                ]
                .concat(),
                [
                    vec![self.bin("failover-verify"), "--evidence-file".into()],
                    vec![r("failover_result.env")],
                    v(&[
                        "--max-failover-seconds",
                        "300",
                        "--max-data-lag-events",
                        "0",
                    ]),
                ]
                .concat(),
            ],
        }
    }

    fn drill_service(&self, d: Drill) -> String {
        let mut u = UnitFile::header(&format!(
            "Rendered by render-systemd {}. Started by {}.timer; refuses to run inside a\ntrading session (session-guard exits 1: the run is skipped, not failed).",
            env!("CARGO_PKG_VERSION"),
            unit_base(d)
        ));
        let mut after = vec!["network-online.target".to_string()];
        if d == Drill::Failover {
            after.extend(self.deps.iter().cloned());
        }
        u.section("Unit")
            .set("Description", d.description())
            .set("After", after.join(" "))
            .set("Wants", "network-online.target")
            .set("StartLimitIntervalSec", "3600")
            .set("StartLimitBurst", "3");
        u.section("Service").set("Type", "oneshot");
        self.user_lines(&mut u);
        let var_lib = Path::new("/var/lib/ctp-ops");
        if self.state_dir == var_lib {
            u.set("StateDirectory", "ctp-ops");
        }
        u.set("WorkingDirectory", path_value(&self.state_dir))
            .set(
                "EnvironmentFile",
                format!("-{}", path_value(&self.env_dir.join("ctp-ops-drills.env"))),
            )
            .set(
                "Environment",
                quote_word(&format!("CTP_OPS_CONFIG_DIR={}", s(&self.config_dir))),
            )
            .set(
                "Environment",
                quote_word(&format!("CTP_OPS_RESULTS_DIR={}", s(&self.results_dir))),
            );
        let guard = vec![
            self.bin("session-guard"),
            "--calendar".into(),
            s(&self.calendar()),
            "--margin-minutes".into(),
            self.margin.to_string(),
        ];
        u.set("ExecCondition", command(&guard));
        for cmd in self.drill_commands(d) {
            u.set("ExecStart", command(&cmd));
        }
        u.set("TimeoutStartSec", "3600")
            .set("NoNewPrivileges", "true")
            .set("ProtectSystem", "full");
        let calendar = self.calendar();
        self.protect_home(
            &mut u,
            &[
                &self.state_dir,
                &self.results_dir,
                &self.bin_dir.join("session-guard"),
                &calendar,
            ],
        );
        u.set("PrivateTmp", "true");
        u.text
    }

    fn drill_timer(d: Drill, schedule: &str) -> String {
        let mut u = UnitFile::header(&format!(
            "Rendered by render-systemd {}. Enable with: systemctl enable --now {}.timer",
            env!("CARGO_PKG_VERSION"),
            unit_base(d)
        ));
        u.section("Unit").set(
            "Description",
            format!("Schedule of the {}", d.description()),
        );
        u.section("Timer")
            .set("OnCalendar", schedule)
            .set("Persistent", "true")
            .set("RandomizedDelaySec", "300")
            .set("Unit", format!("{}.service", unit_base(d)));
        u.section("Install").set("WantedBy", "timers.target");
        u.text
    }
}

/// `ctp-ops-<drill>-drill`.
#[must_use]
pub fn unit_base(d: Drill) -> String {
    format!("ctp-ops-{}-drill", d.name())
}

fn fmt_g(v: f64) -> String {
    // Python's %g for the values a CLI gives: integers without a fraction, others as they are.
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Render and write every file; print the summary JSON.
pub fn run(cli: Cli) -> Result<Exit> {
    let cfg = Config::from_cli(&cli)?;
    let mut files: Vec<(String, String)> = Vec::new();

    let core = cfg.service(
        "Quant HFT Core Engine (bootstrap)",
        "quant-hft-core-engine.env",
        &[s(&cfg.build.join("core_engine")), s(&cfg.core_config)],
        2,
    );
    files.push(("quant-hft-core-engine.service".into(), core));
    let pipeline_cmd = vec![
        s(&cfg.python),
        s(&cfg.repo.join("scripts/data_pipeline/run_pipeline.py")),
        "--analytics-db".into(),
        s(&cfg.analytics_db),
        "--export-dir".into(),
        s(&cfg.export_dir),
        "--archive-endpoint".into(),
        cli.archive_endpoint.clone(),
        "--archive-bucket".into(),
        cli.archive_bucket.clone(),
        "--archive-prefix".into(),
        cli.archive_prefix.clone(),
        "--archive-local-dir".into(),
        s(&cfg.archive_local_dir),
        "--iterations".into(),
        "0".into(),
        "--interval-seconds".into(),
        fmt_g(cfg.interval),
    ];
    let pipeline = cfg.service(
        "Quant HFT Data Pipeline",
        "quant-hft-data-pipeline.env",
        &pipeline_cmd,
        5,
    );
    files.push(("quant-hft-data-pipeline.service".into(), pipeline));
    files.push((
        "quant-hft-core-engine.env.example".into(),
        core_env_example(&cfg, &cli),
    ));
    files.push((
        "quant-hft-data-pipeline.env.example".into(),
        pipeline_env_example(&cfg, &cli),
    ));
    for (d, schedule) in &cfg.drills {
        files.push((format!("{}.service", unit_base(*d)), cfg.drill_service(*d)));
        files.push((
            format!("{}.timer", unit_base(*d)),
            Config::drill_timer(*d, schedule),
        ));
    }
    if !cfg.drills.is_empty() {
        files.push((
            "ctp-ops-drills.env.example".into(),
            format!(
                "# Secrets of the ctp-ops drill units. Copy to {} (owner root, mode 0600).\n# Never put them in a unit file or on a command line.\nCTP_SIM_PASSWORD=\n",
                cfg.env_dir.join("ctp-ops-drills.env").display()
            ),
        ));
    }

    let mut paths = Vec::new();
    for (name, text) in &files {
        let p = cfg.out.join(name);
        evidence_core::io::write_atomic(&p, text.as_bytes())?;
        paths.push(s(&p));
    }
    let summary = Summary {
        output_dir: s(&cli.output_dir),
        files: paths,
    };
    let mut json = serde_json::to_string_pretty(&summary)
        .map_err(|e| EvidenceError::failed(format!("cannot serialise the summary: {e}")))?;
    json.push('\n');
    cli::stdout_write(&json)?;
    if cfg.deps.is_empty() {
        cli::info("no local Redis/PostgreSQL: the services do not wait for them");
    }
    Ok(Exit::Pass)
}

fn core_env_example(cfg: &Config, cli: &Cli) -> String {
    format!(
        "# Environment of quant-hft-core-engine.service. Copy to {} (owner root, mode 0600)\n# and fill in the password there; never commit it.\nCTP_SIM_PASSWORD=\n# Storage is persistent: in-memory storage and silent fallback lose data.\nQUANT_HFT_REDIS_MODE=external\nQUANT_HFT_REDIS_HOST={}\nQUANT_HFT_TIMESCALE_MODE=external\nQUANT_HFT_STORAGE_ALLOW_FALLBACK=false\n",
        cfg.env_dir.join("quant-hft-core-engine.env").display(),
        if cli.redis_host == "none" {
            ""
        } else {
            cli.redis_host.as_str()
        }
    )
}

fn pipeline_env_example(cfg: &Config, cli: &Cli) -> String {
    format!(
        "# Environment of quant-hft-data-pipeline.service. Copy to {} (owner root, mode 0600)\n# and set the archive credentials there; there are no default credentials.\nQUANT_HFT_ARCHIVE_ENDPOINT={}\nQUANT_HFT_ARCHIVE_ACCESS_KEY=\nQUANT_HFT_ARCHIVE_SECRET_KEY=\nQUANT_HFT_ARCHIVE_BUCKET={}\n",
        cfg.env_dir.join("quant-hft-data-pipeline.env").display(),
        cli.archive_endpoint,
        cli.archive_bucket
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_word("a b"), "\"a b\"");
        assert_eq!(quote_word("50%$x\"\\"), "\"50%%$$x\\\"\\\\\"");
        assert_eq!(path_value(Path::new("/a/%b")), "/a/%%b");
    }

    #[test]
    fn home_detection() {
        assert!(under_home(Path::new("/home/ops/repo")));
        assert!(under_home(Path::new("/root/x")));
        assert!(!under_home(Path::new("/homework")));
        assert!(!under_home(Path::new("/opt/x")));
    }
}
