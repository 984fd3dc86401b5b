//! The control protocol: JSON lines over a Unix socket, one request line → one reply line, any
//! number of requests per connection. fault-proxy serves it; [`Client`] is the blocking
//! client other tools (fault-inject) use.
//!
//! Requests (`op` selects):
//! - `{"op":"apply","pair":"trader","fault":{"type":"latency","delay_ms":100},"tag":"drill-1","ttl_ms":30000}`
//! - `{"op":"clear","tag":"drill-1"}` (any of `id`, `tag`, `pair`; all given must match)
//! - `{"op":"renew","tag":"drill-1","ttl_ms":5000}` (push the dead-man expiry; same selectors)
//! - `{"op":"list"}`, `{"op":"reset"}` (clear everything), `{"op":"status"}`
//!
//! Every reply has `ok`, `op` and `ts_ns`; a refused request has `"ok":false` and `error`.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::spec::Fault;
use evidence_core::EvidenceError;

/// Longest request line accepted (bytes).
pub const MAX_LINE: u64 = 64 * 1024;

/// A control request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Apply a fault to a pair.
    Apply {
        /// Pair name.
        pair: String,
        /// The fault.
        fault: Fault,
        /// The drill id (non-empty); `clear` by tag removes only these.
        tag: String,
        /// Dead-man: the proxy removes the fault by itself after this many milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl_ms: Option<u64>,
    },
    /// Remove the faults matching every given selector (at least one).
    Clear {
        /// A fault id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// A tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        /// A pair name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pair: Option<String>,
    },
    /// Set the expiry of the faults matching every given selector (at least one) to now +
    /// `ttl_ms`: the lease an injector renews while it lives, so that its faults die soon after
    /// it does.
    Renew {
        /// A fault id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<u64>,
        /// A tag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tag: Option<String>,
        /// A pair name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pair: Option<String>,
        /// The new time to live, milliseconds from now.
        ttl_ms: u64,
    },
    /// List the active faults.
    List,
    /// Remove every fault.
    Reset,
    /// Connections and bytes per pair.
    Status,
}

/// An active fault as `list` and `clear` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultInfo {
    /// Fault id.
    pub id: u64,
    /// Pair name.
    pub pair: String,
    /// The drill id.
    pub tag: String,
    /// The fault.
    pub fault: Fault,
    /// When it took effect.
    pub applied_ts_ns: i64,
    /// Dead-man time to live, if any.
    pub ttl_ms: Option<u64>,
    /// When the dead-man removes it, if any.
    pub expires_ts_ns: Option<i64>,
}

/// One pair in a `status` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairStatus {
    /// Pair name.
    pub name: String,
    /// Listen address.
    pub listen: String,
    /// Upstream as given.
    pub upstream: String,
    /// Connections open now.
    pub connections_active: u64,
    /// Connections forwarded since start.
    pub connections_total: u64,
    /// Connections answered with an RST while a `reset` fault was active.
    pub connections_refused: u64,
    /// Bytes forwarded client → server.
    pub bytes_upstream: u64,
    /// Bytes forwarded server → client.
    pub bytes_downstream: u64,
    /// Active faults on the pair.
    pub faults: u64,
}

/// A reply. Fields beyond `ok`, `op` and `ts_ns` depend on the op (absent when not relevant).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Response {
    /// True when the request was carried out.
    pub ok: bool,
    /// The request's op (empty when the line could not be parsed).
    pub op: String,
    /// When the request took effect (apply: after the fault was in force; clear: after removal).
    pub ts_ns: i64,
    /// Why the request was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// apply: the new fault's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// apply: when the dead-man removes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ts_ns: Option<i64>,
    /// apply of a `reset` fault: connections aborted with RST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_connections: Option<u64>,
    /// clear/reset: the faults removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleared: Option<Vec<FaultInfo>>,
    /// renew: the faults whose expiry was pushed (with their new expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed: Option<Vec<FaultInfo>>,
    /// list: the active faults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Vec<FaultInfo>>,
    /// status: per pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairs: Option<Vec<PairStatus>>,
}

impl Response {
    /// A refusal.
    #[must_use]
    pub fn error(op: &str, msg: impl Into<String>) -> Response {
        Response {
            ok: false,
            op: op.to_string(),
            ts_ns: evidence_core::time::now_ns(),
            error: Some(msg.into()),
            ..Response::default()
        }
    }
}

/// The result of a successful `apply`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Fault id.
    pub id: u64,
    /// When it took effect.
    pub ts_ns: i64,
    /// When the dead-man removes it, if a TTL was given.
    pub expires_ts_ns: Option<i64>,
    /// Connections aborted (reset faults).
    pub reset_connections: u64,
}

/// A failed control call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached, or broke.
    #[error("control socket {path}: {source}")]
    Io {
        /// Socket path.
        path: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// The proxy answered something that is not a reply.
    #[error("control socket {path}: bad reply: {msg}")]
    Protocol {
        /// Socket path.
        path: String,
        /// What was wrong.
        msg: String,
    },
    /// The proxy refused the request (unknown pair, bad fault, ...).
    #[error("fault-proxy refused {op}: {msg}")]
    Refused {
        /// The op.
        op: String,
        /// The proxy's error text.
        msg: String,
    },
}

impl From<ClientError> for EvidenceError {
    fn from(e: ClientError) -> EvidenceError {
        EvidenceError::failed(e.to_string())
    }
}

/// A blocking client of the control socket. One request at a time; reuse it for many.
#[derive(Debug)]
pub struct Client {
    path: String,
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl Client {
    /// Connect with a 10 s reply timeout.
    ///
    /// # Errors
    /// `Io` when the socket cannot be reached.
    pub fn connect(path: impl AsRef<Path>) -> std::result::Result<Client, ClientError> {
        Client::connect_timeout(path, Duration::from_secs(10))
    }

    /// Connect; each reply must come within `timeout`.
    ///
    /// # Errors
    /// `Io` when the socket cannot be reached.
    pub fn connect_timeout(
        path: impl AsRef<Path>,
        timeout: Duration,
    ) -> std::result::Result<Client, ClientError> {
        let label = path.as_ref().display().to_string();
        let io_err = |source| ClientError::Io {
            path: label.clone(),
            source,
        };
        let writer = UnixStream::connect(path.as_ref()).map_err(io_err)?;
        writer.set_read_timeout(Some(timeout)).map_err(io_err)?;
        writer.set_write_timeout(Some(timeout)).map_err(io_err)?;
        let reader = BufReader::new(writer.try_clone().map_err(io_err)?);
        Ok(Client {
            path: label,
            writer,
            reader,
        })
    }

    /// Send a request and return the reply as is (also when `ok` is false).
    ///
    /// # Errors
    /// `Io` or `Protocol`.
    pub fn request(&mut self, req: &Request) -> std::result::Result<Response, ClientError> {
        let mut line = serde_json::to_vec(req).map_err(|e| ClientError::Protocol {
            path: self.path.clone(),
            msg: e.to_string(),
        })?;
        line.push(b'\n');
        self.request_line(&line)
    }

    /// Send one raw line (a JSON request) and parse the reply.
    ///
    /// # Errors
    /// `Io` or `Protocol`.
    pub fn request_line(&mut self, line: &[u8]) -> std::result::Result<Response, ClientError> {
        let io_err = |source| ClientError::Io {
            path: self.path.clone(),
            source,
        };
        self.writer.write_all(line).map_err(io_err)?;
        if !line.ends_with(b"\n") {
            self.writer.write_all(b"\n").map_err(io_err)?;
        }
        let mut reply = String::new();
        let n = self.reader.read_line(&mut reply).map_err(io_err)?;
        if n == 0 {
            return Err(ClientError::Protocol {
                path: self.path.clone(),
                msg: "the proxy closed the connection".into(),
            });
        }
        serde_json::from_str(&reply).map_err(|e| ClientError::Protocol {
            path: self.path.clone(),
            msg: format!("{e}: {}", evidence_core::error::excerpt(reply.trim_end())),
        })
    }

    fn call(&mut self, req: &Request) -> std::result::Result<Response, ClientError> {
        let r = self.request(req)?;
        if r.ok {
            Ok(r)
        } else {
            Err(ClientError::Refused {
                op: r.op,
                msg: r.error.unwrap_or_default(),
            })
        }
    }

    /// Apply `fault` to `pair`, tagged `tag`, removed by the proxy after `ttl` if given.
    ///
    /// # Errors
    /// `Refused` for an unknown pair, a bad fault or an empty tag; `Io`/`Protocol`.
    pub fn apply(
        &mut self,
        pair: &str,
        fault: Fault,
        tag: &str,
        ttl: Option<Duration>,
    ) -> std::result::Result<Applied, ClientError> {
        let ttl_ms = ttl.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let r = self.call(&Request::Apply {
            pair: pair.to_string(),
            fault,
            tag: tag.to_string(),
            ttl_ms,
        })?;
        Ok(Applied {
            id: r.id.ok_or_else(|| ClientError::Protocol {
                path: self.path.clone(),
                msg: "apply reply without id".into(),
            })?,
            ts_ns: r.ts_ns,
            expires_ts_ns: r.expires_ts_ns,
            reset_connections: r.reset_connections.unwrap_or(0),
        })
    }

    /// Remove the faults matching all the given selectors; returns what was removed and when.
    ///
    /// # Errors
    /// `Refused` when no selector is given; `Io`/`Protocol`.
    pub fn clear(
        &mut self,
        id: Option<u64>,
        tag: Option<&str>,
        pair: Option<&str>,
    ) -> std::result::Result<(i64, Vec<FaultInfo>), ClientError> {
        let r = self.call(&Request::Clear {
            id,
            tag: tag.map(str::to_string),
            pair: pair.map(str::to_string),
        })?;
        Ok((r.ts_ns, r.cleared.unwrap_or_default()))
    }

    /// Remove every fault tagged `tag`.
    ///
    /// # Errors
    /// As [`Client::clear`].
    pub fn clear_tag(
        &mut self,
        tag: &str,
    ) -> std::result::Result<(i64, Vec<FaultInfo>), ClientError> {
        self.clear(None, Some(tag), None)
    }

    /// Remove the fault `id`.
    ///
    /// # Errors
    /// As [`Client::clear`].
    pub fn clear_id(&mut self, id: u64) -> std::result::Result<(i64, Vec<FaultInfo>), ClientError> {
        self.clear(Some(id), None, None)
    }

    /// Push the expiry of every fault tagged `tag` to now + `ttl` (renew the dead-man lease);
    /// returns when, and the faults renewed.
    ///
    /// # Errors
    /// `Refused` for a zero or too long TTL; `Io`/`Protocol`.
    pub fn renew_tag(
        &mut self,
        tag: &str,
        ttl: Duration,
    ) -> std::result::Result<(i64, Vec<FaultInfo>), ClientError> {
        let r = self.call(&Request::Renew {
            id: None,
            tag: Some(tag.to_string()),
            pair: None,
            ttl_ms: u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX),
        })?;
        Ok((r.ts_ns, r.renewed.unwrap_or_default()))
    }

    /// The active faults.
    ///
    /// # Errors
    /// `Io`/`Protocol`.
    pub fn list(&mut self) -> std::result::Result<Vec<FaultInfo>, ClientError> {
        Ok(self.call(&Request::List)?.faults.unwrap_or_default())
    }

    /// Remove every fault (whatever its tag).
    ///
    /// # Errors
    /// `Io`/`Protocol`.
    pub fn reset(&mut self) -> std::result::Result<(i64, Vec<FaultInfo>), ClientError> {
        let r = self.call(&Request::Reset)?;
        Ok((r.ts_ns, r.cleared.unwrap_or_default()))
    }

    /// Connections and bytes per pair.
    ///
    /// # Errors
    /// `Io`/`Protocol`.
    pub fn status(&mut self) -> std::result::Result<Vec<PairStatus>, ClientError> {
        Ok(self.call(&Request::Status)?.pairs.unwrap_or_default())
    }
}
