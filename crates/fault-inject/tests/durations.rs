//! --delay-ms, --jitter-ms and --duration-sec take a plain integer in the unit of the flag's name
//! (old scripts keep working; a negative one is still refused by the check that names it) or a
//! duration with a unit (`0.25s`, `250ms`, `2m`).
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use clap::Parser;
use fault_inject::Cli;
use test_support::run;

const BIN: &str = env!("CARGO_BIN_EXE_fault-inject");

fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let base: &[&str] = &["fault-inject", "plan", "--target-ip", "127.0.0.1"];
    Cli::try_parse_from(base.iter().chain(args))
}

fn parse(args: &[&str]) -> Cli {
    try_parse(args).unwrap()
}

#[test]
fn duration_flags_take_both_spellings() {
    assert_eq!(parse(&["--delay-ms", "250"]).delay_ms, 250);
    assert_eq!(parse(&["--delay-ms", "0.25s"]).delay_ms, 250);
    assert_eq!(parse(&["--jitter-ms", "40"]).jitter_ms, 40);
    assert_eq!(parse(&["--jitter-ms", "40ms"]).jitter_ms, 40);
    assert_eq!(parse(&["--duration-sec", "120"]).duration_sec, 120);
    assert_eq!(parse(&["--duration-sec", "2m"]).duration_sec, 120);
    // Defaults unchanged.
    let d = parse(&[]);
    assert_eq!((d.delay_ms, d.jitter_ms, d.duration_sec), (250, 30, 20));
    // A negative integer still reaches the tool's own check (below); garbage is clap's error.
    assert_eq!(parse(&["--delay-ms", "-1"]).delay_ms, -1);
    assert!(try_parse(&["--delay-ms", "soon"]).is_err());
    assert!(try_parse(&["--duration-sec", "-1s"]).is_err());
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    run(
        BIN,
        &[
            "plan",
            "--target-ip",
            "127.0.0.1",
            "--delay-ms",
            "1.5 fortnights",
        ],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("--delay-ms");
    run(
        BIN,
        &["plan", "--target-ip", "127.0.0.1", "--delay-ms", "-1"],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("--delay-ms: expected >= 0, found -1");
}
