//! End-to-end: what policy and failures do to traffic between two namespaces (issue 6).
//!
//! * fail closed: with traffic running, SIGKILL of one ipsecd leaves nothing to leak in
//!   clear (pings fail, the capture has no cleartext), and a restart with the same files
//!   brings the traffic back;
//! * ACQUIRE on an SA miss: a key manager registered on the PF_KEY socket receives the
//!   ACQUIRE for the first ping, adds the SAs, and the queued packet goes out (its reply
//!   comes back);
//! * `drop` and `bypass` rules: the dropped flow never reaches the wire and is counted by
//!   name, the bypassed flow crosses in clear;
//! * reload under traffic: SIGHUP and the `reload` request with a changed policy file drop
//!   no datagram of a running stream.
//!
//! Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::time::Duration;

use ipsec_pfkey::consts::{SADB_ACQUIRE, SADB_ADD, SADB_REGISTER, SADB_SATYPE_ESP};
use ipsec_pfkey::wire::Message;
use netns::*;

fn esp_policy(local: &str, remote: &str) -> String {
    transport_policy(local, remote, "encr_algs aes-gcm")
}

#[test]
fn fail_closed_on_sigkill_and_recovery() {
    let Some(lab) = Lab::new("fail_closed_on_sigkill_and_recovery") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    let mut da = Daemon::start(&lab, &a, "a", &gcm_keys(0x1000, ""), &esp_policy(A4, B4));
    let _db = Daemon::start(&lab, &b, "b", &gcm_keys(0x1000, ""), &esp_policy(B4, A4));
    let cap = Capture::start(&lab, &a, "va", "wire");
    a.ping_ok(B4, 2);

    // An accept-clear property set at run time reaches the nftables table.
    let table = || {
        let o = a.run(&["nft", "list", "table", "inet", "ironswan"]);
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(table().contains("l4proto igmp return"), "{}", table());
    let r = da.control("prop set -t igmp-accept-clear=off");
    assert!(r.starts_with("ok "), "{r}");
    let t0 = std::time::Instant::now();
    while table().contains("l4proto igmp return") {
        assert!(t0.elapsed() < Duration::from_secs(5), "{}", table());
        std::thread::sleep(Duration::from_millis(50));
    }

    // A datagram every 20 ms from A to B for most of the test (3 s).
    let mut sink = b.python(UDP_COUNT, &[B4, "9000", "5"]);
    sink.wait_stdout(Duration::from_secs(5), |l| l == "ready");
    let mut source = a.python(UDP_SEND, &[B4, "9000", "150", "0.02"]);
    std::thread::sleep(Duration::from_millis(500));

    da.kill9();
    // The TUN device is gone with the daemon; its routes with it. What stays is the
    // prohibit route of the table: the kernel refuses the protected destination.
    let routes = a.table_routes();
    assert!(
        routes.contains("prohibit") && !routes.contains("ipsec0"),
        "after SIGKILL, table {ROUTE_TABLE}:\n{routes}"
    );
    // And the nftables table, which drops protected cleartext on its way out.
    let t = a.run(&["nft", "list", "table", "inet", "ironswan"]);
    assert!(
        t.status.success(),
        "after SIGKILL, no nftables table: {}",
        String::from_utf8_lossy(&t.stderr)
    );
    let o = a.run(&["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", B4]);
    assert!(
        !o.status.success(),
        "ping went through with ipsecd dead:\n{}",
        String::from_utf8_lossy(&o.stdout)
    );
    std::thread::sleep(Duration::from_millis(500));

    da.restart();
    a.ping_ok(B4, 3);
    let (_, out) = source.finish(Duration::from_secs(10));
    let (sent, failed) = {
        let v: Vec<u64> = out
            .last()
            .unwrap()
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        (v[0], v[1])
    };
    assert!(
        failed > 0,
        "no datagram was refused during the outage ({sent} sent)"
    );
    let received: u64 = sink
        .success(Duration::from_secs(10))
        .last()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        received > 0 && received <= sent,
        "B received {received} of {sent} datagrams sent ({failed} refused)"
    );

    let pcap = cap.stop();
    assert_only_ipsec(&pcap, A4, B4);
    // Traffic resumed through the new daemon.
    let c = da.counters();
    assert!(c.get("out_protected") >= 3, "after the restart: {c:#?}");
    assert!(c.get("in_accepted") >= 3, "after the restart: {c:#?}");
    assert_eq!(c.drop_reasons(), Default::default(), "{c:#?}");
}

#[test]
fn acquire_on_sa_miss_then_queued_packet_sent() {
    let Some(lab) = Lab::new("acquire_on_sa_miss_then_queued_packet_sent") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    // A has policy but no SAs; B has both SAs (keys of common::esp_add: 0x5a * 20).
    let key = "5a".repeat(20);
    let b_keys = format!(
        "add esp spi 0x1000 src {A4} dst {B4} encr_alg aes-gcm encrkey {key}\n\
         add esp spi 0x1001 src {B4} dst {A4} encr_alg aes-gcm encrkey {key}\n"
    );
    let da = Daemon::start(&lab, &a, "a", "", &esp_policy(A4, B4));
    let _db = Daemon::start(&lab, &b, "b", &b_keys, &esp_policy(B4, A4));
    let cap = Capture::start(&lab, &a, "va", "wire");

    let mut km = common::Client::connect(&da.pfkey);
    let reg = km.ok(Message::new(SADB_REGISTER, SADB_SATYPE_ESP));
    assert!(reg.supported_encrypt.is_some(), "REGISTER reply: {reg:?}");

    let mut ping = a.spawn(&["ping", "-n", "-c", "1", "-W", "8", B4]);
    let acq = km
        .wait_for(Duration::from_secs(5), |m| m.msg_type == SADB_ACQUIRE)
        .expect("no ACQUIRE within 5 s of the ping");
    assert_eq!(acq.satype, SADB_SATYPE_ESP);
    assert_eq!(
        acq.src.as_ref().map(|x| x.ip().to_string()).as_deref(),
        Some(A4)
    );
    assert_eq!(
        acq.dst.as_ref().map(|x| x.ip().to_string()).as_deref(),
        Some(B4)
    );
    let prop = acq.proposal.as_ref().expect("ACQUIRE without a proposal");
    assert!(
        prop.combs.iter().any(|c| c.encrypt == 20),
        "the policy's AES-GCM is proposed: {prop:?}"
    );
    let c = da.counters();
    assert_eq!(c.get("out_queued_acquire"), 1, "{c:#?}");
    assert_eq!(c.get("out_protected"), 0, "{c:#?}");

    // The key manager's answer: both SAs.
    for (spi, src, dst) in [(0x1000, A4, B4), (0x1001, B4, A4)] {
        let m = common::esp_add(spi, src, dst);
        assert_eq!(m.msg_type, SADB_ADD);
        km.ok(m);
    }
    let out = ping.success(Duration::from_secs(10));
    assert!(
        out.iter().any(|l| l.contains("1 received")),
        "the first ping's reply: {out:?}"
    );

    let pcap = cap.stop();
    assert_only_ipsec(&pcap, A4, B4);
    assert_eq!(pcap.count(50, A4.parse().unwrap(), B4.parse().unwrap()), 1);
    let c = da.counters();
    assert_eq!(c.get("out_queued_acquire"), 1, "{c:#?}");
    assert_eq!(
        c.get("out_protected"),
        1,
        "the queued packet went out: {c:#?}"
    );
    assert_eq!(c.get("in_accepted"), 1, "its reply: {c:#?}");
    assert_eq!(c.sa("esp", 0x1000).packets, 1);
    assert_eq!(c.drop_reasons(), Default::default(), "{c:#?}");
}

#[test]
fn drop_and_bypass_rules_on_the_wire() {
    let Some(lab) = Lab::new("drop_and_bypass_rules_on_the_wire") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    let pol = |l: &str, r: &str, port: &str| {
        format!(
            "{{laddr {l} raddr {r} ulp icmp}} ipsec {{encr_algs aes-gcm sa shared}}\n\
             {{laddr {l} raddr {r} ulp udp {port} 9001 dir both}} drop {{}}\n\
             {{laddr {l} raddr {r} ulp udp {port} 9002 dir both}} bypass {{}}\n"
        )
    };
    let da = Daemon::start(&lab, &a, "a", &gcm_keys(0x1000, ""), &pol(A4, B4, "rport"));
    let db = Daemon::start(&lab, &b, "b", &gcm_keys(0x1000, ""), &pol(B4, A4, "lport"));
    let cap = Capture::start(&lab, &a, "va", "wire");

    a.ping_ok(B4, 3);
    let mut sinks: Vec<Proc> = ["9001", "9002"]
        .iter()
        .map(|p| b.python(UDP_COUNT, &[B4, p, "3"]))
        .collect();
    for s in &sinks {
        s.wait_stdout(Duration::from_secs(5), |l| l == "ready");
    }
    for port in ["9001", "9002"] {
        let out = a
            .python(UDP_SEND, &[B4, port, "20", "0.01"])
            .success(Duration::from_secs(10));
        assert_eq!(out.last().map(String::as_str), Some("20 0"), "port {port}");
    }
    let got: Vec<String> = sinks
        .iter_mut()
        .map(|s| s.success(Duration::from_secs(10)).last().unwrap().clone())
        .collect();
    assert_eq!(
        got,
        ["0", "20"],
        "datagrams received on ports 9001 and 9002"
    );

    let pcap = cap.stop();
    let (ia, ib) = (A4.parse().unwrap(), B4.parse().unwrap());
    let udp_to = |port: u16| {
        pcap.ip()
            .filter(|p| p.src == ia && p.dst == ib && p.proto == 17 && p.dport() == Some(port))
            .count()
    };
    assert_eq!(udp_to(9001), 0, "the dropped flow reached the wire");
    assert_eq!(udp_to(9002), 20, "the bypassed flow in clear");
    // Everything else between the hosts is ESP: the pings.
    let other: Vec<_> = pcap
        .ip()
        .filter(|p| !p.is_nd_or_mld() && p.proto != 50 && p.dport() != Some(9002))
        .collect();
    assert!(other.is_empty(), "unexpected on the wire: {other:?}");
    assert_eq!(pcap.count(50, ia, ib), 3);
    assert_eq!(pcap.count(50, ib, ia), 3);

    let c = da.counters();
    assert_eq!(c.get("spd_explicit"), 20, "drops by name: {c:#?}");
    assert_eq!(c.get("out_bypass"), 20, "{c:#?}");
    assert_eq!(c.get("out_protected"), 3, "{c:#?}");
    assert_eq!(
        c.drop_reasons().keys().collect::<Vec<_>>(),
        ["spd_explicit"],
        "{c:#?}"
    );
    let cb = db.counters();
    assert_eq!(cb.get("in_accepted"), 3, "{cb:#?}");
    assert_eq!(cb.get("out_protected"), 3, "{cb:#?}");
}

/// Reloads (SIGHUP, and the `reload` request) while a UDP stream runs: with the policy file
/// changed (an unrelated bypass entry added, then removed) and the keys file as it was,
/// every datagram arrives, protected; the SAs are not flushed.
#[test]
fn reload_under_traffic_drops_nothing() {
    let Some(lab) = Lab::new("reload_under_traffic_drops_nothing") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    let da = Daemon::start(&lab, &a, "a", &gcm_keys(0x1000, ""), &esp_policy(A4, B4));
    let _db = Daemon::start(&lab, &b, "b", &gcm_keys(0x1000, ""), &esp_policy(B4, A4));
    a.ping_ok(B4, 1);
    let cap = Capture::start(&lab, &a, "va", "wire");
    let mut sink = b.python(UDP_COUNT, &[B4, "9000", "4"]);
    sink.wait_stdout(Duration::from_secs(5), |l| l == "ready");
    let mut source = a.python(UDP_SEND, &[B4, "9000", "100", "0.02"]);
    let extra = "{raddr 10.9.9.9 dir both} bypass {}\n";
    for i in 0..4 {
        std::thread::sleep(Duration::from_millis(300));
        let text = if i % 2 == 0 {
            format!("{}{extra}", esp_policy(A4, B4))
        } else {
            esp_policy(A4, B4)
        };
        lab.file("a.policy", &text);
        if i < 2 {
            signal(da.pid(), "HUP");
        } else {
            let r = da.control("reload");
            assert!(r.starts_with("ok policy from"), "{r}");
            assert!(r.contains("unchanged, SAs kept"), "{r}");
        }
    }
    let (_, out) = source.finish(Duration::from_secs(10));
    assert_eq!(
        out.last().map(String::as_str),
        Some("100 0"),
        "sent, failed"
    );
    let received = sink.success(Duration::from_secs(10));
    assert_eq!(received.last().map(String::as_str), Some("100"));
    let pcap = cap.stop();
    assert_only_ipsec(&pcap, A4, B4);
    let s = da.control("stats");
    assert!(s.contains("\nreloads_ok=4\n"), "{s}");
    assert!(s.contains("\nreloads_failed=0\n"), "{s}");
    let c = da.counters();
    assert_eq!(c.drop_reasons(), Default::default(), "{c:#?}");
}
