//! The ACQUIRE side of a gateway: inner selectors become traffic selectors.
#![allow(clippy::unwrap_used)]

use super::*;
use ipsec_pfkey::wire::Address;

fn inner(a: &str, len: u8, proto: u8, port: u16) -> Address {
    Address {
        proto,
        prefixlen: len,
        addr: SocketAddr::new(a.parse().unwrap(), port),
    }
}

fn acquire(src: Option<Address>, dst: Option<Address>) -> Message {
    let mut m = Message::new(SADB_ACQUIRE, SADB_SATYPE_ESP);
    m.src = Some(Address::new("192.0.2.1:0".parse().unwrap()));
    m.dst = Some(Address::new("192.0.2.2:0".parse().unwrap()));
    m.inner_src = src;
    m.inner_dst = dst;
    m
}

#[test]
fn inner_selectors_are_the_traffic_selectors() {
    let m = acquire(
        Some(inner("10.1.0.0", 24, 0, 0)),
        Some(inner("10.2.0.0", 16, 6, 443)),
    );
    let (l, r) = acquire_selectors(&m).unwrap();
    assert_eq!(
        (l.start, l.end, l.ip_protocol, l.start_port, l.end_port),
        (
            "10.1.0.0".parse().unwrap(),
            "10.1.0.255".parse().unwrap(),
            0,
            0,
            65535
        )
    );
    assert_eq!(
        (r.start, r.end, r.ip_protocol, r.start_port, r.end_port),
        (
            "10.2.0.0".parse().unwrap(),
            "10.2.255.255".parse().unwrap(),
            6,
            443,
            443
        )
    );
    let m6 = acquire(
        Some(inner("fd00:1::", 64, 0, 0)),
        Some(inner("fd00:2::", 200, 0, 0)),
    );
    let (l, r) = acquire_selectors(&m6).unwrap();
    assert_eq!(
        l.end,
        "fd00:1::ffff:ffff:ffff:ffff".parse::<IpAddr>().unwrap()
    );
    // A prefix length beyond the address is taken as the host.
    assert_eq!((r.start, r.end), (r.start, "fd00:2::".parse().unwrap()));
}

#[test]
fn without_both_inner_selectors_there_are_none() {
    assert!(acquire_selectors(&acquire(None, None)).is_none());
    assert!(acquire_selectors(&acquire(Some(inner("10.1.0.0", 24, 0, 0)), None)).is_none());
}

#[test]
fn the_inner_selector_is_the_one_holding_the_others() {
    let ts = |a: &str, b: &str| TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: 65535,
        start: a.parse().unwrap(),
        end: b.parse().unwrap(),
    };
    let host = ts("10.1.0.2", "10.1.0.2");
    let net = ts("10.1.0.0", "10.1.0.255");
    let other = ts("10.9.0.0", "10.9.0.255");
    let pfx = |a: &str, len| {
        Some(ipsec_core::sa::Prefix {
            addr: a.parse().unwrap(),
            len,
        })
    };
    assert_eq!(inner_selector(&[net]), pfx("10.1.0.0", 24));
    assert_eq!(inner_selector(&[host, net]), pfx("10.1.0.0", 24));
    assert_eq!(inner_selector(&[net, host]), pfx("10.1.0.0", 24));
    // Two nets, neither inside the other: no one prefix.
    assert_eq!(inner_selector(&[net, other]), None);
    // A range that is not a prefix.
    assert_eq!(inner_selector(&[ts("10.1.0.1", "10.1.0.2")]), None);
    assert_eq!(inner_selector(&[]), None);
}

#[test]
fn a_pair_serves_only_selectors_inside_its_own() {
    let ts = |a: &str, b: &str| {
        vec![TrafficSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: a.parse().unwrap(),
            end: b.parse().unwrap(),
        }]
    };
    let (net24, net16) = (ts("10.1.5.0", "10.1.5.255"), ts("10.1.0.0", "10.1.255.255"));
    let peer = ts("10.2.0.0", "10.2.255.255");
    // A pair for 10.1.5.0/24 does not carry an ACQUIRE for 10.1.0.0/16 (they overlap).
    assert!(!pair_serves((&net24, &peer), (&net16, &peer)));
    assert!(pair_serves((&net16, &peer), (&net24, &peer)));
    assert!(pair_serves((&net24, &peer), (&net24, &peer)));
    assert!(!pair_serves((&net16, &net24), (&net16, &peer)));
}

#[test]
fn an_acquire_without_a_keyable_proposal_offers_nothing() {
    let text = "{\n label \"g\"\n auth_method preshared\n local_addr 192.0.2.1\n remote_addr 192.0.2.2\n}\n";
    let cfg = crate::config::parse_config("t", text).unwrap();
    let rule = &cfg.rules[0];
    let mut m = acquire(None, None);
    assert!(acquire_offer(&m, rule, false).is_empty(), "no proposal");
    // Only an algorithm the core cannot key (3DES, PF_KEY 3).
    m.proposal = Some(ipsec_pfkey::wire::Proposal {
        replay: 32,
        combs: vec![ipsec_pfkey::wire::Comb {
            encrypt: 3,
            auth: 0,
            ..Default::default()
        }],
    });
    assert!(acquire_offer(&m, rule, false).is_empty(), "unkeyable");
    let gcm = ipsec_crypto::encr_by_ikev2(20).unwrap().pfkey;
    m.proposal = Some(ipsec_pfkey::wire::Proposal {
        replay: 32,
        combs: vec![ipsec_pfkey::wire::Comb {
            encrypt: gcm,
            encrypt_minbits: 256,
            encrypt_maxbits: 256,
            ..Default::default()
        }],
    });
    let v = acquire_offer(&m, rule, false);
    assert_eq!((v[0].encr, v[0].key_bits), (20, 256));
}
