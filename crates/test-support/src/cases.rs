//! Fixture cases for the verifiers: one file per case, derived from a real drill's evidence.
//!
//! A case file (`tests/cases/<name>.case`) names a base evidence file (a real drill's output in
//! `tests/fixtures/real/`), the edits that make it the case, the arguments, and the expected exit
//! status, stdout and stderr (exactly; `{path}` stands for the derived file's path):
//!
//! ```text
//! # what the case shows (comment lines start with '#')
//! check: result              the check that must fail (stderr must name it), or pass
//! base: wal1.env
//! set: result=fail           replace the value of a key as written (appended when absent)
//! del: notes                 remove a key's line
//! append: raw line           append a raw line
//! replace: OLD => NEW        replace text anywhere in the file
//! copy: DST=SRC              give DST the value SRC has (after the edits before it)
//! shift_hours: KEY -1        move the UTC timestamp KEY by whole hours (same day)
//! args: --max-rto-seconds 10 (whitespace-separated; --evidence-file {path} comes first)
//! argv0: verify_wal_recovery_evidence   run the tool under that name (a symlink)
//! stdin: true                feed the file on stdin with --evidence-file -
//! status: 1
//! --- stdout
//! --- stderr
//! wal-verify: error: verification failed: {path}: result: result=fail: the drill failed
//! ```
//!
//! `BLESS=1 cargo test` rewrites the expected stdout and stderr of every case with what the tool
//! printed (review the diff before committing).
#![allow(clippy::missing_panics_doc)]

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::run;

/// One parsed case.
#[derive(Debug, Default)]
struct Case {
    header: Vec<String>,
    check: String,
    base: String,
    edits: Vec<(String, String)>,
    args: Vec<String>,
    argv0: Option<String>,
    stdin: bool,
    status: i32,
    stdout: String,
    stderr: String,
}

fn parse(path: &Path) -> Case {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (head, rest) = text
        .split_once("--- stdout\n")
        .unwrap_or_else(|| panic!("{}: no '--- stdout' line", path.display()));
    let (stdout, stderr) = rest
        .split_once("--- stderr\n")
        .unwrap_or_else(|| panic!("{}: no '--- stderr' line", path.display()));
    let mut c = Case {
        stdout: stdout.to_string(),
        stderr: stderr.to_string(),
        status: -1,
        ..Case::default()
    };
    for line in head.lines() {
        c.header.push(line.to_string());
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(": ")
            .or_else(|| line.strip_suffix(':').map(|k| (k, "")))
            .unwrap_or_else(|| panic!("{}: bad line {line:?}", path.display()));
        match k {
            "check" => c.check = v.to_string(),
            "base" => c.base = v.to_string(),
            "set" | "del" | "append" | "replace" | "copy" | "shift_hours" => {
                c.edits.push((k.to_string(), v.to_string()));
            }
            "args" => c.args = v.split_whitespace().map(str::to_string).collect(),
            "argv0" => c.argv0 = Some(v.to_string()),
            "stdin" => c.stdin = v == "true",
            "status" => {
                c.status = v
                    .parse()
                    .unwrap_or_else(|_| panic!("{}: status", path.display()))
            }
            _ => panic!("{}: unknown directive {k:?}", path.display()),
        }
    }
    assert!(!c.base.is_empty(), "{}: no base", path.display());
    assert!(c.status >= 0, "{}: no status", path.display());
    c
}

fn apply(base: &str, edits: &[(String, String)], case: &Path) -> String {
    let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
    let key_of = |l: &str| l.split_once('=').map(|(k, _)| k.trim().to_string());
    for (op, arg) in edits {
        match op.as_str() {
            "set" => {
                let (k, v) = arg
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}: set needs KEY=VALUE", case.display()));
                let new = format!("{k}={v}");
                match lines.iter_mut().find(|l| key_of(l).as_deref() == Some(k)) {
                    Some(l) => *l = new,
                    None => lines.push(new),
                }
            }
            "del" => {
                let before = lines.len();
                lines.retain(|l| key_of(l).as_deref() != Some(arg.as_str()));
                assert!(
                    lines.len() < before,
                    "{}: del {arg}: no such key",
                    case.display()
                );
            }
            "append" => lines.push(arg.clone()),
            "copy" => {
                let (dst, src) = arg
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}: copy needs DST=SRC", case.display()));
                let value = lines
                    .iter()
                    .find(|l| key_of(l).as_deref() == Some(src))
                    .and_then(|l| l.split_once('=').map(|(_, v)| v.to_string()))
                    .unwrap_or_else(|| panic!("{}: copy: no key {src}", case.display()));
                let l = lines
                    .iter_mut()
                    .find(|l| key_of(l).as_deref() == Some(dst))
                    .unwrap_or_else(|| panic!("{}: copy: no key {dst}", case.display()));
                *l = format!("{dst}={value}");
            }
            "shift_hours" => {
                let (k, h) = arg
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("{}: shift_hours needs KEY N", case.display()));
                let h: i32 = h.parse().expect("hours");
                let l = lines
                    .iter_mut()
                    .find(|l| key_of(l).as_deref() == Some(k))
                    .unwrap_or_else(|| panic!("{}: shift_hours: no key {k}", case.display()));
                let (_, v) = l.split_once('=').expect("key=value");
                // YYYY-MM-DDTHH:...: the hour is at 11..13.
                let hour: i32 = v
                    .get(11..13)
                    .and_then(|x| x.parse().ok())
                    .expect("a UTC timestamp");
                let new = hour + h;
                assert!(
                    (0..24).contains(&new),
                    "{}: shift_hours leaves the day",
                    case.display()
                );
                *l = format!("{k}={}{new:02}{}", &v[..11], &v[13..]);
            }
            "replace" => {
                let (old, new) = arg
                    .split_once(" => ")
                    .unwrap_or_else(|| panic!("{}: replace needs OLD => NEW", case.display()));
                let text = lines.join("\n");
                assert!(
                    text.contains(old),
                    "{}: replace: {old:?} not found",
                    case.display()
                );
                lines = text.replace(old, new).lines().map(str::to_string).collect();
            }
            _ => unreachable!(),
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Run every `tests/cases/*.case` of the crate at `manifest_dir` against `bin`; panic listing every
/// case whose status, stdout or stderr differ (or rewrite them with `BLESS=1`). Returns the number
/// of cases run.
pub fn run_cases(bin: &str, manifest_dir: &str) -> usize {
    let dir = Path::new(manifest_dir).join("tests/cases");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "case"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    let bless = std::env::var_os("BLESS").is_some();
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut failures = String::new();
    for file in &files {
        let c = parse(file);
        let name = file
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let base_path = Path::new(manifest_dir)
            .join("tests/fixtures/real")
            .join(&c.base);
        let base = fs::read_to_string(&base_path)
            .unwrap_or_else(|e| panic!("{}: {e}", base_path.display()));
        let text = apply(&base, &c.edits, file);
        let path = tmp.path().join(format!("{name}.env"));
        fs::write(&path, &text).expect("write case");
        let label = if c.stdin {
            "-".to_string()
        } else {
            path.display().to_string()
        };
        let mut args: Vec<String> = vec!["--evidence-file".into(), label.clone()];
        args.extend(c.args.iter().cloned());
        let exe = match &c.argv0 {
            Some(a) => {
                let link = tmp.path().join(a);
                if !link.exists() {
                    std::os::unix::fs::symlink(bin, &link).expect("symlink");
                }
                link.display().to_string()
            }
            None => bin.to_string(),
        };
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = run(&exe, &argv, c.stdin.then_some(text.as_str()), None);
        let norm = |s: &str| {
            if c.stdin {
                s.to_string()
            } else {
                s.replace(&label, "{path}")
            }
        };
        let (out, err) = (norm(&r.stdout), norm(&r.stderr));
        if bless {
            let mut t = c.header.join("\n");
            t.push('\n');
            let t = t.lines().filter(|l| !l.starts_with("status:")).fold(
                String::new(),
                |mut acc, l| {
                    acc.push_str(l);
                    acc.push('\n');
                    acc
                },
            );
            let new = format!(
                "{t}status: {}\n--- stdout\n{out}--- stderr\n{err}",
                r.code.unwrap_or(-1)
            );
            fs::write(file, new).expect("bless");
            continue;
        }
        let mut why = Vec::new();
        if r.code != Some(c.status) {
            why.push(format!("status {:?}, expected {}", r.code, c.status));
        }
        if out != c.stdout {
            why.push(format!("stdout:\n{out}--- expected:\n{}", c.stdout));
        }
        if err != c.stderr {
            why.push(format!("stderr:\n{err}--- expected:\n{}", c.stderr));
        }
        if c.status != 0 && !c.check.is_empty() && !err.contains(&format!(": {}: ", c.check)) {
            why.push(format!("stderr does not name the check {:?}", c.check));
        }
        if !why.is_empty() {
            let _ = writeln!(failures, "== {}\n{}\n", file.display(), why.join("\n"));
        }
    }
    assert!(failures.is_empty(), "failing cases:\n{failures}");
    files.len()
}

/// Run `bin` with `args` and its stdout a pipe whose reading end is already closed (as with
/// `| head -0`), so its first write fails with EPIPE; return the exit code and stderr.
pub fn run_with_closed_stdout(bin: &str, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = std::process::Command::new(bin)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
