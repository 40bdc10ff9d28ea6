//! AH over exactly the immutable fields (RFC 4302 §3.3.3): routers may change the mutable
//! fields (IPv4 TOS, TTL, flags/offset, checksum and mutable options; IPv6 traffic class, flow
//! label, hop limit and options marked "may change en route") without breaking the ICV, while
//! any change to an immutable field is caught.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use ipsec_core::{DropReason, Engine, Mode, PacketBuf, Sadb};
use ipsec_crypto::AuthAlg;

fn v4_with_options() -> Vec<u8> {
    let udp = [0x13, 0x88, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 1, 2, 3, 4];
    let mut p = vec![
        0x48, 0x00, 0, 0, 0xbe, 0xef, 0x00, 0x00, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];
    // Router alert (immutable), record route with one empty slot (mutable), EOL.
    p.extend_from_slice(&[148, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0]);
    p.extend_from_slice(&udp);
    let tl = p.len() as u16;
    p[2..4].copy_from_slice(&tl.to_be_bytes());
    let c = csum(&p[..32]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p
}

fn v6_with_ext() -> Vec<u8> {
    let udp = [0x13, 0x88, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, 1, 2, 3, 4];
    let mut p = vec![0x60, 0, 0, 0, 0, 0, 0, 64];
    p.extend_from_slice(
        &"2001:db8::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    p.extend_from_slice(
        &"2001:db8::2"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    // Hop-by-hop: one option that may change en route (type 0x3e), 4 data bytes.
    p.extend_from_slice(&[43, 0, 0x3e, 4, 0xa, 0xb, 0xc, 0xd]);
    // Routing header type 2 with one segment left (the home address).
    p.extend_from_slice(&[17, 2, 2, 1, 0, 0, 0, 0]);
    p.extend_from_slice(
        &"2001:db8::99"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
    );
    p.extend_from_slice(&udp);
    let pl = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&pl.to_be_bytes());
    p
}

fn setup(src: &str, dst: &str, pkt: &[u8]) -> (Sadb, Vec<u8>) {
    let cfg = ah_cfg(
        AuthAlg::HmacSha256,
        32,
        v4(src),
        v4(dst),
        Mode::Transport,
        false,
    );
    let mut tx = Sadb::new();
    let mut rx = Sadb::new();
    let a = tx.add(cfg.clone(), 0).unwrap();
    rx.add(cfg, 0).unwrap();
    let mut b = PacketBuf::from_packet(pkt);
    Engine::new().outbound(&mut tx, &[a], &mut b, 0).unwrap();
    (rx, b.data().to_vec())
}

fn verdict(rx: &mut Sadb, pkt: &[u8]) -> Result<Vec<u8>, DropReason> {
    let mut b = PacketBuf::from_packet(pkt);
    Engine::new()
        .inbound(rx, &mut b, 0)
        .map(|_| b.data().to_vec())
}

#[test]
fn ipv4_mutable_fields_and_options() {
    let orig = v4_with_options();
    let (mut rx, wire) = setup("10.0.0.1", "10.0.0.2", &orig);
    assert_eq!(wire[9], 51, "AH follows the header with its options");
    assert_eq!(usize::from(wire[0] & 0x0f) * 4, 32);
    // A router changes TOS, TTL, flags, the record-route slot, and the checksum.
    let mut moved = wire.clone();
    moved[1] = 0xb8;
    moved[8] = 61;
    moved[6] = 0x40;
    moved[26..30].copy_from_slice(&[192, 0, 2, 254]);
    moved[25] = 8;
    let c = csum(&{
        let mut h = moved[..32].to_vec();
        h[10] = 0;
        h[11] = 0;
        h
    });
    moved[10..12].copy_from_slice(&c.to_be_bytes());
    let out = verdict(&mut rx, &moved).unwrap();
    assert_eq!(&out[32..], &orig[32..]);
    // The router alert option and the identification are immutable.
    for at in [22usize, 4] {
        let mut bad = wire.clone();
        bad[at] ^= 1;
        let (mut rx2, _) = setup("10.0.0.1", "10.0.0.2", &orig);
        assert_eq!(
            verdict(&mut rx2, &bad).err(),
            Some(DropReason::AhBadAuth),
            "byte {at}"
        );
    }
}

#[test]
fn ipv6_mutable_fields_options_and_routing_header() {
    let orig = v6_with_ext();
    let (mut rx, wire) = setup("2001:db8::1", "2001:db8::2", &orig);
    // AH goes after hop-by-hop and routing headers: the routing header's next header is 51.
    assert_eq!(wire[48], 51);
    let mut moved = wire.clone();
    moved[0] = 0x6b; // traffic class
    moved[1] = 0x8f;
    moved[2] = 0x12; // flow label
    moved[7] = 3; // hop limit
    moved[44..48].copy_from_slice(&[1, 2, 3, 4]); // option data that may change en route
    let out = verdict(&mut rx, &moved).unwrap();
    assert_eq!(&out[80..], &orig[80..]);
    // The routing header's address is immutable (predictable): changing it breaks the ICV.
    let mut bad = wire.clone();
    bad[71] ^= 1;
    let (mut rx2, _) = setup("2001:db8::1", "2001:db8::2", &orig);
    assert_eq!(verdict(&mut rx2, &bad).err(), Some(DropReason::AhBadAuth));
    // And so is the option type of the mutable option.
    let mut bad = wire;
    bad[42] = 0x1e;
    let (mut rx3, _) = setup("2001:db8::1", "2001:db8::2", &orig);
    assert_eq!(verdict(&mut rx3, &bad).err(), Some(DropReason::AhBadAuth));
}

#[test]
fn ah_header_length_must_match_sa() {
    let orig = udp_packet(v4("10.0.0.1"), v4("10.0.0.2"), 1, 2, 20);
    let (mut rx, wire) = setup("10.0.0.1", "10.0.0.2", &orig);
    let mut bad = wire.clone();
    bad[21] += 1; // AH payload length
    assert_eq!(verdict(&mut rx, &bad).err(), Some(DropReason::AhBadLength));
    let short = &wire[..wire.len() - 30];
    let mut s = short.to_vec();
    let l = s.len() as u16;
    s[2..4].copy_from_slice(&l.to_be_bytes());
    assert!(verdict(&mut rx, &s).is_err());
}
