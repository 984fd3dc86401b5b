//! Post alerts to Alertmanager's API v2 (`POST /api/v2/alerts`, a JSON list of postable alerts).
//! Unhealthy SLIs and services fire (no `endsAt`: Alertmanager resolves them after its
//! `resolve_timeout` unless posted again); healthy ones are posted with `endsAt` = now, which
//! resolves an alert a previous run raised. The labels identify an alert: `alertname` (the code),
//! `severity`, `sli`, `environment`, `source="ctp-ops"`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use evidence_core::time::{format_utc, now_ns};
use evidence_core::{EvidenceError, Result};
use serde::Serialize;
use serde_json::json;

use crate::policy::{Alert, Assessed};

/// What was posted (goes into the alert report's provenance).
#[derive(Debug, Clone, Serialize)]
pub struct Posted {
    /// The endpoint.
    pub url: String,
    /// HTTP status.
    pub status: u16,
    /// Alerts posted firing.
    pub firing: usize,
    /// Alerts posted resolved.
    pub resolved: usize,
}

fn postable(a: &Alert, env: &str, starts: &str, ends: Option<&str>) -> serde_json::Value {
    let mut v = json!({
        "labels": {
            "alertname": a.code,
            "severity": a.severity,
            "sli": a.sli_name,
            "environment": env,
            "source": "ctp-ops",
        },
        "annotations": {"summary": a.message},
        "startsAt": starts,
    });
    if let Some(e) = ends {
        v["endsAt"] = json!(e);
    }
    v
}

/// Post the alerts of `assessed`; an HTTP status other than 200 is an error (exit 2).
pub fn post(
    base: &str,
    assessed: &[Assessed],
    env: &str,
    generated_ts_ns: i64,
    timeout: Duration,
) -> Result<Posted> {
    let now = now_ns();
    let starts_ns = if generated_ts_ns > 0 && generated_ts_ns < now {
        generated_ts_ns
    } else {
        now
    };
    let starts = format_utc(starts_ns);
    let ends = format_utc(now);
    let mut body = Vec::new();
    let mut firing = 0;
    let mut resolved = 0;
    for a in assessed {
        for al in &a.alerts {
            body.push(postable(al, env, &starts, None));
            firing += 1;
        }
        for al in &a.resolved {
            // endsAt must not precede startsAt.
            body.push(postable(al, env, &starts, Some(&ends)));
            resolved += 1;
        }
    }
    let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
    let payload = serde_json::to_vec(&body)
        .map_err(|e| EvidenceError::failed(format!("cannot serialise the alerts: {e}")))?;
    let status = http_post_json(&url, &payload, timeout)
        .map_err(|e| EvidenceError::failed(format!("alertmanager {url}: {e}")))?;
    if status.0 != 200 {
        return Err(EvidenceError::failed(format!(
            "alertmanager {url}: HTTP {}: {}",
            status.0,
            status.1.trim()
        )));
    }
    Ok(Posted {
        url,
        status: status.0,
        firing,
        resolved,
    })
}

/// `POST url` with a JSON body; returns (status, body). HTTP/1.1, `Connection: close`.
fn http_post_json(
    url: &str,
    body: &[u8],
    timeout: Duration,
) -> std::result::Result<(u16, String), String> {
    let (hostport, path) = evidence_core::health::parse_url(url)?;
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| format!("resolve {hostport}: {e}"))?
        .next()
        .ok_or_else(|| format!("resolve {hostport}: no address"))?;
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nUser-Agent: ctp-ops-alert-report\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())
        .and_then(|()| s.write_all(body))
        .map_err(|e| format!("send to {addr}: {e}"))?;
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > 1 << 20 {
                    return Err("response larger than 1 MiB".into());
                }
            }
            Err(e) => return Err(format!("read from {addr}: {e}")),
        }
        if Instant::now() >= deadline {
            return Err(format!("read from {addr}: timed out"));
        }
    }
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| format!("not an HTTP response: {status_line:?}"))?;
    Ok((status, body.to_string()))
}
