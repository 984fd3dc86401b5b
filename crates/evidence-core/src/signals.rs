//! SIGINT/SIGTERM handling: the first signal sets a flag that long-running loops poll, so that
//! cleanup runs before the tool exits with 130.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::error::{EvidenceError, Result};

static FLAG: OnceLock<(Arc<AtomicBool>, Arc<AtomicUsize>)> = OnceLock::new();

/// Install the handlers (idempotent). After this, SIGINT and SIGTERM no longer kill the process;
/// they set the flag that [`interrupted`] reads.
pub fn install() -> Result<()> {
    if FLAG.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicBool::new(false));
    let which = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&flag))
            .map_err(|e| EvidenceError::failed(format!("cannot install signal handler: {e}")))?;
        signal_hook::flag::register_usize(
            sig,
            Arc::clone(&which),
            usize::try_from(sig).unwrap_or(0),
        )
        .map_err(|e| EvidenceError::failed(format!("cannot install signal handler: {e}")))?;
    }
    let _ = FLAG.set((flag, which));
    Ok(())
}

/// True once SIGINT or SIGTERM has arrived (after [`install`]).
#[must_use]
pub fn interrupted() -> bool {
    FLAG.get().is_some_and(|(f, _)| f.load(Ordering::SeqCst))
}

/// The name of the signal that arrived, if any.
#[must_use]
pub fn signal_name() -> Option<&'static str> {
    let (_, which) = FLAG.get()?;
    match i32::try_from(which.load(Ordering::SeqCst)).ok()? {
        signal_hook::consts::SIGINT => Some("SIGINT"),
        signal_hook::consts::SIGTERM => Some("SIGTERM"),
        _ => None,
    }
}

/// `Err(Interrupted)` once a signal has arrived.
pub fn check() -> Result<()> {
    if interrupted() {
        Err(EvidenceError::Interrupted)
    } else {
        Ok(())
    }
}

/// Sleep for `d`, waking early (with `Err(Interrupted)`) when a signal arrives.
pub fn sleep(d: Duration) -> Result<()> {
    let end = Instant::now() + d;
    loop {
        check()?;
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(10)));
    }
}

/// Poll `cond` every `every` until it returns `Some`, the deadline passes (`Ok(None)`), or a signal
/// arrives (`Err(Interrupted)`). The way to wait on a condition: never sleep-and-hope.
pub fn wait_until<T>(
    deadline: Instant,
    every: Duration,
    mut cond: impl FnMut() -> Option<T>,
) -> Result<Option<T>> {
    loop {
        if let Some(v) = cond() {
            return Ok(Some(v));
        }
        check()?;
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(every.min(deadline - now));
    }
}
