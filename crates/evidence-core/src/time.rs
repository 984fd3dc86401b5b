//! Time: wall-clock epoch nanoseconds in records, RFC 3339 UTC in `.env`, monotonic clocks for
//! every measured duration.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Wall-clock now, epoch nanoseconds.
#[must_use]
pub fn now_ns() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Format epoch nanoseconds as RFC 3339 UTC with microseconds: `2026-02-11T12:00:00.123456Z`.
#[must_use]
pub fn format_utc(ns: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.microsecond()
    )
}

/// Format epoch nanoseconds as RFC 3339 UTC in whole seconds: `2026-02-11T12:00:00Z`.
#[must_use]
pub fn format_utc_seconds(ns: i64) -> String {
    let s = format_utc(ns);
    format!("{}Z", &s[..19])
}

/// A parsed UTC timestamp and its resolution (from the number of fractional digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    /// Epoch nanoseconds.
    pub ns: i64,
    /// Resolution in nanoseconds: 1e9 for whole seconds, 1e6 for milliseconds, ...
    pub resolution_ns: i64,
}

/// Parse `YYYY-MM-DDTHH:MM:SS[.fraction]Z` strictly: upper-case `T` and `Z`, UTC only.
#[must_use]
pub fn parse_utc(s: &str) -> Option<UtcTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[10] != b'T' || *b.last()? != b'Z' {
        return None;
    }
    let frac_digits = if b.len() == 20 {
        0
    } else {
        if b[19] != b'.' {
            return None;
        }
        let digits = &b[20..b.len() - 1];
        if digits.is_empty() || digits.len() > 9 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits.len()
    };
    let dt = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let ns = i64::try_from(dt.unix_timestamp_nanos()).ok()?;
    let exp = u32::try_from(9 - frac_digits).ok()?;
    Some(UtcTime {
        ns,
        resolution_ns: 10_i64.pow(exp),
    })
}

/// Resolution of a decimal text such as `0.018` in nanoseconds of its unit (seconds): 1e6 here.
#[must_use]
pub fn decimal_resolution_ns(s: &str) -> i64 {
    let frac = s.split_once('.').map_or(0, |(_, f)| f.len().min(9));
    let exp = u32::try_from(9 - frac).unwrap_or(0);
    10_i64.pow(exp)
}

/// A monotonic stopwatch that also remembers the wall-clock instant it started.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    start: Instant,
    start_wall_ns: i64,
}

impl Stopwatch {
    /// Start now.
    #[must_use]
    pub fn start() -> Self {
        Stopwatch {
            start: Instant::now(),
            start_wall_ns: now_ns(),
        }
    }

    /// Monotonic time since start.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Wall-clock epoch ns of the start.
    #[must_use]
    pub fn start_wall_ns(&self) -> i64 {
        self.start_wall_ns
    }

    /// The wall-clock epoch ns of "start + monotonic elapsed": a timestamp that agrees exactly with
    /// the measured duration even if the wall clock is stepped meanwhile.
    #[must_use]
    pub fn wall_now_ns(&self) -> i64 {
        let e = i64::try_from(self.elapsed().as_nanos()).unwrap_or(i64::MAX);
        self.start_wall_ns.saturating_add(e)
    }

    /// The monotonic instant of the start.
    #[must_use]
    pub fn instant(&self) -> Instant {
        self.start
    }
}

/// Seconds with six decimals, the form durations take in `.env` evidence.
#[must_use]
pub fn format_seconds(d: Duration) -> String {
    format!("{:.6}", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_parse() {
        let ns = 1_770_734_543_207_087_000;
        assert_eq!(format_utc(ns), "2026-02-10T14:42:23.207087Z");
        assert_eq!(format_utc_seconds(ns), "2026-02-10T14:42:23Z");
        let t = parse_utc("2026-02-10T14:42:23.207087Z").unwrap();
        assert_eq!(t.ns, ns);
        assert_eq!(t.resolution_ns, 1_000);
        let t = parse_utc("2026-02-11T12:00:00Z").unwrap();
        assert_eq!(t.resolution_ns, 1_000_000_000);
    }

    #[test]
    fn strict_utc_only() {
        for bad in [
            "2026-02-11 12:00:00Z",
            "2026-02-11T12:00:00+08:00",
            "2026-02-11T12:00:00",
            "2026-02-11t12:00:00z",
            "2026-02-30T12:00:00Z",
            "2026-02-11T12:00:00.Z",
            "",
        ] {
            assert!(parse_utc(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn resolution_of_decimals() {
        assert_eq!(decimal_resolution_ns("0.018"), 1_000_000);
        assert_eq!(decimal_resolution_ns("3"), 1_000_000_000);
        assert_eq!(format_seconds(Duration::from_millis(1500)), "1.500000");
    }
}
