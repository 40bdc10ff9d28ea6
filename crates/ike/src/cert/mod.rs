//! Certificate authentication for IKEv2: RFC 7427 digital signatures (auth method 14)
//! with RSA (PKCS#1 v1.5 and PSS) and ECDSA (P-256, P-384), the classic ECDSA methods
//! 9 and 10 (RFC 4754) and verification of method 1 (RSA with SHA-1, RFC 7296 §3.8);
//! X.509 chain validation against configured trust anchors and the binding of the IKE
//! identity to the certificate.
//!
//! ```text
//!  IKE_SA_INIT   both ways: N(SIGNATURE_HASH_ALGORITHMS) = hashes we verify
//!                response:  CERTREQ = SHA-1(SubjectPublicKeyInfo) of each trust anchor
//!  IKE_AUTH      SK{ ID, CERT (end entity), CERT (intermediates)..., [CERTREQ], AUTH }
//!                AUTH = method 14: len | AlgorithmIdentifier | signature over
//!                       RealMessage | peer's nonce | prf(SK_p, ID')   (RFC 7296 §2.15)
//!  check         chain: end entity -> at most 4 intermediates -> a trust anchor,
//!                each signature, validity at `now`, cA/keyCertSign, pathLen;
//!                end entity key usage allows signing; the ID is the subject (DN) or
//!                one of its subjectAltNames (FQDN, RFC 822 address, IP address)
//! ```
//!
//! Time is an input ([`CertAuth::now`], seconds since 1970). The private key signs with
//! aws-lc-rs, which draws any randomness a signature needs (PSS salt, ECDSA nonce) from
//! its own generator: that is the one place randomness is not a caller's input.
//!
//! Everything X.509 is parsed by the small DER reader of this module ([`Certificate`]):
//! only the fields IKE needs, owned, with unknown critical extensions refused.

use core::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{self as sig, KeyPair as _};
use zeroize::Zeroizing;

use crate::consts::id;
use crate::wire::Id;

mod der;
mod dn;
pub mod store;
mod x509;

pub(crate) use dn::rdns as dn_rdns;
pub use dn::{dn_equal, dn_text, parse_dn};
pub use x509::{key_usage, AltName, Certificate};

use der::{tag, Reader};
use x509::oid;

/// Most intermediate certificates between an end entity and a trust anchor.
pub const MAX_INTERMEDIATES: usize = 4;

/// Why a certificate, key or signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// Not well-formed DER / X.509 / PKCS#8.
    Malformed,
    /// A critical extension we do not process.
    UnsupportedCritical,
    /// A key type, curve or algorithm we do not support.
    Unsupported,
    /// The peer sent no CERT payload with an X.509 certificate.
    NoCertificate,
    /// A certificate of the chain is outside its validity period at `now`.
    OutsideValidity,
    /// The end entity's key usage does not allow signatures.
    KeyUsage,
    /// No chain leads to a configured trust anchor.
    Untrusted,
    /// The ID payload is neither the subject nor a subjectAltName of the certificate.
    IdentityMismatch,
    /// The AUTH signature does not verify.
    BadSignature,
    /// No hash algorithm both sides support for our key.
    NoCommonHash,
    /// The private key does not belong to the certificate.
    KeyMismatch,
    /// More CERT payloads than a chain of [`MAX_INTERMEDIATES`] needs (twice that, plus
    /// the end entity, are looked at; more are refused so that a peer cannot make us
    /// try many signatures).
    TooManyCertificates,
    /// The peer's AUTH method or end-entity key type is not the one the configuration
    /// asks of it ([`PeerAuth`]).
    MethodNotAllowed,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "malformed certificate, key or signature encoding",
            Self::UnsupportedCritical => "certificate has an unsupported critical extension",
            Self::Unsupported => "unsupported key type or signature algorithm",
            Self::NoCertificate => "no X.509 certificate sent",
            Self::OutsideValidity => "certificate outside its validity period",
            Self::KeyUsage => "certificate key usage does not allow signing",
            Self::Untrusted => "certificate does not chain to a trust anchor",
            Self::IdentityMismatch => "identity not in the certificate",
            Self::BadSignature => "signature does not verify",
            Self::NoCommonHash => "no common signature hash algorithm",
            Self::KeyMismatch => "private key does not match the certificate",
            Self::TooManyCertificates => "too many certificates sent",
            Self::MethodNotAllowed => {
                "authentication method or key type not allowed for the peer by auth_method"
            }
        })
    }
}

impl std::error::Error for CertError {}

/// CERT / CERTREQ encoding: X.509 certificate - signature (RFC 7296 §3.6).
pub const ENCODING_X509_SIGNATURE: u8 = 4;

/// Classic authentication methods (RFC 4754) besides those in [`crate::consts::auth`].
pub mod method {
    /// ECDSA with SHA-256 on P-256.
    pub const ECDSA_P256: u8 = 9;
    /// ECDSA with SHA-384 on P-384.
    pub const ECDSA_P384: u8 = 10;
    /// ECDSA with SHA-512 on P-521 (no key of ours; named for [`super::PeerAuth`]).
    pub const ECDSA_P521: u8 = 11;
}

/// What the peer's AUTH payload may be: a configuration's authentication method
/// constrains the peer as well as our own signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PeerAuth {
    /// Any signature we verify, with any key type we know (`auth_method cert`).
    #[default]
    Any,
    /// RSASSA-PKCS1-v1_5 with an RSA key: RFC 7427 with a PKCS#1 v1.5
    /// AlgorithmIdentifier, or the classic RSA digital signature method 1 (`rsa_sig`).
    RsaPkcs1,
    /// RSASSA-PSS with an RSA key, RFC 7427 only (`rsa_pss`).
    RsaPss,
    /// ECDSA with an EC key; with a hash, only that hash: RFC 7427 with the matching
    /// AlgorithmIdentifier or the RFC 4754 method of that hash (9 SHA-256, 10 SHA-384,
    /// 11 SHA-512) (`ecdsa`, `ecdsa_sha256`...).
    Ecdsa(Option<Hash>),
}

impl PeerAuth {
    /// Whether an AUTH payload (`method`, `data`) from a peer whose end-entity key is
    /// `key` is of the allowed kind (checked before the signature itself).
    ///
    /// # Errors
    /// [`CertError::MethodNotAllowed`] when it is not; a malformed RFC 7427
    /// AlgorithmIdentifier as [`SigAlg::from_algorithm_identifier`] reports it.
    pub fn permits(self, key: &PublicKey, method: u8, data: &[u8]) -> Result<(), CertError> {
        use crate::consts::auth;
        if self == Self::Any {
            return Ok(());
        }
        let alg = if method == auth::DIGITAL_SIGNATURE {
            Some(digital_signature_alg(data)?.0)
        } else {
            None
        };
        let rsa = matches!(key, PublicKey::Rsa(_));
        let hash_ok = |want: Option<Hash>, got: Hash| want.is_none_or(|w| w == got);
        let ok = match self {
            Self::Any => true,
            Self::RsaPkcs1 => {
                rsa && (method == auth::RSA_SIG || matches!(alg, Some(SigAlg::RsaPkcs1(_))))
            }
            Self::RsaPss => rsa && matches!(alg, Some(SigAlg::RsaPss(_))),
            Self::Ecdsa(want) => {
                !rsa && match (method, alg) {
                    (_, Some(SigAlg::Ecdsa(h))) => hash_ok(want, h),
                    (method::ECDSA_P256, None) => hash_ok(want, Hash::Sha256),
                    (method::ECDSA_P384, None) => hash_ok(want, Hash::Sha384),
                    (method::ECDSA_P521, None) => hash_ok(want, Hash::Sha512),
                    _ => false,
                }
            }
        };
        if ok {
            Ok(())
        } else {
            Err(CertError::MethodNotAllowed)
        }
    }
}

/// The algorithm and signature of RFC 7427 AUTH data (length, AlgorithmIdentifier,
/// signature value).
fn digital_signature_alg(data: &[u8]) -> Result<(SigAlg, &[u8]), CertError> {
    let (&n, rest) = data.split_first().ok_or(CertError::Malformed)?;
    let n = usize::from(n);
    if rest.len() < n {
        return Err(CertError::Malformed);
    }
    Ok((SigAlg::from_algorithm_identifier(&rest[..n])?, &rest[n..]))
}

/// A hash algorithm of RFC 7427 signatures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hash {
    /// SHA2-256.
    Sha256,
    /// SHA2-384.
    Sha384,
    /// SHA2-512.
    Sha512,
}

impl Hash {
    /// Every hash we support, in our order of preference.
    pub const ALL: [Self; 3] = [Self::Sha256, Self::Sha384, Self::Sha512];

    /// The SIGNATURE_HASH_ALGORITHMS number (RFC 7427 §7, IANA).
    #[must_use]
    pub fn id(self) -> u16 {
        match self {
            Self::Sha256 => 2,
            Self::Sha384 => 3,
            Self::Sha512 => 4,
        }
    }

    fn oid(self) -> &'static [u8] {
        match self {
            Self::Sha256 => oid::SHA256,
            Self::Sha384 => oid::SHA384,
            Self::Sha512 => oid::SHA512,
        }
    }

    fn len(self) -> u8 {
        match self {
            Self::Sha256 => 32,
            Self::Sha384 => 48,
            Self::Sha512 => 64,
        }
    }
}

/// The SIGNATURE_HASH_ALGORITHMS notification data for `hashes`.
#[must_use]
pub fn hash_notify_data(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.id().to_be_bytes()).collect()
}

/// The hash numbers of a SIGNATURE_HASH_ALGORITHMS notification (an odd trailing byte
/// is ignored).
#[must_use]
pub fn parse_hash_notify(data: &[u8]) -> Vec<u16> {
    data.chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect()
}

/// A signature algorithm (X.509 signatures and RFC 7427 AUTH payloads).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigAlg {
    /// RSASSA-PKCS1-v1_5.
    RsaPkcs1(Hash),
    /// RSASSA-PSS with MGF1 of the same hash and a salt of the hash's length.
    RsaPss(Hash),
    /// ECDSA, DER signature value.
    Ecdsa(Hash),
}

impl SigAlg {
    /// The hash.
    #[must_use]
    pub fn hash(self) -> Hash {
        match self {
            Self::RsaPkcs1(h) | Self::RsaPss(h) | Self::Ecdsa(h) => h,
        }
    }

    /// Parses a DER AlgorithmIdentifier.
    ///
    /// # Errors
    /// [`CertError::Unsupported`] for an algorithm outside this enum, including PSS
    /// parameters other than MGF1 with the same hash and a salt of the hash's length.
    pub fn from_algorithm_identifier(der_alg: &[u8]) -> Result<Self, CertError> {
        let mut r = Reader::new(der_alg);
        let mut s = r.sequence()?;
        r.finish()?;
        let o = s.expect(tag::OID)?.value;
        let params = if s.is_empty() { None } else { Some(s.any()?) };
        s.finish()?;
        let null_or_absent = params.is_none_or(|p| p.tag == tag::NULL && p.value.is_empty());
        let alg = match o {
            oid::SHA256_RSA if null_or_absent => Self::RsaPkcs1(Hash::Sha256),
            oid::SHA384_RSA if null_or_absent => Self::RsaPkcs1(Hash::Sha384),
            oid::SHA512_RSA if null_or_absent => Self::RsaPkcs1(Hash::Sha512),
            oid::ECDSA_SHA256 if params.is_none() => Self::Ecdsa(Hash::Sha256),
            oid::ECDSA_SHA384 if params.is_none() => Self::Ecdsa(Hash::Sha384),
            oid::ECDSA_SHA512 if params.is_none() => Self::Ecdsa(Hash::Sha512),
            oid::RSA_PSS => {
                let p = params.ok_or(CertError::Unsupported)?;
                if p.tag != tag::SEQUENCE {
                    return Err(CertError::Malformed);
                }
                Self::RsaPss(pss_hash(p.value)?)
            }
            _ => return Err(CertError::Unsupported),
        };
        Ok(alg)
    }

    /// The DER AlgorithmIdentifier (the forms of RFC 7427 appendix A).
    #[must_use]
    pub fn algorithm_identifier(self) -> Vec<u8> {
        let seq = |parts: &[Vec<u8>]| der::encode(tag::SEQUENCE, &parts.concat());
        let oid_ = |o: &[u8]| der::encode(tag::OID, o);
        let null = || der::encode(tag::NULL, &[]);
        match self {
            Self::RsaPkcs1(h) => seq(&[
                oid_(match h {
                    Hash::Sha256 => oid::SHA256_RSA,
                    Hash::Sha384 => oid::SHA384_RSA,
                    Hash::Sha512 => oid::SHA512_RSA,
                }),
                null(),
            ]),
            Self::Ecdsa(h) => seq(&[oid_(match h {
                Hash::Sha256 => oid::ECDSA_SHA256,
                Hash::Sha384 => oid::ECDSA_SHA384,
                Hash::Sha512 => oid::ECDSA_SHA512,
            })]),
            Self::RsaPss(h) => {
                let hash_alg = seq(&[oid_(h.oid()), null()]);
                let mgf = seq(&[oid_(oid::MGF1), hash_alg.clone()]);
                let params = seq(&[
                    der::encode(0xa0, &hash_alg),
                    der::encode(0xa1, &mgf),
                    der::encode(0xa2, &der::encode(tag::INTEGER, &[h.len()])),
                ]);
                seq(&[oid_(oid::RSA_PSS), params])
            }
        }
    }

    /// Verifies `signature` over `msg` with `key`.
    ///
    /// # Errors
    /// [`CertError::Unsupported`] when the algorithm does not fit the key,
    /// [`CertError::BadSignature`] when the signature is wrong.
    pub fn verify(self, key: &PublicKey, msg: &[u8], signature: &[u8]) -> Result<(), CertError> {
        let alg: &'static dyn sig::VerificationAlgorithm = match (self, key) {
            (Self::RsaPkcs1(h), PublicKey::Rsa(_)) => match h {
                Hash::Sha256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                Hash::Sha384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                Hash::Sha512 => &sig::RSA_PKCS1_2048_8192_SHA512,
            },
            (Self::RsaPss(h), PublicKey::Rsa(_)) => match h {
                Hash::Sha256 => &sig::RSA_PSS_2048_8192_SHA256,
                Hash::Sha384 => &sig::RSA_PSS_2048_8192_SHA384,
                Hash::Sha512 => &sig::RSA_PSS_2048_8192_SHA512,
            },
            (Self::Ecdsa(h), PublicKey::EcP256(_)) => match h {
                Hash::Sha256 => &sig::ECDSA_P256_SHA256_ASN1,
                Hash::Sha384 => &sig::ECDSA_P256_SHA384_ASN1,
                Hash::Sha512 => &sig::ECDSA_P256_SHA512_ASN1,
            },
            (Self::Ecdsa(h), PublicKey::EcP384(_)) => match h {
                Hash::Sha256 => &sig::ECDSA_P384_SHA256_ASN1,
                Hash::Sha384 => &sig::ECDSA_P384_SHA384_ASN1,
                Hash::Sha512 => &sig::ECDSA_P384_SHA512_ASN1,
            },
            _ => return Err(CertError::Unsupported),
        };
        sig::UnparsedPublicKey::new(alg, key.bytes())
            .verify(msg, signature)
            .map_err(|_| CertError::BadSignature)
    }
}

/// The hash of RSASSA-PSS parameters, which must name MGF1 with the same hash and a
/// salt as long as the hash (what aws-lc-rs verifies, and what RFC 7427 shows).
fn pss_hash(params: &[u8]) -> Result<Hash, CertError> {
    let alg_hash = |raw: &[u8]| -> Result<Hash, CertError> {
        let mut r = Reader::new(raw);
        let mut s = r.sequence()?;
        let h = Hash::from_oid(s.expect(tag::OID)?.value).ok_or(CertError::Unsupported)?;
        s.optional(tag::NULL)?;
        s.finish()?;
        Ok(h)
    };
    let mut p = Reader::new(params);
    // Absent fields mean SHA-1, which we do not support.
    let h = alg_hash(p.expect(0xa0)?.value)?;
    let mut mgf_r = Reader::new(p.expect(0xa1)?.value);
    let mut mgf = mgf_r.sequence()?;
    if mgf.expect(tag::OID)?.value != oid::MGF1 {
        return Err(CertError::Unsupported);
    }
    let mgf_hash = alg_hash(mgf.expect(tag::SEQUENCE)?.raw)?;
    let mut salt_r = Reader::new(p.expect(0xa2)?.value);
    let salt = salt_r.expect(tag::INTEGER)?.value;
    if let Some(t) = p.optional(0xa3)? {
        if t.value != [tag::INTEGER, 1, 1] {
            return Err(CertError::Unsupported);
        }
    }
    p.finish()?;
    if mgf_hash != h || salt != [h.len()] {
        return Err(CertError::Unsupported);
    }
    Ok(h)
}

/// A public key of a kind we verify with.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PublicKey {
    /// RSA, the DER RSAPublicKey.
    Rsa(Vec<u8>),
    /// ECDSA P-256, the uncompressed point.
    EcP256(Vec<u8>),
    /// ECDSA P-384, the uncompressed point.
    EcP384(Vec<u8>),
}

impl PublicKey {
    /// Parses the contents of a SubjectPublicKeyInfo SEQUENCE.
    ///
    /// # Errors
    /// [`CertError::Unsupported`] for other key types and curves.
    pub(crate) fn from_spki(contents: &[u8]) -> Result<Self, CertError> {
        let mut r = Reader::new(contents);
        let mut alg = r.sequence()?;
        let bits = der::bit_string_bytes(&r.expect(tag::BIT_STRING)?)?.to_vec();
        r.finish()?;
        let o = alg.expect(tag::OID)?.value;
        match o {
            oid::RSA_ENCRYPTION => Ok(Self::Rsa(bits)),
            oid::EC_PUBLIC_KEY => match alg.expect(tag::OID)?.value {
                oid::P256 => Ok(Self::EcP256(bits)),
                oid::P384 => Ok(Self::EcP384(bits)),
                _ => Err(CertError::Unsupported),
            },
            _ => Err(CertError::Unsupported),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Self::Rsa(b) | Self::EcP256(b) | Self::EcP384(b) => b,
        }
    }

    /// A short name of the key type (`RSA-2048`, `ECDSA-P256`...).
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa(k) => {
                // RSAPublicKey ::= SEQUENCE { modulus INTEGER, ... }
                let bits = Reader::new(k)
                    .sequence()
                    .and_then(|mut s| s.expect(tag::INTEGER))
                    .map(|n| {
                        let m = n.value;
                        let m = m.strip_prefix(&[0]).unwrap_or(m);
                        m.len() * 8
                    })
                    .unwrap_or(0);
                format!("RSA-{bits}")
            }
            Self::EcP256(_) => "ECDSA-P256".into(),
            Self::EcP384(_) => "ECDSA-P384".into(),
        }
    }
}

/// A private key we sign AUTH payloads with.
pub enum PrivateKey {
    /// RSA.
    Rsa(sig::RsaKeyPair),
    /// ECDSA: the key for DER signatures (method 14) and for fixed-size r|s signatures
    /// (methods 9 and 10).
    Ec {
        /// DER signatures.
        asn1: sig::EcdsaKeyPair,
        /// r|s signatures.
        fixed: sig::EcdsaKeyPair,
        /// P-384 (else P-256).
        p384: bool,
    },
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rsa(_) => "PrivateKey::Rsa(..)",
            Self::Ec { p384: false, .. } => "PrivateKey::EcP256(..)",
            Self::Ec { p384: true, .. } => "PrivateKey::EcP384(..)",
        })
    }
}

impl PrivateKey {
    /// Parses a DER private key: PKCS#8, or PKCS#1 (RSA) / SEC 1 (EC).
    ///
    /// # Errors
    /// [`CertError::Malformed`] for anything else (or [`CertError::Unsupported`] curves).
    pub fn from_der(der_key: &[u8]) -> Result<Self, CertError> {
        if let Ok(k) =
            sig::RsaKeyPair::from_pkcs8(der_key).or_else(|_| sig::RsaKeyPair::from_der(der_key))
        {
            return Ok(Self::Rsa(k));
        }
        let ec = |a, f, p384| -> Option<Self> {
            let load = |alg| {
                sig::EcdsaKeyPair::from_pkcs8(alg, der_key)
                    .or_else(|_| sig::EcdsaKeyPair::from_private_key_der(alg, der_key))
                    .ok()
            };
            Some(Self::Ec {
                asn1: load(a)?,
                fixed: load(f)?,
                p384,
            })
        };
        ec(
            &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            false,
        )
        .or_else(|| {
            ec(
                &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
                &sig::ECDSA_P384_SHA384_FIXED_SIGNING,
                true,
            )
        })
        .ok_or(CertError::Malformed)
    }

    /// The public half.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        match self {
            Self::Rsa(k) => PublicKey::Rsa(k.public_key().as_ref().to_vec()),
            Self::Ec { asn1, p384, .. } => {
                let p = asn1.public_key().as_ref().to_vec();
                if *p384 {
                    PublicKey::EcP384(p)
                } else {
                    PublicKey::EcP256(p)
                }
            }
        }
    }

    fn sign(&self, alg: SigAlg, msg: &[u8]) -> Result<Vec<u8>, CertError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        match (self, alg) {
            (Self::Rsa(k), SigAlg::RsaPkcs1(_) | SigAlg::RsaPss(_)) => {
                let enc: &'static dyn sig::RsaEncoding = match alg {
                    SigAlg::RsaPkcs1(Hash::Sha256) => &sig::RSA_PKCS1_SHA256,
                    SigAlg::RsaPkcs1(Hash::Sha384) => &sig::RSA_PKCS1_SHA384,
                    SigAlg::RsaPkcs1(Hash::Sha512) => &sig::RSA_PKCS1_SHA512,
                    SigAlg::RsaPss(Hash::Sha256) => &sig::RSA_PSS_SHA256,
                    SigAlg::RsaPss(Hash::Sha384) => &sig::RSA_PSS_SHA384,
                    _ => &sig::RSA_PSS_SHA512,
                };
                let mut out = vec![0u8; k.public_modulus_len()];
                k.sign(enc, &rng, msg, &mut out)
                    .map_err(|_| CertError::Unsupported)?;
                Ok(out)
            }
            (Self::Ec { asn1, p384, .. }, SigAlg::Ecdsa(h)) if h == ec_hash(*p384) => asn1
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| CertError::Unsupported),
            _ => Err(CertError::Unsupported),
        }
    }
}

/// The hash our ECDSA keys sign with: the one matching the curve.
fn ec_hash(p384: bool) -> Hash {
    if p384 {
        Hash::Sha384
    } else {
        Hash::Sha256
    }
}

/// One side's certificate credentials and trust anchors (shared, cheap to clone).
#[derive(Clone)]
pub struct CertAuth {
    key: Arc<PrivateKey>,
    chain: Arc<Vec<Certificate>>,
    anchors: Arc<Vec<Certificate>>,
    /// Hashes we offer and use, in our order of preference (RFC 7427 §4).
    pub hashes: Vec<Hash>,
    /// Sign with RSASSA-PSS rather than PKCS#1 v1.5 (RSA keys, method 14).
    pub rsa_pss: bool,
    /// What the peer's AUTH may be ([`PeerAuth::Any`] unless set).
    pub peer: PeerAuth,
    /// The time certificates are checked at, seconds since 1970 (set by the caller).
    pub now: i64,
}

impl fmt::Debug for CertAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertAuth")
            .field("key", &self.key)
            .field(
                "subject",
                &self
                    .chain
                    .first()
                    .map(|c| Certificate::name_to_string(&c.subject)),
            )
            .field("anchors", &self.anchors.len())
            .field("hashes", &self.hashes)
            .field("rsa_pss", &self.rsa_pss)
            .field("peer", &self.peer)
            .field("now", &self.now)
            .finish()
    }
}

impl CertAuth {
    /// Our key, our certificate followed by the intermediates we send, and the trust
    /// anchors the peer's certificate must chain to.
    ///
    /// # Errors
    /// [`CertError::NoCertificate`] without a certificate, [`CertError::KeyMismatch`]
    /// when the key is not the certificate's.
    pub fn new(
        key: PrivateKey,
        chain: Vec<Certificate>,
        anchors: Vec<Certificate>,
        now: i64,
    ) -> Result<Self, CertError> {
        let ee = chain.first().ok_or(CertError::NoCertificate)?;
        if ee.key.as_ref() != Some(&key.public_key()) {
            return Err(CertError::KeyMismatch);
        }
        Ok(Self {
            key: Arc::new(key),
            chain: Arc::new(chain),
            anchors: Arc::new(anchors),
            hashes: Hash::ALL.to_vec(),
            rsa_pss: false,
            peer: PeerAuth::Any,
            now,
        })
    }

    /// Our certificate and the intermediates, DER, in the order they are sent.
    pub fn chain_der(&self) -> impl Iterator<Item = &[u8]> {
        self.chain.iter().map(Certificate::der)
    }

    /// The CERTREQ data: SHA-1 of each trust anchor's SubjectPublicKeyInfo (§3.7).
    #[must_use]
    pub fn certreq_data(&self) -> Vec<u8> {
        self.anchors.iter().flat_map(|a| a.spki_sha1()).collect()
    }

    /// Whether `ident` is bound to our own certificate (what the peer will check).
    #[must_use]
    pub fn own_identity_matches(&self, ident: &Id<'_>) -> bool {
        self.chain.first().is_some_and(|c| id_matches(ident, c))
    }

    /// The AUTH payload (method, data) signing `octets`, given the hash numbers the
    /// peer announced (empty: it sent no SIGNATURE_HASH_ALGORITHMS, so only the classic
    /// ECDSA methods are left).
    ///
    /// # Errors
    /// [`CertError::NoCommonHash`] when nothing fits.
    pub fn sign_auth(
        &self,
        peer_hashes: &[u16],
        octets: &[u8],
    ) -> Result<(u8, Vec<u8>), CertError> {
        let usable = |h: &Hash| peer_hashes.contains(&h.id());
        let alg = match &*self.key {
            PrivateKey::Rsa(_) => self.hashes.iter().copied().find(usable).map(|h| {
                if self.rsa_pss {
                    SigAlg::RsaPss(h)
                } else {
                    SigAlg::RsaPkcs1(h)
                }
            }),
            PrivateKey::Ec { p384, .. } => {
                let h = ec_hash(*p384);
                usable(&h).then_some(SigAlg::Ecdsa(h))
            }
        };
        if let Some(alg) = alg {
            let a = alg.algorithm_identifier();
            let s = self.key.sign(alg, octets)?;
            let mut data = Vec::with_capacity(1 + a.len() + s.len());
            data.push(a.len() as u8);
            data.extend_from_slice(&a);
            data.extend_from_slice(&s);
            return Ok((crate::consts::auth::DIGITAL_SIGNATURE, data));
        }
        match &*self.key {
            PrivateKey::Ec { fixed, p384, .. } => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let s = fixed
                    .sign(&rng, octets)
                    .map_err(|_| CertError::Unsupported)?;
                let m = if *p384 {
                    method::ECDSA_P384
                } else {
                    method::ECDSA_P256
                };
                Ok((m, s.as_ref().to_vec()))
            }
            PrivateKey::Rsa(_) => Err(CertError::NoCommonHash),
        }
    }

    /// Validates the peer's certificates (`certs[0]` its own, the rest intermediates in
    /// any order) against our trust anchors at [`CertAuth::now`], and returns the end
    /// entity.
    ///
    /// # Errors
    /// The first [`CertError`] found.
    pub fn verify_chain(&self, certs: &[&[u8]]) -> Result<Certificate, CertError> {
        let (first, rest) = certs.split_first().ok_or(CertError::NoCertificate)?;
        if rest.len() > 2 * MAX_INTERMEDIATES {
            return Err(CertError::TooManyCertificates);
        }
        let ee = Certificate::from_der(first)?;
        let pool = rest
            .iter()
            .map(|d| Certificate::from_der(d))
            .collect::<Result<Vec<_>, _>>()?;
        if !ee.valid_at(self.now) {
            return Err(CertError::OutsideValidity);
        }
        if ee.key.is_none() {
            return Err(CertError::Unsupported);
        }
        if !ee.may_sign_auth() {
            return Err(CertError::KeyUsage);
        }
        let signed_by = |c: &Certificate, by: &Certificate| {
            c.issuer == by.subject && by.key.as_ref().is_some_and(|k| c.is_signed_by(k))
        };
        let path_ok = |by: &Certificate, below: usize| match by.ca {
            Some((_, Some(n))) => below <= usize::from(n),
            _ => true,
        };
        let mut cur = &ee;
        let mut expired_issuer = false;
        for below in 0..=MAX_INTERMEDIATES {
            let found = |c: &&Certificate| signed_by(cur, c) && path_ok(c, below);
            if let Some(a) = self.anchors.iter().find(found) {
                if a.valid_at(self.now) {
                    return Ok(ee);
                }
                expired_issuer = true;
            }
            let Some(next) = pool.iter().find(|c| found(c) && c.is_ca()) else {
                break;
            };
            if !next.valid_at(self.now) {
                return Err(CertError::OutsideValidity);
            }
            cur = next;
        }
        Err(if expired_issuer {
            CertError::OutsideValidity
        } else {
            CertError::Untrusted
        })
    }
}

/// Verifies a peer's AUTH payload (`method`, `data`) over `octets` with its
/// certificate's key.
///
/// # Errors
/// [`CertError::BadSignature`], or [`CertError::Unsupported`] for a method or
/// algorithm that does not fit the key.
pub fn verify_auth(
    key: &PublicKey,
    method: u8,
    data: &[u8],
    octets: &[u8],
) -> Result<(), CertError> {
    use crate::consts::auth;
    let fixed = |alg: &'static sig::EcdsaVerificationAlgorithm| {
        sig::UnparsedPublicKey::new(alg, key.bytes())
            .verify(octets, data)
            .map_err(|_| CertError::BadSignature)
    };
    match (method, key) {
        (auth::DIGITAL_SIGNATURE, _) => {
            let (alg, signature) = digital_signature_alg(data)?;
            alg.verify(key, octets, signature)
        }
        (method::ECDSA_P256, PublicKey::EcP256(_)) => fixed(&sig::ECDSA_P256_SHA256_FIXED),
        (method::ECDSA_P384, PublicKey::EcP384(_)) => fixed(&sig::ECDSA_P384_SHA384_FIXED),
        (auth::RSA_SIG, PublicKey::Rsa(k)) => {
            sig::UnparsedPublicKey::new(&sig::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY, k)
                .verify(octets, data)
                .map_err(|_| CertError::BadSignature)
        }
        _ => Err(CertError::Unsupported),
    }
}

/// Whether the ID payload `ident` names the certificate (RFC 7296 §3.5, RFC 4945
/// §3.1): a DN equal to the subject, or an FQDN / RFC 822 address / IP address among
/// its subjectAltNames.
#[must_use]
pub fn id_matches(ident: &Id<'_>, cert: &Certificate) -> bool {
    let text = || core::str::from_utf8(ident.data).ok();
    cert.alt_names.iter().any(|n| match (ident.id_type, n) {
        (id::FQDN, AltName::Dns(d)) => text().is_some_and(|t| t.eq_ignore_ascii_case(d)),
        (id::RFC822_ADDR, AltName::Email(e)) => text().is_some_and(|t| t.eq_ignore_ascii_case(e)),
        (id::IPV4_ADDR | id::IPV6_ADDR, AltName::Ip(a)) => a.as_slice() == ident.data,
        (id::DER_ASN1_DN, AltName::Directory(d)) => dn_equal(d, ident.data),
        _ => false,
    }) || (ident.id_type == id::DER_ASN1_DN && dn_equal(ident.data, &cert.subject))
}

/// Dotted form of an OID's contents octets.
pub(crate) fn oid_string(o: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut v: u64 = 0;
    for (i, &b) in o.iter().enumerate() {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() && i < o.len() {
                let first = (v / 40).min(2);
                parts.push(first.to_string());
                parts.push((v - first * 40).to_string());
            } else {
                parts.push(v.to_string());
            }
            v = 0;
        }
    }
    parts.join(".")
}

/// A DER blob held in zeroized memory (private keys read from files).
pub type SecretDer = Zeroizing<Vec<u8>>;
