//! End-to-end: the NAT-T IKE relay (issue 6). IKE that a peer sends to ipsecd's NAT-T
//! port (UDP 4500, after the 4-byte non-ESP marker of RFC 3948 §2.2) reaches the key
//! managers connected to the control socket with `natt-relay`, and what they `send` leaves
//! from ipsecd's port 4500 with the marker.
//!
//! ```text
//!   A 192.0.2.1/24 ──va──vb── B 192.0.2.2/24, ipsecd (NAT-T on 4500, no policy for A)
//!   python: UDP 4500 ◄────────► ipsecd's NAT-T socket ◄── control socket ──► relay(s) (this test)
//! ```
//!
//! Before any relay connects, IKE is counted as `natt_ike_no_key_manager`. Then a relay
//! receives `ike 192.0.2.1 4500 192.0.2.2 4500\n` + the message, sends the answer with
//! `send 192.0.2.1 4500\n` + message, and A receives marker + answer from 192.0.2.2:4500.
//! Bad `send` requests are answered with `error ...`; two relays both receive a datagram;
//! the counters agree. A `send` naming B's second address as its source leaves from it.
//! Needs root; skipped otherwise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/netns.rs"]
mod netns;

use std::path::Path;
use std::time::{Duration, Instant};

use ipsec_sys::seqpacket::{Conn, Recv, Sent};
use ipsec_sys::{PollFd, PollFlags};
use netns::*;

const A: &str = "192.0.2.1";
const B: &str = "192.0.2.2";
/// B's second address.
const B2: &str = "192.0.2.3";

/// A's IKE endpoint: from UDP port 4500, sends the non-ESP marker and the message (hex)
/// to B:4500; with a timeout, then waits that long for one datagram and prints
/// `got SRC_IP SRC_PORT HEX`.
const IKE_PEER: &str = r#"
import socket, sys
dst, payload, wait = sys.argv[1], bytes.fromhex(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 4500))
s.sendto(b"\0\0\0\0" + payload, (dst, 4500))
print("sent", flush=True)
if wait > 0:
    s.settimeout(wait)
    data, src = s.recvfrom(65536)
    print("got", src[0], src[1], data.hex(), flush=True)
"#;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Waits until `pred` holds of B's counters (at most 5 s).
fn wait_counters(d: &Daemon, what: &str, pred: impl Fn(&Counters) -> bool) -> Counters {
    let t0 = Instant::now();
    loop {
        let c = d.counters();
        if pred(&c) {
            return c;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "{what}: {c:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The next message on `c` (at most 5 s).
fn next_msg(c: &Conn) -> Vec<u8> {
    let mut fds = [PollFd::new(c, PollFlags::IN)];
    let n = ipsec_sys::poll(&mut fds, Some(Duration::from_secs(5))).unwrap();
    assert!(n > 0, "no message on the relay connection within 5 s");
    let mut buf = vec![0u8; 1 << 17];
    match c.recv(&mut buf).unwrap() {
        Recv::Msg(n) => buf[..n].to_vec(),
        other => panic!("relay connection: {other:?}"),
    }
}

/// Nothing arrives on `c` for a while.
fn no_msg(c: &Conn, what: &str) {
    let mut fds = [PollFd::new(c, PollFlags::IN)];
    let n = ipsec_sys::poll(&mut fds, Some(Duration::from_millis(300))).unwrap();
    if n > 0 {
        let m = next_msg(c);
        panic!("{what}: unexpected {:?}", String::from_utf8_lossy(&m));
    }
}

/// A relay: a control connection that asked for `natt-relay`.
fn relay(control: &Path) -> Conn {
    let c = Conn::connect(control).unwrap();
    let r = control_request(&c, "natt-relay").unwrap();
    assert_eq!(r, "ok relaying IKE on NAT-T port 4500");
    c
}

fn send(c: &Conn, msg: &[u8]) {
    assert_eq!(c.send(msg).unwrap(), Sent::Done);
}

#[test]
fn ike_on_the_natt_port_is_relayed_both_ways() {
    let Some(lab) = Lab::new("ike_on_the_natt_port_is_relayed_both_ways") else {
        return;
    };
    let a = lab.ns("a");
    let b = lab.ns("b");
    veth(&a, "va", &b, "vb");
    a.addr("va", &format!("{A}/24"));
    b.addr("vb", &format!("{B}/24"));
    // Policy for another peer only (the daemon wants one to route into its TUN device):
    // A's traffic matches no rule and passes in the clear.
    let db = Daemon::start(
        &lab,
        &b,
        "b",
        "",
        &format!("{{laddr {B} raddr 198.51.100.9}} ipsec {{encr_algs aes-gcm sa shared}}\n"),
    );

    // No relay yet: counted and dropped, as before the relay existed.
    a.python(IKE_PEER, &[B, "01020304", "0"])
        .success(Duration::from_secs(10));
    wait_counters(&db, "IKE without a relay counted", |c| {
        c.get("natt_ike_no_key_manager") == 1
    });

    // A relay; and `send` before `natt-relay` is refused.
    let plain = Conn::connect(&db.control).unwrap();
    let r = control_request(&plain, &format!("send {A} 4500\nx")).unwrap();
    assert!(r.starts_with("error send needs natt-relay"), "{r}");
    let r1 = relay(&db.control);

    // A's IKE_SA_INIT (any bytes; a newline and NULs inside stay binary) reaches the relay
    // with both ends named.
    let init = b"\x12\x34\x56\x78\0\0\0\0\n\x21\x20\x22\x08IKE_SA_INIT".to_vec();
    let reply = b"\x12\x34\x56\x78\x9a\xbc\xde\xf0\n\x21\x20\x22\x20IKE_SA_INIT response".to_vec();
    let mut peer = a.python(IKE_PEER, &[B, &hex(&init), "10"]);
    peer.wait_stdout(Duration::from_secs(5), |l| l == "sent");
    let m = next_msg(&r1);
    let head = format!("ike {A} 4500 {B} 4500\n");
    assert!(
        m.starts_with(head.as_bytes()),
        "relay got {:?}",
        String::from_utf8_lossy(&m)
    );
    assert_eq!(&m[head.len()..], &init[..]);

    // The answer leaves B from port 4500 with the marker.
    send(
        &r1,
        &[format!("send {A} 4500\n").as_bytes(), &reply].concat(),
    );
    let out = peer.success(Duration::from_secs(10));
    let got = out.last().unwrap();
    assert_eq!(
        got,
        &format!("got {B} 4500 00000000{}", hex(&reply)),
        "A's datagram"
    );
    // A successful send has no reply.
    no_msg(&r1, "after a good send");

    // B's second address: the relay answers from the address the peer sent to (the
    // route would pick B's first).
    b.ip(&["addr", "add", &format!("{B2}/24"), "dev", "vb"]);
    let mut peer = a.python(IKE_PEER, &[B2, &hex(&init), "10"]);
    peer.wait_stdout(Duration::from_secs(5), |l| l == "sent");
    let head2 = format!("ike {A} 4500 {B2} 4500\n");
    assert_eq!(next_msg(&r1), [head2.as_bytes(), &init].concat());
    send(
        &r1,
        &[format!("send {A} 4500 {B2}\n").as_bytes(), &reply].concat(),
    );
    let out = peer.success(Duration::from_secs(10));
    assert_eq!(
        out.last().unwrap(),
        &format!("got {B2} 4500 00000000{}", hex(&reply)),
        "A's datagram from B's second address"
    );

    // Bad sends are explained; other requests still work on a relay connection.
    for (req, why) in [
        (format!("send {A} 4500"), "newline"),
        (format!("send {A}\nx"), "expected"),
        (format!("send {A} 4500 2001:db8::2\nx"), "family"),
        ("send host 4500\nx".to_string(), "not an IP address"),
        (format!("send {A} 4500\n"), "no IKE message"),
        ("send 2001:db8::1 4500\nx".to_string(), "2001:db8::1"),
    ] {
        send(&r1, req.as_bytes());
        let e = String::from_utf8(next_msg(&r1)).unwrap();
        assert!(e.starts_with("error ") && e.contains(why), "{req:?}: {e}");
    }
    send(&r1, b"stats");
    let s = String::from_utf8(next_msg(&r1)).unwrap();
    assert!(s.starts_with("ok\n"), "stats on a relay: {s}");

    // Two relays: both receive every datagram.
    let r2 = relay(&db.control);
    a.python(IKE_PEER, &[B, "aabbcc", "0"])
        .success(Duration::from_secs(10));
    for r in [&r1, &r2] {
        assert_eq!(next_msg(r), [head.as_bytes(), &[0xaa, 0xbb, 0xcc]].concat());
    }
    // A marker with no IKE after it is malformed, not relayed.
    a.python(IKE_PEER, &[B, "", "0"])
        .success(Duration::from_secs(10));
    wait_counters(&db, "a bare marker", |c| c.get("natt_bad_datagram") == 1);
    no_msg(&r1, "after a bare marker");
    let c = wait_counters(&db, "relayed and sent", |c| c.get("natt_ike_relayed") == 3);
    assert_eq!(c.get("natt_ike_no_key_manager"), 1, "{c:#?}");
    assert_eq!(c.get("natt_ike_sent"), 2, "{c:#?}");
    assert_eq!(c.get("natt_ike_send_error"), 1, "{c:#?}");
    assert_eq!(c.get("natt_ike_relay_dropped"), 0, "{c:#?}");
    assert_eq!(c.get("natt_ike_relay_queue_full"), 0, "{c:#?}");
    // IKE is not ESP: the engine never saw it.
    assert_eq!(c.get("natt_in"), 0, "{c:#?}");

    // Once the relays are gone, IKE is counted as having no key manager again.
    drop(r1);
    drop(r2);
    std::thread::sleep(Duration::from_millis(200));
    a.python(IKE_PEER, &[B, "01", "0"])
        .success(Duration::from_secs(10));
    wait_counters(&db, "IKE after the relays left", |c| {
        c.get("natt_ike_no_key_manager") == 2
    });
}

/// Sends `count` IKE datagrams of `size` bytes (marker, index, padding) from UDP port 4500
/// to `dst`:4500, then prints `done`.
const IKE_FLOOD: &str = r#"
import socket, struct, sys, time
dst, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 4500))
for i in range(count):
    s.sendto(b"\0\0\0\0" + struct.pack("!I", i) + b"\x5a" * (size - 8), (dst, 4500))
    if i % 100 == 99:
        time.sleep(0.005)
print("done", flush=True)
"#;

#[test]
fn a_relay_that_does_not_read_loses_datagrams_not_the_daemon() {
    let Some(lab) = Lab::new("a_relay_that_does_not_read_loses_datagrams_not_the_daemon") else {
        return;
    };
    let a = lab.ns("a");
    let b = lab.ns("b");
    veth(&a, "va", &b, "vb");
    a.addr("va", &format!("{A}/24"));
    b.addr("vb", &format!("{B}/24"));
    let db = Daemon::start(
        &lab,
        &b,
        "b",
        "",
        &format!("{{laddr {B} raddr 198.51.100.9}} ipsec {{encr_algs aes-gcm sa shared}}\n"),
    );
    let slow = relay(&db.control);

    // Far more than the relay's socket and queue hold while it reads nothing.
    const N: u64 = 4000;
    a.python(IKE_FLOOD, &[B, &N.to_string(), "1000"])
        .success(Duration::from_secs(30));
    let c = wait_counters(&db, "the flood accounted for", |c| {
        // Each datagram is queued for the relay, dropped for it, or dropped before the
        // server thread (the socket may lose a few too).
        c.get("natt_ike_relayed")
            + c.get("natt_ike_relay_dropped")
            + c.get("natt_ike_relay_queue_full")
            >= N - 100
            && c.get("natt_ike_relay_dropped") > 0
    });
    // The daemon still answers, and IKE was neither ESP nor unclaimed.
    assert_eq!(c.get("natt_in"), 0, "{c:#?}");
    assert_eq!(c.get("natt_ike_no_key_manager"), 0, "{c:#?}");

    // The relay reads what was queued for it: whole, in order, as many as relayed and
    // not dropped for it.
    let head = format!("ike {A} 4500 {B} 4500\n");
    let mut got = 0u64;
    let mut last = None;
    loop {
        let mut fds = [PollFd::new(&slow, PollFlags::IN)];
        if ipsec_sys::poll(&mut fds, Some(Duration::from_millis(500))).unwrap() == 0 {
            break;
        }
        let m = next_msg(&slow);
        assert!(
            m.starts_with(head.as_bytes()),
            "{:?}",
            &m[..40.min(m.len())]
        );
        let ike = &m[head.len()..];
        assert_eq!(ike.len(), 996);
        let i = u32::from_be_bytes(ike[..4].try_into().unwrap());
        assert!(
            last.is_none_or(|l| i > l),
            "out of order: {i} after {last:?}"
        );
        last = Some(i);
        got += 1;
    }
    let c = db.counters();
    assert_eq!(got, c.get("natt_ike_relayed"), "{c:#?}");
    assert!(
        got + c.get("natt_ike_relay_dropped") + c.get("natt_ike_relay_queue_full") <= N,
        "{c:#?}"
    );

    // Still a relay: the next datagram arrives.
    a.python(IKE_PEER, &[B, "0102", "0"])
        .success(Duration::from_secs(10));
    assert_eq!(next_msg(&slow), [head.as_bytes(), &[1, 2]].concat());
}
