//! The single error type of the wire layer.

use core::fmt;

/// Why bytes could not be understood as (or written as) a packet.
///
/// All variants are caused by the peer (malformed input) except [`Error::Truncated`] returned
/// by `emit`, which means the caller's buffer was too small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The buffer ends before the header or the length it announces.
    Truncated,
    /// The IP version nibble is not the one expected (4 or 6).
    BadVersion,
    /// A header length field is impossible (IPv4 IHL < 5, AH length < 3 words, misaligned AH).
    BadHeaderLength,
    /// A total/payload length field is smaller than the header or otherwise inconsistent.
    BadTotalLength,
    /// A checksum did not verify.
    BadChecksum,
    /// An IPv4 or IPv6 option has a bad length or runs past its header.
    BadOption,
    /// An IPv6 extension header is out of place or inconsistent.
    BadExtensionHeader,
    /// The IPv6 extension header chain is longer than [`crate::ipv6::MAX_EXT_HEADERS`].
    TooManyExtensionHeaders,
    /// Any other field value that is not allowed (reserved SPI, bad pad length, ...).
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Truncated => "truncated packet",
            Self::BadVersion => "bad IP version",
            Self::BadHeaderLength => "bad header length",
            Self::BadTotalLength => "bad total length",
            Self::BadChecksum => "bad checksum",
            Self::BadOption => "bad option",
            Self::BadExtensionHeader => "bad IPv6 extension header",
            Self::TooManyExtensionHeaders => "too many IPv6 extension headers",
            Self::Malformed => "malformed packet",
        };
        f.write_str(s)
    }
}

impl core::error::Error for Error {}

/// Result of wire-layer operations.
pub type Result<T> = core::result::Result<T, Error>;
