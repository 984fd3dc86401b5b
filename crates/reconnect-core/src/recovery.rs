//! The recovery rule, one implementation for slo-report (over a whole probe log) and
//! reconnect-evidence (while the drill waits):
//!
//! A fault window recovers at the first healthy moment after which the probe stays healthy for
//! the settle interval, or until the next apply; it is measured from the clear. The candidates
//! are the clear itself (when the probe is healthy at the clear) and every healthy sample after
//! it, so an outage that begins just after the clear is part of that window's recovery (its
//! candidate at the clear is dropped by the unhealthy sample). The search ends at the next apply,
//! so one outage is never counted in two windows.
//!
//! Feed the samples after the clear in time order ([`RecoverySearch::feed`]); tell it the time
//! when no sample comes ([`RecoverySearch::advance_to`]). When the probe log ends (slo-report),
//! [`RecoverySearch::finish`] ends the search like the next apply would: a probe healthy from a
//! moment to the end of its log recovered then. When a drill's deadline passes before the settle
//! interval, [`RecoverySearch::give_up`] says `Unsettled`.

use crate::probe_log::{HealthSample, HealthState};

/// Why a window did not recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotRecovered {
    /// The next apply came first.
    NextApply,
    /// Healthy since this moment when the evidence ended, but not for the settle interval.
    Unsettled {
        /// Start of the last healthy run (epoch ns).
        healthy_since_ns: i64,
    },
    /// Never healthy again before the evidence ended.
    NeverHealthy,
}

impl NotRecovered {
    /// The note used in reports.
    #[must_use]
    pub fn note(self) -> &'static str {
        match self {
            NotRecovered::NextApply => "next_apply_before_recovery",
            NotRecovered::Unsettled { .. } => "not_settled",
            NotRecovered::NeverHealthy => "not_healthy_again",
        }
    }
}

/// How a window's recovery search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Recovered at `at_ns` (the clear itself when the probe was healthy at the clear and stayed
    /// so).
    Recovered {
        /// The recovery moment (epoch ns), never before the clear.
        at_ns: i64,
    },
    /// Not recovered.
    NotRecovered(NotRecovered),
}

/// The search for one window's recovery moment.
#[derive(Debug, Clone)]
pub struct RecoverySearch {
    clear_ns: i64,
    settle_ns: i64,
    end_ns: Option<i64>,
    candidate: Option<i64>,
    first_unhealthy_ns: Option<i64>,
    samples_after_clear: u64,
    outcome: Option<Outcome>,
}

impl RecoverySearch {
    /// Start at the clear. `state_at_clear` is the last sample's state at or before the clear;
    /// `settle_ns` the settle interval; `next_apply_ns` the next apply after the clear, if any.
    #[must_use]
    pub fn new(
        clear_ns: i64,
        state_at_clear: Option<HealthState>,
        settle_ns: i64,
        next_apply_ns: Option<i64>,
    ) -> Self {
        let mut s = RecoverySearch {
            clear_ns,
            settle_ns: settle_ns.max(0),
            end_ns: next_apply_ns.map(|n| n.max(clear_ns)),
            candidate: (state_at_clear == Some(HealthState::Healthy)).then_some(clear_ns),
            first_unhealthy_ns: None,
            samples_after_clear: 0,
            outcome: None,
        };
        s.advance_to(clear_ns);
        s
    }

    /// The outcome, once decided.
    #[must_use]
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }

    /// The first unhealthy sample after the clear (before the decision).
    #[must_use]
    pub fn first_unhealthy_ns(&self) -> Option<i64> {
        self.first_unhealthy_ns
    }

    /// Samples fed after the clear.
    #[must_use]
    pub fn samples_after_clear(&self) -> u64 {
        self.samples_after_clear
    }

    /// Time has reached `now_ns` with no sample since the last one fed: decides when a candidate
    /// has been healthy for the settle interval, or the next apply has come.
    pub fn advance_to(&mut self, now_ns: i64) -> Option<Outcome> {
        if self.outcome.is_none() {
            if self.end_ns.is_some_and(|end| now_ns >= end) {
                self.decide_at_end();
            } else {
                self.settle_check(now_ns);
            }
        }
        self.outcome
    }

    fn settle_check(&mut self, now_ns: i64) {
        if let Some(c) = self.candidate
            && now_ns - c >= self.settle_ns
        {
            self.outcome = Some(Outcome::Recovered { at_ns: c });
        }
    }

    /// The next apply: a probe healthy from a candidate until it recovered at the candidate.
    fn decide_at_end(&mut self) {
        self.outcome = Some(match self.candidate {
            Some(c) => Outcome::Recovered { at_ns: c },
            None => Outcome::NotRecovered(NotRecovered::NextApply),
        });
    }

    /// Feed the next sample (time order). Samples at or before the clear are ignored; a sample
    /// at the next apply is still this window's.
    pub fn feed(&mut self, s: HealthSample) -> Option<Outcome> {
        if self.outcome.is_some() || s.ts_ns <= self.clear_ns {
            return self.outcome;
        }
        // Until this sample the state was the candidate's (healthy) or unhealthy.
        self.settle_check(s.ts_ns);
        if self.outcome.is_none() && self.end_ns.is_some_and(|end| s.ts_ns > end) {
            self.decide_at_end();
        }
        if self.outcome.is_some() {
            return self.outcome;
        }
        self.samples_after_clear += 1;
        match s.state {
            HealthState::Unhealthy => {
                self.candidate = None;
                self.first_unhealthy_ns.get_or_insert(s.ts_ns);
            }
            HealthState::Healthy => {
                self.candidate.get_or_insert(s.ts_ns);
            }
        }
        self.advance_to(s.ts_ns)
    }

    /// The probe log ends: the end of the evidence ends the search, as the next apply does.
    #[must_use]
    pub fn finish(self) -> Outcome {
        self.outcome.unwrap_or(match self.candidate {
            Some(c) => Outcome::Recovered { at_ns: c },
            None => Outcome::NotRecovered(NotRecovered::NeverHealthy),
        })
    }

    /// A drill's deadline passed while it waited: a healthy run shorter than the settle interval
    /// is `Unsettled`.
    #[must_use]
    pub fn give_up(self) -> Outcome {
        self.outcome
            .unwrap_or(Outcome::NotRecovered(match self.candidate {
                Some(c) => NotRecovered::Unsettled {
                    healthy_since_ns: c,
                },
                None => NotRecovered::NeverHealthy,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: i64 = 1_000_000;

    fn s(ts_ms: i64, healthy: bool) -> HealthSample {
        HealthSample {
            ts_ns: ts_ms * MS,
            state: if healthy {
                HealthState::Healthy
            } else {
                HealthState::Unhealthy
            },
        }
    }

    fn run(
        at_clear: Option<bool>,
        samples: &[(i64, bool)],
        next_apply_ms: Option<i64>,
    ) -> (Outcome, Option<i64>) {
        let st = at_clear.map(|h| {
            if h {
                HealthState::Healthy
            } else {
                HealthState::Unhealthy
            }
        });
        let mut r = RecoverySearch::new(1000 * MS, st, 1000 * MS, next_apply_ms.map(|n| n * MS));
        for &(t, h) in samples {
            r.feed(s(t, h));
        }
        let first = r.first_unhealthy_ns();
        (r.finish(), first)
    }

    #[test]
    fn an_outage_just_after_the_clear_is_this_windows_recovery() {
        // Healthy at the clear (1000 ms), unhealthy 100 ms later, healthy again at 1250.
        let (o, first) = run(
            Some(true),
            &[(1100, false), (1250, true), (1450, true), (2300, true)],
            None,
        );
        assert_eq!(o, Outcome::Recovered { at_ns: 1250 * MS });
        assert_eq!(first, Some(1100 * MS));
    }

    #[test]
    fn healthy_at_the_clear_and_settled_is_the_clear() {
        let (o, _) = run(Some(true), &[(1500, true), (2100, true)], None);
        assert_eq!(o, Outcome::Recovered { at_ns: 1000 * MS });
    }

    #[test]
    fn the_search_ends_at_the_next_apply() {
        // Never healthy again before the next apply at 3000: not recovered, and the healthy
        // sample at 3500 (the next window's) is not this window's recovery.
        let (o, _) = run(
            Some(false),
            &[(2000, false), (3500, true), (5000, true)],
            Some(3000),
        );
        assert_eq!(o, Outcome::NotRecovered(NotRecovered::NextApply));
        // Healthy from 2500 until the next apply at 3000 (less than the settle): recovered.
        let (o, _) = run(Some(false), &[(2500, true), (3100, false)], Some(3000));
        assert_eq!(o, Outcome::Recovered { at_ns: 2500 * MS });
        // A sample at the next apply is still this window's.
        let (o, _) = run(Some(false), &[(3000, true), (3100, false)], Some(3000));
        assert_eq!(o, Outcome::Recovered { at_ns: 3000 * MS });
    }

    #[test]
    fn a_short_healthy_blip_is_not_the_recovery() {
        let (o, _) = run(
            Some(false),
            &[(1200, true), (1300, false), (1600, true), (2700, true)],
            None,
        );
        assert_eq!(o, Outcome::Recovered { at_ns: 1600 * MS });
    }

    #[test]
    fn the_end_of_the_log_ends_the_search_a_deadline_is_unsettled() {
        let (o, _) = run(Some(false), &[(1200, true), (1300, true)], None);
        assert_eq!(o, Outcome::Recovered { at_ns: 1200 * MS });
        let mut r = RecoverySearch::new(1000 * MS, Some(HealthState::Unhealthy), 1000 * MS, None);
        r.feed(s(1200, true));
        assert_eq!(
            r.give_up(),
            Outcome::NotRecovered(NotRecovered::Unsettled {
                healthy_since_ns: 1200 * MS
            })
        );
        let (o, _) = run(None, &[(1200, false)], None);
        assert_eq!(o, Outcome::NotRecovered(NotRecovered::NeverHealthy));
    }

    #[test]
    fn time_passing_without_samples_settles() {
        let mut r = RecoverySearch::new(0, Some(HealthState::Unhealthy), 1000, None);
        assert_eq!(
            r.feed(HealthSample {
                ts_ns: 10,
                state: HealthState::Healthy
            }),
            None
        );
        assert_eq!(r.advance_to(500), None);
        assert_eq!(r.advance_to(1010), Some(Outcome::Recovered { at_ns: 10 }));
    }
}
