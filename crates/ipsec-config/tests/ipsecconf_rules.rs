//! `PolicyFile::to_rules`: the ipsecconf AST onto the SPD model of `ipsec_core::spd`, and
//! whole policy files through the SPD.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;
use std::sync::Arc;

use ipsec_config::ipsecconf::{
    parse_with, Address, Endpoints, Entry, ParseOptions, Pattern, PolicyFile, Properties,
};
use ipsec_core::spd::{
    self, AlgSpec, CompiledSpd, EspAuth, EspSpec, IcmpRange, KeyLen, Negotiate, Outbound,
    PacketKey, PolicyDir, PolicySet, PortRange, Priority, Protection, ReplaceOptions, Rule,
    SaSharing, Selector, Spd, TunnelNames,
};
use ipsec_core::{Mode, Prefix};
use ipsec_crypto::{AuthAlg, EncrAlg};

fn policy(text: &str) -> PolicyFile {
    parse_with(text, "rules.conf", ParseOptions { numeric: true })
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn rules(text: &str) -> Vec<Rule> {
    let rules = policy(text)
        .to_rules()
        .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    // Whatever to_rules gives, the SPD compiles.
    CompiledSpd::compile(
        Arc::new(PolicySet::from_rules(rules.clone())),
        &mut TunnelNames::default(),
    )
    .unwrap_or_else(|e| panic!("{text:?}: {e}"));
    rules
}

fn rule(text: &str) -> Rule {
    let mut v = rules(text);
    assert_eq!(v.len(), 1, "{text:?}");
    v.remove(0)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pfx(s: &str) -> Prefix {
    match s.split_once('/') {
        Some((a, l)) => Prefix {
            addr: ip(a),
            len: l.parse().unwrap(),
        },
        None => Prefix::host(ip(s)),
    }
}

#[test]
fn host_to_host_esp() {
    let r = rule("{laddr 192.0.2.1 raddr 192.0.2.0/24 lport 1234 rport telnet ulp tcp} ipsec {encr_algs aes(128..256) encr_auth_algs sha256 sa unique}");
    assert_eq!(
        r.selector,
        Selector {
            laddr: Some(pfx("192.0.2.1")),
            raddr: Some(pfx("192.0.2.0/24")),
            lport: Some(PortRange::single(1234)),
            rport: Some(PortRange::single(23)),
            ulp: Some(6),
            icmp_type: None,
            icmp_code: None,
        }
    );
    assert_eq!(r.dir, PolicyDir::Both);
    assert_eq!(
        r.action,
        spd::Action::Ipsec(vec![Protection {
            ah: None,
            esp: Some(EspSpec {
                encr: AlgSpec::of(EncrAlg::AesCbc).with_bits(KeyLen::range(Some(128), Some(256))),
                auth: EspAuth::Required(AlgSpec::of(AuthAlg::HmacSha256)),
            }),
            sa: SaSharing::Unique,
            self_encap: false,
        }])
    );
    assert_eq!(r.line, Some(1));
    assert_eq!(r.tunnel, None);
    assert_eq!(r.mode(), Mode::Transport);
}

#[test]
fn properties_map_as_the_man_page_says() {
    // encr_algs alone: any ESP SA with that cipher, authentication optional.
    let r = rule("{} ipsec {encr_algs aes}");
    assert_eq!(
        r.action.alternatives()[0].esp,
        Some(EspSpec {
            encr: AlgSpec::of(EncrAlg::AesCbc),
            auth: EspAuth::Optional
        })
    );
    // encr_auth_algs alone: NULL encryption with authentication.
    let r = rule("{} ipsec {encr_auth_algs md5}");
    assert_eq!(
        r.action.alternatives()[0].esp,
        Some(EspSpec {
            encr: AlgSpec::of(EncrAlg::Null),
            auth: EspAuth::Required(AlgSpec::of(AuthAlg::HmacMd5))
        })
    );
    // `none` is as if absent; `any` has no algorithm; AH and ESP together.
    let r = rule("{} ipsec {auth_algs any(..160) encr_algs none encr_auth_algs sha1}");
    let p = r.action.alternatives()[0];
    assert_eq!(
        p.ah,
        Some(AlgSpec::any().with_bits(KeyLen::range(None, Some(160))))
    );
    assert_eq!(p.esp.unwrap().encr, AlgSpec::of(EncrAlg::Null));
    assert_eq!(p.sa, SaSharing::Shared);
    let r = rule("{} ipsec {auth_algs sha1 encr_auth_algs none}");
    assert_eq!(r.action.alternatives()[0].esp, None);
    assert_eq!(
        r.action.alternatives()[0].ah,
        Some(AlgSpec::of(AuthAlg::HmacSha1))
    );
    let r = rule("{} ipsec {encr_algs any(192..) sa shared}");
    assert_eq!(
        r.action.alternatives()[0].esp.unwrap().encr,
        AlgSpec::any().with_bits(KeyLen::range(Some(192), None))
    );
    assert_eq!(
        r.action.alternatives()[0].esp.unwrap().auth,
        EspAuth::Optional
    );
}

#[test]
fn actions_and_alternatives() {
    let r = rule(
        "{raddr 10.0.0.1} ipsec {encr_algs aes encr_auth_algs sha1} or ipsec {encr_algs blowfish}",
    );
    assert_eq!(r.action.alternatives().len(), 2);
    assert_eq!(
        r.action.alternatives()[1].esp.unwrap().encr,
        AlgSpec::of(EncrAlg::BlowfishCbc)
    );
    assert_eq!(rule("{dir in} pass {}").action, spd::Action::Bypass);
    assert_eq!(
        rule("{dir in} bypass {} or pass {}").action,
        spd::Action::Bypass
    );
    assert_eq!(rule("{dir out} drop {}").action, spd::Action::Drop);
    // Mixed alternatives: Solaris accepts them, the SPD model cannot hold them.
    let f =
        policy("{dir in} pass {}\n  {raddr 10.0.0.1 dir in} ipsec {auth_algs sha1} or pass {}\n");
    let e = f.to_rules().unwrap_err();
    assert_eq!(
        (e.file.as_str(), e.line, e.column, e.token.as_str()),
        ("rules.conf", 2, 3, "{")
    );
    assert!(e.expected.contains("ipsec or bypass"), "{e}");
}

#[test]
fn directions_and_old_style_orientation() {
    assert_eq!(rule("{dir in} ipsec {auth_algs sha1}").dir, PolicyDir::In);
    assert_eq!(rule("{dir out} ipsec {auth_algs sha1}").dir, PolicyDir::Out);
    assert_eq!(rule("{} ipsec {auth_algs sha1}").dir, PolicyDir::Both);
    // apply: outbound, source = local.
    let r =
        rule("{saddr 10.0.0.1 daddr 10.0.0.0/8 sport 1 dport 2 ulp udp} apply {auth_algs sha1}");
    assert_eq!(r.dir, PolicyDir::Out);
    assert_eq!(r.selector.laddr, Some(pfx("10.0.0.1")));
    assert_eq!(r.selector.raddr, Some(pfx("10.0.0.0/8")));
    assert_eq!(r.selector.lport, Some(PortRange::single(1)));
    assert_eq!(r.selector.rport, Some(PortRange::single(2)));
    assert_eq!(r.selector.ulp, Some(17));
    assert!(matches!(r.action, spd::Action::Ipsec(_)));
    // permit: inbound, source = remote.
    let r = rule("{saddr 10.0.0.1 daddr 10.0.0.0/8 sport 1 dport 2} permit {auth_algs sha1}");
    assert_eq!(r.dir, PolicyDir::In);
    assert_eq!(r.selector.laddr, Some(pfx("10.0.0.0/8")));
    assert_eq!(r.selector.raddr, Some(pfx("10.0.0.1")));
    assert_eq!(r.selector.lport, Some(PortRange::single(2)));
    assert_eq!(r.selector.rport, Some(PortRange::single(1)));
    // Old-style bypass with the direction in the properties, and old-style ipsec.
    let r = rule("{saddr 10.0.0.1 smask 255.255.0.0} bypass {dir in}");
    assert_eq!(
        (r.dir, r.action.clone()),
        (PolicyDir::In, spd::Action::Bypass)
    );
    assert_eq!(r.selector.raddr, Some(pfx("10.0.0.1/16")));
    assert_eq!(r.selector.laddr, None);
    let r = rule("{daddr 10.0.0.2 dir out} ipsec {auth_algs sha1}");
    assert_eq!(r.selector.raddr, Some(pfx("10.0.0.2")));
}

#[test]
fn icmp_and_tunnel_selectors() {
    let r = rule("{raddr fec0:abcd::0/32 ulp ipv6-icmp type 133-137 dir both} pass {}");
    assert_eq!(r.selector.icmp_type, Some(IcmpRange::new(133, 137)));
    assert_eq!(r.selector.icmp_code, None);
    assert_eq!(r.selector.ulp, Some(58));
    assert_eq!(r.selector.raddr, Some(pfx("fec0:abcd::/32")));
    let r = rule("{ulp icmp type unreach code needfrag dir in} drop {}");
    assert_eq!(r.selector.icmp_type, Some(IcmpRange::single(3)));
    assert_eq!(r.selector.icmp_code, Some(IcmpRange::single(4)));
    let r = rule("{tunnel ip.tun0 negotiate tunnel raddr 10.8.0.5/32 laddr 0.0.0.0/0} ipsec {encr_algs aes encr_auth_algs sha1}");
    assert_eq!(r.tunnel.as_deref(), Some("ip.tun0"));
    assert_eq!(r.negotiate, Some(Negotiate::Tunnel));
    assert_eq!(r.mode(), Mode::Tunnel);
    assert_eq!(r.selector.laddr, Some(pfx("0.0.0.0/0")));
    let r = rule("{tunnel ip.tun0 negotiate transport} ipsec {encr_algs aes encr_auth_algs md5}");
    assert_eq!(r.negotiate, Some(Negotiate::Transport));
    assert_eq!(r.mode(), Mode::Transport);
    assert_eq!(r.selector, Selector::any());
}

#[test]
fn priorities_follow_file_order_and_actions() {
    let rs = rules(
        "{raddr 10.0.0.0/8} ipsec {auth_algs sha1}\n\
         {raddr 10.0.0.0/8} ipsec {encr_algs aes encr_auth_algs sha1}\n\
         {raddr 10.0.0.0/8} ipsec {encr_algs aes auth_algs sha1}\n\
         {raddr 10.0.0.1 dir both} bypass {}\n\
         {dir in} drop {}\n",
    );
    let prio: Vec<u32> = rs
        .iter()
        .enumerate()
        .map(|(i, r)| Priority::for_rule(i, &r.action).value())
        .collect();
    assert_eq!(
        prio,
        vec![
            0x000f_ffff | 0x0020_0000,
            0x000f_fffe | 0x0040_0000,
            0x000f_fffd | 0x0060_0000,
            0x000f_fffc | 0x0080_0000,
            0x000f_fffb,
        ]
    );
    assert_eq!(
        rs.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![Some(1), Some(2), Some(3), Some(4), Some(5)]
    );
}

fn entry(endpoints: Endpoints) -> Entry {
    Entry {
        line: 7,
        column: 1,
        pattern: Pattern {
            endpoints,
            ..Pattern::default()
        },
        alternatives: vec![(
            ipsec_config::ipsecconf::Action::Ipsec,
            Properties {
                auth_algs: Some(ipsec_config::ipsecconf::AlgSpec::new(
                    ipsec_config::ipsecconf::AlgChoice::Alg(AuthAlg::HmacSha256),
                )),
                ..Properties::default()
            },
        )],
    }
}

fn name(n: &str, prefix: Option<u8>, addrs: &[&str]) -> Address {
    Address::Name {
        name: n.to_string(),
        prefix,
        addrs: addrs.iter().map(|a| ip(a)).collect(),
    }
}

#[test]
fn multi_address_names_expand_into_address_pairs() {
    let f = PolicyFile {
        file: "names.conf".to_string(),
        entries: vec![
            // Two local addresses (one per family), one IPv4 remote: one pair.
            entry(Endpoints::LocalRemote {
                local: Some(name("a", None, &["10.0.0.1", "2001:db8::1"])),
                remote: Some(Address::Prefix(pfx("10.0.0.2"))),
                lport: None,
                rport: None,
            }),
            // Both families on both sides: the IPv4 pairs and the IPv6 pair.
            entry(Endpoints::LocalRemote {
                local: Some(name("a", None, &["10.0.0.1", "2001:db8::1"])),
                remote: Some(name("b", None, &["10.0.0.2", "10.0.0.3", "2001:db8::2"])),
                lport: None,
                rport: Some(22),
            }),
            // A name alone: one rule per address; a single-address name keeps its prefix.
            entry(Endpoints::SrcDst {
                src: Some(name("net", Some(16), &["10.9.0.0"])),
                dst: Some(name("c", None, &["10.0.0.4", "10.0.0.5"])),
                sport: None,
                dport: None,
            }),
        ],
    };
    let mut f = f;
    f.entries[2].pattern.dir = Some(ipsec_config::ipsecconf::Dir::In);
    let rs = f.to_rules().unwrap();
    let pairs: Vec<(Option<Prefix>, Option<Prefix>)> = rs
        .iter()
        .map(|r| (r.selector.laddr, r.selector.raddr))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (Some(pfx("10.0.0.1")), Some(pfx("10.0.0.2"))),
            (Some(pfx("10.0.0.1")), Some(pfx("10.0.0.2"))),
            (Some(pfx("10.0.0.1")), Some(pfx("10.0.0.3"))),
            (Some(pfx("2001:db8::1")), Some(pfx("2001:db8::2"))),
            // inbound old style: source = remote
            (Some(pfx("10.0.0.4")), Some(pfx("10.9.0.0/16"))),
            (Some(pfx("10.0.0.5")), Some(pfx("10.9.0.0/16"))),
        ]
    );
    assert!(rs[1..4]
        .iter()
        .all(|r| r.selector.rport == Some(PortRange::single(22))));
    assert!(rs.iter().all(|r| r.line == Some(7)));
    // No pair of the same family.
    let bad = PolicyFile {
        file: "names.conf".to_string(),
        entries: vec![entry(Endpoints::LocalRemote {
            local: Some(name("a", None, &["10.0.0.1"])),
            remote: Some(name("b", None, &["2001:db8::2"])),
            lport: None,
            rport: None,
        })],
    };
    let e = bad.to_rules().unwrap_err();
    assert_eq!((e.file.as_str(), e.line, e.column), ("names.conf", 7, 1));
    assert!(e.expected.contains("address pair"), "{e}");
    // A hand-built entry the model refuses is reported, not passed on.
    let mut bad = PolicyFile::default();
    let mut e = entry(Endpoints::Any);
    e.pattern.icmp_type = Some(ipsec_config::ipsecconf::IcmpRange::single(8));
    bad.entries.push(e);
    let err = bad.to_rules().unwrap_err();
    assert!(err.expected.contains("type requires ulp icmp"), "{err}");
}

#[test]
fn a_sample_policy_decides_through_the_spd() {
    let text = "# Host A 192.0.2.1 talking to host B 192.0.2.2.\n\
                {laddr 192.0.2.1 raddr 192.0.2.2} ipsec {encr_algs aes-gcm encr_auth_algs none sa shared}\n\
                {laddr 192.0.2.1 raddr 192.0.2.2 ulp tcp rport ssh dir both} bypass {}\n\
                {ulp ipv6-icmp type 133-137 dir both} pass {}\n\
                {raddr 198.51.100.0/24 dir out} drop {}\n";
    let rs = rules(text);
    let mut spd = Spd::new();
    spd.replace(PolicySet::from_rules(rs), ReplaceOptions::all(false))
        .unwrap();
    let (a, b) = (ip("192.0.2.1"), ip("192.0.2.2"));
    // TCP to the web server: protected by rule 0.
    let d = spd.outbound(&PacketKey::tcp(spd::Dir::Out, a, b, 40000, 80));
    match d.verdict {
        Outbound::Protect { bundles, mode } => {
            assert_eq!(mode, Mode::Transport);
            assert_eq!(bundles[0].esp.unwrap().encr, AlgSpec::of(EncrAlg::AesGcm16));
            assert_eq!(bundles[0].esp.unwrap().auth, EspAuth::Optional);
        }
        v => panic!("{v:?}"),
    }
    assert_eq!(d.policy.unwrap().source.rule_index(), Some(0));
    // SSH: the bypass rule wins although it comes later (bypass boost).
    let d = spd.outbound(&PacketKey::tcp(spd::Dir::Out, a, b, 40000, 22));
    assert_eq!(d.verdict, Outbound::Bypass);
    assert_eq!(d.policy.unwrap().source.rule_index(), Some(1));
    // Neighbor solicitation: bypassed.
    let d = spd.outbound(&PacketKey::icmp(
        spd::Dir::Out,
        ip("fe80::1"),
        ip("ff02::1:ff00:2"),
        135,
        0,
    ));
    assert_eq!(d.verdict, Outbound::Bypass);
    assert_eq!(d.policy.unwrap().source.rule_index(), Some(2));
    // The lab network: dropped.
    let d = spd.outbound(&PacketKey::tcp(
        spd::Dir::Out,
        a,
        ip("198.51.100.7"),
        40000,
        80,
    ));
    assert!(matches!(d.verdict, Outbound::Drop(_)), "{d:?}");
}
