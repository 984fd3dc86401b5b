//! rollout-orchestrator: real rollouts against the demo service (via svc-ctl), a hanging step killed
//! with its children, SIGINT mid-rollout, refusals and bad configs.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use evidence_core::dotenv::EnvDoc;
use test_support::{fixture, run, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_rollout-orchestrator");

/// demo-service, svc-ctl, rollout-verify live next to this binary; build them once if needed.
fn bin_dir() -> PathBuf {
    test_support::build_siblings(BIN, &["demo-service", "svc-ctl", "rollout-verify"])
}

fn sibling(name: &str) -> String {
    bin_dir().join(name).display().to_string()
}

fn fx(name: &str) -> String {
    fixture(env!("CARGO_MANIFEST_DIR"), name)
}

/// A temp folder holding the service run folder `rd`; stops the service when dropped.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        bin_dir();
        Site {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> &Path {
        self.dir.path()
    }
    fn svc(&self, args: &[&str]) -> test_support::Run {
        let mut a = vec!["--run-dir", "rd"];
        a.extend_from_slice(args);
        run(&sibling("svc-ctl"), &a, None, Some(self.path()))
    }
    fn baseline_v1(&self) {
        self.svc(&["deploy", "--release", "v1", "--wait-healthy", "20"])
            .code(0);
    }
    fn orchestrate(&self, config: &str, extra: &[&str]) -> test_support::Run {
        let cfg = fx(config);
        let mut a = vec!["--env-config", cfg.as_str(), "--output-file", "out.env"];
        a.extend_from_slice(extra);
        run(BIN, &a, None, Some(self.path()))
    }
    fn evidence(&self) -> EnvDoc {
        let text = std::fs::read_to_string(self.path().join("out.env")).unwrap();
        EnvDoc::parse(&text, "out.env").unwrap()
    }
    fn health_body(&self) -> String {
        let port: u16 = std::fs::read_to_string(self.path().join("rd/port"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let r = evidence_core::health::http_get(
            &format!("http://127.0.0.1:{port}/health"),
            Duration::from_secs(5),
        )
        .unwrap();
        format!("{} {}", r.status, r.body)
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if self.path().join("rd").exists() {
            let _ = run(
                &sibling("svc-ctl"),
                &["--run-dir", "rd", "stop", "--grace", "2"],
                None,
                Some(self.path()),
            );
        }
    }
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = &s[s.rfind(')')? + 1..];
            rest.split_whitespace()
                .next()
                .map(|st| st != "Z" && st != "X")
        })
        .unwrap_or(false)
}

fn read_pid(p: &Path) -> i32 {
    std::fs::read_to_string(p).unwrap().trim().parse().unwrap()
}

#[test]
fn flat_form_rolls_back_for_real_and_verifies() {
    let site = Site::new();
    site.baseline_v1();
    let r = site.orchestrate("flat_svc.yaml", &["--execute", "--inject-fault"]);
    r.code(0)
        .stdout_is("out.env\n")
        .stderr_has("step fault_injection: ok")
        .stderr_has("step rollback: ok")
        .stderr_has("result success (success=true, 5 steps)");
    let ev = site.evidence();
    assert_eq!(ev.get("ROLLOUT_DRY_RUN"), Some("0"));
    assert_eq!(ev.get("ROLLOUT_SUCCESS"), Some("true"));
    assert_eq!(ev.get("ROLLOUT_TOTAL_STEPS"), Some("5"));
    let names: Vec<_> = (1..=5)
        .map(|i| ev.get(&format!("STEP_{i}_NAME")).unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "precheck",
            "deploy",
            "fault_injection",
            "rollback",
            "verify"
        ]
    );
    for i in 1..=5 {
        assert_eq!(ev.get(&format!("STEP_{i}_STATUS")), Some("ok"));
        assert_eq!(ev.get(&format!("STEP_{i}_EXIT_CODE")), Some("0"));
    }
    assert_eq!(ev.get("ROLLOUT_RELEASE_BEFORE"), Some("v1"));
    assert_eq!(ev.get("ROLLOUT_RELEASE_AFTER"), Some("v1"));
    assert_eq!(ev.get("PROVENANCE_DRY_RUN"), Some("0"));
    let secs: f64 = ev.get("ROLLOUT_ROLLBACK_SECONDS").unwrap().parse().unwrap();
    assert!(secs > 0.0 && secs < 30.0, "{secs}");
    // The process answering /health is the old release again.
    assert!(site.health_body().contains("\"version\":\"v1\""));
    assert!(site.health_body().starts_with("200 "));
    let out = site.path().join("out.env").display().to_string();
    run(
        &sibling("rollout-verify"),
        &["--evidence-file", &out, "--require-fault-step"],
        None,
        None,
    )
    .code(0)
    .stdout_is(&format!("verification passed: {out}\n"))
    .stderr_is("");
}

#[test]
fn rollback_that_does_nothing_fails() {
    let site = Site::new();
    site.baseline_v1();
    let r = site.orchestrate("flat_noop_rollback.yaml", &["--execute", "--inject-fault"]);
    r.code(1)
        .stdout_is("out.env\n")
        .stderr_has("step verify: failed")
        .stderr_has("result failed (success=false, 5 steps, failed step verify)");
    let ev = site.evidence();
    assert_eq!(ev.get("ROLLOUT_SUCCESS"), Some("false"));
    assert_eq!(ev.get("ROLLOUT_FAILED_STEP"), Some("verify"));
    assert_eq!(ev.get("STEP_4_STATUS"), Some("ok"));
    assert_eq!(ev.get("STEP_5_STATUS"), Some("failed"));
    assert_eq!(ev.get("ROLLOUT_RELEASE_AFTER"), Some("v2"));
    assert!(
        ev.get("ROLLOUT_FAILED_OUTPUT_TAIL")
            .unwrap()
            .contains("health FAILED"),
        "{:?}",
        ev.get("ROLLOUT_FAILED_OUTPUT_TAIL")
    );
    let out = site.path().join("out.env").display().to_string();
    run(
        &sibling("rollout-verify"),
        &["--evidence-file", &out],
        None,
        None,
    )
    .code(1)
    .stdout_is("")
    .stderr_has("ROLLOUT_SUCCESS=false");
}

#[test]
fn missing_rollback_command_is_refused_before_anything_runs() {
    let site = Site::new();
    let cfg = fx("flat_no_rollback.yaml");
    site.orchestrate("flat_no_rollback.yaml", &["--execute"])
        .code(2)
        .stdout_is("")
        .stderr_is(&format!(
            "rollout-orchestrator: error: {cfg}: rollback_cmd: expected a command for step rollback (--execute refuses to record a step that runs nothing), found no command\n"
        ));
    assert!(!site.path().join("precheck-ran").exists());
    assert!(!site.path().join("out.env").exists());
    // A dry run warns and records it as simulated.
    let r = site.orchestrate("flat_no_rollback.yaml", &[]);
    r.code(0)
        .stdout_has("[dry-run] touch precheck-ran\n")
        .stderr_has("step rollback: no command (rollback_cmd); --execute would refuse");
    assert!(!site.path().join("precheck-ran").exists());
}

#[test]
fn health_gate_failure_triggers_the_rollback() {
    let site = Site::new();
    site.baseline_v1();
    let r = site.orchestrate("rich_gate.yaml", &["--execute", "--inject-fault"]);
    r.code(1)
        .stdout_is("out.env\n")
        .stderr_has("step health_gate: failed");
    let ev = site.evidence();
    assert_eq!(ev.get("ROLLOUT_CONFIG_FORM"), Some("rich"));
    assert_eq!(ev.get("ROLLOUT_FAILED_STEP"), Some("health_gate"));
    let names: Vec<_> = (1..=5)
        .map(|i| ev.get(&format!("STEP_{i}_NAME")).unwrap_or("-").to_string())
        .collect();
    // fault_injection is skipped after the failed gate; rollback and verify still run.
    assert_eq!(
        names,
        ["precheck", "deploy", "health_gate", "rollback", "verify"]
    );
    assert_eq!(ev.get("ROLLOUT_TOTAL_STEPS"), Some("5"));
    assert_eq!(ev.get("STEP_4_STATUS"), Some("ok"));
    assert_eq!(ev.get("STEP_4_HEALTH_ATTEMPTS"), Some("1"));
    assert_eq!(ev.get("STEP_5_STATUS"), Some("ok"));
    assert_eq!(ev.get("ROLLOUT_SUCCESS"), Some("false"));
    assert_eq!(ev.get("ROLLOUT_RELEASE_AFTER"), Some("v1"));
    assert!(site.health_body().contains("\"version\":\"v1\""));
}

#[test]
fn hanging_step_is_killed_with_its_children() {
    let site = Site::new();
    let start = Instant::now();
    let r = site.orchestrate("rich_hang.yaml", &["--execute"]);
    assert!(start.elapsed() < Duration::from_secs(30));
    r.code(1)
        .stdout_is("out.env\n")
        .stderr_has("step precheck: failed");
    let ev = site.evidence();
    assert_eq!(ev.get("ROLLOUT_TOTAL_STEPS"), Some("1"));
    assert_eq!(ev.get("STEP_1_STATUS"), Some("failed"));
    // Killed at its 1 s timeout; how much later it was reaped depends on the machine's load.
    let detail = ev.get("STEP_1_DETAIL").unwrap();
    let secs: f64 = detail
        .strip_prefix("timed out after ")
        .and_then(|d| d.strip_suffix('s'))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("STEP_1_DETAIL={detail}"));
    assert!((1.0..30.0).contains(&secs), "STEP_1_DETAIL={detail}");
    assert_eq!(ev.get("STEP_1_TIMEOUT_SECONDS"), Some("1.000"));
    assert_eq!(ev.get("ROLLOUT_ROLLBACK_RAN"), Some("false"));
    let gc = read_pid(&site.path().join("grandchild.pid"));
    wait_until(Duration::from_secs(10), "the grandchild to die", || {
        !alive(gc)
    });
}

#[test]
fn sigint_mid_rollout_writes_interrupted_evidence_and_leaves_no_orphans() {
    let site = Site::new();
    let cfg = fx("sigint.yaml");
    let child = Command::new(BIN)
        .args([
            "--env-config",
            &cfg,
            "--output-file",
            "out.env",
            "--execute",
        ])
        .current_dir(site.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pidfile = site.path().join("grandchild.pid");
    wait_until(Duration::from_secs(30), "the deploy step to start", || {
        std::fs::read_to_string(&pidfile).is_ok_and(|s| s.ends_with('\n'))
    });
    let gc = read_pid(&pidfile);
    assert!(alive(gc));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out.env\n");
    assert!(stderr.contains("step deploy: failed"), "{stderr}");
    assert!(stderr.contains("result interrupted"), "{stderr}");
    let ev = site.evidence();
    assert_eq!(ev.get("ROLLOUT_INTERRUPTED"), Some("true"));
    assert_eq!(ev.get("ROLLOUT_RESULT"), Some("interrupted"));
    assert_eq!(ev.get("ROLLOUT_SUCCESS"), Some("false"));
    assert_eq!(ev.get("ROLLOUT_FAILED_STEP"), Some("deploy"));
    assert_eq!(ev.get("STEP_2_DETAIL"), Some("interrupted"));
    assert!(ev.get("ROLLOUT_FAILURE_REASON").unwrap().contains("SIGINT"));
    wait_until(Duration::from_secs(10), "the grandchild to die", || {
        !alive(gc)
    });
}

#[test]
fn context_goes_in_environment_variables() {
    let site = Site::new();
    site.orchestrate("env_context.yaml", &["--execute"])
        .code(0)
        .stdout_is("out.env\n");
    assert_eq!(
        std::fs::read_to_string(site.path().join("ctx.txt")).unwrap(),
        "ctx; touch injected|precheck|1\n"
    );
    assert!(!site.path().join("injected").exists());
}

#[test]
fn dry_run_prints_commands_and_simulates() {
    let site = Site::new();
    let r = site.orchestrate("flat_svc.yaml", &["--inject-fault"]);
    r.code(0)
        .stdout_is(
            "[dry-run] svc-ctl --run-dir rd health --expect-version v1 --timeout 10\n\
             [dry-run] svc-ctl --run-dir rd deploy --release v2 --wait-healthy 10\n\
             [dry-run] svc-ctl --run-dir rd fail-health\n\
             [dry-run] svc-ctl --run-dir rd rollback\n\
             [dry-run] svc-ctl --run-dir rd health --expect-version v1 --timeout 5\n\
             out.env\n",
        )
        .stderr_is(
            "rollout-orchestrator: environment test-flat: result dry_run (success=true, 5 steps)\n",
        );
    let ev = site.evidence();
    assert_eq!(ev.get("ROLLOUT_DRY_RUN"), Some("1"));
    assert_eq!(ev.get("STEP_3_STATUS"), Some("simulated_ok"));
    assert!(
        !site.path().join("rd").exists(),
        "a dry run touched the service"
    );
}

#[test]
fn bad_configs_exit_2_naming_file_and_field() {
    let site = Site::new();
    let cfg = fx("bad_timeout.yaml");
    site.orchestrate("bad_timeout.yaml", &["--execute"])
        .code(2)
        .stdout_is("")
        .stderr_is(&format!(
            "rollout-orchestrator: error: {cfg}: steps.deploy.timeout_seconds: expected a number of seconds > 0, found -1\n"
        ));
    let cfg = fx("bad_unknown_key.yaml");
    site.orchestrate("bad_unknown_key.yaml", &[])
        .code(2)
        .stdout_is("")
        .stderr_has(&format!("rollout-orchestrator: error: {cfg}:3: "))
        .stderr_has("unknown field `rollbak_cmd`");
    site.orchestrate("does-not-exist.yaml", &[])
        .code(2)
        .stderr_has("cannot read env config");
    run(BIN, &[], None, Some(site.path()))
        .code(2)
        .stdout_is("")
        .stderr_has("--env-config <PATH>");
}

#[test]
fn one_rollout_per_environment() {
    let site = Site::new();
    let lock = site.path().join("runtime/locks/rollout-test-hang.lock");
    let _held = evidence_core::lock::LockFile::acquire(&lock, "test").unwrap();
    site.orchestrate("rich_hang.yaml", &["--execute"])
        .code(2)
        .stdout_is("")
        .stderr_has("another rollout of environment test-hang is running");
    assert!(!site.path().join("grandchild.pid").exists());
}
