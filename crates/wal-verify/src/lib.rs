//! wal-verify: the counterpart of the original's `verify_wal_recovery_evidence`. Same flags and
//! success line. It checks every key wal-drill writes against the others (see `AFTER_HELP` and
//! docs/templates/WAL_RECOVERY_RESULT.md), requires the provenance block (the original's
//! hand-typed shape only with `--allow-legacy`) and rejects what the original wrongly passed.

use clap::{CommandFactory as _, Parser};
use evidence_core::cli::EXIT_STATUS_HELP;
use evidence_core::dotenv::{EnvDoc, parse_non_negative_f64, parse_u64};
use evidence_core::verify::{Durations, Prov, Verdict, VerifyArgs, WAL, read_env};
use evidence_core::{EvidenceError, Exit, Result};

const AFTER_HELP: &str = "\
CHECKS (one name each, as in --format json): evidence_kind (not another drill's evidence: names the
verifier it belongs to); provenance (the block is complete, names wal-drill, times ordered and not in
the future; a file without it is the original's hand-typed shape, accepted only with --allow-legacy,
and the verdict line then says nothing proves the drill was executed); required_keys (the ten
original keys); failure_start_utc, recovery_complete_utc (UTC), timestamps_ordered,
duration_matches_timestamps (rto_seconds = recovery - failure within the coarser resolution);
times_within_run (inside the provenance window, with 2 s skew); rto_seconds, rpo_events (finite,
>= 0); result (pass; fail is a breach); rto_threshold (breached when rto_seconds OR the timestamps'
difference exceeds --max-rto-seconds); rpo_threshold; dry_run; and for wal-drill's evidence every
extra key: drill_keys (all present), events (rpo_events <= events_acked, events_recovered >=
events_acked - rpo_events, integers), durability, kill (killed_after_ms >= kill_after_ms and inside
the drill's own time span), writer_status (killed by SIGKILL), recovery_status (recover exit 0, and
ready exit 0 with a ready_cmd), recorded_targets (max_rto_seconds / max_rpo_events the drill used: a
pass must meet them), runs (repeat, runs_passed, worst_run and every run_<i>_* agree: the pass
count, the maxima, the worst run reported in the ten keys, result=pass only when every run passed).
Duplicate keys and lines that are not key=value are errors (file:line).

Under the original's command name (verify_wal_recovery_evidence, `make install-compat`)
--allow-legacy and --allow-dry-run are on by default; each acceptance is a warning on stderr.

EXIT STATUS here: 0 verified; 1 a threshold is breached, result=fail, the writer was not killed or
dry-run evidence; 2 malformed or self-contradicting evidence, another drill's evidence, missing
provenance, unreadable file or bad usage.

EXAMPLE:
  wal-verify --evidence-file docs/results/wal_recovery_result.env --max-rto-seconds 10 --max-rpo-events 0
  wal-drill --execute --output-file - | wal-verify --evidence-file - --format json

";

/// The original's command name; under it legacy and dry-run evidence are accepted by default.
pub const ORIGINAL_NAME: &str = "verify_wal_recovery_evidence";

/// The keys wal-drill writes after the ten original ones (always).
pub const DRILL_KEYS: [&str; 17] = [
    "events_acked",
    "events_recovered",
    "torn_tail_bytes",
    "durability",
    "writer_cmd",
    "recover_cmd",
    "ready_cmd",
    "kill_after_ms",
    "killed_after_ms",
    "writer_status",
    "recovery_status",
    "max_rto_seconds",
    "max_rpo_events",
    "repeat",
    "runs_passed",
    "worst_run",
    "notes",
];

/// Per-run keys (`run_<i>_<suffix>`), written when `repeat` > 1.
pub const RUN_KEYS: [&str; 7] = [
    "result",
    "kill_after_ms",
    "rto_seconds",
    "rpo_events",
    "events_acked",
    "events_recovered",
    "torn_tail_bytes",
];

/// Verify WAL recovery evidence (`wal_recovery_result.env`).
#[derive(Debug, Parser)]
#[command(name = "wal-verify", version, after_help = format!("{AFTER_HELP}{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// Evidence file, format and dry-run acceptance.
    #[command(flatten)]
    pub args: VerifyArgs,
    /// RTO target, seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    pub max_rto_seconds: f64,
    /// RPO target, acknowledged events lost.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_rpo_events: u64,
}

fn non_empty<'a>(doc: &'a EnvDoc, key: &str) -> Option<&'a str> {
    doc.get(key).filter(|v| !v.is_empty())
}

/// Check `doc` against the thresholds and return the verdict.
#[must_use]
pub fn check(doc: &EnvDoc, max_rto: f64, max_rpo: u64, args: &VerifyArgs) -> Verdict {
    let mut v = Verdict::new(doc.source());
    if !v.kind(doc, &WAL) {
        return v;
    }
    let prov = v.provenance(doc, &WAL, args);
    v.require_keys(doc, &wal_core::EVIDENCE_KEYS);

    let d = v.duration_agrees(
        doc,
        "failure_start_utc",
        "recovery_complete_utc",
        "rto_seconds",
    );
    let times: Vec<(String, i64)> = [
        ("failure_start_utc", d.start_ns),
        ("recovery_complete_utc", d.end_ns),
    ]
    .into_iter()
    .filter_map(|(k, t)| Some((k.to_string(), t?)))
    .collect();
    v.times_within(&prov, &times);
    let rpo = v.uint(doc, "rpo_events");

    let result = non_empty(doc, "result").map(str::to_ascii_lowercase);
    match result.as_deref() {
        Some("pass") => v.pass("result", "result=pass"),
        Some("fail") => v.breach("result", "result=fail: the drill failed"),
        Some(other) => v.malformed(
            "result",
            format!(
                "line {}: result must be pass or fail, found {other:?}",
                doc.line_of("result")
            ),
        ),
        None => {}
    }
    let pass = result.as_deref() == Some("pass");

    v.duration_threshold(
        "rto_threshold",
        "rto_seconds",
        "recovery_complete_utc-failure_start_utc",
        &d,
        max_rto,
    );
    if let Some(rpo) = rpo {
        if rpo <= max_rpo {
            v.pass("rpo_threshold", format!("rpo_events={rpo} <= {max_rpo}"));
        } else {
            v.breach(
                "rpo_threshold",
                format!("rpo_events threshold exceeded: actual={rpo} max={max_rpo}"),
            );
        }
    }
    v.dry_run_gate(prov.dry_run == Some(true), "provenance_dry_run=1", args);
    if prov.strict() {
        let known = matches!(result.as_deref(), Some("pass" | "fail"));
        drill_keys(&mut v, doc, &prov, &d, rpo, pass, known);
    }
    v
}

/// The keys only wal-drill's evidence has, each checked against the others.
fn drill_keys(
    v: &mut Verdict,
    doc: &EnvDoc,
    prov: &Prov,
    d: &Durations,
    rpo: Option<u64>,
    pass: bool,
    result_known: bool,
) {
    if !v.require_present(doc, "drill_keys", &DRILL_KEYS) {
        return;
    }
    // Events: what recovery kept against what the writer acknowledged.
    let acked = v.uint(doc, "events_acked");
    let recovered = v.uint(doc, "events_recovered");
    let torn = v.uint(doc, "torn_tail_bytes");
    if let (Some(acked), Some(recovered), Some(rpo), Some(_)) = (acked, recovered, rpo, torn) {
        v.consistent(
            "events",
            rpo > acked,
            format!("rpo_events={rpo} exceeds events_acked={acked}: more acknowledged events lost than acknowledged"),
        );
        v.consistent(
            "events",
            recovered < acked - rpo.min(acked),
            format!(
                "events_recovered={recovered} is below events_acked - rpo_events = {}: the lost events are not all counted in rpo_events",
                acked - rpo.min(acked)
            ),
        );
        v.pass_unless_failed(
            "events",
            format!("{acked} acked, {recovered} recovered, {rpo} lost"),
        );
    }
    if v.one_of(doc, "durability", &["fsync", "batch", "none"])
        .is_some()
    {
        v.pass(
            "durability",
            format!("durability={}", doc.get("durability").unwrap_or_default()),
        );
    }
    for k in ["writer_cmd", "recover_cmd", "ready_cmd"] {
        if doc.get(k).is_some_and(str::is_empty) {
            v.malformed(
                "commands",
                format!("{k} is empty (wal-drill writes the command, or none)"),
            );
        }
    }
    v.pass_unless_failed("commands", "writer, recover and ready commands recorded");

    // The kill: planned moment, real moment, inside the drill's own time span.
    let planned = v.uint(doc, "kill_after_ms");
    let killed = v.uint(doc, "killed_after_ms");
    if let (Some(planned), Some(killed)) = (planned, killed) {
        v.consistent(
            "kill",
            killed < planned,
            format!("killed_after_ms={killed} is before the planned kill_after_ms={planned}: wal-drill kills at or after the planned moment"),
        );
        if let (Some((started, _)), Some(failure)) = (prov.window, d.start_ns)
            && failure >= started
        {
            // The writer started after the drill did, and was killed `killed` ms after its start.
            let span_ms = (failure - started) / 1_000_000 + 1;
            v.consistent(
                "kill",
                i64::try_from(killed).unwrap_or(i64::MAX) > span_ms,
                format!(
                    "killed_after_ms={killed} is longer than the drill had run when the writer was killed ({span_ms} ms from provenance_started_utc to failure_start_utc)"
                ),
            );
        }
        v.pass_unless_failed(
            "kill",
            format!("planned {planned} ms, killed after {killed} ms"),
        );
    }
    match doc.get("writer_status").unwrap_or_default() {
        "killed by SIGKILL" => v.pass("writer_status", "killed by SIGKILL"),
        s if s.starts_with("killed by signal ") || s.starts_with("exit ") || s.starts_with("unknown") => v.breach(
            "writer_status",
            format!("writer_status={s:?}: the writer did not die of the drill's SIGKILL, so nothing crashed it"),
        ),
        s => v.malformed(
            "writer_status",
            format!("line {}: writer_status must be \"killed by SIGKILL\" (or how the writer ended), found {s:?}", doc.line_of("writer_status")),
        ),
    }
    let recovery = doc.get("recovery_status").unwrap_or_default();
    let ready = doc.get("ready_cmd").unwrap_or_default();
    let recovered_ok = recovery == "recover exit 0"
        || (ready != "none" && recovery == "recover exit 0; ready exit 0");
    let ready_without_cmd = ready == "none" && recovery.contains("; ready ");
    if recovery.starts_with("recover ") {
        v.consistent(
            "recovery_status",
            pass && !recovered_ok && !ready_without_cmd,
            format!(
                "result=pass but recovery_status={recovery:?}: recovery{} did not exit 0",
                if ready == "none" { "" } else { " or readiness" }
            ),
        );
        v.consistent(
            "recovery_status",
            ready_without_cmd,
            format!("recovery_status={recovery:?} names a readiness check but ready_cmd=none"),
        );
        v.pass_unless_failed("recovery_status", format!("recovery_status={recovery}"));
    } else {
        v.malformed(
            "recovery_status",
            format!(
                "line {}: recovery_status must start with \"recover \", found {recovery:?}",
                doc.line_of("recovery_status")
            ),
        );
    }

    // The targets the drill judged by: a pass must meet them.
    let rec_rto = non_empty(doc, "max_rto_seconds").map(|t| (t, parse_non_negative_f64(t)));
    let rec_rpo = v.uint(doc, "max_rpo_events");
    match rec_rto {
        Some((_, Some(m))) => {
            if let (true, Some(rto)) = (pass, d.stated) {
                v.consistent(
                    "recorded_targets",
                    rto > m || d.span.is_some_and(|s| s > m),
                    format!("result=pass but rto_seconds={rto} exceeds the drill's own max_rto_seconds={m}"),
                );
            }
        }
        Some((t, None)) => v.malformed(
            "recorded_targets",
            format!("max_rto_seconds must be a finite number >= 0, found {t:?}"),
        ),
        None => v.malformed("recorded_targets", "max_rto_seconds is empty"),
    }
    if let (true, Some(m), Some(rpo)) = (pass, rec_rpo, rpo) {
        v.consistent(
            "recorded_targets",
            rpo > m,
            format!("result=pass but rpo_events={rpo} exceeds the drill's own max_rpo_events={m}"),
        );
    }
    v.pass_unless_failed("recorded_targets", "a pass meets the drill's own targets");

    runs(v, doc, pass, result_known);
}

struct Run {
    index: u64,
    pass: bool,
    rto: f64,
    rpo: u64,
}

/// `repeat`, `runs_passed`, `worst_run`, the maxima and every `run_<i>_*` agree with each other and
/// with the ten keys.
fn runs(v: &mut Verdict, doc: &EnvDoc, pass: bool, result_known: bool) {
    let (Some(repeat), Some(passed), Some(worst)) = (
        v.uint(doc, "repeat"),
        v.uint(doc, "runs_passed"),
        v.uint(doc, "worst_run"),
    ) else {
        return;
    };
    let c = "runs";
    if repeat == 0 || repeat > 100_000 {
        v.malformed(
            c,
            format!("repeat={repeat}: wal-drill makes 1 or more runs"),
        );
        return;
    }
    v.consistent(
        c,
        passed > repeat,
        format!("runs_passed={passed} exceeds repeat={repeat}"),
    );
    v.consistent(
        c,
        worst == 0 || worst > repeat,
        format!("worst_run={worst} is not a run of 1..={repeat}"),
    );
    v.consistent(
        c,
        result_known && pass != (passed == repeat),
        format!(
            "result={} but runs_passed={passed} of repeat={repeat}",
            if pass { "pass" } else { "fail" }
        ),
    );
    // Per-run keys: present exactly for 1..=repeat when repeat > 1.
    let stray: Vec<&str> = doc
        .entries()
        .iter()
        .filter(|e| {
            e.key
                .strip_prefix("run_")
                .and_then(|r| r.split_once('_'))
                .and_then(|(n, _)| parse_u64(n))
                .is_some_and(|n| repeat == 1 || n == 0 || n > repeat)
        })
        .map(|e| e.key.as_str())
        .collect();
    v.consistent(
        c,
        !stray.is_empty(),
        format!("run keys beyond repeat={repeat}: {}", stray.join(", ")),
    );
    if repeat == 1 {
        v.consistent(
            c,
            worst != 1,
            format!("worst_run={worst} with a single run"),
        );
        for k in ["rto_seconds_max", "rpo_events_max"] {
            v.consistent(
                c,
                doc.get(k).is_some(),
                format!("{k} with a single run (wal-drill writes it only with repeat > 1)"),
            );
        }
        v.pass_unless_failed(c, "one run");
        return;
    }
    let mut all = Vec::new();
    for i in 1..=repeat {
        let k = |s: &str| format!("run_{i}_{s}");
        let missing: Vec<String> = RUN_KEYS
            .iter()
            .map(|s| k(s))
            .filter(|key| doc.get(key).is_none())
            .collect();
        if !missing.is_empty() {
            v.malformed(c, format!("run {i} lacks {}", missing.join(", ")));
            continue;
        }
        let result = v
            .one_of(doc, &k("result"), &["pass", "fail"])
            .map(|r| r == "pass");
        let rto = v.non_negative(doc, &k("rto_seconds"));
        let (r_rpo, r_acked, r_rec, r_torn, r_kill) = (
            v.uint(doc, &k("rpo_events")),
            v.uint(doc, &k("events_acked")),
            v.uint(doc, &k("events_recovered")),
            v.uint(doc, &k("torn_tail_bytes")),
            v.uint(doc, &k("kill_after_ms")),
        );
        let (Some(rp), Some(rt), Some(rr), Some(ra), Some(rc), Some(_), Some(_)) =
            (result, rto, r_rpo, r_acked, r_rec, r_torn, r_kill)
        else {
            continue;
        };
        v.consistent(
            c,
            rr > ra,
            format!("run {i}: rpo_events={rr} exceeds events_acked={ra}"),
        );
        v.consistent(
            c,
            rc < ra - rr.min(ra),
            format!(
                "run {i}: events_recovered={rc} is below events_acked - rpo_events = {}",
                ra - rr.min(ra)
            ),
        );
        if i == worst {
            for key in [
                "rto_seconds",
                "rpo_events",
                "events_acked",
                "events_recovered",
                "torn_tail_bytes",
                "kill_after_ms",
            ] {
                if let (Some(h), Some(r)) = (doc.get(key), doc.get(&k(key))) {
                    v.consistent(
                        c,
                        h != r,
                        format!(
                            "worst_run={worst} but {key}={h} differs from run_{worst}_{key}={r}"
                        ),
                    );
                }
            }
        }
        all.push(Run {
            index: i,
            pass: rp,
            rto: rt,
            rpo: rr,
        });
    }
    if all.len() as u64 != repeat {
        return;
    }
    let n_pass = all.iter().filter(|r| r.pass).count() as u64;
    v.consistent(
        c,
        n_pass != passed,
        format!("runs_passed={passed} but {n_pass} run_<i>_result are pass"),
    );
    // The worst run: a failed one first, then the largest rpo, then the largest rto; the earliest on a tie.
    let key = |r: &Run| (!r.pass, r.rpo, r.rto);
    if let Some(w) = all.iter().reduce(|a, b| {
        if key(b).partial_cmp(&key(a)) == Some(std::cmp::Ordering::Greater) {
            b
        } else {
            a
        }
    }) {
        let claimed = all.iter().find(|r| r.index == worst);
        if let Some(cl) = claimed
            && key(cl).partial_cmp(&key(w)) == Some(std::cmp::Ordering::Less)
        {
            v.malformed(c, format!("worst_run={worst} is not the worst run: run {} is worse (failed first, then rpo, then rto)", w.index));
        }
    }
    let max_rto = all.iter().map(|r| r.rto).fold(0.0_f64, f64::max);
    let max_rpo = all.iter().map(|r| r.rpo).max().unwrap_or(0);
    match (
        non_empty(doc, "rto_seconds_max").and_then(parse_non_negative_f64),
        v.uint(doc, "rpo_events_max"),
    ) {
        (Some(m), Some(p)) => {
            v.consistent(
                c,
                (m - max_rto).abs() > 1e-9,
                format!("rto_seconds_max={m} but the largest run_<i>_rto_seconds is {max_rto}"),
            );
            v.consistent(
                c,
                p != max_rpo,
                format!("rpo_events_max={p} but the largest run_<i>_rpo_events is {max_rpo}"),
            );
        }
        _ => v.malformed(
            c,
            "rto_seconds_max and rpo_events_max must be numbers with repeat > 1",
        ),
    }
    v.pass_unless_failed(
        c,
        format!("{passed} of {repeat} runs passed; worst run {worst}"),
    );
}

/// Run the tool.
pub fn run(mut cli: Cli) -> Result<Exit> {
    cli.args.apply_original_name(ORIGINAL_NAME);
    if !cli.max_rto_seconds.is_finite() || cli.max_rto_seconds < 0.0 {
        return Err(EvidenceError::usage(format!(
            "--max-rto-seconds must be a finite number >= 0, found {}",
            cli.max_rto_seconds
        )));
    }
    let doc = read_env(&cli.args.evidence_file)?;
    let verdict = check(&doc, cli.max_rto_seconds, cli.max_rpo_events, &cli.args);
    verdict.emit(cli.args.format)
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
