//! TUN devices against the real kernel. Needs root; runs inside a private network namespace
//! (`unshare --net` re-executes this test binary), so the host's interfaces are never
//! touched and the namespace disappears with the process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use ipsec_sys::tun::Tun;

const INNER: &str = "IRONSWAN_TUN_TEST_INNER";

fn run_inside_private_netns(test: &str) -> bool {
    if std::env::var_os(INNER).is_some() {
        return false;
    }
    if ipsec_sys::geteuid() != 0 {
        eprintln!("skipped: {test} needs root (CI runs as root)");
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let st = Command::new("unshare")
        .arg("--net")
        .arg(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .status()
        .expect("unshare (util-linux) runs");
    assert!(st.success(), "{test} failed inside its network namespace");
    true
}

fn ip(args: &[&str]) {
    let st = Command::new("ip")
        .args(args)
        .status()
        .expect("ip (iproute2) runs");
    assert!(st.success(), "ip {args:?}");
}

fn checksum(b: &[u8]) -> u16 {
    let mut s = 0u32;
    for c in b.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

#[test]
fn packets_flow_both_ways_through_a_tun_device() {
    if run_inside_private_netns("packets_flow_both_ways_through_a_tun_device") {
        return;
    }
    ip(&["link", "set", "lo", "up"]);
    let tun = Tun::open("istest%d", false).unwrap();
    assert!(tun.name().starts_with("istest"), "{}", tun.name());
    ip(&["link", "set", "dev", tun.name(), "up"]);
    ip(&["addr", "add", "10.9.0.1/24", "dev", tun.name()]);

    // Kernel -> TUN: a datagram to a peer behind the device comes out as an IPv4 packet.
    let sock = UdpSocket::bind("10.9.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let port = sock.local_addr().unwrap().port();
    sock.send_to(b"ping over tun", "10.9.0.2:7").unwrap();
    let mut buf = [0u8; 2048];
    let pkt = loop {
        let n = tun.recv(&mut buf).unwrap();
        let p = &buf[..n];
        // Skip IPv6 router solicitations and the like.
        if p[0] >> 4 == 4 && p[9] == 17 {
            break p.to_vec();
        }
    };
    assert_eq!(&pkt[16..20], &[10, 9, 0, 2]);
    assert_eq!(&pkt[28..], b"ping over tun");

    // TUN -> kernel: a reply written to the device reaches the socket.
    let payload = b"pong";
    let total = 20 + 8 + payload.len();
    let mut r = vec![0u8; total];
    r[0] = 0x45;
    r[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    r[8] = 64;
    r[9] = 17;
    r[12..16].copy_from_slice(&Ipv4Addr::new(10, 9, 0, 2).octets());
    r[16..20].copy_from_slice(&Ipv4Addr::new(10, 9, 0, 1).octets());
    let c = checksum(&r[..20]);
    r[10..12].copy_from_slice(&c.to_be_bytes());
    r[20..22].copy_from_slice(&7u16.to_be_bytes());
    r[22..24].copy_from_slice(&port.to_be_bytes());
    r[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    r[28..].copy_from_slice(payload);
    tun.send(&r).unwrap();
    let (n, from) = sock.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], payload);
    assert_eq!(from.to_string(), "10.9.0.2:7");

    // Non-blocking reads report WouldBlock when the device is empty.
    tun.set_nonblocking(true).unwrap();
    loop {
        match tun.recv(&mut buf) {
            Ok(_) => continue,
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
                break;
            }
        }
    }
}
