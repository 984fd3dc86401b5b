//! evidence-core: what every ctp-ops tool needs, so that each tool is mostly its own domain logic.
//!
//! - [`exit`]: the one exit-code type (0 pass, 1 breach, 2 bad input, 130 interrupted);
//! - [`error`]: errors that name file, line and field;
//! - [`io`]: `-` for stdin/stdout, atomic durable writes;
//! - [`dotenv`]: strict `.env` reader, ordered writer;
//! - [`jsonl`]: streaming JSONL with `file:line` errors;
//! - [`time`]: epoch ns, RFC 3339 UTC, monotonic stopwatches;
//! - [`provenance`]: tool, version, host, operator, times, dry-run, config SHA-256;
//! - [`cli`]: the shared `main`, stderr messages prefixed with the tool name;
//! - [`signals`]: SIGINT/SIGTERM flag, interruptible sleeps and condition waits with deadlines;
//! - [`lock`]: one drill of a kind at a time;
//! - [`process`]: shell steps with timeouts, process groups and captured output; pid checks,
//!   sibling binaries, shell quoting;
//! - [`reaper`]: the dead-man reaper: a drill's children die with it, also on SIGKILL;
//! - [`drill`]: the drill id and the flags every drill takes (`DrillArgs`);
//! - [`duration`]: one duration syntax for flags (`500ms`, `30s`, `2m`) and range-checked numbers;
//! - [`health`]: TCP, HTTP and command health checks retried until a deadline;
//! - [`supervisor`]: detached processes with pid and log files, stop with SIGTERM then SIGKILL;
//! - [`verify`]: the verifiers' checks and verdict output.
#![warn(missing_docs)]

pub mod cli;
pub mod dotenv;
pub mod drill;
pub mod duration;
pub mod error;
pub mod exit;
pub mod health;
pub mod io;
pub mod jsonl;
pub mod lock;
pub mod process;
pub mod provenance;
pub mod reaper;
pub mod signals;
pub mod supervisor;
pub mod time;
pub mod verify;

pub use error::{EvidenceError, Result};
pub use exit::Exit;
