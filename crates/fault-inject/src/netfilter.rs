//! The netfilter backend: iptables rules in a chain of our own for disconnects, and a scoped
//! `tc netem` for latency, jitter and loss.
//!
//! Disconnect (`iptables`, legacy or nft): two chains per drill, `CTPOPS-<8 hex of sha256(drill
//! id)>-out` jumped to from `OUTPUT` and holding `-p tcp -d IP --dport P` per port, and `...-in`
//! jumped to from `INPUT` with `-p tcp -s IP --sport P`, each with the action (`-j DROP`, or `-j
//! REJECT --reject-with tcp-reset` in reset mode), as the original's `-I OUTPUT`/`-I INPUT` rules
//! were. In reset mode the rules skip RST segments (`! --tcp-flags RST RST`): the RST a REJECT
//! sends back to the local socket comes "from" the front and would otherwise be eaten by the other
//! direction's rule, turning the reset into a silent drop (as the original's rules did). Every rule,
//! jumps included, carries `-m comment --comment ctp-ops:<drill id>`. The fault takes effect when
//! the jumps are inserted; removing it removes the jumps, then flushes and deletes the chain. A
//! clear lists the rules (`iptables -S`) and removes only jumps to `CTPOPS-*` chains and those
//! chains, so it is idempotent and touches nothing else.
//!
//! Netem: the interface's root qdisc becomes `prio` with handle `c7f0:` (two bands, every priority
//! mapped to band 1, so unmatched traffic is not shaped); `netem` (handle `c7f1:`) sits on band 2
//! and `u32` filters send only `dst IP` + `dport P` there. Clear deletes the root qdisc only when
//! its handle is `c7f0:` (the kernel refuses a delete whose handle does not match). Before applying,
//! the kernel is probed in a throwaway network namespace (`unshare --net`), so that a kernel
//! without `sch_netem` is reported as such and nothing on the real interface is touched.

use std::path::Path;

use evidence_core::provenance::sha256_hex;
use evidence_core::{EvidenceError, Result};

use crate::cmd::{self, Cmd};

/// Prefix of our chains.
pub const CHAIN_PREFIX: &str = "CTPOPS-";
/// Prefix of our rule comments (followed by the drill id).
pub const COMMENT_PREFIX: &str = "ctp-ops:";
/// Handle of our root qdisc.
pub const ROOT_HANDLE: &str = "c7f0:";
/// Handle of our netem qdisc.
pub const NETEM_HANDLE: &str = "c7f1:";
/// The band our filters select.
pub const NETEM_BAND: &str = "c7f0:2";

/// The chain base name of a drill; its chains are `<base>-out` and `<base>-in`.
#[must_use]
pub fn chain_name(drill_id: &str) -> String {
    format!("{CHAIN_PREFIX}{}", &sha256_hex(drill_id.as_bytes())[..8])
}

/// The drill's chain for a builtin chain (`OUTPUT` → `<base>-out`, `INPUT` → `<base>-in`).
#[must_use]
pub fn chain_for(drill_id: &str, builtin: &str) -> String {
    let dir = if builtin == "OUTPUT" { "out" } else { "in" };
    format!("{}-{dir}", chain_name(drill_id))
}

fn comment_args(drill_id: &str) -> [String; 4] {
    [
        "-m".into(),
        "comment".into(),
        "--comment".into(),
        format!("{COMMENT_PREFIX}{drill_id}"),
    ]
}

fn fw(fw: &Path, args: Vec<String>) -> Cmd {
    let mut all = vec!["-w".to_string()];
    all.extend(args);
    Cmd {
        program: fw.to_path_buf(),
        args: all,
    }
}

fn jump(fw_path: &Path, op: &str, builtin: &str, drill_id: &str) -> Cmd {
    let mut a = vec![op.to_string(), builtin.to_string()];
    a.extend(comment_args(drill_id));
    a.extend(["-j".into(), chain_for(drill_id, builtin)]);
    fw(fw_path, a)
}

/// The disconnect apply commands, in order. The last two (the jumps) make the fault take effect.
#[must_use]
pub fn disconnect_apply(
    fw_path: &Path,
    drill_id: &str,
    ip: &str,
    ports: &[u16],
    reset: bool,
) -> Vec<Cmd> {
    let action: Vec<String> = if reset {
        ["-j", "REJECT", "--reject-with", "tcp-reset"]
            .map(String::from)
            .to_vec()
    } else {
        vec!["-j".into(), "DROP".into()]
    };
    let mut cmds = Vec::new();
    for (builtin, addr, port_flag) in [("OUTPUT", "-d", "--dport"), ("INPUT", "-s", "--sport")] {
        let chain = chain_for(drill_id, builtin);
        cmds.push(fw(fw_path, vec!["-N".into(), chain.clone()]));
        for p in ports {
            let mut a: Vec<String> = vec![
                "-A".into(),
                chain.clone(),
                "-p".into(),
                "tcp".into(),
                addr.into(),
                ip.into(),
                port_flag.into(),
                p.to_string(),
            ];
            if reset {
                // Let the RSTs our REJECTs send pass the other direction's rule (on the way to
                // the local socket they are "from" the front): the local side sees a reset, not a
                // silent drop.
                a.extend(["!", "--tcp-flags", "RST", "RST"].map(String::from));
            }
            a.extend(comment_args(drill_id));
            a.extend(action.iter().cloned());
            cmds.push(fw(fw_path, a));
        }
    }
    cmds.push(jump(fw_path, "-I", "OUTPUT", drill_id));
    cmds.push(jump(fw_path, "-I", "INPUT", drill_id));
    cmds
}

/// The disconnect clear commands after a successful apply (what plan and dry runs show; a real
/// clear computes them from the rule listing, see [`clear_rules`]).
#[must_use]
pub fn disconnect_clear(fw_path: &Path, drill_id: &str) -> Vec<Cmd> {
    let (out, inp) = (chain_for(drill_id, "OUTPUT"), chain_for(drill_id, "INPUT"));
    vec![
        jump(fw_path, "-D", "OUTPUT", drill_id),
        jump(fw_path, "-D", "INPUT", drill_id),
        fw(fw_path, vec!["-F".into(), out.clone()]),
        fw(fw_path, vec!["-F".into(), inp.clone()]),
        fw(fw_path, vec!["-X".into(), out]),
        fw(fw_path, vec!["-X".into(), inp]),
    ]
}

/// Split one line of `iptables -S` into words (double quotes group, backslash escapes).
#[must_use]
pub fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// What a clear found of ours in a rule listing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Owned {
    /// Jump rules into our chains: the `-A ...` words, to be replayed with `-D`.
    pub jumps: Vec<Vec<String>>,
    /// Our chains.
    pub chains: Vec<String>,
    /// Drill ids named by the comments of those rules.
    pub drills: Vec<String>,
}

/// Find our jumps and chains in `iptables -S` output; with `drill_id`, only that drill's.
#[must_use]
pub fn owned(listing: &str, drill_id: Option<&str>) -> Owned {
    let only = drill_id.map(chain_name);
    let ours = |chain: &str| {
        chain.starts_with(CHAIN_PREFIX)
            && only.as_deref().is_none_or(|base| {
                chain
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.is_empty() || rest == "-out" || rest == "-in")
            })
    };
    let mut o = Owned::default();
    for line in listing.lines() {
        let w = split_words(line);
        match w.first().map(String::as_str) {
            Some("-N") if w.len() == 2 && ours(&w[1]) => o.chains.push(w[1].clone()),
            Some("-A") if w.len() > 2 => {
                let target = w.iter().position(|x| x == "-j").and_then(|j| w.get(j + 1));
                let is_jump = !w[1].starts_with(CHAIN_PREFIX) && target.is_some_and(|t| ours(t));
                if !(is_jump || ours(&w[1])) {
                    continue;
                }
                if let Some(c) = w.iter().position(|x| x == "--comment")
                    && let Some(d) = w.get(c + 1).and_then(|t| t.strip_prefix(COMMENT_PREFIX))
                    && !o.drills.iter().any(|x| x == d)
                {
                    o.drills.push(d.to_string());
                }
                if is_jump {
                    o.jumps.push(w[1..].to_vec());
                }
            }
            _ => {}
        }
    }
    o
}

/// The commands that remove what `owned` found: jumps first (the fault stops), then the chains.
#[must_use]
pub fn clear_rules(fw_path: &Path, o: &Owned) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    for j in &o.jumps {
        let mut a = vec!["-D".to_string()];
        a.extend(j.iter().cloned());
        cmds.push(fw(fw_path, a));
    }
    for c in &o.chains {
        cmds.push(fw(fw_path, vec!["-F".into(), c.clone()]));
    }
    for c in &o.chains {
        cmds.push(fw(fw_path, vec!["-X".into(), c.clone()]));
    }
    cmds
}

/// List the filter table's rules.
///
/// # Errors
/// When `iptables -S` fails (not root, no kernel support).
pub fn list_rules(fw_path: &Path) -> Result<String> {
    let c = fw(fw_path, vec!["-S".into()]);
    let out = cmd::run(&c)?;
    if out.ok() {
        Ok(out.stdout)
    } else {
        Err(EvidenceError::failed(format!(
            "cannot list rules ({}): {}",
            c.display(),
            out.describe()
        )))
    }
}

// ---------------------------------------------------------------------------------------------
// netem
// ---------------------------------------------------------------------------------------------

/// The loss as the original prints it (`%g`: `2.5`, `5`, `0.333333`).
#[must_use]
pub fn percent_g(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "0..=100 after validation"
    )]
    let decimals = (5.0 - exp).max(0.0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `netem` arguments as the original builds them: ` delay Dms` when D > 0, then ` Jms` when J > 0
/// (only with a delay), then ` loss P%` when P > 0.
#[must_use]
pub fn netem_args(delay_ms: u64, jitter_ms: u64, loss: f64) -> Vec<String> {
    let mut a = vec!["netem".to_string()];
    if delay_ms > 0 {
        a.push("delay".into());
        a.push(format!("{delay_ms}ms"));
        if jitter_ms > 0 {
            a.push(format!("{jitter_ms}ms"));
        }
    }
    if loss > 0.0 {
        a.push("loss".into());
        a.push(format!("{}%", percent_g(loss)));
    }
    a
}

/// The netem apply commands: our prio root, netem on band 2, one u32 filter per port.
#[must_use]
pub fn netem_apply(tc: &Path, iface: &str, ip: &str, ports: &[u16], netem: &[String]) -> Vec<Cmd> {
    let mut cmds = vec![Cmd::new(
        tc,
        [
            "qdisc",
            "add",
            "dev",
            iface,
            "root",
            "handle",
            ROOT_HANDLE,
            "prio",
            "bands",
            "2",
            "priomap",
        ]
        .into_iter()
        .map(String::from)
        .chain(std::iter::repeat_n("0".to_string(), 16)),
    )];
    cmds.push(Cmd::new(
        tc,
        [
            "qdisc",
            "add",
            "dev",
            iface,
            "parent",
            NETEM_BAND,
            "handle",
            NETEM_HANDLE,
        ]
        .into_iter()
        .map(String::from)
        .chain(netem.iter().cloned()),
    ));
    for p in ports {
        cmds.push(Cmd::new(
            tc,
            [
                "filter",
                "add",
                "dev",
                iface,
                "parent",
                ROOT_HANDLE,
                "protocol",
                "ip",
                "prio",
                "1",
                "u32",
                "match",
                "ip",
                "dst",
            ]
            .into_iter()
            .map(String::from)
            .chain([
                format!("{ip}/32"),
                "match".into(),
                "ip".into(),
                "dport".into(),
                p.to_string(),
                "0xffff".into(),
                "flowid".into(),
                NETEM_BAND.into(),
            ]),
        ));
    }
    cmds
}

/// The netem clear command: delete our root qdisc (only ours: the handle must match).
#[must_use]
pub fn netem_clear(tc: &Path, iface: &str) -> Cmd {
    Cmd::new(
        tc,
        ["qdisc", "del", "dev", iface, "root", "handle", ROOT_HANDLE],
    )
}

/// True when `iface`'s root qdisc is ours.
///
/// # Errors
/// When `tc qdisc show` fails (no such interface).
pub fn netem_present(tc: &Path, iface: &str) -> Result<bool> {
    let c = Cmd::new(tc, ["qdisc", "show", "dev", iface]);
    let out = cmd::run(&c)?;
    if !out.ok() {
        return Err(EvidenceError::failed(format!(
            "cannot list qdiscs ({}): {}",
            c.display(),
            out.describe()
        )));
    }
    Ok(out.stdout.lines().any(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() >= 4 && w[0] == "qdisc" && w[2] == ROOT_HANDLE && w[3] == "root"
    }))
}

/// The message for a qdisc kind the kernel lacks.
#[must_use]
pub fn missing_kind(kind: &str) -> String {
    format!(
        "kernel has no {kind} (sch_{kind}): `tc qdisc add ... {kind}` says \"Error: Specified qdisc kind is unknown.\""
    )
}

/// Probe the kernel for `netem` and `prio` in a throwaway network namespace (`unshare --net`),
/// touching no real interface. `Ok(())` when both exist or when the probe cannot run (no
/// `unshare`, not allowed): the real apply then reports the problem.
///
/// # Errors
/// `kernel has no netem (sch_netem) ...` (exit 2).
pub fn probe_kernel(tc: &Path) -> Result<()> {
    let Some(unshare) = cmd::find("unshare") else {
        return Ok(());
    };
    let tc_s = tc.display().to_string();
    for (kind, args) in [
        ("netem", vec!["netem", "delay", "1ms"]),
        ("prio", vec!["prio"]),
    ] {
        let mut a = vec!["--net", tc_s.as_str(), "qdisc", "add", "dev", "lo", "root"];
        a.extend(args);
        let out = cmd::run(&Cmd::new(&unshare, a))?;
        if out.stderr.contains("qdisc kind is unknown") {
            return Err(EvidenceError::failed(missing_kind(kind)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_like_python_g() {
        assert_eq!(percent_g(2.5), "2.5");
        assert_eq!(percent_g(5.0), "5");
        assert_eq!(percent_g(3.0), "3");
        assert_eq!(percent_g(100.0), "100");
        assert_eq!(percent_g(1.0 / 3.0), "0.333333");
        assert_eq!(percent_g(0.05), "0.05");
        assert_eq!(percent_g(12.345_678), "12.3457");
    }

    #[test]
    fn netem_args_as_original() {
        assert_eq!(
            netem_args(250, 30, 2.5).join(" "),
            "netem delay 250ms 30ms loss 2.5%"
        );
        assert_eq!(netem_args(250, 0, 0.0).join(" "), "netem delay 250ms");
        assert_eq!(netem_args(0, 30, 5.0).join(" "), "netem loss 5%");
        assert_eq!(netem_args(0, 0, 0.0).join(" "), "netem");
    }

    #[test]
    fn finds_only_ours() {
        let d1 = chain_name("d1");
        let d2 = chain_name("d2");
        let listing = format!(
            "-P INPUT ACCEPT\n-P OUTPUT ACCEPT\n-N {d1}\n-N {d2}\n-N OTHER\n\
             -A INPUT -m comment --comment \"ctp-ops:d1\" -j {d1}\n\
             -A OUTPUT -m comment --comment \"ctp-ops:d1\" -j {d1}\n\
             -A OUTPUT -m comment --comment \"ctp-ops:d2\" -j {d2}\n\
             -A OUTPUT -j OTHER\n-A OUTPUT -p tcp -j DROP\n\
             -A {d1} -d 127.0.0.1/32 -p tcp -m tcp --dport 5 -m comment --comment \"ctp-ops:d1\" -j DROP\n"
        );
        let o = owned(&listing, Some("d1"));
        assert_eq!(o.chains, vec![d1.clone()]);
        assert_eq!(o.jumps.len(), 2);
        assert_eq!(o.drills, vec!["d1".to_string()]);
        let all = owned(&listing, None);
        assert_eq!(all.chains, vec![d1.clone(), d2.clone()]);
        assert_eq!(all.jumps.len(), 3);
        assert_eq!(all.drills, vec!["d1".to_string(), "d2".to_string()]);
        let cmds = clear_rules(Path::new("iptables"), &o);
        assert_eq!(
            cmds[0].display(),
            format!("iptables -w -D INPUT -m comment --comment ctp-ops:d1 -j {d1}")
        );
        assert_eq!(cmds[2].display(), format!("iptables -w -F {d1}"));
        assert_eq!(cmds[3].display(), format!("iptables -w -X {d1}"));
        assert!(owned("-P INPUT ACCEPT\n", None).chains.is_empty());
        // The real layout: <base>-out and <base>-in.
        let (o1, i1) = (chain_for("d1", "OUTPUT"), chain_for("d1", "INPUT"));
        let listing = format!(
            "-N {i1}\n-N {o1}\n-A INPUT -m comment --comment \"ctp-ops:d1\" -j {i1}\n\
             -A OUTPUT -m comment --comment \"ctp-ops:d1\" -j {o1}\n"
        );
        let o = owned(&listing, Some("d1"));
        assert_eq!(o.chains, vec![i1, o1]);
        assert_eq!(o.jumps.len(), 2);
        assert_eq!(owned(&listing, Some("d2")), Owned::default());
    }

    #[test]
    fn words() {
        assert_eq!(
            split_words(r#"-A X -m comment --comment "a b\"c" -j Y"#),
            vec!["-A", "X", "-m", "comment", "--comment", "a b\"c", "-j", "Y"]
        );
    }
}
