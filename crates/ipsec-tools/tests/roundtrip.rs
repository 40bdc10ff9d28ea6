//! ipsecpcap end to end: plaintext captures (raw IP and Ethernet, pcap and pcapng, IPv4 and
//! IPv6) encrypted and decrypted back byte for byte; verify's replay and ICV verdicts; exit
//! statuses; fragments; bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ipsec_core::{Proto, SaConfig};
use ipsec_crypto::{AuthAlg, EncrAlg};
use ipsec_tools::pcaptool::inspect::sec_hdrs;

fn esp(
    spi: u32,
    src: &str,
    dst: &str,
    e: EncrAlg,
    ek: usize,
    a: Option<(AuthAlg, usize)>,
) -> SaConfig {
    let mut c = sa(Proto::Esp, spi, src, dst);
    c.encr_alg = Some(e);
    c.encr_key = key(ek, spi as u8);
    if let Some((a, ak)) = a {
        c.auth_alg = Some(a);
        c.auth_key = key(ak, (spi >> 1) as u8);
    }
    c
}

fn ah(spi: u32, src: &str, dst: &str, a: AuthAlg, ak: usize) -> SaConfig {
    let mut c = sa(Proto::Ah, spi, src, dst);
    c.auth_alg = Some(a);
    c.auth_key = key(ak, spi as u8);
    c
}

/// SAs covering transport, tunnel (same and cross family), AH, AH+ESP, NAT-T and ESN, and
/// plaintext packets for each.
fn scenario() -> (Vec<SaConfig>, Vec<Vec<u8>>) {
    let mut sas = vec![
        esp(0x1001, "10.0.0.1", "10.0.0.2", EncrAlg::AesGcm16, 20, None),
        tunnel(
            esp(
                0x1002,
                "2001:db8::1",
                "2001:db8::2",
                EncrAlg::AesCbc,
                16,
                Some((AuthAlg::HmacSha256, 32)),
            ),
            "fd00:1::1",
            "fd00:2::1",
        ),
        ah(0x2001, "10.0.1.1", "10.0.1.2", AuthAlg::HmacSha256, 32),
        esp(
            0x1003,
            "10.0.2.1",
            "10.0.2.2",
            EncrAlg::ChaCha20Poly1305,
            36,
            None,
        ),
        ah(0x2002, "10.0.2.1", "10.0.2.2", AuthAlg::HmacSha1, 20),
        esp(0x1004, "10.0.3.1", "10.0.3.2", EncrAlg::AesGcm16, 36, None),
        tunnel(
            esp(
                0x1005,
                "2001:db8::1",
                "2001:db8::3",
                EncrAlg::AesGcm16,
                20,
                None,
            ),
            "192.168.1.1",
            "192.168.2.1",
        ),
        ah(
            0x2003,
            "2001:db8::7",
            "2001:db8::8",
            AuthAlg::HmacSha512,
            64,
        ),
    ];
    sas[1].esn = true;
    sas[1].replay_value = 0xffff_fffe;
    sas[5].natt = natt();
    let flows = [
        ("10.0.0.1", "10.0.0.2"),
        ("fd00:1::1", "fd00:2::1"),
        ("10.0.1.1", "10.0.1.2"),
        ("10.0.2.1", "10.0.2.2"),
        ("10.0.3.1", "10.0.3.2"),
        ("192.168.1.1", "192.168.2.1"),
        ("2001:db8::7", "2001:db8::8"),
    ];
    let mut pkts = Vec::new();
    for round in 0..4usize {
        for (i, (s, d)) in flows.iter().enumerate() {
            pkts.push(udp_packet(
                ip(s),
                ip(d),
                1000 + i as u16,
                53 + round as u16,
                round * 300 + i * 7,
            ));
        }
    }
    (sas, pkts)
}

fn framed(pkts: &[Vec<u8>], eth: bool) -> Vec<Rec> {
    let mut recs = raw_recs(pkts);
    if eth {
        for r in &mut recs {
            let mut f = eth_header(r.data[0] >> 4 == 6);
            f.extend_from_slice(&r.data);
            r.data = f;
        }
    }
    recs
}

#[test]
fn encrypt_then_decrypt_gives_the_capture_back() {
    let (sas, pkts) = scenario();
    let dir = TempDir::new("rt");
    for ng in [false, true] {
        for eth in [false, true] {
            let lt = if eth { 1 } else { 101 };
            let recs = framed(&pkts, eth);
            let plain = dir.path("plain");
            let enc = dir.path("enc");
            let dec = dir.path("dec");
            write_capture(&plain, ng, lt, &recs);
            let r = run_tool(&dir, "encrypt", &sas, &plain, Some(&enc), &[]);
            assert_eq!(r.code, 0, "encrypt ng={ng} eth={eth}: {r:?}");
            let (out, olt) = read_capture(&enc);
            assert_eq!(olt, lt);
            assert_eq!(out.len(), recs.len());
            let l2 = if eth { 14 } else { 0 };
            for (i, (o, p)) in out.iter().zip(&recs).enumerate() {
                assert_eq!(o.ts, p.ts, "timestamp of #{}", i + 1);
                let h = sec_hdrs(&o.data[l2..]);
                assert!(!h.is_empty(), "#{} not protected: {}", i + 1, r.line(i + 1));
                if eth {
                    let v6 = o.data[l2] >> 4 == 6;
                    assert_eq!(
                        &o.data[12..14],
                        if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] }
                    );
                }
                assert!(r.line(i + 1).ends_with(" ok"), "{}", r.line(i + 1));
            }
            // The AH+ESP flow is a bundle: AH outside ESP.
            let bundle = r.line(4);
            assert!(
                bundle.starts_with("#4 ah spi=0x2002 seq=1 esp spi=0x1003 seq=1 ok"),
                "{bundle}"
            );
            assert!(
                r.line(5).starts_with("#5 esp-udp spi=0x1004 seq=1 ok"),
                "{}",
                r.line(5)
            );
            // ESN: the counter crosses 2^32 (replay_value 0xfffffffe; 4 packets).
            assert!(
                r.line(23).contains("spi=0x1002 seq=4294967298 ok"),
                "{}",
                r.line(23)
            );
            assert!(r.stdout.contains("result: OK"));
            let r = run_tool(&dir, "decrypt", &sas, &enc, Some(&dec), &[]);
            assert_eq!(r.code, 0, "decrypt ng={ng} eth={eth}: {r:?}");
            let (back, blt) = read_capture(&dec);
            assert_eq!(blt, lt);
            assert_eq!(back.len(), recs.len());
            for (i, (b, p)) in back.iter().zip(&recs).enumerate() {
                assert_eq!(
                    hex::encode(&b.data),
                    hex::encode(&p.data),
                    "#{} ng={ng} eth={eth}",
                    i + 1
                );
                assert_eq!(b.ts, p.ts);
            }
            assert!(
                r.line(23).contains("spi=0x1002 seq=4294967298 ok"),
                "{}",
                r.line(23)
            );
            let r = run_tool(&dir, "verify", &sas, &enc, None, &[]);
            assert_eq!(r.code, 0, "{r:?}");
            assert!(
                r.line(1).ends_with("replay=new icv=good ok"),
                "{}",
                r.line(1)
            );
        }
    }
}

#[test]
fn verify_reports_replays_and_bad_icvs() {
    let dir = TempDir::new("verify");
    for proto in [Proto::Esp, Proto::Ah] {
        let sas = vec![match proto {
            Proto::Esp => esp(0x3001, "10.9.0.1", "10.9.0.2", EncrAlg::AesGcm16, 20, None),
            Proto::Ah => ah(0x3002, "10.9.0.1", "10.9.0.2", AuthAlg::HmacSha256, 32),
        }];
        let pkts: Vec<_> = (0..70)
            .map(|i| udp_packet(ip("10.9.0.1"), ip("10.9.0.2"), 7, 9, 40 + i))
            .collect();
        let plain = dir.path("p");
        let enc = dir.path("e");
        write_capture(&plain, false, 101, &raw_recs(&pkts));
        assert_eq!(
            run_tool(&dir, "encrypt", &sas, &plain, Some(&enc), &[]).code,
            0
        );
        let (e, _) = read_capture(&enc);
        let mut flipped = e[3].data.clone();
        let n = flipped.len();
        flipped[n - 5] ^= 1;
        // #1 seq 1, #2 seq 2, #3 seq 2 again, #4 seq 4 tampered, #5 seq 4 intact,
        // #6 seq 70, #7 seq 3 (now too old), #8 seq 10 (in the window), #9 seq 10 again.
        let seq = |s: usize| e[s - 1].data.clone();
        let order = vec![
            seq(1),
            seq(2),
            seq(2),
            flipped,
            seq(4),
            seq(70),
            seq(3),
            seq(10),
            seq(10),
        ];
        let input = dir.path("v");
        write_capture(&input, true, 101, &raw_recs(&order));
        let r = run_tool(&dir, "verify", &sas, &input, None, &[]);
        assert_eq!(r.code, 1, "{r:?}");
        let p = proto.name();
        let expect = [
            "seq=1 replay=new icv=good ok".to_string(),
            "seq=2 replay=new icv=good ok".to_string(),
            format!("seq=2 replay=replay icv=good drop {p}_early_replay"),
            format!("seq=4 replay=new icv=bad drop {p}_bad_auth"),
            "seq=4 replay=new icv=good ok".to_string(),
            "seq=70 replay=new icv=good ok".to_string(),
            format!("seq=3 replay=too-old icv=good drop {p}_early_replay"),
            "seq=10 replay=in-window icv=good ok".to_string(),
            format!("seq=10 replay=replay icv=good drop {p}_early_replay"),
        ];
        for (i, x) in expect.iter().enumerate() {
            assert!(
                r.line(i + 1).ends_with(x.as_str()),
                "got {:?}, want {x:?}",
                r.line(i + 1)
            );
        }
        assert!(r.stdout.contains("result: FAILED"), "{}", r.stdout);
        // A too-old packet that is also tampered with: both verdicts.
        let mut bad_old = seq(3);
        let n = bad_old.len();
        bad_old[n - 1] ^= 0x80;
        write_capture(&input, false, 101, &raw_recs(&[seq(70), bad_old]));
        let r = run_tool(&dir, "verify", &sas, &input, None, &[]);
        assert!(
            r.line(2)
                .ends_with(&format!("replay=too-old icv=bad drop {p}_early_replay")),
            "{}",
            r.line(2)
        );
        // decrypt reports the same drops and writes only the good packets.
        let dec = dir.path("d");
        write_capture(&input, true, 101, &raw_recs(&order));
        let r = run_tool(&dir, "decrypt", &sas, &input, Some(&dec), &[]);
        assert_eq!(r.code, 1);
        assert!(r.line(4).ends_with(&format!("drop {p}_bad_auth")));
        let (d, _) = read_capture(&dec);
        assert_eq!(d.len(), 5);
        assert_eq!(d[0].data, pkts[0]);
        assert_eq!(d[4].data, pkts[9]);
    }
}

#[test]
fn unmatched_packets_pass_through_and_set_the_exit_status() {
    let dir = TempDir::new("unmatched");
    let sas = vec![esp(
        0x4001,
        "10.1.0.1",
        "10.1.0.2",
        EncrAlg::AesGcm16,
        20,
        None,
    )];
    let a = udp_packet(ip("10.1.0.1"), ip("10.1.0.2"), 1, 2, 10);
    let b = udp_packet(ip("10.1.0.1"), ip("10.1.0.9"), 1, 2, 10);
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    let mut recs = framed(&[a.clone(), b.clone()], true);
    recs.push(Rec {
        ts: (5, 0),
        data: arp.clone(),
    });
    let plain = dir.path("p");
    let enc = dir.path("e");
    write_capture(&plain, false, 1, &recs);
    let r = run_tool(&dir, "encrypt", &sas, &plain, Some(&enc), &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.line(2), "#2 10.1.0.1 -> 10.1.0.9 no SA (passed)");
    assert_eq!(r.line(3), "#3 not IP (passed)");
    let r = run_tool(
        &dir,
        "encrypt",
        &sas,
        &plain,
        Some(&enc),
        &["--pass-unmatched"],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let (e, _) = read_capture(&enc);
    assert_eq!(e[1], recs[1]);
    assert_eq!(e[2], recs[2]);
    // decrypt: the cleartext packet and the ARP frame are copied, and reported.
    let dec = dir.path("d");
    let r = run_tool(&dir, "decrypt", &sas, &enc, Some(&dec), &[]);
    assert_eq!(r.code, 1);
    assert!(r.line(2).ends_with("not ipsec (passed)"), "{}", r.line(2));
    let r = run_tool(
        &dir,
        "decrypt",
        &sas,
        &enc,
        Some(&dec),
        &["--pass-unmatched"],
    );
    assert_eq!(r.code, 0);
    let (d, _) = read_capture(&dec);
    assert_eq!(d, recs);
    // An ESP packet with an unknown SPI is a drop, passed or not.
    let other = vec![esp(
        0x4002,
        "10.1.0.1",
        "10.1.0.2",
        EncrAlg::AesGcm16,
        20,
        None,
    )];
    let r = run_tool(
        &dir,
        "decrypt",
        &other,
        &enc,
        Some(&dec),
        &["--pass-unmatched"],
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.line(1), "#1 esp spi=0x4001 seq=1 drop esp_no_sa");
}

/// Splits an IPv4 packet into fragments carrying at most `chunk` bytes (a multiple of 8).
fn fragment_v4(p: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let payload = &p[20..];
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let mut h = p[..20].to_vec();
        h[2..4].copy_from_slice(&((20 + end - off) as u16).to_be_bytes());
        let mf = if end < payload.len() { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&((mf | (off / 8)) as u16).to_be_bytes());
        h[10] = 0;
        h[11] = 0;
        let c = csum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(&payload[off..end]);
        out.push(h);
        off = end;
    }
    out
}

#[test]
fn fragments_are_reassembled_before_decryption() {
    let dir = TempDir::new("frag");
    let sas = vec![esp(
        0x5001,
        "10.2.0.1",
        "10.2.0.2",
        EncrAlg::AesCbc,
        16,
        Some((AuthAlg::HmacSha1, 20)),
    )];
    // Fragmentable: DF clear.
    let mut big = udp_packet(ip("10.2.0.1"), ip("10.2.0.2"), 5, 6, 3000);
    big[6] = 0;
    big[10..12].copy_from_slice(&[0, 0]);
    let c = csum(&big[..20]);
    big[10..12].copy_from_slice(&c.to_be_bytes());
    let small = udp_packet(ip("10.2.0.1"), ip("10.2.0.2"), 5, 6, 10);
    let plain = dir.path("p");
    let enc = dir.path("e");
    write_capture(
        &plain,
        false,
        101,
        &raw_recs(&[big.clone(), small.clone(), big.clone()]),
    );
    assert_eq!(
        run_tool(&dir, "encrypt", &sas, &plain, Some(&enc), &[]).code,
        0
    );
    let (e, _) = read_capture(&enc);
    let mut f1 = fragment_v4(&e[0].data, 1200);
    assert_eq!(f1.len(), 3);
    let f3 = fragment_v4(&e[2].data, 1480);
    // Fragments out of order, another packet in between, and a datagram left incomplete.
    f1.swap(0, 2);
    let mut seq = f1.clone();
    seq.insert(1, e[1].data.clone());
    seq.push(f3[0].clone());
    let input = dir.path("f");
    write_capture(&input, true, 101, &raw_recs(&seq));
    let dec = dir.path("d");
    let r = run_tool(&dir, "decrypt", &sas, &input, Some(&dec), &[]);
    assert_eq!(r.code, 1, "{r:?}");
    assert_eq!(r.line(1), "#1 fragment held for reassembly");
    assert_eq!(r.line(2), "#2 esp spi=0x5001 seq=2 ok");
    assert_eq!(
        r.line(4),
        "#4 esp spi=0x5001 seq=1 ok (reassembled with #1 #3)"
    );
    assert_eq!(r.line(5), "#5 fragment held for reassembly");
    assert!(
        r.stdout
            .contains("#5 drop spd_expired_frags (datagram incomplete)"),
        "{}",
        r.stdout
    );
    let (d, _) = read_capture(&dec);
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].data, small);
    assert_eq!(hex::encode(&d[1].data), hex::encode(&big));
    // One packet per batch, so the buffer that received the reassembled datagram is reused
    // for a larger packet next (and pcap, whose records are read straight into the buffers).
    let huge = udp_packet(ip("10.2.0.1"), ip("10.2.0.2"), 5, 6, 9000);
    write_capture(&plain, false, 101, &raw_recs(&[big.clone(), huge.clone()]));
    assert_eq!(
        run_tool(&dir, "encrypt", &sas, &plain, Some(&enc), &[]).code,
        0
    );
    let (h, _) = read_capture(&enc);
    let mut seq2: Vec<Vec<u8>> = fragment_v4(&h[0].data, 1200);
    seq2.push(h[1].data.clone());
    write_capture(&input, false, 101, &raw_recs(&seq2));
    let r = run_tool(&dir, "decrypt", &sas, &input, Some(&dec), &["--batch", "1"]);
    assert_eq!(r.code, 0, "{r:?}");
    let (d, _) = read_capture(&dec);
    assert_eq!(d.len(), 2);
    assert_eq!(d[1].data, huge);
}

#[test]
fn quiet_prints_only_the_summary() {
    let dir = TempDir::new("quiet");
    let sas = vec![esp(
        0x6001,
        "10.3.0.1",
        "10.3.0.2",
        EncrAlg::AesGcm16,
        20,
        None,
    )];
    let plain = dir.path("p");
    let enc = dir.path("e");
    let pkts: Vec<_> = (0..5)
        .map(|i| udp_packet(ip("10.3.0.1"), ip("10.3.0.2"), 1, 2, i))
        .collect();
    write_capture(&plain, false, 101, &raw_recs(&pkts));
    let r = run_tool(&dir, "encrypt", &sas, &plain, Some(&enc), &["--quiet"]);
    assert_eq!(r.code, 0);
    assert!(!r.stdout.contains("#1 "), "{}", r.stdout);
    assert!(
        r.stdout
            .contains("ipsecpcap encrypt: 5 packets: 5 ok, 0 dropped, 0 passed unchanged"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("esp spi=0x6001 10.3.0.1 -> 10.3.0.2 transport aes-gcm"),
        "{}",
        r.stdout
    );
}

#[test]
fn bad_input_is_a_clear_error_with_status_2() {
    let dir = TempDir::new("bad");
    let sas = vec![esp(
        0x7001,
        "10.4.0.1",
        "10.4.0.2",
        EncrAlg::AesGcm16,
        20,
        None,
    )];
    let sa_file = dir.path("good.ipseckey");
    write_sa_file(&sa_file, &sas);
    let sa = sa_file.display().to_string();
    let plain = dir.path("p.pcap");
    let pkts = vec![udp_packet(ip("10.4.0.1"), ip("10.4.0.2"), 1, 2, 3)];
    write_capture(&plain, false, 101, &raw_recs(&pkts));
    let p = plain.display().to_string();
    let out = dir.path("o.pcap").display().to_string();

    let missing = dir.path("missing.pcap").display().to_string();
    let r = run_bin(&["decrypt", "--sa", &sa, &missing, &out]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("cannot open") && r.stderr.contains("missing.pcap"),
        "{}",
        r.stderr
    );

    let junk = dir.path("junk.pcap");
    std::fs::write(&junk, b"this is not a capture file at all").unwrap();
    let r = run_bin(&["verify", "--sa", &sa, &junk.display().to_string()]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("not a pcap or pcapng file"),
        "{}",
        r.stderr
    );

    // A capture cut in the middle of a record.
    let bytes = std::fs::read(&plain).unwrap();
    let cut = dir.path("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 3]).unwrap();
    let r = run_bin(&["encrypt", "--sa", &sa, &cut.display().to_string(), &out]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("record 1 is truncated"), "{}", r.stderr);

    // An 802.11 capture (link type 105).
    let wifi = dir.path("wifi.pcap");
    write_capture(&wifi, true, 105, &raw_recs(&pkts));
    let r = run_bin(&["encrypt", "--sa", &sa, &wifi.display().to_string(), &out]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("link type 105"), "{}", r.stderr);

    // SA files: a syntax error with file:line:column, a command other than add, no SAs.
    let bad = dir.path("bad.ipseckey");
    std::fs::write(
        &bad,
        "# keys\nadd esp spi 0x1000 src 10.0.0.1 dst 10.0.0.2 encr_alg aes-gcm encrkey zz\n",
    )
    .unwrap();
    let r = run_bin(&["encrypt", "--sa", &bad.display().to_string(), &p, &out]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.ipseckey:2:"), "{}", r.stderr);
    std::fs::write(&bad, "\nflush\n# then\nadd esp spi 0x1000 dst 10.0.0.2 encr_alg aes-gcm encrkey 000102030405060708090a0b0c0d0e0f10111213\n").unwrap();
    let r = run_bin(&["encrypt", "--sa", &bad.display().to_string(), &p, &out]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("bad.ipseckey:2: `flush` command"),
        "{}",
        r.stderr
    );
    let r = run_bin(&["encrypt", &p, &out]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("no SAs"), "{}", r.stderr);
    // Usage errors are status 2 as well.
    assert_eq!(run_bin(&["frobnicate"]).code, 2);
    assert_eq!(run_bin(&["encrypt", "--sa", &sa, &p]).code, 2);
}

#[test]
fn wireshark_esp_sa_tables_are_an_sa_source() {
    let dir = TempDir::new("espsa");
    let sas = [
        esp(
            0x8001,
            "10.5.0.1",
            "10.5.0.2",
            EncrAlg::AesCbc,
            16,
            Some((AuthAlg::HmacSha256, 32)),
        ),
        esp(
            0x8002,
            "2001:db8:5::1",
            "2001:db8:5::2",
            EncrAlg::AesGcm16,
            20,
            None,
        ),
    ];
    let table: String = sas
        .iter()
        .map(|c| ipsec_config::esp_sa::format_line(c).unwrap() + "\n")
        .collect();
    let esp_sa = dir.path("esp_sa");
    std::fs::write(&esp_sa, table).unwrap();
    let t = esp_sa.display().to_string();
    let pkts = vec![
        udp_packet(ip("10.5.0.1"), ip("10.5.0.2"), 1, 2, 100),
        udp_packet(ip("2001:db8:5::1"), ip("2001:db8:5::2"), 1, 2, 100),
    ];
    let plain = dir.path("p.pcap");
    let enc = dir.path("e.pcap");
    let dec = dir.path("d.pcap");
    write_capture(&plain, false, 101, &raw_recs(&pkts));
    let (p, e, d) = (
        plain.display().to_string(),
        enc.display().to_string(),
        dec.display().to_string(),
    );
    let r = run_bin(&["encrypt", "--esp-sa", &t, &p, &e]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains("#2 esp spi=0x8002 seq=1 ok"),
        "{}",
        r.stdout
    );
    let r = run_bin(&["decrypt", "--esp-sa", &t, &e, &d]);
    assert_eq!(r.code, 0, "{r:?}");
    let (back, _) = read_capture(&dec);
    assert_eq!(
        back.iter().map(|r| r.data.clone()).collect::<Vec<_>>(),
        pkts
    );
    // Wireshark's table has no replay window: verify says so.
    let r = run_bin(&["verify", "--esp-sa", &t, &e]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout
            .contains("#1 esp spi=0x8001 seq=1 replay=off icv=good ok"),
        "{}",
        r.stdout
    );
    std::fs::write(
        &esp_sa,
        "\"IPv4\",\"10.5.0.1\",\"10.5.0.2\",\"*\",\"NULL\",\"\",\"NULL\",\"\"\n",
    )
    .unwrap();
    let r = run_bin(&["verify", "--esp-sa", &t, &e]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("esp_sa:1:"), "{}", r.stderr);
}

/// The README's example, with the files in examples/.
#[test]
fn readme_example_round_trips() {
    let ex = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let sas = format!("{ex}/sas.ipseckey");
    let plain = format!("{ex}/plain.pcap");
    let dir = TempDir::new("readme");
    let enc = dir.path("enc.pcap").display().to_string();
    let dec = dir.path("dec.pcap").display().to_string();
    let r = run_bin(&["encrypt", "--sa", &sas, &plain, &enc]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = run_bin(&["decrypt", "--sa", &sas, &enc, &dec]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read(&plain).unwrap(), std::fs::read(&dec).unwrap());
    let r = run_bin(&["verify", "--sa", &sas, &enc]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r
        .stdout
        .contains("#9 esp-udp spi=0x2000 seq=2 replay=new icv=good ok"));
    assert!(r
        .stdout
        .contains("ipsecpcap verify: 9 packets: 9 ok, 0 dropped, 0 passed unchanged"));
    // The esp_sa table covers the IPv4 SAs.
    let r = run_bin(&["verify", "--esp-sa", &format!("{ex}/esp_sa"), &enc]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("#7 esp spi=0x1000 seq=4 replay=off icv=good ok"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("#8 esp-udp spi=0x2000 seq=1 icv=unchecked drop esp_no_sa"),
        "{}",
        r.stdout
    );
}
