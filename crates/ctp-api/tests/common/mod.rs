//! Test fixtures of ctp-api, built on first use and cached under the target folder:
//!
//! - `vendor/`: SFIT's real CTP v6.7.7 `thosttraderapi_se.so` and `thostmduserapi_se.so`, copied
//!   from the rtpx 1.0.5 crate (fetched from crates.io by `cargo fetch` on
//!   tests/vendor-crates/Cargo.toml; nothing proprietary is committed);
//! - `localctp/`: LocalCTP (MIT, from the ctp-rs 0.3.2 crate) built with g++/gcc against ctp2rs's
//!   v6.7.11 headers as `thosttraderapi_se.so`, plus tests/fixtures/md_stub.cpp as
//!   `thostmduserapi_se.so` (LocalCTP has no market-data API).
//!
//! Also used by ctp-probe's and ctp-preflight's tests (`#[path]`): paths are relative to
//! crates/ctp-api whichever crate includes it.
//!
//! A missing tool or an offline registry makes `fixtures()` return `Err`: the tests then print a
//! SKIP line, except under CI=true, where they fail.
#![allow(dead_code)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The non-library files of an API folder (from ctp2rs's copy of SFIT's v6.7.11 package).
const API_FILES: [&str; 3] = ["ThostFtdcTraderApi.h", "ThostFtdcMdApi.h", "error.xml"];

pub struct Fixtures {
    /// API folder with the real vendor libraries (v6.7.7).
    pub vendor: PathBuf,
    /// API folder with LocalCTP (trader) and the md stub (market).
    pub localctp: PathBuf,
}

/// The fixtures, or why they cannot be had (the test then skips, or fails under CI).
pub fn fixtures(test: &str) -> Option<&'static Fixtures> {
    static F: OnceLock<Result<Fixtures, String>> = OnceLock::new();
    match F.get_or_init(build) {
        Ok(f) => Some(f),
        Err(e) => {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "{test}: the ctp-api fixtures could not be built under CI: {e}"
            );
            test_support::skip(test, e);
            None
        }
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .join(" | ")
        ))
    }
}

/// Folder of each named package, from `cargo metadata` on the vendor manifest.
fn package_dirs(names: &[&str]) -> Result<Vec<PathBuf>, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../ctp-api/tests/vendor-crates/Cargo.toml"
    );
    run(
        Command::new(&cargo).args(["fetch", "--locked", "--manifest-path", manifest]),
        "cargo fetch (tests/vendor-crates)",
    )?;
    let out = Command::new(&cargo)
        .args([
            "metadata",
            "--locked",
            "--format-version",
            "1",
            "--manifest-path",
            manifest,
        ])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))?;
    let pkgs = v["packages"]
        .as_array()
        .ok_or("cargo metadata: no packages")?;
    names
        .iter()
        .map(|n| {
            pkgs.iter()
                .find(|p| p["name"] == *n)
                .and_then(|p| p["manifest_path"].as_str())
                .and_then(|m| Path::new(m).parent())
                .map(Path::to_path_buf)
                .ok_or_else(|| format!("cargo metadata: no package {n}"))
        })
        .collect()
}

fn build() -> Result<Fixtures, String> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ctp-api-fixtures");
    fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    // One builder at a time across the test binaries.
    let lock = File::create(root.join(".lock")).map_err(|e| e.to_string())?;
    lock.lock().map_err(|e| format!("lock: {e}"))?;
    let vendor = root.join("vendor");
    let localctp = root.join("localctp");
    let done =
        |d: &Path| d.join(ctp_api::TRADER_LIB).is_file() && d.join(ctp_api::MARKET_LIB).is_file();
    // LocalCTP's folder is a complete API folder (as ctp-preflight's ctp_lib_files wants it).
    let localctp_done = |d: &Path| done(d) && API_FILES.iter().all(|f| d.join(f).is_file());
    if done(&vendor) && localctp_done(&localctp) {
        return Ok(Fixtures { vendor, localctp });
    }
    let dirs = package_dirs(&["rtpx", "ctp-rs", "ctp2rs"])?;
    let (rtpx, ctprs, ctp2rs) = (&dirs[0], &dirs[1], &dirs[2]);
    if !done(&vendor) {
        let tmp = root.join("vendor.tmp");
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(|e| e.to_string())?;
        for lib in [ctp_api::TRADER_LIB, ctp_api::MARKET_LIB] {
            fs::copy(rtpx.join("libs/ctp/linux64").join(lib), tmp.join(lib))
                .map_err(|e| format!("copy {lib} from rtpx: {e}"))?;
        }
        let _ = fs::remove_dir_all(&vendor);
        fs::rename(&tmp, &vendor).map_err(|e| e.to_string())?;
    }
    if !localctp_done(&localctp) {
        build_localctp(ctprs, ctp2rs, &root, &localctp)?;
    }
    Ok(Fixtures { vendor, localctp })
}

/// LocalCTP with the commands of ctp-rs 0.3.2's build.rs (its Linux branch), compiled in
/// parallel; then the md stub.
fn build_localctp(ctprs: &Path, ctp2rs: &Path, root: &Path, out: &Path) -> Result<(), String> {
    for tool in ["g++", "gcc"] {
        if !test_support::have_command(tool) {
            return Err(format!(
                "{tool} is not installed (scripts/setup.sh installs it)"
            ));
        }
    }
    let src = ctprs.join("localctp");
    let headers = ctp2rs.join("api/ctp/v6.7.11/v6.7.11_20250617_api_traderapi_se_linux64");
    let tmp = root.join("localctp.tmp");
    let _ = fs::remove_dir_all(&tmp);
    let obj = tmp.join("obj");
    fs::create_dir_all(&obj).map_err(|e| e.to_string())?;
    let inc = [
        format!("-I{}", src.join("auto_generated_code").display()),
        format!("-I{}", headers.display()),
    ];
    let cpp = [
        "LocalCTP.cpp",
        "LocalTraderApi.cpp",
        "CSqliteHandler.cpp",
        "LeeDateTime.cpp",
        "dllmain.cpp",
        "Properties.cpp",
        "stdafx.cpp",
        "auto_generated_code/CTPSQLWrapper.cpp",
    ];
    let mut children = Vec::new();
    let mut objs = Vec::new();
    for s in cpp {
        let o = obj.join(
            Path::new(s)
                .with_extension("o")
                .file_name()
                .unwrap_or_default(),
        );
        let child = Command::new("g++")
            .args(["-c", "-fPIC", "-std=c++11", "-w", "-DLOCALCTP_EXPORTS"])
            .args(&inc)
            .arg("-o")
            .arg(&o)
            .arg(src.join(s))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("g++: {e}"))?;
        children.push((s, child));
        objs.push(o);
    }
    let sqlite_o = obj.join("sqlite3.o");
    children.push((
        "sqlite3.c",
        Command::new("gcc")
            .args(["-c", "-fPIC", "-w", "-o"])
            .arg(&sqlite_o)
            .arg(src.join("sqlite/sqlite3.c"))
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("gcc: {e}"))?,
    ));
    objs.push(sqlite_o);
    let mut failed = Vec::new();
    for (s, c) in children {
        let o = c.wait_with_output().map_err(|e| e.to_string())?;
        if !o.status.success() {
            failed.push(format!(
                "{s}: {}",
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .take(3)
                    .collect::<Vec<_>>()
                    .join(" | ")
            ));
        }
    }
    if !failed.is_empty() {
        return Err(format!("building LocalCTP failed: {}", failed.join("; ")));
    }
    run(
        Command::new("g++")
            .args(["-shared", "-o"])
            .arg(tmp.join(ctp_api::TRADER_LIB))
            .args(&objs)
            .args(["-pthread", "-ldl"]),
        "linking LocalCTP",
    )?;
    run(
        Command::new("g++")
            .args(["-shared", "-fPIC", "-std=c++11", "-o"])
            .arg(tmp.join(ctp_api::MARKET_LIB))
            .arg(format!("-I{}", headers.display()))
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../ctp-api/tests/fixtures/md_stub.cpp"
            )),
        "building the md stub",
    )?;
    for f in API_FILES {
        fs::copy(headers.join(f), tmp.join(f)).map_err(|e| format!("copy {f}: {e}"))?;
    }
    let _ = fs::remove_dir_all(&obj);
    let _ = fs::remove_dir_all(out);
    fs::rename(&tmp, out).map_err(|e| e.to_string())
}
