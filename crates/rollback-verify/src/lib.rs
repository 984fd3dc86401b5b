//! `rollback-verify`: checks `deploy_rollback_result.env` (SOP 5), the counterpart of the original's
//! `verify_deploy_rollback_evidence`. The original's checks, plus every key rollback-drill writes
//! checked against the others, the provenance block required (the original's hand-typed shape only
//! with `--allow-legacy`), and a duration that cannot be talked down.

use clap::{CommandFactory as _, Parser};
use deploy_core::rollback::{KEYS, PLATFORMS};
use evidence_core::cli::EXIT_STATUS_HELP;
use evidence_core::dotenv::{EnvDoc, parse_bool};
use evidence_core::verify::{Durations, ROLLBACK, Verdict, VerifyArgs, read_env};
use evidence_core::{EvidenceError, Exit, Result};

/// The original's command name; under it legacy and dry-run evidence are accepted by default.
pub const ORIGINAL_NAME: &str = "verify_deploy_rollback_evidence";

/// The values of `failure_injected` rollback-drill writes, and the `failure_mode` of each.
pub const FAILURES: [(&str, &str); 2] = [
    ("new_release_fails_health_check", "health"),
    ("new_release_process_killed", "kill"),
];

/// The `result` values rollback-drill writes.
pub const RESULTS: [&str; 4] = ["pass", "fail", "interrupted", "dry_run"];

/// The extras rollback-drill writes after an executed drill.
pub const DRILL_KEYS: [&str; 24] = [
    "failure_mode",
    "run_dir",
    "baseline_ok",
    "deploy_exit",
    "new_release_was_healthy",
    "inject_exit",
    "health_check",
    "failure_detected",
    "detect_seconds",
    "detect_attempts",
    "detect_detail",
    "rollback_cmd_exit",
    "rollback_cmd_seconds",
    "restore_health_attempts",
    "restore_health_detail",
    "running_release_after",
    "running_exe_release_after",
    "stopped_after",
    "stop_requested",
    "release_check",
    "running_release_before",
    "fail_reason",
    "session_guard",
    "session_guard_reason",
];

/// The extras of a dry run.
pub const DRY_RUN_KEYS: [&str; 6] = [
    "failure_mode",
    "run_dir",
    "stop_requested",
    "release_check",
    "session_guard",
    "session_guard_reason",
];

/// `release_check` values: how the drill established the running release.
pub const RELEASE_CHECKS: [&str; 3] = ["supervisor", "command", "http_body"];

/// `fail_reason` values (empty unless `result=fail`).
pub const FAIL_REASONS: [&str; 10] = [
    "baseline_not_in_place",
    "deploy_failed",
    "new_release_never_healthy",
    "inject_failed",
    "failure_not_detected",
    "rollback_cmd_failed",
    "restore_unhealthy",
    "release_unknown",
    "wrong_release_after",
    "stop_failed",
];

/// `session_guard` values of an executed drill (`not_checked` only in a dry run).
pub const SESSION_GUARDS: [&str; 3] = ["not_applicable", "outside_session", "forced"];

const AFTER_HELP: &str = "\
CHECKS (names as in --format json): evidence_kind (names the verifier another drill's evidence
belongs to); provenance (complete, names rollback-drill, ordered, not in the future; without it the
original's hand-typed shape is accepted only with --allow-legacy, and the verdict line says nothing
proves the drill was executed); required_keys (the original twelve); platform (systemd, k8s,
local); rollback_target_differs; failure_injected (a value the drill writes, matching failure_mode);
rollback_start_utc, rollback_complete_utc, timestamps_ordered, duration_matches_timestamps (within
the coarser resolution); times_within_run (inside the provenance window, 2 s skew, injection
included); rollback_threshold (breached when rollback_seconds OR the timestamps' difference exceeds
--max-rollback-seconds); health_check_passed (true); result (pass; fail and interrupted are
breaches); dry_run (provenance_dry_run=1 and result=dry_run agree; rejected unless --allow-dry-run);
and for the drill's own evidence every extra key: drill_keys (present), booleans (baseline_ok,
new_release_was_healthy, failure_detected, stopped_after are true/false), counts (detect_attempts,
restore_health_attempts integers), setup (a pass needs baseline_ok not false, deploy_exit=0,
inject_exit 0 or none, in kill mode new_release_was_healthy=true), detection (failure_detected=true,
detect_seconds >= 0, detect_attempts >= 1), rollback_cmd (rollback_cmd_exit=0,
rollback_cmd_seconds <= rollback_seconds), restore (restore_health_attempts >= 1), running_release
(the release running before the deploy and after the rollback is rollback_target, on every
platform), fail_reason (empty unless result=fail, then one of the reasons the drill writes), stop
(stopped_after is measured: true only when stop_requested, and a pass with stop_requested left
nothing running), release_check (supervisor, command or http_body; systemd and k8s need command or
http_body), session_guard (not_applicable, outside_session or forced, with its reason; not_checked
only in a dry run).

Under the original's command name (verify_deploy_rollback_evidence) --allow-legacy and
--allow-dry-run are on by default; each acceptance is a warning on stderr.

EXAMPLE:
  rollback-drill --execute --stop-after && \\
    rollback-verify --evidence-file docs/results/deploy_rollback_result.env --max-rollback-seconds 180

";

/// Verify deploy/rollback drill evidence (deploy_rollback_result.env).
#[derive(Debug, Parser)]
#[command(version, after_help = format!("{AFTER_HELP}{EXIT_STATUS_HELP}"))]
pub struct Cli {
    /// Common verifier flags.
    #[command(flatten)]
    pub verify: VerifyArgs,
    /// Largest acceptable rollback_seconds.
    #[arg(long, value_name = "SECS", default_value_t = 180.0)]
    pub max_rollback_seconds: f64,
}

/// Check `doc` and return the verdict.
#[must_use]
pub fn check(doc: &EnvDoc, max: f64, args: &VerifyArgs) -> Verdict {
    let mut v = Verdict::new(doc.source());
    if !v.kind(doc, &ROLLBACK) {
        return v;
    }
    let prov = v.provenance(doc, &ROLLBACK, args);
    if !v.require_keys(doc, &KEYS) {
        return v;
    }
    let get = |k: &str| doc.get(k).unwrap_or_default();
    let line = |k: &str| doc.line_of(k);

    let result = get("result").to_ascii_lowercase();
    if !RESULTS.contains(&result.as_str()) {
        v.malformed(
            "result",
            format!(
                "line {}: result must be one of: {}, found {:?}",
                line("result"),
                RESULTS.join(", "),
                get("result")
            ),
        );
    }
    let dry = result == "dry_run";
    if let Some(p) = prov.dry_run
        && p != dry
    {
        v.malformed(
            "dry_run",
            format!(
                "provenance_dry_run={} but result={}: the two disagree",
                u8::from(p),
                get("result")
            ),
        );
    } else {
        v.dry_run_gate(dry, &format!("result={}", get("result")), args);
    }
    let dry_ok = dry && args.dry_run_allowed();

    let platform = get("platform");
    if PLATFORMS.iter().any(|p| p.eq_ignore_ascii_case(platform)) {
        v.pass("platform", format!("platform={platform}"));
    } else {
        v.malformed(
            "platform",
            format!(
                "line {}: platform must be one of: {}, found {platform:?}",
                line("platform"),
                PLATFORMS.join(", ")
            ),
        );
    }

    let release = get("release_version");
    let target = get("rollback_target");
    if release == target {
        v.breach(
            "rollback_target_differs",
            format!("rollback_target={target} equals release_version: nothing was rolled back"),
        );
    } else {
        v.pass("rollback_target_differs", format!("{release} -> {target}"));
    }

    let failure = get("failure_injected");
    let mode = FAILURES
        .iter()
        .find(|(f, _)| *f == failure)
        .map(|(_, m)| *m);
    if mode.is_some() {
        v.pass("failure_injected", format!("failure_injected={failure}"));
    } else if prov.strict() {
        v.malformed(
            "failure_injected",
            format!(
                "line {}: failure_injected must be one of: {}, found {failure:?}",
                line("failure_injected"),
                FAILURES.map(|(f, _)| f).join(", ")
            ),
        );
    }

    let d = v.duration_agrees(
        doc,
        "rollback_start_utc",
        "rollback_complete_utc",
        "rollback_seconds",
    );
    if dry_ok {
        v.pass(
            "rollback_threshold",
            "dry run: rollback_seconds not measured",
        );
    } else {
        v.duration_threshold(
            "rollback_threshold",
            "rollback_seconds",
            "rollback_complete_utc-rollback_start_utc",
            &d,
            max,
        );
    }

    match parse_bool(get("health_check_passed")) {
        None => v.malformed(
            "health_check_passed",
            format!(
                "line {}: health_check_passed must be true/false, found {:?}",
                line("health_check_passed"),
                get("health_check_passed")
            ),
        ),
        Some(true) if dry => v.malformed(
            "health_check_passed",
            "health_check_passed=true in a dry run: no health check was run",
        ),
        Some(true) => v.pass("health_check_passed", "health_check_passed=true"),
        Some(false) if dry_ok => {
            v.pass("health_check_passed", "dry run: no health check was run");
        }
        Some(false) if dry => {}
        Some(false) => v.breach("health_check_passed", "health_check_passed must be true"),
    }

    match result.as_str() {
        "pass" => v.pass("result", "result=pass"),
        "dry_run" if dry_ok => v.pass("result", "result=dry_run (dry run allowed)"),
        "dry_run" => {}
        r if RESULTS.contains(&r) => v.breach(
            "result",
            format!("result must be pass, found {:?}", get("result")),
        ),
        _ => {}
    }

    let mut times: Vec<(String, i64)> = [
        ("rollback_start_utc", d.start_ns),
        ("rollback_complete_utc", d.end_ns),
    ]
    .into_iter()
    .filter_map(|(k, t)| Some((k.to_string(), t?)))
    .collect();
    if prov.strict() && !dry {
        drill_keys(&mut v, doc, &d, mode, &mut times);
    } else if prov.strict() && v.require_present(doc, "drill_keys", &DRY_RUN_KEYS) {
        v.one_of(doc, "release_check", &RELEASE_CHECKS);
        v.boolean(doc, "stop_requested");
        v.one_of(doc, "session_guard", &["not_checked"]);
    }
    v.times_within(&prov, &times);
    v
}

/// The extras of an executed drill, each checked against the others.
fn drill_keys(
    v: &mut Verdict,
    doc: &EnvDoc,
    d: &Durations,
    mode: Option<&str>,
    times: &mut Vec<(String, i64)>,
) {
    if !v.require_present(doc, "drill_keys", &DRILL_KEYS) {
        return;
    }
    let get = |k: &str| doc.get(k).unwrap_or_default();
    let pass = get("result").eq_ignore_ascii_case("pass");
    if let Some(m) = v.one_of(doc, "failure_mode", &["health", "kill"])
        && let Some(expected) = mode
    {
        v.consistent(
            "failure_injected",
            m != expected,
            format!(
                "failure_mode={m} but failure_injected={}",
                get("failure_injected")
            ),
        );
    }

    // Booleans are booleans (empty where the drill had nothing to say).
    let baseline = v.boolean(doc, "baseline_ok");
    let new_healthy = v.boolean(doc, "new_release_was_healthy");
    let detected = v.boolean(doc, "failure_detected");
    let stopped = v.boolean(doc, "stopped_after");
    let stop_requested = v.boolean(doc, "stop_requested");
    for k in ["failure_detected", "stopped_after", "stop_requested"] {
        if get(k).is_empty() {
            v.malformed(
                "booleans",
                format!("{k} is empty: rollback-drill always writes true or false"),
            );
        }
    }
    if ![
        "baseline_ok",
        "new_release_was_healthy",
        "failure_detected",
        "stopped_after",
        "stop_requested",
    ]
    .iter()
    .any(|k| v.failed(k))
    {
        v.pass_unless_failed("booleans", "booleans are true/false");
    }

    // The outcome and its reason.
    let result = get("result").to_ascii_lowercase();
    if let Some(reason) = v.one_of(doc, "fail_reason", &[&[""][..], &FAIL_REASONS[..]].concat()) {
        v.consistent(
            "fail_reason",
            result == "fail" && reason.is_empty(),
            "result=fail but fail_reason is empty: the drill always says why",
        );
        v.consistent(
            "fail_reason",
            result != "fail" && !reason.is_empty(),
            format!("result={result} but fail_reason={reason}"),
        );
        v.pass_unless_failed("fail_reason", format!("fail_reason={reason:?}"));
    }

    // The stop at the end is measured: true only when requested and seen gone.
    if let (Some(stopped), Some(requested)) = (stopped, stop_requested) {
        v.consistent(
            "stop",
            stopped && !requested,
            "stopped_after=true but stop_requested=false: the drill stops the service only when asked",
        );
        v.consistent(
            "stop",
            pass && requested && !stopped,
            "result=pass but stop_requested=true and stopped_after=false: the service was left running",
        );
        v.pass_unless_failed(
            "stop",
            format!("stop_requested={requested} stopped_after={stopped}"),
        );
    }

    // Which check established the running release; systemd and k8s need a command or a body match.
    let platform = get("platform").to_ascii_lowercase();
    if let Some(check) = v.one_of(doc, "release_check", &RELEASE_CHECKS) {
        v.consistent(
            "release_check",
            platform != "local" && check == "supervisor",
            format!("release_check=supervisor on platform {platform}: only the local supervisor has a pid file to read"),
        );
        v.pass_unless_failed("release_check", format!("release_check={check}"));
    }

    // The session guard ran (a dry run is the only evidence without it).
    if v.one_of(doc, "session_guard", &SESSION_GUARDS).is_some() {
        v.consistent(
            "session_guard",
            get("session_guard_reason").is_empty(),
            "session_guard_reason is empty",
        );
        v.pass_unless_failed(
            "session_guard",
            format!("session_guard={}", get("session_guard")),
        );
    }

    // The set-up: a pass needs the baseline, the deploy, the injection and (kill) a healthy new release.
    let deploy = get("deploy_exit");
    let inject = get("inject_exit");
    if pass {
        v.consistent(
            "setup",
            baseline == Some(false),
            "result=pass but baseline_ok=false: the rollback target was never in place",
        );
        v.consistent(
            "setup",
            deploy != "0",
            format!("result=pass but deploy_exit={deploy:?}: the new release was not deployed"),
        );
        v.consistent(
            "setup",
            !(inject.is_empty() || inject == "0"),
            format!("result=pass but inject_exit={inject:?}: the failure injection failed"),
        );
        if mode == Some("kill") {
            v.consistent(
                "setup",
                new_healthy != Some(true),
                format!(
                    "result=pass in kill mode but new_release_was_healthy={:?}: the killed release never served",
                    get("new_release_was_healthy")
                ),
            );
        }
    }
    if mode == Some("health") && !get("new_release_was_healthy").is_empty() {
        v.malformed(
            "setup",
            "new_release_was_healthy is written only in kill mode",
        );
    }
    v.pass_unless_failed(
        "setup",
        format!("deploy_exit={deploy} inject_exit={inject:?}"),
    );

    // Detection.
    let attempts = v.uint(doc, "detect_attempts");
    let detect_secs = v.non_negative(doc, "detect_seconds");
    if get("health_check").is_empty() {
        v.malformed(
            "detection",
            "health_check is empty: which probe detected the failure?",
        );
    }
    match detected {
        Some(true) => {
            v.consistent(
                "detection",
                detect_secs.is_none() && !v.failed("detect_seconds"),
                "failure_detected=true but detect_seconds is empty",
            );
            v.consistent(
                "detection",
                attempts == Some(0),
                "failure_detected=true but detect_attempts=0",
            );
            if let (Some(s), Some(start)) = (detect_secs, d.start_ns) {
                // The injection happened detect_seconds before the detection.
                #[expect(clippy::cast_possible_truncation, reason = "seconds within a drill")]
                let injected = start - (s * 1e9) as i64;
                times.push((
                    "rollback_start_utc - detect_seconds (the injection)".into(),
                    injected,
                ));
            }
        }
        Some(false) if pass => v.breach(
            "detection",
            "result=pass but failure_detected=false: the injected failure was never seen",
        ),
        _ => {}
    }
    v.pass_unless_failed(
        "detection",
        format!("detected after {} probe(s)", get("detect_attempts")),
    );

    // The rollback command.
    let cmd_exit = get("rollback_cmd_exit");
    let cmd_secs = v.non_negative(doc, "rollback_cmd_seconds");
    if pass {
        v.consistent(
            "rollback_cmd",
            cmd_exit != "0",
            format!("result=pass but rollback_cmd_exit={cmd_exit:?}: the rollback command failed"),
        );
    }
    if let (Some(c), Some(total)) = (cmd_secs, d.stated) {
        v.consistent(
            "rollback_cmd",
            c > total + 1e-6,
            format!("rollback_cmd_seconds={c} exceeds rollback_seconds={total}: the command runs inside the rollback"),
        );
    }
    v.pass_unless_failed("rollback_cmd", format!("rollback_cmd_exit={cmd_exit}"));

    // The restored release passed its health check.
    let restore = v.uint(doc, "restore_health_attempts");
    if pass || get("health_check_passed") == "true" {
        v.consistent(
            "restore",
            restore == Some(0),
            "health_check_passed=true but restore_health_attempts=0: no probe was made",
        );
    }
    v.pass_unless_failed(
        "restore",
        format!("restore_health_attempts={}", get("restore_health_attempts")),
    );

    // Which release runs before the deploy and after the rollback (every platform).
    let target = get("rollback_target");
    let running = get("running_release_after");
    let before = get("running_release_before");
    let exe = get("running_exe_release_after");
    v.consistent(
        "running_release",
        pass && before != target,
        format!(
            "result=pass but running_release_before={before:?} is not rollback_target={target}: the baseline was not in place"
        ),
    );
    v.consistent(
        "running_release",
        pass && running != target,
        format!(
            "result=pass but running_release_after={running:?} is not rollback_target={target}"
        ),
    );
    v.consistent(
        "running_release",
        pass && platform == "local" && exe != target,
        format!(
            "result=pass but running_exe_release_after={exe:?} is not rollback_target={target}"
        ),
    );
    v.pass_unless_failed("running_release", format!("running after: {running:?}"));
}

/// Verify.
pub fn run(mut cli: Cli) -> Result<Exit> {
    cli.verify.apply_original_name(ORIGINAL_NAME);
    let max = cli.max_rollback_seconds;
    if !max.is_finite() || max < 0.0 {
        return Err(EvidenceError::usage(format!(
            "--max-rollback-seconds must be a finite number >= 0, found {max}"
        )));
    }
    let doc = read_env(&cli.verify.evidence_file)?;
    check(&doc, max, &cli.verify).emit(cli.verify.format)
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
