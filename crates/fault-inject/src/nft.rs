//! The `nft` backend: a disconnect whose matches expire in the kernel.
//!
//! The drill's fault is one nftables table `inet ctpops_<8 hex of sha256(drill id)>` holding a set
//! `targets` (`ipv4_addr . inet_service`, `flags timeout`) and two chains hooked at `output` and
//! `input` that drop (or, in reset mode, reject with a TCP reset, RST segments excepted) the
//! traffic to and from a `targets` element. Every element carries a kernel `timeout`: a short
//! lease ([`LEASE`]), never past the drill's deadline (the hold plus a margin), which fault-inject
//! refreshes while it holds (delete and re-add in one transaction, so the fault never blinks). When
//! every process of ours is killed, the elements expire by themselves and the fault is gone at
//! its deadline at the latest (within a lease, in fact); the empty table left behind matches
//! nothing and the next `fault-inject clear --backend nft` removes it. The clear deletes the table.
//! Every command is one `nft` invocation holding a whole transaction (commands separated by `;`).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use evidence_core::provenance::sha256_hex;

use crate::cmd::Cmd;

/// Prefix of our tables.
pub const TABLE_PREFIX: &str = "ctpops_";
/// How long an element lives without a refresh.
pub const LEASE: Duration = Duration::from_secs(2);
/// How often the hold refreshes the elements.
pub const REFRESH_EVERY: Duration = Duration::from_millis(500);

/// The drill's table.
#[must_use]
pub fn table(drill_id: &str) -> String {
    format!("{TABLE_PREFIX}{}", &sha256_hex(drill_id.as_bytes())[..8])
}

fn nft(nft: &Path, script: String) -> Cmd {
    Cmd {
        program: nft.to_path_buf(),
        args: vec![script],
    }
}

fn elements(ip: Ipv4Addr, ports: &[u16], timeout: Option<Duration>) -> String {
    let t = timeout.map_or_else(String::new, |t| {
        format!(" timeout {}ms", t.as_millis().max(1))
    });
    ports
        .iter()
        .map(|p| format!("{ip} . {p}{t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The apply: table, set with its elements (each with `timeout`), chains and rules, in one
/// transaction: the fault takes effect when it commits.
#[must_use]
pub fn apply(
    nft_path: &Path,
    drill_id: &str,
    ip: Ipv4Addr,
    ports: &[u16],
    reset: bool,
    timeout: Duration,
) -> Cmd {
    let t = table(drill_id);
    let (skip_rst, action) = if reset {
        ("tcp flags & rst != rst ", "reject with tcp reset")
    } else {
        ("", "drop")
    };
    nft(
        nft_path,
        format!(
            "add table inet {t}; \
             add set inet {t} targets {{ type ipv4_addr . inet_service; flags timeout; }}; \
             add element inet {t} targets {{ {els} }}; \
             add chain inet {t} out {{ type filter hook output priority 0; policy accept; }}; \
             add rule inet {t} out ip daddr . tcp dport @targets {skip_rst}{action}; \
             add chain inet {t} in {{ type filter hook input priority 0; policy accept; }}; \
             add rule inet {t} in ip saddr . tcp sport @targets {skip_rst}{action}",
            els = elements(ip, ports, Some(timeout))
        ),
    )
}

/// Refresh the elements' timeout (delete and re-add in one transaction).
#[must_use]
pub fn refresh(
    nft_path: &Path,
    drill_id: &str,
    ip: Ipv4Addr,
    ports: &[u16],
    timeout: Duration,
) -> Cmd {
    let t = table(drill_id);
    nft(
        nft_path,
        format!(
            "delete element inet {t} targets {{ {} }}; add element inet {t} targets {{ {} }}",
            elements(ip, ports, None),
            elements(ip, ports, Some(timeout))
        ),
    )
}

/// Delete a table.
#[must_use]
pub fn delete_table(nft_path: &Path, table: &str) -> Cmd {
    nft(nft_path, format!("delete table inet {table}"))
}

/// List the tables.
#[must_use]
pub fn list_tables(nft_path: &Path) -> Cmd {
    nft(nft_path, "list tables".to_string())
}

/// Our tables in `nft list tables` output (`table inet ctpops_...` lines); only `drill_id`'s
/// when given.
#[must_use]
pub fn owned(listing: &str, drill_id: Option<&str>) -> Vec<String> {
    let want = drill_id.map(table);
    listing
        .lines()
        .filter_map(|l| l.trim().strip_prefix("table inet "))
        .map(str::trim)
        .filter(|t| t.starts_with(TABLE_PREFIX))
        .filter(|t| want.as_deref().is_none_or(|w| w == *t))
        .map(str::to_string)
        .collect()
}

/// The elements' timeout now: the lease, never past `deadline_left` (and at least 1 ms).
#[must_use]
pub fn lease(deadline_left: Duration) -> Duration {
    LEASE.min(deadline_left).max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts() {
        let p = Path::new("nft");
        let ip = Ipv4Addr::new(10, 0, 0, 1);
        let a = apply(p, "d1", ip, &[1, 2], true, Duration::from_millis(1500));
        let s = &a.args[0];
        let t = table("d1");
        assert!(s.starts_with(&format!("add table inet {t}; ")), "{s}");
        assert!(
            s.contains("targets { 10.0.0.1 . 1 timeout 1500ms, 10.0.0.1 . 2 timeout 1500ms }"),
            "{s}"
        );
        assert!(
            s.contains(
                "ip daddr . tcp dport @targets tcp flags & rst != rst reject with tcp reset"
            ),
            "{s}"
        );
        let a = apply(p, "d1", ip, &[1], false, Duration::from_secs(2));
        assert!(a.args[0].contains("ip saddr . tcp sport @targets drop"));
        let r = refresh(p, "d1", ip, &[1], Duration::from_secs(2));
        assert_eq!(
            r.args[0],
            format!(
                "delete element inet {t} targets {{ 10.0.0.1 . 1 }}; add element inet {t} targets {{ 10.0.0.1 . 1 timeout 2000ms }}"
            )
        );
        let listing = format!("table ip filter\ntable inet {t}\ntable inet ctpops_00000000\n");
        assert_eq!(owned(&listing, Some("d1")), std::slice::from_ref(&t));
        assert_eq!(owned(&listing, None).len(), 2);
        assert_eq!(lease(Duration::from_secs(60)), LEASE);
        assert_eq!(
            lease(Duration::from_millis(300)),
            Duration::from_millis(300)
        );
    }
}
