//! Property tests: arbitrary Reprs emit then parse back equal; arbitrary and mutated bytes
//! never break the fuzz bodies.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::vec;
use std::vec::Vec;

use proptest::collection::vec as pvec;
use proptest::prelude::*;

use super::samples::{h, IP_SAMPLES};
use crate::ah::{AhPacket, AhRepr};
use crate::esp::{self, EspPacket, EspRepr, EspTrailer};
use crate::fuzz_support;
use crate::icmpv4::{Icmpv4Packet, Icmpv4Repr};
use crate::icmpv6::{Icmpv6Packet, Icmpv6Repr};
use crate::ip::IpVersion;
use crate::ipv4::{Ipv4Options, Ipv4Packet, Ipv4Repr};
use crate::ipv6::{FragmentHeader, FragmentRepr, Ipv6Packet, Ipv6Repr};
use crate::udp::{UdpPacket, UdpRepr};

fn v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>().prop_map(Ipv4Addr::from)
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>().prop_map(Ipv6Addr::from)
}

/// One well-formed IPv4 option.
fn ipv4_option() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![1u8]),
        any::<[u8; 2]>().prop_map(|d| vec![0x94, 4, d[0], d[1]]),
        pvec(any::<u8>(), 0..3).prop_map(|addrs| {
            let mut o = vec![7u8, (3 + 4 * addrs.len()) as u8, 4];
            for a in addrs {
                o.extend_from_slice(&[10, 0, 0, a]);
            }
            o
        }),
        (2u8..=255, pvec(any::<u8>(), 0..6)).prop_map(|(k, d)| {
            let mut o = vec![k, (d.len() + 2) as u8];
            o.extend_from_slice(&d);
            o
        }),
    ]
}

fn ipv4_options() -> impl Strategy<Value = Ipv4Options> {
    pvec(ipv4_option(), 0..6).prop_filter_map("fits", |opts| {
        let mut b: Vec<u8> = opts.concat();
        if b.len() > 40 {
            return None;
        }
        while b.len() % 4 != 0 {
            b.push(0);
        }
        Ipv4Options::new(&b).ok()
    })
}

prop_compose! {
    fn ipv4_repr()(
        src_addr in v4(), dst_addr in v4(), protocol in any::<u8>(),
        payload_len in 0usize..=2000, ttl in any::<u8>(), tos in any::<u8>(),
        ident in any::<u16>(), dont_frag in any::<bool>(), more_frags in any::<bool>(),
        frag in 0u16..8192, options in ipv4_options(),
    ) -> Ipv4Repr {
        Ipv4Repr {
            src_addr, dst_addr, protocol, payload_len, ttl, tos, ident, dont_frag,
            more_frags, frag_offset: frag * 8, options,
        }
    }
}

prop_compose! {
    fn ipv6_repr()(
        src_addr in v6(), dst_addr in v6(), next_header in any::<u8>(),
        payload_len in 0usize..=65535, hop_limit in any::<u8>(),
        traffic_class in any::<u8>(), flow_label in 0u32..=0xfffff,
    ) -> Ipv6Repr {
        Ipv6Repr { src_addr, dst_addr, next_header, payload_len, hop_limit, traffic_class, flow_label }
    }
}

proptest! {
    #[test]
    fn ipv4_round_trip(r in ipv4_repr()) {
        let mut buf = vec![0u8; r.total_len()];
        r.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])).unwrap();
        let p = Ipv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert!(p.verify_checksum());
        prop_assert_eq!(Ipv4Repr::parse(&p), Ok(r));
        prop_assert_eq!(p.header_len(), r.buffer_len());
    }

    #[test]
    fn ipv6_round_trip(r in ipv6_repr()) {
        let mut buf = vec![0u8; r.total_len()];
        r.emit(&mut Ipv6Packet::new_unchecked(&mut buf[..])).unwrap();
        let p = Ipv6Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Ipv6Repr::parse(&p), Ok(r));
    }

    #[test]
    fn udp_round_trip(
        src_port in any::<u16>(), dst_port in any::<u16>(),
        payload in pvec(any::<u8>(), 0..600),
        v6_addrs in any::<bool>(), a4 in v4(), b4 in v4(), a6 in v6(), b6 in v6(),
    ) {
        let r = UdpRepr { src_port, dst_port, payload_len: payload.len() };
        let (s, d) = if v6_addrs { (a6.into(), b6.into()) } else { (a4.into(), b4.into()) };
        let mut buf = vec![0u8; 8 + payload.len()];
        let mut p = UdpPacket::new_unchecked(&mut buf[..]);
        r.emit(&mut p).unwrap();
        p.payload_mut().copy_from_slice(&payload);
        p.fill_checksum(&s, &d);
        prop_assert_ne!(p.checksum(), 0);
        let p = UdpPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(UdpRepr::parse(&p, &s, &d), Ok(r));
        prop_assert_eq!(p.payload(), &payload[..]);
    }

    #[test]
    fn esp_round_trip(spi in 1u32.., seq in any::<u32>()) {
        let r = EspRepr { spi, seq };
        let mut buf = [0u8; 8];
        r.emit(&mut EspPacket::new_unchecked(&mut buf[..])).unwrap();
        prop_assert_eq!(EspRepr::parse(&EspPacket::new_checked(&buf[..]).unwrap()), Ok(r));
    }

    #[test]
    fn esp_trailer_round_trip(
        payload in pvec(any::<u8>(), 0..100), block in 0usize..=32, nh in any::<u8>(),
    ) {
        let pad = esp::pad_len(payload.len(), block).unwrap();
        let mut buf = payload.clone();
        buf.resize(payload.len() + usize::from(pad) + 2, 0);
        prop_assert_eq!(buf.len() % 4, 0);
        if block > 1 { prop_assert_eq!(buf.len() % block, 0); }
        esp::write_trailer(&mut buf[payload.len()..], nh).unwrap();
        let t = EspTrailer::parse(&buf).unwrap();
        prop_assert_eq!(t, EspTrailer { payload_len: payload.len(), pad_len: pad, next_header: nh });
        prop_assert!(esp::padding_is_valid(t.padding(&buf)));
        prop_assert_eq!(t.payload(&buf), &payload[..]);
    }

    #[test]
    fn ah_round_trip(
        next_header in any::<u8>(), spi in 1u32.., seq in any::<u32>(),
        words in 0usize..=254, v6_hdr in any::<bool>(),
    ) {
        let (icv_len, version) = if v6_hdr {
            // 12 + icv must be a multiple of 8.
            (4 + 8 * (words / 2).min(126), IpVersion::V6)
        } else {
            (4 * words, IpVersion::V4)
        };
        let r = AhRepr { next_header, spi, seq, icv_len };
        let mut buf = vec![0xffu8; r.buffer_len() + 3];
        r.emit(&mut AhPacket::new_unchecked(&mut buf[..])).unwrap();
        let p = AhPacket::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(AhRepr::parse(&p, version), Ok(r));
        prop_assert!(p.icv().iter().all(|&b| b == 0));
        prop_assert_eq!(p.payload().len(), 3);
    }

    #[test]
    fn frag_round_trip(next_header in any::<u8>(), off in 0u16..8192, more in any::<bool>(), ident in any::<u32>()) {
        let r = FragmentRepr { next_header, frag_offset: off * 8, more_frags: more, ident };
        let mut buf = [0u8; 8];
        r.emit(&mut FragmentHeader::new_unchecked(&mut buf[..])).unwrap();
        prop_assert_eq!(FragmentRepr::parse(&FragmentHeader::new_checked(&buf[..]).unwrap()), Ok(r));
    }

    #[test]
    fn icmpv4_round_trip(
        which in 0u8..8, a in any::<u16>(), b in any::<u16>(), code in any::<u8>(),
        gw in v4(), other_type in 19u8.., data in pvec(any::<u8>(), 0..100),
    ) {
        let d = &data[..];
        let r = match which {
            0 => Icmpv4Repr::EchoRequest { ident: a, seq_no: b, data: d },
            1 => Icmpv4Repr::EchoReply { ident: a, seq_no: b, data: d },
            2 => Icmpv4Repr::DstUnreachable { code, next_hop_mtu: b, invoking: d },
            3 => Icmpv4Repr::SourceQuench { invoking: d },
            4 => Icmpv4Repr::Redirect { code, gateway: gw, invoking: d },
            5 => Icmpv4Repr::TimeExceeded { code, invoking: d },
            6 => Icmpv4Repr::ParamProblem { code, pointer: (a & 0xff) as u8, invoking: d },
            _ => Icmpv4Repr::Other { msg_type: other_type, code, rest: u32::from(a) << 16 | u32::from(b), data: d },
        };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..])).unwrap();
        let p = Icmpv4Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Icmpv4Repr::parse(&p), Ok(r));
    }

    #[test]
    fn icmpv6_round_trip(
        which in 0u8..12, a in any::<u16>(), b in any::<u16>(), w in any::<u32>(), code in any::<u8>(),
        t in v6(), u in v6(), s in v6(), dst in v6(), data in pvec(any::<u8>(), 0..100),
    ) {
        let d = &data[..];
        let r = match which {
            0 => Icmpv6Repr::DstUnreachable { code, invoking: d },
            1 => Icmpv6Repr::PktTooBig { mtu: w, invoking: d },
            2 => Icmpv6Repr::TimeExceeded { code, invoking: d },
            3 => Icmpv6Repr::ParamProblem { code, pointer: w, invoking: d },
            4 => Icmpv6Repr::EchoRequest { ident: a, seq_no: b, data: d },
            5 => Icmpv6Repr::EchoReply { ident: a, seq_no: b, data: d },
            6 => Icmpv6Repr::RouterSolicit { options: d },
            7 => Icmpv6Repr::RouterAdvert {
                hop_limit: code, flags: (a >> 8) as u8, router_lifetime: b,
                reachable_time: w, retrans_time: w.rotate_left(7), options: d,
            },
            8 => Icmpv6Repr::NeighborSolicit { target: t, options: d },
            9 => Icmpv6Repr::NeighborAdvert { flags: code, target: t, options: d },
            10 => Icmpv6Repr::Redirect { target: t, dest: u, options: d },
            _ => Icmpv6Repr::Mld { msg_type: 130 + (code % 3), max_resp_delay: a, mcast_addr: t, data: d },
        };
        let mut buf = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv6Packet::new_unchecked(&mut buf[..]), &s, &dst).unwrap();
        let p = Icmpv6Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(Icmpv6Repr::parse(&p, &s, &dst), Ok(r));
    }

    #[test]
    fn arbitrary_bytes_never_break(data in pvec(any::<u8>(), 0..400)) {
        prop_assert_eq!(fuzz_support::wire_ip(&data), Ok(()));
        prop_assert_eq!(fuzz_support::wire_esp_ah(&data), Ok(()));
        prop_assert_eq!(fuzz_support::wire_udpencap_icmp(&data), Ok(()));
    }

    #[test]
    fn mutated_samples_never_break(
        idx in 0usize..IP_SAMPLES.len(), edits in pvec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut b = h(IP_SAMPLES[idx].1);
        for (pos, val) in edits {
            let i = pos % b.len();
            b[i] = val;
        }
        let n = b.len() - cut % 8;
        let b = &b[..n];
        prop_assert_eq!(fuzz_support::wire_ip(b), Ok(()));
        prop_assert_eq!(fuzz_support::wire_esp_ah(b), Ok(()));
        prop_assert_eq!(fuzz_support::wire_udpencap_icmp(b), Ok(()));
    }
}
