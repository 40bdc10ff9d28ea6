//! End-to-end: NAT traversal (RFC 3948) through a NAT box (issue 6).
//!
//! ```text
//!   A 10.9.0.2/24 ──va──na── N ──nb──vb── B 192.0.2.2/24
//!   default via 10.9.0.1     10.9.0.1      192.0.2.1
//!                            ip_forward=1, nftables postrouting on nb:
//!                              udp sport 4500 snat to 192.0.2.1:14500
//!                              masquerade
//! ```
//!
//! A knows B by its address and sends ESP in UDP to 192.0.2.2:4500; the NAT rewrites the
//! source to 192.0.2.1:14500. B knows A only as 192.0.2.1, its SAs say port 4500 at first,
//! and it follows the port the authenticated ESP comes from (natt_port_changed). The test
//! checks ping (both ways) and TCP through the NAT, that B's link carries nothing but ESP
//! in UDP between 192.0.2.1:14500 and 192.0.2.2:4500 plus A's NAT keepalives (one 0xFF
//! byte, every second with --keepalive-interval 1; A's SAs say A is NATed, `nat_lport`
//! being NATT_LOC, B's say only the peer is, `nat_rport` being NATT_REM: B sends none,
//! RFC 3948 §2.3), that B's outbound SA now names port 14500
//! (PF_KEY GET and the wire), that the counters agree with the capture, and that tshark
//! decodes the UDP encapsulation on both ports and decrypts the ESP with the SAs' keys.
//! Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ipsec_pfkey::consts::SADB_SATYPE_ESP;
use netns::*;

const A: &str = "10.9.0.2";
const N_IN: &str = "10.9.0.1";
const N_OUT: &str = "192.0.2.1";
const B: &str = "192.0.2.2";
/// The port the NAT maps A's 4500 to.
const NAT_PORT: u16 = 14500;
const NATT: u16 = 4500;

/// AES-128-GCM keys (16 bytes + 4-byte salt).
const GCM_AB: &str = "0102030405060708090a0b0c0d0e0f1011121314";
const GCM_BA: &str = "1112131415161718191a1b1c1d1e1f2021222324";

const TCP_BYTES: usize = 1 << 20;

/// The NAT box's ruleset: A's NAT-T port becomes 14500, everything else is masqueraded.
const NAT_RULES: &str = r#"
table ip nat {
    chain post {
        type nat hook postrouting priority srcnat;
        oifname "nb" udp sport 4500 snat to 192.0.2.1:14500
        oifname "nb" masquerade
    }
}
"#;

/// A UDP datagram seen on the wire.
#[derive(Clone, Debug)]
struct Udp {
    frame: usize,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    payload: Vec<u8>,
}

impl Udp {
    fn keepalive(&self) -> bool {
        self.payload == [0xff]
    }

    /// ESP in UDP: a non-zero SPI (not the non-ESP marker) and room for the ESP header.
    fn esp(&self) -> bool {
        self.payload.len() > 8 && self.payload[..4] != [0, 0, 0, 0]
    }
}

fn udp_of(i: usize, p: &IpPkt) -> Option<Udp> {
    if p.proto != 17 || p.payload.len() < 8 {
        return None;
    }
    let port = |o: usize| u16::from_be_bytes([p.payload[o], p.payload[o + 1]]);
    Some(Udp {
        frame: i + 1,
        src: (p.src, port(0)),
        dst: (p.dst, port(2)),
        payload: p.payload[8..].to_vec(),
    })
}

/// An ICMP port unreachable quoting a NAT keepalive (a keepalive sent before the
/// other end listened).
fn icmp_about_keepalive(p: &IpPkt) -> bool {
    let q = &p.payload;
    p.proto == 1 && q.len() >= 8 + 20 + 8 && q[0] == 3 && q[1] == 3 && q[8 + 9] == 17 && {
        let ihl = usize::from(q[8] & 0x0f) * 4;
        let u = 8 + ihl;
        q.len() >= u + 8
            && (u16::from_be_bytes([q[u], q[u + 1]]) == NATT
                || u16::from_be_bytes([q[u + 2], q[u + 3]]) == NATT)
            && u16::from_be_bytes([q[u + 4], q[u + 5]]) == 9
    }
}

/// tshark with ESP decryption (`esp_sa` table) and the UDP encapsulation decoded on
/// ports 4500 and 14500; the rows of `fields` for frames matching `filter`.
fn tshark_udpencap(
    lab: &Lab,
    pcap: &Path,
    esp_sa: &str,
    filter: &str,
    fields: &[&str],
) -> Vec<Vec<String>> {
    let conf = lab.dir.join("wireshark");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("esp_sa"), esp_sa).unwrap();
    let mut c = Command::new("tshark");
    c.env("WIRESHARK_CONFIG_DIR", &conf)
        .arg("-n")
        .arg("-r")
        .arg(pcap)
        .args([
            "-d",
            "udp.port==4500,udpencap",
            "-d",
            "udp.port==14500,udpencap",
            "-o",
            "esp.enable_encryption_decode:TRUE",
            "-o",
            "esp.enable_authentication_check:TRUE",
            "-Y",
            filter,
            "-T",
            "fields",
            "-E",
            "separator=/t",
        ]);
    for f in fields {
        c.args(["-e", f]);
    }
    run_ok(&mut c)
        .lines()
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// Polls both daemons until `pred` holds of their counters (at most `timeout`).
fn wait_counters(
    da: &Daemon,
    db: &Daemon,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Counters, &Counters) -> bool,
) {
    let t0 = Instant::now();
    loop {
        let (ca, cb) = (da.counters(), db.counters());
        if pred(&ca, &cb) {
            return;
        }
        assert!(
            t0.elapsed() < timeout,
            "{what} within {timeout:?}:\nA: {ca:#?}\nB: {cb:#?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn natt_through_masquerading_nat() {
    let Some(lab) = Lab::new("natt_through_masquerading_nat") else {
        return;
    };
    let a = lab.ns("a");
    let n = lab.ns("n");
    let b = lab.ns("b");
    veth(&a, "va", &n, "na");
    veth(&n, "nb", &b, "vb");
    a.addr("va", &format!("{A}/24"));
    n.addr("na", &format!("{N_IN}/24"));
    n.addr("nb", &format!("{N_OUT}/24"));
    b.addr("vb", &format!("{B}/24"));
    a.ip(&["route", "add", "default", "via", N_IN]);
    n.sysctl("net.ipv4.ip_forward", "1");
    let rules = lab.file("nat.nft", NAT_RULES);
    n.ok(&["nft", "-f", &rules.display().to_string()]);

    // A speaks to B's address; B sees A as the NAT's address, port 4500 until it learns
    // better.
    let a_keys = format!(
        "add esp spi 0x4000 src {A} dst {B} encap udp nat_lport 4500 \
             encr_alg aes-gcm encrkey {GCM_AB}\n\
         add esp spi 0x4001 src {B} dst {A} encap udp nat_lport 4500 \
             encr_alg aes-gcm encrkey {GCM_BA}\n"
    );
    let b_keys = format!(
        "add esp spi 0x4001 src {B} dst {N_OUT} encap udp nat_rport 4500 \
             encr_alg aes-gcm encrkey {GCM_BA}\n\
         add esp spi 0x4000 src {N_OUT} dst {B} encap udp nat_rport 4500 \
             encr_alg aes-gcm encrkey {GCM_AB}\n"
    );
    let pol = |l: &str, r: &str| {
        format!("{{laddr {l} raddr {r}}} ipsec {{encr_algs aes-gcm sa shared}}\n")
    };
    // Both captures run from before the daemons start: every datagram either sends is
    // on them.
    let cap_b = Capture::start(&lab, &b, "vb", "wire_b");
    let cap_a = Capture::start(&lab, &a, "va", "wire_a");
    // Packet by packet (no UDP GSO/GRO), so that every datagram is its own frame in the
    // captures; e2e_natt_offload.rs covers the offloads.
    let ka = ["--keepalive-interval", "1", "--no-udp-offload"];
    let da = Daemon::start_with(&lab, &a, "a", &a_keys, &pol(A, B), &ka);
    let db = Daemon::start_with(&lab, &b, "b", &b_keys, &pol(B, N_OUT), &ka);
    // A's first keepalive goes out before any traffic (A is behind the NAT).
    wait_counters(
        &da,
        &db,
        Duration::from_secs(5),
        "a first keepalive from A",
        |ca, _| ca.get("natt_keepalive_out") >= 1,
    );

    a.ping_ok(B, 3);
    // B's outbound SA followed the NAT's port on A's first packet: B reaches A through
    // the NAT's mapping.
    b.ping_ok(N_OUT, 2);
    tcp_transfer(&a, &b, B, 5001, TCP_BYTES);
    udp_echo(&a, &b, B, 9000, 20, 1000);
    // A's keepalives reach B through the NAT (at least two at one a second).
    wait_counters(
        &da,
        &db,
        Duration::from_secs(5),
        "two keepalives from A to B",
        |ca, cb| ca.get("natt_keepalive_out") >= 2 && cb.get("natt_keepalive_in") >= 2,
    );

    // Counters read before and after the captures stop: the keepalives still flow, so
    // what a capture holds lies between the two.
    let (ca1, cb1) = (da.counters(), db.counters());
    let pcap_b = cap_b.stop();
    let pcap_a = cap_a.stop();
    let (ca2, cb2) = (da.counters(), db.counters());

    // B's outbound SA now sends to the NAT's port.
    let mut km = common::Client::connect(&db.pfkey);
    let sa = km
        .get(SADB_SATYPE_ESP, 0x4001, B, N_OUT)
        .unwrap_or_else(|e| panic!("GET of B's outbound SA: {e:?}"));
    let rem = sa.natt_rem.expect("B's outbound SA without NAT-T remote");
    assert_eq!(rem.port(), NAT_PORT, "B's outbound SA: {sa:?}");
    // Only the peer is NATed, says B's SA: no keepalives from B.
    let nat =
        ipsec_pfkey::consts::SADB_X_SAFLAGS_NATT_LOC | ipsec_pfkey::consts::SADB_X_SAFLAGS_NATT_REM;
    assert_eq!(
        sa.sa.unwrap().flags & nat,
        ipsec_pfkey::consts::SADB_X_SAFLAGS_NATT_REM,
        "B's outbound SA: {sa:?}"
    );
    assert_eq!(cb2.get("natt_keepalive_out"), 0, "B: {cb2:#?}");
    assert_eq!(ca2.get("natt_keepalive_in"), 0, "A: {ca2:#?}");
    assert_eq!(cb2.get("natt_port_changed"), 1, "B: {cb2:#?}");
    assert_eq!(ca2.get("natt_port_changed"), 0, "A: {ca2:#?}");

    // ---- B's link: only ESP in UDP between the NAT's 14500 and B's 4500, keepalives.
    let (ib, in_): (IpAddr, IpAddr) = (B.parse().unwrap(), N_OUT.parse().unwrap());
    let nat = (in_, NAT_PORT);
    let bb = (ib, NATT);
    let mut udp = Vec::new();
    let mut icmp = Vec::new();
    let mut leaks = Vec::new();
    for (i, f) in pcap_b.frames.iter().enumerate() {
        match f {
            Frame::Arp => {}
            Frame::Ip(p) if p.is_nd_or_mld() => {}
            Frame::Ip(p) if icmp_about_keepalive(p) => icmp.push((i + 1, p.clone())),
            Frame::Ip(p) => match udp_of(i, p) {
                Some(u) if u.keepalive() || u.esp() => udp.push(u),
                _ => leaks.push(format!("frame {}: {p:?}", i + 1)),
            },
            other => leaks.push(format!("frame {}: {other:?}", i + 1)),
        }
    }
    assert!(
        leaks.is_empty(),
        "{} frame(s) on B's link that are neither ESP in UDP nor keepalives:\n{}",
        leaks.len(),
        leaks[..leaks.len().min(20)].join("\n")
    );
    let esp_ab: Vec<&Udp> = udp.iter().filter(|u| u.esp() && u.dst == bb).collect();
    let esp_ba: Vec<&Udp> = udp.iter().filter(|u| u.esp() && u.src == bb).collect();
    let ka_ab: Vec<&Udp> = udp
        .iter()
        .filter(|u| u.keepalive() && u.dst == bb)
        .collect();
    let ka_ba: Vec<&Udp> = udp
        .iter()
        .filter(|u| u.keepalive() && u.src == bb)
        .collect();
    let strays: Vec<&Udp> = udp
        .iter()
        .filter(|u| !((u.src == nat && u.dst == bb) || (u.src == bb && u.dst.0 == in_)))
        .collect();
    assert!(strays.is_empty(), "UDP on B's link: {strays:?}");
    assert!(
        esp_ab.iter().all(|u| u.src == nat),
        "ESP to B not from the NAT's {NAT_PORT}"
    );
    assert!(
        esp_ba.iter().all(|u| u.dst == nat),
        "B's ESP not to the NAT's port {NAT_PORT}: {:?}",
        esp_ba.iter().find(|u| u.dst != nat)
    );
    // B, not behind the NAT, sent no keepalives at all.
    assert!(ka_ba.is_empty(), "keepalives from B: {ka_ba:?}");
    let first_esp_in = esp_ab.first().expect("no ESP reached B").frame;
    // The ICMP errors only answer early keepalives (A's first ones, sent before B's
    // ipsecd listened).
    assert!(
        icmp.iter().all(|(f, _)| *f < first_esp_in),
        "ICMP about keepalives after the first ESP: {icmp:?}"
    );
    // tcpdump's own decoding agrees.
    let dump = run_ok(Command::new("tcpdump").args([
        "-n",
        "-r",
        &cap_file(&lab, "wire_b").display().to_string(),
        "udp",
    ]));
    let udp_encap = dump
        .lines()
        .filter(|l| l.contains("UDP-encap: ESP"))
        .count();
    assert_eq!(
        udp_encap,
        esp_ab.len() + esp_ba.len(),
        "tcpdump's UDP-encap: ESP lines:\n{dump}"
    );

    // ---- Counters against the capture.
    let between = |what: &str, n: usize, lo: u64, hi: u64| {
        assert!(
            lo <= n as u64 && n as u64 <= hi,
            "{what}: {n} captured, counters {lo} before and {hi} after the capture stopped"
        );
    };
    between(
        "keepalives NAT -> B",
        ka_ab.len(),
        cb1.get("natt_keepalive_in"),
        cb2.get("natt_keepalive_in"),
    );
    between(
        "keepalives B -> NAT",
        ka_ba.len(),
        cb1.get("natt_keepalive_out"),
        cb2.get("natt_keepalive_out"),
    );
    assert!(ka_ab.len() >= 2, "keepalives: {udp:?}");
    // Traffic is over: ESP counters are exact.
    let esp_n = |v: &Vec<&Udp>| v.len() as u64;
    assert_eq!(esp_n(&esp_ab), cb2.get("natt_in"), "B's natt_in: {cb2:#?}");
    assert_eq!(esp_n(&esp_ab), cb2.get("in_accepted"), "B: {cb2:#?}");
    assert_eq!(
        esp_n(&esp_ab),
        ca2.get("wire_out"),
        "A's wire_out: {ca2:#?}"
    );
    assert_eq!(
        esp_n(&esp_ba),
        cb2.get("wire_out"),
        "B's wire_out: {cb2:#?}"
    );
    assert_eq!(esp_n(&esp_ba), ca2.get("natt_in"), "A's natt_in: {ca2:#?}");
    assert_eq!(esp_n(&esp_ba), ca2.get("in_accepted"), "A: {ca2:#?}");
    for (name, c, out_spi, in_spi) in [("A", &ca2, 0x4000, 0x4001), ("B", &cb2, 0x4001, 0x4000)] {
        assert_eq!(c.get("wire_out"), c.get("out_protected"), "{name}: {c:#?}");
        assert_eq!(c.get("tun_out"), c.get("in_accepted"), "{name}: {c:#?}");
        assert_eq!(c.sa("esp", out_spi).packets, c.get("out_protected"));
        assert_eq!(c.sa("esp", in_spi).packets, c.get("in_accepted"));
        assert!(
            c.sas.iter().all(|s| s.drops.is_empty()) && c.drops.is_empty(),
            "{name}: engine drops: {c:#?}"
        );
        // The only drops allowed: the nftables table dropping the NAT's ICMP errors
        // about early keepalives (cleartext from a protected peer).
        let other: Vec<_> = c
            .drop_reasons()
            .into_iter()
            .filter(|(k, _)| !k.starts_with("clear_drop_in"))
            .collect();
        assert!(other.is_empty(), "{name}: drops {other:?}: {c:#?}");
    }
    let clear_in: u64 = cb2
        .drop_reasons()
        .iter()
        .filter(|(k, _)| k.starts_with("clear_drop_in"))
        .map(|(_, v)| v)
        .sum();
    let icmp_to_b = icmp.iter().filter(|(_, p)| p.dst == ib).count() as u64;
    assert!(
        clear_in <= icmp_to_b,
        "B dropped {clear_in} cleartext packet(s) in, only {icmp_to_b} ICMP error(s) came: {cb2:#?}"
    );

    // ---- A's link: A speaks to B's real address from port 4500.
    let (ia, ibb): (IpAddr, IpAddr) = (A.parse().unwrap(), B.parse().unwrap());
    let a_udp: Vec<Udp> = pcap_a
        .ip()
        .enumerate()
        .filter_map(|(i, p)| udp_of(i, p))
        .collect();
    let a_esp_out = a_udp
        .iter()
        .filter(|u| u.esp() && u.src == (ia, NATT) && u.dst == (ibb, NATT))
        .count() as u64;
    assert_eq!(a_esp_out, ca2.get("wire_out"), "A's link: ESP to B:4500");
    let a_ka_out = a_udp
        .iter()
        .filter(|u| u.keepalive() && u.src == (ia, NATT) && u.dst == (ibb, NATT))
        .count();
    between(
        "keepalives on A's link",
        a_ka_out,
        ca1.get("natt_keepalive_out"),
        ca2.get("natt_keepalive_out"),
    );
    assert_only_natt(&pcap_a, ia, ibb);

    // ---- tshark: UDP encapsulation on both ports, the ESP decrypted with the SAs.
    let gcm = "AES-GCM with 16 octet ICV [RFC4106]";
    let esp_sa = esp_sa_line(N_OUT, B, 0x4000, gcm, GCM_AB, "NULL", "")
        + &esp_sa_line(B, N_OUT, 0x4001, gcm, GCM_BA, "NULL", "");
    let rows = tshark_udpencap(
        &lab,
        &cap_file(&lab, "wire_b"),
        &esp_sa,
        "udpencap",
        &[
            "frame.number",
            "esp.spi",
            "esp.icv_good",
            "icmp.type",
            "tcp.len",
            "udpencap.nat_keepalive",
        ],
    );
    let f = |r: &Vec<String>, i: usize| r.get(i).cloned().unwrap_or_default();
    let esp_rows: Vec<&Vec<String>> = rows.iter().filter(|r| !f(r, 1).is_empty()).collect();
    assert_eq!(
        esp_rows.len(),
        esp_ab.len() + esp_ba.len(),
        "tshark: ESP in UDP frames"
    );
    let bad: Vec<_> = esp_rows
        .iter()
        .filter(|r| !matches!(f(r, 2).as_str(), "True" | "1"))
        .take(5)
        .collect();
    assert!(bad.is_empty(), "ICVs tshark did not verify: {bad:?}");
    let spi_count = |spi: u32| {
        esp_rows
            .iter()
            .filter(|r| tshark_num(&f(r, 1)) == Some(u64::from(spi)))
            .count()
    };
    assert_eq!(spi_count(0x4000), esp_ab.len(), "tshark: SPI 0x4000");
    assert_eq!(spi_count(0x4001), esp_ba.len(), "tshark: SPI 0x4001");
    let icmp_n = |t: &str| esp_rows.iter().filter(|r| f(r, 3) == t).count();
    assert_eq!(
        icmp_n("8"),
        5,
        "decrypted echo requests (3 from A, 2 from B)"
    );
    assert_eq!(icmp_n("0"), 5, "decrypted echo replies");
    let tcp_from_a: usize = esp_rows
        .iter()
        .filter(|r| tshark_num(&f(r, 1)) == Some(0x4000))
        .filter_map(|r| f(r, 4).parse::<usize>().ok())
        .sum();
    assert!(
        tcp_from_a >= TCP_BYTES,
        "decrypted TCP payload from A: {tcp_from_a} bytes"
    );
    // Keepalives (not those quoted inside the ICMP errors).
    let ka_rows: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| !f(r, 5).is_empty() && f(r, 3).is_empty())
        .collect();
    assert_eq!(
        ka_rows.len(),
        ka_ab.len() + ka_ba.len(),
        "tshark: NAT-keepalive frames: {ka_rows:?}"
    );

    // The nat-keepalive-interval property at run time: 0 stops A's keepalives, 1 brings
    // them back (the property is looked at once a second).
    let r = da.control("prop set -t nat-keepalive-interval=0");
    assert!(r.starts_with("ok "), "{r}");
    std::thread::sleep(Duration::from_millis(1200));
    let before = da.counters().get("natt_keepalive_out");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        da.counters().get("natt_keepalive_out"),
        before,
        "keepalives with nat-keepalive-interval=0"
    );
    let r = da.control("prop set -t nat-keepalive-interval=1");
    assert!(r.starts_with("ok "), "{r}");
    wait_counters(
        &da,
        &db,
        Duration::from_secs(5),
        "keepalives again at nat-keepalive-interval=1",
        |ca, _| ca.get("natt_keepalive_out") >= before + 2,
    );
}

/// A's link holds only NAT-T (ESP in UDP, keepalives) between `a` and `b`, and ICMP
/// errors about early keepalives, besides ARP and ND.
fn assert_only_natt(pcap: &Pcap, a: IpAddr, b: IpAddr) {
    let leaks: Vec<String> = pcap
        .frames
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f {
            Frame::Arp => None,
            Frame::Ip(p) if p.is_nd_or_mld() || icmp_about_keepalive(p) => None,
            Frame::Ip(p) => match udp_of(i, p) {
                Some(u)
                    if (u.esp() || u.keepalive())
                        && ((u.src == (a, NATT) && u.dst == (b, NATT))
                            || (u.src == (b, NATT) && u.dst == (a, NATT))) =>
                {
                    None
                }
                _ => Some(format!("frame {}: {p:?}", i + 1)),
            },
            other => Some(format!("frame {}: {other:?}", i + 1)),
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "{} frame(s) on A's link that are not NAT-T between {a} and {b}:\n{}",
        leaks.len(),
        leaks[..leaks.len().min(20)].join("\n")
    );
}

fn cap_file(lab: &Lab, name: &str) -> std::path::PathBuf {
    lab.dir.join(format!("{name}.pcap"))
}
