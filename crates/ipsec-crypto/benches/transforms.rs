//! Per-packet cost of the transforms, and of the aws-lc-rs AEAD they wrap.
//!
//! `cargo bench -p ipsec-crypto --bench transforms`

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipsec_crypto::{AuthAlg, EncrAlg, EspEncr, Integ};

const SIZES: [usize; 3] = [64, 1400, 8192];

fn raw_vs_esp_gcm(c: &mut Criterion) {
    let mut g = c.benchmark_group("aes128gcm16");
    let key = [7u8; 16];
    #[allow(clippy::unwrap_used)]
    let raw = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &key).unwrap());
    #[allow(clippy::unwrap_used)]
    let esp = EspEncr::new(
        EncrAlg::AesGcm16,
        &[&key[..], &[1, 2, 3, 4]].concat(),
        false,
    )
    .unwrap();
    let aad = [0u8; 8];
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let mut buf = vec![0u8; size + 16];
        g.bench_with_input(BenchmarkId::new("raw_seal", size), &size, |b, _| {
            b.iter(|| {
                let nonce = Nonce::assume_unique_for_key([1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 9]);
                let (data, tag_out) = buf.split_at_mut(size);
                if let Ok(tag) = raw.seal_in_place_separate_tag(nonce, Aad::from(&aad), data) {
                    tag_out.copy_from_slice(tag.as_ref());
                }
                black_box(&buf);
            })
        });
        g.bench_with_input(BenchmarkId::new("esp_seal", size), &size, |b, _| {
            let mut iv = [0u8; 8];
            b.iter(|| {
                esp.make_iv(9, &mut iv);
                let _ = esp.seal(&iv, &aad, &mut buf);
                black_box(&buf);
            })
        });
        let mut iv = [0u8; 8];
        esp.make_iv(9, &mut iv);
        let mut sealed = vec![0u8; size + 16];
        let _ = esp.seal(&iv, &aad, &mut sealed);
        g.bench_with_input(BenchmarkId::new("esp_seal_open", size), &size, |b, _| {
            b.iter(|| {
                let _ = esp.seal(&iv, &aad, &mut buf);
                buf.copy_from_slice(&sealed);
                let _ = esp.open(&iv, &aad, &mut buf);
                black_box(&buf);
            })
        });
        g.bench_with_input(BenchmarkId::new("raw_seal_open", size), &size, |b, _| {
            b.iter(|| {
                let (data, tag_out) = buf.split_at_mut(size);
                let n = Nonce::assume_unique_for_key([1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 9]);
                if let Ok(tag) = raw.seal_in_place_separate_tag(n, Aad::from(&aad), data) {
                    tag_out.copy_from_slice(tag.as_ref());
                }
                buf.copy_from_slice(&sealed);
                let (data, tag) = buf.split_at_mut(size);
                let n = Nonce::assume_unique_for_key([1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 9]);
                let _ = raw.open_in_place_separate_tag(n, Aad::from(&aad), tag, data);
                black_box(&buf);
            })
        });
    }
    g.finish();
}

fn esp_algorithms(c: &mut Criterion) {
    // 1408: a whole number of blocks for every CBC cipher.
    let mut g = c.benchmark_group("esp_seal_1408");
    g.throughput(Throughput::Bytes(1408));
    for alg in [
        EncrAlg::AesGcm16,
        EncrAlg::AesGcm8,
        EncrAlg::AesNullGmac,
        EncrAlg::ChaCha20Poly1305,
        EncrAlg::AesCcm16,
        EncrAlg::AesCbc,
        EncrAlg::AesCtr,
        EncrAlg::CamelliaCbc,
        EncrAlg::TripleDesCbc,
    ] {
        let info = ipsec_crypto::encr_info(alg);
        let klen = usize::from(info.key_bits.default) / 8 + info.salt_bytes;
        let key: Vec<u8> = (1..=klen as u8).collect();
        #[allow(clippy::unwrap_used)]
        let e = EspEncr::new(alg, &key, true).unwrap();
        let mut buf = vec![0u8; 1408 + e.icv_len()];
        let mut iv = vec![0u8; e.iv_len()];
        g.bench_function(info.name, |b| {
            b.iter(|| {
                e.make_iv(9, &mut iv);
                assert!(e.seal(&iv, &[0u8; 8], &mut buf).is_ok());
                black_box(&buf);
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("integ_1400");
    g.throughput(Throughput::Bytes(1400));
    let data = vec![0u8; 1400];
    for alg in [
        AuthAlg::HmacSha1,
        AuthAlg::HmacSha256,
        AuthAlg::HmacSha512,
        AuthAlg::HmacMd5,
        AuthAlg::AesXcbcMac,
        AuthAlg::AesCmac,
        AuthAlg::AesGmac128,
    ] {
        let info = ipsec_crypto::auth_info(alg);
        let klen = usize::from(info.key_bits.min) / 8 + info.salt_bytes;
        #[allow(clippy::unwrap_used)]
        let i = Integ::new(alg, &vec![5u8; klen], true, true).unwrap();
        let iv = vec![0u8; i.iv_len()];
        let mut out = vec![0u8; i.icv_len()];
        g.bench_function(info.name, |b| {
            b.iter(|| {
                let _ = i.compute(&iv, &[&[0u8; 8], &data], &mut out);
                black_box(&out);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, raw_vs_esp_gcm, esp_algorithms);
criterion_main!(benches);
