//! The one exit-code type every tool uses.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | pass: the drill ran and met its targets, or the evidence verified |
//! | 1 | breach: the drill ran and failed, a threshold was missed, or the thing checked is unhealthy |
//! | 2 | bad input, bad usage, or the tool could not do its job |
//! | 130 | interrupted by SIGINT/SIGTERM (after cleanup) |
//!
//! Precedence: interrupted > bad input > breach > pass. A bad record anywhere outranks a breach.

use std::process::ExitCode;

/// Process exit status of a tool, ordered by precedence (`Ord`: the larger one wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Exit {
    /// 0: everything passed.
    Pass,
    /// 1: the drill ran and failed, or a threshold was breached.
    Breach,
    /// 2: bad input, bad usage, or the tool could not do its job.
    BadInput,
    /// 130: interrupted by a signal; cleanup has run.
    Interrupted,
}

impl Exit {
    /// The numeric process status.
    #[must_use]
    pub fn code(self) -> u8 {
        match self {
            Exit::Pass => 0,
            Exit::Breach => 1,
            Exit::BadInput => 2,
            Exit::Interrupted => 130,
        }
    }

    /// The worse of two outcomes (2 > 1 > 0; 130 above all).
    #[must_use]
    pub fn worst(self, other: Exit) -> Exit {
        self.max(other)
    }

    /// `Pass` when `ok`, otherwise `Breach`.
    #[must_use]
    pub fn pass_if(ok: bool) -> Exit {
        if ok { Exit::Pass } else { Exit::Breach }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        assert_eq!(Exit::Pass.worst(Exit::Breach), Exit::Breach);
        assert_eq!(Exit::BadInput.worst(Exit::Breach), Exit::BadInput);
        assert_eq!(Exit::Breach.worst(Exit::Interrupted), Exit::Interrupted);
        assert_eq!(Exit::Pass.worst(Exit::Pass), Exit::Pass);
    }

    #[test]
    fn codes() {
        assert_eq!(Exit::Pass.code(), 0);
        assert_eq!(Exit::Breach.code(), 1);
        assert_eq!(Exit::BadInput.code(), 2);
        assert_eq!(Exit::Interrupted.code(), 130);
        assert_eq!(Exit::pass_if(true), Exit::Pass);
        assert_eq!(Exit::pass_if(false), Exit::Breach);
    }
}
