//! A fixed loop of ESP encapsulation+decapsulation (or of the raw AEAD on the same bytes), for
//! instruction-count profiling with `valgrind --tool=callgrind`, which is repeatable on a
//! noisy machine. Usage: `perfloop engine|raw SIZE ITERATIONS`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use ipsec_core::{Engine, KeyMaterial, PacketBuf, Proto, SaConfig, Sadb};
use ipsec_crypto::EncrAlg;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("engine", String::as_str);
    let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1400);
    let iters: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let mut pkt = vec![0u8; size];
    pkt[0] = 0x45;
    pkt[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    pkt[8] = 64;
    pkt[9] = 17;
    pkt[12..16].copy_from_slice(&[10, 0, 0, 1]);
    pkt[16..20].copy_from_slice(&[10, 0, 0, 2]);
    let key: Vec<u8> = (0..20u8).collect();
    if mode == "raw" {
        let k = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key[..16]).unwrap());
        let mut data = vec![0u8; size + 64];
        let n = size - 20 + 2;
        for i in 0..iters {
            let mut nonce = [0u8; 12];
            nonce[4..].copy_from_slice(&i.to_be_bytes());
            data[..n - 2].copy_from_slice(&pkt[20..]);
            let tag = k
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from([0u8; 12]),
                    &mut data[..n],
                )
                .unwrap();
            data[n..n + 16].copy_from_slice(tag.as_ref());
            let out = k
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from([0u8; 12]),
                    &mut data[..n + 16],
                )
                .unwrap();
            black_box(out.len());
        }
        return;
    }
    let mut c = SaConfig::new(
        Proto::Esp,
        0x1234,
        Some("10.0.0.1".parse().unwrap()),
        "10.0.0.2".parse().unwrap(),
    );
    c.encr_alg = Some(EncrAlg::AesGcm16);
    c.encr_key = KeyMaterial::new(&key);
    c.replay_window = 1024;
    c.esn = true;
    let mut tx = Sadb::new();
    let mut rx = Sadb::new();
    let id = tx.add(c.clone(), 0).unwrap();
    rx.add(c, 0).unwrap();
    let mut eng = Engine::new();
    let mut buf = PacketBuf::with_mtu(size);
    for _ in 0..iters {
        buf.set_packet(&pkt).unwrap();
        eng.outbound(&mut tx, &[id], &mut buf, 0).unwrap();
        eng.inbound(&mut rx, &mut buf, 0).unwrap();
        black_box(buf.len());
    }
}
