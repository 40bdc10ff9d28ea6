//! Authentication Header (RFC 4302 §2).
//!
//! ```text
//! | Next Header | Payload Len | Reserved (2) |
//! | Security Parameters Index (4)            |
//! | Sequence Number (4)                      |
//! | Integrity Check Value (variable, incl. any IV and padding) |
//! ```
//!
//! Payload Len is the header length in 32-bit words minus 2. The whole header must be a
//! multiple of 4 bytes over IPv4 and of 8 bytes over IPv6 (RFC 4302 §2.2, §3.3.3.2.1).

use core::fmt;

use crate::bytes::{self, set_u16, set_u32, set_u8, u16_at, u32_at, u8_at};
use crate::ip::{self, IpVersion};
use crate::{need, Error, Result};

/// Byte offsets of the AH fields.
pub mod field {
    use crate::{Field, Rest};
    /// Next header.
    pub const NXT_HDR: usize = 0;
    /// Payload length (32-bit words − 2).
    pub const PAYLOAD_LEN: usize = 1;
    /// Reserved (zero).
    pub const RESERVED: Field = 2..4;
    /// Security Parameters Index.
    pub const SPI: Field = 4..8;
    /// Sequence number (low 32 bits with ESN).
    pub const SEQ: Field = 8..12;
    /// Integrity Check Value (up to the header length).
    pub const ICV: Rest = 12..;
}

/// Length of the fixed part of AH (before the ICV).
pub const HEADER_LEN: usize = 12;
/// Largest AH header (Payload Len 255).
pub const MAX_HEADER_LEN: usize = (255 + 2) * 4;

/// The AH length for an ICV of `icv_len` bytes preceded by `iv_len` bytes of IV (e.g. 8 for
/// AES-GMAC, RFC 4543; 0 otherwise), padded to 4 bytes for IPv4 or 8 for IPv6.
/// Errors if it would exceed [`MAX_HEADER_LEN`] ([`Error::BadHeaderLength`]).
pub fn header_len_for(icv_len: usize, iv_len: usize, version: IpVersion) -> Result<usize> {
    let align = match version {
        IpVersion::V4 => 4,
        IpVersion::V6 => 8,
    };
    let raw = HEADER_LEN
        .checked_add(icv_len)
        .and_then(|x| x.checked_add(iv_len))
        .ok_or(Error::BadHeaderLength)?;
    let padded = raw.div_ceil(align) * align;
    if padded > MAX_HEADER_LEN {
        return Err(Error::BadHeaderLength);
    }
    Ok(padded)
}

/// The length of the variable ICV field (IV + ICV + padding) for [`AhRepr::icv_len`]:
/// `header_len_for(..) - 12`.
pub fn icv_field_len(icv_len: usize, iv_len: usize, version: IpVersion) -> Result<usize> {
    Ok(header_len_for(icv_len, iv_len, version)? - HEADER_LEN)
}

/// A zero-copy view of an Authentication Header and what follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> AhPacket<T> {
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

    /// Buffer ≥ 12, Payload Len ≥ 1 (header ≥ 12 bytes, [`Error::BadHeaderLength`]), buffer ≥
    /// header length. The IP-version alignment is checked by
    /// [`check_alignment`](Self::check_alignment).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if self.header_len() < HEADER_LEN {
            return Err(Error::BadHeaderLength);
        }
        if len < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Over IPv6 the header length must be a multiple of 8 ([`Error::BadHeaderLength`]).
    pub fn check_alignment(&self, version: IpVersion) -> Result<()> {
        match version {
            IpVersion::V6 if self.header_len() % 8 != 0 => Err(Error::BadHeaderLength),
            _ => Ok(()),
        }
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole buffer.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Next header.
    pub fn next_header(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::NXT_HDR)
    }

    /// Raw Payload Len field (32-bit words − 2).
    pub fn payload_len(&self) -> u8 {
        u8_at(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// Header length in bytes, `(payload_len + 2) * 4` (8..=1028).
    pub fn header_len(&self) -> usize {
        (usize::from(self.payload_len()) + 2) * 4
    }

    /// Reserved field.
    pub fn reserved(&self) -> u16 {
        u16_at(self.buffer.as_ref(), field::RESERVED.start)
    }

    /// Security Parameters Index.
    pub fn spi(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::SPI.start)
    }

    /// Sequence number (low 32 bits).
    pub fn seq_no(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::SEQ.start)
    }

    /// The ICV field (`12..header_len`: IV if any, ICV, padding).
    pub fn icv(&self) -> &[u8] {
        bytes::slice(self.buffer.as_ref(), HEADER_LEN, self.header_len())
    }

    /// The header bytes (`0..header_len`).
    pub fn header(&self) -> &[u8] {
        bytes::slice(self.buffer.as_ref(), 0, self.header_len())
    }

    /// What follows the header.
    pub fn payload(&self) -> &[u8] {
        bytes::tail(self.buffer.as_ref(), self.header_len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> AhPacket<T> {
    /// Sets the next header.
    pub fn set_next_header(&mut self, nh: u8) {
        set_u8(self.buffer.as_mut(), field::NXT_HDR, nh);
    }

    /// Sets the raw Payload Len field.
    pub fn set_payload_len(&mut self, v: u8) {
        set_u8(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }

    /// Sets the header length in bytes (a multiple of 4 in 12..=1028).
    pub fn set_header_len(&mut self, len: usize) -> Result<()> {
        if len % 4 != 0 || !(HEADER_LEN..=MAX_HEADER_LEN).contains(&len) {
            return Err(Error::BadHeaderLength);
        }
        let raw = u8::try_from(len / 4 - 2).map_err(|_| Error::BadHeaderLength)?;
        self.set_payload_len(raw);
        Ok(())
    }

    /// Sets the reserved field.
    pub fn set_reserved(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), field::RESERVED.start, v);
    }

    /// Sets the SPI.
    pub fn set_spi(&mut self, spi: u32) {
        set_u32(self.buffer.as_mut(), field::SPI.start, spi);
    }

    /// Sets the sequence number.
    pub fn set_seq_no(&mut self, seq: u32) {
        set_u32(self.buffer.as_mut(), field::SEQ.start, seq);
    }

    /// Mutable ICV field.
    pub fn icv_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        bytes::slice_mut(self.buffer.as_mut(), HEADER_LEN, end)
    }

    /// Zeroes the ICV field (as the ICV computation requires).
    pub fn clear_icv(&mut self) {
        self.icv_mut().fill(0);
    }

    /// Mutable bytes after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        bytes::tail_mut(self.buffer.as_mut(), hl)
    }
}

/// An owned Authentication Header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AhRepr {
    /// Next header.
    pub next_header: u8,
    /// Security Parameters Index (never 0 on the wire).
    pub spi: u32,
    /// Sequence number (low 32 bits).
    pub seq: u32,
    /// Length of the whole variable ICV field on the wire: IV (if any) + ICV + padding.
    /// `12 + icv_len` is the header length; see [`icv_field_len`].
    pub icv_len: usize,
}

impl AhRepr {
    /// Parses the header, checking the alignment for `version` and rejecting SPI 0
    /// ([`Error::Malformed`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &AhPacket<T>, version: IpVersion) -> Result<Self> {
        packet.check_len()?;
        packet.check_alignment(version)?;
        if packet.spi() == 0 {
            return Err(Error::Malformed);
        }
        Ok(Self {
            next_header: packet.next_header(),
            spi: packet.spi(),
            seq: packet.seq_no(),
            icv_len: packet.header_len() - HEADER_LEN,
        })
    }

    /// Header length: 12 + `icv_len`.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN + self.icv_len
    }

    /// Writes the header with a zeroed ICV field. Errors: buffer too short
    /// ([`Error::Truncated`]); length not a multiple of 4 or over 1028
    /// ([`Error::BadHeaderLength`]).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut AhPacket<T>) -> Result<()> {
        let len = HEADER_LEN
            .checked_add(self.icv_len)
            .ok_or(Error::BadHeaderLength)?;
        need(packet.as_bytes(), len)?;
        packet.set_header_len(len)?;
        packet.set_next_header(self.next_header);
        packet.set_reserved(0);
        packet.set_spi(self.spi);
        packet.set_seq_no(self.seq);
        packet.clear_icv();
        Ok(())
    }
}

impl<T: AsRef<[u8]>> fmt::Display for AhPacket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Err(e) = self.check_len() {
            return write!(f, "AH [{e}]");
        }
        write!(
            f,
            "AH(spi=0x{:08x},seq=0x{:x},sumlen={}): ",
            self.spi(),
            self.seq_no(),
            self.icv().len()
        )?;
        ip::fmt_protocol(f, self.next_header())
    }
}
