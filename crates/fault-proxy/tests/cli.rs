//! fault-proxy end to end: the real binary on loopback, an echo upstream started by the test, the
//! control client of the library. Timing assertions are lower bounds only (robust under load).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup should panic"
)]

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fault_proxy::control::{Client, ClientError};
use fault_proxy::events::{ClearReason, Event};
use fault_proxy::spec::{Direction, Fault, StallPer};
use test_support::{run, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_fault-proxy");
const LONG: Duration = Duration::from_secs(15);

/// An echo server on 127.0.0.1:0, one thread per connection.
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                loop {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

struct Proxy {
    child: Child,
    dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    ready: Event,
    ready_line: String,
}

impl Proxy {
    /// Start the proxy with pair `t` → `upstream`, and wait for its ready line.
    fn start(upstream: SocketAddr) -> Proxy {
        let tmp = tempfile::tempdir().unwrap();
        let mut p = Proxy::start_in(upstream, tmp.path());
        p._tmp = Some(tmp);
        p
    }

    /// Start with its files in `dir` (which the caller keeps).
    fn start_in(upstream: SocketAddr, dir: &Path) -> Proxy {
        let mut child = Command::new(BIN)
            .arg("--pair")
            .arg(format!("t=0,{upstream}"))
            .arg("--control")
            .arg(dir.join("ctl.sock"))
            .arg("--event-log")
            .arg(dir.join("events.jsonl"))
            .arg("--ready-file")
            .arg(dir.join("ready.json"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(
            !line.is_empty(),
            "no ready line: {:?}",
            child.wait_with_output()
        );
        let ready: Event = serde_json::from_str(&line).unwrap();
        Proxy {
            child,
            dir: dir.to_path_buf(),
            _tmp: None,
            ready,
            ready_line: line,
        }
    }

    fn listen(&self) -> SocketAddr {
        let Event::Ready { pairs, .. } = &self.ready else {
            panic!("not a ready line: {:?}", self.ready)
        };
        pairs[0].listen.parse().unwrap()
    }

    fn sock(&self) -> PathBuf {
        self.dir.join("ctl.sock")
    }

    fn client(&self) -> Client {
        Client::connect(self.sock()).unwrap()
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.listen()).unwrap();
        s.set_read_timeout(Some(LONG)).unwrap();
        s
    }

    fn events(&self) -> Vec<Event> {
        events(&self.dir.join("events.jsonl"))
    }

    /// Send `sig`, then the exit code, stderr and the event log.
    fn stop(mut self, sig: nix::sys::signal::Signal) -> (Option<i32>, String, Vec<Event>) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap()),
            sig,
        )
        .unwrap();
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let ev = self.events();
        (status.code(), err, ev)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn events(path: &Path) -> Vec<Event> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> Duration {
    let t = Instant::now();
    s.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
    t.elapsed()
}

fn both(fault: fn(Direction) -> Fault) -> Fault {
    fault(Direction::Both)
}

#[test]
fn forwards_both_ways_reports_status_and_stops_cleanly() {
    let p = Proxy::start(echo_server());
    assert_eq!(
        std::fs::read_to_string(p.dir.join("ready.json")).unwrap(),
        p.ready_line
    );
    let Event::Ready { control, pairs, .. } = &p.ready else {
        panic!()
    };
    assert_eq!(Path::new(control), p.sock());
    assert_eq!(pairs[0].name, "t");
    assert!(pairs[0].listen.starts_with("127.0.0.1:"));
    assert_ne!(p.listen().port(), 0);

    let mut s = p.connect();
    roundtrip(&mut s, b"ping");
    // 1 MiB each way, writer and reader concurrently.
    let data: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
    let mut w = s.try_clone().unwrap();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || w.write_all(&d2).unwrap());
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == data, "echoed data differs");

    let mut c = p.client();
    let st = c.status().unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].name, "t");
    assert_eq!(st[0].connections_active, 1);
    assert_eq!(st[0].connections_total, 1);
    assert_eq!(st[0].bytes_upstream, 4 + 1_048_576);
    assert_eq!(st[0].bytes_downstream, 4 + 1_048_576);
    assert_eq!(st[0].faults, 0);
    assert!(c.list().unwrap().is_empty());

    // A half-close travels through: the echo server sees EOF and closes, we read EOF.
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    wait_until(LONG, "connection closed", || {
        c.status().unwrap()[0].connections_active == 0
    });

    let (code, err, ev) = p.stop(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "fault-proxy: stopped on SIGTERM\n");
    assert!(matches!(ev.first(), Some(Event::Ready { .. })), "{ev:?}");
    assert!(
        matches!(ev.last(), Some(Event::Stopped { signal, .. }) if signal == "SIGTERM"),
        "{ev:?}"
    );
}

/// An upstream that reads each connection to EOF, then answers with what it got and closes.
fn collector() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut got = Vec::new();
                if s.read_to_end(&mut got).is_ok() {
                    let _ = s.write_all(format!("got {} bytes: ", got.len()).as_bytes());
                    let _ = s.write_all(&got);
                }
            });
        }
    });
    addr
}

/// Small messages (the connection's one-thread phase), then a half-close: the answer the
/// upstream sends after our FIN still comes back, for every spin setting (0 = no spin).
#[test]
fn small_messages_and_a_half_close_with_or_without_spin() {
    for spin in ["0", "100"] {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .arg("--pair")
            .arg(format!("t=0,{}", collector()))
            .arg("--control")
            .arg(tmp.path().join("ctl.sock"))
            .args(["--spin-us", spin])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Ok(Event::Ready { pairs, .. }) = serde_json::from_str(&line) else {
            panic!("no ready line: {line:?}")
        };
        let mut s = TcpStream::connect(&pairs[0].listen).unwrap();
        s.set_read_timeout(Some(LONG)).unwrap();
        for m in [&b"one,"[..], b"two,", b"three"] {
            s.write_all(m).unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut back = String::new();
        s.read_to_string(&mut back).unwrap();
        assert_eq!(back, "got 13 bytes: one,two,three", "spin {spin}");
        let mut c = Client::connect(tmp.path().join("ctl.sock")).unwrap();
        wait_until(LONG, "connection closed", || {
            c.status().unwrap()[0].connections_active == 0
        });
        let st = &c.status().unwrap()[0];
        assert_eq!((st.bytes_upstream, st.bytes_downstream), (13, 27));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "fault-proxy: stopped on SIGTERM\n"
        );
    }
}

#[test]
fn reset_rsts_existing_connections_and_refuses_new_ones() {
    // The first upstream connection echoes one message, then reports how its next read ended.
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (mut u, _) = up.accept().unwrap();
        let mut buf = [0u8; 5];
        u.read_exact(&mut buf).unwrap();
        u.write_all(&buf).unwrap();
        tx.send(u.read(&mut buf).map_err(|e| e.kind())).unwrap();
        for s in up.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut b = [0u8; 64];
                while let Ok(n) = s.read(&mut b) {
                    if n == 0 || s.write_all(&b[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let p = Proxy::start(up_addr);
    let mut c = p.client();
    let mut s = p.connect();
    roundtrip(&mut s, b"hello");
    let before = evidence_core::time::now_ns();
    let a = c
        .apply(
            "t",
            both(|direction| Fault::Reset { direction }),
            "d1",
            None,
        )
        .unwrap();
    assert!(a.ts_ns >= before);
    assert_eq!(a.reset_connections, 1);
    assert_eq!(a.expires_ts_ns, None);
    let mut buf = [0u8; 16];
    let e = s.read(&mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}");
    // The upstream side got an RST too.
    assert_eq!(
        rx.recv_timeout(LONG).unwrap(),
        Err(ErrorKind::ConnectionReset)
    );

    // New connections: refused with an RST (connect may succeed at the TCP level first).
    match TcpStream::connect(p.listen()) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}"),
        Ok(mut s2) => {
            // Read without writing first: a write would consume the pending ECONNRESET.
            s2.set_read_timeout(Some(LONG)).unwrap();
            let r = s2.read(&mut buf);
            assert!(
                matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset),
                "expected ECONNRESET, got {r:?}"
            );
        }
    }
    wait_until(LONG, "refusal counted", || {
        c.status().unwrap()[0].connections_refused >= 1
    });
    let st = &c.status().unwrap()[0];
    assert_eq!(st.connections_active, 0);
    assert_eq!(st.faults, 1);

    let (_, cleared) = c.clear_tag("d1").unwrap();
    assert_eq!(cleared.len(), 1);
    let mut s3 = p.connect();
    roundtrip(&mut s3, b"back");

    let ev = p.events();
    assert!(ev.iter().any(|e| matches!(e,
        Event::Applied { id, ts_ns, reset_connections: 1, tag, .. } if *id == a.id && *ts_ns == a.ts_ns && tag == "d1")));
    assert!(ev.iter().any(
        |e| matches!(e, Event::Cleared { id, reason: ClearReason::Clear, .. } if *id == a.id)
    ));
}

#[test]
fn blackhole_holds_without_data_and_delivers_after_clear() {
    let p = Proxy::start(echo_server());
    let mut c = p.client();
    let mut s = p.connect();
    roundtrip(&mut s, b"a");
    c.apply(
        "t",
        both(|direction| Fault::Blackhole { direction }),
        "d1",
        None,
    )
    .unwrap();
    s.write_all(b"held").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let mut buf = [0u8; 16];
    let r = s.read(&mut buf);
    assert!(
        matches!(&r, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "blackholed connection returned {r:?}"
    );
    // A new connection is held too (accepted by the kernel, not forwarded).
    let mut s2 = p.connect();
    s2.write_all(b"new").unwrap();
    s2.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    assert!(s2.read(&mut buf).is_err());
    assert_eq!(c.status().unwrap()[0].bytes_upstream, 1);

    c.clear(None, None, Some("t")).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    s2.set_read_timeout(Some(LONG)).unwrap();
    let mut got = [0u8; 4];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"held");
    let mut got = [0u8; 3];
    s2.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"new");
}

#[test]
fn latency_adds_at_least_the_delay_and_keeps_order() {
    let p = Proxy::start(echo_server());
    let mut c = p.client();
    let mut s = p.connect();
    s.set_nodelay(true).unwrap();
    let fast = roundtrip(&mut s, b"warm");
    c.apply(
        "t",
        Fault::Latency {
            direction: Direction::Both,
            delay_ms: 120,
            jitter_ms: 20,
        },
        "d1",
        None,
    )
    .unwrap();
    let slow = roundtrip(&mut s, b"slow");
    // Two delayed hops of at least 100 ms each.
    assert!(
        slow >= Duration::from_millis(200),
        "{slow:?} (before {fast:?})"
    );
    // Many small writes with jitter come back complete and in order.
    let expected: Vec<u8> = (0..200u32).flat_map(|i| i.to_be_bytes()).collect();
    for chunk in expected.chunks(4) {
        s.write_all(chunk).unwrap();
    }
    let mut back = vec![0u8; expected.len()];
    s.read_exact(&mut back).unwrap();
    assert_eq!(back, expected);
    // A bulk transfer through the delay line arrives intact.
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 241) as u8).collect();
    let mut w = s.try_clone().unwrap();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || w.write_all(&d2).unwrap());
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).unwrap();
    writer.join().unwrap();
    assert!(back == data, "data through the delay line differs");
    c.clear_tag("d1").unwrap();
    roundtrip(&mut s, b"after");
}

#[test]
fn bandwidth_limit_bounds_throughput() {
    let p = Proxy::start(echo_server());
    let mut c = p.client();
    let mut s = p.connect();
    c.apply(
        "t",
        Fault::Bandwidth {
            direction: Direction::Upstream,
            bytes_per_sec: 200_000,
        },
        "d1",
        Some(Duration::from_secs(60)),
    )
    .unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    let t = Instant::now();
    let mut w = s.try_clone().unwrap();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || w.write_all(&d2).unwrap());
    let mut back = vec![0u8; data.len()];
    s.read_exact(&mut back).unwrap();
    let took = t.elapsed();
    writer.join().unwrap();
    assert!(back == data, "data differs");
    // 300 kB at 200 kB/s with a 10 kB burst: at least 1.45 s.
    assert!(took >= Duration::from_millis(1400), "{took:?}");
}

#[test]
fn stall_with_probability_one_holds_the_connection() {
    let p = Proxy::start(echo_server());
    let mut c = p.client();
    let mut s = p.connect();
    c.apply(
        "t",
        Fault::Stall {
            direction: Direction::Upstream,
            probability: 1.0,
            per: StallPer::Connection,
            duration_ms: Some(300),
        },
        "d1",
        None,
    )
    .unwrap();
    let took = roundtrip(&mut s, b"stalled");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // Per connection: rolled once, the next chunk goes through (no upper bound asserted).
    roundtrip(&mut s, b"again");
    // Probability 0 never stalls: the data still arrives.
    c.reset().unwrap();
    c.apply(
        "t",
        Fault::Stall {
            direction: Direction::Both,
            probability: 0.0,
            per: StallPer::Chunk,
            duration_ms: None,
        },
        "d1",
        None,
    )
    .unwrap();
    let kept = c.list().unwrap()[0].id;
    roundtrip(&mut s, b"never");
    // SIGINT: exit 0, and the fault still active is logged as removed by the shutdown.
    drop(c);
    let (code, err, ev) = p.stop(nix::sys::signal::Signal::SIGINT);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(err, "fault-proxy: stopped on SIGINT\n");
    assert!(
        ev.iter().any(|e| matches!(e,
        Event::Cleared { id, reason: ClearReason::Shutdown, .. } if *id == kept)),
        "{ev:?}"
    );
    assert!(matches!(ev.last(), Some(Event::Stopped { signal, .. }) if signal == "SIGINT"));
}

#[test]
fn ttl_expiry_removes_the_fault_by_itself() {
    let p = Proxy::start(echo_server());
    let mut c = p.client();
    let mut s = p.connect();
    let a = c
        .apply(
            "t",
            both(|direction| Fault::Blackhole { direction }),
            "d1",
            Some(Duration::from_millis(300)),
        )
        .unwrap();
    assert_eq!(a.expires_ts_ns, Some(a.ts_ns + 300_000_000));
    let listed = c.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].ttl_ms, Some(300));
    // Data sent now is held until the dead-man removes the fault.
    roundtrip(&mut s, b"x");
    let back_ns = evidence_core::time::now_ns();
    assert!(back_ns >= a.ts_ns + 300_000_000, "{back_ns} vs {a:?}");
    wait_until(LONG, "fault expired", || c.list().unwrap().is_empty());
    let ev = p.events();
    let cleared = ev
        .iter()
        .find_map(|e| match e {
            Event::Cleared {
                id, reason, ts_ns, ..
            } if *id == a.id => Some((*reason, *ts_ns)),
            _ => None,
        })
        .expect("a cleared event");
    assert_eq!(cleared.0, ClearReason::Expired);
    assert!(cleared.1 >= a.ts_ns + 300_000_000);
}

#[test]
fn clear_by_tag_removes_only_that_tag() {
    let p = Proxy::start(echo_server());
    let mut c = p.client();
    let lat = Fault::Latency {
        direction: Direction::Downstream,
        delay_ms: 1,
        jitter_ms: 0,
    };
    let a1 = c.apply("t", lat.clone(), "drill-a", None).unwrap();
    let a2 = c
        .apply(
            "t",
            Fault::Bandwidth {
                direction: Direction::Both,
                bytes_per_sec: 1_000_000,
            },
            "drill-a",
            None,
        )
        .unwrap();
    let b = c.apply("t", lat, "drill-b", None).unwrap();
    assert!(a1.id < a2.id && a2.id < b.id);
    let (_, cleared) = c.clear_tag("drill-a").unwrap();
    let mut ids: Vec<u64> = cleared.iter().map(|f| f.id).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![a1.id, a2.id]);
    let left = c.list().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].id, left[0].tag.as_str()), (b.id, "drill-b"));
    // Clearing again removes nothing, and says so.
    assert!(c.clear_tag("drill-a").unwrap().1.is_empty());
    assert_eq!(c.clear_id(b.id).unwrap().1.len(), 1);
    assert!(c.list().unwrap().is_empty());
}

fn refused<T: std::fmt::Debug>(r: Result<T, ClientError>) -> String {
    match r {
        Err(ClientError::Refused { msg, .. }) => msg,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn control_refuses_bad_requests_and_keeps_serving() {
    let p = Proxy::start(echo_server());
    let mut c = p.client();
    let blackhole = both(|direction| Fault::Blackhole { direction });
    let msg = refused(c.apply("nope", blackhole.clone(), "d", None));
    assert!(msg.contains("unknown pair \"nope\""), "{msg}");
    let msg = refused(c.apply("t", blackhole.clone(), "", None));
    assert!(msg.contains("tag"), "{msg}");
    let msg = refused(c.apply("t", blackhole, "d", Some(Duration::ZERO)));
    assert!(msg.contains("ttl_ms"), "{msg}");
    let msg = refused(c.apply(
        "t",
        Fault::Reset {
            direction: Direction::Upstream,
        },
        "d",
        None,
    ));
    assert!(msg.contains("direction"), "{msg}");
    let msg = refused(c.clear(None, None, None));
    assert!(msg.contains("expected id, tag or pair"), "{msg}");
    let r = c
        .request_line(
            br#"{"op":"apply","pair":"t","fault":{"type":"latency","delay":5},"tag":"d"}"#,
        )
        .unwrap();
    assert!(!r.ok);
    assert_eq!(r.op, "apply");
    assert!(r.error.unwrap().contains("unknown field `delay`"));
    let r = c.request_line(b"not json").unwrap();
    assert!(!r.ok);
    assert!(c.list().unwrap().is_empty());
}

#[test]
fn request_mode_prints_replies() {
    let p = Proxy::start(echo_server());
    let sock = p.sock();
    let sock = sock.to_str().unwrap();
    let apply = r#"{"op":"apply","pair":"t","fault":{"type":"latency","delay_ms":5},"tag":"cli","ttl_ms":60000}"#;
    let r = run(
        BIN,
        &[
            "--control",
            sock,
            "--request",
            apply,
            "--request",
            r#"{"op":"list"}"#,
        ],
        None,
        None,
    );
    r.code(0).stderr_is("");
    let lines: Vec<fault_proxy::control::Response> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].ok && lines[0].id.is_some());
    assert_eq!(lines[1].faults.as_ref().unwrap()[0].tag, "cli");
    let r = run(
        BIN,
        &["--control", sock, "--request", r#"{"op":"clear"}"#],
        None,
        None,
    );
    r.code(2)
        .stdout_has(r#""ok":false"#)
        .stderr_is("fault-proxy: warning: request refused: clear: expected id, tag or pair\n");
}

#[test]
fn bad_usage_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("c.sock");
    let sock = sock.to_str().unwrap();
    run(BIN, &["--control", sock], None, None)
        .code(2)
        .stdout_is("")
        .stderr_is(
            "fault-proxy: error: at least one --pair NAME=LISTEN_ADDR,UPSTREAM_ADDR is required\n",
        );
    run(BIN, &["--pair", "t=0,127.0.0.1:1"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("--control-socket <PATH>");
    run(BIN, &["--control", sock, "--pair", "bogus"], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("invalid value 'bogus' for '--pair <NAME=LISTEN,UPSTREAM>'");
    run(
        BIN,
        &["--control", sock, "--pair", "t=0.0.0.0:0,127.0.0.1:1"],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("wildcard");
    run(
        BIN,
        &[
            "--control",
            sock,
            "--pair",
            "t=0,127.0.0.1:1",
            "--pair",
            "t=0,127.0.0.1:2",
        ],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_is("fault-proxy: error: --pair: the name \"t\" is given twice\n");
    run(
        BIN,
        &[
            "--control",
            sock,
            "--pair",
            "t=0,127.0.0.1:1",
            "--spin-us",
            "20000",
        ],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("invalid value '20000' for '--spin-us <US>'");
    // Port in use.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let pair = format!("t={},127.0.0.1:1", busy.local_addr().unwrap());
    run(BIN, &["--control", sock, "--pair", &pair], None, None)
        .code(2)
        .stdout_is("")
        .stderr_has("cannot listen on")
        .stderr_has("in use");
    // The control path is a regular file.
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    run(
        BIN,
        &[
            "--control",
            file.to_str().unwrap(),
            "--pair",
            "t=0,127.0.0.1:1",
        ],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("exists and is not a socket");
    // No proxy behind the socket in client mode.
    run(
        BIN,
        &["--control", sock, "--request", "{\"op\":\"list\"}"],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("control socket");
}

#[test]
fn a_second_proxy_on_a_live_control_socket_is_refused() {
    let up = echo_server();
    let p = Proxy::start(up);
    let pair = format!("u=0,{up}");
    run(
        BIN,
        &["--control", p.sock().to_str().unwrap(), "--pair", &pair],
        None,
        None,
    )
    .code(2)
    .stdout_is("")
    .stderr_has("is in use by a running proxy");
    // The first one still answers.
    assert!(p.client().list().unwrap().is_empty());
}

#[test]
fn stops_promptly_when_its_socket_file_was_replaced() {
    let up = echo_server();
    let tmp = tempfile::tempdir().unwrap();
    let a = Proxy::start_in(up, tmp.path());
    // Someone removes the socket file and a second proxy binds the same path.
    std::fs::remove_file(a.sock()).unwrap();
    let mut b = Command::new(BIN)
        .arg("--pair")
        .arg(format!("b=0,{up}"))
        .arg("--control")
        .arg(a.sock())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = b.stdout.take().unwrap();
    // Kill the second proxy even when an assertion fails.
    struct KillOnDrop(Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _b = KillOnDrop(b);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    assert!(line.contains("proxy.ready"), "{line}");
    let sock = a.sock();
    let t = Instant::now();
    let (code, err, _) = a.stop(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(0), "{err}");
    assert!(t.elapsed() < LONG);
    // The first proxy left the second one's socket alone.
    let mut c = Client::connect(&sock).unwrap();
    assert_eq!(c.status().unwrap()[0].name, "b");
}

#[test]
fn renew_moves_the_dead_man_expiry() {
    let p = Proxy::start(echo_server());
    let mut c = p.client();
    let lat = Fault::Latency {
        direction: Direction::Both,
        delay_ms: 1,
        jitter_ms: 0,
    };
    let a = c
        // A lease long enough that a loaded CI box cannot let it lapse before the renewal below.
        .apply("t", lat.clone(), "lease", Some(Duration::from_secs(10)))
        .unwrap();
    let other = c.apply("t", lat, "other", None).unwrap();
    // Extend: the lease now runs a minute from the renewal.
    let (ts, renewed) = c.renew_tag("lease", Duration::from_secs(60)).unwrap();
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].id, a.id);
    assert_eq!(renewed[0].expires_ts_ns, Some(ts + 60_000_000_000));
    let listed = c.list().unwrap();
    let f = listed.iter().find(|f| f.id == a.id).unwrap();
    assert_eq!(
        (f.ttl_ms, f.expires_ts_ns),
        (Some(60_000), Some(ts + 60_000_000_000))
    );
    // Shorten: an injector that stops renewing loses its faults soon; the others stay.
    c.renew_tag("lease", Duration::from_millis(100)).unwrap();
    wait_until(LONG, "lease expired", || {
        c.list().unwrap().iter().all(|f| f.id != a.id)
    });
    let left = c.list().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, other.id);
    let ev = p.events();
    assert_eq!(
        ev.iter()
            .filter(|e| matches!(e, Event::Renewed { id, .. } if *id == a.id))
            .count(),
        2
    );
    assert!(ev.iter().any(|e| matches!(e,
        Event::Cleared { id, reason: ClearReason::Expired, .. } if *id == a.id)));
    let r = c.request_line(br#"{"op":"renew","ttl_ms":100}"#).unwrap();
    assert_eq!(
        (r.ok, r.error.as_deref()),
        (false, Some("renew: expected id, tag or pair"))
    );
    let r = c
        .request_line(br#"{"op":"renew","tag":"lease","ttl_ms":0}"#)
        .unwrap();
    assert!(!r.ok);
}

#[test]
fn the_engine_embeds_in_another_tool() {
    use fault_proxy::control::{Request, Server};
    use fault_proxy::engine::{Options, Proxy as Engine};
    use std::sync::Arc;

    let up = echo_server();
    let pair = fault_proxy::spec::parse_pair(&format!("front=0,{up}")).unwrap();
    let engine = Engine::start(&[pair], Options::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("ctl.sock");
    let mut server = Server::start(&sock, Arc::clone(&engine)).unwrap();
    let listen: SocketAddr = engine.pairs()[0].listen.parse().unwrap();
    let mut s = TcpStream::connect(listen).unwrap();
    s.set_read_timeout(Some(LONG)).unwrap();
    roundtrip(&mut s, b"embedded");
    // Direct calls and the socket see the same state.
    let r = engine.handle(&Request::Apply {
        pair: "front".into(),
        fault: Fault::Latency {
            direction: Direction::Downstream,
            delay_ms: 50,
            jitter_ms: 0,
        },
        tag: "emb".into(),
        ttl_ms: None,
    });
    assert!(r.ok, "{r:?}");
    assert_eq!(Client::connect(&sock).unwrap().list().unwrap().len(), 1);
    assert!(roundtrip(&mut s, b"slow") >= Duration::from_millis(50));
    server.stop();
    assert!(!sock.exists());
    engine.shutdown("none");
    // The listener is closed: a new connection is refused.
    let e = TcpStream::connect(listen).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused);
}
