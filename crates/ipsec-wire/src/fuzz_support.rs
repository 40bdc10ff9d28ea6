//! Bodies of the cargo-fuzz targets in `fuzz/fuzz_targets/`, kept here so the regression
//! replay test runs exactly the same code.
//!
//! Each function parses `data` every way it can, walks every header and option, prints
//! everything through `Display` (into a sink), and checks round-trip invariants. Parse
//! errors are normal; an `Err(&str)` means an invariant of this crate was broken (a bug),
//! and the fuzz target turns it into a crash. Panics are bugs too.

use core::fmt::{self, Write};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ah::{self, AhPacket, AhRepr};
use crate::esp::{self, EspPacket, EspRepr, EspTrailer};
use crate::icmpv4::{self, Icmpv4Packet, Icmpv4Repr};
use crate::icmpv6::{self, Icmpv6Packet, Icmpv6Repr};
use crate::ip::{protocol, IpPacket, IpRepr, IpVersion};
use crate::ipv4::{Ipv4Packet, Ipv4Repr};
use crate::ipv6::{
    self, ExtChain, ExtHeader, FragmentHeader, FragmentRepr, Ipv6Packet, Ipv6Repr, RoutingHeader,
};
use crate::udp::{UdpPacket, UdpRepr};
use crate::udpencap::{self, UdpEncapPayload};
use crate::{checksum, Error};

/// Outcome of a fuzz body: `Err` names the broken invariant.
pub type Outcome = core::result::Result<(), &'static str>;

const SCRATCH: usize = 8192;

struct Sink(usize);

impl Write for Sink {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = self.0.wrapping_add(s.len());
        Ok(())
    }
}

fn show<D: fmt::Display + ?Sized>(d: &D) {
    let mut s = Sink(0);
    let _ = write!(s, "{d}");
}

fn check(cond: bool, what: &'static str) -> Outcome {
    if cond {
        Ok(())
    } else {
        Err(what)
    }
}

/// A scratch copy of `data` (None if too large).
fn scratch(data: &[u8]) -> Option<([u8; SCRATCH], usize)> {
    let mut buf = [0u8; SCRATCH];
    buf.get_mut(..data.len())?.copy_from_slice(data);
    Some((buf, data.len()))
}

const SRC4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const DST4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const SRC6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const DST6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);

/// Target `wire_ip`: IPv4/IPv6 headers, options, extension header chains, and the upper
/// layers reachable from them.
pub fn wire_ip(data: &[u8]) -> Outcome {
    show(&Ipv4Packet::new_unchecked(data));
    show(&Ipv6Packet::new_unchecked(data));
    let _ = crate::ip::announced_len(data);
    let Ok(packet) = IpPacket::new_checked(data) else {
        return Ok(());
    };
    show(&packet);
    let _ = packet.src_addr();
    let _ = packet.dst_addr();
    let range = packet.payload_range();
    check(range.start <= range.end, "payload range reversed")?;
    check(range.end <= data.len(), "payload range past buffer")?;
    check(packet.payload().len() == range.len(), "payload len")?;
    let _ = packet.is_fragment();
    if let Ok(r) = IpRepr::parse(&packet) {
        check(r.src_addr() == packet.src_addr(), "IpRepr src")?;
    }
    match packet {
        IpPacket::V4(p) => ipv4_body(&p, data)?,
        IpPacket::V6(p) => ipv6_body(&p, data)?,
    }
    if let Ok(u) = packet.upper_layer() {
        check(u.offset <= packet.total_len(), "upper layer past end")?;
        check(u.nh_field < u.offset, "nh field after upper layer")?;
        check(
            data.get(u.nh_field).copied() == Some(u.protocol) || u.non_first_fragment,
            "nh field does not hold protocol",
        )?;
        let upper = data.get(u.offset..packet.total_len()).unwrap_or(&[]);
        if !u.non_first_fragment {
            let (s, d) = match packet.version() {
                IpVersion::V4 => (IpAddr::V4(SRC4), IpAddr::V4(DST4)),
                IpVersion::V6 => (IpAddr::V6(SRC6), IpAddr::V6(DST6)),
            };
            upper_body(u.protocol, upper, &s, &d, packet.version())?;
        }
    }
    Ok(())
}

fn ipv4_body(p: &Ipv4Packet<&[u8]>, data: &[u8]) -> Outcome {
    let mut n = 0;
    for o in p.option_iter() {
        n += 1;
        check(n <= 40, "too many ipv4 options")?;
        if let Ok(o) = o {
            let _ = o.is_mutable();
            check(o.offset + o.len <= p.options().len(), "option past area")?;
        }
    }
    let _ = p.final_dst_addr();
    let _ = p.verify_checksum();
    if let Ok(r) = Ipv4Repr::parse_ignoring_checksum(p) {
        show(&r);
        let (mut buf, len) = match scratch(data) {
            Some(x) => x,
            None => return Ok(()),
        };
        let mut out = Ipv4Packet::new_unchecked(&mut buf[..len]);
        match r.emit(&mut out) {
            Ok(()) => {
                check(out.verify_checksum(), "emitted ipv4 checksum")?;
                let back = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(&buf[..len]));
                check(back == Ok(r), "ipv4 round trip")?;
            }
            Err(_) => return Err("ipv4 emit of parsed repr failed"),
        }
        let mut z = Ipv4Packet::new_unchecked(&mut buf[..len]);
        let _ = z.zero_mutable_fields_for_ah();
    }
    Ok(())
}

fn ipv6_body(p: &Ipv6Packet<&[u8]>, data: &[u8]) -> Outcome {
    let bytes = p.packet_bytes();
    let mut last_end = ipv6::HEADER_LEN;
    let mut ends = [0usize; ipv6::MAX_EXT_HEADERS + 1];
    let mut n = 0;
    for h in p.ext_headers() {
        n += 1;
        check(n <= ipv6::MAX_EXT_HEADERS + 1, "walker not bounded")?;
        let Ok(h) = h else { continue };
        check(h.offset == last_end, "ext header not contiguous")?;
        check(h.len >= 8, "ext header shorter than 8")?;
        last_end = h.end();
        if let Some(slot) = ends.get_mut(n) {
            *slot = h.end();
        }
        let hdr = bytes
            .get(h.offset..h.end())
            .ok_or("ext header past packet")?;
        match h.kind {
            protocol::HOPOPT | protocol::DSTOPTS => {
                let e = ExtHeader::new_checked(hdr).map_err(|_| "ext header recheck")?;
                show(&e);
                for o in e.options() {
                    let Ok(o) = o else { continue };
                    check(
                        o.offset + o.total_len() <= hdr.len(),
                        "ipv6 option past header",
                    )?;
                    let _ = (o.may_change(), o.action());
                }
            }
            protocol::ROUTING => {
                let r = RoutingHeader::new_unchecked(hdr);
                show(&r);
                let _ = r.final_destination();
                if r.check_len().is_ok() {
                    for i in 0..r.num_addresses() {
                        let _ = r.address(i);
                    }
                }
            }
            protocol::FRAGMENT => {
                let f = FragmentHeader::new_checked(hdr).map_err(|_| "frag recheck")?;
                show(&f);
                let r = FragmentRepr::parse(&f).map_err(|_| "frag parse")?;
                let mut b = [0u8; 8];
                r.emit(&mut FragmentHeader::new_unchecked(&mut b[..]))
                    .map_err(|_| "frag emit")?;
                let back = FragmentRepr::parse(&FragmentHeader::new_unchecked(&b[..]));
                check(back == Ok(r), "frag round trip")?;
            }
            protocol::AH => {
                let a = AhPacket::new_unchecked(hdr);
                show(&a);
            }
            _ => {}
        }
    }
    if let Ok(c) = ExtChain::parse(data) {
        check(c.headers().len() <= n, "chain longer than walk")?;
    }
    if let Ok((ins, nh)) = ipv6::unfragmentable_len(data) {
        check(nh < ins, "unfragmentable nh field after insert point")?;
        check(ins <= p.total_len(), "insert point past end")?;
        check(
            ins == ipv6::HEADER_LEN || ends.contains(&ins),
            "insert point not at a header boundary",
        )?;
    }
    if let Ok(r) = Ipv6Repr::parse(p) {
        show(&r);
        let mut b = [0u8; 40];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut b[..]))
            .map_err(|_| "ipv6 emit")?;
        let mut full = [0u8; 40];
        full.copy_from_slice(&b);
        let back = Ipv6Packet::new_unchecked(&full[..]);
        check(back.src_addr() == r.src_addr, "ipv6 round trip src")?;
        check(back.flow_label() == r.flow_label, "ipv6 round trip flow")?;
    }
    if let Some((mut buf, len)) = scratch(data) {
        let mut m = Ipv6Packet::new_unchecked(&mut buf[..len]);
        if m.zero_mutable_fields_for_ah().is_ok() {
            check(m.hop_limit() == 0, "hop limit not zeroed")?;
        }
    }
    Ok(())
}

fn upper_body(proto: u8, upper: &[u8], s: &IpAddr, d: &IpAddr, v: IpVersion) -> Outcome {
    match proto {
        protocol::UDP => udp_body(upper, s, d),
        protocol::ICMP => icmpv4_body(upper),
        protocol::ICMPV6 => icmpv6_body(upper),
        protocol::ESP => esp_body(upper),
        protocol::AH => ah_body(upper, v),
        _ => Ok(()),
    }
}

/// Target `wire_esp_ah`: ESP header, ESP trailer and padding, AH header and lengths.
pub fn wire_esp_ah(data: &[u8]) -> Outcome {
    esp_body(data)?;
    trailer_body(data)?;
    ah_body(data, IpVersion::V4)?;
    ah_body(data, IpVersion::V6)?;
    if let [a, b, ..] = *data {
        for v in [IpVersion::V4, IpVersion::V6] {
            if let Ok(l) = ah::header_len_for(usize::from(a), usize::from(b), v) {
                let align = if v == IpVersion::V4 { 4 } else { 8 };
                check(l % align == 0, "ah len alignment")?;
                check(
                    l >= 12 + usize::from(a) + usize::from(b),
                    "ah len too short",
                )?;
                check(l <= ah::MAX_HEADER_LEN, "ah len too long")?;
            }
        }
        if let Ok(p) = esp::pad_len(usize::from(a) * 7 + usize::from(b), usize::from(b % 33)) {
            let total = usize::from(a) * 7 + usize::from(b) + usize::from(p) + 2;
            check(total % 4 == 0, "esp pad alignment")?;
        }
    }
    Ok(())
}

fn esp_body(data: &[u8]) -> Outcome {
    let p = EspPacket::new_unchecked(data);
    show(&p);
    if let Ok(r) = EspRepr::parse(&p) {
        check(r.spi != 0, "esp spi 0 accepted")?;
        let mut b = [0u8; 8];
        r.emit(&mut EspPacket::new_unchecked(&mut b[..]))
            .map_err(|_| "esp emit")?;
        check(
            EspRepr::parse(&EspPacket::new_unchecked(&b[..])) == Ok(r),
            "esp round trip",
        )?;
        check(
            p.payload().len() + esp::HEADER_LEN == data.len(),
            "esp payload len",
        )?;
    }
    Ok(())
}

fn trailer_body(data: &[u8]) -> Outcome {
    match EspTrailer::parse(data) {
        Ok(t) => {
            show(&t);
            check(t.payload_len + t.len() == data.len(), "trailer lengths")?;
            check(
                t.padding(data).len() == usize::from(t.pad_len),
                "padding slice",
            )?;
            check(t.payload(data).len() == t.payload_len, "payload slice")?;
            let _ = esp::padding_is_valid(t.padding(data));
        }
        Err(e) => check(
            matches!(e, Error::Truncated | Error::Malformed),
            "trailer error kind",
        )?,
    }
    if let Some((mut buf, len)) = scratch(data) {
        if (2..=257).contains(&len) {
            let nh = data.first().copied().unwrap_or(0);
            esp::write_trailer(&mut buf[..len], nh).map_err(|_| "write_trailer")?;
            let t = EspTrailer::parse(&buf[..len]).map_err(|_| "trailer reparse")?;
            check(
                t.payload_len == 0 && t.next_header == nh,
                "trailer round trip",
            )?;
            check(
                esp::padding_is_valid(t.padding(&buf[..len])),
                "own padding invalid",
            )?;
        }
    }
    Ok(())
}

fn ah_body(data: &[u8], v: IpVersion) -> Outcome {
    let p = AhPacket::new_unchecked(data);
    show(&p);
    if p.check_len().is_ok() {
        check(
            p.icv().len() + ah::HEADER_LEN == p.header_len(),
            "ah icv len",
        )?;
        check(
            p.header().len() + p.payload().len() == data.len(),
            "ah split",
        )?;
    }
    if let Ok(r) = AhRepr::parse(&p, v) {
        let mut buf = [0u8; ah::MAX_HEADER_LEN];
        r.emit(&mut AhPacket::new_unchecked(&mut buf[..]))
            .map_err(|_| "ah emit")?;
        let back = AhRepr::parse(&AhPacket::new_unchecked(&buf[..]), v);
        check(back == Ok(r), "ah round trip")?;
    }
    Ok(())
}

/// Target `wire_udpencap_icmp`: UDP-encapsulation classification, UDP, ICMP and ICMPv6.
pub fn wire_udpencap_icmp(data: &[u8]) -> Outcome {
    match udpencap::classify(data) {
        Ok(c) => {
            show(&c);
            match c {
                UdpEncapPayload::Keepalive => check(data == [0xff], "keepalive")?,
                UdpEncapPayload::Ike(rest) => check(
                    data.starts_with(&udpencap::NON_ESP_MARKER) && rest.len() + 4 == data.len(),
                    "ike marker",
                )?,
                UdpEncapPayload::Esp(e) => {
                    check(
                        e.len() >= 8 && e.get(..4) != Some(&[0; 4][..]),
                        "esp classify",
                    )?;
                    esp_body(e)?;
                }
            }
        }
        Err(e) => check(e == Error::Truncated, "classify error kind")?,
    }
    let _ = udpencap::classify_datagram(data);
    let s4 = IpAddr::V4(SRC4);
    let d4 = IpAddr::V4(DST4);
    udp_body(data, &s4, &d4)?;
    icmpv4_body(data)?;
    icmpv6_body(data)?;
    for name in icmpv4::TYPE_NAMES.iter().map(|(n, _)| *n) {
        let t = icmpv4::type_by_name(name).ok_or("icmp name table")?;
        check(icmpv4::type_name(t) == Some(name), "icmp name reverse")?;
    }
    if let [t, c, ..] = *data {
        let _ = (
            icmpv4::code_name(t, c),
            icmpv6::code_name(t, c),
            icmpv6::type_name(t),
        );
    }
    Ok(())
}

fn udp_body(data: &[u8], s: &IpAddr, d: &IpAddr) -> Outcome {
    let p = UdpPacket::new_unchecked(data);
    show(&p);
    let _ = p.verify_checksum(s, d);
    if let Ok(r) = UdpRepr::parse_ignoring_checksum(&p) {
        check(r.payload_len == p.payload().len(), "udp payload len")?;
        if let Some((mut buf, len)) = scratch(data) {
            let mut out = UdpPacket::new_unchecked(&mut buf[..len]);
            r.emit(&mut out).map_err(|_| "udp emit")?;
            out.fill_checksum(s, d);
            check(out.verify_checksum(s, d), "udp own checksum")?;
            let back = UdpRepr::parse(&UdpPacket::new_unchecked(&buf[..len]), s, d);
            check(back == Ok(r), "udp round trip")?;
        }
        if let Ok(c) = udpencap::classify(p.payload()) {
            show(&c);
        }
    }
    Ok(())
}

fn icmpv4_body(data: &[u8]) -> Outcome {
    let p = Icmpv4Packet::new_unchecked(data);
    show(&p);
    let _ = p.verify_checksum();
    let _ = icmpv4::quote(p.invoking_packet());
    if let Ok(r) = Icmpv4Repr::parse_ignoring_checksum(&p) {
        let Some((mut buf, _)) = scratch(data) else {
            return Ok(());
        };
        let n = r.buffer_len();
        check(n == data.len(), "icmp buffer_len")?;
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..n]))
            .map_err(|_| "icmp emit")?;
        let back = Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(&buf[..n]));
        check(back == Ok(r), "icmp round trip")?;
    }
    Ok(())
}

fn icmpv6_body(data: &[u8]) -> Outcome {
    let p = Icmpv6Packet::new_unchecked(data);
    show(&p);
    let _ = p.verify_checksum(&SRC6, &DST6);
    let _ = icmpv6::quote(p.invoking_packet());
    if let Ok(r) = Icmpv6Repr::parse_ignoring_checksum(&p) {
        let Some((mut buf, _)) = scratch(data) else {
            return Ok(());
        };
        let n = r.buffer_len();
        check(n == data.len(), "icmp6 buffer_len")?;
        r.emit(
            &mut Icmpv6Packet::new_unchecked(&mut buf[..n]),
            &SRC6,
            &DST6,
        )
        .map_err(|_| "icmp6 emit")?;
        let back = Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&buf[..n]), &SRC6, &DST6);
        check(back == Ok(r), "icmp6 round trip")?;
    }
    let _ = checksum::data(data);
    Ok(())
}
