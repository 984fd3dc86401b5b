//! The dead-man reaper end to end (harness = false: this binary is the drill, its reaper and the
//! test). A "drill" takes a lock, starts its reaper, starts a process group and is killed with
//! SIGKILL; the group must be gone and the lock free afterwards, the lock held until then.
#![allow(clippy::unwrap_used, clippy::print_stdout, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use evidence_core::lock::LockFile;
use evidence_core::process::{group_alive, pid_alive};
use evidence_core::reaper::{self, Reaper, ReaperOptions};
use evidence_core::{Exit, cli};

fn drill(dir: &Path) -> evidence_core::Result<Exit> {
    let lock = LockFile::acquire(&dir.join("d.lock"), "test drill")?;
    let r = Reaper::start(&ReaperOptions::new(dir.join("groups.json")), Some(&lock))?;
    #[allow(clippy::zombie_processes)] // the reaper stops it; this process is SIGKILLed
    let child = Command::new("sleep")
        .arg("300")
        .process_group(0)
        .spawn()
        .unwrap();
    reaper::register(child.id(), "sleep");
    println!("{} {}", child.id(), r.pid());
    std::thread::sleep(Duration::from_secs(600));
    Ok(Exit::Pass)
}

fn wait(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() -> std::process::ExitCode {
    if std::env::var_os("REAPER_TEST_DRILL").is_some() {
        let dir = std::path::PathBuf::from(std::env::var_os("REAPER_TEST_DIR").unwrap());
        return cli::main::<NoArgs>("reaper-test", |_| drill(&dir));
    }
    if std::env::var_os(reaper::ENV).is_some() {
        return cli::main::<NoArgs>("reaper-test", |_| Ok(Exit::Pass));
    }
    // The libtest listing protocol, so cargo-nextest can list and run this harness-less test:
    // `--list --format terse` names the one test; `--ignored` lists none.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("reaper_kills_groups_of_a_sigkilled_drill: test");
        }
        return std::process::ExitCode::SUCCESS;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut d = Command::new(std::env::current_exe().unwrap())
        .env("REAPER_TEST_DRILL", "1")
        .env("REAPER_TEST_DIR", dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(d.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Vec<u32> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let (sleep, reaper_pid) = (v[0], v[1]);
    assert!(group_alive(sleep));
    d.kill().unwrap(); // SIGKILL
    d.wait().unwrap();
    wait("the step's group to be gone", 30, || !group_alive(sleep));
    wait("the reaper to exit", 30, || !pid_alive(reaper_pid));
    LockFile::acquire(&dir.path().join("d.lock"), "test drill").unwrap();
    println!("test reaper_kills_groups_of_a_sigkilled_drill ... ok");
    std::process::ExitCode::SUCCESS
}

#[derive(clap::Parser)]
struct NoArgs {}
