//! A generic AES-GCM / GMAC built from RustCrypto `aes` + `ghash` + CTR.
//!
//! Used where the aws-lc-rs AEAD does not fit: truncated ICVs (8 and 12
//! octets, RFC 4106), ENCR_NULL_AUTH_AES_GMAC and AH AES-GMAC (RFC 4543), whose
//! authenticated data arrives in several pieces. Tag = GHASH(H, A, C) xor
//! E(K, J0), truncated (NIST SP 800-38D §7.1); J0 = nonce || 0^31 || 1 for the
//! 96-bit nonces IPsec uses.

use aes::{Aes128, Aes192, Aes256};
use cipher::consts::U16;
use cipher::generic_array::GenericArray;
use cipher::{BlockCipher, BlockEncrypt, BlockSizeUser, InnerIvInit, KeyInit, StreamCipher};
use ghash::universal_hash::UniversalHash;
use ghash::GHash;
use subtle::ConstantTimeEq;

use crate::CryptoError;

/// An AES key schedule of any of the three sizes (zeroized on drop).
pub(crate) enum AesAny {
    A128(Aes128),
    A192(Aes192),
    A256(Aes256),
}

macro_rules! with_aes {
    ($aes:expr, |$c:ident| $body:expr) => {
        match $aes {
            AesAny::A128($c) => $body,
            AesAny::A192($c) => $body,
            AesAny::A256($c) => $body,
        }
    };
}
pub(crate) use with_aes;

impl AesAny {
    /// Key an AES instance; `None` unless `key` is 16, 24 or 32 bytes.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        match key.len() {
            16 => Aes128::new_from_slice(key).ok().map(Self::A128),
            24 => Aes192::new_from_slice(key).ok().map(Self::A192),
            32 => Aes256::new_from_slice(key).ok().map(Self::A256),
            _ => None,
        }
    }

    /// Encrypt one block in place.
    pub(crate) fn encrypt_block(&self, block: &mut [u8; 16]) {
        let b = GenericArray::from_mut_slice(block);
        with_aes!(self, |c| c.encrypt_block(b));
    }

    /// XOR `buf` with the CTR keystream that starts at counter block `icb`,
    /// incrementing the last 32 bits big-endian (GCM's inc32).
    pub(crate) fn ctr32(&self, icb: &[u8; 16], buf: &mut [u8]) -> Result<(), CryptoError> {
        with_aes!(self, |c| ctr32_with(c, icb, buf))
    }
}

fn ctr32_with<C>(c: &C, icb: &[u8; 16], buf: &mut [u8]) -> Result<(), CryptoError>
where
    C: BlockEncrypt + BlockCipher + BlockSizeUser<BlockSize = U16>,
{
    let core =
        ctr::CtrCore::<&C, ctr::flavors::Ctr32BE>::inner_iv_init(c, GenericArray::from_slice(icb));
    let mut ctr = ctr::Ctr32BE::<&C>::from_core(core);
    ctr.try_apply_keystream(buf)
        .map_err(|_| CryptoError::BadLength)
}

/// GHASH fed with byte strings of any length; `pad` closes a GCM field by
/// zero-padding to a block boundary.
struct GhashStream {
    gh: GHash,
    buf: [u8; 16],
    n: usize,
}

impl GhashStream {
    fn new(gh: &GHash) -> Self {
        Self {
            gh: gh.clone(),
            buf: [0; 16],
            n: 0,
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        if self.n > 0 {
            let take = (16 - self.n).min(data.len());
            let (head, rest) = data.split_at(take);
            self.buf[self.n..self.n + take].copy_from_slice(head);
            self.n += take;
            data = rest;
            if self.n < 16 {
                return;
            }
            self.gh.update(&[*GenericArray::from_slice(&self.buf)]);
            self.n = 0;
        }
        let full = data.len() - data.len() % 16;
        let (blocks, tail) = data.split_at(full);
        if !blocks.is_empty() {
            // A whole number of blocks: update_padded adds no padding here and
            // lets the backend process several blocks at once.
            self.gh.update_padded(blocks);
        }
        self.buf[..tail.len()].copy_from_slice(tail);
        self.n = tail.len();
    }

    fn pad(&mut self) {
        if self.n > 0 {
            self.buf[self.n..].fill(0);
            self.gh.update(&[*GenericArray::from_slice(&self.buf)]);
            self.n = 0;
        }
    }

    fn finalize(mut self, a_bytes: u64, c_bytes: u64) -> [u8; 16] {
        self.pad();
        let mut lens = [0u8; 16];
        lens[..8].copy_from_slice(&a_bytes.wrapping_mul(8).to_be_bytes());
        lens[8..].copy_from_slice(&c_bytes.wrapping_mul(8).to_be_bytes());
        self.gh.update(&[GenericArray::from(lens)]);
        self.gh.finalize().into()
    }
}

/// Largest GCM plaintext: 2^39 - 256 bits (SP 800-38D §5.2.1.1).
const GCM_MAX_TEXT: u64 = (1 << 36) - 32;

/// AES-GCM with a 96-bit nonce and any tag length from 4 to 16 bytes,
/// additional data given as several slices.
pub(crate) struct GenericGcm {
    aes: AesAny,
    ghash: GHash,
}

impl GenericGcm {
    /// Key with a 16, 24 or 32 byte AES key.
    pub(crate) fn new(key: &[u8]) -> Option<Self> {
        let aes = AesAny::new(key)?;
        let mut h = [0u8; 16];
        aes.encrypt_block(&mut h);
        let ghash = GHash::new(GenericArray::from_slice(&h));
        zeroize::Zeroize::zeroize(&mut h);
        Some(Self { aes, ghash })
    }

    fn j0(nonce: &[u8; 12]) -> [u8; 16] {
        let mut j0 = [0u8; 16];
        j0[..12].copy_from_slice(nonce);
        j0[15] = 1;
        j0
    }

    /// The full 16-byte tag over `aad` (several pieces) and `ct`.
    fn tag(&self, nonce: &[u8; 12], aad: &[&[u8]], ct: &[u8]) -> [u8; 16] {
        let mut s = GhashStream::new(&self.ghash);
        let mut a_len: u64 = 0;
        for part in aad {
            s.update(part);
            a_len = a_len.wrapping_add(part.len() as u64);
        }
        s.pad();
        s.update(ct);
        let mut tag = s.finalize(a_len, ct.len() as u64);
        let mut ek = Self::j0(nonce);
        self.aes.encrypt_block(&mut ek);
        for (t, k) in tag.iter_mut().zip(ek.iter()) {
            *t ^= k;
        }
        tag
    }

    fn check_lengths(buf: &[u8], tag_len: usize) -> Result<(), CryptoError> {
        if !(4..=16).contains(&tag_len) || buf.len() as u64 > GCM_MAX_TEXT {
            return Err(CryptoError::BadLength);
        }
        Ok(())
    }

    fn crypt(&self, nonce: &[u8; 12], buf: &mut [u8]) -> Result<(), CryptoError> {
        let mut icb = Self::j0(nonce);
        icb[15] = 2;
        self.aes.ctr32(&icb, buf)
    }

    /// Encrypt `buf` in place and write the tag (truncated to `tag_out.len()`,
    /// 4..=16 bytes) into `tag_out`.
    pub(crate) fn seal(
        &self,
        nonce: &[u8; 12],
        aad: &[&[u8]],
        buf: &mut [u8],
        tag_out: &mut [u8],
    ) -> Result<(), CryptoError> {
        Self::check_lengths(buf, tag_out.len())?;
        self.crypt(nonce, buf)?;
        let tag = self.tag(nonce, aad, buf);
        tag_out.copy_from_slice(&tag[..tag_out.len()]);
        Ok(())
    }

    /// Check the (possibly truncated) `tag` in constant time, then decrypt `buf`
    /// in place. On failure `buf` is left as it was (still ciphertext).
    pub(crate) fn open(
        &self,
        nonce: &[u8; 12],
        aad: &[&[u8]],
        buf: &mut [u8],
        tag: &[u8],
    ) -> Result<(), CryptoError> {
        Self::check_lengths(buf, tag.len())?;
        let expected = self.tag(nonce, aad, buf);
        if !bool::from(expected[..tag.len()].ct_eq(tag)) {
            return Err(CryptoError::AuthFailed);
        }
        self.crypt(nonce, buf)
    }

    /// GMAC: the GCM tag over `parts` as additional data and an empty text.
    pub(crate) fn gmac(&self, nonce: &[u8; 12], parts: &[&[u8]]) -> [u8; 16] {
        self.tag(nonce, parts, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    // NIST GCM spec (McGrew & Viega), test case 2: K = 0^128, IV = 0^96, P = 0^128.
    #[test]
    fn gcm_spec_case_2() {
        let g = GenericGcm::new(&[0u8; 16]).unwrap();
        let mut buf = [0u8; 16];
        let mut tag = [0u8; 16];
        g.seal(&[0u8; 12], &[], &mut buf, &mut tag).unwrap();
        assert_eq!(buf.to_vec(), h("0388dace60b6a392f328c2b971b2fe78"));
        assert_eq!(tag.to_vec(), h("ab6e47d42cec13bdf53a67b21257bddf"));
        g.open(&[0u8; 12], &[], &mut buf, &tag).unwrap();
        assert_eq!(buf, [0u8; 16]);
    }

    #[test]
    fn multipart_aad_equals_single() {
        let g = GenericGcm::new(&[7u8; 32]).unwrap();
        let data: Vec<u8> = (0..100u8).collect();
        let n = [3u8; 12];
        let whole = g.gmac(&n, &[&data]);
        for cut1 in [0usize, 1, 15, 16, 17, 50] {
            for cut2 in [cut1, cut1 + 1, 99, 100] {
                let parts = [&data[..cut1], &data[cut1..cut2], &data[cut2..]];
                assert_eq!(g.gmac(&n, &parts), whole, "{cut1} {cut2}");
            }
        }
    }

    #[test]
    fn bad_tag_lengths() {
        let g = GenericGcm::new(&[0u8; 16]).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(
            g.seal(&[0; 12], &[], &mut buf, &mut [0u8; 3]),
            Err(CryptoError::BadLength)
        );
        assert_eq!(
            g.seal(&[0; 12], &[], &mut buf, &mut [0u8; 17]),
            Err(CryptoError::BadLength)
        );
        assert!(GenericGcm::new(&[0u8; 20]).is_none());
    }
}
