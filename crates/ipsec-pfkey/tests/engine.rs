//! The key engine, request by request: replies and their destinations, every diagnostic the
//! engine emits (each refused message leaves the state digest unchanged), GETSPI ranges,
//! larval timeout, ACQUIRE suppression, EXPIRE, X_PROMISC and SA pairs. Every output of
//! every test is checked to parse, follow the reply rules and be canonical.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{IpAddr, SocketAddr};

use ipsec_core::{Proto, SaState};
use ipsec_pfkey::consts::*;
use ipsec_pfkey::engine::*;
use ipsec_pfkey::fuzz_support::check_output;
use ipsec_pfkey::wire::*;
use ipsec_pfkey::Diagnostic as D;
use proptest::prelude::*;

const A: ClientId = ClientId(1);
const B: ClientId = ClientId(2);
const MON: ClientId = ClientId(3);

fn addr(s: &str) -> Address {
    let ip: IpAddr = s.parse().unwrap();
    Address::new(SocketAddr::new(ip, 0))
}

fn sa_ext(spi: u32, auth: u8, encrypt: u8) -> SaExt {
    SaExt {
        spi,
        replay: 0,
        state: SADB_SASTATE_MATURE,
        auth,
        encrypt,
        flags: 0,
    }
}

/// ESP AES-GCM-16 (PF_KEY 20) with a 160-bit key (128 + salt).
fn esp_add(spi: u32, src: &str, dst: &str) -> Message {
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_ESP);
    m.seq = 11;
    m.pid = 4242;
    m.sa = Some(sa_ext(spi, 0, 20));
    m.src = Some(addr(src));
    m.dst = Some(addr(dst));
    m.key_encrypt = Key::new(&[0x5a; 20]);
    m
}

fn ah_add(spi: u32, src: &str, dst: &str) -> Message {
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_AH);
    m.sa = Some(sa_ext(spi, 5, 0));
    m.src = Some(addr(src));
    m.dst = Some(addr(dst));
    m.key_auth = Key::new(&[0x33; 32]);
    m
}

fn sel(t: u8, satype: u8, spi: u32, src: &str, dst: &str) -> Message {
    let mut m = Message::new(t, satype);
    m.seq = 5;
    m.pid = 77;
    m.sa = Some(sa_ext(spi, 0, 0));
    m.src = Some(addr(src));
    m.dst = Some(addr(dst));
    m
}

struct H {
    e: KeyEngine,
}

impl H {
    fn new() -> Self {
        let mut e = KeyEngine::with_seed(1);
        e.open(A);
        e.open(B);
        e.open(MON);
        Self { e }
    }

    /// Everything the engine has to deliver: the messages of `poll_output`, then every
    /// client's DUMP records.
    fn drain(&mut self) -> Vec<(Output, Message)> {
        let mut v = Vec::new();
        while let Some(o) = self.e.poll_output() {
            let m = check_output(&o.bytes).unwrap_or_else(|e| panic!("{e}: {:?}", o.bytes));
            v.push((o, m));
        }
        let clients: Vec<ClientId> = self.e.dump_clients().collect();
        for c in clients {
            while let Some(o) = self.e.poll_dump(c) {
                let m = check_output(&o.bytes).unwrap_or_else(|e| panic!("{e}: {:?}", o.bytes));
                v.push((o, m));
            }
            assert!(!self.e.has_dump(c));
        }
        v
    }

    fn send_at(&mut self, now: u64, c: ClientId, m: &Message) -> Vec<(Output, Message)> {
        let b = m.emit().unwrap();
        self.e.handle(now, c, &b);
        self.drain()
    }

    fn send(&mut self, c: ClientId, m: &Message) -> Vec<(Output, Message)> {
        self.send_at(100, c, m)
    }

    /// Sends and expects exactly one successful reply that reaches `c`.
    fn ok(&mut self, c: ClientId, m: &Message) -> (Output, Message) {
        let out = self.send(c, m);
        let mut replies: Vec<_> = out.into_iter().filter(|(o, _)| o.to.contains(&c)).collect();
        assert_eq!(replies.len(), 1, "{m}: {replies:?}");
        let (o, r) = replies.pop().unwrap();
        assert_eq!(r.errno, 0, "{m} refused: {r}");
        assert_eq!((r.seq, r.pid), (m.seq, m.pid), "reply copies seq and pid");
        assert_eq!(r.msg_type, m.msg_type);
        (o, r)
    }

    /// Sends raw bytes and expects an error reply with `errno`/`diag` to the sender only
    /// (and the monitor when it is promiscuous), with nothing changed.
    fn refused_bytes(&mut self, c: ClientId, b: &[u8], errno: u8, diag: D) {
        let before = self.e.state_digest();
        let gen = self.e.generation();
        self.e.handle(100, c, b);
        let out = self.drain();
        assert_eq!(out.len(), 1, "{out:?}");
        let (o, r) = &out[0];
        assert_eq!(o.dest, Destination::Sender(c));
        assert!(o.to.contains(&c));
        assert_eq!((r.errno, r.diagnostic()), (errno, Some(diag)), "got {r}");
        assert!(!r.has_extensions());
        let h = MsgHeader::new_unchecked(b);
        if b.len() >= 16 {
            assert_eq!((r.seq, r.pid), (h.seq(), h.pid()));
        }
        assert_eq!(
            self.e.state_digest(),
            before,
            "a refused message changed state"
        );
        assert_eq!(self.e.generation(), gen);
    }

    fn refused(&mut self, c: ClientId, m: &Message, errno: u8, diag: D) {
        self.refused_bytes(c, &m.emit().unwrap(), errno, diag);
    }

    fn get(&mut self, satype: u8, spi: u32, src: &str, dst: &str) -> Option<Message> {
        let out = self.send(A, &sel(SADB_GET, satype, spi, src, dst));
        let (_, r) = out.into_iter().find(|(o, _)| o.to.contains(&A)).unwrap();
        (r.errno == 0).then_some(r)
    }
}

#[test]
fn add_get_delete_round_trip() {
    let mut h = H::new();
    let (o, r) = h.ok(A, &esp_add(0x1000, "10.0.0.1", "10.0.0.2"));
    assert_eq!(o.dest, Destination::All);
    assert_eq!(o.to, vec![A, B, MON]);
    assert!(r.key_encrypt.is_none(), "ADD echo carries no key");
    assert_eq!(r.sa.unwrap().spi, 0x1000);

    let g = h
        .get(SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2")
        .unwrap();
    assert_eq!(g.msg_type, SADB_GET);
    assert_eq!(g.key_encrypt.as_ref().unwrap().expose(), &[0x5a; 20]);
    assert_eq!(g.sa.unwrap().state, SADB_SASTATE_MATURE);
    assert_eq!(g.lifetime_current.unwrap().addtime, 100);
    // GET goes to the sender only.
    let out = h.send(
        A,
        &sel(SADB_GET, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2"),
    );
    assert_eq!(out[0].0.to, vec![A]);

    let (o, _) = h.ok(
        B,
        &sel(SADB_DELETE, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2"),
    );
    assert_eq!(o.dest, Destination::All);
    assert!(h.e.sadb().is_empty());
    h.refused(
        A,
        &sel(SADB_DELETE, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2"),
        ESRCH,
        D::SaNotfound,
    );
}

#[test]
fn add_from_the_ipseckey_language_comes_back_from_get() {
    use ipsec_config::ipseckey::{parse_with, Command, ParseOptions};
    let text = "add esp spi 0x4567 src 192.0.2.1 dst 192.0.2.2 encr_alg aes-cbc auth_alg sha256 \
                encrkey 00112233445566778899aabbccddeeff authkey \
                000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \
                replay 1024 esn soft_addtime 100 hard_addtime 200 idle_usetime 50 \
                srcidtype fqdn a.example outbound";
    let cmds = parse_with(text, "t", ParseOptions { numeric: true }).unwrap();
    let Command::Add(spec) = &cmds[0] else {
        panic!()
    };
    let cfg = spec.to_config().unwrap();
    let m = ipsec_pfkey::convert::add_message(&cfg, 3, 1).unwrap();
    assert!(
        m.ironswan_sa.is_some(),
        "window 1024 and ESN need extension 240"
    );
    let mut h = H::new();
    h.ok(A, &m);
    let g = h
        .get(SADB_SATYPE_ESP, 0x4567, "192.0.2.1", "192.0.2.2")
        .unwrap();
    let back = ipsec_pfkey::convert::message_to_config(
        &Message {
            msg_type: SADB_ADD,
            lifetime_current: None,
            kmc: None,
            pair: None,
            ..g.clone()
        },
        true,
        0,
    )
    .unwrap();
    assert_eq!(back.replay_window, 1024);
    assert!(back.esn);
    assert_eq!(back.hard, cfg.hard);
    assert_eq!(back.soft, cfg.soft);
    assert_eq!(back.idle, cfg.idle);
    assert_eq!(back.src_id, cfg.src_id);
    assert_eq!(back.direction, cfg.direction);
    assert_eq!(back.encr_key, cfg.encr_key);
    assert_eq!(back.auth_key, cfg.auth_key);
    assert_eq!(
        g.sa.unwrap().flags & SADB_X_SAFLAGS_OUTBOUND,
        SADB_X_SAFLAGS_OUTBOUND
    );
}

#[test]
fn tunnel_natt_and_unique_sas() {
    let mut h = H::new();
    let mut m = esp_add(0x2000, "192.0.2.1", "192.0.2.2");
    m.inner_src = Some(Address {
        prefixlen: 24,
        ..addr("10.1.0.0")
    });
    m.inner_dst = Some(Address {
        prefixlen: 16,
        ..addr("10.2.0.0")
    });
    m.natt_rem = Some(Address::new("198.51.100.7:4501".parse().unwrap()));
    m.sa.as_mut().unwrap().flags = SADB_X_SAFLAGS_NATT_REM | SADB_X_SAFLAGS_UNIQUE;
    let (_, r) = h.ok(A, &m);
    let f = r.sa.unwrap().flags;
    assert_eq!(
        f & (SADB_X_SAFLAGS_TUNNEL | SADB_X_SAFLAGS_NATT_REM | SADB_X_SAFLAGS_UNIQUE),
        SADB_X_SAFLAGS_TUNNEL | SADB_X_SAFLAGS_NATT_REM | SADB_X_SAFLAGS_UNIQUE
    );
    let id =
        h.e.sadb()
            .lookup(Proto::Esp, "192.0.2.2".parse().unwrap(), 0x2000, None)
            .unwrap();
    let c = h.e.sadb().get(id).unwrap().config().clone();
    assert_eq!(c.mode, ipsec_core::Mode::Tunnel);
    assert_eq!(c.ulp, 4);
    assert_eq!(c.inner.dst.unwrap().len, 16);
    let n = c.natt.unwrap();
    assert_eq!((n.local_port, n.remote_port), (4500, 4501));
    assert_eq!(n.remote_addr, Some("198.51.100.7".parse().unwrap()));
    let g = h
        .get(SADB_SATYPE_ESP, 0x2000, "192.0.2.1", "192.0.2.2")
        .unwrap();
    assert_eq!(g.inner_src.unwrap().prefixlen, 24);
    assert_eq!(g.src.unwrap().proto, 4);
    // Only the peer is NATed: the SA says so, and GET reports NATT_REM alone.
    assert_eq!((n.local_behind_nat, n.remote_behind_nat), (false, true));
    let nat = SADB_X_SAFLAGS_NATT_LOC | SADB_X_SAFLAGS_NATT_REM;
    assert_eq!(g.sa.unwrap().flags & nat, SADB_X_SAFLAGS_NATT_REM);
}

#[test]
fn natt_flags_say_which_side_is_natted() {
    let mut h = H::new();
    let nat = SADB_X_SAFLAGS_NATT_LOC | SADB_X_SAFLAGS_NATT_REM;
    for (spi, flags) in [
        (0x2100u32, SADB_X_SAFLAGS_NATT_LOC),
        (0x2101, SADB_X_SAFLAGS_NATT_REM),
        (0x2102, nat),
        (0x2103, 0),
    ] {
        let mut m = esp_add(spi, "192.0.2.1", "192.0.2.2");
        // Both extensions (the ports), whatever the flags: either makes the SA UDP-encapsulated.
        m.natt_loc = Some(Address::new("0.0.0.0:4500".parse().unwrap()));
        m.natt_rem = Some(Address::new("0.0.0.0:4500".parse().unwrap()));
        m.sa.as_mut().unwrap().flags = flags;
        let (_, r) = h.ok(A, &m);
        assert_eq!(r.sa.unwrap().flags & nat, flags, "ADD echo {flags:#x}");
        let id =
            h.e.sadb()
                .lookup(Proto::Esp, "192.0.2.2".parse().unwrap(), spi, None)
                .unwrap();
        let n = h.e.sadb().get(id).unwrap().config().natt.unwrap();
        assert_eq!(
            (n.local_behind_nat, n.remote_behind_nat),
            (
                flags & SADB_X_SAFLAGS_NATT_LOC != 0,
                flags & SADB_X_SAFLAGS_NATT_REM != 0
            ),
            "{flags:#x}"
        );
        let g = h
            .get(SADB_SATYPE_ESP, spi, "192.0.2.1", "192.0.2.2")
            .unwrap();
        assert_eq!(g.sa.unwrap().flags & nat, flags, "GET {flags:#x}");
        assert!(g.natt_loc.is_some() && g.natt_rem.is_some(), "{g:?}");
    }
}

#[test]
fn every_diagnostic_the_engine_emits() {
    let mut h = H::new();
    h.ok(A, &esp_add(0x1000, "10.0.0.1", "10.0.0.2"));
    h.ok(A, &esp_add(0x1001, "10.0.0.2", "10.0.0.1"));
    let mut kmc = ah_add(0x3000, "10.0.0.1", "10.0.0.2");
    kmc.kmc = Some(KmCookie {
        proto: SADB_X_KMP_IKE,
        cookie: 5,
    });
    h.ok(A, &kmc);
    let base = || esp_add(0x5000, "10.0.0.1", "10.0.0.2");
    let mut cases: Vec<(&str, Message, u8, D)> = Vec::new();
    let mut add = |n, f: &dyn Fn(&mut Message), errno, d| {
        let mut m = base();
        f(&mut m);
        cases.push((n, m, errno, d));
    };
    add("satype 0", &|m| m.satype = 0, EINVAL, D::SatypeNeeded);
    add("satype 9", &|m| m.satype = 9, EINVAL, D::UnknownSatype);
    add("no SA", &|m| m.sa = None, EINVAL, D::MissingSa);
    add("no src", &|m| m.src = None, EINVAL, D::MissingSrc);
    add("no dst", &|m| m.dst = None, EINVAL, D::MissingDst);
    add(
        "family",
        &|m| m.src = Some(addr("::1")),
        EINVAL,
        D::AfMismatch,
    );
    add(
        "multicast src",
        &|m| m.src = Some(addr("224.0.0.1")),
        EINVAL,
        D::BadSrc,
    );
    add(
        "unspec dst",
        &|m| m.dst = Some(addr("0.0.0.0")),
        EINVAL,
        D::BadDst,
    );
    add(
        "proto",
        &|m| m.src.as_mut().unwrap().proto = 6,
        EINVAL,
        D::ProtoMismatch,
    );
    add(
        "reserved spi",
        &|m| m.sa.as_mut().unwrap().spi = 200,
        EINVAL,
        D::MalformedSa,
    );
    add(
        "state dying",
        &|m| m.sa.as_mut().unwrap().state = 2,
        EINVAL,
        D::BadSastate,
    );
    add(
        "flag used",
        &|m| m.sa.as_mut().unwrap().flags = SADB_X_SAFLAGS_USED,
        EINVAL,
        D::BadSaflags,
    );
    add(
        "unknown ealg",
        &|m| m.sa.as_mut().unwrap().encrypt = 99,
        EINVAL,
        D::BadEalg,
    );
    add(
        "no ealg",
        &|m| m.sa.as_mut().unwrap().encrypt = 0,
        EINVAL,
        D::BadEalg,
    );
    add(
        "unknown aalg",
        &|m| m.sa.as_mut().unwrap().auth = 99,
        EINVAL,
        D::BadAalg,
    );
    add(
        "aead + auth",
        &|m| {
            m.sa.as_mut().unwrap().auth = 5;
            m.key_auth = Key::new(&[1; 32]);
        },
        EINVAL,
        D::BadAalg,
    );
    add("no ekey", &|m| m.key_encrypt = None, EINVAL, D::MissingEkey);
    add(
        "no akey",
        &|m| m.sa.as_mut().unwrap().auth = 5,
        EINVAL,
        D::MissingAkey,
    );
    add(
        "akey w/o alg",
        &|m| m.key_auth = Key::new(&[1; 32]),
        EINVAL,
        D::AkeyPresent,
    );
    add(
        "ekey for null",
        &|m| m.sa.as_mut().unwrap().encrypt = SADB_EALG_NULL,
        EINVAL,
        D::EkeyPresent,
    );
    add(
        "ekey bits",
        &|m| m.key_encrypt = Key::new(&[1; 24]),
        EINVAL,
        D::BadEkeybits,
    );
    add(
        "ekey odd bits",
        &|m| m.key_encrypt = Key::with_bits(&[1; 20], 157),
        EINVAL,
        D::BadEkeybits,
    );
    add(
        "akey bits",
        &|m| {
            m.sa.as_mut().unwrap().encrypt = 12;
            m.key_encrypt = Key::new(&[1; 16]);
            m.sa.as_mut().unwrap().auth = 5;
            m.key_auth = Key::new(&[1; 31]);
        },
        EINVAL,
        D::BadAkeybits,
    );
    add(
        "akey odd bits",
        &|m| {
            m.sa.as_mut().unwrap().encrypt = 12;
            m.key_encrypt = Key::new(&[1; 16]);
            m.sa.as_mut().unwrap().auth = 5;
            m.key_auth = Key::with_bits(&[1; 32], 255);
        },
        EINVAL,
        D::BadAkeybits,
    );
    add(
        "weak 3des",
        &|m| {
            m.sa.as_mut().unwrap().encrypt = 3;
            m.sa.as_mut().unwrap().auth = 3;
            let mut k = [0x01u8; 24];
            k[16..].copy_from_slice(&[0x23; 8]);
            m.key_encrypt = Key::new(&k);
            m.key_auth = Key::new(&[7; 20]);
        },
        EINVAL,
        D::WeakEkey,
    );
    add(
        "legacy des",
        &|m| {
            m.sa.as_mut().unwrap().encrypt = 2;
            m.sa.as_mut().unwrap().auth = 3;
            m.key_encrypt = Key::new(&[0x13; 8]);
            m.key_auth = Key::new(&[7; 20]);
        },
        EINVAL,
        D::BadEalg,
    );
    add(
        "soft > hard allocs",
        &|m| {
            m.lifetime_hard = Some(Lifetime {
                allocations: 5,
                ..Lifetime::default()
            });
            m.lifetime_soft = Some(Lifetime {
                allocations: 6,
                ..Lifetime::default()
            });
        },
        EINVAL,
        D::AllocHserr,
    );
    add(
        "soft > hard bytes",
        &|m| {
            m.lifetime_hard = Some(Lifetime {
                bytes: 5,
                ..Lifetime::default()
            });
            m.lifetime_soft = Some(Lifetime {
                bytes: 6,
                ..Lifetime::default()
            });
        },
        EINVAL,
        D::BytesHserr,
    );
    add(
        "soft > hard add",
        &|m| {
            m.lifetime_hard = Some(Lifetime {
                addtime: 5,
                ..Lifetime::default()
            });
            m.lifetime_soft = Some(Lifetime {
                addtime: 6,
                ..Lifetime::default()
            });
        },
        EINVAL,
        D::AddtimeHserr,
    );
    add(
        "idle > hard use",
        &|m| {
            m.lifetime_hard = Some(Lifetime {
                usetime: 5,
                ..Lifetime::default()
            });
            m.lifetime_idle = Some(Lifetime {
                usetime: 6,
                ..Lifetime::default()
            });
        },
        EINVAL,
        D::UsetimeHserr,
    );
    add(
        "current lifetime",
        &|m| m.lifetime_current = Some(Lifetime::default()),
        EOPNOTSUPP,
        D::MissingLifetime,
    );
    add(
        "natt flag",
        &|m| m.sa.as_mut().unwrap().flags = SADB_X_SAFLAGS_NATT_LOC,
        EINVAL,
        D::MissingNattLoc,
    );
    add(
        "natt rem flag",
        &|m| m.sa.as_mut().unwrap().flags = SADB_X_SAFLAGS_NATT_REM,
        EINVAL,
        D::MissingNattRem,
    );
    add(
        "natt loc af",
        &|m| m.natt_loc = Some(addr("::1")),
        EINVAL,
        D::BadNattLocAf,
    );
    add(
        "natt rem af",
        &|m| m.natt_rem = Some(addr("::1")),
        EINVAL,
        D::BadNattRemAf,
    );
    add(
        "tunnel flag",
        &|m| m.sa.as_mut().unwrap().flags = SADB_X_SAFLAGS_TUNNEL,
        EINVAL,
        D::MissingInnerSrc,
    );
    add(
        "inner src only",
        &|m| m.inner_src = Some(addr("10.9.0.0")),
        EINVAL,
        D::MissingInnerDst,
    );
    add(
        "inner dst only",
        &|m| m.inner_dst = Some(addr("10.9.0.0")),
        EINVAL,
        D::MissingInnerSrc,
    );
    add(
        "inner families",
        &|m| {
            m.inner_src = Some(addr("10.9.0.0"));
            m.inner_dst = Some(addr("fd00::"));
        },
        EINVAL,
        D::InnerAfMismatch,
    );
    add(
        "inner vs outer proto",
        &|m| {
            m.inner_src = Some(addr("10.9.0.0"));
            m.inner_dst = Some(addr("10.8.0.0"));
            m.src.as_mut().unwrap().proto = 41;
            m.dst.as_mut().unwrap().proto = 41;
        },
        EPROTOTYPE,
        D::InnerAfMismatch,
    );
    add(
        "inner protos",
        &|m| {
            m.inner_src = Some(Address {
                proto: 6,
                ..addr("10.9.0.0")
            });
            m.inner_dst = Some(Address {
                proto: 17,
                ..addr("10.8.0.0")
            });
        },
        EINVAL,
        D::InnerProtoMismatch,
    );
    add(
        "dual ports",
        &|m| {
            m.inner_src = Some(Address::new("10.9.0.1:80".parse().unwrap()));
            m.inner_dst = Some(addr("10.8.0.0"));
            m.src = Some(Address::new("10.0.0.1:99".parse().unwrap()));
        },
        EINVAL,
        D::DualPortSets,
    );
    add(
        "replay window",
        &|m| {
            m.ironswan_sa = Some(IronswanSa {
                replay_window: 5000,
                ..IronswanSa::default()
            });
        },
        EINVAL,
        D::InvalidReplay,
    );
    add(
        "replay64 without esn",
        &|m| {
            m.replay_value = Some(ReplayValue {
                replay32: 0,
                replay64: 5,
            });
        },
        EOPNOTSUPP,
        D::InvalidReplay,
    );
    add(
        "labels",
        &|m| m.sensitivity = Some(Sensitivity::default()),
        EOPNOTSUPP,
        D::BadLabel,
    );
    add(
        "pair self",
        &|m| m.pair = Some(Pair { spi: 0x5000 }),
        EINVAL,
        D::PairInappropriate,
    );
    add(
        "pair missing",
        &|m| m.pair = Some(Pair { spi: 0x7777 }),
        EINVAL,
        D::PairInappropriate,
    );
    add(
        "pair addresses",
        &|m| {
            m.dst = Some(addr("10.0.0.3"));
            m.pair = Some(Pair { spi: 0x1001 });
        },
        EINVAL,
        D::PairAddMismatch,
    );
    add(
        "proposal",
        &|m| m.proposal = Some(Proposal::default()),
        EINVAL,
        D::PropPresent,
    );
    add(
        "supported",
        &|m| m.supported_encrypt = Some(Supported::default()),
        EINVAL,
        D::SuppPresent,
    );
    add(
        "exists",
        &|m| m.sa.as_mut().unwrap().spi = 0x1000,
        EEXIST,
        D::None,
    );
    add(
        "gn identity",
        &|m| {
            m.ident_src = Some(Identity {
                kind: SADB_X_IDENTTYPE_GN,
                id: 0,
                value: b"x".to_vec(),
            });
        },
        EOPNOTSUPP,
        D::None,
    );
    add(
        "ah with ekey",
        &|m| {
            m.satype = SADB_SATYPE_AH;
            m.sa.as_mut().unwrap().encrypt = 0;
            m.sa.as_mut().unwrap().auth = 5;
            m.key_auth = Key::new(&[1; 32]);
        },
        EINVAL,
        D::EkeyPresent,
    );
    add(
        "ah with encryption",
        &|m| {
            m.satype = SADB_SATYPE_AH;
            m.key_encrypt = None;
        },
        EINVAL,
        D::EncrNotsupp,
    );
    add(
        "ah natt",
        &|m| {
            m.satype = SADB_SATYPE_AH;
            m.sa.as_mut().unwrap().encrypt = 0;
            m.sa.as_mut().unwrap().auth = 5;
            m.key_encrypt = None;
            m.key_auth = Key::new(&[1; 32]);
            m.natt_rem = Some(addr("10.0.0.7"));
        },
        EINVAL,
        D::BadSaflags,
    );
    for (name, m, errno, d) in &cases {
        eprintln!("case {name}");
        h.refused(A, m, *errno, *d);
    }

    // Per message type.
    let mut getspi = Message::new(SADB_GETSPI, SADB_SATYPE_ESP);
    getspi.src = Some(addr("10.0.0.1"));
    getspi.dst = Some(addr("10.0.0.2"));
    h.refused(A, &getspi, EINVAL, D::MissingRange);
    getspi.spirange = Some(SpiRange { min: 1, max: 255 });
    h.refused(A, &getspi, EINVAL, D::MalformedRange);
    let mut g = getspi.clone();
    g.src = None;
    h.refused(A, &g, EINVAL, D::MissingSrc);
    getspi.spirange = Some(SpiRange {
        min: 0x1000,
        max: 0x1000,
    });
    h.refused(A, &getspi, EEXIST, D::None);

    let mut up = sel(SADB_UPDATE, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2");
    up.key_auth = Key::new(&[1; 32]);
    h.refused(A, &up, EINVAL, D::AkeyPresent);
    up.key_auth = None;
    up.key_encrypt = Key::new(&[1; 20]);
    h.refused(A, &up, EINVAL, D::EkeyPresent);
    up.key_encrypt = None;
    up.sa.as_mut().unwrap().state = SADB_SASTATE_DYING;
    h.refused(A, &up, EINVAL, D::BadSastate);
    up.sa.as_mut().unwrap().state = SADB_SASTATE_MATURE;
    up.sa.as_mut().unwrap().flags = SADB_X_SAFLAGS_AALG1;
    h.refused(A, &up, EINVAL, D::BadSaflags);
    up.sa.as_mut().unwrap().flags = 0;
    up.replay_value = Some(ReplayValue {
        replay32: 9,
        replay64: 0,
    });
    h.refused(A, &up, EINVAL, D::BadSastate);
    up.replay_value = None;
    up.lifetime_hard = Some(Lifetime {
        usetime: 5,
        ..Lifetime::default()
    });
    up.lifetime_soft = Some(Lifetime {
        usetime: 6,
        ..Lifetime::default()
    });
    h.refused(A, &up, EINVAL, D::UsetimeHserr);
    up.lifetime_hard = None;
    up.lifetime_soft = None;
    up.outer_sens = Some(Sensitivity::default());
    h.refused(A, &up, EOPNOTSUPP, D::BadLabel);
    up.outer_sens = None;
    up.pair = Some(Pair { spi: 0x9999 });
    h.refused(A, &up, EINVAL, D::PairInappropriate);
    up.pair = None;
    up.sa.as_mut().unwrap().spi = 0x4444;
    h.refused(A, &up, ESRCH, D::SaNotfound);
    let mut upk = sel(SADB_UPDATE, SADB_SATYPE_AH, 0x3000, "10.0.0.1", "10.0.0.2");
    upk.kmc = Some(KmCookie {
        proto: 2,
        cookie: 5,
    });
    h.refused(A, &upk, EINVAL, D::DuplicateKmp);
    upk.kmc = Some(KmCookie {
        proto: 1,
        cookie: 6,
    });
    h.refused(A, &upk, EINVAL, D::DuplicateKmc);

    let updp = sel(
        SADB_X_UPDATEPAIR,
        SADB_SATYPE_ESP,
        0x1000,
        "10.0.0.1",
        "10.0.0.2",
    );
    h.refused(A, &updp, ESRCH, D::PairSaNotfound);
    let delp = sel(
        SADB_X_DELPAIR,
        SADB_SATYPE_ESP,
        0x1000,
        "10.0.0.1",
        "10.0.0.2",
    );
    h.refused(A, &delp, ESRCH, D::PairSaNotfound);
    let mut get = sel(SADB_GET, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2");
    get.key_encrypt = Key::new(&[1; 8]);
    h.refused(A, &get, EINVAL, D::EkeyPresent);
    get.key_encrypt = None;
    get.sa = None;
    h.refused(A, &get, EINVAL, D::MissingSa);
    let mut ds = sel(SADB_X_DELPAIR_STATE, 0, 0x1000, "10.0.0.1", "10.0.0.2");
    ds.sa.as_mut().unwrap().state = 9;
    h.refused(A, &ds, EINVAL, D::BadSastate);

    let mut flush = Message::new(SADB_FLUSH, 0);
    flush.sa = Some(sa_ext(1, 0, 0));
    h.refused(A, &flush, EINVAL, D::NoExt);
    h.refused(A, &Message::new(SADB_FLUSH, 7), EINVAL, D::UnknownSatype);
    let mut dump = Message::new(SADB_DUMP, 0);
    dump.pair = Some(Pair { spi: 3 });
    h.refused(A, &dump, EINVAL, D::NoExt);
    h.refused(A, &Message::new(SADB_REGISTER, 0), EINVAL, D::SatypeNeeded);
    let mut ereg = Message::new(SADB_REGISTER, 0);
    ereg.ereg = Some(Ereg { satypes: vec![9] });
    h.refused(A, &ereg, EINVAL, D::UnknownSatype);
    let mut reg = Message::new(SADB_REGISTER, SADB_SATYPE_ESP);
    reg.pair = Some(Pair { spi: 3 });
    h.refused(A, &reg, EINVAL, D::NoExt);
    let mut acq = Message::new(SADB_ACQUIRE, 0);
    acq.errno = EINVAL;
    h.refused(A, &acq, EINVAL, D::SatypeNeeded);
    let mut acq = Message::new(SADB_ACQUIRE, 0);
    acq.src = Some(addr("10.0.0.1"));
    acq.dst = Some(addr("10.0.0.2"));
    h.refused(A, &acq, EINVAL, D::SatypeNeeded);
    acq.src = None;
    h.refused(A, &acq, EINVAL, D::MissingSrc);
    let mut inv = Message::new(SADB_X_INVERSE_ACQUIRE, 0);
    inv.src = Some(addr("10.0.0.1"));
    inv.dst = Some(addr("10.0.0.2"));
    h.refused(A, &inv, ENOENT, D::None);
    inv.inner_src = Some(addr("10.0.0.1"));
    h.refused(A, &inv, EINVAL, D::MissingInnerDst);
    inv.inner_src = None;
    inv.inner_dst = Some(addr("10.0.0.1"));
    h.refused(A, &inv, EINVAL, D::MissingInnerSrc);
    inv.dst = None;
    h.refused(A, &inv, EINVAL, D::MissingDst);
    h.refused(
        A,
        &sel(SADB_EXPIRE, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2"),
        EOPNOTSUPP,
        D::None,
    );

    // Framing errors reach the engine's error path too.
    let good = esp_add(0x6000, "10.0.0.1", "10.0.0.2").emit().unwrap();
    h.refused_bytes(A, &good[..good.len() - 8], EMSGSIZE, D::None);
    h.refused_bytes(A, &good[..7], EMSGSIZE, D::None);
    let mut b = good.clone();
    b[1] = 77;
    h.refused_bytes(A, &b, EINVAL, D::UnknownMsg);
    let mut b = good.clone();
    b[18] = 99;
    h.refused_bytes(A, &b, EINVAL, D::UnknownExt);
    let mut b = good.clone();
    b.extend_from_slice(&good[16..32]);
    let w = (b.len() / 8) as u16;
    b[4..6].copy_from_slice(&w.to_ne_bytes());
    h.refused_bytes(A, &b, EINVAL, D::DuplicateSa);
}

#[test]
fn getspi_creates_a_larval_sa_that_update_matures_or_time_removes() {
    let mut h = H::new();
    let mut g = Message::new(SADB_GETSPI, SADB_SATYPE_ESP);
    g.seq = 9;
    g.src = Some(addr("10.0.0.1"));
    g.dst = Some(addr("10.0.0.2"));
    g.spirange = Some(SpiRange {
        min: 0,
        max: u32::MAX,
    });
    let (o, r) = h.ok(A, &g);
    assert_eq!(o.dest, Destination::All);
    let spi = r.sa.unwrap().spi;
    assert!(spi > 255);
    assert_eq!(r.sa.unwrap().state, SADB_SASTATE_LARVAL);
    let larval = h.get(SADB_SATYPE_ESP, spi, "10.0.0.1", "10.0.0.2").unwrap();
    assert_eq!(larval.sa.unwrap().state, SADB_SASTATE_LARVAL);

    // UPDATE with keys matures it.
    let mut up = esp_add(spi, "10.0.0.1", "10.0.0.2");
    up.msg_type = SADB_UPDATE;
    h.ok(B, &up);
    let m = h.get(SADB_SATYPE_ESP, spi, "10.0.0.1", "10.0.0.2").unwrap();
    assert_eq!(m.sa.unwrap().state, SADB_SASTATE_MATURE);
    assert_eq!(m.key_encrypt.unwrap().expose(), &[0x5a; 20]);
    // A second larval SA times out silently after the larval timeout.
    let r = h.send_at(1000, A, &g);
    let spi2 = r[0].1.sa.unwrap().spi;
    assert_eq!(
        h.e.poll_timeout(),
        Some(1090.min(h.e.poll_timeout().unwrap()))
    );
    h.e.handle_timeout(1089);
    assert!(h.drain().is_empty());
    assert!(h
        .get(SADB_SATYPE_ESP, spi2, "10.0.0.1", "10.0.0.2")
        .is_some());
    h.e.handle_timeout(1090);
    assert!(h.drain().is_empty(), "larval timeout sends nothing");
    assert!(h
        .get(SADB_SATYPE_ESP, spi2, "10.0.0.1", "10.0.0.2")
        .is_none());
    assert!(matches!(
        h.e.poll_event(),
        Some(EngineEvent::LarvalExpired { key }) if key.spi == spi2
    ));
    // The matured SA stays.
    assert!(h
        .get(SADB_SATYPE_ESP, spi, "10.0.0.1", "10.0.0.2")
        .is_some());
    // Spurious timeouts do nothing.
    let d = h.e.state_digest();
    h.e.handle_timeout(1090);
    h.e.handle_timeout(1090);
    assert_eq!(h.e.state_digest(), d);
}

/// `poll_timeout` reads the larval and acquire timeouts from ordered indexes: they must
/// follow every GETSPI, UPDATE, DELETE, FLUSH, ACQUIRE and its answers. (Aging is pushed
/// far away so that only these timers show.)
#[test]
fn timer_indexes_follow_every_change() {
    let cfg = EngineConfig {
        age_interval: 1 << 40,
        ..EngineConfig::default()
    };
    let mut h = H {
        e: KeyEngine::new(
            ipsec_core::Sadb::new(),
            cfg,
            ipsec_pfkey::rng::SeededRng::new(1),
        ),
    };
    h.e.open(A);
    h.e.open(B);
    h.e.handle_timeout(0);
    let timer = |h: &H| h.e.poll_timeout().filter(|t| *t < 1 << 40);
    assert_eq!(timer(&h), None);
    let larval = |h: &mut H, now: u64| {
        let mut g = Message::new(SADB_GETSPI, SADB_SATYPE_ESP);
        g.src = Some(addr("10.0.0.1"));
        g.dst = Some(addr("10.0.0.2"));
        g.spirange = Some(SpiRange {
            min: 0,
            max: u32::MAX,
        });
        h.send_at(now, A, &g)[0].1.sa.unwrap().spi
    };
    let s1 = larval(&mut h, 1000);
    let s2 = larval(&mut h, 1010);
    assert_eq!(timer(&h), Some(1090));
    // Matured: its timeout goes.
    let mut up = esp_add(s1, "10.0.0.1", "10.0.0.2");
    up.msg_type = SADB_UPDATE;
    h.send_at(1020, B, &up);
    assert_eq!(timer(&h), Some(1100));
    // Deleted: its timeout goes.
    h.send_at(
        1020,
        A,
        &sel(SADB_DELETE, SADB_SATYPE_ESP, s2, "10.0.0.1", "10.0.0.2"),
    );
    assert_eq!(timer(&h), None);
    // Flushed.
    larval(&mut h, 1030);
    assert_eq!(timer(&h), Some(1120));
    h.send_at(1030, A, &Message::new(SADB_FLUSH, SADB_SATYPE_ESP));
    assert_eq!(timer(&h), None);
    // Timed out, in deadline order.
    let s3 = larval(&mut h, 1050);
    let s4 = larval(&mut h, 1040);
    assert_eq!(timer(&h), Some(1130));
    h.e.handle_timeout(1140);
    let spis: Vec<u32> = std::iter::from_fn(|| h.e.poll_event())
        .map(|e| match e {
            EngineEvent::LarvalExpired { key } => key.spi,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(spis, vec![s4, s3]);
    assert_eq!(timer(&h), None);

    // ACQUIREs: answered by an ADD with its seq, refused by the key manager, expired, or
    // sent again after expiring.
    h.ok(B, &Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    let sent = |h: &mut H, now: u64, dst: &str| match h.e.acquire(now, &need(dst)) {
        AcquireOutcome::Sent { seq, .. } => {
            h.drain();
            seq
        }
        other => panic!("{other:?}"),
    };
    let q1 = sent(&mut h, 2000, "10.0.0.2");
    let q2 = sent(&mut h, 2005, "10.0.0.3");
    assert_eq!(timer(&h), Some(2015));
    let mut add = esp_add(0x3000, "10.0.0.1", "10.0.0.2");
    add.seq = q1;
    h.send_at(2006, B, &add);
    assert_eq!(timer(&h), Some(2020));
    let mut fail = Message::new(SADB_ACQUIRE, SADB_SATYPE_ESP);
    fail.seq = q2;
    fail.errno = ENOENT;
    h.send_at(2007, B, &fail);
    assert_eq!(timer(&h), None);
    let q3 = sent(&mut h, 2010, "10.0.0.4");
    assert_eq!(timer(&h), Some(2025));
    let q4 = sent(&mut h, 2030, "10.0.0.4");
    assert_ne!(q3, q4);
    assert_eq!(timer(&h), Some(2045));
    while h.e.poll_event().is_some() {}
    h.e.handle_timeout(2045);
    assert_eq!(
        h.e.poll_event(),
        Some(EngineEvent::AcquireExpired { seq: q4 })
    );
    assert_eq!(h.e.poll_event(), None);
    assert_eq!(timer(&h), None);
}

fn getspi(h: &mut H, proto: u8, dst: &str, min: u32, max: u32) -> Result<u32, (u8, u16)> {
    let mut g = Message::new(SADB_GETSPI, proto);
    g.src = Some(addr("10.0.0.1"));
    g.dst = Some(addr(dst));
    g.spirange = Some(SpiRange { min, max });
    let out = h.send(A, &g);
    let r = &out.iter().find(|(o, _)| o.to.contains(&A)).unwrap().1;
    if r.errno == 0 {
        Ok(r.sa.unwrap().spi)
    } else {
        Err((r.errno, r.diagnostic))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// SPIs come from the range, are never 0..=255, are unique per (dst, proto), and the
    /// range runs out with EEXIST.
    #[test]
    fn getspi_ranges(min in prop_oneof![0u32..300, 256u32..0x1_0000, any::<u32>()], width in 0u32..6, extra in 0u32..4) {
        let mut h = H::new();
        let max = min.saturating_add(width);
        let lo = min.max(256);
        if lo > max {
            prop_assert_eq!(getspi(&mut h, SADB_SATYPE_ESP, "10.0.0.2", min, max), Err((EINVAL, D::MalformedRange.code())));
            return Ok(());
        }
        let size = (max - lo) as usize + 1;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..size {
            let spi = getspi(&mut h, SADB_SATYPE_ESP, "10.0.0.2", min, max).unwrap();
            prop_assert!(spi >= lo && spi <= max && spi > 255);
            prop_assert!(seen.insert(spi), "duplicate SPI {}", spi);
        }
        for _ in 0..=extra {
            prop_assert_eq!(getspi(&mut h, SADB_SATYPE_ESP, "10.0.0.2", min, max), Err((EEXIST, 0)));
        }
        // Another destination or protocol has its own SPI space.
        prop_assert!(getspi(&mut h, SADB_SATYPE_AH, "10.0.0.2", min, max).is_ok());
        prop_assert!(getspi(&mut h, SADB_SATYPE_ESP, "10.0.0.3", min, max).is_ok());
    }
}

#[test]
fn getspi_in_a_nearly_full_range_finds_the_free_spi() {
    let mut h = H::new();
    for spi in 1000..1100u32 {
        if spi != 1057 {
            h.ok(A, &esp_add(spi, "10.0.0.1", "10.0.0.2"));
        }
    }
    assert_eq!(
        getspi(&mut h, SADB_SATYPE_ESP, "10.0.0.2", 1000, 1099),
        Ok(1057)
    );
    assert_eq!(
        getspi(&mut h, SADB_SATYPE_ESP, "10.0.0.2", 1000, 1099),
        Err((EEXIST, 0))
    );
}

fn need(dst: &str) -> AcquireRequest {
    AcquireRequest {
        need: AcquireNeed {
            proto: Proto::Esp,
            src: addr("10.0.0.1"),
            dst: addr(dst),
            inner_src: None,
            inner_dst: None,
        },
        proposal: Proposal {
            replay: 64,
            combs: vec![Comb {
                encrypt: 20,
                encrypt_minbits: 128,
                encrypt_maxbits: 256,
                encrypt_saltbits: 32,
                soft_addtime: 24000,
                hard_addtime: 28800,
                ..Comb::default()
            }],
        },
        eprop: None,
        kmc: None,
        ident_src: None,
        ident_dst: None,
    }
}

#[test]
fn register_then_acquire_with_suppression_and_resolution() {
    let mut h = H::new();
    let (o, r) = h.ok(B, &Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    assert_eq!(o.dest, Destination::Registered(SADB_SATYPE_ESP));
    assert_eq!(o.to, vec![B]);
    assert!(r
        .supported_encrypt
        .as_ref()
        .unwrap()
        .algs
        .iter()
        .any(|a| a.id == 20 && a.saltbits == 32));
    assert!(r
        .supported_auth
        .as_ref()
        .unwrap()
        .algs
        .iter()
        .any(|a| a.id == 5));
    assert!(h.e.is_registered(B, SADB_SATYPE_ESP));
    // AH registration: no encryption list.
    let (_, r) = h.ok(A, &Message::new(SADB_REGISTER, SADB_SATYPE_AH));
    assert!(r.supported_encrypt.is_none());

    let out = h.e.acquire(0, &need("10.0.0.2"));
    let AcquireOutcome::Sent {
        seq,
        key_managers: 1,
    } = out
    else {
        panic!("{out:?}")
    };
    let msgs = h.drain();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].0.to, vec![B]);
    let acq = &msgs[0].1;
    assert_eq!((acq.msg_type, acq.seq, acq.pid), (SADB_ACQUIRE, seq, 0));
    assert_eq!(acq.proposal.as_ref().unwrap().combs[0].encrypt, 20);

    // Suppressed for the acquire timeout; another need is not.
    assert_eq!(
        h.e.acquire(14, &need("10.0.0.2")),
        AcquireOutcome::Suppressed { seq }
    );
    assert!(h.drain().is_empty());
    assert!(matches!(
        h.e.acquire(14, &need("10.0.0.3")),
        AcquireOutcome::Sent { .. }
    ));
    h.drain();
    assert_eq!(h.e.poll_timeout(), Some(15));
    h.e.handle_timeout(15);
    assert_eq!(h.e.poll_event(), Some(EngineEvent::AcquireExpired { seq }));
    let AcquireOutcome::Sent { seq: seq2, .. } = h.e.acquire(15, &need("10.0.0.2")) else {
        panic!()
    };
    assert_ne!(seq2, seq);
    h.drain();

    // The key manager answers with the ACQUIRE's sequence number: resolved.
    let mut add = esp_add(0x7000, "10.0.0.1", "10.0.0.2");
    add.seq = seq2;
    h.ok(B, &add);
    assert_eq!(
        h.e.poll_event(),
        Some(EngineEvent::AcquireResolved { seq: seq2 })
    );
    assert!(matches!(
        h.e.acquire(16, &need("10.0.0.2")),
        AcquireOutcome::Sent { .. }
    ));
    h.drain();

    // Key manager failure: ACQUIRE with an errno and the sequence number; no reply.
    let AcquireOutcome::Suppressed { seq: s3 } = h.e.acquire(16, &need("10.0.0.2")) else {
        panic!()
    };
    let mut fail = Message::new(SADB_ACQUIRE, SADB_SATYPE_ESP);
    fail.errno = ENOENT;
    fail.seq = s3;
    assert!(h.send(B, &fail).is_empty());
    assert_eq!(
        h.e.poll_event(),
        Some(EngineEvent::AcquireFailed {
            seq: s3,
            errno: ENOENT
        })
    );

    // A client-originated ACQUIRE is passed to the registered key managers.
    let mut a = Message::new(SADB_ACQUIRE, SADB_SATYPE_ESP);
    a.src = Some(addr("10.0.0.1"));
    a.dst = Some(addr("10.0.0.9"));
    a.proposal = need("x.0.0.0".replace("x", "10").as_str()).proposal.into();
    let out = h.send(A, &a);
    assert_eq!(out[0].0.to, vec![B]);

    // Nobody registered: nothing reaches anyone but the need is remembered.
    let mut h2 = H::new();
    assert!(matches!(
        h2.e.acquire(0, &need("10.0.0.2")),
        AcquireOutcome::Sent {
            key_managers: 0,
            ..
        }
    ));
    assert!(h2.drain().is_empty());
}

#[test]
fn extended_register_and_extended_acquire() {
    let mut h = H::new();
    let mut ereg = Message::new(SADB_REGISTER, 0);
    ereg.seq = 3;
    ereg.ereg = Some(Ereg {
        satypes: vec![SADB_SATYPE_AH, SADB_SATYPE_ESP],
    });
    let out = h.send(A, &ereg);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].1.satype, SADB_SATYPE_AH);
    assert_eq!(out[1].1.satype, SADB_SATYPE_ESP);
    assert!(out
        .iter()
        .all(|(o, _)| o.dest == Destination::ExtendedRegistered && o.to == vec![A]));
    h.refused(
        A,
        &Message::new(SADB_REGISTER, SADB_SATYPE_ESP),
        EBUSY,
        D::None,
    );
    h.ok(B, &Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    h.refused(B, &ereg, EBUSY, D::None);
    h.e.acquire(0, &need("10.0.0.2"));
    let out = h.drain();
    assert_eq!(out.len(), 2);
    let (reg, ext): (Vec<_>, Vec<_>) = out.into_iter().partition(|(_, m)| m.satype != 0);
    assert_eq!(reg[0].0.to, vec![B]);
    assert_eq!(ext[0].0.to, vec![A]);
    let ep = ext[0].1.eprop.as_ref().unwrap();
    assert_eq!(ep.ecombs[0].algs[0].algtype, SADB_X_ALGTYPE_CRYPT);
    assert_eq!(ep.ecombs[0].algs[0].alg, 20);
}

#[test]
fn soft_and_hard_expire_with_an_injected_clock() {
    let mut h = H::new();
    let mut m = esp_add(0x1234, "10.0.0.1", "10.0.0.2");
    m.lifetime_soft = Some(Lifetime {
        addtime: 10,
        ..Lifetime::default()
    });
    m.lifetime_hard = Some(Lifetime {
        addtime: 20,
        ..Lifetime::default()
    });
    h.send_at(1000, A, &m);
    let mut idle = esp_add(0x4321, "10.0.0.1", "10.0.0.2");
    idle.lifetime_idle = Some(Lifetime {
        addtime: 15,
        ..Lifetime::default()
    });
    h.send_at(1000, A, &idle);
    h.e.handle_timeout(1009);
    assert!(h.drain().is_empty());
    h.e.handle_timeout(1010);
    let out = h.drain();
    assert_eq!(out.len(), 1);
    let (o, x) = &out[0];
    assert_eq!(o.dest, Destination::All);
    assert_eq!(o.to, vec![A, B, MON]);
    assert_eq!(x.msg_type, SADB_EXPIRE);
    assert_eq!(x.sa.unwrap().state, SADB_SASTATE_DYING);
    assert_eq!(x.lifetime_soft.unwrap().addtime, 10);
    assert!(x.lifetime_hard.is_none());
    assert_eq!(x.lifetime_current.unwrap().addtime, 1000);
    assert!(x.key_encrypt.is_none());
    let id =
        h.e.sadb()
            .lookup(Proto::Esp, "10.0.0.2".parse().unwrap(), 0x1234, None)
            .unwrap();
    assert_eq!(h.e.sadb().get(id).unwrap().state(), SaState::Dying);
    h.e.handle_timeout(1011);
    assert!(h.drain().is_empty(), "soft expiry fires once");
    h.e.handle_timeout(1015);
    let out = h.drain();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].1.sa.unwrap().spi, 0x4321);
    assert!(out[0].1.lifetime_idle.is_some());
    h.e.handle_timeout(1020);
    let out = h.drain();
    assert_eq!(out.len(), 1);
    let x = &out[0].1;
    assert_eq!(x.sa.unwrap().state, SADB_SASTATE_DEAD);
    assert_eq!(x.lifetime_hard.unwrap().addtime, 20);
    assert!(h.e.sadb().is_empty());
    let evs: Vec<_> = std::iter::from_fn(|| h.e.poll_event()).collect();
    assert_eq!(evs.len(), 3, "{evs:?}");
}

#[test]
fn mature_update_changes_lifetimes_and_updatepair_both() {
    let mut h = H::new();
    h.ok(A, &esp_add(0x1001, "10.0.0.2", "10.0.0.1"));
    let mut b = esp_add(0x1000, "10.0.0.1", "10.0.0.2");
    b.pair = Some(Pair { spi: 0x1001 });
    let (_, r) = h.ok(A, &b);
    assert_ne!(r.sa.unwrap().flags & SADB_X_SAFLAGS_PAIRED, 0);
    let g = h
        .get(SADB_SATYPE_ESP, 0x1001, "10.0.0.2", "10.0.0.1")
        .unwrap();
    assert_eq!(g.pair.unwrap().spi, 0x1000);

    let mut up = sel(
        SADB_X_UPDATEPAIR,
        SADB_SATYPE_ESP,
        0x1000,
        "10.0.0.1",
        "10.0.0.2",
    );
    up.lifetime_hard = Some(Lifetime {
        addtime: 500,
        ..Lifetime::default()
    });
    let (o, _) = h.ok(B, &up);
    assert_eq!(o.dest, Destination::All);
    for (spi, s, d) in [
        (0x1000, "10.0.0.1", "10.0.0.2"),
        (0x1001, "10.0.0.2", "10.0.0.1"),
    ] {
        let g = h.get(SADB_SATYPE_ESP, spi, s, d).unwrap();
        assert_eq!(g.lifetime_hard.unwrap().addtime, 500);
    }
    let mut up1 = sel(SADB_UPDATE, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2");
    up1.lifetime_soft = Some(Lifetime {
        addtime: 400,
        ..Lifetime::default()
    });
    h.ok(B, &up1);
    assert_eq!(
        h.get(SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2")
            .unwrap()
            .lifetime_soft
            .unwrap()
            .addtime,
        400
    );
    assert!(h
        .get(SADB_SATYPE_ESP, 0x1001, "10.0.0.2", "10.0.0.1")
        .unwrap()
        .lifetime_soft
        .is_none());

    // Pairing a third SA with an already-paired one is refused.
    let mut c = esp_add(0x1002, "10.0.0.1", "10.0.0.2");
    c.pair = Some(Pair { spi: 0x1001 });
    h.refused(A, &c, EINVAL, D::PairAlready);

    // DELETE of one half unpairs the other.
    h.ok(
        A,
        &sel(SADB_DELETE, SADB_SATYPE_ESP, 0x1001, "10.0.0.2", "10.0.0.1"),
    );
    let g = h
        .get(SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2")
        .unwrap();
    assert!(g.pair.is_none());
    assert_eq!(g.sa.unwrap().flags & SADB_X_SAFLAGS_PAIRED, 0);

    // Pair after the fact with UPDATE + X_PAIR, then DELPAIR removes both.
    h.ok(A, &esp_add(0x1003, "10.0.0.2", "10.0.0.1"));
    let mut up2 = sel(SADB_UPDATE, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2");
    up2.pair = Some(Pair { spi: 0x1003 });
    h.ok(A, &up2);
    assert_eq!(
        h.get(SADB_SATYPE_ESP, 0x1003, "10.0.0.2", "10.0.0.1")
            .unwrap()
            .pair
            .unwrap()
            .spi,
        0x1000
    );
    h.ok(
        A,
        &sel(
            SADB_X_DELPAIR,
            SADB_SATYPE_ESP,
            0x1003,
            "10.0.0.2",
            "10.0.0.1",
        ),
    );
    assert!(h.e.sadb().is_empty());

    // DELPAIR_STATE deletes every SA in a state from a source, with its pair.
    h.ok(A, &esp_add(0x2001, "10.0.0.2", "10.0.0.1"));
    let mut p = esp_add(0x2000, "10.0.0.1", "10.0.0.2");
    p.pair = Some(Pair { spi: 0x2001 });
    h.ok(A, &p);
    h.ok(A, &ah_add(0x2002, "10.0.0.5", "10.0.0.2"));
    let ds = sel(SADB_X_DELPAIR_STATE, 0, 0, "10.0.0.1", "10.0.0.2");
    let (o, _) = h.ok(
        A,
        &Message {
            sa: Some(SaExt {
                state: SADB_SASTATE_MATURE,
                ..SaExt::default()
            }),
            ..ds
        },
    );
    assert_eq!(o.dest, Destination::All);
    assert_eq!(h.e.sadb().len(), 1);
}

#[test]
fn dying_outbound_sa_takes_a_replay_value() {
    let mut h = H::new();
    let mut m = esp_add(0x1234, "10.0.0.1", "10.0.0.2");
    m.sa.as_mut().unwrap().flags = SADB_X_SAFLAGS_OUTBOUND;
    m.lifetime_soft = Some(Lifetime {
        addtime: 1,
        ..Lifetime::default()
    });
    h.send_at(100, A, &m);
    h.e.handle_timeout(101);
    h.drain();
    let mut up = sel(SADB_UPDATE, SADB_SATYPE_ESP, 0x1234, "10.0.0.1", "10.0.0.2");
    up.replay_value = Some(ReplayValue {
        replay32: 77,
        replay64: 0,
    });
    h.ok(A, &up);
    let id =
        h.e.sadb()
            .lookup(Proto::Esp, "10.0.0.2".parse().unwrap(), 0x1234, None)
            .unwrap();
    assert_eq!(h.e.sadb().get(id).unwrap().seq_out(), 77);
    // Not on an inbound one.
    let mut m = esp_add(0x1235, "10.0.0.1", "10.0.0.2");
    m.lifetime_soft = Some(Lifetime {
        addtime: 1,
        ..Lifetime::default()
    });
    h.send_at(100, A, &m);
    h.e.handle_timeout(102);
    h.drain();
    up.sa.as_mut().unwrap().spi = 0x1235;
    h.refused(A, &up, EOPNOTSUPP, D::InvalidReplay);
}

#[test]
fn dump_ends_with_sequence_zero_and_flush_empties() {
    let mut h = H::new();
    let mut d = Message::new(SADB_DUMP, 0);
    d.seq = 42;
    d.pid = 7;
    let out = h.send(A, &d);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].1.seq, out[0].1.pid, out[0].1.has_extensions()),
        (0, 7, false)
    );
    h.ok(A, &esp_add(0x1000, "10.0.0.1", "10.0.0.2"));
    h.ok(A, &esp_add(0x1001, "10.0.0.1", "10.0.0.2"));
    h.ok(A, &ah_add(0x1002, "10.0.0.1", "10.0.0.2"));
    let out = h.send(A, &d);
    assert_eq!(out.len(), 4);
    for (o, m) in &out[..3] {
        assert_eq!(o.to, vec![A]);
        assert_eq!((m.msg_type, m.seq, m.pid), (SADB_DUMP, 42, 7));
        assert!(m.key_encrypt.is_some() || m.key_auth.is_some());
    }
    assert_eq!(out[3].1.seq, 0);
    // Per type, and the extended dump of SAs idle long enough.
    let mut dah = d.clone();
    dah.satype = SADB_SATYPE_AH;
    assert_eq!(h.send(A, &dah).len(), 2);
    let mut ed = d.clone();
    ed.edump = Some(Edump { timeout: 50 });
    assert_eq!(h.send_at(120, A, &ed).len(), 1);
    assert_eq!(h.send_at(150, A, &ed).len(), 4);
    // An SA deleted while a dump is pending is skipped.
    h.e.handle(200, A, &d.emit().unwrap());
    assert!(
        h.e.poll_output().is_none(),
        "DUMP records come from poll_dump"
    );
    let first = h.e.poll_dump(A).unwrap();
    check_output(&first.bytes).unwrap();
    h.e.handle(
        200,
        B,
        &sel(SADB_DELETE, SADB_SATYPE_AH, 0x1002, "10.0.0.1", "10.0.0.2")
            .emit()
            .unwrap(),
    );
    let rest = h.drain();
    assert_eq!(
        rest.iter().filter(|(_, m)| m.msg_type == SADB_DUMP).count(),
        2
    );

    let (o, f) = h.ok(B, &Message::new(SADB_FLUSH, SADB_SATYPE_ESP));
    assert_eq!(o.dest, Destination::All);
    assert!(!f.has_extensions());
    assert_eq!(h.e.sadb().len(), 0);
    h.ok(A, &ah_add(0x1002, "10.0.0.1", "10.0.0.2"));
    h.ok(B, &Message::new(SADB_FLUSH, 0));
    assert!(h.e.sadb().is_empty());
}

/// DUMP records are pulled per client, one per `poll_dump`, at the caller's pace: other
/// traffic goes on meanwhile, each dump stays in order and ends with seq 0, a client's
/// dumps are served oldest first, and a client that goes away abandons its dumps.
#[test]
fn poll_dump_is_per_client_and_paced_by_the_caller() {
    let mut h = H::new();
    for i in 0..10u32 {
        h.ok(A, &esp_add(0x1000 + i, "10.0.0.1", "10.0.0.2"));
    }
    let dump = |seq: u32, satype: u8| {
        let mut d = Message::new(SADB_DUMP, satype);
        d.seq = seq;
        d.pid = 9;
        d.emit().unwrap()
    };
    assert!(!h.e.has_dump(A));
    assert!(h.e.poll_dump(A).is_none());
    h.e.handle(100, A, &dump(1, 0));
    h.e.handle(100, A, &dump(2, SADB_SATYPE_ESP));
    h.e.handle(100, B, &dump(3, 0));
    assert!(
        h.e.poll_output().is_none(),
        "no DUMP record from poll_output"
    );
    assert_eq!(h.e.dump_clients().collect::<Vec<_>>(), vec![A, B]);
    assert!(h.e.has_dump(A) && h.e.has_dump(B) && !h.e.has_dump(MON));

    let next = |h: &mut H, c: ClientId| {
        let o = h.e.poll_dump(c).unwrap();
        assert_eq!(o.dest, Destination::Sender(c));
        assert_eq!(o.to, vec![c]);
        check_output(&o.bytes).unwrap()
    };
    // Three records of A's first dump, then other traffic: its reply comes out at once.
    for i in 0..3u32 {
        let r = next(&mut h, A);
        assert_eq!((r.msg_type, r.seq, r.pid), (SADB_DUMP, 1, 9));
        assert_eq!(r.sa.unwrap().spi, 0x1000 + i);
    }
    h.e.handle(
        100,
        B,
        &esp_add(0x2000, "10.0.0.1", "10.0.0.3").emit().unwrap(),
    );
    h.e.handle(
        100,
        B,
        &sel(SADB_DELETE, SADB_SATYPE_ESP, 0x1005, "10.0.0.1", "10.0.0.2")
            .emit()
            .unwrap(),
    );
    let out: Vec<Output> = std::iter::from_fn(|| h.e.poll_output()).collect();
    let types: Vec<u8> = out
        .iter()
        .map(|o| check_output(&o.bytes).unwrap().msg_type)
        .collect();
    assert_eq!(types, vec![SADB_ADD, SADB_DELETE], "the echoes, at once");
    // The rest of the first dump: in SADB order, without the deleted SA nor the SA added
    // after the request, then seq 0.
    let mut spis = Vec::new();
    loop {
        let r = next(&mut h, A);
        assert_eq!((r.msg_type, r.pid), (SADB_DUMP, 9));
        if r.seq == 0 {
            assert_eq!((r.errno, r.satype, r.has_extensions()), (0, 0, false));
            break;
        }
        assert_eq!(r.seq, 1);
        spis.push(r.sa.unwrap().spi);
    }
    assert_eq!(spis, vec![0x1003, 0x1004, 0x1006, 0x1007, 0x1008, 0x1009]);
    // A's second dump follows.
    assert!(h.e.has_dump(A));
    let r = next(&mut h, A);
    assert_eq!((r.seq, r.sa.unwrap().spi), (2, 0x1000));
    // A goes away: its dump is abandoned; B's is untouched.
    h.e.close(A);
    assert!(!h.e.has_dump(A));
    assert!(h.e.poll_dump(A).is_none());
    assert_eq!(h.e.dump_clients().collect::<Vec<_>>(), vec![B]);
    let recs: Vec<Message> = std::iter::from_fn(|| h.e.poll_dump(B))
        .map(|o| check_output(&o.bytes).unwrap())
        .collect();
    assert_eq!(
        recs.len(),
        10,
        "9 SAs of the snapshot (one deleted), then the end"
    );
    assert!(recs[..9].iter().all(|r| r.seq == 3));
    assert_eq!(recs[9].seq, 0);
    assert!(h.e.dump_clients().next().is_none());
}

/// A promiscuous client gets every DUMP record too, as it is pulled.
#[test]
fn promiscuous_clients_see_everything() {
    let mut h = H::new();
    let (o, _) = h.ok(MON, &Message::new(SADB_X_PROMISC, 1));
    assert_eq!(o.dest, Destination::Sender(MON));
    assert!(h.e.is_promisc(MON));
    // Another client's GET reply, error, DUMP, REGISTER reply and an ACQUIRE.
    h.ok(A, &esp_add(0x1000, "10.0.0.1", "10.0.0.2"));
    let out = h.send(
        A,
        &sel(SADB_GET, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2"),
    );
    assert_eq!(out[0].0.to, vec![A, MON]);
    let out = h.send(
        A,
        &sel(SADB_GET, SADB_SATYPE_ESP, 0x9999, "10.0.0.1", "10.0.0.2"),
    );
    assert_eq!(out[0].0.to, vec![A, MON]);
    assert_ne!(out[0].1.errno, 0);
    let out = h.send(B, &Message::new(SADB_DUMP, 0));
    assert!(out.iter().all(|(o, _)| o.to == vec![B, MON]));
    let out = h.send(B, &Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    assert_eq!(out[0].0.to, vec![B, MON]);
    h.e.acquire(0, &need("10.0.0.2"));
    let out = h.drain();
    assert_eq!(out[0].0.to, vec![B, MON]);
    // Off again.
    h.ok(MON, &Message::new(SADB_X_PROMISC, 0));
    let out = h.send(
        A,
        &sel(SADB_GET, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2"),
    );
    assert_eq!(out[0].0.to, vec![A]);
    h.e.close(B);
    assert!(!h.e.is_registered(B, SADB_SATYPE_ESP));
}

struct Policy;
impl PolicyQuery for Policy {
    fn inverse_acquire(&self, q: &InverseQuery) -> Result<EProp, u8> {
        if q.dst.ip().to_string() == "10.0.0.2" {
            Ok(ipsec_pfkey::engine::eprop_from_proposal(
                Proto::Esp,
                &need("10.0.0.2").proposal,
            ))
        } else {
            Err(ENOENT)
        }
    }
}

#[test]
fn inverse_acquire_asks_the_policy() {
    let mut h = H::new();
    h.e.set_policy(Box::new(Policy));
    let mut inv = Message::new(SADB_X_INVERSE_ACQUIRE, 0);
    inv.seq = 8;
    inv.src = Some(addr("10.0.0.1"));
    inv.dst = Some(addr("10.0.0.2"));
    let (o, r) = h.ok(A, &inv);
    assert_eq!(o.dest, Destination::Sender(A));
    assert_eq!(r.eprop.unwrap().ecombs.len(), 1);
    inv.dst = Some(addr("10.0.0.3"));
    h.refused(A, &inv, ENOENT, D::None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Mutated seed messages through the fuzz body: outputs canonical, refusals change
    /// nothing.
    #[test]
    fn mutated_seeds_keep_the_invariants(i in 0usize..64, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4)) {
        let seeds = ipsec_pfkey::fuzz_support::seed_messages();
        let mut b = seeds[i % seeds.len()].1.emit().unwrap();
        for (at, x) in flips {
            let n = b.len();
            b[at % n] ^= x;
        }
        prop_assert_eq!(ipsec_pfkey::fuzz_support::pfkey_decode(&b), Ok(()));
    }
}
