//! End-to-end: in.ikev2d as a security gateway. Two sites, a host behind each gateway;
//! each gateway's policy tunnels its net to the other's (ipsecconf `tunnel ip.tun0
//! negotiate tunnel laddr NET raddr NET`, ipsecd `--tunnel ip.tun0=LOCAL,REMOTE`).
//!
//! ```text
//!   ha 10.1.0.2 ──h0/la── ga 10.1.0.1 | 192.0.2.1 ══wa/wb══ 192.0.2.2 | 10.2.0.1 gb ──lb/h0── hb 10.2.0.2
//!   net A 10.1.0.0/24                                                             net B 10.2.0.0/24
//! ```
//!
//! A packet from ha to hb makes ga's ipsecd ACQUIRE an SA between the gateways with the
//! nets as inner selectors; in.ikev2d negotiates a tunnel-mode Child SA with the nets as
//! traffic selectors and installs it with inner selectors. Checked: the ACQUIRE (seen by
//! `ipseckey monitor`), the SAs' inner selectors, pings and TCP both ways between the
//! hosts, and the gateways' link carrying nothing but IKE and ESP.
//!
//! With strongSwan: charon (kernel-libipsec, tunnel mode) is gateway ga, ours gb. Both
//! roles; charon proposes wider selectors (10.1.0.0/16 and 10.2.0.0/16) and our responder
//! narrows them to its nets. Needs root (and strongSwan for those tests); skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../ipsecd/tests/common/netns.rs"]
mod netns;

use std::time::Duration;

use common::charon::{self, Charon};
use common::{Ike, PSK};
use netns::*;

const GA: &str = "192.0.2.1";
const GB: &str = "192.0.2.2";
const NET_A: &str = "10.1.0.0/24";
const NET_B: &str = "10.2.0.0/24";
const HA: &str = "10.1.0.2";
const HB: &str = "10.2.0.2";
const NET_C: &str = "10.3.0.0/24";
const HC: &str = "10.3.0.2";

/// The four namespaces, addressed and routed: (ha, ga, gb, hb).
fn sites(lab: &Lab) -> (Ns, Ns, Ns, Ns) {
    sites_with(lab, [HA, "10.1.0.1", HB, "10.2.0.1"])
}

/// [`sites`] with these inner addresses (ha, ga's, hb, gb's; /24 or /64).
fn sites_with(lab: &Lab, inner: [&str; 4]) -> (Ns, Ns, Ns, Ns) {
    let (ha, ga, gb, hb) = (lab.ns("ha"), lab.ns("ga"), lab.ns("gb"), lab.ns("hb"));
    veth(&ga, "wa", &gb, "wb");
    ga.addr("wa", &format!("{GA}/24"));
    gb.addr("wb", &format!("{GB}/24"));
    let [ha_addr, ga_addr, hb_addr, gb_addr] = inner;
    let (fam, len) = if ha_addr.contains(':') {
        ("-6", 64)
    } else {
        ("-4", 24)
    };
    for (h, g, h_addr, g_addr, g_if) in [
        (&ha, &ga, ha_addr, ga_addr, "la"),
        (&hb, &gb, hb_addr, gb_addr, "lb"),
    ] {
        veth(h, "h0", g, g_if);
        h.addr("h0", &format!("{h_addr}/{len}"));
        g.addr(g_if, &format!("{g_addr}/{len}"));
        h.ip(&[fam, "route", "add", "default", "via", g_addr]);
        g.forwarding();
    }
    (ha, ga, gb, hb)
}

/// Our gateway in `g` (outer `local`, peer gateway `remote`) tunnelling `lnet` to `rnet`:
/// ipsecd with the tunnel's endpoints and its policy (a rule for each pair of nets), in.ikev2d
/// with one rule (`extra` are more options of in.ikev2d).
fn our_gateway(
    lab: &Lab,
    g: &Ns,
    name: &str,
    (local, remote): (&str, &str),
    (lnets, rnets): (&[&str], &[&str]),
    extra: &[&str],
) -> (Daemon, Ike) {
    let policy: String = lnets
        .iter()
        .flat_map(|l| rnets.iter().map(move |r| (l, r)))
        .map(|(lnet, rnet)| {
            format!(
                "{{tunnel ip.tun0 negotiate tunnel laddr {lnet} raddr {rnet}}} ipsec {{encr_algs aes-gcm sa shared}}\n"
            )
        })
        .collect();
    let ends = format!("ip.tun0={local},{remote}");
    let d = Daemon::start_with(lab, g, name, "", &policy, &["--tunnel", &ends]);
    let ts = |side: &str, nets: &[&str]| -> String {
        nets.iter().map(|n| format!("  {side}_ts {n}\n")).collect()
    };
    let (local_ts, remote_ts) = (ts("local", lnets), ts("remote", rnets));
    let cfg = format!(
        "ikesa_xform {{ encr_alg aes-gcm(128) prf sha256 dh_group 31 }}\n{{\n  label \"a-b\"\n  auth_method preshared\n  \
         local_addr {local}\n  remote_addr {remote}\n{local_ts}{remote_ts}  childsa_mode tunnel\n  \
         childsa_xform {{ encr_alg aes-gcm(128) }}\n}}\n"
    );
    let ike = Ike::start(lab, g, name, &d, &cfg, extra);
    (d, ike)
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Asserts that every packet between the gateways is IKE (UDP 500/4500) or ESP (raw, or
/// in UDP 4500), that nothing else crossed the link, and that ESP did.
fn only_ike_and_esp(pcap: &Pcap) {
    let (a, b): (std::net::IpAddr, std::net::IpAddr) = (GA.parse().unwrap(), GB.parse().unwrap());
    let mut esp = 0;
    for p in pcap.ip().filter(|p| !p.is_nd_or_mld()) {
        assert!(
            (p.src, p.dst) == (a, b) || (p.src, p.dst) == (b, a),
            "a packet between the gateways that is not theirs: {p:?}"
        );
        let ports = p.payload.get(..4).map(|h| {
            (
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([h[2], h[3]]),
            )
        });
        match (p.proto, ports) {
            (50, _) => esp += 1,
            (17, Some((s, d))) if [500, 4500].contains(&s) && [500, 4500].contains(&d) => {
                // ESP in UDP: not the non-ESP marker of IKE, not a one-byte keepalive.
                if s == 4500 && p.payload.get(8..12).is_some_and(|m| m != [0, 0, 0, 0]) {
                    esp += usize::from(p.payload.len() > 9);
                }
            }
            _ => panic!("cleartext between the gateways: {p:?}"),
        }
    }
    assert!(esp > 0, "no ESP captured between the gateways");
}

/// Pings and TCP transfers between the hosts, both ways.
fn traffic_both_ways(ha: &Ns, hb: &Ns) {
    ha.ping_ok(HB, 4);
    hb.ping_ok(HA, 4);
    tcp_transfer(ha, hb, HB, 5001, 1 << 20);
    tcp_transfer(hb, ha, HA, 5002, 1 << 20);
}

/// Ours against ours; two nets behind gb (B and C, hb has an address in each), so ga's
/// policy has two rules for the one tunnel: one IKE SA, a Child SA pair for each pair of
/// nets (the second ACQUIRE, arriving while the IKE SA is being made, waits for it).
#[test]
fn gateway_to_gateway_acquire_negotiates_a_subnet_tunnel() {
    let Some(lab) = Lab::new("gateway_to_gateway_acquire_negotiates_a_subnet_tunnel") else {
        return;
    };
    let (ha, ga, gb, hb) = sites(&lab);
    gb.addr("lb", "10.3.0.1/24");
    hb.addr("h0", &format!("{HC}/24"));
    let (da, ia) = our_gateway(&lab, &ga, "ga", (GA, GB), (&[NET_A], &[NET_B, NET_C]), &[]);
    let (db, ib) = our_gateway(&lab, &gb, "gb", (GB, GA), (&[NET_B, NET_C], &[NET_A]), &[]);
    let mut monitor = ga.spawn(&strs(&common::ipseckey_args(&da, &["monitor"])));
    monitor.wait_stdout(Duration::from_secs(5), |l| l.contains("monitoring"));
    let cap = Capture::start(&lab, &ga, "wa", "wire");

    // No SA: the hosts' first packets (to both nets at once) make ga's ipsecd ACQUIRE.
    let mut to_c = ha.spawn(&["ping", "-n", "-c", "3", "-i", "0.5", HC]);
    let _ = ha.ping(HB, 2);
    let _ = to_c.finish(Duration::from_secs(10));
    ia.wait_log("installed", 2, Duration::from_secs(10));
    ib.wait_log("installed", 2, Duration::from_secs(10));
    let log = ia.log();
    assert_eq!(
        log.matches("initiating IKE with 192.0.2.2").count(),
        1,
        "{log}"
    );
    assert_eq!(
        ib.log().matches("established (responder").count(),
        1,
        "{}",
        ib.log()
    );

    // Each ACQUIRE named the tunnel's endpoints outside and a rule's nets inside.
    monitor.signal("TERM");
    let mon = monitor.finish(Duration::from_secs(5)).1.join("\n");
    for net in ["10.2.0.0/24", "10.3.0.0/24"] {
        let ind = format!("IND: AF_INET: port 0, {net}");
        let acq = mon
            .split("Read ")
            .find(|m| m.contains("type ACQUIRE") && m.contains(&ind))
            .unwrap_or_else(|| panic!("no ACQUIRE for {net}:\n{mon}"));
        for want in [
            "SRC: AF_INET: port 0, 192.0.2.1",
            "DST: AF_INET: port 0, 192.0.2.2",
            "INS: AF_INET: port 0, 10.1.0.0/24",
        ] {
            assert!(acq.contains(want), "{want:?} not in the ACQUIRE:\n{acq}");
        }
    }
    // Both gateways hold tunnel-mode SAs between them with the nets as inner selectors.
    for (g, d) in [(&ga, &da), (&gb, &db)] {
        let dump = common::dump_esp(g, d);
        for net in ["10.2.0.0/24", "10.3.0.0/24"] {
            for want in [
                "INS: AF_INET: port 0, 10.1.0.0/24.".to_string(),
                format!("IND: AF_INET: port 0, {net}."),
                format!("INS: AF_INET: port 0, {net}."),
                "IND: AF_INET: port 0, 10.1.0.0/24.".to_string(),
            ] {
                assert!(dump.contains(&want), "{want:?} not in the SADB:\n{dump}");
            }
        }
        assert_eq!(
            dump.matches("SRC: AF_INET: port 0, 192.0.2.1.").count(),
            2,
            "{dump}"
        );
        assert_eq!(
            dump.matches("SRC: AF_INET: port 0, 192.0.2.2.").count(),
            2,
            "{dump}"
        );
    }

    traffic_both_ways(&ha, &hb);
    ha.ping_ok(HC, 3);
    tcp_transfer(&hb, &ha, HA, 5003, 1 << 19);
    only_ike_and_esp(&cap.stop());
    for d in [&da, &db] {
        let c = d.counters();
        assert!(
            c.get("out_protected") >= 8 && c.get("in_accepted") >= 8,
            "{c:#?}"
        );
        assert_eq!(c.drop_reasons(), Default::default(), "{c:#?}");
    }
}

/// IPv6 nets over IPv4 between the gateways: the ACQUIRE's inner selectors and the
/// traffic selectors are IPv6, the SAs IPv6-in-IPv4 tunnel mode.
#[test]
fn gateway_to_gateway_ipv6_nets_over_ipv4() {
    let Some(lab) = Lab::new("gateway_to_gateway_ipv6_nets_over_ipv4") else {
        return;
    };
    let (ha6, hb6) = ("fd00:1::2", "fd00:2::2");
    let (ha, ga, gb, hb) = sites_with(&lab, [ha6, "fd00:1::1", hb6, "fd00:2::1"]);
    let (net_a, net_b) = ("fd00:1::/64", "fd00:2::/64");
    let (da, ia) = our_gateway(&lab, &ga, "ga", (GA, GB), (&[net_a], &[net_b]), &[]);
    let (db, ib) = our_gateway(&lab, &gb, "gb", (GB, GA), (&[net_b], &[net_a]), &[]);
    let cap = Capture::start(&lab, &ga, "wa", "wire");
    let _ = ha.ping(hb6, 2);
    ia.wait_log("installed", 1, Duration::from_secs(10));
    ib.wait_log("installed", 1, Duration::from_secs(10));
    for (g, d) in [(&ga, &da), (&gb, &db)] {
        let dump = common::dump_esp(g, d);
        for want in [
            "SRC: Source address (proto=41)",
            "INS: AF_INET6: port 0, fd00:1::/64.",
            "IND: AF_INET6: port 0, fd00:2::/64.",
            "SRC: AF_INET: port 0, 192.0.2.1.",
        ] {
            assert!(dump.contains(want), "{want:?} not in the SADB:\n{dump}");
        }
    }
    ha.ping_ok(hb6, 3);
    hb.ping_ok(ha6, 3);
    tcp_transfer(&ha, &hb, hb6, 5001, 1 << 19);
    only_ike_and_esp(&cap.stop());
    for d in [&da, &db] {
        assert_eq!(d.counters().drop_reasons(), Default::default());
    }
}

/// charon as gateway ga: net A behind it, proposing (as initiator) or accepting (as
/// responder) the wider 10.1.0.0/16 <-> 10.2.0.0/16, which our gateway narrows to its /24s.
fn strongswan_gateway(lab: &Lab, ga: &Ns) -> Charon {
    let conf = format!(
        "connections {{\n  gw {{\n    version = 2\n    local_addrs = {GA}\n    remote_addrs = {GB}\n    \
         proposals = aes128gcm16-prfsha256-x25519\n    local {{\n      auth = psk\n      id = {GA}\n    }}\n    \
         remote {{\n      auth = psk\n      id = {GB}\n    }}\n    children {{\n      nets {{\n        mode = tunnel\n        \
         esp_proposals = aes128gcm16\n        local_ts = 10.1.0.0/16\n        remote_ts = 10.2.0.0/16\n      }}\n    }}\n  }}\n}}\n\
         secrets {{\n  ike-1 {{\n    id-1 = {GA}\n    id-2 = {GB}\n    secret = \"{PSK}\"\n  }}\n}}\n"
    );
    Charon::start_conf(lab, ga, &conf, None)
}

/// The selectors strongSwan installed: our /24s, not its /16s.
fn narrowed(c: &Charon) {
    let sas = String::from_utf8_lossy(&c.swanctl(&["--list-sas"]).stdout).into_owned();
    assert!(
        sas.contains("ESTABLISHED") && sas.contains("INSTALLED"),
        "{sas}"
    );
    let words = sas.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("local 10.1.0.0/24 remote 10.2.0.0/24"),
        "strongSwan's Child SA is not between the narrowed nets:\n{sas}"
    );
}

fn with_strongswan(test: &str, we_initiate: bool) {
    if !charon::available() {
        return;
    }
    let Some(lab) = Lab::new(test) else {
        return;
    };
    let (ha, ga, gb, hb) = sites(&lab);
    // Charon's kernel-libipsec forwards into its TUN device.
    let charon = strongswan_gateway(&lab, &ga);
    // IKE moves to port 4500 with strongSwan: through ipsecd's NAT-T relay.
    let control = lab.dir.join("gb.control").display().to_string();
    let (db, ib) = our_gateway(
        &lab,
        &gb,
        "gb",
        (GB, GA),
        (&[NET_B], &[NET_A]),
        &["--control-socket", &control],
    );
    let cap = Capture::start(&lab, &gb, "wb", "wire");
    if we_initiate {
        let _ = hb.ping(HA, 2);
        ib.wait_log("installed", 1, Duration::from_secs(15));
        assert!(ib.log().contains("established (initiator"), "{}", ib.log());
    } else {
        let r = charon.swanctl(&["--initiate", "--child", "nets", "--timeout", "15"]);
        assert!(
            r.status.success(),
            "swanctl --initiate: {}\n{}",
            String::from_utf8_lossy(&r.stdout),
            ib.log()
        );
        ib.wait_log("installed", 1, Duration::from_secs(10));
        assert!(ib.log().contains("established (responder"), "{}", ib.log());
    }
    narrowed(&charon);
    traffic_both_ways(&ha, &hb);
    only_ike_and_esp(&cap.stop());
    let c = db.counters();
    assert!(
        c.get("out_protected") >= 8 && c.get("in_accepted") >= 8,
        "{c:#?}"
    );
    assert_eq!(c.drop_reasons(), Default::default(), "{c:#?}");
}

#[test]
fn our_gateway_initiates_a_subnet_tunnel_to_a_strongswan_gateway() {
    with_strongswan(
        "our_gateway_initiates_a_subnet_tunnel_to_a_strongswan_gateway",
        true,
    );
}

#[test]
fn strongswan_gateway_initiates_a_subnet_tunnel_to_our_gateway() {
    with_strongswan(
        "strongswan_gateway_initiates_a_subnet_tunnel_to_our_gateway",
        false,
    );
}
