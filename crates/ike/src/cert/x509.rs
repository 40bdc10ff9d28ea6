//! X.509 certificates (RFC 5280): the parts IKEv2 authentication needs, parsed from DER
//! into owned values: names, validity, the public key, basic constraints, key usage and
//! subject alternative names. Unknown critical extensions make the certificate unusable.

use super::der::{self, tag, Reader};
use super::{CertError, Hash, PublicKey, SigAlg};

/// OIDs (contents octets).
pub(crate) mod oid {
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    pub const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
    pub const RSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
    pub const SHA256_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
    pub const SHA384_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
    pub const SHA512_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
    pub const P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
    pub const ECDSA_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    pub const ECDSA_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
    pub const ECDSA_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
    pub const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    pub const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
    pub const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];
    pub const BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];
    pub const KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
    pub const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
    /// Extensions we may ignore even when critical: subject/authority key identifiers,
    /// extended key usage (no IKE-specific purpose is required, RFC 4945 §5.1.3.12) and
    /// certificate policies (any policy accepted).
    pub const IGNORABLE: &[&[u8]] = &[
        &[0x55, 0x1d, 0x0e],
        &[0x55, 0x1d, 0x23],
        &[0x55, 0x1d, 0x25],
        &[0x55, 0x1d, 0x20],
    ];
}

/// Key usage bits we check (RFC 5280 §4.2.1.3), as bits of a `u16` with bit 0 first.
pub mod key_usage {
    /// digitalSignature.
    pub const DIGITAL_SIGNATURE: u16 = 1 << 0;
    /// nonRepudiation (contentCommitment).
    pub const NON_REPUDIATION: u16 = 1 << 1;
    /// keyCertSign.
    pub const KEY_CERT_SIGN: u16 = 1 << 5;
}

/// A subject alternative name of the kinds IKE identities map to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AltName {
    /// dNSName.
    Dns(String),
    /// rfc822Name.
    Email(String),
    /// iPAddress (4 or 16 octets).
    Ip(Vec<u8>),
    /// directoryName (a DER Name).
    Directory(Vec<u8>),
}

/// A parsed X.509 certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    tbs: (usize, usize),
    sig_alg: Option<SigAlg>,
    signature: Vec<u8>,
    /// The issuer Name, DER.
    pub issuer: Vec<u8>,
    /// The subject Name, DER.
    pub subject: Vec<u8>,
    /// notBefore, seconds since 1970.
    pub not_before: i64,
    /// notAfter, seconds since 1970.
    pub not_after: i64,
    /// The SubjectPublicKeyInfo, DER (hashed into CERTREQ, RFC 7296 §3.7).
    pub spki: Vec<u8>,
    /// The public key, if of a kind we use.
    pub key: Option<PublicKey>,
    /// basicConstraints cA and pathLenConstraint.
    pub ca: Option<(bool, Option<u8>)>,
    /// keyUsage bits ([`key_usage`]), if the extension is present.
    pub key_usage: Option<u16>,
    /// subjectAltName entries of the kinds IKE uses.
    pub alt_names: Vec<AltName>,
}

impl Certificate {
    /// Parses a DER certificate.
    ///
    /// # Errors
    /// [`CertError::Malformed`] for anything that is not a DER certificate, and
    /// [`CertError::UnsupportedCritical`] for an unknown critical extension.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        let mut top = Reader::new(der);
        let cert_tlv = top.expect(tag::SEQUENCE)?;
        top.finish()?;
        let der = cert_tlv.raw;
        let mut cert = Reader::new(cert_tlv.value);
        let tbs_tlv = cert.expect(tag::SEQUENCE)?;
        let outer_alg = cert.expect(tag::SEQUENCE)?;
        let sig = der::bit_string_bytes(&cert.expect(tag::BIT_STRING)?)?.to_vec();
        cert.finish()?;
        let tbs_start = tbs_tlv.raw.as_ptr() as usize - der.as_ptr() as usize;

        let mut tbs = Reader::new(tbs_tlv.value);
        let v3 = if let Some(v) = tbs.optional(0xa0)? {
            let mut r = Reader::new(v.value);
            let n = r.expect(tag::INTEGER)?;
            r.finish()?;
            n.value == [2]
        } else {
            false
        };
        tbs.expect(tag::INTEGER)?;
        let inner_alg = tbs.expect(tag::SEQUENCE)?;
        // RFC 5280 §4.1.1.2: both AlgorithmIdentifiers must be the same.
        if inner_alg.raw != outer_alg.raw {
            return Err(CertError::Malformed);
        }
        let issuer = tbs.expect(tag::SEQUENCE)?.raw.to_vec();
        let mut validity = tbs.sequence()?;
        let not_before = der::time(&validity.any()?)?;
        let not_after = der::time(&validity.any()?)?;
        validity.finish()?;
        let subject = tbs.expect(tag::SEQUENCE)?.raw.to_vec();
        let spki_tlv = tbs.expect(tag::SEQUENCE)?;
        let key = PublicKey::from_spki(spki_tlv.value).ok();
        tbs.optional(0x81)?;
        tbs.optional(0x82)?;
        let mut out = Self {
            der: der.to_vec(),
            tbs: (tbs_start, tbs_tlv.raw.len()),
            sig_alg: SigAlg::from_algorithm_identifier(outer_alg.raw).ok(),
            signature: sig,
            issuer,
            subject,
            not_before,
            not_after,
            spki: spki_tlv.raw.to_vec(),
            key,
            ca: None,
            key_usage: None,
            alt_names: Vec::new(),
        };
        if let Some(ext) = tbs.optional(0xa3)? {
            if !v3 {
                return Err(CertError::Malformed);
            }
            let mut r = Reader::new(ext.value);
            let mut exts = r.sequence()?;
            r.finish()?;
            while !exts.is_empty() {
                out.extension(exts.sequence()?)?;
            }
        }
        tbs.finish()?;
        Ok(out)
    }

    fn extension(&mut self, mut e: Reader<'_>) -> Result<(), CertError> {
        let id = e.expect(tag::OID)?.value;
        let critical = match e.optional(tag::BOOLEAN)? {
            Some(b) => b.value == [0xff],
            None => false,
        };
        let value = e.expect(tag::OCTET_STRING)?.value;
        e.finish()?;
        match id {
            oid::BASIC_CONSTRAINTS => {
                let mut r = Reader::new(value);
                let mut s = r.sequence()?;
                let ca = s.optional(tag::BOOLEAN)?.is_some_and(|b| b.value == [0xff]);
                let path_len = match s.optional(tag::INTEGER)? {
                    Some(n) => Some(match n.value {
                        [v] if *v < 0x80 => *v,
                        _ => return Err(CertError::Malformed),
                    }),
                    None => None,
                };
                s.finish()?;
                self.ca = Some((ca, path_len));
            }
            oid::KEY_USAGE => {
                let mut r = Reader::new(value);
                let b = r.expect(tag::BIT_STRING)?;
                let bits = b.value.get(1..).ok_or(CertError::Malformed)?;
                let mut v = 0u16;
                for (i, byte) in bits.iter().take(2).enumerate() {
                    for j in 0..8 {
                        if byte & (0x80 >> j) != 0 {
                            v |= 1 << (i * 8 + j);
                        }
                    }
                }
                self.key_usage = Some(v);
            }
            oid::SUBJECT_ALT_NAME => {
                let mut r = Reader::new(value);
                let mut names = r.sequence()?;
                while !names.is_empty() {
                    let n = names.any()?;
                    let text = || String::from_utf8(n.value.to_vec()).ok();
                    match n.tag {
                        0x81 => self.alt_names.extend(text().map(AltName::Email)),
                        0x82 => self.alt_names.extend(text().map(AltName::Dns)),
                        0x87 => self.alt_names.push(AltName::Ip(n.value.to_vec())),
                        0xa4 => self.alt_names.push(AltName::Directory(n.value.to_vec())),
                        _ => {}
                    }
                }
            }
            _ if critical && !oid::IGNORABLE.contains(&id) => {
                return Err(CertError::UnsupportedCritical)
            }
            _ => {}
        }
        Ok(())
    }

    /// The certificate, DER.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The signed part (tbsCertificate), DER.
    #[must_use]
    pub fn tbs(&self) -> &[u8] {
        &self.der[self.tbs.0..self.tbs.0 + self.tbs.1]
    }

    /// Whether `issuer`'s key made this certificate's signature.
    #[must_use]
    pub fn is_signed_by(&self, issuer: &PublicKey) -> bool {
        self.sig_alg
            .is_some_and(|a| a.verify(issuer, self.tbs(), &self.signature).is_ok())
    }

    /// The SHA-1 hash of the SubjectPublicKeyInfo (a CERTREQ entry, RFC 7296 §3.7).
    #[must_use]
    pub fn spki_sha1(&self) -> [u8; 20] {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.spki);
        let mut out = [0u8; 20];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// The SHA-256 fingerprint of the whole certificate.
    #[must_use]
    pub fn sha256_fingerprint(&self) -> [u8; 32] {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &self.der);
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }

    /// Whether `now` (seconds since 1970) lies in the validity period.
    #[must_use]
    pub fn valid_at(&self, now: i64) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// Whether the certificate may sign other certificates: basicConstraints cA, and
    /// keyCertSign if key usage is present (RFC 5280 §4.2.1.9, §4.2.1.3).
    #[must_use]
    pub fn is_ca(&self) -> bool {
        matches!(self.ca, Some((true, _)))
            && self
                .key_usage
                .is_none_or(|u| u & key_usage::KEY_CERT_SIGN != 0)
    }

    /// Whether the key may make IKE AUTH signatures: digitalSignature or nonRepudiation
    /// if key usage is present (RFC 4945 §5.1.3.2).
    #[must_use]
    pub fn may_sign_auth(&self) -> bool {
        self.key_usage
            .is_none_or(|u| u & (key_usage::DIGITAL_SIGNATURE | key_usage::NON_REPUDIATION) != 0)
    }

    /// A readable form of a DER Name: `CN=x, O=y` for the common attributes, dotted
    /// OIDs for others.
    #[must_use]
    pub fn name_to_string(name: &[u8]) -> String {
        let mut parts = Vec::new();
        let mut r = Reader::new(name);
        let Ok(mut rdns) = r.sequence() else {
            return String::from("?");
        };
        while let Ok(set) = rdns.expect(0x31) {
            let mut atvs = Reader::new(set.value);
            while let Ok(mut atv) = atvs.sequence() {
                let (Ok(o), Ok(v)) = (atv.expect(tag::OID), atv.any()) else {
                    break;
                };
                let key = match o.value {
                    [0x55, 0x04, 0x03] => "CN".to_string(),
                    [0x55, 0x04, 0x06] => "C".to_string(),
                    [0x55, 0x04, 0x07] => "L".to_string(),
                    [0x55, 0x04, 0x08] => "ST".to_string(),
                    [0x55, 0x04, 0x0a] => "O".to_string(),
                    [0x55, 0x04, 0x0b] => "OU".to_string(),
                    other => super::oid_string(other),
                };
                parts.push(format!("{key}={}", String::from_utf8_lossy(v.value)));
            }
        }
        parts.join(", ")
    }
}

impl Hash {
    pub(crate) fn from_oid(o: &[u8]) -> Option<Self> {
        match o {
            oid::SHA256 => Some(Self::Sha256),
            oid::SHA384 => Some(Self::Sha384),
            oid::SHA512 => Some(Self::Sha512),
            _ => None,
        }
    }
}
