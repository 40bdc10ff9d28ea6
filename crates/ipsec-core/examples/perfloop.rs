//! A fixed loop of ESP encapsulation+decapsulation (or of the raw AEAD on the same bytes), for
//! instruction-count profiling with `valgrind --tool=callgrind`, which is repeatable on a
//! noisy machine. Usage: `perfloop engine|raw|floor SIZE ITERATIONS` (`floor`: the minimal ESP
//! work described at [`Engines::lean`]).
//!
//! `perfloop ratio [ROUNDS]` instead times the engine and the raw AEAD in alternating short
//! rounds for 64, 512, 1400 and 8192 bytes and prints the median ratio engine/raw per size:
//! interleaving makes the ratio robust against a shared, noisy machine. Extra words after the
//! round count: `floor` also times the minimal ESP work without any checks, `batch` also times
//! batches of 32 packets through `outbound_batch`/`inbound_batch`.
//!
//! `perfloop layouts [SIZE]` times engine and raw (interleaved) for ten instances set up at
//! different heap positions: AES-GCM in aws-lc copies its key schedule from the heap into a
//! stack context on every call, so the cost of one instance can depend on where its keys landed
//! relative to the stack (4 KiB aliasing). A ratio that holds across layouts is not luck.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use ipsec_core::{Engine, KeyMaterial, PacketBuf, Proto, SaConfig, Sadb};
use ipsec_crypto::EncrAlg;

struct Engines {
    tx: Sadb,
    rx: Sadb,
    id: ipsec_core::SaId,
    eng: Engine,
    buf: PacketBuf,
    raw: LessSafeKey,
    data: Vec<u8>,
    data2: Vec<u8>,
    pkt: Vec<u8>,
    n: u64,
}

impl Engines {
    fn new(size: usize) -> Self {
        let key: Vec<u8> = (0..20u8).collect();
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
        Engines {
            tx,
            rx,
            id,
            eng: Engine::new(),
            buf: PacketBuf::with_mtu(size),
            raw: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key[..16]).unwrap()),
            data: vec![0u8; size + 64],
            data2: vec![0u8; size + 256],
            pkt: packet(size),
            n: 0,
        }
    }

    /// 32 packets through `outbound_batch` then `inbound_batch` (the daemon's calling pattern).
    fn engine_batch(
        &mut self,
        bufs: &mut [PacketBuf],
        out: &mut [Result<(), ipsec_core::DropReason>],
        inr: &mut [Result<ipsec_core::InboundOk, ipsec_core::DropReason>],
    ) {
        for b in bufs.iter_mut() {
            b.set_packet(&self.pkt).unwrap();
        }
        self.eng
            .outbound_batch(&mut self.tx, &[self.id], bufs, out, 0);
        self.eng.inbound_batch(&mut self.rx, bufs, inr, 0);
        black_box(inr[0].is_ok());
    }

    fn engine(&mut self) {
        self.buf.set_packet(&self.pkt).unwrap();
        self.eng
            .outbound(&mut self.tx, &[self.id], &mut self.buf, 0)
            .unwrap();
        self.eng.inbound(&mut self.rx, &mut self.buf, 0).unwrap();
        black_box(self.buf.len());
    }

    /// The least work any ESP implementation must do on top of the AEAD: header move, ESP
    /// header, IV, trailer, seal, IP length/protocol/checksum; then the reverse. No SA lookup,
    /// no replay window, no checks: a floor, not an implementation.
    fn lean(&mut self) {
        self.n += 1;
        let size = self.pkt.len();
        let b = &mut self.data2;
        let h = 64usize;
        b[h..h + size].copy_from_slice(&self.pkt);
        // encap
        let s = h - 16;
        b.copy_within(h..h + 20, s);
        b[s + 20..s + 24].copy_from_slice(&0x1234u32.to_be_bytes());
        b[s + 24..s + 28].copy_from_slice(&(self.n as u32).to_be_bytes());
        b[s + 28..s + 36].copy_from_slice(&self.n.to_be_bytes());
        let pl = size - 20;
        let pad = 4usize.wrapping_sub(pl + 2) & 3;
        let pt = s + 36;
        for i in 0..pad {
            b[pt + pl + i] = (i + 1) as u8;
        }
        b[pt + pl + pad] = pad as u8;
        b[pt + pl + pad + 1] = 17;
        let ct_end = pt + pl + pad + 2;
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.n.to_be_bytes());
        let tag = self
            .raw
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from([0u8; 12]),
                &mut b[pt..ct_end],
            )
            .unwrap();
        b[ct_end..ct_end + 16].copy_from_slice(tag.as_ref());
        let total = ct_end + 16 - s;
        b[s + 2..s + 4].copy_from_slice(&(total as u16).to_be_bytes());
        b[s + 9] = 50;
        // decap
        let spi = u32::from_be_bytes([b[s + 20], b[s + 21], b[s + 22], b[s + 23]]);
        black_box(spi);
        let (ct, tag) = b[pt..ct_end + 16].split_at_mut(ct_end - pt);
        self.raw
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from([0u8; 12]),
                tag,
                ct,
            )
            .unwrap();
        let padl = usize::from(b[ct_end - 2]);
        let nh = b[ct_end - 1];
        b.copy_within(s..s + 20, s + 16);
        let s2 = s + 16;
        let tl = (ct_end - 2 - padl - s2) as u16;
        b[s2 + 2..s2 + 4].copy_from_slice(&tl.to_be_bytes());
        b[s2 + 9] = nh;
        black_box(b[s2]);
    }

    fn raw(&mut self) {
        self.n += 1;
        let size = self.pkt.len();
        let n = size - 20 + 2;
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.n.to_be_bytes());
        self.data[..n - 2].copy_from_slice(&self.pkt[20..]);
        let tag = self
            .raw
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from([0u8; 12]),
                &mut self.data[..n],
            )
            .unwrap();
        self.data[n..n + 16].copy_from_slice(tag.as_ref());
        let out = self
            .raw
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from([0u8; 12]),
                &mut self.data[..n + 16],
            )
            .unwrap();
        black_box(out.len());
    }
}

fn packet(size: usize) -> Vec<u8> {
    let mut pkt = vec![0u8; size];
    pkt[0] = 0x45;
    pkt[2..4].copy_from_slice(&(size as u16).to_be_bytes());
    pkt[8] = 64;
    pkt[9] = 17;
    pkt[12..16].copy_from_slice(&[10, 0, 0, 1]);
    pkt[16..20].copy_from_slice(&[10, 0, 0, 2]);
    pkt
}

fn ratio(rounds: usize, lean_mode: bool, batch_mode: bool) {
    println!("size  engine ns/pkt  raw ns/pkt  ratio (median of {rounds} interleaved rounds)  [p25 .. p75]");
    for size in [64usize, 512, 1400, 8192] {
        let mut e = Engines::new(size);
        let per_round = 20_000_000 / (size + 600);
        let mut ratios = Vec::new();
        let mut te = Vec::new();
        let mut tr = Vec::new();
        let mut lean = Vec::new();
        let mut batch = Vec::new();
        for _ in 0..per_round {
            e.engine();
            e.raw();
        }
        for _ in 0..rounds {
            let t0 = std::time::Instant::now();
            for _ in 0..per_round {
                e.engine();
            }
            let t1 = std::time::Instant::now();
            for _ in 0..per_round {
                e.raw();
            }
            let t2 = std::time::Instant::now();
            if batch_mode {
                let mut bufs: Vec<PacketBuf> = (0..32).map(|_| PacketBuf::with_mtu(size)).collect();
                let mut out = vec![Ok(()); 32];
                let mut inr = vec![Ok(ipsec_core::InboundOk::default()); 32];
                let t3 = std::time::Instant::now();
                for _ in 0..per_round / 32 {
                    e.engine_batch(&mut bufs, &mut out, &mut inr);
                }
                let t4 = std::time::Instant::now();
                batch.push(
                    ((t4 - t3).as_secs_f64() / (per_round / 32 * 32) as f64)
                        / ((t2 - t1).as_secs_f64() / per_round as f64),
                );
            }
            if lean_mode {
                let l0 = std::time::Instant::now();
                for _ in 0..per_round {
                    e.lean();
                }
                let t3 = std::time::Instant::now();
                lean.push((t3 - l0).as_secs_f64() / (t2 - t1).as_secs_f64());
            }
            let a = (t1 - t0).as_secs_f64() * 1e9 / per_round as f64;
            let b = (t2 - t1).as_secs_f64() * 1e9 / per_round as f64;
            te.push(a);
            tr.push(b);
            ratios.push(a / b);
        }
        let med = |v: &mut Vec<f64>, q: f64| {
            v.sort_by(|a, b| a.total_cmp(b));
            v[((v.len() - 1) as f64 * q).round() as usize]
        };
        println!(
            "{size:>5}  {:>13.0}  {:>10.0}  {:>5.3}  [{:.3} .. {:.3}]",
            med(&mut te, 0.5),
            med(&mut tr, 0.5),
            med(&mut ratios, 0.5),
            med(&mut ratios, 0.25),
            med(&mut ratios, 0.75)
        );
        if batch_mode {
            println!(
                "       batches of 32 (outbound_batch + inbound_batch) / raw: {:.3}",
                med(&mut batch, 0.5)
            );
        }
        if lean_mode {
            println!(
                "       floor (minimal ESP work, no checks) / raw: {:.3}",
                med(&mut lean, 0.5)
            );
        }
    }
}

fn layouts(size: usize) {
    let mut es = Vec::new();
    let mut spacers = Vec::new();
    for i in 0..10usize {
        // Allocations of different sizes between instances move the next SA keys around.
        spacers.push(vec![0u8; 48 + 80 * i]);
        let mut e = Engines::new(size);
        e.engine();
        es.push(e);
    }
    let per_round = 4_000_000 / (size + 600);
    let mut te = vec![Vec::new(); es.len()];
    let mut tr = vec![Vec::new(); es.len()];
    for _ in 0..15 {
        for (i, e) in es.iter_mut().enumerate() {
            let t0 = std::time::Instant::now();
            for _ in 0..per_round {
                e.engine();
            }
            let t1 = std::time::Instant::now();
            for _ in 0..per_round {
                e.raw();
            }
            let t2 = std::time::Instant::now();
            te[i].push((t1 - t0).as_secs_f64() * 1e9 / per_round as f64);
            tr[i].push((t2 - t1).as_secs_f64() * 1e9 / per_round as f64);
        }
    }
    println!("size {size}: per layout, median of 15 interleaved rounds");
    for (i, (a, b)) in te.iter_mut().zip(tr.iter_mut()).enumerate() {
        a.sort_by(|x, y| x.total_cmp(y));
        b.sort_by(|x, y| x.total_cmp(y));
        let (a, b) = (a[a.len() / 2], b[b.len() / 2]);
        println!(
            "layout {i}: engine {a:.0} ns  raw {b:.0} ns  ratio {:.3}",
            a / b
        );
    }
    black_box(spacers);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("layouts") {
        layouts(args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1400));
        return;
    }
    let mode = args.get(1).map_or("engine", String::as_str);
    if mode == "ratio" {
        let lean = args.iter().skip(3).any(|a| a == "floor");
        let batch = args.iter().skip(3).any(|a| a == "batch");
        ratio(
            args.get(2).and_then(|s| s.parse().ok()).unwrap_or(41),
            lean,
            batch,
        );
        return;
    }
    let size: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1400);
    let iters: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    if mode == "floor" {
        let mut e = Engines::new(size);
        for _ in 0..iters {
            e.lean();
        }
        return;
    }
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
