//! End-to-end: two in.ikev2d authenticating with certificates, each store filled with
//! `ikev2cert` from the test PKI of crates/ike/tests/certs.
//!
//! ```text
//!   A 192.0.2.1 ──va──vb── B 192.0.2.2
//!   alice-rsa (RSA-2048, via rsa-int)       bob-rsa (RSA-3072, IP 192.0.2.2)
//!   auth_method rsa_pss, fqdn alice.example  auth_method rsa_pss, ip 192.0.2.2
//!   trusts rsa-root                          trusts rsa-root
//! ```
//!
//! (A's `rsa_pss` accepts only RSASSA-PSS from B, so B signs with it too: a B with
//! `auth_method cert` and its ECDSA P-384 certificate is refused, see
//! ike/tests/cert_auth.rs `configured_method_constrains_the_peer`.)
//!
//! A ping from A makes its ipsecd ACQUIRE; the daemons sign with RSASSA-PSS,
//! check each other's chain (A sends its intermediate) and identity (A's rule names no
//! remote_id, so B's address, which must be in B's certificate), and install the pair:
//! pings flow both ways, only IKE and ESP on the link. Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod certtool;
mod common;
#[path = "../../ipsecd/tests/common/netns.rs"]
mod netns;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certtool::pki;
use common::Ike;
use netns::*;

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";

/// A store in the lab with `anchor` trusted, `certs` and the key of the first.
fn store(lab: &Lab, name: &str, anchor: &str, certs: &[&str]) -> PathBuf {
    let dir = lab.dir.join(format!("{name}.store"));
    certtool::ok(
        &dir,
        &[
            "import",
            &format!("infile={}", pki(&format!("{anchor}.crt"))),
            "objtype=anchor",
        ],
    );
    let key = lab.dir.join(format!("{name}.key"));
    std::fs::copy(pki(&format!("{}.key", certs[0])), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = certtool::ok(
        &dir,
        &[
            "import",
            &format!("infile={}", pki(&format!("{}.crt", certs[0]))),
            &format!("keyfile={}", key.display()),
        ],
    );
    assert!(out.contains("certificate with private key"), "{out}");
    for c in &certs[1..] {
        certtool::ok(
            &dir,
            &["import", &format!("infile={}", pki(&format!("{c}.crt")))],
        );
    }
    dir
}

fn config(store: &Path, local: &str, remote: &str, auth: &str, ids: &str) -> String {
    format!(
        "cert_store \"{}\"\nikesa_xform {{ encr_alg aes-gcm(256) prf sha256 dh_group 19 }}\n\
         {{\n  label \"a-b\"\n  auth_method {auth}\n  local_addr {local}\n  remote_addr {remote}\n{ids}}}\n",
        store.display()
    )
}

/// One side: (trust anchor, certificates with the key of the first, auth_method).
type Side<'a> = (&'a str, &'a [&'a str], &'a str);

/// Both namespaces with ipsecd and in.ikev2d: A (fqdn alice.example, no remote_id) and
/// B (ip 192.0.2.2, expecting alice.example), each with its store.
/// (Fields drop in this order: the IKE daemons before the ipsecd they talk to.)
struct Pair {
    ia: Ike,
    ib: Ike,
    da: Daemon,
    db: Daemon,
    a: Ns,
    b: Ns,
}

fn pair(
    lab: &Lab,
    (anchor_a, certs_a, auth_a): Side<'_>,
    (anchor_b, certs_b, auth_b): Side<'_>,
) -> Pair {
    let (a, b) = common::two_namespaces(lab, A, B);
    let policy = |l: &str, r: &str| {
        format!("{{laddr {l} raddr {r}}} ipsec {{encr_algs aes-gcm sa shared}}\n")
    };
    let da = Daemon::start(lab, &a, "a", "", &policy(A, B));
    let db = Daemon::start(lab, &b, "b", "", &policy(B, A));
    let sa = store(lab, "a", anchor_a, certs_a);
    let sb = store(lab, "b", anchor_b, certs_b);
    let ia = Ike::start(
        lab,
        &a,
        "a",
        &da,
        &config(&sa, A, B, auth_a, "  local_id fqdn alice.example\n"),
        &[],
    );
    let ib = Ike::start(
        lab,
        &b,
        "b",
        &db,
        &config(
            &sb,
            B,
            A,
            auth_b,
            &format!("  local_id ip {B}\n  remote_id fqdn alice.example\n"),
        ),
        &[],
    );
    Pair {
        a,
        b,
        da,
        db,
        ia,
        ib,
    }
}

#[test]
fn certificates_rsa_pss_between_two_daemons() {
    let Some(lab) = Lab::new("certificates_rsa_pss_between_two_daemons") else {
        return;
    };
    let Pair {
        a,
        b,
        da,
        db,
        ia,
        ib,
    } = pair(
        &lab,
        ("rsa-root", &["alice-rsa", "rsa-int"], "rsa_pss"),
        ("rsa-root", &["bob-rsa"], "rsa_pss"),
    );
    let cap = Capture::start(&lab, &a, "va", "wire");
    let _ = a.ping(B, 2);
    ia.wait_log("installed", 1, Duration::from_secs(10));
    ib.wait_log("installed", 1, Duration::from_secs(5));
    assert!(ia.log().contains("established (initiator"), "{}", ia.log());
    assert!(ib.log().contains("established (responder"), "{}", ib.log());
    a.ping_ok(B, 3);
    b.ping_ok(A, 3);
    for d in [&da, &db] {
        let c = d.counters();
        assert!(
            c.get("out_protected") >= 6 && c.get("in_accepted") >= 6,
            "{c:#?}"
        );
    }
    // Only ESP carries the pings. The IKE_AUTH messages (~2.4 KB) went as IKE fragments
    // (RFC 7383, on by default with 1280-byte datagrams): no IP fragment on the link.
    let pcap = cap.stop();
    // The UDP length field holds the whole datagram's size, even in a first IP fragment.
    let udp_len = |p: &IpPkt| {
        p.payload
            .get(4..6)
            .map(|l| u16::from_be_bytes([l[0], l[1]]))
    };
    let big: Vec<u16> = pcap
        .ip()
        .filter(|p| p.proto == 17)
        .filter_map(udp_len)
        .filter(|l| usize::from(*l) + 20 > 1280)
        .collect();
    assert!(big.is_empty(), "UDP datagrams over 1280 bytes: {big:?}");
    let icmp = pcap.ip().filter(|p| p.proto == 1).count();
    let esp = pcap.ip().filter(|p| p.proto == 50).count();
    assert_eq!(icmp, 0, "cleartext ICMP on the link");
    assert!(esp >= 12, "{esp} ESP packets");
}

/// A's `auth_method rsa_pss` binds B too: B (`auth_method cert`, ECDSA P-384, chain
/// trusted by A) authenticates with ECDSA, which A refuses; no pair is installed.
#[test]
fn rsa_pss_rule_refuses_an_ecdsa_peer() {
    let Some(lab) = Lab::new("rsa_pss_rule_refuses_an_ecdsa_peer") else {
        return;
    };
    let p = pair(
        &lab,
        ("ec-root", &["alice-rsa", "rsa-int"], "rsa_pss"),
        ("rsa-root", &["bob-ec"], "cert"),
    );
    let (a, ia) = (&p.a, &p.ia);
    let _ = a.ping(B, 2);
    ia.wait_log(
        "authentication method or key type not allowed for the peer by auth_method",
        1,
        Duration::from_secs(10),
    );
    // B got as far as accepting A (RSASSA-PSS is fine for `cert`); A installed nothing.
    assert!(!ia.log().contains("installed"), "{}", ia.log());
    assert!(!ia.log().contains("established (initiator"), "{}", ia.log());
}
