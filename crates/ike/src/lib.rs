//! Ironswan's sans-IO IKEv2 core (RFC 7296).
//!
//! This crate holds what an IKEv2 daemon computes, with no sockets, threads or clock
//! reads: time and randomness are inputs supplied by the caller.
//!
//! ```text
//!   UDP datagram ──> wire::Message::parse ──> header + payloads (SK still sealed)
//!                                                 │
//!                     sk::SkCipher::open  <───────┘   (keys from keys::IkeKeys)
//!                                                 │
//!                     wire::parse_chain   ──> inner payloads ──> sa::* state ──> Step
//!
//!   dh::KeyShare (random in) ──> g^ir ──> keys::IkeKeys::derive (prf, prf+, §2.14)
//!                                           └─> keys::child_keys (§2.17)
//! ```
//!
//! * [`wire`]: every RFC 7296 payload and the RFC 7383 fragment payload; zero-copy
//!   parsing with errors that name the structure and offset, and emission.
//! * [`prf`]: PRF_HMAC_SHA2_256/384/512 and prf+ (§2.13).
//! * [`keys`]: SKEYSEED and the seven IKE SA keys (§2.14), rekeyed SKEYSEED (§2.18) and
//!   Child SA KEYMAT (§2.17).
//! * [`dh`]: key exchange groups 14 (MODP 2048), 19 and 20 (ECP 256/384) and 31
//!   (Curve25519) with the RFC 6989 checks of every peer public value.
//! * [`sk`]: the Encrypted payload (§3.14) with AES-GCM-16 (RFC 5282), AES-CBC with
//!   HMAC-SHA2 (RFC 4868) and ChaCha20-Poly1305 (RFC 7634), and its fragmented form
//!   (RFC 7383): splitting into Encrypted Fragment messages and bounded reassembly of
//!   authenticated fragments.
//! * [`sa`]: the IKE_SA_INIT and IKE_AUTH exchanges with PSK (§2.15) or certificate
//!   authentication, one type per state, window size 1, initiator retransmission with
//!   exponential back-off, responder answers from its cache; several IKE proposals per
//!   configuration and INVALID_KE_PAYLOAD followed once (§1.2); cookies (§2.6), NAT
//!   detection (§2.23), USE_TRANSPORT_MODE, INITIAL_CONTACT; on the established SA,
//!   INFORMATIONAL (liveness, delete) and CREATE_CHILD_SA (new Child SAs, Child SA
//!   rekeying with optional PFS, IKE SA rekeying).
//! * [`ts`]: traffic-selector narrowing (§2.9).
//! * [`cert`]: certificate authentication: RFC 7427 signatures (RSA PKCS#1 v1.5 and
//!   PSS, ECDSA P-256/P-384) and the classic ECDSA methods, SIGNATURE_HASH_ALGORITHMS,
//!   CERT and CERTREQ, X.509 chain validation against trust anchors with `now` as an
//!   input, and the binding of the ID payload to the certificate.
//!
//! Not here (yet): more than one proposal per Child SA, and the daemon (crate ikev2d).
//! The exchanges use IKE fragmentation and settle IKE SA rekey collisions ([`sa`]). IKEv1 is never
//! spoken: [`wire::Header::parse`] reports major version 1 as [`ParseError::IkeV1`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod cert;
pub mod consts;
pub mod dh;
mod error;
pub mod fuzz_support;
pub mod keys;
pub mod prf;
pub mod sa;
pub mod sk;
pub mod ts;
pub mod wire;

pub use error::{CryptoError, EmitError, ParseError};

/// A source of cryptographic randomness supplied by the caller (this crate never reads
/// an RNG itself).
pub trait Random {
    /// Fills `out` with random bytes.
    fn fill(&mut self, out: &mut [u8]);

    /// An SPI the caller reserved for our next inbound Child SA (a daemon allocates it
    /// with PF_KEY GETSPI), handed out at most once: the exchanges use it instead of
    /// drawing one. The default reserves none.
    fn reserved_spi(&mut self) -> Option<[u8; 4]> {
        None
    }
}
