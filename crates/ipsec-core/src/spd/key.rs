//! Packet descriptions: what the SPD looks at, built by the daemon from packets (or by hand for
//! explain queries and tests).

use core::fmt;
use std::net::IpAddr;

use ipsec_wire::ip::protocol;
use ipsec_wire::IpPacket;

use super::drop::PolicyDrop;
use super::model::{ulp, Oriented};

/// Direction of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Leaving the host (or entering a tunnel).
    Out,
    /// Arriving at the host (or leaving a tunnel).
    In,
}

impl Dir {
    /// `in` or `out`.
    pub const fn name(self) -> &'static str {
        match self {
            Dir::Out => "out",
            Dir::In => "in",
        }
    }
    /// The other direction.
    pub const fn reverse(self) -> Self {
        match self {
            Dir::Out => Dir::In,
            Dir::In => Dir::Out,
        }
    }
}

/// A tunnel, by a number the [`Spd`](super::Spd) hands out for its name
/// ([`Spd::tunnel_id`](super::Spd::tunnel_id)). Numbers stay valid across policy replacement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TunnelId(pub u32);

/// A socket, by a number the daemon chooses (e.g. its per-socket policy service handle).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(pub u64);

/// The fields of a packet the SPD matches on.
///
/// `sport`/`dport` are present only for TCP, UDP and SCTP packets that carry them (not for
/// non-first fragments: RFC 4301 §7); `icmp_type`/`icmp_code` only for ICMP (IPv4) and ICMPv6
/// (IPv6). A selector that names a field never matches a packet without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PacketKey {
    /// Direction.
    pub dir: Dir,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Source port.
    pub sport: Option<u16>,
    /// Destination port.
    pub dport: Option<u16>,
    /// ICMP type.
    pub icmp_type: Option<u8>,
    /// ICMP code.
    pub icmp_code: Option<u8>,
    /// The tunnel the packet enters (out) or left (in); `None` for host traffic.
    pub tunnel: Option<TunnelId>,
    /// The local socket sending (out) or receiving (in) the packet, when known. `None` for
    /// packets the IP stack itself consumes or generates (ICMP echo, errors, ND).
    pub socket: Option<SocketId>,
}

impl PacketKey {
    /// A packet with no ports, ICMP fields, tunnel or socket.
    pub const fn new(dir: Dir, src: IpAddr, dst: IpAddr, proto: u8) -> Self {
        Self {
            dir,
            src,
            dst,
            proto,
            sport: None,
            dport: None,
            icmp_type: None,
            icmp_code: None,
            tunnel: None,
            socket: None,
        }
    }
    /// With source and destination ports.
    pub const fn with_ports(mut self, sport: u16, dport: u16) -> Self {
        self.sport = Some(sport);
        self.dport = Some(dport);
        self
    }
    /// With ICMP type and code.
    pub const fn with_icmp(mut self, icmp_type: u8, icmp_code: u8) -> Self {
        self.icmp_type = Some(icmp_type);
        self.icmp_code = Some(icmp_code);
        self
    }
    /// Through a tunnel.
    pub const fn with_tunnel(mut self, t: TunnelId) -> Self {
        self.tunnel = Some(t);
        self
    }
    /// For a socket.
    pub const fn with_socket(mut self, s: SocketId) -> Self {
        self.socket = Some(s);
        self
    }
    /// A TCP packet.
    pub const fn tcp(dir: Dir, src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Self {
        Self::new(dir, src, dst, ulp::TCP).with_ports(sport, dport)
    }
    /// A UDP packet.
    pub const fn udp(dir: Dir, src: IpAddr, dst: IpAddr, sport: u16, dport: u16) -> Self {
        Self::new(dir, src, dst, ulp::UDP).with_ports(sport, dport)
    }
    /// An ICMP (IPv4) or ICMPv6 (IPv6) packet, chosen by the address family of `src`.
    pub fn icmp(dir: Dir, src: IpAddr, dst: IpAddr, icmp_type: u8, icmp_code: u8) -> Self {
        let p = if src.is_ipv4() {
            ulp::ICMP
        } else {
            ulp::ICMPV6
        };
        Self::new(dir, src, dst, p).with_icmp(icmp_type, icmp_code)
    }

    /// Local address: source of outbound, destination of inbound packets.
    pub const fn local(&self) -> IpAddr {
        match self.dir {
            Dir::Out => self.src,
            Dir::In => self.dst,
        }
    }
    /// Remote address.
    pub const fn remote(&self) -> IpAddr {
        match self.dir {
            Dir::Out => self.dst,
            Dir::In => self.src,
        }
    }
    /// Local port.
    pub const fn lport(&self) -> Option<u16> {
        match self.dir {
            Dir::Out => self.sport,
            Dir::In => self.dport,
        }
    }
    /// Remote port.
    pub const fn rport(&self) -> Option<u16> {
        match self.dir {
            Dir::Out => self.dport,
            Dir::In => self.sport,
        }
    }
    /// IPv6 packet.
    pub fn is_v6(&self) -> bool {
        self.src.is_ipv6()
    }
    /// Source and destination of the same family (a key built from a packet always is).
    pub fn families_agree(&self) -> bool {
        self.src.is_ipv4() == self.dst.is_ipv4()
    }
    /// ICMP of the key's family.
    pub fn is_icmp(&self) -> bool {
        ulp::is_icmp(self.proto, self.is_v6())
    }

    /// The key as rules see it.
    pub const fn oriented(&self) -> Oriented {
        Oriented {
            local: self.local(),
            remote: self.remote(),
            lport: self.lport(),
            rport: self.rport(),
            proto: self.proto,
            icmp_type: self.icmp_type,
            icmp_code: self.icmp_code,
        }
    }

    /// The same packet as the other end sees it: addresses and ports swapped, direction
    /// reversed (ICMP fields, tunnel and socket cleared).
    pub const fn reply(&self) -> Self {
        Self {
            dir: self.dir.reverse(),
            src: self.dst,
            dst: self.src,
            proto: self.proto,
            sport: self.dport,
            dport: self.sport,
            icmp_type: None,
            icmp_code: None,
            tunnel: None,
            socket: None,
        }
    }

    /// Builds the key of the IP packet in `packet` (IPv4 or IPv6, extension headers walked).
    ///
    /// Non-first fragments get no ports or ICMP fields (RFC 4301 §7: only rules without port
    /// selectors can match them). A first fragment or whole packet too short to hold the ports
    /// or the ICMP type and code is malformed: answering with "no ports" would let a tiny
    /// first fragment dodge port-specific rules.
    pub fn from_ip_packet(packet: &[u8], dir: Dir) -> Result<Self, PolicyDrop> {
        let ip = IpPacket::new_checked(packet).map_err(|_| PolicyDrop::MalformedPacket)?;
        let ul = ip.upper_layer().map_err(|_| PolicyDrop::MalformedPacket)?;
        let v6 = matches!(ip, IpPacket::V6(_));
        let mut key = Self::new(dir, ip.src_addr(), ip.dst_addr(), ul.protocol);
        if ul.non_first_fragment {
            return Ok(key);
        }
        let end = ip.total_len().min(packet.len());
        let l4 = packet.get(ul.offset..end).unwrap_or(&[]);
        if ulp::has_ports(ul.protocol) {
            match l4 {
                [a, b, c, d, ..] => {
                    key.sport = Some(u16::from_be_bytes([*a, *b]));
                    key.dport = Some(u16::from_be_bytes([*c, *d]));
                }
                _ => return Err(PolicyDrop::MalformedPacket),
            }
        } else if (ul.protocol == protocol::ICMP && !v6) || (ul.protocol == protocol::ICMPV6 && v6)
        {
            match l4 {
                [t, c, ..] => {
                    key.icmp_type = Some(*t);
                    key.icmp_code = Some(*c);
                }
                _ => return Err(PolicyDrop::MalformedPacket),
            }
        }
        Ok(key)
    }
}

impl fmt::Display for PacketKey {
    /// `out 192.0.2.1.1234 > 192.0.2.2.80 proto 6`, with ICMP type/code, tunnel and socket when
    /// present.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.dir.name(), self.src)?;
        if let Some(p) = self.sport {
            write!(f, ".{p}")?;
        }
        write!(f, " > {}", self.dst)?;
        if let Some(p) = self.dport {
            write!(f, ".{p}")?;
        }
        match ulp::name(self.proto) {
            Some(n) => write!(f, " {n}")?,
            None => write!(f, " proto {}", self.proto)?,
        }
        if let Some(t) = self.icmp_type {
            write!(f, " type {t}")?;
        }
        if let Some(c) = self.icmp_code {
            write!(f, " code {c}")?;
        }
        if let Some(t) = self.tunnel {
            write!(f, " tunnel #{}", t.0)?;
        }
        if let Some(s) = self.socket {
            write!(f, " socket #{}", s.0)?;
        }
        Ok(())
    }
}
