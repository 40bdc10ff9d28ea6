//! End-to-end: automatic keying between two hosts, each running ipsecd (policy requiring
//! ESP between them, no SAs) and in.ikev2d (one PSK rule).
//!
//! ```text
//!   A 192.0.2.1/24 ──va──vb── B 192.0.2.2/24
//!   ipsecd + in-ikev2d          ipsecd + in-ikev2d
//! ```
//!
//! A ping from A makes A's ipsecd send an ACQUIRE; A's daemon negotiates IKE_SA_INIT and
//! IKE_AUTH with B's, both install the Child SA pair through PF_KEY, and the traffic
//! flows both ways. The capture on the link holds only IKE (UDP 500) and ESP. Then the
//! pair's short lifetime runs out: the soft EXPIRE makes the daemon rekey the pair
//! (make before break) while pings go on; and when B's ipsecd is killed and restarted,
//! B's daemon registers again and new traffic is keyed again. The Child SA algorithms
//! are what each side's IPsec policy allows (`responder_policy_chooses_...`).
//! Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../ipsecd/tests/common/netns.rs"]
mod netns;

use common::Ike;

use std::time::{Duration, Instant};

use netns::*;

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";
fn rule(local: &str, remote: &str, extra: &str) -> String {
    format!(
        "ikesa_xform {{ encr_alg aes-gcm(256) prf sha256 dh_group 31 }}\n\
         {{\n  label \"a-b\"\n  auth_method preshared\n  local_addr {local}\n  remote_addr {remote}\n{extra}}}\n"
    )
}

fn policy(local: &str, remote: &str) -> String {
    format!("{{laddr {local} raddr {remote}}} ipsec {{encr_algs aes-gcm sa shared}}\n")
}

/// Only IKE and ESP between A and B on the wire.
fn only_ike_and_esp(pcap: &Pcap) {
    let (a, b): (std::net::IpAddr, std::net::IpAddr) = (A.parse().unwrap(), B.parse().unwrap());
    let mut esp = 0;
    for p in pcap.ip().filter(|p| !p.is_nd_or_mld()) {
        assert!(
            (p.src, p.dst) == (a, b) || (p.src, p.dst) == (b, a),
            "a stranger on the link: {p:?}"
        );
        match p.proto {
            50 => esp += 1,
            17 if p.dport() == Some(500) => {}
            _ => panic!("cleartext between A and B: {p:?}"),
        }
    }
    assert!(esp > 0, "no ESP captured");
}

/// A and B joined by a link, each with an ipsecd requiring ESP toward the other.
fn two_hosts(test: &str) -> Option<(Lab, Ns, Ns, Daemon, Daemon)> {
    two_hosts_at(test, A, B)
}

/// [`two_hosts`] with these addresses.
fn two_hosts_at(test: &str, a_addr: &str, b_addr: &str) -> Option<(Lab, Ns, Ns, Daemon, Daemon)> {
    let lab = Lab::new(test)?;
    let (a, b) = common::two_namespaces(&lab, a_addr, b_addr);
    let da = Daemon::start(&lab, &a, "a", "", &policy(a_addr, b_addr));
    let db = Daemon::start(&lab, &b, "b", "", &policy(b_addr, a_addr));
    Some((lab, a, b, da, db))
}

#[test]
fn acquire_negotiates_and_installs_esp_both_ways() {
    let Some((lab, a, b, da, mut db)) = two_hosts("acquire_negotiates_and_installs_esp_both_ways")
    else {
        return;
    };
    // Short Child SA lifetime on the initiator: soft EXPIRE at 9 s, hard at 10 s; PFS.
    let ia = Ike::start(
        &lab,
        &a,
        "a",
        &da,
        &rule(A, B, "  childsa_lifetime_secs 10\n  childsa_pfs yes\n"),
        &[],
    );
    // Both ask for PFS: the rekey's CREATE_CHILD_SA carries a key exchange.
    let ib = Ike::start(&lab, &b, "b", &db, &rule(B, A, "  childsa_pfs yes\n"), &[]);
    let cap = Capture::start(&lab, &a, "va", "link");

    // No SA yet: the first packet makes ipsecd ACQUIRE, in-ikev2d negotiates.
    let _ = a.ping(B, 2);
    ia.wait_log("installed", 1, Duration::from_secs(10));
    ib.wait_log("installed", 1, Duration::from_secs(10));
    assert!(
        ia.log().contains("initiating IKE with 192.0.2.2"),
        "{}",
        ia.log()
    );
    assert!(ia.log().contains("established (initiator"), "{}", ia.log());
    assert!(ib.log().contains("established (responder"), "{}", ib.log());
    // Each side's inbound SA is the other's outbound.
    // The inbound SPIs came from ipsecd (GETSPI) and were keyed with UPDATE.
    assert!(
        ia.log()
            .contains("installed (UPDATE inbound + ADD outbound)"),
        "{}",
        ia.log()
    );
    assert!(
        ib.log()
            .contains("installed (UPDATE inbound + ADD outbound)"),
        "{}",
        ib.log()
    );
    let (pa, pb) = (ia.pairs(), ib.pairs());
    assert_eq!(pa.len(), 1);
    assert_eq!(pb, vec![(pa[0].1, pa[0].0)]);

    a.ping_ok(B, 5);
    b.ping_ok(A, 5);
    let (ca, cb) = (da.counters(), db.counters());
    assert!(ca.sa("esp", pa[0].1).packets >= 5, "{ca:#?}");
    assert!(ca.sa("esp", pa[0].0).packets >= 5, "{ca:#?}");
    assert!(cb.sa("esp", pb[0].1).packets >= 5, "{cb:#?}");
    assert_eq!(ca.drop_reasons(), Default::default(), "{ca:#?}");

    // Rekey on soft EXPIRE (make before break), pings going on meanwhile.
    let mut ping = a.spawn(&["ping", "-n", "-i", "0.2", "-c", "50", B]);
    ia.wait_log("soft EXPIRE", 1, Duration::from_secs(15));
    ia.wait_log("installed", 2, Duration::from_secs(10));
    ib.wait_log("installed", 2, Duration::from_secs(10));
    ia.wait_log("deleted: SPIs", 1, Duration::from_secs(10));
    ib.wait_log("deleted: SPIs", 1, Duration::from_secs(10));
    let out = ping.success(Duration::from_secs(20)).join("\n");
    assert!(
        out.contains("50 received"),
        "pings lost across the rekey:\n{out}"
    );
    let (pa, pb) = (ia.pairs(), ib.pairs());
    assert_eq!(pb[1], (pa[1].1, pa[1].0));
    // A asked for the rekey: its new inbound SPI came from GETSPI too; so did B's, the
    // responder of CREATE_CHILD_SA (larval SA, then UPDATE).
    for ike in [&ia, &ib] {
        assert_eq!(
            ike.log().matches("installed (UPDATE inbound").count(),
            2,
            "{}",
            ike.log()
        );
    }
    assert!(!ib.log().contains("installed (ADD inbound"), "{}", ib.log());
    let ca = da.counters();
    assert!(
        ca.sa("esp", pa[1].1).packets > 0,
        "new pair unused: {ca:#?}"
    );

    only_ike_and_esp(&cap.stop());

    // ikev2adm: the IKE SA with its current pair, the rule, the counters.
    let (ok, out, err) = ia.adm(&["show", "ikesa"]);
    assert!(ok, "{err}");
    assert!(
        out.contains(
            "192.0.2.1:500 <-> 192.0.2.2:500 initiator established rule=\"a-b\" children=1"
        ) && out.contains(&format!("0x{:08x}/0x{:08x}", pa[1].0, pa[1].1)),
        "{out}"
    );
    let (ok, out, _) = ib.adm(&["show", "rule"]);
    assert!(
        ok && out.contains("rule \"a-b\" local 192.0.2.2/32 remote 192.0.2.1/32 ike encr=20/256"),
        "{out}"
    );
    let (ok, out, _) = ia.adm(&["show", "stats"]);
    assert!(
        ok && out.contains("ike_established=1\n") && out.contains("children_installed=2\n"),
        "{out}"
    );
    let (ok, _, err) = ia.adm(&["bogus"]);
    assert!(!ok && err.contains("unknown request \"bogus\""), "{err}");

    // `flush ikesa` on A: B is told and removes its pair too; the next packet negotiates
    // again.
    let (ok, out, _) = ia.adm(&["flush", "ikesa"]);
    assert!(ok && out == "deleted 1\n", "{out}");
    ib.wait_log(
        "IKE SA with 192.0.2.1:500 deleted",
        1,
        Duration::from_secs(5),
    );
    ib.wait_log("deleted: SPIs", 2, Duration::from_secs(5));
    let _ = a.ping(B, 2);
    ia.wait_log("installed", 3, Duration::from_secs(10));
    a.ping_ok(B, 3);

    // ipsecd restarts (SADB lost): B's daemon registers again and forgets its IKE SAs
    // (telling A); B's next packet is keyed by a new IKE SA (with INITIAL_CONTACT), and
    // traffic flows both ways again.
    db.kill9();
    db.restart();
    ib.wait_log("registered for ESP", 2, Duration::from_secs(10));
    let t0 = Instant::now();
    while !b.ping(A, 1).status.success() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no traffic after ipsecd's restart:\nA:\n{}\nB:\n{}",
            ia.log(),
            ib.log()
        );
    }
    // A dropped the old IKE SA: B's daemon, losing ipsecd, sent it a Delete (IKE carries
    // ipsecd's mark, off the TUN); had that been lost, the INITIAL_CONTACT of B's new
    // IKE SA would have done it.
    let log = ia.log();
    assert!(
        log.contains("INITIAL_CONTACT from 192.0.2.2")
            || log
                .lines()
                .any(|l| l.ends_with("IKE SA with 192.0.2.2:500 deleted")),
        "{log}"
    );
    a.ping_ok(B, 3);
    b.ping_ok(A, 3);
}

/// The IKE SA is rekeyed when its lifetime runs out (the Child SA moves to the new one,
/// the old one is deleted), and a peer whose daemon dies is found dead by liveness
/// checks: its Child SAs leave ipsecd, and the next packet negotiates with the restarted
/// daemon (INITIAL_CONTACT).
#[test]
fn ike_sa_rekey_and_dead_peer_detection() {
    let Some((lab, a, b, da, db)) = two_hosts("ike_sa_rekey_and_dead_peer_detection") else {
        return;
    };
    let fast = common::FAST_DPD;
    let ia = Ike::start(
        &lab,
        &a,
        "a",
        &da,
        &rule(A, B, "  ikesa_lifetime_secs 4\n"),
        &fast,
    );
    let ib = Ike::start(&lab, &b, "b", &db, &rule(B, A, ""), &fast);
    let _ = a.ping(B, 2);
    ia.wait_log("installed", 1, Duration::from_secs(10));

    // At 85 % of 4 s A rekeys the IKE SA; the pair moves over, the old IKE SA goes.
    ia.wait_log(
        "rekeying the IKE SA with 192.0.2.2:500",
        1,
        Duration::from_secs(10),
    );
    ia.wait_log(
        "IKE SA with 192.0.2.2:500 rekeyed",
        1,
        Duration::from_secs(5),
    );
    ib.wait_log(
        "IKE SA with 192.0.2.1:500 rekeyed",
        1,
        Duration::from_secs(5),
    );
    ib.wait_log(
        "IKE SA with 192.0.2.1:500 deleted",
        1,
        Duration::from_secs(5),
    );
    a.ping_ok(B, 3);
    b.ping_ok(A, 3);
    let (ok, out, _) = ia.adm(&["show", "ikesa"]);
    assert!(
        ok && out.lines().count() == 1 && out.contains("children=1"),
        "{out}"
    );
    assert!(
        !ia.log().contains("deleted: SPIs"),
        "a pair was lost in the IKE rekey:\n{}",
        ia.log()
    );

    // B's daemon dies: A's liveness check goes unanswered, A removes the pair.
    ib.kill();
    ia.wait_log("dead peer", 1, Duration::from_secs(10));
    ia.wait_log("deleted: SPIs", 1, Duration::from_secs(2));
    // The restarted daemon deletes the pair its predecessor left in ipsecd.
    let ib = Ike::start(&lab, &b, "b", &db, &rule(B, A, ""), &fast);
    ib.wait_log("left by an earlier in.ikev2d", 2, Duration::from_secs(5));
    let t0 = Instant::now();
    while !a.ping(B, 1).status.success() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no traffic with the restarted daemon:\nA:\n{}\nB:\n{}",
            ia.log(),
            ib.log()
        );
    }
    b.ping_ok(A, 3);
}

/// The same over IPv6: IKE on the daemon's IPv6 socket, ESP between the two addresses.
#[test]
fn ipv6_peers_negotiate_and_protect_traffic() {
    const A6: &str = "2001:db8::1";
    const B6: &str = "2001:db8::2";
    let Some((lab, a, b, da, db)) =
        two_hosts_at("ipv6_peers_negotiate_and_protect_traffic", A6, B6)
    else {
        return;
    };
    let ia = Ike::start(&lab, &a, "a", &da, &rule(A6, B6, ""), &[]);
    let ib = Ike::start(&lab, &b, "b", &db, &rule(B6, A6, ""), &[]);
    let _ = a.ping(B6, 2);
    ia.wait_log("installed", 1, Duration::from_secs(10));
    ib.wait_log("installed", 1, Duration::from_secs(10));
    assert!(
        ia.log()
            .contains("IKE SA with [2001:db8::2]:500 established (initiator"),
        "{}",
        ia.log()
    );
    a.ping_ok(B6, 3);
    b.ping_ok(A6, 3);
    let (pa, pb) = (ia.pairs(), ib.pairs());
    assert_eq!(pb, vec![(pa[0].1, pa[0].0)]);
    assert!(da.counters().sa("esp", pa[0].1).packets >= 3);
}

/// A tool of ipsec-tools built next to in-ikev2d.
fn tool(name: &str) -> std::path::PathBuf {
    let p = std::path::Path::new(common::IKEV2D)
        .parent()
        .unwrap()
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build -p ipsec-tools --bins`",
        p.display()
    );
    p
}

/// `ipseckey -n dump` against `d`.
fn dump(ns: &Ns, d: &Daemon) -> String {
    let (bin, sock) = (tool("ipseckey"), d.pfkey.display().to_string());
    ns.ok(&[bin.to_str().unwrap(), "--socket", &sock, "-n", "dump"])
}

/// `ipsecconf ARGS` against `d`.
fn ipsecconf(ns: &Ns, d: &Daemon, args: &[&str]) -> String {
    let (bin, sock) = (tool("ipsecconf"), d.control.display().to_string());
    let mut all = vec![bin.to_str().unwrap(), "--socket", &sock];
    all.extend_from_slice(args);
    ns.ok(&all)
}

/// The (encryption, authentication) algorithm names of the mature SAs in a dump.
fn algs(dump: &str) -> Vec<(String, String)> {
    let mut v = Vec::new();
    let mut auth = String::from("none");
    for l in dump.lines() {
        if let Some(a) = l.split("Authentication algorithm = ").nth(1) {
            auth = a.trim().to_string();
        }
        if let Some(e) = l.split("Encryption algorithm = ").nth(1) {
            v.push((e.trim().to_string(), auth.clone()));
            auth = String::from("none");
        }
    }
    v
}

/// Waits until `pred` holds for B's dump.
fn wait_dump(ns: &Ns, d: &Daemon, what: &str, pred: impl Fn(&[(String, String)]) -> bool) {
    let t0 = Instant::now();
    loop {
        let text = dump(ns, d);
        if pred(&algs(&text)) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{what}: {:?}\n{text}",
            algs(&text)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Child SA algorithms come from the IPsec policy on both sides (Solaris in.ikev2d).
/// A's policy is `aes-gcm or aes-cbc+hmac-sha256`, so its ACQUIRE proposes both, GCM
/// first; B, the responder, asks its ipsecd with X_INVERSE_ACQUIRE what policy allows for
/// the Child SA (CBC+SHA-256 only) and picks that from A's proposals (checked with
/// `ipseckey dump`). `ipsecconf -F`/`-a` on B then allows GCM only: A's next
/// CREATE_CHILD_SA (the rekey at the soft EXPIRE) gets GCM, B's new inbound SPI coming
/// from GETSPI (UPDATE of the larval SA). Finally B's policy allows only
/// ChaCha20-Poly1305, which A does not offer: a new IKE_AUTH ends in NO_PROPOSAL_CHOSEN
/// and no SA. `ipseckey` and `ipsecconf` are taken from next to in-ikev2d (build them
/// first: `cargo build -p ipsec-tools --bins`).
#[test]
fn responder_policy_chooses_the_child_sa_algorithms() {
    let Some(lab) = Lab::new("responder_policy_chooses_the_child_sa_algorithms") else {
        return;
    };
    let (a, b) = common::two_namespaces(&lab, A, B);
    let da = Daemon::start(
        &lab,
        &a,
        "a",
        "",
        &format!(
            "{{laddr {A} raddr {B}}} ipsec {{encr_algs aes-gcm sa shared}} or ipsec {{encr_algs aes-cbc encr_auth_algs hmac-sha256 sa shared}}\n"
        ),
    );
    let db = Daemon::start(
        &lab,
        &b,
        "b",
        "",
        &format!("{{laddr {B} raddr {A}}} ipsec {{encr_algs aes-cbc encr_auth_algs hmac-sha256 sa shared}}\n"),
    );
    // A's Child SAs live 10 s (rekey at the soft EXPIRE, 9 s); B's rule would take
    // AES-GCM (the default childsa_xform) were it not for B's policy.
    let ia = Ike::start(
        &lab,
        &a,
        "a",
        &da,
        &rule(A, B, "  childsa_lifetime_secs 10\n"),
        &[],
    );
    let ib = Ike::start(&lab, &b, "b", &db, &rule(B, A, ""), &[]);

    // A proposes GCM first, then CBC+SHA-256; B's policy allows only the latter.
    let _ = a.ping(B, 2);
    ia.wait_log("installed", 1, Duration::from_secs(10));
    ib.wait_log("installed", 1, Duration::from_secs(10));
    assert!(
        ib.log()
            .contains("IPsec policy for the Child SA with 192.0.2.1:500 allows"),
        "{}",
        ib.log()
    );
    let cbc = (String::from("aes-cbc"), String::from("hmac-sha256"));
    assert_eq!(algs(&dump(&b, &db)), vec![cbc.clone(), cbc.clone()]);
    assert_eq!(algs(&dump(&a, &da)), vec![cbc.clone(), cbc.clone()]);
    a.ping_ok(B, 3);
    b.ping_ok(A, 3);

    // ipsecconf on B: flush, then GCM only. A's rekey (CREATE_CHILD_SA, CBC offered
    // first as the pair's own suite) gets GCM.
    ipsecconf(&b, &db, &["-F"]);
    let file = lab.file(
        "b-gcm.policy",
        &format!("{{laddr {B} raddr {A}}} ipsec {{encr_algs aes-gcm sa shared}}\n"),
    );
    ipsecconf(&b, &db, &["-a", file.to_str().unwrap()]);
    ia.wait_log("soft EXPIRE", 1, Duration::from_secs(15));
    ib.wait_log("installed", 2, Duration::from_secs(10));
    ib.wait_log("deleted: SPIs", 1, Duration::from_secs(10));
    wait_dump(&b, &db, "B keeps only the GCM pair", |v| {
        v.len() == 2 && v.iter().all(|(e, _)| e.starts_with("aes-gcm"))
    });
    // B, the responder of CREATE_CHILD_SA, got the new inbound SPI from ipsecd too.
    assert_eq!(
        ib.log().matches("installed (UPDATE inbound").count(),
        2,
        "{}",
        ib.log()
    );
    a.ping_ok(B, 3);
    b.ping_ok(A, 3);

    // B's policy now allows only ChaCha20-Poly1305, which A does not offer: a new
    // negotiation makes the IKE SA but no Child SA (NO_PROPOSAL_CHOSEN in IKE_AUTH,
    // RFC 7296 §1.2), and no ESP SA.
    let file = lab.file(
        "b-chacha.policy",
        &format!("{{laddr {B} raddr {A}}} ipsec {{encr_algs chacha20-poly1305 sa shared}}\n"),
    );
    ipsecconf(&b, &db, &["-Fa", file.to_str().unwrap()]);
    let (ok, out, err) = ia.adm(&["flush", "ikesa"]);
    assert!(ok && out == "deleted 1\n", "{out}{err}");
    ib.wait_log("deleted: SPIs", 2, Duration::from_secs(5));
    let _ = a.ping(B, 2);
    ib.wait_log(
        "no Child SA made in IKE_AUTH: no proposal chosen",
        1,
        Duration::from_secs(10),
    );
    ia.wait_log("no Child SA made in IKE_AUTH", 1, Duration::from_secs(10));
    wait_dump(&b, &db, "no SA on B", |v| v.is_empty());
    assert!(algs(&dump(&a, &da)).is_empty());
    assert_eq!(ib.log().matches("installed (").count(), 2, "{}", ib.log());
}

/// B's policy has no room for the selectors A asks for: B answers IKE_AUTH with
/// TS_UNACCEPTABLE and no SA payload (RFC 7296 §1.2, §2.21.2). Both keep the
/// authenticated IKE SA without a Child SA: nothing is installed, ikev2adm lists the
/// established IKE SA with no children, and it still answers liveness checks.
#[test]
fn child_sa_refused_in_ike_auth_keeps_the_ike_sa() {
    let Some((lab, a, b, da, db)) = two_hosts("child_sa_refused_in_ike_auth_keeps_the_ike_sa")
    else {
        return;
    };
    let (ia, ib) = ikes(
        &lab,
        (&a, &b),
        (&da, &db),
        ("", "  local_ts 192.0.2.99/32\n"),
        &common::FAST_DPD,
    );
    let _ = a.ping(B, 1);
    ia.wait_log("no Child SA made in IKE_AUTH", 1, Duration::from_secs(10));
    ib.wait_log("no Child SA made in IKE_AUTH", 1, Duration::from_secs(10));
    assert!(
        ia.log().contains("TS_UNACCEPTABLE") || ia.log().contains("notification 38"),
        "{}",
        ia.log()
    );
    for (ike, role) in [(&ia, "initiator"), (&ib, "responder")] {
        let (ok, out, err) = ike.adm(&["show", "ikesa"]);
        assert!(ok, "{err}");
        let line = out
            .lines()
            .find(|l| l.starts_with("ikesa "))
            .unwrap_or_else(|| panic!("no IKE SA listed:\n{out}"));
        assert!(
            line.contains(&format!("{role} established")) && line.contains("children=0"),
            "{line}"
        );
        assert!(!ike.log().contains("installed"), "{}", ike.log());
    }
    // The IKE SA lives on: dead-peer detection (1 s of silence) gets its answers.
    std::thread::sleep(Duration::from_secs(3));
    for ike in [&ia, &ib] {
        assert!(!ike.log().contains("dead peer"), "{}", ike.log());
        let (_, out, _) = ike.adm(&["show", "ikesa"]);
        assert!(out.contains("established"), "{out}");
    }
    let (ca, cb) = (da.counters(), db.counters());
    assert_eq!(ca.get("in_accepted") + cb.get("in_accepted"), 0);
}

/// in-ikev2d on A and on B (rules toward each other with `extra_a` / `extra_b`), with
/// the options `args`.
fn ikes(
    lab: &Lab,
    (a, b): (&Ns, &Ns),
    (da, db): (&Daemon, &Daemon),
    (extra_a, extra_b): (&str, &str),
    args: &[&str],
) -> (Ike, Ike) {
    let ia = Ike::start(lab, a, "a", da, &rule(A, B, extra_a), args);
    let ib = Ike::start(lab, b, "b", db, &rule(B, A, extra_b), args);
    (ia, ib)
}

/// What of the IKE leaving a namespace is dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Every IKE message (UDP port 500).
    All,
    /// Responses only (the Response flag, bit 0x20 of the IKE header's flags, byte 19).
    Responses,
    /// Nothing.
    Nothing,
}

/// Drops IKE leaving `ns` as `what` says.
fn block_ike(ns: &Ns, what: Block) {
    let _ = ns.run(&["nft", "delete table inet blk"]);
    let rule = match what {
        Block::All => "add rule inet blk out udp dport 500 drop",
        Block::Responses => "add rule inet blk out udp dport 500 @th,216,8 & 0x20 == 0x20 drop",
        Block::Nothing => return,
    };
    ns.ok(&["nft", "add table inet blk"]);
    ns.ok(&[
        "nft",
        "add chain inet blk out { type filter hook output priority 0 ; }",
    ]);
    ns.ok(&["nft", rule]);
}

/// Both daemons rekey the IKE SA at once (RFC 7296 §2.8.2): their rekey timers fall at the
/// same moment (85 % of 19 s on the initiator, 95 % of 17 s on the responder) while IKE is
/// blocked both ways; then the retransmitted requests may pass but not the answers, so
/// each side answers the other's rekey while its own is in flight, and then the answers
/// pass. The collision is settled by the nonces: each side ends with one IKE SA, the same
/// one, holding the Child SA pair, and traffic goes on.
#[test]
fn simultaneous_ike_sa_rekeys_settle_on_one_sa() {
    let Some((lab, a, b, da, db)) = two_hosts("simultaneous_ike_sa_rekeys_settle_on_one_sa") else {
        return;
    };
    let (ia, ib) = ikes(
        &lab,
        (&a, &b),
        (&da, &db),
        ("  ikesa_lifetime_secs 19\n", "  ikesa_lifetime_secs 17\n"),
        &[],
    );
    let _ = a.ping(B, 2);
    ia.wait_log("installed", 1, Duration::from_secs(10));
    ib.wait_log("installed", 1, Duration::from_secs(10));
    let t0 = Instant::now();
    a.ping_ok(B, 2);
    std::thread::sleep(Duration::from_secs(12).saturating_sub(t0.elapsed()));
    for ns in [&a, &b] {
        block_ike(ns, Block::All);
    }
    ia.wait_log("rekeying the IKE SA", 1, Duration::from_secs(10));
    ib.wait_log("rekeying the IKE SA", 1, Duration::from_secs(10));
    // The retransmitted requests pass, the answers do not: each side answers the other's
    // request while its own is in flight. Then the answers pass too.
    for ns in [&a, &b] {
        block_ike(ns, Block::Responses);
    }
    std::thread::sleep(Duration::from_millis(2500));
    for ns in [&a, &b] {
        block_ike(ns, Block::Nothing);
    }
    ia.wait_log("rekeyed: SPIs", 1, Duration::from_secs(10));
    ib.wait_log("rekeyed: SPIs", 1, Duration::from_secs(10));
    // Each side deleted what it had to; one IKE SA is left on each, the same one.
    let one_sa = |ike: &Ike| {
        let t0 = Instant::now();
        loop {
            let (ok, out, err) = ike.adm(&["show", "ikesa"]);
            assert!(ok, "{err}");
            let lines: Vec<String> = out
                .lines()
                .filter(|l| l.starts_with("ikesa "))
                .map(str::to_string)
                .collect();
            if lines.len() == 1 {
                return lines[0].clone();
            }
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{out}\nA:\n{}\nB:\n{}",
                ia.log(),
                ib.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let (la, lb) = (one_sa(&ia), one_sa(&ib));
    let spis = |l: &str| l.split_whitespace().nth(1).unwrap().to_string();
    assert_eq!(spis(&la), spis(&lb), "{la}\n{lb}");
    assert!(
        la.contains("established") && la.contains("children=1"),
        "{la}"
    );
    assert!(
        lb.contains("established") && lb.contains("children=1"),
        "{lb}"
    );
    for ike in [&ia, &ib] {
        assert!(
            !ike.log().contains("deleted: SPIs"),
            "a pair was lost:\n{}",
            ike.log()
        );
    }
    // The two retransmitted requests crossed: settled by the nonces, one side won.
    let won = |ike: &Ike| {
        let log = ike.log();
        assert!(log.contains("simultaneous IKE SA rekey"), "{log}");
        log.contains("ours stands")
    };
    assert_ne!(won(&ia), won(&ib));
    a.ping_ok(B, 3);
    b.ping_ok(A, 3);
}

/// Two in.ikev2d with `fragment_size 200`: the IKE_AUTH messages go as Encrypted
/// Fragment payloads. A's first IKE_AUTH fragments are dropped on their way out (an
/// nftables rule on SKF messages, IKE payload type 53, byte 16 of the IKE header);
/// A's retransmission (the same fragments) completes the exchange.
#[test]
fn ike_auth_fragments_lost_then_retransmitted() {
    let Some((lab, a, b, da, db)) = two_hosts("ike_auth_fragments_lost_then_retransmitted") else {
        return;
    };
    let small = "fragment_size 200\n";
    let ia = Ike::start(
        &lab,
        &a,
        "a",
        &da,
        &format!("{small}{}", rule(A, B, "")),
        &[],
    );
    let ib = Ike::start(
        &lab,
        &b,
        "b",
        &db,
        &format!("{small}{}", rule(B, A, "")),
        &[],
    );
    let cap = Capture::start(&lab, &a, "va", "link");
    a.ok(&["nft", "add table inet blk"]);
    a.ok(&[
        "nft",
        "add chain inet blk out { type filter hook output priority 0 ; }",
    ]);
    a.ok(&[
        "nft",
        "add rule inet blk out udp dport 500 @th,192,8 == 53 drop",
    ]);
    let _ = a.ping(B, 1);
    ia.wait_log("Operation not permitted", 2, Duration::from_secs(10));
    a.ok(&["nft", "delete table inet blk"]);
    ia.wait_log("installed", 1, Duration::from_secs(10));
    ib.wait_log("installed", 1, Duration::from_secs(10));
    a.ping_ok(B, 3);
    b.ping_ok(A, 3);
    let pcap = cap.stop();
    // On the link: IKE_AUTH only as fragments (SKF first payload), both ways.
    let skf = |src: &str| {
        let src: std::net::IpAddr = src.parse().unwrap();
        pcap.ip()
            .filter(|p| p.src == src && p.proto == 17 && p.payload.get(8 + 16) == Some(&53))
            .count()
    };
    assert!(
        skf(A) >= 2 && skf(B) >= 2,
        "SKF A->B {}, B->A {}",
        skf(A),
        skf(B)
    );
    let sk = pcap
        .ip()
        .filter(|p| p.proto == 17 && p.payload.get(8 + 16..8 + 19) == Some(&[46, 0x20, 35][..]))
        .count();
    assert_eq!(sk, 0, "an unfragmented IKE_AUTH");
    only_ike_and_esp(&pcap);
}
