//! The one error type of this crate.

use core::fmt;

/// Everything that can go wrong when keying or running a transform.
///
/// Every failure is reported as a value: no input, however malformed, makes
/// this crate panic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CryptoError {
    /// The key material has the wrong length for the algorithm.
    BadKeyLength {
        /// Human-readable list of the accepted lengths in bits (salt included
        /// where the algorithm has one), e.g. `"160, 224 or 288 (key + 32-bit salt)"`.
        expected_bits: &'static str,
        /// Length of the key material that was given, in bits.
        got_bits: usize,
    },
    /// A weak or semi-weak DES key, or a degenerate 3DES key (K1 == K2 or K2 == K3).
    WeakKey,
    /// The algorithm is RFC 8221 MUST NOT here and `allow_legacy` was not set.
    LegacyNotAllowed,
    /// The algorithm makes no sense in this place (AES-GMAC as an ESP integrity
    /// transform, or no integrity at all for AH).
    NotAllowedHere,
    /// A buffer, IV or ICV has the wrong length (for example CBC data that is not
    /// a multiple of the block size, or a buffer shorter than the ICV).
    BadLength,
    /// The integrity check (AEAD tag or ICV) did not verify.
    AuthFailed,
}

impl fmt::Display for CryptoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadKeyLength {
                expected_bits,
                got_bits,
            } => write!(
                f,
                "bad key length: got {got_bits} bits, expected {expected_bits}"
            ),
            Self::WeakKey => f.write_str("weak or semi-weak DES key"),
            Self::LegacyNotAllowed => {
                f.write_str("legacy algorithm (RFC 8221 MUST NOT) used without allow_legacy")
            }
            Self::NotAllowedHere => f.write_str("algorithm not allowed in this context"),
            Self::BadLength => f.write_str("bad buffer, IV or ICV length"),
            Self::AuthFailed => f.write_str("integrity check failed"),
        }
    }
}

impl std::error::Error for CryptoError {}
