//! PF_KEY engine benchmarks: ADD processing (parse, validate, key the SA, insert, echo to
//! every client) and SADB lookup with 1,000,000 SAs (plus the resident memory per SA).
//!
//! `cargo bench -p ipsec-pfkey`
//!
//! Figures (2-core dev machine, 2026-11): lookup at 1e6 SAs 53 ns (hit), 6 ns (miss);
//! resident memory 855 bytes per SA before first use (key schedules are built on first
//! use; the first measurement, with `EspEncr` inline, was 11.3 KB). See BENCHMARKS.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use ipsec_core::{KeyMaterial, Proto, SaConfig, Sadb};
use ipsec_crypto::EncrAlg;
use ipsec_pfkey::consts::*;
use ipsec_pfkey::engine::ClientId;
use ipsec_pfkey::wire::{Address, Key, Lifetime, SaExt};
use ipsec_pfkey::{KeyEngine, Message};

const N: u32 = 1_000_000;

fn dst_of(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (i >> 8)))
}

fn add_bytes(i: u32) -> Vec<u8> {
    let mut m = Message::new(SADB_ADD, SADB_SATYPE_ESP);
    m.seq = i;
    m.sa = Some(SaExt {
        spi: 0x1000 + i,
        replay: 64,
        state: SADB_SASTATE_MATURE,
        auth: 0,
        encrypt: 20,
        flags: 0,
    });
    m.src = Some(Address::new(SocketAddr::new(
        "192.0.2.1".parse().unwrap(),
        0,
    )));
    m.dst = Some(Address::new(SocketAddr::new(dst_of(i), 0)));
    m.key_encrypt = Key::new(&[0x5a; 36]);
    m.lifetime_hard = Some(Lifetime {
        addtime: 28800,
        ..Lifetime::default()
    });
    m.lifetime_soft = Some(Lifetime {
        addtime: 24000,
        ..Lifetime::default()
    });
    m.emit().unwrap()
}

fn add(c: &mut Criterion) {
    c.bench_function("engine ADD (AES-256-GCM SA, echo to 2 clients)", |b| {
        b.iter_custom(|iters| {
            let msgs: Vec<Vec<u8>> = (0..iters as u32).map(add_bytes).collect();
            let mut e = KeyEngine::with_seed(1);
            e.open(ClientId(2));
            let start = Instant::now();
            for m in &msgs {
                e.handle(1, ClientId(1), m);
                while let Some(o) = e.poll_output() {
                    black_box(o);
                }
            }
            start.elapsed()
        })
    });
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * 4096)
}

fn lookup(c: &mut Criterion) {
    let before = rss_bytes();
    let t = Instant::now();
    let mut db = Sadb::new();
    for i in 0..N {
        let mut cfg = SaConfig::new(
            Proto::Esp,
            0x1000 + i,
            Some("192.0.2.1".parse().unwrap()),
            dst_of(i),
        );
        cfg.encr_alg = Some(EncrAlg::AesGcm16);
        cfg.encr_key = KeyMaterial::new(&[0x5a; 36]);
        cfg.replay_window = 64;
        db.add(cfg, 0).unwrap();
    }
    let after = rss_bytes();
    eprintln!(
        "built {N} SAs in {:.1?}; resident memory {:.0} bytes per SA",
        t.elapsed(),
        (after.saturating_sub(before)) as f64 / f64::from(N)
    );
    {
        // Key schedules are built on first use: what a million SAs that all carried
        // traffic cost, measured on a second SADB of the same SAs.
        let before = rss_bytes();
        let mut used = Sadb::new();
        for i in 0..N {
            let mut cfg = SaConfig::new(
                Proto::Esp,
                0x1000 + i,
                Some("192.0.2.1".parse().unwrap()),
                dst_of(i),
            );
            cfg.encr_alg = Some(EncrAlg::AesGcm16);
            cfg.encr_key = KeyMaterial::new(&[0x5a; 36]);
            cfg.replay_window = 64;
            let id = used.add(cfg, 0).unwrap();
            black_box(used.get(id).unwrap().encr());
        }
        let after = rss_bytes();
        eprintln!(
            "{N} SAs keyed (as after carrying traffic): resident memory {:.0} bytes per SA",
            (after.saturating_sub(before)) as f64 / f64::from(N)
        );
    }
    let src = Some("192.0.2.1".parse().unwrap());
    let mut x = 0x9e37_79b9u32;
    let keys: Vec<(IpAddr, u32)> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let i = x % N;
            (dst_of(i), 0x1000 + i)
        })
        .collect();
    let mut k = 0usize;
    c.bench_function("Sadb::lookup, 1e6 SAs, random hits", |b| {
        b.iter(|| {
            let (d, s) = keys[k & 4095];
            k += 1;
            black_box(db.lookup(Proto::Esp, d, s, src))
        })
    });
    c.bench_function("Sadb::lookup, 1e6 SAs, misses", |b| {
        b.iter(|| {
            let (d, s) = keys[k & 4095];
            k += 1;
            black_box(db.lookup(Proto::Esp, d, s ^ 0x8000_0000, src))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = add, lookup
}
criterion_main!(benches);
