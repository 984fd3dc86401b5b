//! Number and time formatting as the original's Python prints them.

use time::{Date, Duration, OffsetDateTime, Weekday};

/// `yes` or `no`.
#[must_use]
pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Python's `%g`: six significant digits, trailing zeros stripped, exponent form below 1e-4 or
/// from 1e6.
#[must_use]
pub fn g(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let e = format!("{v:.5e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let m = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = usize::try_from(5 - exp).unwrap_or(0);
        strip_zeros(&format!("{v:.decimals$}"))
    }
}

fn strip_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

fn datetime(ns: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns)).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Python's `datetime.isoformat()` of a UTC time: `2026-02-10T14:42:23.207087+00:00`, the
/// microseconds left out when zero (nanoseconds are truncated to microseconds).
#[must_use]
pub fn iso_utc(ns: i64) -> String {
    let dt = datetime(ns);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if dt.microsecond() == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{:06}+00:00", dt.microsecond())
    }
}

/// `HH:MM:SS` UTC, for the timeline's axis.
#[must_use]
pub fn hms_utc(ns: i64) -> String {
    let dt = datetime(ns);
    format!("{:02}:{:02}:{:02}", dt.hour(), dt.minute(), dt.second())
}

/// The China trading day of the moment `ns`, from the trading calendar (session-guard's: the
/// edited `configs/calendar/cn-futures-2026.yaml` when present, else the built-in copy), so
/// holidays count: its own date until the day's last session ends, then the next trading day.
/// Outside the calendar's years: the Beijing (UTC+08:00) date, moved to the next day from 21:00,
/// then past Saturday and Sunday (holidays unknown; `--date` overrides).
#[must_use]
pub fn trading_day(ns: i64) -> Date {
    let cal = trading_calendar::Calendar::load_default(None)
        .or_else(|_| trading_calendar::Calendar::builtin());
    if let Ok(d) = cal
        .map_err(|_| ())
        .and_then(|c| c.trading_day(ns).map_err(|_| ()))
    {
        return d;
    }
    let bj = datetime(ns) + Duration::hours(8);
    let mut d = bj.date();
    if bj.hour() >= 21 {
        d = d.next_day().unwrap_or(d);
    }
    while matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
        d = d.next_day().unwrap_or(d);
    }
    d
}

/// `YYYY-MM-DD`.
#[must_use]
pub fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_g() {
        for (v, s) in [
            (1500.0, "1500"),
            (1.0, "1"),
            (10.0, "10"),
            (2.5, "2.5"),
            (1000.0, "1000"),
            (0.0, "0"),
            (1_234_567.0, "1.23457e+06"),
            (0.000_012_5, "1.25e-05"),
            (0.1234, "0.1234"),
            (123_456.7, "123457"),
        ] {
            assert_eq!(g(v), s, "{v}");
        }
    }

    #[test]
    fn isoformat() {
        assert_eq!(
            iso_utc(1_770_734_543_207_087_000),
            "2026-02-10T14:42:23.207087+00:00"
        );
        assert_eq!(
            iso_utc(1_770_734_543_000_000_999),
            "2026-02-10T14:42:23+00:00"
        );
    }

    #[test]
    fn trading_days() {
        // 2026-02-10 14:42 UTC = 22:42 Beijing, Tuesday: the night session of 2026-02-11.
        assert_eq!(
            iso_date(trading_day(1_770_734_543_207_087_000)),
            "2026-02-11"
        );
        // Friday 2026-02-13 22:00 Beijing (14:00 UTC): the Spring Festival (02-15..02-23) comes
        // first, so the next trading day is 2026-02-24 (not Monday 02-16).
        assert_eq!(
            iso_date(trading_day(1_770_991_200_000_000_000)),
            "2026-02-24"
        );
        // Friday 2026-03-13 22:00 Beijing belongs to Monday 2026-03-16.
        assert_eq!(
            iso_date(trading_day(1_773_410_400_000_000_000)),
            "2026-03-16"
        );
        // Outside the calendar (Friday 2027-03-12 22:00 Beijing): weekends only.
        assert_eq!(
            iso_date(trading_day(1_804_860_000_000_000_000)),
            "2027-03-15"
        );
        // Tuesday 2026-02-10 10:00 Beijing (02:00 UTC) is that day.
        assert_eq!(
            iso_date(trading_day(1_770_688_800_000_000_000)),
            "2026-02-10"
        );
    }
}
