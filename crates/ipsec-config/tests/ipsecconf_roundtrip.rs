//! Property tests: `parse(print(policy)) == policy` for random valid policies, and `parse`
//! never panics (and round-trips whatever it accepts) on arbitrary or mutated text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_config::fuzz_support::ipsecconf_parse;
use ipsec_config::ipsecconf::{
    parse_with, print, Action, Address, AlgChoice, AlgSpec, Dir, Endpoints, Entry, IcmpRange,
    KeyRange, Negotiate, ParseOptions, Pattern, PolicyFile, Properties, SaSharing,
};
use ipsec_core::Prefix;
use ipsec_crypto::{auth_table, encr_info, encr_table, AuthAlg, EncrAlg, KeyBits};
use proptest::prelude::*;

fn numeric() -> ParseOptions {
    ParseOptions { numeric: true }
}

fn address(v4: bool) -> BoxedStrategy<Address> {
    if v4 {
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, len)| {
                Address::Prefix(Prefix {
                    addr: IpAddr::V4(Ipv4Addr::from(a)),
                    len,
                })
            })
            .boxed()
    } else {
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, len)| {
                Address::Prefix(Prefix {
                    addr: IpAddr::V6(Ipv6Addr::from(a)),
                    len,
                })
            })
            .boxed()
    }
}

fn port() -> impl Strategy<Value = Option<u16>> {
    prop::option::of(1u16..=u16::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Old,
    New,
    Neutral,
}

/// Addresses and ports of one style (same family on both sides).
fn endpoints(style: Style) -> BoxedStrategy<Endpoints> {
    if style == Style::Neutral {
        return Just(Endpoints::Any).boxed();
    }
    any::<bool>()
        .prop_flat_map(move |v4| {
            (
                prop::option::of(address(v4)),
                prop::option::of(address(v4)),
                port(),
                port(),
            )
        })
        .prop_map(move |(a, b, p, q)| {
            if a.is_none() && b.is_none() && p.is_none() && q.is_none() {
                Endpoints::Any
            } else if style == Style::Old {
                Endpoints::SrcDst {
                    src: a,
                    dst: b,
                    sport: p,
                    dport: q,
                }
            } else {
                Endpoints::LocalRemote {
                    local: a,
                    remote: b,
                    lport: p,
                    rport: q,
                }
            }
        })
        .boxed()
}

fn key_range(kb: KeyBits) -> BoxedStrategy<KeyRange> {
    prop_oneof![
        Just(KeyRange::ANY),
        Just(KeyRange::exact(kb.min)),
        Just(KeyRange::exact(kb.max)),
        Just(KeyRange {
            min: Some(kb.min),
            max: None
        }),
        Just(KeyRange {
            min: None,
            max: Some(kb.max)
        }),
        Just(KeyRange {
            min: Some(kb.min),
            max: Some(kb.max)
        }),
        (0..=kb.min).prop_map(|m| KeyRange {
            min: Some(m),
            max: None
        }),
    ]
    .boxed()
}

fn any_range() -> BoxedStrategy<KeyRange> {
    (any::<u16>(), any::<u16>(), 0u8..4)
        .prop_map(|(a, b, shape)| {
            let (lo, hi) = (a.min(b), a.max(b));
            match shape {
                0 => KeyRange::ANY,
                1 => KeyRange::exact(lo),
                2 => KeyRange {
                    min: Some(lo),
                    max: None,
                },
                _ => KeyRange {
                    min: Some(lo),
                    max: Some(hi),
                },
            }
        })
        .boxed()
}

fn encr_spec() -> BoxedStrategy<AlgSpec<EncrAlg>> {
    let algs: Vec<(EncrAlg, KeyBits)> = encr_table().iter().map(|e| (e.alg, e.key_bits)).collect();
    prop_oneof![
        1 => any_range().prop_map(|key_bits| AlgSpec { alg: AlgChoice::Any, key_bits }),
        1 => Just(AlgSpec::new(AlgChoice::None)),
        6 => prop::sample::select(algs).prop_flat_map(|(a, kb)| {
            key_range(kb).prop_map(move |key_bits| AlgSpec { alg: AlgChoice::Alg(a), key_bits })
        }),
    ]
    .boxed()
}

fn auth_spec(esp: bool) -> BoxedStrategy<AlgSpec<AuthAlg>> {
    let algs: Vec<(AuthAlg, KeyBits)> = auth_table()
        .iter()
        .filter(|a| a.alg != AuthAlg::None)
        .filter(|a| {
            !(esp
                && matches!(
                    a.alg,
                    AuthAlg::AesGmac128 | AuthAlg::AesGmac192 | AuthAlg::AesGmac256
                ))
        })
        .map(|a| (a.alg, a.key_bits))
        .collect();
    prop_oneof![
        1 => any_range().prop_map(|key_bits| AlgSpec { alg: AlgChoice::Any, key_bits }),
        1 => Just(AlgSpec::new(AlgChoice::None)),
        6 => prop::sample::select(algs).prop_flat_map(|(a, kb)| {
            key_range(kb).prop_map(move |key_bits| AlgSpec { alg: AlgChoice::Alg(a), key_bits })
        }),
    ]
    .boxed()
}

fn sa() -> impl Strategy<Value = Option<SaSharing>> {
    prop::option::of(prop_oneof![
        Just(SaSharing::Shared),
        Just(SaSharing::Unique)
    ])
}

/// Properties of an IPsec action: at least one algorithm, no ESP authentication with a
/// combined-mode cipher.
fn ipsec_props() -> BoxedStrategy<Properties> {
    (
        prop::option::of(auth_spec(false)),
        prop::option::of(encr_spec()),
        prop::option::of(auth_spec(true)),
        sa(),
    )
        .prop_map(|(auth, encr, mut encr_auth, sa)| {
            if let Some(AlgSpec {
                alg: AlgChoice::Alg(e),
                ..
            }) = encr
            {
                if encr_info(e).aead && encr_auth.as_ref().is_some_and(AlgSpec::is_some) {
                    encr_auth = None;
                }
            }
            let mut p = Properties {
                auth_algs: auth,
                encr_algs: encr,
                encr_auth_algs: encr_auth,
                sa,
                dir: None,
            };
            if !p.uses_ah() && !p.uses_esp() {
                p.auth_algs = Some(AlgSpec::new(AlgChoice::Alg(AuthAlg::HmacSha256)));
            }
            p
        })
        .boxed()
}

fn new_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        3 => Just(Action::Ipsec),
        1 => Just(Action::Bypass),
        1 => Just(Action::Drop),
    ]
}

fn old_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        Just(Action::Apply),
        Just(Action::Permit),
        Just(Action::Ipsec),
        Just(Action::Bypass),
        Just(Action::Drop),
    ]
}

fn icmp_range() -> impl Strategy<Value = IcmpRange> {
    (any::<u8>(), any::<u8>(), any::<bool>()).prop_map(|(a, b, single)| {
        if single {
            IcmpRange::single(a)
        } else {
            IcmpRange {
                first: a.min(b),
                last: a.max(b),
            }
        }
    })
}

fn tunnel_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9._:-]{0,12}"
}

/// Selectors shared by both styles: (ulp, type, code, tunnel, negotiate).
type Common = (
    Option<u8>,
    Option<IcmpRange>,
    Option<IcmpRange>,
    Option<String>,
    Option<Negotiate>,
);

fn common() -> impl Strategy<Value = Common> {
    (
        prop_oneof![
            Just(None),
            Just(Some(6u8)),
            Just(Some(17)),
            Just(Some(1)),
            Just(Some(58)),
            (1u8..=255).prop_map(Some),
        ],
        prop::option::of(icmp_range()),
        prop::option::of(icmp_range()),
        prop::option::of(tunnel_name()),
        prop_oneof![Just(Negotiate::Tunnel), Just(Negotiate::Transport)],
    )
        .prop_map(|(ulp, t, c, tunnel, neg)| {
            let icmp = matches!(ulp, Some(1) | Some(58));
            let t = t.filter(|_| icmp);
            let c = c.filter(|_| t.is_some());
            let neg = tunnel.as_ref().map(|_| neg);
            (ulp, t, c, tunnel, neg)
        })
}

/// One valid entry.
fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![Just(Style::Old), Just(Style::New), Just(Style::Neutral)]
        .prop_flat_map(|style| {
            (
                Just(style),
                endpoints(style),
                common(),
                prop::collection::vec((new_action(), ipsec_props()), 1..4),
                (old_action(), ipsec_props()),
                prop_oneof![Just(Dir::In), Just(Dir::Out), Just(Dir::Both)],
                0u8..3,
            )
        })
        .prop_map(
            |(style, endpoints, common, new_alts, old_alt, dir, dir_shape)| {
                let (mut ulp, mut icmp_type, mut icmp_code, tunnel, negotiate) = common;
                let mut endpoints = endpoints;
                if negotiate == Some(Negotiate::Transport) {
                    endpoints = Endpoints::Any;
                    ulp = None;
                    icmp_type = None;
                    icmp_code = None;
                }
                let mut pattern = Pattern {
                    endpoints,
                    ulp,
                    icmp_type,
                    icmp_code,
                    tunnel,
                    negotiate,
                    dir: None,
                };
                let strip = |(a, p): (Action, Properties)| {
                    if a.applies_ipsec() {
                        (a, p)
                    } else {
                        (a, Properties::default())
                    }
                };
                let alternatives: Vec<(Action, Properties)> = if style == Style::Old {
                    // One action; a direction that agrees with apply/permit, in the pattern
                    // or the properties.
                    let (a, p) = strip(old_alt);
                    let d = match a {
                        Action::Apply => Dir::Out,
                        Action::Permit => Dir::In,
                        _ if dir == Dir::Both => Dir::In,
                        _ => dir,
                    };
                    let mut p = p;
                    let implied = matches!(a, Action::Apply | Action::Permit);
                    match dir_shape {
                        0 if implied => {}
                        0 | 1 => pattern.dir = Some(d),
                        _ => p.dir = Some(d),
                    }
                    vec![(a, p)]
                } else {
                    let alts: Vec<_> = new_alts.into_iter().map(strip).collect();
                    let needs_dir = alts.iter().any(|(a, _)| !a.applies_ipsec());
                    if needs_dir || dir_shape > 0 {
                        pattern.dir = Some(dir);
                    }
                    alts
                };
                // ipsecconf(8): IPsec actions must be the same for all icmp rules; keep the
                // ICMP selectors to entries without IPsec actions.
                if matches!(pattern.ulp, Some(1) | Some(58))
                    && alternatives.iter().any(|(a, _)| a.applies_ipsec())
                {
                    pattern.ulp = Some(6);
                    pattern.icmp_type = None;
                    pattern.icmp_code = None;
                }
                Entry {
                    line: 0,
                    column: 0,
                    pattern,
                    alternatives,
                }
            },
        )
}

fn policy() -> impl Strategy<Value = PolicyFile> {
    prop::collection::vec(entry(), 0..6).prop_map(|entries| PolicyFile {
        file: String::new(),
        entries,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn print_then_parse_gives_the_same_policy(policy in policy()) {
        let text = print(&policy);
        let back = parse_with(&text, "printed", numeric())
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        prop_assert_eq!(&back, &policy, "{}", text);
        prop_assert_eq!(print(&back), text);
        prop_assert_eq!(back.entries.len(), policy.entries.len());
        for (i, e) in back.entries.iter().enumerate() {
            prop_assert_eq!(e.line, i + 1);
        }
        prop_assert!(ipsecconf_parse(print(&policy).as_bytes()).is_ok());
        // to_rules refuses exactly the entries whose alternatives mix IPsec with bypass/drop.
        let mixed = policy.entries.iter().any(|e| {
            let ipsec = e.alternatives.iter().filter(|(a, _)| a.applies_ipsec()).count();
            let bypass = e.alternatives.iter().filter(|(a, _)| *a == Action::Bypass).count();
            let n = e.alternatives.len();
            !(ipsec == n || bypass == n || ipsec + bypass == 0)
        });
        let rules = back.to_rules();
        prop_assert_eq!(rules.is_err(), mixed, "{:?}", rules);
        if let Ok(rules) = rules {
            let expanded: usize = policy.entries.len();
            prop_assert_eq!(rules.len(), expanded, "literal addresses: one rule per entry");
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = parse_with(&s, "any", numeric());
        if let Err(what) = ipsecconf_parse(s.as_bytes()) {
            panic!("{what}: {s:?}");
        }
    }

    #[test]
    fn parse_never_panics_on_token_soup(words in prop::collection::vec(prop_oneof![
        Just("{".to_string()), Just("}".to_string()), Just("\n".to_string()), Just("or".to_string()),
        Just("ipsec".to_string()), Just("bypass".to_string()), Just("pass".to_string()),
        Just("drop".to_string()), Just("apply".to_string()), Just("permit".to_string()),
        Just("laddr".to_string()), Just("raddr".to_string()), Just("saddr".to_string()),
        Just("daddr".to_string()), Just("smask".to_string()), Just("lport".to_string()),
        Just("sport".to_string()), Just("ulp".to_string()), Just("type".to_string()),
        Just("code".to_string()), Just("tunnel".to_string()), Just("negotiate".to_string()),
        Just("dir".to_string()), Just("in".to_string()), Just("out".to_string()),
        Just("both".to_string()), Just("auth_algs".to_string()), Just("encr_algs".to_string()),
        Just("encr_auth_algs".to_string()), Just("sa".to_string()), Just("unique".to_string()),
        Just("transport".to_string()), Just("icmp".to_string()), Just("ipv6-icmp".to_string()),
        Just("10.0.0.1".to_string()), Just("::1/64".to_string()), Just("255.0.0.0".to_string()),
        Just("aes(128..)".to_string()), Just("any".to_string()), Just("none".to_string()),
        Just("sha1".to_string()), Just("aes-gcm".to_string()), Just("133-137".to_string()),
        Just("echo".to_string()), Just("needfrag".to_string()), Just("# c".to_string()),
        Just("23".to_string()), Just("t0".to_string()),
    ], 0..40)) {
        let text = words.join(" ");
        if let Err(what) = ipsecconf_parse(text.as_bytes()) {
            panic!("{what}: {text:?}");
        }
    }

    #[test]
    fn parse_never_panics_on_mutated_policies(
        policy in policy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..5),
    ) {
        let mut chars: Vec<char> = print(&policy).chars().collect();
        for (at, c, op) in edits {
            if chars.is_empty() {
                chars.push(c);
                continue;
            }
            let i = at.index(chars.len());
            match op {
                0 => chars[i] = c,
                1 => chars.insert(i, c),
                _ => {
                    chars.remove(i);
                }
            }
        }
        let text: String = chars.into_iter().collect();
        if let Err(what) = ipsecconf_parse(text.as_bytes()) {
            panic!("{what}: {text:?}");
        }
    }
}
