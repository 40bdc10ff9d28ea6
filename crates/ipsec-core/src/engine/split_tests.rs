//! The three-phase engine (`split.rs`) against the one-phase path: random SAs (AEAD or not,
//! NAT-T, tunnel or transport, lifetimes, ESN), batches of random packets with their crypto
//! run on two threads, and damaged, duplicated and reordered batches inbound. Both must give
//! the same results, the same bytes (sequence numbers in input order), and leave SAs,
//! counters and the engines in the same state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::fast_tests::{addrs, assert_same, buf_for, random_cfg, random_packet, Rng};
use super::{CryptoDone, CryptoJob, Engine};
use crate::buf::PacketBuf;
use crate::sa::Mode;
use crate::sadb::Sadb;

/// Runs the jobs (aligned with `bufs`) on two threads, as a data plane's pool would.
fn run_jobs(bufs: &mut [PacketBuf], jobs: Vec<Option<CryptoJob>>) -> Vec<Option<CryptoDone>> {
    let half = bufs.len().div_ceil(2).max(1);
    let mut jobs = jobs;
    let back = jobs.split_off(half.min(jobs.len()));
    let (b0, b1) = bufs.split_at_mut(half.min(bufs.len()));
    std::thread::scope(|s| {
        let t = s.spawn(move || {
            b1.iter_mut()
                .zip(back)
                .map(|(b, j)| j.map(|j| j.run(b)))
                .collect::<Vec<_>>()
        });
        let mut done: Vec<_> = b0
            .iter_mut()
            .zip(jobs)
            .map(|(b, j)| j.map(|j| j.run(b)))
            .collect();
        done.extend(t.join().unwrap());
        done
    })
}

#[test]
fn split_engine_matches_one_phase_engine() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut ea, mut eb) = (Engine::new(), Engine::new());
    let mut deferred_out = 0usize;
    let mut deferred_in = 0usize;
    for round in 0..300u32 {
        let v6 = rng.chance(40);
        let (src, dst) = addrs(v6);
        let cfgs = [
            random_cfg(&mut rng, 0x1000 + round % 3, v6),
            random_cfg(&mut rng, 0x2000 + round % 3, v6),
        ];
        let (mut sa_a, mut sa_b) = (Sadb::new(), Sadb::new());
        let mut ids = Vec::new();
        for c in &cfgs {
            ids.push((
                sa_a.add(c.clone(), 0).unwrap(),
                sa_b.add(c.clone(), 0).unwrap(),
            ));
        }
        let mut history: Vec<Vec<u8>> = Vec::new();
        for step in 0..6u64 {
            let now = 10 + step;
            let what = format!("round {round} step {step} cfgs {cfgs:?}");
            // Outbound: a batch, each packet through one of the SAs (sometimes both, ESP in
            // ESP, which the split path must seal in place).
            let n = 1 + rng.below(24);
            let mut bundles = Vec::new();
            let (mut bufs_a, mut bufs_b) = (Vec::new(), Vec::new());
            for _ in 0..n {
                let k = rng.below(2);
                let (psrc, pdst) = if cfgs[k].mode == Mode::Tunnel {
                    addrs(rng.chance(50))
                } else {
                    (src, dst)
                };
                let pkt = random_packet(&mut rng, psrc, pdst);
                let b = buf_for(&mut rng, &pkt);
                bufs_b.push(b.clone());
                bufs_a.push(b);
                bundles.push(if rng.chance(10) {
                    vec![ids[k], ids[1 - k]]
                } else {
                    vec![ids[k]]
                });
            }
            let mut res_a = Vec::new();
            let mut res_b = Vec::new();
            let mut jobs = Vec::new();
            for (i, bundle) in bundles.iter().enumerate() {
                let ba: Vec<_> = bundle.iter().map(|x| x.0).collect();
                let bb: Vec<_> = bundle.iter().map(|x| x.1).collect();
                res_a.push(ea.outbound(&mut sa_a, &ba, &mut bufs_a[i], now));
                match eb.outbound_split(&mut sa_b, &bb, &mut bufs_b[i], now) {
                    Ok(j) => {
                        deferred_out += usize::from(j.is_some());
                        jobs.push(j);
                        res_b.push(Ok(()));
                    }
                    Err(r) => {
                        jobs.push(None);
                        res_b.push(Err(r));
                    }
                }
            }
            for d in run_jobs(&mut bufs_b, jobs).into_iter().flatten() {
                assert!(d.is_ok(), "{what}: seal job failed");
            }
            assert_eq!(res_a, res_b, "{what}: outbound results");
            for (i, (a, b)) in bufs_a.iter().zip(&bufs_b).enumerate() {
                if res_a[i].is_ok() {
                    assert_eq!(a.data(), b.data(), "{what}: outbound bytes of packet {i}");
                    history.push(a.data().to_vec());
                }
            }
            assert_same(&what, &sa_a, &sa_b, &ids, &ea, &eb);
            if history.is_empty() {
                continue;
            }
            // Inbound: a batch from the history, damaged, duplicated and reordered.
            let mut wire = Vec::new();
            for _ in 0..1 + rng.below(24) {
                let mut p = history[rng.below(history.len())].clone();
                match rng.below(12) {
                    0 if !p.is_empty() => {
                        let i = rng.below(p.len());
                        p[i] ^= 1 << rng.below(8);
                    }
                    1 => p.truncate(rng.below(p.len() + 1)),
                    2 => p.extend_from_slice(&[0xab; 5]),
                    _ => {}
                }
                wire.push(p);
            }
            let mut bufs_a: Vec<PacketBuf> = wire.iter().map(|p| buf_for(&mut rng, p)).collect();
            let mut bufs_b = bufs_a.clone();
            let res_a: Vec<_> = bufs_a
                .iter_mut()
                .map(|b| ea.inbound(&mut sa_a, b, now))
                .collect();
            let jobs: Vec<_> = bufs_b
                .iter()
                .map(|b| eb.inbound_prepare(&sa_b, b))
                .collect();
            deferred_in += jobs.iter().flatten().count();
            let done = run_jobs(&mut bufs_b, jobs);
            let res_b: Vec<_> = bufs_b
                .iter_mut()
                .zip(done)
                .map(|(b, d)| match d {
                    Some(d) => eb.inbound_opened(&mut sa_b, b, now, d),
                    None => eb.inbound(&mut sa_b, b, now),
                })
                .collect();
            assert_eq!(res_a, res_b, "{what}: inbound results");
            for (i, (a, b)) in bufs_a.iter().zip(&bufs_b).enumerate() {
                if res_a[i].is_ok() {
                    assert_eq!(a.data(), b.data(), "{what}: inbound bytes of packet {i}");
                }
            }
            assert_same(&what, &sa_a, &sa_b, &ids, &ea, &eb);
        }
    }
    // The split really deferred most of the crypto (the test would pass if it never did).
    assert!(deferred_out > 1000, "seals deferred: {deferred_out}");
    assert!(deferred_in > 1000, "opens deferred: {deferred_in}");
}

/// An SA keyed again between the phases (PF_KEY UPDATE or a key sweep while the lock was
/// free) makes the job's outcome unusable: the packet is dropped, never delivered.
#[test]
fn rekeyed_sa_between_phases_drops_the_packet() {
    use crate::sa::{KeyMaterial, Proto, SaConfig};
    use ipsec_crypto::EncrAlg;
    let (src, dst) = addrs(false);
    let mut c = SaConfig::new(Proto::Esp, 0x7777, Some(src), dst);
    c.encr_alg = Some(EncrAlg::AesGcm16);
    c.encr_key = KeyMaterial::new(&[3u8; 20]);
    c.replay_window = 64;
    let (mut tx, mut rx) = (Sadb::new(), Sadb::new());
    let tid = tx.add(c.clone(), 0).unwrap();
    let rid = rx.add(c, 0).unwrap();
    let mut rng = Rng(9);
    let pkt = random_packet(&mut rng, src, dst);
    let mut e = Engine::new();
    let mut b = PacketBuf::from_packet(&pkt);
    if let Some(j) = e.outbound_split(&mut tx, &[tid], &mut b, 1).unwrap() {
        assert!(j.run(&mut b).is_ok());
    }
    let wire = b.data().to_vec();
    let j = e
        .inbound_prepare(&rx, &b)
        .expect("an AEAD ESP packet is prepared");
    let d = j.run(&mut b);
    assert!(d.is_ok());
    rx.get_mut(rid).unwrap().release_key_schedule();
    let r = e.inbound_opened(&mut rx, &mut b, 1, d);
    assert_eq!(r, Err(crate::drop::DropReason::EspCryptoFailed));
    assert_eq!(rx.get(rid).unwrap().replay().top(), 0, "window untouched");
    // The same packet once more, prepared against the new key schedule, is accepted.
    let mut b = PacketBuf::from_packet(&wire);
    let d = e.inbound_prepare(&rx, &b).unwrap().run(&mut b);
    assert!(e.inbound_opened(&mut rx, &mut b, 1, d).is_ok());
}
