//! Every prefix of every sample is rejected with an error, never a panic.

use super::samples::*;
use crate::ah::AhPacket;
use crate::fuzz_support;
use crate::icmpv4::{Icmpv4Packet, Icmpv4Repr};
use crate::icmpv6::{Icmpv6Packet, Icmpv6Repr};
use crate::ip::{IpPacket, IpVersion};
use crate::ipv4::{Ipv4Packet, Ipv4Repr};
use crate::ipv6::{ExtChain, Ipv6Packet};
use crate::udp::UdpPacket;
use crate::Error;

#[test]
fn ip_samples_truncated_at_every_offset() {
    for (name, hexs) in IP_SAMPLES {
        let b = h(hexs);
        assert!(IpPacket::new_checked(&b[..]).is_ok(), "{name}");
        for n in 0..b.len() {
            let t = &b[..n];
            assert_eq!(
                IpPacket::new_checked(t).err(),
                Some(Error::Truncated),
                "{name} at {n}"
            );
            // Every other entry point fails (or at least does not panic) too.
            let _ = Ipv4Repr::parse(&Ipv4Packet::new_unchecked(t));
            let _ = Ipv6Packet::new_unchecked(t).upper_layer();
            let _ = ExtChain::parse(t);
            let _ = crate::ipv6::unfragmentable_len(t);
            assert_eq!(fuzz_support::wire_ip(t), Ok(()), "{name} at {n}");
            assert_eq!(fuzz_support::wire_esp_ah(t), Ok(()), "{name} at {n}");
            assert_eq!(fuzz_support::wire_udpencap_icmp(t), Ok(()), "{name} at {n}");
        }
        assert_eq!(fuzz_support::wire_ip(&b), Ok(()), "{name}");
    }
}

#[test]
fn ipv6_chain_truncated_inside_payload() {
    // Keep the buffer but shrink the payload length: the chain walk must fail cleanly at
    // every length that cuts a header, and never report an upper layer past the end.
    for (name, hexs) in IP_SAMPLES {
        let b = h(hexs);
        if IpVersion::of(&b) != Ok(IpVersion::V6) {
            continue;
        }
        let full = b.len() - 40;
        for pl in 0..full {
            let mut t = b.clone();
            t[4..6].copy_from_slice(&(pl as u16).to_be_bytes());
            let p = Ipv6Packet::new_checked(&t[..]).unwrap();
            match p.upper_layer() {
                Ok(u) => assert!(u.offset <= 40 + pl, "{name} pl {pl}"),
                Err(e) => assert_eq!(e, Error::Truncated, "{name} pl {pl}"),
            }
            assert_eq!(fuzz_support::wire_ip(&t), Ok(()), "{name} pl {pl}");
        }
    }
}

#[test]
fn upper_layer_samples_truncated() {
    // Headers with a length field: every prefix fails the length check.
    let udp = &h(IPV4_UDP)[20..];
    for n in 0..udp.len() {
        assert!(UdpPacket::new_checked(&udp[..n]).is_err(), "udp at {n}");
    }
    let ah = &h(IPV4_AH)[20..44];
    for n in 0..ah.len() {
        assert!(AhPacket::new_checked(&ah[..n]).is_err(), "ah at {n}");
    }
    // ICMP has no length field: short prefixes fail the length check, longer ones the
    // checksum.
    for hexs in [ICMP_ECHO, ICMP_FRAG_NEEDED] {
        let b = h(hexs);
        for n in 0..b.len() {
            let p = Icmpv4Packet::new_unchecked(&b[..n]);
            assert!(Icmpv4Repr::parse(&p).is_err(), "icmp at {n}");
        }
    }
    let b = h(ICMPV6_ECHO);
    let s = "fe80::1".parse().unwrap();
    let d = "fe80::2".parse().unwrap();
    assert!(Icmpv6Repr::parse(&Icmpv6Packet::new_unchecked(&b[..]), &s, &d).is_ok());
    for n in 0..b.len() {
        let p = Icmpv6Packet::new_unchecked(&b[..n]);
        assert!(Icmpv6Repr::parse(&p, &s, &d).is_err(), "icmp6 at {n}");
    }
}
