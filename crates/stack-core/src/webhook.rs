//! The local receiver Alertmanager posts to: a tiny HTTP/1.1 server that answers `GET` with 200 and
//! appends the JSON body of each `POST` as one line
//! `{"kind":"alertmanager_webhook","ts_ns":...,"path":...,"payload":{...}}` to a file. It runs until
//! killed (SIGTERM's default action); each line is written with one `write` call in append mode.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use evidence_core::{EvidenceError, Result};
use serde_json::{Value, json};

/// Serve on `listen` (`host:port`), appending to `out`. Returns only on a bind error.
pub fn serve(listen: &str, out: &Path) -> Result<()> {
    let l = TcpListener::bind(listen)
        .map_err(|e| EvidenceError::failed(format!("cannot listen on {listen}: {e}")))?;
    for conn in l.incoming() {
        let Ok(s) = conn else { continue };
        let _ = handle(s, out);
    }
    Ok(())
}

fn handle(s: TcpStream, out: &Path) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or("/").to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len.min(8 << 20)];
    r.read_exact(&mut body)?;
    let status = if method == "POST" {
        let payload: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        let rec = json!({
            "kind": "alertmanager_webhook",
            "ts_ns": evidence_core::time::now_ns(),
            "path": path,
            "payload": payload,
        });
        let mut line = rec.to_string();
        line.push('\n');
        let mut f = OpenOptions::new().create(true).append(true).open(out)?;
        f.write_all(line.as_bytes())?;
        "200 OK"
    } else if method == "GET" {
        "200 OK"
    } else {
        "405 Method Not Allowed"
    };
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n"
    )?;
    w.flush()
}

/// The notifications recorded in `file` (payloads in order); missing file = none.
pub fn read_notifications(file: &Path) -> Result<Vec<Value>> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(EvidenceError::io("cannot read", file, e)),
    };
    Ok(text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["payload"].clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_posts() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("alerts.jsonl");
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let o = out.clone();
        std::thread::spawn(move || serve(&addr.to_string(), &o));
        let body = r#"{"status":"firing","alerts":[{"labels":{"alertname":"X"}}]}"#;
        let mut s = loop {
            if let Ok(s) = TcpStream::connect(addr) {
                break s;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        write!(
            s,
            "POST /alerts HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        let n = read_notifications(&out).unwrap();
        assert_eq!(n[0]["alerts"][0]["labels"]["alertname"], "X");
    }
}
