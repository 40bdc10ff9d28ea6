//! Writes seed inputs for the engine fuzz targets into `fuzz/seeds/engine_*/`.
//! Usage: `cargo run -p ipsec-core --example fuzz_seeds` (from the repository root).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;

fn main() {
    let dir = "fuzz/seeds/engine_inbound";
    fs::create_dir_all(dir).unwrap();
    for (i, p) in ipsec_core::fuzz_support::inbound_seeds().iter().enumerate() {
        fs::write(format!("{dir}/valid-{i:02}"), p).unwrap();
    }
    let dir = "fuzz/seeds/engine_roundtrip";
    fs::create_dir_all(dir).unwrap();
    for sel in 0u8..10 {
        for flags in [0u8, 1, 2, 3, 5, 7, 16, 17, 23, 32, 35] {
            let mut d = vec![sel, flags];
            d.extend((0..(usize::from(sel) * 37 % 300)).map(|i| i as u8));
            fs::write(format!("{dir}/s{sel}-f{flags}"), d).unwrap();
        }
    }
}
