//! render-k8s: fixture tests of the manifests, and `kubernetes-validate --strict` (PyPI, bundles
//! the Kubernetes schemas; scripts/setup.sh installs it in a venv) on every manifest.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::path::{Path, PathBuf};

use test_support::{run, skip};

const BIN: &str = env!("CARGO_BIN_EXE_render-k8s");

const FILES: &[&str] = &[
    "namespace.yaml",
    "configmap-data-pipeline.yaml",
    "secret-archive.example.yaml",
    "persistentvolumeclaim-runtime.yaml",
    "deployment-data-pipeline.yaml",
    "persistentvolumeclaim-drill-results.yaml",
    "cronjob-wal-drill.yaml",
    "cronjob-rollback-drill.yaml",
    "cronjob-reconnect-drill.yaml",
    "cronjob-preflight-drill.yaml",
    "cronjob-failover-drill.yaml",
    "kustomization.yaml",
];

/// kubernetes-validate: $KUBERNETES_VALIDATE, PATH, or the venv scripts/setup.sh makes.
fn validator() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KUBERNETES_VALIDATE") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("kubernetes-validate"))
            .find(|p| p.is_file())
    }) {
        return Some(p);
    }
    let cache = std::env::var_os("CTP_OPS_CACHE").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/ctp-ops"),
        PathBuf::from,
    );
    let p = cache.join("kv-venv/bin/kubernetes-validate");
    p.is_file().then_some(p)
}

fn render(root: &Path, extra: &[&str]) -> (test_support::Run, serde_json::Value) {
    let mut args = vec!["--repo-root", root.to_str().unwrap()];
    args.extend_from_slice(extra);
    let r = run(BIN, &args, None, None);
    let v = serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null);
    (r, v)
}

fn yaml(p: &Path) -> yaml_serde::Value {
    yaml_serde::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn renders_the_original_files_and_objects_plus_drill_cronjobs() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, v) = render(tmp.path(), &["--image-tag", "v0.1.0"]);
    r.code(0).stderr_is("");
    assert_eq!(v["output_dir"], "deploy/k8s");
    let out = tmp.path().join("deploy/k8s");
    let files: Vec<String> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = FILES
        .iter()
        .map(|f| out.join(f).display().to_string())
        .collect();
    assert_eq!(files, want);
    for f in FILES {
        let text = std::fs::read_to_string(out.join(f)).unwrap();
        let path = test_support::fixture(env!("CARGO_MANIFEST_DIR"), &format!("default/{f}"));
        if std::env::var_os("FIXTURES_OVERWRITE").is_some() {
            std::fs::create_dir_all(Path::new(&path).parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        assert_eq!(
            text,
            std::fs::read_to_string(&path).unwrap_or_default(),
            "{f}"
        );
    }
    // The original's object names and label.
    let dep = yaml(&out.join("deployment-data-pipeline.yaml"));
    assert_eq!(
        dep["metadata"]["name"].as_str(),
        Some("quant-hft-data-pipeline")
    );
    assert_eq!(
        dep["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"].as_str(),
        Some("quant-hft-data-pipeline")
    );
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["name"].as_str(), Some("data-pipeline"));
    assert_eq!(c["image"].as_str(), Some("quant-hft:v0.1.0"));
    assert!(c["readinessProbe"].is_mapping() && c["livenessProbe"].is_mapping());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        c["securityContext"]["allowPrivilegeEscalation"].as_bool(),
        Some(false)
    );
    assert_eq!(
        yaml(&out.join("configmap-data-pipeline.yaml"))["metadata"]["name"].as_str(),
        Some("quant-hft-data-pipeline-config")
    );
    assert_eq!(
        yaml(&out.join("persistentvolumeclaim-runtime.yaml"))["metadata"]["name"].as_str(),
        Some("quant-hft-runtime")
    );
    assert_eq!(
        yaml(&out.join("secret-archive.example.yaml"))["metadata"]["name"].as_str(),
        Some("quant-hft-archive-secret")
    );
    // The example secret is never deployed by `kubectl apply -k`.
    let k = yaml(&out.join("kustomization.yaml"));
    let res: Vec<&str> = k["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(!res.contains(&"secret-archive.example.yaml"), "{res:?}");
    assert!(res.contains(&"deployment-data-pipeline.yaml"));
    assert!(res.contains(&"cronjob-wal-drill.yaml"));
    assert_eq!(k["namespace"].as_str(), Some("quant-hft"));
}

#[test]
fn kubernetes_validate_strict_accepts_every_manifest() {
    let Some(kv) = validator() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "kubernetes-validate is missing (scripts/setup.sh installs it)"
        );
        skip(
            "kubernetes_validate_strict_accepts_every_manifest",
            "kubernetes-validate not installed (scripts/setup.sh)",
        );
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    // Defaults, and a variant with every optional path: latest tag, RWX and two replicas.
    let (r, _) = render(tmp.path(), &["--output-dir", "a"]);
    r.code(0);
    let (r, _) = render(
        tmp.path(),
        &[
            "--output-dir",
            "b",
            "--replicas",
            "2",
            "--pvc-access-mode",
            "ReadWriteMany",
            "--archive-prefix",
            "a: b # not a comment",
            "--image-tag",
            "v2",
        ],
    );
    r.code(0);
    for dir in ["a", "b"] {
        let out = tmp.path().join(dir);
        let manifests: Vec<String> = FILES
            .iter()
            .filter(|f| **f != "kustomization.yaml")
            .map(|f| out.join(f).display().to_string())
            .collect();
        let mut args = vec!["--strict"];
        args.extend(manifests.iter().map(String::as_str));
        let r = run(kv.to_str().unwrap(), &args, None, None);
        r.code(0).never_has("ERROR").never_has("WARN");
        assert_eq!(
            r.stdout.matches(" passed for resource ").count(),
            manifests.len(),
            "{}",
            r.stdout
        );
    }
    // The validator itself rejects a bad manifest (so a pass above means something).
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: 1}\n",
    )
    .unwrap();
    let r = run(
        kv.to_str().unwrap(),
        &["--strict", bad.to_str().unwrap()],
        None,
        None,
    );
    assert_ne!(r.code, Some(0), "{}", r.stdout);
}

#[test]
fn values_are_serialised_not_pasted() {
    let tmp = tempfile::tempdir().unwrap();
    let tricky = "x: y # \"quoted\" 'single' {braces} [list] & *ref\n";
    let (r, _) = render(
        tmp.path(),
        &[
            "--archive-prefix",
            "pre: fix",
            "--archive-bucket",
            "0123",
            "--image-tag",
            "v1",
            "--archive-endpoint",
            tricky.trim_end(),
        ],
    );
    r.code(0);
    let cm = yaml(&tmp.path().join("deploy/k8s/configmap-data-pipeline.yaml"));
    assert_eq!(
        cm["data"]["QUANT_HFT_ARCHIVE_PREFIX"].as_str(),
        Some("pre: fix")
    );
    assert_eq!(
        cm["data"]["QUANT_HFT_ARCHIVE_BUCKET"].as_str(),
        Some("0123")
    );
    assert_eq!(
        cm["data"]["QUANT_HFT_ARCHIVE_ENDPOINT"].as_str(),
        Some(tricky.trim_end())
    );
}

#[test]
fn latest_is_pulled_always_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, _) = render(tmp.path(), &["--no-drills"]);
    r.code(0)
        .stderr_is("render-k8s: warning: --image-tag latest: pulled Always; pin a version for reproducible rollbacks\n");
    let dep = yaml(&tmp.path().join("deploy/k8s/deployment-data-pipeline.yaml"));
    assert_eq!(
        dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"].as_str(),
        Some("Always")
    );
    assert!(
        !tmp.path()
            .join("deploy/k8s/cronjob-wal-drill.yaml")
            .exists()
    );
}

#[test]
fn replicas_above_one_on_read_write_once_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, _) = render(tmp.path(), &["--replicas", "3", "--image-tag", "v1"]);
    r.code(2)
        .stdout_is("")
        .stderr_has("render-k8s: error: --replicas 3 with a ReadWriteOnce runtime volume");
    assert!(!tmp.path().join("deploy").exists());
}

#[test]
fn bad_input_and_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, _) = render(tmp.path(), &["--namespace", ""]);
    r.code(2)
        .stdout_is("")
        .stderr_has("--namespace: expected a DNS-1123 label");
    let (r, _) = render(tmp.path(), &["--image-tag", ""]);
    r.code(2)
        .stdout_is("")
        .stderr_has("--image-tag: expected a non-empty value");
    let (r, _) = render(tmp.path(), &["--runtime-pvc-size", "lots"]);
    r.code(2).stdout_is("").stderr_has("--runtime-pvc-size");
    let (r, _) = render(tmp.path(), &["--pvc-access-mode", "Sometimes"]);
    r.code(2).stdout_is("").stderr_has("invalid value");
    run(BIN, &["--help"], None, None)
        .code(0)
        .stdout_has("EXIT STATUS")
        .stdout_has("kubectl apply -k");
}
