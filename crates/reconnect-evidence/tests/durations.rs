//! Duration flags take a plain number in the unit of the flag's name (old scripts keep working)
//! or a duration with a unit (`1.5s`, `500ms`, `2m`); anything else is a usage error (exit 2).
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use clap::Parser;
use reconnect_evidence::Cli;
use test_support::run;

const BIN: &str = env!("CARGO_BIN_EXE_reconnect-evidence");

fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
    let base: &[&str] = &["reconnect-evidence"];
    Cli::try_parse_from(base.iter().chain(args))
}

fn parse(args: &[&str]) -> Cli {
    try_parse(args).unwrap()
}

#[test]
fn duration_flags_take_both_spellings() {
    assert_eq!(parse(&["--hold-ms", "1500"]).plan.hold_ms, Some(1500));
    assert_eq!(parse(&["--hold-ms", "1.5s"]).plan.hold_ms, Some(1500));
    assert!(try_parse(&["--hold-ms", "-1"]).is_err());
    assert!(try_parse(&["--hold-ms", "soon"]).is_err());
    assert_eq!(parse(&["--delay-ms", "250"]).plan.delay_ms, Some(250));
    assert_eq!(parse(&["--delay-ms", "250ms"]).plan.delay_ms, Some(250));
    assert!(try_parse(&["--delay-ms", "-1"]).is_err());
    assert!(try_parse(&["--delay-ms", "soon"]).is_err());
    assert_eq!(parse(&["--jitter-ms", "30"]).plan.jitter_ms, Some(30));
    assert_eq!(parse(&["--jitter-ms", "30ms"]).plan.jitter_ms, Some(30));
    assert!(try_parse(&["--jitter-ms", "-1"]).is_err());
    assert!(try_parse(&["--jitter-ms", "soon"]).is_err());
    assert_eq!(
        parse(&["--health-interval-ms", "500"])
            .timing
            .health_interval_ms,
        500
    );
    assert_eq!(
        parse(&["--health-interval-ms", "0.5s"])
            .timing
            .health_interval_ms,
        500
    );
    assert!(try_parse(&["--health-interval-ms", "-1"]).is_err());
    assert!(try_parse(&["--health-interval-ms", "soon"]).is_err());
    assert_eq!(
        parse(&["--warmup-seconds", "120"]).timing.warmup_seconds,
        120
    );
    assert_eq!(
        parse(&["--warmup-seconds", "2m"]).timing.warmup_seconds,
        120
    );
    assert!(try_parse(&["--warmup-seconds", "-1"]).is_err());
    assert!(try_parse(&["--warmup-seconds", "soon"]).is_err());
    assert_eq!(
        parse(&["--recovery-timeout-sec", "90"])
            .timing
            .recovery_timeout_sec,
        90
    );
    assert_eq!(
        parse(&["--recovery-timeout-sec", "1.5m"])
            .timing
            .recovery_timeout_sec,
        90
    );
    assert!(try_parse(&["--recovery-timeout-sec", "-1"]).is_err());
    assert!(try_parse(&["--recovery-timeout-sec", "soon"]).is_err());
    assert_eq!(parse(&["--settle-ms", "2000"]).timing.settle_ms, 2000);
    assert_eq!(parse(&["--settle-ms", "2s"]).timing.settle_ms, 2000);
    assert!(try_parse(&["--settle-ms", "-1"]).is_err());
    assert!(try_parse(&["--settle-ms", "soon"]).is_err());
    assert_eq!(
        parse(&["--heartbeat-timeout-ms", "3000"])
            .timing
            .heartbeat_timeout_ms,
        Some(3000)
    );
    assert_eq!(
        parse(&["--heartbeat-timeout-ms", "3s"])
            .timing
            .heartbeat_timeout_ms,
        Some(3000)
    );
    assert!(try_parse(&["--heartbeat-timeout-ms", "-1"]).is_err());
    assert!(try_parse(&["--heartbeat-timeout-ms", "soon"]).is_err());
    assert_eq!(
        parse(&["--sim-heartbeat-ms", "100"])
            .timing
            .sim_heartbeat_ms,
        100
    );
    assert_eq!(
        parse(&["--sim-heartbeat-ms", "0.1s"])
            .timing
            .sim_heartbeat_ms,
        100
    );
    assert!(try_parse(&["--sim-heartbeat-ms", "-1"]).is_err());
    assert!(try_parse(&["--sim-heartbeat-ms", "soon"]).is_err());
    assert_eq!(
        parse(&["--sim-agreement-bound-ms", "200"])
            .timing
            .sim_agreement_bound_ms,
        200
    );
    assert_eq!(
        parse(&["--sim-agreement-bound-ms", "200ms"])
            .timing
            .sim_agreement_bound_ms,
        200
    );
    assert!(try_parse(&["--sim-agreement-bound-ms", "-1"]).is_err());
    assert!(try_parse(&["--sim-agreement-bound-ms", "soon"]).is_err());
    assert_eq!(
        parse(&["--preflight-timeout-ms", "1200"])
            .timing
            .preflight_timeout_ms,
        1200
    );
    assert_eq!(
        parse(&["--preflight-timeout-ms", "1.2s"])
            .timing
            .preflight_timeout_ms,
        1200
    );
    assert!(try_parse(&["--preflight-timeout-ms", "-1"]).is_err());
    assert!(try_parse(&["--preflight-timeout-ms", "soon"]).is_err());
}

#[test]
fn a_bad_duration_is_a_usage_error() {
    run(BIN, &["--hold-ms", "1.5 fortnights"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--hold-ms");
}
