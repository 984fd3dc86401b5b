//! `session-guard`: may drills run now? Exit 0 when no trading session is open or within the
//! margin, 1 inside a session or its margin, 2 on bad input (a bad time, a calendar that does not
//! cover the date). Prints the reason and the next allowed window on stdout, so a cron line reads
//! `session-guard && make wal-drill`.

use std::path::PathBuf;

use clap::Parser;
use evidence_core::cli;
use evidence_core::{EvidenceError, Exit, Result};
use trading_calendar::guard::judge;
use trading_calendar::{Calendar, NightSelect, parse_rfc3339};

const AFTER_HELP: &str = "EXAMPLE:\n  session-guard && make wal-drill            # in cron: drills only outside sessions\n  session-guard --at 2026-03-13T22:00:00+08:00 --margin-minutes 30";

const EXIT_HELP: &str = "EXIT STATUS:
  0    drills may run: no trading session within the margin
  1    a trading session is open or within the margin (the reason and the next window are printed)
  2    bad input: a bad time, a bad calendar file, a time the calendar cannot judge";

/// Refuse drills during China futures trading sessions (Asia/Shanghai, +08:00).
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}\n\n{EXIT_HELP}"))]
pub struct Cli {
    /// The instant to judge, RFC 3339 (default: now), e.g. 2026-03-13T22:00:00+08:00.
    #[arg(long)]
    pub at: Option<String>,
    /// Minutes before a session opens and after it closes during which drills are refused.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(0..=720))]
    pub margin_minutes: u32,
    /// Calendar file (default: calendar/cn-futures-2026.yaml over the config search order:
    /// $CTP_OPS_CONFIG_DIR, ./configs, PREFIX/etc/ctp-ops, /etc/ctp-ops; else the built-in copy).
    #[arg(long)]
    pub calendar: Option<PathBuf>,
    /// Only this night-session group (e.g. until_2300); default: the latest-ending group.
    #[arg(long)]
    pub night_group: Option<String>,
}

/// Judge the instant and print the verdict.
pub fn run(cli: Cli) -> Result<Exit> {
    let cal = Calendar::load_default(cli.calendar.as_deref())?;
    let now = match &cli.at {
        None => evidence_core::time::now_ns(),
        Some(s) => parse_rfc3339(s).ok_or_else(|| {
            EvidenceError::usage(format!(
                "--at: expected an RFC 3339 time such as 2026-03-13T22:00:00+08:00, found {s:?}"
            ))
        })?,
    };
    let sel = cli
        .night_group
        .clone()
        .map_or(NightSelect::Latest, NightSelect::Group);
    let cal_err = |e: trading_calendar::CalendarError| {
        EvidenceError::failed(format!("{e} (calendar {})", cal.label))
    };
    let j = judge(&cal, now, cli.margin_minutes, &sel).map_err(cal_err)?;
    let day = cal.trading_day(now).map_err(cal_err)?;
    let (date, _) = cal.local(now);
    let kind_of_day = if let Some(h) = cal.holiday(date) {
        format!("holiday: {h}")
    } else if cal.is_trading_day(date) {
        "trading day".to_string()
    } else {
        "weekend".to_string()
    };
    let end = j
        .window
        .end_ns
        .map_or_else(|| "open-ended".to_string(), |e| cal.format_local(e));
    let (out, exit) = if j.session.is_some() {
        (
            format!(
                "blocked: {}\nnext allowed window: {} .. {end}\n",
                j.what,
                cal.format_local(j.window.start_ns)
            ),
            Exit::Breach,
        )
    } else {
        (
            format!(
                "allowed: no trading session within {} min of {} ({date}: {kind_of_day}; belongs to trading day {day})\nallowed window: {} .. {end}\n",
                cli.margin_minutes, j.at, j.at
            ),
            Exit::Pass,
        )
    };
    cli::stdout_write(&out)?;
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }
}
