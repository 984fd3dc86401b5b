//! Duration flags take a plain number in the unit of the flag's name (old scripts keep working)
//! or a duration with a unit (`1.5s`, `500ms`, `2m`); anything else is a usage error (exit 2).
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use clap::Parser;
use ctp_probe::Cli;
use test_support::run;

const BIN: &str = env!("CARGO_BIN_EXE_ctp-probe");

fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let base: &[&str] = &["ctp-probe"];
    Cli::try_parse_from(base.iter().chain(args))
}

fn parse(args: &[&str]) -> Cli {
    try_parse(args).unwrap()
}

#[test]
fn duration_flags_take_both_spellings() {
    assert_eq!(
        parse(&["--heartbeat-timeout-ms", "3000"]).heartbeat_timeout_ms,
        Some(3000)
    );
    assert_eq!(
        parse(&["--heartbeat-timeout-ms", "3s"]).heartbeat_timeout_ms,
        Some(3000)
    );
    assert!(try_parse(&["--heartbeat-timeout-ms", "-1"]).is_err());
    assert!(try_parse(&["--heartbeat-timeout-ms", "soon"]).is_err());
    assert_eq!(
        parse(&["--tcp-check-interval-ms", "500"]).tcp_check_interval_ms,
        500
    );
    assert_eq!(
        parse(&["--tcp-check-interval-ms", "500ms"]).tcp_check_interval_ms,
        500
    );
    assert!(try_parse(&["--tcp-check-interval-ms", "-1"]).is_err());
    assert!(try_parse(&["--tcp-check-interval-ms", "soon"]).is_err());
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    run(
        BIN,
        &["--heartbeat-timeout-ms", "1.5 fortnights"],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("--heartbeat-timeout-ms");
}
