//! NAT traversal with us behind the NAT: ipsecd + in.ikev2d on O, behind a masquerading
//! router N, initiate to strongSwan (charon with kernel-libipsec) on the outside.
//!
//! ```text
//!   O 10.0.0.1 ──vo──vi── N 10.0.0.254 | 192.0.2.254 (masquerade) ──vn──vs── S 192.0.2.1
//!   ipsecd + in-ikev2d                                                      charon
//! ```
//!
//! A packet from O makes ipsecd ACQUIRE; in.ikev2d finds the NAT in IKE_SA_INIT (we are
//! behind it), moves IKE to port 4500 (through ipsecd's NAT-T relay) and installs the
//! Child SAs with UDP encapsulation on the NAT-T ports. ipsecd sends NAT keepalives to
//! strongSwan through the mapping (every second here). Checked: pings and TCP both ways,
//! the SAs' NAT-T extensions, keepalives on the outside link, and nothing on that link but
//! IKE, ESP in UDP and keepalives between the router and strongSwan.
//!
//! Then the same with O as a security gateway for net 10.1.0.0/24 (host HO behind it) and
//! strongSwan as the gateway of 10.2.0.0/24 (host HS): a branch office behind a NAT, our
//! tunnel's endpoints being O's private address and strongSwan's.
//! Needs root and strongSwan; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../ipsecd/tests/common/netns.rs"]
mod netns;

use std::time::Duration;

use common::charon::{self, Charon};
use common::{Ike, PSK};
use netns::*;

const O: &str = "10.0.0.1";
const N_OUT: &str = "192.0.2.254";
const S: &str = "192.0.2.1";

/// strongSwan accepting our FQDN identity from any address, with these selectors (its
/// own, ours: our private side).
fn strongswan(lab: &Lab, s: &Ns, (local_ts, remote_ts): (&str, &str)) -> Charon {
    let conf = format!(
        "connections {{\n  road {{\n    version = 2\n    local_addrs = {S}\n    remote_addrs = %any\n    \
         proposals = aes128gcm16-prfsha256-x25519\n    local {{\n      auth = psk\n      id = {S}\n    }}\n    \
         remote {{\n      auth = psk\n      id = o.example\n    }}\n    children {{\n      c {{\n        mode = tunnel\n        \
         esp_proposals = aes128gcm16\n        local_ts = {local_ts}\n        remote_ts = {remote_ts}\n      }}\n    }}\n  }}\n}}\n\
         secrets {{\n  ike-1 {{\n    id-1 = {S}\n    id-2 = o.example\n    secret = \"{PSK}\"\n  }}\n}}\n"
    );
    Charon::start_conf(lab, s, &conf, None)
}

/// O behind the masquerading router N, S outside: (o, n, s).
fn behind_a_nat(lab: &Lab) -> (Ns, Ns, Ns) {
    let (o, n, s) = (lab.ns("o"), lab.ns("n"), lab.ns("s"));
    veth(&o, "vo", &n, "vi");
    veth(&n, "vn", &s, "vs");
    o.addr("vo", &format!("{O}/24"));
    n.addr("vi", "10.0.0.254/24");
    n.addr("vn", &format!("{N_OUT}/24"));
    s.addr("vs", &format!("{S}/24"));
    o.ip(&["route", "add", "default", "via", "10.0.0.254"]);
    common::masquerade(&n, "vn");
    (o, n, s)
}

/// ipsecd on O with `policy` (and `extra` options), NAT keepalives every second, and
/// in.ikev2d with one rule from O to S (`rule_extra` are more of its parameters).
fn ours(lab: &Lab, o: &Ns, policy: &str, extra: &[&str], rule_extra: &str) -> (Daemon, Ike) {
    let mut args = vec!["--keepalive-interval", "1"];
    args.extend_from_slice(extra);
    let d = Daemon::start_with(lab, o, "o", "", policy, &args);
    let cfg = format!(
        "ikesa_xform {{ encr_alg aes-gcm(128) prf sha256 dh_group 31 }}\n{{\n  label \"a-b\"\n  auth_method preshared\n  \
         local_addr {O}\n  remote_addr {S}\n  local_id fqdn \"o.example\"\n  childsa_mode tunnel\n  \
         childsa_xform {{ encr_alg aes-gcm(128) }}\n{rule_extra}}}\n"
    );
    let control = d.control.display().to_string();
    let ike = Ike::start(lab, o, "o", &d, &cfg, &["--control-socket", &control]);
    (d, ike)
}

/// After the Child SAs are up: the NAT was found, IKE is on port 4500, and our SAs carry
/// the NAT-T ports.
fn natt_negotiated(ike: &Ike, charon: &Charon, o: &Ns, d: &Daemon) {
    let log = ike.log();
    // Our side is translated. (libipsec's charon also fakes a NAT of its own, to force UDP
    // encapsulation: then both sides look translated.)
    assert!(
        ["we are behind a NAT", "both sides are behind a NAT"]
            .iter()
            .any(|w| log.contains(&format!("NAT detected on the path to 192.0.2.1:500: {w}"))),
        "{log}"
    );
    assert!(
        log.contains("established (initiator, IKE on port 4500)"),
        "{log}"
    );
    assert!(
        charon.log_text().contains("remote host is behind NAT"),
        "{}",
        charon.log_text()
    );
    // Both SAs carry the NAT-T ports (UDP encapsulation on 4500 both ends).
    let dump = common::dump_esp(o, d);
    assert_eq!(dump.matches("NLC: AF_INET: port 4500").count(), 2, "{dump}");
    assert_eq!(dump.matches("NRM: AF_INET: port 4500").count(), 2, "{dump}");
    // ... and say that we are behind the NAT (SADB_X_SAFLAGS_NATT_LOC): ipsecd's keepalives
    // go out for them.
    assert_eq!(dump.matches("X_NATT_LOC").count(), 2, "{dump}");
}

/// The capture outside the NAT holds only IKE, ESP in UDP and keepalives (from our side)
/// between the router and strongSwan, at least two keepalives; ipsecd counted its
/// keepalives and protected traffic, and dropped nothing.
fn only_natt_outside(pcap: &Pcap, d: &Daemon) {
    let (nat, peer): (std::net::IpAddr, std::net::IpAddr) =
        (N_OUT.parse().unwrap(), S.parse().unwrap());
    let (mut esp, mut keepalives) = (0, 0);
    for p in pcap.ip().filter(|p| !p.is_nd_or_mld()) {
        assert!(
            (p.src, p.dst) == (nat, peer) || (p.src, p.dst) == (peer, nat),
            "a stranger on the outside: {p:?}"
        );
        let ports = p.payload.get(..4).map(|h| {
            (
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([h[2], h[3]]),
            )
        });
        let body = p.payload.get(8..).unwrap_or_default();
        match (p.proto, ports) {
            (17, Some((500, 500))) => {}
            (17, Some((s, d))) if s == 4500 || d == 4500 => {
                if body == [0xff] {
                    assert_eq!(p.src, nat, "a keepalive from strongSwan: {p:?}");
                    keepalives += 1;
                } else if body.get(..4).is_some_and(|m| m != [0, 0, 0, 0]) {
                    esp += 1;
                }
            }
            _ => panic!("cleartext on the outside: {p:?}"),
        }
    }
    assert!(esp > 0, "no ESP in UDP on the outside");
    assert!(
        keepalives >= 2,
        "{keepalives} NAT keepalive(s) on the outside"
    );
    let c = d.counters();
    assert!(c.get("natt_keepalive_out") >= 2, "{c:#?}");
    assert!(
        c.get("out_protected") >= 8 && c.get("in_accepted") >= 8,
        "{c:#?}"
    );
    assert_eq!(c.drop_reasons(), Default::default(), "{c:#?}");
}

#[test]
fn we_initiate_from_behind_a_nat_to_strongswan() {
    if !charon::available() {
        return;
    }
    let Some(lab) = Lab::new("we_initiate_from_behind_a_nat_to_strongswan") else {
        return;
    };
    let (o, _n, s) = behind_a_nat(&lab);
    let charon = strongswan(&lab, &s, (&format!("{S}/32"), &format!("{O}/32")));
    // Host-to-host tunnel mode (libipsec keys tunnel mode only).
    let policy = format!(
        "{{tunnel ip.tun0 negotiate tunnel laddr {O} raddr {S}}} ipsec {{encr_algs aes-gcm sa shared}}\n"
    );
    let (d, ike) = ours(&lab, &o, &policy, &[], "");
    let cap = Capture::start(&lab, &s, "vs", "outside");

    let _ = o.ping(S, 2);
    ike.wait_log("installed", 1, Duration::from_secs(15));
    natt_negotiated(&ike, &charon, &o, &d);
    o.ping_ok(S, 4);
    s.ping_ok(O, 4);
    tcp_transfer(&o, &s, S, 5001, 1 << 20);
    tcp_transfer(&s, &o, O, 5002, 1 << 20);
    // Keepalives: one a second from our side.
    std::thread::sleep(Duration::from_millis(2500));
    only_natt_outside(&cap.stop(), &d);
}

/// A branch office behind a NAT: O is the gateway of 10.1.0.0/24 (HO behind it), S of
/// 10.2.0.0/24 (HS). A packet from HO makes O's ipsecd ACQUIRE with the tunnel's
/// endpoints (O's private address, S) and the nets inside.
#[test]
fn our_gateway_behind_a_nat_initiates_a_subnet_tunnel_to_strongswan() {
    if !charon::available() {
        return;
    }
    let Some(lab) = Lab::new("our_gateway_behind_a_nat_initiates_a_subnet_tunnel_to_strongswan")
    else {
        return;
    };
    let (o, _n, s) = behind_a_nat(&lab);
    let (ho, hs) = (lab.ns("ho"), lab.ns("hs"));
    for (h, g, h_addr, g_addr, g_if) in [
        (&ho, &o, "10.1.0.2", "10.1.0.1", "in0"),
        (&hs, &s, "10.2.0.2", "10.2.0.1", "in0"),
    ] {
        veth(h, "h0", g, g_if);
        h.addr("h0", &format!("{h_addr}/24"));
        g.addr(g_if, &format!("{g_addr}/24"));
        h.ip(&["route", "add", "default", "via", g_addr]);
        g.forwarding();
    }
    let charon = strongswan(&lab, &s, ("10.2.0.0/24", "10.1.0.0/24"));
    let policy = "{tunnel ip.tun0 negotiate tunnel laddr 10.1.0.0/24 raddr 10.2.0.0/24} ipsec {encr_algs aes-gcm sa shared}\n";
    let ends = format!("ip.tun0={O},{S}");
    let (d, ike) = ours(
        &lab,
        &o,
        policy,
        &["--tunnel", &ends],
        "  local_ts 10.1.0.0/24\n  remote_ts 10.2.0.0/24\n",
    );
    let cap = Capture::start(&lab, &s, "vs", "outside");

    let _ = ho.ping("10.2.0.2", 2);
    ike.wait_log("installed", 1, Duration::from_secs(15));
    natt_negotiated(&ike, &charon, &o, &d);
    let dump = common::dump_esp(&o, &d);
    for want in [
        "INS: AF_INET: port 0, 10.1.0.0/24.",
        "IND: AF_INET: port 0, 10.2.0.0/24.",
    ] {
        assert!(dump.contains(want), "{want:?} not in the SADB:\n{dump}");
    }
    ho.ping_ok("10.2.0.2", 4);
    hs.ping_ok("10.1.0.2", 4);
    tcp_transfer(&ho, &hs, "10.2.0.2", 5001, 1 << 20);
    tcp_transfer(&hs, &ho, "10.1.0.2", 5002, 1 << 20);
    std::thread::sleep(Duration::from_millis(2500));
    only_natt_outside(&cap.stop(), &d);
}
