//! The stack: which services exist, where each listens, how each is configured and started.
//!
//! A [`Stack`] is a run folder plus a [`StackConfig`]: a base port, a default [`Placement`]
//! (listen address and command prefix) and per-service placement overrides, so the same services
//! run on 127.0.0.1 here and inside network namespaces (`ip netns exec h1`) or on other hosts
//! (`ssh ops@host`) for the multi-host drills.
//!
//! Ports are `base + offset` ([`ServiceKind::port_offset`]); with the default base 17000 none is a
//! standard port, so a real Redis or PostgreSQL on the host is never touched.
//!
//! Run folder layout (mode 0711 so the `postgres` user can reach its data):
//! ```text
//! stack.json                the StackConfig, for later ps/health/down
//! secrets/password          the stack's password (0600), generated once per stack
//! <service>.pid  logs/<service>.log   evidence_core::supervisor files
//! redis-primary/ redis-replica/ redis-sentinel-N/   conf (0600) and data
//! pg/timescale-primary/ pg/timescale-replica/ pg/sock/  owned by postgres
//! prometheus/ alertmanager/ textfile/ webhook/alerts.jsonl
//! ```

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use evidence_core::{EvidenceError, Result};
use serde::{Deserialize, Serialize};

/// The Sentinel master name.
pub const MASTER_NAME: &str = "mymaster";
/// PostgreSQL role and database of the stack (the original's `quant_hft`).
pub const PG_USER: &str = "quant_hft";
/// See [`PG_USER`].
pub const PG_DB: &str = "quant_hft";
/// Where Debian's PostgreSQL 15 server binaries live (not on PATH).
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The default base port.
pub const DEFAULT_BASE_PORT: u16 = 17000;

/// What a service is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceKind {
    /// Redis primary (AOF on).
    RedisPrimary,
    /// Redis replica of the primary.
    RedisReplica,
    /// Redis Sentinel number 1..=3.
    Sentinel(u8),
    /// PostgreSQL 15 primary.
    TimescalePrimary,
    /// PostgreSQL 15 streaming hot standby.
    TimescaleReplica,
    /// Prometheus.
    Prometheus,
    /// Alertmanager.
    Alertmanager,
    /// prometheus-node-exporter (with the textfile folder).
    NodeExporter,
    /// prometheus-redis-exporter (primary; the others through `/scrape`).
    RedisExporter,
    /// prometheus-postgres-exporter for the primary.
    PgExporterPrimary,
    /// prometheus-postgres-exporter for the standby.
    PgExporterReplica,
    /// The local webhook receiver Alertmanager posts to.
    AlertWebhook,
}

/// Services of the original compose file that have no Debian package: reported `not_provided`.
pub const NOT_PROVIDED: [&str; 4] = ["grafana", "loki", "tempo", "minio"];

impl ServiceKind {
    /// Every service of the stack, in start order.
    #[must_use]
    pub fn all() -> Vec<ServiceKind> {
        use ServiceKind::*;
        vec![
            RedisPrimary,
            RedisReplica,
            Sentinel(1),
            Sentinel(2),
            Sentinel(3),
            // Prometheus early: its first target discovery takes ~5 s whatever we do, so it
            // overlaps PostgreSQL's initdb and base backup.
            AlertWebhook,
            Alertmanager,
            NodeExporter,
            RedisExporter,
            Prometheus,
            TimescalePrimary,
            TimescaleReplica,
            PgExporterPrimary,
            PgExporterReplica,
        ]
    }

    /// The service name (the original's compose names where it had one).
    #[must_use]
    pub fn name(self) -> String {
        use ServiceKind::*;
        match self {
            RedisPrimary => "redis-primary".into(),
            RedisReplica => "redis-replica".into(),
            Sentinel(n) => format!("redis-sentinel-{n}"),
            TimescalePrimary => "timescale-primary".into(),
            TimescaleReplica => "timescale-replica".into(),
            Prometheus => "prometheus".into(),
            Alertmanager => "alertmanager".into(),
            NodeExporter => "node-exporter".into(),
            RedisExporter => "redis-exporter".into(),
            PgExporterPrimary => "postgres-exporter-primary".into(),
            PgExporterReplica => "postgres-exporter-replica".into(),
            AlertWebhook => "alert-webhook".into(),
        }
    }

    /// The service named `name`, if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<ServiceKind> {
        ServiceKind::all().into_iter().find(|k| k.name() == name)
    }

    /// Port offset from the base (17000 + offset with the default base).
    #[must_use]
    pub fn port_offset(self) -> u16 {
        use ServiceKind::*;
        match self {
            RedisPrimary => 1,
            RedisReplica => 2,
            Sentinel(n) => 10 + u16::from(n),
            TimescalePrimary => 21,
            TimescaleReplica => 22,
            Prometheus => 90,
            Alertmanager => 93,
            NodeExporter => 100,
            RedisExporter => 121,
            PgExporterPrimary => 187,
            PgExporterReplica => 188,
            AlertWebhook => 500,
        }
    }

    /// True for PostgreSQL servers (run as the `postgres` user).
    #[must_use]
    pub fn is_postgres(self) -> bool {
        matches!(
            self,
            ServiceKind::TimescalePrimary | ServiceKind::TimescaleReplica
        )
    }
}

/// Expand a service list: `redis-sentinel` stands for its three members.
#[must_use]
pub fn expand_names(names: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for n in names {
        if n == "redis-sentinel" {
            out.extend((1..=3).map(|i| ServiceKind::Sentinel(i).name()));
        } else {
            out.push(n.clone());
        }
    }
    out
}

/// Where a service runs: the address it listens on and the command prefix that reaches its host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Listen address (an IP); also the address clients use.
    pub listen: String,
    /// Command prefix, e.g. `[]`, `["ip","netns","exec","h1"]`, `["ssh","ops@host"]`. Every
    /// command for the service (init, start) runs through it. With `ssh`, environment variables
    /// are not forwarded and the recorded pid is the local ssh's.
    #[serde(default)]
    pub prefix: Vec<String>,
}

impl Default for Placement {
    fn default() -> Self {
        Placement {
            listen: "127.0.0.1".into(),
            prefix: Vec::new(),
        }
    }
}

/// How a stack is laid out (saved as `stack.json` in the run folder).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StackConfig {
    /// Ports are `base_port + offset`.
    pub base_port: u16,
    /// Placement of every service without an override.
    pub default: Placement,
    /// Per-service placement by service name.
    #[serde(default)]
    pub placements: BTreeMap<String, Placement>,
    /// Per-service port overrides by service name (e.g. ports a compose engine published);
    /// others are `base_port + offset`.
    #[serde(default)]
    pub ports: BTreeMap<String, u16>,
    /// Where PostgreSQL's data and socket folders live (`None`: `<run-dir>/pg`). [`Stack::new`]
    /// sets it to `/var/tmp/ctp-ops-pg-<hash of the run folder>` when a folder above the run
    /// folder does not let the `postgres` user through (a checkout under a 0700 home).
    #[serde(default)]
    pub pg_root: Option<PathBuf>,
    /// Program and leading arguments of the webhook receiver; the launcher appends
    /// `<listen:port> <alerts.jsonl>`. Empty: the webhook service is not part of the stack.
    #[serde(default)]
    pub webhook_cmd: Vec<String>,
}

impl Default for StackConfig {
    fn default() -> Self {
        StackConfig {
            base_port: DEFAULT_BASE_PORT,
            default: Placement::default(),
            placements: BTreeMap::new(),
            ports: BTreeMap::new(),
            pg_root: None,
            webhook_cmd: Vec::new(),
        }
    }
}

/// A stack rooted at a run folder.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Its layout.
    pub config: StackConfig,
}

/// How to start one service: program, arguments, environment, user.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Which service.
    pub kind: ServiceKind,
    /// Its name.
    pub name: String,
    /// Where it runs.
    pub placement: Placement,
    /// Its port.
    pub port: u16,
    /// Program to run (after the prefix and the user switch).
    pub program: PathBuf,
    /// Its arguments (never a secret).
    pub args: Vec<OsString>,
    /// Environment for the child (may carry a secret, e.g. `DATA_SOURCE_NAME`).
    pub env: Vec<(String, String)>,
    /// Run as this user (through `setpriv`, which execs, so the pid is the server's).
    pub run_as: Option<String>,
}

impl Stack {
    /// A stack in `run_dir` laid out by `config`. A relative `run_dir` is made absolute (the
    /// servers run in other working directories and are given paths inside it).
    #[must_use]
    pub fn new(run_dir: impl Into<PathBuf>, mut config: StackConfig) -> Self {
        let run_dir: PathBuf = run_dir.into();
        let run_dir = std::path::absolute(&run_dir).unwrap_or(run_dir);
        if config.pg_root.is_none() && !others_can_reach(&run_dir) {
            let hash =
                evidence_core::provenance::sha256_hex(run_dir.as_os_str().as_encoded_bytes());
            config.pg_root = Some(PathBuf::from(format!(
                "/var/tmp/ctp-ops-pg-{}",
                hash.get(..12).unwrap_or(&hash)
            )));
        }
        Stack { run_dir, config }
    }

    /// PostgreSQL's folder: [`StackConfig::pg_root`] or `<run-dir>/pg`.
    #[must_use]
    pub fn pg_base(&self) -> PathBuf {
        self.config
            .pg_root
            .clone()
            .unwrap_or_else(|| self.run_dir.join("pg"))
    }

    /// Open the stack saved in `run_dir/stack.json`.
    pub fn open(run_dir: &Path) -> Result<Option<Self>> {
        let p = run_dir.join("stack.json");
        let text = match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(EvidenceError::io("cannot read", &p, e)),
        };
        let config: StackConfig = serde_json::from_str(&text).map_err(|e| {
            EvidenceError::parse(
                p.display().to_string(),
                e.line(),
                "stack.json",
                "a stack layout",
                e.to_string(),
            )
        })?;
        Ok(Some(Stack::new(run_dir, config)))
    }

    /// Save the layout to `run_dir/stack.json`.
    pub fn save(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.config)
            .map_err(|e| EvidenceError::failed(format!("cannot encode stack.json: {e}")))?;
        evidence_core::io::write_atomic(&self.run_dir.join("stack.json"), text.as_bytes())
    }

    /// The services of this stack (the webhook only when a receiver command is set).
    #[must_use]
    pub fn kinds(&self) -> Vec<ServiceKind> {
        ServiceKind::all()
            .into_iter()
            .filter(|k| *k != ServiceKind::AlertWebhook || !self.config.webhook_cmd.is_empty())
            .collect()
    }

    /// Where `kind` runs.
    #[must_use]
    pub fn placement(&self, kind: ServiceKind) -> Placement {
        self.config
            .placements
            .get(&kind.name())
            .cloned()
            .unwrap_or_else(|| self.config.default.clone())
    }

    /// Port of `kind`.
    #[must_use]
    pub fn port(&self, kind: ServiceKind) -> u16 {
        self.config
            .ports
            .get(&kind.name())
            .copied()
            .unwrap_or_else(|| self.config.base_port.saturating_add(kind.port_offset()))
    }

    /// `listen:port` of `kind`.
    #[must_use]
    pub fn addr(&self, kind: ServiceKind) -> String {
        format!("{}:{}", self.placement(kind).listen, self.port(kind))
    }

    /// The service's own folder in the run folder.
    #[must_use]
    pub fn dir(&self, kind: ServiceKind) -> PathBuf {
        if kind.is_postgres() {
            self.pg_base().join(kind.name())
        } else {
            self.run_dir.join(kind.name())
        }
    }

    /// The PostgreSQL socket folder.
    #[must_use]
    pub fn pg_socket_dir(&self) -> PathBuf {
        self.pg_base().join("sock")
    }

    /// The password file.
    #[must_use]
    pub fn password_file(&self) -> PathBuf {
        self.run_dir.join("secrets").join("password")
    }

    /// The textfile-collector folder where drills drop `*.prom` files.
    #[must_use]
    pub fn textfile_dir(&self) -> PathBuf {
        self.run_dir.join("textfile")
    }

    /// The file the webhook receiver appends each Alertmanager notification to (JSONL).
    #[must_use]
    pub fn webhook_file(&self) -> PathBuf {
        self.run_dir.join("webhook").join("alerts.jsonl")
    }

    /// The stack's password (generated by [`crate::launch::prepare`]).
    pub fn password(&self) -> Result<String> {
        crate::secret::read_secret(&self.password_file())
    }

    /// How to start `kind` (configs must have been rendered by [`crate::launch::prepare`]).
    pub fn spec(&self, kind: ServiceKind, password: &str) -> ServiceSpec {
        use ServiceKind::*;
        let placement = self.placement(kind);
        let listen = placement.listen.clone();
        let port = self.port(kind);
        let dir = self.dir(kind);
        let os = |s: String| OsString::from(s);
        let mut env = Vec::new();
        let mut run_as = None;
        let (program, args): (PathBuf, Vec<OsString>) = match kind {
            RedisPrimary | RedisReplica => (
                "/usr/bin/redis-server".into(),
                vec![dir.join("redis.conf").into()],
            ),
            Sentinel(_) => (
                "/usr/bin/redis-sentinel".into(),
                vec![dir.join("sentinel.conf").into()],
            ),
            TimescalePrimary | TimescaleReplica => {
                run_as = Some("postgres".to_string());
                let mut args = vec![os("-D".into()), dir.clone().into()];
                args.extend(pg_flags(self, kind).into_iter().map(OsString::from));
                (Path::new(PG_BIN).join("postgres"), args)
            }
            Prometheus => (
                "/usr/bin/prometheus".into(),
                vec![
                    os(format!(
                        "--config.file={}",
                        dir.join("prometheus.yml").display()
                    )),
                    os(format!(
                        "--storage.tsdb.path={}",
                        dir.join("data").display()
                    )),
                    os(format!("--web.listen-address={listen}:{port}")),
                    os("--rules.alert.resend-delay=1s".into()),
                    os("--log.level=warn".into()),
                ],
            ),
            Alertmanager => (
                "/usr/bin/prometheus-alertmanager".into(),
                vec![
                    os(format!(
                        "--config.file={}",
                        dir.join("alertmanager.yml").display()
                    )),
                    os(format!("--storage.path={}", dir.join("data").display())),
                    os(format!("--web.listen-address={listen}:{port}")),
                    os("--cluster.listen-address=".into()),
                    os("--log.level=warn".into()),
                ],
            ),
            NodeExporter => (
                "/usr/bin/prometheus-node-exporter".into(),
                vec![
                    os(format!("--web.listen-address={listen}:{port}")),
                    os(format!(
                        "--collector.textfile.directory={}",
                        self.textfile_dir().display()
                    )),
                    os("--no-collector.systemd".into()),
                    os("--log.level=warn".into()),
                ],
            ),
            RedisExporter => {
                env.push(("REDIS_PASSWORD".into(), password.into()));
                (
                    "/usr/bin/prometheus-redis-exporter".into(),
                    vec![
                        os(format!("-web.listen-address={listen}:{port}")),
                        os(format!("-redis.addr=redis://{}", self.addr(RedisPrimary))),
                    ],
                )
            }
            PgExporterPrimary | PgExporterReplica => {
                let target = if kind == PgExporterPrimary {
                    TimescalePrimary
                } else {
                    TimescaleReplica
                };
                env.push((
                    "DATA_SOURCE_NAME".into(),
                    format!(
                        "postgresql://{PG_USER}:{password}@{}/{PG_DB}?sslmode=disable&connect_timeout=1",
                        self.addr(target)
                    ),
                ));
                (
                    "/usr/bin/prometheus-postgres-exporter".into(),
                    vec![
                        os(format!("--web.listen-address={listen}:{port}")),
                        os("--log.level=warn".into()),
                    ],
                )
            }
            AlertWebhook => {
                let mut it = self.config.webhook_cmd.iter();
                let program = it.next().cloned().unwrap_or_default().into();
                let mut args: Vec<OsString> = it.map(OsString::from).collect();
                args.push(os(format!("{listen}:{port}")));
                args.push(self.webhook_file().into());
                (program, args)
            }
        };
        ServiceSpec {
            kind,
            name: kind.name(),
            placement,
            port,
            program,
            args,
            env,
            run_as,
        }
    }
}

/// True when every existing folder above `dir` lets other users through (`o+x`).
#[must_use]
pub fn others_can_reach(dir: &Path) -> bool {
    dir.ancestors()
        .skip(1)
        .all(|a| fs::metadata(a).map_or(true, |m| m.permissions().mode() & 0o001 != 0))
}

/// True when every port of a stack with this base is free on `listen` (each can be bound now).
#[must_use]
pub fn base_port_free(listen: &str, base: u16) -> bool {
    ServiceKind::all().into_iter().all(|k| {
        base.checked_add(k.port_offset())
            .is_some_and(|p| std::net::TcpListener::bind((listen, p)).is_ok())
    })
}

/// A base port in 20000..32000 (below the ephemeral range, away from the default 17000) whose
/// ports are all free on 127.0.0.1, starting the search at a slot derived from `salt` (tests pass
/// their pid, so parallel tests start apart). `None` when every slot is taken.
#[must_use]
pub fn free_test_base_port(salt: u32) -> Option<u16> {
    let slots = 24u32;
    (0..slots)
        .map(|i| 20000 + u16::try_from(((salt + i) % slots) * 500).unwrap_or(0))
        .find(|b| base_port_free("127.0.0.1", *b))
}

/// Programs the native stack needs that are not installed (scripts/setup.sh installs them).
#[must_use]
pub fn missing_programs() -> Vec<String> {
    [
        "/usr/bin/redis-server",
        "/usr/bin/redis-sentinel",
        "/usr/bin/prometheus",
        "/usr/bin/prometheus-alertmanager",
        "/usr/bin/prometheus-node-exporter",
        "/usr/bin/prometheus-redis-exporter",
        "/usr/bin/prometheus-postgres-exporter",
        "/usr/lib/postgresql/15/bin/postgres",
        "/usr/lib/postgresql/15/bin/initdb",
        "/usr/lib/postgresql/15/bin/pg_basebackup",
        "/usr/bin/setpriv",
    ]
    .into_iter()
    .filter(|p| !Path::new(p).exists())
    .map(String::from)
    .collect()
}

/// The `-c name=value` flags a PostgreSQL server of the stack runs with.
#[must_use]
pub fn pg_flags(stack: &Stack, kind: ServiceKind) -> Vec<String> {
    let mut v = vec![
        format!("port={}", stack.port(kind)),
        format!("listen_addresses={}", stack.placement(kind).listen),
        format!(
            "unix_socket_directories={}",
            stack.pg_socket_dir().display()
        ),
        format!("hba_file={}", stack.dir(kind).join("pg_hba.conf").display()),
        "wal_level=replica".into(),
        "max_wal_senders=10".into(),
        "hot_standby=on".into(),
        "wal_retrieve_retry_interval=200ms".into(),
        "password_encryption=scram-sha-256".into(),
        "logging_collector=off".into(),
        "shared_buffers=32MB".into(),
    ];
    if kind == ServiceKind::TimescalePrimary && timescaledb_available() {
        v.push("shared_preload_libraries=timescaledb".into());
    }
    v.into_iter().flat_map(|f| ["-c".to_string(), f]).collect()
}

/// True when the TimescaleDB extension is installed for PostgreSQL 15.
#[must_use]
pub fn timescaledb_available() -> bool {
    Path::new("/usr/share/postgresql/15/extension/timescaledb.control").exists()
}

/// `timescaledb` when installed, else `none` (the stack's `extension` field).
#[must_use]
pub fn extension() -> &'static str {
    if timescaledb_available() {
        "timescaledb"
    } else {
        "none"
    }
}

/// `redis.conf` of the primary or the replica.
#[must_use]
pub fn render_redis_conf(stack: &Stack, kind: ServiceKind, password: &str) -> String {
    let p = stack.placement(kind);
    let mut s = format!(
        "# written by ctp-ops stack-core; rewritten by Sentinel on failover\n\
         bind {listen}\nport {port}\nprotected-mode no\ndaemonize no\nlogfile \"\"\n\
         dir {dir}\nappendonly yes\nsave \"\"\nrequirepass {password}\nmasterauth {password}\n\
         repl-diskless-sync yes\nrepl-diskless-sync-delay 0\n",
        listen = bind_list(&p.listen),
        port = stack.port(kind),
        dir = stack.dir(kind).join("data").display(),
    );
    if kind == ServiceKind::RedisReplica {
        let primary = ServiceKind::RedisPrimary;
        s.push_str(&format!(
            "replicaof {} {}\n",
            stack.placement(primary).listen,
            stack.port(primary)
        ));
    }
    s
}

fn bind_list(listen: &str) -> String {
    if listen == "127.0.0.1" {
        listen.to_string()
    } else {
        format!("{listen} 127.0.0.1")
    }
}

/// `sentinel.conf` of sentinel `n` (quorum 2 of 3; the file must stay writable).
#[must_use]
pub fn render_sentinel_conf(stack: &Stack, n: u8, password: &str) -> String {
    let kind = ServiceKind::Sentinel(n);
    let p = stack.placement(kind);
    let primary = ServiceKind::RedisPrimary;
    format!(
        "# written by ctp-ops stack-core; Sentinel rewrites this file\n\
         bind {listen}\nport {port}\nprotected-mode no\ndaemonize no\nlogfile \"\"\ndir {dir}\n\
         requirepass {password}\n\
         sentinel monitor {MASTER_NAME} {mhost} {mport} 2\n\
         sentinel auth-pass {MASTER_NAME} {password}\n\
         sentinel down-after-milliseconds {MASTER_NAME} 2000\n\
         sentinel failover-timeout {MASTER_NAME} 10000\n\
         sentinel parallel-syncs {MASTER_NAME} 1\n",
        listen = bind_list(&p.listen),
        port = stack.port(kind),
        dir = stack.dir(kind).display(),
        mhost = stack.placement(primary).listen,
        mport = stack.port(primary),
    )
}

/// `pg_hba.conf`: SCRAM for everything, from loopback and the server's own network.
#[must_use]
pub fn render_pg_hba() -> String {
    "# written by ctp-ops stack-core\n\
     local all all scram-sha-256\n\
     host all all 127.0.0.1/32 scram-sha-256\n\
     host all all samenet scram-sha-256\n\
     host replication all 127.0.0.1/32 scram-sha-256\n\
     host replication all samenet scram-sha-256\n"
        .to_string()
}

/// `prometheus.yml`: 1 s scrapes of every exporter (PostgreSQL exporters every 2 s with a 2 s
/// timeout: postgres_exporter takes ≥ 1 s per scrape while its database is down), the rules file,
/// and Alertmanager as the alert target.
#[must_use]
pub fn render_prometheus_yml(stack: &Stack) -> String {
    use ServiceKind::*;
    let t = |k: ServiceKind| format!("'{}'", stack.addr(k));
    let redis_targets: Vec<String> = [
        RedisPrimary,
        RedisReplica,
        Sentinel(1),
        Sentinel(2),
        Sentinel(3),
    ]
    .iter()
    .map(|k| format!("'redis://{}'", stack.addr(*k)))
    .collect();
    let lines = [
        "# written by ctp-ops stack-core".to_string(),
        "global:".into(),
        "  scrape_interval: 1s".into(),
        "  scrape_timeout: 1s".into(),
        "  evaluation_interval: 1s".into(),
        "rule_files:".into(),
        format!(
            "  - '{}'",
            stack.dir(Prometheus).join("rules.yml").display()
        ),
        "alerting:".into(),
        "  alertmanagers:".into(),
        "    - static_configs:".into(),
        format!("        - targets: [{}]", t(Alertmanager)),
        "scrape_configs:".into(),
        "  - job_name: prometheus".into(),
        "    static_configs:".into(),
        format!("      - targets: [{}]", t(Prometheus)),
        "  - job_name: alertmanager".into(),
        "    static_configs:".into(),
        format!("      - targets: [{}]", t(Alertmanager)),
        "  - job_name: node".into(),
        "    static_configs:".into(),
        format!("      - targets: [{}]", t(NodeExporter)),
        "  - job_name: redis_exporter".into(),
        "    static_configs:".into(),
        format!("      - targets: [{}]", t(RedisExporter)),
        "  - job_name: redis".into(),
        "    metrics_path: /scrape".into(),
        "    static_configs:".into(),
        format!("      - targets: [{}]", redis_targets.join(", ")),
        "    relabel_configs:".into(),
        "      - source_labels: [__address__]".into(),
        "        target_label: __param_target".into(),
        "      - source_labels: [__param_target]".into(),
        "        target_label: instance".into(),
        "      - target_label: __address__".into(),
        format!("        replacement: {}", t(RedisExporter)),
        "  - job_name: postgres".into(),
        "    scrape_interval: 2s".into(),
        "    scrape_timeout: 2s".into(),
        "    static_configs:".into(),
        format!("      - targets: [{}]", t(PgExporterPrimary)),
        "        labels: {service: timescale-primary}".into(),
        format!("      - targets: [{}]", t(PgExporterReplica)),
        "        labels: {service: timescale-replica}".into(),
    ];
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// The alerting rules: `RedisDown` (`redis_up == 0`), `PostgresDown` (`pg_up == 0`) and
/// `CtpOpsDrillAlert` (`ctp_ops_drill_alert > 0`, from the textfile folder, for tests and drills).
#[must_use]
pub fn render_rules_yml() -> String {
    let lines = [
        "# written by ctp-ops stack-core",
        "groups:",
        "  - name: ctp-ops-prodlike",
        "    interval: 1s",
        "    rules:",
        "      - alert: RedisDown",
        "        expr: redis_up == 0",
        "        labels: {severity: critical}",
        "        annotations: {summary: 'Redis {{ $labels.instance }} is down'}",
        "      - alert: PostgresDown",
        "        expr: pg_up == 0",
        "        labels: {severity: critical}",
        "        annotations: {summary: 'PostgreSQL behind {{ $labels.instance }} is down'}",
        "      - alert: CtpOpsDrillAlert",
        "        expr: ctp_ops_drill_alert > 0",
        "        labels: {severity: warning}",
        "        annotations: {summary: 'drill alert {{ $labels.drill }}'}",
    ];
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// `alertmanager.yml`: one webhook receiver, `group_wait: 0s`, `group_interval: 1s`.
#[must_use]
pub fn render_alertmanager_yml(stack: &Stack) -> String {
    let lines = [
        "# written by ctp-ops stack-core".to_string(),
        "route:".into(),
        "  receiver: webhook".into(),
        "  group_by: ['alertname', 'instance']".into(),
        "  group_wait: 0s".into(),
        "  group_interval: 1s".into(),
        "  repeat_interval: 1h".into(),
        "receivers:".into(),
        "  - name: webhook".into(),
        "    webhook_configs:".into(),
        format!(
            "      - url: 'http://{}/alerts'",
            stack.addr(ServiceKind::AlertWebhook)
        ),
        "        send_resolved: true".into(),
    ];
    let mut s = lines.join("\n");
    s.push('\n');
    s
}

/// `chmod mode path`.
pub(crate) fn chmod(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| EvidenceError::io("cannot chmod", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_names_and_placements() {
        let mut cfg = StackConfig::default();
        cfg.placements.insert(
            "redis-replica".into(),
            Placement {
                listen: "198.18.0.2".into(),
                prefix: vec!["ip".into(), "netns".into(), "exec".into(), "h2".into()],
            },
        );
        let s = Stack::new("/tmp/x", cfg);
        assert_eq!(s.addr(ServiceKind::RedisPrimary), "127.0.0.1:17001");
        assert_eq!(s.addr(ServiceKind::RedisReplica), "198.18.0.2:17002");
        assert_eq!(
            ServiceKind::from_name("redis-sentinel-2"),
            Some(ServiceKind::Sentinel(2))
        );
        let conf = render_redis_conf(&s, ServiceKind::RedisReplica, "pw");
        assert!(conf.contains("bind 198.18.0.2 127.0.0.1\n"), "{conf}");
        assert!(conf.contains("replicaof 127.0.0.1 17001\n"), "{conf}");
        let sc = render_sentinel_conf(&s, 1, "pw");
        assert!(
            sc.contains("sentinel monitor mymaster 127.0.0.1 17001 2\n"),
            "{sc}"
        );
        assert_eq!(
            expand_names(&["redis-sentinel".into(), "prometheus".into()]).len(),
            4
        );
        // No standard port with the default base.
        for k in ServiceKind::all() {
            assert!(s.port(k) > 17000);
        }
    }

    #[test]
    fn pg_root_moves_out_of_a_closed_home() {
        let d = tempfile::tempdir().unwrap();
        chmod(d.path(), 0o700).unwrap();
        let s = Stack::new(d.path().join("run"), StackConfig::default());
        let root = s.config.pg_root.clone().unwrap();
        assert!(
            root.to_string_lossy().starts_with("/var/tmp/ctp-ops-pg-"),
            "{root:?}"
        );
        assert!(s.dir(ServiceKind::TimescalePrimary).starts_with(&root));
        chmod(d.path(), 0o711).unwrap();
        let s = Stack::new(d.path().join("run"), StackConfig::default());
        assert_eq!(s.pg_base(), d.path().join("run/pg"));
    }

    #[test]
    fn pg_spec_runs_as_postgres_with_flags() {
        let s = Stack::new("/run/x", StackConfig::default());
        let spec = s.spec(ServiceKind::TimescaleReplica, "pw");
        assert_eq!(spec.run_as.as_deref(), Some("postgres"));
        let args: Vec<String> = spec
            .args
            .iter()
            .map(|a| a.to_string_lossy().into())
            .collect();
        assert!(
            args.contains(&"wal_retrieve_retry_interval=200ms".to_string()),
            "{args:?}"
        );
        assert!(args.contains(&"port=17022".to_string()), "{args:?}");
        assert!(!args.iter().any(|a| a.contains("pw")));
    }
}
