//! Encapsulating Security Payload (RFC 4303): the cleartext header and the trailer found
//! at the end of the decrypted payload.
//!
//! ```text
//! | SPI (4) | Sequence Number (4) | IV? | Payload ... | Padding (0-255) | Pad Len | Next Hdr | ICV? |
//!   <----- EspPacket ----->               <------------- decrypted: EspTrailer::parse ------->
//! ```
//!
//! The IV and ICV lengths depend on the algorithm and are not known here.

use core::fmt;

use crate::bytes::{self, set_u32, u32_at};
use crate::{ip, need, Error, Result};

/// Byte offsets of the ESP header fields.
pub mod field {
    use crate::{Field, Rest};
    /// Security Parameters Index.
    pub const SPI: Field = 0..4;
    /// Sequence number (low 32 bits with ESN).
    pub const SEQ: Field = 4..8;
    /// IV (if any), encrypted payload, trailer and ICV.
    pub const PAYLOAD: Rest = 8..;
}

/// ESP header length (SPI + sequence number).
pub const HEADER_LEN: usize = 8;
/// Length of Pad Length + Next Header.
pub const TRAILER_LEN: usize = 2;
/// Largest Pad Length.
pub const MAX_PAD_LEN: usize = 255;

/// A zero-copy view of an ESP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EspPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EspPacket<T> {
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

    /// The buffer must hold the 8-byte header.
    pub fn check_len(&self) -> Result<()> {
        need(self.buffer.as_ref(), HEADER_LEN)
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The whole buffer.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Security Parameters Index.
    pub fn spi(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::SPI.start)
    }

    /// Sequence number (low 32 bits).
    pub fn seq_no(&self) -> u32 {
        u32_at(self.buffer.as_ref(), field::SEQ.start)
    }

    /// Everything after the header: IV, ciphertext, ICV.
    pub fn payload(&self) -> &[u8] {
        bytes::tail(self.buffer.as_ref(), HEADER_LEN)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EspPacket<T> {
    /// Sets the SPI.
    pub fn set_spi(&mut self, spi: u32) {
        set_u32(self.buffer.as_mut(), field::SPI.start, spi);
    }

    /// Sets the sequence number.
    pub fn set_seq_no(&mut self, seq: u32) {
        set_u32(self.buffer.as_mut(), field::SEQ.start, seq);
    }

    /// Mutable bytes after the header.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        bytes::tail_mut(self.buffer.as_mut(), HEADER_LEN)
    }
}

impl<'a, T: AsRef<[u8]> + ?Sized> EspPacket<&'a T> {
    /// The payload with the lifetime of the underlying buffer.
    pub fn payload_ref(&self) -> &'a [u8] {
        bytes::tail(self.buffer.as_ref(), HEADER_LEN)
    }
}

/// An owned ESP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspRepr {
    /// Security Parameters Index (never 0 on the wire).
    pub spi: u32,
    /// Sequence number (low 32 bits).
    pub seq: u32,
}

impl EspRepr {
    /// Parses the header. SPI 0 is reserved (RFC 4303 §2.1) and, on port 4500, is the
    /// non-ESP marker: [`Error::Malformed`].
    pub fn parse<T: AsRef<[u8]>>(packet: &EspPacket<T>) -> Result<Self> {
        packet.check_len()?;
        if packet.spi() == 0 {
            return Err(Error::Malformed);
        }
        Ok(Self {
            spi: packet.spi(),
            seq: packet.seq_no(),
        })
    }

    /// 8.
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes SPI and sequence number.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut EspPacket<T>) -> Result<()> {
        packet.check_len()?;
        packet.set_spi(self.spi);
        packet.set_seq_no(self.seq);
        Ok(())
    }
}

/// The ESP trailer of a decrypted payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EspTrailer {
    /// Length of the protected payload before the padding.
    pub payload_len: usize,
    /// Pad Length field.
    pub pad_len: u8,
    /// Next Header field (59 = dummy packet, RFC 4303 §2.6).
    pub next_header: u8,
}

impl EspTrailer {
    /// Reads the trailer at the end of `plaintext` (the decrypted bytes from just after the
    /// IV up to and including Next Header; no ICV).
    ///
    /// Errors: fewer than 2 bytes ([`Error::Truncated`]); Pad Length larger than what
    /// precedes it ([`Error::Malformed`]). Does not check the padding bytes: see
    /// [`padding_is_valid`] and [`EspTrailer::padding`].
    pub fn parse(plaintext: &[u8]) -> Result<Self> {
        let [.., pad_len, next_header] = *plaintext else {
            return Err(Error::Truncated);
        };
        let payload_len = plaintext
            .len()
            .checked_sub(TRAILER_LEN + usize::from(pad_len))
            .ok_or(Error::Malformed)?;
        Ok(Self {
            payload_len,
            pad_len,
            next_header,
        })
    }

    /// Length of padding + Pad Length + Next Header.
    pub const fn len(&self) -> usize {
        self.pad_len as usize + TRAILER_LEN
    }

    /// Never empty (the two fixed bytes); for clippy symmetry with `len`.
    pub const fn is_empty(&self) -> bool {
        false
    }

    /// The padding bytes of `plaintext` (the same slice given to [`parse`](Self::parse)).
    pub fn padding<'a>(&self, plaintext: &'a [u8]) -> &'a [u8] {
        bytes::slice(
            plaintext,
            self.payload_len,
            self.payload_len + usize::from(self.pad_len),
        )
    }

    /// The protected payload of `plaintext`.
    pub fn payload<'a>(&self, plaintext: &'a [u8]) -> &'a [u8] {
        bytes::slice(plaintext, 0, self.payload_len)
    }
}

/// Same as [`EspTrailer::parse`].
pub fn parse_trailer(plaintext: &[u8]) -> Result<EspTrailer> {
    EspTrailer::parse(plaintext)
}

/// True when `pad` is the default padding 1, 2, 3, ... (RFC 4303 §2.4). The empty slice is
/// valid. Runs in time that depends only on the length.
pub fn padding_is_valid(pad: &[u8]) -> bool {
    let diff = pad
        .iter()
        .enumerate()
        .fold(0u8, |acc, (i, &b)| acc | (b ^ ((i + 1) & 0xff) as u8));
    diff == 0 && pad.len() <= MAX_PAD_LEN
}

/// The Pad Length that aligns `payload_len + pad + 2` to `block_size` (0 or 1 for stream
/// ciphers and AEADs) and to 4 bytes (RFC 4303 §2.4). Errors if the alignment would need more
/// than 255 bytes ([`Error::Malformed`]).
pub fn pad_len(payload_len: usize, block_size: usize) -> Result<u8> {
    let b = block_size.max(1);
    let align = if b % 4 == 0 {
        b
    } else if b % 2 == 0 {
        b * 2
    } else {
        b * 4
    };
    let used = (payload_len % align + TRAILER_LEN) % align;
    let pad = (align - used) % align;
    u8::try_from(pad).map_err(|_| Error::Malformed)
}

/// Writes the default padding (1, 2, 3, ...), Pad Length and Next Header into `trailer`,
/// whose length must be `pad_len + 2` with `pad_len ≤ 255`.
pub fn write_trailer(trailer: &mut [u8], next_header: u8) -> Result<()> {
    let pad = trailer
        .len()
        .checked_sub(TRAILER_LEN)
        .ok_or(Error::Truncated)?;
    let pad_u8 = u8::try_from(pad).map_err(|_| Error::Malformed)?;
    for (i, b) in trailer.iter_mut().take(pad).enumerate() {
        *b = ((i + 1) & 0xff) as u8;
    }
    bytes::set_u8(trailer, pad, pad_u8);
    bytes::set_u8(trailer, pad + 1, next_header);
    Ok(())
}

impl<T: AsRef<[u8]>> fmt::Display for EspPacket<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Err(e) = self.check_len() {
            return write!(f, "ESP [{e}]");
        }
        write!(
            f,
            "ESP(spi=0x{:08x},seq=0x{:x}), length {}",
            self.spi(),
            self.seq_no(),
            self.buffer.as_ref().len()
        )
    }
}

impl fmt::Display for EspTrailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ESP trailer: payload {}, pad {}, next ",
            self.payload_len, self.pad_len
        )?;
        match ip::protocol_name(self.next_header) {
            Some(n) => write!(f, "{n} ({})", self.next_header),
            None => write!(f, "{}", self.next_header),
        }
    }
}
