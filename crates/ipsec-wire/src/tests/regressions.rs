//! Replays every committed fuzz input (crash regressions and seeds) through the fuzz target
//! bodies. New crash inputs go to `fuzz/regressions/<target>/`.

use std::fs;
use std::path::{Path, PathBuf};
use std::vec::Vec;

use crate::fuzz_support::{self, Outcome};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn target_fn(name: &str) -> Option<fn(&[u8]) -> Outcome> {
    match name {
        "wire_ip" => Some(fuzz_support::wire_ip),
        "wire_esp_ah" => Some(fuzz_support::wire_esp_ah),
        "wire_udpencap_icmp" => Some(fuzz_support::wire_udpencap_icmp),
        _ => None,
    }
}

fn replay(kind: &str) -> usize {
    let root = fuzz_dir().join(kind);
    let Ok(targets) = fs::read_dir(&root) else {
        return 0;
    };
    let mut n = 0;
    for t in targets {
        let t = t.unwrap();
        if !t.file_type().unwrap().is_dir() {
            continue; // README, .gitkeep
        }
        let name = t.file_name().into_string().unwrap();
        // Targets of other crates (engine_*, ipseckey_*) are replayed by those crates' tests.
        let Some(f) = target_fn(&name) else {
            assert!(
                !name.starts_with("wire_"),
                "unknown wire fuzz target dir {name}"
            );
            continue;
        };
        let mut files: Vec<_> = fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let data = fs::read(&file).unwrap();
            assert_eq!(f(&data), Ok(()), "{}", file.display());
            // All three bodies must survive any input.
            for g in ["wire_ip", "wire_esp_ah", "wire_udpencap_icmp"] {
                assert_eq!(
                    target_fn(g).unwrap()(&data),
                    Ok(()),
                    "{g} on {}",
                    file.display()
                );
            }
            n += 1;
        }
    }
    n
}

#[test]
fn fuzz_regressions_replay() {
    let n = replay("regressions");
    std::println!("replayed {n} regression inputs");
}

#[test]
fn fuzz_seeds_replay() {
    let n = replay("seeds");
    std::println!("replayed {n} seed inputs");
}
