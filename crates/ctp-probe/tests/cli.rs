//! ctp-probe: real processes and sockets on 127.0.0.1 (ports picked by the kernel). The fronts are
//! ctp-front-sim started in this test process (its event log is the ground truth), small fake fronts
//! written here (silent, resetting), or plain TCP listeners.
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ctp_front_sim::{FrontKind, SimHandle, SimOptions};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reconnect_core::crosscheck::{sim_first_front_down_close, sim_login_moment};
use reconnect_core::probe_events::read_probe_events;
use reconnect_core::probe_log::{HealthLogReader, HealthSample, HealthState};
use reconnect_core::sim_events::{SimEvent, read_sim_events};
use reconnect_core::sim_proto::{self as proto, Message};
use serde_json::Value;
use test_support::{fixture, run, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_ctp-probe");
const PW_ENV: &str = "CTP_PROBE_TEST_PASSWORD";
const PW: &str = "probe-secret-pw";
const T: Duration = Duration::from_secs(20);
/// Probe times agree with the simulator's. The drill's 10 ms precision is measured by
/// scripts/bench/ctp-probe.sh; on a loaded CI box a test only checks a generous bound.
const AGREEMENT_NS: i64 = 250_000_000;

fn write_config(dir: &Path, trader: u16, market: u16, extra: &str) -> PathBuf {
    let p = dir.join("ctp.yaml");
    std::fs::write(
        &p,
        format!(
            "ctp:\n  profile: probe_test\n  environment: sim\n  is_production_mode: false\n  \
             enable_terminal_auth: true\n  trader_front: \"tcp://127.0.0.1:{trader}\"\n  \
             market_front: \"tcp://127.0.0.1:{market}\"\n  broker_id: \"9999\"\n  user_id: \"u1\"\n  \
             password_env: {PW_ENV}\n  app_id: simnow_client_test\n  auth_code: \"0000000000000000\"\n  \
             connect_timeout_ms: 2000\n  reconnect_max_attempts: 8\n  \
             reconnect_initial_backoff_ms: 20\n  reconnect_max_backoff_ms: 200\n{extra}"
        ),
    )
    .unwrap();
    p
}

struct Probe {
    child: Child,
    log: PathBuf,
    events: PathBuf,
}

impl Probe {
    fn start(config: &Path, dir: &Path, extra: &[&str]) -> Probe {
        let log = dir.join("probe.log");
        let events = dir.join("probe_events.jsonl");
        let child = Command::new(BIN)
            .arg(config)
            .args(["--monitor-seconds", "-1", "--health-interval-ms", "200"])
            .arg("--log-file")
            .arg(&log)
            .arg("--events-file")
            .arg(&events)
            .args(extra)
            .env(PW_ENV, PW)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Probe { child, log, events }
    }

    fn health(&self) -> Vec<HealthSample> {
        health_of(&self.log)
    }

    fn events(&self) -> Vec<Value> {
        jsonl(&self.events)
    }

    /// Wait for a line of `state` after `after_ns`; returns its ts_ns.
    fn wait_state(&self, state: HealthState, after_ns: i64, what: &str) -> i64 {
        let mut found = 0;
        wait_until(T, what, || {
            found = self
                .health()
                .iter()
                .find(|s| s.ts_ns > after_ns && s.state == state)
                .map_or(0, |s| s.ts_ns);
            found > 0
        });
        found
    }

    /// The first state-change line of `state` after `after_ns` (periodic lines repeat the state).
    fn change_to(&self, state: HealthState, after_ns: i64) -> i64 {
        let h = self.health();
        h.windows(2)
            .find(|w| w[1].ts_ns > after_ns && w[1].state == state && w[0].state != state)
            .map(|w| w[1].ts_ns)
            .unwrap_or_else(|| panic!("no change to {state} after {after_ns} in {h:?}"))
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(i32::try_from(self.child.id()).unwrap()), sig).unwrap();
    }

    fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + T;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "ctp-probe did not exit");
            thread::sleep(Duration::from_millis(10));
        };
        let mut out = String::new();
        let mut err = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        (status.code(), out, err)
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The probe log through the reader slo-report uses (reconnect_core::probe_log).
fn health_of(p: &Path) -> Vec<HealthSample> {
    let f = match std::fs::File::open(p) {
        Ok(f) => f,
        Err(_) => return Vec::new(),
    };
    let text_ok: Vec<HealthSample> =
        HealthLogReader::new(BufReader::new(f), p.display().to_string())
            .map(|r| r.unwrap().1)
            .collect();
    text_ok
}

/// Wait (with the test deadline) until `f` finds something.
fn wait_for<X>(mut f: impl FnMut() -> Option<X>) -> X {
    let mut found = None;
    wait_until(T, "the records to be written", || {
        found = f();
        found.is_some()
    });
    found.unwrap()
}

fn jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.ends_with('}'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

fn sim(dir: &Path, o: SimOptions) -> (SimHandle, PathBuf) {
    let ev = dir.join("sim_events.jsonl");
    let h = ctp_front_sim::start(&SimOptions {
        event_log: Some(ev.clone()),
        heartbeat_ms: 100,
        ..o
    })
    .unwrap();
    (h, ev)
}

fn now_ns() -> i64 {
    evidence_core::time::now_ns()
}

fn ts(v: &Value) -> i64 {
    v["ts_ns"].as_i64().unwrap()
}

fn assert_sorted(h: &[HealthSample]) {
    assert!(
        h.windows(2).all(|w| w[0].ts_ns <= w[1].ts_ns),
        "health lines out of order: {h:?}"
    );
}

#[test]
fn healthy_against_the_sim_then_sigterm_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_ev) = sim(dir.path(), SimOptions::default());
    let cfg = write_config(dir.path(), sim.trader_port, sim.market_port, "");
    let p = Probe::start(&cfg, dir.path(), &[]);
    let healthy = p.wait_state(HealthState::Healthy, 0, "a healthy line");
    // Periodic lines follow every 200 ms.
    wait_until(T, "two periodic lines", || {
        p.health().iter().filter(|s| s.ts_ns > healthy).count() >= 2
    });
    p.signal(Signal::SIGTERM);
    let events_path = p.events.clone();
    let log_path = p.log.clone();
    let (code, out, err) = p.finish();
    assert_eq!(code, Some(0), "stderr: {err}");
    assert_eq!(out, "", "the health lines go to --log-file");
    assert!(
        err.contains("ctp-probe: watching trader 127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.contains("ctp-probe: healthy: both fronts connected and logged in"),
        "{err}"
    );
    assert!(
        err.contains("ctp-probe: stopped (SIGTERM); the fronts were healthy"),
        "{err}"
    );
    let h = health_of(&log_path);
    assert_sorted(&h);
    assert_eq!(
        h[0].state,
        HealthState::Unhealthy,
        "first line: nothing connected yet"
    );
    assert_eq!(
        h.last().unwrap().state,
        HealthState::Healthy,
        "final line at SIGTERM"
    );
    let ev = jsonl(&events_path);
    let kinds: Vec<&str> = ev.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "probe.start");
    assert_eq!(*kinds.last().unwrap(), "probe.stop");
    assert_eq!(ev.last().unwrap()["cause"], "SIGTERM");
    assert_eq!(kinds.iter().filter(|k| **k == "probe.login").count(), 2);
    assert!(ev.iter().all(|e| e["ts_ns"].as_i64().unwrap() > 0));
    // Clean logout: the simulator saw both sessions end with `logout`.
    wait_until(T, "the sim to log both logouts", || {
        read_sim_events(&sim_ev)
            .unwrap()
            .iter()
            .filter(|e| matches!(e, SimEvent::Close { reason, .. } if reason == "logout"))
            .count()
            == 2
    });
    sim.stop();
    // The password is never printed or logged.
    for text in [
        out,
        err,
        std::fs::read_to_string(&log_path).unwrap(),
        std::fs::read_to_string(&events_path).unwrap(),
    ] {
        assert!(!text.contains(PW), "password leaked");
    }
}

#[test]
fn detection_and_recovery_agree_with_the_sim_log() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, sim_ev) = sim(dir.path(), SimOptions::default());
    let cfg = write_config(dir.path(), sim.trader_port, sim.market_port, "");
    let p = Probe::start(&cfg, dir.path(), &[]);
    p.wait_state(HealthState::Healthy, 0, "healthy at start");
    for (name, front) in [
        ("trader", Some(FrontKind::Trader)),
        ("market", Some(FrontKind::Market)),
        ("both", None),
        ("trader", Some(FrontKind::Trader)),
    ] {
        let t0 = now_ns();
        sim.down(front, "test");
        let seen_down = p.wait_state(HealthState::Unhealthy, t0, "unhealthy after down");
        let unhealthy = p.change_to(HealthState::Unhealthy, t0);
        assert_eq!(seen_down, unhealthy);
        // The sim's close of the first session it closed.
        let close = sim_first_front_down_close(&read_sim_events(&sim_ev).unwrap(), t0).unwrap();
        let detect = unhealthy - close;
        // Hold the outage long enough for several refused attempts.
        thread::sleep(Duration::from_millis(150));
        let t1 = now_ns();
        sim.up(front, "test");
        p.wait_state(HealthState::Healthy, t1, "healthy after up");
        let healthy = p.change_to(HealthState::Healthy, t1);
        // Ground truth: the simulator's accepted logins that made the probe healthy (the
        // cross-check reconnect-evidence applies).
        let login = wait_for(|| {
            sim_login_moment(
                &read_probe_events(&p.events).unwrap(),
                &read_sim_events(&sim_ev).unwrap(),
                healthy,
            )
        });
        assert!(login > t1, "the recovery login is after the up");
        let recover = healthy - login;
        eprintln!(
            "cycle {name}: detection probe-sim {:+.3} ms, recovery probe-sim {:+.3} ms, recovery after up {:.1} ms",
            detect as f64 / 1e6,
            recover as f64 / 1e6,
            (healthy - t1) as f64 / 1e6
        );
        assert!(
            detect.abs() <= AGREEMENT_NS,
            "{name}: unhealthy line {unhealthy} vs sim close {close}: {detect} ns"
        );
        assert!(
            recover.abs() <= AGREEMENT_NS,
            "{name}: healthy line {healthy} vs sim login {login}: {recover} ns"
        );
    }
    let ev = p.events();
    let losses: Vec<&Value> = ev
        .iter()
        .filter(|e| e["kind"] == "probe.disconnect" && e["during"] == "session")
        .collect();
    assert_eq!(losses.len(), 5, "{losses:?}");
    assert!(losses.iter().all(|e| e["reason"] == "eof"), "{losses:?}");
    let refused = ev
        .iter()
        .filter(|e| e["kind"] == "probe.disconnect" && e["reason"] == "connect_refused")
        .count();
    assert!(refused >= 4, "refused attempts while down: {refused}");
    // Attempts after a loss: the first at once, then the config's backoff doubling.
    let attempts: Vec<(u64, u64)> = ev
        .iter()
        .filter(|e| e["kind"] == "probe.attempt" && e["front"] == "trader")
        .map(|e| {
            (
                e["attempt"].as_u64().unwrap(),
                e["backoff_ms"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        attempts.contains(&(1, 0)) && attempts.contains(&(2, 20)) && attempts.contains(&(3, 40)),
        "{attempts:?}"
    );
    p.signal(Signal::SIGTERM);
    let log = p.log.clone();
    let (code, _, err) = p.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_sorted(&health_of(&log));
    sim.stop();
}

/// A fake front speaking the sim protocol: logs in, then goes silent (`reset` false) or, at the
/// probe's first ping, closes with that ping unread, which makes the kernel send an RST.
fn fake_front(hb_ms: u64, reset: bool) -> (u16, Arc<AtomicBool>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let done = Arc::new(AtomicBool::new(false));
    let d2 = Arc::clone(&done);
    thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            if d2.load(Ordering::SeqCst) {
                return;
            }
            let Ok(s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut line = String::new();
            let mut n = 0;
            loop {
                line.clear();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let reply = match proto::decode(&line) {
                    Ok(Message::Hello { .. }) => Message::HelloAck {
                        front: "trader".into(),
                        conn_id: 1,
                        heartbeat_ms: hb_ms,
                    },
                    Ok(Message::Auth { .. }) => Message::AuthOk,
                    Ok(Message::Login { .. }) => {
                        n += 1;
                        Message::LoginOk {
                            front: "trader".into(),
                            trading_day: "20260313".into(),
                            session_id: n,
                            ts_ns: evidence_core::time::now_ns(),
                        }
                    }
                    _ => continue,
                };
                let last = matches!(reply, Message::LoginOk { .. });
                w.write_all(proto::encode(&reply).as_bytes()).unwrap();
                if last {
                    break;
                }
            }
            if reset {
                // Never read again: once a ping of the probe is pending unread (waited for, not
                // slept on: the probe may be slow on a loaded box), closing sends an RST.
                w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                let _ = w.peek(&mut [0u8; 1]);
                drop(r);
                drop(w);
            } else {
                held.push((r, w));
            }
        }
    });
    (port, done)
}

#[test]
fn heartbeat_timeout_on_a_silent_front() {
    let dir = tempfile::tempdir().unwrap();
    let (silent, _d) = fake_front(100, false);
    let (sim, _) = sim(dir.path(), SimOptions::default());
    let cfg = write_config(dir.path(), silent, sim.market_port, "");
    let p = Probe::start(&cfg, dir.path(), &[]);
    let healthy = p.wait_state(HealthState::Healthy, 0, "healthy");
    let unhealthy = p.wait_state(HealthState::Unhealthy, healthy, "heartbeat timeout");
    let ev = p.events();
    // Counted from the silent front's last message, its login reply (the market front may have
    // logged in later, which is when the probe became healthy).
    let login = ev
        .iter()
        .filter(|e| e["kind"] == "probe.login" && e["front"] == "trader" && ts(e) <= healthy)
        .map(ts)
        .max()
        .unwrap();
    let after_ms = (unhealthy - login) / 1_000_000;
    // 3 x the front's heartbeat_ms (100) without a message.
    assert!(
        (290..1500).contains(&after_ms),
        "timed out after {after_ms} ms"
    );
    let d = ev
        .iter()
        .find(|e| e["kind"] == "probe.disconnect" && e["during"] == "session")
        .unwrap();
    assert_eq!(d["front"], "trader");
    assert_eq!(d["reason"], "heartbeat_timeout");
    assert_eq!(d["detail"], "no message from the front for 300 ms");
    p.signal(Signal::SIGTERM);
    let (code, out, err) = p.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "");
    assert!(
        err.contains("unhealthy: trader front heartbeat_timeout"),
        "{err}"
    );
    sim.stop();
}

#[test]
fn reset_by_the_front_is_seen_as_reset() {
    let dir = tempfile::tempdir().unwrap();
    // The front sends no heartbeats, so the probe pings (every 200 ms with a 600 ms timeout);
    // the fake front never reads them and closes as soon as the first is pending: RST.
    let (resetting, _d) = fake_front(0, true);
    let (sim, _) = sim(dir.path(), SimOptions::default());
    let cfg = write_config(dir.path(), sim.trader_port, resetting, "");
    let p = Probe::start(&cfg, dir.path(), &["--heartbeat-timeout-ms", "600"]);
    p.wait_state(HealthState::Healthy, 0, "healthy");
    wait_until(T, "a session loss", || {
        p.events()
            .iter()
            .any(|e| e["kind"] == "probe.disconnect" && e["during"] == "session")
    });
    let ev = p.events();
    let d = ev
        .iter()
        .find(|e| e["kind"] == "probe.disconnect" && e["during"] == "session")
        .unwrap();
    assert_eq!(d["front"], "market");
    assert_eq!(d["reason"], "reset", "{d}");
    p.signal(Signal::SIGTERM);
    let (code, _, err) = p.finish();
    assert_eq!(code, Some(0), "{err}");
    sim.stop();
}

#[test]
fn auth_failure_is_reported_and_never_healthy_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, _) = sim(
        dir.path(),
        SimOptions {
            auth_fail: true,
            ..SimOptions::default()
        },
    );
    let cfg = write_config(dir.path(), sim.trader_port, sim.market_port, "");
    let log = dir.path().join("p.log");
    let events = dir.path().join("e.jsonl");
    let r = test_support::run(
        "/usr/bin/env",
        &[
            &format!("{PW_ENV}={PW}"),
            BIN,
            cfg.to_str().unwrap(),
            "--monitor-seconds",
            "1",
            "--log-file",
            log.to_str().unwrap(),
            "--events-file",
            events.to_str().unwrap(),
        ],
        None,
        None,
    );
    r.code(1)
        .stdout_is("")
        .stderr_has("ctp-probe: stopped (monitor_end); never healthy (last failure trader: auth_failed: authentication failed")
        .never_has(PW);
    let h = health_of(&log);
    assert!(
        h.len() >= 2 && h.iter().all(|s| s.state == HealthState::Unhealthy),
        "{h:?}"
    );
    let ev = jsonl(&events);
    let failed = ev
        .iter()
        .filter(|e| e["kind"] == "probe.disconnect" && e["reason"] == "auth_failed")
        .count();
    assert!(
        failed >= 4,
        "retries with backoff, each auth_failed: {failed}"
    );
    assert_eq!(ev.last().unwrap()["kind"], "probe.stop");
    sim.stop();
}

#[test]
fn one_shot_check_and_refused_fronts() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, _) = sim(dir.path(), SimOptions::default());
    let cfg = write_config(dir.path(), sim.trader_port, sim.market_port, "");
    let envpw = format!("{PW_ENV}={PW}");
    // Health lines on stdout without --log-file.
    let r = run(
        "/usr/bin/env",
        &[
            &envpw,
            BIN,
            cfg.to_str().unwrap(),
            "--monitor-seconds",
            "0",
            "--health-interval-ms",
            "10",
        ],
        None,
        None,
    );
    r.code(0)
        .stderr_has("--health-interval-ms 10 floored at 100")
        .stderr_has("one-shot check")
        .stderr_has("stopped (one_shot_healthy)");
    let h: Vec<HealthSample> = HealthLogReader::new(r.stdout.as_bytes(), "-")
        .map(|x| x.unwrap().1)
        .collect();
    assert_eq!(h.first().unwrap().state, HealthState::Unhealthy);
    assert_eq!(h.last().unwrap().state, HealthState::Healthy);
    assert_eq!(
        r.stdout.lines().count(),
        h.len(),
        "stdout holds only health lines"
    );
    sim.stop();

    // Nothing listens: connect refused, never healthy within connect_timeout_ms, exit 1.
    let (a, b) = (free_port(), free_port());
    let d2 = tempfile::tempdir().unwrap();
    let cfg = write_config(d2.path(), a, b, "");
    let cfg_text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("connect_timeout_ms: 2000", "connect_timeout_ms: 300");
    std::fs::write(&cfg, cfg_text).unwrap();
    let r = run(
        "/usr/bin/env",
        &[&envpw, BIN, cfg.to_str().unwrap(), "--monitor-seconds", "0"],
        None,
        None,
    );
    r.code(1)
        .stderr_has("stopped (one_shot_timeout); never healthy (last failure trader: connect_refused: 127.0.0.1:");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn tcp_mode_against_plain_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let lt = TcpListener::bind("127.0.0.1:0").unwrap();
    let lm = TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = write_config(
        dir.path(),
        lt.local_addr().unwrap().port(),
        lm.local_addr().unwrap().port(),
        "",
    );
    // No password needed for a connect-check.
    let log = dir.path().join("probe.log");
    let events = dir.path().join("ev.jsonl");
    let child = Command::new(BIN)
        .arg(&cfg)
        .args(["--mode", "tcp", "--monitor-seconds", "-1"])
        .arg("--log-file")
        .arg(&log)
        .arg("--events-file")
        .arg(&events)
        .env_remove(PW_ENV)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let p = Probe { child, log, events };
    let (t1, _) = lt.accept().unwrap();
    let (m1, _) = lm.accept().unwrap();
    let healthy = p.wait_state(HealthState::Healthy, 0, "healthy (both connected)");
    // The trader front closes the connection: EOF, unhealthy at once, then a reconnect.
    let t0 = now_ns();
    drop(t1);
    let unhealthy = p.wait_state(HealthState::Unhealthy, healthy, "unhealthy after close");
    assert!(unhealthy - t0 < 1_000_000_000);
    let (_t2, _) = lt.accept().unwrap();
    p.wait_state(HealthState::Healthy, unhealthy, "healthy after reconnect");
    let ev = p.events();
    assert_eq!(ev[0]["mode"], "tcp");
    let d = ev.iter().find(|e| e["kind"] == "probe.disconnect").unwrap();
    assert_eq!(
        (d["front"].as_str(), d["reason"].as_str()),
        (Some("trader"), Some("eof"))
    );
    assert_eq!(
        ev.iter().filter(|e| e["kind"] == "probe.connect").count(),
        3
    );
    p.signal(Signal::SIGTERM);
    let (code, out, err) = p.finish();
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out, "");
    assert!(err.contains("(mode tcp,"), "{err}");
    drop(m1);
}

#[test]
fn sigint_exits_130_after_a_final_line() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, _) = sim(dir.path(), SimOptions::default());
    let cfg = write_config(dir.path(), sim.trader_port, sim.market_port, "");
    let p = Probe::start(&cfg, dir.path(), &[]);
    p.wait_state(HealthState::Healthy, 0, "healthy");
    let before = p.health().len();
    p.signal(Signal::SIGINT);
    let log = p.log.clone();
    let events = p.events.clone();
    let (code, _, err) = p.finish();
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("ctp-probe: interrupted (SIGINT)"), "{err}");
    assert!(health_of(&log).len() > before);
    assert_eq!(jsonl(&events).last().unwrap()["cause"], "SIGINT");
    sim.stop();
}

#[test]
fn bad_config_and_missing_password_exit_2() {
    let r = run(
        BIN,
        &[&fixture(env!("CARGO_MANIFEST_DIR"), "bad_bool.yaml")],
        None,
        None,
    );
    r.code(2)
        .stdout_is("")
        .stderr_has("ctp-probe: error: ")
        .stderr_has("bad_bool.yaml:")
        .stderr_has("is_production_mode");
    let r = run(BIN, &["/nonexistent/ctp.yaml"], None, None);
    r.code(2)
        .stdout_is("")
        .stderr_is("ctp-probe: error: cannot read /nonexistent/ctp.yaml: No such file or directory (os error 2)\n");
    // `--config` like the other tools (issue 12 item 6); not both spellings at once.
    let r = run(BIN, &["--config", "/nonexistent/ctp.yaml"], None, None);
    r.code(2)
        .stdout_is("")
        .stderr_is("ctp-probe: error: cannot read /nonexistent/ctp.yaml: No such file or directory (os error 2)\n");
    let r = run(BIN, &["a.yaml", "--config", "b.yaml"], None, None);
    r.code(2).stdout_is("").stderr_has("cannot be used with");
    let r = run(
        BIN,
        &[&fixture(env!("CARGO_MANIFEST_DIR"), "no_market_front.yaml")],
        None,
        None,
    );
    r.code(2)
        .stdout_is("")
        .stderr_has("market_front: expected tcp://host:port, found missing");
    // Sim mode needs the password from password_env; the message names the variable only.
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), 1, 2, "");
    let r = run(
        "/usr/bin/env",
        &["-u", PW_ENV, BIN, cfg.to_str().unwrap(), "--mode", "sim"],
        None,
        None,
    );
    r.code(2).stdout_is("").stderr_has(&format!(
        "no password: the config has no `password` and ${PW_ENV} (password_env) is unset or empty"
    ));
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let r = run(BIN, &["--bogus"], None, None);
    r.code(2)
        .stdout_is("")
        .stderr_has("unexpected argument '--bogus'");
    let r = run(BIN, &["x.yaml", "--mode", "ctp"], None, None);
    r.code(2)
        .stdout_is("")
        .stderr_has("invalid value 'ctp' for '--mode");
    let r = run(BIN, &["x.yaml", "--monitor-seconds", "soon"], None, None);
    r.code(2).stdout_is("").stderr_has("--monitor-seconds");
    // Checked before the config is read.
    let r = run(
        BIN,
        &["/nonexistent.yaml", "--health-interval-ms", "90000000"],
        None,
        None,
    );
    r.code(2).stdout_is("").stderr_is(
        "ctp-probe: error: --health-interval-ms must be at most 86400000 (a day), found 90000000\n",
    );
    let r = run(
        BIN,
        &["/nonexistent.yaml", "--heartbeat-timeout-ms", "0"],
        None,
        None,
    );
    r.code(2)
        .stdout_is("")
        .stderr_is("ctp-probe: error: --heartbeat-timeout-ms must be > 0\n");
    let r = run(BIN, &["--help"], None, None);
    r.code(0)
        .stderr_is("")
        .stdout_has("--monitor-seconds")
        .stdout_has("--health-interval-ms")
        .stdout_has("3 (config load failed) -> 2")
        .stdout_has("EXIT STATUS:");
}

#[test]
fn tcp_mode_sees_a_refusing_front_through_the_liveness_connect() {
    let dir = tempfile::tempdir().unwrap();
    let lt = TcpListener::bind("127.0.0.1:0").unwrap();
    let lm = TcpListener::bind("127.0.0.1:0").unwrap();
    let tport = lt.local_addr().unwrap().port();
    let cfg = write_config(dir.path(), tport, lm.local_addr().unwrap().port(), "");
    let p = Probe::start(
        &cfg,
        dir.path(),
        &["--mode", "tcp", "--tcp-check-interval-ms", "50"],
    );
    let accept = |l: &TcpListener| {
        l.set_nonblocking(true).unwrap();
        let mut held = Vec::new();
        let deadline = Instant::now() + T;
        while held.is_empty() && Instant::now() < deadline {
            if let Ok((s, _)) = l.accept() {
                held.push(s);
            }
            thread::sleep(Duration::from_millis(5));
        }
        held
    };
    let _t = accept(&lt);
    let _m = accept(&lm);
    let healthy = p.wait_state(HealthState::Healthy, 0, "healthy");
    // The trader front stops listening (new connections refused) but the held connection stays
    // open and idle: only the liveness connect can see it.
    let t0 = now_ns();
    drop(lt);
    let unhealthy = p.wait_state(
        HealthState::Unhealthy,
        healthy,
        "unhealthy via liveness connect",
    );
    assert!(
        unhealthy - t0 < 2_000_000_000,
        "{} ms",
        (unhealthy - t0) / 1_000_000
    );
    let ev = p.events();
    let d = ev
        .iter()
        .find(|e| e["kind"] == "probe.disconnect" && e["during"] == "session")
        .unwrap();
    assert_eq!(d["front"], "trader");
    assert_eq!(d["reason"], "connect_refused");
    assert!(
        d["detail"]
            .as_str()
            .unwrap()
            .starts_with("liveness connect: 127.0.0.1:"),
        "{d}"
    );
    p.signal(Signal::SIGTERM);
    let (code, _, err) = p.finish();
    assert_eq!(code, Some(0), "{err}");
}
