//! The routes and rules that bring protected traffic to the TUN device, installed and
//! removed by ipsecd over rtnetlink (as wg-quick does for WireGuard):
//!
//! ```text
//!   ip rule add not fwmark MARK table TABLE priority PRIO          (IPv4 and IPv6)
//!   ip route add PREFIX dev TUN src LOCAL table TABLE              (each remote prefix policy
//!                                                                  protects or drops outbound)
//!   ip route add prohibit PREFIX metric 4096 table TABLE           (fail closed)
//! ```
//!
//! Everything not carrying the daemon's mark is looked up in TABLE first; destinations that
//! outbound policy protects (or drops) are routed into the TUN device, so ipsecd sees them;
//! everything else falls through to the main table. The daemon's own packets (ESP, AH,
//! bypass reinjection) carry the mark and use the main table. The `prohibit` routes stay
//! when the TUN device disappears (ipsecd killed): protected traffic is then refused by the
//! kernel rather than sent in clear. A clean shutdown removes everything; a restart first
//! removes what a killed predecessor left.

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_core::spd::{Action, PolicyDir, PolicySet};
use ipsec_sys::netlink::{Family, Netlink, Route, RouteKind, Rule};

use crate::log;

/// Metric of the fail-closed `prohibit` routes (above the TUN routes' 0).
const FAIL_CLOSED_METRIC: u32 = 4096;

/// Routing settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The TUN device.
    pub tun: String,
    /// The daemon's firewall mark.
    pub mark: u32,
    /// The routing table of protected destinations.
    pub table: u32,
    /// Priority of the `not fwmark` rules.
    pub priority: u32,
    /// MTU of the TUN device (path MTU minus the largest ESP/AH overhead).
    pub mtu: u32,
}

/// A remote prefix outbound policy sends to the TUN device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dest {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length.
    pub len: u8,
}

/// The installed routing state.
pub struct NetSetup {
    nl: Netlink,
    cfg: Config,
    tun_index: u32,
    dests: BTreeSet<Dest>,
    routes: Vec<Route>,
}

/// The remote prefixes that outbound policy protects or drops (rules that apply outbound
/// and are not bypass; a tunnel rule's remote prefix is the inner destination). A rule without a remote address covers every destination of its
/// family (both families when it has no address at all).
pub fn destinations(policy: &PolicySet) -> BTreeSet<Dest> {
    let mut out = BTreeSet::new();
    for r in &policy.rules {
        if matches!(r.action, Action::Bypass) || r.dir == PolicyDir::In {
            continue;
        }
        match r.selector.raddr {
            Some(p) => {
                out.insert(Dest {
                    addr: p.addr,
                    len: p.len,
                });
            }
            None => {
                let fam = r.selector.laddr.map(|l| l.addr.is_ipv4());
                if fam != Some(false) {
                    out.insert(Dest {
                        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        len: 0,
                    });
                }
                if fam != Some(true) {
                    out.insert(Dest {
                        addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                        len: 0,
                    });
                }
            }
        }
    }
    out
}

fn write_sysctl(path: &str, value: &str) {
    if let Err(e) = std::fs::write(path, value) {
        log::debug(format_args!("{path}: {e}"));
    }
}

impl NetSetup {
    /// Configures the TUN device (no IPv6 link-local address, so the kernel sends no router
    /// or multicast listener solicitations into it; MTU; up), removes what an earlier ipsecd
    /// left in the table, and installs the `not fwmark` rules.
    pub fn up(cfg: Config) -> io::Result<Self> {
        let mut nl = Netlink::open()?;
        write_sysctl(
            &format!("/proc/sys/net/ipv6/conf/{}/addr_gen_mode", cfg.tun),
            "1",
        );
        let tun_index = nl.link_index(&cfg.tun)?;
        nl.link_set_mtu(tun_index, cfg.mtu)?;
        nl.link_set_up(tun_index, true)?;
        let mut s = Self {
            nl,
            cfg,
            tun_index,
            dests: BTreeSet::new(),
            routes: Vec::new(),
        };
        s.remove_all();
        for fam in [Family::V4, Family::V6] {
            let rule = s.rule(fam);
            s.nl.rule_add(&rule)?;
        }
        Ok(s)
    }

    fn rule(&self, family: Family) -> Rule {
        Rule {
            priority: self.cfg.priority,
            fwmark: Some((self.cfg.mark, u32::MAX)),
            invert: true,
            ..Rule::new(family, self.cfg.table)
        }
    }

    /// Removes every route of the table and the rules (also those a killed predecessor
    /// left behind).
    fn remove_all(&mut self) {
        if let Ok(routes) = self.nl.routes_in_table(self.cfg.table) {
            for r in routes {
                let _ = self.nl.route_del(&r);
            }
        }
        for fam in [Family::V4, Family::V6] {
            let rule = self.rule(fam);
            // Delete until none is left (a crashed daemon may have left several).
            for _ in 0..16 {
                if self.nl.rule_del(&rule).is_err() {
                    break;
                }
            }
        }
        self.routes.clear();
        self.dests.clear();
    }

    /// Makes the table route exactly `dests` into the TUN device (each with its fail-closed
    /// twin). Returns how many destinations changed.
    pub fn sync(&mut self, dests: &BTreeSet<Dest>) -> usize {
        if *dests == self.dests {
            return 0;
        }
        let stale: Vec<Dest> = self.dests.difference(dests).copied().collect();
        let fresh: Vec<Dest> = dests.difference(&self.dests).copied().collect();
        for d in &stale {
            let (keep, gone): (Vec<Route>, Vec<Route>) = self
                .routes
                .iter()
                .partition(|r| !(r.dst == d.addr && r.prefix_len == d.len));
            for r in gone {
                if let Err(e) = self.nl.route_del(&r) {
                    log::error(format_args!("removing route {}/{}: {e}", d.addr, d.len));
                }
            }
            self.routes = keep;
        }
        for d in &fresh {
            // The source address the packet would leave with on the real path, so that
            // transport-mode SAs (which name it) match.
            let src = if d.len == 0 {
                None
            } else {
                self.nl
                    .route_get(d.addr, Some(self.cfg.mark))
                    .ok()
                    .and_then(|i| i.src)
            };
            let via_tun = Route {
                table: self.cfg.table,
                oif: Some(self.tun_index),
                src,
                ..Route::new(d.addr, d.len)
            };
            let closed = Route {
                table: self.cfg.table,
                kind: RouteKind::Prohibit,
                metric: Some(FAIL_CLOSED_METRIC),
                ..Route::new(d.addr, d.len)
            };
            for r in [closed, via_tun] {
                match self.nl.route_add(&r) {
                    Ok(()) => self.routes.push(r),
                    Err(e) => log::error(format_args!(
                        "route {}/{} into {}: {e}",
                        d.addr, d.len, self.cfg.tun
                    )),
                }
            }
        }
        self.dests = dests.clone();
        log::info(format_args!(
            "routing {} protected destination(s) into {}",
            self.dests.len(),
            self.cfg.tun
        ));
        stale.len() + fresh.len()
    }

    /// Removes the routes and rules (clean shutdown).
    pub fn down(mut self) {
        self.remove_all();
    }
}
