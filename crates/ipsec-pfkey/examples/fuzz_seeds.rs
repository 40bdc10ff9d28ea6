//! Writes the `pfkey_decode` fuzz seeds (one valid message of each type, named by type) to
//! `fuzz/seeds/pfkey_decode/`: `cargo run -p ipsec-pfkey --example fuzz_seeds`.

use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/pfkey_decode");
    std::fs::create_dir_all(&dir)?;
    for (name, m) in ipsec_pfkey::fuzz_support::seed_messages() {
        std::fs::write(dir.join(format!("{name}.bin")), m.emit()?)?;
    }
    println!("wrote seeds to {}", dir.display());
    Ok(())
}
