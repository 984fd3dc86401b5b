//! wal-replay: the counterpart of the original's `wal_replay_tool`. Streams a WAL, applies the
//! recovery rules per `client_order_id`, checks `seq`, rebuilds positions, and prints the original's
//! summary line (or a JSON summary).

use clap::{CommandFactory as _, Parser};
use evidence_core::cli::{EXIT_STATUS_HELP, info, stdout_write, warn};
use evidence_core::io::Input;
use evidence_core::{EvidenceError, Exit, Result};
use wal_core::{ReplayOptions, ReplaySummary, Replayer};

const AFTER_HELP: &str = "\
OUTPUT: the original's line, then the seq checks, on stdout:
  WAL replay completed path=<p> lines=<N> events=<M> ignored=<I> parse_errors=<P> state_rejected=<R>
  ledger_applied=<L> last_seq=<S|none> gaps=<G> duplicates=<D> torn_tail_bytes=<T>
Each parse error, rejection, gap and duplicate is also named on stderr as <wal>:<line>: ...
A torn tail (bytes after the last newline that do not parse: a write cut by a crash) is reported,
not counted as an error.

EXIT STATUS here: 0 clean (a torn tail alone is clean); 1 parse errors, rejections, seq gaps or
duplicates; 2 the WAL cannot be read or bad usage.

EXAMPLE:
  wal-replay runtime/wal/runtime_events.wal
  wal-replay --json runtime/wal/runtime_events.wal | jq '.positions'

";

/// Replay a WAL with the platform's recovery rules and check its seq.
#[derive(Debug, Parser)]
#[command(name = "wal-replay", version, after_help = format!("{AFTER_HELP}{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// The WAL to replay (`-` for stdin).
    #[arg(value_name = "WAL", default_value = "-")]
    pub wal: Input,
    /// Print the JSON summary (one `wal.replay` object) instead of the summary line.
    #[arg(long)]
    pub json: bool,
    /// List at most this many gaps, duplicates and problems (all are counted).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_listed: usize,
}

/// Replay `input` and return its summary. Errors only when the input cannot be read.
pub fn replay(input: &Input, max_listed: usize) -> Result<ReplaySummary> {
    let reader = input.open()?;
    let opts = ReplayOptions {
        collect_seqs: false,
        max_listed,
    };
    let (summary, _) = Replayer::new(&input.label(), opts)
        .run(reader)
        .map_err(|e| EvidenceError::io("cannot read", input.label(), e))?;
    Ok(summary)
}

/// Run the tool.
pub fn run(cli: Cli) -> Result<Exit> {
    let s = replay(&cli.wal, cli.max_listed)?;
    report(&s);
    if cli.json {
        let mut text = serde_json::to_string(&s)
            .map_err(|e| EvidenceError::failed(format!("cannot encode the summary: {e}")))?;
        text.push('\n');
        stdout_write(&text)?;
    } else {
        stdout_write(&format!("{}\n", s.summary_line()))?;
    }
    Ok(Exit::pass_if(s.clean))
}

fn report(s: &ReplaySummary) {
    const SHOWN: usize = 20;
    let mut shown = 0usize;
    for p in &s.problems {
        if shown == SHOWN {
            break;
        }
        let what = if p.problem == "parse" {
            "parse error"
        } else {
            "rejected"
        };
        warn(&format!(
            "{}:{}: {what}: {}: {}",
            s.path, p.line, p.field, p.message
        ));
        shown += 1;
    }
    for g in &s.gaps {
        if shown == SHOWN {
            break;
        }
        warn(&format!(
            "{}:{}: seq gap: {}..={} missing",
            s.path, g.line, g.from, g.to
        ));
        shown += 1;
    }
    for d in &s.duplicates {
        if shown == SHOWN {
            break;
        }
        warn(&format!(
            "{}:{}: seq {} is not above the largest seq before it (duplicate or out of order)",
            s.path, d.line, d.seq
        ));
        shown += 1;
    }
    let total = s.parse_errors + s.state_rejected + s.gap_count + s.duplicate_count;
    if total > shown as u64 {
        warn(&format!(
            "{} more problems not shown (see --json)",
            total - shown as u64
        ));
    }
    if s.torn_tail_bytes > 0 {
        info(&format!(
            "{}: torn tail of {} bytes after the last newline (a write cut by a crash; not an error)",
            s.path, s.torn_tail_bytes
        ));
    }
}

/// clap's command, for docs and the CLI check.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
