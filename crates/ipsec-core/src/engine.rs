//! The ESP (RFC 4303) and AH (RFC 4302) engine: outbound encapsulation and inbound
//! decapsulation, in transport and tunnel mode, IPv4 and IPv6, AH+ESP bundles and RFC 3948
//! UDP encapsulation, in place on [`PacketBuf`]s, with batch entry points.
//!
//! Inbound order of checks (RFC 4303 §3.4): SA lookup, the cheap anti-replay check, the
//! lifetime check, the ICV, decryption, then the window update; only then are counters and
//! lifetimes charged. A packet that fails anywhere leaves the SA's window, counters and
//! lifetimes untouched except for the drop counter of its reason.

use std::net::IpAddr;

use ipsec_crypto::CryptoError;

use crate::buf::PacketBuf;
use crate::drop::DropReason;
use crate::hdr::{
    self, IPPROTO_AH, IPPROTO_ESP, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_NONE, IPPROTO_UDP,
};
use crate::sa::{Mode, Proto, Sa, SaState};
use crate::sadb::{SaId, Sadb};

mod fast;
#[cfg(test)]
mod fast_tests;
mod split;
#[cfg(test)]
mod split_tests;

pub use split::{CryptoDone, CryptoJob};

/// UDP port of NAT-T (RFC 3948).
pub const NATT_PORT: u16 = 4500;
const ESP_HDR: usize = 8;
const UDP_HDR: usize = 8;
const AH_FIXED: usize = 12;
/// Maximum SAs applied to one packet (AH outside ESP).
pub const MAX_BUNDLE: usize = 2;

/// What inbound processing found, for the policy check that follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InboundOk {
    /// SAs that protected the packet, outermost first.
    pub sas: [Option<SaId>; MAX_BUNDLE],
    /// The packet arrived inside UDP (NAT-T).
    pub natt: bool,
    /// The packet was tunnel-mode: the buffer now holds the inner packet.
    pub tunnel: bool,
}

impl InboundOk {
    /// Iterates over the SAs used, outermost first.
    pub fn sa_ids(&self) -> impl Iterator<Item = SaId> + '_ {
        self.sas.iter().flatten().copied()
    }
}

/// Per-thread engine state: scratch space for AH's mutable-field view, the IPv4
/// identification counter for tunnel headers, and the last inbound SA as a lookup hint.
/// Allocates only when created.
#[derive(Debug)]
pub struct Engine {
    scratch: Vec<u8>,
    ident: u16,
    /// SPI and handle of the SA the lean inbound path last found. Only a hint: it is used
    /// when the SA behind it, in whatever SADB the call gets, holds exactly the packet's
    /// <ESP, destination, SPI, source>, which no other SA can (see `fast::exact_sa`).
    in_hint: Option<(u32, SaId)>,
    /// Whether inbound ESP checks the padding bytes of SAs that ask for it (the host-wide
    /// switch, Solaris `ipsecesp_padding_check`; default on). Each SA's own
    /// [`SaConfig::padding_check`](crate::sa::SaConfig) can only turn the check off.
    pub padding_check: bool,
    /// The AEAD seal deferred by [`Engine::outbound_split`].
    seal_sink: split::SealSink,
    /// The outcome of the open job of the packet [`Engine::inbound_opened`] is processing.
    opened: Option<CryptoDone>,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

#[cold]
#[inline(never)]
fn count(sadb: &mut Sadb, id: Option<SaId>, r: DropReason) -> DropReason {
    sadb.global_drops.count(r);
    if let Some(sa) = id.and_then(|id| sadb.get_mut(id)) {
        sa.stats.drops.count(r);
    }
    r
}

impl Engine {
    /// A new engine.
    pub fn new() -> Self {
        Self {
            scratch: vec![0u8; 512],
            ident: 1,
            in_hint: None,
            padding_check: true,
            seal_sink: split::SealSink::default(),
            opened: None,
        }
    }

    /// Bytes ESP/AH processing with this bundle (innermost SA first) adds to `packet`, for
    /// path-MTU decisions.
    pub fn overhead(sadb: &Sadb, bundle: &[SaId], packet: &[u8]) -> usize {
        let mut hlen = hdr::insertion_point(packet).map_or(0, |h| h.l4_off);
        let mut len = packet.len();
        let mut v6 = packet.first().is_some_and(|b| b >> 4 == 6);
        for id in bundle {
            let Some(sa) = sadb.get(*id) else { continue };
            let c = sa.config();
            let payload = if c.mode == Mode::Tunnel {
                hlen = hdr::outer_len(c.dst);
                v6 = c.dst.is_ipv6();
                len += hlen;
                len - hlen
            } else {
                len - hlen
            };
            len += match c.proto {
                Proto::Esp => {
                    let esp = sa.encr().map_or(0, |e| {
                        let align = e.block_len().max(4);
                        let padded = (payload + 2).div_ceil(align) * align;
                        ESP_HDR + e.iv_len() + (padded - payload) + e.icv_len()
                    });
                    esp + sa.integ().map_or(0, |i| i.icv_len())
                        + if c.natt.is_some() { UDP_HDR } else { 0 }
                }
                Proto::Ah => {
                    let (icv, iv) = sa.integ().map_or((0, 0), |i| (i.icv_len(), i.iv_len()));
                    ah_len(icv, iv, v6)
                }
            };
        }
        len - packet.len()
    }

    /// Applies `bundle` (innermost first: ESP then AH) to the IP packet in `buf`.
    pub fn outbound(
        &mut self,
        sadb: &mut Sadb,
        bundle: &[SaId],
        buf: &mut PacketBuf,
        now: u64,
    ) -> Result<(), DropReason> {
        if let [id] = bundle {
            if let Some(r) = self.esp_out_fast(sadb, *id, buf, now) {
                return r;
            }
        }
        self.outbound_general(sadb, bundle, buf, now)
    }

    /// The general outbound path: any bundle, any transform, any header chain.
    #[inline(never)]
    fn outbound_general(
        &mut self,
        sadb: &mut Sadb,
        bundle: &[SaId],
        buf: &mut PacketBuf,
        now: u64,
    ) -> Result<(), DropReason> {
        let tl = hdr::total_len(buf.data()).map_err(|r| count(sadb, None, r))?;
        let extra = buf.len() - tl;
        buf.trim_back(extra)
            .map_err(|_| count(sadb, None, DropReason::MalformedPacket))?;
        for id in bundle {
            let Some(sa) = sadb.get_mut(*id) else {
                return Err(count(sadb, None, DropReason::SaExpired));
            };
            let res = match sa.proto() {
                Proto::Esp => self.esp_out(sa, buf, now),
                Proto::Ah => self.ah_out(sa, buf, now),
            };
            if let Err(r) = res {
                if matches!(r, DropReason::EspSeqExhausted | DropReason::AhSeqExhausted) {
                    sadb.note_exhausted(*id);
                }
                return Err(count(sadb, Some(*id), r));
            }
        }
        Ok(())
    }

    /// Outbound over a batch: every buffer gets the same bundle; `results[i]` receives buffer
    /// i's outcome.
    pub fn outbound_batch(
        &mut self,
        sadb: &mut Sadb,
        bundle: &[SaId],
        bufs: &mut [PacketBuf],
        results: &mut [Result<(), DropReason>],
        now: u64,
    ) {
        for (b, r) in bufs.iter_mut().zip(results.iter_mut()) {
            *r = self.outbound(sadb, bundle, b, now);
        }
    }

    /// Inbound over a batch.
    pub fn inbound_batch(
        &mut self,
        sadb: &mut Sadb,
        bufs: &mut [PacketBuf],
        results: &mut [Result<InboundOk, DropReason>],
        now: u64,
    ) {
        for (b, r) in bufs.iter_mut().zip(results.iter_mut()) {
            *r = self.inbound(sadb, b, now);
        }
    }

    #[inline(never)]
    fn outer_for(
        &mut self,
        sa: &Sa,
        inner: &[u8],
        proto: u8,
    ) -> Result<(hdr::Outer, u8), DropReason> {
        let c = sa.config();
        let src = c.src.ok_or(DropReason::MalformedPacket)?;
        let inner_v4 = inner.first().is_some_and(|b| b >> 4 == 4);
        let dscp = if c.copy_dscp { hdr::dscp(inner) } else { 0 };
        // RFC 6040 normal mode: the outer ECN field is a copy of the inner one.
        let tos = (dscp << 2) | hdr::ecn(inner);
        let df = if inner_v4 {
            hdr::dont_frag(inner)
        } else {
            true
        };
        self.ident = self.ident.wrapping_add(1);
        let outer = hdr::Outer {
            src,
            dst: c.dst,
            proto,
            tos,
            df,
            ident: self.ident,
            flow: 0,
        };
        Ok((outer, if inner_v4 { IPPROTO_IPIP } else { IPPROTO_IPV6 }))
    }

    fn esp_out(&mut self, sa: &mut Sa, buf: &mut PacketBuf, now: u64) -> Result<(), DropReason> {
        if !sa.state().usable() {
            return Err(not_usable(sa.state()));
        }
        let natt = sa.config().natt;
        let wire_proto = if natt.is_some() {
            IPPROTO_UDP
        } else {
            IPPROTO_ESP
        };
        // Layout: [prefix][UDP?][ESP hdr][IV][payload][pad][padlen][nh][ICV]
        let (prefix, nh, nh_off, outer) = match sa.mode() {
            Mode::Tunnel => {
                let (o, nh) = self.outer_for(sa, buf.data(), wire_proto)?;
                (hdr::outer_len(o.src), nh, None, Some(o))
            }
            Mode::Transport => {
                let h = hdr::insertion_point(buf.data())?;
                (h.l4_off, h.proto, Some(h.nh_off), None)
            }
        };
        let payload_len = if outer.is_some() {
            buf.len()
        } else {
            buf.len() - prefix
        };
        if sa.hard_limit_reached(payload_len) {
            return Err(DropReason::EspBytesExpire);
        }
        let (iv_len, aead_icv, align) = match sa.encr() {
            Some(e) => (e.iv_len(), e.icv_len(), e.block_len().max(4)),
            None => return Err(DropReason::EspCryptoFailed),
        };
        let auth_icv = sa.integ().map_or(0, |i| i.icv_len());
        // `align` is a power of two (4, 8 or 16).
        let pad = align.wrapping_sub(payload_len + 2) & (align - 1);
        let natt_len = if natt.is_some() { UDP_HDR } else { 0 };
        let insert = natt_len + ESP_HDR + iv_len;
        let tail = pad + 2 + aead_icv + auth_icv;
        let front = insert + if outer.is_some() { prefix } else { 0 };
        if buf.headroom() < front || buf.tailroom() < tail {
            return Err(DropReason::NoBufferSpace);
        }
        let wire_v6 = match &outer {
            Some(o) => o.src.is_ipv6(),
            None => buf.data().first().is_some_and(|b| b >> 4 == 6),
        };
        let seq = sa.next_seq().ok_or(DropReason::EspSeqExhausted)?;
        match outer {
            Some(_) => buf.push_front(front),
            None => buf.open_gap(prefix, insert),
        }
        .map_err(|_| DropReason::NoBufferSpace)?;
        buf.push_back(tail).map_err(|_| DropReason::NoBufferSpace)?;

        let spi = sa.spi();
        let esn = sa.config().esn;
        let p = buf.data_mut();
        let esp = prefix + natt_len;
        let pt = esp + ESP_HDR + iv_len;
        let ct_end = pt + payload_len + pad + 2;
        p[esp..esp + 4].copy_from_slice(&spi.to_be_bytes());
        p[esp + 4..esp + 8].copy_from_slice(&(seq as u32).to_be_bytes());
        let mut iv = [0u8; 16];
        let iv = iv.get_mut(..iv_len).ok_or(DropReason::EspCryptoFailed)?;
        if let Some(e) = sa.encr() {
            e.make_iv(seq, iv);
        }
        p[esp + ESP_HDR..pt].copy_from_slice(iv);
        for (i, b) in p[pt + payload_len..pt + payload_len + pad]
            .iter_mut()
            .enumerate()
        {
            *b = (i + 1) as u8;
        }
        p[ct_end - 2] = pad as u8;
        p[ct_end - 1] = nh;
        let (aad, aad_len) = esp_aad(spi, seq, esn);
        if let Some(e) = sa.encr() {
            let data = &mut p[pt..ct_end + aead_icv];
            // The seal may wait (outbound_split) when nothing after it reads the
            // ciphertext: no separate ICV over it, no IPv6 UDP checksum.
            if auth_icv == 0 && !(natt.is_some() && wire_v6) {
                self.seal_sink
                    .seal(sa, e, seq, iv, &aad[..aad_len], data, pt)
            } else {
                e.seal(iv, &aad[..aad_len], data)
            }
            .map_err(|_| DropReason::EspCryptoFailed)?;
        }
        if let Some(integ) = sa.integ() {
            let hi = ((seq >> 32) as u32).to_be_bytes();
            let (body, icv) = p.split_at_mut(ct_end + aead_icv);
            let parts: [&[u8]; 2] = [&body[esp..], if esn { &hi } else { &[] }];
            integ
                .compute(&[], &parts, &mut icv[..auth_icv])
                .map_err(|_| DropReason::EspCryptoFailed)?;
        }
        match (outer, nh_off) {
            (Some(o), _) => hdr::write_outer(p, &o)?,
            (None, Some(off)) => hdr::set_proto_len(p, off, wire_proto)?,
            (None, None) => return Err(DropReason::MalformedPacket),
        }
        if let Some(n) = natt {
            let udp_len = u16::try_from(p.len() - prefix).map_err(|_| DropReason::TooBig)?;
            p[prefix..prefix + 2].copy_from_slice(&n.local_port.to_be_bytes());
            p[prefix + 2..prefix + 4].copy_from_slice(&n.remote_port.to_be_bytes());
            p[prefix + 4..prefix + 6].copy_from_slice(&udp_len.to_be_bytes());
            p[prefix + 6] = 0;
            p[prefix + 7] = 0;
            // RFC 3948 §2.1: IPv4 sends a zero checksum; IPv6 may not (RFC 8200 §8.1).
            if p.first().is_some_and(|b| b >> 4 == 6) {
                let h = hdr::parse(p)?;
                hdr::fill_udp_checksum(p, prefix, &h.src, &h.dst)?;
            }
        }
        sa.account(payload_len, now);
        Ok(())
    }

    #[inline(never)]
    fn ah_out(&mut self, sa: &mut Sa, buf: &mut PacketBuf, now: u64) -> Result<(), DropReason> {
        if !sa.state().usable() {
            return Err(not_usable(sa.state()));
        }
        let (icv_len, iv_len) = match sa.integ() {
            Some(i) => (i.icv_len(), i.iv_len()),
            None => return Err(DropReason::AhBadAuth),
        };
        let (prefix, nh, nh_off, outer) = match sa.mode() {
            Mode::Tunnel => {
                let (o, nh) = self.outer_for(sa, buf.data(), IPPROTO_AH)?;
                (hdr::outer_len(o.src), nh, None, Some(o))
            }
            Mode::Transport => {
                let h = hdr::insertion_point(buf.data())?;
                (h.l4_off, h.proto, Some(h.nh_off), None)
            }
        };
        let v6 = match &outer {
            Some(o) => o.src.is_ipv6(),
            None => buf.data().first().is_some_and(|b| b >> 4 == 6),
        };
        let ah_len = ah_len(icv_len, iv_len, v6);
        let payload_len = if outer.is_some() {
            buf.len()
        } else {
            buf.len() - prefix
        };
        if sa.hard_limit_reached(payload_len) {
            return Err(DropReason::AhBytesExpire);
        }
        let front = ah_len + if outer.is_some() { prefix } else { 0 };
        if buf.headroom() < front {
            return Err(DropReason::NoBufferSpace);
        }
        let seq = sa.next_seq().ok_or(DropReason::AhSeqExhausted)?;
        match outer {
            Some(_) => buf.push_front(front),
            None => buf.open_gap(prefix, ah_len),
        }
        .map_err(|_| DropReason::NoBufferSpace)?;
        let p = buf.data_mut();
        let a = &mut p[prefix..prefix + ah_len];
        a.iter_mut().for_each(|b| *b = 0);
        a[0] = nh;
        a[1] = (ah_len / 4 - 2) as u8;
        a[4..8].copy_from_slice(&sa.spi().to_be_bytes());
        a[8..12].copy_from_slice(&(seq as u32).to_be_bytes());
        if iv_len == 8 {
            a[12..20].copy_from_slice(&seq.to_be_bytes());
        }
        match (outer, nh_off) {
            (Some(o), _) => hdr::write_outer(p, &o)?,
            (None, Some(off)) => hdr::set_proto_len(p, off, IPPROTO_AH)?,
            (None, None) => return Err(DropReason::MalformedPacket),
        }
        let mut icv = [0u8; 32];
        let icv = icv.get_mut(..icv_len).ok_or(DropReason::AhBadAuth)?;
        self.ah_icv(sa, p, prefix, ah_len, iv_len, seq, icv)?;
        p[prefix + AH_FIXED + iv_len..prefix + AH_FIXED + iv_len + icv_len].copy_from_slice(icv);
        sa.account(payload_len, now);
        Ok(())
    }

    /// Computes the AH ICV of `p`, whose AH header (ICV field zero or to be treated as zero)
    /// starts at `ah`.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn ah_icv(
        &mut self,
        sa: &Sa,
        p: &[u8],
        ah: usize,
        ah_len: usize,
        iv_len: usize,
        seq: u64,
        out: &mut [u8],
    ) -> Result<(), DropReason> {
        let integ = sa.integ().ok_or(DropReason::AhBadAuth)?;
        if self.scratch.len() < ah + 64 {
            self.scratch.resize(ah + 64, 0);
        }
        let (head, ahcopy) = self.scratch.split_at_mut(ah);
        head.copy_from_slice(&p[..ah]);
        hdr::ah_zero_mutable(head)?;
        let ahcopy = ahcopy.get_mut(..ah_len).ok_or(DropReason::AhBadLength)?;
        ahcopy.copy_from_slice(&p[ah..ah + ah_len]);
        ahcopy[AH_FIXED + iv_len..].iter_mut().for_each(|b| *b = 0);
        let hi = ((seq >> 32) as u32).to_be_bytes();
        let esn = sa.config().esn;
        let iv = &p[ah + AH_FIXED..ah + AH_FIXED + iv_len];
        let parts: [&[u8]; 4] = [head, ahcopy, &p[ah + ah_len..], if esn { &hi } else { &[] }];
        integ
            .compute(iv, &parts, out)
            .map_err(|_| DropReason::AhBadAuth)
    }

    /// Processes an inbound IP packet carrying ESP, AH (or both, AH outside) or ESP in UDP on
    /// port 4500. On success `buf` holds the decapsulated packet (the inner packet in tunnel
    /// mode).
    pub fn inbound(
        &mut self,
        sadb: &mut Sadb,
        buf: &mut PacketBuf,
        now: u64,
    ) -> Result<InboundOk, DropReason> {
        let outer_sa = match self.esp_in_fast(sadb, buf, now) {
            fast::FastIn::Done(r) => return r,
            fast::FastIn::Inner(id) => Some(id),
            fast::FastIn::Slow => None,
        };
        self.inbound_general(sadb, buf, now, outer_sa)
    }

    /// The general inbound path; `outer_sa` is the SA the lean path already removed.
    #[inline(never)]
    fn inbound_general(
        &mut self,
        sadb: &mut Sadb,
        buf: &mut PacketBuf,
        now: u64,
        mut outer_sa: Option<SaId>,
    ) -> Result<InboundOk, DropReason> {
        let tl = hdr::total_len(buf.data()).map_err(|r| count(sadb, None, r))?;
        let extra = buf.len() - tl;
        buf.trim_back(extra)
            .map_err(|_| count(sadb, None, DropReason::MalformedPacket))?;
        // Plain locals rather than fields of the result: writing pieces of a struct and then
        // copying it whole stalls store forwarding on the hot path.
        let mut inner_sa: Option<SaId> = None;
        let mut natt = false;
        let mut tunnel = false;
        loop {
            let h = hdr::parse(buf.data()).map_err(|r| count(sadb, None, r))?;
            if h.fragment && matches!(h.proto, IPPROTO_ESP | IPPROTO_AH | IPPROTO_UDP) {
                // RFC 4303 §3.4.1: reassembly happens before IPsec (see `frag`).
                return Err(count(sadb, None, DropReason::EvilFrag));
            }
            let first = outer_sa.is_none();
            let step = match h.proto {
                IPPROTO_UDP if first && !natt => match natt_strip(buf, &h) {
                    Ok(true) => {
                        natt = true;
                        continue;
                    }
                    Ok(false) => return Err(count(sadb, None, DropReason::NotIpsec)),
                    Err(r) => return Err(count(sadb, None, r)),
                },
                IPPROTO_ESP => self.esp_in(sadb, buf, &h, now),
                IPPROTO_AH => self.ah_in(sadb, buf, &h, now),
                _ if first => return Err(count(sadb, None, DropReason::NotIpsec)),
                _ => break,
            };
            let (id, next) = step?;
            if first {
                outer_sa = Some(id);
            } else {
                inner_sa = Some(id);
            }
            match next {
                Next::Tunnel => {
                    tunnel = true;
                    break;
                }
                // At most MAX_BUNDLE (2) SAs per packet: AH outside ESP.
                Next::Proto(IPPROTO_ESP | IPPROTO_AH) if first => {}
                Next::Proto(_) => break,
            }
        }
        let ok = InboundOk {
            sas: [outer_sa, inner_sa],
            natt,
            tunnel,
        };
        if ok.natt && !ok.tunnel {
            hdr::fix_l4_checksum(buf.data_mut()).map_err(|r| count(sadb, None, r))?;
        }
        Ok(ok)
    }

    fn esp_in(
        &mut self,
        sadb: &mut Sadb,
        buf: &mut PacketBuf,
        h: &hdr::IpHdr,
        now: u64,
    ) -> Result<(SaId, Next), DropReason> {
        let p = buf.data();
        let esp = h.l4_off;
        let Some(hdr_bytes) = p.get(esp..esp + ESP_HDR) else {
            return Err(count(sadb, None, DropReason::EspBadLength));
        };
        let spi = u32::from_be_bytes([hdr_bytes[0], hdr_bytes[1], hdr_bytes[2], hdr_bytes[3]]);
        let seq_lo = u32::from_be_bytes([hdr_bytes[4], hdr_bytes[5], hdr_bytes[6], hdr_bytes[7]]);
        let Some(id) = sadb.lookup_ref(Proto::Esp, &h.dst, spi, Some(&h.src)) else {
            return Err(count(sadb, None, DropReason::EspNoSa));
        };
        let r = self.esp_in_sa(sadb, id, buf, h, spi, seq_lo, now);
        r.map(|t| (id, t)).map_err(|r| count(sadb, Some(id), r))
    }

    #[allow(clippy::too_many_arguments)]
    fn esp_in_sa(
        &mut self,
        sadb: &mut Sadb,
        id: SaId,
        buf: &mut PacketBuf,
        h: &hdr::IpHdr,
        spi: u32,
        seq_lo: u32,
        now: u64,
    ) -> Result<Next, DropReason> {
        let sa = sadb.get_mut(id).ok_or(DropReason::EspNoSa)?;
        if !sa.state().usable() {
            return Err(not_usable(sa.state()));
        }
        let (iv_len, aead_icv, block) = match sa.encr() {
            Some(e) => (e.iv_len(), e.icv_len(), e.block_len()),
            None => return Err(DropReason::EspCryptoFailed),
        };
        let auth_icv = sa.integ().map_or(0, |i| i.icv_len());
        let esp = h.l4_off;
        let body = esp + ESP_HDR + iv_len;
        let total = buf.len();
        let ct_len = total
            .checked_sub(body + aead_icv + auth_icv)
            .filter(|l| *l >= 2 && l % block.max(1) == 0)
            .ok_or(DropReason::EspBadLength)?;
        let seq = sa
            .replay
            .check(seq_lo)
            .map_err(|_| DropReason::EspEarlyReplay)?;
        if sa.hard_limit_reached(ct_len) {
            return Err(DropReason::EspBytesExpire);
        }
        let esn = sa.config().esn;
        let hi = ((seq >> 32) as u32).to_be_bytes();
        let p = buf.data_mut();
        if let Some(integ) = sa.integ() {
            let icv_at = total - auth_icv;
            let parts: [&[u8]; 2] = [&p[esp..icv_at], if esn { &hi } else { &[] }];
            if !integ.verify(&[], &parts, &p[icv_at..]) {
                return Err(DropReason::EspBadAuth);
            }
        }
        let mut iv = [0u8; 16];
        let iv = iv.get_mut(..iv_len).ok_or(DropReason::EspCryptoFailed)?;
        iv.copy_from_slice(&p[esp + ESP_HDR..body]);
        let (aad, aad_len) = esp_aad(spi, seq, esn);
        if let Some(e) = sa.encr() {
            let data = &mut p[body..body + ct_len + aead_icv];
            split::open_or_done(&mut self.opened, sa, e, seq, iv, &aad[..aad_len], data).map_err(
                |e| match e {
                    CryptoError::AuthFailed => DropReason::EspBadAuth,
                    CryptoError::BadLength => DropReason::EspBadLength,
                    _ => DropReason::EspCryptoFailed,
                },
            )?;
        }
        // Trailer, next header and (tunnel) inner checks come before the window moves and the
        // SA is charged: a packet dropped for any reason leaves both as they were.
        let pad = usize::from(p[body + ct_len - 2]);
        let nh = p[body + ct_len - 1];
        if pad + 2 > ct_len {
            return Err(DropReason::EspBadPadlen);
        }
        let payload_len = ct_len - 2 - pad;
        if self.padding_check
            && sa.config().padding_check
            && !p[body + payload_len..body + payload_len + pad]
                .iter()
                .enumerate()
                .all(|(i, b)| usize::from(*b) == i + 1)
        {
            return Err(DropReason::EspBadPadding);
        }
        if nh == IPPROTO_NONE {
            // RFC 4303 §2.6: an authentic dummy packet: it uses its sequence number and is
            // then discarded silently (counted).
            commit(sa, seq, DropReason::EspReplay)?;
            sa.account(payload_len, now);
            return Err(DropReason::EspDummy);
        }
        buf.trim_back(pad + 2 + aead_icv + auth_icv)
            .map_err(|_| DropReason::EspBadLength)?;
        let next = match sa.mode() {
            Mode::Tunnel => {
                if nh != IPPROTO_IPIP && nh != IPPROTO_IPV6 {
                    return Err(DropReason::EspBadNextHeader);
                }
                let outer_ecn = hdr::ecn(buf.data());
                buf.pull_front(body).map_err(|_| DropReason::EspBadLength)?;
                tunnel_decap(sa, buf, outer_ecn, nh)?;
                Next::Tunnel
            }
            Mode::Transport => {
                buf.close_gap(esp, ESP_HDR + iv_len)
                    .map_err(|_| DropReason::EspBadLength)?;
                hdr::set_proto_len(buf.data_mut(), h.nh_off, nh)?;
                Next::Proto(nh)
            }
        };
        commit(sa, seq, DropReason::EspReplay)?;
        sa.account(payload_len, now);
        Ok(next)
    }

    #[inline(never)]
    fn ah_in(
        &mut self,
        sadb: &mut Sadb,
        buf: &mut PacketBuf,
        h: &hdr::IpHdr,
        now: u64,
    ) -> Result<(SaId, Next), DropReason> {
        let p = buf.data();
        let ah = h.l4_off;
        let Some(a) = p.get(ah..ah + AH_FIXED) else {
            return Err(count(sadb, None, DropReason::AhBadLength));
        };
        let spi = u32::from_be_bytes([a[4], a[5], a[6], a[7]]);
        let Some(id) = sadb.lookup_ref(Proto::Ah, &h.dst, spi, Some(&h.src)) else {
            return Err(count(sadb, None, DropReason::AhNoSa));
        };
        let r = self.ah_in_sa(sadb, id, buf, h, now);
        r.map(|t| (id, t)).map_err(|r| count(sadb, Some(id), r))
    }

    #[inline(never)]
    fn ah_in_sa(
        &mut self,
        sadb: &mut Sadb,
        id: SaId,
        buf: &mut PacketBuf,
        h: &hdr::IpHdr,
        now: u64,
    ) -> Result<Next, DropReason> {
        let sa = sadb.get_mut(id).ok_or(DropReason::AhNoSa)?;
        if !sa.state().usable() {
            return Err(not_usable(sa.state()));
        }
        let (icv_len, iv_len) = match sa.integ() {
            Some(i) => (i.icv_len(), i.iv_len()),
            None => return Err(DropReason::AhBadAuth),
        };
        let p = buf.data();
        let ah = h.l4_off;
        let nh = p[ah];
        let len = (usize::from(p[ah + 1]) + 2) * 4;
        let seq_lo = u32::from_be_bytes([p[ah + 8], p[ah + 9], p[ah + 10], p[ah + 11]]);
        if len != ah_len(icv_len, iv_len, h.v6) || ah + len > p.len() {
            return Err(DropReason::AhBadLength);
        }
        let seq = sa
            .replay
            .check(seq_lo)
            .map_err(|_| DropReason::AhEarlyReplay)?;
        let payload_len = p.len() - ah - len;
        if sa.hard_limit_reached(payload_len) {
            return Err(DropReason::AhBytesExpire);
        }
        let mut icv = [0u8; 32];
        let icv = icv.get_mut(..icv_len).ok_or(DropReason::AhBadAuth)?;
        self.ah_icv(sa, p, ah, len, iv_len, seq, icv)?;
        let got = &p[ah + AH_FIXED + iv_len..ah + AH_FIXED + iv_len + icv_len];
        if !ct_eq(icv, got) {
            return Err(DropReason::AhBadAuth);
        }
        let next = match sa.mode() {
            Mode::Tunnel => {
                if nh != IPPROTO_IPIP && nh != IPPROTO_IPV6 {
                    return Err(DropReason::EspBadNextHeader);
                }
                let outer_ecn = hdr::ecn(buf.data());
                buf.pull_front(ah + len)
                    .map_err(|_| DropReason::AhBadLength)?;
                tunnel_decap(sa, buf, outer_ecn, nh)?;
                Next::Tunnel
            }
            Mode::Transport => {
                buf.close_gap(ah, len)
                    .map_err(|_| DropReason::AhBadLength)?;
                hdr::set_proto_len(buf.data_mut(), h.nh_off, nh)?;
                Next::Proto(nh)
            }
        };
        commit(sa, seq, DropReason::AhReplay)?;
        sa.account(payload_len, now);
        Ok(next)
    }
}

/// What follows a processed ESP/AH header.
enum Next {
    /// Tunnel mode: the buffer holds the inner packet.
    Tunnel,
    /// Transport mode: the protocol now following the IP header chain.
    Proto(u8),
}

/// Records `seq` in the SA's window; a packet that raced its duplicate is dropped as `replay`.
#[inline]
fn commit(sa: &mut Sa, seq: u64, reason: DropReason) -> Result<(), DropReason> {
    sa.replay.commit(seq).map_err(|_| reason)
}

fn not_usable(s: SaState) -> DropReason {
    match s {
        SaState::Dead => DropReason::SaExpired,
        _ => DropReason::SaNotMature,
    }
}

/// Length of an AH header with this ICV and IV: IPv4 aligns to 32 bits, IPv6 to 64 bits.
fn ah_len(icv: usize, iv: usize, v6: bool) -> usize {
    let raw = AH_FIXED + iv + icv;
    let align = if v6 { 8 } else { 4 };
    raw.div_ceil(align) * align
}

/// The ESP AAD for combined-mode algorithms: SPI || seq (RFC 4106 §5), or SPI || seq_hi ||
/// seq_lo with ESN.
fn esp_aad(spi: u32, seq: u64, esn: bool) -> ([u8; 12], usize) {
    let mut a = [0u8; 12];
    a[..4].copy_from_slice(&spi.to_be_bytes());
    if esn {
        a[4..8].copy_from_slice(&((seq >> 32) as u32).to_be_bytes());
        a[8..12].copy_from_slice(&(seq as u32).to_be_bytes());
        (a, 12)
    } else {
        a[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        (a, 8)
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Removes the UDP header of an ESP-in-UDP packet (RFC 3948). `Ok(false)` when the datagram is
/// not NAT-T ESP at all; keepalives and IKE are dropped with their own reasons.
#[inline(never)]
fn natt_strip(buf: &mut PacketBuf, h: &hdr::IpHdr) -> Result<bool, DropReason> {
    let p = buf.data();
    let u = h.l4_off;
    let Some(udp) = p.get(u..u + UDP_HDR) else {
        return Err(DropReason::MalformedPacket);
    };
    let dport = u16::from_be_bytes([udp[2], udp[3]]);
    let sport = u16::from_be_bytes([udp[0], udp[1]]);
    if dport != NATT_PORT && sport != NATT_PORT {
        return Ok(false);
    }
    let payload = &p[u + UDP_HDR..];
    if payload == [0xff] {
        return Err(DropReason::EspNatTKeepalive);
    }
    if payload.len() >= 4 && payload[..4] == [0, 0, 0, 0] {
        return Err(DropReason::EspNatTIke);
    }
    if payload.len() < ESP_HDR {
        return Err(DropReason::EspBadLength);
    }
    buf.close_gap(u, UDP_HDR)
        .map_err(|_| DropReason::MalformedPacket)?;
    hdr::set_proto_len(buf.data_mut(), h.nh_off, IPPROTO_ESP)?;
    Ok(true)
}

/// Finishes tunnel-mode decapsulation: validates the inner header, applies RFC 6040 ECN
/// decapsulation and checks the inner packet against the SA's inner selectors (RFC 4301 §5.2).
#[inline(never)]
fn tunnel_decap(sa: &Sa, buf: &mut PacketBuf, outer_ecn: u8, nh: u8) -> Result<(), DropReason> {
    let inner = buf.data();
    let v = inner.first().map(|b| b >> 4);
    if (nh == IPPROTO_IPIP && v != Some(4)) || (nh == IPPROTO_IPV6 && v != Some(6)) {
        return Err(DropReason::EspBadNextHeader);
    }
    let tl = hdr::total_len(inner)?;
    let excess = buf.len() - tl;
    buf.trim_back(excess)
        .map_err(|_| DropReason::MalformedPacket)?;
    let inner_ecn = hdr::ecn(buf.data());
    let new_ecn = match (outer_ecn, inner_ecn) {
        (3, 0) => return Err(DropReason::EcnDrop),
        (3, _) => 3,
        (1, 2) => 1,
        (_, e) => e,
    };
    if new_ecn != inner_ecn {
        let p = buf.data_mut();
        hdr::set_ecn(p, new_ecn);
        if nh == IPPROTO_IPIP {
            hdr::ipv4_fill_checksum(p)?;
        }
    }
    let sel = &sa.config().inner;
    let h = hdr::parse(buf.data())?;
    let addr_ok = |pfx: &Option<crate::sa::Prefix>, a: IpAddr| pfx.is_none_or(|p| p.contains(a));
    if !addr_ok(&sel.src, h.src) || !addr_ok(&sel.dst, h.dst) {
        return Err(DropReason::InnerMismatch);
    }
    if sel.proto != 0 && sel.proto != h.proto {
        return Err(DropReason::InnerMismatch);
    }
    if (sel.sport != 0 || sel.dport != 0) && !h.fragment {
        let p = buf.data();
        let ports = p.get(h.l4_off..h.l4_off + 4).map(|b| {
            (
                u16::from_be_bytes([b[0], b[1]]),
                u16::from_be_bytes([b[2], b[3]]),
            )
        });
        match ports {
            Some((s, d))
                if (sel.sport == 0 || sel.sport == s) && (sel.dport == 0 || sel.dport == d) => {}
            _ => return Err(DropReason::InnerMismatch),
        }
    }
    Ok(())
}
