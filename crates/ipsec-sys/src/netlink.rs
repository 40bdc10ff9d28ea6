//! rtnetlink (`NETLINK_ROUTE`, rtnetlink(7)): links, addresses, routes and policy-routing
//! rules, so that ipsecd can steer protected destinations into its TUN while its own marked
//! packets (ESP, IKE, keepalives) take the main table and never loop back into it, as
//! wg-quick does:
//!
//! ```text
//!   ip rule add table main suppress_prefixlength 0     Rule { table: RT_TABLE_MAIN, suppress_prefixlen: Some(0), .. }
//!   ip rule add not fwmark M table T                   Rule { table: T, fwmark: Some((M, !0)), invert: true, .. }
//!   ip route add 0.0.0.0/0 dev ipsec0 table T          Route { table: T, oif: Some(index), .. }
//!   ip rule add fwmark 0/M ipproto udp sport 5000 table T2
//!                                                      Rule { fwmark: Some((0, M)), ip_proto: Some(17), sport: Some((5000, 5000)), .. }
//!
//!   unmarked packet --rule "not fwmark M"--> table T --> ipsec0 (TUN) --> ipsecd
//!   ipsecd's packet (mark M) --rules fall through--> main --> the real uplink
//! ```
//!
//! The API is small and synchronous: every request carries `NLM_F_ACK`, waits for the
//! kernel's answer and turns an `nlmsgerr` into an [`io::Error`] holding the errno
//! (`EEXIST` for a duplicate, `ENODEV` for a missing link, `ESRCH`/`ENOENT` for a missing
//! route/rule...). Messages are encoded and decoded by hand in native byte order (netlink(7)
//! `nlmsghdr`, rtnetlink(7) `ifinfomsg`, `ifaddrmsg`, `rtmsg`, `fib_rule_hdr`, `rtattr`,
//! all 4-byte aligned), over rustix's safe netlink socket, so no `unsafe` is needed.
//!
//! Not done here: multicast subscriptions (link/route monitoring), multipath routes,
//! rule selectors other than fwmark (from/to/iif/oif/uid), and listing rules.
#![forbid(unsafe_code)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::net::netlink::SocketAddrNetlink;
use rustix::net::sockopt::{self, Timeout};
use rustix::net::{self, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

/// The `main` routing table (`RT_TABLE_MAIN`).
pub const RT_TABLE_MAIN: u32 = 254;
/// The `local` routing table (`RT_TABLE_LOCAL`).
pub const RT_TABLE_LOCAL: u32 = 255;
/// The `default` routing table (`RT_TABLE_DEFAULT`).
pub const RT_TABLE_DEFAULT: u32 = 253;

/// Size of the receive buffer: one datagram from the kernel (a dump part or a reply) fits.
const RECV_BUF: usize = 32 * 1024;
/// How long to wait for the kernel's answer before giving up with `TimedOut`.
const RECV_TIMEOUT: Duration = Duration::from_secs(5);

/// Numbers from `<linux/netlink.h>`, `<linux/rtnetlink.h>`, `<linux/if_link.h>`,
/// `<linux/if_addr.h>` and `<linux/fib_rules.h>`.
mod c {
    pub(super) const NLMSG_HDRLEN: usize = 16;
    pub(super) const NLMSG_NOOP: u16 = 1;
    pub(super) const NLMSG_ERROR: u16 = 2;
    pub(super) const NLMSG_DONE: u16 = 3;
    pub(super) const NLMSG_OVERRUN: u16 = 4;

    pub(super) const NLM_F_REQUEST: u16 = 0x1;
    pub(super) const NLM_F_MULTI: u16 = 0x2;
    pub(super) const NLM_F_ACK: u16 = 0x4;
    pub(super) const NLM_F_DUMP_INTR: u16 = 0x10;
    pub(super) const NLM_F_DUMP: u16 = 0x300;
    pub(super) const NLM_F_EXCL: u16 = 0x200;
    pub(super) const NLM_F_CREATE: u16 = 0x400;

    pub(super) const RTM_NEWLINK: u16 = 16;
    pub(super) const RTM_GETLINK: u16 = 18;
    pub(super) const RTM_NEWADDR: u16 = 20;
    pub(super) const RTM_DELADDR: u16 = 21;
    pub(super) const RTM_NEWROUTE: u16 = 24;
    pub(super) const RTM_DELROUTE: u16 = 25;
    pub(super) const RTM_GETROUTE: u16 = 26;
    pub(super) const RTM_NEWRULE: u16 = 32;
    pub(super) const RTM_DELRULE: u16 = 33;

    pub(super) const AF_UNSPEC: u8 = 0;
    pub(super) const AF_INET: u8 = 2;
    pub(super) const AF_INET6: u8 = 10;

    pub(super) const IFF_UP: u32 = 0x1;
    pub(super) const IFLA_IFNAME: u16 = 3;
    pub(super) const IFLA_MTU: u16 = 4;
    pub(super) const IFLA_EXT_MASK: u16 = 29;
    pub(super) const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;
    /// `IFNAMSIZ`, including the terminating NUL.
    pub(super) const IFNAMSIZ: usize = 16;

    pub(super) const IFA_ADDRESS: u16 = 1;
    pub(super) const IFA_LOCAL: u16 = 2;

    pub(super) const RTA_DST: u16 = 1;
    pub(super) const RTA_OIF: u16 = 4;
    pub(super) const RTA_GATEWAY: u16 = 5;
    pub(super) const RTA_PRIORITY: u16 = 6;
    pub(super) const RTA_PREFSRC: u16 = 7;
    pub(super) const RTA_METRICS: u16 = 8;
    pub(super) const RTA_TABLE: u16 = 15;
    pub(super) const RTA_MARK: u16 = 16;
    pub(super) const RTAX_MTU: u16 = 2;

    pub(super) const RTPROT_BOOT: u8 = 3;
    pub(super) const RT_SCOPE_UNIVERSE: u8 = 0;
    pub(super) const RT_SCOPE_LINK: u8 = 253;
    pub(super) const RT_SCOPE_HOST: u8 = 254;
    pub(super) const RT_SCOPE_NOWHERE: u8 = 255;
    pub(super) const RTM_F_CLONED: u32 = 0x200;
    pub(super) const RTM_F_LOOKUP_TABLE: u32 = 0x1000;

    pub(super) const RTN_UNICAST: u8 = 1;
    pub(super) const RTN_LOCAL: u8 = 2;
    pub(super) const RTN_BROADCAST: u8 = 3;
    pub(super) const RTN_BLACKHOLE: u8 = 6;
    pub(super) const RTN_UNREACHABLE: u8 = 7;
    pub(super) const RTN_PROHIBIT: u8 = 8;

    pub(super) const FRA_PRIORITY: u16 = 6;
    pub(super) const FRA_FWMARK: u16 = 10;
    pub(super) const FRA_SUPPRESS_PREFIXLEN: u16 = 14;
    pub(super) const FRA_TABLE: u16 = 15;
    pub(super) const FRA_FWMASK: u16 = 16;
    pub(super) const FRA_IP_PROTO: u16 = 22;
    pub(super) const FRA_SPORT_RANGE: u16 = 23;
    pub(super) const FRA_DPORT_RANGE: u16 = 24;
    pub(super) const FR_ACT_TO_TBL: u8 = 1;
    pub(super) const FIB_RULE_INVERT: u32 = 0x2;

    /// `NLA_TYPE_MASK`: the attribute type without the nested/byte-order flags.
    pub(super) const NLA_TYPE_MASK: u16 = 0x3fff;
}

/// An address family for requests that are not tied to one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    V4,
    /// IPv6 (`AF_INET6`).
    V6,
}

impl Family {
    /// The family of `addr`.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Self::V4,
            IpAddr::V6(_) => Self::V6,
        }
    }

    fn raw(self) -> u8 {
        match self {
            Self::V4 => c::AF_INET,
            Self::V6 => c::AF_INET6,
        }
    }

    /// Longest prefix of this family.
    fn max_prefix(self) -> u8 {
        match self {
            Self::V4 => 32,
            Self::V6 => 128,
        }
    }
}

/// What a route does with matching packets (`rtm_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RouteKind {
    /// A gateway or direct route (`RTN_UNICAST`).
    Unicast,
    /// A local address (`RTN_LOCAL`), as found in the `local` table.
    Local,
    /// A broadcast address (`RTN_BROADCAST`).
    Broadcast,
    /// Drop silently (`RTN_BLACKHOLE`): a fail-closed route that keeps protected traffic
    /// from leaving in clear while the TUN is gone.
    Blackhole,
    /// Drop with ICMP unreachable (`RTN_UNREACHABLE`).
    Unreachable,
    /// Drop with ICMP administratively prohibited (`RTN_PROHIBIT`).
    Prohibit,
    /// Any other `rtm_type`.
    Other(u8),
}

impl RouteKind {
    fn raw(self) -> u8 {
        match self {
            Self::Unicast => c::RTN_UNICAST,
            Self::Local => c::RTN_LOCAL,
            Self::Broadcast => c::RTN_BROADCAST,
            Self::Blackhole => c::RTN_BLACKHOLE,
            Self::Unreachable => c::RTN_UNREACHABLE,
            Self::Prohibit => c::RTN_PROHIBIT,
            Self::Other(t) => t,
        }
    }

    fn from_raw(t: u8) -> Self {
        match t {
            c::RTN_UNICAST => Self::Unicast,
            c::RTN_LOCAL => Self::Local,
            c::RTN_BROADCAST => Self::Broadcast,
            c::RTN_BLACKHOLE => Self::Blackhole,
            c::RTN_UNREACHABLE => Self::Unreachable,
            c::RTN_PROHIBIT => Self::Prohibit,
            t => Self::Other(t),
        }
    }
}

/// A route, as `ip route add|del [TYPE] DST/LEN [via GATEWAY] [dev OIF] [src SRC]
/// [metric METRIC] [mtu MTU] table TABLE` takes it. Build one with [`Route::new`] and
/// struct update syntax.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    /// Destination network; its family is the route's family. Host bits must be clear
    /// (IPv4 refuses them with `EINVAL`).
    pub dst: IpAddr,
    /// Destination prefix length (0 for a default route).
    pub prefix_len: u8,
    /// Routing table (`RT_TABLE_MAIN` = 254; any value up to `u32::MAX` except 0).
    pub table: u32,
    /// Route type ([`RouteKind::Unicast`] for ordinary routes).
    pub kind: RouteKind,
    /// Output interface index (`RTA_OIF`).
    pub oif: Option<u32>,
    /// Next hop (`RTA_GATEWAY`), of the same family as `dst`.
    pub gateway: Option<IpAddr>,
    /// Preferred source address (`RTA_PREFSRC`), of the same family as `dst`.
    pub src: Option<IpAddr>,
    /// Route metric (`RTA_PRIORITY`). On deletion, `None` matches any metric.
    pub metric: Option<u32>,
    /// Path MTU (`RTA_METRICS`/`RTAX_MTU`). Ignored on deletion.
    pub mtu: Option<u32>,
}

impl Route {
    /// A unicast route to `dst/prefix_len` in the main table with nothing else set.
    pub fn new(dst: IpAddr, prefix_len: u8) -> Self {
        Self {
            dst,
            prefix_len,
            table: RT_TABLE_MAIN,
            kind: RouteKind::Unicast,
            oif: None,
            gateway: None,
            src: None,
            metric: None,
            mtu: None,
        }
    }
}

/// The kernel's answer to a route lookup ([`Netlink::route_get`], `ip route get`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RouteInfo {
    /// Table of the route that matched (after policy-routing rules).
    pub table: u32,
    /// Type of the route that matched.
    pub kind: RouteKind,
    /// Egress interface index.
    pub oif: Option<u32>,
    /// Next hop, if not on-link.
    pub gateway: Option<IpAddr>,
    /// Source address the kernel would use.
    pub src: Option<IpAddr>,
    /// Path MTU, when the route (or a learned PMTU) sets one; otherwise the egress link's MTU applies.
    pub mtu: Option<u32>,
}

/// A policy-routing rule sending lookups to a table, as `ip rule add|del [not] [fwmark
/// MARK/MASK] [suppress_prefixlength N] table TABLE [pref PRIORITY]` takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Which rule list (IPv4 or IPv6) the rule belongs to.
    pub family: Family,
    /// Rule priority (`pref`); lower is evaluated first. 0 means "unset": on addition the
    /// kernel picks one just below the lowest existing non-zero priority (as `ip rule add`
    /// without `pref` does), on deletion any priority matches.
    pub priority: u32,
    /// Table to look up (`RT_TABLE_MAIN` = 254).
    pub table: u32,
    /// Match packets whose `mark & mask == mark` (`FRA_FWMARK`, `FRA_FWMASK`).
    pub fwmark: Option<(u32, u32)>,
    /// Invert the selector (`FIB_RULE_INVERT`, `ip rule add not ...`).
    pub invert: bool,
    /// Ignore results of this table's lookup whose prefix length is at most this
    /// (`FRA_SUPPRESS_PREFIXLEN`; 0 ignores default routes).
    pub suppress_prefixlen: Option<u32>,
    /// Match this IP protocol only (`FRA_IP_PROTO`, `ip rule add ipproto P`).
    pub ip_proto: Option<u8>,
    /// Match source ports in this inclusive range (`FRA_SPORT_RANGE`, `sport A-B`).
    pub sport: Option<(u16, u16)>,
    /// Match destination ports in this inclusive range (`FRA_DPORT_RANGE`, `dport A-B`).
    pub dport: Option<(u16, u16)>,
}

impl Rule {
    /// A rule sending every lookup of `family` to `table`, with a kernel-chosen priority.
    pub fn new(family: Family, table: u32) -> Self {
        Self {
            family,
            priority: 0,
            table,
            fwmark: None,
            invert: false,
            suppress_prefixlen: None,
            ip_proto: None,
            sport: None,
            dport: None,
        }
    }
}

/// A `NETLINK_ROUTE` socket. Requests are synchronous and numbered; datagrams not from the
/// kernel and messages answering other requests are skipped.
#[derive(Debug)]
pub struct Netlink {
    fd: OwnedFd,
    port: u32,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a `NETLINK_ROUTE` socket bound to a kernel-assigned port, with a 32 KiB receive
    /// buffer and a 5 s wait for each answer. Changes need `CAP_NET_ADMIN` in the socket's
    /// network namespace; lookups do not.
    pub fn open() -> io::Result<Self> {
        let fd = net::socket_with(
            AddressFamily::NETLINK,
            SocketType::RAW,
            SocketFlags::CLOEXEC,
            None, // NETLINK_ROUTE
        )?;
        net::bind(&fd, &SocketAddrNetlink::new(0, 0))?;
        sockopt::set_socket_timeout(&fd, Timeout::Recv, Some(RECV_TIMEOUT))?;
        let port = SocketAddrNetlink::try_from(net::getsockname(&fd)?)?.pid();
        Ok(Self {
            fd,
            port,
            seq: 0,
            buf: vec![0; RECV_BUF],
        })
    }

    /// Index of the link called `name` (`RTM_GETLINK` by `IFLA_IFNAME`). `ENODEV` if there is
    /// none; `InvalidInput` for a name that cannot be a link name.
    pub fn link_index(&mut self, name: &str) -> io::Result<u32> {
        if name.is_empty() || name.len() >= c::IFNAMSIZ || name.contains('\0') {
            return Err(invalid(format!("{name:?} is not a link name")));
        }
        let mut m = Msg::new(c::RTM_GETLINK, c::NLM_F_REQUEST | c::NLM_F_ACK);
        m.push(&ifinfomsg(0, 0, 0));
        let mut z = name.as_bytes().to_vec();
        z.push(0);
        m.attr(c::IFLA_IFNAME, &z);
        m.attr(c::IFLA_EXT_MASK, &c::RTEXT_FILTER_SKIP_STATS.to_ne_bytes());
        let mut index = None;
        self.transact(m, |ty, p| {
            if ty == c::RTM_NEWLINK {
                index = Some(u32_at(p, 4)?);
            }
            Ok(())
        })?;
        index.ok_or_else(|| malformed("no link in the RTM_GETLINK answer"))
    }

    /// Sets link `index` administratively up or down (`ip link set dev X up|down`).
    pub fn link_set_up(&mut self, index: u32, up: bool) -> io::Result<()> {
        let mut m = Msg::new(c::RTM_NEWLINK, c::NLM_F_REQUEST | c::NLM_F_ACK);
        m.push(&ifinfomsg(index, if up { c::IFF_UP } else { 0 }, c::IFF_UP));
        self.transact(m, ignore)
    }

    /// Sets the MTU of link `index` (`ip link set dev X mtu N`).
    pub fn link_set_mtu(&mut self, index: u32, mtu: u32) -> io::Result<()> {
        let mut m = Msg::new(c::RTM_NEWLINK, c::NLM_F_REQUEST | c::NLM_F_ACK);
        m.push(&ifinfomsg(index, 0, 0));
        m.attr(c::IFLA_MTU, &mtu.to_ne_bytes());
        self.transact(m, ignore)
    }

    /// Adds `addr/prefix_len` to link `index` (`ip addr add`); `EEXIST` if it is there.
    pub fn addr_add(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        let flags = c::NLM_F_REQUEST | c::NLM_F_ACK | c::NLM_F_CREATE | c::NLM_F_EXCL;
        self.addr(c::RTM_NEWADDR, flags, index, addr, prefix_len)
    }

    /// Removes `addr/prefix_len` from link `index` (`ip addr del`); `EADDRNOTAVAIL` if it is
    /// not there.
    pub fn addr_del(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> io::Result<()> {
        let flags = c::NLM_F_REQUEST | c::NLM_F_ACK;
        self.addr(c::RTM_DELADDR, flags, index, addr, prefix_len)
    }

    fn addr(
        &mut self,
        ty: u16,
        flags: u16,
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
    ) -> io::Result<()> {
        let family = Family::of(addr);
        check_prefix(family, prefix_len)?;
        let mut m = Msg::new(ty, flags);
        // struct ifaddrmsg { family, prefixlen, flags, scope: u8; index: u32 }
        let mut h = [0u8; 8];
        h[0] = family.raw();
        h[1] = prefix_len;
        h[4..8].copy_from_slice(&index.to_ne_bytes());
        m.push(&h);
        // As `ip addr add` sends it: IFA_LOCAL is the interface's address, IFA_ADDRESS the
        // same unless it is a point-to-point peer.
        m.attr(c::IFA_LOCAL, &ip_bytes(addr));
        m.attr(c::IFA_ADDRESS, &ip_bytes(addr));
        self.transact(m, ignore)
    }

    /// Adds `route` (`ip route add`, exclusive): `EEXIST` if the same route is there,
    /// `ENODEV` if its `oif` does not exist, `ENETUNREACH` if its gateway cannot be reached.
    pub fn route_add(&mut self, route: &Route) -> io::Result<()> {
        let flags = c::NLM_F_REQUEST | c::NLM_F_ACK | c::NLM_F_CREATE | c::NLM_F_EXCL;
        self.route(c::RTM_NEWROUTE, flags, route)
    }

    /// Removes the route matching `route` (`ip route del`): the destination, table and kind
    /// must match, and so must each of `oif`, `gateway`, `src` and `metric` that is set.
    /// `ESRCH` if there is none.
    pub fn route_del(&mut self, route: &Route) -> io::Result<()> {
        self.route(c::RTM_DELROUTE, c::NLM_F_REQUEST | c::NLM_F_ACK, route)
    }

    fn route(&mut self, ty: u16, flags: u16, r: &Route) -> io::Result<()> {
        let family = Family::of(r.dst);
        check_prefix(family, r.prefix_len)?;
        for a in [r.gateway, r.src].into_iter().flatten() {
            if Family::of(a) != family {
                return Err(invalid(format!(
                    "{a} is not of the family of the route to {}",
                    r.dst
                )));
            }
        }
        let add = ty == c::RTM_NEWROUTE;
        // The scope `ip route` picks: IPv4 direct routes are link-scoped, deletion matches
        // any scope; IPv6 routes are always universe-scoped.
        let scope = match (family, r.kind) {
            (Family::V6, _) => c::RT_SCOPE_UNIVERSE,
            (Family::V4, _) if !add => c::RT_SCOPE_NOWHERE,
            (Family::V4, RouteKind::Local) => c::RT_SCOPE_HOST,
            (Family::V4, RouteKind::Broadcast) => c::RT_SCOPE_LINK,
            (Family::V4, RouteKind::Unicast) if r.gateway.is_none() => c::RT_SCOPE_LINK,
            (Family::V4, _) => c::RT_SCOPE_UNIVERSE,
        };
        let mut m = Msg::new(ty, flags);
        m.push(&rtmsg(
            family,
            r.prefix_len,
            short_table(r.table),
            if add { c::RTPROT_BOOT } else { 0 },
            scope,
            r.kind.raw(),
            0,
        ));
        m.attr(c::RTA_TABLE, &r.table.to_ne_bytes());
        if r.prefix_len > 0 {
            m.attr(c::RTA_DST, &ip_bytes(r.dst));
        }
        if let Some(oif) = r.oif {
            m.attr(c::RTA_OIF, &oif.to_ne_bytes());
        }
        if let Some(gw) = r.gateway {
            m.attr(c::RTA_GATEWAY, &ip_bytes(gw));
        }
        if let Some(src) = r.src {
            m.attr(c::RTA_PREFSRC, &ip_bytes(src));
        }
        if let Some(metric) = r.metric {
            m.attr(c::RTA_PRIORITY, &metric.to_ne_bytes());
        }
        if let (Some(mtu), true) = (r.mtu, add) {
            let nest = m.begin(c::RTA_METRICS);
            m.attr(c::RTAX_MTU, &mtu.to_ne_bytes());
            m.end(nest);
        }
        self.transact(m, ignore)
    }

    /// Looks up the route the kernel would use to send to `dst` from this host with firewall
    /// mark `mark` (`ip route get DST [mark M]`), policy-routing rules included: the egress
    /// link and path MTU towards a peer. `ENETUNREACH` when no route matches, `EINVAL` for a
    /// blackhole route.
    pub fn route_get(&mut self, dst: IpAddr, mark: Option<u32>) -> io::Result<RouteInfo> {
        let family = Family::of(dst);
        let mut m = Msg::new(c::RTM_GETROUTE, c::NLM_F_REQUEST | c::NLM_F_ACK);
        m.push(&rtmsg(
            family,
            family.max_prefix(),
            0,
            0,
            0,
            0,
            c::RTM_F_LOOKUP_TABLE,
        ));
        m.attr(c::RTA_DST, &ip_bytes(dst));
        if let Some(mark) = mark {
            m.attr(c::RTA_MARK, &mark.to_ne_bytes());
        }
        let mut info = None;
        self.transact(m, |ty, p| {
            if ty == c::RTM_NEWROUTE {
                let r = parse_route(p)?.route;
                info = Some(RouteInfo {
                    table: r.table,
                    kind: r.kind,
                    oif: r.oif,
                    gateway: r.gateway,
                    src: r.src,
                    mtu: r.mtu,
                });
            }
            Ok(())
        })?;
        info.ok_or_else(|| malformed("no route in the RTM_GETROUTE answer"))
    }

    /// The IPv4 and IPv6 routes in `table` (`ip route show table T` for both families),
    /// e.g. to remove what a previous run left behind. `metric` is always set; `mtu` when
    /// the route has one.
    pub fn routes_in_table(&mut self, table: u32) -> io::Result<Vec<Route>> {
        let mut tries = 0;
        loop {
            let mut m = Msg::new(c::RTM_GETROUTE, c::NLM_F_REQUEST | c::NLM_F_DUMP);
            m.push(&rtmsg_unspec());
            let mut routes = Vec::new();
            let res = self.transact(m, |ty, p| {
                if ty == c::RTM_NEWROUTE {
                    let r = parse_route(p)?;
                    if r.route.table == table && !r.cloned {
                        routes.push(r.route);
                    }
                }
                Ok(())
            });
            match res {
                // The table changed during the dump: take it again.
                Err(e) if e.kind() == io::ErrorKind::Interrupted && tries < 3 => tries += 1,
                Err(e) => return Err(e),
                Ok(()) => return Ok(routes),
            }
        }
    }

    /// Adds `rule` (`ip rule add`, exclusive): `EEXIST` if an identical rule is there.
    pub fn rule_add(&mut self, rule: &Rule) -> io::Result<()> {
        let flags = c::NLM_F_REQUEST | c::NLM_F_ACK | c::NLM_F_CREATE | c::NLM_F_EXCL;
        self.rule(c::RTM_NEWRULE, flags, rule)
    }

    /// Removes the first rule matching `rule` (`ip rule del`); `ENOENT` if there is none.
    pub fn rule_del(&mut self, rule: &Rule) -> io::Result<()> {
        self.rule(c::RTM_DELRULE, c::NLM_F_REQUEST | c::NLM_F_ACK, rule)
    }

    fn rule(&mut self, ty: u16, flags: u16, r: &Rule) -> io::Result<()> {
        let mut m = Msg::new(ty, flags);
        // struct fib_rule_hdr { family, dst_len, src_len, tos, table, res1, res2, action: u8;
        //                       flags: u32 }
        let mut h = [0u8; 12];
        h[0] = r.family.raw();
        h[4] = short_table(r.table);
        h[7] = c::FR_ACT_TO_TBL;
        let rflags = if r.invert { c::FIB_RULE_INVERT } else { 0 };
        h[8..12].copy_from_slice(&rflags.to_ne_bytes());
        m.push(&h);
        m.attr(c::FRA_TABLE, &r.table.to_ne_bytes());
        if r.priority != 0 {
            m.attr(c::FRA_PRIORITY, &r.priority.to_ne_bytes());
        }
        if let Some((mark, mask)) = r.fwmark {
            m.attr(c::FRA_FWMARK, &mark.to_ne_bytes());
            m.attr(c::FRA_FWMASK, &mask.to_ne_bytes());
        }
        if let Some(len) = r.suppress_prefixlen {
            m.attr(c::FRA_SUPPRESS_PREFIXLEN, &len.to_ne_bytes());
        }
        if let Some(p) = r.ip_proto {
            m.attr(c::FRA_IP_PROTO, &[p]);
        }
        // struct fib_rule_port_range { __u16 start, end; }
        for (ty, range) in [(c::FRA_SPORT_RANGE, r.sport), (c::FRA_DPORT_RANGE, r.dport)] {
            if let Some((lo, hi)) = range {
                let mut b = [0u8; 4];
                b[..2].copy_from_slice(&lo.to_ne_bytes());
                b[2..].copy_from_slice(&hi.to_ne_bytes());
                m.attr(ty, &b);
            }
        }
        self.transact(m, ignore)
    }

    /// Sends `m` and reads the kernel's answer, handing each reply message (type, payload)
    /// to `on_reply`, until the acknowledgement (or `NLMSG_DONE` for a dump). A kernel
    /// error becomes `io::Error::from_raw_os_error(errno)`; an inconsistent dump
    /// (`NLM_F_DUMP_INTR`) becomes `Interrupted`. The answer is always read to its end, so
    /// the next request starts clean even when `on_reply` fails.
    fn transact(
        &mut self,
        mut m: Msg,
        mut on_reply: impl FnMut(u16, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let dump = m.flags() & c::NLM_F_DUMP == c::NLM_F_DUMP;
        let bytes = m.finish(seq);
        let kernel = SocketAddrNetlink::new(0, 0);
        let sent = retry_eintr(|| net::sendto(&self.fd, bytes, SendFlags::empty(), &kernel))?;
        if sent != bytes.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "netlink request sent in part",
            ));
        }
        let mut first_err: Option<io::Error> = None;
        let mut intr = false;
        loop {
            let (n, full, from) =
                retry_eintr(|| net::recvfrom(&self.fd, &mut self.buf[..], RecvFlags::TRUNC))
                    .map_err(|e| {
                        if e == rustix::io::Errno::AGAIN {
                            io::Error::new(io::ErrorKind::TimedOut, "no answer from the kernel")
                        } else {
                            e.into()
                        }
                    })?;
            let from_kernel = from
                .and_then(|a| SocketAddrNetlink::try_from(a).ok())
                .is_some_and(|a| a.pid() == 0);
            if !from_kernel {
                continue;
            }
            if full > n {
                first_err.get_or_insert_with(|| malformed("netlink answer truncated"));
            }
            let mut rest = self.buf.get(..n).unwrap_or_default();
            while let Some(msg) = next_msg(&mut rest)? {
                if msg.seq != seq || msg.port != self.port {
                    continue;
                }
                intr |= msg.flags & c::NLM_F_DUMP_INTR != 0;
                match msg.ty {
                    c::NLMSG_NOOP => {}
                    c::NLMSG_ERROR => {
                        let errno = i32_at(msg.payload, 0)?;
                        return match (first_err, errno) {
                            (Some(e), _) => Err(e),
                            (None, 0) => Ok(()),
                            (None, e) => Err(io::Error::from_raw_os_error(e.saturating_neg())),
                        };
                    }
                    c::NLMSG_DONE if dump || msg.flags & c::NLM_F_MULTI != 0 => {
                        // A dump's final status, an int, when the kernel sends one.
                        let errno = i32_at(msg.payload, 0).unwrap_or(0);
                        return match (first_err, errno) {
                            (Some(e), _) => Err(e),
                            (None, e) if e < 0 => {
                                Err(io::Error::from_raw_os_error(e.saturating_neg()))
                            }
                            (None, _) if intr => Err(io::Error::new(
                                io::ErrorKind::Interrupted,
                                "netlink dump interrupted by a concurrent change",
                            )),
                            (None, _) => Ok(()),
                        };
                    }
                    c::NLMSG_OVERRUN => {
                        first_err.get_or_insert_with(|| malformed("netlink overrun"));
                    }
                    ty => {
                        if first_err.is_none() {
                            if let Err(e) = on_reply(ty, msg.payload) {
                                first_err = Some(e);
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) fn retry_eintr<T>(
    mut f: impl FnMut() -> rustix::io::Result<T>,
) -> Result<T, rustix::io::Errno> {
    loop {
        match f() {
            Err(rustix::io::Errno::INTR) => {}
            r => return r,
        }
    }
}

fn ignore(_: u16, _: &[u8]) -> io::Result<()> {
    Ok(())
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

pub(crate) fn malformed(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn check_prefix(family: Family, prefix_len: u8) -> io::Result<()> {
    if prefix_len > family.max_prefix() {
        return Err(invalid(format!(
            "prefix length {prefix_len} is longer than {}",
            family.max_prefix()
        )));
    }
    Ok(())
}

/// The 8-bit table field of `rtmsg`/`fib_rule_hdr`: tables past 255 only fit in the
/// `RTA_TABLE`/`FRA_TABLE` attribute, which is always sent too.
fn short_table(table: u32) -> u8 {
    u8::try_from(table).unwrap_or(0)
}

fn ip_bytes(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn ip_from(family: u8, b: &[u8]) -> Option<IpAddr> {
    match family {
        c::AF_INET => <[u8; 4]>::try_from(b)
            .ok()
            .map(|o| Ipv4Addr::from(o).into()),
        c::AF_INET6 => <[u8; 16]>::try_from(b)
            .ok()
            .map(|o| Ipv6Addr::from(o).into()),
        _ => None,
    }
}

/// `struct ifinfomsg { family: u8, pad: u8, type: u16, index: i32, flags: u32, change: u32 }`.
fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0] = c::AF_UNSPEC;
    h[4..8].copy_from_slice(&index.to_ne_bytes());
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h[12..16].copy_from_slice(&change.to_ne_bytes());
    h
}

/// `struct rtmsg { family, dst_len, src_len, tos, table, protocol, scope, type: u8;
/// flags: u32 }`.
fn rtmsg(
    family: Family,
    dst_len: u8,
    table: u8,
    protocol: u8,
    scope: u8,
    ty: u8,
    flags: u32,
) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[0] = family.raw();
    h[1] = dst_len;
    h[4] = table;
    h[5] = protocol;
    h[6] = scope;
    h[7] = ty;
    h[8..12].copy_from_slice(&flags.to_ne_bytes());
    h
}

/// An all-zero `rtmsg` (`AF_UNSPEC`): a dump of both families.
fn rtmsg_unspec() -> [u8; 12] {
    [0u8; 12]
}

fn u32_at(b: &[u8], at: usize) -> io::Result<u32> {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map(u32::from_ne_bytes)
        .ok_or_else(|| malformed("netlink message too short"))
}

pub(crate) fn i32_at(b: &[u8], at: usize) -> io::Result<i32> {
    u32_at(b, at).map(|v| i32::from_ne_bytes(v.to_ne_bytes()))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    b.get(at..at + 2)
        .and_then(|s| <[u8; 2]>::try_from(s).ok())
        .map(u16::from_ne_bytes)
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// A request being built: `nlmsghdr`, a fixed header, then `rtattr`s, each 4-byte aligned.
pub(crate) struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    pub(crate) fn new(ty: u16, flags: u16) -> Self {
        let mut buf = Vec::with_capacity(128);
        // struct nlmsghdr { len: u32, type: u16, flags: u16, seq: u32, pid: u32 }
        buf.extend_from_slice(&[0; 4]);
        buf.extend_from_slice(&ty.to_ne_bytes());
        buf.extend_from_slice(&flags.to_ne_bytes());
        buf.extend_from_slice(&[0; 8]);
        Self { buf }
    }

    fn flags(&self) -> u16 {
        u16_at(&self.buf, 6).unwrap_or(0)
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(align4(self.buf.len()), 0);
    }

    /// Appends attribute `ty` holding `data`. Every attribute sent here is a few bytes
    /// long, far below the 64 KiB an `rtattr` length can express.
    pub(crate) fn attr(&mut self, ty: u16, data: &[u8]) {
        let len = u16::try_from(4 + data.len()).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.push(data);
    }

    /// Opens nested attribute `ty`; close it with [`Msg::end`].
    fn begin(&mut self, ty: u16) -> usize {
        let at = self.buf.len();
        self.attr(ty, &[]);
        at
    }

    fn end(&mut self, at: usize) {
        let len = u16::try_from(self.buf.len() - at).unwrap_or(u16::MAX);
        if let Some(l) = self.buf.get_mut(at..at + 2) {
            l.copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// Sets the length and sequence number; the bytes to send.
    pub(crate) fn finish(&mut self, seq: u32) -> &[u8] {
        let len = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        if let Some(h) = self.buf.get_mut(..c::NLMSG_HDRLEN) {
            h[0..4].copy_from_slice(&len.to_ne_bytes());
            h[8..12].copy_from_slice(&seq.to_ne_bytes());
        }
        &self.buf
    }
}

/// One received netlink message.
pub(crate) struct NlMsg<'a> {
    pub(crate) ty: u16,
    pub(crate) flags: u16,
    pub(crate) seq: u32,
    pub(crate) port: u32,
    pub(crate) payload: &'a [u8],
}

/// Takes the next message off `rest`; `None` at the end of the datagram.
pub(crate) fn next_msg<'a>(rest: &mut &'a [u8]) -> io::Result<Option<NlMsg<'a>>> {
    if rest.len() < c::NLMSG_HDRLEN {
        return Ok(None);
    }
    let len = u32_at(rest, 0)? as usize;
    let (ty, flags) = match (u16_at(rest, 4), u16_at(rest, 6)) {
        (Some(t), Some(f)) => (t, f),
        _ => return Err(malformed("netlink message too short")),
    };
    let seq = u32_at(rest, 8)?;
    let port = u32_at(rest, 12)?;
    let payload = rest
        .get(c::NLMSG_HDRLEN..len)
        .ok_or_else(|| malformed("bad netlink message length"))?;
    *rest = rest.get(align4(len)..).unwrap_or_default();
    Ok(Some(NlMsg {
        ty,
        flags,
        seq,
        port,
        payload,
    }))
}

/// The `rtattr`s in `b`: (type, payload). Stops at the first malformed one.
pub(crate) struct Attrs<'a>(pub(crate) &'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let len = usize::from(u16_at(self.0, 0)?);
        let ty = u16_at(self.0, 2)?;
        let data = self.0.get(4..len)?;
        self.0 = self.0.get(align4(len)..).unwrap_or_default();
        Some((ty & c::NLA_TYPE_MASK, data))
    }
}

fn attr_u32(b: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(b).ok().map(u32::from_ne_bytes)
}

/// A route from the kernel, and whether it is a cached clone (`RTM_F_CLONED`), not a route
/// of the table.
struct ParsedRoute {
    route: Route,
    cloned: bool,
}

/// Decodes an `RTM_NEWROUTE` payload.
fn parse_route(p: &[u8]) -> io::Result<ParsedRoute> {
    let h = p.get(..12).ok_or_else(|| malformed("rtmsg too short"))?;
    let (family, dst_len, short_table, ty) = (h[0], h[1], h[4], h[7]);
    let flags = u32_at(h, 8)?;
    let unspecified = match family {
        c::AF_INET => IpAddr::from(Ipv4Addr::UNSPECIFIED),
        c::AF_INET6 => IpAddr::from(Ipv6Addr::UNSPECIFIED),
        _ => return Err(malformed("route of an unknown family")),
    };
    let mut route = Route::new(unspecified, dst_len);
    route.table = u32::from(short_table);
    route.kind = RouteKind::from_raw(ty);
    for (t, v) in Attrs(p.get(12..).unwrap_or_default()) {
        match t {
            c::RTA_DST => route.dst = ip_from(family, v).unwrap_or(route.dst),
            c::RTA_TABLE => route.table = attr_u32(v).unwrap_or(route.table),
            c::RTA_OIF => route.oif = attr_u32(v),
            c::RTA_GATEWAY => route.gateway = ip_from(family, v),
            c::RTA_PREFSRC => route.src = ip_from(family, v),
            c::RTA_PRIORITY => route.metric = attr_u32(v),
            c::RTA_METRICS => {
                route.mtu = Attrs(v)
                    .find(|&(t, _)| t == c::RTAX_MTU)
                    .and_then(|(_, v)| attr_u32(v));
            }
            _ => {}
        }
    }
    Ok(ParsedRoute {
        route,
        cloned: flags & c::RTM_F_CLONED != 0,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn request_layout() {
        let mut m = Msg::new(c::RTM_NEWROUTE, c::NLM_F_REQUEST | c::NLM_F_ACK);
        m.push(&rtmsg(Family::V4, 24, 254, 3, 253, 1, 0));
        m.attr(c::RTA_DST, &[10, 1, 2, 0]);
        let nest = m.begin(c::RTA_METRICS);
        m.attr(c::RTAX_MTU, &1400u32.to_ne_bytes());
        m.end(nest);
        m.attr(c::IFLA_IFNAME, b"d0\0");
        let b = m.finish(7).to_vec();
        assert_eq!(b.len(), 16 + 12 + 8 + 4 + 8 + 8);
        assert_eq!(u32_at(&b, 0).unwrap() as usize, b.len());
        assert_eq!(u16_at(&b, 4), Some(c::RTM_NEWROUTE));
        assert_eq!(u32_at(&b, 8).unwrap(), 7);
        let attrs: Vec<_> = Attrs(&b[28..]).collect();
        assert_eq!(attrs.len(), 3);
        assert_eq!(attrs[0], (c::RTA_DST, &[10u8, 1, 2, 0][..]));
        assert_eq!(attrs[1].0, c::RTA_METRICS);
        assert_eq!(
            Attrs(attrs[1].1).collect::<Vec<_>>(),
            vec![(c::RTAX_MTU, &1400u32.to_ne_bytes()[..])]
        );
        // "d0\0" padded to 4 bytes; the attribute length excludes the padding.
        assert_eq!(attrs[2], (c::IFLA_IFNAME, &b"d0\0"[..]));
        assert_eq!(u16_at(&b, 48), Some(7));
    }

    #[test]
    fn route_round_trip() {
        let mut m = Msg::new(c::RTM_NEWROUTE, 0);
        m.push(&rtmsg(Family::V6, 48, 0, 3, 0, c::RTN_BLACKHOLE, 0));
        m.attr(c::RTA_TABLE, &51820u32.to_ne_bytes());
        m.attr(c::RTA_DST, &ip_bytes("fd00:2::".parse().unwrap()));
        m.attr(c::RTA_PRIORITY, &4000u32.to_ne_bytes());
        let b = m.finish(1).to_vec();
        let mut rest = &b[..];
        let msg = next_msg(&mut rest).unwrap().unwrap();
        assert!(rest.is_empty());
        let r = parse_route(msg.payload).unwrap();
        assert_eq!(
            r.route,
            Route {
                table: 51820,
                kind: RouteKind::Blackhole,
                metric: Some(4000),
                ..Route::new("fd00:2::".parse().unwrap(), 48)
            }
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        // Length field past the datagram.
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&64u32.to_ne_bytes());
        assert!(next_msg(&mut &b[..]).is_err());
        // Length shorter than the header.
        b[0..4].copy_from_slice(&4u32.to_ne_bytes());
        assert!(next_msg(&mut &b[..]).is_err());
        // Truncated attributes end the iteration.
        assert_eq!(Attrs(&[8, 0, 1, 0, 1]).count(), 0);
        assert_eq!(Attrs(&[2, 0, 1, 0]).count(), 0);
        assert!(parse_route(&[2, 0, 0]).is_err());
        assert!(i32_at(&[0, 0], 0).is_err());
    }
}
