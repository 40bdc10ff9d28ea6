//! Table lookups, key checks, error paths and Debug redaction.

use std::collections::HashMap;

use ipsec_crypto::{
    auth_by_ikev2, auth_by_name, auth_by_pfkey, auth_info, auth_table, encr_by_ikev2, encr_by_name,
    encr_by_pfkey, encr_info, encr_table, is_weak_des_key, AuthAlg, CryptoError, EncrAlg, EspEncr,
    Integ, Rfc8221,
};

// ---------------------------------------------------------------- table

#[test]
fn every_name_and_synonym_resolves_case_insensitively() {
    for e in encr_table() {
        for n in std::iter::once(&e.name).chain(e.synonyms) {
            assert_eq!(encr_by_name(n).unwrap().alg, e.alg, "{n}");
            assert_eq!(encr_by_name(&n.to_uppercase()).unwrap().alg, e.alg, "{n}");
        }
    }
    for a in auth_table() {
        for n in std::iter::once(&a.name).chain(a.synonyms) {
            assert_eq!(auth_by_name(n).unwrap().alg, a.alg, "{n}");
            assert_eq!(auth_by_name(&n.to_uppercase()).unwrap().alg, a.alg, "{n}");
        }
    }
    assert!(encr_by_name("rot13").is_none());
    assert!(auth_by_name("").is_none());
}

#[test]
fn no_name_maps_to_two_algorithms() {
    let mut seen = HashMap::new();
    for e in encr_table() {
        for n in std::iter::once(&e.name).chain(e.synonyms) {
            assert!(
                seen.insert(n.to_lowercase(), e.alg).is_none(),
                "encr name {n} twice"
            );
        }
    }
    let mut seen = HashMap::new();
    for a in auth_table() {
        for n in std::iter::once(&a.name).chain(a.synonyms) {
            assert!(
                seen.insert(n.to_lowercase(), a.alg).is_none(),
                "auth name {n} twice"
            );
        }
    }
}

#[test]
fn numbers_are_unique_and_round_trip() {
    let mut pf = HashMap::new();
    let mut ike = HashMap::new();
    for e in encr_table() {
        assert!(
            pf.insert(e.pfkey, e.alg).is_none(),
            "encr pfkey {}",
            e.pfkey
        );
        assert!(
            ike.insert(e.ikev2, e.alg).is_none(),
            "encr ikev2 {}",
            e.ikev2
        );
        assert_eq!(encr_by_pfkey(e.pfkey).unwrap().alg, e.alg);
        assert_eq!(encr_by_ikev2(e.ikev2).unwrap().alg, e.alg);
        assert_eq!(encr_info(e.alg).alg, e.alg);
    }
    let mut pf = HashMap::new();
    let mut ike = HashMap::new();
    for a in auth_table() {
        assert!(
            pf.insert(a.pfkey, a.alg).is_none(),
            "auth pfkey {}",
            a.pfkey
        );
        assert!(
            ike.insert(a.ikev2, a.alg).is_none(),
            "auth ikev2 {}",
            a.ikev2
        );
        assert_eq!(auth_by_pfkey(a.pfkey).unwrap().alg, a.alg);
        assert_eq!(auth_by_ikev2(a.ikev2).unwrap().alg, a.alg);
        assert_eq!(auth_info(a.alg).alg, a.alg);
    }
    assert!(encr_by_pfkey(0).is_none());
    assert!(encr_by_ikev2(1).is_none());
    assert!(auth_by_pfkey(4).is_none());
    assert!(auth_by_ikev2(3).is_none());
}

#[test]
fn solaris_and_iana_numbers() {
    let e = |n: &str| encr_by_name(n).unwrap();
    let expect_e = [
        ("null", 11, 11),
        ("des", 2, 2),
        ("3des", 3, 3),
        ("blowfish", 7, 7),
        ("aes", 12, 12),
        ("aes-ctr", 13, 13),
        ("aes-ccm8", 14, 14),
        ("aes-ccm12", 15, 15),
        ("aes-ccm16", 16, 16),
        ("aes-gcm8", 18, 18),
        ("aes-gcm12", 19, 19),
        ("aes-gcm16", 20, 20),
        ("aes-none-gmac", 21, 21),
        ("camellia", 22, 23),
        ("chacha20-poly1305", 240, 28),
    ];
    for (n, pf, ike) in expect_e {
        assert_eq!((e(n).pfkey, e(n).ikev2), (pf, ike), "{n}");
    }
    let a = |n: &str| auth_by_name(n).unwrap();
    let expect_a = [
        ("none", 0, 0),
        ("md5", 2, 1),
        ("sha1", 3, 2),
        ("sha256", 5, 12),
        ("sha384", 6, 13),
        ("sha512", 7, 14),
        ("aes-xcbc-mac", 240, 5),
        ("aes-cmac", 241, 8),
        ("aes-gmac128", 9, 9),
        ("aes-gmac192", 10, 10),
        ("aes-gmac256", 11, 11),
    ];
    for (n, pf, ike) in expect_a {
        assert_eq!((a(n).pfkey, a(n).ikev2), (pf, ike), "{n}");
    }
    assert_eq!(encr_by_name("aes-gcm").unwrap().alg, EncrAlg::AesGcm16);
    assert_eq!(encr_by_name("aes-ccm").unwrap().alg, EncrAlg::AesCcm16);
    assert_eq!(auth_by_name("hmac-sha-1").unwrap().alg, AuthAlg::HmacSha1);
    assert_eq!(
        auth_by_name("aes-gmac-256").unwrap().alg,
        AuthAlg::AesGmac256
    );
}

#[test]
fn rfc8221_levels_and_legacy_flags() {
    use EncrAlg::*;
    let lvl = |a| encr_info(a).status;
    assert_eq!(lvl(AesGcm16), Rfc8221::Must);
    assert_eq!(lvl(AesCbc), Rfc8221::Must);
    assert_eq!(lvl(Null), Rfc8221::Must);
    assert_eq!(lvl(ChaCha20Poly1305), Rfc8221::Should);
    assert_eq!(lvl(AesCcm8), Rfc8221::Should);
    assert_eq!(lvl(TripleDesCbc), Rfc8221::ShouldNot);
    assert_eq!(lvl(DesCbc), Rfc8221::MustNot);
    assert_eq!(lvl(BlowfishCbc), Rfc8221::MustNot);
    assert_eq!(lvl(AesCtr), Rfc8221::May);
    for e in encr_table() {
        assert_eq!(e.legacy, e.status == Rfc8221::MustNot, "{:?}", e.alg);
    }
    let a = auth_info(AuthAlg::HmacMd5);
    assert_eq!(
        (a.status_esp, a.status_ah),
        (Rfc8221::MustNot, Rfc8221::MustNot)
    );
    assert!(a.legacy_esp && a.legacy_ah);
    assert_eq!(auth_info(AuthAlg::HmacSha1).status_esp, Rfc8221::MustMinus);
    assert_eq!(auth_info(AuthAlg::HmacSha256).status_esp, Rfc8221::Must);
    assert_eq!(auth_info(AuthAlg::HmacSha512).status_esp, Rfc8221::Should);
    assert_eq!(auth_info(AuthAlg::AesGmac128).status_ah, Rfc8221::May);
}

#[test]
fn sizes_match_the_transforms() {
    for info in encr_table() {
        let klen = usize::from(info.key_bits.default) / 8 + info.salt_bytes;
        let key: Vec<u8> = (0..klen as u8)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        let e = EspEncr::new(info.alg, &key, true).unwrap();
        assert_eq!(e.alg(), info.alg);
        assert_eq!(e.iv_len(), info.iv_bytes, "{:?}", info.alg);
        assert_eq!(e.icv_len(), info.icv_bytes, "{:?}", info.alg);
        assert_eq!(e.block_len(), info.block_bytes, "{:?}", info.alg);
        assert_eq!(e.is_aead(), info.aead, "{:?}", info.alg);
    }
    assert_eq!(encr_info(EncrAlg::AesCbc).block_bytes, 16);
    assert_eq!(encr_info(EncrAlg::DesCbc).block_bytes, 8);
    assert_eq!(encr_info(EncrAlg::BlowfishCbc).block_bytes, 8);
    assert_eq!(encr_info(EncrAlg::AesGcm16).block_bytes, 1);
    for info in auth_table() {
        let klen = usize::from(info.key_bits.default) / 8 + info.salt_bytes;
        let key = vec![0x42u8; klen];
        let for_ah = info.alg != AuthAlg::None;
        let i = Integ::new(info.alg, &key, for_ah, true).unwrap();
        assert_eq!(i.alg(), info.alg);
        assert_eq!(i.icv_len(), info.icv_bytes, "{:?}", info.alg);
        assert_eq!(i.iv_len(), info.iv_bytes, "{:?}", info.alg);
    }
    let icv = |a| auth_info(a).icv_bytes;
    assert_eq!(
        [
            icv(AuthAlg::HmacMd5),
            icv(AuthAlg::HmacSha1),
            icv(AuthAlg::AesXcbcMac),
            icv(AuthAlg::AesCmac)
        ],
        [12; 4]
    );
    assert_eq!(
        [
            icv(AuthAlg::HmacSha256),
            icv(AuthAlg::HmacSha384),
            icv(AuthAlg::HmacSha512),
            icv(AuthAlg::AesGmac192)
        ],
        [16, 24, 32, 16]
    );
}

// ---------------------------------------------------------------- keys

fn key_len(alg: EncrAlg) -> usize {
    let i = encr_info(alg);
    usize::from(i.key_bits.default) / 8 + i.salt_bytes
}

#[test]
fn wrong_key_lengths_are_rejected() {
    for info in encr_table() {
        let good = key_len(info.alg);
        for bad in [good + 1, good.wrapping_sub(1), 0, 100] {
            if bad > 200
                || info
                    .key_bits
                    .accepts((bad.saturating_sub(info.salt_bytes)) * 8)
                    && bad >= info.salt_bytes
            {
                continue;
            }
            let r = EspEncr::new(info.alg, &vec![0x42; bad], true);
            match r {
                Err(CryptoError::BadKeyLength {
                    got_bits,
                    expected_bits,
                }) => {
                    assert_eq!(got_bits, bad * 8);
                    assert!(!expected_bits.is_empty());
                }
                other => panic!("{:?} with {bad} bytes: {other:?}", info.alg),
            }
        }
    }
    for info in auth_table() {
        let good = usize::from(info.key_bits.min) / 8 + info.salt_bytes;
        let for_ah = info.alg != AuthAlg::None;
        for bad in [good + 1, good + 8, good.saturating_sub(1)] {
            if bad == good {
                continue;
            }
            let r = Integ::new(info.alg, &vec![0x42; bad], for_ah, true);
            assert!(
                matches!(r, Err(CryptoError::BadKeyLength { .. })),
                "{:?} with {bad} bytes: {r:?}",
                info.alg
            );
        }
    }
}

#[test]
fn blowfish_key_sizes() {
    for bytes in 5..=56 {
        assert!(
            EspEncr::new(EncrAlg::BlowfishCbc, &vec![7; bytes], true).is_ok(),
            "{bytes}"
        );
    }
    for bytes in [0, 4, 57] {
        assert!(
            EspEncr::new(EncrAlg::BlowfishCbc, &vec![7; bytes], true).is_err(),
            "{bytes}"
        );
    }
}

const WEAK: [[u8; 8]; 4] = [
    [0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01],
    [0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe],
    [0xe0, 0xe0, 0xe0, 0xe0, 0xf1, 0xf1, 0xf1, 0xf1],
    [0x1f, 0x1f, 0x1f, 0x1f, 0x0e, 0x0e, 0x0e, 0x0e],
];
const SEMI_WEAK: [[u8; 8]; 2] = [
    [0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe, 0x01, 0xfe],
    [0xe0, 0xfe, 0xe0, 0xfe, 0xf1, 0xfe, 0xf1, 0xfe],
];

#[test]
fn des_weak_and_semi_weak_keys() {
    for k in WEAK.iter().chain(&SEMI_WEAK) {
        assert!(is_weak_des_key(k));
        assert_eq!(
            EspEncr::new(EncrAlg::DesCbc, k, true).unwrap_err(),
            CryptoError::WeakKey
        );
        // Parity bits do not matter.
        let flipped: Vec<u8> = k.iter().map(|b| b ^ 1).collect();
        assert_eq!(
            EspEncr::new(EncrAlg::DesCbc, &flipped, true).unwrap_err(),
            CryptoError::WeakKey
        );
    }
    let ok = [0x13, 0x34, 0x57, 0x79, 0x9b, 0xbc, 0xdf, 0xf1];
    assert!(EspEncr::new(EncrAlg::DesCbc, &ok, true).is_ok());
}

#[test]
fn triple_des_degenerate_keys() {
    let k1 = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    let k2 = [0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01];
    let k3 = [0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23];
    let mk = |a: &[u8], b: &[u8], c: &[u8]| [a, b, c].concat();
    assert!(EspEncr::new(EncrAlg::TripleDesCbc, &mk(&k1, &k2, &k3), false).is_ok());
    // K1 == K3 (two-key 3DES) is allowed.
    assert!(EspEncr::new(EncrAlg::TripleDesCbc, &mk(&k1, &k2, &k1), false).is_ok());
    let k1p: Vec<u8> = k1.iter().map(|b| b ^ 1).collect();
    for bad in [
        mk(&k1, &k1, &k3),
        mk(&k1, &k1p, &k3),
        mk(&k1, &k2, &k2),
        mk(&k1, &k1, &k1),
        mk(&WEAK[0], &k2, &k3),
        mk(&k1, &SEMI_WEAK[1], &k3),
    ] {
        assert_eq!(
            EspEncr::new(EncrAlg::TripleDesCbc, &bad, false).unwrap_err(),
            CryptoError::WeakKey
        );
    }
}

#[test]
fn legacy_algorithms_need_allow_legacy() {
    let des = [0x13, 0x34, 0x57, 0x79, 0x9b, 0xbc, 0xdf, 0xf1];
    assert_eq!(
        EspEncr::new(EncrAlg::DesCbc, &des, false).unwrap_err(),
        CryptoError::LegacyNotAllowed
    );
    assert_eq!(
        EspEncr::new(EncrAlg::BlowfishCbc, &[9; 16], false).unwrap_err(),
        CryptoError::LegacyNotAllowed
    );
    assert!(EspEncr::new(EncrAlg::BlowfishCbc, &[9; 16], true).is_ok());
    // Legacy is checked before the key, so a legacy key of any size is refused the same way.
    assert_eq!(
        EspEncr::new(EncrAlg::DesCbc, &[], false).unwrap_err(),
        CryptoError::LegacyNotAllowed
    );
    for for_ah in [false, true] {
        assert_eq!(
            Integ::new(AuthAlg::HmacMd5, &[1; 16], for_ah, false).unwrap_err(),
            CryptoError::LegacyNotAllowed
        );
        assert!(Integ::new(AuthAlg::HmacMd5, &[1; 16], for_ah, true).is_ok());
    }
    // 3DES is SHOULD NOT, not MUST NOT: no opt-in needed.
    let k: Vec<u8> = (1..=24).collect();
    assert!(EspEncr::new(EncrAlg::TripleDesCbc, &k, false).is_ok());
}

#[test]
fn gmac_only_for_ah_and_none_only_for_esp() {
    for alg in [
        AuthAlg::AesGmac128,
        AuthAlg::AesGmac192,
        AuthAlg::AesGmac256,
    ] {
        let klen = usize::from(auth_info(alg).key_bits.min) / 8 + 4;
        assert_eq!(
            Integ::new(alg, &vec![1; klen], false, true).unwrap_err(),
            CryptoError::NotAllowedHere
        );
        assert!(Integ::new(alg, &vec![1; klen], true, false).is_ok());
    }
    assert_eq!(
        Integ::new(AuthAlg::None, &[], true, true).unwrap_err(),
        CryptoError::NotAllowedHere
    );
    let none = Integ::new(AuthAlg::None, &[], false, false).unwrap();
    assert_eq!(none.icv_len(), 0);
    none.compute(&[], &[b"x"], &mut []).unwrap();
    assert!(none.verify(&[], &[b"x"], &[]));
}

// ---------------------------------------------------------------- Debug

#[test]
fn debug_never_shows_key_bytes() {
    // A recognisable key pattern and every way Debug could render its bytes.
    const PATTERN: [u8; 4] = [0xc3, 0x5e, 0x9a, 0x71];
    let pattern_key =
        |len: usize| -> Vec<u8> { (0..len).map(|i| PATTERN[i % 4] ^ (i / 4) as u8).collect() };
    let needles = [
        "c35e", "C35E", "5e9a", "195, 94", "94, 154", "0xc3", "0x5e", "[195", "195,",
    ];
    for info in encr_table() {
        let key = pattern_key(key_len(info.alg));
        let e = EspEncr::new(info.alg, &key, true).unwrap();
        for s in [format!("{e:?}"), format!("{e:#?}")] {
            assert!(s.contains(&format!("{:?}", info.alg)), "{s}");
            for n in needles {
                assert!(!s.contains(n), "{s}");
            }
        }
    }
    for info in auth_table() {
        let key = pattern_key(usize::from(info.key_bits.min) / 8 + info.salt_bytes);
        let i = Integ::new(info.alg, &key, info.alg != AuthAlg::None, true).unwrap();
        for s in [format!("{i:?}"), format!("{i:#?}")] {
            assert!(s.contains(&format!("{:?}", info.alg)), "{s}");
            for n in needles {
                assert!(!s.contains(n), "{s}");
            }
        }
    }
}

// ---------------------------------------------------------------- IVs and lengths

#[test]
fn counter_mode_ivs_are_the_sequence_number() {
    for alg in [
        EncrAlg::AesCtr,
        EncrAlg::AesGcm16,
        EncrAlg::AesGcm8,
        EncrAlg::AesCcm12,
        EncrAlg::ChaCha20Poly1305,
        EncrAlg::AesNullGmac,
    ] {
        let e = EspEncr::new(alg, &vec![3; key_len(alg)], false).unwrap();
        let mut iv = [0xffu8; 8];
        e.make_iv(0x0102_0304_0506_0708, &mut iv);
        assert_eq!(iv, [1, 2, 3, 4, 5, 6, 7, 8], "{alg:?}");
    }
}

#[test]
fn cbc_ivs_are_unpredictable_but_deterministic() {
    for alg in [
        EncrAlg::AesCbc,
        EncrAlg::CamelliaCbc,
        EncrAlg::TripleDesCbc,
        EncrAlg::DesCbc,
        EncrAlg::BlowfishCbc,
    ] {
        let key: Vec<u8> = (0..key_len(alg) as u8).map(|i| i * 7 + 1).collect();
        let e = EspEncr::new(alg, &key, true).unwrap();
        let e2 = EspEncr::new(alg, &key, true).unwrap();
        let bs = e.iv_len();
        assert_eq!(bs, e.block_len());
        let mut seen = std::collections::HashSet::new();
        for seq in 0..200u64 {
            let mut iv = vec![0u8; bs];
            let mut iv2 = vec![0u8; bs];
            e.make_iv(seq, &mut iv);
            e2.make_iv(seq, &mut iv2);
            assert_eq!(iv, iv2, "deterministic per key");
            assert!(
                !iv.ends_with(&seq.to_be_bytes()),
                "{alg:?} IV must not expose seq"
            );
            assert!(seen.insert(iv), "{alg:?} IV repeated");
        }
        // Not the data key's own encryption of the counter block.
        let other =
            EspEncr::new(alg, &key.iter().map(|b| b ^ 0x80).collect::<Vec<_>>(), true).unwrap();
        let (mut a, mut b) = (vec![0u8; bs], vec![0u8; bs]);
        e.make_iv(1, &mut a);
        other.make_iv(1, &mut b);
        assert_ne!(a, b);
    }
    // A short output buffer is left alone.
    let e = EspEncr::new(EncrAlg::AesCbc, &[1; 16], false).unwrap();
    let mut short = [0u8; 8];
    e.make_iv(5, &mut short);
    assert_eq!(short, [0; 8]);
}

#[test]
fn bad_lengths_are_errors_not_panics() {
    let cbc = EspEncr::new(EncrAlg::AesCbc, &[1; 16], false).unwrap();
    assert_eq!(
        cbc.seal(&[0; 16], &[], &mut [0; 15]),
        Err(CryptoError::BadLength)
    );
    assert_eq!(
        cbc.open(&[0; 16], &[], &mut [0; 17]),
        Err(CryptoError::BadLength)
    );
    assert_eq!(
        cbc.seal(&[0; 8], &[], &mut [0; 16]),
        Err(CryptoError::BadLength)
    );
    assert_eq!(cbc.seal(&[0; 16], &[], &mut []), Ok(()));
    let des3 = EspEncr::new(EncrAlg::TripleDesCbc, &(1..=24).collect::<Vec<u8>>(), false).unwrap();
    assert_eq!(
        des3.seal(&[0; 8], &[], &mut [0; 12]),
        Err(CryptoError::BadLength)
    );
    for alg in [
        EncrAlg::AesGcm16,
        EncrAlg::AesGcm12,
        EncrAlg::AesCcm8,
        EncrAlg::ChaCha20Poly1305,
        EncrAlg::AesNullGmac,
    ] {
        let e = EspEncr::new(alg, &vec![2; key_len(alg)], false).unwrap();
        let short = vec![0u8; e.icv_len() - 1];
        assert_eq!(
            e.seal(&[0; 8], &[], &mut short.clone()),
            Err(CryptoError::BadLength),
            "{alg:?}"
        );
        assert_eq!(
            e.open(&[0; 8], &[], &mut short.clone()),
            Err(CryptoError::BadLength),
            "{alg:?}"
        );
        assert_eq!(
            e.seal(&[0; 7], &[], &mut [0; 32]),
            Err(CryptoError::BadLength),
            "{alg:?}"
        );
        // An all-zero "packet" is not a valid AEAD output.
        assert_eq!(
            e.open(&[0; 8], &[], &mut [0; 32]),
            Err(CryptoError::AuthFailed),
            "{alg:?}"
        );
        // Empty plaintext is fine.
        let mut only_tag = vec![0u8; e.icv_len()];
        e.seal(&[0; 8], b"aad", &mut only_tag).unwrap();
        e.open(&[0; 8], b"aad", &mut only_tag).unwrap();
    }
    let null = EspEncr::new(EncrAlg::Null, &[], false).unwrap();
    assert_eq!(null.seal(&[], &[], &mut [1, 2, 3]), Ok(()));
    assert_eq!(
        null.seal(&[0], &[], &mut [1, 2, 3]),
        Err(CryptoError::BadLength)
    );

    let sha = Integ::new(AuthAlg::HmacSha256, &[1; 32], false, false).unwrap();
    assert_eq!(
        sha.compute(&[], &[b"x"], &mut [0; 15]),
        Err(CryptoError::BadLength)
    );
    assert_eq!(
        sha.compute(&[], &[b"x"], &mut [0; 32]),
        Err(CryptoError::BadLength)
    );
    assert!(!sha.verify(&[], &[b"x"], &[0; 32]));
    assert!(!sha.verify(&[], &[b"x"], &[]));
    let gmac = Integ::new(AuthAlg::AesGmac128, &[1; 20], true, false).unwrap();
    assert_eq!(
        gmac.compute(&[0; 7], &[b"x"], &mut [0; 16]),
        Err(CryptoError::BadLength)
    );
    assert!(!gmac.verify(&[], &[b"x"], &[0; 16]));
}

#[test]
fn roundtrip_every_alg_and_key_size() {
    for info in encr_table() {
        let kb = info.key_bits;
        let mut bits = kb.min;
        loop {
            let klen = usize::from(bits) / 8 + info.salt_bytes;
            let key: Vec<u8> = (0..klen)
                .map(|i| (i as u8).wrapping_mul(29) ^ 0x5c)
                .collect();
            let e = EspEncr::new(info.alg, &key, true).unwrap();
            for blocks in [0usize, 1, 3, 87, 127] {
                let len = blocks * 16;
                let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let mut iv = vec![0u8; e.iv_len()];
                e.make_iv(blocks as u64, &mut iv);
                let mut buf = [&pt[..], &vec![0u8; e.icv_len()][..]].concat();
                e.seal(&iv, b"\0\0\x01\0\0\0\0\x07", &mut buf).unwrap();
                e.open(&iv, b"\0\0\x01\0\0\0\0\x07", &mut buf).unwrap();
                assert_eq!(
                    &buf[..len],
                    &pt[..],
                    "{:?} {bits} bits, {len} bytes",
                    info.alg
                );
            }
            if kb.step == 0 || bits >= kb.max {
                break;
            }
            bits += kb.step;
        }
    }
}

#[test]
fn errors_display() {
    let e = CryptoError::BadKeyLength {
        expected_bits: "128, 192 or 256",
        got_bits: 8,
    };
    assert!(e.to_string().contains("got 8 bits"));
    let dynerr: Box<dyn std::error::Error> = Box::new(CryptoError::AuthFailed);
    assert_eq!(dynerr.to_string(), "integrity check failed");
}

#[test]
fn transforms_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<EspEncr>();
    assert_send_sync::<Integ>();
    assert_send_sync::<CryptoError>();
}
