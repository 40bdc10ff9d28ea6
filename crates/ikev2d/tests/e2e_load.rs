//! End-to-end: the load generator of `scripts/bench-ike.sh` (`ikev2-load`) against
//! in-ikev2d + ipsecd. Not a benchmark (no rate is asserted): it checks that the tool
//! really makes IKE SAs, that the responder keys a Child SA pair for every one of many
//! concurrent IKE SAs with the same peer (and removes it with its IKE SA), and that
//! during a flood from spoofed addresses an initiator honouring the COOKIE still gets
//! its SAs.
//!
//! ```text
//!   A 192.0.2.1, AnyIP 10.99.0.0/16 ──── B 192.0.2.2 ipsecd + in-ikev2d
//!   (ikev2-load sas / flood)              (route to 10.99.0.0/16 via A)
//! ```
//! Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../ipsecd/tests/common/netns.rs"]
mod netns;

use std::collections::HashMap;
use std::time::Duration;

use common::{Ike, PSK};
use netns::*;

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";
const LOAD: &str = env!("CARGO_BIN_EXE_ikev2-load");

/// `key=value` words of the tool's last output line.
fn fields(out: &[String]) -> HashMap<String, String> {
    out.last()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn num(f: &HashMap<String, String>, k: &str) -> u64 {
    f.get(k)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {k} in {f:?}"))
}

fn stat(ike: &Ike, k: &str) -> u64 {
    let (ok, s, e) = ike.adm(&["show", "stats"]);
    assert!(ok, "{e}");
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{k}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {k} in {s}"))
}

/// Runs `ikev2-load sas` from A to B with the test key and `extra` options: its counters.
fn sas(lab: &Lab, a: &Ns, extra: &[&str]) -> HashMap<String, String> {
    let psk = lab.file("psk", &format!("{PSK}\n"));
    let psk = psk.display().to_string();
    let mut args = vec![LOAD, "sas", "--peer", B, "--local", A, "--psk-file", &psk];
    args.extend_from_slice(extra);
    let out = a.spawn(&args).success(Duration::from_secs(20));
    eprintln!("{}", out.join("\n"));
    fields(&out)
}

/// The responder's rule covers A and the flood's prefix; tunnel-mode Child SAs.
fn responder(lab: &Lab, b: &Ns, threshold: &str) -> (Daemon, Ike) {
    let d = Daemon::start(
        lab,
        b,
        "b",
        "",
        &format!("{{tunnel ip.tun0 negotiate tunnel laddr {B} raddr {A}}} ipsec {{encr_algs aes-gcm sa shared}}\n"),
    );
    let cfg = format!(
        "{{\n  label \"a-b\"\n  auth_method preshared\n  local_addr {B}\n  remote_addr {A}\n  remote_addr 10.99.0.0/16\n  childsa_mode tunnel\n}}\n"
    );
    let ike = Ike::start(lab, b, "b", &d, &cfg, &["--cookie-threshold", threshold]);
    (d, ike)
}

#[test]
fn load_generator_makes_and_deletes_concurrent_ike_sas() {
    let Some(lab) = Lab::new("load_generator_makes_and_deletes_concurrent_ike_sas") else {
        return;
    };
    let (a, b) = common::two_namespaces(&lab, A, B);
    let (_d, ike) = responder(&lab, &b, "100000");
    let f = sas(&lab, &a, &["--concurrency", "8", "--seconds", "2"]);
    let made = num(&f, "established") + num(&f, "late");
    assert!(num(&f, "established") >= 8, "{f:?}");
    assert_eq!(num(&f, "failed"), 0, "{f:?}");
    assert_eq!(num(&f, "unfinished"), 0, "{f:?}");
    assert_eq!(num(&f, "deleted"), made, "{f:?}");
    // Every IKE SA keyed its own pair, and its delete removed it.
    assert_eq!(stat(&ike, "ike_established"), made, "{}", ike.log());
    assert_eq!(stat(&ike, "children_installed"), made, "{}", ike.log());
    assert_eq!(stat(&ike, "children_deleted"), made, "{}", ike.log());
    assert_eq!(stat(&ike, "ike_sas"), 0, "{}", ike.log());
}

#[test]
fn cookie_honouring_initiator_gets_sas_during_a_spoofed_flood() {
    let Some(lab) = Lab::new("cookie_honouring_initiator_gets_sas_during_a_spoofed_flood") else {
        return;
    };
    let (a, b) = common::two_namespaces(&lab, A, B);
    // The flood's sources are local to A (AnyIP), and B routes them back to A.
    a.ip(&["route", "add", "local", "10.99.0.0/16", "dev", "lo"]);
    b.ip(&["route", "add", "10.99.0.0/16", "via", A, "dev", "vb"]);
    let (_d, ike) = responder(&lab, &b, "16");
    let mut flood = a.spawn(&[
        LOAD,
        "flood",
        "--peer",
        B,
        "--sources",
        "10.99.0.0/16",
        "--count",
        "600",
        "--seconds",
        "3",
        "--linger-seconds",
        "1",
    ]);
    std::thread::sleep(Duration::from_millis(1000));
    let f = sas(
        &lab,
        &a,
        &["--count", "3", "--concurrency", "1", "--seconds", "10"],
    );
    let fl = fields(&flood.success(Duration::from_secs(20)));
    eprintln!("{f:?}\n{fl:?}");
    assert_eq!(num(&f, "established"), 3, "{f:?}\n{}", ike.log());
    assert!(num(&f, "cookies") >= 3, "{f:?}");
    // The first 16 requests left half-open SAs; every later one got only a COOKIE.
    assert_eq!(num(&fl, "sent"), 600, "{fl:?}");
    assert_eq!(num(&fl, "full"), 16, "{fl:?}");
    assert_eq!(num(&fl, "full_after_first_cookie"), 0, "{fl:?}");
    assert_eq!(num(&fl, "other"), 0, "{fl:?}");
    assert!(num(&fl, "cookie") >= 600 - 16 - 10, "{fl:?}");
}
