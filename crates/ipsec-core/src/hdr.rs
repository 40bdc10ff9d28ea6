//! IP header handling for the engine: where ESP/AH sits or goes, patching protocol and length
//! fields, outer headers for tunnel mode, and the AH mutable-field rules (RFC 4302 §3.3.3).
//! Packet formats and checksums come from `ipsec-wire`; this module only applies them in place.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_wire::checksum;

use crate::drop::DropReason;

pub(crate) const IPPROTO_HOPOPTS: u8 = 0;
pub(crate) const IPPROTO_IPIP: u8 = 4;
pub(crate) const IPPROTO_TCP: u8 = 6;
pub(crate) const IPPROTO_UDP: u8 = 17;
pub(crate) const IPPROTO_IPV6: u8 = 41;
pub(crate) const IPPROTO_ROUTING: u8 = 43;
pub(crate) const IPPROTO_FRAGMENT: u8 = 44;
pub(crate) const IPPROTO_ESP: u8 = 50;
pub(crate) const IPPROTO_AH: u8 = 51;
pub(crate) const IPPROTO_NONE: u8 = 59;
pub(crate) const IPPROTO_DSTOPTS: u8 = 60;

const MAX_EXT_HEADERS: usize = 16;

/// The parts of an IP header the engine needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IpHdr {
    pub v6: bool,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Offset of the byte holding the protocol number of what starts at `l4_off`.
    pub nh_off: usize,
    /// Offset of ESP/AH (inbound) or of the insertion point (outbound).
    pub l4_off: usize,
    /// Protocol number at `l4_off`.
    pub proto: u8,
    /// The packet is a fragment (IPv4 MF/offset, or an IPv6 fragment header).
    pub fragment: bool,
}

#[inline]
fn get(p: &[u8], i: usize) -> Result<u8, DropReason> {
    p.get(i).copied().ok_or(DropReason::MalformedPacket)
}

#[inline]
fn be16(p: &[u8], i: usize) -> Result<u16, DropReason> {
    Ok(u16::from_be_bytes([get(p, i)?, get(p, i + 1)?]))
}

fn addr16(p: &[u8], i: usize) -> Result<Ipv6Addr, DropReason> {
    let b: [u8; 16] = p
        .get(i..i + 16)
        .and_then(|s| s.try_into().ok())
        .ok_or(DropReason::MalformedPacket)?;
    Ok(Ipv6Addr::from(b))
}

fn ext_len(p: &[u8], off: usize, nh: u8) -> Result<usize, DropReason> {
    match nh {
        IPPROTO_FRAGMENT => Ok(8),
        IPPROTO_AH => Ok((usize::from(get(p, off + 1)?) + 2) * 4),
        _ => Ok((usize::from(get(p, off + 1)?) + 1) * 8),
    }
}

/// Validates the IP version and lengths and trims nothing; returns the IP total length.
#[inline]
pub(crate) fn total_len(p: &[u8]) -> Result<usize, DropReason> {
    match get(p, 0)? >> 4 {
        4 => {
            let ihl = usize::from(get(p, 0)? & 0x0f) * 4;
            let tl = usize::from(be16(p, 2)?);
            if ihl < 20 || tl < ihl || tl > p.len() {
                return Err(DropReason::MalformedPacket);
            }
            Ok(tl)
        }
        6 => {
            let tl = 40 + usize::from(be16(p, 4)?);
            if tl > p.len() {
                return Err(DropReason::MalformedPacket);
            }
            Ok(tl)
        }
        _ => Err(DropReason::MalformedPacket),
    }
}

/// Parses the header chain up to the first ESP, AH or upper-layer header (inbound view).
#[inline]
pub(crate) fn parse(p: &[u8]) -> Result<IpHdr, DropReason> {
    match get(p, 0)? >> 4 {
        4 => {
            let ihl = usize::from(get(p, 0)? & 0x0f) * 4;
            if ihl < 20 || p.len() < ihl {
                return Err(DropReason::MalformedPacket);
            }
            let frag = be16(p, 6)?;
            let src = Ipv4Addr::new(get(p, 12)?, get(p, 13)?, get(p, 14)?, get(p, 15)?);
            let dst = Ipv4Addr::new(get(p, 16)?, get(p, 17)?, get(p, 18)?, get(p, 19)?);
            Ok(IpHdr {
                v6: false,
                src: src.into(),
                dst: dst.into(),
                nh_off: 9,
                l4_off: ihl,
                proto: get(p, 9)?,
                fragment: frag & 0x3fff != 0,
            })
        }
        6 => {
            if p.len() < 40 {
                return Err(DropReason::MalformedPacket);
            }
            let src = addr16(p, 8)?;
            let dst = addr16(p, 24)?;
            let mut nh_off = 6;
            let mut off = 40;
            let mut nh = get(p, 6)?;
            let mut fragment = false;
            for _ in 0..MAX_EXT_HEADERS {
                match nh {
                    IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_FRAGMENT | IPPROTO_DSTOPTS => {
                        if nh == IPPROTO_HOPOPTS && off != 40 {
                            return Err(DropReason::MalformedPacket);
                        }
                        if nh == IPPROTO_FRAGMENT {
                            fragment = true;
                        }
                        let len = ext_len(p, off, nh)?;
                        nh_off = off;
                        nh = get(p, off)?;
                        off += len;
                        if off > p.len() {
                            return Err(DropReason::MalformedPacket);
                        }
                    }
                    _ => {
                        return Ok(IpHdr {
                            v6: true,
                            src: src.into(),
                            dst: dst.into(),
                            nh_off,
                            l4_off: off,
                            proto: nh,
                            fragment,
                        })
                    }
                }
            }
            Err(DropReason::MalformedPacket)
        }
        _ => Err(DropReason::MalformedPacket),
    }
}

/// Where ESP/AH goes in transport mode (RFC 4303 §3.1.1, RFC 4302 §3.1.1): after the IPv4 header
/// with its options; for IPv6 after hop-by-hop, routing and fragment headers and any destination
/// options header that precedes a routing header.
#[inline]
pub(crate) fn insertion_point(p: &[u8]) -> Result<IpHdr, DropReason> {
    if let [b0, _, _, _, _, _, f0, f1, _, proto, ..] = *p {
        if b0 >> 4 == 4 {
            let ihl = usize::from(b0 & 0x0f) * 4;
            if ihl < 20 || p.len() < ihl {
                return Err(DropReason::MalformedPacket);
            }
            // Outbound needs only the offsets; addresses are not read on this path.
            let unspec = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
            return Ok(IpHdr {
                v6: false,
                src: unspec,
                dst: unspec,
                nh_off: 9,
                l4_off: ihl,
                proto,
                fragment: u16::from_be_bytes([f0, f1]) & 0x3fff != 0,
            });
        }
    }
    let mut h = parse_header_only(p)?;
    if !h.v6 {
        return Ok(h);
    }
    let mut nh = h.proto;
    let mut off = 40;
    let mut nh_off = 6;
    for _ in 0..MAX_EXT_HEADERS {
        match nh {
            IPPROTO_HOPOPTS | IPPROTO_ROUTING | IPPROTO_FRAGMENT => {}
            IPPROTO_DSTOPTS => {
                // Only a destination options header followed (eventually) by a routing header
                // stays outside; the final destination options travel protected.
                let next = get(p, off)?;
                if next != IPPROTO_ROUTING {
                    break;
                }
            }
            _ => break,
        }
        let len = ext_len(p, off, nh)?;
        if nh == IPPROTO_FRAGMENT {
            h.fragment = true;
        }
        nh_off = off;
        nh = get(p, off)?;
        off += len;
        if off > p.len() {
            return Err(DropReason::MalformedPacket);
        }
    }
    h.nh_off = nh_off;
    h.l4_off = off;
    h.proto = nh;
    Ok(h)
}

fn parse_header_only(p: &[u8]) -> Result<IpHdr, DropReason> {
    match get(p, 0)? >> 4 {
        4 => parse(p),
        6 => {
            if p.len() < 40 {
                return Err(DropReason::MalformedPacket);
            }
            Ok(IpHdr {
                v6: true,
                src: addr16(p, 8)?.into(),
                dst: addr16(p, 24)?.into(),
                nh_off: 6,
                l4_off: 40,
                proto: get(p, 6)?,
                fragment: false,
            })
        }
        _ => Err(DropReason::MalformedPacket),
    }
}

/// Writes `proto` into the next-header byte at `nh_off` and sets the length fields of the IP
/// header at the start of `p` from `p.len()`; updates the IPv4 header checksum incrementally
/// (RFC 1624), so a header whose checksum was right stays right.
#[inline]
pub(crate) fn set_proto_len(p: &mut [u8], nh_off: usize, proto: u8) -> Result<(), DropReason> {
    let len = p.len();
    if get(p, 0)? >> 4 == 4 {
        if p.len() < 20 || nh_off != 9 {
            return Err(DropReason::MalformedPacket);
        }
        let tl = u16::try_from(len).map_err(|_| DropReason::TooBig)?;
        // RFC 1624 eqn. 3 over the two changed words (total length; TTL and protocol).
        let old_tl = u32::from(u16::from_be_bytes([p[2], p[3]]));
        let old_w = u32::from(u16::from_be_bytes([p[8], p[9]]));
        let new_w = u32::from(u16::from_be_bytes([p[8], proto]));
        let c = u32::from(u16::from_be_bytes([p[10], p[11]]));
        let mut sum =
            (!c & 0xffff) + (!old_tl & 0xffff) + u32::from(tl) + (!old_w & 0xffff) + new_w;
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        let c = !(sum as u16);
        p[2..4].copy_from_slice(&tl.to_be_bytes());
        p[9] = proto;
        p[10..12].copy_from_slice(&c.to_be_bytes());
    } else {
        *p.get_mut(nh_off).ok_or(DropReason::MalformedPacket)? = proto;
        let pl = u16::try_from(len.saturating_sub(40)).map_err(|_| DropReason::TooBig)?;
        p[4..6].copy_from_slice(&pl.to_be_bytes());
    }
    Ok(())
}

/// Recomputes the IPv4 header checksum.
pub(crate) fn ipv4_fill_checksum(p: &mut [u8]) -> Result<(), DropReason> {
    let ihl = usize::from(get(p, 0)? & 0x0f) * 4;
    let hdr = p.get_mut(..ihl).ok_or(DropReason::MalformedPacket)?;
    hdr[10] = 0;
    hdr[11] = 0;
    let c = !checksum::data(hdr);
    hdr[10..12].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// ECN field of an IP header.
pub(crate) fn ecn(p: &[u8]) -> u8 {
    match p.first().map(|b| b >> 4) {
        Some(4) => p.get(1).map_or(0, |b| b & 3),
        Some(6) => p.get(1).map_or(0, |b| (b >> 4) & 3),
        _ => 0,
    }
}

/// DSCP field (6 bits).
pub(crate) fn dscp(p: &[u8]) -> u8 {
    match p.first().map(|b| b >> 4) {
        Some(4) => p.get(1).map_or(0, |b| b >> 2),
        Some(6) => match (p.first(), p.get(1)) {
            (Some(a), Some(b)) => ((a & 0x0f) << 2) | (b >> 6),
            _ => 0,
        },
        _ => 0,
    }
}

/// Sets the ECN field (IPv4 checksum must be refreshed by the caller).
pub(crate) fn set_ecn(p: &mut [u8], ecn: u8) {
    match p.first().map(|b| b >> 4) {
        Some(4) => {
            if let Some(b) = p.get_mut(1) {
                *b = (*b & !3) | (ecn & 3);
            }
        }
        Some(6) => {
            if let Some(b) = p.get_mut(1) {
                *b = (*b & !0x30) | ((ecn & 3) << 4);
            }
        }
        _ => {}
    }
}

/// IPv4 DF bit (IPv6 packets are never fragmented en route: report true).
pub(crate) fn dont_frag(p: &[u8]) -> bool {
    match p.first().map(|b| b >> 4) {
        Some(4) => p.get(6).is_some_and(|b| b & 0x40 != 0),
        _ => true,
    }
}

/// Parameters of a tunnel-mode outer header.
pub(crate) struct Outer {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub tos: u8,
    pub df: bool,
    pub ident: u16,
    pub flow: u32,
}

/// Length of the outer header for `src`.
pub(crate) fn outer_len(src: IpAddr) -> usize {
    if src.is_ipv4() {
        20
    } else {
        40
    }
}

/// Writes an outer header at the start of `p`; lengths cover all of `p`.
pub(crate) fn write_outer(p: &mut [u8], o: &Outer) -> Result<(), DropReason> {
    let len = p.len();
    match (o.src, o.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let tl = u16::try_from(len).map_err(|_| DropReason::TooBig)?;
            let h = p.get_mut(..20).ok_or(DropReason::NoBufferSpace)?;
            h[0] = 0x45;
            h[1] = o.tos;
            h[2..4].copy_from_slice(&tl.to_be_bytes());
            h[4..6].copy_from_slice(&o.ident.to_be_bytes());
            h[6] = if o.df { 0x40 } else { 0 };
            h[7] = 0;
            h[8] = 64;
            h[9] = o.proto;
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            ipv4_fill_checksum(p)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let pl = u16::try_from(len.saturating_sub(40)).map_err(|_| DropReason::TooBig)?;
            let h = p.get_mut(..40).ok_or(DropReason::NoBufferSpace)?;
            let word = (6u32 << 28) | (u32::from(o.tos) << 20) | (o.flow & 0x000f_ffff);
            h[0..4].copy_from_slice(&word.to_be_bytes());
            h[4..6].copy_from_slice(&pl.to_be_bytes());
            h[6] = o.proto;
            h[7] = 64;
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
            Ok(())
        }
        _ => Err(DropReason::MalformedPacket),
    }
}

/// Recomputes the TCP or UDP checksum of a transport-mode packet after NAT-T decapsulation
/// (RFC 3948 §3.1.2: the addresses the sender used are not the ones we see).
pub(crate) fn fix_l4_checksum(p: &mut [u8]) -> Result<(), DropReason> {
    let h = parse(p)?;
    if h.fragment {
        return Ok(());
    }
    let csum_off = match h.proto {
        IPPROTO_TCP => 16,
        IPPROTO_UDP => 6,
        _ => return Ok(()),
    };
    let l4_len = p
        .len()
        .checked_sub(h.l4_off)
        .ok_or(DropReason::MalformedPacket)?;
    if l4_len < csum_off + 2 {
        return Err(DropReason::MalformedPacket);
    }
    if h.proto == IPPROTO_UDP && !h.v6 && be16(p, h.l4_off + 6)? == 0 {
        return Ok(()); // IPv4 UDP without checksum
    }
    let at = h.l4_off + csum_off;
    p[at] = 0;
    p[at + 1] = 0;
    let len32 = u32::try_from(l4_len).map_err(|_| DropReason::MalformedPacket)?;
    let pseudo = checksum::pseudo_header(&h.src, &h.dst, h.proto, len32);
    let sum = checksum::combine(&[pseudo, checksum::data(&p[h.l4_off..])]);
    let mut c = !sum;
    if c == 0 && h.proto == IPPROTO_UDP {
        c = 0xffff;
    }
    p[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Fills the UDP checksum of a UDP header at `udp_off` carrying the rest of `p`, for the
/// addresses in the IP header (IPv6 must not send 0; IPv4 NAT-T sends 0, RFC 3948 §2.1).
pub(crate) fn fill_udp_checksum(
    p: &mut [u8],
    udp_off: usize,
    src: &IpAddr,
    dst: &IpAddr,
) -> Result<(), DropReason> {
    let l4_len = p
        .len()
        .checked_sub(udp_off)
        .ok_or(DropReason::MalformedPacket)?;
    let len32 = u32::try_from(l4_len).map_err(|_| DropReason::TooBig)?;
    p[udp_off + 6] = 0;
    p[udp_off + 7] = 0;
    let pseudo = checksum::pseudo_header(src, dst, IPPROTO_UDP, len32);
    let mut c = !checksum::combine(&[pseudo, checksum::data(&p[udp_off..])]);
    if c == 0 {
        c = 0xffff;
    }
    p[udp_off + 6..udp_off + 8].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Zeroes, in `h` (a copy of the header chain up to AH), every field AH treats as mutable:
/// IPv4 TOS, flags+offset, TTL, checksum, mutable options; IPv6 traffic class, flow label, hop
/// limit, and the data of options marked "may change en route". When an IPv6 routing header
/// (type 0 or 2) still has segments left, the header is rewritten as the final destination
/// will see it (RFC 4302 §3.3.3.1.2.2): the sender does this, and so does a receiver that is
/// handed the packet before the routing header was processed (we are its final destination).
pub(crate) fn ah_zero_mutable(h: &mut [u8]) -> Result<(), DropReason> {
    match get(h, 0)? >> 4 {
        4 => {
            let ihl = usize::from(get(h, 0)? & 0x0f) * 4;
            if h.len() < ihl || ihl < 20 {
                return Err(DropReason::AhBadV4Opts);
            }
            h[1] = 0;
            h[6] = 0;
            h[7] = 0;
            h[8] = 0;
            h[10] = 0;
            h[11] = 0;
            let mut i = 20;
            while i < ihl {
                let kind = h[i];
                let len = match kind {
                    0 => break,
                    1 => 1,
                    _ => usize::from(*h.get(i + 1).ok_or(DropReason::AhBadV4Opts)?),
                };
                if len < 1 || (kind > 1 && len < 2) || i + len > ihl {
                    return Err(DropReason::AhBadV4Opts);
                }
                if ipsec_wire::ipv4::option_is_mutable(kind) {
                    h[i..i + len].iter_mut().for_each(|b| *b = 0);
                }
                i += len;
            }
            Ok(())
        }
        6 => {
            if h.len() < 40 {
                return Err(DropReason::AhBadV6Hdrs);
            }
            h[0] &= 0xf0;
            h[1] = 0;
            h[2] = 0;
            h[3] = 0;
            h[7] = 0;
            let mut nh = h[6];
            let mut off = 40;
            for _ in 0..MAX_EXT_HEADERS {
                if off >= h.len() {
                    return Ok(());
                }
                let len = ext_len(h, off, nh).map_err(|_| DropReason::AhBadV6Hdrs)?;
                if off + len > h.len() {
                    return Err(DropReason::AhBadV6Hdrs);
                }
                match nh {
                    IPPROTO_HOPOPTS | IPPROTO_DSTOPTS => {
                        zero_mutable_options(&mut h[off..off + len])?
                    }
                    IPPROTO_ROUTING => route_as_at_destination(h, off, len)?,
                    IPPROTO_FRAGMENT => {}
                    _ => return Ok(()),
                }
                nh = h[off];
                off += len;
            }
            Err(DropReason::AhBadV6Hdrs)
        }
        _ => Err(DropReason::MalformedPacket),
    }
}

fn zero_mutable_options(ext: &mut [u8]) -> Result<(), DropReason> {
    let mut i = 2;
    while i < ext.len() {
        let kind = ext[i];
        if kind == 0 {
            i += 1;
            continue;
        }
        let len = usize::from(*ext.get(i + 1).ok_or(DropReason::AhBadV6Hdrs)?);
        if i + 2 + len > ext.len() {
            return Err(DropReason::AhBadV6Hdrs);
        }
        if kind & 0x20 != 0 {
            ext[i + 2..i + 2 + len].iter_mut().for_each(|b| *b = 0);
        }
        i += 2 + len;
    }
    Ok(())
}

fn route_as_at_destination(h: &mut [u8], off: usize, len: usize) -> Result<(), DropReason> {
    let rtype = h[off + 2];
    let left = usize::from(h[off + 3]);
    if left == 0 || !(rtype == 0 || rtype == 2) {
        return Ok(());
    }
    let n = (len - 8) / 16;
    if left > n || n == 0 {
        return Err(DropReason::AhBadV6Hdrs);
    }
    // At the destination: the IPv6 destination is the last address, the list holds the
    // original destination followed by the earlier hops, and segments left is 0.
    let first = off + 8;
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&h[24..40]);
    let mut last = [0u8; 16];
    last.copy_from_slice(&h[first + (n - 1) * 16..first + n * 16]);
    h.copy_within(first..first + (n - 1) * 16, first + 16);
    h[first..first + 16].copy_from_slice(&dst);
    h[24..40].copy_from_slice(&last);
    h[off + 3] = 0;
    Ok(())
}
