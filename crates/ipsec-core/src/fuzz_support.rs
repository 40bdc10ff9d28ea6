//! Bodies of the engine fuzz targets (`fuzz/fuzz_targets/engine_*.rs`), kept in the library so
//! that ordinary tests replay the committed regression inputs through the same code.
//!
//! Each function returns `Err` with a description when an invariant is broken (the fuzz target
//! then panics); any panic inside is a bug too.

use std::net::IpAddr;

use ipsec_crypto::{AuthAlg, EncrAlg};

use crate::buf::PacketBuf;
use crate::engine::Engine;
use crate::frag::{Reassembler, ReassemblyLimits};
use crate::sa::{InnerSelectors, KeyMaterial, Mode, NatT, Prefix, Proto, SaConfig};
use crate::sadb::Sadb;

fn addr(s: &str) -> IpAddr {
    s.parse().unwrap_or(IpAddr::from([0u8; 4]))
}

fn key(n: usize, seed: u8) -> KeyMaterial {
    KeyMaterial::new(
        &(0..n)
            .map(|i| (i as u8).wrapping_mul(13) ^ seed)
            .collect::<Vec<_>>(),
    )
}

/// The SAs the inbound target knows, for IPv4 and IPv6 destinations. SPI 0x100 is
/// encryption-only AES-CBC (so fuzzed input gets past the ICV into the trailer and
/// decapsulation code), 0x101 AES-GCM, 0x102 AES-CBC+HMAC-SHA-256 tunnel with inner selectors,
/// 0x103 ChaCha20-Poly1305 with ESN over NAT-T, 0x104 AH HMAC-SHA-256, 0x105 AH AES-GMAC,
/// 0x106 NULL encryption with HMAC-SHA1 in tunnel mode.
pub fn fuzz_sadb() -> Sadb {
    let mut db = Sadb::new();
    for (src, dst) in [("192.0.2.1", "192.0.2.2"), ("2001:db8::1", "2001:db8::2")] {
        let (s, d) = (addr(src), addr(dst));
        let mut add = |spi: u32,
                       proto: Proto,
                       encr: Option<(EncrAlg, usize)>,
                       auth: Option<(AuthAlg, usize)>,
                       f: &dyn Fn(&mut SaConfig)| {
            let mut c = SaConfig::new(proto, spi, Some(s), d);
            if let Some((e, n)) = encr {
                c.encr_alg = Some(e);
                c.encr_key = key(n, 1);
            }
            if let Some((a, n)) = auth {
                c.auth_alg = Some(a);
                c.auth_key = key(n, 2);
            }
            c.replay_window = 64;
            f(&mut c);
            // Fixed, valid configurations: failure to add would be a bug in this table.
            let _ = db.add(c, 0);
        };
        add(
            0x100,
            Proto::Esp,
            Some((EncrAlg::AesCbc, 16)),
            None,
            &|_| {},
        );
        add(
            0x101,
            Proto::Esp,
            Some((EncrAlg::AesGcm16, 20)),
            None,
            &|_| {},
        );
        add(
            0x102,
            Proto::Esp,
            Some((EncrAlg::AesCbc, 16)),
            Some((AuthAlg::HmacSha256, 32)),
            &|c| {
                c.mode = Mode::Tunnel;
                c.inner = InnerSelectors {
                    src: Some(Prefix {
                        addr: if s.is_ipv4() {
                            addr("10.0.0.0")
                        } else {
                            addr("fd00::")
                        },
                        len: 8,
                    }),
                    ..InnerSelectors::default()
                };
            },
        );
        add(
            0x103,
            Proto::Esp,
            Some((EncrAlg::ChaCha20Poly1305, 36)),
            None,
            &|c| {
                c.esn = true;
                c.natt = Some(NatT {
                    local_port: 4500,
                    remote_port: 4500,
                    local_addr: None,
                    remote_addr: None,
                    local_behind_nat: false,
                    remote_behind_nat: false,
                });
            },
        );
        add(
            0x104,
            Proto::Ah,
            None,
            Some((AuthAlg::HmacSha256, 32)),
            &|_| {},
        );
        add(
            0x105,
            Proto::Ah,
            None,
            Some((AuthAlg::AesGmac128, 20)),
            &|_| {},
        );
        add(
            0x106,
            Proto::Esp,
            Some((EncrAlg::Null, 0)),
            Some((AuthAlg::HmacSha1, 20)),
            &|c| c.mode = Mode::Tunnel,
        );
        add(0x107, Proto::Esp, Some((EncrAlg::AesCbc, 16)), None, &|c| {
            c.mode = Mode::Tunnel
        });
    }
    db
}

/// Fuzzed bytes as a received IP packet: through reassembly, then `Engine::inbound`. Checks
/// that success leaves a well-formed IP packet and that failures are counted.
pub fn engine_inbound(data: &[u8]) -> Result<(), &'static str> {
    let mut db = fuzz_sadb();
    let mut eng = Engine::new();
    let mut reasm = Reassembler::new(ReassemblyLimits {
        max_datagrams: 4,
        max_bytes: 1 << 16,
        timeout: 30,
    });
    let mut buf = PacketBuf::from_packet(data);
    match reasm.push(&mut buf, 0) {
        Ok(true) => {}
        Ok(false) | Err(_) => return Ok(()),
    }
    let before = db.global_drops.total();
    match eng.inbound(&mut db, &mut buf, 0) {
        Ok(ok) => {
            let p = buf.data();
            let v = p.first().map(|b| b >> 4);
            if !matches!(v, Some(4) | Some(6)) {
                return Err("inbound accepted a packet that is not IP after decapsulation");
            }
            if ok.sa_ids().count() == 0 {
                return Err("inbound accepted a packet without naming an SA");
            }
        }
        Err(_) => {
            if db.global_drops.total() != before + 1 {
                return Err("a drop was not counted exactly once");
            }
        }
    }
    Ok(())
}

/// Fuzzed bytes choose an SA configuration and an inner payload; the packet goes out and back
/// in and must come back identical.
pub fn engine_roundtrip(data: &[u8]) -> Result<(), &'static str> {
    let [sel, flags, rest @ ..] = data else {
        return Ok(());
    };
    type Alg = (EncrAlg, usize, Option<(AuthAlg, usize)>);
    const ALGS: &[Alg] = &[
        (EncrAlg::AesGcm16, 20, None),
        (EncrAlg::AesGcm8, 36, None),
        (EncrAlg::AesCcm12, 19, None),
        (EncrAlg::ChaCha20Poly1305, 36, None),
        (EncrAlg::AesNullGmac, 20, None),
        (EncrAlg::AesCbc, 32, Some((AuthAlg::HmacSha512, 64))),
        (EncrAlg::AesCtr, 20, Some((AuthAlg::AesXcbcMac, 16))),
        (EncrAlg::CamelliaCbc, 16, Some((AuthAlg::AesCmac, 16))),
        (EncrAlg::TripleDesCbc, 24, Some((AuthAlg::HmacSha1, 20))),
        (EncrAlg::Null, 0, Some((AuthAlg::HmacSha384, 48))),
    ];
    let (encr, ek, auth) = ALGS[usize::from(*sel) % ALGS.len()];
    let v6 = flags & 1 != 0;
    let tunnel = flags & 2 != 0;
    let (s, d) = if v6 {
        (addr("2001:db8::1"), addr("2001:db8::2"))
    } else {
        (addr("192.0.2.1"), addr("192.0.2.2"))
    };
    let mut c = SaConfig::new(
        if flags & 32 != 0 {
            Proto::Ah
        } else {
            Proto::Esp
        },
        0x4242,
        Some(s),
        d,
    );
    if c.proto == Proto::Esp {
        c.encr_alg = Some(encr);
        c.encr_key = key(ek, 3);
        if let Some((a, n)) = auth {
            c.auth_alg = Some(a);
            c.auth_key = key(n, 4);
        }
    } else {
        c.auth_alg = Some(AuthAlg::HmacSha256);
        c.auth_key = key(32, 4);
    }
    c.mode = if tunnel {
        Mode::Tunnel
    } else {
        Mode::Transport
    };
    c.esn = flags & 4 != 0;
    c.replay_window = if flags & 8 != 0 { 4096 } else { 32 };
    c.allow_legacy = true;
    if flags & 16 != 0 && c.proto == Proto::Esp {
        c.natt = Some(NatT {
            local_port: 4500,
            remote_port: 4500,
            local_addr: None,
            remote_addr: None,
            local_behind_nat: false,
            remote_behind_nat: false,
        });
    }
    let mut tx = Sadb::new();
    let mut rx = Sadb::new();
    let (Ok(out_id), Ok(_)) = (tx.add(c.clone(), 0), rx.add(c, 0)) else {
        return Err("a fixed valid SA configuration was refused");
    };
    // The inner packet: an IP header with protocol 253 (experimental) around the fuzzed bytes.
    let payload = &rest[..rest.len().min(9000)];
    let mut pkt = Vec::with_capacity(payload.len() + 40);
    match (s, d) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let tl = (20 + payload.len()) as u16;
            pkt.extend_from_slice(&[0x45, 0]);
            pkt.extend_from_slice(&tl.to_be_bytes());
            pkt.extend_from_slice(&[0, 1, 0, 0, 64, 253, 0, 0]);
            pkt.extend_from_slice(&a.octets());
            pkt.extend_from_slice(&b.octets());
            let c = !ipsec_wire::checksum::data(&pkt);
            pkt[10..12].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            pkt.extend_from_slice(&[0x60, 0, 0, 0]);
            pkt.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            pkt.extend_from_slice(&[253, 64]);
            pkt.extend_from_slice(&a.octets());
            pkt.extend_from_slice(&b.octets());
        }
        _ => return Ok(()),
    }
    pkt.extend_from_slice(payload);
    let mut eng = Engine::new();
    let mut buf = PacketBuf::from_packet(&pkt);
    if eng.outbound(&mut tx, &[out_id], &mut buf, 0).is_err() {
        return Err("outbound refused a well-formed packet");
    }
    if eng.inbound(&mut rx, &mut buf, 0).is_err() {
        return Err("inbound refused our own packet");
    }
    if buf.data() != pkt.as_slice() {
        return Err("round trip changed the packet");
    }
    Ok(())
}

/// Valid packets for every SA of [`fuzz_sadb`] (built by the same table, outbound), as seeds for
/// the inbound target.
pub fn inbound_seeds() -> Vec<Vec<u8>> {
    let mut tx = fuzz_sadb();
    let mut eng = Engine::new();
    let ids: Vec<_> = tx
        .iter()
        .map(|(id, sa)| (id, sa.config().mode, sa.config().dst))
        .collect();
    let mut out = Vec::new();
    for (id, mode, dst) in ids {
        let inner_src = match (mode, dst.is_ipv4()) {
            (Mode::Tunnel, true) => [10, 1, 2, 3],
            _ => [192, 0, 2, 1],
        };
        let pkt: Vec<u8> = if dst.is_ipv4() {
            let dst4 = match (mode, dst) {
                (Mode::Tunnel, _) => [10, 9, 9, 9],
                (_, IpAddr::V4(d)) => d.octets(),
                _ => [0; 4],
            };
            let mut p = vec![0x45, 0, 0, 36, 0, 7, 0, 0, 64, 17, 0, 0];
            p.extend_from_slice(&inner_src);
            p.extend_from_slice(&dst4);
            p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
            let c = !ipsec_wire::checksum::data(&p[..20]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
            p
        } else {
            let src: IpAddr = if mode == Mode::Tunnel {
                addr("fd00::5")
            } else {
                addr("2001:db8::1")
            };
            let dst6 = if mode == Mode::Tunnel {
                addr("fd00::9")
            } else {
                dst
            };
            let (IpAddr::V6(s6), IpAddr::V6(d6)) = (src, dst6) else {
                continue;
            };
            let mut p = vec![0x60, 0, 0, 0, 0, 16, 17, 64];
            p.extend_from_slice(&s6.octets());
            p.extend_from_slice(&d6.octets());
            p.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 16, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
            p
        };
        let mut buf = PacketBuf::from_packet(&pkt);
        if eng.outbound(&mut tx, &[id], &mut buf, 0).is_ok() {
            out.push(buf.data().to_vec());
        }
    }
    out
}
