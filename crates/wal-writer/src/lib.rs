//! wal-writer: stands in for the trading engine. Appends order events in the platform's WAL line
//! format at a steady rate under a durability policy, and acknowledges each event on stdout (one
//! `wal.ack` JSONL record) once it is durable under that policy.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{CommandFactory as _, Parser};
use evidence_core::cli::{EXIT_STATUS_HELP, info};
use evidence_core::duration::F64Parser;
use evidence_core::time::now_ns;
use evidence_core::{EvidenceError, Exit, Result, signals};
use wal_core::{Ack, Durability, ReplayOptions, Replayer, Status, WalLine};

const AFTER_HELP: &str = "\
DURABILITY (when an event is acknowledged on stdout):
  fsync  after the fdatasync(2) of that event's write
  batch  after the fdatasync(2) of its batch (every --batch-events events or --batch-ms ms,
         whichever comes first); one ack per event
  none   when the event is accepted into the user-space buffer of --buffer-bytes bytes, which is
         written to the file (no fsync) only when the next event would not fit: like the engine's
         append stream, which counts an event written when `<<` returns. A SIGKILL loses what is
         still in the buffer, acknowledged or not.

RESUMING: seq starts at (largest seq in the file) + 1. If the file ends with a torn line (no newline),
the writer leaves it in place and starts on a new line, so the new events parse; wal-replay then
reports the old torn line as a parse error.

EXAMPLE:
  wal-writer --wal-path runtime/wal/runtime_events.wal --events 1000 --rate 500 --durability batch \\
    | tail -n1        # {\"kind\":\"wal.ack\",\"ts_ns\":...,\"acked_seq\":999}

";

/// Append order events to a WAL under a durability policy and acknowledge durable events.
#[derive(Debug, Parser)]
#[command(name = "wal-writer", version, after_help = format!("{AFTER_HELP}{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// The WAL file to append to (created when missing).
    #[arg(long, value_name = "PATH")]
    pub wal_path: PathBuf,
    /// Number of events to write; 0 writes until killed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub events: u64,
    /// Events per second; 0 writes as fast as possible.
    #[arg(long, value_name = "R", default_value_t = 1000.0, value_parser = rate_parser())]
    pub rate: f64,
    /// When an event counts as durable (see DURABILITY below).
    #[arg(long, value_enum, default_value_t = Durability::Fsync)]
    pub durability: Durability,
    /// `batch`: fsync after this many events.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub batch_events: u64,
    /// `batch`: fsync at the latest this many milliseconds after the first event of a batch.
    #[arg(long, value_name = "T", default_value_t = 10, value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub batch_ms: u64,
    /// `none`: size of the user-space buffer, written out only when full.
    #[arg(long, value_name = "B", default_value_t = 65536, value_parser = buffer_parser())]
    pub buffer_bytes: usize,
    /// Seed of the order generator (default: from the clock).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

const ACCOUNTS: [&str; 3] = ["sim-account-1", "sim-account-2", "sim-account-3"];
const INSTRUMENTS: [(&str, f64); 4] = [
    ("SHFE.ag2406", 7350.0),
    ("SHFE.au2406", 560.0),
    ("DCE.m2409", 3120.0),
    ("CZCE.SR409", 6050.0),
];

struct LiveOrder {
    id: String,
    exchange_id: String,
    account: &'static str,
    instrument: &'static str,
    price: f64,
    total: u64,
    filled: u64,
    status: Status,
}

/// Generates events that follow legal order lifecycles (new, accepted, partial fills, filled or
/// canceled; a few rejected), interleaving up to eight live orders across accounts and instruments.
pub struct Generator {
    rng: fastrand::Rng,
    live: Vec<LiveOrder>,
}

impl Generator {
    /// A generator seeded with `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: fastrand::Rng::with_seed(seed),
            live: Vec::new(),
        }
    }

    /// The event with sequence number `seq` at `ts_ns`.
    pub fn next(&mut self, seq: u64, ts_ns: i64) -> WalLine {
        let create = self.live.is_empty() || (self.live.len() < 8 && self.rng.u8(..3) == 0);
        if create {
            let (instrument, base) = INSTRUMENTS[self.rng.usize(..INSTRUMENTS.len())];
            let o = LiveOrder {
                id: format!("c-{seq:08}"),
                exchange_id: String::new(),
                account: ACCOUNTS[self.rng.usize(..ACCOUNTS.len())],
                instrument,
                price: base + f64::from(self.rng.u8(..20)),
                total: self.rng.u64(1..=10),
                filled: 0,
                status: Status::New,
            };
            let line = line_of(&o, seq, ts_ns, "order", "");
            self.live.push(o);
            return line;
        }
        let i = self.rng.usize(..self.live.len());
        let roll = self.rng.u8(..100);
        let o = &mut self.live[i];
        let (kind, reason) = match o.status {
            Status::New if roll < 5 => {
                o.status = Status::Rejected;
                ("order", "risk check failed")
            }
            Status::New if roll < 8 => {
                o.status = Status::Canceled;
                ("order", "canceled by strategy")
            }
            Status::New => {
                o.status = Status::Accepted;
                o.exchange_id = format!("ex-{seq:08}");
                ("order", "")
            }
            _ if roll < 10 => {
                o.status = Status::Canceled;
                ("order", "canceled by strategy")
            }
            _ => {
                let left = o.total - o.filled;
                o.filled += self.rng.u64(1..=left);
                o.status = if o.filled == o.total {
                    Status::Filled
                } else {
                    Status::PartiallyFilled
                };
                ("trade", "")
            }
        };
        let line = line_of(o, seq, ts_ns, kind, reason);
        if o.status.is_terminal() {
            self.live.swap_remove(i);
        }
        line
    }
}

fn line_of(o: &LiveOrder, seq: u64, ts_ns: i64, kind: &str, reason: &str) -> WalLine {
    WalLine {
        seq,
        kind: kind.to_string(),
        ts_ns,
        account_id: o.account.to_string(),
        client_order_id: o.id.clone(),
        exchange_order_id: o.exchange_id.clone(),
        instrument_id: o.instrument.to_string(),
        status: o.status.code(),
        total_volume: o.total,
        filled_volume: o.filled,
        avg_fill_price: if o.filled > 0 { o.price } else { 0.0 },
        reason: reason.to_string(),
        trace_id: format!("t-{}", o.id),
    }
}

/// What a WAL already holds: the seq to resume at and whether it ends mid-line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePoint {
    /// (largest seq) + 1, or 0 for an empty or missing file.
    pub next_seq: u64,
    /// Bytes after the last newline (0 when the file ends with a newline).
    pub unterminated_bytes: u64,
}

/// Read `path` (missing = empty) and find where to resume.
pub fn resume_point(path: &Path) -> Result<ResumePoint> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(ResumePoint {
                next_seq: 0,
                unterminated_bytes: 0,
            });
        }
        Err(e) => return Err(EvidenceError::io("cannot read", path, e)),
    };
    let label = path.display().to_string();
    let (summary, _) = Replayer::new(&label, ReplayOptions::default())
        .run(&mut f)
        .map_err(|e| EvidenceError::io("cannot read", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| EvidenceError::io("cannot read", path, e))?
        .len();
    let mut unterminated = 0u64;
    if len > 0 {
        // Count the bytes after the last newline (at most one 64 KiB read back is typical).
        let mut pos = len;
        let mut chunk = vec![0u8; 65536];
        'outer: while pos > 0 {
            let n = (pos.min(chunk.len() as u64)) as usize;
            pos -= n as u64;
            f.seek(SeekFrom::Start(pos))
                .and_then(|_| f.read_exact(&mut chunk[..n]))
                .map_err(|e| EvidenceError::io("cannot read", path, e))?;
            for b in chunk[..n].iter().rev() {
                if *b == b'\n' {
                    break 'outer;
                }
                unterminated += 1;
            }
        }
    }
    let next_seq = match summary.last_seq {
        None => 0,
        Some(s) => s.checked_add(1).ok_or_else(|| {
            EvidenceError::failed(format!(
                "{}: its largest seq is {s}: no seq is left to resume at",
                path.display()
            ))
        })?,
    };
    Ok(ResumePoint {
        next_seq,
        unterminated_bytes: unterminated,
    })
}

struct Sink {
    file: File,
    path: PathBuf,
    acks: Vec<u8>,
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| EvidenceError::io("cannot write", &self.path, e))
    }

    fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| EvidenceError::io("cannot fsync", &self.path, e))
    }

    /// Emit acks for `seqs` on stdout in one write, flushed.
    fn ack(&mut self, seqs: &[u64]) -> Result<()> {
        self.acks.clear();
        let ts = now_ns();
        for s in seqs {
            Ack::new(*s, ts).write_to(&mut self.acks);
        }
        let mut out = io::stdout().lock();
        out.write_all(&self.acks)
            .and_then(|()| out.flush())
            .map_err(|e| EvidenceError::io("cannot write", "-", e))
    }
}

/// Events per second: 0 (as fast as possible) or 0.001 to 10 million; `1e-300` is refused.
#[must_use]
pub fn rate_parser() -> F64Parser {
    F64Parser::new(0.001, 1e7).or_zero()
}

fn buffer_parser() -> impl clap::builder::TypedValueParser<Value = usize> {
    use clap::builder::TypedValueParser as _;
    clap::value_parser!(u64)
        .range(1..=1 << 30)
        .map(|v| usize::try_from(v).unwrap_or(usize::MAX))
}

fn validate(cli: &Cli) -> Result<()> {
    if !cli.rate.is_finite() || cli.rate < 0.0 {
        return Err(EvidenceError::usage(format!(
            "--rate must be a finite number >= 0, found {}",
            cli.rate
        )));
    }
    if cli.batch_events == 0 {
        return Err(EvidenceError::usage("--batch-events must be >= 1"));
    }
    if cli.buffer_bytes == 0 {
        return Err(EvidenceError::usage("--buffer-bytes must be >= 1"));
    }
    Ok(())
}

/// Open the WAL for appending (creating its folder), starting on a fresh line after a torn tail.
fn open_sink(cli: &Cli, resume: &ResumePoint) -> Result<Sink> {
    if let Some(dir) = cli.wal_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| EvidenceError::io("cannot create folder", dir, e))?;
    }
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&cli.wal_path)
        .map_err(|e| EvidenceError::io("cannot open", &cli.wal_path, e))?;
    let mut sink = Sink {
        file,
        path: cli.wal_path.clone(),
        acks: Vec::with_capacity(4096),
    };
    if resume.unterminated_bytes > 0 {
        info(&format!(
            "{} ends with {} bytes after its last newline (a torn write); leaving them and starting on a new line",
            cli.wal_path.display(),
            resume.unterminated_bytes
        ));
        sink.write(b"\n")?;
        sink.sync()?;
    }
    Ok(sink)
}

/// The write loop's state: the sink, the user-space buffer and the open batch.
struct Writer<'a> {
    cli: &'a Cli,
    sink: Sink,
    buf: Vec<u8>,
    line_buf: Vec<u8>,
    pending: Vec<u64>,
    batch_started: Option<Instant>,
    batch_window: Duration,
}

impl Writer<'_> {
    fn flush_batch(&mut self) -> Result<()> {
        self.batch_started = None;
        flush_batch(&mut self.sink, &mut self.buf, &mut self.pending)
    }

    /// Wait for an event's slot (`due`); a batch whose window closes meanwhile is synced first.
    /// False when a signal arrived.
    fn wait_slot(&mut self, due: Instant) -> Result<bool> {
        loop {
            if signals::interrupted() {
                return Ok(false);
            }
            let now = Instant::now();
            if let Some(b) = self.batch_started
                && now >= b + self.batch_window
            {
                self.flush_batch()?;
            }
            if now >= due {
                return Ok(true);
            }
            let mut wake = due;
            if let Some(b) = self.batch_started {
                wake = wake.min(b + self.batch_window);
            }
            std::thread::sleep((wake - now).min(Duration::from_millis(50)));
        }
    }

    /// Write one event under the durability policy (acknowledging it once durable).
    fn event(&mut self, line: &WalLine, seq: u64) -> Result<()> {
        match self.cli.durability {
            Durability::Fsync => {
                self.line_buf.clear();
                line.write_to(&mut self.line_buf);
                self.sink.write(&self.line_buf)?;
                self.sink.sync()?;
                self.sink.ack(&[seq])?;
            }
            Durability::Batch => {
                line.write_to(&mut self.buf);
                self.pending.push(seq);
                let started = *self.batch_started.get_or_insert_with(Instant::now);
                if self.pending.len() as u64 >= self.cli.batch_events
                    || Instant::now() >= started + self.batch_window
                {
                    self.flush_batch()?;
                }
            }
            Durability::None => {
                self.line_buf.clear();
                line.write_to(&mut self.line_buf);
                if !self.buf.is_empty()
                    && self.buf.len() + self.line_buf.len() > self.cli.buffer_bytes
                {
                    self.sink.write(&self.buf)?;
                    self.buf.clear();
                }
                self.buf.extend_from_slice(&self.line_buf);
                self.sink.ack(&[seq])?;
            }
        }
        Ok(())
    }

    /// A clean stop (count reached, SIGINT or SIGTERM): nothing accepted is left behind.
    fn finish(&mut self) -> Result<()> {
        match self.cli.durability {
            Durability::Batch => self.flush_batch(),
            Durability::None if !self.buf.is_empty() => self.sink.write(&self.buf),
            _ => Ok(()),
        }
    }
}

/// Run the writer.
pub fn run(cli: Cli) -> Result<Exit> {
    validate(&cli)?;
    signals::install()?;
    let resume = resume_point(&cli.wal_path)?;
    let sink = open_sink(&cli, &resume)?;
    let seed = cli.seed.unwrap_or_else(|| now_ns().unsigned_abs());
    info(&format!(
        "appending to {} from seq {} (durability {}, rate {}/s, events {}, seed {seed})",
        cli.wal_path.display(),
        resume.next_seq,
        cli.durability.name(),
        cli.rate,
        if cli.events == 0 {
            "until killed".to_string()
        } else {
            cli.events.to_string()
        }
    ));
    let mut generator = Generator::new(seed);
    let start = Instant::now();
    let mut w = Writer {
        cli: &cli,
        sink,
        buf: Vec::with_capacity(cli.buffer_bytes.clamp(512, 1 << 20) + 512),
        line_buf: Vec::with_capacity(512),
        pending: Vec::new(),
        batch_started: None,
        batch_window: Duration::from_millis(cli.batch_ms),
    };
    let mut written = 0u64;
    let mut seq = resume.next_seq;
    let mut interrupted = false;
    while cli.events == 0 || written < cli.events {
        if cli.rate > 0.0 {
            #[expect(clippy::cast_precision_loss, reason = "event counts far below 2^52")]
            let offset =
                Duration::try_from_secs_f64(written as f64 / cli.rate).unwrap_or(Duration::MAX);
            let due = start
                .checked_add(offset)
                .unwrap_or(start + Duration::from_secs(1 << 40));
            interrupted = !w.wait_slot(due)?;
        } else {
            interrupted = signals::interrupted();
        }
        if interrupted {
            break;
        }
        w.event(&generator.next(seq, now_ns()), seq)?;
        written += 1;
        seq += 1;
    }
    w.finish()?;
    info(&format!(
        "wrote {written} events{}",
        if written > 0 {
            format!(" (seq {}..={})", resume.next_seq, seq - 1)
        } else {
            String::new()
        }
    ));
    if interrupted {
        return Err(EvidenceError::Interrupted);
    }
    Ok(Exit::Pass)
}

fn flush_batch(sink: &mut Sink, buf: &mut Vec<u8>, pending: &mut Vec<u64>) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    sink.write(buf)?;
    sink.sync()?;
    sink.ack(pending)?;
    buf.clear();
    pending.clear();
    Ok(())
}

/// clap's consistency check, for the unit test.
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
    fn generated_lifecycles_replay_clean() {
        let mut g = Generator::new(7);
        let mut text = Vec::new();
        for seq in 0..20_000 {
            g.next(seq, 1).write_to(&mut text);
        }
        let (s, _) = Replayer::new("gen", ReplayOptions::default())
            .run(&text[..])
            .unwrap();
        assert!(s.clean, "{:?}", s.problems);
        assert_eq!(s.events, 20_000);
        assert_eq!(s.ignored + s.ledger_applied, 20_000);
        assert!(s.terminal_orders > 1000, "{s:?}");
        assert!(s.positions.len() >= 10, "{:?}", s.positions);
    }
}
