//! Drop events and the records the logger writes for them.
//!
//! A [`DropEvent`] is what the data path hands over: fixed size, no allocation, the first
//! [`CAPTURE`] bytes of the packet. The logger thread turns it into one line per record
//! ([`format`]): text (`key=value` fields) or a JSON object, holding what the log level asks
//! for:
//!
//! | level | fields |
//! |---|---|
//! | minimal | `time`, `dir`, `reason` |
//! | message | also `rule`, `spi`, `src`, `dst` |
//! | packet | also `packet`: the IP header, ports or ICMP type/code, ESP/AH SPI and sequence number |
//! | stack | also `stack`: the processing stages up to the drop (at most `backtrace_depth`, nearest the drop kept) |
//!
//! The decoder reads only what the capture holds and never panics: a capture is usually
//! truncated, so the IP header is read field by field with bounds checks (ipsec-wire's
//! checked IP views need the whole datagram), and the ESP/AH headers through ipsec-wire's
//! checked views.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_wire::ah::AhPacket;
use ipsec_wire::esp::EspPacket;

use super::props::{Format, Level};

/// Bytes of a dropped packet kept for the decode.
pub const CAPTURE: usize = 128;

/// Direction of a dropped packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Arriving.
    In,
    /// Leaving.
    Out,
}

impl Dir {
    /// `in` or `out`.
    pub const fn name(self) -> &'static str {
        match self {
            Dir::In => "in",
            Dir::Out => "out",
        }
    }
}

/// The processing stages each drop site went through (static paths, innermost last).
pub mod stage {
    /// Outbound: the packet's selectors could not be read.
    pub const OUT_KEY: &[&str] = &["tun_read", "packet_key"];
    /// Outbound: the SPD dropped it.
    pub const OUT_SPD: &[&str] = &["tun_read", "packet_key", "spd_outbound"];
    /// Outbound: the SA bundle could not be chosen or queued.
    pub const OUT_SA: &[&str] = &["tun_read", "packet_key", "spd_outbound", "sa_select"];
    /// Outbound: the ESP/AH engine refused it.
    pub const OUT_ENGINE: &[&str] = &[
        "tun_read",
        "packet_key",
        "spd_outbound",
        "sa_select",
        "engine_outbound",
    ];
    /// Inbound (raw ESP/AH socket): the engine refused it.
    pub const IN_ENGINE: &[&str] = &["wire_read", "engine_inbound"];
    /// Inbound (NAT-T socket, ESP in UDP): the engine refused it.
    pub const IN_NATT: &[&str] = &["natt_read", "udp_decap", "engine_inbound"];
    /// Inbound: the decapsulated packet's selectors could not be read.
    pub const IN_KEY: &[&str] = &["wire_read", "engine_inbound", "packet_key"];
    /// Inbound: the SPD refused the decapsulated packet.
    pub const IN_SPD: &[&str] = &["wire_read", "engine_inbound", "packet_key", "spd_inbound"];
    /// Inbound cleartext dropped by the nftables table (reported through NFLOG).
    pub const NFT_IN: &[&str] = &["netfilter_input", "table_inet_ironswan", "spd_rule_drop"];
    /// Outbound cleartext dropped by the nftables table.
    pub const NFT_OUT: &[&str] = &["netfilter_output", "table_inet_ironswan", "spd_rule_drop"];
    /// Forwarded cleartext dropped by the nftables table.
    pub const NFT_FWD: &[&str] = &["netfilter_forward", "table_inet_ironswan", "spd_rule_drop"];
}

/// One dropped packet, as the data path hands it to the logger.
#[derive(Clone, Copy, Debug)]
pub struct DropEvent {
    /// Wall-clock time of the drop, nanoseconds since the Unix epoch.
    pub unix_ns: u64,
    /// Direction.
    pub dir: Dir,
    /// The Solaris-style counter name (`esp_no_sa`, `spd_got_clear`, ...).
    pub reason: &'static str,
    /// The policy rule (`ipsecconf -l` index) that decided, if one did.
    pub rule: Option<u32>,
    /// The SA's SPI, if known (otherwise the decode's ESP/AH SPI is shown).
    pub spi: Option<u32>,
    /// Processing stages up to the drop.
    pub stack: &'static [&'static str],
    /// The packet's length.
    pub wire_len: u32,
    /// How many bytes of `bytes` hold the packet.
    pub cap_len: u8,
    /// The first bytes of the packet.
    pub bytes: [u8; CAPTURE],
}

impl DropEvent {
    /// An event for `pkt` (its first [`CAPTURE`] bytes are copied), stamped now.
    pub fn new(
        dir: Dir,
        reason: &'static str,
        rule: Option<u32>,
        spi: Option<u32>,
        stack: &'static [&'static str],
        pkt: &[u8],
    ) -> Self {
        let mut bytes = [0u8; CAPTURE];
        let n = pkt.len().min(CAPTURE);
        if let (Some(d), Some(s)) = (bytes.get_mut(..n), pkt.get(..n)) {
            d.copy_from_slice(s);
        }
        Self {
            unix_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            dir,
            reason,
            rule,
            spi,
            stack,
            wire_len: u32::try_from(pkt.len()).unwrap_or(u32::MAX),
            cap_len: u8::try_from(n).unwrap_or(u8::MAX),
            bytes,
        }
    }

    /// The captured bytes.
    pub fn captured(&self) -> &[u8] {
        self.bytes
            .get(..usize::from(self.cap_len))
            .unwrap_or_default()
    }
}

/// What the decoder found after the IP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum L4 {
    Ports { sport: u16, dport: u16 },
    Icmp { ty: u8, code: u8 },
    Esp { spi: u32, seq: u32 },
    Ah { spi: u32, seq: u32, next: u8 },
    Other,
    Truncated,
}

/// A partial decode of a captured packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Decoded {
    version: u8,
    src: IpAddr,
    dst: IpAddr,
    /// IPv4 protocol or the IPv6 upper-layer header after the extension headers.
    proto: u8,
    /// IPv4 TTL / IPv6 hop limit.
    ttl: u8,
    /// IPv4 TOS / IPv6 traffic class.
    tos: u8,
    /// Length the IP header announces.
    len: usize,
    /// IPv4 identification.
    ident: Option<u16>,
    /// Fragment offset (8-byte units) and more-fragments flag.
    frag: Option<(u16, bool)>,
    /// ESP in UDP (RFC 3948): the UDP ports outside the ESP header.
    udp_encap: Option<(u16, u16)>,
    l4: L4,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Decodes as much of `p` as it holds; `None` when not even the IP header is there.
fn decode(p: &[u8]) -> Option<Decoded> {
    let (mut d, l4_at) = match p.first()? >> 4 {
        4 => {
            let hl = usize::from(p.first()? & 0x0f) * 4;
            let s: [u8; 4] = p.get(12..16)?.try_into().ok()?;
            let t: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            let ff = be16(p, 6)?;
            let (off, mf) = (ff & 0x1fff, ff & 0x2000 != 0);
            (
                Decoded {
                    version: 4,
                    src: IpAddr::V4(Ipv4Addr::from(s)),
                    dst: IpAddr::V4(Ipv4Addr::from(t)),
                    proto: *p.get(9)?,
                    ttl: *p.get(8)?,
                    tos: *p.get(1)?,
                    len: usize::from(be16(p, 2)?),
                    ident: be16(p, 4),
                    frag: (off != 0 || mf).then_some((off, mf)),
                    udp_encap: None,
                    l4: L4::Truncated,
                },
                (hl >= 20 && off == 0).then_some(hl),
            )
        }
        6 => {
            let s: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let t: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            let mut d = Decoded {
                version: 6,
                src: IpAddr::V6(Ipv6Addr::from(s)),
                dst: IpAddr::V6(Ipv6Addr::from(t)),
                proto: *p.get(6)?,
                ttl: *p.get(7)?,
                tos: (p.first()? << 4) | (p.get(1)? >> 4),
                len: 40 + usize::from(be16(p, 4)?),
                ident: None,
                frag: None,
                udp_encap: None,
                l4: L4::Truncated,
            };
            // Walk hop-by-hop, routing, destination options and fragment headers.
            let mut at = 40;
            let mut ok = true;
            for _ in 0..8 {
                match d.proto {
                    0 | 43 | 60 => {
                        let (Some(nh), Some(l)) = (p.get(at), p.get(at + 1)) else {
                            ok = false;
                            break;
                        };
                        d.proto = *nh;
                        at += (usize::from(*l) + 1) * 8;
                    }
                    44 => {
                        let (Some(nh), Some(ff)) = (p.get(at), be16(p, at + 2)) else {
                            ok = false;
                            break;
                        };
                        d.proto = *nh;
                        let (off, mf) = (ff >> 3, ff & 1 != 0);
                        d.frag = Some((off, mf));
                        ok = off == 0;
                        at += 8;
                        if !ok {
                            break;
                        }
                    }
                    _ => break,
                }
            }
            (d, ok.then_some(at))
        }
        _ => return None,
    };
    let Some(at) = l4_at else {
        d.l4 = if d.frag.is_some_and(|(off, _)| off != 0) {
            L4::Other
        } else {
            L4::Truncated
        };
        return Some(d);
    };
    let rest = p.get(at..).unwrap_or_default();
    d.l4 = match d.proto {
        50 => esp(rest),
        51 => match AhPacket::new_checked(rest) {
            Ok(a) => L4::Ah {
                spi: a.spi(),
                seq: a.seq_no(),
                next: a.next_header(),
            },
            Err(_) => L4::Truncated,
        },
        6 | 17 | 132 => match (be16(rest, 0), be16(rest, 2)) {
            (Some(sport), Some(dport)) => {
                // RFC 3948: ESP in UDP on 4500 unless the non-ESP marker (zero SPI) follows.
                let inner = rest.get(8..).unwrap_or_default();
                if d.proto == 17
                    && (sport == 4500 || dport == 4500)
                    && inner.get(..4).is_some_and(|m| m != [0, 0, 0, 0])
                {
                    d.udp_encap = Some((sport, dport));
                    esp(inner)
                } else {
                    L4::Ports { sport, dport }
                }
            }
            _ => L4::Truncated,
        },
        1 | 58 => match (rest.first(), rest.get(1)) {
            (Some(ty), Some(code)) => L4::Icmp {
                ty: *ty,
                code: *code,
            },
            _ => L4::Truncated,
        },
        _ => L4::Other,
    };
    Some(d)
}

fn esp(b: &[u8]) -> L4 {
    match EspPacket::new_checked(b) {
        Ok(e) => L4::Esp {
            spi: e.spi(),
            seq: e.seq_no(),
        },
        Err(_) => L4::Truncated,
    }
}

/// `2026-11-27T12:00:01.123456Z` for nanoseconds since the epoch.
pub fn time_text(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let micros = unix_ns % 1_000_000_000 / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = ipsec_core::civil::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn proto_text(p: u8) -> String {
    match ipsec_wire::ip::protocol_name(p) {
        Some(n) => format!("{}({p})", n.to_ascii_lowercase()),
        None => p.to_string(),
    }
}

/// The packet-level fields, in order, as (name, value) pairs.
fn packet_fields(ev: &DropEvent, d: Option<&Decoded>) -> Vec<(&'static str, String)> {
    let mut f = vec![("len", ev.wire_len.to_string())];
    let Some(d) = d else {
        f.push(("decode", "not an IP packet".into()));
        return f;
    };
    f.push(("ip", format!("v{}", d.version)));
    f.push(("ip_len", d.len.to_string()));
    f.push(("ttl", d.ttl.to_string()));
    f.push(("tos", format!("0x{:02x}", d.tos)));
    if let Some(id) = d.ident {
        f.push(("id", format!("0x{id:04x}")));
    }
    if let Some((off, mf)) = d.frag {
        f.push((
            "frag",
            format!("off={} mf={}", u32::from(off) * 8, u8::from(mf)),
        ));
    }
    f.push(("proto", proto_text(d.proto)));
    if let Some((s, t)) = d.udp_encap {
        f.push(("udp_encap", format!("{s}>{t}")));
    }
    match d.l4 {
        L4::Ports { sport, dport } => {
            f.push(("sport", sport.to_string()));
            f.push(("dport", dport.to_string()));
        }
        L4::Icmp { ty, code } => {
            f.push(("icmp_type", ty.to_string()));
            f.push(("icmp_code", code.to_string()));
        }
        L4::Esp { spi, seq } => {
            f.push(("esp_spi", format!("0x{spi:08x}")));
            f.push(("esp_seq", seq.to_string()));
        }
        L4::Ah { spi, seq, next } => {
            f.push(("ah_spi", format!("0x{spi:08x}")));
            f.push(("ah_seq", seq.to_string()));
            f.push(("ah_next", proto_text(next)));
        }
        L4::Other => {}
        L4::Truncated => f.push(("l4", "truncated".into())),
    }
    f
}

/// Appends one record (with its newline) for `ev` to `out`.
pub fn format(ev: &DropEvent, level: Level, fmt: Format, depth: usize, out: &mut String) {
    let d = decode(ev.captured());
    let mut fields: Vec<(&'static str, String)> = vec![
        ("time", time_text(ev.unix_ns)),
        ("dir", ev.dir.name().into()),
        ("reason", ev.reason.into()),
    ];
    if level.message {
        fields.push((
            "rule",
            ev.rule.map_or_else(|| "-".into(), |r| r.to_string()),
        ));
        let spi = ev.spi.or(match d.map(|d| d.l4) {
            Some(L4::Esp { spi, .. } | L4::Ah { spi, .. }) => Some(spi),
            _ => None,
        });
        fields.push((
            "spi",
            spi.map_or_else(|| "-".into(), |s| format!("0x{s:08x}")),
        ));
        fields.push(("src", d.map_or_else(|| "-".into(), |d| d.src.to_string())));
        fields.push(("dst", d.map_or_else(|| "-".into(), |d| d.dst.to_string())));
    }
    let packet = level.packet.then(|| packet_fields(ev, d.as_ref()));
    let stack: Option<Vec<&str>> = level.stack.then(|| {
        let skip = ev.stack.len().saturating_sub(depth);
        ev.stack.iter().skip(skip).copied().collect()
    });
    match fmt {
        Format::Text => {
            for (k, v) in &fields {
                if k == &"time" {
                    out.push_str(v);
                } else {
                    let _ = write!(out, " {k}={v}");
                }
            }
            if let Some(p) = &packet {
                out.push_str(" |");
                for (k, v) in p {
                    let _ = write!(out, " {k}={}", v.replace(' ', ","));
                }
            }
            if let Some(s) = &stack {
                let _ = write!(out, " | stack={}", s.join(">"));
            }
        }
        Format::Json => {
            let mut m = serde_json::Map::new();
            for (k, v) in fields {
                m.insert(k.into(), serde_json::Value::String(v));
            }
            if let Some(p) = packet {
                let pm: serde_json::Map<String, serde_json::Value> = p
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
                    .collect();
                m.insert("packet".into(), serde_json::Value::Object(pm));
            }
            if let Some(s) = stack {
                m.insert("stack".into(), serde_json::json!(s));
            }
            out.push_str(&serde_json::Value::Object(m).to_string());
        }
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 ESP packet 10.0.0.1 -> 10.0.0.2, SPI 0xbad, sequence 7.
    fn esp_v4() -> Vec<u8> {
        let mut p = vec![0u8; 200];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&200u16.to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[8] = 64;
        p[9] = 50;
        p[12..16].copy_from_slice(&[10, 0, 0, 1]);
        p[16..20].copy_from_slice(&[10, 0, 0, 2]);
        p[20..24].copy_from_slice(&0xbadu32.to_be_bytes());
        p[24..28].copy_from_slice(&7u32.to_be_bytes());
        p
    }

    fn udp_v6() -> Vec<u8> {
        let mut p = vec![0u8; 60];
        p[0] = 0x60;
        p[4..6].copy_from_slice(&20u16.to_be_bytes());
        p[6] = 17;
        p[7] = 255;
        p[23] = 1;
        p[39] = 2;
        p[40..42].copy_from_slice(&1234u16.to_be_bytes());
        p[42..44].copy_from_slice(&53u16.to_be_bytes());
        p
    }

    fn line(ev: &DropEvent, level: &str, fmt: Format, depth: usize) -> String {
        let mut s = String::new();
        format(ev, Level::parse(level).unwrap(), fmt, depth, &mut s);
        assert!(s.ends_with('\n') && s.matches('\n').count() == 1, "{s}");
        s
    }

    /// Every valid log level combination, in both formats: each record holds exactly the
    /// fields its level asks for.
    #[test]
    fn every_level_combination_holds_its_fields() {
        let ev = DropEvent::new(
            Dir::In,
            "esp_no_sa",
            Some(3),
            None,
            stage::IN_ENGINE,
            &esp_v4(),
        );
        assert_eq!(ev.cap_len as usize, CAPTURE);
        assert_eq!(ev.wire_len, 200);
        let parts = ["message", "packet", "stack"];
        let mut combos = vec!["minimal".to_string()];
        for mask in 1..8u8 {
            let c: Vec<&str> = parts
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, p)| *p)
                .collect();
            combos.push(c.join("+"));
            let mut rev = c.clone();
            rev.reverse();
            combos.push(rev.join("+"));
        }
        for combo in &combos {
            let l = Level::parse(combo).unwrap();
            let t = line(&ev, combo, Format::Text, 25);
            assert!(t.contains(" dir=in reason=esp_no_sa"), "{combo}: {t}");
            assert!(t.starts_with("20"), "{combo}: {t}");
            assert_eq!(
                t.contains("rule=3 spi=0x00000bad src=10.0.0.1 dst=10.0.0.2"),
                l.message,
                "{combo}: {t}"
            );
            assert_eq!(t.contains("| len=200 ip=v4 ip_len=200 ttl=64 tos=0x00 id=0x1234 proto=esp(50) esp_spi=0x00000bad esp_seq=7"), l.packet, "{combo}: {t}");
            assert_eq!(
                t.contains("stack=wire_read>engine_inbound"),
                l.stack,
                "{combo}: {t}"
            );

            let j = line(&ev, combo, Format::Json, 25);
            let v: serde_json::Value = serde_json::from_str(&j).unwrap();
            assert_eq!(v["reason"], "esp_no_sa");
            assert_eq!(v["dir"], "in");
            assert_eq!(v.get("rule").is_some(), l.message, "{combo}: {j}");
            assert_eq!(v.get("src").is_some(), l.message);
            if l.message {
                assert_eq!(v["rule"], "3");
                assert_eq!(v["spi"], "0x00000bad");
                assert_eq!(v["dst"], "10.0.0.2");
            }
            assert_eq!(v.get("packet").is_some(), l.packet, "{combo}: {j}");
            if l.packet {
                assert_eq!(v["packet"]["esp_seq"], "7");
                assert_eq!(v["packet"]["proto"], "esp(50)");
            }
            assert_eq!(v.get("stack").is_some(), l.stack, "{combo}: {j}");
            if l.stack {
                assert_eq!(
                    v["stack"],
                    serde_json::json!(["wire_read", "engine_inbound"])
                );
            }
        }
        assert_eq!(combos.len(), 15);
    }

    #[test]
    fn stack_keeps_the_stages_nearest_the_drop() {
        let ev = DropEvent::new(
            Dir::Out,
            "spd_explicit",
            Some(0),
            None,
            stage::OUT_ENGINE,
            &udp_v6(),
        );
        let t = line(&ev, "stack", Format::Text, 2);
        assert!(t.ends_with("| stack=sa_select>engine_outbound\n"), "{t}");
        let t = line(&ev, "message+packet", Format::Text, 2);
        assert!(t.contains("src=::1 dst=::2"), "{t}");
        assert!(
            t.contains("ip=v6 ip_len=60 ttl=255 tos=0x00 proto=udp(17) sport=1234 dport=53"),
            "{t}"
        );
    }

    #[test]
    fn decode_never_panics_on_malformed_or_short_bytes() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut s = String::new();
        for len in 0..CAPTURE + 10 {
            for _ in 0..20 {
                let mut p = vec![0u8; len];
                for b in &mut p {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    *b = rng as u8;
                }
                if let Some(f) = p.first_mut() {
                    *f = (*f & 0x0f) | if rng & 1 == 0 { 0x40 } else { 0x60 };
                }
                let ev = DropEvent::new(Dir::In, "spd_malformed_packet", None, None, &[], &p);
                s.clear();
                format(
                    &ev,
                    Level::parse("message+packet+stack").unwrap(),
                    Format::Json,
                    25,
                    &mut s,
                );
                assert!(serde_json::from_str::<serde_json::Value>(&s).is_ok());
            }
        }
        let ev = DropEvent::new(Dir::In, "x", None, None, &[], &[0x45, 0, 0]);
        let t = line(&ev, "message+packet", Format::Text, 25);
        assert!(
            t.contains("src=- dst=-") && t.contains("decode=not,an,IP,packet"),
            "{t}"
        );
        let mut p = esp_v4();
        p.truncate(24);
        let ev = DropEvent::new(Dir::In, "esp_bad_length", None, None, &[], &p);
        assert!(line(&ev, "packet", Format::Text, 25).contains("proto=esp(50) l4=truncated"));
    }

    #[test]
    fn udp_encapsulated_esp_and_icmp() {
        let mut p = vec![0u8; 60];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&60u16.to_be_bytes());
        p[9] = 17;
        p[20..22].copy_from_slice(&4500u16.to_be_bytes());
        p[22..24].copy_from_slice(&4500u16.to_be_bytes());
        p[28..32].copy_from_slice(&0x100u32.to_be_bytes());
        p[32..36].copy_from_slice(&9u32.to_be_bytes());
        let ev = DropEvent::new(Dir::In, "esp_no_sa", None, None, &[], &p);
        let t = line(&ev, "message+packet", Format::Text, 25);
        assert!(t.contains("spi=0x00000100"), "{t}");
        assert!(
            t.contains("udp_encap=4500>4500 esp_spi=0x00000100 esp_seq=9"),
            "{t}"
        );
        p[9] = 1;
        p[20] = 8;
        p[21] = 0;
        let ev = DropEvent::new(Dir::In, "spd_got_clear", Some(1), None, &[], &p);
        let t = line(&ev, "packet", Format::Text, 25);
        assert!(t.contains("proto=icmp(1) icmp_type=8 icmp_code=0"), "{t}");
    }

    #[test]
    fn time_is_utc_rfc3339() {
        assert_eq!(time_text(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(
            time_text(1_795_780_801_000_123_000),
            "2026-11-27T12:00:01.000123Z"
        );
        assert_eq!(
            time_text(951_782_400_000_000_000),
            "2000-02-29T00:00:00.000000Z"
        );
    }
}
