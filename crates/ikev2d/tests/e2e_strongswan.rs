//! Interoperability with strongSwan: charon (kernel-libipsec, user-space ESP over its own
//! TUN device) in one namespace, ipsecd + in-ikev2d in the other, PSK authentication.
//!
//! ```text
//!   S 192.0.2.1/24 ──va──vb── O 192.0.2.2/24
//!   charon + kernel-libipsec    ipsecd (NAT-T port 4500) + in-ikev2d (IKE on 500, and on
//!                               4500 through ipsecd's natt-relay)
//! ```
//!
//! strongSwan 5.9.8's libipsec sends ESP inside UDP 4500 only, and moves IKE to port
//! 4500 at IKE_AUTH when both sides do NAT detection; so our Child SAs are UDP-
//! encapsulated and our IKE on 4500 goes through ipsecd. Each role is tested: we
//! initiate (a ping from O makes ipsecd ACQUIRE), and strongSwan initiates (`swanctl
//! --initiate`). Traffic flows both ways; the capture shows no cleartext ICMP.
//! Needs root and strongSwan (`/usr/lib/ipsec/charon`, `swanctl`); skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../ipsecd/tests/common/netns.rs"]
mod netns;

use std::time::{Duration, Instant};

use common::charon::{
    self, available, both_ways, negotiate_and_check, no_clear_icmp, pings_and_sas, Starter, O, S,
};
use common::{Ike, PSK};
use netns::*;

/// charon with a PSK connection to O (see [`common::charon`]).
struct Charon;

impl Charon {
    fn start(lab: &Lab, ns: &Ns, ike: &str, esp: &str) -> charon::Charon {
        Self::start_with(lab, ns, ike, esp, "", "")
    }

    /// [`start`](Self::start) with more options of the connection (`extra`) and of its
    /// Child SA (`child_extra`), such as `rekey_time = 5s`.
    fn start_with(
        lab: &Lab,
        ns: &Ns,
        ike: &str,
        esp: &str,
        extra: &str,
        child_extra: &str,
    ) -> charon::Charon {
        Self::start_as(lab, ns, (ike, esp), (extra, child_extra), (S, S))
    }

    /// [`start_with`](Self::start_with) from local address `local.0` (also its traffic
    /// selector) with identity `local.1`.
    fn start_as(
        lab: &Lab,
        ns: &Ns,
        (ike, esp): (&str, &str),
        (extra, child_extra): (&str, &str),
        local: (&str, &str),
    ) -> charon::Charon {
        Self::start_conf(lab, ns, (ike, esp), (extra, child_extra), local, "")
    }

    /// [`start_as`](Self::start_as) with more options in strongswan.conf's `charon`
    /// section (`charon_extra`, such as `fragment_size = 200`).
    fn start_conf(
        lab: &Lab,
        ns: &Ns,
        (ike, esp): (&str, &str),
        (extra, child_extra): (&str, &str),
        local: (&str, &str),
        charon_extra: &str,
    ) -> charon::Charon {
        let (l_addr, l_id) = local;
        let conf = format!(
            "connections {{\n  ironswan {{\n    version = 2\n    local_addrs = {l_addr}\n    remote_addrs = {O}\n    proposals = {ike}\n    {extra}\n    \
             local {{\n      auth = psk\n      id = {l_id}\n    }}\n    remote {{\n      auth = psk\n      id = {O}\n    }}\n    \
             children {{\n      c {{\n        mode = tunnel\n        esp_proposals = {esp}\n        {child_extra}\n        local_ts = {l_addr}/32\n        remote_ts = {O}/32\n      }}\n    }}\n  }}\n}}\n\
             secrets {{\n  ike-1 {{\n    id-1 = {l_id}\n    id-2 = {O}\n    secret = \"{PSK}\"\n  }}\n}}\n"
        );
        charon::Charon::start_conf_with(lab, ns, &conf, None, charon_extra)
    }
}

/// ipsecd with a policy requiring ESP with `algs` (ipsecconf) toward S, and in-ikev2d
/// with one rule: IKE SA transforms `ike_xform`, Child SAs `child_xform` (as responder).
fn ours(lab: &Lab, o: &Ns, algs: &str, ike_xform: &str, child_xform: &str) -> (Daemon, Ike) {
    ours_with(lab, o, algs, ike_xform, child_xform, "")
}

/// [`ours`] with more rule parameters.
fn ours_with(
    lab: &Lab,
    o: &Ns,
    algs: &str,
    ike_xform: &str,
    child_xform: &str,
    extra: &str,
) -> (Daemon, Ike) {
    ours_globals(lab, o, algs, (ike_xform, child_xform), extra, "")
}

/// [`ours_with`] with more global parameters (`globals`, before the rule).
fn ours_globals(
    lab: &Lab,
    o: &Ns,
    algs: &str,
    (ike_xform, child_xform): (&str, &str),
    extra: &str,
    globals: &str,
) -> (Daemon, Ike) {
    // Tunnel mode between the hosts themselves (libipsec keys tunnel mode only).
    let policy = format!(
        "{{tunnel ip.tun0 negotiate tunnel laddr {O} raddr {S}}} ipsec {{{algs} sa shared}}\n"
    );
    let d = Daemon::start(lab, o, "o", "", &policy);
    let cfg = format!(
        "{globals}ikesa_xform {{ {ike_xform} }}\n{{\n  label \"a-b\"\n  auth_method preshared\n  local_addr {O}\n  remote_addr {S}\n  childsa_mode tunnel\n  childsa_xform {{ {child_xform} }}\n{extra}}}\n"
    );
    let control = d.control.display().to_string();
    let ike = Ike::start(lab, o, "o", &d, &cfg, &["--control-socket", &control]);
    (d, ike)
}

fn lab(test: &str) -> Option<(Lab, Ns, Ns)> {
    if !available() {
        return None;
    }
    let lab = Lab::new(test)?;
    let (s, o) = common::two_namespaces(&lab, S, O);
    Some((lab, s, o))
}

/// We initiate: a ping from O makes ipsecd ACQUIRE, in-ikev2d negotiates with charon.
fn we_initiate(test: &str, ike: (&str, &str), esp: (&str, &str, &str)) {
    let Some((lab, s, o)) = lab(test) else {
        return;
    };
    let charon = Charon::start(&lab, &s, ike.0, esp.0);
    let (d, ike) = ours(&lab, &o, esp.1, ike.1, esp.2);
    negotiate_and_check(&lab, (&s, &o), &d, &ike, &charon, Starter::Us);
}

#[test]
fn we_initiate_to_strongswan_curve25519_aes_gcm() {
    we_initiate(
        "we_initiate_to_strongswan_curve25519_aes_gcm",
        (
            "aes128gcm16-prfsha256-x25519",
            "encr_alg aes-gcm(128) prf sha256 dh_group 31",
        ),
        ("aes128gcm16", "encr_algs aes-gcm", "encr_alg aes-gcm(128)"),
    );
}

#[test]
fn we_initiate_to_strongswan_ecp256_aes_cbc_hmac_sha256() {
    we_initiate(
        "we_initiate_to_strongswan_ecp256_aes_cbc_hmac_sha256",
        (
            "aes256-sha256-ecp256",
            "encr_alg aes(256) auth_alg sha256 prf sha256 dh_group 19",
        ),
        (
            "aes256-sha256",
            "encr_algs aes-cbc(256) encr_auth_algs hmac-sha256",
            "encr_alg aes-cbc(256) auth_alg sha256",
        ),
    );
}

#[test]
fn strongswan_initiates_to_us_modp2048_aes_gcm() {
    let Some((lab, s, o)) = lab("strongswan_initiates_to_us_modp2048_aes_gcm") else {
        return;
    };
    let charon = Charon::start(&lab, &s, "aes256gcm16-prfsha384-modp2048", "aes256gcm16");
    let (d, ike) = ours(
        &lab,
        &o,
        "encr_algs aes-gcm",
        "encr_alg aes-gcm(256) prf sha384 dh_group 14",
        "encr_alg aes-gcm(256)",
    );
    negotiate_and_check(&lab, (&s, &o), &d, &ike, &charon, Starter::StrongSwan);
}

/// strongSwan initiates and rekeys both the Child SA (every 3 s) and the IKE SA (every 5 s)
/// while pings run: every ping is answered across the rekeys (make before break on both
/// sides), our daemon installs each new pair and removes each old one.
#[test]
fn strongswan_rekeys_child_and_ike_sa_under_traffic() {
    let Some((lab, s, o)) = lab("strongswan_rekeys_child_and_ike_sa_under_traffic") else {
        return;
    };
    let charon = Charon::start_with(
        &lab,
        &s,
        "aes128gcm16-prfsha256-x25519",
        "aes128gcm16",
        // Rekeys exactly at 3 s and 5 s, with room before the hard limits (strongSwan's
        // defaults leave 0.3 s, which a loaded machine can miss: the lost ping then says
        // nothing about make-before-break).
        "rekey_time = 5s\n    over_time = 5s\n    rand_time = 0s",
        "rekey_time = 3s\n        life_time = 8s\n        rand_time = 0s",
    );
    let (d, ike) = ours(
        &lab,
        &o,
        "encr_algs aes-gcm",
        "encr_alg aes-gcm(128) prf sha256 dh_group 31",
        "encr_alg aes-gcm(128)",
    );
    let r = charon.swanctl(&["--initiate", "--child", "c", "--timeout", "15"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stdout));
    ike.wait_log("installed", 1, Duration::from_secs(10));
    let mut ping = o.spawn(&["ping", "-n", "-i", "0.2", "-c", "55", S]);
    let out = ping.success(Duration::from_secs(30)).join("\n");
    assert!(
        out.contains("55 received"),
        "pings lost across the rekeys:\n{out}\n{}",
        ike.log()
    );
    let log = ike.log();
    assert!(log.matches("installed (").count() >= 3, "{log}");
    // strongSwan's CREATE_CHILD_SA rekeys: each new inbound SPI came from ipsecd (GETSPI),
    // keyed with UPDATE, and policy was asked for each.
    assert!(!log.contains("installed (ADD inbound"), "{log}");
    assert!(
        log.matches("IPsec policy for the Child SA with").count() >= 3,
        "{log}"
    );
    assert!(log.matches("deleted: SPIs").count() >= 2, "{log}");
    assert!(log.contains("rekeyed: SPIs"), "{log}");
    both_ways(&s, &o, &d, &charon);
}

/// We rekey: our Child SA lifetime is 6 s (soft EXPIRE at 5.4 s) and our IKE SA's 8 s;
/// pings go on across our CREATE_CHILD_SA rekeys with strongSwan and are all answered.
#[test]
fn we_rekey_child_and_ike_sa_with_strongswan_under_traffic() {
    let Some((lab, s, o)) = lab("we_rekey_child_and_ike_sa_with_strongswan_under_traffic") else {
        return;
    };
    let charon = Charon::start(&lab, &s, "aes128gcm16-prfsha256-x25519", "aes128gcm16");
    let (d, ike) = ours_with(
        &lab,
        &o,
        "encr_algs aes-gcm",
        "encr_alg aes-gcm(128) prf sha256 dh_group 31",
        "encr_alg aes-gcm(128)",
        "  childsa_lifetime_secs 6\n  ikesa_lifetime_secs 8\n",
    );
    let _ = o.ping(S, 2);
    ike.wait_log("installed", 1, Duration::from_secs(15));
    let mut ping = o.spawn(&["ping", "-n", "-i", "0.2", "-c", "50", S]);
    let out = ping.success(Duration::from_secs(30)).join("\n");
    assert!(
        out.contains("50 received"),
        "pings lost across our rekeys:\n{out}\n{}",
        ike.log()
    );
    let log = ike.log();
    assert!(log.contains("soft EXPIRE"), "{log}");
    assert!(
        log.matches("installed (UPDATE inbound").count() >= 2,
        "{log}"
    );
    assert!(log.contains("deleted: SPIs"), "{log}");
    assert!(log.contains("rekeying the IKE SA"), "{log}");
    assert!(log.contains("rekeyed: SPIs"), "{log}");
    both_ways(&s, &o, &d, &charon);
}

/// NAT traversal: strongSwan sits behind a masquerading router and initiates; both sides
/// detect the NAT, IKE moves to port 4500, the Child SAs carry ESP in UDP through the
/// router's mapping, and traffic flows both ways. Our rule names
/// strongSwan's identity and its private address as its traffic selector.
///
/// ```text
///   S 10.0.0.1 ──vs──vi── N 10.0.0.254 | 192.0.2.1 (masquerade) ──vn──vo── O 192.0.2.2
/// ```
#[test]
fn strongswan_behind_a_nat_initiates() {
    if !available() {
        return;
    }
    let Some(lab) = Lab::new("strongswan_behind_a_nat_initiates") else {
        return;
    };
    let (s, n, o) = (lab.ns("s"), lab.ns("n"), lab.ns("o"));
    veth(&s, "vs", &n, "vi");
    veth(&n, "vn", &o, "vo");
    s.addr("vs", "10.0.0.1/24");
    n.addr("vi", "10.0.0.254/24");
    n.addr("vn", &format!("{S}/24"));
    o.addr("vo", &format!("{O}/24"));
    s.ip(&["route", "add", "default", "via", "10.0.0.254"]);
    common::masquerade(&n, "vn");
    let charon = Charon::start_as(
        &lab,
        &s,
        ("aes128gcm16-prfsha256-x25519", "aes128gcm16"),
        ("", ""),
        ("10.0.0.1", "s.example"),
    );
    let policy =
        format!("{{tunnel ip.tun0 negotiate tunnel laddr {O} raddr 10.0.0.1}} ipsec {{encr_algs aes-gcm sa shared}}\n");
    // Keepalives would go out every second: only strongSwan is behind the NAT, so none may.
    let d = Daemon::start_with(&lab, &o, "o", "", &policy, &["--keepalive-interval", "1"]);
    let cfg = format!(
        "ikesa_xform {{ encr_alg aes-gcm(128) prf sha256 dh_group 31 }}\n{{\n  label \"a-b\"\n  auth_method preshared\n  local_addr {O}\n  remote_addr {S}\n  remote_id fqdn \"s.example\"\n  remote_ts 10.0.0.1/32\n  childsa_mode tunnel\n}}\n"
    );
    let control = d.control.display().to_string();
    let ike = Ike::start(&lab, &o, "o", &d, &cfg, &["--control-socket", &control]);
    let cap = Capture::start(&lab, &o, "vo", "wire");
    let r = charon.swanctl(&["--initiate", "--child", "c", "--timeout", "15"]);
    assert!(
        r.status.success(),
        "swanctl --initiate: {}\n{}",
        String::from_utf8_lossy(&r.stdout),
        ike.log()
    );
    ike.wait_log("installed", 1, Duration::from_secs(10));
    assert!(
        ike.log()
            .contains("established (responder, IKE on port 4500)"),
        "{}",
        ike.log()
    );
    s.ping_ok(O, 5);
    o.ping_ok("10.0.0.1", 5);
    // The SAs say the peer is NATed, not us (SADB_X_SAFLAGS_NATT_REM, no NATT_LOC)...
    let dump = common::dump_esp(&o, &d);
    assert_eq!(dump.matches("X_NATT_REM").count(), 2, "{dump}");
    assert_eq!(dump.matches("X_NATT_LOC").count(), 0, "{dump}");
    // ... so ipsecd sends no NAT keepalives (RFC 3948 §2.3: the NATed side's job), though
    // the pings took more than three keepalive intervals.
    std::thread::sleep(Duration::from_secs(2));
    let c = d.counters();
    assert!(
        c.get("out_protected") >= 10 && c.get("in_accepted") >= 10,
        "{c:#?}"
    );
    assert_eq!(c.drop_reasons(), Default::default(), "{c:#?}");
    assert_eq!(c.get("natt_keepalive_out"), 0, "{c:#?}");
    let pcap = cap.stop();
    let ours: Vec<String> = pcap
        .ip()
        .filter(|p| p.proto == 17 && p.src == O.parse::<std::net::IpAddr>().unwrap())
        .filter(|p| p.payload.get(8..) == Some(&[0xff][..]))
        .map(|p| format!("{p:?}"))
        .collect();
    assert!(ours.is_empty(), "NAT keepalives from O: {ours:?}");
    no_clear_icmp(&pcap);
}

/// Dead-peer detection: strongSwan is killed; our liveness checks go unanswered and the
/// pair leaves ipsecd. strongSwan is started again: the next packet makes a new IKE SA
/// (with INITIAL_CONTACT) and traffic flows both ways.
#[test]
fn strongswan_killed_is_found_dead_and_rekeyed_after_its_restart() {
    let Some((lab, s, o)) = lab("strongswan_killed_is_found_dead_and_rekeyed_after_its_restart")
    else {
        return;
    };
    let (ike_p, esp_p) = ("aes128gcm16-prfsha256-x25519", "aes128gcm16");
    let mut charon = Charon::start(&lab, &s, ike_p, esp_p);
    let policy = format!(
        "{{tunnel ip.tun0 negotiate tunnel laddr {O} raddr {S}}} ipsec {{encr_algs aes-gcm sa shared}}\n"
    );
    let d = Daemon::start(&lab, &o, "o", "", &policy);
    let cfg = format!(
        "ikesa_xform {{ encr_alg aes-gcm(128) prf sha256 dh_group 31 }}\n{{\n  label \"a-b\"\n  auth_method preshared\n  local_addr {O}\n  remote_addr {S}\n  childsa_mode tunnel\n}}\n"
    );
    let control = d.control.display().to_string();
    let mut fast = vec!["--control-socket", &control];
    fast.extend_from_slice(&common::FAST_DPD);
    let ike = Ike::start(&lab, &o, "o", &d, &cfg, &fast);
    let _ = o.ping(S, 2);
    ike.wait_log("installed", 1, Duration::from_secs(15));
    o.ping_ok(S, 3);

    charon.kill9(&lab);
    ike.wait_log("dead peer", 1, Duration::from_secs(10));
    ike.wait_log("deleted: SPIs", 1, Duration::from_secs(2));

    let charon = Charon::start(&lab, &s, ike_p, esp_p);
    let t0 = Instant::now();
    while !o.ping(S, 1).status.success() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "no traffic after strongSwan's restart:\n{}",
            ike.log()
        );
    }
    ike.wait_log("installed", 2, Duration::from_secs(1));
    pings_and_sas(&s, &o, &charon);
    // While S was down its kernel answered our ESP in clear (ICMP port unreachable):
    // policy dropped those, and nothing else.
    let drops = d.counters().drop_reasons();
    assert!(
        drops
            .keys()
            .all(|k| k.starts_with("clear_drop_in_spd_got_clear")),
        "{drops:?}"
    );
}

/// strongSwan initiates offering AES-GCM first, then AES-CBC with HMAC-SHA-256; our IPsec
/// policy allows only the latter (our rule's `childsa_xform` names AES-GCM: policy
/// decides, the rule is only the fallback). in.ikev2d asks ipsecd (X_INVERSE_ACQUIRE) and
/// the pair is AES-CBC with HMAC-SHA-256 on both sides.
#[test]
fn strongswan_initiates_and_our_policy_picks_its_second_proposal() {
    let Some((lab, s, o)) = lab("strongswan_initiates_and_our_policy_picks_its_second_proposal")
    else {
        return;
    };
    let charon = Charon::start(
        &lab,
        &s,
        "aes256-sha256-x25519",
        "aes256gcm16, aes256-sha256",
    );
    // The IKE SA uses no GCM either, so that GCM in strongSwan's listing could only be
    // the Child SA's.
    let (d, ike) = ours(
        &lab,
        &o,
        "encr_algs aes-cbc(256) encr_auth_algs hmac-sha256",
        "encr_alg aes(256) auth_alg sha256 prf sha256 dh_group 31",
        "encr_alg aes-gcm(256)",
    );
    let r = charon.swanctl(&["--initiate", "--child", "c", "--timeout", "15"]);
    assert!(
        r.status.success(),
        "swanctl --initiate: {}\n{}",
        String::from_utf8_lossy(&r.stderr),
        ike.log()
    );
    ike.wait_log("installed", 1, Duration::from_secs(10));
    assert!(
        ike.log().contains("IPsec policy for the Child SA with"),
        "{}",
        ike.log()
    );
    let sas = charon.swanctl(&["--list-sas"]);
    let sas = String::from_utf8_lossy(&sas.stdout);
    assert!(
        sas.contains("AES_CBC") && sas.contains("HMAC_SHA2_256") && !sas.contains("AES_GCM_16"),
        "{sas}"
    );
    both_ways(&s, &o, &d, &charon);
}

/// IKE fragmentation (RFC 7383) with strongSwan: both sides send fragments of at most
/// 200-byte IP datagrams, so the IKE_AUTH messages (PSK) go as Encrypted Fragment payloads
/// both ways; the SAs come up and pings flow both ways, only as ESP.
fn fragmented_ike_auth(test: &str, starter: Starter) {
    let Some((lab, s, o)) = lab(test) else {
        return;
    };
    let charon = Charon::start_conf(
        &lab,
        &s,
        ("aes128gcm16-prfsha256-x25519", "aes128gcm16"),
        ("fragmentation = yes", ""),
        (S, S),
        "fragment_size = 200",
    );
    let (d, ike) = ours_globals(
        &lab,
        &o,
        "encr_algs aes-gcm",
        (
            "encr_alg aes-gcm(128) prf sha256 dh_group 31",
            "encr_alg aes-gcm(128)",
        ),
        "",
        "fragmentation yes\nfragment_size 200\n",
    );
    let file = negotiate_and_check(&lab, (&s, &o), &d, &ike, &charon, starter);
    // IKE payload type 53: Encrypted and Authenticated Fragment.
    let rows = tshark(
        &lab,
        &file,
        "",
        "isakmp.typepayload == 53",
        &[
            "ip.src",
            "ip.dst",
            "isakmp.frag.number",
            "isakmp.frag.total",
        ],
    );
    let from = |a: &str| {
        rows.iter()
            .filter(|r| r[0] == a && tshark_num(&r[3]).is_some_and(|t| t >= 2))
            .count()
    };
    assert!(
        from(S) >= 2 && from(O) >= 2,
        "Encrypted Fragment payloads S->O {}, O->S {}: {rows:?}\n{}",
        from(S),
        from(O),
        charon.log_text()
    );
    let ours: Vec<u64> = rows
        .iter()
        .filter(|r| r[0] == O)
        .filter_map(|r| tshark_num(&r[2]))
        .collect();
    assert!(ours.contains(&1) && ours.contains(&2), "{rows:?}");
}

#[test]
fn we_initiate_to_strongswan_with_fragmented_ike_auth() {
    fragmented_ike_auth(
        "we_initiate_to_strongswan_with_fragmented_ike_auth",
        Starter::Us,
    );
}

#[test]
fn strongswan_initiates_to_us_with_fragmented_ike_auth() {
    fragmented_ike_auth(
        "strongswan_initiates_to_us_with_fragmented_ike_auth",
        Starter::StrongSwan,
    );
}
