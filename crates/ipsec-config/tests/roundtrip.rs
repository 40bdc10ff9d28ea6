//! Property tests: `parse(print_add(cfg)).to_config()` gives back every field of random valid
//! SAs, and `parse` never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipsec_config::fuzz_support::{ipseckey_parse, sa_config_eq};
use ipsec_config::ipseckey::{parse, parse_with, print_add, Command, ParseOptions};
use ipsec_core::{
    Direction, Identity, IdentityType, InnerSelectors, KeyMaterial, Lifetime, Mode, NatT, Prefix,
    Proto, Sa, SaConfig, SaState, UniqueBinding,
};
use ipsec_crypto::{auth_table, encr_table, AuthAlg, EncrAlg};
use proptest::prelude::*;

fn numeric() -> ParseOptions {
    ParseOptions { numeric: true }
}

fn v4() -> impl Strategy<Value = IpAddr> {
    any::<u32>().prop_map(|a| IpAddr::V4(Ipv4Addr::from(a)))
}

fn v6() -> impl Strategy<Value = IpAddr> {
    any::<u128>().prop_map(|a| IpAddr::V6(Ipv6Addr::from(a)))
}

fn addr(is_v4: bool) -> BoxedStrategy<IpAddr> {
    if is_v4 {
        v4().boxed()
    } else {
        v6().boxed()
    }
}

fn prefix(is_v4: bool) -> BoxedStrategy<Prefix> {
    let max = if is_v4 { 32u8 } else { 128 };
    (addr(is_v4), 0..=max)
        .prop_map(|(addr, len)| Prefix { addr, len })
        .boxed()
}

/// Key sizes (bits, salt included) an algorithm accepts.
fn key_sizes(min: u16, max: u16, step: u16, salt: usize) -> Vec<usize> {
    let mut v = Vec::new();
    let mut b = min;
    loop {
        v.push(usize::from(b) / 8 + salt);
        if step == 0 || b >= max {
            break;
        }
        b += step;
    }
    v
}

/// Algorithms and keys: (proto, encr, encr key, auth, auth key, legacy).
fn algorithms() -> impl Strategy<Value = (Proto, Option<EncrAlg>, Vec<u8>, Option<AuthAlg>, Vec<u8>)>
{
    let encr: Vec<_> = encr_table().iter().collect();
    let auth: Vec<_> = auth_table().iter().collect();
    (
        any::<bool>(),
        0..encr.len(),
        0..auth.len(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 80),
        prop::collection::vec(any::<u8>(), 80),
        0u8..4,
    )
        .prop_map(move |(is_ah, ei, ai, eks, aks, ekb, akb, shape)| {
            let a = auth[ai];
            let akeys = key_sizes(
                a.key_bits.min,
                a.key_bits.max,
                a.key_bits.step,
                a.salt_bytes,
            );
            let akey = akb[..*aks.get(&akeys)].to_vec();
            if is_ah {
                return (Proto::Ah, None, Vec::new(), Some(a.alg), akey);
            }
            let e = encr[ei];
            let ekeys = key_sizes(
                e.key_bits.min,
                e.key_bits.max,
                e.key_bits.step,
                e.salt_bytes,
            );
            let ekey = ekb[..*eks.get(&ekeys)].to_vec();
            // shape: 0 = encr + auth (or AEAD alone), 1 = encr with auth "none", 2 = no
            // encr_alg written (null) + auth, 3 = encr only.
            match shape {
                0 if e.aead => (Proto::Esp, Some(e.alg), ekey, None, Vec::new()),
                0 => (Proto::Esp, Some(e.alg), ekey, Some(a.alg), akey),
                1 => (
                    Proto::Esp,
                    Some(e.alg),
                    ekey,
                    Some(AuthAlg::None),
                    Vec::new(),
                ),
                2 => (Proto::Esp, None, Vec::new(), Some(a.alg), akey),
                _ => (Proto::Esp, Some(e.alg), ekey, None, Vec::new()),
            }
        })
}

fn lifetime(idle: bool) -> impl Strategy<Value = Lifetime> {
    let n = prop_oneof![Just(0u64), any::<u64>(), 1u64..100_000];
    (n.clone(), n.clone(), n.clone(), n).prop_map(move |(p, b, a, u)| Lifetime {
        packets: if idle { 0 } else { p },
        bytes: if idle { 0 } else { b },
        addtime: a,
        usetime: u,
    })
}

fn identity() -> impl Strategy<Value = Option<Identity>> {
    let kind = prop_oneof![
        Just(IdentityType::Prefix),
        Just(IdentityType::Fqdn),
        Just(IdentityType::UserFqdn),
        Just(IdentityType::Dn),
        Just(IdentityType::KeyId),
    ];
    // Anything but `"` and line ends: spaces, `#`, `\`, `=`, `,`, non-ASCII.
    let value = "[A-Za-z0-9@.=,_ #\\\\/é\t-]{1,24}";
    prop::option::of((kind, value).prop_map(|(kind, value)| Identity { kind, value }))
}

fn sa_config() -> impl Strategy<Value = SaConfig> {
    let addresses = any::<bool>().prop_flat_map(|is_v4| {
        (
            Just(is_v4),
            prop::option::of(addr(is_v4)),
            addr(is_v4),
            prop::option::of((
                prop_oneof![Just(4500u16), any::<u16>()],
                prop_oneof![Just(4500u16), any::<u16>()],
                prop::option::of(addr(is_v4)),
                prop::option::of(addr(is_v4)),
                (any::<bool>(), any::<bool>()),
            )),
        )
    });
    let mode = any::<bool>().prop_flat_map(|inner_v4| {
        (
            any::<bool>(),
            Just(inner_v4),
            any::<u8>(),
            prop::option::of(prefix(inner_v4)),
            prop::option::of(prefix(inner_v4)),
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            0u8..4,
        )
    });
    let misc = (
        256u32..=u32::MAX,
        any::<u16>(),
        any::<u16>(),
        prop_oneof![Just(0u32), 0u32..=4096, Just(4096u32), Just(64u32)],
        any::<bool>(),
        prop_oneof![Just(0u64), any::<u64>()],
        any::<bool>(),
        prop_oneof![
            Just(SaState::Mature),
            Just(SaState::Larval),
            Just(SaState::Dying),
            Just(SaState::Dead)
        ],
        prop::option::of(1u32..=u32::MAX),
        prop_oneof![
            Just(Direction::Any),
            Just(Direction::Inbound),
            Just(Direction::Outbound)
        ],
        (any::<bool>(), any::<bool>()),
        prop::option::of((any::<u16>(), any::<u16>(), any::<u8>())),
    );
    let lifetimes = (lifetime(false), lifetime(false), lifetime(true));
    let ids = (identity(), identity());
    (addresses, mode, algorithms(), misc, lifetimes, ids)
        .prop_map(|(addrs, mode, algs, misc, lts, ids)| {
            let (_, src, dst, natt) = addrs;
            let (tunnel, inner_v4, ulp, isrc, idst, isport, idport, iproto, which) = mode;
            let (proto, encr_alg, ekey, auth_alg, akey) = algs;
            let (
                spi,
                sport,
                dport,
                replay,
                esn,
                replay_value,
                legacy_flag,
                state,
                pair,
                dir,
                (dscp, pad),
                uniq,
            ) = misc;
            let mut c = SaConfig::new(proto, spi, src, dst);
            c.sport = sport;
            c.dport = dport;
            if tunnel {
                c.mode = Mode::Tunnel;
                c.ulp = if inner_v4 { 4 } else { 41 };
                // Sometimes every inner selector is "any".
                c.inner = if which == 0 {
                    InnerSelectors::default()
                } else {
                    InnerSelectors {
                        src: isrc,
                        dst: idst,
                        sport: if which == 1 { 0 } else { isport },
                        dport: idport,
                        proto: iproto,
                    }
                };
            } else {
                c.mode = Mode::Transport;
                c.ulp = ulp;
            }
            c.encr_alg = encr_alg;
            c.encr_key = KeyMaterial::new(&ekey);
            c.auth_alg = auth_alg;
            c.auth_key = KeyMaterial::new(&akey);
            let legacy = encr_alg.is_some_and(|e| ipsec_crypto::encr_info(e).legacy)
                || auth_alg.is_some_and(|a| {
                    let i = ipsec_crypto::auth_info(a);
                    if proto == Proto::Ah {
                        i.legacy_ah
                    } else {
                        i.legacy_esp
                    }
                });
            c.allow_legacy = legacy || legacy_flag;
            c.replay_window = replay;
            c.esn = esn;
            c.replay_value = replay_value;
            c.state = state;
            (c.soft, c.hard, c.idle) = lts;
            if proto == Proto::Esp {
                // The NAT flags as ipseckey sets them: a side with a NAT-T address or
                // port is NATed, and `encap udp` needs one of them.
                c.natt = natt.map(|(lp, rp, la, ra, (lf, rf))| {
                    let loc = lf || la.is_some() || lp != 4500;
                    NatT {
                        local_port: lp,
                        remote_port: rp,
                        local_addr: la,
                        remote_addr: ra,
                        local_behind_nat: loc,
                        remote_behind_nat: rf || ra.is_some() || rp != 4500 || !loc,
                    }
                });
            }
            (c.src_id, c.dst_id) = ids;
            c.pair_spi = pair;
            c.direction = dir;
            c.copy_dscp = dscp;
            c.padding_check = pad;
            c.unique = uniq.map(|(sport, dport, proto)| UniqueBinding {
                sport,
                dport,
                proto,
            });
            c
        })
        // Random DES/3DES keys can be weak; such configurations are not valid SAs.
        .prop_filter("a valid SA", |c| Sa::new(c.clone(), 0).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn print_add_round_trips_every_field(c in sa_config()) {
        let line = print_add(&c, false);
        let cmds = parse_with(&line, "printed", numeric())
            .unwrap_or_else(|e| panic!("{line}\n{e}"));
        prop_assert_eq!(cmds.len(), 1);
        let Command::Add(spec) = &cmds[0] else { panic!("{line}") };
        let back = spec.to_config().unwrap_or_else(|e| panic!("{line}\n{e}"));
        prop_assert!(sa_config_eq(&c, &back), "{}\n{:?}\n{:?}", line, c, back);
        // The printed text, parsed with name lookups on, is the same (only literals).
        let again = parse(&line, "printed").unwrap();
        prop_assert_eq!(&again, &cmds);
        // And the fuzz body agrees.
        prop_assert_eq!(ipseckey_parse(line.as_bytes()), Ok(()));
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        let _ = parse_with(&s, "any", numeric());
    }

    #[test]
    fn parse_never_panics_on_arbitrary_unicode(s in any::<String>()) {
        let _ = parse_with(&s, "any", numeric());
    }

    /// Token soup from the language's own vocabulary reaches deep into the parser; every
    /// add that parses must survive the print/parse round trip.
    #[test]
    fn token_soup_keeps_the_invariants(words in prop::collection::vec(prop::sample::select(VOCAB), 0..60)) {
        let text = words.join(" ");
        prop_assert_eq!(ipseckey_parse(text.as_bytes()), Ok(()), "{}", text);
    }
}

const VOCAB: &[&str] = &[
    "add",
    "update",
    "update-pair",
    "delete",
    "delete-pair",
    "get",
    "flush",
    "dump",
    "save",
    "monitor",
    "pmonitor",
    "passive_monitor",
    "help",
    "?",
    "esp",
    "ah",
    "all",
    "spi",
    "0x1000",
    "4097",
    "0",
    "010",
    "pair-spi",
    "inbound",
    "outbound",
    "replay",
    "64",
    "4096",
    "4097",
    "replay_value",
    "state",
    "larval",
    "dying",
    "dead",
    "auth_alg",
    "authalg",
    "encr_alg",
    "encralg",
    "aes",
    "aes-gcm",
    "null",
    "3des",
    "des",
    "sha256",
    "hmac-md5",
    "none",
    "aes-gmac128",
    "chacha20-poly1305",
    "authkey",
    "encrkey",
    "000102030405060708090a0b0c0d0e0f",
    "000102030405060708090a0b0c0d0e0f10111213",
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f",
    "0123456789abcdef0123456789abcdef0123456789abcdef",
    "e/3",
    "src",
    "dst",
    "src6",
    "dst6",
    "192.0.2.1",
    "192.0.2.2",
    "2001:db8::1",
    "2001:db8::2",
    "sport",
    "dport",
    "proto",
    "4",
    "41",
    "6",
    "isrc",
    "idst",
    "isrc6",
    "10.0.0.0/8",
    "2001:db8:1::/48",
    "isport",
    "idport",
    "iproto",
    "encap",
    "udp",
    "nat_loc",
    "nat_rem",
    "nat_lport",
    "nat_rport",
    "4500",
    "soft_bytes",
    "hard_addtime",
    "idle_usetime",
    "soft_alloc",
    "srcidtype",
    "dstidtype",
    "fqdn",
    "der_dn",
    "\"a b\"",
    "#",
    "\\\n",
    "\n",
    "esn",
    "allow_legacy",
    "no_copy_dscp",
    "no_padding_check",
    "unique",
    "80",
];
