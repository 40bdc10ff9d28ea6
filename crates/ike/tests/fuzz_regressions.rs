//! Replays every committed input of the `ike_message` fuzz target
//! (`fuzz/seeds/ike_message` and `fuzz/regressions/ike_message`) through the body the
//! target runs, and checks that the committed seeds are the ones the library generates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ike::fuzz_support::{fuzz_cipher, ike_message, seed_messages, FUZZ_SUITES};
use ike::wire::{Message, Payload};
use zeroize::Zeroizing;

fn inputs(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join("ike_message");
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

#[test]
fn ike_fuzz_inputs_replay() {
    let seeds = inputs("seeds");
    let regressions = inputs("regressions");
    assert!(seeds.len() >= 14, "no ike_message seeds found");
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        if let Err(what) = ike_message(&data) {
            panic!("{}: {what}", path.display());
        }
    }
}

#[test]
fn seeds_are_current_and_exercise_every_path() {
    let (mut opened, mut fragments) = (0, 0);
    for (name, bytes) in seed_messages().unwrap() {
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
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds/ike_message")
            .join(format!("{name}.bin"));
        assert_eq!(
            std::fs::read(&path).ok(),
            Some(bytes),
            "{} is stale: cargo run -p ike --example fuzz_seeds",
            path.display()
        );
    }
    assert_eq!(
        opened,
        FUZZ_SUITES.len(),
        "each SK seed opens with exactly its suite"
    );
    assert_eq!(fragments, 7, "each SKF seed opens with exactly its suite");
}
