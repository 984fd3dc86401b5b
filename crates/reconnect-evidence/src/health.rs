//! Following the probe log while the drill runs: new `[health]` lines are read as they are
//! written (the probe flushes every line), so the drill knows the probe's state at any moment.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

use evidence_core::Result;
use evidence_core::error::EvidenceError;
use reconnect_core::probe_log::{HealthSample, HealthState, parse_health_line};

/// The samples of a probe log read so far.
pub struct HealthTail {
    path: PathBuf,
    pos: u64,
    partial: Vec<u8>,
    line_no: usize,
    samples: Vec<HealthSample>,
}

/// Where a wait for a healthy, settled probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Healthy from this sample's `ts_ns` on, for at least the settle time.
    Yes(i64),
    /// Healthy from this `ts_ns` at the deadline, but not yet for the whole settle time.
    Unsettled(i64),
    /// Not healthy at the deadline.
    No,
}

impl HealthTail {
    /// Follow `path` (it may not exist yet).
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        HealthTail {
            path,
            pos: 0,
            partial: Vec::new(),
            line_no: 0,
            samples: Vec::new(),
        }
    }

    /// Read what was appended since the last call. A line with the `[health]` marker but no valid
    /// sample is an error naming `file:line`.
    pub fn poll(&mut self) -> Result<()> {
        let Ok(mut f) = File::open(&self.path) else {
            return Ok(());
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.pos {
            // Truncated (a probe restarted the log): start over.
            self.pos = 0;
            self.partial.clear();
            self.line_no = 0;
            self.samples.clear();
        }
        f.seek(SeekFrom::Start(self.pos))
            .map_err(|e| EvidenceError::io("cannot read", &self.path, e))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| EvidenceError::io("cannot read", &self.path, e))?;
        self.pos += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        while let Some(nl) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=nl).collect();
            self.line_no += 1;
            match parse_health_line(&line) {
                Ok(Some(s)) => self.samples.push(s),
                Ok(None) => {}
                Err(e) => return Err(e.at(&self.path.display().to_string(), self.line_no)),
            }
        }
        Ok(())
    }

    /// Every sample read so far, in file order.
    #[must_use]
    pub fn samples(&self) -> &[HealthSample] {
        &self.samples
    }

    /// The start of the current healthy run among the samples at or after `after_ns` (the state
    /// is the last sample's): `Some(ts)` when the probe is healthy now and has been since `ts`.
    #[must_use]
    pub fn healthy_since(&self, after_ns: i64) -> Option<i64> {
        let mut run: Option<i64> = None;
        for s in self.samples.iter().filter(|s| s.ts_ns >= after_ns) {
            match s.state {
                HealthState::Healthy => {
                    run.get_or_insert(s.ts_ns);
                }
                HealthState::Unhealthy => run = None,
            }
        }
        run
    }

    /// The probe's state at `ts_ns`: the last sample at or before it.
    #[must_use]
    pub fn state_at(&self, ts_ns: i64) -> Option<HealthState> {
        self.samples
            .iter()
            .filter(|s| s.ts_ns <= ts_ns)
            .max_by_key(|s| s.ts_ns)
            .map(|s| s.state)
    }

    /// True when an unhealthy sample lies in `(from_ns, to_ns]`.
    #[must_use]
    pub fn unhealthy_between(&self, from_ns: i64, to_ns: i64) -> bool {
        self.samples
            .iter()
            .any(|s| s.ts_ns > from_ns && s.ts_ns <= to_ns && s.state == HealthState::Unhealthy)
    }

    /// True when the last sample says unhealthy at or after `after_ns`.
    #[must_use]
    pub fn unhealthy_seen_since(&self, after_ns: i64) -> bool {
        self.samples
            .iter()
            .any(|s| s.ts_ns >= after_ns && s.state == HealthState::Unhealthy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn follows_appends_and_finds_the_healthy_run() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("probe.log");
        let mut t = HealthTail::new(p.clone());
        t.poll().unwrap();
        assert!(t.samples().is_empty());
        let mut f = File::create(&p).unwrap();
        write!(
            f,
            "ctp-probe: x\n[health] ts_ns=10 state=unhealthy\n[health] ts_ns=20 state=healthy\n[health] ts_ns=30 state=hea"
        )
        .unwrap();
        t.poll().unwrap();
        assert_eq!(t.samples().len(), 2);
        assert_eq!(t.healthy_since(0), Some(20));
        write!(f, "lthy\n[health] ts_ns=40 state=unhealthy\n").unwrap();
        t.poll().unwrap();
        assert_eq!(t.samples().len(), 4);
        assert_eq!(t.healthy_since(0), None);
        assert!(t.unhealthy_seen_since(35));
        writeln!(f, "[health] ts_ns=50 state=healthy").unwrap();
        t.poll().unwrap();
        assert_eq!(t.healthy_since(0), Some(50));
        assert_eq!(t.healthy_since(60), None);
        assert_eq!(t.state_at(45), Some(HealthState::Unhealthy));
        assert_eq!(t.state_at(5), None);
        assert!(t.unhealthy_between(35, 40));
        assert!(!t.unhealthy_between(40, 50));
        writeln!(f, "[health] ts_ns=x state=healthy").unwrap();
        let e = t.poll().unwrap_err().to_string();
        assert!(e.contains("probe.log:7"), "{e}");
    }
}
