//! Version dispatch over IPv4 and IPv6, and IP protocol numbers.

use core::fmt;
use core::net::IpAddr;
use core::ops::Range;

use crate::ipv4::{Ipv4Packet, Ipv4Repr};
use crate::ipv6::{Ipv6Packet, Ipv6Repr};
use crate::{bytes, Error, Result};

/// IP protocol / IPv6 next-header numbers (IANA "Assigned Internet Protocol Numbers").
pub mod protocol {
    /// IPv6 Hop-by-Hop Options.
    pub const HOPOPT: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IGMP.
    pub const IGMP: u8 = 2;
    /// IPv4 encapsulation (IP-in-IP, tunnel mode inner IPv4).
    pub const IPV4: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6 encapsulation (tunnel mode inner IPv6).
    pub const IPV6: u8 = 41;
    /// IPv6 Routing header.
    pub const ROUTING: u8 = 43;
    /// IPv6 Fragment header.
    pub const FRAGMENT: u8 = 44;
    /// GRE.
    pub const GRE: u8 = 47;
    /// Encapsulating Security Payload.
    pub const ESP: u8 = 50;
    /// Authentication Header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 No Next Header (also the ESP dummy-packet next header, RFC 4303 §2.6).
    pub const NO_NEXT_HEADER: u8 = 59;
    /// IPv6 Destination Options.
    pub const DSTOPTS: u8 = 60;
    /// PIM.
    pub const PIM: u8 = 103;
    /// SCTP.
    pub const SCTP: u8 = 132;
    /// Mobility header (RFC 6275).
    pub const MOBILITY: u8 = 135;
}

/// Short protocol name for printing.
pub fn protocol_name(p: u8) -> Option<&'static str> {
    use protocol::*;
    Some(match p {
        HOPOPT => "HBH",
        ICMP => "ICMP",
        IGMP => "IGMP",
        IPV4 => "IPIP",
        TCP => "TCP",
        UDP => "UDP",
        IPV6 => "IPv6",
        ROUTING => "Routing",
        FRAGMENT => "Fragment",
        GRE => "GRE",
        ESP => "ESP",
        AH => "AH",
        ICMPV6 => "ICMPv6",
        NO_NEXT_HEADER => "NoNext",
        DSTOPTS => "DstOpt",
        PIM => "PIM",
        SCTP => "SCTP",
        MOBILITY => "Mobility",
        _ => return None,
    })
}

pub(crate) fn fmt_protocol(f: &mut fmt::Formatter<'_>, p: u8) -> fmt::Result {
    match protocol_name(p) {
        Some(n) => write!(f, "{n} ({p})"),
        None => write!(f, "proto {p}"),
    }
}

/// IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpVersion {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl IpVersion {
    /// The version of the packet in `buf` from its first nibble.
    pub fn of(buf: &[u8]) -> Result<Self> {
        match buf.first().map(|b| b >> 4) {
            None => Err(Error::Truncated),
            Some(4) => Ok(Self::V4),
            Some(6) => Ok(Self::V6),
            Some(_) => Err(Error::BadVersion),
        }
    }
}

/// Where the upper layer starts, after any IPv6 extension headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// Protocol number found there (may be ESP 50, or 59 No Next Header; for IPv4 also AH).
    pub protocol: u8,
    /// Offset of the upper-layer header from the start of the IP packet.
    pub offset: usize,
    /// Offset of the byte holding `protocol` (IPv4: 9; IPv6: 6 or byte 0 of the last
    /// extension header), which the engine patches when inserting or removing ESP/AH.
    pub nh_field: usize,
    /// The packet is a non-first fragment: `offset` points at fragment data, not a header.
    pub non_first_fragment: bool,
}

/// A view of an IPv4 or IPv6 packet, chosen by the version nibble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPacket<T: AsRef<[u8]>> {
    /// IPv4.
    V4(Ipv4Packet<T>),
    /// IPv6.
    V6(Ipv6Packet<T>),
}

impl<T: AsRef<[u8]>> IpPacket<T> {
    /// Dispatches on the first nibble and runs the family's `new_checked`.
    pub fn new_checked(buffer: T) -> Result<Self> {
        match IpVersion::of(buffer.as_ref())? {
            IpVersion::V4 => Ok(Self::V4(Ipv4Packet::new_checked(buffer)?)),
            IpVersion::V6 => Ok(Self::V6(Ipv6Packet::new_checked(buffer)?)),
        }
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        match self {
            Self::V4(p) => p.into_inner(),
            Self::V6(p) => p.into_inner(),
        }
    }

    /// The whole buffer.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::V4(p) => p.as_bytes(),
            Self::V6(p) => p.as_bytes(),
        }
    }

    /// IP version.
    pub const fn version(&self) -> IpVersion {
        match self {
            Self::V4(_) => IpVersion::V4,
            Self::V6(_) => IpVersion::V6,
        }
    }

    /// Source address.
    pub fn src_addr(&self) -> IpAddr {
        match self {
            Self::V4(p) => IpAddr::V4(p.src_addr()),
            Self::V6(p) => IpAddr::V6(p.src_addr()),
        }
    }

    /// Destination address.
    pub fn dst_addr(&self) -> IpAddr {
        match self {
            Self::V4(p) => IpAddr::V4(p.dst_addr()),
            Self::V6(p) => IpAddr::V6(p.dst_addr()),
        }
    }

    /// The protocol field of the IP header itself (IPv4 protocol, IPv6 fixed-header next
    /// header). See [`upper_layer`](Self::upper_layer) for the value after extensions.
    pub fn next_header(&self) -> u8 {
        match self {
            Self::V4(p) => p.protocol(),
            Self::V6(p) => p.next_header(),
        }
    }

    /// IP header length: IHL × 4 for IPv4, 40 for IPv6 (extension headers not included).
    pub fn header_len(&self) -> usize {
        match self {
            Self::V4(p) => p.header_len(),
            Self::V6(p) => p.header_len(),
        }
    }

    /// Total length from the header (IPv4 total length; IPv6 40 + payload length).
    pub fn total_len(&self) -> usize {
        match self {
            Self::V4(p) => usize::from(p.total_len()),
            Self::V6(p) => p.total_len(),
        }
    }

    /// `header_len()..total_len()`.
    pub fn payload_range(&self) -> Range<usize> {
        self.header_len()..self.total_len()
    }

    /// The bytes in [`payload_range`](Self::payload_range).
    pub fn payload(&self) -> &[u8] {
        match self {
            Self::V4(p) => p.payload(),
            Self::V6(p) => p.payload(),
        }
    }

    /// The upper layer after all IPv6 extension headers (for IPv4: protocol at IHL × 4).
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        match self {
            Self::V4(p) => {
                p.check_len()?;
                Ok(UpperLayer {
                    protocol: p.protocol(),
                    offset: p.header_len(),
                    nh_field: crate::ipv4::field::PROTOCOL,
                    non_first_fragment: p.frag_offset() != 0,
                })
            }
            Self::V6(p) => p.upper_layer(),
        }
    }

    /// True for an IPv4 fragment (MF or offset) or an IPv6 packet with a Fragment header.
    pub fn is_fragment(&self) -> Result<bool> {
        match self {
            Self::V4(p) => Ok(p.is_fragment()),
            Self::V6(p) => {
                p.check_len()?;
                for h in p.ext_headers() {
                    if h?.kind == protocol::FRAGMENT {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
        }
    }

    /// TTL or hop limit.
    pub fn hop_limit(&self) -> u8 {
        match self {
            Self::V4(p) => p.ttl(),
            Self::V6(p) => p.hop_limit(),
        }
    }

    /// TOS or traffic class.
    pub fn traffic_class(&self) -> u8 {
        match self {
            Self::V4(p) => p.tos(),
            Self::V6(p) => p.traffic_class(),
        }
    }

    /// ECN bits.
    pub fn ecn(&self) -> u8 {
        self.traffic_class() & 0x03
    }

    /// DSCP.
    pub fn dscp(&self) -> u8 {
        self.traffic_class() >> 2
    }
}

impl<T: AsRef<[u8]>> From<Ipv4Packet<T>> for IpPacket<T> {
    fn from(p: Ipv4Packet<T>) -> Self {
        Self::V4(p)
    }
}

impl<T: AsRef<[u8]>> From<Ipv6Packet<T>> for IpPacket<T> {
    fn from(p: Ipv6Packet<T>) -> Self {
        Self::V6(p)
    }
}

impl<T: AsRef<[u8]>> fmt::Display for IpPacket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::V4(p) => p.fmt(f),
            Self::V6(p) => p.fmt(f),
        }
    }
}

/// An owned IPv4 or IPv6 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpRepr {
    /// IPv4.
    V4(Ipv4Repr),
    /// IPv6 (fixed header only).
    V6(Ipv6Repr),
}

impl IpRepr {
    /// Parses the header (IPv4 checksum verified).
    pub fn parse<T: AsRef<[u8]>>(packet: &IpPacket<T>) -> Result<Self> {
        match packet {
            IpPacket::V4(p) => Ok(Self::V4(Ipv4Repr::parse(p)?)),
            IpPacket::V6(p) => Ok(Self::V6(Ipv6Repr::parse(p)?)),
        }
    }

    /// IP version.
    pub const fn version(&self) -> IpVersion {
        match self {
            Self::V4(_) => IpVersion::V4,
            Self::V6(_) => IpVersion::V6,
        }
    }

    /// Source address.
    pub fn src_addr(&self) -> IpAddr {
        match self {
            Self::V4(r) => IpAddr::V4(r.src_addr),
            Self::V6(r) => IpAddr::V6(r.src_addr),
        }
    }

    /// Destination address.
    pub fn dst_addr(&self) -> IpAddr {
        match self {
            Self::V4(r) => IpAddr::V4(r.dst_addr),
            Self::V6(r) => IpAddr::V6(r.dst_addr),
        }
    }

    /// Protocol / next header.
    pub const fn next_header(&self) -> u8 {
        match self {
            Self::V4(r) => r.protocol,
            Self::V6(r) => r.next_header,
        }
    }

    /// Payload length.
    pub const fn payload_len(&self) -> usize {
        match self {
            Self::V4(r) => r.payload_len,
            Self::V6(r) => r.payload_len,
        }
    }

    /// Header length.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Self::V4(r) => r.buffer_len(),
            Self::V6(r) => r.buffer_len(),
        }
    }

    /// Writes the header at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<()> {
        match self {
            Self::V4(r) => r.emit(&mut Ipv4Packet::new_unchecked(buf)),
            Self::V6(r) => r.emit(&mut Ipv6Packet::new_unchecked(buf)),
        }
    }
}

/// The total length announced by the IP header at the start of `buf` (no other checks).
pub fn announced_len(buf: &[u8]) -> Result<usize> {
    match IpVersion::of(buf)? {
        IpVersion::V4 if buf.len() >= 4 => Ok(usize::from(bytes::u16_at(buf, 2))),
        IpVersion::V6 if buf.len() >= 6 => {
            Ok(crate::ipv6::HEADER_LEN + usize::from(bytes::u16_at(buf, 4)))
        }
        _ => Err(Error::Truncated),
    }
}
