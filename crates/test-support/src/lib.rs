//! Helpers for integration tests: run a tool binary with arguments and stdin, and assert status,
//! stdout and stderr together; wait on conditions with deadlines; skip with a printed reason.
#![allow(clippy::print_stderr, clippy::missing_panics_doc)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The result of one run of a tool.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Captured stdout.
    pub stdout: String,
    /// Captured stderr.
    pub stderr: String,
}

impl Run {
    /// Assert the exit code, printing stdout and stderr on failure.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(expected),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Assert stdout is exactly `s`.
    #[track_caller]
    pub fn stdout_is(&self, s: &str) -> &Self {
        assert_eq!(self.stdout, s, "stdout\n--- stderr\n{}", self.stderr);
        self
    }

    /// Assert stderr is exactly `s`.
    #[track_caller]
    pub fn stderr_is(&self, s: &str) -> &Self {
        assert_eq!(self.stderr, s, "stderr\n--- stdout\n{}", self.stdout);
        self
    }

    /// Assert stdout contains `s`.
    #[track_caller]
    pub fn stdout_has(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s),
            "stdout lacks {s:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Assert stderr contains `s`.
    #[track_caller]
    pub fn stderr_has(&self, s: &str) -> &Self {
        assert!(
            self.stderr.contains(s),
            "stderr lacks {s:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Assert neither stream contains `s` (for secrets).
    #[track_caller]
    pub fn never_has(&self, s: &str) -> &Self {
        assert!(
            !self.stdout.contains(s) && !self.stderr.contains(s),
            "output leaks {s:?}"
        );
        self
    }
}

/// Run `bin` with `args` and `stdin`, from `cwd` when given.
pub fn run(bin: &str, args: &[&str], stdin: Option<&str>, cwd: Option<&Path>) -> Run {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    if let Some(s) = stdin {
        let mut w = child.stdin.take().expect("stdin");
        let s = s.to_string();
        std::thread::spawn(move || {
            let _ = w.write_all(s.as_bytes());
        });
    }
    let out = child.wait_with_output().expect("wait");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Poll `cond` every 10 ms until it is true; panic with `what` after `timeout`.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// True when running as root.
#[must_use]
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// True when `name` is an executable on `PATH` (or an absolute path that exists).
#[must_use]
pub fn have_command(name: &str) -> bool {
    if name.contains('/') {
        return Path::new(name).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// Print a skip reason on stderr — call it, then `return`. Written to the stderr handle directly,
/// not through `eprintln!`, so the test harness does not capture it: a skip is always visible in
/// `cargo test` output, never silent.
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIP {test}: {reason}\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    // The test runner hides what passing tests print; `make test` names this file in
    // CTP_OPS_SKIP_LOG and prints it at the end, so a skip is never silent.
    if let Some(path) = std::env::var_os("CTP_OPS_SKIP_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = f.write_all(line.as_bytes());
    }
}

/// Absolute path of a fixture under the calling crate's `tests/fixtures/`.
#[must_use]
pub fn fixture(manifest_dir: &str, name: &str) -> String {
    format!("{manifest_dir}/tests/fixtures/{name}")
}

/// Make sure the binaries of `packages` sit next to `bin` (the tool under test,
/// `env!("CARGO_BIN_EXE_<tool>")`): `cargo test -p <tool>` alone does not build other packages'
/// binaries. Builds the missing packages once per test process with the cargo that runs the tests,
/// in `bin`'s profile (a no-op when they are current). Returns the folder of `bin`.
pub fn build_siblings(bin: &str, packages: &[&str]) -> std::path::PathBuf {
    use std::sync::Mutex;
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let dir = Path::new(bin)
        .parent()
        .expect("a binary path has a folder")
        .to_path_buf();
    // Holding the lock while building keeps parallel tests from racing on the same build.
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let todo: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !built.iter().any(|b| b == p))
        .collect();
    if !todo.is_empty() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut cmd = Command::new(cargo);
        // Any folder of the workspace will do for `-p`: this crate's.
        cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["build", "-q"]);
        if dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        for p in &todo {
            cmd.args(["-p", p]);
        }
        let st = cmd.status().expect("cannot run cargo build");
        assert!(st.success(), "cannot build the sibling binaries {todo:?}");
        built.extend(todo.iter().map(ToString::to_string));
    }
    dir
}
