//! ipsecpcap with its I/O threads (`--threads 2` and `3`) against the single-threaded run
//! (`--threads 1`): a large capture round-trips byte for byte, with the same output files,
//! report and exit status; I/O errors give the same message and status 2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ipsec_core::{Proto, SaConfig};
use ipsec_crypto::{AuthAlg, EncrAlg};

fn sas() -> Vec<SaConfig> {
    let mut gcm = sa(Proto::Esp, 0x9001, "10.7.0.1", "10.7.0.2");
    gcm.encr_alg = Some(EncrAlg::AesGcm16);
    gcm.encr_key = key(20, 1);
    gcm.esn = true;
    gcm.replay_window = 1024;
    let mut cbc = tunnel(
        sa(Proto::Esp, 0x9002, "2001:db8:7::1", "2001:db8:7::2"),
        "fd00:7::1",
        "fd00:8::1",
    );
    cbc.encr_alg = Some(EncrAlg::AesCbc);
    cbc.encr_key = key(16, 2);
    cbc.auth_alg = Some(AuthAlg::HmacSha256);
    cbc.auth_key = key(32, 3);
    let mut ah = sa(Proto::Ah, 0x9003, "10.7.1.1", "10.7.1.2");
    ah.auth_alg = Some(AuthAlg::HmacSha1);
    ah.auth_key = key(20, 4);
    vec![gcm, cbc, ah]
}

/// `n` packets over the three SAs' flows and one flow without an SA, with sizes that vary
/// from packet to packet (so the records fall across the threads' chunk boundaries at every
/// offset).
fn packets(n: usize) -> Vec<Vec<u8>> {
    let flows = [
        ("10.7.0.1", "10.7.0.2"),
        ("fd00:7::1", "fd00:8::1"),
        ("10.7.1.1", "10.7.1.2"),
        ("10.7.0.1", "10.7.0.2"),
        ("10.7.9.1", "10.7.9.2"),
    ];
    (0..n)
        .map(|i| {
            let (s, d) = flows[i % flows.len()];
            let len = (i * 7919) % 1400;
            udp_packet(ip(s), ip(d), 1000 + (i % 300) as u16, 53, len)
        })
        .collect()
}

#[test]
fn a_large_capture_round_trips_the_same_with_and_without_io_threads() {
    let dir = TempDir::new("threads");
    let sas = sas();
    let sa_file = dir.path("sas.ipseckey");
    write_sa_file(&sa_file, &sas);
    let sa = sa_file.display().to_string();
    let pkts = packets(20_000);
    for ng in [false, true] {
        let plain = dir.path("plain");
        write_capture(&plain, ng, 101, &raw_recs(&pkts));
        let p = plain.display().to_string();
        // Per thread count: the encrypted capture, and stdout and stderr of each command.
        let mut seen: Vec<(Vec<u8>, Vec<String>)> = Vec::new();
        for threads in ["1", "2", "3"] {
            let enc = dir.path(&format!("enc{threads}"));
            let dec = dir.path(&format!("dec{threads}"));
            let (e, d) = (enc.display().to_string(), dec.display().to_string());
            let t = ["--threads", threads];
            let re = run_bin(&[&["encrypt", "--sa", &sa][..], &t, &[&p, &e]].concat());
            // The flow without an SA is copied and reported: status 1.
            assert_eq!(re.code, 1, "ng={ng} threads={threads}: {}", re.stderr);
            assert!(re.stdout.contains("#5 10.7.9.1 -> 10.7.9.2 no SA (passed)"));
            assert!(re
                .stdout
                .contains("20000 packets: 16000 ok, 0 dropped, 4000 passed"));
            let rd = run_bin(&[&["decrypt", "--sa", &sa][..], &t, &[&e, &d]].concat());
            assert_eq!(rd.code, 1, "ng={ng} threads={threads}: {}", rd.stderr);
            assert!(rd
                .stdout
                .contains("20000 packets: 16000 ok, 0 dropped, 4000 passed"));
            // Byte for byte: the pcap header, every record and timestamp, the pcapng blocks.
            assert!(
                std::fs::read(&dec).unwrap() == std::fs::read(&plain).unwrap(),
                "ng={ng} threads={threads}: decrypted capture differs from the plaintext"
            );
            let rv = run_bin(&[&["verify", "--sa", &sa][..], &t, &[&e]].concat());
            assert_eq!(rv.code, 1, "{}", rv.stderr);
            assert!(rv.stdout.contains("#20000 "), "{}", rv.stdout);
            let texts = [re, rd, rv]
                .into_iter()
                .flat_map(|r| [r.stdout, r.stderr])
                .collect();
            seen.push((std::fs::read(&enc).unwrap(), texts));
        }
        for (i, s) in seen.iter().enumerate().skip(1) {
            assert!(
                s.0 == seen[0].0,
                "ng={ng}: --threads {} encrypts differently",
                i + 1
            );
            assert_eq!(
                s.1,
                seen[0].1,
                "ng={ng}: --threads {} reports differently",
                i + 1
            );
        }
    }
}

#[test]
fn io_errors_are_the_same_message_and_status_with_threads() {
    let dir = TempDir::new("threads-err");
    let sa_file = dir.path("sas.ipseckey");
    write_sa_file(&sa_file, &sas());
    let sa = sa_file.display().to_string();
    let plain = dir.path("plain.pcap");
    write_capture(&plain, false, 101, &raw_recs(&packets(3000)));
    let p = plain.display().to_string();
    let mut msgs = Vec::new();
    for threads in ["1", "2", "3"] {
        let t = ["--threads", threads];
        // Writing fails (ENOSPC) after the first chunk, in the writer thread when there is one.
        if std::path::Path::new("/dev/full").exists() {
            let r = run_bin(&[&["encrypt", "--sa", &sa][..], &t, &[&p, "/dev/full"]].concat());
            assert_eq!(r.code, 2, "threads={threads}: {r:?}");
            assert_eq!(
                r.stderr, "ipsecpcap: /dev/full: No space left on device (os error 28)\n",
                "threads={threads}"
            );
            assert!(!r.stdout.contains("result:"), "{}", r.stdout);
        }
        // Reading fails (EISDIR) in the reader thread when there is one.
        let d = dir.0.display().to_string();
        let out = dir.path("o.pcap").display().to_string();
        for args in [
            vec!["decrypt", "--sa", &sa, "--threads", threads, &d, &out],
            vec!["verify", "--sa", &sa, "--threads", threads, &d],
        ] {
            let r = run_bin(&args);
            assert_eq!(r.code, 2, "{args:?}: {r:?}");
            msgs.push(r.stderr);
        }
        // A capture cut short: the same error after the same report lines.
        let bytes = std::fs::read(&plain).unwrap();
        let cut = dir.path("cut.pcap");
        std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
        let c = cut.display().to_string();
        let r = run_bin(&["verify", "--sa", &sa, "--threads", threads, &c]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("is truncated"), "{}", r.stderr);
        msgs.push(r.stderr);
        let r = run_bin(&["encrypt", "--sa", &sa, "--threads", threads, &c, &out]);
        assert_eq!(r.code, 2, "{r:?}");
        msgs.push(format!("{}{}", r.stdout, r.stderr));
    }
    assert!(msgs[0].contains("Is a directory"), "{}", msgs[0]);
    let n = msgs.len() / 3;
    assert_eq!(msgs[..n], msgs[n..2 * n]);
    assert_eq!(msgs[..n], msgs[2 * n..]);
}
