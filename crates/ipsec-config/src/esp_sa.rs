//! Wireshark's ESP SA table: the `esp_sa` user-access table (UAT) file of a Wireshark or
//! tshark profile.
//!
//! Each line holds eight comma-separated, double-quoted fields:
//!
//! ```text
//! "IPv4","10.0.0.1","10.0.0.2","0x00001000","AES-CBC [RFC3602]","0x00112233445566778899aabbccddeeff","HMAC-SHA-256-128 [RFC4868]","0x..."
//!  protocol, source, destination, SPI, encryption, encryption key, authentication, authentication key
//! ```
//!
//! Lines starting with `#` and blank lines are ignored. Inside a field, `\\`, `\"` and
//! `\xNN` are escapes (Wireshark's UAT string syntax).
//!
//! * **Protocol**: `IPv4`, `IPv6` or `Any` (the family must match the addresses).
//! * **Addresses and SPI**: Wireshark accepts `*` wildcards and prefixes to match many
//!   packets; those do not describe one usable SA and are refused.
//! * **Keys**: `0x` followed by hex digits (an odd count gets a leading zero nibble, as
//!   Wireshark does), or any other text used as the key bytes verbatim, or empty (no key).
//!   Salts are part of the key, as in ipseckey: AES-CTR, AES-GCM and ChaCha20-Poly1305 keys
//!   end with their 4-byte nonce.
//!
//! Algorithm names are those of Wireshark's ESP dissector (`packet-ipsec.c`):
//!
//! | encryption | ipsec-crypto |
//! |---|---|
//! | `NULL` | null |
//! | `TripleDES-CBC [RFC2451]` | 3des-cbc |
//! | `AES-CBC [RFC3602]` | aes-cbc |
//! | `AES-CTR [RFC3686]` | aes-ctr |
//! | `DES-CBC [RFC2405]` | des-cbc (legacy: `allow_legacy` is set) |
//! | `BLOWFISH-CBC [RFC2451]` | blowfish-cbc (legacy: `allow_legacy` is set) |
//! | `AES-GCM with 8 octet ICV [RFC4106]`, `... 12 ...`, `... 16 ...` | aes-gcm8, aes-gcm12, aes-gcm |
//! | `AES-GCM [RFC4106]` (older Wireshark; the ICV length comes from an `ANY n bit` authentication, 16 octets with `NULL`) | aes-gcm8/12/16 |
//! | `ChaCha20 with Poly1305 [RFC7634]` | chacha20-poly1305 |
//! | `NULL with AES-GMAC [RFC4543]` | aes-none-gmac |
//! | `CAST5-CBC [RFC2144]`, `TWOFISH-CBC`, `AES-GCM with IIV and 16 octet ICV [RFC4106 & RFC8750]`, `ChaCha20 with Poly1305 and IIV [RFC7634 & RFC8750]` | refused: not supported |
//!
//! | authentication | ipsec-crypto |
//! |---|---|
//! | `NULL` | none |
//! | `HMAC-SHA-1-96 [RFC2404]` | hmac-sha1 |
//! | `HMAC-SHA-256-128 [RFC4868]`, `HMAC-SHA-384-192 [RFC4868]`, `HMAC-SHA-512-256 [RFC4868]` | hmac-sha256, hmac-sha384, hmac-sha512 |
//! | `HMAC-MD5-96 [RFC2403]` | hmac-md5 (legacy: `allow_legacy` is set) |
//! | `ANY 64/96/128/192/256 bit authentication [no checking]` | only with an AEAD cipher whose ICV has that length (none); refused otherwise: an SA must check its ICV |
//! | `HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]`, `MAC-RIPEMD-160-96 [RFC2857]` | refused: not supported |
//!
//! Legacy algorithms (RFC 8221 MUST NOT) get `allow_legacy`: a decryption table names SAs
//! that already exist on the wire, so the choice was made elsewhere.
//!
//! The SAs are ESP, transport mode, with the other fields at their defaults (Wireshark's table
//! has no more); every SA is checked with `ipsec_core::Sa::new` like an ipseckey `add`.

use std::fmt::Write as _;
use std::net::IpAddr;

use ipsec_core::{KeyMaterial, Proto, Sa, SaConfig, SaError};
use ipsec_crypto::{auth_info, encr_info, AuthAlg, EncrAlg};

use crate::ipseckey::ParseError;

/// One field of a line: its text (escapes resolved) and 1-based column.
struct Field {
    text: String,
    col: usize,
}

fn err(
    file: &str,
    line: usize,
    col: usize,
    token: &str,
    expected: impl Into<String>,
) -> ParseError {
    ParseError {
        file: file.to_string(),
        line,
        column: col,
        token: token.to_string(),
        expected: expected.into(),
    }
}

/// Splits one UAT line into fields.
fn fields(line_text: &str, file: &str, line: usize) -> Result<Vec<Field>, ParseError> {
    let chars: Vec<char> = line_text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let n = chars.len();
    loop {
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        let col = i + 1;
        let mut text = String::new();
        if i < n && chars[i] == '"' {
            i += 1;
            let mut closed = false;
            while i < n {
                match chars[i] {
                    '"' => {
                        closed = true;
                        i += 1;
                        break;
                    }
                    '\\' if i + 1 < n => {
                        let e = chars[i + 1];
                        if e == 'x' && i + 3 < n {
                            let h: String = chars[i + 2..i + 4].iter().collect();
                            match u8::from_str_radix(&h, 16) {
                                Ok(b) if h.bytes().all(|c| c.is_ascii_hexdigit()) => {
                                    text.push(char::from(b));
                                    i += 4;
                                    continue;
                                }
                                _ => {
                                    return Err(err(
                                        file,
                                        line,
                                        i + 1,
                                        &chars[i..i + 4].iter().collect::<String>(),
                                        "an escape `\\xNN` with two hex digits",
                                    ))
                                }
                            }
                        }
                        text.push(e);
                        i += 2;
                    }
                    c => {
                        text.push(c);
                        i += 1;
                    }
                }
            }
            if !closed {
                return Err(err(
                    file,
                    line,
                    col,
                    &chars[col - 1..].iter().collect::<String>(),
                    "a closing `\"`",
                ));
            }
        } else {
            while i < n && chars[i] != ',' {
                text.push(chars[i]);
                i += 1;
            }
            text = text.trim_end().to_string();
        }
        out.push(Field { text, col });
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= n {
            break;
        }
        if chars[i] != ',' {
            return Err(err(
                file,
                line,
                i + 1,
                &chars[i].to_string(),
                "`,` between fields",
            ));
        }
        i += 1;
    }
    Ok(out)
}

/// Decodes a Wireshark key string.
fn key_bytes(s: &str) -> Option<Vec<u8>> {
    let Some(hex) = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .filter(|h| !h.is_empty())
    else {
        return Some(s.as_bytes().to_vec());
    };
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let padded = if hex.len() % 2 == 1 {
        format!("0{hex}")
    } else {
        hex.to_string()
    };
    (0..padded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(padded.get(i..i + 2)?, 16).ok())
        .collect()
}

fn parse_spi(s: &str) -> Option<u32> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(h, 16).ok()?
        }
        Some(_) => return None,
        None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok()?,
        None => return None,
    };
    u32::try_from(v).ok()
}

/// Encryption name → algorithm; `Ok(None)` for the deprecated ICV-less AES-GCM name.
fn encr_by_wireshark(name: &str) -> Result<Option<EncrAlg>, &'static str> {
    Ok(Some(match name {
        "NULL" => EncrAlg::Null,
        "TripleDES-CBC [RFC2451]" => EncrAlg::TripleDesCbc,
        "AES-CBC [RFC3602]" => EncrAlg::AesCbc,
        "AES-CTR [RFC3686]" => EncrAlg::AesCtr,
        "DES-CBC [RFC2405]" => EncrAlg::DesCbc,
        "BLOWFISH-CBC [RFC2451]" => EncrAlg::BlowfishCbc,
        "AES-GCM with 8 octet ICV [RFC4106]" => EncrAlg::AesGcm8,
        "AES-GCM with 12 octet ICV [RFC4106]" => EncrAlg::AesGcm12,
        "AES-GCM with 16 octet ICV [RFC4106]" => EncrAlg::AesGcm16,
        "ChaCha20 with Poly1305 [RFC7634]" => EncrAlg::ChaCha20Poly1305,
        "NULL with AES-GMAC [RFC4543]" => EncrAlg::AesNullGmac,
        "AES-GCM [RFC4106]" => return Ok(None),
        "CAST5-CBC [RFC2144]"
        | "TWOFISH-CBC"
        | "AES-GCM with IIV and 16 octet ICV [RFC4106 & RFC8750]"
        | "ChaCha20 with Poly1305 and IIV [RFC7634 & RFC8750]" => {
            return Err("an encryption algorithm Ironswan supports (this Wireshark one is not)")
        }
        _ => return Err("a Wireshark ESP encryption algorithm name (e.g. `AES-CBC [RFC3602]`)"),
    }))
}

/// Authentication name → Ok(Some(alg)), or Ok(None) with the ICV bits of an `ANY n bit`
/// (unchecked) entry.
enum Auth {
    Alg(AuthAlg),
    Any(usize),
}

fn auth_by_wireshark(name: &str) -> Result<Auth, &'static str> {
    Ok(match name {
        "NULL" => Auth::Alg(AuthAlg::None),
        "HMAC-SHA-1-96 [RFC2404]" => Auth::Alg(AuthAlg::HmacSha1),
        "HMAC-SHA-256-128 [RFC4868]" => Auth::Alg(AuthAlg::HmacSha256),
        "HMAC-SHA-384-192 [RFC4868]" => Auth::Alg(AuthAlg::HmacSha384),
        "HMAC-SHA-512-256 [RFC4868]" => Auth::Alg(AuthAlg::HmacSha512),
        "HMAC-MD5-96 [RFC2403]" => Auth::Alg(AuthAlg::HmacMd5),
        "ANY 64 bit authentication [no checking]" => Auth::Any(64),
        "ANY 96 bit authentication [no checking]" => Auth::Any(96),
        "ANY 128 bit authentication [no checking]" => Auth::Any(128),
        "ANY 192 bit authentication [no checking]" => Auth::Any(192),
        "ANY 256 bit authentication [no checking]" => Auth::Any(256),
        "HMAC-SHA-256-96 [draft-ietf-ipsec-ciph-sha-256-00]" | "MAC-RIPEMD-160-96 [RFC2857]" => {
            return Err("an authentication algorithm Ironswan supports (this Wireshark one is not)")
        }
        _ => {
            return Err(
                "a Wireshark ESP authentication algorithm name (e.g. `HMAC-SHA-256-128 [RFC4868]`)",
            )
        }
    })
}

/// Parses an `esp_sa` table into ESP SAs (see the module documentation).
pub fn parse(text: &str, file: &str) -> Result<Vec<SaConfig>, ParseError> {
    let mut out = Vec::new();
    for (idx, raw_line) in text.split('\n').enumerate() {
        let line = idx + 1;
        let l = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        let trimmed = l.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let f = fields(l, file, line)?;
        if f.len() != 8 {
            let (col, tok) = match f.get(8) {
                Some(x) => (x.col, x.text.clone()),
                None => (l.chars().count() + 1, "end of line".to_string()),
            };
            return Err(err(
                file,
                line,
                col,
                &tok,
                format!(
                    "8 fields (protocol, source, destination, SPI, encryption, key, \
                     authentication, key); this line has {}",
                    f.len()
                ),
            ));
        }
        out.push(sa_of(&f, file, line)?);
    }
    Ok(out)
}

fn sa_of(f: &[Field], file: &str, line: usize) -> Result<SaConfig, ParseError> {
    let e = |i: usize, expected: &str| err(file, line, f[i].col, &f[i].text, expected);
    let want_v4 = match f[0].text.to_ascii_lowercase().as_str() {
        "ipv4" => Some(true),
        "ipv6" => Some(false),
        "any" => None,
        _ => return Err(e(0, "a protocol (IPv4, IPv6 or Any)")),
    };
    let addr = |i: usize| -> Result<IpAddr, ParseError> {
        let t = &f[i].text;
        if t.contains('*') || t.contains('/') {
            return Err(e(
                i,
                "a literal address (wildcards and prefixes match many packets and cannot \
                 describe a usable SA)",
            ));
        }
        let ip: IpAddr = t.parse().map_err(|_| e(i, "an IPv4 or IPv6 address"))?;
        if want_v4.is_some_and(|v4| v4 != ip.is_ipv4()) {
            return Err(e(i, "an address of the family named in the protocol field"));
        }
        Ok(ip)
    };
    let src = addr(1)?;
    let dst = addr(2)?;
    if src.is_ipv4() != dst.is_ipv4() {
        return Err(e(2, "a destination of the same family as the source"));
    }
    if f[3].text.contains('*') {
        return Err(e(
            3,
            "a literal SPI (a wildcard matches many SAs and cannot describe a usable one)",
        ));
    }
    let spi = parse_spi(&f[3].text).ok_or_else(|| e(3, "an SPI (0x... or decimal)"))?;
    let encr = encr_by_wireshark(&f[4].text).map_err(|x| e(4, x))?;
    let auth = auth_by_wireshark(&f[6].text).map_err(|x| e(6, x))?;
    let (encr, auth) = match (encr, auth) {
        (None, Auth::Alg(AuthAlg::None)) => (EncrAlg::AesGcm16, None),
        (None, Auth::Any(64)) => (EncrAlg::AesGcm8, None),
        (None, Auth::Any(96)) => (EncrAlg::AesGcm12, None),
        (None, Auth::Any(128)) => (EncrAlg::AesGcm16, None),
        (None, _) => {
            return Err(e(
                6,
                "NULL or ANY 64/96/128 bit authentication with `AES-GCM [RFC4106]` (its ICV \
                 length)",
            ))
        }
        (Some(a), Auth::Any(bits)) if encr_info(a).aead && encr_info(a).icv_bytes * 8 == bits => {
            (a, None)
        }
        (Some(_), Auth::Any(_)) => {
            return Err(e(
                6,
                "an authentication algorithm that checks the ICV (`ANY ... [no checking]` is \
                 only accepted as the ICV length of an AEAD cipher)",
            ))
        }
        (Some(a), Auth::Alg(AuthAlg::None)) => (a, None),
        (Some(a), Auth::Alg(x)) => (a, Some(x)),
    };
    let ekey = key_bytes(&f[5].text).ok_or_else(|| {
        err(
            file,
            line,
            f[5].col,
            "<key>",
            "a key: 0x and hex digits, or text",
        )
    })?;
    let akey = key_bytes(&f[7].text).ok_or_else(|| {
        err(
            file,
            line,
            f[7].col,
            "<key>",
            "a key: 0x and hex digits, or text",
        )
    })?;
    let mut cfg = SaConfig::new(Proto::Esp, spi, Some(src), dst);
    cfg.encr_alg = Some(encr);
    cfg.encr_key = KeyMaterial::new(&ekey);
    cfg.auth_alg = auth;
    cfg.auth_key = KeyMaterial::new(&akey);
    cfg.allow_legacy = encr_info(encr).legacy || auth.is_some_and(|a| auth_info(a).legacy_esp);
    if auth.is_none() && !akey.is_empty() {
        return Err(err(
            file,
            line,
            f[7].col,
            "<key>",
            "no authentication key with NULL authentication",
        ));
    }
    if let Err(x) = Sa::new(cfg.clone(), 0) {
        let i = match &x {
            SaError::ReservedSpi(_) => 3,
            SaError::Key { which, .. } if *which == "encryption" => 5,
            SaError::Key { .. } => 7,
            SaError::BadAlgorithm(_) | SaError::MissingAlgorithm(_) => 4,
            _ => 0,
        };
        let token = if i == 5 || i == 7 {
            "<key>".to_string()
        } else {
            f[i].text.clone()
        };
        return Err(err(
            file,
            line,
            f[i].col,
            &token,
            format!("a usable SA ({x})"),
        ));
    }
    Ok(cfg)
}

fn encr_name(a: EncrAlg) -> Option<&'static str> {
    Some(match a {
        EncrAlg::Null => "NULL",
        EncrAlg::TripleDesCbc => "TripleDES-CBC [RFC2451]",
        EncrAlg::AesCbc => "AES-CBC [RFC3602]",
        EncrAlg::AesCtr => "AES-CTR [RFC3686]",
        EncrAlg::DesCbc => "DES-CBC [RFC2405]",
        EncrAlg::BlowfishCbc => "BLOWFISH-CBC [RFC2451]",
        EncrAlg::AesGcm8 => "AES-GCM with 8 octet ICV [RFC4106]",
        EncrAlg::AesGcm12 => "AES-GCM with 12 octet ICV [RFC4106]",
        EncrAlg::AesGcm16 => "AES-GCM with 16 octet ICV [RFC4106]",
        _ => return None,
    })
}

fn auth_name(a: AuthAlg) -> Option<&'static str> {
    Some(match a {
        AuthAlg::None => "NULL",
        AuthAlg::HmacSha1 => "HMAC-SHA-1-96 [RFC2404]",
        AuthAlg::HmacSha256 => "HMAC-SHA-256-128 [RFC4868]",
        AuthAlg::HmacSha384 => "HMAC-SHA-384-192 [RFC4868]",
        AuthAlg::HmacSha512 => "HMAC-SHA-512-256 [RFC4868]",
        AuthAlg::HmacMd5 => "HMAC-MD5-96 [RFC2403]",
        _ => return None,
    })
}

fn key_field(k: &KeyMaterial) -> String {
    if k.is_empty() {
        return String::new();
    }
    let mut s = String::from("0x");
    for b in k.expose() {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The reverse, for writing a tshark profile in tests: one line (no newline) per ESP SA.
///
/// Only algorithms the tshark of Debian 12 (Wireshark 4.0) decrypts are written:
/// NULL, 3DES, AES-CBC, AES-CTR, DES, Blowfish (128-bit keys only, Wireshark's limit) and
/// AES-GCM with an 8, 12 or 16 octet ICV; HMAC-SHA-1/256/384/512 and HMAC-MD5. Anything else
/// (AH, ChaCha20-Poly1305, AES-CCM, Camellia, AES-GMAC, AES-XCBC, AES-CMAC) returns `None`.
/// An SA without a source address is written with the source `*` (tshark matches any source);
/// [`parse`] refuses such a line.
pub fn format_line(cfg: &SaConfig) -> Option<String> {
    if cfg.proto != Proto::Esp {
        return None;
    }
    let encr = cfg.encr_alg.unwrap_or(EncrAlg::Null);
    let ename = encr_name(encr)?;
    if encr == EncrAlg::BlowfishCbc && cfg.encr_key.expose().len() != 16 {
        return None;
    }
    let aname = auth_name(cfg.auth_alg.unwrap_or(AuthAlg::None))?;
    let family = if cfg.dst.is_ipv4() { "IPv4" } else { "IPv6" };
    let src = cfg.src.map_or_else(|| "*".to_string(), |a| a.to_string());
    Some(format!(
        "\"{family}\",\"{src}\",\"{}\",\"0x{:08x}\",\"{ename}\",\"{}\",\"{aname}\",\"{}\"",
        cfg.dst,
        cfg.spi,
        key_field(&cfg.encr_key),
        key_field(&cfg.auth_key)
    ))
}
