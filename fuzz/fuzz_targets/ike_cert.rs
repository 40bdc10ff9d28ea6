//! A CERT payload's certificate, an RFC 7427 AlgorithmIdentifier and a private key
//! from the same bytes: see `ike::fuzz_support::ike_cert`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(what) = ike::fuzz_support::ike_cert(data) {
        panic!("ike cert invariant broken: {what}");
    }
});
