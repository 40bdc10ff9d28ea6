//! The inbound check of protected packets (RFC 4301 §5.2, Solaris spd.c): identities of AH and
//! ESP, unique bindings and SA selectors against the inner packet, algorithms and key sizes,
//! unexpected AH/ESP, self-encapsulation, `or` alternatives, tunnel SPDs; end to end through the
//! ESP engine; and packet descriptions built from packet bytes (fragments per RFC 4301 §7).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use ipsec_core::engine::MAX_BUNDLE;
use ipsec_core::spd::{
    Action, AlgSpec, Applied, Dir, Family, Inbound, IpsecReq, KeyLen, Negotiate, PacketKey,
    PolicyDir, PolicyDrop, PolicySet, Prefix, Protection, Rule, SaSharing, SaView, Selector,
    SocketId, SocketInfo, Spd,
};
use ipsec_core::{
    Engine, Identity, IdentityType, InboundOk, InnerSelectors, KeyMaterial, Mode, PacketBuf, Proto,
    SaConfig, SaId, Sadb, UniqueBinding,
};
use ipsec_crypto::{AuthAlg, EncrAlg};

const L4: &str = "192.0.2.1";
const R4: &str = "192.0.2.2";

fn a(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pfx(s: &str) -> Prefix {
    match s.split_once('/') {
        Some((ad, l)) => Prefix {
            addr: a(ad),
            len: l.parse().unwrap(),
        },
        None => Prefix::host(a(s)),
    }
}

fn remote(r: &str) -> Selector {
    Selector {
        raddr: Some(pfx(r)),
        ..Selector::any()
    }
}

fn spd(rules: Vec<Rule>) -> Spd {
    Spd::with_policy(PolicySet::from_rules(rules)).unwrap()
}

fn esp_auth(e: EncrAlg, a: Option<AuthAlg>) -> Protection {
    Protection::from_props(
        None,
        Some(AlgSpec::of(e)),
        a.map(AlgSpec::of),
        SaSharing::Shared,
    )
}

fn in_tcp(sport: u16, dport: u16) -> PacketKey {
    PacketKey::tcp(Dir::In, a(R4), a(L4), sport, dport)
}

fn add(db: &mut Sadb, proto: Proto, spi: u32, f: impl FnOnce(&mut SaConfig)) -> SaId {
    let mut c = SaConfig::new(proto, spi, Some(a(R4)), a(L4));
    match proto {
        Proto::Esp => {
            c.encr_alg = Some(EncrAlg::AesCbc);
            c.encr_key = KeyMaterial::new(&[7u8; 16]);
            c.auth_alg = Some(AuthAlg::HmacSha256);
            c.auth_key = KeyMaterial::new(&[9u8; 32]);
        }
        Proto::Ah => {
            c.auth_alg = Some(AuthAlg::HmacSha256);
            c.auth_key = KeyMaterial::new(&[9u8; 32]);
        }
    }
    f(&mut c);
    db.add(c, 0).unwrap()
}

fn ok(ids: &[SaId], tunnel: bool) -> InboundOk {
    let mut sas = [None; MAX_BUNDLE];
    for (s, id) in sas.iter_mut().zip(ids) {
        *s = Some(*id);
    }
    InboundOk {
        sas,
        natt: false,
        tunnel,
    }
}

fn verdict(s: &Spd, k: &PacketKey, o: &InboundOk, db: &Sadb) -> Inbound {
    s.inbound_protected(k, o, db).verdict
}

fn id(v: &str) -> Identity {
    Identity {
        kind: IdentityType::Fqdn,
        value: v.to_owned(),
    }
}

#[test]
fn sa_view_reports_algorithms_and_key_sizes_without_salt() {
    let mut db = Sadb::new();
    let gcm = add(&mut db, Proto::Esp, 0x1000, |c| {
        c.encr_alg = Some(EncrAlg::AesGcm16);
        c.encr_key = KeyMaterial::new(&[1u8; 36]); // 256-bit key + 4-byte salt
        c.auth_alg = None;
        c.auth_key = KeyMaterial::default();
    });
    let v = SaView::of(db.get(gcm).unwrap());
    assert_eq!(v.encr, Some((EncrAlg::AesGcm16, 256)));
    assert_eq!(v.auth, None);
    let gmac = add(&mut db, Proto::Ah, 0x1001, |c| {
        c.auth_alg = Some(AuthAlg::AesGmac128);
        c.auth_key = KeyMaterial::new(&[1u8; 20]);
    });
    let v = SaView::of(db.get(gmac).unwrap());
    assert_eq!((v.encr, v.auth), (None, Some((AuthAlg::AesGmac128, 128))));
    // Engine results: stale SA, two SAs of one protocol.
    let o = ok(&[gcm, gcm], false);
    assert_eq!(
        Applied::from_inbound(&o, &db).unwrap_err(),
        PolicyDrop::BadBundle
    );
    db.remove(gmac);
    assert_eq!(
        Applied::from_inbound(&ok(&[gmac], false), &db).unwrap_err(),
        PolicyDrop::StaleSa
    );
    let s = spd(vec![]);
    assert_eq!(
        verdict(&s, &in_tcp(80, 40000), &ok(&[gmac], false), &db),
        Inbound::Drop(PolicyDrop::StaleSa)
    );
}

#[test]
fn ah_and_esp_must_carry_the_same_identities() {
    let both = Protection::from_props(
        Some(AlgSpec::any()),
        Some(AlgSpec::any()),
        None,
        SaSharing::Shared,
    );
    let s = spd(vec![Rule::new(
        remote(R4),
        PolicyDir::Both,
        Action::ipsec(both),
    )]);
    let mut db = Sadb::new();
    let h = add(&mut db, Proto::Ah, 0x1000, |c| c.src_id = Some(id("peer")));
    let e_same = add(&mut db, Proto::Esp, 0x1001, |c| c.src_id = Some(id("peer")));
    let e_diff = add(&mut db, Proto::Esp, 0x1002, |c| {
        c.src_id = Some(id("other"))
    });
    let k = in_tcp(80, 40000);
    assert_eq!(
        verdict(&s, &k, &ok(&[h, e_same], false), &db),
        Inbound::Accept
    );
    assert_eq!(
        verdict(&s, &k, &ok(&[h, e_diff], false), &db),
        Inbound::Drop(PolicyDrop::AhEspDiffId)
    );
}

#[test]
fn sa_bindings_must_admit_the_inner_packet() {
    let s = spd(vec![Rule::new(
        remote(R4),
        PolicyDir::Both,
        Action::Ipsec(vec![
            esp_auth(EncrAlg::AesCbc, None),
            Protection::ah(AlgSpec::any()),
        ]),
    )]);
    let mut db = Sadb::new();
    // Unique SA bound to UDP 53 -> 40000 (from the SA's sender's view).
    let uniq = add(&mut db, Proto::Esp, 0x1000, |c| {
        c.unique = Some(UniqueBinding {
            sport: 53,
            dport: 40000,
            proto: 17,
        })
    });
    let k = PacketKey::udp(Dir::In, a(R4), a(L4), 53, 40000);
    assert_eq!(verdict(&s, &k, &ok(&[uniq], false), &db), Inbound::Accept);
    let other_port = PacketKey::udp(Dir::In, a(R4), a(L4), 53, 40001);
    assert_eq!(
        verdict(&s, &other_port, &ok(&[uniq], false), &db),
        Inbound::Drop(PolicyDrop::EspInnerMismatch)
    );
    let other_proto = PacketKey::tcp(Dir::In, a(R4), a(L4), 53, 40000);
    assert_eq!(
        verdict(&s, &other_proto, &ok(&[uniq], false), &db),
        Inbound::Drop(PolicyDrop::EspInnerMismatch)
    );
    // A transport SA keyed with ports (ipseckey sport/dport/proto) is bound the same way.
    let ssh = add(&mut db, Proto::Ah, 0x1001, |c| {
        c.ulp = 6;
        c.sport = 22;
    });
    assert_eq!(
        verdict(&s, &in_tcp(22, 40000), &ok(&[ssh], false), &db),
        Inbound::Accept
    );
    assert_eq!(
        verdict(&s, &in_tcp(80, 40000), &ok(&[ssh], false), &db),
        Inbound::Drop(PolicyDrop::AhInnerMismatch)
    );
}

#[test]
fn tunnel_sa_inner_selectors_are_checked_and_smuggling_between_tunnel_rules_fails() {
    let mut s = spd(vec![
        Rule::new(
            remote("10.1.0.0/16"),
            PolicyDir::Both,
            Action::ipsec(esp_auth(EncrAlg::AesGcm16, None)),
        )
        .in_tunnel("ip.tun0", Some(Negotiate::Tunnel)),
        Rule::new(
            remote("10.2.0.0/16"),
            PolicyDir::Both,
            Action::ipsec(esp_auth(EncrAlg::AesCbc, Some(AuthAlg::HmacSha256))),
        )
        .in_tunnel("ip.tun0", Some(Negotiate::Tunnel)),
    ]);
    let t = s.tunnel_id("ip.tun0");
    let mut db = Sadb::new();
    let gcm = add(&mut db, Proto::Esp, 0x1000, |c| {
        c.mode = Mode::Tunnel;
        c.encr_alg = Some(EncrAlg::AesGcm16);
        c.encr_key = KeyMaterial::new(&[1u8; 20]);
        c.auth_alg = None;
        c.auth_key = KeyMaterial::default();
        c.inner = InnerSelectors {
            src: Some(pfx("10.1.0.0/16")),
            ..InnerSelectors::default()
        };
    });
    let open_gcm = add(&mut db, Proto::Esp, 0x1001, |c| {
        c.mode = Mode::Tunnel;
        c.encr_alg = Some(EncrAlg::AesGcm16);
        c.encr_key = KeyMaterial::new(&[1u8; 20]);
        c.auth_alg = None;
        c.auth_key = KeyMaterial::default();
    });
    let from1 = PacketKey::tcp(Dir::In, a("10.1.0.5"), a("10.9.0.1"), 80, 1000).with_tunnel(t);
    let from2 = PacketKey::tcp(Dir::In, a("10.2.0.5"), a("10.9.0.1"), 80, 1000).with_tunnel(t);
    assert_eq!(verdict(&s, &from1, &ok(&[gcm], true), &db), Inbound::Accept);
    // The SA's inner selectors do not cover 10.2/16.
    assert_eq!(
        verdict(&s, &from2, &ok(&[gcm], true), &db),
        Inbound::Drop(PolicyDrop::EspInnerMismatch)
    );
    // An SA without selectors: the policy for 10.2/16 wants AES-CBC, not the 10.1/16 SA's GCM.
    assert_eq!(
        verdict(&s, &from2, &ok(&[open_gcm], true), &db),
        Inbound::Drop(PolicyDrop::BadEspEAlg)
    );
    // Tunnel-mode policy, transport-mode packet: self-encapsulation missing.
    assert_eq!(
        verdict(&s, &from1, &ok(&[open_gcm], false), &db),
        Inbound::Drop(PolicyDrop::BadSelfEncap)
    );
    // Unmatched inner packet in a tunnel with policy.
    let from3 = PacketKey::tcp(Dir::In, a("10.3.0.5"), a("10.9.0.1"), 80, 1000).with_tunnel(t);
    assert_eq!(
        verdict(&s, &from3, &ok(&[open_gcm], true), &db),
        Inbound::Drop(PolicyDrop::NoPolicy)
    );
}

#[test]
fn algorithms_and_key_sizes_are_enforced() {
    let aes256_sha256 = Protection::from_props(
        None,
        Some(AlgSpec::of(EncrAlg::AesCbc).with_bits(KeyLen::exactly(256))),
        Some(AlgSpec::of(AuthAlg::HmacSha256)),
        SaSharing::Shared,
    );
    let s = spd(vec![
        Rule::new(remote(R4), PolicyDir::Both, Action::ipsec(aes256_sha256)),
        Rule::new(
            remote("198.51.100.1"),
            PolicyDir::Both,
            Action::ipsec(Protection::ah(AlgSpec::of(AuthAlg::HmacSha256))),
        ),
        Rule::new(
            remote("198.51.100.2"),
            PolicyDir::Both,
            Action::ipsec(esp_auth(EncrAlg::AesGcm16, Some(AuthAlg::HmacSha256))),
        ),
    ]);
    let mut db = Sadb::new();
    let k = in_tcp(80, 40000);
    let good = add(&mut db, Proto::Esp, 0x1000, |c| {
        c.encr_key = KeyMaterial::new(&[1u8; 32])
    });
    assert_eq!(verdict(&s, &k, &ok(&[good], false), &db), Inbound::Accept);
    let short = add(&mut db, Proto::Esp, 0x1001, |_| {});
    assert_eq!(
        verdict(&s, &k, &ok(&[short], false), &db),
        Inbound::Drop(PolicyDrop::BadEspEAlg)
    );
    let des3 = add(&mut db, Proto::Esp, 0x1002, |c| {
        c.encr_alg = Some(EncrAlg::TripleDesCbc);
        c.encr_key = KeyMaterial::new(&[
            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
        ]);
    });
    assert_eq!(
        verdict(&s, &k, &ok(&[des3], false), &db),
        Inbound::Drop(PolicyDrop::BadEspEAlg)
    );
    let sha1 = add(&mut db, Proto::Esp, 0x1003, |c| {
        c.encr_key = KeyMaterial::new(&[1u8; 32]);
        c.auth_alg = Some(AuthAlg::HmacSha1);
        c.auth_key = KeyMaterial::new(&[1u8; 20]);
    });
    assert_eq!(
        verdict(&s, &k, &ok(&[sha1], false), &db),
        Inbound::Drop(PolicyDrop::BadEspAAlg)
    );
    let noauth = add(&mut db, Proto::Esp, 0x1004, |c| {
        c.encr_key = KeyMaterial::new(&[1u8; 32]);
        c.auth_alg = None;
        c.auth_key = KeyMaterial::default();
    });
    assert_eq!(
        verdict(&s, &k, &ok(&[noauth], false), &db),
        Inbound::Drop(PolicyDrop::BadEspAAlg)
    );
    // AH with the wrong algorithm.
    let k1 = PacketKey::tcp(Dir::In, a("198.51.100.1"), a(L4), 80, 40000);
    let mut db1 = Sadb::new();
    let mut ah_sa = |alg: AuthAlg, key: usize, spi: u32| {
        let mut c = SaConfig::new(Proto::Ah, spi, Some(a("198.51.100.1")), a(L4));
        c.auth_alg = Some(alg);
        c.auth_key = KeyMaterial::new(&vec![3u8; key]);
        db1.add(c, 0).unwrap()
    };
    let ah256 = ah_sa(AuthAlg::HmacSha256, 32, 0x2000);
    let ah1 = ah_sa(AuthAlg::HmacSha1, 20, 0x2001);
    assert_eq!(
        verdict(&s, &k1, &ok(&[ah256], false), &db1),
        Inbound::Accept
    );
    assert_eq!(
        verdict(&s, &k1, &ok(&[ah1], false), &db1),
        Inbound::Drop(PolicyDrop::BadAhAlg)
    );
    // A combined-mode cipher satisfies encr_auth_algs by itself (ipsecconf.c).
    let k2 = PacketKey::tcp(Dir::In, a("198.51.100.2"), a(L4), 80, 40000);
    let mut c = SaConfig::new(Proto::Esp, 0x3000, Some(a("198.51.100.2")), a(L4));
    c.encr_alg = Some(EncrAlg::AesGcm16);
    c.encr_key = KeyMaterial::new(&[1u8; 20]);
    let gcm = db1.add(c, 0).unwrap();
    assert_eq!(verdict(&s, &k2, &ok(&[gcm], false), &db1), Inbound::Accept);
}

#[test]
fn unexpected_protocols_and_encapsulation_are_refused() {
    let s = spd(vec![
        Rule::new(
            remote(R4),
            PolicyDir::Both,
            Action::ipsec(esp_auth(EncrAlg::AesCbc, None)),
        ),
        Rule::new(
            remote("198.51.100.1"),
            PolicyDir::Both,
            Action::ipsec(Protection::ah(AlgSpec::any())),
        ),
    ]);
    let mut db = Sadb::new();
    let h = add(&mut db, Proto::Ah, 0x1000, |_| {});
    let e = add(&mut db, Proto::Esp, 0x1001, |_| {});
    let k = in_tcp(80, 40000);
    assert_eq!(
        verdict(&s, &k, &ok(&[h, e], false), &db),
        Inbound::Drop(PolicyDrop::GotAh)
    );
    assert_eq!(
        verdict(&s, &k, &ok(&[e], true), &db),
        Inbound::Drop(PolicyDrop::GotSelfEncap)
    );
    let mut db2 = Sadb::new();
    let mut c = SaConfig::new(Proto::Esp, 0x2000, Some(a("198.51.100.1")), a(L4));
    c.encr_alg = Some(EncrAlg::AesCbc);
    c.encr_key = KeyMaterial::new(&[1u8; 16]);
    c.auth_alg = Some(AuthAlg::HmacSha256);
    c.auth_key = KeyMaterial::new(&[1u8; 32]);
    let e2 = db2.add(c, 0).unwrap();
    let mut c = SaConfig::new(Proto::Ah, 0x2001, Some(a("198.51.100.1")), a(L4));
    c.auth_alg = Some(AuthAlg::HmacSha256);
    c.auth_key = KeyMaterial::new(&[1u8; 32]);
    let h2 = db2.add(c, 0).unwrap();
    let k2 = PacketKey::tcp(Dir::In, a("198.51.100.1"), a(L4), 80, 40000);
    assert_eq!(
        verdict(&s, &k2, &ok(&[h2, e2], false), &db2),
        Inbound::Drop(PolicyDrop::GotEsp)
    );
    // AH wanted, only ESP present: Solaris checks AH first, so this is "unprotected".
    assert_eq!(
        verdict(&s, &k2, &ok(&[e2], false), &db2),
        Inbound::Drop(PolicyDrop::GotClear)
    );
}

#[test]
fn per_socket_self_encapsulation_must_be_present() {
    let mut s = spd(vec![]);
    let sid = SocketId(1);
    s.socket_open(
        sid,
        SocketInfo {
            family: Family::V4,
            proto: 6,
            privileged: true,
        },
    )
    .unwrap();
    let req = IpsecReq {
        self_encap_req: ipsec_core::spd::socket::IPSEC_PREF_REQUIRED,
        ..IpsecReq::esp(12, 0)
    };
    s.set_socket_policy(sid, &req).unwrap();
    let mut db = Sadb::new();
    let e = add(&mut db, Proto::Esp, 0x1000, |_| {});
    let k = in_tcp(80, 40000).with_socket(sid);
    assert_eq!(verdict(&s, &k, &ok(&[e], true), &db), Inbound::Accept);
    assert_eq!(
        verdict(&s, &k, &ok(&[e], false), &db),
        Inbound::Drop(PolicyDrop::BadSelfEncap)
    );
}

#[test]
fn explicit_drop_bypass_and_alternatives() {
    let s = spd(vec![
        Rule::new(remote(R4), PolicyDir::Both, Action::Drop),
        Rule::new(remote("198.51.100.1"), PolicyDir::Both, Action::Bypass),
        Rule::new(
            remote("198.51.100.2"),
            PolicyDir::Both,
            Action::Ipsec(vec![
                esp_auth(EncrAlg::TripleDesCbc, None),
                esp_auth(EncrAlg::AesCbc, None),
            ]),
        ),
    ]);
    let mut db = Sadb::new();
    let e = add(&mut db, Proto::Esp, 0x1000, |_| {});
    assert_eq!(
        verdict(&s, &in_tcp(80, 40000), &ok(&[e], false), &db),
        Inbound::Drop(PolicyDrop::Explicit)
    );
    let mut mk = |src: &str, spi: u32, alg: EncrAlg, key: &[u8]| {
        let mut c = SaConfig::new(Proto::Esp, spi, Some(a(src)), a(L4));
        c.encr_alg = Some(alg);
        c.encr_key = KeyMaterial::new(key);
        c.auth_alg = Some(AuthAlg::HmacSha256);
        c.auth_key = KeyMaterial::new(&[1u8; 32]);
        c.allow_legacy = true;
        db.add(c, 0).unwrap()
    };
    let byp = mk("198.51.100.1", 0x2000, EncrAlg::AesCbc, &[1u8; 16]);
    let aes = mk("198.51.100.2", 0x2001, EncrAlg::AesCbc, &[1u8; 16]);
    let des = mk(
        "198.51.100.2",
        0x2002,
        EncrAlg::DesCbc,
        &[0x13, 0x34, 0x57, 0x79, 0x9b, 0xbc, 0xdf, 0xf1],
    );
    let kb = PacketKey::tcp(Dir::In, a("198.51.100.1"), a(L4), 80, 40000);
    assert_eq!(
        verdict(&s, &kb, &ok(&[byp], false), &db),
        Inbound::Drop(PolicyDrop::GotSecure)
    );
    let k = PacketKey::tcp(Dir::In, a("198.51.100.2"), a(L4), 80, 40000);
    let d = s.inbound_protected(&k, &ok(&[aes], false), &db);
    assert_eq!((d.verdict, d.alternative), (Inbound::Accept, Some(1)));
    // No alternative accepts: the last alternative's reason (as Solaris reports it).
    assert_eq!(
        verdict(&s, &k, &ok(&[des], false), &db),
        Inbound::Drop(PolicyDrop::BadEspEAlg)
    );
}

// ----- end to end through the engine -------------------------------------------------------

fn ipv4(src: &str, dst: &str, proto: u8, flags_frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    let tl = (20 + payload.len()) as u16;
    p[2..4].copy_from_slice(&tl.to_be_bytes());
    p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    p[6..8].copy_from_slice(&flags_frag.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    let (IpAddr::V4(s), IpAddr::V4(d)) = (a(src), a(dst)) else {
        panic!()
    };
    p[12..16].copy_from_slice(&s.octets());
    p[16..20].copy_from_slice(&d.octets());
    let mut sum: u32 = 0;
    for c in p.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn udp(sport: u16, dport: u16, n: usize) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&sport.to_be_bytes());
    u.extend_from_slice(&dport.to_be_bytes());
    u.extend_from_slice(&((8 + n) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]); // no checksum (IPv4)
    u.extend((0..n).map(|i| i as u8));
    u
}

#[test]
fn end_to_end_through_the_engine() {
    // The SA from R4 to L4, bound to UDP 53 -> 40000; policy at L4 wants ESP from R4.
    let mut db = Sadb::new();
    let sa = add(&mut db, Proto::Esp, 0x4000, |c| {
        c.unique = Some(UniqueBinding {
            sport: 53,
            dport: 40000,
            proto: 17,
        });
        c.src_id = Some(id("r4.example"));
    });
    let s = spd(vec![Rule::new(
        remote(R4),
        PolicyDir::Both,
        Action::ipsec(esp_auth(EncrAlg::AesCbc, Some(AuthAlg::HmacSha256))),
    )]);
    let mut eng = Engine::new();
    for (dport, expect) in [
        (40000u16, Inbound::Accept),
        (40001, Inbound::Drop(PolicyDrop::EspInnerMismatch)),
    ] {
        let pkt = ipv4(R4, L4, 17, 0, &udp(53, dport, 40));
        let mut buf = PacketBuf::new(2048, 128);
        buf.set_packet(&pkt).unwrap();
        eng.outbound(&mut db, &[sa], &mut buf, 1).unwrap();
        let k_outer = PacketKey::from_ip_packet(buf.data(), Dir::In).unwrap();
        assert_eq!(k_outer.proto, 50);
        let res = eng.inbound(&mut db, &mut buf, 1).unwrap();
        let k = PacketKey::from_ip_packet(buf.data(), Dir::In).unwrap();
        assert_eq!((k.sport, k.dport), (Some(53), Some(dport)));
        let d = s.inbound_protected(&k, &res, &db);
        assert_eq!(d.verdict, expect, "dport {dport}");
    }
    // The same packet in clear is refused.
    let clear =
        PacketKey::from_ip_packet(&ipv4(R4, L4, 17, 0, &udp(53, 40000, 40)), Dir::In).unwrap();
    assert_eq!(
        s.inbound_clear(&clear).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
}

// ----- packet descriptions from bytes ------------------------------------------------------

fn ipv6(src: &str, dst: &str, nh: u8, rest: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[4..6].copy_from_slice(&(rest.len() as u16).to_be_bytes());
    p[6] = nh;
    p[7] = 64;
    let (IpAddr::V6(s), IpAddr::V6(d)) = (a(src), a(dst)) else {
        panic!()
    };
    p[8..24].copy_from_slice(&s.octets());
    p[24..40].copy_from_slice(&d.octets());
    p.extend_from_slice(rest);
    p
}

#[test]
fn packet_keys_from_bytes() {
    let k = PacketKey::from_ip_packet(&ipv4(L4, R4, 17, 0, &udp(1000, 53, 4)), Dir::Out).unwrap();
    assert_eq!(k, PacketKey::udp(Dir::Out, a(L4), a(R4), 1000, 53));
    // ICMP echo request.
    let k = PacketKey::from_ip_packet(&ipv4(L4, R4, 1, 0, &[8, 0, 0, 0, 0, 1, 0, 1]), Dir::Out)
        .unwrap();
    assert_eq!(
        (k.icmp_type, k.icmp_code, k.sport),
        (Some(8), Some(0), None)
    );
    // First fragment (MF set) with the ports: ports present.
    let k =
        PacketKey::from_ip_packet(&ipv4(L4, R4, 17, 0x2000, &udp(1000, 53, 16)), Dir::Out).unwrap();
    assert_eq!(k.dport, Some(53));
    // Non-first fragment: no ports (RFC 4301 §7).
    let k = PacketKey::from_ip_packet(
        &ipv4(L4, R4, 17, 0x0003, &[1, 2, 3, 4, 5, 6, 7, 8]),
        Dir::Out,
    )
    .unwrap();
    assert_eq!((k.proto, k.sport, k.dport), (17, None, None));
    // A first fragment too short to hold the ports is malformed.
    assert_eq!(
        PacketKey::from_ip_packet(&ipv4(L4, R4, 6, 0x2000, &[0, 80]), Dir::Out).unwrap_err(),
        PolicyDrop::MalformedPacket
    );
    assert_eq!(
        PacketKey::from_ip_packet(&[0x45, 0, 0], Dir::In).unwrap_err(),
        PolicyDrop::MalformedPacket
    );
    assert!(PacketKey::from_ip_packet(&[0x15; 40], Dir::In).is_err());
    // IPv6 with a hop-by-hop header before TCP.
    let mut rest = vec![6u8, 0, 1, 4, 0, 0, 0, 0];
    rest.extend_from_slice(&[
        0x9c, 0x40, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0, 0, 0, 0, 0, 0, 0,
    ]);
    let k =
        PacketKey::from_ip_packet(&ipv6("2001:db8::1", "2001:db8::2", 0, &rest), Dir::Out).unwrap();
    assert_eq!((k.proto, k.sport, k.dport), (6, Some(40000), Some(22)));
    // IPv6 non-first fragment of UDP: no ports.
    let frag = [17u8, 0, 0x00, 0x10, 0, 0, 0, 1, 9, 9, 9, 9, 9, 9, 9, 9];
    let k =
        PacketKey::from_ip_packet(&ipv6("2001:db8::1", "2001:db8::2", 44, &frag), Dir::In).unwrap();
    assert_eq!((k.proto, k.sport), (17, None));
    // ICMPv6 echo request; ICMPv4 number inside IPv6 is not ICMP.
    let k = PacketKey::from_ip_packet(
        &ipv6(
            "2001:db8::1",
            "2001:db8::2",
            58,
            &[128, 0, 0, 0, 0, 1, 0, 1],
        ),
        Dir::In,
    )
    .unwrap();
    assert_eq!((k.icmp_type, k.icmp_code), (Some(128), Some(0)));
    let k = PacketKey::from_ip_packet(
        &ipv6("2001:db8::1", "2001:db8::2", 1, &[8, 0, 0, 0]),
        Dir::In,
    )
    .unwrap();
    assert_eq!(k.icmp_type, None);
    // A port-specific drop rule does not see non-first fragments; a rule without ports does.
    let s = spd(vec![
        Rule::new(
            Selector {
                ulp: Some(17),
                rport: Some(ipsec_core::spd::PortRange::single(53)),
                ..Selector::any()
            },
            PolicyDir::Out,
            Action::Drop,
        ),
        Rule::new(
            Selector {
                ulp: Some(17),
                ..Selector::any()
            },
            PolicyDir::Out,
            Action::ipsec(esp_auth(EncrAlg::AesCbc, None)),
        ),
    ]);
    let frag = PacketKey::from_ip_packet(&ipv4(L4, R4, 17, 0x0003, &[0; 8]), Dir::Out).unwrap();
    assert!(matches!(
        s.outbound(&frag).verdict,
        ipsec_core::spd::Outbound::Protect { .. }
    ));
    // Mixed families in a hand-made key: malformed.
    let mixed = PacketKey::tcp(Dir::Out, a(L4), a("2001:db8::1"), 1, 2);
    assert_eq!(
        s.outbound(&mixed).verdict,
        ipsec_core::spd::Outbound::Drop(PolicyDrop::MalformedPacket)
    );
}

// ----- the transmitter's choice ------------------------------------------------------------

#[test]
fn transmitter_uses_the_first_alternative_with_sas() {
    use ipsec_core::spd::choose_sas;
    // SAs from L4 to R4 (outbound at L4).
    let mut db = Sadb::new();
    let mut mk = |proto: Proto, spi: u32, f: &dyn Fn(&mut SaConfig)| {
        let mut c = SaConfig::new(proto, spi, Some(a(L4)), a(R4));
        match proto {
            Proto::Esp => {
                c.encr_alg = Some(EncrAlg::AesCbc);
                c.encr_key = KeyMaterial::new(&[7u8; 16]);
            }
            Proto::Ah => {}
        }
        c.auth_alg = Some(AuthAlg::HmacSha256);
        c.auth_key = KeyMaterial::new(&[9u8; 32]);
        f(&mut c);
        db.add(c, 0).unwrap()
    };
    let esp = mk(Proto::Esp, 0x1000, &|_| {});
    let ah = mk(Proto::Ah, 0x1001, &|_| {});
    let uniq = mk(Proto::Esp, 0x1002, &|c| {
        c.unique = Some(UniqueBinding {
            sport: 40000,
            dport: 80,
            proto: 6,
        })
    });
    let tun = mk(Proto::Esp, 0x1003, &|c| {
        c.mode = Mode::Tunnel;
        c.inner = InnerSelectors {
            dst: Some(pfx("10.1.0.0/16")),
            ..InnerSelectors::default()
        };
    });
    let k = PacketKey::tcp(Dir::Out, a(L4), a(R4), 40000, 80);
    let des3 = esp_auth(EncrAlg::TripleDesCbc, None);
    let aes = esp_auth(EncrAlg::AesCbc, Some(AuthAlg::HmacSha256));
    assert_eq!(
        choose_sas(&[des3, aes], Mode::Transport, &k, &db),
        Some((1, [Some(esp), None]))
    );
    assert_eq!(choose_sas(&[des3], Mode::Transport, &k, &db), None);
    let both = Protection::from_props(
        Some(AlgSpec::of(AuthAlg::HmacSha256)),
        Some(AlgSpec::of(EncrAlg::AesCbc)),
        None,
        SaSharing::Shared,
    );
    assert_eq!(
        choose_sas(&[both], Mode::Transport, &k, &db),
        Some((0, [Some(esp), Some(ah)]))
    );
    // `sa unique`: only the SA bound to this 5-tuple.
    let unique = Protection {
        sa: SaSharing::Unique,
        ..esp_auth(EncrAlg::AesCbc, None)
    };
    assert_eq!(
        choose_sas(&[unique], Mode::Transport, &k, &db),
        Some((0, [Some(uniq), None]))
    );
    let k2 = PacketKey::tcp(Dir::Out, a(L4), a(R4), 40001, 80);
    assert_eq!(choose_sas(&[unique], Mode::Transport, &k2, &db), None);
    // Tunnel mode: by inner selectors.
    let inner = PacketKey::tcp(Dir::Out, a("10.9.0.1"), a("10.1.2.3"), 1, 2);
    assert_eq!(
        choose_sas(&[aes], Mode::Tunnel, &inner, &db),
        Some((0, [Some(tun), None]))
    );
    let outside = PacketKey::tcp(Dir::Out, a("10.9.0.1"), a("10.2.2.3"), 1, 2);
    assert_eq!(choose_sas(&[aes], Mode::Tunnel, &outside, &db), None);
}
