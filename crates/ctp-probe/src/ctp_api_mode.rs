//! `--mode ctp-api`: each front through the vendor CTP API (crates/ctp-api): the library's
//! OnFrontConnected, ReqAuthenticate, ReqUserLogin, OnFrontDisconnected with its reason code.
//! ctp-api's watch loop owns the reconnection (release, backoff, re-create); this module only turns
//! its events into the probe's `[health]` lines and JSONL events, the same as the other modes.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ctp_api::{ApiDir, Knobs, Login, Side, Target, WatchEvent};
use ctp_config::CtpConfig;
use evidence_core::cli;
use evidence_core::{EvidenceError, Result};
use serde_json::json;

use crate::{Front, Loss, Shared};

/// What the ctp-api mode needs, checked before anything runs.
pub(crate) struct ApiMode {
    targets: [Target; 2],
    login: Login,
    knobs: Knobs,
    versions: [String; 2],
    /// Where the libraries' stdout goes.
    pub(crate) api_log: PathBuf,
}

/// Whether `--mode auto` picks the ctp-api mode: the config enables the real API and both
/// libraries are in the API folder.
pub(crate) fn auto_selects(cfg: &CtpConfig, lib_dir: &Path) -> bool {
    cfg.values.enable_real_api && ApiDir::new(lib_dir).present()
}

/// Load both libraries (a missing or foreign one is a usage error naming the file), the login
/// (the password from `password_env`), the flow folders.
pub(crate) fn settings(
    cfg: &CtpConfig,
    label: &str,
    lib_dir: &Path,
    api_log: Option<&Path>,
    addrs: &[String; 2],
) -> Result<ApiMode> {
    let (login, inline) = Login::from_config(cfg).map_err(EvidenceError::usage)?;
    if inline {
        cli::warn(&format!(
            "{label}: the config holds a plaintext password; prefer password_env"
        ));
    }
    let dir = ApiDir::new(lib_dir);
    let mut versions = [String::new(), String::new()];
    for (i, side) in Side::BOTH.into_iter().enumerate() {
        let info = dir.load(side).map_err(|e| {
            EvidenceError::usage(format!(
                "--mode ctp-api: {e} (--ctp-lib-dir {})",
                lib_dir.display()
            ))
        })?;
        versions[i] = info.version;
    }
    let v = &cfg.values;
    let production = v.is_production_mode.unwrap_or(false);
    let targets = [
        dir.target(
            Side::Trader,
            &format!("tcp://{}", addrs[0]),
            &v.flow_path,
            production,
        ),
        dir.target(
            Side::Market,
            &format!("tcp://{}", addrs[1]),
            &v.flow_path,
            production,
        ),
    ];
    for t in &targets {
        ctp_api::make_flow_dir(&t.flow_dir).map_err(EvidenceError::usage)?;
    }
    Ok(ApiMode {
        targets,
        login,
        knobs: Knobs::from_config(cfg),
        versions,
        api_log: api_log.map_or_else(|| v.flow_path.join("api_stdout.log"), Path::to_path_buf),
    })
}

/// Move fd 1 (the libraries' `printf`s) to the API log; the original stdout, for the health
/// lines.
pub(crate) fn capture(m: &ApiMode) -> Result<File> {
    ctp_api::capture_stdout(&m.api_log).map_err(EvidenceError::failed)
}

/// The API versions, for `probe.start`.
pub(crate) fn versions(m: &ApiMode) -> serde_json::Value {
    json!({"trader": m.versions[0], "market": m.versions[1]})
}

/// One front's thread in ctp-api mode.
pub(crate) fn front_loop(sh: &Shared, f: Front, m: &ApiMode) {
    let stop = |d: Duration| sh.wait(d);
    loop {
        let r = ctp_api::watch(
            &m.targets[f.idx()],
            &m.login,
            &m.knobs,
            &stop,
            &mut |e| match e {
                WatchEvent::Attempt { n, backoff_ms } => sh.attempt(f, n, backoff_ms),
                WatchEvent::Up(u) => sh.front_up(
                    f,
                    "probe.login",
                    json!({"attempt": u.attempt, "session_id": u.session_id,
                           "front_id": u.front_id, "trading_day": u.trading_day,
                           "connect_ms": u.connect_ms, "auth_ms": u.auth_ms,
                           "login_ms": u.login_ms, "total_ms": u.total_ms,
                           "api_version": m.versions[f.idx()]}),
                ),
                WatchEvent::Down(d) => {
                    sh.front_down(f, &Loss::new(d.reason, d.detail), d.attempt);
                }
                WatchEvent::HeartBeatWarning { seconds } => cli::warn(&format!(
                    "{} front: heartbeat warning (OnHeartBeatWarning: nothing received for {seconds} s)",
                    f.name()
                )),
            },
        );
        match r {
            Ok(()) => return,
            Err(e) => {
                // The API object could not be created (the flow folder went away, ...): report it
                // as a failed attempt and try again after the max backoff.
                sh.front_down(f, &Loss::new("api_error", e), Some(0));
                if sh.wait(m.knobs.max_backoff) {
                    return;
                }
            }
        }
    }
}
