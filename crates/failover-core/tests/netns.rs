//! Hosts as namespaces: up, reachability between hosts, a partition inside one host and its heal,
//! a host crash, and `down` leaving no namespace, process or rule. Needs root (CI is root).
#![allow(clippy::unwrap_used, reason = "tests")]

use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use failover_core::inventory::Inventory;
use failover_core::netns;

fn inventory(tag: &str, third: u8) -> Inventory {
    let p = std::process::id() % 10000;
    let text = format!(
        "switch: t{p}{tag}s\nhosts:\n  - {{name: t{p}{tag}1, address: 198.19.{third}.1, roles: [redis-primary, redis-sentinel-1, timescale-primary]}}\n  - {{name: t{p}{tag}2, address: 198.19.{third}.2, roles: [redis-replica, redis-sentinel-2, timescale-replica]}}\n  - {{name: t{p}{tag}3, address: 198.19.{third}.3, roles: [redis-sentinel-3]}}\n"
    );
    Inventory::parse(&text, "test.yaml").unwrap()
}

fn can_connect(from: &str, to: &str) -> bool {
    let from = from.to_string();
    let to = to.to_string();
    std::thread::spawn(move || {
        netns::enter(&from).unwrap();
        TcpStream::connect_timeout(&to.parse().unwrap(), Duration::from_millis(300)).is_ok()
    })
    .join()
    .unwrap()
}

fn ci_or_skip(test: &str) -> bool {
    if test_support::is_root() {
        return true;
    }
    assert!(std::env::var("CI").is_err(), "{test}: CI must run as root");
    test_support::skip(test, "needs root for network namespaces");
    false
}

#[test]
fn hosts_partition_crash_and_down() {
    if !ci_or_skip("hosts_partition_crash_and_down") {
        return;
    }
    let inv = inventory("a", 201);
    netns::up(&inv).unwrap();
    let (h1, h2) = (inv.hosts[0].name.clone(), inv.hosts[1].name.clone());
    // A listener on h2.
    let h2c = h2.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        netns::enter(&h2c).unwrap();
        let l = TcpListener::bind("198.19.201.2:17999").unwrap();
        tx.send(()).unwrap();
        for s in l.incoming() {
            drop(s);
        }
    });
    rx.recv().unwrap();
    assert!(can_connect(&h1, "198.19.201.2:17999"));
    netns::partition(&h1, "t").unwrap();
    assert!(netns::rules(&h1).unwrap().contains("ctp-ops-failover:t"));
    assert!(!can_connect(&h1, "198.19.201.2:17999"));
    netns::heal(&h1, "t").unwrap();
    assert!(!netns::rules(&h1).unwrap().contains("ctp-ops-failover"));
    assert!(can_connect(&h1, "198.19.201.2:17999"));
    // A process on h1, killed with the host.
    let mut child = std::process::Command::new("ip")
        .args(["netns", "exec", &h1, "sleep", "60"])
        .spawn()
        .unwrap();
    test_support::wait_until(Duration::from_secs(5), "sleep in h1", || {
        !netns::pids(&h1).unwrap().is_empty()
    });
    assert_eq!(netns::kill_all(&h1).unwrap().len(), 1);
    let st = child.wait().unwrap();
    assert!(!st.success());
    // down leaves nothing.
    netns::partition(&h1, "t").unwrap();
    netns::down(&inv).unwrap();
    let left = netns::list().unwrap();
    for n in inv
        .hosts
        .iter()
        .map(|h| h.name.as_str())
        .chain([inv.switch.as_str()])
    {
        assert!(!left.iter().any(|l| l == n), "{n} left in {left:?}");
    }
    netns::down(&inv).unwrap();
}
