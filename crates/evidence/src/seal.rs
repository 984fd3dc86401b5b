//! `evidence seal` / `check-seal`: tamper evidence for a results folder.
//!
//! A seal is `RESULTS_DIR/seals/seal-NNNNNN.json`: the SHA-256 and size of every file in the folder
//! (recursively, except the `seals/` folder and `evidence prom`'s state file) and the SHA-256 of the
//! previous seal file, so the seals form a chain. `check-seal` verifies the chain from the first
//! seal, then that the folder holds exactly the files of the latest seal with the same bytes: a
//! changed byte, a removed file or an added file is reported, and the exit status is 1.

use std::path::{Path, PathBuf};

use evidence_core::cli;
use evidence_core::provenance::{Provenance, sha256_hex};
use evidence_core::{EvidenceError, Exit, Result};
use serde::{Deserialize, Serialize};

use crate::{CheckSealArgs, SealArgs, rel};

const SEALS: &str = "seals";
const STATE: &str = ".evidence-prom-state.json";

/// One sealed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedFile {
    /// Path relative to the results folder.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// The previous seal in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSeal {
    /// File name under `seals/`.
    pub file: String,
    /// SHA-256 of that file's bytes.
    pub sha256: String,
}

/// A seal file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seal {
    /// `evidence.seal`.
    pub kind: String,
    /// 1, 2, ...
    pub seq: u64,
    /// The drill this seal closes.
    pub drill_id: Option<String>,
    /// The previous seal, or null for the first.
    pub previous: Option<PreviousSeal>,
    /// Every file, sorted by path.
    pub files: Vec<SealedFile>,
    /// Who, where, when.
    pub provenance: Provenance,
}

fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let p = e.path();
        let t = e.file_type()?;
        let r = rel(base, &p);
        if r == SEALS || r == STATE {
            continue;
        }
        if t.is_dir() {
            walk(&p, base, out)?;
        } else {
            // Symlinks, sockets and the like are listed too (a link is sealed by its target's bytes).
            out.push(p);
        }
    }
    Ok(())
}

fn current_files(dir: &Path) -> Result<Vec<SealedFile>> {
    let mut paths = Vec::new();
    walk(dir, dir, &mut paths).map_err(|e| EvidenceError::io("cannot read", dir, e))?;
    let mut files = Vec::new();
    for p in paths {
        let bytes =
            std::fs::read(&p).map_err(|e| EvidenceError::io("cannot read", p.as_path(), e))?;
        files.push(SealedFile {
            path: rel(dir, &p),
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The seal files in order (by sequence number in the name).
fn seal_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let sd = dir.join(SEALS);
    if !sd.is_dir() {
        return Ok(Vec::new());
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(&sd)
        .map_err(|e| EvidenceError::io("cannot read", sd.as_path(), e))?
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seal-") && n.ends_with(".json"))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Problems found in the chain (empty when intact), and the latest seal.
fn check_chain(dir: &Path) -> Result<(Vec<String>, Option<Seal>)> {
    let mut problems = Vec::new();
    let mut prev: Option<(String, String)> = None;
    let mut last = None;
    for (i, p) in seal_files(dir)?.iter().enumerate() {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let bytes =
            std::fs::read(p).map_err(|e| EvidenceError::io("cannot read", p.as_path(), e))?;
        let seal: Seal = match serde_json::from_slice(&bytes) {
            Ok(s) => s,
            Err(e) => {
                problems.push(format!("seals/{name}: not a seal ({e})"));
                prev = Some((name, sha256_hex(&bytes)));
                continue;
            }
        };
        let want_seq = i as u64 + 1;
        if seal.seq != want_seq || name != format!("seal-{want_seq:06}.json") {
            problems.push(format!(
                "seals/{name}: sequence {} where {want_seq} was expected (a seal was removed or renamed)",
                seal.seq
            ));
        }
        let expected = prev.as_ref().map(|(f, h)| PreviousSeal {
            file: f.clone(),
            sha256: h.clone(),
        });
        if seal.previous != expected {
            problems.push(format!(
                "seals/{name}: chain broken: it names {:?} as the previous seal, the folder holds {:?}",
                seal.previous.as_ref().map(|p| (&p.file, &p.sha256)),
                expected.as_ref().map(|p| (&p.file, &p.sha256))
            ));
        }
        prev = Some((name, sha256_hex(&bytes)));
        last = Some(seal);
    }
    Ok((problems, last))
}

pub(crate) fn seal(a: &SealArgs) -> Result<Exit> {
    let dir = a.dir.dir()?;
    let (problems, last) = check_chain(&dir)?;
    if !problems.is_empty() {
        for p in &problems {
            cli::info(&format!("FAIL {p}"));
        }
        return Err(EvidenceError::failed(
            "the existing seal chain is broken; not sealing over it (investigate with check-seal)",
        ));
    }
    let mut prov = Provenance::start(
        "evidence",
        env!("CARGO_PKG_VERSION"),
        a.operator.as_deref(),
        false,
    );
    let files = current_files(&dir)?;
    let seq = last.as_ref().map_or(1, |s| s.seq + 1);
    let previous = match seal_files(&dir)?.last() {
        Some(p) => Some(PreviousSeal {
            file: p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: sha256_hex(
                &std::fs::read(p).map_err(|e| EvidenceError::io("cannot read", p.as_path(), e))?,
            ),
        }),
        None => None,
    };
    prov.finish();
    let s = Seal {
        kind: "evidence.seal".into(),
        seq,
        drill_id: a.drill_id.clone(),
        previous,
        files,
        provenance: prov,
    };
    let mut json = serde_json::to_string_pretty(&s)
        .map_err(|e| EvidenceError::failed(format!("cannot serialise the seal: {e}")))?;
    json.push('\n');
    let path = dir.join(SEALS).join(format!("seal-{seq:06}.json"));
    evidence_core::io::write_atomic(&path, json.as_bytes())?;
    cli::stdout_write(&format!(
        "sealed {} files: {}\n",
        s.files.len(),
        path.display()
    ))?;
    Ok(Exit::Pass)
}

pub(crate) fn check(a: &CheckSealArgs) -> Result<Exit> {
    let dir = a.dir.dir()?;
    let (mut problems, last) = check_chain(&dir)?;
    let Some(last) = last else {
        if problems.is_empty() {
            return Err(EvidenceError::failed(format!(
                "no seal in {} (run `evidence seal` after a drill)",
                dir.join(SEALS).display()
            )));
        }
        return report(&problems, 0, 0);
    };
    let now = current_files(&dir)?;
    for f in &last.files {
        match now.iter().find(|n| n.path == f.path) {
            None => problems.push(format!("{}: removed", f.path)),
            Some(n) if n.sha256 != f.sha256 || n.size != f.size => problems.push(format!(
                "{}: changed (sealed {} bytes sha256 {}, now {} bytes sha256 {})",
                f.path, f.size, f.sha256, n.size, n.sha256
            )),
            Some(_) => {}
        }
    }
    for n in &now {
        if !last.files.iter().any(|f| f.path == n.path) {
            problems.push(format!("{}: added after seal {}", n.path, last.seq));
        }
    }
    report(&problems, last.seq, last.files.len())
}

fn report(problems: &[String], seq: u64, files: usize) -> Result<Exit> {
    let mut out = String::new();
    for p in problems {
        out.push_str(&format!("[FAIL] {p}\n"));
    }
    if problems.is_empty() {
        out.push_str(&format!(
            "[PASS] seal chain intact; {files} files match seal {seq}\noverall: PASS\n"
        ));
    } else {
        out.push_str("overall: FAIL\n");
    }
    cli::stdout_write(&out)?;
    Ok(Exit::pass_if(problems.is_empty()))
}
