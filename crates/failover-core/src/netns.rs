//! Hosts as network namespaces: one namespace per host with its own address on a bridge that lives
//! in a namespace of its own (the switch), so nothing is added to the root namespace: no address,
//! no route, no firewall rule. Faults (partitions) are iptables rules inside a host's namespace and
//! go away with it.
//!
//! Layout for hosts `h1..hN` and switch `fo-sw`: in `fo-sw` a bridge `br0` and one veth end
//! `v-<host>` per host; in each host namespace the other end, `eth0`, with the host's address, and
//! `lo` up. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN) and iproute2's `ip`.

use std::fs::File;
use std::process::Command;
use std::time::Duration;

use evidence_core::process::{RunOptions, run_command};
use evidence_core::{EvidenceError, Result};
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::inventory::Inventory;

/// The interface name inside each host namespace.
pub const HOST_IF: &str = "eth0";
/// The comment tagging our partition rules.
pub const RULE_TAG: &str = "ctp-ops-failover";

/// Refuse without root, naming what is needed.
pub fn require_root(what: &str) -> Result<()> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(EvidenceError::usage(format!(
            "{what} needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN to create network namespaces, \
             veth pairs and firewall rules inside them) and iproute2's `ip`; run it as root, or use \
             --backend ssh with hosts that exist"
        )))
    }
}

fn run(argv: &[&str]) -> Result<String> {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..]);
    let out = run_command(
        cmd,
        &RunOptions {
            timeout: Duration::from_secs(20),
            ..RunOptions::default()
        },
    )?;
    if out.success() {
        Ok(out.stdout_tail)
    } else {
        Err(EvidenceError::failed(format!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.describe(),
            out.stderr_tail.trim()
        )))
    }
}

/// The namespaces that exist (names only).
pub fn list() -> Result<Vec<String>> {
    let out = run(&["ip", "netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// True when namespace `name` exists.
#[must_use]
pub fn exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// Create the switch and the hosts of `inv` (idempotent: existing namespaces are kept as they are).
pub fn up(inv: &Inventory) -> Result<()> {
    let sw = inv.switch.as_str();
    if !exists(sw) {
        run(&["ip", "netns", "add", sw])?;
        run(&["ip", "-n", sw, "link", "set", "lo", "up"])?;
        run(&["ip", "-n", sw, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", sw, "link", "set", "br0", "up"])?;
    }
    for h in &inv.hosts {
        let n = h.name.as_str();
        if exists(n) {
            continue;
        }
        let peer = format!("v-{n}");
        let addr = format!("{}/{}", h.address, inv.prefix_len);
        run(&["ip", "netns", "add", n])?;
        run(&[
            "ip", "link", "add", HOST_IF, "netns", n, "type", "veth", "peer", "name", &peer,
            "netns", sw,
        ])?;
        run(&["ip", "-n", sw, "link", "set", &peer, "master", "br0"])?;
        run(&["ip", "-n", sw, "link", "set", &peer, "up"])?;
        run(&["ip", "-n", n, "addr", "add", &addr, "dev", HOST_IF])?;
        run(&["ip", "-n", n, "link", "set", HOST_IF, "up"])?;
        run(&["ip", "-n", n, "link", "set", "lo", "up"])?;
    }
    Ok(())
}

/// The pids of every process in namespace `name` (empty when it does not exist).
pub fn pids(name: &str) -> Result<Vec<i32>> {
    if !exists(name) {
        return Ok(Vec::new());
    }
    let out = run(&["ip", "netns", "pids", name])?;
    Ok(out
        .lines()
        .filter_map(|l| l.trim().parse::<i32>().ok())
        .filter(|&p| p != std::process::id().cast_signed())
        .collect())
}

/// SIGKILL every process in host namespace `name` (a host crash). Returns the pids signalled.
pub fn kill_all(name: &str) -> Result<Vec<i32>> {
    let pids = pids(name)?;
    for &p in &pids {
        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
    }
    Ok(pids)
}

/// Wait until no process but zombies is left in `name` (or `timeout` passes); returns the pids
/// still alive.
pub fn wait_empty(name: &str, timeout: Duration) -> Result<Vec<i32>> {
    let end = std::time::Instant::now() + timeout;
    loop {
        let alive: Vec<i32> = pids(name)?.into_iter().filter(|p| !is_zombie(*p)).collect();
        if alive.is_empty() || std::time::Instant::now() >= end {
            return Ok(alive);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True when `/proc/<pid>/stat` says the process is a zombie (or it is gone).
#[must_use]
pub fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|st| st == "Z" || st == "X")
    })
}

/// Delete the hosts and the switch of `inv`: every process in them is SIGKILLed first, then the
/// namespaces are deleted (their veths and firewall rules go with them). Idempotent.
pub fn down(inv: &Inventory) -> Result<()> {
    let mut names: Vec<&str> = inv.hosts.iter().map(|h| h.name.as_str()).collect();
    names.push(&inv.switch);
    for n in &names {
        kill_all(n)?;
    }
    for n in &names {
        let left = wait_empty(n, Duration::from_secs(5))?;
        if !left.is_empty() {
            return Err(EvidenceError::failed(format!(
                "processes {left:?} are still running in namespace {n} after SIGKILL"
            )));
        }
        if exists(n) {
            run(&["ip", "netns", "del", n])?;
        }
    }
    Ok(())
}

/// Move the calling thread into namespace `name` (network only; other threads stay where they are).
pub fn enter(name: &str) -> Result<()> {
    let p = std::path::Path::new("/run/netns").join(name);
    let f = File::open(&p).map_err(|e| EvidenceError::io("cannot open namespace", &p, e))?;
    setns(&f, CloneFlags::CLONE_NEWNET)
        .map_err(|e| EvidenceError::failed(format!("setns into {name}: {e}")))
}

fn rule_args<'a>(chain: &'a str, dir: &'a str, tag: &'a str) -> Vec<&'a str> {
    vec![
        chain,
        dir,
        HOST_IF,
        "-m",
        "comment",
        "--comment",
        tag,
        "-j",
        "DROP",
    ]
}

/// Cut host `name` off the network: DROP everything in and out of its `eth0`, inside its own
/// namespace (loopback inside the host keeps working). `tag` marks the rules (e.g. the drill id).
pub fn partition(name: &str, tag: &str) -> Result<()> {
    let tag = format!("{RULE_TAG}:{tag}");
    for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
        let mut argv = vec!["ip", "netns", "exec", name, "iptables", "-w", "-A"];
        argv.extend(rule_args(chain, dir, &tag));
        run(&argv)?;
    }
    Ok(())
}

/// Remove the rules [`partition`] added (each rule it finds; missing ones are fine).
pub fn heal(name: &str, tag: &str) -> Result<()> {
    let tag = format!("{RULE_TAG}:{tag}");
    for (chain, dir) in [("INPUT", "-i"), ("OUTPUT", "-o")] {
        loop {
            let mut argv = vec!["ip", "netns", "exec", name, "iptables", "-w", "-D"];
            argv.extend(rule_args(chain, dir, &tag));
            if run(&argv).is_err() {
                break;
            }
        }
    }
    Ok(())
}

/// The firewall rules inside namespace `name` (`iptables -S`), for checks and tests.
pub fn rules(name: &str) -> Result<String> {
    run(&["ip", "netns", "exec", name, "iptables", "-w", "-S"])
}
