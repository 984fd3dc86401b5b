//! China futures trading calendar: day sessions, night sessions per product group, exchange
//! holidays, trading days. All times are Asia/Shanghai, a fixed +08:00 with no DST.
//!
//! The data is a versioned YAML file (`configs/calendar/cn-futures-2026.yaml`, format in
//! docs/formats.md); the rules are here:
//! - a trading day is a Monday–Friday date not listed as a holiday (weekend make-up working days
//!   do not trade);
//! - trading day D has a night session (from `night_sessions.start` on D to the group's end, past
//!   midnight when the end is earlier than the start) only when the next trading day is the next
//!   weekday: no night session on the last trading day before a holiday, and Friday's night
//!   session (when Monday trades) belongs to Monday's trading day;
//! - the trading day of an instant is D when D trades and the instant is before D's last day
//!   session ends, else the next trading day (so Friday 21:00 belongs to Monday).
//!
//! Outside `valid_from..=valid_to` the holiday list is unknown: instants there are refused
//! ([`CalendarError::NotCovered`]); look-ahead past `valid_to` (to find the next window) assumes
//! every weekday trades, which can only make a window shorter, never let a drill into a session.

pub mod guard;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use evidence_core::{EvidenceError, Result};
use serde::Deserialize;
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};

/// The calendar file shipped with the tools (used when no file is given).
pub const BUILTIN: &str = include_str!("../../../configs/calendar/cn-futures-2026.yaml");
/// Its path in the repository, for messages.
pub const BUILTIN_PATH: &str = "configs/calendar/cn-futures-2026.yaml";
/// Its path under a config folder (see `evidence_core::paths`).
pub const CONFIG_RELATIVE: &str = "calendar/cn-futures-2026.yaml";

const NS: i64 = 1_000_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRange {
    start: String,
    end: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    name: String,
    end: String,
    #[serde(default)]
    products: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDayGroup {
    name: String,
    sessions: Vec<FileRange>,
    #[serde(default)]
    products: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileNight {
    start: String,
    groups: Vec<FileGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHoliday {
    from: String,
    to: Option<String>,
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCalendar {
    calendar: String,
    version: yaml_serde::Value,
    source: String,
    utc_offset: String,
    valid_from: String,
    valid_to: String,
    day_sessions: Vec<FileRange>,
    #[serde(default)]
    day_groups: Vec<FileDayGroup>,
    night_sessions: FileNight,
    holidays: Vec<FileHoliday>,
}

/// A night-session product group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NightGroup {
    /// Group name (`until_0230`, ...).
    pub name: String,
    /// End, minutes after local midnight (before `night_start` means the next morning).
    pub end_min: u32,
    /// Products (`SHFE.ag`, ...), indicative.
    pub products: Vec<String>,
}

/// A product group whose day sessions differ from `day_sessions` (CFFEX's index and bond futures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayGroup {
    /// Group name (`cffex_index`, ...).
    pub name: String,
    /// Its day sessions, (start, end) minutes after local midnight, in order.
    pub sessions: Vec<(u32, u32)>,
    /// Products (`CFFEX.IF`, ...).
    pub products: Vec<String>,
}

/// Which night sessions to consider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NightSelect {
    /// The latest end of every group (the conservative choice for drills).
    #[default]
    Latest,
    /// One named group.
    Group(String),
}

/// The loaded calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// Calendar name.
    pub name: String,
    /// Version text.
    pub version: String,
    /// Where the dates come from.
    pub source: String,
    /// Where it was loaded from (a path or the built-in label).
    pub label: String,
    /// The offset (+08:00).
    pub offset: UtcOffset,
    /// First covered date.
    pub valid_from: Date,
    /// Last covered date.
    pub valid_to: Date,
    /// Day sessions of the products not in a day group, (start, end) minutes after local midnight.
    pub day: Vec<(u32, u32)>,
    /// Product groups with their own day sessions (from `day_groups`).
    pub day_groups: Vec<DayGroup>,
    /// The union of every day session of every group, merged and in order: when any product
    /// trades. What the session queries use (a drill is never let into any product's session).
    pub day_union: Vec<(u32, u32)>,
    /// Night start, minutes after local midnight.
    pub night_start: u32,
    /// Night groups.
    pub groups: Vec<NightGroup>,
    /// Holidays (every listed date) and their names.
    pub holidays: BTreeMap<Date, String>,
}

/// Day or night.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A day session.
    Day,
    /// A night session (belongs to the next trading day).
    Night,
}

impl fmt::Display for SessionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SessionKind::Day => "day",
            SessionKind::Night => "night",
        })
    }
}

/// One concrete session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Day or night.
    pub kind: SessionKind,
    /// Start, epoch ns.
    pub start_ns: i64,
    /// End (exclusive), epoch ns.
    pub end_ns: i64,
    /// The trading day it belongs to.
    pub trading_day: Date,
}

/// A window without any session (and its margin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start, epoch ns.
    pub start_ns: i64,
    /// End (exclusive), epoch ns; `None` when no session follows within the look-ahead.
    pub end_ns: Option<i64>,
}

/// Errors specific to calendar queries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// The instant's date is outside the calendar's covered range.
    #[error("the calendar covers {from} to {to}; {date} is outside it (add that year's holidays)")]
    NotCovered {
        /// The local date asked about.
        date: Date,
        /// Covered from.
        from: Date,
        /// Covered to.
        to: Date,
    },
    /// No such night group.
    #[error("unknown night-session group {0:?}")]
    UnknownGroup(String),
}

impl Calendar {
    /// The built-in calendar (`configs/calendar/cn-futures-2026.yaml` at build time).
    pub fn builtin() -> Result<Calendar> {
        Calendar::parse(BUILTIN, &format!("{BUILTIN_PATH} (built in)"))
    }

    /// The calendar to use: `explicit` when given; else the first
    /// `calendar/cn-futures-2026.yaml` found over the config search order of
    /// `evidence_core::paths` (`$CTP_OPS_CONFIG_DIR`, `./configs`, `<prefix>/etc/ctp-ops`,
    /// `/etc/ctp-ops`; an edited copy wins over the built-in one); else the built-in copy, whose
    /// label then names the places searched.
    pub fn load_default(explicit: Option<&Path>) -> Result<Calendar> {
        match explicit {
            Some(p) => Calendar::load(p),
            None => match evidence_core::paths::find_config(CONFIG_RELATIVE) {
                Some(p) => Calendar::load(&p),
                None => Calendar::parse(
                    BUILTIN,
                    &format!(
                        "{BUILTIN_PATH} (built in; none found at {})",
                        evidence_core::paths::searched(CONFIG_RELATIVE)
                    ),
                ),
            },
        }
    }

    /// Load a calendar file.
    pub fn load(path: &Path) -> Result<Calendar> {
        let text =
            std::fs::read_to_string(path).map_err(|e| EvidenceError::io("cannot read", path, e))?;
        Calendar::parse(&text, &path.display().to_string())
    }

    /// Parse calendar YAML; `label` names the source in errors.
    pub fn parse(text: &str, label: &str) -> Result<Calendar> {
        let f: FileCalendar = yaml_serde::from_str(text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            let msg = e.to_string();
            let msg = msg.find(" at line ").map_or(msg.as_str(), |i| &msg[..i]);
            EvidenceError::parse(label, line, "calendar", "a calendar document", msg)
        })?;
        let bad = |field: &str, expected: &str, found: &str| {
            EvidenceError::parse(label, line_of(text, found), field, expected, found)
        };
        let offset = parse_offset(&f.utc_offset)
            .ok_or_else(|| bad("utc_offset", "+HH:MM", &f.utc_offset))?;
        let date =
            |field: &str, s: &str| parse_date(s).ok_or_else(|| bad(field, "a date YYYY-MM-DD", s));
        let valid_from = date("valid_from", &f.valid_from)?;
        let valid_to = date("valid_to", &f.valid_to)?;
        if valid_to < valid_from {
            return Err(bad(
                "valid_to",
                "a date on or after valid_from",
                &f.valid_to,
            ));
        }
        let hhmm = |field: &str, s: &str| parse_hhmm(s).ok_or_else(|| bad(field, "HH:MM", s));
        let day = parse_ranges(&f.day_sessions, "day_sessions", &hhmm, &bad)?;
        if day.is_empty() {
            return Err(EvidenceError::parse(
                label,
                0,
                "day_sessions",
                "at least one session",
                "none",
            ));
        }
        let day_groups = parse_day_groups(&f.day_groups, &hhmm, &bad)?;
        let day_union = merge_ranges(
            day.iter()
                .chain(day_groups.iter().flat_map(|g| g.sessions.iter()))
                .copied()
                .collect(),
        );
        let night_start = hhmm("night_sessions.start", &f.night_sessions.start)?;
        let mut groups = Vec::new();
        for g in &f.night_sessions.groups {
            let end_min = hhmm("night_sessions.groups.end", &g.end)?;
            if end_min < night_start && end_min >= day_union[0].0 {
                return Err(bad(
                    "night_sessions.groups.end",
                    "an end before the first day session or after the night start",
                    &g.end,
                ));
            }
            groups.push(NightGroup {
                name: g.name.clone(),
                end_min,
                products: g.products.clone(),
            });
        }
        let mut holidays = BTreeMap::new();
        for h in &f.holidays {
            let from = date("holidays.from", &h.from)?;
            let to = match &h.to {
                Some(t) => date("holidays.to", t)?,
                None => from,
            };
            if to < from || (to - from).whole_days() > 31 {
                return Err(bad(
                    "holidays.to",
                    "a date on or after `from`, at most 31 days later",
                    h.to.as_deref().unwrap_or(""),
                ));
            }
            let mut d = from;
            while d <= to {
                holidays.insert(d, h.name.clone());
                d = d.next_day().unwrap_or(d);
                if d == to && d == Date::MAX {
                    break;
                }
            }
        }
        let version = match &f.version {
            yaml_serde::Value::String(s) => s.clone(),
            yaml_serde::Value::Number(n) => n.to_string(),
            _ => return Err(bad("version", "a version string", "")),
        };
        Ok(Calendar {
            name: f.calendar,
            version,
            source: f.source,
            label: label.to_string(),
            offset,
            valid_from,
            valid_to,
            day,
            day_groups,
            day_union,
            night_start,
            groups,
            holidays,
        })
    }

    /// The night end (minutes after midnight) for a selection.
    pub fn night_end(&self, sel: &NightSelect) -> std::result::Result<Option<u32>, CalendarError> {
        // Order ends by how late they are: past-midnight ends are later than same-evening ones.
        let lateness = |m: u32| {
            if m <= self.night_start {
                m + 24 * 60
            } else {
                m
            }
        };
        match sel {
            NightSelect::Latest => Ok(self
                .groups
                .iter()
                .map(|g| g.end_min)
                .max_by_key(|m| lateness(*m))),
            NightSelect::Group(name) => self
                .groups
                .iter()
                .find(|g| &g.name == name)
                .map(|g| Some(g.end_min))
                .ok_or_else(|| CalendarError::UnknownGroup(name.clone())),
        }
    }

    /// The group a product (`SHFE.ag`, or an instrument such as `SHFE.ag2406`) belongs to.
    #[must_use]
    pub fn group_of(&self, product: &str) -> Option<&NightGroup> {
        let p = product.trim_end_matches(|c: char| c.is_ascii_digit());
        self.groups
            .iter()
            .find(|g| g.products.iter().any(|x| x.eq_ignore_ascii_case(p)))
    }

    /// The night sessions to consider for a set of instruments: the latest-ending group among
    /// theirs; [`NightSelect::Latest`] when there are none or one has no known group (so a drill
    /// is never let into a session of an instrument it trades).
    #[must_use]
    pub fn night_select_for(&self, instruments: &[String]) -> NightSelect {
        let lateness = |m: u32| {
            if m <= self.night_start {
                m + 24 * 60
            } else {
                m
            }
        };
        let mut latest: Option<&NightGroup> = None;
        for i in instruments {
            match self.group_of(i) {
                None => return NightSelect::Latest,
                Some(g) => {
                    if latest.is_none_or(|l| lateness(g.end_min) > lateness(l.end_min)) {
                        latest = Some(g);
                    }
                }
            }
        }
        latest.map_or(NightSelect::Latest, |g| NightSelect::Group(g.name.clone()))
    }

    /// The local (+08:00) date and minute of day of an instant.
    #[must_use]
    pub fn local(&self, ns: i64) -> (Date, u32) {
        let dt = OffsetDateTime::from_unix_timestamp(ns.div_euclid(NS))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(self.offset);
        (
            dt.date(),
            u32::from(dt.hour()) * 60 + u32::from(dt.minute()),
        )
    }

    /// Epoch ns of local `date` at `minute` after midnight.
    #[must_use]
    pub fn at(&self, date: Date, minute: u32) -> i64 {
        let t = Time::from_hms(
            u8::try_from(minute / 60).unwrap_or(0),
            u8::try_from(minute % 60).unwrap_or(0),
            0,
        )
        .unwrap_or(Time::MIDNIGHT);
        PrimitiveDateTime::new(date, t)
            .assume_offset(self.offset)
            .unix_timestamp()
            * NS
    }

    /// Whether the instant's date is covered by the holiday data.
    pub fn check_covered(&self, ns: i64) -> std::result::Result<(), CalendarError> {
        let (d, _) = self.local(ns);
        if d < self.valid_from || d > self.valid_to {
            return Err(CalendarError::NotCovered {
                date: d,
                from: self.valid_from,
                to: self.valid_to,
            });
        }
        Ok(())
    }

    /// Whether every date a judgement of the instant (with `margin_ns` either side) depends on is
    /// covered: the dates of `ns - margin` and `ns + margin`; the evening before, when a night
    /// session of it could reach past midnight into the window; and the day after `valid_to`
    /// when the window reaches `valid_to`'s night start (whether that night trades depends on the
    /// next year's holidays). Refuses instead of guessing.
    pub fn check_judgeable(
        &self,
        ns: i64,
        margin_ns: i64,
    ) -> std::result::Result<(), CalendarError> {
        self.check_covered(ns)?;
        let not_covered = |date: Date| CalendarError::NotCovered {
            date,
            from: self.valid_from,
            to: self.valid_to,
        };
        let (d0, m0) = self.local(ns.saturating_sub(margin_ns));
        if d0 < self.valid_from {
            return Err(not_covered(d0));
        }
        let past_midnight = self
            .groups
            .iter()
            .map(|g| g.end_min)
            .filter(|&e| e <= self.night_start)
            .max();
        if let Some(end) = past_midnight
            && m0 < end
            && let Some(prev) = d0.previous_day()
            && prev < self.valid_from
        {
            return Err(not_covered(prev));
        }
        let (d1, m1) = self.local(ns.saturating_add(margin_ns));
        if d1 > self.valid_to {
            return Err(not_covered(d1));
        }
        if d1 == self.valid_to && !self.groups.is_empty() && m1 >= self.night_start {
            return Err(not_covered(d1.next_day().unwrap_or(d1)));
        }
        Ok(())
    }

    /// The day group a product (`CFFEX.IF`, or an instrument such as `CFFEX.IF2606`) belongs to.
    #[must_use]
    pub fn day_group_of(&self, product: &str) -> Option<&DayGroup> {
        let p = product.trim_end_matches(|c: char| c.is_ascii_digit());
        self.day_groups
            .iter()
            .find(|g| g.products.iter().any(|x| x.eq_ignore_ascii_case(p)))
    }

    /// The day sessions of a product: its day group's, else `day_sessions`.
    #[must_use]
    pub fn day_sessions_of(&self, product: &str) -> &[(u32, u32)] {
        self.day_group_of(product)
            .map_or(self.day.as_slice(), |g| g.sessions.as_slice())
    }

    /// True for a Monday–Friday date that is not a holiday.
    #[must_use]
    pub fn is_trading_day(&self, d: Date) -> bool {
        !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
            && !self.holidays.contains_key(&d)
    }

    /// The holiday name of a date, if listed.
    #[must_use]
    pub fn holiday(&self, d: Date) -> Option<&str> {
        self.holidays.get(&d).map(String::as_str)
    }

    /// The first trading day after `d`.
    #[must_use]
    pub fn next_trading_day(&self, d: Date) -> Date {
        let mut x = d;
        for _ in 0..366 {
            x = x.next_day().unwrap_or(x);
            if self.is_trading_day(x) {
                return x;
            }
        }
        x
    }

    /// True when trading day `d` has a night session: the next trading day is the next weekday.
    #[must_use]
    pub fn has_night(&self, d: Date) -> bool {
        if !self.is_trading_day(d) || self.groups.is_empty() {
            return false;
        }
        let next_weekday = match d.weekday() {
            Weekday::Friday => d + Duration::days(3),
            Weekday::Saturday => d + Duration::days(2),
            _ => d + Duration::days(1),
        };
        self.next_trading_day(d) == next_weekday
    }

    /// The sessions that start on local date `d` (day sessions of `d`, and its night session).
    pub fn sessions_starting_on(
        &self,
        d: Date,
        sel: &NightSelect,
    ) -> std::result::Result<Vec<Session>, CalendarError> {
        let mut out = Vec::new();
        if !self.is_trading_day(d) {
            return Ok(out);
        }
        for &(a, b) in &self.day_union {
            out.push(Session {
                kind: SessionKind::Day,
                start_ns: self.at(d, a),
                end_ns: self.at(d, b),
                trading_day: d,
            });
        }
        if self.has_night(d)
            && let Some(end) = self.night_end(sel)?
        {
            let end_ns = if end <= self.night_start {
                self.at(d + Duration::days(1), end)
            } else {
                self.at(d, end)
            };
            out.push(Session {
                kind: SessionKind::Night,
                start_ns: self.at(d, self.night_start),
                end_ns,
                trading_day: self.next_trading_day(d),
            });
        }
        Ok(out)
    }

    /// Every session overlapping `[from_ns, to_ns)`, in order.
    pub fn sessions_between(
        &self,
        from_ns: i64,
        to_ns: i64,
        sel: &NightSelect,
    ) -> std::result::Result<Vec<Session>, CalendarError> {
        let (mut d, _) = self.local(from_ns);
        d = d.previous_day().unwrap_or(d);
        let (last, _) = self.local(to_ns);
        let mut out = Vec::new();
        while d <= last {
            for s in self.sessions_starting_on(d, sel)? {
                if s.end_ns > from_ns && s.start_ns < to_ns {
                    out.push(s);
                }
            }
            d = d.next_day().unwrap_or(Date::MAX);
            if d == Date::MAX {
                break;
            }
        }
        Ok(out)
    }

    /// The session containing the instant, if any.
    pub fn session_at(
        &self,
        ns: i64,
        sel: &NightSelect,
    ) -> std::result::Result<Option<Session>, CalendarError> {
        self.check_judgeable(ns, 0)?;
        Ok(self
            .sessions_between(ns, ns + 1, sel)?
            .into_iter()
            .find(|s| s.start_ns <= ns && ns < s.end_ns))
    }

    /// The session whose `[start - margin, end + margin)` contains the instant, if any.
    pub fn session_near(
        &self,
        ns: i64,
        margin_ns: i64,
        sel: &NightSelect,
    ) -> std::result::Result<Option<Session>, CalendarError> {
        self.check_judgeable(ns, margin_ns)?;
        Ok(self
            .sessions_between(ns - margin_ns, ns + margin_ns + 1, sel)?
            .into_iter()
            .find(|s| s.start_ns - margin_ns <= ns && ns < s.end_ns + margin_ns))
    }

    /// The trading day an instant belongs to: its own date when that date trades and the last day
    /// session has not ended, else the next trading day.
    pub fn trading_day(&self, ns: i64) -> std::result::Result<Date, CalendarError> {
        self.check_covered(ns)?;
        let (d, minute) = self.local(ns);
        let close = self.day_union.last().map_or(15 * 60, |&(_, e)| e);
        if self.is_trading_day(d) && minute < close {
            Ok(d)
        } else {
            Ok(self.next_trading_day(d))
        }
    }

    /// The first window at or after the instant with no session within `margin_ns` of it.
    pub fn next_free_window(
        &self,
        ns: i64,
        margin_ns: i64,
        sel: &NightSelect,
    ) -> std::result::Result<Window, CalendarError> {
        self.check_covered(ns)?;
        // Look ahead far enough to cross the longest holiday.
        let horizon = ns + 40 * 86_400 * NS;
        let blocks: Vec<(i64, i64)> = self
            .sessions_between(ns - margin_ns - 86_400 * NS, horizon, sel)?
            .into_iter()
            .map(|s| (s.start_ns - margin_ns, s.end_ns + margin_ns))
            .collect();
        let mut cur = ns;
        let mut end = None;
        for &(a, b) in &blocks {
            if b <= cur {
                continue;
            }
            if a <= cur {
                cur = b;
            } else {
                end = Some(a);
                break;
            }
        }
        Ok(Window {
            start_ns: cur,
            end_ns: end,
        })
    }

    /// RFC 3339 in the calendar's offset: `2026-02-13T21:00:00+08:00`.
    #[must_use]
    pub fn format_local(&self, ns: i64) -> String {
        let dt = OffsetDateTime::from_unix_timestamp(ns.div_euclid(NS))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(self.offset);
        let (h, m) = (
            self.offset.whole_hours(),
            self.offset.minutes_past_hour().abs(),
        );
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            if h < 0 { '-' } else { '+' },
            h.abs(),
            m
        )
    }

    /// `HH:MM` of a minute-of-day value.
    #[must_use]
    pub fn hhmm(minute: u32) -> String {
        format!("{:02}:{:02}", minute / 60, minute % 60)
    }

    /// A one-line description of a session: `night session 2026-02-13T21:00+08:00..02:30`.
    #[must_use]
    pub fn describe(&self, s: &Session) -> String {
        let (_, a) = self.local(s.start_ns);
        let (_, b) = self.local(s.end_ns);
        let (d, _) = self.local(s.start_ns);
        format!(
            "{} session {d} {}-{} +08:00 (trading day {})",
            s.kind,
            Self::hhmm(a),
            Self::hhmm(b),
            s.trading_day
        )
    }
}

type BadFn<'a> = dyn Fn(&str, &str, &str) -> EvidenceError + 'a;

/// Parse `{start, end}` ranges: each end after its start, in order, not overlapping.
fn parse_ranges(
    ranges: &[FileRange],
    field: &str,
    hhmm: &dyn Fn(&str, &str) -> Result<u32>,
    bad: &BadFn<'_>,
) -> Result<Vec<(u32, u32)>> {
    let (fs, fe) = (format!("{field}.start"), format!("{field}.end"));
    let mut out: Vec<(u32, u32)> = Vec::new();
    for r in ranges {
        let (a, b) = (hhmm(&fs, &r.start)?, hhmm(&fe, &r.end)?);
        if b <= a {
            return Err(bad(&fe, "a time after the start", &r.end));
        }
        if out.last().is_some_and(|&(_, prev_end)| a < prev_end) {
            return Err(bad(&fs, "sessions in order, not overlapping", &r.start));
        }
        out.push((a, b));
    }
    Ok(out)
}

/// Parse `day_groups`: unique names, at least one session each.
fn parse_day_groups(
    groups: &[FileDayGroup],
    hhmm: &dyn Fn(&str, &str) -> Result<u32>,
    bad: &BadFn<'_>,
) -> Result<Vec<DayGroup>> {
    let mut out: Vec<DayGroup> = Vec::new();
    for g in groups {
        if g.name.is_empty() || out.iter().any(|x| x.name == g.name) {
            return Err(bad("day_groups.name", "a unique, non-empty name", &g.name));
        }
        let sessions = parse_ranges(&g.sessions, "day_groups.sessions", hhmm, bad)?;
        if sessions.is_empty() {
            return Err(bad("day_groups.sessions", "at least one session", &g.name));
        }
        out.push(DayGroup {
            name: g.name.clone(),
            sessions,
            products: g.products.clone(),
        });
    }
    Ok(out)
}

/// Merge overlapping or touching ranges into an ordered union.
fn merge_ranges(mut v: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    v.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for (a, b) in v {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// Parse an RFC 3339 instant with any offset (`2026-02-13T21:30:00+08:00`, `...Z`) to epoch ns.
#[must_use]
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let dt =
        OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos()).ok()
}

fn parse_offset(s: &str) -> Option<UtcOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let m = parse_hhmm(rest)?;
    if m >= 24 * 60 {
        return None;
    }
    let secs = sign * i32::try_from(m).ok()? * 60;
    UtcOffset::from_whole_seconds(secs).ok()
}

fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// Parse `YYYY-MM-DD`.
#[must_use]
pub fn parse_date(s: &str) -> Option<Date> {
    let s = s.trim();
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

fn line_of(text: &str, needle: &str) -> usize {
    if needle.is_empty() {
        return 0;
    }
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(0, |i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::builtin().unwrap()
    }
    fn t(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn builtin_parses() {
        let c = cal();
        assert_eq!(c.day.len(), 3);
        assert_eq!(c.night_end(&NightSelect::Latest).unwrap(), Some(150));
        assert!(c.holiday(parse_date("2026-10-01").unwrap()).is_some());
        assert_eq!(c.group_of("SHFE.ag2406").unwrap().name, "until_0230");
    }

    #[test]
    fn day_and_lunch() {
        let c = cal();
        let s = c
            .session_at(t("2026-03-10T10:00:00+08:00"), &NightSelect::Latest)
            .unwrap();
        assert_eq!(s.unwrap().kind, SessionKind::Day);
        assert!(
            c.session_at(t("2026-03-10T12:00:00+08:00"), &NightSelect::Latest)
                .unwrap()
                .is_none()
        );
        // 10:15-10:30 break is within a 15-minute margin of a session.
        assert!(
            c.session_near(
                t("2026-03-10T10:20:00+08:00"),
                15 * 60 * NS,
                &NightSelect::Latest
            )
            .unwrap()
            .is_some()
        );
    }

    #[test]
    fn friday_night_belongs_to_monday() {
        let c = cal();
        let at = t("2026-03-13T22:00:00+08:00"); // Friday
        let s = c.session_at(at, &NightSelect::Latest).unwrap().unwrap();
        assert_eq!(s.kind, SessionKind::Night);
        assert_eq!(s.trading_day, parse_date("2026-03-16").unwrap());
        assert_eq!(
            c.trading_day(at).unwrap(),
            parse_date("2026-03-16").unwrap()
        );
        // Saturday 01:30 still in Friday's night session (until 02:30).
        assert!(
            c.session_at(t("2026-03-14T01:30:00+08:00"), &NightSelect::Latest)
                .unwrap()
                .is_some()
        );
        let g = NightSelect::Group("until_2300".into());
        assert!(
            c.session_at(t("2026-03-14T01:30:00+08:00"), &g)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn eve_of_holiday_has_no_night() {
        let c = cal();
        // 2026-09-30 (Wed) is the last trading day before National Day.
        assert!(!c.has_night(parse_date("2026-09-30").unwrap()));
        assert!(
            c.session_at(t("2026-09-30T22:00:00+08:00"), &NightSelect::Latest)
                .unwrap()
                .is_none()
        );
        // Next window from the eve's afternoon close lasts until the first session after it.
        let w = c
            .next_free_window(
                t("2026-09-30T16:00:00+08:00"),
                15 * 60 * NS,
                &NightSelect::Latest,
            )
            .unwrap();
        assert_eq!(w.start_ns, t("2026-09-30T16:00:00+08:00"));
        assert_eq!(w.end_ns, Some(t("2026-10-08T08:45:00+08:00")));
    }

    #[test]
    fn next_window_after_night() {
        let c = cal();
        let w = c
            .next_free_window(
                t("2026-03-10T22:00:00+08:00"),
                15 * 60 * NS,
                &NightSelect::Latest,
            )
            .unwrap();
        assert_eq!(w.start_ns, t("2026-03-11T02:45:00+08:00"));
        assert_eq!(w.end_ns, Some(t("2026-03-11T08:45:00+08:00")));
    }

    #[test]
    fn night_select_for_instruments() {
        let c = cal();
        let v = |xs: &[&str]| xs.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
        let g = |n: &str| NightSelect::Group(n.to_string());
        // The latest end wins, whatever the order.
        assert_eq!(
            c.night_select_for(&v(&["SHFE.rb2405", "SHFE.ag2406"])),
            g("until_0230")
        );
        assert_eq!(
            c.night_select_for(&v(&["SHFE.rb2405", "SHFE.cu2405"])),
            g("until_0100")
        );
        assert_eq!(c.night_select_for(&v(&["DCE.m2409"])), g("until_2300"));
        // Unknown product or no instrument: every group.
        assert_eq!(
            c.night_select_for(&v(&["SHFE.rb2405", "CFFEX.IF2406"])),
            NightSelect::Latest
        );
        assert_eq!(c.night_select_for(&[]), NightSelect::Latest);
    }

    #[test]
    fn not_covered() {
        assert!(cal().trading_day(t("2027-03-10T10:00:00+08:00")).is_err());
    }
}
