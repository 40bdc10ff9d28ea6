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
//! The Encrypted Fragment payload (RFC 7383 §2.5) is the same construction with the
//! Fragment Number and Total Fragments fields between the generic header and the IV; they
//! are covered by the AAD or MAC. [`SkCipher::seal_fragments`] splits a message,
//! [`SkCipher::open_fragment`] checks one fragment and [`Reassembly`] puts authenticated
//! fragments back together within [`ReassemblyLimits`].
//!
//! The IV is an input: the caller supplies [`SkCipher::iv_len`] fresh random bytes per
//! message (RFC 7296 §3.14 wants CBC IVs unpredictable; GCM and ChaCha20 only need them
//! never to repeat under one key).

use core::fmt;

use zeroize::Zeroizing;

use ipsec_crypto::{auth_by_ikev2, encr_by_ikev2, AuthAlg, EncrAlg, EspEncr, Integ};

use crate::consts::{payload as pt, transform};
use crate::error::{CryptoError, ParseError};
use crate::keys::KeySizes;
use crate::wire::{emit_chain, parse_chain, Header, Message, Payload, HEADER_LEN};
use crate::Random;

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
        let mut plain = Zeroizing::new(Vec::new());
        let first = emit_chain(inner, &mut plain)
            .map_err(|_| CryptoError::Malformed("inner payloads cannot be encoded"))?;
        self.seal_raw(header, pt::SK, first, &[], &plain, iv)
    }

    /// Builds a whole protected message from an already encoded inner payload chain
    /// `content` whose first payload is of type `first`: nothing in it is checked, so
    /// that tests can protect malformed chains (unknown critical payloads, bad lengths)
    /// and exercise the receiver's payload checks rather than its integrity check.
    ///
    /// # Errors
    /// As [`SkCipher::seal`].
    pub fn seal_content(
        &self,
        header: &Header,
        first: u8,
        content: &[u8],
        iv: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        self.seal_raw(header, pt::SK, first, &[], content, iv)
    }

    /// [`SkCipher::seal_content`] for an Encrypted Fragment message: fragment `number`
    /// of `total` (RFC 7383 §2.5) whose content is `content`, unchecked (for tests of the
    /// receiver's checks of a reassembled message).
    ///
    /// # Errors
    /// As [`SkCipher::seal`].
    pub fn seal_fragment_content(
        &self,
        header: &Header,
        first: u8,
        (number, total): (u16, u16),
        content: &[u8],
        iv: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut prefix = [0u8; 4];
        prefix[..2].copy_from_slice(&number.to_be_bytes());
        prefix[2..].copy_from_slice(&total.to_be_bytes());
        self.seal_raw(header, pt::SKF, first, &prefix, content, iv)
    }

    /// Seals `content` (without padding) in one SK or SKF payload after `header`. `prefix`
    /// is the part of the payload body before the IV (the SKF fragment numbers). The AAD
    /// of the AEAD ciphers and the MAC of the others both start at the first byte of the
    /// header: the AAD ends where the IV begins (RFC 5282 §5.1, RFC 7383 §2.5), the MAC
    /// covers everything up to the ICV (RFC 7296 §3.14).
    fn seal_raw(
        &self,
        header: &Header,
        ty: u8,
        first: u8,
        prefix: &[u8],
        content: &[u8],
        iv: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        if iv.len() != self.iv_len() {
            return Err(CryptoError::Malformed("IV of the wrong length"));
        }
        let block = self.encr.block_len().max(1);
        let pad = (block - (content.len() + 1) % block) % block;
        let plain_len = content.len() + pad + 1;
        let icv = self.icv_len();
        let sk_len = 4 + prefix.len() + iv.len() + plain_len + icv;
        let sk_len16 =
            u16::try_from(sk_len).map_err(|_| CryptoError::Malformed("SK payload too long"))?;
        let total = u32::try_from(HEADER_LEN + sk_len)
            .map_err(|_| CryptoError::Malformed("message too long"))?;
        let mut out = Vec::with_capacity(HEADER_LEN + sk_len);
        header.emit(ty, total, &mut out);
        out.push(first);
        out.push(0);
        out.extend_from_slice(&sk_len16.to_be_bytes());
        out.extend_from_slice(prefix);
        let aad_end = out.len();
        out.extend_from_slice(iv);
        let ct_start = out.len();
        out.extend_from_slice(content);
        out.resize(ct_start + plain_len - 1, 0);
        out.push(u8::try_from(pad).map_err(|_| CryptoError::Malformed("padding"))?);
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
        let (header, found) = self.open_raw(msg, plain)?;
        let Found::Sk(first) = found else {
            return Err(CryptoError::Malformed("no SK payload"));
        };
        let plain: &'p [u8] = plain;
        let inner = parse_chain(first, plain, 0).map_err(|e| match e {
            ParseError::UnsupportedCritical { payload_type, .. } => {
                CryptoError::UnsupportedCritical(payload_type)
            }
            _ => CryptoError::Malformed("inner payloads do not parse"),
        })?;
        if inner.iter().any(Payload::is_encrypted) {
            return Err(CryptoError::Malformed("encrypted payload inside SK"));
        }
        Ok((header, inner))
    }

    /// Checks and decrypts one Encrypted Fragment message (RFC 7383): its content (a
    /// piece of the inner payload chain, padding removed) is left in `plain`; feed it to
    /// a [`Reassembly`].
    ///
    /// # Errors
    /// As [`SkCipher::open`]; a message whose last payload is not SKF is malformed.
    pub fn open_fragment(
        &self,
        msg: &[u8],
        plain: &mut Zeroizing<Vec<u8>>,
    ) -> Result<(Header, Fragment), CryptoError> {
        match self.open_raw(msg, plain)? {
            (h, Found::Skf(f)) => Ok((h, f)),
            _ => Err(CryptoError::Malformed("no SKF payload")),
        }
    }

    fn open_raw(
        &self,
        msg: &[u8],
        plain: &mut Zeroizing<Vec<u8>>,
    ) -> Result<(Header, Found), CryptoError> {
        let parsed = Message::parse(msg).map_err(|_| CryptoError::Malformed("message"))?;
        let (body, found) = match parsed.payloads.last() {
            Some(Payload::Sk(sk)) => (sk.body, Found::Sk(sk.first)),
            Some(Payload::Skf(f)) => (
                f.body,
                Found::Skf(Fragment {
                    number: f.number,
                    total: f.total,
                    first: f.first,
                }),
            ),
            _ => return Err(CryptoError::Malformed("no SK payload")),
        };
        let header = parsed.header;
        // The body is the tail of the message: IV | ciphertext | ICV.
        let iv_start = msg.len() - body.len();
        let (iv_len, icv) = (self.iv_len(), self.icv_len());
        let ct_len = body
            .len()
            .checked_sub(iv_len + icv)
            .ok_or(CryptoError::Malformed("SK payload shorter than IV and ICV"))?;
        let block = self.encr.block_len().max(1);
        if ct_len == 0 || ct_len % block != 0 {
            return Err(CryptoError::Malformed(
                "ciphertext not a whole number of blocks",
            ));
        }
        let iv = &body[..iv_len];
        plain.clear();
        match &self.integ {
            None => {
                plain.extend_from_slice(&body[iv_len..]);
                self.encr.open(iv, &msg[..iv_start], plain)?;
                plain.truncate(ct_len);
            }
            Some(integ) => {
                let mac_end = msg.len() - icv;
                if !integ.verify(&[], &[&msg[..mac_end]], &msg[mac_end..]) {
                    return Err(CryptoError::IntegrityFailed);
                }
                plain.extend_from_slice(&body[iv_len..iv_len + ct_len]);
                self.encr.open(iv, &[], plain)?;
            }
        }
        let pad = usize::from(*plain.last().unwrap_or(&0));
        let content_len = plain
            .len()
            .checked_sub(pad + 1)
            .ok_or(CryptoError::Malformed("pad length beyond the plaintext"))?;
        plain.truncate(content_len);
        Ok((header, found))
    }

    /// Splits a protected message into Encrypted Fragment messages (RFC 7383 §2.5) of at
    /// most `max_len` bytes each (the IKE message, without IP/UDP headers or the non-ESP
    /// marker). Each fragment has its own IV (drawn from `rng`), padding and ICV.
    ///
    /// # Errors
    /// [`CryptoError::Malformed`] when `max_len` leaves no room for content, the message
    /// would need more than 65535 fragments, or the payloads cannot be encoded.
    pub fn seal_fragments(
        &self,
        header: &Header,
        inner: &[Payload<'_>],
        max_len: usize,
        rng: &mut dyn Random,
    ) -> Result<Vec<Vec<u8>>, CryptoError> {
        let mut content = Zeroizing::new(Vec::new());
        let first = emit_chain(inner, &mut content)
            .map_err(|_| CryptoError::Malformed("inner payloads cannot be encoded"))?;
        let block = self.encr.block_len().max(1);
        let room = max_len
            .checked_sub(HEADER_LEN + 8 + self.iv_len() + self.icv_len())
            .ok_or(CryptoError::Malformed("fragment size too small"))?;
        let chunk = (room / block * block)
            .checked_sub(1)
            .filter(|c| *c > 0)
            .ok_or(CryptoError::Malformed("fragment size too small"))?;
        let pieces: Vec<&[u8]> = if content.is_empty() {
            vec![&[]]
        } else {
            content.chunks(chunk).collect()
        };
        let total = u16::try_from(pieces.len())
            .map_err(|_| CryptoError::Malformed("more than 65535 fragments"))?;
        let mut out = Vec::with_capacity(pieces.len());
        let mut iv = Zeroizing::new(vec![0u8; self.iv_len()]);
        for (i, piece) in pieces.into_iter().enumerate() {
            let number = u16::try_from(i + 1).unwrap_or(u16::MAX);
            let mut prefix = [0u8; 4];
            prefix[..2].copy_from_slice(&number.to_be_bytes());
            prefix[2..].copy_from_slice(&total.to_be_bytes());
            rng.fill(&mut iv);
            let next = if number == 1 { first } else { pt::NONE };
            out.push(self.seal_raw(header, pt::SKF, next, &prefix, piece, &iv)?);
        }
        Ok(out)
    }
}

/// Which encrypted payload a message carried.
enum Found {
    Sk(u8),
    Skf(Fragment),
}

/// The numbering of an opened Encrypted Fragment message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Fragment number, 1-based.
    pub number: u16,
    /// Total number of fragments.
    pub total: u16,
    /// Type of the first inner payload (fragment 1 only; 0 in the others).
    pub first: u8,
}

/// Bounds on the reassembly of one fragmented message (RFC 7383 §2.6 asks for them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReassemblyLimits {
    /// Most fragments accepted for one message.
    pub max_fragments: u16,
    /// Most content bytes kept for one message.
    pub max_bytes: usize,
}

impl Default for ReassemblyLimits {
    /// 64 fragments and 64 KiB of content.
    fn default() -> Self {
        Self {
            max_fragments: 64,
            max_bytes: 65_536,
        }
    }
}

/// Why a fragment was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FragmentError {
    /// Another message ID than the one being reassembled.
    WrongMessage,
    /// More fragments than the limit.
    TooManyFragments,
    /// More content than the limit.
    TooLarge,
    /// Total Fragments below that of the fragments already kept (RFC 7383 §2.6.1: such a
    /// fragment belongs to an older transmission and is discarded).
    StaleTotal,
    /// A fragment number seen before (a retransmission).
    Duplicate,
    /// The first fragment names no inner payload.
    NoFirstPayload,
}

impl fmt::Display for FragmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WrongMessage => "fragment of another message",
            Self::TooManyFragments => "too many fragments",
            Self::TooLarge => "reassembled message too large",
            Self::StaleTotal => "fragment from an older transmission",
            Self::Duplicate => "duplicate fragment",
            Self::NoFirstPayload => "first fragment names no payload",
        })
    }
}

impl std::error::Error for FragmentError {}

/// A reassembled message: the first inner payload type and the inner payload chain.
pub type Reassembled = (u8, Zeroizing<Vec<u8>>);

/// Reassembly of one fragmented message (one message ID) from authenticated fragments.
///
/// Only fragments that passed [`SkCipher::open_fragment`] are added, so nothing
/// unauthenticated is buffered. Memory is bounded by [`ReassemblyLimits`].
#[derive(Debug, Clone)]
pub struct Reassembly {
    message_id: u32,
    limits: ReassemblyLimits,
    total: u16,
    first: u8,
    parts: Vec<Option<Zeroizing<Vec<u8>>>>,
    bytes: usize,
}

impl Reassembly {
    /// Starts reassembling message `message_id`.
    #[must_use]
    pub fn new(message_id: u32, limits: ReassemblyLimits) -> Self {
        Self {
            message_id,
            limits,
            total: 0,
            first: pt::NONE,
            parts: Vec::new(),
            bytes: 0,
        }
    }

    /// The message ID being reassembled.
    #[must_use]
    pub fn message_id(&self) -> u32 {
        self.message_id
    }

    /// Adds an opened fragment. Returns the first inner payload type and the whole inner
    /// payload chain (parse it with [`parse_chain`]) once every fragment is in.
    ///
    /// # Errors
    /// [`FragmentError`]; the reassembly state is unchanged by a refused fragment.
    pub fn add(
        &mut self,
        header: &Header,
        frag: Fragment,
        content: &[u8],
    ) -> Result<Option<Reassembled>, FragmentError> {
        if header.message_id != self.message_id {
            return Err(FragmentError::WrongMessage);
        }
        if frag.total > self.limits.max_fragments {
            return Err(FragmentError::TooManyFragments);
        }
        if frag.total < self.total {
            return Err(FragmentError::StaleTotal);
        }
        if frag.number == 1 && frag.first == pt::NONE {
            return Err(FragmentError::NoFirstPayload);
        }
        if frag.total > self.total {
            // A retransmission with smaller fragments (RFC 7383 §2.5.2): start again.
            self.total = frag.total;
            self.parts = vec![None; usize::from(frag.total)];
            self.bytes = 0;
            self.first = pt::NONE;
        }
        let slot = self
            .parts
            .get_mut(usize::from(frag.number).saturating_sub(1))
            .ok_or(FragmentError::TooManyFragments)?;
        if slot.is_some() {
            return Err(FragmentError::Duplicate);
        }
        let bytes = self.bytes.saturating_add(content.len());
        if bytes > self.limits.max_bytes {
            return Err(FragmentError::TooLarge);
        }
        *slot = Some(Zeroizing::new(content.to_vec()));
        self.bytes = bytes;
        if frag.number == 1 {
            self.first = frag.first;
        }
        if self.parts.iter().all(Option::is_some) {
            let mut all = Zeroizing::new(Vec::with_capacity(self.bytes));
            for p in self.parts.iter().flatten() {
                all.extend_from_slice(p);
            }
            return Ok(Some((self.first, all)));
        }
        Ok(None)
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

    struct Counter(u8);

    impl crate::Random for Counter {
        fn fill(&mut self, out: &mut [u8]) {
            for b in out {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
    }

    fn open_all(c: &SkCipher, frags: &[Vec<u8>]) -> Vec<(Header, Fragment, Vec<u8>)> {
        frags
            .iter()
            .map(|m| {
                let mut p = Zeroizing::new(Vec::new());
                let (h, f) = c.open_fragment(m, &mut p).unwrap();
                (h, f, p.to_vec())
            })
            .collect()
    }

    #[test]
    fn fragments_round_trip_in_any_order() {
        let inner = crate::fuzz_support::every_payload();
        for s in SUITES {
            let c = cipher(s);
            for max in [120, 300, 576, 1280] {
                let frags = c
                    .seal_fragments(&header(), &inner, max, &mut Counter(0))
                    .unwrap();
                assert!(frags.iter().all(|f| f.len() <= max), "{s:?} {max}");
                assert_eq!(frags.len() > 1, max < 576, "{s:?} {max}: {}", frags.len());
                let opened = open_all(&c, &frags);
                let total = opened.len() as u16;
                for (i, (_, f, _)) in opened.iter().enumerate() {
                    assert_eq!(f.number, i as u16 + 1);
                    assert_eq!(f.total, total);
                    assert_eq!(f.first != 0, i == 0);
                }
                // Last to first, with a duplicate of each in between.
                let mut r = Reassembly::new(7, ReassemblyLimits::default());
                let mut done = None;
                for (k, (h, f, p)) in opened.iter().enumerate().rev() {
                    let got = r.add(h, *f, p).unwrap();
                    if k > 0 {
                        assert!(got.is_none());
                        assert_eq!(r.add(h, *f, p), Err(FragmentError::Duplicate));
                    } else {
                        done = got;
                    }
                }
                let (first, bytes) = done.unwrap();
                assert_eq!(parse_chain(first, &bytes, 0).unwrap(), inner, "{s:?} {max}");
            }
        }
    }

    #[test]
    fn reassembly_rules_and_bounds() {
        let inner = crate::fuzz_support::every_payload();
        let c = cipher(SUITES[0]);
        let big = open_all(
            &c,
            &c.seal_fragments(&header(), &inner, 400, &mut Counter(0))
                .unwrap(),
        );
        let small = open_all(
            &c,
            &c.seal_fragments(&header(), &inner, 200, &mut Counter(9))
                .unwrap(),
        );
        assert!(small.len() > big.len());
        // A retransmission in smaller fragments restarts reassembly; the older, larger
        // fragments are then refused.
        let mut r = Reassembly::new(7, ReassemblyLimits::default());
        let (h, f, p) = &big[0];
        assert_eq!(r.add(h, *f, p), Ok(None));
        let mut done = None;
        for (h, f, p) in &small {
            let (h2, f2, p2) = &big[1];
            if f.number == 2 {
                assert_eq!(r.add(h2, *f2, p2), Err(FragmentError::StaleTotal));
            }
            done = r.add(h, *f, p).unwrap();
        }
        let (first, bytes) = done.unwrap();
        assert_eq!(parse_chain(first, &bytes, 0).unwrap(), inner);
        // Limits.
        let mut r = Reassembly::new(
            7,
            ReassemblyLimits {
                max_fragments: 2,
                max_bytes: 1 << 20,
            },
        );
        let (h, f, p) = &small[0];
        assert_eq!(r.add(h, *f, p), Err(FragmentError::TooManyFragments));
        let mut r = Reassembly::new(
            7,
            ReassemblyLimits {
                max_fragments: 64,
                max_bytes: 100,
            },
        );
        let mut refused = false;
        for (h, f, p) in &small {
            if r.add(h, *f, p) == Err(FragmentError::TooLarge) {
                refused = true;
                break;
            }
        }
        assert!(refused, "byte bound enforced");
        // Another message ID.
        let mut r = Reassembly::new(8, ReassemblyLimits::default());
        assert_eq!(r.add(h, *f, p), Err(FragmentError::WrongMessage));
    }

    #[test]
    fn fragment_integrity_and_sizes() {
        let inner = crate::fuzz_support::every_payload();
        for s in SUITES {
            let c = cipher(s);
            let frags = c
                .seal_fragments(&header(), &inner, 256, &mut Counter(0))
                .unwrap();
            for at in [17, 30, 34, 40, frags[1].len() - 1] {
                let mut bad = frags[1].clone();
                bad[at] ^= 4;
                let mut p = Zeroizing::new(Vec::new());
                assert!(c.open_fragment(&bad, &mut p).is_err(), "{s:?} flip at {at}");
            }
            // The fragment numbers are authenticated too (AAD or MAC).
            let mut renumbered = frags[1].clone();
            renumbered[35] += 1; // Total Fragments + 1: still well-formed
            let mut p = Zeroizing::new(Vec::new());
            assert!(Message::parse(&renumbered).is_ok());
            assert_eq!(
                c.open_fragment(&renumbered, &mut p).unwrap_err(),
                CryptoError::IntegrityFailed
            );
            // An SKF message is not an SK message and vice versa.
            assert!(c.open(&frags[0], &mut p).is_err());
            let whole = c.seal(&header(), &inner, &vec![1; c.iv_len()]).unwrap();
            assert!(c.open_fragment(&whole, &mut p).is_err());
            assert!(c
                .seal_fragments(&header(), &inner, 40, &mut Counter(0))
                .is_err());
        }
    }
}
