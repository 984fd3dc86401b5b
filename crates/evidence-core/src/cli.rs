//! The shared `main`: parse the CLI, run, report errors on stderr with the tool name, map to the
//! exit code. Only `main` decides the process exit.

use std::error::Error as _;
use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::Parser;

use crate::error::{EvidenceError, Result};
use crate::exit::Exit;

static TOOL: OnceLock<String> = OnceLock::new();

/// The running tool's name (set by [`main`]).
#[must_use]
pub fn tool_name() -> &'static str {
    TOOL.get().map_or("ctp-ops", String::as_str)
}

/// Run a tool: parse `C` from the process arguments, call `run`, report, and return the exit code.
///
/// Help and version exit 0; usage errors exit 2 with clap's message. An error from `run` prints
/// `<tool>: error: <message>` (and its cause once) and exits with the error's class. A broken pipe
/// on stdout ends the tool quietly with 0, as `head` users expect.
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
            Exit::Pass.into()
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
/// [`main`] turns into a quiet exit.
pub fn stdout_write(text: &str) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| EvidenceError::io("cannot write", "-", e))
}

/// Text appended to every tool's `--help`.
pub const EXIT_STATUS_HELP: &str = "EXIT STATUS:\n  0    pass\n  1    the drill failed or a threshold was breached\n  2    bad input, bad usage, or the tool could not do its job\n  130  interrupted (cleanup has run)";
