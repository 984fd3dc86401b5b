//! One API object (trader or market data) and its callbacks, as a channel of typed events.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use ctp2rs::ffi::{AssignFromString, gb18030_cstr_i8_to_str};
use ctp2rs::v1alpha1::{
    CThostFtdcQryTradingAccountField, CThostFtdcReqAuthenticateField, CThostFtdcReqUserLoginField,
    CThostFtdcRspAuthenticateField, CThostFtdcRspInfoField, CThostFtdcRspUserLoginField,
    CThostFtdcTradingAccountField, MdApi, MdSpi, THOST_TE_RESUME_TYPE, TraderApi, TraderSpi,
};

use crate::{Login, Side, loader};

/// What the API reported, in the order its callbacks ran.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// OnFrontConnected: the TCP session to the front is up (not yet logged in).
    Connected,
    /// OnFrontDisconnected with the API's reason code (see [`crate::reason_name`]). The library
    /// reconnects by itself after this; the caller decides whether to let it.
    Disconnected { code: i32 },
    /// OnHeartBeatWarning: nothing received for this many seconds.
    HeartBeatWarning { seconds: i32 },
    /// OnRspAuthenticate with ErrorID 0.
    Authenticated,
    /// OnRspUserLogin with ErrorID 0.
    LoggedIn {
        trading_day: String,
        front_id: i32,
        session_id: i32,
    },
    /// OnRspAuthenticate / OnRspUserLogin / OnRspQryTradingAccount / OnRspError with an error.
    Refused {
        step: &'static str,
        error_id: i32,
        message: String,
    },
    /// OnRspQryTradingAccount.
    Account { balance: f64, available: f64 },
}

/// An event and when it was seen.
#[derive(Debug, Clone)]
pub struct Timed {
    pub at: Instant,
    pub event: Event,
}

fn text(chars: &[std::os::raw::c_char]) -> String {
    gb18030_cstr_i8_to_str(chars).map_or_else(|e| format!("<undecodable: {e}>"), |s| s.into_owned())
}

fn error_of(info: Option<&CThostFtdcRspInfoField>) -> Option<(i32, String)> {
    info.filter(|i| i.ErrorID != 0)
        .map(|i| (i.ErrorID, text(&i.ErrorMsg)))
}

/// The callback object: forwards every callback the probe cares about to the channel. Callbacks
/// run on the library's own thread; a send never blocks.
struct Spi {
    tx: Sender<Timed>,
}

impl Spi {
    fn send(&self, event: Event) {
        // The receiver is gone only while the session is being released: nothing to report.
        let _ = self.tx.send(Timed {
            at: Instant::now(),
            event,
        });
    }

    fn login(
        &self,
        rsp: Option<&CThostFtdcRspUserLoginField>,
        info: Option<&CThostFtdcRspInfoField>,
    ) {
        if let Some((error_id, message)) = error_of(info) {
            self.send(Event::Refused {
                step: "login",
                error_id,
                message,
            });
        } else {
            self.send(Event::LoggedIn {
                trading_day: rsp.map(|r| text(&r.TradingDay)).unwrap_or_default(),
                front_id: rsp.map_or(0, |r| r.FrontID),
                session_id: rsp.map_or(0, |r| r.SessionID),
            });
        }
    }

    fn error(&self, info: Option<&CThostFtdcRspInfoField>) {
        if let Some((error_id, message)) = error_of(info) {
            self.send(Event::Refused {
                step: "request",
                error_id,
                message,
            });
        }
    }
}

/// The callbacks both APIs have, with the same signatures (the two traits are distinct).
macro_rules! shared_callbacks {
    () => {
        fn on_front_connected(&mut self) {
            self.send(Event::Connected);
        }
        fn on_front_disconnected(&mut self, n_reason: i32) {
            self.send(Event::Disconnected { code: n_reason });
        }
        fn on_heart_beat_warning(&mut self, n_time_lapse: i32) {
            self.send(Event::HeartBeatWarning {
                seconds: n_time_lapse,
            });
        }
        fn on_rsp_user_login(
            &mut self,
            rsp: Option<&CThostFtdcRspUserLoginField>,
            info: Option<&CThostFtdcRspInfoField>,
            _id: i32,
            _last: bool,
        ) {
            self.login(rsp, info);
        }
        fn on_rsp_error(&mut self, info: Option<&CThostFtdcRspInfoField>, _id: i32, _last: bool) {
            self.error(info);
        }
    };
}

impl TraderSpi for Spi {
    shared_callbacks!();
    fn on_rsp_authenticate(
        &mut self,
        _rsp: Option<&CThostFtdcRspAuthenticateField>,
        info: Option<&CThostFtdcRspInfoField>,
        _id: i32,
        _last: bool,
    ) {
        match error_of(info) {
            Some((error_id, message)) => self.send(Event::Refused {
                step: "authenticate",
                error_id,
                message,
            }),
            None => self.send(Event::Authenticated),
        }
    }
    fn on_rsp_qry_trading_account(
        &mut self,
        acc: Option<&CThostFtdcTradingAccountField>,
        info: Option<&CThostFtdcRspInfoField>,
        _id: i32,
        last: bool,
    ) {
        if let Some((error_id, message)) = error_of(info) {
            self.send(Event::Refused {
                step: "query_account",
                error_id,
                message,
            });
        } else if let Some(a) = acc {
            self.send(Event::Account {
                balance: a.Balance,
                available: a.Available,
            });
        } else if last {
            self.send(Event::Refused {
                step: "query_account",
                error_id: 0,
                message: "no trading account in the reply".into(),
            });
        }
    }
}

impl MdSpi for Spi {
    shared_callbacks!();
}

enum Api {
    Trader(TraderApi),
    Market(MdApi),
}

/// Where and how to create one API object.
#[derive(Debug, Clone)]
pub struct Target {
    pub side: Side,
    /// `thosttraderapi_se.so` or `thostmduserapi_se.so`.
    pub library: PathBuf,
    /// `tcp://host:port`.
    pub front: String,
    /// Flow directory of this side (created if missing: the library crashes without it).
    pub flow_dir: PathBuf,
    /// v6.7.11+ only: production (true) or evaluation (false) secret key.
    pub production_mode: bool,
}

/// A created, initialised API object. Dropping it releases the object (ctp2rs: unregister the
/// callbacks, `Release()`, which stops the library's threads and its reconnect loop), and only
/// then frees the callback object.
pub struct Session {
    // Field order is drop order: the API (released) before the callbacks it points to.
    api: Api,
    _spi: Box<Spi>,
    events: Receiver<Timed>,
    request_id: i32,
    pub created: Instant,
}

/// Create the flow directory (with owner-only permissions: it holds session state).
pub fn make_flow_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create the flow directory {}: {e}", dir.display()))
}

fn flow_prefix(dir: &Path) -> String {
    let mut s = dir.display().to_string();
    if !s.ends_with('/') {
        s.push('/');
    }
    s
}

impl Session {
    /// Create the API object, register the callbacks and the front, and `Init()`: the library
    /// starts connecting at once, and reports on [`Session::events`].
    pub fn start(t: &Target) -> Result<Session, String> {
        make_flow_dir(&t.flow_dir)?;
        let flow = flow_prefix(&t.flow_dir);
        let (tx, events) = channel();
        let mut spi = Box::new(Spi { tx });
        let api = match t.side {
            Side::Trader => {
                let api = loader::create_trader(&t.library, &flow, t.production_mode)?;
                let p: *mut dyn TraderSpi = &mut *spi;
                api.register_spi(p);
                api.register_front(&t.front);
                api.subscribe_private_topic(THOST_TE_RESUME_TYPE::THOST_TERT_QUICK);
                api.subscribe_public_topic(THOST_TE_RESUME_TYPE::THOST_TERT_QUICK);
                api.init();
                Api::Trader(api)
            }
            Side::Market => {
                let api = loader::create_market(&t.library, &flow, t.production_mode)?;
                let p: *mut dyn MdSpi = &mut *spi;
                api.register_spi(p);
                api.register_front(&t.front);
                api.init();
                Api::Market(api)
            }
        };
        Ok(Session {
            api,
            _spi: spi,
            events,
            request_id: 0,
            created: Instant::now(),
        })
    }

    /// The callbacks, in order.
    pub fn events(&self) -> &Receiver<Timed> {
        &self.events
    }

    fn next_id(&mut self) -> i32 {
        self.request_id += 1;
        self.request_id
    }

    /// ReqAuthenticate (trader only). Returns the API's return code (0 = sent).
    pub fn authenticate(&mut self, login: &Login) -> i32 {
        let id = self.next_id();
        let Api::Trader(api) = &self.api else {
            return -1;
        };
        let mut f = CThostFtdcReqAuthenticateField::default();
        f.BrokerID.assign_from_str(&login.broker_id);
        f.UserID.assign_from_str(&login.user_id);
        f.AppID
            .assign_from_str(login.app_id.as_deref().unwrap_or_default());
        f.AuthCode.assign_from_str(
            login
                .auth_code
                .as_ref()
                .map(ctp_config::Secret::expose)
                .unwrap_or_default(),
        );
        let rc = api.req_authenticate(&mut f, id);
        f.AuthCode.fill(0);
        rc
    }

    /// ReqUserLogin. The password is copied into the request only for the call, then wiped.
    pub fn login(&mut self, login: &Login) -> i32 {
        let id = self.next_id();
        let mut f = CThostFtdcReqUserLoginField::default();
        f.BrokerID.assign_from_str(&login.broker_id);
        f.UserID.assign_from_str(&login.user_id);
        f.Password.assign_from_str(login.password.expose());
        let rc = match &self.api {
            Api::Trader(api) => api.req_user_login(&mut f, id),
            Api::Market(api) => api.req_user_login(&mut f, id),
        };
        f.Password.fill(0);
        rc
    }

    /// ReqQryTradingAccount (trader only).
    pub fn query_account(&mut self, login: &Login) -> i32 {
        let id = self.next_id();
        let Api::Trader(api) = &self.api else {
            return -1;
        };
        let mut f = CThostFtdcQryTradingAccountField::default();
        f.BrokerID.assign_from_str(&login.broker_id);
        f.InvestorID.assign_from_str(&login.investor_id);
        api.req_qry_trading_account(&mut f, id)
    }
}
