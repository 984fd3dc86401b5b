//! The inventory file (`configs/multihost/inventory.yaml`): the hosts of a multi-host drill, their
//! addresses, the services (roles) each runs, and the command prefix that reaches each host.
//!
//! ```yaml
//! backend: netns            # netns (namespaces this tool creates) or ssh (hosts that exist)
//! switch: fo-sw             # netns: the namespace holding the bridge
//! prefix_len: 24            # netns: the hosts' subnet
//! base_port: 17000          # service ports are base + stack-core's offsets
//! client_host: h3           # netns: the namespace the drill's clients run in
//! run_dir: runtime/multihost
//! hosts:
//!   - name: h1
//!     address: 198.18.0.1
//!     roles: [redis-primary, redis-sentinel-1, timescale-primary]
//!     prefix: [ip, netns, exec, h1]      # ssh: [ssh, ops@10.0.0.5]
//! ```
//!
//! Unknown keys are errors. Every Redis/PostgreSQL/Sentinel service is placed exactly once. With the
//! netns backend, addresses must be in 198.18.0.0/15 (the benchmarking range), never 192.0.2.0/24
//! (this machine's eth0); host names are short (they name veth devices).

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use evidence_core::provenance::sha256_hex;
use evidence_core::{EvidenceError, Result};
use serde::Deserialize;

/// The services a multi-host inventory places (stack-core's names).
pub const SERVICES: [&str; 7] = [
    "redis-primary",
    "redis-replica",
    "redis-sentinel-1",
    "redis-sentinel-2",
    "redis-sentinel-3",
    "timescale-primary",
    "timescale-replica",
];

/// Which backend reaches the hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Network namespaces on one machine (created and deleted by the tool; root).
    Netns,
    /// Hosts that exist, reached through each host's command prefix (`ssh ops@host`).
    Ssh,
    /// The original's multi-host compose file.
    Compose,
}

impl Backend {
    /// `netns`, `ssh`, `compose`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Netns => "netns",
            Backend::Ssh => "ssh",
            Backend::Compose => "compose",
        }
    }
}

/// One host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// Host name (netns: the namespace name).
    pub name: String,
    /// Its address (services listen there; clients connect there).
    pub address: Ipv4Addr,
    /// The services it runs (stack-core names).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Command prefix that runs a command on the host. netns default: `ip netns exec <name>`.
    #[serde(default)]
    pub prefix: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    backend: Option<Backend>,
    switch: Option<String>,
    prefix_len: Option<u8>,
    base_port: Option<u16>,
    client_host: Option<String>,
    run_dir: Option<PathBuf>,
    hosts: Vec<Host>,
}

/// A validated inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// The file.
    pub path: PathBuf,
    /// Default backend.
    pub backend: Backend,
    /// netns: the bridge's namespace.
    pub switch: String,
    /// netns: subnet prefix length.
    pub prefix_len: u8,
    /// Base port of the services.
    pub base_port: u16,
    /// netns: the namespace clients run in (None: clients connect from here).
    pub client_host: Option<String>,
    /// The run folder (relative paths: to the working directory).
    pub run_dir: PathBuf,
    /// The hosts.
    pub hosts: Vec<Host>,
    /// SHA-256 of the file.
    pub sha256: String,
}

fn bad(path: &str, field: &str, expected: &str, found: impl Into<String>) -> EvidenceError {
    EvidenceError::parse(path, 0, field, expected, found.into())
}

/// True for an address in 198.18.0.0/15.
#[must_use]
pub fn in_bench_range(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] == 198 && (o[1] == 18 || o[1] == 19)
}

impl Inventory {
    /// Read and validate `path` (errors name the file and the field; exit 2).
    pub fn load(path: &Path) -> Result<Inventory> {
        let bytes =
            std::fs::read(path).map_err(|e| EvidenceError::io("cannot read inventory", path, e))?;
        let text = String::from_utf8(bytes).map_err(|_| {
            bad(
                &path.display().to_string(),
                "file",
                "UTF-8 text",
                "invalid UTF-8",
            )
        })?;
        let mut inv = Self::parse(&text, &path.display().to_string())?;
        inv.path = path.to_path_buf();
        Ok(inv)
    }

    /// Parse and validate inventory text; `source` labels errors.
    pub fn parse(text: &str, source: &str) -> Result<Inventory> {
        let raw: Raw = yaml_serde::from_str(text).map_err(|e| {
            let line = e.location().map_or(0, |l| l.line());
            EvidenceError::parse(
                source,
                line,
                "inventory",
                "a valid inventory",
                e.to_string(),
            )
        })?;
        let backend = raw.backend.unwrap_or(Backend::Netns);
        let switch = raw.switch.unwrap_or_else(|| "fo-sw".to_string());
        let prefix_len = raw.prefix_len.unwrap_or(24);
        if !(8..=30).contains(&prefix_len) {
            return Err(bad(source, "prefix_len", "8..=30", prefix_len.to_string()));
        }
        if raw.hosts.is_empty() {
            return Err(bad(source, "hosts", "at least one host", "none"));
        }
        let mut hosts = raw.hosts;
        for h in &mut hosts {
            let name_ok = !h.name.is_empty()
                && h.name.len() <= 12
                && h.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !name_ok {
                return Err(bad(
                    source,
                    "hosts.name",
                    "1-12 characters of a-z, 0-9, '-'",
                    h.name.clone(),
                ));
            }
            let o = h.address.octets();
            if o[0] == 192 && o[1] == 0 && o[2] == 2 {
                return Err(bad(
                    source,
                    &format!("hosts.{}.address", h.name),
                    "an address outside 192.0.2.0/24 (this machine's eth0 network)",
                    h.address.to_string(),
                ));
            }
            if backend == Backend::Netns && !in_bench_range(h.address) {
                return Err(bad(
                    source,
                    &format!("hosts.{}.address", h.name),
                    "an address in 198.18.0.0/15 for the netns backend",
                    h.address.to_string(),
                ));
            }
            for r in &h.roles {
                if !SERVICES.contains(&r.as_str()) {
                    return Err(bad(
                        source,
                        &format!("hosts.{}.roles", h.name),
                        &format!("one of {}", SERVICES.join(", ")),
                        r.clone(),
                    ));
                }
            }
            if h.prefix.is_empty() {
                if backend == Backend::Netns {
                    h.prefix = ["ip", "netns", "exec", h.name.as_str()]
                        .map(String::from)
                        .to_vec();
                } else if backend == Backend::Ssh {
                    return Err(bad(
                        source,
                        &format!("hosts.{}.prefix", h.name),
                        "a command prefix for the ssh backend, e.g. [ssh, ops@10.0.0.5]",
                        "none",
                    ));
                }
            }
        }
        for (i, h) in hosts.iter().enumerate() {
            if hosts[..i].iter().any(|o| o.name == h.name) {
                return Err(bad(
                    source,
                    "hosts.name",
                    "unique host names",
                    h.name.clone(),
                ));
            }
            if hosts[..i].iter().any(|o| o.address == h.address) {
                return Err(bad(
                    source,
                    "hosts.address",
                    "unique addresses",
                    h.address.to_string(),
                ));
            }
        }
        for s in SERVICES {
            let n = hosts
                .iter()
                .filter(|h| h.roles.iter().any(|r| r == s))
                .count();
            if n != 1 {
                return Err(bad(
                    source,
                    "hosts.roles",
                    &format!("{s} placed on exactly one host"),
                    format!("{n} hosts"),
                ));
            }
        }
        if let Some(c) = &raw.client_host
            && !hosts.iter().any(|h| &h.name == c)
        {
            return Err(bad(source, "client_host", "the name of a host", c.clone()));
        }
        if switch.is_empty() || switch.len() > 12 || hosts.iter().any(|h| h.name == switch) {
            return Err(bad(
                source,
                "switch",
                "a namespace name (1-12 characters) that is not a host's",
                switch,
            ));
        }
        Ok(Inventory {
            path: PathBuf::from(source),
            backend,
            switch,
            prefix_len,
            base_port: raw.base_port.unwrap_or(17000),
            client_host: raw.client_host,
            run_dir: raw
                .run_dir
                .unwrap_or_else(|| PathBuf::from("runtime/multihost")),
            hosts,
            sha256: sha256_hex(text.as_bytes()),
        })
    }

    /// The host running `service`.
    #[must_use]
    pub fn host_of(&self, service: &str) -> Option<&Host> {
        self.hosts
            .iter()
            .find(|h| h.roles.iter().any(|r| r == service))
    }

    /// The host named `name`.
    #[must_use]
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// The host with address `addr`.
    #[must_use]
    pub fn host_by_address(&self, addr: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.address.to_string() == addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = "hosts:\n  - {name: h1, address: 198.18.0.1, roles: [redis-primary, redis-sentinel-1, timescale-primary]}\n  - {name: h2, address: 198.18.0.2, roles: [redis-replica, redis-sentinel-2, timescale-replica]}\n  - {name: h3, address: 198.18.0.3, roles: [redis-sentinel-3]}\nclient_host: h3\n";

    #[test]
    fn parses_and_defaults_prefixes() {
        let inv = Inventory::parse(OK, "inv.yaml").unwrap();
        assert_eq!(inv.backend, Backend::Netns);
        assert_eq!(inv.hosts[0].prefix, ["ip", "netns", "exec", "h1"]);
        assert_eq!(inv.host_of("redis-replica").unwrap().name, "h2");
    }

    #[test]
    fn rejects_bad_inventories() {
        let e = Inventory::parse(&OK.replace("198.18.0.3", "192.0.2.9"), "i.yaml").unwrap_err();
        assert!(e.to_string().contains("192.0.2.0/24"), "{e}");
        let e = Inventory::parse(&OK.replace("198.18.0.3", "10.0.0.3"), "i.yaml").unwrap_err();
        assert!(e.to_string().contains("198.18.0.0/15"), "{e}");
        let e = Inventory::parse(&OK.replace(", redis-sentinel-1", ""), "i.yaml").unwrap_err();
        assert!(
            e.to_string()
                .contains("redis-sentinel-1 placed on exactly one host"),
            "{e}"
        );
        let e = Inventory::parse(&format!("{OK}colour: red\n"), "i.yaml").unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = Inventory::parse(&format!("backend: ssh\n{OK}"), "i.yaml").unwrap_err();
        assert!(
            e.to_string().contains("command prefix for the ssh backend"),
            "{e}"
        );
    }
}
