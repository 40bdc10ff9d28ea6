//! The algorithm table: names, PF_KEY and IKEv2 numbers, sizes and RFC 8221 status.
//!
//! See the crate documentation for where each number comes from.

/// ESP encryption algorithms (PF_KEY `SADB_EALG_*`, IKEv2 Transform Type 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncrAlg {
    /// ESP NULL encryption (RFC 2410).
    Null,
    /// DES-CBC (RFC 2405). RFC 8221 MUST NOT: legacy.
    DesCbc,
    /// 3DES-EDE-CBC (RFC 2451).
    TripleDesCbc,
    /// Blowfish-CBC (RFC 2451). RFC 8221 MUST NOT: legacy.
    BlowfishCbc,
    /// AES-CBC (RFC 3602).
    AesCbc,
    /// AES-CTR (RFC 3686).
    AesCtr,
    /// AES-CCM with an 8-octet ICV (RFC 4309).
    AesCcm8,
    /// AES-CCM with a 12-octet ICV (RFC 4309).
    AesCcm12,
    /// AES-CCM with a 16-octet ICV (RFC 4309).
    AesCcm16,
    /// AES-GCM with an 8-octet ICV (RFC 4106).
    AesGcm8,
    /// AES-GCM with a 12-octet ICV (RFC 4106).
    AesGcm12,
    /// AES-GCM with a 16-octet ICV (RFC 4106).
    AesGcm16,
    /// ENCR_NULL_AUTH_AES_GMAC: authentication only, no encryption (RFC 4543).
    AesNullGmac,
    /// Camellia-CBC (RFC 5529).
    CamelliaCbc,
    /// ChaCha20-Poly1305 (RFC 7634).
    ChaCha20Poly1305,
}

/// Integrity algorithms for ESP and AH (PF_KEY `SADB_AALG_*`, IKEv2 Transform Type 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthAlg {
    /// No integrity transform (only meaningful with an AEAD ESP cipher).
    None,
    /// HMAC-MD5-96 (RFC 2403). RFC 8221 MUST NOT: legacy.
    HmacMd5,
    /// HMAC-SHA-1-96 (RFC 2404).
    HmacSha1,
    /// HMAC-SHA-256-128 (RFC 4868).
    HmacSha256,
    /// HMAC-SHA-384-192 (RFC 4868).
    HmacSha384,
    /// HMAC-SHA-512-256 (RFC 4868).
    HmacSha512,
    /// AES-XCBC-MAC-96 (RFC 3566).
    AesXcbcMac,
    /// AES-CMAC-96 (RFC 4494).
    AesCmac,
    /// AES-GMAC with a 128-bit key (RFC 4543), AH only.
    AesGmac128,
    /// AES-GMAC with a 192-bit key (RFC 4543), AH only.
    AesGmac192,
    /// AES-GMAC with a 256-bit key (RFC 4543), AH only.
    AesGmac256,
}

/// Requirement level from RFC 8221 §5 (encryption) and §6 (authentication).
///
/// Algorithms RFC 8221 does not list default to [`Rfc8221::May`] (RFC 8221 §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rfc8221 {
    /// MUST.
    Must,
    /// MUST- (expected to be demoted in the future).
    MustMinus,
    /// SHOULD+ (expected to be promoted in the future).
    ShouldPlus,
    /// SHOULD.
    Should,
    /// SHOULD NOT.
    ShouldNot,
    /// MAY (also the level of every algorithm RFC 8221 does not list).
    May,
    /// MUST NOT.
    MustNot,
}

/// Accepted key sizes in bits, excluding salt bits.
///
/// Sizes run from `min` to `max` in increments of `step`; `step` is 0 when
/// only one size exists (`min == max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyBits {
    /// Smallest key size.
    pub min: u16,
    /// Largest key size.
    pub max: u16,
    /// Increment between sizes (0 for a single size).
    pub step: u16,
    /// Default size (ipsecalgs default key length).
    pub default: u16,
}

impl KeyBits {
    const fn fixed(bits: u16) -> Self {
        Self {
            min: bits,
            max: bits,
            step: 0,
            default: bits,
        }
    }

    const AES: Self = Self {
        min: 128,
        max: 256,
        step: 64,
        default: 128,
    };

    /// Whether `bits` is one of the accepted sizes.
    #[must_use]
    pub fn accepts(&self, bits: usize) -> bool {
        let (min, max, step) = (
            usize::from(self.min),
            usize::from(self.max),
            usize::from(self.step),
        );
        if bits < min || bits > max {
            return false;
        }
        if step == 0 {
            return bits == min;
        }
        (bits - min).is_multiple_of(step)
    }
}

/// One row of the ESP encryption table.
#[derive(Debug)]
pub struct EncrInfo {
    /// The algorithm.
    pub alg: EncrAlg,
    /// Canonical Solaris-style name (what `ipseckey` prints), e.g. `"aes-cbc"`.
    pub name: &'static str,
    /// Every other accepted name: the Solaris synonyms, then modern names.
    pub synonyms: &'static [&'static str],
    /// PF_KEY `sadb_sa_encrypt` value (Solaris `SADB_EALG_*` where Solaris has one).
    pub pfkey: u8,
    /// IKEv2 Transform Type 1 ID (IANA).
    pub ikev2: u16,
    /// Key sizes, salt excluded.
    pub key_bits: KeyBits,
    /// Salt (nonce) bytes carried at the end of the PF_KEY key material.
    pub salt_bytes: usize,
    /// IV bytes on the wire.
    pub iv_bytes: usize,
    /// AEAD tag bytes (0 for plain ciphers).
    pub icv_bytes: usize,
    /// Padding alignment of the cipher (1 for stream and counter modes).
    pub block_bytes: usize,
    /// Combined mode (the algorithm provides integrity itself).
    pub aead: bool,
    /// RFC 8221 §5 requirement level.
    pub status: Rfc8221,
    /// RFC 8221 MUST NOT: usable only with `allow_legacy`.
    pub legacy: bool,
    /// Defining RFC.
    pub rfc: &'static str,
}

/// One row of the integrity (ESP authentication / AH) table.
#[derive(Debug)]
pub struct AuthInfo {
    /// The algorithm.
    pub alg: AuthAlg,
    /// Canonical Solaris-style name, e.g. `"hmac-sha256"`.
    pub name: &'static str,
    /// Every other accepted name: the Solaris synonyms, then modern names.
    pub synonyms: &'static [&'static str],
    /// PF_KEY `sadb_sa_auth` value (Solaris `SADB_AALG_*` where Solaris has one).
    pub pfkey: u8,
    /// IKEv2 Transform Type 3 ID (IANA).
    pub ikev2: u16,
    /// Key sizes, salt excluded.
    pub key_bits: KeyBits,
    /// Salt bytes carried at the end of the PF_KEY key material (4 for GMAC).
    pub salt_bytes: usize,
    /// IV bytes on the wire: 8 for AH GMAC (RFC 4543), else 0.
    pub iv_bytes: usize,
    /// ICV bytes (the truncated length).
    pub icv_bytes: usize,
    /// RFC 8221 §6 requirement level for ESP.
    pub status_esp: Rfc8221,
    /// RFC 8221 §6 requirement level for AH.
    pub status_ah: Rfc8221,
    /// Usable in ESP only with `allow_legacy`.
    pub legacy_esp: bool,
    /// Usable in AH only with `allow_legacy`.
    pub legacy_ah: bool,
    /// Defining RFC.
    pub rfc: &'static str,
}

// Private PF_KEY numbers for algorithms Solaris does not have (see crate docs).
pub(crate) const PFKEY_EALG_AESCTR: u8 = 13;
pub(crate) const PFKEY_EALG_CAMELLIACBC: u8 = 22;
pub(crate) const PFKEY_EALG_CHACHA20POLY1305: u8 = 240;
pub(crate) const PFKEY_AALG_AES_XCBC_MAC: u8 = 240;
pub(crate) const PFKEY_AALG_AES_CMAC: u8 = 241;

const fn aes_ccm(
    alg: EncrAlg,
    name: &'static str,
    syn: &'static [&'static str],
    n: u8,
    icv: usize,
    status: Rfc8221,
) -> EncrInfo {
    EncrInfo {
        alg,
        name,
        synonyms: syn,
        pfkey: n,
        ikev2: n as u16,
        key_bits: KeyBits::AES,
        salt_bytes: 3,
        iv_bytes: 8,
        icv_bytes: icv,
        block_bytes: 1,
        aead: true,
        status,
        legacy: false,
        rfc: "RFC 4309",
    }
}

const fn aes_gcm(
    alg: EncrAlg,
    name: &'static str,
    syn: &'static [&'static str],
    n: u8,
    icv: usize,
    status: Rfc8221,
) -> EncrInfo {
    EncrInfo {
        alg,
        name,
        synonyms: syn,
        pfkey: n,
        ikev2: n as u16,
        key_bits: KeyBits::AES,
        salt_bytes: 4,
        iv_bytes: 8,
        icv_bytes: icv,
        block_bytes: 1,
        aead: true,
        status,
        legacy: false,
        rfc: "RFC 4106",
    }
}

static ENCR_TABLE: [EncrInfo; 15] = [
    EncrInfo {
        alg: EncrAlg::Null,
        name: "null",
        synonyms: &[],
        pfkey: 11,
        ikev2: 11,
        key_bits: KeyBits::fixed(0),
        salt_bytes: 0,
        iv_bytes: 0,
        icv_bytes: 0,
        block_bytes: 1,
        aead: false,
        status: Rfc8221::Must,
        legacy: false,
        rfc: "RFC 2410",
    },
    EncrInfo {
        alg: EncrAlg::DesCbc,
        name: "des-cbc",
        synonyms: &["des"],
        pfkey: 2,
        ikev2: 2,
        key_bits: KeyBits::fixed(64),
        salt_bytes: 0,
        iv_bytes: 8,
        icv_bytes: 0,
        block_bytes: 8,
        aead: false,
        status: Rfc8221::MustNot,
        legacy: true,
        rfc: "RFC 2405",
    },
    EncrInfo {
        alg: EncrAlg::TripleDesCbc,
        name: "3des-cbc",
        synonyms: &["3des"],
        pfkey: 3,
        ikev2: 3,
        key_bits: KeyBits::fixed(192),
        salt_bytes: 0,
        iv_bytes: 8,
        icv_bytes: 0,
        block_bytes: 8,
        aead: false,
        status: Rfc8221::ShouldNot,
        legacy: false,
        rfc: "RFC 2451",
    },
    EncrInfo {
        alg: EncrAlg::BlowfishCbc,
        name: "blowfish-cbc",
        synonyms: &["blowfish"],
        pfkey: 7,
        ikev2: 7,
        key_bits: KeyBits {
            min: 40,
            max: 448,
            step: 8,
            default: 128,
        },
        salt_bytes: 0,
        iv_bytes: 8,
        icv_bytes: 0,
        block_bytes: 8,
        aead: false,
        status: Rfc8221::MustNot,
        legacy: true,
        rfc: "RFC 2451",
    },
    EncrInfo {
        alg: EncrAlg::AesCbc,
        name: "aes-cbc",
        synonyms: &["aes"],
        pfkey: 12,
        ikev2: 12,
        key_bits: KeyBits::AES,
        salt_bytes: 0,
        iv_bytes: 16,
        icv_bytes: 0,
        block_bytes: 16,
        aead: false,
        status: Rfc8221::Must,
        legacy: false,
        rfc: "RFC 3602",
    },
    EncrInfo {
        alg: EncrAlg::AesCtr,
        name: "aes-ctr",
        synonyms: &["aesctr"],
        pfkey: PFKEY_EALG_AESCTR,
        ikev2: 13,
        key_bits: KeyBits::AES,
        salt_bytes: 4,
        iv_bytes: 8,
        icv_bytes: 0,
        block_bytes: 1,
        aead: false,
        status: Rfc8221::May,
        legacy: false,
        rfc: "RFC 3686",
    },
    aes_ccm(
        EncrAlg::AesCcm8,
        "aes-ccm8",
        &["aes-ccm-8"],
        14,
        8,
        Rfc8221::Should,
    ),
    aes_ccm(
        EncrAlg::AesCcm12,
        "aes-ccm12",
        &["aes-ccm-12"],
        15,
        12,
        Rfc8221::May,
    ),
    aes_ccm(
        EncrAlg::AesCcm16,
        "aes-ccm",
        &["aes-ccm16", "aes-ccm-16"],
        16,
        16,
        Rfc8221::May,
    ),
    aes_gcm(
        EncrAlg::AesGcm8,
        "aes-gcm8",
        &["aes-gcm-8"],
        18,
        8,
        Rfc8221::May,
    ),
    aes_gcm(
        EncrAlg::AesGcm12,
        "aes-gcm12",
        &["aes-gcm-12"],
        19,
        12,
        Rfc8221::May,
    ),
    aes_gcm(
        EncrAlg::AesGcm16,
        "aes-gcm",
        &["aes-gcm16", "aes-gcm-16"],
        20,
        16,
        Rfc8221::Must,
    ),
    EncrInfo {
        alg: EncrAlg::AesNullGmac,
        name: "aes-none-gmac",
        synonyms: &[],
        pfkey: 21,
        ikev2: 21,
        key_bits: KeyBits::AES,
        salt_bytes: 4,
        iv_bytes: 8,
        icv_bytes: 16,
        block_bytes: 1,
        aead: true,
        status: Rfc8221::May,
        legacy: false,
        rfc: "RFC 4543",
    },
    EncrInfo {
        alg: EncrAlg::CamelliaCbc,
        name: "camellia-cbc",
        synonyms: &["camellia"],
        pfkey: PFKEY_EALG_CAMELLIACBC,
        ikev2: 23,
        key_bits: KeyBits::AES,
        salt_bytes: 0,
        iv_bytes: 16,
        icv_bytes: 0,
        block_bytes: 16,
        aead: false,
        status: Rfc8221::May,
        legacy: false,
        rfc: "RFC 5529",
    },
    EncrInfo {
        alg: EncrAlg::ChaCha20Poly1305,
        name: "chacha20-poly1305",
        synonyms: &["chacha20poly1305"],
        pfkey: PFKEY_EALG_CHACHA20POLY1305,
        ikev2: 28,
        key_bits: KeyBits::fixed(256),
        salt_bytes: 4,
        iv_bytes: 8,
        icv_bytes: 16,
        block_bytes: 1,
        aead: true,
        status: Rfc8221::Should,
        legacy: false,
        rfc: "RFC 7634",
    },
];

// A table-row constructor: the arguments are the columns.
#[allow(clippy::too_many_arguments)]
const fn hmac(
    alg: AuthAlg,
    name: &'static str,
    syn: &'static [&'static str],
    pfkey: u8,
    ikev2: u16,
    bits: u16,
    icv: usize,
    status: Rfc8221,
    rfc: &'static str,
) -> AuthInfo {
    let legacy = matches!(status, Rfc8221::MustNot);
    AuthInfo {
        alg,
        name,
        synonyms: syn,
        pfkey,
        ikev2,
        key_bits: KeyBits::fixed(bits),
        salt_bytes: 0,
        iv_bytes: 0,
        icv_bytes: icv,
        status_esp: status,
        status_ah: status,
        legacy_esp: legacy,
        legacy_ah: legacy,
        rfc,
    }
}

const fn gmac(
    alg: AuthAlg,
    name: &'static str,
    syn: &'static [&'static str],
    n: u8,
    bits: u16,
) -> AuthInfo {
    AuthInfo {
        alg,
        name,
        synonyms: syn,
        pfkey: n,
        ikev2: n as u16,
        key_bits: KeyBits::fixed(bits),
        salt_bytes: 4,
        iv_bytes: 8,
        icv_bytes: 16,
        status_esp: Rfc8221::May,
        status_ah: Rfc8221::May,
        legacy_esp: false,
        legacy_ah: false,
        rfc: "RFC 4543",
    }
}

static AUTH_TABLE: [AuthInfo; 11] = [
    AuthInfo {
        alg: AuthAlg::None,
        name: "none",
        synonyms: &[],
        pfkey: 0,
        ikev2: 0,
        key_bits: KeyBits::fixed(0),
        salt_bytes: 0,
        iv_bytes: 0,
        icv_bytes: 0,
        status_esp: Rfc8221::Must,
        status_ah: Rfc8221::MustNot,
        legacy_esp: false,
        legacy_ah: false,
        rfc: "RFC 7296",
    },
    hmac(
        AuthAlg::HmacMd5,
        "hmac-md5",
        &["md5"],
        2,
        1,
        128,
        12,
        Rfc8221::MustNot,
        "RFC 2403",
    ),
    hmac(
        AuthAlg::HmacSha1,
        "hmac-sha1",
        &["sha", "sha1", "sha-1", "hmac-sha", "hmac-sha-1"],
        3,
        2,
        160,
        12,
        Rfc8221::MustMinus,
        "RFC 2404",
    ),
    hmac(
        AuthAlg::HmacSha256,
        "hmac-sha256",
        &["sha256", "sha-256", "hmac-sha-256", "hmac-sha2-256"],
        5,
        12,
        256,
        16,
        Rfc8221::Must,
        "RFC 4868",
    ),
    hmac(
        AuthAlg::HmacSha384,
        "hmac-sha384",
        &["sha384", "sha-384", "hmac-sha-384", "hmac-sha2-384"],
        6,
        13,
        384,
        24,
        Rfc8221::May,
        "RFC 4868",
    ),
    hmac(
        AuthAlg::HmacSha512,
        "hmac-sha512",
        &["sha512", "sha-512", "hmac-sha-512", "hmac-sha2-512"],
        7,
        14,
        512,
        32,
        Rfc8221::Should,
        "RFC 4868",
    ),
    hmac(
        AuthAlg::AesXcbcMac,
        "aes-xcbc-mac",
        &["aes-xcbc", "xcbc"],
        PFKEY_AALG_AES_XCBC_MAC,
        5,
        128,
        12,
        Rfc8221::Should,
        "RFC 3566",
    ),
    hmac(
        AuthAlg::AesCmac,
        "aes-cmac",
        &["cmac"],
        PFKEY_AALG_AES_CMAC,
        8,
        128,
        12,
        Rfc8221::May,
        "RFC 4494",
    ),
    gmac(
        AuthAlg::AesGmac128,
        "aes-gmac128",
        &["aes-gmac-128"],
        9,
        128,
    ),
    gmac(
        AuthAlg::AesGmac192,
        "aes-gmac192",
        &["aes-gmac-192"],
        10,
        192,
    ),
    gmac(
        AuthAlg::AesGmac256,
        "aes-gmac256",
        &["aes-gmac-256"],
        11,
        256,
    ),
];

/// The whole ESP encryption table, in PF_KEY-number order of the Solaris algorithms
/// followed by the additions.
#[must_use]
pub fn encr_table() -> &'static [EncrInfo] {
    &ENCR_TABLE
}

/// The whole integrity table.
#[must_use]
pub fn auth_table() -> &'static [AuthInfo] {
    &AUTH_TABLE
}

const fn encr_index(alg: EncrAlg) -> usize {
    match alg {
        EncrAlg::Null => 0,
        EncrAlg::DesCbc => 1,
        EncrAlg::TripleDesCbc => 2,
        EncrAlg::BlowfishCbc => 3,
        EncrAlg::AesCbc => 4,
        EncrAlg::AesCtr => 5,
        EncrAlg::AesCcm8 => 6,
        EncrAlg::AesCcm12 => 7,
        EncrAlg::AesCcm16 => 8,
        EncrAlg::AesGcm8 => 9,
        EncrAlg::AesGcm12 => 10,
        EncrAlg::AesGcm16 => 11,
        EncrAlg::AesNullGmac => 12,
        EncrAlg::CamelliaCbc => 13,
        EncrAlg::ChaCha20Poly1305 => 14,
    }
}

const fn auth_index(alg: AuthAlg) -> usize {
    match alg {
        AuthAlg::None => 0,
        AuthAlg::HmacMd5 => 1,
        AuthAlg::HmacSha1 => 2,
        AuthAlg::HmacSha256 => 3,
        AuthAlg::HmacSha384 => 4,
        AuthAlg::HmacSha512 => 5,
        AuthAlg::AesXcbcMac => 6,
        AuthAlg::AesCmac => 7,
        AuthAlg::AesGmac128 => 8,
        AuthAlg::AesGmac192 => 9,
        AuthAlg::AesGmac256 => 10,
    }
}

/// The table row of an encryption algorithm.
#[must_use]
pub fn encr_info(alg: EncrAlg) -> &'static EncrInfo {
    &ENCR_TABLE[encr_index(alg)]
}

/// The table row of an integrity algorithm.
#[must_use]
pub fn auth_info(alg: AuthAlg) -> &'static AuthInfo {
    &AUTH_TABLE[auth_index(alg)]
}

fn name_matches(name: &str, canonical: &str, synonyms: &[&str]) -> bool {
    canonical.eq_ignore_ascii_case(name) || synonyms.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Look an encryption algorithm up by its name or any synonym (case-insensitive).
#[must_use]
pub fn encr_by_name(name: &str) -> Option<&'static EncrInfo> {
    let name = name.trim();
    ENCR_TABLE
        .iter()
        .find(|e| name_matches(name, e.name, e.synonyms))
}

/// Look an integrity algorithm up by its name or any synonym (case-insensitive).
#[must_use]
pub fn auth_by_name(name: &str) -> Option<&'static AuthInfo> {
    let name = name.trim();
    AUTH_TABLE
        .iter()
        .find(|a| name_matches(name, a.name, a.synonyms))
}

/// Look an encryption algorithm up by its PF_KEY number.
#[must_use]
pub fn encr_by_pfkey(n: u8) -> Option<&'static EncrInfo> {
    ENCR_TABLE.iter().find(|e| e.pfkey == n)
}

/// Look an integrity algorithm up by its PF_KEY number.
#[must_use]
pub fn auth_by_pfkey(n: u8) -> Option<&'static AuthInfo> {
    AUTH_TABLE.iter().find(|a| a.pfkey == n)
}

/// Look an encryption algorithm up by its IKEv2 Transform Type 1 ID.
#[must_use]
pub fn encr_by_ikev2(id: u16) -> Option<&'static EncrInfo> {
    ENCR_TABLE.iter().find(|e| e.ikev2 == id)
}

/// Look an integrity algorithm up by its IKEv2 Transform Type 3 ID.
#[must_use]
pub fn auth_by_ikev2(id: u16) -> Option<&'static AuthInfo> {
    AUTH_TABLE.iter().find(|a| a.ikev2 == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_functions_agree_with_rows() {
        for (i, e) in ENCR_TABLE.iter().enumerate() {
            assert_eq!(encr_index(e.alg), i);
        }
        for (i, a) in AUTH_TABLE.iter().enumerate() {
            assert_eq!(auth_index(a.alg), i);
        }
    }

    #[test]
    fn key_bits_accepts() {
        assert!(KeyBits::AES.accepts(128));
        assert!(KeyBits::AES.accepts(192));
        assert!(KeyBits::AES.accepts(256));
        assert!(!KeyBits::AES.accepts(160));
        assert!(!KeyBits::AES.accepts(320));
        assert!(KeyBits::fixed(0).accepts(0));
        assert!(!KeyBits::fixed(0).accepts(8));
        let bf = encr_info(EncrAlg::BlowfishCbc).key_bits;
        assert!(bf.accepts(40) && bf.accepts(448) && bf.accepts(128));
        assert!(!bf.accepts(32) && !bf.accepts(456) && !bf.accepts(44));
    }
}
