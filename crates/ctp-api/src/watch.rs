//! The probe loop of one front: create, connect, authenticate, log in, watch; on a loss, release
//! and re-create after the backoff. The caller turns the [`WatchEvent`]s into its own records.

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use crate::session::{Event, Session, Target};
use crate::{Knobs, Login, Side, reason_name};

/// How often the loop looks at `stop` while waiting for a callback.
const POLL: Duration = Duration::from_millis(20);

/// A front logged in.
#[derive(Debug, Clone, PartialEq)]
pub struct Up {
    /// Attempt number within the current outage (1 = first try).
    pub attempt: u64,
    /// Object created → OnFrontConnected, ms.
    pub connect_ms: f64,
    /// OnFrontConnected → OnRspAuthenticate, ms (None: no terminal authentication, or market).
    pub auth_ms: Option<f64>,
    /// ReqUserLogin → OnRspUserLogin, ms.
    pub login_ms: f64,
    /// Object created → OnRspUserLogin, ms.
    pub total_ms: f64,
    pub trading_day: String,
    pub front_id: i32,
    pub session_id: i32,
}

/// A front was lost, or an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Down {
    /// Stable reason: `net_read_failed` (0x1001) ... `bad_packet` (0x2003) for
    /// OnFrontDisconnected, `connect_timeout`, `auth_timeout`, `login_timeout`, `auth_failed`,
    /// `login_refused`, `request_failed`.
    pub reason: &'static str,
    /// OnFrontDisconnected's reason code, when that is what happened.
    pub code: Option<i32>,
    /// Human detail (the code in hex and its meaning, or the front's ErrorID and message).
    pub detail: String,
    /// `Some(n)`: attempt `n` failed before login; `None`: a logged-in session ended.
    pub attempt: Option<u64>,
}

/// What [`watch`] reports.
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent {
    /// Attempt `n` starts now, after waiting `backoff_ms`.
    Attempt {
        n: u64,
        backoff_ms: u64,
    },
    Up(Up),
    Down(Down),
    /// OnHeartBeatWarning: nothing received from the front for `seconds`.
    HeartBeatWarning {
        seconds: i32,
    },
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn disconnected(code: i32, attempt: Option<u64>) -> Down {
    let (reason, what) = reason_name(code);
    Down {
        reason,
        code: Some(code),
        detail: format!("OnFrontDisconnected 0x{code:04x} ({what})"),
        attempt,
    }
}

enum Step {
    Connecting,
    Authenticating,
    LoggingIn,
}

enum End {
    Up(Up),
    Down(Down),
    Stopped,
}

/// Drive one created object to a login, a failure or the stop.
fn attempt(
    s: &mut Session,
    side: Side,
    login: &Login,
    knobs: &Knobs,
    n: u64,
    stop: &dyn Fn(Duration) -> bool,
    sink: &mut dyn FnMut(WatchEvent),
) -> End {
    let created = s.created;
    let mut step = Step::Connecting;
    let mut deadline = created + knobs.connect_timeout;
    let (mut connected_at, mut auth_ms, mut login_sent) = (created, None, created);
    let timeout_ms = knobs.connect_timeout.as_millis();
    let down = |reason, detail: String| {
        End::Down(Down {
            reason,
            code: None,
            detail,
            attempt: Some(n),
        })
    };
    loop {
        if stop(Duration::ZERO) {
            return End::Stopped;
        }
        let now = Instant::now();
        if now >= deadline {
            return match step {
                Step::Connecting => down(
                    "connect_timeout",
                    format!("no OnFrontConnected within connect_timeout_ms ({timeout_ms} ms)"),
                ),
                Step::Authenticating => down(
                    "auth_timeout",
                    format!("no OnRspAuthenticate within {timeout_ms} ms"),
                ),
                Step::LoggingIn => down(
                    "login_timeout",
                    format!("no OnRspUserLogin within {timeout_ms} ms"),
                ),
            };
        }
        let ev = match s.events().recv_timeout(POLL.min(deadline - now)) {
            Ok(t) => t,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                return down("request_failed", "the API's callback channel closed".into());
            }
        };
        match ev.event {
            Event::Connected => {
                connected_at = ev.at;
                deadline = ev.at + knobs.connect_timeout;
                let auth = side == Side::Trader && login.app_id.is_some();
                let rc = if auth {
                    step = Step::Authenticating;
                    s.authenticate(login)
                } else {
                    step = Step::LoggingIn;
                    login_sent = Instant::now();
                    s.login(login)
                };
                if rc != 0 {
                    let what = if auth {
                        "ReqAuthenticate"
                    } else {
                        "ReqUserLogin"
                    };
                    return down("request_failed", format!("{what} returned {rc}"));
                }
            }
            Event::Authenticated => {
                auth_ms = Some(ms(ev.at - connected_at));
                step = Step::LoggingIn;
                deadline = Instant::now() + knobs.connect_timeout;
                login_sent = Instant::now();
                let rc = s.login(login);
                if rc != 0 {
                    return down("request_failed", format!("ReqUserLogin returned {rc}"));
                }
            }
            Event::LoggedIn {
                trading_day,
                front_id,
                session_id,
            } => {
                return End::Up(Up {
                    attempt: n,
                    connect_ms: ms(connected_at - created),
                    auth_ms,
                    login_ms: ms(ev.at.saturating_duration_since(login_sent)),
                    total_ms: ms(ev.at - created),
                    trading_day,
                    front_id,
                    session_id,
                });
            }
            Event::Refused {
                step: what,
                error_id,
                message,
            } => {
                let reason = match what {
                    "authenticate" => "auth_failed",
                    "login" => "login_refused",
                    _ => "request_failed",
                };
                return down(reason, format!("{what}: ErrorID={error_id} {message}"));
            }
            Event::Disconnected { code } => return End::Down(disconnected(code, Some(n))),
            Event::HeartBeatWarning { seconds } => sink(WatchEvent::HeartBeatWarning { seconds }),
            Event::Account { .. } => {}
        }
    }
}

/// Watch a logged-in session until it is lost (`Some`) or the stop (`None`).
fn session(
    s: &Session,
    stop: &dyn Fn(Duration) -> bool,
    sink: &mut dyn FnMut(WatchEvent),
) -> Option<Down> {
    loop {
        if stop(Duration::ZERO) {
            return None;
        }
        match s.events().recv_timeout(POLL) {
            Ok(t) => match t.event {
                Event::Disconnected { code } => return Some(disconnected(code, None)),
                Event::HeartBeatWarning { seconds } => {
                    sink(WatchEvent::HeartBeatWarning { seconds });
                }
                _ => {}
            },
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Some(Down {
                    reason: "request_failed",
                    code: None,
                    detail: "the API's callback channel closed".into(),
                    attempt: None,
                });
            }
        }
    }
}

/// Watch one front until `stop` says so. `stop(d)` waits up to `d` and returns true when the
/// probe is stopping (`stop(Duration::ZERO)` only polls). Attempt 1 starts at once, later ones
/// after [`Knobs::backoff`]; the API object is released before each `Down` is reported, so the
/// library's own reconnect loop is cut short. Returns `Err` only when an API object cannot be
/// created (missing or foreign library, flow directory not writable).
pub fn watch(
    target: &Target,
    login: &Login,
    knobs: &Knobs,
    stop: &dyn Fn(Duration) -> bool,
    sink: &mut dyn FnMut(WatchEvent),
) -> Result<(), String> {
    let mut n = 0_u64;
    loop {
        n += 1;
        let backoff = knobs.backoff(n);
        if stop(backoff) {
            return Ok(());
        }
        sink(WatchEvent::Attempt {
            n,
            backoff_ms: u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
        });
        let mut s = Session::start(target)?;
        match attempt(&mut s, target.side, login, knobs, n, stop, sink) {
            End::Stopped => return Ok(()),
            End::Down(d) => {
                drop(s);
                sink(WatchEvent::Down(d));
            }
            End::Up(up) => {
                sink(WatchEvent::Up(up));
                n = 0;
                let lost = session(&s, stop, sink);
                drop(s);
                match lost {
                    None => return Ok(()),
                    Some(d) => sink(WatchEvent::Down(d)),
                }
            }
        }
    }
}

/// One login, for a preflight check.
#[derive(Debug, Clone, PartialEq)]
pub struct LoginReport {
    pub up: Up,
    /// Trader with `query_account`: (Balance, Available) from ReqQryTradingAccount.
    pub account: Option<(f64, f64)>,
    /// ReqQryTradingAccount → its reply, ms.
    pub query_ms: Option<f64>,
}

/// Create the object, log in once (connect timeout per step), optionally query the trading
/// account (trader), release. `Err` carries why (a [`Down`] with `attempt: Some(1)`).
pub fn login_once(
    target: &Target,
    login: &Login,
    knobs: &Knobs,
    query_account: bool,
) -> Result<LoginReport, Down> {
    let fail = |reason, detail| Down {
        reason,
        code: None,
        detail,
        attempt: Some(1),
    };
    let mut s = Session::start(target).map_err(|e| fail("api_error", e))?;
    let never = |_: Duration| false;
    let up = match attempt(&mut s, target.side, login, knobs, 1, &never, &mut |_| {}) {
        End::Up(up) => up,
        End::Down(d) => return Err(d),
        End::Stopped => return Err(fail("stopped", "stopped".into())),
    };
    let mut report = LoginReport {
        up,
        account: None,
        query_ms: None,
    };
    if query_account && target.side == Side::Trader {
        let sent = Instant::now();
        let rc = s.query_account(login);
        if rc != 0 {
            return Err(fail(
                "request_failed",
                format!("ReqQryTradingAccount returned {rc}"),
            ));
        }
        let deadline = sent + knobs.connect_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(fail(
                    "query_timeout",
                    "no OnRspQryTradingAccount within connect_timeout_ms".into(),
                ));
            }
            if let Ok(t) = s.events().recv_timeout(left) {
                match t.event {
                    Event::Account { balance, available } => {
                        report.account = Some((balance, available));
                        report.query_ms = Some(ms(t.at - sent));
                        break;
                    }
                    Event::Refused {
                        error_id, message, ..
                    } => {
                        return Err(fail(
                            "query_refused",
                            format!("query_account: ErrorID={error_id} {message}"),
                        ));
                    }
                    Event::Disconnected { code } => return Err(disconnected(code, Some(1))),
                    _ => {}
                }
            }
        }
    }
    drop(s);
    Ok(report)
}
