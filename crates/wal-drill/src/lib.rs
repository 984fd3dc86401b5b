//! wal-drill: SOP 4, a real WAL crash-recovery drill. Starts a writer, reads its acknowledgements
//! live, SIGKILLs its process group, runs the recovery (and an optional readiness check), measures
//! the RTO with a monotonic clock and the RPO as the acknowledged seqs missing from the recovered
//! WAL, and writes `wal_recovery_result.env` atomically.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use clap::{CommandFactory as _, Parser};
use evidence_core::cli::{info, warn};
use evidence_core::dotenv::EnvWriter;
use evidence_core::drill::{Drill, DrillArgs, DrillDefaults};
use evidence_core::duration::{DurationParser, F64Parser};
use evidence_core::lock::LockFile;
use evidence_core::process::{
    RunOptions, StepOutcome, run_command, run_shell, shell_quote, sibling_binary, signal_group,
};
use evidence_core::provenance::{KeyCase, Provenance};
use evidence_core::reaper::{self, Reaper, ReaperOptions};
use evidence_core::time::{Stopwatch, format_seconds, format_utc};
use evidence_core::{EvidenceError, Exit, Result, signals};
use nix::sys::signal::Signal;
use wal_core::{Ack, Durability, ReplayOptions, Replayer};

const AFTER_HELP: &str = "\
WHAT IT DOES (with --execute; without it, it prints the plan and writes nothing):
  for each of --repeat runs: remove and recreate the scratch WAL --wal-path; start the writer in its
  own process group and read its wal.ack records live; once at least one ack has arrived and
  --kill-after-ms have passed since the start (default: a random moment 100-1000 ms), SIGKILL the
  group (failure_start); run --recover-cmd, then --ready-cmd (recovery_complete when both exit 0);
  rto_seconds = recovery_complete - failure_start on a monotonic clock; rpo_events = acknowledged
  seqs missing from the recovered WAL. The worst run is reported; result=pass only when every run
  recovered within --max-rto-seconds and --max-rpo-events.

COMMANDS: the defaults are wal-writer and `wal-replay --json <wal>` from the folder of this
executable. Custom commands run with `sh -c` and get the WAL path in the environment variable
WAL_PATH (never interpolated); the writer also gets WAL_DURABILITY, WAL_RATE and WAL_EVENTS and must
print one {\"kind\":\"wal.ack\",\"ts_ns\":...,\"acked_seq\":N} line per durable event on stdout.

EXAMPLE:
  wal-drill --execute --durability fsync --repeat 5 --kill-after-ms 300 \\
    --output-file docs/results/wal_recovery_result.env && \\
  wal-verify --evidence-file docs/results/wal_recovery_result.env

";

const EXIT_HELP: &str = "EXIT STATUS:
  0    pass: every run recovered within --max-rto-seconds and --max-rpo-events (dry run: the plan
       was printed)
  1    a run missed a target or its recovery failed; evidence is written (result=fail)
  2    bad flags, a WAL no drill has used, a held lock, an output that cannot be written, a writer
       that acknowledged nothing or ended before the kill; no evidence
  130  interrupted by SIGINT/SIGTERM (the writer was killed); no evidence";

/// Run a real WAL crash-recovery drill and write its evidence.
#[derive(Debug, Parser)]
#[command(name = "wal-drill", version, after_help = format!("{AFTER_HELP}{EXIT_HELP}"))]
pub struct Cli {
    /// Scratch WAL of the drill: removed and recreated at the start of every run (a non-empty file
    /// that no drill has used, i.e. without `<wal>.drill.lock` beside it, is refused).
    #[arg(
        long,
        value_name = "PATH",
        default_value = "runtime/wal/runtime_events.wal"
    )]
    pub wal_path: PathBuf,
    /// What every drill takes (--execute, --dry-run, --operator, --drill-id, --results-dir,
    /// --output-file (default: `docs/results/wal_recovery_result.env`), --lock-file (default:
    /// `<wal-path>.drill.lock`)).
    #[command(flatten)]
    pub drill: DrillArgs,
    /// Durability policy of the writer.
    #[arg(long, value_enum, default_value_t = Durability::Fsync)]
    pub durability: Durability,
    /// Events the writer may write per run; 0 = until killed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub events: u64,
    /// Writer rate, events per second (0 = as fast as possible).
    #[arg(long, value_name = "R", default_value_t = 1000.0, value_parser = F64Parser::new(0.001, 1e7).or_zero())]
    pub rate: f64,
    /// Passed to the default writer (`batch`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub batch_events: Option<u64>,
    /// Passed to the default writer (`batch`).
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub batch_ms: Option<u64>,
    /// Passed to the default writer (`none`): its user-space buffer.
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub buffer_bytes: Option<u64>,
    /// Kill the writer this long after its start (at the earliest after its first ack); default: a
    /// random moment between 100 and 1000 ms, drawn per run. `300`, `300ms`, `2s`.
    #[arg(long, value_name = "MS", value_parser = DurationParser::millis())]
    pub kill_after_ms: Option<Duration>,
    /// Number of runs (kill points); a fresh WAL each run; the worst run is reported.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub repeat: u32,
    /// Writer command instead of the bundled wal-writer (run with `sh -c`, env WAL_PATH).
    #[arg(long, value_name = "CMD")]
    pub writer_cmd: Option<String>,
    /// Recovery command instead of `wal-replay --json <wal>` (run with `sh -c`, env WAL_PATH).
    #[arg(long, value_name = "CMD")]
    pub recover_cmd: Option<String>,
    /// Readiness check after recovery (run with `sh -c`, env WAL_PATH); none by default.
    #[arg(long, value_name = "CMD")]
    pub ready_cmd: Option<String>,
    /// Release version of the system drilled.
    #[arg(long, value_name = "VERSION", default_value = "unreleased")]
    pub release_version: String,
    /// RTO target, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = F64Parser::new(0.0, 86_400.0))]
    pub max_rto_seconds: f64,
    /// RPO target, acknowledged events lost.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_rpo_events: u64,
    /// Give up when the writer has not acknowledged anything after this long (`10000`,
    /// `10s`).
    #[arg(long, value_name = "MS", default_value = "10000", value_parser = positive(DurationParser::millis()))]
    pub ack_timeout_ms: Duration,
    /// Timeout of the recovery and readiness commands, each (`60`, `60s`, `2m`).
    #[arg(long, value_name = "SECONDS", default_value = "60", value_parser = positive(DurationParser::secs()))]
    pub step_timeout_secs: Duration,
}

fn positive(p: DurationParser) -> DurationParser {
    p.min(Duration::from_millis(1))
}

/// The shared drill flags' defaults.
const DEFAULTS: DrillDefaults = DrillDefaults {
    tool: "wal-drill",
    id_prefix: "wal",
    output_name: "wal_recovery_result.env",
    lock_name: "wal-drill.lock",
};

/// A command to run: our bundled binary with arguments, or a user's shell string.
#[derive(Debug, Clone)]
enum Step {
    Bin { program: PathBuf, args: Vec<String> },
    Shell(String),
}

impl Step {
    fn display(&self) -> String {
        match self {
            Step::Bin { program, args } => {
                let mut parts = vec![shell_quote(&program.display().to_string())];
                parts.extend(args.iter().map(|a| shell_quote(a)));
                parts.join(" ")
            }
            Step::Shell(s) => s.clone(),
        }
    }

    fn command(&self) -> Command {
        match self {
            Step::Bin { program, args } => {
                let mut c = Command::new(program);
                c.args(args);
                c
            }
            Step::Shell(s) => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(s);
                c
            }
        }
    }

    fn exists_check(&self) -> Option<String> {
        match self {
            Step::Bin { program, .. } if !program.is_file() => Some(format!(
                "cannot find {} (build the workspace: cargo build --workspace --bins), or pass a custom command",
                program.display()
            )),
            _ => None,
        }
    }
}

#[derive(Debug)]
struct Plan {
    writer: Step,
    recover: Step,
    ready: Option<Step>,
    env: Vec<(String, String)>,
}

fn plan(cli: &Cli) -> Plan {
    let wal = cli.wal_path.display().to_string();
    let writer = match &cli.writer_cmd {
        Some(c) => Step::Shell(c.clone()),
        None => {
            let mut args = vec![
                "--wal-path".to_string(),
                wal.clone(),
                "--events".into(),
                cli.events.to_string(),
                "--rate".into(),
                cli.rate.to_string(),
                "--durability".into(),
                cli.durability.name().into(),
            ];
            for (flag, v) in [
                ("--batch-events", cli.batch_events),
                ("--batch-ms", cli.batch_ms),
                ("--buffer-bytes", cli.buffer_bytes),
            ] {
                if let Some(v) = v {
                    args.push(flag.into());
                    args.push(v.to_string());
                }
            }
            Step::Bin {
                program: sibling_binary("wal-writer"),
                args,
            }
        }
    };
    let recover = match &cli.recover_cmd {
        Some(c) => Step::Shell(c.clone()),
        None => Step::Bin {
            program: sibling_binary("wal-replay"),
            args: vec!["--json".into(), wal.clone()],
        },
    };
    Plan {
        writer,
        recover,
        ready: cli.ready_cmd.clone().map(Step::Shell),
        env: vec![
            ("WAL_PATH".into(), wal),
            ("WAL_DURABILITY".into(), cli.durability.name().into()),
            ("WAL_RATE".into(), cli.rate.to_string()),
            ("WAL_EVENTS".into(), cli.events.to_string()),
        ],
    }
}

/// The validated configuration of one run (from [`Cli`], once).
#[derive(Debug)]
pub struct Config {
    drill: Drill,
    plan: Plan,
}

impl TryFrom<&Cli> for Config {
    type Error = EvidenceError;
    fn try_from(cli: &Cli) -> Result<Config> {
        let mut drill = cli.drill.resolve(&DEFAULTS)?;
        if cli.drill.lock_file.is_none() {
            drill.lock_file = lock_path(&cli.wal_path);
        }
        validate(cli, &drill)?;
        Ok(Config {
            drill,
            plan: plan(cli),
        })
    }
}

fn validate(cli: &Cli, drill: &Drill) -> Result<()> {
    if !cli.max_rto_seconds.is_finite() || cli.max_rto_seconds < 0.0 {
        return Err(EvidenceError::usage(format!(
            "--max-rto-seconds must be a finite number >= 0, found {}",
            cli.max_rto_seconds
        )));
    }
    if !cli.rate.is_finite() || cli.rate < 0.0 {
        return Err(EvidenceError::usage(format!(
            "--rate must be a finite number >= 0, found {}",
            cli.rate
        )));
    }
    if cli.repeat == 0 {
        return Err(EvidenceError::usage("--repeat must be >= 1"));
    }
    if drill.output.path() == Some(cli.wal_path.as_path()) {
        return Err(EvidenceError::usage(
            "--output-file and --wal-path must be different files",
        ));
    }
    if cli.wal_path.is_dir() {
        return Err(EvidenceError::usage(format!(
            "--wal-path {} is a folder",
            cli.wal_path.display()
        )));
    }
    if cli.release_version.trim().is_empty() {
        return Err(EvidenceError::usage("--release-version must not be empty"));
    }
    Ok(())
}

fn lock_path(wal: &Path) -> PathBuf {
    let mut name = wal.file_name().map(ToOwned::to_owned).unwrap_or_default();
    name.push(".drill.lock");
    wal.with_file_name(name)
}

/// The drill removes `--wal-path` at every run. Refuse a non-empty file there that no drill has
/// used (no lock file next to it): it may be a real engine's WAL given by mistake.
fn refuse_foreign_wal(wal: &Path) -> Result<()> {
    let lock = lock_path(wal);
    let holds_data = std::fs::metadata(wal).is_ok_and(|m| m.len() > 0);
    if holds_data && !lock.exists() {
        return Err(EvidenceError::usage(format!(
            "{} holds data and no WAL drill has used it (no {}); the drill removes --wal-path at every run, so give it a scratch path, or remove the file yourself",
            wal.display(),
            lock.display()
        )));
    }
    Ok(())
}

fn kill_window(cli: &Cli) -> String {
    cli.kill_after_ms.map_or_else(
        || "at a random moment 100-1000 ms after its start".to_string(),
        |d| format!("{} ms after its start", d.as_millis()),
    )
}

/// Run the tool.
pub fn run(cli: Cli) -> Result<Exit> {
    let c = Config::try_from(&cli)?;
    let plan = &c.plan;
    if !c.drill.execute {
        let recovery = match &plan.ready {
            Some(r) => format!(
                "{}, then ready check {}",
                plan.recover.display(),
                r.display()
            ),
            None => plan.recover.display(),
        };
        info(&format!(
            "dry run: would remove and recreate {} for each of {} run(s) (lock {})",
            cli.wal_path.display(),
            cli.repeat,
            lock_path(&cli.wal_path).display()
        ));
        info(&format!("dry run: would start {}", plan.writer.display()));
        info(&format!(
            "dry run: would kill its process group with SIGKILL {}, once it has acknowledged an event",
            kill_window(&cli)
        ));
        info(&format!("dry run: would recover with {recovery}"));
        info(&format!(
            "dry run: would write {} (targets: rto <= {} s, rpo <= {} events); nothing was done, use --execute",
            c.drill.output, cli.max_rto_seconds, cli.max_rpo_events
        ));
        for step in [&plan.writer, &plan.recover] {
            if let Some(msg) = step.exists_check() {
                warn(&msg);
            }
        }
        return Ok(Exit::Pass);
    }
    for step in [&plan.writer, &plan.recover] {
        if let Some(msg) = step.exists_check() {
            return Err(EvidenceError::failed(msg));
        }
    }
    refuse_foreign_wal(&cli.wal_path)?;
    signals::install()?;
    // The lock beside the WAL also marks it as a drill's scratch WAL (see refuse_foreign_wal).
    let marker = LockFile::acquire(&lock_path(&cli.wal_path), "WAL drill")?;
    let _lock = if c.drill.lock_file == lock_path(&cli.wal_path) {
        None
    } else {
        Some(LockFile::acquire(&c.drill.lock_file, "WAL drill")?)
    };
    // The writer and the recovery steps die with the drill, also on SIGKILL.
    let mut reaper_file = lock_path(&cli.wal_path).into_os_string();
    reaper_file.push(".reaper.json");
    let reaper = Reaper::start(&ReaperOptions::new(reaper_file), Some(&marker))?;
    let mut prov = Provenance::start(
        "wal-drill",
        env!("CARGO_PKG_VERSION"),
        Some(&c.drill.operator),
        false,
    );
    let mut runs = Vec::new();
    for i in 1..=cli.repeat {
        signals::check()?;
        let r = one_run(&cli, plan, i)?;
        info(&format!(
            "run {i}/{}: killed writer after {} ms with {} acks; recovered {} events, lost {} acked; rto {} s; {}",
            cli.repeat,
            r.killed_after_ms,
            r.acked,
            r.recovered,
            r.rpo,
            format_seconds(r.rto),
            if r.pass { "pass" } else { "fail" }
        ));
        runs.push(r);
    }
    signals::check()?;
    reaper.stop();
    prov.finish();
    let text = render(&cli, plan, c.drill.id.as_str(), &runs, &prov);
    c.drill.output.write_all(text.as_bytes())?;
    let pass = runs.iter().all(|r| r.pass);
    if c.drill.output.path().is_some() {
        info(&format!(
            "result={} evidence written to {}",
            if pass { "pass" } else { "fail" },
            c.drill.output
        ));
    }
    Ok(Exit::pass_if(pass))
}

/// What one run measured.
#[derive(Debug, Clone)]
struct RunResult {
    index: u32,
    kill_after_ms: u64,
    killed_after_ms: u64,
    writer_pid: u32,
    writer_status: String,
    failure_start_ns: i64,
    recovery_complete_ns: i64,
    rto: Duration,
    acked: u64,
    recovered: u64,
    rpo: u64,
    torn_tail_bytes: u64,
    recovery: String,
    recovered_ok: bool,
    pass: bool,
}

#[derive(Default)]
struct AckLog {
    seqs: Vec<u64>,
    first: Option<Instant>,
    other_lines: u64,
    eof: bool,
}

/// The writer's process group: killed (SIGKILL) and reaped however the run ends.
struct WriterGuard {
    child: Child,
    reaped: bool,
}

impl WriterGuard {
    fn kill(&mut self) {
        signal_group(self.child.id(), Signal::SIGKILL);
    }
    fn reap(&mut self) -> String {
        self.reaped = true;
        match self.child.wait() {
            Ok(st) => describe_status(st),
            Err(e) => format!("unknown ({e})"),
        }
    }
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
            let _ = self.child.wait();
        }
    }
}

fn describe_status(st: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(9)) => "killed by SIGKILL".to_string(),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown".to_string(),
    }
}

fn tail_of(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    let b = buf.lock().map(|b| b.clone()).unwrap_or_default();
    String::from_utf8_lossy(&b).trim().replace('\n', " | ")
}

/// A running writer: its process group, the acks read live, the end of its stderr.
struct LiveWriter {
    guard: WriterGuard,
    pid: u32,
    start: Instant,
    acks: Arc<Mutex<AckLog>>,
    ack_thread: thread::JoinHandle<()>,
    err_tail: Arc<Mutex<Vec<u8>>>,
}

fn start_writer(plan: &Plan) -> Result<LiveWriter> {
    let mut cmd = plan.writer.command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in &plan.env {
        cmd.env(k, v);
    }
    if let Some(tag) = reaper::tag() {
        cmd.env(reaper::TAG_ENV, tag);
    }
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        EvidenceError::failed(format!(
            "cannot start writer {}: {e}",
            plan.writer.display()
        ))
    })?;
    let pid = child.id();
    reaper::register(pid, "writer");
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let acks = Arc::new(Mutex::new(AckLog::default()));
    let ack_thread = {
        let acks = Arc::clone(&acks);
        thread::spawn(move || read_acks(stdout, &acks))
    };
    let err_tail = Arc::new(Mutex::new(Vec::new()));
    {
        let err_tail = Arc::clone(&err_tail);
        thread::spawn(move || keep_tail(stderr, &err_tail, 4096));
    }
    Ok(LiveWriter {
        guard: WriterGuard {
            child,
            reaped: false,
        },
        pid,
        start,
        acks,
        ack_thread,
        err_tail,
    })
}

/// Wait for the first ack, then for the kill moment; the writer must still be running.
fn wait_kill_point(cli: &Cli, w: &mut LiveWriter, kill_after_ms: u64, index: u32) -> Result<()> {
    let ack_deadline = w.start + cli.ack_timeout_ms;
    let kill_at = w.start + Duration::from_millis(kill_after_ms);
    loop {
        if signals::interrupted() {
            w.guard.kill();
            w.guard.reap();
            return Err(EvidenceError::Interrupted);
        }
        let first = w.acks.lock().ok().and_then(|a| a.first);
        let now = Instant::now();
        if let Ok(Some(st)) = w.guard.child.try_wait() {
            w.guard.reaped = true;
            signal_group(w.pid, Signal::SIGKILL);
            let n = w.acks.lock().map(|a| a.seqs.len()).unwrap_or(0);
            return Err(EvidenceError::failed(format!(
                "run {index}: the writer ended by itself ({}) after {} ms with {n} acks, before the kill point; use --events 0 or a shorter --kill-after-ms{}",
                describe_status(st),
                now.duration_since(w.start).as_millis(),
                stderr_note(&w.err_tail)
            )));
        }
        match first {
            None if now >= ack_deadline => {
                w.guard.kill();
                w.guard.reap();
                return Err(EvidenceError::failed(format!(
                    "run {index}: the writer acknowledged nothing within {} ms{}",
                    cli.ack_timeout_ms.as_millis(),
                    stderr_note(&w.err_tail)
                )));
            }
            Some(_) if now >= kill_at => return Ok(()),
            _ => {}
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// Recovery, then readiness: (description, both succeeded).
fn recover(cli: &Cli, plan: &Plan) -> Result<(String, bool)> {
    let opts = RunOptions {
        timeout: cli.step_timeout_secs,
        env: plan.env.clone(),
        ..RunOptions::default()
    };
    let rec = run_step(&plan.recover, &opts)?;
    let mut recovery = format!("recover {}", rec.describe());
    let mut ok = rec.success();
    if ok && let Some(ready) = &plan.ready {
        let r = run_step(ready, &opts)?;
        recovery.push_str(&format!("; ready {}", r.describe()));
        ok = r.success();
    }
    if !ok {
        let tail = if rec.success() {
            ""
        } else {
            rec.stderr_tail.trim()
        };
        if !tail.is_empty() {
            recovery.push_str(&format!(" ({})", tail.replace('\n', " | ")));
        }
    }
    Ok((recovery, ok))
}

/// Every ack the writer emitted before it died is in the pipe: drain to EOF. Sorted, unique.
fn drain_acks(w: LiveWriter, index: u32) -> Vec<u64> {
    let drained = wait_eof(&w.acks, Duration::from_secs(5));
    let _ = drained && w.ack_thread.join().is_ok();
    let (mut acked, other_lines) = w
        .acks
        .lock()
        .map(|a| (a.seqs.clone(), a.other_lines))
        .unwrap_or_default();
    if !drained {
        warn(&format!(
            "run {index}: the writer's stdout did not close within 5 s after the kill (a process outside its group holds it?); counting the acks read so far"
        ));
    }
    if other_lines > 0 {
        warn(&format!(
            "run {index}: ignored {other_lines} stdout lines of the writer that are not wal.ack records"
        ));
    }
    acked.sort_unstable();
    acked.dedup();
    acked
}

fn one_run(cli: &Cli, plan: &Plan, index: u32) -> Result<RunResult> {
    match std::fs::remove_file(&cli.wal_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(EvidenceError::io("cannot remove", &cli.wal_path, e)),
    }
    let kill_after_ms = cli.kill_after_ms.map_or_else(
        || fastrand::u64(100..=1000),
        |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
    );
    let mut w = start_writer(plan)?;
    wait_kill_point(cli, &mut w, kill_after_ms, index)?;
    // The failure: SIGKILL the whole group; failure_start is taken right then.
    w.guard.kill();
    let failure = Stopwatch::start();
    let killed_after_ms =
        u64::try_from(failure.instant().duration_since(w.start).as_millis()).unwrap_or(u64::MAX);
    let writer_status = w.guard.reap();
    let writer_pid = w.pid;
    let (recovery, ok) = recover(cli, plan)?;
    let rto = failure.elapsed();
    let recovery_complete_ns = failure
        .start_wall_ns()
        .saturating_add(i64::try_from(rto.as_nanos()).unwrap_or(i64::MAX));
    let acked = drain_acks(w, index);
    // The recovered WAL, as recovery left it: which seqs are there.
    let (recovered_seqs, torn) = recovered_seqs(&cli.wal_path)?;
    let rpo = acked
        .iter()
        .filter(|s| recovered_seqs.binary_search(s).is_err())
        .count() as u64;
    let pass = ok && rto.as_secs_f64() <= cli.max_rto_seconds && rpo <= cli.max_rpo_events;
    Ok(RunResult {
        index,
        kill_after_ms,
        killed_after_ms,
        writer_pid,
        writer_status,
        failure_start_ns: failure.start_wall_ns(),
        recovery_complete_ns,
        rto,
        acked: acked.len() as u64,
        recovered: recovered_seqs.len() as u64,
        rpo,
        torn_tail_bytes: torn,
        recovery,
        recovered_ok: ok,
        pass,
    })
}

fn stderr_note(tail: &Arc<Mutex<Vec<u8>>>) -> String {
    let t = tail_of(tail);
    if t.is_empty() {
        String::new()
    } else {
        format!("; writer stderr: {t}")
    }
}

fn run_step(step: &Step, opts: &RunOptions) -> Result<StepOutcome> {
    let out = match step {
        Step::Shell(s) => run_shell(s, opts)?,
        Step::Bin { .. } => run_command(step.command(), opts)?,
    };
    if out.interrupted {
        return Err(EvidenceError::Interrupted);
    }
    Ok(out)
}

fn read_acks(stdout: Option<std::process::ChildStdout>, acks: &Arc<Mutex<AckLog>>) {
    if let Some(out) = stdout {
        let mut r = BufReader::new(out);
        let mut line = Vec::with_capacity(128);
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    // A partial last line (cut by the kill) is not an ack.
                    if line.last() != Some(&b'\n') {
                        break;
                    }
                    let parsed = serde_json::from_slice::<Ack>(&line);
                    if let Ok(mut a) = acks.lock() {
                        match parsed {
                            Ok(ack) => {
                                a.seqs.push(ack.acked_seq);
                                a.first.get_or_insert_with(Instant::now);
                            }
                            Err(_) => {
                                if !line.iter().all(u8::is_ascii_whitespace) {
                                    a.other_lines += 1;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    if let Ok(mut a) = acks.lock() {
        a.eof = true;
    }
}

fn keep_tail<R: Read>(src: Option<R>, buf: &Arc<Mutex<Vec<u8>>>, limit: usize) {
    let Some(mut src) = src else { return };
    let mut chunk = [0u8; 4096];
    loop {
        match src.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Ok(mut v) = buf.lock() {
                    v.extend_from_slice(&chunk[..n]);
                    if v.len() > limit {
                        let cut = v.len() - limit;
                        v.drain(..cut);
                    }
                }
            }
        }
    }
}

fn wait_eof(acks: &Arc<Mutex<AckLog>>, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    loop {
        if acks.lock().map(|a| a.eof).unwrap_or(true) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// The distinct seqs of the events in the WAL at `path` (sorted) and its torn tail in bytes. A
/// missing file holds nothing.
fn recovered_seqs(path: &Path) -> Result<(Vec<u64>, u64)> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(EvidenceError::io("cannot read", path, e)),
    };
    let opts = ReplayOptions {
        collect_seqs: true,
        max_listed: 0,
    };
    let (summary, mut seqs) = Replayer::new(&path.display().to_string(), opts)
        .run(f)
        .map_err(|e| EvidenceError::io("cannot read", path, e))?;
    seqs.sort_unstable();
    seqs.dedup();
    Ok((seqs, summary.torn_tail_bytes))
}

fn worst(runs: &[RunResult]) -> Option<&RunResult> {
    runs.iter().max_by(|a, b| {
        (!a.pass, a.rpo, a.rto)
            .cmp(&(!b.pass, b.rpo, b.rto))
            // On a tie keep the earlier run.
            .then(b.index.cmp(&a.index))
    })
}

fn render(cli: &Cli, plan: &Plan, drill_id: &str, runs: &[RunResult], prov: &Provenance) -> String {
    let mut w = EnvWriter::new();
    w.comment("WAL recovery drill evidence, written by wal-drill (contract: docs/templates/WAL_RECOVERY_RESULT.md)");
    let Some(r) = worst(runs) else {
        return w.render();
    };
    let passed = runs.iter().filter(|r| r.pass).count();
    let pass = passed == runs.len();
    let notes = format!(
        "durability={} runs={} passed={passed}; worst run {}: writer pid {} SIGKILLed {} ms after start ({}) with {} acked events; recovered WAL holds {} events, {} acked events missing, torn tail {} bytes; {} in {} s{}",
        cli.durability.name(),
        runs.len(),
        r.index,
        r.writer_pid,
        r.killed_after_ms,
        r.writer_status,
        r.acked,
        r.recovered,
        r.rpo,
        r.torn_tail_bytes,
        r.recovery,
        format_seconds(r.rto),
        if r.recovered_ok {
            ""
        } else {
            "; recovery FAILED"
        }
    );
    w.push("drill_id", drill_id)
        .push("release_version", &cli.release_version)
        .push("wal_path", cli.wal_path.display())
        .push("failure_start_utc", format_utc(r.failure_start_ns))
        .push("recovery_complete_utc", format_utc(r.recovery_complete_ns))
        .push("rto_seconds", format_seconds(r.rto))
        .push("rpo_events", r.rpo)
        .push("operator", &prov.operator)
        .push("result", if pass { "pass" } else { "fail" })
        .push("notes", notes)
        .push("events_acked", r.acked)
        .push("events_recovered", r.recovered)
        .push("torn_tail_bytes", r.torn_tail_bytes)
        .push("durability", cli.durability.name())
        .push("writer_cmd", plan.writer.display())
        .push("recover_cmd", plan.recover.display())
        .push(
            "ready_cmd",
            plan.ready
                .as_ref()
                .map_or_else(|| "none".to_string(), Step::display),
        )
        .push("kill_after_ms", r.kill_after_ms)
        .push("killed_after_ms", r.killed_after_ms)
        .push("writer_status", &r.writer_status)
        .push("recovery_status", &r.recovery)
        .push("max_rto_seconds", cli.max_rto_seconds)
        .push("max_rpo_events", cli.max_rpo_events)
        .push("repeat", runs.len())
        .push("runs_passed", passed)
        .push("worst_run", r.index);
    if runs.len() > 1 {
        let max_rto = runs.iter().map(|r| r.rto).max().unwrap_or_default();
        let max_rpo = runs.iter().map(|r| r.rpo).max().unwrap_or_default();
        w.push("rto_seconds_max", format_seconds(max_rto))
            .push("rpo_events_max", max_rpo);
        for r in runs {
            let k = |s: &str| format!("run_{}_{s}", r.index);
            w.push(k("result"), if r.pass { "pass" } else { "fail" })
                .push(k("kill_after_ms"), r.kill_after_ms)
                .push(k("rto_seconds"), format_seconds(r.rto))
                .push(k("rpo_events"), r.rpo)
                .push(k("events_acked"), r.acked)
                .push(k("events_recovered"), r.recovered)
                .push(k("torn_tail_bytes"), r.torn_tail_bytes);
        }
    }
    w.extend(prov.env_pairs(KeyCase::Lower));
    w.render()
}

/// clap's command, for docs and the CLI check.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn words_are_quoted_for_display() {
        assert_eq!(shell_quote("runtime/w.wal"), "runtime/w.wal");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(
            lock_path(Path::new("r/w.wal")),
            PathBuf::from("r/w.wal.drill.lock")
        );
    }
}
