//! Ironswan's cryptographic layer: the IPsec algorithm table and the keyed
//! ESP/AH transforms.
//!
//! ```text
//!   PF_KEY sadb_sa_{encrypt,auth} / IKEv2 transform ID / ipseckey name
//!                          |
//!                          v
//!        encr_by_* / auth_by_*  -->  EncrInfo / AuthInfo   (sizes, RFC 8221 status)
//!                          |
//!   key material --------> EspEncr::new / Integ::new        (length, weak-key, legacy checks)
//!                          |
//!   ipsec-core ESP/AH engine:
//!     make_iv(seq) -> seal(iv, aad, payload||tag room) / open(...)   (in place, no allocation)
//!     Integ::compute(iv, [header parts..], icv) / verify(...)
//! ```
//!
//! This crate does not build or parse packets, pad, count sequence numbers, or
//! hold SAs: that is `ipsec-core`. It reads no clock and no RNG: CBC IVs are
//! derived from the sequence number (see [`EspEncr::make_iv`]).
//!
//! # Backends
//!
//! | transform | backend |
//! |---|---|
//! | AES-GCM-16, ChaCha20-Poly1305 | aws-lc-rs `LessSafeKey` (in place, no allocation) |
//! | AES-GCM-8/12, ENCR_NULL_AUTH_AES_GMAC, AH AES-GMAC | generic GCM over RustCrypto `aes` + `ghash` (multi-part AAD, truncated tags) |
//! | AES-CBC, AES-CTR | aws-lc-rs `cipher` (unpadded, keys precomputed) |
//! | AES-CCM-8/12/16 | RustCrypto `ccm` (nonce = 3-byte salt \|\| 8-byte IV, RFC 4309) |
//! | DES, 3DES, Blowfish, Camellia CBC | RustCrypto block ciphers + `cbc` |
//! | HMAC-SHA-1/256/384/512 | aws-lc-rs `hmac` (precomputed key, cloned per packet) |
//! | HMAC-MD5 | RustCrypto `hmac` + `md-5` |
//! | AES-XCBC-MAC-96 | by hand over `aes` (RFC 3566) |
//! | AES-CMAC-96 | RustCrypto `cmac` (RFC 4494) |
//!
//! # Numbers
//!
//! PF_KEY numbers are the Solaris `SADB_EALG_*` / `SADB_AALG_*` values where
//! Solaris has the algorithm. For the others:
//!
//! | algorithm | PF_KEY | why |
//! |---|---|---|
//! | aes-ctr | 13 | KAME/Linux/OpenBSD `SADB_X_EALG_AESCTR`; unused by Solaris |
//! | camellia-cbc | 22 | KAME/Linux/FreeBSD `SADB_X_EALG_CAMELLIACBC`; unused by Solaris |
//! | chacha20-poly1305 | 240 | OpenBSD uses 22 (our Camellia), FreeBSD 15 and Apple 14 (Solaris AES-CCM); Linux has none: private value |
//! | aes-xcbc-mac (auth) | 240 | KAME/Linux `SADB_X_AALG_AES_XCBC_MAC` is 9 = Solaris aes-gmac128: private value |
//! | aes-cmac (auth) | 241 | no PF_KEY assignment anywhere: private value |
//!
//! IKEv2 IDs are the IANA Transform Type 1 and 3 values.
//!
//! # RFC 8221 status
//!
//! From RFC 8221 §5 and §6; algorithms the RFC does not list are MAY (§8).
//! Two rows of §6 carry two levels; the table keeps one and the other is noted
//! here: AUTH_NONE is MUST with an AEAD cipher and MUST NOT otherwise (kept:
//! `Must` for ESP, `MustNot` for AH, where [`Integ::new`] refuses it), and
//! AUTH_AES_XCBC_96 is SHOULD for IoT and MAY otherwise (kept: `Should`).
//! The §6 table applies to both ESP and AH, so HMAC-MD5-96 is legacy in both.
//! AES-GMAC is MAY, but §6 says it is for AH only; [`Integ::new`] refuses it
//! for ESP with [`CryptoError::NotAllowedHere`].
//!
//! # Names
//!
//! Canonical names and synonyms are those of Solaris `ipsecalgs`; the first
//! name of each Solaris entry is the canonical one (so `aes-gcm` and
//! `aes-ccm` are the 16-octet-ICV variants). Added: `aes-ctr`/`aesctr`,
//! `camellia-cbc`/`camellia`, `chacha20-poly1305`/`chacha20poly1305`,
//! `aes-xcbc-mac`/`aes-xcbc`/`xcbc`, `aes-cmac`/`cmac`, the dashed forms
//! `aes-gcm-8/12/16` and `aes-ccm-8/12/16`, and `hmac-sha2-256/384/512`.
//! Solaris' `any` (algorithm 0 in policy) is a policy keyword, not an
//! algorithm, and is left to the policy parser.
//!
//! # Key hygiene
//!
//! Keys and key schedules are zeroized on drop: RustCrypto ciphers (`aes`,
//! `des`, `blowfish`, `camellia`, `cmac`, `ghash`/`polyval`) are built with their
//! `zeroize` features, salts and derived keys live in `zeroize::Zeroizing`, and
//! aws-lc-rs keys clean up after themselves. The one exception is HMAC-MD5:
//! RustCrypto `hmac` 0.12 + `md-5` 0.10 do not zeroize their precomputed
//! inner/outer states. `Debug` of [`EspEncr`] and [`Integ`] prints the
//! algorithm only.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod encr;
mod error;
mod gcm;
mod integ;
#[doc(hidden)]
pub mod raw;
mod table;
mod weak;
mod xcbc;

pub use encr::EspEncr;
pub use error::CryptoError;
pub use integ::Integ;
pub use table::{
    auth_by_ikev2, auth_by_name, auth_by_pfkey, auth_info, auth_table, encr_by_ikev2, encr_by_name,
    encr_by_pfkey, encr_info, encr_table, AuthAlg, AuthInfo, EncrAlg, EncrInfo, KeyBits, Rfc8221,
};
pub use weak::is_weak_des_key;
