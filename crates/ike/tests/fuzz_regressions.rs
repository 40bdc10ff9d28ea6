//! Replays every committed input of the `ike_message`, `ike_payload`, `ike_responder`, `ike_cert`, `ike_dn` and `ike_import`
//! fuzz targets
//! (`fuzz/seeds/<target>` and `fuzz/regressions/<target>`) through the bodies the targets
//! run, and checks that the committed seeds are the ones the library generates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ike::fuzz_support::{
    fuzz_cipher, ike_message, ike_payload, ike_responder, payload_seeds, responder_seeds,
    seed_messages, FUZZ_SUITES,
};
use ike::wire::{Message, Payload};
use zeroize::Zeroizing;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

/// Replays the committed inputs of `target` through its body; returns how many seeds.
fn replay(target: &str, body: fn(&[u8]) -> Result<(), String>) -> usize {
    let seeds = inputs("seeds", target);
    let regressions = inputs("regressions", target);
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        if let Err(what) = body(&data) {
            panic!("{}: {what}", path.display());
        }
    }
    seeds.len()
}

/// The committed seed `name` of `target` is `bytes`.
fn assert_current(target: &str, name: &str, bytes: &[u8]) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target)
        .join(format!("{name}.bin"));
    assert_eq!(
        std::fs::read(&path).ok().as_deref(),
        Some(bytes),
        "{} is stale: cargo run -p ike --example fuzz_seeds",
        path.display()
    );
}

#[test]
fn ike_message_inputs_replay_and_seeds_are_current() {
    let generated = seed_messages().unwrap();
    assert_eq!(replay("ike_message", ike_message), generated.len());
    let (mut opened, mut fragments) = (0, 0);
    for (name, bytes) in generated {
        Message::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        for suite in FUZZ_SUITES {
            let mut plain = Zeroizing::new(Vec::new());
            let c = fuzz_cipher(suite).unwrap();
            if let Ok((_, inner)) = c.open(&bytes, &mut plain) {
                assert!(inner.iter().any(|p| matches!(p, Payload::Sa(_))), "{name}");
                opened += 1;
            }
            if c.open_fragment(&bytes, &mut plain).is_ok() {
                fragments += 1;
            }
        }
        assert_current("ike_message", name, &bytes);
    }
    assert_eq!(
        opened,
        FUZZ_SUITES.len(),
        "each SK seed opens with exactly its suite"
    );
    assert_eq!(fragments, 7, "each SKF seed opens with exactly its suite");
}

#[test]
fn ike_payload_inputs_replay_and_seeds_are_current() {
    let generated = payload_seeds().unwrap();
    assert_eq!(replay("ike_payload", ike_payload), generated.len());
    for (name, bytes) in generated {
        // Each seed is a payload the parser takes.
        let (ty, body) = bytes.split_first().unwrap();
        let mut chain = vec![0, 0];
        chain.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        chain.extend_from_slice(body);
        ike::wire::parse_chain(*ty, &chain, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_current("ike_payload", &name, &bytes);
    }
}

#[test]
fn ike_responder_inputs_replay_and_seeds_are_current() {
    let generated = responder_seeds().unwrap();
    assert_eq!(replay("ike_responder", ike_responder), generated.len());
    let jar = ike::sa::CookieJar::new(&[0x2a; 32]);
    for (name, bytes) in generated {
        // The seeds reach both outcomes: an SA, and a COOKIE reply.
        let ctx = ike::sa::InitContext {
            path: ike::fuzz_support::fuzz_path(),
            cookies: &jar,
            require_cookie: bytes[0] == 1,
        };
        let cfg = ike::fuzz_support::fuzz_config();
        let got = ike::sa::respond_sa_init(&cfg, &bytes[1..], &ctx, &mut TestRng(1));
        assert_eq!(got.is_ok(), name != "sa_init_needs_cookie", "{name}");
        assert_current("ike_responder", name, &bytes);
    }
}

#[test]
fn ike_cert_inputs_replay_and_seeds_are_current() {
    let generated = ike::fuzz_support::cert_seeds();
    let certs: Vec<PathBuf> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/certs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
    assert_eq!(
        replay("ike_cert", ike::fuzz_support::ike_cert),
        generated.len() + certs.len()
    );
    for (name, bytes) in &generated {
        ike::cert::SigAlg::from_algorithm_identifier(bytes).unwrap();
        assert_current("ike_cert", name, bytes);
    }
    for p in certs {
        let der = std::fs::read(&p).unwrap();
        ike::cert::Certificate::from_der(&der).unwrap();
        let stem = p.file_stem().unwrap().to_str().unwrap();
        assert_current("ike_cert", &format!("cert_{stem}"), &der);
    }
}

#[test]
fn ike_dn_inputs_replay_and_seeds_are_current() {
    let generated = ike::fuzz_support::dn_seeds();
    assert_eq!(replay("ike_dn", ike::fuzz_support::ike_dn), generated.len());
    for (name, bytes) in &generated {
        assert_current("ike_dn", name, bytes);
    }
}

/// The import seeds decode: a PEM bundle of two certificates and a key, a DER key.
#[test]
fn ike_import_inputs_replay() {
    assert_eq!(replay("ike_import", ike::fuzz_support::ike_import), 2);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ike_import");
    let store = std::env::temp_dir().join(format!("ike-import-seeds-{}", std::process::id()));
    let s = ike::cert::store::CertStore::open(&store).unwrap();
    let bundle = s
        .import(
            Path::new("b"),
            &std::fs::read(dir.join("bundle_pem.bin")).unwrap(),
            false,
        )
        .unwrap();
    let key = s
        .import(
            Path::new("k"),
            &std::fs::read(dir.join("key_der.bin")).unwrap(),
            false,
        )
        .unwrap();
    std::fs::remove_dir_all(&store).unwrap();
    assert_eq!((bundle.len(), key.len()), (3, 1));
}

struct TestRng(u8);

impl ike::Random for TestRng {
    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            self.0 = self.0.wrapping_add(37);
            *b = self.0;
        }
    }
}

#[test]
fn ike_fragments_inputs_replay_and_seeds_are_current() {
    let generated = ike::fuzz_support::fragment_seeds();
    assert_eq!(
        replay("ike_fragments", ike::fuzz_support::ike_fragments),
        generated.len()
    );
    for (name, bytes) in &generated {
        assert_current("ike_fragments", name, bytes);
    }
}
