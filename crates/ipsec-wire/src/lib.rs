//! Wire formats for Ironswan: zero-copy packet views and owned representations.
//!
//! This crate is the bottom layer of the stack. It knows how bytes are laid out on the wire
//! and nothing else: it keeps no state, opens no sockets, reads no clock and never allocates.
//!
//! ```text
//!   untrusted bytes ──► XxxPacket::new_checked(&[u8]) ──► getters / iterators (never panic)
//!                                    │
//!                                    └──► XxxRepr::parse(&packet) ──► validated owned value
//!                                                                        │
//!   caller buffer  ◄── XxxRepr::emit(&mut XxxPacket::new_unchecked(&mut buf)) ◄─┘
//! ```
//!
//! Every format follows the smoltcp pattern:
//!
//! * `XxxPacket<T: AsRef<[u8]>>` is a view over a buffer with `new_unchecked`, `new_checked`,
//!   `check_len`, `into_inner`, field getters and (for `T: AsMut<[u8]>`) setters. Field offsets
//!   are public in each module's `field` submodule (e.g. [`ipv4::field::PROTOCOL`]).
//! * `XxxRepr` is the owned, validated form with `parse`, `emit` and `buffer_len`.
//! * `Display` for each packet prints a one-line tcpdump-like summary.
//!
//! Guarantees: malformed input always yields an [`Error`], never a panic. All field getters
//! are bounds-checked (a short buffer reads as zero / empty), so even views built with
//! `new_unchecked` do not panic; `check_len` is what makes the values meaningful. `emit`
//! returns an error instead of panicking when the target buffer is too small.
//!
//! Modules: [`checksum`] (RFC 1071/1624), [`ip`] (version dispatch, protocol numbers),
//! [`ipv4`] (+ options, RFC 4302 mutability), [`ipv6`] (+ extension headers, options,
//! routing, fragment, chain walker), [`udp`], [`udpencap`] (RFC 3948), [`icmpv4`],
//! [`icmpv6`], [`esp`] (RFC 4303), [`ah`] (RFC 4302).
//!
//! Not here: PF_KEY and IKEv2 messages, reassembly, any crypto, IPv6 jumbograms.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod ah;
pub mod checksum;
mod error;
pub mod esp;
#[doc(hidden)]
pub mod fuzz_support;
pub mod icmpv4;
pub mod icmpv6;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod udp;
pub mod udpencap;

#[cfg(test)]
mod tests;

pub use ah::{AhPacket, AhRepr};
pub use error::{Error, Result};
pub use esp::{EspPacket, EspRepr, EspTrailer};
pub use icmpv4::{Icmpv4Packet, Icmpv4Repr};
pub use icmpv6::{Icmpv6Packet, Icmpv6Repr};
pub use ip::{protocol, IpPacket, IpRepr, IpVersion, UpperLayer};
pub use ipv4::{Ipv4Option, Ipv4OptionIter, Ipv4Options, Ipv4Packet, Ipv4Repr};
pub use ipv6::{
    ExtHeader, ExtHeaderInfo, ExtHeaderIter, FragmentHeader, FragmentRepr, Ipv6Option,
    Ipv6OptionIter, Ipv6Packet, Ipv6Repr, RoutingHeader,
};
pub use udp::{UdpPacket, UdpRepr};
pub use udpencap::UdpEncapPayload;

/// A byte range of a fixed-position field.
pub(crate) type Field = core::ops::Range<usize>;
/// A field from an offset to the end of the header or buffer.
pub(crate) type Rest = core::ops::RangeFrom<usize>;

/// Bounds-checked big-endian reads and writes used by all views.
///
/// Reads out of range yield zero (or an empty slice) and writes out of range are ignored, so
/// no accessor can panic; `check_len` is what guarantees the values are meaningful.
pub(crate) mod bytes {
    use core::net::{Ipv4Addr, Ipv6Addr};

    #[inline]
    pub(crate) fn u8_at(b: &[u8], at: usize) -> u8 {
        b.get(at).copied().unwrap_or(0)
    }

    #[inline]
    pub(crate) fn arr<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(s) = at.checked_add(N).and_then(|end| b.get(at..end)) {
            out.copy_from_slice(s);
        }
        out
    }

    #[inline]
    pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_be_bytes(arr(b, at))
    }

    #[inline]
    pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(arr(b, at))
    }

    #[inline]
    pub(crate) fn v4_at(b: &[u8], at: usize) -> Ipv4Addr {
        Ipv4Addr::from(arr::<4>(b, at))
    }

    #[inline]
    pub(crate) fn v6_at(b: &[u8], at: usize) -> Ipv6Addr {
        Ipv6Addr::from(arr::<16>(b, at))
    }

    /// `b[start..end]`, or an empty slice when out of range or reversed.
    #[inline]
    pub(crate) fn slice(b: &[u8], start: usize, end: usize) -> &[u8] {
        b.get(start..end).unwrap_or(&[])
    }

    /// `b[start..]`, or an empty slice when out of range.
    #[inline]
    pub(crate) fn tail(b: &[u8], start: usize) -> &[u8] {
        b.get(start..).unwrap_or(&[])
    }

    #[inline]
    pub(crate) fn slice_mut(b: &mut [u8], start: usize, end: usize) -> &mut [u8] {
        b.get_mut(start..end).unwrap_or(&mut [])
    }

    #[inline]
    pub(crate) fn tail_mut(b: &mut [u8], start: usize) -> &mut [u8] {
        b.get_mut(start..).unwrap_or(&mut [])
    }

    #[inline]
    pub(crate) fn set_u8(b: &mut [u8], at: usize, v: u8) {
        if let Some(x) = b.get_mut(at) {
            *x = v;
        }
    }

    #[inline]
    pub(crate) fn set_arr(b: &mut [u8], at: usize, v: &[u8]) {
        if let Some(s) = at.checked_add(v.len()).and_then(|end| b.get_mut(at..end)) {
            s.copy_from_slice(v);
        }
    }

    #[inline]
    pub(crate) fn set_u16(b: &mut [u8], at: usize, v: u16) {
        set_arr(b, at, &v.to_be_bytes());
    }

    #[inline]
    pub(crate) fn set_u32(b: &mut [u8], at: usize, v: u32) {
        set_arr(b, at, &v.to_be_bytes());
    }
}

/// Checks that `buf` holds at least `len` bytes, for `emit`.
#[inline]
pub(crate) fn need(buf: &[u8], len: usize) -> Result<()> {
    if buf.len() < len {
        Err(Error::Truncated)
    } else {
        Ok(())
    }
}
