//! The probe-vs-simulator cross-check (local drills with ctp-front-sim): the recovery moment the
//! probe measured (its state change to healthy) against the simulator's own log, the ground truth
//! of when the probe's logins were accepted. One typed implementation for reconnect-evidence's
//! verdict, ctp-probe's tests and the benches.

use crate::probe_events::ProbeEvent;
use crate::sim_events::SimEvent;

/// The fronts a probe logs in to.
pub const FRONTS: [&str; 2] = ["trader", "market"];

/// The moment ctp-front-sim sent the `login_ok` that made the probe healthy at `healthy_ts`: per
/// front, the probe's last `probe.login` at or before that state change, found in the simulator's
/// accepted `sim.login` records by the reply's timestamp; the later of the two fronts. `None` when
/// `healthy_ts` is not a state change to healthy or a login cannot be matched.
#[must_use]
pub fn sim_login_moment(probe: &[ProbeEvent], sim: &[SimEvent], healthy_ts: i64) -> Option<i64> {
    probe.iter().find(|e| {
        matches!(e, ProbeEvent::State { ts_ns, state } if *ts_ns == healthy_ts && state == "healthy")
    })?;
    let mut moment: Option<i64> = None;
    for front in FRONTS {
        let server_ts = probe.iter().rev().find_map(|e| match e {
            ProbeEvent::Login {
                ts_ns,
                front: f,
                server_ts_ns,
            } if f == front && *ts_ns <= healthy_ts => Some(*server_ts_ns),
            _ => None,
        })??;
        let accepted = sim.iter().find_map(|e| match e {
            SimEvent::Login {
                ts_ns,
                front: f,
                accepted: true,
                reply_ts_ns: Some(r),
                ..
            } if f == front && *r == server_ts => Some(*ts_ns),
            _ => None,
        })?;
        moment = Some(moment.map_or(accepted, |m| m.max(accepted)));
    }
    moment
}

/// The first session the simulator closed because a front went down, after `after_ns`: the
/// ground truth of a loss the probe should detect.
#[must_use]
pub fn sim_first_front_down_close(sim: &[SimEvent], after_ns: i64) -> Option<i64> {
    sim.iter()
        .filter_map(|e| match e {
            SimEvent::Close { ts_ns, reason, .. }
                if reason == "front_down" && *ts_ns > after_ns =>
            {
                Some(*ts_ns)
            }
            _ => None,
        })
        .min()
}

/// How a probe figure compares with the simulator's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// Within the bound: `diff_ns` = probe − simulator.
    Agrees {
        /// Probe minus simulator (ns).
        diff_ns: i64,
    },
    /// Beyond the bound: the probe's figure is not to be trusted.
    Disagrees {
        /// Probe minus simulator (ns).
        diff_ns: i64,
    },
    /// The simulator's log has no matching record (not cross-checked).
    Unmatched,
}

impl Agreement {
    /// Compare the probe's `healthy_ts` with the simulator's login moment, within `bound_ns`.
    #[must_use]
    pub fn of_recovery(
        probe: &[ProbeEvent],
        sim: &[SimEvent],
        healthy_ts: i64,
        bound_ns: i64,
    ) -> Agreement {
        match sim_login_moment(probe, sim, healthy_ts) {
            None => Agreement::Unmatched,
            Some(s) => Agreement::within(healthy_ts - s, bound_ns),
        }
    }

    /// `Agrees` when `|diff_ns| <= bound_ns`, else `Disagrees`.
    #[must_use]
    pub fn within(diff_ns: i64, bound_ns: i64) -> Agreement {
        if diff_ns.abs() <= bound_ns {
            Agreement::Agrees { diff_ns }
        } else {
            Agreement::Disagrees { diff_ns }
        }
    }

    /// The difference, when matched.
    #[must_use]
    pub fn diff_ns(self) -> Option<i64> {
        match self {
            Agreement::Agrees { diff_ns } | Agreement::Disagrees { diff_ns } => Some(diff_ns),
            Agreement::Unmatched => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe_events::read_probe_events;
    use crate::sim_events::read_sim_events;

    #[test]
    fn matches_the_logins_by_their_reply_time() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p.jsonl");
        let s = dir.path().join("s.jsonl");
        std::fs::write(
            &p,
            r#"{"kind":"probe.login","ts_ns":100,"front":"trader","server_ts_ns":90}
{"kind":"probe.login","ts_ns":200,"front":"trader","server_ts_ns":190}
{"kind":"probe.login","ts_ns":210,"front":"market","server_ts_ns":205}
{"kind":"probe.state","ts_ns":211,"state":"healthy"}
"#,
        )
        .unwrap();
        std::fs::write(
            &s,
            r#"{"kind":"sim.login","ts_ns":92,"front":"trader","conn_id":1,"accepted":true,"reply_ts_ns":90}
{"kind":"sim.login","ts_ns":193,"front":"trader","conn_id":2,"accepted":true,"reply_ts_ns":190}
{"kind":"sim.close","ts_ns":194,"front":"trader","conn_id":1,"reason":"front_down","logged_in":true}
{"kind":"sim.login","ts_ns":207,"front":"market","conn_id":3,"accepted":true,"reply_ts_ns":205}
"#,
        )
        .unwrap();
        let (p, s) = (read_probe_events(&p).unwrap(), read_sim_events(&s).unwrap());
        assert_eq!(sim_login_moment(&p, &s, 211), Some(207));
        assert_eq!(sim_login_moment(&p, &s, 210), None);
        assert_eq!(
            Agreement::of_recovery(&p, &s, 211, 4),
            Agreement::Agrees { diff_ns: 4 }
        );
        assert_eq!(
            Agreement::of_recovery(&p, &s, 211, 3),
            Agreement::Disagrees { diff_ns: 4 }
        );
        assert_eq!(sim_first_front_down_close(&s, 100), Some(194));
    }

    #[test]
    fn a_bad_line_is_an_error_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("sim.jsonl");
        std::fs::write(
            &s,
            "{\"kind\":\"sim.stop\",\"ts_ns\":1,\"cause\":\"x\"}\n{\"kind\":\"sim.login\",\"ts_ns\":2}\n{\"kind\":\"sim.st",
        )
        .unwrap();
        let e = read_sim_events(&s).unwrap_err().to_string();
        assert!(e.contains("sim.jsonl:2"), "{e}");
        std::fs::write(
            &s,
            "{\"kind\":\"sim.stop\",\"ts_ns\":1,\"cause\":\"x\"}\n{\"kind\":\"sim.st",
        )
        .unwrap();
        assert_eq!(
            read_sim_events(&s).unwrap().len(),
            1,
            "a partial last line waits"
        );
    }
}
