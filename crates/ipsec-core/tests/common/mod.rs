//! Shared helpers for the engine tests: packet builders and an algorithm matrix.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::IpAddr;

use ipsec_core::{KeyMaterial, Mode, NatT, Proto, SaConfig};
use ipsec_crypto::{AuthAlg, EncrAlg};

pub fn csum(data: &[u8]) -> u16 {
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

fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            v.extend_from_slice(&s.octets());
            v.extend_from_slice(&d.octets());
            v.push(0);
            v.push(proto);
            v.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            v.extend_from_slice(&s.octets());
            v.extend_from_slice(&d.octets());
            v.extend_from_slice(&(len as u32).to_be_bytes());
            v.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("mixed families"),
    }
    v
}

/// An IP packet with a UDP payload of `n` bytes (pattern-filled), correct checksums.
pub fn udp_packet(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, n: usize) -> Vec<u8> {
    let payload: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
    let mut udp = Vec::new();
    udp.extend_from_slice(&sport.to_be_bytes());
    udp.extend_from_slice(&dport.to_be_bytes());
    udp.extend_from_slice(&((8 + n) as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&payload);
    let mut ps = pseudo(src, dst, 17, udp.len());
    ps.extend_from_slice(&udp);
    let mut c = csum(&ps);
    if c == 0 {
        c = 0xffff;
    }
    udp[6..8].copy_from_slice(&c.to_be_bytes());
    ip_packet(src, dst, 17, &udp)
}

/// An IP header (no options / no extension headers) around `payload`.
pub fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&[0x45, 0x00]);
            p.extend_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
            p.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            let c = csum(&p);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&[0x60, 0, 0, 0]);
            p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            p.push(proto);
            p.push(64);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
    p.extend_from_slice(payload);
    p
}

pub fn key(n: usize, seed: u8) -> KeyMaterial {
    KeyMaterial::new(
        &(0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<_>>(),
    )
}

/// (encryption, encryption key bytes incl. salt, authentication, auth key bytes)
pub fn esp_matrix() -> Vec<(EncrAlg, usize, Option<AuthAlg>, usize)> {
    use EncrAlg::*;
    vec![
        (AesGcm16, 20, None, 0),
        (AesGcm16, 36, None, 0),
        (AesGcm12, 20, None, 0),
        (AesGcm8, 28, None, 0),
        (AesCcm16, 19, None, 0),
        (AesCcm12, 27, None, 0),
        (AesCcm8, 35, None, 0),
        (ChaCha20Poly1305, 36, None, 0),
        (AesNullGmac, 20, None, 0),
        (AesCbc, 16, Some(AuthAlg::HmacSha256), 32),
        (AesCbc, 24, Some(AuthAlg::HmacSha384), 48),
        (AesCbc, 32, Some(AuthAlg::HmacSha512), 64),
        (AesCbc, 16, Some(AuthAlg::HmacSha1), 20),
        (AesCbc, 16, Some(AuthAlg::AesXcbcMac), 16),
        (AesCbc, 16, Some(AuthAlg::AesCmac), 16),
        (AesCtr, 20, Some(AuthAlg::HmacSha256), 32),
        (AesCtr, 36, Some(AuthAlg::HmacSha1), 20),
        (TripleDesCbc, 24, Some(AuthAlg::HmacSha1), 20),
        (BlowfishCbc, 16, Some(AuthAlg::HmacSha256), 32),
        (CamelliaCbc, 16, Some(AuthAlg::HmacSha256), 32),
        (CamelliaCbc, 32, Some(AuthAlg::HmacSha512), 64),
        (Null, 0, Some(AuthAlg::HmacSha256), 32),
        (DesCbc, 8, Some(AuthAlg::HmacMd5), 16),
        (AesCbc, 16, None, 0),
    ]
}

pub fn ah_matrix() -> Vec<(AuthAlg, usize)> {
    use AuthAlg::*;
    vec![
        (HmacMd5, 16),
        (HmacSha1, 20),
        (HmacSha256, 32),
        (HmacSha384, 48),
        (HmacSha512, 64),
        (AesXcbcMac, 16),
        (AesCmac, 16),
        (AesGmac128, 20),
        (AesGmac256, 36),
    ]
}

pub fn v4(a: &str) -> IpAddr {
    a.parse().unwrap()
}

/// A pair of configs, one per direction is not needed: the same SA config is installed in a
/// sender SADB and a receiver SADB.
#[allow(clippy::too_many_arguments)]
pub fn esp_cfg(
    encr: EncrAlg,
    ekey: usize,
    auth: Option<AuthAlg>,
    akey: usize,
    src: IpAddr,
    dst: IpAddr,
    mode: Mode,
    esn: bool,
    natt: bool,
) -> SaConfig {
    let mut c = SaConfig::new(Proto::Esp, 0x1000, Some(src), dst);
    c.encr_alg = Some(encr);
    c.encr_key = key(ekey, 1);
    c.auth_alg = auth;
    c.auth_key = key(akey, 2);
    c.mode = mode;
    c.esn = esn;
    c.replay_window = 64;
    c.allow_legacy = true;
    if natt {
        c.natt = Some(NatT {
            local_port: 4500,
            remote_port: 4500,
            local_addr: None,
            remote_addr: None,
            local_behind_nat: false,
            remote_behind_nat: false,
        });
    }
    c
}

pub fn ah_cfg(
    auth: AuthAlg,
    akey: usize,
    src: IpAddr,
    dst: IpAddr,
    mode: Mode,
    esn: bool,
) -> SaConfig {
    let mut c = SaConfig::new(Proto::Ah, 0x2000, Some(src), dst);
    c.auth_alg = Some(auth);
    c.auth_key = key(akey, 3);
    c.mode = mode;
    c.esn = esn;
    c.replay_window = 64;
    c.allow_legacy = true;
    c
}
