//! The scenario table: the original's fixed holds and parameters (plus `latency`, which the
//! original could not select), overridable from the command line.

use evidence_core::{EvidenceError, Result};
use reconnect_core::fault_event::Scenario;

/// One scenario of the drill, with its resolved hold and parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The scenario.
    pub scenario: Scenario,
    /// How long the fault is held, ms.
    pub hold_ms: u64,
    /// Delay, ms (latency, jitter, combined).
    pub delay_ms: u64,
    /// Jitter, ms (jitter, combined).
    pub jitter_ms: u64,
    /// Loss, percent (loss, combined).
    pub loss_percent: f64,
}

/// Overrides of the table (`--hold-ms`, `--delay-ms`, `--jitter-ms`, `--loss-percent`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Overrides {
    /// Every scenario's hold.
    pub hold_ms: Option<u64>,
    /// The delay of latency, jitter and combined.
    pub delay_ms: Option<u64>,
    /// The jitter of jitter and combined.
    pub jitter_ms: Option<u64>,
    /// The loss of loss and combined.
    pub loss_percent: Option<f64>,
}

/// The table's row for `s` (the original's `run_reconnect_evidence` values; latency is ours).
#[must_use]
pub fn default_step(s: Scenario) -> Step {
    let (hold_ms, delay_ms, jitter_ms, loss_percent) = match s {
        Scenario::Disconnect => (20_000, 0, 0, 0.0),
        Scenario::Latency => (30_000, 250, 0, 0.0),
        Scenario::Jitter => (30_000, 250, 30, 0.0),
        Scenario::Loss => (30_000, 0, 0, 5.0),
        Scenario::Combined => (30_000, 200, 40, 3.0),
    };
    Step {
        scenario: s,
        hold_ms,
        delay_ms,
        jitter_ms,
        loss_percent,
    }
}

impl Step {
    fn with(mut self, o: &Overrides) -> Step {
        if let Some(h) = o.hold_ms {
            self.hold_ms = h;
        }
        let uses_delay = matches!(
            self.scenario,
            Scenario::Latency | Scenario::Jitter | Scenario::Combined
        );
        let uses_jitter = matches!(self.scenario, Scenario::Jitter | Scenario::Combined);
        let uses_loss = matches!(self.scenario, Scenario::Loss | Scenario::Combined);
        if let (true, Some(d)) = (uses_delay, o.delay_ms) {
            self.delay_ms = d;
        }
        if let (true, Some(j)) = (uses_jitter, o.jitter_ms) {
            self.jitter_ms = j;
        }
        if let (true, Some(l)) = (uses_loss, o.loss_percent) {
            self.loss_percent = l;
        }
        self
    }

    /// `--duration-sec` for fault-inject: the hold rounded up to whole seconds (at least 1).
    #[must_use]
    pub fn duration_sec(&self) -> u64 {
        self.hold_ms.div_ceil(1000).max(1)
    }

    /// True when the hold is not a whole number of seconds: fault-inject then runs with
    /// `--hold-interruptible` and is ended by SIGTERM after the hold.
    #[must_use]
    pub fn sub_second(&self) -> bool {
        !self.hold_ms.is_multiple_of(1000)
    }

    /// A one-line description for messages.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut s = format!("{}: hold {} ms", self.scenario, self.hold_ms);
        if self.delay_ms > 0 {
            s.push_str(&format!(", delay {} ms", self.delay_ms));
        }
        if self.jitter_ms > 0 {
            s.push_str(&format!(", jitter {} ms", self.jitter_ms));
        }
        if self.loss_percent > 0.0 {
            s.push_str(&format!(", loss {}%", fmt_g(self.loss_percent)));
        }
        s
    }
}

/// `%g`-like text of a float (`5`, `2.5`).
#[must_use]
pub fn fmt_g(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Parse `--scenarios` as the original: split on commas, skip blanks, keep order and duplicates;
/// an unknown name or an empty selection is an error.
pub fn parse_list(text: &str, o: &Overrides) -> Result<Vec<Step>> {
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let s: Scenario = name
            .parse()
            .map_err(|_| EvidenceError::usage(format!("unknown scenario: {name}")))?;
        out.push(default_step(s).with(o));
    }
    if out.is_empty() {
        return Err(EvidenceError::usage("no scenario selected (--scenarios)"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn original_table_and_order() {
        let v = parse_list(" disconnect,,jitter,disconnect ", &Overrides::default()).unwrap();
        let names: Vec<&str> = v.iter().map(|s| s.scenario.as_str()).collect();
        assert_eq!(names, ["disconnect", "jitter", "disconnect"]);
        assert_eq!(v[0].hold_ms, 20_000);
        assert_eq!((v[1].delay_ms, v[1].jitter_ms), (250, 30));
        assert!(parse_list("latencyy", &Overrides::default()).is_err());
        assert!(parse_list(" , ", &Overrides::default()).is_err());
    }

    #[test]
    fn overrides_touch_only_the_parameters_a_scenario_uses() {
        let o = Overrides {
            hold_ms: Some(400),
            delay_ms: Some(1000),
            jitter_ms: Some(50),
            loss_percent: Some(10.0),
        };
        let v = parse_list("disconnect,latency,loss,combined", &o).unwrap();
        assert_eq!((v[0].hold_ms, v[0].delay_ms), (400, 0));
        assert_eq!((v[1].delay_ms, v[1].jitter_ms), (1000, 0));
        assert_eq!((v[2].delay_ms, v[2].loss_percent), (0, 10.0));
        assert_eq!(
            (v[3].delay_ms, v[3].jitter_ms, v[3].loss_percent),
            (1000, 50, 10.0)
        );
        assert_eq!(v[0].duration_sec(), 1);
        assert!(v[0].sub_second());
        assert_eq!(default_step(Scenario::Disconnect).duration_sec(), 20);
        assert!(!default_step(Scenario::Disconnect).sub_second());
        assert_eq!(fmt_g(5.0), "5");
        assert_eq!(fmt_g(2.5), "2.5");
    }
}
