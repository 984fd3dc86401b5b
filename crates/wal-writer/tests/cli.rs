//! wal-writer acceptance tests: acks on stdout, legal lifecycles that replay clean, seq resumption
//! (also after a torn tail), each durability policy, clean stop on SIGTERM, usage errors.
#![allow(clippy::unwrap_used, reason = "test helpers panic on broken fixtures")]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use test_support::{Run, run, wait_until};
use wal_core::{Ack, ReplayOptions, ReplaySummary, Replayer, WalLine};

const BIN: &str = env!("CARGO_BIN_EXE_wal-writer");

fn write(wal: &Path, extra: &[&str]) -> Run {
    let w = wal.to_str().unwrap();
    let mut args = vec!["--wal-path", w, "--rate", "0"];
    args.extend_from_slice(extra);
    run(BIN, &args, None, None)
}

fn acks(r: &Run) -> Vec<u64> {
    r.stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Ack>(l)
                .expect("a wal.ack record")
                .acked_seq
        })
        .collect()
}

fn replay(wal: &Path) -> (ReplaySummary, Vec<u64>) {
    let opts = ReplayOptions {
        collect_seqs: true,
        max_listed: 100,
    };
    Replayer::new("t", opts)
        .run(std::fs::File::open(wal).unwrap())
        .unwrap()
}

#[test]
fn writes_acks_and_legal_lifecycles_that_replay_clean() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("sub/runtime_events.wal");
    let r = write(
        &wal,
        &["--events", "5000", "--durability", "batch", "--seed", "3"],
    );
    r.code(0)
        .stderr_has(&format!(
            "wal-writer: appending to {} from seq 0 (durability batch, rate 0/s, events 5000, seed 3)\n",
            wal.display()
        ))
        .stderr_has("wal-writer: wrote 5000 events (seq 0..=4999)\n");
    assert_eq!(acks(&r), (0..5000).collect::<Vec<_>>());
    let text = std::fs::read_to_string(&wal).unwrap();
    let lines: Vec<WalLine> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("the extended WAL line form"))
        .collect();
    assert_eq!(lines.len(), 5000);
    assert!(
        text.starts_with("{\"seq\":0,\"kind\":\"order\",\"ts_ns\":"),
        "{}",
        &text[..80]
    );
    let (s, _) = replay(&wal);
    assert!(s.clean, "{:?}", s.problems);
    assert_eq!((s.events, s.state_rejected, s.parse_errors), (5000, 0, 0));
    assert_eq!(s.ledger_applied + s.ignored, 5000);
    let accounts: std::collections::BTreeSet<_> =
        s.positions.iter().map(|p| p.account_id.clone()).collect();
    let instruments: std::collections::BTreeSet<_> = s
        .positions
        .iter()
        .map(|p| p.instrument_id.clone())
        .collect();
    assert_eq!(accounts.len(), 3, "{accounts:?}");
    assert_eq!(instruments.len(), 4, "{instruments:?}");
    for status in [0, 1, 2, 3, 4, 5] {
        assert!(
            lines.iter().any(|l| l.status == status),
            "no event with status {status}"
        );
    }
    assert!(s.terminal_orders > 500, "{s:?}");
}

#[test]
fn resumes_seq_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("w.wal");
    write(&wal, &["--events", "7", "--durability", "fsync"]).code(0);
    let r = write(&wal, &["--events", "5", "--durability", "none"]);
    r.code(0).stderr_has("from seq 7 (durability none");
    assert_eq!(acks(&r), vec![7, 8, 9, 10, 11]);
    let (s, seqs) = replay(&wal);
    assert_eq!(seqs, (0..12).collect::<Vec<_>>());
    assert!(s.clean, "{:?}", s.problems);
}

#[test]
fn resumes_after_a_torn_tail_on_a_new_line() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("w.wal");
    write(&wal, &["--events", "4", "--durability", "fsync"]).code(0);
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes.extend_from_slice(b"{\"seq\":4,\"kind\":\"ord");
    std::fs::write(&wal, &bytes).unwrap();
    let r = write(&wal, &["--events", "3", "--durability", "batch"]);
    r.code(0).stderr_has(&format!(
        "wal-writer: {} ends with 20 bytes after its last newline (a torn write); leaving them and starting on a new line\n",
        wal.display()
    ));
    assert_eq!(acks(&r), vec![4, 5, 6]);
    let (s, seqs) = replay(&wal);
    // The torn line stays, now mid-file: a parse error; the new events parse and continue the seq.
    assert_eq!(seqs, (0..7).collect::<Vec<_>>());
    assert_eq!((s.parse_errors, s.gap_count, s.torn_tail_bytes), (1, 0, 0));
    assert_eq!(s.problems[0].line, 5);
}

#[test]
fn none_keeps_acked_events_in_its_buffer_until_full() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("w.wal");
    let mut child = Command::new(BIN)
        .args(["--wal-path", wal.to_str().unwrap(), "--rate", "200"])
        .args(["--durability", "none", "--buffer-bytes", "1000000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let mut line = String::new();
    while acked.len() < 10 {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "writer ended early");
        acked.push(serde_json::from_str::<Ack>(&line).unwrap().acked_seq);
    }
    // Ten events acknowledged, none written yet: the buffer is far from full.
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    // SIGTERM is a clean stop: the buffer is written, the exit is 130.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    for l in rest.lines() {
        acked.push(serde_json::from_str::<Ack>(l).unwrap().acked_seq);
    }
    let (s, seqs) = replay(&wal);
    assert_eq!(seqs, acked);
    assert!(s.clean);
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.ends_with("wal-writer: interrupted\n"), "{err}");
}

#[test]
fn rate_paces_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("w.wal");
    let started = std::time::Instant::now();
    let w = wal.to_str().unwrap();
    run(
        BIN,
        &["--wal-path", w, "--events", "20", "--rate", "100"],
        None,
        None,
    )
    .code(0);
    // 20 events at 100/s take at least 190 ms (the first is due at once).
    assert!(started.elapsed() >= Duration::from_millis(190));
    wait_until(Duration::from_secs(5), "WAL written", || {
        replay(&wal).0.events == 20
    });
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("w.wal");
    let w = wal.to_str().unwrap();
    run(BIN, &["--wal-path", w, "--rate=-1"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has(
            "invalid value '-1' for '--rate <R>': expected 0 or a number from 0.001 to 10000000",
        );
    // Issue 8 item 11: a rate so small that the first event's slot overflows is refused, not a
    // panic (exit 101).
    run(BIN, &["--wal-path", w, "--rate", "1e-300"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("invalid value '1e-300' for '--rate <R>'");
    run(BIN, &["--wal-path", w, "--batch-events", "0"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("invalid value '0' for '--batch-events <N>': 0 is not in 1..=1000000000");
    run(BIN, &["--events", "1"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--wal-path <PATH>");
    run(
        BIN,
        &["--wal-path", w, "--durability", "sometimes"],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("invalid value 'sometimes'");
    assert!(!wal.exists());
    run(
        BIN,
        &["--wal-path", "/proc/version/w.wal", "--events", "1"],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("wal-writer: error: ");
    // A WAL at the largest seq cannot be resumed: an error, not an overflow.
    let full = format!(
        "{{\"seq\":{},\"kind\":\"order\",\"ts_ns\":1,\"client_order_id\":\"c\",\"status\":0,\"filled_volume\":0}}\n",
        u64::MAX
    );
    std::fs::write(&wal, &full).unwrap();
    run(BIN, &["--wal-path", w, "--events", "1"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_is(&format!(
            "wal-writer: error: {w}: its largest seq is {}: no seq is left to resume at\n",
            u64::MAX
        ));
    assert_eq!(std::fs::read_to_string(&wal).unwrap(), full);
}
