//! End-to-end: a flood of IKE_SA_INIT requests at in-ikev2d's responder (RFC 7296 §2.6).
//! Once the half-open IKE SAs reach the threshold (`--cookie-threshold 16`), every new
//! request without a cookie gets a COOKIE notification only and leaves no state: the
//! daemon's IKE SAs stay at the threshold, and it keeps answering.
//!
//! ```text
//!   A 192.0.2.1 (python: 2000 distinct IKE_SA_INIT requests) ──── B 192.0.2.2 ipsecd + in-ikev2d
//! ```
//! Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
#[path = "../../ipsecd/tests/common/netns.rs"]
mod netns;

use std::time::{Duration, Instant};

use common::Ike;
use ike::consts::id;
use ike::dh::Group;
use ike::prf::PrfAlg;
use ike::sa::{Backoff, ExpectSaInitResp, Identity, IkeConfig, Path};
use ike::wire::TrafficSelector;
use ikev2d::config::{ChildXform, IkeXform};
use netns::*;
use zeroize::Zeroizing;

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";
const REQUESTS: usize = 2000;
const THRESHOLD: usize = 16;

/// Sends every request (hex, one a line, in the file argv[1]) to argv[2]:500, then
/// collects answers for 2 s and prints `full N cookie M other K`.
const FLOOD: &str = r#"
import socket, sys, time
reqs = [bytes.fromhex(l) for l in open(sys.argv[1]).read().split()]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind(("0.0.0.0", 0))
s.setblocking(False)
full = cookie = other = 0
def drain():
    global full, cookie, other
    while True:
        try:
            d = s.recv(65536)
        except BlockingIOError:
            return
        if len(d) >= 36 and d[16] == 41 and int.from_bytes(d[34:36], "big") == 16390:
            cookie += 1
        elif len(d) > 28 and d[16] == 33:
            full += 1
        else:
            other += 1
for i, r in enumerate(reqs):
    s.sendto(r, (sys.argv[2], 500))
    if i % 50 == 0:
        drain()
        time.sleep(0.005)
end = time.time() + 2
while time.time() < end:
    drain()
    time.sleep(0.01)
print("full", full, "cookie", cookie, "other", other, flush=True)
"#;

fn requests() -> String {
    let host = |a: [u8; 4]| TrafficSelector {
        ip_protocol: 0,
        start_port: 0,
        end_port: 65535,
        start: std::net::IpAddr::from(a),
        end: std::net::IpAddr::from(a),
    };
    let cfg = IkeConfig {
        suite: IkeXform::default().suite,
        prf: PrfAlg::HmacSha256,
        group: Group::Curve25519,
        child: ChildXform::default().suite(true, false),
        local_id: Identity {
            id_type: id::IPV4_ADDR,
            data: vec![192, 0, 2, 1],
        },
        remote_id: None,
        psk: Zeroizing::new(b"not the key".to_vec()),
        ts_local: vec![host([192, 0, 2, 1])],
        ts_remote: vec![host([192, 0, 2, 2])],
        backoff: Backoff::default(),
        child_policy_required: false,
        max_child_sas: ike::sa::DEFAULT_MAX_CHILD_SAS,
        initial_contact: false,
        more_proposals: Vec::new(),
        child_more: Vec::new(),
        cert: None,
        fragment_len: None,
    };
    let path = Path {
        local: "192.0.2.1:500".parse().unwrap(),
        remote: "192.0.2.2:500".parse().unwrap(),
    };
    let mut rng = ikev2d::OsRandom::default();
    let now = Instant::now();
    let mut out = String::new();
    for _ in 0..REQUESTS {
        let s = ExpectSaInitResp::start(cfg.clone(), path, now, &mut rng).unwrap();
        for b in s.request() {
            out.push_str(&format!("{b:02x}"));
        }
        out.push('\n');
    }
    out
}

#[test]
fn half_open_flood_gets_cookies_and_leaves_bounded_state() {
    let Some(lab) = Lab::new("half_open_flood_gets_cookies_and_leaves_bounded_state") else {
        return;
    };
    let (a, b) = common::two_namespaces(&lab, A, B);
    let db = Daemon::start(
        &lab,
        &b,
        "b",
        "",
        &format!("{{laddr {B} raddr {A}}} ipsec {{encr_algs aes-gcm sa shared}}\n"),
    );
    let config = format!(
        "{{\n  label \"a-b\"\n  auth_method preshared\n  local_addr {B}\n  remote_addr {A}\n}}\n"
    );
    let threshold = THRESHOLD.to_string();
    let ib = Ike::start(
        &lab,
        &b,
        "b",
        &db,
        &config,
        &["--cookie-threshold", &threshold],
    );
    let file = lab.file("requests.hex", &requests());
    let out = a
        .python(FLOOD, &[&file.display().to_string(), B])
        .success(Duration::from_secs(40));
    let line = out.last().unwrap();
    let n: Vec<usize> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (full, cookie, other) = (n[0], n[1], n[2]);
    eprintln!("{REQUESTS} IKE_SA_INIT requests: {line}");
    // Exactly the threshold got state (and a full answer); the rest only cookies.
    assert_eq!(full, THRESHOLD, "{line}");
    assert_eq!(other, 0, "{line}");
    assert!(cookie >= REQUESTS * 9 / 10 - THRESHOLD, "{line}");
    let (ok, stats, _) = ib.adm(&["show", "stats"]);
    assert!(
        ok && stats.contains(&format!("ike_sas={THRESHOLD}\n")),
        "{stats}"
    );
}
