//! The CTP connection config (`configs/sim/ctp.yaml` and friends), read as real YAML.
//!
//! The original toolkit read these files with three hand-written line parsers that dropped
//! everything after a `#` (even inside quotes, truncating passwords) and flattened nesting. This
//! crate parses real YAML (`yaml_serde`): the keys live under a top-level `ctp:` mapping (a flat
//! file without `ctp:` is accepted too), quoted values keep their `#`, duplicate keys are errors,
//! and every value is typed:
//!
//! - booleans accept `true/false/1/0/yes/no` (any case), as the C++ loader did; anything else is an
//!   error naming the file, the line and the key;
//! - fronts are `tcp://host:port` ([`Front::parse`]), with the aliases `md_front`/`td_front`;
//! - the password is a [`Secret`], whose `Debug` and `Display` never show the value;
//! - unknown keys that look like a misspelling of a known key (edit distance ≤ 2) produce a
//!   [`Warning`] naming the likely key; keys outside ops (`risk_*`, `execution_*`, ...) are allowed.
//!
//! [`CtpConfig::load`] fails (exit 2) only when the file cannot be read or is not YAML; value
//! problems are collected in [`CtpConfig::problems`] so that the preflight can report them as a
//! check, and [`CtpConfig::validate`] turns them into an error for tools that need a usable config.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use evidence_core::error::excerpt;
use evidence_core::{EvidenceError, Result};
use yaml_serde::Value;

/// The default environment variable holding the password.
pub const DEFAULT_PASSWORD_ENV: &str = "CTP_SIM_PASSWORD";

/// Keys the ops tools know (the C++ loader's set, §1.1), used for misspelling warnings.
pub const KNOWN_KEYS: &[&str] = &[
    "profile",
    "environment",
    "is_production_mode",
    "enable_real_api",
    "enable_terminal_auth",
    "market_front",
    "trader_front",
    "md_front",
    "td_front",
    "broker_id",
    "user_id",
    "investor_id",
    "password",
    "password_env",
    "app_id",
    "auth_code",
    "flow_path",
    "connect_timeout_ms",
    "reconnect_max_attempts",
    "reconnect_initial_backoff_ms",
    "reconnect_max_backoff_ms",
    "query_rate_limit_qps",
    "instruments",
    "strategy_ids",
    "strategy_poll_interval_ms",
    "account_id",
    "last_login_time",
    "reserve_info",
    "offset_apply_src",
    "risk_rule_groups",
    "throttle_reject_ratio",
];

/// Prefixes of keys outside ops scope (trading and risk configuration): allowed, never warned on.
pub const OUT_OF_OPS_PREFIXES: &[&str] = &[
    "execution_",
    "slice_",
    "twap_",
    "vwap_",
    "cancel_",
    "risk_",
    "strategy_",
];

/// A secret value (a password). `Debug` and `Display` print `***`, never the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a value.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must send it (a login). Never format it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when the value is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Replace every occurrence of this secret in `text` by `***` (defence in depth for output
    /// that quotes foreign text, such as a parser's message). Secrets shorter than 3 characters
    /// are left alone: masking them would garble ordinary text.
    #[must_use]
    pub fn scrub(&self, text: &str) -> String {
        if self.0.chars().count() < 3 {
            return text.to_string();
        }
        text.replace(&self.0, "***")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// `sim` (also written `simnow`) or `prod` (also `production`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// SimNow or a local simulator.
    Sim,
    /// A broker's production fronts.
    Prod,
}

impl Environment {
    /// Parse case-insensitively; `None` for an unknown value.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "sim" | "simnow" => Some(Environment::Sim),
            "prod" | "production" => Some(Environment::Prod),
            _ => None,
        }
    }
}

/// A CTP front address, `tcp://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Front {
    /// Host name or IP address (brackets removed for IPv6).
    pub host: String,
    /// TCP port, 1–65535.
    pub port: u16,
}

impl Front {
    /// Parse `tcp://host:port`. The last `:` splits host from port. The error texts are the
    /// original preflight's.
    pub fn parse(raw: &str) -> std::result::Result<Front, String> {
        let raw = raw.trim();
        let Some(rest) = raw.strip_prefix("tcp://") else {
            return Err(format!("front must start with tcp://, got {raw}"));
        };
        let Some((host, port)) = rest.rsplit_once(':') else {
            return Err(format!("front must include host:port, got {raw}"));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("front host is empty: {raw}"));
        }
        let port: u32 = port
            .parse()
            .map_err(|_| format!("front port is not a number: {raw}"))?;
        match u16::try_from(port) {
            Ok(p) if p > 0 => Ok(Front {
                host: host.to_string(),
                port: p,
            }),
            _ => Err(format!("front port out of range: {raw}")),
        }
    }
}

impl fmt::Display for Front {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A non-fatal finding about the file (an unknown key that looks misspelt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// 1-based line of the key, when known.
    pub line: Option<usize>,
    /// The key at fault.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// A value problem (bad bool, bad number, bad front, knob out of range). The `found` text of a
/// problem on the `password` key is never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the key, when known.
    pub line: Option<usize>,
    /// The key at fault.
    pub key: String,
    /// What is wrong (expected vs found).
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Where the password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// The inline `password` key (a plaintext secret in the file).
    Inline(Secret),
    /// The environment variable named (set and non-empty).
    Env {
        /// The variable's name.
        name: String,
        /// Its value.
        value: Secret,
    },
    /// Neither: the inline password is absent or empty and the variable is unset or empty.
    Missing {
        /// The variable that was looked up.
        env_name: String,
    },
}

/// The parsed CTP config: raw scalar values (as text) by key, plus typed accessors. Its `Debug`
/// masks the secret keys (`password`, `auth_code`).
#[derive(Clone)]
pub struct CtpConfig {
    /// The file it came from.
    pub path: PathBuf,
    /// Every scalar key under `ctp:` (or at top level), its value as text, and its line.
    raw: BTreeMap<String, (String, Option<usize>)>,
    /// Misspelling warnings.
    pub warnings: Vec<Warning>,
    /// Value problems (bad bool/number/front, knob out of range).
    pub problems: Vec<Problem>,
    /// Typed values.
    pub values: Values,
}

/// Keys whose values are secrets: never formatted.
pub const SECRET_KEYS: &[&str] = &["password", "auth_code"];

impl fmt::Debug for CtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw: BTreeMap<&str, &str> = self
            .raw
            .iter()
            .map(|(k, (v, _))| {
                let shown = if SECRET_KEYS.contains(&k.as_str()) {
                    "***"
                } else {
                    v.as_str()
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("CtpConfig")
            .field("path", &self.path)
            .field("raw", &raw)
            .field("warnings", &self.warnings)
            .field("problems", &self.problems)
            .field("values", &self.values)
            .finish()
    }
}

/// Typed values with the C++ loader's defaults.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::struct_excessive_bools)]
pub struct Values {
    /// `profile` (free text).
    pub profile: Option<String>,
    /// `environment`; `None` when absent or unknown (see `environment_raw`).
    pub environment: Option<Environment>,
    /// `is_production_mode`; `None` when absent or not a boolean.
    pub is_production_mode: Option<bool>,
    /// `enable_real_api` [false].
    pub enable_real_api: bool,
    /// `enable_terminal_auth` [true].
    pub enable_terminal_auth: bool,
    /// `market_front` (or `md_front`), parsed.
    pub market_front: Option<Front>,
    /// `trader_front` (or `td_front`), parsed.
    pub trader_front: Option<Front>,
    /// `broker_id`.
    pub broker_id: Option<String>,
    /// `user_id`.
    pub user_id: Option<String>,
    /// `investor_id` (default: user_id).
    pub investor_id: Option<String>,
    /// `app_id`.
    pub app_id: Option<String>,
    /// `auth_code` (a terminal-auth code: treated as a secret).
    pub auth_code: Option<Secret>,
    /// Inline `password` (non-empty), if any.
    pub password: Option<Secret>,
    /// `password_env` (default: `CTP_SIM_PASSWORD`; also when present but empty, as the C++ loader does).
    pub password_env: String,
    /// `flow_path` (default: `./ctp_flow`).
    pub flow_path: PathBuf,
    /// `connect_timeout_ms` (default: 10000).
    pub connect_timeout_ms: i64,
    /// `reconnect_max_attempts` (default: 8).
    pub reconnect_max_attempts: i64,
    /// `reconnect_initial_backoff_ms` (default: 500).
    pub reconnect_initial_backoff_ms: i64,
    /// `reconnect_max_backoff_ms` (default: 8000).
    pub reconnect_max_backoff_ms: i64,
    /// `query_rate_limit_qps` (default: 10).
    pub query_rate_limit_qps: i64,
    /// `instruments`, comma separated (default: `SHFE.ag2406`).
    pub instruments: Vec<String>,
}

impl CtpConfig {
    /// Read and parse `path`. Errors (exit 2): unreadable file, not UTF-8, not YAML, duplicate
    /// keys, top level not a mapping. Value problems are in (default: `CtpConfig::problems`).
    pub fn load(path: &Path) -> Result<CtpConfig> {
        let bytes = std::fs::read(path).map_err(|e| EvidenceError::io("cannot read", path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            EvidenceError::parse(
                path.display().to_string(),
                line,
                "file",
                "UTF-8 text",
                "invalid UTF-8",
            )
        })?;
        Self::parse_str(&text, path)
    }

    /// Parse YAML `text` that came from `path` (used for messages only).
    pub fn parse_str(text: &str, path: &Path) -> Result<CtpConfig> {
        let label = path.display().to_string();
        let doc: Value = yaml_serde::from_str(text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            // The parser's message may quote the text near the error: never a secret, but mask
            // anything that looks like a password line anyway by not echoing the document.
            EvidenceError::parse(&label, line, "yaml", "valid YAML", yaml_message(&e))
        })?;
        let top = match doc {
            Value::Mapping(m) => m,
            Value::Null => yaml_serde::Mapping::new(),
            other => {
                return Err(EvidenceError::parse(
                    &label,
                    1,
                    "document",
                    "a mapping with a `ctp:` section",
                    kind_name(&other),
                ));
            }
        };
        let mut top = top;
        let in_section = top.contains_key("ctp");
        let index = KeyLines::of(text, in_section.then_some("ctp"));
        let section = match top.swap_remove("ctp") {
            Some(Value::Mapping(m)) => m,
            Some(Value::Null) => yaml_serde::Mapping::new(),
            Some(other) => {
                return Err(EvidenceError::parse(
                    &label,
                    index.section_line,
                    "ctp",
                    "a mapping of key: value",
                    kind_name(&other),
                ));
            }
            None => top,
        };
        let mut raw = BTreeMap::new();
        for (k, v) in &section {
            let Some(key) = k.as_str() else {
                return Err(EvidenceError::parse(
                    &label,
                    0,
                    "key",
                    "a string key",
                    kind_name(k),
                ));
            };
            let at = index.keys.get(key).copied();
            let line = at.map(|(l, _)| l);
            let Some(value) = flat_value(&label, key, v, at)? else {
                continue;
            };
            raw.insert(key.to_string(), (value, line));
        }
        let mut cfg = CtpConfig {
            path: path.to_path_buf(),
            raw,
            warnings: Vec::new(),
            problems: Vec::new(),
            values: Values::default(),
        };
        cfg.check_keys();
        cfg.values = cfg.typed();
        Ok(cfg)
    }

    /// The raw text of `key` (aliases not applied); `None` when absent.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw.get(key).map(|(v, _)| v.as_str())
    }

    /// The raw text of `key`, trying its alias (`market_front`/`md_front`,
    /// `trader_front`/`td_front`).
    #[must_use]
    pub fn get_with_alias(&self, key: &str) -> Option<&str> {
        let alias = match key {
            "market_front" => Some("md_front"),
            "trader_front" => Some("td_front"),
            _ => None,
        };
        self.get(key)
            .filter(|v| !v.trim().is_empty())
            .or_else(|| alias.and_then(|a| self.get(a)))
    }

    /// The 1-based line of `key`, when known.
    #[must_use]
    pub fn line_of(&self, key: &str) -> Option<usize> {
        self.raw.get(key).and_then(|(_, l)| *l)
    }

    /// True when `key` (or its alias) is present and non-empty.
    #[must_use]
    pub fn has(&self, key: &str) -> bool {
        self.get_with_alias(key)
            .is_some_and(|v| !v.trim().is_empty())
    }

    /// All keys present.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.raw.keys().map(String::as_str)
    }

    /// Where the password comes from: inline `password` first, then `password_env`.
    #[must_use]
    pub fn password_source(&self) -> PasswordSource {
        self.password_source_with(|name| std::env::var(name).ok())
    }

    /// [`CtpConfig::password_source`] with an injectable environment lookup.
    #[must_use]
    pub fn password_source_with(&self, env: impl Fn(&str) -> Option<String>) -> PasswordSource {
        if let Some(p) = &self.values.password {
            return PasswordSource::Inline(p.clone());
        }
        let name = self.values.password_env.clone();
        match env(&name) {
            Some(v) if !v.is_empty() => PasswordSource::Env {
                name,
                value: Secret::new(v),
            },
            _ => PasswordSource::Missing { env_name: name },
        }
    }

    /// Turn the value problems into one error (exit 2) naming file, line and key.
    pub fn validate(&self) -> Result<()> {
        match self.problems.first() {
            None => Ok(()),
            Some(p) => Err(EvidenceError::parse(
                self.path.display().to_string(),
                p.line.unwrap_or(0),
                &p.key,
                "a valid value",
                &p.message,
            )),
        }
    }

    fn check_keys(&mut self) {
        let mut warnings = Vec::new();
        for (key, (_, line)) in &self.raw {
            if KNOWN_KEYS.contains(&key.as_str()) || is_out_of_ops(key) {
                continue;
            }
            let best = KNOWN_KEYS
                .iter()
                .map(|k| (edit_distance(key, k), *k))
                .min()
                .filter(|(d, _)| *d <= 2 && *d < key.len());
            if let Some((_, k)) = best {
                warnings.push(Warning {
                    line: *line,
                    key: key.clone(),
                    message: format!("unknown key; did you mean `{k}`?"),
                });
            }
        }
        self.warnings = warnings;
    }

    /// A boolean key: absent or empty is `default`; a bad value is a problem (and `default`).
    fn boolean(
        &self,
        key: &str,
        default: Option<bool>,
        problems: &mut Vec<Problem>,
    ) -> Option<bool> {
        match self.get(key).filter(|s| !s.trim().is_empty()) {
            None => default,
            Some(s) => match parse_bool(s) {
                Some(b) => Some(b),
                None => {
                    problems.push(self.problem(
                        key,
                        format!("expected true/false/1/0/yes/no, found {}", excerpt(s)),
                    ));
                    default
                }
            },
        }
    }

    /// A positive whole-number key: absent or empty is `default`; a bad value is a problem.
    fn int(&self, key: &str, default: i64, problems: &mut Vec<Problem>) -> i64 {
        match self.get(key).map(str::trim).filter(|s| !s.is_empty()) {
            None => default,
            Some(s) => match parse_int(s) {
                Some(n) if n > 0 => n,
                Some(n) => {
                    problems.push(self.problem(key, format!("must be > 0, found {n}")));
                    n
                }
                None => {
                    problems.push(self.problem(
                        key,
                        format!("expected a whole number, found {}", excerpt(s)),
                    ));
                    default
                }
            },
        }
    }

    fn typed(&mut self) -> Values {
        let mut problems = Vec::new();
        let mut v = Values {
            profile: self.get("profile").map(str::to_string),
            ..Values::default()
        };
        if let Some(e) = self.get("environment").filter(|s| !s.trim().is_empty()) {
            v.environment = Environment::parse(e);
            if v.environment.is_none() {
                problems.push(self.problem(
                    "environment",
                    format!("expected sim|simnow|prod|production, found {}", excerpt(e)),
                ));
            }
        }
        v.is_production_mode = self.boolean("is_production_mode", None, &mut problems);
        v.enable_real_api = self
            .boolean("enable_real_api", Some(false), &mut problems)
            .unwrap_or(false);
        v.enable_terminal_auth = self
            .boolean("enable_terminal_auth", Some(true), &mut problems)
            .unwrap_or(true);
        for (key, slot) in [
            ("market_front", &mut v.market_front),
            ("trader_front", &mut v.trader_front),
        ] {
            if let Some(raw) = self.get_with_alias(key).filter(|s| !s.trim().is_empty()) {
                match Front::parse(raw) {
                    Ok(f) => *slot = Some(f),
                    Err(msg) => problems.push(self.problem(key, msg)),
                }
            }
        }
        let text = |k: &str| {
            self.get(k)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        v.broker_id = text("broker_id");
        v.user_id = text("user_id");
        v.investor_id = text("investor_id").or_else(|| v.user_id.clone());
        v.app_id = text("app_id");
        v.auth_code = self
            .get("auth_code")
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        v.password = self
            .get("password")
            .filter(|s| !s.is_empty())
            .map(Secret::new);
        v.password_env = text("password_env").unwrap_or_else(|| DEFAULT_PASSWORD_ENV.to_string());
        v.flow_path = text("flow_path").map_or_else(|| PathBuf::from("./ctp_flow"), PathBuf::from);
        v.connect_timeout_ms = self.int("connect_timeout_ms", 10_000, &mut problems);
        v.reconnect_max_attempts = self.int("reconnect_max_attempts", 8, &mut problems);
        v.reconnect_initial_backoff_ms =
            self.int("reconnect_initial_backoff_ms", 500, &mut problems);
        v.reconnect_max_backoff_ms = self.int("reconnect_max_backoff_ms", 8000, &mut problems);
        v.query_rate_limit_qps = self.int("query_rate_limit_qps", 10, &mut problems);
        if v.reconnect_initial_backoff_ms > v.reconnect_max_backoff_ms {
            problems.push(self.problem(
                "reconnect_initial_backoff_ms",
                format!(
                    "must be <= reconnect_max_backoff_ms ({}), found {}",
                    v.reconnect_max_backoff_ms, v.reconnect_initial_backoff_ms
                ),
            ));
        }
        v.instruments = self
            .get("instruments")
            .unwrap_or("SHFE.ag2406")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        self.problems = problems;
        v
    }

    fn problem(&self, key: &str, message: String) -> Problem {
        Problem {
            line: self.line_of(key),
            key: key.to_string(),
            message,
        }
    }
}

impl Default for Values {
    fn default() -> Self {
        Values {
            profile: None,
            environment: None,
            is_production_mode: None,
            enable_real_api: false,
            enable_terminal_auth: true,
            market_front: None,
            trader_front: None,
            broker_id: None,
            user_id: None,
            investor_id: None,
            app_id: None,
            auth_code: None,
            password: None,
            password_env: DEFAULT_PASSWORD_ENV.to_string(),
            flow_path: PathBuf::from("./ctp_flow"),
            connect_timeout_ms: 10_000,
            reconnect_max_attempts: 8,
            reconnect_initial_backoff_ms: 500,
            reconnect_max_backoff_ms: 8000,
            query_rate_limit_qps: 10,
            instruments: vec!["SHFE.ag2406".to_string()],
        }
    }
}

/// Booleans as the C++ loader accepted them: `true/false/1/0/yes/no`, any case.
#[must_use]
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// A plain decimal integer (optional sign); no `_`, no exponent, no `nan`.
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn is_out_of_ops(key: &str) -> bool {
    OUT_OF_OPS_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// Levenshtein distance (small strings only).
#[must_use]
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The flat text of one value of the section (`None`: a nested out-of-ops value, left out). A
/// bool or a number keeps its text as written (`True`, `1e3`, `0x1F`, `1.50`, `000001`): a
/// password or an id is text, integer fields reject what the original rejected, and messages
/// quote the file. The text is taken from this key's own line `at` in the section, and only when
/// it reads back as the same value.
fn flat_value(
    label: &str,
    key: &str,
    v: &Value,
    at: Option<(usize, &str)>,
) -> Result<Option<String>> {
    let line = at.map_or(0, |(l, _)| l);
    let as_written = || {
        at.and_then(|(_, l)| plain_scalar_text(l))
            .filter(|t| same_scalar(t, v))
    };
    Ok(Some(match v {
        Value::Null => String::new(),
        Value::Bool(b) => as_written().unwrap_or_else(|| b.to_string()),
        Value::Number(n) => as_written().unwrap_or_else(|| n.to_string()),
        Value::String(s) => s.clone(),
        Value::Sequence(items) => {
            // instruments: [a, b] is allowed as a list of scalars.
            let mut parts = Vec::new();
            for it in items {
                match it {
                    Value::String(s) => parts.push(s.clone()),
                    Value::Number(n) => parts.push(n.to_string()),
                    other => {
                        return Err(EvidenceError::parse(
                            label,
                            line,
                            key,
                            "a scalar or a list of scalars",
                            kind_name(other),
                        ));
                    }
                }
            }
            parts.join(",")
        }
        // Out-of-ops keys (risk rule groups...) may be nested: kept out of the flat view rather
        // than refusing the file.
        _ if is_out_of_ops(key) => return Ok(None),
        other => {
            return Err(EvidenceError::parse(
                label,
                line,
                key,
                "a scalar value",
                kind_name(other),
            ));
        }
    }))
}

/// Where the keys of the section the values come from are written: one pass over the text (by
/// indentation, the block of the top-level `section:` key, or the top level of a flat file),
/// so that a key of another section (`legacy: {enable_real_api: false}`) never lends its line or
/// its text, and a large file costs linear time.
struct KeyLines<'t> {
    /// Line of the `section:` key (0 when not found or flat).
    section_line: usize,
    /// First line (1-based) and its text of each key of the section.
    keys: std::collections::HashMap<&'t str, (usize, &'t str)>,
}

impl<'t> KeyLines<'t> {
    fn of(text: &'t str, section: Option<&str>) -> KeyLines<'t> {
        let mut out = KeyLines {
            section_line: 0,
            keys: std::collections::HashMap::new(),
        };
        // Inside the block we index; its keys' indentation, once seen.
        let mut inside = section.is_none();
        let mut child_indent: Option<usize> = if section.is_none() { Some(0) } else { None };
        for (i, line) in text.lines().enumerate() {
            let body = line.trim_start_matches(' ');
            if body.is_empty() || body.starts_with('#') || line.starts_with("---") {
                continue;
            }
            let indent = line.len() - body.len();
            if let Some(sec) = section
                && indent == 0
            {
                inside = !inside && mapping_key(body) == Some(sec);
                if inside {
                    out.section_line = i + 1;
                    child_indent = None;
                }
                continue;
            }
            if !inside {
                continue;
            }
            let want = *child_indent.get_or_insert(indent);
            if indent == want
                && let Some(k) = mapping_key(body)
            {
                out.keys.entry(k).or_insert((i + 1, line));
            }
        }
        out
    }
}

/// The key of a `key: value` line (plain, or quoted with `"` or `'`), without its quotes.
fn mapping_key(body: &str) -> Option<&str> {
    let (key, rest) = match body.as_bytes().first()? {
        q @ (b'"' | b'\'') => {
            let end = body[1..].find(*q as char)? + 1;
            (&body[1..end], &body[end + 1..])
        }
        _ => {
            let colon = body
                .char_indices()
                .find(|&(i, c)| {
                    c == ':' && body[i + 1..].chars().next().is_none_or(char::is_whitespace)
                })?
                .0;
            (body[..colon].trim_end(), &body[colon..])
        }
    };
    rest.trim_start().starts_with(':').then_some(key)
}

/// The plain (unquoted) scalar text after `key:` on a line, without a trailing comment.
fn plain_scalar_text(line: &str) -> Option<String> {
    let (_, v) = line.split_once(':')?;
    let v = match v.find(" #") {
        Some(i) => &v[..i],
        None => v,
    };
    let v = v.trim();
    (!v.is_empty() && !v.starts_with(['"', '\'', '[', '{'])).then(|| v.to_string())
}

/// True when `text` (a plain scalar as written) reads as `value` under YAML 1.2's core schema,
/// the schema yaml_serde applies: `True` for `true`, `000001` or `0x1`  for `1`, `1e3` for
/// `1000.0`. Cheap: no second YAML parse per value.
fn same_scalar(text: &str, value: &Value) -> bool {
    match value {
        Value::Bool(b) => match text {
            "true" | "True" | "TRUE" => *b,
            "false" | "False" | "FALSE" => !*b,
            _ => false,
        },
        Value::Number(n) => {
            let (neg, digits) = match text.strip_prefix('-') {
                Some(d) => (true, d),
                None => (false, text.strip_prefix('+').unwrap_or(text)),
            };
            let int = if let Some(h) = digits.strip_prefix("0x") {
                i128::from_str_radix(h, 16).ok()
            } else if let Some(o) = digits.strip_prefix("0o") {
                i128::from_str_radix(o, 8).ok()
            } else {
                digits.parse::<i128>().ok()
            }
            .map(|v| if neg { -v } else { v });
            match int {
                Some(v) => {
                    n.as_i64().map(i128::from) == Some(v) || n.as_u64().map(i128::from) == Some(v)
                }
                None => {
                    let f = match text.to_ascii_lowercase().as_str() {
                        ".inf" | "+.inf" => f64::INFINITY,
                        "-.inf" => f64::NEG_INFINITY,
                        ".nan" => return n.as_f64().is_some_and(f64::is_nan),
                        t => match t.parse::<f64>() {
                            Ok(f) => f,
                            Err(_) => return false,
                        },
                    };
                    n.as_f64() == Some(f)
                }
            }
        }
        _ => false,
    }
}

fn kind_name(v: &Value) -> String {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
    .to_string()
}

/// The parser's message without its trailing location (we report the line ourselves).
fn yaml_message(e: &yaml_serde::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> CtpConfig {
        CtpConfig::parse_str(text, Path::new("t.yaml")).unwrap()
    }

    /// Issue 8 item 13: a key under `ctp:` is read from `ctp:` only, its line too.
    #[test]
    fn another_section_never_lends_its_value_or_line() {
        let c = cfg(
            "legacy:\n  enable_real_api: false\n  user_id: 000001\n  connect_timeout_ms: 9\nctp:\n  # real section\n  enable_real_api: true\n  user_id: 42\n  connect_timeout_ms: 1e3\n",
        );
        assert!(c.values.enable_real_api);
        assert_eq!(c.get("user_id"), Some("42"));
        assert_eq!(c.get("connect_timeout_ms"), Some("1e3"));
        assert_eq!(c.line_of("enable_real_api"), Some(7));
        assert_eq!(c.line_of("connect_timeout_ms"), Some(9));
        // Nested keys of the section are not the section's keys.
        let c =
            cfg("ctp:\n  risk_rule_groups:\n    enable_real_api: false\n  enable_real_api: true\n");
        assert!(c.values.enable_real_api);
        assert_eq!(c.line_of("enable_real_api"), Some(4));
        // Flat files and quoted keys.
        let c = cfg("# flat\n\"enable_real_api\": true\nuser_id: 7 # c\n");
        assert!(c.values.enable_real_api);
        assert_eq!(c.line_of("user_id"), Some(3));
    }

    /// Issue 8 item 13: linear time (today 60k keys took 35 s). The figure for a 10 MB file is
    /// scripts/bench/ctp-config.sh's; here 2 MB (70k keys, minutes for a quadratic reader) in a
    /// debug build on a loaded CI box gets a generous bound.
    #[test]
    fn a_large_config_loads_in_linear_time() {
        let mut text = String::from("legacy:\n");
        let mut n = 0;
        while text.len() < 1 << 20 {
            text.push_str(&format!("  legacy_key_{n}: value {n}\n"));
            n += 1;
        }
        text.push_str("ctp:\n  enable_real_api: false\n");
        while text.len() < 2 << 20 {
            text.push_str(&format!("  risk_limit_{n}: {n}\n"));
            n += 1;
        }
        let t = std::time::Instant::now();
        let c = cfg(&text);
        let took = t.elapsed();
        assert!(!c.values.enable_real_api);
        assert!(c.get(&format!("risk_limit_{}", n - 1)).is_some());
        assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    }

    #[test]
    fn hash_inside_quotes_is_kept() {
        let c = cfg("ctp:\n  password: \"ab#cd\"  # comment\n  user_id: u # c\n");
        assert_eq!(c.values.password.as_ref().unwrap().expose(), "ab#cd");
        assert_eq!(c.get("user_id"), Some("u"));
    }

    #[test]
    fn scalars_keep_their_text() {
        // A password (or id) the YAML parser would read as a bool or a number keeps the text
        // written in the file: `True` must not become `true`, nor `000001` become `1`.
        let c = cfg("ctp:\n  password: True\n  user_id: 000001\n  app_id: NO # c\n");
        assert_eq!(c.values.password.as_ref().unwrap().expose(), "True");
        assert_eq!(c.get("user_id"), Some("000001"));
        assert_eq!(c.get("app_id"), Some("NO"));
    }

    #[test]
    fn bools_and_aliases() {
        let c = cfg(
            "ctp:\n  is_production_mode: yes\n  enable_real_api: 0\n  md_front: tcp://h:1\n  td_front: \"tcp://h:2\"\n",
        );
        assert_eq!(c.values.is_production_mode, Some(true));
        assert!(!c.values.enable_real_api);
        assert_eq!(c.values.market_front.as_ref().unwrap().port, 1);
        assert_eq!(c.values.trader_front.as_ref().unwrap().to_string(), "h:2");
        assert!(c.problems.is_empty());
        let c = cfg("ctp:\n  enable_real_api: maybe\n");
        assert_eq!(c.problems[0].key, "enable_real_api");
        assert_eq!(c.problems[0].line, Some(2));
    }

    #[test]
    fn misspelling_warns() {
        let c = cfg("ctp:\n  trader_frnt: tcp://h:1\n  risk_default_max: 3\n  zzz: 1\n");
        assert_eq!(c.warnings.len(), 1);
        assert_eq!(c.warnings[0].line, Some(2));
        assert!(c.warnings[0].message.contains("trader_front"));
    }

    #[test]
    fn fronts() {
        assert!(Front::parse("h:1").unwrap_err().contains("tcp://"));
        assert!(Front::parse("tcp://h").unwrap_err().contains("host:port"));
        assert!(Front::parse("tcp://:1").unwrap_err().contains("empty"));
        assert!(Front::parse("tcp://h:70000").unwrap_err().contains("range"));
        assert!(Front::parse("tcp://h:0").unwrap_err().contains("range"));
        assert_eq!(Front::parse("tcp://[::1]:5").unwrap().host, "::1");
    }

    #[test]
    fn knobs() {
        let c = cfg(
            "ctp:\n  connect_timeout_ms: 0\n  reconnect_initial_backoff_ms: 9000\n  query_rate_limit_qps: 1_0\n  reconnect_max_attempts: 1e3 # sci\n  user_id: 000001\n",
        );
        assert_eq!(c.get("reconnect_max_attempts"), Some("1e3"));
        assert_eq!(c.get("user_id"), Some("000001"));
        let keys: Vec<&str> = c.problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"connect_timeout_ms"));
        assert!(keys.contains(&"reconnect_initial_backoff_ms"));
        assert!(keys.contains(&"query_rate_limit_qps"));
        assert!(keys.contains(&"reconnect_max_attempts"));
    }

    #[test]
    fn secret_never_formats() {
        let s = Secret::new("hunter22");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.scrub("x hunter22 y"), "x *** y");
        let c = cfg("ctp:\n  password: hunter22\n  auth_code: code-xyz\n  user_id: u\n");
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter22") && !dbg.contains("code-xyz"),
            "{dbg}"
        );
        assert!(dbg.contains("user_id"));
    }

    #[test]
    fn password_resolution() {
        let c = cfg("ctp:\n  password_env: \"\"\n");
        assert_eq!(c.values.password_env, DEFAULT_PASSWORD_ENV);
        let got = c.password_source_with(|n| (n == "CTP_SIM_PASSWORD").then(|| "p".into()));
        assert!(matches!(got, PasswordSource::Env { .. }));
        let got = c.password_source_with(|_| Some(String::new()));
        assert!(matches!(got, PasswordSource::Missing { .. }));
    }

    #[test]
    fn errors_name_line() {
        let e = CtpConfig::parse_str("ctp:\n  a: 1\n  a: 2\n", Path::new("d.yaml")).unwrap_err();
        assert!(e.to_string().starts_with("d.yaml:"), "{e}");
        let e = CtpConfig::parse_str("ctp:\n  a: [1\n", Path::new("d.yaml")).unwrap_err();
        assert!(e.to_string().contains("yaml"), "{e}");
    }
}
