//! Engine round trips over the whole algorithm matrix, and the malformed-input and replay rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ipsec_core::{DropReason, Engine, Mode, PacketBuf, Proto, SaConfig, Sadb};
use ipsec_crypto::{AuthAlg, EncrAlg};

fn pair(cfg: &SaConfig) -> (Sadb, Sadb, ipsec_core::SaId, ipsec_core::SaId) {
    let mut tx = Sadb::new();
    let mut rx = Sadb::new();
    let a = tx.add(cfg.clone(), 0).unwrap();
    let b = rx.add(cfg.clone(), 0).unwrap();
    (tx, rx, a, b)
}

fn roundtrip(cfg: &SaConfig, pkt: &[u8]) {
    let (mut tx, mut rx, a, b) = pair(cfg);
    let mut eng = Engine::new();
    let mut buf = PacketBuf::from_packet(pkt);
    eng.outbound(&mut tx, &[a], &mut buf, 1)
        .unwrap_or_else(|e| panic!("{cfg:?}: outbound {e}"));
    let wire = buf.data().to_vec();
    assert_ne!(wire, pkt);
    let ok = eng
        .inbound(&mut rx, &mut buf, 1)
        .unwrap_or_else(|e| panic!("{:?}/{:?}: inbound {e}", cfg.encr_alg, cfg.auth_alg));
    assert_eq!(ok.sas[0], Some(b));
    assert_eq!(
        buf.data(),
        pkt,
        "{:?}/{:?} mode {:?}",
        cfg.encr_alg,
        cfg.auth_alg,
        cfg.mode
    );
    // The same packet again is a replay.
    let mut again = PacketBuf::from_packet(&wire);
    let r = eng.inbound(&mut rx, &mut again, 1);
    let want = if cfg.proto == Proto::Esp {
        DropReason::EspEarlyReplay
    } else {
        DropReason::AhEarlyReplay
    };
    assert_eq!(r, Err(want));
    let sa = rx.get(b).unwrap();
    assert_eq!(sa.stats.packets, 1);
    assert_eq!(sa.stats.drops.get(want), 1);
}

#[test]
fn esp_matrix_roundtrip() {
    let pairs = [
        ("10.0.0.1", "10.0.0.2", "192.168.1.1", "192.168.2.1"),
        ("2001:db8::1", "2001:db8::2", "fd00:1::1", "fd00:2::1"),
    ];
    for (encr, ek, auth, ak) in esp_matrix() {
        for (s, d, is, id) in pairs {
            for mode in [Mode::Transport, Mode::Tunnel] {
                for esn in [false, true] {
                    for natt in [false, true] {
                        for n in [0usize, 1, 13, 100, 1400] {
                            let cfg = esp_cfg(encr, ek, auth, ak, v4(s), v4(d), mode, esn, natt);
                            let pkt = if mode == Mode::Tunnel {
                                udp_packet(v4(is), v4(id), 1234, 80, n)
                            } else {
                                udp_packet(v4(s), v4(d), 1234, 80, n)
                            };
                            roundtrip(&cfg, &pkt);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn ah_matrix_roundtrip() {
    for (auth, ak) in ah_matrix() {
        for (s, d) in [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")] {
            for mode in [Mode::Transport, Mode::Tunnel] {
                for esn in [false, true] {
                    let cfg = ah_cfg(auth, ak, v4(s), v4(d), mode, esn);
                    let pkt = udp_packet(v4(s), v4(d), 5000, 53, 77);
                    roundtrip(&cfg, &pkt);
                }
            }
        }
    }
}

#[test]
fn ah_plus_esp_bundle() {
    for (s, d) in [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")] {
        let esp = esp_cfg(
            EncrAlg::AesCbc,
            16,
            Some(AuthAlg::HmacSha256),
            32,
            v4(s),
            v4(d),
            Mode::Transport,
            false,
            false,
        );
        let ah = ah_cfg(
            AuthAlg::HmacSha256,
            32,
            v4(s),
            v4(d),
            Mode::Transport,
            false,
        );
        let mut tx = Sadb::new();
        let mut rx = Sadb::new();
        let te = tx.add(esp.clone(), 0).unwrap();
        let ta = tx.add(ah.clone(), 0).unwrap();
        let re = rx.add(esp, 0).unwrap();
        let ra = rx.add(ah, 0).unwrap();
        let pkt = udp_packet(v4(s), v4(d), 1, 2, 300);
        let mut eng = Engine::new();
        let mut buf = PacketBuf::from_packet(&pkt);
        eng.outbound(&mut tx, &[te, ta], &mut buf, 0).unwrap();
        // AH is outermost.
        let proto = if s.contains(':') {
            buf.data()[6]
        } else {
            buf.data()[9]
        };
        assert_eq!(proto, 51);
        let ok = eng.inbound(&mut rx, &mut buf, 0).unwrap();
        assert_eq!(ok.sas, [Some(ra), Some(re)]);
        assert_eq!(buf.data(), &pkt[..]);
    }
}

fn esp_setup() -> (Sadb, Sadb, ipsec_core::SaId, ipsec_core::SaId, Vec<u8>) {
    let cfg = esp_cfg(
        EncrAlg::AesCbc,
        16,
        Some(AuthAlg::HmacSha256),
        32,
        v4("10.1.1.1"),
        v4("10.1.1.2"),
        Mode::Transport,
        false,
        false,
    );
    let (tx, rx, a, b) = pair(&cfg);
    (
        tx,
        rx,
        a,
        b,
        udp_packet(v4("10.1.1.1"), v4("10.1.1.2"), 7, 9, 64),
    )
}

#[test]
fn bad_icv_changes_nothing_but_its_counter() {
    let (mut tx, mut rx, a, b, pkt) = esp_setup();
    let mut eng = Engine::new();
    let mut buf = PacketBuf::from_packet(&pkt);
    eng.outbound(&mut tx, &[a], &mut buf, 0).unwrap();
    let good = buf.data().to_vec();
    for i in 20..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        let mut bb = PacketBuf::from_packet(&bad);
        let r = eng.inbound(&mut rx, &mut bb, 0);
        assert!(r.is_err(), "flip at {i} accepted");
    }
    let sa = rx.get(b).unwrap();
    assert_eq!(sa.stats.packets, 0);
    assert_eq!(sa.stats.bytes, 0);
    assert_eq!(sa.replay().top(), 0);
    assert!(sa.stats.drops.get(DropReason::EspBadAuth) >= 1);
    // The genuine packet still gets through.
    let mut ok = PacketBuf::from_packet(&good);
    eng.inbound(&mut rx, &mut ok, 0).unwrap();
    assert_eq!(ok.data(), &pkt[..]);
}

#[test]
fn truncation_at_every_offset_never_panics() {
    for (encr, ek, auth, ak) in esp_matrix() {
        let cfg = esp_cfg(
            encr,
            ek,
            auth,
            ak,
            v4("10.1.1.1"),
            v4("10.1.1.2"),
            Mode::Transport,
            false,
            false,
        );
        let (mut tx, mut rx, a, _) = pair(&cfg);
        let mut eng = Engine::new();
        let pkt = udp_packet(v4("10.1.1.1"), v4("10.1.1.2"), 7, 9, 40);
        let mut buf = PacketBuf::from_packet(&pkt);
        eng.outbound(&mut tx, &[a], &mut buf, 0).unwrap();
        let wire = buf.data().to_vec();
        for cut in 0..wire.len() {
            // Truncate and fix the IP length so the packet is self-consistent but short.
            let mut t = wire[..cut].to_vec();
            if t.len() >= 20 {
                let l = t.len() as u16;
                t[2..4].copy_from_slice(&l.to_be_bytes());
            }
            let mut b = PacketBuf::from_packet(&t);
            assert!(
                eng.inbound(&mut rx, &mut b, 0).is_err(),
                "{encr:?} cut {cut}"
            );
        }
    }
}

#[test]
fn unknown_spi_is_no_sa() {
    let (mut tx, _rx, a, _, pkt) = esp_setup();
    let mut eng = Engine::new();
    let mut buf = PacketBuf::from_packet(&pkt);
    eng.outbound(&mut tx, &[a], &mut buf, 0).unwrap();
    let mut empty = Sadb::new();
    assert_eq!(
        eng.inbound(&mut empty, &mut buf, 0),
        Err(DropReason::EspNoSa)
    );
    assert_eq!(empty.global_drops.get(DropReason::EspNoSa), 1);
}

#[test]
fn sequence_exhaustion_never_wraps() {
    let (mut tx, _rx, a, _, pkt) = esp_setup();
    tx.get_mut(a).unwrap().set_seq_out(u64::from(u32::MAX) - 1);
    let mut eng = Engine::new();
    let mut buf = PacketBuf::from_packet(&pkt);
    eng.outbound(&mut tx, &[a], &mut buf, 0).unwrap();
    assert_eq!(&buf.data()[24..28], &u32::MAX.to_be_bytes());
    let mut buf = PacketBuf::from_packet(&pkt);
    assert_eq!(
        eng.outbound(&mut tx, &[a], &mut buf, 0),
        Err(DropReason::EspSeqExhausted)
    );
    let ev = tx.poll_event().unwrap();
    assert_eq!(ev.kind, ipsec_core::SaEventKind::SeqExhausted);
    assert_eq!(tx.get(a).unwrap().state(), ipsec_core::SaState::Dead);
}

#[test]
fn dummy_packet_dropped_silently() {
    // Build an ESP packet whose next header is 59 by encrypting an IP packet whose protocol is 59.
    let (mut tx, mut rx, a, b, _) = esp_setup();
    let pkt = ip_packet(v4("10.1.1.1"), v4("10.1.1.2"), 59, &[0xAA; 16]);
    let mut eng = Engine::new();
    let mut buf = PacketBuf::from_packet(&pkt);
    eng.outbound(&mut tx, &[a], &mut buf, 0).unwrap();
    assert_eq!(eng.inbound(&mut rx, &mut buf, 0), Err(DropReason::EspDummy));
    assert_eq!(rx.get(b).unwrap().stats.drops.get(DropReason::EspDummy), 1);
}

#[test]
fn natt_keepalive_and_marker() {
    let mut rx = Sadb::new();
    let mut eng = Engine::new();
    let mut ka = common::ip_packet(
        v4("10.0.0.1"),
        v4("10.0.0.2"),
        17,
        &[0x11, 0x94, 0x11, 0x94, 0, 9, 0, 0, 0xff],
    );
    let mut b = PacketBuf::from_packet(&ka);
    assert_eq!(
        eng.inbound(&mut rx, &mut b, 0),
        Err(DropReason::EspNatTKeepalive)
    );
    ka = common::ip_packet(
        v4("10.0.0.1"),
        v4("10.0.0.2"),
        17,
        &[0x11, 0x94, 0x11, 0x94, 0, 16, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4],
    );
    let mut b = PacketBuf::from_packet(&ka);
    assert_eq!(eng.inbound(&mut rx, &mut b, 0), Err(DropReason::EspNatTIke));
}

#[test]
fn tunnel_inner_selector_mismatch() {
    let mut cfg = esp_cfg(
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
    cfg.inner.src = Some(ipsec_core::Prefix {
        addr: v4("192.168.1.0"),
        len: 24,
    });
    let (mut tx, mut rx, a, _) = pair(&cfg);
    let mut eng = Engine::new();
    let good = udp_packet(v4("192.168.1.5"), v4("192.168.2.5"), 1, 2, 10);
    let bad = udp_packet(v4("192.168.9.5"), v4("192.168.2.5"), 1, 2, 10);
    let mut b = PacketBuf::from_packet(&good);
    eng.outbound(&mut tx, &[a], &mut b, 0).unwrap();
    assert!(eng.inbound(&mut rx, &mut b, 0).unwrap().tunnel);
    let mut b = PacketBuf::from_packet(&bad);
    eng.outbound(&mut tx, &[a], &mut b, 0).unwrap();
    assert_eq!(
        eng.inbound(&mut rx, &mut b, 0),
        Err(DropReason::InnerMismatch)
    );
}

#[test]
fn lifetimes_soft_hard_bytes() {
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
    cfg.soft.bytes = 150;
    cfg.hard.bytes = 250;
    cfg.hard.addtime = 100;
    let mut tx = Sadb::new();
    let a = tx.add(cfg, 0).unwrap();
    let mut eng = Engine::new();
    let pkt = udp_packet(v4("10.0.0.1"), v4("10.0.0.2"), 1, 2, 72); // 80 bytes of payload
    for _ in 0..2 {
        let mut b = PacketBuf::from_packet(&pkt);
        eng.outbound(&mut tx, &[a], &mut b, 1).unwrap();
    }
    tx.age(2);
    let ev = tx.poll_event().unwrap();
    assert_eq!(
        ev.kind,
        ipsec_core::SaEventKind::Expired(ipsec_core::Expiry::Soft)
    );
    assert_eq!(tx.get(a).unwrap().state(), ipsec_core::SaState::Dying);
    let mut b = PacketBuf::from_packet(&pkt);
    eng.outbound(&mut tx, &[a], &mut b, 3).unwrap();
    let mut b = PacketBuf::from_packet(&pkt);
    assert_eq!(
        eng.outbound(&mut tx, &[a], &mut b, 3),
        Err(DropReason::EspBytesExpire)
    );
    tx.age(100);
    let ev = tx.poll_event().unwrap();
    assert_eq!(
        ev.kind,
        ipsec_core::SaEventKind::Expired(ipsec_core::Expiry::Hard)
    );
    assert!(ev.deleted);
    assert!(tx.get(a).is_none());
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

        /// Round trip for every algorithm and mode over payload sizes 0 to 9000.
        #[test]
        fn roundtrip_any_size(alg in 0usize..24, n in 0usize..9000, tunnel in any::<bool>(), v6 in any::<bool>(), esn in any::<bool>(), natt in any::<bool>()) {
            let m = esp_matrix();
            let (encr, ek, auth, ak) = m[alg % m.len()];
            let (s, d) = if v6 { ("2001:db8::1", "2001:db8::2") } else { ("10.0.0.1", "10.0.0.2") };
            let mode = if tunnel { Mode::Tunnel } else { Mode::Transport };
            let cfg = esp_cfg(encr, ek, auth, ak, v4(s), v4(d), mode, esn, natt);
            let pkt = udp_packet(v4(s), v4(d), 9, 10, n);
            let (mut tx, mut rx, a, _) = pair(&cfg);
            let mut eng = Engine::new();
            let mut buf = PacketBuf::from_packet(&pkt);
            eng.outbound(&mut tx, &[a], &mut buf, 0).unwrap();
            let over = Engine::overhead(&tx, &[a], &pkt);
            prop_assert_eq!(buf.len(), pkt.len() + over);
            eng.inbound(&mut rx, &mut buf, 0).unwrap();
            prop_assert_eq!(buf.data(), &pkt[..]);
        }

        /// AH round trip over sizes, IPv4 and IPv6.
        #[test]
        fn ah_roundtrip_any_size(alg in 0usize..9, n in 0usize..9000, v6 in any::<bool>(), esn in any::<bool>(), tunnel in any::<bool>()) {
            let m = ah_matrix();
            let (auth, ak) = m[alg % m.len()];
            let (s, d) = if v6 { ("2001:db8::1", "2001:db8::2") } else { ("10.0.0.1", "10.0.0.2") };
            let mode = if tunnel { Mode::Tunnel } else { Mode::Transport };
            let cfg = ah_cfg(auth, ak, v4(s), v4(d), mode, esn);
            let pkt = udp_packet(v4(s), v4(d), 9, 10, n);
            let (mut tx, mut rx, a, _) = pair(&cfg);
            let mut eng = Engine::new();
            let mut buf = PacketBuf::from_packet(&pkt);
            eng.outbound(&mut tx, &[a], &mut buf, 0).unwrap();
            eng.inbound(&mut rx, &mut buf, 0).unwrap();
            prop_assert_eq!(buf.data(), &pkt[..]);
        }
    }
}
