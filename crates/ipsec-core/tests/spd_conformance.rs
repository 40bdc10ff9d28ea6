//! Solaris conformance of the policy engine: priorities and boosts, bypass first, AH+ESP > ESP >
//! AH, file order, host no-match pass, tunnel no-match drop, the IKE/NAT-T bypass, per-socket
//! precedence (only when the socket's policy applies), every ICMP accept/reject table entry in
//! both families, the icmp/igmp/pim-accept-clear tunables, echo replies protected like their
//! request or clear when it was clear, persock-require-priv and privilege for NEVER, EINVAL
//! cases, latching, and intra-machine traffic. Every drop names its reason.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};

use ipsec_core::engine::MAX_BUNDLE;
use ipsec_core::spd::icmp::{v4, v6};
use ipsec_core::spd::socket::{IPSEC_PREF_NEVER, IPSEC_PREF_REQUIRED, IPSEC_PREF_UNIQUE};
use ipsec_core::spd::{
    Action, AlgSpec, Basis, Dir, EspAuth, Family, Inbound, InboundProtection, IpsecReq, KeyLen,
    Mode, Negotiate, Outbound, PacketKey, PolicyDir, PolicyDrop, PolicySet, PolicySource, Prefix,
    Priority, Protection, ReplaceOptions, Rule, SaSharing, Selector, SockOptError, SocketId,
    SocketInfo, Spd,
};
use ipsec_core::{Identity, IdentityType, InboundOk, KeyMaterial, Proto, SaConfig, Sadb};
use ipsec_crypto::{AuthAlg, EncrAlg};

const L4: &str = "192.0.2.1";
const R4: &str = "192.0.2.2";
const L6: &str = "2001:db8::1";
const R6: &str = "2001:db8::2";

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

fn esp(alg: EncrAlg) -> Protection {
    Protection::esp(AlgSpec::of(alg))
}

fn ah(alg: AuthAlg) -> Protection {
    Protection::ah(AlgSpec::of(alg))
}

fn ah_esp() -> Protection {
    Protection::from_props(
        Some(AlgSpec::of(AuthAlg::HmacSha256)),
        Some(AlgSpec::of(EncrAlg::AesCbc)),
        None,
        SaSharing::Shared,
    )
}

fn spd(rules: Vec<Rule>) -> Spd {
    Spd::with_policy(PolicySet::from_rules(rules)).unwrap()
}

fn out_tcp(dport: u16) -> PacketKey {
    PacketKey::tcp(Dir::Out, a(L4), a(R4), 40000, dport)
}

fn in_tcp(sport: u16) -> PacketKey {
    PacketKey::tcp(Dir::In, a(R4), a(L4), sport, 40000)
}

fn decided_rule(spd: &Spd, k: &PacketKey) -> Option<usize> {
    spd.outbound(k).policy.and_then(|p| p.source.rule_index())
}

/// An SADB with SAs by name for the inbound checks.
struct Sas {
    db: Sadb,
}

impl Sas {
    fn new() -> Self {
        Self { db: Sadb::new() }
    }

    fn add(&mut self, proto: Proto, spi: u32, f: impl FnOnce(&mut SaConfig)) -> ipsec_core::SaId {
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
        self.db.add(c, 0).unwrap()
    }

    fn ok(ids: &[ipsec_core::SaId], tunnel: bool) -> InboundOk {
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
}

// ----- priorities ---------------------------------------------------------------------------

#[test]
fn priority_values_follow_ipsecconf() {
    let esp_a = Action::ipsec(esp(EncrAlg::AesCbc));
    let ah_a = Action::ipsec(ah(AuthAlg::HmacSha256));
    let both = Action::ipsec(ah_esp());
    assert_eq!(Priority::for_rule(0, &Action::Bypass).value(), 0x008f_ffff);
    assert_eq!(Priority::for_rule(1, &esp_a).value(), 0x004f_fffe);
    assert_eq!(Priority::for_rule(2, &ah_a).value(), 0x002f_fffd);
    assert_eq!(Priority::for_rule(3, &both).value(), 0x006f_fffc);
    assert_eq!(Priority::for_rule(4, &Action::Drop).value(), 0x000f_fffb);
    // `or` alternatives: the boosts of every alternative (ipsecconf.c ORs them per action).
    let or = Action::Ipsec(vec![esp(EncrAlg::AesCbc), ah(AuthAlg::HmacSha1)]);
    assert_eq!(Priority::for_rule(5, &or).value(), 0x006f_fffa);
    assert_eq!(Priority::socket().value(), 0x0100_0000);
    assert!(
        Priority::socket().value() > Priority::for_rule(0, &Action::Bypass).value() | 0x0060_0000
    );
    assert_eq!(
        Priority::for_rule(1, &esp_a).to_string(),
        "0x4ffffe (base 0xffffe + ESP 0x400000)"
    );
    assert_eq!(
        Priority::for_rule(0, &Action::Bypass).to_string(),
        "0x8fffff (base 0xfffff + bypass 0x800000)"
    );
}

#[test]
fn bypass_rules_are_checked_first_whatever_their_position() {
    let s = spd(vec![
        Rule::new(remote(R4), PolicyDir::Both, Action::ipsec(ah_esp())),
        Rule::new(remote(R4), PolicyDir::Both, Action::Drop),
        Rule::new(remote(R4), PolicyDir::Both, Action::Bypass),
    ]);
    let d = s.outbound(&out_tcp(80));
    assert_eq!(d.verdict, Outbound::Bypass);
    assert_eq!(d.basis, Basis::Rule);
    assert_eq!(d.policy.unwrap().source, PolicySource::Host(2));
    assert_eq!(s.inbound_clear(&in_tcp(80)).verdict, Inbound::Accept);
}

#[test]
fn ah_and_esp_beat_esp_beat_ah_beat_file_order() {
    let rules = vec![
        Rule::new(remote(R4), PolicyDir::Both, Action::Drop),
        Rule::new(
            remote(R4),
            PolicyDir::Both,
            Action::ipsec(ah(AuthAlg::HmacSha256)),
        ),
        Rule::new(
            remote(R4),
            PolicyDir::Both,
            Action::ipsec(esp(EncrAlg::AesCbc)),
        ),
        Rule::new(remote(R4), PolicyDir::Both, Action::ipsec(ah_esp())),
    ];
    let k = out_tcp(80);
    assert_eq!(decided_rule(&spd(rules.clone()), &k), Some(3));
    assert_eq!(decided_rule(&spd(rules[..3].to_vec()), &k), Some(2));
    assert_eq!(decided_rule(&spd(rules[..2].to_vec()), &k), Some(1));
    assert_eq!(decided_rule(&spd(rules[..1].to_vec()), &k), Some(0));
    match spd(rules[..1].to_vec()).outbound(&k).verdict {
        Outbound::Drop(PolicyDrop::Explicit) => {}
        v => panic!("{v:?}"),
    }
}

#[test]
fn equal_strength_rules_keep_file_order() {
    let s = spd(vec![
        Rule::new(
            remote("192.0.2.0/24"),
            PolicyDir::Both,
            Action::ipsec(esp(EncrAlg::AesCbc)),
        ),
        Rule::new(
            remote(R4),
            PolicyDir::Both,
            Action::ipsec(esp(EncrAlg::TripleDesCbc)),
        ),
    ]);
    // The first rule wins although the second is more specific: Solaris is not longest-match.
    assert_eq!(decided_rule(&s, &out_tcp(80)), Some(0));
    match s.outbound(&out_tcp(80)).verdict {
        Outbound::Protect { bundles, mode } => {
            assert_eq!(bundles, &[esp(EncrAlg::AesCbc)]);
            assert_eq!(mode, Mode::Transport);
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn directions_are_separate() {
    let s = spd(vec![
        Rule::new(remote(R4), PolicyDir::Out, Action::Drop),
        Rule::new(
            remote(R4),
            PolicyDir::In,
            Action::ipsec(esp(EncrAlg::AesCbc)),
        ),
    ]);
    assert_eq!(
        s.outbound(&out_tcp(80)).verdict,
        Outbound::Drop(PolicyDrop::Explicit)
    );
    let d = s.inbound_clear(&in_tcp(80));
    assert_eq!(d.verdict, Inbound::Drop(PolicyDrop::GotClear));
    assert_eq!(d.policy.unwrap().source, PolicySource::Host(1));
}

// ----- defaults: host pass, tunnel drop ----------------------------------------------------

#[test]
fn host_without_matching_rule_passes() {
    let s = spd(vec![Rule::new(
        remote("198.51.100.7"),
        PolicyDir::Both,
        Action::Drop,
    )]);
    let o = s.outbound(&out_tcp(80));
    assert_eq!(
        (o.verdict, o.basis, o.policy),
        (Outbound::Bypass, Basis::NoPolicy, None)
    );
    let i = s.inbound_clear(&in_tcp(80));
    assert_eq!((i.verdict, i.basis), (Inbound::Accept, Basis::NoPolicy));
    assert_eq!(i.protection, InboundProtection::Clear);
    // A protected packet with no policy: spd_got_secure (IPSEC_POLICY_NOT_NEEDED).
    let mut sas = Sas::new();
    let e = sas.add(Proto::Esp, 0x1000, |_| {});
    let d = s.inbound_protected(&in_tcp(80), &Sas::ok(&[e], false), &sas.db);
    assert_eq!(d.verdict, Inbound::Drop(PolicyDrop::GotSecure));
}

#[test]
fn tunnel_with_rules_drops_unmatched_and_tunnel_without_rules_passes() {
    let mut s = spd(vec![Rule::new(
        remote("10.1.0.0/16"),
        PolicyDir::Both,
        Action::ipsec(esp(EncrAlg::AesCbc)),
    )
    .in_tunnel("ip.tun0", Some(Negotiate::Tunnel))]);
    let t0 = s.tunnel_id("ip.tun0");
    let t1 = s.tunnel_id("ip.tun1");
    let hit = PacketKey::tcp(Dir::Out, a("10.9.0.1"), a("10.1.2.3"), 1000, 80).with_tunnel(t0);
    match s.outbound(&hit).verdict {
        Outbound::Protect { mode, .. } => assert_eq!(mode, Mode::Tunnel),
        v => panic!("{v:?}"),
    }
    let miss = PacketKey::tcp(Dir::Out, a("10.9.0.1"), a("10.2.0.1"), 1000, 80).with_tunnel(t0);
    let d = s.outbound(&miss);
    assert_eq!(
        (d.verdict, d.basis),
        (Outbound::Drop(PolicyDrop::NoPolicy), Basis::TunnelNoMatch)
    );
    let miss_in = PacketKey::tcp(Dir::In, a("10.2.0.1"), a("10.9.0.1"), 80, 1000).with_tunnel(t0);
    assert_eq!(
        s.inbound_clear(&miss_in).verdict,
        Inbound::Drop(PolicyDrop::NoPolicy)
    );
    // Another tunnel without policy, and the host, are unaffected.
    assert_eq!(s.outbound(&miss.with_tunnel(t1)).verdict, Outbound::Bypass);
    let mut host = miss;
    host.tunnel = None;
    assert_eq!(s.outbound(&host).verdict, Outbound::Bypass);
    // Host rules do not apply to tunnel traffic.
    let s2 = spd(vec![
        Rule::new(Selector::any(), PolicyDir::Both, Action::Drop),
        Rule::new(remote("10.1.0.0/16"), PolicyDir::Both, Action::Bypass)
            .in_tunnel("ip.tun0", None),
    ]);
    let t0b = s2.tunnel_names().get("ip.tun0").unwrap();
    assert_eq!(s2.outbound(&hit.with_tunnel(t0b)).verdict, Outbound::Bypass);
}

#[test]
fn tunnel_negotiate_selects_the_sa_mode() {
    let base = Rule::new(
        Selector::any(),
        PolicyDir::Both,
        Action::ipsec(esp(EncrAlg::AesCbc)),
    );
    assert_eq!(base.mode(), Mode::Transport);
    assert_eq!(
        base.clone()
            .in_tunnel("t", Some(Negotiate::Transport))
            .mode(),
        Mode::Transport
    );
    assert_eq!(
        base.clone().in_tunnel("t", Some(Negotiate::Tunnel)).mode(),
        Mode::Tunnel
    );
    // Without negotiate: tunnel mode when inner selectors are given, else transport (Solaris 9 form).
    assert_eq!(base.clone().in_tunnel("t", None).mode(), Mode::Transport);
    let mut inner = base.in_tunnel("t", None);
    inner.selector.raddr = Some(pfx("10.0.0.0/8"));
    assert_eq!(inner.mode(), Mode::Tunnel);
}

// ----- key management bypass ---------------------------------------------------------------

#[test]
fn ike_and_natt_ports_are_always_bypassed() {
    let mut s = spd(vec![Rule::new(
        Selector::any(),
        PolicyDir::Both,
        Action::Drop,
    )]);
    let ike_out = PacketKey::udp(Dir::Out, a(L4), a(R4), 500, 500);
    let d = s.outbound(&ike_out);
    assert_eq!(
        (d.verdict, d.basis),
        (Outbound::Bypass, Basis::KeyManagement)
    );
    let natt_in = PacketKey::udp(Dir::In, a(R4), a(L4), 31000, 4500);
    assert_eq!(s.inbound_clear(&natt_in).basis, Basis::KeyManagement);
    let v6 = PacketKey::udp(Dir::In, a(R6), a(L6), 500, 500);
    assert_eq!(s.inbound_clear(&v6).verdict, Inbound::Accept);
    // Only the local port counts: a remote port 500 or 4500 cannot smuggle traffic in.
    let smuggle = PacketKey::udp(Dir::In, a(R4), a(L4), 500, 53);
    assert_eq!(
        s.inbound_clear(&smuggle).verdict,
        Inbound::Drop(PolicyDrop::Explicit)
    );
    let to_ike = PacketKey::udp(Dir::Out, a(L4), a(R4), 40000, 500);
    assert_eq!(
        s.outbound(&to_ike).verdict,
        Outbound::Drop(PolicyDrop::Explicit)
    );
    let tcp500 = PacketKey::tcp(Dir::Out, a(L4), a(R4), 500, 500);
    assert_eq!(
        s.outbound(&tcp500).verdict,
        Outbound::Drop(PolicyDrop::Explicit)
    );
    // A protected packet to the IKE port is refused like one to a bypass socket.
    let mut sas = Sas::new();
    let e = sas.add(Proto::Esp, 0x1000, |_| {});
    let d = s.inbound_protected(
        &PacketKey::udp(Dir::In, a(R4), a(L4), 500, 500),
        &Sas::ok(&[e], false),
        &sas.db,
    );
    assert_eq!(d.verdict, Inbound::Drop(PolicyDrop::GotSecure));
    // Our NAT-T port is a tunable.
    s.tunables_mut().set("natt-port", "4501").unwrap();
    assert_eq!(
        s.inbound_clear(&natt_in).verdict,
        Inbound::Drop(PolicyDrop::Explicit)
    );
    let natt2 = PacketKey::udp(Dir::In, a(R4), a(L4), 31000, 4501);
    assert_eq!(s.inbound_clear(&natt2).verdict, Inbound::Accept);
}

// ----- per-socket precedence -----------------------------------------------------------------

fn sock(s: &mut Spd, id: u64, family: Family, proto: u8, privileged: bool) -> SocketId {
    let sid = SocketId(id);
    s.socket_open(
        sid,
        SocketInfo {
            family,
            proto,
            privileged,
        },
    )
    .unwrap();
    sid
}

#[test]
fn socket_policy_wins_only_when_it_applies() {
    let mut s = spd(vec![
        Rule::new(remote(R4), PolicyDir::Both, Action::Bypass),
        Rule::new(remote(R6), PolicyDir::Both, Action::Drop),
        Rule::new(
            remote("198.51.100.0/24"),
            PolicyDir::Both,
            Action::ipsec(esp(EncrAlg::AesCbc)),
        ),
    ]);
    let with = sock(&mut s, 1, Family::V4, 6, false);
    let without = sock(&mut s, 2, Family::V4, 6, false);
    let dual = sock(&mut s, 3, Family::V6, 6, false);
    s.set_socket_policy(with, &IpsecReq::esp(12, 0)).unwrap();
    s.set_socket_policy(dual, &IpsecReq::esp(12, 0)).unwrap();

    // The socket's ESP policy (0x1000000) beats the global bypass rule (0x8ffff...).
    let d = s.outbound(&out_tcp(80).with_socket(with));
    match d.verdict {
        Outbound::Protect { bundles, .. } => assert_eq!(bundles, &[esp(EncrAlg::AesCbc)]),
        v => panic!("{v:?}"),
    }
    assert_eq!(d.policy.unwrap().source, PolicySource::Socket(with));
    assert_eq!(d.policy.unwrap().priority.value(), 0x0100_0000);
    assert_eq!(
        s.inbound_clear(&in_tcp(80).with_socket(with)).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
    // Not the socket's packet, or a socket without policy: the global rule decides.
    assert_eq!(s.outbound(&out_tcp(80)).verdict, Outbound::Bypass);
    assert_eq!(
        s.outbound(&out_tcp(80).with_socket(without)).verdict,
        Outbound::Bypass
    );
    // An AF_INET socket's policy does not cover IPv6; an AF_INET6 socket's covers both.
    let k6 = PacketKey::tcp(Dir::Out, a(L6), a(R6), 40000, 80);
    assert_eq!(
        s.outbound(&k6.with_socket(with)).verdict,
        Outbound::Drop(PolicyDrop::Explicit)
    );
    assert!(matches!(
        s.outbound(&k6.with_socket(dual)).verdict,
        Outbound::Protect { .. }
    ));
    assert!(matches!(
        s.outbound(&out_tcp(80).with_socket(dual)).verdict,
        Outbound::Protect { .. }
    ));
    // Socket policy is host policy: tunnel traffic ignores it.
    let t = s.tunnel_id("ip.tun9");
    assert_eq!(
        s.outbound(&out_tcp(80).with_socket(with).with_tunnel(t))
            .verdict,
        Outbound::Bypass
    );
    // A reset request removes it.
    s.set_socket_policy(with, &IpsecReq::default()).unwrap();
    assert_eq!(
        s.outbound(&out_tcp(80).with_socket(with)).verdict,
        Outbound::Bypass
    );
}

#[test]
fn socket_requests_become_solaris_actions() {
    assert_eq!(
        IpsecReq::bypass().to_action().unwrap(),
        Some(Action::Bypass)
    );
    assert_eq!(IpsecReq::default().to_action().unwrap(), None);
    // UNIQUE alone has no NEVER/REQUIRED bit: a reset.
    let only_unique = IpsecReq {
        esp_req: IPSEC_PREF_UNIQUE,
        ..IpsecReq::default()
    };
    assert_eq!(only_unique.to_action().unwrap(), None);
    let r = IpsecReq {
        ah_req: IPSEC_PREF_REQUIRED | IPSEC_PREF_UNIQUE,
        esp_req: IPSEC_PREF_REQUIRED,
        self_encap_req: IPSEC_PREF_REQUIRED,
        auth_alg: 3,
        esp_alg: 12,
        esp_auth_alg: 5,
    };
    let p = match r.to_action().unwrap() {
        Some(Action::Ipsec(v)) => v[0],
        x => panic!("{x:?}"),
    };
    assert_eq!(p.ah, Some(AlgSpec::of(AuthAlg::HmacSha1)));
    assert_eq!(p.esp.unwrap().encr, AlgSpec::of(EncrAlg::AesCbc));
    assert_eq!(
        p.esp.unwrap().auth,
        EspAuth::Required(AlgSpec::of(AuthAlg::HmacSha256))
    );
    assert_eq!(p.sa, SaSharing::Unique);
    assert!(p.self_encap);
    // esp_auth_alg 0: authentication optional; SADB_AALG_ANY: required, any algorithm.
    assert_eq!(
        IpsecReq::esp(12, 0)
            .to_action()
            .unwrap()
            .unwrap()
            .alternatives()[0]
            .esp
            .unwrap()
            .auth,
        EspAuth::Optional
    );
    assert_eq!(
        IpsecReq::esp(0, 255)
            .to_action()
            .unwrap()
            .unwrap()
            .alternatives()[0]
            .esp
            .unwrap(),
        ipsec_core::spd::EspSpec {
            encr: AlgSpec::any(),
            auth: EspAuth::Required(AlgSpec::any())
        }
    );
    // NEVER in one field only is not bypass: nothing is applied (clear traffic only).
    let half = IpsecReq {
        ah_req: IPSEC_PREF_NEVER,
        ..IpsecReq::default()
    };
    assert!(half.to_action().unwrap().unwrap().alternatives()[0].is_empty());
    // getsockopt round trip and the C layout.
    assert_eq!(
        IpsecReq::from_action(&r.to_action().unwrap().unwrap()),
        IpsecReq {
            esp_req: IPSEC_PREF_REQUIRED | IPSEC_PREF_UNIQUE,
            ..r
        }
    );
    let bytes = r.to_ne_bytes();
    assert_eq!(IpsecReq::from_ne_bytes(&bytes).unwrap(), r);
    assert!(IpsecReq::from_ne_bytes(&bytes[..10]).is_err());
}

#[test]
fn bypass_needs_privilege() {
    let mut s = spd(vec![Rule::new(
        Selector::any(),
        PolicyDir::Both,
        Action::ipsec(esp(EncrAlg::AesCbc)),
    )]);
    let user = sock(&mut s, 1, Family::V4, 17, false);
    let root = sock(&mut s, 2, Family::V4, 17, true);
    for req in [
        IpsecReq::bypass(),
        IpsecReq {
            ah_req: IPSEC_PREF_NEVER,
            ..IpsecReq::default()
        },
        IpsecReq {
            self_encap_req: IPSEC_PREF_NEVER,
            esp_req: IPSEC_PREF_REQUIRED,
            ..IpsecReq::default()
        },
    ] {
        let e = s.set_socket_policy(user, &req).unwrap_err();
        assert!(matches!(e, SockOptError::Permission(_)), "{e}");
        assert_eq!(e.errno(), 1);
    }
    // Even with persock-require-priv off, nobody unprivileged can bypass.
    s.tunables_mut().persock_require_priv = false;
    assert_eq!(
        s.set_socket_policy(user, &IpsecReq::bypass())
            .unwrap_err()
            .errno(),
        1
    );
    s.set_socket_policy(root, &IpsecReq::bypass()).unwrap();
    let k = PacketKey::udp(Dir::Out, a(L4), a(R4), 5000, 53);
    assert_eq!(s.outbound(&k.with_socket(root)).verdict, Outbound::Bypass);
    assert!(matches!(
        s.outbound(&k.with_socket(user)).verdict,
        Outbound::Protect { .. }
    ));
}

#[test]
fn persock_require_priv_limits_unprivileged_algorithm_choice() {
    let mut s = spd(vec![
        Rule::new(
            remote(R4),
            PolicyDir::Both,
            Action::ipsec(Protection::from_props(
                None,
                Some(AlgSpec::of(EncrAlg::AesCbc)),
                Some(AlgSpec::of(AuthAlg::HmacSha256)),
                SaSharing::Shared,
            )),
        ),
        Rule::new(
            remote("198.51.100.0/24"),
            PolicyDir::Both,
            Action::ipsec(ah(AuthAlg::HmacSha1)),
        ),
    ]);
    let user = sock(&mut s, 1, Family::V4, 6, false);
    let root = sock(&mut s, 2, Family::V4, 6, true);
    assert!(s.tunables().persock_require_priv, "Solaris default is on");
    // 3DES is not used by system policy: refused for the unprivileged socket.
    let des3 = IpsecReq::esp(3, 0);
    assert_eq!(s.set_socket_policy(user, &des3).unwrap_err().errno(), 1);
    // AES with HMAC-SHA-256 is; so is "any" (0), and AH with SHA-1.
    s.set_socket_policy(user, &IpsecReq::esp(12, 5)).unwrap();
    s.set_socket_policy(user, &IpsecReq::esp(0, 0)).unwrap();
    s.set_socket_policy(user, &IpsecReq::ah(3)).unwrap();
    assert_eq!(
        s.set_socket_policy(user, &IpsecReq::ah(5))
            .unwrap_err()
            .errno(),
        1
    );
    assert_eq!(
        s.set_socket_policy(user, &IpsecReq::esp(12, 3))
            .unwrap_err()
            .errno(),
        1
    );
    // Privileged sockets choose freely; with the tunable off, everybody does.
    s.set_socket_policy(root, &des3).unwrap();
    s.tunables_mut().set("persock-require-priv", "off").unwrap();
    s.set_socket_policy(user, &des3).unwrap();
}

#[test]
fn invalid_requests_get_einval() {
    let mut s = spd(vec![]);
    let t = sock(&mut s, 1, Family::V4, 6, true);
    let bad_bits = IpsecReq {
        esp_req: 0x10 | IPSEC_PREF_REQUIRED,
        ..IpsecReq::default()
    };
    assert_eq!(s.set_socket_policy(t, &bad_bits).unwrap_err().errno(), 22);
    let both = IpsecReq {
        esp_req: IPSEC_PREF_REQUIRED | IPSEC_PREF_NEVER,
        ..IpsecReq::default()
    };
    assert_eq!(s.set_socket_policy(t, &both).unwrap_err().errno(), 22);
    assert_eq!(
        s.set_socket_policy(t, &IpsecReq::esp(99, 0))
            .unwrap_err()
            .errno(),
        22
    );
    assert_eq!(
        s.set_socket_policy(t, &IpsecReq::ah(99))
            .unwrap_err()
            .errno(),
        22
    );
    assert_eq!(
        s.set_socket_policy(SocketId(77), &IpsecReq::esp(12, 0))
            .unwrap_err(),
        SockOptError::NoSocket
    );
    // A listening TCP socket: EINVAL (also for a reset).
    s.socket_listen(t).unwrap();
    assert_eq!(
        s.set_socket_policy(t, &IpsecReq::esp(12, 0))
            .unwrap_err()
            .errno(),
        22
    );
    assert_eq!(
        s.set_socket_policy(t, &IpsecReq::default())
            .unwrap_err()
            .errno(),
        22
    );
    // SCTP after listen too.
    let sc = sock(&mut s, 2, Family::V4, 132, true);
    s.socket_listen(sc).unwrap();
    assert!(matches!(
        s.set_socket_policy(sc, &IpsecReq::esp(12, 0)),
        Err(SockOptError::Invalid(_))
    ));
}

// ----- latching ------------------------------------------------------------------------------

fn sa(addr: &str, port: u16) -> SocketAddr {
    SocketAddr::new(a(addr), port)
}

#[test]
fn connections_latch_policy_at_connect() {
    let mut s = spd(vec![Rule::new(
        Selector {
            ulp: Some(6),
            ..remote(R4)
        },
        PolicyDir::Both,
        Action::ipsec(esp(EncrAlg::AesCbc)),
    )]);
    let c = sock(&mut s, 1, Family::V4, 6, false);
    s.socket_connected(c, sa(L4, 40000), sa(R4, 80)).unwrap();
    assert!(s.socket_latched(c));
    assert_eq!(s.socket_endpoints(c), Some((sa(L4, 40000), sa(R4, 80))));
    // New policy: drop everything to R4.
    s.replace(
        PolicySet::from_rules(vec![Rule::new(remote(R4), PolicyDir::Both, Action::Drop)]),
        ReplaceOptions::all(false),
    )
    .unwrap();
    let k = out_tcp(80);
    assert_eq!(s.outbound(&k).verdict, Outbound::Drop(PolicyDrop::Explicit));
    let d = s.outbound(&k.with_socket(c));
    assert!(d.latched);
    assert!(matches!(d.verdict, Outbound::Protect { .. }), "{d:?}");
    assert_eq!(
        s.inbound_clear(&in_tcp(80).with_socket(c)).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
    // The latched policy cannot be changed.
    assert_eq!(
        s.set_socket_policy(c, &IpsecReq::esp(12, 0))
            .unwrap_err()
            .errno(),
        22
    );
    assert_eq!(s.socket_policy(c), Some(IpsecReq::esp(12, 0)));
    // Raw sockets do not latch.
    let raw = sock(&mut s, 2, Family::V4, 1, true);
    s.socket_connected(raw, sa(L4, 0), sa(R4, 0)).unwrap();
    assert!(!s.socket_latched(raw));
}

#[test]
fn latched_connection_keeps_the_identities_of_its_first_sa() {
    let mut s = spd(vec![Rule::new(
        remote(R4),
        PolicyDir::Both,
        Action::ipsec(esp(EncrAlg::AesCbc)),
    )]);
    let c = sock(&mut s, 1, Family::V4, 6, false);
    s.socket_connected(c, sa(L4, 40000), sa(R4, 80)).unwrap();
    let id = |v: &str| Identity {
        kind: IdentityType::Fqdn,
        value: v.to_owned(),
    };
    let mut sas = Sas::new();
    let good = sas.add(Proto::Esp, 0x1001, |c| {
        c.src_id = Some(id("peer.example"));
        c.dst_id = Some(id("me.example"));
    });
    let other = sas.add(Proto::Esp, 0x1002, |c| {
        c.src_id = Some(id("mallory.example"));
        c.dst_id = Some(id("me.example"));
    });
    let k = in_tcp(80).with_socket(c);
    let d = s.inbound_protected(&k, &Sas::ok(&[good], false), &sas.db);
    assert_eq!(d.verdict, Inbound::Accept);
    assert!(d.latched);
    let d = s.inbound_protected(&k, &Sas::ok(&[other], false), &sas.db);
    assert_eq!(d.verdict, Inbound::Drop(PolicyDrop::EspBadId));
    assert_eq!(
        s.inbound_protected(&k, &Sas::ok(&[good], false), &sas.db)
            .verdict,
        Inbound::Accept
    );
    // Not latched: either SA is fine.
    assert_eq!(
        s.inbound_protected(&in_tcp(80), &Sas::ok(&[other], false), &sas.db)
            .verdict,
        Inbound::Accept
    );
    // AH identities are checked the same way.
    let mut s2 = spd(vec![Rule::new(
        remote(R4),
        PolicyDir::Both,
        Action::ipsec(ah(AuthAlg::HmacSha256)),
    )]);
    let c2 = sock(&mut s2, 1, Family::V4, 6, false);
    s2.socket_connected(c2, sa(L4, 40000), sa(R4, 80)).unwrap();
    let ah1 = sas.add(Proto::Ah, 0x2001, |c| c.src_id = Some(id("peer.example")));
    let ah2 = sas.add(Proto::Ah, 0x2002, |c| {
        c.src_id = Some(id("mallory.example"))
    });
    let k2 = in_tcp(80).with_socket(c2);
    assert_eq!(
        s2.inbound_protected(&k2, &Sas::ok(&[ah1], false), &sas.db)
            .verdict,
        Inbound::Accept
    );
    assert_eq!(
        s2.inbound_protected(&k2, &Sas::ok(&[ah2], false), &sas.db)
            .verdict,
        Inbound::Drop(PolicyDrop::AhBadId)
    );
}

#[test]
fn accepted_connections_inherit_the_listener_policy_and_latch() {
    let mut s = spd(vec![Rule::new(
        remote("198.51.100.0/24"),
        PolicyDir::Both,
        Action::ipsec(esp(EncrAlg::AesCbc)),
    )]);
    let l = sock(&mut s, 1, Family::V4, 6, false);
    s.set_socket_policy(l, &IpsecReq::esp(12, 0)).unwrap();
    s.socket_listen(l).unwrap();
    let c = SocketId(2);
    s.socket_accepted(l, c, sa(L4, 80), sa(R4, 40000)).unwrap();
    assert!(s.socket_latched(c));
    let k = PacketKey::tcp(Dir::Out, a(L4), a(R4), 80, 40000).with_socket(c);
    let d = s.outbound(&k);
    assert_eq!(d.policy.unwrap().source, PolicySource::Socket(c));
    assert!(matches!(d.verdict, Outbound::Protect { .. }));
}

// ----- ICMP accept-clear tables --------------------------------------------------------------

/// The table as Solaris spd.c lists it, written out independently of the library.
fn expected_v4(t: u8, c: u8) -> bool {
    match t {
        0 | 14 | 16 | 9 => true, // echo reply, timestamp reply, info reply, router advertisement
        4 | 11 => true,          // source quench, time exceeded
        3 => matches!(c, 0 | 1 | 4), // net, host unreachable, fragmentation needed
        _ => false,              // requests, mask reply, param problem, redirect, unknown
    }
}

fn expected_v6(t: u8) -> bool {
    !matches!(t, 4 | 128) // parameter problem, echo request
}

fn latched_protected(l: &str, r: &str, family: Family) -> (Spd, SocketId) {
    let mut s = spd(vec![Rule::new(
        remote(r),
        PolicyDir::Both,
        Action::ipsec(esp(EncrAlg::AesCbc)),
    )]);
    let c = sock(&mut s, 1, family, 6, false);
    s.socket_connected(c, sa(l, 40000), sa(r, 80)).unwrap();
    (s, c)
}

#[test]
fn icmpv4_accept_and_reject_table_every_entry() {
    let (s, conn) = latched_protected(L4, R4, Family::V4);
    let (mut accepted, mut rejected) = (0, 0);
    for t in 0..=255u8 {
        let codes: Vec<u8> = if t == v4::UNREACH {
            (0..=15).chain([200]).collect()
        } else {
            vec![0, 1]
        };
        for code in codes {
            let k = PacketKey::icmp(Dir::In, a(R4), a(L4), t, code).with_socket(conn);
            let d = s.inbound_clear(&k);
            if expected_v4(t, code) {
                assert_eq!(d.verdict, Inbound::Accept, "type {t} code {code}");
                assert_eq!(d.basis, Basis::IcmpTable);
                accepted += 1;
            } else {
                assert_eq!(
                    d.verdict,
                    Inbound::Drop(PolicyDrop::GotClear),
                    "type {t} code {code}"
                );
                rejected += 1;
            }
        }
    }
    // The named entries, spelled out.
    for (t, c, ok) in [
        (v4::ECHO_REPLY, 0, true),
        (v4::TIMESTAMP_REPLY, 0, true),
        (v4::INFO_REPLY, 0, true),
        (v4::ROUTER_ADVERT, 0, true),
        (v4::UNREACH, v4::UNREACH_FRAG_NEEDED, true),
        (v4::UNREACH, v4::UNREACH_HOST, true),
        (v4::UNREACH, v4::UNREACH_NET, true),
        (v4::SOURCE_QUENCH, 0, true),
        (v4::TIME_EXCEEDED, 0, true),
        (v4::TIME_EXCEEDED, 1, true),
        (v4::ECHO_REQUEST, 0, false),
        (v4::TIMESTAMP_REQUEST, 0, false),
        (v4::INFO_REQUEST, 0, false),
        (v4::MASK_REQUEST, 0, false),
        (v4::ROUTER_SOLICIT, 0, false),
        (v4::MASK_REPLY, 0, false),
        (v4::UNREACH, v4::UNREACH_PORT, false),
        (v4::UNREACH, v4::UNREACH_PROTOCOL, false),
        (v4::UNREACH, 13, false),
        (v4::PARAM_PROBLEM, 0, false),
        (v4::REDIRECT, 1, false),
        (42, 0, false),
    ] {
        let d = s.inbound_clear(&PacketKey::icmp(Dir::In, a(R4), a(L4), t, c).with_socket(conn));
        assert_eq!(d.verdict == Inbound::Accept, ok, "type {t} code {c}");
        assert_eq!(ipsec_core::spd::icmp::accept_clear_v4(t, c), ok);
    }
    eprintln!("IPv4: {accepted} accepted, {rejected} rejected");
}

#[test]
fn icmpv6_accept_and_reject_table_every_entry() {
    let (s, c) = latched_protected(L6, R6, Family::V6);
    for t in 0..=255u8 {
        let k = PacketKey::icmp(Dir::In, a(R6), a(L6), t, 0).with_socket(c);
        let d = s.inbound_clear(&k);
        if expected_v6(t) {
            assert_eq!(d.verdict, Inbound::Accept, "type {t}");
        } else {
            assert_eq!(d.verdict, Inbound::Drop(PolicyDrop::GotClear), "type {t}");
        }
    }
    for (t, ok) in [
        (v6::PARAM_PROB, false),
        (v6::ECHO_REQUEST, false),
        (v6::MLD_QUERY, true),
        (v6::MLD_REPORT, true),
        (v6::MLD_REDUCTION, true),
        (v6::DST_UNREACH, true),
        (v6::PACKET_TOO_BIG, true),
        (v6::ECHO_REPLY, true),
        (v6::ROUTER_SOLICIT, true),
        (v6::ROUTER_ADVERT, true),
        (v6::NEIGHBOR_SOLICIT, true),
        (v6::NEIGHBOR_ADVERT, true),
        (v6::REDIRECT, true),
        (v6::TIME_EXCEEDED, true),
        (200, true),
    ] {
        assert_eq!(ipsec_core::spd::icmp::accept_clear_v6(t), ok, "type {t}");
    }
    // ICMPv4 over IPv6 (or ICMPv6 over IPv4) is not ICMP for the table.
    let wrong = PacketKey::new(Dir::In, a(R6), a(L6), 1)
        .with_icmp(0, 0)
        .with_socket(c);
    assert_eq!(
        s.inbound_clear(&wrong).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
}

#[test]
fn non_icmp_cleartext_to_a_latched_protected_connection_is_rejected() {
    let (s, c) = latched_protected(L4, R4, Family::V4);
    let d = s.inbound_clear(&in_tcp(80).with_socket(c));
    assert_eq!(d.verdict, Inbound::Drop(PolicyDrop::GotClear));
    // Unlatched sockets and the global check take no ICMP from the table (Solaris drops clear
    // ICMP there): only latched connections and partially protected packets use it.
    let mut s2 = spd(vec![Rule::new(
        remote(R4),
        PolicyDir::Both,
        Action::ipsec(esp(EncrAlg::AesCbc)),
    )]);
    let raw = sock(&mut s2, 5, Family::V4, 1, false);
    let k = PacketKey::icmp(Dir::In, a(R4), a(L4), v4::ECHO_REPLY, 0).with_socket(raw);
    assert_eq!(
        s2.inbound_clear(&k).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
}

#[test]
fn partially_protected_icmp_falls_back_to_the_table() {
    let s = spd(vec![Rule::new(
        remote(R4),
        PolicyDir::Both,
        Action::ipsec(ah_esp()),
    )]);
    let mut sas = Sas::new();
    let e = sas.add(Proto::Esp, 0x1000, |_| {});
    let ok = Sas::ok(&[e], false);
    let reply = PacketKey::icmp(Dir::In, a(R4), a(L4), v4::ECHO_REPLY, 0);
    assert_eq!(
        s.inbound_protected(&reply, &ok, &sas.db).verdict,
        Inbound::Accept
    );
    let req = PacketKey::icmp(Dir::In, a(R4), a(L4), v4::ECHO_REQUEST, 0);
    assert_eq!(
        s.inbound_protected(&req, &ok, &sas.db).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
    assert_eq!(
        s.inbound_protected(&in_tcp(80), &ok, &sas.db).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
}

// ----- accept-clear tunables and echo replies ------------------------------------------------

#[test]
fn icmp_accept_clear_lets_the_stack_answer_clear_pings_in_clear() {
    let mut s = spd(vec![
        Rule::new(
            remote(R4),
            PolicyDir::Both,
            Action::ipsec(esp(EncrAlg::AesCbc)),
        ),
        Rule::new(
            remote(R6),
            PolicyDir::Both,
            Action::ipsec(esp(EncrAlg::AesCbc)),
        ),
    ]);
    assert!(s.tunables().icmp_accept_clear, "Solaris default is on");
    for (l, r) in [(L4, R4), (L6, R6)] {
        let echo = if r == R4 {
            v4::ECHO_REQUEST
        } else {
            v6::ECHO_REQUEST
        };
        let reply_type = if r == R4 {
            v4::ECHO_REPLY
        } else {
            v6::ECHO_REPLY
        };
        let req = PacketKey::icmp(Dir::In, a(r), a(l), echo, 0);
        let d = s.inbound_clear(&req);
        assert_eq!(
            (d.verdict, d.basis),
            (Inbound::Accept, Basis::IcmpAcceptClear)
        );
        assert_eq!(d.protection, InboundProtection::Clear);
        // The reply goes out the way the request came in: clear, although policy protects it.
        let reply = PacketKey::icmp(Dir::Out, a(l), a(r), reply_type, 0);
        assert!(matches!(
            s.outbound(&reply).verdict,
            Outbound::Protect { .. }
        ));
        let rd = s.reply_outbound(&reply, &d.protection);
        assert_eq!(
            (rd.verdict, rd.basis),
            (Outbound::Bypass, Basis::ReplyClear)
        );
    }
    // Off: the stack's ICMP goes through the policy check.
    s.tunables_mut().set("icmp-accept-clear", "off").unwrap();
    let req = PacketKey::icmp(Dir::In, a(R4), a(L4), v4::ECHO_REQUEST, 0);
    assert_eq!(
        s.inbound_clear(&req).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
    let req6 = PacketKey::icmp(Dir::In, a(R6), a(L6), v6::ECHO_REQUEST, 0);
    assert_eq!(
        s.inbound_clear(&req6).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
}

#[test]
fn igmp_and_pim_accept_clear() {
    let mut s = spd(vec![Rule::new(
        Selector::any(),
        PolicyDir::Both,
        Action::ipsec(esp(EncrAlg::AesCbc)),
    )]);
    let igmp = PacketKey::new(Dir::In, a(R4), a("224.0.0.1"), 2);
    let pim = PacketKey::new(Dir::In, a(R4), a("224.0.0.13"), 103);
    let pim6 = PacketKey::new(Dir::In, a(R6), a("ff02::d"), 103);
    assert_eq!(s.inbound_clear(&igmp).basis, Basis::IgmpAcceptClear);
    assert_eq!(s.inbound_clear(&pim).basis, Basis::PimAcceptClear);
    assert_eq!(s.inbound_clear(&pim6).verdict, Inbound::Accept);
    // Delivered to a socket, they are checked like everything else.
    let raw = sock(&mut s, 1, Family::V4, 2, true);
    assert_eq!(
        s.inbound_clear(&igmp.with_socket(raw)).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
    s.tunables_mut().igmp_accept_clear = false;
    s.tunables_mut().pim_accept_clear = false;
    assert_eq!(
        s.inbound_clear(&igmp).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
    assert_eq!(
        s.inbound_clear(&pim).verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
}

#[test]
fn echo_reply_is_protected_exactly_like_its_request() {
    // Outbound policy for the reply would be bypass: the reply still inherits the request's SAs.
    let s = spd(vec![
        Rule::new(
            remote(R4),
            PolicyDir::In,
            Action::ipsec(Protection::from_props(
                Some(AlgSpec::any()),
                Some(AlgSpec::any()),
                Some(AlgSpec::any()),
                SaSharing::Shared,
            )),
        ),
        Rule::new(remote(R4), PolicyDir::Out, Action::Bypass),
    ]);
    let mut sas = Sas::new();
    let e = sas.add(Proto::Esp, 0x1000, |c| {
        c.encr_key = KeyMaterial::new(&[1u8; 32])
    });
    let h = sas.add(Proto::Ah, 0x1001, |c| {
        c.auth_alg = Some(AuthAlg::HmacSha512);
        c.auth_key = KeyMaterial::new(&[2u8; 64]);
    });
    let req = PacketKey::icmp(Dir::In, a(R4), a(L4), v4::ECHO_REQUEST, 0);
    let d = s.inbound_protected(&req, &Sas::ok(&[h, e], false), &sas.db);
    assert_eq!(d.verdict, Inbound::Accept);
    let InboundProtection::Protected {
        bundle,
        mode,
        ah_spi,
        esp_spi,
    } = d.protection
    else {
        panic!("{:?}", d.protection)
    };
    assert_eq!(
        (ah_spi, esp_spi, mode),
        (Some(0x1001), Some(0x1000), Mode::Transport)
    );
    assert_eq!(
        bundle.ah,
        Some(AlgSpec::of(AuthAlg::HmacSha512).with_bits(KeyLen::exactly(512)))
    );
    let e2 = bundle.esp.unwrap();
    assert_eq!(
        e2.encr,
        AlgSpec::of(EncrAlg::AesCbc).with_bits(KeyLen::exactly(256))
    );
    assert_eq!(
        e2.auth,
        EspAuth::Required(AlgSpec::of(AuthAlg::HmacSha256).with_bits(KeyLen::exactly(256)))
    );
    let reply = PacketKey::icmp(Dir::Out, a(L4), a(R4), v4::ECHO_REPLY, 0);
    assert_eq!(s.outbound(&reply).verdict, Outbound::Bypass);
    let rd = s.reply_outbound(&reply, &d.protection);
    assert_eq!(rd.basis, Basis::ReplyInherited);
    assert_eq!(
        rd.verdict,
        Outbound::Protect {
            bundles: &[bundle],
            mode: Mode::Transport
        }
    );
}

// ----- intra-machine traffic ---------------------------------------------------------------

#[test]
fn intra_machine_traffic_is_checked_as_if_protected() {
    let lo = PacketKey::tcp(Dir::Out, a(L4), a(L4), 40000, 80);
    let prot = Protection::from_props(
        None,
        Some(AlgSpec::of(EncrAlg::AesCbc)),
        Some(AlgSpec::of(AuthAlg::HmacSha256)),
        SaSharing::Shared,
    );
    // Same policy both ways: accepted, no crypto, the protection recorded for replies.
    let s = spd(vec![Rule::new(
        remote(L4),
        PolicyDir::Both,
        Action::ipsec(prot),
    )]);
    let d = s.loopback(&lo, None);
    assert!(matches!(d.outbound.verdict, Outbound::Protect { .. }));
    assert_eq!(
        (d.inbound.verdict, d.inbound.basis),
        (Inbound::Accept, Basis::Loopback)
    );
    assert_eq!(
        d.inbound.protection,
        InboundProtection::Loopback {
            bundle: prot,
            mode: Mode::Transport
        }
    );
    let rd = s.reply_outbound(&lo.reply(), &d.inbound.protection);
    assert_eq!(
        rd.verdict,
        Outbound::Protect {
            bundles: &[prot],
            mode: Mode::Transport
        }
    );

    // Outbound ESP, inbound wants AH: mismatch.
    let s = spd(vec![
        Rule::new(remote(L4), PolicyDir::Out, Action::ipsec(prot)),
        Rule::new(
            remote(L4),
            PolicyDir::In,
            Action::ipsec(ah(AuthAlg::HmacSha256)),
        ),
    ]);
    assert_eq!(
        s.loopback(&lo, None).inbound.verdict,
        Inbound::Drop(PolicyDrop::LoopbackMismatch)
    );
    // Outbound any cipher, inbound requires AES: the sender might pick another one.
    let s = spd(vec![
        Rule::new(
            remote(L4),
            PolicyDir::Out,
            Action::ipsec(Protection::esp(AlgSpec::any())),
        ),
        Rule::new(
            remote(L4),
            PolicyDir::In,
            Action::ipsec(esp(EncrAlg::AesCbc)),
        ),
    ]);
    assert_eq!(
        s.loopback(&lo, None).inbound.verdict,
        Inbound::Drop(PolicyDrop::LoopbackMismatch)
    );
    // Outbound AES, inbound any or AES or 3DES: the second alternative accepts.
    let s = spd(vec![
        Rule::new(
            remote(L4),
            PolicyDir::Out,
            Action::ipsec(esp(EncrAlg::AesCbc)),
        ),
        Rule::new(
            remote(L4),
            PolicyDir::In,
            Action::Ipsec(vec![
                esp(EncrAlg::TripleDesCbc),
                Protection::esp(AlgSpec::any()),
            ]),
        ),
    ]);
    let d = s.loopback(&lo, None);
    assert_eq!(
        (d.inbound.verdict, d.inbound.alternative),
        (Inbound::Accept, Some(1))
    );
    // Outbound bypass, inbound requires ESP: got clear.
    let s = spd(vec![
        Rule::new(remote(L4), PolicyDir::Out, Action::Bypass),
        Rule::new(
            remote(L4),
            PolicyDir::In,
            Action::ipsec(esp(EncrAlg::AesCbc)),
        ),
    ]);
    assert_eq!(
        s.loopback(&lo, None).inbound.verdict,
        Inbound::Drop(PolicyDrop::GotClear)
    );
    // Outbound ESP, no inbound policy: got secure.
    let s = spd(vec![Rule::new(
        remote(L4),
        PolicyDir::Out,
        Action::ipsec(esp(EncrAlg::AesCbc)),
    )]);
    assert_eq!(
        s.loopback(&lo, None).inbound.verdict,
        Inbound::Drop(PolicyDrop::GotSecure)
    );
    // Outbound drop: never arrives.
    let s = spd(vec![Rule::new(remote(L4), PolicyDir::Out, Action::Drop)]);
    assert_eq!(
        s.loopback(&lo, None).inbound.verdict,
        Inbound::Drop(PolicyDrop::Explicit)
    );
    // The receiving socket's own policy is enforced on the inbound side.
    let mut s = spd(vec![Rule::new(
        remote(L4),
        PolicyDir::Both,
        Action::ipsec(esp(EncrAlg::AesCbc)),
    )]);
    let rcv = sock(&mut s, 9, Family::V4, 6, true);
    s.set_socket_policy(rcv, &IpsecReq::ah(5)).unwrap();
    assert_eq!(
        s.loopback(&lo, Some(rcv)).inbound.verdict,
        Inbound::Drop(PolicyDrop::LoopbackMismatch)
    );
    s.set_socket_policy(rcv, &IpsecReq::esp(12, 0)).unwrap();
    assert_eq!(s.loopback(&lo, Some(rcv)).inbound.verdict, Inbound::Accept);
}

#[test]
fn request_checks_follow_ipsec_set_req_order() {
    let mut s = spd(vec![]);
    let user = sock(&mut s, 1, Family::V4, 17, false);
    // Unknown bits first (EINVAL), then privilege for NEVER (EPERM), then NEVER with REQUIRED.
    let unknown_and_never = IpsecReq {
        ah_req: IPSEC_PREF_NEVER | 0x80,
        esp_req: IPSEC_PREF_NEVER,
        ..IpsecReq::default()
    };
    assert_eq!(
        s.set_socket_policy(user, &unknown_and_never)
            .unwrap_err()
            .errno(),
        22
    );
    let never_and_required = IpsecReq {
        esp_req: IPSEC_PREF_NEVER | IPSEC_PREF_REQUIRED,
        ..IpsecReq::default()
    };
    assert_eq!(
        s.set_socket_policy(user, &never_and_required)
            .unwrap_err()
            .errno(),
        1
    );
    let root = sock(&mut s, 2, Family::V4, 17, true);
    assert_eq!(
        s.set_socket_policy(root, &never_and_required)
            .unwrap_err()
            .errno(),
        22
    );
    // A reset request (no NEVER/REQUIRED bit) is not checked further.
    let reset_with_junk = IpsecReq {
        esp_req: IPSEC_PREF_UNIQUE | 0x80,
        ..IpsecReq::default()
    };
    s.set_socket_policy(user, &reset_with_junk).unwrap();
    // But not even a reset is allowed once latched.
    s.socket_connected(user, sa(L4, 5000), sa(R4, 53)).unwrap();
    assert_eq!(
        s.set_socket_policy(user, &IpsecReq::default())
            .unwrap_err()
            .errno(),
        22
    );
}

#[test]
fn neighbor_discovery_needs_an_explicit_pass_rule() {
    // ipsecconf(8) Example 13: ND is not bypassed automatically.
    let net = "fec0:abcd::/32";
    let base = Rule::new(
        remote(net),
        PolicyDir::Both,
        Action::ipsec(ah(AuthAlg::HmacSha1)),
    );
    let nd = Rule::new(
        Selector {
            ulp: Some(58),
            icmp_type: Some(ipsec_core::spd::IcmpRange::new(133, 137)),
            ..remote(net)
        },
        PolicyDir::Both,
        Action::Bypass,
    );
    let (l, r) = (a("fec0:abcd::1"), a("fec0:abcd::2"));
    let ns_out = PacketKey::icmp(Dir::Out, l, r, v6::NEIGHBOR_SOLICIT, 0);
    let ns_in = PacketKey::icmp(Dir::In, r, l, v6::NEIGHBOR_SOLICIT, 0);
    let echo_out = PacketKey::icmp(Dir::Out, l, r, v6::ECHO_REQUEST, 0);
    let without = spd(vec![base.clone()]);
    assert!(matches!(
        without.outbound(&ns_out).verdict,
        Outbound::Protect { .. }
    ));
    let with = spd(vec![base, nd]);
    assert_eq!(with.outbound(&ns_out).verdict, Outbound::Bypass);
    assert_eq!(
        with.inbound_clear(&ns_in.with_socket(SocketId(99))).verdict,
        Inbound::Accept
    );
    assert!(matches!(
        with.outbound(&echo_out).verdict,
        Outbound::Protect { .. }
    ));
}
