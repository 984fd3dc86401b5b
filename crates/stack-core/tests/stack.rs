//! The real stack: up, health, a killed member, down (root and the Debian packages needed).
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::time::{Duration, Instant};

use stack_core::launch;
use stack_core::probe;
use stack_core::stack::{ServiceKind, Stack, StackConfig};

fn can_run(test: &str) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let missing = stack_core::stack::missing_programs();
    let reason = if !test_support::is_root() {
        "needs root (PostgreSQL runs as the postgres user through setpriv)".to_string()
    } else if !missing.is_empty() {
        format!("missing {missing:?} (scripts/setup.sh installs them)")
    } else {
        return true;
    };
    assert!(!ci, "{test}: {reason}");
    test_support::skip(test, &reason);
    false
}

fn base_port() -> u16 {
    stack_core::stack::free_test_base_port(std::process::id()).expect("a free base port")
}

#[test]
fn stack_up_health_kill_down() {
    if !can_run("stack_up_health_kill_down") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    launch_chmod(tmp.path());
    let cfg = StackConfig {
        base_port: base_port(),
        ..StackConfig::default()
    };
    let stack = Stack::new(tmp.path().join("run"), cfg);
    let t0 = Instant::now();
    let up = launch::up(&stack, Duration::from_secs(60));
    let guard = Down(&stack);
    let started = up.unwrap();
    assert_eq!(started.len(), stack.kinds().len());
    eprintln!("all ready after {:?}", t0.elapsed());
    let pw = stack.password().unwrap();
    // Every service healthy (Prometheus targets take ~6 s to appear).
    let end = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let r = probe::health(&stack, &pw, Duration::from_millis(800));
        if r.iter().all(|p| p.ok) || Instant::now() > end {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for p in &report {
        assert!(p.ok, "{} unhealthy: {} -> {}", p.service, p.probe, p.answer);
    }
    eprintln!("all healthy after {:?}", t0.elapsed());
    // Kill the replica: the probe names it at once.
    launch::supervisor(&stack, ServiceKind::RedisReplica)
        .kill()
        .unwrap();
    let p = probe::health_one(
        &stack,
        ServiceKind::RedisReplica,
        &pw,
        Duration::from_millis(500),
        None,
    );
    assert!(!p.ok);
    // Refused, or reset/closed when the connect raced the death.
    assert!(
        ["refused", "reset", "closed"]
            .iter()
            .any(|w| p.answer.contains(w)),
        "{}",
        p.answer
    );
    drop(guard);
    // Nothing left: no pid alive, no port bound.
    for k in ServiceKind::all() {
        assert!(
            std::net::TcpStream::connect_timeout(
                &stack.addr(k).parse().unwrap(),
                Duration::from_millis(200)
            )
            .is_err(),
            "{} still listening",
            k.name()
        );
    }
}

fn launch_chmod(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o711)).unwrap();
}

struct Down<'a>(&'a Stack);
impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = launch::down(self.0, Duration::from_secs(5));
    }
}
