//! Writes the `ike_message`, `ike_payload`, `ike_responder`, `ike_fragments`, `ike_cert`,
//! `ike_dn` and `ike_import` fuzz seeds to
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ike_dn");
    std::fs::create_dir_all(&dir)?;
    for (name, bytes) in ike::fuzz_support::dn_seeds() {
        std::fs::write(dir.join(format!("{name}.bin")), bytes)?;
    }
    println!("wrote seeds to {}", dir.display());
    // ikev2cert import input: a PEM bundle of a certificate, its CA and its key, and a
    // key alone as DER.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/ike_import");
    std::fs::create_dir_all(&dir)?;
    let read = |n: &str| std::fs::read(certs.join(n));
    let mut bundle = String::from("subject=CN=alice\n");
    bundle.push_str(&ike::fuzz_support::pem(
        "CERTIFICATE",
        &read("alice-ec.crt")?,
    ));
    bundle.push_str(&ike::fuzz_support::pem(
        "CERTIFICATE",
        &read("ec-root.crt")?,
    ));
    bundle.push_str(&ike::fuzz_support::pem(
        "PRIVATE KEY",
        &read("alice-ec.key")?,
    ));
    std::fs::write(dir.join("bundle_pem.bin"), bundle)?;
    std::fs::write(dir.join("key_der.bin"), read("bob-rsa.key")?)?;
    println!("wrote seeds to {}", dir.display());
    Ok(())
}
