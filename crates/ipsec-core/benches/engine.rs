//! ESP/AH encapsulation plus decapsulation per algorithm and packet size, each next to the raw
//! primitive (AEAD seal+open, or cipher+MAC both ways) on the same bytes in the same run.
//! The ratio `engine / raw` is what BENCHMARKS.md reports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::net::IpAddr;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, CHACHA20_POLY1305};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipsec_core::{Engine, KeyMaterial, Mode, PacketBuf, Proto, SaConfig, Sadb};
use ipsec_crypto::{AuthAlg, EncrAlg, EspEncr, Integ};

const SIZES: [usize; 4] = [64, 512, 1400, 8192];

fn packet(len: usize) -> Vec<u8> {
    // IPv4 + UDP with `len` bytes of IP total length.
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 0, 2]);
    p[20..22].copy_from_slice(&1234u16.to_be_bytes());
    p[22..24].copy_from_slice(&80u16.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    p
}

fn key(n: usize) -> Vec<u8> {
    (0..n).map(|i| i as u8 ^ 0x5a).collect()
}

struct Alg {
    name: &'static str,
    encr: EncrAlg,
    ekey: usize,
    auth: Option<AuthAlg>,
    akey: usize,
}

fn algs() -> Vec<Alg> {
    vec![
        Alg {
            name: "aes128-gcm16",
            encr: EncrAlg::AesGcm16,
            ekey: 20,
            auth: None,
            akey: 0,
        },
        Alg {
            name: "chacha20-poly1305",
            encr: EncrAlg::ChaCha20Poly1305,
            ekey: 36,
            auth: None,
            akey: 0,
        },
        Alg {
            name: "aes128-cbc+sha256",
            encr: EncrAlg::AesCbc,
            ekey: 16,
            auth: Some(AuthAlg::HmacSha256),
            akey: 32,
        },
        Alg {
            name: "aes128-ctr+sha1",
            encr: EncrAlg::AesCtr,
            ekey: 20,
            auth: Some(AuthAlg::HmacSha1),
            akey: 20,
        },
        Alg {
            name: "aes128-ccm16",
            encr: EncrAlg::AesCcm16,
            ekey: 19,
            auth: None,
            akey: 0,
        },
    ]
}

fn sa(a: &Alg) -> SaConfig {
    let src: IpAddr = "10.0.0.1".parse().unwrap();
    let dst: IpAddr = "10.0.0.2".parse().unwrap();
    let mut c = SaConfig::new(Proto::Esp, 0x1234, Some(src), dst);
    c.mode = Mode::Transport;
    c.encr_alg = Some(a.encr);
    c.encr_key = KeyMaterial::new(&key(a.ekey));
    c.auth_alg = a.auth;
    c.auth_key = KeyMaterial::new(&key(a.akey));
    c.replay_window = 1024;
    c.esn = true;
    c
}

fn bench(c: &mut Criterion) {
    for a in algs() {
        let mut g = c.benchmark_group(a.name);
        for &size in &SIZES {
            g.throughput(Throughput::Bytes(size as u64));
            let pkt = packet(size);
            // The engine: encapsulate then decapsulate, in place in one reused buffer.
            let mut tx = Sadb::new();
            let mut rx = Sadb::new();
            let out_id = tx.add(sa(&a), 0).unwrap();
            rx.add(sa(&a), 0).unwrap();
            let mut eng = Engine::new();
            let mut buf = PacketBuf::with_mtu(size);
            g.bench_function(BenchmarkId::new("esp-encap+decap", size), |b| {
                b.iter(|| {
                    buf.set_packet(&pkt).unwrap();
                    eng.outbound(&mut tx, &[out_id], &mut buf, 0).unwrap();
                    eng.inbound(&mut rx, &mut buf, 0).unwrap();
                    black_box(buf.len());
                })
            });
            // The raw primitive on the same payload bytes (IP payload + ESP trailer).
            let payload_len = size - 20 + 2;
            let mut data = vec![0u8; payload_len + 2 * 32 + 16];
            match a.encr {
                EncrAlg::AesGcm16 | EncrAlg::ChaCha20Poly1305 => {
                    let (alg, klen) = if a.encr == EncrAlg::AesGcm16 {
                        (&AES_128_GCM, 16)
                    } else {
                        (&CHACHA20_POLY1305, 32)
                    };
                    let k = LessSafeKey::new(UnboundKey::new(alg, &key(klen)).unwrap());
                    let mut n = 0u64;
                    g.bench_function(BenchmarkId::new("raw-seal+open", size), |b| {
                        b.iter(|| {
                            n += 1;
                            let mut nonce = [0u8; 12];
                            nonce[4..].copy_from_slice(&n.to_be_bytes());
                            data[..payload_len - 2].copy_from_slice(&pkt[20..]);
                            data[payload_len - 2] = 0;
                            data[payload_len - 1] = 17;
                            let pt = &mut data[..payload_len];
                            let aad = [0u8; 12];
                            let tag = k
                                .seal_in_place_separate_tag(
                                    Nonce::assume_unique_for_key(nonce),
                                    Aad::from(aad),
                                    pt,
                                )
                                .unwrap();
                            data[payload_len..payload_len + 16].copy_from_slice(tag.as_ref());
                            let out = k
                                .open_in_place(
                                    Nonce::assume_unique_for_key(nonce),
                                    Aad::from(aad),
                                    &mut data[..payload_len + 16],
                                )
                                .unwrap();
                            black_box(out.len());
                        })
                    });
                }
                _ => {
                    let e = EspEncr::new(a.encr, &key(a.ekey), true).unwrap();
                    let integ = a
                        .auth
                        .map(|x| Integ::new(x, &key(a.akey), false, true).unwrap());
                    let align = e.block_len().max(4);
                    let ct = payload_len.div_ceil(align) * align;
                    let icv = e.icv_len();
                    let ilen = integ.as_ref().map_or(0, |i| i.icv_len());
                    let mut mac = [0u8; 64];
                    let mut n = 0u64;
                    g.bench_function(BenchmarkId::new("raw-seal+open", size), |b| {
                        b.iter(|| {
                            n += 1;
                            let mut iv = [0u8; 16];
                            e.make_iv(n, &mut iv[..e.iv_len()]);
                            data[..ct].fill(7);
                            let ivs = &iv[..e.iv_len()];
                            e.seal(ivs, &[0u8; 8], &mut data[..ct + icv]).unwrap();
                            if let Some(i) = &integ {
                                i.compute(&[], &[&data[..ct + icv]], &mut mac[..ilen])
                                    .unwrap();
                                assert!(i.verify(&[], &[&data[..ct + icv]], &mac[..ilen]));
                            }
                            e.open(ivs, &[0u8; 8], &mut data[..ct + icv]).unwrap();
                            black_box(data[0]);
                        })
                    });
                }
            }
        }
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
