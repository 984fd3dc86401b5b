//! What the proxy forwards (pairs) and what it can do to the traffic (faults).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use serde::{Deserialize, Serialize};

/// Which way the traffic goes, seen from the client: `upstream` is client → server, `downstream`
/// is server → client (Toxiproxy's naming).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Client → server.
    Upstream,
    /// Server → client.
    Downstream,
    /// Both ways (the default).
    #[default]
    Both,
}

impl Direction {
    /// True when a fault with this direction acts on traffic flowing `way`.
    #[must_use]
    pub fn covers(self, way: Way) -> bool {
        matches!(
            (self, way),
            (Direction::Both, _)
                | (Direction::Upstream, Way::Upstream)
                | (Direction::Downstream, Way::Downstream)
        )
    }
}

/// One of the two data flows of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Client → server.
    Upstream,
    /// Server → client.
    Downstream,
}

impl Way {
    /// Both flows, in a fixed order.
    pub const ALL: [Way; 2] = [Way::Upstream, Way::Downstream];

    /// The opposite flow.
    #[must_use]
    pub fn other(self) -> Way {
        match self {
            Way::Upstream => Way::Downstream,
            Way::Downstream => Way::Upstream,
        }
    }

    /// `up` or `down`.
    #[must_use]
    pub fn short(self) -> &'static str {
        match self {
            Way::Upstream => "up",
            Way::Downstream => "down",
        }
    }
}

/// How a `stall` fault rolls its probability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StallPer {
    /// Once per connection and direction, on its first chunk while the fault is active (default).
    #[default]
    Connection,
    /// Once per chunk (one `read` from the socket, at most 64 KiB).
    Chunk,
}

/// A fault, as sent in an `apply` request (`"type"` selects the variant). Unknown fields are
/// rejected so a misspelt parameter never silently becomes a default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Fault {
    /// Abort every existing connection of the pair with an RST to both peers (SO_LINGER 0), and
    /// answer every new connection with an RST while the fault is active. Acts on whole
    /// connections, so `direction` must be `both`.
    Reset {
        /// Must be `both`.
        #[serde(default)]
        direction: Direction,
    },
    /// Hold the connections: forward nothing in `direction` (data already read is kept and
    /// delivered in order once the fault is gone, as TCP would retransmit it). New connections are
    /// held unconnected until the fault is gone.
    Blackhole {
        /// Which flow is held.
        #[serde(default)]
        direction: Direction,
    },
    /// Delay each chunk by `delay_ms` plus a uniform random `-jitter_ms..=+jitter_ms` (never below
    /// zero), preserving the order of the bytes.
    Latency {
        /// Which flow is delayed.
        #[serde(default)]
        direction: Direction,
        /// Base delay per chunk, milliseconds.
        delay_ms: u64,
        /// Uniform jitter around the delay, milliseconds.
        #[serde(default)]
        jitter_ms: u64,
    },
    /// Limit each connection's flow to `bytes_per_sec` (token bucket, burst of 1/20 s).
    Bandwidth {
        /// Which flow is limited.
        #[serde(default)]
        direction: Direction,
        /// Rate in bytes per second (> 0).
        bytes_per_sec: u64,
    },
    /// With `probability`, hold a chunk for `duration_ms` (or, without it, for as long as the fault
    /// is active). `per` says whether the roll happens once per connection or for every chunk.
    Stall {
        /// Which flow stalls.
        #[serde(default)]
        direction: Direction,
        /// Probability in 0..=1.
        probability: f64,
        /// `connection` (default) or `chunk`.
        #[serde(default)]
        per: StallPer,
        /// How long a stall lasts; absent: until the fault is removed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
    },
}

/// The longest delay, stall or TTL accepted (one day): a guard against unit mistakes.
pub const MAX_MS: u64 = 86_400_000;

impl Fault {
    /// The fault's direction.
    #[must_use]
    pub fn direction(&self) -> Direction {
        match self {
            Fault::Reset { direction }
            | Fault::Blackhole { direction }
            | Fault::Latency { direction, .. }
            | Fault::Bandwidth { direction, .. }
            | Fault::Stall { direction, .. } => *direction,
        }
    }

    /// The fault's type name as in the protocol.
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self {
            Fault::Reset { .. } => "reset",
            Fault::Blackhole { .. } => "blackhole",
            Fault::Latency { .. } => "latency",
            Fault::Bandwidth { .. } => "bandwidth",
            Fault::Stall { .. } => "stall",
        }
    }

    /// Check the parameters' ranges.
    ///
    /// # Errors
    /// A [`FaultError`] naming the bad field.
    pub fn validate(&self) -> Result<(), FaultError> {
        match self {
            Fault::Reset { direction } if *direction != Direction::Both => {
                Err(FaultError::ResetDirection)
            }
            Fault::Latency {
                delay_ms,
                jitter_ms,
                ..
            } => {
                if *delay_ms > MAX_MS || *jitter_ms > MAX_MS {
                    Err(FaultError::LatencyTooLong)
                } else {
                    Ok(())
                }
            }
            Fault::Bandwidth { bytes_per_sec, .. } if *bytes_per_sec == 0 => {
                Err(FaultError::ZeroBandwidth)
            }
            Fault::Stall {
                probability,
                duration_ms,
                ..
            } => {
                if !probability.is_finite() || !(0.0..=1.0).contains(probability) {
                    Err(FaultError::StallProbability(*probability))
                } else if duration_ms.is_some_and(|d| d > MAX_MS) {
                    Err(FaultError::StallTooLong)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }
}

/// A fault whose parameters are out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    /// A reset is of whole connections.
    #[error("reset: direction: expected both (a reset aborts whole connections)")]
    ResetDirection,
    /// Delay or jitter above [`MAX_MS`].
    #[error("latency: delay_ms/jitter_ms: expected at most {MAX_MS}")]
    LatencyTooLong,
    /// A zero rate.
    #[error("bandwidth: bytes_per_sec: expected > 0 (use blackhole to stop a flow)")]
    ZeroBandwidth,
    /// A probability outside 0..=1.
    #[error("stall: probability: expected 0..=1, found {0}")]
    StallProbability(f64),
    /// A stall above [`MAX_MS`].
    #[error("stall: duration_ms: expected at most {MAX_MS}")]
    StallTooLong,
}

/// A `--pair` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// Not `NAME=LISTEN_ADDR,UPSTREAM_ADDR`.
    #[error("pair {0:?}: expected NAME=LISTEN_ADDR,UPSTREAM_ADDR")]
    Shape(String),
    /// A bad name.
    #[error("pair {pair:?}: name: expected letters, digits, '-', '_' or '.', found {name:?}")]
    Name {
        /// The pair as given.
        pair: String,
        /// The name.
        name: String,
    },
    /// A bad listen address.
    #[error("pair {pair:?}: listen: {source}")]
    Listen {
        /// The pair as given.
        pair: String,
        /// Why.
        #[source]
        source: AddrError,
    },
    /// A bad upstream address.
    #[error("pair {pair:?}: upstream: {source}")]
    Upstream {
        /// The pair as given.
        pair: String,
        /// Why.
        #[source]
        source: AddrError,
    },
}

/// An address that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AddrError {
    /// `0.0.0.0` or `[::]` for a listen address.
    #[error("expected a loopback or explicit interface address, found the wildcard {0:?}")]
    Wildcard(String),
    /// Not `HOST:PORT`, or the host does not resolve.
    #[error("expected HOST:PORT, found {text:?} ({source})")]
    Unresolvable {
        /// The address as given.
        text: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// Resolves to nothing.
    #[error("{0:?} resolves to no address")]
    NoAddress(String),
    /// Port 0 where a real port is needed.
    #[error("expected a port in 1..65535, found {0:?}")]
    PortZero(String),
}

/// One forwarded pair: connections accepted on `listen` are forwarded to `upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairSpec {
    /// Name used in the control protocol (`trader`, `md`, ...).
    pub name: String,
    /// Where the proxy listens (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Where it connects, resolved once at start.
    pub upstream: SocketAddr,
    /// The upstream as the user wrote it.
    pub upstream_text: String,
}

impl fmt::Display for PairSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={},{}", self.name, self.listen, self.upstream_text)
    }
}

/// Parse `NAME=LISTEN_ADDR,UPSTREAM_ADDR`. `LISTEN_ADDR` is `PORT` (on 127.0.0.1) or `HOST:PORT`;
/// an unspecified address (`0.0.0.0`, `[::]`) is refused: the proxy binds only to what it is told.
///
/// # Errors
/// A [`PairError`] naming the part that is wrong.
pub fn parse_pair(s: &str) -> Result<PairSpec, PairError> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| PairError::Shape(s.to_string()))?;
    let name = name.trim();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(PairError::Name {
            pair: s.to_string(),
            name: name.to_string(),
        });
    }
    let (listen, upstream) = rest
        .split_once(',')
        .ok_or_else(|| PairError::Shape(s.to_string()))?;
    let listen = parse_listen(listen.trim()).map_err(|source| PairError::Listen {
        pair: s.to_string(),
        source,
    })?;
    let upstream_text = upstream.trim().to_string();
    let upstream = resolve(&upstream_text, false).map_err(|source| PairError::Upstream {
        pair: s.to_string(),
        source,
    })?;
    Ok(PairSpec {
        name: name.to_string(),
        listen,
        upstream,
        upstream_text,
    })
}

fn parse_listen(s: &str) -> Result<SocketAddr, AddrError> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    let a = resolve(s, true)?;
    if a.ip().is_unspecified() {
        return Err(AddrError::Wildcard(s.to_string()));
    }
    Ok(a)
}

fn resolve(s: &str, allow_port0: bool) -> Result<SocketAddr, AddrError> {
    let a = if let Ok(a) = s.parse::<SocketAddr>() {
        a
    } else {
        s.to_socket_addrs()
            .map_err(|source| AddrError::Unresolvable {
                text: s.to_string(),
                source,
            })?
            .next()
            .ok_or_else(|| AddrError::NoAddress(s.to_string()))?
    };
    if a.port() == 0 && !allow_port0 {
        return Err(AddrError::PortZero(s.to_string()));
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        let p = parse_pair("trader=0,127.0.0.1:40001").unwrap();
        assert_eq!(p.name, "trader");
        assert_eq!(p.listen.to_string(), "127.0.0.1:0");
        assert_eq!(p.upstream.to_string(), "127.0.0.1:40001");
        let p = parse_pair("md=127.0.0.2:5000,localhost:41").unwrap();
        assert_eq!(p.listen.to_string(), "127.0.0.2:5000");
        for bad in [
            "trader",
            "=0,127.0.0.1:1",
            "a b=0,127.0.0.1:1",
            "t=0",
            "t=0.0.0.0:5,127.0.0.1:1",
            "t=x:y,127.0.0.1:1",
            "t=0,127.0.0.1:0",
            "t=70000,127.0.0.1:1",
        ] {
            assert!(parse_pair(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn faults_parse_strictly() {
        let f: Fault =
            serde_json::from_str(r#"{"type":"latency","delay_ms":5,"jitter_ms":1}"#).unwrap();
        assert_eq!(
            f,
            Fault::Latency {
                direction: Direction::Both,
                delay_ms: 5,
                jitter_ms: 1
            }
        );
        assert!(serde_json::from_str::<Fault>(r#"{"type":"latency","delay":5}"#).is_err());
        assert!(serde_json::from_str::<Fault>(r#"{"type":"flood"}"#).is_err());
        let f: Fault = serde_json::from_str(r#"{"type":"reset","direction":"upstream"}"#).unwrap();
        assert!(f.validate().is_err());
        let f: Fault = serde_json::from_str(r#"{"type":"stall","probability":1.5}"#).unwrap();
        assert!(f.validate().is_err());
        let f: Fault = serde_json::from_str(r#"{"type":"bandwidth","bytes_per_sec":0}"#).unwrap();
        assert!(f.validate().is_err());
        assert!(Direction::Both.covers(Way::Upstream));
        assert!(!Direction::Downstream.covers(Way::Upstream));
    }
}
