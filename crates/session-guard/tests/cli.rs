//! session-guard on the 2026 calendar: sessions, breaks, nights, weekends, holidays, bad input.
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use test_support::{Run, run};

const BIN: &str = env!("CARGO_BIN_EXE_session-guard");

fn fixture(name: &str) -> String {
    test_support::fixture(env!("CARGO_MANIFEST_DIR"), name)
}

/// Run with the built-in calendar (from a folder without configs/, so the built-in copy is used).
fn guard(args: &[&str]) -> Run {
    let dir = std::env::temp_dir();
    run(BIN, args, None, Some(&dir))
}

fn at(t: &str) -> Run {
    guard(&["--at", t])
}

#[test]
fn day_session_is_blocked() {
    at("2026-03-10T10:00:00+08:00")
        .code(1)
        .stderr_is("")
        .stdout_is("blocked: 2026-03-10T10:00:00+08:00 is inside the day session 2026-03-10 09:00-11:30 +08:00 (trading day 2026-03-10)\nnext allowed window: 2026-03-10T11:45:00+08:00 .. 2026-03-10T12:45:00+08:00\n");
    // The same instant in UTC is judged the same way.
    at("2026-03-10T02:00:00Z").code(1).stderr_is("");
    // Within the margin before the open.
    at("2026-03-10T08:50:00+08:00")
        .code(1)
        .stderr_is("")
        .stdout_has("is within 15 min of the day session 2026-03-10 09:00-11:30");
    guard(&["--at", "2026-03-10T08:50:00+08:00", "--margin-minutes", "5"])
        .code(0)
        .stderr_is("")
        .stdout_has("allowed window: 2026-03-10T08:50:00+08:00 .. 2026-03-10T08:55:00+08:00\n");
}

#[test]
fn lunch_break_is_allowed() {
    at("2026-03-10T12:00:00+08:00")
        .code(0)
        .stderr_is("")
        .stdout_is("allowed: no trading session within 15 min of 2026-03-10T12:00:00+08:00 (2026-03-10: trading day; belongs to trading day 2026-03-10)\nallowed window: 2026-03-10T12:00:00+08:00 .. 2026-03-10T12:45:00+08:00\n");
    // CFFEX trades through the commodities' 10:15-10:30 break.
    at("2026-03-10T10:20:00+08:00")
        .code(1)
        .stderr_is("")
        .stdout_has("inside the day session 2026-03-10 09:00-11:30");
}

#[test]
fn cffex_afternoon_and_bond_close_are_sessions() {
    // CFFEX index futures trade from 13:00 (commodities from 13:30): blocked, from the data.
    at("2026-03-10T13:10:00+08:00")
        .code(1)
        .stderr_is("")
        .stdout_has("inside the day session 2026-03-10 13:00-15:15");
    // CFFEX bond futures until 15:15.
    at("2026-03-10T15:10:00+08:00").code(1).stderr_is("");
    at("2026-03-10T15:31:00+08:00").code(0).stderr_is("");
}

#[test]
fn times_the_calendar_cannot_judge_are_refused() {
    // The night of the calendar's last day depends on next year's holidays.
    guard(&["--at", "2026-12-31T21:30:00+08:00"])
        .code(2)
        .stdout_is("")
        .stderr_has("2027-01-01 is outside it");
    // Just after midnight of its first day depends on the night session of the day before.
    guard(&["--at", "2026-01-01T00:30:00+08:00"])
        .code(2)
        .stdout_is("")
        .stderr_has("2025-12-31 is outside it");
}

#[test]
fn night_session_across_midnight() {
    at("2026-03-11T00:30:00+08:00")
        .code(1)
        .stderr_is("")
        .stdout_is("blocked: 2026-03-11T00:30:00+08:00 is inside the night session 2026-03-10 21:00-02:30 +08:00 (trading day 2026-03-11)\nnext allowed window: 2026-03-11T02:45:00+08:00 .. 2026-03-11T08:45:00+08:00\n");
    // Only the products that stop at 23:00: 00:30 is free.
    guard(&[
        "--at",
        "2026-03-11T00:30:00+08:00",
        "--night-group",
        "until_2300",
    ])
    .code(0)
    .stderr_is("")
    .stdout_has("allowed window: 2026-03-11T00:30:00+08:00 .. 2026-03-11T08:45:00+08:00\n");
}

#[test]
fn friday_night_belongs_to_monday() {
    at("2026-03-13T22:00:00+08:00")
        .code(1)
        .stderr_is("")
        .stdout_is("blocked: 2026-03-13T22:00:00+08:00 is inside the night session 2026-03-13 21:00-02:30 +08:00 (trading day 2026-03-16)\nnext allowed window: 2026-03-14T02:45:00+08:00 .. 2026-03-16T08:45:00+08:00\n");
    // Saturday 01:00 is still Friday's night session.
    at("2026-03-14T01:00:00+08:00")
        .code(1)
        .stderr_is("")
        .stdout_has("inside the night session 2026-03-13 21:00-02:30");
}

#[test]
fn eve_of_a_holiday_has_no_night_session() {
    // 2026-09-30 (Wednesday) is the last trading day before National Day.
    at("2026-09-30T22:00:00+08:00")
        .code(0)
        .stderr_is("")
        .stdout_is("allowed: no trading session within 15 min of 2026-09-30T22:00:00+08:00 (2026-09-30: trading day; belongs to trading day 2026-10-08)\nallowed window: 2026-09-30T22:00:00+08:00 .. 2026-10-08T08:45:00+08:00\n");
    // Its day session still trades.
    at("2026-09-30T14:00:00+08:00").code(1).stderr_is("");
}

#[test]
fn holiday_is_allowed() {
    at("2026-10-01T10:00:00+08:00")
        .code(0)
        .stderr_is("")
        .stdout_has("(2026-10-01: holiday: National Day; belongs to trading day 2026-10-08)");
    at("2026-02-18T10:00:00+08:00")
        .code(0)
        .stderr_is("")
        .stdout_has("holiday: Spring Festival");
}

#[test]
fn weekend_is_allowed() {
    at("2026-03-14T12:00:00+08:00")
        .code(0)
        .stderr_is("")
        .stdout_is("allowed: no trading session within 15 min of 2026-03-14T12:00:00+08:00 (2026-03-14: weekend; belongs to trading day 2026-03-16)\nallowed window: 2026-03-14T12:00:00+08:00 .. 2026-03-16T08:45:00+08:00\n");
}

#[test]
fn calendar_override() {
    let cal = fixture("extra_holiday.yaml");
    guard(&["--at", "2026-03-11T10:00:00+08:00", "--calendar", &cal])
        .code(0)
        .stderr_is("")
        .stdout_has("holiday: Test closure");
    // Without the override the same instant is in a session; the eve (03-10) loses its night.
    at("2026-03-11T10:00:00+08:00").code(1);
    guard(&["--at", "2026-03-10T22:00:00+08:00", "--calendar", &cal])
        .code(0)
        .stderr_is("");
}

#[test]
fn bad_input_is_exit_2() {
    at("tomorrow")
        .code(2)
        .stdout_is("")
        .stderr_is("session-guard: error: --at: expected an RFC 3339 time such as 2026-03-13T22:00:00+08:00, found \"tomorrow\"\n");
    at("2027-01-05T10:00:00+08:00")
        .code(2)
        .stdout_is("")
        .stderr_has("the calendar covers 2026-01-01 to 2026-12-31; 2027-01-05 is outside it");
    guard(&[
        "--at",
        "2026-03-10T10:00:00+08:00",
        "--calendar",
        &fixture("bad_session.yaml"),
    ])
    .code(2)
    .stdout_is("")
    .stderr_has("bad_session.yaml:28: day_sessions.end: expected a time after the start");
    guard(&["--calendar", "/nonexistent/cal.yaml"])
        .code(2)
        .stdout_is("")
        .stderr_has("cannot read /nonexistent/cal.yaml");
    guard(&["--at", "2026-03-10T10:00:00+08:00", "--night-group", "nope"])
        .code(2)
        .stdout_is("")
        .stderr_has("unknown night-session group \"nope\"");
    guard(&["--margin-minutes", "-3"]).code(2).stdout_is("");
    guard(&["--help"])
        .code(0)
        .stdout_has("session-guard && make wal-drill")
        .stderr_is("");
}
