//! render-prom-rules: `promtool check rules` on the output, and `promtool test rules` showing that
//! the rules fire on breaching series and stay quiet on good ones.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use test_support::{have_command, run, skip};

const BIN: &str = env!("CARGO_BIN_EXE_render-prom-rules");

fn promtool(test: &str) -> bool {
    if have_command("promtool") {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "promtool is missing (scripts/setup.sh installs Debian's prometheus)"
    );
    skip(test, "promtool not installed");
    false
}

#[test]
fn promtool_check_rules_accepts_the_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rules/ctp-ops.yml");
    run(BIN, &["--output-file", out.to_str().unwrap()], None, None)
        .code(0)
        .stdout_is(&format!("{}\n", out.display()))
        .stderr_is("");
    let v: yaml_serde::Value =
        yaml_serde::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let names: Vec<&str> = v["groups"][0]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r["alert"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"CtpOpsDrillFailed") && names.contains(&"CtpOpsWalRtoHigh"));
    if !promtool("promtool_check_rules_accepts_the_output") {
        return;
    }
    run(
        "promtool",
        &["check", "rules", out.to_str().unwrap()],
        None,
        None,
    )
    .code(0)
    .stdout_has("SUCCESS: 10 rules found");
}

#[test]
fn promtool_test_rules_fire_on_breaches_only() {
    if !promtool("promtool_test_rules_fire_on_breaches_only") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let rules = tmp.path().join("rules.yml");
    run(
        BIN,
        &[
            "--output-file",
            rules.to_str().unwrap(),
            "--max-rto-seconds",
            "5",
        ],
        None,
        None,
    )
    .code(0);
    let tests = tmp.path().join("tests.yml");
    std::fs::write(
        &tests,
        r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'ctp_ops_wal_rto_seconds{sop="wal",instance="h1"}'
        values: '7x5'
      - series: 'ctp_ops_wal_rto_seconds{sop="wal",instance="h2"}'
        values: '3x5'
      - series: 'ctp_ops_drill_result{sop="rollback",instance="h1"}'
        values: '0x5'
      - series: 'ctp_ops_drill_result{sop="wal",instance="h1"}'
        values: '1x5'
      - series: 'ctp_ops_drill_last_run_timestamp_seconds{sop="wal",instance="h1"}'
        values: '0x5'
    alert_rule_test:
      - eval_time: 2m
        alertname: CtpOpsWalRtoHigh
        exp_alerts:
          - exp_labels: {severity: critical, source: ctp-ops, sop: wal, instance: h1}
            exp_annotations:
              summary: WAL recovery RTO above target
              description: WAL recovery took 7 s (target 5 s).
      - eval_time: 2m
        alertname: CtpOpsDrillFailed
        exp_alerts:
          - exp_labels: {severity: critical, source: ctp-ops, sop: rollback, instance: h1}
            exp_annotations:
              summary: ctp-ops rollback drill failed
              description: The latest rollback drill on h1 failed or its evidence did not verify. See the results folder (evidence index).
      - eval_time: 2m
        alertname: CtpOpsDrillMetricsMissing
        exp_alerts: []
"#,
    )
    .unwrap();
    run(
        "promtool",
        &["test", "rules", tests.to_str().unwrap()],
        None,
        Some(tmp.path()),
    )
    .code(0)
    .stdout_has("SUCCESS");
}

#[test]
fn stdout_bad_input_and_usage() {
    let r = run(BIN, &["--output-file", "-"], None, None);
    r.code(0).stderr_is("");
    assert!(r.stdout.contains("groups:"));
    run(
        BIN,
        &["--output-file", "-", "--max-rto-seconds", "NaN"],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_is(
        "render-prom-rules: error: --max-rto-seconds must be a finite number >= 0, found NaN\n",
    );
    run(BIN, &["--nope"], None, None).code(2).stdout_is("");
    run(BIN, &["--help"], None, None)
        .code(0)
        .stdout_has("EXIT STATUS");
}

/// Every metric the rules use is one `evidence prom` writes (run on drill evidence of every kind).
#[test]
fn rules_use_only_metrics_evidence_prom_writes() {
    let bins = test_support::build_siblings(BIN, &["evidence"]);
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let pass =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../evidence/tests/fixtures/pass");
    for e in std::fs::read_dir(pass).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, results.join(p.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        results.join("failover_result.env"),
        "FAILOVER_ENV=prodlike_multi_host\nFAILOVER_DRY_RUN=0\nFAILOVER_SUCCESS=true\nFAILOVER_TOTAL_STEPS=5\nFAILOVER_FAILED_STEP=\nFAILOVER_DURATION_SECONDS=4.2\nDATA_SYNC_LAG_EVENTS=0\n",
    )
    .unwrap();
    let r = run(
        bins.join("evidence").to_str().unwrap(),
        &["prom", "--results-dir", results.to_str().unwrap()],
        None,
        None,
    );
    r.code(0).stderr_is("");
    let written: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let rules = run(BIN, &["--output-file", "-"], None, None).stdout;
    let v: yaml_serde::Value = yaml_serde::from_str(&rules).unwrap();
    for rule in v["groups"][0]["rules"].as_sequence().unwrap() {
        let expr = rule["expr"].as_str().unwrap();
        for tok in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if tok.starts_with("ctp_ops_") {
                assert!(
                    written.contains(&tok),
                    "{tok} (rule {}) is not written by evidence prom: {written:?}",
                    rule["alert"].as_str().unwrap()
                );
            }
        }
    }
}
