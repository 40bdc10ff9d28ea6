//! The Encrypted and Authenticated payload (RFC 7296 §3.14).
//!
//! ```text
//!  IKE header | [unprotected payloads] | SK generic header | IV | ciphertext | ICV
//!                                                               \_ inner payloads | padding | pad length
//! ```
//!
//! * AES-CBC with HMAC-SHA2 (RFC 7296 §3.14, RFC 4868): the plaintext is padded to the
//!   16-byte block; the ICV is the truncated HMAC with SK_a over the whole message from the
//!   first byte of the header to the last byte of ciphertext. The ICV is checked before
//!   anything is decrypted.
//! * AES-GCM-16 (RFC 5282) and ChaCha20-Poly1305 (RFC 7634): nonce = the 4-byte salt at the
//!   end of SK_e || the 8-byte IV; the AAD is the message from the first byte of the header
//!   to the end of the SK generic header (RFC 5282 §5.1); no padding beyond the pad-length
//!   byte.
//!
//! The IV is an input: the caller supplies [`SkCipher::iv_len`] fresh random bytes per
//! message (RFC 7296 §3.14 wants CBC IVs unpredictable; GCM and ChaCha20 only need them
//! never to repeat under one key).

use zeroize::Zeroizing;

use ipsec_crypto::{auth_by_ikev2, encr_by_ikev2, AuthAlg, EncrAlg, EspEncr, Integ};

use crate::consts::{payload as pt, transform};
use crate::error::CryptoError;
use crate::keys::KeySizes;
use crate::wire::{emit_chain, parse_chain, Header, Message, Payload, HEADER_LEN};

/// An IKE SA's encryption and integrity transforms, by IANA ID and key length.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SkSuite {
    /// ENCR transform ID: 12 (AES-CBC), 20 (AES-GCM-16) or 28 (ChaCha20-Poly1305).
    pub encr: u16,
    /// Cipher key length in bits (the Key Length attribute; 256 for ChaCha20-Poly1305).
    pub key_bits: u16,
    /// INTEG transform ID for AES-CBC: 12, 13 or 14 (HMAC-SHA2-256-128/384-192/512-256);
    /// `None` with an AEAD cipher.
    pub integ: Option<u16>,
}

impl SkSuite {
    fn algs(&self) -> Result<(EncrAlg, Option<AuthAlg>, usize), CryptoError> {
        let unsupported_e = CryptoError::UnsupportedTransform {
            ty: transform::ENCR,
            id: self.encr,
        };
        let e = encr_by_ikev2(self.encr).ok_or(unsupported_e)?;
        if !matches!(
            e.alg,
            EncrAlg::AesCbc | EncrAlg::AesGcm16 | EncrAlg::ChaCha20Poly1305
        ) || !e.key_bits.accepts(usize::from(self.key_bits))
        {
            return Err(unsupported_e);
        }
        let integ = match (e.aead, self.integ) {
            (true, None) => None,
            (false, Some(id)) => {
                let a = auth_by_ikev2(id).ok_or(CryptoError::UnsupportedTransform {
                    ty: transform::INTEG,
                    id,
                })?;
                if !matches!(
                    a.alg,
                    AuthAlg::HmacSha256 | AuthAlg::HmacSha384 | AuthAlg::HmacSha512
                ) {
                    return Err(CryptoError::UnsupportedTransform {
                        ty: transform::INTEG,
                        id,
                    });
                }
                Some(a.alg)
            }
            (_, id) => {
                return Err(CryptoError::UnsupportedTransform {
                    ty: transform::INTEG,
                    id: id.unwrap_or(0),
                })
            }
        };
        let encr_len = usize::from(self.key_bits / 8).saturating_add(e.salt_bytes);
        Ok((e.alg, integ, encr_len))
    }

    /// Key sizes for [`crate::keys::IkeKeys`] (SK_e with salt, SK_a).
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedTransform`] for a suite this module cannot run.
    pub fn key_sizes(&self) -> Result<KeySizes, CryptoError> {
        let (_, integ, encr) = self.algs()?;
        let integ = integ.map_or(0, |a| {
            usize::from(ipsec_crypto::auth_info(a).key_bits.min / 8)
        });
        Ok(KeySizes { encr, integ })
    }
}

/// One direction's SK payload protection (built from SK_ei/SK_ai or SK_er/SK_ar).
#[derive(Debug)]
pub struct SkCipher {
    encr: EspEncr,
    integ: Option<Integ>,
}

impl SkCipher {
    /// Keys the transforms.
    ///
    /// # Errors
    /// [`CryptoError::UnsupportedTransform`] or a key of the wrong size.
    pub fn new(suite: SkSuite, sk_e: &[u8], sk_a: &[u8]) -> Result<Self, CryptoError> {
        let (ealg, aalg, _) = suite.algs()?;
        let encr = EspEncr::new(ealg, sk_e, false)?;
        let integ = match aalg {
            Some(a) => Some(Integ::new(a, sk_a, false, false)?),
            None => None,
        };
        Ok(Self { encr, integ })
    }

    /// Bytes of IV per message.
    #[must_use]
    pub fn iv_len(&self) -> usize {
        self.encr.iv_len()
    }

    /// Bytes of integrity checksum data per message.
    #[must_use]
    pub fn icv_len(&self) -> usize {
        self.integ
            .as_ref()
            .map_or(self.encr.icv_len(), Integ::icv_len)
    }

    /// Builds a whole protected message: `header`, then an SK payload holding `inner`.
    /// `iv` must be [`SkCipher::iv_len`] fresh random bytes.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] for an IV of the wrong length or inner payloads that
    /// cannot be encoded.
    pub fn seal(
        &self,
        header: &Header,
        inner: &[Payload<'_>],
        iv: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if iv.len() != self.iv_len() {
            return Err(CryptoError::Malformed("IV of the wrong length"));
        }
        let mut plain = Zeroizing::new(Vec::new());
        let first = emit_chain(inner, &mut plain)
            .map_err(|_| CryptoError::Malformed("inner payloads cannot be encoded"))?;
        let block = self.encr.block_len().max(1);
        let pad = (block - (plain.len() + 1) % block) % block;
        let padded = plain.len() + pad;
        plain.resize(padded, 0);
        plain.push(u8::try_from(pad).map_err(|_| CryptoError::Malformed("padding"))?);

        let icv = self.icv_len();
        let sk_len = 4 + iv.len() + plain.len() + icv;
        let sk_len16 =
            u16::try_from(sk_len).map_err(|_| CryptoError::Malformed("SK payload too long"))?;
        let total = u32::try_from(HEADER_LEN + sk_len)
            .map_err(|_| CryptoError::Malformed("message too long"))?;
        let mut out = Vec::with_capacity(HEADER_LEN + sk_len);
        header.emit(pt::SK, total, &mut out);
        out.push(first);
        out.push(0);
        out.extend_from_slice(&sk_len16.to_be_bytes());
        let aad_end = out.len();
        out.extend_from_slice(iv);
        let ct_start = out.len();
        out.extend_from_slice(&plain);
        out.resize(out.len() + icv, 0);
        let (head, body) = out.split_at_mut(ct_start);
        match &self.integ {
            None => self.encr.seal(iv, &head[..aad_end], body)?,
            Some(integ) => {
                let ct_len = body.len() - icv;
                self.encr.seal(iv, &[], &mut body[..ct_len])?;
                let mac_end = out.len() - icv;
                let (signed, tag) = out.split_at_mut(mac_end);
                integ.compute(&[], &[signed], tag)?;
            }
        }
        Ok(out)
    }

    /// Checks and decrypts the SK payload of `msg` (whose last payload must be SK) into
    /// `plain`, and parses the inner payloads from it. Returns the message header and the
    /// inner payloads, which borrow `plain`.
    ///
    /// # Errors
    /// [`CryptoError::IntegrityFailed`] when the ICV or tag does not verify (the caller
    /// drops the message silently, RFC 7296 §2.21.1), [`CryptoError::Malformed`] for bad
    /// lengths or padding, or a message that does not parse or has no SK payload.
    pub fn open<'p>(
        &self,
        msg: &[u8],
        plain: &'p mut Zeroizing<Vec<u8>>,
    ) -> Result<(Header, Vec<Payload<'p>>), CryptoError> {
        let parsed = Message::parse(msg).map_err(|_| CryptoError::Malformed("message"))?;
        let Some(Payload::Sk(sk)) = parsed.payloads.last() else {
            return Err(CryptoError::Malformed("no SK payload"));
        };
        let header = parsed.header;
        let first = sk.first;
        let body_start = msg.len() - sk.body.len();
        let (iv_len, icv) = (self.iv_len(), self.icv_len());
        let ct_len = sk
            .body
            .len()
            .checked_sub(iv_len + icv)
            .ok_or(CryptoError::Malformed("SK payload shorter than IV and ICV"))?;
        let block = self.encr.block_len().max(1);
        if ct_len == 0 || ct_len % block != 0 {
            return Err(CryptoError::Malformed(
                "ciphertext not a whole number of blocks",
            ));
        }
        let iv = &sk.body[..iv_len];
        plain.clear();
        match &self.integ {
            None => {
                plain.extend_from_slice(&sk.body[iv_len..]);
                self.encr.open(iv, &msg[..body_start], plain)?;
                plain.truncate(ct_len);
            }
            Some(integ) => {
                let mac_end = msg.len() - icv;
                if !integ.verify(&[], &[&msg[..mac_end]], &msg[mac_end..]) {
                    return Err(CryptoError::IntegrityFailed);
                }
                plain.extend_from_slice(&sk.body[iv_len..iv_len + ct_len]);
                self.encr.open(iv, &[], plain)?;
            }
        }
        let pad = usize::from(*plain.last().unwrap_or(&0));
        let inner_len = plain
            .len()
            .checked_sub(pad + 1)
            .ok_or(CryptoError::Malformed("pad length beyond the plaintext"))?;
        plain.truncate(inner_len);
        let plain: &'p [u8] = plain;
        let inner = parse_chain(first, plain, 0)
            .map_err(|_| CryptoError::Malformed("inner payloads do not parse"))?;
        if inner.iter().any(Payload::is_encrypted) {
            return Err(CryptoError::Malformed("encrypted payload inside SK"));
        }
        Ok((header, inner))
    }
}

#[cfg(test)]
mod test {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::consts::exchange;
    use crate::wire::Notify;

    pub(crate) const SUITES: [SkSuite; 5] = [
        SkSuite {
            encr: 20,
            key_bits: 128,
            integ: None,
        },
        SkSuite {
            encr: 20,
            key_bits: 256,
            integ: None,
        },
        SkSuite {
            encr: 12,
            key_bits: 128,
            integ: Some(12),
        },
        SkSuite {
            encr: 12,
            key_bits: 256,
            integ: Some(14),
        },
        SkSuite {
            encr: 28,
            key_bits: 256,
            integ: None,
        },
    ];

    fn header() -> Header {
        Header {
            spi_i: [1; 8],
            spi_r: [2; 8],
            minor: 0,
            exchange: exchange::INFORMATIONAL,
            flags: crate::consts::flags::INITIATOR,
            message_id: 7,
        }
    }

    fn cipher(s: SkSuite) -> SkCipher {
        let k = s.key_sizes().unwrap();
        SkCipher::new(s, &vec![0x42; k.encr], &vec![0x24; k.integ]).unwrap()
    }

    #[test]
    fn seal_open_round_trip_every_suite() {
        let inner = vec![
            Payload::Notify(Notify {
                protocol: 0,
                spi: &[],
                ty: 16384,
                data: &[],
            }),
            Payload::VendorId(b"ironswan"),
        ];
        for s in SUITES {
            let c = cipher(s);
            let iv = vec![9u8; c.iv_len()];
            let msg = c.seal(&header(), &inner, &iv).unwrap();
            let parsed = Message::parse(&msg).unwrap();
            assert!(matches!(parsed.payloads[..], [Payload::Sk(_)]));
            let mut plain = Zeroizing::new(Vec::new());
            let (h, got) = c.open(&msg, &mut plain).unwrap();
            assert_eq!(h, header());
            assert_eq!(got, inner, "{s:?}");
            // Any flipped bit fails the integrity check, header included.
            for at in [0, 17, 30, msg.len() / 2, msg.len() - 1] {
                let mut bad = msg.clone();
                bad[at] ^= 0x40;
                let mut p = Zeroizing::new(Vec::new());
                assert!(c.open(&bad, &mut p).is_err(), "{s:?} flip at {at}");
            }
        }
    }

    #[test]
    fn other_key_fails_integrity() {
        for s in SUITES {
            let c = cipher(s);
            let k = s.key_sizes().unwrap();
            let other = SkCipher::new(s, &vec![0x43; k.encr], &vec![0x25; k.integ]).unwrap();
            let msg = c
                .seal(&header(), &[Payload::Nonce(&[1; 32])], &vec![0; c.iv_len()])
                .unwrap();
            let mut p = Zeroizing::new(Vec::new());
            assert_eq!(
                other.open(&msg, &mut p).unwrap_err(),
                CryptoError::IntegrityFailed
            );
        }
    }

    #[test]
    fn cbc_pads_to_blocks_and_aead_does_not() {
        let inner = [Payload::Nonce(&[1; 20])]; // 24 bytes of payload
        let cbc = cipher(SUITES[2]);
        let m = cbc.seal(&header(), &inner, &[0; 16]).unwrap();
        // header 28 + SK header 4 + IV 16 + 32 (24 + 7 pad + 1) + ICV 16
        assert_eq!(m.len(), 28 + 4 + 16 + 32 + 16);
        let gcm = cipher(SUITES[0]);
        let m = gcm.seal(&header(), &inner, &[0; 8]).unwrap();
        assert_eq!(m.len(), 28 + 4 + 8 + 25 + 16);
    }

    #[test]
    fn unsupported_suites() {
        for s in [
            SkSuite {
                encr: 12,
                key_bits: 128,
                integ: None,
            },
            SkSuite {
                encr: 20,
                key_bits: 128,
                integ: Some(12),
            },
            SkSuite {
                encr: 3,
                key_bits: 192,
                integ: Some(12),
            },
            SkSuite {
                encr: 12,
                key_bits: 128,
                integ: Some(2),
            },
            SkSuite {
                encr: 20,
                key_bits: 100,
                integ: None,
            },
        ] {
            assert!(
                matches!(s.key_sizes(), Err(CryptoError::UnsupportedTransform { .. })),
                "{s:?}"
            );
        }
    }

    #[test]
    fn truncated_and_misaligned_rejected() {
        let c = cipher(SUITES[2]);
        let msg = c
            .seal(&header(), &[Payload::VendorId(b"x")], &[3; 16])
            .unwrap();
        let mut p = Zeroizing::new(Vec::new());
        // Drop 5 bytes of ciphertext and fix up the lengths: not a whole number of blocks.
        let mut cut = msg.clone();
        cut.drain(50..55);
        let n = cut.len() as u32;
        cut[24..28].copy_from_slice(&n.to_be_bytes());
        let sk = (n as u16) - 28;
        cut[30..32].copy_from_slice(&sk.to_be_bytes());
        assert!(matches!(
            c.open(&cut, &mut p),
            Err(CryptoError::Malformed(_))
        ));
        let mut tiny = msg[..32 + 10].to_vec();
        tiny[24..28].copy_from_slice(&42u32.to_be_bytes());
        tiny[30..32].copy_from_slice(&14u16.to_be_bytes());
        assert!(c.open(&tiny, &mut p).is_err());
    }
}
