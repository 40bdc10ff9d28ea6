//! UDP header (RFC 768) with the IPv4/IPv6 pseudo-header checksum.
//!
//! Checksum rules: over IPv4 a zero checksum means "none" and always verifies (RFC 768; NAT-T
//! sends zero, RFC 3948 §2.1); over IPv6 a zero checksum is invalid (RFC 8200 §8.1). A
//! computed checksum of zero is sent as `0xffff`.

use core::fmt;
use core::net::IpAddr;

use crate::bytes::{self, set_u16, u16_at};
use crate::{checksum, ip, need, Error, Result};

/// Byte offsets of the UDP header fields.
pub mod field {
    use crate::{Field, Rest};
    /// Source port.
    pub const SRC_PORT: Field = 0..2;
    /// Destination port.
    pub const DST_PORT: Field = 2..4;
    /// Length (header + payload).
    pub const LENGTH: Field = 4..6;
    /// Checksum.
    pub const CHECKSUM: Field = 6..8;
    /// Payload.
    pub const PAYLOAD: Rest = 8..;
}

/// UDP header length.
pub const HEADER_LEN: usize = 8;

/// A zero-copy view of a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps untrusted bytes after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Buffer ≥ 8, length field ≥ 8 ([`Error::BadTotalLength`]), buffer ≥ length field.
    /// The buffer may be longer; [`payload`](Self::payload) stops at the length field.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = usize::from(self.len());
        if l < HEADER_LEN {
            return Err(Error::BadTotalLength);
        }
        if len < l {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole buffer.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// Length field (header + payload).
    pub fn len(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// True when the length field says there is no payload.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The datagram (`0..length`).
    pub fn datagram(&self) -> &[u8] {
        bytes::slice(self.buffer.as_ref(), 0, usize::from(self.len()))
    }

    /// The payload (`8..length`).
    pub fn payload(&self) -> &[u8] {
        bytes::slice(self.buffer.as_ref(), HEADER_LEN, usize::from(self.len()))
    }

    /// Verifies the checksum with the pseudo-header of `src`/`dst`. IPv4 zero = no checksum
    /// (true); IPv6 zero = invalid (false).
    pub fn verify_checksum(&self, src: &IpAddr, dst: &IpAddr) -> bool {
        if self.checksum() == 0 {
            return matches!(src, IpAddr::V4(_));
        }
        let dg = self.datagram();
        let Ok(len) = u32::try_from(dg.len()) else {
            return false;
        };
        let sum = checksum::combine(&[
            checksum::pseudo_header(src, dst, ip::protocol::UDP, len),
            checksum::data(dg),
        ]);
        sum == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, p: u16) {
        set_u16(self.buffer.as_mut(), field::SRC_PORT.start, p);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, p: u16) {
        set_u16(self.buffer.as_mut(), field::DST_PORT.start, p);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, l: u16) {
        set_u16(self.buffer.as_mut(), field::LENGTH.start, l);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, c: u16) {
        set_u16(self.buffer.as_mut(), field::CHECKSUM.start, c);
    }

    /// Sets the checksum to zero ("no checksum", IPv4 only).
    pub fn clear_checksum(&mut self) {
        self.set_checksum(0);
    }

    /// Computes and stores the checksum over `0..length` with the pseudo-header (a zero
    /// result is stored as `0xffff`).
    pub fn fill_checksum(&mut self, src: &IpAddr, dst: &IpAddr) {
        self.set_checksum(0);
        let dg = self.datagram();
        let len = u32::try_from(dg.len()).unwrap_or(u32::MAX);
        let sum = checksum::combine(&[
            checksum::pseudo_header(src, dst, ip::protocol::UDP, len),
            checksum::data(dg),
        ]);
        let c = !sum;
        self.set_checksum(if c == 0 { 0xffff } else { c });
    }

    /// Mutable payload (`8..length`).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        bytes::slice_mut(self.buffer.as_mut(), HEADER_LEN, end)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> UdpPacket<&'a T> {
    /// The payload with the lifetime of the underlying buffer.
    pub fn payload_ref(&self) -> &'a [u8] {
        let b: &'a [u8] = self.buffer.as_ref();
        bytes::slice(b, HEADER_LEN, usize::from(u16_at(b, field::LENGTH.start)))
    }
}

/// An owned UDP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Payload length (length field − 8).
    pub payload_len: usize,
}

impl UdpRepr {
    /// Parses and verifies the checksum against the pseudo-header ([`Error::BadChecksum`]).
    pub fn parse<T: AsRef<[u8]>>(
        packet: &UdpPacket<T>,
        src: &IpAddr,
        dst: &IpAddr,
    ) -> Result<Self> {
        let r = Self::parse_ignoring_checksum(packet)?;
        if !packet.verify_checksum(src, dst) {
            return Err(Error::BadChecksum);
        }
        Ok(r)
    }

    /// Parses without verifying the checksum.
    pub fn parse_ignoring_checksum<T: AsRef<[u8]>>(packet: &UdpPacket<T>) -> Result<Self> {
        packet.check_len()?;
        Ok(Self {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            payload_len: usize::from(packet.len()).saturating_sub(HEADER_LEN),
        })
    }

    /// 8.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes ports and length with a zero checksum. After writing the payload, call
    /// [`UdpPacket::fill_checksum`] (required for IPv6). Errors: buffer < 8, or length over
    /// 65535 ([`Error::BadTotalLength`]).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut UdpPacket<T>) -> Result<()> {
        need(packet.as_bytes(), HEADER_LEN)?;
        let len = self
            .payload_len
            .checked_add(HEADER_LEN)
            .and_then(|l| u16::try_from(l).ok())
            .ok_or(Error::BadTotalLength)?;
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.set_checksum(0);
        Ok(())
    }
}

impl<T: AsRef<[u8]>> fmt::Display for UdpPacket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Err(e) = self.check_len() {
            return write!(f, "UDP [{e}]");
        }
        write!(
            f,
            "UDP {} > {}, length {}",
            self.src_port(),
            self.dst_port(),
            usize::from(self.len()).saturating_sub(HEADER_LEN)
        )
    }
}
