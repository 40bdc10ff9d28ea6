//! The printer: policy entries back in the ipsecconf language.

use std::fmt::Write as _;

use ipsec_crypto::{auth_info, encr_info};

use super::names::{self, ICMP, ICMPV6};
use super::{Address, AlgChoice, AlgSpec, Endpoints, Entry, IcmpRange, Negotiate, PolicyFile};

/// The whole policy, one entry per line (each ending in a newline), in file order. The text
/// parses back into an equal [`PolicyFile`] (line numbers aside).
pub fn print(policy: &PolicyFile) -> String {
    let mut o = String::new();
    for e in &policy.entries {
        o.push_str(&print_entry(e));
        o.push('\n');
    }
    o
}

/// One entry on one line, without a line end:
/// `{laddr 192.0.2.1 raddr 192.0.2.2 ulp tcp} ipsec {encr_algs aes-cbc encr_auth_algs hmac-sha256}`.
pub fn print_entry(e: &Entry) -> String {
    let mut o = String::with_capacity(128);
    let mut words: Vec<String> = Vec::new();
    let p = &e.pattern;
    match &p.endpoints {
        Endpoints::Any => {}
        Endpoints::SrcDst {
            src,
            dst,
            sport,
            dport,
        } => {
            push_addr(&mut words, "saddr", src.as_ref());
            push_addr(&mut words, "daddr", dst.as_ref());
            push_num(&mut words, "sport", sport.map(u32::from));
            push_num(&mut words, "dport", dport.map(u32::from));
        }
        Endpoints::LocalRemote {
            local,
            remote,
            lport,
            rport,
        } => {
            push_addr(&mut words, "laddr", local.as_ref());
            push_addr(&mut words, "raddr", remote.as_ref());
            push_num(&mut words, "lport", lport.map(u32::from));
            push_num(&mut words, "rport", rport.map(u32::from));
        }
    }
    if let Some(u) = p.ulp {
        match names::protocol_name(u) {
            Some(n) => words.push(format!("ulp {n}")),
            None => words.push(format!("ulp {u}")),
        }
    }
    if let Some(t) = p.icmp_type {
        let named = p
            .ulp
            .filter(|_| t.first == t.last)
            .and_then(|u| names::icmp_type_name(u, t.first));
        match named {
            Some(n) => words.push(format!("type {n}")),
            None => words.push(format!("type {}", range(t))),
        }
    }
    if let Some(c) = p.icmp_code {
        let named = match (p.ulp, p.icmp_type) {
            (Some(u @ (ICMP | ICMPV6)), Some(t)) if t.first == t.last && c.first == c.last => {
                names::icmp_code_name(u, t.first, c.first)
            }
            _ => None,
        };
        match named {
            Some(n) => words.push(format!("code {n}")),
            None => words.push(format!("code {}", range(c))),
        }
    }
    if let Some(t) = &p.tunnel {
        words.push(format!("tunnel {t}"));
    }
    if let Some(n) = p.negotiate {
        words.push(match n {
            Negotiate::Tunnel => "negotiate tunnel".to_string(),
            Negotiate::Transport => "negotiate transport".to_string(),
        });
    }
    if let Some(d) = p.dir {
        words.push(format!("dir {}", d.name()));
    }
    let _ = write!(o, "{{{}}}", words.join(" "));

    for (i, (action, props)) in e.alternatives.iter().enumerate() {
        if i > 0 {
            o.push_str(" or");
        }
        let mut words: Vec<String> = Vec::new();
        if let Some(a) = &props.auth_algs {
            words.push(format!("auth_algs {}", alg(a, |x| auth_info(x).name)));
        }
        if let Some(a) = &props.encr_algs {
            words.push(format!("encr_algs {}", alg(a, |x| encr_info(x).name)));
        }
        if let Some(a) = &props.encr_auth_algs {
            words.push(format!("encr_auth_algs {}", alg(a, |x| auth_info(x).name)));
        }
        if let Some(s) = props.sa {
            words.push(format!("sa {}", s.name()));
        }
        if let Some(d) = props.dir {
            words.push(format!("dir {}", d.name()));
        }
        let _ = write!(o, " {} {{{}}}", action.name(), words.join(" "));
    }
    o
}

fn push_addr(words: &mut Vec<String>, kw: &str, a: Option<&Address>) {
    let Some(a) = a else { return };
    let text = match a {
        Address::Prefix(p) => {
            let host = if p.addr.is_ipv4() { 32 } else { 128 };
            if p.len == host {
                p.addr.to_string()
            } else {
                format!("{}/{}", p.addr, p.len)
            }
        }
        Address::Name { name, prefix, .. } => match prefix {
            Some(l) => format!("{name}/{l}"),
            None => name.clone(),
        },
    };
    words.push(format!("{kw} {text}"));
}

fn push_num(words: &mut Vec<String>, kw: &str, v: Option<u32>) {
    if let Some(v) = v {
        words.push(format!("{kw} {v}"));
    }
}

fn range(r: IcmpRange) -> String {
    if r.first == r.last {
        r.first.to_string()
    } else {
        format!("{}-{}", r.first, r.last)
    }
}

fn alg<A: Copy>(s: &AlgSpec<A>, name: impl Fn(A) -> &'static str) -> String {
    let mut o = match s.alg {
        AlgChoice::Any => "any".to_string(),
        AlgChoice::None => "none".to_string(),
        AlgChoice::Alg(a) => name(a).to_string(),
    };
    match (s.key_bits.min, s.key_bits.max) {
        (None, None) => {}
        (Some(a), Some(b)) if a == b => {
            let _ = write!(o, "({a})");
        }
        (Some(a), Some(b)) => {
            let _ = write!(o, "({a}..{b})");
        }
        (Some(a), None) => {
            let _ = write!(o, "({a}..)");
        }
        (None, Some(b)) => {
            let _ = write!(o, "(..{b})");
        }
    }
    o
}
