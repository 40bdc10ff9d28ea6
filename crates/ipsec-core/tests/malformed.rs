//! Malformed ESP trailers built with valid keys (so they pass the ICV): each must be dropped with
//! its own named reason, and none may change the replay window or lifetimes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ipsec_core::{DropReason, Engine, Mode, PacketBuf, Sadb};
use ipsec_crypto::{AuthAlg, EncrAlg, EspEncr, Integ};

/// Builds an IPv4 transport ESP packet by hand: `plain` is the full plaintext (payload, padding,
/// pad length, next header) and is encrypted and authenticated with the SA's keys.
fn craft(encr: &EspEncr, integ: Option<&Integ>, spi: u32, seq: u32, plain: &[u8]) -> Vec<u8> {
    let iv_len = encr.iv_len();
    let mut esp = Vec::new();
    esp.extend_from_slice(&spi.to_be_bytes());
    esp.extend_from_slice(&seq.to_be_bytes());
    let mut iv = vec![0u8; iv_len];
    encr.make_iv(u64::from(seq), &mut iv);
    esp.extend_from_slice(&iv);
    let mut body = plain.to_vec();
    body.resize(plain.len() + encr.icv_len(), 0);
    let mut aad = Vec::new();
    aad.extend_from_slice(&spi.to_be_bytes());
    aad.extend_from_slice(&seq.to_be_bytes());
    encr.seal(&iv, &aad, &mut body).unwrap();
    esp.extend_from_slice(&body);
    if let Some(i) = integ {
        let mut icv = vec![0u8; i.icv_len()];
        i.compute(&[], &[&esp], &mut icv).unwrap();
        esp.extend_from_slice(&icv);
    }
    ip_packet(v4("10.9.0.1"), v4("10.9.0.2"), 50, &esp)
}

struct Fixture {
    rx: Sadb,
    id: ipsec_core::SaId,
    encr: EspEncr,
    integ: Integ,
}

fn fixture() -> Fixture {
    let cfg = esp_cfg(
        EncrAlg::AesCbc,
        16,
        Some(AuthAlg::HmacSha256),
        32,
        v4("10.9.0.1"),
        v4("10.9.0.2"),
        Mode::Transport,
        false,
        false,
    );
    let encr = EspEncr::new(EncrAlg::AesCbc, cfg.encr_key.expose(), false).unwrap();
    let integ = Integ::new(AuthAlg::HmacSha256, cfg.auth_key.expose(), false, false).unwrap();
    let mut rx = Sadb::new();
    let id = rx.add(cfg, 0).unwrap();
    Fixture {
        rx,
        id,
        encr,
        integ,
    }
}

fn expect(f: &mut Fixture, plain: &[u8], seq: u32, want: DropReason) {
    let pkt = craft(&f.encr, Some(&f.integ), 0x1000, seq, plain);
    let mut b = PacketBuf::from_packet(&pkt);
    let top = f.rx.get(f.id).unwrap().replay().top();
    let r = Engine::new().inbound(&mut f.rx, &mut b, 0);
    assert_eq!(r.err(), Some(want));
    let sa = f.rx.get(f.id).unwrap();
    assert_eq!(sa.stats.drops.get(want), 1, "{want}");
    // Authentic but malformed: the window and the lifetimes are left exactly as they were.
    assert_eq!(sa.stats.packets, 0);
    assert_eq!(sa.stats.bytes, 0);
    assert_eq!(sa.replay().top(), top);
}

#[test]
fn bad_pad_length() {
    let mut f = fixture();
    // 16 bytes: 14 payload bytes, pad length 200 (> payload), next header 17.
    let mut p = vec![0u8; 16];
    p[14] = 200;
    p[15] = 17;
    expect(&mut f, &p, 1, DropReason::EspBadPadlen);
}

#[test]
fn bad_padding_bytes() {
    let mut f = fixture();
    // 10 payload bytes, 4 padding bytes that are not 1,2,3,4.
    let mut p = vec![0xAAu8; 16];
    p[10..14].copy_from_slice(&[1, 2, 9, 4]);
    p[14] = 4;
    p[15] = 17;
    expect(&mut f, &p, 1, DropReason::EspBadPadding);
}

#[test]
fn ciphertext_not_block_multiple() {
    let mut f = fixture();
    // Build a good packet, then cut 1 byte out of the ciphertext and re-authenticate.
    let mut p = vec![0u8; 16];
    p[14] = 0;
    p[15] = 17;
    let pkt = craft(&f.encr, Some(&f.integ), 0x1000, 1, &p);
    let mut esp = pkt[20..pkt.len() - 16].to_vec();
    esp.remove(esp.len() - 1);
    let mut icv = vec![0u8; 16];
    f.integ.compute(&[], &[&esp], &mut icv).unwrap();
    esp.extend_from_slice(&icv);
    let bad = ip_packet(v4("10.9.0.1"), v4("10.9.0.2"), 50, &esp);
    let mut b = PacketBuf::from_packet(&bad);
    assert_eq!(
        Engine::new().inbound(&mut f.rx, &mut b, 0).err(),
        Some(DropReason::EspBadLength)
    );
}

#[test]
fn wrong_next_header_for_tunnel_sa() {
    let mut cfg = esp_cfg(
        EncrAlg::AesCbc,
        16,
        Some(AuthAlg::HmacSha256),
        32,
        v4("10.9.0.1"),
        v4("10.9.0.2"),
        Mode::Tunnel,
        false,
        false,
    );
    cfg.mode = Mode::Tunnel;
    let encr = EspEncr::new(EncrAlg::AesCbc, cfg.encr_key.expose(), false).unwrap();
    let integ = Integ::new(AuthAlg::HmacSha256, cfg.auth_key.expose(), false, false).unwrap();
    let mut rx = Sadb::new();
    rx.add(cfg, 0).unwrap();
    // A tunnel SA whose payload says next header 17 (UDP) instead of 4/41.
    let mut p = vec![0u8; 16];
    p[14] = 0;
    p[15] = 17;
    let pkt = craft(&encr, Some(&integ), 0x1000, 1, &p);
    let mut b = PacketBuf::from_packet(&pkt);
    assert_eq!(
        Engine::new().inbound(&mut rx, &mut b, 0).err(),
        Some(DropReason::EspBadNextHeader)
    );
}

#[test]
fn padding_check_can_be_disabled() {
    let mut cfg = esp_cfg(
        EncrAlg::AesCbc,
        16,
        Some(AuthAlg::HmacSha256),
        32,
        v4("10.9.0.1"),
        v4("10.9.0.2"),
        Mode::Transport,
        false,
        false,
    );
    cfg.padding_check = false;
    let f_encr = EspEncr::new(EncrAlg::AesCbc, cfg.encr_key.expose(), false).unwrap();
    let f_integ = Integ::new(AuthAlg::HmacSha256, cfg.auth_key.expose(), false, false).unwrap();
    let mut rx = Sadb::new();
    rx.add(cfg, 0).unwrap();
    // A UDP header as payload (8 bytes) + 6 bytes of zero padding + trailer.
    let mut p = vec![0u8; 16];
    p[..8].copy_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
    p[14] = 6;
    p[15] = 17;
    let pkt = craft(&f_encr, Some(&f_integ), 0x1000, 1, &p);
    let mut b = PacketBuf::from_packet(&pkt);
    Engine::new().inbound(&mut rx, &mut b, 0).unwrap();
    assert_eq!(b.len(), 28);
}
