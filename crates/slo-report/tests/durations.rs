//! Duration flags take a plain number in the unit of the flag's name (old scripts keep working)
//! or a duration with a unit (`1.5s`, `500ms`, `2m`); anything else is a usage error (exit 2).
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use clap::Parser;
use slo_report::Cli;
use test_support::run;

const BIN: &str = env!("CARGO_BIN_EXE_slo-report");

fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let base: &[&str] = &[
        "slo-report",
        "--fault-events-file",
        "f",
        "--probe-log-file",
        "p",
    ];
    Cli::try_parse_from(base.iter().chain(args))
}

fn parse(args: &[&str]) -> Cli {
    try_parse(args).unwrap()
}

#[test]
fn duration_flags_take_both_spellings() {
    assert_eq!(parse(&["--settle-ms", "1500"]).settle_ms, 1500);
    assert_eq!(parse(&["--settle-ms", "1.5s"]).settle_ms, 1500);
    assert!(try_parse(&["--settle-ms", "-1"]).is_err());
    assert!(try_parse(&["--settle-ms", "soon"]).is_err());
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    run(BIN, &["--settle-ms", "1.5 fortnights"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--settle-ms");
}
