//! Replays every committed input of the engine fuzz targets (`fuzz/seeds/engine_*` and
//! `fuzz/regressions/engine_*`) through the same bodies the targets run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use ipsec_core::fuzz_support::{engine_inbound, engine_roundtrip};

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind);
    let mut n = 0;
    for (target, body) in [
        (
            "engine_inbound",
            engine_inbound as fn(&[u8]) -> Result<(), &'static str>,
        ),
        ("engine_roundtrip", engine_roundtrip),
    ] {
        let Ok(dir) = std::fs::read_dir(root.join(target)) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            if let Err(what) = body(&data) {
                panic!("{}: {what}", path.display());
            }
            n += 1;
        }
    }
    n
}

#[test]
fn engine_fuzz_inputs_replay() {
    let seeds = replay("seeds");
    let regressions = replay("regressions");
    assert!(seeds > 0, "no engine fuzz seeds found");
    eprintln!("replayed {seeds} seeds and {regressions} regression inputs");
}

#[test]
fn inbound_seeds_are_accepted() {
    // The seeds must reach deep into the engine: each is a valid packet for the fuzz SADB.
    let seeds = ipsec_core::fuzz_support::inbound_seeds();
    assert_eq!(seeds.len(), 16);
    for s in &seeds {
        let mut db = ipsec_core::fuzz_support::fuzz_sadb();
        let mut b = ipsec_core::PacketBuf::from_packet(s);
        let r = ipsec_core::Engine::new().inbound(&mut db, &mut b, 0);
        assert!(r.is_ok(), "{r:?}");
    }
}
