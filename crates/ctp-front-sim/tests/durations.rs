//! Duration flags take a plain number in the unit of the flag's name (old scripts keep working)
//! or a duration with a unit (`1.5s`, `500ms`, `2m`); anything else is a usage error (exit 2).
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use clap::Parser;
use ctp_front_sim::Cli;
use test_support::run;

const BIN: &str = env!("CARGO_BIN_EXE_ctp-front-sim");

fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let base: &[&str] = &["ctp-front-sim"];
    Cli::try_parse_from(base.iter().chain(args))
}

fn parse(args: &[&str]) -> Cli {
    try_parse(args).unwrap()
}

#[test]
fn duration_flags_take_both_spellings() {
    assert_eq!(parse(&["--login-latency-ms", "250"]).login_latency_ms, 250);
    assert_eq!(
        parse(&["--login-latency-ms", "0.25s"]).login_latency_ms,
        250
    );
    assert!(try_parse(&["--login-latency-ms", "-1"]).is_err());
    assert!(try_parse(&["--login-latency-ms", "soon"]).is_err());
    assert_eq!(parse(&["--heartbeat-ms", "1500"]).heartbeat_ms, 1500);
    assert_eq!(parse(&["--heartbeat-ms", "1.5s"]).heartbeat_ms, 1500);
    assert!(try_parse(&["--heartbeat-ms", "-1"]).is_err());
    assert!(try_parse(&["--heartbeat-ms", "soon"]).is_err());
    assert_eq!(
        parse(&["--tick-interval-ms", "2000"]).tick_interval_ms,
        2000
    );
    assert_eq!(parse(&["--tick-interval-ms", "2s"]).tick_interval_ms, 2000);
    assert!(try_parse(&["--tick-interval-ms", "-1"]).is_err());
    assert!(try_parse(&["--tick-interval-ms", "soon"]).is_err());
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    run(BIN, &["--login-latency-ms", "1.5 fortnights"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--login-latency-ms");
}
