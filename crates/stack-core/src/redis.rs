//! A small synchronous Redis client: RESP2 over a `TcpStream` with connect, read and write
//! timeouts. One connection, one command at a time, no retries (a drill must measure the server,
//! not a client library's backoff).
//!
//! ```no_run
//! use std::time::Duration;
//! use stack_core::redis::RedisClient;
//! let mut c = RedisClient::connect("127.0.0.1:17001", Duration::from_millis(500))?;
//! c.auth(Some("secret"))?;
//! assert_eq!(c.ping()?, "PONG");
//! # Ok::<(), stack_core::redis::RedisError>(())
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `+OK`.
    Simple(String),
    /// `-ERR ...`: the server's error reply (not a transport error).
    Error(String),
    /// `:42`.
    Int(i64),
    /// `$n ...`, `None` for the null bulk string.
    Bulk(Option<Vec<u8>>),
    /// `*n ...`, `None` for the null array.
    Array(Option<Vec<Value>>),
}

impl Value {
    /// The reply as text: simple and bulk strings, integers; `None` for nulls, arrays and errors.
    #[must_use]
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Simple(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }

    /// The items of an array reply (empty for a null array or a non-array).
    #[must_use]
    pub fn items(&self) -> &[Value] {
        match self {
            Value::Array(Some(v)) => v,
            _ => &[],
        }
    }

    /// A short human rendering, for health reports (`PONG`, `(error) ERR ...`, `[a, b]`).
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Value::Simple(s) => s.clone(),
            Value::Error(e) => format!("(error) {e}"),
            Value::Int(i) => i.to_string(),
            Value::Bulk(None) | Value::Array(None) => "(nil)".into(),
            Value::Bulk(Some(b)) => String::from_utf8_lossy(b).into_owned(),
            Value::Array(Some(v)) => format!(
                "[{}]",
                v.iter().map(Value::describe).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// A transport, protocol or server error.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Connecting, reading or writing failed (including timeouts).
    #[error("{0}")]
    Io(String),
    /// The bytes were not RESP2.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The server answered with an error reply.
    #[error("(error) {0}")]
    Server(String),
    /// The reply had an unexpected shape.
    #[error("unexpected reply: {0}")]
    Unexpected(String),
}

/// Result of a Redis call.
pub type RedisResult<T> = Result<T, RedisError>;

/// One connection to a Redis server or sentinel.
#[derive(Debug)]
pub struct RedisClient {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

fn resolve(addr: &str) -> RedisResult<SocketAddr> {
    addr.to_socket_addrs()
        .map_err(|e| RedisError::Io(format!("resolve {addr}: {e}")))?
        .next()
        .ok_or_else(|| RedisError::Io(format!("resolve {addr}: no address")))
}

impl RedisClient {
    /// Connect to `addr` (`host:port`); `timeout` bounds the connect and every later read and
    /// write.
    pub fn connect(addr: &str, timeout: Duration) -> RedisResult<Self> {
        let sa = resolve(addr)?;
        let s = TcpStream::connect_timeout(&sa, timeout)
            .map_err(|e| RedisError::Io(format!("connect {sa}: {e}")))?;
        let _ = s.set_nodelay(true);
        s.set_read_timeout(Some(timeout))
            .and_then(|()| s.set_write_timeout(Some(timeout)))
            .map_err(|e| RedisError::Io(format!("{sa}: {e}")))?;
        let writer = s
            .try_clone()
            .map_err(|e| RedisError::Io(format!("{sa}: {e}")))?;
        Ok(RedisClient {
            addr: sa,
            reader: BufReader::new(s),
            writer,
        })
    }

    /// The peer address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Change the read/write timeout (e.g. before a blocking `WAIT`).
    pub fn set_timeout(&mut self, timeout: Duration) -> RedisResult<()> {
        self.writer
            .set_read_timeout(Some(timeout))
            .and_then(|()| self.writer.set_write_timeout(Some(timeout)))
            .map_err(|e| RedisError::Io(format!("{}: {e}", self.addr)))
    }

    /// Send one command and read its reply. A server error reply is returned as
    /// [`Value::Error`], not as `Err`; see [`RedisClient::cmd_ok`].
    pub fn cmd(&mut self, args: &[&[u8]]) -> RedisResult<Value> {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.writer
            .write_all(&buf)
            .map_err(|e| RedisError::Io(format!("send to {}: {e}", self.addr)))?;
        self.read_value()
    }

    /// [`RedisClient::cmd`] with an error reply turned into [`RedisError::Server`].
    pub fn cmd_ok(&mut self, args: &[&[u8]]) -> RedisResult<Value> {
        match self.cmd(args)? {
            Value::Error(e) => Err(RedisError::Server(e)),
            v => Ok(v),
        }
    }

    /// [`RedisClient::cmd_ok`] with string arguments.
    pub fn cmd_str(&mut self, args: &[&str]) -> RedisResult<Value> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        self.cmd_ok(&a)
    }

    /// `AUTH password` when a password is given; nothing otherwise.
    pub fn auth(&mut self, password: Option<&str>) -> RedisResult<()> {
        if let Some(p) = password {
            self.cmd_ok(&[b"AUTH", p.as_bytes()])?;
        }
        Ok(())
    }

    /// `PING`: the reply text (`PONG`).
    pub fn ping(&mut self) -> RedisResult<String> {
        text(self.cmd_str(&["PING"])?)
    }

    /// `ROLE`: the role name (`master`, `slave`, `sentinel`) and the full reply.
    pub fn role(&mut self) -> RedisResult<(String, Value)> {
        let v = self.cmd_str(&["ROLE"])?;
        let role = v
            .items()
            .first()
            .and_then(Value::as_text)
            .ok_or_else(|| RedisError::Unexpected(v.describe()))?;
        Ok((role, v))
    }

    /// `INFO section` parsed into `key:value` pairs (in order).
    pub fn info(&mut self, section: &str) -> RedisResult<Vec<(String, String)>> {
        let t = text(self.cmd_str(&["INFO", section])?)?;
        Ok(parse_info(&t))
    }

    /// `SENTINEL get-master-addr-by-name name`: `Some((ip, port))`, or `None` when unknown.
    pub fn sentinel_master_addr(&mut self, name: &str) -> RedisResult<Option<(String, u16)>> {
        let v = self.cmd_str(&["SENTINEL", "get-master-addr-by-name", name])?;
        let items = v.items();
        if items.len() < 2 {
            return Ok(None);
        }
        let ip = items[0].as_text().unwrap_or_default();
        let port = items[1]
            .as_text()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| RedisError::Unexpected(v.describe()))?;
        Ok(Some((ip, port)))
    }

    /// `SENTINEL CKQUORUM name`: `Ok(reply)` when the quorum is reachable (`+OK ...`); the
    /// server's refusal is `Err(RedisError::Server)`.
    pub fn sentinel_ckquorum(&mut self, name: &str) -> RedisResult<String> {
        text(self.cmd_str(&["SENTINEL", "CKQUORUM", name])?)
    }

    /// `SENTINEL FAILOVER name`.
    pub fn sentinel_failover(&mut self, name: &str) -> RedisResult<String> {
        text(self.cmd_str(&["SENTINEL", "FAILOVER", name])?)
    }

    /// `SENTINEL REPLICAS name`: one field map per replica.
    pub fn sentinel_replicas(&mut self, name: &str) -> RedisResult<Vec<Vec<(String, String)>>> {
        let v = self.cmd_str(&["SENTINEL", "REPLICAS", name])?;
        Ok(v.items().iter().map(pairs).collect())
    }

    /// `SET key value`.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> RedisResult<()> {
        self.cmd_ok(&[b"SET", key, value]).map(|_| ())
    }

    /// `GET key`.
    pub fn get(&mut self, key: &[u8]) -> RedisResult<Option<Vec<u8>>> {
        match self.cmd_ok(&[b"GET", key])? {
            Value::Bulk(b) => Ok(b),
            v => Err(RedisError::Unexpected(v.describe())),
        }
    }

    /// `INCR key`.
    pub fn incr(&mut self, key: &[u8]) -> RedisResult<i64> {
        int(self.cmd_ok(&[b"INCR", key])?)
    }

    /// `WAIT numreplicas timeout_ms`: how many replicas acknowledged.
    pub fn wait(&mut self, replicas: u32, timeout_ms: u64) -> RedisResult<i64> {
        int(self.cmd_str(&["WAIT", &replicas.to_string(), &timeout_ms.to_string()])?)
    }

    /// `CLIENT PAUSE ms WRITE`.
    pub fn client_pause_write(&mut self, ms: u64) -> RedisResult<()> {
        self.cmd_str(&["CLIENT", "PAUSE", &ms.to_string(), "WRITE"])
            .map(|_| ())
    }

    /// `REPLICAOF host port`, or `REPLICAOF NO ONE` for `None`.
    pub fn replicaof(&mut self, primary: Option<(&str, u16)>) -> RedisResult<()> {
        match primary {
            Some((h, p)) => self.cmd_str(&["REPLICAOF", h, &p.to_string()]),
            None => self.cmd_str(&["REPLICAOF", "NO", "ONE"]),
        }
        .map(|_| ())
    }

    /// `CONFIG SET key value`.
    pub fn config_set(&mut self, key: &str, value: &str) -> RedisResult<()> {
        self.cmd_str(&["CONFIG", "SET", key, value]).map(|_| ())
    }

    fn read_line(&mut self) -> RedisResult<String> {
        let mut line = Vec::new();
        let n = self
            .reader
            .read_until(b'\n', &mut line)
            .map_err(|e| RedisError::Io(format!("read from {}: {e}", self.addr)))?;
        if n == 0 {
            return Err(RedisError::Io(format!(
                "read from {}: connection closed",
                self.addr
            )));
        }
        if !line.ends_with(b"\r\n") {
            return Err(RedisError::Protocol("line without CRLF".into()));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| RedisError::Protocol("line is not UTF-8".into()))
    }

    fn read_value(&mut self) -> RedisResult<Value> {
        let line = self.read_line()?;
        let (tag, rest) = line.split_at(line.len().min(1));
        let num = |s: &str| -> RedisResult<i64> {
            s.parse()
                .map_err(|_| RedisError::Protocol(format!("bad length {s:?}")))
        };
        match tag {
            "+" => Ok(Value::Simple(rest.to_string())),
            "-" => Ok(Value::Error(rest.to_string())),
            ":" => Ok(Value::Int(num(rest)?)),
            "$" => {
                let n = num(rest)?;
                if n < 0 {
                    return Ok(Value::Bulk(None));
                }
                let n = usize::try_from(n).map_err(|_| RedisError::Protocol("length".into()))?;
                let mut b = vec![0u8; n + 2];
                self.reader
                    .read_exact(&mut b)
                    .map_err(|e| RedisError::Io(format!("read from {}: {e}", self.addr)))?;
                b.truncate(n);
                Ok(Value::Bulk(Some(b)))
            }
            "*" => {
                let n = num(rest)?;
                if n < 0 {
                    return Ok(Value::Array(None));
                }
                let mut v = Vec::new();
                for _ in 0..n {
                    v.push(self.read_value()?);
                }
                Ok(Value::Array(Some(v)))
            }
            _ => Err(RedisError::Protocol(format!("unknown reply {line:?}"))),
        }
    }
}

fn text(v: Value) -> RedisResult<String> {
    v.as_text()
        .ok_or_else(|| RedisError::Unexpected(v.describe()))
}

fn int(v: Value) -> RedisResult<i64> {
    match v {
        Value::Int(i) => Ok(i),
        v => Err(RedisError::Unexpected(v.describe())),
    }
}

/// A flat `[k1, v1, k2, v2, ...]` array as pairs.
fn pairs(v: &Value) -> Vec<(String, String)> {
    v.items()
        .chunks(2)
        .filter_map(|c| Some((c.first()?.as_text()?, c.get(1)?.as_text()?)))
        .collect()
}

/// Parse an `INFO` reply into `key:value` pairs, skipping `# Section` lines and blanks.
#[must_use]
pub fn parse_info(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.trim_end().split_once(':')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// The value of `key` in parsed `INFO` pairs.
#[must_use]
pub fn info_get<'a>(info: &'a [(String, String)], key: &str) -> Option<&'a str> {
    info.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_parsed() {
        let i = parse_info("# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n\r\n");
        assert_eq!(info_get(&i, "role"), Some("slave"));
        assert_eq!(info_get(&i, "master_link_status"), Some("up"));
    }
}
