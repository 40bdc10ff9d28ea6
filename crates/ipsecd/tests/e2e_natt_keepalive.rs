//! End-to-end: NAT keepalives (RFC 3948 §2.3) go out only for UDP-encapsulated SAs whose
//! local side is behind a NAT, i.e. flagged `SADB_X_SAFLAGS_NATT_LOC` (as Solaris' ESP
//! sends them), whatever else the SA says.
//!
//! ```text
//!   A 10.0.0.1/24 ──va──vb── B 10.0.0.2/24, 10.0.0.3/24, 10.0.0.4/24 (no daemon)
//!   ipsecd --keepalive-interval 1
//! ```
//!
//! A's outbound ESP-in-UDP SAs, one per address of B:
//! * to 10.0.0.2: ipseckey `encap udp nat_lport 4500` (NATT_LOC: A is NATed);
//! * to 10.0.0.3: ipseckey `encap udp nat_rport 4500` (NATT_REM: only B is NATed);
//! * to 10.0.0.4: a PF_KEY ADD with both NAT-T extensions and neither flag.
//!
//! The capture on A's link holds keepalives to 10.0.0.2 only, as many as ipsecd counted;
//! DUMP reports each SA's flags as given. Then a PF_KEY ADD of a NATT_LOC SA to 10.0.0.3
//! makes keepalives go there too. Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use ipsec_pfkey::consts::{SADB_SATYPE_ESP, SADB_X_SAFLAGS_NATT_LOC, SADB_X_SAFLAGS_NATT_REM};
use ipsec_pfkey::wire::Address;
use netns::*;

const B_LOC: &str = "10.0.0.2";
const B_REM: &str = "10.0.0.3";
const B_NONE: &str = "10.0.0.4";
const NAT: u32 = SADB_X_SAFLAGS_NATT_LOC | SADB_X_SAFLAGS_NATT_REM;

/// The NAT keepalives (UDP 4500 → 4500, one 0xFF byte) from A in `pcap`, by destination.
fn keepalives_to(pcap: &Pcap, dst: &str) -> usize {
    let (a, dst): (IpAddr, IpAddr) = (A4.parse().unwrap(), dst.parse().unwrap());
    pcap.ip()
        .filter(|p| p.proto == 17 && p.src == a && p.dst == dst)
        .filter(|p| {
            p.payload.get(..4) == Some(&[0x11, 0x94, 0x11, 0x94][..])
                && p.payload.get(8..) == Some(&[0xff][..])
        })
        .count()
}

/// Waits until A counted `n` more keepalives than `from`; returns the counter.
fn wait_keepalives(d: &Daemon, from: u64, n: u64) -> u64 {
    let t0 = Instant::now();
    loop {
        let k = d.counters().get("natt_keepalive_out");
        if k >= from + n {
            return k;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{k} keepalive(s), wanted {}:\n{}",
            from + n,
            d.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A PF_KEY ADD of an ESP SA from A to `dst`, UDP-encapsulated on port 4500 both ends
/// (both NAT-T extensions, unspecified addresses), with SA flags `flags`.
fn natt_add(spi: u32, dst: &str, flags: u32) -> ipsec_pfkey::Message {
    let mut m = common::esp_add(spi, A4, dst);
    m.natt_loc = Some(Address::new("0.0.0.0:4500".parse().unwrap()));
    m.natt_rem = Some(Address::new("0.0.0.0:4500".parse().unwrap()));
    m.sa.as_mut().unwrap().flags = flags;
    m
}

#[test]
fn keepalives_only_for_sas_whose_local_side_is_natted() {
    let Some(lab) = Lab::new("keepalives_only_for_sas_whose_local_side_is_natted") else {
        return;
    };
    let (a, b) = two_hosts(&lab);
    b.addr("vb", &format!("{B_REM}/24"));
    b.addr("vb", &format!("{B_NONE}/24"));
    let keys = format!(
        "add esp spi 0x5001 src {A4} dst {B_LOC} encap udp nat_lport 4500 \
             encr_alg aes-gcm encrkey {GCM_AB}\n\
         add esp spi 0x5002 src {A4} dst {B_REM} encap udp nat_rport 4500 \
             encr_alg aes-gcm encrkey {GCM_AB}\n"
    );
    let policy = transport_policy(A4, B_LOC, "encr_algs aes-gcm");
    let cap = Capture::start(&lab, &a, "va", "wire_a");
    let d = Daemon::start_with(
        &lab,
        &a,
        "a",
        &keys,
        &policy,
        &["--keepalive-interval", "1"],
    );
    let mut km = common::Client::connect(&d.pfkey);
    km.ok(natt_add(0x5003, B_NONE, 0));

    // The flags as given: ipseckey's nat_lport is NATT_LOC, nat_rport NATT_REM.
    let flags = |km: &mut common::Client, spi: u32| {
        let recs = km.dump(SADB_SATYPE_ESP);
        let r = recs
            .iter()
            .find(|r| r.sa.is_some_and(|s| s.spi == spi))
            .unwrap_or_else(|| panic!("SA {spi:#x} not in the DUMP: {recs:?}"));
        assert!(r.natt_loc.is_some() && r.natt_rem.is_some(), "{r:?}");
        r.sa.unwrap().flags & NAT
    };
    assert_eq!(flags(&mut km, 0x5001), SADB_X_SAFLAGS_NATT_LOC);
    assert_eq!(flags(&mut km, 0x5002), SADB_X_SAFLAGS_NATT_REM);
    assert_eq!(flags(&mut km, 0x5003), 0);

    // Three keepalives at one a second: all of them to the NATT_LOC SA's peer.
    let k1 = wait_keepalives(&d, 0, 3);
    let pcap = cap.stop();
    let k2 = d.counters().get("natt_keepalive_out");
    let to_loc = keepalives_to(&pcap, B_LOC) as u64;
    // Every keepalive ipsecd counted before the capture stopped is on it, all to B_LOC.
    assert!(
        k1 <= to_loc && to_loc <= k2,
        "{to_loc} keepalive(s) to {B_LOC} captured, counters {k1} before and {k2} after"
    );
    assert_eq!(
        keepalives_to(&pcap, B_REM),
        0,
        "keepalives to the NATT_REM SA's peer"
    );
    assert_eq!(
        keepalives_to(&pcap, B_NONE),
        0,
        "keepalives to the unflagged SA's peer"
    );

    // The same peer with a NATT_LOC SA: keepalives go there too.
    let cap = Capture::start(&lab, &a, "va", "wire_a2");
    km.ok(natt_add(0x5004, B_REM, SADB_X_SAFLAGS_NATT_LOC));
    assert_eq!(flags(&mut km, 0x5004), SADB_X_SAFLAGS_NATT_LOC);
    let k3 = d.counters().get("natt_keepalive_out");
    wait_keepalives(&d, k3, 6);
    let pcap = cap.stop();
    assert!(
        keepalives_to(&pcap, B_REM) >= 2,
        "no keepalives to {B_REM} once NATT_LOC"
    );
    assert!(
        keepalives_to(&pcap, B_LOC) >= 2,
        "keepalives to {B_LOC} stopped"
    );
    assert_eq!(
        keepalives_to(&pcap, B_NONE),
        0,
        "keepalives to the unflagged SA's peer"
    );
    let c = d.counters();
    assert_eq!(c.get("natt_keepalive_error"), 0, "{c:#?}");
}
