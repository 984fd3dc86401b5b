//! render-systemd: fixture tests of the rendered files, and `systemd-analyze verify` on every unit
//! (a warning fails). The units point at real binaries: the drills built by cargo, and in the
//! platform's repo root a `build/core_engine` that is a link to a real program.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::path::{Path, PathBuf};

use test_support::{build_siblings, have_command, run, skip};

const BIN: &str = env!("CARGO_BIN_EXE_render-systemd");
const DRILL_PACKAGES: &[&str] = &[
    "session-guard",
    "wal-drill",
    "wal-verify",
    "rollback-drill",
    "rollback-verify",
    "reconnect-evidence",
    "ctp-preflight",
    "demo-service",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// True when the failover tools (SOP 8) are part of this workspace; they are built then.
fn have_failover_crates() -> bool {
    workspace_root()
        .join("crates/failover-orchestrator/Cargo.toml")
        .is_file()
        && workspace_root()
            .join("crates/failover-verify/Cargo.toml")
            .is_file()
}

fn bin_dir() -> PathBuf {
    let mut pkgs = DRILL_PACKAGES.to_vec();
    if have_failover_crates() {
        pkgs.extend(["failover-orchestrator", "failover-verify"]);
    }
    build_siblings(BIN, &pkgs)
}

/// A platform repo root with real executables where the units expect them.
fn platform_root(parent: &Path, bins: &Path) -> PathBuf {
    let root = parent.join("quant hft");
    std::fs::create_dir_all(root.join("build")).unwrap();
    std::fs::create_dir_all(root.join(".venv/bin")).unwrap();
    std::os::unix::fs::symlink(bins.join("demo-service"), root.join("build/core_engine")).unwrap();
    let py = which("python3").expect("python3 on PATH");
    std::os::unix::fs::symlink(py, root.join(".venv/bin/python")).unwrap();
    root
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn require(test: &str, cmd: &str) -> bool {
    if have_command(cmd) {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: {cmd} is missing (scripts/setup.sh installs it)"
    );
    skip(test, &format!("{cmd} not installed"));
    false
}

fn render(args: &[&str]) -> (test_support::Run, serde_json::Value) {
    let r = run(BIN, args, None, None);
    let v = serde_json::from_str(&r.stdout).unwrap_or(serde_json::Value::Null);
    (r, v)
}

/// Compare a rendered file with its fixture, the temp paths replaced by @ROOT@ and @BIN@.
fn assert_fixture(rendered: &Path, fixture: &str, root: &Path, bins: &Path) {
    let text = std::fs::read_to_string(rendered).unwrap();
    let bins = bins.canonicalize().unwrap();
    let text = text
        .replace(&root.display().to_string(), "@ROOT@")
        .replace(&bins.display().to_string(), "@BIN@");
    let path = test_support::fixture(env!("CARGO_MANIFEST_DIR"), fixture);
    if std::env::var_os("FIXTURES_OVERWRITE").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(text, want, "{} differs from {path}", rendered.display());
}

#[test]
fn renders_the_original_files_then_a_pair_per_drill() {
    let bins = bin_dir().canonicalize().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = platform_root(tmp.path(), &bins);
    let root_s = root.display().to_string();
    let (r, v) = render(&[
        "--repo-root",
        &root_s,
        "--bin-dir",
        bins.to_str().unwrap(),
        "--output-dir",
        "deploy/systemd",
        "--interval-seconds",
        "0.5",
    ]);
    r.code(0).stderr_is("");
    assert_eq!(v["output_dir"], "deploy/systemd");
    let files: Vec<String> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let names: Vec<&str> = files
        .iter()
        .map(|f| f.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "quant-hft-core-engine.service",
            "quant-hft-data-pipeline.service",
            "quant-hft-core-engine.env.example",
            "quant-hft-data-pipeline.env.example",
            "ctp-ops-wal-drill.service",
            "ctp-ops-wal-drill.timer",
            "ctp-ops-rollback-drill.service",
            "ctp-ops-rollback-drill.timer",
            "ctp-ops-reconnect-drill.service",
            "ctp-ops-reconnect-drill.timer",
            "ctp-ops-preflight-drill.service",
            "ctp-ops-preflight-drill.timer",
            "ctp-ops-failover-drill.service",
            "ctp-ops-failover-drill.timer",
            "ctp-ops-drills.env.example",
        ]
    );
    for f in &files {
        assert!(
            f.starts_with(&format!("{root_s}/deploy/systemd/")),
            "absolute path under the repo root: {f}"
        );
        let name = f.rsplit('/').next().unwrap();
        assert_fixture(Path::new(f), &format!("default/{name}"), &root, &bins);
    }
    let core = std::fs::read_to_string(&files[0]).unwrap();
    // The original's interval clamp: at least 1 s.
    let pipeline = std::fs::read_to_string(&files[1]).unwrap();
    assert!(
        pipeline.contains("\"--interval-seconds\" \"1\""),
        "{pipeline}"
    );
    assert!(core.contains("User=ctp-ops\n"));
    assert!(core.contains("ProtectHome=true\n"));
    assert!(core.contains("EnvironmentFile=-/etc/ctp-ops/quant-hft-core-engine.env\n"));
    assert!(core.contains("After=network-online.target redis-server.service postgresql.service\n"));
}

#[test]
fn systemd_analyze_verify_accepts_every_unit() {
    if !require(
        "systemd_analyze_verify_accepts_every_unit",
        "systemd-analyze",
    ) {
        return;
    }
    let bins = bin_dir().canonicalize().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let root = platform_root(tmp.path(), &bins);
    let out = tmp.path().join("units");
    let drills = if have_failover_crates() {
        "wal,rollback,reconnect,preflight,failover"
    } else {
        skip(
            "systemd_analyze_verify_accepts_every_unit (failover pair)",
            "crates/failover-orchestrator is not in this workspace yet; the failover unit's binaries do not exist",
        );
        "wal,rollback,reconnect,preflight"
    };
    let (r, v) = render(&[
        "--repo-root",
        root.to_str().unwrap(),
        "--bin-dir",
        bins.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "--drills",
        drills,
    ]);
    r.code(0);
    let units: Vec<String> = v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .filter(|f| {
            Path::new(f)
                .extension()
                .is_some_and(|e| e == "service" || e == "timer")
        })
        .collect();
    assert!(units.len() >= 10, "{units:?}");
    let args: Vec<&str> = std::iter::once("verify")
        .chain(units.iter().map(String::as_str))
        .collect();
    let r = run("systemd-analyze", &args, None, Some(&out));
    // A warning fails as much as an error.
    r.code(0).stdout_is("").stderr_is("");
}

#[test]
fn a_repo_under_home_stays_reachable() {
    let bins = bin_dir().canonicalize().unwrap();
    // The layout the original locked out: a checkout under /home.
    let Ok(home) = tempfile::Builder::new()
        .prefix("render-systemd-test-")
        .tempdir_in("/home")
    else {
        skip(
            "a_repo_under_home_stays_reachable",
            "cannot create a folder under /home",
        );
        return;
    };
    let root = platform_root(home.path(), &bins);
    let out = root.join("deploy/systemd");
    let (r, _) = render(&[
        "--repo-root",
        root.to_str().unwrap(),
        "--bin-dir",
        bins.to_str().unwrap(),
        "--no-drills",
    ]);
    r.code(0);
    let core = std::fs::read_to_string(out.join("quant-hft-core-engine.service")).unwrap();
    assert!(core.contains("ProtectHome=tmpfs\n"), "{core}");
    assert!(
        core.contains(&format!("BindPaths=\"{}\"\n", root.display())),
        "{core}"
    );
    assert!(
        core.contains(&format!("WorkingDirectory={}\n", root.display())),
        "{core}"
    );
    if require("a_repo_under_home_stays_reachable", "systemd-analyze") {
        let r = run(
            "systemd-analyze",
            &[
                "verify",
                out.join("quant-hft-core-engine.service").to_str().unwrap(),
                out.join("quant-hft-data-pipeline.service")
                    .to_str()
                    .unwrap(),
            ],
            None,
            Some(&out),
        );
        r.code(0).stdout_is("").stderr_is("");
    }
}

#[test]
fn remote_stores_and_custom_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, _) = render(&[
        "--repo-root",
        tmp.path().to_str().unwrap(),
        "--redis-host",
        "10.1.2.3",
        "--postgres-host",
        "none",
        "--drills",
        "wal",
        "--schedule",
        "wal=Sun *-*-* 09:00:00 Asia/Shanghai",
        "--results-dir",
        "/srv/evidence 100%",
    ]);
    r.code(0).stderr_is(
        "render-systemd: no local Redis/PostgreSQL: the services do not wait for them\n",
    );
    let out = tmp.path().join("deploy/systemd");
    let core = std::fs::read_to_string(out.join("quant-hft-core-engine.service")).unwrap();
    assert!(core.contains("After=network-online.target\n"), "{core}");
    let timer = std::fs::read_to_string(out.join("ctp-ops-wal-drill.timer")).unwrap();
    assert!(timer.contains("OnCalendar=Sun *-*-* 09:00:00 Asia/Shanghai\n"));
    let svc = std::fs::read_to_string(out.join("ctp-ops-wal-drill.service")).unwrap();
    assert!(
        svc.contains("\"/srv/evidence 100%%/wal_recovery_result.env\""),
        "{svc}"
    );
    assert!(!out.join("ctp-ops-rollback-drill.service").exists());
}

#[test]
fn root_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    let r = run(
        BIN,
        &["--repo-root", root, "--service-user", "root"],
        None,
        None,
    );
    r.code(2).stdout_is("").stderr_has("--allow-root");
    assert!(!tmp.path().join("deploy").exists());
    let r = run(
        BIN,
        &[
            "--repo-root",
            root,
            "--service-user",
            "root",
            "--allow-root",
            "--no-drills",
        ],
        None,
        None,
    );
    r.code(0);
}

#[test]
fn bad_input_and_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_str().unwrap();
    run(BIN, &["--repo-root", root, "--schedule", "wal"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_is("render-systemd: error: --schedule: expected DRILL=ONCALENDAR, found \"wal\"\n");
    run(
        BIN,
        &["--repo-root", root, "--service-user", "a b"],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("--service-user");
    run(
        BIN,
        &["--repo-root", root, "--service-user", "nobody"],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("create a service account");
    run(BIN, &["--repo-root", root, "--bin-dir", "bin"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--bin-dir: expected an absolute path");
    run(BIN, &["--no-such-flag"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("unexpected argument");
    run(BIN, &["--help"], None, None)
        .code(0)
        .stdout_has("EXIT STATUS")
        .stdout_has("EXAMPLE");
}
