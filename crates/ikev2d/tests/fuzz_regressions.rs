//! Replays every committed input of the `ikev2_config` and `ikev2_pfkey` fuzz targets
//! (`fuzz/seeds/<target>` and `fuzz/regressions/<target>`) through the bodies the
//! targets run, and checks that the generated seeds are current and reach deep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use ikev2d::fuzz_support::{ikev2_config, ikev2_pfkey, pfkey_seeds};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

fn replay(target: &str, body: fn(&[u8]) -> Result<(), String>) -> Vec<PathBuf> {
    let seeds = inputs("seeds", target);
    assert!(!seeds.is_empty(), "no {target} seeds");
    for p in seeds.iter().chain(&inputs("regressions", target)) {
        if let Err(what) = body(&std::fs::read(p).unwrap()) {
            panic!("{}: {what}", p.display());
        }
    }
    seeds
}

/// The config seeds parse (as ikev2.config or ikev2.preshared) unless named `error-*`.
#[test]
fn ikev2_config_inputs_replay() {
    for p in replay("ikev2_config", ikev2_config) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&p).unwrap();
        let ok = if name.starts_with("preshared") {
            ikev2d::config::parse_preshared("s", &text).map(|p| p.len())
        } else {
            ikev2d::config::parse_config("s", &text).map(|c| c.rules.len())
        };
        assert_eq!(ok.is_ok(), !name.starts_with("error-"), "{name}: {ok:?}");
        if let Ok(n) = ok {
            assert!(n >= 2, "{name}");
        }
    }
}

#[test]
fn ikev2_pfkey_inputs_replay_and_seeds_are_current() {
    let generated = pfkey_seeds().unwrap();
    for (name, bytes) in &generated {
        let path = fuzz_dir().join(format!("seeds/ikev2_pfkey/{name}.bin"));
        if std::env::var_os("IRONSWAN_WRITE_SEEDS").is_some() {
            std::fs::write(&path, bytes).unwrap();
        }
        assert_eq!(
            std::fs::read(&path).ok().as_deref(),
            Some(bytes.as_slice()),
            "{} is stale: IRONSWAN_WRITE_SEEDS=1 cargo test -p ikev2d --test fuzz_regressions",
            path.display()
        );
        // Each seed yields suites: the proposal's or the EPROP's.
        let m = ipsec_pfkey::Message::parse(bytes).unwrap();
        let pref = ike::sa::ChildSuite {
            encr: 20,
            key_bits: 128,
            integ: None,
            transport: true,
            pfs: false,
        };
        let n = match (&m.proposal, &m.eprop) {
            (Some(p), _) => ikev2d::policy::suites_from_proposal(p, pref).len(),
            (_, Some(e)) => ikev2d::policy::suites_from_eprop(e, true, false).len(),
            _ => 0,
        };
        assert!(n >= 3, "{name}: {n} suites");
    }
    assert_eq!(replay("ikev2_pfkey", ikev2_pfkey).len(), generated.len());
}
