//! `render-k8s`: writes the Kubernetes manifests of the data pipeline with the original
//! `render_k8s_manifests` flags, file names and object names, plus a CronJob per drill.
//!
//! Fixed against the original: the example secret is written but is not in the kustomization (the
//! Deployment needs a real `quant-hft-archive-secret`, created by the operator); readiness,
//! liveness and startup probes; resource requests and limits; a restricted securityContext (non-root,
//! no privilege escalation, read-only root filesystem, all capabilities dropped, RuntimeDefault
//! seccomp); `--replicas` above 1 with a ReadWriteOnce volume is refused; every value is serialised
//! through serde (never pasted into YAML text); `--repo-root` is the base of a relative
//! `--output-dir`; tag `latest` is pulled `Always`.

use std::path::{Path, PathBuf};

use clap::{Parser, ValueEnum};
use evidence_core::cli::{self, EXIT_STATUS_HELP};
use evidence_core::{EvidenceError, Exit, Result};
use serde_json::{Value, json};

const AFTER_HELP: &str = "EXAMPLE:\n  render-k8s --image-repository ghcr.io/acme/quant-hft --image-tag v0.1.0 --output-dir deploy/k8s\n  kubectl -n quant-hft create secret generic quant-hft-archive-secret --from-env-file=archive.env\n  kubectl apply -k deploy/k8s\n\nThe example secret (secret-archive.example.yaml) is not part of kustomization.yaml: create the\nreal secret first. Stdout is {\"output_dir\": ..., \"files\": [...]} (the original's shape).";

/// Render the Kubernetes manifests of the data pipeline, and a CronJob per drill.
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}\n\n{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// Base of a relative --output-dir (the original accepted it and ignored it).
    #[arg(long, default_value = ".")]
    pub repo_root: PathBuf,
    /// Where to write the manifests (relative to --repo-root).
    #[arg(long, default_value = "deploy/k8s")]
    pub output_dir: PathBuf,
    /// Namespace of every object.
    #[arg(long, default_value = "quant-hft")]
    pub namespace: String,
    /// Image repository of the data pipeline.
    #[arg(long, default_value = "quant-hft")]
    pub image_repository: String,
    /// Image tag (`latest` is pulled Always; pin a version).
    #[arg(long, default_value = "latest")]
    pub image_tag: String,
    /// Replicas of the data pipeline (at least 1; above 1 needs --pvc-access-mode ReadWriteMany).
    #[arg(long, default_value_t = 1)]
    pub replicas: i64,
    /// Size of the runtime volume.
    #[arg(long, default_value = "20Gi")]
    pub runtime_pvc_size: String,
    /// Access mode of the runtime volume.
    #[arg(long, value_enum, default_value_t = AccessMode::ReadWriteOnce)]
    pub pvc_access_mode: AccessMode,
    /// Working directory in the container.
    #[arg(long, default_value = "/app")]
    pub container_workdir: String,
    /// Python interpreter (relative paths are under the workdir).
    #[arg(long, default_value = ".venv/bin/python")]
    pub python_bin: String,
    /// Pipeline entry point (relative paths are under the workdir).
    #[arg(long, default_value = "scripts/data_pipeline/run_pipeline.py")]
    pub pipeline_entrypoint: String,
    /// Analytics database (relative paths are under the workdir).
    #[arg(long, default_value = "runtime/analytics.duckdb")]
    pub analytics_db: String,
    /// Export folder (relative paths are under the workdir).
    #[arg(long, default_value = "runtime/exports")]
    pub export_dir: String,
    /// Local archive folder (relative paths are under the workdir).
    #[arg(long, default_value = "runtime/archive")]
    pub archive_local_dir: String,
    /// Archive endpoint.
    #[arg(long, default_value = "minio:9000")]
    pub archive_endpoint: String,
    /// Archive bucket.
    #[arg(long, default_value = "quant-archive")]
    pub archive_bucket: String,
    /// Archive key prefix.
    #[arg(long, default_value = "etl")]
    pub archive_prefix: String,
    /// Seconds between pipeline iterations (at least 1).
    #[arg(long, default_value_t = 60.0)]
    pub interval_seconds: f64,
    /// CPU request of the pipeline.
    #[arg(long, default_value = "250m")]
    pub cpu_request: String,
    /// CPU limit of the pipeline.
    #[arg(long, default_value = "1")]
    pub cpu_limit: String,
    /// Memory request of the pipeline.
    #[arg(long, default_value = "512Mi")]
    pub memory_request: String,
    /// Memory limit of the pipeline.
    #[arg(long, default_value = "2Gi")]
    pub memory_limit: String,
    /// UID (and GID) the containers run as.
    #[arg(long, default_value_t = 10001)]
    pub run_as_user: i64,
    /// Image of the ctp-ops tools for the drill CronJobs (installed layout: /usr/local/bin,
    /// /usr/local/etc/ctp-ops); default ctp-ops:VERSION (this version).
    #[arg(long)]
    pub drills_image: Option<String>,
    /// Drills to render a CronJob for (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "wal,rollback,reconnect,preflight,failover"
    )]
    pub drills: Vec<Drill>,
    /// Render no drill CronJobs.
    #[arg(long)]
    pub no_drills: bool,
    /// Size of the drills' results volume.
    #[arg(long, default_value = "1Gi")]
    pub results_pvc_size: String,
}

/// Volume access mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[allow(clippy::enum_variant_names)]
pub enum AccessMode {
    /// One node at a time (one replica).
    #[value(name = "ReadWriteOnce")]
    ReadWriteOnce,
    /// Many nodes (replicas may exceed 1).
    #[value(name = "ReadWriteMany")]
    ReadWriteMany,
    /// One pod at a time.
    #[value(name = "ReadWriteOncePod")]
    ReadWriteOncePod,
}

impl AccessMode {
    fn name(self) -> &'static str {
        match self {
            AccessMode::ReadWriteOnce => "ReadWriteOnce",
            AccessMode::ReadWriteMany => "ReadWriteMany",
            AccessMode::ReadWriteOncePod => "ReadWriteOncePod",
        }
    }
}

/// A drill with a CronJob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Drill {
    /// SOP 4: WAL crash recovery.
    Wal,
    /// SOP 5: deploy/rollback.
    Rollback,
    /// SOP 2/3: reconnect under faults.
    Reconnect,
    /// SOP 1: preflight.
    Preflight,
    /// SOP 8: failover.
    Failover,
}

impl Drill {
    fn name(self) -> &'static str {
        match self {
            Drill::Wal => "wal",
            Drill::Rollback => "rollback",
            Drill::Reconnect => "reconnect",
            Drill::Preflight => "preflight",
            Drill::Failover => "failover",
        }
    }
    /// Cron schedule in Asia/Shanghai, outside every session.
    fn schedule(self) -> &'static str {
        match self {
            Drill::Preflight => "30 8 * * 1-5",
            Drill::Reconnect => "0 10 * * 6",
            Drill::Wal => "30 10 * * 6",
            Drill::Rollback => "0 11 * * 6",
            Drill::Failover => "30 11 * * 6",
        }
    }
}

const BIN: &str = "/usr/local/bin";
const ETC: &str = "/usr/local/etc/ctp-ops";
const STATE: &str = "/var/lib/ctp-ops";

impl Drill {
    /// The commands, run one after the other (init containers, then the last as the container).
    fn commands(self) -> Vec<Vec<String>> {
        let v = |x: &[&str]| x.iter().map(ToString::to_string).collect::<Vec<_>>();
        let b = |t: &str| format!("{BIN}/{t}");
        let r = |f: &str| format!("{STATE}/results/{f}");
        let st = |f: &str| format!("{STATE}/{f}");
        let c = |f: &str| format!("{ETC}/{f}");
        match self {
            Drill::Wal => vec![
                [
                    vec![b("wal-drill"), "--execute".into(), "--wal-path".into()],
                    vec![st("runtime/wal/runtime_events.wal"), "--output-file".into()],
                    vec![r("wal_recovery_result.env")],
                ]
                .concat(),
                [
                    vec![b("wal-verify"), "--evidence-file".into()],
                    vec![r("wal_recovery_result.env")],
                    v(&["--max-rto-seconds", "10", "--max-rpo-events", "0"]),
                ]
                .concat(),
            ],
            Drill::Rollback => vec![
                [
                    vec![b("rollback-drill")],
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
                    vec![b("rollback-verify"), "--evidence-file".into()],
                    vec![r("deploy_rollback_result.env")],
                    v(&["--max-rollback-seconds", "180"]),
                ]
                .concat(),
            ],
            Drill::Reconnect => vec![
                [
                    vec![
                        b("reconnect-evidence"),
                        "--config".into(),
                        c("sim/local.yaml"),
                    ],
                    v(&["--execute-faults", "--local-ports", "free", "--calendar"]),
                    vec![c("calendar/cn-futures-2026.yaml")],
                    vec!["--runtime-dir".into(), st("runtime")],
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
                    vec![b("ctp-preflight"), "--config".into(), c("sim/ctp.yaml")],
                    vec!["--calendar".into(), c("calendar/cn-futures-2026.yaml")],
                    vec!["--runtime-dir".into(), st("runtime"), "--json".into()],
                    vec!["--output-file".into(), r("preflight_result.json")],
                ]
                .concat(),
            ],
            Drill::Failover => vec![
                [
                    vec![b("failover-orchestrator"), "--env-config".into()],
                    vec![c("deploy/environments/prodlike_multi_host.yaml")],
                    vec!["--execute".into(), "--output-file".into()],
                    vec![r("failover_result.env")],
                ]
                .concat(),
                [
                    vec![b("failover-verify"), "--evidence-file".into()],
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
}

/// The stdout JSON (the original's shape).
#[derive(Debug, serde::Serialize)]
struct Summary {
    output_dir: String,
    files: Vec<String>,
}

/// A DNS-1123 label (namespaces, object names).
fn dns_label(flag: &str, v: &str) -> Result<()> {
    let ok = !v.is_empty()
        && v.len() <= 63
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-')
        && !v.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(EvidenceError::usage(format!(
            "{flag}: expected a DNS-1123 label (lower-case letters, digits, '-', at most 63), found {v:?}"
        )))
    }
}

fn non_empty(flag: &str, v: &str) -> Result<()> {
    if v.trim().is_empty() || v.chars().any(char::is_control) {
        Err(EvidenceError::usage(format!(
            "{flag}: expected a non-empty value without control characters, found {v:?}"
        )))
    } else {
        Ok(())
    }
}

/// A Kubernetes quantity: digits (with an optional fraction) and an optional suffix.
fn quantity(flag: &str, v: &str) -> Result<()> {
    let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &v[digits.len()..];
    let ok = !digits.is_empty()
        && digits
            .parse::<f64>()
            .is_ok_and(|x| x.is_finite() && x > 0.0)
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && ["", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"].contains(&suffix);
    if ok {
        Ok(())
    } else {
        Err(EvidenceError::usage(format!(
            "{flag}: expected a positive Kubernetes quantity such as 250m, 512Mi or 20Gi, found {v:?}"
        )))
    }
}

fn join_workdir(workdir: &str, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), p)
    }
}

fn fmt_g(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn yaml(v: &Value) -> Result<String> {
    yaml_serde::to_string(v)
        .map_err(|e| EvidenceError::failed(format!("cannot serialise a manifest: {e}")))
}

fn restricted_container() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "runAsNonRoot": true,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

fn pod_security(uid: i64) -> Value {
    json!({
        "runAsNonRoot": true,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// Render and write every file; print the summary JSON.
#[allow(clippy::too_many_lines)]
pub fn run(cli: Cli) -> Result<Exit> {
    dns_label("--namespace", &cli.namespace)?;
    non_empty("--image-repository", &cli.image_repository)?;
    non_empty("--image-tag", &cli.image_tag)?;
    if cli.image_repository.contains(char::is_whitespace)
        || cli
            .image_tag
            .contains(|c: char| c.is_whitespace() || c == ':' || c == '/')
    {
        return Err(EvidenceError::usage(format!(
            "--image-repository/--image-tag: not an image reference: {:?}:{:?}",
            cli.image_repository, cli.image_tag
        )));
    }
    for (flag, v) in [
        ("--container-workdir", &cli.container_workdir),
        ("--python-bin", &cli.python_bin),
        ("--pipeline-entrypoint", &cli.pipeline_entrypoint),
        ("--analytics-db", &cli.analytics_db),
        ("--export-dir", &cli.export_dir),
        ("--archive-local-dir", &cli.archive_local_dir),
        ("--archive-endpoint", &cli.archive_endpoint),
        ("--archive-bucket", &cli.archive_bucket),
        ("--archive-prefix", &cli.archive_prefix),
    ] {
        non_empty(flag, v)?;
    }
    if !cli.container_workdir.starts_with('/') {
        return Err(EvidenceError::usage(format!(
            "--container-workdir: expected an absolute path, found {:?}",
            cli.container_workdir
        )));
    }
    for (flag, v) in [
        ("--runtime-pvc-size", &cli.runtime_pvc_size),
        ("--results-pvc-size", &cli.results_pvc_size),
        ("--cpu-request", &cli.cpu_request),
        ("--cpu-limit", &cli.cpu_limit),
        ("--memory-request", &cli.memory_request),
        ("--memory-limit", &cli.memory_limit),
    ] {
        quantity(flag, v)?;
    }
    if !cli.interval_seconds.is_finite() {
        return Err(EvidenceError::usage(format!(
            "--interval-seconds must be a finite number, found {}",
            cli.interval_seconds
        )));
    }
    if cli.run_as_user <= 0 {
        return Err(EvidenceError::usage(format!(
            "--run-as-user must be a non-root UID (> 0), found {}",
            cli.run_as_user
        )));
    }
    let replicas = cli.replicas.max(1);
    if replicas > 1 && cli.pvc_access_mode != AccessMode::ReadWriteMany {
        return Err(EvidenceError::usage(format!(
            "--replicas {replicas} with a {} runtime volume: the extra pods cannot mount it on other nodes (they stay Pending) and would share one analytics database; use --replicas 1, or --pvc-access-mode ReadWriteMany on storage that supports it",
            cli.pvc_access_mode.name()
        )));
    }
    let interval = cli.interval_seconds.max(1.0);
    let wd = cli.container_workdir.trim_end_matches('/').to_string();
    let wd = if wd.is_empty() { "/".to_string() } else { wd };
    let ns = cli.namespace.as_str();
    let app = "quant-hft-data-pipeline";
    let labels = json!({"app.kubernetes.io/name": app, "app.kubernetes.io/part-of": "quant-hft"});
    let image = format!("{}:{}", cli.image_repository, cli.image_tag);
    let pull = if cli.image_tag == "latest" {
        cli::warn("--image-tag latest: pulled Always; pin a version for reproducible rollbacks");
        "Always"
    } else {
        "IfNotPresent"
    };

    let mut files: Vec<(String, Value, bool)> = Vec::new();
    files.push((
        "namespace.yaml".into(),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted"}}}),
        true,
    ));
    files.push((
        "configmap-data-pipeline.yaml".into(),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "quant-hft-data-pipeline-config", "namespace": ns, "labels": labels},
        "data": {
            "QUANT_HFT_ARCHIVE_ENDPOINT": cli.archive_endpoint,
            "QUANT_HFT_ARCHIVE_BUCKET": cli.archive_bucket,
            "QUANT_HFT_ARCHIVE_PREFIX": cli.archive_prefix,
            "QUANT_HFT_ARCHIVE_LOCAL_DIR": join_workdir(&wd, &cli.archive_local_dir),
        }}),
        true,
    ));
    files.push((
        "secret-archive.example.yaml".into(),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "quant-hft-archive-secret", "namespace": ns, "labels": labels},
        "stringData": {
            "QUANT_HFT_ARCHIVE_ACCESS_KEY": "replace_with_access_key",
            "QUANT_HFT_ARCHIVE_SECRET_KEY": "replace_with_secret_key",
        }}),
        false,
    ));
    files.push((
        "persistentvolumeclaim-runtime.yaml".into(),
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "quant-hft-runtime", "namespace": ns, "labels": labels},
            "spec": {"accessModes": [cli.pvc_access_mode.name()],
                "resources": {"requests": {"storage": cli.runtime_pvc_size}}}}),
        true,
    ));
    let python = join_workdir(&wd, &cli.python_bin);
    let analytics_db = join_workdir(&wd, &cli.analytics_db);
    let command = vec![
        python.clone(),
        join_workdir(&wd, &cli.pipeline_entrypoint),
        "--analytics-db".into(),
        analytics_db.clone(),
        "--export-dir".into(),
        join_workdir(&wd, &cli.export_dir),
        "--archive-local-dir".into(),
        join_workdir(&wd, &cli.archive_local_dir),
        "--iterations".into(),
        "0".into(),
        "--interval-seconds".into(),
        fmt_g(interval),
    ];
    // The pipeline has no HTTP port: ready once the runtime volume is mounted; alive while it
    // keeps writing its analytics database (at most 3 intervals, at least 5 minutes, old).
    #[allow(clippy::cast_possible_truncation)]
    let max_age = (interval * 3.0).max(300.0).ceil() as i64;
    let alive_check = format!(
        "import os,sys,time\np=sys.argv[1]\nsys.exit(0 if not os.path.exists(p) or time.time()-os.path.getmtime(p) < {max_age} else 1)"
    );
    let runtime_mount = format!("{}/runtime", wd.trim_end_matches('/'));
    let strategy = if cli.pvc_access_mode == AccessMode::ReadWriteMany {
        json!({"type": "RollingUpdate"})
    } else {
        // A second pod cannot mount a ReadWriteOnce volume on another node: replace, not overlap.
        json!({"type": "Recreate"})
    };
    files.push((
        "deployment-data-pipeline.yaml".into(),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": app, "namespace": ns, "labels": labels},
            "spec": {
                "replicas": replicas,
                "strategy": strategy,
                "selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": pod_security(cli.run_as_user),
                        "containers": [{
                            "name": "data-pipeline",
                            "image": image,
                            "imagePullPolicy": pull,
                            "workingDir": wd,
                            "command": command,
                            "envFrom": [
                                {"configMapRef": {"name": "quant-hft-data-pipeline-config"}},
                                {"secretRef": {"name": "quant-hft-archive-secret"}},
                            ],
                            "resources": {
                                "requests": {"cpu": cli.cpu_request, "memory": cli.memory_request},
                                "limits": {"cpu": cli.cpu_limit, "memory": cli.memory_limit},
                            },
                            "securityContext": restricted_container(),
                            "startupProbe": {"exec": {"command": ["test", "-d", runtime_mount]},
                                "periodSeconds": 5, "failureThreshold": 24},
                            "readinessProbe": {"exec": {"command": ["test", "-w", runtime_mount]},
                                "periodSeconds": 10, "failureThreshold": 3},
                            "livenessProbe": {"exec": {"command": [python, "-c", alive_check, analytics_db]},
                                "periodSeconds": 60, "timeoutSeconds": 10, "failureThreshold": 3},
                            "volumeMounts": [
                                {"name": "runtime-volume", "mountPath": runtime_mount},
                                {"name": "tmp", "mountPath": "/tmp"},
                            ],
                        }],
                        "volumes": [
                            {"name": "runtime-volume", "persistentVolumeClaim": {"claimName": "quant-hft-runtime"}},
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    }
                }
            }}),
        true,
    ));
    let drills: Vec<Drill> = if cli.no_drills {
        Vec::new()
    } else {
        let mut d = cli.drills.clone();
        d.dedup();
        d
    };
    if !drills.is_empty() {
        let drills_image = cli
            .drills_image
            .clone()
            .unwrap_or_else(|| format!("ctp-ops:{}", env!("CARGO_PKG_VERSION")));
        non_empty("--drills-image", &drills_image)?;
        files.push((
            "persistentvolumeclaim-drill-results.yaml".into(),
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "ctp-ops-drill-results", "namespace": ns,
                    "labels": {"app.kubernetes.io/part-of": "ctp-ops"}},
                "spec": {"accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": cli.results_pvc_size}}}}),
            true,
        ));
        for d in drills {
            files.push((
                format!("cronjob-{}-drill.yaml", d.name()),
                cronjob(d, ns, &drills_image, cli.run_as_user),
                true,
            ));
        }
    }
    let resources: Vec<String> = files
        .iter()
        .filter(|(_, _, k)| *k)
        .map(|(n, _, _)| n.clone())
        .collect();
    let kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": ns,
        "resources": resources,
    });

    let base = if cli.output_dir.is_absolute() {
        cli.output_dir.clone()
    } else {
        cli.repo_root.join(&cli.output_dir)
    };
    let mut paths = Vec::new();
    let mut write = |name: &str, text: String| -> Result<()> {
        let p = base.join(name);
        evidence_core::io::write_atomic(&p, text.as_bytes())?;
        paths.push(display_abs(&p));
        Ok(())
    };
    for (name, v, _) in &files {
        let mut text = yaml(v)?;
        if name == "secret-archive.example.yaml" {
            text = format!(
                "# Example only: not in kustomization.yaml. Create the real secret with\n#   kubectl -n {ns} create secret generic quant-hft-archive-secret --from-env-file=<file>\n{text}"
            );
        }
        write(name, text)?;
    }
    write("kustomization.yaml", yaml(&kustomization)?)?;
    let summary = Summary {
        output_dir: cli.output_dir.display().to_string(),
        files: paths,
    };
    let mut json = serde_json::to_string_pretty(&summary)
        .map_err(|e| EvidenceError::failed(format!("cannot serialise the summary: {e}")))?;
    json.push('\n');
    cli::stdout_write(&json)?;
    Ok(Exit::Pass)
}

fn display_abs(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

fn cronjob(d: Drill, ns: &str, image: &str, uid: i64) -> Value {
    let name = format!("ctp-ops-{}-drill", d.name());
    let labels = json!({"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "ctp-ops"});
    let container = |n: &str, command: Vec<String>| {
        json!({
            "name": n,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": command,
            "env": [
                {"name": "CTP_OPS_CONFIG_DIR", "value": ETC},
                {"name": "CTP_OPS_RESULTS_DIR", "value": format!("{STATE}/results")},
            ],
            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                "limits": {"cpu": "1", "memory": "512Mi"}},
            "securityContext": restricted_container(),
            "volumeMounts": [
                {"name": "state", "mountPath": STATE},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        })
    };
    // Sequential steps: init containers run one after the other, the last step is the container.
    // The session guard goes first: inside a trading session the run stops there.
    let mut steps = vec![vec![
        format!("{BIN}/session-guard"),
        "--calendar".to_string(),
        format!("{ETC}/calendar/cn-futures-2026.yaml"),
    ]];
    steps.extend(d.commands());
    let last = steps.pop().unwrap_or_default();
    let init: Vec<Value> = steps
        .into_iter()
        .enumerate()
        .map(|(i, c)| container(if i == 0 { "session-guard" } else { "drill" }, c))
        .collect();
    json!({"apiVersion": "batch/v1", "kind": "CronJob",
    "metadata": {"name": name, "namespace": ns, "labels": labels},
    "spec": {
        "schedule": d.schedule(),
        "timeZone": "Asia/Shanghai",
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": 600,
        "successfulJobsHistoryLimit": 3,
        "failedJobsHistoryLimit": 5,
        "jobTemplate": {"spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": pod_security(uid),
                    "initContainers": init,
                    "containers": [container(if d.commands().len() > 1 { "verify" } else { "drill" }, last)],
                    "volumes": [
                        {"name": "state", "persistentVolumeClaim": {"claimName": "ctp-ops-drill-results"}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                }
            }
        }}
    }})
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
    fn checks() {
        assert!(dns_label("--namespace", "quant-hft").is_ok());
        assert!(dns_label("--namespace", "Quant").is_err());
        assert!(dns_label("--namespace", "").is_err());
        assert!(quantity("x", "20Gi").is_ok());
        assert!(quantity("x", "250m").is_ok());
        assert!(quantity("x", "20 Gi").is_err());
        assert!(quantity("x", "0").is_err());
        assert_eq!(join_workdir("/app", "runtime/x"), "/app/runtime/x");
        assert_eq!(join_workdir("/app", "/abs"), "/abs");
    }
}
