//! A round trip through the ESP/AH engine: two SADBs (one per host), several algorithms and
//! modes, a tampered packet and a replayed one, and the per-SA counters at the end.

use std::net::IpAddr;
use std::process::ExitCode;

use ipsec_core::{DropReason, Engine, KeyMaterial, Mode, PacketBuf, Proto, SaConfig, Sadb};
use ipsec_crypto::{auth_info, encr_info, AuthAlg, EncrAlg};

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([0u8, 0, 0, 0]))
}

fn checksum(data: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        s += u32::from(w);
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An IPv4 ICMP echo request with `n` bytes of data.
fn ping(src: IpAddr, dst: IpAddr, seq: u16, n: usize) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        return Vec::new();
    };
    let mut icmp = vec![8, 0, 0, 0, 0x12, 0x34];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend((0..n).map(|i| i as u8));
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&((20 + icmp.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, 1, 0, 0]);
    p.extend_from_slice(&s.octets());
    p.extend_from_slice(&d.octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&icmp);
    p
}

fn key(len: usize, seed: u8) -> KeyMaterial {
    // Demonstration keys only: a fixed pattern, never printed.
    KeyMaterial::new(
        &(0..len)
            .map(|i| (i as u8).wrapping_mul(17) ^ seed)
            .collect::<Vec<_>>(),
    )
}

struct Case {
    proto: Proto,
    encr: Option<EncrAlg>,
    auth: Option<AuthAlg>,
    mode: Mode,
}

fn main() -> ExitCode {
    let a = addr("192.0.2.1");
    let b = addr("192.0.2.2");
    let cases = [
        Case {
            proto: Proto::Esp,
            encr: Some(EncrAlg::AesGcm16),
            auth: None,
            mode: Mode::Transport,
        },
        Case {
            proto: Proto::Esp,
            encr: Some(EncrAlg::ChaCha20Poly1305),
            auth: None,
            mode: Mode::Tunnel,
        },
        Case {
            proto: Proto::Esp,
            encr: Some(EncrAlg::AesCbc),
            auth: Some(AuthAlg::HmacSha256),
            mode: Mode::Transport,
        },
        Case {
            proto: Proto::Ah,
            encr: None,
            auth: Some(AuthAlg::HmacSha256),
            mode: Mode::Transport,
        },
    ];
    let mut host_a = Sadb::new();
    let mut host_b = Sadb::new();
    let mut eng = Engine::new();
    let mut failures = 0;
    println!(
        "{:<6} {:<10} {:<22} {:<18} {:>5} {:>8}  result",
        "proto", "spi", "encryption", "authentication", "mode", "packets"
    );
    for (i, c) in cases.iter().enumerate() {
        let spi = 0x1000 + i as u32;
        let mut cfg = SaConfig::new(c.proto, spi, Some(a), b);
        cfg.mode = c.mode;
        cfg.replay_window = 128;
        cfg.esn = true;
        if let Some(e) = c.encr {
            let info = encr_info(e);
            cfg.encr_alg = Some(e);
            cfg.encr_key = key(
                usize::from(info.key_bits.default) / 8 + info.salt_bytes,
                i as u8,
            );
        }
        if let Some(au) = c.auth {
            let info = auth_info(au);
            cfg.auth_alg = Some(au);
            cfg.auth_key = key(
                usize::from(info.key_bits.default) / 8 + info.salt_bytes,
                0x55,
            );
        }
        let (Ok(out_id), Ok(in_id)) = (host_a.add(cfg.clone(), 0), host_b.add(cfg, 0)) else {
            println!("cannot create SA {spi:#x}");
            return ExitCode::FAILURE;
        };
        let mut delivered = 0;
        let mut last_wire = Vec::new();
        for seq in 0..10u16 {
            let pkt = ping(a, b, seq, 56 + usize::from(seq) * 100);
            let mut buf = PacketBuf::from_packet(&pkt);
            if let Err(e) = eng.outbound(&mut host_a, &[out_id], &mut buf, 1) {
                println!("outbound failed: {e}");
                failures += 1;
                continue;
            }
            last_wire = buf.data().to_vec();
            match eng.inbound(&mut host_b, &mut buf, 1) {
                Ok(_) if buf.data() == pkt.as_slice() => delivered += 1,
                Ok(_) => failures += 1,
                Err(e) => {
                    println!("inbound failed: {e}");
                    failures += 1;
                }
            }
        }
        // A replayed packet and a tampered one must both be refused.
        let mut replay = PacketBuf::from_packet(&last_wire);
        let r1 = eng.inbound(&mut host_b, &mut replay, 1);
        // A fresh packet with one bit flipped in its ICV.
        let mut fresh = PacketBuf::from_packet(&ping(a, b, 99, 64));
        if eng.outbound(&mut host_a, &[out_id], &mut fresh, 1).is_err() {
            failures += 1;
        }
        let mut tampered = fresh.data().to_vec();
        if let Some(x) = tampered.last_mut() {
            *x ^= 0x80;
        }
        let mut t = PacketBuf::from_packet(&tampered);
        let r2 = eng.inbound(&mut host_b, &mut t, 1);
        let expect_replay = if c.proto == Proto::Esp {
            DropReason::EspEarlyReplay
        } else {
            DropReason::AhEarlyReplay
        };
        let expect_auth = if c.proto == Proto::Esp {
            DropReason::EspBadAuth
        } else {
            DropReason::AhBadAuth
        };
        if r1 != Err(expect_replay) || r2 != Err(expect_auth) {
            failures += 1;
        }
        let sa = host_b.get(in_id);
        let (pk, drops) = sa
            .map(|s| (s.stats.packets, format!("{:?}", s.stats.drops)))
            .unwrap_or_default();
        println!(
            "{:<6} {:<10} {:<22} {:<18} {:>5} {:>8}  delivered {delivered}/10, replay -> {}, tampered -> {}; drops {drops}",
            c.proto.name(),
            format!("{spi:#x}"),
            c.encr.map_or("-", |e| encr_info(e).name),
            c.auth.map_or("-", |x| auth_info(x).name),
            if c.mode == Mode::Tunnel { "tun" } else { "trn" },
            pk,
            r1.err().map_or("accepted".into(), |e| e.to_string()),
            r2.err().map_or("accepted".into(), |e| e.to_string()),
        );
    }
    if failures == 0 {
        println!("all round trips passed");
        ExitCode::SUCCESS
    } else {
        println!("{failures} failures");
        ExitCode::FAILURE
    }
}
