//! Keyed ESP encryption transforms ([`EspEncr`]).

use core::fmt;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{
    DecryptingKey, DecryptionContext, EncryptingKey, EncryptionContext, UnboundCipherKey,
};
use aws_lc_rs::iv::FixedLength;
use cipher::block_padding::NoPadding;
use cipher::consts::{U11, U12, U16, U8};
use cipher::generic_array::{ArrayLength, GenericArray};
use cipher::{
    BlockCipher, BlockDecrypt, BlockDecryptMut as _, BlockEncrypt, BlockEncryptMut as _,
    BlockSizeUser, InnerIvInit, KeyInit,
};
use zeroize::Zeroizing;

use crate::gcm::{with_aes, AesAny, GenericGcm};
use crate::table::{encr_info, EncrAlg};
use crate::weak::{des_keys_equal, is_weak_des_key};
use crate::CryptoError;

/// Label of the IV-generation key derivation (see [`EspEncr::make_iv`]).
const IV_KEY_LABEL: &[u8] = b"Ironswan ESP CBC IV generation key v1";

/// A block cipher of any of the CBC algorithms (all zeroized on drop).
// One per SA and never moved on the packet path: boxing would only add an indirection.
#[allow(clippy::large_enum_variant)]
enum BlockAny {
    Aes(AesAny),
    Des(des::Des),
    Tdes(des::TdesEde3),
    Blowfish(blowfish::Blowfish),
    Camellia128(camellia::Camellia128),
    Camellia192(camellia::Camellia192),
    Camellia256(camellia::Camellia256),
}

macro_rules! with_block {
    ($b:expr, |$c:ident| $body:expr) => {
        match $b {
            BlockAny::Aes(a) => with_aes!(a, |$c| $body),
            BlockAny::Des($c) => $body,
            BlockAny::Tdes($c) => $body,
            BlockAny::Blowfish($c) => $body,
            BlockAny::Camellia128($c) => $body,
            BlockAny::Camellia192($c) => $body,
            BlockAny::Camellia256($c) => $body,
        }
    };
}

impl BlockAny {
    /// Key the block cipher of a CBC algorithm; `None` if the key does not fit.
    fn new(alg: EncrAlg, key: &[u8]) -> Option<Self> {
        Some(match alg {
            EncrAlg::AesCbc => Self::Aes(AesAny::new(key)?),
            EncrAlg::DesCbc => Self::Des(des::Des::new_from_slice(key).ok()?),
            EncrAlg::TripleDesCbc => Self::Tdes(des::TdesEde3::new_from_slice(key).ok()?),
            EncrAlg::BlowfishCbc => Self::Blowfish(blowfish::Blowfish::new_from_slice(key).ok()?),
            EncrAlg::CamelliaCbc => match key.len() {
                16 => Self::Camellia128(camellia::Camellia128::new_from_slice(key).ok()?),
                24 => Self::Camellia192(camellia::Camellia192::new_from_slice(key).ok()?),
                32 => Self::Camellia256(camellia::Camellia256::new_from_slice(key).ok()?),
                _ => return None,
            },
            _ => return None,
        })
    }

    /// Encrypt one block in place (`block.len()` must be the block size).
    fn encrypt_block(&self, block: &mut [u8]) {
        with_block!(self, |c| encrypt_one(c, block));
    }

    fn cbc_encrypt(&self, iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
        with_block!(self, |c| cbc_encrypt_with(c, iv, buf))
    }

    fn cbc_decrypt(&self, iv: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
        with_block!(self, |c| cbc_decrypt_with(c, iv, buf))
    }
}

fn encrypt_one<C: BlockEncrypt>(c: &C, block: &mut [u8]) {
    if block.len() == C::block_size() {
        c.encrypt_block(GenericArray::from_mut_slice(block));
    }
}

fn cbc_encrypt_with<C: BlockEncrypt + BlockCipher>(
    c: &C,
    iv: &[u8],
    buf: &mut [u8],
) -> Result<(), CryptoError> {
    let bs = C::block_size();
    if iv.len() != bs || !buf.len().is_multiple_of(bs) {
        return Err(CryptoError::BadLength);
    }
    let enc = cbc::Encryptor::<&C>::inner_iv_init(c, GenericArray::from_slice(iv));
    let len = buf.len();
    enc.encrypt_padded_mut::<NoPadding>(buf, len)
        .map(|_| ())
        .map_err(|_| CryptoError::BadLength)
}

fn cbc_decrypt_with<C: BlockDecrypt + BlockCipher>(
    c: &C,
    iv: &[u8],
    buf: &mut [u8],
) -> Result<(), CryptoError> {
    let bs = C::block_size();
    if iv.len() != bs || !buf.len().is_multiple_of(bs) {
        return Err(CryptoError::BadLength);
    }
    let dec = cbc::Decryptor::<&C>::inner_iv_init(c, GenericArray::from_slice(iv));
    dec.decrypt_padded_mut::<NoPadding>(buf)
        .map(|_| ())
        .map_err(|_| CryptoError::BadLength)
}

fn ccm_seal_with<C, M>(
    c: &C,
    nonce: &[u8; 11],
    aad: &[u8],
    data: &mut [u8],
    tag_out: &mut [u8],
) -> Result<(), CryptoError>
where
    C: BlockCipher + BlockSizeUser<BlockSize = U16> + BlockEncrypt,
    M: ArrayLength<u8> + ccm::TagSize,
{
    use ccm::aead::AeadInPlace;
    let ccm = ccm::Ccm::<&C, M, U11>::from(c);
    let tag = ccm
        .encrypt_in_place_detached(GenericArray::from_slice(nonce), aad, data)
        .map_err(|_| CryptoError::BadLength)?;
    if tag_out.len() != tag.len() {
        return Err(CryptoError::BadLength);
    }
    tag_out.copy_from_slice(&tag);
    Ok(())
}

fn ccm_open_with<C, M>(
    c: &C,
    nonce: &[u8; 11],
    aad: &[u8],
    data: &mut [u8],
    tag: &[u8],
) -> Result<(), CryptoError>
where
    C: BlockCipher + BlockSizeUser<BlockSize = U16> + BlockEncrypt,
    M: ArrayLength<u8> + ccm::TagSize,
{
    use ccm::aead::AeadInPlace;
    if tag.len() != M::to_usize() {
        return Err(CryptoError::BadLength);
    }
    let ccm = ccm::Ccm::<&C, M, U11>::from(c);
    ccm.decrypt_in_place_detached(
        GenericArray::from_slice(nonce),
        aad,
        data,
        GenericArray::from_slice(tag),
    )
    .map_err(|_| CryptoError::AuthFailed)
}

/// Generates unpredictable CBC IVs without an RNG (NIST SP 800-38A Appendix C).
struct IvGen(Box<BlockAny>);

impl IvGen {
    /// Derive the IV-generation key from the SA's cipher key and key the cipher.
    fn new(alg: EncrAlg, sa_key: &[u8]) -> Option<Self> {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA512, sa_key);
        let mut okm = Zeroizing::new([0u8; 64]);
        let okm = aws_lc_rs::hmac::sign_to_buffer(&k, IV_KEY_LABEL, &mut okm[..]).ok()?;
        Some(Self(Box::new(BlockAny::new(
            alg,
            okm.get(..sa_key.len())?,
        )?)))
    }

    /// IV = E_Kiv(0...0 || seq as 8 bytes big-endian), one cipher block.
    fn make(&self, seq: u64, out: &mut [u8]) {
        let mut block = [0u8; 16];
        let bs = out.len();
        if let Some(b) = block.get_mut(..bs) {
            if let Some(tail) = b.get_mut(bs.saturating_sub(8)..) {
                tail.copy_from_slice(&seq.to_be_bytes()[8 - tail.len()..]);
            }
            self.0.encrypt_block(b);
            out.copy_from_slice(b);
        }
    }
}

// One per SA and never moved on the packet path: boxing would only add an indirection.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Null,
    /// AES-CBC through aws-lc-rs (precomputed encrypt and decrypt schedules).
    AesCbc {
        keys: Box<(EncryptingKey, DecryptingKey)>,
        ivgen: IvGen,
    },
    /// DES, 3DES, Blowfish and Camellia CBC through RustCrypto.
    Cbc {
        cipher: Box<BlockAny>,
        ivgen: IvGen,
    },
    /// AES-CTR (RFC 3686) through aws-lc-rs.
    AesCtr {
        key: Box<EncryptingKey>,
        nonce: Zeroizing<[u8; 4]>,
    },
    /// AES-GCM-16 and ChaCha20-Poly1305 through aws-lc-rs.
    Aws {
        key: LessSafeKey,
        salt: Zeroizing<[u8; 4]>,
    },
    /// AES-GCM-8/12 and AES-GMAC (ENCR_NULL_AUTH_AES_GMAC) through the generic GCM.
    Gcm {
        gcm: Box<GenericGcm>,
        salt: Zeroizing<[u8; 4]>,
        gmac_only: bool,
    },
    /// AES-CCM (RFC 4309) through RustCrypto `ccm`.
    Ccm {
        aes: Box<AesAny>,
        salt: Zeroizing<[u8; 3]>,
    },
}

/// A keyed ESP encryption transform.
///
/// Key material is zeroized on drop (aws-lc-rs keys clean up after
/// themselves); `Debug` prints the algorithm only.
pub struct EspEncr {
    alg: EncrAlg,
    iv_len: usize,
    icv_len: usize,
    block_len: usize,
    backend: Backend,
}

impl fmt::Debug for EspEncr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EspEncr")
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

fn expected_bits(alg: EncrAlg) -> &'static str {
    match alg {
        EncrAlg::Null => "0",
        EncrAlg::DesCbc => "64 (with parity bits)",
        EncrAlg::TripleDesCbc => "192 (with parity bits)",
        EncrAlg::BlowfishCbc => "40 to 448 in steps of 8",
        EncrAlg::AesCbc | EncrAlg::CamelliaCbc => "128, 192 or 256",
        EncrAlg::AesCtr => "160, 224 or 288 (128/192/256-bit key + 32-bit nonce)",
        EncrAlg::AesCcm8 | EncrAlg::AesCcm12 | EncrAlg::AesCcm16 => {
            "152, 216 or 280 (128/192/256-bit key + 24-bit salt)"
        }
        EncrAlg::AesGcm8 | EncrAlg::AesGcm12 | EncrAlg::AesGcm16 | EncrAlg::AesNullGmac => {
            "160, 224 or 288 (128/192/256-bit key + 32-bit salt)"
        }
        EncrAlg::ChaCha20Poly1305 => "288 (256-bit key + 32-bit salt)",
    }
}

fn salt4(s: &[u8]) -> Result<Zeroizing<[u8; 4]>, CryptoError> {
    let mut out = Zeroizing::new([0u8; 4]);
    if s.len() != 4 {
        return Err(CryptoError::BadLength);
    }
    out.copy_from_slice(s);
    Ok(out)
}

fn nonce12(salt: &[u8; 4], iv: &[u8]) -> Result<[u8; 12], CryptoError> {
    if iv.len() != 8 {
        return Err(CryptoError::BadLength);
    }
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(iv);
    Ok(n)
}

fn aws_cipher_alg(key: &[u8]) -> Option<&'static aws_lc_rs::cipher::Algorithm> {
    match key.len() {
        16 => Some(&aws_lc_rs::cipher::AES_128),
        24 => Some(&aws_lc_rs::cipher::AES_192),
        32 => Some(&aws_lc_rs::cipher::AES_256),
        _ => None,
    }
}

fn bad_key() -> CryptoError {
    // Only reachable if the table and a backend disagree about key sizes.
    CryptoError::BadLength
}

/// Split `buf` into (text, tag) with a tag of `icv` bytes.
fn split_tag(buf: &mut [u8], icv: usize) -> Result<(&mut [u8], &mut [u8]), CryptoError> {
    let n = buf.len().checked_sub(icv).ok_or(CryptoError::BadLength)?;
    Ok(buf.split_at_mut(n))
}

impl EspEncr {
    /// Key an ESP encryption transform.
    ///
    /// `key` is the whole PF_KEY key material: the cipher key followed by the
    /// salt where the algorithm has one (GCM/GMAC 4 bytes, CCM 3, CTR 4 nonce,
    /// ChaCha20-Poly1305 4). 3DES keys are 192 bits including parity.
    ///
    /// # Errors
    /// [`CryptoError::LegacyNotAllowed`] for an RFC 8221 MUST NOT algorithm
    /// without `allow_legacy`; [`CryptoError::BadKeyLength`] for key material of
    /// the wrong size; [`CryptoError::WeakKey`] for a weak or semi-weak DES key,
    /// a 3DES key with a weak part, or a 3DES key with K1 == K2 or K2 == K3
    /// (parity bits ignored).
    pub fn new(alg: EncrAlg, key: &[u8], allow_legacy: bool) -> Result<Self, CryptoError> {
        let info = encr_info(alg);
        if info.legacy && !allow_legacy {
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

        match alg {
            EncrAlg::DesCbc if is_weak_des_key(ck) => return Err(CryptoError::WeakKey),
            EncrAlg::TripleDesCbc => {
                let (k1, rest) = ck.split_at(8);
                let (k2, k3) = rest.split_at(8);
                if is_weak_des_key(k1)
                    || is_weak_des_key(k2)
                    || is_weak_des_key(k3)
                    || des_keys_equal(k1, k2)
                    || des_keys_equal(k2, k3)
                {
                    return Err(CryptoError::WeakKey);
                }
            }
            _ => {}
        }

        let backend = match alg {
            EncrAlg::Null => Backend::Null,
            EncrAlg::AesCbc => {
                let a = aws_cipher_alg(ck).ok_or_else(bad_key)?;
                let enc = UnboundCipherKey::new(a, ck)
                    .and_then(EncryptingKey::cbc)
                    .map_err(|_| bad_key())?;
                let dec = UnboundCipherKey::new(a, ck)
                    .and_then(DecryptingKey::cbc)
                    .map_err(|_| bad_key())?;
                let ivgen = IvGen::new(alg, ck).ok_or_else(bad_key)?;
                Backend::AesCbc {
                    keys: Box::new((enc, dec)),
                    ivgen,
                }
            }
            EncrAlg::DesCbc
            | EncrAlg::TripleDesCbc
            | EncrAlg::BlowfishCbc
            | EncrAlg::CamelliaCbc => Backend::Cbc {
                cipher: Box::new(BlockAny::new(alg, ck).ok_or_else(bad_key)?),
                ivgen: IvGen::new(alg, ck).ok_or_else(bad_key)?,
            },
            EncrAlg::AesCtr => {
                let a = aws_cipher_alg(ck).ok_or_else(bad_key)?;
                let key = UnboundCipherKey::new(a, ck)
                    .and_then(EncryptingKey::ctr)
                    .map_err(|_| bad_key())?;
                Backend::AesCtr {
                    key: Box::new(key),
                    nonce: salt4(salt)?,
                }
            }
            EncrAlg::AesGcm16 | EncrAlg::ChaCha20Poly1305 => {
                let a: &'static aead::Algorithm = match (alg, ck.len()) {
                    (EncrAlg::ChaCha20Poly1305, 32) => &aead::CHACHA20_POLY1305,
                    (EncrAlg::AesGcm16, 16) => &aead::AES_128_GCM,
                    (EncrAlg::AesGcm16, 24) => &aead::AES_192_GCM,
                    (EncrAlg::AesGcm16, 32) => &aead::AES_256_GCM,
                    _ => return Err(bad_key()),
                };
                let key = UnboundKey::new(a, ck).map_err(|_| bad_key())?;
                Backend::Aws {
                    key: LessSafeKey::new(key),
                    salt: salt4(salt)?,
                }
            }
            EncrAlg::AesGcm8 | EncrAlg::AesGcm12 | EncrAlg::AesNullGmac => Backend::Gcm {
                gcm: Box::new(GenericGcm::new(ck).ok_or_else(bad_key)?),
                salt: salt4(salt)?,
                gmac_only: alg == EncrAlg::AesNullGmac,
            },
            EncrAlg::AesCcm8 | EncrAlg::AesCcm12 | EncrAlg::AesCcm16 => {
                let mut s = Zeroizing::new([0u8; 3]);
                if salt.len() != 3 {
                    return Err(bad_key());
                }
                s.copy_from_slice(salt);
                Backend::Ccm {
                    aes: Box::new(AesAny::new(ck).ok_or_else(bad_key)?),
                    salt: s,
                }
            }
        };
        Ok(Self {
            alg,
            iv_len: info.iv_bytes,
            icv_len: info.icv_bytes,
            block_len: info.block_bytes,
            backend,
        })
    }

    /// The algorithm.
    #[must_use]
    #[inline]
    pub fn alg(&self) -> EncrAlg {
        self.alg
    }

    /// Bytes of IV on the wire.
    #[must_use]
    #[inline]
    pub fn iv_len(&self) -> usize {
        self.iv_len
    }

    /// Bytes of AEAD tag (0 unless AEAD).
    #[must_use]
    #[inline]
    pub fn icv_len(&self) -> usize {
        self.icv_len
    }

    /// Padding alignment of the cipher: 16 for AES/Camellia-CBC, 8 for
    /// DES/3DES/Blowfish, 1 for counter modes and NULL.
    #[must_use]
    #[inline]
    pub fn block_len(&self) -> usize {
        self.block_len
    }

    /// Whether the transform provides integrity itself (GCM, CCM,
    /// ChaCha20-Poly1305, and ENCR_NULL_AUTH_AES_GMAC).
    #[must_use]
    #[inline]
    pub fn is_aead(&self) -> bool {
        self.icv_len > 0
    }

    /// Write the wire IV for the packet with 64-bit sequence number `seq`
    /// into `out[..iv_len()]`.
    ///
    /// * Counter modes (CTR, GCM, CCM, ChaCha20-Poly1305, GMAC): the 8-byte
    ///   big-endian `seq`. It is unique per key, which is all these modes need
    ///   (RFC 4106 §3.1, RFC 3686 §3.1, RFC 4309 §3.1, RFC 7634 §2).
    /// * CBC modes: `E(K_iv, 0..0 || seq)`, one cipher block, per NIST SP
    ///   800-38A Appendix C (encrypting a nonce gives an unpredictable IV).
    ///   `K_iv` is the first `len(K)` bytes of HMAC-SHA-512(K, "Ironswan ESP
    ///   CBC IV generation key v1"), K being the SA's cipher key, so the IV
    ///   blocks never come from the data key itself.
    ///
    /// If `out` is shorter than `iv_len()` nothing is written.
    #[inline]
    pub fn make_iv(&self, seq: u64, out: &mut [u8]) {
        let Some(out) = out.get_mut(..self.iv_len) else {
            return;
        };
        match &self.backend {
            Backend::Null => {}
            Backend::AesCbc { ivgen, .. } | Backend::Cbc { ivgen, .. } => ivgen.make(seq, out),
            Backend::AesCtr { .. }
            | Backend::Aws { .. }
            | Backend::Gcm { .. }
            | Backend::Ccm { .. } => {
                out.copy_from_slice(&seq.to_be_bytes());
            }
        }
    }

    fn check_iv(&self, iv: &[u8]) -> Result<(), CryptoError> {
        if iv.len() == self.iv_len {
            Ok(())
        } else {
            Err(CryptoError::BadLength)
        }
    }

    fn ctr_block(nonce: &[u8; 4], iv: &[u8]) -> [u8; 16] {
        // RFC 3686 §4: nonce || IV || block counter starting at 1.
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(nonce);
        b[4..12].copy_from_slice(iv);
        b[15] = 1;
        b
    }

    /// Encrypt in place.
    ///
    /// `buf` is the plaintext followed by `icv_len()` bytes of room for the tag,
    /// which is written there. For plain ciphers `buf.len()` must be a multiple
    /// of `block_len()`. `aad` is the ESP AAD built by the caller (SPI || seq,
    /// or SPI || seq_hi || seq_lo with ESN); plain ciphers ignore it.
    /// ENCR_NULL_AUTH_AES_GMAC encrypts nothing: the tag is GMAC over
    /// aad || iv || plaintext (RFC 4543 §3.2, §3.3).
    ///
    /// # Errors
    /// [`CryptoError::BadLength`] for a wrong IV length, a buffer shorter than
    /// the tag, or CBC data that is not a whole number of blocks.
    pub fn seal(&self, iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
        self.check_iv(iv)?;
        match &self.backend {
            Backend::Null => Ok(()),
            Backend::AesCbc { keys, .. } => {
                let enc = &keys.0;
                let iv: [u8; 16] = iv.try_into().map_err(|_| CryptoError::BadLength)?;
                if !buf.len().is_multiple_of(16) {
                    return Err(CryptoError::BadLength);
                }
                enc.less_safe_encrypt(buf, EncryptionContext::Iv128(FixedLength::from(iv)))
                    .map(|_| ())
                    .map_err(|_| CryptoError::BadLength)
            }
            Backend::Cbc { cipher, .. } => cipher.cbc_encrypt(iv, buf),
            Backend::AesCtr { key, nonce } => {
                let block = Self::ctr_block(nonce, iv);
                key.less_safe_encrypt(buf, EncryptionContext::Iv128(FixedLength::from(block)))
                    .map(|_| ())
                    .map_err(|_| CryptoError::BadLength)
            }
            Backend::Aws { key, salt } => {
                let (data, tag_out) = split_tag(buf, 16)?;
                let nonce = Nonce::assume_unique_for_key(nonce12(salt, iv)?);
                let tag = key
                    .seal_in_place_separate_tag(nonce, Aad::from(aad), data)
                    .map_err(|_| CryptoError::BadLength)?;
                tag_out.copy_from_slice(tag.as_ref());
                Ok(())
            }
            Backend::Gcm {
                gcm,
                salt,
                gmac_only,
            } => {
                let (data, tag_out) = split_tag(buf, self.icv_len)?;
                let nonce = nonce12(salt, iv)?;
                if *gmac_only {
                    let tag = gcm.gmac(&nonce, &[aad, iv, data]);
                    tag_out.copy_from_slice(&tag[..tag_out.len()]);
                    Ok(())
                } else {
                    gcm.seal(&nonce, &[aad], data, tag_out)
                }
            }
            Backend::Ccm { aes, salt } => {
                let (data, tag_out) = split_tag(buf, self.icv_len)?;
                let nonce = ccm_nonce(salt, iv)?;
                with_aes!(&**aes, |c| match self.icv_len {
                    8 => ccm_seal_with::<_, U8>(c, &nonce, aad, data, tag_out),
                    12 => ccm_seal_with::<_, U12>(c, &nonce, aad, data, tag_out),
                    _ => ccm_seal_with::<_, U16>(c, &nonce, aad, data, tag_out),
                })
            }
        }
    }

    /// Decrypt in place.
    ///
    /// `buf` is the ciphertext followed by the `icv_len()`-byte tag. AEAD tags
    /// are checked in constant time. On [`CryptoError::AuthFailed`] the
    /// content of `buf` is unspecified and must not be used.
    ///
    /// # Errors
    /// [`CryptoError::BadLength`] as for [`EspEncr::seal`];
    /// [`CryptoError::AuthFailed`] if the tag does not verify.
    pub fn open(&self, iv: &[u8], aad: &[u8], buf: &mut [u8]) -> Result<(), CryptoError> {
        self.check_iv(iv)?;
        match &self.backend {
            Backend::Null => Ok(()),
            Backend::AesCbc { keys, .. } => {
                let dec = &keys.1;
                let iv: [u8; 16] = iv.try_into().map_err(|_| CryptoError::BadLength)?;
                if !buf.len().is_multiple_of(16) {
                    return Err(CryptoError::BadLength);
                }
                dec.decrypt(buf, DecryptionContext::Iv128(FixedLength::from(iv)))
                    .map(|_| ())
                    .map_err(|_| CryptoError::BadLength)
            }
            Backend::Cbc { cipher, .. } => cipher.cbc_decrypt(iv, buf),
            Backend::AesCtr { .. } => self.seal(iv, aad, buf),
            Backend::Aws { key, salt } => {
                let (data, tag) = split_tag(buf, 16)?;
                let nonce = Nonce::assume_unique_for_key(nonce12(salt, iv)?);
                key.open_in_place_separate_tag(nonce, Aad::from(aad), tag, data)
                    .map(|_| ())
                    .map_err(|_| CryptoError::AuthFailed)
            }
            Backend::Gcm {
                gcm,
                salt,
                gmac_only,
            } => {
                let (data, tag) = split_tag(buf, self.icv_len)?;
                let nonce = nonce12(salt, iv)?;
                if *gmac_only {
                    let expected = gcm.gmac(&nonce, &[aad, iv, data]);
                    let ok: bool =
                        subtle::ConstantTimeEq::ct_eq(&expected[..tag.len()], &*tag).into();
                    if ok {
                        Ok(())
                    } else {
                        Err(CryptoError::AuthFailed)
                    }
                } else {
                    gcm.open(&nonce, &[aad], data, tag)
                }
            }
            Backend::Ccm { aes, salt } => {
                let (data, tag) = split_tag(buf, self.icv_len)?;
                let nonce = ccm_nonce(salt, iv)?;
                with_aes!(&**aes, |c| match self.icv_len {
                    8 => ccm_open_with::<_, U8>(c, &nonce, aad, data, tag),
                    12 => ccm_open_with::<_, U12>(c, &nonce, aad, data, tag),
                    _ => ccm_open_with::<_, U16>(c, &nonce, aad, data, tag),
                })
            }
        }
    }
}

/// RFC 4309 §4: nonce = 3-byte salt || 8-byte IV.
fn ccm_nonce(salt: &[u8; 3], iv: &[u8]) -> Result<[u8; 11], CryptoError> {
    if iv.len() != 8 {
        return Err(CryptoError::BadLength);
    }
    let mut n = [0u8; 11];
    n[..3].copy_from_slice(salt);
    n[3..].copy_from_slice(iv);
    Ok(n)
}

#[cfg(test)]
mod size_tests {
    /// Every SA holds an `EspEncr`: large key schedules (Blowfish, generic GCM tables, CCM)
    /// live behind a box so that an SADB with a million SAs stays small.
    #[test]
    fn esp_encr_is_small() {
        let n = core::mem::size_of::<super::EspEncr>();
        assert!(n <= 1024, "EspEncr is {n} bytes");
    }
}
