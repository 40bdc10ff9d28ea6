//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Conventions (as in smoltcp): [`data`], [`combine`] and the `pseudo_header*` functions
//! return the *folded one's complement sum*, not yet complemented. The value written into a
//! header is `!combine(&[...])`; a received header verifies when the sum over it (checksum
//! field included) is `0xffff`, see [`verify`].
//!
//! ```
//! use ipsec_wire::checksum;
//! let hdr = [0x45u8, 0, 0, 0x1c, 0, 0, 0, 0, 0x40, 0x11, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
//! let c = checksum::checksum(&hdr);
//! let mut h = hdr;
//! h[10..12].copy_from_slice(&c.to_be_bytes());
//! assert!(checksum::verify(&h));
//! ```

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One's complement addition of two 64-bit words (end-around carry).
#[inline]
fn add64(a: u64, b: u64) -> u64 {
    let (s, carry) = a.overflowing_add(b);
    s + u64::from(carry)
}

/// Folds a 64-bit one's complement accumulator to 16 bits.
#[inline]
fn fold64(mut acc: u64) -> u16 {
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    let mut s = (acc & 0xffff) + (acc >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    // `s` now fits in 16 bits.
    (s & 0xffff) as u16
}

/// The folded one's complement sum of `data` taken as big-endian 16-bit words (an odd last
/// byte is padded with a zero byte). Not complemented.
///
/// The sum is taken over native-endian 32-bit words in four independent 64-bit
/// accumulators (no carries to propagate until 2^32 words, so the loop vectorises), then
/// folded and, on little-endian hosts, byte-swapped: the one's complement sum does not
/// depend on byte order except for that final swap (RFC 1071 §2(B)).
pub fn data(data: &[u8]) -> u16 {
    let mut acc = [0u64; 4];
    let mut chunks = data.chunks_exact(16);
    for c in &mut chunks {
        for (k, a) in acc.iter_mut().enumerate() {
            let w = [c[4 * k], c[4 * k + 1], c[4 * k + 2], c[4 * k + 3]];
            *a += u64::from(u32::from_ne_bytes(w));
        }
    }
    let rest = chunks.remainder();
    let mut tail = [0u8; 16];
    tail[..rest.len()].copy_from_slice(rest);
    for (k, a) in acc.iter_mut().enumerate() {
        let w = [
            tail[4 * k],
            tail[4 * k + 1],
            tail[4 * k + 2],
            tail[4 * k + 3],
        ];
        *a += u64::from(u32::from_ne_bytes(w));
    }
    let total = add64(add64(acc[0], acc[1]), add64(acc[2], acc[3]));
    let folded = fold64(total);
    if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    }
}

/// One's complement sum of several partial sums (each from [`data`] or a pseudo-header).
pub fn combine(checksums: &[u16]) -> u16 {
    let acc = checksums
        .iter()
        .fold(0u64, |acc, &c| add64(acc, u64::from(c)));
    fold64(acc)
}

/// The value to store in a checksum field for `data` (RFC 1071): `!data(data)`.
/// The checksum field inside `data` must be zero when this is computed.
pub fn checksum(bytes: &[u8]) -> u16 {
    !data(bytes)
}

/// True when `bytes`, checksum field included, sums to `0xffff` (the checksum verifies).
pub fn verify(bytes: &[u8]) -> bool {
    data(bytes) == 0xffff
}

/// Pseudo-header sum for IPv4 (RFC 768/793): source, destination, zero, protocol, length.
/// `length` is the upper-layer length (header + data) and must be ≤ 65535 for IPv4.
pub fn pseudo_header_v4(src: &Ipv4Addr, dst: &Ipv4Addr, protocol: u8, length: u32) -> u16 {
    pseudo(&src.octets(), &dst.octets(), protocol, length)
}

/// Pseudo-header sum for IPv6 (RFC 8200 §8.1): source, destination, 32-bit upper-layer
/// length, three zero bytes and next header.
pub fn pseudo_header_v6(src: &Ipv6Addr, dst: &Ipv6Addr, next_header: u8, length: u32) -> u16 {
    pseudo(&src.octets(), &dst.octets(), next_header, length)
}

/// Pseudo-header sum for either family. If the two addresses are of different families
/// (a caller bug) both are taken as IPv6 (IPv4-mapped) so the function never panics.
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: u8, length: u32) -> u16 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => pseudo_header_v4(s, d, protocol, length),
        (IpAddr::V6(s), IpAddr::V6(d)) => pseudo_header_v6(s, d, protocol, length),
        _ => {
            let s = to_v6(src);
            let d = to_v6(dst);
            pseudo_header_v6(&s, &d, protocol, length)
        }
    }
}

fn to_v6(a: &IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => *v6,
    }
}

fn pseudo(src: &[u8], dst: &[u8], protocol: u8, length: u32) -> u16 {
    // The field order of the real pseudo-header does not matter for a one's complement sum,
    // so IPv4 and IPv6 share this code.
    combine(&[
        data(src),
        data(dst),
        u16::from(protocol),
        (length >> 16) as u16,
        (length & 0xffff) as u16,
    ])
}

/// Incremental update of a stored checksum when one 16-bit word changes from `old` to `new`
/// (RFC 1624 eqn. 3: `HC' = ~(~HC + ~m + m')`). Returns the new stored checksum.
pub fn update(checksum: u16, old: u16, new: u16) -> u16 {
    !combine(&[!checksum, !old, new])
}

/// Incremental update for a 32-bit field (e.g. an IPv4 address word).
pub fn update_u32(checksum: u16, old: u32, new: u32) -> u16 {
    !combine(&[
        !checksum,
        !((old >> 16) as u16),
        !((old & 0xffff) as u16),
        (new >> 16) as u16,
        (new & 0xffff) as u16,
    ])
}

/// Incremental update when a field starting at an even offset changes from `old` to `new`
/// (e.g. an IPv6 address, 16 bytes). The slices may differ in length only if the extra
/// bytes of the longer one are also new/removed bytes at the same even alignment.
pub fn update_bytes(checksum: u16, old: &[u8], new: &[u8]) -> u16 {
    !combine(&[!checksum, !data(old), data(new)])
}

#[cfg(test)]
mod test {
    use super::*;

    /// Straightforward RFC 1071 reference implementation.
    fn reference(bytes: &[u8]) -> u16 {
        let mut sum: u32 = 0;
        let mut i = 0;
        while i + 1 < bytes.len() {
            sum += u32::from(u16::from_be_bytes([bytes[i], bytes[i + 1]]));
            i += 2;
        }
        if i < bytes.len() {
            sum += u32::from(bytes[i]) << 8;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 numerical example: 00 01 f2 03 f4 f5 f6 f7 -> sum ddf2.
        let b = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(data(&b), 0xddf2);
        assert_eq!(checksum(&b), !0xddf2);
    }

    #[test]
    fn known_ipv4_header() {
        // Classic example header (Wikipedia "IPv4 header checksum"): checksum b861.
        let h = hex::decode("450000730000400040110000c0a80001c0a800c7").unwrap();
        assert_eq!(checksum(&h), 0xb861);
        let mut h2 = h.clone();
        h2[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert!(verify(&h2));
    }

    #[test]
    fn odd_lengths_and_empty() {
        assert_eq!(data(&[]), 0);
        assert_eq!(data(&[0xab]), 0xab00);
        assert_eq!(data(&[0xab, 0xcd, 0xef]), 0x9ace);
        for n in 0..64 {
            let v: std::vec::Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(data(&v), reference(&v), "len {n}");
        }
    }

    #[test]
    fn all_ones_large() {
        let v = [0xffu8; 4099];
        assert_eq!(data(&v), reference(&v));
    }

    #[test]
    fn pseudo_v4_known() {
        let s = Ipv4Addr::new(192, 168, 0, 1);
        let d = Ipv4Addr::new(192, 168, 0, 199);
        // c0a8 + 0001 + c0a8 + 00c7 + 0011 + 0008
        let expect = reference(&[
            0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7, 0x00, 0x11, 0x00, 0x08,
        ]);
        assert_eq!(pseudo_header_v4(&s, &d, 17, 8), expect);
        assert_eq!(pseudo_header(&IpAddr::V4(s), &IpAddr::V4(d), 17, 8), expect);
    }

    #[test]
    fn pseudo_v6_matches_layout() {
        let s: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut buf = std::vec::Vec::new();
        buf.extend_from_slice(&s.octets());
        buf.extend_from_slice(&d.octets());
        buf.extend_from_slice(&70000u32.to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0, 58]);
        assert_eq!(pseudo_header_v6(&s, &d, 58, 70000), reference(&buf));
    }

    #[test]
    fn mixed_families_do_not_panic() {
        let a = IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4));
        let b = IpAddr::V6(Ipv6Addr::LOCALHOST);
        let _ = pseudo_header(&a, &b, 6, 20);
        let _ = pseudo_header(&b, &a, 6, 20);
    }

    #[test]
    fn incremental_matches_recompute() {
        let mut h = hex::decode("450000730000400040110000c0a80001c0a800c7").unwrap();
        let c = checksum(&h);
        // Change TTL/protocol word 0x4011 -> 0x3f11.
        let c1 = update(c, 0x4011, 0x3f11);
        h[8] = 0x3f;
        assert_eq!(c1, checksum(&h));
        // Change the source address.
        let c2 = update_u32(c1, 0xc0a8_0001, 0x0a00_0001);
        h[12..16].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(c2, checksum(&h));
        let c3 = update_bytes(c2, &[10, 0, 0, 1], &[172, 16, 9, 9]);
        h[12..16].copy_from_slice(&[172, 16, 9, 9]);
        assert_eq!(c3, checksum(&h));
    }

    #[test]
    fn rfc1624_minus_zero_case() {
        // RFC 1624 §4: header sums to 0xcd7a... a change that produces the -0 issue with
        // eqn. 2; eqn. 3 must give 0x0000 rather than 0xffff.
        // HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 yields HC' = 0x0000.
        assert_eq!(update(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn fast_sum_matches_the_plain_definition_at_every_length_and_offset() {
        let mut buf = [0u8; 300];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i * 151 + 7) as u8;
        }
        for start in 0..8 {
            for len in 0..buf.len() - start {
                let d = &buf[start..start + len];
                let (a, b) = (data(d), reference(d));
                // 0x0000 and 0xffff are the same one's complement value.
                assert!(
                    a == b || (a | b) == 0xffff && (a & b) == 0,
                    "len {len}: {a:#x} {b:#x}"
                );
            }
        }
        assert_eq!(data(&[0xff; 4096]), 0xffff);
    }

    proptest::proptest! {
        #[test]
        fn data_matches_reference(v in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            proptest::prop_assert_eq!(data(&v), reference(&v));
        }

        #[test]
        fn update_matches_recompute(
            mut v in proptest::collection::vec(proptest::num::u8::ANY, 2..100),
            idx in 0usize..50,
            new in proptest::num::u16::ANY,
        ) {
            let words = v.len() / 2;
            let i = (idx % words) * 2;
            let old = u16::from_be_bytes([v[i], v[i + 1]]);
            let c = checksum(&v);
            v[i..i + 2].copy_from_slice(&new.to_be_bytes());
            let updated = update(c, old, new);
            // One's complement has two zeros; compare as sums.
            proptest::prop_assert_eq!(combine(&[!updated]), combine(&[!checksum(&v)]));
        }
    }
}
