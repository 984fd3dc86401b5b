//! alert-report: every health JSON slo-report writes (run here on slo-report's own fixtures), the
//! prod-like health shapes (§2.10, §2.12), bad input, and a real Alertmanager started by the test.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use test_support::{build_siblings, fixture, have_command, run, skip, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_alert-report");

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fx(name: &str) -> String {
    fixture(env!("CARGO_MANIFEST_DIR"), name)
}

fn report(inputs: &[&str], dir: &Path, extra: &[&str]) -> (test_support::Run, serde_json::Value) {
    let json = dir.join("alert.json");
    let md = dir.join("alert.md");
    let mut args = Vec::new();
    for i in inputs {
        args.extend(["--health-json-file", i]);
    }
    args.extend([
        "--output-json-file",
        json.to_str().unwrap(),
        "--output-markdown-file",
        md.to_str().unwrap(),
    ]);
    args.extend_from_slice(extra);
    let r = run(BIN, &args, None, None);
    let v = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    (r, v)
}

fn codes(v: &serde_json::Value) -> Vec<(String, String)> {
    v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["code"].as_str().unwrap().to_string(),
                a["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Every health JSON slo-report writes from its fixtures (each events/probe pair, with the status
/// inputs unknown and all healthy): alert-report never fails on them, and its alerts are exactly
/// the ones slo-report put in its own alert report.
#[test]
fn every_health_json_slo_report_writes() {
    let dir = build_siblings(BIN, &["slo-report"]);
    let slo = dir.join("slo-report");
    let fixtures = workspace().join("crates/slo-report/tests/fixtures");
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with("_events.jsonl"))
        .collect();
    entries.sort();
    for ev in entries {
        let stem = ev
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches("_events.jsonl")
            .to_string();
        let probes: Vec<PathBuf> = std::fs::read_dir(&fixtures)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let n = p.file_name().unwrap().to_str().unwrap();
                n.starts_with(&stem) && n.ends_with(".log")
            })
            .collect();
        for probe in probes {
            for (variant, extra) in [
                ("unknown", &[][..]),
                (
                    "healthy",
                    &[
                        "--strategy-bridge-chain-status",
                        "complete",
                        "--storage-redis-health",
                        "healthy",
                        "--storage-timescale-health",
                        "healthy",
                    ][..],
                ),
            ] {
                let name = format!("{}-{variant}", probe.file_stem().unwrap().to_str().unwrap());
                let health = tmp.path().join(format!("{name}.health.json"));
                let alert = tmp.path().join(format!("{name}.slo-alert.json"));
                let t = |s: &str| tmp.path().join(format!("{name}.{s}"));
                let mut args = vec![
                    "--fault-events-file".to_string(),
                    ev.display().to_string(),
                    "--probe-log-file".into(),
                    probe.display().to_string(),
                    "--output-file".into(),
                    t("md").display().to_string(),
                    "--health-json-file".into(),
                    health.display().to_string(),
                    "--health-markdown-file".into(),
                    t("hmd").display().to_string(),
                    "--alert-json-file".into(),
                    alert.display().to_string(),
                    "--alert-markdown-file".into(),
                    t("amd").display().to_string(),
                ];
                args.extend(extra.iter().map(ToString::to_string));
                let st = Command::new(&slo)
                    .args(&args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .unwrap();
                if !health.exists() {
                    // A bad input fixture: slo-report refused it (exit 2), no health JSON.
                    assert_eq!(st.code(), Some(2), "{name}");
                    continue;
                }
                let out = tmp.path().join(&name);
                std::fs::create_dir_all(&out).unwrap();
                let (r, v) = report(&[health.to_str().unwrap()], &out, &[]);
                assert!(
                    r.code == Some(0) || r.code == Some(1),
                    "{name}: exit {:?}\n{}",
                    r.code,
                    r.stderr
                );
                assert_eq!(r.stderr, "", "{name}");
                let slo_alerts: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&alert).unwrap()).unwrap();
                assert_eq!(v["alerts"], slo_alerts["alerts"], "{name}");
                assert_eq!(
                    v["overall_healthy"], slo_alerts["overall_healthy"],
                    "{name}"
                );
                assert_eq!(r.code == Some(0), v["overall_healthy"] == true, "{name}");
                seen += 1;
            }
        }
    }
    assert!(seen >= 10, "only {seen} health reports checked");
}

/// Every health JSON fixture in the workspace (e.g. prodlike-health's, once it lands) is
/// understood or rejected with exit 2 — never a crash.
#[test]
fn never_crashes_on_any_health_fixture_in_the_workspace() {
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for c in std::fs::read_dir(workspace().join("crates")).unwrap() {
        let fx = c.unwrap().path().join("tests/fixtures");
        let Ok(rd) = std::fs::read_dir(&fx) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            let n = p.file_name().unwrap().to_str().unwrap().to_string();
            if n.ends_with(".json") && n.contains("health") || n.starts_with("prodlike") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        let (r, _) = report(&[f.to_str().unwrap()], tmp.path(), &[]);
        assert!(
            matches!(r.code, Some(0..=2)),
            "{}: exit {:?}\n{}",
            f.display(),
            r.code,
            r.stderr
        );
        if r.code == Some(2) {
            assert!(
                r.stderr.starts_with("alert-report: error: "),
                "{}",
                r.stderr
            );
        }
    }
}

#[test]
fn the_originals_empty_slis_case_is_not_all_healthy() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, v) = report(
        &[&fx("original_empty_slis_unhealthy.json")],
        tmp.path(),
        &[],
    );
    r.code(1).stderr_is("");
    assert_eq!(
        codes(&v),
        [("OPS_OVERALL_UNHEALTHY".into(), "critical".into())]
    );
    // Stdout: the two output paths, one per line (the original's).
    assert_eq!(
        r.stdout,
        format!(
            "{}\n{}\n",
            tmp.path().join("alert.json").display(),
            tmp.path().join("alert.md").display()
        )
    );
    let md = std::fs::read_to_string(tmp.path().join("alert.md")).unwrap();
    assert!(md.starts_with("# Ops Alert Report\n\n- Generated TS (ns): 0\n- Overall healthy: no\n\n| Code | Severity | SLI | Message |\n|---|---|---|---|\n"));
}

#[test]
fn prodlike_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let (r, v) = report(&[&fx("prodlike_healthy.json")], tmp.path(), &[]);
    r.code(0).stderr_is("");
    assert_eq!(codes(&v), [("OPS_ALL_HEALTHY".into(), "info".into())]);
    assert_eq!(v["provenance"]["inputs"][0]["kind"], "prodlike");

    let (r, v) = report(
        &[&fx("prodlike_missing_and_unhealthy.json")],
        tmp.path(),
        &[],
    );
    r.code(1);
    assert_eq!(
        codes(&v),
        [
            ("PRODLIKE_SERVICE_MISSING".into(), "critical".into()),
            ("PRODLIKE_SERVICE_UNHEALTHY".into(), "critical".into())
        ]
    );
    assert_eq!(
        v["alerts"][1]["message"],
        "timescale-primary unhealthy: state=running health=unhealthy"
    );

    let (r, v) = report(&[&fx("prodlike_compose_failed.json")], tmp.path(), &[]);
    r.code(1);
    assert_eq!(v["alerts"][0]["code"], "PRODLIKE_COMPOSE_COMMAND_FAILED");
    assert!(
        v["alerts"][0]["message"]
            .as_str()
            .unwrap()
            .contains("docker: not found exit status 127")
    );

    let (r, v) = report(
        &[&fx("prodlike_multi_host_unhealthy.json")],
        tmp.path(),
        &[],
    );
    r.code(1);
    assert_eq!(v["provenance"]["inputs"][0]["kind"], "prodlike_multi_host");
    assert_eq!(v["alerts"][0]["sli_name"], "prodlike:redis-standby");

    // Combined with a healthy one: still unhealthy, alerts of both; generated_ts_ns the latest.
    let (r, v) = report(
        &[
            &fx("prodlike_healthy.json"),
            &fx("prodlike_multi_host_unhealthy.json"),
        ],
        tmp.path(),
        &[],
    );
    r.code(1);
    assert_eq!(v["generated_ts_ns"], 1_796_060_427_000_000_000_i64);
    assert_eq!(v["overall_healthy"], false);
}

#[test]
fn bad_input_names_file_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let f = fx("bad_healthy_type.json");
    let (r, _) = report(&[&f], tmp.path(), &[]);
    r.code(2).stdout_is("").stderr_is(&format!(
        "alert-report: error: {f}: slis[0].healthy: expected true or false, found \"yes\"\n"
    ));
    assert!(!tmp.path().join("alert.json").exists());
    let f = fx("bad_truncated.json");
    let (r, _) = report(&[&f], tmp.path(), &[]);
    r.code(2)
        .stdout_is("")
        .stderr_has(&format!("alert-report: error: {f}:1: (json)"));
    let (r, _) = report(&[&fx("bad_unknown_shape.json")], tmp.path(), &[]);
    r.code(2)
        .stdout_is("")
        .stderr_has("expected an ops health report");
    let (r, _) = report(&["/nonexistent/health.json"], tmp.path(), &[]);
    r.code(2)
        .stdout_is("")
        .stderr_is("alert-report: error: health json not found: /nonexistent/health.json\n");
}

#[test]
fn stdin_and_usage() {
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("a.json");
    let md = tmp.path().join("a.md");
    let text = std::fs::read_to_string(fx("prodlike_healthy.json")).unwrap();
    run(
        BIN,
        &[
            "--health-json-file",
            "-",
            "--output-json-file",
            json.to_str().unwrap(),
            "--output-markdown-file",
            md.to_str().unwrap(),
        ],
        Some(&text),
        None,
    )
    .code(0)
    .stderr_is("");
    run(BIN, &[], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--health-json-file");
    run(
        BIN,
        &[
            "--health-json-file",
            "x",
            "--alertmanager-url",
            "https://am:9093",
        ],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("only http:// URLs");
    run(BIN, &["--help"], None, None)
        .code(0)
        .stdout_has("EXIT STATUS");
}

struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_alertmanager() -> Option<Alertmanager> {
    if !have_command("prometheus-alertmanager") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "prometheus-alertmanager is missing (scripts/setup.sh installs it)"
        );
        skip("alertmanager", "prometheus-alertmanager not installed");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("am.yml");
    std::fs::write(
        &conf,
        "route:\n  receiver: \"null\"\n  group_wait: 0s\n  group_interval: 1s\nreceivers:\n  - name: \"null\"\n",
    )
    .unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // No cluster: otherwise it listens on *:9094 and waits for gossip to settle.
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let am = Alertmanager {
        child,
        url: url.clone(),
        _dir: dir,
    };
    wait_until(Duration::from_secs(30), "alertmanager ready", || {
        evidence_core::health::http_get(&format!("{url}/-/ready"), Duration::from_secs(1))
            .is_ok_and(|r| r.status == 200)
    });
    Some(am)
}

/// The active alerts, read back through amtool (Alertmanager's own client).
fn active_alerts(url: &str) -> Vec<serde_json::Value> {
    let out = Command::new("amtool")
        .args([
            "-o",
            "json",
            "alert",
            "query",
            &format!("--alertmanager.url={url}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap()
}

#[test]
fn posts_to_a_real_alertmanager_and_resolves() {
    let Some(am) = start_alertmanager() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (r, v) = report(
        &[&fx("prodlike_missing_and_unhealthy.json")],
        tmp.path(),
        &["--alertmanager-url", &am.url, "--environment", "staging"],
    );
    r.code(1).stderr_is("");
    assert_eq!(v["provenance"]["alertmanager"]["status"], 200);
    assert_eq!(v["provenance"]["alertmanager"]["firing"], 2);
    let mut names: Vec<(String, String)> = Vec::new();
    wait_until(Duration::from_secs(10), "2 alerts in alertmanager", || {
        names = active_alerts(&am.url)
            .iter()
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap().to_string(),
                    a["labels"]["sli"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        names.len() == 2
    });
    names.sort();
    assert_eq!(
        names,
        [
            (
                "PRODLIKE_SERVICE_MISSING".into(),
                "prodlike:prometheus".into()
            ),
            (
                "PRODLIKE_SERVICE_UNHEALTHY".into(),
                "prodlike:timescale-primary".into()
            )
        ]
    );
    let a = active_alerts(&am.url);
    assert!(a.iter().all(|x| x["labels"]["environment"] == "staging"
        && x["labels"]["source"] == "ctp-ops"
        && x["labels"]["severity"] == "critical"));

    // The stack is healthy again: the same alerts are posted resolved and leave the active list.
    let (r, v) = report(
        &[&fx("prodlike_healthy.json")],
        tmp.path(),
        &["--alertmanager-url", &am.url, "--environment", "staging"],
    );
    r.code(0).stderr_is("");
    assert_eq!(v["provenance"]["alertmanager"]["firing"], 0);
    wait_until(Duration::from_secs(10), "alerts resolved", || {
        active_alerts(&am.url).is_empty()
    });
}

#[test]
fn an_unreachable_alertmanager_is_exit_2() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let (r, _) = report(
        &[&fx("prodlike_healthy.json")],
        tmp.path(),
        &["--alertmanager-url", &format!("http://127.0.0.1:{port}")],
    );
    r.code(2)
        .stdout_is("")
        .stderr_has("alert-report: error: alertmanager http://127.0.0.1:");
}

/// The health report prodlike-health itself writes (from saved `compose ps` rows): understood.
#[test]
fn reports_written_by_prodlike_health() {
    let dir = build_siblings(BIN, &["prodlike-health"]);
    let tmp = tempfile::tempdir().unwrap();
    let ps = tmp.path().join("ps.json");
    std::fs::write(
        &ps,
        r#"[{"Service":"redis-primary","State":"running","Health":"healthy"},{"Service":"prometheus","State":"exited","Health":""}]"#,
    )
    .unwrap();
    let health = tmp.path().join("prodlike_health_report.json");
    let st = Command::new(dir.join("prodlike-health"))
        .args([
            "--ps-json-file",
            ps.to_str().unwrap(),
            "--report-json",
            health.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        health.is_file(),
        "prodlike-health wrote no report (exit {st:?})"
    );
    let (r, v) = report(&[health.to_str().unwrap()], tmp.path(), &[]);
    r.code(1).stderr_is("");
    assert_eq!(v["provenance"]["inputs"][0]["kind"], "prodlike");
    let alerts = v["alerts"].as_array().unwrap();
    assert!(
        alerts
            .iter()
            .any(|a| a["code"] == "PRODLIKE_SERVICE_MISSING")
    );
    assert!(alerts.iter().any(
        |a| a["code"] == "PRODLIKE_SERVICE_UNHEALTHY" && a["sli_name"] == "prodlike:prometheus"
    ));
}
