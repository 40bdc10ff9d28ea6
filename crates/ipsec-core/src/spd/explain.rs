//! The explain query (beyond Solaris): for a packet description, the rule that decides it, its
//! priority broken down, every other matching rule, and why the winner wins.

use core::fmt;
use core::fmt::Write as _;

use super::index::PolicySource;
use super::key::{Dir, PacketKey};
use super::model::{ulp, Action, Oriented, Protection, Selector};
use super::naive::NaiveSpd;
use super::priority::Priority;
use super::socket::IpsecReq;
use super::{Basis, Inbound, Mode, Outbound, Spd};

/// One matching policy entry, described.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExplainedRule {
    /// The rule or socket.
    pub source: PolicySource,
    /// Its priority.
    pub priority: Priority,
    /// Its source line.
    pub line: Option<u32>,
    /// The rule in ipsecconf syntax (or the socket's request).
    pub text: String,
    /// How each selector matched the packet.
    pub matched: Vec<String>,
}

/// The answer to an explain query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The packet.
    pub key: PacketKey,
    /// `host` or `tunnel <name>`.
    pub spd: String,
    /// The deciding entry, if a rule or socket policy decides.
    pub deciding: Option<ExplainedRule>,
    /// Other matching entries, highest priority first.
    pub others: Vec<ExplainedRule>,
    /// Why the decision came out as it did.
    pub basis: Basis,
    /// The outcome, e.g. `protected in transport mode with ipsec {...}`.
    pub outcome: String,
    /// The whole explanation as text.
    pub text: String,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn proto_name(p: u8) -> String {
    ulp::name(p).map_or_else(|| p.to_string(), str::to_owned)
}

fn matched(sel: &Selector, o: &Oriented, dir: Dir, rule_dir: super::PolicyDir) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(p) = sel.laddr {
        v.push(format!("laddr {p} contains local address {}", o.local));
    }
    if let Some(p) = sel.raddr {
        v.push(format!("raddr {p} contains remote address {}", o.remote));
    }
    if let Some(u) = sel.ulp {
        v.push(format!("ulp {}", proto_name(u)));
    }
    if let (Some(r), Some(p)) = (sel.lport, o.lport) {
        v.push(format!("lport {r} contains local port {p}"));
    }
    if let (Some(r), Some(p)) = (sel.rport, o.rport) {
        v.push(format!("rport {r} contains remote port {p}"));
    }
    if let (Some(r), Some(t)) = (sel.icmp_type, o.icmp_type) {
        v.push(format!("type {r} contains ICMP type {t}"));
    }
    if let (Some(r), Some(c)) = (sel.icmp_code, o.icmp_code) {
        v.push(format!("code {r} contains ICMP code {c}"));
    }
    v.push(format!("dir {} covers {}", rule_dir.name(), dir.name()));
    if v.len() == 1 {
        v.insert(0, "the pattern is empty (matches every packet)".to_owned());
    }
    v
}

fn bundles_text(b: &[Protection], mode: Mode) -> String {
    let alts: Vec<String> = b.iter().map(|p| format!("ipsec {p}")).collect();
    let m = match mode {
        Mode::Transport => "transport",
        Mode::Tunnel => "tunnel",
    };
    format!(
        "protected in {m} mode with {} (the first alternative for which SAs can be had)",
        alts.join(" or ")
    )
}

pub(super) fn explain(spd: &Spd, key: &PacketKey) -> Explanation {
    let set = spd.policy();
    let spd_name = match key.tunnel {
        None => "host".to_owned(),
        Some(t) => format!("tunnel {}", spd.tunnel_name(t).unwrap_or("?")),
    };
    let o = key.oriented();
    let naive = NaiveSpd::new(set, spd.tunnel_names());
    let mut all: Vec<ExplainedRule> = naive
        .matches(key)
        .into_iter()
        .filter_map(|(i, _)| {
            let r = set.rules.get(i)?;
            Some(ExplainedRule {
                source: match key.tunnel {
                    None => PolicySource::Host(i),
                    Some(t) => PolicySource::Tunnel(t, i),
                },
                priority: Priority::for_rule(i, &r.action),
                line: r.line,
                text: r.to_string(),
                matched: matched(&r.selector, &o, key.dir, r.dir),
            })
        })
        .collect();
    if key.tunnel.is_none() {
        if let Some(sid) = key.socket {
            if let Some(p) = spd
                .sockets
                .get(&sid)
                .and_then(|s| s.policy_for(super::Family::of(key.src)))
            {
                let req = IpsecReq::from_action(&p.action);
                all.push(ExplainedRule {
                    source: PolicySource::Socket(sid),
                    priority: Priority::socket(),
                    line: None,
                    text: format!("per-socket policy {req:?}: {}", p.action),
                    matched: vec![
                        "per-socket policy applies to all of the socket's traffic".to_owned()
                    ],
                });
            }
        }
    }
    all.sort_by_key(|e| core::cmp::Reverse(e.priority.value()));

    let (basis, outcome, policy_source) = match key.dir {
        Dir::Out => {
            let d = spd.outbound(key);
            let outcome = match d.verdict {
                Outbound::Bypass => "sent in clear".to_owned(),
                Outbound::Drop(r) => format!("dropped ({r})"),
                Outbound::Protect { bundles, mode } => bundles_text(bundles, mode),
            };
            (d.basis, outcome, d.policy.map(|p| (p.source, d.latched)))
        }
        Dir::In => {
            let d = spd.inbound_clear(key);
            let mut outcome = match d.verdict {
                Inbound::Accept => "accepted in clear".to_owned(),
                Inbound::Drop(r) => format!("dropped in clear ({r})"),
            };
            if let Some(p) = d.policy {
                match &p.action {
                    Action::Ipsec(alts) => {
                        let a: Vec<String> = alts.iter().map(|p| format!("ipsec {p}")).collect();
                        let _ = write!(
                            outcome,
                            "; a protected packet is accepted if its SAs satisfy {}",
                            a.join(" or ")
                        );
                    }
                    Action::Bypass => {
                        outcome.push_str("; a protected packet is dropped (spd_got_secure)")
                    }
                    Action::Drop => {}
                }
            }
            (d.basis, outcome, d.policy.map(|p| (p.source, d.latched)))
        }
    };

    let mut deciding = None;
    let mut others = Vec::new();
    for e in all {
        if deciding.is_none() && policy_source.is_some_and(|(s, _)| s == e.source) {
            deciding = Some(e);
        } else {
            others.push(e);
        }
    }
    let latched = policy_source.is_some_and(|(_, l)| l);

    let mut t = String::new();
    let _ = writeln!(t, "packet: {key}");
    let _ = writeln!(t, "SPD: {spd_name}");
    match (&deciding, basis) {
        (Some(d), _) => {
            let name = match d.source {
                PolicySource::Host(i) | PolicySource::Tunnel(_, i) => format!("rule {i}"),
                PolicySource::Socket(s) => format!("socket #{}", s.0),
            };
            let line = d.line.map(|l| format!(" (line {l})")).unwrap_or_default();
            let _ = writeln!(t, "decided by {name}{line}: {}", d.text);
            let _ = writeln!(t, "  matches because: {}", d.matched.join("; "));
            let _ = writeln!(t, "  priority {}", d.priority);
        }
        (None, _) if latched => {
            let _ = writeln!(
                t,
                "decided by the connection's latched policy: no policy applied when it was latched"
            );
        }
        (None, b) => {
            let _ = writeln!(t, "decided by: {}", b.describe());
        }
    }
    if latched {
        let _ = writeln!(
            t,
            "  (latched at connect/accept: later policy changes do not apply)"
        );
    }
    if !others.is_empty() {
        let _ = writeln!(t, "also matching, not deciding:");
        for e in &others {
            let name = match e.source {
                PolicySource::Host(i) | PolicySource::Tunnel(_, i) => format!("rule {i}"),
                PolicySource::Socket(s) => format!("socket #{}", s.0),
            };
            let _ = writeln!(t, "  {name}, priority {}: {}", e.priority, e.text);
        }
        if deciding.is_some() {
            let _ = writeln!(
                t,
                "the highest priority wins: per-socket policy (0x1000000) first, then bypass rules, then rules using ESP, then AH, then file order"
            );
        } else {
            let _ = writeln!(t, "matching rules are not consulted: {}", basis.describe());
        }
    }
    let _ = writeln!(t, "outcome: {outcome}");
    Explanation {
        key: *key,
        spd: spd_name,
        deciding,
        others,
        basis,
        outcome,
        text: t,
    }
}
