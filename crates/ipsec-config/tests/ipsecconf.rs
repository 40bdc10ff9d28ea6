//! The ipsecconf(8) language: every name and synonym, old and new style, ICMP names, ranges,
//! key lengths, comments and multi-line entries, the `or` placement rule, duplicates, error
//! positions, the man page's examples, warnings and the printer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use ipsec_config::ipsecconf::{
    parse, parse_file, parse_with, print, print_entry, protocol_by_name, protocols,
    service_by_name, services, Action, Address, AlgChoice, AlgSpec, Dir, Endpoints, Entry,
    IcmpRange, KeyRange, Negotiate, ParseError, ParseOptions, Pattern, PolicyFile, Properties,
    SaSharing,
};
use ipsec_core::Prefix;
use ipsec_crypto::{auth_table, encr_table, AuthAlg, EncrAlg};
use ipsec_wire::{icmpv4, icmpv6};

fn numeric() -> ParseOptions {
    ParseOptions { numeric: true }
}

fn p(text: &str) -> Result<PolicyFile, ParseError> {
    parse_with(text, "t.conf", numeric())
}

fn ok(text: &str) -> PolicyFile {
    let f = p(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    // Every accepted text prints into text that parses back into the same policy.
    let printed = print(&f);
    let again = p(&printed).unwrap_or_else(|e| panic!("printed {printed:?}: {e}"));
    assert_eq!(again, f, "round trip of {text:?} via {printed:?}");
    assert_eq!(print(&again), printed, "printing is stable");
    f
}

fn one(text: &str) -> Entry {
    let mut f = ok(text);
    assert_eq!(f.entries.len(), 1, "{text:?}");
    f.entries.remove(0)
}

fn pattern(text: &str) -> Pattern {
    one(text).pattern
}

fn props(text: &str) -> Properties {
    let e = one(text);
    assert_eq!(e.alternatives.len(), 1);
    e.alternatives[0].1.clone()
}

fn err(text: &str) -> ParseError {
    match p(text) {
        Ok(f) => panic!("{text:?} parsed: {f:?}"),
        Err(e) => e,
    }
}

/// Asserts the error position and token, and that the column really points at the token.
fn err_at(text: &str, line: usize, column: usize, token: &str) -> ParseError {
    let e = err(text);
    assert_eq!(
        (e.line, e.column, e.token.as_str()),
        (line, column, token),
        "{text:?}: {e}"
    );
    assert_eq!(e.file, "t.conf");
    if token != "end of input" {
        let l = text.split('\n').nth(line - 1).unwrap();
        let at: String = l.chars().skip(column - 1).collect();
        assert!(at.starts_with(token), "column {column} of {l:?} is {at:?}");
    }
    e
}

/// The error's `expected` text contains `needle`.
fn err_says(text: &str, needle: &str) -> ParseError {
    let e = err(text);
    assert!(e.expected.contains(needle), "{text:?}: {e}");
    e
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn pfx(s: &str) -> Address {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (ip(a), l.parse().unwrap()),
        None => {
            let a = ip(s);
            (a, Prefix::host(a).len)
        }
    };
    Address::Prefix(Prefix { addr: a, len: l })
}

fn alg<A>(a: A) -> AlgSpec<A> {
    AlgSpec::new(AlgChoice::Alg(a))
}

const ESP: &str = "ipsec {encr_algs aes encr_auth_algs sha256}";

// ---------------------------------------------------------------------------------------
// Pattern names and synonyms

#[test]
fn new_style_addresses_and_ports_with_synonyms() {
    for kw in ["laddr", "local"] {
        let pt = pattern(&format!("{{{kw} 192.0.2.1}} {ESP}"));
        assert_eq!(
            pt.endpoints,
            Endpoints::LocalRemote {
                local: Some(pfx("192.0.2.1")),
                remote: None,
                lport: None,
                rport: None
            }
        );
    }
    for kw in ["raddr", "remote"] {
        let pt = pattern(&format!("{{{kw} 2001:db8::/32}} {ESP}"));
        assert_eq!(
            pt.endpoints,
            Endpoints::LocalRemote {
                local: None,
                remote: Some(pfx("2001:db8::/32")),
                lport: None,
                rport: None
            }
        );
    }
    let pt = pattern(&format!("{{lport 23 rport domain}} {ESP}"));
    assert_eq!(
        pt.endpoints,
        Endpoints::LocalRemote {
            local: None,
            remote: None,
            lport: Some(23),
            rport: Some(53)
        }
    );
}

#[test]
fn old_style_addresses_ports_and_masks_with_synonyms() {
    for kw in ["saddr", "src", "srcaddr"] {
        let pt = pattern(&format!("{{{kw} 10.1.0.0/16 dir out}} {ESP}"));
        assert_eq!(
            pt.endpoints,
            Endpoints::SrcDst {
                src: Some(pfx("10.1.0.0/16")),
                dst: None,
                sport: None,
                dport: None
            }
        );
    }
    for kw in ["daddr", "dst", "dstaddr", "dest"] {
        let pt = pattern(&format!("{{{kw} 10.2.0.1 dir in}} {ESP}"));
        assert_eq!(
            pt.endpoints,
            Endpoints::SrcDst {
                src: None,
                dst: Some(pfx("10.2.0.1")),
                sport: None,
                dport: None
            }
        );
    }
    let pt = pattern(&format!("{{sport 0x50 dport https dir out}} {ESP}"));
    assert_eq!(
        pt.endpoints,
        Endpoints::SrcDst {
            src: None,
            dst: None,
            sport: Some(80),
            dport: Some(443)
        }
    );
    // Masks fold into the prefix length, in hex or dotted form.
    let pt = pattern(&format!(
        "{{saddr 10.0.0.0 smask 255.0.0.0 daddr 192.0.2.0 dmask 0xffffff00 dir out}} {ESP}"
    ));
    assert_eq!(
        pt.endpoints,
        Endpoints::SrcDst {
            src: Some(pfx("10.0.0.0/8")),
            dst: Some(pfx("192.0.2.0/24")),
            sport: None,
            dport: None
        }
    );
    let pt = pattern(&format!(
        "{{saddr 10.0.0.1 smask 0XFFFFFFFF dir out}} {ESP}"
    ));
    assert!(matches!(
        pt.endpoints,
        Endpoints::SrcDst {
            src: Some(Address::Prefix(Prefix { len: 32, .. })),
            ..
        }
    ));
}

#[test]
fn ulp_and_proto_with_names_and_numbers() {
    for (text, want) in [
        ("ulp tcp", 6),
        ("proto udp", 17),
        ("ulp TCP", 6),
        ("ulp icmp", 1),
        ("ulp ipv6-icmp", 58),
        ("ulp icmp6", 58),
        ("ulp icmpv6", 58),
        ("ulp esp", 50),
        ("ulp ah", 51),
        ("ulp sctp", 132),
        ("ulp 6", 6),
        ("proto 255", 255),
        ("ulp 0x11", 17),
    ] {
        assert_eq!(
            pattern(&format!("{{{text}}} {ESP}")).ulp,
            Some(want),
            "{text}"
        );
    }
    for (name, num, aliases) in protocols() {
        assert_eq!(protocol_by_name(name), Some(*num));
        let pt = pattern(&format!("{{ulp {name}}} {ESP}"));
        assert_eq!(pt.ulp, Some(*num), "{name}");
        for a in *aliases {
            assert_eq!(
                pattern(&format!("{{proto {a}}} {ESP}")).ulp,
                Some(*num),
                "{a}"
            );
        }
    }
}

#[test]
fn every_service_name() {
    for (name, port) in services() {
        assert_eq!(service_by_name(name), Some(*port));
        let pt = pattern(&format!("{{rport {name}}} {ESP}"));
        assert!(
            matches!(pt.endpoints, Endpoints::LocalRemote { rport: Some(x), .. } if x == *port),
            "{name}"
        );
    }
    for (name, port) in [
        ("telnet", 23),
        ("ssh", 22),
        ("domain", 53),
        ("http", 80),
        ("https", 443),
        ("isakmp", 500),
        ("ipsec-nat-t", 4500),
        ("ntp", 123),
        ("smtp", 25),
    ] {
        assert_eq!(service_by_name(name), Some(port), "{name}");
    }
}

#[test]
fn tunnel_negotiate_and_dir() {
    let pt = pattern(&format!(
        "{{tunnel ip.tun0 negotiate tunnel raddr 10.9.0.0/16 laddr 0.0.0.0/0}} {ESP}"
    ));
    assert_eq!(pt.tunnel.as_deref(), Some("ip.tun0"));
    assert_eq!(pt.negotiate, Some(Negotiate::Tunnel));
    let pt = pattern(&format!("{{tunnel vti0 negotiate transport}} {ESP}"));
    assert_eq!(pt.negotiate, Some(Negotiate::Transport));
    for (d, want) in [("in", Dir::In), ("out", Dir::Out), ("both", Dir::Both)] {
        let e = one(&format!("{{dir {d}}} bypass {{}}"));
        assert_eq!(e.pattern.dir, Some(want));
        assert_eq!(e.direction(), want);
    }
}

#[test]
fn empty_pattern_matches_everything() {
    let e = one(&format!("{{}} {ESP}"));
    assert_eq!(e.pattern, Pattern::default());
    assert_eq!(e.direction(), Dir::Both);
}

// ---------------------------------------------------------------------------------------
// Actions and properties

#[test]
fn actions_and_directions() {
    let e = one("{laddr 10.0.0.1} ipsec {auth_algs sha1}");
    assert_eq!(e.alternatives[0].0, Action::Ipsec);
    assert_eq!(e.direction(), Dir::Both);
    let e = one("{dir out} ipsec {auth_algs sha1}");
    assert_eq!(e.direction(), Dir::Out);
    for (a, want, dir) in [
        ("apply", Action::Apply, Dir::Out),
        ("permit", Action::Permit, Dir::In),
    ] {
        let e = one(&format!("{{saddr 10.0.0.1}} {a} {{auth_algs sha1}}"));
        assert_eq!(e.alternatives[0].0, want);
        assert_eq!(e.direction(), dir);
    }
    for a in ["bypass", "pass"] {
        let e = one(&format!("{{raddr 10.0.0.1 dir in}} {a} {{}}"));
        assert_eq!(e.alternatives[0].0, Action::Bypass);
        assert_eq!(e.direction(), Dir::In);
    }
    let e = one("{ulp tcp dir both} drop {}");
    assert_eq!(e.alternatives[0].0, Action::Drop);
    // Old-style bypass with the direction in the properties.
    let e = one("{saddr 10.0.0.1} bypass {dir in}");
    assert_eq!(e.alternatives[0].1.dir, Some(Dir::In));
    assert_eq!(e.direction(), Dir::In);
    // An old-style apply may repeat its direction; permit too.
    assert_eq!(
        one("{daddr 10.0.0.1} apply {auth_algs sha1 dir out}").direction(),
        Dir::Out
    );
    assert_eq!(
        one("{saddr 10.0.0.1 dir in} permit {auth_algs sha1}").direction(),
        Dir::In
    );
    // Old-style ipsec with a direction.
    let e =
        one("{saddr 10.0.0.1 daddr 10.0.0.2 dir out} ipsec {encr_algs aes encr_auth_algs sha1}");
    assert_eq!(e.direction(), Dir::Out);
    let e = one("{saddr 10.0.0.1} ipsec {encr_algs aes encr_auth_algs sha1 dir in}");
    assert_eq!(e.direction(), Dir::In);
}

#[test]
fn man_page_algorithm_names() {
    for (name, want) in [
        ("any", AlgChoice::Any),
        ("ANY", AlgChoice::Any),
        ("md5", AlgChoice::Alg(AuthAlg::HmacMd5)),
        ("MD5", AlgChoice::Alg(AuthAlg::HmacMd5)),
        ("hmac-md5", AlgChoice::Alg(AuthAlg::HmacMd5)),
        ("sha", AlgChoice::Alg(AuthAlg::HmacSha1)),
        ("sha1", AlgChoice::Alg(AuthAlg::HmacSha1)),
        ("SHA1", AlgChoice::Alg(AuthAlg::HmacSha1)),
        ("hmac-sha", AlgChoice::Alg(AuthAlg::HmacSha1)),
        ("hmac-sha1", AlgChoice::Alg(AuthAlg::HmacSha1)),
        ("hmac-sha256", AlgChoice::Alg(AuthAlg::HmacSha256)),
        ("hmac-sha384", AlgChoice::Alg(AuthAlg::HmacSha384)),
        ("hmac-sha512", AlgChoice::Alg(AuthAlg::HmacSha512)),
        ("3", AlgChoice::Alg(AuthAlg::HmacSha1)),
        ("5", AlgChoice::Alg(AuthAlg::HmacSha256)),
        ("none", AlgChoice::None),
    ] {
        let text = format!("{{}} ipsec {{auth_algs {name} encr_auth_algs {name} encr_algs aes}}");
        let pr = props(&text);
        assert_eq!(pr.auth_algs.unwrap().alg, want, "{name}");
        assert_eq!(pr.encr_auth_algs.unwrap().alg, want, "{name}");
    }
    for (name, want) in [
        ("any", AlgChoice::Any),
        ("aes", AlgChoice::Alg(EncrAlg::AesCbc)),
        ("AES", AlgChoice::Alg(EncrAlg::AesCbc)),
        ("aes-cbc", AlgChoice::Alg(EncrAlg::AesCbc)),
        ("des", AlgChoice::Alg(EncrAlg::DesCbc)),
        ("des-cbc", AlgChoice::Alg(EncrAlg::DesCbc)),
        ("3des", AlgChoice::Alg(EncrAlg::TripleDesCbc)),
        ("3DES", AlgChoice::Alg(EncrAlg::TripleDesCbc)),
        ("3des-cbc", AlgChoice::Alg(EncrAlg::TripleDesCbc)),
        ("blowfish", AlgChoice::Alg(EncrAlg::BlowfishCbc)),
        ("blowfish-cbc", AlgChoice::Alg(EncrAlg::BlowfishCbc)),
        ("null", AlgChoice::Alg(EncrAlg::Null)),
        ("NULL", AlgChoice::Alg(EncrAlg::Null)),
        ("12", AlgChoice::Alg(EncrAlg::AesCbc)),
        ("3", AlgChoice::Alg(EncrAlg::TripleDesCbc)),
    ] {
        let pr = props(&format!(
            "{{}} ipsec {{encr_algs {name} encr_auth_algs sha1}}"
        ));
        assert_eq!(pr.encr_algs.unwrap().alg, want, "{name}");
    }
}

#[test]
fn every_table_algorithm_name_and_synonym() {
    for row in encr_table() {
        for name in std::iter::once(&row.name).chain(row.synonyms) {
            let pr = props(&format!("{{}} ipsec {{encr_algs {name}}}"));
            assert_eq!(pr.encr_algs, Some(alg(row.alg)), "{name}");
        }
        let pr = props(&format!("{{}} ipsec {{encr_algs {}}}", row.pfkey));
        assert_eq!(pr.encr_algs, Some(alg(row.alg)), "{}", row.pfkey);
    }
    for row in auth_table() {
        if row.alg == AuthAlg::None {
            continue;
        }
        for name in std::iter::once(&row.name).chain(row.synonyms) {
            let pr = props(&format!("{{}} ipsec {{auth_algs {name}}}"));
            assert_eq!(pr.auth_algs, Some(alg(row.alg)), "{name}");
        }
        let pr = props(&format!("{{}} ipsec {{auth_algs {}}}", row.pfkey));
        assert_eq!(pr.auth_algs, Some(alg(row.alg)), "{}", row.pfkey);
    }
}

#[test]
fn sa_and_property_dir() {
    assert_eq!(
        props("{} ipsec {auth_algs sha1 sa shared}").sa,
        Some(SaSharing::Shared)
    );
    assert_eq!(
        props("{} ipsec {auth_algs sha1 sa unique}").sa,
        Some(SaSharing::Unique)
    );
    assert_eq!(props("{} ipsec {auth_algs sha1}").sa, None);
    assert_eq!(
        props("{} apply {auth_algs sha1 dir out}").dir,
        Some(Dir::Out)
    );
    assert_eq!(
        props("{} permit {auth_algs sha1 dir in}").dir,
        Some(Dir::In)
    );
}

#[test]
fn key_length_ranges() {
    let r = |text: &str| {
        props(&format!("{{}} ipsec {{encr_algs {text}}}"))
            .encr_algs
            .unwrap()
    };
    assert_eq!(r("aes").key_bits, KeyRange::ANY);
    assert_eq!(r("aes(192)").key_bits, KeyRange::exact(192));
    assert_eq!(r("aes(192..192)").key_bits, KeyRange::exact(192));
    assert_eq!(
        r("aes(..192)").key_bits,
        KeyRange {
            min: None,
            max: Some(192)
        }
    );
    assert_eq!(
        r("aes(192..)").key_bits,
        KeyRange {
            min: Some(192),
            max: None
        }
    );
    assert_eq!(
        r("aes(192..256)").key_bits,
        KeyRange {
            min: Some(192),
            max: Some(256)
        }
    );
    assert_eq!(
        r("AES-CBC(64..128)").key_bits,
        KeyRange {
            min: Some(64),
            max: Some(128)
        },
        "a range that overlaps the algorithm's sizes is accepted"
    );
    let any = r("any(192..)");
    assert_eq!(any.alg, AlgChoice::Any);
    assert_eq!(any.key_bits.min, Some(192));
    let a = props("{} ipsec {auth_algs sha1(160) encr_auth_algs hmac-sha256(256..)}");
    assert_eq!(a.auth_algs.unwrap().key_bits, KeyRange::exact(160));
    assert_eq!(a.encr_auth_algs.unwrap().key_bits.min, Some(256));
    assert!(KeyRange::exact(128).contains(128));
    assert!(!KeyRange::exact(128).contains(192));

    for (bad, needle) in [
        ("aes(64)", "key sizes of `aes-cbc` (128..256 bits)"),
        ("aes(300..)", "key sizes"),
        ("aes(..64)", "key sizes"),
        ("null(128)", "key sizes of `null`"),
        ("aes(256..128)", "N <= M"),
        ("aes()", "key length in bits"),
        ("aes(..)", "key length in bits"),
        ("aes(1...2)", "key length in bits"),
        ("aes(x)", "key length in bits"),
        ("aes(128", "in parentheses at the end"),
        ("aes(128)x", "in parentheses at the end"),
        ("aes((128))", "in parentheses at the end"),
        ("none(128)", "`none` without a key length"),
        ("(128)", "an encryption algorithm"),
    ] {
        let text = format!("{{}} ipsec {{encr_algs {bad}}}");
        let e = err_at(&text, 1, 21, bad);
        assert!(e.expected.contains(needle), "{bad}: {e}");
    }
}

// ---------------------------------------------------------------------------------------
// ICMP

#[test]
fn every_icmp_type_name() {
    let v4 = [
        "unreach",
        "echo",
        "echorep",
        "squench",
        "redir",
        "timex",
        "paramprob",
        "timest",
        "timestrep",
        "inforeq",
        "inforep",
        "maskreq",
        "maskrep",
    ];
    let v6 = [
        "unreach6",
        "pkttoobig6",
        "timex6",
        "paramprob6",
        "echo6",
        "echorep6",
        "router-sol6",
        "router-ad6",
        "neigh-sol6",
        "neigh-ad6",
        "redir6",
    ];
    for name in v4 {
        let want = icmpv4::type_by_name(name).unwrap();
        let pt = pattern(&format!("{{ulp icmp type {name} dir both}} bypass {{}}"));
        assert_eq!(pt.icmp_type, Some(IcmpRange::single(want)), "{name}");
    }
    for name in v6 {
        let want = icmpv6::type_by_name(name).unwrap();
        let pt = pattern(&format!(
            "{{ulp ipv6-icmp type {name} dir both}} bypass {{}}"
        ));
        assert_eq!(pt.icmp_type, Some(IcmpRange::single(want)), "{name}");
    }
    assert_eq!(icmpv4::TYPE_NAMES.len(), v4.len());
    assert_eq!(icmpv6::TYPE_NAMES.len(), v6.len());
    // Spot values.
    assert_eq!(
        pattern("{ulp icmp type echo dir in} bypass {}").icmp_type,
        Some(IcmpRange::single(8))
    );
    assert_eq!(
        pattern("{ulp ipv6-icmp type neigh-ad6 dir in} bypass {}").icmp_type,
        Some(IcmpRange::single(136))
    );
}

#[test]
fn every_icmp_code_name() {
    let v4 = [
        "net-unr",
        "host-unr",
        "proto-unr",
        "port-unr",
        "needfrag",
        "srcfail",
        "net-unk",
        "host-unk",
        "isolate",
        "net-prohib",
        "host-prohib",
        "net-tos",
        "host-tos",
        "filter-prohib",
        "host-preced",
        "cutoff-preced",
    ];
    let v6 = [
        "no-route6",
        "adm-prohib6",
        "addr-unr6",
        "port-unr6",
        "hop-limex6",
        "frag-re-timex6",
        "err-head6",
        "unrec-head6",
        "unreq-opt6",
    ];
    for name in v4 {
        let want = icmpv4::code_by_name(name).unwrap();
        let pt = pattern(&format!(
            "{{ulp icmp type unreach code {name} dir both}} bypass {{}}"
        ));
        assert_eq!(pt.icmp_type, Some(IcmpRange::single(3)));
        assert_eq!(pt.icmp_code, Some(IcmpRange::single(want)), "{name}");
    }
    for name in v6 {
        let (t, c) = icmpv6::code_by_name(name).unwrap();
        let tname = icmpv6::type_name(t).unwrap();
        let pt = pattern(&format!(
            "{{ulp ipv6-icmp type {tname} code {name} dir both}} bypass {{}}"
        ));
        assert_eq!(pt.icmp_type, Some(IcmpRange::single(t)));
        assert_eq!(pt.icmp_code, Some(IcmpRange::single(c)), "{name}");
        // A numeric type works as well.
        pattern(&format!(
            "{{ulp 58 type {t} code {name} dir both}} bypass {{}}"
        ));
    }
    assert_eq!(icmpv4::CODE_NAMES.len(), v4.len());
    assert_eq!(icmpv6::CODE_NAMES.len(), v6.len());
    assert_eq!(
        pattern("{ulp ipv6-icmp type paramprob6 code unreq-opt6 dir in} bypass {}").icmp_code,
        Some(IcmpRange::single(2))
    );
}

#[test]
fn icmp_ranges() {
    let pt = pattern("{ulp ipv6-icmp type 133-137 dir both} pass {}");
    assert_eq!(
        pt.icmp_type,
        Some(IcmpRange {
            first: 133,
            last: 137
        })
    );
    assert!(pt.icmp_type.unwrap().contains(135));
    let pt = pattern("{ulp icmp type 3 code 0-3 dir both} pass {}");
    assert_eq!(pt.icmp_code, Some(IcmpRange { first: 0, last: 3 }));
    let pt = pattern("{ulp icmp type 0-255 code 255 dir both} pass {}");
    assert_eq!(
        pt.icmp_type,
        Some(IcmpRange {
            first: 0,
            last: 255
        })
    );
    assert_eq!(pt.icmp_code, Some(IcmpRange::single(255)));
    let pt = pattern("{ulp icmp type 0x8 dir both} pass {}");
    assert_eq!(pt.icmp_type, Some(IcmpRange::single(8)));
    for bad in [
        "137-133",
        "256",
        "1-256",
        "1-",
        "-1",
        "1-2-3",
        "01",
        "echo-echorep",
        "echo6x",
    ] {
        let text = format!("{{ulp icmp type {bad} dir in}} pass {{}}");
        let e = err_at(&text, 1, 16, bad);
        assert!(e.expected.contains("ICMP type"), "{bad}: {e}");
    }
    err_at("{ulp icmp type 3 code 9-2 dir in} pass {}", 1, 23, "9-2");
}

#[test]
fn icmp_consistency_checks() {
    // type needs ulp icmp or ipv6-icmp
    let e = err_at("{type echo dir in} pass {}", 1, 2, "type");
    assert!(e.expected.contains("`ulp icmp` or `ulp ipv6-icmp`"));
    err_at("{ulp tcp type 8 dir in} pass {}", 1, 10, "type");
    // a type name of the other family
    err_says("{ulp ipv6-icmp type echo dir in} pass {}", "ICMPv4");
    err_says("{ulp icmp type echo6 dir in} pass {}", "ICMPv6");
    err_at("{ulp icmp type echo6 dir in} pass {}", 1, 16, "echo6");
    // code needs type (in any order), and a code name its own type
    err_at("{ulp icmp code 3 dir in} pass {}", 1, 11, "code");
    pattern("{code needfrag ulp icmp type unreach dir in} pass {}");
    let e = err_at(
        "{ulp icmp type timex code needfrag dir in} pass {}",
        1,
        27,
        "needfrag",
    );
    assert!(e.expected.contains("type 3, `unreach`"), "{e}");
    err_at(
        "{ulp icmp type 3-4 code needfrag dir in} pass {}",
        1,
        25,
        "needfrag",
    );
    err_says(
        "{ulp icmp type unreach code no-route6 dir in} pass {}",
        "ICMPv6",
    );
    err_says(
        "{ulp ipv6-icmp type unreach6 code hop-limex6 dir in} pass {}",
        "type 3, `timex6`",
    );
}

#[test]
fn icmp_ipsec_action_must_be_the_same_for_all_icmp_rules() {
    // Same protection: fine (dir and other selectors may differ).
    ok(
        "{ulp icmp raddr 10.0.0.1} ipsec {encr_algs aes encr_auth_algs sha1}\n\
        {ulp icmp raddr 10.0.0.2 dir out} ipsec {encr_algs aes encr_auth_algs sha1 sa shared}\n\
        {ulp icmp type echo dir both} bypass {}\n\
        {ulp tcp} ipsec {auth_algs sha256}\n\
        {ulp ipv6-icmp} ipsec {auth_algs sha256}\n",
    );
    let e = err_at(
        "{ulp icmp raddr 10.0.0.1} ipsec {encr_algs aes encr_auth_algs sha1}\n\
         {ulp tcp} ipsec {auth_algs sha256}\n\
         {ulp icmp raddr 10.0.0.2} ipsec {auth_algs sha256}\n",
        3,
        27,
        "ipsec",
    );
    assert!(e.expected.contains("icmp entry on line 1"), "{e}");
    assert!(
        e.expected.contains("must be the same for all icmp rules"),
        "{e}"
    );
    // Per protocol and per tunnel.
    ok("{ulp icmp} ipsec {auth_algs sha1}\n\
        {ulp ipv6-icmp} ipsec {auth_algs sha256}\n\
        {ulp icmp tunnel ip.tun0 negotiate tunnel} ipsec {encr_algs aes encr_auth_algs sha1}\n");
    err_says(
        "{ulp ipv6-icmp dir in} permit {auth_algs sha1}\n{ulp 58 dir out} apply {auth_algs md5}\n",
        "ipv6-icmp entry on line 1",
    );
    // The IPsec alternatives are compared in order.
    err_says(
        "{ulp icmp} ipsec {auth_algs sha1} or ipsec {auth_algs sha256}\n\
         {ulp icmp} ipsec {auth_algs sha256} or ipsec {auth_algs sha1}\n",
        "line 1",
    );
}

// ---------------------------------------------------------------------------------------
// Lines, comments, `or`

#[test]
fn comments_and_multi_line_entries() {
    let f = ok("# leading comment\n\
                #\n\
                {   # a comment inside the pattern\n\
                \tladdr 192.0.2.1   # the local host\n\
                \n\
                \traddr\n\
                \t\t192.0.2.2\n\
                }\n\
                # between pattern and action\n\
                ipsec\n\
                {\n\
                encr_algs aes# glued comment\n\
                encr_auth_algs\n\
                sha256\n\
                }   # trailing comment\n\
                \n\
                {raddr 192.0.2.9 dir out} bypass {} # NULL properties\n");
    assert_eq!(f.entries.len(), 2);
    assert_eq!(f.entries[0].line, 3);
    assert_eq!(f.entries[1].line, 17);
    assert_eq!(
        f.entries[0].pattern.endpoints,
        Endpoints::LocalRemote {
            local: Some(pfx("192.0.2.1")),
            remote: Some(pfx("192.0.2.2")),
            lport: None,
            rport: None
        }
    );
    // CRLF line ends, tabs, and a file without a final newline.
    let f = ok("{laddr 10.0.0.1}\r\n\tipsec {auth_algs sha1}\r\n{dir in} pass {}");
    assert_eq!(f.entries.len(), 2);
    // Nothing but comments and blank lines: an empty policy.
    assert!(ok("# nothing\n\n   \t# here\n").entries.is_empty());
    assert!(ok("").entries.is_empty());
}

#[test]
fn man_page_example_12_line_rules() {
    // The correctly formed entries of Example 12.
    let good = "{ raddr 10.0.0.9 rport telnet } ipsec { encr_algs 3des encr_auth_algs\n\
                sha1 sa shared}\n\
                \n\
                {\n\
                \traddr 10.0.0.9\n\
                \trport telnet\n\
                } ipsec {\n\
                \tencr_algs 3des\n\
                \tencr_auth_algs sha1\n\
                \tsa shared\n\
                }\n\
                \n\
                { raddr 10.0.0.9 rport telnet } ipsec\n\
                \t{ encr_algs 3des encr_auth_algs sha1 sa shared}\n\
                \n\
                { raddr 10.0.0.9 rport telnet } ipsec\n\
                \t{ encr_algs 3des encr_auth_algs sha1 sa shared} or ipsec\n\
                \t{ encr_algs aes encr_auth_algs sha1 sa shared}\n";
    let f = ok(good);
    assert_eq!(f.entries.len(), 4);
    assert_eq!(f.entries[0], f.entries[1]);
    assert_eq!(f.entries[1], f.entries[2]);
    assert_eq!(f.entries[3].alternatives.len(), 2);
    assert_eq!(
        f.entries[3].alternatives[1].1.encr_algs,
        Some(alg(EncrAlg::AesCbc))
    );
    // ...and the incorrectly formed one: the third line begins with `or ipsec`.
    let bad = "{ raddr 10.0.0.9 rport telnet } ipsec\n\
               \t{ encr_algs 3des encr_auth_algs sha1 sa shared}\n\
               \tor ipsec { encr_algs aes encr_auth_algs sha1 sa shared}\n";
    let e = err_at(bad, 3, 2, "or");
    assert!(e.expected.contains("same line as the `}` at 2:48"), "{e}");
    assert!(e.expected.contains("Example 12"), "{e}");
}

#[test]
fn or_placement() {
    // `or` at the end of the line, the action on the next.
    let e = one("{raddr 10.0.0.1} ipsec {encr_algs aes} or\n  ipsec {encr_algs blowfish}\n");
    assert_eq!(e.alternatives.len(), 2);
    // Three alternatives, mixed actions.
    let e = one("{raddr 10.0.0.1 dir in} ipsec {encr_algs aes encr_auth_algs sha1} or ipsec {auth_algs sha1} or bypass {}");
    assert_eq!(e.alternatives.len(), 3);
    assert_eq!(e.alternatives[2].0, Action::Bypass);
    // `or` may not begin a line, even after a comment line.
    err_at(
        "{} ipsec {auth_algs sha1}\n# c\nor ipsec {auth_algs md5}",
        3,
        1,
        "or",
    );
    // Two entries on one line.
    let e = err_at("{dir in} pass {} {dir out} pass {}", 1, 18, "{");
    assert!(e
        .expected
        .contains("each policy entry begins on a new line"));
    // `or` needs an action after it, and only comes after properties.
    err_at("{} ipsec {auth_algs sha1} or", 1, 29, "end of input");
    err_at("{} ipsec {auth_algs sha1} or {auth_algs md5}", 1, 30, "{");
    err_at("{} or ipsec {auth_algs sha1}", 1, 4, "or");
    err_at("{} ipsec {auth_algs sha1} or or ipsec {}", 1, 30, "or");
    // `or` is new style only.
    let e = err_at(
        "{saddr 10.0.0.1 dir out} ipsec {auth_algs sha1} or ipsec {auth_algs md5}",
        1,
        49,
        "or",
    );
    assert!(e.expected.contains("old-style `saddr` at 1:2"), "{e}");
    // A backslash is not a continuation.
    err_at("{} ipsec {auth_algs sha1} \\\n", 1, 27, "\\");
}

// ---------------------------------------------------------------------------------------
// Duplicates and style

#[test]
fn each_name_once_per_entry() {
    for (text, col, tok, first) in [
        (
            "{laddr 10.0.0.1 laddr 10.0.0.2} ipsec {auth_algs sha1}",
            17,
            "laddr",
            "`laddr` already given at 1:2",
        ),
        (
            "{laddr 10.0.0.1 local 10.0.0.2} ipsec {auth_algs sha1}",
            17,
            "local",
            "a single local address",
        ),
        (
            "{raddr 10.0.0.1 remote 10.0.0.2} ipsec {auth_algs sha1}",
            17,
            "remote",
            "remote address",
        ),
        (
            "{saddr 10.0.0.1 src 10.0.0.2 dir out} ipsec {auth_algs sha1}",
            17,
            "src",
            "source address",
        ),
        (
            "{dst 10.0.0.1 dstaddr 10.0.0.2 dir out} ipsec {auth_algs sha1}",
            15,
            "dstaddr",
            "destination address",
        ),
        (
            "{ulp tcp proto udp} ipsec {auth_algs sha1}",
            10,
            "proto",
            "upper-layer protocol",
        ),
        (
            "{lport 1 lport 2} ipsec {auth_algs sha1}",
            10,
            "lport",
            "local port",
        ),
        (
            "{rport 1 rport 1} ipsec {auth_algs sha1}",
            10,
            "rport",
            "remote port",
        ),
        (
            "{sport 1 sport 2 dir in} ipsec {auth_algs sha1}",
            10,
            "sport",
            "source port",
        ),
        (
            "{dport 1 dport 2 dir in} ipsec {auth_algs sha1}",
            10,
            "dport",
            "destination port",
        ),
        (
            "{saddr 10.0.0.0 smask 0xff000000 smask 0xff000000 dir in} ipsec {auth_algs sha1}",
            34,
            "smask",
            "source mask",
        ),
        (
            "{daddr 10.0.0.0 dmask 0xff000000 dmask 0xff000000 dir in} ipsec {auth_algs sha1}",
            34,
            "dmask",
            "destination mask",
        ),
        (
            "{ulp icmp type 8 type 0 dir in} pass {}",
            18,
            "type",
            "ICMP type",
        ),
        (
            "{ulp icmp type 3 code 1 code 2 dir in} pass {}",
            25,
            "code",
            "ICMP code",
        ),
        (
            "{tunnel a tunnel b negotiate tunnel} ipsec {auth_algs sha1}",
            11,
            "tunnel",
            "a single tunnel",
        ),
        (
            "{tunnel a negotiate tunnel negotiate tunnel} ipsec {auth_algs sha1}",
            28,
            "negotiate",
            "a single negotiate",
        ),
        ("{dir in dir in} pass {}", 9, "dir", "a single direction"),
        (
            "{dir in} pass {dir in}",
            16,
            "dir",
            "`dir` already given at 1:2",
        ),
        (
            "{} ipsec {auth_algs sha1 auth_algs md5}",
            26,
            "auth_algs",
            "authentication algorithm",
        ),
        (
            "{} ipsec {encr_algs aes encr_algs 3des}",
            25,
            "encr_algs",
            "encryption algorithm",
        ),
        (
            "{} ipsec {encr_auth_algs sha1 encr_auth_algs md5}",
            31,
            "encr_auth_algs",
            "ESP authentication algorithm",
        ),
        (
            "{} ipsec {auth_algs sha1 sa shared sa unique}",
            36,
            "sa",
            "a single sa",
        ),
        (
            "{} apply {auth_algs sha1 dir out dir out}",
            34,
            "dir",
            "direction",
        ),
    ] {
        let e = err_at(text, 1, col, tok);
        assert!(e.expected.contains(first), "{text}: {e}");
        assert!(
            e.expected.contains("each name may appear once per entry"),
            "{text}: {e}"
        );
    }
    // Each alternative has its own properties.
    let e = one("{} ipsec {auth_algs sha1 sa unique} or ipsec {auth_algs md5 sa unique}");
    assert_eq!(e.alternatives.len(), 2);
    // Duplicates are reported on the line of the repeated name.
    err_at(
        "{\n laddr 10.0.0.1\n\n laddr 10.0.0.2\n} ipsec {auth_algs sha1}",
        4,
        2,
        "laddr",
    );
}

#[test]
fn old_and_new_style_do_not_mix() {
    for (text, col, tok) in [
        (
            "{laddr 10.0.0.1 saddr 10.0.0.2} ipsec {auth_algs sha1}",
            17,
            "saddr",
        ),
        (
            "{saddr 10.0.0.1 raddr 10.0.0.2} ipsec {auth_algs sha1}",
            17,
            "raddr",
        ),
        ("{sport 1 lport 2} ipsec {auth_algs sha1}", 10, "lport"),
        ("{rport 1 dport 2} ipsec {auth_algs sha1}", 10, "dport"),
        (
            "{lport 1 smask 255.0.0.0} ipsec {auth_algs sha1}",
            10,
            "smask",
        ),
        (
            "{saddr 10.0.0.1 dir both} ipsec {auth_algs sha1}",
            21,
            "both",
        ),
        ("{laddr 10.0.0.1} ipsec {auth_algs sha1 dir in}", 40, "dir"),
        ("{lport 1} ipsec {auth_algs sha1 dir in}", 33, "dir"),
    ] {
        let e = err_at(text, 1, col, tok);
        assert!(e.expected.contains("old style:"), "{text}: {e}");
    }
    // `dir in`/`dir out` in the pattern go with both styles.
    one("{saddr 10.0.0.1 dir in} ipsec {auth_algs sha1}");
    one("{laddr 10.0.0.1 dir in} ipsec {auth_algs sha1}");
}

// ---------------------------------------------------------------------------------------
// Semantic checks

#[test]
fn direction_rules() {
    // bypass, pass and drop need a direction (Solaris warns and adds nothing).
    for a in ["bypass", "pass", "drop"] {
        let text = format!("{{lport 53}} {a} {{}}");
        let e = err_at(&text, 1, 12, a);
        assert!(e.expected.contains("dir in"), "{e}");
    }
    err_at(
        "{raddr 10.0.0.1} ipsec {auth_algs sha1} or pass {}",
        1,
        44,
        "pass",
    );
    // Old-style ipsec needs a direction.
    let e = err_at("{saddr 10.0.0.1} ipsec {auth_algs sha1}", 1, 18, "ipsec");
    assert!(
        e.expected.contains("old-style entry (`saddr` at 1:2)"),
        "{e}"
    );
    one("{} ipsec {auth_algs sha1 dir in}");
    // apply is outbound, permit inbound.
    let e = err_at("{} apply {auth_algs sha1 dir in}", 1, 30, "in");
    assert!(e.expected.contains("`out`: `apply`"), "{e}");
    err_at("{dir both} apply {auth_algs sha1}", 1, 6, "both");
    let e = err_at("{dir out} permit {auth_algs sha1}", 1, 6, "out");
    assert!(e.expected.contains("`in`: `permit`"), "{e}");
    let e = err_at(
        "{} apply {auth_algs sha1} or permit {auth_algs sha1}",
        1,
        30,
        "permit",
    );
    assert!(
        e.expected.contains("same direction as `apply` at 1:4"),
        "{e}"
    );
    assert_eq!(
        one("{} apply {auth_algs sha1} or bypass {}").direction(),
        Dir::Out
    );
}

#[test]
fn action_property_rules() {
    // bypass/drop take only `dir`.
    for (text, col, tok) in [
        ("{dir in} bypass {auth_algs sha1}", 18, "auth_algs"),
        ("{dir in} pass {encr_algs aes}", 16, "encr_algs"),
        ("{dir in} drop {encr_auth_algs sha1}", 16, "encr_auth_algs"),
        ("{dir in} drop {sa shared}", 16, "sa"),
        ("{saddr 10.0.0.1} bypass {dir in sa unique}", 33, "sa"),
    ] {
        let e = err_at(text, 1, col, tok);
        assert!(e.expected.contains("takes no algorithms"), "{text}: {e}");
    }
    // IPsec actions need an algorithm other than none.
    for (text, col) in [
        ("{} ipsec {}", 11),
        ("{} ipsec {sa unique}", 20),
        ("{} ipsec {auth_algs none encr_algs none}", 40),
        ("{saddr 10.0.0.1} apply {\n}", 1),
    ] {
        let e = err(text);
        assert_eq!((e.token.as_str(), e.column), ("}", col), "{text}");
        assert!(e.expected.contains("needs at least one algorithm"), "{e}");
    }
    // `none` beside a real algorithm is kept.
    let pr = props("{} ipsec {encr_algs aes-gcm encr_auth_algs none}");
    assert_eq!(pr.encr_auth_algs, Some(AlgSpec::new(AlgChoice::None)));
    assert!(pr.uses_esp() && !pr.uses_ah());
    // Combined mode and ESP authentication do not go together.
    for enc in [
        "aes-gcm",
        "aes-ccm8",
        "aes-gcm-12",
        "chacha20-poly1305",
        "aes-none-gmac",
    ] {
        let text = format!("{{}} ipsec {{encr_algs {enc} encr_auth_algs sha256}}");
        let e = err_at(&text, 1, 22 + enc.len(), "encr_auth_algs");
        assert!(e.expected.contains("combined-mode"), "{e}");
        err(&format!(
            "{{}} ipsec {{encr_algs {enc} encr_auth_algs any}}"
        ));
    }
    one("{} ipsec {encr_algs any encr_auth_algs sha256}");
    // AES-GMAC is for AH only.
    one("{} ipsec {auth_algs aes-gmac128}");
    let e = err_at(
        "{} ipsec {encr_auth_algs aes-gmac256}",
        1,
        26,
        "aes-gmac256",
    );
    assert!(e.expected.contains("AH only"), "{e}");
    // Unknown algorithms and numbers are refused, and so is `none` from the table rows.
    err_at("{} ipsec {auth_algs aes}", 1, 21, "aes");
    err_at("{} ipsec {encr_algs sha1}", 1, 21, "sha1");
    err_at("{} ipsec {encr_algs 0}", 1, 21, "0");
    err_at("{} ipsec {encr_algs 99}", 1, 21, "99");
    err_at("{} ipsec {auth_algs 256}", 1, 21, "256");
    err_at("{} ipsec {auth_algs 0}", 1, 21, "0");
    err_at("{} ipsec {sa private}", 1, 14, "private");
    err_at("{} ipsec {sa Shared}", 1, 14, "Shared");
    err_at("{} apply {auth_algs sha1 dir both}", 1, 30, "both");
}

#[test]
fn tunnel_rules() {
    let e = err_at("{tunnel ip.tun0} ipsec {auth_algs sha1}", 1, 2, "tunnel");
    assert!(e.expected.contains("go together"));
    err_at(
        "{negotiate tunnel} ipsec {auth_algs sha1}",
        1,
        2,
        "negotiate",
    );
    for sel in ["laddr 10.0.0.1", "raddr 10.0.0.0/8", "lport 22", "ulp tcp"] {
        let text = format!("{{tunnel ip.tun0 negotiate transport {sel}}} ipsec {{auth_algs sha1}}");
        let e = err_at(&text, 1, 37, sel.split(' ').next().unwrap());
        assert!(e.expected.contains("negotiate transport"), "{e}");
    }
    // The earliest selector is named.
    err_at(
        "{ulp tcp tunnel t0 negotiate transport laddr 10.0.0.1} ipsec {auth_algs sha1}",
        1,
        2,
        "ulp",
    );
    one("{tunnel t0 negotiate transport dir out} ipsec {auth_algs sha1}");
    one("{tunnel t0 negotiate tunnel lport 22 ulp tcp} ipsec {auth_algs sha1}");
    err_at(
        "{tunnel ip/tun0 negotiate tunnel} ipsec {auth_algs sha1}",
        1,
        9,
        "ip/tun0",
    );
    let long = "t".repeat(32);
    err_at(
        &format!("{{tunnel {long} negotiate tunnel}} ipsec {{auth_algs sha1}}"),
        1,
        9,
        &long,
    );
    err_at(
        "{tunnel t0 negotiate transports} ipsec {auth_algs sha1}",
        1,
        22,
        "transports",
    );
}

#[test]
fn address_rules() {
    assert_eq!(
        pattern(&format!("{{raddr 10.0.0.0/0}} {ESP}")).endpoints,
        Endpoints::LocalRemote {
            local: None,
            remote: Some(pfx("10.0.0.0/0")),
            lport: None,
            rport: None
        }
    );
    for bad in [
        "10.0.0.0/33",
        "::/129",
        "10.0.0.0/",
        "10.0.0.0/x",
        "/8",
        "10.0.0.0/8/8",
    ] {
        err_at(&format!("{{raddr {bad}}} {ESP}"), 1, 8, bad);
    }
    // Names are refused when lookups are off.
    let e = err_at(&format!("{{raddr spiderweb}} {ESP}"), 1, 8, "spiderweb");
    assert!(e.expected.contains("name lookups are off"));
    // Families must pair.
    let e = err_at(
        &format!("{{laddr 10.0.0.1 raddr 2001:db8::1}} {ESP}"),
        1,
        23,
        "2001:db8::1",
    );
    assert!(
        e.expected
            .contains("same family as `laddr 10.0.0.1` at 1:8"),
        "{e}"
    );
    err_at(
        &format!("{{daddr ::1 saddr 10.0.0.1 dir in}} {ESP}"),
        1,
        18,
        "10.0.0.1",
    );
    // Masks.
    for (text, col, tok, needle) in [
        (
            "{smask 255.0.0.0 dir in} pass {}",
            2,
            "smask",
            "`saddr` in an entry with `smask`",
        ),
        (
            "{dmask 255.0.0.0 dir in} pass {}",
            2,
            "dmask",
            "`daddr` in an entry with `dmask`",
        ),
        (
            "{saddr 10.0.0.0/8 smask 255.0.0.0 dir in} pass {}",
            19,
            "smask",
            "/prefix",
        ),
        (
            "{saddr ::1 smask 255.0.0.0 dir in} pass {}",
            12,
            "smask",
            "IPv4 only",
        ),
        (
            "{saddr 10.0.0.1 smask 255.0.255.0 dir in} pass {}",
            23,
            "255.0.255.0",
            "contiguous",
        ),
        (
            "{saddr 10.0.0.1 smask 0.0.0.0 dir in} pass {}",
            23,
            "0.0.0.0",
            "not 0",
        ),
        (
            "{saddr 10.0.0.1 smask 0x0 dir in} pass {}",
            23,
            "0x0",
            "not 0",
        ),
        (
            "{saddr 10.0.0.1 smask 0x1ffffffff dir in} pass {}",
            23,
            "0x1ffffffff",
            "IPv4 mask",
        ),
        (
            "{saddr 10.0.0.1 smask 24 dir in} pass {}",
            23,
            "24",
            "IPv4 mask",
        ),
    ] {
        let e = err_at(text, 1, col, tok);
        assert!(e.expected.contains(needle), "{text}: {e}");
    }
}

#[test]
fn host_names_resolve_when_lookups_are_on() {
    let f = parse(
        "{laddr localhost raddr 127.0.0.2 dir out} ipsec {auth_algs sha1}\n",
        "names.conf",
    )
    .unwrap();
    let Endpoints::LocalRemote {
        local: Some(local), ..
    } = &f.entries[0].pattern.endpoints
    else {
        panic!("{f:?}");
    };
    let Address::Name {
        name,
        prefix,
        addrs,
    } = local
    else {
        panic!("{local:?}");
    };
    assert_eq!(name, "localhost");
    assert_eq!(*prefix, None);
    assert!(addrs.contains(&ip("127.0.0.1")), "{addrs:?}");
    assert!(local
        .prefixes()
        .iter()
        .all(|p| p.len == if p.addr.is_ipv4() { 32 } else { 128 }));
    // The printer writes the name.
    assert!(print(&f).starts_with("{laddr localhost raddr 127.0.0.2 dir out}"));
    // An unresolvable name.
    let e = parse("{raddr no-such-host.invalid} ipsec {auth_algs sha1}", "n").unwrap_err();
    assert_eq!((e.line, e.column), (1, 8));
    // Characters no host name has.
    let e = parse("{raddr a!b} ipsec {auth_algs sha1}", "n").unwrap_err();
    assert_eq!(e.token, "a!b");
}

#[test]
fn numbers_ports_and_protocols() {
    for (text, col, tok) in [
        ("{lport 0} ipsec {auth_algs sha1}", 8, "0"),
        ("{lport 65536} ipsec {auth_algs sha1}", 8, "65536"),
        ("{lport 023} ipsec {auth_algs sha1}", 8, "023"),
        ("{lport -1} ipsec {auth_algs sha1}", 8, "-1"),
        (
            "{lport no-such-service} ipsec {auth_algs sha1}",
            8,
            "no-such-service",
        ),
        ("{ulp 0} ipsec {auth_algs sha1}", 6, "0"),
        ("{ulp 256} ipsec {auth_algs sha1}", 6, "256"),
        ("{ulp ip} ipsec {auth_algs sha1}", 6, "ip"),
        ("{ulp tcpx} ipsec {auth_algs sha1}", 6, "tcpx"),
    ] {
        err_at(text, 1, col, tok);
    }
    assert!(matches!(
        pattern("{lport 65535 rport 1} ipsec {auth_algs sha1}").endpoints,
        Endpoints::LocalRemote {
            lport: Some(65535),
            rport: Some(1),
            ..
        }
    ));
}

// ---------------------------------------------------------------------------------------
// Error positions and trailing garbage

#[test]
fn error_positions() {
    for (text, line, col, tok, needle) in [
        (
            "laddr 10.0.0.1",
            1,
            1,
            "laddr",
            "`{` to start a policy entry",
        ),
        ("}", 1, 1, "}", "`{` to start"),
        (
            "{laddr 10.0.0.1",
            1,
            16,
            "end of input",
            "`}` to close the pattern opened at 1:1",
        ),
        ("{laddr}", 1, 7, "}", "address"),
        ("{laddr\n}", 2, 1, "}", "after `laddr`"),
        ("{foo 1} ipsec {}", 1, 2, "foo", "a pattern name"),
        ("{LADDR 10.0.0.1} ipsec {}", 1, 2, "LADDR", "a pattern name"),
        ("{{} ipsec {}", 1, 2, "{", "a pattern name"),
        ("{}", 1, 3, "end of input", "an action"),
        ("{} {}", 1, 4, "{", "an action"),
        ("{} encrypt {}", 1, 4, "encrypt", "an action"),
        ("{} IPSEC {}", 1, 4, "IPSEC", "an action"),
        (
            "{} ipsec",
            1,
            9,
            "end of input",
            "`{` to open the properties of `ipsec`",
        ),
        ("{} ipsec auth_algs sha1", 1, 10, "auth_algs", "`{` to open"),
        (
            "{} ipsec {auth_algs sha1",
            1,
            25,
            "end of input",
            "`}` to close the properties of `ipsec` at 1:4",
        ),
        (
            "{} ipsec {auth_algs}",
            1,
            20,
            "}",
            "authentication algorithm",
        ),
        (
            "{} ipsec {auth_algs {}",
            1,
            21,
            "{",
            "authentication algorithm",
        ),
        (
            "{} ipsec {esp_algs aes}",
            1,
            11,
            "esp_algs",
            "a property name",
        ),
        ("{} ipsec {{}", 1, 11, "{", "a property name"),
        ("{dir up} pass {}", 1, 6, "up", "`in`, `out` or `both`"),
        (
            "{} apply {auth_algs sha1 dir}",
            1,
            29,
            "}",
            "`in` or `out` after `dir`",
        ),
        (
            "{dir in} pass {} garbage",
            1,
            18,
            "garbage",
            "`or` or the end of the line",
        ),
        (
            "{dir in} pass {}\ngarbage",
            2,
            1,
            "garbage",
            "`{` to start a policy entry",
        ),
        ("{dir in} pass {}\n}", 2, 1, "}", "`{` to start"),
        (
            "# c\n\n   {dir in} pass {}\n\t\t{ulp tcp ulp udp} pass {}",
            4,
            12,
            "ulp",
            "a single upper-layer protocol",
        ),
        (
            "{dir in} pass {}\n{dir in} pass {} # ok\n{negotiate sideways}",
            3,
            12,
            "sideways",
            "`tunnel` or `transport`",
        ),
    ] {
        let e = err_at(text, line, col, tok);
        assert!(e.expected.contains(needle), "{text:?}: {e}");
    }
}

#[test]
fn a_file_with_an_error_yields_nothing_and_errors_display() {
    let text = "{dir in} pass {}\n{dir out} pass {}\n{dir both} pass {} or\n";
    let e = err_at(text, 4, 1, "end of input");
    assert_eq!(
        e.to_string(),
        format!(
            "t.conf:4:1: unexpected `end of input`, expected {}",
            e.expected
        )
    );
}

#[test]
fn parse_file_reads_and_reports() {
    let dir = std::env::temp_dir().join(format!("ipsecconf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.conf");
    std::fs::write(&good, "{laddr 127.0.0.1 dir both} bypass {}\n").unwrap();
    let f = parse_file(&good).unwrap();
    assert_eq!(f.entries.len(), 1);
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, b"{dir in} pass {}\n{dir \xff}\n").unwrap();
    let e = parse_file(&bad).unwrap_err();
    assert_eq!(
        (e.line, e.column, e.token.as_str()),
        (2, 6, "invalid UTF-8")
    );
    let e = parse_file(&dir.join("missing.conf")).unwrap_err();
    assert_eq!((e.line, e.column), (0, 0));
    assert!(e.expected.contains("a readable file"));
    let _ = std::fs::remove_dir_all(&dir);
}

// ---------------------------------------------------------------------------------------
// The man page's examples (host names replaced by documentation addresses)

#[test]
fn man_page_examples_1_to_8() {
    // Example 1: outbound TCP between two hosts with ESP/AES.
    let e = one(
        "#\n# Protect the outbound TCP traffic\n#\n{\n     laddr 192.0.2.10\n     \
         raddr 192.0.2.20\n     ulp tcp\n     dir out\n} ipsec {\n\t     encr_algs AES\n}\n",
    );
    assert_eq!(e.line, 4);
    assert_eq!(e.direction(), Dir::Out);
    assert_eq!(e.pattern.ulp, Some(6));
    assert_eq!(e.alternatives[0].1.encr_algs, Some(alg(EncrAlg::AesCbc)));
    // Example 2: the same, inbound.
    let e = one(
        "{\n\t    laddr 192.0.2.10\n\t    raddr 192.0.2.20\n\t    ulp tcp\n\t    dir in\n} \
         ipsec {\n\t    encr_algs AES\n}\n",
    );
    assert_eq!(e.direction(), Dir::In);
    // Example 3: both directions at once.
    let e = one(
        "{\n\t    laddr 192.0.2.10\n\t    raddr 192.0.2.20\n\t    ulp tcp\n} ipsec {\n\t    \
         encr_algs AES\n}\n",
    );
    assert_eq!(e.direction(), Dir::Both);
    // Example 4: inbound telnet authenticated with SHA1.
    let e = one("{\n\t   lport telnet\n\t   dir in\n} ipsec {\n\t   auth_algs sha1\n}\n");
    assert!(matches!(
        e.pattern.endpoints,
        Endpoints::LocalRemote {
            lport: Some(23),
            ..
        }
    ));
    assert_eq!(e.alternatives[0].1.auth_algs, Some(alg(AuthAlg::HmacSha1)));
    // Example 5: bypass one host, NULL encryption + MD5 from its network.
    let f = ok(
        "{\nraddr 198.51.100.7\n\tdir in\n} bypass {}\n\n# Now add for network-B.\n\
                {\n\traddr 198.51.100.0/24\n\tdir in\n} ipsec {\nencr_algs NULL\n\
                encr_auth_algs md5\n}\n",
    );
    assert_eq!(f.entries.len(), 2);
    let p1 = &f.entries[1].alternatives[0].1;
    assert_eq!(p1.encr_algs, Some(alg(EncrAlg::Null)));
    assert_eq!(p1.encr_auth_algs, Some(alg(AuthAlg::HmacMd5)));
    // Example 6 as printed has bypass entries without `dir` (Solaris warns and adds no
    // rule); Ironswan refuses them, and accepts them with `dir both`.
    let e = err(
        "#\n# Bypass traffic for port no 53\n     #\n{lport 53} bypass {}\n\
                 {rport 53} bypass {}\n{raddr 192.0.2.20 } ipsec {encr_algs any sa unique}\n",
    );
    assert_eq!((e.line, e.column, e.token.as_str()), (4, 12, "bypass"));
    let f = ok(
        "{lport 53 dir both} bypass {}\n{rport 53 dir both} bypass {}\n\
                {raddr 192.0.2.20 } ipsec {encr_algs any sa unique}\n",
    );
    let p2 = &f.entries[2].alternatives[0].1;
    assert_eq!(p2.sa, Some(SaSharing::Unique));
    assert_eq!(p2.encr_algs, Some(AlgSpec::new(AlgChoice::Any)));
    // Example 7: outbound AH with any algorithm, unique SAs.
    let f = ok(
        " #\n     # Protect the outbound traffic from all interfaces.\n     #\n\
                {raddr 192.0.2.20 dir out} ipsec {auth_algs any sa unique}\n\
                {\n    laddr 192.0.2.10\n    raddr 192.0.2.20\n    dir in\n} ipsec \
                {auth_algs any sa unique}\n",
    );
    assert_eq!(f.entries[0].direction(), Dir::Out);
    assert_eq!(f.entries[1].direction(), Dir::In);
    // Example 8: ESP for everything outbound, AH to one network, bypass another.
    let f = ok("{raddr 10.2.0.0/16 dir out} ipsec {auth_algs any}\n\
                {dir out} ipsec {encr_algs any}\n\
                {raddr 10.3.0.0/16 dir out} bypass {} # NULL properties\n");
    assert_eq!(f.entries.len(), 3);
    assert_eq!(f.entries[2].alternatives[0].0, Action::Bypass);
}

#[test]
fn man_page_examples_9_to_17() {
    // Example 9: IPv6 link-local hosts with 3DES and MD5 (the man page's second address
    // has the letter l for a digit 1, which is no address).
    let e = one(
        "{\n    laddr fe80::a00:20ff:fe21:4483\n    raddr fe80::a00:20ff:fe1f:e346\n    \
                 dir out\n} ipsec {\n    encr_algs 3DES\n    encr_auth_algs MD5\n}\n",
    );
    assert!(matches!(&e.pattern.endpoints,
        Endpoints::LocalRemote { remote: Some(a), .. } if *a == pfx("fe80::a00:20ff:fe1f:e346")));
    err("{ raddr fe80::a00:20ff:felf:e346 } ipsec {auth_algs sha1}");
    // Example 10: site-local network with SHA1.
    let e = one("{raddr fec0:abcd::0/32} ipsec { auth_algs SHA1 }");
    assert!(matches!(&e.pattern.endpoints,
        Endpoints::LocalRemote { remote: Some(a), .. } if *a == pfx("fec0:abcd::/32")));
    // Example 11: key lengths.
    let f = ok(
        "# use aes at any key length\n{raddr 192.0.2.20} ipsec {encr_algs aes}\n\n\
                # use aes with a 192 bit key\n{raddr 192.0.2.20} ipsec {encr_algs aes(192)}\n\n\
                # use aes with any key length up to 192 bits\n# i.e. 192 bits or less\n\
                {raddr 192.0.2.20} ipsec {encr_algs aes(..192)}\n\n\
                # use aes with any key length of 192 or more\n# i.e. 192 bits or more\n\
                {raddr 192.0.2.20} ipsec {encr_algs aes(192..)}\n\n\
                #use aes with any key from 192 to 256 bits\n\
                {raddr 192.0.2.20} ipsec {encr_algs aes(192..256)}\n\n\
                #use any algorithm with a key of 192 bits or longer\n\
                {raddr 192.0.2.20} ipsec {encr_algs any(192..)}\n",
    );
    let ranges: Vec<KeyRange> = f
        .entries
        .iter()
        .map(|e| e.alternatives[0].1.encr_algs.unwrap().key_bits)
        .collect();
    let (lo, hi) = (Some(192), Some(256));
    assert_eq!(
        ranges,
        vec![
            KeyRange::ANY,
            KeyRange::exact(192),
            KeyRange { min: None, max: lo },
            KeyRange { min: lo, max: None },
            KeyRange { min: lo, max: hi },
            KeyRange { min: lo, max: None },
        ]
    );
    // Example 12: see man_page_example_12_line_rules.
    // Example 13: neighbor discovery in the clear.
    let f = ok("{raddr fec0:abcd::0/32} ipsec { auth_algs SHA1 }\n\
                {raddr fec0:abcd::0/32 ulp ipv6-icmp type 133-137  dir both }\n    pass { }\n");
    let nd = &f.entries[1];
    assert_eq!(nd.pattern.ulp, Some(58));
    assert_eq!(
        nd.pattern.icmp_type,
        Some(IcmpRange {
            first: 133,
            last: 137
        })
    );
    assert_eq!(
        nd.alternatives,
        vec![(Action::Bypass, Properties::default())]
    );
    assert_eq!(nd.direction(), Dir::Both);
    // The same rule without an address.
    one("{ulp ipv6-icmp type 133-137 dir both} pass {}");
    // Example 14: "or".
    let e = one("{raddr 192.0.2.20} ipsec {encr_algs aes} or ipsec {encr_algs blowfish}");
    assert_eq!(
        e.alternatives[1].1.encr_algs,
        Some(alg(EncrAlg::BlowfishCbc))
    );
    // Example 15: a Solaris 9 compatible tunnel.
    let e = one(
        "{tunnel ip.tun0 negotiate transport} ipsec {encr_algs aes\n                \
                 encr_auth_algs md5}",
    );
    assert_eq!(e.pattern.negotiate, Some(Negotiate::Transport));
    // Example 16: a VPN client with an assigned address.
    let e = one(
        "# Unlike route(8), the default route has to be spelled-out.\n\
                 {tunnel ip.tun0 negotiate tunnel raddr 10.8.0.5/32\n\
                 laddr 0.0.0.0/0} ipsec {encr_algs aes encr_auth_algs sha1}\n",
    );
    assert!(matches!(&e.pattern.endpoints,
        Endpoints::LocalRemote { local: Some(l), remote: Some(r), .. }
            if *l == pfx("0.0.0.0/0") && *r == pfx("10.8.0.5")));
    // Example 17: a transit VPN router.
    let f = ok("# ip.tun0 between me (C) and remote-site A.\n\
                {tunnel ip.tun0 negotiate tunnel raddr 10.1.1.0/24 laddr\n\
                10.2.2.0/24} ipsec {encr_algs 3des encr_auth_algs md5}\n\n\
                # Cover remote-site A traffic to my subnet.\n\
                {tunnel ip.tun0 negotiate tunnel raddr 10.1.1.0/24 laddr\n\
                10.3.3.0/24} ipsec {encr_algs 3des encr_auth_algs md5}\n\n\
                # ip.tun1 between me (C) and remote-site B.\n\
                {tunnel ip.tun1 negotiate tunnel raddr 10.2.2.0/24 laddr\n\
                10.1.1.0/24} ipsec {encr_algs aes encr_auth_algs sha1}\n\n\
                {tunnel ip.tun1 negotiate tunnel raddr 10.2.2.0/24 laddr\n\
                10.3.3.0/24} ipsec {encr_algs aes encr_auth_algs md5}\n");
    assert_eq!(f.entries.len(), 4);
    assert_eq!(f.entries[3].pattern.tunnel.as_deref(), Some("ip.tun1"));
}

#[test]
fn typical_host_to_host_policies() {
    let f = ok(
        "# Host A (192.0.2.1) and host B (192.0.2.2): everything between them in ESP.\n\
                {laddr 192.0.2.1 raddr 192.0.2.2} ipsec {encr_algs aes-gcm(256) sa shared}\n\
                # IKE and NAT-T in the clear.\n\
                {ulp udp lport isakmp dir both} bypass {}\n\
                {ulp udp lport ipsec-nat-t dir both} bypass {}\n\
                # IPv6 neighbor discovery in the clear.\n\
                {ulp ipv6-icmp type 133-137 dir both} pass {}\n\
                # IPv6 peers: ESP with AES-CBC and HMAC-SHA-256, or AES-GCM.\n\
                {laddr 2001:db8::1 raddr 2001:db8::2} ipsec {encr_algs aes(128..256) \
                encr_auth_algs hmac-sha256} or ipsec {encr_algs aes-gcm}\n\
                # Drop cleartext from elsewhere on the lab network.\n\
                {raddr 198.51.100.0/24 dir in} drop {}\n",
    );
    assert_eq!(f.entries.len(), 6);
    assert!(f.warnings().is_empty(), "{:?}", f.warnings());
    assert_eq!(
        print(&f),
        "{laddr 192.0.2.1 raddr 192.0.2.2} ipsec {encr_algs aes-gcm(256) sa shared}\n\
         {lport 500 ulp udp dir both} bypass {}\n\
         {lport 4500 ulp udp dir both} bypass {}\n\
         {ulp ipv6-icmp type 133-137 dir both} bypass {}\n\
         {laddr 2001:db8::1 raddr 2001:db8::2} ipsec {encr_algs aes-cbc(128..256) \
         encr_auth_algs hmac-sha256} or ipsec {encr_algs aes-gcm}\n\
         {raddr 198.51.100.0/24 dir in} drop {}\n"
    );
}

// ---------------------------------------------------------------------------------------
// Printer and warnings

#[test]
fn printer_canonical_forms() {
    let cases = [
        (
            "{src 10.0.0.0 smask 255.255.0.0 dest 10.1.0.1 sport ssh dport 0x400 proto 17} \
             apply {auth_algs SHA encr_algs 3DES(192) encr_auth_algs 2 sa unique dir out}",
            "{saddr 10.0.0.0/16 daddr 10.1.0.1 sport 22 dport 1024 ulp udp} apply \
             {auth_algs hmac-sha1 encr_algs 3des-cbc(192) encr_auth_algs hmac-md5 sa unique \
             dir out}",
        ),
        (
            "{ulp icmp type 3 code 4 dir in} pass {}",
            "{ulp icmp type unreach code needfrag dir in} bypass {}",
        ),
        (
            "{ulp 58 type 1 code 4 dir in} pass {}",
            "{ulp ipv6-icmp type unreach6 code port-unr6 dir in} bypass {}",
        ),
        ("{ulp 200 dir in} pass {}", "{ulp 200 dir in} bypass {}"),
        (
            "{ulp icmp type 42 code 7-9 dir in} pass {}",
            "{ulp icmp type 42 code 7-9 dir in} bypass {}",
        ),
        (
            "{ulp icmp type 11 code 0 dir in} pass {}",
            "{ulp icmp type timex code 0 dir in} bypass {}",
        ),
        (
            "{} ipsec {auth_algs any(..160) encr_algs none encr_auth_algs sha256(256..)}",
            "{} ipsec {auth_algs any(..160) encr_algs none encr_auth_algs hmac-sha256(256..)}",
        ),
        (
            "{saddr 10.0.0.1} permit {auth_algs sha1 dir in}",
            "{saddr 10.0.0.1} permit {auth_algs hmac-sha1 dir in}",
        ),
        (
            "{local ::ffff:10.0.0.1 remote 2001:db8::/128} ipsec {auth_algs 7}",
            "{laddr ::ffff:10.0.0.1 raddr 2001:db8::} ipsec {auth_algs hmac-sha512}",
        ),
        (
            "{tunnel ip.tun0 negotiate tunnel dir out} drop {}",
            "{tunnel ip.tun0 negotiate tunnel dir out} drop {}",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(print_entry(&one(text)), want, "{text}");
    }
    assert_eq!(print(&PolicyFile::default()), "");
}

#[test]
fn entry_equality_ignores_the_line() {
    let a = ok("{dir in} pass {}").entries.remove(0);
    let b = ok("\n\n{dir in}\npass {}").entries.remove(0);
    assert_ne!(a.line, b.line);
    assert_eq!(a, b);
}

#[test]
fn warnings() {
    let f = ok("{} ipsec {encr_algs aes}\n\
                {} ipsec {encr_algs any}\n\
                {} ipsec {encr_algs aes-gcm}\n\
                {} ipsec {encr_algs aes auth_algs sha1}\n\
                {} ipsec {encr_algs des encr_auth_algs md5}\n\
                {tunnel t negotiate tunnel} ipsec {auth_algs sha1 sa unique}\n\
                {dir both} bypass {}\n");
    let w: Vec<(usize, String)> = f
        .warnings()
        .into_iter()
        .map(|w| (w.line, w.message))
        .collect();
    assert_eq!(w.len(), 5, "{w:?}");
    assert!(w[0].0 == 1 && w[0].1.contains("encryption with no authentication"));
    assert!(w[1].0 == 2 && w[1].1.contains("encryption with no authentication"));
    assert!(w[2].0 == 5 && w[2].1.contains("`des-cbc` is RFC 8221 MUST NOT"));
    assert!(w[3].0 == 5 && w[3].1.contains("`hmac-md5`"));
    assert!(w[4].0 == 6 && w[4].1.contains("sa unique"));
    assert!(f.warnings()[0].to_string().starts_with("line 1: "));
}
