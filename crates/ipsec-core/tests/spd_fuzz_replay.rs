//! Replays every committed input of the `spd_lookup` fuzz target (`fuzz/seeds/spd_lookup` and
//! `fuzz/regressions/spd_lookup`) through the body the target runs, plus a deterministic sweep
//! of pseudo-random inputs so the body is exercised even without the fuzzer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use ipsec_core::spd::fuzz_support::spd_lookup;

fn replay(kind: &str) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join("spd_lookup");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Err(what) = spd_lookup(&data) {
            panic!("{}: {what}", path.display());
        }
        n += 1;
    }
    n
}

#[test]
fn spd_lookup_inputs_replay() {
    let seeds = replay("seeds");
    let regressions = replay("regressions");
    assert!(seeds > 0, "no spd_lookup seeds found");
    eprintln!("replayed {seeds} seeds and {regressions} regression inputs");
}

#[test]
fn spd_lookup_pseudo_random_sweep() {
    // xorshift64*: deterministic inputs of many lengths.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for i in 0..300 {
        let len = 1 + (next() % 1500) as usize;
        let data: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Err(what) = spd_lookup(&data) {
            panic!("input {i}: {what}");
        }
    }
}
