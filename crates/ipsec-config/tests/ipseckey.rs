//! The ipseckey(8) language: every command, extension and synonym, numbers, comments and
//! continuations, the tunnel-mode rule, error positions, and the printer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use ipsec_config::fuzz_support::sa_config_eq;
use ipsec_config::ipseckey::{
    parse, parse_file, parse_with, print_add, save, Command, ParseError, ParseOptions, SaSpec,
    SaType,
};
use ipsec_core::{
    Direction, Identity, IdentityType, KeyMaterial, Mode, NatT, Prefix, Proto, SaConfig, SaState,
    Sadb, UniqueBinding,
};
use ipsec_crypto::{auth_table, encr_table, AuthAlg, EncrAlg};

const AES128: &str = "000102030405060708090a0b0c0d0e0f";
const SHA256: &str = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";
/// A valid ESP add to which extensions are appended.
const BASE4: &str =
    "add esp spi 0x1000 dst 192.0.2.2 encr_alg aes encrkey 000102030405060708090a0b0c0d0e0f";
const BASE6: &str =
    "add esp spi 0x1000 dst6 2001:db8::2 encr_alg aes encrkey 000102030405060708090a0b0c0d0e0f";

fn opts() -> ParseOptions {
    ParseOptions { numeric: true }
}

fn p(text: &str) -> Result<Vec<Command>, ParseError> {
    parse_with(text, "t.conf", opts())
}

fn one(text: &str) -> Command {
    let mut v = p(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
    assert_eq!(v.len(), 1, "{text:?}");
    v.remove(0)
}

fn spec(text: &str) -> SaSpec {
    match one(text) {
        Command::Add(s)
        | Command::Update(s)
        | Command::UpdatePair(s)
        | Command::Delete(s)
        | Command::DeletePair(s)
        | Command::Get(s) => s,
        c => panic!("not an SA command: {c:?}"),
    }
}

fn cfg(text: &str) -> SaConfig {
    spec(text)
        .to_config()
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

fn err(text: &str) -> ParseError {
    match p(text) {
        Ok(c) => panic!("{text:?} parsed: {c:?}"),
        Err(e) => e,
    }
}

/// Asserts the error position and token, and that the column really points at the token in
/// the text (for tokens that appear verbatim).
fn err_at(text: &str, line: usize, column: usize, token: &str) -> ParseError {
    let e = err(text);
    assert_eq!(
        (e.line, e.column, e.token.as_str()),
        (line, column, token),
        "{text:?}: {e}"
    );
    assert_eq!(e.file, "t.conf");
    if !token.starts_with('<') && !token.starts_with("end of") {
        let l = text.split('\n').nth(line - 1).unwrap();
        let at: String = l.chars().skip(column - 1).collect();
        assert!(
            at.starts_with(token) || at.starts_with('"'),
            "column {column} of {l:?} is {at:?}"
        );
    }
    e
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------------
// Commands

#[test]
fn every_command() {
    assert!(matches!(one(BASE4), Command::Add(_)));
    for (text, want) in [
        (
            "update esp spi 0x1000 dst 192.0.2.2 hard_bytes 16000000",
            "update",
        ),
        (
            "update-pair esp spi 0x1000 dst 192.0.2.2 soft_addtime 5",
            "update-pair",
        ),
        ("delete esp spi 0x2112 dst 224.0.0.1", "delete"),
        ("delete-pair esp spi 0x2112 dst 224.0.0.1", "delete-pair"),
        ("get ah spi 0x5150 dst 192.0.2.9", "get"),
    ] {
        let c = one(text);
        let got = match &c {
            Command::Update(_) => "update",
            Command::UpdatePair(_) => "update-pair",
            Command::Delete(_) => "delete",
            Command::DeletePair(_) => "delete-pair",
            Command::Get(_) => "get",
            _ => "other",
        };
        assert_eq!(got, want, "{text}");
    }
    let s = spec("update esp spi 0x1000 dst 192.0.2.2 hard_bytes 16000000");
    assert_eq!(s.hard.bytes, Some(16_000_000));
    let s = spec("get ah spi 0x5150 dst 192.0.2.9");
    assert_eq!((s.satype, s.spi), (SaType::Ah, Some(0x5150)));

    assert_eq!(one("flush"), Command::Flush(SaType::All));
    assert_eq!(one("flush all"), Command::Flush(SaType::All));
    assert_eq!(one("flush ah"), Command::Flush(SaType::Ah));
    assert_eq!(one("flush ESP"), Command::Flush(SaType::Esp));
    assert_eq!(one("flush 3"), Command::Flush(SaType::Esp));
    assert_eq!(one("flush 2"), Command::Flush(SaType::Ah));
    assert_eq!(one("flush 0"), Command::Flush(SaType::All));
    assert_eq!(one("dump"), Command::Dump(SaType::All));
    assert_eq!(one("dump esp"), Command::Dump(SaType::Esp));
    assert_eq!(one("dump all"), Command::Dump(SaType::All));
    assert_eq!(
        one("save all"),
        Command::Save {
            satype: SaType::All,
            file: None
        }
    );
    assert_eq!(
        one("save esp /tmp/snapshot"),
        Command::Save {
            satype: SaType::Esp,
            file: Some("/tmp/snapshot".into())
        }
    );
    assert_eq!(one("monitor"), Command::Monitor);
    assert_eq!(one("passive_monitor"), Command::PassiveMonitor);
    assert_eq!(one("pmonitor"), Command::PassiveMonitor);
    assert_eq!(one("help"), Command::Help(None));
    assert_eq!(one("help add"), Command::Help(Some("add".into())));
    assert_eq!(one("?"), Command::Help(None));
    assert_eq!(one("? attr"), Command::Help(Some("attr".into())));
}

#[test]
fn command_errors() {
    err_at("frobnicate esp", 1, 1, "frobnicate");
    err_at("ADD esp spi 1 dst 1.2.3.4", 1, 1, "ADD");
    err_at("flush esp extra", 1, 11, "extra");
    err_at("flush bogus", 1, 7, "bogus");
    err_at("flush 5", 1, 7, "5");
    err_at("dump ah ah", 1, 9, "ah");
    err_at("save", 1, 5, "end of input");
    err_at("save bogus", 1, 6, "bogus");
    err_at("save esp a b", 1, 12, "b");
    err_at("monitor now", 1, 9, "now");
    err_at("pmonitor x", 1, 10, "x");
    err_at("help add more", 1, 10, "more");
    let e = err_at("add all spi 1 dst 1.2.3.4", 1, 5, "all");
    assert!(e.expected.contains("only for flush"), "{e}");
    err_at("get", 1, 4, "end of input");
    err_at("delete x spi 1", 1, 8, "x");
}

// ---------------------------------------------------------------------------------------
// Extensions and synonyms

type Check = fn(&SaSpec) -> bool;

#[test]
fn every_extension_and_synonym_v4() {
    let cases: &[(&str, Check)] = &[
        ("spi 0x1000", |s| s.spi == Some(0x1000)),
        ("pair-spi 0x2345", |s| s.pair_spi == Some(0x2345)),
        ("inbound", |s| s.direction == Some(Direction::Inbound)),
        ("outbound", |s| s.direction == Some(Direction::Outbound)),
        ("replay 64", |s| s.replay == Some(64)),
        ("replay 4096", |s| s.replay == Some(4096)),
        ("replay_value 0x1_0000_0000", |_| false), // replaced below: not a number
        ("replay_value 4294967296", |s| {
            s.replay_value == Some(1 << 32)
        }),
        ("state larval", |s| s.state == Some(SaState::Larval)),
        ("state mature", |s| s.state == Some(SaState::Mature)),
        ("state dying", |s| s.state == Some(SaState::Dying)),
        ("state dead", |s| s.state == Some(SaState::Dead)),
        ("state DEAD", |s| s.state == Some(SaState::Dead)),
        ("state 2", |s| s.state == Some(SaState::Dying)),
        ("auth_alg sha256", |s| {
            s.auth_alg == Some(AuthAlg::HmacSha256)
        }),
        ("authalg sha256", |s| {
            s.auth_alg == Some(AuthAlg::HmacSha256)
        }),
        ("authkey 00ff", |s| {
            s.auth_key == Some(KeyMaterial::new(&[0, 0xff])) && s.auth_key_bits.is_none()
        }),
        ("soft_alloc 7", |s| s.soft.packets == Some(7)),
        ("soft_allocations 7", |s| s.soft.packets == Some(7)),
        ("soft_bytes 8", |s| s.soft.bytes == Some(8)),
        ("soft_addtime 9", |s| s.soft.addtime == Some(9)),
        ("soft_usetime 10", |s| s.soft.usetime == Some(10)),
        ("hard_alloc 11", |s| s.hard.packets == Some(11)),
        ("hard_allocations 11", |s| s.hard.packets == Some(11)),
        ("hard_bytes 12", |s| s.hard.bytes == Some(12)),
        ("hard_addtime 13", |s| s.hard.addtime == Some(13)),
        ("hard_usetime 14", |s| s.hard.usetime == Some(14)),
        ("idle_addtime 15", |s| s.idle.addtime == Some(15)),
        ("idle_usetime 16", |s| s.idle.usetime == Some(16)),
        ("saddr 192.0.2.1", |s| s.src == Some(ip("192.0.2.1"))),
        ("srcaddr 192.0.2.1", |s| s.src == Some(ip("192.0.2.1"))),
        ("src 192.0.2.1", |s| s.src == Some(ip("192.0.2.1"))),
        ("sport 500", |s| s.sport == Some(500)),
        ("dport 4500", |s| s.dport == Some(4500)),
        ("proto 17", |s| s.proto == Some(17)),
        ("ulp 17", |s| s.proto == Some(17)),
        ("encap udp nat_rport 4501", |s| {
            s.encap_udp && s.nat_rport == Some(4501)
        }),
        ("encap UDP nat_loc 198.51.100.1", |s| {
            s.encap_udp && s.nat_loc == Some(ip("198.51.100.1"))
        }),
        ("encap udp nat_rem 10.1.1.1", |s| {
            s.nat_rem == Some(ip("10.1.1.1"))
        }),
        ("encap udp nat_lport 4502", |s| s.nat_lport == Some(4502)),
        ("isrc 10.0.0.0/8", |s| {
            s.inner_src
                == Some(Prefix {
                    addr: ip("10.0.0.0"),
                    len: 8,
                })
        }),
        ("innersrc 10.0.0.1", |s| {
            s.inner_src
                == Some(Prefix {
                    addr: ip("10.0.0.1"),
                    len: 32,
                })
        }),
        ("proxyaddr 10.0.0.0/16", |s| {
            s.inner_src
                == Some(Prefix {
                    addr: ip("10.0.0.0"),
                    len: 16,
                })
        }),
        ("proxy 10.0.0.0/24", |s| {
            s.inner_src
                == Some(Prefix {
                    addr: ip("10.0.0.0"),
                    len: 24,
                })
        }),
        ("idst 10.9.0.0/16", |s| {
            s.inner_dst
                == Some(Prefix {
                    addr: ip("10.9.0.0"),
                    len: 16,
                })
        }),
        ("innerdst 10.9.0.1", |s| {
            s.inner_dst
                == Some(Prefix {
                    addr: ip("10.9.0.1"),
                    len: 32,
                })
        }),
        ("innersport 1", |s| s.inner_sport == Some(1)),
        ("isport 1", |s| s.inner_sport == Some(1)),
        ("innerdport 2", |s| s.inner_dport == Some(2)),
        ("idport 2", |s| s.inner_dport == Some(2)),
        ("iproto 6", |s| s.inner_proto == Some(6)),
        ("iulp 6", |s| s.inner_proto == Some(6)),
        ("srcidtype fqdn a.example", |s| {
            s.src_id
                == Some(Identity {
                    kind: IdentityType::Fqdn,
                    value: "a.example".into(),
                })
        }),
        ("dstidtype user_fqdn me@b.example", |s| {
            s.dst_id
                == Some(Identity {
                    kind: IdentityType::UserFqdn,
                    value: "me@b.example".into(),
                })
        }),
        ("esn", |s| s.esn),
        ("allow_legacy", |s| s.allow_legacy),
        ("no_copy_dscp", |s| s.no_copy_dscp),
        ("no_padding_check", |s| s.no_padding_check),
        ("unique 1024 80 6", |s| {
            s.unique
                == Some(UniqueBinding {
                    sport: 1024,
                    dport: 80,
                    proto: 6,
                })
        }),
    ];
    for (ext, check) in cases {
        if ext.starts_with("replay_value 0x1_") {
            assert!(p(&format!("{BASE4} {ext}")).is_err());
            continue;
        }
        // `spi` is already in the base: test it through update, which has none.
        let text = if ext.starts_with("spi") {
            format!("update esp dst 192.0.2.2 {ext}")
        } else if ext.starts_with("auth") {
            format!("update esp spi 0x1000 dst 192.0.2.2 {ext}")
        } else {
            format!("{BASE4} {ext}")
        };
        let s = spec(&text);
        assert!(check(&s), "{text}: {s:?}");
        if text.starts_with("add") {
            // Every add parses into a usable SA.
            s.to_config().unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }
}

#[test]
fn every_extension_and_synonym_v6() {
    let cases: &[(&str, Check)] = &[
        ("saddr6 2001:db8::1", |s| s.src == Some(ip("2001:db8::1"))),
        ("srcaddr6 2001:db8::1", |s| s.src == Some(ip("2001:db8::1"))),
        ("src6 2001:db8::1", |s| s.src == Some(ip("2001:db8::1"))),
        ("src 2001:db8::1", |s| s.src == Some(ip("2001:db8::1"))),
        ("isrc6 2001:db8:1::/48", |s| {
            s.inner_src
                == Some(Prefix {
                    addr: ip("2001:db8:1::"),
                    len: 48,
                })
        }),
        ("innersrc6 2001:db8:1::1", |s| {
            s.inner_src
                == Some(Prefix {
                    addr: ip("2001:db8:1::1"),
                    len: 128,
                })
        }),
        ("proxyaddr6 2001:db8:1::/64", |s| s.inner_src.is_some()),
        ("proxy6 2001:db8:1::/64", |s| s.inner_src.is_some()),
        ("idst6 2001:db8:2::/64", |s| {
            s.inner_dst
                == Some(Prefix {
                    addr: ip("2001:db8:2::"),
                    len: 64,
                })
        }),
        ("innerdst6 2001:db8:2::9", |s| {
            s.inner_dst
                == Some(Prefix {
                    addr: ip("2001:db8:2::9"),
                    len: 128,
                })
        }),
        ("encap udp nat_loc 2001:db8::99", |s| {
            s.nat_loc == Some(ip("2001:db8::99"))
        }),
    ];
    for (ext, check) in cases {
        let text = format!("{BASE6} {ext}");
        let s = spec(&text);
        assert!(check(&s), "{text}: {s:?}");
        s.to_config().unwrap_or_else(|e| panic!("{text}: {e}"));
    }
    for dst in ["daddr", "dstaddr", "dst", "daddr6", "dstaddr6", "dst6"] {
        let s = spec(&format!("get esp spi 1000 {dst} 2001:db8::2"));
        assert_eq!(s.dst, Some(ip("2001:db8::2")), "{dst}");
    }
    for dst in ["daddr", "dstaddr", "dst"] {
        let s = spec(&format!("get esp spi 1000 {dst} 192.0.2.2"));
        assert_eq!(s.dst, Some(ip("192.0.2.2")), "{dst}");
    }
    // The 6 forms take IPv6 only.
    for kw in ["src6", "saddr6", "srcaddr6", "dst6", "daddr6", "dstaddr6"] {
        let text = format!("get esp spi 1000 {kw} 192.0.2.2");
        let e = err_at(&text, 1, 19 + kw.len(), "192.0.2.2");
        assert!(e.expected.contains("IPv6"), "{e}");
    }
    err_at(&format!("{BASE6} isrc6 10.0.0.0/8"), 1, 97, "10.0.0.0/8");
    // An IPv4-mapped IPv6 literal is IPv6.
    let s = spec("get esp spi 1000 dst6 ::ffff:192.0.2.1");
    assert!(s.dst.unwrap().is_ipv6());
}

#[test]
fn identities() {
    for (ty, kind) in [
        ("prefix", IdentityType::Prefix),
        ("fqdn", IdentityType::Fqdn),
        ("domain", IdentityType::Fqdn),
        ("domainname", IdentityType::Fqdn),
        ("DOMAIN", IdentityType::Fqdn),
        ("user_fqdn", IdentityType::UserFqdn),
        ("mailbox", IdentityType::UserFqdn),
        ("der_dn", IdentityType::Dn),
        ("key_id", IdentityType::KeyId),
        ("1", IdentityType::Prefix),
        ("2", IdentityType::Fqdn),
        ("3", IdentityType::UserFqdn),
        ("4", IdentityType::Dn),
        ("0x6", IdentityType::KeyId),
    ] {
        let s = spec(&format!("{BASE4} srcidtype {ty} \"CN=a, O=b #1\""));
        assert_eq!(
            s.src_id,
            Some(Identity {
                kind,
                value: "CN=a, O=b #1".into()
            }),
            "{ty}"
        );
    }
    let col = BASE4.len() + 12;
    for bad in ["der_gn", "5", "7", "bogus", "8"] {
        err_at(&format!("{BASE4} srcidtype {bad} x"), 1, col, bad);
    }
    err_at(
        &format!("{BASE4} dstidtype fqdn"),
        1,
        col + 4,
        "end of input",
    );
    err_at(&format!("{BASE4} dstidtype"), 1, col - 1, "end of input");
    err_at(&format!("{BASE4} dstidtype fqdn \"\""), 1, col + 5, "");
}

#[test]
fn algorithm_names_synonyms_and_numbers() {
    let up = "update esp spi 0x1000 dst 192.0.2.2";
    for row in encr_table() {
        let mut names = vec![row.name.to_string(), row.name.to_uppercase()];
        names.extend(row.synonyms.iter().map(|s| s.to_string()));
        names.push(row.pfkey.to_string());
        names.push(format!("{:#x}", row.pfkey));
        for n in names {
            for kw in ["encr_alg", "encralg"] {
                let s = spec(&format!("{up} {kw} {n}"));
                assert_eq!(s.encr_alg, Some(row.alg), "{kw} {n}");
            }
        }
    }
    for row in auth_table() {
        let mut names = vec![row.name.to_string()];
        names.extend(row.synonyms.iter().map(|s| s.to_string()));
        names.push(row.pfkey.to_string());
        for n in names {
            for kw in ["auth_alg", "authalg"] {
                let s = spec(&format!("{up} {kw} {n}"));
                assert_eq!(s.auth_alg, Some(row.alg), "{kw} {n}");
            }
        }
    }
    // The Solaris man page's lists.
    for n in ["md5", "hmac-md5"] {
        assert_eq!(
            spec(&format!("{up} authalg {n}")).auth_alg,
            Some(AuthAlg::HmacMd5)
        );
    }
    for n in ["sha", "sha-1", "hmac-sha1", "hmac-sha"] {
        assert_eq!(
            spec(&format!("{up} authalg {n}")).auth_alg,
            Some(AuthAlg::HmacSha1)
        );
    }
    for (n, a) in [
        ("des", EncrAlg::DesCbc),
        ("3des", EncrAlg::TripleDesCbc),
        ("blowfish", EncrAlg::BlowfishCbc),
        ("aes", EncrAlg::AesCbc),
    ] {
        assert_eq!(spec(&format!("{up} encralg {n}")).encr_alg, Some(a));
    }
    err_at(&format!("{up} encr_alg rot13"), 1, 46, "rot13");
    err_at(&format!("{up} encr_alg 99"), 1, 46, "99");
    err_at(&format!("{up} auth_alg 256"), 1, 46, "256");
    err_at(&format!("{up} auth_alg"), 1, 45, "end of input");
    let e = err_at(
        "update ah spi 0x1000 dst 192.0.2.2 encr_alg aes",
        1,
        36,
        "encr_alg",
    );
    assert!(e.expected.contains("SA type ah"), "{e}");
}

#[test]
fn numbers_in_three_bases() {
    for (v, want) in [("4660", 4660u32), ("0x1234", 0x1234), ("011064", 0o11064)] {
        let s = spec(&format!("get esp spi {v} dst 192.0.2.2 sport {v}"));
        assert_eq!(s.spi, Some(want));
        assert_eq!(s.sport, Some(want as u16));
    }
    let s = spec(&format!(
        "{BASE4} hard_bytes 0xffffffffffffffff soft_bytes 0777"
    ));
    assert_eq!((s.hard.bytes, s.soft.bytes), (Some(u64::MAX), Some(0o777)));
    err_at("get esp spi 09 dst 192.0.2.2", 1, 13, "09");
    err_at("get esp spi 0x dst 192.0.2.2", 1, 13, "0x");
    err_at("get esp spi -1 dst 192.0.2.2", 1, 13, "-1");
    err_at(
        "get esp spi 0x100000000 dst 192.0.2.2",
        1,
        13,
        "0x100000000",
    );
    err_at("get esp spi 1000 dst 192.0.2.2 sport 65536", 1, 38, "65536");
    err_at(&format!("{BASE4} proto 256"), 1, BASE4.len() + 8, "256");
    err_at(&format!("{BASE4} replay 4097"), 1, BASE4.len() + 9, "4097");
    err_at(
        &format!("{BASE4} hard_bytes 18446744073709551616"),
        1,
        BASE4.len() + 13,
        "18446744073709551616",
    );
}

#[test]
fn comments_and_continuations() {
    let text = "\
# A sample file (ipseckey(8) Example 10).

flush esp   # trailing comment

### Watch out!  I have keying material in this file.
add esp spi 0x2112 src 192.0.2.1 dst 192.0.2.2 \\
    authalg sha256 authkey 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f \\
    encralg aes encrkey 000102030405060708090a0b0c0d0e0f hard_usetime 28800
add esp spi 0x5150 src 192.0.2.2 dst 192.0.2.1 \\
\tauthalg sha256 authkey 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f \\
\tencralg aes encrkey 000102030405060708090a0b0c0d0e0f hard_usetime 28800
   \t
## End of file  -  This is a gratuitous comment";
    let cmds = p(text).unwrap();
    assert_eq!(cmds.len(), 3);
    assert_eq!(cmds[0], Command::Flush(SaType::Esp));
    let Command::Add(a) = &cmds[1] else { panic!() };
    assert_eq!(a.line, 6);
    assert_eq!(a.hard.usetime, Some(28800));
    let Command::Add(b) = &cmds[2] else { panic!() };
    assert_eq!((b.line, b.spi), (9, Some(0x5150)));
    // CRLF line ends work the same.
    let crlf = text.replace('\n', "\r\n");
    assert_eq!(p(&crlf).unwrap(), cmds);
    // A `#` inside a token is part of it; `#` starting a token starts a comment.
    let s = spec(&format!("{BASE4} srcidtype fqdn a#b # comment srcidtype"));
    assert_eq!(s.src_id.unwrap().value, "a#b");
    // A backslash that is not at the line end is an ordinary character.
    let s = spec(&format!("{BASE4} srcidtype fqdn a\\b"));
    assert_eq!(s.src_id.unwrap().value, "a\\b");
    // A comment ends the command even after a continuation.
    err_at("flush \\\n# comment\nesp", 3, 1, "esp");
    // Empty input and comments only.
    assert!(p("").unwrap().is_empty());
    assert!(p("# nothing\n\n   \n#").unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Tunnel mode

#[test]
fn tunnel_mode_rule() {
    // proto 4 with an inner address: tunnel mode.
    let c = cfg(&format!("{BASE4} proto 4 isrc 10.0.0.0/8 idst 10.1.0.0/16"));
    assert_eq!((c.mode, c.ulp), (Mode::Tunnel, 4));
    assert_eq!(
        c.inner.src,
        Some(Prefix {
            addr: ip("10.0.0.0"),
            len: 8
        })
    );
    // proto 41 with IPv6 inner addresses (over IPv4).
    let c = cfg(&format!("{BASE4} proto 41 isrc6 2001:db8:1::/48"));
    assert_eq!((c.mode, c.ulp), (Mode::Tunnel, 41));
    // proto 4 without inner selectors: transport mode, selector protocol 4.
    let c = cfg(&format!("{BASE4} proto 4"));
    assert_eq!((c.mode, c.ulp), (Mode::Transport, 4));
    // No proto: filled in from the inner family (illumos sadb_common_add).
    let c = cfg(&format!("{BASE4} idst 10.1.0.0/16"));
    assert_eq!((c.mode, c.ulp), (Mode::Tunnel, 4));
    let c = cfg(&format!("{BASE4} isrc 2001:db8::/32"));
    assert_eq!((c.mode, c.ulp), (Mode::Tunnel, 41));
    // Inner ports or protocol alone also make a tunnel; the family is the outer one.
    let c = cfg(&format!("{BASE4} isport 80"));
    assert_eq!((c.mode, c.ulp, c.inner.sport), (Mode::Tunnel, 4, 80));
    let c = cfg(&format!("{BASE6} iproto 0"));
    assert_eq!((c.mode, c.ulp), (Mode::Tunnel, 41));
    assert_eq!(c.inner, Default::default());
    // proto 6 with an inner address: an error (Solaris: not for use with Tunnel-Mode SA).
    let text = format!("{BASE4} proto 6 isrc 10.0.0.0/8");
    let e = err_at(&text, 1, BASE4.len() + 2, "proto");
    assert!(e.expected.contains("4 or 41"), "{e}");
    // Family mismatches.
    err_at(
        &format!("{BASE4} proto 4 isrc 2001:db8::/32"),
        1,
        BASE4.len() + 2,
        "proto",
    );
    err_at(
        &format!("{BASE4} proto 41 isrc 10.0.0.0/8"),
        1,
        BASE4.len() + 2,
        "proto",
    );
    err_at(
        &format!("{BASE4} isrc 10.0.0.0/8 idst 2001:db8::/32"),
        1,
        BASE4.len() + 18,
        "idst",
    );
    // Prefix lengths.
    err_at(
        &format!("{BASE4} isrc 10.0.0.0/33"),
        1,
        BASE4.len() + 7,
        "10.0.0.0/33",
    );
    err_at(
        &format!("{BASE4} isrc 10.0.0.0/"),
        1,
        BASE4.len() + 7,
        "10.0.0.0/",
    );
    err_at(
        &format!("{BASE4} isrc 10.0.0.0/x"),
        1,
        BASE4.len() + 7,
        "10.0.0.0/x",
    );
    let c = cfg(&format!("{BASE6} isrc6 ::/0"));
    assert_eq!(
        c.inner.src,
        Some(Prefix {
            addr: ip("::"),
            len: 0
        })
    );
}

// ---------------------------------------------------------------------------------------
// Semantics checked by to_config

#[test]
fn add_needs_spi_and_dst() {
    let e = err_at(
        &format!("add esp dst 192.0.2.2 encr_alg aes encrkey {AES128}"),
        1,
        76,
        "end of input",
    );
    assert!(e.expected.contains("spi"), "{e}");
    let e = err_at(
        &format!("add esp spi 0x1000 encr_alg aes encrkey {AES128}\n"),
        1,
        73,
        "end of line",
    );
    assert!(e.expected.contains("dst"), "{e}");
    err_at("delete esp dst 192.0.2.2", 1, 25, "end of input");
    err_at("get esp spi 1", 1, 14, "end of input");
    err_at("update esp spi 0 dst 192.0.2.2", 1, 16, "0");
    err_at("update esp spi 1000 dst 192.0.2.2 pair-spi 0", 1, 44, "0");
    // An add needs an algorithm (null encryption alone is not an SA).
    err("add esp spi 0x1000 dst 192.0.2.2");
    err("add ah spi 0x1000 dst 192.0.2.2");
}

#[test]
fn keys_are_checked_against_the_algorithm() {
    // Wrong length: at the key.
    let text = "add esp spi 0x1000 dst 192.0.2.2 encr_alg aes encrkey 0011";
    let e = err_at(text, 1, 47, "encrkey");
    assert!(e.expected.contains("bad key length"), "{e}");
    // AES-GCM keys include the 32-bit salt.
    cfg(
        &format!("{BASE4} encr_alg aes-gcm encrkey {AES128}00112233")
            .replace(&format!("encr_alg aes encrkey {AES128} "), ""),
    );
    let e = err(&format!(
        "add esp spi 0x1000 dst 192.0.2.2 encr_alg aes-gcm encrkey {AES128}"
    ));
    assert!(e.expected.contains("salt"), "{e}");
    // Weak DES key, with allow_legacy: the ipsec-crypto text.
    let e =
        err("add esp spi 0x1000 dst 192.0.2.2 encr_alg des encrkey 0101010101010101 allow_legacy");
    assert!(e.expected.contains("weak"), "{e}");
    // Legacy algorithm without allow_legacy: at the algorithm.
    let e = err_at(
        &format!(
            "add ah spi 0x1000 dst 192.0.2.2 auth_alg md5 authkey {}",
            &SHA256[..32]
        ),
        1,
        33,
        "auth_alg",
    );
    assert!(e.expected.contains("allow_legacy"), "{e}");
    cfg(&format!(
        "add ah spi 0x1000 dst 192.0.2.2 auth_alg md5 authkey {} allow_legacy",
        &SHA256[..32]
    ));
    // Key without algorithm, key with null.
    err_at(
        &format!(
            "add esp spi 0x1000 dst 192.0.2.2 encrkey {AES128} auth_alg sha256 authkey {SHA256}"
        ),
        1,
        34,
        "encrkey",
    );
    err_at(&format!("add esp spi 0x1000 dst 192.0.2.2 encr_alg null encrkey {AES128} auth_alg sha256 authkey {SHA256}"), 1, 48, "encrkey");
    err_at(
        &format!("{BASE4} authkey {SHA256}"),
        1,
        BASE4.len() + 2,
        "authkey",
    );
    // A bit count that is not whole bytes.
    let e = err_at("add esp spi 0x1000 dst 192.0.2.2 encr_alg aes encrkey 000102030405060708090a0b0c0d0e0f/127", 1, 47, "encrkey");
    assert!(e.expected.contains("whole bytes"), "{e}");
    let e = err_at("add esp spi 0x1000 dst 192.0.2.2 encr_alg aes encrkey 000102030405060708090a0b0c0d0e0f/100", 1, 55, "<key of 36 characters>");
    assert!(e.expected.contains("bit count"), "{e}");
    let c = cfg("add esp spi 0x1000 dst 192.0.2.2 encr_alg aes encrkey 0x000102030405060708090a0b0c0d0e0f/128");
    assert_eq!(c.encr_key.bits(), 128);
    let e = err_at(
        "add ah spi 0x1000 dst 192.0.2.2 auth_alg sha256 authkey e/3",
        1,
        49,
        "authkey",
    );
    assert!(e.expected.contains("whole bytes"), "{e}");
    // Bad hex: the key is not echoed.
    let e = err_at(
        &format!("{BASE4} authkey sekrit"),
        1,
        BASE4.len() + 10,
        "<key of 6 characters>",
    );
    assert!(!e.to_string().contains("sekrit"));
    // An AEAD takes no separate authentication algorithm.
    err(&format!(
        "add esp spi 0x1000 dst 192.0.2.2 encr_alg aes-gcm encrkey {AES128}00112233 auth_alg sha256 authkey {SHA256}"
    ));
    // Reserved SPI (ipsec-core).
    let e = err_at(
        &format!("add esp spi 255 dst 192.0.2.2 encr_alg aes encrkey {AES128}"),
        1,
        9,
        "spi",
    );
    assert!(e.expected.contains("reserved"), "{e}");
}

#[test]
fn nat_t_rules() {
    let c = cfg(&format!("{BASE4} encap udp nat_rem 10.0.0.9"));
    assert_eq!(
        c.natt,
        Some(NatT {
            local_port: 4500,
            remote_port: 4500,
            local_addr: None,
            remote_addr: Some(ip("10.0.0.9")),
            local_behind_nat: false,
            remote_behind_nat: true,
        })
    );
    let c = cfg(&format!("{BASE4} nat_lport 1234 encap udp"));
    assert_eq!(c.natt.unwrap().local_port, 1234);
    // Which side is NATed (SADB_X_SAFLAGS_NATT_LOC / _REM), as Solaris' ipseckey sets it:
    // a side named by a NAT-T address or port.
    for (words, loc, rem) in [
        ("encap udp nat_lport 1234", true, false),
        ("encap udp nat_loc 192.0.2.7", true, false),
        ("encap udp nat_rport 4500", false, true),
        ("encap udp nat_rem 10.0.0.9", false, true),
        ("encap udp nat_lport 4500 nat_rport 4500", true, true),
        ("encap udp nat_loc 192.0.2.7 nat_rem 10.0.0.9", true, true),
    ] {
        let n = cfg(&format!("{BASE4} {words}")).natt.unwrap();
        assert_eq!(
            (n.local_behind_nat, n.remote_behind_nat),
            (loc, rem),
            "{words}"
        );
        // `save` writes what reads back to the same flags.
        let c = cfg(&format!("{BASE4} {words}"));
        let back = cfg(&print_add(&c, false));
        assert_eq!(back.natt, c.natt, "{words}");
    }
    err_at(
        &format!("{BASE4} nat_lport 4500"),
        1,
        BASE4.len() + 2,
        "nat_lport",
    );
    err_at(&format!("{BASE4} encap udp"), 1, BASE4.len() + 2, "encap");
    err_at(&format!("{BASE4} encap tcp"), 1, BASE4.len() + 8, "tcp");
    err_at(
        &format!("{BASE4} encap udp nat_loc 2001:db8::1"),
        1,
        BASE4.len() + 12,
        "nat_loc",
    );
    err_at(
        &format!("add ah spi 0x1000 dst 192.0.2.2 auth_alg sha256 authkey {SHA256} encap udp nat_rport 1"),
        1,
        122,
        "encap",
    );
}

#[test]
fn duplicates_are_refused() {
    for (first, second, second_kw) in [
        ("spi 0x1001", "spi 0x1002", "spi"),
        ("src 192.0.2.1", "srcaddr 192.0.2.1", "srcaddr"),
        ("saddr 192.0.2.1", "src6 ::1", "src6"),
        ("inbound", "outbound", "outbound"),
        ("inbound", "inbound", "inbound"),
        ("authalg sha256", "auth_alg sha256", "auth_alg"),
        ("isrc 10.0.0.0/8", "proxy 10.0.0.0/8", "proxy"),
        ("hard_alloc 1", "hard_allocations 1", "hard_allocations"),
        ("esn", "esn", "esn"),
        ("state dying", "state 2", "state"),
        ("replay 5", "replay 5", "replay"),
    ] {
        let text = format!("update esp dst 192.0.2.2 {first} {second}");
        let col = 26 + first.len() + 1;
        let e = err_at(&text, 1, col, second_kw);
        assert!(
            e.expected.contains("single") && e.expected.contains("1:26"),
            "{e}"
        );
    }
    err_at("get esp dst 192.0.2.2 dst 192.0.2.3 spi 1", 1, 23, "dst");
}

#[test]
fn lookup_commands_take_only_locating_extensions() {
    let s =
        spec("delete esp spi 0x1000 src 192.0.2.1 dst 192.0.2.2 sport 1 dport 2 proto 6 inbound");
    assert_eq!(s.direction, Some(Direction::Inbound));
    for cmd in ["delete", "delete-pair", "get"] {
        let e = err_at(
            &format!("{cmd} esp spi 1000 dst 192.0.2.2 replay 5"),
            1,
            cmd.len() + 29,
            "replay",
        );
        assert!(e.expected.contains(cmd), "{e}");
    }
    err_at(
        "update-pair esp spi 1000 dst 192.0.2.2 pair-spi 5",
        1,
        40,
        "pair-spi",
    );
}

#[test]
fn unknown_and_unsupported_extensions() {
    let e = err_at(&format!("{BASE4} bogus 1"), 1, BASE4.len() + 2, "bogus");
    assert!(e.expected.starts_with("an extension"), "{e}");
    for kw in [
        "label",
        "flags",
        "reserved_bits",
        "dpd",
        "current_bytes",
        "sens_level",
    ] {
        let e = err_at(&format!("{BASE4} {kw} 1"), 1, BASE4.len() + 2, kw);
        assert!(e.expected.contains("does not implement"), "{e}");
    }
    // Keywords are case-sensitive (Solaris strcmp).
    err_at(&format!("{BASE4} SPORT 1"), 1, BASE4.len() + 2, "SPORT");
}

// ---------------------------------------------------------------------------------------
// Error positions and whole-file behaviour

#[test]
fn error_positions() {
    // A value missing at the end of a line.
    err_at("get esp spi 1000 dst\nflush", 1, 21, "end of line");
    // An error on a continuation line points at that line.
    err_at(
        "flush\nadd esp spi 0x1000 \\\n   dst 192.0.2.300 encr_alg aes",
        3,
        8,
        "192.0.2.300",
    );
    // Tabs count as one column.
    err_at("\tget\tesp\tspi\tzz\tdst 1.2.3.4", 1, 14, "zz");
    // Columns count characters, not bytes.
    err_at(
        &format!("{BASE4} srcidtype fqdn \"é\" bogus"),
        1,
        BASE4.len() + 21,
        "bogus",
    );
    // Quoted token: the column of its opening quote.
    err_at("flush \"all x\"", 1, 7, "all x");
    let e = err_at("add esp \"spi", 1, 9, "\"spi");
    assert!(e.expected.contains("closing"), "{e}");
    // A state that is not one.
    err_at(&format!("{BASE4} state bogus"), 1, BASE4.len() + 8, "bogus");
    err_at(&format!("{BASE4} state 4"), 1, BASE4.len() + 8, "4");
    // An address that is not one, with names off.
    let e = err_at(
        &format!("{BASE4} src host.example"),
        1,
        BASE4.len() + 6,
        "host.example",
    );
    assert!(e.expected.contains("name lookups are off"), "{e}");
    // Mixed families.
    err_at(
        &format!("{BASE4} src 2001:db8::1"),
        1,
        BASE4.len() + 2,
        "src",
    );
    // Display.
    let e = err("get esp spi 1000 dst\n");
    assert_eq!(
        e.to_string(),
        "t.conf:1:21: unexpected `end of line`, expected an IPv4 or IPv6 address (name lookups \
         are off) after `dst`"
    );
    let e = err("get esp spi 1000 dst");
    assert!(e
        .to_string()
        .starts_with("t.conf:1:21: unexpected `end of input`, expected "));
}

#[test]
fn a_file_with_an_error_yields_no_commands() {
    let text = format!(
        "flush\n{BASE4}\nadd esp spi 0x1001 dst 192.0.2.2 encr_alg aes encrkey 00\n{BASE4}\n"
    );
    let e = p(&text).unwrap_err();
    assert_eq!(e.line, 3);
    assert!(p(&format!("flush\n{BASE4}\n")).unwrap().len() == 2);
}

#[test]
fn parse_file_reads_and_reports_io_errors() {
    let dir = std::env::temp_dir().join(format!("ipsec-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good");
    std::fs::write(&good, format!("{BASE4}\nflush\n")).unwrap();
    // parse_file resolves names; the file has none.
    assert_eq!(parse_file(&good).unwrap().len(), 2);
    let missing = dir.join("missing");
    let e = parse_file(&missing).unwrap_err();
    assert_eq!((e.line, e.column), (0, 0));
    assert!(e.expected.contains("No such file"), "{e}");
    let bad = dir.join("bad");
    std::fs::write(&bad, b"flush\nflush \xff\n").unwrap();
    let e = parse_file(&bad).unwrap_err();
    assert_eq!(
        (e.line, e.column, e.token.as_str()),
        (2, 7, "invalid UTF-8")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn host_names_resolve_unless_numeric() {
    let text = "get esp spi 1000 src localhost dst localhost";
    match parse(text, "t") {
        Ok(c) => {
            let Command::Get(s) = &c[0] else { panic!() };
            assert!(s.dst.unwrap().is_loopback());
            assert_eq!(s.src.unwrap().is_ipv4(), s.dst.unwrap().is_ipv4());
        }
        // A machine without a resolver configuration: the error names the token.
        Err(e) => assert_eq!(e.token, "localhost"),
    }
    if let Ok(c) = parse("get esp spi 1000 dst6 localhost", "t") {
        let Command::Get(s) = &c[0] else { panic!() };
        assert!(s.dst.unwrap().is_ipv6());
    }
    err_at("get esp spi 1000 dst localhost", 1, 22, "localhost");
    // Not a host name at all: refused before any lookup.
    let e = parse("get esp spi 1000 dst bad!name", "t").unwrap_err();
    assert_eq!((e.column, e.token.as_str()), (22, "bad!name"));
}

// ---------------------------------------------------------------------------------------
// The printer

#[test]
fn print_add_uses_canonical_names_and_round_trips() {
    let c = cfg(&format!(
        "add esp spi 4096 src6 2001:db8::1 dst6 2001:db8::2 encralg AES encrkey {AES128} \
         authalg hmac-sha-256 authkey {SHA256} replay 128 esn replay_value 5 state dying \
         soft_bytes 1 hard_alloc 2 idle_usetime 3 encap udp nat_rem 2001:db8::9 \
         srcidtype mailbox \"a b@c\" pair-spi 4097 outbound unique 1 2 3 allow_legacy \
         no_copy_dscp no_padding_check isrc 2001:db8:a::/48 idport 443"
    ));
    let line = print_add(&c, false);
    assert_eq!(
        line,
        format!(
            "add esp spi 0x1000 src 2001:db8::1 dst 2001:db8::2 proto 41 isrc 2001:db8:a::/48 \
             idport 443 encr_alg aes-cbc encrkey {AES128} auth_alg hmac-sha256 authkey {SHA256} \
             replay 128 replay_value 5 esn state dying soft_bytes 1 hard_alloc 2 \
             idle_usetime 3 encap udp nat_rport 4500 nat_rem 2001:db8::9 \
             srcidtype user_fqdn \"a b@c\" pair-spi 0x1001 outbound unique 1 2 3 allow_legacy \
             no_copy_dscp no_padding_check"
        )
    );
    let back = cfg(&line);
    assert!(sa_config_eq(&c, &back));
    // Paranoid: X for every digit; does not parse as a usable add.
    let para = print_add(&c, true);
    assert!(para.contains(&format!("encrkey {}", "X".repeat(32))));
    assert!(!para.contains(AES128));
    assert!(p(&para).is_err());
    // A tunnel with "any" inner selectors prints as iproto 0.
    let mut t = cfg(BASE4);
    t.mode = Mode::Tunnel;
    t.ulp = 4;
    let l = print_add(&t, false);
    assert!(l.contains("proto 4 iproto 0"), "{l}");
    assert!(sa_config_eq(&t, &cfg(&l)));
}

#[test]
fn save_writes_every_sa_of_the_type() {
    let mut db = Sadb::new();
    let esp = cfg(BASE4);
    let ah = cfg(&format!(
        "add ah spi 0x2000 src 192.0.2.1 dst 192.0.2.2 auth_alg sha256 authkey {SHA256}"
    ));
    db.add(esp.clone(), 0).unwrap();
    db.add(ah.clone(), 0).unwrap();
    let all = save(&db, SaType::All, false);
    assert!(all.starts_with('#'));
    let cmds = p(&all).unwrap();
    assert_eq!(cmds.len(), 2);
    let only_ah = save(&db, SaType::Ah, false);
    let cmds = p(&only_ah).unwrap();
    assert_eq!(cmds.len(), 1);
    let Command::Add(s) = &cmds[0] else { panic!() };
    assert!(sa_config_eq(&s.to_config().unwrap(), &ah));
    assert_eq!(s.to_config().unwrap().proto, Proto::Ah);
    let para = save(&db, SaType::Esp, true);
    assert!(para.contains("XXXX") && !para.contains(AES128));
    assert_eq!(save(&Sadb::new(), SaType::All, false).lines().count(), 1);
}
