//! Replays every committed input of the `ipseckey_parse` and `ipsecconf_parse` fuzz targets
//! (`fuzz/seeds/<target>` and `fuzz/regressions/<target>`) through the bodies the targets run,
//! and checks that the seeds reach deep (they parse unless named `error-*`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ipsec_config::fuzz_support::{ipsecconf_parse, ipseckey_parse};
use ipsec_config::{esp_sa, ipsecconf, ipseckey};

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

fn replay(target: &str, min_seeds: usize, body: fn(&[u8]) -> Result<(), &'static str>) {
    let seeds = inputs("seeds", target);
    let regressions = inputs("regressions", target);
    assert!(seeds.len() >= min_seeds, "no {target} seeds found");
    for path in seeds.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap();
        if let Err(what) = body(&data) {
            panic!("{}: {what}", path.display());
        }
    }
    eprintln!(
        "{target}: replayed {} seeds and {} regression inputs",
        seeds.len(),
        regressions.len()
    );
}

#[test]
fn ipseckey_fuzz_inputs_replay() {
    replay("ipseckey_parse", 5, ipseckey_parse);
}

#[test]
fn ipsecconf_fuzz_inputs_replay() {
    replay("ipsecconf_parse", 10, ipsecconf_parse);
}

/// Seeds named `esp-sa-*` are Wireshark tables (the body also feeds its input to
/// `esp_sa::parse`); the others are ipseckey files.
#[test]
fn ipseckey_seeds_parse_unless_named_error() {
    for path in inputs("seeds", "ipseckey_parse") {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("esp-sa-") {
            let sas = esp_sa::parse(&text, &name).unwrap_or_else(|e| panic!("{e}"));
            assert!(!sas.is_empty(), "{name}");
            continue;
        }
        let r = ipseckey::parse_with(&text, &name, ipseckey::ParseOptions { numeric: true });
        if name.starts_with("error-") {
            assert!(r.is_err(), "{name} parsed");
        } else {
            let cmds = r.unwrap_or_else(|e| panic!("{e}"));
            assert!(!cmds.is_empty(), "{name}");
        }
    }
}

#[test]
fn ipsecconf_seeds_parse_unless_named_error() {
    for path in inputs("seeds", "ipsecconf_parse") {
        let text = std::fs::read_to_string(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let r = ipsecconf::parse_with(&text, &name, ipsecconf::ParseOptions { numeric: true });
        if name.starts_with("error-") {
            assert!(r.is_err(), "{name} parsed");
        } else {
            let policy = r.unwrap_or_else(|e| panic!("{e}"));
            assert!(!policy.entries.is_empty(), "{name}");
        }
    }
}

/// The `ipsecalgs_parse` inputs pass its body, the built-in table's file among them
/// (`builtin.txt`, current), and seeds not named `error-*` parse.
#[test]
fn ipsecalgs_fuzz_inputs_replay() {
    let builtin = ipsec_config::ipsecalgs::Table::builtin().to_file_text();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ipsecalgs_parse/builtin.txt");
    if std::env::var_os("IRONSWAN_WRITE_SEEDS").is_some() {
        std::fs::write(&path, &builtin).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).ok().as_deref(),
        Some(builtin.as_str()),
        "{} is stale: IRONSWAN_WRITE_SEEDS=1 cargo test -p ipsec-config --test fuzz_regressions",
        path.display()
    );
    let seeds = inputs("seeds", "ipsecalgs_parse");
    assert!(seeds.len() >= 2);
    for p in seeds
        .iter()
        .chain(&inputs("regressions", "ipsecalgs_parse"))
    {
        let data = std::fs::read(p).unwrap();
        if let Err(what) = ipsec_config::fuzz_support::ipsecalgs_parse(&data) {
            panic!("{}: {what}", p.display());
        }
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if p.starts_with(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds")) {
            let parsed = ipsec_config::ipsecalgs::parse(&String::from_utf8_lossy(&data), "s");
            assert_eq!(parsed.is_ok(), !name.starts_with("error-"), "{name}");
        }
    }
}
