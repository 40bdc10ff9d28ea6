//! The lean ESP path for the common case: one ESP SA with a combined-mode (AEAD) transform and
//! an 8-byte IV, no NAT-T, transport or tunnel mode, an IPv4 header without options or an IPv6
//! header without extension headers in front of ESP.
//!
//! Everything else, and every packet the lean path is unsure about, goes to the general path
//! in `engine.rs`. The rule that keeps the two in agreement: before the point of no return (the
//! sequence number taken outbound, the decryption inbound) the lean path changes nothing and
//! answers `None` when any check fails, so the general path sees the packet exactly as it
//! arrived and reports the drop with its usual reason. After that point both paths share the
//! same steps, errors and counters, in the same order.

use super::split::{open_or_done, SealSink};
use super::{commit, count, esp_aad, tunnel_decap, CryptoDone, Engine, InboundOk, ESP_HDR};
use crate::buf::PacketBuf;
use crate::drop::DropReason;
use crate::hdr::{self, IPPROTO_ESP, IPPROTO_IPIP, IPPROTO_IPV6, IPPROTO_NONE};
use crate::sa::{Mode, Proto, Sa};
use crate::sadb::{SaId, Sadb};
use ipsec_crypto::{CryptoError, EspEncr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The only IV size the lean path handles (every counter-mode AEAD in ESP).
const IV: usize = 8;
/// ESP header plus IV.
const ESP_IV: usize = ESP_HDR + IV;

/// Outcome of the lean inbound path.
pub(super) enum FastIn {
    /// Not the common case; nothing was changed.
    Slow,
    /// Finished (accepted or dropped and counted).
    Done(Result<InboundOk, DropReason>),
    /// Transport-mode ESP whose payload is ESP or AH again: the general path continues with
    /// this SA as the outer one.
    Inner(SaId),
}

/// The transform of `sa` when it qualifies for the lean path: ESP, usable, no NAT-T, a
/// counter-mode AEAD (no padding block beyond ESP's 4 bytes, RFC 4303 §2.4) with an 8-byte
/// IV, no separate integrity transform.
#[inline(always)]
fn lean_encr(sa: &Sa) -> Option<&EspEncr> {
    let c = sa.config();
    if c.proto != Proto::Esp || c.natt.is_some() || !sa.state().usable() {
        return None;
    }
    let e = sa.encr()?;
    (e.icv_len() != 0 && e.iv_len() == IV && e.block_len() <= 1 && sa.integ().is_none())
        .then_some(e)
}

/// Whether `sa` holds exactly <ESP, `dst`, `spi`, `src>`. The SADB refuses a second SA with
/// the same four values, and its lookup returns an SA whose source equals the packet's over
/// any other, so such an SA is the one [`Sadb::lookup_ref`] would find.
#[inline(always)]
fn exact_sa(sa: &Sa, spi: u32, dst: &IpAddr, src: &IpAddr) -> bool {
    let c = sa.config();
    c.spi == spi && c.proto == Proto::Esp && c.dst == *dst && c.src.as_ref() == Some(src)
}

/// IPv6 next-header values that put an extension header in front of ESP (transport mode
/// inserts ESP after them, so the general path must find the insertion point).
#[inline(always)]
fn v6_ext(nh: u8) -> bool {
    matches!(
        nh,
        hdr::IPPROTO_HOPOPTS | hdr::IPPROTO_ROUTING | hdr::IPPROTO_FRAGMENT | hdr::IPPROTO_DSTOPTS
    )
}

/// Length of the IP packet at the start of `p` when it is IPv4 without options or IPv6, and
/// its total-length field fits in `p`: `(version 6?, total length)`.
#[inline(always)]
fn plain_ip(p: &[u8]) -> Option<(bool, usize)> {
    match *p {
        [0x45, _, t0, t1, ..] if p.len() >= 20 => {
            let tl = usize::from(u16::from_be_bytes([t0, t1]));
            (tl >= 20 && tl <= p.len()).then_some((false, tl))
        }
        [b0, _, _, _, l0, l1, ..] if b0 >> 4 == 6 && p.len() >= 40 => {
            let tl = 40 + usize::from(u16::from_be_bytes([l0, l1]));
            (tl <= p.len()).then_some((true, tl))
        }
        _ => None,
    }
}

/// Sets protocol and length of the IPv4 header (no options) at the start of `p` to `proto` and
/// `p.len()`, updating the checksum incrementally (RFC 1624 eqn. 3).
#[inline(always)]
fn v4_set_proto_len(p: &mut [u8], proto: u8) -> Result<(), DropReason> {
    let tl = u16::try_from(p.len()).map_err(|_| DropReason::TooBig)?;
    let h: &mut [u8; 20] = p
        .get_mut(..20)
        .and_then(|h| h.try_into().ok())
        .ok_or(DropReason::MalformedPacket)?;
    let old_tl = u32::from(u16::from_be_bytes([h[2], h[3]]));
    let old_w = u32::from(u16::from_be_bytes([h[8], h[9]]));
    let new_w = u32::from(u16::from_be_bytes([h[8], proto]));
    let c = u32::from(u16::from_be_bytes([h[10], h[11]]));
    let mut sum = (!c & 0xffff) + (!old_tl & 0xffff) + u32::from(tl) + (!old_w & 0xffff) + new_w;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    let c = !(sum as u16);
    h[2..4].copy_from_slice(&tl.to_be_bytes());
    h[9] = proto;
    h[10..12].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Sets next header and payload length of the IPv6 header (no extension headers) at the start
/// of `p`.
#[inline(always)]
fn v6_set_proto_len(p: &mut [u8], proto: u8) -> Result<(), DropReason> {
    let pl = u16::try_from(p.len().saturating_sub(40)).map_err(|_| DropReason::TooBig)?;
    let h = p.get_mut(..40).ok_or(DropReason::MalformedPacket)?;
    h[4..6].copy_from_slice(&pl.to_be_bytes());
    h[6] = proto;
    Ok(())
}

impl Engine {
    /// Outbound ESP through one SA in the common case. `None`: not the common case, and
    /// nothing (packet, SA, engine) was changed.
    #[inline]
    pub(super) fn esp_out_fast(
        &mut self,
        sadb: &mut Sadb,
        id: SaId,
        buf: &mut PacketBuf,
        now: u64,
    ) -> Option<Result<(), DropReason>> {
        let sa = sadb.get_mut(id)?;
        let icv = lean_encr(sa)?.icv_len();
        let c = sa.config();
        let seq_limit = if c.esn { u64::MAX } else { u64::from(u32::MAX) };
        if sa.seq_out >= seq_limit {
            return None;
        }
        let (v6, tl) = plain_ip(buf.data())?;
        let tunnel = c.mode == Mode::Tunnel;
        // Transport: ESP goes after the IP header; tunnel: in front of the whole packet.
        let prefix = if tunnel {
            let outer_v6 = c.dst.is_ipv6();
            if c.src.is_none_or(|s| s.is_ipv6() != outer_v6) {
                return None;
            }
            if outer_v6 {
                40
            } else {
                20
            }
        } else {
            if v6 && v6_ext(buf.data()[6]) {
                return None;
            }
            if v6 {
                40
            } else {
                20
            }
        };
        let payload_len = if tunnel { tl } else { tl - prefix };
        if sa.hard_limit_reached(payload_len) {
            return None;
        }
        let pad = 0usize.wrapping_sub(payload_len + 2) & 3;
        let extra = buf.len() - tl;
        let front = ESP_IV + if tunnel { prefix } else { 0 };
        if buf.headroom() < front || buf.tailroom() + extra < pad + 2 + icv {
            return None;
        }
        // Point of no return: the sequence number is used.
        sa.seq_out += 1;
        let seq = sa.seq_out;
        let r = if tunnel {
            self.esp_out_tunnel(sa, buf, now, seq, extra, prefix, v6)
        } else {
            esp_out_transport(sa, buf, now, seq, extra, v6, &mut self.seal_sink)
        };
        Some(r.map_err(|r| count(sadb, Some(id), r)))
    }

    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn esp_out_tunnel(
        &mut self,
        sa: &mut Sa,
        buf: &mut PacketBuf,
        now: u64,
        seq: u64,
        extra: usize,
        prefix: usize,
        inner_v6: bool,
    ) -> Result<(), DropReason> {
        buf.trim_back(extra)
            .map_err(|_| DropReason::MalformedPacket)?;
        let (outer, _) = self.outer_for(sa, buf.data(), IPPROTO_ESP)?;
        let nh = if inner_v6 { IPPROTO_IPV6 } else { IPPROTO_IPIP };
        let payload_len = buf.len();
        buf.push_front(prefix + ESP_IV)
            .map_err(|_| DropReason::NoBufferSpace)?;
        esp_seal(sa, buf, seq, prefix, payload_len, nh, &mut self.seal_sink)?;
        hdr::write_outer(buf.data_mut(), &outer)?;
        sa.account(payload_len, now);
        Ok(())
    }

    /// Inbound ESP in the common case.
    #[inline]
    pub(super) fn esp_in_fast(&mut self, sadb: &mut Sadb, buf: &mut PacketBuf, now: u64) -> FastIn {
        let Some((v6, tl)) = plain_ip(buf.data()) else {
            return FastIn::Slow;
        };
        // The IP packet without any bytes after it (the general path trims them first).
        let Some(p) = buf.data().get(..tl) else {
            return FastIn::Slow;
        };
        let (esp, src, dst) = if v6 {
            let (Some(s), Some(d)) = (p.get(8..24), p.get(24..40)) else {
                return FastIn::Slow;
            };
            let (Ok(s), Ok(d)) = (<[u8; 16]>::try_from(s), <[u8; 16]>::try_from(d)) else {
                return FastIn::Slow;
            };
            if p[6] != IPPROTO_ESP {
                return FastIn::Slow;
            }
            (
                40,
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
            )
        } else {
            match *p {
                // Not a fragment (RFC 4303 §3.4.1): MF clear and offset zero.
                [_, _, _, _, _, _, f0, f1, _, IPPROTO_ESP, _, _, s0, s1, s2, s3, d0, d1, d2, d3, ..]
                    if (f0 & 0x3f) | f1 == 0 =>
                {
                    (
                        20,
                        IpAddr::V4(Ipv4Addr::new(s0, s1, s2, s3)),
                        IpAddr::V4(Ipv4Addr::new(d0, d1, d2, d3)),
                    )
                }
                _ => return FastIn::Slow,
            }
        };
        let Some(h) = p.get(esp..esp + ESP_HDR) else {
            return FastIn::Slow;
        };
        let spi = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
        let seq_lo = u32::from_be_bytes([h[4], h[5], h[6], h[7]]);
        let id = match self.in_hint {
            Some((s, id))
                if s == spi && sadb.get(id).is_some_and(|sa| exact_sa(sa, spi, &dst, &src)) =>
            {
                id
            }
            _ => {
                let Some(id) = sadb.lookup_ref(Proto::Esp, &dst, spi, Some(&src)) else {
                    return FastIn::Slow;
                };
                self.in_hint = Some((spi, id));
                id
            }
        };
        let Some(sa) = sadb.get_mut(id) else {
            return FastIn::Slow;
        };
        let Some(e) = lean_encr(sa) else {
            return FastIn::Slow;
        };
        let icv = e.icv_len();
        let body = esp + ESP_IV;
        // Counter modes: any length is a whole number of blocks.
        let ct_len = match tl.checked_sub(body + icv) {
            Some(l) if l >= 2 => l,
            _ => return FastIn::Slow,
        };
        let Ok(seq) = sa.replay.check(seq_lo) else {
            return FastIn::Slow;
        };
        if sa.hard_limit_reached(ct_len) {
            return FastIn::Slow;
        }
        // Point of no return: decryption overwrites the packet.
        let extra = buf.len() - tl;
        let check_pad = self.padding_check && sa.config().padding_check;
        let pre = &mut self.opened;
        let r = esp_in_lean(
            sa, buf, now, seq, extra, spi, esp, ct_len, v6, check_pad, pre,
        );
        match r {
            Ok(Some(tunnel)) => FastIn::Done(Ok(InboundOk {
                sas: [Some(id), None],
                natt: false,
                tunnel,
            })),
            Ok(None) => FastIn::Inner(id),
            Err(r) => FastIn::Done(Err(count(sadb, Some(id), r))),
        }
    }
}

/// Moves the `N`-byte IP header at `from` in `p` to `to`.
#[inline(always)]
fn move_hdr<const N: usize>(p: &mut [u8], from: usize, to: usize) -> Result<(), DropReason> {
    let h: [u8; N] = p
        .get(from..from + N)
        .and_then(|h| h.try_into().ok())
        .ok_or(DropReason::MalformedPacket)?;
    p.get_mut(to..to + N)
        .ok_or(DropReason::MalformedPacket)?
        .copy_from_slice(&h);
    Ok(())
}

/// Transport mode: ESP goes between the IP header (no options or extension headers) and its
/// payload.
#[inline(always)]
fn esp_out_transport(
    sa: &mut Sa,
    buf: &mut PacketBuf,
    now: u64,
    seq: u64,
    extra: usize,
    v6: bool,
    sink: &mut SealSink,
) -> Result<(), DropReason> {
    buf.trim_back(extra)
        .map_err(|_| DropReason::MalformedPacket)?;
    let hl = if v6 { 40 } else { 20 };
    let payload_len = buf.len() - hl;
    buf.push_front(ESP_IV)
        .map_err(|_| DropReason::NoBufferSpace)?;
    let p = buf.data_mut();
    let nh = if v6 {
        move_hdr::<40>(p, ESP_IV, 0)?;
        p[6]
    } else {
        move_hdr::<20>(p, ESP_IV, 0)?;
        p[9]
    };
    esp_seal(sa, buf, seq, hl, payload_len, nh, sink)?;
    let p = buf.data_mut();
    if v6 {
        v6_set_proto_len(p, IPPROTO_ESP)?;
    } else {
        v4_set_proto_len(p, IPPROTO_ESP)?;
    }
    sa.account(payload_len, now);
    Ok(())
}

/// Writes ESP header, IV and trailer around the `payload_len` bytes that follow `esp + 16` in
/// `buf` (growing it at the back), and seals.
#[inline(always)]
fn esp_seal(
    sa: &Sa,
    buf: &mut PacketBuf,
    seq: u64,
    esp: usize,
    payload_len: usize,
    nh: u8,
    sink: &mut SealSink,
) -> Result<(), DropReason> {
    let e = sa.encr().ok_or(DropReason::EspCryptoFailed)?;
    let icv = e.icv_len();
    let pad = 0usize.wrapping_sub(payload_len + 2) & 3;
    buf.push_back(pad + 2 + icv)
        .map_err(|_| DropReason::NoBufferSpace)?;
    let spi = sa.spi();
    let mut h = [0u8; ESP_IV];
    h[..4].copy_from_slice(&spi.to_be_bytes());
    h[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
    // `EspEncr::make_iv` of every counter mode: the 8-byte big-endian sequence number (the
    // differential tests hold the two paths to the same bytes for each lean algorithm).
    h[ESP_HDR..].copy_from_slice(&seq.to_be_bytes());
    let p = buf.data_mut();
    let pt = esp + ESP_IV;
    p.get_mut(esp..pt)
        .ok_or(DropReason::NoBufferSpace)?
        .copy_from_slice(&h);
    // Trailer: padding 1, 2, 3 (RFC 4303 §2.4), pad length, next header. The four pattern bytes
    // always fit: the ICV follows.
    let t = pt + payload_len;
    p.get_mut(t..t + 4)
        .ok_or(DropReason::NoBufferSpace)?
        .copy_from_slice(&[1, 2, 3, 0]);
    let ct_end = t + pad + 2;
    p[ct_end - 2] = pad as u8;
    p[ct_end - 1] = nh;
    let (aad, aad_len) = esp_aad(spi, seq, sa.config().esn);
    let data = p
        .get_mut(pt..ct_end + icv)
        .ok_or(DropReason::NoBufferSpace)?;
    // Nothing after the seal reads the ciphertext: it may wait (outbound_split).
    sink.seal(sa, e, seq, &h[ESP_HDR..], &aad[..aad_len], data, pt)
        .map_err(|_| DropReason::EspCryptoFailed)
}

/// Decrypts and decapsulates; `Some(tunnel)` when done, `None` for a transport payload that is
/// ESP or AH again.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn esp_in_lean(
    sa: &mut Sa,
    buf: &mut PacketBuf,
    now: u64,
    seq: u64,
    extra: usize,
    spi: u32,
    esp: usize,
    ct_len: usize,
    v6: bool,
    check_pad: bool,
    pre: &mut Option<CryptoDone>,
) -> Result<Option<bool>, DropReason> {
    let e = sa.encr().ok_or(DropReason::EspCryptoFailed)?;
    let icv = e.icv_len();
    buf.trim_back(extra)
        .map_err(|_| DropReason::MalformedPacket)?;
    let esn = sa.config().esn;
    let body = esp + ESP_IV;
    let p = buf.data_mut();
    let mut iv = [0u8; IV];
    iv.copy_from_slice(&p[esp + ESP_HDR..body]);
    let (aad, aad_len) = esp_aad(spi, seq, esn);
    let data = &mut p[body..body + ct_len + icv];
    open_or_done(pre, sa, e, seq, &iv, &aad[..aad_len], data).map_err(|e| match e {
        CryptoError::AuthFailed => DropReason::EspBadAuth,
        CryptoError::BadLength => DropReason::EspBadLength,
        _ => DropReason::EspCryptoFailed,
    })?;
    let pad = usize::from(p[body + ct_len - 2]);
    let nh = p[body + ct_len - 1];
    if pad + 2 > ct_len {
        return Err(DropReason::EspBadPadlen);
    }
    let payload_len = ct_len - 2 - pad;
    if check_pad
        && !p[body + payload_len..body + payload_len + pad]
            .iter()
            .enumerate()
            .all(|(i, b)| usize::from(*b) == i + 1)
    {
        return Err(DropReason::EspBadPadding);
    }
    if nh == IPPROTO_NONE {
        // RFC 4303 §2.6: an authentic dummy packet uses its sequence number, then is dropped.
        commit(sa, seq, DropReason::EspReplay)?;
        sa.account(payload_len, now);
        return Err(DropReason::EspDummy);
    }
    buf.trim_back(pad + 2 + icv)
        .map_err(|_| DropReason::EspBadLength)?;
    let done = match sa.mode() {
        Mode::Tunnel => {
            if nh != IPPROTO_IPIP && nh != IPPROTO_IPV6 {
                return Err(DropReason::EspBadNextHeader);
            }
            let outer_ecn = hdr::ecn(buf.data());
            buf.pull_front(body).map_err(|_| DropReason::EspBadLength)?;
            tunnel_decap(sa, buf, outer_ecn, nh)?;
            Some(true)
        }
        Mode::Transport => {
            let p = buf.data_mut();
            if v6 {
                move_hdr::<40>(p, 0, ESP_IV)?;
            } else {
                move_hdr::<20>(p, 0, ESP_IV)?;
            }
            buf.pull_front(ESP_IV)
                .map_err(|_| DropReason::EspBadLength)?;
            let p = buf.data_mut();
            if v6 {
                v6_set_proto_len(p, nh)?;
            } else {
                v4_set_proto_len(p, nh)?;
            }
            // At most MAX_BUNDLE (2) SAs per packet: ESP or AH inside goes on.
            (nh != IPPROTO_ESP && nh != hdr::IPPROTO_AH).then_some(false)
        }
    };
    commit(sa, seq, DropReason::EspReplay)?;
    sa.account(payload_len, now);
    Ok(done)
}
