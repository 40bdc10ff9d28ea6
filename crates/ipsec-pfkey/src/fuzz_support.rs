//! The body of the `pfkey_decode` fuzz target (`fuzz/fuzz_targets/pfkey_decode.rs`) and its
//! seed messages, kept in the library so that an ordinary test replays the committed fuzz
//! inputs through the same code.
//!
//! The function returns `Err` with a description when an invariant is broken (the fuzz
//! target then panics); any panic inside is a bug too.

use std::net::{IpAddr, SocketAddr};

use crate::consts::*;
use crate::engine::{ClientId, KeyEngine};
use crate::wire::{
    Address, Comb, Edump, Ereg, Flow, Identity, Key, KmCookie, Lifetime, Message, Pair, PfkeyError,
    Proposal, SaExt, SpiRange,
};

/// The client the fuzzed message comes from.
pub const FUZZ_CLIENT: ClientId = ClientId(1);
/// A registered key manager.
pub const KM_CLIENT: ClientId = ClientId(2);
/// A promiscuous monitor.
pub const MONITOR_CLIENT: ClientId = ClientId(3);

fn a(s: &str) -> Address {
    let ip: IpAddr = s
        .parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    Address::new(SocketAddr::new(ip, 0))
}

fn key(len: usize, fill: u8) -> Option<Key> {
    Key::new(&vec![fill; len])
}

fn sa(spi: u32, auth: u8, encrypt: u8) -> SaExt {
    SaExt {
        spi,
        replay: 32,
        state: SADB_SASTATE_MATURE,
        auth,
        encrypt,
        flags: 0,
    }
}

/// ESP AES-GCM-16 (20) 10.0.0.1 → 10.0.0.2, SPI 0x1000, paired with 0x1001 when `pair`.
fn add_esp(spi: u32, src: &str, dst: &str, pair: Option<u32>) -> Message {
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_ESP);
    m.seq = 10;
    m.pid = 100;
    m.sa = Some(sa(spi, SADB_AALG_NONE, 20));
    m.src = Some(a(src));
    m.dst = Some(a(dst));
    m.key_encrypt = key(20, 0x42);
    m.lifetime_hard = Some(Lifetime {
        addtime: 3600,
        ..Lifetime::default()
    });
    m.lifetime_soft = Some(Lifetime {
        addtime: 3000,
        ..Lifetime::default()
    });
    m.pair = pair.map(|spi| Pair { spi });
    m
}

/// Valid messages of every type, named, against the fixture SADB of [`fixture`].
pub fn seed_messages() -> Vec<(&'static str, Message)> {
    let mut v = Vec::new();
    let mut getspi = Message::new(SADB_GETSPI, SADB_SATYPE_ESP);
    getspi.seq = 1;
    getspi.src = Some(a("10.0.0.1"));
    getspi.dst = Some(a("10.0.0.2"));
    getspi.spirange = Some(SpiRange {
        min: 0x100,
        max: 0xffff_ffff,
    });
    v.push(("getspi", getspi));

    let mut update = Message::new(SADB_UPDATE, SADB_SATYPE_ESP);
    update.sa = Some(sa(0x3000, 5, 12));
    update.src = Some(a("10.0.0.1"));
    update.dst = Some(a("10.0.0.2"));
    update.key_encrypt = key(16, 0x11);
    update.key_auth = key(32, 0x22);
    v.push(("update-larval", update));

    let mut update2 = Message::new(SADB_UPDATE, SADB_SATYPE_ESP);
    update2.sa = Some(sa(0x1000, 0, 20));
    update2.src = Some(a("10.0.0.1"));
    update2.dst = Some(a("10.0.0.2"));
    update2.lifetime_hard = Some(Lifetime {
        addtime: 7200,
        bytes: 1 << 30,
        ..Lifetime::default()
    });
    v.push(("update-mature", update2));

    v.push(("add-esp", add_esp(0x4000, "10.0.0.1", "10.0.0.3", None)));
    let mut add_ah = Message::new(SADB_ADD, SADB_SATYPE_AH);
    add_ah.sa = Some(sa(0x5000, 5, 0));
    add_ah.src = Some(a("2001:db8::1"));
    add_ah.dst = Some(a("2001:db8::3"));
    add_ah.key_auth = key(32, 0x33);
    add_ah.ident_src = Some(Identity {
        kind: SADB_IDENTTYPE_FQDN,
        id: 0,
        value: b"a.example".to_vec(),
    });
    add_ah.kmc = Some(KmCookie {
        proto: SADB_X_KMP_IKE,
        cookie: 7,
    });
    v.push(("add-ah", add_ah));

    let mut tunnel = add_esp(0x6000, "192.0.2.1", "192.0.2.2", None);
    tunnel.inner_src = Some(Address {
        proto: 6,
        prefixlen: 24,
        ..a("10.1.0.0")
    });
    tunnel.inner_dst = Some(Address {
        proto: 6,
        prefixlen: 24,
        ..a("10.2.0.0")
    });
    tunnel.natt_loc = Some(Address::new(
        "192.0.2.1:4500"
            .parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
    ));
    if let Some(s) = tunnel.sa.as_mut() {
        s.flags = SADB_X_SAFLAGS_TUNNEL | SADB_X_SAFLAGS_NATT_LOC;
    }
    v.push(("add-tunnel-natt", tunnel));

    for (name, t) in [
        ("delete", SADB_DELETE),
        ("get", SADB_GET),
        ("delpair", SADB_X_DELPAIR),
    ] {
        let mut m = Message::new(t, SADB_SATYPE_ESP);
        m.sa = Some(sa(0x1000, 0, 0));
        m.dst = Some(a("10.0.0.2"));
        m.src = Some(a("10.0.0.1"));
        v.push((name, m));
    }
    let mut up = Message::new(SADB_X_UPDATEPAIR, SADB_SATYPE_ESP);
    up.sa = Some(sa(0x1000, 0, 0));
    up.src = Some(a("10.0.0.1"));
    up.dst = Some(a("10.0.0.2"));
    up.lifetime_soft = Some(Lifetime {
        addtime: 100,
        ..Lifetime::default()
    });
    v.push(("updatepair", up));
    let mut ds = Message::new(SADB_X_DELPAIR_STATE, SADB_SATYPE_UNSPEC);
    ds.sa = Some(sa(0, 0, 0));
    ds.src = Some(a("10.0.0.1"));
    ds.dst = Some(a("10.0.0.2"));
    v.push(("delpair-state", ds));

    let mut acq = Message::new(SADB_ACQUIRE, SADB_SATYPE_ESP);
    acq.src = Some(a("10.0.0.1"));
    acq.dst = Some(a("10.0.0.9"));
    acq.proposal = Some(Proposal {
        replay: 32,
        combs: vec![Comb {
            encrypt: 20,
            encrypt_minbits: 128,
            encrypt_maxbits: 256,
            encrypt_saltbits: 32,
            ..Comb::default()
        }],
    });
    v.push(("acquire", acq));
    let mut acq_fail = Message::new(SADB_ACQUIRE, SADB_SATYPE_ESP);
    acq_fail.errno = EINVAL;
    acq_fail.seq = u32::MAX;
    v.push(("acquire-failure", acq_fail));

    v.push(("register-esp", Message::new(SADB_REGISTER, SADB_SATYPE_ESP)));
    let mut ereg = Message::new(SADB_REGISTER, SADB_SATYPE_UNSPEC);
    ereg.ereg = Some(Ereg {
        satypes: vec![SADB_SATYPE_AH, SADB_SATYPE_ESP],
    });
    v.push(("register-extended", ereg));
    v.push(("flush", Message::new(SADB_FLUSH, SADB_SATYPE_UNSPEC)));
    v.push(("dump", Message::new(SADB_DUMP, SADB_SATYPE_UNSPEC)));
    let mut edump = Message::new(SADB_DUMP, SADB_SATYPE_ESP);
    edump.edump = Some(Edump { timeout: 0 });
    v.push(("dump-extended", edump));
    v.push(("promisc", Message::new(SADB_X_PROMISC, 1)));
    let mut inv = Message::new(SADB_X_INVERSE_ACQUIRE, SADB_SATYPE_UNSPEC);
    inv.src = Some(a("10.0.0.1"));
    inv.dst = Some(a("10.0.0.2"));
    v.push(("inverse-acquire", inv));
    let mut exp = Message::new(SADB_EXPIRE, SADB_SATYPE_ESP);
    exp.sa = Some(sa(0x1000, 0, 20));
    exp.dst = Some(a("10.0.0.2"));
    v.push(("expire", exp));
    v
}

/// An engine at time 1000 with a fixture SADB: an ESP pair 0x1000 (10.0.0.1 → 10.0.0.2) /
/// 0x1001 (back), a larval ESP SA 0x3000 (10.0.0.1 → 10.0.0.2), and an AH SA 0x2000
/// (2001:db8::1 → 2001:db8::2); a key manager registered for ESP and a promiscuous monitor.
/// All outputs of the set-up are drained.
pub fn fixture() -> KeyEngine {
    let mut e = KeyEngine::with_seed(7);
    let now = 1000;
    let setup = [
        add_esp(0x1001, "10.0.0.2", "10.0.0.1", None),
        add_esp(0x1000, "10.0.0.1", "10.0.0.2", Some(0x1001)),
    ];
    for m in setup {
        if let Ok(b) = m.emit() {
            e.handle(now, ClientId(9), &b);
        }
    }
    let mut larval = add_esp(0x3000, "10.0.0.1", "10.0.0.2", None);
    if let Some(s) = larval.sa.as_mut() {
        s.state = SADB_SASTATE_LARVAL;
        s.encrypt = 0;
    }
    larval.key_encrypt = None;
    let mut ah = Message::new(SADB_ADD, SADB_SATYPE_AH);
    ah.sa = Some(sa(0x2000, 5, 0));
    ah.src = Some(a("2001:db8::1"));
    ah.dst = Some(a("2001:db8::2"));
    ah.key_auth = key(32, 0x44);
    for m in [larval, ah, Message::new(SADB_REGISTER, SADB_SATYPE_ESP)] {
        if let Ok(b) = m.emit() {
            let c = if m.msg_type == SADB_REGISTER {
                KM_CLIENT
            } else {
                ClientId(9)
            };
            e.handle(now, c, &b);
        }
    }
    if let Ok(b) = Message::new(SADB_X_PROMISC, 1).emit() {
        e.handle(now, MONITOR_CLIENT, &b);
    }
    e.close(ClientId(9));
    while e.poll_output().is_some() {}
    while e.poll_event().is_some() {}
    e
}

/// Checks one emitted message: it parses, satisfies the reply rules, and re-emits to the
/// same bytes (so every reserved and padding byte was zero).
pub fn check_output(bytes: &[u8]) -> Result<Message, &'static str> {
    let m = Message::parse(bytes).map_err(|_| "an emitted message does not parse")?;
    m.validate(Flow::FromKernel)
        .map_err(|_| "an emitted message breaks the reply rules")?;
    let again = m
        .emit()
        .map_err(|_| "an emitted message does not re-emit")?;
    if again != bytes {
        return Err("an emitted message is not canonical (non-zero reserved or padding byte)");
    }
    Ok(m)
}

/// Parses `data` as a PF_KEY message; when it parses, emits it and checks that the result
/// parses back to the same message and is a fixed point of emit∘parse. Then feeds `data` to
/// the [`fixture`] engine: every output must pass [`check_output`]; when the reply to the
/// sender is an error, the engine's [`state_digest`](KeyEngine::state_digest) must be
/// unchanged.
pub fn pfkey_decode(data: &[u8]) -> Result<(), &'static str> {
    if let Ok(m) = Message::parse(data) {
        match m.emit() {
            Ok(b) => {
                let m2 = Message::parse(&b).map_err(|_| "emitted message does not parse")?;
                if m2 != m {
                    return Err("parse(emit(m)) != m");
                }
                if m2.emit().ok().as_deref() != Some(&b[..]) {
                    return Err("emit is not a fixed point");
                }
            }
            Err(PfkeyError {
                errno: EMSGSIZE, ..
            }) => {}
            Err(_) => return Err("a parsed message does not emit"),
        }
    }
    let mut e = fixture();
    let before = e.state_digest();
    e.handle(2000, FUZZ_CLIENT, data);
    let mut refused = false;
    while let Some(o) = e.poll_output() {
        let m = check_output(&o.bytes)?;
        if o.to.contains(&FUZZ_CLIENT) && m.errno != 0 && m.msg_type != SADB_DUMP {
            refused = true;
        }
    }
    if refused && e.state_digest() != before {
        return Err("a refused message changed the engine state");
    }
    // DUMP records come per client, paced by the daemon; every one must be well formed.
    let dumping: Vec<_> = e.dump_clients().collect();
    for c in dumping {
        while let Some(o) = e.poll_dump(c) {
            check_output(&o.bytes)?;
        }
    }
    e.handle_timeout(1_000_000);
    while let Some(o) = e.poll_output() {
        check_output(&o.bytes)?;
    }
    Ok(())
}
