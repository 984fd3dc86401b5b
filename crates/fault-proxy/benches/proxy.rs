//! fault-proxy benchmark (not a test): run with `cargo bench -p fault-proxy` or
//! `scripts/bench/fault-proxy.sh`. Starts the release `fault-proxy` binary on loopback in front of an
//! echo server and a sink started here, with no fault active, and measures against a direct
//! connection:
//!
//! - added round-trip latency: ping-pong of 64-byte messages, `BENCH_ROUNDTRIPS` (default 20000)
//!   per path, in alternating blocks of 1000 so that load on the shared machine hits both paths
//!   alike; p50/p99 of each and their difference. Targets: added p50 ≤ 50 µs, p99 ≤ 200 µs.
//! - one-stream throughput: `BENCH_BYTES` (default 2 GiB) written in 1 MiB writes, timed until the
//!   sink has read the last byte. Target ≥ 1 GB/s (10^9 bytes/s) through the proxy.
//!
//! `BENCH_NO_SPLICE=1` makes the proxy copy through a buffer instead of splice(2) (comparison).
//! `BENCH_PROXY_BIN` runs another fault-proxy binary instead of this build's (A/B comparisons);
//! `BENCH_PROXY_ARGS` adds arguments to its command line (e.g. `--spin-us 0`).
//!
//! Also reports the proxy's CPU time (user + system) during the round trips, while the two
//! connections sit idle for a second afterwards, and during the proxied stream.
//!
//! Prints a human summary and one JSON line (`kind":"bench.fault_proxy"`). Exit 1 when a target is
//! missed.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    reason = "a benchmark's report is its stdout; setup failures should panic"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary under test: this build's, or `BENCH_PROXY_BIN` to compare another build.
fn proxy_bin() -> String {
    std::env::var("BENCH_PROXY_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_fault-proxy").to_string())
}
const MSG: usize = 64;
const BLOCK: usize = 1000;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            s.set_nodelay(true).unwrap();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    a
}

/// A sink: reads each connection to EOF and sends the byte count.
fn sink_server() -> (SocketAddr, mpsc::Receiver<u64>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let mut s = s.unwrap();
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 20];
                let mut total = 0u64;
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                let _ = tx.send(total);
            });
        }
    });
    (a, rx)
}

fn rtt_block(s: &mut TcpStream, n: usize, out: &mut Vec<u64>) {
    let msg = [0x5au8; MSG];
    let mut back = [0u8; MSG];
    for _ in 0..n {
        let t = Instant::now();
        s.write_all(&msg).unwrap();
        s.read_exact(&mut back).unwrap();
        out.push(u64::try_from(t.elapsed().as_nanos()).unwrap());
    }
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    // Nearest rank.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "small positive rank"
    )]
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1] as f64 / 1000.0
}

fn throughput(addr: SocketAddr, rx: &mpsc::Receiver<u64>, bytes: u64) -> f64 {
    let mut s = TcpStream::connect(addr).unwrap();
    let buf = vec![0xa5u8; 1 << 20];
    let t = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap();
        s.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let got = rx.recv_timeout(Duration::from_secs(600)).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(got, bytes, "sink received a different byte count");
    bytes as f64 / secs / 1e9
}

/// User + system CPU seconds of a process so far (from /proc, at 100 ticks per second).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the ")" that ends the command name: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    let roundtrips = usize::try_from(env_u64("BENCH_ROUNDTRIPS", 20_000)).unwrap();
    let bytes = env_u64("BENCH_BYTES", 2 << 30);
    let no_splice = env_u64("BENCH_NO_SPLICE", 0) == 1;
    let extra_args = std::env::var("BENCH_PROXY_ARGS").unwrap_or_default();
    let load_before = loadavg();
    let echo = echo_server();
    let (sink, sink_rx) = sink_server();
    let dir = std::env::temp_dir().join(format!("fault-proxy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(proxy_bin())
        .arg("--pair")
        .arg(format!("echo=0,{echo}"))
        .arg("--pair")
        .arg(format!("sink=0,{sink}"))
        .arg("--control")
        .arg(dir.join("ctl.sock"))
        .args(no_splice.then_some("--no-splice"))
        .args(extra_args.split_whitespace())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: serde_json::Value = serde_json::from_str(&line).unwrap();
    let listen = |i: usize| -> SocketAddr {
        ready["pairs"][i]["listen"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let (p_echo, p_sink) = (listen(0), listen(1));

    let mut direct = TcpStream::connect(echo).unwrap();
    let mut proxied = TcpStream::connect(p_echo).unwrap();
    for s in [&direct, &proxied] {
        s.set_nodelay(true).unwrap();
    }
    let (mut d, mut p) = (
        Vec::with_capacity(roundtrips),
        Vec::with_capacity(roundtrips),
    );
    let mut warm = Vec::new();
    rtt_block(&mut direct, BLOCK, &mut warm);
    rtt_block(&mut proxied, BLOCK, &mut warm);
    let cpu_rtt0 = cpu_seconds(child.id());
    let mut done = 0;
    while done < roundtrips {
        let n = BLOCK.min(roundtrips - done);
        rtt_block(&mut direct, n, &mut d);
        rtt_block(&mut proxied, n, &mut p);
        done += n;
    }
    let cpu_rtt = cpu_seconds(child.id()) - cpu_rtt0;
    // Idle: both connections open, no traffic (the spin must stop right after the traffic).
    std::thread::sleep(Duration::from_millis(100));
    let cpu_idle0 = cpu_seconds(child.id());
    std::thread::sleep(Duration::from_secs(1));
    let cpu_idle = cpu_seconds(child.id()) - cpu_idle0;
    d.sort_unstable();
    p.sort_unstable();
    let (d50, d99, p50, p99) = (pct(&d, 50.0), pct(&d, 99.0), pct(&p, 50.0), pct(&p, 99.0));
    let (add50, add99) = (p50 - d50, p99 - d99);

    let gbs_direct = throughput(sink, &sink_rx, bytes);
    let cpu0 = cpu_seconds(child.id());
    let gbs_proxy = throughput(p_sink, &sink_rx, bytes);
    let proxy_cpu = cpu_seconds(child.id()) - cpu0;
    let load_after = loadavg();

    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    );
    let status = child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    let ok50 = add50 <= 50.0;
    let ok99 = add99 <= 200.0;
    let okt = gbs_proxy >= 1.0;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!(
        "fault-proxy benchmark (loopback, no fault active, release build, {})",
        if no_splice { "copy" } else { "splice" }
    );
    println!(
        "  load average before: {load_before}; after: {load_after}; cpus: {}",
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    println!("  round trips: {roundtrips} x {MSG} B per path (alternating blocks of {BLOCK})");
    println!("  direct  p50 {d50:8.1} us   p99 {d99:8.1} us");
    println!("  proxied p50 {p50:8.1} us   p99 {p99:8.1} us");
    println!(
        "  added   p50 {add50:8.1} us   p99 {add99:8.1} us   (targets 50 / 200: {} / {})",
        verdict(ok50),
        verdict(ok99)
    );
    println!(
        "  one stream {:.2} GiB: direct {gbs_direct:.2} GB/s, proxied {gbs_proxy:.2} GB/s (target 1 GB/s: {})",
        bytes as f64 / f64::from(1u32 << 30),
        verdict(okt)
    );
    println!(
        "  proxy CPU: round trips {cpu_rtt:.2} s, 1 s idle with 2 open connections {cpu_idle:.2} s, proxied stream {proxy_cpu:.2} s"
    );
    println!("  proxy exit status: {status}");
    let json = serde_json::json!({
        "kind": "bench.fault_proxy",
        "ts_ns": evidence_core::time::now_ns(),
        "mode": if no_splice { "copy" } else { "splice" },
        "roundtrips": roundtrips,
        "message_bytes": MSG,
        "direct_p50_us": d50, "direct_p99_us": d99,
        "proxied_p50_us": p50, "proxied_p99_us": p99,
        "added_p50_us": add50, "added_p99_us": add99,
        "stream_bytes": bytes,
        "direct_gb_per_s": gbs_direct, "proxied_gb_per_s": gbs_proxy,
        "proxy_cpu_s_stream": proxy_cpu,
        "proxy_cpu_s_roundtrips": cpu_rtt,
        "proxy_cpu_s_idle_1s": cpu_idle,
        "proxy_args": extra_args,
        "loadavg_before": load_before, "loadavg_after": load_after,
        "targets_met": ok50 && ok99 && okt,
    });
    println!("{json}");
    if !(ok50 && ok99 && okt && status.success()) {
        std::process::exit(1);
    }
}
