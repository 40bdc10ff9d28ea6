//! The wire codec: byte layouts, framing rules with their diagnostics, and properties
//! (emit → parse identity, canonical output with zeroed reserved bytes, no panics).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::single_range_in_vec_init
)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use ipsec_pfkey::consts::*;
use ipsec_pfkey::wire::*;
use ipsec_pfkey::Diagnostic as D;
use proptest::prelude::*;

fn v4(s: &str, port: u16) -> Address {
    Address::new(SocketAddr::V4(SocketAddrV4::new(s.parse().unwrap(), port)))
}

fn hdr(t: u8, satype: u8, words: u16) -> Vec<u8> {
    let mut b = vec![PF_KEY_V2, t, 0, satype];
    b.extend_from_slice(&words.to_ne_bytes());
    b.extend_from_slice(&0u16.to_ne_bytes());
    b.extend_from_slice(&7u32.to_ne_bytes());
    b.extend_from_slice(&99u32.to_ne_bytes());
    b
}

fn ext_hdr(words: u16, t: u16) -> Vec<u8> {
    let mut b = words.to_ne_bytes().to_vec();
    b.extend_from_slice(&t.to_ne_bytes());
    b
}

fn set_len(b: &mut [u8]) {
    let w = (b.len() / 8) as u16;
    b[4..6].copy_from_slice(&w.to_ne_bytes());
}

fn err(b: &[u8]) -> PfkeyError {
    Message::parse(b).expect_err("should be refused")
}

#[test]
fn getspi_bytes_match_the_c_layout() {
    let mut m = Message::new(SADB_GETSPI, SADB_SATYPE_ESP);
    m.seq = 7;
    m.pid = 99;
    m.src = Some(v4("10.0.0.1", 500));
    m.dst = Some(v4("10.0.0.2", 0));
    m.spirange = Some(SpiRange {
        min: 0x100,
        max: 0x1234_5678,
    });
    let b = m.emit().unwrap();
    let mut want = hdr(SADB_GETSPI, SADB_SATYPE_ESP, 10);
    // SRC: sadb_address (3 words) + sockaddr_in
    want.extend(ext_hdr(3, SADB_EXT_ADDRESS_SRC));
    want.extend([0, 0, 0, 0]);
    want.extend(AF_INET.to_ne_bytes());
    want.extend(500u16.to_be_bytes());
    want.extend([10, 0, 0, 1]);
    want.extend([0; 8]);
    want.extend(ext_hdr(3, SADB_EXT_ADDRESS_DST));
    want.extend([0, 0, 0, 0]);
    want.extend(AF_INET.to_ne_bytes());
    want.extend([0, 0, 10, 0, 0, 2]);
    want.extend([0; 8]);
    want.extend(ext_hdr(2, SADB_EXT_SPIRANGE));
    want.extend(0x100u32.to_be_bytes());
    want.extend(0x1234_5678u32.to_be_bytes());
    want.extend([0; 4]);
    assert_eq!(b, want);
    assert_eq!(Message::parse(&b).unwrap(), m);
}

#[test]
fn sa_key_and_ipv6_address_layouts() {
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_AH);
    m.sa = Some(SaExt {
        spi: 0x0102_0304,
        replay: 64,
        state: SADB_SASTATE_MATURE,
        auth: 5,
        encrypt: 0,
        flags: SADB_X_SAFLAGS_INBOUND,
    });
    m.dst = Some(Address {
        proto: 6,
        prefixlen: 128,
        addr: SocketAddr::V6(SocketAddrV6::new(
            "2001:db8::9".parse().unwrap(),
            443,
            0x000a_bcde,
            3,
        )),
    });
    m.key_auth = Key::with_bits(&[0xaa, 0xbb, 0xe0], 19);
    let b = m.emit().unwrap();
    // header 16 + SA 16 + address 40 + key 16
    assert_eq!(b.len(), 88);
    assert_eq!(
        &b[16..20],
        &[&2u16.to_ne_bytes()[..], &1u16.to_ne_bytes()[..]].concat()[..]
    );
    assert_eq!(&b[20..24], &[1, 2, 3, 4]);
    assert_eq!(&b[24..28], &[64, 1, 5, 0]);
    assert_eq!(&b[28..32], &SADB_X_SAFLAGS_INBOUND.to_ne_bytes());
    let a = &b[32..72];
    assert_eq!(&a[0..2], &5u16.to_ne_bytes());
    assert_eq!(&a[4..8], &[6, 128, 0, 0]);
    assert_eq!(&a[8..10], &AF_INET6.to_ne_bytes());
    assert_eq!(&a[10..12], &443u16.to_be_bytes());
    assert_eq!(&a[12..16], &0x000a_bcdeu32.to_be_bytes());
    assert_eq!(
        &a[16..32],
        &"2001:db8::9".parse::<Ipv6Addr>().unwrap().octets()
    );
    assert_eq!(&a[32..36], &3u32.to_ne_bytes());
    assert_eq!(&a[36..40], &[0; 4]);
    let k = &b[72..88];
    assert_eq!(&k[0..2], &2u16.to_ne_bytes());
    assert_eq!(&k[4..6], &19u16.to_ne_bytes());
    assert_eq!(&k[8..16], &[0xaa, 0xbb, 0xe0, 0, 0, 0, 0, 0]);
    let back = Message::parse(&b).unwrap();
    assert_eq!(back, m);
    assert!(!format!("{back:?}").contains("aa"), "Debug shows key bytes");
    assert!(format!("{back:?}").contains("19 bits redacted"));
}

#[test]
fn framing_errors_and_their_diagnostics() {
    let ok = {
        let mut m = Message::new(SADB_DELETE, SADB_SATYPE_ESP);
        m.sa = Some(SaExt {
            spi: 0x1000,
            ..SaExt::default()
        });
        m.dst = Some(v4("10.0.0.2", 0));
        m.emit().unwrap()
    };
    assert!(Message::parse(&ok).is_ok());

    // Too short, length not matching, not a multiple of 8.
    assert_eq!(err(&ok[..8]).errno, EMSGSIZE);
    assert_eq!(err(&ok[..ok.len() - 8]).errno, EMSGSIZE);
    let mut longer = ok.clone();
    longer.extend([0; 4]);
    assert_eq!(err(&longer).errno, EMSGSIZE);
    // Bad version.
    let mut b = ok.clone();
    b[0] = 1;
    assert_eq!(err(&b), PfkeyError::invalid(D::None, "not PF_KEY_V2"));
    // Unknown message types.
    for t in [0u8, 16, 255] {
        let mut b = ok.clone();
        b[1] = t;
        assert_eq!(err(&b).diagnostic, D::UnknownMsg, "type {t}");
    }
    // Extension of length 0, and one running past the end.
    let mut b = ok.clone();
    b[16..18].copy_from_slice(&0u16.to_ne_bytes());
    assert_eq!(err(&b).diagnostic, D::BadExtlen);
    let mut b = ok.clone();
    b[16..18].copy_from_slice(&9u16.to_ne_bytes());
    assert_eq!(err(&b).diagnostic, D::BadExtlen);
    // Unknown extension types: 0, 28, 239, 241.
    for t in [0u16, 28, 239, 241, 0xffff] {
        let mut b = ok.clone();
        b[18..20].copy_from_slice(&t.to_ne_bytes());
        assert_eq!(err(&b).diagnostic, D::UnknownExt, "ext {t}");
    }
    // Duplicates: SA, DST.
    let mut dup = ok.clone();
    dup.extend_from_slice(&ok[16..32]);
    set_len(&mut dup);
    assert_eq!(err(&dup).diagnostic, D::DuplicateSa);
    let mut dup = ok.clone();
    dup.extend_from_slice(&ok[32..56]);
    set_len(&mut dup);
    assert_eq!(err(&dup).diagnostic, D::DuplicateDst);
    // SA extension of the wrong size.
    let mut b = ok.clone();
    b[16..18].copy_from_slice(&3u16.to_ne_bytes());
    assert_eq!(err(&b).diagnostic, D::MalformedSa);
    // Address: wrong family, reserved field, sin_zero, wrong length for the family.
    let mut b = ok.clone();
    b[40..42].copy_from_slice(&26u16.to_ne_bytes());
    assert_eq!(err(&b).diagnostic, D::BadDstAf);
    let mut b = ok.clone();
    b[38] = 1;
    assert_eq!(err(&b).diagnostic, D::MalformedDst);
    let mut b = ok.clone();
    b[55] = 1;
    assert_eq!(err(&b).diagnostic, D::MalformedDst);
    let mut b = ok.clone();
    b[40..42].copy_from_slice(&AF_INET6.to_ne_bytes());
    assert_eq!(err(&b).diagnostic, D::MalformedDst);
    let mut b = ok.clone();
    b[37] = 33;
    assert_eq!(err(&b).diagnostic, D::MalformedDst);
}

fn key_msg(t: u16, bits: u16, data: &[u8], words: u16) -> Vec<u8> {
    let mut b = hdr(SADB_ADD, SADB_SATYPE_ESP, 0);
    b.extend(ext_hdr(words, t));
    b.extend(bits.to_ne_bytes());
    b.extend([0, 0]);
    b.extend(data);
    set_len(&mut b);
    b
}

#[test]
fn key_extension_rules() {
    let good = key_msg(SADB_EXT_KEY_ENCRYPT, 16, &[1, 2, 0, 0, 0, 0, 0, 0], 2);
    assert!(Message::parse(&good).is_ok());
    // zero bits, all-zero key, bits beyond the extension, padding not zero
    for (t, d) in [
        (SADB_EXT_KEY_ENCRYPT, D::MalformedEkey),
        (SADB_EXT_KEY_AUTH, D::MalformedAkey),
    ] {
        assert_eq!(err(&key_msg(t, 0, &[1; 8], 2)).diagnostic, d);
        assert_eq!(err(&key_msg(t, 64, &[0; 8], 2)).diagnostic, d);
        assert_eq!(err(&key_msg(t, 72, &[1; 8], 2)).diagnostic, d);
        assert_eq!(
            err(&key_msg(t, 8, &[1, 0, 0, 0, 0, 0, 0, 1], 2)).diagnostic,
            d
        );
        assert_eq!(err(&key_msg(t, 8, &[1; 16], 3)).diagnostic, d);
    }
    // Duplicate keys.
    let mut b = key_msg(SADB_EXT_KEY_AUTH, 8, &[1, 0, 0, 0, 0, 0, 0, 0], 2);
    let ext = b[16..32].to_vec();
    b.extend(ext);
    set_len(&mut b);
    assert_eq!(err(&b).diagnostic, D::DuplicateAkey);
    let mut b = key_msg(SADB_EXT_KEY_ENCRYPT, 8, &[1, 0, 0, 0, 0, 0, 0, 0], 2);
    let ext = b[16..32].to_vec();
    b.extend(ext);
    set_len(&mut b);
    assert_eq!(err(&b).diagnostic, D::DuplicateEkey);
}

#[test]
fn other_extension_rules() {
    // Inverted SPI range.
    let mut b = hdr(SADB_GETSPI, SADB_SATYPE_ESP, 0);
    b.extend(ext_hdr(2, SADB_EXT_SPIRANGE));
    b.extend(9u32.to_be_bytes());
    b.extend(8u32.to_be_bytes());
    b.extend([0; 4]);
    set_len(&mut b);
    assert_eq!(err(&b).diagnostic, D::MalformedRange);
    // Range reserved word, and a duplicate range.
    let mut r = b.clone();
    r[20..24].copy_from_slice(&1u32.to_be_bytes());
    r[31] = 1;
    assert_eq!(err(&r).diagnostic, D::MalformedRange);
    r[31] = 0;
    let e = r[16..32].to_vec();
    r.extend(e);
    set_len(&mut r);
    assert_eq!(err(&r).diagnostic, D::DuplicateRange);
    // Lifetime of the wrong length.
    let mut b = hdr(SADB_UPDATE, SADB_SATYPE_ESP, 0);
    b.extend(ext_hdr(3, SADB_EXT_LIFETIME_HARD));
    b.extend([0; 20]);
    set_len(&mut b);
    assert_eq!(err(&b).diagnostic, D::BadExtlen);
    // Identity without NUL, and garbage after it.
    let mut b = hdr(SADB_ADD, SADB_SATYPE_ESP, 0);
    b.extend(ext_hdr(3, SADB_EXT_IDENTITY_SRC));
    b.extend(SADB_IDENTTYPE_FQDN.to_ne_bytes());
    b.extend([0; 10]);
    b.extend(*b"abcdefgh");
    set_len(&mut b);
    assert_eq!(err(&b).errno, EINVAL);
    b[36..40].copy_from_slice(&[0, 0, b'x', 0]);
    assert_eq!(err(&b).errno, EINVAL);
    b[38] = 0;
    let m = Message::parse(&b).unwrap();
    assert_eq!(m.ident_src.unwrap().value, b"abcd".to_vec());
    // NAT-T duplicates and families.
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_ESP);
    m.natt_loc = Some(v4("1.2.3.4", 4500));
    m.natt_rem = Some(v4("1.2.3.5", 4500));
    let b = m.emit().unwrap();
    let mut d = b.clone();
    d.extend_from_slice(&b[16..40]);
    set_len(&mut d);
    assert_eq!(err(&d).diagnostic, D::DuplicateNattLoc);
    let mut d = b.clone();
    d.extend_from_slice(&b[40..64]);
    set_len(&mut d);
    assert_eq!(err(&d).diagnostic, D::DuplicateNattRem);
    let mut d = b.clone();
    d[24..26].copy_from_slice(&1u16.to_ne_bytes());
    assert_eq!(err(&d).diagnostic, D::BadNattLocAf);
    let mut d = b.clone();
    d[48..50].copy_from_slice(&1u16.to_ne_bytes());
    assert_eq!(err(&d).diagnostic, D::BadNattRemAf);
    let mut d = b.clone();
    d[22] = 1;
    assert_eq!(err(&d).diagnostic, D::MalformedNattLoc);
    let mut d = b.clone();
    d[46] = 1;
    assert_eq!(err(&d).diagnostic, D::MalformedNattRem);
    // Inner addresses: families, prefix lengths, duplicates.
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_ESP);
    m.inner_src = Some(v4("10.0.0.0", 0));
    m.inner_dst = Some(v4("10.1.0.0", 0));
    let b = m.emit().unwrap();
    let mut d = b.clone();
    d[21] = 33;
    assert_eq!(err(&d).diagnostic, D::PrefixInnerSrc);
    let mut d = b.clone();
    d[45] = 33;
    assert_eq!(err(&d).diagnostic, D::PrefixInnerDst);
    let mut d = b.clone();
    d[24..26].copy_from_slice(&7u16.to_ne_bytes());
    assert_eq!(err(&d).diagnostic, D::BadInnerSrcAf);
    let mut d = b.clone();
    d[48..50].copy_from_slice(&7u16.to_ne_bytes());
    assert_eq!(err(&d).diagnostic, D::BadInnerDstAf);
    let mut d = b.clone();
    d[22] = 1;
    assert_eq!(err(&d).diagnostic, D::MalformedInnerSrc);
    let mut d = b.clone();
    d[46] = 1;
    assert_eq!(err(&d).diagnostic, D::MalformedInnerDst);
    let mut d = b.clone();
    d.extend_from_slice(&b[16..40]);
    set_len(&mut d);
    assert_eq!(err(&d).diagnostic, D::DuplicateInnerSrc);
    let mut d = b.clone();
    d.extend_from_slice(&b[40..64]);
    set_len(&mut d);
    assert_eq!(err(&d).diagnostic, D::DuplicateInnerDst);
    // Source address problems.
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_ESP);
    m.src = Some(v4("10.0.0.1", 0));
    let b = m.emit().unwrap();
    let mut d = b.clone();
    d[24..26].copy_from_slice(&7u16.to_ne_bytes());
    assert_eq!(err(&d).diagnostic, D::BadSrcAf);
    let mut d = b.clone();
    d[22] = 1;
    assert_eq!(err(&d).diagnostic, D::MalformedSrc);
    let mut d = b.clone();
    d.extend_from_slice(&b[16..40]);
    set_len(&mut d);
    assert_eq!(err(&d).diagnostic, D::DuplicateSrc);
    // Ironswan extension: unknown flag.
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_ESP);
    m.ironswan_sa = Some(IronswanSa {
        replay_window: 1024,
        flags: IRONSWAN_SA_ESN,
        ..IronswanSa::default()
    });
    let b = m.emit().unwrap();
    assert_eq!(&b[18..20], &240u16.to_ne_bytes());
    let mut d = b.clone();
    d[24..28].copy_from_slice(&0x40u32.to_ne_bytes());
    assert_eq!(err(&d).diagnostic, D::BadSaflags);
}

// ---------------------------------------------------------------------------------------
// Properties.

fn arb_addr() -> impl Strategy<Value = Address> {
    let v4 = (any::<[u8; 4]>(), any::<u16>(), 0u8..=32)
        .prop_map(|(a, p, l)| (SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(a), p)), l));
    let v6 = (
        any::<[u8; 16]>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        0u8..=128,
    )
        .prop_map(|(a, p, f, s, l)| {
            (
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(a), p, f, s)),
                l,
            )
        });
    (prop_oneof![v4, v6], any::<u8>()).prop_map(|((addr, prefixlen), proto)| Address {
        proto,
        prefixlen,
        addr,
    })
}

fn arb_lifetime() -> impl Strategy<Value = Lifetime> {
    (any::<u32>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(a, b, c, d)| Lifetime {
        allocations: a,
        bytes: b,
        addtime: c,
        usetime: d,
    })
}

fn arb_key() -> impl Strategy<Value = Key> {
    (proptest::collection::vec(any::<u8>(), 1..70), 0u16..8).prop_filter_map(
        "all-zero key",
        |(mut d, drop)| {
            d[0] |= 0x80;
            let bits = (d.len() * 8) as u16 - drop;
            Key::with_bits(&d, bits)
        },
    )
}

fn arb_ident() -> impl Strategy<Value = Identity> {
    (
        any::<u16>(),
        any::<u64>(),
        proptest::collection::vec(1u8..=255, 0..40),
    )
        .prop_map(|(kind, id, value)| Identity { kind, id, value })
}

fn arb_sens() -> impl Strategy<Value = Sensitivity> {
    (
        any::<(u32, u8, u8, u32)>(),
        proptest::collection::vec(any::<u64>(), 0..4),
        proptest::collection::vec(any::<u64>(), 0..4),
    )
        .prop_map(|((dpd, sl, il, flags), s, i)| Sensitivity {
            dpd,
            sens_level: sl,
            integ_level: il,
            flags,
            sens_bitmap: s,
            integ_bitmap: i,
        })
}

fn arb_comb() -> impl Strategy<Value = Comb> {
    (
        any::<(u8, u8, u16, u16, u16, u16, u16, u8)>(),
        any::<(u32, u32, u64, u64, u64, u64, u64, u64)>(),
    )
        .prop_map(|(a, b)| Comb {
            auth: a.0,
            encrypt: a.1,
            flags: a.2,
            auth_minbits: a.3,
            auth_maxbits: a.4,
            encrypt_minbits: a.5,
            encrypt_maxbits: a.6,
            encrypt_saltbits: a.7,
            soft_allocations: b.0,
            hard_allocations: b.1,
            soft_bytes: b.2,
            hard_bytes: b.3,
            soft_addtime: b.4,
            hard_addtime: b.5,
            soft_usetime: b.6,
            hard_usetime: b.7,
        })
}

fn arb_eprop() -> impl Strategy<Value = EProp> {
    let desc = any::<(u8, u8, u8, u8, u16, u16)>().prop_map(|d| AlgDesc {
        satype: d.0,
        algtype: d.1,
        alg: d.2,
        saltbits: d.3,
        minbits: d.4,
        maxbits: d.5,
    });
    let ecomb = (
        any::<(u16, u32, u32, u64, u64, u64, u64, u64, u64)>(),
        proptest::collection::vec(desc, 0..4),
    )
        .prop_map(|(c, algs)| EComb {
            flags: c.0,
            soft_allocations: c.1,
            hard_allocations: c.2,
            soft_bytes: c.3,
            hard_bytes: c.4,
            soft_addtime: c.5,
            hard_addtime: c.6,
            soft_usetime: c.7,
            hard_usetime: c.8,
            algs,
        });
    (any::<u8>(), proptest::collection::vec(ecomb, 0..3))
        .prop_map(|(replay, ecombs)| EProp { replay, ecombs })
}

fn arb_supported() -> impl Strategy<Value = Supported> {
    proptest::collection::vec(any::<(u8, u8, u16, u16, u8, u8)>(), 0..6).prop_map(|v| Supported {
        algs: v
            .into_iter()
            .map(|a| Alg {
                id: a.0,
                ivlen: a.1,
                minbits: a.2,
                maxbits: a.3,
                increment: a.4,
                saltbits: a.5,
            })
            .collect(),
    })
}

fn arb_ironswan() -> impl Strategy<Value = IronswanSa> {
    (
        any::<u32>(),
        0u32..=IRONSWAN_SA_ALL_FLAGS,
        any::<(u16, u16, u8)>(),
    )
        .prop_map(|(w, f, u)| {
            let bound = f & IRONSWAN_SA_UNIQUE_BINDING != 0;
            IronswanSa {
                replay_window: w,
                flags: f,
                unique_sport: if bound { u.0 } else { 0 },
                unique_dport: if bound { u.1 } else { 0 },
                unique_proto: if bound { u.2 } else { 0 },
            }
        })
}

fn arb_message() -> impl Strategy<Value = Message> {
    let header = (
        1u8..=15,
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
    );
    let sa = proptest::option::of(any::<(u32, u8, u8, u8, u8, u32)>().prop_map(|s| SaExt {
        spi: s.0,
        replay: s.1,
        state: s.2,
        auth: s.3,
        encrypt: s.4,
        flags: s.5,
    }));
    let lifetimes = || proptest::option::weighted(0.3, arb_lifetime());
    let addrs = || proptest::option::weighted(0.3, arb_addr());
    let part1 = (
        sa,
        lifetimes(),
        lifetimes(),
        lifetimes(),
        lifetimes(),
        addrs(),
        addrs(),
        addrs(),
        addrs(),
        addrs(),
        addrs(),
    );
    let part2 = (
        proptest::option::weighted(0.3, arb_key()),
        proptest::option::weighted(0.3, arb_key()),
        proptest::option::weighted(0.2, arb_ident()),
        proptest::option::weighted(0.2, arb_ident()),
        proptest::option::weighted(0.2, arb_sens()),
        proptest::option::weighted(0.2, arb_sens()),
        proptest::option::weighted(
            0.2,
            (any::<u8>(), proptest::collection::vec(arb_comb(), 0..3))
                .prop_map(|(replay, combs)| Proposal { replay, combs }),
        ),
        proptest::option::weighted(0.2, arb_eprop()),
        proptest::option::weighted(0.2, arb_supported()),
        proptest::option::weighted(0.2, arb_supported()),
    );
    let part3 = (
        proptest::option::weighted(
            0.2,
            any::<(u32, u32)>().prop_map(|(a, b)| SpiRange {
                min: a.min(b),
                max: a.max(b),
            }),
        ),
        proptest::option::weighted(
            0.2,
            proptest::collection::vec(1u8..=255, 0..7).prop_map(|satypes| Ereg { satypes }),
        ),
        proptest::option::weighted(
            0.2,
            any::<(u32, u64)>().prop_map(|(proto, cookie)| KmCookie { proto, cookie }),
        ),
        proptest::option::weighted(0.2, any::<u32>().prop_map(|spi| Pair { spi })),
        proptest::option::weighted(
            0.2,
            any::<(u32, u64)>().prop_map(|(a, b)| ReplayValue {
                replay32: a,
                replay64: b,
            }),
        ),
        proptest::option::weighted(0.2, any::<u64>().prop_map(|timeout| Edump { timeout })),
        proptest::option::weighted(0.2, arb_ironswan()),
    );
    (header, part1, part2, part3).prop_map(|(h, p1, p2, p3)| Message {
        msg_type: h.0,
        errno: h.1,
        satype: h.2,
        diagnostic: h.3,
        seq: h.4,
        pid: h.5,
        sa: p1.0,
        lifetime_current: p1.1,
        lifetime_hard: p1.2,
        lifetime_soft: p1.3,
        lifetime_idle: p1.4,
        src: p1.5,
        dst: p1.6,
        inner_src: p1.7,
        inner_dst: p1.8,
        natt_loc: p1.9,
        natt_rem: p1.10,
        key_auth: p2.0,
        key_encrypt: p2.1,
        ident_src: p2.2,
        ident_dst: p2.3,
        sensitivity: p2.4,
        outer_sens: p2.5,
        proposal: p2.6,
        eprop: p2.7,
        supported_auth: p2.8,
        supported_encrypt: p2.9,
        spirange: p3.0,
        ereg: p3.1,
        kmc: p3.2,
        pair: p3.3,
        replay_value: p3.4,
        edump: p3.5,
        ironswan_sa: p3.6,
    })
}

/// Byte ranges of every reserved or padding field of one extension, found independently
/// of the codec (from the C layouts).
fn reserved_ranges(t: u16, b: &[u8]) -> Vec<std::ops::Range<usize>> {
    let ne16 = |o: usize| u16::from_ne_bytes([b[o], b[o + 1]]);
    match t {
        SADB_EXT_ADDRESS_SRC
        | SADB_EXT_ADDRESS_DST
        | SADB_X_EXT_ADDRESS_INNER_SRC
        | SADB_X_EXT_ADDRESS_INNER_DST
        | SADB_X_EXT_ADDRESS_NATT_LOC
        | SADB_X_EXT_ADDRESS_NATT_REM => {
            if ne16(8) == AF_INET {
                vec![6..8, 16..24]
            } else {
                vec![6..8, 36..40]
            }
        }
        SADB_EXT_KEY_AUTH | SADB_EXT_KEY_ENCRYPT => {
            let n = usize::from(ne16(4)).div_ceil(8);
            vec![6..8, 8 + n..b.len()]
        }
        SADB_EXT_IDENTITY_SRC | SADB_EXT_IDENTITY_DST => {
            let end = b[16..]
                .iter()
                .position(|c| *c == 0)
                .map_or(b.len(), |p| 16 + p);
            vec![6..8, end..b.len()]
        }
        SADB_EXT_PROPOSAL => {
            let mut v = vec![5..8];
            let mut o = 8;
            while o < b.len() {
                v.push(o + 13..o + 16);
                o += 72;
            }
            v
        }
        SADB_X_EXT_EPROP => {
            let mut v = vec![5..6];
            let mut o = 8;
            while o < b.len() {
                v.push(o + 1..o + 2);
                v.push(o + 4..o + 8);
                o += 64 + 8 * usize::from(b[o]);
            }
            v
        }
        SADB_EXT_SUPPORTED_AUTH | SADB_EXT_SUPPORTED_ENCRYPT => vec![4..8],
        SADB_EXT_SPIRANGE => vec![12..16],
        SADB_X_EXT_EDUMP => vec![4..8],
        SADB_X_EXT_EREG => {
            let end = b[4..]
                .iter()
                .position(|c| *c == 0)
                .map_or(b.len(), |p| 4 + p);
            vec![end..b.len()]
        }
        SADB_X_EXT_IRONSWAN_SA => vec![17..24],
        _ => vec![],
    }
}

/// Every reserved byte of an emitted message is zero, and the extension lengths add up.
pub fn assert_hygiene(bytes: &[u8]) {
    assert_eq!(bytes.len() % 8, 0);
    let words = u16::from_ne_bytes([bytes[4], bytes[5]]);
    assert_eq!(usize::from(words) * 8, bytes.len());
    let errno = bytes[2];
    if errno == 0 {
        assert_eq!(&bytes[6..8], &[0, 0], "diagnostic set without errno");
    }
    let mut total = 16;
    for ext in Extensions::new(bytes) {
        let ext = ext.unwrap();
        total += ext.bytes.len();
        for r in reserved_ranges(ext.ext_type, ext.bytes) {
            assert!(
                ext.bytes[r.clone()].iter().all(|x| *x == 0),
                "ext {} bytes {r:?} not zero",
                ext.ext_type
            );
        }
    }
    assert_eq!(total, bytes.len());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn emit_then_parse_is_identity(m in arb_message()) {
        let b = m.emit().unwrap();
        prop_assert_eq!(Message::parse(&b).unwrap(), m.clone());
        // Canonical: emitting the parsed message gives the same bytes.
        prop_assert_eq!(Message::parse(&b).unwrap().emit().unwrap(), b.clone());
        let mut z = m.clone();
        z.diagnostic = 0;
        if z.errno == 0 {
            assert_hygiene(&z.emit().unwrap());
        }
    }

    #[test]
    fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Message::parse(&data);
    }

    #[test]
    fn mutated_messages_never_panic_and_reparse(m in arb_message(), flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut b = m.emit().unwrap();
        for (i, x) in flips {
            let n = b.len();
            b[i % n] ^= x;
        }
        if let Ok(p) = Message::parse(&b) {
            let again = p.emit().unwrap();
            prop_assert_eq!(Message::parse(&again).unwrap(), p);
        }
    }
}

#[test]
fn validate_rules_for_requests_and_replies() {
    let mut m = Message::new(SADB_GETSPI, SADB_SATYPE_ESP);
    assert_eq!(
        m.validate(Flow::ToKernel).unwrap_err().diagnostic,
        D::MissingSrc
    );
    m.src = Some(v4("10.0.0.1", 0));
    assert_eq!(
        m.validate(Flow::ToKernel).unwrap_err().diagnostic,
        D::MissingDst
    );
    m.dst = Some(v4("10.0.0.2", 0));
    assert_eq!(
        m.validate(Flow::ToKernel).unwrap_err().diagnostic,
        D::MissingRange
    );
    m.spirange = Some(SpiRange { min: 1, max: 2 });
    m.validate(Flow::ToKernel).unwrap();
    m.supported_auth = Some(Supported::default());
    assert_eq!(
        m.validate(Flow::ToKernel).unwrap_err().diagnostic,
        D::SuppPresent
    );
    let mut f = Message::new(SADB_FLUSH, 0);
    f.validate(Flow::ToKernel).unwrap();
    f.pair = Some(Pair { spi: 1 });
    assert_eq!(f.validate(Flow::ToKernel).unwrap_err().diagnostic, D::NoExt);
    let mut r = Message::new(SADB_ADD, SADB_SATYPE_ESP);
    r.errno = EINVAL;
    r.validate(Flow::FromKernel).unwrap();
    r.pair = Some(Pair { spi: 1 });
    assert!(r.validate(Flow::FromKernel).is_err());
}
