//! The outer endpoints of named tunnels, and what an ACQUIRE of tunnel-mode policy says.
//!
//! On Solaris a tunnel (`ip.tun0`) is an IP tunnel link made with `dladm create-iptun -a
//! local=ADDR,remote=ADDR`; its per-tunnel policy (ipsecconf `{tunnel ip.tun0 negotiate
//! tunnel laddr NET raddr NET}`) protects the inner packets, and an ACQUIRE for such a
//! packet names the tunnel's endpoints as its source and destination and the policy's
//! prefixes as its inner source and destination (SADB_X_EXT_ADDRESS_INNER_SRC/DST). ipsecd
//! has no tunnel links: `--tunnel NAME=LOCAL,REMOTE` gives a tunnel its endpoints. A
//! tunnel without them keys SAs between the hosts themselves (its ACQUIREs name the
//! packet's addresses outside, and the policy's prefixes inside).
//!
//! ```text
//!   packet 10.1.0.2 -> 10.2.0.2 ─► rule of tunnel ip.tun0 (laddr 10.1.0.0/24 raddr 10.2.0.0/24)
//!     ─► ACQUIRE src 192.0.2.1 dst 192.0.2.2 (--tunnel ip.tun0=192.0.2.1,192.0.2.2)
//!                inner_src 10.1.0.0/24 inner_dst 10.2.0.0/24
//! ```

use std::net::{IpAddr, SocketAddr};

use ipsec_core::spd::{PortRange, Prefix, Selector};
use ipsec_pfkey::engine::AcquireRequest;
use ipsec_pfkey::wire::Address;

/// A tunnel's outer endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TunnelEnds {
    /// The tunnel's name, as ipsecconf's `tunnel` names it.
    pub name: String,
    /// Our end.
    pub local: IpAddr,
    /// The peer's end.
    pub remote: IpAddr,
}

impl std::str::FromStr for TunnelEnds {
    type Err = String;

    /// `NAME=LOCAL,REMOTE`, both addresses of one family.
    fn from_str(s: &str) -> Result<Self, String> {
        let usage =
            || format!("{s:?}: expected NAME=LOCAL,REMOTE (e.g. ip.tun0=192.0.2.1,192.0.2.2)");
        let (name, ends) = s.split_once('=').ok_or_else(usage)?;
        let (l, r) = ends.split_once(',').ok_or_else(usage)?;
        let addr = |a: &str| {
            a.trim()
                .parse::<IpAddr>()
                .map_err(|_| format!("{s:?}: {a:?} is not an IP address"))
        };
        let (local, remote) = (addr(l)?, addr(r)?);
        if name.is_empty() {
            return Err(usage());
        }
        if local.is_ipv4() != remote.is_ipv4() {
            return Err(format!("{s:?}: the endpoints are of different families"));
        }
        Ok(Self {
            name: name.to_string(),
            local,
            remote,
        })
    }
}

/// The endpoints of tunnel `name`, if configured.
pub fn ends_of<'a>(ends: &'a [TunnelEnds], name: &str) -> Option<&'a TunnelEnds> {
    ends.iter().find(|t| t.name == name)
}

/// The inner selectors of an ACQUIRE for a packet that rule `sel` of a tunnel protects
/// (source side first): the rule's local and remote prefixes (a missing one: the whole
/// family of `src`), its protocol and single ports.
pub fn inner_selectors(sel: &Selector, src: IpAddr) -> (Address, Address) {
    let any = Prefix {
        addr: if src.is_ipv4() {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        },
        len: 0,
    };
    let proto = sel.ulp.unwrap_or(0);
    let one = |p: Option<Prefix>, ports: Option<PortRange>| {
        let p = p.unwrap_or(any);
        let port = ports.filter(|r| r.lo == r.hi).map_or(0, |r| r.lo);
        Address {
            proto,
            prefixlen: p.len,
            addr: SocketAddr::new(network(p), port),
        }
    };
    (one(sel.laddr, sel.lport), one(sel.raddr, sel.rport))
}

/// Makes `req`, the ACQUIRE for a packet from `src` that rule `sel` of a tunnel's policy
/// protects in tunnel mode, name the tunnel: its endpoints outside (when configured; else
/// the packet's addresses stay) and the rule's prefixes inside.
pub fn tunnel_acquire(
    req: &mut AcquireRequest,
    sel: &Selector,
    ends: Option<&TunnelEnds>,
    src: IpAddr,
) {
    let (inner_src, inner_dst) = inner_selectors(sel, src);
    req.need.inner_src = Some(inner_src);
    req.need.inner_dst = Some(inner_dst);
    if let Some(e) = ends {
        req.need.src = Address::new(SocketAddr::new(e.local, 0));
        req.need.dst = Address::new(SocketAddr::new(e.remote, 0));
    }
}

/// The network address of a prefix (host bits cleared).
fn network(p: Prefix) -> IpAddr {
    match p.addr {
        IpAddr::V4(a) => {
            let len = u32::from(p.len.min(32));
            let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let len = u32::from(p.len.min(128));
            let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_bad_ones_are_refused() {
        let t: TunnelEnds = "ip.tun0=192.0.2.1,192.0.2.2".parse().unwrap();
        assert_eq!(t.name, "ip.tun0");
        assert_eq!(t.remote, "192.0.2.2".parse::<IpAddr>().unwrap());
        let t6: TunnelEnds = "t6=2001:db8::1,2001:db8::2".parse().unwrap();
        assert!(t6.local.is_ipv6());
        for bad in [
            "ip.tun0",
            "ip.tun0=192.0.2.1",
            "=192.0.2.1,192.0.2.2",
            "t=192.0.2.1,2001:db8::2",
            "t=192.0.2.1,nowhere",
        ] {
            assert!(bad.parse::<TunnelEnds>().is_err(), "{bad}");
        }
        let all = [t, t6];
        assert_eq!(ends_of(&all, "t6").map(|t| t.local), Some(all[1].local));
        assert!(ends_of(&all, "ip.tun1").is_none());
    }

    #[test]
    fn inner_selectors_are_the_rules_prefixes() {
        let pfx = |s: &str, len| {
            Some(Prefix {
                addr: s.parse().unwrap(),
                len,
            })
        };
        let sel = Selector {
            laddr: pfx("10.1.0.9", 24),
            raddr: pfx("10.2.0.0", 16),
            ulp: Some(6),
            rport: Some(PortRange { lo: 80, hi: 80 }),
            lport: Some(PortRange { lo: 1, hi: 9 }),
            ..Selector::default()
        };
        let (s, d) = inner_selectors(&sel, "10.1.0.2".parse().unwrap());
        assert_eq!(
            (s.addr.to_string(), s.prefixlen, s.proto),
            ("10.1.0.0:0".into(), 24, 6)
        );
        assert_eq!(
            (d.addr.to_string(), d.prefixlen),
            ("10.2.0.0:80".into(), 16)
        );
        // No remote prefix: the whole family of the packet.
        let sel = Selector {
            laddr: pfx("fd00:1::", 64),
            ..Selector::default()
        };
        let (_, d) = inner_selectors(&sel, "fd00:1::2".parse().unwrap());
        assert_eq!((d.addr.ip().to_string(), d.prefixlen), ("::".into(), 0));
    }

    #[test]
    fn a_tunnel_acquire_names_the_endpoints_when_the_tunnel_has_them() {
        use ipsec_pfkey::engine::AcquireNeed;
        use ipsec_pfkey::wire::Proposal;
        let host = |a: &str| Address::new(SocketAddr::new(a.parse().unwrap(), 0));
        let req = AcquireRequest {
            need: AcquireNeed {
                proto: ipsec_core::Proto::Esp,
                src: host("10.1.0.2"),
                dst: host("10.2.0.2"),
                inner_src: None,
                inner_dst: None,
            },
            proposal: Proposal {
                replay: 64,
                combs: Vec::new(),
            },
            eprop: None,
            kmc: None,
            ident_src: None,
            ident_dst: None,
        };
        let sel = Selector {
            laddr: Some(Prefix {
                addr: "10.1.0.0".parse().unwrap(),
                len: 24,
            }),
            raddr: Some(Prefix {
                addr: "10.2.0.0".parse().unwrap(),
                len: 24,
            }),
            ..Selector::default()
        };
        let ends: TunnelEnds = "ip.tun0=192.0.2.1,192.0.2.2".parse().unwrap();
        let mut gw = req.clone();
        tunnel_acquire(&mut gw, &sel, Some(&ends), "10.1.0.2".parse().unwrap());
        assert_eq!(
            (gw.need.src, gw.need.dst),
            (host("192.0.2.1"), host("192.0.2.2"))
        );
        assert_eq!(gw.need.inner_dst.map(|a| a.prefixlen), Some(24));
        // No endpoints: between the hosts themselves, still with the rule's prefixes inside.
        let mut h2h = req.clone();
        tunnel_acquire(&mut h2h, &sel, None, "10.1.0.2".parse().unwrap());
        assert_eq!((h2h.need.src, h2h.need.dst), (req.need.src, req.need.dst));
        assert_eq!(h2h.need.inner_src, gw.need.inner_src);
    }
}
