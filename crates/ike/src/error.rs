//! Errors of the message codec.

use core::fmt;

use crate::consts::notify;

/// Why a received IKE message (or payload chain) could not be parsed.
///
/// Every variant is caused by the peer. [`ParseError::notify`] says which error notification
/// RFC 7296 asks for, if any; the state machine decides whether it may be sent (an
/// unauthenticated IKE_SA_INIT request gets it, anything else is a silent drop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseError {
    /// The input ends inside the named field or structure.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Byte offset from the start of the message (or decrypted chain).
        offset: usize,
    },
    /// A length field disagrees with the bytes that hold it.
    BadLength {
        /// Which length.
        what: &'static str,
        /// Byte offset from the start of the message (or decrypted chain).
        offset: usize,
    },
    /// A field holds a value the RFC forbids.
    Invalid {
        /// Which field and what was expected.
        what: &'static str,
        /// Byte offset from the start of the message (or decrypted chain).
        offset: usize,
    },
    /// Major version 1: an IKEv1 (ISAKMP) packet. IKEv1 is not spoken (RFC 9395): such
    /// packets are dropped and counted, never answered.
    IkeV1,
    /// A major version above 2 (answered with INVALID_MAJOR_VERSION, RFC 7296 §2.5).
    UnsupportedMajorVersion(u8),
    /// A payload of a type this implementation does not know, with the critical bit set
    /// (RFC 7296 §2.5: reject the whole message with UNSUPPORTED_CRITICAL_PAYLOAD).
    UnsupportedCritical {
        /// The unknown payload type.
        payload_type: u8,
        /// Byte offset of its generic header.
        offset: usize,
    },
    /// An SK or SKF payload that is not the last payload of the message (RFC 7296 §3.14,
    /// RFC 7383 §2.5), or one nested inside another.
    MisplacedEncrypted {
        /// Byte offset of the payload.
        offset: usize,
    },
}

impl ParseError {
    /// The error notification RFC 7296 asks for, or `None` for a silent drop.
    #[must_use]
    pub fn notify(&self) -> Option<u16> {
        match self {
            Self::IkeV1 => None,
            Self::UnsupportedMajorVersion(_) => Some(notify::INVALID_MAJOR_VERSION),
            Self::UnsupportedCritical { .. } => Some(notify::UNSUPPORTED_CRITICAL_PAYLOAD),
            Self::Truncated { .. }
            | Self::BadLength { .. }
            | Self::Invalid { .. }
            | Self::MisplacedEncrypted { .. } => Some(notify::INVALID_SYNTAX),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { what, offset } => {
                write!(f, "truncated {what} at byte {offset}")
            }
            Self::BadLength { what, offset } => write!(f, "bad {what} at byte {offset}"),
            Self::Invalid { what, offset } => write!(f, "invalid {what} at byte {offset}"),
            Self::IkeV1 => f.write_str("IKEv1 packet (major version 1): not supported"),
            Self::UnsupportedMajorVersion(v) => write!(f, "unsupported IKE major version {v}"),
            Self::UnsupportedCritical {
                payload_type,
                offset,
            } => write!(
                f,
                "unknown critical payload type {payload_type} at byte {offset}"
            ),
            Self::MisplacedEncrypted { offset } => write!(
                f,
                "encrypted payload at byte {offset} is not the last payload of the message"
            ),
        }
    }
}

impl std::error::Error for ParseError {}

/// Why a message could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EmitError {
    /// A payload or substructure is longer than its 16-bit length field allows.
    TooLong(&'static str),
    /// A count does not fit its field (more than 255 proposals, transforms or selectors).
    TooMany(&'static str),
    /// A value that cannot be encoded (e.g. an SK payload that is not last, mismatched
    /// address families in a traffic selector, a TV attribute type above 0x7fff).
    Invalid(&'static str),
}

impl fmt::Display for EmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong(w) => write!(f, "{w} too long for its length field"),
            Self::TooMany(w) => write!(f, "too many {w} for the count field"),
            Self::Invalid(w) => write!(f, "cannot encode {w}"),
        }
    }
}

impl std::error::Error for EmitError {}

/// Why a key derivation, key exchange or SK payload operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// prf+ was asked for more than 255 blocks of output (RFC 7296 §2.13).
    PrfPlusTooLong,
    /// A transform ID this crate does not implement for IKE.
    UnsupportedTransform {
        /// Transform type.
        ty: u8,
        /// Transform ID.
        id: u16,
    },
    /// A key exchange group this crate does not implement.
    UnsupportedGroup(u16),
    /// The peer's public value fails the RFC 6989 / RFC 7296 §3.4 checks (wrong length,
    /// 0, 1, p-1, out of range, not on the curve, or an all-zero X25519 result). Such a
    /// value is rejected before any use.
    InvalidPublicValue(&'static str),
    /// The caller's random bytes do not give a valid private key (wrong length, or a
    /// scalar outside 1..n-1, which happens with probability below 2^-32): draw again.
    BadRandom,
    /// An SK payload that is too short, not a whole number of blocks, or has bad padding.
    Malformed(&'static str),
    /// The SK payload's integrity check (ICV or AEAD tag) failed.
    IntegrityFailed,
    /// The SK payload verified, but its content holds a payload of this unknown type
    /// with the critical bit set: a request is answered with UNSUPPORTED_CRITICAL_PAYLOAD
    /// (RFC 7296 §2.5).
    UnsupportedCritical(u8),
    /// A key or buffer of the wrong size reached the transform layer.
    Transform(ipsec_crypto::CryptoError),
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PrfPlusTooLong => f.write_str("prf+ output longer than 255 blocks"),
            Self::UnsupportedTransform { ty, id } => {
                write!(f, "unsupported transform type {ty} id {id}")
            }
            Self::UnsupportedGroup(g) => write!(f, "unsupported key exchange group {g}"),
            Self::InvalidPublicValue(w) => write!(f, "invalid key exchange public value: {w}"),
            Self::BadRandom => f.write_str("random input does not give a valid private key"),
            Self::Malformed(w) => write!(f, "malformed encrypted payload: {w}"),
            Self::IntegrityFailed => f.write_str("encrypted payload integrity check failed"),
            Self::UnsupportedCritical(t) => write!(f, "unsupported critical payload type {t}"),
            Self::Transform(e) => write!(f, "transform: {e}"),
        }
    }
}

impl std::error::Error for CryptoError {}

impl From<ipsec_crypto::CryptoError> for CryptoError {
    fn from(e: ipsec_crypto::CryptoError) -> Self {
        match e {
            ipsec_crypto::CryptoError::AuthFailed => Self::IntegrityFailed,
            other => Self::Transform(other),
        }
    }
}
