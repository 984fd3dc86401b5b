//! One spelling of a duration for every flag, and range-checked numbers: clap value parsers that
//! never panic.
//!
//! A duration flag takes `500ms`, `30s`, `2m`, `1h` (decimals allowed: `1.5s`), or a plain number
//! meaning the unit in the flag's name (`--hold-ms 500`, `--timeout-secs 30`). Every parser has a
//! range (inclusive), checked before the value reaches the tool, so `1e-300`, `NaN`, `inf`, a
//! negative number or `18446744073709551615` seconds are usage errors (exit 2), never a panic.
//!
//! ```ignore
//! #[arg(long, value_parser = DurationParser::secs().max(Duration::from_secs(3600)))]
//! step_timeout_secs: Duration,
//! #[arg(long, value_parser = F64Parser::new(0.001, 1e6))]
//! rate: f64,
//! ```

use std::ffi::OsStr;
use std::time::Duration;

use clap::builder::TypedValueParser;

/// The unit a plain number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds (`--x-ms`).
    Millis,
    /// Seconds (`--x-secs`, `--x-seconds`).
    Secs,
    /// Minutes (`--x-minutes`).
    Minutes,
}

impl Unit {
    fn nanos(self) -> f64 {
        match self {
            Unit::Millis => 1e6,
            Unit::Secs => 1e9,
            Unit::Minutes => 60e9,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Millis => "ms",
            Unit::Secs => "s",
            Unit::Minutes => "m",
        }
    }
}

/// Parse `text` as a duration: `<number><suffix>` with suffix `ms`, `s`, `m` or `h`, or a plain
/// number in `plain`. Rejects negative, non-finite and out-of-range values (above ~292 years).
///
/// # Errors
/// A message naming what was expected.
pub fn parse_duration(text: &str, plain: Unit) -> Result<Duration, String> {
    let ns = parse_ns(text, plain)?;
    // i64::MAX ns is ~292 years: anything above cannot be a drill's duration.
    if ns > 9.2e18 {
        return Err(format!(
            "expected a duration of at most 292 years, found {text:?}"
        ));
    }
    // Truncation to whole ns is intended; the value is finite, non-negative and below 2^63.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(Duration::from_nanos(ns as u64))
}

/// The syntax: a finite, non-negative number of nanoseconds (as `f64`, not range-checked).
fn parse_ns(text: &str, plain: Unit) -> Result<f64, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e6)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e9)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60e9)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600e9)
    } else {
        (t, plain.nanos())
    };
    let expected = || {
        format!(
            "expected a duration such as 500ms, 30s, 2m or a plain number of {}, found {text:?}",
            plain.name()
        )
    };
    let num = num.trim();
    if num.is_empty()
        || !num
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E' || c == '+')
    {
        return Err(expected());
    }
    let v: f64 = num.parse().map_err(|_| expected())?;
    let ns = v * scale;
    if !ns.is_finite() || ns < 0.0 {
        return Err(expected());
    }
    Ok(ns)
}

/// A clap value parser for durations with an inclusive range.
#[derive(Debug, Clone, Copy)]
pub struct DurationParser {
    unit: Unit,
    min: Duration,
    max: Duration,
}

impl DurationParser {
    /// Plain numbers are milliseconds; range 0 ..= 1 day.
    #[must_use]
    pub fn millis() -> Self {
        DurationParser::new(Unit::Millis)
    }

    /// Plain numbers are seconds; range 0 ..= 1 day.
    #[must_use]
    pub fn secs() -> Self {
        DurationParser::new(Unit::Secs)
    }

    /// Plain numbers are minutes; range 0 ..= 1 day.
    #[must_use]
    pub fn minutes() -> Self {
        DurationParser::new(Unit::Minutes)
    }

    /// Plain numbers are `unit`; range 0 ..= 1 day.
    #[must_use]
    pub fn new(unit: Unit) -> Self {
        DurationParser {
            unit,
            min: Duration::ZERO,
            max: Duration::from_secs(86_400),
        }
    }

    /// The smallest accepted value.
    #[must_use]
    pub fn min(mut self, min: Duration) -> Self {
        self.min = min;
        self
    }

    /// The largest accepted value.
    #[must_use]
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// Parse and range-check `text` (the same rules as the clap parser).
    ///
    /// # Errors
    /// A message naming what was expected.
    pub fn check(&self, text: &str) -> Result<Duration, String> {
        let ns = parse_ns(text, self.unit)?;
        #[allow(clippy::cast_precision_loss)]
        let (lo, hi) = (self.min.as_nanos() as f64, self.max.as_nanos() as f64);
        if ns < lo || ns > hi {
            return Err(format!(
                "expected a duration from {} to {}, found {text:?}",
                show(self.min),
                show(self.max)
            ));
        }
        parse_duration(text, self.unit)
    }
}

/// Whole milliseconds of `d` (saturating), for a `--x-ms` flag whose field stays an integer of
/// milliseconds: `value_parser = DurationParser::millis().map(whole_millis)` takes `1500`, `1.5s`.
#[must_use]
pub fn whole_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Whole seconds of `d`, for a `--x-secs` flag whose field stays an integer of seconds:
/// `value_parser = DurationParser::secs().map(whole_secs)` takes `30`, `30s`, `2m`.
#[must_use]
pub fn whole_secs(d: Duration) -> u64 {
    d.as_secs()
}

/// `1.5s`, `500ms`, `2m`: a short rendering for messages.
#[must_use]
pub fn show(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) && ms > 0 {
        format!("{}s", ms / 1000)
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{ms}ms")
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

impl TypedValueParser for DurationParser {
    type Value = Duration;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Duration, clap::Error> {
        let me = *self;
        // clap's closure parser formats "invalid value 'X' for '--flag': <message>".
        let f = move |s: &str| me.check(s);
        f.parse_ref(cmd, arg, value)
    }
}

/// A clap value parser for a finite `f64` in an inclusive range (rejects NaN, infinities and
/// values such as `1e-300` below the minimum).
#[derive(Debug, Clone, Copy)]
pub struct F64Parser {
    min: f64,
    max: f64,
    zero: bool,
}

impl F64Parser {
    /// Accept `min ..= max`.
    #[must_use]
    pub fn new(min: f64, max: f64) -> Self {
        F64Parser {
            min,
            max,
            zero: false,
        }
    }

    /// Also accept exactly 0 (e.g. a rate where 0 means "as fast as possible").
    #[must_use]
    pub fn or_zero(mut self) -> Self {
        self.zero = true;
        self
    }

    /// Parse and range-check `text`.
    ///
    /// # Errors
    /// A message naming the range.
    pub fn check(&self, text: &str) -> Result<f64, String> {
        let v: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("expected a number, found {text:?}"))?;
        if self.zero && v == 0.0 {
            return Ok(0.0);
        }
        if !v.is_finite() || v < self.min || v > self.max {
            return Err(format!(
                "expected {}a number from {} to {}, found {text:?}",
                if self.zero { "0 or " } else { "" },
                self.min,
                self.max
            ));
        }
        Ok(v)
    }
}

impl TypedValueParser for F64Parser {
    type Value = f64;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<f64, clap::Error> {
        let me = *self;
        let f = move |s: &str| me.check(s);
        f.parse_ref(cmd, arg, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(
            parse_duration("500ms", Unit::Secs),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            parse_duration("30s", Unit::Millis),
            Ok(Duration::from_secs(30))
        );
        assert_eq!(
            parse_duration("2m", Unit::Secs),
            Ok(Duration::from_secs(120))
        );
        assert_eq!(
            parse_duration("1h", Unit::Secs),
            Ok(Duration::from_secs(3600))
        );
        assert_eq!(
            parse_duration("1.5s", Unit::Secs),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_duration("250", Unit::Millis),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(parse_duration("3", Unit::Secs), Ok(Duration::from_secs(3)));
        assert_eq!(
            parse_duration("2", Unit::Minutes),
            Ok(Duration::from_secs(120))
        );
    }

    #[test]
    fn nonsense_is_an_error_not_a_panic() {
        for bad in [
            "",
            "s",
            "-1",
            "-1s",
            "NaN",
            "inf",
            "1e400",
            "18446744073709551615",
            "1x",
            "1 2s",
            "0x10",
        ] {
            assert!(parse_duration(bad, Unit::Secs).is_err(), "{bad}");
        }
        let p = DurationParser::secs().max(Duration::from_secs(3600));
        assert!(p.check("18446744073709551615").is_err());
        assert!(p.check("3601").is_err());
        assert!(p.check("3600").is_ok());
        let p = DurationParser::millis().min(Duration::from_millis(1));
        assert!(p.check("0").is_err());
    }

    #[test]
    fn floats_in_range() {
        let p = F64Parser::new(0.001, 1e6);
        assert!(p.check("1e-300").is_err());
        assert!(p.check("NaN").is_err());
        assert!(p.check("inf").is_err());
        assert!(p.check("-1").is_err());
        assert_eq!(p.check("1000"), Ok(1000.0));
        let p = F64Parser::new(0.001, 1e6).or_zero();
        assert_eq!(p.check("0"), Ok(0.0));
        assert!(
            p.check("1e-300")
                .unwrap_err()
                .contains("0 or a number from")
        );
    }

    #[test]
    fn show_is_short() {
        assert_eq!(show(Duration::from_millis(500)), "500ms");
        assert_eq!(show(Duration::from_secs(30)), "30s");
        assert_eq!(show(Duration::from_secs(120)), "2m");
    }
}
