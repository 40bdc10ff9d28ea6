//! Replays every committed input of the `pfkey_decode` fuzz target
//! (`fuzz/seeds/pfkey_decode` and `fuzz/regressions/pfkey_decode`) through the body the
//! target runs, and checks that the committed seeds are the ones the library generates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ipsec_pfkey::fuzz_support::{pfkey_decode, seed_messages};
use ipsec_pfkey::{Flow, Message};

fn inputs(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join("pfkey_decode");
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
fn pfkey_fuzz_inputs_replay() {
    let seeds = inputs("seeds");
    let regressions = inputs("regressions");
    assert!(seeds.len() >= 15, "no pfkey_decode seeds found");
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        if let Err(what) = pfkey_decode(&data) {
            panic!("{}: {what}", path.display());
        }
    }
    eprintln!(
        "replayed {} seeds and {} regression inputs",
        seeds.len(),
        regressions.len()
    );
}

#[test]
fn seeds_are_valid_requests_of_every_type() {
    let mut types = std::collections::BTreeSet::new();
    for (name, m) in seed_messages() {
        let b = m.emit().unwrap();
        let p = Message::parse(&b).unwrap();
        assert_eq!(p, m, "{name}");
        p.validate(Flow::ToKernel)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        types.insert(m.msg_type);
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/seeds/pfkey_decode")
            .join(format!("{name}.bin"));
        assert_eq!(
            std::fs::read(&path).ok(),
            Some(b),
            "{} is stale: cargo run -p ipsec-pfkey --example fuzz_seeds",
            path.display()
        );
    }
    assert_eq!(types.len(), 15, "a message type has no seed: {types:?}");
}
