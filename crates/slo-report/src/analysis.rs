//! Fault windows, and one merge pass of the (time-ordered) health samples over them.
//!
//! Semantics (the probe logs a line on every state change and periodically, so the state at any
//! moment is the state of the last sample at or before it):
//!
//! - A window is an `apply` and the next `clear` of the same scenario (execute=true events only,
//!   sorted by `ts_ns`). An apply that is followed by another apply, or by nothing, is incomplete.
//! - A complete window is **counted** only when the probe state at apply is healthy.
//! - **Detection**: the first unhealthy sample after apply, inside the window, or after the clear
//!   but before any healthy sample after it (a loss noticed late, e.g. by heartbeat timeout).
//! - **Recovery**: reconnect-core's one rule ([`reconnect_core::recovery`]): the first healthy
//!   moment (the clear itself when healthy then, or a healthy sample after it) after which the
//!   probe stays healthy for the settle interval or until the next apply; measured from the
//!   clear. An outage that begins just after the clear is part of this window's recovery; the
//!   search ends at the next apply, so one outage is never counted in two windows.
//! - No unhealthy sample: `unhealthy_not_observed`, never a recovery. No settled healthy moment
//!   before the next apply or the end of the log: `not_recovered`.

use std::collections::HashMap;

use evidence_core::{EvidenceError, Result};
use reconnect_core::fault_event::{FaultEvent, FaultParameters, Phase, Scenario};
use reconnect_core::probe_log::{HealthSample, HealthState};
use reconnect_core::recovery::{NotRecovered, Outcome, RecoverySearch};

/// The outcome of one window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Unhealthy observed, then healthy again.
    Recovered,
    /// Unhealthy observed (or no evidence after the clear), and never healthy again.
    NotRecovered,
    /// The fault never made the probe unhealthy.
    UnhealthyNotObserved,
    /// The probe was not healthy (or had no state yet) at apply.
    NotCounted,
    /// An apply without its clear.
    Incomplete,
}

impl Status {
    /// The CSV text.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Recovered => "recovered",
            Status::NotRecovered => "not_recovered",
            Status::UnhealthyNotObserved => "unhealthy_not_observed",
            Status::NotCounted => "not_counted",
            Status::Incomplete => "incomplete",
        }
    }
}

/// One fault window and what the probe saw during it.
#[derive(Debug, Clone)]
pub struct Window {
    /// The scenario.
    pub scenario: Scenario,
    /// Effective apply time (epoch ns).
    pub apply_ns: i64,
    /// Effective clear time; `None` for an apply without clear.
    pub clear_ns: Option<i64>,
    /// Line of the apply event.
    pub apply_line: usize,
    /// Line of the clear event.
    pub clear_line: Option<usize>,
    /// Why the window is incomplete.
    pub incomplete_reason: Option<&'static str>,
    /// The apply event's parameters.
    pub parameters: FaultParameters,
    /// The apply event's drill id.
    pub drill_id: Option<String>,
    /// Probe state at apply (last sample at or before it).
    pub state_at_apply: Option<HealthState>,
    /// First unhealthy sample attributed to this window.
    pub first_unhealthy_ns: Option<i64>,
    /// The unhealthy sample came after the clear.
    pub unhealthy_after_clear: bool,
    /// The recovery moment (the clear itself when recovered before it).
    pub recovered_ns: Option<i64>,
    /// Healthy again before the clear.
    pub recovered_before_clear: bool,
    /// The probe log has no sample after the clear.
    pub no_health_after_clear: bool,
    /// Where the recovery search ends: the next apply at or after the clear.
    pub search_end_ns: Option<i64>,
    /// Why the window did not recover.
    pub not_recovered: Option<NotRecovered>,
    /// The outcome (set by the merge).
    pub status: Status,
    // merge state
    state_at_clear: Option<HealthState>,
    crossed: bool,
    search: Option<RecoverySearch>,
}

impl Window {
    /// Counted: complete and healthy at apply.
    #[must_use]
    pub fn counted(&self) -> bool {
        !matches!(self.status, Status::NotCounted | Status::Incomplete)
    }

    /// Detection time in ns.
    #[must_use]
    pub fn detection_ns(&self) -> Option<i64> {
        self.first_unhealthy_ns.map(|u| u - self.apply_ns)
    }

    /// Recovery time in ns (from the clear).
    #[must_use]
    pub fn recovery_ns(&self) -> Option<i64> {
        match (self.status, self.recovered_ns, self.clear_ns) {
            (Status::Recovered, Some(r), Some(c)) => Some(r - c),
            _ => None,
        }
    }

    /// The note markers of the Scenario Matrix, in order.
    #[must_use]
    pub fn notes(&self) -> Vec<String> {
        let mut v = Vec::new();
        match self.status {
            Status::Incomplete => {
                v.push("no valid apply/clear window".to_string());
                if let Some(r) = self.incomplete_reason {
                    v.push(r.to_string());
                }
            }
            Status::NotCounted => v.push(
                match self.state_at_apply {
                    None => "no_health_before_apply",
                    Some(_) => "not_healthy_at_apply",
                }
                .to_string(),
            ),
            Status::UnhealthyNotObserved => v.push("unhealthy_not_observed".to_string()),
            Status::NotRecovered | Status::Recovered => {
                if self.first_unhealthy_ns.is_none() {
                    v.push("unhealthy_not_observed".to_string());
                }
                if let Some(d) = self.detection_ns() {
                    v.push(format!("detection={:.3}s", secs(d)));
                }
                if self.unhealthy_after_clear {
                    v.push("unhealthy_after_clear".to_string());
                }
                if self.recovered_before_clear {
                    v.push("recovered_before_clear".to_string());
                }
                if self.status == Status::NotRecovered {
                    v.push("not_recovered".to_string());
                    if let Some(r) = self.not_recovered {
                        v.push(r.note().to_string());
                    }
                    if self.no_health_after_clear {
                        v.push("no_health_after_clear".to_string());
                    }
                }
            }
        }
        v
    }
}

/// Nanoseconds as seconds.
#[must_use]
#[expect(clippy::cast_precision_loss, reason = "display of durations")]
pub fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

/// The windows of an event log, and what was left out.
#[derive(Debug, Default)]
pub struct Pairing {
    /// Windows sorted by apply time.
    pub windows: Vec<Window>,
    /// Events with `execute: false` (dry runs), ignored.
    pub dry_run_events: usize,
    /// Events skipped by `--drill-id`.
    pub other_drill_events: usize,
    /// Clears without an open apply: (line, scenario).
    pub unmatched_clears: Vec<(usize, Scenario)>,
    /// Number of execute=true events used.
    pub executed_events: usize,
}

/// Pair apply/clear events into windows, per scenario, in time order.
pub fn pair_windows(
    mut events: Vec<(usize, FaultEvent)>,
    source: &str,
    drill_id: Option<&str>,
) -> Result<Pairing> {
    events.sort_by_key(|(_, e)| e.ts_ns);
    let mut p = Pairing::default();
    let mut open: HashMap<Scenario, usize> = HashMap::new();
    for (line, ev) in events {
        if let Some(d) = drill_id
            && ev.drill_id.as_deref() != Some(d)
        {
            p.other_drill_events += 1;
            continue;
        }
        if !ev.execute {
            p.dry_run_events += 1;
            continue;
        }
        p.executed_events += 1;
        match ev.phase {
            Phase::Apply => {
                if let Some(prev) = open.insert(ev.scenario, p.windows.len()) {
                    p.windows[prev].incomplete_reason = Some("replaced_by_later_apply");
                }
                p.windows.push(Window {
                    scenario: ev.scenario,
                    apply_ns: ev.effective_ns(),
                    clear_ns: None,
                    apply_line: line,
                    clear_line: None,
                    incomplete_reason: None,
                    drill_id: ev.drill_id.clone(),
                    parameters: ev.parameters,
                    state_at_apply: None,
                    first_unhealthy_ns: None,
                    unhealthy_after_clear: false,
                    recovered_ns: None,
                    recovered_before_clear: false,
                    no_health_after_clear: false,
                    search_end_ns: None,
                    not_recovered: None,
                    status: Status::Incomplete,
                    state_at_clear: None,
                    crossed: false,
                    search: None,
                });
            }
            Phase::Clear => match open.remove(&ev.scenario) {
                Some(i) => {
                    let w = &mut p.windows[i];
                    let c = ev.effective_ns();
                    if c < w.apply_ns {
                        return Err(EvidenceError::parse(
                            source,
                            line,
                            "effective_ts_ns",
                            format!("a time at or after its apply (line {})", w.apply_line),
                            c.to_string(),
                        ));
                    }
                    w.clear_ns = Some(c);
                    w.clear_line = Some(line);
                }
                None => p.unmatched_clears.push((line, ev.scenario)),
            },
        }
    }
    for i in open.into_values() {
        p.windows[i].incomplete_reason = Some("apply_without_clear");
    }
    p.windows.sort_by_key(|w| w.apply_ns);
    // A window's recovery search ends at the next apply (of any scenario) at or after its clear.
    let applies: Vec<i64> = p.windows.iter().map(|w| w.apply_ns).collect();
    for w in &mut p.windows {
        if let Some(c) = w.clear_ns {
            let i = applies.partition_point(|a| *a < c);
            w.search_end_ns = applies[i..]
                .iter()
                .copied()
                .find(|a| *a != w.apply_ns || c > w.apply_ns);
        }
    }
    Ok(p)
}

/// A health sample came earlier than the one before it.
#[derive(Debug, Clone, Copy)]
pub struct OutOfOrder {
    /// Line of the offending sample.
    pub line: usize,
}

/// The merge of samples over windows: feed samples in non-decreasing `ts_ns`, then finish.
pub struct Merge<'a> {
    windows: &'a mut [Window],
    settle_ns: i64,
    next_open: usize,
    active: Vec<usize>,
    last: Option<HealthSample>,
    /// Health samples fed.
    pub samples: u64,
    /// First sample.
    pub first: Option<HealthSample>,
    /// State changes `(ts, state)` (the first sample included), for the timeline; kept only when
    /// asked for.
    pub changes: Option<Vec<(i64, HealthState)>>,
}

impl<'a> Merge<'a> {
    /// Start over `windows` (sorted by apply time). `settle_ns` is the recovery rule's settle
    /// interval; `keep_changes` keeps the state changes.
    pub fn new(windows: &'a mut [Window], settle_ns: i64, keep_changes: bool) -> Self {
        Merge {
            windows,
            settle_ns,
            next_open: 0,
            active: Vec::new(),
            last: None,
            samples: 0,
            first: None,
            changes: keep_changes.then(Vec::new),
        }
    }

    /// The last sample fed.
    #[must_use]
    pub fn last(&self) -> Option<HealthSample> {
        self.last
    }

    /// Feed the next sample (from `line`). Fails when it is older than the previous one.
    pub fn feed(&mut self, s: HealthSample, line: usize) -> std::result::Result<(), OutOfOrder> {
        if let Some(last) = self.last {
            if s.ts_ns < last.ts_ns {
                return Err(OutOfOrder { line });
            }
        } else {
            self.first = Some(s);
        }
        self.samples += 1;
        if let Some(ch) = &mut self.changes
            && ch.last().is_none_or(|(_, st)| *st != s.state)
        {
            ch.push((s.ts_ns, s.state));
        }
        while self.next_open < self.windows.len() && self.windows[self.next_open].apply_ns < s.ts_ns
        {
            self.open(self.next_open);
            self.next_open += 1;
        }
        let windows = &mut *self.windows;
        let settle = self.settle_ns;
        self.active.retain(|&i| !step(&mut windows[i], s, settle));
        self.last = Some(s);
        Ok(())
    }

    fn open(&mut self, i: usize) {
        let state = self.last.map(|l| l.state);
        let w = &mut self.windows[i];
        if w.clear_ns.is_none() {
            w.status = Status::Incomplete;
            return;
        }
        w.state_at_apply = state;
        if state == Some(HealthState::Healthy) {
            w.state_at_clear = state;
            w.status = Status::NotRecovered;
            self.active.push(i);
        } else {
            w.status = Status::NotCounted;
        }
    }

    /// Close the merge: windows still waiting did not recover.
    pub fn finish(mut self) -> MergeSummary {
        while self.next_open < self.windows.len() {
            self.open(self.next_open);
            self.next_open += 1;
        }
        for &i in &self.active {
            let w = &mut self.windows[i];
            if !w.crossed {
                // Nothing after the clear: no evidence either way.
                w.no_health_after_clear = true;
                w.status = Status::NotRecovered;
                continue;
            }
            let search = w
                .search
                .take()
                .unwrap_or_else(|| new_search(w, self.settle_ns));
            let first_after = search.first_unhealthy_ns();
            decide(w, search.finish(), first_after);
        }
        MergeSummary {
            samples: self.samples,
            first: self.first,
            last: self.last,
            changes: self.changes.unwrap_or_default(),
        }
    }
}

/// What the merge saw of the probe log.
#[derive(Debug, Clone, Default)]
pub struct MergeSummary {
    /// Health samples.
    pub samples: u64,
    /// First sample.
    pub first: Option<HealthSample>,
    /// Last sample.
    pub last: Option<HealthSample>,
    /// State changes (empty unless kept).
    pub changes: Vec<(i64, HealthState)>,
}

fn new_search(w: &Window, settle_ns: i64) -> RecoverySearch {
    RecoverySearch::new(
        w.clear_ns.unwrap_or(w.apply_ns),
        w.state_at_clear,
        settle_ns,
        w.search_end_ns,
    )
}

/// Record the recovery search's outcome in the window.
fn decide(w: &mut Window, outcome: Outcome, first_unhealthy_after_clear: Option<i64>) {
    if w.first_unhealthy_ns.is_none()
        && let Some(u) = first_unhealthy_after_clear
    {
        w.first_unhealthy_ns = Some(u);
        w.unhealthy_after_clear = true;
    }
    if w.first_unhealthy_ns.is_none() {
        w.status = Status::UnhealthyNotObserved;
        return;
    }
    match outcome {
        Outcome::Recovered { at_ns } => {
            w.recovered_ns = Some(at_ns);
            w.recovered_before_clear = Some(at_ns) == w.clear_ns && !w.unhealthy_after_clear;
            w.status = Status::Recovered;
        }
        Outcome::NotRecovered(r) => {
            w.not_recovered = Some(r);
            w.status = Status::NotRecovered;
        }
    }
}

/// Advance one active window by one sample (later than its apply). True when it is decided.
fn step(w: &mut Window, s: HealthSample, settle_ns: i64) -> bool {
    let Some(clear) = w.clear_ns else {
        return true;
    };
    if s.ts_ns <= clear {
        if s.state == HealthState::Unhealthy && w.first_unhealthy_ns.is_none() {
            w.first_unhealthy_ns = Some(s.ts_ns);
        }
        w.state_at_clear = Some(s.state);
        return false;
    }
    w.crossed = true;
    let mut search = w.search.take().unwrap_or_else(|| new_search(w, settle_ns));
    match search.feed(s) {
        Some(outcome) => {
            let first_after = search.first_unhealthy_ns();
            decide(w, outcome, first_after);
            true
        }
        None => {
            w.search = Some(search);
            false
        }
    }
}

/// Count, nearest-rank percentiles and max of a set of durations (ns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Number of values.
    pub count: usize,
    /// P50.
    pub p50: i64,
    /// P95.
    pub p95: i64,
    /// P99.
    pub p99: i64,
    /// Maximum.
    pub max: i64,
}

/// Nearest rank: the value at index `ceil(pct/100 · n) − 1` of the sorted values.
#[must_use]
pub fn nearest_rank(sorted: &[i64], pct: usize) -> i64 {
    let idx = (pct * sorted.len()).div_ceil(100).max(1) - 1;
    sorted[idx.min(sorted.len() - 1)]
}

impl Stats {
    /// Stats of `values`, `None` when empty.
    #[must_use]
    pub fn of(mut values: Vec<i64>) -> Option<Stats> {
        if values.is_empty() {
            return None;
        }
        values.sort_unstable();
        Some(Stats {
            count: values.len(),
            p50: nearest_rank(&values, 50),
            p95: nearest_rank(&values, 95),
            p99: nearest_rank(&values, 99),
            max: values[values.len() - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reconnect_core::fault_event::Mode;

    const S: i64 = 1_000_000_000;
    const SETTLE: i64 = S;

    fn ev(ts: i64, scenario: Scenario, phase: Phase) -> FaultEvent {
        FaultEvent {
            ts_ns: ts,
            mode: Mode::Run,
            scenario,
            phase,
            execute: true,
            parameters: FaultParameters::default(),
            drill_id: None,
            backend: None,
            target: None,
            effective_ts_ns: None,
        }
    }

    fn h(ts: i64, healthy: bool) -> HealthSample {
        HealthSample {
            ts_ns: ts,
            state: if healthy {
                HealthState::Healthy
            } else {
                HealthState::Unhealthy
            },
        }
    }

    fn run(events: Vec<FaultEvent>, samples: &[HealthSample]) -> Vec<Window> {
        let evs = events
            .into_iter()
            .enumerate()
            .map(|(i, e)| (i + 1, e))
            .collect();
        let mut p = pair_windows(evs, "ev", None).unwrap();
        let mut m = Merge::new(&mut p.windows, SETTLE, true);
        for (i, s) in samples.iter().enumerate() {
            m.feed(*s, i + 1).unwrap();
        }
        m.finish();
        p.windows
    }

    #[test]
    fn original_test_case() {
        let w = run(
            vec![
                ev(S, Scenario::Disconnect, Phase::Apply),
                ev(2 * S, Scenario::Disconnect, Phase::Clear),
            ],
            &[
                h(9 * S / 10, true),
                h(12 * S / 10, false),
                h(21 * S / 10, false),
                h(3 * S, true),
            ],
        );
        assert_eq!(w[0].status, Status::Recovered);
        assert_eq!(w[0].recovery_ns(), Some(S));
        assert_eq!(w[0].detection_ns(), Some(S / 5));
    }

    #[test]
    fn outcomes() {
        // not observed: healthy throughout
        let w = run(
            vec![
                ev(S, Scenario::Latency, Phase::Apply),
                ev(2 * S, Scenario::Latency, Phase::Clear),
            ],
            &[h(0, true), h(S + 1, true), h(3 * S, true)],
        );
        assert_eq!(w[0].status, Status::UnhealthyNotObserved);
        assert_eq!(w[0].recovery_ns(), None);
        // recovered before clear
        let w = run(
            vec![
                ev(S, Scenario::Loss, Phase::Apply),
                ev(3 * S, Scenario::Loss, Phase::Clear),
            ],
            &[h(0, true), h(S + 5, false), h(2 * S, true), h(4 * S, true)],
        );
        assert_eq!(w[0].status, Status::Recovered);
        assert!(w[0].recovered_before_clear);
        assert_eq!(w[0].recovery_ns(), Some(0));
        // late detection after clear
        let w = run(
            vec![
                ev(S, Scenario::Loss, Phase::Apply),
                ev(2 * S, Scenario::Loss, Phase::Clear),
            ],
            &[h(0, true), h(5 * S / 2, false), h(4 * S, true)],
        );
        assert_eq!(w[0].status, Status::Recovered);
        assert!(w[0].unhealthy_after_clear);
        assert_eq!(w[0].recovery_ns(), Some(2 * S));
        // not healthy at apply; no state at apply
        let w = run(
            vec![
                ev(S, Scenario::Loss, Phase::Apply),
                ev(2 * S, Scenario::Loss, Phase::Clear),
                ev(3 * S, Scenario::Jitter, Phase::Apply),
                ev(4 * S, Scenario::Jitter, Phase::Clear),
            ],
            &[h(2 * S, false), h(5 * S, true)],
        );
        assert_eq!(w[0].status, Status::NotCounted);
        assert_eq!(w[0].notes(), ["no_health_before_apply"]);
        assert_eq!(w[1].status, Status::NotCounted);
        assert_eq!(w[1].notes(), ["not_healthy_at_apply"]);
        // not recovered; log ends before clear
        let w = run(
            vec![
                ev(S, Scenario::Disconnect, Phase::Apply),
                ev(2 * S, Scenario::Disconnect, Phase::Clear),
                ev(3 * S, Scenario::Combined, Phase::Apply),
                ev(9 * S, Scenario::Combined, Phase::Clear),
            ],
            &[
                h(0, true),
                h(S + 1, false),
                h(5 * S / 2, false),
                h(3 * S, true),
            ],
        );
        // window 1 recovered at 3 s (1 s after clear)
        assert_eq!(w[0].recovery_ns(), Some(S));
        assert_eq!(w[1].status, Status::NotRecovered);
        assert!(w[1].no_health_after_clear);
        // incomplete: apply replaced, apply without clear
        let w = run(
            vec![
                ev(S, Scenario::Disconnect, Phase::Apply),
                ev(2 * S, Scenario::Disconnect, Phase::Apply),
                ev(3 * S, Scenario::Disconnect, Phase::Clear),
                ev(4 * S, Scenario::Jitter, Phase::Apply),
            ],
            &[h(0, true), h(5 * S, true)],
        );
        assert_eq!(w[0].status, Status::Incomplete);
        assert_eq!(
            w[0].notes(),
            ["no valid apply/clear window", "replaced_by_later_apply"]
        );
        assert_eq!(w[1].status, Status::UnhealthyNotObserved);
        assert_eq!(w[2].status, Status::Incomplete);
    }

    #[test]
    fn out_of_order_is_reported() {
        let mut ws: Vec<Window> = Vec::new();
        let mut m = Merge::new(&mut ws, SETTLE, false);
        m.feed(h(5, true), 1).unwrap();
        assert_eq!(m.feed(h(4, true), 2).unwrap_err().line, 2);
    }

    #[test]
    fn nearest_rank_percentiles() {
        let st = Stats::of((1..=200).collect()).unwrap();
        assert_eq!((st.p50, st.p95, st.p99, st.max), (100, 190, 198, 200));
        let st = Stats::of(vec![3, 1, 2]).unwrap();
        assert_eq!((st.p50, st.p99, st.count), (2, 3, 3));
        assert!(Stats::of(vec![]).is_none());
    }
}
