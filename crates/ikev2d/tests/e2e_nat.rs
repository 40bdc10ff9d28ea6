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
//! Needs root and strongSwan; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/charon.rs"]
mod charon;
mod common;
#[path = "../../ipsecd/tests/common/netns.rs"]
mod netns;

use std::time::Duration;

use charon::Charon;
use common::{Ike, PSK};
use netns::*;

const O: &str = "10.0.0.1";
const N_OUT: &str = "192.0.2.254";
const S: &str = "192.0.2.1";

/// strongSwan accepting our FQDN identity from any address, our private address as our
/// traffic selector.
fn strongswan(lab: &Lab, s: &Ns) -> Charon {
    let conf = format!(
        "connections {{\n  road {{\n    version = 2\n    local_addrs = {S}\n    remote_addrs = %any\n    \
         proposals = aes128gcm16-prfsha256-x25519\n    local {{\n      auth = psk\n      id = {S}\n    }}\n    \
         remote {{\n      auth = psk\n      id = o.example\n    }}\n    children {{\n      c {{\n        mode = tunnel\n        \
         esp_proposals = aes128gcm16\n        local_ts = {S}/32\n        remote_ts = {O}/32\n      }}\n    }}\n  }}\n}}\n\
         secrets {{\n  ike-1 {{\n    id-1 = {S}\n    id-2 = o.example\n    secret = \"{PSK}\"\n  }}\n}}\n"
    );
    Charon::start(lab, s, "charon", &conf)
}

#[test]
fn we_initiate_from_behind_a_nat_to_strongswan() {
    if !charon::available() {
        return;
    }
    let Some(lab) = Lab::new("we_initiate_from_behind_a_nat_to_strongswan") else {
        return;
    };
    let (o, n, s) = (lab.ns("o"), lab.ns("n"), lab.ns("s"));
    veth(&o, "vo", &n, "vi");
    veth(&n, "vn", &s, "vs");
    o.addr("vo", &format!("{O}/24"));
    n.addr("vi", "10.0.0.254/24");
    n.addr("vn", &format!("{N_OUT}/24"));
    s.addr("vs", &format!("{S}/24"));
    o.ip(&["route", "add", "default", "via", "10.0.0.254"]);
    common::masquerade(&n, "vn");
    let charon = strongswan(&lab, &s);

    // Host-to-host tunnel mode (libipsec keys tunnel mode only); keepalives every second.
    let policy = format!(
        "{{tunnel ip.tun0 negotiate tunnel laddr {O} raddr {S}}} ipsec {{encr_algs aes-gcm sa shared}}\n"
    );
    let d = Daemon::start_with(&lab, &o, "o", "", &policy, &["--keepalive-interval", "1"]);
    let cfg = format!(
        "ikesa_xform {{ encr_alg aes-gcm(128) prf sha256 dh_group 31 }}\n{{\n  label \"a-b\"\n  auth_method preshared\n  \
         local_addr {O}\n  remote_addr {S}\n  local_id fqdn \"o.example\"\n  childsa_mode tunnel\n  \
         childsa_xform {{ encr_alg aes-gcm(128) }}\n}}\n"
    );
    let control = d.control.display().to_string();
    let ike = Ike::start(&lab, &o, "o", &d, &cfg, &["--control-socket", &control]);
    let cap = Capture::start(&lab, &s, "vs", "outside");

    let _ = o.ping(S, 2);
    ike.wait_log("installed", 1, Duration::from_secs(15));
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
    let dump = common::dump_esp(&o, &d);
    assert_eq!(dump.matches("NLC: AF_INET: port 4500").count(), 2, "{dump}");
    assert_eq!(dump.matches("NRM: AF_INET: port 4500").count(), 2, "{dump}");

    o.ping_ok(S, 4);
    s.ping_ok(O, 4);
    tcp_transfer(&o, &s, S, 5001, 1 << 20);
    tcp_transfer(&s, &o, O, 5002, 1 << 20);
    // Keepalives: one a second from our side.
    std::thread::sleep(Duration::from_millis(2500));
    let pcap = cap.stop();

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
