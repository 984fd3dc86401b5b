//! slo-report end to end: real fixture files in, exit status, stdout, stderr and the files out.

use std::path::Path;

use serde_json::Value;
use test_support::{Run, fixture, run};

const BIN: &str = env!("CARGO_BIN_EXE_slo-report");
const DIR: &str = env!("CARGO_MANIFEST_DIR");

fn fx(name: &str) -> String {
    fixture(DIR, name)
}

/// Run on `<case>_events.jsonl` style fixtures with the report on stdout and a fixed date.
fn report(events: &str, probe: &str, extra: &[&str]) -> Run {
    let (e, p) = (fx(events), fx(probe));
    let mut args = vec![
        "--fault-events-file",
        &e,
        "--probe-log-file",
        &p,
        "--date",
        "2026-02-11",
    ];
    args.extend_from_slice(extra);
    run(BIN, &args, None, None)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn original_test_case_recovers_in_one_second() {
    // contracts §6.2: apply 1 s, clear 2 s, health 0.9 H, 1.2 U, 2.1 U, 3.0 H.
    let r = report("original_events.jsonl", "original_probe.log", &[]);
    r.code(0)
        .stdout_has("# Reconnect Fault Injection Result\n\n## Metadata\n\n- Date: 2026-02-11\n")
        .stdout_has("- Samples: 1\n- Recovery P99 (s): 1.000\n- Target P99 (s): 10.000\n- Meets target: yes\n")
        .stdout_has("| Scenario | Parameters | Start Time (UTC) | End Time (UTC) | Recovered | Recovery Seconds | Notes |\n|---|---|---|---|---|---:|---|\n")
        .stdout_has("| disconnect | delay_ms=250,disconnect_mode=reset,duration_sec=20,iface=eth0,jitter_ms=30,loss_percent=2.5,ports=40001,40011,target_ip=182.254.243.31 | 2026-02-10T14:42:24+00:00 | 2026-02-10T14:42:25+00:00 | yes | 1.000 | detection=0.200s |\n")
        // Nothing measured crashes: the acceptance list has no line for them.
        .stdout_has("- [x] unhealthy state observed during fault\n- [x] auto-reconnect observed after clear\n- [x] P99 recovery `< 10s`\n- [x] no stuck state after repeated runs\n\n## Logs")
        .never_has("no crash")
        .stdout_has("## Logs and Evidence\n\n- Probe log file: ")
        .stdout_has("## Provenance\n\n- Tool: slo-report ")
        .stderr_is("slo-report: SLO met: recovery P99 1.000 s over 1 recovered of 1 counted windows (target < 10 s)\n");
}

#[test]
fn window_without_outage_is_not_a_recovery() {
    let r = report("no_outage_events.jsonl", "no_outage_probe.log", &[]);
    r.code(0)
        .stdout_has("- Samples: 2\n- Recovery P99 (s): 0.500\n")
        .stdout_has("- Recovered: 1 of 2\n- Not recovered: 0\n- Unhealthy not observed: 1\n")
        .stdout_has("| 2026-02-10T14:42:28+00:00 | 2026-02-10T14:42:31+00:00 | no |  | unhealthy_not_observed |\n")
        .stdout_has("- [ ] unhealthy state observed during fault\n")
        .stdout_has("| latency | 0 | n/a | n/a | n/a | n/a |\n")
        .stderr_is("slo-report: SLO met: recovery P99 0.500 s over 1 recovered of 2 counted windows (target < 10 s)\n");
}

#[test]
fn unrecovered_last_window_fails() {
    let r = report("unrecovered_events.jsonl", "unrecovered_probe.log", &[]);
    r.code(1)
        .stdout_has("- Meets target: no\n")
        .stdout_has("- Not recovered: 1\n")
        .stdout_has("- Target missed: 1 window(s) did not recover\n")
        .stdout_has("| 2026-02-10T14:42:27+00:00 | 2026-02-10T14:42:29+00:00 | no |  | detection=0.200s;not_recovered;no_health_after_clear |\n")
        .stdout_has("- [ ] auto-reconnect observed after clear\n- [ ] P99 recovery `< 10s`\n")
        .stderr_is("slo-report: SLO not met: recovery P99 0.250 s over 1 recovered of 2 counted windows (target < 10 s): 1 window(s) did not recover\n");
}

#[test]
fn no_fail_restores_exit_zero() {
    let r = report(
        "unrecovered_events.jsonl",
        "unrecovered_probe.log",
        &["--no-fail"],
    );
    r.code(0)
        .stdout_has("- Meets target: no\n")
        .stderr_is("slo-report: warning: SLO not met: recovery P99 0.250 s over 1 recovered of 2 counted windows (target < 10 s): 1 window(s) did not recover (--no-fail: exit 0)\n");
}

#[test]
fn target_breach_exits_one() {
    let r = report("slow_events.jsonl", "slow_probe.log", &[]);
    r.code(1)
        .stdout_has("- Recovery P99 (s): 12.000\n- Target P99 (s): 10.000\n- Meets target: no\n")
        .stderr_is("slo-report: SLO not met: recovery P99 12.000 s over 1 recovered of 1 counted windows (target < 10 s): recovery P99 12.000 s is not below the target 10 s\n");
    // The same data meets a 15 s target.
    report(
        "slow_events.jsonl",
        "slow_probe.log",
        &["--target-p99-sec", "15"],
    )
    .code(0)
    .stdout_has("- Target P99 (s): 15.000\n- Meets target: yes\n")
    .stdout_has("- [x] P99 recovery `< 15s`\n");
}

#[test]
fn small_sample_p99_is_flagged() {
    let r = report(
        "three_events.jsonl",
        "three_probe.log",
        &["--drill-id", "d1"],
    );
    r.code(0)
        .stdout_has("- Samples: 3\n- Recovery P99 (s): 2.000\n")
        .stdout_has("- Note: P99 is the maximum of few samples (3 < 100 recovered windows), not a statistical P99.\n")
        .stdout_has("| disconnect | 3 | 1.000 | 2.000 | 2.000 | 2.000 |\n")
        .stderr_is("slo-report: SLO met: recovery P99 2.000 s over 3 recovered of 3 counted windows (target < 10 s)\n");
    // Another drill's events are left out.
    report(
        "three_events.jsonl",
        "three_probe.log",
        &["--drill-id", "other"],
    )
    .code(1)
    .stdout_has("- Samples: 0\n")
    .stdout_has("- Events of other drills ignored: 6\n");
}

#[test]
fn empty_inputs_give_no_samples_and_fail() {
    let r = report("empty.jsonl", "empty.log", &[]);
    r.code(1)
        .stdout_has("- Samples: 0\n- Recovery P99 (s): n/a\n")
        .stdout_has("| n/a | n/a | n/a | n/a | no |  | no valid apply/clear window |\n")
        .stdout_has("- Dry run: yes (no fault event with execute=true)\n")
        .stderr_is("slo-report: SLO not met: no recovery sample over 0 counted windows (target < 10 s): no recovery sample: the P99 cannot be shown to meet the target\n");
}

#[test]
fn dry_run_events_are_ignored() {
    report("dry_run_events.jsonl", "original_probe.log", &[])
        .code(1)
        .stdout_has("- Samples: 0\n")
        .stdout_has("- Dry-run events ignored (execute=false): 2\n")
        .stdout_has("- Dry run: yes")
        .stderr_is("slo-report: SLO not met: no recovery sample over 0 counted windows (target < 10 s): no recovery sample: the P99 cannot be shown to meet the target\n");
}

#[test]
fn malformed_jsonl_names_file_and_line() {
    let r = report("bad_execute_events.jsonl", "original_probe.log", &[]);
    r.code(2).stdout_is("").stderr_is(&format!(
        "slo-report: error: {}:2: execute: expected a JSON bool (true or false), found \"\\\"false\\\"\"\n",
        fx("bad_execute_events.jsonl")
    ));
    let r = report("bad_json_events.jsonl", "original_probe.log", &[]);
    r.code(2).stdout_is("").stderr_has(&format!(
        "slo-report: error: {}:3: line: expected a JSON object, found EOF while parsing",
        fx("bad_json_events.jsonl")
    ));
}

#[test]
fn malformed_health_line_names_file_and_line() {
    let r = report("original_events.jsonl", "bad_health_probe.log", &[]);
    r.code(2).stdout_is("").stderr_is(&format!(
        "slo-report: error: {}:2: ts_ns: expected a positive integer then whitespace, found \"17707345431x state=healthy\"\n",
        fx("bad_health_probe.log")
    ));
}

#[test]
fn original_probe_format_is_tolerated() {
    // [md]/[order]/[session] lines are ignored; prefixes, tabs, CRLF and trailing text tolerated.
    let r = report("original_events.jsonl", "original_format_probe.log", &[]);
    r.code(0)
        .stdout_has("| yes | 0.500 | detection=0.200s |\n")
        .stdout_has("- Probe log: 9 lines, 4 health samples from 2026-02-10T14:42:23.900000+00:00 to 2026-02-10T14:42:25.500000+00:00\n")
        .stderr_is("slo-report: SLO met: recovery P99 0.500 s over 1 recovered of 1 counted windows (target < 10 s)\n");
}

#[test]
fn unsorted_probe_log_is_sorted_with_a_warning() {
    let r = report("original_events.jsonl", "unsorted_probe.log", &[]);
    r.code(0)
        .stdout_has("- Recovery P99 (s): 1.000\n")
        .stdout_has("- Probe log was not in time order; it was sorted by ts_ns before the computation.\n")
        .stderr_is(&format!(
            "slo-report: warning: {}:3: health samples are not in ts_ns order; sorting the probe log in memory\nslo-report: SLO met: recovery P99 1.000 s over 1 recovered of 1 counted windows (target < 10 s)\n",
            fx("unsorted_probe.log")
        ));
}

#[test]
fn usage_errors_exit_two() {
    let r = run(BIN, &["--probe-log-file", "x"], None, None);
    r.code(2)
        .stdout_is("")
        .stderr_has("the following required arguments were not provided")
        .stderr_has("--fault-events-file");
    let (e, p) = (fx("original_events.jsonl"), fx("original_probe.log"));
    let r = run(
        BIN,
        &[
            "--fault-events-file",
            &e,
            "--probe-log-file",
            &p,
            "--target-p99-sec",
            "0",
        ],
        None,
        None,
    );
    r.code(2).stdout_is("").stderr_is(
        "slo-report: error: --target-p99-sec must be a positive number of seconds, found 0\n",
    );
    let r = run(
        BIN,
        &["--fault-events-file", "-", "--probe-log-file", "-"],
        None,
        None,
    );
    r.code(2).stdout_is("").stderr_is(
        "slo-report: error: --fault-events-file and --probe-log-file cannot both be stdin (-)\n",
    );
    let r = run(
        BIN,
        &[
            "--fault-events-file",
            &e,
            "--probe-log-file",
            &p,
            "--strategy-bridge-chain-status",
            "auto",
        ],
        None,
        None,
    );
    r.code(2).stdout_is("").stderr_has("invalid value 'auto'");
    let r = run(
        BIN,
        &[
            "--fault-events-file",
            "/nonexistent/ev.jsonl",
            "--probe-log-file",
            &p,
        ],
        None,
        None,
    );
    r.code(2)
        .stdout_is("")
        .stderr_has("slo-report: error: cannot read /nonexistent/ev.jsonl: ");
    run(BIN, &["--help"], None, None)
        .code(0)
        .stdout_has("EXIT STATUS:")
        .stdout_has("--samples-csv");
}

#[test]
fn probe_log_from_stdin() {
    let e = fx("original_events.jsonl");
    let probe = read(Path::new(&fx("original_probe.log")));
    let r = run(
        BIN,
        &[
            "--fault-events-file",
            &e,
            "--probe-log-file",
            "-",
            "--date",
            "2026-02-11",
        ],
        Some(&probe),
        None,
    );
    r.code(0).stdout_has("- Recovery P99 (s): 1.000\n");
}

#[test]
fn files_csv_svg_health_and_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n).display().to_string();
    let (e, pr) = (fx("unrecovered_events.jsonl"), fx("unrecovered_probe.log"));
    let args = [
        "--fault-events-file",
        &e,
        "--probe-log-file",
        &pr,
        "--output-file",
        &p("out/reconnect_fault_result.md"),
        "--health-json-file",
        &p("out/ops_health_report.json"),
        "--health-markdown-file",
        &p("out/ops_health_report.md"),
        "--alert-json-file",
        &p("out/ops_alert_report.json"),
        "--alert-markdown-file",
        &p("out/ops_alert_report.md"),
        "--samples-csv",
        &p("out/samples.csv"),
        "--timeline-svg",
        &p("out/timeline.svg"),
        "--strategy-bridge-chain-status",
        "complete",
        "--strategy-bridge-chain-source",
        "auto_detected",
        "--strategy-bridge-state-key-count",
        "2",
        "--storage-redis-health",
        "healthy",
        "--operator",
        "ops1",
        "--interface",
        "eth0",
        "--no-fail",
    ];
    let r = run(BIN, &args, None, None);
    r.code(0)
        .stdout_is(&format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n",
            p("out/reconnect_fault_result.md"),
            p("out/samples.csv"),
            p("out/timeline.svg"),
            p("out/ops_health_report.json"),
            p("out/ops_health_report.md"),
            p("out/ops_alert_report.json"),
            p("out/ops_alert_report.md"),
        ))
        .stderr_has(&format!(
            "slo-report: report generated: {}\n",
            p("out/reconnect_fault_result.md")
        ));

    // Report: links the timeline relative to itself, records the outputs' SHA-256.
    let md = read(&d.join("out/reconnect_fault_result.md"));
    assert!(md.contains("- Timeline: ["), "{md}");
    assert!(md.contains("](timeline.svg)\n"), "{md}");
    assert!(md.contains("![Reconnect timeline: "), "{md}");
    assert!(md.contains("- Operator: ops1\n- Host: \n"), "{md}");
    assert!(md.contains("samples.csv (SHA-256 "), "{md}");

    // CSV: one row per window, parsed back.
    let mut rd = csv::Reader::from_path(d.join("out/samples.csv")).unwrap();
    let h = rd.headers().unwrap().clone();
    assert_eq!(
        h.iter().take(4).collect::<Vec<_>>(),
        ["window", "scenario", "status", "counted"]
    );
    assert_eq!(h.len(), 26);
    let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!((&rows[0][1], &rows[0][2]), ("disconnect", "recovered"));
    assert_eq!(&rows[0][13], "0.250000000");
    assert_eq!((&rows[1][1], &rows[1][2]), ("combined", "not_recovered"));
    assert_eq!(&rows[1][13], "");
    assert_eq!(&rows[1][20], "40001,40011");

    // SVG: well-formed enough to show lanes and windows.
    let svg = read(&d.join("out/timeline.svg"));
    assert!(svg.starts_with("<?xml"), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"));
    assert!(svg.contains(">probe health</text>"));
    assert!(svg.contains(">disconnect</text>") && svg.contains(">combined</text>"));
    assert!(svg.contains("combined not_recovered apply"));
    assert!(svg.contains("disconnect recovered apply") && svg.contains("recovery 0.250000s"));

    // Health JSON: the original's shape, key order, plus provenance.
    let text = read(&d.join("out/ops_health_report.json"));
    assert!(text.starts_with("{\n  \"generated_ts_ns\": "), "{text}");
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  \""))
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            "generated_ts_ns",
            "scope",
            "overall_healthy",
            "metadata",
            "slis",
            "not_measured",
            "provenance"
        ]
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["scope"], "core_engine + strategy_bridge + storage");
    // Timescale was not measured (no input): not unhealthy, listed as not measured.
    assert_eq!(v["overall_healthy"], true);
    assert_eq!(
        v["not_measured"],
        serde_json::json!(["quant_hft_storage_timescale_health"])
    );
    let md_keys: Vec<&String> = v["metadata"].as_object().unwrap().keys().collect();
    assert_eq!(md_keys.len(), 11);
    assert_eq!(
        v["metadata"]["strategy_bridge_chain_source"],
        "auto_detected"
    );
    assert_eq!(v["metadata"]["strategy_bridge_state_key_count"], "2");
    assert_eq!(v["metadata"]["operator"], "ops1");
    let slis = v["slis"].as_array().unwrap();
    let names: Vec<&str> = slis.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "quant_hft_core_process_alive",
            "quant_hft_strategy_bridge_latency_p99_ms",
            "quant_hft_strategy_bridge_chain_integrity",
            "quant_hft_storage_redis_health",
            "quant_hft_storage_timescale_health"
        ]
    );
    for s in slis {
        let k: Vec<&String> = s.as_object().unwrap().keys().collect();
        assert_eq!(k.len(), 9, "{s}");
        assert_eq!(s["slo_name"], s["name"]);
        assert_eq!(s["environment"], "unknown");
        assert_eq!(s["service"], "core_engine");
    }
    assert_eq!(slis[0]["value"], 1.0);
    assert_eq!(slis[1]["value"], 250.0);
    assert_eq!(slis[1]["target"], 1500.0);
    assert_eq!(slis[1]["unit"], "ms");
    assert_eq!(slis[2]["value"], 1.0);
    assert_eq!(slis[2]["detail"], "input=complete");
    assert_eq!(slis[3]["healthy"], true);
    assert_eq!(slis[4]["value"], Value::Null);
    assert_eq!(slis[4]["healthy"], Value::Null);
    assert_eq!(slis[4]["detail"], "not measured: no input");
    assert_eq!(v["provenance"]["tool"], "slo-report");
    assert_eq!(v["provenance"]["dry_run"], false);
    assert_eq!(v["provenance"]["health_samples"], 7);
    assert_eq!(
        v["provenance"]["fault_events_sha256"]
            .as_str()
            .unwrap()
            .len(),
        64
    );

    // Health Markdown.
    let hm = read(&d.join("out/ops_health_report.md"));
    assert!(hm.starts_with("# Ops Health Report\n\n- Scope: core_engine + strategy_bridge + storage\n- Generated TS (ns): "), "{hm}");
    assert!(hm.contains("- Overall healthy: yes\n\n## SLI\n\n| Name | Value | Target | Healthy | Detail |\n|---|---:|---:|---|---|\n"), "{hm}");
    assert!(
        hm.contains("| quant_hft_strategy_bridge_latency_p99_ms | 250 | 1500 | yes |"),
        "{hm}"
    );
    assert!(
        hm.contains(
            "| quant_hft_strategy_bridge_chain_integrity | 1 | 1 | yes | input=complete |\n"
        ),
        "{hm}"
    );
    assert!(
        hm.contains("| quant_hft_storage_timescale_health | n/a | 1 | not measured | not measured: no input |\n"),
        "{hm}"
    );
    assert!(
        hm.contains("## Metadata\n\n- build: \n- config_profile: \n- environment: unknown\n"),
        "{hm}"
    );
    assert!(hm.contains("## Provenance\n"), "{hm}");

    // Alert JSON and Markdown.
    let a: Value = serde_json::from_str(&read(&d.join("out/ops_alert_report.json"))).unwrap();
    assert_eq!(a["generated_ts_ns"], v["generated_ts_ns"]);
    assert_eq!(a["overall_healthy"], true);
    let alerts = a["alerts"].as_array().unwrap();
    // Issue 9 item 6: no critical alert for an input nobody gave.
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["code"], "OPS_ALL_HEALTHY");
    assert_eq!(alerts[0]["severity"], "info");
    assert_eq!(
        alerts[0]["message"],
        "all measured SLI checks are healthy (not measured: storage_timescale_health)"
    );
    assert_eq!(a["provenance"]["tool"], "slo-report");
    let am = read(&d.join("out/ops_alert_report.md"));
    assert!(
        am.starts_with("# Ops Alert Report\n\n- Generated TS (ns): "),
        "{am}"
    );
    assert!(am.contains("| Code | Severity | SLI | Message |\n|---|---|---|---|\n| OPS_ALL_HEALTHY | info | quant_hft_core_process_alive | all measured SLI checks are healthy (not measured: storage_timescale_health) |\n"), "{am}");

    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 7, "{names:?}");
}

#[test]
fn all_healthy_alert_is_info() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.json");
    let out_s = out.display().to_string();
    let r = report(
        "original_events.jsonl",
        "original_probe.log",
        &[
            "--alert-json-file",
            &out_s,
            "--strategy-bridge-chain-status",
            "complete",
            "--storage-redis-health",
            "healthy",
            "--storage-timescale-health",
            "healthy",
        ],
    );
    r.code(0).stdout_has(&format!("\n{out_s}\n"));
    let a: Value = serde_json::from_str(&read(&out)).unwrap();
    assert_eq!(a["overall_healthy"], true);
    assert_eq!(a["alerts"][0]["code"], "OPS_ALL_HEALTHY");
    assert_eq!(a["alerts"][0]["severity"], "info");
    assert_eq!(a["alerts"][0]["message"], "all SLI checks are healthy");
    assert_eq!(a["alerts"][0]["sli_name"], "quant_hft_core_process_alive");
}

#[test]
fn apply_without_clear_and_not_healthy_at_apply() {
    // The disconnect window's probe is healthy 0.5 s before the next outage: settled at 500 ms.
    let r = report(
        "incomplete_events.jsonl",
        "incomplete_probe.log",
        &["--settle-ms", "500"],
    );
    let ev = fx("incomplete_events.jsonl");
    r.code(1)
        .stdout_has("- Samples: 1\n")
        .stdout_has("- Not counted (probe not healthy at apply): 1\n- Incomplete (apply without clear): 1\n")
        .stdout_has("| 2026-02-10T14:42:27+00:00 | 2026-02-10T14:42:28+00:00 | no |  | not_healthy_at_apply |\n")
        .stdout_has("| 2026-02-10T14:42:30+00:00 | n/a | no |  | no valid apply/clear window;apply_without_clear |\n")
        .stdout_has("- Clears without an open apply (ignored): 1\n")
        .stdout_has("- Target missed: 1 apply event(s) without a clear (no valid apply/clear window)\n")
        .stderr_is(&format!(
            "slo-report: warning: {ev}:6: clear of latency without an open apply; ignored\n\
             slo-report: warning: {ev}:5: apply of jitter without its clear (apply_without_clear)\n\
             slo-report: SLO not met: recovery P99 0.500 s over 1 recovered of 1 counted windows (target < 10 s): 1 apply event(s) without a clear (no valid apply/clear window)\n"
        ));
}

#[test]
fn unsorted_probe_log_from_stdin() {
    let e = fx("original_events.jsonl");
    let probe = read(Path::new(&fx("unsorted_probe.log")));
    let r = run(
        BIN,
        &[
            "--fault-events-file",
            &e,
            "--probe-log-file",
            "-",
            "--date",
            "2026-02-11",
        ],
        Some(&probe),
        None,
    );
    r.code(0)
        .stdout_has("- Recovery P99 (s): 1.000\n")
        .stderr_has("slo-report: warning: -:3: health samples are not in ts_ns order; sorting the probe log in memory\n");
}

/// Issue 8 item 14: healthy at the clear, an outage 100 ms after it, healthy again 250 ms after
/// the clear. Today's main said 0.000 s (recovered before the clear); the drill and the
/// simulator see the outage: it is this window's recovery.
#[test]
fn an_outage_just_after_the_clear_is_that_windows_recovery() {
    report(
        "outage_after_clear_events.jsonl",
        "outage_after_clear_probe.log",
        &[],
    )
    .code(0)
    .stdout_has("- Recovery P99 (s): 0.250\n")
    .stdout_has("| yes | 0.250 | detection=0.100s |\n")
    .never_has("recovered_before_clear")
    .stderr_has("SLO met: recovery P99 0.250 s over 1 recovered of 1 counted windows");
}

/// Issue 8 item 14: the disconnect window is still unhealthy at the next apply (latency, whose
/// probe is unhealthy at its apply). Today's main counted the healthy line after the next apply
/// as the disconnect window's recovery (2.5 s, pass); the search ends at the next apply.
#[test]
fn a_windows_search_ends_at_the_next_apply() {
    report("next_apply_events.jsonl", "next_apply_probe.log", &[])
        .code(1)
        .stdout_has("| no |  | detection=0.200s;not_recovered;next_apply_before_recovery |\n")
        .stdout_has("| no |  | not_healthy_at_apply |\n")
        .stderr_has("1 window(s) did not recover");
}

/// Issue 8 item 15: the simulator cross-check is part of the verdict, and the acceptance list shows
/// only what was measured.
#[test]
fn simulator_disagreement_fails_and_measured_lines_are_ticked() {
    report(
        "original_events.jsonl",
        "original_probe.log",
        &["--processes-survived", "yes", "--sim-max-diff-ms", "3.5", "--sim-bound-ms", "10"],
    )
    .code(0)
    .stdout_has("- [x] no crash\n- [x] no stuck state after repeated runs\n- [x] probe agrees with the simulator's log within 10 ms (max |diff| 3.500 ms)\n");
    report(
        "original_events.jsonl",
        "original_probe.log",
        &["--sim-max-diff-ms", "nan", "--sim-bound-ms", "10"],
    )
    .code(2)
    .stderr_has("--sim-max-diff-ms");
    report(
        "original_events.jsonl",
        "original_probe.log",
        &["--processes-survived", "no", "--sim-max-diff-ms", "42", "--sim-bound-ms", "10"],
    )
    .code(1)
    .stdout_has("- [ ] no crash\n- [x] no stuck state after repeated runs\n- [ ] probe agrees with the simulator's log within 10 ms (max |diff| 42.000 ms)\n")
    .stdout_has("- Target missed: the probe disagrees with ctp-front-sim's log by 42.000 ms (bound 10 ms): its figures are not trustworthy\n")
    .stdout_has("- Target missed: a process of the drill died before the end\n")
    .stderr_has("SLO not met: ");
}

/// Issue 9 item 6: the storage SLIs are measured from a prod-like health report (the shape of
/// prodlike-health's report: a crashed Redis replica) and, without one, not measured at all.
#[test]
fn storage_slis_come_from_a_prodlike_health_report() {
    let dir = tempfile::tempdir().unwrap();
    let alerts_path = dir.path().join("alerts.json");
    let health_path = dir.path().join("health.json");
    let (a_s, h_s) = (
        alerts_path.display().to_string(),
        health_path.display().to_string(),
    );
    let stack = fx("prodlike_health_replica_down.json");
    let r = report(
        "original_events.jsonl",
        "original_probe.log",
        &[
            "--strategy-bridge-chain-status",
            "complete",
            "--prodlike-health-file",
            &stack,
            "--alert-json-file",
            &a_s,
            "--health-json-file",
            &h_s,
        ],
    );
    r.code(0);
    let h: Value = serde_json::from_str(&read(&health_path)).unwrap();
    let slis = h["slis"].as_array().unwrap();
    assert_eq!(slis[3]["healthy"], false);
    assert_eq!(slis[3]["value"], 0.0);
    assert_eq!(
        slis[3]["detail"],
        format!(
            "prodlike={stack}: redis-primary healthy, redis-replica unhealthy (state=exited, health=unhealthy), redis-sentinel-1 healthy"
        )
    );
    assert_eq!(slis[4]["healthy"], true);
    assert_eq!(
        slis[4]["detail"],
        format!("prodlike={stack}: timescale-primary healthy, timescale-replica healthy")
    );
    assert_eq!(h["not_measured"], serde_json::json!([]));
    let a: Value = serde_json::from_str(&read(&alerts_path)).unwrap();
    let codes: Vec<&str> = a["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["OPS_STORAGE_REDIS_HEALTH_UNHEALTHY"]);
    // The original's compose shape: running with an empty health is healthy.
    let r = report(
        "original_events.jsonl",
        "original_probe.log",
        &[
            "--prodlike-health-file",
            &fx("prodlike_health_original.json"),
            "--health-json-file",
            &h_s,
        ],
    );
    r.code(0);
    let h: Value = serde_json::from_str(&read(&health_path)).unwrap();
    assert_eq!(h["slis"][3]["healthy"], true);
    assert_eq!(h["slis"][4]["healthy"], false, "timescale-primary missing");
    // Not a health report, and both inputs at once: exit 2.
    report(
        "original_events.jsonl",
        "original_probe.log",
        &["--prodlike-health-file", &fx("original_events.jsonl")],
    )
    .code(2)
    .stderr_has("original_events.jsonl");
    report(
        "original_events.jsonl",
        "original_probe.log",
        &[
            "--prodlike-health-file",
            &stack,
            "--storage-redis-health",
            "healthy",
        ],
    )
    .code(2)
    .stderr_has("--prodlike-health-file measures the storage SLIs");
}
