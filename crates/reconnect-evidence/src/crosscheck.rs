//! Local drills only: the recovery moment the drill measured (the probe's healthy line) against
//! the simulator's own log, the ground truth of when the probe's logins were accepted.

use std::path::Path;

use serde_json::Value;

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The moment ctp-front-sim wrote the `login_ok` that made the probe healthy at `healthy_ts`:
/// per front, the probe's last `probe.login` at or before that state change, found in the
/// simulator's `sim.login` records by the reply's timestamp; the later of the two fronts. `None`
/// when `healthy_ts` is not a state change to healthy or a login cannot be matched.
#[must_use]
pub fn sim_login_moment(probe_events: &Path, sim_events: &Path, healthy_ts: i64) -> Option<i64> {
    let probe = jsonl(probe_events);
    let sim = jsonl(sim_events);
    probe.iter().find(|e| {
        e["kind"] == "probe.state"
            && e["state"] == "healthy"
            && e["ts_ns"].as_i64() == Some(healthy_ts)
    })?;
    let mut moment = None;
    for front in ["trader", "market"] {
        let login = probe.iter().rev().find(|e| {
            e["kind"] == "probe.login"
                && e["front"] == front
                && e["ts_ns"].as_i64().is_some_and(|t| t <= healthy_ts)
        })?;
        let accepted = sim.iter().find(|e| {
            e["kind"] == "sim.login"
                && e["accepted"] == true
                && e["front"] == front
                && e["reply_ts_ns"] == login["server_ts_ns"]
        })?;
        let t = accepted["ts_ns"].as_i64()?;
        moment = Some(moment.map_or(t, |m: i64| m.max(t)));
    }
    moment
}

#[cfg(test)]
mod tests {
    use super::*;

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
            r#"{"kind":"sim.login","ts_ns":92,"front":"trader","accepted":true,"reply_ts_ns":90}
{"kind":"sim.login","ts_ns":193,"front":"trader","accepted":true,"reply_ts_ns":190}
{"kind":"sim.login","ts_ns":207,"front":"market","accepted":true,"reply_ts_ns":205}
"#,
        )
        .unwrap();
        assert_eq!(sim_login_moment(&p, &s, 211), Some(207));
        assert_eq!(sim_login_moment(&p, &s, 210), None);
    }
}
