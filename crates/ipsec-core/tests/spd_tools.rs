//! Beyond Solaris, and the model the ipsecconf parser targets: explain queries, load-time
//! shadow/overlap warnings, atomic replace with dry run (-Fa, -r), -a/-d/-f/-F, match order,
//! tunables by ipadm name, the model's ipsecconf semantics and printing, drop-reason names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use ipsec_core::spd::{
    analyze, Action, AlgSpec, AnalysisLimits, Basis, Dir, EspAuth, EspSpec, Family, IcmpRange,
    IpsecReq, KeyLen, ModelError, Negotiate, OldStyle, Outbound, PacketKey, PolicyDir, PolicyDrop,
    PolicySet, PolicySource, PortRange, Prefix, Protection, ReplaceOptions, Rule, SaSharing,
    Selector, SocketId, SocketInfo, Spd, Tunables, Warning,
};
use ipsec_crypto::{AuthAlg, EncrAlg};

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

fn esp_any() -> Action {
    Action::ipsec(Protection::esp(AlgSpec::any()))
}

fn ah_any() -> Action {
    Action::ipsec(Protection::ah(AlgSpec::any()))
}

fn set(rules: Vec<Rule>) -> PolicySet {
    PolicySet::from_rules(rules)
}

// ----- explain ---------------------------------------------------------------------------------

#[test]
fn explain_names_the_deciding_rule_its_priority_and_the_losers() {
    let s = Spd::with_policy(set(vec![
        Rule::new(remote("10.0.0.0/8"), PolicyDir::Both, Action::Drop).at_line(3),
        Rule::new(
            Selector {
                ulp: Some(6),
                rport: Some(PortRange::single(80)),
                ..remote("10.1.0.0/16")
            },
            PolicyDir::Both,
            esp_any(),
        )
        .at_line(7),
        Rule::new(remote("192.0.2.0/24"), PolicyDir::Both, Action::Bypass).at_line(9),
    ]))
    .unwrap();
    let k = PacketKey::tcp(Dir::Out, a("192.0.2.1"), a("10.1.2.3"), 40000, 80);
    let e = s.explain(&k);
    eprintln!("{e}");
    let d = e.deciding.as_ref().unwrap();
    assert_eq!(d.source, PolicySource::Host(1));
    assert_eq!(d.line, Some(7));
    assert_eq!(d.priority.value(), 0x004f_fffe);
    assert_eq!(e.others.len(), 1);
    assert_eq!(e.others[0].source, PolicySource::Host(0));
    assert_eq!(e.basis, Basis::Rule);
    let t = e.to_string();
    for needle in [
        "decided by rule 1 (line 7)",
        "raddr 10.1.0.0/16 contains remote address 10.1.2.3",
        "rport 80 contains remote port 80",
        "0x4ffffe (base 0xffffe + ESP 0x400000)",
        "rule 0, priority 0xffff",
        "protected in transport mode with ipsec {encr_algs any sa shared}",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in\n{t}");
    }
    // Inbound: what a cleartext packet gets and what a protected one must satisfy.
    let ki = PacketKey::tcp(Dir::In, a("10.1.2.3"), a("192.0.2.1"), 80, 40000);
    let e = s.explain(&ki);
    assert!(
        e.outcome.starts_with("dropped in clear (spd_got_clear)"),
        "{}",
        e.outcome
    );
    // No match.
    let e = s.explain(&PacketKey::tcp(
        Dir::Out,
        a("192.0.2.1"),
        a("172.16.0.1"),
        1,
        2,
    ));
    assert!(e.deciding.is_none());
    assert_eq!(e.basis, Basis::NoPolicy);
    assert!(e.text.contains("no matching policy"), "{}", e.text);
    // Key management: matching rules are listed but not consulted.
    let e = s.explain(&PacketKey::udp(
        Dir::Out,
        a("192.0.2.1"),
        a("10.1.2.3"),
        500,
        500,
    ));
    assert_eq!(e.basis, Basis::KeyManagement);
    assert_eq!(e.others.len(), 1);
    assert!(
        e.text.contains("matching rules are not consulted"),
        "{}",
        e.text
    );
}

#[test]
fn explain_shows_socket_precedence_and_tunnels() {
    let mut s = Spd::with_policy(set(vec![
        Rule::new(Selector::any(), PolicyDir::Both, Action::Bypass),
        Rule::new(remote("10.0.0.0/8"), PolicyDir::Both, esp_any())
            .in_tunnel("ip.tun0", Some(Negotiate::Tunnel)),
    ]))
    .unwrap();
    let sid = SocketId(4);
    s.socket_open(
        sid,
        SocketInfo {
            family: Family::V4,
            proto: 17,
            privileged: true,
        },
    )
    .unwrap();
    s.set_socket_policy(sid, &IpsecReq::esp(12, 0)).unwrap();
    let k = PacketKey::udp(Dir::Out, a("192.0.2.1"), a("192.0.2.2"), 5000, 53).with_socket(sid);
    let e = s.explain(&k);
    assert_eq!(
        e.deciding.as_ref().unwrap().source,
        PolicySource::Socket(sid)
    );
    assert_eq!(e.others[0].source, PolicySource::Host(0));
    assert!(e.text.contains("per-socket policy"), "{}", e.text);
    let t = s.tunnel_id("ip.tun0");
    let kt = PacketKey::tcp(Dir::Out, a("10.9.0.1"), a("10.1.0.1"), 1, 2).with_tunnel(t);
    let e = s.explain(&kt);
    assert_eq!(e.spd, "tunnel ip.tun0");
    assert!(e.outcome.contains("tunnel mode"), "{}", e.outcome);
    let miss = PacketKey::tcp(Dir::Out, a("10.9.0.1"), a("172.16.0.1"), 1, 2).with_tunnel(t);
    let e = s.explain(&miss);
    assert_eq!(e.basis, Basis::TunnelNoMatch);
    assert!(e.outcome.contains("spd_no_policy"), "{}", e.outcome);
}

// ----- analysis ----------------------------------------------------------------------------

#[test]
fn man_page_example_8_is_shadowed() {
    // ipsecconf(8) Example 8: the AH rule for network-b comes first in the file, but the ESP
    // rule for everything outranks it (ESP boost > AH boost), so it never matches.
    let p = set(vec![
        Rule::new(remote("10.2.0.0/16"), PolicyDir::Out, ah_any()),
        Rule::new(Selector::any(), PolicyDir::Out, esp_any()),
        Rule::new(remote("10.3.0.0/16"), PolicyDir::Out, Action::Bypass),
    ]);
    let w = analyze(&p, AnalysisLimits::default());
    assert!(
        w.contains(&Warning::Shadowed {
            rule: 0,
            by: vec![1]
        }),
        "{w:?}"
    );
    // The bypass rule carves an exception out of rule 1: reported as an overlap of rule 1.
    assert!(
        w.contains(&Warning::Overlap {
            rule: 1,
            with: vec![2],
            more: 0
        }),
        "{w:?}"
    );
    assert!(w
        .iter()
        .any(|x| x.to_string().starts_with("rule 0 can never match")));
    // The engine agrees: traffic to network-b gets ESP.
    let s = Spd::with_policy(p).unwrap();
    let k = PacketKey::tcp(Dir::Out, a("192.0.2.1"), a("10.2.0.1"), 1, 2);
    assert_eq!(s.outbound(&k).policy.unwrap().source, PolicySource::Host(1));
}

#[test]
fn shadowing_needs_every_direction_and_family_covered() {
    let p = set(vec![
        Rule::new(remote("10.0.0.0/8"), PolicyDir::Out, Action::Drop),
        Rule::new(remote("10.1.0.0/16"), PolicyDir::Both, Action::Drop),
        Rule::new(remote("10.1.2.0/24"), PolicyDir::Out, Action::Drop),
        Rule::new(Selector::any(), PolicyDir::Both, Action::Bypass),
        Rule::new(
            Selector {
                ulp: Some(6),
                ..Selector::any()
            },
            PolicyDir::Both,
            Action::Drop,
        ),
    ]);
    let w = analyze(&p, AnalysisLimits::default());
    // Rule 2 is covered by rules 0 and 3 (and 1); rule 4 by the bypass rule 3.
    assert!(
        w.iter()
            .any(|x| matches!(x, Warning::Shadowed { rule: 2, .. })),
        "{w:?}"
    );
    assert!(
        w.contains(&Warning::Shadowed {
            rule: 4,
            by: vec![3]
        }),
        "{w:?}"
    );
    // Rule 1 applies inbound too, where only the bypass covers it: shadowed as well.
    assert!(
        w.iter()
            .any(|x| matches!(x, Warning::Shadowed { rule: 1, .. })),
        "{w:?}"
    );
    // Without the catch-all bypass, rule 1 is only partly covered (outbound).
    let p2 = set(p.rules[..3].to_vec());
    let w2 = analyze(&p2, AnalysisLimits::default());
    assert!(
        !w2.iter()
            .any(|x| matches!(x, Warning::Shadowed { rule: 1, .. })),
        "{w2:?}"
    );
    assert!(
        w2.contains(&Warning::Shadowed {
            rule: 2,
            by: vec![0, 1]
        }),
        "{w2:?}"
    );
    // Same action: no overlap warning.
    assert!(
        !w2.iter().any(|x| matches!(x, Warning::Overlap { .. })),
        "{w2:?}"
    );
}

#[test]
fn unmatchable_and_icmp_warnings() {
    let p = set(vec![
        Rule::new(
            Selector {
                ulp: Some(1),
                icmp_type: Some(IcmpRange::single(8)),
                ..remote("2001:db8::/32")
            },
            PolicyDir::Both,
            esp_any(),
        ),
        Rule::new(
            Selector {
                ulp: Some(50),
                lport: Some(PortRange::single(80)),
                ..Selector::any()
            },
            PolicyDir::Both,
            Action::Drop,
        ),
        Rule::new(
            Selector {
                ulp: Some(1),
                ..Selector::any()
            },
            PolicyDir::Both,
            esp_any(),
        ),
        Rule::new(
            Selector {
                ulp: Some(58),
                ..Selector::any()
            },
            PolicyDir::Both,
            ah_any(),
        ),
    ]);
    let w = analyze(&p, AnalysisLimits::default());
    assert!(
        w.iter()
            .any(|x| matches!(x, Warning::Unmatchable { rule: 0, .. })),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|x| matches!(x, Warning::Unmatchable { rule: 1, .. })),
        "{w:?}"
    );
    assert!(
        w.contains(&Warning::IcmpActionsDiffer { rule: 3, first: 0 }),
        "{w:?}"
    );
}

#[test]
fn analysis_is_bounded_and_says_so() {
    let rules: Vec<Rule> = (0..300)
        .map(|i| {
            Rule::new(
                Selector {
                    lport: Some(PortRange::single(1000 + i)),
                    ..Selector::any()
                },
                PolicyDir::Both,
                Action::Drop,
            )
        })
        .collect();
    let w = analyze(
        &set(rules),
        AnalysisLimits {
            max_pairs: 1000,
            max_listed: 8,
        },
    );
    assert!(
        w.iter().any(|x| matches!(x, Warning::Incomplete { .. })),
        "{w:?}"
    );
    assert!(
        !w.iter().any(|x| matches!(x, Warning::Shadowed { .. })),
        "{w:?}"
    );
}

// ----- replace -----------------------------------------------------------------------------

#[test]
fn replace_is_atomic_with_dry_run_and_diff() {
    let mut s = Spd::with_policy(set(vec![
        Rule::new(remote("10.0.0.1"), PolicyDir::Both, Action::Drop),
        Rule::new(remote("10.0.0.2"), PolicyDir::Both, esp_any()),
    ]))
    .unwrap();
    let g0 = s.generation();
    let new = set(vec![
        Rule::new(remote("10.0.0.2"), PolicyDir::Both, esp_any()).at_line(1),
        Rule::new(remote("10.0.0.3"), PolicyDir::Both, Action::Bypass).at_line(2),
    ]);
    let r = s.replace(new.clone(), ReplaceOptions::all(true)).unwrap();
    assert!(!r.applied);
    assert_eq!(r.diff.added, vec![1]);
    assert_eq!(r.diff.removed, vec![0]);
    assert_eq!(r.diff.kept, 1);
    assert_eq!(s.generation(), g0);
    let k1 = PacketKey::tcp(Dir::Out, a("192.0.2.1"), a("10.0.0.1"), 1, 2);
    assert_eq!(
        s.outbound(&k1).verdict,
        Outbound::Drop(PolicyDrop::Explicit)
    );
    let r = s.replace(new, ReplaceOptions::all(false)).unwrap();
    assert!(r.applied);
    assert_eq!(s.generation(), g0 + 1);
    assert_eq!(s.outbound(&k1).verdict, Outbound::Bypass);
    // A bad policy changes nothing and names the rule.
    let bad = set(vec![
        Rule::new(remote("10.0.0.9"), PolicyDir::Both, Action::Drop),
        Rule::new(
            Selector {
                laddr: Some(pfx("2001:db8::1")),
                ..remote("10.0.0.1")
            },
            PolicyDir::Both,
            Action::Drop,
        ),
    ]);
    let e = s.replace(bad, ReplaceOptions::all(false)).unwrap_err();
    assert_eq!((e.rule, e.error), (1, ModelError::FamilyMismatch));
    assert_eq!(s.generation(), g0 + 1);
    assert_eq!(s.policy().len(), 2);
    // Reordering kept rules is reported.
    let mut rev = s.policy().clone();
    rev.rules.reverse();
    assert!(
        s.replace(rev, ReplaceOptions::all(true))
            .unwrap()
            .diff
            .reordered
    );
}

#[test]
fn replace_named_keeps_unnamed_tunnels_and_flush_all_does_not() {
    let base = set(vec![
        Rule::new(remote("10.0.0.1"), PolicyDir::Both, Action::Drop),
        Rule::new(remote("10.1.0.0/16"), PolicyDir::Both, esp_any()).in_tunnel("ip.tun0", None),
        Rule::new(remote("10.2.0.0/16"), PolicyDir::Both, esp_any()).in_tunnel("ip.tun1", None),
    ]);
    let file = set(vec![
        Rule::new(remote("10.0.0.5"), PolicyDir::Both, Action::Bypass),
        Rule::new(remote("10.3.0.0/16"), PolicyDir::Both, ah_any()).in_tunnel("ip.tun0", None),
    ]);
    let mut s = Spd::with_policy(base.clone()).unwrap();
    let r = s
        .replace(file.clone(), ReplaceOptions::named(false))
        .unwrap();
    assert!(r.applied);
    let tunnels: Vec<Option<&str>> = s
        .policy()
        .rules
        .iter()
        .map(|r| r.tunnel.as_deref())
        .collect();
    assert_eq!(tunnels, vec![None, Some("ip.tun0"), Some("ip.tun1")]);
    assert_eq!(s.policy().rules[1].selector.raddr, Some(pfx("10.3.0.0/16")));
    let mut s = Spd::with_policy(base).unwrap();
    s.replace(file, ReplaceOptions::all(false)).unwrap();
    assert_eq!(s.policy().tunnel_names(), vec!["ip.tun0"]);
}

#[test]
fn add_delete_flush_and_match_order() {
    let mut s = Spd::new();
    s.add(
        vec![
            Rule::new(remote("10.0.0.1"), PolicyDir::Both, ah_any()),
            Rule::new(remote("10.0.0.2"), PolicyDir::Out, Action::Drop),
        ],
        false,
    )
    .unwrap();
    s.add(
        vec![Rule::new(
            remote("10.0.0.3"),
            PolicyDir::Both,
            Action::Bypass,
        )],
        false,
    )
    .unwrap();
    s.add(
        vec![
            Rule::new(remote("10.9.0.0/16"), PolicyDir::Both, esp_any()).in_tunnel("ip.tun0", None)
        ],
        false,
    )
    .unwrap();
    assert_eq!(s.policy().len(), 4);
    // ipsecconf -l: bypass first, then AH, then the drop (file order among equals).
    let order: Vec<usize> = s
        .snapshot()
        .match_order(None, PolicyDir::Out)
        .iter()
        .filter_map(|e| e.source.rule_index())
        .collect();
    assert_eq!(order, vec![2, 0, 1]);
    let order_in: Vec<usize> = s
        .snapshot()
        .match_order(None, PolicyDir::In)
        .iter()
        .filter_map(|e| e.source.rule_index())
        .collect();
    assert_eq!(order_in, vec![2, 0]);
    assert!(s.delete(9).is_none());
    s.delete(1).unwrap().unwrap();
    assert_eq!(s.policy().len(), 3);
    s.flush(Some("ip.tun0"), false).unwrap();
    assert_eq!(s.policy().len(), 2);
    s.flush(None, false).unwrap();
    assert!(s.policy().is_empty());
    s.add(
        vec![Rule::new(
            remote("10.0.0.3"),
            PolicyDir::Both,
            Action::Bypass,
        )],
        false,
    )
    .unwrap();
    s.flush(None, true).unwrap();
    assert!(s.policy().is_empty());
}

// ----- tunables ------------------------------------------------------------------------------

#[test]
fn tunables_have_solaris_defaults_and_ipadm_names() {
    let mut t = Tunables::default();
    for n in Tunables::NAMES.iter().take(4) {
        assert_eq!(t.get(n).unwrap(), "on", "{n}");
    }
    assert_eq!(t.get("ike-port").unwrap(), "500");
    assert_eq!(t.get("natt-port").unwrap(), "4500");
    t.set("icmp-accept-clear", "off").unwrap();
    t.set("pim-accept-clear", "0").unwrap();
    assert!(!t.icmp_accept_clear && !t.pim_accept_clear);
    assert!(t.set("icmp-accept-clear", "maybe").is_err());
    assert!(t.set("natt-port", "0").is_err());
    assert!(t.set("no-such", "on").is_err());
    assert!(t.get("no-such").is_err());
}

// ----- the model -----------------------------------------------------------------------------

#[test]
fn esp_properties_follow_the_man_page() {
    // encr_algs alone: any ESP SA with that cipher, authenticated or not.
    assert_eq!(
        EspSpec::from_props(Some(AlgSpec::of(EncrAlg::AesCbc)), None),
        Some(EspSpec {
            encr: AlgSpec::of(EncrAlg::AesCbc),
            auth: EspAuth::Optional
        })
    );
    // encr_auth_algs alone: NULL encryption with that authentication.
    assert_eq!(
        EspSpec::from_props(None, Some(AlgSpec::of(AuthAlg::HmacMd5))),
        Some(EspSpec {
            encr: AlgSpec::of(EncrAlg::Null),
            auth: EspAuth::Required(AlgSpec::of(AuthAlg::HmacMd5))
        })
    );
    assert_eq!(EspSpec::from_props(None, None), None);
    // Key lengths: aes(192..) accepts 192 and 256; a named algorithm without a minimum accepts
    // its default size and above (ipsecconf.c emit_alg).
    let k = AlgSpec::of(EncrAlg::AesCbc).with_bits(KeyLen::range(Some(192), None));
    assert!(!k.accepts(EncrAlg::AesCbc, 128) && k.accepts(EncrAlg::AesCbc, 256));
    assert!(!k.accepts(EncrAlg::TripleDesCbc, 192));
    let bf = AlgSpec::of(EncrAlg::BlowfishCbc);
    assert!(!bf.accepts(EncrAlg::BlowfishCbc, 64) && bf.accepts(EncrAlg::BlowfishCbc, 128));
    let any192 = AlgSpec::<EncrAlg>::any().with_bits(KeyLen::range(Some(192), None));
    assert!(any192.accepts(EncrAlg::BlowfishCbc, 448) && !any192.accepts(EncrAlg::AesCbc, 128));
}

#[test]
fn old_style_rules_map_to_local_and_remote() {
    let o = OldStyle {
        saddr: Some(pfx("10.0.0.1")),
        daddr: Some(pfx("10.0.0.2")),
        sport: Some(PortRange::single(1000)),
        dport: Some(PortRange::single(23)),
        ulp: Some(6),
        ..OldStyle::default()
    };
    // apply = outbound: the source is local.
    let out = o.selector(PolicyDir::Out);
    assert_eq!(
        (out.laddr, out.raddr),
        (Some(pfx("10.0.0.1")), Some(pfx("10.0.0.2")))
    );
    assert_eq!(out.rport, Some(PortRange::single(23)));
    // permit = inbound: the source is remote.
    let inb = o.selector(PolicyDir::In);
    assert_eq!(
        (inb.laddr, inb.raddr),
        (Some(pfx("10.0.0.2")), Some(pfx("10.0.0.1")))
    );
    assert_eq!(inb.lport, Some(PortRange::single(23)));
}

#[test]
fn validation_errors() {
    let r = |s: Selector| Rule::new(s, PolicyDir::Both, Action::Drop).validate();
    assert_eq!(
        r(Selector {
            icmp_type: Some(IcmpRange::single(8)),
            ..Selector::any()
        }),
        Err(ModelError::TypeWithoutIcmp)
    );
    assert_eq!(
        r(Selector {
            ulp: Some(1),
            icmp_code: Some(IcmpRange::single(0)),
            ..Selector::any()
        }),
        Err(ModelError::CodeWithoutType)
    );
    assert_eq!(
        r(Selector {
            lport: Some(PortRange::new(9, 1)),
            ..Selector::any()
        }),
        Err(ModelError::EmptyRange("port"))
    );
    assert_eq!(
        r(remote("10.0.0.0/33")),
        Err(ModelError::PrefixTooLong(pfx("10.0.0.0/33")))
    );
    let neg = Rule {
        negotiate: Some(Negotiate::Tunnel),
        ..Rule::new(Selector::any(), PolicyDir::Both, Action::Drop)
    };
    assert_eq!(neg.validate(), Err(ModelError::NegotiateWithoutTunnel));
    let tr = Rule::new(remote("10.0.0.1"), PolicyDir::Both, esp_any())
        .in_tunnel("ip.tun0", Some(Negotiate::Transport));
    assert_eq!(tr.validate(), Err(ModelError::TransportWithAddresses));
    let empty = Rule::new(Selector::any(), PolicyDir::Both, Action::Ipsec(vec![]));
    assert_eq!(empty.validate(), Err(ModelError::NoAlternative));
    let nothing = Rule::new(
        Selector::any(),
        PolicyDir::Both,
        Action::ipsec(Protection::default()),
    );
    assert_eq!(nothing.validate(), Err(ModelError::NothingToApply));
    let gmac = Rule::new(
        Selector::any(),
        PolicyDir::Both,
        Action::ipsec(Protection::from_props(
            None,
            None,
            Some(AlgSpec::of(AuthAlg::AesGmac128)),
            SaSharing::Shared,
        )),
    );
    assert_eq!(gmac.validate(), Err(ModelError::AhOnlyAlgorithm));
}

#[test]
fn rules_print_in_ipsecconf_syntax() {
    let r = Rule::new(
        Selector {
            laddr: Some(pfx("10.0.0.1")),
            ulp: Some(6),
            rport: Some(PortRange::new(1000, 2000)),
            ..remote("10.1.0.0/16")
        },
        PolicyDir::Out,
        Action::Ipsec(vec![
            Protection::from_props(
                Some(AlgSpec::of(AuthAlg::HmacSha256)),
                Some(AlgSpec::of(EncrAlg::AesCbc).with_bits(KeyLen::range(Some(192), None))),
                Some(AlgSpec::any()),
                SaSharing::Unique,
            ),
            Protection::from_props(
                None,
                None,
                Some(AlgSpec::of(AuthAlg::HmacSha1)),
                SaSharing::Shared,
            ),
        ]),
    );
    assert_eq!(
        r.to_string(),
        "{laddr 10.0.0.1/32 raddr 10.1.0.0/16 ulp tcp rport 1000-2000 dir out} \
         ipsec {auth_algs hmac-sha256 encr_algs aes-cbc(192..) encr_auth_algs any sa unique} \
         or ipsec {encr_auth_algs hmac-sha1 sa shared}"
    );
    let t = Rule::new(
        Selector {
            ulp: Some(58),
            icmp_type: Some(IcmpRange::new(133, 137)),
            ..remote("fe80::/10")
        },
        PolicyDir::Both,
        Action::Bypass,
    )
    .in_tunnel("ip.tun0", Some(Negotiate::Tunnel));
    assert_eq!(
        t.to_string(),
        "{tunnel ip.tun0 negotiate tunnel raddr fe80::/10 ulp ipv6-icmp type 133-137 dir both} bypass {}"
    );
}

#[test]
fn drop_reasons_use_solaris_counter_names() {
    for (r, n) in [
        (PolicyDrop::GotClear, "spd_got_clear"),
        (PolicyDrop::GotSecure, "spd_got_secure"),
        (PolicyDrop::BadAhAlg, "spd_bad_ahalg"),
        (PolicyDrop::BadEspEAlg, "spd_bad_espealg"),
        (PolicyDrop::BadEspAAlg, "spd_bad_espaalg"),
        (PolicyDrop::AhEspDiffId, "spd_ahesp_diffid"),
        (PolicyDrop::AhInnerMismatch, "spd_ah_innermismatch"),
        (PolicyDrop::EspInnerMismatch, "spd_esp_innermismatch"),
        (PolicyDrop::Explicit, "spd_explicit"),
        (PolicyDrop::GotAh, "spd_got_ah"),
        (PolicyDrop::GotEsp, "spd_got_esp"),
        (PolicyDrop::GotSelfEncap, "spd_got_selfencap"),
        (PolicyDrop::BadSelfEncap, "spd_bad_selfencap"),
        (PolicyDrop::LoopbackMismatch, "spd_loopback_mismatch"),
        (PolicyDrop::NoPolicy, "spd_no_policy"),
        (PolicyDrop::AhBadId, "spd_ah_badid"),
        (PolicyDrop::EspBadId, "spd_esp_badid"),
    ] {
        assert_eq!(r.name(), n);
        assert_eq!(String::from(r), n);
        assert_eq!(PolicyDrop::from_name(n), Some(r));
    }
}
