//! PF_KEY conformance of the real daemon over its real socket (issue 5): every message type
//! with the Solaris delivery rules, the error diagnostics a client can provoke (each refused
//! message leaves the SADB dump unchanged), malformed and oversized messages, the larval and
//! acquire timers, lifetimes (EXPIRE), the keys file with save/restart/SIGHUP, privilege
//! (unprivileged and CAP_NET_ADMIN clients, which need root to set up), and a client that
//! never reads.
//!
//! Each test starts its own `ipsecd` on sockets in its own temporary directory; the
//! [`common::Daemon`] guard kills it and removes the directory even when the test fails
//! (printing the daemon's log first). The sans-IO engine itself is covered request by
//! request in `crates/ipsec-pfkey/tests/engine.rs`; these tests check what the socket, the
//! server loop, the control socket and the process add.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use ipsec_pfkey::consts::*;
use ipsec_pfkey::wire::*;
use ipsec_pfkey::Diagnostic as D;

/// Linux EPERM.
const EPERM: u8 = 1;

/// How long to listen to make sure something is *not* delivered.
const QUIET: Duration = Duration::from_millis(300);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ipsecd"))
}

fn daemon(name: &str, args: &[&str]) -> Daemon {
    Daemon::start(bin(), name, args)
}

fn is_root() -> bool {
    ipsec_sys::geteuid() == 0
}

/// `ok sent seq=N key_managers=K` → (N, K); panics on anything else.
fn acquire_sent(reply: &str) -> (u32, usize) {
    let rest = reply
        .strip_prefix("ok sent seq=")
        .unwrap_or_else(|| panic!("expected an ACQUIRE to be sent, got {reply:?}"));
    let (seq, km) = rest.trim().split_once(" key_managers=").unwrap();
    (seq.parse().unwrap(), km.parse().unwrap())
}

fn acquire_suppressed(reply: &str) -> u32 {
    reply
        .strip_prefix("ok suppressed seq=")
        .unwrap_or_else(|| panic!("expected suppression, got {reply:?}"))
        .trim()
        .parse()
        .unwrap()
}

fn is_type(t: u8) -> impl FnMut(&Message) -> bool {
    move |m| m.msg_type == t
}

// ---------------------------------------------------------------------------------------
// Message types.

#[test]
fn getspi_follows_the_spi_range_rules_and_update_matures_the_larval_sa() {
    let d = daemon("getspi", &[]);
    let mut a = d.client();
    let mut b = d.client();
    let (s, t) = ("10.0.0.1", "10.0.0.2");

    // Ranges inside 0..=255 and a missing range are refused.
    for (lo, hi) in [(0, 0), (0, 255), (1, 1), (1, 255), (255, 255)] {
        a.refused(
            getspi(SADB_SATYPE_ESP, s, t, lo, hi),
            EINVAL,
            D::MalformedRange.code(),
        );
    }
    let mut g = getspi(SADB_SATYPE_ESP, s, t, 0, 0);
    g.spirange = None;
    a.refused(g, EINVAL, D::MissingRange.code());
    // An inverted range is refused by the codec (emit will not build one: patch bytes).
    let mut b_inv = getspi(SADB_SATYPE_ESP, s, t, 400, 400).emit().unwrap();
    let at = b_inv.len() - 16 + 4; // sadb_spirange: len, type, min, max, reserved
    b_inv[at..at + 4].copy_from_slice(&500u32.to_be_bytes());
    let r = a.raw_request(&b_inv);
    assert_eq!((r.errno, r.diagnostic), (EINVAL, D::MalformedRange.code()));

    // [0, 300]: every SPI is in 256..=300, none twice, until the range runs out (EEXIST).
    let mut seen = std::collections::BTreeSet::new();
    for _ in 256..=300 {
        let r = a.ok(getspi(SADB_SATYPE_ESP, s, t, 0, 300));
        let sa = r.sa.unwrap();
        assert_eq!(sa.state, SADB_SASTATE_LARVAL);
        assert!((256..=300).contains(&sa.spi), "SPI {} out of range", sa.spi);
        assert!(seen.insert(sa.spi), "SPI {} handed out twice", sa.spi);
        assert_eq!(r.src.unwrap().ip(), addr(s).ip());
    }
    a.refused(getspi(SADB_SATYPE_ESP, s, t, 0, 300), EEXIST, 0);
    // Another destination and another protocol have their own SPI spaces.
    a.ok(getspi(SADB_SATYPE_AH, s, t, 0, 300));
    a.ok(getspi(SADB_SATYPE_ESP, s, "10.0.0.3", 0, 300));
    // The whole 32-bit range: never 0..=255, never twice.
    for _ in 0..300 {
        let spi = a
            .ok(getspi(SADB_SATYPE_ESP, s, t, 0, u32::MAX))
            .sa
            .unwrap()
            .spi;
        assert!(spi > 255);
        assert!(seen.insert(spi), "SPI {spi} handed out twice");
    }
    // A one-SPI range.
    let r = a.ok(getspi(SADB_SATYPE_ESP, s, "10.0.0.4", 7000, 7000));
    assert_eq!(r.sa.unwrap().spi, 7000);
    a.refused(
        getspi(SADB_SATYPE_ESP, s, "10.0.0.4", 7000, 7000),
        EEXIST,
        0,
    );

    // GETSPI replies go to every client.
    let pid = a.pid;
    let seen_by_b = b
        .collect(QUIET)
        .into_iter()
        .filter(|m| m.msg_type == SADB_GETSPI && m.pid == pid && m.errno == 0)
        .count();
    assert_eq!(seen_by_b, 45 + 2 + 300 + 1);
    // ... and the larval SAs are in the dump.
    let recs = a.dump(SADB_SATYPE_UNSPEC);
    assert_eq!(recs.len(), 45 + 2 + 300 + 1);
    assert!(recs
        .iter()
        .all(|r| r.sa.unwrap().state == SADB_SASTATE_LARVAL));

    // UPDATE with algorithm and keys matures a larval SA.
    let spi = a
        .ok(getspi(SADB_SATYPE_ESP, s, "10.0.0.9", 0, u32::MAX))
        .sa
        .unwrap()
        .spi;
    let larval = a.get(SADB_SATYPE_ESP, spi, s, "10.0.0.9").unwrap();
    assert_eq!(larval.sa.unwrap().state, SADB_SASTATE_LARVAL);
    assert!(larval.key_encrypt.is_none());
    let mut up = esp_add(spi, s, "10.0.0.9");
    up.msg_type = SADB_UPDATE;
    let r = b.ok(up);
    assert_eq!(r.sa.unwrap().state, SADB_SASTATE_MATURE);
    assert!(r.key_encrypt.is_none(), "the UPDATE echo carries no key");
    let m = a.get(SADB_SATYPE_ESP, spi, s, "10.0.0.9").unwrap();
    assert_eq!(m.sa.unwrap().state, SADB_SASTATE_MATURE);
    assert_eq!(m.key_encrypt.unwrap().expose(), &[0x5a; 20]);
    // a saw b's UPDATE (broadcast).
    let bpid = b.pid;
    assert!(a
        .wait_for(REPLY_TIMEOUT, |m| m.msg_type == SADB_UPDATE
            && m.pid == bpid)
        .is_some());
    // UPDATE of an SA that does not exist.
    let mut up = esp_add(0x0bad_0bad, s, "10.0.0.9");
    up.msg_type = SADB_UPDATE;
    a.refused(up, ESRCH, D::SaNotfound.code());
}

#[test]
fn add_get_delete_and_their_delivery() {
    let d = daemon("add", &[]);
    let mut a = d.client();
    let mut b = d.client();

    let r = a.ok(esp_add(0x1000, "10.0.0.1", "10.0.0.2"));
    let sa = r.sa.unwrap();
    assert_eq!((sa.spi, sa.state), (0x1000, SADB_SASTATE_MATURE));
    assert!(
        r.key_encrypt.is_none() && r.key_auth.is_none(),
        "echo without keys"
    );
    // ADD is broadcast: b sees a's reply, without keys.
    let (apid, seq) = (a.pid, r.seq);
    let echo = b
        .wait_for(REPLY_TIMEOUT, |m| m.pid == apid && m.seq == seq)
        .expect("ADD broadcast");
    assert_eq!(echo, r);

    // GET: to the sender only, with keys and the current lifetime.
    let g = a
        .get(SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2")
        .unwrap();
    assert_eq!(g.key_encrypt.as_ref().unwrap().expose(), &[0x5a; 20]);
    assert_eq!(g.sa.unwrap().encrypt, 20);
    assert!(g.lifetime_current.unwrap().addtime > 1_600_000_000);
    assert!(
        b.collect(QUIET).is_empty(),
        "GET replies go to the sender only"
    );

    // AH and IPv6.
    a.ok(ah_add(0x2000, "10.0.0.1", "10.0.0.2"));
    let g = a
        .get(SADB_SATYPE_AH, 0x2000, "10.0.0.1", "10.0.0.2")
        .unwrap();
    assert_eq!(g.key_auth.unwrap().expose(), &[0x33; 32]);
    a.ok(esp_add(0x3000, "2001:db8::1", "2001:db8::2"));
    assert!(a
        .get(SADB_SATYPE_ESP, 0x3000, "2001:db8::1", "2001:db8::2")
        .is_ok());
    // The same SPI and destination with another source is another SA; the same SA again
    // is EEXIST.
    a.ok(esp_add(0x1000, "10.0.0.7", "10.0.0.2"));
    a.refused(esp_add(0x1000, "10.0.0.1", "10.0.0.2"), EEXIST, 0);

    // DELETE by b is broadcast to a.
    let r = b.ok(sel(
        SADB_DELETE,
        SADB_SATYPE_ESP,
        0x1000,
        "10.0.0.1",
        "10.0.0.2",
    ));
    let (bpid, seq) = (b.pid, r.seq);
    assert!(a
        .wait_for(REPLY_TIMEOUT, |m| m.msg_type == SADB_DELETE
            && m.pid == bpid
            && m.seq == seq)
        .is_some());
    assert_eq!(
        a.get(SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2"),
        Err((ESRCH, D::SaNotfound.code()))
    );
    // The other source's SA is still there.
    assert!(a
        .get(SADB_SATYPE_ESP, 0x1000, "10.0.0.7", "10.0.0.2")
        .is_ok());
    a.refused(
        sel(SADB_DELETE, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2"),
        ESRCH,
        D::SaNotfound.code(),
    );
    assert_eq!(a.dump(SADB_SATYPE_UNSPEC).len(), 3);
}

#[test]
fn register_returns_the_algorithms_and_acquire_reaches_the_key_managers() {
    let d = daemon("acquire", &[]);
    let mut other = d.client();
    let mut km1 = d.client();
    let mut km2 = d.client();

    let r = km1.ok(Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    let encr = r.supported_encrypt.as_ref().expect("ESP lists encryption");
    assert!(encr.algs.iter().any(|a| a.id == 20 && a.saltbits == 32));
    assert!(encr.algs.iter().any(|a| a.id == 12 && a.minbits == 128));
    let auth = r.supported_auth.as_ref().unwrap();
    assert!(auth.algs.iter().any(|a| a.id == 5));
    // A second key manager: its REGISTER reply goes to every socket registered for ESP.
    let r2 = km2.ok(Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    let (p2, s2) = (km2.pid, r2.seq);
    assert!(km1
        .wait_for(REPLY_TIMEOUT, |m| m.msg_type == SADB_REGISTER
            && m.pid == p2
            && m.seq == s2)
        .is_some());
    // AH: no encryption list; km2 is not registered for AH and does not see it.
    let r = km1.ok(Message::new(SADB_REGISTER, SADB_SATYPE_AH));
    assert!(r.supported_encrypt.is_none());
    assert!(r.supported_auth.is_some());
    assert!(
        other.collect(QUIET).is_empty(),
        "REGISTER replies go to registered sockets only"
    );
    assert!(km2.collect(QUIET).is_empty());

    // The daemon's ACQUIRE path (control socket) reaches both ESP key managers.
    let (seq, kms) = acquire_sent(&d.control("acquire esp 10.0.0.1 10.0.0.2"));
    assert_eq!(kms, 2);
    for km in [&mut km1, &mut km2] {
        let acq = km
            .wait_for(REPLY_TIMEOUT, is_type(SADB_ACQUIRE))
            .expect("ACQUIRE");
        assert_eq!((acq.seq, acq.pid, acq.satype), (seq, 0, SADB_SATYPE_ESP));
        assert_eq!(acq.src.unwrap().ip(), addr("10.0.0.1").ip());
        assert_eq!(acq.dst.unwrap().ip(), addr("10.0.0.2").ip());
        let p = acq.proposal.as_ref().expect("proposal");
        assert_eq!(p.combs[0].encrypt, 20);
    }
    assert!(other.collect(QUIET).is_empty(), "unregistered: no ACQUIRE");
    // The same need again is suppressed.
    assert_eq!(
        acquire_suppressed(&d.control("acquire esp 10.0.0.1 10.0.0.2")),
        seq
    );
    assert!(km1.collect(QUIET).is_empty());

    // The key manager's ADD with the ACQUIRE's sequence number resolves it.
    let mut add = esp_add(0x7000, "10.0.0.1", "10.0.0.2");
    add.seq = seq;
    add.pid = km1.pid;
    km1.send(&add);
    assert_eq!(km1.reply_to(SADB_ADD, seq).errno, 0);
    let (seq2, _) = acquire_sent(&d.control("acquire esp 10.0.0.1 10.0.0.2"));
    assert_ne!(seq2, seq);

    // A key manager's failure (ACQUIRE with an errno) ends it too; nobody gets a reply.
    km1.collect(QUIET);
    km2.collect(QUIET);
    let mut fail = Message::new(SADB_ACQUIRE, SADB_SATYPE_ESP);
    fail.errno = ENOENT;
    fail.seq = seq2;
    fail.pid = km2.pid;
    km2.send(&fail);
    assert!(
        km2.collect(QUIET).is_empty(),
        "a failed ACQUIRE gets no reply"
    );
    assert!(km1.collect(Duration::ZERO).is_empty());
    let (seq3, _) = acquire_sent(&d.control("acquire esp 10.0.0.1 10.0.0.2"));
    assert_ne!(seq3, seq2);

    // An UPDATE maturing a larval SA with the ACQUIRE's sequence number resolves it.
    let spi = km1
        .ok(getspi(SADB_SATYPE_ESP, "10.0.0.1", "10.0.0.2", 0, u32::MAX))
        .sa
        .unwrap()
        .spi;
    let mut up = esp_add(spi, "10.0.0.1", "10.0.0.2");
    up.msg_type = SADB_UPDATE;
    up.seq = seq3;
    up.pid = km1.pid;
    km1.send(&up);
    assert_eq!(km1.reply_to(SADB_UPDATE, seq3).errno, 0);
    acquire_sent(&d.control("acquire esp 10.0.0.1 10.0.0.2"));

    // AH reaches km1 only.
    let (_, kms) = acquire_sent(&d.control("acquire ah 10.0.0.1 10.0.0.3"));
    assert_eq!(kms, 1);
    let acq = km1
        .wait_for(REPLY_TIMEOUT, |m| {
            m.msg_type == SADB_ACQUIRE && m.satype == SADB_SATYPE_AH
        })
        .unwrap();
    assert_eq!(acq.proposal.unwrap().combs[0].auth, 5);
    assert!(km2
        .collect(QUIET)
        .iter()
        .all(|m| m.satype != SADB_SATYPE_AH));

    // A client's ACQUIRE is passed on to the registered key managers.
    let mut a = Message::new(SADB_ACQUIRE, SADB_SATYPE_ESP);
    a.src = Some(addr("10.0.0.1"));
    a.dst = Some(addr("10.0.0.9"));
    a.proposal = acq_proposal();
    a.seq = 77;
    a.pid = other.pid;
    other.send(&a);
    let opid = other.pid;
    for km in [&mut km1, &mut km2] {
        assert!(km
            .wait_for(REPLY_TIMEOUT, |m| m.msg_type == SADB_ACQUIRE
                && m.pid == opid)
            .is_some());
    }

    // Control-socket mistakes.
    for bad in [
        "acquire foo 10.0.0.1 10.0.0.2",
        "acquire esp 10.0.0.1 2001:db8::1",
        "acquire esp nonsense 10.0.0.1",
        "frobnicate",
    ] {
        assert!(d.control(bad).starts_with("error"), "{bad}");
    }
}

fn acq_proposal() -> Option<Proposal> {
    Some(Proposal {
        replay: 64,
        combs: vec![Comb {
            encrypt: 20,
            encrypt_minbits: 128,
            encrypt_maxbits: 256,
            encrypt_saltbits: 32,
            ..Comb::default()
        }],
    })
}

#[test]
fn acquire_suppression_lasts_the_acquire_timeout() {
    let d = daemon("acqtimeout", &["--acquire-timeout", "2"]);
    let mut km = d.client();
    km.ok(Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    let t0 = Instant::now();
    let (seq, kms) = acquire_sent(&d.control("acquire esp 10.0.0.1 10.0.0.2"));
    assert_eq!(kms, 1);
    assert_eq!(
        acquire_suppressed(&d.control("acquire esp 10.0.0.1 10.0.0.2")),
        seq
    );
    // Another need is not suppressed.
    acquire_sent(&d.control("acquire esp 10.0.0.1 10.0.0.3"));
    let seq2 = loop {
        let r = d.control("acquire esp 10.0.0.1 10.0.0.2");
        if r.starts_with("ok sent") {
            break acquire_sent(&r).0;
        }
        assert_eq!(acquire_suppressed(&r), seq);
        assert!(t0.elapsed() < Duration::from_secs(5), "still suppressed");
        std::thread::sleep(Duration::from_millis(100));
    };
    let e = t0.elapsed();
    assert!(
        e >= Duration::from_millis(900),
        "suppression ended after {e:?}"
    );
    assert_ne!(seq2, seq);
    let acqs: Vec<u32> = km
        .collect(QUIET)
        .iter()
        .filter(|m| m.msg_type == SADB_ACQUIRE)
        .map(|m| m.seq)
        .collect();
    assert_eq!(acqs.len(), 3, "{acqs:?}");
    assert_eq!((acqs[0], acqs[2]), (seq, seq2));
}

#[test]
fn lifetimes_expire_soft_then_hard() {
    let d = daemon("expire", &[]);
    let mut a = d.client();
    let mut b = d.client();
    let mut m = esp_add(0x1234, "10.0.0.1", "10.0.0.2");
    m.lifetime_soft = Some(Lifetime {
        addtime: 1,
        ..Lifetime::default()
    });
    m.lifetime_hard = Some(Lifetime {
        addtime: 2,
        ..Lifetime::default()
    });
    a.ok(m);
    let mut idle = ah_add(0x4321, "10.0.0.1", "10.0.0.2");
    idle.lifetime_idle = Some(Lifetime {
        addtime: 1,
        ..Lifetime::default()
    });
    a.ok(idle);
    a.ok(esp_add(0x5555, "10.0.0.1", "10.0.0.2")); // no lifetimes: stays

    let expire = |c: &mut Client, pred: &dyn Fn(&Message) -> bool| {
        c.wait_for(Duration::from_secs(6), |m| {
            m.msg_type == SADB_EXPIRE && pred(m)
        })
        .expect("EXPIRE")
    };
    // Soft: DYING, with the soft limit; the SA stays.
    let soft = expire(&mut a, &|m| m.sa.unwrap().spi == 0x1234);
    assert_eq!(soft.sa.unwrap().state, SADB_SASTATE_DYING);
    assert_eq!(soft.lifetime_soft.unwrap().addtime, 1);
    assert!(soft.lifetime_hard.is_none());
    assert!(soft.lifetime_current.is_some());
    assert!(soft.key_encrypt.is_none());
    assert_eq!((soft.seq, soft.pid), (0, 0));
    // Hard: DEAD, deleted.
    let hard = expire(&mut a, &|m| {
        m.sa.unwrap().spi == 0x1234 && m.lifetime_hard.is_some()
    });
    assert_eq!(hard.sa.unwrap().state, SADB_SASTATE_DEAD);
    assert_eq!(hard.lifetime_hard.unwrap().addtime, 2);
    assert_eq!(
        a.get(SADB_SATYPE_ESP, 0x1234, "10.0.0.1", "10.0.0.2"),
        Err((ESRCH, D::SaNotfound.code()))
    );
    // Idle: deleted, with the idle limit.
    let idle = expire(&mut a, &|m| m.sa.unwrap().spi == 0x4321);
    assert!(idle.lifetime_idle.is_some());
    assert!(a
        .get(SADB_SATYPE_AH, 0x4321, "10.0.0.1", "10.0.0.2")
        .is_err());
    // b got all three (EXPIRE is broadcast).
    for spi in [0x1234, 0x1234, 0x4321] {
        expire(&mut b, &|m| m.sa.unwrap().spi == spi);
    }
    let recs = a.dump(SADB_SATYPE_UNSPEC);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].sa.unwrap().spi, 0x5555);
    // Soft fires once.
    assert!(a
        .collect(Duration::from_millis(1200))
        .iter()
        .all(|m| m.msg_type != SADB_EXPIRE));
}

#[test]
fn dump_ends_with_sequence_zero_and_flush_empties() {
    let d = daemon("dump", &[]);
    let mut a = d.client();
    let mut b = d.client();
    assert!(a.dump(SADB_SATYPE_UNSPEC).is_empty());
    for spi in [0x1000, 0x1001, 0x1002] {
        a.ok(esp_add(spi, "10.0.0.1", "10.0.0.2"));
    }
    a.ok(ah_add(0x2000, "10.0.0.1", "10.0.0.2"));
    a.ok(ah_add(0x2001, "10.0.0.1", "10.0.0.3"));
    b.collect(QUIET);

    let recs = a.dump(SADB_SATYPE_UNSPEC);
    assert_eq!(recs.len(), 5);
    for r in &recs {
        assert_eq!(r.msg_type, SADB_DUMP);
        assert!(
            r.key_encrypt.is_some() || r.key_auth.is_some(),
            "DUMP has keys"
        );
    }
    // The records carry the request's seq (Client::dump checks seq and pid) and go to the
    // sender only.
    assert!(b.collect(QUIET).is_empty(), "DUMP goes to the sender only");
    assert_eq!(a.dump(SADB_SATYPE_AH).len(), 2);
    assert_eq!(a.dump(SADB_SATYPE_ESP).len(), 3);

    // FLUSH of one type: broadcast, no extensions.
    let r = a.ok(Message::new(SADB_FLUSH, SADB_SATYPE_ESP));
    assert!(!r.has_extensions());
    let (pid, seq) = (a.pid, r.seq);
    assert!(b
        .wait_for(REPLY_TIMEOUT, |m| m.msg_type == SADB_FLUSH
            && m.pid == pid
            && m.seq == seq)
        .is_some());
    let recs = a.dump(SADB_SATYPE_UNSPEC);
    assert_eq!(recs.len(), 2);
    assert!(recs.iter().all(|r| r.satype == SADB_SATYPE_AH));
    a.ok(Message::new(SADB_FLUSH, SADB_SATYPE_UNSPEC));
    assert!(a.dump(SADB_SATYPE_UNSPEC).is_empty());
    assert_eq!(d.stats()["sas"], 0);
}

#[test]
fn a_promiscuous_socket_sees_the_traffic_of_others() {
    let d = daemon("promisc", &[]);
    let mut a = d.client();
    let mut mon = d.client();
    let r = mon.ok(Message::new(SADB_X_PROMISC, 1));
    assert_eq!(r.satype, 1);
    assert!(
        a.collect(QUIET).is_empty(),
        "X_PROMISC replies go to the sender"
    );

    a.ok(esp_add(0x1000, "10.0.0.1", "10.0.0.2"));
    let apid = a.pid;
    // GET reply, an error reply, DUMP records and a REGISTER reply of a.
    let g = a
        .get(SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2")
        .unwrap();
    a.get(SADB_SATYPE_ESP, 0x9999, "10.0.0.1", "10.0.0.2")
        .unwrap_err();
    assert_eq!(a.dump(SADB_SATYPE_UNSPEC).len(), 1);
    a.ok(Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    let seen: Vec<Message> = mon
        .collect(QUIET)
        .into_iter()
        .filter(|m| m.pid == apid)
        .collect();
    let types: Vec<(u8, u8)> = seen.iter().map(|m| (m.msg_type, m.errno)).collect();
    assert_eq!(
        types,
        vec![
            (SADB_ADD, 0),
            (SADB_GET, 0),
            (SADB_GET, ESRCH),
            (SADB_DUMP, 0),
            (SADB_DUMP, 0),
            (SADB_REGISTER, 0)
        ]
    );
    assert_eq!(seen[1], g, "the monitor sees the GET reply as sent");
    // ACQUIRE to a (registered) reaches the monitor too.
    acquire_sent(&d.control("acquire esp 10.0.0.1 10.0.0.2"));
    assert!(mon.wait_for(REPLY_TIMEOUT, is_type(SADB_ACQUIRE)).is_some());
    // Off again.
    mon.ok(Message::new(SADB_X_PROMISC, 0));
    a.get(SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2")
        .unwrap();
    assert!(mon.collect(QUIET).is_empty());
}

#[test]
fn inverse_acquire_without_policy_is_enoent() {
    let d = daemon("inverse", &[]);
    let mut a = d.client();
    let mut inv = Message::new(SADB_X_INVERSE_ACQUIRE, 0);
    inv.src = Some(addr("10.0.0.1"));
    inv.dst = Some(addr("10.0.0.2"));
    a.refused(inv.clone(), ENOENT, 0);
    inv.dst = None;
    a.refused(inv, EINVAL, D::MissingDst.code());
}

/// The (encryption, authentication) PF_KEY numbers of each ESP extended combination.
fn esp_pairs(e: &EProp) -> Vec<(u8, u8)> {
    e.ecombs
        .iter()
        .map(|c| {
            let of = |t: u8| {
                c.algs
                    .iter()
                    .find(|d| d.satype == SADB_SATYPE_ESP && d.algtype == t)
                    .map_or(0, |d| d.alg)
            };
            (of(SADB_X_ALGTYPE_CRYPT), of(SADB_X_ALGTYPE_AUTH))
        })
        .collect()
}

#[test]
fn inverse_acquire_answers_from_the_live_policy() {
    use ipsec_crypto::{auth_info, encr_info, AuthAlg, EncrAlg};
    let d = daemon("inverse-policy", &[]);
    let mut a = d.client();
    let gcm = encr_info(EncrAlg::AesGcm16).pfkey;
    let cbc = encr_info(EncrAlg::AesCbc).pfkey;
    let sha256 = auth_info(AuthAlg::HmacSha256).pfkey;
    let inverse = |src: &str, dst: &str| {
        let mut m = Message::new(SADB_X_INVERSE_ACQUIRE, 0);
        m.src = Some(addr(src));
        m.dst = Some(addr(dst));
        m
    };
    // Two alternatives: CBC with HMAC-SHA-256 first, then GCM; in the rule's order.
    let r = d.control(
        "policy add one\n{laddr 10.0.0.1 raddr 10.0.0.2} ipsec {encr_algs aes-cbc(256) encr_auth_algs hmac-sha256 sa shared} or ipsec {encr_algs aes-gcm sa shared}\n\
         {laddr 10.0.0.1 raddr 10.0.0.3 dir in} ipsec {encr_algs aes-gcm sa shared}\n",
    );
    assert!(r.starts_with("ok"), "{r}");
    let e = a.ok(inverse("10.0.0.1", "10.0.0.2"));
    let eprop = e.eprop.expect("the answer carries X_EPROP");
    assert_eq!(esp_pairs(&eprop), vec![(cbc, sha256), (gcm, 0)]);
    let cbc_desc = eprop.ecombs[0].algs[0];
    assert_eq!((cbc_desc.minbits, cbc_desc.maxbits), (256, 256));
    assert_eq!(e.src, Some(addr("10.0.0.1")));
    assert_eq!(e.dst, Some(addr("10.0.0.2")));
    // An inbound-only rule answers too (the selectors as a packet from the peer).
    let inb = a.ok(inverse("10.0.0.1", "10.0.0.3"));
    assert_eq!(esp_pairs(&inb.eprop.unwrap()), vec![(gcm, 0)]);
    // The policy is this host's: from the peer's side nothing protects the pair.
    a.refused(inverse("10.0.0.2", "10.0.0.1"), ENOENT, 0);
    // Selectors no policy protects: ENOENT.
    a.refused(inverse("10.0.0.1", "10.0.0.9"), ENOENT, 0);

    // ipsecconf -f: flushed, no policy; -a again with GCM only: the answer follows at once.
    assert!(d.control("policy flush all").starts_with("ok"));
    a.refused(inverse("10.0.0.1", "10.0.0.2"), ENOENT, 0);
    let r = d.control(
        "policy add two\n{laddr 10.0.0.1 raddr 10.0.0.2} ipsec {encr_algs aes-gcm(256) sa shared}\n",
    );
    assert!(r.starts_with("ok"), "{r}");
    let e = a.ok(inverse("10.0.0.1", "10.0.0.2")).eprop.unwrap();
    assert_eq!(esp_pairs(&e), vec![(gcm, 0)]);
    assert_eq!(
        (e.ecombs[0].algs[0].minbits, e.ecombs[0].algs[0].maxbits),
        (256, 256)
    );
    // A bypass entry for the pair: nothing protects it.
    let r = d.control("policy add three\n{laddr 10.0.0.1 raddr 10.0.0.2 dir both} bypass {}\n");
    assert!(r.starts_with("ok"), "{r}");
    a.refused(inverse("10.0.0.1", "10.0.0.2"), ENOENT, 0);
    // ipsecconf -d: the bypass entry goes, GCM answers again.
    let list = d.control("policy list file all");
    let index = list
        .lines()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[1].contains("bypass"))
        .and_then(|w| w[0].strip_prefix("#INDEX "))
        .unwrap_or_else(|| panic!("no bypass entry in {list}"))
        .to_string();
    let r = d.control(&format!("policy delete {index}"));
    assert!(r.starts_with("ok"), "{r}");
    let e = a.ok(inverse("10.0.0.1", "10.0.0.2")).eprop.unwrap();
    assert_eq!(esp_pairs(&e), vec![(gcm, 0)]);
}

#[test]
fn inverse_acquire_with_inner_selectors_asks_the_tunnel_policy() {
    use ipsec_crypto::{encr_info, EncrAlg};
    let d = daemon("inverse-tunnel", &[]);
    let mut a = d.client();
    let r = d.control(
        "policy add t\n{tunnel ip.tun0 negotiate tunnel laddr 10.1.0.0/16 raddr 10.2.0.0/16} ipsec {encr_algs aes-gcm sa shared}\n",
    );
    assert!(r.starts_with("ok"), "{r}");
    let inner = |s: &str, len: u8| Address {
        prefixlen: len,
        ..addr(s)
    };
    let mut m = Message::new(SADB_X_INVERSE_ACQUIRE, 0);
    m.src = Some(addr("192.0.2.1"));
    m.dst = Some(addr("192.0.2.2"));
    // Without inner selectors the host SPD is asked: it has no rule.
    a.refused(m.clone(), ENOENT, 0);
    m.inner_src = Some(inner("10.1.0.0", 16));
    m.inner_dst = Some(inner("10.2.0.5", 32));
    let r = a.ok(m.clone());
    assert_eq!(r.inner_src, m.inner_src);
    assert_eq!(r.inner_dst, m.inner_dst);
    let gcm = encr_info(EncrAlg::AesGcm16).pfkey;
    assert_eq!(esp_pairs(&r.eprop.unwrap()), vec![(gcm, 0)]);
    // Inner addresses outside the tunnel's selectors: no policy.
    m.inner_dst = Some(inner("10.3.0.5", 32));
    a.refused(m, ENOENT, 0);
}

#[test]
fn sa_pairs_updatepair_delpair_and_delpair_state() {
    let d = daemon("pairs", &[]);
    let mut a = d.client();
    let mut b = d.client();
    a.ok(esp_add(0x1001, "10.0.0.2", "10.0.0.1"));
    let mut m = esp_add(0x1000, "10.0.0.1", "10.0.0.2");
    m.pair = Some(Pair { spi: 0x1001 });
    let r = a.ok(m);
    assert_ne!(r.sa.unwrap().flags & SADB_X_SAFLAGS_PAIRED, 0);
    let g = a
        .get(SADB_SATYPE_ESP, 0x1001, "10.0.0.2", "10.0.0.1")
        .unwrap();
    assert_eq!(g.pair.unwrap().spi, 0x1000);

    // X_UPDATEPAIR changes both halves; it is broadcast.
    let mut up = sel(
        SADB_X_UPDATEPAIR,
        SADB_SATYPE_ESP,
        0x1000,
        "10.0.0.1",
        "10.0.0.2",
    );
    up.lifetime_hard = Some(Lifetime {
        addtime: 5000,
        ..Lifetime::default()
    });
    let r = b.ok(up);
    let (bpid, seq) = (b.pid, r.seq);
    assert!(a
        .wait_for(REPLY_TIMEOUT, |m| m.msg_type == SADB_X_UPDATEPAIR
            && m.pid == bpid
            && m.seq == seq)
        .is_some());
    for (spi, s, t) in [
        (0x1000, "10.0.0.1", "10.0.0.2"),
        (0x1001, "10.0.0.2", "10.0.0.1"),
    ] {
        let g = a.get(SADB_SATYPE_ESP, spi, s, t).unwrap();
        assert_eq!(g.lifetime_hard.unwrap().addtime, 5000);
    }
    // Without a pair: PAIR_SA_NOTFOUND for both pair operations.
    a.ok(esp_add(0x3000, "10.0.0.1", "10.0.0.2"));
    a.refused(
        sel(
            SADB_X_UPDATEPAIR,
            SADB_SATYPE_ESP,
            0x3000,
            "10.0.0.1",
            "10.0.0.2",
        ),
        ESRCH,
        D::PairSaNotfound.code(),
    );
    a.refused(
        sel(
            SADB_X_DELPAIR,
            SADB_SATYPE_ESP,
            0x3000,
            "10.0.0.1",
            "10.0.0.2",
        ),
        ESRCH,
        D::PairSaNotfound.code(),
    );
    // X_DELPAIR removes both halves.
    let r = b.ok(sel(
        SADB_X_DELPAIR,
        SADB_SATYPE_ESP,
        0x1001,
        "10.0.0.2",
        "10.0.0.1",
    ));
    let seq = r.seq;
    assert!(a
        .wait_for(REPLY_TIMEOUT, |m| m.msg_type == SADB_X_DELPAIR
            && m.seq == seq)
        .is_some());
    assert!(a
        .get(SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2")
        .is_err());
    assert!(a
        .get(SADB_SATYPE_ESP, 0x1001, "10.0.0.2", "10.0.0.1")
        .is_err());
    assert_eq!(a.dump(SADB_SATYPE_UNSPEC).len(), 1);

    // X_DELPAIR_STATE: every mature SA from 10.0.0.1 (with its pair) goes; others stay.
    a.ok(esp_add(0x2001, "10.0.0.2", "10.0.0.1"));
    let mut p = esp_add(0x2000, "10.0.0.1", "10.0.0.2");
    p.pair = Some(Pair { spi: 0x2001 });
    a.ok(p);
    a.ok(ah_add(0x2002, "10.0.0.5", "10.0.0.2"));
    let mut ds = Message::new(SADB_X_DELPAIR_STATE, 0);
    ds.sa = Some(SaExt {
        state: SADB_SASTATE_MATURE,
        ..SaExt::default()
    });
    ds.src = Some(addr("10.0.0.1"));
    ds.dst = Some(addr("10.0.0.2")); // required, not a selector
    let r = b.ok(ds);
    let seq = r.seq;
    assert!(a
        .wait_for(REPLY_TIMEOUT, |m| m.msg_type == SADB_X_DELPAIR_STATE
            && m.seq == seq)
        .is_some());
    let left: Vec<u32> = a
        .dump(SADB_SATYPE_UNSPEC)
        .iter()
        .map(|r| r.sa.unwrap().spi)
        .collect();
    assert_eq!(left, vec![0x2002]);
}

// ---------------------------------------------------------------------------------------
// Refusals.

/// One refused request: what it is, the bytes, and the expected errno and diagnostic.
struct Case {
    name: String,
    bytes: Vec<u8>,
    errno: u8,
    diag: D,
}

fn add_cases() -> Vec<Case> {
    let base = || esp_add(0x5000, "10.0.0.1", "10.0.0.2");
    let mut cases: Vec<Case> = Vec::new();
    let mut add = |name: &str, f: &dyn Fn(&mut Message), errno: u8, diag: D| {
        let mut m = base();
        f(&mut m);
        m.seq = 1000 + cases.len() as u32;
        m.pid = 4242;
        cases.push(Case {
            name: name.into(),
            bytes: m.emit().unwrap(),
            errno,
            diag,
        });
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
        "unknown aalg",
        &|m| m.sa.as_mut().unwrap().auth = 99,
        EINVAL,
        D::BadAalg,
    );
    add("no ekey", &|m| m.key_encrypt = None, EINVAL, D::MissingEkey);
    add(
        "no akey",
        &|m| {
            m.sa.as_mut().unwrap().encrypt = 12;
            m.key_encrypt = Key::new(&[1; 16]);
            m.sa.as_mut().unwrap().auth = 5;
        },
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
    for (name, hard, soft, d) in [
        (
            "soft > hard allocs",
            Lifetime {
                allocations: 5,
                ..Lifetime::default()
            },
            Lifetime {
                allocations: 6,
                ..Lifetime::default()
            },
            D::AllocHserr,
        ),
        (
            "soft > hard bytes",
            Lifetime {
                bytes: 5,
                ..Lifetime::default()
            },
            Lifetime {
                bytes: 6,
                ..Lifetime::default()
            },
            D::BytesHserr,
        ),
        (
            "soft > hard addtime",
            Lifetime {
                addtime: 5,
                ..Lifetime::default()
            },
            Lifetime {
                addtime: 6,
                ..Lifetime::default()
            },
            D::AddtimeHserr,
        ),
        (
            "soft > hard usetime",
            Lifetime {
                usetime: 5,
                ..Lifetime::default()
            },
            Lifetime {
                usetime: 6,
                ..Lifetime::default()
            },
            D::UsetimeHserr,
        ),
    ] {
        add(
            name,
            &|m| {
                m.lifetime_hard = Some(hard);
                m.lifetime_soft = Some(soft);
            },
            EINVAL,
            d,
        );
    }
    add(
        "current lifetime",
        &|m| m.lifetime_current = Some(Lifetime::default()),
        EOPNOTSUPP,
        D::MissingLifetime,
    );
    add(
        "natt loc flag",
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
        "inner families",
        &|m| {
            m.inner_src = Some(addr("10.9.0.0"));
            m.inner_dst = Some(addr("fd00::"));
        },
        EINVAL,
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
            })
        },
        EINVAL,
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
        "pair addresses",
        &|m| {
            m.dst = Some(addr("10.0.0.3"));
            m.pair = Some(Pair { spi: 0x1001 });
        },
        EINVAL,
        D::PairAddMismatch,
    );
    add(
        "pair already paired",
        &|m| m.pair = Some(Pair { spi: 0x1101 }),
        EINVAL,
        D::PairAlready,
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
            })
        },
        EOPNOTSUPP,
        D::None,
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
    cases
}

fn other_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = Vec::new();
    let mut push = |name: &str, mut m: Message, errno: u8, diag: D| {
        m.seq = 2000 + cases.len() as u32;
        m.pid = 4242;
        cases.push(Case {
            name: name.into(),
            bytes: m.emit().unwrap(),
            errno,
            diag,
        });
    };
    let (s, t) = ("10.0.0.1", "10.0.0.2");
    let esp = SADB_SATYPE_ESP;

    let mut g = getspi(esp, s, t, 0, 0);
    g.spirange = None;
    push("getspi no range", g, EINVAL, D::MissingRange);
    push(
        "getspi reserved range",
        getspi(esp, s, t, 1, 255),
        EINVAL,
        D::MalformedRange,
    );
    let mut g = getspi(esp, s, t, 0, u32::MAX);
    g.src = None;
    push("getspi no src", g, EINVAL, D::MissingSrc);
    push(
        "getspi family",
        getspi(esp, "::1", t, 0, u32::MAX),
        EINVAL,
        D::AfMismatch,
    );
    push(
        "getspi unspec dst",
        getspi(esp, s, "0.0.0.0", 0, u32::MAX),
        EINVAL,
        D::BadDst,
    );
    push(
        "getspi multicast src",
        getspi(esp, "224.0.0.1", t, 0, u32::MAX),
        EINVAL,
        D::BadSrc,
    );
    push(
        "getspi range in use",
        getspi(esp, s, t, 0x1000, 0x1000),
        EEXIST,
        D::None,
    );

    let up = || sel(SADB_UPDATE, esp, 0x1000, s, t);
    let mut m = up();
    m.key_auth = Key::new(&[1; 32]);
    push("update akey", m, EINVAL, D::AkeyPresent);
    let mut m = up();
    m.key_encrypt = Key::new(&[1; 20]);
    push("update ekey", m, EINVAL, D::EkeyPresent);
    let mut m = up();
    m.sa.as_mut().unwrap().state = SADB_SASTATE_DYING;
    push("update state", m, EINVAL, D::BadSastate);
    let mut m = up();
    m.sa.as_mut().unwrap().flags = SADB_X_SAFLAGS_AALG1;
    push("update flags", m, EINVAL, D::BadSaflags);
    let mut m = up();
    m.replay_value = Some(ReplayValue {
        replay32: 9,
        replay64: 0,
    });
    push("update replay of mature", m, EINVAL, D::BadSastate);
    let mut m = up();
    m.lifetime_hard = Some(Lifetime {
        usetime: 5,
        ..Lifetime::default()
    });
    m.lifetime_soft = Some(Lifetime {
        usetime: 6,
        ..Lifetime::default()
    });
    push("update lifetimes", m, EINVAL, D::UsetimeHserr);
    let mut m = up();
    m.outer_sens = Some(Sensitivity::default());
    push("update labels", m, EOPNOTSUPP, D::BadLabel);
    let mut m = up();
    m.pair = Some(Pair { spi: 0x9999 });
    push("update pair missing", m, EINVAL, D::PairInappropriate);
    let mut m = up();
    m.sa.as_mut().unwrap().spi = 0x4444;
    push("update not found", m, ESRCH, D::SaNotfound);
    let mut m = sel(SADB_UPDATE, SADB_SATYPE_AH, 0x3000, s, t);
    m.kmc = Some(KmCookie {
        proto: 2,
        cookie: 5,
    });
    push("update other kmp", m, EINVAL, D::DuplicateKmp);
    let mut m = sel(SADB_UPDATE, SADB_SATYPE_AH, 0x3000, s, t);
    m.kmc = Some(KmCookie {
        proto: 1,
        cookie: 6,
    });
    push("update other cookie", m, EINVAL, D::DuplicateKmc);
    let mut m = up();
    m.msg_type = SADB_X_UPDATEPAIR;
    push("updatepair unpaired", m, ESRCH, D::PairSaNotfound);
    push(
        "delpair unpaired",
        sel(SADB_X_DELPAIR, esp, 0x1000, s, t),
        ESRCH,
        D::PairSaNotfound,
    );
    push(
        "delete not found",
        sel(SADB_DELETE, esp, 0x4444, s, t),
        ESRCH,
        D::SaNotfound,
    );
    let mut m = sel(SADB_DELETE, esp, 0x1000, s, t);
    m.dst = None;
    push("delete no dst", m, EINVAL, D::MissingDst);
    let mut m = sel(SADB_GET, esp, 0x1000, s, t);
    m.key_encrypt = Key::new(&[1; 8]);
    push("get with key", m, EINVAL, D::EkeyPresent);
    let mut m = sel(SADB_GET, esp, 0x1000, s, t);
    m.sa = None;
    push("get no sa", m, EINVAL, D::MissingSa);
    push(
        "get satype 0",
        sel(SADB_GET, 0, 0x1000, s, t),
        EINVAL,
        D::SatypeNeeded,
    );
    let mut m = sel(SADB_X_DELPAIR_STATE, 0, 0x1000, s, t);
    m.sa.as_mut().unwrap().state = 9;
    push("delpair_state state", m, EINVAL, D::BadSastate);

    let mut m = Message::new(SADB_FLUSH, 0);
    m.sa = Some(sa_ext(1, 0, 0));
    push("flush with extension", m, EINVAL, D::NoExt);
    push(
        "flush satype 7",
        Message::new(SADB_FLUSH, 7),
        EINVAL,
        D::UnknownSatype,
    );
    let mut m = Message::new(SADB_DUMP, 0);
    m.pair = Some(Pair { spi: 3 });
    push("dump with extension", m, EINVAL, D::NoExt);
    push(
        "dump satype 9",
        Message::new(SADB_DUMP, 9),
        EINVAL,
        D::UnknownSatype,
    );
    push(
        "register satype 0",
        Message::new(SADB_REGISTER, 0),
        EINVAL,
        D::SatypeNeeded,
    );
    let mut m = Message::new(SADB_REGISTER, 0);
    m.ereg = Some(Ereg { satypes: vec![9] });
    push("ereg satype 9", m, EINVAL, D::UnknownSatype);
    let mut m = Message::new(SADB_REGISTER, esp);
    m.pair = Some(Pair { spi: 3 });
    push("register with extension", m, EINVAL, D::NoExt);
    let mut m = Message::new(SADB_ACQUIRE, 0);
    m.errno = EINVAL;
    push("acquire failure satype 0", m, EINVAL, D::SatypeNeeded);
    let mut m = Message::new(SADB_ACQUIRE, 0);
    m.src = Some(addr(s));
    m.dst = Some(addr(t));
    push("acquire satype 0", m, EINVAL, D::SatypeNeeded);
    let mut m = Message::new(SADB_ACQUIRE, esp);
    m.dst = Some(addr(t));
    push("acquire no src", m, EINVAL, D::MissingSrc);
    let mut m = Message::new(SADB_X_INVERSE_ACQUIRE, 0);
    m.src = Some(addr(s));
    m.dst = Some(addr(t));
    push("inverse acquire no policy", m.clone(), ENOENT, D::None);
    m.inner_src = Some(addr(s));
    push(
        "inverse acquire inner src only",
        m,
        EINVAL,
        D::MissingInnerDst,
    );
    push(
        "expire from a client",
        sel(SADB_EXPIRE, esp, 0x1000, s, t),
        EOPNOTSUPP,
        D::None,
    );
    cases
}

/// Framing and codec errors: raw bytes.
fn wire_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    let mut push = |name: &str, bytes: Vec<u8>, errno: u8, diag: D| {
        cases.push(Case {
            name: name.into(),
            bytes,
            errno,
            diag,
        })
    };
    let set_len = |b: &mut Vec<u8>| {
        let w = (b.len() / 8) as u16;
        b[4..6].copy_from_slice(&w.to_ne_bytes());
    };
    let mut good_m = esp_add(0x6000, "10.0.0.1", "10.0.0.2");
    good_m.seq = 3000;
    good_m.pid = 4242;
    let good = good_m.emit().unwrap();
    // Layout: header 16, SA 16 (16..32), SRC 24 (32..56), DST 24 (56..80), KEY ...
    push(
        "truncated (length says more)",
        good[..good.len() - 8].to_vec(),
        EMSGSIZE,
        D::None,
    );
    let mut b = good.clone();
    b.extend_from_slice(&[0; 8]);
    push("length says less", b, EMSGSIZE, D::None);
    let mut b = good.clone();
    b.extend_from_slice(&[0; 3]);
    push("not a multiple of 8", b, EMSGSIZE, D::None);
    push(
        "shorter than a header",
        good[..7].to_vec(),
        EMSGSIZE,
        D::None,
    );
    push(
        "header only, length 0",
        {
            let mut b = good[..16].to_vec();
            b[4..6].copy_from_slice(&0u16.to_ne_bytes());
            b
        },
        EMSGSIZE,
        D::None,
    );
    let mut b = good.clone();
    b[0] = 1;
    push("version 1", b, EINVAL, D::None);
    let mut b = good.clone();
    b[0] = 3;
    push("version 3", b, EINVAL, D::None);
    for t in [0u8, 16, 200] {
        let mut b = good.clone();
        b[1] = t;
        push(&format!("message type {t}"), b, EINVAL, D::UnknownMsg);
    }
    let mut b = good.clone();
    b[18] = 99;
    push("unknown extension", b, EINVAL, D::UnknownExt);
    let mut b = good.clone();
    b[16..18].copy_from_slice(&0u16.to_ne_bytes());
    push("extension length 0", b, EINVAL, D::BadExtlen);
    let mut b = good.clone();
    b[16..18].copy_from_slice(&200u16.to_ne_bytes());
    push("extension past the end", b, EINVAL, D::BadExtlen);
    let mut b = good.clone();
    b[16..18].copy_from_slice(&3u16.to_ne_bytes());
    push("SA extension size", b, EINVAL, D::MalformedSa);
    for (name, range, d) in [
        ("duplicate SA", 16..32, D::DuplicateSa),
        ("duplicate src", 32..56, D::DuplicateSrc),
        ("duplicate dst", 56..80, D::DuplicateDst),
        ("duplicate ekey", 80..good.len(), D::DuplicateEkey),
    ] {
        let mut b = good.clone();
        b.extend_from_slice(&good[range]);
        set_len(&mut b);
        push(name, b, EINVAL, d);
    }
    let mut b = good.clone();
    b[40..42].copy_from_slice(&7u16.to_ne_bytes());
    push("src family", b, EINVAL, D::BadSrcAf);
    let mut b = good.clone();
    b[64..66].copy_from_slice(&7u16.to_ne_bytes());
    push("dst family", b, EINVAL, D::BadDstAf);
    let mut b = good.clone();
    b[38] = 1;
    push("src reserved", b, EINVAL, D::MalformedSrc);
    let mut b = good.clone();
    b[79] = 1;
    push("dst padding", b, EINVAL, D::MalformedDst);
    // Key extension: bits = 0.
    let mut b = good.clone();
    b[84..86].copy_from_slice(&0u16.to_ne_bytes());
    push("ekey zero bits", b, EINVAL, D::MalformedEkey);
    // An AH key of zero bits.
    let mut ah = ah_add(0x6001, "10.0.0.1", "10.0.0.2");
    ah.seq = 3001;
    let ab = ah.emit().unwrap();
    let mut b = ab.clone();
    b[84..86].copy_from_slice(&0u16.to_ne_bytes());
    push("akey zero bits", b, EINVAL, D::MalformedAkey);
    let mut b = ab.clone();
    b.extend_from_slice(&ab[80..]);
    set_len(&mut b);
    push("duplicate akey", b, EINVAL, D::DuplicateAkey);
    // Inner addresses, NAT-T addresses: prefix, family, reserved bytes.
    let mut t = esp_add(0x6002, "10.0.0.1", "10.0.0.2");
    t.inner_src = Some(addr("10.9.0.0"));
    t.inner_dst = Some(addr("10.8.0.0"));
    t.natt_loc = Some(Address::new("10.0.0.1:4500".parse().unwrap()));
    t.natt_rem = Some(Address::new("10.0.0.2:4500".parse().unwrap()));
    t.sa.as_mut().unwrap().flags = SADB_X_SAFLAGS_NATT_LOC | SADB_X_SAFLAGS_NATT_REM;
    t.seq = 3002;
    let tb = t.emit().unwrap();
    let find = |ext: u16| -> usize {
        let mut at = 16;
        while at < tb.len() {
            let len = u16::from_ne_bytes([tb[at], tb[at + 1]]) as usize * 8;
            if u16::from_ne_bytes([tb[at + 2], tb[at + 3]]) == ext {
                return at;
            }
            at += len;
        }
        panic!("extension {ext} not found");
    };
    for (ext, name, d_prefix, d_af, d_mal) in [
        (
            SADB_X_EXT_ADDRESS_INNER_SRC,
            "inner src",
            Some(D::PrefixInnerSrc),
            D::BadInnerSrcAf,
            D::MalformedInnerSrc,
        ),
        (
            SADB_X_EXT_ADDRESS_INNER_DST,
            "inner dst",
            Some(D::PrefixInnerDst),
            D::BadInnerDstAf,
            D::MalformedInnerDst,
        ),
        (
            SADB_X_EXT_ADDRESS_NATT_LOC,
            "natt loc",
            None,
            D::BadNattLocAf,
            D::MalformedNattLoc,
        ),
        (
            SADB_X_EXT_ADDRESS_NATT_REM,
            "natt rem",
            None,
            D::BadNattRemAf,
            D::MalformedNattRem,
        ),
    ] {
        let at = find(ext);
        if let Some(d) = d_prefix {
            let mut b = tb.clone();
            b[at + 5] = 33;
            push(&format!("{name} prefix"), b, EINVAL, d);
        }
        let mut b = tb.clone();
        b[at + 8..at + 10].copy_from_slice(&7u16.to_ne_bytes());
        push(&format!("{name} family"), b, EINVAL, d_af);
        let mut b = tb.clone();
        b[at + 6] = 1;
        push(&format!("{name} reserved"), b, EINVAL, d_mal);
        let mut b = tb.clone();
        let len = u16::from_ne_bytes([tb[at], tb[at + 1]]) as usize * 8;
        b.extend_from_slice(&tb[at..at + len]);
        set_len(&mut b);
        let dup = match ext {
            SADB_X_EXT_ADDRESS_INNER_SRC => D::DuplicateInnerSrc,
            SADB_X_EXT_ADDRESS_INNER_DST => D::DuplicateInnerDst,
            SADB_X_EXT_ADDRESS_NATT_LOC => D::DuplicateNattLoc,
            _ => D::DuplicateNattRem,
        };
        push(&format!("{name} duplicate"), b, EINVAL, dup);
    }
    // SPI range: reserved word, duplicate.
    let mut g = getspi(SADB_SATYPE_ESP, "10.0.0.1", "10.0.0.2", 300, 400);
    g.seq = 3003;
    let gb = g.emit().unwrap();
    let at = gb.len() - 16;
    let mut b = gb.clone();
    b[at + 15] = 1;
    push("spirange reserved", b, EINVAL, D::MalformedRange);
    let mut b = gb.clone();
    b.extend_from_slice(&gb[at..]);
    set_len(&mut b);
    push("spirange duplicate", b, EINVAL, D::DuplicateRange);
    // Ironswan extension with an unknown flag.
    let mut m = esp_add(0x6003, "10.0.0.1", "10.0.0.2");
    m.ironswan_sa = Some(IronswanSa {
        replay_window: 1024,
        ..IronswanSa::default()
    });
    m.seq = 3004;
    let b0 = m.emit().unwrap();
    let mut b = b0.clone();
    let at = b0.len() - 24;
    assert_eq!(&b0[at + 2..at + 4], &240u16.to_ne_bytes());
    b[at + 8..at + 12].copy_from_slice(&0x40u32.to_ne_bytes());
    push("ironswan flags", b, EINVAL, D::BadSaflags);
    cases
}

/// Sets up the SAs the refusal cases refer to: 0x1000 and 0x1001 (reverse), an AH SA with a
/// KM cookie, and a pair 0x1100/0x1101.
fn refusal_fixture(a: &mut Client) {
    a.ok(esp_add(0x1000, "10.0.0.1", "10.0.0.2"));
    a.ok(esp_add(0x1001, "10.0.0.2", "10.0.0.1"));
    let mut k = ah_add(0x3000, "10.0.0.1", "10.0.0.2");
    k.kmc = Some(KmCookie {
        proto: SADB_X_KMP_IKE,
        cookie: 5,
    });
    a.ok(k);
    a.ok(esp_add(0x1101, "10.0.0.2", "10.0.0.1"));
    let mut p = esp_add(0x1100, "10.0.0.1", "10.0.0.2");
    p.pair = Some(Pair { spi: 0x1101 });
    a.ok(p);
}

#[test]
fn every_refusal_has_its_errno_and_diagnostic_and_changes_nothing() {
    let d = daemon("refusals", &[]);
    let mut a = d.client();
    let mut other = d.client();
    refusal_fixture(&mut a);
    other.collect(QUIET);
    let before = a.snapshot();
    assert_eq!(before.len(), 5);

    let mut cases = add_cases();
    cases.extend(other_cases());
    cases.extend(wire_cases());
    let mut seen = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for c in &cases {
        let r = a.raw_request(&c.bytes);
        if (r.errno, r.diagnostic) != (c.errno, c.diag.code()) || r.has_extensions() {
            failures.push(format!(
                "{}: expected errno {} {:?}, got errno {} diagnostic {}",
                c.name, c.errno, c.diag, r.errno, r.diagnostic
            ));
        }
        let after = a.snapshot();
        if after != before {
            failures.push(format!("{}: the SADB changed", c.name));
        }
        seen.insert(c.diag.code());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Refusals go to their sender only.
    assert!(
        other.collect(QUIET).is_empty(),
        "another client saw an error reply"
    );
    // A pending ACQUIRE is still suppressed afterwards (the failed ACQUIRE cases did not
    // touch it), and the daemon still serves.
    let (seq, _) = acquire_sent(&d.control("acquire esp 10.0.0.1 10.0.0.2"));
    assert_eq!(
        acquire_suppressed(&d.control("acquire esp 10.0.0.1 10.0.0.2")),
        seq
    );
    a.ok(esp_add(0x7000, "10.0.0.1", "10.0.0.2"));
    let st = d.stats();
    assert_eq!(st["messages_in"], a.sent);
    eprintln!(
        "{} refusal cases over the socket, {} distinct diagnostics: {:?}",
        cases.len(),
        seen.len(),
        seen
    );
}

#[test]
fn malformed_messages_get_an_error_and_the_daemon_keeps_serving() {
    let mut d = daemon("malformed", &[]);
    let mut a = d.client();
    a.ok(esp_add(0x1000, "10.0.0.1", "10.0.0.2"));
    a.ok(ah_add(0x2000, "10.0.0.1", "10.0.0.2"));
    let before = a.snapshot();
    let good = {
        let mut m = esp_add(0x3000, "10.0.0.1", "10.0.0.2");
        m.seq = 9;
        m.emit().unwrap()
    };
    let mut rng = Rng::new(0x1f2e_3d4c);
    let mut sent = 0;
    // Garbage of every small length, and random bytes behind a plausible header.
    for len in 1..=64usize {
        let g: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let r = a.raw_request(&g);
        assert_ne!(r.errno, 0, "garbage of {len} bytes accepted");
        sent += 1;
    }
    for _ in 0..300 {
        let mut b = good.clone();
        let flips = 1 + rng.below(4);
        for _ in 0..flips {
            let i = rng.below(b.len() as u64) as usize;
            b[i] ^= 1 + rng.below(255) as u8;
        }
        // A flip can leave the message well formed (e.g. in the key or the SPI): that is
        // an ordinary request, not what this test is about.
        if Message::parse(&b).is_ok() {
            continue;
        }
        let r = a.raw_request(&b);
        assert_ne!(r.errno, 0, "malformed message accepted: {b:?}");
        sent += 1;
    }
    // Truncation at every length.
    for n in 0..good.len() {
        if n == 0 {
            continue; // a zero-length SEQPACKET message reads as end-of-file
        }
        let r = a.raw_request(&good[..n]);
        assert_eq!(r.errno, EMSGSIZE, "truncated to {n}");
    }
    assert_eq!(a.snapshot(), before);
    // Still serving this client and new ones.
    a.ok(esp_add(0x4000, "10.0.0.1", "10.0.0.2"));
    let mut b = d.client();
    assert!(b
        .get(SADB_SATYPE_ESP, 0x4000, "10.0.0.1", "10.0.0.2")
        .is_ok());
    assert!(d.alive());
    assert!(sent > 100, "only {sent} malformed messages");
}

#[test]
fn an_empty_message_closes_only_its_own_connection() {
    let d = daemon("empty", &[]);
    let mut a = d.client();
    let mut b = d.client();
    a.ok(Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    // On a SEQPACKET socket a zero-length message is indistinguishable from end-of-file
    // for the receiver: the daemon closes that connection (and its registration).
    a.send_raw(&[]);
    let t0 = Instant::now();
    while d.stats()["clients"] != 1 {
        assert!(t0.elapsed() < REPLY_TIMEOUT, "connection not closed");
        std::thread::sleep(Duration::from_millis(10));
    }
    b.ok(esp_add(0x1000, "10.0.0.1", "10.0.0.2"));
    let (_, kms) = acquire_sent(&d.control("acquire esp 10.0.0.1 10.0.0.2"));
    assert_eq!(kms, 0, "the closed client's registration ended");
}

#[test]
fn an_oversized_message_gets_emsgsize() {
    let d = daemon("oversized", &[]);
    let mut a = d.client();
    a.ok(esp_add(0x1000, "10.0.0.1", "10.0.0.2"));
    let before = a.snapshot();
    // Larger than any PF_KEY message can be (sadb_msg_len is 16 bits of 8-byte words).
    let mut big = vec![0u8; 0xffff * 8 + 64];
    big[..16].copy_from_slice(&{
        let mut m = Message::new(SADB_ADD, SADB_SATYPE_ESP);
        m.seq = 5;
        m.pid = a.pid;
        m.emit().unwrap()
    });
    a.send_raw(&big);
    let r = a
        .recv(REPLY_TIMEOUT)
        .expect("reply to an oversized message");
    assert_eq!((r.errno, r.msg_type, r.seq), (90, SADB_ADD, 5));
    // The largest size the header can describe, with a length that matches, but garbage
    // extensions.
    let mut max = vec![0u8; 0xffff * 8];
    max[..16].copy_from_slice(&big[..16]);
    max[4..6].copy_from_slice(&0xffffu16.to_ne_bytes());
    max[16..18].copy_from_slice(&0xfffdu16.to_ne_bytes()); // to the end exactly
    max[18..20].copy_from_slice(&SADB_EXT_SA.to_ne_bytes());
    let r = a.raw_request(&max);
    assert_eq!((r.errno, r.diagnostic), (EINVAL, D::MalformedSa.code()));
    assert_eq!(a.snapshot(), before);
    assert_eq!(d.stats()["oversized"], 1);
    a.ok(esp_add(0x2000, "10.0.0.1", "10.0.0.2"));
}

#[test]
fn a_larval_sa_times_out_silently() {
    let d = daemon("larval", &["--larval-timeout", "2"]);
    let mut a = d.client();
    let mut b = d.client();
    let t0 = Instant::now();
    let spi = a
        .ok(getspi(SADB_SATYPE_ESP, "10.0.0.1", "10.0.0.2", 0, u32::MAX))
        .sa
        .unwrap()
        .spi;
    let spi2 = a
        .ok(getspi(SADB_SATYPE_ESP, "10.0.0.1", "10.0.0.2", 0, u32::MAX))
        .sa
        .unwrap()
        .spi;
    // The second one is matured in time and stays.
    let mut up = esp_add(spi2, "10.0.0.1", "10.0.0.2");
    up.msg_type = SADB_UPDATE;
    a.ok(up);
    assert_eq!(b.collect(QUIET).len(), 3, "GETSPI, GETSPI, UPDATE");
    assert_eq!(
        a.get(SADB_SATYPE_ESP, spi, "10.0.0.1", "10.0.0.2")
            .unwrap()
            .sa
            .unwrap()
            .state,
        SADB_SASTATE_LARVAL
    );
    loop {
        match a.get(SADB_SATYPE_ESP, spi, "10.0.0.1", "10.0.0.2") {
            Ok(_) => {
                assert!(
                    t0.elapsed() < Duration::from_secs(5),
                    "larval SA still there"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => {
                assert_eq!(e, (ESRCH, D::SaNotfound.code()));
                break;
            }
        }
    }
    assert!(t0.elapsed() >= Duration::from_millis(900));
    assert!(
        b.collect(QUIET).is_empty(),
        "the larval timeout sends nothing"
    );
    assert_eq!(
        a.get(SADB_SATYPE_ESP, spi2, "10.0.0.1", "10.0.0.2")
            .unwrap()
            .sa
            .unwrap()
            .state,
        SADB_SASTATE_MATURE
    );
}

// ---------------------------------------------------------------------------------------
// Keys file, save, restart, signals.

const KEYS: &str = "\
# test keys
add esp spi 0x4567 src 192.0.2.1 dst 192.0.2.2 encr_alg aes-cbc auth_alg sha256 \\
    encrkey 00112233445566778899aabbccddeeff \\
    authkey 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \\
    replay 1024 esn soft_addtime 10000 hard_addtime 20000 srcidtype fqdn a.example outbound
add ah spi 0x2000 src 192.0.2.1 dst 192.0.2.3 auth_alg sha256 \\
    authkey 1111111111111111111111111111111111111111111111111111111111111111
add esp spi 0x3000 src6 2001:db8::1 dst6 2001:db8::2 encr_alg aes-gcm \\
    encrkey 000102030405060708090a0b0c0d0e0f10111213
";

#[test]
fn keys_file_save_and_restart_give_the_same_sadb() {
    let mut d = daemon("keys-dummy", &[]);
    // Start again with the keys file in the daemon's own directory.
    let keys = d.dir.join("keys");
    let save = d.dir.join("saved");
    std::fs::write(&keys, KEYS).unwrap();
    let (k, s) = (keys.to_str().unwrap(), save.to_str().unwrap());
    d.restart_with(&["--keys-file", k, "--save-file", s]);
    let mut a = d.client();
    let loaded = a.dump(SADB_SATYPE_UNSPEC);
    assert_eq!(loaded.len(), 3);
    let g = a
        .get(SADB_SATYPE_ESP, 0x4567, "192.0.2.1", "192.0.2.2")
        .unwrap();
    assert_eq!(g.lifetime_hard.unwrap().addtime, 20000);
    assert_eq!(g.ident_src.unwrap().value, b"a.example".to_vec());
    assert_eq!(g.ironswan_sa.unwrap().replay_window, 1024);
    // More SAs through the socket: a tunnel SA, a pair, a larval one (not saved).
    let mut t = esp_add(0x5000, "192.0.2.1", "192.0.2.9");
    t.inner_src = Some(Address {
        prefixlen: 24,
        ..addr("10.1.0.0")
    });
    t.inner_dst = Some(Address {
        prefixlen: 16,
        ..addr("10.2.0.0")
    });
    a.ok(t);
    a.ok(ah_add(0x6000, "192.0.2.9", "192.0.2.1"));
    a.ok(getspi(
        SADB_SATYPE_ESP,
        "192.0.2.1",
        "192.0.2.2",
        0,
        u32::MAX,
    ));

    // save (control) writes a private file.
    let r = d.control("save");
    assert!(r.starts_with("ok saved 5 SA(s)"), "{r}");
    let mode = std::fs::metadata(&save).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "saved keys must be private");
    let mature: Vec<Message> = a
        .dump(SADB_SATYPE_UNSPEC)
        .into_iter()
        .filter(|r| r.sa.unwrap().state != SADB_SASTATE_LARVAL)
        .collect();
    assert_eq!(mature.len(), 5);

    // Restart from the saved file: the same SAs (current lifetimes aside).
    drop(a);
    d.restart_with(&["--keys-file", s]);
    let mut a = d.client();
    let again = a.dump(SADB_SATYPE_UNSPEC);
    assert_eq!(canon(&again, true), canon(&mature, true));

    // SIGUSR1 saves as well (to --save-file).
    let save2 = d.dir.join("saved2");
    d.restart_with(&["--keys-file", s, "--save-file", save2.to_str().unwrap()]);
    d.signal("USR1");
    let t0 = Instant::now();
    while !save2.exists() {
        assert!(t0.elapsed() < REPLY_TIMEOUT, "SIGUSR1 did not save");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        std::fs::metadata(&save2).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // SIGTERM saves on the way out.
    std::fs::remove_file(&save2).unwrap();
    let st = d.stop();
    assert!(st.success());
    assert!(save2.exists(), "SIGTERM did not save");
    d.restart_with(&["--keys-file", save2.to_str().unwrap()]);
    let mut a = d.client();
    assert_eq!(
        canon(&a.dump(SADB_SATYPE_UNSPEC), true),
        canon(&mature, true)
    );
    // Without a save file, `save` is an error.
    d.restart_with(&[]);
    assert!(d.control("save").starts_with("error"));
}

#[test]
fn sighup_reloads_and_a_broken_keys_file_keeps_the_sadb() {
    let mut d = daemon("hup-dummy", &[]);
    let keys = d.dir.join("keys");
    std::fs::write(&keys, KEYS).unwrap();
    d.restart_with(&["--keys-file", keys.to_str().unwrap()]);
    let mut a = d.client();
    a.ok(esp_add(0x7777, "10.0.0.1", "10.0.0.2")); // not in the file
    let before = a.snapshot();
    assert_eq!(before.len(), 4);

    let hup_and_settle = |d: &Daemon, a: &mut Client| {
        let logged = d.log_text().matches("reload").count();
        d.signal("HUP");
        let t0 = Instant::now();
        while d.log_text().matches("reload").count() == logged {
            assert!(t0.elapsed() < REPLY_TIMEOUT, "no reload logged");
            std::thread::sleep(Duration::from_millis(20));
        }
        a.collect(QUIET)
    };
    // A syntax error, an engine refusal on the last line, a missing file.
    for broken in [
        format!("{KEYS}add esp spi 0x9000 src 10.0.0.1 dst\n"),
        format!("{KEYS}add esp spi 0x9001 src 10.0.0.1 dst 10.0.0.2 encr_alg aes-gcm encrkey 00\n"),
        format!("{KEYS}get esp spi 0x4567 dst 192.0.2.2\n"),
        format!("{KEYS}add esp spi 0x4567 src 192.0.2.1 dst 192.0.2.2 encr_alg aes-gcm encrkey 000102030405060708090a0b0c0d0e0f10111213\n"),
    ] {
        std::fs::write(&keys, &broken).unwrap();
        let seen = hup_and_settle(&d, &mut a);
        assert!(seen.is_empty(), "a refused reload broadcast {seen:?}");
        assert_eq!(a.snapshot(), before, "a broken keys file changed the SADB:\n{broken}");
    }
    std::fs::remove_file(&keys).unwrap();
    hup_and_settle(&d, &mut a);
    assert_eq!(a.snapshot(), before);
    assert!(d.log_text().contains("reload refused"));

    // A good file: flush + load, broadcast like anyone's FLUSH and ADDs.
    std::fs::write(
        &keys,
        "add ah spi 0x2000 src 192.0.2.1 dst 192.0.2.3 auth_alg sha256 authkey \
         1111111111111111111111111111111111111111111111111111111111111111\n",
    )
    .unwrap();
    let seen = hup_and_settle(&d, &mut a);
    let types: Vec<u8> = seen.iter().map(|m| m.msg_type).collect();
    assert_eq!(types, vec![SADB_FLUSH, SADB_ADD]);
    let recs = a.dump(SADB_SATYPE_UNSPEC);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].sa.unwrap().spi, 0x2000);
    assert!(d.alive());
}

// ---------------------------------------------------------------------------------------
// Privilege.

const HELPER_ENV: &str = "IRONSWAN_PFKEY_HELPER";
const HELPER_SOCKET_ENV: &str = "IRONSWAN_PFKEY_HELPER_SOCKET";
const READY: &str = "IRONSWAN-HELPER-READY";
const DONE: &str = "IRONSWAN-HELPER-DONE";

/// Not a test of its own: the body of the unprivileged and CAP_NET_ADMIN clients, run in a
/// child process (this test binary, re-executed as user `nobody`). Returns at once unless
/// the environment says which role to play.
#[test]
fn privilege_helper_process() {
    let Ok(role) = std::env::var(HELPER_ENV) else {
        return;
    };
    let path = PathBuf::from(std::env::var(HELPER_SOCKET_ENV).unwrap());
    assert_eq!(ipsec_sys::geteuid(), 65534, "the helper runs as nobody");
    let mut stdin = BufReader::new(std::io::stdin());
    let mut line = String::new();
    let mut c = Client::connect(&path);
    match role.as_str() {
        "unprivileged" => {
            let reqs = [
                Message::new(SADB_FLUSH, 0),
                esp_add(0x9999, "10.0.0.1", "10.0.0.2"),
                Message::new(SADB_DUMP, 0),
                getspi(SADB_SATYPE_ESP, "10.0.0.1", "10.0.0.2", 0, u32::MAX),
                Message::new(SADB_REGISTER, SADB_SATYPE_ESP),
                Message::new(SADB_X_PROMISC, 1),
                sel(SADB_GET, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2"),
                sel(SADB_DELETE, SADB_SATYPE_ESP, 0x1000, "10.0.0.1", "10.0.0.2"),
            ];
            for m in reqs {
                let t = m.msg_type;
                let r = c.request(m);
                assert_eq!((r.errno, r.msg_type), (EPERM, t), "{r:?}");
                assert!(!r.has_extensions());
            }
            // Garbage too.
            c.send_raw(&[0xff; 5]);
            let r = c.recv(REPLY_TIMEOUT).unwrap();
            assert_eq!(r.errno, EPERM);
            println!("{READY}");
            stdin.read_line(&mut line).unwrap();
            // The privileged client ADDed, DELETEd and FLUSHed meanwhile: none of those
            // broadcasts may reach us.
            let extra = c.collect(Duration::from_millis(500));
            assert!(extra.is_empty(), "unprivileged client received {extra:?}");
        }
        "net_admin" => {
            c.ok(esp_add(0x3000, "10.0.0.1", "10.0.0.2"));
            assert!(c
                .get(SADB_SATYPE_ESP, 0x3000, "10.0.0.1", "10.0.0.2")
                .is_ok());
            assert!(c.dump(0).iter().any(|r| r.sa.unwrap().spi == 0x3000));
            c.ok(Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
            println!("{READY}");
            stdin.read_line(&mut line).unwrap();
            assert!(c
                .wait_for(REPLY_TIMEOUT, |m| m.msg_type == SADB_ADD
                    && m.sa.is_some_and(|s| s.spi == 0x4000))
                .is_some());
            assert!(c.wait_for(REPLY_TIMEOUT, is_type(SADB_ACQUIRE)).is_some());
            c.ok(sel(
                SADB_DELETE,
                SADB_SATYPE_ESP,
                0x3000,
                "10.0.0.1",
                "10.0.0.2",
            ));
        }
        other => panic!("unknown helper role {other}"),
    }
    println!("{DONE}");
}

/// The test binary, somewhere user `nobody` may execute it (copied into `dir` with mode
/// 0755 when the build directory is not reachable).
fn exe_for_nobody(dir: &Path) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let reachable = exe.ancestors().skip(1).all(|p| {
        p.as_os_str().is_empty()
            || std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    });
    let runnable = std::fs::metadata(&exe).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
    if reachable && runnable {
        return exe;
    }
    let copy = dir.join("pfkey-conformance-helper");
    std::fs::copy(&exe, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    copy
}

/// A helper child process with its stdout read line by line.
struct Helper {
    child: std::process::Child,
    lines: mpsc::Receiver<String>,
    out: Vec<String>,
}

impl Helper {
    fn spawn(mut cmd: Command, role: &str, socket: &Path) -> Self {
        cmd.args([
            "--exact",
            "privilege_helper_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, role)
        .env(HELPER_SOCKET_ENV, socket)
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            out: Vec::new(),
        }
    }

    fn wait_line(&mut self, want: &str) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(l) => {
                    let hit = l.trim_end().ends_with(want); // libtest may precede it
                    self.out.push(l);
                    if hit {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let _ = self.child.kill();
        let o = self.child.wait_with_output_lossy();
        panic!(
            "helper never said {want}; stdout:\n{}\n{o}",
            self.out.join("\n")
        );
    }

    fn say(&mut self, s: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{s}").unwrap();
        stdin.flush().unwrap();
    }

    fn finish(mut self) {
        self.wait_line(DONE);
        let t0 = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let o = self.child.wait_with_output_lossy();
                assert!(
                    st.success(),
                    "helper failed ({st}):\n{}\n{o}",
                    self.out.join("\n")
                );
                return;
            }
            assert!(t0.elapsed() < Duration::from_secs(30), "helper hangs");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

trait StderrText {
    fn wait_with_output_lossy(&mut self) -> String;
}

impl StderrText for std::process::Child {
    fn wait_with_output_lossy(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut s);
        }
        format!("stderr:\n{s}")
    }
}

#[test]
fn an_unprivileged_client_gets_eperm_and_no_broadcasts() {
    if !is_root() {
        eprintln!("skipped: needs root (to run a client as nobody)");
        return;
    }
    let d = daemon("unpriv", &[]);
    let mut a = d.client();
    a.ok(esp_add(0x1000, "10.0.0.1", "10.0.0.2"));
    a.ok(Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    let before = a.snapshot();
    let exe = exe_for_nobody(&d.dir);
    let mut cmd = Command::new(exe);
    cmd.uid(65534).gid(65534);
    let mut h = Helper::spawn(cmd, "unprivileged", &d.pfkey);
    h.wait_line(READY);
    // Broadcasts of every kind while the unprivileged client listens.
    a.ok(esp_add(0x2000, "10.0.0.1", "10.0.0.2"));
    a.ok(getspi(SADB_SATYPE_ESP, "10.0.0.1", "10.0.0.2", 0, u32::MAX));
    a.ok(Message::new(SADB_FLUSH, SADB_SATYPE_AH));
    a.ok(sel(
        SADB_DELETE,
        SADB_SATYPE_ESP,
        0x2000,
        "10.0.0.1",
        "10.0.0.2",
    ));
    acquire_sent(&d.control("acquire esp 10.0.0.1 10.0.0.2"));
    h.say("go");
    h.finish();
    // Only the larval SA of the GETSPI differs.
    let after: Vec<Message> = a
        .dump(0)
        .into_iter()
        .filter(|r| r.sa.unwrap().state != SADB_SASTATE_LARVAL)
        .collect();
    assert_eq!(canon(&after, false), before);
    let st = d.stats();
    assert_eq!(st["refused_unprivileged"], 9);
}

#[test]
fn a_non_root_client_with_cap_net_admin_is_privileged() {
    if !is_root() {
        eprintln!("skipped: needs root (to run a client as nobody with CAP_NET_ADMIN)");
        return;
    }
    let Ok(setpriv) = which("setpriv") else {
        eprintln!("skipped: setpriv (util-linux) not found");
        return;
    };
    let d = daemon("netadmin", &[]);
    let mut a = d.client();
    let exe = exe_for_nobody(&d.dir);
    let mut cmd = Command::new(setpriv);
    cmd.args([
        "--reuid",
        "65534",
        "--regid",
        "65534",
        "--clear-groups",
        "--inh-caps",
        "+net_admin",
        "--ambient-caps",
        "+net_admin",
    ])
    .arg(exe);
    let mut h = Helper::spawn(cmd, "net_admin", &d.pfkey);
    h.wait_line(READY);
    // a saw the helper's ADD.
    assert!(a
        .wait_for(REPLY_TIMEOUT, |m| m.msg_type == SADB_ADD
            && m.sa.is_some_and(|s| s.spi == 0x3000))
        .is_some());
    a.ok(esp_add(0x4000, "10.0.0.1", "10.0.0.2"));
    acquire_sent(&d.control("acquire esp 10.0.0.1 10.0.0.2"));
    h.say("go");
    h.finish();
    let left: Vec<u32> = a.dump(0).iter().map(|r| r.sa.unwrap().spi).collect();
    assert_eq!(left, vec![0x4000]);
    assert_eq!(d.stats()["refused_unprivileged"], 0);
}

fn which(name: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin".into(), "/bin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

// ---------------------------------------------------------------------------------------
// A client that never reads.

#[test]
fn a_client_that_never_reads_does_not_stall_the_others() {
    let mut d = daemon("slow", &["--client-queue", "16"]);
    let slow = d.client();
    let mut flood = d.client();
    let mut other = d.client();
    other.ok(esp_add(0x100, "10.0.0.1", "10.0.0.9"));
    let t0 = Instant::now();
    let mut rounds = 0u32;
    // ADD/DELETE broadcasts, pipelined 64 at a time, until the slow client's socket and
    // its queue in the daemon are full and messages for it are dropped.
    loop {
        let mut seqs = Vec::new();
        for i in 0..32u32 {
            let spi = 0x1_0000 + i;
            for mut m in [
                esp_add(spi, "10.0.0.1", "10.0.0.2"),
                sel(SADB_DELETE, SADB_SATYPE_ESP, spi, "10.0.0.1", "10.0.0.2"),
            ] {
                m.seq = flood.next_seq();
                m.pid = flood.pid;
                flood.send(&m);
                seqs.push((m.msg_type, m.seq));
            }
        }
        for (t, s) in seqs {
            assert_eq!(flood.reply_to(t, s).errno, 0);
        }
        flood.backlog.clear();
        rounds += 1;
        // Meanwhile another client is served promptly.
        let t1 = Instant::now();
        assert!(other
            .get(SADB_SATYPE_ESP, 0x100, "10.0.0.1", "10.0.0.9")
            .is_ok());
        assert!(
            t1.elapsed() < Duration::from_secs(2),
            "GET took {:?}",
            t1.elapsed()
        );
        other.backlog.clear();
        if rounds % 8 == 0 && d.stats()["dropped_queue_full"] > 0 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(40),
            "no drops after {rounds} rounds"
        );
    }
    let st = d.stats();
    assert!(st["dropped_queue_full"] > 0);
    assert_eq!(st["clients"], 3, "the slow client is still connected");
    eprintln!(
        "{} broadcasts in {:?}, {} dropped for the slow client",
        rounds * 64,
        t0.elapsed(),
        st["dropped_queue_full"]
    );
    // The slow client wakes up: what it gets is well formed, and it is served.
    let mut slow = slow;
    let got = slow.collect(Duration::from_millis(200));
    assert!(!got.is_empty());
    assert!(slow
        .get(SADB_SATYPE_ESP, 0x100, "10.0.0.1", "10.0.0.9")
        .is_ok());
    assert!(d.alive());
}

// ---------------------------------------------------------------------------------------
// DUMP flow control.

/// A DUMP larger than what the client's socket buffer and its queue in the daemon hold at
/// once arrives complete, ends with its seq-0 message and drops nothing: the daemon pulls
/// the records from the engine only while the client's queue is below its high-water mark.
/// (It used to drain the whole dump at once and drop what did not fit the queue.) Another
/// client is served meanwhile.
#[test]
fn a_dump_larger_than_the_client_queue_is_complete() {
    let mut d = daemon("bigdump", &["--client-queue", "64"]);
    let mut a = d.client();
    let n = 20_000u32;
    let mut seqs = Vec::new();
    for i in 0..n {
        let mut m = esp_add(0x1_0000 + i, "10.0.0.1", "10.0.0.2");
        m.seq = a.next_seq();
        m.pid = a.pid;
        a.send(&m);
        seqs.push(m.seq);
        if seqs.len() == 64 {
            for s in seqs.drain(..) {
                assert_eq!(a.reply_to(SADB_ADD, s).errno, 0);
            }
        }
    }
    for s in seqs.drain(..) {
        assert_eq!(a.reply_to(SADB_ADD, s).errno, 0);
    }
    assert_eq!(d.stats()["sas"], u64::from(n));
    // Ask for the dump and read it a moment later.
    let mut m = Message::new(SADB_DUMP, 0);
    m.seq = a.next_seq();
    m.pid = a.pid;
    a.send(&m);
    std::thread::sleep(Duration::from_millis(500));
    // The dump waits for its reader; another client is served meanwhile.
    let mut b = d.client();
    let t0 = Instant::now();
    assert!(b
        .get(SADB_SATYPE_ESP, 0x1_0000, "10.0.0.1", "10.0.0.2")
        .is_ok());
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "GET took {:?}",
        t0.elapsed()
    );
    let mut records = 0u32;
    let mut ended = false;
    let mut last_spi = 0;
    while let Some(r) = a.recv(Duration::from_secs(2)) {
        if r.msg_type == SADB_DUMP && r.seq == m.seq {
            records += 1;
            let spi = r.sa.unwrap().spi;
            assert!(spi > last_spi, "records in SADB (here: ADD) order");
            last_spi = spi;
        } else if r.msg_type == SADB_DUMP && r.seq == 0 {
            assert_eq!(r.errno, 0);
            ended = true;
            break;
        }
    }
    let dropped = d.stats()["dropped_queue_full"];
    assert!(
        records == n && ended && dropped == 0,
        "DUMP of {n} SAs: {records} records, end marker {ended}, {dropped} messages dropped"
    );
    // And again, read as it comes.
    assert_eq!(a.dump(SADB_SATYPE_ESP).len(), n as usize);
    assert!(d.alive());
}
