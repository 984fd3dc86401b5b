//! Replay: stream a WAL line by line, apply the recovery rules of `wal-format.md` per
//! `client_order_id`, check `seq`, rebuild positions per account and instrument, and summarise.
//!
//! Memory: live (non-terminal) orders are kept in full; an order that reaches a terminal state
//! (filled, canceled, rejected) is moved to a compact record of 24 bytes (a 64-bit fingerprint of its
//! id, its final status and filled volume), which is all the rules need to accept an idempotent
//! repeat and reject any other later event. So memory grows with the live orders plus 24 bytes per
//! finished order, never with the bytes of the file. The trade-off: two ids whose 64-bit
//! fingerprints collide (about 1 in 10^7 for a million finished orders) would be confused.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::io::{self, Read};

use serde::Serialize;

use crate::line::{RawEvent, Status};

/// How much detail a replay keeps.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Keep every parsed seq (for the drill's set difference). Off for plain replay.
    pub collect_seqs: bool,
    /// At most this many gaps, duplicates and problems are listed (all are counted).
    pub max_listed: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            collect_seqs: false,
            max_listed: 100,
        }
    }
}

/// A run of missing seqs, `from..=to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Gap {
    /// First missing seq.
    pub from: u64,
    /// Last missing seq.
    pub to: u64,
    /// 1-based line of the event after the gap.
    pub line: usize,
}

/// A seq that is not larger than the largest seq before it (a repeat or out of order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Duplicate {
    /// The seq.
    pub seq: u64,
    /// 1-based line.
    pub line: usize,
}

/// A line that did not parse, or an event the recovery rules refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// `parse` or `state`.
    pub problem: &'static str,
    /// The key at fault (`line` for the whole line).
    pub field: String,
    /// What was wrong.
    pub message: String,
}

/// The rebuilt position of one account and instrument.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Position {
    /// Account (`""` when the lines do not carry one).
    pub account_id: String,
    /// Instrument (`""` when the lines do not carry one).
    pub instrument_id: String,
    /// Orders that reached the ledger.
    pub orders: u64,
    /// Filled volume applied to the ledger. The WAL line has no side, so this is the net position
    /// of a book that only buys: the sum of the fills.
    pub filled_volume: u64,
    /// Sum over orders of `filled_volume * avg_fill_price` of the latest applied state.
    pub notional: f64,
}

/// The replay summary (`wal-replay --json`, `kind` = `wal.replay`).
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    /// Always `wal.replay`.
    pub kind: &'static str,
    /// When the summary was made, epoch ns.
    pub ts_ns: i64,
    /// The WAL path (`-` for stdin).
    pub path: String,
    /// Non-blank complete lines (the torn tail is not a line).
    pub lines: u64,
    /// Lines that parsed as events.
    pub events: u64,
    /// Events accepted by the rules that do not reach the ledger: idempotent repeats and events
    /// with status rejected.
    pub ignored: u64,
    /// Lines that did not parse.
    pub parse_errors: u64,
    /// Events the recovery rules refused.
    pub state_rejected: u64,
    /// Events applied to the ledger.
    pub ledger_applied: u64,
    /// The seq of the first event, if any.
    pub first_seq: Option<u64>,
    /// The largest seq, if any.
    pub last_seq: Option<u64>,
    /// Number of gaps (runs of missing seqs).
    pub gap_count: u64,
    /// Number of missing seqs over all gaps.
    pub missing_seqs: u64,
    /// The first gaps.
    pub gaps: Vec<Gap>,
    /// Number of seqs not larger than the largest before them.
    pub duplicate_count: u64,
    /// The first of those.
    pub duplicates: Vec<Duplicate>,
    /// Bytes after the last newline that do not parse: a write cut by a crash.
    pub torn_tail_bytes: u64,
    /// Orders not yet in a terminal state.
    pub live_orders: u64,
    /// Orders in a terminal state.
    pub terminal_orders: u64,
    /// Positions per account and instrument, sorted.
    pub positions: Vec<Position>,
    /// The first problems (parse errors and rejections), in line order.
    pub problems: Vec<Problem>,
    /// True when some gaps, duplicates or problems are counted but not listed.
    pub lists_truncated: bool,
    /// No parse error, rejection, gap or duplicate (a torn tail alone is clean).
    pub clean: bool,
}

impl ReplaySummary {
    /// The original tool's summary line, then the seq checks:
    /// `WAL replay completed path=<p> lines=<N> events=<M> ignored=<I> parse_errors=<P>
    /// state_rejected=<R> ledger_applied=<L> last_seq=<S|none> gaps=<G> duplicates=<D>
    /// torn_tail_bytes=<T>`.
    #[must_use]
    pub fn summary_line(&self) -> String {
        format!(
            "WAL replay completed path={} lines={} events={} ignored={} parse_errors={} state_rejected={} ledger_applied={} last_seq={} gaps={} duplicates={} torn_tail_bytes={}",
            self.path,
            self.lines,
            self.events,
            self.ignored,
            self.parse_errors,
            self.state_rejected,
            self.ledger_applied,
            self.last_seq
                .map_or_else(|| "none".to_string(), |s| s.to_string()),
            self.gap_count,
            self.duplicate_count,
            self.torn_tail_bytes
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Order {
    status: Status,
    filled: u64,
    /// Known total: from a `total_volume` > 0 (legacy lines leave it unknown until filled).
    total: Option<u64>,
    avg: f64,
    pos: u32,
}

#[derive(Debug, Clone, Copy)]
struct Finished {
    status: Status,
    filled: u64,
}

/// A fast non-cryptographic hasher (the `FxHash` mix) for the live-order map: the ids come from
/// the WAL we are replaying, not from an adversary, and `SipHash` costs a noticeable share of
/// replay time.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }
}

/// A hasher for keys that are already 64-bit fingerprints.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn fingerprint(id: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

enum Applied {
    Ledger,
    Ignored,
}

/// The streaming replayer. Feed it lines with [`Replayer::line`] and the unterminated end with
/// [`Replayer::tail`], or a whole reader with [`Replayer::run`].
pub struct Replayer {
    opts: ReplayOptions,
    live: HashMap<String, Order, BuildHasherDefault<FxHasher>>,
    finished: HashMap<u64, Finished, BuildHasherDefault<IdentityHasher>>,
    positions: Vec<Position>,
    pos_index: HashMap<String, HashMap<String, u32>>,
    seqs: Vec<u64>,
    s: ReplaySummary,
}

impl Replayer {
    /// A replayer of the WAL labelled `path`.
    #[must_use]
    pub fn new(path: &str, opts: ReplayOptions) -> Self {
        Replayer {
            opts,
            live: HashMap::default(),
            finished: HashMap::default(),
            positions: Vec::new(),
            pos_index: HashMap::new(),
            seqs: Vec::new(),
            s: ReplaySummary {
                kind: "wal.replay",
                ts_ns: 0,
                path: path.to_string(),
                lines: 0,
                events: 0,
                ignored: 0,
                parse_errors: 0,
                state_rejected: 0,
                ledger_applied: 0,
                first_seq: None,
                last_seq: None,
                gap_count: 0,
                missing_seqs: 0,
                gaps: Vec::new(),
                duplicate_count: 0,
                duplicates: Vec::new(),
                torn_tail_bytes: 0,
                live_orders: 0,
                terminal_orders: 0,
                positions: Vec::new(),
                problems: Vec::new(),
                lists_truncated: false,
                clean: true,
            },
        }
    }

    /// Replay everything `r` yields, then summarise.
    pub fn run<R: Read>(mut self, r: R) -> io::Result<(ReplaySummary, Vec<u64>)> {
        scan_lines(r, |n, bytes, terminated| {
            if terminated {
                self.line(n, bytes);
            } else {
                self.tail(n, bytes);
            }
        })?;
        Ok(self.finish())
    }

    /// One complete, non-blank line (newline and a trailing `\r` removed).
    pub fn line(&mut self, line_no: usize, bytes: &[u8]) {
        self.s.lines += 1;
        match RawEvent::parse(bytes) {
            Ok((ev, st)) => self.event(line_no, &ev, st),
            Err(e) => {
                self.s.parse_errors += 1;
                self.problem(line_no, "parse", e.field, e.message);
            }
        }
    }

    /// The bytes after the last newline (non-blank). If they parse they are an event; otherwise
    /// they are a torn tail.
    pub fn tail(&mut self, line_no: usize, raw: &[u8]) {
        let trimmed = raw.strip_suffix(b"\r").unwrap_or(raw);
        match RawEvent::parse(trimmed) {
            Ok((ev, st)) => {
                self.s.lines += 1;
                self.event(line_no, &ev, st);
            }
            Err(_) => self.s.torn_tail_bytes = raw.len() as u64,
        }
    }

    /// The summary and, when collected, every parsed seq in file order.
    #[must_use]
    pub fn finish(mut self) -> (ReplaySummary, Vec<u64>) {
        let mut positions = std::mem::take(&mut self.positions);
        positions.sort_by(|a, b| {
            (&a.account_id, &a.instrument_id).cmp(&(&b.account_id, &b.instrument_id))
        });
        let mut s = self.s;
        s.positions = positions;
        s.live_orders = self.live.len() as u64;
        s.terminal_orders = self.finished.len() as u64;
        s.clean = s.parse_errors == 0
            && s.state_rejected == 0
            && s.gap_count == 0
            && s.duplicate_count == 0;
        s.ts_ns = evidence_core::time::now_ns();
        (s, self.seqs)
    }

    fn problem(&mut self, line: usize, problem: &'static str, field: String, message: String) {
        if self.s.problems.len() < self.opts.max_listed {
            self.s.problems.push(Problem {
                line,
                problem,
                field,
                message,
            });
        } else {
            self.s.lists_truncated = true;
        }
    }

    fn event(&mut self, line_no: usize, ev: &RawEvent<'_>, st: Status) {
        self.s.events += 1;
        self.check_seq(line_no, ev.seq);
        if self.opts.collect_seqs {
            self.seqs.push(ev.seq);
        }
        match self.apply(ev, st) {
            Ok(Applied::Ledger) => self.s.ledger_applied += 1,
            Ok(Applied::Ignored) => self.s.ignored += 1,
            Err(msg) => {
                self.s.state_rejected += 1;
                self.problem(line_no, "state", "status".to_string(), msg);
            }
        }
    }

    fn check_seq(&mut self, line: usize, seq: u64) {
        let max_listed = self.opts.max_listed;
        match self.s.last_seq {
            None => {
                self.s.first_seq = Some(seq);
                self.s.last_seq = Some(seq);
            }
            Some(last) if last.checked_add(1) == Some(seq) => self.s.last_seq = Some(seq),
            Some(last) if seq > last => {
                self.s.gap_count += 1;
                self.s.missing_seqs += seq - last - 1;
                if self.s.gaps.len() < max_listed {
                    self.s.gaps.push(Gap {
                        from: last + 1,
                        to: seq - 1,
                        line,
                    });
                } else {
                    self.s.lists_truncated = true;
                }
                self.s.last_seq = Some(seq);
            }
            Some(_) => {
                self.s.duplicate_count += 1;
                if self.s.duplicates.len() < max_listed {
                    self.s.duplicates.push(Duplicate { seq, line });
                } else {
                    self.s.lists_truncated = true;
                }
            }
        }
    }

    fn position(&mut self, account: &str, instrument: &str) -> u32 {
        if let Some(&i) = self.pos_index.get(account).and_then(|m| m.get(instrument)) {
            return i;
        }
        let i = u32::try_from(self.positions.len()).unwrap_or(u32::MAX);
        self.positions.push(Position {
            account_id: account.to_string(),
            instrument_id: instrument.to_string(),
            orders: 0,
            filled_volume: 0,
            notional: 0.0,
        });
        self.pos_index
            .entry(account.to_string())
            .or_default()
            .insert(instrument.to_string(), i);
        i
    }

    fn apply(&mut self, ev: &RawEvent<'_>, st: Status) -> Result<Applied, String> {
        let id = ev.client_order_id.as_ref();
        let filled = ev.filled_volume;
        let ev_total = ev.total_volume.filter(|t| *t > 0);
        let avg = ev.avg_fill_price.unwrap_or(0.0);
        if let Some(o) = self.live.get_mut(id) {
            if o.status == st && o.filled == filled {
                return Ok(Applied::Ignored);
            }
            if !o.status.may_become(st) {
                return Err(format!(
                    "order {id}: {} -> {} is not an allowed transition",
                    o.status.name(),
                    st.name()
                ));
            }
            if filled < o.filled {
                return Err(format!(
                    "order {id}: filled_volume decreases from {} to {filled}",
                    o.filled
                ));
            }
            let total = ev_total.or(o.total);
            check_volumes(id, st, filled, total)?;
            let before = *o;
            o.status = st;
            o.filled = filled;
            o.total = total.or(if st == Status::Filled {
                Some(filled)
            } else {
                None
            });
            o.avg = avg;
            let pos = o.pos as usize;
            if st.is_terminal() {
                self.live.remove(id);
                self.finished
                    .insert(fingerprint(id), Finished { status: st, filled });
            }
            if st == Status::Rejected {
                return Ok(Applied::Ignored);
            }
            if let Some(p) = self.positions.get_mut(pos) {
                p.filled_volume += filled - before.filled;
                #[expect(clippy::cast_precision_loss, reason = "volumes are far below 2^52")]
                {
                    p.notional += filled as f64 * avg - before.filled as f64 * before.avg;
                }
            }
            return Ok(Applied::Ledger);
        }
        let fp = fingerprint(id);
        if let Some(f) = self.finished.get(&fp) {
            if f.status == st && f.filled == filled {
                return Ok(Applied::Ignored);
            }
            return Err(format!(
                "order {id} is already {} (terminal); a different event after it is refused",
                f.status.name()
            ));
        }
        check_volumes(id, st, filled, ev_total)?;
        if st == Status::Rejected {
            self.finished.insert(fp, Finished { status: st, filled });
            return Ok(Applied::Ignored);
        }
        let account = ev.account_id.as_ref();
        let instrument = ev.instrument_id.as_ref();
        let pos = self.position(account, instrument);
        if let Some(p) = self.positions.get_mut(pos as usize) {
            p.orders += 1;
            p.filled_volume += filled;
            #[expect(clippy::cast_precision_loss, reason = "volumes are far below 2^52")]
            {
                p.notional += filled as f64 * avg;
            }
        }
        if st.is_terminal() {
            self.finished.insert(fp, Finished { status: st, filled });
        } else {
            self.live.insert(
                id.to_string(),
                Order {
                    status: st,
                    filled,
                    total: ev_total,
                    avg,
                    pos,
                },
            );
        }
        Ok(Applied::Ledger)
    }
}

fn check_volumes(id: &str, st: Status, filled: u64, total: Option<u64>) -> Result<(), String> {
    let Some(t) = total else { return Ok(()) };
    if filled > t {
        return Err(format!(
            "order {id}: filled_volume {filled} exceeds total {t}"
        ));
    }
    if st == Status::Filled && filled != t {
        return Err(format!(
            "order {id}: a filled event must have filled_volume = total ({filled} != {t})"
        ));
    }
    if st == Status::PartiallyFilled && filled >= t {
        return Err(format!(
            "order {id}: a partially filled event must have filled_volume < total ({filled} >= {t})"
        ));
    }
    Ok(())
}

/// The longest line kept whole (64 MiB). A longer "line" (say, a WAL overwritten with binary data
/// without a newline) is handed over by its first bytes, which cannot parse, and the rest of it is
/// skipped: memory stays bounded whatever the file holds.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Stream `r` line by line with a reused 1 MiB buffer: `on_line(line_no, bytes, true)` for each
/// complete non-blank line (newline and a trailing `\r` removed), then `on_line(line_no, bytes,
/// false)` for non-blank bytes after the last newline (raw). Line numbers count every physical line.
/// A line longer than [`MAX_LINE_BYTES`] is reported once, truncated, as a complete line.
pub fn scan_lines<R: Read>(r: R, on_line: impl FnMut(usize, &[u8], bool)) -> io::Result<()> {
    scan_lines_capped(r, MAX_LINE_BYTES, on_line)
}

fn scan_lines_capped<R: Read>(
    mut r: R,
    cap: usize,
    mut on_line: impl FnMut(usize, &[u8], bool),
) -> io::Result<()> {
    let mut buf = vec![0u8; (1 << 20).min(cap)];
    let (mut start, mut end) = (0usize, 0usize);
    let mut line_no = 0usize;
    // True while skipping the rest of an over-long line (already reported).
    let mut skipping = false;
    loop {
        if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            } else if buf.len() < cap {
                buf.resize((buf.len() * 2).min(cap), 0);
            } else {
                line_no += 1;
                on_line(line_no, &buf[..end], true);
                skipping = true;
                (start, end) = (0, 0);
            }
        }
        let n = match r.read(&mut buf[end..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        let mut search = end;
        end += n;
        if skipping {
            match memchr::memchr(b'\n', &buf[search..end]) {
                Some(off) => {
                    skipping = false;
                    start = search + off + 1;
                    search = start;
                }
                None => {
                    (start, end) = (0, 0);
                    continue;
                }
            }
        }
        while let Some(off) = memchr::memchr(b'\n', &buf[search..end]) {
            let nl = search + off;
            line_no += 1;
            let line = &buf[start..nl];
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !is_blank(line) {
                on_line(line_no, line, true);
            }
            start = nl + 1;
            search = start;
        }
    }
    if !skipping && start < end {
        let tail = &buf[start..end];
        if !is_blank(tail) {
            on_line(line_no + 1, tail, false);
        }
    }
    Ok(())
}

fn is_blank(b: &[u8]) -> bool {
    b.iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(text: &[u8], cap: usize) -> Vec<(usize, String, bool)> {
        let mut v = Vec::new();
        scan_lines_capped(text, cap, |n, b, complete| {
            v.push((n, String::from_utf8_lossy(b).into_owned(), complete));
        })
        .unwrap();
        v
    }

    #[test]
    fn an_over_long_line_is_reported_truncated_and_skipped() {
        let long = "x".repeat(100);
        let text = format!("a\n{long}\nb\n{long}");
        let got = scan(text.as_bytes(), 16);
        assert_eq!(got[0], (1, "a".into(), true));
        assert_eq!(got[1], (2, "x".repeat(16), true));
        assert_eq!(got[2], (3, "b".into(), true));
        // A long torn tail is reported once, truncated, and nothing after it.
        assert_eq!(got[3], (4, "x".repeat(16), true));
        assert_eq!(got.len(), 4);
        // Short lines are untouched by the cap.
        assert_eq!(scan(b"a\nbb\nc", 16).len(), 3);
    }

    fn ev(seq: u64, id: &str, status: u8, total: u64, filled: u64) -> String {
        format!(
            r#"{{"seq":{seq},"kind":"order","ts_ns":1,"account_id":"a","client_order_id":"{id}","exchange_order_id":"","instrument_id":"i","status":{status},"total_volume":{total},"filled_volume":{filled},"avg_fill_price":10,"reason":"","trace_id":""}}"#
        )
    }

    fn replay(text: &str) -> ReplaySummary {
        Replayer::new("t.wal", ReplayOptions::default())
            .run(text.as_bytes())
            .unwrap()
            .0
    }

    #[test]
    fn clean_lifecycle() {
        let text = [
            ev(0, "c1", 0, 3, 0),
            ev(1, "c1", 1, 3, 0),
            ev(2, "c1", 2, 3, 1),
            ev(3, "c1", 2, 3, 1),
            ev(4, "c1", 3, 3, 3),
            ev(5, "c2", 0, 2, 0),
            ev(6, "c2", 5, 2, 0),
            ev(7, "c1", 3, 3, 3),
        ]
        .join("\n")
            + "\n";
        let s = replay(&text);
        assert!(s.clean, "{s:?}");
        assert_eq!(
            (s.lines, s.events, s.ledger_applied, s.ignored),
            (8, 8, 5, 3)
        );
        assert_eq!((s.live_orders, s.terminal_orders), (0, 2));
        assert_eq!(s.positions[0].filled_volume, 3);
        assert!((s.positions[0].notional - 30.0).abs() < 1e-9);
        assert_eq!(s.last_seq, Some(7));
    }

    #[test]
    fn terminal_then_change_is_rejected_and_volumes_checked() {
        let text = [
            ev(0, "c1", 0, 3, 0),
            ev(1, "c1", 4, 3, 0),
            ev(2, "c1", 1, 3, 0),
            ev(3, "c2", 0, 3, 0),
            ev(4, "c2", 3, 3, 2),
            ev(5, "c2", 2, 3, 4),
            ev(6, "c2", 2, 3, 2),
            ev(7, "c2", 2, 3, 1),
            ev(8, "c2", 0, 3, 2),
        ]
        .join("\n");
        let s = replay(&text);
        assert_eq!(s.state_rejected, 5, "{:#?}", s.problems);
        assert_eq!(s.ledger_applied, 4);
        assert!(!s.clean);
        assert!(s.problems[0].message.contains("canceled (terminal)"));
    }

    #[test]
    fn seq_gaps_duplicates_and_torn_tail() {
        let text = format!(
            "{}\n\n{}\n{}\n{}\n{{\"seq\":9,\"ki",
            ev(0, "c1", 0, 3, 0),
            ev(3, "c1", 1, 3, 0),
            ev(3, "c1", 1, 3, 0),
            ev(4, "c1", 2, 3, 1)
        );
        let s = replay(&text);
        assert_eq!((s.gap_count, s.missing_seqs, s.duplicate_count), (1, 2, 1));
        assert_eq!(
            s.gaps[0],
            Gap {
                from: 1,
                to: 2,
                line: 3
            }
        );
        assert_eq!(s.duplicates[0], Duplicate { seq: 3, line: 4 });
        assert_eq!(s.torn_tail_bytes, 12);
        assert_eq!((s.lines, s.parse_errors), (4, 0));
    }

    #[test]
    fn seq_zero_after_the_largest_seq_is_a_duplicate_not_a_wrap() {
        let text = format!(
            "{}\n{}\n",
            ev(u64::MAX, "c1", 0, 3, 0),
            ev(0, "c2", 0, 3, 0)
        );
        let s = replay(&text);
        assert_eq!((s.gap_count, s.duplicate_count), (0, 1), "{s:?}");
        assert_eq!(s.last_seq, Some(u64::MAX));
        assert!(!s.clean);
    }

    #[test]
    fn legacy_orders_without_total() {
        let l = |seq: u64, st: u8, f: u64| {
            format!(
                r#"{{"seq":{seq},"kind":"order","ts_ns":1,"account_id":"a","client_order_id":"L","instrument_id":"i","status":{st},"filled_volume":{f}}}"#
            )
        };
        let text = [l(0, 0, 0), l(1, 1, 0), l(2, 2, 1), l(3, 3, 2)].join("\n") + "\n";
        let s = replay(&text);
        assert!(s.clean, "{:?}", s.problems);
        assert_eq!(s.ledger_applied, 4);
        assert_eq!(s.positions[0].filled_volume, 2);
    }

    #[test]
    fn long_lines_and_small_reads() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(7);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let long = format!("{}{}\n", "x".repeat(3 << 20), "");
        let text = format!("{}\r\n{long}{}\n", ev(0, "c", 0, 1, 0), ev(1, "c", 3, 1, 1));
        let s = Replayer::new("t", ReplayOptions::default())
            .run(Trickle(text.as_bytes()))
            .unwrap()
            .0;
        assert_eq!((s.lines, s.events, s.parse_errors), (3, 2, 1));
        assert_eq!(s.problems[0].line, 2);
    }
}
