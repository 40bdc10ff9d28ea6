//! Reassembly of fragmented ESP before processing, RFC 6040 ECN and DSCP/DF handling in tunnel
//! mode, and the RFC 3948 transport-mode checksum fix-up behind a NAT.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ipsec_core::frag::{Reassembler, ReassemblyLimits};
use ipsec_core::{DropReason, Engine, Mode, PacketBuf, Sadb};
use ipsec_crypto::EncrAlg;

/// Splits an IPv4 packet (20-byte header) into fragments of at most `chunk` payload bytes.
fn frag_v4(p: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let hdr = &p[..20];
    let payload = &p[20..];
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let mut f = hdr.to_vec();
        let more = end < payload.len();
        let df = u16::from_be_bytes([p[6], p[7]]) & 0x4000;
        let ff = ((off / 8) as u16) | if more { 0x2000 } else { 0 } | df;
        f[6..8].copy_from_slice(&ff.to_be_bytes());
        f[2..4].copy_from_slice(&((20 + end - off) as u16).to_be_bytes());
        f[10] = 0;
        f[11] = 0;
        let c = csum(&f);
        f[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&payload[off..end]);
        out.push(f);
        off = end;
    }
    out
}

/// Splits an IPv6 packet (no extension headers) with fragment headers.
fn frag_v6(p: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let nh = p[6];
    let payload = &p[40..];
    let mut out = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let mut f = p[..40].to_vec();
        f[6] = 44;
        let more = end < payload.len();
        let ol = ((off as u16) & !7) | u16::from(more);
        f.extend_from_slice(&[nh, 0]);
        f.extend_from_slice(&ol.to_be_bytes());
        f.extend_from_slice(&0xdead_beefu32.to_be_bytes());
        f.extend_from_slice(&payload[off..end]);
        let pl = (f.len() - 40) as u16;
        f[4..6].copy_from_slice(&pl.to_be_bytes());
        out.push(f);
        off = end;
    }
    out
}

#[test]
fn fragmented_esp_is_reassembled_then_decrypted() {
    for (s, d) in [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")] {
        let cfg = esp_cfg(
            EncrAlg::AesGcm16,
            20,
            None,
            0,
            v4(s),
            v4(d),
            Mode::Transport,
            false,
            false,
        );
        let mut tx = Sadb::new();
        let mut rx = Sadb::new();
        let a = tx.add(cfg.clone(), 0).unwrap();
        rx.add(cfg, 0).unwrap();
        let pkt = udp_packet(v4(s), v4(d), 1, 2, 3000);
        let mut eng = Engine::new();
        let mut b = PacketBuf::from_packet(&pkt);
        eng.outbound(&mut tx, &[a], &mut b, 0).unwrap();
        let wire = b.data().to_vec();
        let mut frags = if s.contains(':') {
            frag_v6(&wire, 1232)
        } else {
            frag_v4(&wire, 1200)
        };
        assert!(frags.len() >= 3);
        // A fragment straight into the engine is refused (RFC 4303 §3.4.1).
        let mut lone = PacketBuf::from_packet(&frags[0]);
        assert_eq!(
            eng.inbound(&mut rx, &mut lone, 0),
            Err(DropReason::EvilFrag)
        );
        // Out of order through the reassembler.
        frags.reverse();
        let mut r = Reassembler::new(ReassemblyLimits::default());
        let n = frags.len();
        for (i, f) in frags.iter().enumerate() {
            let mut fb = PacketBuf::from_packet(f);
            let done = r.push(&mut fb, 1).unwrap();
            assert_eq!(done, i == n - 1);
            if done {
                assert!(fb.data() == &wire[..], "reassembled datagram differs");
                eng.inbound(&mut rx, &mut fb, 1).unwrap();
                assert_eq!(fb.data(), &pkt[..]);
            }
        }
        assert_eq!(r.pending(), 0);
    }
}

#[test]
fn reassembly_limits_overlap_and_timeout() {
    let pkt = udp_packet(v4("10.0.0.1"), v4("10.0.0.2"), 1, 2, 2000);
    let frags = frag_v4(&pkt, 800);
    // Overlap: the same first fragment twice.
    let mut r = Reassembler::new(ReassemblyLimits::default());
    assert_eq!(r.push(&mut PacketBuf::from_packet(&frags[0]), 0), Ok(false));
    assert_eq!(
        r.push(&mut PacketBuf::from_packet(&frags[0]), 0),
        Err(DropReason::OverlapFrag)
    );
    assert_eq!(r.pending(), 0);
    // Timeout: an incomplete datagram is dropped after the limit.
    assert_eq!(
        r.push(&mut PacketBuf::from_packet(&frags[0]), 10),
        Ok(false)
    );
    assert_eq!(r.pending(), 1);
    assert_eq!(r.expire(10 + ReassemblyLimits::default().timeout), 1);
    assert_eq!(r.pending(), 0);
    // Datagram count bound.
    let mut r = Reassembler::new(ReassemblyLimits {
        max_datagrams: 2,
        max_bytes: 1 << 20,
        timeout: 30,
    });
    for id in 0..2u16 {
        let mut f = frags[0].clone();
        f[4..6].copy_from_slice(&id.to_be_bytes());
        assert_eq!(r.push(&mut PacketBuf::from_packet(&f), 0), Ok(false));
    }
    let mut f = frags[0].clone();
    f[4..6].copy_from_slice(&9u16.to_be_bytes());
    assert_eq!(
        r.push(&mut PacketBuf::from_packet(&f), 0),
        Err(DropReason::MaxFrags)
    );
    // Byte bound.
    let mut r = Reassembler::new(ReassemblyLimits {
        max_datagrams: 64,
        max_bytes: 1000,
        timeout: 30,
    });
    assert_eq!(r.push(&mut PacketBuf::from_packet(&frags[0]), 0), Ok(false));
    assert_eq!(
        r.push(&mut PacketBuf::from_packet(&frags[1]), 0),
        Err(DropReason::MaxFrags)
    );
    // A non-fragment passes untouched.
    let mut whole = PacketBuf::from_packet(&pkt);
    assert_eq!(r.push(&mut whole, 0), Ok(true));
    assert_eq!(whole.data(), &pkt[..]);
}

fn set_tos_v4(p: &mut [u8], tos: u8) {
    p[1] = tos;
    p[10] = 0;
    p[11] = 0;
    let c = csum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
}

#[test]
fn tunnel_dscp_ecn_and_df() {
    let cfg = esp_cfg(
        EncrAlg::AesGcm16,
        20,
        None,
        0,
        v4("10.0.0.1"),
        v4("10.0.0.2"),
        Mode::Tunnel,
        false,
        false,
    );
    // (inner ECN, outer ECN set by the network, expected inner ECN after decap or None = drop)
    let table: [(u8, u8, Option<u8>); 8] = [
        (0, 0, Some(0)),
        (0, 3, None),
        (2, 3, Some(3)),
        (1, 3, Some(3)),
        (2, 1, Some(1)),
        (1, 2, Some(1)),
        (2, 0, Some(2)),
        (3, 3, Some(3)),
    ];
    for (inner_ecn, outer_ecn, want) in table {
        let mut tx = Sadb::new();
        let mut rx = Sadb::new();
        let a = tx.add(cfg.clone(), 0).unwrap();
        rx.add(cfg.clone(), 0).unwrap();
        let mut pkt = udp_packet(v4("192.168.1.1"), v4("192.168.2.1"), 1, 2, 50);
        set_tos_v4(&mut pkt, (46 << 2) | inner_ecn);
        let mut eng = Engine::new();
        let mut b = PacketBuf::from_packet(&pkt);
        eng.outbound(&mut tx, &[a], &mut b, 0).unwrap();
        let mut wire = b.data().to_vec();
        // Encapsulation: DSCP copied, ECN copied (RFC 6040 normal mode), DF copied from inner.
        assert_eq!(wire[1] >> 2, 46);
        assert_eq!(wire[1] & 3, inner_ecn);
        assert_eq!(wire[6] & 0x40, pkt[6] & 0x40);
        // The network marks the outer header.
        let tos = (wire[1] & !3) | outer_ecn;
        set_tos_v4(&mut wire, tos);
        let mut b = PacketBuf::from_packet(&wire);
        let r = eng.inbound(&mut rx, &mut b, 0);
        match want {
            None => assert_eq!(
                r,
                Err(DropReason::EcnDrop),
                "inner {inner_ecn} outer {outer_ecn}"
            ),
            Some(e) => {
                r.unwrap();
                let out = b.data();
                assert_eq!(out[1] & 3, e, "inner {inner_ecn} outer {outer_ecn}");
                assert_eq!(out[1] >> 2, 46);
                assert_eq!(csum(&out[..20]), 0, "inner header checksum");
            }
        }
    }
}

#[test]
fn natt_transport_checksum_fixup_behind_nat() {
    let mut cfg = esp_cfg(
        EncrAlg::AesGcm16,
        20,
        None,
        0,
        v4("10.0.0.1"),
        v4("203.0.113.9"),
        Mode::Transport,
        false,
        true,
    );
    cfg.src = None; // the receiver sees the NAT's public address as source
    let mut tx_cfg = cfg.clone();
    tx_cfg.src = Some(v4("10.0.0.1"));
    let mut tx = Sadb::new();
    let mut rx = Sadb::new();
    let a = tx.add(tx_cfg, 0).unwrap();
    rx.add(cfg, 0).unwrap();
    let pkt = udp_packet(v4("10.0.0.1"), v4("203.0.113.9"), 5000, 53, 40);
    let mut eng = Engine::new();
    let mut b = PacketBuf::from_packet(&pkt);
    eng.outbound(&mut tx, &[a], &mut b, 0).unwrap();
    let mut wire = b.data().to_vec();
    assert_eq!(wire[9], 17);
    assert_eq!(&wire[20..22], &4500u16.to_be_bytes());
    assert_eq!(
        &wire[26..28],
        &[0, 0],
        "IPv4 NAT-T sends a zero UDP checksum"
    );
    // The NAT rewrites the source address and port.
    wire[12..16].copy_from_slice(&[198, 51, 100, 7]);
    wire[20..22].copy_from_slice(&31337u16.to_be_bytes());
    set_tos_v4(&mut wire, 0);
    let mut b = PacketBuf::from_packet(&wire);
    let ok = eng.inbound(&mut rx, &mut b, 0).unwrap();
    assert!(ok.natt);
    let out = b.data();
    assert_eq!(&out[12..16], &[198, 51, 100, 7]);
    // Ports, length and payload as sent; only the checksum differs.
    assert_eq!(&out[20..26], &pkt[20..26]);
    assert_eq!(&out[28..], &pkt[28..]);
    // The inner UDP checksum is valid for the addresses the receiver sees.
    let mut ps = Vec::new();
    ps.extend_from_slice(&out[12..20]);
    ps.extend_from_slice(&[0, 17]);
    ps.extend_from_slice(&((out.len() - 20) as u16).to_be_bytes());
    ps.extend_from_slice(&out[20..]);
    assert_eq!(csum(&ps), 0, "inner UDP checksum not fixed up");
}

#[test]
fn packet_lifetime_and_key_hygiene() {
    let mut cfg = esp_cfg(
        EncrAlg::AesGcm16,
        20,
        None,
        0,
        v4("10.0.0.1"),
        v4("10.0.0.2"),
        Mode::Transport,
        false,
        false,
    );
    cfg.hard.packets = 2;
    let dbg = format!("{cfg:?}");
    assert!(dbg.contains("redacted"), "{dbg}");
    let key_hex: String = cfg
        .encr_key
        .expose()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key_dec = format!("{:?}", cfg.encr_key.expose());
    let mut tx = Sadb::new();
    let a = tx.add(cfg, 0).unwrap();
    let sa_dbg = format!("{:?} {:?}", tx.get(a).unwrap(), tx);
    for d in [&dbg, &sa_dbg] {
        assert!(
            !d.contains(&key_hex) && !d.contains(&key_dec[1..key_dec.len() - 1]),
            "key material in Debug output"
        );
    }
    let pkt = udp_packet(v4("10.0.0.1"), v4("10.0.0.2"), 1, 2, 10);
    let mut eng = Engine::new();
    for _ in 0..2 {
        eng.outbound(&mut tx, &[a], &mut PacketBuf::from_packet(&pkt), 0)
            .unwrap();
    }
    assert_eq!(
        eng.outbound(&mut tx, &[a], &mut PacketBuf::from_packet(&pkt), 0),
        Err(DropReason::EspBytesExpire)
    );
}
