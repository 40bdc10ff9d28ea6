//! The PF_KEY v2 request a parsed ipseckey [`Command`] sends: what `ipseckey` writes to the
//! key socket, and what `ipsecd` replays when it loads a keys file.
//!
//! | command | message | extensions |
//! |---|---|---|
//! | `add` | `SADB_ADD` | everything [`SaSpec::to_config`] describes ([`ipsec_pfkey::convert::add_message`]), keys included |
//! | `update`, `update-pair` with an algorithm or a key (maturing a larval SA) | `SADB_UPDATE` / `SADB_X_UPDATEPAIR` | the whole SA, as for `add`, keys included |
//! | `update`, `update-pair` otherwise | `SADB_UPDATE` / `SADB_X_UPDATEPAIR` | SA (SPI, state, direction flags, replay window), SRC, DST, the lifetimes given, X_PAIR, X_REPLAY_VALUE |
//! | `delete`, `delete-pair`, `get` | `SADB_DELETE` / `SADB_X_DELPAIR` / `SADB_GET` | SA (SPI, direction flags), DST, SRC when a source address or port was given |
//! | `flush [type]`, `dump [type]` | `SADB_FLUSH` / `SADB_DUMP` | none; SA type 0 for `all` |
//! | `save type [file]` | `SADB_DUMP` | none (the caller turns the records into `add` commands) |
//! | `monitor` | `SADB_X_PROMISC` | none; SA type 1 (= on, as Solaris' `domonitor`) |
//! | `passive_monitor`, `help` | nothing | |
//!
//! SRC is required by PF_KEY in ADD and UPDATE; when no source address was written it is
//! the unspecified address of the destination's family (with `sport` and `proto`).

use std::net::{IpAddr, SocketAddr};

use ipsec_core::{Direction, SaState};
use ipsec_pfkey::consts::{
    SADB_DELETE, SADB_DUMP, SADB_FLUSH, SADB_GET, SADB_SATYPE_AH, SADB_SATYPE_ESP,
    SADB_SATYPE_UNSPEC, SADB_UPDATE, SADB_X_DELPAIR, SADB_X_PROMISC, SADB_X_SAFLAGS_INBOUND,
    SADB_X_SAFLAGS_OUTBOUND, SADB_X_UPDATEPAIR,
};
use ipsec_pfkey::convert::{add_message, put_config, unspecified_like};
use ipsec_pfkey::wire::{Address, Lifetime, Pair, ReplayValue, SaExt};
use ipsec_pfkey::{Message, PfkeyError};

use super::{Command, LifetimeSpec, ParseError, SaSpec, SaType};

/// The PF_KEY number of an SA type operand (`all` is 0).
pub fn satype_number(t: SaType) -> u8 {
    match t {
        SaType::All => SADB_SATYPE_UNSPEC,
        SaType::Ah => SADB_SATYPE_AH,
        SaType::Esp => SADB_SATYPE_ESP,
    }
}

/// The request `cmd` sends, with `sadb_msg_seq = seq` and `sadb_msg_pid = pid`, or `None`
/// for commands that send nothing (`passive_monitor`, `help`). See the module docs for what
/// each command carries.
///
/// Errors are those of [`SaSpec::to_config`] (for `add` and the keyed `update`), a missing
/// `spi` or `dst`, and values PF_KEY cannot carry (a key longer than 8191 bytes); each names
/// the command's position in its file.
pub fn request(cmd: &Command, seq: u32, pid: u32) -> Result<Option<Message>, ParseError> {
    let mut m = match cmd {
        Command::Add(spec) => {
            let cfg = spec.to_config()?;
            add_message(&cfg, seq, pid).map_err(|e| unencodable(spec, &e))?
        }
        Command::Update(spec) => update(spec, SADB_UPDATE)?,
        Command::UpdatePair(spec) => update(spec, SADB_X_UPDATEPAIR)?,
        Command::Delete(spec) => locate(spec, SADB_DELETE)?,
        Command::DeletePair(spec) => locate(spec, SADB_X_DELPAIR)?,
        Command::Get(spec) => locate(spec, SADB_GET)?,
        Command::Flush(t) => Message::new(SADB_FLUSH, satype_number(*t)),
        Command::Dump(t) => Message::new(SADB_DUMP, satype_number(*t)),
        Command::Save { satype, .. } => Message::new(SADB_DUMP, satype_number(*satype)),
        Command::Monitor => Message::new(SADB_X_PROMISC, 1),
        Command::PassiveMonitor | Command::Help(_) => return Ok(None),
    };
    m.seq = seq;
    m.pid = pid;
    Ok(Some(m))
}

fn unencodable(spec: &SaSpec, e: &PfkeyError) -> ParseError {
    spec.err_end(format!("values a PF_KEY message can carry ({})", e.what))
}

fn direction_flags(spec: &SaSpec) -> u32 {
    match spec.direction {
        Some(Direction::Inbound) => SADB_X_SAFLAGS_INBOUND,
        Some(Direction::Outbound) => SADB_X_SAFLAGS_OUTBOUND,
        Some(Direction::Any) | None => 0,
    }
}

fn required(spec: &SaSpec) -> Result<(u32, IpAddr), ParseError> {
    let spi = spec.spi.ok_or_else(|| spec.err_end("`spi`"))?;
    let dst = spec.dst.ok_or_else(|| spec.err_end("`dst`"))?;
    Ok((spi, dst))
}

fn address(ip: IpAddr, port: u16, proto: u8) -> Address {
    Address {
        proto,
        prefixlen: 0,
        addr: SocketAddr::new(ip, port),
    }
}

fn lifetime(l: &LifetimeSpec) -> Option<Lifetime> {
    (!l.is_empty()).then(|| {
        let r = l.resolve();
        Lifetime {
            allocations: u32::try_from(r.packets).unwrap_or(u32::MAX),
            bytes: r.bytes,
            addtime: r.addtime,
            usetime: r.usetime,
        }
    })
}

/// UPDATE / X_UPDATEPAIR. With an algorithm or a key, the update matures a larval SA and
/// must describe it completely; otherwise it changes lifetimes (and the pair link).
fn update(spec: &SaSpec, msg_type: u8) -> Result<Message, ParseError> {
    let keyed = spec.auth_alg.is_some()
        || spec.encr_alg.is_some()
        || spec.auth_key.is_some()
        || spec.encr_key.is_some();
    if keyed {
        let cfg = spec.to_config()?;
        let mut m = Message::new(msg_type, cfg.proto.satype());
        put_config(&mut m, &cfg, true).map_err(|e| unencodable(spec, &e))?;
        return Ok(m);
    }
    let (spi, dst) = required(spec)?;
    let mut m = Message::new(msg_type, satype_number(spec.satype));
    let proto = spec.proto.unwrap_or(0);
    m.sa = Some(SaExt {
        spi,
        replay: spec
            .replay
            .map_or(0, |r| u8::try_from(r).unwrap_or(u8::MAX)),
        state: spec.state.unwrap_or(SaState::Mature).number(),
        auth: 0,
        encrypt: 0,
        flags: direction_flags(spec),
    });
    let src = spec.src.unwrap_or_else(|| unspecified_like(dst));
    m.src = Some(address(src, spec.sport.unwrap_or(0), proto));
    m.dst = Some(address(dst, spec.dport.unwrap_or(0), proto));
    m.lifetime_soft = lifetime(&spec.soft);
    m.lifetime_hard = lifetime(&spec.hard);
    m.lifetime_idle = lifetime(&spec.idle);
    m.pair = spec.pair_spi.map(|spi| Pair { spi });
    m.replay_value = spec.replay_value.map(|v| {
        if spec.esn {
            ReplayValue {
                replay32: 0,
                replay64: v,
            }
        } else {
            ReplayValue {
                replay32: u32::try_from(v).unwrap_or(u32::MAX),
                replay64: 0,
            }
        }
    });
    Ok(m)
}

/// DELETE / X_DELPAIR / GET: what locates an SA.
fn locate(spec: &SaSpec, msg_type: u8) -> Result<Message, ParseError> {
    let (spi, dst) = required(spec)?;
    let mut m = Message::new(msg_type, satype_number(spec.satype));
    let proto = spec.proto.unwrap_or(0);
    m.sa = Some(SaExt {
        spi,
        flags: direction_flags(spec),
        ..SaExt::default()
    });
    m.dst = Some(address(dst, spec.dport.unwrap_or(0), proto));
    if spec.src.is_some() || spec.sport.is_some() {
        let src = spec.src.unwrap_or_else(|| unspecified_like(dst));
        m.src = Some(address(src, spec.sport.unwrap_or(0), proto));
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipseckey::{parse_with, print_add, ParseOptions};
    use ipsec_pfkey::consts::SADB_ADD;
    use ipsec_pfkey::convert::message_to_config;
    use ipsec_pfkey::Flow;

    fn one(text: &str) -> Command {
        let mut v = parse_with(text, "t", ParseOptions { numeric: true }).unwrap();
        assert_eq!(v.len(), 1, "{text}");
        v.remove(0)
    }

    fn roundtrip(m: &Message) -> Message {
        let bytes = m.emit().unwrap();
        let back = Message::parse(&bytes).unwrap();
        assert_eq!(&back, m);
        back.validate(Flow::ToKernel).unwrap();
        back
    }

    const ADDS: &[&str] = &[
        "add esp spi 0x1000 src 10.0.0.1 dst 10.0.0.2 encr_alg aes encrkey 00112233445566778899aabbccddeeff auth_alg sha256 authkey 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "add ah spi 300 dst 192.0.2.7 auth_alg hmac-sha1 authkey 0102030405060708090a0b0c0d0e0f1011121314 inbound replay 32 soft_addtime 100 hard_addtime 200 hard_bytes 1000000",
        "add esp spi 0x2000 src 2001:db8::1 dst 2001:db8::2 encr_alg aes-gcm encrkey 00112233445566778899aabbccddeeff01020304 idst 10.1.0.0/16 isrc 10.2.0.0/16 outbound esn replay 1024 replay_value 77 pair-spi 0x2001",
        "add esp spi 0x3000 src 10.0.0.1 dst 10.0.0.2 encr_alg aes encrkey 00112233445566778899aabbccddeeff auth_alg sha1 authkey 0102030405060708090a0b0c0d0e0f1011121314 encap udp nat_rport 4501 nat_rem 10.9.9.9 srcidtype fqdn a.example dstidtype user_fqdn \"b@example\" sport 5 dport 6 proto 17",
        "add esp spi 0x4000 dst 10.0.0.2 state larval",
    ];

    #[test]
    fn add_round_trips_through_the_codec_and_back_to_the_same_sa() {
        for text in ADDS {
            let Command::Add(spec) = one(text) else {
                panic!("not an add: {text}")
            };
            let m = request(&Command::Add(spec.clone()), 7, 42)
                .unwrap()
                .unwrap();
            assert_eq!((m.msg_type, m.seq, m.pid), (SADB_ADD, 7, 42));
            let back = roundtrip(&m);
            let want = spec.to_config().unwrap();
            let got = message_to_config(&back, true, 0).unwrap();
            assert_eq!(print_add(&got, false), print_add(&want, false), "{text}");
        }
    }

    #[test]
    fn lifetime_update_carries_sa_addresses_and_given_lifetimes_only() {
        let cmd = one("update esp spi 0x1000 dst 10.0.0.2 soft_bytes 10 hard_usetime 99 inbound");
        let m = request(&cmd, 3, 9).unwrap().unwrap();
        let back = roundtrip(&m);
        assert_eq!(back.msg_type, SADB_UPDATE);
        assert_eq!(back.satype, SADB_SATYPE_ESP);
        let sa = back.sa.unwrap();
        assert_eq!(
            (sa.spi, sa.state, sa.flags),
            (0x1000, 1, SADB_X_SAFLAGS_INBOUND)
        );
        assert!(back.src.unwrap().ip().is_unspecified());
        assert_eq!(back.dst.unwrap().ip().to_string(), "10.0.0.2");
        assert_eq!(back.lifetime_soft.unwrap().bytes, 10);
        assert_eq!(back.lifetime_hard.unwrap().usetime, 99);
        assert!(back.lifetime_idle.is_none());
        assert!(back.key_auth.is_none() && back.key_encrypt.is_none());

        let pair = one("update-pair ah spi 0x1000 src 10.0.0.1 dst 10.0.0.2 hard_addtime 5");
        let back = roundtrip(&request(&pair, 4, 9).unwrap().unwrap());
        assert_eq!(back.msg_type, SADB_X_UPDATEPAIR);
        assert_eq!(back.src.unwrap().ip().to_string(), "10.0.0.1");
    }

    #[test]
    fn keyed_update_matures_a_larval_sa_with_its_keys() {
        let text = "update esp spi 0x1000 src 10.0.0.1 dst 10.0.0.2 encr_alg aes encrkey 00112233445566778899aabbccddeeff auth_alg sha256 authkey 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let Command::Update(spec) = one(text) else {
            panic!("not an update")
        };
        let m = request(&Command::Update(spec.clone()), 5, 1)
            .unwrap()
            .unwrap();
        let back = roundtrip(&m);
        assert_eq!(back.msg_type, SADB_UPDATE);
        assert_eq!(back.key_encrypt.as_ref().unwrap().bits, 128);
        let got = message_to_config(&back, false, 0).unwrap();
        assert_eq!(
            print_add(&got, false),
            print_add(&spec.to_config().unwrap(), false)
        );
    }

    #[test]
    fn delete_get_and_delpair_locate_the_sa() {
        for (text, t) in [
            ("delete esp spi 0x1000 dst 10.0.0.2", SADB_DELETE),
            ("get ah spi 0x1000 dst 10.0.0.2 src 10.0.0.1", SADB_GET),
            (
                "delete-pair esp spi 0x1000 dst 2001:db8::2 outbound",
                SADB_X_DELPAIR,
            ),
        ] {
            let back = roundtrip(&request(&one(text), 11, 12).unwrap().unwrap());
            assert_eq!(back.msg_type, t, "{text}");
            assert_eq!(back.sa.unwrap().spi, 0x1000);
            assert!(back.dst.is_some());
            assert_eq!(back.src.is_some(), text.contains("src"), "{text}");
            assert!(!back.has_extensions() || back.key_auth.is_none());
        }
        let m = request(
            &one("delete-pair esp spi 0x1000 dst 2001:db8::2 outbound"),
            1,
            1,
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.sa.unwrap().flags, SADB_X_SAFLAGS_OUTBOUND);
    }

    #[test]
    fn flush_dump_save_monitor_and_the_silent_commands() {
        let cases: &[(&str, Option<(u8, u8)>)] = &[
            ("flush", Some((SADB_FLUSH, 0))),
            ("flush esp", Some((SADB_FLUSH, 3))),
            ("dump ah", Some((SADB_DUMP, 2))),
            ("dump all", Some((SADB_DUMP, 0))),
            ("save esp /tmp/x", Some((SADB_DUMP, 3))),
            ("monitor", Some((SADB_X_PROMISC, 1))),
            ("pmonitor", None),
            ("passive_monitor", None),
            ("help", None),
        ];
        for (text, want) in cases {
            let got = request(&one(text), 99, 100).unwrap();
            match (got, want) {
                (None, None) => {}
                (Some(m), Some((t, s))) => {
                    assert_eq!((m.msg_type, m.satype, m.seq, m.pid), (*t, *s, 99, 100));
                    assert!(!m.has_extensions());
                    let b = roundtrip(&m);
                    assert_eq!(b.msg_type, *t);
                }
                (g, w) => panic!("{text}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn add_errors_name_the_position() {
        // Parsing already runs to_config for add, so build a spec by hand that lost its dst.
        let Command::Add(mut spec) = one(ADDS[0]) else {
            panic!("not an add")
        };
        spec.dst = None;
        let e = request(&Command::Add(spec), 1, 1).unwrap_err();
        assert_eq!(e.file, "t");
        assert_eq!(e.line, 1);
        assert!(e.expected.contains("dst"), "{e}");
    }
}
