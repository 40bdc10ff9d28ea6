//! Inbound enforcement and fail-closed with nftables: one table, `inet ironswan`, generated
//! from the SPD and owned by ipsecd.
//!
//! The kernel has no ESP of its own: decrypted traffic enters the stack from the TUN device,
//! and the daemon's own packets carry its firewall mark. Everything else is cleartext, and
//! the table keeps cleartext that policy says must be protected away from applications
//! (inbound) and off the wire (outbound, also when ipsecd is dead and its TUN device gone):
//!
//! ```text
//!  input  (hook input, priority filter - 10, policy accept)
//!    iifname TUN accept            decrypted by ipsecd and already checked against the SPD
//!    iifname lo accept             intra-machine traffic
//!    meta l4proto {esp, ah} accept ipsecd decrypts it
//!    udp dport {IKE, NAT-T} accept the key manager and ESP-in-UDP
//!    jump host_in                  accept-clear ICMP/IGMP/PIM return, then the host SPD's
//!                                  rules, highest priority first: bypass return,
//!                                  ipsec -> spd_got_clear drop, drop -> spd_explicit drop
//!    jump tunnelN_in               each tunnel SPD the same way (no accept-clear)
//!  output (hook output, priority filter - 10, policy accept)
//!    meta mark MARK accept         the daemon's own packets (ESP/AH, bypass reinjection)
//!    oifname TUN accept            on its way into ipsecd
//!    oifname lo accept
//!    udp sport {IKE, NAT-T} accept
//!    icmpv6 type 133-137 accept    neighbour discovery is sent without IPsec (illumos
//!                                  IXAF_NO_IPSEC)
//!    jump host_out                 bypass return, ipsec -> out_clear drop, drop -> spd_explicit
//!    jump tunnelN_out
//!  forward (only with tunnel rules): iifname != TUN jump tunnelN_in,
//!                                    oifname != TUN jump tunnelN_out
//! ```
//!
//! Every drop has a counter, a comment `ironswan <in|out> <reason> rule <index>` that
//! [`counters`] reads back, and (with [`Config::log_group`]) an NFLOG record with the prefix
//! `ironswan <reason> rule <index>: `. The rule index is the rule's position in the
//! [`PolicySet`] (`ipsecconf -l` order). Loading is one `nft -f -` transaction that creates,
//! deletes and recreates the table, so a new policy replaces the old table atomically and
//! the table outlives the daemon (fail closed) until [`remove`] deletes it.
//!
//! # Precedence
//!
//! Rules are emitted in Solaris precedence order (the SPD's [`Priority`]: bypass first, then
//! AH+ESP, ESP, AH, then file order), so the first rule that matches a packet is the one the
//! SPD would select. Bypass rules `return` rather than `accept`, so a packet must be allowed
//! by every SPD whose rules match it (host and each tunnel): never looser than any one SPD.
//!
//! # Where the table is stricter than the SPD (it may drop more, never less)
//!
//! * Accept-clear ICMP: the SPD lets the IP stack take every cleartext ICMP message while
//!   `icmp-accept-clear` is on, and applies the [`icmp`] accept table only to connections that
//!   require protection. nftables cannot tell who will consume a message, so the table accepts
//!   the messages both agree on: those the accept table takes *and* the Linux stack itself
//!   consumes (IPv4: unreachable net/host/fragmentation-needed, source quench, time exceeded;
//!   IPv6: destination unreachable, packet too big, time exceeded, MLD, ND and redirect). Echo
//!   requests, redirects (IPv4), parameter problems and echo replies (which only reach ping
//!   and raw sockets, whose unlatched policy would drop them) are dropped when policy protects
//!   their sender. (A clear echo request could not be answered in clear here anyway: the
//!   reply is routed into ipsecd, which protects it.)
//! * IPv6 neighbour discovery is not bypassed automatically (ipsecconf(8): add
//!   `{ulp ipv6-icmp type 133-137 dir both} pass {}`, as the Solaris sample policy does). The
//!   kernel sends ND straight out of the device, not through the TUN, so without that rule a
//!   protected on-link IPv6 peer cannot resolve us.
//! * Tunnel SPDs: Solaris checks a tunnel's policy only for packets inside that tunnel. Here
//!   ipsecd routes every tunnel rule's inner destinations into its TUN device, so cleartext
//!   matching a tunnel rule's inner selectors is dropped on every other interface (input,
//!   output and forward), rules without addresses (`negotiate transport`) included: such a
//!   tunnel takes all traffic, and so all cleartext but the exemptions above is dropped. A
//!   tunnel's "no rule matches: drop" is ipsecd's to apply inside the TUN device.
//! * IPv6 non-first fragments carry no ports or ICMP type, so rules with a protocol, ports or
//!   ICMP selectors do not match them; the first fragment is dropped and the datagram never
//!   reassembles. (IPv4 is reassembled before the input hook; output sees whole packets.)
//! * Per-socket policy (issue 8) is in two sets ipsecd fills as sockets come and go
//!   ([`crate::persock`]), keyed by protocol and local port: `persock_protect` (cleartext to
//!   or from the port is dropped, whatever global policy says) and `persock_clear` (a
//!   privileged socket's bypass lets cleartext to its port in). Latched connections are not
//!   in the table.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::process::{Command, Stdio};

use ipsec_core::spd::icmp;
use ipsec_core::spd::model::ulp;
use ipsec_core::spd::{
    Action, Dir, IcmpRange, PolicyDrop, PolicySet, PortRange, Prefix, Priority, Protection, Rule,
    Selector, Tunables,
};

/// Family and name of the table.
pub const TABLE: &str = "inet ironswan";

/// Reason of an outbound drop: cleartext that policy protects about to leave other than
/// through the TUN device. Solaris has no counter for it (its kernel would have applied
/// IPsec); it is what fail-closed drops.
pub const OUT_CLEAR: &str = "out_clear";

/// Prefix of every drop rule's comment.
const COMMENT_TAG: &str = "ironswan";

/// ICMPv4 types the Linux stack consumes itself (net/ipv4/icmp.c `icmp_pointers`):
/// unreachable, source quench, redirect, echo, time exceeded, parameter problem, timestamp.
const STACK_ICMP_V4: [u8; 7] = [3, 4, 5, 8, 11, 12, 13];
/// ICMPv6 types the Linux stack consumes itself (net/ipv6/icmp.c `icmpv6_rcv`): errors,
/// echo request, MLD (130-132, 143) and ND (133-137).
const STACK_ICMP_V6: [u8; 14] = [1, 2, 3, 4, 128, 130, 131, 132, 133, 134, 135, 136, 137, 143];

/// What the table needs besides the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The TUN device's actual name (not a `%d` template).
    pub tun: String,
    /// The daemon's firewall mark (not 0: that would accept every unmarked packet).
    pub mark: u32,
    /// NFLOG group of the drop records; `None` counts without logging.
    pub log_group: Option<u16>,
}

/// Direction a chain looks at packets from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Orient {
    /// Inbound: the source is the policy's remote address.
    In,
    /// Outbound: the destination is the policy's remote address.
    Out,
}

impl Orient {
    const fn name(self) -> &'static str {
        match self {
            Orient::In => "in",
            Orient::Out => "out",
        }
    }
    const fn dir(self) -> Dir {
        match self {
            Orient::In => Dir::In,
            Orient::Out => Dir::Out,
        }
    }
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Linux accepts almost any byte in an interface name; the name goes between quotes in the
/// ruleset, so refuse what nft would read differently (quotes, backslashes, wildcards).
fn check_ifname(name: &str) -> io::Result<()> {
    let bad = |c: char| {
        c.is_whitespace() || c.is_control() || matches!(c, '"' | '\\' | '*' | '%' | '/' | ':')
    };
    if name.is_empty() || name.len() > 15 || name.chars().any(bad) {
        return Err(invalid(format!(
            "TUN device name {name:?} cannot be used in an nftables rule"
        )));
    }
    Ok(())
}

/// The text of the `inet ironswan` table for `policy` with `tunables`, as one `nft -f -`
/// transaction that replaces any earlier table.
///
/// Errors: a TUN name nftables cannot quote, mark 0, or a rule that fails
/// [`Rule::validate`] (policies loaded into an [`Spd`](ipsec_core::spd::Spd) always pass).
pub fn ruleset(policy: &PolicySet, tunables: &Tunables, cfg: &Config) -> io::Result<String> {
    check_ifname(&cfg.tun)?;
    if cfg.mark == 0 {
        return Err(invalid(
            "firewall mark 0 would exempt every unmarked packet".into(),
        ));
    }
    if let Err((i, e)) = policy.validate() {
        return Err(invalid(format!("policy rule {i}: {e}")));
    }
    let tun = &cfg.tun;
    let mut out = String::new();
    // Create-then-delete makes the transaction valid whether or not the table exists.
    let _ = writeln!(out, "table {TABLE} {{}}");
    let _ = writeln!(out, "delete table {TABLE}");
    let _ = writeln!(out, "table {TABLE} {{");

    // The SPDs: host first, then each tunnel (sorted by name).
    let mut spds: Vec<(String, Option<&str>)> = vec![("host".to_owned(), None)];
    for (n, t) in policy.tunnel_names().into_iter().enumerate() {
        spds.push((format!("tunnel{n}"), Some(t)));
    }
    let mut jumps_in = Vec::new();
    let mut jumps_out = Vec::new();
    for (chain, tunnel) in &spds {
        for o in [Orient::In, Orient::Out] {
            let name = format!("{chain}_{}", o.name());
            let _ = writeln!(out, "\tchain {name} {{");
            if let Some(t) = tunnel {
                let _ = writeln!(out, "\t\t# tunnel {}", printable(t));
            }
            if tunnel.is_none() && o == Orient::In {
                accept_clear(&mut out, tunables);
            }
            for (index, rule) in ordered(policy, *tunnel, o) {
                emit_rule(&mut out, index, rule, o, cfg.log_group);
            }
            let _ = writeln!(out, "\t}}");
            match o {
                Orient::In => jumps_in.push(name),
                Orient::Out => jumps_out.push(name),
            }
        }
    }

    let key_ports = port_set(&[tunables.ike_port, tunables.natt_port]);
    for set in ["persock_protect", "persock_clear"] {
        let _ = writeln!(out, "\tset {set} {{ type inet_proto . inet_service; }}");
    }
    let _ = writeln!(out, "\tchain input {{");
    let _ = writeln!(
        out,
        "\t\ttype filter hook input priority filter - 10; policy accept;"
    );
    let _ = writeln!(out, "\t\tiifname \"{tun}\" accept");
    let _ = writeln!(out, "\t\tiifname \"lo\" accept");
    let _ = writeln!(out, "\t\tmeta l4proto {{ esp, ah }} accept");
    let _ = writeln!(out, "\t\tudp dport {key_ports} accept");
    let _ = writeln!(out, "\t\tmeta l4proto . th dport @persock_clear accept");
    let _ = writeln!(
        out,
        "\t\tmeta l4proto . th dport @persock_protect counter drop"
    );
    for j in &jumps_in {
        let _ = writeln!(out, "\t\tjump {j}");
    }
    let _ = writeln!(out, "\t}}");

    let _ = writeln!(out, "\tchain output {{");
    let _ = writeln!(
        out,
        "\t\ttype filter hook output priority filter - 10; policy accept;"
    );
    let _ = writeln!(out, "\t\tmeta mark {:#010x} accept", cfg.mark);
    let _ = writeln!(out, "\t\toifname \"{tun}\" accept");
    let _ = writeln!(out, "\t\toifname \"lo\" accept");
    let _ = writeln!(
        out,
        "\t\tmeta l4proto . th sport @persock_protect counter drop"
    );
    let _ = writeln!(out, "\t\tudp sport {key_ports} accept");
    // Neighbour discovery goes out without IPsec, as the illumos stack sends it
    // (IXAF_NO_IPSEC): without it a protected on-link IPv6 peer cannot resolve us.
    let _ = writeln!(out, "\t\ticmpv6 type {{ 133-137 }} accept");
    for j in &jumps_out {
        let _ = writeln!(out, "\t\tjump {j}");
    }
    let _ = writeln!(out, "\t}}");

    // Forwarded packets see tunnel policy only (ipsecconf(8): host policy does not apply).
    if spds.len() > 1 {
        let _ = writeln!(out, "\tchain forward {{");
        let _ = writeln!(
            out,
            "\t\ttype filter hook forward priority filter - 10; policy accept;"
        );
        for j in jumps_in.iter().skip(1) {
            let _ = writeln!(out, "\t\tiifname != \"{tun}\" jump {j}");
        }
        for j in jumps_out.iter().skip(1) {
            let _ = writeln!(out, "\t\toifname != \"{tun}\" jump {j}");
        }
        let _ = writeln!(out, "\t}}");
    }
    let _ = writeln!(out, "}}");
    Ok(out)
}

/// Tunnel names come from a policy file; keep only harmless characters for a `#` comment.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn port_set(ports: &[u16]) -> String {
    let mut v: Vec<u16> = ports.to_vec();
    v.sort_unstable();
    v.dedup();
    let items: Vec<String> = v.iter().map(u16::to_string).collect();
    format!("{{ {} }}", items.join(", "))
}

/// The rules of one SPD that apply in `o`, highest priority first.
fn ordered<'a>(policy: &'a PolicySet, tunnel: Option<&str>, o: Orient) -> Vec<(usize, &'a Rule)> {
    let mut v: Vec<(u32, usize, &Rule)> = policy
        .rules
        .iter()
        .enumerate()
        .filter(|(_, r)| r.tunnel.as_deref() == tunnel && r.dir.covers(o.dir()))
        .map(|(i, r)| (Priority::for_rule(i, &r.action).value(), i, r))
        .collect();
    v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    v.into_iter().map(|(_, i, r)| (i, r)).collect()
}

/// The accept-clear exemptions of the host SPD's inbound chain (see the module docs for why
/// ICMP is the accept table restricted to what the Linux stack consumes).
fn accept_clear(out: &mut String, t: &Tunables) {
    if t.icmp_accept_clear {
        let mut whole = Vec::new();
        for ty in STACK_ICMP_V4 {
            let codes: Vec<u8> = (0..=u8::MAX)
                .filter(|&c| icmp::accept_clear_v4(ty, c))
                .collect();
            if codes.len() == 256 {
                whole.push(IcmpRange::single(ty));
            } else if !codes.is_empty() {
                let _ = writeln!(
                    out,
                    "\t\tmeta l4proto icmp icmp type {ty} icmp code {} return",
                    value_set(&ranges(&codes))
                );
            }
        }
        if !whole.is_empty() {
            let _ = writeln!(
                out,
                "\t\tmeta l4proto icmp icmp type {} return",
                value_set(&whole)
            );
        }
        let v6: Vec<u8> = STACK_ICMP_V6
            .into_iter()
            .filter(|&ty| icmp::accept_clear_v6(ty))
            .collect();
        if !v6.is_empty() {
            let _ = writeln!(
                out,
                "\t\tmeta l4proto ipv6-icmp icmpv6 type {} return",
                value_set(&ranges(&v6))
            );
        }
    }
    if t.igmp_accept_clear {
        let _ = writeln!(out, "\t\tmeta l4proto {} return", ulp::IGMP);
    }
    if t.pim_accept_clear {
        let _ = writeln!(out, "\t\tmeta l4proto {} return", ulp::PIM);
    }
}

/// Sorted values folded into ranges.
fn ranges(vals: &[u8]) -> Vec<IcmpRange> {
    let mut v: Vec<IcmpRange> = Vec::new();
    for &x in vals {
        match v.last_mut() {
            Some(r) if u16::from(r.hi) + 1 == u16::from(x) => r.hi = x,
            _ => v.push(IcmpRange::single(x)),
        }
    }
    v
}

fn value_set(rs: &[IcmpRange]) -> String {
    if let [one] = rs {
        return range_text(*one);
    }
    let items: Vec<String> = rs.iter().map(|r| range_text(*r)).collect();
    format!("{{ {} }}", items.join(", "))
}

fn range_text(r: IcmpRange) -> String {
    if r.lo == r.hi {
        r.lo.to_string()
    } else {
        format!("{}-{}", r.lo, r.hi)
    }
}

fn port_text(r: PortRange) -> String {
    if r.lo == r.hi {
        r.lo.to_string()
    } else {
        format!("{}-{}", r.lo, r.hi)
    }
}

/// `ip saddr 10.1.0.0/16`, with the host bits cleared (`meta nfproto` for a /0).
fn addr_match(p: Prefix, field: &str) -> String {
    match p.addr {
        IpAddr::V4(a) => {
            let len = u32::from(p.len.min(32));
            if len == 0 {
                return "meta nfproto ipv4".to_owned();
            }
            let mask = u32::MAX << (32 - len);
            let net = std::net::Ipv4Addr::from(u32::from(a) & mask);
            if len == 32 {
                format!("ip {field} {net}")
            } else {
                format!("ip {field} {net}/{len}")
            }
        }
        IpAddr::V6(a) => {
            let len = u32::from(p.len.min(128));
            if len == 0 {
                return "meta nfproto ipv6".to_owned();
            }
            let mask = u128::MAX << (128 - len);
            let net = std::net::Ipv6Addr::from(u128::from(a) & mask);
            if len == 128 {
                format!("ip6 {field} {net}")
            } else {
                format!("ip6 {field} {net}/{len}")
            }
        }
    }
}

/// The match expressions of a selector seen in direction `o`; `None` if it can never match.
fn selector_match(s: &Selector, o: Orient) -> Option<String> {
    if s.unmatchable().is_some() {
        return None;
    }
    let mut m: Vec<String> = Vec::new();
    let (saddr, daddr) = match o {
        Orient::In => (s.raddr, s.laddr),
        Orient::Out => (s.laddr, s.raddr),
    };
    if let Some(p) = saddr {
        m.push(addr_match(p, "saddr"));
    }
    if let Some(p) = daddr {
        m.push(addr_match(p, "daddr"));
    }
    let has_ports = s.lport.is_some() || s.rport.is_some();
    match (s.ulp, s.icmp_type) {
        (Some(u), Some(ty)) => {
            // validate(): a type needs ulp icmp or ipv6-icmp.
            let (proto, kw) = if u == ulp::ICMPV6 {
                ("ipv6-icmp", "icmpv6")
            } else {
                ("icmp", "icmp")
            };
            m.push(format!("meta l4proto {proto} {kw} type {}", range_text(ty)));
            if let Some(c) = s.icmp_code {
                m.push(format!("{kw} code {}", range_text(c)));
            }
        }
        (Some(u), None) => m.push(format!("meta l4proto {u}")),
        // Port selectors never match packets without ports (TCP, UDP, SCTP carry them).
        (None, _) if has_ports => m.push(format!(
            "meta l4proto {{ {}, {}, {} }}",
            ulp::TCP,
            ulp::UDP,
            ulp::SCTP
        )),
        (None, _) => {}
    }
    let (sport, dport) = match o {
        Orient::In => (s.rport, s.lport),
        Orient::Out => (s.lport, s.rport),
    };
    if let Some(p) = sport {
        m.push(format!("th sport {}", port_text(p)));
    }
    if let Some(p) = dport {
        m.push(format!("th dport {}", port_text(p)));
    }
    Some(m.join(" "))
}

/// What a rule does to cleartext in direction `o`: `None` lets it through (bypass),
/// `Some(reason)` drops it.
fn verdict(action: &Action, o: Orient) -> Option<&'static str> {
    match action {
        Action::Bypass => None,
        Action::Drop => Some(PolicyDrop::Explicit.name()),
        // As Spd::inbound_clear: an alternative without protection accepts clear.
        Action::Ipsec(alts) if o == Orient::In && alts.iter().any(Protection::is_empty) => None,
        // As Spd::outbound: only all-empty alternatives send clear.
        Action::Ipsec(alts) if o == Orient::Out && alts.iter().all(Protection::is_empty) => None,
        Action::Ipsec(_) => Some(match o {
            Orient::In => PolicyDrop::GotClear.name(),
            Orient::Out => OUT_CLEAR,
        }),
    }
}

fn emit_rule(out: &mut String, index: usize, rule: &Rule, o: Orient, log_group: Option<u16>) {
    let Some(m) = selector_match(&rule.selector, o) else {
        return;
    };
    let sep = if m.is_empty() { "" } else { " " };
    match verdict(&rule.action, o) {
        None => {
            let _ = writeln!(out, "\t\t{m}{sep}return");
        }
        Some(reason) => {
            let log = match log_group {
                Some(g) => format!("log group {g} prefix \"ironswan {reason} rule {index}: \" "),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "\t\t{m}{sep}counter {log}drop comment \"{COMMENT_TAG} {} {reason} rule {index}\"",
                o.name()
            );
        }
    }
}

/// Runs nft with `args`, `input` on its standard input; a failure carries nft's messages.
fn run_nft(args: &[&str], input: &str) -> io::Result<String> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("running nft: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input.as_bytes())?;
    }
    // Both pipes are read together, so a long listing cannot block nft.
    let res = child.wait_with_output()?;
    if !res.status.success() {
        return Err(io::Error::other(format!(
            "nft {}: {} {}",
            args.join(" "),
            res.status,
            String::from_utf8_lossy(&res.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&res.stdout).into_owned())
}

/// Loads a ruleset from [`ruleset`] (`nft -f -`): atomically replaces the table.
pub fn install(text: &str) -> io::Result<()> {
    run_nft(&["-f", "-"], text).map(drop)
}

/// Checks a ruleset without loading it (`nft -c -f -`; needs CAP_NET_ADMIN too).
#[allow(dead_code)] // the tests check generated tables with it
pub fn check(text: &str) -> io::Result<()> {
    run_nft(&["-c", "-f", "-"], text).map(drop)
}

/// Deletes the table; no error when there is none.
pub fn remove() -> io::Result<()> {
    install(&format!("table {TABLE} {{}}\ndelete table {TABLE}\n"))
}

/// One drop rule's counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DropCounter {
    /// `in` (cleartext arriving) or `out` (cleartext leaving).
    pub dir: String,
    /// Solaris drop reason (`spd_got_clear`, `spd_explicit`) or [`OUT_CLEAR`].
    pub reason: String,
    /// Index of the policy rule.
    pub rule: usize,
    /// Packets dropped.
    pub packets: u64,
    /// Bytes dropped.
    pub bytes: u64,
}

/// The drop counters of the installed table (`nft -j list table inet ironswan`), in chain
/// order. A rule jumped to from both input and forward counts both.
pub fn counters() -> io::Result<Vec<DropCounter>> {
    let json = run_nft(&["-j", "list", "table", "inet", "ironswan"], "")?;
    parse_counters(&json)
}

/// Reads the drop counters out of `nft -j` output.
pub fn parse_counters(json: &str) -> io::Result<Vec<DropCounter>> {
    let v: serde_json::Value = serde_json::from_str(json)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("nft -j: {e}")))?;
    let mut out = Vec::new();
    let items = v
        .get("nftables")
        .and_then(|x| x.as_array())
        .map(Vec::as_slice)
        .unwrap_or_default();
    for item in items {
        let Some(rule) = item.get("rule") else {
            continue;
        };
        let Some(comment) = rule.get("comment").and_then(|c| c.as_str()) else {
            continue;
        };
        let words: Vec<&str> = comment.split_whitespace().collect();
        let [COMMENT_TAG, dir, reason, "rule", index] = words.as_slice() else {
            continue;
        };
        let Ok(rule_index) = index.parse::<usize>() else {
            continue;
        };
        let counter = rule
            .get("expr")
            .and_then(|e| e.as_array())
            .and_then(|e| e.iter().find_map(|x| x.get("counter")));
        let num = |k: &str| counter.and_then(|c| c.get(k)).and_then(|n| n.as_u64());
        out.push(DropCounter {
            dir: (*dir).to_owned(),
            reason: (*reason).to_owned(),
            rule: rule_index,
            packets: num("packets").unwrap_or(0),
            bytes: num("bytes").unwrap_or(0),
        });
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ipsec_core::spd::{AlgSpec, Negotiate, PolicyDir};
    use ipsec_crypto::EncrAlg;

    fn cfg() -> Config {
        Config {
            tun: "ipsec0".into(),
            mark: 0x1500,
            log_group: Some(7),
        }
    }

    fn esp() -> Action {
        Action::ipsec(Protection::esp(AlgSpec::of(EncrAlg::AesCbc)))
    }

    fn pfx(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap_or((s, ""));
        let addr: IpAddr = a.parse().unwrap();
        let len = if l.is_empty() {
            if addr.is_ipv4() {
                32
            } else {
                128
            }
        } else {
            l.parse().unwrap()
        };
        Prefix { addr, len }
    }

    fn sel(laddr: Option<&str>, raddr: Option<&str>) -> Selector {
        Selector {
            laddr: laddr.map(pfx),
            raddr: raddr.map(pfx),
            ..Selector::any()
        }
    }

    fn gen(rules: Vec<Rule>) -> String {
        gen_with(rules, &Tunables::default())
    }

    fn gen_with(rules: Vec<Rule>, t: &Tunables) -> String {
        let text = ruleset(&PolicySet::from_rules(rules), t, &cfg()).unwrap();
        nft_check(&text);
        text
    }

    /// The chain's body lines.
    fn chain<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
        let head = format!("\tchain {name} {{");
        let mut lines = text.lines().skip_while(|l| *l != head).skip(1);
        let mut v = Vec::new();
        for l in lines.by_ref() {
            if l == "\t}" {
                break;
            }
            v.push(l.trim());
        }
        v
    }

    fn is_root() -> bool {
        ipsec_sys::geteuid() == 0
    }

    /// `nft -c` needs CAP_NET_ADMIN (and nft); skip the check without them.
    fn nft_check(text: &str) {
        if !is_root() {
            eprintln!("not root: nft -c check skipped");
            return;
        }
        if Command::new("nft").arg("--version").output().is_err() {
            eprintln!("no nft: check skipped");
            return;
        }
        if let Err(e) = check(text) {
            panic!("nft -c refused the ruleset: {e}\n{text}");
        }
    }

    #[test]
    fn host_transport() {
        let t = gen(vec![Rule::new(
            sel(Some("192.0.2.1"), Some("192.0.2.2")),
            PolicyDir::Both,
            esp(),
        )]);
        assert!(t.starts_with("table inet ironswan {}\ndelete table inet ironswan\n"));
        let inp = chain(&t, "host_in");
        assert_eq!(
            inp.last().copied(),
            Some(
                "ip saddr 192.0.2.2 ip daddr 192.0.2.1 counter log group 7 prefix \
                 \"ironswan spd_got_clear rule 0: \" drop comment \"ironswan in spd_got_clear rule 0\""
            )
        );
        let out = chain(&t, "host_out");
        assert_eq!(
            out,
            vec![
                "ip saddr 192.0.2.1 ip daddr 192.0.2.2 counter log group 7 prefix \
                 \"ironswan out_clear rule 0: \" drop comment \"ironswan out out_clear rule 0\""
            ]
        );
        let input = chain(&t, "input");
        assert_eq!(
            input,
            vec![
                "type filter hook input priority filter - 10; policy accept;",
                "iifname \"ipsec0\" accept",
                "iifname \"lo\" accept",
                "meta l4proto { esp, ah } accept",
                "udp dport { 500, 4500 } accept",
                "meta l4proto . th dport @persock_clear accept",
                "meta l4proto . th dport @persock_protect counter drop",
                "jump host_in",
            ]
        );
        let output = chain(&t, "output");
        assert_eq!(
            output,
            vec![
                "type filter hook output priority filter - 10; policy accept;",
                "meta mark 0x00001500 accept",
                "oifname \"ipsec0\" accept",
                "oifname \"lo\" accept",
                "meta l4proto . th sport @persock_protect counter drop",
                "udp sport { 500, 4500 } accept",
                "icmpv6 type { 133-137 } accept",
                "jump host_out",
            ]
        );
        assert!(!t.contains("chain forward"));
    }

    #[test]
    fn accept_clear_follows_tables_and_tunables() {
        let rules = vec![Rule::new(
            sel(None, Some("192.0.2.2")),
            PolicyDir::Both,
            esp(),
        )];
        let t = gen(rules.clone());
        let inp = chain(&t, "host_in");
        assert_eq!(
            &inp[..5],
            &[
                "meta l4proto icmp icmp type 3 icmp code { 0-1, 4 } return",
                "meta l4proto icmp icmp type { 4, 11 } return",
                "meta l4proto ipv6-icmp icmpv6 type { 1-3, 130-137, 143 } return",
                "meta l4proto 2 return",
                "meta l4proto 103 return",
            ]
        );
        assert!(!icmp::accept_clear_v4(8, 0) && !icmp::accept_clear_v6(128));
        let off = Tunables {
            icmp_accept_clear: false,
            igmp_accept_clear: false,
            pim_accept_clear: false,
            ..Tunables::default()
        };
        let t = gen_with(rules, &off);
        assert_eq!(chain(&t, "host_in").len(), 1);
        // Custom key-management ports.
        let t2 = ruleset(
            &PolicySet::new(),
            &Tunables {
                ike_port: 1500,
                natt_port: 500,
                ..Tunables::default()
            },
            &cfg(),
        )
        .unwrap();
        assert!(t2.contains("udp dport { 500, 1500 } accept"));
    }

    #[test]
    fn bypass_overrides_earlier_ipsec_and_drop_loses_to_esp() {
        let rules = vec![
            Rule::new(sel(None, Some("10.0.0.0/8")), PolicyDir::Both, Action::Drop),
            Rule::new(sel(None, Some("10.1.0.0/16")), PolicyDir::Both, esp()),
            Rule::new(
                Selector {
                    ulp: Some(ulp::UDP),
                    lport: Some(PortRange::single(53)),
                    ..sel(None, Some("10.1.2.3"))
                },
                PolicyDir::Both,
                Action::Bypass,
            ),
        ];
        let t = gen(rules);
        let inp: Vec<&str> = chain(&t, "host_in")
            .into_iter()
            .filter(|l| l.starts_with("ip "))
            .collect();
        assert_eq!(inp.len(), 3, "{t}");
        assert_eq!(
            inp[0],
            "ip saddr 10.1.2.3 meta l4proto 17 th dport 53 return"
        );
        assert!(inp[1].starts_with("ip saddr 10.1.0.0/16 counter"));
        assert!(inp[1].ends_with("\"ironswan in spd_got_clear rule 1\""));
        assert!(inp[2].starts_with("ip saddr 10.0.0.0/8 counter"));
        assert!(inp[2].ends_with("\"ironswan in spd_explicit rule 0\""));
        let out = chain(&t, "host_out");
        assert_eq!(
            out[0],
            "ip daddr 10.1.2.3 meta l4proto 17 th sport 53 return"
        );
        assert!(out[2].ends_with("\"ironswan out spd_explicit rule 0\""));
    }

    #[test]
    fn ports_ranges_and_directions() {
        let rules = vec![
            Rule::new(
                Selector {
                    lport: Some(PortRange::new(8000, 8080)),
                    rport: Some(PortRange::single(1234)),
                    ..sel(Some("192.0.2.1"), None)
                },
                PolicyDir::In,
                esp(),
            ),
            Rule::new(
                Selector {
                    ulp: Some(ulp::TCP),
                    rport: Some(PortRange::single(443)),
                    ..Selector::any()
                },
                PolicyDir::Out,
                Action::Drop,
            ),
            // Unmatchable: ports with a portless protocol.
            Rule::new(
                Selector {
                    ulp: Some(ulp::IGMP),
                    lport: Some(PortRange::single(1)),
                    ..Selector::any()
                },
                PolicyDir::Both,
                Action::Drop,
            ),
        ];
        let t = gen(rules);
        let inp = chain(&t, "host_in");
        assert_eq!(
            inp.last().copied().unwrap().split(" counter").next(),
            Some("ip daddr 192.0.2.1 meta l4proto { 6, 17, 132 } th sport 1234 th dport 8000-8080")
        );
        assert!(!inp
            .iter()
            .any(|l| l.contains("rule 1") || l.contains("rule 2")));
        let out = chain(&t, "host_out");
        assert_eq!(out.len(), 1);
        assert!(out[0].starts_with("meta l4proto 6 th dport 443 counter"));
        assert!(out[0].contains("out spd_explicit rule 1"));
    }

    #[test]
    fn icmp_selectors() {
        let rules = vec![
            Rule::new(
                Selector {
                    ulp: Some(ulp::ICMP),
                    icmp_type: Some(IcmpRange::single(8)),
                    icmp_code: Some(IcmpRange::new(0, 3)),
                    ..sel(None, Some("198.51.100.0/24"))
                },
                PolicyDir::In,
                esp(),
            ),
            Rule::new(
                Selector {
                    ulp: Some(ulp::ICMPV6),
                    icmp_type: Some(IcmpRange::new(133, 137)),
                    ..Selector::any()
                },
                PolicyDir::Both,
                Action::Bypass,
            ),
        ];
        let t = gen(rules);
        let inp = chain(&t, "host_in");
        let body: Vec<&str> = inp.iter().skip(5).copied().collect();
        assert_eq!(body[0], "meta l4proto ipv6-icmp icmpv6 type 133-137 return");
        assert!(body[1].starts_with(
            "ip saddr 198.51.100.0/24 meta l4proto icmp icmp type 8 icmp code 0-3 counter"
        ));
    }

    #[test]
    fn ipv6_and_host_bits() {
        let rules = vec![
            Rule::new(
                sel(Some("2001:db8:1::1"), Some("2001:db8:2::55/48")),
                PolicyDir::Both,
                esp(),
            ),
            Rule::new(sel(None, Some("::/0")), PolicyDir::Out, Action::Drop),
        ];
        let t = gen(rules);
        let out = chain(&t, "host_out");
        assert!(out[0].starts_with("ip6 saddr 2001:db8:1::1 ip6 daddr 2001:db8:2::/48 counter"));
        assert!(out[1].starts_with("meta nfproto ipv6 counter"));
        let inp = chain(&t, "host_in");
        assert!(inp
            .last()
            .unwrap()
            .starts_with("ip6 saddr 2001:db8:2::/48 ip6 daddr 2001:db8:1::1 counter"));
    }

    #[test]
    fn subnet_tunnel_gets_forward_chain() {
        let rules = vec![
            Rule::new(
                sel(Some("10.1.0.0/16"), Some("10.2.0.0/16")),
                PolicyDir::Both,
                esp(),
            )
            .in_tunnel("ip.tun0", Some(Negotiate::Tunnel)),
            // No addresses: the tunnel takes everything.
            Rule::new(Selector::any(), PolicyDir::In, esp())
                .in_tunnel("ip.tun1", Some(Negotiate::Transport)),
        ];
        let t = gen(rules);
        assert!(t.contains("# tunnel ip.tun0"));
        let t0 = chain(&t, "tunnel0_in");
        assert!(t0[1].starts_with("ip saddr 10.2.0.0/16 ip daddr 10.1.0.0/16 counter"));
        let t1 = chain(&t, "tunnel1_in");
        assert_eq!(t1[0], "# tunnel ip.tun1");
        assert!(t1[1].starts_with("counter log group 7"), "{t1:?}");
        assert_eq!(chain(&t, "tunnel1_out"), vec!["# tunnel ip.tun1"]);
        // The host chain has no rule and accept-clear only.
        assert!(chain(&t, "host_out").is_empty());
        let fwd = chain(&t, "forward");
        assert_eq!(
            &fwd[1..],
            &[
                "iifname != \"ipsec0\" jump tunnel0_in",
                "iifname != \"ipsec0\" jump tunnel1_in",
                "oifname != \"ipsec0\" jump tunnel0_out",
                "oifname != \"ipsec0\" jump tunnel1_out",
            ]
        );
    }

    #[test]
    fn no_log_group_and_bad_config() {
        let rules = vec![Rule::new(
            sel(None, Some("192.0.2.9")),
            PolicyDir::Both,
            Action::Drop,
        )];
        let p = PolicySet::from_rules(rules);
        let t = ruleset(
            &p,
            &Tunables::default(),
            &Config {
                log_group: None,
                ..cfg()
            },
        )
        .unwrap();
        nft_check(&t);
        assert!(!t.contains("log group"));
        for bad in ["", "a\"b", "ipsec%d", "x*", "sixteen-chars-xx", "a b"] {
            let c = Config {
                tun: bad.into(),
                ..cfg()
            };
            assert!(ruleset(&p, &Tunables::default(), &c).is_err(), "{bad:?}");
        }
        let c = Config { mark: 0, ..cfg() };
        assert!(ruleset(&p, &Tunables::default(), &c).is_err());
        let invalid = PolicySet::from_rules(vec![Rule::new(
            Selector {
                icmp_type: Some(IcmpRange::single(1)),
                ..Selector::any()
            },
            PolicyDir::Both,
            Action::Drop,
        )]);
        assert!(ruleset(&invalid, &Tunables::default(), &cfg()).is_err());
    }

    #[test]
    fn parse_counters_reads_our_rules() {
        let json = r#"{"nftables":[{"metainfo":{}},
            {"rule":{"chain":"host_in","comment":"ironswan in spd_got_clear rule 3",
              "expr":[{"counter":{"packets":5,"bytes":420}},{"drop":null}]}},
            {"rule":{"chain":"host_in","comment":"someone else's",
              "expr":[{"counter":{"packets":1,"bytes":1}}]}},
            {"rule":{"chain":"host_in","expr":[{"accept":null}]}},
            {"rule":{"chain":"host_out","comment":"ironswan out out_clear rule 0",
              "expr":[{"counter":{"packets":0,"bytes":0}},{"drop":null}]}}]}"#;
        let c = parse_counters(json).unwrap();
        assert_eq!(
            c,
            vec![
                DropCounter {
                    dir: "in".into(),
                    reason: "spd_got_clear".into(),
                    rule: 3,
                    packets: 5,
                    bytes: 420
                },
                DropCounter {
                    dir: "out".into(),
                    reason: "out_clear".into(),
                    rule: 0,
                    packets: 0,
                    bytes: 0
                },
            ]
        );
        assert!(parse_counters("not json").is_err());
    }
}
