//! `ctp_login` (`--check-login`): log in to both fronts through the vendor CTP API
//! (crates/ctp-api, the same code as `ctp-probe --mode ctp-api`) and report how long each step
//! took: OnFrontConnected, ReqAuthenticate, ReqUserLogin, and a trading-account query on the
//! trader front.

use std::fs::File;
use std::path::PathBuf;

use ctp_api::{ApiDir, Knobs, Login, Side, login_once};
use ctp_config::CtpConfig;
use evidence_core::{EvidenceError, Result};

use crate::Cli;

/// Where the libraries' stdout goes: `--api-log`, else `<runtime_dir>/ctp_api_stdout.log`.
fn api_log(cli: &Cli) -> PathBuf {
    cli.api_log
        .clone()
        .unwrap_or_else(|| cli.runtime_dir.join("ctp_api_stdout.log"))
}

/// When the login check will run: move fd 1 (the libraries print to it) to the API log and return
/// the original stdout, for the report.
pub(crate) fn capture(cli: &Cli) -> Result<Option<File>> {
    if !cli.check_login || cli.skip_network_check {
        return Ok(None);
    }
    ctp_api::capture_stdout(&api_log(cli))
        .map(Some)
        .map_err(EvidenceError::failed)
}

/// (ok, detail) of the login check. The detail never holds a secret (the password and the
/// auth code go only into the login requests).
pub(crate) fn check(cli: &Cli, cfg: &CtpConfig) -> (bool, String) {
    let (login, _) = match Login::from_config(cfg) {
        Ok(l) => l,
        Err(e) => return (false, e),
    };
    let v = &cfg.values;
    let (Some(trader), Some(market)) = (&v.trader_front, &v.market_front) else {
        return (false, "no valid trader_front and market_front".into());
    };
    let dir = ApiDir::new(&cli.ctp_lib_dir);
    let knobs = Knobs::from_config(cfg);
    let production = v.is_production_mode.unwrap_or(false);
    let mut ok = true;
    let mut parts = Vec::new();
    for (side, front) in [(Side::Trader, trader), (Side::Market, market)] {
        let name = side.name();
        let version = match dir.load(side) {
            Ok(i) => i.version,
            Err(e) => {
                ok = false;
                parts.push(format!("{name}: {e}"));
                continue;
            }
        };
        let t = dir.target(side, &format!("tcp://{front}"), &v.flow_path, production);
        match login_once(&t, &login, &knobs, side == Side::Trader) {
            Ok(r) => {
                let mut s = format!("{name} {front}: connected {} ms", r.up.connect_ms);
                if let Some(a) = r.up.auth_ms {
                    s.push_str(&format!(", authenticate {a} ms"));
                }
                s.push_str(&format!(
                    ", login {} ms (trading day {}, API {version})",
                    r.up.login_ms, r.up.trading_day
                ));
                if let Some(q) = r.query_ms {
                    s.push_str(&format!(", account query {q} ms"));
                }
                parts.push(s);
            }
            Err(d) => {
                ok = false;
                parts.push(format!("{name} {front}: {} ({})", d.reason, d.detail));
            }
        }
    }
    (ok, parts.join("; "))
}
