//! Login against LocalCTP (a local implementation of the trader API; no network): the real
//! OnFrontConnected → ReqAuthenticate → ReqUserLogin → OnRspUserLogin sequence and a
//! trading-account query. One test in this binary: LocalCTP writes LocalCTP.db to the current
//! folder, so the test moves to a temporary one first.

mod common;

use std::thread;
use std::time::{Duration, Instant};

use ctp_api::{Abi, ApiDir, Knobs, Login, Side, WatchEvent, login_once, watch};
use ctp_config::Secret;

#[test]
fn localctp_login_and_trading_account_query() {
    let Some(f) = common::fixtures("localctp_login_and_trading_account_query") else {
        return;
    };
    let work = tempfile::tempdir().expect("tempdir");
    std::env::set_current_dir(work.path()).expect("chdir");
    let dir = ApiDir::new(&f.localctp);
    let info = dir.load(Side::Trader).expect("LocalCTP loads");
    assert_eq!(
        info.abi,
        Abi::V6711,
        "LocalCTP is built on the v6.7.11 headers"
    );
    let login = Login {
        broker_id: "9999".into(),
        user_id: "local-user1".into(),
        investor_id: "local-user1".into(),
        password: Secret::new("pw-never-shown-7f3a"),
        app_id: Some("simnow_client_test".into()),
        auth_code: Some(Secret::new("0000000000000000")),
    };
    let knobs = Knobs {
        connect_timeout: Duration::from_secs(20),
        initial_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_millis(800),
    };
    let flow = work.path().join("flow");
    let t = dir.target(Side::Trader, "tcp://127.0.0.1:1", &flow, true);
    let r = login_once(&t, &login, &knobs, true).expect("login");
    assert!(r.up.auth_ms.is_some(), "authenticated first: {r:?}");
    assert_eq!(r.up.trading_day.len(), 8, "{r:?}");
    let (balance, _available) = r.account.expect("trading account");
    assert!(balance > 0.0, "{r:?}");
    assert!(r.query_ms.is_some());

    // The probe loop reaches Up on both sides (market: the md stub), then stops cleanly.
    for side in Side::BOTH {
        let t = dir.target(side, "tcp://127.0.0.1:1", &flow, true);
        let end = Instant::now() + Duration::from_secs(60);
        let up_seen = std::sync::atomic::AtomicBool::new(false);
        let stop = |d: Duration| {
            if up_seen.load(std::sync::atomic::Ordering::SeqCst) || Instant::now() >= end {
                return true;
            }
            thread::sleep(d);
            false
        };
        let mut events = Vec::new();
        watch(&t, &login, &knobs, &stop, &mut |e| {
            if matches!(e, WatchEvent::Up(_)) {
                up_seen.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            events.push(e);
        })
        .expect("watch");
        let up = events
            .iter()
            .find_map(|e| match e {
                WatchEvent::Up(u) => Some(u.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{side:?}: no login in {events:?}"));
        assert_eq!(up.attempt, 1);
        assert_eq!(up.auth_ms.is_some(), side == Side::Trader, "{up:?}");
    }
}
