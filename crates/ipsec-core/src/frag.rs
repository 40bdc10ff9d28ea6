//! Reassembly of IPv4 and IPv6 fragments carrying ESP or AH, before IPsec processing
//! (RFC 4303 §3.4.1). Bounded in the number of datagrams, in bytes and in time; overlapping
//! fragments discard the whole datagram (RFC 5722 for IPv6, and the same here for IPv4).

use std::net::IpAddr;

use crate::buf::PacketBuf;
use crate::drop::DropReason;
use crate::hdr::{self, IPPROTO_FRAGMENT};

/// Limits of a [`Reassembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Datagrams under reassembly at once.
    pub max_datagrams: usize,
    /// Bytes held across all datagrams.
    pub max_bytes: usize,
    /// Seconds a datagram may take to complete.
    pub timeout: u64,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        Self {
            max_datagrams: 64,
            max_bytes: 4 << 20,
            timeout: 30,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Key {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

#[derive(Debug)]
struct Datagram {
    key: Key,
    started: u64,
    /// Unfragmentable part (IP header, and IPv6 headers before the fragment header), taken from
    /// the first fragment, with the next-header byte already pointing past the fragment header.
    head: Vec<u8>,
    payload: Vec<u8>,
    /// Received byte ranges of the payload, sorted, non-overlapping.
    have: Vec<(usize, usize)>,
    total: Option<usize>,
}

/// Fragment reassembly state.
#[derive(Debug, Default)]
pub struct Reassembler {
    limits: ReassemblyLimits,
    datagrams: Vec<Datagram>,
    bytes: usize,
}

struct Frag<'a> {
    key: Key,
    offset: usize,
    more: bool,
    /// Unfragmentable part with its next-header byte rewritten (only meaningful at offset 0).
    head: &'a [u8],
    nh_off: usize,
    nh: u8,
    data: &'a [u8],
}

fn parse_frag(p: &[u8]) -> Result<Option<Frag<'_>>, DropReason> {
    let h = hdr::parse(p)?;
    if !h.fragment {
        return Ok(None);
    }
    if !h.v6 {
        let ihl = h.l4_off;
        let ff = u16::from_be_bytes([p[6], p[7]]);
        let id = u16::from_be_bytes([p[4], p[5]]);
        return Ok(Some(Frag {
            key: Key {
                src: h.src,
                dst: h.dst,
                id: u32::from(id),
                proto: h.proto,
            },
            offset: usize::from(ff & 0x1fff) * 8,
            more: ff & 0x2000 != 0,
            head: &p[..ihl],
            nh_off: 9,
            nh: h.proto,
            data: &p[ihl..],
        }));
    }
    // IPv6: find the fragment header in the chain.
    let mut nh = p[6];
    let mut nh_off = 6;
    let mut off = 40;
    for _ in 0..16 {
        if nh == IPPROTO_FRAGMENT {
            let f = p.get(off..off + 8).ok_or(DropReason::MalformedFrag)?;
            let ol = u16::from_be_bytes([f[2], f[3]]);
            return Ok(Some(Frag {
                key: Key {
                    src: h.src,
                    dst: h.dst,
                    id: u32::from_be_bytes([f[4], f[5], f[6], f[7]]),
                    proto: f[0],
                },
                offset: usize::from(ol >> 3) * 8,
                more: ol & 1 != 0,
                head: &p[..off],
                nh_off,
                nh: f[0],
                data: &p[off + 8..],
            }));
        }
        let len = (usize::from(*p.get(off + 1).ok_or(DropReason::MalformedFrag)?) + 1) * 8;
        nh_off = off;
        nh = *p.get(off).ok_or(DropReason::MalformedFrag)?;
        off += len;
    }
    Err(DropReason::MalformedFrag)
}

impl Reassembler {
    /// A reassembler with these limits.
    pub fn new(limits: ReassemblyLimits) -> Self {
        Self {
            limits,
            datagrams: Vec::new(),
            bytes: 0,
        }
    }

    /// Datagrams currently held.
    pub fn pending(&self) -> usize {
        self.datagrams.len()
    }

    /// Drops datagrams older than the timeout; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        let before = self.datagrams.len();
        let timeout = self.limits.timeout;
        let mut freed = 0;
        self.datagrams.retain(|d| {
            let keep = now.saturating_sub(d.started) < timeout;
            if !keep {
                freed += d.payload.len() + d.head.len();
            }
            keep
        });
        self.bytes -= freed;
        before - self.datagrams.len()
    }

    fn discard(&mut self, i: usize) {
        let d = self.datagrams.swap_remove(i);
        self.bytes -= d.payload.len() + d.head.len();
    }

    /// Feeds the packet in `buf`. Not a fragment: `Ok(true)`, untouched. A fragment that
    /// completes its datagram: `Ok(true)` with `buf` now holding the whole datagram. Any other
    /// fragment: kept, `Ok(false)`. Bad fragments are errors with their drop reason.
    pub fn push(&mut self, buf: &mut PacketBuf, now: u64) -> Result<bool, DropReason> {
        self.expire(now);
        let Some(f) = parse_frag(buf.data())? else {
            return Ok(true);
        };
        let end = f.offset + f.data.len();
        if end > 65535 || (f.more && f.data.len() % 8 != 0) || f.data.is_empty() {
            return Err(DropReason::MalformedFrag);
        }
        let idx = match self.datagrams.iter().position(|d| d.key == f.key) {
            Some(i) => i,
            None => {
                if self.datagrams.len() >= self.limits.max_datagrams {
                    return Err(DropReason::MaxFrags);
                }
                self.datagrams.push(Datagram {
                    key: f.key,
                    started: now,
                    head: Vec::new(),
                    payload: Vec::new(),
                    have: Vec::new(),
                    total: None,
                });
                self.datagrams.len() - 1
            }
        };
        let d = &self.datagrams[idx];
        if d.have.iter().any(|&(s, e)| f.offset < e && end > s) {
            self.discard(idx);
            return Err(DropReason::OverlapFrag);
        }
        if (!f.more && d.total.is_some_and(|t| t != end)) || d.total.is_some_and(|t| end > t) {
            self.discard(idx);
            return Err(DropReason::MalformedFrag);
        }
        let grow =
            end.saturating_sub(d.payload.len()) + if f.offset == 0 { f.head.len() } else { 0 };
        if self.bytes + grow > self.limits.max_bytes {
            self.discard(idx);
            return Err(DropReason::MaxFrags);
        }
        self.bytes += grow;
        let d = &mut self.datagrams[idx];
        if d.payload.len() < end {
            d.payload.resize(end, 0);
        }
        d.payload[f.offset..end].copy_from_slice(f.data);
        let pos = d.have.partition_point(|&(s, _)| s < f.offset);
        d.have.insert(pos, (f.offset, end));
        if !f.more {
            d.total = Some(end);
        }
        if f.offset == 0 {
            d.head = f.head.to_vec();
            if let Some(b) = d.head.get_mut(f.nh_off) {
                *b = f.nh;
            }
            if !d.head.is_empty() && d.head[0] >> 4 == 4 {
                // Clear MF and the offset in the reassembled header.
                d.head[6] &= 0x40;
                d.head[7] = 0;
            }
        }
        let complete = d.total.is_some_and(|t| {
            !d.head.is_empty() && {
                let mut at = 0;
                for &(s, e) in &d.have {
                    if s > at {
                        return false;
                    }
                    at = at.max(e);
                }
                at == t
            }
        });
        if !complete {
            return Ok(false);
        }
        let d = self.datagrams.swap_remove(idx);
        self.bytes -= d.payload.len() + d.head.len();
        let total = d.head.len() + d.payload.len();
        if total > 65535 + 40 {
            return Err(DropReason::MalformedFrag);
        }
        let mut whole = PacketBuf::with_mtu(total);
        let slot = whole.read_slot();
        let Some(dst) = slot.get_mut(..total) else {
            return Err(DropReason::MalformedFrag);
        };
        dst[..d.head.len()].copy_from_slice(&d.head);
        dst[d.head.len()..].copy_from_slice(&d.payload);
        whole.set_len(total);
        let nh_off = f_nh_off(&d.head);
        let nh = d.head.get(nh_off).copied().unwrap_or(0);
        let p = whole.data_mut();
        hdr::set_proto_len(p, nh_off, nh)?;
        if p.first().is_some_and(|b| b >> 4 == 4) {
            hdr::ipv4_fill_checksum(p)?;
        }
        *buf = whole;
        Ok(true)
    }
}

/// Offset of the byte naming the first header after the unfragmentable part.
fn f_nh_off(head: &[u8]) -> usize {
    if head.first().is_some_and(|b| b >> 4 == 4) {
        return 9;
    }
    let mut off = 40;
    let mut nh_off = 6;
    while off < head.len() {
        nh_off = off;
        off += (usize::from(head.get(off + 1).copied().unwrap_or(0)) + 1) * 8;
    }
    nh_off
}
