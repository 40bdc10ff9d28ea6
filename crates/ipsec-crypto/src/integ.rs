//! Keyed integrity transforms for ESP authentication and AH ([`Integ`]).

use core::fmt;

use aes::Aes128;
use cmac::Cmac;
use hmac::{Hmac, Mac};
use md5::Md5;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::gcm::GenericGcm;
use crate::table::{auth_info, AuthAlg};
use crate::xcbc::XcbcMac;
use crate::CryptoError;

/// Largest ICV of any integrity algorithm (HMAC-SHA-512-256).
const MAX_ICV: usize = 32;

// One per SA and never moved on the packet path: boxing would only add an indirection.
#[allow(clippy::large_enum_variant)]
enum Backend {
    None,
    /// HMAC-MD5 through RustCrypto (aws-lc-rs has no HMAC-MD5).
    Md5(Box<Hmac<Md5>>),
    /// HMAC-SHA-1/256/384/512 through aws-lc-rs; the key holds the
    /// precomputed inner and outer states and is cloned per packet.
    Aws(Box<aws_lc_rs::hmac::Key>),
    Xcbc(Box<XcbcMac>),
    Cmac(Box<Cmac<Aes128>>),
    Gmac {
        gcm: Box<GenericGcm>,
        salt: Zeroizing<[u8; 4]>,
    },
}

/// A keyed integrity transform (ESP authentication or AH).
///
/// Key material is zeroized on drop where the backend allows (see the crate
/// documentation); `Debug` prints the algorithm only.
pub struct Integ {
    alg: AuthAlg,
    icv_len: usize,
    iv_len: usize,
    backend: Backend,
}

impl fmt::Debug for Integ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Integ")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn expected_bits(alg: AuthAlg) -> &'static str {
    match alg {
        AuthAlg::None => "0",
        AuthAlg::HmacMd5 | AuthAlg::AesXcbcMac | AuthAlg::AesCmac => "128",
        AuthAlg::HmacSha1 => "160",
        AuthAlg::HmacSha256 => "256",
        AuthAlg::HmacSha384 => "384",
        AuthAlg::HmacSha512 => "512",
        AuthAlg::AesGmac128 => "160 (128-bit key + 32-bit salt)",
        AuthAlg::AesGmac192 => "224 (192-bit key + 32-bit salt)",
        AuthAlg::AesGmac256 => "288 (256-bit key + 32-bit salt)",
    }
}

fn is_gmac(alg: AuthAlg) -> bool {
    matches!(
        alg,
        AuthAlg::AesGmac128 | AuthAlg::AesGmac192 | AuthAlg::AesGmac256
    )
}

pub(crate) fn aws_hmac_alg(alg: AuthAlg) -> Option<aws_lc_rs::hmac::Algorithm> {
    match alg {
        AuthAlg::HmacSha1 => Some(aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
        AuthAlg::HmacSha256 => Some(aws_lc_rs::hmac::HMAC_SHA256),
        AuthAlg::HmacSha384 => Some(aws_lc_rs::hmac::HMAC_SHA384),
        AuthAlg::HmacSha512 => Some(aws_lc_rs::hmac::HMAC_SHA512),
        _ => None,
    }
}

impl Integ {
    /// Key an integrity transform.
    ///
    /// `for_ah` selects the AH rules: AES-GMAC is only allowed for AH (RFC 8221
    /// §6: "these algorithms should only be used for AH and not for ESP"; ESP
    /// uses ENCR_NULL_AUTH_AES_GMAC instead), and AH cannot run without an
    /// integrity algorithm. HMAC-MD5-96 is RFC 8221 MUST NOT for both ESP and
    /// AH (the §6 table covers both), so it needs `allow_legacy` in both.
    /// AES-GMAC key material is the AES key followed by a 4-byte salt.
    ///
    /// # Errors
    /// [`CryptoError::NotAllowedHere`], [`CryptoError::LegacyNotAllowed`] or
    /// [`CryptoError::BadKeyLength`].
    pub fn new(
        alg: AuthAlg,
        key: &[u8],
        for_ah: bool,
        allow_legacy: bool,
    ) -> Result<Self, CryptoError> {
        let info = auth_info(alg);
        if (is_gmac(alg) && !for_ah) || (alg == AuthAlg::None && for_ah) {
            return Err(CryptoError::NotAllowedHere);
        }
        let legacy = if for_ah {
            info.legacy_ah
        } else {
            info.legacy_esp
        };
        if legacy && !allow_legacy {
            return Err(CryptoError::LegacyNotAllowed);
        }
        let bad_len = CryptoError::BadKeyLength {
            expected_bits: expected_bits(alg),
            got_bits: key.len().saturating_mul(8),
        };
        let ck_len = key.len().checked_sub(info.salt_bytes).ok_or(bad_len)?;
        if !info.key_bits.accepts(ck_len.saturating_mul(8)) {
            return Err(bad_len);
        }
        let (ck, salt) = key.split_at(ck_len);
        let internal = CryptoError::BadLength;
        let backend = match alg {
            AuthAlg::None => Backend::None,
            AuthAlg::HmacMd5 => Backend::Md5(Box::new(
                Hmac::<Md5>::new_from_slice(ck).map_err(|_| internal)?,
            )),
            AuthAlg::HmacSha1 | AuthAlg::HmacSha256 | AuthAlg::HmacSha384 | AuthAlg::HmacSha512 => {
                let a = aws_hmac_alg(alg).ok_or(internal)?;
                Backend::Aws(Box::new(aws_lc_rs::hmac::Key::new(a, ck)))
            }
            AuthAlg::AesXcbcMac => Backend::Xcbc(Box::new(XcbcMac::new(ck).ok_or(internal)?)),
            AuthAlg::AesCmac => Backend::Cmac(Box::new(
                <Cmac<Aes128> as Mac>::new_from_slice(ck).map_err(|_| internal)?,
            )),
            AuthAlg::AesGmac128 | AuthAlg::AesGmac192 | AuthAlg::AesGmac256 => {
                let mut s = Zeroizing::new([0u8; 4]);
                if salt.len() != 4 {
                    return Err(internal);
                }
                s.copy_from_slice(salt);
                Backend::Gmac {
                    gcm: Box::new(GenericGcm::new(ck).ok_or(internal)?),
                    salt: s,
                }
            }
        };
        Ok(Self {
            alg,
            icv_len: info.icv_bytes,
            iv_len: info.iv_bytes,
            backend,
        })
    }

    /// The algorithm.
    #[must_use]
    #[inline]
    pub fn alg(&self) -> AuthAlg {
        self.alg
    }

    /// ICV length (truncated): 12 for MD5/SHA-1/XCBC/CMAC, 16/24/32 for
    /// SHA-256/384/512 (RFC 4868), 16 for GMAC, 0 for none.
    #[must_use]
    #[inline]
    pub fn icv_len(&self) -> usize {
        self.icv_len
    }

    /// IV length: 8 for AH GMAC (RFC 4543), else 0.
    #[must_use]
    #[inline]
    pub fn iv_len(&self) -> usize {
        self.iv_len
    }

    /// Compute the ICV over the concatenation of `parts` into `out`, which must
    /// be exactly `icv_len()` bytes. For GMAC `iv` is the 8-byte IV (nonce =
    /// salt || iv); other algorithms ignore it (pass `&[]`).
    ///
    /// # Errors
    /// [`CryptoError::BadLength`] if `out` or the GMAC `iv` has the wrong length.
    pub fn compute(&self, iv: &[u8], parts: &[&[u8]], out: &mut [u8]) -> Result<(), CryptoError> {
        if out.len() != self.icv_len {
            return Err(CryptoError::BadLength);
        }
        match &self.backend {
            Backend::None => {}
            Backend::Md5(k) => {
                let mut m = (**k).clone();
                for p in parts {
                    m.update(p);
                }
                let full = m.finalize().into_bytes();
                out.copy_from_slice(&full[..self.icv_len]);
            }
            Backend::Aws(k) => {
                let mut ctx = aws_lc_rs::hmac::Context::with_key(k);
                for p in parts {
                    ctx.update(p);
                }
                let tag = ctx.sign();
                let full = tag.as_ref();
                out.copy_from_slice(full.get(..self.icv_len).ok_or(CryptoError::BadLength)?);
            }
            Backend::Xcbc(x) => {
                let full = x.mac(parts);
                out.copy_from_slice(&full[..self.icv_len]);
            }
            Backend::Cmac(k) => {
                let mut m = (**k).clone();
                for p in parts {
                    m.update(p);
                }
                let full = m.finalize().into_bytes();
                out.copy_from_slice(&full[..self.icv_len]);
            }
            Backend::Gmac { gcm, salt } => {
                if iv.len() != 8 {
                    return Err(CryptoError::BadLength);
                }
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(&salt[..]);
                nonce[4..].copy_from_slice(iv);
                let full = gcm.gmac(&nonce, parts);
                out.copy_from_slice(&full[..self.icv_len]);
            }
        }
        Ok(())
    }

    /// Whether `icv` is the ICV of `parts` (constant-time comparison). False on
    /// any length error.
    #[must_use]
    pub fn verify(&self, iv: &[u8], parts: &[&[u8]], icv: &[u8]) -> bool {
        if icv.len() != self.icv_len {
            return false;
        }
        let mut buf = [0u8; MAX_ICV];
        let Some(expected) = buf.get_mut(..self.icv_len) else {
            return false;
        };
        if self.compute(iv, parts, expected).is_err() {
            return false;
        }
        expected.ct_eq(icv).into()
    }
}
