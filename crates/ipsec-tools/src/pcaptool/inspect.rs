//! Light parsing of IP packets for the offline tool: addresses, protocol and ports for outbound
//! SA selection, and the ESP/AH headers (SPI, sequence number) for the per-packet report.

use std::net::IpAddr;

use ipsec_core::Proto;
use ipsec_wire::{protocol, IpPacket};

/// What outbound selection looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Flow {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Upper-layer protocol (after IPv6 extension headers).
    pub proto: u8,
    /// Source port (0 when the protocol has none or the packet is a non-first fragment).
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
}

/// The first header after IPv4 or after the IPv6 hop-by-hop, routing, destination-options
/// and fragment headers (AH is not skipped): its protocol, its offset, and whether the packet
/// is a non-first fragment.
fn upper(ip: &[u8]) -> Option<(u8, usize, bool)> {
    if ip.first()? >> 4 == 4 {
        let ihl = usize::from(ip[0] & 0x0f) * 4;
        let ff = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
        return Some((*ip.get(9)?, ihl, ff & 0x1fff != 0));
    }
    let mut nh = *ip.get(6)?;
    let mut off = 40;
    let mut nonfirst = false;
    for _ in 0..16 {
        match nh {
            protocol::HOPOPT | protocol::ROUTING | protocol::DSTOPTS => {
                nh = *ip.get(off)?;
                off += (usize::from(*ip.get(off + 1)?) + 1) * 8;
            }
            protocol::FRAGMENT => {
                let f = ip.get(off..off + 8)?;
                nonfirst |= u16::from_be_bytes([f[2], f[3]]) >> 3 != 0;
                nh = f[0];
                off += 8;
            }
            _ => return Some((nh, off, nonfirst)),
        }
    }
    None
}

/// The flow of an IP packet, or `None` if it does not parse.
pub fn flow(ip: &[u8]) -> Option<Flow> {
    let p = IpPacket::new_checked(ip).ok()?;
    let (proto, off, nonfirst) = upper(ip).unwrap_or((p.next_header(), p.header_len(), true));
    let (sport, dport) = match proto {
        protocol::TCP | protocol::UDP | protocol::SCTP if !nonfirst => ip
            .get(off..off + 4)
            .map(|b| {
                (
                    u16::from_be_bytes([b[0], b[1]]),
                    u16::from_be_bytes([b[2], b[3]]),
                )
            })
            .unwrap_or((0, 0)),
        _ => (0, 0),
    };
    Some(Flow {
        src: p.src_addr(),
        dst: p.dst_addr(),
        proto,
        sport,
        dport,
    })
}

/// One ESP or AH header found in a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecHdr {
    /// ESP or AH.
    pub proto: Proto,
    /// SPI.
    pub spi: u32,
    /// Sequence number as carried (low 32 bits with ESN).
    pub seq: u32,
}

/// The IPsec headers of a packet, outermost first: AH and/or ESP, possibly inside UDP 4500.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SecHdrs {
    /// Outer destination address (the SA lookup key).
    pub dst: Option<IpAddr>,
    /// Outer source address.
    pub src: Option<IpAddr>,
    /// Up to two headers (AH outside ESP).
    pub hdrs: [Option<SecHdr>; 2],
    /// ESP inside UDP (NAT-T).
    pub natt: bool,
}

impl SecHdrs {
    /// The headers found.
    pub fn iter(&self) -> impl Iterator<Item = SecHdr> + '_ {
        self.hdrs.iter().flatten().copied()
    }
    /// True when no ESP or AH header was found.
    pub fn is_empty(&self) -> bool {
        self.hdrs[0].is_none()
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let x = b.get(at..at + 4)?;
    Some(u32::from_be_bytes([x[0], x[1], x[2], x[3]]))
}

/// Finds the ESP/AH headers of `ip` (at most AH then ESP), the way inbound processing will
/// meet them. Fragments and non-IPsec packets give an empty result.
pub fn sec_hdrs(ip: &[u8]) -> SecHdrs {
    let mut out = SecHdrs::default();
    let Ok(p) = IpPacket::new_checked(ip) else {
        return out;
    };
    out.src = Some(p.src_addr());
    out.dst = Some(p.dst_addr());
    let Some((mut proto, mut off, nonfirst)) = upper(ip) else {
        return out;
    };
    if nonfirst {
        return out;
    }
    if proto == protocol::UDP {
        let Some(udp) = ip.get(off..off + 8) else {
            return out;
        };
        let sport = u16::from_be_bytes([udp[0], udp[1]]);
        let dport = u16::from_be_bytes([udp[2], udp[3]]);
        if sport != 4500 && dport != 4500 {
            return out;
        }
        // Keepalive (one 0xff byte) or IKE (non-ESP marker): not ESP.
        match be32(ip, off + 8) {
            Some(0) | None => return out,
            Some(_) => {}
        }
        out.natt = true;
        proto = protocol::ESP;
        off += 8;
    }
    let mut n = 0;
    while n < 2 {
        match proto {
            protocol::ESP => {
                if let (Some(spi), Some(seq)) = (be32(ip, off), be32(ip, off + 4)) {
                    out.hdrs[n] = Some(SecHdr {
                        proto: Proto::Esp,
                        spi,
                        seq,
                    });
                }
                break;
            }
            protocol::AH if !out.natt => {
                let (Some(nh), Some(len), Some(spi), Some(seq)) = (
                    ip.get(off).copied(),
                    ip.get(off + 1).copied(),
                    be32(ip, off + 4),
                    be32(ip, off + 8),
                ) else {
                    break;
                };
                out.hdrs[n] = Some(SecHdr {
                    proto: Proto::Ah,
                    spi,
                    seq,
                });
                proto = nh;
                off += (usize::from(len) + 2) * 4;
                n += 1;
            }
            _ => break,
        }
    }
    out
}

/// Identifies the datagram a fragment belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FragKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Identification (IPv4 16 bits, IPv6 32 bits).
    pub id: u32,
    /// Protocol of the fragmented payload.
    pub proto: u8,
}

/// The datagram key of `ip` if it is a fragment.
pub fn frag_key(ip: &[u8]) -> Option<FragKey> {
    let p = IpPacket::new_checked(ip).ok()?;
    let (src, dst) = (p.src_addr(), p.dst_addr());
    if ip.first()? >> 4 == 4 {
        let ff = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]);
        if ff & 0x3fff == 0 {
            return None;
        }
        return Some(FragKey {
            src,
            dst,
            id: u32::from(u16::from_be_bytes([ip[4], ip[5]])),
            proto: ip[9],
        });
    }
    let mut nh = *ip.get(6)?;
    let mut off = 40;
    for _ in 0..16 {
        match nh {
            protocol::FRAGMENT => {
                return Some(FragKey {
                    src,
                    dst,
                    id: be32(ip, off + 4)?,
                    proto: *ip.get(off)?,
                });
            }
            protocol::HOPOPT | protocol::ROUTING | protocol::DSTOPTS => {
                nh = *ip.get(off)?;
                off += (usize::from(*ip.get(off + 1)?) + 1) * 8;
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nat_t_esp_and_ah_bundle() {
        // IPv4 / UDP 4500 / ESP spi 0x1234 seq 7
        let mut p = vec![
            0x45, 0, 0, 44, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(&[0x11, 0x94, 0x11, 0x94, 0, 24, 0, 0]);
        p.extend_from_slice(&[0, 0, 0x12, 0x34, 0, 0, 0, 7]);
        p.extend_from_slice(&[0; 8]);
        let h = sec_hdrs(&p);
        assert!(h.natt);
        assert_eq!(
            h.hdrs[0],
            Some(SecHdr {
                proto: Proto::Esp,
                spi: 0x1234,
                seq: 7
            })
        );
        // IPv4 / AH (len 4 -> 24 bytes) / ESP
        let mut q = vec![
            0x45, 0, 0, 60, 0, 0, 0, 0, 64, 51, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        q.extend_from_slice(&[50, 4, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 3]);
        q.extend_from_slice(&[0; 12]);
        q.extend_from_slice(&[0, 0, 0x10, 0, 0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8]);
        let h = sec_hdrs(&q);
        assert!(!h.natt);
        let v: Vec<_> = h.iter().collect();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].proto, v[0].spi, v[0].seq), (Proto::Ah, 0x2000, 3));
        assert_eq!((v[1].proto, v[1].spi, v[1].seq), (Proto::Esp, 0x1000, 9));
    }
}
