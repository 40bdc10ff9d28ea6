//! Raw primitives behind the transforms, exposed for test harnesses only
//! (Wycheproof runs need arbitrary key, nonce and tag sizes that the ESP/AH
//! framing does not allow). Not part of the supported API.

use aes::{Aes128, Aes192, Aes256};
use cmac::Cmac;
use hmac::{Hmac, Mac};

use crate::gcm::GenericGcm;
use crate::integ::aws_hmac_alg;
use crate::xcbc::XcbcMac;
use crate::{AuthAlg, CryptoError};

fn gcm_and_nonce(key: &[u8], nonce: &[u8]) -> Result<(GenericGcm, [u8; 12]), CryptoError> {
    let g = GenericGcm::new(key).ok_or(CryptoError::BadLength)?;
    let n: [u8; 12] = nonce.try_into().map_err(|_| CryptoError::BadLength)?;
    Ok((g, n))
}

/// Generic AES-GCM seal with a 96-bit nonce and a tag of `tag_out.len()` (4..=16) bytes.
///
/// # Errors
/// [`CryptoError::BadLength`] on any size the generic GCM does not support.
pub fn gcm_seal(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    tag_out: &mut [u8],
) -> Result<(), CryptoError> {
    let (g, n) = gcm_and_nonce(key, nonce)?;
    g.seal(&n, &[aad], buf, tag_out)
}

/// Generic AES-GCM open with a 96-bit nonce and a (possibly truncated) tag.
///
/// # Errors
/// [`CryptoError::BadLength`] or [`CryptoError::AuthFailed`].
pub fn gcm_open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8],
) -> Result<(), CryptoError> {
    let (g, n) = gcm_and_nonce(key, nonce)?;
    g.open(&n, &[aad], buf, tag)
}

/// AES-GMAC (96-bit nonce) over the concatenation of `parts`.
///
/// # Errors
/// [`CryptoError::BadLength`] on an unsupported key or nonce size.
pub fn gmac(key: &[u8], nonce: &[u8], parts: &[&[u8]]) -> Result<[u8; 16], CryptoError> {
    let (g, n) = gcm_and_nonce(key, nonce)?;
    Ok(g.gmac(&n, parts))
}

/// Full-length HMAC with a key of any length (MD5, SHA-1, SHA-2).
///
/// # Errors
/// [`CryptoError::NotAllowedHere`] for a non-HMAC algorithm.
pub fn hmac(alg: AuthAlg, key: &[u8], parts: &[&[u8]]) -> Result<Vec<u8>, CryptoError> {
    if alg == AuthAlg::HmacMd5 {
        let mut m = Hmac::<md5::Md5>::new_from_slice(key).map_err(|_| CryptoError::BadLength)?;
        for p in parts {
            m.update(p);
        }
        return Ok(m.finalize().into_bytes().to_vec());
    }
    let a = aws_hmac_alg(alg).ok_or(CryptoError::NotAllowedHere)?;
    let k = aws_lc_rs::hmac::Key::new(a, key);
    let mut ctx = aws_lc_rs::hmac::Context::with_key(&k);
    for p in parts {
        ctx.update(p);
    }
    Ok(ctx.sign().as_ref().to_vec())
}

fn cmac_with<M: Mac + cipher::KeyInit>(
    key: &[u8],
    parts: &[&[u8]],
) -> Result<[u8; 16], CryptoError> {
    let mut m = <M as Mac>::new_from_slice(key).map_err(|_| CryptoError::BadLength)?;
    for p in parts {
        m.update(p);
    }
    let out = m.finalize().into_bytes();
    out.as_slice()
        .try_into()
        .map_err(|_| CryptoError::BadLength)
}

/// Full 128-bit AES-CMAC (RFC 4493) with a 128, 192 or 256-bit key.
///
/// # Errors
/// [`CryptoError::BadLength`] on any other key size.
pub fn aes_cmac(key: &[u8], parts: &[&[u8]]) -> Result<[u8; 16], CryptoError> {
    match key.len() {
        16 => cmac_with::<Cmac<Aes128>>(key, parts),
        24 => cmac_with::<Cmac<Aes192>>(key, parts),
        32 => cmac_with::<Cmac<Aes256>>(key, parts),
        _ => Err(CryptoError::BadLength),
    }
}

/// Full 128-bit AES-XCBC-MAC (RFC 3566) with a 128-bit key.
///
/// # Errors
/// [`CryptoError::BadLength`] on any other key size.
pub fn aes_xcbc_mac(key: &[u8], parts: &[&[u8]]) -> Result<[u8; 16], CryptoError> {
    Ok(XcbcMac::new(key).ok_or(CryptoError::BadLength)?.mac(parts))
}
