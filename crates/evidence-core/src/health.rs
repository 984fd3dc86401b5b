//! Health checks as steps: a TCP connect, an HTTP GET expecting a status (and optionally a body
//! substring), or a shell command; retried until a deadline, with attempts, duration and the last
//! error reported.
//!
//! The HTTP client is a minimal HTTP/1.1 client over `std::net::TcpStream` (`GET`, `Connection:
//! close`, body read to EOF or `Content-Length`; no TLS, no chunked decoding, no redirects). It is
//! meant for local health endpoints such as `http://127.0.0.1:8080/health`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::{EvidenceError, Result};
use crate::process::{RunOptions, run_shell};
use crate::signals;
use crate::time::now_ns;

/// One health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Check {
    /// TCP connect to `host:port`.
    Tcp {
        /// `host:port`.
        tcp: String,
    },
    /// HTTP GET `url`, expecting `expect_status` (default 200) and, when given, a body containing
    /// `body_contains`.
    Http {
        /// `http://host:port/path`.
        http: String,
        /// Expected status code (default 200).
        #[serde(default = "default_status")]
        expect_status: u16,
        /// A substring the body must contain.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body_contains: Option<String>,
    },
    /// A shell command (`sh -c`) that must exit 0.
    Command {
        /// The command.
        command: String,
    },
}

fn default_status() -> u16 {
    200
}

impl Check {
    /// An HTTP check expecting 200.
    #[must_use]
    pub fn http(url: &str) -> Check {
        Check::Http {
            http: url.to_string(),
            expect_status: 200,
            body_contains: None,
        }
    }

    /// A short description: `tcp 127.0.0.1:80`, `http GET <url> -> 200`, `command <cmd>`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Check::Tcp { tcp } => format!("tcp {tcp}"),
            Check::Http {
                http,
                expect_status,
                body_contains,
            } => match body_contains {
                Some(b) => format!("http GET {http} -> {expect_status} with body containing {b:?}"),
                None => format!("http GET {http} -> {expect_status}"),
            },
            Check::Command { command } => format!("command {command}"),
        }
    }

    /// Validate the check's shape (URL syntax, non-empty command); the error says what is wrong.
    pub fn validate(&self) -> std::result::Result<(), String> {
        match self {
            Check::Tcp { tcp } if tcp.trim().is_empty() => Err("tcp address is empty".into()),
            Check::Http { http, .. } => parse_url(http).map(|_| ()),
            Check::Command { command } if command.trim().is_empty() => {
                Err("command is empty".into())
            }
            _ => Ok(()),
        }
    }
}

/// How to retry a check.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// Give up after this long (measured from the first attempt).
    pub deadline: Duration,
    /// Pause between attempts.
    pub interval: Duration,
    /// Timeout of one attempt (connect, read, or command run).
    pub attempt_timeout: Duration,
    /// Environment for command checks.
    pub env: Vec<(String, String)>,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions {
            deadline: Duration::from_secs(10),
            interval: Duration::from_millis(100),
            attempt_timeout: Duration::from_secs(2),
            env: Vec::new(),
        }
    }
}

/// The result of a retried check.
#[derive(Debug, Clone)]
pub struct HealthOutcome {
    /// True when the awaited condition was reached before the deadline.
    pub passed: bool,
    /// Number of attempts made.
    pub attempts: u32,
    /// Monotonic time from the first attempt to the deciding one (or to the deadline).
    pub duration: Duration,
    /// Monotonic instant at which the deciding attempt finished.
    pub decided_at: Instant,
    /// Wall-clock epoch ns when the first attempt started.
    pub started_ns: i64,
    /// Detail of the last attempt: what was seen (status and body excerpt) or the error.
    pub last_detail: String,
    /// The error of the last failing attempt, if any.
    pub last_error: Option<String>,
}

/// One attempt: `Ok(detail)` when healthy, `Err(reason)` when not.
pub fn probe_once(
    check: &Check,
    timeout: Duration,
    env: &[(String, String)],
) -> std::result::Result<String, String> {
    match check {
        Check::Tcp { tcp } => {
            let addr = resolve(tcp)?;
            TcpStream::connect_timeout(&addr, timeout)
                .map(|_| format!("connected to {addr}"))
                .map_err(|e| format!("connect {addr}: {e}"))
        }
        Check::Http {
            http,
            expect_status,
            body_contains,
        } => {
            let resp = http_get(http, timeout)?;
            let excerpt: String = resp.body.chars().take(200).collect();
            let seen = format!("status {} body {:?}", resp.status, excerpt.trim());
            if resp.status != *expect_status {
                return Err(format!("expected status {expect_status}, got {seen}"));
            }
            if let Some(b) = body_contains
                && !resp.body.contains(b.as_str())
            {
                return Err(format!("body lacks {b:?}: {seen}"));
            }
            Ok(seen)
        }
        Check::Command { command } => {
            let opts = RunOptions {
                timeout,
                kill_grace: Duration::from_millis(500),
                capture_limit: 2048,
                env: env.to_vec(),
                cwd: None,
            };
            let o = run_shell(command, &opts).map_err(|e| e.to_string())?;
            let tail = last_line(&o.stdout_tail, &o.stderr_tail);
            if o.success() {
                Ok(format!("exit 0{tail}"))
            } else {
                Err(format!("{}{tail}", o.describe()))
            }
        }
    }
}

fn last_line(out: &str, err: &str) -> String {
    let pick = |s: &str| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(str::to_string)
    };
    pick(err)
        .or_else(|| pick(out))
        .map(|l| format!(": {}", l.chars().take(200).collect::<String>()))
        .unwrap_or_default()
}

/// Retry `check` until it passes or the deadline passes. `Err(Interrupted)` when a signal arrives.
pub fn wait_healthy(check: &Check, opts: &HealthOptions) -> Result<HealthOutcome> {
    wait_for(check, opts, true)
}

/// Retry `check` until it FAILS (to detect an injected failure) or the deadline passes. `passed`
/// is true when a failure was observed.
pub fn wait_unhealthy(check: &Check, opts: &HealthOptions) -> Result<HealthOutcome> {
    wait_for(check, opts, false)
}

fn wait_for(check: &Check, opts: &HealthOptions, want_healthy: bool) -> Result<HealthOutcome> {
    let started_ns = now_ns();
    let start = Instant::now();
    let end = start + opts.deadline;
    let mut attempts = 0;
    loop {
        signals::check()?;
        attempts += 1;
        let r = probe_once(check, opts.attempt_timeout, &opts.env);
        let now = Instant::now();
        let healthy = r.is_ok();
        let (last_detail, last_error) = match r {
            Ok(d) => (d, None),
            Err(e) => (e.clone(), Some(e)),
        };
        if healthy == want_healthy || now >= end {
            return Ok(HealthOutcome {
                passed: healthy == want_healthy,
                attempts,
                duration: now.saturating_duration_since(start),
                decided_at: now,
                started_ns,
                last_detail,
                last_error,
            });
        }
        let pause = opts.interval.min(end.saturating_duration_since(now));
        signals::sleep(pause)?;
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Body (lossy UTF-8).
    pub body: String,
}

/// `GET url` with a timeout for connect and for each read. Errors are human text.
pub fn http_get(url: &str, timeout: Duration) -> std::result::Result<HttpResponse, String> {
    let (hostport, path) = parse_url(url)?;
    let addr = resolve(&hostport)?;
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: ctp-ops-health\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let mut buf = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 1 << 20 {
                    return Err("response larger than 1 MiB".into());
                }
                if let Some(done) = complete_length(&buf)
                    && buf.len() >= done
                {
                    break;
                }
            }
            Err(e) => return Err(format!("read from {addr}: {e}")),
        }
        if Instant::now() >= deadline {
            return Err(format!("read from {addr}: timed out"));
        }
    }
    parse_response(&buf)
}

fn header_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn complete_length(buf: &[u8]) -> Option<usize> {
    let end = header_end(buf)?;
    let head = String::from_utf8_lossy(&buf[..end]);
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())?
            .map(|n| end + n)
    })
}

fn parse_response(buf: &[u8]) -> std::result::Result<HttpResponse, String> {
    if buf.is_empty() {
        return Err("empty response (connection closed)".into());
    }
    let end = header_end(buf).ok_or("no end of headers in the response")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let status_line = head.lines().next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x status line: {status_line:?}"));
    }
    let status = parts
        .next()
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line: {status_line:?}"))?;
    Ok(HttpResponse {
        status,
        body: String::from_utf8_lossy(&buf[end..]).into_owned(),
    })
}

/// Split `http://host:port/path` into (`host:port`, `/path`). Only `http` is supported.
pub fn parse_url(url: &str) -> std::result::Result<(String, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported, found {url:?}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if hostport.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    let hostport = if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    Ok((hostport, path.to_string()))
}

fn resolve(hostport: &str) -> std::result::Result<SocketAddr, String> {
    hostport
        .to_socket_addrs()
        .map_err(|e| format!("resolve {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolve {hostport}: no address"))
}

/// Validate every check of a list; the error names the index.
pub fn validate_all(checks: &[Check], what: &str) -> Result<()> {
    for (i, c) in checks.iter().enumerate() {
        c.validate()
            .map_err(|e| EvidenceError::usage(format!("{what}[{i}]: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn serve(responses: Vec<&'static str>) -> (String, Arc<AtomicU32>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let hits = Arc::new(AtomicU32::new(0));
        let h = Arc::clone(&hits);
        std::thread::spawn(move || {
            for (i, s) in l.incoming().enumerate() {
                let Ok(mut s) = s else { continue };
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b);
                h.fetch_add(1, Ordering::SeqCst);
                let r = responses[i.min(responses.len() - 1)];
                let _ = s.write_all(r.as_bytes());
            }
        });
        (format!("http://{addr}/health"), hits)
    }

    #[test]
    fn http_retries_until_status_and_body() {
        let (url, hits) = serve(vec![
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nfail",
            "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{\"version\":\"1\"",
            "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n{\"version\":\"v1\"",
        ]);
        let check = Check::Http {
            http: url,
            expect_status: 200,
            body_contains: Some("\"v1\"".into()),
        };
        let opts = HealthOptions {
            interval: Duration::from_millis(5),
            ..HealthOptions::default()
        };
        let o = wait_healthy(&check, &opts).unwrap();
        assert!(o.passed, "{o:?}");
        assert_eq!(o.attempts, 3);
        assert_eq!(hits.load(Ordering::SeqCst), 3);
        assert!(o.last_error.is_none());
    }

    #[test]
    fn unhealthy_is_detected_and_deadline_reported() {
        let (url, _) = serve(vec!["HTTP/1.1 503 Service Unavailable\r\n\r\n"]);
        let check = Check::http(&url);
        let o = wait_unhealthy(&check, &HealthOptions::default()).unwrap();
        assert!(o.passed);
        assert_eq!(o.attempts, 1);
        let opts = HealthOptions {
            deadline: Duration::from_millis(200),
            interval: Duration::from_millis(20),
            ..HealthOptions::default()
        };
        let o = wait_healthy(&check, &opts).unwrap();
        assert!(!o.passed);
        assert!(o.attempts >= 2, "{o:?}");
        assert!(o.last_error.unwrap().contains("expected status 200"));
    }

    #[test]
    fn tcp_and_command_checks() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        assert!(
            probe_once(
                &Check::Tcp { tcp: addr.clone() },
                Duration::from_secs(1),
                &[]
            )
            .is_ok()
        );
        drop(l);
        assert!(probe_once(&Check::Tcp { tcp: addr }, Duration::from_secs(1), &[]).is_err());
        let env = vec![("X_EXPECT".to_string(), "yes".to_string())];
        let ok = Check::Command {
            command: "test \"$X_EXPECT\" = yes".into(),
        };
        assert!(probe_once(&ok, Duration::from_secs(5), &env).is_ok());
        let bad = Check::Command {
            command: "echo nope >&2; exit 3".into(),
        };
        assert_eq!(
            probe_once(&bad, Duration::from_secs(5), &env).unwrap_err(),
            "exit 3: nope"
        );
    }

    #[test]
    fn urls_and_yaml_shapes() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/health").unwrap(),
            ("127.0.0.1:8080".into(), "/health".into())
        );
        assert_eq!(
            parse_url("http://localhost").unwrap(),
            ("localhost:80".into(), "/".into())
        );
        assert!(parse_url("https://x/").is_err());
        let c: Check =
            serde_json::from_str(r#"{"http":"http://a:1/h","body_contains":"v1"}"#).unwrap();
        assert_eq!(
            c,
            Check::Http {
                http: "http://a:1/h".into(),
                expect_status: 200,
                body_contains: Some("v1".into())
            }
        );
        let c: Check = serde_json::from_str(r#"{"command":"true"}"#).unwrap();
        assert!(
            serde_json::from_str::<Check>(r#"{"http":"http://a:1/h","expect_stauts":200}"#)
                .is_err()
        );
        assert!(matches!(c, Check::Command { .. }));
    }
}
