//! The simulator's wire protocol: newline-delimited JSON, one object per line, each with a
//! `type`. It is our own small framing for drills and tests, **not** CTP's protocol (CTP's real
//! fronts speak a binary protocol through the vendor's API library).
//!
//! A session (trader or market front):
//!
//! ```text
//! C: {"type":"hello","broker_id":"9999","user_id":"000001","client":"ctp-probe"}
//! S: {"type":"hello_ack","front":"trader","conn_id":7,"heartbeat_ms":1000}
//! C: {"type":"auth","app_id":"simnow_client_test","auth_code":"..."}          (optional)
//! S: {"type":"auth_ok"} | {"type":"auth_failed","reason":"..."}
//! C: {"type":"login","user_id":"000001","password":"..."}
//! S: (after the configured login latency)
//!    {"type":"login_ok","front":"trader","trading_day":"20260313","session_id":7,"ts_ns":...}
//!  | {"type":"login_refused","reason":"..."}
//! S: {"type":"heartbeat","ts_ns":...}            every heartbeat_ms after hello_ack
//! C: {"type":"ping","seq":1}  S: {"type":"pong","seq":1}
//! C: {"type":"subscribe","instruments":["SHFE.ag2406"]}                        (market front)
//! S: {"type":"tick","instrument":"SHFE.ag2406","last_price":5600.0,"volume":12,"ts_ns":...}
//! S: {"type":"closing","reason":"front_down"}    before the server closes a connection
//! C: {"type":"logout"}
//! ```
//!
//! Unknown fields are ignored; an unknown `type` gets `{"type":"error","reason":...}`.
//! [`Client`] is a small blocking client (connect, hello, auth, login) for probes and tests.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One protocol message (both directions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Client → server: who is connecting.
    Hello {
        /// Broker id.
        broker_id: String,
        /// User id.
        user_id: String,
        /// Client name (free text).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
    },
    /// Server → client: the handshake is accepted.
    HelloAck {
        /// `trader` or `market`.
        front: String,
        /// The server's connection id (also in the event log).
        conn_id: u64,
        /// Heartbeat interval.
        heartbeat_ms: u64,
    },
    /// Client → server: terminal authentication.
    Auth {
        /// App id.
        app_id: String,
        /// Auth code.
        auth_code: String,
    },
    /// Server → client: authentication passed.
    AuthOk,
    /// Server → client: authentication failed.
    AuthFailed {
        /// Why.
        reason: String,
    },
    /// Client → server: log in.
    Login {
        /// User id.
        user_id: String,
        /// Password (the simulator never logs it).
        password: String,
    },
    /// Server → client: logged in.
    LoginOk {
        /// `trader` or `market`.
        front: String,
        /// Trading day `YYYYMMDD` (the +08:00 date at the server).
        trading_day: String,
        /// Session id (= conn id).
        session_id: u64,
        /// Server wall clock when the reply was built, epoch ns.
        ts_ns: i64,
    },
    /// Server → client: login refused.
    LoginRefused {
        /// Why.
        reason: String,
    },
    /// Server → client: keep-alive.
    Heartbeat {
        /// Server wall clock, epoch ns.
        ts_ns: i64,
    },
    /// Client → server: ping.
    Ping {
        /// Echoed back.
        seq: u64,
    },
    /// Server → client: pong.
    Pong {
        /// The ping's seq.
        seq: u64,
    },
    /// Client → server: market-data subscription (market front).
    Subscribe {
        /// Instruments.
        instruments: Vec<String>,
    },
    /// Server → client: a market-data tick.
    Tick {
        /// Instrument.
        instrument: String,
        /// Last price.
        last_price: f64,
        /// Volume.
        volume: u64,
        /// Server wall clock, epoch ns.
        ts_ns: i64,
    },
    /// Server → client: the server is about to close the connection.
    Closing {
        /// `front_down`, `outside_session_window`, `sim_stop`.
        reason: String,
    },
    /// Client → server: log out and close.
    Logout,
    /// Server → client: a protocol error (the connection stays open).
    Error {
        /// What was wrong.
        reason: String,
    },
}

/// Encode one message as a JSON line (with the trailing `\n`).
#[must_use]
pub fn encode(m: &Message) -> String {
    let mut s = serde_json::to_string(m).unwrap_or_else(|_| "{\"type\":\"error\"}".to_string());
    s.push('\n');
    s
}

/// Decode one line (a trailing newline is allowed).
pub fn decode(line: &str) -> Result<Message, String> {
    serde_json::from_str(line.trim_end()).map_err(|e| e.to_string())
}

/// Login parameters.
#[derive(Clone)]
pub struct Credentials {
    /// Broker id.
    pub broker_id: String,
    /// User id.
    pub user_id: String,
    /// App id and auth code: the auth step is sent only when both are set.
    pub app_id: Option<String>,
    /// Auth code.
    pub auth_code: Option<String>,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("broker_id", &self.broker_id)
            .field("user_id", &self.user_id)
            .field("app_id", &self.app_id)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials from a CTP config and a resolved password (see
    /// `ctp_config::CtpConfig::password_source`). The auth step is sent when the config enables
    /// terminal auth and has both `app_id` and `auth_code`.
    #[must_use]
    pub fn from_config(cfg: &ctp_config::CtpConfig, password: &ctp_config::Secret) -> Credentials {
        let v = &cfg.values;
        let auth = v.enable_terminal_auth;
        Credentials {
            broker_id: v.broker_id.clone().unwrap_or_default(),
            user_id: v.user_id.clone().unwrap_or_default(),
            app_id: v.app_id.clone().filter(|_| auth),
            auth_code: v
                .auth_code
                .as_ref()
                .filter(|_| auth)
                .map(|s| s.expose().to_string()),
            password: password.expose().to_string(),
        }
    }
}

/// A successful login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginOk {
    /// `trader` or `market`.
    pub front: String,
    /// `YYYYMMDD`.
    pub trading_day: String,
    /// Session id.
    pub session_id: u64,
    /// The server's reply timestamp, epoch ns.
    pub server_ts_ns: i64,
}

/// Why a login did not succeed.
#[derive(Debug)]
pub enum LoginError {
    /// Connect, read or write failed.
    Io(io::Error),
    /// The server closed the connection.
    Closed,
    /// No reply within the timeout.
    Timeout,
    /// `auth_failed`.
    AuthFailed(String),
    /// `login_refused`.
    Refused(String),
    /// An unexpected or malformed message.
    Protocol(String),
}

impl std::fmt::Display for LoginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginError::Io(e) => write!(f, "i/o error: {e}"),
            LoginError::Closed => f.write_str("connection closed by the front"),
            LoginError::Timeout => f.write_str("timed out waiting for the front"),
            LoginError::AuthFailed(r) => write!(f, "authentication failed: {r}"),
            LoginError::Refused(r) => write!(f, "login refused: {r}"),
            LoginError::Protocol(r) => write!(f, "protocol error: {r}"),
        }
    }
}

impl std::error::Error for LoginError {}

impl From<io::Error> for LoginError {
    fn from(e: io::Error) -> Self {
        LoginError::Io(e)
    }
}

/// A blocking client of one front.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    pending: Vec<u8>,
}

impl Client {
    /// Connect to `addr` (`host:port`) within `timeout`.
    pub fn connect(addr: &str, timeout: Duration) -> io::Result<Client> {
        let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("no address for {addr}"));
        for a in addrs {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => return Client::from_stream(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Wrap a connected stream.
    pub fn from_stream(stream: TcpStream) -> io::Result<Client> {
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client {
            stream,
            reader,
            pending: Vec::new(),
        })
    }

    /// Send one message.
    pub fn send(&mut self, m: &Message) -> io::Result<()> {
        self.stream.write_all(encode(m).as_bytes())
    }

    /// Receive one message within `timeout`: `Ok(None)` on timeout (a partial line is kept for
    /// the next call), `Err(UnexpectedEof)` when the server closed the connection.
    pub fn recv(&mut self, timeout: Duration) -> io::Result<Option<Message>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.reader.get_ref().set_read_timeout(Some(left))?;
            match self.reader.read_until(b'\n', &mut self.pending) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed by the front",
                    ));
                }
                Ok(_) if self.pending.ends_with(b"\n") => {
                    let line = String::from_utf8_lossy(&self.pending).into_owned();
                    self.pending.clear();
                    if line.trim().is_empty() {
                        continue;
                    }
                    return decode(&line)
                        .map(Some)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e));
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait for the next message that is not a heartbeat or tick.
    fn expect(&mut self, deadline: Instant) -> Result<Message, LoginError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LoginError::Timeout);
            }
            match self.recv(left) {
                Ok(Some(Message::Heartbeat { .. } | Message::Tick { .. })) => {}
                Ok(Some(Message::Closing { reason })) => {
                    return Err(LoginError::Refused(format!("front closing: {reason}")));
                }
                Ok(Some(m)) => return Ok(m),
                Ok(None) => return Err(LoginError::Timeout),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(LoginError::Closed);
                }
                Err(e) => return Err(LoginError::Io(e)),
            }
        }
    }

    /// Hello, optional auth (when app id and auth code are set), login; all within `timeout`.
    pub fn login(&mut self, c: &Credentials, timeout: Duration) -> Result<LoginOk, LoginError> {
        let deadline = Instant::now() + timeout;
        self.send(&Message::Hello {
            broker_id: c.broker_id.clone(),
            user_id: c.user_id.clone(),
            client: Some("ctp-front-sim::proto".into()),
        })?;
        match self.expect(deadline)? {
            Message::HelloAck { .. } => {}
            other => {
                return Err(LoginError::Protocol(format!(
                    "expected hello_ack, got {other:?}"
                )));
            }
        }
        if let (Some(app_id), Some(auth_code)) = (&c.app_id, &c.auth_code) {
            self.send(&Message::Auth {
                app_id: app_id.clone(),
                auth_code: auth_code.clone(),
            })?;
            match self.expect(deadline)? {
                Message::AuthOk => {}
                Message::AuthFailed { reason } => return Err(LoginError::AuthFailed(reason)),
                other => {
                    return Err(LoginError::Protocol(format!(
                        "expected auth_ok, got {other:?}"
                    )));
                }
            }
        }
        self.send(&Message::Login {
            user_id: c.user_id.clone(),
            password: c.password.clone(),
        })?;
        match self.expect(deadline)? {
            Message::LoginOk {
                front,
                trading_day,
                session_id,
                ts_ns,
            } => Ok(LoginOk {
                front,
                trading_day,
                session_id,
                server_ts_ns: ts_ns,
            }),
            Message::LoginRefused { reason } => Err(LoginError::Refused(reason)),
            other => Err(LoginError::Protocol(format!(
                "expected login_ok, got {other:?}"
            ))),
        }
    }

    /// The underlying stream (to shut it down, read its peer address...).
    #[must_use]
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }
}

/// Connect to `addr` and log in, all within `timeout`.
pub fn connect_and_login(
    addr: &str,
    c: &Credentials,
    timeout: Duration,
) -> Result<(Client, LoginOk), LoginError> {
    let start = Instant::now();
    let mut client = Client::connect(addr, timeout)?;
    let ok = client.login(c, timeout.saturating_sub(start.elapsed()))?;
    Ok((client, ok))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m = Message::LoginOk {
            front: "trader".into(),
            trading_day: "20260313".into(),
            session_id: 3,
            ts_ns: 5,
        };
        let line = encode(&m);
        assert!(line.starts_with("{\"type\":\"login_ok\""));
        assert_eq!(decode(&line).unwrap(), m);
        assert_eq!(
            decode("{\"type\":\"auth_ok\",\"extra\":1}").unwrap(),
            Message::AuthOk
        );
        assert!(decode("{\"type\":\"nope\"}").is_err());
    }

    #[test]
    fn credentials_debug_hides_password() {
        let c = Credentials {
            broker_id: "b".into(),
            user_id: "u".into(),
            app_id: None,
            auth_code: Some("code".into()),
            password: "pw-secret".into(),
        };
        let s = format!("{c:?}");
        assert!(!s.contains("pw-secret") && !s.contains("code"));
    }
}
