//! The real vendor library (CTP v6.7.7 from rtpx) against local listeners: no network.

mod common;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ctp_api::{Abi, ApiDir, Event, Knobs, Login, Session, Side, WatchEvent, watch};
use ctp_config::Secret;

fn login() -> Login {
    Login {
        broker_id: "9999".into(),
        user_id: "probe-user".into(),
        investor_id: "probe-user".into(),
        password: Secret::new("pw-never-shown-7f3a"),
        app_id: Some("simnow_client_test".into()),
        auth_code: Some(Secret::new("0000000000000000")),
    }
}

/// How a listener treats each connection.
#[derive(Clone, Copy)]
enum Peer {
    /// Close at once.
    Close,
    /// Keep it open, silent, until the listener stops.
    Silent,
    /// Close after this long.
    HoldThenClose(Duration),
}

/// A 127.0.0.1 listener that records the time of every accepted connection.
struct Listener {
    port: u16,
    accepted: Arc<Mutex<Vec<Instant>>>,
    stop: Arc<AtomicBool>,
}

impl Listener {
    fn start(peer: Peer) -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        l.set_nonblocking(true).expect("nonblocking");
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (acc, st) = (Arc::clone(&accepted), Arc::clone(&stop));
        thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !st.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        acc.lock().expect("lock").push(Instant::now());
                        match peer {
                            Peer::Close => drop(s),
                            Peer::Silent => held.push(s),
                            Peer::HoldThenClose(d) => {
                                thread::spawn(move || {
                                    let mut s = s;
                                    let _ = s.set_read_timeout(Some(d));
                                    let mut buf = [0_u8; 512];
                                    let end = Instant::now() + d;
                                    while Instant::now() < end {
                                        if matches!(s.read(&mut buf), Ok(0)) {
                                            break;
                                        }
                                    }
                                });
                            }
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Listener {
            port,
            accepted,
            stop,
        }
    }

    fn front(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn count(&self) -> usize {
        self.accepted.lock().expect("lock").len()
    }

    fn times(&self) -> Vec<Instant> {
        self.accepted.lock().expect("lock").clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[test]
fn vendor_libraries_load_and_name_their_version() {
    let Some(f) = common::fixtures("vendor_libraries_load_and_name_their_version") else {
        return;
    };
    let dir = ApiDir::new(&f.vendor);
    assert!(dir.present());
    let td = dir.load(Side::Trader).expect("trader library loads");
    assert!(td.version.starts_with("v6.7.7"), "{td:?}");
    assert_eq!(td.abi, Abi::Old);
    let md = dir.load(Side::Market).expect("market library loads");
    assert!(md.version.starts_with("v6.7.7"), "{md:?}");
    // A folder without the libraries: an error naming the file, no panic.
    let tmp = tempfile::tempdir().expect("tempdir");
    let e = ApiDir::new(tmp.path()).load(Side::Trader).unwrap_err();
    assert!(e.contains("thosttraderapi_se.so is missing"), "{e}");
    // A file that is not a CTP library.
    std::fs::write(tmp.path().join(ctp_api::TRADER_LIB), b"not an ELF").expect("write");
    let e = ApiDir::new(tmp.path()).load(Side::Trader).unwrap_err();
    assert!(e.contains("cannot load"), "{e}");
}

#[test]
fn connects_to_a_local_listener_and_reports_the_disconnect_code() {
    let Some(f) = common::fixtures("connects_to_a_local_listener_and_reports_the_disconnect_code")
    else {
        return;
    };
    let flow = tempfile::tempdir().expect("tempdir");
    for side in Side::BOTH {
        let l = Listener::start(Peer::HoldThenClose(Duration::from_millis(300)));
        // The flow sub-folder does not exist yet: Session::start creates it (the library
        // crashes without it).
        let t = ApiDir::new(&f.vendor).target(side, &l.front(), flow.path(), false);
        let s = Session::start(&t).expect("session starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = None;
        while Instant::now() < deadline {
            if let Ok(ev) = s.events().recv_timeout(Duration::from_millis(100))
                && let Event::Disconnected { code } = ev.event
            {
                seen = Some(code);
                break;
            }
        }
        assert_eq!(seen, Some(0x1001), "{side:?}: OnFrontDisconnected(0x1001)");
        assert!(l.count() >= 1, "{side:?}: the library connected");
        let t0 = Instant::now();
        drop(s);
        assert!(t0.elapsed() < Duration::from_secs(5), "release is prompt");
        // Released: no more connections.
        let n = l.count();
        thread::sleep(Duration::from_millis(500));
        assert!(l.count() <= n + 1, "{side:?}: no reconnects after release");
        assert!(t.flow_dir.is_dir());
    }
}

/// Run `watch` on one side for `run_for`, collecting its events.
fn watch_for(t: &ctp_api::Target, knobs: &Knobs, run_for: Duration) -> Vec<WatchEvent> {
    let end = Instant::now() + run_for;
    let stop = |d: Duration| {
        let now = Instant::now();
        if now + d >= end {
            thread::sleep(end.saturating_duration_since(now));
            return true;
        }
        thread::sleep(d);
        false
    };
    let mut events = Vec::new();
    watch(t, &login(), knobs, &stop, &mut |e| events.push(e)).expect("watch");
    events
}

#[test]
fn backoff_holds_against_a_front_that_closes_every_connection() {
    let Some(f) = common::fixtures("backoff_holds_against_a_front_that_closes_every_connection")
    else {
        return;
    };
    let l = Listener::start(Peer::Close);
    let flow = tempfile::tempdir().expect("tempdir");
    let t = ApiDir::new(&f.vendor).target(Side::Trader, &l.front(), flow.path(), false);
    let knobs = Knobs {
        connect_timeout: Duration::from_secs(3),
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_millis(800),
    };
    let run_for = Duration::from_secs(5);
    let events = watch_for(&t, &knobs, run_for);
    let attempts = events
        .iter()
        .filter(|e| matches!(e, WatchEvent::Attempt { .. }))
        .count();
    let downs: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            WatchEvent::Down(d) => Some(d),
            _ => None,
        })
        .collect();
    assert!(downs.len() >= 2, "disconnects reported: {events:?}");
    for d in &downs {
        assert_eq!(d.reason, "net_read_failed", "{d:?}");
        assert_eq!(d.code, Some(0x1001));
        assert!(d.detail.contains("0x1001"), "{d:?}");
        assert!(d.attempt.is_some());
    }
    // Schedule 0, 200, 400, 800, 800, ... ms: at most ~9 attempts in 5 s (more only if the box
    // is very fast); the library alone makes ~650 connections a second here.
    assert!(attempts <= 10, "{attempts} attempts in 5 s");
    let conns = l.times();
    // Each attempt may see a few library-internal reconnects between the disconnect callback
    // and the release (2 to 3 measured; more on a loaded box): a generous bound, far below the
    // library's own loop.
    assert!(
        conns.len() <= attempts * 20 + 20,
        "{} connections for {attempts} attempts",
        conns.len()
    );
    // Per second, never near the flood rate.
    let mut worst = 0;
    for (i, t0) in conns.iter().enumerate() {
        let within = conns[i..]
            .iter()
            .take_while(|t| t.duration_since(*t0) < Duration::from_secs(1))
            .count();
        worst = worst.max(within);
    }
    assert!(
        worst <= 100,
        "{worst} connections within one second (the library alone: ~650)"
    );
}

#[test]
fn a_front_that_never_says_connected_is_a_connect_timeout() {
    let Some(f) = common::fixtures("a_front_that_never_says_connected_is_a_connect_timeout") else {
        return;
    };
    // A silent listener (accepts, says nothing) and a closed port (refused: the library retries
    // every 5 s without a callback).
    let silent = Listener::start(Peer::Silent);
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let p = l.local_addr().expect("addr").port();
        drop(l);
        format!("tcp://127.0.0.1:{p}")
    };
    let flow = tempfile::tempdir().expect("tempdir");
    let knobs = Knobs {
        connect_timeout: Duration::from_millis(600),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(200),
    };
    for front in [silent.front(), closed] {
        let t = ApiDir::new(&f.vendor).target(Side::Market, &front, flow.path(), false);
        let events = watch_for(&t, &knobs, Duration::from_millis(1500));
        let first = events
            .iter()
            .find_map(|e| match e {
                WatchEvent::Down(d) => Some(d.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{front}: no Down in {events:?}"));
        assert_eq!(first.reason, "connect_timeout", "{first:?}");
        assert!(first.detail.contains("600 ms"), "{first:?}");
        assert!(!events.iter().any(|e| matches!(e, WatchEvent::Up(_))));
    }
    assert!(silent.count() >= 1);
}
