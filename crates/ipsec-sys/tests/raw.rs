//! Raw ESP/AH sockets against the real kernel: a complete packet sent by the header-included
//! sender comes back whole from the protocol's receiver, for IPv4 and IPv6 (whose header
//! the receiver rebuilds). Needs root; runs inside a private network namespace over
//! loopback (`unshare --net` re-executes this test binary).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::time::{Duration, Instant};

use ipsec_sys::raw::RawSocket;

const INNER: &str = "IRONSWAN_RAW_TEST_INNER";

fn run_inside_private_netns(test: &str) -> bool {
    if std::env::var_os(INNER).is_some() {
        return false;
    }
    if ipsec_sys::geteuid() != 0 {
        eprintln!("skipped: {test} needs root (CI runs as root)");
        return true;
    }
    let st = Command::new("unshare")
        .arg("--net")
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .status()
        .expect("unshare (util-linux) runs");
    assert!(st.success(), "{test} failed inside its network namespace");
    true
}

fn recv_within(sock: &RawSocket, buf: &mut [u8]) -> ipsec_sys::raw::RawRecv {
    sock.set_nonblocking(true).unwrap();
    let start = Instant::now();
    loop {
        match sock.recv(buf) {
            Ok(r) => return r,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(start.elapsed() < Duration::from_secs(5), "nothing received");
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("recv: {e}"),
        }
    }
}

#[test]
fn esp_packets_round_trip_over_loopback() {
    if run_inside_private_netns("esp_packets_round_trip_over_loopback") {
        return;
    }
    let st = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .unwrap();
    assert!(st.success());

    // IPv4: header + fake ESP (SPI, sequence, payload).
    let rx4 = RawSocket::receiver(false, 50).unwrap();
    let tx4 = RawSocket::sender(false, 0x1234).unwrap();
    let mut p4 = vec![
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 50, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
    ];
    p4.extend_from_slice(&[0, 0, 0x10, 0, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd]);
    let len = p4.len() as u16;
    p4[2..4].copy_from_slice(&len.to_be_bytes());
    tx4.send(&p4).unwrap();
    let mut buf = [0u8; 2048];
    let r = recv_within(&rx4, &mut buf);
    assert_eq!(r.src.to_string(), "127.0.0.1");
    assert_eq!(r.len, p4.len());
    assert_eq!(buf[9], 50);
    assert_eq!(&buf[20..r.len], &p4[20..]);

    // A batch goes out with sendmmsg, in order.
    let mut batch = Vec::new();
    for i in 0..3u8 {
        let mut p = p4.clone();
        p[27] = 10 + i;
        batch.push(p);
    }
    let refs: Vec<&[u8]> = batch.iter().map(|p| p.as_slice()).collect();
    assert_eq!(tx4.send_batch(&refs).unwrap(), 3);
    // ... and comes back with one recvmmsg.
    std::thread::sleep(Duration::from_millis(50));
    let mut store = vec![vec![0u8; 2048]; 8];
    let mut bufs: Vec<&mut [u8]> = store.iter_mut().map(|b| b.as_mut_slice()).collect();
    let mut out = [ipsec_sys::raw::RawRecv {
        len: 0,
        src: "0.0.0.0".parse().unwrap(),
    }; 8];
    assert_eq!(rx4.recv_batch(&mut bufs, &mut out).unwrap(), 3);
    for i in 0..3 {
        assert_eq!(out[i].len, p4.len());
        assert_eq!(out[i].src.to_string(), "127.0.0.1");
        assert_eq!(bufs[i][27], 10 + i as u8);
    }
    assert_eq!(
        rx4.recv_batch(&mut bufs, &mut out).unwrap(),
        0,
        "nothing left"
    );

    // IPv6: the receiver rebuilds the fixed header from the ancillary data.
    let rx6 = RawSocket::receiver(true, 50).unwrap();
    let tx6 = RawSocket::sender(true, 0x1234).unwrap();
    let mut p6 = vec![0u8; 40];
    p6[0] = 0x60 | (0xb8 >> 4);
    p6[1] = (0xb8 & 0x0f) << 4;
    p6[6] = 50;
    p6[7] = 33;
    p6[23] = 1;
    p6[39] = 1;
    p6.extend_from_slice(&[0, 0, 0x20, 0, 0, 0, 0, 7, 1, 2, 3, 4]);
    let plen = (p6.len() - 40) as u16;
    p6[4..6].copy_from_slice(&plen.to_be_bytes());
    tx6.send(&p6).unwrap();
    let r = recv_within(&rx6, &mut buf);
    assert_eq!(r.src.to_string(), "::1");
    assert_eq!(r.len, p6.len());
    assert_eq!(&buf[..r.len], &p6[..], "rebuilt header and payload");
}
