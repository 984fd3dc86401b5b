//! evidence: index / prom / junit / seal / check-seal on a results folder captured from a real
//! `make drill` (tests/fixtures/pass), plus failing, unreadable and tampered variants.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::path::{Path, PathBuf};

use test_support::{build_siblings, fixture, have_command, run, skip};

const BIN: &str = env!("CARGO_BIN_EXE_evidence");

fn results_copy() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("results");
    std::fs::create_dir(&dir).unwrap();
    let src = PathBuf::from(fixture(env!("CARGO_MANIFEST_DIR"), "pass"));
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join(p.file_name().unwrap())).unwrap();
    }
    (tmp, dir)
}

fn ev(args: &[&str], dir: &Path) -> test_support::Run {
    let mut a = args.to_vec();
    a.extend(["--results-dir", dir.to_str().unwrap()]);
    run(BIN, &a, None, None)
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

#[test]
fn index_lists_every_drill_newest_first() {
    let (_t, dir) = results_copy();
    let r = ev(&["index"], &dir);
    r.code(0).stderr_is("");
    let rows: Vec<&str> = r.stdout.lines().skip(2).collect();
    assert_eq!(rows.len(), 6, "{}", r.stdout);
    let sops: Vec<&str> = rows
        .iter()
        .map(|l| l.split(" | ").nth(1).unwrap())
        .collect();
    assert_eq!(
        sops,
        [
            "4 wal",
            "2 reconnect",
            "1 preflight",
            "6 rollout",
            "6 rollout",
            "5 rollback"
        ]
    );
    assert!(rows[0].contains("rto_seconds=0.014970") && rows[0].contains("| PASS |"));
    assert!(rows[1].contains("recovery_p99_seconds=0.556"));
    assert!(rows[1].contains("[reconnect_samples.csv](reconnect_samples.csv)"));
    assert!(rows[5].contains("rollback_seconds=0.021564"));
    let md = std::fs::read_to_string(dir.join("evidence_index.md")).unwrap();
    assert!(md.starts_with("# ctp-ops evidence index\n"));
    assert!(md.ends_with(&r.stdout));
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("evidence_index.json")).unwrap())
            .unwrap();
    let entries = j["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 6);
    assert_eq!(entries[0]["drill_id"], "wal-20261130T185101Z-10042");
    assert_eq!(entries[0]["verdict"], "pass");
    let times: Vec<i64> = entries
        .iter()
        .map(|e| e["finished_ts_ns"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    // Running it again does not index its own output.
    ev(&["index"], &dir).code(0).stdout_is(&r.stdout);
}

#[test]
fn index_failed_and_unreadable_evidence() {
    let (_t, dir) = results_copy();
    std::fs::copy(
        fixture(env!("CARGO_MANIFEST_DIR"), "wal_failed.env"),
        dir.join("wal_recovery_result.env"),
    )
    .unwrap();
    let r = ev(&["index"], &dir);
    r.code(1).stderr_is("");
    assert!(
        r.stdout.contains("| 4 wal |") && r.stdout.contains("FAIL:"),
        "{}",
        r.stdout
    );
    std::fs::copy(
        fixture(env!("CARGO_MANIFEST_DIR"), "rollback_duplicate_key.env"),
        dir.join("deploy_rollback_result.env"),
    )
    .unwrap();
    let r = ev(&["index"], &dir);
    r.code(2);
    assert!(
        r.stdout
            .contains("UNREADABLE: deploy_rollback_result.env:3"),
        "{}",
        r.stdout
    );
}

#[test]
fn prom_passes_promtool_and_keeps_the_last_success() {
    let (t, dir) = results_copy();
    let out = t.path().join("ctp_ops.prom");
    ev(&["prom", "--output-file", out.to_str().unwrap()], &dir)
        .code(0)
        .stdout_is("")
        .stderr_is("");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.contains(
        "ctp_ops_wal_rto_seconds{sop=\"wal\",evidence=\"wal_recovery_result.env\"} 0.01497\n"
    ));
    assert!(text.contains("ctp_ops_rollback_seconds{sop=\"rollback\",evidence=\"deploy_rollback_result.env\"} 0.021564\n"));
    assert!(text.contains("ctp_ops_reconnect_recovery_p99_seconds{sop=\"reconnect\",evidence=\"ops_health_report.json\"} 0.556\n"));
    let success_line = "ctp_ops_drill_last_success_timestamp_seconds{sop=\"wal\",evidence=\"wal_recovery_result.env\"} 1796064663.378\n";
    assert!(text.contains(success_line), "{text}");
    if require("prom_passes_promtool", "promtool") {
        run("promtool", &["check", "metrics"], Some(&text), None)
            .code(0)
            .stdout_is("")
            .stderr_is("");
    }
    // The next drill fails: result 0, and the last success is the earlier one.
    std::fs::copy(
        fixture(env!("CARGO_MANIFEST_DIR"), "wal_failed.env"),
        dir.join("wal_recovery_result.env"),
    )
    .unwrap();
    let r = ev(&["prom"], &dir);
    r.code(0).stderr_is("");
    assert!(
        r.stdout
            .contains("ctp_ops_drill_result{sop=\"wal\",evidence=\"wal_recovery_result.env\"} 0\n")
    );
    assert!(r.stdout.contains(success_line), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "ctp_ops_wal_rpo_events{sop=\"wal\",evidence=\"wal_recovery_result.env\"} 3\n"
        )
    );
}

/// Count the testsuite/testcase/failure/error elements with quick-xml (a real XML parser).
fn junit_counts(xml: &str) -> (usize, usize, usize, usize) {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    let (mut suites, mut cases, mut failures, mut errors) = (0, 0, 0, 0);
    loop {
        match r.read_event().unwrap() {
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"testsuite" => suites += 1,
                b"testcase" => cases += 1,
                b"failure" => failures += 1,
                b"error" => errors += 1,
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    (suites, cases, failures, errors)
}

#[test]
fn junit_of_real_verifier_verdicts() {
    let bins = build_siblings(BIN, &["wal-verify", "rollback-verify"]);
    let (t, dir) = results_copy();
    let verify = |tool: &str, evidence: &Path, extra: &[&str]| -> String {
        let mut a = vec![
            "--format",
            "json",
            "--evidence-file",
            evidence.to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        run(bins.join(tool).to_str().unwrap(), &a, None, None).stdout
    };
    let pass = verify("wal-verify", &dir.join("wal_recovery_result.env"), &[]);
    let rb = verify(
        "rollback-verify",
        &dir.join("deploy_rollback_result.env"),
        &[],
    );
    // A breach: the same evidence against a target it misses.
    let failed = verify(
        "wal-verify",
        &dir.join("wal_recovery_result.env"),
        &["--max-rto-seconds", "0.000001"],
    );
    let f1 = t.path().join("a.jsonl");
    std::fs::write(&f1, format!("{pass}{rb}")).unwrap();
    let r = run(BIN, &["junit", f1.to_str().unwrap()], None, None);
    r.code(0).stderr_is("");
    let (suites, cases, failures, errors) = junit_counts(&r.stdout);
    assert_eq!((suites, failures, errors), (2, 0, 0));
    assert_eq!(cases, pass.lines().count() + rb.lines().count() - 2);

    // A breach from stdin, next to the passes: a <failure>, exit 1.
    let r = run(
        BIN,
        &["junit", f1.to_str().unwrap(), "-"],
        Some(&failed),
        None,
    );
    r.code(1);
    let (suites, _, failures, _) = junit_counts(&r.stdout);
    assert_eq!(suites, 3);
    assert!(failures >= 1, "{}", r.stdout);

    // A verifier that died before its verdict: an <error>, exit 2.
    let cut: String = pass.lines().take(2).map(|l| format!("{l}\n")).collect();
    let r = run(BIN, &["junit", "-"], Some(&cut), None);
    r.code(2);
    assert_eq!(junit_counts(&r.stdout).3, 1);
    // Not verifier output: exit 2 naming file:line.
    let bad = t.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"kind\":\"wal.ack\",\"ts_ns\":1}\n").unwrap();
    run(BIN, &["junit", bad.to_str().unwrap()], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has(&format!("{}:1: kind", bad.display()));
}

#[test]
fn seal_detects_a_flipped_byte_a_removed_and_an_added_file() {
    let (_t, dir) = results_copy();
    ev(&["check-seal"], &dir)
        .code(2)
        .stdout_is("")
        .stderr_has("no seal in");
    let r = ev(&["seal", "--drill-id", "wal-1"], &dir);
    r.code(0).stderr_is("").stdout_has("sealed 11 files: ");
    ev(&["check-seal"], &dir)
        .code(0)
        .stdout_is("[PASS] seal chain intact; 11 files match seal 1\noverall: PASS\n");

    // Flip one byte.
    let p = dir.join("wal_recovery_result.env");
    let mut b = std::fs::read(&p).unwrap();
    b[100] ^= 0x01;
    std::fs::write(&p, &b).unwrap();
    let r = ev(&["check-seal"], &dir);
    r.code(1).stderr_is("");
    assert!(
        r.stdout
            .starts_with("[FAIL] wal_recovery_result.env: changed"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.ends_with("overall: FAIL\n"));
    b[100] ^= 0x01;
    std::fs::write(&p, &b).unwrap();
    ev(&["check-seal"], &dir).code(0);

    // Remove one file, add another.
    std::fs::remove_file(dir.join("reconnect_samples.csv")).unwrap();
    std::fs::write(dir.join("forged.env"), "result=pass\n").unwrap();
    let r = ev(&["check-seal"], &dir);
    r.code(1);
    assert!(
        r.stdout.contains("[FAIL] reconnect_samples.csv: removed\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("[FAIL] forged.env: added after seal 1\n"),
        "{}",
        r.stdout
    );
}

#[test]
fn seals_are_chained() {
    let (_t, dir) = results_copy();
    ev(&["seal"], &dir).code(0);
    std::fs::write(dir.join("next_drill.env"), "x=1\n").unwrap();
    ev(&["seal"], &dir).code(0).stdout_has("seal-000002.json");
    ev(&["check-seal"], &dir)
        .code(0)
        .stdout_has("12 files match seal 2");
    let s2: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("seals/seal-000002.json")).unwrap())
            .unwrap();
    assert_eq!(s2["previous"]["file"], "seal-000001.json");
    // Rewrite the first seal (e.g. to hide a change): the chain breaks, and seal refuses.
    let p1 = dir.join("seals/seal-000001.json");
    let t = std::fs::read_to_string(&p1)
        .unwrap()
        .replace("\"seq\": 1", "\"seq\": 1 ");
    std::fs::write(&p1, t).unwrap();
    let r = ev(&["check-seal"], &dir);
    r.code(1);
    assert!(
        r.stdout.contains("seals/seal-000002.json: chain broken"),
        "{}",
        r.stdout
    );
    ev(&["seal"], &dir)
        .code(2)
        .stdout_is("")
        .stderr_has("the existing seal chain is broken");
    // Removing a seal is seen too.
    std::fs::remove_file(&p1).unwrap();
    let r = ev(&["check-seal"], &dir);
    r.code(1);
    assert!(
        r.stdout.contains("sequence 2 where 1 was expected"),
        "{}",
        r.stdout
    );
}

#[test]
fn usage() {
    run(BIN, &[], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("Usage");
    run(BIN, &["index", "--results-dir", "/nonexistent"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_is("evidence: error: results folder not found: /nonexistent\n");
    run(BIN, &["--help"], None, None)
        .code(0)
        .stdout_has("EXIT STATUS")
        .stdout_has("check-seal");
}
