//! Deconstruct / construct tests on the hand-built captures.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::string::ToString;
use std::vec;
use std::vec::Vec;

use super::samples::*;
use crate::ah::{self, AhPacket, AhRepr};
use crate::esp::{self, EspPacket, EspRepr, EspTrailer};
use crate::icmpv4::{self, Icmpv4Packet, Icmpv4Repr};
use crate::icmpv6::{self, Icmpv6Packet, Icmpv6Repr};
use crate::ip::{protocol, IpPacket, IpRepr, IpVersion, UpperLayer};
use crate::ipv4::{self, Ipv4Packet, Ipv4Repr};
use crate::ipv6::{
    self, ExtChain, ExtHeader, ExtHeaderInfo, ExtHeaderIter, FragmentHeader, FragmentRepr,
    Ipv6Packet, Ipv6Repr, RoutingHeader,
};
use crate::udp::{UdpPacket, UdpRepr};
use crate::udpencap::{self, UdpEncapPayload};
use crate::Error;

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------- IPv4 + UDP

#[test]
fn ipv4_udp_deconstruct() {
    let b = h(IPV4_UDP);
    let p = Ipv4Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.version(), 4);
    assert_eq!(p.header_len(), 20);
    assert_eq!(p.tos(), 0);
    assert_eq!(p.total_len(), 44);
    assert_eq!(p.ident(), 0x1c46);
    assert!(p.dont_frag());
    assert!(!p.more_frags());
    assert_eq!(p.frag_offset(), 0);
    assert_eq!(p.ttl(), 64);
    assert_eq!(p.protocol(), protocol::UDP);
    assert_eq!(p.checksum(), 0x9c62);
    assert!(p.verify_checksum());
    assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
    assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
    assert!(p.options().is_empty());

    let r = Ipv4Repr::parse(&p).unwrap();
    assert_eq!(r.payload_len, 24);
    assert_eq!(r.buffer_len(), 20);

    let u = UdpPacket::new_checked(p.payload()).unwrap();
    assert_eq!(u.src_port(), 54321);
    assert_eq!(u.dst_port(), 53);
    assert_eq!(u.len(), 24);
    assert_eq!(u.payload(), b"Ironswan wire!!\n");
    let (s, d) = (IpAddr::V4(r.src_addr), IpAddr::V4(r.dst_addr));
    assert!(u.verify_checksum(&s, &d));
    let ur = UdpRepr::parse(&u, &s, &d).unwrap();
    assert_eq!(
        ur,
        UdpRepr {
            src_port: 54321,
            dst_port: 53,
            payload_len: 16
        }
    );
    // A wrong pseudo-header fails.
    let other = IpAddr::V4(Ipv4Addr::new(192, 168, 0, 2));
    assert_eq!(UdpRepr::parse(&u, &s, &other), Err(Error::BadChecksum));
}

#[test]
fn ipv4_udp_construct() {
    let expect = h(IPV4_UDP);
    let repr = Ipv4Repr {
        src_addr: Ipv4Addr::new(192, 168, 0, 1),
        dst_addr: Ipv4Addr::new(192, 168, 0, 199),
        protocol: protocol::UDP,
        payload_len: 24,
        ttl: 64,
        tos: 0,
        ident: 0x1c46,
        dont_frag: true,
        more_frags: false,
        frag_offset: 0,
        options: ipv4::Ipv4Options::EMPTY,
    };
    let mut buf = vec![0xa5u8; repr.total_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]))
        .unwrap();
    let udp = UdpRepr {
        src_port: 54321,
        dst_port: 53,
        payload_len: 16,
    };
    let mut up = UdpPacket::new_unchecked(&mut buf[20..]);
    udp.emit(&mut up).unwrap();
    up.payload_mut().copy_from_slice(b"Ironswan wire!!\n");
    up.fill_checksum(&IpAddr::V4(repr.src_addr), &IpAddr::V4(repr.dst_addr));
    assert_eq!(buf, expect);
}

#[test]
fn ipv4_errors() {
    let good = h(IPV4_UDP);
    // IHL 4.
    let mut b = good.clone();
    b[0] = 0x44;
    assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::BadHeaderLength));
    // IHL 15 on a 44-byte buffer whose total length says 44: header longer than buffer.
    b[0] = 0x4f;
    assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::Truncated));
    // IHL 6 but total length 20.
    let mut b = good.clone();
    b[0] = 0x46;
    b[2..4].copy_from_slice(&20u16.to_be_bytes());
    assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::BadTotalLength));
    // Total length beyond the buffer.
    let mut b = good.clone();
    b[2..4].copy_from_slice(&45u16.to_be_bytes());
    assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::Truncated));
    // Version 6 in an IPv4 view; IpPacket dispatches to IPv6 and finds it short.
    let mut b = good.clone();
    b[0] = 0x65;
    assert_eq!(Ipv4Packet::new_checked(&b[..]), Err(Error::BadVersion));
    assert_eq!(IpPacket::new_checked(&b[..]), Err(Error::Truncated));
    b[0] = 0x15;
    assert_eq!(IpPacket::new_checked(&b[..]), Err(Error::BadVersion));
    // Bad checksum.
    let mut b = good.clone();
    b[8] = 63;
    let p = Ipv4Packet::new_checked(&b[..]).unwrap();
    assert!(!p.verify_checksum());
    assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadChecksum));
    assert!(Ipv4Repr::parse_ignoring_checksum(&p).is_ok());
    // Empty.
    assert_eq!(Ipv4Packet::new_checked(&[][..]), Err(Error::Truncated));
    // Link-layer padding after the total length is fine and not part of the payload.
    let mut b = good.clone();
    b.extend_from_slice(&[0; 6]);
    let p = Ipv4Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.payload().len(), 24);
}

#[test]
fn ipv4_emit_errors() {
    let mut repr = Ipv4Repr::parse(&Ipv4Packet::new_checked(&h(IPV4_UDP)[..]).unwrap()).unwrap();
    let mut small = [0u8; 19];
    assert_eq!(
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut small[..])),
        Err(Error::Truncated)
    );
    let mut buf = [0u8; 20];
    repr.payload_len = 65516;
    assert_eq!(
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])),
        Err(Error::BadTotalLength)
    );
    repr.payload_len = 65515;
    assert!(repr
        .emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]))
        .is_ok());
    repr.frag_offset = 12;
    assert_eq!(
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..])),
        Err(Error::Malformed)
    );
}

// ---------------------------------------------------------------- IPv4 options

#[test]
fn ipv4_options_walk_and_mutability() {
    let b = h(IPV4_OPTS_ICMP);
    let p = Ipv4Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.header_len(), 36);
    assert_eq!(p.tos(), 0xb8);
    assert_eq!(p.dscp(), 46);
    assert_eq!(p.ecn(), 0);
    assert!(p.verify_checksum());
    let opts: Vec<_> = p.option_iter().map(|o| o.unwrap()).collect();
    assert_eq!(opts.len(), 3);
    assert_eq!(
        (opts[0].kind, opts[0].offset, opts[0].len),
        (ipv4::option::NOP, 0, 1)
    );
    assert_eq!(
        (opts[1].kind, opts[1].offset, opts[1].len),
        (ipv4::option::LSRR, 1, 11)
    );
    assert_eq!(opts[1].data.len(), 9);
    assert!(opts[1].copied());
    assert_eq!(opts[1].number(), 3);
    assert_eq!(
        (opts[2].kind, opts[2].offset, opts[2].len),
        (ipv4::option::RA, 12, 4)
    );
    assert!(!opts[0].is_mutable());
    assert!(opts[1].is_mutable());
    assert!(!opts[2].is_mutable());
    assert_eq!(p.final_dst_addr(), Ok(Ipv4Addr::new(10, 0, 0, 2)));

    let r = Ipv4Repr::parse(&p).unwrap();
    assert_eq!(r.options.len(), 16);
    assert_eq!(r.options.as_bytes(), p.options());
    let mut out = vec![0u8; r.total_len()];
    r.emit(&mut Ipv4Packet::new_unchecked(&mut out[..]))
        .unwrap();
    out[36..].copy_from_slice(p.payload());
    assert_eq!(out, b);

    // AH view of the header.
    let mut m = b.clone();
    let mut mp = Ipv4Packet::new_unchecked(&mut m[..]);
    mp.zero_mutable_fields_for_ah().unwrap();
    assert_eq!(mp.tos(), 0);
    assert_eq!(mp.ttl(), 0);
    assert_eq!(mp.checksum(), 0);
    assert_eq!(mp.dst_addr(), Ipv4Addr::new(10, 0, 0, 2));
    let mut expect_opts = vec![1u8];
    expect_opts.extend_from_slice(&[0; 11]);
    expect_opts.extend_from_slice(&[0x94, 4, 0, 0]);
    assert_eq!(mp.options(), &expect_opts[..]);
    // Immutable fields kept.
    assert_eq!(mp.ident(), 0x0101);
    assert_eq!(mp.protocol(), protocol::ICMP);
    assert_eq!(mp.src_addr(), Ipv4Addr::new(10, 1, 1, 1));
}

#[test]
fn ipv4_source_route_exhausted_keeps_dst() {
    let mut b = h(IPV4_OPTS_ICMP);
    // Pointer 12 > option length 11: route used up; the current dst is final.
    b[20 + 3] = 12;
    let p = Ipv4Packet::new_unchecked(&b[..]);
    assert_eq!(p.final_dst_addr(), Ok(Ipv4Addr::new(10, 9, 9, 9)));
}

#[test]
fn ipv4_option_mutability_table() {
    use ipv4::{option, option_is_mutable};
    for k in [
        option::EOL,
        option::NOP,
        option::SEC,
        option::ESEC,
        option::CIPSO,
        option::RA,
        option::SDMDD,
    ] {
        assert!(!option_is_mutable(k), "{k} immutable");
    }
    for k in [
        option::LSRR,
        option::SSRR,
        option::RR,
        option::TS,
        option::TR,
        option::SID,
        option::MTUP,
        option::MTUR,
        0x8a, // 138 unknown
        0x02, // Security number without the copied bit is a different, unknown type
    ] {
        assert!(option_is_mutable(k), "{k} mutable");
    }
}

#[test]
fn ipv4_bad_options() {
    use ipv4::Ipv4OptionIter;
    // Length byte missing.
    let mut it = Ipv4OptionIter::new(&[0x07]);
    assert_eq!(it.next(), Some(Err(Error::BadOption)));
    assert_eq!(it.next(), None);
    // Length < 2.
    assert_eq!(
        Ipv4OptionIter::new(&[0x07, 1, 0, 0]).next(),
        Some(Err(Error::BadOption))
    );
    assert_eq!(
        Ipv4OptionIter::new(&[0x07, 0, 0, 0]).next(),
        Some(Err(Error::BadOption))
    );
    // Runs past the area.
    let v: Vec<_> = Ipv4OptionIter::new(&[1, 0x44, 8, 5, 0]).collect();
    assert_eq!(v.len(), 2);
    assert_eq!(v[1], Err(Error::BadOption));
    // EOL stops, bytes after it are padding.
    let v: Vec<_> = Ipv4OptionIter::new(&[1, 0, 0xff, 0xff]).collect();
    assert_eq!(v.len(), 2);
    assert!(v.iter().all(|o| o.is_ok()));
    // A header whose options are malformed is rejected by Repr::parse.
    let mut b = h(IPV4_OPTS_ICMP);
    b[20 + 2] = 30; // LSRR length past the options area
    let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
    p.fill_checksum();
    let p = Ipv4Packet::new_checked(&b[..]).unwrap();
    assert_eq!(Ipv4Repr::parse(&p), Err(Error::BadOption));
    assert_eq!(p.final_dst_addr(), Err(Error::BadOption));
    assert_eq!(
        crate::ipv4::Ipv4Options::new(&[1, 1, 1]),
        Err(Error::BadOption)
    );
}

// ---------------------------------------------------------------- ICMP

#[test]
fn icmp_echo() {
    let b = h(ICMP_ECHO);
    let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.msg_type(), icmpv4::message::ECHO_REQUEST);
    assert_eq!(p.echo_ident(), 0x1234);
    assert_eq!(p.echo_seq_no(), 1);
    assert!(p.verify_checksum());
    let r = Icmpv4Repr::parse(&p).unwrap();
    assert_eq!(
        r,
        Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data: b"abcdefgh"
        }
    );
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]))
        .unwrap();
    assert_eq!(out, b);
    // Inside the IPv4-with-options sample.
    let ip = h(IPV4_OPTS_ICMP);
    let ipp = Ipv4Packet::new_checked(&ip[..]).unwrap();
    assert_eq!(ipp.payload(), &b[..]);
    let mut bad = b.clone();
    bad[9] ^= 1;
    assert_eq!(
        Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&bad[..]).unwrap()),
        Err(Error::BadChecksum)
    );
}

#[test]
fn icmp_frag_needed_parse_and_build() {
    let b = h(ICMP_FRAG_NEEDED);
    let p = Icmpv4Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.msg_code(), icmpv4::unreach::FRAG_NEEDED);
    assert_eq!(p.next_hop_mtu(), 1400);
    let orig = h(IPV4_UDP);
    assert_eq!(p.invoking_packet(), &orig[..28]);
    assert_eq!(
        Icmpv4Repr::parse(&p).unwrap(),
        Icmpv4Repr::DstUnreachable {
            code: 4,
            next_hop_mtu: 1400,
            invoking: &orig[..28]
        }
    );
    // Build one for the whole original packet: all 44 bytes fit in 576.
    let r = Icmpv4Repr::frag_needed(1280, &orig);
    assert_eq!(r.data(), &orig[..]);
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut Icmpv4Packet::new_unchecked(&mut out[..]))
        .unwrap();
    let back = Icmpv4Packet::new_checked(&out[..]).unwrap();
    assert!(back.verify_checksum());
    assert_eq!(back.next_hop_mtu(), 1280);
    assert_eq!(Icmpv4Repr::parse(&back).unwrap(), r);
    // A big original is cut to 548 bytes (576 - 20 - 8).
    let big = vec![0x45u8; 2000];
    assert_eq!(icmpv4::quote(&big).len(), icmpv4::MAX_QUOTE_LEN);
    assert_eq!(icmpv4::MAX_QUOTE_LEN, 548);
    // Buffer padding after an IPv4 packet's total length is not quoted.
    let mut padded = orig.clone();
    padded.extend_from_slice(&[0; 10]);
    assert_eq!(icmpv4::quote(&padded), &orig[..]);
    assert_eq!(
        Icmpv4Packet::new_checked(&b[..]).unwrap().to_string(),
        "ICMP need to frag (mtu 1400), length 36 for 192.168.0.1 > 192.168.0.199"
    );
}

#[test]
fn icmp_names() {
    let expect = [
        ("unreach", 3),
        ("echo", 8),
        ("echorep", 0),
        ("squench", 4),
        ("redir", 5),
        ("timex", 11),
        ("paramprob", 12),
        ("timest", 13),
        ("timestrep", 14),
        ("inforeq", 15),
        ("inforep", 16),
        ("maskreq", 17),
        ("maskrep", 18),
    ];
    for (n, t) in expect {
        assert_eq!(icmpv4::type_by_name(n), Some(t), "{n}");
        assert_eq!(icmpv4::type_name(t), Some(n));
    }
    assert_eq!(icmpv4::code_by_name("needfrag"), Some(4));
    assert_eq!(icmpv4::code_by_name("cutoff-preced"), Some(15));
    assert_eq!(icmpv4::code_name(3, 3), Some("port-unr"));
    assert_eq!(icmpv4::code_name(11, 3), None);
    let expect6 = [
        ("unreach6", 1),
        ("pkttoobig6", 2),
        ("timex6", 3),
        ("paramprob6", 4),
        ("echo6", 128),
        ("echorep6", 129),
        ("router-sol6", 133),
        ("router-ad6", 134),
        ("neigh-sol6", 135),
        ("neigh-ad6", 136),
        ("redir6", 137),
    ];
    for (n, t) in expect6 {
        assert_eq!(icmpv6::type_by_name(n), Some(t), "{n}");
        assert_eq!(icmpv6::type_name(t), Some(n));
    }
    assert_eq!(icmpv6::code_by_name("port-unr6"), Some((1, 4)));
    assert_eq!(icmpv6::code_by_name("frag-re-timex6"), Some((3, 1)));
    assert_eq!(icmpv6::code_by_name("unreq-opt6"), Some((4, 2)));
    assert_eq!(icmpv6::code_name(1, 1), Some("adm-prohib6"));
    assert_eq!(icmpv6::type_by_name("echo"), None);
}

#[test]
fn icmpv6_echo_and_errors() {
    let b = h(IPV6_ICMPV6);
    let ip = Ipv6Packet::new_checked(&b[..]).unwrap();
    let (s, d) = (ip.src_addr(), ip.dst_addr());
    let p = Icmpv6Packet::new_checked(ip.payload()).unwrap();
    assert!(p.verify_checksum(&s, &d));
    assert!(!p.verify_checksum(&s, &s));
    let r = Icmpv6Repr::parse(&p, &s, &d).unwrap();
    assert_eq!(
        r,
        Icmpv6Repr::EchoRequest {
            ident: 0x4242,
            seq_no: 3,
            data: b"0123456789abcdef"
        }
    );
    let mut out = vec![0u8; r.buffer_len()];
    r.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), &s, &d)
        .unwrap();
    assert_eq!(out, h(ICMPV6_ECHO));
    assert_eq!(Icmpv6Repr::parse(&p, &d, &d), Err(Error::BadChecksum));

    // Packet Too Big quoting the sample, then parsed back.
    let ptb = Icmpv6Repr::packet_too_big(1280, &b);
    assert_eq!(ptb.buffer_len(), 8 + b.len());
    let mut out = vec![0u8; ptb.buffer_len()];
    ptb.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), &d, &s)
        .unwrap();
    let pp = Icmpv6Packet::new_checked(&out[..]).unwrap();
    assert_eq!(pp.mtu(), 1280);
    assert_eq!(pp.invoking_packet(), &b[..]);
    assert_eq!(Icmpv6Repr::parse(&pp, &d, &s).unwrap(), ptb);
    assert_eq!(icmpv6::quote(&vec![0x60u8; 3000]).len(), 1232);
}

#[test]
fn icmpv6_nd_and_mld_round_trip() {
    let s = v6("fe80::1");
    let d = v6("ff02::1");
    let t = v6("2001:db8::5");
    let opts = [1u8, 1, 0, 1, 2, 3, 4, 5];
    let reprs = [
        Icmpv6Repr::RouterSolicit { options: &opts },
        Icmpv6Repr::RouterAdvert {
            hop_limit: 64,
            flags: 0xc0,
            router_lifetime: 1800,
            reachable_time: 30000,
            retrans_time: 1000,
            options: &opts,
        },
        Icmpv6Repr::NeighborSolicit {
            target: t,
            options: &opts,
        },
        Icmpv6Repr::NeighborAdvert {
            flags: 0xe0,
            target: t,
            options: &[],
        },
        Icmpv6Repr::Redirect {
            target: s,
            dest: t,
            options: &[],
        },
        Icmpv6Repr::Mld {
            msg_type: icmpv6::message::MLD_REPORT,
            max_resp_delay: 0,
            mcast_addr: v6("ff02::1:ff00:5"),
            data: &[],
        },
        Icmpv6Repr::TimeExceeded {
            code: 1,
            invoking: &[0x60, 0, 0, 0],
        },
        Icmpv6Repr::ParamProblem {
            code: 1,
            pointer: 40,
            invoking: &[0x60, 0, 0, 0],
        },
        Icmpv6Repr::DstUnreachable {
            code: 4,
            invoking: &[],
        },
        Icmpv6Repr::Other {
            msg_type: 200,
            code: 7,
            rest: 0xdeadbeef,
            data: b"x",
        },
    ];
    for r in reprs {
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), &s, &d)
            .unwrap();
        let p = Icmpv6Packet::new_checked(&out[..]).unwrap();
        assert_eq!(Icmpv6Repr::parse(&p, &s, &d).unwrap(), r, "{p}");
    }
    // NS needs 24 bytes; a non-zero code on ND is rejected.
    let mut ns = [0u8; 24];
    ns[0] = icmpv6::message::NEIGHBOR_SOLICIT;
    assert!(Icmpv6Packet::new_checked(&ns[..23]).is_err());
    ns[1] = 1;
    assert_eq!(
        Icmpv6Repr::parse_ignoring_checksum(&Icmpv6Packet::new_checked(&ns[..]).unwrap()),
        Err(Error::Malformed)
    );
}

// ---------------------------------------------------------------- IPv6 extension headers

fn info(kind: u8, offset: usize, len: usize, next_header: u8) -> ExtHeaderInfo {
    ExtHeaderInfo {
        kind,
        offset,
        len,
        next_header,
    }
}

#[test]
fn ipv6_chain_walk() {
    let b = h(IPV6_CHAIN);
    let p = Ipv6Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.version(), 6);
    assert_eq!(p.traffic_class(), 0);
    assert_eq!(p.flow_label(), 0x12345);
    assert_eq!(p.payload_len(), 80);
    assert_eq!(p.next_header(), protocol::HOPOPT);
    assert_eq!(p.hop_limit(), 64);
    assert_eq!(p.src_addr(), v6("2001:db8::1"));
    assert_eq!(p.dst_addr(), v6("2001:db8::2"));

    let mut it = p.ext_headers();
    let hs: Vec<_> = (&mut it).map(|h| h.unwrap()).collect();
    assert_eq!(
        hs,
        vec![
            info(protocol::HOPOPT, 40, 8, protocol::ROUTING),
            info(protocol::ROUTING, 48, 40, protocol::FRAGMENT),
            info(protocol::FRAGMENT, 88, 8, protocol::DSTOPTS),
            info(protocol::DSTOPTS, 96, 8, protocol::UDP),
        ]
    );
    let upper = UpperLayer {
        protocol: protocol::UDP,
        offset: 104,
        nh_field: 96,
        non_first_fragment: false,
    };
    assert_eq!(it.upper_layer(), Some(upper));
    assert_eq!(p.upper_layer(), Ok(upper));
    assert_eq!(ExtHeaderIter::new(&b).unwrap().finish(), Ok(upper));
    let chain = ExtChain::parse(&b).unwrap();
    assert_eq!(chain.headers(), &hs[..]);
    assert_eq!(chain.upper_layer(), upper);

    // ESP/AH go after HBH, routing and fragment, before the final destination options.
    assert_eq!(ipv6::unfragmentable_len(&b), Ok((96, 88)));

    // Hop-by-hop options.
    let hbh = ExtHeader::new_checked(&b[40..48]).unwrap();
    let opts: Vec<_> = hbh.options().map(|o| o.unwrap()).collect();
    assert_eq!(opts.len(), 2);
    assert_eq!(opts[0].kind, 0x3e);
    assert!(opts[0].may_change());
    assert_eq!(opts[0].action(), 0);
    assert_eq!(opts[0].data, &[0xab, 0xcd]);
    assert_eq!(opts[0].offset, 2);
    assert_eq!(opts[0].data_offset(), 4);
    assert!(opts[1].is_padding());
    assert!(!opts[1].may_change());

    // Routing header type 0.
    let rt = RoutingHeader::new_checked(&b[48..88]).unwrap();
    assert_eq!(rt.routing_type(), 0);
    assert_eq!(rt.segments_left(), 2);
    assert_eq!(rt.num_addresses(), 2);
    assert_eq!(rt.address(0), Some(v6("2001:db8::10")));
    assert_eq!(rt.address(1), Some(v6("2001:db8::20")));
    assert_eq!(rt.address(2), None);
    assert_eq!(rt.final_destination(), Some(v6("2001:db8::20")));

    // Fragment header.
    let fr = FragmentHeader::new_checked(&b[88..96]).unwrap();
    assert_eq!(
        FragmentRepr::parse(&fr).unwrap(),
        FragmentRepr {
            next_header: protocol::DSTOPTS,
            frag_offset: 0,
            more_frags: false,
            ident: 0xdeadbeef
        }
    );

    // UDP checksum uses the final destination (RFC 8200 §8.1).
    let u = UdpPacket::new_checked(&b[104..]).unwrap();
    let src = IpAddr::V6(p.src_addr());
    assert!(u.verify_checksum(&src, &IpAddr::V6(v6("2001:db8::20"))));
    assert!(!u.verify_checksum(&src, &IpAddr::V6(p.dst_addr())));

    assert_eq!(
        p.to_string(),
        "IP6 2001:db8::1 > 2001:db8::2: HBH( opt-0x3e(chg)) RT(type 0, segleft 2, \
         [0]2001:db8::10, [1]2001:db8::20) FRAG(off 0, id 0xdeadbeef) DSTOPT() UDP (17), \
         payload length 80, hlim 64, flowlabel 0x12345"
    );
}

#[test]
fn ipv6_chain_ah_view() {
    let mut b = h(IPV6_CHAIN);
    let mut p = Ipv6Packet::new_unchecked(&mut b[..]);
    p.zero_mutable_fields_for_ah().unwrap();
    assert_eq!(p.flow_label(), 0);
    assert_eq!(p.traffic_class(), 0);
    assert_eq!(p.hop_limit(), 0);
    assert_eq!(p.dst_addr(), v6("2001:db8::20"));
    // The routing header as it will arrive: [original dst, a1], segments left 0.
    let rt = RoutingHeader::new_checked(&b[48..88]).unwrap();
    assert_eq!(rt.segments_left(), 0);
    assert_eq!(rt.address(0), Some(v6("2001:db8::2")));
    assert_eq!(rt.address(1), Some(v6("2001:db8::10")));
    // The "may change" HBH option data is zeroed; type and length kept.
    assert_eq!(&b[40..48], &[43, 0, 0x3e, 2, 0, 0, 1, 0]);
}

#[test]
fn ipv6_routing_final_view_partial() {
    // Three addresses, one segment already done: a[1..3] remain.
    let mut rt = [0u8; 8 + 48];
    let a = [v6("::a1"), v6("::a2"), v6("::a3")];
    {
        let mut r = RoutingHeader::new_unchecked(&mut rt[..]);
        r.set_next_header(59);
        r.set_hdr_ext_len(6);
        r.set_routing_type(0);
        r.set_segments_left(2);
        for (i, x) in a.iter().enumerate() {
            r.set_address(i, *x);
        }
    }
    // Current dst is the node after the first hop was processed: a[0] went to the list.
    let mut dst = v6("::d1");
    RoutingHeader::new_checked(&mut rt[..])
        .unwrap()
        .make_final_view(&mut dst)
        .unwrap();
    let r = RoutingHeader::new_checked(&rt[..]).unwrap();
    assert_eq!(dst, v6("::a3"));
    assert_eq!(r.address(0), Some(v6("::a1")));
    assert_eq!(r.address(1), Some(v6("::d1")));
    assert_eq!(r.address(2), Some(v6("::a2")));
    assert_eq!(r.segments_left(), 0);
    // Unknown type with segments left cannot be predicted.
    let mut bad = [59u8, 0, 9, 1, 0, 0, 0, 0];
    assert_eq!(
        RoutingHeader::new_unchecked(&mut bad[..]).make_final_view(&mut dst),
        Err(Error::BadExtensionHeader)
    );
    // Type 0 with more segments left than addresses.
    let bad0 = [
        59u8, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    assert_eq!(
        RoutingHeader::new_checked(&bad0[..]),
        Err(Error::BadExtensionHeader)
    );
}

#[test]
fn ipv6_dstopts_before_routing() {
    let b = h(IPV6_RT2);
    let p = Ipv6Packet::new_checked(&b[..]).unwrap();
    assert_eq!(p.traffic_class(), 0x20);
    let hs: Vec<_> = p.ext_headers().map(|h| h.unwrap()).collect();
    assert_eq!(
        hs,
        vec![
            info(protocol::HOPOPT, 40, 8, protocol::DSTOPTS),
            info(protocol::DSTOPTS, 48, 8, protocol::ROUTING),
            info(protocol::ROUTING, 56, 24, protocol::DSTOPTS),
            info(protocol::DSTOPTS, 80, 8, protocol::ICMPV6),
        ]
    );
    // The first destination options precede a routing header: unfragmentable.
    assert_eq!(ipv6::unfragmentable_len(&b), Ok((80, 56)));
    let rt = RoutingHeader::new_checked(&b[56..80]).unwrap();
    assert_eq!(rt.routing_type(), 2);
    assert_eq!(rt.final_destination(), Some(v6("2001:db8:1::99")));
    let opts: Vec<_> = ExtHeader::new_checked(&b[40..48])
        .unwrap()
        .options()
        .map(|o| o.unwrap().kind)
        .collect();
    assert_eq!(opts, vec![ipv6::option::ROUTER_ALERT, ipv6::option::PADN]);
    let icmp = Icmpv6Packet::new_checked(&b[88..]).unwrap();
    assert!(icmp.verify_checksum(&p.src_addr(), &v6("2001:db8:1::99")));
    let mut m = b.clone();
    Ipv6Packet::new_unchecked(&mut m[..])
        .zero_mutable_fields_for_ah()
        .unwrap();
    let mp = Ipv6Packet::new_checked(&m[..]).unwrap();
    assert_eq!(mp.dst_addr(), v6("2001:db8:1::99"));
    assert_eq!(
        RoutingHeader::new_checked(&m[56..80]).unwrap().address(0),
        Some(v6("2001:db8::2"))
    );
    // No mutable options here: HBH and DST bytes unchanged.
    assert_eq!(&m[40..56], &b[40..56]);
    assert_eq!(&m[80..], &b[80..]);
}

#[test]
fn ipv6_unfragmentable_simple_cases() {
    let b = h(IPV6_ICMPV6);
    assert_eq!(ipv6::unfragmentable_len(&b), Ok((40, 6)));
    let b = h(IPV6_AH);
    // AH present: new ESP/AH go right after the fixed header (before the existing AH).
    assert_eq!(ipv6::unfragmentable_len(&b), Ok((40, 6)));
}

/// Builds an IPv6 packet with the given chain of (kind, len) generic headers then UDP.
fn ipv6_with_chain(chain: &[(u8, usize)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (i, &(_, len)) in chain.iter().enumerate() {
        let next = chain.get(i + 1).map_or(protocol::NO_NEXT_HEADER, |n| n.0);
        let mut hdr = vec![0u8; len];
        hdr[0] = next;
        hdr[1] = (len / 8 - 1) as u8;
        if len > 2 {
            hdr[2] = 1; // PadN covering the rest
            hdr[3] = (len - 4) as u8;
        }
        payload.extend_from_slice(&hdr);
    }
    let first = chain.first().map_or(protocol::NO_NEXT_HEADER, |n| n.0);
    let repr = Ipv6Repr {
        src_addr: v6("::1"),
        dst_addr: v6("::2"),
        next_header: first,
        payload_len: payload.len(),
        hop_limit: 1,
        traffic_class: 0,
        flow_label: 0,
    };
    let mut out = vec![0u8; 40];
    repr.emit(&mut Ipv6Packet::new_unchecked(&mut out[..]))
        .unwrap();
    out.extend_from_slice(&payload);
    out
}

#[test]
fn ipv6_chain_limits() {
    // 32 destination options headers are walked; 33 are too many.
    let ok = ipv6_with_chain(&[(protocol::DSTOPTS, 8); 32]);
    let u = Ipv6Packet::new_checked(&ok[..])
        .unwrap()
        .upper_layer()
        .unwrap();
    assert_eq!(u.protocol, protocol::NO_NEXT_HEADER);
    assert_eq!(u.offset, 40 + 32 * 8);
    let long = ipv6_with_chain(&[(protocol::DSTOPTS, 8); 33]);
    assert_eq!(
        Ipv6Packet::new_checked(&long[..]).unwrap().upper_layer(),
        Err(Error::TooManyExtensionHeaders)
    );
    assert_eq!(ExtChain::parse(&long), Err(Error::TooManyExtensionHeaders));
    assert_eq!(
        ipv6::unfragmentable_len(&long),
        Err(Error::TooManyExtensionHeaders)
    );
    // The walker yields the error once and stops.
    let p = Ipv6Packet::new_checked(&long[..]).unwrap();
    let v: Vec<_> = p.ext_headers().collect();
    assert_eq!(v.len(), 33);
    assert_eq!(v[32], Err(Error::TooManyExtensionHeaders));

    // Hop-by-hop anywhere but first.
    let hbh2 = ipv6_with_chain(&[(protocol::DSTOPTS, 8), (protocol::HOPOPT, 8)]);
    assert_eq!(
        Ipv6Packet::new_checked(&hbh2[..]).unwrap().upper_layer(),
        Err(Error::BadExtensionHeader)
    );
    // A header claiming more length than the payload.
    let mut over = ipv6_with_chain(&[(protocol::DSTOPTS, 16)]);
    over[41] = 2; // 24 bytes
    assert_eq!(
        Ipv6Packet::new_checked(&over[..]).unwrap().upper_layer(),
        Err(Error::Truncated)
    );
    // The walk is bounded by the payload length, not the buffer.
    let mut short_pl = ipv6_with_chain(&[(protocol::DSTOPTS, 16)]);
    short_pl[4..6].copy_from_slice(&8u16.to_be_bytes());
    assert_eq!(
        Ipv6Packet::new_checked(&short_pl[..])
            .unwrap()
            .upper_layer(),
        Err(Error::Truncated)
    );
    // A "loop": the same header type over and over still advances, and is bounded.
    let many = ipv6_with_chain(&[(protocol::ROUTING, 8); 40]);
    assert_eq!(
        Ipv6Packet::new_checked(&many[..]).unwrap().upper_layer(),
        Err(Error::TooManyExtensionHeaders)
    );
    // AH with a length field of 0 (8 bytes) is impossible.
    let mut ah0 = ipv6_with_chain(&[(protocol::AH, 8)]);
    ah0[41] = 0;
    assert_eq!(
        Ipv6Packet::new_checked(&ah0[..]).unwrap().upper_layer(),
        Err(Error::BadExtensionHeader)
    );
    // A bad option inside a destination options header.
    let mut badopt = ipv6_with_chain(&[(protocol::DSTOPTS, 8)]);
    badopt[43] = 5; // PadN longer than the header
    let e = ExtHeader::new_checked(&badopt[40..48]).unwrap();
    assert_eq!(e.options().last(), Some(Err(Error::BadOption)));
    assert_eq!(
        Ipv6Packet::new_unchecked(&mut badopt[..]).zero_mutable_fields_for_ah(),
        Err(Error::BadOption)
    );
}

#[test]
fn ipv6_non_first_fragment_stops_walk() {
    let mut b = ipv6_with_chain(&[(protocol::FRAGMENT, 8), (protocol::DSTOPTS, 8)]);
    // Fragment header: next header DSTOPTS, offset 1448, M set.
    FragmentRepr {
        next_header: protocol::DSTOPTS,
        frag_offset: 1448,
        more_frags: true,
        ident: 7,
    }
    .emit(&mut FragmentHeader::new_unchecked(&mut b[40..48]))
    .unwrap();
    let p = Ipv6Packet::new_checked(&b[..]).unwrap();
    let hs: Vec<_> = p.ext_headers().map(|h| h.unwrap()).collect();
    assert_eq!(hs.len(), 1);
    let u = p.upper_layer().unwrap();
    assert!(u.non_first_fragment);
    assert_eq!(
        (u.protocol, u.offset, u.nh_field),
        (protocol::DSTOPTS, 48, 40)
    );
    let ip = IpPacket::new_checked(&b[..]).unwrap();
    assert_eq!(ip.is_fragment(), Ok(true));
    assert_eq!(
        FragmentHeader::new_checked(&b[40..48]).unwrap().to_string(),
        "FRAG(off 1448, id 0x00000007, +)"
    );
}

// ---------------------------------------------------------------- ESP

#[test]
fn esp_header() {
    let b = h(IPV4_ESP);
    let ip = Ipv4Packet::new_checked(&b[..]).unwrap();
    assert_eq!(ip.protocol(), protocol::ESP);
    let e = EspPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(e.spi(), 0x1000);
    assert_eq!(e.seq_no(), 1);
    assert_eq!(e.payload().len(), 8 + 16 + 12);
    let r = EspRepr::parse(&e).unwrap();
    assert_eq!(
        r,
        EspRepr {
            spi: 0x1000,
            seq: 1
        }
    );
    let mut out = [0u8; 8];
    r.emit(&mut EspPacket::new_unchecked(&mut out[..])).unwrap();
    assert_eq!(&out[..], &ip.payload()[..8]);
    assert_eq!(e.to_string(), "ESP(spi=0x00001000,seq=0x1), length 44");
    assert_eq!(
        EspRepr::parse(&EspPacket::new_unchecked(&[0u8; 8][..])),
        Err(Error::Malformed)
    );
    assert_eq!(EspPacket::new_checked(&[1u8; 7][..]), Err(Error::Truncated));
    assert_eq!(
        ip.to_string(),
        "IP 192.0.2.1 > 198.51.100.2: ESP (50), length 64, ttl 64, id 0x04d2"
    );
}

#[test]
fn esp_trailer() {
    // payload "hello", padding 1 2 3, pad length 3, next header 4 (IPv4).
    let pt = [b'h', b'e', b'l', b'l', b'o', 1, 2, 3, 3, 4];
    let t = EspTrailer::parse(&pt).unwrap();
    assert_eq!(
        t,
        EspTrailer {
            payload_len: 5,
            pad_len: 3,
            next_header: 4
        }
    );
    assert_eq!(t.payload(&pt), b"hello");
    assert_eq!(t.padding(&pt), &[1, 2, 3]);
    assert!(esp::padding_is_valid(t.padding(&pt)));
    assert_eq!(t.len(), 5);
    // Bad padding content is reported separately from a bad pad length.
    let bad = [b'h', 1, 3, 2, 4];
    let t = EspTrailer::parse(&bad).unwrap();
    assert!(!esp::padding_is_valid(t.padding(&bad)));
    assert!(esp::padding_is_valid(&[]));
    // Pad length larger than the data.
    assert_eq!(EspTrailer::parse(&[1, 2, 3, 4]), Err(Error::Malformed));
    assert_eq!(EspTrailer::parse(&[0, 41]).unwrap().payload_len, 0);
    assert_eq!(EspTrailer::parse(&[1, 1, 41]).unwrap().payload_len, 0);
    assert_eq!(EspTrailer::parse(&[1, 2, 41]), Err(Error::Malformed));
    assert_eq!(EspTrailer::parse(&[41]), Err(Error::Truncated));
    assert_eq!(EspTrailer::parse(&[]), Err(Error::Truncated));
    assert_eq!(esp::parse_trailer(&[0, 59]).unwrap().next_header, 59);

    // Padding computation: AES-CBC 16, AEAD 1, none 0.
    assert_eq!(esp::pad_len(5, 16), Ok(9));
    assert_eq!(esp::pad_len(14, 16), Ok(0));
    assert_eq!(esp::pad_len(2, 1), Ok(0));
    assert_eq!(esp::pad_len(0, 0), Ok(2));
    assert_eq!(esp::pad_len(3, 8), Ok(3));
    assert_eq!(esp::pad_len(100, 3), Ok(6)); // lcm(3, 4) = 12: 100 + 6 + 2 = 108
    assert_eq!(esp::pad_len(0, 1024), Err(Error::Malformed));
    let mut tr = [0u8; 11];
    esp::write_trailer(&mut tr, 41).unwrap();
    assert_eq!(tr, [1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 41]);
    assert_eq!(esp::write_trailer(&mut [0u8; 1], 4), Err(Error::Truncated));
    assert_eq!(
        esp::write_trailer(&mut [0u8; 258], 4),
        Err(Error::Malformed)
    );
}

// ---------------------------------------------------------------- AH

#[test]
fn ah_ipv4() {
    let b = h(IPV4_AH);
    let ip = Ipv4Packet::new_checked(&b[..]).unwrap();
    assert_eq!(ip.protocol(), protocol::AH);
    let a = AhPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(a.next_header(), protocol::UDP);
    assert_eq!(a.payload_len(), 4);
    assert_eq!(a.header_len(), 24);
    assert_eq!(a.reserved(), 0);
    assert_eq!(a.spi(), 0x200);
    assert_eq!(a.seq_no(), 5);
    assert_eq!(a.icv(), &(0x10u8..0x1c).collect::<Vec<_>>()[..]);
    let r = AhRepr::parse(&a, IpVersion::V4).unwrap();
    assert_eq!(
        r,
        AhRepr {
            next_header: protocol::UDP,
            spi: 0x200,
            seq: 5,
            icv_len: 12
        }
    );
    let mut out = [0u8; 24];
    r.emit(&mut AhPacket::new_unchecked(&mut out[..])).unwrap();
    assert_eq!(&out[..12], &ip.payload()[..12]);
    assert!(out[12..].iter().all(|&x| x == 0));
    let u = UdpPacket::new_checked(a.payload()).unwrap();
    assert!(u.verify_checksum(&IpAddr::V4(ip.src_addr()), &IpAddr::V4(ip.dst_addr())));
    assert_eq!(
        a.to_string(),
        "AH(spi=0x00000200,seq=0x5,sumlen=12): UDP (17)"
    );
    // 24 bytes is also 8-aligned.
    assert!(AhRepr::parse(&a, IpVersion::V6).is_ok());
    // Payload length 5 = 28 bytes: fine for IPv4, misaligned for IPv6.
    let mut odd = ip.payload().to_vec();
    odd[1] = 5;
    odd.extend_from_slice(&[0; 4]);
    let a = AhPacket::new_checked(&odd[..]).unwrap();
    assert!(AhRepr::parse(&a, IpVersion::V4).is_ok());
    assert_eq!(
        AhRepr::parse(&a, IpVersion::V6),
        Err(Error::BadHeaderLength)
    );
    // Payload length 0 and 1.
    odd[1] = 0;
    assert_eq!(AhPacket::new_checked(&odd[..]), Err(Error::BadHeaderLength));
    odd[1] = 1;
    assert_eq!(AhPacket::new_checked(&odd[..]).unwrap().icv().len(), 0);
    // Length past the buffer.
    odd[1] = 200;
    assert_eq!(AhPacket::new_checked(&odd[..]), Err(Error::Truncated));
}

#[test]
fn ah_ipv6_and_lengths() {
    let b = h(IPV6_AH);
    let ip = Ipv6Packet::new_checked(&b[..]).unwrap();
    let hs: Vec<_> = ip.ext_headers().map(|h| h.unwrap()).collect();
    assert_eq!(hs, vec![info(protocol::AH, 40, 32, protocol::ICMPV6)]);
    assert_eq!(ip.upper_layer().unwrap().offset, 72);
    let a = AhPacket::new_checked(ip.payload()).unwrap();
    let r = AhRepr::parse(&a, IpVersion::V6).unwrap();
    assert_eq!(r.icv_len, 20);
    assert_eq!(&a.icv()[16..], &[0; 4]);
    assert_eq!(ah::header_len_for(16, 0, IpVersion::V6), Ok(32));
    assert_eq!(ah::header_len_for(16, 0, IpVersion::V4), Ok(28));
    assert_eq!(ah::header_len_for(12, 0, IpVersion::V4), Ok(24));
    assert_eq!(ah::header_len_for(12, 0, IpVersion::V6), Ok(24));
    assert_eq!(ah::header_len_for(32, 0, IpVersion::V6), Ok(48));
    assert_eq!(ah::header_len_for(16, 8, IpVersion::V4), Ok(36)); // AES-GMAC
    assert_eq!(ah::header_len_for(16, 8, IpVersion::V6), Ok(40));
    assert_eq!(ah::header_len_for(0, 0, IpVersion::V6), Ok(16));
    assert_eq!(ah::header_len_for(1016, 0, IpVersion::V4), Ok(1028));
    assert_eq!(
        ah::header_len_for(1017, 0, IpVersion::V4),
        Err(Error::BadHeaderLength)
    );
    assert_eq!(ah::icv_field_len(16, 0, IpVersion::V6), Ok(20));
    let r = AhRepr { icv_len: 13, ..r };
    assert_eq!(
        r.emit(&mut AhPacket::new_unchecked(&mut [0u8; 64][..])),
        Err(Error::BadHeaderLength)
    );
}

// ---------------------------------------------------------------- UDP / NAT-T

#[test]
fn udp_checksum_rules() {
    let s4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let d4 = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
    let s6 = IpAddr::V6(v6("2001:db8::1"));
    let d6 = IpAddr::V6(v6("2001:db8::2"));
    let mut b = [0u8; 10];
    UdpRepr {
        src_port: 4500,
        dst_port: 4500,
        payload_len: 2,
    }
    .emit(&mut UdpPacket::new_unchecked(&mut b[..]))
    .unwrap();
    let p = UdpPacket::new_checked(&b[..]).unwrap();
    assert!(p.verify_checksum(&s4, &d4)); // zero = none over IPv4
    assert!(!p.verify_checksum(&s6, &d6)); // zero invalid over IPv6
                                           // Find a payload whose checksum computes to 0: it must be sent as 0xffff.
    let mut found = false;
    for v in 0..=u16::MAX {
        b[8..10].copy_from_slice(&v.to_be_bytes());
        let mut p = UdpPacket::new_unchecked(&mut b[..]);
        p.fill_checksum(&s6, &d6);
        if p.checksum() == 0xffff {
            assert!(p.verify_checksum(&s6, &d6));
            found = true;
            break;
        }
        assert_ne!(p.checksum(), 0);
    }
    assert!(found);
    // Length field errors.
    let mut bad = b;
    bad[4..6].copy_from_slice(&7u16.to_be_bytes());
    assert_eq!(UdpPacket::new_checked(&bad[..]), Err(Error::BadTotalLength));
    bad[4..6].copy_from_slice(&11u16.to_be_bytes());
    assert_eq!(UdpPacket::new_checked(&bad[..]), Err(Error::Truncated));
    let big = UdpRepr {
        src_port: 1,
        dst_port: 2,
        payload_len: 65528,
    };
    assert_eq!(
        big.emit(&mut UdpPacket::new_unchecked(&mut [0u8; 8][..])),
        Err(Error::BadTotalLength)
    );
}

#[test]
fn nat_t_classification() {
    let b = h(IPV4_NATT_ESP);
    let ip = Ipv4Packet::new_checked(&b[..]).unwrap();
    let u = UdpPacket::new_checked(ip.payload()).unwrap();
    assert_eq!(u.dst_port(), udpencap::NAT_T_PORT);
    assert_eq!(u.checksum(), 0);
    assert!(u.verify_checksum(&IpAddr::V4(ip.src_addr()), &IpAddr::V4(ip.dst_addr())));
    let c = udpencap::classify(u.payload()).unwrap();
    let UdpEncapPayload::Esp(esp_bytes) = c else {
        panic!("not ESP: {c:?}")
    };
    let e = EspRepr::parse(&EspPacket::new_checked(esp_bytes).unwrap()).unwrap();
    assert_eq!(
        e,
        EspRepr {
            spi: 0xc0ffee,
            seq: 42
        }
    );
    assert_eq!(udpencap::classify_datagram(ip.payload()), Ok(c));

    assert_eq!(udpencap::classify(&[0xff]), Ok(UdpEncapPayload::Keepalive));
    let ike = [0, 0, 0, 0, 0x11, 0x22];
    assert_eq!(
        udpencap::classify(&ike),
        Ok(UdpEncapPayload::Ike(&ike[4..]))
    );
    assert_eq!(udpencap::classify(&[]), Err(Error::Truncated));
    assert_eq!(udpencap::classify(&[0xfe]), Err(Error::Truncated));
    assert_eq!(udpencap::classify(&[0, 0, 0, 0]), Err(Error::Truncated));
    assert_eq!(
        udpencap::classify(&[1, 2, 3, 4, 5, 6, 7]),
        Err(Error::Truncated)
    );
    assert_eq!(udpencap::classify(&[0xff, 0xff]), Err(Error::Truncated));
    let esp8 = [0, 0, 0, 1, 0, 0, 0, 1];
    assert_eq!(udpencap::classify(&esp8), Ok(UdpEncapPayload::Esp(&esp8)));

    let mut buf = [0u8; 9];
    assert_eq!(
        udpencap::emit_keepalive_datagram(&mut buf, 4500, 4500),
        Ok(9)
    );
    assert_eq!(buf, [0x11, 0x94, 0x11, 0x94, 0, 9, 0, 0, 0xff]);
    assert_eq!(
        udpencap::classify_datagram(&buf),
        Ok(UdpEncapPayload::Keepalive)
    );
    let mut m = [9u8; 6];
    assert_eq!(udpencap::emit_non_esp_marker(&mut m), Ok(4));
    assert_eq!(m, [0, 0, 0, 0, 9, 9]);
    let mut hdr = [0u8; 8];
    assert_eq!(
        udpencap::emit_esp_udp_header(&mut hdr, 4500, 4501, 100),
        Ok(8)
    );
    assert_eq!(hdr, [0x11, 0x94, 0x11, 0x95, 0, 108, 0, 0]);
    assert_eq!(
        c.to_string(),
        "UDP-encap ESP(spi=0x00c0ffee,seq=0x2a), length 32"
    );
}

// ---------------------------------------------------------------- IP dispatch

#[test]
fn ip_dispatch_on_all_samples() {
    let expect: &[(&str, IpVersion, u8, usize, usize)] = &[
        ("IPV4_UDP", IpVersion::V4, protocol::UDP, 20, 44),
        ("IPV4_OPTS_ICMP", IpVersion::V4, protocol::ICMP, 36, 52),
        ("IPV6_CHAIN", IpVersion::V6, protocol::UDP, 104, 120),
        ("IPV6_RT2", IpVersion::V6, protocol::ICMPV6, 88, 104),
        ("IPV6_ICMPV6", IpVersion::V6, protocol::ICMPV6, 40, 64),
        ("IPV4_ESP", IpVersion::V4, protocol::ESP, 20, 64),
        ("IPV4_AH", IpVersion::V4, protocol::AH, 20, 56),
        ("IPV6_AH", IpVersion::V6, protocol::ICMPV6, 72, 96),
        ("IPV4_NATT_ESP", IpVersion::V4, protocol::UDP, 20, 60),
    ];
    for &(name, ver, proto, upper_off, total) in expect {
        let hexs = IP_SAMPLES.iter().find(|s| s.0 == name).unwrap().1;
        let b = h(hexs);
        let p = IpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), ver, "{name}");
        let u = p.upper_layer().unwrap();
        assert_eq!(u.protocol, proto, "{name}");
        assert_eq!(u.offset, upper_off, "{name}");
        assert_eq!(b[u.nh_field], proto, "{name}");
        assert_eq!(p.total_len(), total, "{name}");
        assert_eq!(p.payload_range(), p.header_len()..total, "{name}");
        assert_eq!(p.payload().len(), total - p.header_len(), "{name}");
        let r = IpRepr::parse(&p).unwrap();
        assert_eq!(r.src_addr(), p.src_addr(), "{name}");
        assert_eq!(r.dst_addr(), p.dst_addr(), "{name}");
        assert_eq!(r.payload_len(), total - r.buffer_len(), "{name}");
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut out).unwrap();
        assert_eq!(&out[..], &b[..r.buffer_len()], "{name}");
        assert!(!p.to_string().is_empty());
        assert_eq!(crate::ip::announced_len(&b), Ok(total));
    }
    let b = h(IPV4_UDP);
    let p = IpPacket::new_checked(&b[..]).unwrap();
    assert_eq!(p.src_addr(), IpAddr::V4(Ipv4Addr::new(192, 168, 0, 1)));
    assert_eq!(p.is_fragment(), Ok(false));
    assert_eq!(
        p.to_string(),
        "IP 192.168.0.1 > 192.168.0.199: UDP (17), length 44, ttl 64, id 0x1c46, flags [DF]"
    );
    let b = h(IPV6_CHAIN);
    let p = IpPacket::new_checked(&b[..]).unwrap();
    assert_eq!(p.is_fragment(), Ok(true));
    assert_eq!(p.hop_limit(), 64);
}

#[test]
fn error_display() {
    assert_eq!(Error::Truncated.to_string(), "truncated packet");
    assert_eq!(
        Error::TooManyExtensionHeaders.to_string(),
        "too many IPv6 extension headers"
    );
}
