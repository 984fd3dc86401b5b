//! wal-replay acceptance tests: one real WAL fixture per case, asserting exit status, the summary
//! line on stdout (or the JSON summary) and the messages on stderr.
#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use serde_json::Value;
use test_support::{Run, fixture, run};

const BIN: &str = env!("CARGO_BIN_EXE_wal-replay");

fn fx(name: &str) -> String {
    fixture(env!("CARGO_MANIFEST_DIR"), name)
}

fn replay(name: &str) -> Run {
    run(BIN, &[&fx(name)], None, None)
}

fn json(name: &str) -> (Run, Value) {
    let r = run(BIN, &["--json", &fx(name)], None, None);
    let v: Value = serde_json::from_str(&r.stdout).expect("one JSON summary on stdout");
    (r, v)
}

fn line(name: &str, counts: &str) -> String {
    format!("WAL replay completed path={} {counts}\n", fx(name))
}

#[test]
fn clean_extended_form_replays_clean() {
    replay("clean_extended.wal").code(0).stderr_is("").stdout_is(&line(
        "clean_extended.wal",
        "lines=12 events=12 ignored=2 parse_errors=0 state_rejected=0 ledger_applied=10 last_seq=11 gaps=0 duplicates=0 torn_tail_bytes=0",
    ));
    let (r, v) = json("clean_extended.wal");
    r.code(0).stderr_is("");
    assert_eq!(v["kind"], "wal.replay");
    assert_eq!(v["clean"], true);
    assert_eq!(v["first_seq"], 0);
    assert_eq!(v["last_seq"], 11);
    assert_eq!(v["live_orders"], 1);
    assert_eq!(v["terminal_orders"], 3);
    let positions = v["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 3, "{positions:?}");
    assert_eq!(positions[0]["account_id"], "sim-account-1");
    assert_eq!(positions[0]["instrument_id"], "SHFE.ag2406");
    assert_eq!(positions[0]["filled_volume"], 5);
    assert_eq!(positions[0]["notional"], 36750.0);
    // c-0003 was new, then rejected: its new event reached the ledger, the rejection did not.
    assert_eq!(positions[1]["instrument_id"], "SHFE.au2406");
    assert_eq!(positions[1]["orders"], 1);
    assert_eq!(positions[2]["account_id"], "sim-account-2");
    assert_eq!(positions[2]["orders"], 2);
    assert_eq!(positions[2]["filled_volume"], 0);
}

#[test]
fn torn_tail_alone_is_clean() {
    replay("torn_tail.wal")
        .code(0)
        .stdout_is(&line(
            "torn_tail.wal",
            "lines=12 events=12 ignored=2 parse_errors=0 state_rejected=0 ledger_applied=10 last_seq=11 gaps=0 duplicates=0 torn_tail_bytes=40",
        ))
        .stderr_is(&format!(
            "wal-replay: {}: torn tail of 40 bytes after the last newline (a write cut by a crash; not an error)\n",
            fx("torn_tail.wal")
        ));
    let (_, v) = json("torn_tail.wal");
    assert_eq!(v["torn_tail_bytes"], 40);
    assert_eq!(v["clean"], true);
}

#[test]
fn seq_gap_is_counted_and_listed() {
    replay("seq_gap.wal")
        .code(1)
        .stdout_is(&line(
            "seq_gap.wal",
            "lines=10 events=10 ignored=1 parse_errors=0 state_rejected=0 ledger_applied=9 last_seq=11 gaps=1 duplicates=0 torn_tail_bytes=0",
        ))
        .stderr_is(&format!(
            "wal-replay: warning: {}:5: seq gap: 4..=5 missing\n",
            fx("seq_gap.wal")
        ));
    let (r, v) = json("seq_gap.wal");
    r.code(1);
    assert_eq!(v["gap_count"], 1);
    assert_eq!(v["missing_seqs"], 2);
    assert_eq!(v["gaps"][0]["from"], 4);
    assert_eq!(v["gaps"][0]["to"], 5);
    assert_eq!(v["gaps"][0]["line"], 5);
    assert_eq!(v["clean"], false);
}

#[test]
fn duplicate_seq_is_counted_and_listed() {
    replay("duplicate_seq.wal")
        .code(1)
        .stdout_is(&line(
            "duplicate_seq.wal",
            "lines=13 events=13 ignored=3 parse_errors=0 state_rejected=0 ledger_applied=10 last_seq=11 gaps=0 duplicates=1 torn_tail_bytes=0",
        ))
        .stderr_is(&format!(
            "wal-replay: warning: {}:7: seq 5 is not above the largest seq before it (duplicate or out of order)\n",
            fx("duplicate_seq.wal")
        ));
    let (_, v) = json("duplicate_seq.wal");
    assert_eq!(v["duplicate_count"], 1);
    assert_eq!(v["duplicates"][0]["seq"], 5);
    assert_eq!(v["duplicates"][0]["line"], 7);
}

#[test]
fn garbage_line_is_a_parse_error() {
    replay("garbage_line.wal")
        .code(1)
        .stdout_is(&line(
            "garbage_line.wal",
            "lines=13 events=12 ignored=2 parse_errors=1 state_rejected=0 ledger_applied=10 last_seq=11 gaps=0 duplicates=0 torn_tail_bytes=0",
        ))
        .stderr_has(&format!(
            "wal-replay: warning: {}:4: parse error: line: not a WAL event object",
            fx("garbage_line.wal")
        ));
    let (_, v) = json("garbage_line.wal");
    assert_eq!(v["problems"][0]["line"], 4);
    assert_eq!(v["problems"][0]["problem"], "parse");
}

#[test]
fn illegal_transition_is_rejected() {
    replay("illegal_transition.wal")
        .code(1)
        .stdout_is(&line(
            "illegal_transition.wal",
            "lines=13 events=13 ignored=2 parse_errors=0 state_rejected=1 ledger_applied=10 last_seq=12 gaps=0 duplicates=0 torn_tail_bytes=0",
        ))
        .stderr_is(&format!(
            "wal-replay: warning: {}:13: rejected: status: order c-0001 is already filled (terminal); a different event after it is refused\n",
            fx("illegal_transition.wal")
        ));
}

#[test]
fn legacy_form_replays_clean() {
    replay("legacy.wal").code(0).stderr_is("").stdout_is(&line(
        "legacy.wal",
        "lines=6 events=6 ignored=0 parse_errors=0 state_rejected=0 ledger_applied=6 last_seq=5 gaps=0 duplicates=0 torn_tail_bytes=0",
    ));
    let (_, v) = json("legacy.wal");
    assert_eq!(v["positions"][0]["instrument_id"], "SHFE.ag2406");
    assert_eq!(v["positions"][0]["filled_volume"], 3);
    assert_eq!(v["positions"][1]["instrument_id"], "SHFE.au2406");
    assert_eq!(v["live_orders"], 0);
}

#[test]
fn stdin_is_dash() {
    let text = std::fs::read_to_string(fx("legacy.wal")).unwrap();
    run(BIN, &["-"], Some(&text), None)
        .code(0)
        .stderr_is("")
        .stdout_is("WAL replay completed path=- lines=6 events=6 ignored=0 parse_errors=0 state_rejected=0 ledger_applied=6 last_seq=5 gaps=0 duplicates=0 torn_tail_bytes=0\n");
}

#[test]
fn empty_wal_is_clean() {
    run(BIN, &["-"], Some("\n\n"), None)
        .code(0)
        .stderr_is("")
        .stdout_is("WAL replay completed path=- lines=0 events=0 ignored=0 parse_errors=0 state_rejected=0 ledger_applied=0 last_seq=none gaps=0 duplicates=0 torn_tail_bytes=0\n");
}

#[test]
fn unreadable_wal_exits_2() {
    run(BIN, &["/nonexistent/runtime_events.wal"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("wal-replay: error: cannot read /nonexistent/runtime_events.wal: ");
    let dir = tempfile::tempdir().unwrap();
    run(BIN, &[dir.path().to_str().unwrap()], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("wal-replay: error: cannot read");
}

#[test]
fn usage_error_exits_2() {
    run(BIN, &["--no-such-flag", "x.wal"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("unexpected argument '--no-such-flag'");
    run(BIN, &["--help"], None, None)
        .code(0)
        .stderr_is("")
        .stdout_has("EXIT STATUS");
}
