//! Replays every committed input of the `ipseckey_parse` fuzz target
//! (`fuzz/seeds/ipseckey_parse` and `fuzz/regressions/ipseckey_parse`) through the body the
//! target runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ipsec_config::esp_sa;
use ipsec_config::fuzz_support::ipseckey_parse;
use ipsec_config::ipseckey::{parse_with, ParseOptions};

fn inputs(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join("ipseckey_parse");
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
fn ipseckey_fuzz_inputs_replay() {
    let seeds = inputs("seeds");
    let regressions = inputs("regressions");
    assert!(seeds.len() >= 5, "no ipseckey_parse seeds found");
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        if let Err(what) = ipseckey_parse(&data) {
            panic!("{}: {what}", path.display());
        }
    }
    eprintln!(
        "replayed {} seeds and {} regression inputs",
        seeds.len(),
        regressions.len()
    );
}

/// The seeds reach deep: those not named `error-*` parse, the others fail. Seeds named
/// `esp-sa-*` are Wireshark tables (the body also feeds its input to `esp_sa::parse`).
#[test]
fn seeds_parse_unless_named_error() {
    for path in inputs("seeds") {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("esp-sa-") {
            let sas = esp_sa::parse(&text, &name).unwrap_or_else(|e| panic!("{e}"));
            assert!(!sas.is_empty(), "{name}");
            continue;
        }
        let r = parse_with(&text, &name, ParseOptions { numeric: true });
        if name.starts_with("error-") {
            assert!(r.is_err(), "{name} parsed");
        } else {
            let cmds = r.unwrap_or_else(|e| panic!("{e}"));
            assert!(!cmds.is_empty(), "{name}");
        }
    }
}
