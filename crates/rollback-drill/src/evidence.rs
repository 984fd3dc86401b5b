//! `deploy_rollback_result.env`: the twelve keys, the extras (docs/templates/DEPLOY_ROLLBACK_RESULT.md),
//! provenance.

use std::time::Duration;

use deploy_core::rollback::RollbackEvidence;
use evidence_core::cli::info;
use evidence_core::provenance::Provenance;
use evidence_core::time::{format_seconds, format_utc};
use evidence_core::{Exit, Result};

use crate::config::Config;
use crate::drill::{Measured, wall_now};

fn join_notes(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}; {b}")
    }
}

fn write(
    cfg: &Config,
    head: [String; 12],
    extras: Vec<(String, String)>,
    prov: Provenance,
) -> Result<()> {
    let ev = RollbackEvidence {
        head,
        extras,
        provenance: prov,
    };
    cfg.drill.output.write_all(ev.render().as_bytes())?;
    if let Some(p) = cfg.drill.output.path() {
        info(&format!("evidence written: {}", p.display()));
    }
    Ok(())
}

fn common_extras(cfg: &Config) -> Vec<(String, String)> {
    let plan = &cfg.plan;
    vec![
        (
            "failure_mode".into(),
            format!("{:?}", plan.failure).to_lowercase(),
        ),
        (
            "run_dir".into(),
            plan.run_dir
                .as_ref()
                .map_or_else(String::new, |d| d.display().to_string()),
        ),
    ]
}

/// The dry run's evidence: result=dry_run, nothing measured.
pub fn write_dry_run(cfg: &Config, prov: Provenance) -> Result<()> {
    let plan = &cfg.plan;
    let now = format_utc(wall_now());
    let notes = join_notes(
        &plan.notes,
        "dry run: nothing was executed, nothing was measured",
    );
    let head = [
        cfg.drill.id.to_string(),
        plan.platform.as_str().to_string(),
        plan.release.clone(),
        plan.target.clone(),
        plan.failure.evidence().to_string(),
        now.clone(),
        now,
        "0.000000".to_string(),
        "false".to_string(),
        "dry_run".to_string(),
        cfg.drill.operator.clone(),
        notes,
    ];
    let mut extras = common_extras(cfg);
    extras.extend([
        ("stop_requested".into(), cfg.stop_after.to_string()),
        (
            "release_check".into(),
            cfg.release_check.as_str().to_string(),
        ),
        ("session_guard".into(), "not_checked".to_string()),
        (
            "session_guard_reason".into(),
            "dry run: nothing touched".to_string(),
        ),
    ]);
    write(cfg, head, extras, prov)
}

fn measured_extras(cfg: &Config, m: &Measured) -> Vec<(String, String)> {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    let f6 = |o: Option<f64>| o.map(|x| format!("{x:.6}")).unwrap_or_default();
    let b = |o: Option<bool>| o.map(|b| b.to_string()).unwrap_or_default();
    vec![
        ("baseline_ok".into(), b(m.baseline_ok)),
        ("deploy_exit".into(), opt(&m.deploy_exit)),
        (
            "new_release_was_healthy".into(),
            b(m.new_release_was_healthy),
        ),
        ("inject_exit".into(), opt(&m.inject_exit)),
        ("health_check".into(), m.health_check.clone()),
        ("failure_detected".into(), m.detected.to_string()),
        ("detect_seconds".into(), f6(m.detect_seconds)),
        ("detect_attempts".into(), m.detect_attempts.to_string()),
        ("detect_detail".into(), m.detect_detail.clone()),
        ("rollback_cmd_exit".into(), opt(&m.rollback_cmd_exit)),
        ("rollback_cmd_seconds".into(), f6(m.rollback_cmd_seconds)),
        (
            "restore_health_attempts".into(),
            m.restore_attempts.to_string(),
        ),
        ("restore_health_detail".into(), m.restore_detail.clone()),
        (
            "running_release_after".into(),
            m.running_release_after.clone(),
        ),
        (
            "running_exe_release_after".into(),
            m.running_exe_release_after.clone(),
        ),
        ("stopped_after".into(), m.stopped_after.to_string()),
        ("stop_requested".into(), cfg.stop_after.to_string()),
        (
            "release_check".into(),
            cfg.release_check.as_str().to_string(),
        ),
        (
            "running_release_before".into(),
            m.running_release_before.clone(),
        ),
        (
            "fail_reason".into(),
            m.fail.map(|f| f.as_str().to_string()).unwrap_or_default(),
        ),
        ("session_guard".into(), m.session_guard.clone()),
        (
            "session_guard_reason".into(),
            m.session_guard_reason.clone(),
        ),
    ]
}

/// The executed drill's evidence; returns the exit (0 pass, 1 fail, 130 interrupted).
pub fn write_executed(
    cfg: &Config,
    m: &mut Measured,
    interrupted: bool,
    prov: Provenance,
) -> Result<Exit> {
    let plan = &cfg.plan;
    if interrupted {
        // An interruption is not a failure of the drill's subject: no fail_reason.
        m.fail = None;
    }
    let result = if interrupted {
        "interrupted"
    } else if m.fail.is_none() && m.detected && m.health_passed {
        "pass"
    } else {
        "fail"
    };
    if m.rollback_start_ns == 0 {
        // Stopped before any detection: nothing to time.
        m.rollback_start_ns = wall_now();
        m.rollback_complete_ns = m.rollback_start_ns;
    } else if m.rollback_complete_ns == 0 {
        // Interrupted during the rollback: time it up to the interruption.
        let d = m.rollback_from.map_or(Duration::ZERO, |t| t.elapsed());
        m.rollback_seconds = d.as_secs_f64();
        m.rollback_complete_ns = m.rollback_start_ns + i64::try_from(d.as_nanos()).unwrap_or(0);
    }
    let mut notes = plan.notes.clone();
    if interrupted {
        notes = join_notes(&notes, "interrupted by a signal before the drill completed");
    } else if !m.reason.is_empty() {
        notes = join_notes(&notes, &m.reason);
    }
    if notes.is_empty() {
        notes = format!(
            "{} rolled back to {} after {}",
            plan.release,
            plan.target,
            plan.failure.evidence()
        );
    }
    info(&format!(
        "result {result}: rollback_seconds={:.6} health_check_passed={}{}",
        m.rollback_seconds,
        m.health_passed,
        m.fail
            .map(|f| format!(" fail_reason={}", f.as_str()))
            .unwrap_or_default()
    ));
    let head = [
        cfg.drill.id.to_string(),
        plan.platform.as_str().to_string(),
        plan.release.clone(),
        plan.target.clone(),
        plan.failure.evidence().to_string(),
        format_utc(m.rollback_start_ns),
        format_utc(m.rollback_complete_ns),
        format_seconds(Duration::from_secs_f64(m.rollback_seconds)),
        m.health_passed.to_string(),
        result.to_string(),
        cfg.drill.operator.clone(),
        notes,
    ];
    let mut extras = common_extras(cfg);
    extras.extend(measured_extras(cfg, m));
    write(cfg, head, extras, prov)?;
    Ok(if interrupted {
        Exit::Interrupted
    } else {
        Exit::pass_if(result == "pass")
    })
}
