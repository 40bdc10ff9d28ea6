//! Writes the `ike_message`, `ike_payload` and `ike_responder` fuzz seeds to
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
    Ok(())
}
