//! ctp-front-sim: real processes, real sockets on 127.0.0.1 (ports picked by the kernel).
#![allow(clippy::unwrap_used, reason = "test helpers panic on setup failures")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ctp_front_sim::proto::{self, Client, Credentials, LoginError, Message};
use serde_json::{Value, json};
use test_support::{run, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_ctp-front-sim");
const T: Duration = Duration::from_secs(10);

struct Sim {
    child: Child,
    trader: u16,
    market: u16,
    sock: PathBuf,
    events: PathBuf,
    _dir: tempfile::TempDir,
}

impl Sim {
    fn start(extra: &[&str]) -> Sim {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("sim.sock");
        let events = dir.path().join("events.jsonl");
        let mut child = Command::new(BIN)
            .args([
                "--trader-port",
                "0",
                "--market-port",
                "0",
                "--heartbeat-ms",
                "100",
            ])
            .arg("--control-socket")
            .arg(&sock)
            .arg("--event-log")
            .arg(&events)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value = serde_json::from_str(&line).expect(&line);
        assert_eq!(ready["kind"], "sim.ready");
        Sim {
            trader: u16::try_from(ready["trader_port"].as_u64().unwrap()).unwrap(),
            market: u16::try_from(ready["market_port"].as_u64().unwrap()).unwrap(),
            child,
            sock,
            events,
            _dir: dir,
        }
    }

    fn ctl(&self, cmd: Value) -> Value {
        ctp_front_sim::send_control(&self.sock, &cmd, T).unwrap()
    }

    fn events(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.events).unwrap_or_default();
        text.lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("bad event line {l:?} ({e}) in {text:?}"))
            })
            .collect()
    }

    fn stop(mut self) -> (Option<i32>, String) {
        self.ctl(json!({"cmd": "stop"}));
        let out = self.child.wait().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut err).unwrap();
        (out.code(), err)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn creds(auth: bool) -> Credentials {
    Credentials {
        broker_id: "9999".into(),
        user_id: "000001".into(),
        app_id: auth.then(|| "simnow_client_test".into()),
        auth_code: auth.then(|| "0000000000000000".into()),
        password: "sim-password".into(),
    }
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

#[test]
fn login_accepted_heartbeats_and_event_log() {
    let sim = Sim::start(&["--login-latency-ms", "30"]);
    let (mut c, ok) = proto::connect_and_login(&addr(sim.trader), &creds(true), T).unwrap();
    assert_eq!(ok.front, "trader");
    assert_eq!(ok.trading_day.len(), 8);
    // Heartbeats arrive at the configured interval.
    let mut beats = 0;
    while beats < 2 {
        if let Some(Message::Heartbeat { .. }) = c.recv(T).unwrap() {
            beats += 1;
        }
    }
    c.send(&Message::Logout).unwrap();
    let ev = sim.events();
    let kinds: Vec<&str> = ev.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"sim.accept"), "{kinds:?}");
    let login = ev.iter().find(|e| e["kind"] == "sim.login").unwrap();
    assert_eq!(login["accepted"], true);
    assert_eq!(login["front"], "trader");
    // Logged when the reply left, not before it was built; the latency happened before.
    assert!(login["ts_ns"].as_i64().unwrap() >= ok.server_ts_ns);
    assert!(ev.iter().all(|e| e["ts_ns"].as_i64().unwrap() > 0));
    // The password never reaches the event log.
    assert!(
        !std::fs::read_to_string(&sim.events)
            .unwrap()
            .contains("sim-password")
    );
    wait_until(T, "close logged", || {
        sim.events().iter().any(|e| e["kind"] == "sim.close")
    });
    let (code, err) = sim.stop();
    assert_eq!(code, Some(0));
    assert_eq!(err, "");
}

#[test]
fn auth_failure_mode() {
    let sim = Sim::start(&["--auth-fail"]);
    match proto::connect_and_login(&addr(sim.trader), &creds(true), T) {
        Err(LoginError::AuthFailed(r)) => assert!(r.contains("authentication failed")),
        other => panic!("expected auth failure, got {other:?}"),
    }
    assert_eq!(
        sim.ctl(json!({"cmd": "auth_fail", "enabled": false}))["auth_fail"],
        false
    );
    proto::connect_and_login(&addr(sim.trader), &creds(true), T).unwrap();
    let auths: Vec<bool> = sim
        .events()
        .iter()
        .filter(|e| e["kind"] == "sim.auth")
        .map(|e| e["accepted"].as_bool().unwrap())
        .collect();
    assert_eq!(auths, vec![false, true]);
    sim.stop();
}

#[test]
fn down_and_up_via_control_socket_and_signals() {
    let sim = Sim::start(&[]);
    let (mut c, _) = proto::connect_and_login(&addr(sim.market), &creds(false), T).unwrap();
    let st = sim.ctl(json!({"cmd": "down", "front": "market"}));
    assert_eq!(st["market"]["up"], false);
    assert_eq!(st["trader"]["up"], true);
    // The existing session is closed with a reason, and new connects are refused.
    let mut closed = false;
    for _ in 0..100 {
        match c.recv(T) {
            Ok(Some(Message::Closing { reason })) => assert_eq!(reason, "front_down"),
            Ok(_) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed);
    let e = Client::connect(&addr(sim.market), T).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    Client::connect(&addr(sim.trader), T).unwrap();
    // Up again on the same port.
    let st = sim.ctl(json!({"cmd": "up", "front": "market"}));
    assert_eq!(st["market"]["listening"], true);
    proto::connect_and_login(&addr(sim.market), &creds(false), T).unwrap();
    // Signals: SIGUSR1 takes both fronts down, SIGUSR2 brings them back.
    let pid = sim.child.id().to_string();
    assert_eq!(run("kill", &["-USR1", &pid], None, None).code, Some(0));
    wait_until(T, "both fronts down", || {
        Client::connect(&addr(sim.trader), T).is_err()
            && Client::connect(&addr(sim.market), T).is_err()
    });
    assert_eq!(run("kill", &["-USR2", &pid], None, None).code, Some(0));
    wait_until(T, "both fronts up", || {
        Client::connect(&addr(sim.trader), T).is_ok()
            && Client::connect(&addr(sim.market), T).is_ok()
    });
    let states: Vec<(String, String, String)> = sim
        .events()
        .iter()
        .filter(|e| e["kind"] == "sim.state")
        .map(|e| {
            (
                e["front"].as_str().unwrap().to_string(),
                e["state"].as_str().unwrap().to_string(),
                e["cause"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for want in [
        ("market", "down", "control"),
        ("market", "up", "control"),
        ("trader", "down", "SIGUSR1"),
        ("trader", "up", "SIGUSR2"),
    ] {
        assert!(
            states
                .iter()
                .any(|(f, s, c)| (f.as_str(), s.as_str(), c.as_str()) == want),
            "{want:?} not in {states:?}"
        );
    }
    let close = sim
        .events()
        .into_iter()
        .find(|e| e["kind"] == "sim.close" && e["reason"] == "front_down")
        .unwrap();
    assert_eq!(close["logged_in"], true);
    sim.stop();
}

#[test]
fn refuse_logins_and_session_window() {
    let sim = Sim::start(&[]);
    sim.ctl(json!({"cmd": "refuse_logins", "seconds": 30}));
    match proto::connect_and_login(&addr(sim.trader), &creds(false), T) {
        Err(LoginError::Refused(r)) => assert!(r.contains("refuse_logins"), "{r}"),
        other => panic!("expected refusal, got {other:?}"),
    }
    sim.ctl(json!({"cmd": "refuse_logins", "seconds": 0}));
    let (mut c, _) = proto::connect_and_login(&addr(sim.trader), &creds(false), T).unwrap();
    // A window that excludes now (a one-minute window twelve hours away) closes the session.
    let bad = sim.ctl(json!({"cmd": "session_window", "start": "xx"}));
    assert_eq!(bad["ok"], false);
    let st = sim.ctl(json!({"cmd": "status"}));
    assert_eq!(st["in_session_window"], true);
    let now_min = {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 8 * 3600;
        (secs % 86_400) / 60
    };
    let start = (now_min + 720) % 1440;
    let hhmm = |m: u64| format!("{:02}:{:02}", m / 60, m % 60);
    sim.ctl(
        json!({"cmd": "session_window", "start": hhmm(start), "end": hhmm((start + 1) % 1440)}),
    );
    let mut reason = None;
    for _ in 0..100 {
        match c.recv(T) {
            Ok(Some(Message::Closing { reason: r })) => reason = Some(r),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    assert_eq!(reason.as_deref(), Some("outside_session_window"));
    match proto::connect_and_login(&addr(sim.trader), &creds(false), T) {
        Err(LoginError::Refused(r)) => assert!(r.contains("session window"), "{r}"),
        other => panic!("expected refusal, got {other:?}"),
    }
    let refused = sim
        .events()
        .iter()
        .filter(|e| e["kind"] == "sim.login" && e["accepted"] == false)
        .count();
    assert_eq!(refused, 2);
    sim.stop();
}

#[test]
fn market_ticks() {
    let sim = Sim::start(&["--tick-interval-ms", "20"]);
    let (mut c, _) = proto::connect_and_login(&addr(sim.market), &creds(false), T).unwrap();
    c.send(&Message::Subscribe {
        instruments: vec!["SHFE.au2606".into()],
    })
    .unwrap();
    let mut seen = false;
    for _ in 0..200 {
        if let Some(Message::Tick { instrument, .. }) = c.recv(T).unwrap()
            && instrument == "SHFE.au2606"
        {
            seen = true;
            break;
        }
    }
    assert!(seen);
    sim.stop();
}

#[test]
fn config_ports_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "ctp:\n  trader_front: tcp://127.0.0.1:notaport\n").unwrap();
    let r = run(BIN, &["--config", cfg.to_str().unwrap()], None, None);
    r.code(2).stdout_is("").stderr_has("trader_front");
    let r = run(BIN, &["--session-window", "9-15"], None, None);
    r.code(2).stdout_is("").stderr_has("--session-window");
    let r = run(BIN, &["--bogus"], None, None);
    r.code(2).stdout_is("").stderr_has("--bogus");
    let r = run(BIN, &["--help"], None, None);
    r.code(0).stdout_has("EXIT STATUS").stderr_is("");
    ports_file_written(dir.path());
}

fn ports_file_written(dir: &Path) {
    let pf = dir.join("ports.json");
    let sim = Sim::start(&["--ports-file", pf.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&pf).unwrap()).unwrap();
    assert_eq!(v["trader_port"].as_u64(), Some(u64::from(sim.trader)));
    assert_eq!(v["market_port"].as_u64(), Some(u64::from(sim.market)));
    sim.stop();
}

#[test]
fn credentials_from_a_ctp_config() {
    let sim = Sim::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "ctp:\n  broker_id: \"9999\"\n  user_id: u1\n  app_id: simnow_client_test\n  auth_code: \"0000000000000000\"\n  trader_front: tcp://127.0.0.1:{}\n",
            sim.trader
        ),
    )
    .unwrap();
    let c = ctp_config::CtpConfig::load(&cfg).unwrap();
    let pw = ctp_config::Secret::new("pw");
    let creds = Credentials::from_config(&c, &pw);
    assert_eq!(creds.app_id.as_deref(), Some("simnow_client_test"));
    let front = c.values.trader_front.as_ref().unwrap().to_string();
    let (_c, ok) = proto::connect_and_login(&front, &creds, T).unwrap();
    assert_eq!(ok.front, "trader");
    // The auth step was sent (terminal auth defaults to on).
    assert!(
        sim.events()
            .iter()
            .any(|e| e["kind"] == "sim.auth" && e["accepted"] == true)
    );
    sim.stop();
}
