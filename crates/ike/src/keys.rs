//! IKE SA and Child SA key derivation (RFC 7296 §2.14, §2.17, §2.18).
//!
//! ```text
//!  SKEYSEED = prf(Ni | Nr, g^ir)                                   §2.14
//!  {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//!           = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
//!  SKEYSEED (rekey) = prf(SK_d (old), g^ir (new) | Ni | Nr)          §2.18
//!  KEYMAT   = prf+(SK_d, [g^ir (new) |] Ni | Nr)                    §2.17
//! ```
//!
//! Every key is held in `Zeroizing` and `Debug` prints lengths only.

use core::fmt;

use zeroize::Zeroizing;

use crate::error::CryptoError;
use crate::prf::PrfAlg;

/// Key sizes, in bytes, of the transforms an SA uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeySizes {
    /// Encryption key material, salt included (AES-GCM and ChaCha20-Poly1305 take 4 salt
    /// bytes after the key: RFC 5282 §7.1, RFC 7634 §2).
    pub encr: usize,
    /// Integrity key (0 with an AEAD cipher).
    pub integ: usize,
}

/// SKEYSEED = prf(Ni | Nr, g^ir).
#[must_use]
pub fn skeyseed(prf: PrfAlg, ni: &[u8], nr: &[u8], gir: &[u8]) -> Zeroizing<Vec<u8>> {
    let key = Zeroizing::new([ni, nr].concat());
    prf.prf(&key, &[gir])
}

/// The SKEYSEED of a rekeyed IKE SA: prf(SK_d (old), g^ir (new) | Ni | Nr), with the old
/// SA's PRF and the new exchange's nonces (RFC 7296 §2.18).
#[must_use]
pub fn skeyseed_rekey(
    prf: PrfAlg,
    sk_d_old: &[u8],
    gir_new: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Zeroizing<Vec<u8>> {
    prf.prf(sk_d_old, &[gir_new, ni, nr])
}

/// The seven keys of an IKE SA.
#[derive(Clone, PartialEq, Eq)]
pub struct IkeKeys {
    /// SK_d: the key Child SA keys (and rekeyed IKE SAs) derive from.
    pub sk_d: Zeroizing<Vec<u8>>,
    /// SK_ai: integrity, initiator to responder.
    pub sk_ai: Zeroizing<Vec<u8>>,
    /// SK_ar: integrity, responder to initiator.
    pub sk_ar: Zeroizing<Vec<u8>>,
    /// SK_ei: encryption, initiator to responder.
    pub sk_ei: Zeroizing<Vec<u8>>,
    /// SK_er: encryption, responder to initiator.
    pub sk_er: Zeroizing<Vec<u8>>,
    /// SK_pi: the initiator's AUTH payload.
    pub sk_pi: Zeroizing<Vec<u8>>,
    /// SK_pr: the responder's AUTH payload.
    pub sk_pr: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for IkeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IkeKeys")
            .field("sk_d_len", &self.sk_d.len())
            .field("sk_a_len", &self.sk_ai.len())
            .field("sk_e_len", &self.sk_ei.len())
            .finish_non_exhaustive()
    }
}

fn split(buf: &[u8], at: &mut usize, n: usize) -> Zeroizing<Vec<u8>> {
    let end = at.saturating_add(n);
    let v = buf.get(*at..end).unwrap_or(&[]).to_vec();
    *at = end;
    Zeroizing::new(v)
}

impl IkeKeys {
    /// Splits prf+(SKEYSEED, Ni | Nr | SPIi | SPIr) into the seven keys in the order of
    /// RFC 7296 §2.14.
    ///
    /// # Errors
    /// [`CryptoError::PrfPlusTooLong`] for absurd key sizes.
    pub fn from_skeyseed(
        prf: PrfAlg,
        skeyseed: &[u8],
        ni: &[u8],
        nr: &[u8],
        spi_i: &[u8; 8],
        spi_r: &[u8; 8],
        sizes: KeySizes,
    ) -> Result<Self, CryptoError> {
        let p = prf.output_len();
        let total = p
            .saturating_mul(3)
            .saturating_add(sizes.integ.saturating_mul(2))
            .saturating_add(sizes.encr.saturating_mul(2));
        let km = prf.prf_plus(skeyseed, &[ni, nr, spi_i, spi_r], total)?;
        let mut at = 0;
        Ok(Self {
            sk_d: split(&km, &mut at, p),
            sk_ai: split(&km, &mut at, sizes.integ),
            sk_ar: split(&km, &mut at, sizes.integ),
            sk_ei: split(&km, &mut at, sizes.encr),
            sk_er: split(&km, &mut at, sizes.encr),
            sk_pi: split(&km, &mut at, p),
            sk_pr: split(&km, &mut at, p),
        })
    }

    /// SKEYSEED and the seven keys of a new IKE SA from its IKE_SA_INIT exchange.
    ///
    /// # Errors
    /// As [`IkeKeys::from_skeyseed`].
    pub fn derive(
        prf: PrfAlg,
        ni: &[u8],
        nr: &[u8],
        gir: &[u8],
        spi_i: &[u8; 8],
        spi_r: &[u8; 8],
        sizes: KeySizes,
    ) -> Result<Self, CryptoError> {
        let seed = skeyseed(prf, ni, nr, gir);
        Self::from_skeyseed(prf, &seed, ni, nr, spi_i, spi_r, sizes)
    }
}

/// The keys of a Child SA pair (RFC 7296 §2.17): the SA carrying traffic from the
/// initiator of the exchange to the responder takes the first encryption and integrity
/// keys, the other direction the next two.
#[derive(Clone, PartialEq, Eq)]
pub struct ChildKeys {
    /// Encryption key material (salt included), initiator to responder.
    pub encr_i: Zeroizing<Vec<u8>>,
    /// Integrity key, initiator to responder.
    pub integ_i: Zeroizing<Vec<u8>>,
    /// Encryption key material (salt included), responder to initiator.
    pub encr_r: Zeroizing<Vec<u8>>,
    /// Integrity key, responder to initiator.
    pub integ_r: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for ChildKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildKeys")
            .field("encr_len", &self.encr_i.len())
            .field("integ_len", &self.integ_i.len())
            .finish_non_exhaustive()
    }
}

/// KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr), split into a Child SA pair's keys.
/// `gir_new` is the shared secret of the CREATE_CHILD_SA exchange's optional KE payloads
/// (perfect forward secrecy); `None` for the Child SA made by IKE_AUTH.
///
/// # Errors
/// [`CryptoError::PrfPlusTooLong`] for absurd key sizes.
pub fn child_keys(
    prf: PrfAlg,
    sk_d: &[u8],
    gir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    sizes: KeySizes,
) -> Result<ChildKeys, CryptoError> {
    let total = sizes.encr.saturating_add(sizes.integ).saturating_mul(2);
    let km = match gir_new {
        Some(g) => prf.prf_plus(sk_d, &[g, ni, nr], total)?,
        None => prf.prf_plus(sk_d, &[ni, nr], total)?,
    };
    let mut at = 0;
    Ok(ChildKeys {
        encr_i: split(&km, &mut at, sizes.encr),
        integ_i: split(&km, &mut at, sizes.integ),
        encr_r: split(&km, &mut at, sizes.encr),
        integ_r: split(&km, &mut at, sizes.integ),
    })
}

#[cfg(test)]
mod test {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_consecutive_slices_of_prf_plus() {
        let prf = PrfAlg::HmacSha256;
        let (ni, nr, gir) = ([1u8; 32], [2u8; 32], [3u8; 256]);
        let (si, sr) = ([4u8; 8], [5u8; 8]);
        let sizes = KeySizes { encr: 36, integ: 0 };
        let k = IkeKeys::derive(prf, &ni, &nr, &gir, &si, &sr, sizes).unwrap();
        let seed = skeyseed(prf, &ni, &nr, &gir);
        let all = prf
            .prf_plus(&seed, &[&ni, &nr, &si, &sr], 3 * 32 + 2 * 36)
            .unwrap();
        let joined = [
            &k.sk_d[..],
            &k.sk_ai[..],
            &k.sk_ar[..],
            &k.sk_ei[..],
            &k.sk_er[..],
            &k.sk_pi[..],
            &k.sk_pr[..],
        ]
        .concat();
        assert_eq!(joined, &all[..]);
        assert_eq!(k.sk_ei.len(), 36);
        assert!(k.sk_ai.is_empty());
        assert_ne!(k.sk_ei, k.sk_er);
        assert_ne!(k.sk_pi, k.sk_pr);
    }

    #[test]
    fn debug_prints_no_key() {
        let k = child_keys(
            PrfAlg::HmacSha256,
            &[9u8; 32],
            None,
            &[1; 16],
            &[2; 16],
            KeySizes {
                encr: 16,
                integ: 32,
            },
        )
        .unwrap();
        let d = format!("{k:?}");
        assert!(!d.contains(&format!("{:?}", &k.encr_i[..4])), "{d}");
        assert!(d.contains("encr_len: 16"));
    }
}
