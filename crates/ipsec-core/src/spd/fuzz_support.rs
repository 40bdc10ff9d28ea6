//! Body of the `spd_lookup` fuzz target, kept in the library so the committed seeds and
//! regressions replay in ordinary tests (`tests/spd_fuzz_replay.rs`).
//!
//! The input is read as a small rule set (IPv4 and IPv6, prefixes drawn from a few nested
//! networks so that they overlap, port and ICMP ranges, every action, every direction, some
//! tunnel rules) followed by packet descriptions drawn from the same pools. For every packet
//! the compiled SPD must name the same rule as the naive reference; every decision function
//! runs on it too (no panics).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use ipsec_crypto::{AuthAlg, EncrAlg};

use super::analysis::{analyze, AnalysisLimits};
use super::index::{CompiledSpd, TunnelNames};
use super::key::{Dir, PacketKey, SocketId};
use super::model::{
    Action, AlgSpec, IcmpRange, KeyLen, PolicyDir, PolicySet, PortRange, Prefix, Protection, Rule,
    SaSharing, Selector,
};
use super::naive::NaiveSpd;
use super::socket::{IpsecReq, SocketInfo};
use super::{Family, Spd};

/// A byte reader that yields zeros once the input is used up.
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    /// Over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }
    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }
    /// The next two bytes, big-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
}

const PORTS: [u16; 8] = [53, 80, 443, 500, 1000, 1001, 4500, 65535];

fn v4(b: &mut Bytes<'_>) -> IpAddr {
    let x = b.u8();
    IpAddr::V4(Ipv4Addr::new(10, x & 3, (x >> 2) & 3, (x >> 4) & 7))
}

fn v6(b: &mut Bytes<'_>) -> IpAddr {
    let x = b.u8();
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        u16::from(x & 3),
        0,
        0,
        0,
        u16::from((x >> 2) & 3),
        u16::from((x >> 4) & 7),
    ))
}

fn addr(b: &mut Bytes<'_>, six: bool) -> IpAddr {
    if six {
        v6(b)
    } else {
        v4(b)
    }
}

fn prefix(b: &mut Bytes<'_>, six: bool) -> Prefix {
    let a = addr(b, six);
    let l = b.u8();
    let len = if six {
        // Bias towards the lengths where the pool's addresses differ.
        [0, 32, 46, 48, 64, 112, 124, 126, 128][usize::from(l) % 9]
    } else {
        [0, 8, 14, 16, 22, 24, 28, 30, 32][usize::from(l) % 9]
    };
    Prefix { addr: a, len }
}

fn port(b: &mut Bytes<'_>) -> u16 {
    let x = b.u8();
    PORTS[usize::from(x) % PORTS.len()].wrapping_add(u16::from(x >> 6))
}

fn port_range(b: &mut Bytes<'_>) -> PortRange {
    let a = port(b);
    if b.u8() & 1 == 0 {
        PortRange::single(a)
    } else {
        let c = port(b);
        PortRange::new(a.min(c), a.max(c))
    }
}

fn icmp_range(b: &mut Bytes<'_>) -> IcmpRange {
    let a = b.u8() % 20;
    let c = b.u8() % 20;
    if b.u8() & 1 == 0 {
        IcmpRange::single(a)
    } else {
        IcmpRange::new(a.min(c), a.max(c))
    }
}

fn protection(b: &mut Bytes<'_>) -> Protection {
    let x = b.u8();
    let ah = (x & 1 != 0).then(|| {
        if x & 4 != 0 {
            AlgSpec::any()
        } else {
            AlgSpec::of(AuthAlg::HmacSha256)
        }
    });
    let esp = (x & 2 != 0 || ah.is_none()).then(|| {
        if x & 8 != 0 {
            AlgSpec::of(EncrAlg::AesCbc).with_bits(KeyLen::range(Some(128), None))
        } else {
            AlgSpec::of(EncrAlg::AesGcm16)
        }
    });
    let auth = (x & 16 != 0).then(|| AlgSpec::of(AuthAlg::HmacSha1));
    Protection::from_props(
        ah,
        esp,
        auth,
        if x & 32 != 0 {
            SaSharing::Unique
        } else {
            SaSharing::Shared
        },
    )
}

/// Reads one rule (which may fail validation).
pub fn rule(b: &mut Bytes<'_>) -> Rule {
    let f = b.u8();
    let g = b.u8();
    let six = f & 1 != 0;
    let mut s = Selector::any();
    if f & 2 != 0 {
        s.laddr = Some(prefix(b, six));
    }
    if f & 4 != 0 {
        s.raddr = Some(prefix(b, six));
    }
    match g & 7 {
        0 | 1 => {}
        2 => s.ulp = Some(6),
        3 => s.ulp = Some(17),
        4 => s.ulp = Some(if six { 58 } else { 1 }),
        5 => s.ulp = Some(if six { 1 } else { 58 }),
        6 => s.ulp = Some(132),
        _ => s.ulp = Some(b.u8()),
    }
    if f & 8 != 0 {
        s.lport = Some(port_range(b));
    }
    if f & 16 != 0 {
        s.rport = Some(port_range(b));
    }
    if matches!(s.ulp, Some(1 | 58)) && g & 8 != 0 {
        s.icmp_type = Some(icmp_range(b));
        if g & 16 != 0 {
            s.icmp_code = Some(icmp_range(b));
        }
    }
    let dir = match (f >> 5) & 3 {
        0 => PolicyDir::Out,
        1 => PolicyDir::In,
        _ => PolicyDir::Both,
    };
    let action = match (g >> 5) & 3 {
        0 => Action::Bypass,
        1 => Action::Drop,
        2 => Action::ipsec(protection(b)),
        _ => Action::Ipsec(vec![protection(b), protection(b)]),
    };
    let mut r = Rule::new(s, dir, action);
    if f & 0x80 != 0 && g & 0x80 != 0 {
        r = r.in_tunnel(if b.u8() & 1 == 0 { "t0" } else { "t1" }, None);
    }
    r
}

/// Reads one packet description.
pub fn packet(b: &mut Bytes<'_>, tunnels: &[super::TunnelId]) -> PacketKey {
    let f = b.u8();
    let six = f & 1 != 0;
    let dir = if f & 2 != 0 { Dir::In } else { Dir::Out };
    let (src, dst) = (addr(b, six), addr(b, six));
    let proto = match (f >> 2) & 7 {
        0 | 1 => 6,
        2 => 17,
        3 => {
            if six {
                58
            } else {
                1
            }
        }
        4 => 132,
        5 => 50,
        6 => {
            if six {
                1
            } else {
                58
            }
        }
        _ => b.u8(),
    };
    let mut k = PacketKey::new(dir, src, dst, proto);
    let g = b.u8();
    if super::model::ulp::has_ports(proto) && g & 1 == 0 {
        k = k.with_ports(port(b), port(b));
    }
    if super::model::ulp::is_icmp(proto, six) && g & 2 == 0 {
        k = k.with_icmp(b.u8() % 20, b.u8() % 20);
    }
    if g & 0x0c == 0x0c {
        if let Some(t) = tunnels.get(usize::from(g >> 4) % tunnels.len().max(1)) {
            k = k.with_tunnel(*t);
        }
    }
    k
}

/// The `spd_lookup` target: `Err` describes a mismatch.
pub fn spd_lookup(data: &[u8]) -> Result<(), String> {
    let _ = PacketKey::from_ip_packet(data, Dir::In);
    let mut b = Bytes::new(data);
    let n = usize::from(b.u8() % 48);
    let rules: Vec<Rule> = (0..n)
        .map(|_| rule(&mut b))
        .filter(|r| r.validate().is_ok())
        .collect();
    let set = PolicySet::from_rules(rules);
    let mut names = TunnelNames::default();
    let tunnels = vec![names.id("t0"), names.id("t1"), names.id("t2")];
    let compiled = CompiledSpd::compile(Arc::new(set.clone()), &mut names)
        .map_err(|e| format!("validated rules failed to compile: {e}"))?;
    let naive = NaiveSpd::new(&set, &names);
    let mut spd = Spd::new();
    for t in ["t0", "t1", "t2"] {
        let _ = spd.tunnel_id(t);
    }
    spd.replace(set.clone(), super::ReplaceOptions::all(false))
        .map_err(|e| format!("replace failed: {e}"))?;
    let sock = SocketId(1);
    let _ = spd.socket_open(
        sock,
        SocketInfo {
            family: Family::V6,
            proto: 6,
            privileged: true,
        },
    );
    let _ = spd.set_socket_policy(sock, &IpsecReq::esp(12, 0));
    let _ = analyze(
        &set,
        AnalysisLimits {
            max_pairs: 20_000,
            max_listed: 4,
        },
    );
    let mut count = 0;
    while b.remaining() > 0 && count < 256 {
        count += 1;
        let k = packet(&mut b, &tunnels);
        let c = compiled.lookup(&k).and_then(|p| p.source.rule_index());
        let r = naive.lookup(&k).map(|(i, _)| i);
        if c != r {
            return Err(format!("{k}: compiled chose {c:?}, naive {r:?}"));
        }
        let _ = spd.outbound(&k);
        let _ = spd.inbound_clear(&k);
        let _ = spd.loopback(&k, Some(sock));
        if count <= 4 {
            let _ = spd.explain(&k);
            let _ = spd.explain(&k.with_socket(sock));
        }
    }
    Ok(())
}
