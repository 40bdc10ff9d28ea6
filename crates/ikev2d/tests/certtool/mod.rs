//! What the certificate tests share: running `ikev2cert` and finding the test PKI.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

pub const IKEV2CERT: &str = env!("CARGO_BIN_EXE_ikev2cert");

/// A file of the test PKI of crates/ike/tests/certs (DER certificates, PKCS#8 keys).
pub fn pki(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../ike/tests/certs")
        .join(name)
        .display()
        .to_string()
}

/// Runs `ikev2cert -d store args...`.
pub fn run(store: &Path, args: &[&str]) -> Output {
    Command::new(IKEV2CERT)
        .arg("-d")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

/// [`run`], which must succeed: its standard output.
pub fn ok(store: &Path, args: &[&str]) -> String {
    let o = run(store, args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "ikev2cert {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}
