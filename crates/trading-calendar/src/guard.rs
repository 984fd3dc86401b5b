//! The session guard of every drill that can touch a non-loopback target: one implementation.
//!
//! Flatten [`GuardArgs`] into the drill's `Cli`, turn it into a [`SessionGuard`] once
//! (`SessionGuard::try_from(&cli.guard)?`, which loads the calendar), and call
//! [`SessionGuard::check`] with the drill's targets before its first side effect:
//!
//! ```ignore
//! let guard = SessionGuard::try_from(&cli.guard)?;
//! let outcome = guard.check(guard.now(), &["127.0.0.1:8080", "10.0.0.5:41205"])?;
//! evidence.push("session_guard", outcome.status.as_str());
//! ```
//!
//! Rules:
//! - every target loopback (`localhost`, `127.0.0.0/8`, `::1`, in a URL or `host:port` too):
//!   `not_applicable`, the calendar is not even read for a verdict;
//! - otherwise the instant is judged against the calendar (the union of every product group's
//!   day sessions, the latest night group) with `--session-margin-minutes` either side: outside,
//!   `outside_session`; inside, a refusal ([`GuardError::InSession`], exit 2, with the session and
//!   the next allowed window) unless `--allow-in-session`, then `forced`;
//! - a time the calendar cannot judge ([`crate::CalendarError::NotCovered`]) is a refusal too
//!   (exit 2), unless `--allow-in-session` (`forced`);
//! - a target that is not recognisably loopback counts as non-loopback (`systemd:unit`, a pod).

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Args;
use evidence_core::EvidenceError;

use crate::{Calendar, CalendarError, NightSelect, Session, Window, parse_rfc3339};

const NS_PER_MIN: i64 = 60 * 1_000_000_000;

/// The session-guard flags of a drill.
#[derive(Debug, Clone, Args)]
pub struct GuardArgs {
    /// Run even inside a trading session (or its margin) or at a time the calendar does not
    /// cover, against non-loopback targets; recorded in the evidence as session_guard=forced.
    #[arg(long)]
    pub allow_in_session: bool,
    /// Trading calendar [default: configs/calendar/cn-futures-2026.yaml, else the built-in copy].
    #[arg(long, value_name = "FILE")]
    pub calendar: Option<PathBuf>,
    /// Minutes around a session during which a drill against non-loopback targets is refused.
    #[arg(
        long,
        value_name = "MINUTES",
        default_value_t = 15,
        value_parser = clap::value_parser!(u32).range(0..=720)
    )]
    pub session_margin_minutes: u32,
    /// Judge the session at this RFC 3339 instant instead of now (for checks and tests).
    #[arg(long, value_name = "TIME", hide = true)]
    pub session_at: Option<String>,
}

impl Default for GuardArgs {
    fn default() -> Self {
        GuardArgs {
            allow_in_session: false,
            calendar: None,
            session_margin_minutes: 15,
            session_at: None,
        }
    }
}

/// The guard, ready to judge.
#[derive(Debug, Clone)]
pub struct SessionGuard {
    /// The calendar.
    pub calendar: Calendar,
    /// Margin either side of a session, minutes.
    pub margin_minutes: u32,
    /// `--allow-in-session`.
    pub allow_in_session: bool,
    /// `--session-at`, epoch ns.
    pub at_ns: Option<i64>,
}

/// Why the guard refused (exit 2), or could not start.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// Inside a session or its margin, and not forced.
    #[error(
        "refusing to drill against {targets} inside a trading session: {what}{next} (pass --allow-in-session to force)"
    )]
    InSession {
        /// The non-loopback targets.
        targets: String,
        /// The session.
        what: String,
        /// `; next allowed window from ...` or nothing.
        next: String,
    },
    /// The calendar does not cover the time.
    #[error(
        "session guard: cannot judge {at} (calendar {label}; pass --allow-in-session to force)"
    )]
    NotCovered {
        /// The instant, local time.
        at: String,
        /// The calendar's label.
        label: String,
        /// Why.
        #[source]
        source: CalendarError,
    },
    /// `--session-at` is not RFC 3339.
    #[error(
        "--session-at: expected an RFC 3339 time such as 2026-03-13T22:00:00+08:00, found {0:?}"
    )]
    BadTime(String),
    /// The calendar could not be loaded.
    #[error(transparent)]
    Calendar(#[from] EvidenceError),
}

impl From<GuardError> for EvidenceError {
    fn from(e: GuardError) -> EvidenceError {
        match e {
            GuardError::Calendar(e) => e,
            GuardError::BadTime(_) => EvidenceError::usage(e.to_string()),
            GuardError::NotCovered { ref source, .. } => {
                EvidenceError::failed(format!("{e}: {source}"))
            }
            GuardError::InSession { .. } => EvidenceError::failed(e.to_string()),
        }
    }
}

/// What the guard decided (when it let the drill run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardStatus {
    /// Every target is loopback: no session matters.
    NotApplicable,
    /// No session within the margin.
    OutsideSession,
    /// Inside a session (or not judgeable) and `--allow-in-session` was given.
    Forced,
}

impl GuardStatus {
    /// The evidence value: `not_applicable`, `outside_session`, `forced`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            GuardStatus::NotApplicable => "not_applicable",
            GuardStatus::OutsideSession => "outside_session",
            GuardStatus::Forced => "forced",
        }
    }
}

/// The guard's verdict and a one-line reason for stderr and evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardOutcome {
    /// The decision.
    pub status: GuardStatus,
    /// `session guard: ...`, one line.
    pub reason: String,
}

impl TryFrom<&GuardArgs> for SessionGuard {
    type Error = GuardError;
    fn try_from(a: &GuardArgs) -> Result<Self, GuardError> {
        let at_ns = match &a.session_at {
            None => None,
            Some(t) => Some(parse_rfc3339(t).ok_or_else(|| GuardError::BadTime(t.clone()))?),
        };
        Ok(SessionGuard {
            calendar: Calendar::load_default(a.calendar.as_deref())?,
            margin_minutes: a.session_margin_minutes,
            allow_in_session: a.allow_in_session,
            at_ns,
        })
    }
}

/// True for `localhost`, `127.0.0.0/8` and `::1`, bare, as `host:port`, `[v6]:port` or in a URL
/// (`http://127.0.0.1:8080/health`). Anything else, unparsable text included, is not loopback.
#[must_use]
pub fn is_loopback_target(target: &str) -> bool {
    let t = target.trim();
    let t = t.split_once("://").map_or(t, |(_, rest)| rest);
    let t = t.split(['/', '?', '#']).next().unwrap_or(t);
    let t = t.rsplit_once('@').map_or(t, |(_, h)| h);
    let host = if let Some(rest) = t.strip_prefix('[') {
        rest.split_once(']').map_or(rest, |(h, _)| h)
    } else if t.matches(':').count() == 1 {
        t.split_once(':').map_or(t, |(h, _)| h)
    } else {
        t
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The judgement of one instant: the session within the margin, if any, and the next window
/// without one. The one judgement behind `session-guard` and every drill's guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// The instant, RFC 3339 in +08:00.
    pub at: String,
    /// The session whose `[start - margin, end + margin)` holds the instant.
    pub session: Option<Session>,
    /// `<at> is inside the day session 2026-03-10 09:00-11:30 +08:00 (trading day 2026-03-10)`,
    /// or `... is within 15 min of the ...`; empty without a session.
    pub what: String,
    /// The first window at or after the instant with no session within the margin.
    pub window: Window,
}

/// Judge `now_ns` with `margin_minutes` either side of every session (`sel`: night groups).
///
/// # Errors
/// [`CalendarError::NotCovered`] when the answer depends on dates the calendar does not cover.
pub fn judge(
    cal: &Calendar,
    now_ns: i64,
    margin_minutes: u32,
    sel: &NightSelect,
) -> Result<Judgement, CalendarError> {
    let margin = i64::from(margin_minutes) * NS_PER_MIN;
    let session = cal.session_near(now_ns, margin, sel)?;
    let window = cal.next_free_window(now_ns, margin, sel)?;
    let at = cal.format_local(now_ns);
    let what = session.as_ref().map_or_else(String::new, |s| {
        let how = if s.start_ns <= now_ns && now_ns < s.end_ns {
            "inside".to_string()
        } else {
            format!("within {margin_minutes} min of")
        };
        format!("{at} is {how} the {}", cal.describe(s))
    });
    Ok(Judgement {
        at,
        session,
        what,
        window,
    })
}

impl SessionGuard {
    /// The instant to judge: `--session-at`, else now.
    #[must_use]
    pub fn now(&self) -> i64 {
        self.at_ns.unwrap_or_else(evidence_core::time::now_ns)
    }

    /// Judge `now_ns` for a drill touching `targets`.
    ///
    /// # Errors
    /// [`GuardError::InSession`] inside a session or its margin with a non-loopback target;
    /// [`GuardError::NotCovered`] when the calendar cannot judge the time; both exit 2, unless
    /// `--allow-in-session` (then `Ok` with [`GuardStatus::Forced`]).
    pub fn check<S: AsRef<str>>(
        &self,
        now_ns: i64,
        targets: &[S],
    ) -> Result<GuardOutcome, GuardError> {
        let remote: Vec<&str> = targets
            .iter()
            .map(AsRef::as_ref)
            .filter(|t| !is_loopback_target(t))
            .collect();
        if remote.is_empty() {
            return Ok(GuardOutcome {
                status: GuardStatus::NotApplicable,
                reason: "session guard: not applicable (every target is loopback)".to_string(),
            });
        }
        let cal = &self.calendar;
        let j = match judge(cal, now_ns, self.margin_minutes, &NightSelect::Latest) {
            Ok(j) => j,
            Err(source) if self.allow_in_session => {
                return Ok(GuardOutcome {
                    status: GuardStatus::Forced,
                    reason: format!(
                        "session guard: cannot judge {}: {source}; running because of --allow-in-session",
                        cal.format_local(now_ns)
                    ),
                });
            }
            Err(source) => {
                return Err(GuardError::NotCovered {
                    at: cal.format_local(now_ns),
                    label: cal.label.clone(),
                    source,
                });
            }
        };
        if j.session.is_none() {
            return Ok(GuardOutcome {
                status: GuardStatus::OutsideSession,
                reason: format!(
                    "session guard: no trading session within {} min of {}",
                    self.margin_minutes, j.at
                ),
            });
        }
        if self.allow_in_session {
            return Ok(GuardOutcome {
                status: GuardStatus::Forced,
                reason: format!(
                    "session guard: {}; running because of --allow-in-session",
                    j.what
                ),
            });
        }
        Err(GuardError::InSession {
            targets: remote.join(", "),
            what: j.what,
            next: format!(
                "; next allowed window from {}",
                cal.format_local(j.window.start_ns)
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(allow: bool) -> SessionGuard {
        SessionGuard::try_from(&GuardArgs {
            allow_in_session: allow,
            ..GuardArgs::default()
        })
        .unwrap()
    }

    fn t(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    #[test]
    fn loopback_targets() {
        for l in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "localhost:1",
            "http://127.0.0.1:8080/health",
            "[::1]:41205",
            "::1",
            "tcp://localhost",
        ] {
            assert!(is_loopback_target(l), "{l}");
        }
        for r in [
            "182.254.243.31:30001",
            "http://10.0.0.5/x",
            "systemd:demo.service",
            "",
            "example.com",
            "[2001:db8::1]:1",
        ] {
            assert!(!is_loopback_target(r), "{r}");
        }
    }

    #[test]
    fn refuses_inside_sessions_for_remote_targets() {
        let g = guard(false);
        // CFFEX index futures: 13:00 afternoon open, from the calendar data.
        let now = t("2026-03-10T13:05:00+08:00");
        let e = g.check(now, &["10.0.0.5:8080"]).unwrap_err();
        assert!(e.to_string().contains("13:00-15:15"), "{e}");
        assert!(e.to_string().contains("10.0.0.5:8080"), "{e}");
        assert_eq!(
            g.check(now, &["127.0.0.1:8080"]).unwrap().status,
            GuardStatus::NotApplicable
        );
        assert_eq!(
            guard(true).check(now, &["10.0.0.5"]).unwrap().status,
            GuardStatus::Forced
        );
        let free = t("2026-03-14T10:00:00+08:00"); // Saturday
        assert_eq!(
            g.check(free, &["10.0.0.5"]).unwrap().status,
            GuardStatus::OutsideSession
        );
        let uncovered = t("2027-03-10T03:00:00+08:00");
        assert!(matches!(
            g.check(uncovered, &["10.0.0.5"]),
            Err(GuardError::NotCovered { .. })
        ));
    }
}
