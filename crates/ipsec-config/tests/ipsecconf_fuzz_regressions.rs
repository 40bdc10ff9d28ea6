//! Replays every committed input of the `ipsecconf_parse` fuzz target
//! (`fuzz/seeds/ipsecconf_parse` and `fuzz/regressions/ipsecconf_parse`) through the body the
//! target runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ipsec_config::fuzz_support::ipsecconf_parse;
use ipsec_config::ipsecconf::{parse_with, ParseOptions};

fn inputs(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join("ipsecconf_parse");
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
fn ipsecconf_fuzz_inputs_replay() {
    let seeds = inputs("seeds");
    let regressions = inputs("regressions");
    assert!(seeds.len() >= 10, "no ipsecconf_parse seeds found");
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        if let Err(what) = ipsecconf_parse(&data) {
            panic!("{}: {what}", path.display());
        }
    }
    eprintln!(
        "replayed {} seeds and {} regression inputs",
        seeds.len(),
        regressions.len()
    );
}

/// The seeds reach deep: those not named `error-*` parse into entries, the others fail.
#[test]
fn seeds_parse_unless_named_error() {
    for path in inputs("seeds") {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let r = parse_with(&text, &name, ParseOptions { numeric: true });
        if name.starts_with("error-") {
            assert!(r.is_err(), "{name} parsed");
        } else {
            let policy = r.unwrap_or_else(|e| panic!("{e}"));
            assert!(!policy.entries.is_empty(), "{name}");
        }
    }
}
