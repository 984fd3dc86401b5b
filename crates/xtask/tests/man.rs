//! The committed man pages (docs/man) are what the clap definitions generate now, and every tool
//! in the workspace has one; the completions generate for every shell.
#![allow(clippy::unwrap_used, reason = "test helpers panic on unexpected state")]

use std::path::Path;

const BIN: &str = env!("CARGO_BIN_EXE_xtask");

#[test]
fn committed_man_pages_are_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/man");
    test_support::run(
        BIN,
        &["check-man", "--dir", dir.to_str().unwrap()],
        None,
        None,
    )
    .code(0)
    .stdout_is("")
    .stderr_is("");
}

#[test]
fn every_tool_crate_is_listed() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for e in std::fs::read_dir(crates).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if name != "xtask" && p.join("src/main.rs").is_file() {
            assert!(
                xtask::TOOLS.iter().any(|(n, _)| *n == name),
                "{name} has a binary but no entry in xtask::TOOLS (man page, completions)"
            );
        }
    }
}

#[test]
fn completions_and_a_stale_page_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    test_support::run(
        BIN,
        &["completions", "--out-dir", tmp.path().to_str().unwrap()],
        None,
        None,
    )
    .code(0)
    .stdout_is("");
    let bash = std::fs::read_to_string(tmp.path().join("bash/wal-drill")).unwrap();
    assert!(bash.contains("--max-rto-seconds"), "{bash}");
    assert!(tmp.path().join("zsh/_evidence").is_file());
    assert!(tmp.path().join("fish/render-systemd.fish").is_file());

    let man = tmp.path().join("man");
    test_support::run(
        BIN,
        &["man", "--out-dir", man.to_str().unwrap()],
        None,
        None,
    )
    .code(0);
    let page = std::fs::read_to_string(man.join("wal-drill.1")).unwrap();
    assert!(
        page.contains(".TH wal-drill 1"),
        "{}",
        &page[..200.min(page.len())]
    );
    std::fs::write(man.join("wal-verify.1"), "old\n").unwrap();
    std::fs::write(man.join("gone.1"), "old\n").unwrap();
    std::fs::remove_file(man.join("evidence.1")).unwrap();
    let r = test_support::run(
        BIN,
        &["check-man", "--dir", man.to_str().unwrap()],
        None,
        None,
    );
    r.code(1).stderr_is("");
    let d = man.display();
    assert_eq!(
        r.stdout,
        format!(
            "{d}/evidence.1: missing\n{d}/gone.1: no such tool\n{d}/wal-verify.1: stale\nrun `make man` and commit docs/man\n"
        )
    );
}
