//! ESP in UDP with UDP offloads (issue 6, performance design: "UDP GSO/GRO for NAT-T"):
//! runs of equal-sized ESP-in-UDP packets leave as one UDP GSO send and arrive merged with
//! GRO; TCP and ping still get through byte for byte, and the wire carries only UDP
//! between the two hosts (super-frames included: veth passes GSO packets unsegmented).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/netns.rs"]
mod netns;

use netns::*;

#[test]
fn esp_in_udp_with_gso_and_gro() {
    let Some(lab) = Lab::new("esp_in_udp_with_gso_and_gro") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    let keys = gcm_keys(0x5000, "encap udp nat_rport 4500");
    let pol = |l: &str, r: &str| transport_policy(l, r, "encr_algs aes-gcm");
    let da = Daemon::start(&lab, &a, "a", &keys, &pol(A4, B4));
    let db = Daemon::start(&lab, &b, "b", &keys, &pol(B4, A4));
    let cap = Capture::start(&lab, &a, "va", "wire");

    a.ping_ok(B4, 3);
    tcp_transfer(&a, &b, B4, 5001, 4 << 20);

    let pcap = cap.stop();
    let (ca, cb) = (da.counters(), db.counters());
    assert!(
        ca.get("natt_gso_sends") > 0,
        "A sent runs with UDP GSO: {ca:#?}"
    );
    assert!(
        ca.get("natt_gso_sends") < ca.get("wire_out"),
        "runs hold several packets: {ca:#?}"
    );
    assert_eq!(
        ca.get("wire_out"),
        cb.get("natt_in"),
        "A -> B: {ca:#?} {cb:#?}"
    );
    assert_eq!(cb.get("natt_in"), cb.get("in_accepted"), "B: {cb:#?}");
    assert_eq!(
        cb.get("wire_out"),
        ca.get("natt_in"),
        "B -> A: {ca:#?} {cb:#?}"
    );
    assert!(ca.sa("esp", 0x5000).bytes >= 4 << 20);
    for c in [&ca, &cb] {
        assert!(c.drop_reasons().is_empty(), "no drops: {c:#?}");
    }
    // Only UDP between the hosts on the wire (ARP/ND aside), no cleartext TCP or ICMP.
    let mut udp = 0;
    for p in pcap.ip() {
        let (s, d) = (p.src.to_string(), p.dst.to_string());
        if !((s == A4 && d == B4) || (s == B4 && d == A4)) {
            continue;
        }
        assert_eq!(p.proto, 17, "cleartext between the hosts: {p:?}");
        udp += 1;
    }
    assert!(udp > 0);
}
