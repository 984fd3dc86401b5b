//! `ctp-api`: log in to real CTP fronts through the vendor API (`thosttraderapi_se.so`,
//! `thostmduserapi_se.so`), loaded at run time from the API folder, through ctp2rs's bindings.
//!
//! - [`Session`]: one API object (trader or market data) whose callbacks arrive as typed
//!   [`Event`]s on a channel. Dropping it releases the object.
//! - [`watch`]: the probe loop of one front: create, wait for OnFrontConnected within the connect
//!   timeout, ReqAuthenticate (trader, when the config has app_id/auth_code), ReqUserLogin, then
//!   watch the session; on a disconnect, release the object and re-create it after the config's
//!   backoff. The library's own reconnect loop (about 650 connections/s against a front that
//!   closes at once) never runs for more than the moment between a disconnect callback and the
//!   release.
//! - [`login_once`]: one login (and a trading-account query) with timings, for a preflight.
//! - [`capture_stdout`]: the libraries print to stdout; move fd 1 to a log file and hand back
//!   the original stdout for the `[health]` stream.
//!
//! The password is a [`ctp_config::Secret`] from the config's `password_env` variable; it is
//! copied into the login request only for the call and wiped after.

mod capture;
mod loader;
mod session;
mod watch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ctp_config::{CtpConfig, PasswordSource, Secret};

pub use capture::capture_stdout;
pub use loader::{Abi, LibInfo};
pub use session::{Event, Session, Target, Timed, make_flow_dir};
pub use watch::{Down, LoginReport, Up, WatchEvent, login_once, watch};

/// File name of the trader API library in the API folder.
pub const TRADER_LIB: &str = "thosttraderapi_se.so";
/// File name of the market-data API library in the API folder.
pub const MARKET_LIB: &str = "thostmduserapi_se.so";
/// The API folder ctp-preflight and the original toolkit default to (`--ctp-lib-dir`).
pub const DEFAULT_LIB_DIR: &str = "ctp_api/v6.7.11_20250617_api_traderapi_se_linux64";

/// The two fronts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    Trader,
    Market,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Trader, Side::Market];

    /// `trader` or `market` (the probe's front names).
    pub fn name(self) -> &'static str {
        match self {
            Side::Trader => "trader",
            Side::Market => "market",
        }
    }

    /// The library file of this side.
    pub fn library(self) -> &'static str {
        match self {
            Side::Trader => TRADER_LIB,
            Side::Market => MARKET_LIB,
        }
    }
}

/// OnFrontDisconnected's reason code, named: (stable name, the API's description).
pub fn reason_name(code: i32) -> (&'static str, &'static str) {
    match code {
        0x1001 => ("net_read_failed", "network read failed"),
        0x1002 => ("net_write_failed", "network write failed"),
        0x2001 => ("heartbeat_timeout", "heartbeat receive timed out"),
        0x2002 => ("heartbeat_send_failed", "heartbeat send failed"),
        0x2003 => ("bad_packet", "received an error packet"),
        _ => ("disconnected", "unknown reason"),
    }
}

/// Who logs in, and with what. `Debug` never shows the secrets.
#[derive(Debug, Clone)]
pub struct Login {
    pub broker_id: String,
    pub user_id: String,
    pub investor_id: String,
    pub password: Secret,
    /// Terminal authentication (trader front): both set, or no ReqAuthenticate.
    pub app_id: Option<String>,
    pub auth_code: Option<Secret>,
}

impl Login {
    /// From a loaded config: ids, terminal auth (when `enable_terminal_auth`), and the password
    /// from the config's `password_env` variable (or its inline `password`, with
    /// `inline_password` true so the caller can warn). Errors name the missing key.
    pub fn from_config(cfg: &CtpConfig) -> Result<(Login, bool), String> {
        let v = &cfg.values;
        let need = |x: &Option<String>, key: &str| {
            x.clone()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| format!("{}: `{key}` is missing or empty", cfg.path.display()))
        };
        let broker_id = need(&v.broker_id, "broker_id")?;
        let user_id = need(&v.user_id, "user_id")?;
        let investor_id = v
            .investor_id
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| user_id.clone());
        let (password, inline) = match cfg.password_source() {
            PasswordSource::Inline(p) => (p, true),
            PasswordSource::Env { value, .. } => (value, false),
            PasswordSource::Missing { env_name } => {
                return Err(format!(
                    "{}: no password: the config has no `password` and ${env_name} (password_env) is unset or empty",
                    cfg.path.display()
                ));
            }
        };
        let (app_id, auth_code) = if v.enable_terminal_auth {
            (
                Some(need(&v.app_id, "app_id")?),
                Some(
                    v.auth_code
                        .clone()
                        .filter(|s| !s.is_empty())
                        .ok_or_else(|| {
                            format!("{}: `auth_code` is missing or empty", cfg.path.display())
                        })?,
                ),
            )
        } else {
            (None, None)
        };
        Ok((
            Login {
                broker_id,
                user_id,
                investor_id,
                password,
                app_id,
                auth_code,
            },
            inline,
        ))
    }
}

/// Connect and reconnect knobs (the config's `connect_timeout_ms`, `reconnect_*`).
#[derive(Debug, Clone)]
pub struct Knobs {
    /// OnFrontConnected, and then the login, must each come within this.
    pub connect_timeout: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Knobs {
    /// From the config (values must already be validated > 0).
    pub fn from_config(cfg: &CtpConfig) -> Knobs {
        let ms = |x: i64| Duration::from_millis(u64::try_from(x.max(1)).unwrap_or(1));
        let v = &cfg.values;
        Knobs {
            connect_timeout: ms(v.connect_timeout_ms),
            initial_backoff: ms(v.reconnect_initial_backoff_ms),
            max_backoff: ms(v.reconnect_max_backoff_ms),
        }
    }

    /// The wait before attempt `n` (1-based) of one outage: 0, then initial, doubling, capped
    /// at max (the same schedule as ctp-probe's other modes).
    pub fn backoff(&self, n: u64) -> Duration {
        if n <= 1 {
            return Duration::ZERO;
        }
        let shift = u32::try_from((n - 2).min(30)).unwrap_or(30);
        self.initial_backoff
            .saturating_mul(1_u32 << shift)
            .min(self.max_backoff)
    }
}

/// The two libraries of an API folder.
#[derive(Debug, Clone)]
pub struct ApiDir {
    pub dir: PathBuf,
}

impl ApiDir {
    pub fn new(dir: impl Into<PathBuf>) -> ApiDir {
        ApiDir { dir: dir.into() }
    }

    /// Path of a side's library.
    pub fn library(&self, side: Side) -> PathBuf {
        self.dir.join(side.library())
    }

    /// Whether both libraries are there (what `--mode auto` checks).
    pub fn present(&self) -> bool {
        Side::BOTH.iter().all(|s| self.library(*s).is_file())
    }

    /// Load a side's library (once per process) and read its version; an error names the file.
    pub fn load(&self, side: Side) -> Result<LibInfo, String> {
        let p = self.library(side);
        if !p.is_file() {
            return Err(format!("{} is missing", p.display()));
        }
        match side {
            Side::Trader => loader::probe_trader(&p),
            Side::Market => loader::probe_market(&p),
        }
        .map_err(|e| format!("{}: {e}", p.display()))
    }

    /// The target of one side: its library, front, and its own flow sub-folder
    /// (`<flow_path>/trader/`, `<flow_path>/market/`: the two objects write files of the same
    /// names).
    pub fn target(
        &self,
        side: Side,
        front: &str,
        flow_path: &Path,
        production_mode: bool,
    ) -> Target {
        Target {
            side,
            library: self.library(side),
            front: front.to_string(),
            flow_dir: flow_path.join(side.name()),
            production_mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap() {
        let k = Knobs {
            connect_timeout: Duration::from_secs(1),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(1000),
        };
        let b: Vec<u128> = (1..=8).map(|n| k.backoff(n).as_millis()).collect();
        assert_eq!(b, [0, 50, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(k.backoff(500).as_millis(), 1000);
    }

    #[test]
    fn reasons_are_named() {
        assert_eq!(reason_name(0x1001).0, "net_read_failed");
        assert_eq!(reason_name(4098).0, "net_write_failed");
        assert_eq!(reason_name(0x2001).0, "heartbeat_timeout");
        assert_eq!(reason_name(0x2002).0, "heartbeat_send_failed");
        assert_eq!(reason_name(0x2003).0, "bad_packet");
        assert_eq!(reason_name(7).0, "disconnected");
    }

    #[test]
    fn login_debug_hides_the_password() {
        let l = Login {
            broker_id: "9999".into(),
            user_id: "u".into(),
            investor_id: "u".into(),
            password: Secret::new("hunter2-secret"),
            app_id: None,
            auth_code: Some(Secret::new("0000000000000000")),
        };
        let s = format!("{l:?}");
        assert!(!s.contains("hunter2-secret"), "{s}");
    }
}
