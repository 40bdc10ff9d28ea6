//! TUN offloads (virtio-net header): with `IFF_VNET_HDR` and TSO/checksum offload turned
//! on, the kernel hands ipsecd one TCP "super-packet" of up to 64 KiB instead of dozens of
//! MTU-sized segments, and leaves checksums for later. ESP must protect real packets, so
//! the data plane cuts each super-packet into segments of `gso_size` payload bytes and
//! completes every checksum here, before encryption (the segmentation a NIC would do).
//!
//! Header layout (`struct virtio_net_hdr`, 10 bytes, little-endian on the hosts we run):
//! flags (1: `NEEDS_CSUM`), gso_type (0 none, 1 TCPv4, 4 TCPv6, 0x80 ECN bit), hdr_len,
//! gso_size, csum_start, csum_offset.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_wire::checksum;

/// Bytes of the virtio-net header in front of every packet.
pub const VNET_HDR_LEN: usize = 10;
const NEEDS_CSUM: u8 = 1;
const GSO_NONE: u8 = 0;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;
const GSO_ECN: u8 = 0x80;

/// A parsed virtio-net header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// `VIRTIO_NET_HDR_F_*`.
    pub flags: u8,
    /// `VIRTIO_NET_HDR_GSO_*`.
    pub gso_type: u8,
    /// Length of the headers repeated in every segment (advisory).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where checksumming starts (the L4 header).
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Parses the first [`VNET_HDR_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let b = b.get(..VNET_HDR_LEN)?;
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }
}

/// Why a super-packet could not be segmented (it is dropped and counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoError {
    /// Offsets or lengths outside the packet.
    Malformed,
    /// A GSO type we did not ask the kernel for.
    Unsupported,
}

impl GsoError {
    /// Counter name.
    pub const fn name(self) -> &'static str {
        match self {
            GsoError::Malformed => "tun_gso_malformed",
            GsoError::Unsupported => "tun_gso_unsupported",
        }
    }
}

fn get_u16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn put_u16(b: &mut [u8], at: usize, v: u16) -> Option<()> {
    b.get_mut(at..at + 2)?.copy_from_slice(&v.to_be_bytes());
    Some(())
}

fn addrs(p: &[u8]) -> Option<(IpAddr, IpAddr)> {
    match p.first()? >> 4 {
        4 => {
            let s: [u8; 4] = p.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            Some((IpAddr::V4(Ipv4Addr::from(s)), IpAddr::V4(Ipv4Addr::from(d))))
        }
        6 => {
            let s: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            Some((IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d))))
        }
        _ => None,
    }
}

/// Completes a checksum the kernel left partial: the field at `start + offset` holds the
/// pseudo-header sum; the checksum covers everything from `start` to the end.
fn finish_csum(p: &mut [u8], start: usize, offset: usize) -> Option<()> {
    let field = start.checked_add(offset)?;
    p.get(field..field + 2)?;
    let sum = checksum::data(p.get(start..)?);
    let mut c = !sum;
    if c == 0 && p.get(9) == Some(&17) && p.first().is_some_and(|v| v >> 4 == 4) {
        c = 0xffff;
    }
    put_u16(p, field, c)
}

/// Passes every segment of the packet `pkt` (what followed the virtio header `h`) to `f`
/// (built in `seg`, a buffer reused between calls),
/// with lengths, IPv4 identification, TCP sequence numbers, flags and all checksums
/// complete. A packet without GSO is passed whole (its checksum completed if needed).
pub fn segments(
    h: &VnetHdr,
    pkt: &mut [u8],
    seg: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]),
) -> Result<(), GsoError> {
    let gso = h.gso_type & !GSO_ECN;
    if gso == GSO_NONE {
        if h.flags & NEEDS_CSUM != 0 {
            finish_csum(pkt, usize::from(h.csum_start), usize::from(h.csum_offset))
                .ok_or(GsoError::Malformed)?;
        }
        f(pkt);
        return Ok(());
    }
    if gso != GSO_TCPV4 && gso != GSO_TCPV6 {
        return Err(GsoError::Unsupported);
    }
    let v4 = gso == GSO_TCPV4;
    if pkt.first().map(|b| b >> 4) != Some(if v4 { 4 } else { 6 }) {
        return Err(GsoError::Malformed);
    }
    let l4 = usize::from(h.csum_start);
    let tcp_hlen = usize::from(pkt.get(l4 + 12).ok_or(GsoError::Malformed)? >> 4) * 4;
    let hdrs = l4 + tcp_hlen;
    let mss = usize::from(h.gso_size);
    if tcp_hlen < 20 || mss == 0 || hdrs > pkt.len() {
        return Err(GsoError::Malformed);
    }
    let (src, dst) = addrs(pkt).ok_or(GsoError::Malformed)?;
    let seq0 = u32::from_be_bytes(
        pkt.get(l4 + 4..l4 + 8)
            .and_then(|s| s.try_into().ok())
            .ok_or(GsoError::Malformed)?,
    );
    let id0 = if v4 {
        get_u16(pkt, 4).ok_or(GsoError::Malformed)?
    } else {
        0
    };
    let flags0 = *pkt.get(l4 + 13).ok_or(GsoError::Malformed)?;
    let payload_len = pkt.len() - hdrs;
    let n = payload_len.div_ceil(mss).max(1);
    seg.clear();
    seg.resize(hdrs + mss, 0);
    for i in 0..n {
        let off = i * mss;
        let chunk = pkt
            .get(hdrs + off..hdrs + (off + mss).min(payload_len))
            .ok_or(GsoError::Malformed)?;
        let len = hdrs + chunk.len();
        let s = seg.get_mut(..len).ok_or(GsoError::Malformed)?;
        s.get_mut(..hdrs)
            .ok_or(GsoError::Malformed)?
            .copy_from_slice(pkt.get(..hdrs).ok_or(GsoError::Malformed)?);
        s.get_mut(hdrs..)
            .ok_or(GsoError::Malformed)?
            .copy_from_slice(chunk);
        let mut fix = || -> Option<()> {
            if v4 {
                put_u16(s, 2, u16::try_from(len).ok()?)?;
                put_u16(s, 4, id0.wrapping_add(i as u16))?;
                put_u16(s, 10, 0)?;
                let ihl = usize::from(s.first()? & 0x0f) * 4;
                let c = checksum::checksum(s.get(..ihl)?);
                put_u16(s, 10, c)?;
            } else {
                put_u16(s, 4, u16::try_from(len - 40).ok()?)?;
            }
            let seq = seq0.wrapping_add(u32::try_from(off).ok()?);
            s.get_mut(l4 + 4..l4 + 8)?
                .copy_from_slice(&seq.to_be_bytes());
            let mut fl = flags0;
            if i + 1 < n {
                fl &= !(0x01 | 0x08); // FIN, PSH only on the last segment
            }
            if i > 0 {
                fl &= !0x80; // CWR only on the first
            }
            *s.get_mut(l4 + 13)? = fl;
            put_u16(s, l4 + 16, 0)?;
            let tcp_len = u32::try_from(len - l4).ok()?;
            let ph = checksum::pseudo_header(&src, &dst, 6, tcp_len);
            let sum = checksum::combine(&[ph, checksum::data(s.get(l4..)?)]);
            put_u16(s, l4 + 16, !sum)
        };
        fix().ok_or(GsoError::Malformed)?;
        f(s);
    }
    Ok(())
}

/// The virtio-net header written in front of packets injected into the TUN device: no
/// offload, checksums complete.
pub const PLAIN_HDR: [u8; VNET_HDR_LEN] = [0; VNET_HDR_LEN];

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp4(payload: usize, flags: u8) -> Vec<u8> {
        let mut p = vec![0u8; 40 + payload];
        p[0] = 0x45;
        let tl = p.len() as u16;
        p[2..4].copy_from_slice(&tl.to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        let c = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p[20..22].copy_from_slice(&1000u16.to_be_bytes());
        p[22..24].copy_from_slice(&2000u16.to_be_bytes());
        p[24..28].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        for (i, b) in p[40..].iter_mut().enumerate() {
            *b = i as u8;
        }
        // The kernel leaves the pseudo-header sum in the checksum field.
        let ph = checksum::pseudo_header_v4(
            &Ipv4Addr::new(10, 0, 0, 1),
            &Ipv4Addr::new(10, 0, 0, 2),
            6,
            (20 + payload) as u32,
        );
        p[36..38].copy_from_slice(&ph.to_be_bytes());
        p
    }

    fn tcp_ok(s: &[u8]) -> bool {
        let (src, dst) = addrs(s).unwrap();
        let ph = checksum::pseudo_header(&src, &dst, 6, (s.len() - 20) as u32);
        checksum::combine(&[ph, checksum::data(&s[20..])]) == 0xffff && checksum::verify(&s[..20])
    }

    #[test]
    fn a_super_packet_becomes_mss_sized_segments_with_valid_checksums() {
        let mut p = tcp4(3000, 0x18 | 0x01 | 0x80); // PSH ACK FIN CWR
        let h = VnetHdr {
            flags: NEEDS_CSUM,
            gso_type: GSO_TCPV4,
            hdr_len: 40,
            gso_size: 1400,
            csum_start: 20,
            csum_offset: 16,
        };
        let mut segs = Vec::new();
        segments(&h, &mut p, &mut Vec::new(), |s| segs.push(s.to_vec())).unwrap();
        assert_eq!(segs.len(), 3);
        assert_eq!(
            segs.iter().map(|s| s.len()).collect::<Vec<_>>(),
            vec![1440, 1440, 240]
        );
        let mut joined = Vec::new();
        for (i, s) in segs.iter().enumerate() {
            assert!(tcp_ok(s), "segment {i} checksums");
            assert_eq!(u16::from_be_bytes([s[2], s[3]]) as usize, s.len());
            assert_eq!(u16::from_be_bytes([s[4], s[5]]), 0x1234 + i as u16);
            let seq = u32::from_be_bytes([s[24], s[25], s[26], s[27]]);
            assert_eq!(seq, 0xffff_fff0u32.wrapping_add(1400 * i as u32));
            let fl = s[33];
            assert_eq!(fl & 0x01 != 0, i == 2, "FIN only last");
            assert_eq!(fl & 0x08 != 0, i == 2, "PSH only last");
            assert_eq!(fl & 0x80 != 0, i == 0, "CWR only first");
            joined.extend_from_slice(&s[40..]);
        }
        assert_eq!(joined, p[40..].to_vec());
    }

    #[test]
    fn partial_checksums_are_completed_without_gso() {
        let mut p = tcp4(100, 0x10);
        let h = VnetHdr {
            flags: NEEDS_CSUM,
            csum_start: 20,
            csum_offset: 16,
            ..VnetHdr::default()
        };
        let mut out = Vec::new();
        segments(&h, &mut p, &mut Vec::new(), |s| out = s.to_vec()).unwrap();
        assert!(tcp_ok(&out));
    }

    #[test]
    fn bad_offsets_are_errors_not_panics() {
        let mut p = tcp4(100, 0x10);
        for h in [
            VnetHdr {
                flags: NEEDS_CSUM,
                csum_start: 200,
                csum_offset: 16,
                ..VnetHdr::default()
            },
            VnetHdr {
                gso_type: GSO_TCPV4,
                gso_size: 0,
                csum_start: 20,
                ..VnetHdr::default()
            },
            VnetHdr {
                gso_type: GSO_TCPV4,
                gso_size: 100,
                csum_start: 139,
                ..VnetHdr::default()
            },
            VnetHdr {
                gso_type: GSO_TCPV6,
                gso_size: 100,
                csum_start: 20,
                ..VnetHdr::default()
            },
            VnetHdr {
                gso_type: 3,
                gso_size: 100,
                csum_start: 20,
                ..VnetHdr::default()
            },
        ] {
            assert!(
                segments(&h, &mut p, &mut Vec::new(), |_| {}).is_err(),
                "{h:?}"
            );
        }
        assert_eq!(VnetHdr::parse(&[1, 2, 3]), None);
    }
}

/// The TCP segment fields [`coalesce`] compares.
struct Seg<'a> {
    v4: bool,
    ip_hlen: usize,
    tcp_hlen: usize,
    seq: u32,
    flags: u8,
    payload: &'a [u8],
    /// IP header bytes that must be equal for segments to merge (addresses, TOS/TTL or
    /// traffic class/flow label/hop limit), with lengths, IDs and checksums masked.
    ip_key: [u8; 40],
    /// TCP header bytes that must be equal: ports, ack, window, options (sequence number,
    /// flags and checksum masked).
    tcp_key: [u8; 60],
}

fn seg(p: &[u8]) -> Option<Seg<'_>> {
    let v = p.first()? >> 4;
    let (v4, ip_hlen) = match v {
        4 => {
            if *p.first()? != 0x45 || *p.get(9)? != 6 {
                return None;
            }
            // No fragments.
            if get_u16(p, 6)? & 0x3fff != 0 {
                return None;
            }
            (true, 20)
        }
        6 => {
            if *p.get(6)? != 6 {
                return None;
            }
            (false, 40)
        }
        _ => return None,
    };
    let total = if v4 {
        usize::from(get_u16(p, 2)?)
    } else {
        usize::from(get_u16(p, 4)?) + 40
    };
    if total != p.len() {
        return None;
    }
    let tcp_hlen = usize::from(p.get(ip_hlen + 12)? >> 4) * 4;
    if tcp_hlen < 20 || ip_hlen + tcp_hlen > p.len() {
        return None;
    }
    let mut ip_key = [0u8; 40];
    ip_key
        .get_mut(..ip_hlen)?
        .copy_from_slice(p.get(..ip_hlen)?);
    if v4 {
        ip_key[2..6].fill(0); // total length, identification
        ip_key[10..12].fill(0); // header checksum
    } else {
        ip_key[4..6].fill(0); // payload length
    }
    let mut tcp_key = [0u8; 60];
    tcp_key
        .get_mut(..tcp_hlen)?
        .copy_from_slice(p.get(ip_hlen..ip_hlen + tcp_hlen)?);
    tcp_key[4..8].fill(0); // sequence number
    tcp_key[13] = 0; // flags
    tcp_key[16..18].fill(0); // checksum
    Some(Seg {
        v4,
        ip_hlen,
        tcp_hlen,
        seq: u32::from_be_bytes(p.get(ip_hlen + 4..ip_hlen + 8)?.try_into().ok()?),
        flags: *p.get(ip_hlen + 13)?,
        payload: p.get(ip_hlen + tcp_hlen..)?,
        ip_key,
        tcp_key,
    })
}

/// Largest coalesced packet (IP total length).
const MAX_COALESCED: usize = 65_535;

/// Writes `pkts` (complete IP packets, in order) to the TUN device through `emit`, each
/// preceded by a virtio-net header, merging runs of in-order TCP segments of one flow into
/// one GSO packet (the receive-side coalescing a NIC's GRO does), so the kernel's TCP
/// receive path runs once per run instead of once per segment. Only plain ACK segments of
/// equal size (the last may be shorter and carry PSH) with identical headers apart from
/// sequence, length, ID and checksum merge; everything else passes unchanged. `scratch` is
/// reused between calls.
pub fn coalesce<'a>(
    pkts: impl IntoIterator<Item = &'a [u8]>,
    scratch: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]),
) {
    let mut pkts = pkts.into_iter().peekable();
    while let Some(first) = pkts.next() {
        let Some(head) = seg(first).filter(|s| s.flags == 0x10 && !s.payload.is_empty()) else {
            scratch.clear();
            scratch.extend_from_slice(&PLAIN_HDR);
            scratch.extend_from_slice(first);
            emit(scratch);
            continue;
        };
        let mss = head.payload.len();
        let hdrs = head.ip_hlen + head.tcp_hlen;
        scratch.clear();
        scratch.extend_from_slice(&[0u8; VNET_HDR_LEN]);
        scratch.extend_from_slice(first);
        let mut next_seq = head.seq.wrapping_add(mss as u32);
        let mut last_len = mss;
        let mut count = 1usize;
        let mut psh = false;
        while let Some(&p) = pkts.peek() {
            let Some(s) = seg(p) else { break };
            let ok = s.v4 == head.v4
                && s.ip_key == head.ip_key
                && s.tcp_key == head.tcp_key
                && s.seq == next_seq
                && last_len == mss
                && !s.payload.is_empty()
                && s.payload.len() <= mss
                && (s.flags == 0x10 || s.flags == 0x18)
                && scratch.len() - VNET_HDR_LEN + s.payload.len() <= MAX_COALESCED;
            if !ok {
                break;
            }
            scratch.extend_from_slice(s.payload);
            next_seq = next_seq.wrapping_add(s.payload.len() as u32);
            last_len = s.payload.len();
            count += 1;
            pkts.next();
            if s.flags == 0x18 {
                psh = true;
                break;
            }
        }
        if count == 1 {
            if let Some(h) = scratch.get_mut(..VNET_HDR_LEN) {
                h.copy_from_slice(&PLAIN_HDR);
            }
            emit(scratch);
            continue;
        }
        if finish_coalesced(scratch, &head, hdrs, mss, psh).is_some() {
            emit(scratch);
        }
    }
}

/// Fixes up the merged packet in `buf` (virtio header + packet): lengths, IPv4 header
/// checksum, PSH, the TCP checksum field set to the pseudo-header sum, and the header
/// asking the kernel to treat it as `count` segments of `mss` with the checksum pending.
fn finish_coalesced(
    buf: &mut [u8],
    head: &Seg<'_>,
    hdrs: usize,
    mss: usize,
    psh: bool,
) -> Option<()> {
    let (vh, p) = buf.split_at_mut(VNET_HDR_LEN);
    let len = p.len();
    let l4 = head.ip_hlen;
    if head.v4 {
        put_u16(p, 2, u16::try_from(len).ok()?)?;
        put_u16(p, 10, 0)?;
        let c = checksum::checksum(p.get(..20)?);
        put_u16(p, 10, c)?;
    } else {
        put_u16(p, 4, u16::try_from(len - 40).ok()?)?;
    }
    if psh {
        *p.get_mut(l4 + 13)? |= 0x08;
    }
    let (src, dst) = addrs(p)?;
    let ph = checksum::pseudo_header(&src, &dst, 6, u32::try_from(len - l4).ok()?);
    put_u16(p, l4 + 16, ph)?;
    vh[0] = NEEDS_CSUM;
    vh[1] = if head.v4 { GSO_TCPV4 } else { GSO_TCPV6 };
    vh[2..4].copy_from_slice(&u16::try_from(hdrs).ok()?.to_le_bytes());
    vh[4..6].copy_from_slice(&u16::try_from(mss).ok()?.to_le_bytes());
    vh[6..8].copy_from_slice(&u16::try_from(l4).ok()?.to_le_bytes());
    vh[8..10].copy_from_slice(&16u16.to_le_bytes());
    Some(())
}

#[cfg(test)]
mod coalesce_tests {
    use super::*;

    /// A TCP/IPv4 segment with a correct checksum.
    fn seg4(seq: u32, payload: &[u8], flags: u8) -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[8] = 64;
        p[9] = 6;
        p[12..16].copy_from_slice(&[10, 0, 0, 2]);
        p[16..20].copy_from_slice(&[10, 0, 0, 1]);
        p[20..22].copy_from_slice(&5001u16.to_be_bytes());
        p[22..24].copy_from_slice(&40000u16.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[28..32].copy_from_slice(&77u32.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p[34..36].copy_from_slice(&512u16.to_be_bytes());
        p.extend_from_slice(payload);
        let tl = p.len() as u16;
        p[2..4].copy_from_slice(&tl.to_be_bytes());
        let c = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        let ph = checksum::pseudo_header_v4(
            &Ipv4Addr::new(10, 0, 0, 2),
            &Ipv4Addr::new(10, 0, 0, 1),
            6,
            (p.len() - 20) as u32,
        );
        let c = !checksum::combine(&[ph, checksum::data(&p[20..])]);
        p[36..38].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn in_order_segments_merge_into_one_gso_packet_that_resegments_identically() {
        let a = seg4(1000, &[1; 100], 0x10);
        let b = seg4(1100, &[2; 100], 0x10);
        let c = seg4(1200, &[3; 40], 0x18);
        let d = seg4(5000, &[4; 100], 0x10); // a gap: starts a new run
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        coalesce(
            [a.as_slice(), b.as_slice(), c.as_slice(), d.as_slice()],
            &mut scratch,
            |p| out.push(p.to_vec()),
        );
        assert_eq!(out.len(), 2);
        let h = VnetHdr::parse(&out[0]).unwrap();
        assert_eq!(
            (h.gso_type, h.gso_size, h.csum_start, h.csum_offset),
            (GSO_TCPV4, 100, 20, 16)
        );
        assert_eq!(out[0].len(), VNET_HDR_LEN + 40 + 240);
        assert_eq!(out[1][..VNET_HDR_LEN], PLAIN_HDR);
        assert_eq!(&out[1][VNET_HDR_LEN..], d.as_slice());
        // Segmenting the merged packet gives back the original segments.
        let mut merged = out[0][VNET_HDR_LEN..].to_vec();
        let mut back = Vec::new();
        segments(&h, &mut merged, &mut Vec::new(), |s| back.push(s.to_vec())).unwrap();
        assert_eq!(back.len(), 3);
        for (got, want) in back.iter().zip([&a, &b, &c]) {
            assert_eq!(&got[20..], &want[20..], "TCP header and payload");
            assert_eq!(&got[12..20], &want[12..20]);
        }
    }

    #[test]
    fn mismatches_pass_through_unchanged() {
        let a = seg4(1000, &[1; 100], 0x10);
        let syn = seg4(1100, &[], 0x02);
        let b = seg4(1100, &[2; 100], 0x10);
        let mut other_ack = seg4(1200, &[3; 100], 0x10);
        other_ack[28..32].copy_from_slice(&78u32.to_be_bytes());
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        coalesce(
            [
                a.as_slice(),
                syn.as_slice(),
                b.as_slice(),
                other_ack.as_slice(),
                &[0x45, 0],
            ],
            &mut scratch,
            |p| out.push(p.to_vec()),
        );
        assert_eq!(out.len(), 5);
        assert!(out.iter().all(|p| p[..VNET_HDR_LEN] == PLAIN_HDR));
    }
}
