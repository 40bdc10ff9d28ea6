//! Differential tests of the lean ESP path (`fast.rs`) against the general path: random SAs
//! (lean-eligible or not), random packets (plain, with IPv4 options or IPv6 extension headers,
//! fragments, trailing bytes, short buffers) and random damage on the wire (flipped bytes,
//! truncation, replays, reordering, double ESP). Both paths must give the same result, the
//! same bytes, and leave SAs, counters and the engine in the same state.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use ipsec_crypto::{AuthAlg, EncrAlg};

use super::Engine;
use crate::buf::PacketBuf;
use crate::drop::DropReason;
use crate::sa::{KeyMaterial, Lifetime, Mode, NatT, Prefix, Proto, SaConfig, SaState};
use crate::sadb::{SaId, Sadb};

pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub(super) fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Encryption algorithm, its key length, and the integrity algorithm with its key length.
type Suite = (EncrAlg, usize, Option<(AuthAlg, usize)>);

const ALGS: [Suite; 10] = [
    (EncrAlg::AesGcm16, 20, None),
    (EncrAlg::AesGcm16, 36, None),
    (EncrAlg::AesGcm12, 20, None),
    (EncrAlg::AesGcm8, 28, None),
    (EncrAlg::AesCcm16, 19, None),
    (EncrAlg::AesCcm8, 35, None),
    (EncrAlg::ChaCha20Poly1305, 36, None),
    (EncrAlg::AesNullGmac, 20, None),
    (EncrAlg::AesCbc, 16, Some((AuthAlg::HmacSha256, 32))),
    (EncrAlg::AesCtr, 20, Some((AuthAlg::HmacSha1, 20))),
];

pub(super) fn addrs(v6: bool) -> (IpAddr, IpAddr) {
    if v6 {
        (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        )
    } else {
        ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap())
    }
}

pub(super) fn random_cfg(rng: &mut Rng, spi: u32, v6: bool) -> SaConfig {
    // Mostly lean-eligible AEADs, sometimes a cipher+MAC suite.
    let (encr, ek, auth) = ALGS[if rng.chance(80) {
        rng.below(8)
    } else {
        rng.below(ALGS.len())
    }];
    let (src, dst) = addrs(v6);
    let src = match rng.below(20) {
        0 => None,
        1 => Some(if v6 {
            "::".parse().unwrap()
        } else {
            "0.0.0.0".parse().unwrap()
        }),
        _ => Some(src),
    };
    let mut c = SaConfig::new(Proto::Esp, spi, src, dst);
    c.encr_alg = Some(encr);
    c.encr_key = KeyMaterial::new(&(0..ek).map(|i| (i * 7 + 3) as u8).collect::<Vec<_>>());
    if let Some((a, ak)) = auth {
        c.auth_alg = Some(a);
        c.auth_key = KeyMaterial::new(&(0..ak).map(|i| (i * 5 + 1) as u8).collect::<Vec<_>>());
    }
    c.mode = if rng.chance(50) {
        Mode::Tunnel
    } else {
        Mode::Transport
    };
    c.esn = rng.chance(50);
    c.replay_window = [0, 32, 64, 1024][rng.below(4)];
    c.padding_check = rng.chance(80);
    c.copy_dscp = rng.chance(70);
    if rng.chance(10) {
        c.natt = Some(NatT {
            local_port: 4500,
            remote_port: 4500,
            local_addr: None,
            remote_addr: None,
            local_behind_nat: false,
            remote_behind_nat: false,
        });
    }
    if rng.chance(10) {
        c.state = SaState::Dying;
    } else if rng.chance(5) {
        c.state = SaState::Dead;
    }
    if rng.chance(10) {
        c.hard = Lifetime {
            packets: 1 + rng.below(6) as u64,
            bytes: 0,
            addtime: 0,
            usetime: 0,
        };
    } else if rng.chance(10) {
        c.hard = Lifetime {
            packets: 0,
            bytes: 200 + rng.below(800) as u64,
            addtime: 0,
            usetime: 0,
        };
    }
    if rng.chance(5) {
        c.replay_value = if c.esn {
            (1u64 << 32) - 3
        } else {
            u64::from(u32::MAX) - 3
        };
    }
    if c.mode == Mode::Tunnel && rng.chance(15) {
        c.inner.dst = Some(Prefix {
            addr: addrs(rng.chance(50)).1,
            len: if rng.chance(50) { 128 } else { 32 },
        });
        c.inner.proto = [0, 17, 6][rng.below(3)];
        c.inner.dport = [0, 80, 53][rng.below(3)];
    }
    c
}

fn ipv4_checksum(h: &mut [u8]) {
    h[10] = 0;
    h[11] = 0;
    let mut s = 0u32;
    for w in h.chunks(2) {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    h[10..12].copy_from_slice(&(!(s as u16)).to_be_bytes());
}

/// A random IP packet from `src` to `dst` (their family decides the version).
pub(super) fn random_packet(rng: &mut Rng, src: IpAddr, dst: IpAddr) -> Vec<u8> {
    let proto = [17u8, 17, 17, 6, 1, 59, 50][rng.below(7)];
    let n = if rng.chance(10) {
        rng.below(1500)
    } else {
        rng.below(120)
    };
    let mut payload: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
    if proto == 17 && n >= 8 {
        payload[2..4].copy_from_slice(&[80u16, 53][rng.below(2)].to_be_bytes());
        payload[4..6].copy_from_slice(&(n as u16).to_be_bytes());
        payload[6..8].copy_from_slice(&[0, 0]);
    }
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let opts = if rng.chance(10) { 4 } else { 0 };
            let hl = 20 + opts;
            p.resize(hl, 0);
            p[0] = 0x40 | (hl / 4) as u8;
            p[1] = rng.next() as u8;
            p[4..6].copy_from_slice(&(rng.next() as u16).to_be_bytes());
            p[6] = match rng.below(10) {
                0 => 0x20, // MF: a fragment
                1 => 0x00, // may fragment
                _ => 0x40, // DF
            };
            if rng.chance(3) {
                p[7] = 0x10; // fragment offset
            }
            p[8] = 64;
            p[9] = proto;
            p[12..16].copy_from_slice(&s.octets());
            p[16..20].copy_from_slice(&d.octets());
            if opts != 0 {
                p[20..24].copy_from_slice(&[1, 1, 1, 0]);
            }
            p.extend_from_slice(&payload);
            let tl = p.len() as u16;
            p[2..4].copy_from_slice(&tl.to_be_bytes());
            ipv4_checksum(&mut p[..hl]);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.resize(40, 0);
            let word = (6u32 << 28) | ((rng.next() as u32 & 0xff) << 20) | 0x12345;
            p[0..4].copy_from_slice(&word.to_be_bytes());
            p[7] = 64;
            p[8..24].copy_from_slice(&s.octets());
            p[24..40].copy_from_slice(&d.octets());
            let ext = [None, None, None, None, None, Some(0u8), Some(60), Some(44)][rng.below(8)];
            match ext {
                Some(e) => {
                    p[6] = e;
                    p.extend_from_slice(&[proto, 0, 0, 0, 0, 0, 0, 0]);
                    if e == 44 {
                        p[42] = 0; // fragment offset 0, M=1
                        p[43] = 1;
                    } else {
                        p[42] = 1; // PadN over the rest
                        p[43] = 4;
                    }
                }
                None => p[6] = proto,
            }
            p.extend_from_slice(&payload);
            let pl = (p.len() - 40) as u16;
            p[4..6].copy_from_slice(&pl.to_be_bytes());
        }
        _ => unreachable!(),
    }
    p
}

pub(super) fn buf_for(rng: &mut Rng, pkt: &[u8]) -> PacketBuf {
    let mut b = if rng.chance(10) {
        // Small buffers: too little head- or tailroom.
        PacketBuf::new(pkt.len() + rng.below(120), 0)
    } else {
        PacketBuf::with_mtu(pkt.len().max(1500))
    };
    b.set_packet(pkt).unwrap();
    b
}

/// Everything observable about the two SADBs and engines must agree.
pub(super) fn assert_same(
    what: &str,
    a: &Sadb,
    b: &Sadb,
    ids: &[(SaId, SaId)],
    ea: &Engine,
    eb: &Engine,
) {
    assert!(
        a.global_drops == b.global_drops,
        "{what}: global drops differ"
    );
    assert_eq!(ea.ident, eb.ident, "{what}: IPv4 ident");
    for (ia, ib) in ids {
        let (sa, sb) = (a.get(*ia).unwrap(), b.get(*ib).unwrap());
        assert_eq!(sa.stats, sb.stats, "{what}: stats");
        assert_eq!(sa.replay(), sb.replay(), "{what}: replay window");
        assert_eq!(sa.seq_out(), sb.seq_out(), "{what}: seq_out");
        assert_eq!(sa.state(), sb.state(), "{what}: state");
        assert_eq!(sa.first_use(), sb.first_use(), "{what}: first use");
        assert_eq!(sa.last_use(), sb.last_use(), "{what}: last use");
    }
}

#[test]
fn lean_path_matches_general_path() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // The engines live across rounds (and SADBs): their SA hints must never leak from one
    // SADB into another. SPIs repeat across rounds for the same reason.
    let (mut ea, mut eb) = (Engine::new(), Engine::new());
    for round in 0..600 {
        let v6 = rng.chance(40);
        let (src, dst) = addrs(v6);
        let mut cfgs = vec![random_cfg(&mut rng, 0x1000 + round % 3, v6)];
        // A second SA for double ESP, sometimes sharing the first one's SPI with a wildcard
        // source (the lookup must still prefer the exact one).
        let mut second = random_cfg(&mut rng, 0x2000 + round % 3, v6);
        if rng.chance(20) && cfgs[0].src.is_some() {
            second.spi = cfgs[0].spi;
            second.src = None;
        }
        cfgs.push(second);
        let (mut sa_a, mut sa_b) = (Sadb::new(), Sadb::new());
        let mut ids = Vec::new();
        for c in &cfgs {
            let ia = sa_a.add(c.clone(), 0).unwrap();
            let ib = sa_b.add(c.clone(), 0).unwrap();
            if rng.chance(5) {
                let near = if c.esn {
                    u64::MAX - 2
                } else {
                    u64::from(u32::MAX) - 2
                };
                sa_a.get_mut(ia).unwrap().set_seq_out(near);
                sa_b.get_mut(ib).unwrap().set_seq_out(near);
            }
            ids.push((ia, ib));
        }
        let mut history: Vec<Vec<u8>> = Vec::new();
        for step in 0..40u64 {
            let now = 10 + step;
            if rng.chance(3) {
                // Replace the first SA: same SPI, maybe another source; old handles go stale.
                let mut c = cfgs[0].clone();
                // (The second SA may hold this SPI with a wildcard source already.)
                c.src = if rng.chance(50) || cfgs[1].spi == c.spi {
                    Some(src)
                } else {
                    None
                };
                assert!(sa_a.remove(ids[0].0).is_some() && sa_b.remove(ids[0].1).is_some());
                ids[0] = (
                    sa_a.add(c.clone(), now).unwrap(),
                    sa_b.add(c.clone(), now).unwrap(),
                );
                cfgs[0] = c;
            }
            let what = format!("round {round} step {step} cfg {:?}", cfgs[0]);
            let (isrc, idst) = if rng.chance(50) {
                addrs(v6)
            } else {
                addrs(!v6)
            };
            let (psrc, pdst) = if cfgs[0].mode == Mode::Tunnel {
                (isrc, idst)
            } else if rng.chance(5) {
                (dst, src)
            } else {
                (src, dst)
            };
            let mut pkt = random_packet(&mut rng, psrc, pdst);
            if rng.chance(5) {
                pkt.extend_from_slice(&[0xee; 7]); // bytes after the IP packet
            }
            // Outbound: one SA, sometimes ESP twice (second SA outside).
            let layers = if rng.chance(15) { 2 } else { 1 };
            let mut ba = buf_for(&mut rng, &pkt);
            let mut bb = ba.clone();
            let mut ok = true;
            for l in 0..layers {
                let (ia, ib) = ids[l];
                let ra = ea.outbound(&mut sa_a, &[ia], &mut ba, now);
                let rb = eb.outbound_general(&mut sa_b, &[ib], &mut bb, now);
                assert_eq!(ra, rb, "{what}: outbound result");
                assert_eq!(ba.data(), bb.data(), "{what}: outbound bytes");
                assert_same(&what, &sa_a, &sa_b, &[ids[0], ids[1]], &ea, &eb);
                ok &= ra.is_ok();
            }
            let mut wire = if ok { ba.data().to_vec() } else { pkt.clone() };
            history.push(wire.clone());
            // Damage, replay or reorder.
            match rng.below(20) {
                0 if !wire.is_empty() => {
                    let i = rng.below(wire.len());
                    wire[i] ^= 1 << rng.below(8);
                }
                1 => wire.truncate(rng.below(wire.len() + 1)),
                2 => wire.extend_from_slice(&[0xab; 5]),
                3 | 4 => wire = history[rng.below(history.len())].clone(),
                _ => {}
            }
            if rng.chance(10) {
                // Hold this one back and deliver an earlier one first.
                let old = history[rng.below(history.len())].clone();
                let mut ba = buf_for(&mut rng, &old);
                let mut bb = ba.clone();
                let ra = ea.inbound(&mut sa_a, &mut ba, now);
                let rb = eb.inbound_general(&mut sa_b, &mut bb, now, None);
                assert_eq!(ra, rb, "{what}: early inbound result");
                assert_eq!(ba.data(), bb.data(), "{what}: early inbound bytes");
            }
            let mut ba = buf_for(&mut rng, &wire);
            let mut bb = ba.clone();
            let ra = ea.inbound(&mut sa_a, &mut ba, now);
            let rb = eb.inbound_general(&mut sa_b, &mut bb, now, None);
            assert_eq!(ra, rb, "{what}: inbound result");
            if ra.is_ok() || ok {
                assert_eq!(ba.data(), bb.data(), "{what}: inbound bytes");
            }
            assert_same(&what, &sa_a, &sa_b, &[ids[0], ids[1]], &ea, &eb);
        }
    }
}

/// The common case really takes the lean path (the test above would also pass if it never
/// did): a plain IPv4 and IPv6 packet through an AES-GCM SA in each mode.
#[test]
fn common_case_is_lean() {
    for v6 in [false, true] {
        for mode in [Mode::Transport, Mode::Tunnel] {
            let (src, dst) = addrs(v6);
            let mut c = SaConfig::new(Proto::Esp, 0x4242, Some(src), dst);
            c.encr_alg = Some(EncrAlg::AesGcm16);
            c.encr_key = KeyMaterial::new(&[7u8; 20]);
            c.mode = mode;
            c.replay_window = 64;
            let mut tx = Sadb::new();
            let mut rx = Sadb::new();
            let id = tx.add(c.clone(), 0).unwrap();
            let rid = rx.add(c, 0).unwrap();
            let mut rng = Rng(5);
            let pkt = loop {
                let p = random_packet(&mut rng, src, dst);
                let plain = if v6 {
                    p[6] == 17
                } else {
                    p[0] == 0x45 && p[6] & 0x3f == 0 && p[7] == 0 && p[9] == 17
                };
                if plain {
                    break p;
                }
            };
            let mut eng = Engine::new();
            let mut buf = PacketBuf::from_packet(&pkt);
            assert!(matches!(
                eng.esp_out_fast(&mut tx, id, &mut buf, 1),
                Some(Ok(()))
            ));
            match eng.esp_in_fast(&mut rx, &mut buf, 1) {
                super::fast::FastIn::Done(Ok(ok)) => {
                    assert_eq!(ok.sas, [Some(rid), None]);
                    assert_eq!(ok.tunnel, mode == Mode::Tunnel);
                }
                _ => panic!("inbound did not take the lean path"),
            }
            assert_eq!(buf.data(), &pkt[..]);
        }
    }
}

/// Authentic packets with odd trailers (which random damage cannot produce under an AEAD):
/// bad padding, a pad length past the data, dummy packets, wrong next headers, ESP inside ESP.
#[test]
fn odd_trailers_match_general_path() {
    let mut rng = Rng(77);
    for v6 in [false, true] {
        for mode in [Mode::Transport, Mode::Tunnel] {
            for (padding_check, host_check) in [(true, true), (false, true), (true, false)] {
                for case in 0..8u8 {
                    let (src, dst) = addrs(v6);
                    let mut c = SaConfig::new(Proto::Esp, 0x5151, Some(src), dst);
                    c.encr_alg = Some(EncrAlg::AesGcm16);
                    c.encr_key = KeyMaterial::new(&[9u8; 20]);
                    c.mode = mode;
                    c.replay_window = 64;
                    c.padding_check = padding_check;
                    let (mut a, mut b) = (Sadb::new(), Sadb::new());
                    let ia = a.add(c.clone(), 0).unwrap();
                    let ib = b.add(c, 0).unwrap();
                    // Inner content and trailer per case.
                    let inner = random_packet(&mut rng, src, dst);
                    let (body, pad, padlen, nh): (Vec<u8>, Vec<u8>, u8, u8) = match case {
                        0 => (inner.clone(), vec![1, 2], 2, if v6 { 41 } else { 4 }),
                        1 => (inner.clone(), vec![1, 2, 9], 3, 17),
                        2 => (inner.clone(), vec![], 200, 17),
                        3 => (inner.clone(), vec![1], 1, 59),
                        4 => (inner.clone(), vec![], 0, 17),
                        5 => (inner.clone(), vec![], 0, if v6 { 4 } else { 41 }),
                        6 => (vec![0u8; 24], vec![1, 2], 2, 50),
                        _ => (vec![0u8; 3], vec![], 0, 51),
                    };
                    let hl = if v6 { 40 } else { 20 };
                    let mut p = vec![0u8; hl];
                    if v6 {
                        p[0] = 0x60;
                        p[6] = 50;
                        p[7] = 64;
                        let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
                            unreachable!()
                        };
                        p[8..24].copy_from_slice(&s.octets());
                        p[24..40].copy_from_slice(&d.octets());
                    } else {
                        p[0] = 0x45;
                        p[8] = 64;
                        p[9] = 50;
                        let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
                            unreachable!()
                        };
                        p[12..16].copy_from_slice(&s.octets());
                        p[16..20].copy_from_slice(&d.octets());
                    }
                    let seq = 5u64;
                    p.extend_from_slice(&0x5151u32.to_be_bytes());
                    p.extend_from_slice(&(seq as u32).to_be_bytes());
                    p.extend_from_slice(&seq.to_be_bytes());
                    let ct_at = p.len();
                    // Transport mode protects the payload after the header; tunnel the whole packet.
                    if mode == Mode::Transport && case < 6 {
                        p.extend_from_slice(&body[hl.min(body.len())..]);
                    } else {
                        p.extend_from_slice(&body);
                    }
                    p.extend_from_slice(&pad);
                    p.push(padlen);
                    p.push(nh);
                    p.extend_from_slice(&[0u8; 16]);
                    let mut aad = Vec::new();
                    aad.extend_from_slice(&0x5151u32.to_be_bytes());
                    aad.extend_from_slice(&(seq as u32).to_be_bytes());
                    let sa = a.get(ia).unwrap();
                    sa.encr()
                        .unwrap()
                        .seal(&seq.to_be_bytes(), &aad, &mut p[ct_at..])
                        .unwrap();
                    if v6 {
                        let pl = (p.len() - 40) as u16;
                        p[4..6].copy_from_slice(&pl.to_be_bytes());
                    } else {
                        let tl = p.len() as u16;
                        p[2..4].copy_from_slice(&tl.to_be_bytes());
                        ipv4_checksum(&mut p[..20]);
                    }
                    let (mut ea, mut eb) = (Engine::new(), Engine::new());
                    ea.padding_check = host_check;
                    eb.padding_check = host_check;
                    let mut ba = PacketBuf::from_packet(&p);
                    let mut bb = ba.clone();
                    let ra = ea.inbound(&mut a, &mut ba, 3);
                    let rb = eb.inbound_general(&mut b, &mut bb, 3, None);
                    let what = format!(
                        "v6 {v6} {mode:?} check {padding_check} host {host_check} case {case}"
                    );
                    assert_eq!(ra, rb, "{what}");
                    if case == 1 {
                        // Padding 1, 2, 9: refused only when both the SA and the host check.
                        assert_eq!(
                            ra == Err(DropReason::EspBadPadding),
                            padding_check && host_check,
                            "{what}"
                        );
                    }
                    if ra.is_ok() {
                        assert_eq!(ba.data(), bb.data(), "{what}");
                    }
                    assert_same(&what, &a, &b, &[(ia, ib)], &ea, &eb);
                }
            }
        }
    }
}
