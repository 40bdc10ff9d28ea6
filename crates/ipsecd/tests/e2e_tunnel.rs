//! End-to-end: tunnel mode between two gateways (issue 6), four namespaces
//!
//! ```text
//!   ha ──h0/la── ga ══wa/wb══ gb ──lb/h0── hb
//!   net A        ipsecd  ESP   ipsecd      net B
//! ```
//!
//! The hosts route through their gateway; each gateway's ipsecd tunnels net A <-> net B
//! (`{tunnel ip.tun0 negotiate tunnel laddr A raddr B} ipsec {...}` and SAs with inner
//! selectors). Checked: ping and TCP between the hosts, the gateways' link carries nothing
//! but ESP between the gateways, tshark decrypts it and finds the inner packets, counters
//! agree with the capture. IPv4 in IPv4, IPv6 in IPv4, IPv4 in IPv6 and IPv6 in IPv6.
//! Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/netns.rs"]
mod netns;

use netns::*;

const GCM_AB: &str = "0102030405060708090a0b0c0d0e0f1011121314";
const GCM_BA: &str = "1112131415161718191a1b1c1d1e1f2021222324";

/// One family's addressing.
struct Plan {
    /// Gateway addresses on the gateways' link (outer), with the prefix length.
    ga: &'static str,
    gb: &'static str,
    outer_len: u8,
    /// The two protected networks, the gateway's and host's address in each.
    net_a: &'static str,
    net_b: &'static str,
    ga_in: &'static str,
    ha: &'static str,
    gb_in: &'static str,
    hb: &'static str,
    inner_len: u8,
}

const OUTER4: (&str, &str, u8) = ("192.0.2.1", "192.0.2.2", 24);
const OUTER6: (&str, &str, u8) = ("2001:db8::1", "2001:db8::2", 64);
const INNER4: [&str; 6] = [
    "10.1.0.0/24",
    "10.2.0.0/24",
    "10.1.0.1",
    "10.1.0.2",
    "10.2.0.1",
    "10.2.0.2",
];
const INNER6: [&str; 6] = [
    "fd00:1::/64",
    "fd00:2::/64",
    "fd00:1::1",
    "fd00:1::2",
    "fd00:2::1",
    "fd00:2::2",
];

fn plan(outer: (&'static str, &'static str, u8), inner: [&'static str; 6]) -> Plan {
    Plan {
        ga: outer.0,
        gb: outer.1,
        outer_len: outer.2,
        net_a: inner[0],
        net_b: inner[1],
        ga_in: inner[2],
        ha: inner[3],
        gb_in: inner[4],
        hb: inner[5],
        inner_len: if inner[0].contains(':') { 64 } else { 24 },
    }
}

/// Builds the four namespaces, starts both gateways' daemons and runs the checks.
fn tunnel(test: &str, p: &Plan) {
    let Some(lab) = Lab::new(test) else {
        return;
    };
    let v6_inner = p.ha.contains(':');
    let (ha, ga, gb, hb) = (lab.ns("ha"), lab.ns("ga"), lab.ns("gb"), lab.ns("hb"));
    veth(&ga, "wa", &gb, "wb");
    ga.addr("wa", &format!("{}/{}", p.ga, p.outer_len));
    gb.addr("wb", &format!("{}/{}", p.gb, p.outer_len));
    for (h, g, h_addr, g_addr, g_if) in [
        (&ha, &ga, p.ha, p.ga_in, "la"),
        (&hb, &gb, p.hb, p.gb_in, "lb"),
    ] {
        veth(h, "h0", g, g_if);
        h.addr("h0", &format!("{h_addr}/{}", p.inner_len));
        g.addr(g_if, &format!("{g_addr}/{}", p.inner_len));
        let fam = if v6_inner { "-6" } else { "-4" };
        h.ip(&[fam, "route", "add", "default", "via", g_addr]);
        g.forwarding();
    }
    let proto = if v6_inner { 41 } else { 4 };
    let keys = format!(
        "add esp spi 0x5000 src {} dst {} proto {proto} isrc {} idst {} encr_alg aes-gcm encrkey {GCM_AB}\n\
         add esp spi 0x5001 src {} dst {} proto {proto} isrc {} idst {} encr_alg aes-gcm encrkey {GCM_BA}\n",
        p.ga, p.gb, p.net_a, p.net_b, p.gb, p.ga, p.net_b, p.net_a
    );
    let pol = |l: &str, r: &str| {
        format!(
            "{{tunnel ip.tun0 negotiate tunnel laddr {l} raddr {r}}} ipsec {{encr_algs aes-gcm sa shared}}\n"
        )
    };
    let da = Daemon::start(&lab, &ga, "ga", &keys, &pol(p.net_a, p.net_b));
    let db = Daemon::start(&lab, &gb, "gb", &keys, &pol(p.net_b, p.net_a));
    let cap = Capture::start(&lab, &ga, "wa", "wire");

    ha.ping_ok(p.hb, 3);
    tcp_transfer(&ha, &hb, p.hb, 5001, 2 << 20);

    let pcap = cap.stop();
    assert_only_ipsec(&pcap, p.ga, p.gb);
    let (ca, cb) = (da.counters(), db.counters());
    check_daemon("gA", &ca, &[("esp", 0x5000)], &[("esp", 0x5001)]);
    check_daemon("gB", &cb, &[("esp", 0x5001)], &[("esp", 0x5000)]);
    check_wire(&pcap, 50, p.ga, p.gb, &ca, &cb);
    // Inside every ESP packet: the inner IP packet (next header 4 or 41), seen by tshark
    // after decryption with the inner ICMP echo messages.
    let gcm = "AES-GCM with 16 octet ICV [RFC4106]";
    let esp_sa = esp_sa_line(p.ga, p.gb, 0x5000, gcm, GCM_AB, "NULL", "")
        + &esp_sa_line(p.gb, p.ga, 0x5001, gcm, GCM_BA, "NULL", "");
    let (icmp, req, rep) = if v6_inner {
        ("icmpv6", "128", "129")
    } else {
        ("icmp", "8", "0")
    };
    let rows = tshark(
        &lab,
        &lab.dir.join("wire.pcap"),
        &esp_sa,
        "esp",
        &[
            "esp.icv_good",
            "esp.protocol",
            &format!("{icmp}.type"),
            "tcp.len",
        ],
    );
    let f = |r: &Vec<String>, i: usize| r.get(i).cloned().unwrap_or_default();
    assert_eq!(rows.len(), pcap.ip().filter(|p| p.proto == 50).count());
    assert!(
        rows.iter().all(
            |r| matches!(f(r, 0).as_str(), "True" | "1") && tshark_num(&f(r, 1)) == Some(proto)
        ),
        "ESP frames not verified or not carrying protocol {proto}: {:?}",
        rows.iter()
            .filter(|r| tshark_num(&f(r, 1)) != Some(proto))
            .take(5)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        rows.iter().filter(|r| f(r, 2) == req).count(),
        3,
        "echo requests"
    );
    assert_eq!(
        rows.iter().filter(|r| f(r, 2) == rep).count(),
        3,
        "echo replies"
    );
    let tcp: usize = rows
        .iter()
        .filter_map(|r| f(r, 3).parse::<usize>().ok())
        .sum();
    assert!(tcp >= 2 << 20, "decrypted TCP payload {tcp}");
}

#[test]
fn tunnel_v4_in_v4() {
    tunnel("tunnel_v4_in_v4", &plan(OUTER4, INNER4));
}

#[test]
fn tunnel_v6_in_v4() {
    tunnel("tunnel_v6_in_v4", &plan(OUTER4, INNER6));
}

#[test]
fn tunnel_v4_in_v6() {
    tunnel("tunnel_v4_in_v6", &plan(OUTER6, INNER4));
}

#[test]
fn tunnel_v6_in_v6() {
    tunnel("tunnel_v6_in_v6", &plan(OUTER6, INNER6));
}
