//! Property tests: round trips, tamper detection, and the generic GCM against
//! the aws-lc-rs GCM.

// Helpers outside #[test] fns: a failure must abort the test.
#![allow(clippy::unwrap_used, clippy::panic)]

use ipsec_crypto::{auth_table, encr_table, raw, AuthAlg, CryptoError, EncrAlg, EspEncr, Integ};
use proptest::prelude::*;

/// Every (algorithm, key material length in bytes) pair the table allows.
fn encr_combos() -> Vec<(EncrAlg, usize)> {
    let mut v = Vec::new();
    for info in encr_table() {
        let kb = info.key_bits;
        let mut bits = kb.min;
        loop {
            v.push((info.alg, usize::from(bits) / 8 + info.salt_bytes));
            if kb.step == 0 || bits >= kb.max {
                break;
            }
            bits += kb.step;
        }
    }
    v
}

fn auth_combos() -> Vec<(AuthAlg, usize)> {
    auth_table()
        .iter()
        .filter(|a| a.alg != AuthAlg::None)
        .map(|a| (a.alg, usize::from(a.key_bits.min) / 8 + a.salt_bytes))
        .collect()
}

fn keyed(alg: EncrAlg, seed: &[u8], len: usize) -> Option<EspEncr> {
    match EspEncr::new(alg, &seed[..len], true) {
        Ok(e) => Some(e),
        // A random DES/3DES key can (very rarely) be weak.
        Err(CryptoError::WeakKey) => None,
        Err(e) => panic!("{alg:?} with {len} bytes: {e}"),
    }
}

fn aad_for(seq: u64, esn: bool) -> Vec<u8> {
    let mut aad = vec![0xde, 0xad, 0xbe, 0xef];
    if esn {
        aad.extend_from_slice(&seq.to_be_bytes());
    } else {
        aad.extend_from_slice(&(seq as u32).to_be_bytes());
    }
    aad
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn seal_open_roundtrip(
        (alg, klen) in prop::sample::select(encr_combos()),
        seed in prop::collection::vec(any::<u8>(), 64),
        data in prop::collection::vec(any::<u8>(), 0..2048),
        seq in any::<u64>(),
        esn in any::<bool>(),
    ) {
        let Some(e) = keyed(alg, &seed, klen) else { return Ok(()) };
        let bl = e.block_len();
        let pt = &data[..data.len() - data.len() % bl];
        let mut iv = vec![0u8; e.iv_len()];
        e.make_iv(seq, &mut iv);
        let aad = aad_for(seq, esn);
        let mut buf = [pt, &vec![0u8; e.icv_len()][..]].concat();
        e.seal(&iv, &aad, &mut buf).unwrap();
        let encrypts = !matches!(alg, EncrAlg::Null | EncrAlg::AesNullGmac);
        if encrypts && pt.len() >= 16 {
            prop_assert_ne!(&buf[..pt.len()], pt);
        } else if !encrypts {
            prop_assert_eq!(&buf[..pt.len()], pt);
        }
        e.open(&iv, &aad, &mut buf).unwrap();
        prop_assert_eq!(&buf[..pt.len()], pt);
    }

    #[test]
    fn aead_detects_any_flipped_bit(
        (alg, klen) in prop::sample::select(
            encr_combos().into_iter().filter(|(a, _)| ipsec_crypto::encr_info(*a).aead).collect::<Vec<_>>()
        ),
        seed in prop::collection::vec(any::<u8>(), 64),
        pt in prop::collection::vec(any::<u8>(), 0..600),
        seq in any::<u64>(),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
        target in 0u8..3,
    ) {
        let e = keyed(alg, &seed, klen).unwrap();
        prop_assert!(e.is_aead());
        let mut iv = vec![0u8; e.iv_len()];
        e.make_iv(seq, &mut iv);
        let mut aad = aad_for(seq, false);
        let mut buf = [&pt[..], &vec![0u8; e.icv_len()][..]].concat();
        e.seal(&iv, &aad, &mut buf).unwrap();
        match target {
            // ciphertext or tag
            0 => { let i = pos.index(buf.len()); buf[i] ^= 1 << bit; }
            1 => { let i = pos.index(aad.len()); aad[i] ^= 1 << bit; }
            _ => { let i = pos.index(iv.len()); iv[i] ^= 1 << bit; }
        }
        prop_assert_eq!(e.open(&iv, &aad, &mut buf), Err(CryptoError::AuthFailed));
    }

    #[test]
    fn integ_detects_any_flipped_bit(
        (alg, klen) in prop::sample::select(auth_combos()),
        seed in prop::collection::vec(any::<u8>(), 64),
        a in prop::collection::vec(any::<u8>(), 0..300),
        b in prop::collection::vec(any::<u8>(), 0..300),
        iv in any::<[u8; 8]>(),
        pos in any::<prop::sample::Index>(),
        bit in 0u8..8,
        in_icv in any::<bool>(),
    ) {
        let for_ah = matches!(alg, AuthAlg::AesGmac128 | AuthAlg::AesGmac192 | AuthAlg::AesGmac256);
        let integ = Integ::new(alg, &seed[..klen], for_ah, true).unwrap();
        let iv: &[u8] = if integ.iv_len() == 8 { &iv } else { &[] };
        let mut icv = vec![0u8; integ.icv_len()];
        integ.compute(iv, &[&a, &b], &mut icv).unwrap();
        let joined = [&a[..], &b[..]].concat();
        prop_assert!(integ.verify(iv, &[&joined], &icv));
        let mut data = joined.clone();
        if in_icv || data.is_empty() {
            let i = pos.index(icv.len());
            icv[i] ^= 1 << bit;
        } else {
            let i = pos.index(data.len());
            data[i] ^= 1 << bit;
        }
        prop_assert!(!integ.verify(iv, &[&data], &icv));
    }

    #[test]
    fn generic_gcm_tag_equals_aws_lc_tag(
        klen in prop::sample::select(vec![16usize, 24, 32]),
        key in prop::collection::vec(any::<u8>(), 32),
        salt in any::<[u8; 4]>(),
        iv in any::<[u8; 8]>(),
        aad in prop::collection::vec(any::<u8>(), 0..40),
        pt in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let keymat = [&key[..klen], &salt[..]].concat();
        let e = EspEncr::new(EncrAlg::AesGcm16, &keymat, false).unwrap();
        let mut aws = [&pt[..], &[0u8; 16][..]].concat();
        e.seal(&iv, &aad, &mut aws).unwrap();

        let nonce = [&salt[..], &iv[..]].concat();
        let mut generic = pt.clone();
        let mut tag = [0u8; 16];
        raw::gcm_seal(&key[..klen], &nonce, &aad, &mut generic, &mut tag).unwrap();
        prop_assert_eq!(&aws[..pt.len()], &generic[..]);
        prop_assert_eq!(&aws[pt.len()..], &tag[..]);

        // The truncated-ICV transforms produce prefixes of the same tag.
        for (alg, icv) in [(EncrAlg::AesGcm8, 8usize), (EncrAlg::AesGcm12, 12)] {
            let e = EspEncr::new(alg, &keymat, false).unwrap();
            let mut buf = [&pt[..], &vec![0u8; icv][..]].concat();
            e.seal(&iv, &aad, &mut buf).unwrap();
            prop_assert_eq!(&buf[..], &aws[..pt.len() + icv]);
        }
    }
}
