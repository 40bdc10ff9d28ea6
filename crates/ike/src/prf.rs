//! The IKEv2 pseudorandom functions (RFC 7296 §3.3.2 Transform Type 2, RFC 4868 §2.1.2)
//! and prf+ (RFC 7296 §2.13).
//!
//! Only the HMAC-SHA2 PRFs are implemented (RFC 8247 §2.3: PRF_HMAC_SHA2_256 MUST,
//! 384/512 SHOULD). HMAC takes keys of any length, so the nonces and shared secrets are
//! used as keys whole, as §2.14 says for PRFs with variable-length keys.

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::error::CryptoError;

/// An IKEv2 PRF.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrfAlg {
    /// PRF_HMAC_SHA2_256 (ID 5).
    HmacSha256,
    /// PRF_HMAC_SHA2_384 (ID 6).
    HmacSha384,
    /// PRF_HMAC_SHA2_512 (ID 7).
    HmacSha512,
}

impl PrfAlg {
    /// From the IANA Transform Type 2 ID.
    #[must_use]
    pub fn from_id(id: u16) -> Option<Self> {
        match id {
            5 => Some(Self::HmacSha256),
            6 => Some(Self::HmacSha384),
            7 => Some(Self::HmacSha512),
            _ => None,
        }
    }

    /// The IANA Transform Type 2 ID.
    #[must_use]
    pub fn id(self) -> u16 {
        match self {
            Self::HmacSha256 => 5,
            Self::HmacSha384 => 6,
            Self::HmacSha512 => 7,
        }
    }

    /// Output length in bytes, which is also the key length for SK_d, SK_pi and SK_pr
    /// (RFC 4868 §2.1.2: the preferred key size equals the output size).
    #[must_use]
    pub fn output_len(self) -> usize {
        match self {
            Self::HmacSha256 => 32,
            Self::HmacSha384 => 48,
            Self::HmacSha512 => 64,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::HmacSha256 => hmac::HMAC_SHA256,
            Self::HmacSha384 => hmac::HMAC_SHA384,
            Self::HmacSha512 => hmac::HMAC_SHA512,
        }
    }

    /// `prf(key, parts[0] | parts[1] | ...)`.
    #[must_use]
    pub fn prf(self, key: &[u8], parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        let k = hmac::Key::new(self.hmac(), key);
        let mut ctx = hmac::Context::with_key(&k);
        for p in parts {
            ctx.update(p);
        }
        Zeroizing::new(ctx.sign().as_ref().to_vec())
    }

    /// prf+(key, seed) truncated to `len` bytes, the seed being the concatenation of
    /// `seed` (RFC 7296 §2.13):
    /// `T1 = prf(K, S | 0x01)`, `Tn = prf(K, Tn-1 | S | n)`.
    ///
    /// # Errors
    /// [`CryptoError::PrfPlusTooLong`] when `len` needs more than 255 blocks.
    pub fn prf_plus(
        self,
        key: &[u8],
        seed: &[&[u8]],
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if len > self.output_len().saturating_mul(255) {
            return Err(CryptoError::PrfPlusTooLong);
        }
        let k = hmac::Key::new(self.hmac(), key);
        let mut out = Zeroizing::new(Vec::with_capacity(len.saturating_add(self.output_len())));
        let mut prev: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::new());
        let mut n: u8 = 1;
        while out.len() < len {
            let mut ctx = hmac::Context::with_key(&k);
            ctx.update(&prev);
            for s in seed {
                ctx.update(s);
            }
            ctx.update(&[n]);
            let t = ctx.sign();
            prev = Zeroizing::new(t.as_ref().to_vec());
            out.extend_from_slice(&prev);
            n = n.wrapping_add(1);
        }
        out.truncate(len);
        Ok(out)
    }
}

#[cfg(test)]
mod test {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hmac_sha256_rfc4231_case2() {
        // RFC 4231 §4.3 (test case 2): key "Jefe".
        let out = PrfAlg::HmacSha256.prf(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(&*out),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn prf_plus_is_the_chain_of_section_2_13() {
        for alg in [PrfAlg::HmacSha256, PrfAlg::HmacSha384, PrfAlg::HmacSha512] {
            let k = b"key";
            let s = b"seed";
            let out = alg
                .prf_plus(k, &[&s[..2], &s[2..]], 3 * alg.output_len() - 5)
                .unwrap();
            let t1 = alg.prf(k, &[s, &[1]]);
            let t2 = alg.prf(k, &[&t1, s, &[2]]);
            let t3 = alg.prf(k, &[&t2, s, &[3]]);
            let want: Vec<u8> = [&t1[..], &t2[..], &t3[..]].concat();
            assert_eq!(&out[..], &want[..out.len()]);
        }
    }

    #[test]
    fn prf_plus_length_limit() {
        let a = PrfAlg::HmacSha256;
        assert_eq!(a.prf_plus(b"k", &[b"s"], 255 * 32).unwrap().len(), 255 * 32);
        assert_eq!(
            a.prf_plus(b"k", &[b"s"], 255 * 32 + 1),
            Err(CryptoError::PrfPlusTooLong)
        );
        assert!(a.prf_plus(b"k", &[b"s"], 0).unwrap().is_empty());
    }

    #[test]
    fn ids() {
        for id in 0..20 {
            if let Some(a) = PrfAlg::from_id(id) {
                assert_eq!(a.id(), id);
            }
        }
        assert_eq!(PrfAlg::from_id(2), None, "PRF_HMAC_SHA1 is not offered");
    }
}
