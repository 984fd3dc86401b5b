//! `rollout-verify`: checks `rollout_result.env`, the counterpart of the original's
//! `verify_rollout_evidence`. The original's checks (the five head keys, `ROLLOUT_TOTAL_STEPS` an
//! integer > 0, each step's name, status and duration, `--require-fault-step`), plus every key
//! rollout-orchestrator writes checked against the others and the provenance block required (the
//! original's hand-typed shape only with `--allow-legacy`).

use std::collections::BTreeSet;

use clap::{CommandFactory as _, Parser};
use deploy_core::rollout::HEAD_KEYS;
use evidence_core::cli::EXIT_STATUS_HELP;
use evidence_core::dotenv::{EnvDoc, parse_bool, parse_non_negative_f64, parse_u64};
use evidence_core::time::parse_utc;
use evidence_core::verify::{Prov, ROLLOUT, Verdict, VerifyArgs, read_env};
use evidence_core::{Exit, Result};

/// The original's command name; under it legacy and dry-run evidence are accepted by default.
pub const ORIGINAL_NAME: &str = "verify_rollout_evidence";

/// Step names in the fixed order rollout-orchestrator runs them.
pub const STEP_ORDER: [&str; 6] = [
    "precheck",
    "deploy",
    "health_gate",
    "fault_injection",
    "rollback",
    "verify",
];

/// `ROLLOUT_RESULT` values.
pub const RESULTS: [&str; 4] = ["success", "failed", "interrupted", "dry_run"];

/// The extras rollout-orchestrator writes after the original's keys.
pub const EXTRA_KEYS: [&str; 15] = [
    "ROLLOUT_RESULT",
    "ROLLOUT_INTERRUPTED",
    "ROLLOUT_CONFIG_FORM",
    "ROLLOUT_DEPLOY_TARGET",
    "ROLLOUT_INJECT_FAULT",
    "ROLLOUT_RELEASE_BEFORE",
    "ROLLOUT_RELEASE_AFTER",
    "ROLLOUT_ROLLBACK_RAN",
    "ROLLOUT_ROLLBACK_SECONDS",
    "ROLLOUT_FAILURE_REASON",
    "ROLLOUT_FAILED_OUTPUT_TAIL",
    "ROLLOUT_DRILL_ID",
    "ROLLOUT_RELEASE_CHECK",
    "ROLLOUT_SESSION_GUARD",
    "ROLLOUT_SESSION_GUARD_REASON",
];

/// Per-step extras (`STEP_<n>_<suffix>`).
pub const STEP_EXTRAS: [&str; 6] = [
    "COMMAND",
    "STARTED_UTC",
    "EXIT_CODE",
    "DETAIL",
    "TIMEOUT_SECONDS",
    "HEALTH_ATTEMPTS",
];

const AFTER_HELP: &str = "\
CHECKS (names as in --format json): evidence_kind (names the verifier another drill's evidence
belongs to); provenance (complete, names rollout-orchestrator, ordered, not in the future; without
it the original's hand-typed shape is accepted only with --allow-legacy, and the verdict line says
nothing proves the rollout was executed); required_keys (the five head keys); dry_run
(ROLLOUT_DRY_RUN and PROVENANCE_DRY_RUN agree; rejected unless --allow-dry-run); success
(ROLLOUT_SUCCESS a boolean, true); total_steps; step_count (no step beyond the count); steps (each
has name, status ok/simulated_ok/failed, integer duration; failed is a breach; simulated_ok only in
a dry run); step_order (known names, each once, in the fixed order precheck, deploy, health_gate,
fault_injection, rollback, verify); failed_step (empty on success, else the first failed step);
fault_step (--require-fault-step); and for the orchestrator's own evidence every extra key:
drill_keys (present), result (ROLLOUT_RESULT agrees with SUCCESS, DRY_RUN and INTERRUPTED),
interrupted (a boolean; true is a breach), fault_rollback (a fault_injection step needs
ROLLOUT_INJECT_FAULT=true and a rollback step after it), rollback (ROLLOUT_ROLLBACK_RAN agrees with
the steps; ROLLOUT_ROLLBACK_SECONDS a number only when a rollback ran), failure_fields (no failure
reason or failed-output tail on a success), release (on an executed success the releases before and
after are known and, after a rollback, equal), exit_codes (ok has exit 0, simulated_ok none, failed
not 0 unless a health check failed), step_times (UTC, in order, each after the previous one ended),
times_within_run (inside the provenance window, 2 s skew), config_form, drill_id, release_check
(ROLLOUT_RELEASE_CHECK=command, or none only with --allow-no-release-check: a breach otherwise),
session_guard (not_applicable, outside_session or forced with a reason; not_checked only in a dry
run).

Under the original's command name (verify_rollout_evidence) --allow-legacy and --allow-dry-run are on
by default (SOP 6 verifies a dry run); each acceptance is a warning on stderr.

EXAMPLE:
  rollout-orchestrator --env-config configs/deploy/environments/sim.yaml --inject-fault --execute && \\
    rollout-verify --evidence-file docs/results/rollout_result.env --require-fault-step

";

/// Verify rollout evidence (rollout_result.env).
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// Common verifier flags.
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Require a step named fault_injection.
    #[arg(long)]
    pub require_fault_step: bool,
    /// Accept an executed rollout whose orchestrator was told not to check the releases
    /// (`--no-release-check`, `ROLLOUT_RELEASE_CHECK=none`); rejected by default: nothing then shows
    /// which release runs.
    #[arg(long)]
    pub allow_no_release_check: bool,
}

const STATUSES: [&str; 3] = ["ok", "simulated_ok", "failed"];

/// Strict `0`/`1` (the orchestrator) or, in the original's hand-typed shape, any boolean token.
fn flag(v: &mut Verdict, doc: &EnvDoc, key: &str, strict: bool, tokens: [&str; 2]) -> Option<bool> {
    let raw = doc.get(key)?;
    let b = if strict {
        if raw == tokens[0] {
            Some(false)
        } else if raw == tokens[1] {
            Some(true)
        } else {
            None
        }
    } else {
        parse_bool(raw)
    };
    if b.is_none() {
        v.malformed(
            key,
            format!(
                "line {}: {key} must be {} or {}, found {raw:?}",
                doc.line_of(key),
                tokens[0],
                tokens[1]
            ),
        );
    }
    b
}

struct Step {
    n: u64,
    name: String,
    status: String,
    duration_ms: Option<u64>,
}

/// Check `doc` and return the verdict.
#[must_use]
pub fn check(doc: &EnvDoc, require_fault_step: bool, args: &VerifyArgs) -> Verdict {
    check_with(doc, require_fault_step, false, args)
}

/// [`check`], with `--allow-no-release-check`.
#[must_use]
#[expect(
    clippy::too_many_lines,
    reason = "one check after the other, in the documented order"
)]
pub fn check_with(
    doc: &EnvDoc,
    require_fault_step: bool,
    allow_no_release_check: bool,
    args: &VerifyArgs,
) -> Verdict {
    let mut v = Verdict::new(doc.source());
    if !v.kind(doc, &ROLLOUT) {
        return v;
    }
    let prov = v.provenance(doc, &ROLLOUT, args);
    let strict = prov.strict();
    let missing: Vec<&str> = HEAD_KEYS
        .iter()
        .copied()
        .filter(|k| doc.get(k).is_none())
        .collect();
    if !missing.is_empty() {
        v.malformed(
            "required_keys",
            format!("missing key: {}", missing.join(", ")),
        );
        return v;
    }
    v.pass("required_keys", "the five ROLLOUT_ head keys are present");

    let dry = flag(&mut v, doc, "ROLLOUT_DRY_RUN", strict, ["0", "1"]);
    if let (Some(p), Some(d)) = (prov.dry_run, dry)
        && p != d
    {
        v.malformed(
            "dry_run",
            format!(
                "PROVENANCE_DRY_RUN={} disagrees with ROLLOUT_DRY_RUN={}",
                u8::from(p),
                u8::from(d)
            ),
        );
    } else if let Some(d) = dry {
        v.dry_run_gate(d, "ROLLOUT_DRY_RUN=1", args);
    }
    let dry = dry.unwrap_or(false);
    let allow = args.dry_run_allowed();

    let success = flag(&mut v, doc, "ROLLOUT_SUCCESS", strict, ["false", "true"]);
    let failed_step = doc.get("ROLLOUT_FAILED_STEP").unwrap_or_default();
    match success {
        Some(true) => v.pass("success", "ROLLOUT_SUCCESS=true"),
        Some(false) => v.breach(
            "success",
            format!("ROLLOUT_SUCCESS=false (failed step: {failed_step:?})"),
        ),
        None => {}
    }

    let total_raw = doc.get("ROLLOUT_TOTAL_STEPS").unwrap_or_default();
    let total = match parse_u64(total_raw) {
        Some(n) if n > 0 && n <= 1000 => n,
        Some(_) => {
            v.malformed(
                "total_steps",
                "ROLLOUT_TOTAL_STEPS must be > 0 (and at most 1000)",
            );
            return v;
        }
        None => {
            v.malformed(
                "total_steps",
                format!("ROLLOUT_TOTAL_STEPS must be integer, found {total_raw:?}"),
            );
            return v;
        }
    };
    let listed: BTreeSet<u64> = doc
        .entries()
        .iter()
        .filter_map(|e| {
            let rest = e.key.strip_prefix("STEP_")?;
            let (n, _) = rest.split_once('_')?;
            parse_u64(n)
        })
        .collect();
    if let Some(extra) = listed.iter().find(|&&n| n == 0 || n > total) {
        v.malformed(
            "step_count",
            format!("ROLLOUT_TOTAL_STEPS={total} but step {extra} is listed"),
        );
    } else {
        v.pass("step_count", format!("{total} steps listed"));
    }

    let mut steps = Vec::new();
    for i in 1..=total {
        let (kn, ks, kd) = (
            format!("STEP_{i}_NAME"),
            format!("STEP_{i}_STATUS"),
            format!("STEP_{i}_DURATION_MS"),
        );
        let (Some(name), Some(status), Some(dur)) = (doc.get(&kn), doc.get(&ks), doc.get(&kd))
        else {
            v.malformed("steps", format!("step {i} lacks {kn}, {ks} or {kd}"));
            continue;
        };
        if !STATUSES.contains(&status) {
            v.malformed("steps", format!("step {i} has invalid status: {status}"));
        } else if status == "failed" {
            v.breach(
                "steps",
                format!(
                    "step {i} ({name}) failed{}",
                    doc.get(&format!("STEP_{i}_DETAIL"))
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default()
                ),
            );
        } else if status == "simulated_ok" && !dry {
            v.breach("steps", format!("step {i} ({name}) is simulated_ok in an executed rollout (ROLLOUT_DRY_RUN=0): nothing ran"));
        } else if status == "simulated_ok" && !allow {
            v.breach("steps", format!("step {i} ({name}) is simulated_ok: a simulated step proves nothing (use --allow-dry-run)"));
        } else if status == "ok" && dry {
            v.malformed("steps", format!("step {i} ({name}) is ok in a dry run (ROLLOUT_DRY_RUN=1): a dry run executes nothing"));
        }
        let duration_ms = parse_u64(dur);
        if duration_ms.is_none() {
            v.malformed("steps", format!("step {i} has invalid duration: {dur}"));
        }
        steps.push(Step {
            n: i,
            name: name.to_string(),
            status: status.to_string(),
            duration_ms,
        });
    }
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    v.pass_unless_failed("steps", format!("steps: {}", names.join(", ")));

    // Names known, each once, in the fixed order.
    let mut last: Option<(usize, &str)> = None;
    for s in &steps {
        match STEP_ORDER.iter().position(|n| *n == s.name) {
            None => v.malformed(
                "step_order",
                format!(
                    "step {} has an unknown name {:?} (known: {})",
                    s.n,
                    s.name,
                    STEP_ORDER.join(", ")
                ),
            ),
            Some(p) => {
                if let Some((lp, ln)) = last
                    && p <= lp
                {
                    v.malformed(
                        "step_order",
                        format!(
                            "step {} ({}) after {ln}: the order is {}",
                            s.n,
                            s.name,
                            STEP_ORDER.join(", ")
                        ),
                    );
                }
                last = Some((p, STEP_ORDER[p]));
            }
        }
    }
    v.pass_unless_failed("step_order", "steps in the fixed order");

    let first_failed = steps.iter().find(|s| s.status == "failed");
    match (success, first_failed) {
        (Some(true), _) if !failed_step.is_empty() => v.malformed(
            "failed_step",
            format!("ROLLOUT_SUCCESS=true but ROLLOUT_FAILED_STEP={failed_step}"),
        ),
        (Some(true), Some(f)) => v.malformed(
            "failed_step",
            format!("ROLLOUT_SUCCESS=true but step {} ({}) failed", f.n, f.name),
        ),
        (_, Some(f)) if failed_step != f.name => v.malformed(
            "failed_step",
            format!(
                "ROLLOUT_FAILED_STEP={failed_step:?} but the first failed step is {} ({})",
                f.n, f.name
            ),
        ),
        (_, None) if !failed_step.is_empty() => v.malformed(
            "failed_step",
            format!("ROLLOUT_FAILED_STEP={failed_step} but no step failed"),
        ),
        _ => v.pass(
            "failed_step",
            format!("ROLLOUT_FAILED_STEP={failed_step:?}"),
        ),
    }

    if require_fault_step {
        let has = names.contains(&"fault_injection");
        v.expect(
            "fault_step",
            has,
            if has {
                "fault_injection step present"
            } else {
                "fault_injection step is required but not found"
            },
        );
    }

    if strict {
        drill_keys(&mut v, doc, &prov, &steps, success, dry);
        release_check(&mut v, doc, dry, success, allow_no_release_check);
    }
    v
}

/// The orchestrator's extras, each checked against the others.
#[expect(clippy::too_many_lines, reason = "one check after the other")]
fn drill_keys(
    v: &mut Verdict,
    doc: &EnvDoc,
    prov: &Prov,
    steps: &[Step],
    success: Option<bool>,
    dry: bool,
) {
    let mut keys: Vec<String> = EXTRA_KEYS.iter().map(|k| (*k).to_string()).collect();
    for s in steps {
        keys.extend(STEP_EXTRAS.iter().map(|x| format!("STEP_{}_{x}", s.n)));
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    if !v.require_present(doc, "drill_keys", &refs) {
        return;
    }
    let get = |k: &str| doc.get(k).unwrap_or_default();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();

    // ROLLOUT_RESULT against SUCCESS, DRY_RUN and INTERRUPTED.
    let interrupted = v.boolean(doc, "ROLLOUT_INTERRUPTED");
    if get("ROLLOUT_INTERRUPTED").is_empty() {
        v.malformed(
            "interrupted",
            "ROLLOUT_INTERRUPTED is empty: the orchestrator writes true or false",
        );
    }
    if interrupted == Some(true) {
        v.breach(
            "interrupted",
            "ROLLOUT_INTERRUPTED=true: the rollout was interrupted",
        );
    } else if !v.failed("ROLLOUT_INTERRUPTED") {
        v.pass_unless_failed("interrupted", "not interrupted");
    }
    if let Some(result) = v.one_of(doc, "ROLLOUT_RESULT", &RESULTS)
        && success.is_some()
    {
        let expected = if dry {
            "dry_run"
        } else if interrupted == Some(true) {
            "interrupted"
        } else if success == Some(true) {
            "success"
        } else {
            "failed"
        };
        v.consistent(
            "result",
            result != expected,
            format!(
                "ROLLOUT_RESULT={result} contradicts ROLLOUT_SUCCESS={} ROLLOUT_DRY_RUN={} ROLLOUT_INTERRUPTED={} (expected {expected})",
                get("ROLLOUT_SUCCESS"),
                get("ROLLOUT_DRY_RUN"),
                get("ROLLOUT_INTERRUPTED")
            ),
        );
        v.consistent(
            "result",
            result == "dry_run" && success != Some(true),
            "ROLLOUT_RESULT=dry_run with ROLLOUT_SUCCESS=false",
        );
        v.pass_unless_failed("result", format!("ROLLOUT_RESULT={result}"));
    }

    if let Some(form) = v.one_of(doc, "ROLLOUT_CONFIG_FORM", &["flat", "rich"]) {
        v.consistent(
            "config_form",
            form == "flat" && names.contains(&"health_gate"),
            "a health_gate step in a flat config (only the rich form has a gate)",
        );
        v.pass_unless_failed("config_form", format!("ROLLOUT_CONFIG_FORM={form}"));
    }

    // The fault and the rollback.
    let inject = v.boolean(doc, "ROLLOUT_INJECT_FAULT");
    let fault_at = names.iter().position(|n| *n == "fault_injection");
    let rollback_at = names.iter().position(|n| *n == "rollback");
    if fault_at.is_some() {
        v.consistent(
            "fault_rollback",
            inject != Some(true),
            "a fault_injection step but ROLLOUT_INJECT_FAULT is not true",
        );
        v.consistent(
            "fault_rollback",
            rollback_at.is_none() && interrupted != Some(true),
            "a fault was injected but no rollback step follows it",
        );
    } else if inject == Some(true) && success == Some(true) {
        v.malformed(
            "fault_rollback",
            "ROLLOUT_INJECT_FAULT=true and ROLLOUT_SUCCESS=true but no fault_injection step ran",
        );
    }
    v.pass_unless_failed("fault_rollback", "fault and rollback steps agree");

    let ran = v.boolean(doc, "ROLLOUT_ROLLBACK_RAN");
    let rb_secs_raw = get("ROLLOUT_ROLLBACK_SECONDS");
    let rb_secs = if rb_secs_raw.is_empty() {
        None
    } else {
        let x = parse_non_negative_f64(rb_secs_raw);
        if x.is_none() {
            v.malformed(
                "rollback",
                format!(
                    "ROLLOUT_ROLLBACK_SECONDS must be a finite number >= 0, found {rb_secs_raw:?}"
                ),
            );
        }
        x
    };
    let rollback_step = rollback_at.map(|i| &steps[i]);
    if let Some(r) = ran {
        let real = rollback_step.is_some_and(|s| s.status != "simulated_ok");
        v.consistent(
            "rollback",
            r != real,
            format!(
                "ROLLOUT_ROLLBACK_RAN={r} but the steps {} an executed rollback",
                if real { "show" } else { "do not show" }
            ),
        );
    }
    if rb_secs.is_some() && rollback_step.is_none_or(|s| s.status != "ok") {
        v.malformed(
            "rollback",
            "ROLLOUT_ROLLBACK_SECONDS is set but no rollback step succeeded",
        );
    }
    if !dry && success == Some(true) && rollback_step.is_some() && rb_secs_raw.is_empty() {
        v.malformed(
            "rollback",
            "a successful rollout with a rollback step but ROLLOUT_ROLLBACK_SECONDS is empty",
        );
    }
    v.pass_unless_failed(
        "rollback",
        format!("ROLLOUT_ROLLBACK_RAN={}", get("ROLLOUT_ROLLBACK_RAN")),
    );

    if success == Some(true) {
        for k in ["ROLLOUT_FAILURE_REASON", "ROLLOUT_FAILED_OUTPUT_TAIL"] {
            v.consistent(
                "failure_fields",
                !get(k).is_empty(),
                format!("ROLLOUT_SUCCESS=true but {k} is set: {:?}", get(k)),
            );
        }
    } else if success == Some(false) && !dry && get("ROLLOUT_FAILURE_REASON").is_empty() {
        v.malformed(
            "failure_fields",
            "ROLLOUT_SUCCESS=false but ROLLOUT_FAILURE_REASON is empty",
        );
    }
    v.pass_unless_failed("failure_fields", "failure fields agree with the outcome");

    // Which release runs: known on an executed success, and restored by the rollback.
    let (before, after) = (get("ROLLOUT_RELEASE_BEFORE"), get("ROLLOUT_RELEASE_AFTER"));
    let unknown = |r: &str| r.is_empty() || r == "unknown";
    if !dry && success == Some(true) {
        v.consistent(
            "release",
            unknown(before) || unknown(after),
            format!("ROLLOUT_SUCCESS=true but the releases are not known (before {before:?}, after {after:?}): nothing shows which release runs"),
        );
        v.consistent(
            "release",
            rollback_step.is_some() && before != after,
            format!("release before {before}, after the rollback {after}: the previous release was not restored"),
        );
    }
    v.pass_unless_failed("release", format!("before {before:?}, after {after:?}"));

    // Exit codes against statuses; times inside the run and in order.
    let mut times = Vec::new();
    let mut prev_end: Option<(u64, i64)> = None;
    for s in steps {
        let code = get(&format!("STEP_{}_EXIT_CODE", s.n));
        let attempts = v.uint(doc, &format!("STEP_{}_HEALTH_ATTEMPTS", s.n));
        let gate = s.name == "health_gate";
        let bad = match s.status.as_str() {
            "ok" => !(code == "0" || (gate && code.is_empty())),
            "simulated_ok" => !code.is_empty(),
            "failed" => code == "0" && attempts.unwrap_or(0) == 0,
            _ => false,
        };
        if !code.is_empty() && code.parse::<i32>().is_err() {
            v.malformed(
                "exit_codes",
                format!("STEP_{}_EXIT_CODE={code:?} is not an exit code", s.n),
            );
        } else {
            v.consistent(
                "exit_codes",
                bad,
                format!(
                    "step {} ({}) has status {} but STEP_{}_EXIT_CODE={code:?}",
                    s.n, s.name, s.status, s.n
                ),
            );
        }
        let tk = format!("STEP_{}_TIMEOUT_SECONDS", s.n);
        if parse_non_negative_f64(get(&tk)).is_none_or(|t| t <= 0.0) {
            v.malformed(
                "steps",
                format!("{tk} must be a number > 0, found {:?}", get(&tk)),
            );
        }
        let key = format!("STEP_{}_STARTED_UTC", s.n);
        match parse_utc(get(&key)) {
            None => v.malformed(
                "step_times",
                format!(
                    "{key} must be UTC like 2026-02-11T12:00:00.000000Z, found {:?}",
                    get(&key)
                ),
            ),
            Some(t) => {
                if let Some((p, end)) = prev_end
                    && t.ns + 1_000_000 < end
                {
                    v.malformed(
                        "step_times",
                        format!(
                            "step {} starts before step {p} ended (steps run one after another)",
                            s.n
                        ),
                    );
                }
                let dur_ns = i64::try_from(s.duration_ms.unwrap_or(0)).unwrap_or(0) * 1_000_000;
                prev_end = Some((s.n, t.ns + dur_ns));
                times.push((key, t.ns));
                times.push((
                    format!("STEP_{}_STARTED_UTC + STEP_{}_DURATION_MS", s.n, s.n),
                    t.ns + dur_ns,
                ));
            }
        }
    }
    v.pass_unless_failed("exit_codes", "exit codes agree with the statuses");
    v.pass_unless_failed("step_times", "steps start one after another");
    if let (Some(secs), Some(idx)) = (rb_secs, rollback_at)
        && let Some(start) = parse_utc(get(&format!("STEP_{}_STARTED_UTC", steps[idx].n)))
    {
        #[expect(clippy::cast_possible_truncation, reason = "seconds within a run")]
        let end = start.ns + (secs * 1e9) as i64;
        times.push(("rollback start + ROLLOUT_ROLLBACK_SECONDS".to_string(), end));
    }
    v.times_within(prov, &times);
}

/// The drills pass's keys: how the releases were checked, and the session guard.
fn release_check(v: &mut Verdict, doc: &EnvDoc, dry: bool, success: Option<bool>, allow: bool) {
    let get = |k: &str| doc.get(k).unwrap_or_default();
    if get("ROLLOUT_DRILL_ID").is_empty() {
        v.malformed("drill_id", "ROLLOUT_DRILL_ID is empty");
    }
    if let Some(check) = v.one_of(doc, "ROLLOUT_RELEASE_CHECK", &["command", "none"]) {
        match (check, dry) {
            ("none", false) if allow => {
                v.pass(
                    "release_check",
                    "ROLLOUT_RELEASE_CHECK=none accepted (--allow-no-release-check)",
                );
                evidence_core::cli::warn(&format!(
                    "{}: accepted ROLLOUT_RELEASE_CHECK=none (--allow-no-release-check): nothing shows which release runs",
                    doc.source()
                ));
            }
            ("none", false) => v.breach(
                "release_check",
                "ROLLOUT_RELEASE_CHECK=none: the orchestrator ran with --no-release-check, so nothing shows which release runs (use --allow-no-release-check to accept it)",
            ),
            ("command", true) => v.malformed(
                "release_check",
                "ROLLOUT_RELEASE_CHECK=command in a dry run: a dry run runs no command",
            ),
            ("command", false) if success == Some(true) => {
                let (b, a) = (get("ROLLOUT_RELEASE_BEFORE"), get("ROLLOUT_RELEASE_AFTER"));
                v.consistent(
                    "release_check",
                    b.is_empty() || b == "unknown" || a.is_empty() || a == "unknown",
                    "ROLLOUT_RELEASE_CHECK=command but a release is unknown on a success",
                );
                v.pass_unless_failed("release_check", "ROLLOUT_RELEASE_CHECK=command");
            }
            _ => v.pass("release_check", format!("ROLLOUT_RELEASE_CHECK={check}")),
        }
    }
    let guards: &[&str] = if dry {
        &["not_checked"]
    } else {
        &["not_applicable", "outside_session", "forced"]
    };
    if v.one_of(doc, "ROLLOUT_SESSION_GUARD", guards).is_some() {
        v.consistent(
            "session_guard",
            get("ROLLOUT_SESSION_GUARD_REASON").is_empty(),
            "ROLLOUT_SESSION_GUARD_REASON is empty",
        );
        v.pass_unless_failed(
            "session_guard",
            format!("ROLLOUT_SESSION_GUARD={}", get("ROLLOUT_SESSION_GUARD")),
        );
    }
}

/// Verify.
pub fn run(mut cli: Cli) -> Result<Exit> {
    cli.verify.apply_original_name(ORIGINAL_NAME);
    let doc = read_env(&cli.verify.evidence_file)?;
    check_with(
        &doc,
        cli.require_fault_step,
        cli.allow_no_release_check,
        &cli.verify,
    )
    .emit(cli.verify.format)
}

/// The clap command (for docs and tests).
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
