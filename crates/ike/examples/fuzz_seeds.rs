//! Writes the `ike_message`, `ike_payload`, `ike_responder`, `ike_fragments` and `ike_cert`
//! fuzz seeds to
//! `fuzz/seeds/<target>/`:
//! `cargo run -p ike --example fuzz_seeds`.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ike_message");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in ike::fuzz_support::seed_messages()? {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    println!("wrote seeds to {}", dir.display());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ike_payload");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in ike::fuzz_support::payload_seeds()? {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    println!("wrote seeds to {}", dir.display());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ike_responder");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in ike::fuzz_support::responder_seeds()? {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    println!("wrote seeds to {}", dir.display());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ike_fragments");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in ike::fuzz_support::fragment_seeds() {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    println!("wrote seeds to {}", dir.display());
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ike_cert");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in ike::fuzz_support::cert_seeds() {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    // The test PKI's certificates (tests/certs/gen.sh).
    let certs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/certs");
    for e in std::fs::read_dir(&certs)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "crt") {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("cert");
            std::fs::write(dir.join(format!("cert_{stem}.bin")), std::fs::read(&p)?)?;
        }
    }
    println!("wrote seeds to {}", dir.display());
    Ok(())
}
