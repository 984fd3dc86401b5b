//! The shared `main`: parse the CLI, run, report errors on stderr with the tool name, map to the
//! exit code. Only `main` decides the process exit.

use std::error::Error as _;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use clap::Parser;

use crate::error::{EvidenceError, Result};
use crate::exit::Exit;

static TOOL: OnceLock<String> = OnceLock::new();

/// The outcome a tool decided before writing its output (0 = none yet, else the code + 1).
static DECIDED: AtomicU8 = AtomicU8::new(0);

/// Record the outcome the tool has decided, before it writes the output that reports it. If that
/// output then meets a closed stdout (EPIPE: `wal-verify ... | head -0`), [`main`] still exits with
/// this outcome instead of 0. The worst outcome recorded wins.
pub fn decide(exit: Exit) {
    let code = match exit {
        Exit::Pass => 1,
        Exit::Breach => 2,
        Exit::BadInput => 3,
        Exit::Interrupted => 4,
    };
    DECIDED.fetch_max(code, Ordering::SeqCst);
}

/// The outcome recorded by [`decide`], if any.
#[must_use]
pub fn decided() -> Option<Exit> {
    match DECIDED.load(Ordering::SeqCst) {
        1 => Some(Exit::Pass),
        2 => Some(Exit::Breach),
        3 => Some(Exit::BadInput),
        4 => Some(Exit::Interrupted),
        _ => None,
    }
}

/// The exit status of a run that met a closed stdout: the outcome already decided (a verifier's
/// verdict), or 0 when the tool had decided nothing (a report cut short by `head`).
#[must_use]
pub fn exit_on_broken_pipe() -> Exit {
    decided().unwrap_or(Exit::Pass)
}

/// The running tool's name (set by [`main`]).
#[must_use]
pub fn tool_name() -> &'static str {
    TOOL.get().map_or("ctp-ops", String::as_str)
}

/// Run a tool: parse `C` from the process arguments, call `run`, report, and return the exit code.
///
/// Help and version exit 0; usage errors exit 2 with clap's message. An error from `run` prints
/// `<tool>: error: <message>` (and its cause once) and exits with the error's class. A broken pipe
/// on stdout ends the tool quietly, with the outcome it had already [`decide`]d (a verifier's
/// verdict survives `| head -0`), or 0 when it had decided none.
pub fn main<C: Parser>(tool: &str, run: impl FnOnce(C) -> Result<Exit>) -> ExitCode {
    let _ = TOOL.set(tool.to_string());
    if let Some(exit) = crate::reaper::run_if_requested() {
        return exit.into();
    }
    let cli = match C::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                Exit::BadInput.into()
            } else {
                Exit::Pass.into()
            };
        }
    };
    match run(cli) {
        Ok(exit) => exit.into(),
        Err(EvidenceError::Io { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => {
            exit_on_broken_pipe().into()
        }
        Err(e) => {
            report_error(&e);
            e.exit().into()
        }
    }
}

/// Print `<tool>: error: <e>` and its first cause on stderr.
pub fn report_error(e: &EvidenceError) {
    let mut line = format!("{}: error: {e}", tool_name());
    if let Some(src) = e.source() {
        line.push_str(&format!(": {src}"));
    }
    if matches!(e, EvidenceError::Interrupted) {
        line = format!("{}: interrupted", tool_name());
    }
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// Print `<tool>: warning: <msg>` on stderr.
pub fn warn(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "{}: warning: {msg}", tool_name());
}

/// Print `<tool>: <msg>` on stderr.
pub fn info(msg: &str) {
    let _ = writeln!(io::stderr().lock(), "{}: {msg}", tool_name());
}

/// Write `text` to stdout and flush. A closed pipe becomes an `Io` error of kind `BrokenPipe`, which
/// [`main`] turns into a quiet exit with the outcome already [`decide`]d.
pub fn stdout_write(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| EvidenceError::io("cannot write", "-", e))
}

/// Text appended to every tool's `--help`.
pub const EXIT_STATUS_HELP: &str = "EXIT STATUS:\n  0    pass\n  1    the drill failed or a threshold was breached\n  2    bad input, bad usage, or the tool could not do its job\n  130  interrupted (cleanup has run)";
